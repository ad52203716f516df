//! API keys, roles and the audit log, against the real router without a socket.
//!
//! The route walk reads the route table (`api::http::route_list`), the same table the
//! router and the OpenAPI document are built from: a new route is checked without
//! touching this file.

use std::collections::BTreeSet;
use std::sync::Arc;

use api::http::auth::{grants, Access};
use api::http::route_list;
use api::{router, AccessStore, AppState, Role, TicketConfig, TicketService};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use domain::ProfileSet;
use serde_json::Value;
use store::hot::{HotStore, StoreReader};
use store::Synchronous;
use tower::ServiceExt;

struct App {
    _dir: tempfile::TempDir,
    router: Router,
    keys: Vec<(Role, String)>,
}

fn app_with_limit(limit: Option<usize>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let hot = dir.path().join("hot.db");
    drop(HotStore::open(&hot, Synchronous::Normal).unwrap());
    let tickets =
        TicketService::open(&dir.path().join("tickets.db"), TicketConfig::default()).unwrap();
    let access = AccessStore::open_in(dir.path()).unwrap();
    let keys = Role::ALL
        .into_iter()
        .map(|role| (role, access.create(role, &format!("{role} key")).unwrap().0))
        .collect();
    let mut state = AppState::new(
        tickets,
        StoreReader::open(&hot).unwrap(),
        ProfileSet::builtin(),
        prometheus::Registry::new(),
        Arc::new(|| Value::Null),
    )
    .with_access(access);
    if let Some(limit) = limit {
        state = state.with_body_limit(limit);
    }
    App {
        _dir: dir,
        router: router(state),
        keys,
    }
}

fn app() -> App {
    app_with_limit(None)
}

