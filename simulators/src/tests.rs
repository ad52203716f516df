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

/// The `mode` failures at least 40 days into a run that started at `start`, less those
/// whose component failed or was repaired in the 45 days before: their baseline window
/// would hold the earlier precursor.
fn precursor_failures<'a>(
    truth: &'a [&'a GroundTruthEvent],
    mode: &'a str,
    start: i64,
) -> impl Iterator<Item = &'a GroundTruthEvent> + 'a {
    truth.iter().copied().filter(move |f| {
        let recent_repair = truth.iter().any(|g| {
            g.device_id == f.device_id
                && g.component == f.component
                && g.ts < f.ts
                && f.ts.millis() - g.ts.millis() < 45 * DAY_MS
        });
        f.mode == mode
            && f.event == GroundTruthKind::Failure
            && f.ts.millis() >= start + 40 * DAY_MS
            && !recent_repair
    })
}

/// `channel` of the failed device's messages from `from` (inclusive) to `to`.
fn series(
    msgs: &[&WireMessage],
    f: &GroundTruthEvent,
    channel: &str,
    from: i64,
    to: i64,
) -> Vec<f64> {
    msgs.iter()
        .filter(|m| m.device_id == f.device_id && m.ts.millis() >= from && m.ts.millis() < to)
        .filter_map(|m| reading(m, channel))
        .collect()
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
    let mut kinds_seen = std::collections::BTreeSet::new();
    for m in msgs {
        assert!(m.ts >= prev_ts, "global order");
        prev_ts = m.ts;
        let decoded = domain::decode(&m.topic(), &m.payload_bytes(), &profiles)
            .unwrap_or_else(|r| panic!("{r}: {}", m.payload));
        assert_eq!(decoded.device_id(), &m.device_id);
        assert_eq!(decoded.ts(), Some(m.ts));
        let (seq, dev_type) = match &decoded {
            Message::Telemetry(t) => {
                let profile = profiles.get(&t.device.device_type).unwrap();
                // A sensor dropout or a firmware quirk may leave out a channel or two.
                assert!(
                    t.readings.len() + 2 >= profile.channels().len(),
                    "channels sent: {}",
                    m.payload
                );
                for (name, x) in &t.readings {
                    let ch = &profile.channels()[profile.channel_index(name).unwrap()];
                    assert!(*x >= ch.min && *x <= ch.max, "{name}={x}");
                }
                (t.seq, t.device.device_type.clone())
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
                (f.seq, f.device.device_type.clone())
            }
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => {
                panic!("the fleet emits telemetry and faults only")
            }
        };
        let prefix = match dev_type.as_str() {
            "washer" => "wm-",
            "dishwasher" => "dw-",
            "refrigerator" => "rf-",
            "air_conditioner" => "ac-",
            "water_heater" => "wh-",
            other => panic!("unexpected type {other}"),
        };
        assert!(m.device_id.as_str().starts_with(prefix), "{}", m.device_id);
        kinds_seen.insert(dev_type.clone());
        let entry = last
            .entry(m.device_id.to_string())
            .or_insert((0, Timestamp(0)));
        assert_eq!(seq, entry.0 + 1, "seq of {}", m.device_id);
        assert!(m.ts >= entry.1);
        *entry = (seq, m.ts);
    }
    assert_eq!(last.len(), 24, "every device reported");
    assert_eq!(kinds_seen.len(), 5, "{kinds_seen:?}");
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
    for f in precursor_failures(&truth, "clog", start) {
        let drains = |from: i64, to: i64| series(&msgs, f, "drain_time_s", from, to);
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
    for f in precursor_failures(&truth, "compressor_wear", start) {
        let series = |channel: &str, from: i64, to: i64| series(&msgs, f, channel, from, to);
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
            devices: 6,
            ..FleetConfig::default()
        },
        &ProfileSet::builtin(),
    )
    .unwrap();
    let devices = fleet.devices();
    let ids: Vec<_> = devices.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(
        ids,
        ["wm-0001", "dw-0002", "rf-0003", "ac-0004", "wh-0005", "wm-0006"]
    );
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
    // The file is ordered per device (not globally): match lines by (device, seq).
    let mut published: HashMap<(String, u64), &WireMessage> = msgs
        .iter()
        .map(|m| ((m.device_id.to_string(), m.seq()), *m))
        .collect();
    let devices: HashMap<String, crate::DeviceInfo> =
        read_jsonl::<crate::DeviceInfo>(&dir.path().join("devices.jsonl"))
            .into_iter()
            .map(|d| (d.device_id.to_string(), d))
            .collect();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object_mut().unwrap();
        let id = obj
            .remove("device_id")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        let msg = obj.remove("msg").unwrap();
        // Published with the device's batch and region, which the line leaves to
        // devices.jsonl.
        assert!(!obj.contains_key("batch") && !obj.contains_key("region"));
        obj.insert("batch".into(), devices[&id].batch.clone().into());
        obj.insert("region".into(), devices[&id].region.clone().into());
        let seq = v["seq"].as_u64().unwrap();
        let before = last_seq.insert(id.clone(), seq).unwrap_or(0);
        assert_eq!(seq, before + 1, "{id}: lines in per-device order");
        let m = published.remove(&(id, seq)).expect("a published message");
        assert_eq!(msg, m.kind.as_str());
        assert_eq!(v, m.payload);
    }
    assert!(published.is_empty());
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn ground_truth_matches_devices_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let config = FleetConfig {
        devices: 40,
        ..busy_config()
    };
    let summary = write_history(dir.path(), config, &ProfileSet::builtin(), 45 * DAY_MS).unwrap();
    let devices: Vec<crate::DeviceInfo> = read_jsonl(&dir.path().join("devices.jsonl"));
    let events: Vec<GroundTruthEvent> = read_jsonl(&dir.path().join("events.jsonl"));
    assert!(summary.failures >= 20, "{summary:?}");
    let profiles = ProfileSet::builtin();
    let types: HashMap<String, String> = devices
        .iter()
        .map(|d| (d.device_id.to_string(), d.device_type.clone()))
        .collect();
    let mut open: HashMap<(String, String), &GroundTruthEvent> = HashMap::new();
    let mut prev = Timestamp(i64::MIN);
    for e in &events {
        assert!(e.ts >= prev, "events.jsonl is in time order");
        prev = e.ts;
        let device_type = types
            .get(e.device_id.as_str())
            .expect("device in devices.jsonl");
        let profile = profiles.get(device_type).unwrap();
        assert!(
            profile.component(&e.component).is_some(),
            "{} has no component {}",
            device_type,
            e.component
        );
        let key = (e.device_id.to_string(), e.component.clone());
        match e.event {
            GroundTruthKind::Failure => {
                assert!(open.insert(key, e).is_none(), "failed twice: {e:?}");
            }
            GroundTruthKind::Repair => {
                let failure = open.remove(&key).expect("a repair follows a failure");
                assert_eq!(failure.mode, e.mode);
                assert!(failure.ts < e.ts);
            }
        }
    }
    // Whatever is still open failed within the last four days.
    for f in open.values() {
        assert!(summary.end.millis() - f.ts.millis() < 4 * DAY_MS, "{f:?}");
    }
}

