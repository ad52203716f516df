//! Drift watch: the distribution of each feature the live scorer computes, against the
//! training data of the model in use.
//!
//! * At training time, [`DriftBaseline::from_rows`] summarises each feature of the
//!   training rows: decile bin edges (duplicates merged, so a feature that is mostly 0
//!   has fewer bins), the share of rows in each bin and of rows where the feature was
//!   missing (`NaN`), and count, mean and standard deviation. The artefact stores it as
//!   `drift_baseline`; an artefact written before has none, and its drift is reported
//!   as `no_baseline`.
//! * At run time, a [`DriftMonitor`] counts the feature vectors the scorer computes
//!   into the same bins, per device type, in windows of event time
//!   ([`DriftSettings::window_ms`], default one day): the current window and the one
//!   before it, so a report always covers between one and two windows. Memory is
//!   fixed: (bins + 2) counters per feature and type.
//! * The statistic is the population stability index,
//!   `PSI = sum over bins of (a - e) * ln(a / e)` with `e` the training share and `a`
//!   the window's share of a bin (both floored at 0.0001 so an empty bin stays finite).
//!   Below [`WATCH_PSI`] (0.1) a feature is `ok`, from [`DRIFT_PSI`] (0.25) on it is
//!   `drift`, in between `watch` (the usual credit-scoring convention). Fewer than
//!   [`DriftSettings::min_samples`] vectors in the window: `insufficient_data`.
//!
//! A model's status is its worst feature's, leaving out the features that move by
//! construction ([`STATUS_EXEMPT`]: a device's age and message count grow with time
//! and restart with the feature state).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use domain::Timestamp;
use prometheus::{GaugeVec, Opts};
use serde::{Deserialize, Serialize};

use crate::artifact::ModelArtifact;

/// PSI at or above which a feature is `watch`.
pub const WATCH_PSI: f64 = 0.1;
/// PSI at or above which a feature is `drift`.
pub const DRIFT_PSI: f64 = 0.25;
/// Quantile bins per feature before duplicate edges merge.
pub const BINS: usize = 10;
/// Shares are floored at this before the PSI's logarithm.
const MIN_SHARE: f64 = 1e-4;
/// Training rows a baseline is computed from at most (evenly spaced).
const MAX_BASELINE_ROWS: usize = 50_000;
/// Features reported but left out of a model's status: they drift by construction.
pub const STATUS_EXEMPT: [&str; 2] = ["device.age_days", "device.messages_log1p"];

/// The training data summary of a model's features, in the artefact's feature order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftBaseline {
    /// Training rows summarised.
    pub rows: u64,
    /// One entry per feature of `feature_schema`, in order.
    pub features: Vec<FeatureBaseline>,
}

/// One feature's training distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureBaseline {
    /// Strictly increasing bin edges: bin 0 is below `edges[0]`, bin `i` is
    /// `[edges[i-1], edges[i])`, the last finite bin is at or above the last edge.
    pub edges: Vec<f64>,
    /// Share of training rows per bin: `edges.len() + 1` finite bins, then missing.
    pub shares: Vec<f64>,
    /// Rows where the feature was finite.
    pub count: u64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Standard deviation of the finite values.
    pub std: f64,
}

impl FeatureBaseline {
    /// The bin of a value: finite bins by the edges, the last bin for missing.
    fn bin(&self, x: f64) -> usize {
        if x.is_finite() {
            self.edges.partition_point(|&e| e <= x)
        } else {
            self.edges.len() + 1
        }
    }

    fn bins(&self) -> usize {
        self.edges.len() + 2
    }
}

