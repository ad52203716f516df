//! The hot store's schema (version 1) and the upgrade of files from before versions.

use rusqlite::Connection;

use crate::sqlite::{has_column, Schema};
use crate::Result;

/// `hot.db`: see the module docs of [`super`].
pub(super) const HOT: Schema = Schema {
    file: super::HOT_DB,
    version: 1,
    create: &[SCHEMA],
    upgrade,
};

/// Upgrades a file from before versions (0): the registry's `batch` and `region`
/// columns and the `arrival` numbers, then the arrival indexes (a new file needs them
/// too: its version is 0 until this runs).
fn upgrade(conn: &Connection, _from: i64) -> Result<()> {
    migrate_device_columns(conn)?;
    let numbered = migrate_arrival(conn)?;
    if numbered > 0 {
        tracing::info!(
            rows = numbered,
            "Numbered the stored telemetry and faults in arrival order (once per hot store)"
        );
    }
    conn.execute_batch(ARRIVAL_INDEXES)?;
    Ok(())
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS devices (
    device_id     TEXT PRIMARY KEY,
    device_type   TEXT NOT NULL,
    model         TEXT NOT NULL,
    fw            TEXT,
    batch         TEXT,
    region        TEXT,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    last_event_ts INTEGER NOT NULL,
    messages      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS device_status (
    device_id TEXT PRIMARY KEY,
    online    INTEGER NOT NULL,
    status_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS telemetry (
    device_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    readings    TEXT NOT NULL,
    arrival     INTEGER,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS telemetry_by_time ON telemetry (device_id, ts);
CREATE TABLE IF NOT EXISTS faults (
    device_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    code        TEXT NOT NULL,
    state       TEXT NOT NULL,
    arrival     INTEGER,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS faults_by_time ON faults (device_id, ts);
CREATE TABLE IF NOT EXISTS dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at   INTEGER NOT NULL,
    topic         TEXT NOT NULL,
    device_id     TEXT,
    reason        TEXT NOT NULL,
    detail        TEXT NOT NULL,
    payload       BLOB NOT NULL,
    payload_bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (received_at);
"#;

/// Created after [`migrate_arrival`], which adds the column to a file from before it.
const ARRIVAL_INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS telemetry_by_arrival ON telemetry (arrival);
CREATE INDEX IF NOT EXISTS faults_by_arrival ON faults (arrival);
"#;

/// Adds `arrival` to the `telemetry` and `faults` tables of a hot store written before
/// the column existed, and numbers the stored rows in the order they arrived (receive
/// time, then event time and seq, as [`super::StoreReader::replay_since`] orders them).
/// Runs inside the upgrade's transaction; returns the rows numbered.
fn migrate_arrival(conn: &Connection) -> Result<u64> {
    let mut added = false;
    for table in ["telemetry", "faults"] {
        if !has_column(conn, table, "arrival")? {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN arrival INTEGER"))?;
            added = true;
        }
    }
    if !added {
        return Ok(0);
    }
    conn.execute_batch(
        "CREATE TEMP TABLE arrival_numbers (kind INTEGER, device_id TEXT, seq INTEGER, n INTEGER,
             PRIMARY KEY (kind, device_id, seq)) WITHOUT ROWID;
         INSERT INTO arrival_numbers
             SELECT kind, device_id, seq, ROW_NUMBER() OVER (ORDER BY received_at, ts, seq, kind)
             FROM (SELECT 0 AS kind, device_id, seq, ts, received_at FROM telemetry
                   UNION ALL SELECT 1, device_id, seq, ts, received_at FROM faults);
         UPDATE telemetry SET arrival = a.n FROM arrival_numbers a
             WHERE a.kind = 0 AND a.device_id = telemetry.device_id AND a.seq = telemetry.seq;
         UPDATE faults SET arrival = a.n FROM arrival_numbers a
             WHERE a.kind = 1 AND a.device_id = faults.device_id AND a.seq = faults.seq;",
    )?;
    let numbered: i64 = conn.query_row("SELECT COUNT(*) FROM arrival_numbers", [], |r| r.get(0))?;
    conn.execute_batch("DROP TABLE temp.arrival_numbers")?;
    Ok(numbered.max(0) as u64)
}

/// Adds the nullable `batch` and `region` columns to a `devices` table created before
/// devices reported them. Idempotent: a column already there is left alone.
fn migrate_device_columns(conn: &Connection) -> Result<()> {
    for column in ["batch", "region"] {
        if !has_column(conn, "devices", column)? {
            conn.execute_batch(&format!("ALTER TABLE devices ADD COLUMN {column} TEXT"))?;
        }
    }
    Ok(())
}

/// The newest `arrival` stored, 0 for none.
pub(super) fn newest_arrival(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(arrival) FROM telemetry), 0),
                    COALESCE((SELECT MAX(arrival) FROM faults), 0))",
        [],
        |r| r.get(0),
    )
}
