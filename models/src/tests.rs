//! Crate-level tests: a synthetic history generator, training, scoring, artefacts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use domain::{DeviceId, FaultState, Message, ProfileSet, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::artifact::{self, CalibrationSet, Family, ModelArtifact, FORMAT_VERSION};
use crate::test_support::{self, T0};
use crate::{train, ModelRegistry, Scorer, TrainParams};

const DAY: i64 = Timestamp::DAY_MS;
const HOUR: i64 = Timestamp::HOUR_MS;

/// A tiny washer fleet: `drain_time_s` climbs over the 10 days before each drain-pump
/// failure, with some E21 faults; the pump is repaired a day after failing.
struct Synth {
    devices: usize,
    days: i64,
    every_h: i64,
    seed: u64,
}

/// The synthetic fleet of the training tests: 30 washers over 150 days, a reading
/// every 4 hours.
const FLEET: Synth = Synth {
    devices: 30,
    days: 150,
    every_h: 4,
    seed: 7,
};

/// A temporary directory holding the history of `s`.
fn history(s: &Synth) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), s);
    dir
}

/// Writes the history; returns the failure times per device.
fn write_history(dir: &Path, s: &Synth) -> BTreeMap<String, Vec<i64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let mut failures: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut events = String::new();
    for d in 0..s.devices {
        let id = format!("wm-{d:04}");
        let mut list = Vec::new();
        if rng.gen_bool(0.6) {
            let mut day = rng.gen_range(12..30);
            while day < s.days - 3 {
                list.push(T0 + day * DAY + rng.gen_range(0..DAY));
                day += rng.gen_range(25..45);
            }
        }
        for &f in &list {
            test_support::drain_pump_failure(&mut events, &id, f, None);
        }
        failures.insert(id, list);
    }
    events.push_str("not json\n");
    std::fs::write(dir.join("events.jsonl"), events).unwrap();

    let mut lines = String::new();
    let mut seq = 0u64;
    let steps = s.days * 24 / s.every_h;
    let noise = |rng: &mut ChaCha8Rng, sd: f64| {
        (rng.gen::<f64>() + rng.gen::<f64>() + rng.gen::<f64>() - 1.5) * 2.0 * sd
    };
    for step in 0..steps {
        for (id, fails) in &failures {
            seq += 1;
            let t = T0 + step * s.every_h * HOUR + rng.gen_range(0..HOUR);
            let (wear, drain) = test_support::drain_time(fails, t, noise(&mut rng, 1.0));
            let _ = writeln!(
                lines,
                r#"{{"device_id":"{id}","msg":"telemetry","ts":"{}","seq":{seq},"type":"washer","model":"WM-500","fw":"2.4.1","readings":{{"motor_current_a":{:.3},"vibration_g":{:.4},"water_temp_c":{:.2},"heat_time_s":{:.1},"drain_time_s":{:.2},"fill_time_s":{:.1},"supply_voltage_v":{:.1}}}}}"#,
                Timestamp(t),
                3.4 + noise(&mut rng, 0.2),
                0.12 + noise(&mut rng, 0.02),
                40.0 + noise(&mut rng, 1.0),
                900.0 + noise(&mut rng, 50.0),
                drain.max(0.0),
                60.0 + noise(&mut rng, 5.0),
                230.0 + noise(&mut rng, 3.0),
            );
            if wear > 0.5 && rng.gen_bool(0.2) {
                seq += 1;
                test_support::e21_raised(&mut lines, id, t + 1000, seq);
            }
        }
        if step == 10 {
            // Three lines that must be skipped and counted, never fatal.
            lines.push_str("{not json\n");
            lines.push_str(r#"{"device_id":"wm-0000","msg":"telemetry","ts":"2026-01-01T00:00:00Z","seq":1,"type":"toaster","model":"T","readings":{"x":1}}"#);
            lines.push('\n');
            lines.push_str(r#"{"device_id":"wm-0000","msg":"telemetry","ts":"2026-01-01T00:00:00Z","seq":1,"type":"washer","model":"WM-500","readings":{"drain_time_s":99999}}"#);
            lines.push('\n');
        }
    }
    std::fs::write(dir.join("telemetry.jsonl"), lines).unwrap();
    failures
}

/// `p`, checked.
fn valid(p: TrainParams) -> crate::ValidTrainParams {
    p.check().unwrap()
}

fn params() -> TrainParams {
    TrainParams {
        horizon_ms: 7 * DAY,
        sample_interval_ms: 12 * HOUR,
        // The solver is monomorphised in this crate, which tests build unoptimised.
        max_iterations: 40,
        ..TrainParams::default()
    }
}

/// A washer reading of `id` at `t`: normal but for `drain_time_s`.
fn telemetry(id: &str, t: i64, drain: f64) -> Message {
    test_support::telemetry(
        "washer",
        id,
        t,
        &[
            ("motor_current_a", 3.4),
            ("vibration_g", 0.12),
            ("water_temp_c", 40.0),
            ("heat_time_s", 900.0),
            ("drain_time_s", drain),
            ("fill_time_s", 60.0),
            ("supply_voltage_v", 230.0),
        ],
    )
}

#[test]
fn a_component_whose_failures_have_no_precursor_gets_no_model() {
    let dir = history(&FLEET);
    // Heater failures at random times, with nothing in the readings announcing them.
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut extra = String::new();
    for d in 0..30 {
        let mut day = rng.gen_range(10..40);
        while day < 147 {
            let ts = T0 + day * DAY + rng.gen_range(0..DAY);
            let _ = writeln!(
                extra,
                r#"{{"device_id":"wm-{d:04}","ts":{ts},"event":"failure","component":"heater","mode":"sudden"}}"#
            );
            let _ = writeln!(
                extra,
                r#"{{"device_id":"wm-{d:04}","ts":{},"event":"repair","component":"heater"}}"#,
                ts + DAY
            );
            day += rng.gen_range(20..40);
        }
    }
    let path = dir.path().join("events.jsonl");
    let mut events = std::fs::read_to_string(&path).unwrap();
    events.push_str(&extra);
    std::fs::write(&path, events).unwrap();

    let artifacts = train(
        dir.path(),
        &ProfileSet::builtin(),
        &valid(params()),
        &mut |_| {},
    )
    .unwrap();
    let a = &artifacts[0];
    let heater = a
        .components
        .iter()
        .find(|c| c.component == "heater")
        .unwrap();
    let reason = heater.skipped_reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("no signal"),
        "heater: {reason:?} {:?}",
        heater.candidates
    );
    assert!(!heater.is_trained());
    let drain = a
        .components
        .iter()
        .find(|c| c.component == "drain_pump")
        .unwrap();
    assert!(drain.is_trained(), "{:?}", drain.skipped_reason);
}

