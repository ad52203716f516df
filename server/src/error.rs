use thiserror::Error;

/// Errors of the server crate: what stops a command or the start of `run` and `demo`.
///
/// The library crates' errors are wrapped as they are; [`Context`] adds what was being
/// done (`opening the ticket store in data: ...`), as the binary prints it.
#[derive(Debug, Error)]
pub enum Error {
    /// The configuration file or a flag holds a value that is not allowed.
    #[error("{0}")]
    Settings(String),
    /// A store of the data directory failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Ingest (the broker, the MQTT client, the archive) failed.
    #[error(transparent)]
    Ingest(#[from] ingest::Error),
    /// The ticket service or the HTTP API failed.
    #[error(transparent)]
    Api(#[from] api::Error),
    /// Training, evaluation, scoring or a model file failed.
    #[error(transparent)]
    Models(#[from] models::Error),
    /// The simulator failed.
    #[error(transparent)]
    Simulator(#[from] simulators::Error),
    /// An id, time or profile did not parse.
    #[error(transparent)]
    Domain(#[from] domain::DomainError),
    /// A file, socket or terminal operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// JSON could not be written or read.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The configuration file is not valid TOML for its schema (unknown key, wrong type).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A blocking task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The command cannot do what was asked (no data to train on, a directory that
    /// belongs to someone else, ...); the message says why and what to do.
    #[error("{0}")]
    Failed(String),
    /// What was being done when `source` happened.
    #[error("{context}: {source}")]
    Context {
        /// What was being done.
        context: String,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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
