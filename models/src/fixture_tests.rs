//! The artefact format fixture: `testdata/artifact_v3.json` was written by the code
//! before the models crate was split into modules (issue 18), from the hand-made
//! artefact of [`write_fixture`]. Every build must load it, score it to the very same
//! risks, and write it back byte for byte: the artefact JSON is a public contract.
//!
//! The fixture's device type is `kettle` (`testdata/kettle.toml`): one channel and four
//! components, a 33-feature schema, so the file stays small. Its components cover the
//! shapes training writes: a trained logistic model with Platt calibration, a seasonal
//! fault-code rule and lead-time bins (`element`); a trained bagged-trees model chosen on
//! the training rows (`pump`); a component skipped for too few positives (`valve`); and
//! one skipped for no signal after the bagged trees were fitted and calibrated (`door`).

use std::path::PathBuf;

use domain::{
    DeviceId, FaultMessage, FaultState, Message, Profile, ProfileSet, Telemetry, Timestamp,
};

use crate::artifact::{self, ModelArtifact};
use crate::{FeatureSchema, ModelRegistry, Scorer};

/// 2026-07-01T00:00:00Z: the replay runs in July, a month of the element's fault rule.
const JULY: i64 = 1_782_864_000_000;
const HOUR: i64 = Timestamp::HOUR_MS;
const DAY: i64 = Timestamp::DAY_MS;

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/testdata/artifact_v3.json")
}

fn kettle() -> Profile {
    Profile::from_toml("kettle.toml", include_str!("testdata/kettle.toml")).unwrap()
}

/// The raw feature vector every component is scored on: a device a little above its
/// normal, one unknown feature (`NaN`) and a recent major element code, which fires the
/// element's fault rule.
fn fixed_raw(schema: &FeatureSchema) -> Vec<f64> {
    schema
        .names()
        .iter()
        .enumerate()
        .map(|(i, name)| match name.as_str() {
            "temp_c.ewma_slow" => f64::NAN,
            "temp_c.std_slow" => 0.9,
            "temp_c.trend" => 0.7,
            "temp_c.shift" => 0.5,
            "temp_c.shift_z" => 1.6,
            "fault.element.count_7d" => 1.0,
            "fault.element.major_count_7d" => 0.9,
            "fault.element.hours_since" => 12.0,
            "fault.pump.major_count_7d" => 0.2,
            "device.age_days" => 150.5,
            "device.messages_log1p" => 5.9,
            n if n.starts_with("temp_c.") => 93.1 + 0.05 * i as f64,
            n if n.ends_with("hours_since") || n.ends_with("hours_since_repair") => 720.0,
            _ => 0.01 * i as f64,
        })
        .collect()
}

/// A short history of one kettle in July: a reading every 6 hours for 10 days, the
/// temperature climbing over the last 4; a major element code while it warms up (day
/// 2.5) and again on day 9, a critical pump code on day 8.25.
fn replay_messages() -> Vec<Message> {
    let id = DeviceId::parse("kt-1").unwrap();
    let fault = |ts: i64, seq: u64, code: &str| {
        Message::Fault(FaultMessage {
            device_id: id.clone(),
            ts: Timestamp(ts + 1000),
            seq,
            device_type: "kettle".into(),
            model: "KT-1".into(),
            fw: None,
            batch: None,
            region: None,
            code: code.into(),
            state: FaultState::Raised,
        })
    };
    let mut out = Vec::new();
    for k in 0..40i64 {
        let ts = JULY + k * 6 * HOUR;
        let climb = if k >= 24 { (k - 24) as f64 * 1.5 } else { 0.0 };
        let wobble = [0.0, 0.4, -0.3, 0.2][(k % 4) as usize];
        out.push(Message::Telemetry(Telemetry {
            device_id: id.clone(),
            ts: Timestamp(ts),
            seq: k as u64 + 1,
            device_type: "kettle".into(),
            model: "KT-1".into(),
            fw: None,
            batch: None,
            region: None,
            readings: vec![("temp_c".into(), 92.0 + wobble + climb)],
        }));
        match k {
            10 | 36 => out.push(fault(ts, 1000 + k as u64, "K1")),
            33 => out.push(fault(ts, 1000 + k as u64, "K2")),
            _ => {}
        }
    }
    out
}

