//! Fleet analytics' tables in `tickets.db` and their scans: batch alarms
//! (`fleet_alarms`), the fleet summary behind remote diagnosis (`fleet_ranges`,
//! `fleet_cohorts`), and the whole-table reads of current risks and tickets that fleet
//! snapshots and the summary are built from.

use domain::{Outcome, Timestamp};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::alarm_acks::AlarmAck;
use super::ticket::ACTIVE_SQL;
use super::Tables;
use crate::{Error, Result};

/// A fleet-level alarm, as stored and served.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmRecord {
    /// Alarm id.
    pub id: i64,
    /// `active` or `cleared`.
    pub status: String,
    /// When the detector first found it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub raised_at: Timestamp,
    /// The last run that tested it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub updated_at: Timestamp,
    /// When it was cleared.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub cleared_at: Option<Timestamp>,
    /// What it is about.
    #[serde(flatten)]
    pub cell: AlarmCell,
    /// The latest run's numbers.
    #[serde(flatten)]
    pub numbers: AlarmNumbers,
    /// Who acknowledged it, when and with what note (`null` until someone does).
    pub acknowledged: Option<AlarmAck>,
}

/// What an alarm is about: at most one alarm is `active` per cell.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct AlarmCell {
    /// The model.
    pub model: String,
    /// `batch` or `fw`.
    pub dimension: String,
    /// The batch or firmware version.
    pub value: String,
    /// The component.
    pub component: String,
    /// `confirmed_failures` or `flagged_share`.
    pub statistic: String,
}

/// The numbers of one detector run for an alarm's cell.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AlarmNumbers {
    /// One-sided p-value, latest run.
    pub p_value: f64,
    /// Benjamini–Hochberg adjusted p-value, latest run.
    pub q_value: f64,
    /// Failures (or flagged devices) of the group, latest run.
    pub observed: u64,
    /// What the group would have at the rest of the model's rate (or share).
    pub expected: f64,
    /// Device-months (or scored devices) of the group.
    pub exposure: f64,
    /// Rate (or share) ratio against the rest; `null` when the rest has none.
    pub ratio: Option<f64>,
}

/// A channel's normal range in a (type, model): percentiles of each device's latest value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NormalRange {
    /// 5th percentile.
    pub p5: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Devices that reported the channel.
    pub devices: u64,
    /// When the summary was computed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub computed_at: Timestamp,
}

/// How one component fared across a cohort of comparable devices.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ComponentHistory {
    /// The component.
    pub component: String,
    /// Tickets ever opened for it in the cohort.
    pub tickets: u64,
    /// Tickets active now.
    pub active: u64,
    /// Outcomes `confirmed_failure`.
    pub confirmed_failures: u64,
    /// Outcomes `no_fault_found`.
    pub no_fault_found: u64,
}

/// Comparable devices: same type, model and production batch (devices that report no
/// batch form one cohort per model).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cohort {
    /// Product model.
    pub model: String,
    /// Production batch, `null` when the devices report none (then: the whole model).
    pub batch: Option<String>,
    /// Devices in the cohort (this one included).
    pub devices: u64,
    /// Devices that had at least one ticket.
    pub devices_with_tickets: u64,
    /// Per component, what their tickets came to.
    pub components: Vec<ComponentHistory>,
    /// When the summary was computed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub computed_at: Timestamp,
}

/// A channel's normal range in a (type, model), to store
/// ([`Tables::replace_fleet_summary`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RangeRow<'a> {
    /// The device type.
    pub device_type: &'a str,
    /// The model.
    pub model: &'a str,
    /// The channel.
    pub channel: &'a str,
    /// Its range (`computed_at` is the time of the replacement).
    pub range: NormalRange,
}

/// A cohort of comparable devices, to store ([`Tables::replace_fleet_summary`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CohortRow<'a> {
    /// The device type.
    pub device_type: &'a str,
    /// The model.
    pub model: &'a str,
    /// The production batch (`None`: devices that report none).
    pub batch: Option<&'a str>,
    /// Devices in the cohort.
    pub devices: u64,
    /// Devices with at least one ticket.
    pub devices_with_tickets: u64,
    /// Per component, what their tickets came to.
    pub components: &'a [ComponentHistory],
}

/// A ticket as fleet analytics read it ([`Tables::for_each_fleet_ticket`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FleetTicket<'a> {
    /// The device.
    pub device_id: &'a str,
    /// Its type.
    pub device_type: &'a str,
    /// The ticket's component.
    pub component: &'a str,
    /// Opened by a model flag.
    pub proactive: bool,
    /// In an active status.
    pub active: bool,
    /// Dismissed.
    pub dismissed: bool,
    /// When it was opened (epoch ms).
    pub opened_at: i64,
    /// Its latest risk.
    pub risk: f64,
    /// Its outcome, if recorded.
    pub outcome: Option<Outcome>,
}

