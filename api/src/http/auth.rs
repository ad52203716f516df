//! Authentication (API keys), authorisation (roles -> permissions) and the audit log.
//!
//! * [`authenticate`] (on every route) reads `Authorization: Bearer <key>`, looks the
//!   key up in the [`AccessStore`] and puts the [`Principal`] (or why there is none)
//!   in the request's extensions; handlers take it with `Extension<Principal>`.
//! * [`require`] (one per route, attached where the route is registered in
//!   [`super::route_table`]) answers 401 without a valid key and 403 when the key's
//!   role lacks the route's [`Permission`].
//! * [`authenticate`] also writes the audit record of every state-changing request
//!   (POST, PUT, PATCH, DELETE) that succeeded or was refused with 403, once the
//!   response is known. A handler describes what it changed with [`AuditNote`].
//!
//! The permission table is [`grants`]: one `match`, the only place that says which
//! role may do what.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::metrics::ApiMetrics;
use crate::access::{AccessStore, AuditRecord, KeyInfo, PrincipalKind};
use crate::Error;
use domain::Role;
use store::users::UserInfo;

/// Something a route needs. Each route requires exactly one (or is public).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read tickets (`GET /api/v1/tickets...`).
    ReadTickets,
    /// Read devices, their telemetry and risk (`GET /api/v1/devices...`).
    ReadDevices,
    /// Read the dead letters.
    ReadDeadLetters,
    /// Scrape `/metrics`.
    ReadMetrics,
    /// Read the OpenAPI document and the docs page.
    ReadDocs,
    /// Move a ticket through its lifecycle. Engineers hold it too, restricted by the
    /// handler: only tickets assigned to them, only to `in_progress` or `resolved`
    /// ([`Principal::restricted_to_assigned`]).
    TransitionTickets,
    /// Assign a ticket to an engineer.
    AssignTickets,
    /// Dismiss a ticket.
    DismissTickets,
    /// Record a ticket's outcome (engineers: on tickets assigned to them).
    RecordOutcome,
    /// Run or record a remote diagnosis (engineers: on tickets assigned to them).
    Diagnose,
    /// Follow ticket events (server-sent events).
    ReadEvents,
    /// Register webhooks and read their deliveries.
    ManageWebhooks,
    /// Issue and revoke device MQTT credentials.
    ManageDevices,
    /// Create, list and revoke API keys.
    ManageKeys,
    /// Read the audit log.
    ReadAudit,
    /// Read fleet analytics: statistics, batch alarms, parts forecast.
    ReadFleet,
    /// Run the batch-alarm detector on demand.
    RunFleetDetection,
    /// Acknowledge a batch alarm with a note.
    AcknowledgeAlarms,
    /// Read model performance in production and model drift.
    ReadModels,
    /// Write devices' directory entries: serial, customer, address, location, region
    /// (docs/intake.md).
    ManageDirectory,
    /// Report a customer's problem: open or join a ticket (`POST /api/v1/tickets`).
    ReportProblems,
    /// Register engineers and edit their dispatch profiles (skills, location, hours,
    /// capacity, supervisor).
    ManageEngineers,
    /// Record a customer's satisfaction with a ticket and mark its call-back done.
    RecordSatisfaction,
    /// Read the service KPIs (`GET /api/v1/kpis`).
    ReadKpis,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 24] = [
        Permission::ReadTickets,
        Permission::ReadDevices,
        Permission::ReadDeadLetters,
        Permission::ReadMetrics,
        Permission::ReadDocs,
        Permission::TransitionTickets,
        Permission::AssignTickets,
        Permission::DismissTickets,
        Permission::RecordOutcome,
        Permission::Diagnose,
        Permission::ReadEvents,
        Permission::ManageWebhooks,
        Permission::ManageDevices,
        Permission::ManageKeys,
        Permission::ReadAudit,
        Permission::ReadFleet,
        Permission::RunFleetDetection,
        Permission::AcknowledgeAlarms,
        Permission::ReadModels,
        Permission::ManageDirectory,
        Permission::ReportProblems,
        Permission::ManageEngineers,
        Permission::RecordSatisfaction,
        Permission::ReadKpis,
    ];

    /// The roles that hold this permission.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| grants(*r, self)).collect()
    }

    /// Its name in snake case, as in the docs and the OpenAPI document.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadTickets => "read_tickets",
            Permission::ReadDevices => "read_devices",
            Permission::ReadDeadLetters => "read_dead_letters",
            Permission::ReadMetrics => "read_metrics",
            Permission::ReadDocs => "read_docs",
            Permission::TransitionTickets => "transition_tickets",
            Permission::AssignTickets => "assign_tickets",
            Permission::DismissTickets => "dismiss_tickets",
            Permission::RecordOutcome => "record_outcome",
            Permission::Diagnose => "diagnose",
            Permission::ReadEvents => "read_events",
            Permission::ManageWebhooks => "manage_webhooks",
            Permission::ManageDevices => "manage_devices",
            Permission::ManageKeys => "manage_keys",
            Permission::ReadAudit => "read_audit",
            Permission::ReadFleet => "read_fleet",
            Permission::RunFleetDetection => "run_fleet_detection",
            Permission::AcknowledgeAlarms => "acknowledge_alarms",
            Permission::ReadModels => "read_models",
            Permission::ManageDirectory => "manage_directory",
            Permission::ReportProblems => "report_problems",
            Permission::ManageEngineers => "manage_engineers",
            Permission::RecordSatisfaction => "record_satisfaction",
            Permission::ReadKpis => "read_kpis",
        }
    }
}

