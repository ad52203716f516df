//! Tickets end to end: a critical fault code published over MQTT opens one urgent
//! reactive ticket (no model needed), the lifecycle over HTTP, the SLA checker of
//! `fixahead run`, and the event stream resumed with `Last-Event-ID`.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{free_port, raised_fault, wait_for, Publisher, Server, ADMIN_KEY};

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;

fn fault(seq: u64, code: &str) -> String {
    raised_fault(seq, T0 + seq as i64 * 1000, code)
}

/// POSTs with a new planner key named `actor`, so the ticket log names who acted.
async fn post(server: &Server, path: &str, actor: &str, body: &str) -> (u16, Value) {
    let key = key_of(server, actor).await;
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", server.http))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A planner key named `name`, made through the API by the admin (one per call; names
/// need not be unique).
async fn key_of(server: &Server, name: &str) -> String {
    let (status, created) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/keys",
            Some(ADMIN_KEY),
            Some(&serde_json::json!({"role": "planner", "name": name})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["key"].as_str().expect("key").to_owned()
}

/// Opens `GET /api/v1/events` on a raw connection and reads `n` events as
/// (id, type, data).
async fn read_events(
    server: &Server,
    last_event_id: Option<i64>,
    n: usize,
) -> Vec<(i64, String, Value)> {
    let mut stream = tokio::net::TcpStream::connect(server.http).await.unwrap();
    let header = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    let after = if last_event_id.is_none() {
        "?after=0"
    } else {
        ""
    };
    stream
        .write_all(
            format!("GET /api/v1/events{after} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n{header}Accept: text/event-stream\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut lines = BufReader::new(stream).lines();
    let mut out = Vec::new();
    let (mut id, mut kind) = (None, None);
    let read = async {
        while out.len() < n {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the stream stays open");
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse::<i64>().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                let data: Value = serde_json::from_str(v.trim()).unwrap();
                out.push((id.take().unwrap(), kind.take().unwrap(), data));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the events within 30 s");
    out
}

async fn tickets(server: &Server, query: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/api/v1/tickets?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["tickets"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn critical_faults_open_one_reactive_ticket_that_follows_its_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    // Short SLA clocks so the checker of `fixahead run` breaches one during the test.
    let config = dir.path().join("fixahead.toml");
    std::fs::write(
        &config,
        "[tickets]\nurgent_response = \"2s\"\nsla_check_interval = \"100ms\"\nurgent_escalation = \"night-manager\"\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        None,
        free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let mut device = Publisher::connect(server.mqtt_port, "wm-crit").await;
    // A minor code, then many critical ones (E23: drain pump blocked, critical).
    device
        .publish("fixahead/v1/wm-crit/fault", fault(1, "E21"))
        .await;
    for seq in 2..=30 {
        device
            .publish("fixahead/v1/wm-crit/fault", fault(seq, "E23"))
            .await;
    }
    device.flush().await;
    wait_for(Duration::from_secs(30), "all 30 faults stored", || async {
        let (_, body) = server.get("/api/v1/devices/wm-crit").await;
        body["messages"].as_u64() == Some(30)
    })
    .await;
    wait_for(
        Duration::from_secs(30),
        "29 signals on the ticket",
        || async {
            tickets(&server, "device_id=wm-crit")
                .await
                .first()
                .and_then(|t| t["signals"].as_u64())
                == Some(29)
        },
    )
    .await;
    let all = tickets(&server, "device_id=wm-crit").await;
    assert_eq!(all.len(), 1, "exactly one ticket: {all:#?}");
    let t = &all[0];
    assert_eq!(t["source"], "reactive");
    assert_eq!(t["priority"], "urgent");
    assert_eq!(t["component"], "drain_pump");
    assert!(!t["diagnosis"]["likely_parts"]
        .as_array()
        .unwrap()
        .is_empty());
    let id = t["id"].as_i64().unwrap();

    // The SLA checker breaches the 2 s respond clock and escalates.
    wait_for(
        Duration::from_secs(30),
        "the respond clock to breach",
        || async {
            let (_, t) = server.get(&format!("/api/v1/tickets/{id}")).await;
            t["sla_breaches"] == serde_json::json!(["respond"])
        },
    )
    .await;
    let (_, t) = server.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(t["escalated_to"], "night-manager");
    let (_, text) = server
        .client()
        .get(format!("http://{}/metrics", server.http))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    let text = text.text().await.unwrap();
    assert!(
        text.contains("fixahead_tickets_sla_breaches_total{kind=\"respond\"} 1"),
        "{text}"
    );

    // Events so far, then a disconnect; changes meanwhile; a resume misses nothing.
    let first = read_events(&server, None, 2).await;
    assert_eq!(first[0].1, "ticket.opened");
    assert_eq!(first[0].2["data"]["ticket"]["source"], "reactive");
    let seen = first[1].0;

    let path = format!("/api/v1/tickets/{id}/transitions");
    let (status, body) = post(&server, &path, "planner-1", r#"{"to": "closed"}"#).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["allowed"],
        serde_json::json!(["acknowledged", "scheduled", "dismissed", "resolved"])
    );
    let (status, body) = post(&server, &path, "planner-1", r#"{"to": "acknowledged"}"#).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &server,
        &path,
        "eng-2",
        r#"{"to": "resolved", "note": "pump replaced",
            "outcome": {"kind": "confirmed_failure", "parts_replaced": ["drain pump assembly"]}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"]["kind"], "confirmed_failure");
    let actions: Vec<&str> = body["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.starts_with(&["opened", "fault_raised"]),
        "{actions:?}"
    );
    assert!(
        actions.ends_with(&[
            "sla_breached",
            "status_changed",
            "outcome_recorded",
            "status_changed"
        ]),
        "{actions:?}"
    );

    // Everything after `seen`, in order: of 33 events in all (opened, 28 fault_raised
    // updates, the breach, acknowledged, outcome_recorded, resolved); no model, so no
    // prediction events.
    let total = 33 - seen as usize;
    let rest = read_events(&server, Some(seen), total).await;
    let ids: Vec<i64> = rest.iter().map(|e| e.0).collect();
    let expected: Vec<i64> = (seen + 1..seen + 1 + total as i64).collect();
    assert_eq!(ids, expected, "exactly the events after {seen}, in order");
    let tail: Vec<&str> = rest[rest.len() - 3..]
        .iter()
        .map(|e| e.2["data"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        tail,
        ["status_changed", "outcome_recorded", "status_changed"]
    );
    let (_, open) = server.get("/api/v1/tickets?status=active").await;
    assert!(open["tickets"].as_array().unwrap().is_empty());
}
