//! The command line: the commands and their flags (a public contract: README.md). The
//! flags of each command are declared by the crate that runs it (`server::cli`, and
//! `bench::BenchCommand` for the benchmarks).

use clap::{Parser, Subcommand};
use server::cli::{
    DemoArgs, DevicesArgs, EvalArgs, KeysArgs, PredictArgs, ReplayArgs, RunArgs, SimulateArgs,
    SimulateServiceArgs, TrainArgs, UsersArgs,
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
    /// Play a simulated service organisation (customers, planner, engineers) against an
    /// in-process fixahead through its API, and print the service KPIs per dispatch rule.
    SimulateService(SimulateServiceArgs),
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
    Bench(bench::BenchCommand),
    /// Device credentials for the MQTT broker: add, list, remove, export for Mosquitto.
    Devices(DevicesArgs),
    /// API keys for the HTTP API: create, list, revoke.
    Keys(KeysArgs),
    /// People who sign in to the console: add, list, reset a password, disable, enable.
    Users(UsersArgs),
}
