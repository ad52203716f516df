//! fixahead's shared vocabulary.
//!
//! Every other crate depends on this one, so it holds types and pure functions only:
//! no sockets, files, clocks or threads. Decoding a wire payload is here because it is a
//! pure function of (topic, bytes, profiles); where the bytes came from is ingest's
//! business.

mod error;
mod id;
mod lang;
pub mod prediction;
pub mod profile;
mod role;
pub mod service;
pub mod ticket;
pub mod time;
pub mod wire;

pub use error::{DomainError, Result};
pub use id::DeviceId;
pub use lang::Lang;
pub use prediction::{Contribution, Prediction};
pub use profile::{
    Channel, Component, Condition, DerivedChannel, DifferenceChannel, FaultDef, Part, Profile,
    ProfileSet, RatioChannel, Severity,
};
pub use role::Role;
pub use service::{
    Callback, ComponentScore, CustomerReport, Evidence, PreJudgement, ProblemCategory,
    ReportChannel, Satisfaction, StepClock,
};
pub use ticket::{
    Assignment, ComponentRisk, Diagnosis, FaultNote, LogEntry, Outcome, OutcomeKind, Priority,
    Ticket, TicketSource, TicketStatus,
};
pub use time::Timestamp;
pub use wire::{
    decode, CommandOutcome, CommandRequest, CommandResult, DeviceInfo, FaultMessage, FaultState,
    Message, MessageKind, RejectReason, Rejection, StatusMessage, Telemetry, COMMANDS,
    MAX_PAYLOAD_BYTES,
};
