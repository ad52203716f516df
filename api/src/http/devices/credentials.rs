//! `POST` and `DELETE /api/v1/devices/{device_id}/credentials`: a device's MQTT
//! credentials for the embedded broker and the Mosquitto export.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::parse_device_id;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::{blocking, AppState};
use crate::{Error, Result};

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
        (status = 400, description = "Invalid device id or parameter", body = crate::http::error::ErrorBody),
        (status = 404, description = "This server does not manage device credentials", body = crate::http::error::ErrorBody),
        (status = 409, description = "The device has credentials and rotate is not true", body = crate::http::error::ErrorBody),
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
        (status = 400, description = "Invalid device id", body = crate::http::error::ErrorBody),
        (status = 404, description = "The device has no credentials", body = crate::http::error::ErrorBody),
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
