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
