//! The simulator's fault injection and `replay`, end to end through `fixahead run`:
//! every injected bad message becomes a dead letter with the expected reason, and every
//! good message is stored.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{run_cli_json, wait_for, Server};

fn counter(health: &Value, key: &str) -> u64 {
    health["ingest"][key].as_u64().unwrap_or(0)
}

fn dead_letters(health: &Value, reason: &str) -> u64 {
    health["ingest"]["dead_letters"][reason]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_become_dead_letters_and_good_messages_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    // The simulated fleet runs 200,000x faster than the clock: its times are days ahead.
    let server = Server::start_with(
        dir.path(),
        None,
        crate::harness::free_port(),
        &["--max-future-skew", "off"],
    )
    .await;
    let url = format!("mqtt://127.0.0.1:{}", server.mqtt_port);
    let summary = run_cli_json(&[
        "simulate", "--mqtt-url", &url, "--devices", "25", "--speed", "200000", "--duration", "4", "--seed", "9",
        "--inject",
        "malformed_json=0.02,wrong_type=0.02,out_of_range=0.02,oversized=0.01,duplicate=0.03,out_of_order=0.03,clock_skew=0.2,offline_gap=0.1,burst=0.02",
    ]);
    let injected = &summary["injected"];
    let good = summary["good"].as_u64().expect("summary.good");
    assert!(good > 500, "a meaningful amount of traffic: {summary:#}");
    for kind in [
        "malformed_json",
        "wrong_type",
        "out_of_range",
        "oversized",
        "duplicate",
    ] {
        assert!(
            injected[kind].as_u64().unwrap_or(0) > 0,
            "no {kind} was injected: {summary:#}"
        );
    }

    let expected = [
        (
            "malformed_json",
            injected["malformed_json"].as_u64().unwrap(),
        ),
        ("wrong_type", injected["wrong_type"].as_u64().unwrap()),
        ("out_of_range", injected["out_of_range"].as_u64().unwrap()),
        ("payload_too_large", injected["oversized"].as_u64().unwrap()),
    ];
    // fixahead acknowledges a message only after committing it (or its dead letter):
    // once it has acknowledged everything the simulator published, all is settled.
    let published = summary["published"].as_u64().expect("summary.published");
    wait_for(
        Duration::from_secs(60),
        "fixahead to commit and acknowledge every published message",
        || async { counter(&server.get("/health").await.1, "acked") >= published },
    )
    .await;
    let (_, health) = server.get("/health").await;
    assert_eq!(counter(&health, "acked"), published, "{health:#}");
    assert_eq!(
        counter(&health, "stored_telemetry") + counter(&health, "stored_faults"),
        good,
        "every good message stored exactly once: {health:#} vs {summary:#}"
    );
    for (reason, n) in expected {
        assert_eq!(
            dead_letters(&health, reason),
            n,
            "dead letters for {reason}: {health:#}"
        );
    }
    let all_dead: u64 = health["ingest"]["dead_letters"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    assert_eq!(
        all_dead,
        expected.iter().map(|(_, n)| n).sum::<u64>(),
        "no other rejections: {health:#}"
    );
    assert_eq!(
        counter(&health, "duplicates"),
        injected["duplicate"].as_u64().unwrap(),
        "every injected duplicate was recognised: {health:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_the_example_history_stores_every_line() {
    let history = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/history");
    let lines = std::fs::read_to_string(format!("{history}/telemetry.jsonl"))
        .expect("examples/history/telemetry.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None).await;
    let url = format!("mqtt://127.0.0.1:{}", server.mqtt_port);
    let summary = run_cli_json(&["replay", history, "--mqtt-url", &url, "--speed", "max"]);
    assert_eq!(summary["published"].as_u64(), Some(lines), "{summary:#}");
    wait_for(
        Duration::from_secs(60),
        "every replayed line to be stored",
        || async {
            let (_, h) = server.get("/health").await;
            counter(&h, "stored_telemetry") + counter(&h, "stored_faults") >= lines
        },
    )
    .await;
    let (_, health) = server.get("/health").await;
    assert_eq!(
        counter(&health, "stored_telemetry") + counter(&health, "stored_faults"),
        lines,
        "{health:#}"
    );
    assert!(
        health["ingest"]["dead_letters"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "{health:#}"
    );
    let (_, devices) = server.get("/api/v1/devices?limit=1000").await;
    let replayed_devices = std::fs::read_to_string(format!("{history}/devices.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(
        devices["devices"].as_array().map_or(0, Vec::len),
        replayed_devices,
        "{devices:#}"
    );
}
