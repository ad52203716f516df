//! `fleet_alarm_acks`: who acknowledged a batch alarm, when, and with what note. One
//! row per alarm at most (the alarm id is the key): the first acknowledgement is the one
//! that counts, a second one is a conflict. A table of its own rather than columns of
//! `fleet_alarms`, so it is created by any read-write open like the other tables added
//! without a schema version (`CREATE TABLE IF NOT EXISTS`) and needs no upgrade step.

use domain::Timestamp;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::fleet::{alarm_row, ALARM_SELECT};
use super::{AlarmRecord, Tables};
use crate::Result;

/// The acknowledgements table.
pub(super) const FLEET_ALARM_ACKS: &str = r#"
CREATE TABLE IF NOT EXISTS fleet_alarm_acks (
    alarm_id INTEGER PRIMARY KEY REFERENCES fleet_alarms (id),
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    note     TEXT NOT NULL
);
"#;

/// A person's (or key's) acknowledgement of an alarm.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlarmAck {
    /// When it was acknowledged (wall clock).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
    /// Who acknowledged it, as ticket logs name people and keys.
    pub actor: String,
    /// What they said they are doing about it.
    pub note: String,
}

impl Tables<'_> {
    /// Alarm `id`, if there is one.
    pub fn find_alarm(&self, id: i64) -> Result<Option<AlarmRecord>> {
        Ok(self
            .conn
            .prepare_cached(&format!("{ALARM_SELECT} WHERE a.id = ?1"))?
            .query_row(params![id], alarm_row)
            .optional()?)
    }

    /// Records the acknowledgement of alarm `id` unless it has one; returns whether it
    /// was recorded. The caller checks that the alarm exists and is active.
    pub fn acknowledge_alarm(&self, id: i64, ack: &AlarmAck) -> Result<bool> {
        let n = self.conn.execute(
            "INSERT INTO fleet_alarm_acks (alarm_id, at, actor, note) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (alarm_id) DO NOTHING",
            params![id, ack.at.millis(), ack.actor, ack.note],
        )?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::{AlarmCell, AlarmNumbers, TicketDb};

    fn cell() -> AlarmCell {
        AlarmCell {
            model: "WM-500".into(),
            dimension: "batch".into(),
            value: "B2025-07".into(),
            component: "drain_pump".into(),
            statistic: "confirmed_failures".into(),
        }
    }

    const NUMBERS: AlarmNumbers = AlarmNumbers {
        p_value: 1e-9,
        q_value: 1e-8,
        observed: 12,
        expected: 2.5,
        exposure: 400.0,
        ratio: Some(4.8),
    };

    #[test]
    fn an_alarm_is_acknowledged_once_and_lists_show_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = TicketDb::open(&dir.path().join("tickets.db")).unwrap();
        let id = db
            .write(|tx| tx.insert_alarm(&cell(), &NUMBERS, Timestamp(1000)))
            .unwrap();
        let before = db.read(|t| t.find_alarm(id)).unwrap().unwrap();
        assert_eq!(before.acknowledged, None);
        assert!(db.read(|t| t.find_alarm(id + 1)).unwrap().is_none());

        let ack = AlarmAck {
            at: Timestamp(2000),
            actor: "Wang Fang (planner)".into(),
            note: "Quality hold on B2025-07, \"pumps\" <checked>".into(),
        };
        assert!(db.write(|tx| tx.acknowledge_alarm(id, &ack)).unwrap());
        let second = AlarmAck {
            note: "again".into(),
            ..ack.clone()
        };
        assert!(!db.write(|tx| tx.acknowledge_alarm(id, &second)).unwrap());

        // Every read of alarms carries the first acknowledgement.
        let got = db.read(|t| t.find_alarm(id)).unwrap().unwrap();
        assert_eq!(got.acknowledged.as_ref(), Some(&ack));
        assert_eq!(db.read(|t| t.alarm(id)).unwrap(), got);
        let listed = db.read(|t| t.alarms(Some("active"), None, 10)).unwrap();
        assert_eq!(listed, vec![got.clone()]);
        assert_eq!(db.read(|t| t.active_alarms()).unwrap(), vec![got.clone()]);
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(json["acknowledged"]["actor"], "Wang Fang (planner)");
        assert_eq!(json["model"], "WM-500", "the cell stays flattened");
    }

    #[test]
    fn an_older_file_gains_the_table_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.db");
        let id = {
            let db = TicketDb::open(&path).unwrap();
            db.write(|tx| tx.insert_alarm(&cell(), &NUMBERS, Timestamp(1000)))
                .unwrap()
        };
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("DROP TABLE fleet_alarm_acks").unwrap();
        }
        let db = TicketDb::open(&path).unwrap();
        let got = db.read(|t| t.find_alarm(id)).unwrap().unwrap();
        assert_eq!(got.acknowledged, None);
    }
}