#[test]
fn training_learns_a_drifting_channel() {
    let dir = history(&FLEET);
    let started = Instant::now();
    let mut reports = Vec::new();
    let artifacts = train(
        dir.path(),
        &ProfileSet::builtin(),
        &valid(params()),
        &mut |p| reports.push(p),
    )
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(artifacts.len(), 1);
    let a = &artifacts[0];
    assert_eq!(a.device_type, "washer");
    assert!(a.version.starts_with("washer-"), "{}", a.version);
    a.validate().unwrap();

    let s = &a.training_summary;
    assert_eq!(s.rejected_lines, 3, "{:?}", s.rejected_by_reason);
    assert_eq!(s.rejected_by_reason.get("invalid_line"), Some(&1));
    assert_eq!(s.rejected_by_reason.get("unknown_device_type"), Some(&1));
    assert_eq!(s.rejected_by_reason.get("out_of_range"), Some(&1));
    assert_eq!(s.rejected_events, 1);
    assert_eq!(s.devices, 30);

    let pump = a
        .components
        .iter()
        .find(|c| c.component == "drain_pump")
        .unwrap();
    assert!(pump.is_trained(), "{:?}", pump.skipped_reason);
    let m = pump.metrics.as_ref().unwrap();
    eprintln!(
        "trained in {elapsed:?}: {m:?}, rule {}, summary rows {} train {} val {}",
        pump.threshold_rule, s.rows, s.train_rows, s.validation_rows
    );
    assert!(m.positives > 20, "{m:?}");
    assert!(
        m.average_precision > 2.0 * m.base_rate && m.average_precision > m.base_rate + 0.2,
        "AP {} vs base rate {}",
        m.average_precision,
        m.base_rate
    );
    assert!(m.events > 0 && m.events_detected > 0, "{m:?}");
    let bearing = a
        .components
        .iter()
        .find(|c| c.component == "motor_bearing")
        .unwrap();
    assert!(!bearing.is_trained());
    assert!(bearing
        .skipped_reason
        .as_deref()
        .unwrap()
        .contains("too few positive"));

    // Orientation: the risk rises with the drifting channel.
    let registry = ModelRegistry::from_artifacts(artifacts.clone());
    let mut scorer = Scorer::new(registry, ProfileSet::builtin());
    let mut healthy = 0.0;
    let mut degrading = 0.0;
    // Whether each device was ever flagged (under the flag rule training chose).
    let mut flagged = [false, false];
    for i in 0..120 {
        let t = T0 + i * 4 * HOUR;
        let drift = if i > 60 { (i - 60) as f64 * 0.4 } else { 0.0 };
        for (k, id, drain, out) in [
            (0, "wm-h", 12.0, &mut healthy),
            (1, "wm-d", 12.0 + drift, &mut degrading),
        ] {
            let preds = scorer.observe(&telemetry(id, t, drain));
            if t - T0 < crate::features::WARM_UP_MS {
                assert!(preds.is_empty(), "scored before the warm-up week");
                continue;
            }
            let p = preds.iter().find(|p| p.component == "drain_pump").unwrap();
            *out = p.risk;
            flagged[k] |= p.flagged;
            assert_eq!(p.model_version, a.version);
            assert!(p.top_features.len() <= crate::scorer::TOP_FEATURES);
        }
    }
    eprintln!("healthy risk {healthy:.4}, degrading risk {degrading:.4}");
    assert!(
        degrading > healthy + 0.3,
        "healthy {healthy}, degrading {degrading}"
    );
    assert_eq!(
        flagged,
        [false, true],
        "the degrading device and only it is flagged (persistence {}, hold {} ms)",
        pump.persistence,
        pump.hold_ms
    );
    // Its explanation names the drifting channel.
    let preds = scorer.observe(&telemetry("wm-d", T0 + 121 * 4 * HOUR, 40.0));
    let p = preds.iter().find(|p| p.component == "drain_pump").unwrap();
    assert!(
        p.top_features
            .iter()
            .any(|c| c.feature.starts_with("drain_time_s.")),
        "{:?}",
        p.top_features
    );
    assert!(p
        .top_features
        .iter()
        .all(|c| c.contribution > 0.0 && c.normal_range.is_some()));
    assert_eq!(scorer.device_count(), 2);
    assert!(scorer.state_bytes() < 2 * 1024);

    // Both families were compared; the winner is calibrated on the validation period's
    // first half and its mean risk on the second half is close to the base rate.
    assert_eq!(pump.candidates.len(), 2, "{:?}", pump.candidates);
    assert!(pump
        .candidates
        .iter()
        .any(|c| c.family == pump.family.name()));
    assert_eq!(pump.calibration_set, CalibrationSet::ValidationFirstHalf);
    assert!(pump.calibration_a > 0.0);
    assert!(
        m.mean_risk > 0.4 * m.base_rate && m.mean_risk < 2.5 * m.base_rate,
        "mean risk {} vs base rate {}",
        m.mean_risk,
        m.base_rate
    );

    // Deterministic apart from the clock: same data, same seed, same numbers.
    let again = train(
        dir.path(),
        &ProfileSet::builtin(),
        &valid(params()),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(again[0].components, a.components);
    assert!(reports
        .iter()
        .any(|r| matches!(r, crate::TrainProgress::Loaded { rejected: 3, .. })));
}

#[test]
fn replay_scores_every_message() {
    let dir = history(&Synth {
        devices: 4,
        days: 10,
        every_h: 12,
        seed: 1,
    });
    let registry = ModelRegistry::from_artifacts([handmade("washer-a", 1.0)]);
    let mut n = 0;
    let mut expected = 0;
    let mut first: std::collections::HashMap<DeviceId, i64> = Default::default();
    let stats = crate::replay_history(dir.path(), &ProfileSet::builtin(), registry, |m, preds| {
        let ts = m.ts().unwrap().millis();
        let start = *first.entry(m.device_id().clone()).or_insert(ts);
        if ts - start >= crate::features::WARM_UP_MS {
            expected += 1;
        }
        n += preds.len();
    })
    .unwrap();
    assert_eq!(stats.rejected, 3);
    assert!(expected > 0);
    assert_eq!(
        n, expected,
        "every decoded message after the warm-up week is scored"
    );
}

/// A hand-made washer model: drain-pump risk driven by `drain_time_s.last` (normal
/// 12 s, deviation 2 s) with `weight`.
pub(crate) fn handmade(version: &str, weight: f64) -> ModelArtifact {
    let mut a = test_support::handmade(
        "washer",
        "drain_time_s.last",
        "drain_pump",
        (12.0, 2.0),
        weight,
    );
    a.version = version.into();
    a
}

/// A scorer whose device `wm-1` has a normal week behind it, so it is scored from T0.
fn warmed(registry: ModelRegistry) -> Scorer {
    let mut scorer = Scorer::new(registry, ProfileSet::builtin());
    let mut t = T0 - crate::features::WARM_UP_MS - HOUR;
    while t < T0 {
        scorer.observe(&telemetry("wm-1", t, 12.0));
        t += 6 * HOUR;
    }
    scorer
}

fn drain_pump(scorer: &mut Scorer, t: i64, drain: f64) -> (f64, bool) {
    let preds = scorer.observe(&telemetry("wm-1", t, drain));
    assert_eq!(preds.len(), 1, "only the trained component is scored");
    (preds[0].risk, preds[0].flagged)
}

#[test]
fn persistence_needs_consecutive_high_scores() {
    let mut scorer = warmed(ModelRegistry::from_artifacts([handmade("washer-a", 1.0)]));
    let (low, flagged) = drain_pump(&mut scorer, T0, 12.0);
    assert!(low < 0.05 && !flagged);
    // One spike: high risk, no flag; back to normal resets the streak.
    let (high, flagged) = drain_pump(&mut scorer, T0 + HOUR, 40.0);
    assert!(high > 0.99 && !flagged, "{high}");
    assert!(!drain_pump(&mut scorer, T0 + 2 * HOUR, 12.0).1);
    assert!(!drain_pump(&mut scorer, T0 + 3 * HOUR, 40.0).1);
    assert!(!drain_pump(&mut scorer, T0 + 4 * HOUR, 40.0).1);
    assert!(
        drain_pump(&mut scorer, T0 + 5 * HOUR, 40.0).1,
        "third consecutive high score flags"
    );
    // A late message is neither applied nor scored.
    assert!(scorer.observe(&telemetry("wm-1", T0, 12.0)).is_empty());
    let status = Message::Status(domain::StatusMessage {
        device_id: DeviceId::parse("wm-1").unwrap(),
        online: false,
        ts: None,
    });
    assert!(scorer.observe(&status).is_empty());
    // Faults move the state and are scored too.
    assert_eq!(scorer.observe(&washer_fault(T0 + 6 * HOUR, "E21")).len(), 1);
}

fn washer_fault(t: i64, code: &str) -> Message {
    test_support::fault("washer", "wm-1", t, code, FaultState::Raised)
}

#[test]
fn a_warming_up_device_is_flagged_by_its_fault_codes_and_never_by_its_risk() {
    let mut artifact = handmade("washer-a", 1.0);
    let rule = artifact::FaultRule::for_component(&artifact.feature_schema, "drain_pump");
    for c in &mut artifact.components {
        c.persistence = 1;
        c.fault_rule = rule;
    }
    let mut scorer = Scorer::new(
        ModelRegistry::from_artifacts([artifact]),
        ProfileSet::builtin(),
    );
    // A brand-new device with readings far above normal: the risk is high, but the
    // warm-up week is not over, so nothing is reported and nothing flags.
    for i in 0..6 {
        assert!(
            scorer
                .observe(&telemetry("wm-1", T0 + i * HOUR, 40.0))
                .is_empty(),
            "a warming-up device's risk is not reported"
        );
    }
    // Its own major drain code flags it at once.
    let preds = scorer.observe(&washer_fault(T0 + 6 * HOUR, "E21"));
    assert_eq!(preds.len(), 1, "{preds:?}");
    let p = &preds[0];
    assert!(p.flagged && p.warming_up, "{p:?}");
    assert_eq!(p.component, "drain_pump");
    assert_eq!(
        p.lead_time_days, None,
        "no lead time from an unreliable risk"
    );
    // While the flag stands, every score is reported (so its end is seen).
    let p = one_drain_pump(scorer.observe(&telemetry("wm-1", T0 + 7 * HOUR, 12.0)));
    assert!(p.flagged && p.warming_up);
    // Four days after the code the rule stops; the score that ends the flag is
    // reported, then nothing until the warm-up is over.
    let p = one_drain_pump(scorer.observe(&telemetry("wm-1", T0 + 5 * DAY, 40.0)));
    assert!(!p.flagged && p.warming_up, "{p:?}");
    assert!(scorer
        .observe(&telemetry("wm-1", T0 + 5 * DAY + HOUR, 40.0))
        .is_empty());
    // Warm: every message is scored, and the risk flags by itself.
    let p = one_drain_pump(scorer.observe(&telemetry("wm-1", T0 + 8 * DAY, 40.0)));
    assert!(p.flagged && !p.warming_up && p.risk > 0.99, "{p:?}");
    // The JSON of a warm score carries no warming_up field.
    assert!(!serde_json::to_string(&p).unwrap().contains("warming_up"));
}

fn one_drain_pump(preds: Vec<domain::Prediction>) -> domain::Prediction {
    assert_eq!(preds.len(), 1, "{preds:?}");
    preds.into_iter().next().unwrap()
}

#[test]
fn a_flag_also_needs_the_hold_time() {
    let mut artifact = handmade("washer-a", 1.0);
    for c in &mut artifact.components {
        c.hold_ms = 12 * HOUR;
    }
    let mut scorer = warmed(ModelRegistry::from_artifacts([artifact]));
    assert!(!drain_pump(&mut scorer, T0, 12.0).1);
    // A burst of high scores within an hour: persistence is met, the hold time is not.
    for i in 1..=6 {
        assert!(
            !drain_pump(&mut scorer, T0 + i * HOUR / 6, 40.0).1,
            "burst score {i} flagged"
        );
    }
    // Still high 12 hours after the streak began: now it flags.
    assert!(!drain_pump(&mut scorer, T0 + 11 * HOUR, 40.0).1);
    assert!(drain_pump(&mut scorer, T0 + HOUR / 6 + 12 * HOUR, 40.0).1);
}

#[test]
fn artifacts_round_trip_and_the_registry_hot_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    assert!(
        ModelRegistry::load_dir(&models)
            .unwrap()
            .versions()
            .is_empty(),
        "missing dir = empty"
    );

    let a = handmade("washer-20261125T013000Z-aaaaaaaa", 1.0);
    let path = artifact::save(&a, &models).unwrap();
    assert_eq!(
        path,
        models
            .join("washer")
            .join("washer-20261125T013000Z-aaaaaaaa.json")
    );
    assert_eq!(artifact::load(&path).unwrap(), a);
    let active = std::fs::read_to_string(models.join("washer").join("ACTIVE")).unwrap();
    assert_eq!(active.trim(), a.version);

    let registry = ModelRegistry::load_dir(&models).unwrap();
    assert_eq!(registry.get("washer").unwrap().version, a.version);
    assert!(registry.get("refrigerator").is_none());
    let mut scorer = warmed(registry.clone());
    drain_pump(&mut scorer, T0, 40.0);
    drain_pump(&mut scorer, T0 + HOUR, 40.0);
    assert!(drain_pump(&mut scorer, T0 + 2 * HOUR, 40.0).1);

    // Nothing changed on disk: nothing swaps.
    assert!(registry.reload().unwrap().is_empty());

    // A new version: saved, activated, reloaded; the scorer switches on its next message
    // and restarts the persistence count.
    let b = handmade("washer-20261126T013000Z-bbbbbbbb", 2.0);
    artifact::save(&b, &models).unwrap();
    assert_eq!(
        registry.get("washer").unwrap().version,
        a.version,
        "not before reload"
    );
    assert_eq!(registry.reload().unwrap(), vec!["washer".to_owned()]);
    assert_eq!(registry.get("washer").unwrap().version, b.version);
    let preds = scorer.observe(&telemetry("wm-1", T0 + 3 * HOUR, 40.0));
    assert_eq!(preds[0].model_version, b.version);
    assert!(!preds[0].flagged, "counters restart with a new model");
    assert_eq!(
        artifact::list_versions(&models, "washer").unwrap(),
        vec![a.version.clone(), b.version.clone()]
    );

    // Rollback, and a corrupt file that must not replace the working model.
    artifact::activate(&models, "washer", &a.version).unwrap();
    assert_eq!(registry.reload().unwrap(), vec!["washer".to_owned()]);
    assert_eq!(registry.versions().get("washer"), Some(&a.version));
    std::fs::write(models.join("washer").join("broken.json"), "{").unwrap();
    std::fs::write(models.join("washer").join("ACTIVE"), "broken\n").unwrap();
    assert!(registry.reload().is_err());
    assert_eq!(
        registry.get("washer").unwrap().version,
        a.version,
        "failed reload keeps the old model"
    );
    assert!(artifact::activate(&models, "washer", "../escape").is_err());
}

