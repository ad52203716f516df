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
//!
//! # Modules
//! [`eval`] replays the history (`replay`), counts each (device, component)'s flags and
//! failures (`count`), turns the counts into [`Metrics`] (`metrics`) and writes the
//! report (`report`, `charts`).

mod charts;
mod count;
mod metrics;
mod replay;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use domain::ProfileSet;

pub use count::{
    classify_flag, score_events, EpisodeRecord, EventCounts, FailureCounts, FailureEvent,
    FlagCounts, FlagOutcome,
};
pub use metrics::{Metrics, RowLevel, ScopedMetrics};
pub use report::{EvalReport, HistorySummary};

pub(crate) use metrics::percentile;
pub(crate) use replay::Series;

use crate::history::{self, EventKind, HistoryEvent};
use crate::predict::has_usable_model;
use crate::registry::ModelRegistry;
use crate::{Error, Result, Scorer};
use count::count_events;
use metrics::scope;
use replay::{pick_series, Replay};
use report::{render_markdown, write_episodes, write_json};

const DAY_MS: i64 = domain::Timestamp::DAY_MS;
/// Window of the baseline rules.
pub const BASELINE_WINDOW_MS: i64 = 7 * DAY_MS;
/// Name under which baseline metrics carry their "model version".
pub const BASELINE_VERSION: &str = "baseline-fault-codes";
/// Failures per (device, component): (time, repair time, sudden).
type FailureMap = BTreeMap<(String, String), Vec<(i64, Option<i64>, bool)>>;

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

/// The horizon per device type: [`EvalParams::horizon_ms`], else the type's active
/// model's, else 14 days.
struct Horizons<'a> {
    fixed: Option<i64>,
    registry: &'a ModelRegistry,
}

impl Horizons<'_> {
    fn of(&self, device_type: &str) -> i64 {
        self.fixed.unwrap_or_else(|| {
            self.registry
                .get(device_type)
                .map(|a| a.horizon_ms)
                .filter(|&h| h > 0)
                .unwrap_or(14 * DAY_MS)
        })
    }
}

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
    let failures = failure_map(&events);
    let horizons = Horizons {
        fixed: params.horizon_ms,
        registry: &registry,
    };
    let from = params.from_ms.unwrap_or(i64::MIN);
    let scorer = Scorer::new(registry.clone(), profiles.clone());
    let mut replay = Replay::new(scorer, &profiles, &failures, &horizons, from);
    let stats = history::for_each_message(history_dir, &profiles, |msg| replay.observe(&msg))?;
    replay.flush();

    // Evaluated (type, component) pairs: trained components of usable models.
    let (covered, types_without_model) = covered_pairs(&replay, &registry, &profiles);
    let counted = count_events(&replay, &covered, &failures, &horizons, from);
    let unscored_failures = unscored_failures(&replay, &covered, &failures, from);

    let version_of = |t: &str| -> String {
        replay
            .versions
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
    let model = scope(
        &counted.model,
        &counted.type_devices,
        &version_of,
        all_versions,
    );
    let baseline = scope(
        &counted.baseline,
        &counted.type_devices,
        &|_| BASELINE_VERSION.to_owned(),
        BASELINE_VERSION.to_owned(),
    );

    let (row_level, pr_curves) = row_level(&replay);

    let mut report = EvalReport {
        horizon_ms: covered
            .keys()
            .map(|t| (t.clone(), horizons.of(t)))
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
            devices: replay.devices.len() as u64,
        },
        charts: Vec::new(),
        chart_text: false,
    };

    fs::create_dir_all(report_dir).map_err(|e| Error::io(report_dir, e))?;
    if !params.no_charts {
        let text = charts::font_available();
        report.charts = draw_charts(&replay, &counted, &failures, &pr_curves, report_dir, text)?;
        report.chart_text = text;
    }
    write_json(&report, &report_dir.join("metrics.json"))?;
    write_episodes(&counted.episodes, &report_dir.join("episodes.jsonl"))?;
    let md = render_markdown(&report, params.no_charts);
    let path = report_dir.join("report.md");
    fs::write(&path, md).map_err(|e| Error::io(&path, e))?;
    Ok(report)
}

/// Row-level quality and the precision-recall curve of every (type, component) scored.
fn row_level(
    replay: &Replay<'_>,
) -> (
    BTreeMap<String, BTreeMap<String, RowLevel>>,
    charts::PrCurves,
) {
    let mut row_level: BTreeMap<String, BTreeMap<String, RowLevel>> = BTreeMap::new();
    let mut pr_curves: charts::PrCurves = BTreeMap::new();
    for ((t, c), h) in &replay.hists {
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
    (row_level, pr_curves)
}

/// Draws the PNG charts into `report_dir` (with text when `text`); returns their names.
fn draw_charts(
    replay: &Replay<'_>,
    counted: &count::Counted,
    failures: &FailureMap,
    pr_curves: &charts::PrCurves,
    report_dir: &Path,
    text: bool,
) -> Result<Vec<String>> {
    let origin = if replay.min_ts == i64::MAX {
        0
    } else {
        replay.min_ts
    };
    let mut lead_days: Vec<f64> = Vec::new();
    for c in counted.model.values() {
        lead_days.extend(c.lead_times_ms.iter().map(|&ms| ms as f64 / DAY_MS as f64));
    }
    let picks = pick_series(
        &replay.series,
        failures,
        &replay.failing_candidates,
        &replay.healthy_candidates,
    );
    let data = charts::ChartData {
        pr_curves,
        lead_days: &lead_days,
        series: &picks,
        origin_ms: origin,
    };
    charts::draw_all(&data, report_dir, text)
}

/// Failures (with their repair) per (device, component).
fn failure_map(events: &[HistoryEvent]) -> FailureMap {
    let mut failures: FailureMap = BTreeMap::new();
    for e in events {
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
    failures
}

/// The trained components of each device type seen that has a usable model, and the
/// types seen without one.
fn covered_pairs(
    replay: &Replay<'_>,
    registry: &ModelRegistry,
    profiles: &ProfileSet,
) -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let mut types_seen: BTreeSet<String> = BTreeSet::new();
    for d in replay.devices.values() {
        types_seen.insert(d.device_type.clone());
    }
    let mut covered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut types_without_model = Vec::new();
    for t in &types_seen {
        if !has_usable_model(registry, profiles, t) {
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
    (covered, types_without_model)
}

/// Failures from `from` on of devices or components the model does not score, per
/// `type/component`.
fn unscored_failures(
    replay: &Replay<'_>,
    covered: &BTreeMap<String, BTreeSet<String>>,
    failures: &FailureMap,
    from: i64,
) -> BTreeMap<String, u64> {
    let mut unscored_failures: BTreeMap<String, u64> = BTreeMap::new();
    for ((device_id, comp), list) in failures {
        let t = replay
            .devices
            .get(device_id)
            .map(|d| d.device_type.as_str());
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
    unscored_failures
}

#[cfg(test)]
mod tests;
