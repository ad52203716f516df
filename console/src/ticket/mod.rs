//! The ticket page, `/console/tickets/{id}`: what a planner decides on and an engineer
//! prepares a visit with, and the ticket's actions.
//!
//! * Header, SLA clocks, why it was raised (the diagnosis snapshot's top features
//!   against their normal ranges, the risk and its trend from the ticket's log, lead
//!   time, model version), a chart of the top features' channels over the last
//!   [`view::CHART_DAYS`] days with fault codes and the device's tickets marked, recent
//!   fault codes with catalogue text, likely parts, remote checks, the progress log.
//! * Actions as POST forms to `/console/tickets/{id}/{action}` ([`forms::Action`]),
//!   each through `api::desk` with the person as principal: the same permission table,
//!   lifecycle and own-ticket rule as the JSON API (invariant 17 "a page may do what the
//!   API may"). Success redirects back (303); a refusal re-renders the page with the
//!   message beside the form (400 for the form's own checks, else the service's
//!   status: 403, 409, 422). Every action done or refused with 403 is audited under
//!   the person's name; the desk writes the ticket log.
//! * Engineers open only the tickets assigned to them (`desk::ticket_for_person`).

mod candidates;
mod chart;
mod forms;
pub(crate) mod procedure;
pub(crate) mod reports;
mod texts;
mod view;
pub(crate) mod words;

#[cfg(test)]
mod tests;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use domain::{Ticket, TicketStatus, Timestamp};
use store::hot::{StoreReader, TelemetryRecord};

use crate::csrf::CsrfForm;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{error_page, render_with, Chrome, PageResult};
use crate::session::Viewer;
use crate::sign_in::audit;
use crate::state::ConsoleState;
use crate::{Error, PREFIX};

use forms::{Action, Draft, Fields};
use texts::{Texts, EN, ZH};
use view::{Actions, Loaded, View};

/// A refused action: which form, the message, and whether the service wrote it (its
/// messages are in English).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) action: &'static str,
    pub(crate) message: String,
    pub(crate) service: bool,
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage {
    chrome: Chrome,
    t: &'static Texts,
    v: View,
    a: Actions,
    procedure: procedure::Panel,
    done: Option<&'static str>,
    refusal: Option<Refusal>,
    candidates: Option<candidates::Panel>,
    bar_w: f64,
    meter_w: f64,
    trend_w: f64,
    trend_h: f64,
    panel_w: f64,
    panel_h: f64,
    /// The customer reports panel (templates/ticket/reports.html), when it has any.
    reports: Option<reports::ReportsPanel>,
}

impl TicketPage {
    /// Whether the refusal belongs to the form of `action`.
    fn refused(&self, action: &str) -> Option<&Refusal> {
        self.refusal.as_ref().filter(|r| r.action == action)
    }
}

/// Reads readings of `device_id` with `from <= ts < to`, oldest first: all of them up
/// to [`view::CHART_POINTS`], else the first reading of each of that many equal slices
/// of the window (one indexed seek each), so a year of dense telemetry costs the same
/// as a sparse month. Returns whether it sampled.
fn sample(
    store: &StoreReader,
    device_id: &str,
    from: Timestamp,
    to: Timestamp,
) -> crate::Result<(Vec<TelemetryRecord>, bool)> {
    let n = view::CHART_POINTS;
    let all = store.telemetry(device_id, Some(from), Some(to), n + 1)?;
    if all.len() <= n {
        return Ok((all, false));
    }
    let span = to.millis() - from.millis();
    let mut out = Vec::with_capacity(n);
    for i in 0..n as i64 {
        let a = from.millis() + span * i / n as i64;
        let b = from.millis() + span * (i + 1) / n as i64;
        if b > a {
            out.extend(store.telemetry(device_id, Some(Timestamp(a)), Some(Timestamp(b)), 1)?);
        }
    }
    Ok((out, true))
}

