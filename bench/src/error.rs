use thiserror::Error;

/// Errors of the bench crate: what stops a benchmark.
///
/// The crates' errors are wrapped as they are; what was being done when one happened
/// (`training from DIR: ...`) is added with `server::Context`, the one context wrapper
/// of the process's commands, so it arrives as [`Error::Server`]; [`Error::Failed`] is
/// the benchmark itself failing (a stall, a fleet that stopped sending, a bad flag).
#[derive(Debug, Error)]
pub enum Error {
    /// The process's commands or wiring (settings, `app::start`, writing a history).
    #[error(transparent)]
    Server(#[from] server::Error),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Ingest (the embedded broker, TLS settings) failed.
    #[error(transparent)]
    Ingest(#[from] ingest::Error),
    /// The ticket service, the access store or the HTTP API failed.
    #[error(transparent)]
    Api(#[from] api::Error),
    /// Training, scoring or a model file failed.
    #[error(transparent)]
    Models(#[from] models::Error),
    /// The simulator failed.
    #[error(transparent)]
    Simulator(#[from] simulators::Error),
    /// An id or time did not parse.
    #[error(transparent)]
    Domain(#[from] domain::DomainError),
    /// An HTTP request to the API failed.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// A request to the benchmark's own MQTT client failed.
    #[error(transparent)]
    MqttClient(#[from] rumqttc::ClientError),
    /// The benchmark's MQTT connection failed (boxed: the error is large).
    #[error(transparent)]
    MqttConnection(Box<rumqttc::ConnectionError>),
    /// A file, socket or process operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// JSON could not be written or read.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A task panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// The benchmark cannot go on (a stall, a missing result, a flag out of range); the
    /// message says why.
    #[error("{0}")]
    Failed(String),
}

impl From<rumqttc::ConnectionError> for Error {
    fn from(e: rumqttc::ConnectionError) -> Error {
        Error::MqttConnection(Box::new(e))
    }
}

/// Result with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns [`Error::Failed`] with a formatted message.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::Failed(format!($($arg)*)))
    };
}
pub(crate) use bail;

/// Returns [`Error::Failed`] with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::error::bail!($($arg)*);
        }
    };
}
pub(crate) use ensure;
