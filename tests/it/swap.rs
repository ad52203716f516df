//! Live model swap under load: while a steady stream of telemetry is ingested and
//! scored, new model versions are activated, rolled back, and half-written artefacts
//! are put under `ACTIVE`. No message is lost, no reload ever takes a half-written
//! artefact, and every risk record names a version that was fully written and carries
//! that version's threshold.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use domain::Timestamp;
use models::artifact::{self, ModelArtifact, ACTIVE_FILE};
use serde_json::Value;
use simulators::{Fleet, SimEvent};
use tokio::sync::mpsc;

use crate::harness::{
    free_port, metric, scored_fleet_config, trained_models, wait_for, Publisher, Server,
};

const TYPES: [&str; 2] = ["washer", "refrigerator"];
/// A liveness bound for each wait, not a speed target.
const LIVENESS: Duration = Duration::from_secs(90);

/// One telemetry message: device, type, event time, topic, payload.
struct Msg {
    device: String,
    device_type: String,
    ts: i64,
    topic: String,
    payload: Vec<u8>,
}

/// 30 days of telemetry from 6 washers and 6 refrigerators (hourly, the cadence the
/// test model was trained on): about 4,400 messages, each device warm (7 days of
/// event time) after its first week.
fn fleet_telemetry(start: Timestamp) -> Vec<Msg> {
    let profiles = domain::ProfileSet::builtin();
    let mut fleet = Fleet::new(scored_fleet_config(12, 23, start, &TYPES), &profiles).unwrap();
    fleet
        .advance(Timestamp(start.millis() + 30 * Timestamp::DAY_MS))
        .into_iter()
        .filter_map(|e| match e {
            SimEvent::Message(m) if m.topic().ends_with("/telemetry") => Some(Msg {
                device: m.device_id.to_string(),
                device_type: m.payload["type"].as_str().unwrap_or_default().to_owned(),
                ts: m.ts.millis(),
                topic: m.topic(),
                payload: m.payload_bytes(),
            }),
            _ => None,
        })
        .collect()
}

fn copy_models(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            let dir = to.join(entry.file_name());
            std::fs::create_dir_all(&dir).unwrap();
            for file in std::fs::read_dir(entry.path()).unwrap() {
                let file = file.unwrap();
                std::fs::copy(file.path(), dir.join(file.file_name())).unwrap();
            }
        }
    }
}

/// A new version of `base`: every threshold lowered by `k` tenths of a percent (so a
/// risk record's threshold tells which version scored it), renamed after its content
/// like `fixahead train` names versions.
fn variant(base: &ModelArtifact, k: u32) -> ModelArtifact {
    let mut a = base.clone();
    for c in &mut a.components {
        c.threshold *= 1.0 - 0.001 * f64::from(k);
    }
    a.version = format!("{}-swaptest{k}-{}", a.device_type, a.content_hash());
    a
}

async fn active_versions(server: &Server) -> Value {
    server.get("/health").await.1["models"].clone()
}

/// Waits until the server's active version of every type is `want`'s.
async fn wait_active(server: &Server, want: &BTreeMap<&str, String>) {
    wait_for(
        LIVENESS,
        &format!("the server to switch to {want:?}"),
        || async {
            let active = active_versions(server).await;
            want.iter().all(|(t, v)| active[*t] == v.as_str())
        },
    )
    .await;
}

/// Waits until the reload-failure counter exceeds `before`.
async fn wait_reload_failure(server: &Server, before: f64) {
    wait_for(
        LIVENESS,
        "the server to refuse a half-written artefact",
        || async { metric(server, "fixahead_model_reload_failures_total").await > before },
    )
    .await;
}

/// A device's current risk for one component, as the API serves it.
struct Risk {
    device: String,
    device_type: String,
    component: String,
    version: String,
    threshold: f64,
    ts: i64,
}

/// Every risk record of every device (a device not stored yet has none).
async fn risk_records(server: &Server, devices: &BTreeMap<String, String>) -> Vec<Risk> {
    let mut out = Vec::new();
    for (device, device_type) in devices {
        let (status, body) = server.get(&format!("/api/v1/devices/{device}")).await;
        if status == 404 {
            continue;
        }
        assert_eq!(status, 200, "{body}");
        for r in body["risk"].as_array().cloned().unwrap_or_default() {
            out.push(Risk {
                device: device.clone(),
                device_type: device_type.clone(),
                component: r["component"].as_str().unwrap().to_owned(),
                version: r["model_version"].as_str().unwrap().to_owned(),
                threshold: r["threshold"].as_f64().unwrap(),
                ts: Timestamp::parse(r["ts"].as_str().unwrap())
                    .unwrap()
                    .millis(),
            });
        }
    }
    out
}

