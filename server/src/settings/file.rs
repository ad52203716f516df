//! The configuration file (`--config`) as written: TOML, every key optional (a
//! missing one takes its default), every section rejecting unknown keys, so a typo is
//! an error at start-up rather than a setting silently ignored. docs/configuration.md
//! documents every key. [`super::Settings::build`] checks what serde cannot and turns
//! it, with the flags on top, into the settings `run` and `demo` use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::invalid;
use crate::{Context, Error, Result};
use serde::Deserialize;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// Directory for all state: hot store, tickets, models. Default `./data`.
    pub data_dir: PathBuf,
    /// MQTT broker and client.
    pub mqtt: MqttConfig,
    /// HTTP API.
    pub http: HttpConfig,
    /// Ingest batching and durability.
    pub ingest: IngestConfig,
    /// Bounds on the dead-letter table.
    pub dead_letters: DeadLettersConfig,
    /// Models and scoring.
    pub models: ModelsConfig,
    /// Extra device profiles.
    pub profiles: ProfilesConfig,
    /// Ticket priority rules and SLA clocks.
    pub tickets: api::TicketConfig,
    /// Procedures: the steps of each problem type with their time limits
    /// (docs/procedures.md).
    pub procedures: api::tickets::ProcedureConfig,
    /// Satisfaction answers and the call-backs of dissatisfied customers.
    pub satisfaction: api::tickets::SatisfactionConfig,
    /// Webhook delivery: timeout, retries and backoff.
    pub webhooks: api::WebhookConfig,
    /// Optional archives of every stored reading and fault.
    pub archive: ArchiveConfig,
    /// Remote commands to devices (`self_test`).
    pub commands: CommandsConfig,
    /// Remote diagnosis: the fleet summary behind it.
    pub diagnosis: DiagnosisConfig,
    /// Fleet analytics and batch alarms.
    pub fleet: api::fleet::FleetSettings,
    /// The service console: sessions and sign-in limits.
    pub console: ConsoleConfig,
    /// Automatic dispatch: per priority and device type auto or propose, the
    /// escalation manager, the sweep interval, visit length and travel assumptions
    /// (docs/dispatch.md).
    pub dispatch: api::dispatch::DispatchConfig,
}

impl Default for ConfigFile {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            mqtt: MqttConfig::default(),
            http: HttpConfig::default(),
            ingest: IngestConfig::default(),
            dead_letters: DeadLettersConfig::default(),
            models: ModelsConfig::default(),
            profiles: ProfilesConfig::default(),
            tickets: api::TicketConfig::default(),
            procedures: api::tickets::ProcedureConfig::default(),
            satisfaction: api::tickets::SatisfactionConfig::default(),
            webhooks: api::WebhookConfig::default(),
            archive: ArchiveConfig::default(),
            commands: CommandsConfig::default(),
            console: ConsoleConfig::default(),
            diagnosis: DiagnosisConfig::default(),
            fleet: api::fleet::FleetSettings::default(),
            dispatch: api::dispatch::DispatchConfig::default(),
        }
    }
}

/// `[commands]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsConfig {
    /// Seconds from sending a command to its deadline; a command unanswered by then
    /// is `timed_out`. 1-3600, default 30.
    pub timeout_s: u64,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self { timeout_s: 30 }
    }
}

/// `[diagnosis]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosisConfig {
    /// Seconds between rebuilds of the fleet summary (normal ranges, comparable
    /// devices). 1-86400, default 600. The first runs at start-up.
    pub refresh_interval_s: u64,
}

impl Default for DiagnosisConfig {
    fn default() -> Self {
        Self {
            refresh_interval_s: 600,
        }
    }
}

/// `[mqtt]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Where the embedded broker listens. Ignored when `url` is set.
    pub listen: SocketAddr,
    /// An external broker, `mqtt://host[:port]` or `mqtts://host[:port]` (TLS). Unset:
    /// run the embedded broker.
    pub url: Option<String>,
    /// `mqtts://`: PEM file of the CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// `mqtts://`: PEM client certificate chain for mutual TLS (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// `mqtts://`: PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// The ingestor's client id; keep it stable so the broker keeps its session.
    pub client_id: String,
    /// Username for the external broker.
    pub username: Option<String>,
    /// Password for the external broker.
    pub password: Option<String>,
    /// MQTT keep-alive in seconds.
    pub keep_alive_s: u64,
    /// The MQTT version spoken to an external broker: `3.1.1` or `5`.
    pub protocol: ingest::source::Protocol,
    /// Subscribe as a member of this MQTT shared-subscription group
    /// (`$share/{group}/fixahead/v1/+/+`), so several instances split the load
    /// (docs/operations.md, "Scale-out"). Unset: an ordinary subscription.
    pub shared_group: Option<String>,
    /// Let any client connect to the embedded broker, without credentials. Unset:
    /// `false` for `run`, `true` for `demo`. No effect with `url` (the external broker
    /// decides).
    pub allow_anonymous: Option<bool>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            url: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            client_id: "fixahead-ingest".into(),
            username: None,
            password: None,
            keep_alive_s: 30,
            protocol: ingest::source::Protocol::V311,
            shared_group: None,
            allow_anonymous: None,
        }
    }
}

