//! Satisfaction and call-backs: `POST /api/v1/tickets/{id}/satisfaction` (the
//! customer's answer, from the console, a person or an integration such as a CRM or
//! survey tool) and `POST /api/v1/tickets/{id}/callback` (the call-back done).
//! docs/procedures.md has the rules and the integration payload.

use axum::extract::State;
use axum::{Extension, Json};
use domain::ReportChannel;
use serde::Deserialize;

use super::auth::Principal;
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiPath};
use super::tickets::{ticket_id, with_allowed, TicketView};
use super::{blocking, AppState};
use crate::desk;
use crate::tickets::SatisfactionInput;
use crate::Result;

/// Body of `POST /api/v1/tickets/{id}/satisfaction`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SatisfactionBody {
    /// 1 (very dissatisfied) to 5 (very satisfied).
    #[schema(minimum = 1, maximum = 5)]
    score: u8,
    /// The customer's comment (up to 2,000 characters).
    comment: Option<String>,
    /// How the answer came in: `phone` (default), `app`, `web`, `installer`.
    channel: Option<ReportChannel>,
}

/// `POST /api/v1/tickets/{id}/satisfaction`: records the customer's satisfaction with
/// a resolved or closed ticket (a second answer replaces the first; both are logged).
/// A score of `[satisfaction] dissatisfied_at_most` (2) or less opens the ticket's
/// call-back for its planner, due in `callback_within` (1 h): event
/// `ticket.callback_opened`.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/satisfaction",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    request_body = SatisfactionBody,
    responses(
        (status = 200, description = "The ticket with its satisfaction (and call-back)", body = TicketView),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "The ticket is not resolved or closed", body = ErrorBody),
        (status = 422, description = "A score outside 1-5, an unknown channel or a comment too long", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn record(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SatisfactionBody>,
) -> Result<Json<TicketView>> {
    let id = ticket_id(&id)?;
    let input = SatisfactionInput {
        score: body.score,
        comment: body.comment.unwrap_or_default(),
        channel: body.channel,
    };
    blocking(move || {
        let t = desk::record_satisfaction(&state, &who, id, input)?;
        with_allowed(&state.tickets, t)
    })
    .await
    .map(Json)
}

/// Body of `POST /api/v1/tickets/{id}/callback`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallbackBody {
    /// What the call found (not blank; up to 2,000 characters).
    note: String,
}

/// `POST /api/v1/tickets/{id}/callback`: marks the ticket's call-back done, with what
/// the call found (logged `callback_done`, noting when it was late).
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/callback",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    request_body = CallbackBody,
    responses(
        (status = 200, description = "The ticket with its call-back done", body = TicketView),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "The ticket has no call-back, or it is already done", body = ErrorBody),
        (status = 422, description = "The note is blank or too long", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub(crate) async fn callback(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CallbackBody>,
) -> Result<Json<TicketView>> {
    let id = ticket_id(&id)?;
    blocking(move || {
        let t = desk::complete_callback(&state, &who, id, &body.note)?;
        with_allowed(&state.tickets, t)
    })
    .await
    .map(Json)
}