/// The permission table: whether `role` holds `permission`.
pub fn grants(role: Role, permission: Permission) -> bool {
    use Permission as P;
    match role {
        Role::Admin => true,
        Role::Planner => matches!(
            permission,
            P::ReadTickets
                | P::ReadDevices
                | P::ReadDeadLetters
                | P::ReadDocs
                | P::TransitionTickets
                | P::AssignTickets
                | P::DismissTickets
                | P::RecordOutcome
                | P::Diagnose
                | P::ReadEvents
                | P::ReadFleet
                | P::RunFleetDetection
                | P::AcknowledgeAlarms
                | P::ReadModels
                | P::ManageDirectory
                | P::ReportProblems
                | P::ManageEngineers
                | P::RecordSatisfaction
                | P::ReadKpis
        ),
        Role::Engineer => matches!(
            permission,
            P::ReadTickets
                | P::ReadDevices
                | P::ReadDocs
                | P::TransitionTickets
                | P::RecordOutcome
                | P::Diagnose
        ),
        Role::Integration => matches!(
            permission,
            P::ReadTickets
                | P::ReadDevices
                | P::ReadDeadLetters
                | P::ReadDocs
                | P::ReadMetrics
                | P::ReadEvents
                | P::ManageWebhooks
                | P::ReadFleet
                | P::ReadModels
                | P::ManageDirectory
                | P::ReportProblems
                | P::RecordSatisfaction
        ),
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key (`/health` only).
    Public,
    /// A valid key whose role holds the permission.
    Requires(Permission),
}

/// The caller of a request: an API key, or a person signed in to the console. In the
/// request's extensions; handlers take it with `Extension<Principal>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// A key or a person.
    pub kind: PrincipalKind,
    /// The key's or the account's id.
    pub key_id: i64,
    /// The key's name, or the person's login. Tickets are assigned to an engineer by
    /// this name, so an engineer's key and account carry the same one.
    pub name: String,
    /// How ticket logs and the audit log name a person (their display name); the
    /// key's name for a key.
    pub display_name: String,
    /// The role.
    pub role: Role,
}

