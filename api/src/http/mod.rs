//! The HTTP API (axum): JSON over HTTP/1.1, version prefix `/api/v1`.
//!
//! Build the application with [`router`] from an [`AppState`] and run it with
//! [`serve`]. Every handler that reads SQLite runs on tokio's blocking pool.
//!
//! # Conventions
//!
//! * Times in responses are RFC 3339 strings in UTC with milliseconds
//!   (`2026-11-24T06:00:00.000Z`). Time parameters (`from`, `to`) accept RFC 3339 (`2026-11-24T06:00:00Z`) or integer epoch milliseconds.
//! * Lists are paged with a cursor: each list response carries `next`, the value to
//!   pass as the cursor parameter (`after` or `before`) for the next page, or `null`
//!   on the last page. `limit` must be between 1 and the endpoint's maximum.
//! * Unknown or malformed query parameters are rejected with 400, never ignored.
//! * Every error has the body `{"error": {"code": "...", "message": "..."}}` (plus
//!   `"field"` when a request body's field is at fault) with `code` one of:
//!
//!   | status | code | when |
//!   |---|---|---|
//!   | 400 | `bad_request` | malformed or unknown parameter, invalid device id, non-numeric ticket id, malformed JSON body |
//!   | 401 | `unauthorized` | no valid API key |
//!   | 403 | `forbidden` | the key's role may not use this route |
//!   | 404 | `not_found` | unknown ticket, device or route |
//!   | 405 | `method_not_allowed` | the route exists but not for this method |
//!   | 409 | `conflict` | the request contradicts the current state |
//!   | 413 | `payload_too_large` | the body is over `[http] max_body_bytes` |
//!   | 422 | `unprocessable` | a body's field is missing, unknown, mistyped or out of range; `field` names it |
//!   | 503 | `unavailable` | a store is busy; retry later |
//!   | 500 | `internal` | anything else; details are logged server-side, never sent |
//!
//! # Authentication and roles
//!
//! Every route but `GET /health` needs an API key, sent as `Authorization: Bearer <key>`.
//! Without a valid key (none, not `Bearer`, unknown or revoked) the answer is 401 with a
//! `WWW-Authenticate: Bearer` header; with a key whose role lacks the route's permission
//! it is 403. Keys come from `fixahead keys create --role ROLE` or `POST /api/v1/keys`;
//! the first admin key from `FIXAHEAD_ADMIN_KEY` or generated at the first start
//! (docs/operations.md, "API keys").
//!
//! | permission | routes | admin | planner | engineer | integration |
//! |---|---|---|---|---|---|
//! | `read_tickets` | `GET /api/v1/tickets`, `GET /api/v1/tickets/{id}` | yes | yes | yes | yes |
//! | `read_devices` | `GET /api/v1/devices`, `.../{device_id}`, `.../{device_id}/telemetry` | yes | yes | yes | yes |
//! | `read_dead_letters` | `GET /api/v1/dead-letters` | yes | yes | | yes |
//! | `read_metrics` | `GET /metrics` | yes | | | yes |
//! | `read_docs` | `GET /openapi.json`, `GET /docs` | yes | yes | yes | yes |
//! | `manage_devices` | `POST`, `DELETE /api/v1/devices/{device_id}/credentials` | yes | | | |
//! | `manage_keys` | `POST`, `GET /api/v1/keys`, `DELETE /api/v1/keys/{id}` | yes | | | |
//! | `read_audit` | `GET /api/v1/audit` | yes | | | |
//! | `read_fleet` | `GET /api/v1/fleet/stats`, `/fleet/alarms`, `/fleet/parts-forecast` | yes | yes | | yes |
//! | `run_fleet_detection` | `POST /api/v1/fleet/alarms/detect` | yes | yes | | |
//! | `read_models` | `GET /api/v1/models/performance`, `GET /api/v1/models/drift` | yes | yes | | yes |
//! | `transition_tickets` | `POST /api/v1/tickets/{id}/transitions` | yes | yes | assigned tickets only, to `in_progress` or `resolved` | |
//! | `assign_tickets` | `POST /api/v1/tickets/{id}/assignment` | yes | yes | | |
//! | `dismiss_tickets` | a transition to `dismissed` (checked by the transitions handler) | yes | yes | | |
//! | `record_outcome` | `POST /api/v1/tickets/{id}/outcome` | yes | yes | assigned tickets only | |
//! | `diagnose` | `GET /api/v1/devices/{device_id}/diagnosis`, `POST .../{device_id}/commands`, `GET .../{device_id}/commands/{id}` | yes | yes | devices of assigned tickets only | |
//! | `read_events` | `GET /api/v1/events` | yes | yes | | yes |
//! | `manage_webhooks` | `POST`, `GET /api/v1/webhooks`, `GET`, `DELETE /api/v1/webhooks/{id}`, `GET /api/v1/webhooks/{id}/deliveries` | yes | | | yes |
//!
//! The table is `api::http::auth::grants`; each route declares its permission where it is
//! registered, and the OpenAPI document names it on every operation. "Assigned tickets
//! only" is enforced by those handlers: an engineer acts on a ticket assigned to them.
//!
//! # Request bodies
//!
//! JSON bodies need `Content-Type: application/json` and are at most `[http]
//! max_body_bytes` (64 KiB by default; larger: 413 `payload_too_large`). Malformed JSON is
//! a 400; valid JSON that does not fit (a missing, unknown, mistyped or out-of-range
//! field) is a 422 `unprocessable` whose `error.field` names the field (`name`,
//! `items[2].id`).
//!
//! # OpenAPI and the docs page
//!
//! `GET /openapi.json` is the OpenAPI 3.1 document, generated from the handlers and the
//! route table (every route, its parameters, bodies, responses, the bearer scheme and each
//! operation's permission). `GET /docs` is a self-contained page (no external assets)
//! listing every operation with a form to send it; the page asks for a key and keeps it
//! in the browser tab's session storage. Both need a key (any role), like every route but
//! `/health`: open the page with a browser extension that adds the `Authorization`
//! header, or read the document with `curl -H "Authorization: Bearer $KEY"
//! localhost:8080/openapi.json`.
//!
//!
//! # Endpoints
//!
//! ## `GET /health`
//! 200 `{"status": "ok", "tickets": {"active": 3}, ...}`; the process adds its own
//! fields (ingest counters, active model versions) at the top level. 503 with
//! `"status": "unavailable"` when the ticket store cannot be read.
//!
//! ## `GET /metrics` (admin, integration)
//! Prometheus text format: the process's metrics followed by the API's own:
//! `fixahead_http_request_duration_seconds{route,class}` (histogram),
//! `fixahead_api_auth_refused_total{reason}`, `fixahead_api_audit_failures_total`,
//! `fixahead_api_requests_total{class="2xx"|"3xx"|"4xx"|"5xx"}`,
//! `fixahead_tickets_opened_total`, `fixahead_tickets_updated_total`,
//! `fixahead_ticket_predictions_total`, `fixahead_prediction_flags_total` (counters
//! since start) and
//! `fixahead_tickets_active` (gauge); the `run` process adds the webhook counters
//! (`fixahead_webhook_failures_total` and others, docs/api.md) and the drift gauges
//! `fixahead_model_drift_psi{device_type,feature}`, `fixahead_model_drift_samples` and
//! `fixahead_model_drift_status{device_type,status}`.
//!
//! ## `GET /api/v1/tickets`
//! Tickets, newest first (descending id). Parameters, all optional:
//!
//! | name | meaning |
//! |---|---|
//! | `status` | a status (`open`, `acknowledged`, `scheduled`, `in_progress`, `resolved`, `closed`, `dismissed`), `active` (the first four), or a comma-separated list |
//! | `device_id` | only this device's tickets |
//! | `component` | only tickets for this component |
//! | `priority` | `urgent`, `important` or `normal` |
//! | `limit` | page size, default 100, at most 1000 |
//! | `after` | cursor: the `next` of the previous page |
//!
//! 200 `{"tickets": [Ticket...], "next": 41 | null}`. A ticket:
//! ```json
//! {"id": 42, "number": "20261124000042", "device_id": "wm-0001", "device_type": "washer",
//!  "component": "drain_pump", "source": "proactive", "status": "open",
//!  "priority": "important", "risk": 0.81, "peak_risk": 0.84, "model_version": "washer-v3",
//!  "opened_at": "2026-11-24T06:00:00.000Z", "updated_at": "2026-11-24T07:00:00.000Z", "respond_by": "2026-11-24T10:00:00.000Z",
//!  "signals": 7,
//!  "diagnosis": {"top_features": [{"feature": "drain_time_s.ewma_fast", "value": 41.0,
//!                                  "contribution": 1.2, "normal_range": [10.0, 20.0]}],
//!                "recent_faults": [{"code": "E21", "ts": "2026-11-24T03:13:20.000Z",
//!                                   "title": "Drain timeout", "severity": "major"}],
//!                "likely_parts": ["drain pump assembly", "pump filter"],
//!                "remote_checks": ["Ask the customer to clean the pump filter"]},
//!  "log": [{"at": "2026-11-24T06:00:00.000Z", "actor": "fixahead", "action": "opened",
//!           "note": "Risk 0.81 (threshold 0.60) for drain_pump by model washer-v3; priority important"}]}
//! ```
//!
//! ## `GET /api/v1/tickets/{id}`
//! One ticket (as above) with its diagnosis and full log. 400 if `id` is not an
//! integer, 404 if there is no such ticket.
//!
//! ## Ticket lifecycle, `POST /api/v1/tickets/{id}/transitions`, `.../assignment`, `.../outcome`, `GET /api/v1/events`
//! See docs/api.md: the lifecycle table (`domain::TicketStatus::transitions`), bodies,
//! the 409 body with `allowed`, 422 for bodies that do not fit, and the SSE format.
//!
//! ## Webhooks: `POST`, `GET /api/v1/webhooks`, `GET`, `DELETE /api/v1/webhooks/{id}`, `GET /api/v1/webhooks/{id}/deliveries` (admin, integration)
//! Register a URL, a secret and event types; deliveries are signed (HMAC-SHA256),
//! retried with backoff and at least once ([`crate::webhooks`]). Bodies, headers and
//! the delivery record: docs/api.md, "Webhooks".
//!
//! ## `GET /api/v1/devices`
//! Registered devices ordered by id. Parameters: `type` (device type), `limit`
//! (default 100, at most 1000), `after` (cursor: a device id).
//! 200 `{"devices": [Device...], "next": "wm-0100" | null}`, where a device is
//! `{"device_id", "type", "model", "fw", "batch", "region", "first_seen", "last_seen",
//! "last_event_ts", "messages", "online", "status_at"}` (`fw`, `batch`, `region`: the
//! latest the device reported, `null` if it never did).
//!
//! ## `GET /api/v1/devices/{device_id}`
//! The device's registry fields (as in the list) and:
//! * `latest_readings`: channel -> `{"value", "ts", "unit", "min", "max"}` (unit and
//!   physical range from the profile; `null` for channels the profile does not know);
//! * `risk`: the current risk per component, `[{"component", "risk", "threshold",
//!   "flagged", "model_version", "ts", "top_features", ...}]`;
//! * `open_tickets`: `[{"id", "number", "component", "status", "priority", "risk",
//!   "respond_by"}]` (active tickets);
//! * `recent_faults`: the newest 20 fault messages, `[{"code", "state", "ts", "seq",
//!   "title", "severity", "component"}]` with catalogue text when known.
//!
//! 400 if the id is not 1-64 characters of `[A-Za-z0-9_-]`, 404 if unknown.
//!
//! ## `GET /api/v1/devices/{device_id}/telemetry`
//! Telemetry with `from <= ts < to`, oldest first. Parameters: `from`, `to` (RFC 3339
//! or epoch ms), `limit` (default 100, at most 10000).
//! 200 `{"device_id": "wm-0001", "telemetry": [{"device_id", "seq", "ts", "received_at",
//! "readings": {"drain_time_s": 12.5, ...}}...]}`. 400 on a malformed parameter or
//! `from > to`, 404 for an unknown device.
//!
//! ## `GET /api/v1/devices/{device_id}/diagnosis` (diagnose)
//! Everything an engineer checks before a visit. Permission `diagnose` (admin, planner;
//! an engineer only while one of the device's active tickets is assigned to them, else
//! 403), not `read_devices`: it is the engineer's working view, and integrations have
//! the device detail. 200:
//! * `device`: the registry fields (as in `GET /api/v1/devices/{device_id}`, with
//!   `batch` and `region`);
//! * `channels`: every channel of the profile (and unknown ones the device sent),
//!   `[{"channel", "unit", "latest", "latest_ts", "normal_range", "position", "trend"}]`.
//!   `normal_range` is `{"p5", "p50", "p95", "devices", "computed_at"}`: percentiles of
//!   the latest value of every device of the same type and model, from the fleet summary
//!   (refreshed every `[diagnosis] refresh_interval_s`; `null` until it has the channel).
//!   `position` is `low` (under p5), `normal`, `high` (over p95) or `unknown`. `trend` is
//!   `{"day_mean", "week_mean", "prior_week_mean", "slope_per_day", "samples_day",
//!   "samples_week"}` over the device's own clock: the day and week before its newest
//!   event, and the week before that (slope: least squares over the last week);
//! * `faults`: the newest 50 fault messages with catalogue text (as `recent_faults`);
//! * `open_tickets`: as in the device detail;
//! * `risk`: per component `{"component", "title", "risk", "threshold", "flagged",
//!   "model_version", "ts", "explanation", "top_features"}`; `explanation` puts the top
//!   features in words (`drain_time_s.ewma_fast = 41.000 (fleet normal 10.000-20.000)
//!   raises the risk by 1.20`);
//! * `comparable`: `{"model", "batch", "devices", "devices_with_tickets", "components":
//!   [{"component", "tickets", "active", "confirmed_failures", "no_fault_found"}],
//!   "computed_at"}`: devices of the same type, model and batch (devices without a batch:
//!   the model) and what their tickets came to; `null` until the summary has the device;
//! * `likely_parts`: `[{"component", "part", "reference", "reasons"}]` for suspect
//!   components (flagged or at half their threshold, a raised catalogue fault code, an
//!   active ticket), highest risk first: the parts the fault catalogue names for the
//!   raised codes, then the component's other parts, with the catalogue reference from
//!   the profile (`parts`, docs/profiles.md);
//! * `recent_commands`: the newest 5 commands (as below).
//!
//! 400 for an invalid id, 404 for an unknown device.
//!
//! ## `POST /api/v1/devices/{device_id}/commands` (diagnose)
//! Body `{"command": "self_test"}` (the only command; anything else is 422 with `field`
//! `command`). Publishes the command on `fixahead/v1/{device_id}/cmd` (QoS 1, not
//! retained; docs/protocol.md, "Commands") and answers 202 with the command and a
//! `Location` header:
//! ```json
//! {"id": 42, "device_id": "wm-0001", "command": "self_test", "status": "pending",
//!  "created_at": "2026-11-25T09:00:00.000Z", "deadline": "2026-11-25T09:00:30.000Z",
//!  "answered_at": null, "result": null, "error": null, "late": false,
//!  "requested_by": "eng-anna"}
//! ```
//! `status` is `failed` at once if the publish could not even be queued. The device must
//! have reported (404 otherwise); engineers: as for the diagnosis (403). Audited.
//!
//! ## `GET /api/v1/devices/{device_id}/commands/{id}` (diagnose)
//! The command: `status` `pending` (sent, no answer yet, deadline ahead), `answered` (the
//! device's `report` is in `result`, `answered_at` is when fixahead received it),
//! `failed` (the device answered `error`: `error` says why; or the publish failed) or
//! `timed_out` (no answer by `deadline`, `[commands] timeout_s` after sending, as for a
//! device that is offline). A late answer is kept (`result`, `answered_at`, `"late":
//! true`) while the status stays `timed_out`. The deadline is checked when the command is
//! read and every second in the background, by the same rule. 404 if the device has no
//! command with this id, 400 for a non-integer id.
//!
//! ## `POST /api/v1/devices/{device_id}/credentials`
//! Issues MQTT credentials for the device (which need not have reported yet): the
//! username is the device id, the password 32 generated characters, returned in this
//! response only (`Cache-Control: no-store`); fixahead keeps its hash in `devices.db`.
//! 201 `{"device_id", "username", "password", "issued_at"}`. 409 if the device already
//! has credentials, unless `rotate=true`, which replaces them. Admin keys only.
//!
//! ## `DELETE /api/v1/devices/{device_id}/credentials`
//! Revokes them: 204, or 404 if the device has none. New connections with them are
//! refused; a connection already open stays open until it ends.
//!
//! ## `GET /api/v1/dead-letters`
//! Rejected messages, newest first. Parameters: `limit` (default 100, at most 1000),
//! `before` (cursor: a dead-letter id).
//! 200 `{"dead_letters": [{"id", "received_at", "topic", "device_id", "reason",
//! "detail", "payload", "payload_bytes", "truncated"}...], "next": 17 | null}`.
//!
//! ## `POST /api/v1/keys` (admin)
//! Body `{"role": "admin" | "planner" | "engineer" | "integration", "name": "1-100
//! characters"}`. 201 `{"key": "fxa_...", "id", "role", "name", "created_at",
//! "revoked_at": null}` with `Cache-Control: no-store`: the key is shown only here.
//!
//! ## `GET /api/v1/keys` (admin)
//! 200 `{"keys": [{"id", "role", "name", "created_at", "revoked_at"}...]}`, every key,
//! oldest first, never a secret (keys are few: no paging).
//!
//! ## `DELETE /api/v1/keys/{id}` (admin)
//! Revokes the key from the next request: 204; 404 if there is no valid key with this id;
//! 409 for the last valid admin key (create another first).
//!
//! ## `GET /api/v1/audit` (admin)
//! Every POST, PUT, PATCH or DELETE that succeeded or was refused with 403, newest first.
//! Parameters: `limit` (default 100, at most 1000), `before` (cursor: a record id).
//! 200 `{"audit": [{"id", "at", "key_id", "key_name", "role", "method", "path", "status",
//! "summary"}...], "next": 17 | null}`.
//!
//! ## Fleet: `GET /api/v1/fleet/stats`, `/fleet/alarms`, `/fleet/parts-forecast`, `POST /api/v1/fleet/alarms/detect`
//! Statistics per group (`group_by=model|fw|region|batch|type|none`, `from`, `to`,
//! default the last 30 days), batch alarms (`status`, `limit`, `before`), the parts
//! forecast (`days` 1-365, default 30; `group_by=none|region|model|type|batch`) and
//! an on-demand detector run. They answer from an in-memory snapshot of the registry,
//! risks and tickets (`crate::fleet`), refreshed by `fixahead run` every `[fleet]
//! refresh_interval`. An unknown `group_by` is a 400 naming the parameter. Engineers
//! hold no fleet permission: they work from their tickets. A new alarm writes a
//! `fleet.batch_alarm` event. Bodies: docs/api.md; method: docs/fleet.md.
//! ## `GET /api/v1/models/performance` (admin, planner, integration)
//! Model performance in production from ticket outcomes, one row per (model version,
//! device type, component, region) plus `totals`: flags, resolved, confirmed,
//! `precision` (confirmed / resolved flags), dismissed and `dismissed_share`, caught,
//! late and missed failures with `recall`, `lead_time` of caught failures (median, mean,
//! p10 days), repairs and repeat failures within 30 days. Parameters: `from`, `to`
//! (tickets opened in the period), `model_version`, `device_type`, `component`,
//! `region`. Definitions: [`crate::tickets::performance`]; the service keeps every
//! ticket's facts in memory, refreshed from the covering index `tickets_performance` by
//! change revision, and keeps each report until a ticket changes. 400 on a bad
//! parameter or `from > to`.
//!
//! ## `GET /api/v1/models/drift` (admin, planner, integration)
//! Per device type with a scoring model: the population stability index of each
//! feature's recent window against the training data stored in the artefact, status
//! `ok` / `watch` (>= 0.1) / `drift` (>= 0.25) / `insufficient_data`, the model's worst
//! status (or `no_baseline`), sample counts and the window. Parameters: `device_type`,
//! `status`. The process supplies it ([`AppState::with_drift`]); without one the
//! report has no models.
//!
//! ## `GET /openapi.json`, `GET /docs` (any role)
//! The OpenAPI document and the docs page (above).

