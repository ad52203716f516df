//! The OpenAPI document (`GET /openapi.json`) and the docs page (`GET /docs`).
//!
//! The document is generated from the handlers' `#[utoipa::path]` attributes and the
//! route table ([`super::route_table`]), which adds to every operation that needs a key
//! the bearer security requirement, its 401 and 403 responses and the permission with
//! the roles that hold it. It is built once, when the router is.
//!
//! The docs page is one self-contained HTML file (no CDN, no downloaded assets) with the
//! document inlined: it lists every operation and sends requests with a key typed into
//! the page. It needs a key itself, like every route but `/health` (docs/api.md says
//! how to open it from a browser).

use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, ResponseBuilder,
};

use super::auth::Permission;
use super::error::{ErrorBody, ErrorDetail};

/// The security scheme's name in the document.
pub(crate) const BEARER: &str = "bearer";

/// The document before the routes are added: info, the security scheme, shared schemas.
pub(crate) fn base_document() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("fixahead API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Predictive maintenance for connected appliances: tickets, devices, \
                     telemetry, dead letters, API keys and the audit log. Every route but \
                     /health needs `Authorization: Bearer <key>`; each operation names the \
                     permission it needs and the roles that hold it.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    BEARER,
                    SecurityScheme::Http(
                        HttpBuilder::new()
                            .scheme(HttpAuthScheme::Bearer)
                            .description(Some(
                                "An API key (`fixahead keys create`, or POST /api/v1/keys)",
                            ))
                            .build(),
                    ),
                )
                .schema_from::<ErrorBody>()
                .schema_from::<ErrorDetail>()
                .build(),
        ))
        .build()
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn secure_operation(op: &mut Operation, permission: Permission) {
    op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    let roles: Vec<_> = permission.roles().iter().map(|r| r.as_str()).collect();
    let note = format!(
        "Needs permission `{}`, held by the roles: {}.",
        permission.as_str(),
        roles.join(", ")
    );
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
        _ => note,
    });
    let responses = &mut op.responses.responses;
    responses.insert(
        "401".into(),
        error_response("No valid API key (missing, malformed, unknown or revoked)").into(),
    );
    if roles.len() < 4 {
        responses.insert(
            "403".into(),
            error_response("The key's role does not hold the permission").into(),
        );
    }
}

/// Marks every operation of `doc` as needing a key with `permission`.
pub(crate) fn secure(doc: &mut OpenApi, permission: Permission) {
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            secure_operation(op, permission);
        }
    }
}

/// The document as JSON and the docs page, rendered once.
#[derive(Clone)]
pub(crate) struct Served {
    json: Arc<str>,
    page: Arc<str>,
}

const PAGE: &str = include_str!("docs.html");

impl Served {
    pub(crate) fn new(doc: &OpenApi) -> Self {
        let json = match doc.to_json() {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "Could not render the OpenAPI document");
                "{}".to_owned()
            }
        };
        // Inside <script>, "</" would end the element.
        let inline = json.replace("</", "<\\/");
        let page = PAGE.replace("/*OPENAPI*/{}", &inline);
        Self {
            json: json.into(),
            page: page.into(),
        }
    }
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "docs",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json(Extension(served): Extension<Served>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        served.json.to_string(),
    )
        .into_response()
}

/// `GET /docs`: the interactive docs page.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "docs",
    responses((status = 200, description = "A self-contained HTML page listing every operation, with a form to try each", content_type = "text/html", body = String))
)]
pub(crate) async fn page(Extension(served): Extension<Served>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(served.page.to_string()),
    )
        .into_response()
}
