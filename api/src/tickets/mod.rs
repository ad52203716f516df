//! Tickets: turning credible risks into exactly one proactive service ticket each.
//!
//! [`TicketService`] is the entry point. It owns its own SQLite file (see
//! [`store`] for the schema) and is a cheap, clonable, blocking handle.
//!
//! **Architecture Invariant:** at most one *active* ticket (status `open`,
//! `acknowledged`, `scheduled` or `in_progress`) exists per (device, component). A unique
//! partial index enforces it; [`TicketService::record_predictions`] inserts first and
//! falls back to updating the active ticket when the index reports a conflict, so
//! correctness never depends on a prior read.

mod config;
mod service;
pub mod store;

use std::sync::Arc;

use domain::{Contribution, DeviceId, Priority, Profile, TicketStatus, Timestamp};
use serde::Serialize;

pub use config::{ConfigDuration, TicketConfig};
pub use service::{Clock, TicketService, SYSTEM_ACTOR};

/// What the caller knows about a device beyond its predictions, used to fill a
/// ticket's [`domain::Diagnosis`] and to apply the critical-fault priority rule.
///
/// One context describes one device: pass the predictions of that device with it.
#[derive(Clone, Debug, Default)]
pub struct DiagnosisContext {
    /// The device's profile (its fault catalogue gives titles, severities, likely
    /// parts and remote checks). `None` when the type is unknown: tickets still open,
    /// with a thinner diagnosis.
    pub profile: Option<Arc<Profile>>,
    /// Fault codes the device raised recently, as (code, event time), any order
    /// (newest first is usual). Only raised faults belong here, not cleared ones.
    pub recent_faults: Vec<(String, Timestamp)>,
}

impl DiagnosisContext {
    /// A context from a profile and the hot store's fault records
    /// ([`ingest::store::StoreReader::recent_faults`]); only `raised` records count.
    pub fn from_records(
        profile: Option<Arc<Profile>>,
        faults: &[ingest::store::FaultRecord],
    ) -> Self {
        Self {
            profile,
            recent_faults: faults
                .iter()
                .filter(|f| f.state == "raised")
                .map(|f| (f.code.clone(), f.ts))
                .collect(),
        }
    }
}

/// Whether a prediction opened a ticket or updated the active one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketChangeKind {
    /// A new ticket was opened.
    Opened,
    /// The active ticket of the (device, component) was updated.
    Updated,
}

/// What [`TicketService::record_predictions`] did to one ticket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TicketChange {
    /// Store id of the ticket.
    pub ticket_id: i64,
    /// Its number (`20261124000042`).
    pub number: String,
    /// The device.
    pub device_id: DeviceId,
    /// The component.
    pub component: String,
    /// The ticket's priority after the change.
    pub priority: Priority,
    /// Opened or updated.
    pub kind: TicketChangeKind,
}

/// Filter and page of a ticket listing. Results are newest first (descending id).
#[derive(Clone, Debug, PartialEq)]
pub struct TicketQuery {
    /// Only tickets in one of these statuses; empty means any status.
    pub statuses: Vec<TicketStatus>,
    /// Only tickets of this device.
    pub device_id: Option<DeviceId>,
    /// Only tickets for this component.
    pub component: Option<String>,
    /// Only tickets of this priority.
    pub priority: Option<Priority>,
    /// At most this many tickets.
    pub limit: usize,
    /// Cursor: only tickets listed after this id, i.e. with a smaller id.
    pub after_id: Option<i64>,
}

impl Default for TicketQuery {
    fn default() -> Self {
        Self {
            statuses: Vec::new(),
            device_id: None,
            component: None,
            priority: None,
            limit: 100,
            after_id: None,
        }
    }
}

impl TicketQuery {
    /// Every active status (`open`, `acknowledged`, `scheduled`, `in_progress`).
    pub fn active_statuses() -> Vec<TicketStatus> {
        TicketStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect()
    }
}

/// The current risk of one component of one device (the latest score by event time).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RiskRecord {
    /// The device.
    pub device_id: String,
    /// Its type.
    pub device_type: String,
    /// The component.
    pub component: String,
    /// Latest risk in [0, 1].
    pub risk: f64,
    /// The threshold the model used.
    pub threshold: f64,
    /// Whether the device was flagged for this component.
    pub flagged: bool,
    /// Model version of the score.
    pub model_version: String,
    /// Event time of the score.
    pub ts: Timestamp,
    /// Top contributing features.
    pub top_features: Vec<Contribution>,
    /// Wall-clock time the record was written.
    pub updated_at: Timestamp,
}

/// Counters of the ticket service since it was opened, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TicketStats {
    /// Tickets opened.
    pub opened: u64,
    /// Updates folded into active tickets.
    pub updated: u64,
    /// Predictions recorded (flagged or not).
    pub predictions: u64,
}
