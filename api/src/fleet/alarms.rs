//! Batch alarms: is a production batch (or firmware version) of a model failing, or
//! flagged, significantly more often than the rest of its model? The method is in
//! docs/fleet.md; in short, per (model, batch or fw value, component):
//!
//! * **confirmed failures**: `x` failures in the group's `E` device-months against
//!   `x_r` in the rest of the model's `E_r`. Under "same rate", conditional on the total
//!   `n = x + x_r`, `x ~ Binomial(n, E / (E + E_r))`; the p-value is `P(X >= x)`.
//! * **flagged share**: `k` of the group's `m` scored devices flagged for the component
//!   against `k_r` of `m_r`; one-sided Fisher exact test, `P(X >= k)` for `X ~
//!   Hypergeometric(m + m_r, k + k_r, m)`. This one fires before devices fail.
//!
//! Tested are the cells with at least `alarm_min_count` events and a rest of the model
//! to compare with; the p-values of all of them in one run are adjusted together with
//! Benjamini–Hochberg. A cell alarms when its adjusted p-value is at most `alarm_fdr`
//! and its ratio (rate or share against the rest's) at least `alarm_min_ratio`.

use std::collections::HashMap;

use domain::ProfileSet;
use serde::Serialize;
use serde_json::json;
pub use store::tickets::AlarmRecord;
use store::tickets::{AlarmCell, AlarmNumbers};

use super::stats::{benjamini_hochberg, binomial_sf, hypergeometric_sf};
use super::{FleetSettings, FleetSnapshot};
use crate::tickets::TicketService;
use crate::Result;

/// The event type of a new alarm.
pub const EVENT_BATCH_ALARM: &str = "fleet.batch_alarm";

/// What a group is: devices of one model with one batch, or one firmware version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Production batch.
    Batch,
    /// Firmware version.
    Fw,
}

impl Dimension {
    /// Stored and JSON name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Fw => "fw",
        }
    }
}

/// Which test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Confirmed failures per device-month (conditional binomial test).
    ConfirmedFailures,
    /// Share of scored devices flagged (one-sided Fisher exact test).
    FlaggedShare,
}

impl Statistic {
    /// Stored and JSON name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmedFailures => "confirmed_failures",
            Self::FlaggedShare => "flagged_share",
        }
    }
}

/// One group's counts against the rest of its model.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The model.
    pub model: String,
    /// Batch or firmware.
    pub dimension: Dimension,
    /// The batch or firmware version.
    pub value: String,
    /// The component.
    pub component: String,
    /// Which test.
    pub statistic: Statistic,
    /// Failures, or flagged devices, in the group.
    pub observed: u64,
    /// Device-months (failures) or scored devices (flagged share) of the group.
    pub exposure: f64,
    /// Failures, or flagged devices, in the rest of the model.
    pub rest_observed: u64,
    /// Device-months or scored devices of the rest of the model.
    pub rest_exposure: f64,
}

/// A tested cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The counts.
    pub cell: Cell,
    /// One-sided p-value.
    pub p_value: f64,
    /// Benjamini–Hochberg adjusted p-value over the run.
    pub q_value: f64,
    /// What the group would have at the rest's rate (or share).
    pub expected: f64,
    /// The group's rate (or share) over the rest's; `None` when the rest has none.
    pub ratio: Option<f64>,
    /// Whether it alarms.
    pub significant: bool,
}

/// Tests `cells` and adjusts their p-values together (see the module docs). Cells
/// below the minimum count or without a rest to compare with are left out.
pub fn test_cells(cells: Vec<Cell>, settings: &FleetSettings) -> Vec<Finding> {
    let mut out: Vec<Finding> = cells
        .into_iter()
        .filter(|c| {
            c.observed >= settings.alarm_min_count && c.exposure > 0.0 && c.rest_exposure > 0.0
        })
        .map(|cell| {
            let total = cell.exposure + cell.rest_exposure;
            let (p_value, expected) = match cell.statistic {
                Statistic::ConfirmedFailures => {
                    let n = cell.observed + cell.rest_observed;
                    let share = cell.exposure / total;
                    (binomial_sf(cell.observed, n, share), n as f64 * share)
                }
                Statistic::FlaggedShare => {
                    let (m, population) = (cell.exposure.round() as u64, total.round() as u64);
                    let flagged = cell.observed + cell.rest_observed;
                    (
                        hypergeometric_sf(cell.observed, population, flagged, m),
                        m as f64 * flagged as f64 / population.max(1) as f64,
                    )
                }
            };
            let ratio = (cell.rest_observed > 0).then(|| {
                (cell.observed as f64 / cell.exposure)
                    / (cell.rest_observed as f64 / cell.rest_exposure)
            });
            Finding {
                cell,
                p_value,
                q_value: 1.0,
                expected,
                ratio,
                significant: false,
            }
        })
        .collect();
    let p: Vec<f64> = out.iter().map(|f| f.p_value).collect();
    for (f, q) in out.iter_mut().zip(benjamini_hochberg(&p)) {
        f.q_value = q;
        f.significant =
            q <= settings.alarm_fdr && f.ratio.is_none_or(|r| r >= settings.alarm_min_ratio);
    }
    out
}

