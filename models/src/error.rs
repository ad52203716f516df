use std::path::PathBuf;

use thiserror::Error;

/// Errors of the models crate.
///
/// Bad *lines* of a history are not errors: they are counted and skipped (see
/// [`crate::TrainingSummary`]). Errors are what stops a whole operation: a missing file,
/// an unreadable artefact, invalid parameters, a solver failure.
#[derive(Debug, Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A history directory that cannot be used as a whole (a required file is missing,
    /// no usable rows, ...).
    #[error("history {}: {message}", path.display())]
    InvalidHistory {
        /// The history directory or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A profile file in a history that does not parse.
    #[error(transparent)]
    Profile(#[from] domain::DomainError),
    /// A model artefact that cannot be read, parsed or trusted.
    #[error("model artefact {}: {message}", path.display())]
    InvalidArtifact {
        /// The artefact file (or model directory).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Training parameters out of range.
    #[error("invalid training parameter: {0}")]
    InvalidParams(String),
    /// The logistic-regression solver failed.
    #[error("fitting {device_type}/{component}: {message}")]
    Fit {
        /// Device type of the model.
        device_type: String,
        /// Component of the model.
        component: String,
        /// The solver's error.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with the crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
