//! Fleet analytics end to end: devices report their batch and region over MQTT,
//! critical fault codes open reactive tickets, confirmed failures are recorded over
//! HTTP, and the batch alarm fires for the batch that fails (once, with its
//! `fleet.batch_alarm` event) and not for the healthy one; statistics and the parts
//! forecast see the same data; a bad `group_by` is a 400 naming the parameter.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{free_port, wait_for, Publisher, Server, ADMIN_KEY};

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;
const BAD: usize = 8;
const GOOD: usize = 32;

fn device(i: usize) -> (String, &'static str, &'static str) {
    if i < BAD {
        (format!("wm-bad-{i}"), "B-BAD", "north")
    } else {
        (format!("wm-ok-{i}"), "B-OK", "south")
    }
}

fn telemetry(seq: u64, batch: &str, region: &str) -> String {
    format!(
        r#"{{"ts": {}, "seq": {seq}, "type": "washer", "model": "WM-500", "fw": "2.4.1", "batch": "{batch}", "region": "{region}", "readings": {{"drain_time_s": 12.5}}}}"#,
        T0 + seq as i64 * 1000
    )
}

/// Whether all devices are registered and `total` messages are stored.
async fn messages_stored(server: &Server, total: u64) -> bool {
    let (_, body) = server.get("/api/v1/devices?limit=1000").await;
    body["devices"].as_array().is_some_and(|d| {
        d.len() == BAD + GOOD
            && d.iter().filter_map(|d| d["messages"].as_u64()).sum::<u64>() == total
    })
}

/// Two rounds of telemetry with the faults between them, so every device's
/// reporting span (first to last arrival) is the same to within the milliseconds a
/// round takes: the detector weighs failures by device-months, and a span that
/// only the failing devices extend would dilute the batch's excess.
/// `failing`: the devices whose drain pump fails between the rounds. After each round,
/// waits (at most 30 s) until the server stored all of it.
async fn report_two_rounds(server: &Server, publisher: &mut Publisher, failing: &[usize]) {
    for round in 1..=2u64 {
        if round == 2 {
            // Every bad device's drain pump fails (a critical code, a reactive ticket,
            // a confirmed failure); one healthy device's too.
            tokio::time::sleep(Duration::from_millis(300)).await;
            for &i in failing {
                let (id, batch, region) = device(i);
                publisher
                    .publish(
                        &format!("fixahead/v1/{id}/fault"),
                        format!(
                            r#"{{"ts": {}, "seq": 3, "type": "washer", "model": "WM-500", "batch": "{batch}", "region": "{region}", "code": "E23", "state": "raised"}}"#,
                            T0 + 3000
                        ),
                    )
                    .await;
            }
        }
        for i in 0..BAD + GOOD {
            let (id, batch, region) = device(i);
            publisher
                .publish(
                    &format!("fixahead/v1/{id}/telemetry"),
                    telemetry(round * 2, batch, region),
                )
                .await;
        }
        publisher.flush().await;
        wait_for(
            Duration::from_secs(30),
            "the telemetry to be stored",
            || {
                let faults = if round == 2 { failing.len() as u64 } else { 0 };
                messages_stored(server, round * (BAD + GOOD) as u64 + faults)
            },
        )
        .await;
    }
}

