//! The ticket store: SQLite, in its own file (`{data_dir}/tickets.db` by convention),
//! WAL mode, one writer connection and one reader connection.
//!
//! Tables:
//! * `tickets`: one row per ticket. The unique partial index `tickets_one_active` on
//!   `(device_id, component) WHERE status IN ('open', 'acknowledged', 'scheduled',
//!   'in_progress')` makes "one active ticket per (device, component)" a property of
//!   the database. `number` is unique. `diagnosis` is the [`domain::Diagnosis`] as JSON.
//!   `risk_logged`/`risk_logged_at` remember the last risk written to the log, so the
//!   log is not flooded by every score. SLA clocks (`respond_by`, `resolve_by`,
//!   `responded_at`, `ended_at`, the `*_breached` flags, `escalated_to`), the assignment
//!   (`engineer`, `window_start`, `window_end`, `skills` as a JSON array, `region`) and
//!   the `outcome` (JSON) were added by schema version 2.
//! * `events`: what `GET /api/v1/events` streams, written in the same transaction as
//!   the change it reports (`id` is the SSE event id, never reused: AUTOINCREMENT).
//! * `ticket_log`: the progress log (ticket, time, actor, action, note), oldest first
//!   by id.
//! * `ticket_numbers`: the last sequence number issued per UTC day (`YYYYMMDD`). A
//!   number is `YYYYMMDD` followed by the 6-digit sequence (`20261124000042`); it is
//!   allocated in the same transaction as the ticket insert and never reused.
//! * `device_risk`: the latest score per (device, component) by event time, and
//!   `flagged_at`: when the current flag episode's first flagged score was recorded
//!   (NULL while not flagged), so that one episode opens at most one ticket.
//! * `fleet_alarms`: batch alarms (`crate::fleet`), at most one `active` per (model,
//!   dimension, value, component, statistic) by a unique partial index; created by any
//!   open (`CREATE TABLE IF NOT EXISTS`), so older files gain it without a version.
//!
//! **Schema versions** (`PRAGMA user_version`): 0/1 is the first schema; 2 adds the
//! columns above with `ALTER TABLE ... ADD COLUMN` (existing tickets get no resolve
//! clock, an empty assignment and no outcome) and the `events` table; 3 adds the
//! outcome's kind, component and failure time as columns (`outcome_kind`,
//! `outcome_component`, `outcome_failed_at`) and a change revision (`perf_rev`), all
//! kept by triggers, and the covering index `tickets_performance` from which the model
//! performance report reads the tickets changed since it last looked; 4 adds
//! `device_risk.flagged_at` (a flagged row of an older file gets its `updated_at`: the
//! episode is at least that old); 5 adds `device_risk.warming_up` (0 for older rows:
//! before it, a warming-up device was never scored). Opening a file upgrades it in place; the upgrade is
//! idempotent.
//!
//! The functions here are plain SQL over a connection or transaction; the rules live in
//! the service.

use std::path::Path;
use std::time::Duration;

