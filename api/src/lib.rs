//! The API crate: the ticket service and store, and the HTTP API.
//!
//! * [`tickets`] turns model predictions into service tickets: one active ticket per
//!   (device, component), enforced by a unique index in its own SQLite file, priority
//!   tiers with SLA response clocks, a diagnosis snapshot and a progress log. It also
//!   keeps the current risk per (device, component).
//! * [`desk`] is what a person or integration may do to a ticket, and doing it: the
//!   JSON API's handlers and the console's pages both call it.
//! * [`commands`] keeps remote commands (`self_test`) in `tickets.db`, sends them over
//!   MQTT through an injected publisher and records the devices' answers.
//! * [`access`] keeps API keys (hashed) and the audit log in `keys.db`.
//! * [`fleet`] answers fleet analytics (statistics per group, parts forecast) from an
//!   in-memory snapshot, runs the batch-alarm detector, and pre-aggregates normal
//!   ranges and comparable devices for remote diagnosis ([`FleetSummary`]).
//! * [`http`] is the axum application: tickets, devices, telemetry, dead letters,
//!   health and metrics, with one JSON error format.
//!
//! Everything here that touches SQLite is blocking; async callers use
//! `tokio::task::spawn_blocking` (the HTTP handlers do).

pub mod commands;
pub mod desk;
pub mod dispatch;
mod error;
pub mod fleet;
pub mod http;
pub mod intake;
pub mod kpis;
pub mod tickets;
pub mod webhooks;

pub use commands::{CommandPublisher, CommandRecord, CommandService, CommandStatus, ResultOutcome};
pub use domain::Role;
pub use error::{ApiError, Error, Result};
pub use fleet::FleetSummary;
pub use http::{
    router, serve, AppState, DriftReport, DriftReporter, FeatureDrift, HealthReporter, ModelDrift,
    Principal, RegionLookup,
};
pub use store::access::{self, AccessStore};
pub use tickets::{
    AssignmentInput, DeviceSignals, DiagnosisContext, EventRecord, FaultSignal, OutcomeInput,
    PerformanceQuery, PerformanceReport, RiskRecord, SlaBreach, SlaKind, TicketChange,
    TicketChangeKind, TicketConfig, TicketQuery, TicketService, TicketStats,
};
pub use webhooks::{WebhookConfig, WebhookService};
