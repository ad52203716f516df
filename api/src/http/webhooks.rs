//! `POST`/`GET /api/v1/webhooks`, `GET`/`DELETE /api/v1/webhooks/{id}`,
//! `GET /api/v1/webhooks/{id}/deliveries`: webhooks and their delivery attempts
//! (admin, integration). The delivery rules are in [`crate::webhooks`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::auth::{AuditNote, Principal};
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{blocking, next_cursor, page_limit, AppState};
use crate::webhooks::{Delivery, NewWebhook, Webhook, WebhookService};
use crate::{Error, Result};

/// Body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWebhook {
    /// Where to POST events: an `http://` or `https://` URL (at most 2048 bytes).
    /// Redirects are not followed.
    #[schema(
        example = "https://dispatch.example.com/hooks/fixahead",
        max_length = 2048
    )]
    url: String,
    /// The HMAC-SHA256 key of the `X-Fixahead-Signature` header, 16-256 characters.
    /// Kept by fixahead to sign; never shown again.
    #[schema(min_length = 16, max_length = 256)]
    secret: String,
    /// The event types to receive: `ticket.opened`, `ticket.updated`,
    /// `ticket.sla_breached`, `ticket.step_overdue`, `ticket.callback_opened`,
    /// `ticket.callback_overdue`, `prediction.flagged`, `fleet.batch_alarm`.
    #[schema(min_items = 1, example = json!(["ticket.opened", "ticket.sla_breached"]))]
    event_types: Vec<String>,
    /// Free text, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    description: String,
}

/// Answer of `GET /api/v1/webhooks`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct WebhookList {
    /// Active webhooks, oldest first, without secrets.
    webhooks: Vec<Webhook>,
}

/// Query of `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryParams {
    /// Page size, default 100, at most 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Cursor: the `next` of the previous page.
    before: Option<i64>,
}

/// A page of a webhook's deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeliveryPage {
    /// The webhook.
    webhook_id: i64,
    /// Deliveries, newest first, each with its attempts.
    deliveries: Vec<Delivery>,
    /// The cursor (`before`) of the next page, or `null` on the last page.
    next: Option<i64>,
}

fn service(state: &AppState) -> Result<WebhookService> {
    state
        .webhooks
        .clone()
        .ok_or_else(|| Error::NotFound("this server does not deliver webhooks".into()))
}

fn webhook_id(raw: &str) -> Result<i64> {
    super::path_id("webhook id", raw)
}

/// Registers a webhook. It receives the events committed after this request.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Registered", body = Webhook),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "Too many webhooks (100)", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 422, description = "A field is missing, unknown or out of range; `error.field` names it", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<Response> {
    let svc = service(&state)?;
    let new = NewWebhook {
        url: body.url,
        secret: body.secret,
        event_types: body.event_types,
        description: body.description,
    };
    let actor = who.actor();
    let w = blocking(move || svc.create(new, &actor)).await?;
    tracing::info!(webhook_id = w.id, url = %w.url, "Registered a webhook");
    let note = AuditNote(format!(
        "registered webhook {} to {} for {}",
        w.id,
        w.url,
        w.event_types.join(", ")
    ));
    let mut response = (StatusCode::CREATED, Json(w)).into_response();
    response.extensions_mut().insert(note);
    Ok(response)
}

/// Lists the active webhooks, without secrets.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "Active webhooks, oldest first", body = WebhookList))
)]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<WebhookList>> {
    let svc = service(&state)?;
    let webhooks = blocking(move || svc.list()).await?;
    Ok(Json(WebhookList { webhooks }))
}

/// One webhook (a removed one too, with `deleted_at`).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Webhook>> {
    let id = webhook_id(&raw)?;
    let svc = service(&state)?;
    blocking(move || svc.get(id))
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("webhook {id} not found")))
}

/// Removes a webhook: nothing new is queued for it and its pending deliveries are
/// cancelled. Its deliveries stay listed.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No such active webhook", body = ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Result<Response> {
    let id = webhook_id(&raw)?;
    let svc = service(&state)?;
    if !blocking(move || svc.delete(id)).await? {
        return Err(Error::NotFound(format!("no active webhook {id}")));
    }
    tracing::info!(webhook_id = id, "Removed a webhook");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .extensions_mut()
        .insert(AuditNote(format!("removed webhook {id}")));
    Ok(response)
}

/// A webhook's deliveries, newest first, each with every attempt (time, duration,
/// HTTP status or error), its state and when the next attempt is due.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id"), DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Malformed or unknown parameter", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    )
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveryParams>,
) -> Result<Json<DeliveryPage>> {
    let id = webhook_id(&raw)?;
    let limit = page_limit(q.limit, 100, 1000)?;
    let svc = service(&state)?;
    let mut deliveries = blocking(move || {
        if svc.get(id)?.is_none() {
            return Err(Error::NotFound(format!("webhook {id} not found")));
        }
        svc.deliveries(id, q.before, limit + 1)
    })
    .await?;
    let next = next_cursor(&mut deliveries, limit, |d| d.id);
    Ok(Json(DeliveryPage {
        webhook_id: id,
        deliveries,
        next,
    }))
}
