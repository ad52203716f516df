//! Fleet endpoints (docs/fleet.md): statistics per group, batch alarms, parts
//! forecast. They answer from the [`crate::fleet::Fleet`] snapshot, never from SQLite
//! directly (the alarm list excepted: one indexed page of `fleet_alarms`).

use axum::extract::State;
use axum::Json;
use domain::Timestamp;
use serde::{Deserialize, Serialize};

use super::devices::parse_time;
use super::extract::ApiQuery;
use super::{blocking, page_limit, AppState};
use crate::fleet::{AlarmRecord, DetectionReport, GroupBy, GroupParts, GroupStats};
use crate::{Error, Result};

/// Default period of `GET /api/v1/fleet/stats`: the last 30 days.
const DEFAULT_PERIOD_MS: i64 = 30 * 86_400_000;
/// Longest parts forecast, in days.
const MAX_FORECAST_DAYS: u32 = 365;

/// Query of `GET /api/v1/fleet/stats`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsParams {
    /// `model` (default), `fw`, `region`, `batch`, `type` or `none`.
    group_by: Option<String>,
    /// Start of the period (RFC 3339 or epoch ms), inclusive; default `to` - 30 days.
    from: Option<String>,
    /// End of the period, exclusive; default now.
    to: Option<String>,
}

/// The body of `GET /api/v1/fleet/stats`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StatsBody {
    group_by: GroupBy,
    #[schema(value_type = String)]
    from: Timestamp,
    #[schema(value_type = String)]
    to: Timestamp,
    /// When the snapshot the answer comes from was loaded.
    #[schema(value_type = String)]
    as_of: Timestamp,
    groups: Vec<GroupStats>,
}

/// `GET /api/v1/fleet/stats`: devices, reporting, open predictions, failure rate,
/// dismissed share and mean risk per component, per group, over a period.
#[utoipa::path(
    get,
    path = "/api/v1/fleet/stats",
    tag = "fleet",
    params(StatsParams),
    responses(
        (status = 200, description = "Statistics per group (docs/fleet.md)", body = StatsBody),
        (status = 400, description = "Malformed or unknown parameter, or from >= to", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<StatsParams>,
) -> Result<Json<StatsBody>> {
    use GroupBy as G;
    let group_by = match q.group_by.as_deref() {
        None => G::Model,
        Some(raw) => GroupBy::parse(
            raw,
            &[G::Model, G::Fw, G::Region, G::Batch, G::Type, G::None],
        )?,
    };
    let from = parse_time("from", q.from.as_deref())?;
    let to = parse_time("to", q.to.as_deref())?;
    let fleet = state.fleet.clone();
    blocking(move || {
        let snapshot = fleet.snapshot()?;
        let to = to.unwrap_or(snapshot.as_of);
        let from = from.unwrap_or(Timestamp(to.millis().saturating_sub(DEFAULT_PERIOD_MS)));
        if from >= to {
            return Err(Error::BadRequest(format!(
                "from ({from}) must be earlier than to ({to})"
            )));
        }
        Ok(Json(StatsBody {
            group_by,
            from,
            to,
            as_of: snapshot.as_of,
            groups: snapshot.stats(group_by, from, to),
        }))
    })
    .await
}

/// Query of `GET /api/v1/fleet/parts-forecast`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ForecastParams {
    /// Forecast window in days, 1-365, default 30.
    #[param(minimum = 1, maximum = 365)]
    days: Option<String>,
    /// `none` (default), `region`, `model`, `type` or `batch`.
    group_by: Option<String>,
}

/// The body of `GET /api/v1/fleet/parts-forecast`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ForecastBody {
    days: u32,
    group_by: GroupBy,
    /// The recent-failure look-back, days (`[fleet] parts_lookback`).
    lookback_days: f64,
    /// The models' horizon, days (`[fleet] risk_horizon`).
    risk_horizon_days: f64,
    #[schema(value_type = String)]
    as_of: Timestamp,
    groups: Vec<GroupParts>,
}

