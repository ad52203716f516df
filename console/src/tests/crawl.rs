//! A walk through every page each role can reach by following links, as a person with
//! a mouse would: every link and form leads to a page that exists and that the person
//! may open, and every page keeps the rules the Content-Security-Policy and a screen
//! reader need (no inline styles or scripts, a language, labelled pictures, tables with
//! headers, a CSRF token in every form that changes something).

use std::collections::{BTreeSet, VecDeque};

use axum::http::StatusCode;
use domain::Timestamp;

use crate::testing::{Fixture, HOSTILE, T0};

/// Pages fetched per person at most (the queue's filter links multiply).
const MAX_PAGES: usize = 160;

/// Text between `start` and the next `end` after each occurrence of `start`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(start) {
        rest = &rest[i + start.len()..];
        let j = rest.find(end).unwrap_or(rest.len());
        out.push(&rest[..j]);
        rest = &rest[j..];
    }
    out
}

/// An attribute value as askama wrote it, read back.
fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// What is wrong with a page's markup, by the console's rules.
fn markup_problems(path: &str, html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut say = |what: String| problems.push(format!("{path}: {what}"));
    if !(html.contains("<html lang=\"en\"") || html.contains("<html lang=\"zh-Hans\"")) {
        say("no lang on <html>".into());
    }
    for tag in between(html, "<", ">") {
        let name = tag.split_whitespace().next().unwrap_or("");
        if tag.contains(" style=") {
            say(format!("inline style in <{tag}>"));
        }
        if tag
            .split_whitespace()
            .skip(1)
            .any(|a| a.starts_with("on") && a.contains('='))
        {
            say(format!("inline event handler in <{tag}>"));
        }
        if name == "script" && !tag.contains(" src=") {
            say("inline <script>".into());
        }
        if name == "style" {
            say("a <style> element".into());
        }
        if name == "img" && !tag.contains(" alt=") {
            say(format!("an image without alt: <{tag}>"));
        }
        if name == "svg" {
            let hidden = tag.contains("aria-hidden=\"true\"");
            let named = tag.contains("role=\"img\"")
                && (tag.contains("aria-label=") || tag.contains("aria-labelledby="));
            if !hidden && !named {
                say(format!("a picture without a name: <{tag}>"));
            }
        }
    }
    for table in between(html, "<table", "</table>") {
        if !table.contains("<th") {
            say(format!(
                "a table without headers: <table{}",
                &table[..table.len().min(120)]
            ));
        }
    }
    for form in between(html, "<form", "</form>") {
        let post = form.contains("method=\"post\"");
        if post && !form.contains("name=\"csrf\"") {
            say(format!(
                "a form without a CSRF token: <form{}",
                &form[..form.len().min(120)]
            ));
        }
    }
    problems
}

/// The console paths a page links to (`href`), and its forms' (method, action).
fn links(html: &str) -> (Vec<String>, Vec<(bool, String)>) {
    let hrefs = between(html, " href=\"", "\"")
        .into_iter()
        .map(unescape)
        .filter(|h| h.starts_with("/console"))
        .map(|h| h.split('#').next().unwrap_or("").to_owned())
        .filter(|h| !h.starts_with("/console/assets/") && h != "/console/events")
        .collect();
    let forms = between(html, "<form", ">")
        .into_iter()
        .filter_map(|tag| {
            let action = between(tag, "action=\"", "\"")
                .first()
                .map(|a| unescape(a))?;
            Some((tag.contains("method=\"post\""), action))
        })
        .collect();
    (hrefs, forms)
}

