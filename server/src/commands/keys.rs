//! `fixahead keys`: API keys in `DATA_DIR/keys.db`.
//!
//! Safe beside a running `fixahead run` on the same data directory: the API looks every
//! request's key up in the store, so a created or revoked key counts from the next
//! request, without a restart.

use domain::Role;
use store::access::{AccessStore, KEYS_DB};

use crate::cli::{KeysArgs, KeysCommand};
use crate::error::bail;
use crate::{Context, Result};

/// `fixahead keys ...`
pub fn keys(args: KeysArgs) -> Result<()> {
    let dir = super::data_dir(args.config.as_deref(), args.data_dir.as_deref())?;
    let open = || -> Result<AccessStore> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        AccessStore::open_in(&dir)
            .with_context(|| format!("opening the key store in {}", dir.display()))
    };
    match &args.command {
        KeysCommand::Create { role, name } => {
            let role: Role = role.parse()?;
            let name = name
                .clone()
                .unwrap_or_else(|| format!("{role} (command line)"));
            let store = open()?;
            let (key, info) = store.create(role, &name)?;
            // Alone on stdout, for `KEY=$(fixahead keys create --role planner)`.
            println!("{key}");
            eprintln!(
                "Created API key {} ({role}, {name:?}). It is shown only now; fixahead keeps its hash in {}.",
                info.id,
                store.path().display()
            );
        }
        KeysCommand::List => {
            if !dir.join(KEYS_DB).exists() {
                bail!(
                    "{} has no {KEYS_DB}: start fixahead once, or create a key",
                    dir.display()
                );
            }
            for k in open()?.list()? {
                let revoked = k
                    .revoked_at
                    .map_or_else(|| "valid".to_owned(), |t| format!("revoked {t}"));
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.id, k.role, k.created_at, revoked, k.name
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let info = open()?.revoke(*id)?;
            eprintln!(
                "Revoked API key {} ({}, {:?}): requests with it get 401 from now on.",
                info.id, info.role, info.name
            );
        }
    }
    Ok(())
}
