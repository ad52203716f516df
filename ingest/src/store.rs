//! The SQLite hot store.
//!
//! One writer ([`HotStore`], owned by the pipeline) and any number of readers
//! ([`StoreReader`], used by the API and by warm-up). WAL mode lets readers run while
//! the writer commits. Every batch is one transaction; the pipeline acknowledges a
//! batch's MQTT messages only after [`HotStore::commit`] returns.
//!
//! Tables (the API reads them through [`StoreReader`] only):
//! * `devices`: the registry, one row per device that sent a valid telemetry or fault
//!   message (type, model, firmware, production batch, region, first/last seen,
//!   message count). Firmware, batch and region keep their last reported value when a
//!   message leaves them out.
//! * `device_status`: the last online/offline status per device.
//! * `telemetry`, `faults`: primary key `(device_id, seq)`, so a redelivered message is
//!   stored once. `seq` is a u64 on the wire and is stored bit-cast into SQLite's i64.
//!   `arrival` numbers the rows of both tables together in commit order (1, 2, 3, ...
//!   without gaps, assigned by the single writer): the position the archive
//!   ([`crate::archive`]) keeps its cursor at ([`StoreReader::read_after`]). Receive
//!   times cannot serve: several commits share a millisecond, and the wall clock can
//!   step back.
//! * `dead_letters`: rejected messages with their topic, reason, detail and the first
//!   [`DEAD_LETTER_PAYLOAD_BYTES`] bytes of their payload. Bounded by
//!   [`DeadLetterRetention`]: the writer deletes the oldest rows beyond `max_rows` and
//!   those older than `max_age`. Retention never touches any other table.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::{
    DeviceId, FaultMessage, FaultState, Message, Rejection, StatusMessage, Telemetry, Timestamp,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::{Error, Result};

/// Payload bytes kept per dead letter; the full length is recorded beside it.
pub const DEAD_LETTER_PAYLOAD_BYTES: usize = 4096;

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
/// time, then event time and seq, as [`StoreReader::replay_since`] orders them). Runs
/// once per file, in one transaction; returns the rows numbered.
fn migrate_arrival(conn: &mut Connection) -> Result<u64> {
    let has_column = |conn: &Connection, table: &str| -> rusqlite::Result<bool> {
        let n: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = 'arrival'"),
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    };
    if has_column(conn, "telemetry")? && has_column(conn, "faults")? {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    for table in ["telemetry", "faults"] {
        if !has_column(&tx, table)? {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN arrival INTEGER"))?;
        }
    }
    tx.execute_batch(
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
    let numbered: i64 = tx.query_row("SELECT COUNT(*) FROM arrival_numbers", [], |r| r.get(0))?;
    tx.execute_batch("DROP TABLE temp.arrival_numbers")?;
    tx.commit()?;
    Ok(numbered.max(0) as u64)
}

/// Adds the nullable `batch` and `region` columns to a `devices` table created before
/// devices reported them. Idempotent: a column already there is left alone.
fn migrate_device_columns(conn: &Connection) -> Result<()> {
    for column in ["batch", "region"] {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('devices') WHERE name = ?1",
            [column],
            |r| r.get(0),
        )?;
        if n == 0 {
            conn.execute_batch(&format!("ALTER TABLE devices ADD COLUMN {column} TEXT"))?;
        }
    }
    Ok(())
}

/// The newest `arrival` stored, 0 for none.
fn newest_arrival(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(arrival) FROM telemetry), 0),
                    COALESCE((SELECT MAX(arrival) FROM faults), 0))",
        [],
        |r| r.get(0),
    )
}

/// Most dead letters one prune deletes beyond those added since the previous prune, so
/// a large backlog (a lowered `max_rows`, a long-stopped store) is worked off over a
/// few commits instead of stalling one. Each prune still deletes at least as many rows
/// as arrived since the previous one, so the table cannot outgrow the bound.
const PRUNE_CHUNK: u64 = 10_000;

/// Bounds on the `dead_letters` table, enforced by the writer ([`HotStore`]).
///
/// Dead letters are evidence for debugging devices, not data: they may be deleted. The
/// counters of rejections (`fixahead_ingest_dead_letters_total`) count events and are
/// not affected by what retention deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadLetterRetention {
    /// Most rows kept: beyond it, the oldest (lowest ids) are deleted.
    pub max_rows: u64,
    /// Rows received more than this many milliseconds before the newest receive time
    /// the store has committed (the wall clock, as long as messages arrive) are deleted.
    pub max_age_ms: i64,
    /// Least time between two prunes. Between prunes the table can exceed `max_rows`
    /// by the dead letters that arrived meanwhile.
    pub interval: Duration,
}

impl DeadLetterRetention {
    /// Default `max_rows`.
    pub const DEFAULT_MAX_ROWS: u64 = 100_000;
    /// Default `max_age_ms`: 30 days.
    pub const DEFAULT_MAX_AGE_MS: i64 = 30 * Timestamp::DAY_MS;
    /// Default `interval`.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
}

impl Default for DeadLetterRetention {
    fn default() -> Self {
        Self {
            max_rows: Self::DEFAULT_MAX_ROWS,
            max_age_ms: Self::DEFAULT_MAX_AGE_MS,
            interval: Self::DEFAULT_INTERVAL,
        }
    }
}

/// How hard SQLite syncs a commit to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged message survives a power cut.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a process crash (`kill -9`), not a power cut.
    Normal,
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// One item of a batch to commit.
#[derive(Debug)]
pub enum StoreItem<'a> {
    /// A valid message.
    Message {
        /// The decoded message.
        message: &'a Message,
        /// Wall-clock receive time.
        received_at: Timestamp,
    },
    /// A rejected message.
    DeadLetter {
        /// Topic it arrived on.
        topic: &'a str,
        /// Raw payload (truncated to [`DEAD_LETTER_PAYLOAD_BYTES`] when stored).
        payload: &'a [u8],
        /// Why it was rejected.
        rejection: &'a Rejection,
        /// Wall-clock receive time.
        received_at: Timestamp,
    },
}

/// What happened to one item of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Newly stored.
    Stored,
    /// `(device_id, seq)` was already stored: a redelivery.
    Duplicate,
    /// Stored as a dead letter.
    DeadLettered,
}