#[test]
fn a_model_with_another_schema_is_not_used() {
    let mut a = handmade("washer-a", 1.0);
    a.feature_schema[0] = "renamed".into();
    let mut scorer = Scorer::new(ModelRegistry::from_artifacts([a]), ProfileSet::builtin());
    assert!(scorer.observe(&telemetry("wm-1", T0, 40.0)).is_empty());
    assert_eq!(scorer.device_count(), 1, "the state still moves");
}

#[test]
fn invalid_params_and_missing_history_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = TrainParams {
        validation_share: 1.5,
        ..TrainParams::default()
    };
    // Training takes only checked parameters: these do not pass.
    assert!(matches!(bad.check(), Err(crate::Error::InvalidParams(_))));
    let err = train(
        dir.path(),
        &ProfileSet::builtin(),
        &crate::ValidTrainParams::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("events.jsonl"), "{err}");
}

#[test]
fn a_model_file_from_another_format_version_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let a = handmade("washer-20261125T013000Z-aaaaaaaa", 1.0);
    let path = artifact::save(&a, dir.path()).unwrap();
    assert_eq!(artifact::load(&path).unwrap(), a);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // A version 1 file: no family, trees or calibration fields.
    v["format_version"] = 1.into();
    for c in v["components"].as_array_mut().unwrap() {
        let c = c.as_object_mut().unwrap();
        for k in test_support::FORMAT_2_FIELDS {
            c.remove(k);
        }
    }
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = artifact::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("format_version 1") && err.contains("older") && err.contains("retrain"),
        "{err}"
    );
    assert!(ModelRegistry::load_dir(dir.path()).is_err());
    v["format_version"] = (FORMAT_VERSION + 1).into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = artifact::load(&path).unwrap_err().to_string();
    assert!(err.contains("newer"), "{err}");
    v.as_object_mut().unwrap().remove("format_version");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = artifact::load(&path).unwrap_err().to_string();
    assert!(err.contains("no valid format_version"), "{err}");
}

