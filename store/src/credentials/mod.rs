//! Device credentials: one username and password per device, hashed at rest.
//!
//! * The username is the device id (`domain::DeviceId`: 1-64 of `[A-Za-z0-9_-]`).
//! * Passwords are generated ([`generate_password`]: 24 random bytes from the OS,
//!   base64url, 32 characters) or supplied by a provisioning system (at least
//!   [`MIN_PASSWORD_LEN`] characters). fixahead shows a generated password once and
//!   keeps only its hash.
//! * Hashes use Mosquitto 2.0's format, `$7$<iterations>$<base64 salt>$<base64 hash>`
//!   (PBKDF2-HMAC-SHA512, standard base64 with padding, a 64-byte hash), exactly as
//!   `mosquitto_passwd -I <iterations>` writes it. So one stored hash serves the
//!   embedded broker (ingest's `broker`) and the Mosquitto password file written by
//!   [`export_mosquitto`]; there is no second secret to keep in step.
//! * [`CredentialStore`] keeps them in their own SQLite file, `devices.db` in the data
//!   directory, read on every connection attempt (nothing is cached, so `fixahead
//!   devices add` / `remove` take effect for the next connection without a restart).
//!
//! Iterations: [`HASH_ITERATIONS`] (10,000; Mosquitto's default is 101). Every
//! connection attempt costs one PBKDF2 run on the broker, on both brokers, so the count
//! trades a fleet's reconnect storm (100,000 devices x about 6 ms of CPU) against
//! guessing speed. Generated passwords carry 192 random bits, which no iteration count
//! could make easier or harder to guess; the count only matters for supplied
//! passwords, hence their minimum length. Each hash records its count, so raising it
//! later needs no migration (re-issue the credentials).
//!
//! The hash format is [`hash`]; the Mosquitto password and ACL files are
//! [`mosquitto`]; this module is the `devices.db` table.

mod hash;
mod mosquitto;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use domain::{DeviceId, Timestamp};
use rusqlite::{Connection, OptionalExtension};

pub use hash::{
    check_supplied_password, generate_password, secrets_equal, PasswordHash, HASH_ITERATIONS,
    HASH_LEN, MAX_ITERATIONS, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, SALT_LEN,
};
pub use mosquitto::{export_mosquitto, mosquitto_files, MosquittoExport};

use crate::sqlite::{self, Access, Schema, Synchronous};
use crate::{Error, Result};

/// The credential store's file name in the data directory.
pub const DEVICES_DB: &str = "devices.db";

/// `devices.db`: one table, version 1 (files from before versions have the same
/// table).
const DEVICES: Schema = Schema {
    file: DEVICES_DB,
    version: 1,
    create: &["CREATE TABLE IF NOT EXISTS device_credentials (
                 device_id     TEXT PRIMARY KEY NOT NULL,
                 password_hash TEXT NOT NULL,
                 issued_at     INTEGER NOT NULL
             );"],
    upgrade: |_, _| Ok(()),
};

/// One device's credential, as listed (never the password or its hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CredentialInfo {
    /// The device id, which is also the MQTT username.
    pub device_id: String,
    /// When the current password was issued.
    pub issued_at: Timestamp,
}

/// The SQLite file of device credentials (`DATA_DIR/devices.db`). Cheap to clone; one
/// connection shared behind a mutex (each use is one short statement).
#[derive(Clone)]
pub struct CredentialStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = sqlite::open(path, Access::ReadWrite(Synchronous::Full), &DEVICES)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Opens `DATA_DIR/devices.db`.
    pub fn open_in(data_dir: &Path) -> Result<Self> {
        Self::open(&data_dir.join(DEVICES_DB))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&sqlite::lock(&self.conn))
    }

    /// Issues credentials for `device`: `password` (checked with
    /// [`check_supplied_password`]) or a generated one, which is returned. With
    /// `replace`, an existing credential is replaced (the old password stops working for
    /// new connections); without it, an existing credential is an error.
    pub fn issue(
        &self,
        device: &DeviceId,
        password: Option<&str>,
        replace: bool,
    ) -> Result<(String, CredentialInfo)> {
        let password = match password {
            Some(p) => {
                check_supplied_password(p)?;
                p.to_owned()
            }
            None => generate_password(),
        };
        let hash = PasswordHash::new(&password).to_string();
        let issued_at = crate::now();
        self.with_conn(|conn| {
            let changed = if replace {
                conn.execute(
                    "INSERT INTO device_credentials (device_id, password_hash, issued_at)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (device_id) DO UPDATE
                     SET password_hash = excluded.password_hash, issued_at = excluded.issued_at",
                    rusqlite::params![device.as_str(), hash, issued_at.millis()],
                )?
            } else {
                conn.execute(
                    "INSERT INTO device_credentials (device_id, password_hash, issued_at)
                     VALUES (?1, ?2, ?3) ON CONFLICT (device_id) DO NOTHING",
                    rusqlite::params![device.as_str(), hash, issued_at.millis()],
                )?
            };
            if changed == 0 {
                return Err(Error::Conflict(format!(
                    "device {device} already has credentials; rotate them to issue a new password"
                )));
            }
            Ok(())
        })?;
        Ok((
            password,
            CredentialInfo {
                device_id: device.to_string(),
                issued_at,
            },
        ))
    }

    /// Revokes `device`'s credentials. New connections with them are refused; existing
    /// connections are not closed (see docs/operations.md).
    pub fn revoke(&self, device: &DeviceId) -> Result<()> {
        let removed = self.with_conn(|conn| {
            Ok(conn.execute(
                "DELETE FROM device_credentials WHERE device_id = ?1",
                [device.as_str()],
            )?)
        })?;
        if removed == 0 {
            return Err(Error::NotFound(format!(
                "device {device} has no credentials"
            )));
        }
        Ok(())
    }

    /// Every device with credentials, by id.
    pub fn list(&self) -> Result<Vec<CredentialInfo>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT device_id, issued_at FROM device_credentials ORDER BY device_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(CredentialInfo {
                    device_id: r.get(0)?,
                    issued_at: Timestamp(r.get(1)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The stored hash of `username`, if it has credentials. A malformed stored hash is
    /// [`Error::Corrupt`].
    pub fn hash_of(&self, username: &str) -> Result<Option<PasswordHash>> {
        let text: Option<String> = self.with_conn(|conn| {
            Ok(conn
                .query_row(
                    "SELECT password_hash FROM device_credentials WHERE device_id = ?1",
                    [username],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        text.map(|t| {
            PasswordHash::parse(&t)
                .map_err(|e| Error::Corrupt(format!("credentials of {username}: {e}")))
        })
        .transpose()
    }

    /// Every (device id, stored hash text), by id: the export's input.
    pub(crate) fn all_hashes(&self) -> Result<Vec<(String, String)>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT device_id, password_hash FROM device_credentials ORDER BY device_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
