//! `fixahead eval`: event-level evaluation of the active models against a history's
//! ground truth, compared with a simple fault-code baseline computed in the same run.
//!
//! # How flags and failures are counted (as service teams count them)
//! The history is replayed through the same [`Scorer`] as the live pipeline.
//!
//! * A **flag** is a contiguous episode in which `flagged` is true for a (device,
//!   component); it counts once, at its rising edge (its start). A flag the scorer
//!   restates after it expired (one horizon after it was raised, see
//!   `scorer::latch`) is a new episode.
//! * A flag that starts while the component is already failed (from a failure up to
//!   its repair) reports a failure rather than predicting one: it is not counted as a
//!   flag, only in `flags_while_failed`.
//! * A **failure** (an `events.jsonl` `failure`) is **caught** if a flag episode of that
//!   device and component started within the horizon before it (`[f - h, f)`); the
//!   lead time is the failure time minus the start of the earliest such episode.
//! * A flag is **followed by a failure** if a failure of that component follows within
//!   the horizon after its start (`(s, s + h]`); otherwise it is a **false alarm**,
//!   unless its horizon runs past the end of the history (`s + h` after the last
//!   message): then nobody knows yet, and it is **censored** (`flags_censored`),
//!   neither a flag nor a false alarm, as training leaves such rows unlabelled. The
//!   false-alarm rate divides by the device-months in which a flag could be judged
//!   (`judged_device_months`: each device's span up to one horizon before the end).
//! * `precision` = flags followed by a failure / flags; `recall` = caught / failures
//!   (all failures, also sudden ones and those before the device's warm-up, see
//!   `failures_before_warm_up`); `recall_with_precursor` = caught / failures whose
//!   mode is not `sudden`; `f1` from `precision` and `recall`.
//! * `false_alarms_per_1000_device_months`: false alarms over `judged_device_months`
//!   (the sum over devices of their observed span, first message to the earlier of
//!   their last message and one horizon before the history's end, divided by 30 days)
//!   x 1000. `device_months` is the whole observed span.
//!
//! Evaluated pairs are the (device type, component)s the active model scores (trained
//! components of a model whose schema matches the profile); the baseline is evaluated
//! on the same pairs and devices, so the two are comparable. Failures of other
//! components are listed in `unscored_failures`.
//!
//! # Baseline
//! Rules from the profile's fault catalogue: flag (device, component) when, within the
//! last 7 days, the device raised at least 2 fault codes whose catalogue component is
//! that component, or any code of severity `major`/`critical` for it. It is evaluated
//! at every message of the device from its first one (a rule on codes needs no
//! history; the model's fault-code rule flags from the first message too, its risk only
//! after [`crate::features::WARM_UP_MS`]) and uses the same episode logic. Row-level
//! metrics leave out the scores of warming-up devices (`Prediction::warming_up`).
//!
//! # `metrics.json`
//! ```text
//! {
//!   "horizon_ms": {"washer": 1209600000, ...},        // per device type
//!   "model":    {"overall": M, "by_type": {type: M}, "by_component": {type: {component: M}}},
//!   "baseline": {"overall": M, "by_type": {type: M}, "by_component": {type: {component: M}}},
//!   "row_level": {type: {component: {"rows", "positive_rows", "base_rate", "average_precision"}}},
//!   "types_without_model": [type, ...],
//!   "unscored_failures": {"type/component": n},
//!   "history": {"lines", "decoded", "rejected", "devices"},
//!   "charts": ["pr_washer.png", ...], "chart_text": true
//! }
//! ```
//! where `M` is a [`Metrics`] object (undefined ratios are `null`).
//!
//! # `episodes.jsonl`
//! Every flag of the model and of the baseline in the evaluated period, and every
//! failure each missed, one JSON object per line ([`EpisodeRecord`]): what to read when
//! asking which flags were false alarms and which failures went unseen.
//! ```text
//! {"scorer":"model","event":"flag","device_id":"wm-0001","device_type":"washer","component":"drain_pump","ts":1780000000000,"outcome":"followed","failure_ts":1780500000000,"lead_days":5.79}
//! {"scorer":"baseline","event":"missed_failure","device_id":"wm-0001",...,"ts":1780500000000,"sudden":false}
//! ```

mod charts;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use domain::{FaultState, Message, ProfileSet, Severity};
use serde::Serialize;

use crate::features::WARM_UP_MS;
use crate::history::{self, EventKind};
use crate::predict::has_usable_model;
use crate::registry::ModelRegistry;
use crate::{Error, Result, Scorer};

const DAY_MS: i64 = domain::Timestamp::DAY_MS;
/// Window of the baseline rules.
pub const BASELINE_WINDOW_MS: i64 = 7 * DAY_MS;
/// Name under which baseline metrics carry their "model version".
pub const BASELINE_VERSION: &str = "baseline-fault-codes";
/// Failures per (device, component): (time, repair time, sudden).
type FailureMap = BTreeMap<(String, String), Vec<(i64, Option<i64>, bool)>>;

