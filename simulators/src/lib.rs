//! Appliance fleet simulator: physics, degradation, ground truth, history files and
//! live MQTT publishing.
//!
//! A [`Fleet`] of washers, dishwashers, refrigerators, air conditioners and water heaters
//! is simulated deterministically from a
//! [`FleetConfig`] (same seed, same bytes). Components wear out with a precursor that
//! shows in the telemetry (a clogging drain pump drains slower, a worn compressor runs
//! longer), or fail suddenly; each failure is repaired a few days later. Failures and
//! repairs are the ground truth ([`GroundTruthEvent`]) that models are trained and
//! evaluated against; devices never publish it.
//!
//! - [`Fleet::advance`] returns wire messages and ground truth in event-time order.
//! - [`write_history`] writes a history (`telemetry.jsonl`, `events.jsonl`,
//!   `devices.jsonl`; the format is documented in [`history`]) on all cores.
//!
//! Weather (region, season, a shared daily anomaly) drives the appliances; confounders
//! (sensor faults, poor installations, nuisance codes, firmware quirks) and a defective
//! production batch ([`DefectiveBatch`]) make the fleet realistic to learn from.
//! - [`publish_live`] publishes a fleet to an MQTT broker in scaled real time.
//!   [`InjectConfig`] adds fault injection (bad, duplicate, reordered, skewed,
//!   delayed and burst messages; see [`inject`]); [`bench_live`] measures its throughput.
//! - [`replay::replay`] publishes any history directory to a broker in per-device order.
//! - [`service`]: the people around the fleet (engineers, customers, visits,
//!   satisfaction) that `fixahead simulate-service` plays against fixahead's API.
//! - Both name the broker, and how to log in, with one [`BrokerTarget`].
//!
//! Each appliance kind is a module (`washer`, `dishwasher`, `refrigerator`,
//! `air_conditioner`, `water_heater`) describing its channels,
//! components and physics; the shared machinery (wear, failures, repairs, fault codes,
//! sequence numbers) lives in one place.

mod air_conditioner;
mod broker;
mod climate;
mod config;
mod device;
mod dishwasher;
mod error;
mod event;
mod fleet;
pub mod history;
pub mod inject;
mod live;
mod refrigerator;
pub mod replay;
pub mod service;
mod washer;
mod water_heater;

#[cfg(test)]
mod tests;

pub use broker::BrokerTarget;
pub use config::{DefectiveBatch, FleetConfig};
pub use error::{Error, Result};
pub use event::{
    ComponentCheck, DeviceInfo, GroundTruthEvent, GroundTruthKind, SensorFaultInfo,
    SensorFaultKind, SimEvent, WireMessage,
};
pub use fleet::{known_kinds, Fleet};
pub use history::{write_history, write_history_with_progress, HistoryProgress, HistorySummary};
pub use inject::{InjectConfig, InjectCounts};
pub use live::{bench_live, publish_live, LiveBench, LiveConfig, LiveSummary};
