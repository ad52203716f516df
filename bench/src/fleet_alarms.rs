//! `fixahead bench fleet-alarms`: the batch-alarm detector (`api::fleet::alarms`)
//! against simulator ground truth (docs/fleet.md, "How early").
//!
//! Per seed, a fleet of washers and dishwashers whose largest production batch is
//! defective is simulated day by day; at the end of each day the detector's
//! confirmed-failure test runs on the cells built from the failures so far (the
//! simulator's ground-truth failures stand in for `confirmed_failure` outcomes: they
//! are what engineers would record) and the device-months since the start, exactly
//! as `fixahead run` builds them, with the default `[fleet]` settings. Reported: the
//! first day the defective batch alarms, the day by which half of the batch's
//! failures over the whole run had happened, the share of those failures that had
//! happened at alarm time and the share of the batch's devices that had failed at
//! least once by then. The same fleet without a defective batch gives the
//! false alarms: any alarm there is one. The flagged-share test needs live model
//! scores and is not part of this evaluation.

use std::collections::{BTreeMap, HashMap, HashSet};

use api::fleet::alarms::{test_cells, Cell, Dimension, Statistic};
use api::fleet::{FleetSettings, MONTH_MS};
use clap::Args;
use domain::{ProfileSet, Timestamp};
use simulators::{DefectiveBatch, Fleet, FleetConfig, GroundTruthKind, SimEvent};

use crate::Result;
use server::Context as _;

const DAY_MS: i64 = 86_400_000;

