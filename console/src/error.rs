//! The console's errors: what a page could not do, and how it answers.

use axum::http::StatusCode;
use thiserror::Error;

/// Why a page or form failed. A handler returns it; [`crate::page`] renders it as a
/// page in the person's language with its status.
#[derive(Debug, Error)]
pub enum Error {
    /// The request is malformed or a form field does not fit; the message says which.
    #[error("{0}")]
    BadRequest(String),
    /// The person's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such ticket, device or page.
    #[error("{0}")]
    NotFound(String),
    /// The state does not allow it (a ticket no longer open, a login taken).
    #[error("{0}")]
    Conflict(String),
    /// The form's CSRF token is missing or wrong (an old page, or another site).
    #[error(
        "the form has expired or did not come from this console; reload the page and try again"
    )]
    Csrf,
    /// A service of the API failed.
    #[error(transparent)]
    Api(#[from] api::Error),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A template could not be rendered.
    #[error("rendering a page: {0}")]
    Render(#[from] askama::Error),
    /// A blocking task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Result with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status the error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Forbidden(_) | Error::Csrf => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Api(e) => e.status(),
            Error::Store(e) => match e {
                store::Error::Invalid(_) => StatusCode::BAD_REQUEST,
                store::Error::NotFound(_) => StatusCode::NOT_FOUND,
                store::Error::Conflict(_) => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Error::Render(_) | Error::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the page says: the message for a person's mistake, nothing internal for a
    /// server error (that goes to the log).
    pub fn public_message(&self) -> Option<String> {
        if self.status().is_server_error() {
            None
        } else {
            Some(self.to_string())
        }
    }
}

/// Runs blocking work (SQLite, argon2) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}
