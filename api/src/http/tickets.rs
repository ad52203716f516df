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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    status: Option<String>,
    device_id: Option<String>,
    component: Option<String>,
    priority: Option<Priority>,
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

/// `GET /api/v1/tickets/{id}`.
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