impl MqttConfig {
    /// The TLS files for `mqtts://`.
    pub fn tls_files(&self) -> ingest::source::TlsFiles {
        ingest::source::TlsFiles {
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }
}

/// `[http]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; a larger one gets 413.
    pub max_body_bytes: usize,
    /// How long audit records are kept (`keys.db`), e.g. `"365d"`.
    pub audit_retention: api::tickets::ConfigDuration,
    /// PEM certificate chain: with `tls_key`, the listener speaks HTTPS itself.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: api::http::DEFAULT_BODY_LIMIT,
            audit_retention: api::tickets::ConfigDuration::from_hours(365 * 24),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[console]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Mark the console's cookies `Secure`. Default: on when the listener serves TLS
    /// (`[http] tls_cert`); set it when a TLS-terminating proxy stands in front.
    pub secure_cookies: Option<bool>,
    /// A session without a request for this long has ended (default `8h`).
    pub session_idle: api::tickets::ConfigDuration,
    /// A session this old has ended, however active (default `7d`).
    pub session_max_age: api::tickets::ConfigDuration,
    /// Failed sign-ins per login within `sign_in_window` before refusing (default 5).
    pub sign_in_failures_per_login: u32,
    /// Failed sign-ins per client address within `sign_in_window` (default 20).
    pub sign_in_failures_per_address: u32,
    /// The window the failures are counted in (default `15m`).
    pub sign_in_window: api::tickets::ConfigDuration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        let sessions = store::users::SessionPolicy::default();
        let sign_in = store::users::SignInPolicy::default();
        Self {
            secure_cookies: None,
            session_idle: api::tickets::ConfigDuration::from_millis(sessions.idle_ms),
            session_max_age: api::tickets::ConfigDuration::from_millis(sessions.max_age_ms),
            sign_in_failures_per_login: sign_in.per_login,
            sign_in_failures_per_address: sign_in.per_address,
            sign_in_window: api::tickets::ConfigDuration::from_millis(sign_in.window_ms),
        }
    }
}

/// `[ingest]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Most messages per hot-store transaction.
    pub batch_max: usize,
    /// Longest a batch waits for more messages once the queue runs empty, in
    /// milliseconds; 0 (default) commits what is waiting at once (group commit).
    pub batch_interval_ms: u64,
    /// Messages buffered between the MQTT source and the writer.
    pub queue_capacity: usize,
    /// `full` (fsync every commit) or `normal` (survives a process crash, not a power cut).
    pub synchronous: store::Synchronous,
    /// Reject messages dated more than this after their arrival (`1d`), or `off`.
    pub max_future_skew: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_max: 512,
            batch_interval_ms: 0,
            queue_capacity: 2048,
            synchronous: store::Synchronous::Full,
            max_future_skew: "1d".into(),
        }
    }
}

/// `[dead_letters]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLettersConfig {
    /// Most dead letters kept; the oldest beyond it are deleted.
    pub max_rows: u64,
    /// Dead letters older than this (`30d`) are deleted.
    pub max_age: String,
}

impl Default for DeadLettersConfig {
    fn default() -> Self {
        Self {
            max_rows: store::hot::DeadLetterRetention::DEFAULT_MAX_ROWS,
            max_age: "30d".into(),
        }
    }
}

/// `[models]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Model directory. Default `{data_dir}/models`.
    pub dir: Option<PathBuf>,
    /// How often to look for a newly activated model version, in seconds (0 = never).
    pub reload_interval_s: Option<u64>,
    /// Event time per drift window (`1d`); a drift report covers one to two windows.
    pub drift_window: Option<String>,
    /// Feature vectors a drift report needs before features are judged (default 500).
    pub drift_min_samples: Option<u64>,
}

/// `[profiles]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfilesConfig {
    /// A directory of profile TOML files, added to (or replacing) the built-in ones.
    pub dir: Option<PathBuf>,
}