#[test]
fn a_version_3_file_without_expiry_reads_as_never_expiring_and_unknown_fields_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = handmade("washer-20261125T013000Z-bbbbbbbb", 1.0);
    a.components[0].expire_ms = 14 * Timestamp::DAY_MS;
    let path = artifact::save(&a, dir.path()).unwrap();
    assert_eq!(artifact::load(&path).unwrap(), a);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // Written before `expire_ms`: its flags never expire, as they were validated.
    v["components"][0]
        .as_object_mut()
        .unwrap()
        .remove("expire_ms");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(artifact::load(&path).unwrap().components[0].expire_ms, 0);
    // A field from a later build is refused and named, not ignored.
    v["components"][0]["flag_budget_ms"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = artifact::load(&path).unwrap_err().to_string();
    assert!(err.contains("flag_budget_ms"), "{err}");
}

/// The hand-made washer model as bagged trees: two stumps on `drain_time_s.last`.
fn handmade_trees() -> ModelArtifact {
    use crate::trees::{Node, Tree};
    let mut a = handmade("washer-t", 1.0);
    let i = a
        .feature_schema
        .iter()
        .position(|f| f == "drain_time_s.last")
        .unwrap() as u32;
    let leaf = |value| Node {
        feature: None,
        threshold: 0.0,
        left: 0,
        right: 0,
        value,
    };
    let stump = |threshold, low, high| Tree {
        nodes: vec![
            Node {
                feature: Some(i),
                threshold,
                left: 1,
                right: 2,
                value: 0.2,
            },
            leaf(low),
            leaf(high),
        ],
    };
    let c = a
        .components
        .iter_mut()
        .find(|c| c.component == "drain_pump")
        .unwrap();
    c.family = Family::BaggedTrees {
        trees: vec![stump(2.0, 0.01, 0.99), stump(3.0, 0.01, 0.95)],
    };
    c.intercept = 0.0;
    a
}

