//! The replay: the history through the live [`Scorer`] and the fault-code baseline,
//! message by message, keeping flag episodes, row-level risk histograms and the risk
//! series the charts draw.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use domain::{FaultState, Message, ProfileSet, Severity};

use super::charts;
use super::metrics::{risk_bin, RiskHistogram};
use super::{FailureMap, Horizons, BASELINE_WINDOW_MS};
use crate::Scorer;

/// Flag episode tracking of one (device, component) for one scorer.
#[derive(Clone, Debug, Default)]
pub(super) struct Episodes {
    on: bool,
    pub(super) starts: Vec<i64>,
}

impl Episodes {
    fn observe(&mut self, ts: i64, flagged: bool) {
        if flagged && !self.on {
            self.starts.push(ts);
        }
        self.on = flagged;
    }
}

/// What the replay keeps of one device.
#[derive(Debug)]
pub(super) struct DeviceInfo {
    pub(super) device_type: String,
    pub(super) first: i64,
    pub(super) last: i64,
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

/// Everything the replay collects, and what it needs to collect it.
pub(super) struct Replay<'a> {
    profiles: &'a ProfileSet,
    failures: &'a FailureMap,
    horizons: &'a Horizons<'a>,
    /// Rows are counted only from this time (epoch ms) on.
    from: i64,
    scorer: Scorer,
    failing_devices: BTreeSet<&'a str>,
    /// Devices whose risk series are kept for the chart: the first failing ones...
    pub(super) failing_candidates: BTreeSet<String>,
    /// ...and the first healthy ones to report.
    pub(super) healthy_candidates: BTreeSet<String>,
    pub(super) devices: HashMap<String, DeviceInfo>,
    /// Flag episodes per (device, component) of the model...
    pub(super) model_eps: HashMap<(String, String), Episodes>,
    /// ...and of the baseline.
    pub(super) base_eps: HashMap<(String, String), Episodes>,
    /// Row-level risk histograms per (type, component).
    pub(super) hists: BTreeMap<(String, String), RiskHistogram>,
    pub(super) series: BTreeMap<(String, String), Series>,
    /// Model versions that scored each type.
    pub(super) versions: BTreeMap<String, BTreeSet<String>>,
    pub(super) max_ts: i64,
    pub(super) min_ts: i64,
    processed: u64,
}