/// `[archive]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// `[archive.influxdb]`: archive to InfluxDB 2 when present.
    pub influxdb: Option<InfluxDbConfig>,
}

/// The environment variable that holds the InfluxDB token, so it can stay out of the
/// config file. It wins over `archive.influxdb.token`.
pub const INFLUXDB_TOKEN_ENV: &str = "FIXAHEAD_INFLUXDB_TOKEN";

/// `[archive.influxdb]` (docs/archive.md).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfluxDbConfig {
    /// `http://host:port` of the InfluxDB 2 server.
    pub url: String,
    /// Organization name.
    pub org: String,
    /// Bucket name.
    pub bucket: String,
    /// API token with write access to the bucket; [`INFLUXDB_TOKEN_ENV`] wins over it.
    pub token: Option<String>,
    /// Most points per write request.
    pub batch_size: usize,
    /// Longest a stored point waits to be sent while the server is up (`1s`).
    pub flush_interval: String,
    /// A write not answered within this is retried (`10s`).
    pub timeout: String,
    /// Longest wait between two retries while the server is unreachable (`30s`).
    pub max_backoff: String,
}

impl Default for InfluxDbConfig {
    fn default() -> Self {
        use ingest::archive::ArchiveSettings as A;
        Self {
            url: String::new(),
            org: String::new(),
            bucket: String::new(),
            token: None,
            batch_size: A::DEFAULT_BATCH_SIZE,
            flush_interval: "1s".into(),
            timeout: "10s".into(),
            max_backoff: "30s".into(),
        }
    }
}

impl std::fmt::Debug for InfluxDbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxDbConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("timeout", &self.timeout)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl InfluxDbConfig {
    /// Checks every key but the token and returns the archiver's settings.
    pub(super) fn settings(&self, data_dir: &Path) -> Result<ingest::archive::ArchiveSettings> {
        ingest::archive::parse_influx_url(&self.url)
            .map_err(|e| Error::Settings(format!("archive.influxdb.url: {e}")))?;
        for (key, value) in [("org", &self.org), ("bucket", &self.bucket)] {
            if value.trim().is_empty() || value.trim() != value {
                invalid!("archive.influxdb.{key} is required, without surrounding spaces");
            }
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            invalid!("archive.influxdb.token is empty: remove it (and set {INFLUXDB_TOKEN_ENV}) or give the token");
        }
        if !(1..=100_000).contains(&self.batch_size) {
            invalid!("archive.influxdb.batch_size must be 1-100000");
        }
        let duration = |key: &str, value: &str, min_ms: i64, max_ms: i64| {
            let ms = domain::time::parse_duration_ms(value)
                .with_context(|| format!("archive.influxdb.{key}"))?;
            if !(min_ms..=max_ms).contains(&ms) {
                invalid!(
                    "archive.influxdb.{key} must be {min_ms} ms to {max_ms} ms, got {value:?}"
                );
            }
            Ok(Duration::from_millis(ms as u64))
        };
        let hour = domain::Timestamp::HOUR_MS;
        Ok(ingest::archive::ArchiveSettings {
            batch_size: self.batch_size,
            flush_interval: duration("flush_interval", &self.flush_interval, 1, hour)?,
            timeout: duration("timeout", &self.timeout, 100, hour)?,
            max_backoff: duration("max_backoff", &self.max_backoff, 1, hour)?,
            cursor_path: data_dir.join(ingest::archive::ArchiveSettings::CURSOR_FILE),
        })
    }

    /// The server to write to, with the token from `env_token` (the value of
    /// [`INFLUXDB_TOKEN_ENV`]) if set, else from the file.
    pub(super) fn target(
        &self,
        env_token: Option<String>,
    ) -> Result<ingest::archive::InfluxTarget> {
        let token = env_token
            .filter(|t| !t.trim().is_empty())
            .or_else(|| self.token.clone())
            .with_context(|| {
                format!("[archive.influxdb] needs a token: set {INFLUXDB_TOKEN_ENV} (or archive.influxdb.token)")
            })?;
        Ok(ingest::archive::InfluxTarget {
            url: ingest::archive::parse_influx_url(&self.url)
                .map_err(|e| Error::Settings(format!("archive.influxdb.url: {e}")))?,
            org: self.org.clone(),
            bucket: self.bucket.clone(),
            token: token.trim().to_owned(),
        })
    }
}

impl ConfigFile {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// The file at `path`, or the defaults without one.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }
}
