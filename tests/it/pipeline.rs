//! The whole pipeline over the embedded broker: a degrading appliance gets exactly one
//! ticket for the right component, a healthy one gets none, telemetry is readable.

use std::time::Duration;

use domain::Timestamp;
use serde_json::Value;
use simulators::{Fleet, FleetConfig, SimEvent};

use crate::harness::{scored_fleet_config, telemetry, trained_models, wait_for, Publisher, Server};

/// A simulated device whose first failure has precursors, with its messages up to a
/// little after that failure.
pub(crate) struct Scenario {
    pub(crate) failing_id: String,
    pub(crate) failing_component: String,
    pub(crate) failing_messages: Vec<(String, Vec<u8>)>,
    pub(crate) healthy_id: String,
    pub(crate) healthy_messages: Vec<(String, Vec<u8>)>,
}

/// Builds the scenario from the simulator: fleet A fails often (no sudden failures),
/// and the scenario follows its first progressive failure that comes after at least
/// three weeks of history (a device is not scored in its first week, see
/// `models::features::WARM_UP_MS`). Fleet B never fails. Fleet B's messages are
/// republished under another id so the two fleets' ids do not collide. Both report at
/// the cadence the test model was trained on (refrigerators hourly).
pub(crate) fn scenario() -> Scenario {
    let start = Timestamp::parse("2026-09-01T00:00:00Z").unwrap();
    let profiles = domain::ProfileSet::builtin();
    let mut degrading = Fleet::new(
        FleetConfig {
            sudden_failure_share: 0.0,
            failure_rate_per_year: 4.0,
            early_degradation_share: 0.0,
            ..scored_fleet_config(8, 5, start, &["washer", "refrigerator"])
        },
        &profiles,
    )
    .unwrap();
    let events = degrading.advance(Timestamp(start.millis() + 90 * Timestamp::DAY_MS));
    let earliest = start.millis() + 21 * Timestamp::DAY_MS;
    let failure = events
        .iter()
        .find_map(|e| match e {
            SimEvent::GroundTruth(g)
                if format!("{:?}", g.event).to_lowercase() == "failure"
                    && g.mode != "sudden"
                    && g.ts.millis() >= earliest =>
            {
                Some(g.clone())
            }
            _ => None,
        })
        .expect("the degrading fleet has a failure with precursors");
    let failing_id = failure.device_id.to_string();
    // Up to 12 hours after the failure: the flag should come before it, but a ticket
    // may legitimately still be open right after.
    let until = failure.ts.millis() + 12 * Timestamp::HOUR_MS;
    let failing_messages = events
        .iter()
        .filter_map(|e| match e {
            SimEvent::Message(m)
                if m.device_id.as_str() == failing_id && m.ts.millis() <= until =>
            {
                Some((m.topic(), m.payload_bytes()))
            }
            _ => None,
        })
        .collect::<Vec<_>>();

    let mut healthy = Fleet::new(
        FleetConfig {
            failure_rate_per_year: 0.0,
            early_degradation_share: 0.0,
            ..scored_fleet_config(2, 6, start, &["washer", "refrigerator"])
        },
        &profiles,
    )
    .unwrap();
    // The same kind as the failing device, so both are scored by the same model.
    let kind_prefix = &failing_id[..2];
    let healthy_source = healthy
        .devices()
        .into_iter()
        .find(|d| d.device_id.as_str().starts_with(kind_prefix))
        .expect("a healthy device of the same kind")
        .device_id
        .to_string();
    let healthy_id = format!("healthy-{healthy_source}");
    let healthy_messages = healthy
        .advance(Timestamp(start.millis() + 45 * Timestamp::DAY_MS))
        .into_iter()
        .filter_map(|e| match e {
            SimEvent::Message(m) if m.device_id.as_str() == healthy_source => Some((
                m.topic().replace(&healthy_source, &healthy_id),
                m.payload_bytes(),
            )),
            _ => None,
        })
        .collect();
    Scenario {
        failing_id,
        failing_component: failure.component.clone(),
        failing_messages,
        healthy_id,
        healthy_messages,
    }
}

/// How many of `messages` are telemetry.
pub(crate) fn telemetry_count(messages: &[(String, Vec<u8>)]) -> usize {
    messages
        .iter()
        .filter(|(t, _)| t.ends_with("/telemetry"))
        .count()
}

fn tickets_for(body: &Value) -> Vec<Value> {
    body["tickets"].as_array().cloned().unwrap_or_default()
}

