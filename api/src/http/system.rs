//! Health, metrics and dead letters.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::ApiQuery;
use super::{blocking, next_cursor, page_limit, AppState};
use crate::Result;

/// `GET /health`: liveness and a summary; the only route without a key.
#[utoipa::path(
    get,
    path = "/health",
    tag = "system",
    responses(
        (status = 200, description = "Up: `status` is `ok`, with ticket and process counters", body = Object),
        (status = 503, description = "The ticket store cannot be read", body = Object),
    )
)]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let tickets = state.tickets.clone();
    let report = state.health.clone();
    let result = blocking(move || {
        let active = tickets.count_active()?;
        Ok((active, report()))
    })
    .await;
    match result {
        Ok((active, extra)) => {
            let mut body = json!({"status": "ok", "tickets": {"active": active}});
            merge(&mut body, extra);
            Json(body).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "Health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "the ticket store cannot be read"})),
            )
                .into_response()
        }
    }
}

/// Merges the reporter's object into `body` (without overriding `status`); any other
/// non-null value goes under `details`.
fn merge(body: &mut Value, extra: Value) {
    let Value::Object(target) = body else {
        return;
    };
    match extra {
        Value::Null => {}
        Value::Object(fields) => {
            for (k, v) in fields {
                if k != "status" {
                    target.insert(k, v);
                }
            }
        }
        other => {
            target.insert("details".into(), other);
        }
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses((status = 200, description = "Metrics in the Prometheus text format 0.0.4", content_type = "text/plain", body = String))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let registry = state.registry.clone();
    let text = blocking(move || {
        prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .map_err(|e| crate::Error::Task(format!("encoding metrics: {e}")))
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Query of `GET /api/v1/dead-letters`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeadLetterParams {
    /// Page size, default 100, at most 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Cursor: the `next` of the previous page (a dead-letter id).
    before: Option<i64>,
}

/// `GET /api/v1/dead-letters`: rejected messages, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "system",
    params(DeadLetterParams),
    responses(
        (status = 200, description = "`{\"dead_letters\": [...], \"next\": 17 | null}`", body = Object),
        (status = 400, description = "Malformed or unknown parameter", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeadLetterParams>,
) -> Result<Json<Value>> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let mut rows = blocking(move || Ok(state.store.dead_letters(q.before, limit + 1)?)).await?;
    let next = next_cursor(&mut rows, limit, |r| r.id);
    Ok(Json(json!({"dead_letters": rows, "next": next})))
}
