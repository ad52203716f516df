//! The after-sales side of a ticket (schema 7): how customer reports reach it, what
//! fixahead pre-judges from the device's data, the procedure's step clocks, the
//! customer's satisfaction and the call-back a dissatisfied customer gets.
//!
//! These are wire types of the ticket JSON (`GET /api/v1/tickets/{id}`): fields may be
//! added, never renamed or dropped (docs/api.md).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Priority, Timestamp};

/// `Display` and `FromStr` of a wire enum by its `ALL` and `as_str`, refusing an
/// unknown name with the list of known ones.
macro_rules! wire_name {
    ($ty:ty, $what:literal, $expected:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, DomainError> {
                Self::ALL
                    .into_iter()
                    .find(|c| c.as_str() == s)
                    .ok_or_else(|| DomainError::InvalidValue {
                        what: $what,
                        value: s.to_owned(),
                        expected: $expected,
                    })
            }
        }
    };
}

/// How a ticket or a report reached fixahead.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportChannel {
    /// The device itself: a model flag or a critical fault code.
    #[default]
    Device,
    /// A call to the call centre.
    Phone,
    /// The maker's mobile app.
    App,
    /// The web form.
    Web,
    /// An installer or dealer on site.
    Installer,
}

impl ReportChannel {
    /// Every channel.
    pub const ALL: [ReportChannel; 5] = [
        Self::Device,
        Self::Phone,
        Self::App,
        Self::Web,
        Self::Installer,
    ];

    /// The channels a person reports through (every one but `device`).
    pub const PEOPLE: [ReportChannel; 4] = [Self::Phone, Self::App, Self::Web, Self::Installer];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Phone => "phone",
            Self::App => "app",
            Self::Web => "web",
            Self::Installer => "installer",
        }
    }
}

wire_name!(
    ReportChannel,
    "channel",
    "device, phone, app, web, installer"
);

/// What the customer says is wrong, as the call centre classifies it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCategory {
    /// The appliance's core function is lost: it does not run, cool, heat, drain.
    Down,
    /// It runs, but poorly (cools too little, washes badly) and it is getting worse.
    Degraded,
    /// The display shows an error code.
    ErrorCode,
    /// Unusual noise or vibration.
    Noise,
    /// Water on the floor.
    Leak,
    /// Something about the installation (a new appliance, a move, a hose, power).
    Installation,
    /// A question or a minor issue.
    Question,
}

impl ProblemCategory {
    /// Every category.
    pub const ALL: [ProblemCategory; 7] = [
        Self::Down,
        Self::Degraded,
        Self::ErrorCode,
        Self::Noise,
        Self::Leak,
        Self::Installation,
        Self::Question,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Degraded => "degraded",
            Self::ErrorCode => "error_code",
            Self::Noise => "noise",
            Self::Leak => "leak",
            Self::Installation => "installation",
            Self::Question => "question",
        }
    }

    /// The seeds' priority rule (../shared/SEEDS.md, "Automatic classification and
    /// priority"): the core function lost is urgent; a clear complaint or a fault that
    /// worsens is important; a question or a minor issue is normal. A leak counts as
    /// the core function lost (water damage cannot wait).
    pub const fn priority(self) -> Priority {
        match self {
            Self::Down | Self::Leak => Priority::Urgent,
            Self::Degraded | Self::ErrorCode | Self::Noise | Self::Installation => {
                Priority::Important
            }
            Self::Question => Priority::Normal,
        }
    }
}

wire_name!(
    ProblemCategory,
    "category",
    "down, degraded, error_code, noise, leak, installation, question"
);

/// One customer report as it reached a ticket (the first one opened it, or it joined
/// the device's active ticket for the same component).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerReport {
    /// When it was taken (the service's clock).
    pub at: Timestamp,
    /// How it came in.
    pub channel: ReportChannel,
    /// The problem category.
    pub category: ProblemCategory,
    /// The customer's own words.
    pub words: String,
    /// Who took it (the key's name or the person's login).
    pub reporter: String,
    /// The customer reference the caller gave, if any.
    #[serde(default)]
    pub customer_ref: Option<String>,
    /// Whether it joined a ticket that was already active (`false` for the report
    /// that opened the ticket).
    pub joined: bool,
}

