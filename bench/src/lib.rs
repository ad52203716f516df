//! The benchmarks behind `fixahead bench ...`: each prints the numbers a target is
//! judged by. What they measure, and where the numbers are written up:
//!
//! - `bench train` (`train`): `models::train` with default parameters on a simulated
//!   history sized for about `--rows` feature rows (target: 1,000,000 rows in at most
//!   60 s), split into replay and fit per device type (docs/benchmarks.md).
//! - `bench score` (`score`): `Scorer::observe` per decoded device update after a
//!   warm-up (target: at most 5 us), the part of it that is the feature update, and the
//!   feature state per device (docs/benchmarks.md).
//! - `bench simulate-offline` and `bench simulate-live` (`simulate`): writing a
//!   simulated history, and publishing a large simulated fleet to a broker
//!   (docs/benchmarks.md).
//! - `bench ingest` (`ingest`): the broker's raw relay rate against the full
//!   pipeline's, publish-to-stored and publish-to-ticket latency under a background
//!   load, and the memory a tracked device costs; prints JSON (docs/performance.md).
//! - `bench fleet-alarms` (`fleet_alarms`): the batch-alarm detector against
//!   simulator ground truth: how early it catches a defective batch, how often it
//!   fires on healthy fleets (docs/fleet.md, "How early").
//! - `bench insight` (`insight`): p50/p99 latency of the model insight and fleet
//!   endpoints on a large generated fleet and a year of tickets, against 200 ms
//!   (docs/performance.md, "Insight endpoints").
//! - `bench console` (`console`): p50/p95/p99 server time of every console page on a
//!   generated fleet of 100,000 devices with 10,000 open tickets and a year of
//!   telemetry for the devices shown, against 100 ms (docs/benchmarks.md).
//!
//! Shared pieces: the device kinds a generated fleet cycles through (`kinds`), the
//! model a benchmark scores with (`model`), the broker it publishes to (`broker`), the
//! HTTP client for the API it starts (`http`), percentiles and verdicts (`stats`), and
//! what it reads of the machine and where it works (`system`).

mod broker;
mod console;
mod error;
mod fleet_alarms;
mod http;
mod ingest;
mod insight;
mod kinds;
mod model;
mod score;
mod simulate;
mod stats;
mod system;
mod train;

use clap::Subcommand;

pub use console::ConsoleArgs;
pub use error::{Error, Result};
pub use fleet_alarms::FleetAlarmsArgs;
pub use ingest::IngestArgs;
pub use insight::InsightArgs;
pub use score::ScoreArgs;
pub use simulate::{SimulateLiveArgs, SimulateOfflineArgs};
pub use train::TrainArgs;

/// The benchmarks, as `fixahead bench` takes them.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time writing a simulated history offline.
    SimulateOffline(SimulateOfflineArgs),
    /// Publish a large simulated fleet to an embedded broker as fast as it goes.
    SimulateLive(SimulateLiveArgs),
    /// Time training (`models::train`, default parameters) on about --rows feature rows.
    Train(TrainArgs),
    /// Time live scoring (`Scorer::observe`) per device update, and the feature state size.
    Score(ScoreArgs),
    /// Ingest: a broker's raw relay rate against the full pipeline's, store and ticket
    /// latency, and memory per tracked device (docs/performance.md); prints JSON.
    Ingest(IngestArgs),
    /// Batch alarms against simulator ground truth: how early the detector fires for a
    /// defective batch, and how often it fires on healthy fleets (docs/fleet.md).
    FleetAlarms(FleetAlarmsArgs),
    /// Insight endpoints (model performance, drift): p50/p99 latency on a large fleet
    /// against the 200 ms target (docs/performance.md); prints a table.
    Insight(InsightArgs),
    /// Console pages: p50/p95/p99 server time of every page on a generated fleet of
    /// 100,000 devices and 10,000 open tickets against the 100 ms target; prints a table.
    Console(ConsoleArgs),
}

/// Runs `command`. Needs a multi-threaded tokio runtime: the CPU-bound parts run in
/// `block_in_place` or `spawn_blocking`.
pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::SimulateOffline(args) => simulate::offline(args).await,
        BenchCommand::SimulateLive(args) => simulate::live(args).await,
        BenchCommand::Train(args) => train::run(args).await,
        BenchCommand::Score(args) => score::run(args).await,
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::FleetAlarms(args) => tokio::task::block_in_place(|| fleet_alarms::run(args)),
        BenchCommand::Insight(args) => insight::run(args).await,
        BenchCommand::Console(args) => console::run(args).await,
    }
}