use domain::{
    Assignment, Contribution, DeviceId, Diagnosis, LogEntry, Outcome, Prediction, Priority, Ticket,
    TicketSource, TicketStatus, Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::tickets::{EventRecord, RiskRecord, SlaKind, TicketQuery};
use crate::{Error, Result};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tickets (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    number         TEXT NOT NULL UNIQUE,
    device_id      TEXT NOT NULL,
    device_type    TEXT NOT NULL,
    component      TEXT NOT NULL,
    source         TEXT NOT NULL,
    status         TEXT NOT NULL,
    priority       TEXT NOT NULL,
    risk           REAL NOT NULL,
    peak_risk      REAL NOT NULL,
    model_version  TEXT NOT NULL,
    opened_at      INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    respond_by     INTEGER NOT NULL,
    signals        INTEGER NOT NULL,
    diagnosis      TEXT NOT NULL,
    risk_logged    REAL NOT NULL,
    risk_logged_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_one_active ON tickets (device_id, component)
    WHERE status IN ('open', 'acknowledged', 'scheduled', 'in_progress');
CREATE INDEX IF NOT EXISTS tickets_by_device ON tickets (device_id, id);
CREATE INDEX IF NOT EXISTS tickets_by_status ON tickets (status, id);
CREATE TABLE IF NOT EXISTS ticket_log (
    id        INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    note      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_log_by_ticket ON ticket_log (ticket_id, id);
CREATE TABLE IF NOT EXISTS ticket_numbers (
    day      TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_risk (
    device_id     TEXT NOT NULL,
    component     TEXT NOT NULL,
    device_type   TEXT NOT NULL,
    risk          REAL NOT NULL,
    threshold     REAL NOT NULL,
    flagged       INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    top_features  TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    flagged_at    INTEGER,
    warming_up    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, component)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    type      TEXT NOT NULL,
    ticket_id INTEGER,
    device_id TEXT,
    data      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at);
CREATE TABLE IF NOT EXISTS fleet_alarms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    status     TEXT NOT NULL,
    raised_at  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cleared_at INTEGER,
    model      TEXT NOT NULL,
    dimension  TEXT NOT NULL,
    value      TEXT NOT NULL,
    component  TEXT NOT NULL,
    statistic  TEXT NOT NULL,
    p_value    REAL NOT NULL,
    q_value    REAL NOT NULL,
    observed   INTEGER NOT NULL,
    expected   REAL NOT NULL,
    exposure   REAL NOT NULL,
    ratio      REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS fleet_alarms_one_active
    ON fleet_alarms (model, dimension, value, component, statistic) WHERE status = 'active';
"#;

/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 5;

/// Columns schema version 2 added to `tickets` (name, definition).
const V2_COLUMNS: [(&str, &str); 12] = [
    ("resolve_by", "INTEGER"),
    ("responded_at", "INTEGER"),
    ("ended_at", "INTEGER"),
    ("respond_breached", "INTEGER NOT NULL DEFAULT 0"),
    ("resolve_breached", "INTEGER NOT NULL DEFAULT 0"),
    ("escalated_to", "TEXT"),
    ("engineer", "TEXT"),
    ("window_start", "INTEGER"),
    ("window_end", "INTEGER"),
    ("skills", "TEXT NOT NULL DEFAULT '[]'"),
    ("region", "TEXT"),
    ("outcome", "TEXT"),
];

/// Columns schema version 3 added to `tickets`: the outcome's kind, component and
/// failure time (epoch milliseconds), copied out of `outcome`, and `perf_rev`, a
/// revision that grows with every change the performance report depends on. The
/// triggers of [`V3_DERIVED`] write all four, so whatever writes a ticket, the
/// database keeps them right. The report keeps its tickets in memory and reads only
/// those with a newer `perf_rev` ([`performance_facts`]), from a covering index, so it
/// parses no JSON and re-reads nothing that did not change. (Virtual generated columns
/// would be simpler, but SQLite does not read them from a covering index.)
const V3_COLUMNS: [(&str, &str); 4] = [
    ("outcome_kind", "TEXT"),
    ("outcome_component", "TEXT"),
    ("outcome_failed_at", "INTEGER"),
    ("perf_rev", "INTEGER NOT NULL DEFAULT 0"),
];

/// The V3 columns' new values for the row `{row}` (SQL assignments).
macro_rules! derived_columns {
    ($row:literal) => {
        concat!(
            "outcome_kind = json_extract(",
            $row,
            ".outcome, '$.kind'), ",
            "outcome_component = json_extract(",
            $row,
            ".outcome, '$.component'), ",
            "outcome_failed_at = CAST(ROUND(unixepoch(json_extract(",
            $row,
            ".outcome, '$.failed_at'), 'subsec') * 1000) AS INTEGER), ",
            "perf_rev = (SELECT COALESCE(MAX(perf_rev), 0) + 1 FROM tickets)"
        )
    };
}

/// The triggers that keep the V3 columns, the backfill, and the covering index of the
/// performance report, led by `perf_rev`. A write transaction holds the database lock,
/// so revisions grow in commit order: a reader that has seen revision `r` finds every
/// later change above it. Updates that touch none of the report's columns (a new risk
/// on an open ticket changes `model_version` only when the model does) leave it alone.
const V3_DERIVED: &str = concat!(
    "CREATE TRIGGER IF NOT EXISTS tickets_derived_insert AFTER INSERT ON tickets
     BEGIN UPDATE tickets SET ",
    derived_columns!("NEW"),
    " WHERE id = NEW.id; END;
     CREATE TRIGGER IF NOT EXISTS tickets_derived_update
     AFTER UPDATE OF outcome, status, model_version, region, ended_at, opened_at, source,
         device_id, device_type, component ON tickets
     WHEN NEW.outcome IS NOT OLD.outcome OR NEW.status IS NOT OLD.status
         OR NEW.model_version IS NOT OLD.model_version OR NEW.region IS NOT OLD.region
         OR NEW.ended_at IS NOT OLD.ended_at OR NEW.opened_at IS NOT OLD.opened_at
         OR NEW.source IS NOT OLD.source OR NEW.device_id IS NOT OLD.device_id
         OR NEW.device_type IS NOT OLD.device_type OR NEW.component IS NOT OLD.component
     BEGIN UPDATE tickets SET ",
    derived_columns!("NEW"),
    " WHERE id = NEW.id; END;
     UPDATE tickets SET ",
    derived_columns!("tickets"),
    ";
     CREATE INDEX IF NOT EXISTS tickets_performance ON tickets (
         perf_rev, id, opened_at, source, status, device_id, device_type, component,
         model_version, region, ended_at, outcome_kind, outcome_component,
         outcome_failed_at);"
);

/// Brings the schema to [`SCHEMA_VERSION`]: adds the columns a file created by an
/// older version lacks.
fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let existing: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('tickets')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, definition) in V2_COLUMNS.into_iter().chain(V3_COLUMNS) {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!(
                "ALTER TABLE tickets ADD COLUMN {name} {definition}"
            ))?;
        }
    }
    conn.execute_batch(V3_DERIVED)?;
    if !has_column(conn, "device_risk", "flagged_at")? {
        conn.execute_batch(
            "ALTER TABLE device_risk ADD COLUMN flagged_at INTEGER;
             UPDATE device_risk SET flagged_at = updated_at WHERE flagged;",
        )?;
    }
    if !has_column(conn, "device_risk", "warming_up")? {
        conn.execute_batch(
            "ALTER TABLE device_risk ADD COLUMN warming_up INTEGER NOT NULL DEFAULT 0;",
        )?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// Whether `table` has a column `column`.
fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        params![table, column],
        |r| r.get(0),
    )?)
}

