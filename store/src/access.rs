//! API keys and the audit log of the HTTP API, in their own SQLite file, `keys.db` in the data directory.
//!
//! * A key is 32 random bytes from the OS, shown once as `fxa_<base64url>` (47
//!   characters). fixahead keeps its SHA-256 hash, never the key. A fast hash is right
//!   here, unlike for passwords: a generated key carries 256 random bits, so no
//!   guessing rate makes it guessable, and a slow hash would only cost CPU on every
//!   request. An operator-supplied key (`FIXAHEAD_ADMIN_KEY`) must have at least
//!   [`MIN_SUPPLIED_KEY_LEN`] characters for the same reason.
//! * A request's key is found by its hash (`SELECT ... WHERE hash = ?`, a unique
//!   index). No constant-time comparison is needed: the lookup compares hashes, and
//!   timing can at most reveal a prefix of the SHA-256 of a key the attacker already
//!   knows, which says nothing about any stored key (a preimage of SHA-256 is
//!   infeasible).
//! * Keys are revoked, never deleted, so the audit log's key ids stay resolvable.
//! * Its own file, not `tickets.db`: `fixahead keys create` works on the data
//!   directory beside a running server (like `devices.db`), and the audit writes never
//!   wait for the ticket writer's lock.
//!
//! Everything here is blocking; async callers use `spawn_blocking`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use domain::{Role, Timestamp};
use rand::RngCore as _;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::sqlite::{self, Access, Schema, Synchronous};
use crate::{Error, Result};

/// The key store's file name in the data directory.
pub const KEYS_DB: &str = "keys.db";
/// Shortest key accepted from an operator (`FIXAHEAD_ADMIN_KEY`).
pub const MIN_SUPPLIED_KEY_LEN: usize = 32;
/// Longest key accepted at all (a longer `Authorization` header is refused unread).
pub const MAX_KEY_LEN: usize = 256;
/// Longest key name.
pub const MAX_NAME_LEN: usize = 100;
/// The prefix of generated keys (recognisable in logs and secret scanners).
pub const KEY_PREFIX: &str = "fxa_";

/// A stored key, without its secret.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Key id (stable; named in the audit log).
    pub id: i64,
    /// What the key may do.
    pub role: Role,
    /// A label chosen at creation, e.g. who or what holds it.
    pub name: String,
    /// When it was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-11-24T06:00:00.000Z"))]
    pub created_at: Timestamp,
    /// When it was revoked; `null` while it is valid.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub revoked_at: Option<Timestamp>,
}

/// Generates a key: `fxa_` and 32 random bytes in base64url (43 characters).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks a key supplied by an operator: [`MIN_SUPPLIED_KEY_LEN`] to [`MAX_KEY_LEN`]
/// visible ASCII characters (it travels in an HTTP header).
pub fn check_supplied_key(key: &str) -> Result<()> {
    if key.len() < MIN_SUPPLIED_KEY_LEN || key.len() > MAX_KEY_LEN {
        return Err(Error::Invalid(format!(
            "an API key must have {MIN_SUPPLIED_KEY_LEN} to {MAX_KEY_LEN} characters, this one has {}",
            key.len()
        )));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Invalid(
            "an API key may contain only visible ASCII characters".into(),
        ));
    }
    Ok(())
}

fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Checks a key name: 1 to [`MAX_NAME_LEN`] characters, no control characters.
pub fn check_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "a key name must have 1 to {MAX_NAME_LEN} characters and no control characters"
        )));
    }
    Ok(())
}

/// One audit record: who did what, when, and how it ended.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Record id (the cursor of `GET /api/v1/audit`).
    pub id: i64,
    /// When the request was answered.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-11-24T06:00:00.000Z"))]
    pub at: Timestamp,
    /// Who did what.
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Who made a request: an API key or a person signed in to the console.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// An API key ([`KeyInfo`]).
    #[default]
    Key,
    /// A person's account ([`crate::users::UserInfo`]).
    User,
}

impl PrincipalKind {
    /// The stored and serialised name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::User => "user",
        }
    }
}

/// What an audit record says (its id and time are assigned on insert).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Whether a key or a person made the request (`key` for every record written
    /// before people could sign in).
    pub principal: PrincipalKind,
    /// The key's id, or the account's id when `principal` is `user`.
    pub key_id: i64,
    /// The key's name, or the person's display name and login (`李伟 (li.wei)`).
    pub key_name: String,
    /// Its role; `null` for a failed sign-in with a login no account has.
    pub role: Option<Role>,
    /// HTTP method.
    pub method: String,
    /// Request path (without the query).
    pub path: String,
    /// Response status.
    pub status: u16,
    /// What changed, or why it was refused.
    pub summary: String,
}

