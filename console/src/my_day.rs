//! An engineer's day (`/console/my-day`): the active tickets assigned to them, in the
//! order of their visit windows (unscheduled last), grouped by day in the engineer's
//! time zone, each a card that opens the ticket (docs/console.md, "Engineer's day").
//!
//! Designed for a phone first: one column of cards, the whole card a link to the
//! ticket. Planners and admins have no tickets of their own; they see an (usually
//! empty) day of their own with a choice of engineers, and `?engineer=login` shows
//! that engineer's day in the engineer's time zone. An engineer may look at their own
//! day only.

use askama::Template;
use axum::extract::{RawQuery, State};
use chrono::Datelike as _;
use domain::{Lang, Role, Timestamp};
use store::tickets::QueueTicket;

use crate::clock::Clock;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render, Chrome, PageResult};
use crate::queue::{self, SlaMark};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::{Error, PREFIX};

/// The most tickets a day shows.
const MAX_TICKETS: usize = 200;

pub(crate) struct Texts {
    title: &'static str,
    /// `{}`: the engineer.
    their_title: &'static str,
    /// `{}`: the time zone.
    intro: &'static str,
    today: &'static str,
    tomorrow: &'static str,
    yesterday: &'static str,
    unscheduled: &'static str,
    none_mine: &'static str,
    /// `{}`: the engineer.
    none_theirs: &'static str,
    planner_hint: &'static str,
    pick_engineer: &'static str,
    show: &'static str,
    window: &'static str,
    device: &'static str,
    region: &'static str,
    /// `{}`: a number.
    truncated: &'static str,
    weekdays: [&'static str; 7],
}

const EN: Texts = Texts {
    title: "My day",
    their_title: "{}'s day",
    intro: "Active tickets in the order of their visit windows. Times in {}.",
    today: "Today",
    tomorrow: "Tomorrow",
    yesterday: "Yesterday",
    unscheduled: "Not scheduled yet",
    none_mine:
        "No active tickets are assigned to you. They appear here when a planner assigns them.",
    none_theirs: "No active tickets are assigned to {}.",
    planner_hint:
        "Planners and admins have no tickets of their own. Choose an engineer to see their day.",
    pick_engineer: "Engineer",
    show: "Show",
    window: "Window",
    device: "Device",
    region: "Region",
    truncated: "Showing the first {} tickets.",
    weekdays: [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ],
};

const ZH: Texts = Texts {
    title: "我的日程",
    their_title: "{}的日程",
    intro: "未结工单，按上门时间窗排序。时间按 {} 显示。",
    today: "今天",
    tomorrow: "明天",
    yesterday: "昨天",
    unscheduled: "尚未安排上门时间",
    none_mine: "目前没有派给您的未结工单。服务计划员派工后会显示在这里。",
    none_theirs: "目前没有派给{}的未结工单。",
    planner_hint: "服务计划员和管理员没有派给自己的工单。请选择一位工程师查看其日程。",
    pick_engineer: "工程师",
    show: "查看",
    window: "上门时间窗",
    device: "设备",
    region: "区域",
    truncated: "仅显示前 {} 张工单。",
    weekdays: [
        "星期一",
        "星期二",
        "星期三",
        "星期四",
        "星期五",
        "星期六",
        "星期日",
    ],
};

/// One ticket's card.
#[derive(Debug)]
struct Card {
    number: String,
    ticket_href: String,
    device_id: String,
    device_href: String,
    model: Option<String>,
    component: String,
    priority: &'static str,
    priority_class: &'static str,
    status: &'static str,
    status_class: &'static str,
    window: Option<String>,
    region: Option<String>,
    batch: Option<String>,
    due_label: &'static str,
    left: String,
    mark_class: &'static str,
    near: bool,
    breached: bool,
}

/// The cards of one day (or of the unscheduled).
#[derive(Debug)]
struct Day {
    label: String,
    date: Option<String>,
    cards: Vec<Card>,
}

/// An engineer to choose.
#[derive(Debug)]
struct Option_ {
    login: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "my_day.html")]
