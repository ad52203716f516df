//! Event-level counting of one (device, component): which flags were followed by a
//! failure, which failures were caught, and the episode records of both (see the module
//! docs of [`crate::eval`] for the rules).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::replay::{Episodes, Replay};
use super::{FailureMap, Horizons, DAY_MS};
use crate::features::WARM_UP_MS;

/// One device-month, for false-alarm rates.
const DEVICE_MONTH_MS: f64 = 30.0 * DAY_MS as f64;

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

/// Raw event-level counts; add them up, then turn them into
/// [`Metrics`](super::Metrics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventCounts {
    /// What became of the flag episodes.
    pub flags: FlagCounts,
    /// The failures, and which of them were caught.
    pub failures: FailureCounts,
    /// Lead time of every caught failure (ms).
    pub lead_times_ms: Vec<i64>,
}

/// Flag episodes (rising edges) by what became of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlagCounts {
    /// Judged: not started while the component was failed, and not censored.
    pub judged: u64,
    /// Judged flags followed by a failure within the horizon.
    pub followed: u64,
    /// Started while the component was failed (not judged).
    pub while_failed: u64,
    /// Not followed by a failure before the history's end, whose horizon runs past it
    /// (not judged).
    pub censored: u64,
}

/// Failures, and which of them a flag caught.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureCounts {
    /// Every failure.
    pub all: u64,
    /// Those whose mode is not `sudden`.
    pub with_precursor: u64,
    /// Those before the device's warm-up completed.
    pub before_warm_up: u64,
    /// Those with a flag episode started within the horizon before them.
    pub caught: u64,
    /// Caught failures whose mode is not `sudden`.
    pub caught_with_precursor: u64,
}

impl EventCounts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &EventCounts) {
        let (f, o) = (&mut self.flags, &other.flags);
        f.judged += o.judged;
        f.followed += o.followed;
        f.while_failed += o.while_failed;
        f.censored += o.censored;
        let (f, o) = (&mut self.failures, &other.failures);
        f.all += o.all;
        f.with_precursor += o.with_precursor;
        f.before_warm_up += o.before_warm_up;
        f.caught += o.caught;
        f.caught_with_precursor += o.caught_with_precursor;
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
    c.flags.while_failed = (flag_starts.len() - starts.len()) as u64;
    c.flags.censored = starts
        .iter()
        .filter(|(_, o)| *o == FlagOutcome::Censored)
        .count() as u64;
    c.flags.judged = starts.len() as u64 - c.flags.censored;
    c.flags.followed = starts
        .iter()
        .filter(|(_, o)| matches!(o, FlagOutcome::Followed(_)))
        .count() as u64;
    let starts: Vec<i64> = starts.into_iter().map(|(s, _)| s).collect();
    for f in failures {
        c.failures.all += 1;
        c.failures.with_precursor += u64::from(!f.sudden);
        c.failures.before_warm_up += u64::from(f.before_warm_up);
        if let Some(s) = catching_flag(&starts, f, horizon_ms) {
            c.failures.caught += 1;
            c.failures.caught_with_precursor += u64::from(!f.sudden);
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
    /// The device.
    pub device_id: String,
    /// Its type.
    pub device_type: String,
    /// The component flagged, or whose failure was missed.
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
pub(super) fn episode_records(
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

/// Every covered (device, component)'s counts, summed per (type, component), for the
/// model and the baseline.
pub(super) struct Counted {
    /// The model's counts per (type, component).
    pub(super) model: BTreeMap<(String, String), EventCounts>,
    /// The baseline's counts per (type, component).
    pub(super) baseline: BTreeMap<(String, String), EventCounts>,
    /// Per type: devices, observed device-months, judged device-months.
    pub(super) type_devices: BTreeMap<String, (u64, f64, f64)>,
    /// Every flag of both and every failure each missed, by device and component.
    pub(super) episodes: Vec<EpisodeRecord>,
}

/// Counts the flags and failures of every device of a `covered` type that reported from
/// `from` on, for each of its covered components (see the module docs for the rules).
pub(super) fn count_events(
    replay: &Replay<'_>,
    covered: &BTreeMap<String, BTreeSet<String>>,
    failures: &FailureMap,
    horizons: &Horizons<'_>,
    from: i64,
) -> Counted {
    let max_ts = replay.max_ts;
    let mut out = Counted {
        model: BTreeMap::new(),
        baseline: BTreeMap::new(),
        type_devices: BTreeMap::new(),
        episodes: Vec::new(),
    };
    let mut device_ids: Vec<&String> = replay.devices.keys().collect();
    device_ids.sort();
    for id in device_ids {
        let Some(dev) = replay.devices.get(id) else {
            continue;
        };
        let Some(comps) = covered.get(&dev.device_type) else {
            continue;
        };
        if dev.last < from {
            continue;
        }
        let horizon = horizons.of(&dev.device_type);
        let td = out.type_devices.entry(dev.device_type.clone()).or_default();
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
            let m = replay
                .model_eps
                .get(&key)
                .map(in_period)
                .unwrap_or_default();
            let m = &m[..];
            let b = replay.base_eps.get(&key).map(in_period).unwrap_or_default();
            let b = &b[..];
            let names = (id.as_str(), dev.device_type.as_str(), comp.as_str());
            out.episodes
                .extend(episode_records("model", names, m, &fails, horizon, max_ts));
            out.episodes.extend(episode_records(
                "baseline", names, b, &fails, horizon, max_ts,
            ));
            out.model
                .entry(tc.clone())
                .or_default()
                .add(&score_events(m, &fails, horizon, max_ts));
            out.baseline
                .entry(tc)
                .or_default()
                .add(&score_events(b, &fails, horizon, max_ts));
        }
    }
    out
}
