//! Stop and start on the same data directory: nothing acknowledged is lost, nothing is
//! stored twice, and no ticket is duplicated.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{free_port, trained_models, wait_for, Publisher, Server};
use crate::pipeline::{scenario, telemetry_count};

fn count(body: &Value, key: &str) -> usize {
    body[key].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_acknowledged_data_and_does_not_duplicate_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let s = scenario();
    let tickets_path = format!(
        "/api/v1/tickets?device_id={}&component={}",
        s.failing_id, s.failing_component
    );

    // Phase 1: publish until a ticket is open, then stop cleanly.
    let mut server = Server::start_with(dir.path(), Some(trained_models()), mqtt_port, &[]).await;
    let mut publisher = Publisher::connect(mqtt_port, "it-restart").await;
    let half = s.failing_messages.len() * 3 / 4;
    for (topic, payload) in &s.failing_messages[..half] {
        publisher.publish(topic, payload.clone()).await;
    }
    publisher.flush().await;
    let expected_first = telemetry_count(&s.failing_messages[..half]);
    wait_for(
        Duration::from_secs(60),
        "phase 1 telemetry to be stored",
        || async { server.stored_telemetry(&s.failing_id).await == expected_first },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tickets_before = count(&server.get(&tickets_path).await.1, "tickets");
    drop(publisher);
    let status = server.stop();
    assert!(status.success(), "clean shutdown: {status}");

    // Phase 2: same data dir. Everything is still there.
    let server = Server::start_with(dir.path(), Some(trained_models()), mqtt_port, &[]).await;
    assert_eq!(server.stored_telemetry(&s.failing_id).await, expected_first);
    assert_eq!(
        count(&server.get(&tickets_path).await.1, "tickets"),
        tickets_before
    );

    // Redeliver everything (as a device that never saw its acks would), plus the rest.
    let mut publisher = Publisher::connect(mqtt_port, "it-restart").await;
    for (topic, payload) in &s.failing_messages {
        publisher.publish(topic, payload.clone()).await;
    }
    publisher.flush().await;
    let expected_all = telemetry_count(&s.failing_messages);
    wait_for(
        Duration::from_secs(60),
        "all telemetry to be stored",
        || async { server.stored_telemetry(&s.failing_id).await == expected_all },
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "a ticket for the degrading device",
        || async { count(&server.get(&tickets_path).await.1, "tickets") >= 1 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, tickets) = server.get(&tickets_path).await;
    assert_eq!(
        count(&tickets, "tickets"),
        1,
        "one ticket for the failing component across the restart: {tickets:#}"
    );
    let (_, health) = server.get("/health").await;
    assert_eq!(
        health["ingest"]["duplicates"].as_u64(),
        Some(s.failing_messages[..half].len() as u64),
        "every redelivered message was recognised as a duplicate: {health:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_server_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), None).await;
    // Let the ingestor connect and settle into waiting for broker traffic.
    wait_for(
        Duration::from_secs(30),
        "the ingestor to connect",
        || async { server.get("/health").await.1["ingest"]["connects"].as_u64() == Some(1) },
    )
    .await;
    let status = server.stop();
    assert!(status.success(), "clean shutdown: {status}");
}
