//! The ticket store: SQLite, in its own file (`{data_dir}/tickets.db` by convention),
//! WAL mode, one writer connection and one reader connection.
//!
//! Tables:
//! * `tickets`: one row per ticket. The unique partial index `tickets_one_active` on
//!   `(device_id, component) WHERE status IN ('open', 'acknowledged', 'scheduled',
//!   'in_progress')` makes "one active ticket per (device, component)" a property of
//!   the database. `number` is unique. `diagnosis` is the [`domain::Diagnosis`] as JSON.
//!   `risk_logged`/`risk_logged_at` remember the last risk written to the log, so the
//!   log is not flooded by every score.
//! * `ticket_log`: the progress log (ticket, time, actor, action, note), oldest first
//!   by id.
//! * `ticket_numbers`: the last sequence number issued per UTC day (`YYYYMMDD`). A
//!   number is `YYYYMMDD` followed by the 6-digit sequence (`20261124000042`); it is
//!   allocated in the same transaction as the ticket insert and never reused.
//! * `device_risk`: the latest score per (device, component) by event time.
//!
//! The functions here are plain SQL over a connection or transaction; the rules live in
//! the service.

use std::path::Path;
use std::time::Duration;

use domain::{
    Contribution, DeviceId, Diagnosis, LogEntry, Prediction, Priority, Ticket, TicketSource,
    TicketStatus, Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::tickets::{RiskRecord, TicketQuery};
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
    PRIMARY KEY (device_id, component)
) WITHOUT ROWID;
"#;

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
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// A ticket to insert.
pub(crate) struct NewTicket<'a> {
    pub(crate) number: &'a str,
    pub(crate) prediction: &'a Prediction,
    pub(crate) priority: Priority,
    pub(crate) opened_at: Timestamp,
    pub(crate) respond_by: Timestamp,
    pub(crate) diagnosis_json: &'a str,
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

/// Inserts an open proactive ticket unless an active one exists for the pair; returns
/// the new id, or `None` when the unique index reported the conflict.
pub(crate) fn insert_ticket(conn: &Connection, t: &NewTicket<'_>) -> Result<Option<i64>> {
    let p = t.prediction;
    let id = conn
        .prepare_cached(&format!(
            "INSERT INTO tickets (number, device_id, device_type, component, source, status,
                 priority, risk, peak_risk, model_version, opened_at, updated_at, respond_by,
                 signals, diagnosis, risk_logged, risk_logged_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?7, ?8, ?9, ?9, ?10, 1, ?11, ?7, ?9)
             ON CONFLICT (device_id, component) WHERE status IN {ACTIVE_SQL} DO NOTHING
             RETURNING id"
        ))?
        .query_row(
            params![
                t.number,
                p.device_id.as_str(),
                p.device_type,
                p.component,
                TicketSource::Proactive.as_str(),
                t.priority.as_str(),
                p.risk,
                p.model_version,
                t.opened_at.millis(),
                t.respond_by.millis(),
                t.diagnosis_json,
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
            "SELECT id, number, priority, peak_risk, respond_by, risk_logged, risk_logged_at
             FROM tickets WHERE device_id = ?1 AND component = ?2 AND status IN {ACTIVE_SQL}"
        ))?
        .query_row(params![device_id, component], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, f64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })
        .optional()?;
    row.map(
        |(id, number, priority, peak_risk, respond_by, risk_logged, logged_at)| {
            Ok(ActiveTicket {
                id,
                number,
                priority: parse_priority(&priority)?,
                peak_risk,
                respond_by: Timestamp(respond_by),
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
             risk_logged_at = COALESCE(?10, risk_logged_at)
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
             model_version, ts, top_features, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (device_id, component) DO UPDATE SET
             device_type = excluded.device_type, risk = excluded.risk,
             threshold = excluded.threshold, flagged = excluded.flagged,
             model_version = excluded.model_version, ts = excluded.ts,
             top_features = excluded.top_features, updated_at = excluded.updated_at
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
    ])?;
    Ok(())
}

/// The current risk of every component of a device, by component name.
pub(crate) fn device_risk(conn: &Connection, device_id: &str) -> Result<Vec<RiskRecord>> {
    let mut st = conn.prepare_cached(
        "SELECT device_id, device_type, component, risk, threshold, flagged, model_version, ts,
             top_features, updated_at
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
    signals, diagnosis FROM tickets";

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

/// The status of a ticket, if it exists.
pub(crate) fn ticket_status(conn: &Connection, id: i64) -> Result<Option<TicketStatus>> {
    let s: Option<String> = conn
        .prepare_cached("SELECT status FROM tickets WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?;
    s.as_deref().map(parse_status).transpose()
}

/// Sets a ticket's status; `Ok(false)` when the unique index forbids it (another ticket
/// is active for the same pair).
pub(crate) fn set_status(
    conn: &Connection,
    id: i64,
    status: TicketStatus,
    now: Timestamp,
) -> Result<bool> {
    let result = conn
        .prepare_cached("UPDATE tickets SET status = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, status.as_str(), now.millis()]);
    match result {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}