/// Key of a group: model, dimension, value.
type GroupKey = (u32, Dimension, u32);

/// The cells of a snapshot: confirmed failures within `[as_of - alarm_window, as_of)`
/// with the device-months of that window, and the current flags, per (model, batch)
/// and (model, fw) against the rest of the model, for every component of the model's
/// type.
pub(crate) fn cells(
    s: &FleetSnapshot,
    profiles: &ProfileSet,
    settings: &FleetSettings,
) -> Vec<Cell> {
    let to = s.as_of.millis();
    let from = to - settings.alarm_window.millis();
    // Exposure per model and per group; events per (model | group, component).
    let mut model_months: HashMap<u32, f64> = HashMap::new();
    let mut group_months: HashMap<GroupKey, f64> = HashMap::new();
    let mut model_scored: HashMap<(u32, u32), (u64, u64)> = HashMap::new();
    let mut group_scored: HashMap<(GroupKey, u32), (u64, u64)> = HashMap::new();
    let mut model_failures: HashMap<(u32, u32), u64> = HashMap::new();
    let mut group_failures: HashMap<(GroupKey, u32), u64> = HashMap::new();
    let groups_of = |d: &super::snapshot::DeviceRow| {
        let model = d.model;
        [(Dimension::Batch, d.batch), (Dimension::Fw, d.fw)]
            .into_iter()
            .filter_map(move |(dim, v)| v.map(|v| (model, dim, v)))
    };
    for d in &s.devices {
        let months = d.months_within(from, to);
        *model_months.entry(d.model).or_default() += months;
        for g in groups_of(d) {
            *group_months.entry(g).or_default() += months;
        }
    }
    for r in &s.risks {
        let d = &s.devices[r.device as usize];
        let add = |e: &mut (u64, u64)| {
            e.0 += u64::from(r.flagged);
            e.1 += 1;
        };
        add(model_scored.entry((d.model, r.component)).or_default());
        for g in groups_of(d) {
            add(group_scored.entry((g, r.component)).or_default());
        }
    }
    for t in &s.tickets {
        let (Some(device), Some(f)) = (t.device, t.failure.as_ref()) else {
            continue;
        };
        if !(from..to).contains(&f.at) {
            continue;
        }
        let d = &s.devices[device as usize];
        *model_failures.entry((d.model, f.component)).or_default() += 1;
        for g in groups_of(d) {
            *group_failures.entry((g, f.component)).or_default() += 1;
        }
    }
    let type_of: HashMap<u32, u32> = s.devices.iter().map(|d| (d.model, d.device_type)).collect();
    let name = |i: u32| s.names.get(i).to_owned();
    let mut out = Vec::new();
    let mut keys: Vec<&GroupKey> = group_months.keys().collect();
    keys.sort();
    for &g in keys {
        let (model, dim, value) = g;
        // The profile's components, plus any others that failed.
        let device_type = type_of.get(&model).map_or("", |t| s.names.get(*t));
        let mut comps: Vec<String> = profiles
            .get(device_type)
            .map(|p| p.components().iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        for (_, c) in model_failures.keys().filter(|(m, _)| *m == model) {
            let c = name(*c);
            if !comps.contains(&c) {
                comps.push(c);
            }
        }
        let months = group_months[&g];
        let all_months = model_months.get(&model).copied().unwrap_or(0.0);
        for component in comps {
            // Names of components never seen in the snapshot have no id: no events.
            let cid = s.names.map.get(&component).copied();
            let failures = cid.map_or(0, |c| group_failures.get(&(g, c)).copied().unwrap_or(0));
            let all_failures =
                cid.map_or(0, |c| model_failures.get(&(model, c)).copied().unwrap_or(0));
            out.push(Cell {
                model: name(model),
                dimension: dim,
                value: name(value),
                component: component.clone(),
                statistic: Statistic::ConfirmedFailures,
                observed: failures,
                exposure: months,
                rest_observed: all_failures - failures,
                rest_exposure: (all_months - months).max(0.0),
            });
            let (flagged, scored) = cid.map_or((0, 0), |c| {
                group_scored.get(&(g, c)).copied().unwrap_or((0, 0))
            });
            let (all_flagged, all_scored) = cid.map_or((0, 0), |c| {
                model_scored.get(&(model, c)).copied().unwrap_or((0, 0))
            });
            out.push(Cell {
                model: name(model),
                dimension: dim,
                value: name(value),
                component,
                statistic: Statistic::FlaggedShare,
                observed: flagged,
                exposure: scored as f64,
                rest_observed: all_flagged - flagged,
                rest_exposure: (all_scored - scored) as f64,
            });
        }
    }
    out
}

/// What one detector run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DetectionReport {
    /// Cells tested (after the minimum count).
    pub tested: usize,
    /// Alarms raised by this run (each with its `fleet.batch_alarm` event).
    pub raised: Vec<AlarmRecord>,
    /// Alarms this run cleared.
    pub cleared: Vec<AlarmRecord>,
    /// Alarms active after the run.
    pub active: u64,
}

