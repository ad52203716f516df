//! `GET /api/v1/audit`: the audit log (admin).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::ApiQuery;
use super::{blocking, next_cursor, page_limit, AppState};
use crate::access::AuditEntry;
use crate::{Error, Result};

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Page size, default 100, at most 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Cursor: the `next` of the previous page.
    before: Option<i64>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPage {
    /// Records, newest first.
    audit: Vec<AuditEntry>,
    /// The cursor (`before`) of the next page, or `null` on the last page.
    next: Option<i64>,
}

/// The audit log: every state-changing request that succeeded or was refused with 403,
/// newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of records", body = AuditPage),
        (status = 400, description = "Malformed or unknown parameter", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let store = state
        .access
        .clone()
        .ok_or_else(|| Error::NotFound("this server keeps no audit log".into()))?;
    let mut audit = blocking(move || Ok(store.audit_log(q.before, limit + 1)?)).await?;
    let next = next_cursor(&mut audit, limit, |e| e.id);
    Ok(Json(AuditPage { audit, next }))
}