/// The SQL list of active statuses; must match [`TicketStatus::is_active`].
const ACTIVE_SQL: &str = "('open', 'acknowledged', 'scheduled', 'in_progress')";

/// Opens a connection, creating the file and schema when `create` is set.
pub(crate) fn open_connection(path: &Path, create: bool) -> Result<Connection> {
    if create {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                context: format!("creating {}", dir.display()),
                source,
            })?;
        }
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    if create {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// A ticket to insert.
pub(crate) struct NewTicket<'a> {
    pub(crate) number: &'a str,
    pub(crate) device_id: &'a str,
    pub(crate) device_type: &'a str,
    pub(crate) component: &'a str,
    pub(crate) source: TicketSource,
    pub(crate) risk: f64,
    pub(crate) model_version: &'a str,
    pub(crate) priority: Priority,
    pub(crate) opened_at: Timestamp,
    pub(crate) respond_by: Timestamp,
    pub(crate) resolve_by: Timestamp,
    pub(crate) diagnosis_json: &'a str,
    pub(crate) skills_json: &'a str,
}

/// The next number for `day` without issuing it; [`issue_number`] records it once the
/// ticket is inserted (both inside one write transaction).
pub(crate) fn peek_number(conn: &Connection, day: &str) -> Result<i64> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT last_seq FROM ticket_numbers WHERE day = ?1")?
        .query_row(params![day], |r| r.get(0))
        .optional()?;
    Ok(last.unwrap_or(0) + 1)
}

/// Records `seq` as the last number issued on `day`.
pub(crate) fn issue_number(conn: &Connection, day: &str, seq: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO ticket_numbers (day, last_seq) VALUES (?1, ?2)
         ON CONFLICT (day) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)",
    )?
    .execute(params![day, seq])?;
    Ok(())
}

/// Inserts an open ticket unless an active one exists for the pair; returns the new
/// id, or `None` when the unique index reported the conflict.
pub(crate) fn insert_ticket(conn: &Connection, t: &NewTicket<'_>) -> Result<Option<i64>> {
    let id = conn
        .prepare_cached(&format!(
            "INSERT INTO tickets (number, device_id, device_type, component, source, status,
                 priority, risk, peak_risk, model_version, opened_at, updated_at, respond_by,
                 signals, diagnosis, risk_logged, risk_logged_at, resolve_by, skills)
             VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?7, ?8, ?9, ?9, ?10, 1, ?11, ?7, ?9,
                 ?12, ?13)
             ON CONFLICT (device_id, component) WHERE status IN {ACTIVE_SQL} DO NOTHING
             RETURNING id"
        ))?
        .query_row(
            params![
                t.number,
                t.device_id,
                t.device_type,
                t.component,
                t.source.as_str(),
                t.priority.as_str(),
                t.risk,
                t.model_version,
                t.opened_at.millis(),
                t.respond_by.millis(),
                t.diagnosis_json,
                t.resolve_by.millis(),
                t.skills_json,
            ],
            |r| r.get(0),
        )
        .optional()?;
    Ok(id)
}

/// The parts of the active ticket the update path needs.
pub(crate) struct ActiveTicket {
    pub(crate) id: i64,
    pub(crate) number: String,
    pub(crate) priority: Priority,
    pub(crate) peak_risk: f64,
    pub(crate) respond_by: Timestamp,
    pub(crate) resolve_by: Option<Timestamp>,
    pub(crate) risk: f64,
    pub(crate) model_version: String,
    pub(crate) risk_logged: f64,
    pub(crate) risk_logged_at: Timestamp,
}

/// The active ticket of a (device, component), if any.
pub(crate) fn active_ticket(
    conn: &Connection,
    device_id: &str,
    component: &str,
) -> Result<Option<ActiveTicket>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT id, number, priority, peak_risk, respond_by, risk_logged, risk_logged_at,
                 resolve_by, risk, model_version
             FROM tickets WHERE device_id = ?1 AND component = ?2 AND status IN {ACTIVE_SQL}"
        ))?
        .query_row(params![device_id, component], |r| {
            Ok((
                (
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, i64>(4)?,
                ),
                (
                    r.get::<_, f64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, f64>(8)?,
                    r.get::<_, String>(9)?,
                ),
            ))
        })
        .optional()?;
    row.map(
        |(
            (id, number, priority, peak_risk, respond_by),
            (risk_logged, logged_at, resolve_by, risk, model_version),
        )| {
            Ok(ActiveTicket {
                id,
                number,
                priority: parse_priority(&priority)?,
                peak_risk,
                respond_by: Timestamp(respond_by),
                resolve_by: resolve_by.map(Timestamp),
                risk,
                model_version,
                risk_logged,
                risk_logged_at: Timestamp(logged_at),
            })
        },
    )
    .transpose()
}

