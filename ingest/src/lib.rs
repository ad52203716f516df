//! Ingest: MQTT in, the hot store out.
//!
//! * [`broker`] runs the embedded MQTT broker (rumqttd) for the all-in-one mode, and
//!   checks devices' logins against [`store::credentials`].
//! * [`source`] connects to a broker (embedded or external) with rumqttc: QoS 1,
//!   persistent session, manual acknowledgements.
//! * [`pipeline`] batches received messages, decodes and validates them
//!   ([`domain::decode`]), commits valid ones to the hot store
//!   ([`store::hot::HotStore`]) and rejected ones to its dead-letter table in one
//!   transaction, and only then acknowledges them to the broker.
//! * [`metrics`] counts what happened, for `/metrics`.
//! * [`publisher`] publishes fixahead's own commands to devices (QoS 1, its own
//!   connection).
//! * [`archive`] tails the hot store into InfluxDB 2 (optional, `[archive.influxdb]`).

pub mod archive;
pub mod broker;
mod error;
pub mod metrics;
pub mod pipeline;
pub mod publisher;
pub mod source;

pub use error::{Error, Result};
