//! Outcomes as the feedback loop and the model performance report read them.

use std::path::Path;

use domain::{Outcome, OutcomeKind, TicketStatus};
use rusqlite::params;

use super::schema::TICKETS;
use super::ticket::{corrupt, parse_status};
use super::Tables;
use crate::sqlite::{self, user_version, Access};
use crate::Result;

/// A ticket as the model performance report reads it: one row of the covering index
/// `tickets_performance`.
#[derive(Clone, Debug, PartialEq)]
pub struct PerformanceFact {
    /// When it was opened (epoch ms).
    pub opened_at: i64,
    /// Opened by a model flag (else by a critical fault).
    pub proactive: bool,
    /// `None` for a status this version does not know.
    pub status: Option<TicketStatus>,
    /// The device.
    pub device_id: String,
    /// Its type.
    pub device_type: String,
    /// The ticket's component.
    pub component: String,
    /// The model version of its latest score.
    pub model_version: String,
    /// The assignment's region.
    pub region: Option<String>,
    /// When it was resolved or dismissed (epoch ms).
    pub ended_at: Option<i64>,
    /// The recorded outcome's kind (`None`: none, or one this version does not know).
    pub outcome_kind: Option<OutcomeKind>,
    /// The outcome's component.
    pub outcome_component: Option<String>,
    /// The outcome's failure time (epoch ms).
    pub failed_at: Option<i64>,
}

/// An outcome kind from its wire name (`None` for one this version does not know).
pub(super) fn outcome_kind(name: &str) -> Option<OutcomeKind> {
    Some(match name {
        "confirmed_failure" => OutcomeKind::ConfirmedFailure,
        "no_fault_found" => OutcomeKind::NoFaultFound,
        "customer_declined" => OutcomeKind::CustomerDeclined,
        "not_reached" => OutcomeKind::NotReached,
        _ => return None,
    })
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
    let conn = sqlite::open(path, Access::ReadOnly, &TICKETS)?;
    // Outcomes exist from schema version 2 on.
    if user_version(&conn)? < 2 {
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

impl Tables<'_> {
    /// The tickets whose `perf_rev` is above `after`, as the performance report keeps
    /// them: (id, revision, fact), read from the covering index `tickets_performance`.
    pub fn performance_facts(&self, after: i64) -> Result<Vec<(i64, i64, PerformanceFact)>> {
        let conn = self.conn;
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
                PerformanceFact {
                    opened_at: r.get(2)?,
                    proactive: r.get_ref(3)?.as_str()? == "proactive",
                    status: r.get_ref(4)?.as_str()?.parse().ok(),
                    device_id: r.get(5)?,
                    device_type: r.get(6)?,
                    component: r.get(7)?,
                    model_version: r.get(8)?,
                    region: r.get(9)?,
                    ended_at: r.get(10)?,
                    outcome_kind: r.get_ref(11)?.as_str_or_null()?.and_then(outcome_kind),
                    outcome_component: r.get(12)?,
                    failed_at: r.get(13)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
