use thiserror::Error;

/// Errors of the api crate.
///
/// The same enum is the HTTP error type ([`ApiError`]): its `IntoResponse` impl (in
/// [`crate::http`]) maps each variant to a status code and a JSON body
/// `{"error": {"code": ..., "message": ...}}`. Client errors carry a message meant for
/// the client; everything else is logged and answered with a generic message.
#[derive(Debug, Error)]
pub enum Error {
    /// A store of the data directory failed (see [`store::Error`]); its caller-facing
    /// errors become [`Error::BadRequest`], [`Error::Conflict`] and [`Error::NotFound`].
    #[error("{0}")]
    Store(store::Error),
    /// A file-system or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A value could not be encoded as JSON for storage.
    #[error("JSON encoding: {0}")]
    Json(#[from] serde_json::Error),
    /// The ticket configuration is inconsistent.
    #[error("invalid ticket configuration: {0}")]
    Config(String),
    /// The request is malformed (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// A request body is well-formed JSON but does not fit its type: a missing, unknown,
    /// mistyped or out-of-range field (HTTP 422, the body names the field).
    #[error("{message}")]
    Invalid {
        /// The field's path in the body (`name`, `items[2].id`), when known.
        field: Option<String>,
        /// What is wrong with it.
        message: String,
    },
    /// No valid API key came with the request (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// The key's role may not do this (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The request body is larger than the limit (HTTP 413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The requested resource does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state, e.g. reopening a ticket while
    /// another one is active for the same (device, component) (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// A lifecycle transition the table (or the reopen window) does not allow
    /// (HTTP 409, with the statuses that are allowed).
    #[error("{message}")]
    Transition {
        /// What was refused.
        message: String,
        /// The statuses the ticket may move to now.
        allowed: Vec<domain::TicketStatus>,
    },
    /// Stored data could not be decoded (a bug or a corrupted file).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A blocking task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
}

/// The HTTP error type: the crate's [`enum@Error`], which implements `IntoResponse`.
pub type ApiError = Error;

/// Result with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Invalid(m) => Error::BadRequest(m),
            store::Error::Conflict(m) => Error::Conflict(m),
            store::Error::NotFound(m) => Error::NotFound(m),
            e => Error::Store(e),
        }
    }
}

impl Error {
    /// An [`Error::Invalid`] from a message of the form `field.path: what is wrong`,
    /// which names its field (a message without that form names none).
    pub fn invalid(message: impl Into<String>) -> Self {
        let message = message.into();
        let field = message
            .split_once(": ")
            .map(|(f, _)| f)
            .filter(|f| {
                !f.is_empty()
                    && f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
            })
            .map(str::to_owned);
        Error::Invalid { field, message }
    }
}