impl DriftBaseline {
    /// Summarises training rows (each `d` features, in schema order); at most 50,000
    /// evenly spaced rows are read.
    pub fn from_rows<'a>(d: usize, rows: impl ExactSizeIterator<Item = &'a [f32]>) -> Self {
        let step = rows.len().div_ceil(MAX_BASELINE_ROWS).max(1);
        let mut cols: Vec<Vec<f32>> = vec![Vec::new(); d];
        let mut n = 0u64;
        for row in rows.step_by(step) {
            n += 1;
            for (col, &x) in cols.iter_mut().zip(row) {
                col.push(x);
            }
        }
        let features = cols
            .into_iter()
            .map(|col| FeatureBaseline::from_values(col.into_iter().map(f64::from).collect()))
            .collect();
        DriftBaseline { rows: n, features }
    }

    /// Checks that it fits a schema of `d` features and holds finite numbers.
    pub fn validate(&self, d: usize) -> std::result::Result<(), String> {
        if self.features.len() != d {
            return Err(format!(
                "drift_baseline has {} features for {d}",
                self.features.len()
            ));
        }
        for (i, f) in self.features.iter().enumerate() {
            let sorted = f.edges.windows(2).all(|w| w[0] < w[1]);
            if !sorted
                || f.shares.len() != f.bins()
                || f.edges.iter().chain(&f.shares).any(|x| !x.is_finite())
            {
                return Err(format!("drift_baseline feature {i} is malformed"));
            }
        }
        Ok(())
    }
}

impl FeatureBaseline {
    fn from_values(values: Vec<f64>) -> FeatureBaseline {
        let total = values.len();
        let mut finite: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        finite.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::with_capacity(BINS - 1);
        if !finite.is_empty() {
            for k in 1..BINS {
                let rank = (finite.len() * k).div_ceil(BINS).clamp(1, finite.len());
                let e = finite[rank - 1];
                if edges.last().is_none_or(|&last| e > last) {
                    edges.push(e);
                }
            }
        }
        let mut base = FeatureBaseline {
            edges,
            shares: Vec::new(),
            count: finite.len() as u64,
            mean: 0.0,
            std: 0.0,
        };
        let mut counts = vec![0u64; base.bins()];
        for &x in &finite {
            counts[base.bin(x)] += 1;
        }
        counts[base.bins() - 1] = (total - finite.len()) as u64;
        base.shares = counts
            .iter()
            .map(|&c| {
                if total > 0 {
                    c as f64 / total as f64
                } else {
                    0.0
                }
            })
            .collect();
        if !finite.is_empty() {
            let m = finite.iter().sum::<f64>() / finite.len() as f64;
            let var = finite.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / finite.len() as f64;
            base.mean = m;
            base.std = var.sqrt();
        }
        base
    }
}

/// The population stability index of observed bin `counts` against expected `shares`.
pub fn psi(shares: &[f64], counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    shares
        .iter()
        .zip(counts)
        .map(|(&e, &c)| {
            let e = e.max(MIN_SHARE);
            let a = (c as f64 / n as f64).max(MIN_SHARE);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// How a feature or a model stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatus {
    /// PSI below [`WATCH_PSI`].
    Ok,
    /// PSI from [`WATCH_PSI`] to below [`DRIFT_PSI`].
    Watch,
    /// PSI at or above [`DRIFT_PSI`].
    Drift,
    /// Too few samples in the window to judge.
    InsufficientData,
    /// The model's artefact has no training summary.
    NoBaseline,
}

impl DriftStatus {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Watch => "watch",
            Self::Drift => "drift",
            Self::InsufficientData => "insufficient_data",
            Self::NoBaseline => "no_baseline",
        }
    }

    /// The status of a PSI value.
    pub fn of_psi(psi: f64) -> DriftStatus {
        if psi >= DRIFT_PSI {
            Self::Drift
        } else if psi >= WATCH_PSI {
            Self::Watch
        } else {
            Self::Ok
        }
    }
}

/// Window length and the samples needed to judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriftSettings {
    /// Event time per window, in milliseconds (default one day).
    pub window_ms: i64,
    /// Feature vectors a window pair needs before its features are judged (default 500).
    pub min_samples: u64,
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self {
            window_ms: Timestamp::DAY_MS,
            min_samples: 500,
        }
    }
}

/// One feature's drift in a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// Population stability index of the window against the training data.
    pub psi: f64,
    /// Its status.
    pub status: DriftStatus,
    /// Values in the window.
    pub samples: u64,
    /// Mean of the window's finite values.
    pub mean: Option<f64>,
    /// Training mean.
    pub baseline_mean: f64,
}