/// One device-month, for false-alarm rates.
const DEVICE_MONTH_MS: f64 = 30.0 * DAY_MS as f64;

/// Evaluation parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalParams {
    /// Horizon for catches and false alarms; `None`: each model's artefact `horizon_ms`.
    pub horizon_ms: Option<i64>,
    /// Skip the PNG charts (metrics and report only).
    pub no_charts: bool,
    /// Count flags, failures, device-months and row-level scores only from this time
    /// (epoch ms) on: the test period of a history whose earlier part trained the model
    /// (`fixahead train --test-from`). The replay still starts at the beginning, so the
    /// features are warm when the test period begins.
    pub from_ms: Option<i64>,
}

/// One failure of one (device, component), as event scoring needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureEvent {
    /// Failure time (epoch ms).
    pub ts: i64,
    /// Repair time, if the history records one; the component counts as failed until then.
    pub repaired_at: Option<i64>,
    /// Failure mode `sudden` (no precursor).
    pub sudden: bool,
    /// The failure happened before the device's warm-up completed (or before its
    /// first message): no model could score it in time.
    pub before_warm_up: bool,
}

/// Raw event-level counts; add them up, then turn them into [`Metrics`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventCounts {
    /// Flag episodes (rising edges) not started while the component was failed.
    pub flags: u64,
    /// Flags followed by a failure within the horizon.
    pub flags_followed: u64,
    /// Flag episodes that started while the component was failed (not counted as flags).
    pub flags_while_failed: u64,
    /// Flag episodes not followed by a failure before the history's end, whose horizon
    /// runs past it (not counted as flags).
    pub flags_censored: u64,
    /// Failures.
    pub failures: u64,
    /// Failures whose mode is not `sudden`.
    pub failures_with_precursor: u64,
    /// Failures before the device's warm-up completed (included in `failures`).
    pub failures_before_warm_up: u64,
    /// Failures with a flag episode started within the horizon before them.
    pub caught: u64,
    /// Caught failures whose mode is not `sudden`.
    pub caught_with_precursor: u64,
    /// Lead time of every caught failure (ms).
    pub lead_times_ms: Vec<i64>,
}

impl EventCounts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &EventCounts) {
        self.flags += other.flags;
        self.flags_followed += other.flags_followed;
        self.flags_while_failed += other.flags_while_failed;
        self.flags_censored += other.flags_censored;
        self.failures += other.failures;
        self.failures_with_precursor += other.failures_with_precursor;
        self.failures_before_warm_up += other.failures_before_warm_up;
        self.caught += other.caught;
        self.caught_with_precursor += other.caught_with_precursor;
        self.lead_times_ms.extend_from_slice(&other.lead_times_ms);
    }
}

/// What became of one flag episode start (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOutcome {
    /// Raised while the component was already failed (neither catch nor false alarm).
    WhileFailed,
    /// A failure of the component followed within the horizon, at this time.
    Followed(i64),
    /// No failure followed within the horizon.
    FalseAlarm,
    /// No failure followed before the history's end, which comes before the horizon's.
    Censored,
}

/// Classifies a flag that started at `s` against the component's failures; the history
/// ends at `end_ms`.
pub fn classify_flag(
    s: i64,
    failures: &[FailureEvent],
    horizon_ms: i64,
    end_ms: i64,
) -> FlagOutcome {
    if failures
        .iter()
        .any(|f| s >= f.ts && s <= f.repaired_at.unwrap_or(i64::MAX))
    {
        return FlagOutcome::WhileFailed;
    }
    failures
        .iter()
        .filter(|f| f.ts > s && f.ts <= s.saturating_add(horizon_ms))
        .map(|f| f.ts)
        .min()
        .map_or(
            if s.saturating_add(horizon_ms) > end_ms {
                FlagOutcome::Censored
            } else {
                FlagOutcome::FalseAlarm
            },
            FlagOutcome::Followed,
        )
}

/// The start of the earliest flag (of sorted `starts`) that catches failure `f`.
fn catching_flag(starts: &[i64], f: &FailureEvent, horizon_ms: i64) -> Option<i64> {
    starts
        .iter()
        .copied()
        .find(|&s| s >= f.ts.saturating_sub(horizon_ms) && s < f.ts)
}

