//! The SQLite hot store.
//!
//! One writer ([`HotStore`], owned by the pipeline) and any number of readers
//! ([`StoreReader`], used by the API and by warm-up). WAL mode lets readers run while
//! the writer commits. Every batch is one transaction; the pipeline acknowledges a
//! batch's MQTT messages only after [`HotStore::commit`] returns.
//!
//! Tables (the API reads them through [`StoreReader`] only):
//! * `devices`: the registry, one row per device that sent a valid telemetry or fault
//!   message (type, model, firmware, production batch, region, first/last seen,
//!   message count). Firmware, batch and region keep their last reported value when a
//!   message leaves them out.
//! * `device_status`: the last online/offline status per device.
//! * `telemetry`, `faults`: primary key `(device_id, seq)`, so a redelivered message is
//!   stored once. `seq` is a u64 on the wire and is stored bit-cast into SQLite's i64.
//!   `arrival` numbers the rows of both tables together in commit order (1, 2, 3, ...
//!   without gaps, assigned by the single writer): the position the archive
//!   (ingest's archive) keeps its cursor at ([`StoreReader::read_after`]). Receive
//!   times cannot serve: several commits share a millisecond, and the wall clock can
//!   step back.
//! * `dead_letters`: rejected messages with their topic, reason, detail and the first
//!   [`DEAD_LETTER_PAYLOAD_BYTES`] bytes of their payload. Bounded by
//!   [`DeadLetterRetention`]: the writer deletes the oldest rows beyond `max_rows` and
//!   those older than `max_age`. Retention never touches any other table.
//!
//! The file's schema is version 1 (`PRAGMA user_version`); a file from before versions
//! (0) gains the `batch` and `region` columns of `devices` and the `arrival` numbers
//! when the writer first opens it (`schema::upgrade`).

mod reader;
mod retention;
mod rows;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

pub use reader::{
    ArrivalPage, DeadLetterRecord, DeviceRecord, FaultRecord, StoreCounts, StoreReader,
    TelemetryRecord,
};
pub use reader::{ReasonCounts, ReasonPage};
pub use retention::DeadLetterRetention;
pub use writer::{HotStore, Outcome, StoreItem};

/// The hot store's file name in a data directory.
pub const HOT_DB: &str = "hot.db";

/// Payload bytes kept per dead letter; the full length is recorded beside it.
pub const DEAD_LETTER_PAYLOAD_BYTES: usize = 4096;