/// API keys and the audit log (`keys.db`). Cheap to clone.
#[derive(Clone)]
pub struct AccessStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl fmt::Debug for AccessStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// `keys.db`: version 1 the keys and the audit log (files from before versions have
/// the same tables); version 2 adds people, sessions and failed sign-ins
/// ([`crate::users`]) and the audit log's `principal`; version 3 adds the engineers'
/// directory (`engineers`, [`crate::engineers`]: a new table, created by `create`, so
/// the upgrade from 2 has nothing else to do).
pub(crate) const KEYS: Schema = Schema {
    file: KEYS_DB,
    version: 3,
    create: &[SCHEMA, crate::users::SCHEMA, crate::engineers::SCHEMA],
    upgrade: |c, _| {
        if !sqlite::has_column(c, "audit", "principal")? {
            c.execute_batch("ALTER TABLE audit ADD COLUMN principal TEXT NOT NULL DEFAULT 'key'")?;
        }
        Ok(())
    },
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    principal TEXT NOT NULL DEFAULT 'key',
    key_id INTEGER NOT NULL,
    key_name TEXT NOT NULL,
    role TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);
";

fn parse_role(s: String) -> rusqlite::Result<Role> {
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown role {s:?}").into(),
        )
    })
}

fn key_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyInfo> {
    Ok(KeyInfo {
        id: row.get(0)?,
        role: parse_role(row.get(1)?)?,
        name: row.get(2)?,
        created_at: Timestamp(row.get(3)?),
        revoked_at: row.get::<_, Option<i64>>(4)?.map(Timestamp),
    })
}

