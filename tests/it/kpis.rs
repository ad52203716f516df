//! Service KPIs end to end: critical fault codes published over MQTT open two reactive
//! tickets, planners and engineers move them through the public API, and
//! `GET /api/v1/kpis` reports what happened (docs/kpis.md).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{now_ms, raised_fault, wait_for, Publisher, Server, ADMIN_KEY};

/// A new key of `role` named `name`, made through the API by the admin.
async fn key_of(server: &Server, role: &str, name: &str) -> String {
    let (status, created) = server
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(ADMIN_KEY),
            Some(&json!({"role": role, "name": name})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["key"].as_str().expect("key").to_owned()
}

async fn move_to(server: &Server, key: &str, id: i64, body: Value) {
    let path = format!("/api/v1/tickets/{id}/transitions");
    let (status, answer) = server
        .call(Method::POST, &path, Some(key), Some(&body))
        .await;
    assert_eq!(status, 200, "{body} -> {answer}");
}

#[tokio::test]
async fn tickets_moved_through_the_api_are_counted_by_the_kpi_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    let mut devices = Vec::new();
    for device in ["wm-kpi-1", "wm-kpi-2"] {
        let mut p = Publisher::connect(server.mqtt_port, device).await;
        // E23: drain pump blocked, critical: one urgent reactive ticket each.
        p.publish(
            &format!("fixahead/v1/{device}/fault"),
            raised_fault(1, now_ms(), "E23"),
        )
        .await;
        p.flush().await;
        devices.push(p);
    }
    let ids = || async {
        let (_, body) = server.get("/api/v1/tickets?status=active").await;
        body["tickets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    t["device_id"].as_str().unwrap_or("").to_owned(),
                    t["id"].as_i64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    wait_for(Duration::from_secs(30), "two tickets", || async {
        ids().await.len() == 2
    })
    .await;
    let all = ids().await;
    let id = |d: &str| all.iter().find(|(dev, _)| dev == d).unwrap().1;
    let planner = key_of(&server, "planner", "kpi planner").await;
    let engineer = key_of(&server, "engineer", "kpi engineer").await;

    // wm-kpi-1: acknowledged, started, resolved as a confirmed failure in one visit.
    let repair = id("wm-kpi-1");
    move_to(&server, &planner, repair, json!({"to": "acknowledged"})).await;
    move_to(&server, &planner, repair, json!({"to": "in_progress"})).await;
    move_to(
        &server,
        &planner,
        repair,
        json!({"to": "resolved", "outcome": {"kind": "confirmed_failure"}}),
    )
    .await;
    // wm-kpi-2: acknowledged only.
    move_to(
        &server,
        &planner,
        id("wm-kpi-2"),
        json!({"to": "acknowledged"}),
    )
    .await;

    let (status, r) = server
        .call(
            Method::GET,
            "/api/v1/kpis?group_by=source&bucket=week",
            Some(&planner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let k = &r["overall"];
    assert_eq!(k["counts"]["opened"], 2, "{r}");
    assert_eq!(k["counts"]["active"], 1);
    assert_eq!(k["counts"]["by_source"]["reactive"], 2);
    assert_eq!(k["counts"]["by_channel"]["device"], 2);
    assert_eq!(k["response"]["count"], 2);
    assert_eq!(k["resolution"]["count"], 1);
    assert_eq!(k["first_time_fix"]["repairs"], 1);
    assert_eq!(k["first_time_fix"]["fixed_first_time"], 1);
    assert_eq!(k["first_time_fix"]["rate"], 1.0);
    // A fault code with no flag before it: a failure nobody warned of.
    assert_eq!(k["warned_in_advance"]["failures"], 1);
    assert_eq!(k["warned_in_advance"]["warned"], 0);
    assert_eq!(k["false_alarms"]["ended_proactive"], 0);
    assert!(k["false_alarms"]["share"].is_null());
    assert_eq!(k["repeat_complaints"]["customer_reports"], 0);
    assert_eq!(r["groups"][0]["key"], "reactive");
    assert_eq!(r["groups"][0]["kpis"]["counts"]["opened"], 2);
    let weeks = r["series"].as_array().unwrap();
    let opened: u64 = weeks
        .iter()
        .map(|w| w["kpis"]["counts"]["opened"].as_u64().unwrap())
        .sum();
    assert_eq!(opened, 2, "the series adds up");

    let (status, body) = server
        .call(
            Method::GET,
            "/api/v1/kpis?group_by=team",
            Some(&planner),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = server
        .call(Method::GET, "/api/v1/kpis", Some(&engineer), None)
        .await;
    assert_eq!(status, 403);
    drop(devices);
}
