//! `fixahead bench train` and `fixahead bench score`: the training and scoring speed
//! targets, plus the per-device feature state size (docs/benchmarks.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use domain::{DeviceId, Message, ProfileSet, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::BenchCommand;
use server::commands::simulate::write_history_with_bar;

/// Training target: at most this long for [`TRAIN_TARGET_ROWS`] feature rows.
const TRAIN_TARGET_SECS: f64 = 60.0;
/// The row count the training target is stated for.
const TRAIN_TARGET_ROWS: u64 = 1_000_000;
/// Scoring target: at most this many nanoseconds per device update.
const SCORE_TARGET_NS: f64 = 5_000.0;
/// Feature state target for a washer.
const STATE_TARGET_BYTES: usize = 2_048;

/// Feature rows a device contributes per simulated day once warm (default training
/// parameters: at most one row per 6 h, and only when a message arrives). Refrigerators,
/// air conditioners and water heaters report at least hourly, so they give the full 4;
/// washers and dishwashers report about once per program (0.8 messages a day), which
/// gave 0.58-0.60 rows a day on a 100-device, 67-day simulated history.
fn rows_per_device_day(kind: &str) -> f64 {
    match kind {
        "washer" | "dishwasher" => 0.6,
        _ => 4.0,
    }
}

/// Devices for a fleet of `kinds` (round-robin) that yields about `rows` feature rows
/// over `days` simulated days: rows = devices x (days - 7 warm-up days) x the fleet's
/// mean rows per device-day. Returns the devices and the rows that estimate gives.
fn fleet_for_rows(rows: u64, days: u32, kinds: &[String]) -> anyhow::Result<(usize, f64)> {
    let warm_up_days = (models::features::WARM_UP_MS / Timestamp::DAY_MS) as u32;
    if days <= warm_up_days {
        bail!("--days must exceed the {warm_up_days}-day warm-up, got {days}");
    }
    if kinds.is_empty() {
        bail!("no device kinds to simulate");
    }
    let per_device_day =
        kinds.iter().map(|k| rows_per_device_day(k)).sum::<f64>() / kinds.len() as f64;
    let per_device = f64::from(days - warm_up_days) * per_device_day;
    let devices = ((rows as f64 / per_device).ceil() as usize).max(kinds.len());
    Ok((devices, devices as f64 * per_device))
}

/// `fixahead bench train` and `fixahead bench score`.
pub(crate) async fn run_train_or_score(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Train {
            rows,
            days,
            history,
            keep_history,
            out,
            refrigerator_interval,
        } => {
            bench_train(
                rows,
                days,
                history,
                keep_history,
                out,
                refrigerator_interval,
            )
            .await
        }
        BenchCommand::Score {
            devices,
            updates,
            model,
        } => bench_score(devices, updates, model).await,
        other => bail!("not a training or scoring benchmark: {other:?}"),
    }
}

/// A temporary directory under the system's, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        TempDir(std::env::temp_dir().join(format!("fixahead-bench-{label}-{}", std::process::id())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Timings of one `models::train` call, split at its progress reports.
struct TrainTiming {
    artifacts: Vec<models::ModelArtifact>,
    lines: u64,
    rejected: u64,
    devices: u64,
    rows: u64,
    total: Duration,
    /// Reading events and replaying the history into feature rows.
    replay: Duration,
    /// Per device type: fit time (standardisation, labels, both families, calibration,
    /// thresholds) and components trained of all.
    by_type: Vec<(String, Duration, usize, usize)>,
}

