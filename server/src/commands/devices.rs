//! `fixahead devices`: MQTT credentials per device (`DATA_DIR/devices.db`).
//!
//! Safe to run beside a running `fixahead run` on the same data directory: the
//! embedded broker reads the store on every connection attempt, so an added or removed
//! device counts from its next connection, without a restart.

use std::io::Read as _;

use domain::DeviceId;
use store::credentials::{export_mosquitto, CredentialStore};

use crate::cli::{DevicesArgs, DevicesCommand};
use crate::error::bail;
use crate::{Context, Result};

/// The data directory: `--data-dir`, else the config file's, else the default.
fn parse_id(raw: &str) -> Result<DeviceId> {
    Ok(DeviceId::parse(raw)?)
}

/// Reads a password from stdin: all of it, without one trailing newline.
fn password_from_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .context("reading the password from stdin (it must be UTF-8)")?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(text.to_owned())
}

/// `fixahead devices ...`
pub fn devices(args: DevicesArgs) -> Result<()> {
    let dir = super::data_dir(args.config.as_deref(), args.data_dir.as_deref())?;
    let open = || -> Result<CredentialStore> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        CredentialStore::open_in(&dir)
            .with_context(|| format!("opening the credential store in {}", dir.display()))
    };
    match &args.command {
        DevicesCommand::Add {
            device_id,
            password_stdin,
            rotate,
        } => {
            let id = parse_id(device_id)?;
            let supplied = if *password_stdin {
                Some(password_from_stdin()?)
            } else {
                None
            };
            let store = open()?;
            let (password, _) = store.issue(&id, supplied.as_deref(), *rotate)?;
            if supplied.is_none() {
                // Alone on stdout, for `PASSWORD=$(fixahead devices add ...)`.
                println!("{password}");
                eprintln!(
                    "Issued MQTT credentials for {id}: username {id}, the password above. It is shown only now; fixahead keeps its hash in {}.",
                    store.path().display()
                );
            } else {
                eprintln!(
                    "Stored the password for {id} (username {id}) as a hash in {}.",
                    store.path().display()
                );
            }
            eprintln!("The device connects with client id {id} (or {id}:<suffix>).");
        }
        DevicesCommand::List => {
            let store = open()?;
            for c in store.list()? {
                println!("{}\t{}", c.device_id, c.issued_at);
            }
        }
        DevicesCommand::Remove { device_id } => {
            let id = parse_id(device_id)?;
            open()?.revoke(&id)?;
            eprintln!(
                "Revoked the credentials of {id}. New connections with them are refused; a connection already open stays open until it ends (restart fixahead to close it)."
            );
        }
        DevicesCommand::ExportMosquitto {
            dir: out,
            ingest_user,
        } => {
            if !dir.join(store::credentials::DEVICES_DB).exists() {
                bail!(
                    "{} has no {}: issue credentials with `fixahead devices add` first",
                    dir.display(),
                    store::credentials::DEVICES_DB
                );
            }
            let export = export_mosquitto(&open()?, out, ingest_user)?;
            println!("{}", export.passwd.display());
            println!("{}", export.acl.display());
            eprintln!(
                "Wrote {} device accounts and the ingest account {ingest_user}. In mosquitto.conf: password_file {}, acl_file {}, allow_anonymous false.",
                export.devices,
                export.passwd.display(),
                export.acl.display()
            );
        }
    }
    Ok(())
}
