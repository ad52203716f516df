//! The customer's satisfaction and the call-back (schema 7): `satisfaction` and
//! `callback` (JSON), and `callback_due`, set while the call-back is neither done nor
//! found overdue (the sweep reads it through the partial index `tickets_callback_due`).

use domain::{Callback, Satisfaction, Timestamp};
use rusqlite::params;

use super::Tables;
use crate::Result;

impl Tables<'_> {
    /// Writes (or replaces) a ticket's satisfaction answer.
    pub fn set_satisfaction(&self, id: i64, s: &Satisfaction, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE tickets SET satisfaction = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, serde_json::to_string(s)?, now.millis()])?;
        Ok(())
    }

    /// Writes a ticket's call-back and its `callback_due` (the due time while it is
    /// pending and not overdue, else NULL).
    pub fn set_callback(&self, id: i64, c: &Callback, now: Timestamp) -> Result<()> {
        let due = (c.done_at.is_none() && c.overdue_at.is_none()).then_some(c.due.millis());
        self.conn
            .prepare_cached(
                "UPDATE tickets SET callback = ?2, callback_due = ?3, updated_at = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, serde_json::to_string(c)?, due, now.millis()])?;
        Ok(())
    }

    /// Tickets whose pending call-back ran out before `now`, earliest first.
    pub fn due_callbacks(&self, now: Timestamp) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id FROM tickets WHERE callback_due IS NOT NULL AND callback_due < ?1
             ORDER BY callback_due, id",
        )?;
        let rows = st.query_map(params![now.millis()], |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Ids of the tickets that need someone's attention, newest change first, at most
    /// `limit`: a call-back not yet done, or a step found overdue and not yet done
    /// (on a ticket that is active or resolved: a closed or dismissed one has none).
    pub fn alert_tickets(&self, limit: usize) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id FROM tickets
             WHERE (callback IS NOT NULL AND json_extract(callback, '$.done_at') IS NULL)
                OR (status IN ('open', 'acknowledged', 'scheduled', 'in_progress', 'resolved')
                    AND EXISTS (SELECT 1 FROM json_each(tickets.steps) AS s
                                WHERE json_extract(s.value, '$.overdue_at') IS NOT NULL
                                  AND json_extract(s.value, '$.done_at') IS NULL))
             ORDER BY updated_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = st.query_map(params![limit as i64], |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
