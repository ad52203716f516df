//! Bad input is dead-lettered with a reason and never blocks good input.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{telemetry, wait_for, Publisher, Server};

#[tokio::test(flavor = "multi_thread")]
async fn each_bad_message_gets_its_reason_and_the_next_valid_one_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None).await;
    let mut p = Publisher::connect(server.mqtt_port, "it-dead").await;
    let topic = "fixahead/v1/wm-dl/telemetry";
    let ts = 1_795_500_000_000i64;
    p.publish(topic, r#"{"ts": 1795500000000, "seq": 1, "type": "washer""#)
        .await;
    p.publish(topic, telemetry(2, ts, r#"{"vibration_g": NaN}"#))
        .await;
    p.publish(topic, r#"{"ts": 1795500000000, "seq": "three", "type": "washer", "model": "WM-500", "readings": {"vibration_g": 0.1}}"#).await;
    p.publish(
        topic,
        r#"{"device_id": "wm-other", "ts": 1795500000000, "seq": 4, "type": "washer", "model": "WM-500", "readings": {"vibration_g": 0.1}}"#,
    )
    .await;
    p.publish(
        topic,
        telemetry(5, ts, r#"{"vibration_g": 0.15, "drain_time_s": 14.0}"#),
    )
    .await;
    p.flush().await;

    wait_for(
        Duration::from_secs(30),
        "the valid message to be stored",
        || async {
            server.get("/api/v1/devices/wm-dl/telemetry").await.1["telemetry"]
                .as_array()
                .is_some_and(|t| t.len() == 1 && t[0]["seq"] == 5)
        },
    )
    .await;
    let (status, body) = server.get("/api/v1/dead-letters?limit=50").await;
    assert_eq!(status, 200);
    let letters = body["dead_letters"].as_array().unwrap();
    let reasons: BTreeSet<&str> = letters
        .iter()
        .filter_map(|d| d["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from([
            "malformed_json",
            "non_finite_reading",
            "wrong_type",
            "device_mismatch"
        ]),
        "{body:#}"
    );
    for d in letters {
        assert_eq!(d["topic"], topic);
        assert!(d["detail"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(d["payload"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let (_, metrics) = server.get("/metrics").await;
    let text = metrics.as_str().unwrap_or_default();
    assert!(
        text.contains("fixahead_ingest_dead_letters_total{reason=\"non_finite_reading\"} 1"),
        "the rejection is counted: {text}"
    );
}

/// The value of an unlabelled counter, or the sum of a labelled one's series.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tiny_max_rows_keeps_the_newest_dead_letters_while_metrics_count_all() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fixahead.toml");
    std::fs::write(&config, "[dead_letters]\nmax_rows = 3\nmax_age = \"30d\"\n").unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        None,
        crate::harness::free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let mut p = Publisher::connect(server.mqtt_port, "it-dead-retention").await;
    let topic = "fixahead/v1/wm-dr/telemetry";
    let bad = |seq: u64| format!(r#"{{"ts": 1795500000000, "seq": {seq}, "type": "washer""#);
    let metrics = || async {
        let (_, body) = server.get("/metrics").await;
        let text = body.as_str().unwrap_or_default().to_owned();
        (
            metric(&text, "fixahead_ingest_dead_letters_total"),
            metric(&text, "fixahead_dead_letters_pruned_total"),
        )
    };
    let kept = || async {
        let (status, body) = server.get("/api/v1/dead-letters?limit=1000").await;
        assert_eq!(status, 200);
        body["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };

    for seq in 1..=10 {
        p.publish(topic, bad(seq)).await;
    }
    p.flush().await;
    wait_for(Duration::from_secs(30), "10 rejections counted", || async {
        metrics().await.0 == 10
    })
    .await;
    // Pruning runs at most every 2 s, so rows beyond max_rows may linger until a later
    // commit, but what is kept and what was pruned always add up.
    let (_, pruned) = metrics().await;
    assert_eq!(kept().await.len() as u64 + pruned, 10);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    p.publish(topic, bad(11)).await;
    p.flush().await;
    wait_for(Duration::from_secs(30), "the 11th rejection", || async {
        metrics().await.0 == 11
    })
    .await;
    assert_eq!(kept().await, [11, 10, 9], "the newest max_rows rows");
    assert_eq!(
        metrics().await,
        (11, 8),
        "every rejection counted, 8 rows pruned"
    );
}