#[test]
fn a_defective_batch_fails_several_times_as_often() {
    let base = FleetConfig {
        devices: 1200,
        seed: 11,
        kinds: vec!["washer".into(), "dishwasher".into()],
        failure_rate_per_year: 0.5,
        ..FleetConfig::default()
    };
    let profiles = ProfileSet::builtin();
    // The biggest batch of the fleet is the defective one.
    let probe = Fleet::new(base.clone(), &profiles).unwrap();
    let infos = probe.devices();
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for d in &infos {
        *sizes.entry(d.batch.as_str()).or_default() += 1;
    }
    let (batch, size) = sizes
        .iter()
        .max_by_key(|(b, n)| (**n, std::cmp::Reverse(**b)))
        .map(|(b, n)| (b.to_string(), *n))
        .unwrap();
    assert!(probe.batches().contains(&batch));
    let config = FleetConfig {
        defective_batch: Some(crate::DefectiveBatch::new(batch.clone())),
        ..base
    };
    let days = 180;
    let events = run(config, days);
    let in_batch: std::collections::HashSet<&str> = infos
        .iter()
        .filter(|d| d.batch == batch)
        .map(|d| d.device_id.as_str())
        .collect();
    let (mut hit, mut rest) = (0.0_f64, 0.0_f64);
    for g in truths(&events) {
        if g.event == GroundTruthKind::Failure {
            if in_batch.contains(g.device_id.as_str()) {
                hit += 1.0;
            } else {
                rest += 1.0;
            }
        }
    }
    let years = days as f64 / 365.25;
    let rate_batch = hit / (size as f64 * years);
    let rate_rest = rest / ((infos.len() - size) as f64 * years);
    let ratio = rate_batch / rate_rest;
    // Poisson test: under "same rate", the batch would expect `expected` failures.
    let expected = rate_rest * size as f64 * years;
    let z = (hit - expected) / expected.sqrt();
    assert!(
        hit >= 20.0,
        "only {hit} failures in batch {batch} ({size} devices)"
    );
    assert!(
        ratio > 3.0 && z > 5.0,
        "batch {batch}: {rate_batch:.2} vs {rate_rest:.2} failures per device-year \
         (ratio {ratio:.1}, z {z:.1})"
    );

    let err = Fleet::new(
        FleetConfig {
            devices: 10,
            defective_batch: Some(crate::DefectiveBatch::new("B1999-01")),
            ..FleetConfig::default()
        },
        &profiles,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("B1999-01") && err.contains("batches are: B"),
        "{err}"
    );
    let err = Fleet::new(
        FleetConfig {
            devices: 10,
            defective_batch: Some(crate::DefectiveBatch {
                component: Some("flux_capacitor".into()),
                ..crate::DefectiveBatch::new(batch)
            }),
            ..FleetConfig::default()
        },
        &profiles,
    );
    // The batch may not exist among 10 devices; either way the error names the problem.
    let err = err.unwrap_err().to_string();
    assert!(err.contains("defective batch"), "{err}");
}

