//! What holds for the whole console: sign-in, sessions, CSRF on every form, headers.
//! Each page's own behaviour is tested in its module.

use axum::http::{header, Method, StatusCode};

use crate::session::{SESSION_COOKIE, SIGN_IN_COOKIE};
use crate::testing::{Answer, Fixture};

/// Every state-changing route, with fields that would be accepted with a token. A
/// page module that adds a form adds its route here.
const FORMS: &[(&str, &[(&str, &str)])] = &[
    ("/console/sign-out", &[]),
    (
        "/console/account/preferences",
        &[("lang", "zh"), ("time_zone", "UTC")],
    ),
    (
        "/console/account/language",
        &[("lang", "zh"), ("back", "/console/account")],
    ),
    (
        "/console/account/password",
        &[
            ("current", "x"),
            ("new", "abcdefghijkl"),
            ("repeat", "abcdefghijkl"),
        ],
    ),
    // The ticket page (console/src/ticket).
    ("/console/tickets/1/acknowledge", &[]),
    (
        "/console/tickets/1/schedule",
        &[
            ("engineer", "engineer"),
            ("window_start", "2026-12-08T09:00"),
            ("window_end", "2026-12-08T11:00"),
            ("region", "north"),
        ],
    ),
    ("/console/tickets/1/start", &[]),
    (
        "/console/tickets/1/resolve",
        &[
            ("kind", "confirmed_failure"),
            ("component", "drain_pump"),
            ("parts", "pump filter"),
            ("note", "replaced"),
        ],
    ),
    (
        "/console/tickets/1/outcome",
        &[("kind", "no_fault_found"), ("note", "fine")],
    ),
    ("/console/tickets/1/dismiss", &[("note", "duplicate")]),
    ("/console/tickets/1/reopen", &[("to", "open")]),
    ("/console/tickets/1/close", &[]),
    (
        "/console/tickets/1/note",
        &[("note", "called the customer")],
    ),
    (
        "/console/admin/users",
        &[
            ("login", "csrf.probe"),
            ("display_name", "Probe"),
            ("role", "planner"),
            ("lang", "en"),
            ("time_zone", "UTC"),
        ],
    ),
    ("/console/admin/users/3/disable", &[("page", "1")]),
    ("/console/admin/users/3/enable", &[("page", "1")]),
    ("/console/admin/users/3/reset-password", &[]),
    (
        "/console/admin/keys",
        &[("name", "csrf probe"), ("role", "integration")],
    ),
    ("/console/admin/keys/1/revoke", &[("page", "1")]),
    ("/console/devices/wm-1/self-test", &[]),
    (
        "/console/devices/wm-1/directory",
        &[
            ("serial", "SN-PROBE"),
            ("customer_ref", "C-1"),
            ("customer_name", "Probe"),
            ("address", "1 Road"),
            ("lat", "31.2"),
            ("lon", "121.5"),
            ("region", "north"),
        ],
    ),
    ("/console/fleet/alarms/1/acknowledge", &[("note", "on it")]),
    (
        "/console/report",
        &[
            ("find", "device_id"),
            ("reference", "wm-1"),
            ("device_type", ""),
            ("channel", "phone"),
            ("category", "down"),
            ("words", "It stopped"),
            ("component", ""),
        ],
    ),
];