/// Resolves `tickets` as confirmed failures of the drain pump assembly.
async fn resolve_as_confirmed_failures(server: &Server, tickets: &[Value]) {
    for t in tickets {
        let (status, body) = server
            .call(
                Method::POST,
                &format!("/api/v1/tickets/{}/transitions", t["id"]),
                Some(ADMIN_KEY),
                Some(
                    &json!({"to": "resolved", "outcome": {"kind": "confirmed_failure",
                    "parts_replaced": ["drain pump assembly"]}}),
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// The event stream from the start, as far as it goes before it stays quiet for 0.5 s
/// (2 s at most).
async fn events_so_far(server: &Server) -> String {
    let mut sse = server
        .client()
        .get(format!("http://{}/api/v1/events?after=0", server.http))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_millis(500), sse.chunk()).await
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// Statistics by batch and the parts forecast by region see the same failures.
async fn assert_stats_and_forecast_see_the_failures(server: &Server) {
    // Statistics by batch see the same failures.
    let (status, stats) = server.get("/api/v1/fleet/stats?group_by=batch").await;
    assert_eq!(status, 200, "{stats}");
    let groups = stats["groups"].as_array().unwrap();
    let group = |name: &str| groups.iter().find(|g| g["group"] == name).unwrap().clone();
    assert_eq!(group("B-BAD")["confirmed_failures"], BAD as u64);
    assert_eq!(group("B-BAD")["devices"], BAD as u64);
    assert_eq!(group("B-OK")["confirmed_failures"], 1);
    assert_eq!(group("B-OK")["devices_reporting"], GOOD as u64);

    // Parts: no open prediction, the nine recent replacements at 1/90 per day each.
    let (status, parts) = server
        .get("/api/v1/fleet/parts-forecast?days=30&group_by=region")
        .await;
    assert_eq!(status, 200, "{parts}");
    let north = &parts["groups"][0];
    assert_eq!(north["group"], "north");
    assert_eq!(north["parts"][0]["part"], "drain pump assembly");
    assert_eq!(north["parts"][0]["recent_failures"], BAD as u64);
    let expected = north["parts"][0]["expected"].as_f64().unwrap();
    assert!(
        (expected - BAD as f64 * 30.0 / 90.0).abs() < 1e-9,
        "{parts}"
    );
}

/// Parameters are checked and a bad one is named.
async fn assert_bad_parameters_are_named(server: &Server) {
    for (path, name) in [
        ("/api/v1/fleet/stats?group_by=colour", "group_by"),
        ("/api/v1/fleet/parts-forecast?group_by=fw", "group_by"),
        ("/api/v1/fleet/parts-forecast?days=0", "days"),
        ("/api/v1/fleet/stats?from=yesterday", "from"),
        ("/api/v1/fleet/alarms?status=open", "status"),
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(name), "{path}: {message}");
    }
    let (status, body): (u16, Value) = server.get("/api/v1/fleet/stats?unknown=1").await;
    assert_eq!(status, 400, "{body}");
}

// One scenario whose steps depend on each other: reports, tickets, outcomes, then the alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_alarms_once_and_a_healthy_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fixahead.toml");
    // The detector runs on demand here; the periodic run would race the assertions.
    std::fs::write(
        &config,
        "[fleet]\nalarm_interval = \"1000d\"\nrefresh_interval = \"1000d\"\nalarm_fdr = 0.01\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let server = Server::start_with(dir.path(), None, free_port(), &["--config", &config]).await;
    let mut publisher = Publisher::connect(server.mqtt_port, "fleet-it").await;

    let failing: Vec<usize> = (0..BAD).chain([BAD]).collect();
    report_two_rounds(&server, &mut publisher, &failing).await;
    let (_, wm) = server.get("/api/v1/devices/wm-bad-0").await;
    assert_eq!(
        (wm["batch"].as_str(), wm["region"].as_str()),
        (Some("B-BAD"), Some("north"))
    );

    let open = || async {
        let (_, body) = server.get("/api/v1/tickets?status=open&limit=1000").await;
        body["tickets"].as_array().cloned().unwrap_or_default()
    };
    wait_for(
        Duration::from_secs(30),
        "a ticket per failing device",
        || async { open().await.len() == failing.len() },
    )
    .await;
    resolve_as_confirmed_failures(&server, &open().await).await;

    let detect = || {
        server.call(
            Method::POST,
            "/api/v1/fleet/alarms/detect",
            Some(ADMIN_KEY),
            None,
        )
    };
    let (status, report) = detect().await;
    assert_eq!(status, 200, "{report}");
    let raised = report["raised"].as_array().unwrap();
    assert_eq!(raised.len(), 1, "{report}");
    let alarm = &raised[0];
    assert_eq!(
        (
            &alarm["model"],
            &alarm["dimension"],
            &alarm["value"],
            &alarm["component"],
            &alarm["statistic"]
        ),
        (
            &json!("WM-500"),
            &json!("batch"),
            &json!("B-BAD"),
            &json!("drain_pump"),
            &json!("confirmed_failures")
        )
    );
    assert_eq!(alarm["observed"], BAD as u64);
    assert!(alarm["q_value"].as_f64().unwrap() <= 0.01, "{alarm}");
    // A second run keeps the alarm active without raising it again.
    let (_, again) = detect().await;
    assert_eq!(again["raised"], json!([]), "{again}");
    assert_eq!(again["active"], 1);

    let (status, list) = server.get("/api/v1/fleet/alarms?status=active").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["alarms"].as_array().unwrap().len(), 1);
    assert_eq!(list["alarms"][0]["id"], alarm["id"]);
    // Exactly one fleet.batch_alarm event, carrying the alarm.
    let (_, events) = server.get("/api/v1/fleet/alarms?status=cleared").await;
    assert_eq!(events["alarms"], json!([]));
    let text = events_so_far(&server).await;
    assert_eq!(
        text.matches("event: fleet.batch_alarm").count(),
        1,
        "{text}"
    );

    assert_stats_and_forecast_see_the_failures(&server).await;
    assert_bad_parameters_are_named(&server).await;
}
