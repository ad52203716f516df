//! Tests of event-level evaluation and prediction.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use domain::{ProfileSet, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::count::episode_records;
use super::{
    charts, classify_flag, score_events, EvalParams, FailureEvent, FlagOutcome, Metrics, Series,
};
use crate::artifact::ModelArtifact;
use crate::predict::predict;
use crate::test_support::{self, T0};
use crate::ModelRegistry;

const DAY: i64 = Timestamp::DAY_MS;
const HOUR: i64 = Timestamp::HOUR_MS;

fn fail(day: f64, repaired_day: f64, sudden: bool) -> FailureEvent {
    FailureEvent {
        ts: (day * DAY as f64) as i64,
        repaired_at: Some((repaired_day * DAY as f64) as i64),
        sudden,
        before_warm_up: false,
    }
}

#[test]
fn event_scoring_by_hand() {
    // Failures on day 10 (progressive) and day 30 (sudden), horizon 7 days.
    let failures = [fail(10.0, 11.0, false), fail(30.0, 31.0, true)];
    // Flags: day 5 (catches day 10, lead 5 d), day 15 (false alarm: next failure is
    // 15 d later), day 27 (catches day 30, lead 3 d), day 10.5 (while failed: not a
    // flag).
    let starts = [5 * DAY, 15 * DAY, 27 * DAY, 10 * DAY + 12 * HOUR];
    let c = score_events(&starts, &failures, 7 * DAY, 60 * DAY);
    assert_eq!(c.flags.judged, 3);
    assert_eq!(c.flags.censored, 0);
    assert_eq!(c.flags.while_failed, 1);
    assert_eq!(c.flags.followed, 2);
    assert_eq!(c.failures.all, 2);
    assert_eq!(c.failures.with_precursor, 1);
    assert_eq!(c.failures.caught, 2);
    assert_eq!(c.failures.caught_with_precursor, 1);
    assert_eq!(c.lead_times_ms, vec![5 * DAY, 3 * DAY]);

    let m = Metrics::from_counts(&c, 2, (2.5, 2.0), "v1".into());
    assert_eq!(m.false_alarms, 1);
    assert!((m.precision.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(m.recall, Some(1.0));
    assert_eq!(m.recall_with_precursor, Some(1.0));
    assert!((m.f1.unwrap() - 0.8).abs() < 1e-12);
    assert!((m.lead_time_days_median.unwrap() - 4.0).abs() < 1e-12);
    assert!((m.lead_time_days_p10.unwrap() - 3.2).abs() < 1e-12);
    assert!((m.false_alarms_per_1000_device_months.unwrap() - 500.0).abs() < 1e-9);

    // An episode that starts before the horizon does not catch; the earliest episode
    // within it sets the lead time; no flags: precision undefined, recall 0.
    let c = score_events(
        &[DAY, 4 * DAY, 8 * DAY],
        &[fail(10.0, 11.0, false)],
        7 * DAY,
        60 * DAY,
    );
    assert_eq!(
        (c.flags.judged, c.flags.followed, c.failures.caught),
        (3, 2, 1)
    );
    assert_eq!(c.lead_times_ms, vec![6 * DAY]);
    let m = Metrics::from_counts(
        &score_events(&[], &failures, DAY, 60 * DAY),
        1,
        (0.0, 0.0),
        String::new(),
    );
    assert_eq!((m.precision, m.recall, m.f1), (None, Some(0.0), None));
    assert_eq!(m.false_alarms_per_1000_device_months, None);
    assert_eq!(m.lead_time_days_median, None);
}

#[test]
fn flags_whose_horizon_outlives_the_history_are_censored_not_false_alarms() {
    // The history ends on day 40; horizon 7 days. A failure on day 38.
    let end = 40 * DAY;
    let failures = [fail(38.0, 39.5, false)];
    let h = 7 * DAY;
    assert_eq!(
        classify_flag(20 * DAY, &failures, h, end),
        FlagOutcome::FalseAlarm
    );
    assert_eq!(
        classify_flag(36 * DAY, &failures, h, end),
        FlagOutcome::Followed(38 * DAY)
    );
    assert_eq!(
        classify_flag(38 * DAY + HOUR, &failures, h, end),
        FlagOutcome::WhileFailed
    );
    // A flag whose failure comes before the end is judged even when its horizon is not.
    assert_eq!(
        classify_flag(34 * DAY - HOUR, &failures, h, end),
        FlagOutcome::Followed(38 * DAY)
    );
    // After the repair nothing follows before the end, and its horizon runs past it.
    assert_eq!(
        classify_flag(39 * DAY + 13 * HOUR, &failures, h, end),
        FlagOutcome::Censored
    );
    assert_eq!(
        classify_flag(33 * DAY, &[], h, end),
        FlagOutcome::FalseAlarm
    );
    assert_eq!(
        classify_flag(33 * DAY + 1, &[], h, end),
        FlagOutcome::Censored
    );

    let starts = [20 * DAY, 36 * DAY, 39 * DAY + 13 * HOUR];
    let c = score_events(&starts, &failures, h, end);
    assert_eq!(
        (
            c.flags.judged,
            c.flags.followed,
            c.flags.censored,
            c.failures.caught
        ),
        (2, 1, 1, 1)
    );
    // The false-alarm rate is over the judged months, not the observed ones.
    let m = Metrics::from_counts(&c, 1, (4.0 / 3.0, 1.1), "v".into());
    assert_eq!((m.false_alarms, m.flags_censored), (1, 1));
    assert!((m.false_alarms_per_1000_device_months.unwrap() - 1000.0 / 1.1).abs() < 1e-9);
    assert_eq!(m.precision, Some(0.5));

    // episodes.jsonl says the same per flag, and lists the missed failure of a scorer
    // that never flagged.
    let rec = episode_records(
        "model",
        ("wm-1", "washer", "heater"),
        &starts,
        &failures,
        h,
        end,
    );
    let outcomes: Vec<_> = rec.iter().map(|r| (r.event, r.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            ("flag", Some("false_alarm")),
            ("flag", Some("followed")),
            ("flag", Some("censored")),
        ]
    );
    assert_eq!(rec[1].lead_days, Some(2.0));
    let rec = episode_records(
        "baseline",
        ("wm-1", "washer", "heater"),
        &[],
        &failures,
        h,
        end,
    );
    assert_eq!(rec.len(), 1);
    assert_eq!(
        (rec[0].event, rec[0].sudden, rec[0].ts),
        ("missed_failure", Some(false), 38 * DAY)
    );
}

/// Washers whose `drain_time_s` climbs over the 10 days before each drain-pump failure
/// (with E21 faults), plus one dishwasher, a type without a model.
fn write_history(dir: &Path, devices: usize, days: i64, every_h: i64, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut failures: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut events = String::new();
    for d in 0..devices {
        let id = format!("wm-{d:04}");
        let mut list = Vec::new();
        if d % 3 != 2 {
            let mut day = rng.gen_range(14..24);
            while day < days - 3 {
                list.push(T0 + day * DAY + rng.gen_range(0..DAY));
                day += rng.gen_range(25..40);
            }
        }
        for &f in &list {
            test_support::drain_pump_failure(&mut events, &id, f, Some("clog"));
        }
        failures.insert(id, list);
    }
    std::fs::write(dir.join("events.jsonl"), events).unwrap();

    let mut lines = String::new();
    let mut seq = 0u64;
    let noise = |rng: &mut ChaCha8Rng, sd: f64| (rng.gen::<f64>() - 0.5) * 2.0 * sd;
    for step in 0..days * 24 / every_h {
        for (id, fails) in &failures {
            seq += 1;
            let t = T0 + step * every_h * HOUR + rng.gen_range(0..HOUR);
            let (wear, drain) = test_support::drain_time(fails, t, noise(&mut rng, 1.0));
            let _ = writeln!(
                lines,
                r#"{{"device_id":"{id}","msg":"telemetry","ts":"{}","seq":{seq},"type":"washer","model":"WM-500","fw":"2.4.1","readings":{{"motor_current_a":3.4,"vibration_g":0.12,"water_temp_c":40.0,"heat_time_s":900.0,"drain_time_s":{:.2},"fill_time_s":60.0,"supply_voltage_v":230.0}}}}"#,
                Timestamp(t),
                drain.max(0.0),
            );
            if wear > 0.5 && rng.gen_bool(0.3) {
                seq += 1;
                test_support::e21_raised(&mut lines, id, t + 1000, seq);
            }
        }
        if step % 4 == 0 {
            seq += 1;
            let _ = writeln!(
                lines,
                r#"{{"device_id":"dw-0001","msg":"telemetry","ts":"{}","seq":{seq},"type":"dishwasher","model":"DW-450","fw":"3.1.0","readings":{{"wash_temp_c":63.5,"heat_time_s":1500.0,"circulation_pressure_kpa":31.9,"pump_current_a":0.93,"turbidity_ntu":18.1,"drain_time_s":60.8,"fill_time_s":83.7,"cycle_time_min":174.5,"supply_voltage_v":228.5}}}}"#,
                Timestamp(T0 + step * every_h * HOUR),
            );
        }
    }
    std::fs::write(dir.join("telemetry.jsonl"), lines).unwrap();
}

/// A hand-made washer model: drain-pump risk driven by `drain_time_s.last`, flags held
/// 12 hours.
fn handmade() -> ModelArtifact {
    let mut a = crate::tests::handmade("washer-test", 1.0);
    for c in &mut a.components {
        c.hold_ms = 12 * HOUR;
    }
    a
}

fn consistent(m: &Metrics) {
    assert!(m.caught <= m.failures, "{m:?}");
    assert!(
        m.caught_with_precursor <= m.failures_with_precursor,
        "{m:?}"
    );
    assert!(m.failures_before_warm_up <= m.failures, "{m:?}");
    assert_eq!(m.flags, m.flags_followed_by_failure + m.false_alarms);
    for v in [m.precision, m.recall, m.recall_with_precursor, m.f1]
        .into_iter()
        .flatten()
    {
        assert!((0.0..=1.0).contains(&v), "{m:?}");
    }
    assert_eq!(m.lead_time_days_median.is_some(), m.caught > 0);
}

#[test]
fn eval_writes_a_report_and_catches_drifting_failures() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), 9, 70, 6, 3);
    let report_dir = dir.path().join("report");
    let registry = ModelRegistry::from_artifacts([handmade()]);
    let r = super::eval(
        dir.path(),
        &ProfileSet::builtin(),
        registry,
        &EvalParams::default(),
        &report_dir,
    )
    .unwrap();

    let m = &r.model.overall;
    eprintln!("model {m:?}\nbaseline {:?}", r.baseline.overall);
    assert!(m.failures >= 6, "{m:?}");
    assert!(m.caught >= 1, "{m:?}");
    assert_eq!(m.model_version, "washer-test");
    consistent(m);
    consistent(&r.baseline.overall);
    assert_eq!(r.baseline.overall.failures, m.failures);
    assert_eq!(r.baseline.overall.model_version, super::BASELINE_VERSION);
    let by = &r.model.by_component["washer"]["drain_pump"];
    assert_eq!(by.failures, m.failures);
    assert_eq!(r.model.by_type["washer"].devices, 9);
    assert!(m.device_months > 9.0 * 60.0 / 30.0, "{m:?}");
    assert_eq!(r.horizon_ms["washer"], 7 * DAY);
    assert_eq!(r.types_without_model, vec!["dishwasher".to_owned()]);
    let row = &r.row_level["washer"]["drain_pump"];
    assert!(
        row.positive_rows > 0 && row.rows > row.positive_rows,
        "{row:?}"
    );
    assert!(row.average_precision.unwrap() > row.base_rate.unwrap());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(
        json["model"]["overall"]["caught"].as_u64(),
        Some(m.caught),
        "{json}"
    );
    assert!(json["baseline"]["by_component"]["washer"]["drain_pump"]["flags"].is_u64());
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(
        md.contains("F1 winner") && md.contains("drain_pump"),
        "{md}"
    );
    assert!(md.contains("dishwasher"), "{md}");
    for name in ["pr_washer.png", "lead_times.png", "risk_over_time.png"] {
        assert!(r.charts.iter().any(|c| c == name), "{:?}", r.charts);
        let bytes = std::fs::read(report_dir.join(name)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{name}");
    }
}

