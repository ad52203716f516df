//! Command-line interface. Flags are a public contract (see README.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// fixahead: fix appliances before they break.
///
/// Appliances report telemetry and fault codes over MQTT; fixahead stores them, scores
/// every device with a linfa model and opens one proactive service ticket per credible
/// risk, served over an HTTP API.
#[derive(Debug, Parser)]
#[command(name = "fixahead", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the pipeline: embedded MQTT broker (unless --mqtt-url), ingest, scoring, tickets, HTTP API.
    Run(RunArgs),
    /// Everything `run` does, plus a simulated fleet and a model trained on the fly if none exists.
    Demo(DemoArgs),
    /// Simulate a fleet: publish live over MQTT, or write a history directory with --out.
    Simulate(SimulateArgs),
    /// Train one model per device type from a history directory, or from the stores and
    /// ticket outcomes of a data directory (--from-store).
    Train(TrainArgs),
    /// Publish a history directory (simulated or recorded) to a broker, keeping per-device order.
    Replay(ReplayArgs),
    /// Replay a history through the live scoring code and score the flags against its failures.
    Eval(EvalArgs),
    /// Print every device's risk per component at its last observation, as JSON lines.
    Predict(PredictArgs),
    /// Benchmarks that print numbers (see docs/benchmarks.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Device credentials for the MQTT broker: add, list, remove, export for Mosquitto.
    Devices(DevicesArgs),
    /// API keys for the HTTP API: create, list, revoke.
    Keys(KeysArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(subcommand)]
    pub(crate) command: KeysCommand,
    /// TOML configuration file (for its data_dir); --data-dir overrides it.
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Data directory holding keys.db [default: ./data].
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
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
pub(crate) struct DevicesArgs {
    #[command(subcommand)]
    pub(crate) command: DevicesCommand,
    /// TOML configuration file (for its data_dir); --data-dir overrides it.
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Data directory holding devices.db [default: ./data].
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevicesCommand {
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
pub(crate) struct EvalArgs {
    /// History directory (see docs/history-format.md).
    #[arg(long, value_name = "DIR")]
    pub(crate) history: PathBuf,
    /// Model directory (the active version of each type is evaluated).
    #[arg(long, value_name = "DIR")]
    pub(crate) model: PathBuf,
    /// Where to write metrics.json, report.md and the charts.
    #[arg(long, value_name = "DIR")]
    pub(crate) report: PathBuf,
    /// Horizon for catching a failure [default: each model's training horizon].
    #[arg(long)]
    pub(crate) horizon: Option<String>,
    /// Count only from this time on (RFC 3339 or epoch ms): the test period held out by
    /// `fixahead train --test-from`. The replay still starts at the beginning.
    #[arg(long, value_name = "TIME")]
    pub(crate) from: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PredictArgs {
    /// History directory (see docs/history-format.md).
    #[arg(long, value_name = "DIR")]
    pub(crate) history: PathBuf,
    /// Model directory (the active version of each type is used).
    #[arg(long, value_name = "DIR")]
    pub(crate) model: PathBuf,
    /// Add each line's full feature vector (`features`: name -> value, null when unknown).
    #[arg(long)]
    pub(crate) features: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// History directory (see docs/history-format.md).
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Broker to publish to (mqtt:// or mqtts://).
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1883")]
    pub(crate) mqtt_url: String,
    #[command(flatten)]
    pub(crate) mqtt_tls: MqttTlsArgs,
    /// Simulated seconds per wall-clock second, or `max` for as fast as the broker takes them.
    #[arg(long, default_value = "max")]
    pub(crate) speed: String,
    /// MQTT connections to spread devices over (a device always uses the same one).
    #[arg(long, default_value_t = 1)]
    pub(crate) connections: usize,
    /// MQTT username.
    #[arg(long)]
    pub(crate) username: Option<String>,
    /// MQTT password.
    #[arg(long)]
    pub(crate) password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Time writing a simulated history offline.
    SimulateOffline {
        /// Devices.
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        /// Simulated days.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Where to write (default: a temporary directory, removed afterwards).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Publish a large simulated fleet to an embedded broker as fast as it goes.
    SimulateLive {
        /// Devices.
        #[arg(long, default_value_t = 100_000)]
        devices: usize,
        /// Wall-clock seconds to publish for.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// MQTT connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Publish to this broker (mqtt:// or mqtts://) instead of an embedded one
        /// started in this process, so the peak memory printed is the publisher's alone.
        #[arg(long, value_name = "URL")]
        mqtt_url: Option<String>,
        #[command(flatten)]
        mqtt_tls: MqttTlsArgs,
    },
    /// Time training (`models::train`, default parameters) on about --rows feature rows.
    Train {
        /// Feature rows to size the simulated fleet for (target: 1,000,000 in at most 60 s).
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Simulated days (the first 7 are warm-up and give no rows).
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Train on this history instead of simulating one (--rows and --days are ignored).
        #[arg(long, value_name = "DIR")]
        history: Option<PathBuf>,
        /// Keep the simulated history here (default: a temporary directory, removed afterwards).
        #[arg(long, value_name = "DIR")]
        keep_history: Option<PathBuf>,
        /// Save the trained models here (for `bench score --model`); not timed.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Simulated seconds between two refrigerator reports.
        #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
        refrigerator_interval: u64,
    },
    /// Time live scoring (`Scorer::observe`) per device update, and the feature state size.
    Score {
        /// Devices.
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        /// Timed updates, after a 9-day warm-up that is not timed.
        #[arg(long, default_value_t = 2_000_000)]
        updates: u64,
        /// Model directory (default: train one in-process on a small simulated history).
        #[arg(long, value_name = "DIR")]
        model: Option<PathBuf>,
    },
    /// Ingest: a broker's raw relay rate against the full pipeline's, store and ticket
    /// latency, and memory per tracked device (docs/performance.md); prints JSON.
    Ingest(IngestBenchArgs),
    /// Batch alarms against simulator ground truth: how early the detector fires for a
    /// defective batch, and how often it fires on healthy fleets (docs/fleet.md).
    FleetAlarms {
        /// Seeds, each one fleet with a defective batch and one without.
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// Devices per fleet (washers and dishwashers).
        #[arg(long, default_value_t = 3000)]
        devices: usize,
        /// Simulated days, with a detector run at the end of each.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// The defective batch's failure-rate multiplier (the simulator's default: 5).
        #[arg(long, default_value_t = simulators::DefectiveBatch::DEFAULT_MULTIPLIER)]
        multiplier: f64,
        /// Only this component of the defective batch is defective (default: all).
        #[arg(long)]
        component: Option<String>,
    },
    /// Insight endpoints (model performance, drift): p50/p99 latency on a large fleet
    /// against the 200 ms target (docs/performance.md); prints a table.
    Insight(InsightBenchArgs),
}

#[derive(Clone, Debug, Args)]
pub(crate) struct InsightBenchArgs {
    /// Devices in the generated fleet.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) devices: usize,
    /// Days of tickets.
    #[arg(long, default_value_t = 365)]
    pub(crate) days: u32,
    /// Model flags (proactive tickets) per device and year.
    #[arg(long, default_value_t = 0.4)]
    pub(crate) flags_per_device_year: f64,
    /// Critical faults (reactive tickets) per device and year.
    #[arg(long, default_value_t = 0.15)]
    pub(crate) reactive_per_device_year: f64,
    /// Timed requests per path.
    #[arg(long, default_value_t = 200)]
    pub(crate) requests: usize,
    /// Where to build the stores (default /dev/shm when it exists, else the temporary
    /// directory); removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct IngestBenchArgs {
    /// Use this broker (mqtt://host:port or mqtts://host:port) instead of an embedded
    /// one started in this process.
    #[arg(long, value_name = "URL")]
    pub(crate) mqtt_url: Option<String>,
    #[command(flatten)]
    pub(crate) mqtt_tls: MqttTlsArgs,
    /// Messages timed through the raw relay and through the pipeline.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) messages: u64,
    /// Simulated devices the messages come from.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) devices: usize,
    /// Wall-clock seconds of the latency phase (background load, store probes, ticket samples).
    #[arg(long, default_value_t = 20)]
    pub(crate) seconds: u64,
    /// Devices whose feature state the memory measurement holds (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) state_devices: usize,
    /// Model directory (default: train one in-process on a small simulated history).
    #[arg(long, value_name = "DIR")]
    pub(crate) model: Option<PathBuf>,
    /// Publisher MQTT connections (a device always uses the same one).
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// Background load during the latency phase, in messages per second.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) background_rate: u64,
    /// Ticket latency samples, spread over the latency phase.
    #[arg(long, default_value_t = 100)]
    pub(crate) tickets: usize,
    /// Hold the publisher to at most this many messages the pipeline has not yet
    /// acknowledged while feeding it (0: no limit, the broker queues the backlog).
    #[arg(long, default_value_t = 0, value_name = "MESSAGES")]
    pub(crate) max_ahead: u64,
    /// The pipeline's `ingest.batch_interval_ms` [default: the configuration's default, 20].
    #[arg(long, value_name = "MS")]
    pub(crate) batch_interval_ms: Option<u64>,
    /// Run the pipeline without a model: messages are stored and update features, but
    /// nothing is scored or recorded (the ingest part of the breakdown); no ticket samples.
    #[arg(long, conflicts_with = "model")]
    pub(crate) no_model: bool,
    /// Only measure the memory per device and print it (run as a child process).
    #[arg(long, hide = true)]
    pub(crate) state_only: bool,
}

/// TLS for an `mqtts://` broker URL, shared by every command that takes `--mqtt-url`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct MqttTlsArgs {
    /// With an mqtts:// URL: trust the CA certificates in this PEM file instead of the
    /// operating system's.
    #[arg(long, value_name = "FILE")]
    pub(crate) mqtt_ca: Option<PathBuf>,
    /// With an mqtts:// URL: present this PEM certificate chain to the broker (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "mqtt_client_key")]
    pub(crate) mqtt_client_cert: Option<PathBuf>,
    /// The PEM private key of --mqtt-client-cert.
    #[arg(long, value_name = "FILE", requires = "mqtt_client_cert")]
    pub(crate) mqtt_client_key: Option<PathBuf>,
}

impl MqttTlsArgs {
    /// The files as ingest takes them.
    pub(crate) fn files(&self) -> ingest::source::TlsFiles {
        ingest::source::TlsFiles {
            ca_file: self.mqtt_ca.clone(),
            client_cert: self.mqtt_client_cert.clone(),
            client_key: self.mqtt_client_key.clone(),
        }
    }

    /// Parses `url` and loads the TLS files for `mqtts://`.
    pub(crate) fn endpoint(&self, url: &str) -> anyhow::Result<ingest::source::Endpoint> {
        Ok(ingest::source::Endpoint::resolve(url, &self.files())?)
    }
}

/// Options shared by `run` and `demo`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file; flags override its values.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Directory for all state (hot store, tickets, models) [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Where the embedded MQTT broker listens [default: 127.0.0.1:1883].
    #[arg(long, value_name = "ADDR")]
    pub(crate) mqtt_listen: Option<SocketAddr>,
    /// Use an external MQTT broker (mqtt://host[:port], or mqtts://host[:port] for TLS)
    /// instead of the embedded one.
    #[arg(long, value_name = "URL")]
    pub(crate) mqtt_url: Option<String>,
    #[command(flatten)]
    pub(crate) mqtt_tls: MqttTlsArgs,
    /// MQTT version spoken to the external broker: 3.1.1 or 5 [default: 3.1.1].
    #[arg(long, value_name = "VERSION")]
    pub(crate) mqtt_protocol: Option<String>,
    /// Join this MQTT shared-subscription group, so several instances split the load
    /// (see docs/operations.md, "Scale-out", for which brokers keep a device on one instance).
    #[arg(long, value_name = "NAME")]
    pub(crate) shared_group: Option<String>,
    /// Where the HTTP API listens [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub(crate) http_listen: Option<SocketAddr>,
    /// Model directory [default: DATA_DIR/models].
    #[arg(long, value_name = "DIR")]
    pub(crate) model_dir: Option<PathBuf>,
    /// Directory of extra device profile TOML files.
    #[arg(long, value_name = "DIR")]
    pub(crate) profiles: Option<PathBuf>,
    /// Reject messages dated more than this after their arrival (e.g. 1d), or `off`
    /// [default: 1d; `demo` turns it off].
    #[arg(long, value_name = "DURATION")]
    pub(crate) max_future_skew: Option<String>,
    /// Let any MQTT client connect to the embedded broker without credentials
    /// [default: off for `run`, on for `demo`]. Without it, devices log in with
    /// credentials from `fixahead devices add` (docs/operations.md).
    #[arg(long)]
    pub(crate) allow_anonymous: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
    /// Simulated devices.
    #[arg(long, default_value_t = 60)]
    pub(crate) devices: usize,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 7200.0)]
    pub(crate) speed: f64,
    /// Random seed of the simulated fleet.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// Stop after this many wall-clock seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// Number of devices; kinds are assigned round-robin (see --kinds).
    #[arg(long, default_value_t = 20)]
    pub(crate) devices: usize,
    /// Simulated seconds per wall-clock second (live mode).
    #[arg(long, default_value_t = 3600.0)]
    pub(crate) speed: f64,
    /// Random seed; the same seed gives the same fleet and the same messages.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Broker to publish to (live mode; mqtt:// or mqtts://).
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1883")]
    pub(crate) mqtt_url: String,
    #[command(flatten)]
    pub(crate) mqtt_tls: MqttTlsArgs,
    /// MQTT username (live mode).
    #[arg(long)]
    pub(crate) username: Option<String>,
    /// MQTT password (live mode).
    #[arg(long)]
    pub(crate) password: Option<String>,
    /// Share of devices that start with a component already degrading (0-1).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) early_degradation: f64,
    /// Failures per component per year.
    #[arg(long, default_value_t = 0.5, value_name = "RATE")]
    pub(crate) failure_rate: f64,
    /// Share of failures with no precursor at all (0-1).
    #[arg(long, default_value_t = 0.25, value_name = "SHARE")]
    pub(crate) sudden_failures: f64,
    /// Appliance kinds, comma separated [default: all five].
    #[arg(long, value_delimiter = ',', value_name = "KIND,...")]
    pub(crate) kinds: Vec<String>,
    /// Mark a production batch defective: BATCH[:COMPONENT[:MULTIPLIER]] (multiplier default 5).
    #[arg(long, value_name = "SPEC")]
    pub(crate) defective_batch: Option<String>,
    /// Fault injection (live mode), e.g. `malformed_json=0.01,duplicate=0.02` (see docs/simulator.md).
    #[arg(long, value_name = "SPEC")]
    pub(crate) inject: Option<String>,
    /// MQTT connections to spread devices over (live mode).
    #[arg(long, default_value_t = 1)]
    pub(crate) connections: usize,
    /// Append the ground-truth failures and repairs (events.jsonl lines) to this file (live mode).
    #[arg(long, value_name = "FILE")]
    pub(crate) ground_truth: Option<PathBuf>,
    /// Stop after this many wall-clock seconds (live mode).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<u64>,
    /// Write a history directory instead of publishing (see docs/history-format.md).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Simulated days of history to write with --out.
    #[arg(long, default_value_t = 180)]
    pub(crate) days: u32,
    /// Simulated seconds between two refrigerator reports. A longer interval keeps
    /// training histories small; failures do not depend on it.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub(crate) refrigerator_interval: u64,
    /// Simulated start time, RFC 3339 or epoch ms [default: --days before now].
    #[arg(long)]
    pub(crate) start: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// History directory (see docs/history-format.md).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "from_store",
        conflicts_with = "from_store"
    )]
    pub(crate) history: Option<PathBuf>,
    /// Train on what the running system recorded instead of a history directory: the
    /// telemetry and faults in DATA_DIR/hot.db, labelled by the ticket outcomes in
    /// DATA_DIR/tickets.db (confirmed failures and no-fault-found checks; docs/models.md,
    /// "The feedback loop"). Reads both read-only, so `fixahead run` may keep running.
    #[arg(long)]
    pub(crate) from_store: bool,
    /// Data directory holding hot.db and tickets.db (with --from-store) [default: ./data,
    /// as for `run`].
    #[arg(long, value_name = "DIR", conflicts_with = "history")]
    pub(crate) data_dir: Option<PathBuf>,
    /// TOML configuration file of `run` (with --from-store): its data_dir and profiles
    /// directory; --data-dir overrides its data_dir.
    #[arg(long, value_name = "FILE", conflicts_with = "history")]
    pub(crate) config: Option<PathBuf>,
    /// Label horizon: a row is positive when the component fails within it (e.g. 14d, 30h).
    #[arg(long, default_value = "14d")]
    pub(crate) horizon: String,
    /// Model directory to write to; the new versions become active.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Event-level precision the thresholds aim for on the validation period (the
    /// share of flags followed by a failure of the component within the horizon).
    #[arg(long, default_value_t = 0.85)]
    pub(crate) target_precision: f64,
    /// False alarms per 1000 device-months each component's threshold may raise on the
    /// validation period.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) alert_budget: f64,
    /// Random seed (negative undersampling).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Hold out the history from this time on (RFC 3339 or epoch ms) as a test period:
    /// training, validation and threshold selection never read it. Evaluate on it with
    /// `fixahead eval --from` the same time.
    #[arg(long, value_name = "TIME")]
    pub(crate) test_from: Option<String>,
    /// TOML file of further training hyper-parameters (names and ranges: docs/models.md);
    /// the flags above override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) params: Option<PathBuf>,
}