#[test]
fn bagged_trees_score_explain_and_validate() {
    let a = handmade_trees();
    a.validate().unwrap();
    let mut scorer = warmed(ModelRegistry::from_artifacts([a.clone()]));
    // z = (drain - 12) / 2: 12 s is below both splits, 40 s above both.
    let preds = scorer.observe(&telemetry("wm-1", T0, 12.0));
    assert_eq!(preds.len(), 1);
    assert!((preds[0].risk - 0.01).abs() < 1e-9, "{}", preds[0].risk);
    assert!(
        preds[0].top_features.is_empty(),
        "nothing pushes the risk up"
    );
    let preds = scorer.observe(&telemetry("wm-1", T0 + HOUR, 40.0));
    assert!((preds[0].risk - 0.97).abs() < 1e-9, "{}", preds[0].risk);
    let top = &preds[0].top_features;
    assert_eq!(top[0].feature, "drain_time_s.last");
    // Path contributions add up to the share minus the root share.
    assert!((top[0].contribution - (0.97 - 0.2)).abs() < 1e-9, "{top:?}");
    // Platt scaling applies on the log-odds.
    let mut c = a
        .components
        .iter()
        .find(|c| c.component == "drain_pump")
        .unwrap()
        .clone();
    c.calibration_a = 0.0;
    c.calibration_b = -2.0;
    assert!(
        (c.risk(&vec![0.0; a.feature_schema.len()]) - crate::artifact::sigmoid(-2.0)).abs() < 1e-12
    );
    // A tree whose child points backwards (a loop) or to a missing feature is refused.
    fn pump_trees(a: &mut ModelArtifact) -> &mut Vec<crate::trees::Tree> {
        let pump = a
            .components
            .iter_mut()
            .find(|c| c.component == "drain_pump")
            .unwrap();
        match &mut pump.family {
            Family::BaggedTrees { trees } => trees,
            Family::Logistic => unreachable!("the hand-made pump model has trees"),
        }
    }
    let mut bad = a.clone();
    pump_trees(&mut bad)[0].nodes[0].left = 0;
    assert!(bad.validate().unwrap_err().contains("malformed"));
    let mut bad = a;
    pump_trees(&mut bad)[1].nodes[0].feature = Some(10_000);
    assert!(bad.validate().is_err());
}

