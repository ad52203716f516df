//! Alerts (`/console/alerts`): what a supervisor or planner must act on now (docs/console.md,
//! "Alerts"): procedure steps past their limit and not yet done, whom their alert went
//! to, and the call-backs of dissatisfied customers not yet made, each linking to its
//! ticket. Rows whose alert went to the viewer, or whose ticket or call-back the viewer
//! owns, come first and are marked. Engineers see the rows of the tickets assigned to
//! them only (the own-ticket rule of `api::desk`).

use askama::Template;
use axum::extract::State;
use domain::{Ticket, Timestamp};

use crate::clock::Clock;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::ticket::procedure::{self, step_title};
use crate::PREFIX;

/// The most tickets read.
const MAX_TICKETS: usize = 500;

pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    steps: &'static str,
    no_steps: &'static str,
    callbacks: &'static str,
    no_callbacks: &'static str,
    ticket: &'static str,
    device: &'static str,
    step: &'static str,
    limit: &'static str,
    state: &'static str,
    owner: &'static str,
    alerted: &'static str,
    mine: &'static str,
    nobody: &'static str,
    /// `{}`: a number.
    truncated: &'static str,
}

const EN: Texts = Texts {
    title: "Alerts",
    intro: "Procedure steps past their limit and call-backs not yet made. Yours first: the alert went to you, or you own the ticket or the call-back.",
    steps: "Overdue steps",
    no_steps: "No step is past its limit.",
    callbacks: "Call-backs to make",
    no_callbacks: "No call-back is waiting.",
    ticket: "Ticket",
    device: "Device",
    step: "Step",
    limit: "Limit",
    state: "State",
    owner: "Owner",
    alerted: "Alert sent to",
    mine: "yours",
    nobody: "nobody",
    truncated: "Showing the {} most recently changed tickets.",
};

const ZH: Texts = Texts {
    title: "提醒",
    intro: "超过时限的流程步骤和尚未完成的回电。与您相关的排在前面：提醒发给了您，或您是工单或回电的负责人。",
    steps: "超时步骤",
    no_steps: "没有超过时限的步骤。",
    callbacks: "待回电",
    no_callbacks: "没有等待中的回电。",
    ticket: "工单",
    device: "设备",
    step: "步骤",
    limit: "时限",
    state: "状态",
    owner: "负责人",
    alerted: "已提醒",
    mine: "我的",
    nobody: "无",
    truncated: "仅显示最近变更的 {} 张工单。",
};

/// One overdue step.
struct StepRow {
    href: String,
    number: String,
    device: String,
    step: String,
    limit: String,
    state: String,
    owner: String,
    alerted: String,
    mine: bool,
}

/// One call-back to make.
struct CallbackRow {
    href: String,
    number: String,
    device: String,
    limit: String,
    state: String,
    class: &'static str,
    owner: String,
    mine: bool,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    t: &'static Texts,
    steps: Vec<StepRow>,
    callbacks: Vec<CallbackRow>,
    truncated: Option<String>,
}

/// The rows of `tickets` for `me` at `now`, yours first.
fn rows(
    tickets: &[Ticket],
    me: &str,
    now: Timestamp,
    clock: &Clock,
    t: &Texts,
) -> (Vec<StepRow>, Vec<CallbackRow>) {
    let w = pick(clock.lang, &procedure::EN, &procedure::ZH);
    let mut steps = Vec::new();
    let mut callbacks = Vec::new();
    for tk in tickets {
        let href = format!("{PREFIX}/tickets/{}", tk.id);
        let owner = tk
            .assignment
            .engineer
            .clone()
            .or_else(|| tk.planner.clone());
        for s in tk
            .steps
            .iter()
            .filter(|s| s.overdue_at.is_some() && s.done_at.is_none())
        {
            let alerted = s.alerted.clone().unwrap_or_default();
            steps.push(StepRow {
                href: format!("{href}#steps"),
                number: tk.number.clone(),
                device: tk.device_id.to_string(),
                step: step_title(w, &s.step),
                limit: clock.at(s.due),
                state: procedure::step_state(s, tk.opened_at, now, clock, w).0,
                mine: alerted == me || owner.as_deref() == Some(me),
                owner: owner.clone().unwrap_or_else(|| t.nobody.to_owned()),
                alerted,
            });
        }
        if let Some(c) = tk.callback.as_ref().filter(|c| c.done_at.is_none()) {
            let left = c.due.millis() - now.millis();
            let (state, class) = if left < 0 {
                (w.overdue.replacen("{}", &clock.span(left), 1), "bad")
            } else {
                (w.left.replacen("{}", &clock.span(left), 1), "warn")
            };
            callbacks.push(CallbackRow {
                href: format!("{href}#callback"),
                number: tk.number.clone(),
                device: tk.device_id.to_string(),
                limit: clock.at(c.due),
                state,
                class,
                mine: c.owner.as_deref() == Some(me),
                owner: c.owner.clone().unwrap_or_else(|| t.nobody.to_owned()),
            });
        }
    }
    // Yours first; then the longest overdue (the earliest limit) first.
    steps.sort_by(|a, b| b.mine.cmp(&a.mine).then(a.limit.cmp(&b.limit)));
    callbacks.sort_by(|a, b| b.mine.cmp(&a.mine).then(a.limit.cmp(&b.limit)));
    (steps, callbacks)
}

/// `GET /console/alerts`.
pub(crate) async fn page(State(state): State<ConsoleState>, viewer: Viewer) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    viewer
        .require(api::http::auth::Permission::ReadTickets)
        .map_err(fail(lang))?;
    let tickets = state.api.tickets().clone();
    let (mut list, now) =
        blocking(move || Ok((tickets.alert_tickets(MAX_TICKETS + 1)?, tickets.now())))
            .await
            .map_err(fail(lang))?;
    let truncated =
        (list.len() > MAX_TICKETS).then(|| t.truncated.replace("{}", &MAX_TICKETS.to_string()));
    list.truncate(MAX_TICKETS);
    let who = &viewer.principal;
    if who.restricted_to_assigned() {
        list.retain(|tk| api::desk::assigned_to(who, tk));
    }
    let (steps, callbacks) = rows(&list, &who.name, now, &viewer.clock, t);
    let chrome = Chrome::new(&viewer, t.title, "/alerts");
    Ok(render(&AlertsPage {
        chrome,
        t,
        steps,
        callbacks,
        truncated,
    }))
}

#[cfg(test)]
mod tests;
