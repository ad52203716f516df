//! Intake endpoints (docs/intake.md): customer reports (`POST /api/v1/tickets`) and
//! the device directory (`PUT`/`GET /api/v1/devices/{device_id}/directory`). The
//! rules are in [`crate::intake`], shared with the console.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::auth::{AuditNote, Principal};
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiPath};
use super::{blocking, AppState};
use crate::intake::{self, DirectoryInput, ReportRequest};
use crate::tickets::{DirectoryEntry, ReportResult, ReportResultKind};
use crate::Result;

/// The body of `POST /api/v1/tickets`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ReportResponse {
    /// `opened` (201) or `joined` (200).
    #[schema(value_type = String, example = "opened")]
    result: ReportResultKind,
    /// The ticket after the report.
    ticket: domain::Ticket,
    /// The report's pre-judgement (also stored on the ticket).
    prejudgement: domain::PreJudgement,
    /// What is planned: status, priority, engineer, window, deadlines.
    planned: crate::tickets::Planned,
}

impl From<ReportResult> for ReportResponse {
    fn from(r: ReportResult) -> Self {
        Self {
            result: r.result,
            ticket: r.ticket,
            prejudgement: r.prejudgement,
            planned: r.planned,
        }
    }
}

/// `POST /api/v1/tickets`: a customer report from a person's channel. It joins the
/// device's active ticket for the problem (200) or opens a reactive ticket (201),
/// pre-judged from the device's own data (docs/intake.md).
#[utoipa::path(
    post,
    path = "/api/v1/tickets",
    tag = "tickets",
    request_body = ReportRequest,
    responses(
        (status = 201, description = "A reactive ticket opened", body = ReportResponse),
        (status = 200, description = "The report joined the device's active ticket", body = ReportResponse),
        (status = 400, description = "Malformed JSON or device id", body = ErrorBody),
        (status = 404, description = "Unknown device, serial or customer", body = ErrorBody),
        (status = 409, description = "The customer reference matches several devices (listed)", body = ErrorBody),
        (status = 422, description = "A field does not fit; `error.field` names it", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn report(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<ReportRequest>,
) -> Result<Response> {
    let result = blocking(move || intake::report(&state, &who, body)).await?;
    let status = match result.result {
        ReportResultKind::Opened => StatusCode::CREATED,
        ReportResultKind::Joined => StatusCode::OK,
    };
    let note = AuditNote(format!(
        "customer report {} ticket {} ({}, {})",
        match result.result {
            ReportResultKind::Opened => "opened",
            ReportResultKind::Joined => "joined",
        },
        result.ticket.number,
        result.ticket.device_id,
        result.ticket.component
    ));
    let mut response = (status, Json(ReportResponse::from(result))).into_response();
    response.extensions_mut().insert(note);
    Ok(response)
}

/// `PUT /api/v1/devices/{device_id}/directory`: writes the device's directory entry
/// (serial, customer, address, location, region); every field is replaced.
#[utoipa::path(
    put,
    path = "/api/v1/devices/{device_id}/directory",
    tag = "devices",
    params(("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = DirectoryInput,
    responses(
        (status = 200, description = "The entry as stored", body = DirectoryEntry),
        (status = 400, description = "Malformed JSON or device id", body = ErrorBody),
        (status = 409, description = "The serial belongs to another device", body = ErrorBody),
        (status = 422, description = "A field does not fit; `error.field` names it", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(device_id = %raw))]
pub(crate) async fn put_directory(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<DirectoryInput>,
) -> Result<Response> {
    let entry = blocking(move || intake::put_directory(&state, &who, &raw, body)).await?;
    let note = AuditNote(format!("wrote directory entry of {}", entry.device_id));
    let mut response = Json(entry).into_response();
    response.extensions_mut().insert(note);
    Ok(response)
}

/// `GET /api/v1/devices/{device_id}/directory`: the device's directory entry.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{device_id}/directory",
    tag = "devices",
    params(("device_id" = String, Path, description = "1-64 characters of [A-Za-z0-9_-]", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The entry", body = DirectoryEntry),
        (status = 400, description = "Invalid device id", body = ErrorBody),
        (status = 404, description = "The device has no directory entry", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(device_id = %raw))]
pub(crate) async fn get_directory(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<DirectoryEntry>> {
    blocking(move || intake::get_directory(&state, &who, &raw))
        .await
        .map(Json)
}
