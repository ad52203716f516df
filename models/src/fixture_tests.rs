//! The artefact format fixture: `testdata/artifact_v3.json` was written by the code
//! before the models crate was split into modules (issue 18), from a hand-made artefact
//! (the ignored test `write_fixture` of commit c9218e9, which also recorded the expected
//! numbers below). Every build must load it, score it to the very same risks, and write
//! it back byte for byte: the artefact JSON is a public contract.
//!
//! The fixture's device type is `kettle` (`testdata/kettle.toml`): one channel and four
//! components, a 33-feature schema, so the file stays small. Its components cover the
//! shapes training writes: a trained logistic model with Platt calibration, a seasonal
//! fault-code rule and lead-time bins (`element`); a trained bagged-trees model chosen on
//! the training rows (`pump`); a component skipped for too few positives (`valve`); and
//! one skipped for no signal after the bagged trees were fitted and calibrated (`door`).

use std::path::PathBuf;

use domain::{FaultState, Message, Profile, ProfileSet, Timestamp};

use crate::artifact::{self, ModelArtifact};
use crate::test_support::{fault, telemetry};
use crate::{FeatureSchema, ModelRegistry, Scorer};

/// 2026-07-01T00:00:00Z: the replay runs in July, a month of the element's fault rule.
const JULY: i64 = 1_782_864_000_000;
const HOUR: i64 = Timestamp::HOUR_MS;

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
    let mut out = Vec::new();
    for k in 0..40i64 {
        let ts = JULY + k * 6 * HOUR;
        let climb = if k >= 24 { (k - 24) as f64 * 1.5 } else { 0.0 };
        let wobble = [0.0, 0.4, -0.3, 0.2][(k % 4) as usize];
        out.push(telemetry(
            "kettle",
            "kt-1",
            ts,
            &[("temp_c", 92.0 + wobble + climb)],
        ));
        let code = match k {
            10 | 36 => "K1",
            33 => "K2",
            _ => continue,
        };
        out.push(fault("kettle", "kt-1", ts + 1000, code, FaultState::Raised));
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

/// The fixture with `edit` applied to its JSON, saved under a temporary directory and
/// read back with [`artifact::load`].
fn load_edited(edit: impl FnOnce(&mut serde_json::Value)) -> crate::Result<ModelArtifact> {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path()).unwrap()).unwrap();
    edit(&mut v);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    artifact::load(&path)
}

#[test]
fn every_closed_set_value_a_format_3_writer_used_loads_and_writes_back() {
    use crate::artifact::{CalibrationSet, Family, FamilyName, SelectionSet, ThresholdRule};

    // Every threshold rule training ever wrote into a format-3 file, on the trained
    // element (its threshold, metrics and rule stay meaningful with any of them).
    for rule in [
        "none",
        "event_target",
        "event_max_f1",
        "event_target_training",
        "event_max_f1_training",
    ] {
        let a = load_edited(|v| v["components"][0]["threshold_rule"] = rule.into()).unwrap();
        assert_eq!(a.components[0].threshold_rule.as_str(), rule);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["components"][0]["threshold_rule"], rule);
    }
    for set in ["validation_first_half", "validation", "training"] {
        let a = load_edited(|v| v["components"][1]["candidates"][0]["selection_set"] = set.into())
            .unwrap();
        assert_eq!(a.components[1].candidates[0].selection_set.as_str(), set);
    }
    let a = load_edited(|_| {}).unwrap();
    let [element, pump, valve, door] = &a.components[..] else {
        panic!("four components");
    };
    assert_eq!(element.family, Family::Logistic);
    assert!(matches!(&pump.family, Family::BaggedTrees { trees } if trees.len() == 2));
    assert_eq!(pump.family.trees().len(), 2);
    assert!(matches!(&door.family, Family::BaggedTrees { trees } if trees.len() == 1));
    assert!(!door.is_trained() && !valve.is_trained());
    assert_eq!(
        (
            element.threshold_rule,
            pump.threshold_rule,
            valve.threshold_rule
        ),
        (
            ThresholdRule::EventTarget,
            ThresholdRule::EventMaxF1Training,
            ThresholdRule::None
        )
    );
    assert_eq!(valve.calibration_set, CalibrationSet::None);
    assert_eq!(door.calibration_set, CalibrationSet::ValidationFirstHalf);
    assert_eq!(
        pump.candidates
            .iter()
            .map(|c| (c.family, c.selection_set))
            .collect::<Vec<_>>(),
        [
            (FamilyName::Logistic, SelectionSet::Training),
            (FamilyName::BaggedTrees, SelectionSet::Training)
        ]
    );
    assert_eq!(
        format!("{} {}", pump.family, pump.threshold_rule),
        "bagged_trees event_max_f1_training"
    );

    // Fields a component may lack: no family is logistic, no calibration the identity.
    let bare = load_edited(|v| {
        let c = v["components"][0].as_object_mut().unwrap();
        for k in crate::test_support::FORMAT_2_FIELDS {
            c.remove(k);
        }
    })
    .unwrap();
    let c = &bare.components[0];
    assert_eq!(c.family, Family::Logistic);
    assert_eq!((c.calibration_a, c.calibration_b), (1.0, 0.0));
    assert_eq!(c.calibration_set, CalibrationSet::None);
}

#[test]
fn an_unknown_family_rule_or_set_is_refused_naming_the_component_and_the_field() {
    let refused =
        |edit: &dyn Fn(&mut serde_json::Value)| load_edited(|v| edit(v)).unwrap_err().to_string();
    let err = refused(&|v| v["components"][1]["family"] = "forest".into());
    assert!(
        err.contains(r#"component pump: unknown model family "forest" (expected "logistic" or "bagged_trees")"#),
        "{err}"
    );
    // Skipped components too: this build could not write such a file back.
    let err = refused(&|v| v["components"][2]["family"] = "forest".into());
    assert!(
        err.contains("component valve: unknown model family"),
        "{err}"
    );
    let err = refused(&|v| v["components"][0]["threshold_rule"] = "target_precision".into());
    assert!(
        err.contains(r#"component element: unknown threshold_rule "target_precision""#),
        "{err}"
    );
    let err = refused(&|v| v["components"][3]["calibration_set"] = "training".into());
    assert!(
        err.contains(r#"component door: unknown calibration_set "training""#),
        "{err}"
    );
    let err = refused(&|v| v["components"][0]["candidates"][1]["family"] = "forest".into());
    assert!(err.contains(r#"unknown model family "forest""#), "{err}");
    let err = refused(&|v| v["components"][0]["candidates"][1]["selection_set"] = "x".into());
    assert!(err.contains(r#"unknown selection_set "x""#), "{err}");
    // Trees on a logistic model would be dropped on writing back: refused instead.
    let err = refused(&|v| v["components"][0]["trees"] = v["components"][1]["trees"].clone());
    assert!(
        err.contains("component element: family logistic has 2 trees"),
        "{err}"
    );
    // Every message names the file.
    assert!(
        err.contains("model artefact") && err.contains("edited.json"),
        "{err}"
    );
}