fn set_cookie_value(a: &Answer, name: &str) -> Option<String> {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

#[tokio::test]
async fn a_page_without_a_session_goes_to_sign_in_and_comes_back() {
    let f = Fixture::new();
    let a = f.get("/console/account?x=1", None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(
        a.location(),
        "/console/sign-in?next=%2Fconsole%2Faccount%3Fx%3D1"
    );
    let root = f.get("/", None).await;
    assert!(root.status.is_redirection());
    assert_eq!(root.location(), "/console/");
}

#[tokio::test]
async fn signing_in_through_the_form_sets_a_strict_http_only_session_cookie() {
    let f = Fixture::new();
    let form = f.get("/console/sign-in?next=/console/account", None).await;
    assert_eq!(form.status, StatusCode::OK);
    let cookie = set_cookie_value(&form, SIGN_IN_COOKIE).expect("the form sets its token cookie");
    let token = cookie
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("cookie value");
    assert!(form.body.contains(&token), "the form carries the token");
    let password = f.passwords["planner"].clone();
    let send = |csrf: String, password: String| {
        let f = &f;
        let token = token.clone();
        async move {
            let body = serde_urlencoded::to_string([
                ("login", "planner"),
                ("password", password.as_str()),
                ("csrf", csrf.as_str()),
                ("next", "/console/account"),
            ])
            .unwrap();
            let request = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/console/sign-in")
                .header(header::COOKIE, format!("{SIGN_IN_COOKIE}={token}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(body))
                .unwrap();
            let r = tower::ServiceExt::oneshot(f.router.clone(), request)
                .await
                .unwrap();
            let status = r.status();
            let headers = r.headers().clone();
            let body = axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .unwrap();
            Answer {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        }
    };
    // A forged form (another site cannot read the cookie) is refused.
    let forged = send("not-the-token".into(), password.clone()).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(set_cookie_value(&forged, SESSION_COOKIE).is_none());
    // A wrong password is refused and audited.
    let wrong = send(token.clone(), "wrong-password".into()).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(set_cookie_value(&wrong, SESSION_COOKIE).is_none());
    let ok = send(token.clone(), password).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location(), "/console/account");
    let session = set_cookie_value(&ok, SESSION_COOKIE).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain HTTP: not Secure ({session})"
    );
    let audit = f.api.access().unwrap().audit_log(None, 100).unwrap();
    let summaries: Vec<&str> = audit.iter().map(|r| r.record.summary.as_str()).collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("sign-in refused (wrong login or password)")),
        "{summaries:?}"
    );
    assert!(
        summaries.iter().any(|s| s.starts_with("signed in")),
        "{summaries:?}"
    );
}

#[tokio::test]
async fn every_form_refuses_a_missing_or_wrong_csrf_token() {
    let f = Fixture::new();
    let admin = f.sign_in("admin");
    for (path, fields) in FORMS {
        let missing = f.post_raw(path, &admin, fields).await;
        assert_eq!(
            missing.status,
            StatusCode::FORBIDDEN,
            "{path} without a token: {}",
            missing.body
        );
        let mut wrong: Vec<(&str, &str)> = vec![("csrf", "0123456789abcdef")];
        wrong.extend_from_slice(fields);
        let wrong = f.post_raw(path, &admin, &wrong).await;
        assert_eq!(
            wrong.status,
            StatusCode::FORBIDDEN,
            "{path} with a wrong token: {}",
            wrong.body
        );
    }
    // The session still works: nothing was changed by the refused forms.
    let page = f.get("/console/account", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("lang=\"en\""), "language unchanged");
}

#[tokio::test]
async fn a_session_ends_with_sign_out_and_with_a_disabled_account() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    assert_eq!(
        f.get("/console/account", Some(&planner)).await.status,
        StatusCode::OK
    );
    let out = f.post("/console/sign-out", &planner, &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = f.get("/console/account", Some(&planner)).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer signs in"
    );
    assert!(after.location().starts_with("/console/sign-in"));

    let engineer = f.sign_in("engineer");
    assert_eq!(
        f.get("/console/account", Some(&engineer)).await.status,
        StatusCode::OK
    );
    f.users.set_disabled(engineer.user_id, true).unwrap();
    let after = f.get("/console/account", Some(&engineer)).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "a disabled account's session ends"
    );
}

#[tokio::test]
async fn pages_carry_security_headers_and_unknown_paths_are_a_404_page() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let a = f.get("/console/no-such-page", Some(&planner)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.body.contains("<html"), "an HTML page");
    for name in [
        header::CONTENT_SECURITY_POLICY,
        header::X_FRAME_OPTIONS,
        header::X_CONTENT_TYPE_OPTIONS,
        header::CACHE_CONTROL,
    ] {
        assert!(a.headers.contains_key(&name), "{name} missing");
    }
}

#[tokio::test]
async fn the_language_follows_the_person_and_the_browser_before_sign_in() {
    let f = Fixture::new();
    let zh = f.sign_in("engineer2");
    let page = f.get("/console/account", Some(&zh)).await;
    assert!(
        page.body.contains("lang=\"zh-Hans\""),
        "{}",
        &page.body[..200.min(page.body.len())]
    );
    assert!(page.body.contains("我的账户"));
    let request = axum::http::Request::builder()
        .uri("/console/sign-in")
        .header(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9,en;q=0.8")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = tower::ServiceExt::oneshot(f.router.clone(), request)
        .await
        .unwrap();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("登录"));
}