/// One device type's drift in a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TypeDrift {
    /// Device type.
    pub device_type: String,
    /// Version of the model in use.
    pub model_version: String,
    /// The worst status of its features (see the module docs).
    pub status: DriftStatus,
    /// Event time of the window's first sample.
    pub window_from: Option<Timestamp>,
    /// Event time of the window's latest sample.
    pub window_to: Option<Timestamp>,
    /// Feature vectors in the window.
    pub samples: u64,
    /// Training rows of the baseline (0 without one).
    pub baseline_rows: u64,
    /// Every feature, worst (highest PSI) first; empty without a baseline.
    pub features: Vec<FeatureDrift>,
}

/// Counts of one window.
#[derive(Clone, Debug)]
struct Window {
    start: i64,
    first: i64,
    last: i64,
    samples: u64,
    /// Per feature, its bins' counts (offsets in `offsets`).
    counts: Vec<u64>,
    sums: Vec<f64>,
    finite: Vec<u64>,
}

impl Window {
    fn new(start: i64, cells: usize, d: usize) -> Window {
        Window {
            start,
            first: start,
            last: start,
            samples: 0,
            counts: vec![0; cells],
            sums: vec![0.0; d],
            finite: vec![0; d],
        }
    }
}

struct TypeWindow {
    model: Arc<ModelArtifact>,
    /// Start of each feature's bins in a window's `counts`.
    offsets: Vec<usize>,
    current: Option<Window>,
    previous: Option<Window>,
}

impl TypeWindow {
    fn new(model: Arc<ModelArtifact>) -> TypeWindow {
        let mut offsets = Vec::new();
        if let Some(b) = &model.drift_baseline {
            let mut at = 0;
            for f in &b.features {
                offsets.push(at);
                at += f.bins();
            }
            offsets.push(at);
        }
        TypeWindow {
            model,
            offsets,
            current: None,
            previous: None,
        }
    }

    fn cells(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }
}

/// Keeps the recent feature distribution of every device type's model in use and
/// compares it with the model's training data. Cheap to clone (shared state); the
/// scorer feeds it ([`crate::Scorer::with_drift`]) and the API reads [`Self::report`].
#[derive(Clone)]
pub struct DriftMonitor {
    inner: Arc<Mutex<Monitor>>,
}

struct Monitor {
    settings: DriftSettings,
    types: BTreeMap<String, TypeWindow>,
}

impl std::fmt::Debug for DriftMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftMonitor").finish_non_exhaustive()
    }
}