impl App {
    fn key(&self, role: Role) -> &str {
        &self.keys.iter().find(|(r, _)| *r == role).unwrap().1
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        // An event stream never ends by itself: its status and headers are the answer.
        let streaming = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if streaming {
            return (status, Value::Null);
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// A concrete URI for a path template: every parameter becomes an id no store holds, so
/// a state-changing route that is let through changes nothing.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push_str("999999");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_route_but_health_needs_a_key_and_a_role_that_may_use_it() {
    let app = app();
    let routes = route_list();
    assert!(routes.len() >= 15, "{routes:?}");
    let public: Vec<_> = routes
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| (r.method.clone(), r.path.as_str()))
        .collect();
    assert_eq!(public, [(Method::GET, "/health")]);
    for route in &routes {
        let uri = concrete(&route.path);
        let what = format!("{} {}", route.method, route.path);
        let Access::Requires(permission) = route.access else {
            let (status, _) = app.send(route.method.clone(), &uri, None, None).await;
            assert_eq!(status, StatusCode::OK, "{what}");
            continue;
        };
        for key in [None, Some("fxa_not-a-key"), Some("")] {
            let (status, body) = app.send(route.method.clone(), &uri, key, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{what} with {key:?}: {body}"
            );
            assert_eq!(body["error"]["code"], "unauthorized", "{what}");
        }
        for role in Role::ALL {
            let (status, body) = app
                .send(route.method.clone(), &uri, Some(app.key(role)), None)
                .await;
            if grants(role, permission) {
                assert!(
                    status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::FORBIDDEN
                        && status != StatusCode::METHOD_NOT_ALLOWED
                        && !status.is_server_error(),
                    "{what} as {role}: {status} {body}"
                );
                let message = body["error"]["message"].as_str().unwrap_or("");
                assert!(!message.starts_with("no route"), "{what}: {body}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} as {role}: {body}");
                assert_eq!(body["error"]["code"], "forbidden", "{what}");
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_is_3_x_and_lists_exactly_the_routes() {
    let app = app();
    let (status, doc) = app
        .send(
            Method::GET,
            "/openapi.json",
            Some(app.key(Role::Engineer)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(doc["info"]["title"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
            let secured = op.get("security").is_some();
            assert_eq!(secured, path != "/health", "{method} {path}");
            if secured {
                assert!(op["responses"]["401"].is_object(), "{method} {path}");
            }
        }
    }
    let routed: BTreeSet<_> = route_list()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    assert_eq!(documented, routed);
    // Every documented $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "unresolved $ref {name}"
        );
    }
    let (status, page) = app
        .send(Method::GET, "/docs", Some(app.key(Role::Integration)), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains("/api/v1/tickets/{id}"));
    // Self-contained: no script, style sheet or image from elsewhere (URLs inside the
    // embedded document's examples are text, not assets).
    for asset in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "url(http",
        "@import",
    ] {
        assert!(
            !page.contains(asset),
            "external asset {asset:?} on the docs page"
        );
    }
    assert_eq!(app.send(Method::GET, "/docs", None, None).await.0, 401);
}

#[tokio::test]
async fn bodies_are_validated_into_types_and_errors_name_the_field() {
    let app = app_with_limit(Some(1024));
    let admin = Some(app.key(Role::Admin));
    let cases = [
        (r#"{"role": "planner""#, 400, None),
        (r#"not json"#, 400, None),
        (
            r#"{"role": "planner", "name": "x", "extra": 1}"#,
            422,
            Some("extra"),
        ),
        (r#"{"role": "root", "name": "x"}"#, 422, Some("role")),
        (r#"{"role": "planner", "name": 7}"#, 422, Some("name")),
        (r#"{"name": "x"}"#, 422, Some("role")),
        (r#"{"role": "planner", "name": ""}"#, 422, Some("name")),
        (
            &format!(r#"{{"role": "planner", "name": "{}"}}"#, "n".repeat(101)),
            422,
            Some("name"),
        ),
        (
            &format!(r#"{{"role": "planner", "name": "{}"}}"#, "n".repeat(2000)),
            413,
            None,
        ),
    ];
    for (body, status, field) in cases {
        let (got, json) = app
            .send(Method::POST, "/api/v1/keys", admin, Some(body))
            .await;
        assert_eq!(got.as_u16(), status, "{body}: {json}");
        assert!(json["error"]["code"].is_string(), "{body}: {json}");
        if let Some(f) = field {
            assert_eq!(json["error"]["field"], f, "{body}: {json}");
        }
    }
    // Without Content-Type: application/json.
    let response = app
        .router
        .clone()
        .oneshot(
            Request::post("/api/v1/keys")
                .header("authorization", format!("Bearer {}", app.key(Role::Admin)))
                .body(Body::from(r#"{"role": "planner", "name": "x"}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn keys_are_created_shown_once_revoked_and_every_change_is_audited() {
    let app = app();
    let admin = Some(app.key(Role::Admin));
    let (status, created) = app
        .send(
            Method::POST,
            "/api/v1/keys",
            admin,
            Some(r#"{"role": "engineer", "name": "field engineer 7"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    assert!(key.starts_with("fxa_"));
    assert_eq!(created["role"], "engineer");
    let (status, list) = app.send(Method::GET, "/api/v1/keys", admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(&key));
    assert_eq!(list["keys"].as_array().unwrap().len(), 5);
    // The new key works, within its role.
    let (status, _) = app
        .send(Method::GET, "/api/v1/tickets", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .send(Method::GET, "/api/v1/audit", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A planner may not create keys: refused, and audited.
    let (status, _) = app
        .send(
            Method::POST,
            "/api/v1/keys",
            Some(app.key(Role::Planner)),
            Some(r#"{"role": "admin", "name": "me"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .send(Method::DELETE, &format!("/api/v1/keys/{id}"), admin, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .send(Method::GET, "/api/v1/tickets", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .send(Method::DELETE, "/api/v1/keys/1", admin, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the last admin key stays");

    let (status, page) = app
        .send(Method::GET, "/api/v1/audit?limit=2", admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["audit"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["method"], "DELETE");
    assert_eq!(entries[0]["status"], 204);
    assert!(entries[0]["summary"]
        .as_str()
        .unwrap()
        .contains(&format!("revoked key {id}")));
    assert_eq!(entries[0]["key_name"], "admin key");
    assert_eq!(entries[0]["role"], "admin");
    assert_eq!(entries[1]["status"], 403);
    assert_eq!(entries[1]["role"], "planner");
    let next = page["next"].as_i64().unwrap();
    let (_, older) = app
        .send(
            Method::GET,
            &format!("/api/v1/audit?before={next}"),
            admin,
            None,
        )
        .await;
    let older = older["audit"].as_array().unwrap();
    assert_eq!(older.len(), 1, "the 409 is not audited: {older:?}");
    assert_eq!(older[0]["status"], 201);
    assert!(older[0]["summary"].as_str().unwrap().contains("engineer"));
    assert!(older[0]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(older[0]["path"], "/api/v1/keys");

    // Refusals and latency are in /metrics (integration scrapes it).
    let (status, text) = app
        .send(
            Method::GET,
            "/metrics",
            Some(app.key(Role::Integration)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(
        text.contains("fixahead_api_auth_refused_total{reason=\"forbidden\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("fixahead_api_auth_refused_total{reason=\"invalid\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "fixahead_http_request_duration_seconds_count{class=\"2xx\",route=\"/api/v1/keys\"} 2"
        ),
        "{text}"
    );
}
