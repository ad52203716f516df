//! `GET /api/v1/devices/{device_id}/diagnosis`: everything an engineer checks before
//! a visit, computed from the hot store, the current risk, the fleet summary and the
//! commands (docs/api.md, "Remote diagnosis").

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Extension, Json};
use domain::{DeviceId, FaultState, Timestamp};
use serde::Serialize;
use store::hot::DeviceRecord;

use super::{
    active_tickets, fault_view, parse_device_id, FaultView, TicketSummary, READINGS_LOOKBACK,
};
use crate::http::auth::Principal;
use crate::http::extract::ApiPath;
use crate::http::{blocking, AppState};
use crate::{Error, Result};

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
    for f in faults.iter().filter(|f| f.state == FaultState::Raised) {
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
    crate::desk::check_may_diagnose(who, id.as_str(), &tickets)?;
    let profile = state.profiles.get(&device.device.device_type).cloned();
    let newest = device.last_event_ts;
    let latest = state
        .store
        .latest_readings(id.as_str(), READINGS_LOOKBACK)?;
    let mut series = trend_series(state, id.as_str(), newest)?;
    let ranges = match &state.summary {
        Some(f) => f.ranges(&device.device.device_type, &device.device.model)?,
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
        Some(f) => f.cohort(
            &device.device.device_type,
            &device.device.model,
            device.device.batch.as_deref(),
        )?,
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
        (status = 400, description = "Invalid device id", body = crate::http::error::ErrorBody),
        (status = 403, description = "An engineer without an active ticket of this device assigned to them", body = crate::http::error::ErrorBody),
        (status = 404, description = "Unknown device", body = crate::http::error::ErrorBody),
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
