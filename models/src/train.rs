//! Training: a history directory (or any [`TrainingData`]: `fixahead train --from-store`
//! builds one from the stores) in, one [`ModelArtifact`] per device type out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use domain::{DeviceId, Message, ProfileSet, Timestamp};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::artifact::{
    sigmoid, CandidateMetrics, ComponentMetrics, ComponentModel, FaultRule, LabelSummary,
    ModelArtifact, MonthSet, TrainingSummary, FAMILY_LOGISTIC, FAMILY_TREES, FORMAT_VERSION,
};
use crate::features::{DeviceState, FeatureSchema};
use crate::history::{self, EventKind, HealthyCheck, HistoryEvent, HistoryStats};
use crate::trees::Tree;
use crate::{Error, Result};

/// Training hyper-parameters.
///
/// | name | default | purpose | range |
/// |---|---|---|---|
/// | `horizon_ms` | 14 days | a row is positive if the component fails within this | > 0 |
/// | `sample_interval_ms` | 6 h | at most one feature row per device per interval | > 0 |
/// | `validation_share` | 0.3 | last share of the history's time range used for validation | (0, 1) |
/// | `target_precision` | 0.85 | thresholds aim for this event-level precision on validation | (0, 1] |
/// | `alert_budget` | 2 | and at most this many false alarms per 1000 device-months, per component | >= 0 |
/// | `persistence` | 3 | consecutive scores over the threshold needed to flag | >= 1 |
/// | `hold_ms` | 12 h | event time the risk must stay over the threshold before a flag | >= 0 |
/// | `release_ms` | 3 days | a raised flag stays up until the risk has been below the threshold this long | >= 0 |
/// | `expire_flags` | true | a flag still up one horizon after it was raised expires and is raised again if its rule still holds | bool |
/// | `fault_code_rule` | true | also try flagging on the component's fault codes | bool |
/// | `adaptive_persistence` | true | also try `persistence` 1 with `hold_ms` | bool |
/// | `seed` | 42 | seeds negative undersampling | any |
/// | `max_iterations` | 150 | L-BFGS iterations per component model | >= 1 |
/// | `negatives_per_positive` | 4 | negatives kept per positive in the training split | > 0 |
/// | `l2` | 10.0 | L2 penalty (linfa `alpha`, on a loss summed over rows) | >= 0 |
/// | `min_positives` | 5 | fewer positive training rows skip the component | >= 1 |
/// | `min_lift` | 2 | a component whose better family's AP on the selection half is under this multiple of that half's base rate gets no model (it would only raise false alarms) | >= 0 |
/// | `max_fit_rows` | 40,000 | cap on rows per fit (positives are subsampled too above it) | >= 10 |
/// | `trees` | 40 | trees of the bagged-trees candidate (0 = logistic only) | >= 0 |
/// | `tree_depth` | 7 | maximum depth of each tree | 1..=20 |
/// | `tree_rows` | 6,000 | bootstrap rows per tree (drawn from the logistic fit's sample) | >= 10 |
/// | `test_from_ms` | none | messages and events at or after this time are a test period that training never reads | any |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    /// Label horizon in milliseconds.
    pub horizon_ms: i64,
    /// Emit at most one feature row per device per this much event time.
    pub sample_interval_ms: i64,
    /// The last share of the history's time range that is validation (split by time).
    pub validation_share: f64,
    /// Event-level precision (share of flag episodes followed by a failure) the
    /// per-component thresholds aim for on the validation split.
    pub target_precision: f64,
    /// False alarms per 1000 device-months each component's threshold may raise on the
    /// validation split. Components add up: a five-component type at the default raises
    /// at most about 10 per 1000 device-months when every component uses its budget.
    pub alert_budget: f64,
    /// Consecutive scores at or above the threshold needed to flag.
    pub persistence: u32,
    /// Event time the risk must stay at or above the threshold before a flag.
    pub hold_ms: i64,
    /// Also try a faster flag rule per component, `persistence` 1 with `hold_ms` (one
    /// score held that long: at least two readings, so a single reading still cannot
    /// raise a flag), and keep the rule that catches the most validation failures
    /// within the precision target and the alert budget (a tie keeps the slower rule).
    /// A washer reporting once a day needs three days for three scores.
    pub adaptive_persistence: bool,
    /// Once raised, a flag stays raised until the risk has stayed below the threshold
    /// for this much event time: a daily reporter whose risk hovers at the threshold
    /// would otherwise raise a new flag, and a new false alarm, every other day.
    pub release_ms: i64,
    /// A flag is a prediction for `horizon_ms`: when one is still up that long after it
    /// was raised, it expires (down for one score) and the flag rule raises it again if
    /// it still holds, so a standing risk is restated, and counted, once per horizon
    /// (`ComponentModel::expire_ms`). Off: a flag stays up as long as its rule and
    /// release keep it, however long that is.
    pub expire_flags: bool,
    /// Also try, per component, flagging on its fault codes besides the risk
    /// ([`crate::FaultRule`]), and keep it where it catches more validation failures
    /// within the precision target and the alert budget (a tie keeps the risk alone).
    pub fault_code_rule: bool,
    /// Seed of the negative undersampling.
    pub seed: u64,
    /// Solver iterations per model.
    pub max_iterations: u64,
    /// Negatives kept per positive row when undersampling the training split.
    pub negatives_per_positive: f64,
    /// L2 regularisation strength.
    pub l2: f64,
    /// Components with fewer positive training rows are skipped.
    pub min_positives: u64,
    /// Components whose best selection-half AP is under `min_lift` x the base rate are
    /// left without a model.
    pub min_lift: f64,
    /// Most rows one component fit uses; above it positives are subsampled as well
    /// (keeps training in seconds; the intercept correction accounts for both rates).
    pub max_fit_rows: u64,
    /// Trees of the bagged-trees candidate family; 0 trains the logistic family only.
    pub trees: u32,
    /// Maximum depth of each tree.
    pub tree_depth: u32,
    /// Bootstrap rows per tree.
    pub tree_rows: u64,
    /// Epoch ms from which the history is a held-out test period: training, validation,
    /// calibration and threshold selection never read a message or event at or after it
    /// (`fixahead train --test-from`, then `fixahead eval --from` on the same history).
    pub test_from_ms: Option<i64>,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            horizon_ms: 14 * Timestamp::DAY_MS,
            sample_interval_ms: 6 * Timestamp::HOUR_MS,
            validation_share: 0.3,
            // Planners act on a flag only if it is usually right (the after-sales
            // teams' 85% precision target), and count false alarms per device-month.
            target_precision: 0.85,
            alert_budget: 2.0,
            persistence: 3,
            hold_ms: 12 * Timestamp::HOUR_MS,
            adaptive_persistence: true,
            release_ms: 3 * Timestamp::DAY_MS,
            expire_flags: true,
            fault_code_rule: true,
            seed: 42,
            max_iterations: 150,
            negatives_per_positive: 4.0,
            // On the simulator's history, 1.0 let small washer sets saturate the sigmoid
            // (threshold 1.000); 10 keeps thresholds meaningful at the same AP.
            l2: 10.0,
            min_positives: 5,
            min_lift: 2.0,
            max_fit_rows: 40_000,
            trees: 40,
            tree_depth: 7,
            tree_rows: 6_000,
            test_from_ms: None,
        }
    }
}

impl TrainParams {
    /// How long a raised flag lasts before it expires (`expire_flags`): the horizon, or
    /// 0 (never).
    pub(crate) fn expire_ms(&self) -> i64 {
        if self.expire_flags {
            self.horizon_ms.max(0)
        } else {
            0
        }
    }

    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidParams(m.to_owned()));
        if self.horizon_ms <= 0 {
            return bad("horizon_ms must be positive");
        }
        if self.sample_interval_ms <= 0 {
            return bad("sample_interval_ms must be positive");
        }
        if !(self.validation_share > 0.0 && self.validation_share < 1.0) {
            return bad("validation_share must lie strictly between 0 and 1");
        }
        if !(self.target_precision > 0.0 && self.target_precision <= 1.0) {
            return bad("target_precision must lie in (0, 1]");
        }
        if !(self.alert_budget.is_finite() && self.alert_budget >= 0.0) {
            return bad("alert_budget must be a finite number >= 0");
        }
        if self.hold_ms < 0 {
            return bad("hold_ms must not be negative");
        }
        if self.release_ms < 0 {
            return bad("release_ms must not be negative");
        }
        if self.persistence == 0 {
            return bad("persistence must be at least 1");
        }
        if self.max_iterations == 0 {
            return bad("max_iterations must be at least 1");
        }
        if !(self.negatives_per_positive.is_finite() && self.negatives_per_positive > 0.0) {
            return bad("negatives_per_positive must be positive");
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad("l2 must be a non-negative number");
        }
        if !(self.min_lift.is_finite() && self.min_lift >= 0.0) {
            return bad("min_lift must be a finite number >= 0");
        }
        if self.min_positives == 0 {
            return bad("min_positives must be at least 1");
        }
        if self.max_fit_rows < 10 {
            return bad("max_fit_rows must be at least 10");
        }
        if !(1..=20).contains(&self.tree_depth) {
            return bad("tree_depth must lie in 1..=20");
        }
        if self.tree_rows < 10 {
            return bad("tree_rows must be at least 10");
        }
        Ok(())
    }
}

/// Progress reports of [`train`], for a progress bar or a log.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainProgress {
    /// Messages decoded so far (reported every 100,000).
    Reading {
        /// Messages decoded.
        messages: u64,
    },
    /// The history is read.
    Loaded {
        /// Lines read.
        lines: u64,
        /// Lines that did not decode and were skipped.
        rejected: u64,
        /// Devices seen.
        devices: u64,
        /// Feature rows sampled.
        rows: u64,
    },
    /// One component model is done (trained or skipped).
    Component {
        /// Device type.
        device_type: String,
        /// Component.
        component: String,
        /// `trained`, or why it was skipped.
        outcome: String,
    },
}