/// A statistic of one telemetry message (None: the message says nothing about it).
type Stat = fn(&WireMessage) -> Option<f64>;

/// For every progressive failure of `kind`, the median of `stat` over the five days
/// before it, compared with the same statistic of healthy devices of the same kind and
/// model over the same days. Returns, per mode, (failures checked, share beyond the
/// healthy 90th percentile in the precursor's direction); sudden failures are checked
/// against the statistic of their component's progressive mode.
fn precursor_shares(
    kind: &str,
    seed: u64,
    modes: &[(&str, &str, Stat, f64)],
) -> HashMap<String, (usize, f64)> {
    let config = FleetConfig {
        // Many air conditioners stay off in winter: more of them to see enough failures.
        devices: if kind == "air_conditioner" { 300 } else { 150 },
        seed,
        kinds: vec![kind.into()],
        failure_rate_per_year: 2.0,
        sudden_failure_share: 0.4,
        refrigerator_interval_s: 3600,
        ..FleetConfig::default()
    };
    let start = config.start.millis();
    let fleet = Fleet::new(config.clone(), &ProfileSet::builtin()).unwrap();
    let model: HashMap<String, String> = fleet
        .devices()
        .into_iter()
        .map(|d| (d.device_id.to_string(), d.model))
        .collect();
    let events = run(config, 90);
    let msgs = messages(&events);
    let truth = truths(&events);
    let mut by_device: HashMap<&str, Vec<&WireMessage>> = HashMap::new();
    for m in &msgs {
        by_device.entry(m.device_id.as_str()).or_default().push(m);
    }
    let window = 5 * DAY_MS;
    let quiet = |device: &str, from: i64, to: i64| {
        !truth
            .iter()
            .any(|g| g.device_id.as_str() == device && g.ts.millis() >= from && g.ts.millis() < to)
    };
    let stat_of = |device: &str, stat: Stat, from: i64, to: i64| -> Option<f64> {
        let xs: Vec<f64> = by_device
            .get(device)?
            .iter()
            .filter(|m| m.ts.millis() >= from && m.ts.millis() < to)
            .filter_map(|m| stat(m))
            .collect();
        (!xs.is_empty()).then(|| median(xs))
    };
    let mut out: HashMap<String, (usize, usize)> = HashMap::new();
    for f in &truth {
        let t = f.ts.millis();
        if f.event != GroundTruthKind::Failure || t < start + 35 * DAY_MS {
            continue;
        }
        let Some(&(_, mode, stat, sign)) = modes.iter().find(|m| m.0 == f.component) else {
            continue;
        };
        // Nothing else happened to the device in the month before.
        if !quiet(f.device_id.as_str(), t - 30 * DAY_MS, t) {
            continue;
        }
        let Some(x) = stat_of(f.device_id.as_str(), stat, t - window, t) else {
            continue;
        };
        let my_model = &model[f.device_id.as_str()];
        let mut healthy: Vec<f64> = by_device
            .keys()
            .filter(|d| &model[**d] == my_model && quiet(d, t - 45 * DAY_MS, t + 45 * DAY_MS))
            .filter_map(|d| stat_of(d, stat, t - window, t))
            .map(|v| sign * v)
            .collect();
        if healthy.len() < 10 {
            continue;
        }
        healthy.sort_by(f64::total_cmp);
        let p90 = healthy[healthy.len() * 9 / 10];
        let key = if f.mode == "sudden" {
            "sudden".to_owned()
        } else {
            assert_eq!(f.mode, mode);
            f.mode.clone()
        };
        let e = out.entry(key).or_default();
        e.0 += 1;
        if sign * x > p90 {
            e.1 += 1;
        }
    }
    out.into_iter()
        .map(|(k, (n, beyond))| (k, (n, beyond as f64 / n as f64)))
        .collect()
}

