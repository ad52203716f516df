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
        }
    }
}

/// `[mqtt]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MqttConfig {
    /// Where the embedded broker listens. Ignored when `url` is set.
    pub(crate) listen: SocketAddr,
    /// An external broker, `mqtt://host:port`. Unset: run the embedded broker.
    pub(crate) url: Option<String>,
    /// The ingestor's client id; keep it stable so the broker keeps its session.
    pub(crate) client_id: String,
    /// Username for the external broker.
    pub(crate) username: Option<String>,
    /// Password for the external broker.
    pub(crate) password: Option<String>,
    /// MQTT keep-alive in seconds.
    pub(crate) keep_alive_s: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            url: None,
            client_id: "fixahead-ingest".into(),
            username: None,
            password: None,
            keep_alive_s: 30,
        }
    }
}

/// `[http]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpConfig {
    /// Where the API listens.
    pub(crate) listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// `[ingest]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct IngestConfig {
    /// Most messages per hot-store transaction.
    pub(crate) batch_max: usize,
    /// Longest a message waits for its batch, in milliseconds.
    pub(crate) batch_interval_ms: u64,
    /// Messages buffered between the MQTT source and the writer.
    pub(crate) queue_capacity: usize,
    /// `full` (fsync every commit) or `normal` (survives a process crash, not a power cut).
    pub(crate) synchronous: ingest::store::Synchronous,
    /// Reject messages dated more than this after their arrival (`1d`), or `off`.
    pub(crate) max_future_skew: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_max: 512,
            batch_interval_ms: 20,
            queue_capacity: 2048,
            synchronous: ingest::store::Synchronous::Full,
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
            max_rows: ingest::store::DeadLetterRetention::DEFAULT_MAX_ROWS,
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
}

/// `[profiles]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProfilesConfig {
    /// A directory of profile TOML files, added to (or replacing) the built-in ones.
    pub(crate) dir: Option<PathBuf>,
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
        if self.ingest.batch_max == 0 || self.ingest.batch_max > 100_000 {
            bail!("ingest.batch_max must be 1-100000");
        }
        if self.ingest.queue_capacity == 0 || self.ingest.queue_capacity > 1_000_000 {
            bail!("ingest.queue_capacity must be 1-1000000");
        }
        if self.ingest.batch_interval_ms > 10_000 {
            bail!("ingest.batch_interval_ms must be at most 10000");
        }
        if let Some(url) = &self.mqtt.url {
            ingest::source::parse_mqtt_url(url)?;
        }
        self.max_future_ms()?;
        self.dead_letter_retention()?;
        let id = &self.mqtt.client_id;
        if id.trim().is_empty() || id.trim() != id || id.len() > 128 {
            bail!("mqtt.client_id must be 1-128 characters without surrounding spaces: the broker keeps the persistent session under it");
        }
        if !(5..=65_535).contains(&self.mqtt.keep_alive_s) {
            bail!("mqtt.keep_alive_s must be 5-65535 seconds");
        }
        Ok(())
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

    /// The dead-letter bounds the writer enforces.
    pub(crate) fn dead_letter_retention(
        &self,
    ) -> anyhow::Result<ingest::store::DeadLetterRetention> {
        let dl = &self.dead_letters;
        if dl.max_rows == 0 || dl.max_rows > i64::MAX as u64 {
            bail!("dead_letters.max_rows must be 1 to 2^63-1");
        }
        let max_age_ms = domain::time::parse_duration_ms(&dl.max_age)
            .map_err(|e| anyhow::anyhow!("dead_letters.max_age: {e}"))?;
        if max_age_ms < 1 {
            bail!("dead_letters.max_age must be at least 1ms");
        }
        Ok(ingest::store::DeadLetterRetention {
            max_rows: dl.max_rows,
            max_age_ms,
            ..Default::default()
        })
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
        assert_eq!(cfg.ingest.batch_interval_ms, 20);
        let documented = cfg.dead_letter_retention().unwrap();
        let default = Config::default().dead_letter_retention().unwrap();
        assert_eq!(documented, default, "the example shows the defaults");
        assert_eq!(default, ingest::store::DeadLetterRetention::default());
        assert_eq!(default.max_rows, 100_000);
        assert_eq!(default.max_age_ms, 30 * domain::Timestamp::DAY_MS);
    }

    #[test]
    fn rejects_values_serde_cannot() {
        for bad in [
            "[mqtt]\nclient_id = \"\"\n",
            "[mqtt]\nkeep_alive_s = 1\n",
            "[mqtt]\nkeep_alive_s = 70000\n",
            "[ingest]\nbatch_max = 0\n",
            "[mqtt]\nurl = \"http://x\"\n",
            "[dead_letters]\nmax_rows = 0\n",
            "[dead_letters]\nmax_age = \"0d\"\n",
            "[dead_letters]\nmax_age = \"-1d\"\n",
            "[dead_letters]\nmax_age = \"0.1ms\"\n",
            "[dead_letters]\nmax_age = \"30\"\n",
        ] {
            let cfg: Config = toml::from_str(bad).unwrap();
            assert!(cfg.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_a_full_file() {
        let cfg: Config = toml::from_str(
            "data_dir = \"/tmp/x\"\n[mqtt]\nurl = \"mqtt://broker:1883\"\n[http]\nlisten = \"0.0.0.0:9000\"\n[ingest]\nsynchronous = \"normal\"\n[dead_letters]\nmax_rows = 1\nmax_age = \"12h\"\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.http.listen.port(), 9000);
        assert_eq!(cfg.model_dir(), PathBuf::from("/tmp/x/models"));
        let retention = cfg.dead_letter_retention().unwrap();
        assert_eq!(
            (retention.max_rows, retention.max_age_ms),
            (1, 12 * domain::Timestamp::HOUR_MS)
        );
    }
}