impl Principal {
    /// Whether the role holds `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        grants(self.role, permission)
    }

    /// Engineers act only on the tickets assigned to them (transitions to
    /// `in_progress` or `resolved`, diagnoses, outcomes); handlers of those routes
    /// check the ticket's assignee against [`Principal::name`] when this is true.
    pub fn restricted_to_assigned(&self) -> bool {
        self.role == Role::Engineer
    }

    /// How the principal appears in ticket logs and the audit log: `name (key 7)` for
    /// a key, `李伟 (li.wei)` (display name and login) for a person.
    pub fn actor(&self) -> String {
        match self.kind {
            PrincipalKind::Key => format!("{} (key {})", self.name, self.key_id),
            PrincipalKind::User => format!("{} ({})", self.display_name, self.name),
        }
    }

    /// The audit record of a request this principal made.
    pub fn audit_record(
        &self,
        method: &str,
        path: &str,
        status: u16,
        summary: String,
    ) -> AuditRecord {
        AuditRecord {
            principal: self.kind,
            key_id: self.key_id,
            key_name: match self.kind {
                PrincipalKind::Key => self.name.clone(),
                PrincipalKind::User => self.actor(),
            },
            role: Some(self.role),
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            summary,
        }
    }
}

impl From<KeyInfo> for Principal {
    fn from(k: KeyInfo) -> Self {
        Self {
            kind: PrincipalKind::Key,
            key_id: k.id,
            display_name: k.name.clone(),
            name: k.name,
            role: k.role,
        }
    }
}

impl From<UserInfo> for Principal {
    fn from(u: UserInfo) -> Self {
        Self {
            kind: PrincipalKind::User,
            key_id: u.id,
            name: u.login,
            display_name: u.display_name,
            role: u.role,
        }
    }
}

/// Why a request has no [`Principal`] (in its extensions instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoPrincipal {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer <key>`.
    Malformed,
    /// A key that is unknown or revoked.
    Invalid,
}

impl NoPrincipal {
    fn reason(self) -> &'static str {
        match self {
            NoPrincipal::Missing => "missing",
            NoPrincipal::Malformed => "malformed",
            NoPrincipal::Invalid => "invalid",
        }
    }
}

/// A handler's one-line description of what its request changed, for the audit log
/// (put it in the response's extensions). Without one the record says method, path
/// and status.
#[derive(Clone, Debug)]
pub struct AuditNote(pub String);

/// What [`authenticate`] needs.
#[derive(Clone)]
pub(crate) struct AuthState {
    pub(crate) access: Option<AccessStore>,
    pub(crate) metrics: Arc<ApiMetrics>,
}

/// Refusal recorded by [`require`] for the audit log.
#[derive(Clone, Debug)]
struct Refused(String);

fn bearer(request: &Request) -> Result<Option<&str>, NoPrincipal> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| NoPrincipal::Malformed)?;
    let (scheme, key) = value.split_once(' ').ok_or(NoPrincipal::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
        return Err(NoPrincipal::Malformed);
    }
    Ok(Some(key.trim()))
}

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Middleware on every route: authenticates, runs the route, writes the audit record.
pub(crate) async fn authenticate(
    State(auth): State<AuthState>,
    mut request: Request,
    next: Next,
) -> Response {
    let outcome = match bearer(&request) {
        Ok(None) => Err(NoPrincipal::Missing),
        Err(e) => Err(e),
        Ok(Some(key)) => match &auth.access {
            None => Err(NoPrincipal::Invalid),
            Some(store) => {
                let (store, key) = (store.clone(), key.to_owned());
                match super::blocking(move || Ok(store.authenticate(&key)?)).await {
                    Ok(Some(info)) => Ok(Principal::from(info)),
                    Ok(None) => Err(NoPrincipal::Invalid),
                    Err(e) => return e.into_response(),
                }
            }
        },
    };
    let principal = match outcome {
        Ok(p) => {
            request.extensions_mut().insert(p.clone());
            Some(p)
        }
        Err(why) => {
            request.extensions_mut().insert(why);
            None
        }
    };
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;

    let status = response.status();
    let refused = response.extensions().get::<Refused>().cloned();
    if let (Some(p), Some(store), true) = (principal, &auth.access, changes_state(&method)) {
        if status.is_success() || refused.is_some() {
            let summary = match (refused, response.extensions().get::<AuditNote>()) {
                (Some(Refused(why)), _) => why,
                (None, Some(AuditNote(note))) => note.clone(),
                (None, None) => format!("{method} {path}: {}", status.as_u16()),
            };
            let record = p.audit_record(method.as_str(), &path, status.as_u16(), summary);
            let store = store.clone();
            if let Err(e) = super::blocking(move || Ok(store.audit(&record)?)).await {
                auth.metrics.audit_failed();
                tracing::error!(error = %e, "Could not write an audit record");
            }
        }
    }
    response
}