impl DriftMonitor {
    /// An empty monitor.
    pub fn new(settings: DriftSettings) -> DriftMonitor {
        DriftMonitor {
            inner: Arc::new(Mutex::new(Monitor {
                settings,
                types: BTreeMap::new(),
            })),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> DriftSettings {
        self.lock().settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Monitor> {
        // Counters only: a panic mid-update leaves them usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one feature vector (`raw`, in the model's schema order) that `model`
    /// scored at event time `ts`. A new model version for the type starts over.
    pub fn observe(&self, model: &Arc<ModelArtifact>, ts: Timestamp, raw: &[f64]) {
        let mut guard = self.lock();
        let window_ms = guard.settings.window_ms.max(1);
        let types = &mut guard.types;
        let t = match types.get_mut(&model.device_type) {
            Some(t) if Arc::ptr_eq(&t.model, model) || t.model.version == model.version => t,
            _ => {
                types.insert(
                    model.device_type.clone(),
                    TypeWindow::new(Arc::clone(model)),
                );
                match types.get_mut(&model.device_type) {
                    Some(t) => t,
                    None => return,
                }
            }
        };
        let ts = ts.millis();
        let (cells, d) = (t.cells(), t.offsets.len().saturating_sub(1));
        let roll = match &t.current {
            None => true,
            Some(w) => ts >= w.start.saturating_add(window_ms),
        };
        if roll {
            let previous = t.current.take();
            // A gap longer than a window leaves nothing recent to keep.
            t.previous = previous.filter(|w| ts < w.start.saturating_add(2 * window_ms));
            t.current = Some(Window::new(ts, cells, d));
        }
        let Some(w) = t.current.as_mut() else {
            return;
        };
        w.samples += 1;
        w.first = w.first.min(ts);
        w.last = w.last.max(ts);
        let Some(baseline) = &t.model.drift_baseline else {
            return;
        };
        for (i, (f, &x)) in baseline.features.iter().zip(raw).enumerate() {
            w.counts[t.offsets[i] + f.bin(x)] += 1;
            if x.is_finite() {
                w.sums[i] += x;
                w.finite[i] += 1;
            }
        }
    }

    /// The drift of every device type seen, by device type.
    pub fn report(&self) -> Vec<TypeDrift> {
        let guard = self.lock();
        let min_samples = guard.settings.min_samples;
        guard
            .types
            .iter()
            .map(|(device_type, t)| type_report(device_type, t, min_samples))
            .collect()
    }

    /// The drift gauges, read from the report at every scrape (register them into
    /// the process's metrics registry): `fixahead_model_drift_psi{device_type,feature}`
    /// for the features judged, `fixahead_model_drift_samples{device_type}` and
    /// `fixahead_model_drift_status{device_type,status}` (1 for the model's status).
    pub fn metrics(&self) -> DriftMetrics {
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            // The names, helps and labels are constants, so they are valid.
            GaugeVec::new(Opts::new(name, help), labels).expect("a valid metric name")
        };
        DriftMetrics {
            monitor: self.clone(),
            psi: gauges(
                "fixahead_model_drift_psi",
                "Population stability index of a feature's recent window against the model's training data (0.1 watch, 0.25 drift).",
                &["device_type", "feature"],
            ),
            samples: gauges(
                "fixahead_model_drift_samples",
                "Feature vectors in the drift window per device type.",
                &["device_type"],
            ),
            status: gauges(
                "fixahead_model_drift_status",
                "The model's drift status per device type (1 for the current one).",
                &["device_type", "status"],
            ),
            scrape: Arc::default(),
        }
    }
}

/// The drift watch's gauges ([`DriftMonitor::metrics`]): a collector that reads the
/// monitor's report when scraped.
#[derive(Clone)]
pub struct DriftMetrics {
    monitor: DriftMonitor,
    psi: GaugeVec,
    samples: GaugeVec,
    status: GaugeVec,
    /// One scrape at a time: each clears the gauges and sets them from a report.
    scrape: Arc<Mutex<()>>,
}

impl prometheus::core::Collector for DriftMetrics {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        [&self.psi, &self.samples, &self.status]
            .into_iter()
            .flat_map(|g| g.desc())
            .collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let _one = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        for g in [&self.psi, &self.samples, &self.status] {
            g.reset();
        }
        for t in self.monitor.report() {
            for f in &t.features {
                if f.status != DriftStatus::InsufficientData {
                    self.psi
                        .with_label_values(&[t.device_type.as_str(), f.feature.as_str()])
                        .set(f.psi);
                }
            }
            self.samples
                .with_label_values(&[t.device_type.as_str()])
                .set(t.samples as f64);
            self.status
                .with_label_values(&[t.device_type.as_str(), t.status.as_str()])
                .set(1.0);
        }
        [&self.psi, &self.samples, &self.status]
            .into_iter()
            .flat_map(|g| g.collect())
            .collect()
    }
}

fn type_report(device_type: &str, t: &TypeWindow, min_samples: u64) -> TypeDrift {
    let windows: Vec<&Window> = t.previous.iter().chain(t.current.iter()).collect();
    let samples: u64 = windows.iter().map(|w| w.samples).sum();
    let window_from = windows.iter().map(|w| w.first).min().map(Timestamp);
    let window_to = windows.iter().map(|w| w.last).max().map(Timestamp);
    let mut report = TypeDrift {
        device_type: device_type.to_owned(),
        model_version: t.model.version.clone(),
        status: DriftStatus::NoBaseline,
        window_from,
        window_to,
        samples,
        baseline_rows: 0,
        features: Vec::new(),
    };
    let Some(baseline) = &t.model.drift_baseline else {
        return report;
    };
    report.baseline_rows = baseline.rows;
    let enough = samples >= min_samples.max(1);
    let mut counts = Vec::new();
    for (i, f) in baseline.features.iter().enumerate() {
        let (lo, hi) = (t.offsets[i], t.offsets[i + 1]);
        counts.clear();
        counts.resize(hi - lo, 0u64);
        let (mut sum, mut finite) = (0.0, 0u64);
        for w in &windows {
            for (c, x) in counts.iter_mut().zip(&w.counts[lo..hi]) {
                *c += x;
            }
            sum += w.sums[i];
            finite += w.finite[i];
        }
        let value = psi(&f.shares, &counts);
        report.features.push(FeatureDrift {
            feature: t.model.feature_schema.get(i).cloned().unwrap_or_default(),
            psi: (value * 10_000.0).round() / 10_000.0,
            status: if enough {
                DriftStatus::of_psi(value)
            } else {
                DriftStatus::InsufficientData
            },
            samples,
            mean: (finite > 0).then(|| sum / finite as f64),
            baseline_mean: f.mean,
        });
    }
    report.features.sort_by(|a, b| {
        b.psi
            .total_cmp(&a.psi)
            .then_with(|| a.feature.cmp(&b.feature))
    });
    report.status = if !enough {
        DriftStatus::InsufficientData
    } else {
        report
            .features
            .iter()
            .filter(|f| !STATUS_EXEMPT.contains(&f.feature.as_str()))
            .map(|f| f.status)
            .max()
            .unwrap_or(DriftStatus::Ok)
    };
    report
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const DAY: i64 = Timestamp::DAY_MS;

    /// `n` rows of `d` features, feature `j` normal with mean `j + shift` and std 1,
    /// except the last, which is 0 in nine rows of ten and missing otherwise.
    fn rows(n: usize, d: usize, shift: f64, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Box-Muller: a standard normal from two uniforms.
        let mut normal = move || {
            let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        (0..n)
            .map(|k| {
                (0..d)
                    .map(|j| {
                        if j == d - 1 {
                            if k % 10 == 0 {
                                f32::NAN
                            } else {
                                0.0
                            }
                        } else {
                            (j as f64 + shift + normal()) as f32
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn model_with_baseline(version: &str) -> Arc<ModelArtifact> {
        let mut m = crate::tests::handmade(version, 1.0);
        let d = m.feature_schema.len();
        let train = rows(5_000, d, 0.0, 1);
        m.drift_baseline = Some(DriftBaseline::from_rows(
            d,
            train.iter().map(|r| r.as_slice()),
        ));
        Arc::new(m)
    }

    fn feed(monitor: &DriftMonitor, model: &Arc<ModelArtifact>, shift: f64, n: usize, t0: i64) {
        let d = model.feature_schema.len();
        for (k, row) in rows(n, d, shift, 2).iter().enumerate() {
            let raw: Vec<f64> = row.iter().map(|&x| f64::from(x)).collect();
            monitor.observe(model, Timestamp(t0 + k as i64 * 1000), &raw);
        }
    }

    #[test]
    fn a_baseline_has_decile_bins_merged_where_values_repeat_and_a_missing_share() {
        let m = model_with_baseline("v1");
        let b = m.drift_baseline.as_ref().unwrap();
        b.validate(m.feature_schema.len()).unwrap();
        let normal = &b.features[0];
        assert_eq!(normal.edges.len(), BINS - 1);
        assert!((normal.shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(
            normal.shares[..BINS].iter().all(|s| (s - 0.1).abs() < 0.01),
            "{:?}",
            normal.shares
        );
        let mostly_zero = b.features.last().unwrap();
        assert_eq!(mostly_zero.edges, vec![0.0]);
        assert_eq!(mostly_zero.shares, vec![0.0, 0.9, 0.1]);
    }

    #[test]
    fn the_same_distribution_is_ok_and_a_shifted_one_drifts() {
        let model = model_with_baseline("v1");
        let same = DriftMonitor::new(DriftSettings::default());
        feed(&same, &model, 0.0, 3_000, 0);
        let r = &same.report()[0];
        assert_eq!(r.status, DriftStatus::Ok, "{:?}", &r.features[..3]);
        assert!(r.features.iter().all(|f| f.psi < WATCH_PSI));
        assert_eq!(r.samples, 3_000);

        let shifted = DriftMonitor::new(DriftSettings::default());
        feed(&shifted, &model, 1.0, 3_000, 0);
        let r = &shifted.report()[0];
        assert_eq!(r.status, DriftStatus::Drift);
        let first = &r.features[0];
        assert!(first.psi >= DRIFT_PSI, "{first:?}");
        assert!(
            (first.mean.unwrap() - first.baseline_mean - 1.0).abs() < 0.1,
            "{first:?}"
        );
        // The feature that did not move (always 0 or missing) stays ok.
        let last = m_last(&model);
        let steady = r.features.iter().find(|f| f.feature == last).unwrap();
        assert_eq!(steady.status, DriftStatus::Ok, "{steady:?}");

        let text = scrape(&shifted);
        assert!(
            text.contains(&format!(
                "fixahead_model_drift_psi{{device_type=\"washer\",feature=\"{}\"}} {}",
                first.feature, first.psi
            )),
            "{text}"
        );
        assert!(
            text.contains("fixahead_model_drift_status{device_type=\"washer\",status=\"drift\"} 1")
        );
    }

    /// The monitor's metrics as a scrape of a registry holding them shows them.
    fn scrape(monitor: &DriftMonitor) -> String {
        let registry = prometheus::Registry::new();
        registry.register(Box::new(monitor.metrics())).unwrap();
        prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap()
    }

    fn m_last(model: &ModelArtifact) -> String {
        model.feature_schema.last().cloned().unwrap()
    }

    #[test]
    fn too_few_samples_and_no_baseline_are_reported_not_judged() {
        let model = model_with_baseline("v1");
        let monitor = DriftMonitor::new(DriftSettings {
            window_ms: DAY,
            min_samples: 100,
        });
        feed(&monitor, &model, 3.0, 99, 0);
        let r = &monitor.report()[0];
        assert_eq!(r.status, DriftStatus::InsufficientData);
        assert!(r
            .features
            .iter()
            .all(|f| f.status == DriftStatus::InsufficientData));
        let text = scrape(&monitor);
        assert!(!text.contains("fixahead_model_drift_psi{"), "{text}");

        let old = Arc::new(crate::tests::handmade("old", 1.0));
        let monitor = DriftMonitor::new(DriftSettings::default());
        feed(&monitor, &old, 3.0, 1_000, 0);
        let r = &monitor.report()[0];
        assert_eq!(
            (r.status, r.samples, r.features.len()),
            (DriftStatus::NoBaseline, 1_000, 0)
        );
    }

    #[test]
    fn windows_roll_over_in_event_time_and_a_new_version_starts_over() {
        let model = model_with_baseline("v1");
        let monitor = DriftMonitor::new(DriftSettings {
            window_ms: DAY,
            min_samples: 100,
        });
        // A shifted day, then two normal days: the shifted one has left the report.
        feed(&monitor, &model, 2.0, 1_000, 0);
        assert_eq!(monitor.report()[0].status, DriftStatus::Drift);
        feed(&monitor, &model, 0.0, 1_000, DAY);
        feed(&monitor, &model, 0.0, 1_000, 2 * DAY);
        let r = &monitor.report()[0];
        assert_eq!((r.status, r.samples), (DriftStatus::Ok, 2_000));
        assert_eq!(r.window_from, Some(Timestamp(DAY)));

        let v2 = model_with_baseline("v2");
        feed(&monitor, &v2, 0.0, 10, 2 * DAY);
        let r = &monitor.report()[0];
        assert_eq!((r.model_version.as_str(), r.samples), ("v2", 10));
    }
}
