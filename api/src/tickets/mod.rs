//! Tickets: turning credible risks (model flags) and critical fault codes into exactly
//! one service ticket per (device, component), and taking each ticket through its
//! lifecycle, SLA clocks, assignment and outcome.
//!
//! [`TicketService`] is the entry point, a cheap, clonable, blocking handle over the
//! ticket store (`store::tickets`, which holds the schema and every SQL statement).
//!
//! **Architecture invariant 7 "one risk, one ticket":** at most one *active* ticket
//! (status `open`, `acknowledged`, `scheduled` or `in_progress`) exists per (device,
//! component). A unique partial index enforces it; [`TicketService::record`] inserts
//! first and falls back to updating the active ticket when the index reports a
//! conflict, so correctness never depends on a prior read.
//!
//! **Architecture invariant 8 "an event is part of its change":** every event
//! ([`EventRecord`]) is written in the same transaction as the change it reports, so a
//! committed change always has its event and a rolled-back one never does.

mod config;
pub mod performance;
pub mod prejudge;
pub mod procedures;
pub mod risk_log;
mod satisfaction;
mod service;

use std::sync::Arc;

use domain::{DeviceId, OutcomeKind, Prediction, Priority, Profile, TicketSource, Timestamp};
use serde::Serialize;

pub use config::{ConfigDuration, TicketConfig};
pub use performance::{
    AssignmentRegions, PerformanceQuery, PerformanceReport, PerformanceRow, Regions,
};
pub use procedures::{Procedure, ProcedureConfig, ProcedureMatch, StepLimit, StepName};
pub use satisfaction::SatisfactionConfig;
pub use service::{
    check_words, Clock, Planned, ReportInput, ReportResult, ReportResultKind, TicketService,
    MAX_CUSTOMER_DEVICES, MAX_WORDS, SYSTEM_ACTOR, UNKNOWN_COMPONENT,
};
pub use store::tickets::DirectoryEntry;
pub use store::tickets::{
    Assignee, EventRecord, QueueCell, QueueChoices, QueueQuery, QueueTicket, RiskRecord, SlaKind,
    TicketOutcome, TicketQuery,
};

/// Event type: a ticket was opened.
pub const EVENT_OPENED: &str = "ticket.opened";
/// Event type: a ticket changed (every change that writes its log).
pub const EVENT_UPDATED: &str = "ticket.updated";
/// Event type: an SLA clock of a ticket ran out.
pub const EVENT_SLA_BREACHED: &str = "ticket.sla_breached";
/// Event type: the model flagged a (device, component), once per flag episode.
pub const EVENT_FLAGGED: &str = "prediction.flagged";
/// Event type: automatic dispatch found no engineer who fits and escalated the ticket
/// to the configured manager (docs/dispatch.md).
pub const EVENT_ESCALATED: &str = "ticket.escalated";
/// Event type: a step of a ticket's procedure ran past its limit (once per step).
pub const EVENT_STEP_OVERDUE: &str = "ticket.step_overdue";
/// Event type: a dissatisfied answer opened a call-back.
pub const EVENT_CALLBACK_OPENED: &str = "ticket.callback_opened";
/// Event type: a call-back ran past its limit (once).
pub const EVENT_CALLBACK_OVERDUE: &str = "ticket.callback_overdue";

/// Who supervises whom: the step clocks' alerts go to the supervisor of a ticket's
/// engineer (the engineers' directory implements it; docs/procedures.md).
pub trait Supervisors: Send + Sync {
    /// The supervisor (a login or a role name such as `after-sales-manager`) of the
    /// engineer `login`, if one is recorded.
    fn supervisor_of(&self, login: &str) -> Option<String>;
}

/// No supervisors recorded: every step alert goes to the priority's escalation
/// contact (`[tickets] <tier>_escalation`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSupervisors;

impl Supervisors for NoSupervisors {
    fn supervisor_of(&self, _login: &str) -> Option<String> {
        None
    }
}

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
    /// What the device registry says about the device (model, batch, region), when
    /// known: copied onto a ticket it opens (and onto the active ticket it updates),
    /// so the console's queue filters by batch and region within `tickets.db`.
    pub device: Option<domain::DeviceInfo>,
}

impl DiagnosisContext {
    /// A context from a profile and the hot store's fault records
    /// ([`store::hot::StoreReader::recent_faults`]); only `raised` records count.
    pub fn from_records(profile: Option<Arc<Profile>>, faults: &[store::hot::FaultRecord]) -> Self {
        Self {
            profile,
            recent_faults: faults
                .iter()
                .filter(|f| f.state == domain::FaultState::Raised)
                .map(|f| (f.code.clone(), f.ts))
                .collect(),
            device: None,
        }
    }

    /// The same context with the device's registry facts.
    pub fn with_device(mut self, device: Option<domain::DeviceInfo>) -> Self {
        self.device = device;
        self
    }

