//! The customer-report columns of `tickets` (schema 7): how a ticket came in
//! (`channel`), the reports it holds (`reports`, a JSON array of
//! [`domain::CustomerReport`]) and the latest pre-judgement (`prejudgement`), and the
//! priority raise a report may bring (docs/intake.md).

use domain::{CustomerReport, PreJudgement, Priority, ReportChannel, Timestamp};
use rusqlite::params;

use super::Tables;
use crate::Result;

impl Tables<'_> {
    /// Writes a ticket's channel, its reports and its latest pre-judgement.
    pub fn set_reports(
        &self,
        id: i64,
        channel: ReportChannel,
        reports: &[CustomerReport],
        prejudgement: &PreJudgement,
        now: Timestamp,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tickets SET channel = ?2, reports = ?3, prejudgement = ?4, updated_at = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                channel.as_str(),
                serde_json::to_string(reports)?,
                serde_json::to_string(prejudgement)?,
                now.millis(),
            ])?;
        Ok(())
    }

    /// Raises a ticket's priority with its moved SLA deadlines.
    pub fn set_priority(
        &self,
        id: i64,
        priority: Priority,
        respond_by: Timestamp,
        resolve_by: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tickets SET priority = ?2, respond_by = ?3, resolve_by = ?4,
                     updated_at = ?5 WHERE id = ?1",
            )?
            .execute(params![
                id,
                priority.as_str(),
                respond_by.millis(),
                resolve_by.map(Timestamp::millis),
                now.millis(),
            ])?;
        Ok(())
    }
}