/// The hot store's single writer.
pub struct HotStore {
    conn: Connection,
    retention: DeadLetterRetention,
    /// The newest receive time committed: the clock `max_age` is measured against.
    clock: Option<Timestamp>,
    /// Dead letters committed since the last prune.
    added_since_prune: u64,
    /// A prune is wanted at the next chance: set at open (the bounds may have shrunk
    /// since the last run) and after a failed prune.
    prune_due: bool,
    /// The last prune stopped at its cap with rows still to delete: prune again after
    /// the next commit, without waiting for the interval.
    backlog: bool,
    /// When (store clock, ms) the oldest dead letter passes `max_age`.
    next_expiry: Option<i64>,
    last_prune: Option<Instant>,
    /// Rows pruned and not yet taken by [`HotStore::take_pruned`].
    pruned: u64,
    /// The `arrival` of the newest stored telemetry or fault row.
    last_arrival: i64,
}

impl HotStore {
    /// Opens (creating if needed) the hot store file in WAL mode.
    pub fn open(path: &Path, synchronous: Synchronous) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                context: format!("creating {}", dir.display()),
                source,
            })?;
        }
        let conn = open_connection(path, false)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match synchronous {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
            },
        )?;
        conn.execute_batch(SCHEMA)?;
        migrate_device_columns(&conn)?;
        let mut conn = conn;
        let numbered = migrate_arrival(&mut conn)?;
        if numbered > 0 {
            tracing::info!(
                rows = numbered,
                "Numbered the stored telemetry and faults in arrival order (once per hot store)"
            );
        }
        conn.execute_batch(ARRIVAL_INDEXES)?;
        let last_arrival = newest_arrival(&conn)?;
        Ok(Self {
            conn,
            retention: DeadLetterRetention::default(),
            clock: None,
            added_since_prune: 0,
            prune_due: true,
            backlog: false,
            next_expiry: None,
            last_prune: None,
            pruned: 0,
            last_arrival,
        })
    }

    /// Replaces the dead-letter bounds (default: [`DeadLetterRetention::default`]). They
    /// are applied after the next commit.
    pub fn with_dead_letter_retention(mut self, retention: DeadLetterRetention) -> Self {
        self.retention = retention;
        self.prune_due = true;
        self
    }

    /// Dead-letter rows deleted by retention since the last call.
    pub fn take_pruned(&mut self) -> u64 {
        std::mem::take(&mut self.pruned)
    }

    /// Commits a batch in one transaction and reports what happened to each item,
    /// in order. On error nothing of the batch is stored.
    ///
    /// After the commit, and at most once per [`DeadLetterRetention::interval`], it
    /// prunes the dead letters in a second transaction if the batch added some, the
    /// oldest has aged out, or the store was just opened. A failed prune is logged and
    /// retried later; it never fails the commit, which is already durable.
    pub fn commit(&mut self, items: &[StoreItem<'_>]) -> Result<Vec<Outcome>> {
        let tx = self.conn.transaction()?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut dead_letters = 0u64;
        let mut newest: Option<Timestamp> = None;
        // Taken only by rows actually inserted, and kept only if the commit succeeds:
        // arrivals stay gapless and in commit order.
        let mut arrival = self.last_arrival;
        {
            let mut ins_tel = tx.prepare_cached(
                "INSERT OR IGNORE INTO telemetry (device_id, seq, ts, received_at, readings, arrival) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut ins_fault = tx.prepare_cached(
                "INSERT OR IGNORE INTO faults (device_id, seq, ts, received_at, code, state, arrival) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut upsert_device = tx.prepare_cached(
                "INSERT INTO devices (device_id, device_type, model, fw, batch, region, first_seen, last_seen, last_event_ts, messages)
                 VALUES (?1, ?2, ?3, ?4, ?7, ?8, ?5, ?5, ?6, 1)
                 ON CONFLICT (device_id) DO UPDATE SET
                     device_type = excluded.device_type,
                     model = excluded.model,
                     fw = COALESCE(excluded.fw, devices.fw),
                     batch = COALESCE(excluded.batch, devices.batch),
                     region = COALESCE(excluded.region, devices.region),
                     last_seen = MAX(devices.last_seen, excluded.last_seen),
                     last_event_ts = MAX(devices.last_event_ts, excluded.last_event_ts),
                     messages = devices.messages + 1",
            )?;
            let mut upsert_status = tx.prepare_cached(
                "INSERT INTO device_status (device_id, online, status_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, status_at = excluded.status_at
                 WHERE excluded.status_at >= device_status.status_at",
            )?;
            let mut ins_dead = tx.prepare_cached(
                "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload, payload_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut readings_json = String::with_capacity(256);
            for item in items {
                let outcome = match item {
                    StoreItem::Message {
                        message: Message::Telemetry(t),
                        received_at,
                    } => {
                        write_readings(&mut readings_json, t);
                        let n = ins_tel.execute(params![
                            t.device_id.as_str(),
                            t.seq as i64,
                            t.ts.millis(),
                            received_at.millis(),
                            readings_json,
                            arrival + 1
                        ])?;
                        if n == 1 {
                            arrival += 1;
                            upsert_device.execute(params![
                                t.device_id.as_str(),
                                t.device_type,
                                t.model,
                                t.fw,
                                received_at.millis(),
                                t.ts.millis(),
                                t.batch,
                                t.region
                            ])?;
                            Outcome::Stored
                        } else {
                            Outcome::Duplicate
                        }
                    }
                    StoreItem::Message {
                        message: Message::Fault(f),
                        received_at,
                    } => {
                        let FaultMessage {
                            device_id,
                            ts,
                            seq,
                            device_type,
                            model,
                            fw,
                            batch,
                            region,
                            code,
                            state,
                        } = f;
                        let n = ins_fault.execute(params![
                            device_id.as_str(),
                            *seq as i64,
                            ts.millis(),
                            received_at.millis(),
                            code,
                            state.as_str(),
                            arrival + 1
                        ])?;
                        if n == 1 {
                            arrival += 1;
                            upsert_device.execute(params![
                                device_id.as_str(),
                                device_type,
                                model,
                                fw,
                                received_at.millis(),
                                ts.millis(),
                                batch,
                                region
                            ])?;
                            Outcome::Stored
                        } else {
                            Outcome::Duplicate
                        }
                    }
                    StoreItem::Message {
                        message:
                            Message::Status(StatusMessage {
                                device_id,
                                online,
                                ts,
                            }),
                        received_at,
                    } => {
                        let at = ts.unwrap_or(*received_at);
                        upsert_status.execute(params![device_id.as_str(), *online, at.millis()])?;
                        Outcome::Stored
                    }
                    // Commands are fixahead's own echo; results go on to the command
                    // store (tickets.db) downstream. Neither is kept here.
                    StoreItem::Message {
                        message: Message::Command(_) | Message::CommandResult(_),
                        ..
                    } => Outcome::Stored,
                    StoreItem::DeadLetter {
                        topic,
                        payload,
                        rejection,
                        received_at,
                    } => {
                        let kept = &payload[..payload.len().min(DEAD_LETTER_PAYLOAD_BYTES)];
                        let topic: String = topic.chars().take(256).collect();
                        ins_dead.execute(params![
                            received_at.millis(),
                            topic,
                            rejection.device_id.as_ref().map(|d| d.as_str()),
                            rejection.reason.as_str(),
                            rejection.detail,
                            kept,
                            payload.len() as i64
                        ])?;
                        dead_letters += 1;
                        Outcome::DeadLettered
                    }
                };
                let (StoreItem::Message { received_at, .. }
                | StoreItem::DeadLetter { received_at, .. }) = item;
                newest = newest.max(Some(*received_at));
                outcomes.push(outcome);
            }
        }
        tx.commit()?;
        self.last_arrival = arrival;
        self.clock = self.clock.max(newest);
        self.added_since_prune += dead_letters;
        self.prune_if_due();
        Ok(outcomes)
    }

    fn prune_if_due(&mut self) {
        let Some(now) = self.clock else {
            return;
        };
        let aged = self.next_expiry.is_some_and(|t| t <= now.millis());
        if !(self.prune_due || self.backlog || aged || self.added_since_prune > 0) {
            return;
        }
        if !self.backlog
            && self
                .last_prune
                .is_some_and(|t| t.elapsed() < self.retention.interval)
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        if let Err(e) = self.prune_dead_letters(now) {
            self.prune_due = true;
            self.backlog = false;
            tracing::warn!(error = %e, "Pruning dead letters failed; retrying after a later commit");
        }
    }

    /// Deletes the dead letters received more than `max_age` before `now`, then the
    /// oldest (by id) beyond `max_rows`, in one transaction, and returns how many. At
    /// most 10,000 rows more than were added since the previous prune go at
    /// once; the rest go after the next commits. Only `dead_letters` rows are deleted.
    pub fn prune_dead_letters(&mut self, now: Timestamp) -> Result<u64> {
        let budget = PRUNE_CHUNK.saturating_add(self.added_since_prune);
        let cutoff = now.millis().saturating_sub(self.retention.max_age_ms);
        let max_rows = i64::try_from(self.retention.max_rows).unwrap_or(i64::MAX);
        let tx = self.conn.transaction()?;
        let aged = tx.execute(
            "DELETE FROM dead_letters WHERE id IN
                 (SELECT id FROM dead_letters WHERE received_at < ?1 LIMIT ?2)",
            params![cutoff, to_sql_count(budget)],
        )? as u64;
        let rows: i64 = tx.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?;
        let excess = rows.saturating_sub(max_rows).max(0) as u64;
        let trim = excess.min(budget - aged);
        let trimmed = if trim > 0 {
            tx.execute(
                "DELETE FROM dead_letters WHERE id IN
                     (SELECT id FROM dead_letters ORDER BY id LIMIT ?1)",
                params![to_sql_count(trim)],
            )? as u64
        } else {
            0
        };
        let oldest: Option<i64> =
            tx.query_row("SELECT MIN(received_at) FROM dead_letters", [], |r| {
                r.get(0)
            })?;
        tx.commit()?;
        self.next_expiry = oldest.map(|t| t.saturating_add(self.retention.max_age_ms));
        self.backlog = aged == budget || trim < excess;
        self.prune_due = false;
        self.added_since_prune = 0;
        let pruned = aged + trimmed;
        self.pruned += pruned;
        if pruned > 0 {
            tracing::debug!(
                pruned,
                aged,
                over_max_rows = trimmed,
                backlog = self.backlog,
                "Dead letters pruned"
            );
        }
        Ok(pruned)
    }
}

fn to_sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn write_readings(out: &mut String, t: &Telemetry) {
    use std::fmt::Write as _;
    out.clear();
    out.push('{');
    for (i, (name, value)) in t.readings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Channel names were checked to be at most 64 bytes; serde_json escapes them.
        let _ = write!(
            out,
            "{}:{}",
            serde_json::Value::String(name.clone()),
            serde_json::Value::from(*value)
        );
    }
    out.push('}');
}