/// Times `models::train` with `params` on `history`, with a spinner on stderr.
fn timed_train(history: &Path, params: &models::ValidTrainParams) -> anyhow::Result<TrainTiming> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("training on {}", history.display()));
    let mut loaded = None;
    let mut by_type: Vec<(String, Duration, usize, usize)> = Vec::new();
    let started = Instant::now();
    let mut last = started;
    let mut on_progress = |p: models::TrainProgress| match p {
        models::TrainProgress::Reading { messages } => {
            bar.set_message(format!("replaying history: {messages} messages"));
        }
        models::TrainProgress::Loaded {
            lines,
            rejected,
            devices,
            rows,
        } => {
            last = Instant::now();
            loaded = Some((last - started, lines, rejected, devices, rows));
            bar.set_message(format!("fitting on {rows} feature rows"));
        }
        models::TrainProgress::Component {
            device_type,
            component,
            outcome,
        } => {
            let now = Instant::now();
            let trained = usize::from(outcome.starts_with("trained"));
            let counted = usize::from(component != "*");
            match by_type.last_mut() {
                Some(t) if t.0 == device_type => {
                    t.1 += now - last;
                    t.2 += trained;
                    t.3 += counted;
                }
                _ => by_type.push((device_type.clone(), now - last, trained, counted)),
            }
            last = now;
            bar.set_message(format!("fitted {device_type}/{component}"));
        }
    };
    let artifacts = models::train(history, &ProfileSet::builtin(), params, &mut on_progress)
        .with_context(|| format!("training from {}", history.display()))?;
    let total = started.elapsed();
    bar.finish_and_clear();
    let (replay, lines, rejected, devices, rows) =
        loaded.context("training never reported its feature rows")?;
    Ok(TrainTiming {
        artifacts,
        lines,
        rejected,
        devices,
        rows,
        total,
        replay,
        by_type,
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

async fn bench_train(
    rows: u64,
    days: u32,
    history: Option<PathBuf>,
    keep_history: Option<PathBuf>,
    out: Option<PathBuf>,
    refrigerator_interval: u64,
) -> anyhow::Result<()> {
    let _tmp;
    let mut simulated = None;
    let dir = match history {
        Some(dir) => dir,
        None => {
            let config = simulators::FleetConfig {
                seed: 1,
                start: simulators::FleetConfig::DEFAULT_START,
                refrigerator_interval_s: refrigerator_interval,
                ..simulators::FleetConfig::default()
            };
            let (devices, estimate) = fleet_for_rows(rows, days, &config.kinds)?;
            let config = simulators::FleetConfig { devices, ..config };
            let dir = match keep_history {
                Some(d) => d,
                None => {
                    let t = TempDir::new("train");
                    let d = t.0.clone();
                    _tmp = t;
                    d
                }
            };
            eprintln!(
                "simulating {devices} devices x {days} days (about {estimate:.0} feature rows) into {}",
                dir.display()
            );
            let started = Instant::now();
            let summary = write_history_with_bar(
                &dir,
                config,
                ProfileSet::builtin(),
                i64::from(days) * Timestamp::DAY_MS,
            )
            .await?;
            simulated = Some((devices, estimate, summary, started.elapsed()));
            dir
        }
    };

    let params = models::ValidTrainParams::default();
    let t = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || timed_train(&dir, &params)
    })
    .await??;
    if let Some(out) = &out {
        for a in &t.artifacts {
            models::artifact::save(a, out)?;
        }
    }

    println!("bench train (models::train, default parameters)");
    match &simulated {
        Some((devices, estimate, summary, secs)) => {
            println!(
                "  history            simulated: {devices} devices of five kinds x {days} days, refrigerator interval {refrigerator_interval} s"
            );
            println!(
                "  simulation         {:.1} s, {} messages, {} failures (not part of the target)",
                secs.as_secs_f64(),
                summary.messages,
                summary.failures
            );
            println!("  estimated rows     {estimate:.0}");
        }
        None => println!("  history            {}", dir.display()),
    }
    println!(
        "  messages           {} ({} rejected), {} devices",
        t.lines, t.rejected, t.devices
    );
    println!("  feature rows       {}", t.rows);
    let total = t.total.as_secs_f64();
    let replay = t.replay.as_secs_f64();
    println!(
        "  replay             {replay:.1} s   (read events, decode the history, update features, sample rows: {:.0} messages/s)",
        t.lines as f64 / replay.max(1e-9)
    );
    println!(
        "  fit                {:.1} s   (labels, logistic + bagged trees, calibration, thresholds)",
        total - replay
    );
    for (device_type, d, trained, components) in &t.by_type {
        println!(
            "    {device_type:<18} {:>5.1} s   {trained}/{components} components trained",
            d.as_secs_f64()
        );
    }
    println!(
        "  train total        {total:.1} s   ({:.0} rows/s)",
        t.rows as f64 / total.max(1e-9)
    );
    // The target is stated for 1,000,000 rows; scale it linearly for other sizes.
    let target = TRAIN_TARGET_SECS * t.rows as f64 / TRAIN_TARGET_ROWS as f64;
    println!(
        "  target             at most {TRAIN_TARGET_SECS:.0} s for {TRAIN_TARGET_ROWS} rows ({target:.1} s for {} rows): {}",
        t.rows,
        verdict(total <= target)
    );
    if let Some(out) = &out {
        println!("  models saved to    {}", out.display());
    }
    if let Some(rss) = peak_rss_bytes() {
        println!("  peak memory        {:.0} MB", rss as f64 / 1e6);
    }
    Ok(())
}

