//! The ticket page through the whole router: who may open it, every action, refusals,
//! hostile text, Chinese, and a year of telemetry.

use axum::http::StatusCode;
use domain::{OutcomeKind, Ticket, TicketStatus};
use store::access::AuditEntry;

use super::texts::{fill, EN, ZH};
use crate::testing::{Answer, Fixture, HOSTILE};

fn ticket(f: &Fixture, id: i64) -> Ticket {
    f.tickets.get(id).expect("store").expect("ticket")
}

fn last_audit(f: &Fixture) -> AuditEntry {
    f.api
        .access()
        .expect("audit log")
        .audit_log(None, 1)
        .expect("audit")
        .remove(0)
}

/// `s` as askama writes it into a page.
fn esc(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn path(id: i64, action: &str) -> String {
    format!("/console/tickets/{id}/{action}")
}

/// Asserts `a` is the redirect back to ticket `id` after `action`.
fn assert_done(a: &Answer, id: i64, action: &str) {
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{action}: {}", a.body);
    assert_eq!(a.location(), format!("/console/tickets/{id}?done={action}"));
}

/// Asserts the last audit record is `action` on ticket `id` by `actor`.
fn assert_audited(f: &Fixture, id: i64, action: &str, actor: &str, status: u16) {
    let e = last_audit(f);
    assert_eq!(e.record.key_name, actor, "{action}: {e:?}");
    assert_eq!(e.record.path, path(id, action));
    assert_eq!(e.record.status, status, "{e:?}");
    assert_eq!(e.record.method, "POST");
}

#[tokio::test]
async fn the_page_opens_for_planners_admins_and_the_assigned_engineer_only() {
    let f = Fixture::new();
    let id = f.ticket_id("wm-1", "drain_pump");
    f.assign(id, "engineer");
    let page = format!("/console/tickets/{id}");
    for login in ["admin", "planner", "engineer"] {
        let p = f.sign_in(login);
        let a = f.get(&page, Some(&p)).await;
        assert_eq!(a.status, StatusCode::OK, "{login}: {}", a.body);
        assert!(a.body.contains(&ticket(&f, id).number), "{login}");
    }
    let other = f.sign_in("engineer2");
    let refused = f.get(&page, Some(&other)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("<html"), "a page, not a bare status");
    assert!(
        refused.body.contains(super::texts::ZH.err_not_yours),
        "said in the engineer's language"
    );
    // Not theirs: the other ticket of the device is nobody's.
    let engineer = f.sign_in("engineer");
    let heater = f.ticket_id("wm-1", "heater");
    let a = f
        .get(&format!("/console/tickets/{heater}"), Some(&engineer))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Nobody signed in goes to sign in; no such ticket is a 404 page.
    let a = f.get(&page, None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(a.location().starts_with("/console/sign-in"));
    let planner = f.sign_in("planner");
    for bad in [
        "/console/tickets/999999",
        "/console/tickets/abc",
        "/console/tickets/-1",
    ] {
        let a = f.get(bad, Some(&planner)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(
            a.body.contains(EN.err_id) || a.body.contains("not found"),
            "{bad}"
        );
    }
    let a = f.post(&path(id, "explode"), &planner, &[]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_page_explains_the_ticket_in_words_and_pictures() {
    let f = Fixture::new();
    let id = f.ticket_id("wm-1", "drain_pump");
    let planner = f.sign_in("planner");
    let a = f
        .get(&format!("/console/tickets/{id}"), Some(&planner))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let body = &a.body;
    for expected in [
        "href=\"/console/devices/wm-1\"",
        "WM-500",
        "Washing machine",
        "Drain pump",
        // The top feature in words, its value against the normal range.
        "Drain time: average over the last day",
        "31.0 s",
        "normal 10.0–20.0 s",
        "above normal",
        "class=\"fbar\"",
        "class=\"dot out\"",
        // Lead time and model.
        "about 9.0 days before the failure",
        "washer-v1",
        // The chart of the drain time channel with the E21 fault marked.
        "class=\"channel\"",
        "class=\"fault-mark\"",
        "E21 Drain timeout",
        // Faults with catalogue text, parts with references, remote checks.
        "The drum did not empty within the allowed time",
        "FXA-WSH-DPD-01",
        "Ask the customer to clean the pump filter",
        // SLA clocks and the log.
        EN.sla,
        EN.log_opened,
        EN.automatic,
    ] {
        assert!(body.contains(expected), "missing {expected:?}");
    }
    // The CSP forbids inline styles and scripts: there are none.
    assert!(!body.contains("style="), "an inline style");
    assert_eq!(body.matches("<script").count(), 1, "only the asset script");
    // The other ticket of the device is listed.
    let heater = f.ticket_id("wm-1", "heater");
    assert!(body.contains(&format!("href=\"/console/tickets/{heater}\"")));
    // A planner may do what the lifecycle allows from open.
    for action in ["acknowledge", "schedule", "resolve", "dismiss", "note"] {
        assert!(body.contains(&path(id, action)), "{action}");
    }
    for action in ["start", "reopen", "close"] {
        assert!(
            !body.contains(&format!("{}\"", path(id, action))),
            "{action}"
        );
    }
}

#[tokio::test]
async fn every_action_changes_the_ticket_and_lands_in_its_log_and_the_audit_log() {
    let f = Fixture::new();
    f.rename("planner", "Wang Fang");
    f.rename("engineer", "Li Wei");
    let planner = f.sign_in("planner");
    let engineer = f.sign_in("engineer");
    let (wang, li) = ("Wang Fang (planner)", "Li Wei (engineer)");
    let id = f.ticket_id("wm-1", "drain_pump");

    let a = f.post(&path(id, "acknowledge"), &planner, &[]).await;
    assert_done(&a, id, "acknowledge");
    let t = ticket(&f, id);
    assert_eq!(t.status, TicketStatus::Acknowledged);
    assert_eq!(t.log.last().unwrap().actor, wang);
    assert_audited(&f, id, "acknowledge", wang, 303);
    let shown = f
        .get(
            &format!("/console/tickets/{id}?done=acknowledge"),
            Some(&planner),
        )
        .await;
    assert!(shown.body.contains(EN.done_acknowledge));
    assert!(shown.body.contains(wang), "the log names the person");

    // Scheduled in the planner's zone (Asia/Shanghai).
    let a = f
        .post(
            &path(id, "schedule"),
            &planner,
            &[
                ("engineer", "engineer"),
                ("window_start", "2026-12-08T09:00"),
                ("window_end", "2026-12-08T11:30"),
                ("region", "north"),
            ],
        )
        .await;
    assert_done(&a, id, "schedule");
    let t = ticket(&f, id);
    assert_eq!(t.status, TicketStatus::Scheduled);
    assert_eq!(t.assignment.engineer.as_deref(), Some("engineer"));
    assert_eq!(
        t.assignment.window_start.unwrap().to_string(),
        "2026-12-08T01:00:00.000Z"
    );
    assert_eq!(
        t.assignment.window_end.unwrap().to_string(),
        "2026-12-08T03:30:00.000Z"
    );
    assert_eq!(t.assignment.region.as_deref(), Some("north"));
    let actions: Vec<&str> = t.log.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.ends_with(&["assigned", "status_changed"]),
        "{actions:?}"
    );
    assert_audited(&f, id, "schedule", wang, 303);
    let page = f
        .get(&format!("/console/tickets/{id}?done=%zz&x"), Some(&planner))
        .await;
    assert_eq!(page.status, StatusCode::OK, "a bad query is ignored");
    assert!(
        page.body.contains("2026-12-08 09:00"),
        "the window in the zone"
    );
    assert!(
        page.body.contains("Li Wei (engineer)"),
        "the engineer by name"
    );

    // The engineer's visit.
    let a = f.post(&path(id, "start"), &engineer, &[]).await;
    assert_done(&a, id, "start");
    assert_eq!(ticket(&f, id).status, TicketStatus::InProgress);
    assert_audited(&f, id, "start", li, 303);

    let a = f
        .post(
            &path(id, "note"),
            &engineer,
            &[("note", "Filter full of lint")],
        )
        .await;
    assert_done(&a, id, "note");
    let t = ticket(&f, id);
    let last = t.log.last().unwrap();
    assert_eq!(
        (
            last.action.as_str(),
            last.note.as_str(),
            last.actor.as_str()
        ),
        ("note", "Filter full of lint", li)
    );
    assert_audited(&f, id, "note", li, 303);

    let a = f
        .post(
            &path(id, "resolve"),
            &engineer,
            &[
                ("kind", "confirmed_failure"),
                ("component", "drain_pump"),
                ("parts", "pump filter"),
                ("parts", "drain pump assembly"),
                ("failed_at", "2026-12-07T08:00"),
                ("note", "Replaced"),
            ],
        )
        .await;
    assert_done(&a, id, "resolve");
    let t = ticket(&f, id);
    assert_eq!(t.status, TicketStatus::Resolved);
    let o = t.outcome.expect("outcome");
    assert_eq!(o.kind, OutcomeKind::ConfirmedFailure);
    assert_eq!(o.parts_replaced, vec!["pump filter", "drain pump assembly"]);
    assert_eq!(o.failed_at.unwrap().to_string(), "2026-12-07T00:00:00.000Z");
    assert_eq!(o.recorded_by, li);
    assert_audited(&f, id, "resolve", li, 303);

    // The planner corrects the outcome, closes, reopens and dismisses.
    let a = f
        .post(
            &path(id, "outcome"),
            &planner,
            &[("kind", "no_fault_found"), ("component", "drain_pump")],
        )
        .await;
    assert_done(&a, id, "outcome");
    assert_eq!(
        ticket(&f, id).outcome.unwrap().kind,
        OutcomeKind::NoFaultFound
    );
    assert_audited(&f, id, "outcome", wang, 303);

    let a = f.post(&path(id, "close"), &planner, &[]).await;
    assert_done(&a, id, "close");
    assert_eq!(ticket(&f, id).status, TicketStatus::Closed);
    assert_audited(&f, id, "close", wang, 303);

    let a = f
        .post(
            &path(id, "reopen"),
            &planner,
            &[("to", "open"), ("note", "Customer called again")],
        )
        .await;
    assert_done(&a, id, "reopen");
    let t = ticket(&f, id);
    assert_eq!(t.status, TicketStatus::Open);
    assert_eq!(t.log.last().unwrap().action, "reopened");
    assert_audited(&f, id, "reopen", wang, 303);

    let a = f
        .post(
            &path(id, "dismiss"),
            &planner,
            &[("note", "Duplicate of a customer call")],
        )
        .await;
    assert_done(&a, id, "dismiss");
    let t = ticket(&f, id);
    assert_eq!(t.status, TicketStatus::Dismissed);
    assert!(t
        .log
        .last()
        .unwrap()
        .note
        .contains("Duplicate of a customer call"));
    assert_audited(&f, id, "dismiss", wang, 303);
    let e = last_audit(&f);
    assert!(e.record.summary.contains("Duplicate"), "{e:?}");
}

#[tokio::test]
async fn invalid_input_is_refused_beside_its_form_and_changes_nothing() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let id = f.ticket_id("wm-1", "heater");
    let before = ticket(&f, id);
    let audits = f.api.access().unwrap().audit_log(None, 1000).unwrap().len();
    let long = "x".repeat(2_001);
    // (action, fields, status, message)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, String);
    let cases: Vec<Case<'_>> = vec![
        (
            "schedule",
            vec![
                ("engineer", "engineer"),
                ("window_start", "2026-12-08T11:00"),
                ("window_end", "2026-12-08T09:00"),
                ("region", "south"),
            ],
            StatusCode::BAD_REQUEST,
            EN.err_window_order.into(),
        ),
        (
            "schedule",
            vec![("engineer", "ghost")],
            StatusCode::BAD_REQUEST,
            fill(EN.err_engineer_unknown, "ghost"),
        ),
        (
            "schedule",
            vec![("engineer", "admin")],
            StatusCode::BAD_REQUEST,
            fill(EN.err_engineer_unknown, "admin"),
        ),
        (
            "schedule",
            vec![("engineer", "engineer"), ("window_start", "soon")],
            StatusCode::BAD_REQUEST,
            fill(EN.err_time, EN.window_start),
        ),
        (
            "dismiss",
            vec![("note", "   ")],
            StatusCode::BAD_REQUEST,
            EN.err_reason.into(),
        ),
        (
            "note",
            vec![("note", "")],
            StatusCode::BAD_REQUEST,
            EN.err_note_empty.into(),
        ),
        (
            "note",
            vec![("note", long.as_str())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "longer than 2000 characters".into(),
        ),
        (
            "resolve",
            vec![("kind", "confirmed_failure"), ("component", "")],
            StatusCode::BAD_REQUEST,
            EN.err_component.into(),
        ),
        (
            "resolve",
            vec![("component", "heater")],
            StatusCode::BAD_REQUEST,
            EN.err_kind.into(),
        ),
        (
            "resolve",
            vec![
                ("kind", "confirmed_failure"),
                ("component", "turbo_encabulator"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "is not a component of washer".into(),
        ),
        (
            "resolve",
            vec![("kind", "no_fault_found"), ("parts", "heating element")],
            StatusCode::BAD_REQUEST,
            EN.err_only_confirmed.into(),
        ),
        (
            "resolve",
            vec![
                ("kind", "confirmed_failure"),
                ("component", "heater"),
                ("parts", "flux capacitor"),
            ],
            StatusCode::BAD_REQUEST,
            fill(EN.err_part, "flux capacitor"),
        ),
        (
            "reopen",
            vec![("to", "open")],
            StatusCode::CONFLICT,
            "is already open".into(),
        ),
    ];
    for (action, fields, status, message) in cases {
        let a = f.post(&path(id, action), &planner, &fields).await;
        assert_eq!(a.status, status, "{action} {fields:?}: {}", &a.body[..300]);
        assert!(
            a.body.contains(&esc(&message)),
            "{action}: message {message:?} missing"
        );
        // The page is the ticket page, with the form open beside the message.
        assert!(a.body.contains(&format!("id=\"act-{action}\"")) || action == "reopen");
        let after = ticket(&f, id);
        assert_eq!(after.status, before.status, "{action}");
        assert_eq!(after.log.len(), before.log.len(), "{action}");
        assert_eq!(after.assignment, before.assignment, "{action}");
    }
    // The typed values come back into the form.
    let a = f
        .post(
            &path(id, "schedule"),
            &planner,
            &[
                ("engineer", "engineer"),
                ("window_start", "2026-12-08T11:00"),
                ("window_end", "2026-12-08T09:00"),
                ("region", "south-east"),
            ],
        )
        .await;
    assert!(a.body.contains("value=\"south-east\""));
    assert!(a.body.contains("value=\"2026-12-08T11:00\""));
    // Nothing was audited: nothing was done.
    let now = f.api.access().unwrap().audit_log(None, 1000).unwrap().len();
    assert_eq!(now, audits);

    // A move the lifecycle refuses is a 409 with the service's message.
    let ok = f.post(&path(id, "acknowledge"), &planner, &[]).await;
    assert_done(&ok, id, "acknowledge");
    let again = f.post(&path(id, "acknowledge"), &planner, &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.body.contains("is already acknowledged"),
        "{}",
        again.body
    );
    assert!(again.body.contains(&esc(EN.from_service)));
}

#[tokio::test]
async fn engineers_start_resolve_and_note_their_own_tickets_only() {
    let f = Fixture::new();
    let id = f.ticket_id("wm-1", "drain_pump");
    f.assign(id, "engineer");
    let engineer = f.sign_in("engineer");
    let page = f
        .get(&format!("/console/tickets/{id}"), Some(&engineer))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    for action in ["resolve", "note"] {
        assert!(page.body.contains(&path(id, action)), "{action}");
    }
    for action in ["acknowledge", "schedule", "dismiss", "reopen", "close"] {
        assert!(
            !page.body.contains(&format!("{}\"", path(id, action))),
            "{action}"
        );
    }
    assert!(page.body.contains("href=\"/console/my-day\""));

    // What their role may not do is refused with 403 and audited.
    for action in ["dismiss", "acknowledge"] {
        let a = f
            .post(&path(id, action), &engineer, &[("note", "not mine")])
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{action}");
        assert!(
            a.body.contains("engineers") || a.body.contains("may not"),
            "{action}"
        );
        assert_audited(&f, id, action, "engineer (engineer)", 403);
    }
    // Whatever they type: no 400 for a form they may not send at all.
    for (action, fields) in [
        ("schedule", vec![("engineer", "nobody")]),
        ("dismiss", vec![("note", "")]),
    ] {
        let a = f.post(&path(id, action), &engineer, &fields).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(ticket(&f, id).status, TicketStatus::Open);

    // Another engineer may not touch it at all.
    let other = f.sign_in("engineer2");
    let a = f.post(&path(id, "note"), &other, &[("note", "hi")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_audited(&f, id, "note", "engineer2 (engineer2)", 403);
    assert!(ticket(&f, id).log.iter().all(|e| e.note != "hi"));
}

#[tokio::test]
async fn hostile_text_in_notes_outcomes_and_names_is_shown_as_text() {
    let f = Fixture::new();
    f.rename("planner", HOSTILE);
    let planner = f.sign_in("planner");
    let id = f.ticket_id("wm-1", "heater");
    let a = f
        .post(&path(id, "note"), &planner, &[("note", HOSTILE)])
        .await;
    assert_done(&a, id, "note");
    let a = f
        .post(
            &path(id, "resolve"),
            &planner,
            &[
                ("kind", "confirmed_failure"),
                ("component", "heater"),
                ("note", HOSTILE),
            ],
        )
        .await;
    assert_done(&a, id, "resolve");
    let page = f
        .get(&format!("/console/tickets/{id}"), Some(&planner))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>alert"), "markup from text");
    assert!(page.body.contains(&esc(HOSTILE)), "shown as text");
    // A refused form puts the hostile text back into a textarea, escaped.
    let a = f
        .post(
            &path(id, "reopen"),
            &planner,
            &[("to", "closed"), ("note", HOSTILE)],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.body.contains("<script>alert"));
    // A part name typed into the form is escaped in the message.
    let other = f.ticket_id("wm-2", "drain_pump");
    let a = f
        .post(
            &path(other, "resolve"),
            &planner,
            &[
                ("kind", "confirmed_failure"),
                ("component", "drain_pump"),
                ("parts", HOSTILE),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.body.contains("<script>alert"));
}

#[tokio::test]
async fn a_chinese_speaking_engineer_reads_the_ticket_in_chinese() {
    let f = Fixture::new();
    let id = f.ticket_id("wm-1", "drain_pump");
    f.assign(id, "engineer2");
    let zh = f.sign_in("engineer2");
    let a = f.get(&format!("/console/tickets/{id}"), Some(&zh)).await;
    assert_eq!(a.status, StatusCode::OK);
    for expected in [
        "lang=\"zh-Hans\"",
        "排水泵",               // the component
        "洗衣机",               // the device type
        "排水超时",             // E21's title
        "排水时长：近一天均值", // the top feature
        "高于正常",
        "排水泵过滤器",           // a likely part
        "请用户清洁排水泵过滤器", // a remote check
        ZH.sla,
        ZH.log,
        ZH.automatic,
        ZH.resolve,
    ] {
        assert!(a.body.contains(expected), "missing {expected:?}");
    }
    assert!(!a.body.contains("Drain timeout"));
    assert!(
        !a.body.contains("Time to empty the drum"),
        "no English channel sentence beside its Chinese name"
    );
    // A refusal in Chinese where it is our text.
    let r = f
        .post(
            &path(id, "resolve"),
            &zh,
            &[("kind", "confirmed_failure"), ("component", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains(ZH.err_component));
}

#[tokio::test]
async fn a_year_of_telemetry_is_sampled_into_the_chart() {
    let f = Fixture::new();
    f.add_hourly_readings("wm-1", 24 * 365);
    let planner = f.sign_in("planner");
    let id = f.ticket_id("wm-1", "drain_pump");
    let started = std::time::Instant::now();
    let a = f
        .get(&format!("/console/tickets/{id}"), Some(&planner))
        .await;
    let took = started.elapsed();
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body.contains(&fill(
            EN.chart_sampled,
            &super::view::CHART_POINTS.to_string()
        )),
        "the chart says it is sampled"
    );
    // Too many readings for dots: only the line.
    assert!(!a.body.contains("r=\"2.5\""), "no dots on a dense chart");
    // Generous for a debug build on a shared machine; release is far below.
    assert!(took.as_millis() < 3_000, "{took:?}");
}