/// Reads everything the page shows of ticket `id` for `who` (blocking).
fn load(state: &ConsoleState, who: &api::Principal, id: i64) -> crate::Result<Loaded> {
    let api = &state.api;
    let ticket: Ticket = api::desk::ticket_for_person(api, who, id)?;
    let allowed = api::desk::allowed_transitions(api, who, &ticket);
    let store = api.store();
    let device_id = ticket.device_id.as_str();
    let device = store.device(device_id)?;
    let risks = api.tickets().device_risk(device_id)?;
    let faults = store.recent_faults(device_id, view::FAULTS_READ)?;
    // Through the `tickets_by_device` index: the general list cannot use it.
    let device_tickets = api
        .tickets()
        .device_tickets(device_id, false, view::DEVICE_TICKETS)?;
    let window = device.as_ref().map(|d| {
        let to = d.last_event_ts;
        (
            Timestamp(to.millis() - view::CHART_DAYS * Timestamp::DAY_MS),
            to,
        )
    });
    let (readings, sampled) = match window {
        // The end is inclusive: the latest reading is the chart's last.
        Some((from, to)) => sample(store, device_id, from, Timestamp(to.millis() + 1))?,
        None => (Vec::new(), false),
    };
    let users = state.users.list()?;
    Ok(Loaded {
        ticket,
        allowed,
        device,
        risks,
        faults,
        device_tickets,
        readings,
        sampled,
        window,
        users,
        risk_log_delta: api.tickets().config().risk_log_delta,
        now: api.tickets().now(),
    })
}

/// The page of ticket `id` with `status`, a done notice, or a refusal and the draft
/// that was refused; an error page if the ticket cannot be shown to the person.
async fn ticket_page(
    state: &ConsoleState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    done: Option<&'static str>,
    refusal: Option<Refusal>,
    draft: Draft,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let loaded = {
        let state = state.clone();
        let who = viewer.principal.clone();
        blocking(move || load(&state, &who, id)).await
    };
    // The desk's refusals are worded for the API, in English; the two a person meets
    // here (an engineer opening another's ticket, a ticket that is gone) are said in
    // their language.
    let loaded = loaded.map_err(|e| {
        let e = match e.status() {
            StatusCode::FORBIDDEN => Error::Forbidden(t.err_not_yours.into()),
            StatusCode::NOT_FOUND => Error::NotFound(t.err_id.into()),
            _ => e,
        };
        error_page(e, lang)
    })?;
    let candidates = {
        let state = state.clone();
        let who = viewer.principal.clone();
        let ticket = loaded.ticket.clone();
        let clock = viewer.clock;
        blocking(move || candidates_panel(&state, &who, &ticket, &clock, lang))
            .await
            .map_err(|e| error_page(e, lang))?
    };
    let profile = state
        .api
        .profiles()
        .get(&loaded.ticket.device_type)
        .cloned();
    let reports = reports::ReportsPanel::new(&loaded.ticket, profile.as_deref(), &viewer.clock);
    let procedure = procedure::build(
        &loaded.ticket,
        &viewer.principal,
        loaded.now,
        &viewer.clock,
        lang,
        &draft,
    );
    let (v, a) = view::build(
        &loaded,
        &viewer.principal,
        &viewer.clock,
        profile.as_deref(),
        t,
        &draft,
    );
    let current = if viewer.principal.restricted_to_assigned() {
        "/my-day"
    } else {
        "/"
    };
    let mut chrome = Chrome::new(
        viewer,
        format!("{} {} · {}", t.ticket, v.number, v.component_title),
        current,
    );
    chrome.here = format!("{PREFIX}/tickets/{id}");
    Ok(render_with(
        status,
        &TicketPage {
            chrome,
            t,
            v,
            a,
            procedure,
            done,
            refusal,
            candidates,
            bar_w: chart::BAR_W,
            meter_w: chart::METER_W,
            trend_w: chart::TREND_W,
            trend_h: chart::TREND_H,
            panel_w: chart::PANEL_W,
            panel_h: chart::PANEL_H,
            reports,
        },
    ))
}

/// The candidates panel of `ticket` for `who` (blocking): only for viewers who may
/// assign, on active tickets, when the server keeps an engineers' directory.
fn candidates_panel(
    state: &ConsoleState,
    who: &api::Principal,
    ticket: &Ticket,
    clock: &crate::clock::Clock,
    lang: domain::Lang,
) -> crate::Result<Option<candidates::Panel>> {
    let api = &state.api;
    let Some(d) = api.dispatcher() else {
        return Ok(None);
    };
    if !who.may(api::http::auth::Permission::AssignTickets) || !ticket.status.is_active() {
        return Ok(None);
    }
    let ranking = api::desk::candidates(api, who, ticket.id)?;
    let regions: Vec<(String, Option<String>)> = d
        .users()
        .engineers()?
        .into_iter()
        .map(|e| (e.login, e.region))
        .collect();
    Ok(Some(candidates::build(
        ticket,
        &ranking,
        &regions,
        d.config().visit.millis(),
        clock,
        lang,
    )))
}

/// A ticket id from the path; anything else is no ticket.
fn ticket_id(s: &str, t: &Texts) -> crate::Result<i64> {
    s.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::NotFound(t.err_id.into()))
}