/// An alarm with its acknowledgement; queries add `WHERE` on `a`.
pub(super) const ALARM_SELECT: &str =
    "SELECT a.id, a.status, a.raised_at, a.updated_at, a.cleared_at, a.model, a.dimension,
            a.value, a.component, a.statistic, a.p_value, a.q_value, a.observed, a.expected,
            a.exposure, a.ratio, k.at, k.actor, k.note
       FROM fleet_alarms a LEFT JOIN fleet_alarm_acks k ON k.alarm_id = a.id";

pub(super) fn alarm_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlarmRecord> {
    Ok(AlarmRecord {
        id: r.get(0)?,
        status: r.get(1)?,
        raised_at: Timestamp(r.get(2)?),
        updated_at: Timestamp(r.get(3)?),
        cleared_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
        cell: AlarmCell {
            model: r.get(5)?,
            dimension: r.get(6)?,
            value: r.get(7)?,
            component: r.get(8)?,
            statistic: r.get(9)?,
        },
        numbers: AlarmNumbers {
            p_value: r.get(10)?,
            q_value: r.get(11)?,
            observed: r.get::<_, i64>(12)?.max(0) as u64,
            expected: r.get(13)?,
            exposure: r.get(14)?,
            ratio: r.get(15)?,
        },
        acknowledged: match r.get::<_, Option<i64>>(16)? {
            Some(at) => Some(AlarmAck {
                at: Timestamp(at),
                actor: r.get(17)?,
                note: r.get(18)?,
            }),
            None => None,
        },
    })
}

/// The key of a batch in `fleet_cohorts` (`""`: no batch reported).
fn batch_key(batch: Option<&str>) -> &str {
    batch.unwrap_or("")
}