/// Publishes the scenario and checks tickets and telemetry. Shared with the Mosquitto
/// variant.
pub(crate) async fn run_scenario(server: &Server, publish_port: u16) {
    let s = scenario();
    let mut publisher = Publisher::connect(publish_port, "it-devices").await;
    // Interleave the two devices as a real fleet would.
    let mut healthy = s.healthy_messages.iter();
    for (topic, payload) in &s.failing_messages {
        publisher.publish(topic, payload.clone()).await;
        if let Some((t, p)) = healthy.next() {
            publisher.publish(t, p.clone()).await;
        }
    }
    for (t, p) in healthy {
        publisher.publish(t, p.clone()).await;
    }
    publisher.flush().await;

    let failing_telemetry = telemetry_count(&s.failing_messages);
    let healthy_telemetry = telemetry_count(&s.healthy_messages);
    wait_for(
        Duration::from_secs(60),
        "all telemetry to be stored",
        || async { server.stored_telemetry(&s.failing_id).await == failing_telemetry },
    )
    .await;
    wait_for(
        Duration::from_secs(60),
        "the healthy device's telemetry to be stored",
        || async { server.stored_telemetry(&s.healthy_id).await == healthy_telemetry },
    )
    .await;

    // One ticket for the failing component, however often its flag was raised. Other
    // components of the same device may be flagged too (a failing defrost system makes
    // the compressor work harder); they get their own tickets and are printed below.
    let path = format!(
        "/api/v1/tickets?device_id={}&component={}",
        s.failing_id, s.failing_component
    );
    wait_for(
        Duration::from_secs(30),
        "a ticket for the failing component",
        || async { !tickets_for(&server.get(&path).await.1).is_empty() },
    )
    .await;
    // Scoring runs behind storage; give it a moment to process everything.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tickets = tickets_for(&server.get(&path).await.1);
    assert_eq!(
        tickets.len(),
        1,
        "exactly one ticket for the failing component: {tickets:#?}"
    );
    let all_device_tickets = tickets_for(
        &server
            .get(&format!("/api/v1/tickets?device_id={}", s.failing_id))
            .await
            .1,
    );
    for t in &all_device_tickets {
        eprintln!(
            "scenario: ticket for {} {} (risk {:.3}, {} flags)",
            t["device_id"],
            t["component"],
            t["risk"].as_f64().unwrap_or(0.0),
            t["signals"]
        );
    }
    let ticket = &tickets[0];
    eprintln!(
        "scenario: {} ({} messages) failed {}; ticket {} priority {} risk {:.2} after {} flags; healthy {} ({} messages)",
        s.failing_id,
        s.failing_messages.len(),
        s.failing_component,
        ticket["number"],
        ticket["priority"],
        ticket["risk"].as_f64().unwrap_or(0.0),
        ticket["signals"],
        s.healthy_id,
        s.healthy_messages.len()
    );
    assert_eq!(
        ticket["component"],
        s.failing_component.as_str(),
        "{ticket:#}"
    );
    assert!(
        ticket["signals"].as_u64().unwrap_or(0) > 1,
        "the flag was raised more than once and folded into the one ticket: {ticket:#}"
    );
    let number = ticket["number"].as_str().unwrap_or_default();
    assert!(
        number.len() >= 12 && number.chars().all(|c| c.is_ascii_digit()),
        "date+sequence number: {number}"
    );
    assert!(ticket["model_version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));

    let (status, detail) = server
        .get(&format!("/api/v1/tickets/{}", ticket["id"]))
        .await;
    assert_eq!(status, 200);
    assert!(
        detail["diagnosis"]["top_features"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "the ticket explains itself: {detail:#}"
    );

    let (_, healthy_tickets) = server
        .get(&format!("/api/v1/tickets?device_id={}", s.healthy_id))
        .await;
    assert!(
        tickets_for(&healthy_tickets).is_empty(),
        "healthy device got a ticket: {healthy_tickets:#}"
    );

    let (status, device) = server
        .get(&format!("/api/v1/devices/{}", s.failing_id))
        .await;
    assert_eq!(status, 200);
    assert!(
        device["risk"].as_array().is_some_and(|r| !r.is_empty()),
        "current risk per component: {device:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn degrading_device_gets_exactly_one_ticket_and_healthy_none() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(trained_models())).await;
    run_scenario(&server, server.mqtt_port).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_message_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None).await;
    let mut publisher = Publisher::connect(server.mqtt_port, "it-dup").await;
    let payload = telemetry(7, 1_795_500_000_000, r#"{"vibration_g": 0.2}"#);
    publisher
        .publish("fixahead/v1/wm-dup/telemetry", payload.clone())
        .await;
    publisher
        .publish("fixahead/v1/wm-dup/telemetry", payload)
        .await;
    // A different seq after them proves both earlier ones were processed.
    publisher
        .publish(
            "fixahead/v1/wm-dup/telemetry",
            telemetry(8, 1_795_500_060_000, r#"{"vibration_g": 0.3}"#),
        )
        .await;
    publisher.flush().await;
    wait_for(Duration::from_secs(30), "seq 8 to be stored", || async {
        server.get("/api/v1/devices/wm-dup/telemetry").await.1["telemetry"]
            .as_array()
            .is_some_and(|t| t.iter().any(|r| r["seq"] == 8))
    })
    .await;
    let (_, body) = server.get("/api/v1/devices/wm-dup/telemetry").await;
    let seqs: Vec<u64> = body["telemetry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .collect();
    assert_eq!(seqs, vec![7, 8]);
    let (_, device) = server.get("/api/v1/devices/wm-dup").await;
    assert_eq!(device["messages"], 2, "{device:#}");
    let (_, health) = server.get("/health").await;
    assert_eq!(health["ingest"]["duplicates"], 1, "{health:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_rejects_bad_requests_with_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None).await;
    for (path, want) in [
        ("/api/v1/tickets?limit=abc", 400),
        ("/api/v1/tickets?colour=red", 400),
        ("/api/v1/tickets/999999", 404),
        ("/api/v1/tickets/not-a-number", 400),
        ("/api/v1/devices/unknown-device", 404),
        ("/api/v1/devices/bad.id", 400),
        ("/api/v1/devices/x/telemetry?from=yesterday", 400),
        ("/api/v1/dead-letters?limit=-1", 400),
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
    }
}