/// Feature rows of one device type, stored compactly (f32 row-major).
struct TypeRows {
    schema: FeatureSchema,
    feats: Vec<f32>,
    ts: Vec<i64>,
    dev: Vec<u32>,
    /// Position of the row among its device's rows.
    seq: Vec<u32>,
    devices: HashSet<u32>,
}

impl TypeRows {
    fn len(&self) -> usize {
        self.ts.len()
    }

    fn row(&self, i: usize) -> &[f32] {
        let d = self.schema.len();
        &self.feats[i * d..(i + 1) * d]
    }
}

struct Device {
    type_name: String,
    state: DeviceState,
    last_row_ms: Option<i64>,
    idx: u32,
    /// Rows sampled so far.
    rows: u32,
}

/// Reads the messages of a training set: hands each decoded message to the callback,
/// in the order the feature engine should apply them, and reports what it read.
pub type MessageReader<'a> =
    Box<dyn FnOnce(&ProfileSet, &mut dyn FnMut(Message)) -> Result<HistoryStats> + 'a>;

/// Everything training reads, wherever it comes from: a history directory
/// ([`TrainingData::from_history`]) or the live stores (`fixahead train --from-store`
/// builds one from `hot.db` and the ticket outcomes in `tickets.db`, in memory).
pub struct TrainingData<'a> {
    /// Where the data comes from (a directory or a file), for messages and errors.
    pub origin: PathBuf,
    /// Where the labels come from, recorded in each artefact: `history` (`events.jsonl`)
    /// or `store` (ticket outcomes).
    pub label_source: String,
    /// The profiles the messages are decoded and featurised with.
    pub profiles: ProfileSet,
    /// Failures and repairs, any order.
    pub events: Vec<HistoryEvent>,
    /// Event records that were unusable and skipped.
    pub rejected_events: u64,
    /// No-fault-found checks: negatives kept near the check (see the crate docs).
    pub healthy_checks: Vec<HealthyCheck>,
    /// The messages.
    pub messages: MessageReader<'a>,
}

impl TrainingData<'static> {
    /// A history directory (docs/history-format.md): `base` overridden by its
    /// `profiles/`, its `events.jsonl` and its `telemetry.jsonl` in file order.
    pub fn from_history(history_dir: &Path, base: &ProfileSet) -> Result<Self> {
        let profiles = history::load_profiles(history_dir, base)?;
        let (events, rejected_events) = history::load_events(history_dir)?;
        let dir = history_dir.to_owned();
        Ok(Self {
            origin: history_dir.to_owned(),
            label_source: LABELS_FROM_HISTORY.into(),
            profiles,
            events,
            rejected_events,
            healthy_checks: Vec::new(),
            messages: Box::new(move |profiles, f| history::for_each_message(&dir, profiles, f)),
        })
    }
}

/// [`LabelSummary::source`] of a model trained on a history directory's `events.jsonl`.
pub const LABELS_FROM_HISTORY: &str = "history";
/// [`LabelSummary::source`] of a model trained on ticket outcomes (`--from-store`).
pub const LABELS_FROM_STORE: &str = "store";

/// Trains one artefact per device type found in the history (see the crate docs for
/// features, labels, imbalance handling and thresholds). Types without enough data for
/// any training rows are reported through `progress` and left out.
pub fn train(
    history_dir: &Path,
    profiles: &ProfileSet,
    params: &TrainParams,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<Vec<ModelArtifact>> {
    params.validate()?;
    train_on(
        TrainingData::from_history(history_dir, profiles)?,
        params,
        progress,
    )
}

/// [`train`] on any [`TrainingData`].
pub fn train_on(
    data: TrainingData<'_>,
    params: &TrainParams,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<Vec<ModelArtifact>> {
    params.validate()?;
    let TrainingData {
        origin,
        label_source,
        profiles,
        mut events,
        rejected_events,
        mut healthy_checks,
        messages: read_messages,
    } = data;
    events.sort_by_key(|e| e.ts);
    let test_from = params.test_from_ms.unwrap_or(i64::MAX);
    events.retain(|e| e.ts.0 < test_from);
    healthy_checks.retain(|c| c.ts.0 < test_from);
    // The time range of the messages training reads (the test period excluded).
    let mut read_range: Option<(Timestamp, Timestamp)> = None;

    // 1. Replay the history through the feature engine, sampling rows.
    let mut schemas: HashMap<String, FeatureSchema> = HashMap::new();
    let mut types: BTreeMap<String, TypeRows> = BTreeMap::new();
    let mut devices: HashMap<DeviceId, Device> = HashMap::new();
    let mut device_ids: Vec<DeviceId> = Vec::new();
    let mut scratch: Vec<f64> = Vec::new();
    let mut messages = 0u64;
    let mut next_report = 100_000u64;
    let stats = read_messages(&profiles, &mut |msg| {
        messages += 1;
        if messages >= next_report {
            next_report += 100_000;
            progress(TrainProgress::Reading { messages });
        }
        let (device_type, ts) = match &msg {
            Message::Telemetry(t) => (t.device_type.as_str(), t.ts),
            Message::Fault(f) => (f.device_type.as_str(), f.ts),
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => return,
        };
        if ts.0 >= test_from {
            return;
        }
        read_range = Some(match read_range {
            None => (ts, ts),
            Some((lo, hi)) => (lo.min(ts), hi.max(ts)),
        });
        let Some(profile) = profiles.get(device_type) else {
            return;
        };
        let schema = schemas
            .entry(device_type.to_owned())
            .or_insert_with(|| FeatureSchema::for_profile(profile));
        let dev = match devices.get_mut(msg.device_id()) {
            Some(d) => d,
            None => {
                let idx = device_ids.len() as u32;
                device_ids.push(msg.device_id().clone());
                devices.entry(msg.device_id().clone()).or_insert(Device {
                    type_name: device_type.to_owned(),
                    state: DeviceState::new(schema),
                    last_row_ms: None,
                    idx,
                    rows: 0,
                })
            }
        };
        if dev.type_name != device_type {
            // A device that changes type starts over with the new type's features.
            dev.type_name = device_type.to_owned();
            dev.state = DeviceState::new(schema);
            dev.last_row_ms = None;
        }
        if !dev.state.update(&msg) || !dev.state.is_warm() {
            return;
        }
        if dev
            .last_row_ms
            .is_some_and(|last| ts.0.saturating_sub(last) < params.sample_interval_ms)
        {
            return;
        }
        dev.last_row_ms = Some(ts.0);
        let rows = types
            .entry(device_type.to_owned())
            .or_insert_with(|| TypeRows {
                schema: schema.clone(),
                feats: Vec::new(),
                ts: Vec::new(),
                dev: Vec::new(),
                seq: Vec::new(),
                devices: HashSet::new(),
            });
        scratch.resize(schema.len(), 0.0);
        dev.state.write_features(&mut scratch);
        rows.feats.extend(scratch.iter().map(|&x| x as f32));
        rows.ts.push(ts.0);
        rows.dev.push(dev.idx);
        rows.seq.push(dev.rows);
        dev.rows = dev.rows.saturating_add(1);
        rows.devices.insert(dev.idx);
    })?;
    let total_rows: usize = types.values().map(TypeRows::len).sum();
    progress(TrainProgress::Loaded {
        lines: stats.lines,
        rejected: stats.rejected,
        devices: devices.len() as u64,
        rows: total_rows as u64,
    });
    let Some((t_min, t_max)) = read_range else {
        return Err(Error::InvalidHistory {
            path: origin,
            message: format!(
                "no decodable messages{} ({} lines, {} rejected)",
                if params.test_from_ms.is_some() {
                    " before the test period"
                } else {
                    ""
                },
                stats.lines,
                stats.rejected
            ),
        });
    };
    let span = t_max.0.saturating_sub(t_min.0) as f64;
    let split = Timestamp(
        t_min
            .0
            .saturating_add((span * (1.0 - params.validation_share)) as i64),
    );

    // 2. Ground truth per device and component.
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
    for e in &events {
        if let Some(&i) = index.get(&e.device_id) {
            by_device.entry(i).or_default().push(e);
        }
        if e.kind == EventKind::Failure {
            count(&e.device_id, &e.component, true);
        }
    }
    let mut checks: HashMap<u32, Vec<&HealthyCheck>> = HashMap::new();
    for c in &healthy_checks {
        if let Some(&i) = index.get(&c.device_id) {
            checks.entry(i).or_default().push(c);
        }
        count(&c.device_id, &c.component, false);
    }
    let truth = GroundTruth {
        events: by_device,
        checks,
        labels,
        label_source,
    };

    let ctx = TrainContext {
        params,
        split,
        t_min,
        t_max,
        rejected_events,
        stats: &stats,
    };
    let mut out = Vec::new();
    for (device_type, rows) in &types {
        match train_type(&ctx, device_type, rows, &truth, progress)? {
            Some(a) => out.push(a),
            None => progress(TrainProgress::Component {
                device_type: device_type.clone(),
                component: "*".into(),
                outcome: "skipped: no training rows before the validation period".into(),
            }),
        }
    }
    Ok(out)
}

/// Labels per device (by index): failures and repairs, no-fault-found checks, and what
/// they add up to per device type.
struct GroundTruth<'a> {
    events: HashMap<u32, Vec<&'a HistoryEvent>>,
    checks: HashMap<u32, Vec<&'a HealthyCheck>>,
    labels: BTreeMap<String, LabelSummary>,
    label_source: String,
}

struct TrainContext<'a> {
    params: &'a TrainParams,
    split: Timestamp,
    t_min: Timestamp,
    t_max: Timestamp,
    rejected_events: u64,
    stats: &'a history::HistoryStats,
}

/// Which split a row belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Split {
    Train,
    /// Within one horizon before the split: its label would peek into validation.
    Gap,
    Validation,
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

