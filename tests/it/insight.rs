//! Model performance in production and drift watch, end to end: tickets in the
//! store, outcomes recorded over HTTP, the report against hand-computed values; and a
//! fleet whose readings left the training range showing drift in the API and /metrics.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::{DeviceSignals, DiagnosisContext, FaultSignal, TicketConfig, TicketService};
use domain::{DeviceId, Prediction, ProfileSet, Timestamp};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    free_port, metric, now_ms, telemetry, trained_models, wait_for, washer_payload, Publisher,
    Server, ADMIN_KEY,
};

const DAY: i64 = Timestamp::DAY_MS;

/// The ticket service on `data/tickets.db` with a clock the test sets.
fn service(data: &std::path::Path, clock: &Arc<AtomicI64>) -> TicketService {
    let clock = Arc::clone(clock);
    TicketService::open_with_clock(
        &data.join("tickets.db"),
        TicketConfig::default(),
        Arc::new(move || Timestamp(clock.load(Ordering::SeqCst))),
    )
    .unwrap()
}

fn washer() -> DiagnosisContext {
    DiagnosisContext {
        profile: ProfileSet::builtin().get("washer").cloned(),
        recent_faults: Vec::new(),
        device: None,
    }
}

/// A model flag for (device, drain_pump): opens a proactive ticket; returns its id.
fn flag(svc: &TicketService, device: &str) -> i64 {
    let p = Prediction {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        component: "drain_pump".into(),
        ts: svc.now(),
        risk: 0.8,
        threshold: 0.6,
        flagged: true,
        model_version: "washer-v1".into(),
        top_features: Vec::new(),
        lead_time_days: None,
        warming_up: false,
    };
    svc.record_predictions(&[p], &washer()).unwrap()[0].ticket_id
}

/// A critical drain pump fault (E23): opens a reactive ticket; returns its id.
fn critical_fault(svc: &TicketService, device: &str) -> i64 {
    let fault = FaultSignal {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        code: "E23".into(),
        ts: svc.now(),
    };
    let ctx = washer();
    let changes = svc
        .record(&[DeviceSignals {
            predictions: &[],
            faults: std::slice::from_ref(&fault),
            context: &ctx,
        }])
        .unwrap();
    changes[0].ticket_id
}

async fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, out) = server
        .call(Method::POST, path, Some(ADMIN_KEY), Some(&body))
        .await;
    assert_eq!(status, 200, "POST {path}: {out}");
    out
}

async fn assign(server: &Server, id: i64, region: &str) {
    post(
        server,
        &format!("/api/v1/tickets/{id}/assignment"),
        json!({"engineer": "eng-1", "region": region}),
    )
    .await;
}

async fn resolve(server: &Server, id: i64, outcome: Value) {
    post(
        server,
        &format!("/api/v1/tickets/{id}/transitions"),
        json!({"to": "resolved", "outcome": outcome}),
    )
    .await;
}

fn row<'a>(report: &'a Value, model: &str, region: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model_version"] == model && r["region"] == region)
        .unwrap_or_else(|| panic!("no row {model}/{region}: {report:#}"))
}

fn rfc3339(ms: i64) -> String {
    Timestamp(ms).to_rfc3339()
}

