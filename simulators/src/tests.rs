//! Whole-crate tests: determinism, wire validity, physics and ground truth.

use std::collections::HashMap;

use domain::{Message, ProfileSet, Timestamp};

use crate::device::DAY_MS;
use crate::{
    write_history, Fleet, FleetConfig, GroundTruthEvent, GroundTruthKind, SimEvent, WireMessage,
};

fn run(config: FleetConfig, days: i64) -> Vec<SimEvent> {
    let mut fleet = Fleet::new(config, &ProfileSet::builtin()).expect("valid fleet");
    let end = Timestamp(fleet.config().start.millis() + days * DAY_MS);
    fleet.advance(end)
}

fn truths(events: &[SimEvent]) -> Vec<&GroundTruthEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            SimEvent::GroundTruth(g) => Some(g),
            SimEvent::Message(_) => None,
        })
        .collect()
}

fn messages(events: &[SimEvent]) -> Vec<&WireMessage> {
    events
        .iter()
        .filter_map(|e| match e {
            SimEvent::Message(m) => Some(m),
            SimEvent::GroundTruth(_) => None,
        })
        .collect()
}

fn reading(m: &WireMessage, channel: &str) -> Option<f64> {
    m.payload.get("readings")?.get(channel)?.as_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A config that exercises every path quickly: frequent failures, early degradation.
fn busy_config() -> FleetConfig {
    FleetConfig {
        devices: 24,
        seed: 7,
        failure_rate_per_year: 6.0,
        early_degradation_share: 0.3,
        refrigerator_interval_s: 1800,
        ..FleetConfig::default()
    }
}

#[test]
fn same_seed_gives_identical_history_files_and_other_seeds_differ() {
    let config = FleetConfig {
        devices: 12,
        ..busy_config()
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let seeds = [7, 7, 8];
    let mut summaries = Vec::new();
    for (dir, seed) in dirs.iter().zip(seeds) {
        let c = FleetConfig {
            seed,
            ..config.clone()
        };
        summaries.push(write_history(dir.path(), c, &ProfileSet::builtin(), 20 * DAY_MS).unwrap());
    }
    assert_eq!(summaries[0], summaries[1]);
    assert!(summaries[0].messages > 0 && summaries[0].devices == 12);
    for file in ["telemetry.jsonl", "events.jsonl", "devices.jsonl"] {
        let read = |i: usize| std::fs::read(dirs[i].path().join(file)).unwrap();
        assert_eq!(
            read(0),
            read(1),
            "{file} differs between runs with the same seed"
        );
        assert_ne!(read(0), read(2), "{file} is the same for another seed");
    }
}

#[test]
fn output_does_not_depend_on_how_time_is_advanced() {
    let config = busy_config();
    let whole = run(config.clone(), 6);
    let mut fleet = Fleet::new(config, &ProfileSet::builtin()).unwrap();
    let start = fleet.config().start.millis();
    let mut pieces = Vec::new();
    let mut t = start;
    while t < start + 6 * DAY_MS {
        t += 7 * 60_000 + 13; // odd steps, like a live ticker
        pieces.extend(fleet.advance(Timestamp(t.min(start + 6 * DAY_MS))));
    }
    assert_eq!(whole.len(), pieces.len());
    if let Some(i) = (0..whole.len()).find(|&i| whole[i] != pieces[i]) {
        panic!("event {i} differs:\n{:?}\n{:?}", whole[i], pieces[i]);
    }
}

#[test]
fn every_message_decodes_in_order_with_consecutive_seq() {
    let profiles = ProfileSet::builtin();
    let events = run(busy_config(), 30);
    let msgs = messages(&events);
    assert!(msgs.len() > 1000, "{} messages", msgs.len());
    let mut last: HashMap<String, (u64, Timestamp)> = HashMap::new();
    let mut fault_states: HashMap<(String, String), String> = HashMap::new();
    let mut prev_ts = Timestamp(i64::MIN);
    for m in msgs {
        assert!(m.ts >= prev_ts, "global order");
        prev_ts = m.ts;
        let decoded = domain::decode(&m.topic(), &m.payload_bytes(), &profiles)
            .unwrap_or_else(|r| panic!("{r}: {}", m.payload));
        assert_eq!(decoded.device_id(), &m.device_id);
        assert_eq!(decoded.ts(), Some(m.ts));
        let (seq, dev_type) = match &decoded {
            Message::Telemetry(t) => {
                let profile = profiles.get(&t.device_type).unwrap();
                assert_eq!(
                    t.readings.len(),
                    profile.channels().len(),
                    "all channels sent"
                );
                for (name, x) in &t.readings {
                    let ch = &profile.channels()[profile.channel_index(name).unwrap()];
                    assert!(*x >= ch.min && *x <= ch.max, "{name}={x}");
                }
                (t.seq, t.device_type.clone())
            }
            Message::Fault(f) => {
                let key = (f.device_id.to_string(), f.code.clone());
                let state = f.state.as_str().to_owned();
                let before = fault_states.insert(key, state.clone());
                let expected_before = if state == "raised" {
                    "cleared"
                } else {
                    "raised"
                };
                assert_eq!(
                    before.as_deref().unwrap_or("cleared"),
                    expected_before,
                    "{} {} {state} twice in a row",
                    f.device_id,
                    f.code
                );
                (f.seq, f.device_type.clone())
            }
            Message::Status(_) => panic!("the fleet does not emit status"),
        };
        assert!(m
            .device_id
            .as_str()
            .starts_with(if dev_type == "washer" { "wm-" } else { "rf-" }));
        let entry = last
            .entry(m.device_id.to_string())
            .or_insert((0, Timestamp(0)));
        assert_eq!(seq, entry.0 + 1, "seq of {}", m.device_id);
        assert!(m.ts >= entry.1);
        *entry = (seq, m.ts);
    }
    assert_eq!(last.len(), 24, "every device reported");
}

#[test]
fn failures_are_repaired_one_to_four_days_later() {
    let config = busy_config();
    let days = 60;
    let end = config.start.millis() + days * DAY_MS;
    let events = run(config, days);
    let truth = truths(&events);
    let failures: Vec<_> = truth
        .iter()
        .filter(|g| g.event == GroundTruthKind::Failure)
        .collect();
    assert!(failures.len() >= 10, "{} failures", failures.len());
    let mut modes = std::collections::BTreeSet::new();
    for f in &failures {
        modes.insert(f.mode.as_str());
        let repair = truth.iter().find(|g| {
            g.event == GroundTruthKind::Repair
                && g.device_id == f.device_id
                && g.component == f.component
                && g.ts > f.ts
        });
        match repair {
            Some(r) => {
                assert_eq!(r.mode, f.mode);
                let days = (r.ts.millis() - f.ts.millis()) as f64 / DAY_MS as f64;
                assert!((1.0..=4.0).contains(&days), "repair after {days} days");
            }
            None => assert!(end - f.ts.millis() < 4 * DAY_MS, "{f:?} never repaired"),
        }
    }
    assert!(modes.contains("sudden"), "{modes:?}");
    assert!(
        modes.contains("clog") || modes.contains("compressor_wear"),
        "{modes:?}"
    );
}

#[test]
fn drain_time_rises_before_a_clog_failure() {
    let config = FleetConfig {
        devices: 120,
        seed: 3,
        kinds: vec!["washer".into()],
        sudden_failure_share: 0.0,
        failure_rate_per_year: 3.0,
        ..FleetConfig::default()
    };
    let start = config.start.millis();
    let events = run(config, 120);
    let msgs = messages(&events);
    let truth = truths(&events);
    let mut checked = 0;
    for f in &truth {
        if f.mode != "clog"
            || f.event != GroundTruthKind::Failure
            || f.ts.millis() < start + 40 * DAY_MS
        {
            continue;
        }
        // Skip pumps that failed and were repaired shortly before: their baseline
        // window would hold the earlier precursor.
        let recent_repair = truth.iter().any(|g| {
            g.device_id == f.device_id
                && g.component == f.component
                && g.ts < f.ts
                && f.ts.millis() - g.ts.millis() < 45 * DAY_MS
        });
        if recent_repair {
            continue;
        }
        let drains = |from: i64, to: i64| -> Vec<f64> {
            msgs.iter()
                .filter(|m| {
                    m.device_id == f.device_id && m.ts.millis() >= from && m.ts.millis() < to
                })
                .filter_map(|m| reading(m, "drain_time_s"))
                .collect()
        };
        let t = f.ts.millis();
        // The precursor lasts at most 25 days; before that the pump is healthy (unless a
        // repair of an earlier failure falls into the window, which `min` keeps short).
        let baseline = drains(t - 40 * DAY_MS, t - 26 * DAY_MS);
        let before = drains(t - 3 * DAY_MS, t);
        if baseline.len() < 3 || before.is_empty() {
            continue;
        }
        let (b, p) = (median(baseline), median(before));
        assert!(
            p > 1.8 * b,
            "{}: drain {p:.1}s before the clog vs {b:.1}s baseline",
            f.device_id
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} clog failures to check");
}

#[test]
fn compressor_duty_creeps_up_before_a_compressor_failure() {
    let config = FleetConfig {
        devices: 60,
        seed: 5,
        kinds: vec!["refrigerator".into()],
        sudden_failure_share: 0.0,
        failure_rate_per_year: 3.0,
        refrigerator_interval_s: 3600,
        ..FleetConfig::default()
    };
    let start = config.start.millis();
    let events = run(config, 90);
    let msgs = messages(&events);
    let truth = truths(&events);
    let mut checked = 0;
    for f in &truth {
        if f.mode != "compressor_wear"
            || f.event != GroundTruthKind::Failure
            || f.ts.millis() < start + 40 * DAY_MS
        {
            continue;
        }
        let recent_repair = truth.iter().any(|g| {
            g.device_id == f.device_id
                && g.component == f.component
                && g.ts < f.ts
                && f.ts.millis() - g.ts.millis() < 45 * DAY_MS
        });
        if recent_repair {
            continue;
        }
        let series = |channel: &str, from: i64, to: i64| -> Vec<f64> {
            msgs.iter()
                .filter(|m| {
                    m.device_id == f.device_id && m.ts.millis() >= from && m.ts.millis() < to
                })
                .filter_map(|m| reading(m, channel))
                .collect()
        };
        let t = f.ts.millis();
        let duty_base = median(series("compressor_duty", t - 38 * DAY_MS, t - 31 * DAY_MS));
        let duty_late = median(series("compressor_duty", t - DAY_MS, t));
        let amps_base = median(series(
            "compressor_current_a",
            t - 38 * DAY_MS,
            t - 31 * DAY_MS,
        ));
        let amps_late = median(series("compressor_current_a", t - DAY_MS, t));
        assert!(
            duty_late > duty_base + 0.2,
            "{}: duty {duty_base:.2} -> {duty_late:.2}",
            f.device_id
        );
        assert!(
            amps_late > amps_base * 1.3,
            "{}: current {amps_base:.2} -> {amps_late:.2}",
            f.device_id
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} compressor failures to check");
}

#[test]
fn a_default_fleet_over_half_a_year_has_plenty_of_failures() {
    // 200 devices for 180 days, as the demo and training use; refrigerators report
    // every 6 hours here to keep the debug-mode test fast (the failure process does not
    // depend on the reporting interval).
    let config = FleetConfig {
        refrigerator_interval_s: 6 * 3600,
        ..FleetConfig::default()
    };
    let events = run(config, 180);
    let truth = truths(&events);
    let failures = truth
        .iter()
        .filter(|g| g.event == GroundTruthKind::Failure)
        .count();
    assert!(failures >= 60, "{failures} failures");
    let sudden = truth
        .iter()
        .filter(|g| g.event == GroundTruthKind::Failure && g.mode == "sudden")
        .count();
    assert!(
        sudden > 0 && sudden < failures / 2,
        "{sudden} of {failures} sudden"
    );
}

#[test]
fn early_degradation_fails_within_the_first_ten_days() {
    let config = FleetConfig {
        devices: 40,
        failure_rate_per_year: 0.0,
        early_degradation_share: 0.5,
        refrigerator_interval_s: 3600,
        ..FleetConfig::default()
    };
    let events = run(config, 12);
    let failures: Vec<_> = truths(&events)
        .into_iter()
        .filter(|g| g.event == GroundTruthKind::Failure)
        .collect();
    // About half the devices; washers fail at their first program after the due time.
    assert!(failures.len() >= 10, "{} early failures", failures.len());
    assert!(failures.iter().all(|f| f.mode != "sudden"));
}

#[test]
fn devices_are_named_and_described() {
    let fleet = Fleet::new(
        FleetConfig {
            devices: 4,
            ..FleetConfig::default()
        },
        &ProfileSet::builtin(),
    )
    .unwrap();
    let devices = fleet.devices();
    let ids: Vec<_> = devices.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(ids, ["wm-0001", "rf-0002", "wm-0003", "rf-0004"]);
    for d in &devices {
        assert!(
            d.batch.starts_with('B') && d.batch.len() == 8,
            "{}",
            d.batch
        );
        assert!(d.installed_at < fleet.config().start);
        let line = serde_json::to_value(d).unwrap();
        assert_eq!(line["type"], d.device_type.as_str());
        assert!(line["installed_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(
        FleetConfig::DEFAULT_START.to_rfc3339(),
        "2026-01-01T00:00:00.000Z"
    );
}

#[test]
fn unknown_kinds_and_incomplete_profiles_are_errors() {
    let err = Fleet::new(
        FleetConfig {
            kinds: vec!["toaster".into()],
            ..FleetConfig::default()
        },
        &ProfileSet::builtin(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("toaster"), "{err}");
    let err = Fleet::new(FleetConfig::default(), &ProfileSet::default()).unwrap_err();
    assert!(matches!(err, crate::Error::MissingProfile(_)), "{err}");
}

#[test]
fn history_lines_carry_device_and_message_kind() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_history(
        dir.path(),
        busy_config(),
        &ProfileSet::builtin(),
        10 * DAY_MS,
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("telemetry.jsonl")).unwrap();
    let profiles = ProfileSet::builtin();
    let mut lines = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["device_id"].as_str().unwrap();
        let msg = v["msg"].as_str().unwrap();
        let topic = format!("fixahead/v1/{id}/{msg}");
        domain::decode(&topic, line.as_bytes(), &profiles).unwrap();
        lines += 1;
    }
    assert_eq!(lines, summary.messages);
    assert_eq!(summary.telemetry + summary.faults, summary.messages);
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    for line in events.lines() {
        let e: GroundTruthEvent = serde_json::from_str(line).unwrap();
        assert!(e.ts.millis() >= summary.start.millis());
    }
    assert_eq!(
        events.lines().count() as u64,
        summary.failures + summary.repairs
    );
    assert!(summary.failures > 0);
}

#[test]
fn history_lines_are_the_published_payloads() {
    let config = FleetConfig {
        devices: 6,
        ..busy_config()
    };
    let dir = tempfile::tempdir().unwrap();
    write_history(
        dir.path(),
        config.clone(),
        &ProfileSet::builtin(),
        5 * DAY_MS,
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("telemetry.jsonl")).unwrap();
    let events = run(config, 5);
    let msgs = messages(&events);
    assert_eq!(text.lines().count(), msgs.len());
    for (line, m) in text.lines().zip(msgs) {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object_mut().unwrap();
        assert_eq!(obj.remove("device_id").unwrap(), m.device_id.as_str());
        assert_eq!(obj.remove("msg").unwrap(), m.kind.as_str());
        assert_eq!(v, m.payload);
    }
}
