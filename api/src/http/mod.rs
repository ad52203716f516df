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
//! | `read_devices` | `GET /api/v1/devices`, `.../{device_id}`, `.../{device_id}/telemetry`, `.../{device_id}/directory` | yes | yes | yes | yes |
//! | `read_dead_letters` | `GET /api/v1/dead-letters` | yes | yes | | yes |
//! | `read_metrics` | `GET /metrics` | yes | | | yes |
//! | `read_docs` | `GET /openapi.json`, `GET /docs` | yes | yes | yes | yes |
//! | `manage_devices` | `POST`, `DELETE /api/v1/devices/{device_id}/credentials` | yes | | | |
//! | `manage_keys` | `POST`, `GET /api/v1/keys`, `DELETE /api/v1/keys/{id}` | yes | | | |
//! | `read_audit` | `GET /api/v1/audit` | yes | | | |
//! | `read_fleet` | `GET /api/v1/fleet/stats`, `/fleet/alarms`, `/fleet/parts-forecast` | yes | yes | | yes |
//! | `run_fleet_detection` | `POST /api/v1/fleet/alarms/detect` | yes | yes | | |
//! | `acknowledge_alarms` | `POST /api/v1/fleet/alarms/{id}/acknowledge` | yes | yes | | |
//! | `read_models` | `GET /api/v1/models/performance`, `GET /api/v1/models/drift` | yes | yes | | yes |
//! | `read_kpis` | `GET /api/v1/kpis` | yes | yes | | |
//! | `transition_tickets` | `POST /api/v1/tickets/{id}/transitions` | yes | yes | assigned tickets only, to `in_progress` or `resolved` | |
//! | `assign_tickets` | `POST /api/v1/tickets/{id}/assignment` | yes | yes | | |
//! | `dismiss_tickets` | a transition to `dismissed` (checked by the transitions handler) | yes | yes | | |
//! | `record_outcome` | `POST /api/v1/tickets/{id}/outcome` | yes | yes | assigned tickets only | |
//! | `diagnose` | `GET /api/v1/devices/{device_id}/diagnosis`, `POST .../{device_id}/commands`, `GET .../{device_id}/commands/{id}` | yes | yes | devices of assigned tickets only | |
//! | `read_events` | `GET /api/v1/events` | yes | yes | | yes |
//! | `manage_webhooks` | `POST`, `GET /api/v1/webhooks`, `GET`, `DELETE /api/v1/webhooks/{id}`, `GET /api/v1/webhooks/{id}/deliveries` | yes | | | yes |
//! | `manage_directory` | `PUT /api/v1/devices/{device_id}/directory` | yes | yes | | yes |
//! | `report_problems` | `POST /api/v1/tickets` (a customer report; docs/intake.md) | yes | yes | | yes |
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
//! ## Intake: `POST /api/v1/tickets` (report_problems), `PUT`, `GET /api/v1/devices/{device_id}/directory`
//!
//! A customer report joins the device's active ticket for the problem (200) or opens a
//! reactive ticket (201), pre-judged from the device's data; the directory maps serials
//! and customer references to devices. docs/intake.md; the rules are in
//! [`crate::intake`], shared with the console.
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
//! ## Fleet: `GET /api/v1/fleet/stats`, `/fleet/alarms`, `/fleet/parts-forecast`, `POST /api/v1/fleet/alarms/detect`, `POST /api/v1/fleet/alarms/{id}/acknowledge`
//! Statistics per group (`group_by=model|fw|region|batch|type|none`, `from`, `to`,
//! default the last 30 days), batch alarms (`status`, `limit`, `before`), the parts
//! forecast (`days` 1-365, default 30; `group_by=none|region|model|type|batch`), an
//! on-demand detector run, and acknowledging an active alarm with a note (once;
//! `acknowledge_alarms`, admins and planners). They answer from an in-memory snapshot of the registry,
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
//! ## `GET /api/v1/kpis` (admin, planner)
//! The service KPIs of the tickets opened in a period (`from`, `to`: default the 30
//! days up to now, at most 366 days), overall, per `group_by` (`region`, `engineer`,
//! `device_type`, `priority`, `source`) and per `bucket` (`day`, `week`). Definitions:
//! [`crate::kpis`] and docs/kpis.md. 400 on a bad parameter, `from > to` or a longer
//! period.
//!
//! ## `GET /openapi.json`, `GET /docs` (any role)
//! The OpenAPI document and the docs page (above).

mod active_models;
mod audit;
pub mod auth;
mod devices;
mod docs;
mod engineers;
mod error;
mod extract;
mod fleet;
mod intake;
mod keys;
mod kpis;
pub(crate) mod metrics;
mod models;
mod routes;
mod satisfaction;
mod state;
mod system;
mod tickets;
mod webhooks;

use crate::{Error, Result};

pub use auth::{AuditNote, Principal};
pub use models::{DriftReport, DriftReporter, FeatureDrift, ModelDrift, RegionLookup};
pub use routes::{openapi, route_list, router, serve, RouteInfo};
pub use state::{AppState, HealthReporter};
pub use tickets::{event_stream, last_event_id};

/// Default limit of a request body, in bytes (`[http] max_body_bytes`).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

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
