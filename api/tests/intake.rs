//! Customer reports and the device directory over HTTP, against real stores in a
//! temporary directory, without a socket (docs/intake.md).

use std::sync::Arc;

use api::{router, AppState, DiagnosisContext, Role, TicketConfig, TicketService};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use domain::{decode, DeviceId, Prediction, ProfileSet, Timestamp};
use serde_json::{json, Value};
use store::hot::{HotStore, StoreItem, StoreReader};
use store::Synchronous;
use tower::ServiceExt;

const ADMIN: &str = "test-admin-key-0123456789abcdefghij";
const PLANNER: &str = "test-planner-key-0123456789abcdefgh";
const ENGINEER: &str = "test-engineer-key-0123456789abcdefg";
const INTEGRATION: &str = "test-integration-key-0123456789abcd";

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;

struct App {
    _dir: tempfile::TempDir,
    router: Router,
}

fn fill_hot_store(path: &std::path::Path, profiles: &ProfileSet) {
    let mut store = HotStore::open(path, Synchronous::Normal).unwrap();
    let telemetry = |device: &str, seq: u64, readings: &str| {
        let payload = format!(
            r#"{{"ts": {}, "seq": {seq}, "type": "washer", "model": "WM-500", "readings": {readings}}}"#,
            T0 + seq as i64 * 60_000
        );
        decode(
            &format!("fixahead/v1/{device}/telemetry"),
            payload.as_bytes(),
            profiles,
        )
        .unwrap()
    };
    let fault = |device: &str, seq: u64, code: &str| {
        let payload = format!(
            r#"{{"ts": {}, "seq": {seq}, "type": "washer", "model": "WM-500", "code": "{code}", "state": "raised"}}"#,
            T0 + seq as i64 * 60_000
        );
        decode(
            &format!("fixahead/v1/{device}/fault"),
            payload.as_bytes(),
            profiles,
        )
        .unwrap()
    };
    let messages = [
        telemetry("wm-1", 1, r#"{"drain_time_s": 31.0}"#),
        telemetry("wm-2", 1, r#"{"drain_time_s": 11.0}"#),
        fault("wm-2", 2, "E41"),
        telemetry("wm-3", 1, r#"{"drain_time_s": 12.0}"#),
        fault("wm-3", 2, "E23"),
    ];
    let items: Vec<StoreItem<'_>> = messages
        .iter()
        .map(|m| StoreItem::Message {
            message: m,
            received_at: Timestamp(T0 + 1),
        })
        .collect();
    store.commit(&items).unwrap();
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let profiles = ProfileSet::builtin();
    let hot = dir.path().join("hot.db");
    fill_hot_store(&hot, &profiles);
    let store = StoreReader::open(&hot).unwrap();
    let tickets =
        TicketService::open(&dir.path().join("tickets.db"), TicketConfig::default()).unwrap();
    // wm-1's drain pump is flagged: an active proactive ticket.
    tickets
        .record_predictions(
            &[Prediction {
                device_id: DeviceId::parse("wm-1").unwrap(),
                device_type: "washer".into(),
                component: "drain_pump".into(),
                ts: Timestamp(T0 + 120_000),
                risk: 0.9,
                threshold: 0.6,
                flagged: true,
                model_version: "washer-v1".into(),
                top_features: Vec::new(),
                lead_time_days: None,
                warming_up: false,
            }],
            &DiagnosisContext::from_records(profiles.get("washer").cloned(), &[]),
        )
        .unwrap();
    let state = AppState::new(
        tickets,
        store,
        profiles,
        prometheus::Registry::new(),
        Arc::new(|| serde_json::Value::Null),
    );
    let access = api::AccessStore::open_in(dir.path()).unwrap();
    access.insert(ADMIN, Role::Admin, "admin").unwrap();
    access.insert(PLANNER, Role::Planner, "planner").unwrap();
    access.insert(ENGINEER, Role::Engineer, "eng").unwrap();
    access
        .insert(INTEGRATION, Role::Integration, "crm")
        .unwrap();
    App {
        _dir: dir,
        router: router(state.with_access(access)),
    }
}

impl App {
    async fn call(
        &self,
        key: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {key}"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    async fn put_dir(&self, device: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            INTEGRATION,
            Method::PUT,
            &format!("/api/v1/devices/{device}/directory"),
            Some(body),
        )
        .await
    }

    async fn report(&self, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(key, Method::POST, "/api/v1/tickets", Some(body))
            .await
    }
}

#[tokio::test]
async fn the_directory_is_written_read_and_validated() {
    let app = app();
    let entry = json!({"serial": "SN-1", "customer_ref": "C-1", "customer_name": "Li Wei",
        "address": "1 Nanjing Rd", "lat": 31.23, "lon": 121.47, "region": "east"});
    let (status, body) = app.put_dir("wm-1", entry.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], "wm-1");
    assert_eq!(body["serial"], "SN-1");
    assert_eq!(body["lat"], 31.23);
    assert!(body["updated_at"].is_string());
    let (status, got) = app
        .call(
            ENGINEER,
            Method::GET,
            "/api/v1/devices/wm-1/directory",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, body);
    let (status, _) = app
        .call(ADMIN, Method::GET, "/api/v1/devices/wm-2/directory", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Validation: each a 422 naming its field.
    for (bad, field) in [
        (json!({"lat": 91.0, "lon": 0.0}), "lat"),
        (json!({"lat": 10.0, "lon": -180.5}), "lon"),
        (json!({"lat": 10.0}), "lat"),
        (json!({"serial": "SN\u{1b}[31m"}), "serial"),
        (json!({"customer_name": "x".repeat(201)}), "customer_name"),
        (json!({"region": "  "}), "region"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let (status, body) = app.put_dir("wm-2", bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{bad}: {body}");
    }
    let (status, _) = app.put_dir("bad%21id", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Another device's serial.
    let (status, body) = app.put_dir("wm-2", json!({"serial": "SN-1"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Who may write: planners and integrations, not engineers.
    let (status, _) = app
        .call(
            ENGINEER,
            Method::PUT,
            "/api/v1/devices/wm-2/directory",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            PLANNER,
            Method::PUT,
            "/api/v1/devices/wm-2/directory",
            Some(json!({"serial": "SN-2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn reports_join_or_open_and_find_devices_by_id_serial_or_customer() {
    let app = app();
    app.put_dir("wm-2", json!({"serial": "SN-2", "customer_ref": "C-9"}))
        .await;
    app.put_dir("wm-3", json!({"serial": "SN-3", "customer_ref": "C-9"}))
        .await;
    app.put_dir(
        "wm-9",
        json!({"serial": "SN-9", "customer_ref": "C-7", "region": "west"}),
    )
    .await;

    // wm-1 has an active drain-pump ticket: a drain complaint joins it.
    let (status, body) = app
        .report(
            PLANNER,
            json!({"device_id": "wm-1", "channel": "phone", "category": "down",
            "words": "Water stays in the drum", "component": "drain_pump"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "joined");
    assert_eq!(body["ticket"]["source"], "proactive");
    assert_eq!(body["ticket"]["priority"], "urgent");
    assert_eq!(
        body["ticket"]["reports"][0]["words"],
        "Water stays in the drum"
    );
    assert_eq!(body["planned"]["priority"], "urgent");
    assert!(body["planned"]["respond_by"].is_string());
    assert!(body["prejudgement"]["candidates"].is_array());

    // wm-3 by serial: a critical code of the drain pump, judged confidently.
    let (status, body) = app
        .report(
            INTEGRATION,
            json!({"serial": "SN-3", "channel": "app", "category": "error_code",
            "words": "Display shows E23"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["result"], "opened");
    assert_eq!(body["ticket"]["device_id"], "wm-3");
    assert_eq!(body["ticket"]["source"], "reactive");
    assert_eq!(body["ticket"]["channel"], "app");
    assert_eq!(body["ticket"]["component"], "drain_pump");
    assert_eq!(body["ticket"]["priority"], "urgent");
    assert_eq!(body["prejudgement"]["component"], "drain_pump");
    assert_eq!(body["prejudgement"]["evidence"][0]["kind"], "fault_code");
    assert_eq!(
        body["prejudgement"]["evidence"][0]["title"],
        "Drain pump blocked"
    );
    assert_eq!(body["ticket"]["prejudgement"], body["prejudgement"]);

    // A customer with two devices: 409 listing them; with the type still two washers.
    let (status, body) = app
        .report(
            PLANNER,
            json!({"customer_ref": "C-9", "channel": "web", "category": "noise",
            "words": "Loud"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("wm-2") && message.contains("wm-3"),
        "{message}"
    );
    let (status, _) = app
        .report(
            PLANNER,
            json!({"customer_ref": "C-9", "device_type": "dishwasher",
            "channel": "web", "category": "noise", "words": "Loud"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // wm-2: only a nuisance code; a healthy device opens one reactive ticket.
    let (status, body) = app
        .report(
            PLANNER,
            json!({"device_id": "wm-2", "channel": "installer",
            "category": "installation", "words": "Drain hose slope wrong"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["ticket"]["component"], "unknown");
    assert_eq!(body["prejudgement"]["evidence"][0]["kind"], "nuisance");
    assert_eq!(body["prejudgement"]["evidence"][0]["code"], "E41");
    assert_eq!(body["ticket"]["priority"], "important");
    assert_eq!(body["prejudgement"]["component"], Value::Null);

    // A directory-only device (never reported) by customer: a ticket, no data.
    let (status, body) = app
        .report(
            PLANNER,
            json!({"customer_ref": "C-7", "device_type": "washer",
            "channel": "phone", "category": "question", "words": "How do I descale?"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the type filter needs a known type: {body}"
    );
    let (status, body) = app
        .report(
            PLANNER,
            json!({"customer_ref": "C-7", "channel": "phone",
            "category": "question", "words": "How do I descale?"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["ticket"]["device_id"], "wm-9");
    assert_eq!(body["ticket"]["device_type"], "unknown");
    assert_eq!(body["ticket"]["priority"], "normal");
    assert_eq!(body["ticket"]["reports"][0]["customer_ref"], "C-7");
    assert_eq!(body["prejudgement"]["evidence"], json!([]));
}

#[tokio::test]
async fn bad_reports_get_a_clear_4xx() {
    let app = app();
    let base = json!({"channel": "phone", "category": "down", "words": "Dead"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, status, field) in [
        (
            with(json!({"device_id": "wm-404"})),
            StatusCode::NOT_FOUND,
            None,
        ),
        (with(json!({"serial": "NOPE"})), StatusCode::NOT_FOUND, None),
        (
            with(json!({"customer_ref": "NOPE"})),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            with(json!({"device_id": "bad id!"})),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            base.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("device_id"),
        ),
        (
            with(json!({"device_id": "wm-1", "serial": "SN"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("device_id"),
        ),
        (
            with(json!({"device_id": "wm-1", "category": "broken"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("category"),
        ),
        (
            with(json!({"device_id": "wm-1", "channel": "device"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("channel"),
        ),
        (
            with(json!({"device_id": "wm-1", "channel": "fax"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("channel"),
        ),
        (
            with(json!({"device_id": "wm-1", "words": "x".repeat(2001)})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("words"),
        ),
        (
            with(json!({"device_id": "wm-1", "words": "bell\u{7}"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("words"),
        ),
        (
            with(json!({"device_id": "wm-1", "component": "warp_core"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("component"),
        ),
        (
            with(json!({"device_id": "wm-1", "device_type": "dishwasher"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("device_type"),
        ),
        (
            with(json!({"device_id": "wm-1", "priority": "urgent"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("priority"),
        ),
    ] {
        let (got, answer) = app.report(PLANNER, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        }
    }
    // Engineers do not take reports.
    let (status, _) = app
        .report(ENGINEER, with(json!({"device_id": "wm-1"})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing was opened by any of them.
    let (_, list) = app.call(ADMIN, Method::GET, "/api/v1/tickets", None).await;
    assert_eq!(list["tickets"].as_array().unwrap().len(), 1);
}