impl<'a> Replay<'a> {
    pub(super) fn new(
        scorer: Scorer,
        profiles: &'a ProfileSet,
        failures: &'a FailureMap,
        horizons: &'a Horizons<'a>,
        from: i64,
    ) -> Replay<'a> {
        let failing_devices: BTreeSet<&str> = failures.keys().map(|(d, _)| d.as_str()).collect();
        let failing_candidates: BTreeSet<String> = failing_devices
            .iter()
            .take(SERIES_CANDIDATES)
            .map(|d| (*d).to_owned())
            .collect();
        Replay {
            profiles,
            failures,
            horizons,
            from,
            scorer,
            failing_devices,
            failing_candidates,
            healthy_candidates: BTreeSet::new(),
            devices: HashMap::new(),
            model_eps: HashMap::new(),
            base_eps: HashMap::new(),
            hists: BTreeMap::new(),
            series: BTreeMap::new(),
            versions: BTreeMap::new(),
            max_ts: i64::MIN,
            min_ts: i64::MAX,
            processed: 0,
        }
    }

    /// Scores one message with the model and the baseline.
    pub(super) fn observe(&mut self, msg: &Message) {
        let (device_type, ts) = match msg {
            Message::Telemetry(t) => (t.device.device_type.as_str(), t.ts.millis()),
            Message::Fault(f) => (f.device.device_type.as_str(), f.ts.millis()),
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => return,
        };
        let device_id = msg.device_id().as_str();
        self.max_ts = self.max_ts.max(ts);
        self.min_ts = self.min_ts.min(ts);
        if !self.devices.contains_key(device_id) {
            self.devices.insert(
                device_id.to_owned(),
                DeviceInfo {
                    device_type: device_type.to_owned(),
                    first: ts,
                    last: ts,
                    codes: HashMap::new(),
                },
            );
            if self.healthy_candidates.len() < SERIES_CANDIDATES
                && !self.failing_devices.contains(device_id)
            {
                self.healthy_candidates.insert(device_id.to_owned());
            }
        }
        let Some(dev) = self.devices.get_mut(device_id) else {
            return;
        };
        dev.first = dev.first.min(ts);
        dev.last = dev.last.max(ts);
        self.observe_model(msg, device_type, ts);
        if self.observe_baseline(msg, device_type, ts) {
            self.processed += 1;
            if self.processed.is_multiple_of(1024) {
                self.flush();
            }
        }
    }

    /// Moves the negative rows whose horizon has ended into the histograms.
    pub(super) fn flush(&mut self) {
        for ((t, _), h) in self.hists.iter_mut() {
            h.flush(self.max_ts, self.horizons.of(t));
        }
    }

    /// The model's flags, row-level risks and risk series.
    fn observe_model(&mut self, msg: &Message, device_type: &str, ts: i64) {
        let device_id = msg.device_id().as_str();
        let horizon = self.horizons.of(device_type);
        for p in self.scorer.observe(msg) {
            let key = (device_id.to_owned(), p.component.clone());
            self.model_eps
                .entry(key.clone())
                .or_default()
                .observe(ts, p.flagged);
            if !self
                .versions
                .get(device_type)
                .is_some_and(|v| v.contains(&p.model_version))
            {
                self.versions
                    .entry(device_type.to_owned())
                    .or_default()
                    .insert(p.model_version.clone());
            }
            // Rows are scores the risk stands behind: not a warming-up device's.
            if ts < self.from || p.warming_up {
                continue;
            }
            // Row label: a failure in (ts, ts + h]; rows while failed are excluded.
            let fails = self.failures.get(&key);
            let broken =
                fails.is_some_and(|l| l.iter().any(|f| ts >= f.0 && ts <= f.1.unwrap_or(i64::MAX)));
            let positive = fails.is_some_and(|l| l.iter().any(|f| f.0 > ts && f.0 <= ts + horizon));
            if let (false, Some(bin)) = (broken, risk_bin(p.risk)) {
                let hist = self
                    .hists
                    .entry((device_type.to_owned(), p.component.clone()))
                    .or_insert_with(RiskHistogram::new);
                if positive {
                    hist.pos[bin] += 1;
                } else {
                    hist.pending.push_back((ts, bin));
                }
            }
            if self.failing_candidates.contains(device_id)
                || self.healthy_candidates.contains(device_id)
            {
                let s = self.series.entry(key).or_default();
                s.threshold = p.threshold;
                let bucket = ts - ts.rem_euclid(SERIES_BUCKET_MS);
                let risk = if p.risk.is_finite() { p.risk } else { 0.0 };
                match s.points.last_mut() {
                    Some(last) if last.0 == bucket => last.1 = last.1.max(risk),
                    _ => s.points.push((bucket, risk)),
                }
            }
        }
    }

    /// The baseline's flags: the catalogue rules on the device's raised codes of the
    /// last [`BASELINE_WINDOW_MS`]. `false` when the type has no profile.
    fn observe_baseline(&mut self, msg: &Message, device_type: &str, ts: i64) -> bool {
        let profiles = self.profiles;
        let Some(profile) = profiles.get(device_type) else {
            return false;
        };
        let device_id = msg.device_id().as_str();
        let Some(dev) = self.devices.get_mut(device_id) else {
            return false;
        };
        if let Message::Fault(f) = msg {
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
            match self.base_eps.get_mut(&key) {
                Some(e) => e.observe(ts, flagged),
                None if flagged => self.base_eps.entry(key).or_default().observe(ts, true),
                None => {}
            }
        }
        true
    }
}

/// Up to 3 failing devices (their failed component) and 3 healthy ones (their
/// component with the highest peak risk), with failure times.
pub(super) fn pick_series(
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