/// A registered device, as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceRecord {
    /// Device id.
    pub device_id: String,
    /// Device type (profile).
    #[serde(rename = "type")]
    pub device_type: String,
    /// Product model.
    pub model: String,
    /// Latest firmware reported.
    pub fw: Option<String>,
    /// Latest production batch reported.
    pub batch: Option<String>,
    /// Latest region reported.
    pub region: Option<String>,
    /// Wall-clock time of the first stored message.
    pub first_seen: Timestamp,
    /// Wall-clock time of the latest stored message.
    pub last_seen: Timestamp,
    /// Latest event time the device reported.
    pub last_event_ts: Timestamp,
    /// Messages stored.
    pub messages: u64,
    /// Last online/offline status, if the device published one.
    pub online: Option<bool>,
    /// When that status was set.
    pub status_at: Option<Timestamp>,
}

/// One stored telemetry message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TelemetryRecord {
    /// Device id.
    pub device_id: String,
    /// Device sequence number.
    pub seq: u64,
    /// Event time.
    pub ts: Timestamp,
    /// Wall-clock receive time.
    pub received_at: Timestamp,
    /// Readings by channel.
    pub readings: BTreeMap<String, f64>,
}

/// One stored fault message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultRecord {
    /// Device id.
    pub device_id: String,
    /// Device sequence number.
    pub seq: u64,
    /// Event time.
    pub ts: Timestamp,
    /// Wall-clock receive time.
    pub received_at: Timestamp,
    /// Fault code.
    pub code: String,
    /// `raised` or `cleared`.
    pub state: String,
}

/// One dead letter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadLetterRecord {
    /// Store id (increasing).
    pub id: i64,
    /// Wall-clock receive time.
    pub received_at: Timestamp,
    /// Topic it arrived on.
    pub topic: String,
    /// Device id, when the topic named a valid one.
    pub device_id: Option<String>,
    /// Stable reason code (see docs/protocol.md).
    pub reason: String,
    /// What exactly was wrong.
    pub detail: String,
    /// The stored payload prefix, as UTF-8 (invalid bytes replaced).
    pub payload: String,
    /// Full payload length in bytes.
    pub payload_bytes: u64,
    /// Whether `payload` is only a prefix.
    pub truncated: bool,
}

