//! The Mosquitto password and ACL files of every stored credential
//! (`fixahead devices export-mosquitto`).

use std::path::{Path, PathBuf};

use domain::DeviceId;

use super::{CredentialStore, PasswordHash};
use crate::{Error, Result};

/// What [`export_mosquitto`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MosquittoExport {
    /// The password file.
    pub passwd: PathBuf,
    /// The ACL file.
    pub acl: PathBuf,
    /// Device accounts written (the ingest account not counted).
    pub devices: usize,
}

/// The Mosquitto password file and ACL file for every credential in `store`:
/// `passwd` (`user:$7$...` lines, the stored hashes as they are) and `acl`.
///
/// In the ACL, `ingest_user` (which must have credentials, issued like a device's)
/// may read `fixahead/v1/#` and write nothing. Every other account is a device, which
/// may write only `fixahead/v1/{id}/telemetry`, `/fault`, `/status` (also its last
/// will) and `/cmd/result`, and read only `fixahead/v1/{id}/cmd` (remote commands, a
/// later protocol addition). Mosquitto denies everything an ACL file does not grant.
pub fn mosquitto_files(
    entries: &[(String, String)],
    ingest_user: &str,
) -> Result<(String, String)> {
    if !entries.iter().any(|(id, _)| id == ingest_user) {
        return Err(Error::NotFound(format!(
            "the ingest account {ingest_user} has no credentials: issue them with `fixahead devices add {ingest_user}` and give that password to fixahead (mqtt.username / mqtt.password)"
        )));
    }
    let mut passwd = String::new();
    let mut acl = String::from(
        "# Written by `fixahead devices export-mosquitto`; regenerate it rather than edit it.\n\
         # Each device may publish only under its own id; Mosquitto denies anything not granted.\n\n",
    );
    for (id, hash) in entries {
        // Both came from the store, but a hand-edited file must not smuggle a line
        // break or a colon into Mosquitto's files.
        if !DeviceId::is_valid(id) {
            return Err(Error::Corrupt(format!(
                "credential store holds an invalid device id {:?}",
                id.chars().take(80).collect::<String>()
            )));
        }
        PasswordHash::parse(hash)
            .map_err(|e| Error::Corrupt(format!("credentials of {id}: {e}")))?;
        passwd.push_str(&format!("{id}:{hash}\n"));
        if id == ingest_user {
            acl.push_str(&format!(
                "# fixahead's ingest account: reads every device's messages and sends commands.\nuser {id}\ntopic read fixahead/v1/#\ntopic write fixahead/v1/+/cmd\n\n"
            ));
        } else {
            acl.push_str(&format!(
                "user {id}\n\
                 topic write fixahead/v1/{id}/telemetry\n\
                 topic write fixahead/v1/{id}/fault\n\
                 topic write fixahead/v1/{id}/status\n\
                 topic write fixahead/v1/{id}/cmd/result\n\
                 topic read fixahead/v1/{id}/cmd\n\n"
            ));
        }
    }
    Ok((passwd, acl))
}

/// Writes `dir/passwd` and `dir/acl` (see [`mosquitto_files`]), each readable and
/// writable by the owner only (0600), replacing earlier ones atomically.
pub fn export_mosquitto(
    store: &CredentialStore,
    dir: &Path,
    ingest_user: &str,
) -> Result<MosquittoExport> {
    if !DeviceId::is_valid(ingest_user) {
        return Err(Error::Invalid(format!(
            "ingest user {:?} is not a valid account name (1-64 of [A-Za-z0-9_-])",
            ingest_user.chars().take(80).collect::<String>()
        )));
    }
    let entries = store.all_hashes()?;
    let (passwd, acl) = mosquitto_files(&entries, ingest_user)?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        context: format!("creating {}", dir.display()),
        source,
    })?;
    let passwd_path = dir.join("passwd");
    let acl_path = dir.join("acl");
    write_private(&passwd_path, &passwd)?;
    write_private(&acl_path, &acl)?;
    Ok(MosquittoExport {
        passwd: passwd_path,
        acl: acl_path,
        devices: entries.len() - 1,
    })
}

/// Writes `text` to a temporary file created with mode 0600, then renames it over `path`.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let io = |what: &str, source| Error::Io {
        context: format!("{what} {}", path.display()),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(|e| io("creating", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| io("replacing", e))
}
