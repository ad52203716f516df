//! The command line: the commands and their flags (a public contract: README.md). The
//! flags of each command are declared by the crate that runs it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use server::cli::{
    DemoArgs, DevicesArgs, EvalArgs, KeysArgs, PredictArgs, ReplayArgs, RunArgs, SimulateArgs,
    TrainArgs,
};

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
        mqtt_tls: server::cli::MqttTlsArgs,
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
    pub(crate) mqtt_tls: server::cli::MqttTlsArgs,
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