#[tokio::test]
async fn every_link_and_form_leads_to_a_page_the_person_may_open() {
    let f = Fixture::new().with_diagnosis();
    let (f, _hooks) = f.with_webhooks();
    f.add_washer("wm-x", HOSTILE, HOSTILE, HOSTILE, Some("E21"));
    let hostile = f.open_ticket(
        "wm-x",
        "drain_pump",
        0.9,
        Timestamp(T0),
        Some(Fixture::facts(HOSTILE, HOSTILE, HOSTILE)),
    );
    f.raise_alarm("WM-500", "B2025-07", "drain_pump");
    f.add_dead_letters("fixahead/v1/wm-9/telemetry", &[b"{not json"]);
    let day = 86_400_000;
    let now = f.now().0;
    f.assign_with(
        f.ticket_id("wm-1", "drain_pump"),
        "engineer",
        Some((Timestamp(now + day), Timestamp(now + day + 7_200_000))),
        Some("north"),
    );
    f.assign_with(hostile, "engineer", None, Some(HOSTILE));
    f.assign(f.ticket_id("wm-2", "drain_pump"), "engineer2");
    // The procedure panel's forms and the alerts view's rows: a step past its limit,
    // and a resolved ticket whose dissatisfied customer waits for a call-back.
    let late = f.open_ticket("wm-x", "heater", 0.9, Timestamp(T0 - 10 * day), None);
    f.assign(late, "engineer");
    f.tickets
        .check_steps(&api::tickets::NoSupervisors)
        .expect("step sweep");
    let answered = f.open_ticket("wm-2", "heater", 0.9, Timestamp(T0), None);
    f.assign(answered, "engineer2");
    f.tickets
        .transition(
            answered,
            domain::TicketStatus::Resolved,
            "planner",
            "",
            Some(api::OutcomeInput {
                kind: Some(domain::OutcomeKind::NoFaultFound),
                ..api::OutcomeInput::default()
            }),
        )
        .expect("resolved");
    f.tickets
        .record_satisfaction(
            answered,
            api::tickets::SatisfactionInput {
                score: 1,
                comment: HOSTILE.into(),
                channel: None,
            },
            HOSTILE,
        )
        .expect("answer");

    let mut problems = Vec::new();
    for login in ["admin", "planner", "engineer", "engineer2"] {
        let who = f.sign_in(login);
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut todo: VecDeque<String> = ["/console/", "/console/my-day", "/console/account"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut fetched = 0;
        let mut posts: BTreeSet<String> = BTreeSet::new();
        while let Some(path) = todo.pop_front() {
            if !seen.insert(path.clone()) || fetched >= MAX_PAGES {
                continue;
            }
            fetched += 1;
            let a = f.get(&path, Some(&who)).await;
            if a.status != StatusCode::OK {
                problems.push(format!("{login}: GET {path} is {}", a.status));
                continue;
            }
            let html = a
                .headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("text/html"));
            if !html {
                continue;
            }
            problems.extend(
                markup_problems(&path, &a.body)
                    .into_iter()
                    .map(|p| format!("{login}: {p}")),
            );
            let (hrefs, forms) = links(&a.body);
            todo.extend(hrefs.into_iter().filter(|h| !seen.contains(h)));
            for (post, action) in forms {
                if post {
                    posts.insert(action);
                } else {
                    todo.push_back(action);
                }
            }
        }
        assert!(fetched > 3, "{login} reached only {fetched} pages");
        // A form's target exists: without a token it is refused as a forgery (403),
        // not unknown (404) or the wrong method (405).
        for action in posts {
            let a = f.post_raw(&action, &who, &[]).await;
            if a.status != StatusCode::FORBIDDEN {
                problems.push(format!(
                    "{login}: POST {action} without a token is {}",
                    a.status
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_markup_rules_catch_what_they_are_for() {
    let page = r#"<html lang="en"><div style="color:red" onclick="x()"><script>x</script>
        <svg viewBox="0 0 1 1"></svg><table><tr><td>1</td></tr></table>
        <form method="post" action="/console/x"></form>"#;
    let found = markup_problems("/p", page);
    for what in [
        "inline style",
        "inline event handler",
        "inline <script>",
        "a picture without a name",
        "a table without headers",
        "a form without a CSRF token",
    ] {
        assert!(found.iter().any(|p| p.contains(what)), "{what}: {found:?}");
    }
    let fine = r#"<html lang="zh-Hans"><script src="/console/assets/a.js" defer></script>
        <svg role="img" aria-label="risk"></svg><svg aria-hidden="true"></svg>
        <table><thead><tr><th>a</th></tr></thead></table>
        <form method="post"><input type="hidden" name="csrf" value="t"></form>
        <form method="get" action="/console/"></form>"#;
    assert!(markup_problems("/p", fine).is_empty());
    let (hrefs, forms) = links(
        r#"<a href="/console/?status=all&amp;page=2#top">x</a><a href="https://x">y</a>
        <form method="get" action="/console/my-day">"#,
    );
    assert_eq!(hrefs, vec!["/console/?status=all&page=2"]);
    assert_eq!(forms, vec![(false, "/console/my-day".to_owned())]);
}
