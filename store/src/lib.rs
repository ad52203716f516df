//! fixahead's system of record: every file of the data directory that holds state,
//! behind typed handles that speak the domain's types.
//!
//! * [`hot`]: `hot.db`, the hot store: telemetry, faults, the device registry and
//!   dead letters. One writer ([`hot::HotStore`], the ingest pipeline), any number of
//!   readers ([`hot::StoreReader`]).
//! * [`access`]: `keys.db`, the HTTP API's keys (SHA-256 hashes with their
//!   [`domain::Role`]) and its audit log.
//! * [`users`]: also in `keys.db`, the people who sign in to the console (argon2id
//!   password hashes), their sessions and failed sign-ins.
//! * [`engineers`]: also in `keys.db`, the engineers' directory dispatch ranks by
//!   (skills, location, working hours, capacity, supervisor).
//! * [`credentials`]: `devices.db`, device credentials (Mosquitto's `$7$` hashes),
//!   and their export as Mosquitto password and ACL files.
//! * [`tickets`]: `tickets.db`, the after-sales record: tickets and their logs, the
//!   current risk per (device, component), events, webhook deliveries, commands and
//!   fleet analytics. [`tickets::TicketDb`] hands out [`tickets::Tables`] inside one
//!   transaction ([`tickets::TicketDb::write`]); the rules live in the api crate.
//!
//! [`sqlite`](crate::sqlite) (private) is the one helper every store opens its files
//! with: flags, busy timeout, WAL and durability, schema versions and upgrades.
//!
//! **API Boundary:** the handles and records here are the seam between fixahead and
//! its database engine. Their methods take and return domain types and this crate's
//! records; no engine type (no `rusqlite` connection, row or error) crosses it, so a
//! second backend can be added inside these handles without touching their callers.
//!
//! Everything here blocks; async callers use `tokio::task::spawn_blocking`.

pub mod access;
pub mod credentials;
pub mod engineers;
mod error;
pub mod hot;
mod sqlite;
pub mod tickets;
pub mod users;

pub use error::{EngineError, Error, Result};
pub use sqlite::Synchronous;

/// The wall clock as a [`domain::Timestamp`].
pub(crate) fn now() -> domain::Timestamp {
    domain::Timestamp(chrono::Utc::now().timestamp_millis())
}
