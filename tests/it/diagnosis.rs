//! Remote diagnosis and remote self-test through `fixahead run`: devices fed over the
//! embedded broker, diagnoses read over HTTP, a self-test answered by the live
//! simulator, a command to an offline device timing out, bad answers dead-lettered,
//! and the engineer's own-ticket rule.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    bin, free_port, metric, now_ms, raised_fault, service_stderr, telemetry, wait_for, Publisher,
    Server, ADMIN_KEY,
};

const DAY_MS: i64 = 86_400_000;

/// Writes a config with a short command timeout and a fast fleet-summary refresh.
fn config(dir: &Path, timeout_s: u64) -> String {
    let path = dir.join("fixahead.toml");
    std::fs::write(
        &path,
        format!("[commands]\ntimeout_s = {timeout_s}\n\n[diagnosis]\nrefresh_interval_s = 1\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

async fn start(dir: &Path, timeout_s: u64) -> Server {
    let cfg = config(dir, timeout_s);
    Server::start_with(dir, None, free_port(), &["--config", &cfg]).await
}

/// A key of `role` named `name`.
async fn key(server: &Server, role: &str, name: &str) -> String {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(ADMIN_KEY),
            Some(&json!({"role": role, "name": name})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

/// A washer telemetry payload with a production batch.
fn batch_telemetry(seq: u64, ts_ms: i64, batch: &str, readings: &str) -> String {
    format!(
        r#"{{"ts": {ts_ms}, "seq": {seq}, "type": "washer", "model": "WM-500", "batch": "{batch}", "readings": {readings}}}"#
    )
}

fn channel<'a>(diagnosis: &'a Value, name: &str) -> &'a Value {
    diagnosis["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == name)
        .unwrap_or_else(|| panic!("no channel {name}: {diagnosis:#}"))
}

/// Two weeks of programs every 6 h: six healthy washers of batch B2026-01 and one of
/// another batch with a steady drain time, and one of B2026-01 whose drain time
/// climbs by 2 s a day and which raises E21 at the end.
/// Returns how many messages were published, once the broker acknowledged them all.
async fn publish_two_weeks(mqtt: &mut Publisher) -> u64 {
    let start = now_ms() - 14 * DAY_MS;
    let healthy: Vec<String> = (1..=7).map(|i| format!("wm-ok-{i}")).collect();
    let mut sent = 0u64;
    for step in 0..56i64 {
        let ts = start + step * DAY_MS / 4;
        let days = (step as f64) / 4.0;
        for (i, id) in healthy.iter().enumerate() {
            let drain = 12.0 + 0.2 * (i as f64) + if step % 2 == 0 { 0.1 } else { -0.1 };
            let readings = format!(r#"{{"drain_time_s": {drain}, "vibration_g": 0.12}}"#);
            let batch = if i == 6 { "B2025-11" } else { "B2026-01" };
            mqtt.publish(
                &format!("fixahead/v1/{id}/telemetry"),
                batch_telemetry(step as u64 + 1, ts, batch, &readings),
            )
            .await;
            sent += 1;
        }
        let drain = 12.0 + 2.0 * days;
        let readings = format!(r#"{{"drain_time_s": {drain}, "vibration_g": 0.12}}"#);
        mqtt.publish(
            "fixahead/v1/wm-bad/telemetry",
            batch_telemetry(step as u64 + 1, ts, "B2026-01", &readings),
        )
        .await;
        sent += 1;
    }
    let fault = |seq: u64, code: &str| raised_fault(seq, now_ms() - 60_000, code);
    mqtt.publish("fixahead/v1/wm-bad/fault", fault(100, "E21"))
        .await;
    // Critical: opens a reactive ticket for the drain pump.
    mqtt.publish("fixahead/v1/wm-bad/fault", fault(101, "E23"))
        .await;
    sent += 2;
    mqtt.flush().await;
    sent
}

/// Degrading (`bad`: its diagnosis): drain time above the fleet's p95, rising, with
/// its fault and parts.
fn assert_degrading(bad: &Value) {
    let drain = channel(bad, "drain_time_s");
    assert_eq!(drain["position"], "high", "{drain:#}");
    assert_eq!(drain["unit"], "s");
    // Normal ranges are per model, across batches.
    assert_eq!(drain["normal_range"]["devices"], 8, "{drain:#}");
    let trend = &drain["trend"];
    assert!(trend["slope_per_day"].as_f64().unwrap() > 1.5, "{trend:#}");
    assert!(
        trend["week_mean"].as_f64().unwrap() > trend["prior_week_mean"].as_f64().unwrap() + 10.0,
        "{trend:#}"
    );
    assert!(trend["day_mean"].as_f64().unwrap() > trend["week_mean"].as_f64().unwrap());
    assert_eq!(channel(bad, "vibration_g")["position"], "normal");
    let codes: Vec<&str> = bad["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["E23", "E21"], "{bad:#}");
    assert_eq!(bad["faults"][1]["title"], "Drain timeout");
    assert_eq!(bad["open_tickets"][0]["component"], "drain_pump");
    let pump = bad["likely_parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part"] == "drain pump assembly")
        .unwrap_or_else(|| panic!("no drain pump in {:#}", bad["likely_parts"]));
    assert_eq!(pump["component"], "drain_pump");
    assert_eq!(pump["reference"], "FXA-WSH-DPD-01");
    let reasons = pump["reasons"].to_string();
    assert!(
        reasons.contains("E21") && reasons.contains("open ticket"),
        "{reasons}"
    );
    let comparable = &bad["comparable"];
    // Comparable devices: the same model and batch.
    assert_eq!(comparable["model"], "WM-500");
    assert_eq!(comparable["batch"], "B2026-01");
    assert_eq!(comparable["devices"], 7, "{comparable:#}");
    assert_eq!(comparable["devices_with_tickets"], 1, "{comparable:#}");
    assert_eq!(comparable["components"][0]["component"], "drain_pump");
    assert_eq!(comparable["components"][0]["active"], 1);
}

/// Healthy washers: in range, flat, nothing to order.
async fn assert_healthy(server: &Server) {
    let (status, ok) = server.get("/api/v1/devices/wm-ok-3/diagnosis").await;
    assert_eq!(status, 200, "{ok}");
    let drain = channel(&ok, "drain_time_s");
    assert_eq!(drain["position"], "normal", "{drain:#}");
    assert!(drain["trend"]["slope_per_day"].as_f64().unwrap().abs() < 0.1);
    assert_eq!(ok["faults"], json!([]));
    assert_eq!(ok["open_tickets"], json!([]));
    assert_eq!(ok["likely_parts"], json!([]));
    assert_eq!(ok["comparable"]["devices"], 7);
    let (_, other) = server.get("/api/v1/devices/wm-ok-7/diagnosis").await;
    assert_eq!(other["comparable"]["batch"], "B2025-11");
    assert_eq!(other["comparable"]["devices"], 1);
    assert_eq!(other["comparable"]["devices_with_tickets"], 0);
    // Every washer channel is listed, reported or not.
    assert_eq!(ok["channels"].as_array().unwrap().len(), 7, "{ok:#}");
    assert_eq!(channel(&ok, "fill_time_s")["position"], "unknown");
}

/// Engineers see only the devices of tickets assigned to them (the ticket of `bad`,
/// its diagnosis, goes to one of them); an integration key may not diagnose.
async fn engineers_see_only_their_tickets_devices(server: &Server, bad: &Value) {
    let anna = key(server, "engineer", "eng-anna").await;
    let bob = key(server, "engineer", "eng-bob").await;
    let ticket = bad["open_tickets"][0]["id"].as_i64().unwrap();
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v1/tickets/{ticket}/assignment"),
            Some(ADMIN_KEY),
            Some(&json!({"engineer": "eng-anna"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path = "/api/v1/devices/wm-bad/diagnosis";
    let (status, _) = server.call(Method::GET, path, Some(&anna), None).await;
    assert_eq!(status, 200);
    let (status, body) = server.call(Method::GET, path, Some(&bob), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v1/devices/wm-ok-1/diagnosis",
            Some(&anna),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = send(server, "wm-bad", &bob, "self_test").await;
    assert_eq!(status, 403, "{body}");
    let integration = key(server, "integration", "crm").await;
    let (status, _) = server
        .call(Method::GET, path, Some(&integration), None)
        .await;
    assert_eq!(status, 403, "diagnosis takes the diagnose permission");
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnosis_tells_a_degrading_washer_from_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 30).await;
    let mut mqtt = Publisher::connect(server.mqtt_port, "diag-feeder").await;

    let sent = publish_two_weeks(&mut mqtt).await;
    wait_for(Duration::from_secs(60), "every message stored", || async {
        metric(&server, "fixahead_ingest_stored_total").await as u64 >= sent
    })
    .await;
    let stored_at = now_ms();

    // The summary refreshes every second; wait for one computed after the last message.
    let bad = poll(&server, "/api/v1/devices/wm-bad/diagnosis", |body| {
        let fresh = body["comparable"]["computed_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t.timestamp_millis() > stored_at);
        fresh && !body["open_tickets"].as_array().unwrap().is_empty()
    })
    .await;

    assert_degrading(&bad);

    assert_healthy(&server).await;

    engineers_see_only_their_tickets_devices(&server, &bad).await;

    let (status, body) = server.get("/api/v1/devices/nope/diagnosis").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = server.get("/api/v1/devices/bad.id/diagnosis").await;
    assert_eq!(status, 400);
}

/// `POST /api/v1/devices/{device}/commands` with `key`: status and body.
async fn send(server: &Server, device: &str, key: &str, command: &str) -> (u16, Value) {
    let path = format!("/api/v1/devices/{device}/commands");
    let body = json!({ "command": command });
    server
        .call(Method::POST, &path, Some(key), Some(&body))
        .await
}

/// `fixahead simulate` as a child process, killed on drop.
struct Simulator(Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Simulator {
    /// Starts `fixahead simulate` against the broker on `mqtt_port`:
    /// Two washers, each with one component already degrading and no other failures,
    /// from a month ago at 20,000x (a washer reports a few programs a week).
    fn start(mqtt_port: u16) -> Simulator {
        let sim_start = (now_ms() - 30 * DAY_MS).to_string();
        let child = Command::new(bin())
            .args([
                "simulate",
                "--mqtt-url",
                &format!("mqtt://127.0.0.1:{}", mqtt_port),
                "--devices",
                "2",
                "--kinds",
                "washer",
                "--early-degradation",
                "1",
                "--failure-rate",
                "0",
                "--speed",
                "20000",
                "--start",
                &sim_start,
                "--duration",
                "300",
                "--seed",
                "5",
            ])
            .stdout(Stdio::null())
            .stderr(service_stderr())
            .spawn()
            .expect("spawn fixahead simulate");
        Simulator(child)
    }
}

async fn poll_command(server: &Server, location: &str) -> Value {
    poll(server, location, |body| body["status"] != "pending").await
}

/// GETs `path` (200 expected) until `done` holds for the body; returns it.
async fn poll(server: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out polling {path}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A self-test report of a washer with one degrading component and no other wear.
fn assert_one_worn_component(report: &Value) {
    assert_eq!(report["command"], "self_test");
    assert_eq!(
        report["result"], "fail",
        "a degrading component fails the test"
    );
    let components = report["components"].as_array().unwrap();
    let names: Vec<&str> = components
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["drain_pump", "motor_bearing", "heater"]);
    // The degrading component may have failed by now (days pass in seconds).
    let worn = |c: &&Value| c["status"] == "degraded" || c["status"] == "failed";
    let degraded: Vec<&Value> = components.iter().filter(worn).collect();
    assert_eq!(degraded.len(), 1, "{report:#}");
    assert!(degraded[0]["measured"].as_f64().unwrap() > degraded[0]["limit"].as_f64().unwrap());
    for c in components.iter().filter(|c| !worn(c)) {
        assert_eq!(c["status"], "ok", "{report:#}");
        assert_eq!(c["measured"], 0.0, "no failure rate: no other wear");
    }
}

/// The dead letters on `fixahead/v1/wm-gone/cmd/result` are exactly the `bad`
/// answers, with their reasons; fixahead's own commands are not dead letters.
async fn assert_dead_letters_of_answers(server: &Server, bad: &[(&str, &str)]) {
    let (status, body) = server.get("/api/v1/dead-letters?limit=100").await;
    assert_eq!(status, 200);
    let mut reasons: Vec<&str> = body["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["topic"] == "fixahead/v1/wm-gone/cmd/result")
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    reasons.sort_unstable();
    let mut want: Vec<&str> = bad.iter().map(|(_, r)| *r).collect();
    want.sort_unstable();
    assert_eq!(reasons, want, "{body:#}");
    // fixahead's own commands, echoed to its subscription, are not dead letters.
    assert!(!body.to_string().contains("/cmd\""), "{body:#}");
}

/// Bad command requests: an unknown command, an unknown device, a bad command id.
async fn assert_bad_command_requests_refused(server: &Server) {
    let (status, body) = send(server, "wm-0001", ADMIN_KEY, "reboot").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "command");
    let (status, _) = send(server, "wm-nobody", ADMIN_KEY, "self_test").await;
    assert_eq!(status, 404);
    let (status, _) = server.get("/api/v1/devices/wm-0001/commands/x").await;
    assert_eq!(status, 400);
}

// One scenario whose steps depend on each other: the late answer needs the timed-out command.
#[tokio::test(flavor = "multi_thread")]
async fn self_test_round_trip_with_the_simulator_and_a_timeout_for_an_offline_device() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 3).await;
    let _simulator = Simulator::start(server.mqtt_port);
    wait_for(
        Duration::from_secs(90),
        "the simulated washer registered",
        || async { server.get("/api/v1/devices/wm-0001").await.0 == 200 },
    )
    .await;

    let (status, sent) = send(&server, "wm-0001", ADMIN_KEY, "self_test").await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["status"], "pending");
    assert_eq!(sent["requested_by"], "admin (FIXAHEAD_ADMIN_KEY)");
    let location = format!("/api/v1/devices/wm-0001/commands/{}", sent["id"]);
    let done = poll_command(&server, &location).await;
    assert_eq!(done["status"], "answered", "{done:#}");
    assert_eq!(done["late"], false);
    assert_one_worn_component(&done["result"]);
    // The diagnosis lists the command.
    let (_, diagnosis) = server.get("/api/v1/devices/wm-0001/diagnosis").await;
    assert_eq!(diagnosis["recent_commands"][0]["id"], sent["id"]);

    // A device that reported once and went away: the command times out.
    let mut mqtt = Publisher::connect(server.mqtt_port, "diag-offline").await;
    mqtt.publish(
        "fixahead/v1/wm-gone/telemetry",
        telemetry(1, now_ms() - 60_000, r#"{"vibration_g": 0.1}"#),
    )
    .await;
    mqtt.flush().await;
    wait_for(Duration::from_secs(30), "wm-gone registered", || async {
        server.get("/api/v1/devices/wm-gone").await.0 == 200
    })
    .await;
    let (status, sent) = send(&server, "wm-gone", ADMIN_KEY, "self_test").await;
    assert_eq!(status, 202, "{sent}");
    let location = format!("/api/v1/devices/wm-gone/commands/{}", sent["id"]);
    let done = poll_command(&server, &location).await;
    assert_eq!(done["status"], "timed_out", "{done:#}");
    assert_eq!(done["result"], Value::Null);
    assert_eq!(done["answered_at"], Value::Null);
    // A command of one device is not found under another.
    let (status, _) = server
        .get(&format!("/api/v1/devices/wm-0001/commands/{}", sent["id"]))
        .await;
    assert_eq!(status, 404);

    // An answer after the deadline is kept as late; the command stays timed out.
    mqtt.publish(
        "fixahead/v1/wm-gone/cmd/result",
        json!({"id": sent["id"], "status": "ok", "report": {"components": []}}).to_string(),
    )
    .await;
    // Answers that break the protocol are dead letters; one for no command is counted.
    let bad = [
        (r#"{"id": "7", "status": "ok", "report": {}}"#, "wrong_type"),
        (r#"{"id": 7, "status": "maybe"}"#, "invalid_value"),
        (r#"{"id": 7, "status": "ok"}"#, "missing_field"),
        (r#"{"id": 7, "status": "error"}"#, "missing_field"),
        ("not json", "malformed_json"),
    ];
    for (payload, _) in bad {
        mqtt.publish("fixahead/v1/wm-gone/cmd/result", payload)
            .await;
    }
    mqtt.publish(
        "fixahead/v1/wm-gone/cmd/result",
        r#"{"id": 999999, "status": "error", "error": "no such test"}"#,
    )
    .await;
    mqtt.flush().await;
    wait_for(
        Duration::from_secs(30),
        "the late answer recorded",
        || async { server.get(&location).await.1["late"] == true },
    )
    .await;
    let (_, late) = server.get(&location).await;
    assert_eq!(late["status"], "timed_out");
    assert_eq!(late["result"], json!({"components": []}));
    wait_for(
        Duration::from_secs(30),
        "the unmatched answer counted",
        || async {
            metric(&server, "fixahead_ingest_command_results_unmatched_total").await >= 1.0
        },
    )
    .await;
    assert_dead_letters_of_answers(&server, &bad).await;

    assert_bad_command_requests_refused(&server).await;
}