/// New values for an active ticket.
pub(crate) struct TicketUpdate<'a> {
    pub(crate) id: i64,
    pub(crate) priority: Priority,
    pub(crate) risk: f64,
    pub(crate) peak_risk: f64,
    pub(crate) model_version: &'a str,
    pub(crate) updated_at: Timestamp,
    pub(crate) respond_by: Timestamp,
    pub(crate) resolve_by: Option<Timestamp>,
    pub(crate) diagnosis_json: &'a str,
    /// `Some((risk, at))` when this update writes a `risk_updated` log entry.
    pub(crate) risk_logged: Option<(f64, Timestamp)>,
}

/// Applies an update to a ticket and counts one more signal.
pub(crate) fn update_ticket(conn: &Connection, u: &TicketUpdate<'_>) -> Result<()> {
    let (logged, logged_at) = match u.risk_logged {
        Some((r, at)) => (Some(r), Some(at.millis())),
        None => (None, None),
    };
    conn.prepare_cached(
        "UPDATE tickets SET priority = ?2, risk = ?3, peak_risk = ?4, model_version = ?5,
             updated_at = ?6, respond_by = ?7, diagnosis = ?8, signals = signals + 1,
             risk_logged = COALESCE(?9, risk_logged),
             risk_logged_at = COALESCE(?10, risk_logged_at), resolve_by = ?11
         WHERE id = ?1",
    )?
    .execute(params![
        u.id,
        u.priority.as_str(),
        u.risk,
        u.peak_risk,
        u.model_version,
        u.updated_at.millis(),
        u.respond_by.millis(),
        u.diagnosis_json,
        logged,
        logged_at,
        u.resolve_by.map(Timestamp::millis),
    ])?;
    Ok(())
}

/// Appends a progress-log entry.
pub(crate) fn append_log(
    conn: &Connection,
    ticket_id: i64,
    at: Timestamp,
    actor: &str,
    action: &str,
    note: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO ticket_log (ticket_id, at, actor, action, note) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![ticket_id, at.millis(), actor, action, note])?;
    Ok(())
}

/// Stores a prediction as the current risk of its (device, component), unless a newer
/// score (by event time) is already stored.
pub(crate) fn upsert_risk(conn: &Connection, p: &Prediction, now: Timestamp) -> Result<()> {
    let features = serde_json::to_string(&p.top_features)?;
    conn.prepare_cached(
        "INSERT INTO device_risk (device_id, component, device_type, risk, threshold, flagged,
             model_version, ts, top_features, updated_at, flagged_at, warming_up)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, CASE WHEN ?6 THEN ?10 END, ?11)
         ON CONFLICT (device_id, component) DO UPDATE SET
             device_type = excluded.device_type, risk = excluded.risk,
             threshold = excluded.threshold, flagged = excluded.flagged,
             model_version = excluded.model_version, ts = excluded.ts,
             top_features = excluded.top_features, updated_at = excluded.updated_at,
             warming_up = excluded.warming_up,
             flagged_at = CASE WHEN NOT excluded.flagged THEN NULL
                 WHEN device_risk.flagged THEN device_risk.flagged_at
                 ELSE excluded.updated_at END
         WHERE excluded.ts >= device_risk.ts",
    )?
    .execute(params![
        p.device_id.as_str(),
        p.component,
        p.device_type,
        p.risk,
        p.threshold,
        p.flagged,
        p.model_version,
        p.ts.millis(),
        features,
        now.millis(),
        p.warming_up,
    ])?;
    Ok(())
}

/// The current risk of every component of a device, by component name.
pub(crate) fn device_risk(conn: &Connection, device_id: &str) -> Result<Vec<RiskRecord>> {
    let mut st = conn.prepare_cached(
        "SELECT device_id, device_type, component, risk, threshold, flagged, model_version, ts,
             top_features, updated_at, warming_up
         FROM device_risk WHERE device_id = ?1 ORDER BY component",
    )?;
    let rows = st.query_map(params![device_id], |r| {
        Ok((
            RiskRecord {
                device_id: r.get(0)?,
                device_type: r.get(1)?,
                component: r.get(2)?,
                risk: r.get(3)?,
                threshold: r.get(4)?,
                flagged: r.get(5)?,
                model_version: r.get(6)?,
                ts: Timestamp(r.get(7)?),
                top_features: Vec::new(),
                updated_at: Timestamp(r.get(9)?),
                warming_up: r.get(10)?,
            },
            r.get::<_, String>(8)?,
        ))
    })?;
    rows.map(|row| {
        let (mut rec, features) = row?;
        rec.top_features = serde_json::from_str::<Vec<Contribution>>(&features)
            .map_err(|e| Error::Corrupt(format!("device_risk.top_features: {e}")))?;
        Ok(rec)
    })
    .collect()
}

