//! `fixahead bench score`: the live scoring target (`Scorer::observe` per device
//! update) and the per-device feature state size (docs/benchmarks.md, "Scoring").

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use domain::{DeviceId, Message, ProfileSet, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::bail;
use crate::model;
use crate::stats::{percentile, verdict};
use crate::system::peak_rss_bytes;
use crate::Result;

/// Scoring target: at most this many nanoseconds per device update.
const SCORE_TARGET_NS: f64 = 5_000.0;
/// Feature state target for a washer.
const STATE_TARGET_BYTES: usize = 2_048;
/// Updates per timed batch.
const SCORE_BATCH: usize = 1_000;
/// Event time fed unmeasured before timing: the 7-day warm-up plus two days, so washers
/// and dishwashers, which first report up to a day or two in, are warm as well.
const SCORE_WARM_UP_MS: i64 = 9 * Timestamp::DAY_MS;
/// Event time simulated and decoded per step.
const SCORE_STEP_MS: i64 = 6 * Timestamp::HOUR_MS;

// The flags of `fixahead bench score` (its help is the variant's doc in `BenchCommand`).
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Devices.
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Timed updates, after a 9-day warm-up that is not timed.
    #[arg(long, default_value_t = 2_000_000)]
    pub updates: u64,
    /// Model directory (default: train one in-process on a small simulated history).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

/// `fixahead bench score`.
pub(crate) async fn run(args: ScoreArgs) -> Result<()> {
    let profiles = ProfileSet::builtin();
    let (registry, model_source) = match &args.model {
        Some(dir) => (model::load(dir)?, dir.display().to_string()),
        None => (
            model::train_small_model().await?,
            model::TRAINED_IN_PROCESS.to_owned(),
        ),
    };
    let versions = registry.versions();
    if versions.is_empty() {
        bail!("no model to score with");
    }
    let trained_components: usize = versions
        .keys()
        .filter_map(|t| registry.get(t))
        .map(|a| a.components.iter().filter(|c| c.is_trained()).count())
        .sum();
    let config = simulators::FleetConfig {
        devices: args.devices,
        seed: 7,
        start: simulators::FleetConfig::DEFAULT_START,
        ..simulators::FleetConfig::default()
    };
    let updates = args.updates;
    let result =
        tokio::task::spawn_blocking(move || score_loop(config, &profiles, registry, updates))
            .await??;
    println!("bench score (models::Scorer::observe on decoded messages)");
    println!("  model              {model_source}");
    for (t, v) in &versions {
        println!("    {t:<18} {v}");
    }
    println!("  trained components {trained_components}");
    print_report(&result);
    Ok(())
}

/// The report's lines after the model's.
fn print_report(result: &ScoreResult) {
    let ns = |d: Duration| d.as_secs_f64() * 1e9;
    let mean_ns = ns(result.timed) / result.updates.max(1) as f64;
    let pct = |q: f64| percentile(&result.batches, q);
    println!(
        "  devices            {} (default simulator settings)",
        result.devices
    );
    println!(
        "  warm-up            {} updates over {} days of event time (not timed)",
        result.warm_up_updates,
        SCORE_WARM_UP_MS / Timestamp::DAY_MS
    );
    println!(
        "  decoding           {:.1} s for {} messages (not timed)",
        result.decode.as_secs_f64(),
        result.warm_up_updates + result.updates
    );
    println!("  timed updates      {}", result.updates);
    println!(
        "  scored updates     {} ({:.1}%), {} predictions",
        result.scored_updates,
        100.0 * result.scored_updates as f64 / result.updates.max(1) as f64,
        result.predictions
    );
    println!(
        "  time per update    {mean_ns:.0} ns mean; per batch of {SCORE_BATCH}: p50 {:.0} ns, p99 {:.0} ns, max {:.0} ns",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let features_ns = ns(result.features_only) / result.updates.max(1) as f64;
    println!(
        "    of which          about {features_ns:.0} ns device lookup and feature update (the same updates through a scorer without models), {:.0} ns model scoring and building the predictions",
        mean_ns - features_ns
    );
    println!(
        "  throughput         {:.0} updates/s on one thread",
        result.updates as f64 / result.timed.as_secs_f64().max(1e-9)
    );
    println!(
        "  target             at most {:.0} ns per update: {}",
        SCORE_TARGET_NS,
        verdict(mean_ns <= SCORE_TARGET_NS)
    );
    println!(
        "  state per device   {:.0} bytes (Scorer::state_bytes / devices: features, persistence counters, map entry)",
        result.state_bytes as f64 / result.devices.max(1) as f64
    );
    match &result.washer_state {
        Some((id, bytes)) => println!(
            "  washer features    {bytes} bytes (DeviceState::size_bytes of {id}); target under {STATE_TARGET_BYTES}: {}",
            verdict(*bytes < STATE_TARGET_BYTES)
        ),
        None => println!("  washer features    no washer in the fleet"),
    }
    if let Some(rss) = peak_rss_bytes() {
        println!(
            "  peak memory        {:.0} MB (includes the model and decoded messages)",
            rss as f64 / 1e6
        );
    }
}

#[derive(Default)]
struct ScoreResult {
    devices: usize,
    warm_up_updates: u64,
    updates: u64,
    scored_updates: u64,
    predictions: u64,
    timed: Duration,
    /// The same updates through a scorer without models (lookup and feature update).
    features_only: Duration,
    decode: Duration,
    /// Mean nanoseconds per update of each full timed batch.
    batches: Vec<f64>,
    state_bytes: usize,
    washer_state: Option<(DeviceId, usize)>,
}

/// Decodes a simulated batch as the pipeline would (not timed).
fn decode_all(events: Vec<simulators::SimEvent>, profiles: &ProfileSet) -> Vec<Message> {
    events
        .into_iter()
        .filter_map(|e| match e {
            simulators::SimEvent::Message(m) => {
                domain::decode(&m.topic(), &m.payload_bytes(), profiles).ok()
            }
            simulators::SimEvent::GroundTruth(_) => None,
        })
        .collect()
}

/// The scorer timed, and the same messages through a scorer without models: the
/// device lookup and the feature update alone, to split the cost of an update.
struct Scorers {
    scorer: models::Scorer,
    features_only: models::Scorer,
}

/// Feeds the fleet's first [`SCORE_WARM_UP_MS`] to a scorer unmeasured, then times
/// `Scorer::observe` over the next `updates` messages. Simulation and decoding happen
/// between timed batches, six hours of event time at a time.
fn score_loop(
    config: simulators::FleetConfig,
    profiles: &ProfileSet,
    registry: models::ModelRegistry,
    updates: u64,
) -> Result<ScoreResult> {
    let start = config.start;
    let mut fleet = simulators::Fleet::new(config, profiles)?;
    let washer = fleet
        .devices()
        .into_iter()
        .find(|d| d.device_type == "washer")
        .map(|d| d.device_id);
    let mut s = Scorers {
        scorer: models::Scorer::new(registry, profiles.clone()),
        features_only: models::Scorer::new(models::ModelRegistry::empty(), profiles.clone()),
    };
    let bar = ProgressBar::new(updates);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} timed updates, {msg} [{elapsed_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("warming up");

    let mut r = ScoreResult {
        devices: fleet.len(),
        ..ScoreResult::default()
    };
    let mut until = start.millis();
    let mut idle_steps = 0;
    while r.updates < updates {
        until += SCORE_STEP_MS;
        let events = fleet.advance(Timestamp(until - 1));
        let decode_started = Instant::now();
        let msgs = decode_all(events, profiles);
        r.decode += decode_started.elapsed();
        if msgs.is_empty() {
            idle_steps += 1;
            if idle_steps > 40 {
                bail!("the simulated fleet stopped sending messages");
            }
            continue;
        }
        idle_steps = 0;
        if until - start.millis() <= SCORE_WARM_UP_MS {
            for m in &msgs {
                std::hint::black_box(s.scorer.observe(m));
                std::hint::black_box(s.features_only.observe(m));
            }
            r.warm_up_updates += msgs.len() as u64;
            continue;
        }
        bar.set_message("timing");
        let left = usize::try_from(updates - r.updates).unwrap_or(usize::MAX);
        for batch in msgs[..msgs.len().min(left)].chunks(SCORE_BATCH) {
            time_batch(&mut s, batch, &mut r);
        }
        bar.set_position(r.updates);
    }
    bar.finish_and_clear();
    r.state_bytes = s.scorer.state_bytes();
    r.washer_state = washer.and_then(|id| {
        let bytes = s.scorer.device_state(&id)?.size_bytes();
        Some((id, bytes))
    });
    Ok(r)
}

/// Times one batch through both scorers and adds it to `r`.
fn time_batch(s: &mut Scorers, batch: &[Message], r: &mut ScoreResult) {
    // The scorer without models runs before or after the timed one, alternately,
    // so neither always finds the batch's messages in the cache.
    let features_first = r.batches.len() % 2 == 1;
    if features_first {
        r.features_only += time_features_only(&mut s.features_only, batch);
    }
    let mut scored = 0u64;
    let mut predictions = 0u64;
    let t0 = Instant::now();
    for m in batch {
        // The predictions are counted and dropped inside the timed loop: building
        // and freeing them is part of what a scored update costs.
        let p = s.scorer.observe(std::hint::black_box(m));
        scored += u64::from(!p.is_empty());
        predictions += p.len() as u64;
    }
    let dt = t0.elapsed();
    if !features_first {
        r.features_only += time_features_only(&mut s.features_only, batch);
    }
    r.timed += dt;
    r.updates += batch.len() as u64;
    r.scored_updates += scored;
    r.predictions += predictions;
    if batch.len() == SCORE_BATCH {
        r.batches.push(dt.as_secs_f64() * 1e9 / SCORE_BATCH as f64);
    }
}

fn time_features_only(scorer: &mut models::Scorer, batch: &[Message]) -> Duration {
    let t0 = Instant::now();
    for m in batch {
        std::hint::black_box(scorer.observe(std::hint::black_box(m)));
    }
    t0.elapsed()
}
