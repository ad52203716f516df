//! The first admin API key, made sure of at start-up: from `FIXAHEAD_ADMIN_KEY`, or
//! generated and written to `DATA_DIR/admin.key`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use domain::Role;
use store::access::{check_supplied_key, generate_key, AccessStore};

use crate::error::bail;
use crate::{Context, Result};

/// The environment variable that supplies the first admin key.
pub const ADMIN_KEY_ENV: &str = "FIXAHEAD_ADMIN_KEY";
/// Where a generated first admin key is written (mode 0600).
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// How the first admin key came about at this start. (No `Debug`: it may hold the key.)
pub enum Bootstrap {
    /// A valid admin key existed already.
    Existing,
    /// Stored from `FIXAHEAD_ADMIN_KEY`.
    FromEnv,
    /// Generated now: shown once by the caller, and written to `file`.
    Generated {
        /// The key.
        key: String,
        /// Where it was written.
        file: PathBuf,
    },
}

/// Makes sure a valid admin key exists: from `FIXAHEAD_ADMIN_KEY` if set, else a
/// generated one written to `DATA_DIR/admin.key` with mode 0600.
pub fn ensure(store: &AccessStore, data_dir: &Path) -> Result<Bootstrap> {
    let supplied = match std::env::var(ADMIN_KEY_ENV) {
        Ok(k) => Some(k),
        Err(std::env::VarError::NotPresent) => None,
        Err(e) => bail!("{ADMIN_KEY_ENV}: {e}"),
    };
    if store.has_admin()? {
        if let Some(key) = &supplied {
            let known = store
                .authenticate(key)?
                .is_some_and(|k| k.role == Role::Admin);
            if !known {
                tracing::warn!("{ADMIN_KEY_ENV} is ignored: an admin key exists already (create more with `fixahead keys create --role admin`)");
            }
        }
        return Ok(Bootstrap::Existing);
    }
    if let Some(key) = supplied {
        check_supplied_key(&key).with_context(|| format!("{ADMIN_KEY_ENV} is not usable"))?;
        store
            .insert(&key, Role::Admin, "admin (FIXAHEAD_ADMIN_KEY)")
            .with_context(|| {
                format!("storing {ADMIN_KEY_ENV} (it may be stored already as a revoked or non-admin key: choose another)")
            })?;
        tracing::info!("Stored the first admin API key from {ADMIN_KEY_ENV}");
        return Ok(Bootstrap::FromEnv);
    }
    let key = generate_key();
    let file = data_dir.join(ADMIN_KEY_FILE);
    write_private(&file, &format!("{key}\n"))?;
    store.insert(&key, Role::Admin, "admin (generated at first start)")?;
    Ok(Bootstrap::Generated { key, file })
}

/// Writes `text` to `path`, readable and writable by the owner only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        // A file that existed keeps its mode through open(): set it.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Prints a generated first admin key, once, on stderr.
pub fn announce(bootstrap: &Bootstrap) {
    if let Bootstrap::Generated { key, file } = bootstrap {
        eprintln!();
        eprintln!("Created the first admin API key. It is shown only now; it is also in {} (mode 0600): move it to your secret store and delete the file.", file.display());
        eprintln!("  {key}");
        eprintln!("Send it as `Authorization: Bearer <key>`; create keys for people and systems with `fixahead keys create --role ROLE` (docs/operations.md, \"API keys\").");
        eprintln!();
    }
}