const TICKET_SELECT: &str = "SELECT id, number, device_id, device_type, component, source,
    status, priority, risk, peak_risk, model_version, opened_at, updated_at, respond_by,
    signals, diagnosis, resolve_by, responded_at, ended_at, respond_breached,
    resolve_breached, escalated_to, engineer, window_start, window_end, skills, region,
    outcome FROM tickets";

/// A ticket row before its text columns are parsed.
struct RawTicket {
    id: i64,
    number: String,
    device_id: String,
    device_type: String,
    component: String,
    source: String,
    status: String,
    priority: String,
    risk: f64,
    peak_risk: f64,
    model_version: String,
    opened_at: i64,
    updated_at: i64,
    respond_by: i64,
    signals: i64,
    diagnosis: String,
    resolve_by: Option<i64>,
    responded_at: Option<i64>,
    ended_at: Option<i64>,
    respond_breached: bool,
    resolve_breached: bool,
    escalated_to: Option<String>,
    engineer: Option<String>,
    window_start: Option<i64>,
    window_end: Option<i64>,
    skills: String,
    region: Option<String>,
    outcome: Option<String>,
}

fn raw_ticket(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawTicket> {
    Ok(RawTicket {
        id: r.get(0)?,
        number: r.get(1)?,
        device_id: r.get(2)?,
        device_type: r.get(3)?,
        component: r.get(4)?,
        source: r.get(5)?,
        status: r.get(6)?,
        priority: r.get(7)?,
        risk: r.get(8)?,
        peak_risk: r.get(9)?,
        model_version: r.get(10)?,
        opened_at: r.get(11)?,
        updated_at: r.get(12)?,
        respond_by: r.get(13)?,
        signals: r.get(14)?,
        diagnosis: r.get(15)?,
        resolve_by: r.get(16)?,
        responded_at: r.get(17)?,
        ended_at: r.get(18)?,
        respond_breached: r.get(19)?,
        resolve_breached: r.get(20)?,
        escalated_to: r.get(21)?,
        engineer: r.get(22)?,
        window_start: r.get(23)?,
        window_end: r.get(24)?,
        skills: r.get(25)?,
        region: r.get(26)?,
        outcome: r.get(27)?,
    })
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("tickets.{what}: {e}"))
}

fn parse_priority(s: &str) -> Result<Priority> {
    s.parse().map_err(|e| corrupt("priority", e))
}

pub(crate) fn parse_status(s: &str) -> Result<TicketStatus> {
    s.parse().map_err(|e| corrupt("status", e))
}

fn parse_source(s: &str) -> Result<TicketSource> {
    match s {
        "proactive" => Ok(TicketSource::Proactive),
        "reactive" => Ok(TicketSource::Reactive),
        other => Err(corrupt("source", format!("unknown source {other:?}"))),
    }
}

