//! Device endpoints: registry, detail, telemetry, remote diagnosis and commands.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Extension, Json};
use domain::{DeviceId, Priority, TicketStatus, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::hot::{DeviceRecord, FaultRecord, TelemetryRecord};

use super::auth::{AuditNote, Principal};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{blocking, next_cursor, page_limit, AppState};
use crate::tickets::{RiskRecord, TicketQuery};
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
        (status = 400, description = "Malformed or unknown parameter", body = super::error::ErrorBody),
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

fn parse_device_id(raw: &str) -> Result<DeviceId> {
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
    state.tickets.list(&TicketQuery {
        statuses: TicketQuery::active_statuses(),
        device_id: Some(id.clone()),
        ..TicketQuery::default()
    })
}

/// A fault message with its catalogue text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct FaultView {
    code: String,
    state: String,
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
        (status = 400, description = "Invalid device id", body = super::error::ErrorBody),
        (status = 404, description = "Unknown device", body = super::error::ErrorBody),
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
        let profile = state.profiles.get(&device.device_type).cloned();
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
        (status = 400, description = "Invalid id or parameter, or from > to", body = super::error::ErrorBody),
        (status = 404, description = "Unknown device", body = super::error::ErrorBody),
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

/// Query of `POST /api/v1/devices/{device_id}/credentials`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct IssueParams {
    /// `true` replaces existing credentials.
    rotate: Option<bool>,
}

fn credential_store(state: &AppState) -> Result<store::credentials::CredentialStore> {
    state
        .credentials
        .clone()
        .ok_or_else(|| Error::NotFound("this server does not manage device credentials".into()))
}

/// `POST /api/v1/devices/{device_id}/credentials`: issues a generated password, shown
/// in this response only. 409 if the device has credentials, unless `rotate=true`.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{device_id}/credentials",
    tag = "devices",
    params(("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$"), IssueParams),
    responses(
        (status = 201, description = "`{\"device_id\", \"username\", \"password\", \"issued_at\"}`; the password is shown only here", body = Object),
        (status = 400, description = "Invalid device id or parameter", body = super::error::ErrorBody),
        (status = 404, description = "This server does not manage device credentials", body = super::error::ErrorBody),
        (status = 409, description = "The device has credentials and rotate is not true", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn issue_credentials(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<IssueParams>,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let id = parse_device_id(&raw)?;
    let store = credential_store(&state)?;
    let rotate = q.rotate.unwrap_or(false);
    let (password, info) =
        blocking(move || store.issue(&id, None, rotate).map_err(Error::from)).await?;
    tracing::info!(device_id = %info.device_id, rotate, "Issued device credentials over the API");
    Ok((
        axum::http::StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "device_id": info.device_id,
            "username": info.device_id,
            "password": password,
            "issued_at": info.issued_at,
        })),
    )
        .into_response())
}