/// Trains a model on the demo's training recipe (300 devices, a year, one failure per
/// component per year) in a temporary directory.
pub(crate) async fn train_small_model() -> anyhow::Result<models::ModelRegistry> {
    let tmp = TempDir::new("score-model");
    let days = 365;
    let config = simulators::FleetConfig {
        devices: 300,
        seed: 1001,
        start: simulators::FleetConfig::DEFAULT_START,
        failure_rate_per_year: 1.0,
        refrigerator_interval_s: 3600,
        ..simulators::FleetConfig::default()
    };
    eprintln!(
        "no --model: simulating 300 devices x {days} days and training a model on it (not timed)"
    );
    write_history_with_bar(
        &tmp.0,
        config,
        ProfileSet::builtin(),
        i64::from(days) * Timestamp::DAY_MS,
    )
    .await?;
    let dir = tmp.0.clone();
    let t = tokio::task::spawn_blocking(move || {
        timed_train(&dir, &models::ValidTrainParams::default())
    })
    .await??;
    Ok(models::ModelRegistry::from_artifacts(t.artifacts))
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

/// Updates per timed batch.
const SCORE_BATCH: usize = 1_000;
/// Event time fed unmeasured before timing: the 7-day warm-up plus two days, so washers
/// and dishwashers, which first report up to a day or two in, are warm as well.
const SCORE_WARM_UP_MS: i64 = 9 * Timestamp::DAY_MS;
/// Event time simulated and decoded per step.
const SCORE_STEP_MS: i64 = 6 * Timestamp::HOUR_MS;

async fn bench_score(devices: usize, updates: u64, model: Option<PathBuf>) -> anyhow::Result<()> {
    let profiles = ProfileSet::builtin();
    let (registry, model_source) = match &model {
        Some(dir) => (
            models::ModelRegistry::load_dir(dir)
                .with_context(|| format!("loading models from {}", dir.display()))?,
            dir.display().to_string(),
        ),
        None => (
            train_small_model().await?,
            "trained in-process on 300 simulated devices x 365 days (no --model given)".into(),
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
        devices,
        seed: 7,
        start: simulators::FleetConfig::DEFAULT_START,
        ..simulators::FleetConfig::default()
    };
    let result =
        tokio::task::spawn_blocking(move || score_loop(config, &profiles, registry, updates))
            .await??;

    let ns = |d: Duration| d.as_secs_f64() * 1e9;
    let mean_ns = ns(result.timed) / result.updates.max(1) as f64;
    let mut batch_ns: Vec<f64> = result.batches.clone();
    batch_ns.sort_by(f64::total_cmp);
    let pct = |q: f64| -> f64 {
        if batch_ns.is_empty() {
            return f64::NAN;
        }
        let i = ((batch_ns.len() - 1) as f64 * q).round() as usize;
        batch_ns[i]
    };
    println!("bench score (models::Scorer::observe on decoded messages)");
    println!("  model              {model_source}");
    for (t, v) in &versions {
        println!("    {t:<18} {v}");
    }
    println!("  trained components {trained_components}");
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
        batch_ns.last().copied().unwrap_or(f64::NAN)
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
    match result.washer_state {
        Some((id, bytes)) => println!(
            "  washer features    {bytes} bytes (DeviceState::size_bytes of {id}); target under {STATE_TARGET_BYTES}: {}",
            verdict(bytes < STATE_TARGET_BYTES)
        ),
        None => println!("  washer features    no washer in the fleet"),
    }
    if let Some(rss) = peak_rss_bytes() {
        println!(
            "  peak memory        {:.0} MB (includes the model and decoded messages)",
            rss as f64 / 1e6
        );
    }
    Ok(())
}

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

/// Feeds the fleet's first [`SCORE_WARM_UP_MS`] to a scorer unmeasured, then times
/// `Scorer::observe` over the next `updates` messages. Simulation and decoding happen
/// between timed batches, six hours of event time at a time.
fn score_loop(
    config: simulators::FleetConfig,
    profiles: &ProfileSet,
    registry: models::ModelRegistry,
    updates: u64,
) -> anyhow::Result<ScoreResult> {
    let start = config.start;
    let mut fleet = simulators::Fleet::new(config, profiles)?;
    let washer = fleet
        .devices()
        .into_iter()
        .find(|d| d.device_type == "washer")
        .map(|d| d.device_id);
    let mut scorer = models::Scorer::new(registry, profiles.clone());
    // The same messages through a scorer without models: the device lookup and the
    // feature update alone, to split the cost of an update.
    let mut features_only = models::Scorer::new(models::ModelRegistry::empty(), profiles.clone());
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
        warm_up_updates: 0,
        updates: 0,
        scored_updates: 0,
        predictions: 0,
        timed: Duration::ZERO,
        features_only: Duration::ZERO,
        decode: Duration::ZERO,
        batches: Vec::new(),
        state_bytes: 0,
        washer_state: None,
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
                std::hint::black_box(scorer.observe(m));
                std::hint::black_box(features_only.observe(m));
            }
            r.warm_up_updates += msgs.len() as u64;
            continue;
        }
        bar.set_message("timing");
        let left = usize::try_from(updates - r.updates).unwrap_or(usize::MAX);
        for batch in msgs[..msgs.len().min(left)].chunks(SCORE_BATCH) {
            // The scorer without models runs before or after the timed one, alternately,
            // so neither always finds the batch's messages in the cache.
            let features_first = r.batches.len() % 2 == 1;
            if features_first {
                r.features_only += time_features_only(&mut features_only, batch);
            }
            let mut scored = 0u64;
            let mut predictions = 0u64;
            let t0 = Instant::now();
            for m in batch {
                // The predictions are counted and dropped inside the timed loop: building
                // and freeing them is part of what a scored update costs.
                let p = scorer.observe(std::hint::black_box(m));
                scored += u64::from(!p.is_empty());
                predictions += p.len() as u64;
            }
            let dt = t0.elapsed();
            if !features_first {
                r.features_only += time_features_only(&mut features_only, batch);
            }
            r.timed += dt;
            r.updates += batch.len() as u64;
            r.scored_updates += scored;
            r.predictions += predictions;
            if batch.len() == SCORE_BATCH {
                r.batches.push(dt.as_secs_f64() * 1e9 / SCORE_BATCH as f64);
            }
        }
        bar.set_position(r.updates);
    }
    bar.finish_and_clear();
    r.state_bytes = scorer.state_bytes();
    r.washer_state = washer.and_then(|id| {
        let bytes = scorer.device_state(&id)?.size_bytes();
        Some((id, bytes))
    });
    Ok(r)
}

