//! Typed configuration: a TOML file (`--config`), then command-line flags on top.
//!
//! Every section rejects unknown keys, so a typo is an error at start-up rather than a
//! setting silently ignored. docs/configuration.md documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// Directory for all state: hot store, tickets, models. Default `./data`.
    pub(crate) data_dir: PathBuf,
    /// MQTT broker and client.
    pub(crate) mqtt: MqttConfig,
    /// HTTP API.
    pub(crate) http: HttpConfig,
    /// Ingest batching and durability.
    pub(crate) ingest: IngestConfig,
    /// Bounds on the dead-letter table.
    pub(crate) dead_letters: DeadLettersConfig,
    /// Models and scoring.
    pub(crate) models: ModelsConfig,
    /// Extra device profiles.
    pub(crate) profiles: ProfilesConfig,
    /// Ticket priority rules and SLA clocks.
    pub(crate) tickets: api::TicketConfig,
    /// Webhook delivery: timeout, retries and backoff.
    pub(crate) webhooks: api::WebhookConfig,
    /// Optional archives of every stored reading and fault.
    pub(crate) archive: ArchiveConfig,
    /// Remote commands to devices (`self_test`).
    pub(crate) commands: CommandsConfig,
    /// Remote diagnosis: the fleet summary behind it.
    pub(crate) diagnosis: DiagnosisConfig,
    /// Fleet analytics and batch alarms.
    pub(crate) fleet: api::fleet::FleetSettings,
}

impl Default for Config {
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
            webhooks: api::WebhookConfig::default(),
            archive: ArchiveConfig::default(),
            commands: CommandsConfig::default(),
            diagnosis: DiagnosisConfig::default(),
            fleet: api::fleet::FleetSettings::default(),
        }
    }
}

/// `[commands]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CommandsConfig {
    /// Seconds from sending a command to its deadline; a command unanswered by then
    /// is `timed_out`. 1-3600, default 30.
    pub(crate) timeout_s: u64,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self { timeout_s: 30 }
    }
}

/// `[diagnosis]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DiagnosisConfig {
    /// Seconds between rebuilds of the fleet summary (normal ranges, comparable
    /// devices). 1-86400, default 600. The first runs at start-up.
    pub(crate) refresh_interval_s: u64,
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
pub(crate) struct MqttConfig {
    /// Where the embedded broker listens. Ignored when `url` is set.
    pub(crate) listen: SocketAddr,
    /// An external broker, `mqtt://host[:port]` or `mqtts://host[:port]` (TLS). Unset:
    /// run the embedded broker.
    pub(crate) url: Option<String>,
    /// `mqtts://`: PEM file of the CA certificates to trust instead of the system's.
    pub(crate) ca_file: Option<PathBuf>,
    /// `mqtts://`: PEM client certificate chain for mutual TLS (with `client_key`).
    pub(crate) client_cert: Option<PathBuf>,
    /// `mqtts://`: PEM private key of `client_cert`.
    pub(crate) client_key: Option<PathBuf>,
    /// The ingestor's client id; keep it stable so the broker keeps its session.
    pub(crate) client_id: String,
    /// Username for the external broker.
    pub(crate) username: Option<String>,
    /// Password for the external broker.
    pub(crate) password: Option<String>,
    /// MQTT keep-alive in seconds.
    pub(crate) keep_alive_s: u64,
    /// The MQTT version spoken to an external broker: `3.1.1` or `5`.
    pub(crate) protocol: String,
    /// Subscribe as a member of this MQTT shared-subscription group
    /// (`$share/{group}/fixahead/v1/+/+`), so several instances split the load
    /// (docs/operations.md, "Scale-out"). Unset: an ordinary subscription.
    pub(crate) shared_group: Option<String>,
    /// Let any client connect to the embedded broker, without credentials. Unset:
    /// `false` for `run`, `true` for `demo`. No effect with `url` (the external broker
    /// decides).
    pub(crate) allow_anonymous: Option<bool>,
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
            protocol: "3.1.1".into(),
            shared_group: None,
            allow_anonymous: None,
        }
    }
}

