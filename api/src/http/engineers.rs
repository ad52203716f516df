//! Engineers and dispatch (docs/dispatch.md): `PUT`/`GET /api/v1/engineers/{login}`,
//! `GET /api/v1/engineers`, and `GET /api/v1/tickets/{id}/candidates`, the ranking.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use store::engineers::{EngineerProfile, WorkingHours};

use super::auth::{AuditNote, Principal};
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiPath};
use super::{blocking, AppState};
use crate::desk::{self, EngineerInput};
use crate::dispatch::{EngineerView, Ranking};
use crate::Result;

/// Default daily capacity of a new profile without one.
const DEFAULT_DAILY_CAPACITY: u32 = 6;

/// Body of `PUT /api/v1/engineers/{login}`: the whole profile (it replaces the one
/// stored).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EngineerBody {
    /// How pages name them (the login for a new account; kept when absent).
    display_name: Option<String>,
    /// Skill name -> level 1-5; names are the components' `skills` in the profiles.
    #[schema(example = json!({"electrical": 3, "plumbing": 2}))]
    skills: BTreeMap<String, u8>,
    /// Home region.
    region: Option<String>,
    /// Home latitude (with `lon`).
    lat: Option<f64>,
    /// Home longitude (with `lat`).
    lon: Option<f64>,
    /// Working hours in their time zone (default 08:00-18:00, Monday to Friday).
    working_hours: Option<WorkingHours>,
    /// Visits a day (default 6; 0 keeps them out of dispatch).
    daily_capacity: Option<u32>,
    /// Their supervisor: a login or a role name such as `after-sales-manager`.
    supervisor: Option<String>,
    /// The account's IANA time zone (kept when absent; UTC for a new account).
    time_zone: Option<String>,
}

/// Answer of `PUT /api/v1/engineers/{login}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PutAnswer {
    /// The engineer.
    #[serde(flatten)]
    engineer: store::engineers::Engineer,
    /// The generated password of a new account, shown only here.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

/// Answer of `GET /api/v1/engineers`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EngineerList {
    /// Every engineer with their load, by login.
    engineers: Vec<EngineerView>,
}

/// `PUT /api/v1/engineers/{login}`: registers an engineer (creating the engineer
/// account) or replaces their profile.
#[utoipa::path(
    put,
    path = "/api/v1/engineers/{login}",
    tag = "engineers",
    params(("login" = String, Path, description = "The engineer's login")),
    request_body = EngineerBody,
    responses(
        (status = 200, description = "The profile was replaced", body = PutAnswer),
        (status = 201, description = "The engineer account was created; `password` is shown only here", body = PutAnswer),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "This server keeps no engineers' directory", body = ErrorBody),
        (status = 409, description = "The login belongs to a user of another role", body = ErrorBody),
        (status = 422, description = "A field does not fit (an unknown skill lists the known ones)", body = ErrorBody),
    )
)]
pub(crate) async fn put(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(login): ApiPath<String>,
    ApiJson(body): ApiJson<EngineerBody>,
) -> Result<Response> {
    let input = EngineerInput {
        display_name: body.display_name,
        time_zone: body.time_zone,
        profile: EngineerProfile {
            skills: body.skills,
            region: body.region,
            lat: body.lat,
            lon: body.lon,
            working_hours: body.working_hours.unwrap_or_default(),
            daily_capacity: body.daily_capacity.unwrap_or(DEFAULT_DAILY_CAPACITY),
            supervisor: body.supervisor,
        },
    };
    let put = blocking(move || desk::put_engineer(&state, &who, &login, input)).await?;
    let created = put.password.is_some();
    let note = AuditNote(format!(
        "{} engineer {}",
        if created { "registered" } else { "updated" },
        put.engineer.login
    ));
    tracing::info!(login = %put.engineer.login, created, "Engineer profile written");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(PutAnswer {
            engineer: put.engineer,
            password: put.password,
        }),
    )
        .into_response();
    response.extensions_mut().insert(note);
    Ok(response)
}

/// `GET /api/v1/engineers`: every engineer with their load.
#[utoipa::path(
    get,
    path = "/api/v1/engineers",
    tag = "engineers",
    responses(
        (status = 200, description = "Every engineer, by login", body = EngineerList),
        (status = 404, description = "This server keeps no engineers' directory", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<EngineerList>> {
    let engineers = blocking(move || desk::engineers(&state, &who)).await?;
    Ok(Json(EngineerList { engineers }))
}

/// `GET /api/v1/engineers/{login}`: one engineer with their load.
#[utoipa::path(
    get,
    path = "/api/v1/engineers/{login}",
    tag = "engineers",
    params(("login" = String, Path, description = "The engineer's login")),
    responses(
        (status = 200, description = "The engineer", body = EngineerView),
        (status = 404, description = "No such engineer", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(login): ApiPath<String>,
) -> Result<Json<EngineerView>> {
    blocking(move || desk::engineer(&state, &who, &login))
        .await
        .map(Json)
}

/// `GET /api/v1/tickets/{id}/candidates`: every engineer ranked for the ticket, best
/// first, with the reasons.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/candidates",
    tag = "tickets",
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ranking (docs/dispatch.md)", body = Ranking),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No such ticket, or no engineers' directory", body = ErrorBody),
    )
)]
pub(crate) async fn candidates(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Ranking>> {
    let id = super::path_id("ticket id", &id)?;
    blocking(move || desk::candidates(&state, &who, id))
        .await
        .map(Json)
}
