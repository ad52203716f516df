//! `fixahead users`: the people who sign in to the console, in `DATA_DIR/keys.db`.
//!
//! Safe beside a running `fixahead run` on the same data directory, as `keys` is: the
//! console looks every session and sign-in up in the store, so an added, disabled or
//! reset account counts from the next request.

use domain::{Lang, Role};
use store::access::KEYS_DB;
use store::users::{NewUser, UserInfo, UserStore};

use crate::cli::{UsersArgs, UsersCommand};
use crate::error::bail;
use crate::{Context, Result};

/// `fixahead users ...`
pub fn users(args: UsersArgs) -> Result<()> {
    let dir = super::data_dir(args.config.as_deref(), args.data_dir.as_deref())?;
    let open = |create: bool| -> Result<UserStore> {
        if !create && !dir.join(KEYS_DB).exists() {
            bail!(
                "{} has no {KEYS_DB}: start fixahead once, or add a user",
                dir.display()
            );
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        UserStore::open_in(&dir)
            .with_context(|| format!("opening the account store in {}", dir.display()))
    };
    let find = |store: &UserStore, login: &str| -> Result<UserInfo> {
        match store.by_login(login)? {
            Some(u) => Ok(u),
            None => {
                bail!("there is no account with the login {login:?} (see `fixahead users list`)")
            }
        }
    };
    match &args.command {
        UsersCommand::Add {
            login,
            role,
            display_name,
            lang,
            time_zone,
        } => {
            let role: Role = role.parse()?;
            let lang: Lang = lang.parse()?;
            let store = open(true)?;
            let (password, user) = store.add(&NewUser {
                login,
                display_name: display_name.as_deref().unwrap_or(""),
                role,
                lang,
                time_zone,
            })?;
            // Alone on stdout, for `PASSWORD=$(fixahead users add li.wei --role planner)`.
            println!("{password}");
            eprintln!(
                "Added {} ({role}, {:?}, {}, {}). The password is shown only now; fixahead keeps its argon2id hash in {}.",
                user.login,
                user.display_name,
                user.lang,
                user.time_zone,
                dir.join(KEYS_DB).display()
            );
        }
        UsersCommand::List => {
            for u in open(false)?.list()? {
                let state = u
                    .disabled_at
                    .map_or_else(|| "enabled".to_owned(), |t| format!("disabled {t}"));
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    u.id, u.login, u.role, u.lang, u.time_zone, state, u.display_name
                );
            }
        }
        UsersCommand::ResetPassword { login } => {
            let store = open(false)?;
            let user = find(&store, login)?;
            let (password, _) = store.reset_password(user.id)?;
            println!("{password}");
            eprintln!(
                "Reset the password of {}: the old one no longer works and their sessions have ended.",
                user.login
            );
        }
        UsersCommand::Disable { login } | UsersCommand::Enable { login } => {
            let disable = matches!(args.command, UsersCommand::Disable { .. });
            let store = open(false)?;
            let user = find(&store, login)?;
            store.set_disabled(user.id, disable)?;
            if disable {
                eprintln!(
                    "Disabled {}: their sessions have ended and they cannot sign in.",
                    user.login
                );
            } else {
                eprintln!("Enabled {}: they can sign in again.", user.login);
            }
        }
    }
    Ok(())
}