/// Stored telemetry and faults after an arrival position, for the archive
/// ([`StoreReader::read_after`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ArrivalPage {
    /// The messages, in arrival (commit) order, each with its `arrival`. Type, model and
    /// firmware are the device's current ones from the registry.
    pub messages: Vec<(i64, Message)>,
    /// The position after this page: the `arrival` of its last row (a row that could
    /// not be decoded is skipped but still passed), or the `after` asked for if empty.
    pub through: i64,
    /// The newest `arrival` stored when the page was read (0: none), so
    /// `newest - through` rows are left after it.
    pub newest: i64,
}

/// Row counts, for health and metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreCounts {
    /// Registered devices.
    pub devices: u64,
    /// Stored telemetry messages.
    pub telemetry: u64,
    /// Stored fault messages.
    pub faults: u64,
    /// Dead letters.
    pub dead_letters: u64,
}

/// Read access to the hot store. Cheap to clone; blocking (call from
/// `spawn_blocking` in async code).
#[derive(Clone)]
pub struct StoreReader {
    conn: Arc<Mutex<Connection>>,
}

impl StoreReader {
    /// Opens a read-only connection. The writer must have created the file.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = open_connection(path, true)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| Error::Task("store reader lock poisoned".into()))?;
        Ok(f(&conn)?)
    }

    /// Devices ordered by id, after `after` (cursor), optionally of one type.
    pub fn list_devices(
        &self,
        device_type: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "{DEVICE_SELECT} WHERE (?1 IS NULL OR d.device_type = ?1) AND (?2 IS NULL OR d.device_id > ?2)
                 ORDER BY d.device_id LIMIT ?3"
            ))?;
            let rows = st.query_map(params![device_type, after, limit as i64], device_row)?;
            rows.collect()
        })
    }

    /// Every device that reported a region, with its latest region (for the model
    /// performance report, which groups tickets by the device's region).
    pub fn device_regions(&self) -> Result<std::collections::HashMap<String, String>> {
        self.with(|c| {
            let mut st =
                c.prepare_cached("SELECT device_id, region FROM devices WHERE region IS NOT NULL")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// One device.
    pub fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>> {
        self.with(|c| {
            c.prepare_cached(&format!("{DEVICE_SELECT} WHERE d.device_id = ?1"))?
                .query_row(params![device_id], device_row)
                .optional()
        })
    }

    /// Telemetry of a device with `from <= ts < to`, oldest first, at most `limit` rows.
    pub fn telemetry(
        &self,
        device_id: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<TelemetryRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT device_id, seq, ts, received_at, readings FROM telemetry
                 WHERE device_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts, seq LIMIT ?4",
            )?;
            let rows = st.query_map(
                params![
                    device_id,
                    from.map_or(i64::MIN, Timestamp::millis),
                    to.map_or(i64::MAX, Timestamp::millis),
                    limit as i64
                ],
                telemetry_row,
            )?;
            rows.collect()
        })
    }

    /// The latest telemetry message of a device (by event time).
    pub fn latest_telemetry(&self, device_id: &str) -> Result<Option<TelemetryRecord>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT device_id, seq, ts, received_at, readings FROM telemetry
                 WHERE device_id = ?1 ORDER BY ts DESC, seq DESC LIMIT 1",
            )?
            .query_row(params![device_id], telemetry_row)
            .optional()
        })
    }

    /// The latest value of every channel a device reported, with its event time: a
    /// message may carry a subset of channels, so this looks back until each channel
    /// has been seen (bounded to the last `lookback` messages).
    pub fn latest_readings(
        &self,
        device_id: &str,
        lookback: usize,
    ) -> Result<BTreeMap<String, (f64, Timestamp)>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT device_id, seq, ts, received_at, readings FROM telemetry
                 WHERE device_id = ?1 ORDER BY ts DESC, seq DESC LIMIT ?2",
            )?;
            let mut latest = BTreeMap::new();
            for row in st.query_map(params![device_id, lookback as i64], telemetry_row)? {
                let row = row?;
                for (name, value) in row.readings {
                    latest.entry(name).or_insert((value, row.ts));
                }
            }
            Ok(latest)
        })
    }

    /// The newest faults of a device, newest first.
    pub fn recent_faults(&self, device_id: &str, limit: usize) -> Result<Vec<FaultRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT device_id, seq, ts, received_at, code, state FROM faults
                 WHERE device_id = ?1 ORDER BY ts DESC, seq DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![device_id, limit as i64], fault_row)?;
            rows.collect()
        })
    }

    /// Dead letters, newest first, with ids below `before` (cursor).
    pub fn dead_letters(&self, before: Option<i64>, limit: usize) -> Result<Vec<DeadLetterRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, received_at, topic, device_id, reason, detail, payload, payload_bytes
                 FROM dead_letters WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![before.unwrap_or(i64::MAX), limit as i64], |r| {
                let payload: Vec<u8> = r.get(6)?;
                let payload_bytes: i64 = r.get(7)?;
                Ok(DeadLetterRecord {
                    id: r.get(0)?,
                    received_at: Timestamp(r.get(1)?),
                    topic: r.get(2)?,
                    device_id: r.get(3)?,
                    reason: r.get(4)?,
                    detail: r.get(5)?,
                    truncated: (payload.len() as i64) < payload_bytes,
                    payload: String::from_utf8_lossy(&payload).into_owned(),
                    payload_bytes: payload_bytes.max(0) as u64,
                })
            })?;
            rows.collect()
        })
    }

    /// Row counts.
    pub fn counts(&self) -> Result<StoreCounts> {
        self.with(|c| {
            let count = |table: &str| -> rusqlite::Result<u64> {
                c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n.max(0) as u64)
            };
            Ok(StoreCounts {
                devices: count("devices")?,
                telemetry: count("telemetry")?,
                faults: count("faults")?,
                dead_letters: count("dead_letters")?,
            })
        })
    }

    /// The newest receive time of any stored message, if any device is registered.
    pub fn newest_received_at(&self) -> Result<Option<Timestamp>> {
        self.with(|c| {
            c.query_row("SELECT MAX(last_seen) FROM devices", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|v| v.map(Timestamp))
        })
    }

    /// Every stored telemetry and fault message received at or after `since`, as the
    /// messages they were decoded from, in the order they arrived (then event time and
    /// seq), passed to `f` one at a time. Used to rebuild feature state after a
    /// restart: arrival order is the order the live pipeline applied them in, so a
    /// message that arrived late is late again. The device's current type, model and
    /// firmware, batch and region from the registry stand in for the original payload's.
    pub fn replay_since(&self, since: Timestamp, mut f: impl FnMut(Message)) -> Result<u64> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT 0, t.device_id, t.seq, t.ts, t.readings, NULL, NULL, d.device_type, d.model, d.fw, t.received_at,
                        d.batch, d.region
                   FROM telemetry t JOIN devices d ON d.device_id = t.device_id WHERE t.received_at >= ?1
                 UNION ALL
                 SELECT 1, f.device_id, f.seq, f.ts, NULL, f.code, f.state, d.device_type, d.model, d.fw, f.received_at,
                        d.batch, d.region
                   FROM faults f JOIN devices d ON d.device_id = f.device_id WHERE f.received_at >= ?1
                 ORDER BY 11, 4, 3",
            )?;
            let mut rows = st.query(params![since.millis()])?;
            let mut n = 0;
            while let Some(r) = rows.next()? {
                if let Some(message) = message_row(r)? {
                    f(message);
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    /// The newest `arrival` of a stored telemetry or fault row (0: none).
    pub fn newest_arrival(&self) -> Result<i64> {
        self.with(newest_arrival)
    }

    /// Up to `limit` stored telemetry and fault messages with `arrival > after`, in
    /// arrival order: the order they were committed in, which is the order they
    /// arrived. Read in one snapshot, so a page never holds a later commit's row
    /// without an earlier one's. The archive tails the store with it.
    pub fn read_after(&self, after: i64, limit: usize) -> Result<ArrivalPage> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let mut rows: Vec<(i64, Option<Message>)> = Vec::new();
            for sql in [
                "SELECT 0, t.device_id, t.seq, t.ts, t.readings, NULL, NULL,
                        COALESCE(d.device_type, ''), COALESCE(d.model, ''), d.fw, t.arrival,
                        d.batch, d.region
                   FROM telemetry t LEFT JOIN devices d ON d.device_id = t.device_id
                  WHERE t.arrival > ?1 ORDER BY t.arrival LIMIT ?2",
                "SELECT 1, f.device_id, f.seq, f.ts, NULL, f.code, f.state,
                        COALESCE(d.device_type, ''), COALESCE(d.model, ''), d.fw, f.arrival,
                        d.batch, d.region
                   FROM faults f LEFT JOIN devices d ON d.device_id = f.device_id
                  WHERE f.arrival > ?1 ORDER BY f.arrival LIMIT ?2",
            ] {
                let mut st = tx.prepare_cached(sql)?;
                let mut q = st.query(params![after, to_sql_count(limit as u64)])?;
                while let Some(r) = q.next()? {
                    rows.push((r.get(10)?, message_row(r)?));
                }
            }
            let newest = newest_arrival(&tx)?;
            tx.finish()?;
            // Each table's first `limit` rows hold the first `limit` of both together.
            rows.sort_unstable_by_key(|(arrival, _)| *arrival);
            rows.truncate(limit);
            let through = rows.last().map_or(after, |(arrival, _)| *arrival);
            Ok(ArrivalPage {
                messages: rows
                    .into_iter()
                    .filter_map(|(arrival, m)| m.map(|m| (arrival, m)))
                    .collect(),
                through,
                newest,
            })
        })
    }
}