impl MqttConfig {
    /// The TLS files for `mqtts://`.
    pub(crate) fn tls_files(&self) -> ingest::source::TlsFiles {
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
pub(crate) struct HttpConfig {
    /// Where the API listens.
    pub(crate) listen: SocketAddr,
    /// Largest request body accepted, in bytes; a larger one gets 413.
    pub(crate) max_body_bytes: usize,
    /// How long audit records are kept (`keys.db`), e.g. `"365d"`.
    pub(crate) audit_retention: api::tickets::ConfigDuration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: api::http::DEFAULT_BODY_LIMIT,
            audit_retention: api::tickets::ConfigDuration::from_hours(365 * 24),
        }
    }
}

/// `[ingest]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct IngestConfig {
    /// Most messages per hot-store transaction.
    pub(crate) batch_max: usize,
    /// Longest a batch waits for more messages once the queue runs empty, in
    /// milliseconds; 0 (default) commits what is waiting at once (group commit).
    pub(crate) batch_interval_ms: u64,
    /// Messages buffered between the MQTT source and the writer.
    pub(crate) queue_capacity: usize,
    /// `full` (fsync every commit) or `normal` (survives a process crash, not a power cut).
    pub(crate) synchronous: store::Synchronous,
    /// Reject messages dated more than this after their arrival (`1d`), or `off`.
    pub(crate) max_future_skew: String,
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
pub(crate) struct DeadLettersConfig {
    /// Most dead letters kept; the oldest beyond it are deleted.
    pub(crate) max_rows: u64,
    /// Dead letters older than this (`30d`) are deleted.
    pub(crate) max_age: String,
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
pub(crate) struct ModelsConfig {
    /// Model directory. Default `{data_dir}/models`.
    pub(crate) dir: Option<PathBuf>,
    /// How often to look for a newly activated model version, in seconds (0 = never).
    pub(crate) reload_interval_s: Option<u64>,
    /// Event time per drift window (`1d`); a drift report covers one to two windows.
    pub(crate) drift_window: Option<String>,
    /// Feature vectors a drift report needs before features are judged (default 500).
    pub(crate) drift_min_samples: Option<u64>,
}

/// `[profiles]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProfilesConfig {
    /// A directory of profile TOML files, added to (or replacing) the built-in ones.
    pub(crate) dir: Option<PathBuf>,
}

/// `[archive]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ArchiveConfig {
    /// `[archive.influxdb]`: archive to InfluxDB 2 when present.
    pub(crate) influxdb: Option<InfluxDbConfig>,
}

/// The environment variable that holds the InfluxDB token, so it can stay out of the
/// config file. It wins over `archive.influxdb.token`.
pub(crate) const INFLUXDB_TOKEN_ENV: &str = "FIXAHEAD_INFLUXDB_TOKEN";