#[test]
fn charts_without_text_and_with_empty_or_nan_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut curves = BTreeMap::new();
    curves.insert(
        "washer".to_owned(),
        vec![
            ("drain_pump".to_owned(), vec![(0.5, f64::NAN), (1.0, 0.2)]),
            ("heater".to_owned(), Vec::new()),
        ],
    );
    let series = [charts::DeviceSeries {
        label: "wm-1 drain_pump".into(),
        series: Series {
            threshold: f64::NAN,
            points: vec![(T0, f64::NAN), (T0 + DAY, 0.7)],
        },
        failures: vec![T0 + 2 * DAY],
    }];
    for (text, lead) in [(false, vec![f64::NAN, 2.5]), (true, Vec::new())] {
        if text && !charts::font_available() {
            continue;
        }
        let data = charts::ChartData {
            pr_curves: &curves,
            lead_days: &lead,
            series: if text { &[] } else { &series },
            origin_ms: T0,
        };
        let written = charts::draw_all(&data, dir.path(), text).unwrap();
        assert_eq!(written.len(), 3);
    }
}

#[test]
fn predict_returns_the_last_observation_per_device_and_component() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), 4, 12, 6, 5);
    let registry = ModelRegistry::from_artifacts([handmade()]);
    let out = predict(dir.path(), &ProfileSet::builtin(), registry.clone()).unwrap();
    assert_eq!(out.types_without_model, vec!["dishwasher".to_owned()]);
    assert_eq!(out.lines.len(), 4, "one trained component x 4 washers");

    let mut last = BTreeMap::new();
    crate::replay_history(dir.path(), &ProfileSet::builtin(), registry, |_, preds| {
        for p in preds {
            last.insert(
                (p.device_id.as_str().to_owned(), p.component.clone()),
                (p.risk, p.flagged),
            );
        }
    })
    .unwrap();
    for line in &out.lines {
        assert_eq!(line.component, "drain_pump");
        assert_eq!(line.model_version, "washer-test");
        let (risk, flagged) = last[&(line.device_id.clone(), line.component.clone())];
        assert_eq!((line.risk, line.flagged), (risk, flagged));
    }
    let json = serde_json::to_value(&out.lines[0]).unwrap();
    let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "component",
            "device_id",
            "flagged",
            "model_version",
            "risk",
            "threshold",
            "top_features",
            "ts"
        ]
    );

    // No model at all: no lines, both types reported, not an error.
    let out = predict(dir.path(), &ProfileSet::builtin(), ModelRegistry::empty()).unwrap();
    assert!(out.lines.is_empty());
    assert_eq!(out.types_without_model, ["dishwasher", "washer"]);
}