/// `(component, risk, flagged)` of every prediction of the replay.
fn replay(artifact: &ModelArtifact) -> Vec<(String, f64, bool)> {
    let mut profiles = ProfileSet::builtin();
    profiles.insert(kettle());
    let mut scorer = Scorer::new(ModelRegistry::from_artifacts([artifact.clone()]), profiles);
    replay_messages()
        .iter()
        .flat_map(|m| scorer.observe(m))
        .map(|p| (p.component, p.risk, p.flagged))
        .collect()
}

/// One component scored: `(name, is_trained, logit, risk, lead_time_days, the fault
/// rule fires)`.
type Scored<S> = (S, bool, f64, f64, Option<f64>, bool);

/// Per component of the fixture: `(name, is_trained, logit, risk, lead_time_days, the
/// fault rule fires)` on [`fixed_raw`], on the artefact's own standardisation.
fn score_fixed(a: &ModelArtifact) -> Vec<Scored<String>> {
    let schema = FeatureSchema::for_profile(&kettle());
    let raw = fixed_raw(&schema);
    let mut z = vec![0.0; raw.len()];
    a.standardize(&raw, &mut z);
    let mut contrib = Vec::new();
    a.components
        .iter()
        .map(|c| {
            let risk = c.risk(&z);
            assert_eq!(
                c.risk_and_contributions(&z, &mut contrib).to_bits(),
                risk.to_bits(),
                "{}: the explaining scorer gives the same risk",
                c.component
            );
            (
                c.component.clone(),
                c.is_trained(),
                c.logit(&z),
                risk,
                c.lead_time_days(risk),
                c.fault_rule.is_some_and(|r| r.fires_at(JULY, &raw)),
            )
        })
        .collect()
}

/// The fixture's numbers as the code that wrote it computed them.
const EXPECTED_FIXED: &[Scored<&str>] = &[
    (
        "element",
        true,
        2.8414656926655915,
        0.8923761864657048,
        Some(5.25),
        true,
    ),
    (
        "pump",
        true,
        -1.5603426500751794,
        0.1398691826092014,
        None,
        false,
    ),
    ("valve", false, 0.0, 0.5, None, false),
    (
        "door",
        false,
        -4.192430164690206,
        0.01636330831964726,
        None,
        false,
    ),
];
/// Every prediction of [`replay`]: the element's fault rule flags the warming-up
/// device (its risk is reported only while the rule holds a flag), then the risk.
const EXPECTED_REPLAY: &[(&str, f64, bool)] = &[
    ("element", 0.7893475091076843, true),
    ("element", 0.7937520803195793, true),
    ("element", 0.7542682927267418, true),
    ("element", 0.7822114196705257, true),
    ("element", 0.6721985125428074, true),
    ("element", 0.6792536331190053, true),
    ("element", 0.6336628098289135, true),
    ("element", 0.6694092413482221, true),
    ("element", 0.547787130225146, true),
    ("element", 0.5579578251497492, true),
    ("element", 0.5127407643092027, true),
    ("element", 0.5529538971747958, true),
    ("element", 0.4340173855774166, true),
    ("element", 0.4465111849685274, true),
    ("element", 0.40633072432319267, true),
    ("element", 0.5834138385324826, true),
    ("element", 0.667073525821755, true),
    ("element", 0.7586567217147044, true),
    ("element", 0.8241592603569631, true),
    ("pump", 0.03035258336962514, false),
    ("element", 0.8840932739825551, true),
    ("pump", 0.03035258336962514, false),
    ("element", 0.9158897032176302, true),
    ("pump", 0.03035258336962514, false),
    ("element", 0.9472079999494687, true),
    ("pump", 0.03035258336962514, false),
    ("element", 0.9650172006885479, true),
    ("pump", 0.03035258336962514, false),
    ("element", 0.9786627369640731, true),
    ("pump", 0.03035258336962514, false),
    ("element", 0.9786626676716343, true),
    ("pump", 0.1398691826092014, false),
    ("element", 0.9849951324589844, true),
    ("pump", 0.3937618806218623, false),
    ("element", 0.9907972419245316, true),
    ("pump", 0.3937618806218623, false),
    ("element", 0.9939102932887653, true),
    ("pump", 0.3937618806218623, true),
    ("element", 0.9999286202574996, true),
    ("pump", 0.3937618806218623, true),
    ("element", 0.9999488101537057, true),
    ("pump", 0.3937618806218623, true),
    ("element", 0.9999573341985484, true),
    ("pump", 0.3937618806218623, true),
    ("element", 0.9999690367747346, true),
    ("pump", 0.3937618806218623, true),
];

