//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while building a fleet, writing history files or
/// publishing to a broker.
#[derive(Debug, Error)]
pub enum Error {
    /// A [`crate::FleetConfig`] value outside its documented range.
    #[error("invalid fleet config: {0}")]
    InvalidConfig(String),
    /// A kind the simulator has no physics model for.
    #[error("unknown appliance kind {kind:?} (the simulator knows: {known})")]
    UnknownKind {
        /// The kind asked for.
        kind: String,
        /// Kinds the simulator can simulate, comma separated.
        known: String,
    },
    /// The profile set has no profile for a simulated kind.
    #[error("no device profile for kind {0:?}; the simulator needs one to know channel ranges")]
    MissingProfile(String),
    /// The profile of a kind lacks a channel, component or fault code the simulator emits.
    #[error("profile {kind:?} has no {what} {name:?}, which the simulator emits")]
    ProfileMismatch {
        /// The device type.
        kind: String,
        /// `channel`, `component` or `fault code`.
        what: &'static str,
        /// The missing name.
        name: String,
    },
    /// A [`crate::LiveConfig`], [`crate::replay::ReplayConfig`] or [`crate::BrokerTarget`]
    /// value that cannot work.
    #[error("invalid live config: {0}")]
    InvalidLiveConfig(String),
    /// A fault-injection spec or [`crate::InjectConfig`] value that cannot work.
    #[error("invalid fault injection: {0}")]
    InvalidInject(String),
    /// A history to replay that cannot be read (a missing `telemetry.jsonl`).
    #[error("cannot replay {path}: {reason}")]
    InvalidReplay {
        /// The directory or file given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An MQTT URL that is not `mqtt://[user[:password]@]host[:port]`.
    #[error("invalid MQTT URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A JSON encoding failure while writing files.
    #[error("JSON encoding: {0}")]
    Json(#[from] serde_json::Error),
    /// The MQTT client's request channel closed (the event loop is gone).
    #[error("MQTT client: {0}")]
    Mqtt(#[from] rumqttc::ClientError),
    /// An invalid device id or other domain value.
    #[error(transparent)]
    Domain(#[from] domain::DomainError),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with the crate's [`Error`](enum@Error).
pub type Result<T> = std::result::Result<T, Error>;
