//! The arguments of the product's commands (clap derive types). The binary's parser
//! embeds them; the commands in [`crate::commands`] take them. Flags are a public
//! contract (see README.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
    /// TOML configuration file (for its data_dir); --data-dir overrides it.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory holding keys.db [default: ./data].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key. Prints it once, alone on stdout; fixahead keeps only its hash.
    Create {
        /// admin, planner, engineer or integration (docs/api.md, "Roles").
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// A label: who or what holds the key [default: "ROLE (command line)"].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// List the keys (id, role, created, valid or revoked, name); never the secrets.
    List,
    /// Revoke a key: requests with it get 401 from now on.
    Revoke {
        /// The key id (from `keys list`).
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
    /// TOML configuration file (for its data_dir); --data-dir overrides it.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory holding keys.db [default: ./data].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a person who signs in to the console. Prints a generated password once,
    /// alone on stdout; fixahead keeps only its argon2id hash.
    Add {
        /// The login: 1-64 of a-z, 0-9, '.', '_', '-'. An engineer's login is the name
        /// tickets are assigned to.
        login: String,
        /// admin, planner or engineer.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// How pages and ticket logs name the person [default: the login].
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// Language of the console: en or zh (Simplified Chinese).
        #[arg(long, value_name = "LANG", default_value = "en")]
        lang: String,
        /// IANA time zone the console shows times in (Asia/Shanghai, Europe/Berlin).
        #[arg(long, value_name = "TZ", default_value = "UTC")]
        time_zone: String,
    },
    /// List the accounts (id, login, role, language, time zone, enabled or disabled,
    /// display name).
    List,
    /// Give an account a new generated password (printed once, alone on stdout) and end
    /// its sessions.
    ResetPassword {
        /// The login.
        login: String,
    },
    /// Disable an account: its sessions end at once and it cannot sign in.
    Disable {
        /// The login.
        login: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// The login.
        login: String,
    },
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[command(subcommand)]
    pub command: DevicesCommand,
    /// TOML configuration file (for its data_dir); --data-dir overrides it.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory holding devices.db [default: ./data].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Issue MQTT credentials for a device (username: the device id). Prints the
    /// password once, alone on stdout; fixahead keeps only its hash.
    Add {
        /// The device id (1-64 characters of [A-Za-z0-9_-]).
        device_id: String,
        /// Read the password from stdin (at least 16 characters; one trailing newline is
        /// removed) instead of generating one; nothing is printed on stdout.
        #[arg(long)]
        password_stdin: bool,
        /// Replace existing credentials (the old password stops working for new connections).
        #[arg(long)]
        rotate: bool,
    },
    /// List the devices with credentials and when they were issued.
    List,
    /// Revoke a device's credentials: new connections with them are refused.
    Remove {
        /// The device id.
        device_id: String,
    },
    /// Write DIR/passwd and DIR/acl for Mosquitto: every credential, each device
    /// restricted to its own topics, and an ingest account that reads them all.
    ExportMosquitto {
        /// Directory to write to (created if missing); the files get mode 0600.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The account fixahead's ingest uses on Mosquitto (issue it with `devices add`,
        /// and give fixahead its password as mqtt.username / mqtt.password).
        #[arg(long, value_name = "NAME", default_value = "fixahead-ingest")]
        ingest_user: String,
    },
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// History directory (see docs/history-format.md).
    #[arg(long, value_name = "DIR")]
    pub history: PathBuf,
    /// Model directory (the active version of each type is evaluated).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Where to write metrics.json, report.md and the charts.
    #[arg(long, value_name = "DIR")]
    pub report: PathBuf,
    /// Horizon for catching a failure [default: each model's training horizon].
    #[arg(long)]
    pub horizon: Option<String>,
    /// Count only from this time on (RFC 3339 or epoch ms): the test period held out by
    /// `fixahead train --test-from`. The replay still starts at the beginning.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// History directory (see docs/history-format.md).
    #[arg(long, value_name = "DIR")]
    pub history: PathBuf,
    /// Model directory (the active version of each type is used).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Add each line's full feature vector (`features`: name -> value, null when unknown).
    #[arg(long)]
    pub features: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// History directory (see docs/history-format.md).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Broker to publish to (mqtt:// or mqtts://).
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    #[command(flatten)]
    pub mqtt_tls: MqttTlsArgs,
    /// Simulated seconds per wall-clock second, or `max` for as fast as the broker takes them.
    #[arg(long, default_value = "max")]
    pub speed: String,
    /// MQTT connections to spread devices over (a device always uses the same one).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// MQTT username.
    #[arg(long)]
    pub username: Option<String>,
    /// MQTT password.
    #[arg(long)]
    pub password: Option<String>,
}

/// TLS for an `mqtts://` broker URL, shared by every command that takes `--mqtt-url`.
#[derive(Debug, Clone, Default, Args)]
pub struct MqttTlsArgs {
    /// With an mqtts:// URL: trust the CA certificates in this PEM file instead of the
    /// operating system's.
    #[arg(long, value_name = "FILE")]
    pub mqtt_ca: Option<PathBuf>,
    /// With an mqtts:// URL: present this PEM certificate chain to the broker (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "mqtt_client_key")]
    pub mqtt_client_cert: Option<PathBuf>,
    /// The PEM private key of --mqtt-client-cert.
    #[arg(long, value_name = "FILE", requires = "mqtt_client_cert")]
    pub mqtt_client_key: Option<PathBuf>,
}

impl MqttTlsArgs {
    /// The files as ingest takes them.
    pub fn files(&self) -> ingest::source::TlsFiles {
        ingest::source::TlsFiles {
            ca_file: self.mqtt_ca.clone(),
            client_cert: self.mqtt_client_cert.clone(),
            client_key: self.mqtt_client_key.clone(),
        }
    }

    /// Parses `url` and loads the TLS files for `mqtts://`.
    pub fn endpoint(&self, url: &str) -> crate::Result<ingest::source::Endpoint> {
        Ok(ingest::source::Endpoint::resolve(url, &self.files())?)
    }
}

/// Options shared by `run` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML configuration file; flags override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for all state (hot store, tickets, models) [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the embedded MQTT broker listens [default: 127.0.0.1:1883].
    #[arg(long, value_name = "ADDR")]
    pub mqtt_listen: Option<SocketAddr>,
    /// Use an external MQTT broker (mqtt://host[:port], or mqtts://host[:port] for TLS)
    /// instead of the embedded one.
    #[arg(long, value_name = "URL")]
    pub mqtt_url: Option<String>,
    #[command(flatten)]
    pub mqtt_tls: MqttTlsArgs,
    /// MQTT version spoken to the external broker: 3.1.1 or 5 [default: 3.1.1].
    #[arg(long, value_name = "VERSION")]
    pub mqtt_protocol: Option<String>,
    /// Join this MQTT shared-subscription group, so several instances split the load
    /// (see docs/operations.md, "Scale-out", for which brokers keep a device on one instance).
    #[arg(long, value_name = "NAME")]
    pub shared_group: Option<String>,
    /// Where the HTTP API listens [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (with --http-tls-key), so that
    /// console passwords never cross the network in clear text; the console's
    /// cookies are then marked Secure.
    #[arg(long, value_name = "FILE", requires = "http_tls_key")]
    pub http_tls_cert: Option<PathBuf>,
    /// The PEM private key for --http-tls-cert.
    #[arg(long, value_name = "FILE", requires = "http_tls_cert")]
    pub http_tls_key: Option<PathBuf>,
    /// Model directory [default: DATA_DIR/models].
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Directory of extra device profile TOML files.
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Reject messages dated more than this after their arrival (e.g. 1d), or `off`
    /// [default: 1d; `demo` turns it off].
    #[arg(long, value_name = "DURATION")]
    pub max_future_skew: Option<String>,
    /// Let any MQTT client connect to the embedded broker without credentials
    /// [default: off for `run`, on for `demo`]. Without it, devices log in with
    /// credentials from `fixahead devices add` (docs/operations.md).
    #[arg(long)]
    pub allow_anonymous: bool,
}

