//! What the service KPIs read (`api::kpis`, docs/kpis.md): one [`KpiFact`] per ticket
//! opened in a period, with the times, the people, the outcome, the customer's
//! satisfaction, the call-back, the step clocks and the reopens the definitions need.
//!
//! One range scan over `tickets` by `opened_at` (the JSON columns parsed here, only
//! the fields the figures use, so an older or newer writer's extra fields do no harm)
//! and one range scan of `ticket_log` by ticket id for the `reopened` entries.

use std::collections::HashMap;

use domain::{OutcomeKind, Priority, TicketSource, TicketStatus, Timestamp};
use rusqlite::params;
use serde::Deserialize;

use super::outcomes::outcome_kind;
use super::ticket::corrupt;
use super::Tables;
use crate::Result;

/// One ticket as the service KPIs read it.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiFact {
    /// The ticket's id.
    pub id: i64,
    /// The device.
    pub device_id: String,
    /// Its type.
    pub device_type: String,
    /// The ticket's component.
    pub component: String,
    /// Proactive (a model flag) or reactive (a fault code or a customer).
    pub source: TicketSource,
    /// How it came in (`device`, `phone`, ...): the wire name as stored.
    pub channel: String,
    /// `None` for a priority this version does not know.
    pub priority: Option<Priority>,
    /// `None` for a status this version does not know.
    pub status: Option<TicketStatus>,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// First contact: when it left `open`.
    pub responded_at: Option<Timestamp>,
    /// When it was resolved or dismissed.
    pub ended_at: Option<Timestamp>,
    /// The device's region from the registry, else the assignment's region.
    pub region: Option<String>,
    /// The assigned engineer.
    pub engineer: Option<String>,
    /// Times it entered `in_progress`.
    pub visits: u32,
    /// When it was reopened (the `reopened` log entries), oldest first.
    pub reopened: Vec<Timestamp>,
    /// The recorded outcome's kind (`None`: none, or one this version does not know).
    pub outcome_kind: Option<OutcomeKind>,
    /// The outcome's component.
    pub outcome_component: Option<String>,
    /// The outcome's failure time.
    pub failed_at: Option<Timestamp>,
    /// The customer's satisfaction score (1-5), if answered.
    pub satisfaction: Option<u8>,
    /// The call-back, if one was opened.
    pub callback: Option<KpiCallback>,
    /// The procedure's step clocks.
    pub steps: Vec<KpiStep>,
}

/// A call-back as the KPIs read it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct KpiCallback {
    /// When it must be done.
    pub due: Timestamp,
    /// When it was done.
    #[serde(default)]
    pub done_at: Option<Timestamp>,
    /// When it was found overdue.
    #[serde(default)]
    pub overdue_at: Option<Timestamp>,
}

/// A step clock as the KPIs read it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct KpiStep {
    /// The step's name.
    pub step: String,
    /// When it must be done.
    pub due: Timestamp,
    /// When it was done.
    #[serde(default)]
    pub done_at: Option<Timestamp>,
    /// When it was found past its limit.
    #[serde(default)]
    pub overdue_at: Option<Timestamp>,
}

#[derive(Deserialize)]
struct Score {
    score: u8,
}

fn json<T: for<'de> Deserialize<'de>>(what: &str, raw: Option<&str>) -> Result<Option<T>> {
    raw.map(|s| serde_json::from_str(s).map_err(|e| corrupt(what, e)))
        .transpose()
}

