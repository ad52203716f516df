//! Ingest: MQTT in, the hot store out.
//!
//! * [`broker`] runs the embedded MQTT broker (rumqttd) for the all-in-one mode.
//! * [`source`] connects to a broker (embedded or external) with rumqttc: QoS 1,
//!   persistent session, manual acknowledgements.
//! * [`pipeline`] batches received messages, decodes and validates them
//!   ([`domain::decode`]), commits valid ones to the [`store`] and rejected ones to its
//!   dead-letter table in one transaction, and only then acknowledges them to the broker.
//! * [`store`] is the SQLite hot store: telemetry, faults, the device registry and
//!   dead letters, with a writer ([`store::HotStore`]) and a reader ([`store::StoreReader`]).
//! * [`credentials`] keeps device credentials (`devices.db`, hashes in Mosquitto's
//!   `$7$` format) for the embedded broker, and exports them for Mosquitto.
//! * [`metrics`] counts what happened, for `/metrics`.
//! * [`archive`] tails the hot store into InfluxDB 2 (optional, `[archive.influxdb]`).

pub mod archive;
pub mod broker;
pub mod credentials;
mod error;
pub mod metrics;
pub mod pipeline;
pub mod publisher;
pub mod source;
pub mod store;

pub use error::{Error, Result};
