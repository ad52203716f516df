//! `POST`/`GET /api/v1/keys`, `DELETE /api/v1/keys/{id}`: API keys (admin).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::AuditNote;
use super::extract::{ApiJson, ApiPath};
use super::{blocking, AppState};
use crate::access::{self, AccessStore, KeyInfo};
use crate::{Error, Result};
use domain::Role;

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// The key's role.
    role: Role,
    /// A label: who or what holds the key (1-100 characters).
    #[schema(min_length = 1, max_length = 100, example = "planning desk")]
    name: String,
}

/// Answer of `POST /api/v1/keys`: the key, shown only here, and its record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedKey {
    /// The secret: send it as `Authorization: Bearer <key>`. fixahead keeps only its hash.
    key: String,
    #[serde(flatten)]
    info: KeyInfo,
}

/// Answer of `GET /api/v1/keys`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyList {
    /// Every key, revoked ones too, oldest first, without secrets.
    keys: Vec<KeyInfo>,
}

fn store(state: &AppState) -> Result<AccessStore> {
    state
        .access
        .clone()
        .ok_or_else(|| Error::NotFound("this server does not manage API keys".into()))
}

/// Creates an API key.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key, shown only in this response (Cache-Control: no-store)", body = CreatedKey),
        (status = 400, description = "Malformed JSON", body = super::error::ErrorBody),
        (status = 413, description = "Body over the limit", body = super::error::ErrorBody),
        (status = 422, description = "A field is missing, unknown or out of range", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<Response> {
    access::check_name(&body.name).map_err(|e| Error::Invalid {
        field: Some("name".into()),
        message: format!("field name: {e}"),
    })?;
    let store = store(&state)?;
    let (key, info) = blocking(move || Ok(store.create(body.role, &body.name)?)).await?;
    tracing::info!(key_id = info.id, role = %info.role, "Created an API key over the API");
    let note = AuditNote(format!(
        "created key {} ({}, {:?})",
        info.id, info.role, info.name
    ));
    let mut response = (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(CreatedKey { key, info }),
    )
        .into_response();
    response.extensions_mut().insert(note);
    Ok(response)
}

/// Lists the API keys, without secrets.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    responses((status = 200, description = "Every key, oldest first", body = KeyList))
)]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<KeyList>> {
    let store = store(&state)?;
    let keys = blocking(move || Ok(store.list()?)).await?;
    Ok(Json(KeyList { keys }))
}

/// Revokes an API key at once.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(("id" = i64, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked: later requests with it get 401"),
        (status = 400, description = "The id is not an integer", body = super::error::ErrorBody),
        (status = 404, description = "No valid key with this id", body = super::error::ErrorBody),
        (status = 409, description = "The last valid admin key cannot be revoked", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Result<Response> {
    let id = super::path_id("key id", &raw)?;
    let store = store(&state)?;
    let info = blocking(move || Ok(store.revoke(id)?)).await?;
    tracing::info!(key_id = info.id, role = %info.role, "Revoked an API key over the API");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(AuditNote(format!(
        "revoked key {} ({}, {:?})",
        info.id, info.role, info.name
    )));
    Ok(response)
}
