//! Labels: the ground truth per device (failures, repairs, no-fault-found checks), the
//! time split of the rows, and each component's label of every row.

use std::collections::{BTreeMap, HashMap};

use domain::DeviceId;

use super::data::{Device, TypeRows};
use crate::artifact::LabelSummary;
use crate::history::{EventKind, HealthyCheck, HistoryEvent};

/// Labels per device (by index): failures and repairs, no-fault-found checks, and what
/// they add up to per device type.
pub(super) struct GroundTruth<'a> {
    events: HashMap<u32, Vec<&'a HistoryEvent>>,
    checks: HashMap<u32, Vec<&'a HealthyCheck>>,
    labels: BTreeMap<String, LabelSummary>,
    label_source: String,
}

impl<'a> GroundTruth<'a> {
    /// Indexes `events` and `checks` by device number (the position in `device_ids`),
    /// and counts them per device type (the type the device last reported). Events
    /// and checks of devices that never reported are counted nowhere.
    pub(super) fn new(
        events: &'a [HistoryEvent],
        healthy_checks: &'a [HealthyCheck],
        device_ids: &[DeviceId],
        devices: &HashMap<DeviceId, Device>,
        label_source: String,
    ) -> GroundTruth<'a> {
        let mut by_device: HashMap<u32, Vec<&HistoryEvent>> = HashMap::new();
        let index: HashMap<&DeviceId, u32> = device_ids
            .iter()
            .enumerate()
            .map(|(i, d)| (d, i as u32))
            .collect();
        // What the labels are, per device type (the type the device last reported).
        let mut labels: BTreeMap<String, LabelSummary> = BTreeMap::new();
        let mut count = |id: &DeviceId, component: &str, failure: bool| {
            let Some(device) = devices.get(id) else {
                return;
            };
            let summary = labels
                .entry(device.type_name.clone())
                .or_insert_with(|| LabelSummary {
                    source: label_source.clone(),
                    ..LabelSummary::default()
                });
            let map = if failure {
                &mut summary.failures
            } else {
                &mut summary.no_fault_found
            };
            *map.entry(component.to_owned()).or_default() += 1;
        };
        for e in events {
            if let Some(&i) = index.get(&e.device_id) {
                by_device.entry(i).or_default().push(e);
            }
            if e.kind == EventKind::Failure {
                count(&e.device_id, &e.component, true);
            }
        }
        let mut checks: HashMap<u32, Vec<&HealthyCheck>> = HashMap::new();
        for c in healthy_checks {
            if let Some(&i) = index.get(&c.device_id) {
                checks.entry(i).or_default().push(c);
            }
            count(&c.device_id, &c.component, false);
        }
        GroundTruth {
            events: by_device,
            checks,
            labels,
            label_source,
        }
    }

    /// What the labels of `device_type` are, with `no_fault_found_rows` as given.
    pub(super) fn summary(
        &self,
        device_type: &str,
        no_fault_found_rows: BTreeMap<String, u64>,
    ) -> LabelSummary {
        LabelSummary {
            no_fault_found_rows,
            ..self
                .labels
                .get(device_type)
                .cloned()
                .unwrap_or_else(|| LabelSummary {
                    source: self.label_source.clone(),
                    ..LabelSummary::default()
                })
        }
    }
}

/// Which split a row belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    Train,
    /// Within one horizon before the split: its label would peek into validation.
    Gap,
    Validation,
}

impl Split {
    /// The split of each row: validation after `split_ms`, training when its whole
    /// horizon lies at or before it, the gap in between.
    pub(super) fn of_rows(rows: &TypeRows, split_ms: i64, horizon_ms: i64) -> Vec<Split> {
        rows.ts
            .iter()
            .map(|&t| {
                if t > split_ms {
                    Split::Validation
                } else if t.saturating_add(horizon_ms) > split_ms {
                    Split::Gap
                } else {
                    Split::Train
                }
            })
            .collect()
    }
}

/// One component's label of every row of a device type, and its training rows by class.
pub(super) struct ComponentLabels {
    /// Per row: `Some((true, failure_ts))` positive, `Some((false, _))` negative, `None`
    /// excluded (see [`label_checked`]).
    pub(super) labels: Vec<Option<(bool, i64)>>,
    /// Rows (training and validation) a no-fault-found check labelled negative.
    pub(super) checked_rows: u64,
    /// Positive training rows.
    pub(super) pos: Vec<usize>,
    /// Negative training rows no check covers.
    pub(super) neg: Vec<usize>,
    /// Negative training rows a check covers: every fit keeps them.
    pub(super) hard_neg: Vec<usize>,
}