/// `GET /console/tickets/{id}` (`?done=<action>` after an action; any other or
/// malformed query is ignored).
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let id = ticket_id(&id, t).map_err(|e| error_page(e, lang))?;
    let done = query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(&q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "done"))
        .and_then(|(_, d)| Action::parse(&d))
        .map(|a| a.done(t));
    ticket_page(
        &state,
        &viewer,
        id,
        StatusCode::OK,
        done,
        None,
        Draft::default(),
    )
    .await
}

/// Writes the audit record of an action refused with 403 (the API audits those too).
async fn audit_refusal(state: &ConsoleState, viewer: &Viewer, path: &str, e: &Error) {
    audit(
        state,
        viewer
            .principal
            .audit_record("POST", path, 403, format!("refused: {e}")),
    )
    .await;
}

/// What an action came to.
enum Done {
    /// Done; the audit summary.
    Yes(String),
    /// The form's own check refused it (nothing was changed); the message.
    Invalid(String),
}

/// Shortens text written into an audit summary.
fn short(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// Does `action` on ticket `t` for `who` with the form's `fields` (blocking).
fn apply(
    state: &ConsoleState,
    who: &api::Principal,
    t: &Ticket,
    action: Action,
    fields: &Fields,
    clock: &crate::clock::Clock,
    texts: &Texts,
) -> crate::Result<Done> {
    use api::desk;
    use api::http::auth::Permission;
    let api = &state.api;
    let id = t.id;
    let n = &t.number;
    // Who may do it at all, before reading the form: a role that may not gets 403
    // whatever it typed (the desk checks again when it acts).
    let permission = match action {
        Action::Schedule => Permission::AssignTickets,
        Action::Resolve | Action::Outcome => Permission::RecordOutcome,
        Action::Satisfaction | Action::Callback => Permission::RecordSatisfaction,
        _ => Permission::TransitionTickets,
    };
    desk::require(who, permission)?;
    let to = match action {
        Action::Acknowledge => Some(TicketStatus::Acknowledged),
        Action::Start => Some(TicketStatus::InProgress),
        Action::Resolve => Some(TicketStatus::Resolved),
        Action::Dismiss => Some(TicketStatus::Dismissed),
        Action::Close => Some(TicketStatus::Closed),
        _ => None,
    };
    if !matches!(
        action,
        Action::Schedule | Action::Satisfaction | Action::Callback
    ) {
        desk::check_may_act(who, t, to)?;
    }
    let note = fields.get("note").trim();
    let moved = |to: TicketStatus, note: &str| -> crate::Result<()> {
        desk::transition(api, who, id, to, note, None)?;
        Ok(())
    };
    let summary = match action {
        Action::Acknowledge => {
            moved(TicketStatus::Acknowledged, note)?;
            format!("ticket {n}: {} -> acknowledged", t.status)
        }
        Action::Start => {
            moved(TicketStatus::InProgress, note)?;
            format!("ticket {n}: {} -> in_progress", t.status)
        }
        Action::Close => {
            moved(TicketStatus::Closed, note)?;
            format!("ticket {n}: {} -> closed", t.status)
        }
        Action::Dismiss => {
            if note.is_empty() {
                return Ok(Done::Invalid(texts.err_reason.into()));
            }
            moved(TicketStatus::Dismissed, note)?;
            format!("ticket {n}: dismissed ({})", short(note))
        }
        Action::Reopen => {
            let to = match forms::reopen_to(fields, texts) {
                Ok(to) => to,
                Err(m) => return Ok(Done::Invalid(m)),
            };
            moved(to, note)?;
            format!("ticket {n}: {} -> {to} (reopened)", t.status)
        }
        Action::Note => {
            if note.is_empty() {
                return Ok(Done::Invalid(texts.err_note_empty.into()));
            }
            desk::add_note(api, who, id, note)?;
            format!("ticket {n}: note added")
        }
        Action::Satisfaction => {
            let Some(score) = fields
                .get("score")
                .parse::<u8>()
                .ok()
                .filter(|s| (1..=5).contains(s))
            else {
                return Ok(Done::Invalid(texts.err_score.into()));
            };
            let input = api::tickets::SatisfactionInput {
                score,
                comment: fields.get("comment").trim().to_owned(),
                channel: None,
            };
            let after = desk::record_satisfaction(api, who, id, input)?;
            let opened = t.callback.is_none() && after.callback.is_some();
            format!(
                "ticket {n}: satisfaction {score}/5{}",
                if opened { "; call-back opened" } else { "" }
            )
        }
        Action::Callback => {
            if note.is_empty() {
                return Ok(Done::Invalid(texts.err_note_empty.into()));
            }
            desk::complete_callback(api, who, id, note)?;
            format!("ticket {n}: call-back done ({})", short(note))
        }
        Action::Schedule => {
            // Who may be chosen: enabled engineer accounts.
            let engineers: Vec<String> = state
                .users
                .list()?
                .into_iter()
                .filter(|u| u.role == domain::Role::Engineer && u.disabled_at.is_none())
                .map(|u| u.login)
                .collect();
            let s = match forms::schedule(fields, &engineers, clock.tz, texts) {
                Ok(s) => s,
                Err(m) => return Ok(Done::Invalid(m)),
            };
            let input = api::AssignmentInput {
                engineer: Some(s.engineer.clone()),
                window_start: s.window.map(|w| w.0),
                window_end: s.window.map(|w| w.1),
                region: s.region.clone(),
            };
            let override_capacity = fields.get("override_capacity") == "on";
            let (after, overridden) = desk::assign_checked(api, who, id, input, override_capacity)?;
            // A ticket not yet scheduled becomes scheduled; one in progress stays so.
            let scheduled = matches!(
                after.status,
                TicketStatus::Open | TicketStatus::Acknowledged
            ) && desk::allowed_transitions(api, who, &after)
                .contains(&TicketStatus::Scheduled);
            if scheduled {
                moved(TicketStatus::Scheduled, "")?;
            }
            let window = s
                .window
                .map_or_else(|| "none".to_owned(), |(a, b)| format!("{a} to {b}"));
            format!(
                "ticket {n}: assigned to {}, window {window}, region {}{}{}",
                s.engineer,
                s.region.as_deref().unwrap_or("none"),
                if scheduled { "; -> scheduled" } else { "" },
                overridden.map(|o| format!("; {o}")).unwrap_or_default()
            )
        }
        Action::Resolve | Action::Outcome => {
            let profile = api.profiles().get(&t.device_type).cloned();
            let input = match forms::outcome(fields, profile.as_deref(), clock.tz, texts) {
                Ok(i) => i,
                Err(m) => return Ok(Done::Invalid(m)),
            };
            let kind = input.kind.map_or("", |k| k.as_str());
            if action == Action::Resolve {
                desk::transition(api, who, id, TicketStatus::Resolved, "", Some(input))?;
                format!("ticket {n}: {} -> resolved, outcome {kind}", t.status)
            } else {
                desk::record_outcome(api, who, id, input)?;
                format!("ticket {n}: outcome {kind} recorded")
            }
        }
    };
    Ok(Done::Yes(summary))
}

/// `POST /console/tickets/{id}/{action}`: one of the ticket's actions
/// ([`forms::Action`]); 303 back to the ticket when done.
pub(crate) async fn act(
    State(state): State<ConsoleState>,
    Path((id, action)): Path<(String, String)>,
    CsrfForm { viewer, form }: CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let id = ticket_id(&id, t).map_err(|e| error_page(e, lang))?;
    let action = Action::parse(&action)
        .ok_or_else(|| error_page(Error::NotFound(t.err_action.into()), lang))?;
    let path = format!("{PREFIX}/tickets/{id}/{}", action.as_str());
    let fields = Fields(form);
    let done = {
        let state = state.clone();
        let who = viewer.principal.clone();
        let fields = fields.clone();
        let clock = viewer.clock;
        blocking(move || {
            let ticket = api::desk::ticket_for_person(&state.api, &who, id)?;
            apply(&state, &who, &ticket, action, &fields, &clock, t)
        })
        .await
    };
    let draft = Draft::of(action, &fields);
    match done {
        Ok(Done::Yes(summary)) => {
            audit(
                &state,
                viewer.principal.audit_record("POST", &path, 303, summary),
            )
            .await;
            Ok(
                Redirect::to(&format!("{PREFIX}/tickets/{id}?done={}", action.as_str()))
                    .into_response(),
            )
        }
        Ok(Done::Invalid(message)) => {
            let refusal = Refusal {
                action: action.as_str(),
                message,
                service: false,
            };
            ticket_page(
                &state,
                &viewer,
                id,
                StatusCode::BAD_REQUEST,
                None,
                Some(refusal),
                draft,
            )
            .await
        }
        Err(e) => {
            let status = e.status();
            if status == StatusCode::FORBIDDEN {
                audit_refusal(&state, &viewer, &path, &e).await;
            }
            if status == StatusCode::NOT_FOUND || status.is_server_error() {
                return Err(error_page(e, lang));
            }
            let refusal = Refusal {
                action: action.as_str(),
                message: e.to_string(),
                service: matches!(e, Error::Api(_) | Error::Store(_)),
            };
            ticket_page(&state, &viewer, id, status, None, Some(refusal), draft).await
        }
    }
}
