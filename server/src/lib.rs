//! The fixahead process and its commands.
//!
//! * [`settings`]: the configuration file and the flags, built once into
//!   [`Settings`].
//! * [`app`]: what `run` and `demo` start: the stores, the broker (embedded or
//!   external), the pipeline (MQTT source -> ingest writer -> scoring stage), the HTTP
//!   API and the periodic tasks, with a [`app::Running`] handle to stop them.
//! * [`scoring`]: the stage between ingest and tickets (predictions and raised fault
//!   codes in, tickets out).
//! * [`feedback`]: `train --from-store`, the ticket outcomes turned into labels.
//! * [`tasks`]: the periodic tasks (SLA clocks, audit retention, fleet analytics, the
//!   fleet summary, command deadlines, model reloads).
//! * [`service_sim`]: the driver of `simulate-service` (and of `demo`'s service
//!   world): the service world playing against the public API.
//! * [`insight`]: the drift watch and the device regions as the API takes them.
//! * [`clock`]: the service clock (wall, scaled for `demo`, manual for
//!   `simulate-service`).
//! * [`admin_key`]: the first admin API key.
//! * [`cli`] and [`commands`]: the product's commands (`run`, `demo`, `train`, `eval`,
//!   `predict`, `simulate`, `replay`, `keys`, `devices`) and their arguments; the
//!   binary parses and dispatches.

pub mod admin_key;
pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
mod error;
pub mod feedback;
pub mod insight;
pub mod scoring;
pub mod service_sim;
pub mod settings;
pub mod tasks;

pub use error::{Context, Error, Result};
pub use settings::Settings;

/// The wall clock as a [`domain::Timestamp`].
pub fn now() -> domain::Timestamp {
    domain::Timestamp(chrono::Utc::now().timestamp_millis())
}