struct DayPage {
    chrome: Chrome,
    t: &'static Texts,
    q: &'static queue::Texts,
    heading: String,
    intro: String,
    days: Vec<Day>,
    empty: Option<String>,
    planner_hint: bool,
    engineers: Vec<Option_>,
    truncated: Option<String>,
}

/// Whose day a request asks for: `?engineer=login`, or the viewer's own.
fn requested_engineer(raw: Option<&str>, q: &queue::Texts) -> Result<Option<String>, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| Error::BadRequest(queue::unreadable(q)))?;
    let mut engineer = None;
    for (k, v) in pairs {
        if k != "engineer" {
            return Err(Error::BadRequest(queue::unknown_param(q, &k, "engineer")));
        }
        if engineer.is_some() {
            return Err(Error::BadRequest(queue::repeated_param(q, "engineer")));
        }
        let v = v.trim().to_owned();
        if v.chars().count() > 100 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(queue::bad_engineer(q, &v));
        }
        engineer = Some(v).filter(|v| !v.is_empty());
    }
    Ok(engineer)
}

/// `GET /console/my-day`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let q = queue::texts(lang);
    viewer
        .require(api::http::auth::Permission::ReadTickets)
        .map_err(fail(lang))?;
    let me = viewer.principal.name.clone();
    let restricted = viewer.principal.restricted_to_assigned();
    let asked = requested_engineer(raw.as_deref(), q).map_err(fail(lang))?;
    if restricted && asked.as_deref().is_some_and(|e| e != me) {
        return Err(fail(lang)(Error::Forbidden(queue::not_your_tickets(q))));
    }
    let whose = asked.clone().unwrap_or_else(|| me.clone());
    let (tickets, users) = (state.api.tickets().clone(), state.users.clone());
    let who = whose.clone();
    let (list, accounts, now) = blocking(move || {
        let list = tickets.assigned_tickets(&who, MAX_TICKETS + 1)?;
        let accounts = if restricted {
            Vec::new()
        } else {
            users.list()?
        };
        Ok((list, accounts, tickets.now()))
    })
    .await
    .map_err(fail(lang))?;
    // Times in the engineer's zone: theirs when someone else looks.
    let clock = if whose == me {
        viewer.clock
    } else {
        accounts
            .iter()
            .find(|u| u.login == whose)
            .map_or(viewer.clock, |u| Clock::new(&u.time_zone, lang))
    };
    let truncated =
        (list.len() > MAX_TICKETS).then(|| t.truncated.replace("{}", &MAX_TICKETS.to_string()));
    let profiles = std::sync::Arc::clone(state.api.profiles());
    let days = group(
        &list[..list.len().min(MAX_TICKETS)],
        &clock,
        t,
        q,
        now,
        &profiles,
    );
    let own = whose == me;
    let shown_name = accounts
        .iter()
        .find(|u| u.login == whose)
        .map(|u| u.display_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| whose.clone());
    // A planner's own day is empty by design: the hint above the engineer choice says
    // so, and 'a planner assigns them' would be said to the planner.
    let planner_hint = !restricted && own;
    let empty = (days.is_empty() && !planner_hint).then(|| {
        if own {
            t.none_mine.to_owned()
        } else {
            t.none_theirs.replace("{}", &shown_name)
        }
    });
    let engineers: Vec<Option_> = accounts
        .iter()
        .filter(|u| u.role == Role::Engineer && u.disabled_at.is_none())
        .map(|u| Option_ {
            login: u.login.clone(),
            label: if u.display_name.is_empty() || u.display_name == u.login {
                u.login.clone()
            } else {
                format!("{} ({})", u.display_name, u.login)
            },
            selected: u.login == whose,
        })
        .collect();
    let heading = if own {
        t.title.to_owned()
    } else {
        t.their_title.replace("{}", &shown_name)
    };
    let mut chrome = Chrome::new(&viewer, heading.clone(), "/my-day");
    if let Some(e) = asked.as_deref().filter(|_| !own) {
        if let Ok(query) = serde_urlencoded::to_string([("engineer", e)]) {
            chrome.here = format!("{PREFIX}/my-day?{query}");
        }
    }
    Ok(render(&DayPage {
        chrome,
        t,
        q,
        intro: t.intro.replace("{}", clock.tz.name()),
        heading,
        days,
        empty,
        planner_hint,
        engineers,
        truncated,
    }))
}

