//! The route table, the router built from it (with the authentication, metrics, body
//! limit and tracing layers), the OpenAPI document built from the same table, and the
//! server.

use std::future::Future;
use std::sync::Arc;

use axum::http::Method;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use super::auth::{self, Access, Permission};
use super::{
    audit, devices, docs, engineers, error, fleet, intake, keys, kpis, metrics, models,
    satisfaction, system, tickets, webhooks, AppState,
};
use crate::{Error, Result};

/// The route table: every route with who may call it. The router and the OpenAPI
/// document are both built from it (`routes!` takes the path and method from each
/// handler's `#[utoipa::path]`), and the tests walk it, so a route cannot exist without
/// a declared permission or a documented operation.
///
/// To add a route: write the handler with `#[utoipa::path(...)]` (path, params, body,
/// responses; no `security`, added from this table), then add one line here with its
/// [`Access`].
fn route_table() -> Vec<(Access, UtoipaMethodRouter<AppState>)> {
    use Permission as P;
    vec![
        (Access::Public, routes!(system::health)),
        (Access::Requires(P::ReadMetrics), routes!(system::metrics)),
        (Access::Requires(P::ReadDocs), routes!(docs::openapi_json)),
        (Access::Requires(P::ReadDocs), routes!(docs::page)),
        (Access::Requires(P::ReadTickets), routes!(tickets::list)),
        (Access::Requires(P::ReadTickets), routes!(tickets::get)),
        (
            Access::Requires(P::TransitionTickets),
            routes!(tickets::transition),
        ),
        (Access::Requires(P::AssignTickets), routes!(tickets::assign)),
        (
            Access::Requires(P::RecordOutcome),
            routes!(tickets::outcome),
        ),
        (
            Access::Requires(P::TransitionTickets),
            routes!(tickets::note),
        ),
        (Access::Requires(P::ReadEvents), routes!(tickets::events)),
        (
            Access::Requires(P::RecordSatisfaction),
            routes!(satisfaction::record),
        ),
        (
            Access::Requires(P::RecordSatisfaction),
            routes!(satisfaction::callback),
        ),
        (Access::Requires(P::ReadDevices), routes!(devices::list)),
        (Access::Requires(P::ReadDevices), routes!(devices::get)),
        (
            Access::Requires(P::ReadDevices),
            routes!(devices::telemetry),
        ),
        (Access::Requires(P::Diagnose), routes!(devices::diagnosis)),
        (
            Access::Requires(P::Diagnose),
            routes!(devices::send_command),
        ),
        (Access::Requires(P::Diagnose), routes!(devices::get_command)),
        (
            Access::Requires(P::ManageDevices),
            routes!(devices::issue_credentials, devices::revoke_credentials),
        ),
        (
            Access::Requires(P::ReadDeadLetters),
            routes!(system::dead_letters),
        ),
        (
            Access::Requires(P::ManageKeys),
            routes!(keys::create, keys::list),
        ),
        (Access::Requires(P::ManageKeys), routes!(keys::revoke)),
        (Access::Requires(P::ReadAudit), routes!(audit::list)),
        (
            Access::Requires(P::ManageWebhooks),
            routes!(webhooks::create, webhooks::list),
        ),
        (
            Access::Requires(P::ManageWebhooks),
            routes!(webhooks::get, webhooks::remove),
        ),
        (
            Access::Requires(P::ManageWebhooks),
            routes!(webhooks::deliveries),
        ),
        (Access::Requires(P::ReadFleet), routes!(fleet::stats)),
        (Access::Requires(P::ReadFleet), routes!(fleet::alarms)),
        (
            Access::Requires(P::ReadFleet),
            routes!(fleet::parts_forecast),
        ),
        (
            Access::Requires(P::RunFleetDetection),
            routes!(fleet::detect),
        ),
        (
            Access::Requires(P::AcknowledgeAlarms),
            routes!(fleet::acknowledge),
        ),
        (
            Access::Requires(P::ReadModels),
            routes!(models::performance),
        ),
        (Access::Requires(P::ReadModels), routes!(models::drift)),
        (Access::Requires(P::ReportProblems), routes!(intake::report)),
        (
            Access::Requires(P::ManageDirectory),
            routes!(intake::put_directory),
        ),
        (
            Access::Requires(P::ReadDevices),
            routes!(intake::get_directory),
        ),
        (Access::Requires(P::AssignTickets), routes!(engineers::list)),
        (
            Access::Requires(P::ManageEngineers),
            routes!(engineers::put),
        ),
        (Access::Requires(P::AssignTickets), routes!(engineers::get)),
        (
            Access::Requires(P::AssignTickets),
            routes!(engineers::candidates),
        ),
        (Access::Requires(P::ReadKpis), routes!(kpis::get)),
    ]
}