/// Decodes a row of `kind (0 telemetry, 1 fault), device_id, seq, ts, readings, code,
/// state, device_type, model, fw, (any), batch, region` back into the message it was
/// stored from. `None` for
/// a device id that no longer parses (ids were validated before they were stored, so
/// only a file edited by hand has one).
fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Message>> {
    let id: String = r.get(1)?;
    let Ok(device_id) = DeviceId::parse(&id) else {
        return Ok(None);
    };
    let seq = r.get::<_, i64>(2)? as u64;
    let ts = Timestamp(r.get(3)?);
    let (device_type, model, fw): (String, String, Option<String>) =
        (r.get(7)?, r.get(8)?, r.get(9)?);
    let (batch, region): (Option<String>, Option<String>) = (r.get(11)?, r.get(12)?);
    Ok(Some(if r.get::<_, i64>(0)? == 0 {
        let text: String = r.get(4)?;
        Message::Telemetry(Telemetry {
            device_id,
            ts,
            seq,
            device_type,
            model,
            fw,
            batch,
            region,
            readings: parse_readings(&text)?.into_iter().collect(),
        })
    } else {
        let state: String = r.get(6)?;
        Message::Fault(FaultMessage {
            device_id,
            ts,
            seq,
            device_type,
            model,
            fw,
            batch,
            region,
            code: r.get(5)?,
            state: if state == "cleared" {
                FaultState::Cleared
            } else {
                FaultState::Raised
            },
        })
    }))
}

const DEVICE_SELECT: &str =
    "SELECT d.device_id, d.device_type, d.model, d.fw, d.first_seen, d.last_seen,
        d.last_event_ts, d.messages, s.online, s.status_at, d.batch, d.region
     FROM devices d LEFT JOIN device_status s ON s.device_id = d.device_id";

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        device_id: r.get(0)?,
        device_type: r.get(1)?,
        model: r.get(2)?,
        fw: r.get(3)?,
        batch: r.get(10)?,
        region: r.get(11)?,
        first_seen: Timestamp(r.get(4)?),
        last_seen: Timestamp(r.get(5)?),
        last_event_ts: Timestamp(r.get(6)?),
        messages: r.get::<_, i64>(7)?.max(0) as u64,
        online: r.get(8)?,
        status_at: r.get::<_, Option<i64>>(9)?.map(Timestamp),
    })
}

fn parse_readings(text: &str) -> rusqlite::Result<BTreeMap<String, f64>> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn telemetry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TelemetryRecord> {
    let text: String = r.get(4)?;
    Ok(TelemetryRecord {
        device_id: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        ts: Timestamp(r.get(2)?),
        received_at: Timestamp(r.get(3)?),
        readings: parse_readings(&text)?,
    })
}

