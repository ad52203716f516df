//! The `tickets`, `ticket_log` and `ticket_numbers` tables: tickets, their progress
//! log and their numbers.

use domain::{
    Assignment, DeviceId, Diagnosis, LogEntry, Outcome, Priority, ReportChannel, Ticket,
    TicketSource, TicketStatus, Timestamp,
};
use rusqlite::{params, OptionalExtension};

use super::Tables;
use crate::sqlite;
use crate::{Error, Result};

/// Filter and page of a ticket listing. Results are newest first (descending id).
#[derive(Clone, Debug, PartialEq)]
pub struct TicketQuery {
    /// Only tickets in one of these statuses; empty means any status.
    pub statuses: Vec<TicketStatus>,
    /// Only tickets of this device.
    pub device_id: Option<DeviceId>,
    /// Only tickets for this component.
    pub component: Option<String>,
    /// Only tickets of this priority.
    pub priority: Option<Priority>,
    /// At most this many tickets.
    pub limit: usize,
    /// Cursor: only tickets listed after this id, i.e. with a smaller id.
    pub after_id: Option<i64>,
    /// Only tickets from this source.
    pub source: Option<TicketSource>,
    /// Only tickets opened at or after this time.
    pub opened_after: Option<Timestamp>,
}

impl Default for TicketQuery {
    fn default() -> Self {
        Self {
            statuses: Vec::new(),
            device_id: None,
            component: None,
            priority: None,
            limit: 100,
            after_id: None,
            source: None,
            opened_after: None,
        }
    }
}

impl TicketQuery {
    /// Every active status (`open`, `acknowledged`, `scheduled`, `in_progress`).
    pub fn active_statuses() -> Vec<TicketStatus> {
        TicketStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect()
    }
}

/// The SQL list of active statuses; must match [`TicketStatus::is_active`].
pub(super) const ACTIVE_SQL: &str = "('open', 'acknowledged', 'scheduled', 'in_progress')";

/// What the device registry says about a ticket's device: model, production batch
/// and region (schema version 6). Copied onto the ticket when it opens, so the queue
/// filters by batch and region in `tickets.db` alone; a later signal fills in what
/// was unknown and follows a changed value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceFacts<'a> {
    pub model: Option<&'a str>,
    pub batch: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// A ticket to insert.
pub struct NewTicket<'a> {
    pub number: &'a str,
    pub device_id: &'a str,
    pub device_type: &'a str,
    pub component: &'a str,
    pub source: TicketSource,
    pub risk: f64,
    pub model_version: &'a str,
    pub priority: Priority,
    pub opened_at: Timestamp,
    pub respond_by: Timestamp,
    pub resolve_by: Timestamp,
    pub diagnosis_json: &'a str,
    pub skills_json: &'a str,
    /// The device's model, batch and region, when the registry knows them.
    pub device: DeviceFacts<'a>,
}

/// The parts of the active ticket the update path needs.
pub struct ActiveTicket {
    pub id: i64,
    pub number: String,
    pub priority: Priority,
    pub peak_risk: f64,
    pub respond_by: Timestamp,
    pub resolve_by: Option<Timestamp>,
    pub risk: f64,
    pub model_version: String,
    pub risk_logged: f64,
    pub risk_logged_at: Timestamp,
}

/// New values for an active ticket.
pub struct TicketUpdate<'a> {
    pub id: i64,
    pub priority: Priority,
    pub risk: f64,
    pub peak_risk: f64,
    pub model_version: &'a str,
    pub updated_at: Timestamp,
    pub respond_by: Timestamp,
    pub resolve_by: Option<Timestamp>,
    pub diagnosis_json: &'a str,
    /// `Some((risk, at))` when this update writes a `risk_updated` log entry.
    pub risk_logged: Option<(f64, Timestamp)>,
    /// The device's model, batch and region; a known value replaces the stored one,
    /// an unknown one keeps it.
    pub device: DeviceFacts<'a>,
}

/// The lifecycle columns a transition writes.
pub struct StatusChange {
    pub id: i64,
    pub status: TicketStatus,
    pub now: Timestamp,
    /// Set `responded_at` to now if it is not set yet.
    pub respond: bool,
    /// Set `ended_at` to now (resolved, dismissed).
    pub end: bool,
    /// A reopen: new clocks, breach flags and outcome cleared.
    pub reopen: Option<Reopen>,
}

/// The fresh clocks of a reopened ticket.
pub struct Reopen {
    /// `None` keeps `responded_at` (reopened to `in_progress`).
    pub respond_by: Option<Timestamp>,
    pub resolve_by: Timestamp,
}