fn train_type(
    ctx: &TrainContext<'_>,
    device_type: &str,
    rows: &TypeRows,
    truth: &GroundTruth<'_>,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<Option<ModelArtifact>> {
    let by_device = &truth.events;
    let p = ctx.params;
    let d = rows.schema.len();
    let n = rows.len();
    let split_of: Vec<Split> = rows
        .ts
        .iter()
        .map(|&t| {
            if t > ctx.split.0 {
                Split::Validation
            } else if t.saturating_add(p.horizon_ms) > ctx.split.0 {
                Split::Gap
            } else {
                Split::Train
            }
        })
        .collect();
    let train_idx: Vec<usize> = (0..n).filter(|&i| split_of[i] == Split::Train).collect();
    if train_idx.is_empty() {
        return Ok(None);
    }

    // Standardisation and normal ranges from the training split (NaN = unknown, skipped).
    let (mean, std) = mean_std(rows, &train_idx, d);
    let (p05, p95) = percentiles(rows, &train_idx, d, &mean);

    let components = rows.schema.components().to_vec();
    let mut models = Vec::with_capacity(components.len());
    let mut positives_summary = BTreeMap::new();
    let mut nff_rows = BTreeMap::new();
    for component in &components {
        // Per-device sorted (ts, kind) lists for this component.
        let mut ev: HashMap<u32, Vec<(i64, EventKind)>> = HashMap::new();
        for (&dev, list) in by_device {
            let v: Vec<(i64, EventKind)> = list
                .iter()
                .filter(|e| &e.component == component)
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
                .filter(|c| &c.component == component)
                .map(|c| c.ts.0)
                .collect();
            if !v.is_empty() {
                v.sort_unstable();
                chk.insert(dev, v);
            }
        }
        let mut checked = vec![false; n];
        let labels: Vec<Option<(bool, i64)>> = (0..n)
            .map(|i| {
                let (l, hard) = label_checked(
                    ev.get(&rows.dev[i]).map_or(&[][..], Vec::as_slice),
                    chk.get(&rows.dev[i]).map_or(&[][..], Vec::as_slice),
                    rows.ts[i],
                    p.horizon_ms,
                    ctx.t_max.0,
                );
                checked[i] = hard;
                l
            })
            .collect();
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        let mut hard_neg = Vec::new();
        for &i in &train_idx {
            match labels[i] {
                Some((true, _)) => pos.push(i),
                Some((false, _)) if checked[i] => hard_neg.push(i),
                Some((false, _)) => neg.push(i),
                None => {}
            }
        }
        positives_summary.insert(component.clone(), pos.len() as u64);
        let checked_rows = checked.iter().filter(|c| **c).count() as u64;
        if checked_rows > 0 {
            nff_rows.insert(component.clone(), checked_rows);
        }
        let skip = |reason: String| ComponentModel {
            skipped_reason: Some(reason),
            ..untrained(component, p)
        };
        let model = if (pos.len() as u64) < p.min_positives {
            skip(format!(
                "too few positive training rows: {} (need {})",
                pos.len(),
                p.min_positives
            ))
        } else if neg.is_empty() && hard_neg.is_empty() {
            skip("no negative training rows".into())
        } else {
            let seed =
                p.seed ^ fnv(device_type.as_bytes()) ^ fnv(component.as_bytes()).rotate_left(17);
            match fit_component(rows, &pos, &neg, &hard_neg, &mean, &std, p, seed) {
                Err(message) => skip(format!("solver failed: {message}")),
                Ok(fit) => {
                    let all_neg: Vec<usize> = neg.iter().chain(&hard_neg).copied().collect();
                    let ev =
                        EvalRows::new(rows, &split_of, &labels, &pos, &all_neg, ctx, &mean, &std);
                    let fault_rule = FaultRule::for_component(rows.schema.names(), component);
                    let flag_rules = FlagRule::candidates(p, fault_rule.is_some());
                    // Counted only when the whole-year rule is not chosen.
                    let seasonal = || {
                        fault_rule.and_then(|rule| {
                            seasonal_months(&history_rule_rows(rows, &split_of, &labels, rule), p)
                        })
                    };
                    choose_and_calibrate(component, fit, &ev, p, &flag_rules, fault_rule, seasonal)
                }
            }
        };
        progress(TrainProgress::Component {
            device_type: device_type.to_owned(),
            component: component.clone(),
            outcome: match &model.skipped_reason {
                Some(r) => format!("skipped: {r}"),
                None => format!(
                    "trained ({}, threshold {:.3}, {})",
                    model.family, model.threshold, model.threshold_rule
                ),
            },
        });
        models.push(model);
    }

    let summary = TrainingSummary {
        devices: rows.devices.len() as u64,
        rows: n as u64,
        train_rows: train_idx.len() as u64,
        validation_rows: split_of.iter().filter(|s| **s == Split::Validation).count() as u64,
        positives: positives_summary,
        time_range: (ctx.t_min, ctx.t_max),
        split_ts: ctx.split,
        history_lines: ctx.stats.lines,
        rejected_lines: ctx.stats.rejected,
        rejected_by_reason: ctx.stats.rejected_by_reason.clone(),
        rejected_events: ctx.rejected_events,
        params: p.clone(),
        labels: LabelSummary {
            no_fault_found_rows: nff_rows,
            ..truth
                .labels
                .get(device_type)
                .cloned()
                .unwrap_or_else(|| LabelSummary {
                    source: truth.label_source.clone(),
                    ..LabelSummary::default()
                })
        },
    };
    let now = chrono::Utc::now();
    let mut artifact = ModelArtifact {
        format_version: FORMAT_VERSION,
        version: String::new(),
        device_type: device_type.to_owned(),
        created_at: Timestamp::from(now).to_rfc3339(),
        horizon_ms: p.horizon_ms,
        feature_schema: rows.schema.names().to_vec(),
        feature_mean: mean,
        feature_std: std,
        feature_p05: p05,
        feature_p95: p95,
        components: models,
        training_summary: summary,
        drift_baseline: Some(crate::drift::DriftBaseline::from_rows(
            rows.schema.len(),
            train_idx.iter().map(|&i| rows.row(i)),
        )),
    };
    artifact.version = format!(
        "{device_type}-{}-{}",
        now.format("%Y%m%dT%H%M%SZ"),
        artifact.content_hash()
    );
    Ok(Some(artifact))
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn mean_std(rows: &TypeRows, idx: &[usize], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sum = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    let mut cnt = vec![0u64; d];
    for &i in idx {
        for (j, &x) in rows.row(i).iter().enumerate() {
            if x.is_finite() {
                let x = f64::from(x);
                sum[j] += x;
                sq[j] += x * x;
                cnt[j] += 1;
            }
        }
    }
    let mut mean = vec![0.0; d];
    let mut std = vec![1.0; d];
    for j in 0..d {
        if cnt[j] > 0 {
            let m = sum[j] / cnt[j] as f64;
            let var = (sq[j] / cnt[j] as f64 - m * m).max(0.0);
            mean[j] = m;
            let s = var.sqrt();
            // A (near) constant feature keeps std 1 so it standardises to ~0.
            if s > 1e-9 * m.abs().max(1.0) {
                std[j] = s;
            }
        }
    }
    (mean, std)
}

/// 5th and 95th percentiles per feature over at most 50,000 evenly spaced training rows.
fn percentiles(rows: &TypeRows, idx: &[usize], d: usize, mean: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let step = idx.len().div_ceil(50_000).max(1);
    let mut p05 = Vec::with_capacity(d);
    let mut p95 = Vec::with_capacity(d);
    let mut col = Vec::with_capacity(idx.len() / step + 1);
    for (j, m) in mean.iter().enumerate().take(d) {
        col.clear();
        col.extend(
            idx.iter()
                .step_by(step)
                .map(|&i| f64::from(rows.row(i)[j]))
                .filter(|x| x.is_finite()),
        );
        if col.is_empty() {
            p05.push(*m);
            p95.push(*m);
            continue;
        }
        col.sort_by(f64::total_cmp);
        let at = |q: f64| col[((col.len() - 1) as f64 * q).round() as usize];
        p05.push(at(0.05));
        p95.push(at(0.95));
    }
    (p05, p95)
}

/// Fits one component: all positives (at most `max_fit_rows / (1 + ratio)` of them),
/// `negatives_per_positive` times as many negatives, drawn with the seed, on standardised
/// features; returns oriented weights and the intercept corrected for the sampling.
#[allow(clippy::too_many_arguments)]
fn fit_component(
    rows: &TypeRows,
    pos: &[usize],
    neg: &[usize],
    keep_neg: &[usize],
    mean: &[f64],
    std: &[f64],
    p: &TrainParams,
    seed: u64,
) -> std::result::Result<Fitted, String> {
    let d = rows.schema.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ratio = p.negatives_per_positive;
    let cap = ((p.max_fit_rows as f64 / (1.0 + ratio)).floor() as usize).max(1);
    let pos_keep = pos.len().min(cap);
    let neg_total = neg.len() + keep_neg.len();
    let neg_keep = ((pos_keep as f64 * ratio).ceil() as usize).clamp(1, neg_total);
    let mut sample = |from: &[usize], k: usize| -> Vec<usize> {
        if k >= from.len() {
            return from.to_vec();
        }
        let mut v: Vec<usize> = rand::seq::index::sample(&mut rng, from.len(), k)
            .into_iter()
            .map(|j| from[j])
            .collect();
        v.sort_unstable();
        v
    };
    let pos = sample(pos, pos_keep);
    // Checked negatives (no fault found) are always kept; the draw fills up the rest.
    let mut chosen = sample(neg, neg_keep.saturating_sub(keep_neg.len()));
    chosen.extend_from_slice(keep_neg);
    chosen.sort_unstable();
    // Prior correction: sampling keeps positives at rate r_pos and negatives at r_neg,
    // which multiplies the odds by r_pos / r_neg.
    let correction =
        (chosen.len() as f64 / neg_total as f64).ln() - (pos_keep as f64 / pos.len() as f64).ln();

    let m = pos.len() + chosen.len();
    let mut x = Array2::<f64>::zeros((m, d));
    let mut y = Array1::<bool>::from_elem(m, false);
    for (r, &i) in pos.iter().chain(&chosen).enumerate() {
        for (j, &v) in rows.row(i).iter().enumerate() {
            let v = f64::from(v);
            x[[r, j]] = if v.is_finite() {
                (v - mean[j]) / std[j]
            } else {
                0.0
            };
        }
        y[r] = r < pos.len();
    }
    let dataset = Dataset::new(x, y);
    let fit_started = std::time::Instant::now();
    let fitted = LogisticRegression::default()
        .alpha(p.l2)
        .max_iterations(p.max_iterations)
        // linfa's loss is a sum over rows, so a fixed gradient tolerance is never reached
        // on large data and every fit would run all iterations: scale it with the rows
        // (a tolerance of 1e-3 on the mean gradient).
        .gradient_tolerance(1e-3 * m as f64)
        .fit(&dataset)
        .map_err(|e| e.to_string())?;
    tracing::debug!(
        rows = m,
        elapsed_ms = fit_started.elapsed().as_millis() as u64,
        "Component model fitted"
    );
    // linfa reports the probability of the class it calls positive, which is the
    // *larger* class, so it can be "no failure": orient by its labels.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let weights: Vec<f64> = fitted.params().iter().map(|w| sign * w).collect();
    let intercept = sign * fitted.intercept() + correction;
    if weights.iter().any(|w| !w.is_finite()) || !intercept.is_finite() {
        return Err("non-finite coefficients".into());
    }
    let trees = if p.trees == 0 {
        Vec::new()
    } else {
        let started = std::time::Instant::now();
        let labels: Vec<bool> = dataset.targets().iter().copied().collect();
        let forest = crate::trees::fit_forest(
            dataset.records().view(),
            &labels,
            &crate::trees::ForestParams {
                trees: p.trees as usize,
                max_depth: p.tree_depth as usize,
                rows_per_tree: p.tree_rows as usize,
                min_leaf: 5.0,
            },
            seed ^ 0x7ee5_5eed,
        );
        tracing::debug!(
            rows = m,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Bagged trees fitted"
        );
        match forest {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "Bagged trees failed; logistic only");
                Vec::new()
            }
        }
    };
    Ok(Fitted {
        weights,
        intercept,
        trees,
        correction,
    })
}