mod audit;
pub mod auth;
mod devices;
mod docs;
mod error;
mod extract;
mod fleet;
mod keys;
mod metrics;
mod models;
mod system;
mod tickets;
mod webhooks;

use std::future::Future;
use std::sync::Arc;

use axum::http::Method;
use axum::Router;
use domain::ProfileSet;
use store::hot::StoreReader;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::access::AccessStore;
use crate::fleet::{Fleet, FleetSettings};
use crate::tickets::TicketService;
use crate::{Error, Result};
use auth::{Access, Permission};
use metrics::ApiMetrics;

pub use auth::{AuditNote, Principal};
pub use models::{DriftReport, DriftReporter, FeatureDrift, ModelDrift, RegionLookup};

/// Default limit of a request body, in bytes (`[http] max_body_bytes`).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Renders the process's metrics in the Prometheus text format.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// Returns extra health information (ingest counters, active model versions) as a
/// JSON object whose fields are merged into the `/health` response.
pub type HealthReporter = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What the handlers share. Cheap to clone.
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let data = std::path::Path::new("data");
/// let tickets = api::TicketService::open(&data.join("tickets.db"), api::TicketConfig::default())?;
/// let store = store::hot::StoreReader::open(&data.join("hot.db"))?;
/// let state = api::AppState::new(
///     tickets,
///     store,
///     domain::ProfileSet::builtin(),
///     Arc::new(|| "# the process's own metrics\n".to_owned()),
///     Arc::new(|| serde_json::json!({"ingest": {"messages_total": 0}})),
/// );
/// let app: axum::Router = api::router(state);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AppState {
    tickets: TicketService,
    store: StoreReader,
    profiles: Arc<ProfileSet>,
    metrics: MetricsRenderer,
    health: HealthReporter,
    api_metrics: Arc<ApiMetrics>,
    credentials: Option<store::credentials::CredentialStore>,
    /// Set to `true` by [`AppState::close_streams`]: open event streams end.
    streams_closed: Arc<tokio::sync::watch::Sender<bool>>,
    access: Option<AccessStore>,
    body_limit: usize,
    webhooks: Option<crate::webhooks::WebhookService>,
    commands: Option<crate::commands::CommandService>,
    summary: Option<crate::fleet::FleetSummary>,
    fleet: Fleet,
    /// Device regions for the performance report (default: none, assignment regions).
    regions: RegionLookup,
    /// The drift of the active models, when the process scores.
    drift: Option<DriftReporter>,
}