impl ServeArgs {
    /// The flags that override the configuration file.
    pub fn overrides(&self) -> crate::settings::Overrides {
        crate::settings::Overrides {
            data_dir: self.data_dir.clone(),
            mqtt_listen: self.mqtt_listen,
            mqtt_url: self.mqtt_url.clone(),
            mqtt_protocol: self.mqtt_protocol.clone(),
            mqtt_tls: self.mqtt_tls.files(),
            shared_group: self.shared_group.clone(),
            http_listen: self.http_listen,
            http_tls_cert: self.http_tls_cert.clone(),
            http_tls_key: self.http_tls_key.clone(),
            model_dir: self.model_dir.clone(),
            profiles: self.profiles.clone(),
            max_future_skew: self.max_future_skew.clone(),
            allow_anonymous: self.allow_anonymous,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Simulated devices.
    #[arg(long, default_value_t = 60)]
    pub devices: usize,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 7200.0)]
    pub speed: f64,
    /// Random seed of the simulated fleet.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Stop after this many wall-clock seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
}

/// `fixahead simulate-service`: a simulated service organisation (engineers,
/// customers, a planner) playing a fleet's history against an in-process fixahead
/// through its HTTP API, under one or more dispatch rules (docs/service-simulation.md).
#[derive(Debug, Args)]
pub struct SimulateServiceArgs {
    /// A history directory from `fixahead simulate --out` (default: generate one with
    /// --devices, --days and --seed).
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// Devices of the generated history.
    #[arg(long, default_value_t = 60)]
    pub devices: usize,
    /// Simulated days of the generated history.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Seed of the generated fleet and of the service world.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Dispatch rule: fcfs (first come, first served by region) or fixahead (its
    /// ranking and automatic dispatch). Repeatable; default fixahead.
    #[arg(long = "rule", value_name = "RULE")]
    pub rules: Vec<String>,
    /// Run both rules on the same fleet and print them side by side.
    #[arg(long)]
    pub compare: bool,
    /// Engineers, spread over the fleet's regions (at least one each).
    #[arg(long, default_value_t = 10)]
    pub engineers: usize,
    /// Model directory (default: DATA_DIR/models, trained on a simulated year if it
    /// holds no usable model).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Where each rule's fixahead keeps its data (DIR/fcfs, DIR/fixahead), the
    /// generated history and the models [default: data/simulate-service].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory of extra device profiles.
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Simulated minutes per step of the service clock.
    #[arg(long, default_value_t = 30)]
    pub step_minutes: u32,
    /// Simulated days after the history for open tickets to finish.
    #[arg(long, default_value_t = 5)]
    pub drain_days: u32,
    /// Leave the (last rule's) fixahead running for inspection until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// HTTP listen address of the in-process fixahead (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub http_listen: SocketAddr,
    /// Print the result as one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of devices; kinds are assigned round-robin (see --kinds).
    #[arg(long, default_value_t = 20)]
    pub devices: usize,
    /// Simulated seconds per wall-clock second (live mode).
    #[arg(long, default_value_t = 3600.0)]
    pub speed: f64,
    /// Random seed; the same seed gives the same fleet and the same messages.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Broker to publish to (live mode; mqtt:// or mqtts://).
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    #[command(flatten)]
    pub mqtt_tls: MqttTlsArgs,
    /// MQTT username (live mode).
    #[arg(long)]
    pub username: Option<String>,
    /// MQTT password (live mode).
    #[arg(long)]
    pub password: Option<String>,
    /// Share of devices that start with a component already degrading (0-1).
    #[arg(long, default_value_t = 0.0)]
    pub early_degradation: f64,
    /// Failures per component per year.
    #[arg(long, default_value_t = 0.5, value_name = "RATE")]
    pub failure_rate: f64,
    /// Share of failures with no precursor at all (0-1).
    #[arg(long, default_value_t = 0.25, value_name = "SHARE")]
    pub sudden_failures: f64,
    /// Appliance kinds, comma separated [default: all five].
    #[arg(long, value_delimiter = ',', value_name = "KIND,...")]
    pub kinds: Vec<String>,
    /// Mark a production batch defective: BATCH[:COMPONENT[:MULTIPLIER]] (multiplier default 5).
    #[arg(long, value_name = "SPEC")]
    pub defective_batch: Option<String>,
    /// Fault injection (live mode), e.g. `malformed_json=0.01,duplicate=0.02` (see docs/simulator.md).
    #[arg(long, value_name = "SPEC")]
    pub inject: Option<String>,
    /// MQTT connections to spread devices over (live mode).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Append the ground-truth failures and repairs (events.jsonl lines) to this file (live mode).
    #[arg(long, value_name = "FILE")]
    pub ground_truth: Option<PathBuf>,
    /// Stop after this many wall-clock seconds (live mode).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Write a history directory instead of publishing (see docs/history-format.md).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Simulated days of history to write with --out.
    #[arg(long, default_value_t = 180)]
    pub days: u32,
    /// Simulated seconds between two refrigerator reports. A longer interval keeps
    /// training histories small; failures do not depend on it.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub refrigerator_interval: u64,
    /// Simulated start time, RFC 3339 or epoch ms [default: --days before now].
    #[arg(long)]
    pub start: Option<String>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// History directory (see docs/history-format.md).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "from_store",
        conflicts_with = "from_store"
    )]
    pub history: Option<PathBuf>,
    /// Train on what the running system recorded instead of a history directory: the
    /// telemetry and faults in DATA_DIR/hot.db, labelled by the ticket outcomes in
    /// DATA_DIR/tickets.db (confirmed failures and no-fault-found checks; docs/models.md,
    /// "The feedback loop"). Reads both read-only, so `fixahead run` may keep running.
    #[arg(long)]
    pub from_store: bool,
    /// Data directory holding hot.db and tickets.db (with --from-store) [default: ./data,
    /// as for `run`].
    #[arg(long, value_name = "DIR", conflicts_with = "history")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file of `run` (with --from-store): its data_dir and profiles
    /// directory; --data-dir overrides its data_dir.
    #[arg(long, value_name = "FILE", conflicts_with = "history")]
    pub config: Option<PathBuf>,
    /// Label horizon: a row is positive when the component fails within it (e.g. 14d, 30h).
    #[arg(long, default_value = "14d")]
    pub horizon: String,
    /// Model directory to write to; the new versions become active.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Event-level precision the thresholds aim for on the validation period (the
    /// share of flags followed by a failure of the component within the horizon).
    #[arg(long, default_value_t = 0.85)]
    pub target_precision: f64,
    /// False alarms per 1000 device-months each component's threshold may raise on the
    /// validation period.
    #[arg(long, default_value_t = 2.0)]
    pub alert_budget: f64,
    /// Random seed (negative undersampling).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hold out the history from this time on (RFC 3339 or epoch ms) as a test period:
    /// training, validation and threshold selection never read it. Evaluate on it with
    /// `fixahead eval --from` the same time.
    #[arg(long, value_name = "TIME")]
    pub test_from: Option<String>,
    /// TOML file of further training hyper-parameters (names and ranges: docs/models.md);
    /// the flags above override it.
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,
}
