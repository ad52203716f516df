//! Train/serve parity, end to end: the live pipeline and the offline replay of the same
//! history give the same scores.
//!
//! One small simulated history is (a) replayed over MQTT into `fixahead run` with a
//! trained model and (b) read by `fixahead predict` with the same model directory. For
//! every device and component, the current risk the live pipeline recorded
//! (`GET /api/v1/devices/{id}`) must equal predict's line: `risk`, `threshold`,
//! `flagged`, `model_version`, `warming_up`, `ts` and every `top_features` entry
//! (feature, value, contribution, normal range), and the two must cover exactly the
//! same pairs.
//!
//! The replay publishes as fast as the broker takes it, so the broker holds a device's
//! telemetry and fault messages at the same time: the test also checks that ingest
//! scores each device's messages in the order it sent them, across its topics (the
//! feature engine drops a message older than one already applied).
//!
//! Why not the full feature vector: the live pipeline keeps it only in memory (the
//! `Scorer`'s `DeviceState`) and records the risk with its top features; exposing every
//! device's vector over the API would mean wiring the scorer's state into `api`, which
//! by design does not know models, for a view no planner or engineer asked for. The
//! comparison above is nearly as strong: the risk is a function of the whole vector, so
//! any feature that differs and matters to the model moves it, and the top features'
//! values are raw feature values compared one by one. `fixahead predict --features`
//! prints the full vector for offline debugging; this test checks that its values agree
//! with the top features it reports.
//!
//! Exactness: the same code computes both sides from the same messages, so `risk` and
//! `threshold` must be bit-identical (SQLite stores an f64 as is, and both reach this test
//! as the shortest JSON text of that f64). The top features travel through one more
//! JSON round trip in the ticket store, and serde_json's default float parser is not
//! guaranteed to round correctly, so their numbers are compared to 1e-12 relative.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{free_port, run_cli, trained_models, wait_for, Server};

/// (device id, component)
type Pair = (String, String);

/// Simulates the history both sides read: 12 devices (washers, refrigerators and, with
/// no model, dishwashers) over 14 days, so most are past the 7-day warm-up and scored;
/// half start with a degrading component, so some risks are high.
fn simulate(history: &Path) {
    run_cli(&[
        "simulate",
        "--out",
        history.to_str().unwrap(),
        "--devices",
        "12",
        "--days",
        "14",
        "--seed",
        "3",
        "--start",
        "2026-09-01T00:00:00Z",
        "--refrigerator-interval",
        "3600",
        "--early-degradation",
        "0.5",
        "--kinds",
        "washer,refrigerator,dishwasher",
    ]);
}

/// Copies the (shared) trained model directory, so that another test that activates a
/// new version there cannot make the two sides of this test use different models.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn parse_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn pair_of(v: &Value) -> Pair {
    (
        v["device_id"].as_str().expect("device_id").to_owned(),
        v["component"].as_str().expect("component").to_owned(),
    )
}