impl AppState {
    /// The handlers' state:
    /// * `tickets`: the ticket service;
    /// * `store`: a reader of the ingest hot store;
    /// * `profiles`: device profiles (a `ProfileSet` or an `Arc` of one);
    /// * `metrics`: renders the process's metrics in the Prometheus text format;
    ///   `/metrics` serves it followed by the API's own metrics;
    /// * `health`: extra health information; the fields of the JSON object it returns
    ///   are merged into `/health` (`status` excepted; a non-object value appears under
    ///   `details`, `null` adds nothing).
    ///
    /// Both functions are called on the blocking pool, so they may read SQLite.
    pub fn new(
        tickets: TicketService,
        store: StoreReader,
        profiles: impl Into<Arc<ProfileSet>>,
        metrics: MetricsRenderer,
        health: HealthReporter,
    ) -> Self {
        let profiles: Arc<ProfileSet> = profiles.into();
        let fleet = Fleet::new(
            store.clone(),
            tickets.clone(),
            Arc::clone(&profiles),
            FleetSettings::default(),
        );
        Self {
            tickets,
            store,
            profiles,
            metrics,
            health,
            api_metrics: Arc::default(),
            credentials: None,
            streams_closed: Arc::new(tokio::sync::watch::Sender::new(false)),
            access: None,
            body_limit: DEFAULT_BODY_LIMIT,
            webhooks: None,
            commands: None,
            summary: None,
            fleet,
            regions: Arc::new(crate::tickets::AssignmentRegions),
            drift: None,
        }
    }

