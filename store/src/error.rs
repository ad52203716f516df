use thiserror::Error;

/// Errors of the store crate.
///
/// No engine type crosses the crate boundary: an error of the database engine is the
/// opaque [`EngineError`], which says whether it was a busy or constraint failure.
/// Callers map the caller-facing variants ([`Error::Invalid`], [`Error::Conflict`],
/// [`Error::NotFound`]) to their own answers (the HTTP API to 400, 409 and 404).
#[derive(Debug, Error)]
pub enum Error {
    /// The database engine failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// A file-system operation on the data directory failed.
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
    /// The file was written by a newer fixahead, with a schema this binary does not
    /// know: refused rather than misread or downgraded.
    #[error(
        "{file} has schema version {found}, newer than the {supported} this fixahead knows: \
         run the newer fixahead that wrote it, or restore a backup"
    )]
    TooNew {
        /// The file's conventional name (`tickets.db`).
        file: &'static str,
        /// The version found in the file.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// Stored data could not be decoded (a bug or a corrupted file).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Bad input from a caller: an invalid name, password or key.
    #[error("{0}")]
    Invalid(String),
    /// The write conflicts with what is stored: a key or credential that already
    /// exists.
    #[error("{0}")]
    Conflict(String),
    /// What the caller named is not stored.
    #[error("{0}")]
    NotFound(String),
}

impl Error {
    /// Whether the database was busy (another writer held it past the busy timeout):
    /// worth retrying later, not a fault of the request.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Engine(e) if crate::sqlite::is_busy(&e.0))
    }
}

/// An error of the database engine, kept opaque so that callers never depend on the
/// engine (SQLite today).
#[derive(Debug, Error)]
#[error("database: {0}")]
pub struct EngineError(rusqlite::Error);

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Engine(EngineError(e))
    }
}

impl From<rusqlite::types::FromSqlError> for Error {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Error::Engine(EngineError(rusqlite::Error::from(e)))
    }
}

/// Result with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