/// Panics unless every record names a fully written version of its type and carries
/// that version's threshold for its component. Returns the versions named.
fn check_records(records: &[Risk], written: &HashMap<String, ModelArtifact>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for Risk {
        device,
        device_type,
        component,
        version,
        threshold,
        ..
    } in records
    {
        let Some(a) = written.get(version) else {
            panic!("{device} {component} scored by {version}, which was never fully written");
        };
        assert_eq!(&a.device_type, device_type, "{device}: {version}");
        let want = a
            .components
            .iter()
            .find(|c| &c.component == component)
            .unwrap_or_else(|| panic!("{version} has no {component}"))
            .threshold;
        assert!(
            (want - threshold).abs() < 1e-9,
            "{device} {component}: threshold {threshold} is not {version}'s {want}: scored by a mixed or half-loaded model"
        );
        seen.insert(version.clone());
    }
    seen
}

/// The versions of every type: v0 as trained (active at start, in `model_dir`), v1-v3
/// derived from it.
fn model_versions(model_dir: &Path) -> BTreeMap<(&'static str, u32), ModelArtifact> {
    let mut versions = BTreeMap::new();
    for t in TYPES {
        let active = std::fs::read_to_string(model_dir.join(t).join(ACTIVE_FILE)).unwrap();
        let v0 =
            artifact::load(&model_dir.join(t).join(format!("{}.json", active.trim()))).unwrap();
        assert!(
            v0.components.iter().any(|c| c.is_trained()),
            "the test model scores {t}"
        );
        for k in 1..=3 {
            versions.insert((t, k), variant(&v0, k));
        }
        versions.insert((t, 0), v0);
    }
    versions
}

