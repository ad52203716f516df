//! `fixahead bench ingest`: the broker's raw relay rate against the full pipeline's on
//! the same payloads and the same broker, publish-to-stored and publish-to-ticket
//! latency under a steady background load, and the memory one tracked device costs.
//! What each number measures is documented in docs/performance.md.
//!
//! Phases, in order:
//! 1. the model: `--model DIR`, or one trained in-process (as `bench score` does);
//! 2. memory (`memory`), in a child process (`--state-only`) so nothing this
//!    process allocated before blurs the resident-memory delta;
//! 3. the load (`load`), generated and decoded before anything is timed: a simulated
//!    fleet's first message per device (seeds), the next `--messages` messages
//!    (timed), and a background stream; plus the ticket samples;
//! 4. the raw relay (`relay`): a subscriber that only counts, fed by the publisher
//!    (`mqtt`);
//! 5. the pipeline (`pipeline`: `app::start`, as `fixahead run` starts it) on a
//!    temporary data directory, fed the same messages by the same publisher, its
//!    progress read through its HTTP API (`pipeline_api`);
//! 6. latency (`latency`), with the pipeline still running: a background load at
//!    `--background-rate`, store probes, and one ticket sample at a time.
//!
//! Then one JSON object (`report`).

mod gate;
mod latency;
mod load;
mod memory;
mod mqtt;
mod pipeline;
mod pipeline_api;
mod relay;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use domain::ProfileSet;

use crate::broker::Broker;
use server::Context as _;

use crate::error::bail;
use crate::model;
use crate::system::{load_average, TempDir};
use crate::Result;
use load::TicketSample;
use mqtt::Target;

/// Give up when a phase makes no progress for this long.
const STALL: Duration = Duration::from_secs(60);

// The flags of `fixahead bench ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Use this broker (mqtt://host:port or mqtts://host:port) instead of an embedded
    /// one started in this process.
    #[arg(long, value_name = "URL")]
    pub mqtt_url: Option<String>,
    #[command(flatten)]
    pub mqtt_tls: server::cli::MqttTlsArgs,
    /// Messages timed through the raw relay and through the pipeline.
    #[arg(long, default_value_t = 200_000)]
    pub messages: u64,
    /// Simulated devices the messages come from.
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Wall-clock seconds of the latency phase (background load, store probes, ticket samples).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Devices whose feature state the memory measurement holds (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    pub state_devices: usize,
    /// Model directory (default: train one in-process on a small simulated history).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Publisher MQTT connections (a device always uses the same one).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Background load during the latency phase, in messages per second.
    #[arg(long, default_value_t = 10_000)]
    pub background_rate: u64,
    /// Ticket latency samples, spread over the latency phase.
    #[arg(long, default_value_t = 100)]
    pub tickets: usize,
    /// Hold the publisher to at most this many messages the pipeline has not yet
    /// acknowledged while feeding it (0: no limit, the broker queues the backlog).
    #[arg(long, default_value_t = 0, value_name = "MESSAGES")]
    pub max_ahead: u64,
    /// The pipeline's `ingest.batch_interval_ms` [default: the configuration's default, 20].
    #[arg(long, value_name = "MS")]
    pub batch_interval_ms: Option<u64>,
    /// Run the pipeline without a model: messages are stored and update features, but
    /// nothing is scored or recorded (the ingest part of the breakdown); no ticket samples.
    #[arg(long, conflicts_with = "model")]
    pub no_model: bool,
    /// Only measure the memory per device and print it (run as a child process).
    #[arg(long, hide = true)]
    pub state_only: bool,
}

