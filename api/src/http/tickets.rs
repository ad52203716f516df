//! Ticket endpoints: listing, lifecycle transitions, assignment, outcome, and the
//! server-sent event stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use axum::Json;
use domain::{DeviceId, OutcomeKind, Priority, Ticket, TicketSource, TicketStatus, Timestamp};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::auth::Principal;
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{blocking, next_cursor, page_limit, AppState};
use crate::desk;
use crate::tickets::{AssignmentInput, EventRecord, OutcomeInput, TicketQuery, TicketService};
use crate::{Error, Result};

/// Query of `GET /api/v1/tickets`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// A status, `active` (open, acknowledged, scheduled, in_progress), or a
    /// comma-separated list of them.
    status: Option<String>,
    /// Only this device's tickets.
    device_id: Option<String>,
    /// Only tickets for this component.
    component: Option<String>,
    /// `urgent`, `important` or `normal`.
    #[param(value_type = Option<String>)]
    priority: Option<Priority>,
    /// `proactive` (a model flag) or `reactive` (a critical fault code).
    #[param(value_type = Option<String>)]
    source: Option<TicketSource>,
    /// Only tickets opened at or after this time (RFC 3339 or epoch milliseconds).
    opened_after: Option<String>,
    /// Page size, default 100, at most 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Cursor: the `next` of the previous page.
    after: Option<i64>,
}

/// Parses `status`: a status, `active`, or a comma-separated list of them.
fn parse_statuses(s: &str) -> Result<Vec<TicketStatus>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part == "active" {
            out.extend(TicketQuery::active_statuses());
        } else {
            out.push(
                part.parse::<TicketStatus>()
                    .map_err(|e| Error::BadRequest(format!("{e}, active")))?,
            );
        }
    }
    out.dedup();
    Ok(out)
}

/// `GET /api/v1/tickets`: tickets, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    tag = "tickets",
    params(ListParams),
    responses(
        (status = 200, description = "A page of tickets, newest first (docs/api.md)", body = TicketPage),
        (status = 400, description = "Malformed or unknown parameter", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<TicketPage>> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let query = TicketQuery {
        statuses: q
            .status
            .as_deref()
            .map(parse_statuses)
            .transpose()?
            .unwrap_or_default(),
        device_id: q
            .device_id
            .as_deref()
            .map(DeviceId::parse)
            .transpose()
            .map_err(|e| Error::BadRequest(e.to_string()))?,
        component: q.component,
        priority: q.priority,
        limit: limit + 1,
        after_id: q.after,
        source: q.source,
        opened_after: q
            .opened_after
            .as_deref()
            .map(Timestamp::parse)
            .transpose()
            .map_err(|e| Error::BadRequest(format!("parameter opened_after: {e}")))?,
    };
    let mut tickets = blocking(move || state.tickets.list(&query)).await?;
    let next = next_cursor(&mut tickets, limit, |t| t.id);
    Ok(Json(TicketPage { tickets, next }))
}

pub(super) fn ticket_id(id: &str) -> Result<i64> {
    super::path_id("ticket id", id)
}

/// A ticket with the statuses it may move to now.
pub(super) fn with_allowed(tickets: &TicketService, ticket: Ticket) -> Result<TicketView> {
    let allowed_transitions = tickets.allowed_transitions(&ticket);
    Ok(TicketView {
        ticket,
        allowed_transitions,
    })
}

/// A ticket with the statuses it may move to now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TicketView {
    #[serde(flatten)]
    ticket: Ticket,
    /// The statuses a `POST .../transitions` may move it to now (for the caller's
    /// role: the lifecycle table and the reopen window; docs/api.md).
    allowed_transitions: Vec<TicketStatus>,
}

/// A page of `GET /api/v1/tickets`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TicketPage {
    /// Tickets, newest first.
    tickets: Vec<Ticket>,
    /// The cursor (`after`) of the next page, or `null` on the last page.
    next: Option<i64>,
}

/// `GET /api/v1/tickets/{id}`: one ticket with its diagnosis, log and the statuses it
/// may move to now (`allowed_transitions`).
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket (docs/api.md)", body = TicketView),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TicketView>> {
    let id = ticket_id(&id)?;
    let tickets = state.tickets.clone();
    blocking(move || {
        let t = tickets
            .get(id)?
            .ok_or_else(|| Error::NotFound(format!("ticket {id} not found")))?;
        with_allowed(&tickets, t)
    })
    .await
    .map(Json)
}

