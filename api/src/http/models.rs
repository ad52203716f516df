//! Model endpoints: performance in production (from ticket outcomes) and drift
//! (recent feature distributions against the training data).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use domain::Timestamp;
use serde::{Deserialize, Serialize};

use super::devices::parse_period;
use super::extract::ApiQuery;
use super::{blocking, AppState};
use crate::tickets::{PerformanceQuery, PerformanceReport};
use crate::{Error, Result};

/// Query of `GET /api/v1/models/performance`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PerformanceParams {
    /// Start of the period: tickets opened at or after it (RFC 3339 or epoch ms).
    from: Option<String>,
    /// End of the period: tickets opened before it (RFC 3339 or epoch ms).
    to: Option<String>,
    /// Only this model version (`none`: reactive tickets opened while no model scored).
    model_version: Option<String>,
    /// Only this device type.
    device_type: Option<String>,
    /// Only this component.
    component: Option<String>,
    /// Only this region (`unknown`: tickets without one).
    region: Option<String>,
}

/// `GET /api/v1/models/performance`: precision, lead time, dismissed share, missed and
/// repeat failures from ticket outcomes, per (model version, device type, component,
/// region).
#[utoipa::path(
    get,
    path = "/api/v1/models/performance",
    tag = "models",
    params(PerformanceParams),
    responses(
        (status = 200, description = "Rows per (model version, device type, component, region) and totals", body = PerformanceReport),
        (status = 400, description = "Malformed or unknown parameter, or from later than to", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn performance(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PerformanceParams>,
) -> Result<Json<PerformanceReport>> {
    let (from, to) = parse_period(q.from.as_deref(), q.to.as_deref())?;
    let query = PerformanceQuery {
        from,
        to,
        model_version: q.model_version,
        device_type: q.device_type,
        component: q.component,
        region: q.region,
    };
    let report = blocking(move || {
        let regions = state.regions.clone();
        state.tickets.performance(&query, &*regions)
    })
    .await?;
    Ok(Json(report))
}

/// Looks up a device's region in the device registry, for the performance report.
pub type RegionLookup = Arc<dyn crate::tickets::Regions + Send + Sync>;

/// Returns the drift of every device type's active model (the process's scorer keeps
/// the recent window; see `models::drift`).
pub type DriftReporter = Arc<dyn Fn() -> DriftReport + Send + Sync>;

/// The body of `GET /api/v1/models/drift`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DriftReport {
    /// Population stability index at or above which a feature is `watch`.
    pub watch_threshold: f64,
    /// Population stability index at or above which a feature is `drift`.
    pub drift_threshold: f64,
    /// Samples a feature needs in the window before it is judged.
    pub min_samples: u64,
    /// One entry per device type with an active model, by device type.
    pub models: Vec<ModelDrift>,
}

/// The drift of one device type's active model.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelDrift {
    /// Device type.
    pub device_type: String,
    /// The active model version, whose training data is the baseline.
    pub model_version: String,
    /// `ok`, `watch` or `drift` (the worst feature), `insufficient_data`, or
    /// `no_baseline` for a model trained before artefacts carried a training summary.
    pub status: String,
    /// Event time of the window's first sample (`null` before any).
    #[schema(value_type = Option<String>)]
    pub window_from: Option<Timestamp>,
    /// Event time of the window's latest sample.
    #[schema(value_type = Option<String>)]
    pub window_to: Option<Timestamp>,
    /// Feature vectors scored in the window.
    pub samples: u64,
    /// Training rows the baseline was computed from.
    pub baseline_rows: u64,
    /// Features whose status is `drift`.
    pub drifted_features: u64,
    /// Every feature (or, with `status=...`, those with that status), worst first.
    pub features: Vec<FeatureDrift>,
}

/// One feature's drift.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FeatureDrift {
    /// Feature name (`drain_time_s.ewma_fast`).
    pub feature: String,
    /// Its channel or component (the name before the first dot).
    pub channel: String,
    /// Population stability index of the window against the training data.
    pub psi: f64,
    /// `ok` (< watch), `watch`, `drift` (>= drift threshold) or `insufficient_data`.
    pub status: String,
    /// Values in the window (missing values count in their own bin).
    pub samples: u64,
    /// Mean of the window's finite values (`null` without any).
    pub mean: Option<f64>,
    /// Training mean.
    pub baseline_mean: f64,
}

/// Query of `GET /api/v1/models/drift`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DriftParams {
    /// Only this device type.
    device_type: Option<String>,
    /// Only features with this status (`ok`, `watch`, `drift`, `insufficient_data`).
    status: Option<String>,
}

const FEATURE_STATUSES: [&str; 4] = ["ok", "watch", "drift", "insufficient_data"];

/// `GET /api/v1/models/drift`: per device type and feature, the population stability
/// index of the recent window against the model's training data.
#[utoipa::path(
    get,
    path = "/api/v1/models/drift",
    tag = "models",
    params(DriftParams),
    responses(
        (status = 200, description = "Drift per device type and feature", body = DriftReport),
        (status = 400, description = "Malformed or unknown parameter", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn drift(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DriftParams>,
) -> Result<Json<DriftReport>> {
    if let Some(s) = q.status.as_deref() {
        if !FEATURE_STATUSES.contains(&s) {
            return Err(Error::BadRequest(format!(
                "parameter status: {s:?} is not one of {}",
                FEATURE_STATUSES.join(", ")
            )));
        }
    }
    let Some(reporter) = state.drift.clone() else {
        return Ok(Json(DriftReport::default()));
    };
    let mut report = blocking(move || Ok(reporter())).await?;
    if let Some(t) = &q.device_type {
        report.models.retain(|m| &m.device_type == t);
    }
    if let Some(s) = &q.status {
        for m in &mut report.models {
            m.features.retain(|f| &f.status == s);
        }
    }
    Ok(Json(report))
}
