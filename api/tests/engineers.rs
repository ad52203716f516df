//! Engineers, rankings and the capacity check over HTTP, against the real router
//! without a socket (docs/dispatch.md).

use std::sync::Arc;

use api::dispatch::{DispatchConfig, Dispatcher};
use api::tickets::{DeviceSignals, DiagnosisContext, FaultSignal};
use api::{router, AccessStore, AppState, Role, TicketConfig, TicketService};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use domain::{DeviceId, Lang, ProfileSet, Timestamp};
use serde_json::{json, Value};
use store::hot::{HotStore, StoreReader};
use store::users::{NewUser, UserStore};
use store::Synchronous;
use tower::ServiceExt;

struct App {
    _dir: tempfile::TempDir,
    router: Router,
    keys: Vec<(Role, String)>,
    tickets: TicketService,
    access: AccessStore,
    users: UserStore,
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let hot = dir.path().join("hot.db");
    drop(HotStore::open(&hot, Synchronous::Normal).unwrap());
    let tickets =
        TicketService::open(&dir.path().join("tickets.db"), TicketConfig::default()).unwrap();
    let access = AccessStore::open_in(dir.path()).unwrap();
    let users = UserStore::open_in(dir.path()).unwrap();
    let keys = Role::ALL
        .into_iter()
        .map(|role| (role, access.create(role, &format!("{role}-key")).unwrap().0))
        .collect();
    let dispatcher =
        Dispatcher::new(tickets.clone(), users.clone(), DispatchConfig::default()).unwrap();
    let state = AppState::new(
        tickets.clone(),
        StoreReader::open(&hot).unwrap(),
        ProfileSet::builtin(),
        prometheus::Registry::new(),
        Arc::new(|| Value::Null),
    )
    .with_access(access.clone())
    .with_dispatcher(dispatcher);
    App {
        _dir: dir,
        router: router(state),
        keys,
        tickets,
        access,
        users,
    }
}

impl App {
    fn key(&self, role: Role) -> &str {
        &self.keys.iter().find(|(r, _)| *r == role).unwrap().1
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        role: Role,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.key(role)));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// An urgent washer ticket (drain pump: plumbing and electrical).
    fn ticket(&self, device: &str) -> i64 {
        let ctx = DiagnosisContext {
            profile: ProfileSet::builtin().get("washer").cloned(),
            ..DiagnosisContext::default()
        };
        let fault = FaultSignal {
            device_id: DeviceId::parse(device).unwrap(),
            device_type: "washer".into(),
            code: "E23".into(),
            ts: self.tickets.now(),
        };
        self.tickets
            .record(&[DeviceSignals {
                predictions: &[],
                faults: &[fault],
                context: &ctx,
            }])
            .unwrap()[0]
            .ticket_id
    }
}

fn profile(capacity: u32) -> Value {
    json!({
        "display_name": "Li Wei",
        "skills": {"electrical": 3, "plumbing": 2},
        "region": "north", "lat": 31.2, "lon": 121.5,
        "working_hours": {"start": "08:00", "end": "18:00", "days": ["mon","tue","wed","thu","fri"]},
        "daily_capacity": capacity,
        "supervisor": "zhang.min",
        "time_zone": "Asia/Shanghai"
    })
}

