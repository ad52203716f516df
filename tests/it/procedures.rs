//! Procedures end to end: `fixahead run` with short step limits in its config file; a
//! critical fault code opens a ticket whose step clocks start; the running sweep marks
//! an overdue step once and alerts the escalation contact (no engineers' directory
//! yet); satisfaction over HTTP from an integration key opens a call-back, which the
//! sweep marks overdue and a planner then marks done. Engineers may not record
//! satisfaction.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{free_port, raised_fault, wait_for, Publisher, Server, ADMIN_KEY};

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;

/// A key of `role` named `name`, made through the API by the admin.
async fn key(server: &Server, role: &str, name: &str) -> String {
    let (status, created) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/keys",
            Some(ADMIN_KEY),
            Some(&json!({"role": role, "name": name})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["key"].as_str().expect("key").to_owned()
}

async fn post(server: &Server, path: &str, key: &str, body: Value) -> (u16, Value) {
    server
        .call(reqwest::Method::POST, path, Some(key), Some(&body))
        .await
}

async fn ticket(server: &Server, id: i64) -> Value {
    let (status, t) = server.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, 200, "{t}");
    t
}

fn logged(t: &Value, action: &str) -> usize {
    t["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .count()
}

#[tokio::test]
async fn steps_alert_once_and_a_dissatisfied_customer_gets_a_callback() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fixahead.toml");
    std::fs::write(
        &config,
        r#"[tickets]
sla_check_interval = "100ms"
urgent_escalation = "night-manager"

[[procedures.procedure]]
name = "fast"
steps = [{ step = "respond", within = "1s" }, { step = "act", within = "1h" },
         { step = "finish", within = "2h" }]

[satisfaction]
callback_within = "2s"
"#,
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        None,
        free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let mut device = Publisher::connect(server.mqtt_port, "wm-proc").await;
    device
        .publish("fixahead/v1/wm-proc/fault", raised_fault(1, T0, "E23"))
        .await;
    device.flush().await;
    wait_for(Duration::from_secs(30), "the reactive ticket", || async {
        let (_, body) = server.get("/api/v1/tickets?device_id=wm-proc").await;
        body["tickets"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let (_, body) = server.get("/api/v1/tickets?device_id=wm-proc").await;
    let id = body["tickets"][0]["id"].as_i64().expect("ticket id");
    let t = ticket(&server, id).await;
    let steps: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["respond", "act", "finish"], "{t}");

    // The 1 s respond step runs out: marked once, alerted to the tier's contact.
    wait_for(Duration::from_secs(30), "respond to be overdue", || async {
        ticket(&server, id).await["steps"][0]["overdue_at"].is_string()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = ticket(&server, id).await;
    assert_eq!(t["steps"][0]["alerted"], "night-manager", "{t}");
    assert!(t["steps"][1]["overdue_at"].is_null());
    assert_eq!(logged(&t, "step_overdue"), 1, "once: {t}");
    let text = reqwest::Client::new()
        .get(format!("http://{}/metrics", server.http))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("fixahead_ticket_steps_overdue_total 1"),
        "{text}"
    );

    // Acknowledged and resolved: act and finish are done in time, never alerted.
    let planner = key(&server, "planner", "planner-wu").await;
    let path = format!("/api/v1/tickets/{id}/transitions");
    let (status, body) = post(&server, &path, &planner, json!({"to": "acknowledged"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &server,
        &path,
        &planner,
        json!({"to": "resolved", "outcome": {"kind": "no_fault_found"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["done_at"].is_string()));

    // Satisfaction: not from an engineer; from the survey tool (integration).
    let satisfaction = format!("/api/v1/tickets/{id}/satisfaction");
    let engineer = key(&server, "engineer", "li.wei").await;
    let (status, _) = post(&server, &satisfaction, &engineer, json!({"score": 5})).await;
    assert_eq!(status, 403);
    let survey = key(&server, "integration", "survey").await;
    let (status, t) = post(
        &server,
        &satisfaction,
        &survey,
        json!({"score": 1, "comment": "Nobody called", "channel": "app"}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["satisfaction"]["score"], 1);
    assert!(t["callback"]["due"].is_string(), "{t}");
    assert!(t["callback"]["owner"]
        .as_str()
        .is_some_and(|o| o.starts_with("planner-wu")));

    // Not called back within 2 s: marked overdue once; done late afterwards.
    wait_for(
        Duration::from_secs(30),
        "the call-back to be overdue",
        || async { ticket(&server, id).await["callback"]["overdue_at"].is_string() },
    )
    .await;
    let callback = format!("/api/v1/tickets/{id}/callback");
    let (status, t) = post(
        &server,
        &callback,
        &planner,
        json!({"note": "Apologised; the fix holds"}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert!(t["callback"]["done_at"].is_string());
    assert_eq!(logged(&t, "callback_overdue"), 1);
    assert_eq!(logged(&t, "callback_opened"), 1);
    let (status, _) = post(&server, &callback, &planner, json!({"note": "again"})).await;
    assert_eq!(status, 409);
}
