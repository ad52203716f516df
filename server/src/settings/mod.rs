//! Settings of `run` and `demo`, built once: the configuration file ([`ConfigFile`], as
//! written), the command line's [`Overrides`] on top, checked and parsed into
//! [`Settings`], the typed values the process starts from. Nothing downstream parses
//! a setting again (ripgrep's low-level args -> high-level args; linfa's params ->
//! validated params).

mod file;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::time::parse_duration_ms;
use ingest::archive::{ArchiveSettings, InfluxTarget};
use ingest::source::{Endpoint, Protocol, TlsFiles};
use store::hot::DeadLetterRetention;
use store::Synchronous;

pub use file::{
    ArchiveConfig, CommandsConfig, ConfigFile, ConsoleConfig, DeadLettersConfig, DiagnosisConfig,
    HttpConfig, InfluxDbConfig, IngestConfig, ModelsConfig, MqttConfig, ProfilesConfig,
    INFLUXDB_TOKEN_ENV,
};

use crate::{Context, Error, Result};

/// Returns [`Error::Settings`] with a formatted message.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(Error::Settings(format!($($arg)*)))
    };
}
pub(crate) use invalid;

/// The flags of `run` and `demo` that override the configuration file (each `None`
/// leaves the file's value).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--mqtt-listen`.
    pub mqtt_listen: Option<SocketAddr>,
    /// `--mqtt-url`.
    pub mqtt_url: Option<String>,
    /// `--mqtt-protocol` (`3.1.1` or `5`).
    pub mqtt_protocol: Option<String>,
    /// `--mqtt-ca`, `--mqtt-client-cert`, `--mqtt-client-key`.
    pub mqtt_tls: TlsFiles,
    /// `--shared-group`.
    pub shared_group: Option<String>,
    /// `--http-listen`.
    pub http_listen: Option<SocketAddr>,
    /// `--http-tls-cert`.
    pub http_tls_cert: Option<PathBuf>,
    /// `--http-tls-key`.
    pub http_tls_key: Option<PathBuf>,
    /// `--model-dir`.
    pub model_dir: Option<PathBuf>,
    /// `--profiles`.
    pub profiles: Option<PathBuf>,
    /// `--max-future-skew` (a duration or `off`).
    pub max_future_skew: Option<String>,
    /// `--allow-anonymous` (only `true` overrides).
    pub allow_anonymous: bool,
}

impl Overrides {
    /// Writes the flags into `file`.
    fn apply(&self, file: &mut ConfigFile) -> Result<()> {
        let mqtt = &mut file.mqtt;
        if let Some(d) = &self.data_dir {
            file.data_dir = d.clone();
        }
        if let Some(a) = self.mqtt_listen {
            mqtt.listen = a;
        }
        if let Some(u) = &self.mqtt_url {
            mqtt.url = Some(u.clone());
        }
        if let Some(p) = &self.mqtt_protocol {
            mqtt.protocol = p.parse()?;
        }
        let tls = &self.mqtt_tls;
        for (flag, file) in [
            (&tls.ca_file, &mut mqtt.ca_file),
            (&tls.client_cert, &mut mqtt.client_cert),
            (&tls.client_key, &mut mqtt.client_key),
        ] {
            if let Some(f) = flag {
                *file = Some(f.clone());
            }
        }
        if let Some(g) = &self.shared_group {
            mqtt.shared_group = Some(g.clone());
        }
        if let Some(a) = self.http_listen {
            file.http.listen = a;
        }
        if let Some(c) = &self.http_tls_cert {
            file.http.tls_cert = Some(c.clone());
        }
        if let Some(k) = &self.http_tls_key {
            file.http.tls_key = Some(k.clone());
        }
        if let Some(d) = &self.model_dir {
            file.models.dir = Some(d.clone());
        }
        if let Some(d) = &self.profiles {
            file.profiles.dir = Some(d.clone());
        }
        if let Some(s) = &self.max_future_skew {
            file.ingest.max_future_skew = s.clone();
        }
        if self.allow_anonymous {
            mqtt.allow_anonymous = Some(true);
        }
        Ok(())
    }
}