#[tokio::test]
async fn planners_and_admins_manage_engineers_and_engineers_cannot() {
    let app = app();
    let uri = "/api/v1/engineers/li.wei";
    for role in [Role::Engineer, Role::Integration] {
        let (status, body) = app.send(Method::PUT, uri, role, Some(profile(6))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {body}");
    }
    let (status, body) = app
        .send(Method::GET, "/api/v1/engineers", Role::Engineer, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = app
        .send(Method::PUT, uri, Role::Planner, Some(profile(6)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["password"].as_str().unwrap().len() >= 16);
    assert_eq!(body["skills"]["electrical"], 3);
    assert_eq!(body["time_zone"], "Asia/Shanghai");
    let account = app.users.by_login("li.wei").unwrap().unwrap();
    assert_eq!(account.role, Role::Engineer);
    let (status, body) = app
        .send(Method::PUT, uri, Role::Admin, Some(profile(4)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("password").is_none());
    assert_eq!(body["daily_capacity"], 4);
    let audit = app.access.audit_log(None, 10).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.record.summary == "registered engineer li.wei"),
        "{audit:?}"
    );

    let (status, body) = app
        .send(Method::GET, "/api/v1/engineers", Role::Planner, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["engineers"][0]["login"], "li.wei");
    assert_eq!(
        body["engineers"][0]["load"],
        json!({"active": 0, "today": 0, "capacity": 4})
    );
    let (status, body) = app.send(Method::GET, uri, Role::Planner, None).await;
    assert_eq!(
        (status, body["supervisor"].clone()),
        (StatusCode::OK, json!("zhang.min"))
    );
    let (status, _) = app
        .send(Method::GET, "/api/v1/engineers/nobody", Role::Planner, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Unknown skills are refused with the known ones; bad levels and fields too.
    let mut bad = profile(6);
    bad["skills"] = json!({"juggling": 3});
    let (status, body) = app.send(Method::PUT, uri, Role::Planner, Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("juggling") && message.contains("plumbing"),
        "{message}"
    );
    for (field, value) in [
        ("skills", json!({"electrical": 6})),
        ("lat", json!(95.0)),
        (
            "working_hours",
            json!({"start": "18:00", "end": "08:00", "days": ["mon"]}),
        ),
        ("time_zone", json!("Mars/Olympus")),
    ] {
        let mut bad = profile(6);
        bad[field] = value;
        let (status, body) = app.send(Method::PUT, uri, Role::Planner, Some(bad)).await;
        assert!(status.is_client_error(), "{field}: {status} {body}");
    }
    // A login of another role is not turned into an engineer.
    app.users
        .add(&NewUser {
            login: "zhang.min",
            display_name: "",
            role: Role::Planner,
            lang: Lang::En,
            time_zone: "UTC",
        })
        .unwrap();
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/engineers/zhang.min",
            Role::Planner,
            Some(profile(6)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn candidates_rank_every_engineer_with_reasons() {
    let app = app();
    app.send(
        Method::PUT,
        "/api/v1/engineers/li.wei",
        Role::Planner,
        Some(profile(6)),
    )
    .await;
    let mut other = profile(6);
    other["skills"] = json!({"mechanical": 5});
    app.send(
        Method::PUT,
        "/api/v1/engineers/wang.fang",
        Role::Planner,
        Some(other),
    )
    .await;
    let id = app.ticket("wm-1");
    let uri = format!("/api/v1/tickets/{id}/candidates");
    let (status, body) = app.send(Method::GET, &uri, Role::Engineer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.send(Method::GET, &uri, Role::Planner, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ticket_id"], id);
    assert!(body["needed_by"].is_string());
    let c = body["candidates"].as_array().unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[1]["engineer"], "wang.fang");
    assert_eq!(c[1]["fits"], false);
    assert!(c[1]["why_not"].as_str().unwrap().contains("plumbing"));
    for key in [
        "skills",
        "skill_level",
        "distance_km",
        "same_region",
        "load",
        "capacity",
        "in_window",
    ] {
        assert!(c[0]["reasons"].get(key).is_some(), "{key}: {}", c[0]);
    }
    let (status, _) = app
        .send(
            Method::GET,
            "/api/v1/tickets/999999/candidates",
            Role::Planner,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_assignment_over_capacity_needs_an_override_which_is_logged_and_audited() {
    let app = app();
    app.send(
        Method::PUT,
        "/api/v1/engineers/li.wei",
        Role::Planner,
        Some(profile(1)),
    )
    .await;
    let (a, b) = (app.ticket("wm-1"), app.ticket("wm-2"));
    // A Monday in Shanghai, the engineer's time zone.
    let window = json!({
        "engineer": "li.wei",
        "window_start": "2030-01-07T02:00:00Z",
        "window_end": "2030-01-07T04:00:00Z"
    });
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{a}/assignment"),
            Role::Planner,
            Some(window.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Assigning the same ticket again does not count it twice.
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{a}/assignment"),
            Role::Planner,
            Some(window.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let uri = format!("/api/v1/tickets/{b}/assignment");
    let (status, body) = app
        .send(Method::POST, &uri, Role::Planner, Some(window.clone()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("1 visits booked on 2030-01-07"),
        "{message}"
    );
    assert!(message.contains("capacity is 1"), "{message}");
    assert_eq!(
        app.tickets.get(b).unwrap().unwrap().assignment.engineer,
        None
    );
    let mut forced = window.clone();
    forced["override_capacity"] = json!(true);
    let (status, body) = app
        .send(Method::POST, &uri, Role::Admin, Some(forced))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let t = app.tickets.get(b).unwrap().unwrap();
    let log = t.log.iter().rev().find(|l| l.action == "assigned").unwrap();
    assert!(log.note.contains("capacity override"), "{}", log.note);
    let audit = app.access.audit_log(None, 10).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.record.summary.contains("capacity override")),
        "{audit:?}"
    );
    // Another day has room.
    let next_day = json!({
        "engineer": "li.wei",
        "window_start": "2030-01-08T02:00:00Z",
        "window_end": "2030-01-08T04:00:00Z"
    });
    let c = app.ticket("wm-3");
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{c}/assignment"),
            Role::Planner,
            Some(next_day),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A login that is not a registered engineer: allowed, and noted.
    let d = app.ticket("wm-4");
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{d}/assignment"),
            Role::Planner,
            Some(json!({"engineer": "contractor-7"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let t = app.tickets.get(d).unwrap().unwrap();
    let log = t.log.iter().rev().find(|l| l.action == "assigned").unwrap();
    assert!(
        log.note.contains("not a registered engineer"),
        "{}",
        log.note
    );
    let _ = Timestamp(0);
}