fn time_features_only(scorer: &mut models::Scorer, batch: &[Message]) -> Duration {
    let t0 = Instant::now();
    for m in batch {
        std::hint::black_box(scorer.observe(std::hint::black_box(m)));
    }
    t0.elapsed()
}

/// Peak resident memory of this process, from /proc (Linux).
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `fixahead bench ...`
pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        command @ (BenchCommand::Train { .. } | BenchCommand::Score { .. }) => {
            run_train_or_score(command).await?;
        }
        BenchCommand::Ingest(args) => crate::bench_ingest::run(args).await?,
        BenchCommand::FleetAlarms {
            seeds,
            devices,
            days,
            multiplier,
            component,
        } => tokio::task::block_in_place(|| {
            crate::bench_fleet::run(seeds, devices, days, multiplier, component)
        })?,
        BenchCommand::Insight(args) => crate::bench_insight::run(args).await?,
        BenchCommand::SimulateOffline { devices, days, out } => {
            let tmp;
            let dir = match out {
                Some(d) => d,
                None => {
                    tmp =
                        std::env::temp_dir().join(format!("fixahead-bench-{}", std::process::id()));
                    tmp.clone()
                }
            };
            let duration_ms = i64::from(days) * Timestamp::DAY_MS;
            let config = simulators::FleetConfig {
                devices,
                seed: 1,
                start: simulators::FleetConfig::DEFAULT_START,
                ..simulators::FleetConfig::default()
            };
            let started = Instant::now();
            let summary =
                write_history_with_bar(&dir, config, ProfileSet::builtin(), duration_ms).await?;
            let secs = started.elapsed().as_secs_f64();
            let bytes: u64 = ["telemetry.jsonl", "events.jsonl", "devices.jsonl"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum();
            println!("bench simulate-offline");
            println!("  devices            {devices}");
            println!("  simulated days     {days}");
            println!("  messages           {}", summary.messages);
            println!("  failures           {}", summary.failures);
            println!("  history size       {:.1} MB", bytes as f64 / 1e6);
            println!("  wall time          {secs:.1} s   (target: at most 60 s for 10,000 devices x 90 days)");
            println!(
                "  throughput         {:.0} messages/s",
                summary.messages as f64 / secs
            );
            if let Some(rss) = peak_rss_bytes() {
                println!("  peak memory        {:.0} MB", rss as f64 / 1e6);
            }
            if dir.starts_with(std::env::temp_dir())
                && dir
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("fixahead-bench-"))
            {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        BenchCommand::SimulateLive {
            devices,
            seconds,
            connections,
            mqtt_url,
            mqtt_tls,
        } => {
            let (host, port, tls, where_) = match &mqtt_url {
                Some(url) => {
                    let endpoint = mqtt_tls.endpoint(url)?;
                    (
                        endpoint.host,
                        endpoint.port,
                        endpoint.tls.map(|t| t.rumqttc()),
                        format!("external broker {url}; peak memory is the publisher's alone"),
                    )
                }
                None => {
                    let settings = ingest::broker::BrokerSettings::new(std::net::SocketAddr::from(
                        ([127, 0, 0, 1], 0),
                    ));
                    let addr = ingest::broker::start(&settings)?.addr();
                    (
                        addr.ip().to_string(),
                        addr.port(),
                        None,
                        "embedded broker in this process; peak memory includes it".to_owned(),
                    )
                }
            };
            let result =
                simulators::bench_live(devices, seconds, connections, &host, port, tls).await?;
            println!("bench simulate-live (QoS 1, no subscriber, {where_})");
            println!("  devices            {}", result.devices);
            println!("  connections        {}", result.connections);
            println!("  simulation speed   {:.0}x", result.speed);
            println!("  measured for       {:.1} s", result.seconds);
            println!("  published          {}", result.published);
            println!("  acknowledged       {}", result.acked);
            println!(
                "  throughput         {:.0} messages/s   (target: at least 50,000)",
                result.msgs_per_sec
            );
            println!(
                "  peak RSS           {:.0} MB   (target: publisher under 2 GB)",
                result.peak_rss_bytes as f64 / 1e6
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five_kinds() -> Vec<String> {
        simulators::FleetConfig::default().kinds
    }

    #[test]
    fn a_million_rows_over_a_year_takes_about_1059_devices() {
        // Five kinds round-robin: (3 x 4 + 2 x 0.6) / 5 = 2.64 rows per device-day,
        // over 365 - 7 = 358 warm days: 1,000,000 / 945.12 = 1058.06, rounded up.
        let (devices, estimate) = fleet_for_rows(1_000_000, 365, &five_kinds()).unwrap();
        assert_eq!(devices, 1059);
        assert!((estimate - 1059.0 * 358.0 * 2.64).abs() < 1e-6);
        assert!(estimate >= 1_000_000.0);
    }

    #[test]
    fn hourly_reporters_give_four_rows_a_day() {
        let kinds = vec!["refrigerator".to_owned()];
        let (devices, _) = fleet_for_rows(4 * 93 * 10, 100, &kinds).unwrap();
        assert_eq!(devices, 10);
    }

    #[test]
    fn a_fleet_has_at_least_one_device_per_kind_and_needs_warm_days() {
        let (devices, _) = fleet_for_rows(1, 365, &five_kinds()).unwrap();
        assert_eq!(devices, 5);
        assert!(fleet_for_rows(1_000, 7, &five_kinds()).is_err());
        assert!(fleet_for_rows(1_000, 30, &[]).is_err());
    }
}
