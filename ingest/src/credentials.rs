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
//!   embedded broker ([`crate::broker`]) and the Mosquitto password file written by
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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use domain::{DeviceId, Timestamp};
use rand::RngCore as _;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use subtle::ConstantTimeEq as _;

use crate::{Error, Result};

/// PBKDF2 iterations of newly issued hashes (see the module docs for the choice).
pub const HASH_ITERATIONS: u32 = 10_000;
/// Salt bytes of newly issued hashes (as `mosquitto_passwd`).
pub const SALT_LEN: usize = 12;
/// Bytes of a PBKDF2-HMAC-SHA512 hash in the `$7$` format.
pub const HASH_LEN: usize = 64;
/// Shortest password accepted from a provisioning system.
pub const MIN_PASSWORD_LEN: usize = 16;
/// Longest password accepted (MQTT allows 65535 bytes; nothing needs that many).
pub const MAX_PASSWORD_LEN: usize = 256;
/// Most iterations a stored hash may ask for: a hash that asked for billions would
/// make every connection attempt of that device burn the broker's CPU.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// The credential store's file name in the data directory.
pub const DEVICES_DB: &str = "devices.db";

/// A password hash in Mosquitto's `$7$` (PBKDF2-HMAC-SHA512) format.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: [u8; HASH_LEN],
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PasswordHash {
    /// `$7$<iterations>$<base64 salt>$<base64 hash>`, as in a Mosquitto password file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$7${}${}${}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.hash)
        )
    }
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), salt, iterations, &mut out);
    out
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt and [`HASH_ITERATIONS`].
    pub fn new(password: &str) -> Self {
        Self::with_iterations(password, HASH_ITERATIONS)
    }

    /// Hashes `password` with a fresh random salt and `iterations` (at least 1).
    pub fn with_iterations(password: &str, iterations: u32) -> Self {
        let mut salt = vec![0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let iterations = iterations.max(1);
        Self {
            hash: derive(password, &salt, iterations),
            iterations,
            salt,
        }
    }

    /// Parses the `$7$` format. Anything else (Mosquitto's older `$6$` salted SHA-512,
    /// plain text, a truncated line) is an error that says what is wrong, never a panic.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Corrupt(format!("password hash: {why}"));
        let rest = text
            .strip_prefix("$7$")
            .ok_or_else(|| bad("not in Mosquitto's $7$ (PBKDF2-SHA512) format"))?;
        let mut parts = rest.split('$');
        let (Some(iterations), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected $7$<iterations>$<salt>$<hash>"));
        };
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| bad("iterations is not a number"))?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(bad(&format!(
                "iterations must be 1 to {MAX_ITERATIONS}, got {iterations}"
            )));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| bad("salt is not base64"))?;
        if salt.is_empty() || salt.len() > 64 {
            return Err(bad("salt must be 1-64 bytes"));
        }
        let hash: [u8; HASH_LEN] = STANDARD
            .decode(hash)
            .map_err(|_| bad("hash is not base64"))?
            .try_into()
            .map_err(|_| bad("hash must be 64 bytes (SHA-512)"))?;
        Ok(Self {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether `password` matches, compared in constant time. CPU work (one PBKDF2
    /// run): async callers run it on a blocking thread.
    pub fn verify(&self, password: &str) -> bool {
        derive(password, &self.salt, self.iterations)
            .ct_eq(&self.hash)
            .into()
    }

    /// The PBKDF2 iteration count this hash was made with.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

/// A new random password: 24 bytes from the operating system's generator, base64url
/// without padding (32 characters of `[A-Za-z0-9_-]`, safe in shells and URLs).
pub fn generate_password() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks a password supplied by a provisioning system.
pub fn check_supplied_password(password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(Error::InvalidInput(format!(
            "the password has {len} characters; at least {MIN_PASSWORD_LEN} are required (or let fixahead generate one)"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::InvalidInput(format!(
            "the password is longer than {MAX_PASSWORD_LEN} bytes"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "the password must not contain control characters (a trailing newline is removed)"
                .into(),
        ));
    }
    Ok(())
}

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
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS device_credentials (
                 device_id     TEXT PRIMARY KEY NOT NULL,
                 password_hash TEXT NOT NULL,
                 issued_at     INTEGER NOT NULL
             );",
        )?;
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

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| Error::Task("credential store lock poisoned".into()))?;
        f(&conn)
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
        let issued_at = Timestamp(crate::source::now_ms());
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
                return Err(Error::CredentialsExist(format!(
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
            return Err(Error::NoCredentials(format!(
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
    fn all_hashes(&self) -> Result<Vec<(String, String)>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT device_id, password_hash FROM device_credentials ORDER BY device_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

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
        return Err(Error::NoCredentials(format!(
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
        return Err(Error::InvalidInput(format!(
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

/// Compares two secrets in constant time (for the in-memory internal credential).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by the real `mosquitto_passwd -b -I 1000` (Mosquitto 2.0.11) for the
    /// password `s3cret-Pa55`.
    const MOSQUITTO_VECTOR: &str = "$7$1000$wJ1AoHJjQKY06chI$W2HQoxR/JWC79ytGF68v9sLO7+ZblOcxSEUZxz4l+1+m5rnLff08EG+9JTNwyENdqA6/RHIBTEw5A8zTN6nEZg==";

    #[test]
    fn verifies_a_hash_written_by_mosquitto_passwd() {
        let h = PasswordHash::parse(MOSQUITTO_VECTOR).unwrap();
        assert_eq!(h.iterations(), 1000);
        assert!(h.verify("s3cret-Pa55"));
        assert!(!h.verify("s3cret-Pa56"));
        assert!(!h.verify(""));
        assert_eq!(h.to_string(), MOSQUITTO_VECTOR, "round trip");
    }

    #[test]
    fn new_hashes_have_the_mosquitto_shape_and_verify() {
        let h = PasswordHash::with_iterations("correct horse battery", 50);
        let text = h.to_string();
        let parts: Vec<&str> = text.split('$').collect();
        assert_eq!(parts[..3], ["", "7", "50"], "{text}");
        assert_eq!(STANDARD.decode(parts[3]).unwrap().len(), SALT_LEN);
        assert_eq!(STANDARD.decode(parts[4]).unwrap().len(), HASH_LEN);
        let parsed = PasswordHash::parse(&text).unwrap();
        assert!(parsed.verify("correct horse battery"));
        assert!(!parsed.verify("correct horse batter"));
        let again = PasswordHash::with_iterations("correct horse battery", 50);
        assert_ne!(again.to_string(), text, "a fresh salt every time");
        assert_eq!(PasswordHash::new("x").iterations(), HASH_ITERATIONS);
    }

    #[test]
    fn malformed_hashes_are_errors_not_panics() {
        for bad in [
            "",
            "plain",
            "$6$abc$def",
            "$7$",
            "$7$1000$",
            "$7$1000$c2FsdA==",
            "$7$x$c2FsdA==$aGFzaA==",
            "$7$0$c2FsdA==$aGFzaA==",
            "$7$99999999999$c2FsdA==$aGFzaA==",
            "$7$1000$!!$aGFzaA==",
            "$7$1000$c2FsdA==$aGFzaA==",
            "$7$1000$$W2HQoxR/JWC79ytGF68v9sLO7+ZblOcxSEUZxz4l+1+m5rnLff08EG+9JTNwyENdqA6/RHIBTEw5A8zTN6nEZg==",
            &format!("{MOSQUITTO_VECTOR}$extra"),
        ] {
            let err = PasswordHash::parse(bad).unwrap_err();
            assert!(err.to_string().contains("password hash"), "{bad}: {err}");
        }
    }

    #[test]
    fn generated_passwords_are_long_random_and_shell_safe() {
        let a = generate_password();
        let b = generate_password();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        check_supplied_password(&a).unwrap();
        assert!(check_supplied_password("short").is_err());
        assert!(check_supplied_password("sixteen chars ok\n").is_err());
        assert!(check_supplied_password(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
    }

    #[test]
    fn the_store_issues_rotates_lists_and_revokes() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open_in(dir.path()).unwrap();
        let wm1 = DeviceId::parse("wm-1").unwrap();
        let (pw, info) = store.issue(&wm1, None, false).unwrap();
        assert_eq!(info.device_id, "wm-1");
        assert!(store.hash_of("wm-1").unwrap().unwrap().verify(&pw));
        assert!(store.hash_of("wm-2").unwrap().is_none());
        let err = store.issue(&wm1, None, false).unwrap_err();
        assert!(matches!(err, Error::CredentialsExist(_)), "{err}");
        assert!(store.hash_of("wm-1").unwrap().unwrap().verify(&pw), "kept");
        let (pw2, _) = store
            .issue(&wm1, Some("a supplied password"), true)
            .unwrap();
        assert_eq!(pw2, "a supplied password");
        let h = store.hash_of("wm-1").unwrap().unwrap();
        assert!(h.verify(&pw2) && !h.verify(&pw), "rotated");
        let wm2 = DeviceId::parse("wm-2").unwrap();
        assert!(store.issue(&wm2, Some("short"), false).is_err());
        store.issue(&wm2, None, false).unwrap();
        let ids: Vec<String> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.device_id)
            .collect();
        assert_eq!(ids, ["wm-1", "wm-2"]);
        store.revoke(&wm1).unwrap();
        assert!(store.hash_of("wm-1").unwrap().is_none());
        assert!(matches!(store.revoke(&wm1), Err(Error::NoCredentials(_))));
        // Reopened: the file holds them (a second connection, as the CLI beside `run`).
        let again = CredentialStore::open(store.path()).unwrap();
        assert_eq!(again.list().unwrap().len(), 1);
    }

    #[test]
    fn a_corrupt_stored_hash_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open_in(dir.path()).unwrap();
        store
            .with_conn(|c| {
                c.execute(
                    "INSERT INTO device_credentials VALUES ('wm-9', 'plaintext', 0)",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        let err = store.hash_of("wm-9").unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        let err = export_mosquitto(&store, &dir.path().join("x"), "wm-9").unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
    }

    #[test]
    fn the_export_restricts_each_device_to_its_own_topics() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open_in(dir.path()).unwrap();
        for id in ["wm-1", "rf-2", "fixahead-ingest"] {
            store
                .issue(&DeviceId::parse(id).unwrap(), None, false)
                .unwrap();
        }
        let out = dir.path().join("mosquitto");
        let err = export_mosquitto(&store, &out, "nobody").unwrap_err();
        assert!(err.to_string().contains("devices add nobody"), "{err}");
        assert!(export_mosquitto(&store, &out, "bad:user").is_err());
        let export = export_mosquitto(&store, &out, "fixahead-ingest").unwrap();
        assert_eq!(export.devices, 2);
        let passwd = std::fs::read_to_string(&export.passwd).unwrap();
        let users: Vec<&str> = passwd
            .lines()
            .map(|l| l.split_once(':').unwrap().0)
            .collect();
        assert_eq!(users, ["fixahead-ingest", "rf-2", "wm-1"]);
        for line in passwd.lines() {
            let (user, hash) = line.split_once(':').unwrap();
            assert_eq!(
                PasswordHash::parse(hash).unwrap(),
                store.hash_of(user).unwrap().unwrap()
            );
        }
        let acl = std::fs::read_to_string(&export.acl).unwrap();
        assert!(acl.contains(
            "user wm-1\ntopic write fixahead/v1/wm-1/telemetry\ntopic write fixahead/v1/wm-1/fault\n"
        ));
        assert!(acl.contains(
            "user fixahead-ingest\ntopic read fixahead/v1/#\ntopic write fixahead/v1/+/cmd\n"
        ));
        let wm1_block = acl.split("user wm-1\n").nth(1).unwrap();
        let wm1_block = wm1_block.split("\n\n").next().unwrap();
        assert!(
            !wm1_block.contains("rf-2") && !wm1_block.contains('#') && !wm1_block.contains('+')
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for p in [&export.passwd, &export.acl] {
                let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", p.display());
            }
        }
    }
}
