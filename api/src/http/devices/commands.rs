//! `POST /api/v1/devices/{device_id}/commands` and `GET .../commands/{id}`: remote
//! commands (`self_test`) and their answers.

use axum::extract::State;
use axum::{Extension, Json};
use domain::DeviceId;
use serde::Deserialize;

use super::parse_device_id;
use crate::http::auth::{AuditNote, Principal};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::{blocking, AppState};
use crate::{Error, Result};

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
    crate::desk::device_for_diagnosis(state, who, id).map(|_| ())
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
        (status = 400, description = "Invalid device id or malformed JSON", body = crate::http::error::ErrorBody),
        (status = 403, description = "An engineer without an active ticket of this device assigned to them", body = crate::http::error::ErrorBody),
        (status = 404, description = "Unknown device, or this server sends no commands", body = crate::http::error::ErrorBody),
        (status = 422, description = "Unknown command; `error.field` is `command`", body = crate::http::error::ErrorBody),
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
    let record =
        blocking(move || crate::desk::send_command(&state, &who, &id, &body.command)).await?;
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
        (status = 400, description = "Invalid device id or non-numeric command id", body = crate::http::error::ErrorBody),
        (status = 403, description = "An engineer without an active ticket of this device assigned to them", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such command for this device", body = crate::http::error::ErrorBody),
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
