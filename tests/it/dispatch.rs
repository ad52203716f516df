//! Engineers and dispatch end to end (docs/dispatch.md): engineers registered over
//! HTTP, critical faults published over MQTT open urgent tickets, and `fixahead run`'s
//! dispatcher escalates the one nobody fits and assigns the other automatically; the
//! capacity check refuses a planner's assignment over capacity until overridden.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{free_port, raised_fault, wait_for, Publisher, Server, ADMIN_KEY};

/// Working every hour of every day, so the test does not depend on the wall clock.
fn engineer(skills: Value) -> Value {
    json!({
        "display_name": "Li Wei",
        "skills": skills,
        "region": "north", "lat": 31.2, "lon": 121.5,
        "working_hours": {"start": "00:00", "end": "24:00",
                          "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        "daily_capacity": 1,
        "supervisor": "zhang.min",
        "time_zone": "UTC"
    })
}

async fn key(server: &Server, role: &str) -> String {
    let (status, created) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/keys",
            Some(ADMIN_KEY),
            Some(&json!({"role": role, "name": format!("{role}-desk")})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["key"].as_str().unwrap().to_owned()
}

/// Publishes critical fault `code` for `device` and returns its ticket once opened.
async fn critical(server: &Server, device: &str, code: &str) -> Value {
    let mut p = Publisher::connect(server.mqtt_port, device).await;
    let now = crate::harness::now_ms();
    p.publish(
        &format!("fixahead/v1/{device}/fault"),
        raised_fault(1, now, code),
    )
    .await;
    p.flush().await;
    let path = format!("/api/v1/tickets?device_id={device}");
    wait_for(Duration::from_secs(30), "the ticket to open", || async {
        let (_, body) = server.get(&path).await;
        body["tickets"].get(0).is_some()
    })
    .await;
    let (_, body) = server.get(&path).await;
    body["tickets"][0].clone()
}

async fn ticket(server: &Server, id: i64) -> Value {
    let (status, t) = server.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, 200, "{t}");
    t
}

#[tokio::test]
async fn urgent_tickets_are_escalated_when_nobody_fits_and_assigned_when_someone_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fixahead.toml");
    std::fs::write(&config, "[dispatch]\ninterval = \"200ms\"\n").unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        None,
        free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;

    // Engineers cannot manage engineers; a planner registers one (plumbing only).
    let engineer_key = key(&server, "engineer").await;
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/api/v1/engineers/li.wei",
            Some(&engineer_key),
            Some(&engineer(json!({"plumbing": 3}))),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let planner = key(&server, "planner").await;
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/api/v1/engineers/li.wei",
            Some(&planner),
            Some(&engineer(json!({"plumbing": 3}))),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["password"].is_string());
    // Webhooks may subscribe to escalations.
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/webhooks",
            Some(ADMIN_KEY),
            Some(
                &json!({"url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef0123",
                         "event_types": ["ticket.escalated"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // E23 (drain pump: plumbing and electrical): nobody fits, so it escalates.
    let t = critical(&server, "wm-d1", "E23").await;
    let escalated = t["id"].as_i64().unwrap();
    wait_for(Duration::from_secs(30), "the escalation", || async {
        ticket(&server, escalated).await["escalated_to"] == "after-sales-manager"
    })
    .await;
    let t = ticket(&server, escalated).await;
    assert_eq!(t["assignment"]["engineer"], Value::Null);
    let log = t["log"].as_array().unwrap();
    assert!(
        log.iter()
            .any(|l| l["action"] == "escalated" && l["actor"] == "fixahead"),
        "{log:#?}"
    );
    let (_, ranking) = server
        .get(&format!("/api/v1/tickets/{escalated}/candidates"))
        .await;
    assert_eq!(ranking["dispatch"], "escalated");
    assert_eq!(ranking["candidates"][0]["fits"], false);

    // With electrical too, E62 (heater: electrical) is assigned automatically.
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/api/v1/engineers/li.wei",
            Some(&planner),
            Some(&engineer(json!({"plumbing": 3, "electrical": 4}))),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let t = critical(&server, "wm-d2", "E62").await;
    let assigned = t["id"].as_i64().unwrap();
    wait_for(
        Duration::from_secs(30),
        "the automatic assignment",
        || async { ticket(&server, assigned).await["assignment"]["engineer"] == "li.wei" },
    )
    .await;
    let t = ticket(&server, assigned).await;
    let entry = t["log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["action"] == "assigned")
        .cloned()
        .unwrap();
    assert_eq!(entry["actor"], "fixahead");
    assert!(entry["note"]
        .as_str()
        .unwrap()
        .contains("dispatched automatically"));
    let window_start = t["assignment"]["window_start"].as_str().unwrap().to_owned();
    let window_end = t["assignment"]["window_end"].as_str().unwrap().to_owned();
    let (_, list) = server.get("/api/v1/engineers").await;
    assert_eq!(list["engineers"][0]["load"]["active"], 1);

    // li.wei's one visit that day is booked: a planner's assignment on the same day is
    // refused, naming the load, until overridden.
    let body =
        json!({"engineer": "li.wei", "window_start": window_start, "window_end": window_end});
    let path = format!("/api/v1/tickets/{escalated}/assignment");
    let (status, refused) = server
        .call(reqwest::Method::POST, &path, Some(&planner), Some(&body))
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily capacity is 1"),
        "{refused}"
    );
    let mut forced = body.clone();
    forced["override_capacity"] = json!(true);
    let (status, done) = server
        .call(reqwest::Method::POST, &path, Some(&planner), Some(&forced))
        .await;
    assert_eq!(status, 200, "{done}");
    let note = done["log"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|l| l["action"] == "assigned")
        .map(|l| l["note"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(note.contains("capacity override"), "{note}");
}