impl AccessStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = sqlite::open(path, Access::ReadWrite(Synchronous::Full), &KEYS)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
        })
    }

    /// Opens `DATA_DIR/keys.db`.
    pub fn open_in(data_dir: &Path) -> Result<Self> {
        Self::open(&data_dir.join(KEYS_DB))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&sqlite::lock(&self.conn))
    }

    /// Creates a key with a generated secret; returns the secret (shown once) and the
    /// stored record.
    pub fn create(&self, role: Role, name: &str) -> Result<(String, KeyInfo)> {
        let key = generate_key();
        let info = self.insert(&key, role, name)?;
        Ok((key, info))
    }

    /// Stores `key` (checked with [`check_supplied_key`]) under `role`.
    pub fn insert(&self, key: &str, role: Role, name: &str) -> Result<KeyInfo> {
        check_supplied_key(key)?;
        check_name(name)?;
        let created_at = crate::now();
        self.with_conn(|c| {
            let inserted = c.execute(
                "INSERT INTO api_keys (hash, role, name, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (hash) DO NOTHING",
                params![hash_key(key), role.as_str(), name, created_at.millis()],
            )?;
            if inserted == 0 {
                return Err(Error::Conflict("this key is already stored".into()));
            }
            Ok(KeyInfo {
                id: c.last_insert_rowid(),
                role,
                name: name.to_owned(),
                created_at,
                revoked_at: None,
            })
        })
    }

    /// The valid (not revoked) key with this secret, if any.
    pub fn authenticate(&self, key: &str) -> Result<Option<KeyInfo>> {
        if key.len() > MAX_KEY_LEN {
            return Ok(None);
        }
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT id, role, name, created_at, revoked_at FROM api_keys
                 WHERE hash = ?1 AND revoked_at IS NULL",
                [hash_key(key)],
                key_row,
            )
            .optional()?)
        })
    }

    /// The key with this secret, revoked or not.
    pub fn find(&self, key: &str) -> Result<Option<KeyInfo>> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT id, role, name, created_at, revoked_at FROM api_keys WHERE hash = ?1",
                [hash_key(key)],
                key_row,
            )
            .optional()?)
        })
    }

    /// Every key, oldest first, without secrets.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT id, role, name, created_at, revoked_at FROM api_keys ORDER BY id",
            )?;
            let rows = stmt.query_map([], key_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Whether a valid admin key exists.
    pub fn has_admin(&self) -> Result<bool> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL)",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// Revokes key `id`: at once, for every later request. [`Error::NotFound`] if there
    /// is no such key or it is revoked already; [`Error::Conflict`] if it is the last
    /// valid admin key (create another first: nobody could manage keys over the API).
    pub fn revoke(&self, id: i64) -> Result<KeyInfo> {
        let at = crate::now();
        self.with_conn(|c| {
            let changed = c.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL
                 AND (role != 'admin' OR (SELECT COUNT(*) FROM api_keys
                      WHERE role = 'admin' AND revoked_at IS NULL) > 1)",
                params![id, at.millis()],
            )?;
            if changed == 0 {
                let role: Option<(String, Option<i64>)> = c
                    .query_row(
                        "SELECT role, revoked_at FROM api_keys WHERE id = ?1",
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((role, None)) = role {
                    if role == "admin" {
                        return Err(Error::Conflict(format!(
                            "key {id} is the last valid admin key: create another admin key before revoking it"
                        )));
                    }
                }
            }
            if changed == 0 {
                return Err(Error::NotFound(format!("no valid key with id {id}")));
            }
            Ok(c.query_row(
                "SELECT id, role, name, created_at, revoked_at FROM api_keys WHERE id = ?1",
                [id],
                key_row,
            )?)
        })
    }

    /// Appends an audit record.
    pub fn audit(&self, record: &AuditRecord) -> Result<()> {
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO audit (at, key_id, key_name, role, method, path, status, summary, principal)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    crate::now().millis(),
                    record.key_id,
                    record.key_name,
                    record.role.map_or("", Role::as_str),
                    record.method,
                    record.path,
                    record.status,
                    record.summary,
                    record.principal.as_str()
                ],
            )?;
            Ok(())
        })
    }

    /// Deletes audit records written more than `retention_ms` ago; returns how many.
    /// `fixahead run` calls it hourly with `[http] audit_retention`.
    pub fn prune_audit(&self, retention_ms: i64) -> Result<usize> {
        let cutoff = crate::now().millis().saturating_sub(retention_ms);
        self.with_conn(|c| Ok(c.execute("DELETE FROM audit WHERE at < ?1", params![cutoff])?))
    }

    /// Audit records, newest first, with ids below `before`, at most `limit`.
    pub fn audit_log(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT id, at, key_id, key_name, role, method, path, status, summary, principal FROM audit
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                params![
                    before.unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |row| {
                    Ok(AuditEntry {
                        id: row.get(0)?,
                        at: Timestamp(row.get(1)?),
                        record: AuditRecord {
                            principal: if row.get::<_, String>(9)? == "user" {
                                PrincipalKind::User
                            } else {
                                PrincipalKind::Key
                            },
                            key_id: row.get(2)?,
                            key_name: row.get(3)?,
                            role: match row.get::<_, String>(4)? {
                                r if r.is_empty() => None,
                                r => Some(parse_role(r)?),
                            },
                            method: row.get(5)?,
                            path: row.get(6)?,
                            status: row.get(7)?,
                            summary: row.get(8)?,
                        },
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_secret_until_revoked_and_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccessStore::open_in(dir.path()).unwrap();
        assert!(!store.has_admin().unwrap());
        let (key, info) = store.create(Role::Planner, "planning desk").unwrap();
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), 47);
        assert_eq!(store.authenticate(&key).unwrap(), Some(info.clone()));
        assert_eq!(store.authenticate("fxa_wrong").unwrap(), None);
        let raw = std::fs::read(dir.path().join(KEYS_DB)).unwrap();
        assert!(!raw.windows(key.len()).any(|w| w == key.as_bytes()));
        let revoked = store.revoke(info.id).unwrap();
        assert!(revoked.revoked_at.is_some());
        assert_eq!(store.authenticate(&key).unwrap(), None);
        assert!(matches!(store.revoke(info.id), Err(Error::NotFound(_))));
        assert!(matches!(store.revoke(99), Err(Error::NotFound(_))));
        assert_eq!(store.list().unwrap().len(), 1);
        let (_, admin) = store.create(Role::Admin, "first").unwrap();
        assert!(matches!(store.revoke(admin.id), Err(Error::Conflict(_))));
        let (_, second) = store.create(Role::Admin, "second").unwrap();
        store.revoke(admin.id).unwrap();
        assert!(matches!(store.revoke(second.id), Err(Error::Conflict(_))));
    }

    #[test]
    fn audit_records_past_the_retention_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccessStore::open_in(dir.path()).unwrap();
        let record = |summary: &str| AuditRecord {
            principal: PrincipalKind::Key,
            key_id: 1,
            key_name: "k".into(),
            role: Some(Role::Admin),
            method: "POST".into(),
            path: "/api/v1/keys".into(),
            status: 201,
            summary: summary.into(),
        };
        store.audit(&record("old")).unwrap();
        store.audit(&record("new")).unwrap();
        // Age the first record by a day.
        store
            .with_conn(|c| {
                c.execute(
                    "UPDATE audit SET at = at - 86400000 WHERE summary = 'old'",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.prune_audit(3_600_000).unwrap(), 1);
        let left = store.audit_log(None, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].record.summary, "new");
        assert_eq!(store.prune_audit(3_600_000).unwrap(), 0);
    }

    #[test]
    fn supplied_keys_must_be_long_and_printable_and_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccessStore::open_in(dir.path()).unwrap();
        assert!(store.insert("short", Role::Admin, "x").is_err());
        assert!(store.insert(&"é".repeat(40), Role::Admin, "x").is_err());
        let key = "k".repeat(32);
        store.insert(&key, Role::Admin, "bootstrap").unwrap();
        assert!(store.has_admin().unwrap());
        assert!(matches!(
            store.insert(&key, Role::Planner, "again"),
            Err(Error::Conflict(_))
        ));
        assert!(store.insert(&"j".repeat(32), Role::Admin, "").is_err());
        assert_eq!("planner".parse::<Role>().unwrap(), Role::Planner);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn the_audit_log_pages_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccessStore::open_in(dir.path()).unwrap();
        for i in 0..5 {
            store
                .audit(&AuditRecord {
                    principal: PrincipalKind::Key,
                    key_id: 1,
                    key_name: "a".into(),
                    role: Some(Role::Admin),
                    method: "POST".into(),
                    path: format!("/p/{i}"),
                    status: 201,
                    summary: "s".into(),
                })
                .unwrap();
        }
        let page = store.audit_log(None, 2).unwrap();
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [5, 4]);
        let page = store.audit_log(Some(4), 10).unwrap();
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 2, 1]);
    }
}