/// `DELETE /api/v1/devices/{device_id}/credentials`: revokes them for new connections.
#[utoipa::path(
    delete,
    path = "/api/v1/devices/{device_id}/credentials",
    tag = "devices",
    params(("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Invalid device id", body = super::error::ErrorBody),
        (status = 404, description = "The device has no credentials", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn revoke_credentials(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Result<axum::http::StatusCode> {
    let id = parse_device_id(&raw)?;
    let store = credential_store(&state)?;
    let device = id.to_string();
    blocking(move || store.revoke(&id).map_err(Error::from)).await?;
    tracing::info!(device_id = %device, "Revoked device credentials over the API");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Fault messages in a diagnosis' timeline.
const TIMELINE_FAULTS: usize = 50;
/// Telemetry messages read per trend window (a day, a week, the week before).
const TREND_MAX_ROWS: usize = 10_000;
/// Commands listed in a diagnosis.
const DIAGNOSIS_COMMANDS: usize = 5;
/// A component is a suspect when its risk reaches this share of its threshold.
const SUSPECT_SHARE: f64 = 0.5;

/// How a channel's values moved, by the device's own clock (its newest event time).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
struct Trend {
    /// Mean over the last day.
    day_mean: Option<f64>,
    /// Mean over the last 7 days.
    week_mean: Option<f64>,
    /// Mean over the 7 days before those.
    prior_week_mean: Option<f64>,
    /// Least-squares slope over the last 7 days, per day.
    slope_per_day: Option<f64>,
    /// Values in the last day.
    samples_day: u64,
    /// Values in the last 7 days.
    samples_week: u64,
}

/// One channel in a diagnosis.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ChannelDiagnosis {
    channel: String,
    unit: Option<String>,
    /// Latest value and its event time.
    latest: Option<f64>,
    #[schema(value_type = Option<String>)]
    latest_ts: Option<Timestamp>,
    /// The fleet's p5-p95 for this type and model (`null` until the summary has it).
    normal_range: Option<crate::fleet::NormalRange>,
    /// `low` (under p5), `normal`, `high` (over p95) or `unknown`.
    position: &'static str,
    trend: Trend,
}

/// A component's current risk with a sentence explaining it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ComponentRiskView {
    component: String,
    title: Option<String>,
    risk: f64,
    threshold: f64,
    flagged: bool,
    model_version: String,
    #[schema(value_type = String)]
    ts: Timestamp,
    /// The top contributing features in words.
    explanation: String,
    #[schema(value_type = Vec<Object>)]
    top_features: Vec<domain::Contribution>,
    /// The device is still in its 7-day feature warm-up: the risk is not to be
    /// trusted, and only its fault codes can flag it. Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    warming_up: bool,
}

/// A part the visit may need.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LikelyPart {
    component: String,
    part: String,
    /// Catalogue reference (profile `parts`), `null` if the catalogue lacks it.
    reference: Option<String>,
    /// Why: risk, fault codes, open tickets.
    reasons: Vec<String>,
}

/// The body of `GET /api/v1/devices/{device_id}/diagnosis`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceDiagnosis {
    /// Registry fields, as in `GET /api/v1/devices/{device_id}`.
    #[schema(value_type = Object)]
    device: DeviceRecord,
    /// Every channel of the profile (and unknown ones the device reported).
    channels: Vec<ChannelDiagnosis>,
    /// Fault messages, newest first (at most 50), with catalogue text.
    faults: Vec<FaultView>,
    open_tickets: Vec<TicketSummary>,
    risk: Vec<ComponentRiskView>,
    /// Devices of the same model and batch, and how they fared.
    comparable: Option<crate::fleet::Cohort>,
    likely_parts: Vec<LikelyPart>,
    /// The newest commands sent to the device.
    recent_commands: Vec<crate::commands::CommandRecord>,
}

fn mean(v: &[(i64, f64)]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().map(|(_, x)| x).sum::<f64>() / v.len() as f64)
}

/// Least-squares slope of `v` (time in ms, value) per day.
fn slope_per_day(v: &[(i64, f64)]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let n = v.len() as f64;
    let t0 = v[0].0;
    let days = |t: i64| (t - t0) as f64 / Timestamp::DAY_MS as f64;
    let mt = v.iter().map(|(t, _)| days(*t)).sum::<f64>() / n;
    let mx = v.iter().map(|(_, x)| x).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (t, x) in v {
        let dt = days(*t) - mt;
        num += dt * (x - mx);
        den += dt * dt;
    }
    (den > 0.0).then(|| num / den)
}

/// Per channel: (event time, value) of the last week and of the week before.
type Series = BTreeMap<String, (Vec<(i64, f64)>, Vec<(i64, f64)>)>;

fn trend_series(state: &AppState, id: &str, newest: Timestamp) -> Result<Series> {
    let end = Timestamp(newest.millis().saturating_add(1));
    let week_start = Timestamp(newest.millis().saturating_sub(7 * Timestamp::DAY_MS));
    let prior_start = Timestamp(newest.millis().saturating_sub(14 * Timestamp::DAY_MS));
    let mut series = Series::new();
    for (from, to, recent) in [(prior_start, week_start, false), (week_start, end, true)] {
        for row in state
            .store
            .telemetry(id, Some(from), Some(to), TREND_MAX_ROWS)?
        {
            for (name, value) in row.readings {
                let entry = series.entry(name).or_default();
                let side = if recent { &mut entry.0 } else { &mut entry.1 };
                side.push((row.ts.millis(), value));
            }
        }
    }
    Ok(series)
}