fn ticket_log(conn: &Connection, ticket_id: i64) -> Result<Vec<LogEntry>> {
    let mut st = conn.prepare_cached(
        "SELECT at, actor, action, note FROM ticket_log WHERE ticket_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map(params![ticket_id], |r| {
        Ok(LogEntry {
            at: Timestamp(r.get(0)?),
            actor: r.get(1)?,
            action: r.get(2)?,
            note: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn into_ticket(conn: &Connection, raw: RawTicket) -> Result<Ticket> {
    let mut sla_breaches = Vec::new();
    if raw.respond_breached {
        sla_breaches.push("respond".to_owned());
    }
    if raw.resolve_breached {
        sla_breaches.push("resolve".to_owned());
    }
    Ok(Ticket {
        log: ticket_log(conn, raw.id)?,
        id: raw.id,
        number: raw.number,
        device_id: DeviceId::parse(&raw.device_id).map_err(|e| corrupt("device_id", e))?,
        device_type: raw.device_type,
        component: raw.component,
        source: parse_source(&raw.source)?,
        status: parse_status(&raw.status)?,
        priority: parse_priority(&raw.priority)?,
        risk: raw.risk,
        peak_risk: raw.peak_risk,
        model_version: raw.model_version,
        opened_at: Timestamp(raw.opened_at),
        updated_at: Timestamp(raw.updated_at),
        respond_by: Timestamp(raw.respond_by),
        resolve_by: raw.resolve_by.map(Timestamp),
        responded_at: raw.responded_at.map(Timestamp),
        ended_at: raw.ended_at.map(Timestamp),
        sla_breaches,
        escalated_to: raw.escalated_to,
        assignment: Assignment {
            engineer: raw.engineer,
            window_start: raw.window_start.map(Timestamp),
            window_end: raw.window_end.map(Timestamp),
            skills: serde_json::from_str(&raw.skills).map_err(|e| corrupt("skills", e))?,
            region: raw.region,
        },
        outcome: raw
            .outcome
            .as_deref()
            .map(serde_json::from_str::<Outcome>)
            .transpose()
            .map_err(|e| corrupt("outcome", e))?,
        signals: raw.signals.max(0) as u64,
        diagnosis: serde_json::from_str::<Diagnosis>(&raw.diagnosis)
            .map_err(|e| corrupt("diagnosis", e))?,
    })
}

/// One ticket with its log.
pub(crate) fn get_ticket(conn: &Connection, id: i64) -> Result<Option<Ticket>> {
    let raw = conn
        .prepare_cached(&format!("{TICKET_SELECT} WHERE id = ?1"))?
        .query_row(params![id], raw_ticket)
        .optional()?;
    raw.map(|raw| into_ticket(conn, raw)).transpose()
}

/// Tickets matching a query, newest first, each with its log.
pub(crate) fn list_tickets(conn: &Connection, q: &TicketQuery) -> Result<Vec<Ticket>> {
    let statuses = if q.statuses.is_empty() {
        None
    } else {
        Some(serde_json::to_string(
            &q.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        )?)
    };
    let raws = {
        let mut st = conn.prepare_cached(&format!(
            "{TICKET_SELECT}
             WHERE (?1 IS NULL OR status IN (SELECT value FROM json_each(?1)))
               AND (?2 IS NULL OR device_id = ?2)
               AND (?3 IS NULL OR component = ?3)
               AND (?4 IS NULL OR priority = ?4)
               AND id < ?5
               AND (?7 IS NULL OR source = ?7)
               AND (?8 IS NULL OR opened_at >= ?8)
             ORDER BY id DESC LIMIT ?6"
        ))?;
        let rows = st.query_map(
            params![
                statuses,
                q.device_id.as_ref().map(DeviceId::as_str),
                q.component,
                q.priority.map(Priority::as_str),
                q.after_id.unwrap_or(i64::MAX),
                i64::try_from(q.limit).unwrap_or(i64::MAX),
                q.source.map(TicketSource::as_str),
                q.opened_after.map(Timestamp::millis),
            ],
            raw_ticket,
        )?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    raws.into_iter().map(|raw| into_ticket(conn, raw)).collect()
}

/// Number of active tickets.
pub(crate) fn count_active(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM tickets WHERE status IN {ACTIVE_SQL}"
        ))?
        .query_row([], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Number of tickets per status (statuses without tickets are absent).
pub(crate) fn count_by_status(conn: &Connection) -> Result<Vec<(TicketStatus, u64)>> {
    let mut st = conn.prepare_cached("SELECT status, COUNT(*) FROM tickets GROUP BY status")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.map(|row| {
        let (status, n) = row?;
        Ok((parse_status(&status)?, n.max(0) as u64))
    })
    .collect()
}

/// Whether a status update hit the unique index of active tickets.
fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// The lifecycle columns a transition writes.
pub(crate) struct StatusChange {
    pub(crate) id: i64,
    pub(crate) status: TicketStatus,
    pub(crate) now: Timestamp,
    /// Set `responded_at` to now if it is not set yet.
    pub(crate) respond: bool,
    /// Set `ended_at` to now (resolved, dismissed).
    pub(crate) end: bool,
    /// A reopen: new clocks, breach flags and outcome cleared.
    pub(crate) reopen: Option<Reopen>,
}

/// The fresh clocks of a reopened ticket.
pub(crate) struct Reopen {
    /// `None` keeps `responded_at` (reopened to `in_progress`).
    pub(crate) respond_by: Option<Timestamp>,
    pub(crate) resolve_by: Timestamp,
}

/// Applies a status change; `Ok(false)` when the unique index forbids it (another
/// ticket is active for the same pair).
pub(crate) fn change_status(conn: &Connection, c: &StatusChange) -> Result<bool> {
    let reopen = c.reopen.is_some();
    let respond_by = c.reopen.as_ref().and_then(|r| r.respond_by);
    let resolve_by = c.reopen.as_ref().map(|r| r.resolve_by.millis());
    let result = conn
        .prepare_cached(
            "UPDATE tickets SET status = ?2, updated_at = ?3,
                 responded_at = CASE WHEN ?5 AND ?6 IS NOT NULL THEN NULL
                                     WHEN ?4 AND responded_at IS NULL THEN ?3
                                     ELSE responded_at END,
                 ended_at = CASE WHEN ?7 THEN ?3 WHEN ?5 THEN NULL ELSE ended_at END,
                 respond_by = COALESCE(?6, respond_by),
                 respond_breached = CASE WHEN ?5 AND ?6 IS NOT NULL THEN 0 ELSE respond_breached END,
                 resolve_by = COALESCE(?8, resolve_by),
                 resolve_breached = CASE WHEN ?5 THEN 0 ELSE resolve_breached END,
                 escalated_to = CASE WHEN ?5 THEN NULL ELSE escalated_to END,
                 outcome = CASE WHEN ?5 THEN NULL ELSE outcome END
             WHERE id = ?1",
        )?
        .execute(params![
            c.id,
            c.status.as_str(),
            c.now.millis(),
            c.respond,
            reopen,
            respond_by.map(Timestamp::millis),
            c.end,
            resolve_by,
        ]);
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_constraint(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes a ticket's assignment (skills are not changed).
pub(crate) fn set_assignment(
    conn: &Connection,
    id: i64,
    a: &Assignment,
    now: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tickets SET engineer = ?2, window_start = ?3, window_end = ?4, region = ?5,
             updated_at = ?6 WHERE id = ?1",
    )?
    .execute(params![
        id,
        a.engineer,
        a.window_start.map(Timestamp::millis),
        a.window_end.map(Timestamp::millis),
        a.region,
        now.millis(),
    ])?;
    Ok(())
}

/// Writes a ticket's outcome.
pub(crate) fn set_outcome(conn: &Connection, id: i64, o: &Outcome, now: Timestamp) -> Result<()> {
    conn.prepare_cached("UPDATE tickets SET outcome = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, serde_json::to_string(o)?, now.millis()])?;
    Ok(())
}

/// An SLA clock that ran out on an active ticket and is not yet marked breached.
pub(crate) struct DueClock {
    pub(crate) id: i64,
    pub(crate) priority: Priority,
    pub(crate) deadline: Timestamp,
}

/// Active tickets whose respond clock (still `open`, never responded) or resolve
/// clock ran out before `now` and is not marked yet, oldest deadline first.
pub(crate) fn due_clocks(
    conn: &Connection,
    now: Timestamp,
    kind: SlaKind,
) -> Result<Vec<DueClock>> {
    let sql = match kind {
        SlaKind::Respond => {
            "SELECT id, priority, respond_by FROM tickets
             WHERE status = 'open' AND responded_at IS NULL AND respond_breached = 0
               AND respond_by < ?1 ORDER BY respond_by, id"
        }
        SlaKind::Resolve => {
            "SELECT id, priority, resolve_by FROM tickets
             WHERE status IN ('open', 'acknowledged', 'scheduled', 'in_progress')
               AND resolve_breached = 0 AND resolve_by IS NOT NULL AND resolve_by < ?1
             ORDER BY resolve_by, id"
        }
    };
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params![now.millis()], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (id, priority, deadline) = row?;
        Ok(DueClock {
            id,
            priority: parse_priority(&priority)?,
            deadline: Timestamp(deadline),
        })
    })
    .collect()
}

/// Marks a clock breached and records the escalation.
pub(crate) fn mark_breached(
    conn: &Connection,
    id: i64,
    kind: SlaKind,
    escalated_to: &str,
    now: Timestamp,
) -> Result<()> {
    let column = match kind {
        SlaKind::Respond => "respond_breached",
        SlaKind::Resolve => "resolve_breached",
    };
    conn.prepare_cached(&format!(
        "UPDATE tickets SET {column} = 1, escalated_to = ?2, updated_at = ?3 WHERE id = ?1"
    ))?
    .execute(params![id, escalated_to, now.millis()])?;
    Ok(())
}

/// Appends an event; returns its id.
pub(crate) fn insert_event(
    conn: &Connection,
    at: Timestamp,
    kind: &str,
    ticket_id: Option<i64>,
    device_id: &str,
    data: &serde_json::Value,
) -> Result<i64> {
    let id = conn
        .prepare_cached(
            "INSERT INTO events (at, type, ticket_id, device_id, data) VALUES (?1, ?2, ?3, ?4, ?5)
             RETURNING id",
        )?
        .query_row(
            params![at.millis(), kind, ticket_id, device_id, data.to_string()],
            |r| r.get(0),
        )?;
    Ok(id)
}

/// Events with an id above `after`, oldest first, at most `limit`.
pub(crate) fn events_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<EventRecord>> {
    let mut st = conn.prepare_cached(
        "SELECT id, at, type, ticket_id, device_id, data FROM events WHERE id > ?1
         ORDER BY id LIMIT ?2",
    )?;
    let rows = st.query_map(
        params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        },
    )?;
    rows.map(|row| {
        let (id, at, kind, ticket_id, device_id, data) = row?;
        Ok(EventRecord {
            id,
            at: Timestamp(at),
            kind,
            ticket_id,
            device_id,
            data: serde_json::from_str(&data).map_err(|e| corrupt("events.data", e))?,
        })
    })
    .collect()
}

/// The id of the newest event, 0 when there is none.
pub(crate) fn last_event_id(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
        .query_row([], |r| r.get(0))?)
}

/// Deletes events older than `before`; returns how many.
pub(crate) fn delete_events_before(conn: &Connection, before: Timestamp) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM events WHERE at < ?1")?
        .execute(params![before.millis()])?)
}

/// Whether the stored current risk of a pair is flagged (`None`: never scored).
pub(crate) fn risk_flagged(
    conn: &Connection,
    device_id: &str,
    component: &str,
) -> Result<Option<(bool, Timestamp)>> {
    Ok(conn
        .prepare_cached(
            "SELECT flagged, ts FROM device_risk WHERE device_id = ?1 AND component = ?2",
        )?
        .query_row(params![device_id, component], |r| {
            Ok((r.get::<_, bool>(0)?, Timestamp(r.get(1)?)))
        })
        .optional()?)
}

/// Whether the current flag episode of a (device, component) is done with tickets:
/// the pair has no active ticket, and one of its tickets ended (resolved or dismissed,
/// `ended_at`) after the episode's first flagged score was recorded
/// (`device_risk.flagged_at`; an end in the same millisecond counts as before). False
/// when the pair is not flagged. One statement: a flagged score costs one round trip.
pub(crate) fn episode_ticket_ended(
    conn: &Connection,
    device_id: &str,
    component: &str,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM device_risk r JOIN tickets t
                 ON t.device_id = r.device_id AND t.component = r.component
                 WHERE r.device_id = ?1 AND r.component = ?2 AND r.flagged
                     AND t.ended_at > r.flagged_at)
             AND NOT EXISTS (SELECT 1 FROM tickets WHERE device_id = ?1
                 AND component = ?2 AND status IN {ACTIVE_SQL})"
        ))?
        .query_row(params![device_id, component], |r| r.get(0))?)
}

