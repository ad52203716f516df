//! `GET /api/v1/kpis` against the real router: tickets moved through the ticket
//! service on an injected clock, the report read back, and the 4xx of bad parameters.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use api::{
    router, AccessStore, AppState, DiagnosisContext, OutcomeInput, Role, TicketConfig,
    TicketService,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::{DeviceId, OutcomeKind, Prediction, ProfileSet, TicketStatus, Timestamp};
use serde_json::Value;
use store::hot::{HotStore, StoreReader};
use store::Synchronous;
use tower::ServiceExt;

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;
const HOUR: i64 = 3_600_000;

fn flag(device: &str, component: &str) -> Prediction {
    Prediction {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        component: component.into(),
        ts: Timestamp(T0),
        risk: 0.9,
        threshold: 0.5,
        flagged: true,
        model_version: "washer-v1".into(),
        top_features: Vec::new(),
        lead_time_days: None,
        warming_up: false,
    }
}

async fn get(app: &axum::Router, uri: &str, key: &str) -> (StatusCode, Value) {
    let req = Request::get(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_kpis_of_tickets_moved_through_the_service_and_clear_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let hot = dir.path().join("hot.db");
    drop(HotStore::open(&hot, Synchronous::Normal).unwrap());
    let now = Arc::new(AtomicI64::new(T0));
    let clock = {
        let now = Arc::clone(&now);
        Arc::new(move || Timestamp(now.load(Ordering::SeqCst)))
    };
    let tickets = TicketService::open_with_clock(
        &dir.path().join("tickets.db"),
        TicketConfig::default(),
        clock,
    )
    .unwrap();
    let access = AccessStore::open_in(dir.path()).unwrap();
    let key = |role: Role| access.create(role, &format!("{role} key")).unwrap().0;
    let (planner, admin, engineer, integration) = (
        key(Role::Planner),
        key(Role::Admin),
        key(Role::Engineer),
        key(Role::Integration),
    );

    // Two flags at T0: wm-1's drain pump (repaired: answered after 1 h, one visit,
    // resolved after 5 h as a confirmed failure) and wm-2's heater (dismissed after 2 h).
    tickets
        .record_predictions(
            &[flag("wm-1", "drain_pump"), flag("wm-2", "heater")],
            &DiagnosisContext::default(),
        )
        .unwrap();
    let list = tickets.list(&Default::default()).unwrap();
    let id = |d: &str| list.iter().find(|t| t.device_id.as_str() == d).unwrap().id;
    let (repair, dismissed) = (id("wm-1"), id("wm-2"));
    now.store(T0 + HOUR, Ordering::SeqCst);
    tickets
        .transition(repair, TicketStatus::Acknowledged, "li.planner", "", None)
        .unwrap();
    now.store(T0 + 2 * HOUR, Ordering::SeqCst);
    tickets
        .transition(dismissed, TicketStatus::Dismissed, "li.planner", "", None)
        .unwrap();
    tickets
        .transition(repair, TicketStatus::InProgress, "wang.eng", "", None)
        .unwrap();
    now.store(T0 + 5 * HOUR, Ordering::SeqCst);
    let confirmed = OutcomeInput {
        kind: Some(OutcomeKind::ConfirmedFailure),
        ..OutcomeInput::default()
    };
    tickets
        .transition(
            repair,
            TicketStatus::Resolved,
            "wang.eng",
            "",
            Some(confirmed),
        )
        .unwrap();

    let app = router(
        AppState::new(
            tickets,
            StoreReader::open(&hot).unwrap(),
            ProfileSet::builtin(),
            prometheus::Registry::new(),
            Arc::new(|| Value::Null),
        )
        .with_access(access),
    );

    // Default period: the 30 days up to the service's now (T0 + 5 h).
    let (status, r) = get(&app, "/api/v1/kpis?group_by=source", &planner).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let k = &r["overall"];
    assert_eq!(k["counts"]["opened"], 2);
    assert_eq!(k["counts"]["by_source"]["proactive"], 2);
    // Responses 1 h (acknowledged) and 2 h (dismissed): mean 1.5, p50 1, p90 2.
    assert_eq!(k["response"]["count"], 2);
    assert_eq!(k["response"]["mean_hours"], 1.5);
    assert_eq!(k["response"]["p50_hours"], 1.0);
    assert_eq!(k["response"]["p90_hours"], 2.0);
    // One resolution of 5 h; the dismissal is none.
    assert_eq!(k["resolution"]["count"], 1);
    assert_eq!(k["resolution"]["mean_hours"], 5.0);
    // One repair, one visit, not reopened: fixed the first time.
    assert_eq!(k["first_time_fix"]["repairs"], 1);
    assert_eq!(k["first_time_fix"]["rate"], 1.0);
    // Its own flag warned of it, 5 h ahead (the failure defaults to the resolution).
    assert_eq!(k["warned_in_advance"]["failures"], 1);
    assert_eq!(k["warned_in_advance"]["warned"], 1);
    assert_eq!(k["warned_in_advance"]["lead_time"]["mean_hours"], 5.0);
    // Two ended flags, one dismissed.
    assert_eq!(k["false_alarms"]["ended_proactive"], 2);
    assert_eq!(k["false_alarms"]["share"], 0.5);
    assert!(k["satisfaction"]["mean_score"].is_null());
    assert_eq!(r["groups"][0]["key"], "proactive");
    assert_eq!(r["groups"][0]["kpis"]["counts"]["opened"], 2);
    assert_eq!(
        r["series"].as_array().unwrap().len(),
        31,
        "30 days from mid-day"
    );
    assert_eq!(r["dissatisfied_at_most"], 2);

    // A week bucket over an explicit period; admins may read too.
    let (status, r) = get(
        &app,
        "/api/v1/kpis?from=2026-11-23T00:00:00Z&to=2026-11-30T00:00:00Z&bucket=week&group_by=engineer",
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["series"].as_array().unwrap().len(), 1);
    assert_eq!(r["series"][0]["start"], "2026-11-23T00:00:00.000Z");
    assert_eq!(r["series"][0]["kpis"]["counts"]["opened"], 2);
    assert_eq!(r["groups"][0]["key"], "unassigned");

    for (uri, words) in [
        (
            "/api/v1/kpis?from=2026-11-30T00:00:00Z&to=2026-11-23T00:00:00Z",
            "later than",
        ),
        (
            "/api/v1/kpis?from=2025-01-01T00:00:00Z&to=2026-11-23T00:00:00Z",
            "366 days",
        ),
        ("/api/v1/kpis?group_by=team", "group_by"),
        ("/api/v1/kpis?bucket=month", "bucket"),
        ("/api/v1/kpis?from=yesterday", "from"),
        ("/api/v1/kpis?colour=red", "colour"),
    ] {
        let (status, body) = get(&app, uri, &planner).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{uri}: {message}");
    }
    for key in [&engineer, &integration] {
        let (status, _) = get(&app, "/api/v1/kpis", key).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