/// Everything `run` and `demo` start from, checked and parsed.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Directory for all state.
    pub data_dir: PathBuf,
    /// The broker and fixahead's MQTT client.
    pub mqtt: MqttSettings,
    /// The HTTP API.
    pub http: HttpSettings,
    /// Ingest batching and durability.
    pub ingest: IngestSettings,
    /// Bounds on the dead-letter table.
    pub dead_letters: DeadLetterRetention,
    /// Models, reloads and the drift watch.
    pub models: ModelSettings,
    /// A directory of extra device profiles.
    pub profiles_dir: Option<PathBuf>,
    /// Ticket priority rules and SLA clocks.
    pub tickets: api::TicketConfig,
    /// Automatic dispatch (`[dispatch]`).
    pub dispatch: api::dispatch::DispatchConfig,
    /// Procedures and their step limits (validated).
    pub procedures: api::tickets::ProcedureConfig,
    /// Satisfaction and call-backs (validated).
    pub satisfaction: api::tickets::SatisfactionConfig,
    /// Webhook delivery.
    pub webhooks: api::WebhookConfig,
    /// The InfluxDB archive, when configured.
    pub archive: Option<Archive>,
    /// From sending a command to its deadline.
    pub commands_timeout: Duration,
    /// Between rebuilds of the fleet summary behind remote diagnosis.
    pub diagnosis_refresh: Duration,
    /// Fleet analytics and batch alarms.
    pub fleet: api::fleet::FleetSettings,
    /// The service console.
    pub console: ConsoleSettings,
    /// The ticket service's clock (not in the file: `run` uses the wall clock, `demo`
    /// a scaled one, `simulate-service` a manual one; docs/service-simulation.md).
    pub clock: crate::clock::ServiceClock,
    /// When set, the real interval of the service sweeps (SLA clocks, steps,
    /// call-backs, dispatch) instead of their configured ones: `demo` runs service
    /// time faster than the wall clock and sweeps every 200 ms.
    pub sweep_every: Option<Duration>,
}

impl Settings {
    /// The real interval of a service sweep whose own interval is `configured`.
    pub fn sweep_interval(&self, configured: Duration) -> Duration {
        self.sweep_every.unwrap_or(configured)
    }
}

/// `[console]`, with the cookie setting resolved against the listener's TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Mark cookies `Secure`.
    pub secure_cookies: bool,
    /// Session expiry.
    pub sessions: store::users::SessionPolicy,
    /// Sign-in limits.
    pub sign_in: store::users::SignInPolicy,
}

/// Which broker, and how fixahead's client talks to it.
#[derive(Clone, Debug)]
pub struct MqttSettings {
    /// The embedded broker or an external one.
    pub broker: Broker,
    /// The MQTT version spoken to an external broker.
    pub protocol: Protocol,
    /// The ingestor's client id (stable: the broker keeps its session under it).
    pub client_id: String,
    /// Username for an external broker.
    pub username: Option<String>,
    /// Password for an external broker.
    pub password: Option<String>,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// The shared-subscription group, if any.
    pub shared_group: Option<String>,
}

/// Where the broker is.
#[derive(Clone, Debug)]
pub enum Broker {
    /// Run the embedded broker.
    Embedded {
        /// Where it listens.
        listen: SocketAddr,
        /// Whether any client may connect without credentials.
        allow_anonymous: bool,
    },
    /// Connect to an external broker.
    External {
        /// Its URL as configured (`mqtt://` or `mqtts://`).
        url: String,
        /// Host, port and TLS, with the TLS files loaded.
        endpoint: Endpoint,
    },
}

/// `[http]`.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// How long audit records are kept, in milliseconds.
    pub audit_retention_ms: i64,
    /// The certificate chain and key when the listener serves HTTPS itself.
    pub tls: Option<HttpTls>,
}

/// `[http] tls_cert` and `tls_key`: PEM files, read when the listener starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTls {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// `[ingest]`.
#[derive(Clone, Debug)]
pub struct IngestSettings {
    /// Most messages per hot-store transaction.
    pub batch_max: usize,
    /// Longest a batch waits for more messages once the queue runs empty.
    pub batch_interval: Duration,
    /// Messages buffered between the MQTT source and the writer.
    pub queue_capacity: usize,
    /// How hard the hot store syncs a commit.
    pub synchronous: Synchronous,
    /// Messages dated more than this many milliseconds after arrival are rejected
    /// (`None`: no bound).
    pub max_future_ms: Option<i64>,
}

/// `[models]`.
#[derive(Clone, Debug)]
pub struct ModelSettings {
    /// The model directory.
    pub dir: PathBuf,
    /// How often to look for a newly activated version (`None`: never).
    pub reload_every: Option<Duration>,
    /// The drift watch's window and sample bound.
    pub drift: models::DriftSettings,
}

/// `[archive.influxdb]`, with its token.
#[derive(Clone, Debug)]
pub struct Archive {
    /// The server, organization, bucket and token.
    pub target: InfluxTarget,
    /// Batching, timeouts, backoff and the cursor file.
    pub settings: ArchiveSettings,
}

