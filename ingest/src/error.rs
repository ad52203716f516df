use thiserror::Error;

/// Errors of the ingest crate.
#[derive(Debug, Error)]
pub enum Error {
    /// The hot store failed.
    #[error("hot store: {0}")]
    Store(#[from] store::Error),
    /// A file-system operation on the data directory failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The embedded broker could not start.
    #[error("embedded MQTT broker: {0}")]
    Broker(String),
    /// The MQTT client was misconfigured or its request channel closed.
    #[error("MQTT client: {0}")]
    Mqtt(String),
    /// TLS for `mqtts://` is misconfigured: a file that cannot be read, holds no
    /// usable certificate or key, or is set without `mqtts://`.
    #[error("MQTT TLS: {0}")]
    Tls(String),
    /// Stored data could not be decoded (a bug or a corrupted file).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A background task panicked or was cancelled.
    #[error("ingest task failed: {0}")]
    Task(String),
    /// The InfluxDB archive is misconfigured or its cursor file is unreadable.
    #[error("InfluxDB archive: {0}")]
    Archive(String),
}

/// Result with [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
