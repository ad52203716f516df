//! `GET /api/v1/kpis`: the service KPIs of a period (docs/kpis.md), overall, per
//! group and over time.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::devices::parse_period;
use super::extract::ApiQuery;
use super::{blocking, AppState};
use crate::kpis::{Bucket, GroupBy, KpiQuery, KpiReport};
use crate::Result;

/// Query of `GET /api/v1/kpis`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct KpiParams {
    /// Start of the period: tickets opened at or after it (RFC 3339 or epoch ms;
    /// default: 30 days before `to`).
    from: Option<String>,
    /// End of the period: tickets opened before it (RFC 3339 or epoch ms; default:
    /// now by the service's clock). At most 366 days after `from`.
    to: Option<String>,
    /// Groups: `region`, `engineer`, `device_type`, `priority` or `source`.
    group_by: Option<String>,
    /// The series' bucket: `day` (default) or `week` (from Monday), in UTC.
    bucket: Option<String>,
}

/// `GET /api/v1/kpis`: response and resolution times, first-time fix, satisfaction
/// and call-backs, repeat complaints, failures warned in advance, false alarms and
/// step-limit breaches of the tickets opened in a period: overall, per group and per
/// day or week.
#[utoipa::path(
    get,
    path = "/api/v1/kpis",
    tag = "kpis",
    params(KpiParams),
    responses(
        (status = 200, description = "The KPIs overall, per group and per bucket (docs/kpis.md)", body = KpiReport),
        (status = 400, description = "Malformed or unknown parameter, from later than to, or a period over 366 days", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<KpiParams>,
) -> Result<Json<KpiReport>> {
    let (from, to) = parse_period(q.from.as_deref(), q.to.as_deref())?;
    let group_by = q.group_by.as_deref().map(GroupBy::parse).transpose()?;
    let bucket = q
        .bucket
        .as_deref()
        .map(Bucket::parse)
        .transpose()?
        .unwrap_or_default();
    let report = blocking(move || {
        let query = KpiQuery::new(from, to, group_by, bucket, state.tickets.now())?;
        state.tickets.kpis(&query)
    })
    .await?;
    Ok(Json(report))
}
