//! Device endpoints: the registry, a device's detail and its telemetry; its remote
//! diagnosis ([`diagnosis`]), commands ([`commands`]) and MQTT credentials
//! ([`credentials`]) each have their own module.

mod commands;
mod credentials;
mod diagnosis;

pub(super) use commands::{__path_get_command, __path_send_command, get_command, send_command};
pub(super) use credentials::{
    __path_issue_credentials, __path_revoke_credentials, issue_credentials, revoke_credentials,
};
pub(super) use diagnosis::{__path_diagnosis, diagnosis};

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use domain::{DeviceId, Priority, TicketStatus, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::hot::{DeviceRecord, FaultRecord, TelemetryRecord};

use super::extract::{ApiPath, ApiQuery};
use super::{blocking, next_cursor, page_limit, AppState};
use crate::tickets::RiskRecord;
use crate::{Error, Result};

/// Telemetry messages searched back for each channel's latest value.
const READINGS_LOOKBACK: usize = 50;
/// Fault messages shown on a device.
const RECENT_FAULTS: usize = 20;

/// Query of `GET /api/v1/devices`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only devices of this type.
    #[serde(rename = "type")]
    device_type: Option<String>,
    /// Page size, default 100, at most 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Cursor: the `next` of the previous page (a device id).
    after: Option<String>,
}

/// `GET /api/v1/devices`: registered devices, ordered by id.
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "devices",
    params(ListParams),
    responses(
        (status = 200, description = "`{\"devices\": [Device...], \"next\": \"wm-0100\" | null}`", body = Object),
        (status = 400, description = "Malformed or unknown parameter", body = crate::http::error::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<Value>> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let mut devices = blocking(move || {
        Ok(state
            .store
            .list_devices(q.device_type.as_deref(), q.after.as_deref(), limit + 1)?)
    })
    .await?;
    let next = next_cursor(&mut devices, limit, |d| d.device_id.clone());
    Ok(Json(json!({"devices": devices, "next": next})))
}

pub(super) fn parse_device_id(raw: &str) -> Result<DeviceId> {
    DeviceId::parse(raw).map_err(|e| Error::BadRequest(e.to_string()))
}

/// The latest value of one channel.
#[derive(Debug, Serialize)]
struct LatestReading {
    value: f64,
    ts: Timestamp,
    unit: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
}

/// An active ticket, as listed on a device.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TicketSummary {
    id: i64,
    number: String,
    component: String,
    #[schema(value_type = String)]
    status: TicketStatus,
    #[schema(value_type = String)]
    priority: Priority,
    risk: f64,
    #[schema(value_type = String)]
    respond_by: Timestamp,
}

impl From<&domain::Ticket> for TicketSummary {
    fn from(t: &domain::Ticket) -> Self {
        Self {
            id: t.id,
            number: t.number.clone(),
            component: t.component.clone(),
            status: t.status,
            priority: t.priority,
            risk: t.risk,
            respond_by: t.respond_by,
        }
    }
}

/// A stored fault with the profile's catalogue text.
fn fault_view(profile: Option<&domain::Profile>, f: FaultRecord) -> FaultView {
    let def = profile.and_then(|p| p.fault(&f.code));
    FaultView {
        title: def.map(|d| d.title.clone()),
        severity: def.map(|d| d.severity.as_str()),
        component: def.and_then(|d| d.component.clone()),
        code: f.code,
        state: f.state,
        ts: f.ts,
        seq: f.seq,
    }
}

/// The device's active tickets.
fn active_tickets(state: &AppState, id: &DeviceId) -> Result<Vec<domain::Ticket>> {
    // At most one per component: 1000 is every one.
    state.tickets.device_tickets(id.as_str(), true, 1000)
}

/// A fault message with its catalogue text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct FaultView {
    code: String,
    state: domain::FaultState,
    #[schema(value_type = String)]
    ts: Timestamp,
    seq: u64,
    title: Option<String>,
    severity: Option<&'static str>,
    component: Option<String>,
}

/// The body of `GET /api/v1/devices/{device_id}`.
#[derive(Debug, Serialize)]
pub(crate) struct DeviceDetail {
    #[serde(flatten)]
    device: DeviceRecord,
    latest_readings: BTreeMap<String, LatestReading>,
    risk: Vec<RiskRecord>,
    open_tickets: Vec<TicketSummary>,
    recent_faults: Vec<FaultView>,
}