/// Both candidate families fitted on the same sample; `intercept` is the logistic
/// intercept (already prior-corrected) and `correction` the trees' prior correction.
struct Fitted {
    weights: Vec<f64>,
    intercept: f64,
    trees: Vec<Tree>,
    correction: f64,
}

/// One labelled row to evaluate on: `(row index, label, device, failure time)`.
type LabelledRow = (usize, bool, u32, i64);

/// The labelled rows a component is evaluated on, split by time: the validation
/// period's first half calibrates and chooses the family, its second half chooses the
/// threshold and reports the metrics (never shuffled). Training rows are the fallback.
struct EvalRows<'a> {
    rows: &'a TypeRows,
    mean: &'a [f64],
    std: &'a [f64],
    first_half: Vec<LabelledRow>,
    second_half: Vec<LabelledRow>,
    training: Vec<LabelledRow>,
}

impl<'a> EvalRows<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        rows: &'a TypeRows,
        split_of: &[Split],
        labels: &[Option<(bool, i64)>],
        pos: &[usize],
        neg: &[usize],
        ctx: &TrainContext<'_>,
        mean: &'a [f64],
        std: &'a [f64],
    ) -> EvalRows<'a> {
        let mid = ctx.split.0 + ctx.t_max.0.saturating_sub(ctx.split.0) / 2;
        let mut first_half = Vec::new();
        let mut second_half = Vec::new();
        for (i, s) in split_of.iter().enumerate() {
            if *s != Split::Validation {
                continue;
            }
            if let Some((y, f)) = labels[i] {
                let r = (i, y, rows.dev[i], f);
                if rows.ts[i] <= mid {
                    first_half.push(r);
                } else {
                    second_half.push(r);
                }
            }
        }
        let training = pos
            .iter()
            .chain(neg)
            .filter_map(|&i| labels[i].map(|(y, f)| (i, y, rows.dev[i], f)))
            .collect();
        EvalRows {
            rows,
            mean,
            std,
            first_half,
            second_half,
            training,
        }
    }

    /// `(logit, label, device, failure time)` of `model` on `set`.
    fn logits(&self, model: &ComponentModel, set: &[LabelledRow]) -> Vec<(f64, bool, u32, i64)> {
        let mut z = vec![0.0; self.mean.len()];
        set.iter()
            .map(|&(i, y, dev, f)| {
                for (j, (out, &x)) in z.iter_mut().zip(self.rows.row(i)).enumerate() {
                    let x = f64::from(x);
                    *out = if x.is_finite() {
                        (x - self.mean[j]) / self.std[j]
                    } else {
                        0.0
                    };
                }
                (model.logit(&z), y, dev, f)
            })
            .collect()
    }
}

fn has_both(set: &[LabelledRow]) -> bool {
    set.iter().any(|r| r.1) && set.iter().any(|r| !r.1)
}

/// Measures the candidate families' average precision on the first half of validation,
/// calibrates them there (Platt scaling), picks the one whose flags catch the most
/// validation failures within the precision target and alert budget (then the higher
/// AP), checks the signal on the second half, and chooses the threshold at event level
/// on the whole validation period.
fn choose_and_calibrate(
    component: &str,
    fit: Fitted,
    ev: &EvalRows<'_>,
    p: &TrainParams,
    flag_rules: &[FlagRule],
    fault_rule: Option<FaultRule>,
    seasonal: impl FnOnce() -> Option<MonthSet>,
) -> ComponentModel {
    let logistic = ComponentModel {
        weights: fit.weights,
        intercept: fit.intercept,
        ..untrained(component, p)
    };
    let mut candidates = vec![logistic.clone()];
    if !fit.trees.is_empty() {
        candidates.push(ComponentModel {
            family: FAMILY_TREES.into(),
            intercept: fit.correction,
            trees: fit.trees,
            ..logistic
        });
    }
    let all_validation: Vec<LabelledRow> = ev
        .first_half
        .iter()
        .chain(&ev.second_half)
        .copied()
        .collect();
    let any_pos = |set: &[LabelledRow]| set.iter().any(|r| r.1);
    let (selection, selection_name): (&[LabelledRow], &str) = if has_both(&ev.first_half) {
        (&ev.first_half, "validation_first_half")
    } else if any_pos(&all_validation) {
        (&all_validation, "validation")
    } else {
        (&ev.training, "training")
    };
    let holdout: &[LabelledRow] = if any_pos(&ev.second_half) {
        &ev.second_half
    } else if any_pos(&all_validation) {
        &all_validation
    } else {
        &ev.training
    };
    let ap = |scored: &[(f64, bool, u32, i64)]| {
        evaluate(scored, p.target_precision, None)
            .2
            .average_precision
    };
    let mut results = Vec::new();
    let mut best = 0usize;
    for (k, c) in candidates.iter().enumerate() {
        let selection_ap = ap(&ev.logits(c, selection));
        let holdout_logits = ev.logits(c, holdout);
        let validation_ap = ap(&holdout_logits);
        if selection_ap
            > results
                .get(best)
                .map_or(f64::NEG_INFINITY, |r: &CandidateMetrics| r.selection_ap)
        {
            best = k;
        }
        results.push(CandidateMetrics {
            family: c.family.clone(),
            selection_ap,
            validation_ap,
            selection_set: selection_name.into(),
        });
    }
    let selection_base =
        selection.iter().filter(|r| r.1).count() as f64 / selection.len().max(1) as f64;
    // Platt scaling on the first half of validation, when it has both classes.
    let calibrate = |mut model: ComponentModel| -> ComponentModel {
        if has_both(&ev.first_half) {
            let calib: Vec<(f64, bool)> = ev
                .logits(&model, &ev.first_half)
                .iter()
                .map(|r| (r.0, r.1))
                .collect();
            let (a, b) = crate::calibrate::platt(&calib);
            model.calibration_a = a;
            model.calibration_b = b;
            model.calibration_set = "validation_first_half".into();
        }
        model
    };
    let event_rows_of = |model: &ComponentModel, set: &[LabelledRow]| -> Vec<EventRow> {
        ev.logits(model, set)
            .into_iter()
            .zip(set)
            .map(|((s, y, dev, f), r)| EventRow {
                ts: ev.rows.ts[r.0],
                dev,
                seq: ev.rows.seq[r.0],
                month: MonthSet::month_of(ev.rows.ts[r.0]),
                positive: y,
                failure_ts: f,
                risk: sigmoid(model.calibration_a * s + model.calibration_b),
                rule: fault_rule.is_some_and(|rule| {
                    let row = ev.rows.row(r.0);
                    rule.fires_with(|i| row.get(i).map(|&x| f64::from(x)))
                }),
            })
            .collect()
    };
    // The family is chosen by what planners see: every candidate with a signal is
    // calibrated and its flags are replayed over the validation period; the one that
    // catches the most failures within the precision target and the alert budget wins,
    // then the higher selection AP. (Average precision alone picked a logistic model
    // for the air-conditioner compressor that caught 6 of 29 validation failures where
    // the trees caught 12, at no false alarm.)
    if any_pos(&all_validation) {
        let mut best_key: Option<(bool, f64, f64)> = None;
        for (k, c) in candidates.iter().enumerate() {
            let selection_ap = results[k].selection_ap;
            if selection_ap < p.min_lift * selection_base {
                continue;
            }
            let cal = calibrate(c.clone());
            if let Some((_, _, rule, m)) =
                event_threshold_and_rule(&event_rows_of(&cal, &all_validation), p, flag_rules)
            {
                let key = (rule == "event_target", m.recall, selection_ap);
                if best_key.is_none_or(|b| key > b) {
                    best_key = Some(key);
                    best = k;
                }
            }
        }
    }
    let model = candidates.swap_remove(best);
    // A model that ranks the selection rows barely better than chance only floods
    // planners with false alarms: leave the component without a model, and say why.
    let best_ap = results.get(best).map_or(0.0, |r| r.selection_ap);
    if selection_base > 0.0 && best_ap < p.min_lift * selection_base {
        let mut model = model;
        model.skipped_reason = Some(format!(
            "no signal: best average precision {best_ap:.3} on the {selection_name} is under {} x its base rate {selection_base:.3}",
            p.min_lift
        ));
        model.candidates = results;
        return model;
    }
    let mut model = calibrate(model);
    let calibrated = |model: &ComponentModel, set: &[LabelledRow]| -> Vec<(f64, bool, u32, i64)> {
        ev.logits(model, set)
            .into_iter()
            .map(|(s, y, dev, f)| {
                (
                    sigmoid(model.calibration_a * s + model.calibration_b),
                    y,
                    dev,
                    f,
                )
            })
            .collect()
    };
    let scored = calibrated(&model, holdout);
    // Row-level ranking quality on the threshold half (the no-signal rule, AP, base rate).
    let (_, _, row_metrics) = evaluate(&scored, p.target_precision, None);
    model.candidates = results;
    // The signal must hold on the threshold half too: a model that ranks those rows no
    // better than chance gets a threshold from the best-F1 fallback that flags nearly
    // every device.
    if row_metrics.base_rate > 0.0
        && row_metrics.average_precision < p.min_lift * row_metrics.base_rate
    {
        model.skipped_reason = Some(format!(
            "no signal: average precision {:.3} on the threshold half of validation is under {} x its base rate {:.3}",
            row_metrics.average_precision, p.min_lift, row_metrics.base_rate
        ));
        model.metrics = Some(row_metrics);
        return model;
    }
    // The threshold is chosen at event level, as planners count: flag episodes against
    // the failures that followed, over the whole validation period (both halves: a
    // half holds only a handful of failures per component). Calibration is monotone, so
    // fitting it on the first half does not bias which rows rank above a threshold.
    let (event_set, event_suffix): (&[LabelledRow], &str) = if any_pos(&all_validation) {
        (&all_validation, "")
    } else {
        (&ev.training, "_training")
    };
    let event_rows = event_rows_of(&model, event_set);
    let lead_rows: Vec<(f64, f64)> = event_rows
        .iter()
        .filter(|r| r.positive)
        .map(|r| {
            (
                r.risk,
                (r.failure_ts - r.ts) as f64 / Timestamp::DAY_MS as f64,
            )
        })
        .collect();
    let chosen = with_seasonal_rule(
        &event_rows,
        p,
        flag_rules,
        event_threshold_and_rule(&event_rows, p, flag_rules),
        seasonal,
    );
    let Some((flag_rule, threshold, rule, events)) = chosen else {
        model.skipped_reason = Some(format!(
            "no usable threshold: none catches a failure in the validation period within the alert budget of {} false alarms per 1000 device-months",
            p.alert_budget
        ));
        model.metrics = Some(row_metrics);
        return model;
    };
    let (_, _, mut metrics) = evaluate(&scored, p.target_precision, Some(threshold));
    metrics.validation_events = Some(events);
    model.threshold = threshold;
    model.persistence = flag_rule.persistence;
    model.hold_ms = flag_rule.hold_ms;
    model.fault_rule = fault_rule
        .filter(|_| flag_rule.fault_rule)
        .map(|rule| FaultRule {
            months: flag_rule.fault_months,
            ..rule
        });
    model.lead_time = crate::artifact::lead_time_bins(threshold, lead_rows);
    model.threshold_rule = format!("{rule}{event_suffix}");
    model.metrics = Some(metrics);
    model
}

