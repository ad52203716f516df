//! The service console: the pages planners, engineers and admins work in, served by
//! the same process and port as the JSON API, in English and Simplified Chinese.
//!
//! * Server-rendered HTML from askama templates (`console/templates/`), which are
//!   checked against their structs at compile time and escape every value by default:
//!   text from devices, profiles and people is never markup. Askama because it is the
//!   kanidm way (templates as files a designer can read, compiled into the binary; no
//!   Node step), and a type error in a template is a build error.
//! * Every page works without JavaScript; `assets/console.js` only enhances (live
//!   updates, actions without a full reload). Assets are compiled into the binary and
//!   served under content-hashed names with a year's cache ([`assets`]); nothing comes
//!   from another host.
//! * People sign in with an account of [`store::users`]; the session cookie is
//!   HttpOnly and SameSite=Strict (Secure over TLS), every state-changing form carries
//!   the session's CSRF token ([`csrf::CsrfForm`]).
//! * The pages call the same services as the JSON API with the same permission table
//!   (`api::http::auth::grants`) through an [`api::Principal`] of kind `user`; every
//!   action lands in the ticket log and the audit log under the person's name.
//!
//! Routes live under `/console/` ([`router`]); `/` redirects there.

mod account;
mod admin;
mod alerts;
mod assets;
mod chart;
mod clock;
mod csrf;
mod device;
mod engineers;
mod error;
mod fleet;
mod i18n;
mod kpis;
mod live;
mod models;
mod my_day;
mod page;
mod queue;
mod report;
mod session;
mod sign_in;
mod state;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod ticket;

use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;

pub use error::{Error, Result};
pub use state::{ConsoleSettings, ConsoleState};

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// The console's routes (under [`PREFIX`], plus `/` redirecting to it), with the
/// session and security-header layers. Merge it into the API's router.
pub fn router(state: ConsoleState) -> Router {
    let pages = Router::new()
        .route("/", get(queue::page))
        .route("/events", get(live::events))
        .route("/my-day", get(my_day::page))
        .route("/alerts", get(alerts::page))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/account", get(account::page))
        .route("/account/preferences", post(account::preferences))
        .route("/account/language", post(account::language))
        .route("/account/password", post(account::password))
        .route("/tickets/{id}", get(ticket::page))
        .route("/tickets/{id}/{action}", post(ticket::act))
        .route("/models", get(models::page))
        .route("/report", get(report::form).post(report::submit))
        .route("/engineers", get(engineers::page).post(engineers::save))
        .route("/kpis", get(kpis::page))
        .route("/admin", get(admin::overview))
        .route(
            "/admin/users",
            get(admin::users::list).post(admin::users::add),
        )
        .route("/admin/users/{id}/disable", post(admin::users::disable))
        .route("/admin/users/{id}/enable", post(admin::users::enable))
        .route(
            "/admin/users/{id}/reset-password",
            post(admin::users::reset_password),
        )
        .route(
            "/admin/keys",
            get(admin::keys::list).post(admin::keys::create),
        )
        .route("/admin/keys/{id}/revoke", post(admin::keys::revoke))
        .route("/admin/webhooks", get(admin::webhooks::page))
        .route("/admin/dead-letters", get(admin::dead_letters::page))
        .route("/admin/audit", get(admin::audit::page))
        .route("/devices/{device_id}", get(device::page))
        .route("/devices/{device_id}/self-test", post(device::self_test))
        .route(
            "/devices/{device_id}/directory",
            post(device::directory::save),
        )
        .route("/fleet", get(fleet::page))
        .route("/fleet/parts.csv", get(fleet::parts_csv))
        .route("/fleet/alarms/{id}/acknowledge", post(fleet::acknowledge))
        .route("/assets/{name}", get(assets::serve))
        .fallback(page::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::load,
        ))
        .layer(axum::middleware::map_response(page::security_headers))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state);
    // Nested at `/console/` (not `/console`) so that the home page is `/console/`:
    // axum 0.8 maps a nested `/` to the prefix exactly.
    Router::new()
        .route("/", get(|| async { Redirect::to(&format!("{PREFIX}/")) }))
        .route(
            PREFIX,
            get(|| async { Redirect::to(&format!("{PREFIX}/")) }),
        )
        .nest(&format!("{PREFIX}/"), pages)
}