fn fault_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FaultRecord> {
    Ok(FaultRecord {
        device_id: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        ts: Timestamp(r.get(2)?),
        received_at: Timestamp(r.get(3)?),
        code: r.get(4)?,
        state: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{decode, ProfileSet};

    fn msg(seq: u64, vib: f64) -> Message {
        let p = format!(
            r#"{{"ts": {}, "seq": {seq}, "type": "washer", "model": "WM-500", "fw": "1.0", "readings": {{"vibration_g": {vib}, "x_new": 1}}}}"#,
            1_795_500_000_000i64 + seq as i64 * 1000
        );
        decode(
            "fixahead/v1/wm-1/telemetry",
            p.as_bytes(),
            &ProfileSet::builtin(),
        )
        .unwrap()
    }

    #[test]
    fn stores_once_and_registers_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
        let (a, b) = (msg(1, 0.1), msg(2, 0.2));
        let now = Timestamp(1);
        let items = [
            StoreItem::Message {
                message: &a,
                received_at: now,
            },
            StoreItem::Message {
                message: &b,
                received_at: now,
            },
            StoreItem::Message {
                message: &a,
                received_at: now,
            },
        ];
        let out = store.commit(&items).unwrap();
        assert_eq!(
            out,
            vec![Outcome::Stored, Outcome::Stored, Outcome::Duplicate]
        );
        let reader = StoreReader::open(&path).unwrap();
        let dev = reader.device("wm-1").unwrap().unwrap();
        assert_eq!(dev.messages, 2);
        assert_eq!(dev.fw.as_deref(), Some("1.0"));
        let tel = reader.telemetry("wm-1", None, None, 10).unwrap();
        assert_eq!(tel.len(), 2);
        assert_eq!(tel[1].readings["vibration_g"], 0.2);
        assert_eq!(tel[1].readings["x_new"], 1.0);
        assert_eq!(reader.counts().unwrap().telemetry, 2);
    }

    #[test]
    fn batch_and_region_are_registered_and_kept_when_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
        let telemetry = |seq: u64, extra: &str| {
            let p = format!(
                r#"{{"ts": {seq}, "seq": {seq}, "type": "washer", "model": "WM-500"{extra}, "readings": {{"vibration_g": 0.1}}}}"#
            );
            decode(
                "fixahead/v1/wm-1/telemetry",
                p.as_bytes(),
                &ProfileSet::builtin(),
            )
            .unwrap()
        };
        let reader = StoreReader::open(&path).unwrap();
        let registered = |reader: &StoreReader| {
            let d = reader.device("wm-1").unwrap().unwrap();
            (d.batch, d.region)
        };
        let first = telemetry(1, r#", "batch": "B2025-07", "region": "north""#);
        store.commit(&[item(&first)]).unwrap();
        assert_eq!(
            registered(&reader),
            (Some("B2025-07".into()), Some("north".into()))
        );
        // An old firmware that sends neither keeps what the registry knows.
        let bare = telemetry(2, "");
        store.commit(&[item(&bare)]).unwrap();
        assert_eq!(
            registered(&reader),
            (Some("B2025-07".into()), Some("north".into()))
        );
        let moved = telemetry(3, r#", "region": "south""#);
        store.commit(&[item(&moved)]).unwrap();
        assert_eq!(
            registered(&reader),
            (Some("B2025-07".into()), Some("south".into()))
        );
        let mut replayed = Vec::new();
        reader
            .replay_since(Timestamp(0), |m| {
                if let Message::Telemetry(t) = m {
                    replayed.push((t.batch, t.region));
                }
            })
            .unwrap();
        assert_eq!(replayed.len(), 3);
        assert!(replayed
            .iter()
            .all(|r| *r == (Some("B2025-07".into()), Some("south".into()))));
    }

    #[test]
    fn replay_gives_back_the_stored_messages_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
        let late = msg(1, 0.1); // seq 1 has the earliest event time but arrives last
        let newer = msg(3, 0.3);
        let fault = decode(
            "fixahead/v1/wm-1/fault",
            br#"{"ts": 1795500002000, "seq": 2, "type": "washer", "model": "WM-500", "fw": "1.0", "code": "E21", "state": "raised"}"#,
            &ProfileSet::builtin(),
        )
        .unwrap();
        store
            .commit(&[
                StoreItem::Message {
                    message: &newer,
                    received_at: Timestamp(10),
                },
                StoreItem::Message {
                    message: &fault,
                    received_at: Timestamp(10),
                },
                StoreItem::Message {
                    message: &late,
                    received_at: Timestamp(11),
                },
            ])
            .unwrap();
        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(reader.newest_received_at().unwrap(), Some(Timestamp(11)));
        let mut replayed = Vec::new();
        let n = reader
            .replay_since(Timestamp(0), |m| replayed.push(m))
            .unwrap();
        assert_eq!(n, 3);
        let seqs: Vec<u64> = replayed
            .iter()
            .map(|m| match m {
                Message::Telemetry(t) => t.seq,
                Message::Fault(f) => f.seq,
                Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => 0,
            })
            .collect();
        // Arrival order: the late seq 1 comes last, as it did live (messages received at
        // the same instant keep event-time order).
        assert_eq!(seqs, vec![2, 3, 1]);
        assert_eq!(replayed[0], fault);
        let Message::Telemetry(t) = &replayed[1] else {
            panic!("telemetry")
        };
        assert_eq!(
            t.readings
                .iter()
                .find(|(k, _)| k == "vibration_g")
                .map(|(_, v)| *v),
            Some(0.3)
        );
        assert_eq!(t.fw.as_deref(), Some("1.0"));
    }

    fn fault(seq: u64) -> Message {
        let p = format!(
            r#"{{"ts": {}, "seq": {seq}, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}}"#,
            1_795_500_000_000i64 + seq as i64 * 1000
        );
        decode(
            "fixahead/v1/wm-1/fault",
            p.as_bytes(),
            &ProfileSet::builtin(),
        )
        .unwrap()
    }

    fn seq_of(m: &Message) -> u64 {
        match m {
            Message::Telemetry(t) => t.seq,
            Message::Fault(f) => f.seq,
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => {
                unreachable!("never archived")
            }
        }
    }

    fn item(message: &Message) -> StoreItem<'_> {
        StoreItem::Message {
            message,
            received_at: Timestamp(1),
        }
    }

    #[test]
    fn arrivals_number_stored_rows_in_commit_order_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
        let (t1, f2, t3, f4) = (msg(1, 0.1), fault(2), msg(3, 0.3), fault(4));
        let (payload, rej) = bad_payload();
        // Duplicates and dead letters take no number; a failed commit keeps none.
        store
            .commit(&[
                item(&t1),
                item(&f2),
                item(&t1),
                dead_letter(payload, &rej, 1),
            ])
            .unwrap();
        store.conn.execute_batch("CREATE TRIGGER fail BEFORE INSERT ON faults BEGIN SELECT RAISE(ABORT, 'disk full'); END").unwrap();
        assert!(store.commit(&[item(&t3), item(&f4)]).is_err());
        store.conn.execute_batch("DROP TRIGGER fail").unwrap();
        store.commit(&[item(&f4), item(&f2), item(&t3)]).unwrap();

        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(reader.newest_arrival().unwrap(), 4);
        let page = reader.read_after(0, 100).unwrap();
        let got: Vec<(i64, u64)> = page.messages.iter().map(|(a, m)| (*a, seq_of(m))).collect();
        assert_eq!(got, vec![(1, 1), (2, 2), (3, 4), (4, 3)]);
        assert_eq!((page.through, page.newest), (4, 4));
        let Message::Fault(mut want) = f4.clone() else {
            unreachable!()
        };
        want.fw = Some("1.0".into()); // the registry's, as in replay_since
        assert_eq!(page.messages[2].1, Message::Fault(want));

        // Pages: the first `limit` rows of both tables together.
        let page = reader.read_after(1, 2).unwrap();
        let got: Vec<i64> = page.messages.iter().map(|(a, _)| *a).collect();
        assert_eq!((got, page.through, page.newest), (vec![2, 3], 3, 4));
        let page = reader.read_after(4, 2).unwrap();
        assert!(page.messages.is_empty());
        assert_eq!(page.through, 4, "an empty page stays where it was asked");

        // Reopening continues the numbering.
        drop(store);
        let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
        let t5 = msg(5, 0.5);
        store.commit(&[item(&t5)]).unwrap();
        assert_eq!(reader.read_after(4, 10).unwrap().messages[0].0, 5);
    }

    #[test]
    fn a_store_from_before_arrivals_is_numbered_in_arrival_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        {
            // The schema as it was, with rows received out of event order.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE telemetry (device_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
                     received_at INTEGER NOT NULL, readings TEXT NOT NULL, PRIMARY KEY (device_id, seq)) WITHOUT ROWID;
                 CREATE TABLE faults (device_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
                     received_at INTEGER NOT NULL, code TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (device_id, seq)) WITHOUT ROWID;
                 CREATE TABLE devices (device_id TEXT PRIMARY KEY, device_type TEXT NOT NULL, model TEXT NOT NULL, fw TEXT,
                     first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, last_event_ts INTEGER NOT NULL, messages INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO devices VALUES ('wm-1', 'washer', 'WM-500', NULL, 10, 30, 5000, 4);
                 INSERT INTO telemetry VALUES ('wm-1', 3, 3000, 20, '{\"vibration_g\":0.3}');
                 INSERT INTO telemetry VALUES ('wm-1', 1, 1000, 30, '{\"vibration_g\":0.1}');
                 INSERT INTO faults VALUES ('wm-1', 2, 2000, 10, 'E21', 'raised');
                 INSERT INTO faults VALUES ('wm-1', 4, 4000, 20, 'E21', 'cleared');",
            )
            .unwrap();
        }
        let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
        let reader = StoreReader::open(&path).unwrap();
        let order = |reader: &StoreReader| -> Vec<u64> {
            reader
                .read_after(0, 100)
                .unwrap()
                .messages
                .iter()
                .map(|(_, m)| seq_of(m))
                .collect()
        };
        // Receive time first, then event time: as replay_since orders them.
        assert_eq!(order(&reader), vec![2, 3, 4, 1]);
        let mut replayed = Vec::new();
        reader
            .replay_since(Timestamp(0), |m| replayed.push(seq_of(&m)))
            .unwrap();
        assert_eq!(replayed, vec![2, 3, 4, 1]);
        let t5 = msg(5, 0.5);
        store.commit(&[item(&t5)]).unwrap();
        drop(store);
        // Opening again renumbers nothing.
        let _store = HotStore::open(&path, Synchronous::Normal).unwrap();
        assert_eq!(order(&reader), vec![2, 3, 4, 1, 5]);
        assert_eq!(reader.newest_arrival().unwrap(), 5);
        // The registry gained the batch and region columns, empty for the old row.
        let dev = reader.device("wm-1").unwrap().unwrap();
        assert_eq!((dev.batch, dev.region), (None, None));
    }

    #[test]
    fn dead_letters_keep_a_bounded_payload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let mut store = HotStore::open(&path, Synchronous::Normal).unwrap();
        let payload = vec![b'x'; 10_000];
        let rej = decode(
            "fixahead/v1/wm-1/telemetry",
            &payload,
            &ProfileSet::builtin(),
        )
        .unwrap_err();
        store
            .commit(&[StoreItem::DeadLetter {
                topic: "fixahead/v1/wm-1/telemetry",
                payload: &payload,
                rejection: &rej,
                received_at: Timestamp(5),
            }])
            .unwrap();
        let dl = StoreReader::open(&path)
            .unwrap()
            .dead_letters(None, 10)
            .unwrap();
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0].reason, "malformed_json");
        assert_eq!(dl[0].payload.len(), DEAD_LETTER_PAYLOAD_BYTES);
        assert_eq!(dl[0].payload_bytes, 10_000);
        assert!(dl[0].truncated);
        assert_eq!(dl[0].device_id.as_deref(), Some("wm-1"));
    }

    /// 2026-11-24T06:00:00Z
    const T0: i64 = 1_795_500_000_000;

    fn bad_payload() -> (&'static [u8], Rejection) {
        let payload: &'static [u8] = b"{not json";
        let rej = decode(
            "fixahead/v1/wm-1/telemetry",
            payload,
            &ProfileSet::builtin(),
        )
        .unwrap_err();
        (payload, rej)
    }

    fn dead_letter<'a>(payload: &'a [u8], rej: &'a Rejection, at: i64) -> StoreItem<'a> {
        StoreItem::DeadLetter {
            topic: "fixahead/v1/wm-1/telemetry",
            payload,
            rejection: rej,
            received_at: Timestamp(at),
        }
    }

    fn retention(max_rows: u64, max_age_ms: i64) -> DeadLetterRetention {
        DeadLetterRetention {
            max_rows,
            max_age_ms,
            interval: Duration::ZERO,
        }
    }

    fn dead_letter_times(reader: &StoreReader) -> Vec<(i64, i64)> {
        let mut rows: Vec<(i64, i64)> = reader
            .dead_letters(None, 1000)
            .unwrap()
            .iter()
            .map(|d| (d.id, d.received_at.millis()))
            .collect();
        rows.reverse();
        rows
    }

    #[test]
    fn dead_letter_retention_keeps_the_newest_max_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let mut store = HotStore::open(&path, Synchronous::Normal)
            .unwrap()
            .with_dead_letter_retention(retention(3, 30 * Timestamp::DAY_MS));
        let (payload, rej) = bad_payload();
        // One batch of four, then six batches of one: pruning follows every commit.
        let first: Vec<_> = (0..4).map(|i| dead_letter(payload, &rej, T0 + i)).collect();
        store.commit(&first).unwrap();
        assert_eq!(store.take_pruned(), 1);
        for i in 4..10 {
            store.commit(&[dead_letter(payload, &rej, T0 + i)]).unwrap();
        }
        assert_eq!(store.take_pruned(), 6);
        assert_eq!(store.take_pruned(), 0, "taken once");
        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(
            dead_letter_times(&reader),
            vec![(8, T0 + 7), (9, T0 + 8), (10, T0 + 9)],
            "the newest three, by id"
        );
        assert_eq!(reader.counts().unwrap().dead_letters, 3);
    }

    #[test]
    fn dead_letter_retention_removes_rows_older_than_max_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let day = Timestamp::DAY_MS;
        let mut store = HotStore::open(&path, Synchronous::Normal)
            .unwrap()
            .with_dead_letter_retention(retention(1000, 7 * day));
        let (payload, rej) = bad_payload();
        // Ids follow arrival, not receive time: a clock that stepped back leaves an old
        // receive time after a newer one, and age pruning still finds it.
        store
            .commit(&[
                dead_letter(payload, &rej, T0 - 40 * day),
                dead_letter(payload, &rej, T0 - 6 * day),
                dead_letter(payload, &rej, T0 - 8 * day),
                dead_letter(payload, &rej, T0),
            ])
            .unwrap();
        assert_eq!(store.take_pruned(), 2);
        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(dead_letter_times(&reader), vec![(2, T0 - 6 * day), (4, T0)]);

        // Time moves on with valid messages only: the row that ages out still goes.
        let m = msg(1, 0.1);
        store
            .commit(&[StoreItem::Message {
                message: &m,
                received_at: Timestamp(T0 + 2 * day),
            }])
            .unwrap();
        assert_eq!(store.take_pruned(), 1);
        assert_eq!(dead_letter_times(&reader), vec![(4, T0)]);
        assert_eq!(reader.counts().unwrap().telemetry, 1);
    }

    #[test]
    fn pruning_deletes_only_dead_letters_even_from_the_same_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let day = Timestamp::DAY_MS;
        let mut store = HotStore::open(&path, Synchronous::Normal)
            .unwrap()
            .with_dead_letter_retention(retention(1, day));
        let (payload, rej) = bad_payload();
        let (old, new) = (msg(1, 0.1), msg(2, 0.2));
        let fault = decode(
            "fixahead/v1/wm-1/fault",
            br#"{"ts": 1795500002000, "seq": 3, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}"#,
            &ProfileSet::builtin(),
        )
        .unwrap();
        // The valid messages are older than max_age and share the batch with dead letters
        // of every age: only dead letters go.
        let out = store
            .commit(&[
                StoreItem::Message {
                    message: &old,
                    received_at: Timestamp(T0 - 90 * day),
                },
                dead_letter(payload, &rej, T0 - 90 * day),
                StoreItem::Message {
                    message: &fault,
                    received_at: Timestamp(T0 - 90 * day),
                },
                dead_letter(payload, &rej, T0 - 1),
                StoreItem::Message {
                    message: &new,
                    received_at: Timestamp(T0),
                },
                dead_letter(payload, &rej, T0),
            ])
            .unwrap();
        assert_eq!(
            out,
            vec![
                Outcome::Stored,
                Outcome::DeadLettered,
                Outcome::Stored,
                Outcome::DeadLettered,
                Outcome::Stored,
                Outcome::DeadLettered
            ]
        );
        assert_eq!(store.take_pruned(), 2);
        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(dead_letter_times(&reader), vec![(3, T0)]);
        let counts = reader.counts().unwrap();
        assert_eq!((counts.telemetry, counts.faults, counts.devices), (2, 1, 1));
        assert_eq!(reader.device("wm-1").unwrap().unwrap().messages, 3);
        let mut replayed = 0;
        reader
            .replay_since(Timestamp(i64::MIN), |_| replayed += 1)
            .unwrap();
        assert_eq!(replayed, 3);
    }

    #[test]
    fn pruning_waits_for_its_interval_and_applies_new_bounds_at_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let (payload, rej) = bad_payload();
        let mut store = HotStore::open(&path, Synchronous::Normal)
            .unwrap()
            .with_dead_letter_retention(DeadLetterRetention {
                interval: Duration::from_secs(3600),
                ..retention(2, Timestamp::DAY_MS)
            });
        let batch: Vec<_> = (0..3).map(|i| dead_letter(payload, &rej, T0 + i)).collect();
        // The first commit after opening prunes; the next ones wait for the interval.
        store.commit(&batch).unwrap();
        assert_eq!(store.take_pruned(), 1);
        store.commit(&batch).unwrap();
        store.commit(&batch).unwrap();
        assert_eq!(store.take_pruned(), 0);
        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(reader.counts().unwrap().dead_letters, 8);
        // Explicitly, and on reopening with other bounds, it applies at once.
        assert_eq!(store.prune_dead_letters(Timestamp(T0 + 2)).unwrap(), 6);
        store.commit(&batch).unwrap();
        drop(store);
        let mut store = HotStore::open(&path, Synchronous::Normal)
            .unwrap()
            .with_dead_letter_retention(DeadLetterRetention {
                interval: Duration::from_secs(3600),
                ..retention(1, Timestamp::DAY_MS)
            });
        store.commit(&[]).unwrap();
        assert_eq!(store.take_pruned(), 0, "an empty batch has no clock yet");
        store.commit(&batch[..1]).unwrap();
        assert_eq!(store.take_pruned(), 5);
        assert_eq!(dead_letter_times(&reader), vec![(13, T0)]);
    }
}
