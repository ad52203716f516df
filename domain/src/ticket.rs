//! Service tickets: the product's output.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{
    Callback, Contribution, CustomerReport, DeviceId, DomainError, PreJudgement, ReportChannel,
    Satisfaction, StepClock, Timestamp,
};

/// Priority tier; each has its own SLA clocks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Core function lost or about to be: respond within 1 hour by default.
    Urgent,
    /// A clear fault that worsens: respond within 4 hours by default.
    Important,
    /// A minor issue: respond within 24 hours by default.
    Normal,
}

impl Priority {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Urgent => "urgent",
            Self::Important => "important",
            Self::Normal => "normal",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        match s {
            "urgent" => Ok(Self::Urgent),
            "important" => Ok(Self::Important),
            "normal" => Ok(Self::Normal),
            _ => Err(DomainError::InvalidValue {
                what: "priority",
                value: s.to_owned(),
                expected: "urgent, important, normal",
            }),
        }
    }
}

/// Where a ticket's lifecycle stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Opened, nobody has looked yet.
    Open,
    /// A planner has seen it.
    Acknowledged,
    /// A visit or call is scheduled.
    Scheduled,
    /// Work is under way.
    InProgress,
    /// Work is done, waiting for confirmation.
    Resolved,
    /// Finished.
    Closed,
    /// A planner judged the prediction wrong.
    Dismissed,
}

impl TicketStatus {
    /// Every status.
    pub const ALL: [TicketStatus; 7] = [
        Self::Open,
        Self::Acknowledged,
        Self::Scheduled,
        Self::InProgress,
        Self::Resolved,
        Self::Closed,
        Self::Dismissed,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Scheduled => "scheduled",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Dismissed => "dismissed",
        }
    }

    /// Whether a ticket in this status still counts as the open ticket of its
    /// (device, component) pair: everything before resolved.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            Self::Open | Self::Acknowledged | Self::Scheduled | Self::InProgress
        )
    }

    /// The lifecycle table: the statuses a ticket in this status may move to. The one
    /// source of truth for transitions (the API's 409 lists these).
    ///
    /// | from | to |
    /// |---|---|
    /// | `open` | `acknowledged`, `scheduled`, `dismissed`, `resolved` |
    /// | `acknowledged` | `scheduled`, `in_progress`, `dismissed`, `resolved` |
    /// | `scheduled` | `in_progress`, `acknowledged` (unschedule), `dismissed`, `resolved` |
    /// | `in_progress` | `resolved`, `scheduled` |
    /// | `resolved` | `closed`, `in_progress` (reopen), `open` (reopen) |
    /// | `closed` | `open` (reopen) |
    /// | `dismissed` | `open` (reopen) |
    ///
    /// A move from an inactive status to an active one is a reopen (see
    /// [`TicketStatus::is_reopen`]), allowed only within the configured window.
    pub const fn transitions(self) -> &'static [TicketStatus] {
        use TicketStatus::*;
        match self {
            Open => &[Acknowledged, Scheduled, Dismissed, Resolved],
            Acknowledged => &[Scheduled, InProgress, Dismissed, Resolved],
            Scheduled => &[InProgress, Acknowledged, Dismissed, Resolved],
            InProgress => &[Resolved, Scheduled],
            Resolved => &[Closed, InProgress, Open],
            Closed => &[Open],
            Dismissed => &[Open],
        }
    }

    /// Whether the lifecycle table allows `self -> to`.
    pub fn can_become(self, to: TicketStatus) -> bool {
        self.transitions().contains(&to)
    }

    /// Whether `self -> to` reopens a ticket (inactive to active).
    pub const fn is_reopen(self, to: TicketStatus) -> bool {
        !self.is_active() && to.is_active()
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| DomainError::InvalidValue {
                what: "status",
                value: s.to_owned(),
                expected: "open, acknowledged, scheduled, in_progress, resolved, closed, dismissed",
            })
    }
}

/// What opened a ticket.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketSource {
    /// A model flag: a failure predicted before it happens.
    Proactive,
    /// A critical fault code: the failure has happened.
    Reactive,
}

impl TicketSource {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Proactive => "proactive",
            Self::Reactive => "reactive",
        }
    }
}

/// A recent fault code with its catalogue text, as shown on a ticket.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultNote {
    /// The code.
    pub code: String,
    /// When it was raised.
    pub ts: Timestamp,
    /// Catalogue title, if the code is in the catalogue.
    pub title: Option<String>,
    /// Catalogue severity name.
    pub severity: Option<String>,
}

/// The diagnosis snapshot a ticket carries, so an engineer can prepare.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Top contributing features with values and normal ranges.
    pub top_features: Vec<Contribution>,
    /// Recent fault codes of the device.
    pub recent_faults: Vec<FaultNote>,
    /// Parts the catalogue links to this component's fault codes.
    pub likely_parts: Vec<String>,
    /// Checks an engineer can do remotely.
    pub remote_checks: Vec<String>,
    /// The latest risk of every scored component of the device.
    #[serde(default)]
    pub component_risks: Vec<ComponentRisk>,
    /// Predicted days to the failure (the prediction's `lead_time_days`); `null` on
    /// reactive tickets and for models without lead times.
    #[serde(default)]
    pub lead_time_days: Option<f64>,
    /// Model version of the scores in this snapshot (`null` if none).
    #[serde(default)]
    pub model_version: Option<String>,
}

