use axum::http::StatusCode;
use domain::{Lang, OutcomeKind, TicketStatus};

use super::*;
use crate::testing::{Fixture, HOSTILE};

fn texts(lang: Lang) -> &'static Texts {
    pick(lang, &EN, &ZH)
}

#[tokio::test]
async fn the_page_follows_the_read_kpis_grant_and_the_nav_links_it() {
    let f = Fixture::new();
    for (login, status) in [
        ("admin", StatusCode::OK),
        ("planner", StatusCode::OK),
        ("engineer", StatusCode::FORBIDDEN),
    ] {
        let p = f.sign_in(login);
        let a = f.get("/console/kpis", Some(&p)).await;
        assert_eq!(a.status, status, "{login}: {}", a.body);
        let home = f.get("/console/", Some(&p)).await;
        assert_eq!(
            home.body.contains("href=\"/console/kpis\""),
            status == StatusCode::OK,
            "{login}'s navigation"
        );
    }
    let nobody = f.get("/console/kpis", None).await;
    assert_eq!(nobody.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn tickets_moved_through_the_service_show_in_both_languages() {
    let f = Fixture::new();
    // The fixture's three flags (wm-1 drain pump and heater, wm-2 drain pump), opened
    // now: wm-1's drain pump repaired in one visit, wm-2's dismissed, the heater
    // assigned to a region with markup in its name.
    let repair = f.ticket_id("wm-1", "drain_pump");
    let heater = f.ticket_id("wm-1", "heater");
    let dismissed = f.ticket_id("wm-2", "drain_pump");
    let svc = &f.tickets;
    svc.transition(repair, TicketStatus::Acknowledged, "planner", "", None)
        .unwrap();
    svc.transition(repair, TicketStatus::InProgress, "engineer", "", None)
        .unwrap();
    svc.transition(
        repair,
        TicketStatus::Resolved,
        "engineer",
        "",
        Some(api::OutcomeInput {
            kind: Some(OutcomeKind::ConfirmedFailure),
            ..Default::default()
        }),
    )
    .unwrap();
    svc.transition(dismissed, TicketStatus::Dismissed, "planner", "", None)
        .unwrap();
    svc.assign(
        heater,
        api::AssignmentInput {
            region: Some(HOSTILE.into()),
            ..Default::default()
        },
        "planner",
    )
    .unwrap();

    let planner = f.sign_in("planner");
    let a = f
        .get("/console/kpis?group_by=region&bucket=week", Some(&planner))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let en = texts(Lang::En);
    let body = &a.body;
    // Three opened; one repair fixed first time (100%); 1 of 2 ended flags dismissed.
    assert!(body.contains("id=\"kpi-opened\""), "{body}");
    assert!(body.contains("<span class=\"rate\">3</span>"), "{body}");
    assert!(
        body.contains("<span class=\"rate\">100.0%</span>"),
        "{body}"
    );
    assert!(body.contains("<span class=\"rate\">50.0%</span>"), "{body}");
    assert!(body.contains(&format!(
        "<abbr title=\"{}\">",
        en.first_time_fix_def.replace('\'', "&#39;")
    )));
    // What is missing is said, not shown as zero.
    assert!(body.contains(en.no_answers), "{body}");
    assert!(body.contains(en.no_reports));
    // Every ticket got the default procedure's step clocks when it opened.
    assert!(!body.contains(en.no_steps), "{body}");
    // The charts are drawn and named; the groups table escapes the region's markup.
    assert!(body.contains("id=\"chart-times\""), "{body}");
    assert!(body.contains("id=\"chart-prediction\""));
    assert!(body.contains("id=\"kpi-groups\""));
    assert!(!body.contains("<script>alert"), "unescaped markup");
    assert!(body.contains("&#60;script&#62;alert(&#34;x&#34;)"));
    assert!(body.contains(">unknown<"), "the other tickets' region");
    assert!(body.contains("<option value=\"week\" selected>"));
    assert!(body.contains("<option value=\"region\" selected>"));

    let zh = f.sign_in("engineer2");
    // engineer2 reads Chinese but may not see KPIs; an admin in Chinese does.
    assert_eq!(
        f.get("/console/kpis", Some(&zh)).await.status,
        StatusCode::FORBIDDEN
    );
    let admin = f.sign_in("admin");
    f.post(
        "/console/account/language",
        &admin,
        &[("lang", "zh"), ("back", "/console/kpis")],
    )
    .await;
    let a = f.get("/console/kpis", Some(&admin)).await;
    assert_eq!(a.status, StatusCode::OK);
    let zh = texts(Lang::Zh);
    assert!(a.body.contains(zh.title), "{}", a.body);
    assert!(a.body.contains(zh.no_answers));
    assert!(a.body.contains(zh.first_time_fix));
    assert!(!a.body.contains(en.no_answers));
    // Sources and steps by their Chinese names, not their wire names.
    let common = crate::i18n::common(Lang::Zh);
    assert!(
        a.body.contains(&format!("{} 3", common.source_proactive)),
        "{}",
        a.body
    );
    assert!(!a.body.contains("proactive 3"), "{}", a.body);
    assert!(a.body.contains(crate::ticket::procedure::ZH.step_respond));
}

#[tokio::test]
async fn an_empty_period_says_so_and_bad_input_is_a_400_page() {
    let f = Fixture::new();
    let planner = f.sign_in("planner");
    let en = texts(Lang::En);
    let a = f
        .get(
            "/console/kpis?from=2020-01-01&to=2020-01-31",
            Some(&planner),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains(en.no_tickets));
    assert!(a.body.contains(en.no_chart));
    assert!(a.body.contains("value=\"2020-01-01\""));
    assert!(a.body.contains("value=\"2020-01-31\""));
    for (q, words) in [
        ("from=2026-02-30", en.bad_date),
        ("from=2026-03-01&to=2026-02-01", en.bad_date),
        ("from=2020-01-01&to=2026-01-01", en.bad_date),
        ("group_by=team", en.bad_choice),
        ("bucket=month", en.bad_choice),
        ("colour=red", en.bad_choice),
    ] {
        let a = f.get(&format!("/console/kpis?{q}"), Some(&planner)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{q}");
        let words = words.replace('\'', "&#39;");
        assert!(a.body.contains(&words), "{q}: {}", a.body);
    }
}