/// `GET /api/v1/devices/{device_id}`: registry fields, latest readings, risk, open
/// tickets and recent faults.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{device_id}",
    tag = "devices",
    params(("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The device (docs/api.md)", body = Object),
        (status = 400, description = "Invalid device id", body = crate::http::error::ErrorBody),
        (status = 404, description = "Unknown device", body = crate::http::error::ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<DeviceDetail>> {
    let id = parse_device_id(&raw)?;
    let detail = blocking(move || {
        let Some(device) = state.store.device(id.as_str())? else {
            return Ok(None);
        };
        let profile = state.profiles.get(&device.device.device_type).cloned();
        let latest_readings = state
            .store
            .latest_readings(id.as_str(), READINGS_LOOKBACK)?
            .into_iter()
            .map(|(name, (value, ts))| {
                let channel = profile
                    .as_ref()
                    .and_then(|p| p.channel_index(&name).map(|i| &p.channels()[i]));
                let reading = LatestReading {
                    value,
                    ts,
                    unit: channel.map(|c| c.unit.clone()),
                    min: channel.map(|c| c.min),
                    max: channel.map(|c| c.max),
                };
                (name, reading)
            })
            .collect();
        let risk = state.tickets.device_risk(id.as_str())?;
        let open_tickets = active_tickets(&state, &id)?
            .iter()
            .map(TicketSummary::from)
            .collect();
        let recent_faults = state
            .store
            .recent_faults(id.as_str(), RECENT_FAULTS)?
            .into_iter()
            .map(|f| fault_view(profile.as_deref(), f))
            .collect();
        Ok(Some(DeviceDetail {
            device,
            latest_readings,
            risk,
            open_tickets,
            recent_faults,
        }))
    })
    .await?;
    detail
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("device {raw} not found")))
}

/// Query of `GET /api/v1/devices/{device_id}/telemetry`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TelemetryParams {
    /// From this time on (RFC 3339 or epoch milliseconds), inclusive.
    from: Option<String>,
    /// Before this time (RFC 3339 or epoch milliseconds).
    to: Option<String>,
    /// At most this many messages, default 100, at most 10000.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
}

/// The body of `GET /api/v1/devices/{device_id}/telemetry`.
#[derive(Debug, Serialize)]
pub(crate) struct TelemetryPage {
    device_id: DeviceId,
    telemetry: Vec<TelemetryRecord>,
}

/// The `from` and `to` parameters (RFC 3339 or epoch ms); 400 when `from > to`.
pub(super) fn parse_period(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<Timestamp>, Option<Timestamp>)> {
    let from = parse_time("from", from)?;
    let to = parse_time("to", to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(Error::BadRequest(format!(
                "from ({f}) is later than to ({t})"
            )));
        }
    }
    Ok((from, to))
}

pub(super) fn parse_time(name: &str, raw: Option<&str>) -> Result<Option<Timestamp>> {
    raw.map(|s| {
        Timestamp::parse(s).map_err(|e| Error::BadRequest(format!("parameter {name}: {e}")))
    })
    .transpose()
}

/// `GET /api/v1/devices/{device_id}/telemetry`: telemetry with `from <= ts < to`,
/// oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{device_id}/telemetry",
    tag = "devices",
    params(("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$"), TelemetryParams),
    responses(
        (status = 200, description = "`{\"device_id\": ..., \"telemetry\": [...]}`", body = Object),
        (status = 400, description = "Invalid id or parameter, or from > to", body = crate::http::error::ErrorBody),
        (status = 404, description = "Unknown device", body = crate::http::error::ErrorBody),
    )
)]
pub(crate) async fn telemetry(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<TelemetryParams>,
) -> Result<Json<TelemetryPage>> {
    let id = parse_device_id(&raw)?;
    let (from, to) = parse_period(q.from.as_deref(), q.to.as_deref())?;
    let limit = page_limit(q.limit, 100, 10_000)?;
    let rows = blocking(move || {
        if state.store.device(id.as_str())?.is_none() {
            return Err(Error::NotFound(format!("device {id} not found")));
        }
        let rows = state.store.telemetry(id.as_str(), from, to, limit)?;
        Ok(TelemetryPage {
            device_id: id,
            telemetry: rows,
        })
    })
    .await?;
    Ok(Json(rows))
}
