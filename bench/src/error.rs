use thiserror::Error;

/// Errors of the bench crate: what stops a benchmark.
///
/// The crates' errors are wrapped as they are; [`Context`] adds what was being done
/// (`training from DIR: ...`), as the binary prints it; [`Error::Failed`] is the
/// benchmark itself failing (a stall, a fleet that stopped sending, a bad flag).
///
/// Unlike `server::Error`, a [`Error::Context`] displays its context alone and hands
/// out the cause as its `source`: the binary prints the whole chain (`{e:#}`), so the
/// text is the same as before the benchmarks became a crate, with each cause once.
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
    /// What was being done when `source` happened.
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<rumqttc::ConnectionError> for Error {
    fn from(e: rumqttc::ConnectionError) -> Error {
        Error::MqttConnection(Box::new(e))
    }
}

/// Result with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Says what was being done when an error happened.
pub trait Context<T> {
    /// Wraps the error with `context`.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// Wraps the error with the context `f` computes (only on error).
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.into(),
            source: Box::new(e),
        })
    }

    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: f().into(),
            source: Box::new(e),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| Error::Failed(context.into()))
    }

    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| Error::Failed(f().into()))
    }
}

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