/// One validation row for event-level threshold selection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventRow {
    pub(crate) ts: i64,
    pub(crate) dev: u32,
    /// Position among the device's sampled rows: a jump means rows were excluded (a
    /// broken or censored stretch) and breaks an episode.
    pub(crate) seq: u32,
    /// Calendar month of `ts` ([`MonthSet::month_of`]).
    pub(crate) month: u8,
    /// A failure of the component follows within the horizon.
    pub(crate) positive: bool,
    /// That failure's time (meaningful when `positive`).
    pub(crate) failure_ts: i64,
    pub(crate) risk: f64,
    /// The component's fault-code rule fires at this row.
    pub(crate) rule: bool,
}

/// Most candidate thresholds tried by [`event_threshold`] (quantiles of the risks).
const EVENT_CANDIDATES: usize = 400;

/// A flag rule: consecutive scores at or above the threshold, and event time held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlagRule {
    pub(crate) persistence: u32,
    pub(crate) hold_ms: i64,
    /// Also flag while the component's fault-code rule fires ([`crate::FaultRule`]).
    pub(crate) fault_rule: bool,
    /// The months the fault-code rule is on ([`FaultRule::months`]).
    pub(crate) fault_months: MonthSet,
}

impl FlagRule {
    /// The flag rules training tries, slowest first (see
    /// [`TrainParams::adaptive_persistence`]): the configured one, and one score held
    /// `hold_ms` when that hold spans at least one sample interval. A flag always needs
    /// the risk to persist (a single reading never raises one), and validation rows are
    /// a sample every `sample_interval_ms`: they cannot show a shorter spell.
    /// `has_fault_rule`: the component has fault features, so each rule is also tried
    /// with its fault-code rule ([`TrainParams::fault_code_rule`]), after all rules
    /// without it.
    pub(crate) fn candidates(p: &TrainParams, has_fault_rule: bool) -> Vec<FlagRule> {
        let mut rules = vec![FlagRule {
            persistence: p.persistence.max(1),
            hold_ms: p.hold_ms.max(0),
            fault_rule: false,
            fault_months: MonthSet::ALL,
        }];
        let held = FlagRule {
            persistence: 1,
            hold_ms: p.hold_ms.max(0),
            fault_rule: false,
            fault_months: MonthSet::ALL,
        };
        if p.adaptive_persistence && held.hold_ms >= p.sample_interval_ms && !rules.contains(&held)
        {
            rules.push(held);
        }
        if p.fault_code_rule && has_fault_rule {
            let with: Vec<FlagRule> = rules
                .iter()
                .map(|r| FlagRule {
                    fault_rule: true,
                    ..*r
                })
                .collect();
            rules.extend(with);
        }
        rules
    }

    /// `rules` without the fault-code rule, each with it on in `months` only.
    pub(crate) fn seasonal(rules: &[FlagRule], months: MonthSet) -> Vec<FlagRule> {
        rules
            .iter()
            .filter(|r| !r.fault_rule)
            .map(|r| FlagRule {
                fault_rule: true,
                fault_months: months,
                ..*r
            })
            .collect()
    }

    /// Whether the fault-code rule raises a flag at `row`.
    fn fault_fires(&self, row: &EventRow) -> bool {
        self.fault_rule
            && row.rule
            && (self.fault_months.is_all() || self.fault_months.contains(row.month))
    }
}

/// A flag rule and its threshold, as [`event_threshold_and_rule`] returns them.
type ChosenRule = (FlagRule, f64, &'static str, crate::artifact::EventMetrics);

/// `chosen` (the best of the whole-year candidates on the validation `rows`), or the
/// fault-code rule on in the months `seasonal` returns ([`seasonal_months`]; asked only
/// when the whole-year rule was not chosen) when that does at least as well on
/// `rows`: a tie goes to the seasonal rule, since validation saw it do no harm and the
/// months it is on were checked on the whole history (the rule has no fitted
/// parameter, so the training period is fair evidence for it). Where validation has
/// rows, its verdict stands: when the rule loses there, it is tried once more without
/// the months the validation rows cover. Nothing changes with
/// [`TrainParams::fault_code_rule`] off.
fn with_seasonal_rule(
    rows: &[EventRow],
    p: &TrainParams,
    flag_rules: &[FlagRule],
    mut chosen: Option<ChosenRule>,
    seasonal: impl FnOnce() -> Option<MonthSet>,
) -> Option<ChosenRule> {
    if !p.fault_code_rule || chosen.as_ref().is_some_and(|c| c.0.fault_rule) {
        return chosen;
    }
    let Some(months) = seasonal() else {
        return chosen;
    };
    let validated = MonthSet::of(rows.iter().map(|r| r.month));
    let outside = MonthSet::of(months.months().filter(|&m| !validated.contains(m)));
    for months in [months, outside] {
        if months.is_empty() || chosen.as_ref().is_some_and(|c| c.0.fault_rule) {
            break;
        }
        let rules = FlagRule::seasonal(flag_rules, months);
        if let Some(s) = event_threshold_and_rule(rows, p, &rules) {
            if chosen
                .as_ref()
                .is_none_or(|c| candidate_key(s.2, &s.3) >= candidate_key(c.2, &c.3))
            {
                chosen = Some(s);
            }
        }
    }
    chosen
}

/// How flag-rule candidates rank: a threshold meeting the target, then recall, then the
/// median lead time.
fn candidate_key(name: &str, m: &crate::artifact::EventMetrics) -> (bool, f64, f64) {
    (
        name == "event_target",
        m.recall,
        m.lead_time_days_median.unwrap_or(0.0),
    )
}

/// Every labelled row of the history before the test period (training, gap and
/// validation), as event rows with the fault-code rule's verdict and no risk: the
/// input of [`seasonal_months`].
fn history_rule_rows(
    rows: &TypeRows,
    split_of: &[Split],
    labels: &[Option<(bool, i64)>],
    rule: FaultRule,
) -> Vec<EventRow> {
    (0..rows.len())
        .filter(|&i| matches!(split_of[i], Split::Train | Split::Gap | Split::Validation))
        .filter_map(|i| {
            let (positive, failure_ts) = labels[i]?;
            let row = rows.row(i);
            Some(EventRow {
                ts: rows.ts[i],
                dev: rows.dev[i],
                seq: rows.seq[i],
                month: MonthSet::month_of(rows.ts[i]),
                positive,
                failure_ts,
                risk: 0.0,
                rule: rule.fires_with(|k| row.get(k).map(|&x| f64::from(x))),
            })
        })
        .collect()
}

/// The calendar months in which the fault-code rule alone (flags raised while it fires,
/// released as the live scorer releases them) met the precision target and the alert
/// budget on `rows`, each month judged with its two neighbours: the flags that started
/// in those three months, and their device-months. A month whose three months hold no
/// flag has no evidence and stays off. `None` when no month or every month qualifies:
/// then there is no season to tell apart.
pub(crate) fn seasonal_months(rows: &[EventRow], p: &TrainParams) -> Option<MonthSet> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.dev.cmp(&b.dev).then(a.seq.cmp(&b.seq)));
    // Per month: flags, false alarms, device milliseconds.
    let mut flags = [0u64; 13];
    let mut false_alarms = [0u64; 13];
    let mut device_ms = [0i64; 13];
    let mut latch = crate::scorer::FlagLatch::default();
    for k in 0..rows.len() {
        let r = rows[k];
        let m = usize::from(r.month.min(12));
        let contiguous =
            k > 0 && rows[k - 1].dev == r.dev && r.seq == rows[k - 1].seq.saturating_add(1);
        if contiguous {
            device_ms[m] += r.ts.saturating_sub(rows[k - 1].ts).max(0);
        } else {
            latch = crate::scorer::FlagLatch::default();
        }
        let was_up = latch.is_up();
        let up = crate::scorer::latch(
            &mut latch,
            r.rule,
            false,
            r.ts / 1000,
            p.release_ms,
            p.expire_ms(),
            // Rows stop at a failure and the latch restarts after the gap, so no flag
            // here spans a repair.
            |_| false,
        );
        if up && !was_up {
            flags[m] += 1;
            if !r.positive {
                false_alarms[m] += 1;
            }
        }
    }
    // A month is judged with its two neighbours (December and January are neighbours):
    // a season spans months, and one month of a small fleet holds a handful of flags,
    // too few to tell a clean month from a lucky one (the 300-device demo history put the
    // refrigerant rule on in Jan-Mar, May, Jul-Oct and Dec when judged month by month).
    let around = |counts: &[u64; 13], m: usize| -> u64 {
        let (before, after) = (
            if m == 1 { 12 } else { m - 1 },
            if m == 12 { 1 } else { m + 1 },
        );
        counts[before] + counts[m] + counts[after]
    };
    let device_ms = device_ms.map(|ms| ms.max(0) as u64);
    let month_ms = 30.44 * Timestamp::DAY_MS as f64;
    let months = MonthSet::of((1..=12u8).filter(|&m| {
        let m = usize::from(m);
        let (flags, false_alarms) = (around(&flags, m), around(&false_alarms, m));
        let device_months = around(&device_ms, m) as f64 / month_ms;
        flags > 0
            && (flags - false_alarms) as f64 / flags as f64 >= p.target_precision
            && device_months > 0.0
            && 1000.0 * false_alarms as f64 / device_months <= p.alert_budget
    }));
    tracing::debug!(?flags, ?false_alarms, %months, "Fault-code rule by month");
    (!months.is_empty() && !months.is_all()).then_some(months)
}