fn millis(ts: &Value) -> i64 {
    let s = ts
        .as_str()
        .unwrap_or_else(|| panic!("ts is not a string: {ts}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("ts {s:?} is not RFC 3339: {e}"))
        .timestamp_millis()
}

fn health_counter(health: &Value, key: &str) -> u64 {
    health["ingest"][key].as_u64().unwrap_or(0)
}

/// The live pipeline's current risk for every (device, component), from the public API.
async fn live_risk(server: &Server) -> BTreeMap<Pair, Value> {
    let (status, list) = server.get("/api/v1/devices?limit=1000").await;
    assert_eq!(status, 200, "{list:#}");
    let mut out = BTreeMap::new();
    for device in list["devices"].as_array().expect("devices") {
        let id = device["device_id"].as_str().expect("device_id");
        let (status, detail) = server.get(&format!("/api/v1/devices/{id}")).await;
        assert_eq!(status, 200, "{detail:#}");
        for r in detail["risk"].as_array().expect("risk") {
            out.insert(pair_of(r), r.clone());
        }
    }
    out
}

/// Whether two JSON numbers agree to 1e-12 relative (see the module documentation).
fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

fn same_contribution(a: &Value, b: &Value) -> bool {
    let range = |v: &Value| -> Vec<Value> {
        v["normal_range"]
            .as_array()
            .cloned()
            .unwrap_or_else(Vec::new)
    };
    let (ra, rb) = (range(a), range(b));
    a["feature"] == b["feature"]
        && close(&a["value"], &b["value"])
        && close(&a["contribution"], &b["contribution"])
        && ra.len() == rb.len()
        && ra.iter().zip(&rb).all(|(x, y)| close(x, y))
}

/// Every difference between the offline and the live view, one line each.
fn differences(offline: &BTreeMap<Pair, Value>, live: &BTreeMap<Pair, Value>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (pair, o) in offline {
        let Some(l) = live.get(pair) else {
            diffs.push(format!("{pair:?}: predicted offline, no current risk live"));
            continue;
        };
        for key in ["risk", "threshold"] {
            // Exact: see the module documentation.
            if o[key].as_f64().is_none() || o[key].as_f64() != l[key].as_f64() {
                diffs.push(format!(
                    "{pair:?}: {key} offline {} live {}",
                    o[key], l[key]
                ));
            }
        }
        for key in ["flagged", "model_version", "warming_up"] {
            if o[key] != l[key] {
                diffs.push(format!(
                    "{pair:?}: {key} offline {} live {}",
                    o[key], l[key]
                ));
            }
        }
        if millis(&o["ts"]) != millis(&l["ts"]) {
            diffs.push(format!("{pair:?}: ts offline {} live {}", o["ts"], l["ts"]));
        }
        let (ot, lt) = (
            o["top_features"].as_array().cloned().unwrap_or_default(),
            l["top_features"].as_array().cloned().unwrap_or_default(),
        );
        if ot.len() != lt.len() || !ot.iter().zip(&lt).all(|(a, b)| same_contribution(a, b)) {
            diffs.push(format!(
                "{pair:?}: top_features offline {} live {}",
                o["top_features"], l["top_features"]
            ));
        }
    }
    for pair in live.keys().filter(|p| !offline.contains_key(*p)) {
        diffs.push(format!(
            "{pair:?}: current risk live, no prediction offline"
        ));
    }
    diffs
}

#[tokio::test(flavor = "multi_thread")]
async fn live_pipeline_and_offline_predict_give_the_same_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history");
    let models = tmp.path().join("models");
    simulate(&history);
    copy_dir(trained_models(), &models);
    let (h, m) = (history.to_str().unwrap(), models.to_str().unwrap());
    let lines = std::fs::read_to_string(history.join("telemetry.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;

    // Offline: with and without the full feature vectors.
    let plain = parse_lines(&run_cli(&["predict", "--history", h, "--model", m]));
    let with_features = parse_lines(&run_cli(&[
        "predict",
        "--history",
        h,
        "--model",
        m,
        "--features",
    ]));
    assert_eq!(plain.len(), with_features.len());
    for (p, f) in plain.iter().zip(&with_features) {
        assert!(p.get("features").is_none(), "features only on request: {p}");
        let features = f["features"].as_object().unwrap_or_else(|| panic!("{f}"));
        let mut stripped = f.clone();
        stripped.as_object_mut().unwrap().remove("features");
        assert_eq!(p, &stripped, "--features only adds the vector");
        for c in p["top_features"].as_array().expect("top_features") {
            let name = c["feature"].as_str().expect("feature");
            assert!(
                close(&features[name], &c["value"]),
                "top feature {name} = {} but the vector says {}",
                c["value"],
                features[name]
            );
        }
    }
    let offline: BTreeMap<Pair, Value> = plain.into_iter().map(|l| (pair_of(&l), l)).collect();
    let prefixes: BTreeSet<&str> = offline
        .keys()
        .map(|(d, _)| d.split('-').next().unwrap_or(""))
        .collect();
    assert_eq!(
        prefixes,
        BTreeSet::from(["rf", "wm"]),
        "washers and refrigerators are scored, dishwashers (no model) are not: {:?}",
        offline.keys()
    );

    // Live: the same history, over MQTT, into a fresh pipeline with the same models. The
    // history is dated in the past; the skew check is off so the host's clock cannot
    // reject it.
    let server = Server::start_with(
        &tmp.path().join("data"),
        Some(&models),
        free_port(),
        &["--max-future-skew", "off"],
    )
    .await;
    let url = format!("mqtt://127.0.0.1:{}", server.mqtt_port);
    let summary: Value = serde_json::from_str(&run_cli(&[
        "replay",
        h,
        "--mqtt-url",
        &url,
        "--speed",
        "max",
    ]))
    .expect("replay prints a JSON summary");
    assert_eq!(summary["published"].as_u64(), Some(lines), "{summary:#}");

    // fixahead acknowledges a message only once it is committed (stored or a dead letter).
    wait_for(
        Duration::from_secs(120),
        "every replayed line to be committed and acknowledged",
        || async { health_counter(&server.get("/health").await.1, "acked") >= lines },
    )
    .await;
    let (_, health) = server.get("/health").await;
    assert_eq!(
        health_counter(&health, "stored_telemetry") + health_counter(&health, "stored_faults"),
        lines,
        "every line stored once, none rejected: {health:#}"
    );

    // Scoring runs after storing: wait until every pair's live score has reached the
    // event time of predict's (a liveness bound; the values are compared below).
    wait_for(
        Duration::from_secs(120),
        "the live pipeline to score every device up to its last observation",
        || async {
            let live = live_risk(&server).await;
            offline.iter().all(|(pair, o)| {
                live.get(pair)
                    .is_some_and(|l| millis(&l["ts"]) >= millis(&o["ts"]))
            })
        },
    )
    .await;
    // A device's last messages can share one event time (a fault code sent with a
    // reading), so the same `ts` may still be followed by one more score: allow it to
    // land before comparing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut live = live_risk(&server).await;
    while !differences(&offline, &live).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        live = live_risk(&server).await;
    }
    let diffs = differences(&offline, &live);
    assert!(
        diffs.is_empty(),
        "live and offline scores differ ({} differences over {} offline and {} live pairs):\n{}",
        diffs.len(),
        offline.len(),
        live.len(),
        diffs.join("\n")
    );

    let devices_of = |prefix: &str| {
        live.keys()
            .filter(|(d, _)| d.starts_with(prefix))
            .map(|(d, _)| d)
            .collect::<BTreeSet<_>>()
            .len()
    };
    assert!(
        devices_of("wm-") >= 2 && devices_of("rf-") >= 2,
        "several washers and refrigerators compared: {:?}",
        live.keys()
    );
    assert!(live.len() >= 8, "{} pairs compared", live.len());
    let (_, list) = server.get("/api/v1/devices?limit=1000").await;
    assert_eq!(
        list["devices"].as_array().map_or(0, Vec::len),
        12,
        "every device registered, dishwashers too (they have no risk on either side)"
    );
}