#[test]
fn an_artifact_written_before_the_split_loads_scores_the_same_and_writes_back_byte_identical() {
    let path = fixture_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let a = artifact::load(&path).unwrap();
    a.validate().unwrap();
    assert!(a.fits(&kettle()), "the fixture fits its profile's schema");
    assert_eq!(
        a.version,
        format!("kettle-20260701T000000Z-{}", a.content_hash())
    );
    // Byte for byte what `artifact::save` writes.
    let written = String::from_utf8(serde_json::to_vec_pretty(&a).unwrap()).unwrap();
    assert!(
        written == text,
        "the fixture does not write back byte-identical"
    );
    let dir = tempfile::tempdir().unwrap();
    let saved = artifact::save(&a, dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(saved).unwrap(), text);

    let fixed = score_fixed(&a);
    let replayed = replay(&a);
    let report = format!("fixed: {fixed:#?}\nreplay: {replayed:?}");
    assert_eq!(fixed.len(), EXPECTED_FIXED.len(), "{report}");
    for (got, want) in fixed.iter().zip(EXPECTED_FIXED) {
        assert_eq!(got.0, want.0, "{report}");
        assert_eq!(got.1, want.1, "{}: is_trained; {report}", want.0);
        assert_eq!(
            got.2.to_bits(),
            want.2.to_bits(),
            "{}: logit; {report}",
            want.0
        );
        assert_eq!(
            got.3.to_bits(),
            want.3.to_bits(),
            "{}: risk; {report}",
            want.0
        );
        assert_eq!(got.4, want.4, "{}: lead time; {report}", want.0);
        assert_eq!(got.5, want.5, "{}: fault rule; {report}", want.0);
    }
    assert_eq!(replayed.len(), EXPECTED_REPLAY.len(), "{report}");
    for (k, (got, want)) in replayed.iter().zip(EXPECTED_REPLAY).enumerate() {
        assert_eq!(got.0, want.0, "prediction {k}; {report}");
        assert_eq!(
            got.1.to_bits(),
            want.1.to_bits(),
            "prediction {k}: risk; {report}"
        );
        assert_eq!(got.2, want.2, "prediction {k}: flagged; {report}");
    }
}

