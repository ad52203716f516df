use axum::http::StatusCode;
use domain::Timestamp;

use crate::testing::{Fixture, HOSTILE};

const HOUR: i64 = 3_600_000;

/// The ticket ids of the page's rows, in order.
fn row_ids(body: &str) -> Vec<i64> {
    body.match_indices("data-id=\"")
        .map(|(i, m)| {
            let rest = &body[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

fn query(pairs: &[(&str, &str)]) -> String {
    format!("/console/?{}", serde_urlencoded::to_string(pairs).unwrap())
}

#[tokio::test]
async fn the_queue_is_the_home_page_and_engineers_see_only_their_own_tickets() {
    let f = Fixture::new();
    let anonymous = f.get("/console/", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(anonymous.location().starts_with("/console/sign-in"));
    for login in ["admin", "planner"] {
        let p = f.sign_in(login);
        let a = f.get("/console/", Some(&p)).await;
        assert_eq!(a.status, StatusCode::OK, "{login}: {}", a.body);
        assert_eq!(row_ids(&a.body).len(), 3, "{login}");
        assert!(a.body.contains("data-live=\"/console/events\""), "{login}");
        assert!(a.body.contains("name=\"engineer\""), "{login}");
    }
    let engineer = f.sign_in("engineer");
    let a = f.get("/console/", Some(&engineer)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(row_ids(&a.body).is_empty());
    assert!(a.body.contains("No active tickets are assigned to you."));
    assert!(
        !a.body.contains("data-live"),
        "engineers may not follow events"
    );
    let theirs = f.ticket_id("wm-2", "drain_pump");
    f.assign_with(theirs, "engineer", None, None);
    f.assign_with(f.ticket_id("wm-1", "heater"), "engineer2", None, None);
    let a = f.get("/console/", Some(&engineer)).await;
    assert_eq!(row_ids(&a.body), [theirs]);
    assert!(a
        .body
        .contains(&format!("href=\"/console/tickets/{theirs}\"")));
    assert!(a.body.contains("href=\"/console/devices/wm-2\""));
    // Their own engineer filter is fine; another engineer's is not.
    let own = f.get("/console/?engineer=engineer", Some(&engineer)).await;
    assert_eq!(row_ids(&own.body), [theirs]);
    for other in ["engineer2", "-"] {
        let a = f
            .get(&format!("/console/?engineer={other}"), Some(&engineer))
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{other}");
        assert!(a.body.contains("not another engineer"), "{}", a.body);
    }
}

#[tokio::test]
async fn filters_live_in_the_url_and_bad_values_are_a_clear_400_page() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let urgent = f.get("/console/?priority=urgent", Some(&planner)).await;
    assert_eq!(urgent.status, StatusCode::OK);
    assert_eq!(row_ids(&urgent.body), [f.ticket_id("wm-1", "drain_pump")]);
    assert!(urgent.body.contains("<option value=\"urgent\" selected>"));
    let heater = f
        .get(
            "/console/?component=heater&device_type=washer",
            Some(&planner),
        )
        .await;
    assert_eq!(row_ids(&heater.body), [f.ticket_id("wm-1", "heater")]);
    let none = f.get("/console/?status=resolved", Some(&planner)).await;
    assert!(row_ids(&none.body).is_empty());
    assert!(none.body.contains("No tickets match these filters."));
    assert!(none.body.contains("Clear filters"));
    let all = f
        .get("/console/?status=all&source=proactive", Some(&planner))
        .await;
    assert_eq!(row_ids(&all.body).len(), 3);
    let unassigned = f.get("/console/?engineer=-", Some(&planner)).await;
    assert_eq!(row_ids(&unassigned.body).len(), 3);
    let since = f.get("/console/?since=2999-01-01", Some(&planner)).await;
    assert!(row_ids(&since.body).is_empty());
    let since = f.get("/console/?since=2020-01-01", Some(&planner)).await;
    assert_eq!(row_ids(&since.body).len(), 3);
    // Empty values (a form's "any") are no filter.
    let blank = f
        .get(
            "/console/?status=&priority=&source=&device_type=&component=&region=&batch=&engineer=&since=&page=",
            Some(&planner),
        )
        .await;
    assert_eq!(row_ids(&blank.body).len(), 3);

    for (path, says) in [
        ("/console/?status=done", "active, all"),
        ("/console/?priority=high", "urgent, important, normal"),
        ("/console/?source=phone", "proactive, reactive"),
        ("/console/?device_type=toaster", "washer"),
        ("/console/?component=wheel", "drain_pump"),
        (
            "/console/?device_type=washer&component=compressor",
            "drain_pump",
        ),
        ("/console/?since=2026-13-01", "2026-11-24"),
        ("/console/?since=yesterday", "2026-11-24"),
        ("/console/?page=0", "page number"),
        ("/console/?page=abc", "page number"),
        ("/console/?page=99999999999999999999999", "page number"),
        ("/console/?colour=red", "unknown parameter"),
        (
            "/console/?status=open&status=acknowledged",
            "more than once",
        ),
        ("/console/?region=%01", "control"),
        ("/console/?engineer=two%20words", "login"),
    ] {
        let a = f.get(path, Some(&planner)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(a.body.contains("<html"), "{path}: an error page");
        assert!(a.body.contains(says), "{path}: {}", a.body);
    }
    // A bad value is shown as text.
    let a = f
        .get(&query(&[("status", "<b>x</b>")]), Some(&planner))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.body.contains("<b>x</b>"));
    assert!(a.body.contains("&#60;b&#62;x&#60;/b&#62;"));
}

#[tokio::test]
async fn counts_ignore_only_the_filter_they_count_and_link_to_it() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let a = f.get("/console/?priority=urgent", Some(&planner)).await;
    // Statuses within the priority filter: the one urgent ticket is open.
    assert!(a.body.contains("Open <b>1</b>"), "{}", a.body);
    assert!(a.body.contains("Acknowledged <b>0</b>"));
    // Priorities over the statuses selected, whatever the priority filter.
    assert!(a.body.contains("Urgent <b>1</b>"));
    assert!(a.body.contains("Important <b>1</b>"));
    assert!(a.body.contains("Normal <b>1</b>"));
    // A status count links to its status with the other filters kept.
    assert!(
        a.body
            .contains("href=\"/console/?status=open&#38;priority=urgent\""),
        "{}",
        a.body
    );
    assert!(a.body.contains("1–1 of 1 tickets"));
}

#[tokio::test]
async fn pages_of_fifty_keep_the_filters() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let now = f.now();
    for i in 0..60 {
        f.open_ticket(
            &format!("wm-p{i:02}"),
            "drain_pump",
            0.5 + i as f64 / 200.0,
            Timestamp(now.millis() - i * 60_000),
            Some(Fixture::facts("WM-500", "B-PAGE", "south")),
        );
    }
    let first = f.get("/console/?batch=B-PAGE", Some(&planner)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(row_ids(&first.body).len(), 50);
    assert!(first.body.contains("1–50 of 60 tickets"), "{}", first.body);
    assert!(first
        .body
        .contains("href=\"/console/?batch=B-PAGE&#38;page=2\" rel=\"next\""));
    assert!(!first.body.contains("rel=\"prev\""));
    assert!(first.body.contains("Page 1 of 2"));
    let second = f
        .get("/console/?batch=B-PAGE&region=south&page=2", Some(&planner))
        .await;
    let ids = row_ids(&second.body);
    assert_eq!(ids.len(), 10);
    assert!(ids.iter().all(|id| !row_ids(&first.body).contains(id)));
    assert!(second
        .body
        .contains("href=\"/console/?region=south&#38;batch=B-PAGE\" rel=\"prev\""));
    assert!(!second.body.contains("rel=\"next\""));
    assert!(second.body.contains("51–60 of 60 tickets"));
    // The rows show the registry facts.
    assert!(second.body.contains("WM-500"));
    assert!(second.body.contains("batch B-PAGE"));
    let beyond = f.get("/console/?batch=B-PAGE&page=9", Some(&planner)).await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert!(beyond.body.contains("This page is past the last ticket."));
    assert!(beyond.body.contains("href=\"/console/?batch=B-PAGE\""));
    // The filter form offers the batches and regions of the active tickets.
    assert!(first.body.contains("<option value=\"B-PAGE\" selected>"));
    assert!(first.body.contains("<option value=\"south\">"));
}

#[tokio::test]
async fn the_most_pressing_deadline_comes_first_and_near_breaches_are_marked() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let now = f.now().millis();
    // Urgent tickets respond within an hour: one opened 2 h ago is past it, one opened
    // 50 min ago has 10 min left (the last quarter).
    let late = f.open_ticket(
        "wm-late",
        "drain_pump",
        0.95,
        Timestamp(now - 2 * HOUR),
        None,
    );
    let near = f.open_ticket(
        "wm-near",
        "drain_pump",
        0.95,
        Timestamp(now - 50 * 60_000),
        None,
    );
    let a = f.get("/console/", Some(&planner)).await;
    assert_eq!(
        row_ids(&a.body),
        [
            late,
            near,
            f.ticket_id("wm-1", "drain_pump"), // urgent: 1 h
            f.ticket_id("wm-1", "heater"),     // important: 4 h
            f.ticket_id("wm-2", "drain_pump"), // normal: 24 h
        ]
    );
    assert!(a
        .body
        .contains(&format!("class=\"sla-breached\" data-id=\"{late}\"")));
    assert!(a
        .body
        .contains(&format!("class=\"sla-near\" data-id=\"{near}\"")));
    assert!(a.body.contains(&format!(
        "class=\"sla-ok\" data-id=\"{}\"",
        f.ticket_id("wm-1", "drain_pump")
    )));
    assert!(a.body.contains("overdue by 1 h 0 min"), "{}", a.body);
    assert!(a
        .body
        .contains("<span class=\"badge breached\">Breached</span>"));
    assert!(a
        .body
        .contains("<span class=\"badge near\">Due soon</span>"));
    assert!(a.body.contains("Respond by"));
    // Once acknowledged, the resolve clock counts (24 h for urgent): no longer marked.
    f.tickets
        .transition(
            near,
            domain::TicketStatus::Acknowledged,
            "Planner (planner)",
            "",
            None,
        )
        .unwrap();
    let a = f.get("/console/", Some(&planner)).await;
    assert!(a
        .body
        .contains(&format!("class=\"sla-ok\" data-id=\"{near}\"")));
    assert_eq!(
        row_ids(&a.body),
        [
            late,
            f.ticket_id("wm-1", "drain_pump"),
            f.ticket_id("wm-1", "heater"),
            near, // resolve by: 23 h 10 min left
            f.ticket_id("wm-2", "drain_pump"),
        ]
    );
}

#[tokio::test]
async fn text_from_devices_and_people_is_escaped() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let id = f.open_ticket(
        "wm-evil",
        "drain_pump",
        0.8,
        f.now(),
        Some(Fixture::facts(HOSTILE, HOSTILE, HOSTILE)),
    );
    f.assign_with(id, HOSTILE, None, Some(HOSTILE));
    f.tickets
        .add_note(id, HOSTILE, "Planner (planner)")
        .unwrap();
    let a = f.get("/console/", Some(&planner)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains("<script>alert"), "{}", a.body);
    assert!(a.body.contains("&#60;script&#62;alert"));
    assert!(a.body.contains("&#39;quoted&#39;"));
    // As filter values (the form echoes them).
    let filtered = f
        .get(
            &query(&[("region", HOSTILE), ("batch", HOSTILE)]),
            Some(&planner),
        )
        .await;
    assert_eq!(filtered.status, StatusCode::OK, "{}", filtered.body);
    assert_eq!(row_ids(&filtered.body), [id]);
    assert!(!filtered.body.contains("<script>alert"));
}

#[tokio::test]
async fn a_chinese_speaker_reads_the_queue_in_chinese() {
    let f = Fixture::new();
    let zh = f.sign_in("engineer2");
    let id = f.ticket_id("wm-1", "heater");
    f.assign_with(id, "engineer2", None, None);
    let a = f.get("/console/", Some(&zh)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(row_ids(&a.body), [id]);
    for word in [
        "工单队列",
        "待响应",
        "重要",
        "剩余",
        "响应截止",
        "模型预测",
        "筛选",
    ] {
        assert!(a.body.contains(word), "{word} missing");
    }
    let bad = f.get("/console/?priority=high", Some(&zh)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("筛选条件“优先级”的值“high”无效"),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn the_language_switch_and_an_engineer_filter_keep_the_view() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    f.assign_with(f.ticket_id("wm-2", "drain_pump"), "engineer", None, None);
    let a = f
        .get(
            "/console/?priority=normal&engineer=engineer",
            Some(&planner),
        )
        .await;
    assert_eq!(row_ids(&a.body).len(), 1);
    assert!(
        a.body
            .contains("name=\"back\" value=\"/console/?priority=normal&#38;engineer=engineer\""),
        "{}",
        a.body
    );
    assert!(a
        .body
        .contains("href=\"/console/my-day?engineer=engineer\""));
}

#[test]
fn near_breach_is_the_last_quarter_capped_at_two_hours() {
    use super::{sla_mark, SlaMark};
    use domain::{Priority, TicketSource, TicketStatus};
    let t = |opened: i64, due: i64, status: TicketStatus| store::tickets::QueueTicket {
        id: 1,
        number: "n".into(),
        device_id: "d".into(),
        device_type: "washer".into(),
        component: "c".into(),
        source: TicketSource::Proactive,
        status,
        priority: Priority::Normal,
        risk: 0.5,
        opened_at: Timestamp(opened),
        updated_at: Timestamp(opened),
        respond_by: Timestamp(due),
        resolve_by: Some(Timestamp(due)),
        due: Timestamp(due),
        respond_breached: false,
        resolve_breached: false,
        engineer: None,
        window_start: None,
        window_end: None,
        region: None,
        device_model: None,
        device_batch: None,
        device_region: None,
    };
    let open = TicketStatus::Open;
    // A 1-hour clock: the last 15 minutes.
    assert_eq!(
        sla_mark(&t(0, HOUR, open), Timestamp(44 * 60_000)).0,
        SlaMark::Ok
    );
    assert_eq!(
        sla_mark(&t(0, HOUR, open), Timestamp(45 * 60_000)).0,
        SlaMark::Near
    );
    // A 72-hour clock: the last 2 hours, not 18.
    assert_eq!(
        sla_mark(&t(0, 72 * HOUR, open), Timestamp(60 * HOUR)).0,
        SlaMark::Ok
    );
    assert_eq!(
        sla_mark(&t(0, 72 * HOUR, open), Timestamp(70 * HOUR)).0,
        SlaMark::Near
    );
    // Past the deadline, or marked breached by the sweep.
    let (mark, left) = sla_mark(&t(0, HOUR, open), Timestamp(2 * HOUR));
    assert_eq!((mark, left), (SlaMark::Breached, -HOUR));
    let flagged = store::tickets::QueueTicket {
        respond_breached: true,
        ..t(0, 10 * HOUR, open)
    };
    assert_eq!(sla_mark(&flagged, Timestamp(0)).0, SlaMark::Breached);
    // Ended tickets run no clock.
    assert_eq!(
        sla_mark(&t(0, HOUR, TicketStatus::Resolved), Timestamp(5 * HOUR)).0,
        SlaMark::Ended
    );
}