impl ComponentLabels {
    /// Labels every row of `rows` for `component` with a horizon of `horizon_ms`, in a
    /// history that ends at `t_max`, and sorts the training rows `train_idx` by class.
    pub(super) fn new(
        truth: &GroundTruth<'_>,
        component: &str,
        rows: &TypeRows,
        train_idx: &[usize],
        horizon_ms: i64,
        t_max: i64,
    ) -> ComponentLabels {
        // Per-device sorted (ts, kind) lists for this component.
        let mut ev: HashMap<u32, Vec<(i64, EventKind)>> = HashMap::new();
        for (&dev, list) in &truth.events {
            let v: Vec<(i64, EventKind)> = list
                .iter()
                .filter(|e| e.component == component)
                .map(|e| (e.ts.0, e.kind))
                .collect();
            if !v.is_empty() {
                ev.insert(dev, v);
            }
        }
        // Per-device sorted no-fault-found check times for this component.
        let mut chk: HashMap<u32, Vec<i64>> = HashMap::new();
        for (&dev, list) in &truth.checks {
            let mut v: Vec<i64> = list
                .iter()
                .filter(|c| c.component == component)
                .map(|c| c.ts.0)
                .collect();
            if !v.is_empty() {
                v.sort_unstable();
                chk.insert(dev, v);
            }
        }
        let n = rows.len();
        let mut checked = vec![false; n];
        let labels: Vec<Option<(bool, i64)>> = (0..n)
            .map(|i| {
                let (l, hard) = label_checked(
                    ev.get(&rows.dev[i]).map_or(&[][..], Vec::as_slice),
                    chk.get(&rows.dev[i]).map_or(&[][..], Vec::as_slice),
                    rows.ts[i],
                    horizon_ms,
                    t_max,
                );
                checked[i] = hard;
                l
            })
            .collect();
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        let mut hard_neg = Vec::new();
        for &i in train_idx {
            match labels[i] {
                Some((true, _)) => pos.push(i),
                Some((false, _)) if checked[i] => hard_neg.push(i),
                Some((false, _)) => neg.push(i),
                None => {}
            }
        }
        ComponentLabels {
            labels,
            checked_rows: checked.iter().filter(|c| **c).count() as u64,
            pos,
            neg,
            hard_neg,
        }
    }
}

/// Label of row `t` for one component's event list (sorted by time).
/// `Some((true, failure_ts))` positive, `Some((false, _))` negative, `None` excluded.
fn label(events: &[(i64, EventKind)], t: i64, horizon: i64, t_max: i64) -> Option<(bool, i64)> {
    // Broken: the latest event at or before t is a failure (no repair since).
    let upto = events.partition_point(|(ts, _)| *ts <= t);
    let broken = upto > 0 && events[upto - 1].1 == EventKind::Failure;
    if broken {
        return None;
    }
    let next_failure = events[upto..]
        .iter()
        .find(|(_, k)| *k == EventKind::Failure)
        .map(|(ts, _)| *ts);
    match next_failure {
        Some(f) if f <= t.saturating_add(horizon) => Some((true, f)),
        // Censored: the horizon runs past the end of the history.
        _ if t.saturating_add(horizon) > t_max => None,
        _ => Some((false, 0)),
    }
}

/// [`label`] with no-fault-found checks (sorted times): a row at `t` that a check at
/// `r` covers (`r - horizon <= t <= r`) and that is not positive and not broken is a
/// negative even when its horizon runs past the end of the data, and is marked (`true`)
/// so that every fit keeps it. A confirmed failure within the horizon wins over a check.
fn label_checked(
    events: &[(i64, EventKind)],
    checks: &[i64],
    t: i64,
    horizon: i64,
    t_max: i64,
) -> (Option<(bool, i64)>, bool) {
    let l = if events.is_empty() {
        (t.saturating_add(horizon) <= t_max).then_some((false, 0))
    } else {
        label(events, t, horizon, t_max)
    };
    if matches!(l, Some((true, _))) {
        return (l, false);
    }
    let first = checks.partition_point(|&r| r < t);
    let covered = checks
        .get(first)
        .is_some_and(|&r| r.saturating_sub(horizon) <= t);
    let upto = events.partition_point(|(ts, _)| *ts <= t);
    let broken = upto > 0 && events[upto - 1].1 == EventKind::Failure;
    if covered && !broken {
        (Some((false, 0)), true)
    } else {
        (l, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_horizon_and_skip_broken_periods() {
        let h = 10;
        let ev = [(100, EventKind::Failure), (105, EventKind::Repair)];
        assert_eq!(label(&ev, 80, h, 1000), Some((false, 0)));
        assert_eq!(label(&ev, 90, h, 1000), Some((true, 100)));
        assert_eq!(label(&ev, 99, h, 1000), Some((true, 100)));
        assert_eq!(
            label(&ev, 100, h, 1000),
            None,
            "failed: broken, not at risk"
        );
        assert_eq!(label(&ev, 104, h, 1000), None);
        assert_eq!(label(&ev, 105, h, 1000), Some((false, 0)), "repaired");
        assert_eq!(label(&ev, 995, h, 1000), None, "censored at the end");
    }

    #[test]
    fn no_fault_found_checks_keep_censored_rows_as_marked_negatives() {
        let h = 10;
        // Without checks, exactly `label` (an unlabelled device is healthy until censored).
        assert_eq!(
            label_checked(&[], &[], 80, h, 1000),
            (Some((false, 0)), false)
        );
        assert_eq!(label_checked(&[], &[], 995, h, 1000), (None, false));
        // A check at 998 covers 988..=998: those rows are negatives, even censored ones.
        let checks = [998];
        assert_eq!(
            label_checked(&[], &checks, 995, h, 1000),
            (Some((false, 0)), true)
        );
        assert_eq!(
            label_checked(&[], &checks, 988, h, 1000),
            (Some((false, 0)), true)
        );
        assert_eq!(
            label_checked(&[], &checks, 987, h, 1000),
            (Some((false, 0)), false)
        );
        assert_eq!(
            label_checked(&[], &checks, 999, h, 1000),
            (None, false),
            "after it"
        );
        // A confirmed failure within the horizon wins; a broken period stays excluded.
        let ev = [(100, EventKind::Failure), (105, EventKind::Repair)];
        assert_eq!(
            label_checked(&ev, &[95], 92, h, 1000),
            (Some((true, 100)), false)
        );
        let ev = [(100, EventKind::Failure)];
        assert_eq!(label_checked(&ev, &[103], 101, h, 1000), (None, false));
    }
}
