//! The tickets of one device, read through the index `tickets_by_device (device_id,
//! id)`: the device page and remote diagnosis ask for them on every view, and the
//! general listing (`Tables::list_tickets`, whose optional filters are written as
//! `?n IS NULL OR ...`) cannot use that index, so on a store with a year of tickets it
//! would scan the table for each device.

use domain::Ticket;
use rusqlite::params;

use super::ticket::{raw_ticket, ACTIVE_SQL, TICKET_SELECT};
use super::Tables;
use crate::Result;

impl Tables<'_> {
    /// The newest `limit` tickets of `device_id` (only the active ones when
    /// `active_only`), newest first, each with its log.
    pub fn device_tickets(
        &self,
        device_id: &str,
        active_only: bool,
        limit: usize,
    ) -> Result<Vec<Ticket>> {
        let raws = {
            let mut st = self.conn.prepare_cached(&format!(
                "{TICKET_SELECT} WHERE device_id = ?1 AND (?2 = 0 OR status IN {ACTIVE_SQL})
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = st.query_map(
                params![
                    device_id,
                    i64::from(active_only),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                raw_ticket,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        raws.into_iter().map(|raw| self.ticket_of(raw)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::TicketDb;

    #[test]
    fn a_devices_tickets_are_read_through_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = TicketDb::open(&dir.path().join("tickets.db")).unwrap();
        let plan: Vec<String> = db
            .read(|t| {
                let mut st = t.conn.prepare(&format!(
                    "EXPLAIN QUERY PLAN {TICKET_SELECT} WHERE device_id = ?1
                     AND (?2 = 0 OR status IN {ACTIVE_SQL}) ORDER BY id DESC LIMIT ?3"
                ))?;
                let rows = st.query_map(params!["wm-1", 0, 10], |r| r.get::<_, String>(3))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("tickets_by_device"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
        assert!(db
            .read(|t| t.device_tickets("wm-1", false, 10))
            .unwrap()
            .is_empty());
    }
}