/// Writes `testdata/artifact_v3.json` (run once, by hand, with the code whose format
/// the fixture records: `cargo test -p models write_fixture -- --ignored`).
#[test]
#[ignore = "writes the fixture; the fixture must come from the code before the split"]
fn write_fixture() {
    use std::collections::BTreeMap;

    use crate::artifact::{
        lead_time_bins, CandidateMetrics, ComponentMetrics, ComponentModel, EventMetrics,
        FaultRule, LabelSummary, MonthSet, TrainingSummary, FORMAT_VERSION,
    };
    use crate::trees::{Node, Tree};
    use crate::TrainParams;

    let schema = FeatureSchema::for_profile(&kettle());
    let names = schema.names().to_vec();
    let n = names.len();
    let at = |name: &str| names.iter().position(|x| x == name).unwrap();
    let p = TrainParams {
        trees: 30,
        alert_budget: 1.5,
        test_from_ms: Some(JULY - 30 * DAY),
        ..TrainParams::default()
    };
    // Standardisation: channel features near 92 degC, fault counts near 0, hours near
    // the cap, a device of about 200 days.
    let mut mean = vec![0.0; n];
    let mut std = vec![1.0; n];
    for (i, name) in names.iter().enumerate() {
        let (m, s) = if name.starts_with("temp_c.") {
            match name.as_str() {
                "temp_c.std_slow" => (0.6, 0.25),
                "temp_c.trend" | "temp_c.shift" => (0.0, 0.8),
                "temp_c.shift_z" => (0.1, 1.3),
                _ => (92.0 + 0.01 * i as f64, 1.7),
            }
        } else if name.ends_with("hours_since") || name.ends_with("hours_since_repair") {
            (690.0, 95.5)
        } else if name == "device.age_days" {
            (201.25, 118.0)
        } else if name == "device.messages_log1p" {
            (6.3, 1.1)
        } else {
            (0.04 + 0.001 * i as f64, 0.21)
        };
        mean[i] = m;
        std[i] = s;
    }
    let p05: Vec<f64> = mean.iter().zip(&std).map(|(m, s)| m - 1.645 * s).collect();
    let p95: Vec<f64> = mean.iter().zip(&std).map(|(m, s)| m + 1.645 * s).collect();

    let untrained = |component: &str| ComponentModel {
        component: component.to_owned(),
        family: "logistic".into(),
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
        release_ms: p.release_ms,
        expire_ms: p.expire_ms(),
        fault_rule: None,
        threshold_rule: "none".into(),
        metrics: None,
        skipped_reason: None,
        lead_time: Vec::new(),
    };
    let candidates = |logistic: f64, trees: f64, validation: f64, set: &str| {
        vec![
            CandidateMetrics {
                family: "logistic".into(),
                selection_ap: logistic,
                validation_ap: validation,
                selection_set: set.into(),
            },
            CandidateMetrics {
                family: "bagged_trees".into(),
                selection_ap: trees,
                validation_ap: validation + 0.05,
                selection_set: set.into(),
            },
        ]
    };
    let metrics = |events: Option<EventMetrics>| ComponentMetrics {
        rows: 1480,
        positives: 37,
        base_rate: 0.025,
        precision: 0.61,
        recall: 0.432_432_432_432_432_4,
        f1: 0.506,
        average_precision: 0.337,
        mean_risk: 0.029,
        events: 6,
        events_detected: 4,
        validation_events: events,
    };
    let mut weights = vec![0.0; n];
    weights[at("temp_c.shift_z")] = 0.9;
    weights[at("temp_c.trend")] = 0.4;
    weights[at("temp_c.last")] = 0.15;
    weights[at("fault.element.major_count_7d")] = 1.1;
    weights[at("device.age_days")] = -0.012;
    let leaf = |value| Node {
        feature: None,
        threshold: 0.0,
        left: 0,
        right: 0,
        value,
    };
    let split = |feature: &str, threshold, left, right, value| Node {
        feature: Some(at(feature) as u32),
        threshold,
        left,
        right,
        value,
    };
    let element = ComponentModel {
        weights: weights.clone(),
        intercept: -3.1,
        calibration_a: 0.85,
        calibration_b: -0.3,
        calibration_set: "validation_first_half".into(),
        candidates: candidates(0.31, 0.27, 0.29, "validation_first_half"),
        threshold: 0.35,
        fault_rule: FaultRule::for_component(&names, "element").map(|r| FaultRule {
            months: MonthSet::of([6, 7, 8]),
            ..r
        }),
        threshold_rule: "event_target".into(),
        metrics: Some(metrics(Some(EventMetrics {
            flags: 5,
            false_alarms: 1,
            failures: 6,
            caught: 4,
            precision: 0.8,
            recall: 0.666_666_666_666_666_6,
            false_alarms_per_1000_device_months: 1.25,
            device_months: 800.0,
            lead_time_days_median: Some(6.5),
        }))),
        lead_time: lead_time_bins(
            0.35,
            (0..16)
                .map(|i| (0.36 + 0.03 * f64::from(i), 11.0 - 0.5 * f64::from(i)))
                .collect(),
        ),
        ..untrained("element")
    };
    let pump = ComponentModel {
        family: "bagged_trees".into(),
        weights: weights.iter().map(|w| -0.5 * w).collect(),
        intercept: -1.4,
        trees: vec![
            Tree {
                nodes: vec![
                    split("temp_c.shift_z", 1.5, 1, 2, 0.2),
                    leaf(0.02),
                    leaf(0.6),
                ],
            },
            Tree {
                nodes: vec![
                    split("temp_c.trend", 0.8, 1, 2, 0.25),
                    leaf(0.03),
                    split("fault.pump.major_count_7d", 0.5, 3, 4, 0.5),
                    leaf(0.3),
                    leaf(0.9),
                ],
            },
        ],
        calibration_a: 1.1,
        calibration_b: -0.1,
        calibration_set: "validation_first_half".into(),
        candidates: candidates(0.21, 0.34, 0.3, "training"),
        threshold: 0.2,
        persistence: 1,
        threshold_rule: "event_max_f1_training".into(),
        metrics: Some(metrics(Some(EventMetrics {
            flags: 3,
            false_alarms: 1,
            failures: 2,
            caught: 0,
            precision: 0.666_666_666_666_666_6,
            recall: 0.0,
            false_alarms_per_1000_device_months: 0.5,
            device_months: 2000.0,
            lead_time_days_median: None,
        }))),
        ..untrained("pump")
    };
    let valve = ComponentModel {
        skipped_reason: Some("too few positive training rows: 2 (need 5)".into()),
        ..untrained("valve")
    };
    let door = ComponentModel {
        family: "bagged_trees".into(),
        weights: vec![0.01; n],
        intercept: -2.2,
        trees: vec![Tree {
            nodes: vec![
                split("temp_c.std_slow", 0.3, 1, 2, 0.1),
                leaf(0.08),
                leaf(0.12),
            ],
        }],
        calibration_a: 0.5,
        calibration_b: -2.0,
        calibration_set: "validation_first_half".into(),
        candidates: candidates(0.09, 0.11, 0.04, "validation_first_half"),
        skipped_reason: Some(
            "no signal: average precision 0.040 on the threshold half of validation is under 2 x its base rate 0.025"
                .into(),
        ),
        metrics: Some(metrics(None)),
        ..untrained("door")
    };

    // Drift baseline: four training rows, one feature missing in one of them.
    let rows: Vec<Vec<f32>> = (0..4)
        .map(|r| {
            (0..n)
                .map(|i| {
                    if i == at("temp_c.shift_z") && r == 2 {
                        f32::NAN
                    } else if i < 10 {
                        mean[i] as f32 + r as f32 * 0.5
                    } else {
                        mean[i] as f32
                    }
                })
                .collect()
        })
        .collect();
    let drift = crate::drift::DriftBaseline::from_rows(n, rows.iter().map(Vec::as_slice));

    let mut a = ModelArtifact {
        format_version: FORMAT_VERSION,
        version: String::new(),
        device_type: "kettle".into(),
        created_at: Timestamp(JULY).to_rfc3339(),
        horizon_ms: p.horizon_ms,
        feature_schema: names.clone(),
        feature_mean: mean,
        feature_std: std,
        feature_p05: p05,
        feature_p95: p95,
        components: vec![element, pump, valve, door],
        training_summary: TrainingSummary {
            devices: 40,
            rows: 9000,
            train_rows: 6000,
            validation_rows: 2700,
            positives: BTreeMap::from([
                ("door".to_owned(), 12),
                ("element".to_owned(), 61),
                ("pump".to_owned(), 9),
                ("valve".to_owned(), 2),
            ]),
            time_range: (Timestamp(JULY - 400 * DAY), Timestamp(JULY - 30 * DAY - 1)),
            split_ts: Timestamp(JULY - 140 * DAY),
            history_lines: 120_003,
            rejected_lines: 3,
            rejected_by_reason: BTreeMap::from([
                ("invalid_line".to_owned(), 1),
                ("out_of_range".to_owned(), 2),
            ]),
            rejected_events: 1,
            params: p,
            labels: LabelSummary {
                source: "store".into(),
                failures: BTreeMap::from([("element".to_owned(), 7), ("pump".to_owned(), 2)]),
                no_fault_found: BTreeMap::from([("element".to_owned(), 1)]),
                no_fault_found_rows: BTreeMap::from([("element".to_owned(), 56)]),
            },
        },
        drift_baseline: Some(drift),
    };
    // serde_json's default float parser can miss the nearest double by one unit in the
    // last place, so a saved artefact does not always load to the same numbers. The
    // fixture holds numbers that do: what saving the loaded artefact writes.
    let mut text = serde_json::to_string_pretty(&a).unwrap();
    loop {
        a = serde_json::from_str(&text).unwrap();
        a.version = format!("kettle-20260701T000000Z-{}", a.content_hash());
        let again = serde_json::to_string_pretty(&a).unwrap();
        if again == text {
            break;
        }
        text = again;
    }
    a.validate().unwrap();
    std::fs::write(fixture_path(), text).unwrap();
    eprintln!("fixed: {:#?}", score_fixed(&a));
    eprintln!("replay: {:?}", replay(&a));
}