    /// The device's facts as the ticket store keeps them.
    pub(crate) fn facts(&self) -> store::tickets::DeviceFacts<'_> {
        let d = self.device.as_ref();
        store::tickets::DeviceFacts {
            model: d.map(|d| d.model.as_str()).filter(|m| !m.is_empty()),
            batch: d.and_then(|d| d.batch.as_deref()),
            region: d.and_then(|d| d.region.as_deref()),
        }
    }
}

/// Whether a signal opened a ticket or updated the active one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketChangeKind {
    /// A new ticket was opened.
    Opened,
    /// The active ticket of the (device, component) was updated.
    Updated,
}

/// What [`TicketService::record`] did to one ticket.
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
    /// What the signal was: a model flag (proactive) or a critical fault (reactive).
    /// For an update, the signal's source, not the ticket's.
    pub source: TicketSource,
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
    /// Flag episodes started: `prediction.flagged` events (a (device, component) whose
    /// stored risk was not flagged became flagged).
    pub flags: u64,
    /// Respond clocks that ran out.
    pub sla_respond_breaches: u64,
    /// Resolve clocks that ran out.
    pub sla_resolve_breaches: u64,
    /// Procedure steps that ran past their limit.
    pub steps_overdue: u64,
    /// Satisfaction answers recorded (replacements included).
    pub satisfaction_answers: u64,
    /// Call-backs opened by dissatisfied answers.
    pub callbacks_opened: u64,
    /// Call-backs done.
    pub callbacks_done: u64,
    /// Call-backs that ran past their limit.
    pub callbacks_overdue: u64,
}

/// A raised fault code of a device, as the scoring stage saw it stored.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSignal {
    /// The device.
    pub device_id: DeviceId,
    /// Its type.
    pub device_type: String,
    /// The code.
    pub code: String,
    /// Event time.
    pub ts: Timestamp,
}

/// The signals of one device in a batch: its predictions and the fault codes it
/// raised, with the context of its diagnosis.
#[derive(Clone, Copy, Debug)]
pub struct DeviceSignals<'a> {
    /// Predictions, in scoring order.
    pub predictions: &'a [Prediction],
    /// Raised fault codes, in arrival order. Only those the catalogue rates critical
    /// and links to a component open (or update) a reactive ticket.
    pub faults: &'a [FaultSignal],
    /// The device's profile and recent faults.
    pub context: &'a DiagnosisContext,
}

/// An outcome as a person reports it (the service fills in time and actor).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutcomeInput {
    /// What happened.
    pub kind: Option<OutcomeKind>,
    /// For `confirmed_failure`: the failed component (default: the ticket's).
    pub component: Option<String>,
    /// For `confirmed_failure`: the parts replaced.
    pub parts_replaced: Vec<String>,
    /// For `confirmed_failure`: when it failed (default: now).
    pub failed_at: Option<Timestamp>,
    /// Free text.
    pub note: String,
}

/// An assignment as a planner sets it; it replaces engineer, window and region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssignmentInput {
    /// The engineer.
    pub engineer: Option<String>,
    /// Start of the scheduled window.
    pub window_start: Option<Timestamp>,
    /// End of the scheduled window.
    pub window_end: Option<Timestamp>,
    /// The service region.
    pub region: Option<String>,
}

/// One SLA clock that ran out, as [`TicketService::check_sla`] recorded it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlaBreach {
    /// The ticket.
    pub ticket_id: i64,
    /// Which clock.
    pub kind: SlaKind,
    /// The deadline that passed.
    pub deadline: Timestamp,
    /// Who it escalated to.
    pub escalated_to: String,
}

/// A step that ran past its limit, as [`TicketService::check_steps`] recorded it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepOverdue {
    /// The ticket.
    pub ticket_id: i64,
    /// The step.
    pub step: String,
    /// Its limit.
    pub due: Timestamp,
    /// Who owns the ticket: its engineer, else its planner.
    pub owner: Option<String>,
    /// Whom the alert went to: the owner's supervisor, else the priority's escalation.
    pub supervisor: String,
}

/// A call-back that ran past its limit, as [`TicketService::check_steps`] recorded it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallbackOverdue {
    /// The ticket.
    pub ticket_id: i64,
    /// Its limit.
    pub due: Timestamp,
    /// Who should have called.
    pub owner: Option<String>,
}

/// What one sweep of [`TicketService::check_steps`] found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StepSweep {
    /// Steps newly past their limit.
    pub steps: Vec<StepOverdue>,
    /// Call-backs newly past their limit.
    pub callbacks: Vec<CallbackOverdue>,
}

/// A satisfaction answer as the caller gives it (the service adds time and actor).
#[derive(Clone, Debug, PartialEq)]
pub struct SatisfactionInput {
    /// 1 (very dissatisfied) to 5 (very satisfied).
    pub score: u8,
    /// The customer's comment.
    pub comment: String,
    /// How the answer came in (default `phone`).
    pub channel: Option<domain::ReportChannel>,
}
