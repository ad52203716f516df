use thiserror::Error;

/// Errors of the domain crate: invalid identifiers and invalid profiles.
///
/// Wire-payload rejections are not errors of this kind: they are data
/// ([`crate::Rejection`]) because the pipeline stores them as dead letters.
#[derive(Debug, Error)]
pub enum DomainError {
    /// A device id that is not 1-64 characters of `[A-Za-z0-9_-]`.
    #[error("invalid device id {0:?}: expected 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidDeviceId(String),
    /// A profile file that is not valid TOML or does not match the profile schema.
    #[error("profile {source_name}: {message}")]
    InvalidProfile {
        /// File name or other label of the profile's origin.
        source_name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A timestamp that is neither RFC 3339 nor integer epoch milliseconds.
    #[error("invalid timestamp {0:?}: expected RFC 3339 or integer epoch milliseconds")]
    InvalidTimestamp(String),
    /// A role name that is not `admin`, `planner`, `engineer` or `integration`.
    #[error("unknown role {0:?}: expected admin, planner, engineer or integration")]
    UnknownRole(String),
    /// A language tag that is not English or Simplified Chinese ([`crate::Lang`]).
    #[error("unsupported language {tag:?}: {reason}")]
    UnsupportedLanguage {
        /// The tag given.
        tag: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A value that is not one of a closed set (priority, status, ...).
    #[error("invalid {what} {value:?}: expected one of {expected}")]
    InvalidValue {
        /// Which kind of value.
        what: &'static str,
        /// The value given.
        value: String,
        /// The accepted values, comma separated.
        expected: &'static str,
    },
}

/// Result with [`DomainError`].
pub type Result<T, E = DomainError> = std::result::Result<T, E>;