fn trend(week: &[(i64, f64)], prior: &[(i64, f64)], newest: Timestamp) -> Trend {
    let day_from = newest.millis().saturating_sub(Timestamp::DAY_MS);
    let day: Vec<(i64, f64)> = week
        .iter()
        .copied()
        .filter(|(t, _)| *t > day_from)
        .collect();
    Trend {
        day_mean: mean(&day),
        week_mean: mean(week),
        prior_week_mean: mean(prior),
        slope_per_day: slope_per_day(week),
        samples_day: day.len() as u64,
        samples_week: week.len() as u64,
    }
}

/// "drain_time_s.ewma_fast = 41 (fleet normal 10-20) raises the risk by 1.20; ..."
fn explain(r: &crate::tickets::RiskRecord) -> String {
    let mut parts: Vec<String> = r
        .top_features
        .iter()
        .map(|c| {
            let range = c
                .normal_range
                .map(|(lo, hi)| format!(" (fleet normal {lo:.3}-{hi:.3})"))
                .unwrap_or_default();
            let verb = if c.contribution >= 0.0 {
                "raises"
            } else {
                "lowers"
            };
            format!(
                "{} = {:.3}{range} {verb} the risk by {:.2}",
                c.feature,
                c.value,
                c.contribution.abs()
            )
        })
        .collect();
    if parts.is_empty() {
        parts.push("no feature stands out".into());
    }
    format!(
        "Risk {:.2} against threshold {:.2}{}{}: {}",
        r.risk,
        r.threshold,
        if r.flagged { ", flagged" } else { "" },
        if r.warming_up {
            " (device warming up: the risk is not reliable yet, only fault codes flag it)"
        } else {
            ""
        },
        parts.join("; ")
    )
}

/// Why a component is suspect: its highest risk, the reasons, and the parts the fault
/// catalogue names for its raised codes.
type Suspect = (f64, Vec<String>, Vec<String>);

/// Suspect components (flagged or near their threshold, a raised fault code of the
/// catalogue, an active ticket) and their parts with catalogue references: parts the
/// fault catalogue names for the raised codes first, then the component's others.
fn likely_parts(
    profile: &domain::Profile,
    risk: &[crate::tickets::RiskRecord],
    faults: &[FaultView],
    tickets: &[domain::Ticket],
) -> Vec<LikelyPart> {
    let mut reasons: BTreeMap<String, Suspect> = BTreeMap::new();
    for r in risk {
        if r.flagged || r.risk >= r.threshold * SUSPECT_SHARE {
            let e = reasons.entry(r.component.clone()).or_default();
            e.0 = e.0.max(r.risk);
            e.1.push(format!("risk {:.2} (threshold {:.2})", r.risk, r.threshold));
        }
    }
    for f in faults.iter().filter(|f| f.state == "raised") {
        let Some(def) = profile.fault(&f.code) else {
            continue;
        };
        let Some(component) = &def.component else {
            continue;
        };
        let e = reasons.entry(component.clone()).or_default();
        let why = format!("fault {} ({})", f.code, def.title);
        if !e.1.contains(&why) {
            e.1.push(why);
        }
        for p in &def.likely_parts {
            if !e.2.contains(p) {
                e.2.push(p.clone());
            }
        }
    }
    for t in tickets {
        let e = reasons.entry(t.component.clone()).or_default();
        e.0 = e.0.max(t.risk);
        e.1.push(format!("open ticket {} ({})", t.number, t.status));
    }
    let mut ranked: Vec<(String, Suspect)> = reasons.into_iter().collect();
    ranked.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    let mut out = Vec::new();
    for (component, (_, why, mut names)) in ranked {
        let Some(c) = profile.component(&component) else {
            continue;
        };
        for p in &c.parts {
            if !names.contains(&p.name) {
                names.push(p.name.clone());
            }
        }
        for name in names {
            let reference = c
                .parts
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.reference.clone());
            out.push(LikelyPart {
                component: component.clone(),
                part: name,
                reference,
                reasons: why.clone(),
            });
        }
    }
    out
}