/// The best flag rule and its threshold ([`event_threshold`] for each of `rules`, from
/// [`FlagRule::candidates`]): a threshold meeting the target wins over a best-F1
/// fallback, then the higher recall, then the longer median lead time, then the slower
/// rule (fewer chances for noise).
pub(crate) fn event_threshold_and_rule(
    rows: &[EventRow],
    p: &TrainParams,
    rules: &[FlagRule],
) -> Option<ChosenRule> {
    let mut best: Option<ChosenRule> = None;
    for &rule in rules {
        let Some((t, name, m)) = event_threshold(rows.to_vec(), p, rule) else {
            tracing::debug!(
                ?rule,
                "No threshold catches a failure within the alert budget"
            );
            continue;
        };
        tracing::debug!(?rule, threshold = t, selection = name, flags = m.flags,
            false_alarms = m.false_alarms, caught = m.caught, failures = m.failures,
            false_alarms_per_1000_device_months = m.false_alarms_per_1000_device_months,
            lead_time_days_median = ?m.lead_time_days_median, "Flag rule candidate");

        if best
            .as_ref()
            .is_none_or(|(_, _, bn, bm)| candidate_key(name, &m) > candidate_key(bn, bm))
        {
            best = Some((rule, t, name, m));
        }
    }
    best
}

/// Chooses a threshold at event level on rows sampled every `sample_interval_ms`.
///
/// Flags are counted the way `eval` and the live scorer raise them under `rule`: an
/// episode starts at the first row where the risk has been at or above the threshold
/// for at least `rule.persistence` consecutive rows and for at least `rule.hold_ms` of
/// event time since the first of them, and ends once the risk has stayed below it for
/// `release_ms` (at once when 0), or at a gap in the rows (an excluded period). An episode is true if its first flagged row is
/// positive (its component fails within the horizon), and it catches that failure.
///
/// Rule: among thresholds whose event precision reaches `target_precision` and whose
/// false alarms stay within `alert_budget` per 1000 device-months, with at least one
/// failure caught, those with the highest recall form a band, and the band's middle in
/// log-odds is chosen when it keeps that recall and the constraints, else its top
/// (`event_target`); otherwise, among thresholds within the budget that catch a
/// failure, the one with the best event F1, then the highest (`event_max_f1`).
/// `None` when no threshold catches a failure within the budget: such a model would
/// only send planners false alarms.
pub(crate) fn event_threshold(
    mut rows: Vec<EventRow>,
    p: &TrainParams,
    rule: FlagRule,
) -> Option<(f64, &'static str, crate::artifact::EventMetrics)> {
    rows.sort_by(|a, b| a.dev.cmp(&b.dev).then(a.seq.cmp(&b.seq)));
    let need = rule.persistence.max(1) as usize;
    let release_ms = p.release_ms.max(0);
    let expire_ms = p.expire_ms();
    let contiguous = |k: usize| {
        k > 0 && rows[k - 1].dev == rows[k].dev && rows[k].seq == rows[k - 1].seq.saturating_add(1)
    };
    // Device-months: each device's span of rows.
    let mut device_ms = 0i64;
    let mut k = 0;
    while k < rows.len() {
        let dev = rows[k].dev;
        let first = rows[k].ts;
        let mut last = first;
        while k < rows.len() && rows[k].dev == dev {
            last = rows[k].ts;
            k += 1;
        }
        device_ms += last - first;
    }
    let device_months = device_ms as f64 / (30.44 * Timestamp::DAY_MS as f64);
    // Each positive row's failure, numbered, so a candidate's catches are a vector.
    let mut failure_index: HashMap<(u32, i64), usize> = HashMap::new();
    let failure_of: Vec<usize> = rows
        .iter()
        .map(|r| {
            let next = failure_index.len();
            if r.positive {
                *failure_index.entry((r.dev, r.failure_ts)).or_insert(next)
            } else {
                usize::MAX
            }
        })
        .collect();
    let n_failures = failure_index.len();
    let count = |t: f64| -> crate::artifact::EventMetrics {
        let (mut flags, mut false_alarms) = (0u64, 0u64);
        // Per failure, the lead in days of the first flag that caught it (NaN: none).
        let mut caught = vec![f64::NAN; n_failures];
        // The live scorer's latch (`scorer::latch`) on event seconds.
        let (mut run, mut since) = (0usize, 0i64);
        let mut latch = crate::scorer::FlagLatch::default();
        for (k, r) in rows.iter().enumerate() {
            if !contiguous(k) {
                (run, latch) = (0, crate::scorer::FlagLatch::default());
            }
            let above = r.risk >= t;
            if above {
                if run == 0 {
                    since = r.ts;
                }
                run += 1;
            } else {
                run = 0;
            }
            // A fault-code rule raises a flag as soon as it fires: the device itself
            // reports the fault, which the service teams want the moment it happens.
            let raise =
                (above && run >= need && r.ts - since >= rule.hold_ms) || rule.fault_fires(r);
            let was_up = latch.is_up();
            let up = crate::scorer::latch(
                &mut latch,
                raise,
                above,
                r.ts / 1000,
                release_ms,
                expire_ms,
                |_| false, // as above: no flag here spans a repair
            );
            if up && !was_up {
                flags += 1;
                if let Some(lead) = caught.get_mut(failure_of[k]) {
                    if lead.is_nan() {
                        *lead = (r.failure_ts - r.ts) as f64 / Timestamp::DAY_MS as f64;
                    }
                } else {
                    false_alarms += 1;
                }
            }
        }
        let mut leads: Vec<f64> = caught.into_iter().filter(|l| !l.is_nan()).collect();
        let n_caught = leads.len() as u64;
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        crate::artifact::EventMetrics {
            flags,
            false_alarms,
            failures: n_failures as u64,
            caught: n_caught,
            precision: ratio(flags - false_alarms, flags),
            recall: ratio(n_caught, n_failures as u64),
            false_alarms_per_1000_device_months: if device_months > 0.0 {
                1000.0 * false_alarms as f64 / device_months
            } else {
                0.0
            },
            device_months,
            lead_time_days_median: {
                leads.sort_by(f64::total_cmp);
                crate::eval::percentile(&leads, 0.5)
            },
        }
    };
    let mut risks: Vec<f64> = rows
        .iter()
        .map(|r| r.risk)
        .filter(|r| r.is_finite())
        .collect();
    risks.sort_by(f64::total_cmp);
    risks.dedup();
    let step = risks.len().div_ceil(EVENT_CANDIDATES).max(1);
    // Highest first, so ties keep the higher threshold; the top risks are all tried.
    let mut candidates: Vec<f64> = risks.iter().rev().take(50).copied().collect();
    candidates.extend(risks.iter().rev().step_by(step).copied());
    candidates.sort_by(|a, b| b.total_cmp(a));
    candidates.dedup();
    let f1 = |m: &crate::artifact::EventMetrics| {
        if m.precision + m.recall > 0.0 {
            2.0 * m.precision * m.recall / (m.precision + m.recall)
        } else {
            0.0
        }
    };
    // The feasible thresholds with the best recall form a band: `target` is its top,
    // `target_low` its bottom.
    let mut target: Option<(f64, crate::artifact::EventMetrics)> = None;
    let mut target_low: Option<f64> = None;
    let mut best: Option<(f64, f64, crate::artifact::EventMetrics)> = None;
    // Every candidate's replay is independent: count them on all cores, choose in order.
    let counted = crate::par::map(&candidates, |&t| count(t));
    for (&t, m) in candidates.iter().zip(counted) {
        let feasible = m.caught > 0
            && m.precision >= p.target_precision
            && m.false_alarms_per_1000_device_months <= p.alert_budget;
        if feasible {
            match &target {
                Some((_, b)) if m.recall <= b.recall => {
                    if m.recall == b.recall {
                        target_low = Some(t);
                    }
                }
                _ => {
                    target = Some((t, m.clone()));
                    target_low = Some(t);
                }
            }
        }
        let score = f1(&m);
        if m.caught > 0
            && m.false_alarms_per_1000_device_months <= p.alert_budget
            && best.as_ref().is_none_or(|(_, s, _)| score > *s)
        {
            best = Some((t, score, m));
        }
    }
    // The middle of the band (in log-odds) is the threshold least likely to lose a
    // catch or gain a false alarm on new data; it is used when it is itself feasible
    // with the same recall.
    if let (Some((hi, m_hi)), Some(lo)) = (&target, target_low) {
        let logit =
            |x: f64| (x.clamp(1e-12, 1.0 - 1e-12) / (1.0 - x.clamp(1e-12, 1.0 - 1e-12))).ln();
        let mid = sigmoid(0.5 * (logit(*hi) + logit(lo)));
        let m = count(mid);
        if mid < *hi
            && m.recall >= m_hi.recall
            && m.precision >= p.target_precision
            && m.false_alarms_per_1000_device_months <= p.alert_budget
        {
            target = Some((mid, m));
        }
    }
    match (target, best) {
        (Some((t, m)), _) => Some((t, "event_target", m)),
        (None, Some((t, _, m))) => Some((t, "event_max_f1", m)),
        (None, None) => None,
    }
}