/// Event time of one history line (RFC 3339 string or epoch ms), for splitting files.
fn line_ts(line: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    match v.get("ts")? {
        serde_json::Value::String(s) => Timestamp::parse(s).ok().map(Timestamp::millis),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// `a`'s lines before `from` followed by `b`'s lines at or after it.
fn splice(a: &Path, b: &Path, out: &Path, file: &str, from: i64) {
    let before = std::fs::read_to_string(a.join(file)).unwrap();
    let after = std::fs::read_to_string(b.join(file)).unwrap();
    let mut text = String::new();
    for line in before.lines() {
        if line_ts(line).is_none_or(|t| t < from) {
            text.push_str(line);
            text.push('\n');
        }
    }
    for line in after.lines() {
        if line_ts(line).is_some_and(|t| t >= from) {
            text.push_str(line);
            text.push('\n');
        }
    }
    std::fs::write(out.join(file), text).unwrap();
}

#[test]
fn training_never_reads_the_test_period() {
    // Two histories that agree up to day 100 and then differ completely (other
    // failures, other readings): trained with the test period starting at day 100,
    // they must give the same models, thresholds and validation metrics.
    let synth = |seed| Synth {
        devices: 24,
        days: 140,
        every_h: 6,
        seed,
    };
    let (a, b, spliced) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_history(a.path(), &synth(11));
    write_history(b.path(), &synth(12));
    let from = T0 + 100 * DAY;
    for file in ["telemetry.jsonl", "events.jsonl"] {
        splice(a.path(), b.path(), spliced.path(), file, from);
    }
    let p = valid(TrainParams {
        test_from_ms: Some(from),
        ..params()
    });
    let train_on = |dir: &Path| {
        let mut arts = train(dir, &ProfileSet::builtin(), &p, &mut |_| {}).unwrap();
        assert_eq!(arts.len(), 1);
        let a = arts.remove(0);
        let s = &a.training_summary;
        // What was learned and how it was chosen; the file statistics (`history_lines`,
        // the artefact's name and creation time) describe the files, not the training.
        let v = serde_json::json!({
            "components": a.components,
            "mean": a.feature_mean, "std": a.feature_std,
            "p05": a.feature_p05, "p95": a.feature_p95,
            "rows": [s.rows, s.train_rows, s.validation_rows],
            "positives": s.positives, "split": s.split_ts, "range": s.time_range,
        });
        (a, v)
    };
    let (art_a, json_a) = train_on(a.path());
    let (_, json_spliced) = train_on(spliced.path());
    for key in [
        "components",
        "mean",
        "std",
        "p05",
        "p95",
        "rows",
        "positives",
        "split",
        "range",
    ] {
        assert!(
            json_a[key] == json_spliced[key],
            "the test period leaked into training: {key} differs"
        );
    }
    assert!(
        art_a.training_summary.time_range.1 .0 < from,
        "{:?}",
        art_a.training_summary.time_range
    );
    let pump = art_a
        .components
        .iter()
        .find(|c| c.component == "drain_pump")
        .unwrap();
    assert!(pump.is_trained(), "{:?}", pump.skipped_reason);
    // Without the cut, the different futures do change the result: the test can fail.
    let whole = valid(TrainParams {
        test_from_ms: None,
        ..params()
    });
    let full = |dir: &Path| {
        let a = train(dir, &ProfileSet::builtin(), &whole, &mut |_| {}).unwrap();
        serde_json::to_value(&a[0].components).unwrap()
    };
    assert!(
        full(a.path()) != full(spliced.path()),
        "without a test period the two histories should train differently"
    );
}

#[test]
fn nan_and_missing_channels_never_panic_and_score_finite_risks() {
    let dir = history(&Synth {
        devices: 16,
        days: 90,
        every_h: 6,
        seed: 5,
    });
    let arts = train(
        dir.path(),
        &ProfileSet::builtin(),
        &valid(params()),
        &mut |_| {},
    )
    .unwrap();
    let mut scorer = Scorer::new(ModelRegistry::from_artifacts(arts), ProfileSet::builtin());
    let mut scored = 0;
    for i in 0..(20 * 4) {
        let t = T0 + i * 6 * HOUR;
        // Only two channels ever, one of them NaN or infinite every other time; no
        // reading at all every fifth message; an unknown channel throughout.
        let readings = match i % 5 {
            0 => vec![("unknown_sensor", 1.0)],
            1 => vec![("drain_time_s", f64::NAN), ("vibration_g", 0.1)],
            2 => vec![("drain_time_s", f64::INFINITY), ("vibration_g", f64::NAN)],
            3 => vec![("drain_time_s", f64::NEG_INFINITY)],
            _ => vec![("drain_time_s", 12.0), ("vibration_g", 0.12)],
        };
        for p in scorer.observe(&test_support::telemetry("washer", "wm-nan", t, &readings)) {
            scored += 1;
            assert!(p.risk.is_finite() && (0.0..=1.0).contains(&p.risk), "{p:?}");
            for c in &p.top_features {
                assert!(!c.feature.is_empty());
            }
        }
    }
    assert!(scored > 0, "the device was never scored");
    // A device whose type has no model gets no prediction, and no panic.
    let fridge =
        test_support::telemetry("refrigerator", "rf-1", T0, &[("cabinet_temp_c", f64::NAN)]);
    assert!(scorer.observe(&fridge).is_empty());
}