/// Scores one (device, component): flag episode starts (epoch ms, any order) against its
/// failures, with horizon `horizon_ms`, in a history that ends at `end_ms`. See the
/// module docs for the rules.
pub fn score_events(
    flag_starts: &[i64],
    failures: &[FailureEvent],
    horizon_ms: i64,
    end_ms: i64,
) -> EventCounts {
    let mut c = EventCounts::default();
    let mut starts: Vec<(i64, FlagOutcome)> = flag_starts
        .iter()
        .map(|&s| (s, classify_flag(s, failures, horizon_ms, end_ms)))
        .filter(|(_, o)| *o != FlagOutcome::WhileFailed)
        .collect();
    starts.sort_unstable_by_key(|(s, _)| *s);
    c.flags_while_failed = (flag_starts.len() - starts.len()) as u64;
    c.flags_censored = starts
        .iter()
        .filter(|(_, o)| *o == FlagOutcome::Censored)
        .count() as u64;
    c.flags = starts.len() as u64 - c.flags_censored;
    c.flags_followed = starts
        .iter()
        .filter(|(_, o)| matches!(o, FlagOutcome::Followed(_)))
        .count() as u64;
    let starts: Vec<i64> = starts.into_iter().map(|(s, _)| s).collect();
    for f in failures {
        c.failures += 1;
        c.failures_with_precursor += u64::from(!f.sudden);
        c.failures_before_warm_up += u64::from(f.before_warm_up);
        if let Some(s) = catching_flag(&starts, f, horizon_ms) {
            c.caught += 1;
            c.caught_with_precursor += u64::from(!f.sudden);
            c.lead_times_ms.push(f.ts - s);
        }
    }
    c
}

/// One line of `episodes.jsonl`: a flag episode of the model or the baseline and what
/// became of it, or a failure it missed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpisodeRecord {
    /// `model` or `baseline`.
    pub scorer: &'static str,
    /// `flag` or `missed_failure`.
    pub event: &'static str,
    pub device_id: String,
    pub device_type: String,
    pub component: String,
    /// The flag's start, or the missed failure's time (epoch ms).
    pub ts: i64,
    /// Flags: `followed`, `false_alarm`, `censored` or `while_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// Flags followed by a failure: the failure's time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_ts: Option<i64>,
    /// Flags followed by a failure: days from the flag to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_days: Option<f64>,
    /// Missed failures: whether the failure was sudden (no precursor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sudden: Option<bool>,
}

/// The episode records of one scorer for one (device, component).
fn episode_records(
    scorer: &'static str,
    key: (&str, &str, &str),
    flag_starts: &[i64],
    failures: &[FailureEvent],
    horizon_ms: i64,
    end_ms: i64,
) -> Vec<EpisodeRecord> {
    let (device_id, device_type, component) = key;
    let record = |event, ts| EpisodeRecord {
        scorer,
        event,
        device_id: device_id.to_owned(),
        device_type: device_type.to_owned(),
        component: component.to_owned(),
        ts,
        outcome: None,
        failure_ts: None,
        lead_days: None,
        sudden: None,
    };
    let mut starts: Vec<i64> = flag_starts.to_vec();
    starts.sort_unstable();
    let mut out = Vec::new();
    let mut counted = Vec::new();
    for &s in &starts {
        let outcome = classify_flag(s, failures, horizon_ms, end_ms);
        let mut r = record("flag", s);
        match outcome {
            FlagOutcome::WhileFailed => r.outcome = Some("while_failed"),
            FlagOutcome::Censored => {
                r.outcome = Some("censored");
                counted.push(s);
            }
            FlagOutcome::FalseAlarm => {
                r.outcome = Some("false_alarm");
                counted.push(s);
            }
            FlagOutcome::Followed(f) => {
                r.outcome = Some("followed");
                r.failure_ts = Some(f);
                r.lead_days = Some((f - s) as f64 / DAY_MS as f64);
                counted.push(s);
            }
        }
        out.push(r);
    }
    for f in failures {
        if catching_flag(&counted, f, horizon_ms).is_none() {
            let mut r = record("missed_failure", f.ts);
            r.sudden = Some(f.sudden);
            out.push(r);
        }
    }
    out
}

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
        let precision = ratio(c.flags_followed, c.flags);
        let recall = ratio(c.caught, c.failures);
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
        let false_alarms = c.flags - c.flags_followed;
        Metrics {
            devices,
            device_months,
            judged_device_months,
            flags: c.flags,
            flags_followed_by_failure: c.flags_followed,
            false_alarms,
            flags_while_failed: c.flags_while_failed,
            flags_censored: c.flags_censored,
            failures: c.failures,
            failures_with_precursor: c.failures_with_precursor,
            failures_before_warm_up: c.failures_before_warm_up,
            caught: c.caught,
            caught_with_precursor: c.caught_with_precursor,
            precision,
            recall,
            recall_with_precursor: ratio(c.caught_with_precursor, c.failures_with_precursor),
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

/// Summary of the history read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HistorySummary {
    /// Non-blank telemetry lines.
    pub lines: u64,
    /// Decoded messages.
    pub decoded: u64,
    /// Lines skipped (undecodable).
    pub rejected: u64,
    /// Devices with at least one message.
    pub devices: u64,
}

/// Everything `eval` measured; also what `metrics.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvalReport {
    /// Horizon used per device type (ms).
    pub horizon_ms: BTreeMap<String, i64>,
    /// The active models.
    pub model: ScopedMetrics,
    /// The fault-code baseline on the same devices and components.
    pub baseline: ScopedMetrics,
    /// Row-level quality per type and component.
    pub row_level: BTreeMap<String, BTreeMap<String, RowLevel>>,
    /// Device types in the history without a usable model (not evaluated).
    pub types_without_model: Vec<String>,
    /// Failures of devices or components the model does not score, per `type/component`.
    pub unscored_failures: BTreeMap<String, u64>,
    /// What reading the history found.
    pub history: HistorySummary,
    /// PNG files written to the report directory.
    pub charts: Vec<String>,
    /// Whether the charts have text (a font was found); without one they have none.
    pub chart_text: bool,
}