pub(super) const TICKET_SELECT: &str =
    "SELECT id, number, device_id, device_type, component, source,
    status, priority, risk, peak_risk, model_version, opened_at, updated_at, respond_by,
    signals, diagnosis, resolve_by, responded_at, ended_at, respond_breached,
    resolve_breached, escalated_to, engineer, window_start, window_end, skills, region,
    outcome, channel, reports, prejudgement, steps, satisfaction, callback, visits, planner
    FROM tickets";

/// A ticket row before its text columns are parsed.
pub(super) struct RawTicket {
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
    channel: String,
    reports: String,
    prejudgement: Option<String>,
    steps: String,
    satisfaction: Option<String>,
    callback: Option<String>,
    visits: i64,
    planner: Option<String>,
}

pub(super) fn raw_ticket(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawTicket> {
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
        channel: r.get(28)?,
        reports: r.get(29)?,
        prejudgement: r.get(30)?,
        steps: r.get(31)?,
        satisfaction: r.get(32)?,
        callback: r.get(33)?,
        visits: r.get(34)?,
        planner: r.get(35)?,
    })
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("tickets.{what}: {e}"))
}

/// A JSON column of the ticket row, parsed.
pub(super) fn json_column<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| corrupt(what, e))
}

pub(super) fn parse_priority(s: &str) -> Result<Priority> {
    s.parse().map_err(|e| corrupt("priority", e))
}

pub(super) fn parse_status(s: &str) -> Result<TicketStatus> {
    s.parse().map_err(|e| corrupt("status", e))
}

fn parse_source(s: &str) -> Result<TicketSource> {
    match s {
        "proactive" => Ok(TicketSource::Proactive),
        "reactive" => Ok(TicketSource::Reactive),
        other => Err(corrupt("source", format!("unknown source {other:?}"))),
    }
}