/// A ticket's summary as events carry it: id, number, device, component, source,
/// status, priority, risk and deadlines.
pub(crate) fn get_ticket_row(conn: &Connection, id: i64) -> Result<Option<serde_json::Value>> {
    let row = conn
        .prepare_cached(
            "SELECT number, device_id, component, source, status, priority, risk, respond_by,
                 resolve_by FROM tickets WHERE id = ?1",
        )?
        .query_row(params![id], |r| {
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ),
                (
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, f64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                ),
            ))
        })
        .optional()?;
    Ok(row.map(
        |(
            (number, device_id, component, source),
            (status, priority, risk, respond_by, resolve_by),
        )| {
            serde_json::json!({
                "id": id, "number": number, "device_id": device_id, "component": component,
                "source": source, "status": status, "priority": priority, "risk": risk,
                "respond_by": Timestamp(respond_by), "resolve_by": resolve_by.map(Timestamp),
            })
        },
    ))
}

/// One ticket's recorded outcome, for the feedback loop (`fixahead train --from-store`).
#[derive(Clone, Debug, PartialEq)]
pub struct TicketOutcome {
    /// The ticket's id.
    pub ticket_id: i64,
    /// The ticket's number.
    pub number: String,
    /// The device.
    pub device_id: String,
    /// The device's type.
    pub device_type: String,
    /// The ticket's component.
    pub component: String,
    /// The ticket's status now.
    pub status: TicketStatus,
    /// Its outcome: the latest one recorded (a reopen clears it, so a reopened ticket
    /// has one again only once a new outcome is recorded).
    pub outcome: Outcome,
}

