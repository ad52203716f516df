//! Acknowledging a batch alarm: a planner says they have seen it and what they are
//! doing about it (docs/fleet.md, "Batch alarms"). The alarm stays active until the
//! detector clears it; the acknowledgement only records who took it on.

use store::tickets::AlarmAck;

use super::{AlarmRecord, Fleet};
use crate::{Error, Result};

/// The longest acknowledgement note, in characters (as a ticket note).
pub const MAX_ACK_NOTE: usize = 2_000;

/// Checks an acknowledgement note: not blank, at most [`MAX_ACK_NOTE`] characters;
/// returns it trimmed.
pub fn check_ack_note(note: &str) -> Result<&str> {
    let note = note.trim();
    if note.is_empty() {
        return Err(Error::invalid(
            "note: must not be empty; say what is being done about the alarm",
        ));
    }
    if note.chars().count() > MAX_ACK_NOTE {
        return Err(Error::invalid(format!(
            "note: longer than {MAX_ACK_NOTE} characters"
        )));
    }
    Ok(note)
}

impl Fleet {
    /// Acknowledges active alarm `id` for `actor` with `note`: [`Error::NotFound`]
    /// for an unknown alarm, [`Error::Conflict`] for a cleared one or one already
    /// acknowledged, [`Error::Invalid`] for a blank or too long note. Returns the
    /// alarm with its acknowledgement.
    pub fn acknowledge(&self, id: i64, actor: &str, note: &str) -> Result<AlarmRecord> {
        let note = check_ack_note(note)?;
        self.tickets.write(|tx, now| {
            let alarm = tx
                .find_alarm(id)?
                .ok_or_else(|| Error::NotFound(format!("alarm {id} not found")))?;
            if let Some(ack) = &alarm.acknowledged {
                return Err(Error::Conflict(format!(
                    "alarm {id} was acknowledged by {} at {}",
                    ack.actor, ack.at
                )));
            }
            if alarm.status != "active" {
                return Err(Error::Conflict(format!(
                    "alarm {id} is {}: only active alarms are acknowledged",
                    alarm.status
                )));
            }
            let ack = AlarmAck {
                at: now,
                actor: actor.to_owned(),
                note: note.to_owned(),
            };
            if !tx.acknowledge_alarm(id, &ack)? {
                return Err(Error::Conflict(format!(
                    "alarm {id} was acknowledged meanwhile"
                )));
            }
            tracing::info!(alarm_id = id, actor, "Alarm acknowledged");
            Ok(AlarmRecord {
                acknowledged: Some(ack),
                ..alarm
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::{ProfileSet, Timestamp};
    use store::hot::{HotStore, StoreReader};
    use store::tickets::{AlarmCell, AlarmNumbers};

    use super::*;
    use crate::fleet::FleetSettings;
    use crate::{TicketConfig, TicketService};

    #[test]
    fn an_active_alarm_is_acknowledged_once_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let hot = dir.path().join("hot.db");
        HotStore::open(&hot, store::Synchronous::Normal).unwrap();
        let tickets =
            TicketService::open(&dir.path().join("tickets.db"), TicketConfig::default()).unwrap();
        let fleet = Fleet::new(
            StoreReader::open(&hot).unwrap(),
            tickets.clone(),
            Arc::new(ProfileSet::builtin()),
            FleetSettings::default(),
        );
        let cell = |value: &str| AlarmCell {
            model: "WM-500".into(),
            dimension: "batch".into(),
            value: value.into(),
            component: "drain_pump".into(),
            statistic: "confirmed_failures".into(),
        };
        let numbers = AlarmNumbers {
            p_value: 1e-9,
            q_value: 1e-8,
            observed: 12,
            expected: 2.5,
            exposure: 400.0,
            ratio: Some(4.8),
        };
        let (active, cleared) = tickets
            .write(|tx, now| {
                let a = tx.insert_alarm(&cell("B1"), &numbers, now)?;
                let c = tx.insert_alarm(&cell("B2"), &numbers, now)?;
                tx.clear_alarm(c, Timestamp(now.millis() + 1))?;
                Ok((a, c))
            })
            .unwrap();

        for blank in ["", "   \n"] {
            let e = fleet
                .acknowledge(active, "Wang (planner)", blank)
                .unwrap_err();
            assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        }
        let long = "长".repeat(MAX_ACK_NOTE + 1);
        assert!(matches!(
            fleet.acknowledge(active, "Wang (planner)", &long),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            fleet.acknowledge(999, "Wang (planner)", "x"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            fleet.acknowledge(cleared, "Wang (planner)", "x"),
            Err(Error::Conflict(_))
        ));

        let a = fleet
            .acknowledge(active, "Wang (planner)", "  Quality hold on B1  ")
            .unwrap();
        let ack = a.acknowledged.clone().unwrap();
        assert_eq!(
            (ack.actor.as_str(), ack.note.as_str()),
            ("Wang (planner)", "Quality hold on B1")
        );
        assert_eq!(a.status, "active", "an acknowledged alarm stays active");
        let again = fleet
            .acknowledge(active, "Li (planner)", "mine")
            .unwrap_err();
        assert!(
            matches!(&again, Error::Conflict(m) if m.contains("Wang (planner)")),
            "{again:?}"
        );
        let listed = fleet.alarms(Some("active"), None, 10).unwrap();
        assert_eq!(listed, vec![a]);
    }
}
