//! The one place that opens a SQLite file: open flags, the busy timeout, WAL and how
//! hard a commit syncs, schema versions and upgrades, a poison-tolerant lock, and
//! which engine errors mean "busy" or "constraint". Every store of this crate opens its
//! connections here, so they all behave alike.
//!
//! **Schema versions.** Each file records its schema version in `PRAGMA user_version`.
//! [`open`] with a [`Schema`] runs the schema's `create` batch (every table and index
//! as `CREATE ... IF NOT EXISTS`) on every read-write open, then, for a file older than
//! the binary, the schema's `upgrade` from the version found, in one immediate
//! transaction with the version bump, so two processes opening one old file upgrade it
//! once. A file whose version is newer than the binary knows is refused, read-write or
//! read-only, with [`Error::TooNew`]: an older binary must not write, or misread, a
//! schema it does not know.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How long a statement waits for another connection's write lock before it fails
/// as busy.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How hard SQLite syncs a commit to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged message survives a power cut.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a process crash (`kill -9`), not a power cut.
    Normal,
}

impl Synchronous {
    const fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// What a connection may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Creates the file (and its directory) if missing, WAL, the schema applied.
    ReadWrite(Synchronous),
    /// Opens an existing file read-only; writes fail.
    ReadOnly,
    /// Opens the file read-write without touching its schema, then refuses writes
    /// (`PRAGMA query_only`): a reader beside a writer connection of the same
    /// process, which shares its WAL index.
    QueryOnly,
}

/// A file's schema: what [`open`] creates and upgrades.
pub(crate) struct Schema {
    /// The file's conventional name, for messages (`tickets.db`).
    pub(crate) file: &'static str,
    /// The version this binary writes to `PRAGMA user_version`.
    pub(crate) version: i64,
    /// Run on every read-write open, in order: `CREATE ... IF NOT EXISTS` of what the
    /// current schema has and a file of any older version may lack.
    pub(crate) create: &'static [&'static str],
    /// Brings a file from the version found (0: new, or from before versions) to
    /// `version`, after `create`, inside the upgrade's transaction. Idempotent.
    pub(crate) upgrade: fn(&Connection, i64) -> Result<()>,
}

/// Opens `path` with `access` and `schema`: see the module docs.
pub(crate) fn open(path: &Path, access: Access, schema: &Schema) -> Result<Connection> {
    let flags = match access {
        Access::ReadWrite(_) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                    context: format!("creating {}", dir.display()),
                    source,
                })?;
            }
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        }
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        Access::QueryOnly => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    };
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    check_version(&conn, schema)?;
    if let Access::ReadWrite(synchronous) = access {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", synchronous.pragma())?;
        for batch in schema.create {
            conn.execute_batch(batch)?;
        }
        upgrade(&mut conn, schema)?;
    }
    if access == Access::QueryOnly {
        conn.pragma_update(None, "query_only", "ON")?;
    }
    Ok(conn)
}

/// The file's schema version (`PRAGMA user_version`).
pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Refuses a file written by a newer schema than `schema`.
fn check_version(conn: &Connection, schema: &Schema) -> Result<i64> {
    let found = user_version(conn)?;
    if found > schema.version {
        return Err(Error::TooNew {
            file: schema.file,
            found,
            supported: schema.version,
        });
    }
    Ok(found)
}

/// Runs `schema.upgrade` on a file older than `schema.version`, once, in one
/// immediate transaction that also records the new version.
fn upgrade(conn: &mut Connection, schema: &Schema) -> Result<()> {
    if user_version(conn)? == schema.version {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have upgraded the file while this one waited for the lock.
    let found = check_version(&tx, schema)?;
    if found < schema.version {
        (schema.upgrade)(&tx, found)?;
        tx.pragma_update(None, "user_version", schema.version)?;
    }
    tx.commit()?;
    Ok(())
}

/// Whether `table` has a column `column`.
pub(crate) fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        rusqlite::params![table, column],
        |r| r.get(0),
    )?)
}

/// Locks a connection. A panic while holding the lock cannot leave a transaction
/// half-applied (rusqlite rolls back an unfinished transaction on drop), so a
/// poisoned lock is still safe to use.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the engine refused a statement because another connection held the lock
/// for longer than [`BUSY_TIMEOUT`].
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Whether a statement broke a constraint (a unique index, most often).
pub(crate) fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: &Connection, _: i64) -> Result<()> {
        Ok(())
    }

    const V1: Schema = Schema {
        file: "test.db",
        version: 1,
        create: &["CREATE TABLE IF NOT EXISTS t (x INTEGER);"],
        upgrade: nothing,
    };

    #[test]
    fn a_new_file_gets_the_schema_and_its_version_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("test.db");
        let conn = open(&path, Access::ReadWrite(Synchronous::Normal), &V1).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        drop(conn);
        for access in [Access::ReadWrite(Synchronous::Full), Access::ReadOnly] {
            let err = open(&path, access, &V1).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::TooNew {
                        file: "test.db",
                        found: 2,
                        supported: 1
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains("newer"), "{err}");
        }
    }

    #[test]
    fn an_older_file_is_upgraded_once_from_the_version_it_had() {
        fn add_y(conn: &Connection, from: i64) -> Result<()> {
            assert_eq!(from, 1, "upgraded from the version found");
            conn.execute_batch("ALTER TABLE t ADD COLUMN y INTEGER")?;
            Ok(())
        }
        let v2 = Schema {
            version: 2,
            upgrade: add_y,
            ..V1
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        drop(open(&path, Access::ReadWrite(Synchronous::Normal), &V1).unwrap());
        let conn = open(&path, Access::ReadWrite(Synchronous::Normal), &v2).unwrap();
        assert!(has_column(&conn, "t", "y").unwrap());
        assert_eq!(user_version(&conn).unwrap(), 2);
        // Opening again runs no upgrade (add_y would fail on the existing column).
        drop(open(&path, Access::ReadWrite(Synchronous::Normal), &v2).unwrap());
        drop(open(&path, Access::ReadOnly, &v2).unwrap());
    }
}
