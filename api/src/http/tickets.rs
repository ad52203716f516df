//! Ticket endpoints: listing, lifecycle transitions, assignment, outcome, and the
//! server-sent event stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use domain::{DeviceId, OutcomeKind, Priority, Ticket, TicketSource, TicketStatus, Timestamp};
use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::extract::{ApiPath, ApiQuery};
use super::{blocking, page_limit, AppState};
use crate::tickets::{AssignmentInput, EventRecord, OutcomeInput, TicketQuery, TicketService};
use crate::{Error, Result};

/// Who performs a change, as written to the ticket's log.
///
/// Until authentication lands this is the `X-Actor` header (1-64 visible ASCII
/// characters) or `api`. **Merge point:** replace the body with the authenticated
/// principal's name from the request extensions.
pub(crate) fn actor_of(headers: &HeaderMap) -> String {
    headers
        .get("x-actor")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        })
        .map_or_else(|| "api".to_owned(), str::to_owned)
}

/// A JSON body: malformed JSON or a wrong content type is a 400; JSON that does not
/// fit the body (unknown field, missing field, wrong type, unknown value) a 422 whose
/// message names the field.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Error> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(Error::Invalid(e.body_text())),
            Err(e) => Err(Error::BadRequest(e.body_text())),
        }
    }
}

/// Query of `GET /api/v1/tickets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    status: Option<String>,
    device_id: Option<String>,
    component: Option<String>,
    priority: Option<Priority>,
    source: Option<TicketSource>,
    opened_after: Option<String>,
    limit: Option<usize>,
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

/// `GET /api/v1/tickets`.
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<Value>> {
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
    let next = if tickets.len() > limit {
        tickets.truncate(limit);
        tickets.last().map(|t| t.id)
    } else {
        None
    };
    Ok(Json(json!({"tickets": tickets, "next": next})))
}

fn ticket_id(id: &str) -> Result<i64> {
    id.parse().map_err(|_| {
        let shown: String = id.chars().take(64).collect();
        Error::BadRequest(format!("ticket id {shown:?} is not an integer"))
    })
}

/// A ticket with the statuses it may move to now.
fn with_allowed(tickets: &TicketService, t: Ticket) -> Result<Value> {
    let allowed = tickets.allowed_transitions(&t);
    let mut v = serde_json::to_value(t)?;
    v["allowed_transitions"] = json!(allowed);
    Ok(v)
}

/// `GET /api/v1/tickets/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>> {
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutcomeBody {
    kind: OutcomeKind,
    component: Option<String>,
    parts_replaced: Option<Vec<String>>,
    failed_at: Option<Timestamp>,
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

/// Checks a confirmed failure's component against the device's profile, when known.
fn check_component(state: &AppState, t: &Ticket, o: &OutcomeInput) -> Result<()> {
    let (Some(c), Some(profile)) = (&o.component, state.profiles.get(&t.device_type)) else {
        return Ok(());
    };
    if profile.component(c).is_none() {
        let known: Vec<&str> = profile
            .components()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(Error::Invalid(format!(
            "outcome.component: {c:?} is not a component of {}; expected one of {}",
            t.device_type,
            known.join(", ")
        )));
    }
    Ok(())
}

/// Body of `POST /api/v1/tickets/{id}/transitions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitionBody {
    to: TicketStatus,
    note: Option<String>,
    outcome: Option<OutcomeBody>,
}

/// `POST /api/v1/tickets/{id}/transitions`.
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn transition(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TransitionBody>,
) -> Result<Json<Value>> {
    let id = ticket_id(&id)?;
    let actor = actor_of(&headers);
    blocking(move || {
        let outcome = body.outcome.map(OutcomeInput::from);
        if let Some(o) = &outcome {
            if let Some(t) = state.tickets.get(id)? {
                check_component(&state, &t, o)?;
            }
        }
        let note = body.note.unwrap_or_default();
        let t = state
            .tickets
            .transition(id, body.to, &actor, &note, outcome)?;
        tracing::info!(%actor, to = %body.to, "Ticket transition");
        with_allowed(&state.tickets, t)
    })
    .await
    .map(Json)
}

/// Body of `POST /api/v1/tickets/{id}/assignment`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignmentBody {
    engineer: Option<String>,
    window_start: Option<Timestamp>,
    window_end: Option<Timestamp>,
    region: Option<String>,
}

/// `POST /api/v1/tickets/{id}/assignment`.
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn assign(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> Result<Json<Value>> {
    let id = ticket_id(&id)?;
    let actor = actor_of(&headers);
    blocking(move || {
        let input = AssignmentInput {
            engineer: body.engineer,
            window_start: body.window_start,
            window_end: body.window_end,
            region: body.region,
        };
        let t = state.tickets.assign(id, input, &actor)?;
        with_allowed(&state.tickets, t)
    })
    .await
    .map(Json)
}

/// `POST /api/v1/tickets/{id}/outcome`.
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn outcome(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OutcomeBody>,
) -> Result<Json<Value>> {
    let id = ticket_id(&id)?;
    let actor = actor_of(&headers);
    blocking(move || {
        let input = OutcomeInput::from(body);
        let t = state
            .tickets
            .get(id)?
            .ok_or_else(|| Error::NotFound(format!("ticket {id} not found")))?;
        check_component(&state, &t, &input)?;
        let t = state.tickets.record_outcome(id, input, &actor)?;
        with_allowed(&state.tickets, t)
    })
    .await
    .map(Json)
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventParams {
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

/// `GET /api/v1/events`: server-sent events.
pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventParams>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    Error::BadRequest("header Last-Event-ID: expected an integer event id".into())
                })
        })
        .transpose()?;
    let wake = state.tickets.subscribe_events();
    let after = match last_event_id.or(q.after) {
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
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