fn check_precursors(kind: &str, seed: u64, modes: &[(&str, &str, Stat, f64)]) {
    let shares = precursor_shares(kind, seed, modes);
    eprintln!("{kind}: {shares:?}");
    for (_, mode, _, _) in modes {
        let &(n, share) = shares
            .get(*mode)
            .unwrap_or_else(|| panic!("{kind}: no {mode} failure to check: {shares:?}"));
        assert!(n >= 3, "{kind} {mode}: only {n} failures checked");
        assert!(
            share >= 0.6,
            "{kind} {mode}: only {share:.2} of {n} failures beyond the healthy p90"
        );
    }
    let &(n, share) = shares
        .get("sudden")
        .unwrap_or_else(|| panic!("{kind}: no sudden failure to check: {shares:?}"));
    assert!(n >= 4, "{kind}: only {n} sudden failures checked");
    assert!(
        share <= 0.35,
        "{kind}: {share:.2} of {n} sudden failures look like a precursor"
    );
}

fn r(m: &WireMessage, channel: &str) -> Option<f64> {
    reading(m, channel)
}

/// Heat time per kelvin above a typical inlet: program temperatures differ a lot.
fn heat_per_k(m: &WireMessage, temp: &str) -> Option<f64> {
    let t = r(m, temp)?;
    (t > 25.0).then_some(r(m, "heat_time_s")? / (t - 10.0))
}