impl Settings {
    /// Checks `file` with `overrides` on top and parses it; the InfluxDB token comes
    /// from [`INFLUXDB_TOKEN_ENV`] if set, else from the file.
    pub fn build(mut file: ConfigFile, overrides: &Overrides) -> Result<Self> {
        overrides.apply(&mut file)?;
        Self::from_file(file, std::env::var(INFLUXDB_TOKEN_ENV).ok())
    }

    /// [`Settings::build`] without overrides, with the token passed in.
    pub(crate) fn from_file(file: ConfigFile, env_token: Option<String>) -> Result<Self> {
        let f = &file;
        let http = http(&f.http)?;
        Ok(Settings {
            mqtt: mqtt(&f.mqtt)?,
            console: console(&f.console, &http)?,
            http,
            ingest: ingest(&f.ingest)?,
            dead_letters: dead_letters(&f.dead_letters)?,
            models: models(f)?,
            profiles_dir: f.profiles.dir.clone(),
            tickets: {
                f.tickets.validate()?;
                f.tickets.clone()
            },
            dispatch: {
                f.dispatch.validate()?;
                f.dispatch.clone()
            },
            procedures: {
                f.procedures.validate()?;
                f.procedures.clone()
            },
            satisfaction: {
                f.satisfaction.validate()?;
                f.satisfaction.clone()
            },
            webhooks: {
                f.webhooks.validate()?;
                f.webhooks.clone()
            },
            archive: match &f.archive.influxdb {
                Some(influx) => Some(Archive {
                    settings: influx.settings(&f.data_dir)?,
                    target: influx.target(env_token)?,
                }),
                None => None,
            },
            commands_timeout: {
                if !(1..=3600).contains(&f.commands.timeout_s) {
                    invalid!("commands.timeout_s must be 1-3600");
                }
                Duration::from_secs(f.commands.timeout_s)
            },
            diagnosis_refresh: {
                if !(1..=86_400).contains(&f.diagnosis.refresh_interval_s) {
                    invalid!("diagnosis.refresh_interval_s must be 1-86400");
                }
                Duration::from_secs(f.diagnosis.refresh_interval_s)
            },
            fleet: {
                f.fleet.validate()?;
                f.fleet.clone()
            },
            data_dir: file.data_dir,
            clock: crate::clock::ServiceClock::System,
            sweep_every: None,
        })
    }

    /// Whether the embedded broker runs and lets clients in without credentials.
    pub fn allows_anonymous(&self) -> bool {
        matches!(
            self.mqtt.broker,
            Broker::Embedded {
                allow_anonymous: true,
                ..
            }
        )
    }
}

fn mqtt(m: &MqttConfig) -> Result<MqttSettings> {
    let tls = TlsFiles {
        ca_file: m.ca_file.clone(),
        client_cert: m.client_cert.clone(),
        client_key: m.client_key.clone(),
    };
    let broker = match &m.url {
        // Loads the TLS files too, so a bad CA file stops the start-up.
        Some(url) => Broker::External {
            url: url.clone(),
            endpoint: Endpoint::resolve(url, &tls)?,
        },
        None if !tls.is_empty() => invalid!(
            "mqtt.ca_file, mqtt.client_cert and mqtt.client_key are for an external mqtts:// broker (mqtt.url); the embedded broker has no TLS"
        ),
        None => {
            if m.protocol == Protocol::V5 {
                invalid!("mqtt.protocol = \"5\" needs an external broker (mqtt.url): the embedded broker speaks MQTT 3.1.1 to the ingestor");
            }
            Broker::Embedded {
                listen: m.listen,
                allow_anonymous: m.allow_anonymous.unwrap_or(false),
            }
        }
    };
    let id = &m.client_id;
    if id.trim().is_empty() || id.trim() != id || id.len() > 128 {
        invalid!("mqtt.client_id must be 1-128 characters without surrounding spaces: the broker keeps the persistent session under it");
    }
    if let Some(g) = &m.shared_group {
        if g.is_empty() || g.len() > 64 || g.contains(['/', '+', '#', '$']) || g.trim() != g {
            invalid!("mqtt.shared_group must be 1-64 characters without '/', '+', '#', '$' or surrounding spaces (it becomes a topic level of $share/{{group}}/...)");
        }
    }
    if !(5..=65_535).contains(&m.keep_alive_s) {
        invalid!("mqtt.keep_alive_s must be 5-65535 seconds");
    }
    Ok(MqttSettings {
        broker,
        protocol: m.protocol,
        client_id: m.client_id.clone(),
        username: m.username.clone(),
        password: m.password.clone(),
        keep_alive: Duration::from_secs(m.keep_alive_s),
        shared_group: m.shared_group.clone(),
    })
}