/// Records a run's findings in one transaction: a significant finding without an
/// active alarm raises one (and its `fleet.batch_alarm` event); one with an active
/// alarm updates its numbers (no event); an active alarm whose cell now has a p-value
/// above `alarm_clear_p` (or fell below the minimum count) is cleared. A cleared
/// alarm that becomes significant again is a new alarm with a new event.
pub(crate) fn record(
    tickets: &TicketService,
    findings: &[Finding],
    settings: &FleetSettings,
) -> Result<DetectionReport> {
    tickets.write(|tx, now| {
        let mut report = DetectionReport {
            tested: findings.len(),
            ..DetectionReport::default()
        };
        let by_cell: HashMap<AlarmCell, &Finding> =
            findings.iter().map(|f| (alarm_cell(&f.cell), f)).collect();
        // Active alarms: update or clear.
        for a in tx.active_alarms()? {
            match by_cell.get(&a.cell) {
                Some(f) if f.p_value <= settings.alarm_clear_p => {
                    tx.update_alarm(a.id, &numbers(f), now)?;
                }
                _ => {
                    tx.clear_alarm(a.id, now)?;
                    report.cleared.push(tx.alarm(a.id)?);
                }
            }
        }
        for f in findings.iter().filter(|f| f.significant) {
            let cell = alarm_cell(&f.cell);
            if tx.active_alarm_id(&cell)?.is_some() {
                continue;
            }
            let id = tx.insert_alarm(&cell, &numbers(f), now)?;
            let alarm = tx.alarm(id)?;
            tx.insert_event(now, EVENT_BATCH_ALARM, None, None, &json!({"alarm": alarm}))?;
            report.raised.push(alarm);
        }
        report.active = tx.count_active_alarms()?;
        Ok(report)
    })
}

/// What an alarm of a tested cell is about.
fn alarm_cell(c: &Cell) -> AlarmCell {
    AlarmCell {
        model: c.model.clone(),
        dimension: c.dimension.as_str().to_owned(),
        value: c.value.clone(),
        component: c.component.clone(),
        statistic: c.statistic.as_str().to_owned(),
    }
}

/// A finding's numbers as the alarm stores them.
fn numbers(f: &Finding) -> AlarmNumbers {
    AlarmNumbers {
        p_value: f.p_value,
        q_value: f.q_value,
        observed: f.cell.observed,
        expected: f.expected,
        exposure: f.cell.exposure,
        ratio: f.ratio,
    }
}

/// Alarms with `status` (`None`: all), newest first, ids below `before`.
pub(crate) fn list(
    tickets: &TicketService,
    status: Option<&str>,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<AlarmRecord>> {
    tickets.read(|t| Ok(t.alarms(status, before, limit)?))
}