#[test]
fn washer_precursors_show_before_failures() {
    check_precursors(
        "washer",
        21,
        &[
            ("drain_pump", "clog", |m| r(m, "drain_time_s"), 1.0),
            (
                "motor_bearing",
                "bearing_wear",
                |m| r(m, "vibration_g"),
                1.0,
            ),
            (
                "heater",
                "heater_wear",
                |m| heat_per_k(m, "water_temp_c"),
                1.0,
            ),
        ],
    );
}

#[test]
fn dishwasher_precursors_show_before_failures() {
    check_precursors(
        "dishwasher",
        22,
        &[
            ("drain_pump", "clog", |m| r(m, "drain_time_s"), 1.0),
            (
                "circulation_pump",
                "impeller_wear",
                |m| r(m, "circulation_pressure_kpa"),
                -1.0,
            ),
            (
                "heater",
                "heater_wear",
                |m| heat_per_k(m, "wash_temp_c"),
                1.0,
            ),
        ],
    );
}

#[test]
fn refrigerator_precursors_show_before_failures() {
    check_precursors(
        "refrigerator",
        23,
        &[
            (
                "compressor",
                "compressor_wear",
                |m| r(m, "compressor_current_a"),
                1.0,
            ),
            (
                "defrost_system",
                "defrost_wear",
                |m| r(m, "defrost_time_min"),
                1.0,
            ),
        ],
    );
}

/// A reading of an air conditioner whose compressor is running.
fn running(m: &WireMessage, channel: &str) -> Option<f64> {
    (r(m, "compressor_hz")? > 20.0)
        .then(|| r(m, channel))
        .flatten()
}

#[test]
fn air_conditioner_precursors_show_before_failures() {
    // Seed 26 since compressors and fans wear with use: with seed 24 the reshuffled
    // failures left one refrigerant leak with a quiet month before it to check.
    check_precursors(
        "air_conditioner",
        26,
        &[
            (
                "refrigerant_circuit",
                "refrigerant_leak",
                |m| Some(running(m, "discharge_temp_c")? - r(m, "indoor_coil_temp_c")?),
                1.0,
            ),
            (
                "compressor",
                "compressor_wear",
                |m| Some(running(m, "compressor_current_a")? / r(m, "compressor_hz")?),
                1.0,
            ),
            (
                "outdoor_fan",
                "fan_bearing_wear",
                |m| running(m, "outdoor_fan_rpm"),
                -1.0,
            ),
        ],
    );
}

#[test]
fn water_heater_precursors_show_before_failures() {
    check_precursors(
        "water_heater",
        25,
        &[
            (
                "heating_element",
                "element_degradation",
                |m| r(m, "element_current_a").filter(|&a| a > 0.0),
                -1.0,
            ),
            (
                "thermostat",
                "thermostat_drift",
                |m| r(m, "max_tank_temp_c"),
                1.0,
            ),
        ],
    );
}

