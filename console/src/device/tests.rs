//! The device page and its self-test.

use axum::http::StatusCode;

use crate::testing::{Fixture, HOSTILE};

/// The fixture with commands and the fleet summary, the drain-pump ticket of `wm-1`
/// assigned to `engineer` and its heater ticket to `engineer2`.
fn fixture() -> Fixture {
    let f = Fixture::new().with_diagnosis();
    f.assign(f.ticket_id("wm-1", "drain_pump"), "engineer");
    f.assign(f.ticket_id("wm-1", "heater"), "engineer2");
    f
}

#[tokio::test]
async fn the_page_answers_each_role_as_the_diagnosis_rule_says() {
    let f = fixture();
    for (login, device, status) in [
        ("admin", "wm-1", StatusCode::OK),
        ("planner", "wm-1", StatusCode::OK),
        ("planner", "wm-2", StatusCode::OK),
        ("engineer", "wm-1", StatusCode::OK),
        // wm-2's only ticket is nobody's: engineers see devices of their own tickets.
        ("engineer", "wm-2", StatusCode::FORBIDDEN),
        ("engineer2", "wm-2", StatusCode::FORBIDDEN),
        ("planner", "no-such-device", StatusCode::NOT_FOUND),
    ] {
        let who = f.sign_in(login);
        let a = f
            .get(&format!("/console/devices/{device}"), Some(&who))
            .await;
        assert_eq!(a.status, status, "{login} on {device}: {}", a.body);
        assert!(a.body.contains("<html"), "an HTML page for {login}");
    }
    let engineer = f.sign_in("engineer");
    let refused = f.get("/console/devices/wm-2", Some(&engineer)).await;
    assert!(
        refused.body.contains(super::EN.not_your_device),
        "{}",
        refused.body
    );
    let zh = f.sign_in("engineer2");
    let refused = f.get("/console/devices/wm-2", Some(&zh)).await;
    assert!(
        refused.body.contains(super::ZH.not_your_device),
        "in Chinese"
    );
    assert!(f
        .get("/console/devices/wm-1", None)
        .await
        .status
        .is_redirection());
}

#[tokio::test]
async fn bad_ids_and_parameters_are_a_400_page() {
    let f = fixture();
    let planner = f.sign_in("planner");
    for path in [
        "/console/devices/wm%201",
        "/console/devices/%3Cscript%3E",
        "/console/devices/wm-1?x=1",
        "/console/devices/wm-1?sent=abc",
    ] {
        let a = f.get(path, Some(&planner)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.body);
        assert!(!a.body.contains("<script>"), "{path}");
    }
    let a = f.get("/console/devices/wm%201", Some(&planner)).await;
    assert!(a.body.contains("This is not a device id"), "{}", a.body);
}