/// One route of the table: method, path template (`/api/v1/tickets/{id}`) and access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// HTTP method.
    pub method: Method,
    /// Path template, as in the OpenAPI document.
    pub path: String,
    /// Who may call it.
    pub access: Access,
}

/// The methods a path item has operations for.
fn methods(item: &utoipa::openapi::PathItem) -> Vec<(Method, &utoipa::openapi::path::Operation)> {
    [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::PATCH, &item.patch),
        (Method::DELETE, &item.delete),
        (Method::HEAD, &item.head),
        (Method::OPTIONS, &item.options),
        (Method::TRACE, &item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

/// Every route with its access, from the same table the router is built from.
pub fn route_list() -> Vec<RouteInfo> {
    let mut out = Vec::new();
    for (access, (_, paths, _)) in route_table() {
        for (path, item) in &paths.paths {
            for (method, _) in methods(item) {
                out.push(RouteInfo {
                    method,
                    path: path.clone(),
                    access,
                });
            }
        }
    }
    out
}

/// The whole application: every endpoint in the module docs, a JSON 404 for unknown
/// routes, API keys and permissions, the audit log, a body limit, request metrics and
/// a tracing layer.
pub fn router(state: AppState) -> Router {
    let api_metrics = Arc::clone(&state.api_metrics);
    let auth_state = auth::AuthState {
        access: state.access.clone(),
        metrics: Arc::clone(&api_metrics),
    };
    let body_limit = state.body_limit;
    let mut app = OpenApiRouter::with_openapi(docs::base_document());
    for (access, entry) in route_table() {
        let mut part = OpenApiRouter::new().routes(entry);
        if let Access::Requires(permission) = access {
            docs::secure(part.get_openapi_mut(), permission);
            part = part.route_layer(axum::middleware::from_fn_with_state(
                auth::Requirement {
                    permission,
                    metrics: Arc::clone(&api_metrics),
                },
                auth::require,
            ));
        }
        app = app.merge(part);
    }
    let (router, document) = app.split_for_parts();
    let served = docs::Served::new(&document);
    router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            auth_state,
            auth::authenticate,
        ))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::map_response(
            error::json_payload_too_large,
        ))
        .layer(axum::Extension(served))
        .layer(axum::middleware::from_fn_with_state(
            api_metrics,
            metrics::count_requests,
        ))
        .layer(TraceLayer::new_for_http())
}

/// The OpenAPI document the router serves (the same as `GET /openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut app: OpenApiRouter<AppState> = OpenApiRouter::with_openapi(docs::base_document());
    for (access, entry) in route_table() {
        let mut part = OpenApiRouter::new().routes(entry);
        if let Access::Requires(permission) = access {
            docs::secure(part.get_openapi_mut(), permission);
        }
        app = app.merge(part);
    }
    app.into_openapi()
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight
/// requests finish. Handlers can read the peer's address (`ConnectInfo<SocketAddr>`):
/// the console counts failed sign-ins per address.
pub async fn serve<F>(listener: tokio::net::TcpListener, router: Router, shutdown: F) -> Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::Io {
            context: "serving HTTP".into(),
            source,
        })
}
