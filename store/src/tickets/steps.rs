//! The procedure's step clocks (schema 7): a ticket's `steps` (JSON array of
//! [`StepClock`]) and `step_due`, the earliest limit of a step neither done nor found
//! overdue (NULL when none), which the step sweep reads through the partial index
//! `tickets_step_due`.

use domain::{StepClock, Timestamp};
use rusqlite::params;

use super::Tables;
use crate::Result;

/// The earliest due time of a step neither done nor overdue: the sweep's key.
pub fn next_step_due(steps: &[StepClock]) -> Option<Timestamp> {
    steps
        .iter()
        .filter(|s| s.done_at.is_none() && s.overdue_at.is_none())
        .map(|s| s.due)
        .min()
}

impl Tables<'_> {
    /// Writes a ticket's step clocks and their `step_due` (computed here, so the two
    /// never disagree).
    pub fn set_steps(&self, id: i64, steps: &[StepClock]) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE tickets SET steps = ?2, step_due = ?3 WHERE id = ?1")?
            .execute(params![
                id,
                serde_json::to_string(steps)?,
                next_step_due(steps).map(Timestamp::millis),
            ])?;
        Ok(())
    }

    /// Tickets with a step past its limit at `now` (`step_due < now`) that is not yet
    /// marked overdue, earliest first.
    pub fn due_steps(&self, now: Timestamp) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id FROM tickets WHERE step_due IS NOT NULL AND step_due < ?1
             ORDER BY step_due, id",
        )?;
        let rows = st.query_map(params![now.millis()], |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, due: i64, done: bool, overdue: bool) -> StepClock {
        StepClock {
            step: name.into(),
            due: Timestamp(due),
            done_at: done.then_some(Timestamp(1)),
            overdue_at: overdue.then_some(Timestamp(2)),
            alerted: None,
        }
    }

    #[test]
    fn next_due_skips_done_and_overdue_steps() {
        assert_eq!(next_step_due(&[]), None);
        let steps = [
            step("respond", 10, true, false),
            step("act", 20, false, true),
            step("finish", 40, false, false),
            step("confirm", 30, false, false),
        ];
        assert_eq!(next_step_due(&steps), Some(Timestamp(30)));
    }
}