/// `[archive.influxdb]` (docs/archive.md).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct InfluxDbConfig {
    /// `http://host:port` of the InfluxDB 2 server.
    pub(crate) url: String,
    /// Organization name.
    pub(crate) org: String,
    /// Bucket name.
    pub(crate) bucket: String,
    /// API token with write access to the bucket; [`INFLUXDB_TOKEN_ENV`] wins over it.
    pub(crate) token: Option<String>,
    /// Most points per write request.
    pub(crate) batch_size: usize,
    /// Longest a stored point waits to be sent while the server is up (`1s`).
    pub(crate) flush_interval: String,
    /// A write not answered within this is retried (`10s`).
    pub(crate) timeout: String,
    /// Longest wait between two retries while the server is unreachable (`30s`).
    pub(crate) max_backoff: String,
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
    fn settings(&self, data_dir: &Path) -> anyhow::Result<ingest::archive::ArchiveSettings> {
        ingest::archive::parse_influx_url(&self.url)
            .map_err(|e| anyhow::anyhow!("archive.influxdb.url: {e}"))?;
        for (key, value) in [("org", &self.org), ("bucket", &self.bucket)] {
            if value.trim().is_empty() || value.trim() != value {
                bail!("archive.influxdb.{key} is required, without surrounding spaces");
            }
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            bail!("archive.influxdb.token is empty: remove it (and set {INFLUXDB_TOKEN_ENV}) or give the token");
        }
        if !(1..=100_000).contains(&self.batch_size) {
            bail!("archive.influxdb.batch_size must be 1-100000");
        }
        let duration = |key: &str, value: &str, min_ms: i64, max_ms: i64| {
            let ms = domain::time::parse_duration_ms(value)
                .map_err(|e| anyhow::anyhow!("archive.influxdb.{key}: {e}"))?;
            if !(min_ms..=max_ms).contains(&ms) {
                bail!("archive.influxdb.{key} must be {min_ms} ms to {max_ms} ms, got {value:?}");
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
    fn target(&self, env_token: Option<String>) -> anyhow::Result<ingest::archive::InfluxTarget> {
        let token = env_token
            .filter(|t| !t.trim().is_empty())
            .or_else(|| self.token.clone())
            .ok_or_else(|| {
                anyhow::anyhow!("[archive.influxdb] needs a token: set {INFLUXDB_TOKEN_ENV} (or archive.influxdb.token)")
            })?;
        Ok(ingest::archive::InfluxTarget {
            url: ingest::archive::parse_influx_url(&self.url)
                .map_err(|e| anyhow::anyhow!("archive.influxdb.url: {e}"))?,
            org: self.org.clone(),
            bucket: self.bucket.clone(),
            token: token.trim().to_owned(),
        })
    }
}

impl Config {
    /// Reads a config file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Checks values serde cannot.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if !(1..=3600).contains(&self.commands.timeout_s) {
            bail!("commands.timeout_s must be 1-3600");
        }
        if !(1..=86_400).contains(&self.diagnosis.refresh_interval_s) {
            bail!("diagnosis.refresh_interval_s must be 1-86400");
        }
        if self.http.max_body_bytes < 1024 || self.http.max_body_bytes > 64 * 1024 * 1024 {
            bail!("http.max_body_bytes must be 1024-67108864");
        }
        if self.http.audit_retention.millis() < 86_400_000 {
            bail!(
                "http.audit_retention must be at least 1d, got {}",
                self.http.audit_retention
            );
        }
        if self.ingest.batch_max == 0 || self.ingest.batch_max > 100_000 {
            bail!("ingest.batch_max must be 1-100000");
        }
        if self.ingest.queue_capacity == 0 || self.ingest.queue_capacity > 1_000_000 {
            bail!("ingest.queue_capacity must be 1-1000000");
        }
        if self.ingest.batch_interval_ms > 10_000 {
            bail!("ingest.batch_interval_ms must be at most 10000");
        }
        match &self.mqtt.url {
            // Loads the TLS files too, so a bad CA file stops the start-up.
            Some(url) => {
                self.mqtt_endpoint(url)?;
            }
            None if !self.mqtt.tls_files().is_empty() => bail!(
                "mqtt.ca_file, mqtt.client_cert and mqtt.client_key are for an external mqtts:// broker (mqtt.url); the embedded broker has no TLS"
            ),
            None => {}
        }
        self.max_future_ms()?;
        self.dead_letter_retention()?;
        self.fleet.validate()?;
        if let Some(influx) = &self.archive.influxdb {
            influx.settings(&self.data_dir)?;
        }
        let id = &self.mqtt.client_id;
        if id.trim().is_empty() || id.trim() != id || id.len() > 128 {
            bail!("mqtt.client_id must be 1-128 characters without surrounding spaces: the broker keeps the persistent session under it");
        }
        if let Some(g) = &self.mqtt.shared_group {
            if g.is_empty() || g.len() > 64 || g.contains(['/', '+', '#', '$']) || g.trim() != g {
                bail!("mqtt.shared_group must be 1-64 characters without '/', '+', '#', '$' or surrounding spaces (it becomes a topic level of $share/{{group}}/...)");
            }
        }
        if self.mqtt_protocol()? == ingest::source::Protocol::V5 && self.mqtt.url.is_none() {
            bail!("mqtt.protocol = \"5\" needs an external broker (mqtt.url): the embedded broker speaks MQTT 3.1.1 to the ingestor");
        }
        if !(5..=65_535).contains(&self.mqtt.keep_alive_s) {
            bail!("mqtt.keep_alive_s must be 5-65535 seconds");
        }
        Ok(())
    }

    /// The external broker to connect to, with its TLS configuration for `mqtts://`.
    pub(crate) fn mqtt_endpoint(&self, url: &str) -> anyhow::Result<ingest::source::Endpoint> {
        Ok(ingest::source::Endpoint::resolve(
            url,
            &self.mqtt.tls_files(),
        )?)
    }

    /// The MQTT version spoken to the broker.
    pub(crate) fn mqtt_protocol(&self) -> anyhow::Result<ingest::source::Protocol> {
        Ok(self.mqtt.protocol.parse()?)
    }

    /// The model directory.
    pub(crate) fn model_dir(&self) -> PathBuf {
        self.models
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// The future-skew bound in milliseconds, `None` when `off`.
    pub(crate) fn max_future_ms(&self) -> anyhow::Result<Option<i64>> {
        match self.ingest.max_future_skew.as_str() {
            "off" => Ok(None),
            s => Ok(Some(domain::time::parse_duration_ms(s).map_err(|e| {
                anyhow::anyhow!("ingest.max_future_skew: {e} (or \"off\")")
            })?)),
        }
    }

    /// The drift watch's window and sample bound (`[models] drift_window`,
    /// `drift_min_samples`).
    pub(crate) fn drift_settings(&self) -> anyhow::Result<models::DriftSettings> {
        let mut settings = models::DriftSettings::default();
        if let Some(w) = &self.models.drift_window {
            settings.window_ms = domain::time::parse_duration_ms(w)
                .map_err(|e| anyhow::anyhow!("models.drift_window: {e}"))?;
            if settings.window_ms < 1 {
                bail!("models.drift_window must be at least 1ms");
            }
        }
        if let Some(n) = self.models.drift_min_samples {
            if n == 0 {
                bail!("models.drift_min_samples must be at least 1");
            }
            settings.min_samples = n;
        }
        Ok(settings)
    }

    /// The dead-letter bounds the writer enforces.
    pub(crate) fn dead_letter_retention(&self) -> anyhow::Result<store::hot::DeadLetterRetention> {
        let dl = &self.dead_letters;
        if dl.max_rows == 0 || dl.max_rows > i64::MAX as u64 {
            bail!("dead_letters.max_rows must be 1 to 2^63-1");
        }
        let max_age_ms = domain::time::parse_duration_ms(&dl.max_age)
            .map_err(|e| anyhow::anyhow!("dead_letters.max_age: {e}"))?;
        if max_age_ms < 1 {
            bail!("dead_letters.max_age must be at least 1ms");
        }
        Ok(store::hot::DeadLetterRetention {
            max_rows: dl.max_rows,
            max_age_ms,
            ..Default::default()
        })
    }

    /// The InfluxDB archive's server and settings, if `[archive.influxdb]` is present.
    /// The token comes from the environment ([`INFLUXDB_TOKEN_ENV`]) or the file.
    pub(crate) fn influx_archive(
        &self,
    ) -> anyhow::Result<
        Option<(
            ingest::archive::InfluxTarget,
            ingest::archive::ArchiveSettings,
        )>,
    > {
        let Some(influx) = &self.archive.influxdb else {
            return Ok(None);
        };
        let settings = influx.settings(&self.data_dir)?;
        let target = influx.target(std::env::var(INFLUXDB_TOKEN_ENV).ok())?;
        Ok(Some((target, settings)))
    }

    /// Whether the embedded broker lets clients in without credentials (`run`'s default:
    /// no; `demo` sets it to yes unless the file says otherwise).
    pub(crate) fn allow_anonymous(&self) -> bool {
        self.mqtt.allow_anonymous.unwrap_or(false)
    }

    /// The batch interval.
    pub(crate) fn batch_interval(&self) -> Duration {
        Duration::from_millis(self.ingest.batch_interval_ms)
    }
}

/// Loads the built-in profiles plus any in `dir`.
pub(crate) fn load_profiles(dir: Option<&Path>) -> anyhow::Result<domain::ProfileSet> {
    let mut set = domain::ProfileSet::builtin();
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading profile directory {}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading profile {}", path.display()))?;
            let profile = domain::Profile::from_toml(&path.display().to_string(), &text)?;
            set.insert(profile);
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_keys() {
        let err =
            toml::from_str::<Config>("[mqtt]\nlisten = \"127.0.0.1:1\"\nlistn = 2\n").unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../docs/configuration.md");
        let start = doc
            .find("```toml\n")
            .expect("an example in docs/configuration.md")
            + 8;
        let end = start + doc[start..].find("```").expect("closed code block");
        let cfg: Config =
            toml::from_str(&doc[start..end]).expect("docs/configuration.md example parses");
        cfg.validate().unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/fixahead"));
        assert_eq!(cfg.ingest.batch_interval_ms, 0);
        let documented = cfg.dead_letter_retention().unwrap();
        let default = Config::default().dead_letter_retention().unwrap();
        assert_eq!(documented, default, "the example shows the defaults");
        assert_eq!(default, store::hot::DeadLetterRetention::default());
        assert_eq!(default.max_rows, 100_000);
        assert_eq!(default.max_age_ms, 30 * domain::Timestamp::DAY_MS);
        assert_eq!(
            cfg.fleet,
            api::fleet::FleetSettings::default(),
            "[fleet] shows the defaults"
        );
    }

    #[test]
    fn rejects_values_serde_cannot() {
        for bad in [
            "[mqtt]\nclient_id = \"\"\n",
            "[mqtt]\nkeep_alive_s = 1\n",
            "[mqtt]\nkeep_alive_s = 70000\n",
            "[ingest]\nbatch_max = 0\n",
            "[mqtt]\nurl = \"http://x\"\n",
            "[mqtt]\nurl = \"mqtts://[::1]\"\n",
            "[mqtt]\nurl = \"mqtt://h\"\nprotocol = \"4\"\n",
            "[mqtt]\nprotocol = \"5\"\n",
            // TLS files without mqtts://, or a CA file that does not exist.
            "[mqtt]\nca_file = \"/etc/ssl/certs/ca-certificates.crt\"\n",
            "[mqtt]\nurl = \"mqtt://h\"\nca_file = \"/etc/ssl/certs/ca-certificates.crt\"\n",
            "[mqtt]\nurl = \"mqtts://h\"\nca_file = \"/nonexistent/ca.pem\"\n",
            "[mqtt]\nurl = \"mqtts://h\"\nclient_key = \"/nonexistent/key.pem\"\n",
            "[dead_letters]\nmax_rows = 0\n",
            "[dead_letters]\nmax_age = \"0d\"\n",
            "[dead_letters]\nmax_age = \"-1d\"\n",
            "[dead_letters]\nmax_age = \"0.1ms\"\n",
            "[dead_letters]\nmax_age = \"30\"\n",
            "[fleet]\nalarm_fdr = 0\n",
            "[fleet]\nalarm_min_ratio = 0.5\n",
            "[fleet]\nalarm_min_count = 0\n",
        ] {
            let cfg: Config = toml::from_str(bad).unwrap();
            assert!(cfg.validate().is_err(), "{bad}");
        }
    }

    /// The `[archive.influxdb]` example of docs/configuration.md ("Archive to InfluxDB").
    fn documented_archive_example() -> Config {
        let doc = include_str!("../docs/configuration.md");
        let section = &doc[doc
            .find("## Archive to InfluxDB")
            .expect("an archive section in docs/configuration.md")..];
        let start = section.find("```toml\n").expect("an archive example") + 8;
        let end = start + section[start..].find("```").expect("closed code block");
        toml::from_str(&section[start..end]).expect("the archive example parses")
    }

    #[test]
    fn the_documented_archive_example_is_valid_and_shows_the_defaults() {
        let cfg = documented_archive_example();
        cfg.validate().unwrap();
        let influx = cfg.archive.influxdb.as_ref().expect("[archive.influxdb]");
        assert!(
            influx.token.is_none(),
            "the example keeps the token out of the file"
        );
        let settings = influx.settings(&cfg.data_dir).unwrap();
        let defaults = InfluxDbConfig::default()
            .settings(&cfg.data_dir)
            .unwrap_err()
            .to_string();
        assert!(defaults.contains("url"), "url has no default: {defaults}");
        use ingest::archive::ArchiveSettings as A;
        assert_eq!(settings.batch_size, A::DEFAULT_BATCH_SIZE);
        assert_eq!(settings.flush_interval, A::DEFAULT_FLUSH_INTERVAL);
        assert_eq!(settings.timeout, A::DEFAULT_TIMEOUT);
        assert_eq!(settings.max_backoff, A::DEFAULT_MAX_BACKOFF);
        assert_eq!(settings.cursor_path, cfg.data_dir.join(A::CURSOR_FILE));
        // The token: the environment's, else the file's, else an error at start.
        let err = influx.target(None).unwrap_err().to_string();
        assert!(err.contains(INFLUXDB_TOKEN_ENV), "{err}");
        assert_eq!(
            influx.target(Some("env-token".into())).unwrap().token,
            "env-token"
        );
        let mut with_file_token = influx.clone();
        with_file_token.token = Some("file-token".into());
        assert_eq!(with_file_token.target(None).unwrap().token, "file-token");
        assert_eq!(
            with_file_token
                .target(Some("env-token".into()))
                .unwrap()
                .token,
            "env-token"
        );
        assert_eq!(
            with_file_token.target(Some(" ".into())).unwrap().token,
            "file-token",
            "an empty variable does not count"
        );
        assert!(
            !format!("{with_file_token:?}").contains("file-token"),
            "Debug hides the token"
        );
        // No archive unless the section is there.
        assert!(Config::default().influx_archive().unwrap().is_none());
    }

    #[test]
    fn archive_keys_are_checked() {
        let base =
            "[archive.influxdb]\nurl = \"http://influx:8086\"\norg = \"o\"\nbucket = \"b\"\n";
        let cfg: Config = toml::from_str(base).unwrap();
        cfg.validate().unwrap();
        let err = toml::from_str::<Config>(&format!("{base}buket = \"x\"\n")).unwrap_err();
        assert!(err.to_string().contains("buket"), "{err}");
        for bad in [
            "url = \"https://influx:8086\"",
            "url = \"influx:8086\"",
            "url = \"http://influx:8086/api/v2/write\"",
            "org = \"\"",
            "bucket = \" b\"",
            "token = \"\"",
            "batch_size = 0",
            "batch_size = 100001",
            "flush_interval = \"0s\"",
            "flush_interval = \"1\"",
            "timeout = \"10ms\"",
            "max_backoff = \"2h\"",
        ] {
            let key = bad.split(' ').next().unwrap();
            let text = base
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} ")))
                .chain([bad])
                .collect::<Vec<_>>()
                .join("\n");
            let cfg: Config = toml::from_str(&text).unwrap();
            assert!(cfg.validate().is_err(), "{bad}");
        }
        let missing: Config =
            toml::from_str("[archive.influxdb]\norg = \"o\"\nbucket = \"b\"\n").unwrap();
        assert!(missing.validate().is_err(), "url is required");
    }

    #[test]
    fn reads_a_full_file() {
        let cfg: Config = toml::from_str(
            "data_dir = \"/tmp/x\"\n[mqtt]\nurl = \"mqtt://broker:1883\"\n[http]\nlisten = \"0.0.0.0:9000\"\n[ingest]\nsynchronous = \"normal\"\n[dead_letters]\nmax_rows = 1\nmax_age = \"12h\"\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        assert!(
            !cfg.allow_anonymous(),
            "run requires credentials by default"
        );
        assert_eq!(cfg.http.listen.port(), 9000);
        assert_eq!(cfg.model_dir(), PathBuf::from("/tmp/x/models"));
        let retention = cfg.dead_letter_retention().unwrap();
        assert_eq!(
            (retention.max_rows, retention.max_age_ms),
            (1, 12 * domain::Timestamp::HOUR_MS)
        );
    }
}