/// Risk bins on the logit scale, for precision-recall curves without keeping rows.
const LOGIT_MIN: f64 = -12.0;
const LOGIT_MAX: f64 = 12.0;
const BINS: usize = 2400;

fn risk_bin(risk: f64) -> Option<usize> {
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
struct RiskHistogram {
    pos: Vec<u64>,
    neg: Vec<u64>,
    /// Negative rows whose horizon may still run past the end of the history.
    pending: VecDeque<(i64, usize)>,
}

impl RiskHistogram {
    fn new() -> Self {
        RiskHistogram {
            pos: vec![0; BINS],
            neg: vec![0; BINS],
            pending: VecDeque::new(),
        }
    }

    /// Moves pending negatives whose horizon ends before `max_ts` into the histogram.
    fn flush(&mut self, max_ts: i64, horizon_ms: i64) {
        while let Some(&(ts, bin)) = self.pending.front() {
            if ts.saturating_add(horizon_ms) > max_ts {
                break;
            }
            self.neg[bin] += 1;
            self.pending.pop_front();
        }
    }

    /// (recall, precision) points from the highest risk bin down, and the AP.
    fn curve(&self) -> (Vec<(f64, f64)>, RowLevel) {
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

/// Flag episode tracking of one (device, component) for one scorer.
#[derive(Clone, Debug, Default)]
struct Episodes {
    on: bool,
    starts: Vec<i64>,
}

impl Episodes {
    fn observe(&mut self, ts: i64, flagged: bool) {
        if flagged && !self.on {
            self.starts.push(ts);
        }
        self.on = flagged;
    }
}

#[derive(Debug)]
struct DeviceInfo {
    device_type: String,
    first: i64,
    last: i64,
    /// Raised catalogue codes per component in the baseline window: (ts, major+).
    codes: HashMap<String, VecDeque<(i64, bool)>>,
}

/// A risk time series, downsampled to the maximum per bucket.
#[derive(Clone, Debug, Default)]
pub(crate) struct Series {
    pub(crate) threshold: f64,
    pub(crate) points: Vec<(i64, f64)>,
}

const SERIES_BUCKET_MS: i64 = 6 * domain::Timestamp::HOUR_MS;
/// How many failing and healthy devices keep a risk series for the chart.
const SERIES_CANDIDATES: usize = 20;

/// Replays `history_dir` through a [`Scorer`] over `registry`, scores model and baseline
/// flags at event level, and writes `metrics.json`, `report.md` and PNG charts into
/// `report_dir` (created if missing). See the module docs for the rules and layout.
pub fn eval(
    history_dir: &Path,
    profiles: &ProfileSet,
    registry: ModelRegistry,
    params: &EvalParams,
    report_dir: &Path,
) -> Result<EvalReport> {
    if let Some(h) = params.horizon_ms {
        if h <= 0 {
            return Err(Error::InvalidParams(format!(
                "evaluation horizon must be positive, got {h} ms"
            )));
        }
    }
    let profiles = history::load_profiles(history_dir, profiles)?;
    let (events, _rejected) = history::load_events(history_dir)?;

    // Failures (with their repair) per (device, component).
    let mut failures: FailureMap = BTreeMap::new();
    for e in &events {
        let key = (e.device_id.as_str().to_owned(), e.component.clone());
        match e.kind {
            EventKind::Failure => failures.entry(key).or_default().push((
                e.ts.millis(),
                None,
                e.mode.as_deref() == Some("sudden"),
            )),
            EventKind::Repair => {
                if let Some(list) = failures.get_mut(&key) {
                    if let Some(f) = list
                        .iter_mut()
                        .rev()
                        .find(|f| f.0 <= e.ts.millis() && f.1.is_none())
                    {
                        f.1 = Some(e.ts.millis());
                    }
                }
            }
        }
    }
    let failing_devices: BTreeSet<&str> = failures.keys().map(|(d, _)| d.as_str()).collect();
    let failing_candidates: BTreeSet<String> = failing_devices
        .iter()
        .take(SERIES_CANDIDATES)
        .map(|d| (*d).to_owned())
        .collect();
    let mut healthy_candidates: BTreeSet<String> = BTreeSet::new();

    // Horizon per type, resolved lazily from the artefact.
    let horizon_for = |device_type: &str| -> i64 {
        params.horizon_ms.unwrap_or_else(|| {
            registry
                .get(device_type)
                .map(|a| a.horizon_ms)
                .filter(|&h| h > 0)
                .unwrap_or(14 * DAY_MS)
        })
    };

    let from = params.from_ms.unwrap_or(i64::MIN);
    let mut scorer = Scorer::new(registry.clone(), profiles.clone());
    let mut devices: HashMap<String, DeviceInfo> = HashMap::new();
    let mut model_eps: HashMap<(String, String), Episodes> = HashMap::new();
    let mut base_eps: HashMap<(String, String), Episodes> = HashMap::new();
    let mut hists: BTreeMap<(String, String), RiskHistogram> = BTreeMap::new();
    let mut series: BTreeMap<(String, String), Series> = BTreeMap::new();
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut max_ts = i64::MIN;
    let mut min_ts = i64::MAX;
    let mut processed: u64 = 0;

    let stats = history::for_each_message(history_dir, &profiles, |msg| {
        let (device_type, ts) = match &msg {
            Message::Telemetry(t) => (t.device_type.as_str(), t.ts.millis()),
            Message::Fault(f) => (f.device_type.as_str(), f.ts.millis()),
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => return,
        };
        let device_id = msg.device_id().as_str();
        max_ts = max_ts.max(ts);
        min_ts = min_ts.min(ts);
        if !devices.contains_key(device_id) {
            devices.insert(
                device_id.to_owned(),
                DeviceInfo {
                    device_type: device_type.to_owned(),
                    first: ts,
                    last: ts,
                    codes: HashMap::new(),
                },
            );
            if healthy_candidates.len() < SERIES_CANDIDATES && !failing_devices.contains(device_id)
            {
                healthy_candidates.insert(device_id.to_owned());
            }
        }
        let Some(dev) = devices.get_mut(device_id) else {
            return;
        };
        dev.first = dev.first.min(ts);
        dev.last = dev.last.max(ts);
        let horizon = horizon_for(device_type);

        // The model.
        for p in scorer.observe(&msg) {
            let key = (device_id.to_owned(), p.component.clone());
            model_eps
                .entry(key.clone())
                .or_default()
                .observe(ts, p.flagged);
            if !versions
                .get(device_type)
                .is_some_and(|v| v.contains(&p.model_version))
            {
                versions
                    .entry(device_type.to_owned())
                    .or_default()
                    .insert(p.model_version.clone());
            }
            // Rows are scores the risk stands behind: not a warming-up device's.
            if ts < from || p.warming_up {
                continue;
            }
            // Row label: a failure in (ts, ts + h]; rows while failed are excluded.
            let fails = failures.get(&key);
            let broken =
                fails.is_some_and(|l| l.iter().any(|f| ts >= f.0 && ts <= f.1.unwrap_or(i64::MAX)));
            let positive = fails.is_some_and(|l| l.iter().any(|f| f.0 > ts && f.0 <= ts + horizon));
            if let (false, Some(bin)) = (broken, risk_bin(p.risk)) {
                let hist = hists
                    .entry((device_type.to_owned(), p.component.clone()))
                    .or_insert_with(RiskHistogram::new);
                if positive {
                    hist.pos[bin] += 1;
                } else {
                    hist.pending.push_back((ts, bin));
                }
            }
            if failing_candidates.contains(device_id) || healthy_candidates.contains(device_id) {
                let s = series.entry(key).or_default();
                s.threshold = p.threshold;
                let bucket = ts - ts.rem_euclid(SERIES_BUCKET_MS);
                let risk = if p.risk.is_finite() { p.risk } else { 0.0 };
                match s.points.last_mut() {
                    Some(last) if last.0 == bucket => last.1 = last.1.max(risk),
                    _ => s.points.push((bucket, risk)),
                }
            }
        }

        // The baseline.
        let Some(profile) = profiles.get(device_type) else {
            return;
        };
        if let Message::Fault(f) = &msg {
            if f.state == FaultState::Raised {
                if let Some(def) = profile.fault(&f.code) {
                    if let Some(comp) = &def.component {
                        dev.codes
                            .entry(comp.clone())
                            .or_default()
                            .push_back((ts, def.severity >= Severity::Major));
                    }
                }
            }
        }
        for comp in profile.components() {
            let flagged = match dev.codes.get_mut(&comp.name) {
                Some(window) => {
                    while window
                        .front()
                        .is_some_and(|&(t, _)| t <= ts - BASELINE_WINDOW_MS)
                    {
                        window.pop_front();
                    }
                    window.len() >= 2 || window.iter().any(|&(_, major)| major)
                }
                None => false,
            };
            let key = (device_id.to_owned(), comp.name.clone());
            match base_eps.get_mut(&key) {
                Some(e) => e.observe(ts, flagged),
                None if flagged => base_eps.entry(key).or_default().observe(ts, true),
                None => {}
            }
        }
        processed += 1;
        if processed.is_multiple_of(1024) {
            for ((t, _), h) in hists.iter_mut() {
                h.flush(max_ts, horizon_for(t));
            }
        }
    })?;
    for ((t, _), h) in hists.iter_mut() {
        h.flush(max_ts, horizon_for(t));
    }

    // Evaluated (type, component) pairs: trained components of usable models.
    let mut types_seen: BTreeSet<String> = BTreeSet::new();
    for d in devices.values() {
        types_seen.insert(d.device_type.clone());
    }
    let mut covered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut types_without_model = Vec::new();
    for t in &types_seen {
        if !has_usable_model(&registry, &profiles, t) {
            types_without_model.push(t.clone());
            continue;
        }
        if let Some(model) = registry.get(t) {
            covered.insert(
                t.clone(),
                model
                    .components
                    .iter()
                    .filter(|c| c.is_trained())
                    .map(|c| c.component.clone())
                    .collect(),
            );
        }
    }

    // Counts per (type, component) and devices per type.
    let mut model_counts: BTreeMap<(String, String), EventCounts> = BTreeMap::new();
    let mut base_counts: BTreeMap<(String, String), EventCounts> = BTreeMap::new();
    let mut type_devices: BTreeMap<String, (u64, f64, f64)> = BTreeMap::new();
    let mut episodes: Vec<EpisodeRecord> = Vec::new();
    let mut device_ids: Vec<&String> = devices.keys().collect();
    device_ids.sort();
    for id in device_ids {
        let Some(dev) = devices.get(id) else { continue };
        let Some(comps) = covered.get(&dev.device_type) else {
            continue;
        };
        if dev.last < from {
            continue;
        }
        let horizon = horizon_for(&dev.device_type);
        let td = type_devices.entry(dev.device_type.clone()).or_default();
        td.0 += 1;
        td.1 += (dev.last - dev.first.max(from)) as f64 / DEVICE_MONTH_MS;
        td.2 += (dev.last.min(max_ts.saturating_sub(horizon)) - dev.first.max(from)).max(0) as f64
            / DEVICE_MONTH_MS;
        for comp in comps {
            let key = (id.clone(), comp.clone());
            let all: &[(i64, Option<i64>, bool)] = failures.get(&key).map_or(&[], |l| &l[..]);
            let fails: Vec<FailureEvent> = all
                .iter()
                .filter(|f| f.0 >= from)
                .map(|&(ts, repaired_at, sudden)| FailureEvent {
                    ts,
                    repaired_at,
                    sudden,
                    before_warm_up: ts < dev.first.saturating_add(WARM_UP_MS),
                })
                .collect();
            // Flags of the test period; one raised while a failure from before the
            // period was still unrepaired is neither a catch nor a false alarm.
            let in_period = |e: &Episodes| -> Vec<i64> {
                e.starts
                    .iter()
                    .copied()
                    .filter(|&s| {
                        s >= from
                            && !all
                                .iter()
                                .any(|f| f.0 < from && s >= f.0 && s <= f.1.unwrap_or(i64::MAX))
                    })
                    .collect()
            };
            let tc = (dev.device_type.clone(), comp.clone());
            let m = model_eps.get(&key).map(in_period).unwrap_or_default();
            let m = &m[..];
            let b = base_eps.get(&key).map(in_period).unwrap_or_default();
            let b = &b[..];
            let names = (id.as_str(), dev.device_type.as_str(), comp.as_str());
            episodes.extend(episode_records("model", names, m, &fails, horizon, max_ts));
            episodes.extend(episode_records(
                "baseline", names, b, &fails, horizon, max_ts,
            ));
            model_counts
                .entry(tc.clone())
                .or_default()
                .add(&score_events(m, &fails, horizon, max_ts));
            base_counts
                .entry(tc)
                .or_default()
                .add(&score_events(b, &fails, horizon, max_ts));
        }
    }
    let mut unscored_failures: BTreeMap<String, u64> = BTreeMap::new();
    for ((device_id, comp), list) in &failures {
        let t = devices.get(device_id).map(|d| d.device_type.as_str());
        let is_covered = t
            .and_then(|t| covered.get(t))
            .is_some_and(|c| c.contains(comp));
        let in_period = list.iter().filter(|f| f.0 >= from).count() as u64;
        if !is_covered && in_period > 0 {
            *unscored_failures
                .entry(format!("{}/{comp}", t.unwrap_or("unknown_device")))
                .or_default() += in_period;
        }
    }

    let version_of = |t: &str| -> String {
        versions
            .get(t)
            .map(|v| v.iter().cloned().collect::<Vec<_>>().join(", "))
            .or_else(|| registry.get(t).map(|a| a.version.clone()))
            .unwrap_or_default()
    };
    let all_versions = covered
        .keys()
        .map(|t| version_of(t))
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let model = scope(&model_counts, &type_devices, &version_of, all_versions);
    let baseline = scope(
        &base_counts,
        &type_devices,
        &|_| BASELINE_VERSION.to_owned(),
        BASELINE_VERSION.to_owned(),
    );

    let mut row_level: BTreeMap<String, BTreeMap<String, RowLevel>> = BTreeMap::new();
    let mut pr_curves: charts::PrCurves = BTreeMap::new();
    for ((t, c), h) in &hists {
        let (points, row) = h.curve();
        row_level
            .entry(t.clone())
            .or_default()
            .insert(c.clone(), row);
        pr_curves
            .entry(t.clone())
            .or_default()
            .push((c.clone(), points));
    }

    let mut report = EvalReport {
        horizon_ms: covered
            .keys()
            .map(|t| (t.clone(), horizon_for(t)))
            .collect(),
        model,
        baseline,
        row_level,
        types_without_model,
        unscored_failures,
        history: HistorySummary {
            lines: stats.lines,
            decoded: stats.decoded,
            rejected: stats.rejected,
            devices: devices.len() as u64,
        },
        charts: Vec::new(),
        chart_text: false,
    };

    fs::create_dir_all(report_dir).map_err(|e| Error::io(report_dir, e))?;
    if !params.no_charts {
        let text = charts::font_available();
        let origin = if min_ts == i64::MAX { 0 } else { min_ts };
        let mut lead_days: Vec<f64> = Vec::new();
        for c in model_counts.values() {
            lead_days.extend(c.lead_times_ms.iter().map(|&ms| ms as f64 / DAY_MS as f64));
        }
        let picks = pick_series(&series, &failures, &failing_candidates, &healthy_candidates);
        let data = charts::ChartData {
            pr_curves: &pr_curves,
            lead_days: &lead_days,
            series: &picks,
            origin_ms: origin,
        };
        report.charts = charts::draw_all(&data, report_dir, text)?;
        report.chart_text = text;
    }
    write_json(&report, &report_dir.join("metrics.json"))?;
    write_episodes(&episodes, &report_dir.join("episodes.jsonl"))?;
    let md = render_markdown(&report, params.no_charts);
    let path = report_dir.join("report.md");
    fs::write(&path, md).map_err(|e| Error::io(&path, e))?;
    Ok(report)
}

/// Up to 3 failing devices (their failed component) and 3 healthy ones (their
/// component with the highest peak risk), with failure times.
fn pick_series(
    series: &BTreeMap<(String, String), Series>,
    failures: &FailureMap,
    failing: &BTreeSet<String>,
    healthy: &BTreeSet<String>,
) -> Vec<charts::DeviceSeries> {
    let mut out = Vec::new();
    for d in failing {
        if out.len() >= 3 {
            break;
        }
        let hit = failures
            .iter()
            .filter(|((dev, _), _)| dev == d)
            .find_map(|(key, list)| series.get(key).map(|s| (key, list, s)));
        if let Some(((dev, comp), list, s)) = hit {
            out.push(charts::DeviceSeries {
                label: format!("{dev} {comp} (fails)"),
                series: s.clone(),
                failures: list.iter().map(|f| f.0).collect(),
            });
        }
    }
    let failing_count = out.len();
    for d in healthy {
        if out.len() >= failing_count + 3 {
            break;
        }
        let worst = series
            .iter()
            .filter(|((dev, _), _)| dev == d)
            .max_by(|a, b| peak(a.1).total_cmp(&peak(b.1)));
        if let Some(((dev, comp), s)) = worst {
            out.push(charts::DeviceSeries {
                label: format!("{dev} {comp} (healthy)"),
                series: s.clone(),
                failures: Vec::new(),
            });
        }
    }
    out
}

fn peak(s: &Series) -> f64 {
    s.points.iter().map(|p| p.1).fold(0.0, f64::max)
}

fn scope(
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

/// `episodes.jsonl`: one [`EpisodeRecord`] per line, by device, component and scorer.
fn write_episodes(episodes: &[EpisodeRecord], path: &Path) -> Result<()> {
    let mut text = String::new();
    for e in episodes {
        let line = serde_json::to_string(e).map_err(|e| {
            Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    fs::write(path, text).map_err(|e| Error::io(path, e))
}

fn write_json(report: &EvalReport, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(|e| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "-".to_owned(),
    }
}

/// Which of model and baseline has the higher F1 (ties and missing values say so).
fn winner(model: Option<f64>, baseline: Option<f64>) -> &'static str {
    match (model, baseline) {
        (Some(m), Some(b)) if m > b + 1e-12 => "model",
        (Some(m), Some(b)) if b > m + 1e-12 => "baseline",
        (Some(_), Some(_)) => "tie",
        (Some(_), None) => "model",
        (None, Some(_)) => "baseline",
        (None, None) => "n/a",
    }
}

fn metrics_row(out: &mut String, label: &str, m: &Metrics, b: &Metrics) {
    let _ = writeln!(
        out,
        "| {label} | {} | {} / {} / {} | {} / {} | {} / {} / {} | {} / {} | {} / {} | {} / {} | {} |",
        m.failures,
        m.flags,
        m.caught,
        m.false_alarms,
        fmt_opt(m.precision, 2),
        fmt_opt(m.recall, 2),
        b.flags,
        b.caught,
        b.false_alarms,
        fmt_opt(b.precision, 2),
        fmt_opt(b.recall, 2),
        fmt_opt(m.f1, 2),
        fmt_opt(b.f1, 2),
        fmt_opt(m.lead_time_days_median, 1),
        fmt_opt(b.lead_time_days_median, 1),
        winner(m.f1, b.f1),
    );
}

const TABLE_HEAD: &str = "| scope | failures | model flags / caught / false alarms | model P / R | baseline flags / caught / false alarms | baseline P / R | F1 model / baseline | lead days median model / baseline | F1 winner |\n|---|---|---|---|---|---|---|---|---|\n";

fn render_markdown(r: &EvalReport, no_charts: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Evaluation report\n");
    let _ = writeln!(
        s,
        "History: {} lines, {} decoded, {} rejected, {} devices. Model version(s): {}.\n",
        r.history.lines,
        r.history.decoded,
        r.history.rejected,
        r.history.devices,
        if r.model.overall.model_version.is_empty() {
            "none"
        } else {
            &r.model.overall.model_version
        }
    );
    let _ = writeln!(
        s,
        "Counted at event level: a flag is an episode of consecutive flagged scores (one per \
         rising edge); a failure is caught if a flag of that device and component started \
         within the horizon before it; a flag not followed by a failure of its component \
         within the horizon is a false alarm, unless the history ends before its horizon \
         does (censored: not yet known, not counted; the false-alarm rate is per judged \
         device-month, up to one horizon before the end). Flags that start while the \
         component is already failed are not counted. Every flag and missed failure is in \
         `episodes.jsonl`. Baseline: flag a component when the device raised \
         at least 2 of its fault codes, or one major/critical code, in the last 7 days. \
         Both start after the same 7-day warm-up. See `metrics.json` for every number.\n"
    );
    for (t, h) in &r.horizon_ms {
        let _ = writeln!(
            s,
            "- horizon for `{t}`: {:.1} days",
            *h as f64 / DAY_MS as f64
        );
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Overall\n");
    s.push_str(TABLE_HEAD);
    metrics_row(&mut s, "all", &r.model.overall, &r.baseline.overall);
    let _ = writeln!(
        s,
        "\nRecall over failures with a precursor (not `sudden`): model {}, baseline {}. \
         Failures before the device's warm-up completed (counted, rarely catchable): {}. \
         False alarms per 1000 device-months: model {}, baseline {}. Lead time p10: model {} days.\n",
        fmt_opt(r.model.overall.recall_with_precursor, 2),
        fmt_opt(r.baseline.overall.recall_with_precursor, 2),
        r.model.overall.failures_before_warm_up,
        fmt_opt(r.model.overall.false_alarms_per_1000_device_months, 1),
        fmt_opt(r.baseline.overall.false_alarms_per_1000_device_months, 1),
        fmt_opt(r.model.overall.lead_time_days_p10, 1),
    );

    let _ = writeln!(s, "## By device type\n");
    s.push_str(TABLE_HEAD);
    let empty = Metrics::default();
    for (t, m) in &r.model.by_type {
        let b = r.baseline.by_type.get(t).unwrap_or(&empty);
        metrics_row(&mut s, t, m, b);
    }
    let _ = writeln!(s, "\nF1 winner per device type:\n");
    for (t, m) in &r.model.by_type {
        let b = r.baseline.by_type.get(t).unwrap_or(&empty);
        let _ = writeln!(
            s,
            "- `{t}`: **{}** (model F1 {}, baseline F1 {})",
            winner(m.f1, b.f1),
            fmt_opt(m.f1, 2),
            fmt_opt(b.f1, 2)
        );
    }
    let _ = writeln!(s);

    for (t, comps) in &r.model.by_component {
        let _ = writeln!(s, "## {t}\n");
        s.push_str(TABLE_HEAD);
        for (c, m) in comps {
            let b = r
                .baseline
                .by_component
                .get(t)
                .and_then(|x| x.get(c))
                .unwrap_or(&empty);
            metrics_row(&mut s, c, m, b);
        }
        if let Some(rows) = r.row_level.get(t) {
            let _ = writeln!(s, "\nRow level (every scored message):\n");
            for (c, row) in rows {
                let _ = writeln!(
                    s,
                    "- `{c}`: {} rows, base rate {}, average precision {}",
                    row.rows,
                    fmt_opt(row.base_rate, 3),
                    fmt_opt(row.average_precision, 3)
                );
            }
        }
        let _ = writeln!(s);
    }

    if !r.types_without_model.is_empty() {
        let _ = writeln!(
            s,
            "Not evaluated (no usable model): {}.\n",
            r.types_without_model.join(", ")
        );
    }
    if !r.unscored_failures.is_empty() {
        let list: Vec<String> = r
            .unscored_failures
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let _ = writeln!(
            s,
            "Failures of components the model does not score (not in any table): {}.\n",
            list.join(", ")
        );
    }
    let _ = writeln!(s, "## Charts\n");
    if no_charts {
        let _ = writeln!(s, "Charts were not requested.");
    } else {
        if !r.chart_text {
            let _ = writeln!(
                s,
                "No font was found (looked for DejaVu Sans, Liberation Sans and a few other \
                 common paths), so the charts are drawn without captions, labels or legends.\n"
            );
        }
        for c in &r.charts {
            let _ = writeln!(s, "![{c}]({c})");
        }
    }
    s
}

#[cfg(test)]
mod tests;