/// Every ticket with an outcome, by ticket id, read from the ticket store at `path`
/// on a read-only connection: safe beside a running `fixahead run` (WAL). A store
/// from before schema version 2 has no outcomes (empty).
pub fn read_outcomes(path: &Path) -> Result<Vec<TicketOutcome>> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // Outcomes exist from schema version 2 on.
    if version < 2 {
        return Ok(Vec::new());
    }
    let mut st = conn.prepare(
        "SELECT id, number, device_id, device_type, component, status, outcome FROM tickets
         WHERE outcome IS NOT NULL ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (ticket_id, number, device_id, device_type, component, status, outcome) = row?;
        out.push(TicketOutcome {
            ticket_id,
            number,
            device_id,
            device_type,
            component,
            status: parse_status(&status)?,
            outcome: serde_json::from_str(&outcome).map_err(|e| corrupt("outcome", e))?,
        });
    }
    Ok(out)
}

/// The tickets whose `perf_rev` is above `after`, as the performance report keeps
/// them: (id, revision, fact), read from the covering index `tickets_performance`.
pub(crate) fn performance_facts(
    conn: &Connection,
    after: i64,
) -> Result<Vec<(i64, i64, crate::tickets::performance::Fact)>> {
    use crate::tickets::performance::Fact;
    let mut st = conn.prepare_cached(
        "SELECT id, perf_rev, opened_at, source, status, device_id, device_type, component,
             model_version, region, ended_at, outcome_kind, outcome_component,
             outcome_failed_at
         FROM tickets INDEXED BY tickets_performance WHERE perf_rev > ?1",
    )?;
    let rows = st.query_map(params![after], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            Fact {
                opened_at: r.get(2)?,
                proactive: r.get_ref(3)?.as_str()? == "proactive",
                status: r.get_ref(4)?.as_str()?.parse().ok(),
                device_id: r.get(5)?,
                device_type: r.get(6)?,
                component: r.get(7)?,
                model_version: r.get(8)?,
                region: r.get(9)?,
                ended_at: r.get(10)?,
                outcome_kind: r
                    .get_ref(11)?
                    .as_str_or_null()?
                    .and_then(crate::tickets::performance::outcome_kind),
                outcome_component: r.get(12)?,
                failed_at: r.get(13)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
