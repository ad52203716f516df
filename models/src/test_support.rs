//! What the crate's test modules share: messages and a hand-made artefact.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use domain::{DeviceId, FaultMessage, FaultState, Message, ProfileSet, Telemetry, Timestamp};

use crate::artifact::{
    CalibrationSet, ComponentModel, Family, ModelArtifact, ThresholdRule, TrainingSummary,
    FORMAT_VERSION,
};
use crate::{FeatureSchema, TrainParams};

/// The event time hand-made artefacts were "trained" at, and most tests start at.
pub(crate) const T0: i64 = 1_790_000_000_000;

/// The component fields format 2 added (`family`, `trees` and the calibration): a file
/// without them was written by format 1, or by format 2 before any was set.
pub(crate) const FORMAT_2_FIELDS: [&str; 5] = [
    "family",
    "trees",
    "calibration_a",
    "calibration_b",
    "calibration_set",
];

/// A telemetry message of a `device_type` device `id` at `ts_ms` with `readings`.
pub(crate) fn telemetry(
    device_type: &str,
    id: &str,
    ts_ms: i64,
    readings: &[(&str, f64)],
) -> Message {
    Message::Telemetry(Telemetry {
        device_id: DeviceId::parse(id).unwrap(),
        ts: Timestamp(ts_ms),
        seq: 1,
        device: domain::DeviceInfo {
            device_type: device_type.into(),
            model: "TEST-1".into(),
            fw: None,
            batch: None,
            region: None,
        },
        readings: readings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), *value))
            .collect(),
    })
}

/// A fault message of a `device_type` device `id` at `ts_ms`: `code` raised or cleared.
pub(crate) fn fault(
    device_type: &str,
    id: &str,
    ts_ms: i64,
    code: &str,
    state: FaultState,
) -> Message {
    // The same device, time and header as a reading of it.
    let Message::Telemetry(t) = telemetry(device_type, id, ts_ms, &[]) else {
        unreachable!("telemetry() makes telemetry")
    };
    Message::Fault(FaultMessage {
        device_id: t.device_id,
        ts: t.ts,
        seq: t.seq,
        device: t.device,
        code: code.into(),
        state,
    })
}

/// A hand-made logistic artefact of a built-in `device_type` (no version yet): only
/// `component` is trained, on the standardised `feature` alone with `weight` and
/// intercept -4 (threshold 0.5, 3 consecutive scores, no hold, release or expiry);
/// `feature` has the training mean and standard deviation `normal`, every other
/// feature mean 0 and deviation 1. The other components are skipped (`test`).
pub(crate) fn handmade(
    device_type: &str,
    feature: &str,
    component: &str,
    normal: (f64, f64),
    weight: f64,
) -> ModelArtifact {
    let profiles = ProfileSet::builtin();
    let schema = FeatureSchema::for_profile(profiles.get(device_type).unwrap());
    let n = schema.len();
    let i = schema.names().iter().position(|f| f == feature).unwrap();
    let mut mean = vec![0.0; n];
    let mut std = vec![1.0; n];
    (mean[i], std[i]) = normal;
    let mut weights = vec![0.0; n];
    weights[i] = weight;
    let components = schema
        .components()
        .iter()
        .map(|c| ComponentModel {
            component: c.clone(),
            weights: if c == component {
                weights.clone()
            } else {
                Vec::new()
            },
            intercept: -4.0,
            family: Family::Logistic,
            calibration_a: 1.0,
            calibration_b: 0.0,
            calibration_set: CalibrationSet::None,
            candidates: Vec::new(),
            threshold: 0.5,
            persistence: 3,
            hold_ms: 0,
            release_ms: 0,
            expire_ms: 0,
            fault_rule: None,
            threshold_rule: ThresholdRule::EventTarget,
            metrics: None,
            skipped_reason: (c != component).then(|| "test".to_owned()),
            lead_time: Vec::new(),
        })
        .collect();
    ModelArtifact {
        format_version: FORMAT_VERSION,
        version: String::new(),
        device_type: device_type.into(),
        created_at: Timestamp(T0).to_rfc3339(),
        horizon_ms: 7 * Timestamp::DAY_MS,
        feature_schema: schema.names().to_vec(),
        feature_mean: mean.clone(),
        feature_std: std,
        feature_p05: mean.clone(),
        feature_p95: mean,
        components,
        drift_baseline: None,
        training_summary: TrainingSummary {
            devices: 0,
            rows: 0,
            train_rows: 0,
            validation_rows: 0,
            positives: BTreeMap::new(),
            time_range: (Timestamp(T0), Timestamp(T0)),
            split_ts: Timestamp(T0),
            history_lines: 0,
            rejected_lines: 0,
            rejected_by_reason: BTreeMap::new(),
            rejected_events: 0,
            params: TrainParams::default(),
            labels: Default::default(),
        },
    }
}

/// A synthetic washer's drain-pump wear at `t` and its drain time then: 12 s plus 25 s
/// times the squared wear, plus `noise` (see [`drain_wear`]).
pub(crate) fn drain_time(failures: &[i64], t: i64, noise: f64) -> (f64, f64) {
    let wear = drain_wear(failures, t);
    (wear, 12.0 + 25.0 * wear * wear + noise)
}

/// How worn a synthetic washer's drain pump is at `t`, given its failure times: 0 -> 1
/// over the 10 days before each failure, until a day after it (its repair).
fn drain_wear(failures: &[i64], t: i64) -> f64 {
    let day = Timestamp::DAY_MS;
    let mut wear = 0.0f64;
    for &f in failures {
        if t > f - 10 * day && t <= f + day {
            wear = (1.0 - (f - t) as f64 / (10 * day) as f64).clamp(0.0, 1.0);
        }
    }
    wear
}

/// Appends to `events` (`events.jsonl`) a drain-pump failure (mode `clog`) of washer
/// `id` at `failure_ms`, as RFC 3339, and its repair a day later, as epoch ms, with
/// `repair_mode` when given.
pub(crate) fn drain_pump_failure(
    events: &mut String,
    id: &str,
    failure_ms: i64,
    repair_mode: Option<&str>,
) {
    let _ = writeln!(
        events,
        r#"{{"device_id":"{id}","ts":"{}","event":"failure","component":"drain_pump","mode":"clog"}}"#,
        Timestamp(failure_ms)
    );
    let mode = repair_mode.map_or(String::new(), |m| format!(r#","mode":"{m}""#));
    let _ = writeln!(
        events,
        r#"{{"device_id":"{id}","ts":{},"event":"repair","component":"drain_pump"{mode}}}"#,
        failure_ms + Timestamp::DAY_MS
    );
}

/// Appends to `lines` (`telemetry.jsonl`) a raised E21 (drain timeout) of washer `id`.
pub(crate) fn e21_raised(lines: &mut String, id: &str, ts_ms: i64, seq: u64) {
    let _ = writeln!(
        lines,
        r#"{{"device_id":"{id}","msg":"fault","ts":{ts_ms},"seq":{seq},"type":"washer","model":"WM-500","code":"E21","state":"raised"}}"#,
    );
}