/// `GET /api/v1/fleet/parts-forecast`: expected demand per part over `days`, from
/// open predictions (risk-weighted) and recent confirmed failures.
#[utoipa::path(
    get,
    path = "/api/v1/fleet/parts-forecast",
    tag = "fleet",
    params(ForecastParams),
    responses(
        (status = 200, description = "Expected demand per part and group (docs/fleet.md)", body = ForecastBody),
        (status = 400, description = "Malformed or unknown parameter", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn parts_forecast(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ForecastParams>,
) -> Result<Json<ForecastBody>> {
    use GroupBy as G;
    let group_by = match q.group_by.as_deref() {
        None => G::None,
        Some(raw) => GroupBy::parse(raw, &[G::None, G::Region, G::Model, G::Type, G::Batch])?,
    };
    let days = match q.days.as_deref() {
        None => 30,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=MAX_FORECAST_DAYS).contains(d))
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "parameter days: {raw:?} is not a whole number of days from 1 to {MAX_FORECAST_DAYS}"
                ))
            })?,
    };
    let fleet = state.fleet.clone();
    blocking(move || {
        let snapshot = fleet.snapshot()?;
        let settings = fleet.settings();
        let day = 86_400_000.0;
        Ok(Json(ForecastBody {
            days,
            group_by,
            lookback_days: settings.parts_lookback.millis() as f64 / day,
            risk_horizon_days: settings.risk_horizon.millis() as f64 / day,
            as_of: snapshot.as_of,
            groups: snapshot.parts_forecast(fleet.profiles(), group_by, f64::from(days), settings),
        }))
    })
    .await
}

/// Query of `GET /api/v1/fleet/alarms`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlarmParams {
    /// `active`, `cleared` or `all` (default).
    status: Option<String>,
    /// Page size, default 100, at most 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Cursor: the `next` of the previous page (an alarm id).
    before: Option<i64>,
}

/// The body of `GET /api/v1/fleet/alarms`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AlarmPage {
    alarms: Vec<AlarmRecord>,
    next: Option<i64>,
}

/// `GET /api/v1/fleet/alarms`: batch alarms, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/fleet/alarms",
    tag = "fleet",
    params(AlarmParams),
    responses(
        (status = 200, description = "Alarms, newest first, and the cursor of the next page", body = AlarmPage),
        (status = 400, description = "Malformed or unknown parameter", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn alarms(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AlarmParams>,
) -> Result<Json<AlarmPage>> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let status = match q.status.as_deref() {
        None | Some("all") => None,
        Some(s @ ("active" | "cleared")) => Some(s.to_owned()),
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "parameter status: {other:?} is not one of active, cleared, all"
            )))
        }
    };
    let fleet = state.fleet.clone();
    blocking(move || {
        let mut alarms = fleet.alarms(status.as_deref(), q.before, limit + 1)?;
        let next = if alarms.len() > limit {
            alarms.truncate(limit);
            alarms.last().map(|a| a.id)
        } else {
            None
        };
        Ok(Json(AlarmPage { alarms, next }))
    })
    .await
}

/// `POST /api/v1/fleet/alarms/detect`: runs the batch-alarm detector now (as the
/// periodic task does) and returns what it raised and cleared.
#[utoipa::path(
    post,
    path = "/api/v1/fleet/alarms/detect",
    tag = "fleet",
    responses(
        (status = 200, description = "What the run did", body = DetectionReport),
    )
)]
pub(crate) async fn detect(State(state): State<AppState>) -> Result<Json<DetectionReport>> {
    let fleet = state.fleet.clone();
    blocking(move || fleet.detect().map(Json)).await
}

/// Body of `POST /api/v1/fleet/alarms/{id}/acknowledge`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcknowledgeBody {
    /// What is being done about the alarm (1-2000 characters, not blank).
    #[schema(example = "Quality hold on batch B2025-07; factory informed")]
    note: String,
}

/// `POST /api/v1/fleet/alarms/{id}/acknowledge`: records who took an active alarm on,
/// with a note. The alarm stays active until the detector clears it.
#[utoipa::path(
    post,
    path = "/api/v1/fleet/alarms/{id}/acknowledge",
    tag = "fleet",
    params(("id" = i64, Path, description = "Alarm id")),
    request_body = AcknowledgeBody,
    responses(
        (status = 200, description = "The alarm with its acknowledgement", body = AlarmRecord),
        (status = 400, description = "Malformed JSON or non-numeric id", body = super::error::ErrorBody),
        (status = 404, description = "No such alarm", body = super::error::ErrorBody),
        (status = 409, description = "The alarm is cleared, or already acknowledged", body = super::error::ErrorBody),
        (status = 422, description = "The note is blank or too long; `error.field` is `note`", body = super::error::ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(alarm_id = %raw))]
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    axum::Extension(who): axum::Extension<super::Principal>,
    super::extract::ApiPath(raw): super::extract::ApiPath<String>,
    super::extract::ApiJson(body): super::extract::ApiJson<AcknowledgeBody>,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let id = super::path_id("alarm id", &raw)?;
    let alarm =
        blocking(move || crate::desk::acknowledge_alarm(&state, &who, id, &body.note)).await?;
    let note = super::AuditNote(format!("acknowledged alarm {}", alarm.id));
    let mut response = Json(alarm).into_response();
    response.extensions_mut().insert(note);
    Ok(response)
}