/// One item of evidence behind a pre-judgement.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// A recent fault code the catalogue links to `component`.
    FaultCode {
        /// The component the catalogue links it to.
        component: String,
        /// The code.
        code: String,
        /// When it was raised.
        ts: Timestamp,
        /// Catalogue title.
        title: Option<String>,
        /// Catalogue severity.
        severity: Option<String>,
    },
    /// The model's latest risk of `component`.
    Risk {
        /// The component.
        component: String,
        /// The risk in [0, 1].
        risk: f64,
        /// Whether the model flagged it.
        flagged: bool,
    },
    /// A reading outside the fleet's normal range that points at `component`.
    Reading {
        /// The component.
        component: String,
        /// The channel (sensor) name.
        channel: String,
        /// The device's latest value.
        value: f64,
        /// The normal range's low end (fleet p5).
        low: f64,
        /// The normal range's high end (fleet p95).
        high: f64,
    },
    /// A recent fault code the catalogue links to no component (a nuisance code: a
    /// door not shut, an unbalanced load). It points nowhere and weighs nothing, but
    /// the call centre can often settle the call with its remote checks.
    Nuisance {
        /// The code.
        code: String,
        /// When it was raised.
        ts: Timestamp,
        /// Catalogue title.
        title: Option<String>,
        /// Catalogue severity.
        severity: Option<String>,
    },
    /// What the customer's category says about `component`.
    Category {
        /// The component.
        component: String,
        /// The category.
        category: ProblemCategory,
    },
}

/// A candidate component with its share of the pre-judgement's score.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentScore {
    /// The component.
    pub component: String,
    /// Its confidence in [0, 1]; the candidates' confidences sum to at most 1.
    pub confidence: f64,
}

/// fixahead's first judgement of a customer report from the device's own data, before
/// a person looks (docs/intake.md, "Pre-judgement").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreJudgement {
    /// When it was made.
    pub at: Timestamp,
    /// The likely component; `null` when the data point nowhere with enough
    /// confidence (an installation problem, a question, a healthy device).
    pub component: Option<String>,
    /// Confidence in `component` (0 when `component` is `null`).
    pub confidence: f64,
    /// The candidates, most likely first.
    pub candidates: Vec<ComponentScore>,
    /// The evidence, strongest first.
    pub evidence: Vec<Evidence>,
}

/// One step of a ticket's procedure with its clock (docs/service.md, "Procedures").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepClock {
    /// The step's name (`respond`, `remote_check`, `act`, `finish`, `confirm`).
    pub step: String,
    /// When it must be done.
    pub due: Timestamp,
    /// When it was done.
    pub done_at: Option<Timestamp>,
    /// When it was found past its limit (once).
    pub overdue_at: Option<Timestamp>,
    /// Whom the overdue alert went to (the owner's supervisor).
    pub alerted: Option<String>,
}

/// The customer's answer to the satisfaction check.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Satisfaction {
    /// 1 (very dissatisfied) to 5 (very satisfied).
    pub score: u8,
    /// The customer's comment.
    #[serde(default)]
    pub comment: String,
    /// When it was recorded.
    pub at: Timestamp,
    /// Who recorded it.
    pub recorded_by: String,
    /// How the answer came in.
    pub channel: ReportChannel,
}

/// The call-back a dissatisfied customer gets.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// When it was opened.
    pub opened_at: Timestamp,
    /// When it must be done.
    pub due: Timestamp,
    /// Who must call (the ticket's planner, if it has one).
    pub owner: Option<String>,
    /// When it was done.
    pub done_at: Option<Timestamp>,
    /// Who did it.
    pub done_by: Option<String>,
    /// What the call found.
    #[serde(default)]
    pub note: String,
    /// When it was found past its limit (once).
    pub overdue_at: Option<Timestamp>,
}