/// An outcome in a request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutcomeBody {
    /// `confirmed_failure`, `no_fault_found`, `customer_declined` or `not_reached`.
    #[schema(value_type = String, example = "confirmed_failure")]
    kind: OutcomeKind,
    /// The component that failed (`confirmed_failure`; a component of the device type).
    component: Option<String>,
    /// Parts replaced.
    parts_replaced: Option<Vec<String>>,
    /// When the component failed (RFC 3339); not in the future.
    #[schema(value_type = Option<String>, example = "2026-11-24T06:00:00Z")]
    failed_at: Option<Timestamp>,
    /// Free text.
    note: Option<String>,
}

impl From<OutcomeBody> for OutcomeInput {
    fn from(b: OutcomeBody) -> Self {
        OutcomeInput {
            kind: Some(b.kind),
            component: b.component,
            parts_replaced: b.parts_replaced.unwrap_or_default(),
            failed_at: b.failed_at,
            note: b.note.unwrap_or_default(),
        }
    }
}

/// Body of `POST /api/v1/tickets/{id}/transitions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitionBody {
    /// The status to move to (docs/api.md, "Lifecycle").
    #[schema(value_type = String, example = "acknowledged")]
    to: TicketStatus,
    /// Written to the ticket's log.
    note: Option<String>,
    /// The outcome, with `resolved` or `closed`.
    outcome: Option<OutcomeBody>,
}

/// `POST /api/v1/tickets/{id}/transitions`: moves a ticket along its lifecycle.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/transitions",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    request_body = TransitionBody,
    responses(
        (status = 200, description = "The ticket after the transition", body = TicketView),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "Not allowed from the current status; `error.allowed` lists the statuses that are", body = ErrorBody),
        (status = 422, description = "A field does not fit; `error.field` names it", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn transition(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TransitionBody>,
) -> Result<Json<TicketView>> {
    let id = ticket_id(&id)?;
    blocking(move || {
        let outcome = body.outcome.map(OutcomeInput::from);
        let note = body.note.unwrap_or_default();
        let t = desk::transition(&state, &who, id, body.to, &note, outcome)?;
        with_allowed(&state.tickets, t)
    })
    .await
    .map(Json)
}

/// Body of `POST /api/v1/tickets/{id}/assignment` (replaces the whole assignment;
/// the skills needed come from the component and cannot be set).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignmentBody {
    /// The engineer (an engineer's key name, for their own access to the ticket).
    engineer: Option<String>,
    /// Start of the scheduled visit window (RFC 3339).
    #[schema(value_type = Option<String>)]
    window_start: Option<Timestamp>,
    /// End of the window; after its start.
    #[schema(value_type = Option<String>)]
    window_end: Option<Timestamp>,
    /// Service region.
    region: Option<String>,
    /// Assign even when the engineer's daily capacity is full on the visit's day
    /// (planners and admins; logged and audited as an override; docs/dispatch.md).
    #[serde(default)]
    override_capacity: bool,
}