/// An alarming group: model, dimension, value.
type Group = (String, &'static str, String);

/// What one simulated fleet gave.
struct Run {
    /// Days on which any cell alarmed, with the alarming cells' (model, dimension,
    /// value) for that day.
    alarms: Vec<(u32, Vec<Group>)>,
    /// Defective-batch failures per day (index: day).
    batch_failures: Vec<u64>,
    /// Defective-batch devices whose first failure was on that day (index: day).
    batch_first_failures: Vec<u64>,
    batch_devices: usize,
}

/// The fleet's devices and what the detector needs of them.
struct Devices {
    list: Vec<simulators::DeviceInfo>,
    /// Per model: its components (from its device type's profile).
    components: HashMap<String, Vec<String>>,
}

/// Simulates one fleet for `days` and runs the detector after each day.
fn simulate(config: FleetConfig, days: u32, settings: &FleetSettings) -> Result<Run> {
    let profiles = ProfileSet::builtin();
    let defective = config.defective_batch.as_ref().map(|d| d.batch.clone());
    let mut fleet = Fleet::new(config, &profiles).context("simulated fleet")?;
    let start = fleet.now().millis();
    let list = fleet.devices();
    let info: HashMap<String, usize> = list
        .iter()
        .enumerate()
        .map(|(i, d)| (d.device_id.to_string(), i))
        .collect();
    let batch_devices = list
        .iter()
        .filter(|d| Some(&d.batch) == defective.as_ref())
        .count();
    let components = list
        .iter()
        .map(|d| {
            let comps = profiles
                .get(&d.device_type)
                .map(|p| p.components().iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default();
            (d.model.clone(), comps)
        })
        .collect();
    let devices = Devices { list, components };
    // (device index, component, day) of every failure so far.
    let mut failures: Vec<(usize, String, i64)> = Vec::new();
    let mut failed_devices: HashSet<usize> = HashSet::new();
    let mut run = Run {
        alarms: Vec::new(),
        batch_failures: vec![0; days as usize + 1],
        batch_first_failures: vec![0; days as usize + 1],
        batch_devices,
    };
    for day in 1..=days {
        let now = start + i64::from(day) * DAY_MS;
        for e in fleet.advance(Timestamp(now)) {
            if let SimEvent::GroundTruth(g) = e {
                if g.event != GroundTruthKind::Failure {
                    continue;
                }
                let Some(&i) = info.get(g.device_id.as_str()) else {
                    continue;
                };
                if Some(&devices.list[i].batch) == defective.as_ref() {
                    run.batch_failures[day as usize] += 1;
                    if failed_devices.insert(i) {
                        run.batch_first_failures[day as usize] += 1;
                    }
                }
                failures.push((i, g.component, g.ts.millis()));
            }
        }
        let from = start.max(now - settings.alarm_window.millis());
        let cells = day_cells(&devices, &failures, from, now);
        let alarmed: Vec<Group> = test_cells(cells, settings)
            .into_iter()
            .filter(|f| f.significant)
            .map(|f| (f.cell.model, f.cell.dimension.as_str(), f.cell.value))
            .collect();
        if !alarmed.is_empty() {
            run.alarms.push((day, alarmed));
        }
    }
    Ok(run)
}

/// The cells of the window `from..now`, as `api::fleet::alarms::cells` builds them from
/// a snapshot: every device exposed for the whole window, the failures in it.
fn day_cells(
    devices: &Devices,
    failures: &[(usize, String, i64)],
    from: i64,
    now: i64,
) -> Vec<Cell> {
    let months = (now - from) as f64 / MONTH_MS;
    let mut model_months: HashMap<&str, f64> = HashMap::new();
    let mut group_months: BTreeMap<(&str, Dimension, &str), f64> = BTreeMap::new();
    for d in &devices.list {
        *model_months.entry(&d.model).or_default() += months;
        *group_months
            .entry((&d.model, Dimension::Batch, &d.batch))
            .or_default() += months;
        *group_months
            .entry((&d.model, Dimension::Fw, &d.fw))
            .or_default() += months;
    }
    let mut model_failures: HashMap<(&str, &str), u64> = HashMap::new();
    let mut group_failures: HashMap<((&str, Dimension, &str), &str), u64> = HashMap::new();
    for (i, component, at) in failures {
        if *at < from {
            continue;
        }
        let d = &devices.list[*i];
        *model_failures.entry((&d.model, component)).or_default() += 1;
        *group_failures
            .entry(((&d.model, Dimension::Batch, &d.batch), component))
            .or_default() += 1;
        *group_failures
            .entry(((&d.model, Dimension::Fw, &d.fw), component))
            .or_default() += 1;
    }
    let mut cells = Vec::new();
    for (&g, &exposure) in &group_months {
        for c in devices.components.get(g.0).into_iter().flatten() {
            let observed = group_failures.get(&(g, c.as_str())).copied().unwrap_or(0);
            let all = model_failures.get(&(g.0, c.as_str())).copied().unwrap_or(0);
            cells.push(Cell {
                model: g.0.to_owned(),
                dimension: g.1,
                value: g.2.to_owned(),
                component: c.clone(),
                statistic: Statistic::ConfirmedFailures,
                observed,
                exposure,
                rest_observed: all - observed,
                rest_exposure: model_months[g.0] - exposure,
            });
        }
    }
    cells
}

/// The largest batch of the fleet a seed gives.
fn largest_batch(config: &FleetConfig) -> Result<String> {
    let fleet = Fleet::new(config.clone(), &ProfileSet::builtin())?;
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for d in fleet.devices() {
        *sizes.entry(d.batch).or_default() += 1;
    }
    let largest = sizes
        .into_iter()
        .max_by_key(|(b, n)| (*n, std::cmp::Reverse(b.clone())))
        .map(|(b, _)| b)
        .context("an empty fleet")?;
    Ok(largest)
}

// The flags of `fixahead bench fleet-alarms`.
#[derive(Debug, Args)]
pub struct FleetAlarmsArgs {
    /// Seeds, each one fleet with a defective batch and one without.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// Devices per fleet (washers and dishwashers).
    #[arg(long, default_value_t = 3000)]
    pub devices: usize,
    /// Simulated days, with a detector run at the end of each.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// The defective batch's failure-rate multiplier (the simulator's default: 5).
    #[arg(long, default_value_t = simulators::DefectiveBatch::DEFAULT_MULTIPLIER)]
    pub multiplier: f64,
    /// Only this component of the defective batch is defective (default: all).
    #[arg(long)]
    pub component: Option<String>,
}

/// `fixahead bench fleet-alarms` (blocking: it simulates on the calling thread).
pub(crate) fn run(args: FleetAlarmsArgs) -> Result<()> {
    let FleetAlarmsArgs {
        seeds,
        devices,
        days,
        multiplier,
        component,
    } = args;
    let settings = FleetSettings::default();
    println!(
        "batch alarms against ground truth: {devices} washers and dishwashers, {days} days, \
         detector daily; fdr {}, min count {}, min ratio {}; defective batch x{multiplier} ({})",
        settings.alarm_fdr,
        settings.alarm_min_count,
        settings.alarm_min_ratio,
        component.as_deref().unwrap_or("every component")
    );
    println!("seed  batch     devices  failures  alarm_day  day_50%  failed_at_alarm  devices_failed_at_alarm  other_alarms  healthy_alarm_days");
    let mut healthy_with_alarm = 0;
    let mut lead = Vec::new();
    for seed in 1..=seeds {
        let base = FleetConfig {
            devices,
            seed,
            kinds: vec!["washer".into(), "dishwasher".into()],
            ..FleetConfig::default()
        };
        let batch = largest_batch(&base)?;
        let defective = FleetConfig {
            defective_batch: Some(DefectiveBatch {
                batch: batch.clone(),
                component: component.clone(),
                multiplier,
            }),
            ..base.clone()
        };
        let bad = simulate(defective, days, &settings)?;
        let healthy = simulate(base, days, &settings)?;
        if !healthy.alarms.is_empty() {
            healthy_with_alarm += 1;
        }
        if let Some(days_ahead) = print_seed(seed, &batch, &bad, &healthy) {
            lead.push(days_ahead);
        }
    }
    let mean_lead = if lead.is_empty() {
        f64::NAN
    } else {
        lead.iter().sum::<f64>() / lead.len() as f64
    };
    println!(
        "defective batch caught in {}/{seeds} seeds, on average {mean_lead:.0} days before half of its failures; \
         healthy fleets with any alarm: {healthy_with_alarm}/{seeds}",
        lead.len()
    );
    Ok(())
}

/// Prints a seed's row; returns how many days before half of the defective batch's
/// failures it alarmed, when it did.
fn print_seed(seed: u64, batch: &str, bad: &Run, healthy: &Run) -> Option<f64> {
    let total: u64 = bad.batch_failures.iter().sum();
    let mut cumulative = 0;
    let mut day_half = None;
    for (day, n) in bad.batch_failures.iter().enumerate() {
        cumulative += n;
        if day_half.is_none() && total > 0 && 2 * cumulative >= total {
            day_half = Some(day);
        }
    }
    let is_batch = |dim: &str, v: &str| dim == "batch" && v == batch;
    let first = bad
        .alarms
        .iter()
        .find(|(_, cells)| cells.iter().any(|(_, dim, v)| is_batch(dim, v)))
        .map(|(day, _)| *day);
    let failed_by = |day: u32| bad.batch_failures[..=day as usize].iter().sum::<u64>();
    let devices_failed_by = |day: u32| {
        bad.batch_first_failures[..=day as usize]
            .iter()
            .sum::<u64>()
    };
    let others: HashSet<&Group> = bad
        .alarms
        .iter()
        .flat_map(|(_, cells)| cells.iter())
        .filter(|(_, dim, v)| !is_batch(dim, v))
        .collect();
    println!(
        "{seed:>4}  {batch:<8}  {:>7}  {total:>8}  {:>9}  {:>7}  {:>15}  {:>23}  {:>12}  {:>18}",
        bad.batch_devices,
        first.map_or("none".into(), |d| d.to_string()),
        day_half.map_or("-".into(), |d| d.to_string()),
        first.map_or("-".into(), |d| format!(
            "{:.0}%",
            100.0 * failed_by(d) as f64 / total.max(1) as f64
        )),
        first.map_or("-".into(), |d| format!(
            "{:.1}%",
            100.0 * devices_failed_by(d) as f64 / bad.batch_devices.max(1) as f64
        )),
        others.len(),
        healthy.alarms.len(),
    );
    Some(day_half? as f64 - f64::from(first?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The detector, with the default settings, catches the simulator's defective
    /// batch on every seed tried and raises nothing on the same fleets without one.
    #[test]
    fn the_defective_batch_alarms_and_healthy_fleets_do_not() {
        let settings = FleetSettings::default();
        for seed in 1..=3 {
            let base = FleetConfig {
                devices: 1500,
                seed,
                kinds: vec!["washer".into(), "dishwasher".into()],
                ..FleetConfig::default()
            };
            let batch = largest_batch(&base).unwrap();
            let defective = FleetConfig {
                defective_batch: Some(DefectiveBatch::new(batch.clone())),
                ..base.clone()
            };
            let bad = simulate(defective, 240, &settings).unwrap();
            let caught = bad.alarms.iter().any(|(_, cells)| {
                cells
                    .iter()
                    .any(|(_, dim, value)| *dim == "batch" && *value == batch)
            });
            assert!(caught, "seed {seed}: {batch} never alarmed");
            let healthy = simulate(base, 240, &settings).unwrap();
            assert!(
                healthy.alarms.is_empty(),
                "seed {seed}: false alarms {:?}",
                healthy.alarms
            );
        }
    }
}