fn http(h: &HttpConfig) -> Result<HttpSettings> {
    if h.max_body_bytes < 1024 || h.max_body_bytes > 64 * 1024 * 1024 {
        invalid!("http.max_body_bytes must be 1024-67108864");
    }
    if h.audit_retention.millis() < 86_400_000 {
        invalid!(
            "http.audit_retention must be at least 1d, got {}",
            h.audit_retention
        );
    }
    let tls = match (&h.tls_cert, &h.tls_key) {
        (Some(cert), Some(key)) => Some(HttpTls {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (None, None) => None,
        _ => {
            invalid!("http.tls_cert and http.tls_key (--http-tls-cert, --http-tls-key) go together")
        }
    };
    Ok(HttpSettings {
        listen: h.listen,
        max_body_bytes: h.max_body_bytes,
        audit_retention_ms: h.audit_retention.millis(),
        tls,
    })
}

fn console(c: &ConsoleConfig, http: &HttpSettings) -> Result<ConsoleSettings> {
    let minute = 60_000;
    if c.session_idle.millis() < minute || c.session_idle > c.session_max_age {
        invalid!(
            "console.session_idle must be at least 1m and at most console.session_max_age, got {}",
            c.session_idle
        );
    }
    if c.sign_in_failures_per_login == 0 || c.sign_in_failures_per_address == 0 {
        invalid!("console.sign_in_failures_per_login and _per_address must be at least 1");
    }
    if c.sign_in_window.millis() < minute {
        invalid!(
            "console.sign_in_window must be at least 1m, got {}",
            c.sign_in_window
        );
    }
    Ok(ConsoleSettings {
        secure_cookies: c.secure_cookies.unwrap_or(http.tls.is_some()),
        sessions: store::users::SessionPolicy {
            idle_ms: c.session_idle.millis(),
            max_age_ms: c.session_max_age.millis(),
        },
        sign_in: store::users::SignInPolicy {
            per_login: c.sign_in_failures_per_login,
            per_address: c.sign_in_failures_per_address,
            window_ms: c.sign_in_window.millis(),
        },
    })
}

fn ingest(i: &IngestConfig) -> Result<IngestSettings> {
    if i.batch_max == 0 || i.batch_max > 100_000 {
        invalid!("ingest.batch_max must be 1-100000");
    }
    if i.queue_capacity == 0 || i.queue_capacity > 1_000_000 {
        invalid!("ingest.queue_capacity must be 1-1000000");
    }
    if i.batch_interval_ms > 10_000 {
        invalid!("ingest.batch_interval_ms must be at most 10000");
    }
    let max_future_ms =
        match i.max_future_skew.as_str() {
            "off" => None,
            s => Some(parse_duration_ms(s).map_err(|e| {
                Error::Settings(format!("ingest.max_future_skew: {e} (or \"off\")"))
            })?),
        };
    Ok(IngestSettings {
        batch_max: i.batch_max,
        batch_interval: Duration::from_millis(i.batch_interval_ms),
        queue_capacity: i.queue_capacity,
        synchronous: i.synchronous,
        max_future_ms,
    })
}

fn dead_letters(dl: &DeadLettersConfig) -> Result<DeadLetterRetention> {
    if dl.max_rows == 0 || dl.max_rows > i64::MAX as u64 {
        invalid!("dead_letters.max_rows must be 1 to 2^63-1");
    }
    let max_age_ms = parse_duration_ms(&dl.max_age).context("dead_letters.max_age")?;
    if max_age_ms < 1 {
        invalid!("dead_letters.max_age must be at least 1ms");
    }
    Ok(DeadLetterRetention {
        max_rows: dl.max_rows,
        max_age_ms,
        ..Default::default()
    })
}

fn models(f: &ConfigFile) -> Result<ModelSettings> {
    let m = &f.models;
    let mut drift = models::DriftSettings::default();
    if let Some(w) = &m.drift_window {
        drift.window_ms = parse_duration_ms(w).context("models.drift_window")?;
        if drift.window_ms < 1 {
            invalid!("models.drift_window must be at least 1ms");
        }
    }
    if let Some(n) = m.drift_min_samples {
        if n == 0 {
            invalid!("models.drift_min_samples must be at least 1");
        }
        drift.min_samples = n;
    }
    Ok(ModelSettings {
        dir: m.dir.clone().unwrap_or_else(|| f.data_dir.join("models")),
        reload_every: match m.reload_interval_s.unwrap_or(5) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
        drift,
    })
}

/// Loads the built-in profiles plus any in `dir`.
pub fn load_profiles(dir: Option<&Path>) -> Result<domain::ProfileSet> {
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