#[test]
fn confounders_and_firmware_change_readings_without_failures() {
    let config = FleetConfig {
        devices: 60,
        seed: 9,
        failure_rate_per_year: 0.0,
        sensor_fault_share: 1.0,
        poor_installation_share: 0.5,
        refrigerator_interval_s: 3600,
        ..FleetConfig::default()
    };
    let fleet = Fleet::new(config.clone(), &ProfileSet::builtin()).unwrap();
    let infos = fleet.devices();
    let events = run(config, 90);
    assert!(truths(&events).is_empty(), "no failures without wear");
    let msgs = messages(&events);
    let profiles = ProfileSet::builtin();
    let mut checked = [0; 3];
    for info in &infos {
        let fault = info.sensor_fault.as_ref().expect("every device has one");
        let mine: Vec<_> = msgs
            .iter()
            .filter(|m| m.device_id == info.device_id && m.payload.get("readings").is_some())
            .collect();
        let (inside, outside): (Vec<&WireMessage>, Vec<&WireMessage>) = mine
            .into_iter()
            .partition(|m| m.ts >= fault.from && m.ts < fault.to);
        if inside.len() < 3 {
            continue;
        }
        let values: Vec<Option<f64>> = inside.iter().map(|m| reading(m, &fault.channel)).collect();
        let profile = profiles.get(&info.device_type).unwrap();
        let ch = &profile.channels()[profile.channel_index(&fault.channel).unwrap()];
        match fault.kind {
            crate::SensorFaultKind::Dropout => {
                assert!(values.iter().all(Option::is_none), "{info:?}");
                checked[0] += 1;
            }
            crate::SensorFaultKind::Stuck => {
                assert!(values.windows(2).all(|w| w[0] == w[1]), "{info:?}");
                checked[1] += 1;
            }
            crate::SensorFaultKind::Spike => {
                for x in values.iter().flatten() {
                    assert!(*x >= ch.min && *x <= ch.max);
                }
                checked[2] += 1;
            }
        }
        // Outside the episode the channel is sent (unless the firmware omits it).
        let omitted = info.fw == "4.2.1" && fault.channel == "indoor_coil_temp_c";
        if !omitted {
            assert!(outside.iter().all(|m| reading(m, &fault.channel).is_some()));
        }
    }
    assert!(checked.iter().all(|&n| n >= 2), "{checked:?}");

    // Firmware: washer 2.6.3 rounds drain time to 10 s; AC 4.2.1 omits the coil sensor.
    let fw_of: HashMap<&str, &str> = infos
        .iter()
        .map(|d| (d.device_id.as_str(), d.fw.as_str()))
        .collect();
    let mut quirks = [0, 0];
    for m in &msgs {
        let fw = fw_of[m.device_id.as_str()];
        if let (Some(x), "2.6.3") = (reading(m, "drain_time_s"), fw) {
            assert_eq!(x % 10.0, 0.0, "{}", m.payload);
            quirks[0] += 1;
        }
        if fw == "4.2.1" && m.payload.get("readings").is_some() {
            assert!(reading(m, "indoor_coil_temp_c").is_none());
            quirks[1] += 1;
        }
    }
    assert!(quirks.iter().all(|&n| n > 0), "{quirks:?}");

    // A sagging drain hose slows every drain from day one, without a failure.
    let drain = |installation: &str| -> f64 {
        let ids: Vec<_> = infos
            .iter()
            .filter(|d| d.device_type == "washer" && d.installation == installation)
            .filter(|d| {
                d.sensor_fault
                    .as_ref()
                    .is_none_or(|f| f.channel != "drain_time_s")
            })
            .map(|d| d.device_id.clone())
            .collect();
        median(
            msgs.iter()
                .filter(|m| ids.contains(&m.device_id))
                .filter_map(|m| reading(m, "drain_time_s"))
                .collect(),
        )
    };
    let (ok, sagging) = (drain("ok"), drain("sagging_drain_hose"));
    assert!(
        sagging > 1.3 * ok,
        "drain {sagging} s with a sagging hose vs {ok} s"
    );
}

#[test]
fn air_conditioners_cool_in_summer_and_heat_in_winter() {
    let mean_coil = |start: Timestamp| -> f64 {
        let config = FleetConfig {
            devices: 40,
            kinds: vec!["air_conditioner".into()],
            start,
            sensor_fault_share: 0.0,
            ..FleetConfig::default()
        };
        let events = run(config, 5);
        let xs: Vec<f64> = messages(&events)
            .iter()
            .filter_map(|m| running(m, "indoor_coil_temp_c"))
            .collect();
        assert!(xs.len() > 100, "{} running readings", xs.len());
        median(xs)
    };
    let winter = mean_coil(FleetConfig::DEFAULT_START);
    let summer = mean_coil(Timestamp(
        FleetConfig::DEFAULT_START.millis() + 196 * DAY_MS,
    ));
    assert!(
        winter > 30.0 && summer < 15.0,
        "coil {winter} in January, {summer} in July"
    );
}