/// The performance report of the scenario: per model and region (north, east where wm-b
/// says it is, unknown for e and g) and in total.
fn assert_performance_by_region(report: &Value) {
    let north = row(report, "washer-v1", "north");
    assert_eq!(north["device_type"], "washer");
    assert_eq!(north["component"], "drain_pump");
    for (field, want) in [
        ("flags", json!(4)),
        ("active", json!(1)),
        ("resolved", json!(2)),
        ("confirmed", json!(2)),
        ("no_fault_found", json!(0)),
        ("dismissed", json!(1)),
        ("precision", json!(1.0)),
        ("dismissed_share", json!(0.25)),
        ("caught", json!(2)),
        ("late", json!(0)),
        ("missed", json!(0)),
        ("repairs", json!(2)),
        ("repeat_failures", json!(1)),
        ("repeat_rate", json!(0.5)),
    ] {
        assert_eq!(north[field], want, "{field}: {north:#}");
    }
    assert_eq!(
        north["lead_time"],
        json!({"count": 2, "median_days": 3.0, "mean_days": 4.5, "p10_days": 3.0})
    );
    // b, assigned to north, is where its device says it is.
    let east = row(report, "washer-v1", "east");
    assert_eq!(
        (
            east["flags"].as_u64(),
            east["no_fault_found"].as_u64(),
            east["precision"].as_f64()
        ),
        (Some(1), Some(1), Some(0.0))
    );
    // e inherits the model that scored wm-a; g had none. Neither has a region.
    let e_row = row(report, "washer-v1", "unknown");
    assert_eq!(
        (e_row["flags"].as_u64(), e_row["missed"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(e_row["repairs"], 1);
    let g_row = row(report, "none", "unknown");
    assert_eq!(
        (g_row["missed"].as_u64(), g_row["repairs"].as_u64()),
        (Some(1), Some(1))
    );
    let totals = &report["totals"];
    assert_eq!(totals["precision"], json!(0.667), "{totals:#}");
    assert_eq!(totals["dismissed_share"], json!(0.2));
    assert_eq!(totals["recall"], json!(0.667));
    assert_eq!(totals["repairs"], 4);
    assert!(totals.get("region").is_none());
}

/// Filters and the period (`t`: when the first tickets were opened); bad ones are a 400.
async fn assert_filters_and_period(server: &Server, t: i64) {
    let (_, south) = server.get("/api/v1/models/performance?region=south").await;
    assert_eq!(south["rows"], json!([]));
    let from = rfc3339(t + DAY);
    let to = rfc3339(t + 2 * DAY);
    let (status, period) = server
        .get(&format!(
            "/api/v1/models/performance?from={from}&to={to}&model_version=washer-v1"
        ))
        .await;
    assert_eq!(status, 200, "{period}");
    assert_eq!(period["totals"]["flags"], 2, "c and d: {period:#}");
    assert_eq!(period["totals"]["dismissed"], 1);
    let (status, err) = server
        .get(&format!("/api/v1/models/performance?from={to}&to={from}"))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _) = server.get("/api/v1/models/performance?colour=red").await;
    assert_eq!(status, 400);
}

/// Engineers work tickets; model figures are for planners, admins and integrations.
async fn engineers_may_not_read_performance(server: &Server) {
    let (_, engineer) = server
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(ADMIN_KEY),
            Some(&json!({"role": "engineer", "name": "eng"})),
        )
        .await;
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v1/models/performance",
            engineer["key"].as_str(),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

// One scenario whose steps depend on each other: tickets and outcomes in clock order.
#[tokio::test(flavor = "multi_thread")]
async fn performance_is_computed_from_outcomes_recorded_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Tickets opened 20 days ago and after, by the service's clock.
    let t = now_ms() - 20 * DAY;
    let clock = Arc::new(AtomicI64::new(t));
    let svc = service(&data, &clock);
    let a = flag(&svc, "wm-a");
    let b = flag(&svc, "wm-b");
    clock.store(t + DAY, Ordering::SeqCst);
    let c = flag(&svc, "wm-c");
    let d = flag(&svc, "wm-d");
    clock.store(t + 2 * DAY, Ordering::SeqCst);
    let f = flag(&svc, "wm-f");
    clock.store(t + 5 * DAY, Ordering::SeqCst);
    let g = critical_fault(&svc, "wm-g");
    drop(svc);

    let server = Server::start(&data, None).await;
    // wm-b reports its region: the registry's region wins over the assignment's.
    let mut device = Publisher::connect(server.mqtt_port, "wm-b").await;
    device
        .publish(
            "fixahead/v1/wm-b/telemetry",
            washer_payload(
                1,
                now_ms() - 60_000,
                r#""region": "east", "readings": {"drain_time_s": 12.5}"#,
            ),
        )
        .await;
    device.flush().await;
    wait_for(Duration::from_secs(30), "wm-b in the registry", || async {
        server.get("/api/v1/devices/wm-b").await.1["region"] == "east"
    })
    .await;
    for id in [a, b, c, d, f] {
        assign(&server, id, "north").await;
    }
    // a: the drain pump failed 3 days after the flag; d: 6 days after; b: false alarm.
    resolve(
        &server,
        a,
        json!({"kind": "confirmed_failure", "failed_at": rfc3339(t + 3 * DAY)}),
    )
    .await;
    resolve(&server, b, json!({"kind": "no_fault_found"})).await;
    post(
        &server,
        &format!("/api/v1/tickets/{c}/transitions"),
        json!({"to": "dismissed"}),
    )
    .await;
    resolve(
        &server,
        d,
        json!({"kind": "confirmed_failure", "failed_at": rfc3339(t + 7 * DAY)}),
    )
    .await;
    // g: a failure no model flagged (wm-g was never scored). Then wm-a fails again after
    // its repair (a reactive ticket, opened by the store's clock while the server runs):
    // a repeat failure of the repair of a, and not missed (a flagged it 20 days ago).
    resolve(&server, g, json!({"kind": "confirmed_failure"})).await;
    let svc = service(&data, &clock);
    clock.store(t + 10 * DAY, Ordering::SeqCst);
    let e = critical_fault(&svc, "wm-a");
    drop(svc);
    resolve(&server, e, json!({"kind": "confirmed_failure"})).await;

    let (status, report) = server.get("/api/v1/models/performance").await;
    assert_eq!(status, 200, "{report}");
    assert_performance_by_region(&report);

    assert_filters_and_period(&server, t).await;

    engineers_may_not_read_performance(&server).await;
}

/// A washer report with every channel far above what the simulated fleet sends.
fn hot_washer(seq: u64, ts: i64) -> String {
    telemetry(
        seq,
        ts,
        r#"{"motor_current_a": 15.0, "vibration_g": 6.0, "water_temp_c": 90.0, "heat_time_s": 5000.0, "drain_time_s": 1500.0, "fill_time_s": 1500.0, "supply_voltage_v": 290.0}"#,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_shows_in_the_endpoint_and_in_metrics() {
    let models = trained_models();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fixahead.toml");
    std::fs::write(
        &config,
        "[models]\ndrift_min_samples = 50\ndrift_window = \"30d\"\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        Some(models),
        free_port(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let (status, empty) = server.get("/api/v1/models/drift").await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["models"], json!([]), "nothing scored yet");
    assert_eq!(empty["drift_threshold"], 0.25);

    // Two washers every 2 h for 12 days: warm after 7, then about 60 scores each.
    let mut publisher = Publisher::connect(server.mqtt_port, "drift-test").await;
    let t0 = now_ms() - 14 * DAY;
    for k in 0..144u64 {
        for device in ["wm-hot-1", "wm-hot-2"] {
            let ts = t0 + k as i64 * 2 * 3_600_000;
            publisher
                .publish(
                    &format!("fixahead/v1/{device}/telemetry"),
                    hot_washer(k + 1, ts),
                )
                .await;
        }
    }
    publisher.flush().await;
    wait_for(
        Duration::from_secs(60),
        "the washers' scores in the drift window",
        || async {
            let (_, r) = server.get("/api/v1/models/drift?device_type=washer").await;
            r["models"][0]["samples"].as_u64().unwrap_or(0) >= 100
        },
    )
    .await;
    // Let the last scores land: the count stops moving.
    let mut samples = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, r) = server.get("/api/v1/models/drift?device_type=washer").await;
        let now = r["models"][0]["samples"].as_u64().unwrap_or(0);
        if now == samples {
            break;
        }
        samples = now;
    }
    let (status, report) = server
        .get("/api/v1/models/drift?device_type=washer&status=drift")
        .await;
    assert_eq!(status, 200, "{report}");
    let washer = &report["models"][0];
    assert_eq!(washer["status"], "drift", "{washer:#}");
    assert!(washer["model_version"]
        .as_str()
        .unwrap()
        .starts_with("washer-"));
    assert!(
        washer["baseline_rows"].as_u64().unwrap() > 1000,
        "{washer:#}"
    );
    let drain = washer["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "drain_time_s.last")
        .unwrap_or_else(|| panic!("drain_time_s.last has drifted: {washer:#}"));
    assert_eq!(drain["channel"], "drain_time_s");
    assert!(drain["psi"].as_f64().unwrap() >= 0.25, "{drain}");
    assert!(drain["baseline_mean"].as_f64().unwrap() < 600.0, "{drain}");
    assert_eq!(drain["mean"], 1500.0);

    let psi = metric(
        &server,
        "fixahead_model_drift_psi{device_type=\"washer\",feature=\"drain_time_s.last\"}",
    )
    .await;
    assert_eq!(psi, drain["psi"].as_f64().unwrap());
    assert_eq!(
        metric(
            &server,
            "fixahead_model_drift_status{device_type=\"washer\",status=\"drift\"}"
        )
        .await,
        1.0
    );
    let (status, _) = server.get("/api/v1/models/drift?status=sideways").await;
    assert_eq!(status, 400);
}