#[tokio::test]
async fn the_page_shows_registry_readings_risk_tickets_faults_and_cohort() {
    let f = fixture();
    let planner = f.sign_in("planner");
    let a = f.get("/console/devices/wm-1", Some(&planner)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let body = &a.body;
    for text in [
        "WM-500",
        "B2025-07",
        "north",
        "2.4.1",
        // Readings against the fleet's range, drawn as a bar.
        "drain_time_s",
        "class=\"range-bar\"",
        "class=\"band\"",
        // Risk over time: a line per component with the threshold.
        "class=\"line-chart\"",
        "<polyline",
        "class=\"threshold\"",
        "Drain pump",
        "Heating element",
        // Tickets link to their pages; faults carry the catalogue's title.
        &format!("/console/tickets/{}", f.ticket_id("wm-1", "drain_pump")),
        "E21",
        "Drain timeout",
        // Comparable devices and the self-test.
        "Comparable devices",
        "/console/devices/wm-1/self-test",
        "No commands sent to this device yet.",
    ] {
        assert!(body.contains(text), "{text:?} missing");
    }
    assert!(!body.contains("style="), "no inline styles (CSP)");
    assert!(!body.contains("<script>"), "no inline script (CSP)");
    // wm-1 drains far slower than wm-2: above the fleet's range for WM-500.
    assert!(body.contains("above normal"), "position of drain_time_s");
}

#[tokio::test]
async fn an_engineer_sees_which_tickets_are_theirs() {
    let f = fixture();
    let engineer = f.sign_in("engineer");
    let a = f.get("/console/devices/wm-1", Some(&engineer)).await;
    assert_eq!(a.status, StatusCode::OK);
    let own = format!("/console/tickets/{}", f.ticket_id("wm-1", "drain_pump"));
    let other = format!("/console/tickets/{}", f.ticket_id("wm-1", "heater"));
    assert!(a.body.contains(&own));
    assert!(
        !a.body.contains(&other),
        "no link to another engineer's ticket"
    );
    assert!(a.body.contains("assigned to someone else"));
}

#[tokio::test]
async fn a_self_test_is_sent_through_the_command_service_and_shown_pending() {
    let f = fixture();
    let planner = f.sign_in("planner");
    let a = f
        .post("/console/devices/wm-1/self-test", &planner, &[])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let commands = f.api.commands().unwrap().recent("wm-1", 5).unwrap();
    assert_eq!(commands.len(), 1);
    let c = &commands[0];
    assert_eq!(
        (c.command.as_str(), c.status, c.requested_by.as_str()),
        ("self_test", api::CommandStatus::Pending, "planner")
    );
    assert_eq!(
        a.location(),
        format!("/console/devices/wm-1?sent={}#commands", c.id)
    );
    let page = f.get(a.location(), Some(&planner)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Self-test sent"));
    assert!(page.body.contains("waiting for the device"));
    assert!(page.body.contains("data-poll=\"/console/devices/wm-1\""));
    let audit = f.api.access().unwrap().audit_log(None, 10).unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.record.summary.starts_with("sent self_test to wm-1")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn the_devices_answer_is_shown_when_it_comes() {
    let f = fixture();
    let engineer = f.sign_in("engineer");
    let a = f
        .post("/console/devices/wm-1/self-test", &engineer, &[])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let commands = f.api.commands().unwrap();
    let id = commands.recent("wm-1", 1).unwrap()[0].id;
    let report = serde_json::json!({"command": "self_test", "result": "fail", "components": [
        {"component": "drain_pump", "status": "degraded", "measured": 0.31, "limit": 0.04, "quantity": "wear"},
        {"component": "<b>x</b>", "status": "ok", "measured": 0.0, "limit": 0.04, "quantity": "wear"}]});
    commands
        .record_result(&domain::CommandResult {
            device_id: domain::DeviceId::parse("wm-1").unwrap(),
            id,
            status: domain::CommandOutcome::Ok,
            ts: None,
            report: Some(report),
            error: None,
            received_at: None,
        })
        .unwrap();
    let page = f.get("/console/devices/wm-1", Some(&engineer)).await;
    assert!(page.body.contains("answered"));
    assert!(page.body.contains("found a problem"));
    assert!(page.body.contains("degraded"));
    assert!(
        page.body.contains("&#60;b&#62;x&#60;/b&#62;"),
        "report text is text"
    );
    assert!(!page.body.contains("data-poll"), "nothing left to wait for");
}

#[tokio::test]
async fn a_self_test_follows_the_own_ticket_rule_and_needs_the_service() {
    let f = fixture();
    let engineer = f.sign_in("engineer");
    let a = f
        .post("/console/devices/wm-2/self-test", &engineer, &[])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(f
        .api
        .commands()
        .unwrap()
        .recent("wm-2", 5)
        .unwrap()
        .is_empty());
    let a = f
        .post(
            "/console/devices/no-such/self-test",
            &f.sign_in("planner"),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // A server without the command service says so, on the page and on a post.
    let plain = Fixture::new();
    let planner = plain.sign_in("planner");
    let page = plain.get("/console/devices/wm-1", Some(&planner)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains("This server does not send commands to devices."));
    assert!(page.body.contains("has no ranges for this model yet"));
    let a = plain
        .post("/console/devices/wm-1/self-test", &planner, &[])
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_chinese_engineer_reads_the_page_in_chinese() {
    let f = fixture();
    let zh = f.sign_in("engineer2");
    let a = f.get("/console/devices/wm-1", Some(&zh)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for text in [
        "lang=\"zh-Hans\"",
        "设备档案",
        "最新读数与设备群对比",
        "各部件风险走势",
        "排水超时",
        "排水泵",
        "发起自检",
        "同类设备",
    ] {
        assert!(a.body.contains(text), "{text:?} missing");
    }
    let bad = f.get("/console/devices/wm%201", Some(&zh)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("设备编号无效"), "{}", bad.body);
}

#[tokio::test]
async fn text_from_devices_is_escaped() {
    let f = fixture();
    f.add_washer("wm-9", HOSTILE, HOSTILE, HOSTILE, Some("E21"));
    let planner = f.sign_in("planner");
    let a = f.get("/console/devices/wm-9", Some(&planner)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(!a.body.contains("<script>alert"), "markup from a device");
    assert!(a
        .body
        .contains("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;"));
}