    /// Fleet analytics with `settings` (default [`FleetSettings::default`]), reading
    /// the hot store through `store`: a reader of its own, so that loading a snapshot
    /// (the whole registry) never holds up the device endpoints. Without this call they
    /// share the API's reader.
    pub fn with_fleet(mut self, settings: FleetSettings, store: StoreReader) -> Self {
        self.fleet = Fleet::new(
            store,
            self.tickets.clone(),
            Arc::clone(&self.profiles),
            settings,
        );
        self
    }

    /// Fleet analytics: the snapshot the fleet endpoints answer from and the
    /// batch-alarm detector. `fixahead run` refreshes and runs them periodically.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Serves `GET /api/v1/models/drift` from `reporter` (called on the blocking pool).
    /// Without it the endpoint answers an empty report.
    pub fn with_drift(mut self, reporter: DriftReporter) -> Self {
        self.drift = Some(reporter);
        self
    }

    /// Takes each device's region from `regions` (the device registry) in the
    /// performance report; tickets of devices without one fall back to their
    /// assignment region.
    pub fn with_regions(mut self, regions: RegionLookup) -> Self {
        self.regions = regions;
        self
    }

    /// Checks API keys against `store` and writes the audit log to it. Without it no
    /// key is valid: every route but `/health` answers 401.
    pub fn with_access(mut self, store: AccessStore) -> Self {
        self.access = Some(store);
        self
    }