/// The cards by day of their window start (in `clock`'s zone), in the list's order;
/// the unscheduled last.
fn group(
    list: &[QueueTicket],
    clock: &Clock,
    t: &Texts,
    q: &'static queue::Texts,
    now: Timestamp,
    profiles: &domain::ProfileSet,
) -> Vec<Day> {
    let mut days: Vec<Day> = Vec::new();
    for ticket in list {
        let date = ticket.window_start.map(|s| clock.date(s));
        let card = card(ticket, clock, q, now, profiles);
        match days.last_mut() {
            Some(day) if day.date == date => day.cards.push(card),
            _ => days.push(Day {
                label: match (&date, ticket.window_start) {
                    (Some(_), Some(start)) => day_label(clock, start, now, t),
                    _ => t.unscheduled.to_owned(),
                },
                date,
                cards: vec![card],
            }),
        }
    }
    days
}

/// "Today", "Tomorrow", "Yesterday" or "Monday, 2026-12-07" (`2026-12-07 星期一`).
fn day_label(clock: &Clock, start: Timestamp, now: Timestamp, t: &Texts) -> String {
    let local = |ts: Timestamp| {
        chrono::DateTime::from_timestamp_millis(ts.millis())
            .map(|d| d.with_timezone(&clock.tz).date_naive())
    };
    let (Some(day), Some(today)) = (local(start), local(now)) else {
        return clock.date(start);
    };
    match (day - today).num_days() {
        0 => t.today.to_owned(),
        1 => t.tomorrow.to_owned(),
        -1 => t.yesterday.to_owned(),
        _ => {
            let weekday = t.weekdays[day.weekday().num_days_from_monday() as usize];
            let date = day.format("%Y-%m-%d");
            match clock.lang {
                Lang::En => format!("{weekday}, {date}"),
                Lang::Zh => format!("{date} {weekday}"),
            }
        }
    }
}

/// A window under its day's heading: `09:00–11:00`, or in full when it ends on
/// another day.
fn window_in_day(clock: &Clock, start: Timestamp, end: Timestamp) -> String {
    let full = queue::window_text(clock, start, end);
    match full.split_once(' ') {
        Some((day, times)) if clock.date(start) == day && !times.contains(' ') => times.to_owned(),
        _ => full,
    }
}

fn card(
    ticket: &QueueTicket,
    clock: &Clock,
    q: &'static queue::Texts,
    now: Timestamp,
    profiles: &domain::ProfileSet,
) -> Card {
    let lang = clock.lang;
    let (mark, left) = queue::sla_mark(ticket, now);
    Card {
        number: ticket.number.clone(),
        ticket_href: format!("{PREFIX}/tickets/{}", ticket.id),
        device_id: ticket.device_id.clone(),
        device_href: format!("{PREFIX}/devices/{}", ticket.device_id),
        model: ticket.device_model.clone(),
        component: queue::component_title(profiles, &ticket.device_type, &ticket.component, lang),
        priority: crate::i18n::common(lang).priority(ticket.priority),
        priority_class: ticket.priority.as_str(),
        status: crate::i18n::common(lang).status(ticket.status),
        status_class: crate::i18n::status_class(ticket.status),
        window: match (ticket.window_start, ticket.window_end) {
            (Some(s), Some(e)) => Some(window_in_day(clock, s, e)),
            _ => None,
        },
        region: ticket.shown_region().map(str::to_owned),
        batch: ticket.device_batch.clone(),
        due_label: queue::clock_label(q, ticket.status),
        left: queue::left_text(q, clock, left),
        mark_class: mark.class(),
        near: mark == SlaMark::Near,
        breached: mark == SlaMark::Breached,
    }
}

#[cfg(test)]
mod tests;