/// The risk of one component of the device when the diagnosis was taken.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentRisk {
    /// The component.
    pub component: String,
    /// Its latest risk in [0, 1].
    pub risk: f64,
    /// Whether the model flagged it.
    pub flagged: bool,
}

/// How a ticket ended, as recorded by a person: the label of the feedback loop.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The component had failed (or was failing) and was repaired.
    ConfirmedFailure,
    /// An engineer checked and found nothing wrong: a false alarm.
    NoFaultFound,
    /// The customer did not want the service.
    CustomerDeclined,
    /// The customer could not be reached.
    NotReached,
}

impl OutcomeKind {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmedFailure => "confirmed_failure",
            Self::NoFaultFound => "no_fault_found",
            Self::CustomerDeclined => "customer_declined",
            Self::NotReached => "not_reached",
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ticket's recorded outcome.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// What happened.
    pub kind: OutcomeKind,
    /// For `confirmed_failure`: the component that failed (the ticket's by default).
    pub component: Option<String>,
    /// For `confirmed_failure`: the parts replaced.
    #[serde(default)]
    pub parts_replaced: Vec<String>,
    /// For `confirmed_failure`: when the component failed (the recording time by
    /// default). This is the failure time the feedback loop trains on.
    pub failed_at: Option<Timestamp>,
    /// Free text.
    #[serde(default)]
    pub note: String,
    /// When it was recorded (wall clock).
    pub recorded_at: Timestamp,
    /// Who recorded it.
    pub recorded_by: String,
}

/// Who does the work and when.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The engineer assigned.
    pub engineer: Option<String>,
    /// Start of the scheduled visit or call.
    pub window_start: Option<Timestamp>,
    /// End of the scheduled visit or call.
    pub window_end: Option<Timestamp>,
    /// Skills the repair needs (from the component in the device profile).
    #[serde(default)]
    pub skills: Vec<String>,
    /// The service region.
    pub region: Option<String>,
}

/// One entry of a ticket's progress log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When it happened (wall clock).
    pub at: Timestamp,
    /// Who did it (`fixahead` for automatic actions).
    pub actor: String,
    /// What happened (`opened`, `risk_updated`, ...).
    pub action: String,
    /// Free text.
    pub note: String,
}

/// A service ticket.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Store id.
    pub id: i64,
    /// Human number: date and a daily sequence, e.g. `20261124000042`.
    pub number: String,
    /// The device.
    pub device_id: DeviceId,
    /// Its type.
    pub device_type: String,
    /// The component at risk.
    pub component: String,
    /// Proactive (model) or reactive (fault code).
    pub source: TicketSource,
    /// Lifecycle position.
    pub status: TicketStatus,
    /// Priority tier.
    pub priority: Priority,
    /// Latest risk.
    pub risk: f64,
    /// Highest risk seen while open.
    pub peak_risk: f64,
    /// Model version of the latest score.
    pub model_version: String,
    /// When the ticket was opened (wall clock).
    pub opened_at: Timestamp,
    /// When it was last updated (wall clock).
    pub updated_at: Timestamp,
    /// Respond-by deadline from the priority's SLA.
    pub respond_by: Timestamp,
    /// Resolve-by deadline from the priority's SLA (`null` on tickets opened before
    /// resolve clocks existed).
    pub resolve_by: Option<Timestamp>,
    /// When a person first acted on it (left `open`); stops the respond clock.
    pub responded_at: Option<Timestamp>,
    /// When it last became resolved or dismissed; starts the reopen window.
    pub ended_at: Option<Timestamp>,
    /// SLA clocks that ran out: `respond`, `resolve`.
    pub sla_breaches: Vec<String>,
    /// To whom the breach escalated it (from the configuration), if it did.
    pub escalated_to: Option<String>,
    /// Engineer, scheduled window, skills and region.
    pub assignment: Assignment,
    /// How it ended, once recorded.
    pub outcome: Option<Outcome>,
    /// Number of model flags or fault signals folded into this ticket.
    pub signals: u64,
    /// The snapshot an engineer prepares with.
    pub diagnosis: Diagnosis,
    /// Progress log, oldest first.
    pub log: Vec<LogEntry>,
    /// How it came in: `device` (a model flag or a fault code) or the channel of the
    /// customer report that opened it.
    #[serde(default)]
    pub channel: ReportChannel,
    /// Customer reports, oldest first: the one that opened it and those that joined.
    #[serde(default)]
    pub reports: Vec<CustomerReport>,
    /// The pre-judgement of the latest customer report.
    #[serde(default)]
    pub prejudgement: Option<PreJudgement>,
    /// The procedure's steps with their clocks, in order.
    #[serde(default)]
    pub steps: Vec<StepClock>,
    /// The customer's satisfaction, once recorded.
    #[serde(default)]
    pub satisfaction: Option<Satisfaction>,
    /// The call-back a dissatisfied customer gets, once opened.
    #[serde(default)]
    pub callback: Option<Callback>,
    /// Number of visits: times work started (the ticket entered `in_progress`).
    #[serde(default)]
    pub visits: u32,
    /// The planner responsible: the last person who acknowledged or assigned it.
    #[serde(default)]
    pub planner: Option<String>,
}