    /// Refuses request bodies over `bytes` with 413 (default [`DEFAULT_BODY_LIMIT`]).
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Serves `POST`/`DELETE /api/v1/devices/{device_id}/credentials` from `store`.
    /// Without it those endpoints answer 404.
    pub fn with_credentials(mut self, store: store::credentials::CredentialStore) -> Self {
        self.credentials = Some(store);
        self
    }

    /// Serves `/api/v1/webhooks` from `service` (the `run` process also runs its
    /// dispatcher, [`crate::webhooks::run`]). Without it those endpoints answer 404.
    pub fn with_webhooks(mut self, service: crate::webhooks::WebhookService) -> Self {
        self.webhooks = Some(service);
        self
    }

    /// Sends and tracks device commands (`POST`/`GET .../commands`). Without it those
    /// endpoints answer 404.
    pub fn with_commands(mut self, commands: crate::commands::CommandService) -> Self {
        self.commands = Some(commands);
        self
    }

    /// Reads normal ranges and comparable devices for `GET .../diagnosis` from
    /// `fleet`. Without it the diagnosis has no ranges and no comparison.
    pub fn with_fleet_summary(mut self, summary: crate::fleet::FleetSummary) -> Self {
        self.summary = Some(summary);
        self
    }

    /// The ticket service.
    pub fn tickets(&self) -> &TicketService {
        &self.tickets
    }

