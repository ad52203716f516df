//! The API crate: the ticket service and store, and the HTTP API.
//!
//! * [`tickets`] turns model predictions into service tickets: one active ticket per
//!   (device, component), enforced by a unique index in its own SQLite file, priority
//!   tiers with SLA response clocks, a diagnosis snapshot and a progress log. It also
//!   keeps the current risk per (device, component).
//! * [`access`] keeps API keys (hashed) and the audit log in `keys.db`.
//! * [`http`] is the axum application: tickets, devices, telemetry, dead letters,
//!   health and metrics, with one JSON error format.
//!
//! Everything here that touches SQLite is blocking; async callers use
//! `tokio::task::spawn_blocking` (the HTTP handlers do).

pub mod access;
mod error;
pub mod http;
pub mod tickets;

pub use access::{AccessStore, Role};
pub use error::{ApiError, Error, Result};
pub use http::{
    router, serve, AppState, DriftReport, DriftReporter, FeatureDrift, HealthReporter,
    MetricsRenderer, ModelDrift, Principal, RegionLookup,
};
pub use tickets::{
    AssignmentInput, DeviceSignals, DiagnosisContext, EventRecord, FaultSignal, OutcomeInput,
    PerformanceQuery, PerformanceReport, RiskRecord, SlaBreach, SlaKind, TicketChange,
    TicketChangeKind, TicketConfig, TicketQuery, TicketService, TicketStats,
};
