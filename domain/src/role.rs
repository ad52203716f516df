//! Roles: what a caller of the HTTP API may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A role: what an API key (or, later, a person) may do. The permission table is the
/// HTTP API's (`api::http::auth::grants`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including keys, device credentials and the audit log.
    Admin,
    /// Reads everything operational; transitions, assigns and dismisses tickets.
    Planner,
    /// Reads tickets and devices; diagnoses and records outcomes on assigned tickets.
    Engineer,
    /// Machine access: reads, events, webhooks, metrics.
    Integration,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Planner,
        Role::Engineer,
        Role::Integration,
    ];

    /// The name used in the API and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Planner => "planner",
            Role::Engineer => "engineer",
            Role::Integration => "integration",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| DomainError::UnknownRole(s.to_owned()))
    }
}