    /// Ends every open `GET /api/v1/events` stream (and those opened later). Call it
    /// when shutting down: graceful shutdown waits for open responses, and an event
    /// stream never ends by itself.
    pub fn close_streams(&self) {
        self.streams_closed.send_replace(true);
    }
}

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
        (Access::Requires(P::ReadEvents), routes!(tickets::events)),
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
            Access::Requires(P::ReadModels),
            routes!(models::performance),
        ),
        (Access::Requires(P::ReadModels), routes!(models::drift)),
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
/// requests finish.
pub async fn serve<F>(listener: tokio::net::TcpListener, router: Router, shutdown: F) -> Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::Io {
            context: "serving HTTP".into(),
            source,
        })
}

/// Runs blocking work (SQLite) on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(format!("blocking task: {e}")))?
}

/// Parses an integer id from a path (`what` names it in the 400: "ticket id").
fn path_id(what: &str, raw: &str) -> Result<i64> {
    raw.parse().map_err(|_| {
        let shown: String = raw.chars().take(64).collect();
        Error::BadRequest(format!("{what} {shown:?} is not an integer"))
    })
}

/// Ends a page read with `limit + 1` rows: keeps the first `limit` and returns the
/// cursor of the next page (the key of the last row kept), or `None` on the last page.
fn next_cursor<T, K>(rows: &mut Vec<T>, limit: usize, key: impl Fn(&T) -> K) -> Option<K> {
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(key)
    } else {
        None
    }
}

/// Checks a `limit` parameter: `default` when absent, 1..=`max` otherwise.
fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Error::BadRequest(format!(
            "limit {n} is out of range: expected 1 to {max}"
        ))),
    }
}
