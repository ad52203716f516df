//! SLA clocks: the tickets whose clock ran out, and marking them breached.

use domain::{Priority, Timestamp};
use rusqlite::params;
use serde::Serialize;

use super::ticket::parse_priority;
use super::Tables;
use crate::Result;

/// Which SLA clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaKind {
    /// Time to the first response (leaving `open`).
    Respond,
    /// Time to resolution (or dismissal).
    Resolve,
}

impl SlaKind {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Respond => "respond",
            Self::Resolve => "resolve",
        }
    }
}

/// An SLA clock that ran out on an active ticket and is not yet marked breached.
pub struct DueClock {
    pub id: i64,
    pub priority: Priority,
    pub deadline: Timestamp,
}

impl Tables<'_> {
    /// Active tickets whose respond clock (still `open`, never responded) or resolve
    /// clock ran out before `now` and is not marked yet, oldest deadline first.
    pub fn due_clocks(&self, now: Timestamp, kind: SlaKind) -> Result<Vec<DueClock>> {
        let conn = self.conn;
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
    pub fn mark_breached(
        &self,
        id: i64,
        kind: SlaKind,
        escalated_to: &str,
        now: Timestamp,
    ) -> Result<()> {
        let conn = self.conn;
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
}