/// The header's language switch brings a person back to the page they are on, query
/// and all (a ticket, a filtered queue), not to its navigation entry.
#[tokio::test]
async fn the_language_switch_comes_back_to_the_same_page() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let page = f
        .get("/console/account?saved=preferences", Some(&planner))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(r#"name="back" value="/console/account?saved=preferences""#),
        "{}",
        page.body
    );
    let back = f
        .post(
            "/console/account/language",
            &planner,
            &[
                ("lang", "zh"),
                ("back", "/console/account?saved=preferences"),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    assert_eq!(back.location(), "/console/account?saved=preferences");
}

mod crawl;

#[tokio::test]
async fn a_tickets_status_and_priority_read_the_same_on_every_page() {
    let f = Fixture::new();
    let id = f.ticket_id("wm-2", "drain_pump");
    f.assign(id, "engineer2");
    let ticket = f.tickets.get(id).unwrap().expect("the fixture's ticket");
    let zh = f.sign_in("engineer2");
    let words = crate::i18n::common(domain::Lang::Zh);
    let status = format!(
        "class=\"badge {}\">{}<",
        crate::i18n::status_class(ticket.status),
        words.status(ticket.status)
    );
    let priority = words.priority(ticket.priority);
    for path in [
        "/console/".to_owned(),
        "/console/my-day".to_owned(),
        format!("/console/tickets/{id}"),
        "/console/devices/wm-2".to_owned(),
    ] {
        let a = f.get(&path, Some(&zh)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(
            a.body.contains(&status),
            "{path}: the status badge {status}"
        );
        assert!(a.body.contains(priority), "{path}: {priority}");
    }
}

#[tokio::test]
async fn an_error_page_keeps_the_signed_in_persons_navigation() {
    let f = Fixture::new();
    let engineer = f.sign_in("engineer");
    let theirs = f.ticket_id("wm-1", "heater");
    let path = format!("/console/tickets/{theirs}");
    let a = f.get(&path, Some(&engineer)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    for link in ["href=\"/console/my-day\"", "href=\"/console/account\""] {
        assert!(a.body.contains(link), "{link} on the 403 page: {}", a.body);
    }
    assert!(
        a.body.contains(&format!("name=\"back\" value=\"{path}\"")),
        "the language switch comes back to the page asked for"
    );
    let missing = f.get("/console/no-such-page", Some(&engineer)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("href=\"/console/my-day\""));
    // Without a session there is nobody to frame it for.
    let anonymous = f.get("/console/no-such-page", None).await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND);
    assert!(!anonymous.body.contains("href=\"/console/my-day\""));
}

#[tokio::test]
async fn hostile_form_input_is_refused_or_kept_as_text_never_a_server_error() {
    let f = Fixture::new().with_diagnosis();
    let admin = f.sign_in("admin");
    let long = "界".repeat(20_000);
    let values = [
        crate::testing::HOSTILE,
        long.as_str(),
        "\u{0}\u{7}\r\n",
        "../../etc/passwd",
        "'; DROP TABLE tickets; --",
        "\u{202e}reversed",
        "",
    ];
    let mut problems = Vec::new();
    for (path, fields) in FORMS {
        if *path == "/console/sign-out" {
            continue;
        }
        for value in values {
            let hostile: Vec<(&str, &str)> = fields.iter().map(|(k, _)| (*k, value)).collect();
            let a = f.post(path, &admin, &hostile).await;
            if a.status.is_server_error() || a.body.contains("<script>alert") {
                problems.push(format!(
                    "{path} with {:?}: {}",
                    &value[..value.len().min(20)],
                    a.status
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The session survived whatever the forms were sent.
    assert_eq!(
        f.get("/console/account", Some(&admin)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn hostile_query_strings_are_a_page_with_a_reason_never_a_server_error() {
    let f = Fixture::new().with_diagnosis();
    let admin = f.sign_in("admin");
    let id = f.ticket_id("wm-1", "drain_pump");
    let pages = [
        "/console/".to_owned(),
        "/console/my-day".to_owned(),
        format!("/console/tickets/{id}"),
        "/console/devices/wm-1".to_owned(),
        "/console/fleet".to_owned(),
        "/console/fleet/parts.csv".to_owned(),
        "/console/models".to_owned(),
        "/console/report".to_owned(),
        "/console/kpis".to_owned(),
        "/console/admin/users".to_owned(),
        "/console/admin/keys".to_owned(),
        "/console/admin/webhooks".to_owned(),
        "/console/admin/dead-letters".to_owned(),
        "/console/admin/audit".to_owned(),
        "/console/account".to_owned(),
    ];
    let queries = [
        "page=0",
        "page=99999999999999999999",
        "page=-1&page=2",
        "status=%3Cscript%3E&priority=%22&since=2026-02-30",
        "engineer=%00&region=%E2%80%AE",
        "by=%27&period=NaN&horizon=1e309&before=x",
        "done=%3Cscript%3Ealert(1)%3C/script%3E",
        "%FF%FE=%FF",
    ];
    let mut problems = Vec::new();
    for page in &pages {
        for q in queries {
            let path = format!("{page}?{q}");
            let a = f.get(&path, Some(&admin)).await;
            if a.status.is_server_error() || a.body.contains("<script>alert") {
                problems.push(format!("{path}: {}", a.status));
            }
        }
    }
    for path in [
        "/console/tickets/%3Cscript%3E",
        "/console/tickets/99999999999999999999",
        "/console/devices/%3Cscript%3E",
        "/console/devices/..%2F..%2Fetc",
        "/console/admin/users/abc/disable",
    ] {
        let a = f.get(path, Some(&admin)).await;
        if a.status.is_server_error() || a.body.contains("<script>") {
            problems.push(format!("{path}: {}", a.status));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
