//! Appliance fleet simulator: physics, degradation, ground truth, history files and
//! live MQTT publishing.
//!
//! A [`Fleet`] of washers and refrigerators is simulated deterministically from a
//! [`FleetConfig`] (same seed, same bytes). Components wear out with a precursor that
//! shows in the telemetry (a clogging drain pump drains slower, a worn compressor runs
//! longer), or fail suddenly; each failure is repaired a few days later. Failures and
//! repairs are the ground truth ([`GroundTruthEvent`]) that models are trained and
//! evaluated against; devices never publish it.
//!
//! - [`Fleet::advance`] returns wire messages and ground truth in event-time order.
//! - [`write_history`] writes a history (`telemetry.jsonl`, `events.jsonl`,
//!   `devices.jsonl`; the format is documented in [`history`]).
//! - [`publish_live`] publishes a fleet to an MQTT broker in scaled real time.
//!
//! Each appliance kind is a module (`washer`, `refrigerator`) describing its channels,
//! components and physics; the shared machinery (wear, failures, repairs, fault codes,
//! sequence numbers) lives in one place.

mod config;
mod device;
mod error;
mod event;
mod fleet;
pub mod history;
mod live;
mod refrigerator;
mod washer;

#[cfg(test)]
mod tests;

pub use config::FleetConfig;
pub use error::{Error, Result};
pub use event::{DeviceInfo, GroundTruthEvent, GroundTruthKind, SimEvent, WireMessage};
pub use fleet::{known_kinds, Fleet};
pub use history::{write_history, HistorySummary};
pub use live::{publish_live, LiveConfig, LiveSummary};