impl Tables<'_> {
    /// The next number for `day` without issuing it; [`issue_number`] records it once the
    /// ticket is inserted (both inside one write transaction).
    pub fn peek_number(&self, day: &str) -> Result<i64> {
        let conn = self.conn;
        let last: Option<i64> = conn
            .prepare_cached("SELECT last_seq FROM ticket_numbers WHERE day = ?1")?
            .query_row(params![day], |r| r.get(0))
            .optional()?;
        Ok(last.unwrap_or(0) + 1)
    }

    /// Records `seq` as the last number issued on `day`.
    pub fn issue_number(&self, day: &str, seq: i64) -> Result<()> {
        let conn = self.conn;
        conn.prepare_cached(
            "INSERT INTO ticket_numbers (day, last_seq) VALUES (?1, ?2)
             ON CONFLICT (day) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)",
        )?
        .execute(params![day, seq])?;
        Ok(())
    }

    /// Inserts an open ticket unless an active one exists for the pair; returns the new
    /// id, or `None` when the unique index reported the conflict.
    pub fn insert_ticket(&self, t: &NewTicket<'_>) -> Result<Option<i64>> {
        let conn = self.conn;
        let id = conn
            .prepare_cached(&format!(
                "INSERT INTO tickets (number, device_id, device_type, component, source, status,
                     priority, risk, peak_risk, model_version, opened_at, updated_at, respond_by,
                     signals, diagnosis, risk_logged, risk_logged_at, resolve_by, skills,
                     device_model, device_batch, device_region)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?7, ?8, ?9, ?9, ?10, 1, ?11, ?7, ?9,
                     ?12, ?13, ?14, ?15, ?16)
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
                    t.device.model,
                    t.device.batch,
                    t.device.region,
                ],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id)
    }

    /// The active ticket of a (device, component), if any.
    pub fn active_ticket(&self, device_id: &str, component: &str) -> Result<Option<ActiveTicket>> {
        let conn = self.conn;
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

    /// Applies an update to a ticket and counts one more signal.
    pub fn update_ticket(&self, u: &TicketUpdate<'_>) -> Result<()> {
        let conn = self.conn;
        let (logged, logged_at) = match u.risk_logged {
            Some((r, at)) => (Some(r), Some(at.millis())),
            None => (None, None),
        };
        conn.prepare_cached(
            "UPDATE tickets SET priority = ?2, risk = ?3, peak_risk = ?4, model_version = ?5,
                 updated_at = ?6, respond_by = ?7, diagnosis = ?8, signals = signals + 1,
                 risk_logged = COALESCE(?9, risk_logged),
                 risk_logged_at = COALESCE(?10, risk_logged_at), resolve_by = ?11,
                 device_model = COALESCE(?12, device_model),
                 device_batch = COALESCE(?13, device_batch),
                 device_region = COALESCE(?14, device_region)
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
            u.device.model,
            u.device.batch,
            u.device.region,
        ])?;
        Ok(())
    }

    /// Appends a progress-log entry.
    pub fn append_log(
        &self,
        ticket_id: i64,
        at: Timestamp,
        actor: &str,
        action: &str,
        note: &str,
    ) -> Result<()> {
        let conn = self.conn;
        conn.prepare_cached(
            "INSERT INTO ticket_log (ticket_id, at, actor, action, note) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![ticket_id, at.millis(), actor, action, note])?;
        Ok(())
    }

    fn ticket_log(&self, ticket_id: i64) -> Result<Vec<LogEntry>> {
        let conn = self.conn;
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

    pub(super) fn ticket_of(&self, raw: RawTicket) -> Result<Ticket> {
        let mut sla_breaches = Vec::new();
        if raw.respond_breached {
            sla_breaches.push("respond".to_owned());
        }
        if raw.resolve_breached {
            sla_breaches.push("resolve".to_owned());
        }
        Ok(Ticket {
            log: self.ticket_log(raw.id)?,
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
            channel: raw
                .channel
                .parse::<ReportChannel>()
                .map_err(|e| corrupt("channel", e))?,
            reports: json_column("reports", &raw.reports)?,
            prejudgement: raw
                .prejudgement
                .as_deref()
                .map(|j| json_column("prejudgement", j))
                .transpose()?,
            steps: json_column("steps", &raw.steps)?,
            satisfaction: raw
                .satisfaction
                .as_deref()
                .map(|j| json_column("satisfaction", j))
                .transpose()?,
            callback: raw
                .callback
                .as_deref()
                .map(|j| json_column("callback", j))
                .transpose()?,
            visits: u32::try_from(raw.visits.max(0)).unwrap_or(u32::MAX),
            planner: raw.planner,
        })
    }

    /// One ticket with its log.
    pub fn get_ticket(&self, id: i64) -> Result<Option<Ticket>> {
        let conn = self.conn;
        let raw = conn
            .prepare_cached(&format!("{TICKET_SELECT} WHERE id = ?1"))?
            .query_row(params![id], raw_ticket)
            .optional()?;
        raw.map(|raw| self.ticket_of(raw)).transpose()
    }

    /// Tickets matching a query, newest first, each with its log.
    pub fn list_tickets(&self, q: &TicketQuery) -> Result<Vec<Ticket>> {
        let conn = self.conn;
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
        raws.into_iter().map(|raw| self.ticket_of(raw)).collect()
    }

    /// Number of active tickets.
    pub fn count_active(&self) -> Result<u64> {
        let conn = self.conn;
        let n: i64 = conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM tickets WHERE status IN {ACTIVE_SQL}"
            ))?
            .query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Number of tickets per status (statuses without tickets are absent).
    pub fn count_by_status(&self) -> Result<Vec<(TicketStatus, u64)>> {
        let conn = self.conn;
        let mut st = conn.prepare_cached("SELECT status, COUNT(*) FROM tickets GROUP BY status")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (status, n) = row?;
            Ok((parse_status(&status)?, n.max(0) as u64))
        })
        .collect()
    }

    /// Applies a status change; `Ok(false)` when the unique index forbids it (another
    /// ticket is active for the same pair).
    pub fn change_status(&self, c: &StatusChange) -> Result<bool> {
        let conn = self.conn;
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
            Err(e) if sqlite::is_constraint(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Counts one more visit (the ticket entered `in_progress`).
    pub fn add_visit(&self, id: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE tickets SET visits = visits + 1 WHERE id = ?1")?
            .execute(params![id])?;
        Ok(())
    }

    /// Makes `planner` the ticket's planner.
    pub fn set_planner(&self, id: i64, planner: &str) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE tickets SET planner = ?2 WHERE id = ?1")?
            .execute(params![id, planner])?;
        Ok(())
    }

    /// Writes a ticket's assignment (skills are not changed).
    pub fn set_assignment(&self, id: i64, a: &Assignment, now: Timestamp) -> Result<()> {
        let conn = self.conn;
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
    pub fn set_outcome(&self, id: i64, o: &Outcome, now: Timestamp) -> Result<()> {
        let conn = self.conn;
        conn.prepare_cached("UPDATE tickets SET outcome = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, serde_json::to_string(o)?, now.millis()])?;
        Ok(())
    }

    /// A ticket's summary as events carry it: id, number, device, component, source,
    /// status, priority, risk and deadlines.
    pub fn ticket_summary(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let conn = self.conn;
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
}