/// `fixahead bench ingest`
pub(crate) async fn run(args: IngestArgs) -> Result<()> {
    if args.state_only {
        let model = args
            .model
            .as_deref()
            .context("--state-only needs --model")?;
        let result = tokio::task::block_in_place(|| memory::state_only(model, args.state_devices))?;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    if args.messages == 0 || args.devices == 0 || args.connections == 0 {
        bail!("--messages, --devices and --connections must be at least 1");
    }
    let load_before = load_average();
    let profiles = ProfileSet::builtin();

    // 1. The model, in a directory the pipeline loads it from.
    let tmp = TempDir::new("ingest");
    std::fs::create_dir_all(&tmp.0)?;
    let (model_dir, model_source) = model_dir(&args, &tmp.0).await?;
    // The mirror scorers load the same files the pipeline loads.
    let registry = model::load(&model_dir)?;
    if registry.versions().is_empty() && !args.no_model {
        bail!("no model in {}", model_dir.display());
    }

    // 2. Memory per device, in a child process.
    let state = if args.state_devices > 0 {
        eprintln!(
            "memory: {} devices' feature state in a child process",
            args.state_devices
        );
        Some(memory::state_in_child(&model_dir, args.state_devices)?)
    } else {
        None
    };

    // 3. The load.
    let (load, samples) = generate(&args, &profiles, &registry)?;

    // 4. The broker, shared by both phases.
    let broker = Broker::resolve(args.mqtt_url.as_deref(), &args.mqtt_tls)?;
    let broker_name = match &args.mqtt_url {
        Some(url) => format!("external {url}"),
        None => "embedded rumqttd in this process (as `fixahead run` starts it)".to_owned(),
    };
    let target = Target {
        tls: broker.tls.as_ref().map(|t| t.rumqttc()),
        host: broker.host,
        port: broker.port,
        connections: args.connections,
    };
    eprintln!(
        "raw relay: {} messages to a counting subscriber",
        load.timed.len()
    );
    let raw = relay::raw_relay(&target, &load.timed).await?;
    eprintln!(
        "  {:.0} msg/s ({} received in {:.2} s; publishing took {:.2} s)",
        raw.msgs_per_s, raw.received, raw.seconds, raw.publish_seconds
    );

    // 5. and 6. The pipeline, and latency.
    let data_dir = tmp.0.join("data");
    let run =
        pipeline::run_pipeline(&args, &target, &data_dir, &model_dir, &load, &samples).await?;
    let measured = report::Measured {
        args: &args,
        broker: broker_name,
        model_source,
        load: &load,
        state,
        raw,
        run,
        load_before,
        load_after: load_average(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report::json(&measured))?
    );
    Ok(())
}

/// The model's directory and where it came from: --model, an empty directory with
/// --no-model, or a model trained in-process and saved under `tmp`.
async fn model_dir(args: &IngestArgs, tmp: &Path) -> Result<(PathBuf, String)> {
    Ok(match &args.model {
        Some(dir) => (dir.clone(), dir.display().to_string()),
        None if args.no_model => (
            tmp.join("no-model"),
            "none (--no-model): stored and features updated, nothing scored".to_owned(),
        ),
        None => {
            let registry = model::train_small_model().await?;
            let dir = tmp.join("model");
            for device_type in registry.versions().keys() {
                if let Some(artifact) = registry.get(device_type) {
                    models::artifact::save(&artifact, &dir)?;
                }
            }
            (dir, model::TRAINED_IN_PROCESS.to_owned())
        }
    })
}

/// Background messages to generate: enough for the latency phase plus a margin.
fn background_budget(args: &IngestArgs) -> usize {
    (args.background_rate * (args.seconds + 10)) as usize
}

/// The load and the ticket samples (none with --no-model), generated before anything
/// is timed.
fn generate(
    args: &IngestArgs,
    profiles: &ProfileSet,
    registry: &models::ModelRegistry,
) -> Result<(load::Load, Vec<TicketSample>)> {
    eprintln!(
        "generating {} timed + {} background messages from {} simulated devices (not timed)",
        args.messages,
        background_budget(args),
        args.devices
    );
    let load = tokio::task::block_in_place(|| {
        load::generate_load(
            args.devices,
            args.messages as usize,
            background_budget(args),
            profiles,
            registry,
        )
    })?;
    eprintln!(
        "  {} seeds, {} timed messages ({:.0} payload bytes on average, {:.1}% scored), {} background",
        load.seeds.len(),
        load.timed.len(),
        load.payload_bytes_mean,
        100.0 * load.scored_share,
        load.background.len()
    );
    eprintln!(
        "looking for {} devices whose messages open a ticket (not timed)",
        args.tickets
    );
    let want = if args.no_model { 0 } else { args.tickets };
    let samples =
        tokio::task::block_in_place(|| load::find_ticket_samples(want, profiles, registry))?;
    let prefix_messages: usize = samples.iter().map(|s| s.prefix.len()).sum();
    eprintln!(
        "  {} samples, {} messages before their tipping ones",
        samples.len(),
        prefix_messages
    );
    Ok((load, samples))
}
