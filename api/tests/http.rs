//! The HTTP API against real stores in a temporary directory, without a socket.

use std::path::Path;
use std::sync::Arc;

use api::{router, AppState, DiagnosisContext, TicketConfig, TicketService};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use domain::{decode, Contribution, DeviceId, Prediction, ProfileSet, Timestamp};
use serde_json::Value;
use store::hot::{HotStore, StoreItem, StoreReader};
use store::Synchronous;
use tower::ServiceExt;

/// The admin key every request carries.
const ADMIN_KEY: &str = "test-admin-key-0123456789abcdefghij";

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;

struct App {
    _dir: tempfile::TempDir,
    router: Router,
    tickets: TicketService,
    access: api::AccessStore,
}

fn fill_hot_store(path: &Path, profiles: &ProfileSet) {
    let mut store = HotStore::open(path, Synchronous::Normal).unwrap();
    let telemetry = |device: &str, seq: u64, readings: &str| {
        let payload = format!(
            r#"{{"ts": {}, "seq": {seq}, "type": "washer", "model": "WM-500", "fw": "2.4.1", "readings": {readings}}}"#,
            T0 + seq as i64 * 60_000
        );
        decode(
            &format!("fixahead/v1/{device}/telemetry"),
            payload.as_bytes(),
            profiles,
        )
        .unwrap()
    };
    let messages = [
        telemetry("wm-1", 1, r#"{"drain_time_s": 12.5, "vibration_g": 0.11}"#),
        telemetry("wm-1", 2, r#"{"drain_time_s": 31.0, "x_new": 7}"#),
        telemetry("wm-2", 1, r#"{"drain_time_s": 11.0}"#),
        decode(
            "fixahead/v1/wm-1/fault",
            format!(
                r#"{{"ts": {}, "seq": 3, "type": "washer", "model": "WM-500", "batch": "B2025-07", "region": "north", "code": "E21", "state": "raised"}}"#,
                T0 + 180_000
            )
            .as_bytes(),
            profiles,
        )
        .unwrap(),
    ];
    let mut items: Vec<StoreItem<'_>> = messages
        .iter()
        .map(|m| StoreItem::Message {
            message: m,
            received_at: Timestamp(T0 + 1),
        })
        .collect();
    let bad = b"{not json";
    let rejection = decode("fixahead/v1/wm-3/telemetry", bad, profiles).unwrap_err();
    items.push(StoreItem::DeadLetter {
        topic: "fixahead/v1/wm-3/telemetry",
        payload: bad,
        rejection: &rejection,
        received_at: Timestamp(T0 + 2),
    });
    items.push(StoreItem::DeadLetter {
        topic: "fixahead/v1/wm-3/telemetry",
        payload: bad,
        rejection: &rejection,
        received_at: Timestamp(T0 + 3),
    });
    store.commit(&items).unwrap();
}

fn prediction(device: &str, component: &str, risk: f64, flagged: bool) -> Prediction {
    Prediction {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        component: component.into(),
        ts: Timestamp(T0 + 240_000),
        risk,
        threshold: 0.6,
        flagged,
        model_version: "washer-v1".into(),
        top_features: vec![Contribution {
            feature: "drain_time_s.ewma_fast".into(),
            value: 31.0,
            contribution: 1.4,
            normal_range: Some((10.0, 20.0)),
        }],
        lead_time_days: None,
        warming_up: false,
    }
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let profiles = ProfileSet::builtin();
    let hot = dir.path().join("hot.db");
    fill_hot_store(&hot, &profiles);
    let store = StoreReader::open(&hot).unwrap();
    let tickets =
        TicketService::open(&dir.path().join("tickets.db"), TicketConfig::default()).unwrap();

    let faults = store.recent_faults("wm-1", 20).unwrap();
    let ctx = DiagnosisContext::from_records(profiles.get("washer").cloned(), &faults);
    tickets
        .record_predictions(
            &[
                prediction("wm-1", "drain_pump", 0.95, true),
                prediction("wm-1", "heater", 0.72, true),
                prediction("wm-1", "motor_bearing", 0.1, false),
            ],
            &ctx,
        )
        .unwrap();
    tickets
        .record_predictions(
            &[prediction("wm-2", "drain_pump", 0.65, true)],
            &DiagnosisContext::default(),
        )
        .unwrap();

    // The process's own metrics, registered in the one registry the API serves.
    let registry = prometheus::Registry::new();
    let lead = prometheus::IntCounter::new("lead_metric_total", "x").unwrap();
    lead.inc_by(3);
    registry.register(Box::new(lead)).unwrap();
    let state = AppState::new(
        tickets.clone(),
        store,
        profiles,
        registry,
        Arc::new(|| serde_json::json!({"ingest": {"messages": 4}, "status": "ignored"})),
    );
    let access = api::AccessStore::open_in(dir.path()).unwrap();
    access.insert(ADMIN_KEY, api::Role::Admin, "tests").unwrap();
    let state = state.with_access(access.clone());
    App {
        _dir: dir,
        router: router(state),
        access,
        tickets,
    }
}

impl App {
    async fn request(&self, method: Method, uri: &str) -> (StatusCode, String) {
        let response = self
            .router
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .header("authorization", format!("Bearer {ADMIN_KEY}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, text) = self.request(Method::GET, uri).await;
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{uri}: body is not JSON ({e}): {text}"));
        (status, body)
    }

    /// Asserts the JSON error format and returns the message.
    async fn error(&self, uri: &str, status: StatusCode, code: &str) -> String {
        let (got, body) = self.get(uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
        body["error"]["message"].as_str().unwrap().to_owned()
    }
}

fn ids(body: &Value, key: &str) -> Vec<i64> {
    body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn health_merges_the_process_report() {
    let app = app();
    let (status, body) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["tickets"]["active"], 3);
    assert_eq!(body["ingest"]["messages"], 4);
}

#[tokio::test]
async fn metrics_append_the_api_counters() {
    let app = app();
    app.get("/api/v1/tickets/nope").await;
    let (status, text) = app.request(Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(
            "# HELP lead_metric_total x\n# TYPE lead_metric_total counter\nlead_metric_total 3\n"
        ),
        "{text}"
    );
    assert!(text.contains("fixahead_tickets_opened_total 3\n"), "{text}");
    // Three flagged pairs, one unflagged score: three flag episodes of four predictions.
    assert!(
        text.contains("fixahead_prediction_flags_total 3\n"),
        "{text}"
    );
    assert!(
        text.contains("fixahead_ticket_predictions_total 4\n"),
        "{text}"
    );
    assert!(text.contains("fixahead_tickets_active 3\n"), "{text}");
    assert!(
        text.contains("fixahead_api_requests_total{class=\"4xx\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn tickets_list_filters_and_pages() {
    let app = app();
    let (status, body) = app.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body, "tickets"), [3, 2, 1]);
    assert_eq!(body["next"], Value::Null);

    let (_, body) = app.get("/api/v1/tickets?device_id=wm-1").await;
    assert_eq!(ids(&body, "tickets"), [2, 1]);
    let (_, body) = app.get("/api/v1/tickets?priority=urgent").await;
    assert_eq!(ids(&body, "tickets"), [1]);
    assert_eq!(body["tickets"][0]["component"], "drain_pump");
    let (_, body) = app
        .get("/api/v1/tickets?component=drain_pump&status=active")
        .await;
    assert_eq!(ids(&body, "tickets"), [3, 1]);

    app.tickets
        .transition(3, domain::TicketStatus::Dismissed, "planner", "", None)
        .unwrap();
    let (_, body) = app.get("/api/v1/tickets?status=open,acknowledged").await;
    assert_eq!(ids(&body, "tickets"), [2, 1]);
    let (_, body) = app.get("/api/v1/tickets?status=dismissed").await;
    assert_eq!(ids(&body, "tickets"), [3]);

    let (_, page1) = app.get("/api/v1/tickets?limit=2").await;
    assert_eq!(ids(&page1, "tickets"), [3, 2]);
    assert_eq!(page1["next"], 2);
    let (_, page2) = app.get("/api/v1/tickets?limit=2&after=2").await;
    assert_eq!(ids(&page2, "tickets"), [1]);
    assert_eq!(page2["next"], Value::Null);
}

#[tokio::test]
async fn ticket_detail_has_diagnosis_and_log() {
    let app = app();
    let (status, t) = app.get("/api/v1/tickets/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["device_id"], "wm-1");
    assert_eq!(t["priority"], "urgent");
    assert_eq!(t["source"], "proactive");
    assert_eq!(t["status"], "open");
    assert_eq!(t["number"].as_str().unwrap().len(), 14);
    assert_eq!(t["diagnosis"]["recent_faults"][0]["code"], "E21");
    assert_eq!(t["diagnosis"]["recent_faults"][0]["title"], "Drain timeout");
    assert_eq!(t["diagnosis"]["likely_parts"][0], "drain pump assembly");
    assert_eq!(t["log"][0]["action"], "opened");
    assert_eq!(t["log"][0]["actor"], "fixahead");
}

#[tokio::test]
async fn bad_query_parameters_are_400_json() {
    let app = app();
    for uri in [
        "/api/v1/tickets?bogus=1",
        "/api/v1/tickets?limit=abc",
        "/api/v1/tickets?limit=0",
        "/api/v1/tickets?limit=1001",
        "/api/v1/tickets?after=x",
        "/api/v1/tickets?priority=severe",
        "/api/v1/tickets?status=nope",
        "/api/v1/tickets?device_id=a%2Fb",
        "/api/v1/devices?kind=washer",
        "/api/v1/devices?limit=-1",
        "/api/v1/devices/wm-1/telemetry?from=yesterday",
        "/api/v1/devices/wm-1/telemetry?to=2026-13-01T00:00:00Z",
        "/api/v1/devices/wm-1/telemetry?limit=10001",
        "/api/v1/devices/wm-1/telemetry?from=1795500200000&to=1795500100000",
        "/api/v1/devices/wm-1/telemetry?form=1",
        "/api/v1/dead-letters?before=last",
        "/api/v1/tickets/abc",
        "/api/v1/tickets/1.5",
        "/api/v1/devices/bad.id",
        "/api/v1/devices/bad%20id/telemetry",
    ] {
        let message = app.error(uri, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(!message.is_empty(), "{uri}");
    }
    let message = app
        .error(
            "/api/v1/tickets?bogus=1",
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
    assert!(message.contains("bogus"), "{message}");
}

#[tokio::test]
async fn unknown_things_are_404_json() {
    let app = app();
    for uri in [
        "/api/v1/tickets/999",
        "/api/v1/devices/wm-404",
        "/api/v1/devices/wm-404/telemetry",
        "/api/v1/nothing",
        "/",
    ] {
        app.error(uri, StatusCode::NOT_FOUND, "not_found").await;
    }
    let (status, text) = app.request(Method::DELETE, "/api/v1/tickets").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn device_detail_has_readings_risk_tickets_and_faults() {
    let app = app();
    let (status, d) = app.get("/api/v1/devices/wm-1").await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["device_id"], "wm-1");
    assert_eq!(d["type"], "washer");
    assert_eq!(d["model"], "WM-500");
    assert_eq!(d["messages"], 3);
    assert_eq!(
        (d["batch"].as_str(), d["region"].as_str()),
        (Some("B2025-07"), Some("north"))
    );

    let drain = &d["latest_readings"]["drain_time_s"];
    assert_eq!(drain["value"], 31.0);
    assert_eq!(drain["ts"], Timestamp(T0 + 120_000).to_rfc3339());
    assert_eq!(drain["unit"], "s");
    assert_eq!(drain["min"], 0.0);
    assert_eq!(drain["max"], 1800.0);
    // From the older message, since the newest did not carry it.
    assert_eq!(d["latest_readings"]["vibration_g"]["value"], 0.11);
    assert_eq!(d["latest_readings"]["x_new"]["unit"], Value::Null);

    let risk = d["risk"].as_array().unwrap();
    let components: Vec<_> = risk
        .iter()
        .map(|r| r["component"].as_str().unwrap())
        .collect();
    assert_eq!(components, ["drain_pump", "heater", "motor_bearing"]);
    assert_eq!(risk[0]["risk"], 0.95);
    assert_eq!(risk[2]["flagged"], false);

    let open = d["open_tickets"].as_array().unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[1]["component"], "drain_pump");
    assert_eq!(open[1]["priority"], "urgent");

    assert_eq!(d["recent_faults"][0]["code"], "E21");
    assert_eq!(d["recent_faults"][0]["title"], "Drain timeout");
    assert_eq!(d["recent_faults"][0]["component"], "drain_pump");
}

#[tokio::test]
async fn devices_list_and_telemetry() {
    let app = app();
    let (status, body) = app.get("/api/v1/devices?type=washer&limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["devices"][0]["device_id"], "wm-1");
    assert_eq!(body["next"], "wm-1");
    let (_, body) = app.get("/api/v1/devices?after=wm-1").await;
    assert_eq!(body["devices"][0]["device_id"], "wm-2");
    assert_eq!(body["devices"][0]["batch"], Value::Null, "never reported");
    assert_eq!(body["next"], Value::Null);
    let (_, body) = app.get("/api/v1/devices?type=refrigerator").await;
    assert_eq!(body["devices"].as_array().unwrap().len(), 0);

    let (status, body) = app.get("/api/v1/devices/wm-1/telemetry").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["device_id"], "wm-1");
    assert_eq!(body["telemetry"].as_array().unwrap().len(), 2);
    let (_, body) = app
        .get("/api/v1/devices/wm-1/telemetry?from=2026-11-24T06:01:30Z")
        .await;
    let rows = body["telemetry"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["seq"], 2);
    assert_eq!(rows[0]["readings"]["drain_time_s"], 31.0);
    let (_, body) = app
        .get(&format!(
            "/api/v1/devices/wm-1/telemetry?to={}&limit=5",
            T0 + 90_000
        ))
        .await;
    assert_eq!(body["telemetry"][0]["seq"], 1);
    assert_eq!(body["telemetry"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn dead_letters_page_newest_first() {
    let app = app();
    let (status, body) = app.get("/api/v1/dead-letters?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["dead_letters"][0]["id"], 2);
    assert_eq!(body["dead_letters"][0]["reason"], "malformed_json");
    assert_eq!(body["next"], 2);
    let (_, body) = app.get("/api/v1/dead-letters?before=2").await;
    assert_eq!(ids(&body, "dead_letters"), [1]);
    assert_eq!(body["next"], Value::Null);
}

#[tokio::test]
async fn serve_shuts_down_gracefully() {
    let app = app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, app.router.clone(), async {
        let _ = rx.await;
    }));
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

impl App {
    /// POSTs as the admin, or as `actor`: a key of that name (an engineer's when the
    /// name starts with `eng-`, else a planner's), made on first use.
    async fn post(&self, uri: &str, actor: Option<&str>, body: &str) -> (StatusCode, Value) {
        let key = match actor {
            None => ADMIN_KEY.to_owned(),
            Some(name) => {
                let key = format!("test-key-of-{name}-0123456789abcdefghij");
                let role = if name.starts_with("eng-") {
                    api::Role::Engineer
                } else {
                    api::Role::Planner
                };
                // A second insert of the same key is refused; the first one stands.
                let _ = self.access.insert(&key, role, name);
                key
            }
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"));
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{uri}: body is not JSON ({e}): {text}"));
        (status, body)
    }

    /// [`App::post`], asserting the status; returns the body.
    async fn expect(
        &self,
        uri: &str,
        actor: Option<&str>,
        body: &str,
        status: StatusCode,
    ) -> Value {
        let (got, answer) = self.post(uri, actor, body).await;
        assert_eq!(got, status, "POST {uri} as {actor:?} with {body}: {answer}");
        answer
    }
}

// One scenario on one ticket: each step starts from the state the previous one left.
#[tokio::test]
async fn transitions_assignment_and_outcome_over_http() {
    let app = app();
    // Ticket 1: wm-1 drain_pump, open.
    let body = app
        .expect(
            "/api/v1/tickets/1/transitions",
            Some("planner-7"),
            r#"{"to": "acknowledged", "note": "calling the customer"}"#,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["status"], "acknowledged");
    let last = body["log"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("planner-7 (key ")),
        "{last}"
    );
    assert_eq!(last["note"], "open -> acknowledged: calling the customer");
    assert_eq!(
        body["allowed_transitions"],
        serde_json::json!(["scheduled", "in_progress", "dismissed", "resolved"])
    );

    // A move the table does not allow: 409 with the allowed list.
    let body = app
        .expect(
            "/api/v1/tickets/1/transitions",
            None,
            r#"{"to": "closed"}"#,
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(
        body["error"]["allowed"],
        serde_json::json!(["scheduled", "in_progress", "dismissed", "resolved"])
    );

    // Bodies: malformed JSON is a 400, a body that does not fit a 422 naming the field.
    app.expect(
        "/api/v1/tickets/1/transitions",
        None,
        "{not json",
        StatusCode::BAD_REQUEST,
    )
    .await;
    for (body, field) in [
        (r#"{"to": "acknowledged", "colour": 1}"#, "colour"),
        (r#"{"to": "sideways"}"#, "to"),
        (r#"{"note": "x"}"#, "to"),
        (
            r#"{"to": "resolved", "outcome": {"kind": "no_fault_found", "parts_replaced": ["x"]}}"#,
            "parts_replaced",
        ),
    ] {
        let b = app
            .expect(
                "/api/v1/tickets/1/transitions",
                None,
                body,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    app.expect(
        "/api/v1/tickets/1/transitions",
        None,
        r#"{"to": "resolved"}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Assignment.
    let body = app
        .expect(
            "/api/v1/tickets/1/assignment",
            Some("planner-7"),
            r#"{"engineer": "eng-3", "window_start": "2026-11-25T08:00:00Z",
                "window_end": "2026-11-25T10:00:00Z", "region": "north"}"#,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["assignment"]["engineer"], "eng-3");
    assert_eq!(
        body["assignment"]["window_start"],
        "2026-11-25T08:00:00.000Z"
    );
    assert!(!body["assignment"]["skills"].as_array().unwrap().is_empty());
    app.expect(
        "/api/v1/tickets/1/assignment",
        None,
        r#"{"window_start": "2026-11-25T08:00:00Z"}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Engineers act only on their own tickets (not eng-9's), and only towards the
    // repair (engineers do not dismiss).
    for (uri, engineer, body) in [
        (
            "/api/v1/tickets/1/transitions",
            "eng-9",
            r#"{"to": "in_progress"}"#,
        ),
        (
            "/api/v1/tickets/1/transitions",
            "eng-3",
            r#"{"to": "dismissed"}"#,
        ),
        (
            "/api/v1/tickets/1/outcome",
            "eng-9",
            r#"{"kind": "no_fault_found"}"#,
        ),
    ] {
        app.expect(uri, Some(engineer), body, StatusCode::FORBIDDEN)
            .await;
    }

    // Outcome: an unknown component of the device type is refused.
    app.expect(
        "/api/v1/tickets/1/outcome",
        None,
        r#"{"kind": "confirmed_failure", "component": "flux_capacitor"}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let body = app
        .expect(
            "/api/v1/tickets/1/outcome",
            Some("eng-3"),
            r#"{"kind": "confirmed_failure", "parts_replaced": ["drain pump assembly"],
                "failed_at": "2026-11-24T05:00:00Z", "note": "impeller broken"}"#,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["outcome"]["component"], "drain_pump");
    assert!(
        body["outcome"]["recorded_by"]
            .as_str()
            .is_some_and(|a| a.starts_with("eng-3 (key ")),
        "{body}"
    );
    let body = app
        .expect(
            "/api/v1/tickets/1/transitions",
            Some("eng-3"),
            r#"{"to": "resolved", "note": "done"}"#,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body["status"], "resolved");
    app.expect(
        "/api/v1/tickets/99/transitions",
        None,
        r#"{"to": "closed"}"#,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Filters: source and opened_after.
    let (_, body) = app.get("/api/v1/tickets?source=reactive").await;
    assert!(body["tickets"].as_array().unwrap().is_empty());
    let (_, body) = app.get("/api/v1/tickets?source=proactive").await;
    assert_eq!(body["tickets"].as_array().unwrap().len(), 3);
    let (_, body) = app
        .get("/api/v1/tickets?opened_after=2100-01-01T00:00:00Z")
        .await;
    assert!(body["tickets"].as_array().unwrap().is_empty());
    app.error(
        "/api/v1/tickets?opened_after=soon",
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let (_, text) = app.request(Method::GET, "/metrics").await;
    assert!(
        text.contains("fixahead_tickets{status=\"resolved\"} 1"),
        "{text}"
    );
    assert!(text.contains("fixahead_tickets_sla_breaches_total{kind=\"respond\"} 0"));
}

/// One parsed SSE frame: (id, event, data).
type Frame = (i64, String, Value);

/// Reads `n` events from an SSE body.
async fn read_events(
    stream: &mut (impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
    buffer: &mut String,
    n: usize,
) -> Vec<Frame> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while out.len() < n {
        if let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, None, None);
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse::<i64>().unwrap());
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(v.trim()).unwrap());
                }
            }
            if let (Some(id), Some(event), Some(data)) = (id, event, data) {
                out.push((id, event, data));
            }
            continue;
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    out
}

async fn open_events(
    app: &App,
    uri: &str,
    last_event_id: Option<i64>,
) -> axum::body::BodyDataStream {
    let mut request = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN_KEY}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    response.into_body().into_data_stream()
}

#[tokio::test]
async fn events_resume_after_the_last_event_id_and_miss_nothing() {
    let app = app();
    // The fixture wrote 3 tickets: 3 flags and 3 openings.
    let (status, body) = app.get("/api/v1/events?after=x").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );

    let mut stream = open_events(&app, "/api/v1/events?after=0", None).await;
    let mut buffer = String::new();
    let first = read_events(&mut stream, &mut buffer, 4).await;
    let ids: Vec<i64> = first.iter().map(|f| f.0).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(first[0].1, "prediction.flagged");
    assert_eq!(first[1].1, "ticket.opened");
    assert_eq!(first[1].2["ticket_id"], 1);
    assert_eq!(
        first[1].2["data"]["ticket"]["number"]
            .as_str()
            .unwrap()
            .len(),
        14
    );
    drop(stream);

    // More changes while disconnected.
    let tickets = app.tickets.clone();
    tokio::task::spawn_blocking(move || {
        for id in 1..=3 {
            tickets
                .transition(id, domain::TicketStatus::Acknowledged, "planner", "", None)
                .unwrap();
        }
    })
    .await
    .unwrap();

    let mut stream = open_events(&app, "/api/v1/events", Some(4)).await;
    let mut buffer = String::new();
    let rest = read_events(&mut stream, &mut buffer, 5).await;
    let ids: Vec<i64> = rest.iter().map(|f| f.0).collect();
    assert_eq!(ids, [5, 6, 7, 8, 9], "exactly the rest, in order");
    assert!(rest[2..].iter().all(|f| f.1 == "ticket.updated"));

    // Live: a change after connecting arrives without reconnecting.
    let tickets = app.tickets.clone();
    tokio::task::spawn_blocking(move || {
        tickets
            .transition(1, domain::TicketStatus::Scheduled, "planner", "", None)
            .unwrap();
    })
    .await
    .unwrap();
    let live = read_events(&mut stream, &mut buffer, 1).await;
    assert_eq!(live[0].0, 10);
    assert_eq!(live[0].2["data"]["ticket"]["status"], "scheduled");
}

/// Checks `value` against a schema of the OpenAPI document `doc`: `$ref`, `allOf`,
/// `oneOf`/`anyOf`, `type` (one or a list), `enum`, `required`, `properties` (and no
/// property the schema does not declare), `items`. The subset utoipa emits.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(any) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        if !any.iter().any(|s| conforms(doc, s, value, at).is_ok()) {
            return Err(format!("{at}: {value} matches none of {schema}"));
        }
        return Ok(());
    }
    let mut declared: Vec<String> = Vec::new();
    let mut parts = vec![schema.clone()];
    while let Some(part) = parts.pop() {
        let part = match part["$ref"].as_str() {
            Some(r) => {
                doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")].clone()
            }
            None => part,
        };
        if let Some(all) = part["allOf"].as_array() {
            parts.extend(all.iter().cloned());
        }
        if let Some(types) = part.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let ok = types.iter().any(|t| match *t {
                "null" => value.is_null(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                _ => false,
            });
            if !ok {
                return Err(format!("{at}: {value} is not {types:?}"));
            }
        }
        if let Some(allowed) = part["enum"].as_array() {
            if !allowed.contains(value) {
                return Err(format!("{at}: {value} not in {allowed:?}"));
            }
        }
        if let (Some(obj), Some(props)) = (value.as_object(), part["properties"].as_object()) {
            for name in part["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if !obj.contains_key(name) {
                    return Err(format!("{at}: required {name} missing"));
                }
            }
            for (name, sub) in props {
                declared.push(name.clone());
                if let Some(v) = obj.get(name) {
                    conforms(doc, sub, v, &format!("{at}.{name}"))?;
                }
            }
        }
        if let (Some(items), Some(sub)) = (value.as_array(), part.get("items")) {
            for (i, v) in items.iter().enumerate() {
                conforms(doc, sub, v, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Some(obj) = value.as_object() {
        if !declared.is_empty() {
            if let Some(extra) = obj.keys().find(|k| !declared.contains(k)) {
                return Err(format!("{at}: undocumented field {extra}"));
            }
        }
    }
    Ok(())
}

/// The 200 (or 201) response schema of an operation.
fn response_schema(doc: &Value, method: &str, path: &str) -> Value {
    let op = &doc["paths"][path][method]["responses"];
    let ok = if op["200"].is_object() {
        &op["200"]
    } else {
        &op["201"]
    };
    ok["content"]["application/json"]["schema"].clone()
}

#[tokio::test]
async fn ticket_responses_conform_to_the_openapi_document() {
    let app = app();
    let doc = serde_json::to_value(api::http::openapi()).unwrap();
    let check = |method: &str, path: &str, body: &Value| {
        let schema = response_schema(&doc, method, path);
        assert!(schema.is_object(), "{method} {path} documents a JSON body");
        assert!(
            schema["$ref"].is_string() || schema["properties"].is_object(),
            "{method} {path}: a typed schema, not a bare object: {schema}"
        );
        if let Err(e) = conforms(&doc, &schema, body, "body") {
            panic!("{method} {path}: {e}\n{body:#}");
        }
    };
    let (status, list) = app.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list["tickets"].as_array().unwrap().is_empty());
    check("get", "/api/v1/tickets", &list);
    let (_, one) = app.get("/api/v1/tickets/1").await;
    check("get", "/api/v1/tickets/{id}", &one);
    let (status, moved) = app
        .post(
            "/api/v1/tickets/1/transitions",
            None,
            r#"{"to": "acknowledged"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    check("post", "/api/v1/tickets/{id}/transitions", &moved);
    let (status, assigned) = app
        .post(
            "/api/v1/tickets/1/assignment",
            None,
            r#"{"engineer": "eng-3", "region": "north"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");
    check("post", "/api/v1/tickets/{id}/assignment", &assigned);
    let (status, done) = app
        .post(
            "/api/v1/tickets/1/outcome",
            None,
            r#"{"kind": "confirmed_failure", "parts_replaced": ["drain pump assembly"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    check("post", "/api/v1/tickets/{id}/outcome", &done);
    // The checker itself rejects what does not fit.
    let mut bad = one.clone();
    bad["status"] = Value::from("exploded");
    assert!(conforms(
        &doc,
        &response_schema(&doc, "get", "/api/v1/tickets/{id}"),
        &bad,
        "b"
    )
    .is_err());
    bad = one.clone();
    bad["surprise"] = Value::from(1);
    assert!(conforms(
        &doc,
        &response_schema(&doc, "get", "/api/v1/tickets/{id}"),
        &bad,
        "b"
    )
    .is_err());
}

// Acknowledging a batch alarm: once, with a note, only while active; in the list after.
#[tokio::test]
async fn an_alarm_is_acknowledged_once_with_a_note_over_http() {
    let app = app();
    let db = store::tickets::TicketDb::open(&app._dir.path().join("tickets.db")).unwrap();
    let cell = |value: &str| store::tickets::AlarmCell {
        model: "WM-500".into(),
        dimension: "batch".into(),
        value: value.into(),
        component: "drain_pump".into(),
        statistic: "confirmed_failures".into(),
    };
    let numbers = store::tickets::AlarmNumbers {
        p_value: 1e-9,
        q_value: 1e-8,
        observed: 12,
        expected: 2.5,
        exposure: 400.0,
        ratio: Some(4.8),
    };
    let (active, cleared) = db
        .write(|tx| {
            let a = tx.insert_alarm(&cell("B1"), &numbers, domain::Timestamp(1))?;
            let c = tx.insert_alarm(&cell("B2"), &numbers, domain::Timestamp(1))?;
            tx.clear_alarm(c, domain::Timestamp(2))?;
            Ok::<_, store::Error>((a, c))
        })
        .unwrap();
    let uri = |id: i64| format!("/api/v1/fleet/alarms/{id}/acknowledge");
    let e = app
        .expect(
            &uri(active),
            Some("wang"),
            r#"{"note": "  "}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(e["error"]["field"], "note", "{e}");
    app.expect(
        &uri(active),
        Some("eng-li"),
        r#"{"note": "x"}"#,
        StatusCode::FORBIDDEN,
    )
    .await;
    app.expect(
        &uri(999),
        Some("wang"),
        r#"{"note": "x"}"#,
        StatusCode::NOT_FOUND,
    )
    .await;
    app.expect(
        &uri(cleared),
        Some("wang"),
        r#"{"note": "x"}"#,
        StatusCode::CONFLICT,
    )
    .await;
    let a = app
        .expect(
            &uri(active),
            Some("wang"),
            r#"{"note": "Quality hold on B1"}"#,
            StatusCode::OK,
        )
        .await;
    assert_eq!(a["status"], "active");
    assert_eq!(a["acknowledged"]["note"], "Quality hold on B1");
    assert!(
        a["acknowledged"]["actor"]
            .as_str()
            .unwrap()
            .starts_with("wang (key "),
        "{a}"
    );
    let again = app
        .expect(
            &uri(active),
            None,
            r#"{"note": "me too"}"#,
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        again["error"]["message"].as_str().unwrap().contains("wang"),
        "{again}"
    );
    let (status, list) = app.get("/api/v1/fleet/alarms?status=active").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["alarms"][0]["acknowledged"]["note"],
        "Quality hold on B1"
    );
    let audit = app.access.audit_log(None, 20).unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.record.summary == format!("acknowledged alarm {active}")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn satisfaction_and_the_callback_over_http() {
    let app = app();
    let answer = r#"{"score": 2, "comment": "The engineer came late", "channel": "web"}"#;
    // Engineers may not record satisfaction; an active ticket has none to record.
    app.expect(
        "/api/v1/tickets/3/satisfaction",
        Some("eng-li"),
        answer,
        StatusCode::FORBIDDEN,
    )
    .await;
    app.expect(
        "/api/v1/tickets/3/satisfaction",
        Some("wang"),
        answer,
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        "/api/v1/tickets/3/transitions",
        Some("wang"),
        r#"{"to": "resolved", "outcome": {"kind": "no_fault_found"}}"#,
        StatusCode::OK,
    )
    .await;
    for bad in [
        r#"{"score": 6}"#,
        r#"{"score": 0}"#,
        r#"{"score": 3, "channel": "fax"}"#,
        r#"{"score": 3, "mood": "bad"}"#,
    ] {
        app.expect(
            "/api/v1/tickets/3/satisfaction",
            Some("wang"),
            bad,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    app.expect(
        "/api/v1/tickets/999/satisfaction",
        Some("wang"),
        answer,
        StatusCode::NOT_FOUND,
    )
    .await;
    let t = app
        .expect(
            "/api/v1/tickets/3/satisfaction",
            Some("wang"),
            answer,
            StatusCode::OK,
        )
        .await;
    assert_eq!(t["satisfaction"]["score"], 2, "{t}");
    assert_eq!(t["satisfaction"]["channel"], "web");
    assert!(t["callback"]["due"].is_string(), "{t}");
    assert!(t["callback"]["done_at"].is_null());
    assert!(t["steps"].as_array().is_some_and(|s| !s.is_empty()), "{t}");
    app.expect(
        "/api/v1/tickets/3/callback",
        Some("wang"),
        r#"{"note": " "}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    app.expect(
        "/api/v1/tickets/3/callback",
        Some("eng-li"),
        r#"{"note": "called"}"#,
        StatusCode::FORBIDDEN,
    )
    .await;
    let t = app
        .expect(
            "/api/v1/tickets/3/callback",
            Some("wang"),
            r#"{"note": "Apologised; visit rebooked"}"#,
            StatusCode::OK,
        )
        .await;
    assert_eq!(t["callback"]["note"], "Apologised; visit rebooked");
    assert!(t["callback"]["done_at"].is_string());
    app.expect(
        "/api/v1/tickets/3/callback",
        Some("wang"),
        r#"{"note": "again"}"#,
        StatusCode::CONFLICT,
    )
    .await;
    app.expect(
        "/api/v1/tickets/2/callback",
        Some("wang"),
        r#"{"note": "none"}"#,
        StatusCode::CONFLICT,
    )
    .await;
}
