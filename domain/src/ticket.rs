//! Service tickets: the product's output.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Contribution, DeviceId, DomainError, Timestamp};

/// Priority tier; each has its own SLA clocks.
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
}

/// One entry of a ticket's progress log.
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
    /// Number of model flags or fault signals folded into this ticket.
    pub signals: u64,
    /// The snapshot an engineer prepares with.
    pub diagnosis: Diagnosis,
    /// Progress log, oldest first.
    pub log: Vec<LogEntry>,
}