impl Tables<'_> {
    /// Every active alarm.
    pub fn active_alarms(&self) -> Result<Vec<AlarmRecord>> {
        let mut st = self
            .conn
            .prepare(&format!("{ALARM_SELECT} WHERE a.status = 'active'"))?;
        let rows = st.query_map([], alarm_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One alarm.
    pub fn alarm(&self, id: i64) -> Result<AlarmRecord> {
        Ok(self.conn.query_row(
            &format!("{ALARM_SELECT} WHERE a.id = ?1"),
            params![id],
            alarm_row,
        )?)
    }

    /// Writes a detector run's numbers into an active alarm.
    pub fn update_alarm(&self, id: i64, n: &AlarmNumbers, now: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE fleet_alarms SET updated_at = ?2, p_value = ?3, q_value = ?4,
                 observed = ?5, expected = ?6, exposure = ?7, ratio = ?8 WHERE id = ?1",
            params![
                id,
                now.millis(),
                n.p_value,
                n.q_value,
                n.observed as i64,
                n.expected,
                n.exposure,
                n.ratio
            ],
        )?;
        Ok(())
    }

    /// Clears an alarm.
    pub fn clear_alarm(&self, id: i64, now: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE fleet_alarms SET status = 'cleared', cleared_at = ?2, updated_at = ?2
              WHERE id = ?1",
            params![id, now.millis()],
        )?;
        Ok(())
    }

    /// The active alarm of `key`, if any.
    pub fn active_alarm_id(&self, key: &AlarmCell) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM fleet_alarms WHERE status = 'active' AND model = ?1
                   AND dimension = ?2 AND value = ?3 AND component = ?4 AND statistic = ?5",
                params![
                    key.model,
                    key.dimension,
                    key.value,
                    key.component,
                    key.statistic
                ],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Raises an alarm for `key`; returns its id. The unique index refuses a second
    /// active alarm of one key.
    pub fn insert_alarm(&self, key: &AlarmCell, n: &AlarmNumbers, now: Timestamp) -> Result<i64> {
        Ok(self.conn.query_row(
            "INSERT INTO fleet_alarms (status, raised_at, updated_at, model, dimension, value,
                 component, statistic, p_value, q_value, observed, expected, exposure, ratio)
             VALUES ('active', ?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             RETURNING id",
            params![
                now.millis(),
                key.model,
                key.dimension,
                key.value,
                key.component,
                key.statistic,
                n.p_value,
                n.q_value,
                n.observed as i64,
                n.expected,
                n.exposure,
                n.ratio
            ],
            |r| r.get(0),
        )?)
    }

    /// Active alarms.
    pub fn count_active_alarms(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM fleet_alarms WHERE status = 'active'",
                [],
                |r| r.get::<_, i64>(0),
            )?
            .max(0) as u64)
    }

    /// Alarms with `status` (`None`: all), newest first, ids below `before`.
    pub fn alarms(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AlarmRecord>> {
        let mut st = self.conn.prepare_cached(&format!(
            "{ALARM_SELECT}
              WHERE (?1 IS NULL OR a.status = ?1) AND (?2 IS NULL OR a.id < ?2)
              ORDER BY a.id DESC LIMIT ?3"
        ))?;
        let rows = st.query_map(
            params![status, before, i64::try_from(limit).unwrap_or(i64::MAX)],
            alarm_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Calls `f` with every current risk: (device id, component, risk, flagged).
    pub fn for_each_risk(&self, mut f: impl FnMut(&str, &str, f64, bool)) -> Result<()> {
        let mut st = self
            .conn
            .prepare("SELECT device_id, component, risk, flagged FROM device_risk")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            f(
                r.get_ref(0)?.as_str()?,
                r.get_ref(1)?.as_str()?,
                r.get(2)?,
                r.get(3)?,
            );
        }
        Ok(())
    }

    /// Calls `f` with every ticket, as fleet analytics read it. A stored outcome that
    /// does not parse is [`Error::Corrupt`].
    pub fn for_each_fleet_ticket(&self, mut f: impl FnMut(FleetTicket<'_>)) -> Result<()> {
        let mut st = self.conn.prepare(&format!(
            "SELECT device_id, device_type, component, source = 'proactive',
                    status IN {ACTIVE_SQL}, status = 'dismissed', opened_at, risk, outcome
               FROM tickets"
        ))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let device_id = r.get_ref(0)?.as_str()?;
            let outcome = match r.get_ref(8)?.as_str_or_null()? {
                Some(text) => Some(serde_json::from_str::<Outcome>(text).map_err(|e| {
                    Error::Corrupt(format!("tickets.outcome of a ticket of {device_id}: {e}"))
                })?),
                None => None,
            };
            f(FleetTicket {
                device_id,
                device_type: r.get_ref(1)?.as_str()?,
                component: r.get_ref(2)?.as_str()?,
                proactive: r.get(3)?,
                active: r.get(4)?,
                dismissed: r.get(5)?,
                opened_at: r.get(6)?,
                risk: r.get(7)?,
                outcome,
            });
        }
        Ok(())
    }

    /// Calls `f` with every ticket's (device id, component, active, outcome kind),
    /// ordered by device id, for the cohort summary.
    pub fn for_each_ticket_tally(
        &self,
        mut f: impl FnMut(&str, &str, bool, Option<&str>),
    ) -> Result<()> {
        let mut st = self.conn.prepare(&format!(
            "SELECT device_id, component, status IN {ACTIVE_SQL}, json_extract(outcome, '$.kind')
               FROM tickets ORDER BY device_id"
        ))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            f(
                r.get_ref(0)?.as_str()?,
                r.get_ref(1)?.as_str()?,
                r.get(2)?,
                r.get_ref(3)?.as_str_or_null()?,
            );
        }
        Ok(())
    }

    /// Replaces the whole fleet summary: normal ranges by (type, model, channel) and
    /// cohorts by (type, model, batch).
    pub fn replace_fleet_summary(
        &self,
        ranges: &[RangeRow<'_>],
        cohorts: &[CohortRow<'_>],
        now: Timestamp,
    ) -> Result<()> {
        self.conn.execute("DELETE FROM fleet_ranges", [])?;
        self.conn.execute("DELETE FROM fleet_cohorts", [])?;
        let mut ins = self.conn.prepare(
            "INSERT INTO fleet_ranges (device_type, model, channel, devices, p5, p50, p95, computed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for r in ranges {
            let n = &r.range;
            ins.execute(params![
                r.device_type,
                r.model,
                r.channel,
                n.devices as i64,
                n.p5,
                n.p50,
                n.p95,
                now.millis()
            ])?;
        }
        let mut ins = self.conn.prepare(
            "INSERT INTO fleet_cohorts (device_type, model, batch, devices, devices_with_tickets, components, computed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for c in cohorts {
            ins.execute(params![
                c.device_type,
                c.model,
                batch_key(c.batch),
                c.devices as i64,
                c.devices_with_tickets as i64,
                serde_json::to_string(c.components)?,
                now.millis()
            ])?;
        }
        Ok(())
    }

    /// Normal ranges of every channel of a (type, model), by channel.
    pub fn normal_ranges(
        &self,
        device_type: &str,
        model: &str,
    ) -> Result<std::collections::BTreeMap<String, NormalRange>> {
        let mut st = self.conn.prepare_cached(
            "SELECT channel, p5, p50, p95, devices, computed_at FROM fleet_ranges
             WHERE device_type = ?1 AND model = ?2",
        )?;
        let rows = st.query_map(params![device_type, model], |r| {
            Ok((
                r.get::<_, String>(0)?,
                NormalRange {
                    p5: r.get(1)?,
                    p50: r.get(2)?,
                    p95: r.get(3)?,
                    devices: r.get::<_, i64>(4)?.max(0) as u64,
                    computed_at: Timestamp(r.get(5)?),
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The cohort of a (type, model, batch), if the summary has it.
    pub fn cohort(
        &self,
        device_type: &str,
        model: &str,
        batch: Option<&str>,
    ) -> Result<Option<Cohort>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT devices, devices_with_tickets, components, computed_at FROM fleet_cohorts
                 WHERE device_type = ?1 AND model = ?2 AND batch = ?3",
            )?
            .query_row(params![device_type, model, batch_key(batch)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()?;
        row.map(|(devices, with_tickets, components, at)| {
            Ok(Cohort {
                model: model.to_owned(),
                batch: batch.map(str::to_owned),
                devices: devices.max(0) as u64,
                devices_with_tickets: with_tickets.max(0) as u64,
                components: serde_json::from_str(&components)?,
                computed_at: Timestamp(at),
            })
        })
        .transpose()
    }
}