/// Writes half of `washer` (renamed `washer-halfwritten`) by hand, not atomically, and
/// points the washer's `ACTIVE` at it.
fn activate_half_written_washer(model_dir: &Path, washer: &ModelArtifact) {
    let mut broken = washer.clone();
    broken.version = "washer-halfwritten".into();
    let bytes = serde_json::to_vec_pretty(&broken).unwrap();
    let dir = model_dir.join("washer");
    std::fs::write(
        dir.join("washer-halfwritten.json"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    std::fs::write(dir.join(ACTIVE_FILE), "washer-halfwritten\n").unwrap();
}

/// The second half of an artefact file, not written yet.
struct SecondHalf {
    path: std::path::PathBuf,
    bytes: Vec<u8>,
}

impl SecondHalf {
    /// Appends it: the file is whole.
    fn write(self) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .unwrap();
        file.write_all(&self.bytes).unwrap();
    }
}

/// Writes the first half of `a` and points its type's `ACTIVE` at it; returns the rest.
fn activate_first_half(model_dir: &Path, a: &ModelArtifact) -> SecondHalf {
    let bytes = serde_json::to_vec_pretty(a).unwrap();
    let dir = model_dir.join(&a.device_type);
    let path = dir.join(format!("{}.json", a.version));
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(dir.join(ACTIVE_FILE), format!("{}\n", a.version)).unwrap();
    SecondHalf {
        path,
        bytes: bytes[bytes.len() / 2..].to_vec(),
    }
}

/// Nothing lost, nothing dead-lettered, nothing duplicated: the server stored exactly
/// the `n` messages published.
async fn assert_each_message_stored_once(server: &Server, n: usize) {
    assert_eq!(
        metric(server, "fixahead_ingest_stored_total{kind=\"telemetry\"}").await,
        n as f64
    );
    let (_, listed) = server.get("/api/v1/devices?limit=1000").await;
    let stored: u64 = listed["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, n as u64, "{listed:#}");
    assert_eq!(
        metric(server, "fixahead_ingest_dead_letters_total").await,
        0.0
    );
    assert_eq!(
        metric(server, "fixahead_ingest_duplicates_total").await,
        0.0
    );
    let (_, dead) = server.get("/api/v1/dead-letters").await;
    assert_eq!(dead["dead_letters"], serde_json::json!([]), "{dead:#}");
}

/// One step of the swap schedule, run while the stream goes on.
enum Step {
    /// `artifact::save` (write atomically, then activate) variant `k` of every type.
    Save(u32),
    /// `artifact::activate` (a rollback) an already saved version of every type.
    Activate(u32),
    /// Point the washer's `ACTIVE` at a file cut in half (written by hand, not atomically).
    TruncatedWasher,
    /// Write half of the refrigerator's variant `k`, point `ACTIVE` at it, and only
    /// after the server refused it write the rest; save the washer's variant `k`.
    SlowRefrigerator(u32),
}

// One scenario whose steps depend on each other: each swap runs while its segment streams in.
#[tokio::test(flavor = "multi_thread")]
async fn live_model_swaps_under_load_lose_no_message_and_never_use_a_half_written_model() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("models");
    copy_models(trained_models(), &model_dir);
    let config = tmp.path().join("fixahead.toml");
    std::fs::write(&config, "[models]\nreload_interval_s = 1\n").unwrap();

    let versions: BTreeMap<(&str, u32), ModelArtifact> = model_versions(&model_dir);
    let version = |t: &str, k: u32| versions[&(t, k)].version.clone();
    // What may ever score: the versions written in full (never the half-written one).
    let written: HashMap<String, ModelArtifact> = versions
        .values()
        .map(|a| (a.version.clone(), a.clone()))
        .collect();

    let start = Timestamp::parse("2026-09-01T00:00:00Z").unwrap();
    let messages = fleet_telemetry(start);
    let n = messages.len();
    assert!(n > 4_000, "{n} messages");
    let devices: BTreeMap<String, String> = messages
        .iter()
        .map(|m| (m.device.clone(), m.device_type.clone()))
        .collect();
    let last_ts: BTreeMap<String, i64> =
        messages.iter().map(|m| (m.device.clone(), m.ts)).collect();
    assert_eq!(devices.len(), 12, "every device reports");

    let steps = [
        Step::Save(1),
        Step::Save(2),
        Step::TruncatedWasher,
        Step::Activate(0),
        Step::SlowRefrigerator(3),
        Step::Activate(1),
        Step::Activate(2),
    ];
    let final_k = 2;
    // Segment 0 (8 days: every refrigerator warm and scored) goes before any swap;
    // one segment per step while it runs; the last 4 days after the last swap.
    let day = |d: i64| start.millis() + d * Timestamp::DAY_MS;
    let (first_end, last_start) = (day(8), day(26));
    let span = (last_start - first_end) / steps.len() as i64;
    let segment_of = |ts: i64| -> usize {
        if ts < first_end {
            0
        } else if ts >= last_start {
            steps.len() + 1
        } else {
            1 + (((ts - first_end) / span) as usize).min(steps.len() - 1)
        }
    };
    let mut segments: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); steps.len() + 2];
    for m in &messages {
        segments[segment_of(m.ts)].push((m.topic.clone(), m.payload.clone()));
    }
    let last_segment_devices: BTreeSet<&String> = messages
        .iter()
        .filter(|m| m.ts >= last_start)
        .map(|m| &m.device)
        .collect();

    let server = Server::start_with(
        tmp.path(),
        Some(&model_dir),
        free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let initial: BTreeMap<&str, String> = TYPES.iter().map(|t| (*t, version(t, 0))).collect();
    wait_active(&server, &initial).await;

    // The stream: one QoS 1 connection, per-device order kept, segment i released by
    // step i, paced so a segment is still arriving while its swap is being picked up.
    let (go, mut released) = mpsc::unbounded_channel::<usize>();
    let mut publisher = Publisher::connect(server.mqtt_port, "it-swap").await;
    let stream = tokio::spawn(async move {
        while let Some(i) = released.recv().await {
            for (k, (topic, payload)) in segments[i].iter().enumerate() {
                publisher.publish(topic, payload.clone()).await;
                if k % 20 == 19 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            publisher.flush().await;
        }
    });

    // Segment 0, scored by v0 to its last message.
    go.send(0).unwrap();
    let segment0_last: BTreeMap<String, i64> = messages
        .iter()
        .filter(|m| m.ts < first_end)
        .map(|m| (m.device.clone(), m.ts))
        .collect();
    wait_for(LIVENESS, "segment 0 to be scored", || async {
        let records = risk_records(&server, &devices).await;
        devices
            .iter()
            .filter(|(_, t)| *t == "refrigerator")
            .all(|(d, _)| {
                records
                    .iter()
                    .any(|r| &r.device == d && Some(&r.ts) == segment0_last.get(d))
            })
    })
    .await;
    let records = risk_records(&server, &devices).await;
    let mut seen = check_records(&records, &written);
    assert!(
        seen.contains(&version("refrigerator", 0)),
        "segment 0 scored by the initial model: {seen:?}"
    );

    // The swaps, each while its segment streams in.
    let failures_at_start = metric(&server, "fixahead_model_reload_failures_total").await;
    let reloads_at_start = metric(&server, "fixahead_model_reloads_total").await;
    let mut saved: BTreeSet<(&str, u32)> = TYPES.iter().map(|t| (*t, 0)).collect();
    let mut active = initial.clone();
    let mut successful_swaps = 0u32;
    for (i, step) in steps.iter().enumerate() {
        let failures = metric(&server, "fixahead_model_reload_failures_total").await;
        go.send(i + 1).unwrap();
        match *step {
            Step::Save(k) | Step::Activate(k) => {
                for t in TYPES {
                    if saved.insert((t, k)) {
                        artifact::save(&versions[&(t, k)], &model_dir).unwrap();
                    } else {
                        artifact::activate(&model_dir, t, &version(t, k)).unwrap();
                    }
                    active.insert(t, version(t, k));
                }
            }
            Step::TruncatedWasher => {
                activate_half_written_washer(&model_dir, &versions[&("washer", 3)]);
                wait_reload_failure(&server, failures).await;
                assert_eq!(
                    active_versions(&server).await["washer"],
                    active["washer"].as_str(),
                    "a refused reload keeps the model in use"
                );
                // Leave the broken file and ACTIVE in place: the next step replaces ACTIVE.
                continue;
            }
            Step::SlowRefrigerator(k) => {
                let a = &versions[&("refrigerator", k)];
                let rest = activate_first_half(&model_dir, a);
                wait_reload_failure(&server, failures).await;
                assert_eq!(
                    active_versions(&server).await["refrigerator"],
                    active["refrigerator"].as_str(),
                    "a half-written artefact under ACTIVE is not loaded"
                );
                rest.write();
                saved.insert(("refrigerator", k));
                active.insert("refrigerator", a.version.clone());
                saved.insert(("washer", k));
                artifact::save(&versions[&("washer", k)], &model_dir).unwrap();
                active.insert("washer", version("washer", k));
            }
        }
        wait_active(&server, &active).await;
        successful_swaps += 1;
        seen.extend(check_records(
            &risk_records(&server, &devices).await,
            &written,
        ));
    }

    // The last segment, after the last swap is live: all of it scored by the final versions.
    go.send(steps.len() + 1).unwrap();
    drop(go);
    stream.await.expect("the publisher");
    wait_for(LIVENESS, "every message to be stored", || async {
        metric(&server, "fixahead_ingest_stored_total{kind=\"telemetry\"}").await >= n as f64
    })
    .await;
    wait_for(
        LIVENESS,
        "every device's last message to be scored",
        || async {
            let records = risk_records(&server, &devices).await;
            devices.keys().all(|d| {
                let of_device: Vec<_> = records.iter().filter(|r| &r.device == d).collect();
                !of_device.is_empty() && of_device.iter().all(|r| Some(&r.ts) == last_ts.get(d))
            })
        },
    )
    .await;

    assert_each_message_stored_once(&server, n).await;

    // The swaps happened, the half-written artefacts were refused.
    let reloads = metric(&server, "fixahead_model_reloads_total").await - reloads_at_start;
    assert!(
        reloads >= f64::from(successful_swaps),
        "{reloads} reloads for {successful_swaps} swaps"
    );
    assert!(
        metric(&server, "fixahead_model_reload_failures_total").await - failures_at_start >= 2.0
    );

    // Every risk record: a fully written version, with its own threshold; the last
    // messages scored by the final versions.
    let records = risk_records(&server, &devices).await;
    seen.extend(check_records(&records, &written));
    for t in TYPES {
        assert!(
            last_segment_devices.iter().any(|d| devices[*d] == t),
            "a {t} reports after the last swap"
        );
    }
    for r in records
        .iter()
        .filter(|r| last_segment_devices.contains(&r.device))
    {
        assert_eq!(
            r.version,
            version(&r.device_type, final_k),
            "{} {}: scored after the last swap",
            r.device,
            r.component
        );
    }
    for v in [
        version("refrigerator", 0),
        version("refrigerator", final_k),
        version("washer", final_k),
    ] {
        assert!(seen.contains(&v), "risk records named {v}: {seen:?}");
    }
    let (_, tickets) = server.get("/api/v1/tickets?limit=1000").await;
    for ticket in tickets["tickets"].as_array().unwrap() {
        let v = ticket["model_version"].as_str().unwrap();
        assert!(
            written.contains_key(v),
            "ticket by unknown version {v}: {ticket:#}"
        );
    }
    eprintln!(
        "swap: {n} messages, {successful_swaps} swaps, {reloads} reloads, risk records named {seen:?}, {} tickets",
        tickets["tickets"].as_array().map_or(0, Vec::len)
    );
}
