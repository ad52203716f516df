//! Metrics: event-level [`Metrics`] from summed counts at three scopes, and row-level
//! quality ([`RowLevel`]) from risk histograms.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::count::EventCounts;
use super::DAY_MS;

/// Event-level metrics of one scope (overall, a device type, or a type's component).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Devices observed in this scope.
    pub devices: u64,
    /// Observed device-months (sum of each device's first-to-last message span / 30 d).
    pub device_months: f64,
    /// Device-months in which a flag could be judged: each device's span up to one
    /// horizon before the history's end (the false-alarm rate's denominator).
    pub judged_device_months: f64,
    /// Flag episodes (rising edges).
    pub flags: u64,
    /// Flags followed by a failure within the horizon.
    pub flags_followed_by_failure: u64,
    /// Flags not followed by a failure within the horizon.
    pub false_alarms: u64,
    /// Flag episodes that started while the component was failed (not in `flags`).
    pub flags_while_failed: u64,
    /// Flag episodes within one horizon of the history's end that no failure followed
    /// before it: not yet known to be right or wrong (not in `flags`).
    pub flags_censored: u64,
    /// All failures.
    pub failures: u64,
    /// Failures with a precursor (mode is not `sudden`).
    pub failures_with_precursor: u64,
    /// Failures before the device's warm-up completed (included in `failures`).
    pub failures_before_warm_up: u64,
    /// Failures caught (a flag started within the horizon before them).
    pub caught: u64,
    /// Caught failures with a precursor.
    pub caught_with_precursor: u64,
    /// `flags_followed_by_failure / flags`; `null` without flags.
    pub precision: Option<f64>,
    /// `caught / failures` over all failures; `null` without failures.
    pub recall: Option<f64>,
    /// `caught_with_precursor / failures_with_precursor`.
    pub recall_with_precursor: Option<f64>,
    /// Harmonic mean of `precision` and `recall` (0 when both are 0).
    pub f1: Option<f64>,
    /// Median lead time of catches, days.
    pub lead_time_days_median: Option<f64>,
    /// 10th percentile of the lead times of catches, days (the short ones).
    pub lead_time_days_p10: Option<f64>,
    /// `false_alarms / judged_device_months * 1000`.
    pub false_alarms_per_1000_device_months: Option<f64>,
    /// Model version(s) evaluated (comma-separated when several), or the baseline's name.
    pub model_version: String,
}

impl Metrics {
    /// Metrics from summed counts, the scope's devices and device-months, and a version.
    /// `months`: (observed device-months, judged device-months).
    pub fn from_counts(
        c: &EventCounts,
        devices: u64,
        months: (f64, f64),
        model_version: String,
    ) -> Metrics {
        let (device_months, judged_device_months) = months;
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let precision = ratio(c.flags.followed, c.flags.judged);
        let recall = ratio(c.failures.caught, c.failures.all);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        let mut days: Vec<f64> = c
            .lead_times_ms
            .iter()
            .map(|&ms| ms as f64 / DAY_MS as f64)
            .collect();
        days.sort_by(f64::total_cmp);
        let false_alarms = c.flags.judged - c.flags.followed;
        Metrics {
            devices,
            device_months,
            judged_device_months,
            flags: c.flags.judged,
            flags_followed_by_failure: c.flags.followed,
            false_alarms,
            flags_while_failed: c.flags.while_failed,
            flags_censored: c.flags.censored,
            failures: c.failures.all,
            failures_with_precursor: c.failures.with_precursor,
            failures_before_warm_up: c.failures.before_warm_up,
            caught: c.failures.caught,
            caught_with_precursor: c.failures.caught_with_precursor,
            precision,
            recall,
            recall_with_precursor: ratio(
                c.failures.caught_with_precursor,
                c.failures.with_precursor,
            ),
            f1,
            lead_time_days_median: percentile(&days, 0.5),
            lead_time_days_p10: percentile(&days, 0.1),
            false_alarms_per_1000_device_months: (judged_device_months > 0.0)
                .then(|| false_alarms as f64 / judged_device_months * 1000.0),
            model_version,
        }
    }
}

/// Linear-interpolated percentile `p` in [0, 1] of sorted values; `None` when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = p.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (*sorted.get(lo)?, *sorted.get(hi)?);
    Some(a + (b - a) * (pos - lo as f64))
}

/// Metrics of one scorer (the model or the baseline) at three levels.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScopedMetrics {
    /// All evaluated devices and components together.
    pub overall: Metrics,
    /// Per device type.
    pub by_type: BTreeMap<String, Metrics>,
    /// Per device type, then component.
    pub by_component: BTreeMap<String, BTreeMap<String, Metrics>>,
}

