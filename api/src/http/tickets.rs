//! Ticket endpoints.

use axum::extract::State;
use axum::Json;
use domain::{DeviceId, Priority, Ticket, TicketStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiPath, ApiQuery};
use super::{blocking, page_limit, AppState};
use crate::tickets::TicketQuery;
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
        (status = 200, description = "`{\"tickets\": [Ticket...], \"next\": 41 | null}` (docs/api.md)", body = Object),
        (status = 400, description = "Malformed or unknown parameter", body = super::error::ErrorBody),
    )
)]
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

/// `GET /api/v1/tickets/{id}`: one ticket with its diagnosis and log.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket (docs/api.md)", body = Object),
        (status = 400, description = "The id is not an integer", body = super::error::ErrorBody),
        (status = 404, description = "No such ticket", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Ticket>> {
    let id: i64 = id.parse().map_err(|_| {
        let shown: String = id.chars().take(64).collect();
        Error::BadRequest(format!("ticket id {shown:?} is not an integer"))
    })?;
    blocking(move || state.tickets.get(id))
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("ticket {id} not found")))
}