/// `POST /api/v1/tickets/{id}/assignment`: engineer, visit window, region.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/assignment",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    request_body = AssignmentBody,
    responses(
        (status = 200, description = "The ticket after the assignment", body = TicketView),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "The ticket is no longer active, or the engineer's daily capacity is full on the visit's day (the message names the load; send `override_capacity`)", body = ErrorBody),
        (status = 422, description = "A field does not fit; `error.field` names it", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn assign(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse;
    let id = ticket_id(&id)?;
    let (view, overridden) = blocking(move || {
        let input = AssignmentInput {
            engineer: body.engineer,
            window_start: body.window_start,
            window_end: body.window_end,
            region: body.region,
        };
        let (t, overridden) =
            desk::assign_checked(&state, &who, id, input, body.override_capacity)?;
        Ok((with_allowed(&state.tickets, t)?, overridden))
    })
    .await?;
    let mut response = Json(view).into_response();
    if let Some(o) = overridden {
        response
            .extensions_mut()
            .insert(super::auth::AuditNote(format!("assigned ticket {id}; {o}")));
    }
    Ok(response)
}

/// `POST /api/v1/tickets/{id}/outcome`: what the visit found (the feedback loop's
/// label).
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/outcome",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    request_body = OutcomeBody,
    responses(
        (status = 200, description = "The ticket with its outcome", body = TicketView),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "The ticket's status does not take an outcome", body = ErrorBody),
        (status = 422, description = "A field does not fit; `error.field` names it", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn outcome(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<OutcomeBody>,
) -> Result<Json<TicketView>> {
    let id = ticket_id(&id)?;
    blocking(move || {
        let t = desk::record_outcome(&state, &who, id, OutcomeInput::from(body))?;
        with_allowed(&state.tickets, t)
    })
    .await
    .map(Json)
}

/// Body of `POST /api/v1/tickets/{id}/notes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteBody {
    /// The note (up to the ticket text limit; not blank).
    note: String,
}

/// `POST /api/v1/tickets/{id}/notes`: adds a note to the ticket's log (action `note`),
/// in any status. Engineers: on tickets assigned to them.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/notes",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    request_body = NoteBody,
    responses(
        (status = 200, description = "The ticket with the note in its log", body = TicketView),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 403, description = "An engineer's note on a ticket not assigned to them", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 422, description = "The note is blank or too long", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn note(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<Json<TicketView>> {
    let id = ticket_id(&id)?;
    blocking(move || {
        let t = desk::add_note(&state, &who, id, &body.note)?;
        with_allowed(&state.tickets, t)
    })
    .await
    .map(Json)
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventParams {
    /// Replay events after this id (the `Last-Event-ID` header wins if both are given).
    after: Option<i64>,
}

/// Events read from the table per query.
const EVENT_PAGE: usize = 256;

struct EventCursor {
    tickets: TicketService,
    wake: watch::Receiver<i64>,
    closed: watch::Receiver<bool>,
    after: i64,
    buffer: VecDeque<EventRecord>,
}

fn sse_event(e: &EventRecord) -> Event {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".to_owned());
    Event::default()
        .id(e.id.to_string())
        .event(e.kind.clone())
        .data(data)
}

/// The next event after the cursor: from the buffer, else from the table, else the
/// next commit's wake-up. The table is the source of truth, so a wake-up that covers
/// several commits (or arrives late) misses nothing.
async fn next_event(
    mut c: EventCursor,
) -> Option<(std::result::Result<Event, Infallible>, EventCursor)> {
    loop {
        if let Some(e) = c.buffer.pop_front() {
            c.after = e.id;
            let event = sse_event(&e);
            return Some((Ok(event), c));
        }
        if *c.closed.borrow() {
            return None;
        }
        // Mark the current commit as seen before reading, so a commit after the read
        // wakes the wait below.
        c.wake.borrow_and_update();
        let tickets = c.tickets.clone();
        let after = c.after;
        match blocking(move || tickets.events_after(after, EVENT_PAGE)).await {
            Ok(events) if !events.is_empty() => c.buffer.extend(events),
            Ok(_) => {
                tokio::select! {
                    changed = c.wake.changed() => if changed.is_err() { return None },
                    _ = c.closed.changed() => return None,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Reading events failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = c.closed.changed() => return None,
                }
            }
        }
    }
}

/// `GET /api/v1/events`: server-sent events (`ticket.opened`, `ticket.updated`,
/// `ticket.sla_breached`, `prediction.flagged`), resumable with `Last-Event-ID`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(
        EventParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `id`, `event` and a JSON `data` per event (docs/api.md)", content_type = "text/event-stream", body = String),
        (status = 400, description = "Last-Event-ID or a parameter is not an integer", body = ErrorBody),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventParams>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let after = last_event_id(&headers)?.or(q.after);
    Ok(event_stream(&state, after))
}

/// A request's `Last-Event-ID` header: `None` without one, [`Error::BadRequest`] when
/// it is not an integer event id.
pub fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    Error::BadRequest("header Last-Event-ID: expected an integer event id".into())
                })
        })
        .transpose()
}

/// The ticket events (the `events` table) with an id above `after` as server-sent
/// events (`id`, `event` = the type, `data` = the event as JSON), then each new one as
/// it commits, until [`AppState::close_streams`]; `after: None` starts at the newest
/// event (only what happens from now on). With a keep-alive comment every 15 s.
/// `GET /api/v1/events` answers with it, and so does the console's live stream (which
/// checks its own session and permission first).
pub fn event_stream(
    state: &AppState,
    after: Option<i64>,
) -> Sse<impl Stream<Item = std::result::Result<Event, Infallible>> + Send + 'static> {
    let wake = state.tickets.subscribe_events();
    let after = match after {
        Some(after) => after,
        None => *wake.borrow(),
    };
    let cursor = EventCursor {
        tickets: state.tickets.clone(),
        wake,
        closed: state.streams_closed.subscribe(),
        after,
        buffer: VecDeque::new(),
    };
    tracing::debug!(after, "Event stream opened");
    let stream = futures_util::stream::unfold(cursor, next_event);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