/// What [`require`] needs: the route's permission.
#[derive(Clone)]
pub(crate) struct Requirement {
    pub(crate) permission: Permission,
    pub(crate) metrics: Arc<ApiMetrics>,
}

/// Per-route middleware: 401 without a valid key, 403 when the role lacks the permission.
pub(crate) async fn require(
    State(req): State<Requirement>,
    request: Request,
    next: Next,
) -> Response {
    let principal = request.extensions().get::<Principal>().cloned();
    match principal {
        Some(p) if p.may(req.permission) => next.run(request).await,
        Some(p) => {
            req.metrics.auth_refused("forbidden");
            let why = format!(
                "role {} may not do this (it needs permission {}, held by: {})",
                p.role,
                req.permission.as_str(),
                req.permission
                    .roles()
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut response = Error::Forbidden(why.clone()).into_response();
            response
                .extensions_mut()
                .insert(Refused(format!("refused: {why}")));
            response
        }
        None => {
            let why = request
                .extensions()
                .get::<NoPrincipal>()
                .copied()
                .unwrap_or(NoPrincipal::Missing);
            req.metrics.auth_refused(why.reason());
            let message = match why {
                NoPrincipal::Missing => "an API key is required: send Authorization: Bearer <key>",
                NoPrincipal::Malformed => "the Authorization header must be Bearer <key>",
                NoPrincipal::Invalid => "the API key is unknown or revoked",
            };
            Error::Unauthorized(message.into()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_is_held_by_admin_and_the_table_matches_the_issue() {
        for p in Permission::ALL {
            assert!(grants(Role::Admin, p), "{p:?}");
        }
        assert!(grants(Role::Planner, Permission::DismissTickets));
        assert!(!grants(Role::Planner, Permission::ManageKeys));
        assert!(grants(Role::Engineer, Permission::RecordOutcome));
        assert!(!grants(Role::Engineer, Permission::DismissTickets));
        assert!(grants(Role::Integration, Permission::ManageWebhooks));
        assert!(!grants(Role::Integration, Permission::TransitionTickets));
        // Fleet analytics are for planning: engineers see their tickets instead.
        for r in [Role::Planner, Role::Integration] {
            assert!(grants(r, Permission::ReadFleet));
        }
        assert!(!grants(Role::Engineer, Permission::ReadFleet));
        assert!(grants(Role::Planner, Permission::RunFleetDetection));
        assert!(!grants(Role::Integration, Permission::RunFleetDetection));
        // Acknowledging an alarm takes it on: planners do, integrations only read.
        assert!(grants(Role::Planner, Permission::AcknowledgeAlarms));
        for r in [Role::Engineer, Role::Integration] {
            assert!(!grants(r, Permission::AcknowledgeAlarms));
        }
        // Satisfaction: planners and integrations (a CRM or survey tool), not engineers.
        for r in [Role::Planner, Role::Integration] {
            assert!(grants(r, Permission::RecordSatisfaction));
        }
        assert!(!grants(Role::Engineer, Permission::RecordSatisfaction));
        for r in [Role::Planner, Role::Engineer, Role::Integration] {
            assert!(!grants(r, Permission::ReadAudit));
            assert!(!grants(r, Permission::ManageKeys));
            assert!(!grants(r, Permission::ManageDevices));
        }
    }
}