/// A component model with nothing fitted yet: logistic family, identity calibration,
/// the training parameters' persistence and hold time, no threshold.
fn untrained(component: &str, p: &TrainParams) -> ComponentModel {
    ComponentModel {
        component: component.to_owned(),
        family: FAMILY_LOGISTIC.into(),
        weights: Vec::new(),
        intercept: 0.0,
        trees: Vec::new(),
        calibration_a: 1.0,
        calibration_b: 0.0,
        calibration_set: "none".into(),
        candidates: Vec::new(),
        threshold: 1.0,
        persistence: p.persistence,
        hold_ms: p.hold_ms,
        release_ms: p.release_ms.max(0),
        expire_ms: p.expire_ms(),
        fault_rule: None,
        threshold_rule: "none".into(),
        metrics: None,
        skipped_reason: None,
        lead_time: Vec::new(),
    }
}

/// Chooses a threshold on `(score, label, device, failure_ts)` rows and measures it.
///
/// Rule: among thresholds whose precision (over rows scoring at least the threshold)
/// reaches `target` with at least one true positive, the one with the highest recall,
/// and of those the highest threshold (`target_precision`); otherwise the threshold with
/// the best F1 (`max_f1`).
pub(crate) fn evaluate(
    rows: &[(f64, bool, u32, i64)],
    target: f64,
    fixed: Option<f64>,
) -> (f64, &'static str, ComponentMetrics) {
    let mut sorted: Vec<(f64, bool)> = rows.iter().map(|r| (r.0, r.1)).collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total_pos = sorted.iter().filter(|r| r.1).count() as f64;
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    let mut target_pick: Option<(f64, f64)> = None;
    let mut best_f1 = (f64::NEG_INFINITY, 1.0);
    let mut i = 0;
    while i < sorted.len() {
        let s = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == s {
            if sorted[i].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        let precision = tp / (tp + fp);
        let recall = if total_pos > 0.0 { tp / total_pos } else { 0.0 };
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        // Sweeping down, recall only grows: keep the highest threshold of each new
        // recall level, so ties in recall resolve to the more precise threshold.
        if tp >= 1.0 && precision >= target && target_pick.is_none_or(|(_, r)| recall > r) {
            target_pick = Some((s, recall));
        }
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        if f1 > best_f1.0 {
            best_f1 = (f1, s);
        }
    }
    let (threshold, rule) = match (fixed, target_pick) {
        (Some(t), _) => (t, "fixed"),
        (None, Some((s, _))) => (s, "target_precision"),
        (None, None) => (best_f1.1, "max_f1"),
    };
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut events: HashSet<(u32, i64)> = HashSet::new();
    let mut detected: HashSet<(u32, i64)> = HashSet::new();
    for &(s, y, dev, f) in rows {
        if y {
            events.insert((dev, f));
        }
        if s >= threshold {
            if y {
                tp += 1;
                detected.insert((dev, f));
            } else {
                fp += 1;
            }
        }
    }
    let positives = total_pos as u64;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, positives);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let metrics = ComponentMetrics {
        rows: rows.len() as u64,
        positives,
        base_rate: ratio(positives, rows.len() as u64),
        precision,
        recall,
        f1,
        average_precision: ap,
        mean_risk: if rows.is_empty() {
            0.0
        } else {
            rows.iter().map(|r| r.0).sum::<f64>() / rows.len() as f64
        },
        events: events.len() as u64,
        events_detected: detected.len() as u64,
        validation_events: None,
    };
    (threshold, rule, metrics)
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

    #[test]
    fn threshold_reaches_the_target_precision() {
        // Scores 0.9 (pos), 0.8 (pos), 0.7 (neg), 0.6 (pos), 0.5 (neg), 0.1 (neg) ...
        let rows: Vec<(f64, bool, u32, i64)> = [
            (0.9, true),
            (0.8, true),
            (0.7, false),
            (0.6, true),
            (0.5, false),
            (0.1, false),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(s, y))| (s, y, i as u32, 0))
        .collect();
        let (t, rule, m) = evaluate(&rows, 0.7, None);
        assert_eq!(rule, "target_precision");
        assert_eq!(t, 0.6, "precision at 0.6 is 3/4");
        assert!((m.precision - 0.75).abs() < 1e-12 && (m.recall - 1.0).abs() < 1e-12);
        let ap = 1.0 / 3.0 + 1.0 / 3.0 + 0.75 / 3.0;
        assert!((m.average_precision - ap).abs() < 1e-12);
        let (t, _, _) = evaluate(&rows, 0.5, None);
        assert_eq!(t, 0.6, "full recall already at 0.6: no lower threshold");
        let (_, rule, _) = evaluate(&rows, 1.0, None);
        assert_eq!(rule, "target_precision");
        let none: Vec<_> = rows.iter().map(|r| (r.0, false, r.2, 0)).collect();
        let (_, rule, _) = evaluate(&none, 0.5, None);
        assert_eq!(rule, "max_f1");
    }

    /// Rows of `devices` devices every `step_ms` for 60 days; devices below `failing`
    /// score `high` on the days in `high_days` and fail on day 24 (positives within
    /// the 14-day horizon before it), the others score 0.1 throughout.
    fn flag_rows(
        devices: u32,
        failing: u32,
        step_ms: i64,
        high_days: std::ops::Range<i64>,
    ) -> Vec<EventRow> {
        let day = Timestamp::DAY_MS;
        let fail = 24 * day;
        let mut rows = Vec::new();
        for dev in 0..devices {
            for (seq, ts) in (0..60 * day).step_by(step_ms as usize).enumerate() {
                let failing = dev < failing;
                if failing && ts >= fail {
                    break; // broken, then the history of this test ends
                }
                let high = failing && high_days.contains(&(ts / day));
                rows.push(EventRow {
                    ts,
                    dev,
                    seq: seq as u32,
                    month: MonthSet::month_of(ts),
                    positive: failing && fail - ts <= 14 * day,
                    failure_ts: fail,
                    risk: if high { 0.9 } else { 0.1 },
                    rule: false,
                });
            }
        }
        rows
    }

    #[test]
    fn flag_rules_follow_event_time_and_a_single_reading_never_raises_a_flag() {
        let p = TrainParams::default();
        let day = Timestamp::DAY_MS;
        let slow = FlagRule {
            persistence: 3,
            hold_ms: 12 * Timestamp::HOUR_MS,
            fault_rule: false,
            fault_months: MonthSet::ALL,
        };
        let held = FlagRule {
            persistence: 1,
            hold_ms: 12 * Timestamp::HOUR_MS,
            fault_rule: false,
            fault_months: MonthSet::ALL,
        };
        assert_eq!(FlagRule::candidates(&p, false), vec![slow, held]);
        let fixed = TrainParams {
            adaptive_persistence: false,
            ..TrainParams::default()
        };
        assert_eq!(FlagRule::candidates(&fixed, false), vec![slow]);
        // Without a hold the faster rule would flag on one reading: it is not tried.
        let no_hold = TrainParams {
            hold_ms: 0,
            ..TrainParams::default()
        };
        assert_eq!(FlagRule::candidates(&no_hold, false).len(), 1);

        // A daily reporter whose precursor shows from day 18: the slow rule flags on the
        // third high score (day 20), the held rule on the second (day 19).
        let sustained = flag_rows(30, 5, day, 18..24);
        for (rule, lead) in [(slow, 4.0), (held, 5.0)] {
            let (t, name, m) = event_threshold(sustained.clone(), &p, rule).unwrap();
            assert_eq!((name, m.caught, m.false_alarms), ("event_target", 5, 0));
            assert!(t > 0.1 && t <= 0.9, "{t}");
            assert_eq!(m.lead_time_days_median, Some(lead), "{rule:?}");
        }
        let (rule, _, _, m) =
            event_threshold_and_rule(&sustained, &p, &FlagRule::candidates(&p, false)).unwrap();
        assert_eq!((rule, m.recall), (held, 1.0), "same recall, longer lead");

        // One high score only (one reading): no rule raises a flag.
        let blip = flag_rows(30, 5, day, 20..21);
        assert!(event_threshold_and_rule(&blip, &p, &FlagRule::candidates(&p, false)).is_none());

        // Rows every 6 h of an hourly reporter: both rules flag 12 h into the episode,
        // the same catches and lead, so the slower rule is kept.
        let sampled = flag_rows(30, 5, 6 * Timestamp::HOUR_MS, 18..24);
        let (rule, _, _, m) =
            event_threshold_and_rule(&sampled, &p, &FlagRule::candidates(&p, false)).unwrap();
        assert_eq!((rule, m.lead_time_days_median), (slow, Some(5.5)));
    }

    /// The event counts of the top threshold under `p`'s release and expiry, with every
    /// threshold let through (no precision target, no budget) and one score raising a
    /// flag.
    fn top_threshold_counts(rows: Vec<EventRow>, p: TrainParams) -> crate::artifact::EventMetrics {
        let p = TrainParams {
            alert_budget: 1e9,
            target_precision: 0.0,
            ..p
        };
        let single = FlagRule {
            persistence: 1,
            hold_ms: 0,
            fault_rule: false,
            fault_months: MonthSet::ALL,
        };
        event_threshold(rows, &p, single).unwrap().2
    }

    #[test]
    fn a_flag_that_dips_under_the_threshold_within_the_release_time_is_one_flag() {
        let day = Timestamp::DAY_MS;
        // Healthy devices at 0.1 throughout; one device at 0.9 on days 10 and 12 (a dip
        // on day 11) and no failure: one false alarm with a release time, two without.
        let mut rows = flag_rows(40, 0, day, 0..0);
        for r in rows.iter_mut().filter(|r| r.dev == 0) {
            if [10, 12].contains(&(r.ts / day)) {
                r.risk = 0.9;
            }
        }
        let count = |release_ms: i64| {
            let mut rows = rows.clone();
            // One catchable failure elsewhere so that some threshold is usable.
            for r in rows.iter_mut().filter(|r| r.dev == 1 && r.ts / day == 20) {
                (r.risk, r.positive, r.failure_ts) = (0.9, true, 21 * day);
            }
            top_threshold_counts(
                rows,
                TrainParams {
                    release_ms,
                    ..TrainParams::default()
                },
            )
        };
        let released = count(3 * day);
        let at_once = count(0);
        assert_eq!((released.flags, released.false_alarms), (2, 1));
        assert_eq!((at_once.flags, at_once.false_alarms), (3, 2));
    }

    #[test]
    fn threshold_selection_counts_a_flag_restated_after_the_horizon_as_a_new_flag() {
        let day = Timestamp::DAY_MS;
        // Device 0 is healthy but at 0.9 from day 10 to day 40; device 1 at 0.9 from day
        // 5, 19 days before its failure on day 24 (the early flag: a false alarm).
        let mut rows = flag_rows(40, 0, day, 0..0);
        for r in rows.iter_mut().filter(|r| r.dev == 0) {
            if (10..=40).contains(&(r.ts / day)) {
                r.risk = 0.9;
            }
        }
        for r in rows.iter_mut().filter(|r| r.dev == 1) {
            if (5..24).contains(&(r.ts / day)) {
                r.risk = 0.9;
            }
            (r.positive, r.failure_ts) = (r.ts >= 10 * day && r.ts < 24 * day, 24 * day);
        }
        // Device 2: a catchable failure on day 21 (a flag on day 20), in both cases.
        for r in rows.iter_mut().filter(|r| r.dev == 2 && r.ts / day == 20) {
            (r.risk, r.positive, r.failure_ts) = (0.9, true, 21 * day);
        }
        let rows: Vec<EventRow> = rows
            .into_iter()
            .filter(|r| r.dev != 1 || r.ts < 24 * day)
            .collect();
        let count = |expire_flags: bool| {
            top_threshold_counts(
                rows.clone(),
                TrainParams {
                    expire_flags,
                    ..TrainParams::default()
                },
            )
        };
        // Expiring: device 0 flags on days 10, 25 and 40 (three false alarms); device 1
        // on day 5 (false) and again on day 20, which catches its failure 4 days ahead.
        let expiring = count(true);
        assert_eq!((expiring.flags, expiring.false_alarms), (6, 4));
        assert_eq!(expiring.caught, 2);
        // Without expiry: devices 0 and 1 flag once each, both false; device 1's
        // failure is missed.
        let standing = count(false);
        assert_eq!((standing.flags, standing.false_alarms), (3, 2));
        assert_eq!(standing.caught, 1);
    }

    #[test]
    fn the_fault_code_rule_is_kept_only_where_it_catches_more_within_the_budget() {
        let p = TrainParams::default();
        let day = Timestamp::DAY_MS;
        let with_rule = |r: FlagRule| FlagRule {
            fault_rule: true,
            fault_months: MonthSet::ALL,
            ..r
        };
        let base = FlagRule::candidates(&p, false);
        let all = FlagRule::candidates(&p, true);
        assert_eq!(all.len(), 2 * base.len());
        assert_eq!(
            all[base.len()..],
            base.iter().map(|&r| with_rule(r)).collect::<Vec<_>>()
        );
        let off = TrainParams {
            fault_code_rule: false,
            ..TrainParams::default()
        };
        assert_eq!(FlagRule::candidates(&off, true), base);

        // The risk shows one failing device (days 18-23, 0.9); the codes show all five,
        // on day 20 (a fault code raises the flag the moment it comes).
        let mut rows = flag_rows(30, 1, day, 18..24);
        for r in rows.iter_mut().filter(|r| r.dev < 5) {
            (r.positive, r.failure_ts) = (r.ts >= 10 * day, 24 * day);
            r.rule = r.ts / day == 20;
        }
        rows.retain(|r| r.dev >= 5 || r.ts < 24 * day);
        let (rule, _, _, m) = event_threshold_and_rule(&rows, &p, &all).unwrap();
        assert!(rule.fault_rule, "{rule:?}");
        assert_eq!((m.caught, m.false_alarms), (5, 0));
        // Codes on ten healthy devices as well: the rule breaks the budget, and the
        // risk alone is kept, with its one catch; a risk that catches the failures on
        // its own is kept alone too, since the rule adds only false alarms.
        let without_rule = |mut rows: Vec<EventRow>| {
            for r in rows
                .iter_mut()
                .filter(|r| (10..20).contains(&r.dev) && r.ts / day == 30)
            {
                r.rule = true;
            }
            let (rule, _, _, m) = event_threshold_and_rule(&rows, &p, &all).unwrap();
            assert!(!rule.fault_rule, "{rule:?}");
            (m.caught, m.false_alarms)
        };
        assert_eq!(without_rule(rows), (1, 0));
        assert_eq!(without_rule(flag_rows(30, 5, day, 18..24)), (5, 0));
    }

    #[test]
    fn the_fault_code_rule_can_be_kept_for_the_months_where_it_is_precise() {
        let p = TrainParams::default();
        let day = Timestamp::DAY_MS;
        // 2026-07-01, 2026-01-01 and 2026-02-01, UTC.
        let (july, january, february) = (1_782_864_000_000, 1_767_225_600_000, 1_769_904_000_000);
        let shift = |rows: Vec<EventRow>, by: i64, devices: u32| -> Vec<EventRow> {
            rows.into_iter()
                .map(|mut r| {
                    (r.ts, r.failure_ts, r.dev) = (r.ts + by, r.failure_ts + by, r.dev + devices);
                    r.month = MonthSet::month_of(r.ts);
                    r
                })
                .collect()
        };
        let codes_on = |mut rows: Vec<EventRow>, devices: std::ops::Range<u32>, on_day: i64| {
            for r in rows.iter_mut().filter(|r| devices.contains(&r.dev)) {
                r.rule = r.ts / day == on_day;
            }
            rows
        };
        // The history: in July five of thirty devices raise codes on day 20 and fail on
        // day 24; in January five healthy devices raise them and nothing follows.
        let summer = codes_on(flag_rows(30, 5, day / 4, 100..101), 0..5, 20);
        let winter = codes_on(flag_rows(30, 0, day / 4, 100..101), 0..5, 20);
        let history: Vec<EventRow> = shift(summer, july, 0)
            .into_iter()
            .chain(shift(winter.clone(), january, 100))
            .collect();
        // July is judged with June and August, which it makes good; January, with
        // December and February, bad.
        assert_eq!(seasonal_months(&history, &p), Some(MonthSet::of([6, 7, 8])));
        assert_eq!(
            seasonal_months(&shift(winter, january, 0), &p),
            None,
            "no good month"
        );

        // Validation in February and March: the risk catches two failures; codes on
        // five healthy devices break the alert budget of the whole-year rule.
        let validation = shift(
            codes_on(flag_rows(30, 2, day / 4, 18..24), 10..15, 10),
            february,
            0,
        );
        let rules = FlagRule::candidates(&p, true);
        let whole_year = event_threshold_and_rule(&validation, &p, &rules).unwrap();
        assert!(!whole_year.0.fault_rule, "{:?}", whole_year.0);
        let choose = |months: Option<MonthSet>| {
            with_seasonal_rule(&validation, &p, &rules, Some(whole_year.clone()), || months)
                .unwrap()
        };
        // The July rule does no harm in validation: it is kept, for July only.
        let seasonal = choose(Some(MonthSet::of([7])));
        assert!(seasonal.0.fault_rule);
        assert_eq!(seasonal.0.fault_months, MonthSet::of([7]));
        assert_eq!(
            (seasonal.3.caught, seasonal.3.false_alarms),
            (whole_year.3.caught, whole_year.3.false_alarms)
        );
        // Validation judges the months it covers: February's false codes drop it.
        assert_eq!(
            choose(Some(MonthSet::of([2, 7]))).0.fault_months,
            MonthSet::of([7])
        );
        // Only February in the history's good months: validation refuses, the
        // whole-year choice stands; and without a season it stands too.
        assert!(!choose(Some(MonthSet::of([2]))).0.fault_rule);
        assert_eq!(choose(None).0, whole_year.0);
        // With the fault-code rule switched off, no season brings it back.
        let off = TrainParams {
            fault_code_rule: false,
            ..TrainParams::default()
        };
        let kept = with_seasonal_rule(&validation, &off, &rules, Some(whole_year.clone()), || {
            Some(MonthSet::of([7]))
        });
        assert_eq!(kept.map(|c| c.0), Some(whole_year.0));
        // A chosen whole-year rule stands, and the season is not even counted.
        let mut with_rule = whole_year.clone();
        with_rule.0.fault_rule = true;
        let kept = with_seasonal_rule(&validation, &p, &rules, Some(with_rule.clone()), || {
            unreachable!("the season is counted only without a whole-year rule")
        });
        assert_eq!(kept.map(|c| c.0), Some(with_rule.0));
    }
}