fn position(value: Option<f64>, range: Option<&crate::fleet::NormalRange>) -> &'static str {
    match (value, range) {
        (Some(v), Some(r)) if v < r.p5 => "low",
        (Some(v), Some(r)) if v > r.p95 => "high",
        (Some(_), Some(_)) => "normal",
        _ => "unknown",
    }
}

fn diagnose(state: &AppState, who: &Principal, id: &DeviceId) -> Result<DeviceDiagnosis> {
    let device = state
        .store
        .device(id.as_str())?
        .ok_or_else(|| Error::NotFound(format!("device {id} not found")))?;
    let tickets = active_tickets(state, id)?;
    super::tickets::check_may_diagnose(who, id.as_str(), &tickets)?;
    let profile = state.profiles.get(&device.device_type).cloned();
    let newest = device.last_event_ts;
    let latest = state
        .store
        .latest_readings(id.as_str(), READINGS_LOOKBACK)?;
    let mut series = trend_series(state, id.as_str(), newest)?;
    let ranges = match &state.summary {
        Some(f) => f.ranges(&device.device_type, &device.model)?,
        None => BTreeMap::new(),
    };
    let mut names: Vec<String> = profile
        .as_ref()
        .map(|p| p.channels().iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    for name in latest.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let channels = names
        .into_iter()
        .map(|name| {
            let unit = profile
                .as_ref()
                .and_then(|p| p.channel_index(&name).map(|i| p.channels()[i].unit.clone()));
            let (value, ts) = latest
                .get(&name)
                .map_or((None, None), |(v, t)| (Some(*v), Some(*t)));
            let range = ranges.get(&name).cloned();
            let (week, prior) = series.remove(&name).unwrap_or_default();
            ChannelDiagnosis {
                position: position(value, range.as_ref()),
                trend: trend(&week, &prior, newest),
                channel: name,
                unit,
                latest: value,
                latest_ts: ts,
                normal_range: range,
            }
        })
        .collect();
    let faults: Vec<FaultView> = state
        .store
        .recent_faults(id.as_str(), TIMELINE_FAULTS)?
        .into_iter()
        .map(|f| fault_view(profile.as_deref(), f))
        .collect();
    let risk_records = state.tickets.device_risk(id.as_str())?;
    let likely = profile
        .as_ref()
        .map(|p| likely_parts(p, &risk_records, &faults, &tickets))
        .unwrap_or_default();
    let risk = risk_records
        .iter()
        .map(|r| ComponentRiskView {
            component: r.component.clone(),
            title: profile
                .as_ref()
                .and_then(|p| p.component(&r.component))
                .map(|c| c.title.clone()),
            risk: r.risk,
            threshold: r.threshold,
            flagged: r.flagged,
            model_version: r.model_version.clone(),
            ts: r.ts,
            explanation: explain(r),
            top_features: r.top_features.clone(),
            warming_up: r.warming_up,
        })
        .collect();
    let comparable = match &state.summary {
        Some(f) => f.cohort(&device.device_type, &device.model, device.batch.as_deref())?,
        None => None,
    };
    let recent_commands = match &state.commands {
        Some(c) => c.recent(id.as_str(), DIAGNOSIS_COMMANDS)?,
        None => Vec::new(),
    };
    Ok(DeviceDiagnosis {
        device,
        channels,
        faults,
        open_tickets: tickets.iter().map(TicketSummary::from).collect(),
        risk,
        comparable,
        likely_parts: likely,
        recent_commands,
    })
}

/// `GET /api/v1/devices/{device_id}/diagnosis`: everything an engineer checks before a
/// visit (docs/api.md).
#[utoipa::path(
    get,
    path = "/api/v1/devices/{device_id}/diagnosis",
    tag = "devices",
    params(("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The diagnosis", body = DeviceDiagnosis),
        (status = 400, description = "Invalid device id", body = super::error::ErrorBody),
        (status = 403, description = "An engineer without an active ticket of this device assigned to them", body = super::error::ErrorBody),
        (status = 404, description = "Unknown device", body = super::error::ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(device_id = %raw))]
pub(crate) async fn diagnosis(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<DeviceDiagnosis>> {
    let id = parse_device_id(&raw)?;
    blocking(move || diagnose(&state, &who, &id))
        .await
        .map(Json)
}

/// Body of `POST /api/v1/devices/{device_id}/commands`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandBody {
    /// The command; `self_test` is the only one.
    #[schema(example = "self_test")]
    command: String,
}

fn command_service(state: &AppState) -> Result<crate::commands::CommandService> {
    state
        .commands
        .clone()
        .ok_or_else(|| Error::NotFound("this server does not send device commands".into()))
}

/// The device (or 404), and whether `who` may diagnose it.
fn check_device(state: &AppState, who: &Principal, id: &DeviceId) -> Result<()> {
    if state.store.device(id.as_str())?.is_none() {
        return Err(Error::NotFound(format!("device {id} not found")));
    }
    let tickets = active_tickets(state, id)?;
    super::tickets::check_may_diagnose(who, id.as_str(), &tickets)
}

/// `POST /api/v1/devices/{device_id}/commands`: publishes a command to the device on
/// `fixahead/v1/{device_id}/cmd`; 202 with the pending command.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{device_id}/commands",
    tag = "devices",
    params(("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = CommandBody,
    responses(
        (status = 202, description = "Sent; the command is pending (or failed if it could not be published)", body = crate::commands::CommandRecord),
        (status = 400, description = "Invalid device id or malformed JSON", body = super::error::ErrorBody),
        (status = 403, description = "An engineer without an active ticket of this device assigned to them", body = super::error::ErrorBody),
        (status = 404, description = "Unknown device, or this server sends no commands", body = super::error::ErrorBody),
        (status = 422, description = "Unknown command; `error.field` is `command`", body = super::error::ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(device_id = %raw))]
pub(crate) async fn send_command(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<CommandBody>,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let id = parse_device_id(&raw)?;
    if !domain::COMMANDS.contains(&body.command.as_str()) {
        return Err(Error::invalid(format!(
            "command: {:?} is not a command; expected one of {}",
            body.command.chars().take(64).collect::<String>(),
            domain::COMMANDS.join(", ")
        )));
    }
    let commands = command_service(&state)?;
    let record = blocking(move || {
        check_device(&state, &who, &id)?;
        commands.send(&id, &body.command, &who.name)
    })
    .await?;
    let location = format!(
        "/api/v1/devices/{}/commands/{}",
        record.device_id, record.id
    );
    let note = AuditNote(format!(
        "sent {} to {} (command {})",
        record.command, record.device_id, record.id
    ));
    let mut response = (
        axum::http::StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, location)],
        Json(record),
    )
        .into_response();
    response.extensions_mut().insert(note);
    Ok(response)
}

/// `GET /api/v1/devices/{device_id}/commands/{id}`: the command with its status
/// (pending, answered, timed_out, failed) and the device's answer.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{device_id}/commands/{id}",
    tag = "devices",
    params(
        ("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("id" = i64, Path, description = "Command id"),
    ),
    responses(
        (status = 200, description = "The command", body = crate::commands::CommandRecord),
        (status = 400, description = "Invalid device id or non-numeric command id", body = super::error::ErrorBody),
        (status = 403, description = "An engineer without an active ticket of this device assigned to them", body = super::error::ErrorBody),
        (status = 404, description = "No such command for this device", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn get_command(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath((raw, command_id)): ApiPath<(String, String)>,
) -> Result<Json<crate::commands::CommandRecord>> {
    let id = parse_device_id(&raw)?;
    let command_id: i64 = command_id
        .parse()
        .map_err(|_| Error::BadRequest(format!("command id {command_id:?} is not an integer")))?;
    let commands = command_service(&state)?;
    blocking(move || {
        check_device(&state, &who, &id)?;
        commands.get(id.as_str(), command_id)?.ok_or_else(|| {
            Error::NotFound(format!("command {command_id} of device {id} not found"))
        })
    })
    .await
    .map(Json)
}
