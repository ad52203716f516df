//! Health, metrics and dead letters.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::ApiQuery;
use super::{blocking, page_limit, AppState};
use crate::Result;

/// `GET /health`.
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

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let text = blocking(move || {
        let mut out = (state.metrics)();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        let by_status = state
            .tickets
            .count_by_status()
            .map_err(|e| tracing::warn!(error = %e, "Could not count tickets"))
            .ok();
        state
            .api_metrics
            .render(&mut out, state.tickets.stats(), by_status.as_deref());
        Ok(out)
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLetterParams {
    limit: Option<usize>,
    before: Option<i64>,
}

/// `GET /api/v1/dead-letters`.
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeadLetterParams>,
) -> Result<Json<Value>> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let mut rows = blocking(move || Ok(state.store.dead_letters(q.before, limit + 1)?)).await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(json!({"dead_letters": rows, "next": next})))
}
