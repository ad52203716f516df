//! The alerts view and the ticket page's procedure panel through the whole router.

use axum::http::StatusCode;
use domain::{OutcomeKind, Ticket, TicketStatus, Timestamp};

use crate::testing::{Fixture, HOSTILE};

const DAY: i64 = 86_400_000;

fn ticket(f: &Fixture, id: i64) -> Ticket {
    f.tickets.get(id).expect("store").expect("ticket")
}

/// A ticket opened ten days ago (every step of its procedure but `finish` overdue),
/// swept, so its alerts fired.
fn overdue(f: &Fixture, device: &str) -> i64 {
    let id = f.open_ticket(
        device,
        "motor_bearing",
        0.9,
        Timestamp(f.now().0 - 10 * DAY),
        None,
    );
    f.tickets
        .check_steps(&api::tickets::NoSupervisors)
        .expect("sweep");
    id
}

/// A resolved ticket of `device`, acknowledged by the planner (its call-back owner)
/// and assigned to `engineer`.
fn resolved(f: &Fixture, device: &str, component: &str, engineer: &str) -> i64 {
    let id = f.open_ticket(device, component, 0.9, f.now(), None);
    f.assign(id, engineer);
    f.tickets
        .transition(id, TicketStatus::Acknowledged, "planner", "", None)
        .expect("acknowledged");
    f.tickets
        .transition(
            id,
            TicketStatus::Resolved,
            "planner",
            "",
            Some(api::OutcomeInput {
                kind: Some(OutcomeKind::NoFaultFound),
                ..api::OutcomeInput::default()
            }),
        )
        .expect("resolved");
    id
}

#[tokio::test]
async fn alerts_list_overdue_steps_and_callbacks_and_engineers_see_their_own() {
    let f = Fixture::new();
    let late = overdue(&f, "wm-1");
    f.assign(late, "engineer");
    let other = overdue(&f, "wm-2");
    let answered = resolved(&f, "wm-1", "heater", "engineer2");
    f.tickets
        .record_satisfaction(
            answered,
            api::tickets::SatisfactionInput {
                score: 1,
                comment: HOSTILE.into(),
                channel: None,
            },
            "planner",
        )
        .expect("answer");
    let planner = f.sign_in("planner");
    let page = f.get("/console/alerts", Some(&planner)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    for id in [late, other, answered] {
        assert!(
            body.contains(&format!("/console/tickets/{id}")),
            "{id}: {body}"
        );
    }
    assert!(
        body.contains("after-sales-manager"),
        "the urgent tier's contact"
    );
    assert!(body.contains("Respond"));
    assert!(body.contains("Call-backs to make"));
    assert!(body.contains("yours"), "the planner owns the call-back");
    assert!(
        body.contains("href=\"/console/alerts\""),
        "in the navigation"
    );
    // An engineer sees the rows of their own tickets only, in their language.
    let engineer = f.sign_in("engineer");
    let page = f.get("/console/alerts", Some(&engineer)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("/console/tickets/{late}")));
    assert!(!page.body.contains(&format!("/console/tickets/{other}")));
    assert!(!page.body.contains(&format!("/console/tickets/{answered}")));
    let zh = f.sign_in("engineer2");
    let page = f.get("/console/alerts", Some(&zh)).await;
    assert!(page.body.contains("超时步骤"), "{}", page.body);
    // Done steps leave the view.
    f.tickets
        .transition(late, TicketStatus::Dismissed, "planner", "duplicate", None)
        .expect("dismissed");
    let page = f.get("/console/alerts", Some(&planner)).await;
    assert!(!page.body.contains(&format!("/console/tickets/{late}\"")));
    assert!(page.body.contains(&format!("/console/tickets/{other}")));
}

#[tokio::test]
async fn the_ticket_page_shows_the_steps_and_records_satisfaction_and_the_callback() {
    let f = Fixture::new();
    let late = overdue(&f, "wm-1");
    let planner = f.sign_in("planner");
    let page = f
        .get(&format!("/console/tickets/{late}"), Some(&planner))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Procedure steps"));
    assert!(page.body.contains("overdue by"), "{}", page.body);
    assert!(page.body.contains("alert sent to after-sales-manager"));
    assert!(
        !page.body.contains("/satisfaction\""),
        "not resolved: no form"
    );

    let id = resolved(&f, "wm-2", "drain_pump", "engineer");
    let form = format!("/console/tickets/{id}/satisfaction");
    let page = f
        .get(&format!("/console/tickets/{id}"), Some(&planner))
        .await;
    assert!(
        page.body.contains(&format!("action=\"{form}\"")),
        "{}",
        page.body
    );
    // A missing score is the form's own refusal; an engineer may not record one.
    let a = f.post(&form, &planner, &[("comment", "x")]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("Choose a score from 1 to 5."));
    // An engineer may not record one, even on their own ticket (and sees no form).
    let engineer = f.sign_in("engineer");
    let page = f
        .get(&format!("/console/tickets/{id}"), Some(&engineer))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(&format!("action=\"{form}\"")));
    let a = f.post(&form, &engineer, &[("score", "5")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    // A dissatisfied answer opens the call-back, shown with its form.
    let a = f
        .post(&form, &planner, &[("score", "2"), ("comment", HOSTILE)])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let t = ticket(&f, id);
    assert_eq!(t.satisfaction.as_ref().map(|s| s.score), Some(2));
    let c = t.callback.expect("call-back opened");
    assert_eq!(c.owner.as_deref(), Some("planner"));
    let page = f
        .get(&format!("/console/tickets/{id}"), Some(&planner))
        .await;
    assert!(!page.body.contains(HOSTILE), "escaped");
    assert!(page.body.contains("Call-back done"));
    let done = format!("/console/tickets/{id}/callback");
    let a = f.post(&done, &planner, &[("note", " ")]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = f
        .post(&done, &planner, &[("note", "Apologised; revisit booked")])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(ticket(&f, id).callback.unwrap().done_at.is_some());
    // Done: the form is gone; a second post is the service's 409.
    let page = f
        .get(&format!("/console/tickets/{id}"), Some(&planner))
        .await;
    assert!(!page.body.contains("Call-back done</button>"));
    let a = f.post(&done, &planner, &[("note", "again")]).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    // In Chinese.
    let zh = f.sign_in("engineer2");
    f.assign(late, "engineer2");
    let page = f.get(&format!("/console/tickets/{late}"), Some(&zh)).await;
    assert!(page.body.contains("流程步骤"), "{}", page.body);
}
