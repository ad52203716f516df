use axum::http::StatusCode;
use chrono::TimeZone as _;
use domain::Timestamp;

use crate::testing::{Fixture, HOSTILE};

const HOUR: i64 = 3_600_000;

/// The ticket ids of the page's cards, in order.
fn card_ids(body: &str) -> Vec<i64> {
    body.match_indices("class=\"card-link\" href=\"/console/tickets/")
        .map(|(i, m)| {
            let rest = &body[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

/// The date of `ts` in Shanghai (the fixture's accounts' zone).
fn shanghai_day(ts: i64) -> chrono::NaiveDate {
    chrono_tz::Asia::Shanghai
        .timestamp_millis_opt(ts)
        .unwrap()
        .date_naive()
}

#[tokio::test]
async fn an_engineers_day_comes_in_window_order_grouped_by_day_unscheduled_last() {
    let f = Fixture::new();
    let engineer = f.sign_in("engineer");
    let now = f.now().millis();
    let window = |from_h: i64| {
        Some((
            Timestamp(now + from_h * HOUR),
            Timestamp(now + (from_h + 2) * HOUR),
        ))
    };
    let later = f.open_ticket("wm-10", "heater", 0.75, f.now(), None);
    let soon = f.open_ticket("wm-11", "drain_pump", 0.8, f.now(), None);
    let next_week = f.open_ticket("wm-12", "drain_pump", 0.7, f.now(), None);
    let unscheduled = f.ticket_id("wm-2", "drain_pump");
    f.assign_with(later, "engineer", window(26), Some("north"));
    f.assign_with(soon, "engineer", window(2), None);
    f.assign_with(next_week, "engineer", window(24 * 6), None);
    f.assign_with(unscheduled, "engineer", None, None);
    // Someone else's ticket and a resolved one of theirs are not in it.
    f.assign_with(f.ticket_id("wm-1", "heater"), "engineer2", window(1), None);
    let a = f.get("/console/my-day", Some(&engineer)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(card_ids(&a.body), [soon, later, next_week, unscheduled]);
    let days: std::collections::BTreeSet<_> = [2, 26, 24 * 6]
        .into_iter()
        .map(|h| shanghai_day(now + h * HOUR))
        .collect();
    assert_eq!(
        a.body.matches("<section class=\"day\">").count(),
        days.len() + 1,
        "one group per day and the unscheduled"
    );
    let unscheduled_at = a.body.rfind("Not scheduled yet</h2>").unwrap();
    assert!(
        unscheduled_at
            > a.body
                .find(&format!("/console/tickets/{next_week}"))
                .unwrap()
    );
    let tomorrow_or_today = a.body.contains("Today") || a.body.contains("Tomorrow");
    assert!(tomorrow_or_today, "{}", a.body);
    let far = shanghai_day(now + 24 * 6 * HOUR);
    assert!(
        a.body.contains(&far.format("%Y-%m-%d").to_string()),
        "a later day is named by its date"
    );
    assert!(a.body.contains("href=\"/console/devices/wm-10\""));
    assert!(a.body.contains("north"));
    assert!(a.body.contains("Asia/Shanghai"));
}

#[tokio::test]
async fn every_role_gets_a_day_and_engineers_only_their_own() {
    let f = Fixture::new();
    assert_eq!(
        f.get("/console/my-day", None).await.status,
        StatusCode::SEE_OTHER
    );
    f.assign_with(f.ticket_id("wm-2", "drain_pump"), "engineer", None, None);
    for login in ["admin", "planner"] {
        let p = f.sign_in(login);
        let own = f.get("/console/my-day", Some(&p)).await;
        assert_eq!(own.status, StatusCode::OK, "{login}");
        assert!(own
            .body
            .contains("Planners and admins have no tickets of their own."));
        assert!(
            !own.body.contains("No active tickets are assigned to you."),
            "the hint says it; no second, contradicting card"
        );
        assert!(own.body.contains("<option value=\"engineer\">"));
        let theirs = f.get("/console/my-day?engineer=engineer", Some(&p)).await;
        assert_eq!(theirs.status, StatusCode::OK, "{login}");
        assert_eq!(card_ids(&theirs.body), [f.ticket_id("wm-2", "drain_pump")]);
        assert!(
            theirs.body.contains("<h1>engineer&#39;s day</h1>"),
            "{}",
            theirs.body
        );
        assert!(theirs.body.contains("<option value=\"engineer\" selected>"));
        let nobody = f.get("/console/my-day?engineer=nobody", Some(&p)).await;
        assert!(nobody
            .body
            .contains("No active tickets are assigned to nobody."));
    }
    let engineer = f.sign_in("engineer");
    let own = f
        .get("/console/my-day?engineer=engineer", Some(&engineer))
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(!own.body.contains("Planners and admins"));
    assert!(
        !own.body.contains("name=\"engineer\""),
        "no choice of engineers"
    );
    let other = f
        .get("/console/my-day?engineer=engineer2", Some(&engineer))
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    for bad in ["/console/my-day?engineer=a%20b", "/console/my-day?day=1"] {
        let a = f.get(bad, Some(&engineer)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(a.body.contains("<html"));
    }
}

#[tokio::test]
async fn the_day_speaks_chinese_and_escapes_text() {
    let f = Fixture::new();
    let zh = f.sign_in("engineer2");
    let id = f.open_ticket(
        "wm-20",
        "drain_pump",
        0.8,
        f.now(),
        Some(Fixture::facts(HOSTILE, HOSTILE, HOSTILE)),
    );
    let now = f.now().millis();
    f.assign_with(
        id,
        "engineer2",
        Some((Timestamp(now + HOUR), Timestamp(now + 3 * HOUR))),
        Some(HOSTILE),
    );
    f.assign_with(f.ticket_id("wm-2", "drain_pump"), "engineer2", None, None);
    let a = f.get("/console/my-day", Some(&zh)).await;
    assert_eq!(a.status, StatusCode::OK);
    for word in ["我的日程", "上门时间窗", "尚未安排上门时间", "剩余", "一般"]
    {
        assert!(a.body.contains(word), "{word} missing");
    }
    assert!(a.body.contains("今天") || a.body.contains("明天"));
    assert!(!a.body.contains("<script>alert"));
    assert!(a.body.contains("&#60;script&#62;alert"));
}
