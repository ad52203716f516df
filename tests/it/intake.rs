//! Customer reports through `fixahead run` (docs/intake.md): a device known from its
//! telemetry and the directory, a report by serial that opens a reactive ticket, a
//! second report of the same problem that joins it, and the clear 4xx answers.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{now_ms, telemetry, wait_for, Publisher, Server, ADMIN_KEY};

#[tokio::test]
async fn a_call_centre_report_opens_a_ticket_and_a_second_call_joins_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None).await;
    let mut mqtt = Publisher::connect(server.mqtt_port, "intake-it").await;
    mqtt.publish(
        "fixahead/v1/wm-call-1/telemetry",
        telemetry(1, now_ms() - 60_000, r#"{"drain_time_s": 12.0}"#),
    )
    .await;
    mqtt.flush().await;
    wait_for(
        Duration::from_secs(30),
        "wm-call-1 to be stored",
        || async { server.stored_telemetry("wm-call-1").await > 0 },
    )
    .await;

    let (status, key) = server
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(ADMIN_KEY),
            Some(&json!({"role": "integration", "name": "crm"})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let crm = key["key"].as_str().unwrap().to_owned();

    let (status, entry) = server
        .call(
            Method::PUT,
            "/api/v1/devices/wm-call-1/directory",
            Some(&crm),
            Some(&json!({"serial": "SN-CALL-1", "customer_ref": "CUST-1",
                "customer_name": "Wang Fang", "lat": 31.2, "lon": 121.5, "region": "east"})),
        )
        .await;
    assert_eq!(status, 200, "{entry}");

    let report = json!({"serial": "SN-CALL-1", "channel": "phone", "category": "down",
        "words": "It stopped mid-wash, water in the drum"});
    let (status, first) = server
        .call(Method::POST, "/api/v1/tickets", Some(&crm), Some(&report))
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["result"], "opened");
    assert_eq!(first["ticket"]["device_id"], "wm-call-1");
    assert_eq!(first["ticket"]["source"], "reactive");
    assert_eq!(first["ticket"]["channel"], "phone");
    assert_eq!(first["ticket"]["priority"], "urgent");
    assert_eq!(first["planned"]["status"], "open");

    let (status, second) = server
        .call(
            Method::POST,
            "/api/v1/tickets",
            Some(&crm),
            Some(
                &json!({"customer_ref": "CUST-1", "channel": "app", "category": "down",
                "words": "Still not working"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["result"], "joined");
    assert_eq!(second["ticket"]["id"], first["ticket"]["id"]);

    let id = first["ticket"]["id"].as_i64().unwrap();
    let (status, ticket) = server.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(ticket["reports"].as_array().unwrap().len(), 2);
    assert_eq!(ticket["reports"][1]["channel"], "app");
    assert!(ticket["log"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "customer_report" && e["actor"] == "crm"));

    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/tickets",
            Some(&crm),
            Some(
                &json!({"serial": "SN-NOPE", "channel": "phone", "category": "down",
                "words": "x"}),
            ),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/tickets",
            Some(&crm),
            Some(
                &json!({"device_id": "wm-call-1", "channel": "phone", "category": "on_fire",
                "words": "x"}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "category");
}