/// Row-level (per scored message) quality of a component's risk, the data of its
/// precision-recall curve.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RowLevel {
    /// Scored rows with a known label.
    pub rows: u64,
    /// Rows followed by a failure within the horizon.
    pub positive_rows: u64,
    /// `positive_rows / rows`.
    pub base_rate: Option<f64>,
    /// Average precision of the risk ranking (step-wise, from risk bins).
    pub average_precision: Option<f64>,
}

/// Risk bins on the logit scale, for precision-recall curves without keeping rows.
const LOGIT_MIN: f64 = -12.0;
const LOGIT_MAX: f64 = 12.0;
const BINS: usize = 2400;

pub(super) fn risk_bin(risk: f64) -> Option<usize> {
    if !risk.is_finite() {
        return None;
    }
    let r = risk.clamp(1e-12, 1.0 - 1e-12);
    let logit = (r / (1.0 - r)).ln().clamp(LOGIT_MIN, LOGIT_MAX);
    let i = ((logit - LOGIT_MIN) / (LOGIT_MAX - LOGIT_MIN) * BINS as f64) as usize;
    Some(i.min(BINS - 1))
}

/// Positive and negative rows per risk bin of one component.
#[derive(Clone, Debug)]
pub(super) struct RiskHistogram {
    pub(super) pos: Vec<u64>,
    neg: Vec<u64>,
    /// Negative rows whose horizon may still run past the end of the history.
    pub(super) pending: VecDeque<(i64, usize)>,
}

impl RiskHistogram {
    pub(super) fn new() -> Self {
        RiskHistogram {
            pos: vec![0; BINS],
            neg: vec![0; BINS],
            pending: VecDeque::new(),
        }
    }

    /// Moves pending negatives whose horizon ends before `max_ts` into the histogram.
    pub(super) fn flush(&mut self, max_ts: i64, horizon_ms: i64) {
        while let Some(&(ts, bin)) = self.pending.front() {
            if ts.saturating_add(horizon_ms) > max_ts {
                break;
            }
            self.neg[bin] += 1;
            self.pending.pop_front();
        }
    }

    /// (recall, precision) points from the highest risk bin down, and the AP.
    pub(super) fn curve(&self) -> (Vec<(f64, f64)>, RowLevel) {
        let p_total: u64 = self.pos.iter().sum();
        let n_total: u64 = self.neg.iter().sum();
        let rows = p_total + n_total;
        let mut points = Vec::new();
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut ap = 0.0;
        for i in (0..BINS).rev() {
            let (p, n) = (self.pos[i], self.neg[i]);
            if p + n == 0 {
                continue;
            }
            tp += p;
            fp += n;
            let precision = tp as f64 / (tp + fp) as f64;
            if p_total > 0 {
                ap += precision * p as f64 / p_total as f64;
                points.push((tp as f64 / p_total as f64, precision));
            }
        }
        let row = RowLevel {
            rows,
            positive_rows: p_total,
            base_rate: (rows > 0).then(|| p_total as f64 / rows as f64),
            average_precision: (p_total > 0).then_some(ap),
        };
        (points, row)
    }
}

/// Metrics per (type, component), per type and overall from the `counts` per (type,
/// component), with each type's (devices, device-months, judged device-months).
pub(super) fn scope(
    counts: &BTreeMap<(String, String), EventCounts>,
    type_devices: &BTreeMap<String, (u64, f64, f64)>,
    version_of: &dyn Fn(&str) -> String,
    overall_version: String,
) -> ScopedMetrics {
    let mut out = ScopedMetrics::default();
    let mut by_type: BTreeMap<String, EventCounts> = BTreeMap::new();
    let mut all = EventCounts::default();
    for ((t, c), counts) in counts {
        let (n, months, judged) = type_devices.get(t).copied().unwrap_or_default();
        out.by_component.entry(t.clone()).or_default().insert(
            c.clone(),
            Metrics::from_counts(counts, n, (months, judged), version_of(t)),
        );
        by_type.entry(t.clone()).or_default().add(counts);
        all.add(counts);
    }
    for (t, counts) in &by_type {
        let (n, months, judged) = type_devices.get(t).copied().unwrap_or_default();
        out.by_type.insert(
            t.clone(),
            Metrics::from_counts(counts, n, (months, judged), version_of(t)),
        );
    }
    let (n, months, judged) = type_devices
        .iter()
        .filter(|(t, _)| by_type.contains_key(*t))
        .fold((0, 0.0, 0.0), |acc, (_, v)| {
            (acc.0 + v.0, acc.1 + v.1, acc.2 + v.2)
        });
    out.overall = Metrics::from_counts(&all, n, (months, judged), overall_version);
    out
}