impl Tables<'_> {
    /// Every ticket opened in `[from, to)`, by id, with its `reopened` log entries.
    pub fn kpi_facts(&self, from: Timestamp, to: Timestamp) -> Result<Vec<KpiFact>> {
        let conn = self.conn;
        let mut st = conn.prepare_cached(
            "SELECT id, device_id, device_type, component, source, channel, priority, status,
                 opened_at, responded_at, ended_at, COALESCE(device_region, region), engineer,
                 visits, outcome_kind, outcome_component, outcome_failed_at, satisfaction,
                 callback, steps
             FROM tickets WHERE opened_at >= ?1 AND opened_at < ?2 ORDER BY id",
        )?;
        let mut rows = st.query(params![from.millis(), to.millis()])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let satisfaction: Option<Score> =
                json("satisfaction", r.get_ref(17)?.as_str_or_null()?)?;
            let steps: Option<Vec<KpiStep>> = json("steps", r.get_ref(19)?.as_str_or_null()?)?;
            out.push(KpiFact {
                id: r.get(0)?,
                device_id: r.get(1)?,
                device_type: r.get(2)?,
                component: r.get(3)?,
                source: if r.get_ref(4)?.as_str()? == "proactive" {
                    TicketSource::Proactive
                } else {
                    TicketSource::Reactive
                },
                channel: r.get(5)?,
                priority: r.get_ref(6)?.as_str()?.parse().ok(),
                status: r.get_ref(7)?.as_str()?.parse().ok(),
                opened_at: Timestamp(r.get(8)?),
                responded_at: r.get::<_, Option<i64>>(9)?.map(Timestamp),
                ended_at: r.get::<_, Option<i64>>(10)?.map(Timestamp),
                region: r.get(11)?,
                engineer: r.get(12)?,
                visits: r.get::<_, i64>(13)?.clamp(0, u32::MAX as i64) as u32,
                reopened: Vec::new(),
                outcome_kind: r.get_ref(14)?.as_str_or_null()?.and_then(outcome_kind),
                outcome_component: r.get(15)?,
                failed_at: r.get::<_, Option<i64>>(16)?.map(Timestamp),
                satisfaction: satisfaction.map(|s| s.score),
                callback: json("callback", r.get_ref(18)?.as_str_or_null()?)?,
                steps: steps.unwrap_or_default(),
            });
        }
        let (Some(lo), Some(hi)) = (
            out.iter().map(|f| f.id).min(),
            out.iter().map(|f| f.id).max(),
        ) else {
            return Ok(out);
        };
        let index: HashMap<i64, usize> = out.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        let mut st = conn.prepare_cached(
            "SELECT ticket_id, at FROM ticket_log
             WHERE ticket_id BETWEEN ?1 AND ?2 AND action = 'reopened' ORDER BY ticket_id, id",
        )?;
        let mut rows = st.query(params![lo, hi])?;
        while let Some(r) = rows.next()? {
            if let Some(&i) = index.get(&r.get::<_, i64>(0)?) {
                out[i].reopened.push(Timestamp(r.get(1)?));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::{DeviceFacts, NewTicket, StatusChange, TicketDb};

    const T0: i64 = 1_795_500_000_000;
    const HOUR: i64 = 3_600_000;

    fn insert(t: &Tables<'_>, n: usize, device: &str, opened_at: i64, region: Option<&str>) -> i64 {
        t.insert_ticket(&NewTicket {
            number: &format!("20261124{n:06}"),
            device_id: device,
            device_type: "washer",
            component: "drain_pump",
            source: if n % 2 == 0 {
                TicketSource::Proactive
            } else {
                TicketSource::Reactive
            },
            risk: 0.7,
            model_version: "washer-v1",
            priority: Priority::Urgent,
            opened_at: Timestamp(opened_at),
            respond_by: Timestamp(opened_at + HOUR),
            resolve_by: Timestamp(opened_at + 24 * HOUR),
            diagnosis_json: "{}",
            skills_json: "[]",
            device: DeviceFacts {
                model: None,
                batch: None,
                region,
            },
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn facts_carry_the_columns_the_json_and_the_reopens_of_the_period_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = TicketDb::open(&dir.path().join("tickets.db")).unwrap();
        let (before, a, b) = db
            .write(|t| {
                let before = insert(t, 0, "wm-1", T0 - HOUR, None);
                let a = insert(t, 1, "wm-2", T0, Some("north"));
                let b = insert(t, 2, "wm-3", T0 + 2 * HOUR, None);
                t.append_log(before, Timestamp(T0), "x", "reopened", "")?;
                t.append_log(a, Timestamp(T0 + 5 * HOUR), "x", "reopened", "")?;
                t.append_log(a, Timestamp(T0 + 6 * HOUR), "x", "status_changed", "")?;
                t.change_status(&StatusChange {
                    id: a,
                    status: TicketStatus::Resolved,
                    now: Timestamp(T0 + 3 * HOUR),
                    respond: true,
                    end: true,
                    reopen: None,
                })?;
                t.conn.execute(
                    "UPDATE tickets SET visits = 2, engineer = 'li.wei', channel = 'phone',
                         region = 'south',
                         outcome = '{\"kind\":\"confirmed_failure\",\"component\":\"drain_pump\",\"failed_at\":\"2026-11-24T06:00:00Z\"}',
                         satisfaction = '{\"score\":2,\"comment\":\"\",\"at\":1,\"recorded_by\":\"x\",\"channel\":\"phone\"}',
                         callback = '{\"opened_at\":1,\"due\":2,\"owner\":null,\"done_at\":null,\"done_by\":null,\"overdue_at\":3}',
                         steps = '[{\"step\":\"respond\",\"due\":5,\"done_at\":4,\"overdue_at\":null,\"alerted\":null,\"future\":1}]'
                     WHERE id = ?1",
                    [a],
                )?;
                t.conn.execute("UPDATE tickets SET region = 'east' WHERE id = ?1", [b])?;
                Ok::<_, crate::Error>((before, a, b))
            })
            .unwrap();
        let facts = db
            .read(|t| t.kpi_facts(Timestamp(T0), Timestamp(T0 + 3 * HOUR)))
            .unwrap();
        assert_eq!(facts.iter().map(|f| f.id).collect::<Vec<_>>(), [a, b]);
        assert!(facts.iter().all(|f| f.id != before));
        let fa = &facts[0];
        assert_eq!(
            fa.region.as_deref(),
            Some("north"),
            "the registry's region first"
        );
        assert_eq!(
            facts[1].region.as_deref(),
            Some("east"),
            "else the assignment's"
        );
        assert_eq!(fa.reopened, [Timestamp(T0 + 5 * HOUR)]);
        assert!(facts[1].reopened.is_empty());
        assert_eq!(fa.visits, 2);
        assert_eq!(fa.engineer.as_deref(), Some("li.wei"));
        assert_eq!(fa.channel, "phone");
        assert_eq!(fa.source, TicketSource::Reactive);
        assert_eq!(fa.status, Some(TicketStatus::Resolved));
        assert_eq!(fa.responded_at, Some(Timestamp(T0 + 3 * HOUR)));
        assert_eq!(fa.ended_at, Some(Timestamp(T0 + 3 * HOUR)));
        assert_eq!(fa.outcome_kind, Some(OutcomeKind::ConfirmedFailure));
        assert_eq!(fa.outcome_component.as_deref(), Some("drain_pump"));
        assert!(fa.failed_at.is_some());
        assert_eq!(fa.satisfaction, Some(2));
        let cb = fa.callback.as_ref().unwrap();
        assert_eq!(
            (cb.due, cb.done_at, cb.overdue_at),
            (Timestamp(2), None, Some(Timestamp(3)))
        );
        assert_eq!(fa.steps.len(), 1);
        assert_eq!(fa.steps[0].step, "respond");
        assert_eq!(fa.steps[0].done_at, Some(Timestamp(4)));
        let b = &facts[1];
        assert_eq!(
            (b.satisfaction, b.callback.as_ref(), b.steps.len()),
            (None, None, 0)
        );
        assert!(db
            .read(|t| t.kpi_facts(Timestamp(0), Timestamp(1)))
            .unwrap()
            .is_empty());
    }
}
