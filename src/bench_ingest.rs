//! `fixahead bench ingest`: the broker's raw relay rate against the full pipeline's on
//! the same payloads and the same broker, publish-to-stored and publish-to-ticket
//! latency under a steady background load, and the memory one tracked device costs.
//! What each number measures is documented in docs/performance.md.
//!
//! Phases, in order:
//! 1. the model: `--model DIR`, or one trained in-process (as `bench score` does);
//! 2. memory, in a child process (`--state-only`) so nothing this process allocated
//!    before blurs the resident-memory delta;
//! 3. the load, generated and decoded before anything is timed: a simulated fleet's
//!    first message per device (seeds), the next `--messages` messages (timed), and a
//!    background stream; plus the ticket samples (below);
//! 4. the raw relay: a subscriber that only counts, fed by the publisher;
//! 5. the pipeline (`app::start`, as `fixahead run` starts it) on a temporary data
//!    directory, fed the same messages by the same publisher;
//! 6. latency, with the pipeline still running: a background load at
//!    `--background-rate`, store probes, and one ticket sample at a time.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use domain::{DeviceId, Message, ProfileSet, Timestamp};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS};
use serde_json::{json, Value};
use store::hot::StoreReader;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bench::TempDir;
use crate::cli::IngestBenchArgs;
use server::settings::{ConfigFile, Overrides, Settings};

/// Ratio target with the embedded broker.
const RATIO_TARGET_EMBEDDED: f64 = 0.6;
/// Ratio target with an external broker (Mosquitto).
const RATIO_TARGET_EXTERNAL: f64 = 0.9;
/// Ticket latency target (p99), at the background load.
const TICKET_P99_TARGET_MS: f64 = 50.0;
/// Memory target per tracked device.
const BYTES_PER_DEVICE_TARGET: f64 = 2048.0;

/// Event time before the timed messages start: the feature warm-up (7 days) plus two
/// days, so washers and dishwashers, whose first report can come a day or two in, are
/// warm (and scored) from the start.
const SEED_WINDOW_MS: i64 = 9 * Timestamp::DAY_MS;
/// Event time simulated per step while generating.
const STEP_MS: i64 = Timestamp::HOUR_MS;
/// QoS 1 publishes awaiting their PUBACK, per publisher connection.
const INFLIGHT: u16 = 1000;
/// Requests queued per publisher connection.
const REQUEST_CAPACITY: usize = 4096;
/// Largest packet, both ways.
const MAX_PACKET: usize = 1024 * 1024;
/// Give up when a phase makes no progress for this long.
const STALL: Duration = Duration::from_secs(60);
/// Store probes per second during the latency phase.
const PROBES_PER_S: u64 = 100;
/// How often the store probe thread looks for its probes.
const PROBE_POLL: Duration = Duration::from_millis(1);
/// Pending store probes (the oldest) looked up per poll.
const PROBES_PER_POLL: usize = 8;
/// How often the ticket sampler asks the API.
const TICKET_POLL: Duration = Duration::from_millis(1);
/// Ticket sampling stops after this many timeouts.
const MAX_TICKET_TIMEOUTS: usize = 3;
/// A ticket sample that takes longer than this counts as a timeout.
const TICKET_TIMEOUT: Duration = Duration::from_secs(10);

/// `fixahead bench ingest`
pub(crate) async fn run(args: IngestBenchArgs) -> anyhow::Result<()> {
    if args.state_only {
        let model = args
            .model
            .as_deref()
            .context("--state-only needs --model")?;
        let result = tokio::task::block_in_place(|| state_only(model, args.state_devices))?;
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
    let (model_dir, model_source) = match &args.model {
        Some(dir) => (dir.clone(), dir.display().to_string()),
        None if args.no_model => (
            tmp.0.join("no-model"),
            "none (--no-model): stored and features updated, nothing scored".to_owned(),
        ),
        None => {
            let registry = crate::bench::train_small_model().await?;
            let dir = tmp.0.join("model");
            for device_type in registry.versions().keys() {
                if let Some(artifact) = registry.get(device_type) {
                    models::artifact::save(&artifact, &dir)?;
                }
            }
            (
                dir,
                "trained in-process on 300 simulated devices x 365 days (no --model given)"
                    .to_owned(),
            )
        }
    };
    // The mirror scorers load the same files the pipeline loads.
    let registry = models::ModelRegistry::load_dir(&model_dir)
        .with_context(|| format!("loading models from {}", model_dir.display()))?;
    if registry.versions().is_empty() && !args.no_model {
        bail!("no model in {}", model_dir.display());
    }

    // 2. Memory per device, in a child process.
    let state = if args.state_devices > 0 {
        eprintln!(
            "memory: {} devices' feature state in a child process",
            args.state_devices
        );
        Some(state_in_child(&model_dir, args.state_devices)?)
    } else {
        None
    };

    // 3. The load.
    eprintln!(
        "generating {} timed + {} background messages from {} simulated devices (not timed)",
        args.messages,
        background_budget(&args),
        args.devices
    );
    let load = tokio::task::block_in_place(|| {
        generate_load(
            args.devices,
            args.messages as usize,
            background_budget(&args),
            &profiles,
            &registry,
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
    let samples = tokio::task::block_in_place(|| find_ticket_samples(want, &profiles, &registry))?;
    let prefix_messages: usize = samples.iter().map(|s| s.prefix.len()).sum();
    eprintln!(
        "  {} samples, {} messages before their tipping ones",
        samples.len(),
        prefix_messages
    );

    // 4. The broker, shared by both phases.
    let (host, port, tls, broker) = match &args.mqtt_url {
        Some(url) => {
            let endpoint = args.mqtt_tls.endpoint(url)?;
            (
                endpoint.host,
                endpoint.port,
                endpoint.tls,
                format!("external {url}"),
            )
        }
        None => {
            let settings =
                ingest::broker::BrokerSettings::new(SocketAddr::from(([127, 0, 0, 1], 0)));
            let addr = ingest::broker::start(&settings)?.addr();
            (
                addr.ip().to_string(),
                addr.port(),
                None,
                "embedded rumqttd in this process (as `fixahead run` starts it)".to_owned(),
            )
        }
    };
    let target = Target {
        host: host.clone(),
        port,
        tls: tls.as_ref().map(|t| t.rumqttc()),
        connections: args.connections,
    };

    eprintln!(
        "raw relay: {} messages to a counting subscriber",
        load.timed.len()
    );
    let raw = raw_relay(&target, &load.timed).await?;
    eprintln!(
        "  {:.0} msg/s ({} received in {:.2} s; publishing took {:.2} s)",
        raw.msgs_per_s, raw.received, raw.seconds, raw.publish_seconds
    );

    // 5. The pipeline.
    let data_dir = tmp.0.join("data");
    let mut config = ConfigFile {
        data_dir: data_dir.clone(),
        ..ConfigFile::default()
    };
    config.mqtt.url = Some(match &args.mqtt_url {
        Some(url) => url.clone(),
        None => format!("mqtt://{host}:{port}"),
    });
    let tls_files = args.mqtt_tls.files();
    config.mqtt.ca_file = tls_files.ca_file;
    config.mqtt.client_cert = tls_files.client_cert;
    config.mqtt.client_key = tls_files.client_key;
    config.mqtt.client_id = format!("fixahead-bench-ingest-{}", std::process::id());
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.models.dir = Some(model_dir.clone());
    if let Some(ms) = args.batch_interval_ms {
        config.ingest.batch_interval_ms = ms;
    }
    let batch_interval_ms = config.ingest.batch_interval_ms;
    let settings = Settings::build(config, &Overrides::default())?;
    // The stores commit with an fsync each (`synchronous = full`): the disk's fsync
    // latency, measured next to them before and after, is part of the context.
    std::fs::create_dir_all(&data_dir)?;
    let fsync_before = tokio::task::block_in_place(|| fsync_latency(&data_dir))?;
    let running = server::app::start(&settings, profiles.clone()).await?;
    // The bench reads the pipeline's progress through the API, with its own admin key.
    let access = running.access.clone();
    let (key, _) = tokio::task::block_in_place(|| access.create(api::Role::Admin, "bench ingest"))?;
    *API_KEY
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = key;
    let http = running.http_addr;
    let result = pipeline_phases(&args, &target, http, &data_dir, &load, &samples).await;
    eprintln!("stopping the pipeline");
    let stopped = running.shutdown().await;
    let (pipeline, latency) = result?;
    stopped?;
    let fsync_after = tokio::task::block_in_place(|| fsync_latency(&data_dir))?;
    let latency_measured = latency.is_some();
    let latency = latency.unwrap_or_else(LatencyResult::not_measured);

    let load_after = load_average();
    let ratio = pipeline.msgs_per_s / raw.msgs_per_s.max(1e-9);
    let ratio_target = if args.mqtt_url.is_some() {
        RATIO_TARGET_EXTERNAL
    } else {
        RATIO_TARGET_EMBEDDED
    };
    let ticket_p99 = percentile(&latency.ticket_ms, 0.99);
    let bytes_per_device = state.as_ref().map(|s| s.bytes_per_device);
    let context = json!({
        "bench": "ingest",
        "broker": broker,
        "messages": load.timed.len(),
        "devices": args.devices,
        "publisher_connections": args.connections,
        "batch_interval_ms": batch_interval_ms,
        "max_ahead": args.max_ahead,
        "payload_bytes_mean": round1(load.payload_bytes_mean),
        "model": model_source,
        "scored_share": round3(load.scored_share),
    });
    let throughput = json!({
        "raw_msgs_per_s": raw.msgs_per_s.round(),
        "raw_seconds": round3(raw.seconds),
        "raw_publish_seconds": round3(raw.publish_seconds),
        "pipeline_msgs_per_s": pipeline.msgs_per_s.round(),
        "pipeline_seconds": round3(pipeline.seconds),
        "pipeline_publish_seconds": round3(pipeline.publish_seconds),
        "pipeline_scored_seconds": pipeline.scored_seconds.map(round3),
        "pipeline_dead_letters": pipeline.dead_letters,
        "pipeline_commits": pipeline.commits,
        "pipeline_messages_per_commit": round1(load.timed.len() as f64 / pipeline.commits as f64),
        "pipeline_predictions_recorded": pipeline.predictions_recorded,
        "pipeline_tickets_opened": pipeline.tickets_opened,
        "pipeline_tickets_updated": pipeline.tickets_updated,
        "pipeline_stalled": pipeline.stalled,
        "ratio": round3(ratio),
    });
    let latencies = json!({
        "latency_measured": latency_measured,
        "background_msgs_per_s": latency.background_msgs_per_s.round(),
        "background_backlog_at_end": latency.backlog_at_end,
        "store_latency_ms_p50": round1(percentile(&latency.store_ms, 0.5)),
        "store_latency_ms_p99": round1(percentile(&latency.store_ms, 0.99)),
        "store_latency_ms_max": round1(percentile(&latency.store_ms, 1.0)),
        "store_latency_samples": latency.store_ms.len(),
        "store_latency_lost": latency.store_lost,
        "ticket_latency_ms_p50": round1(percentile(&latency.ticket_ms, 0.5)),
        "ticket_latency_ms_p99": round1(ticket_p99),
        "ticket_latency_ms_max": round1(percentile(&latency.ticket_ms, 1.0)),
        "ticket_samples": latency.ticket_ms.len(),
        "ticket_timeouts": latency.ticket_timeouts,
        "ticket_skipped": latency.ticket_skipped,
        "ticket_not_taken": latency.ticket_not_taken,
    });
    let memory = json!({
        "bytes_per_device": bytes_per_device.map(f64::round),
        "state_bytes_per_device": state.as_ref().map(|s| s.state_bytes_per_device.round()),
        "state_devices": state.as_ref().map(|s| s.devices),
        "state_scored_devices": state.as_ref().map(|s| s.scored_devices),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "fsync_ms_p50_before": round3(fsync_before.0),
        "fsync_ms_p99_before": round3(fsync_before.1),
        "fsync_ms_p50_after": round3(fsync_after.0),
        "fsync_ms_p99_after": round3(fsync_after.1),
        "load_average_before": load_before,
        "load_average_after": load_after,
    });
    let targets = json!({
        "ratio": {"target": ratio_target, "met": ratio >= ratio_target},
        "ticket_latency_ms_p99": {
            "target": TICKET_P99_TARGET_MS,
            "at_background_msgs_per_s": args.background_rate,
            "met": latency_measured
                && ticket_p99 < TICKET_P99_TARGET_MS
                && latency.ticket_timeouts == 0
                && latency.ticket_not_taken == 0,
        },
        "bytes_per_device": {
            "target": BYTES_PER_DEVICE_TARGET,
            "met": bytes_per_device.map(|b| b < BYTES_PER_DEVICE_TARGET),
        },
    });
    let mut out = serde_json::Map::new();
    for part in [context, throughput, latencies, memory] {
        if let Value::Object(fields) = part {
            out.extend(fields);
        }
    }
    out.insert("targets".into(), targets);
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Background messages to generate: enough for the latency phase plus a margin.
fn background_budget(args: &IngestBenchArgs) -> usize {
    (args.background_rate * (args.seconds + 10)) as usize
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `q` quantile (nearest rank on the sorted values), NaN when empty.
pub(crate) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Median and p99, in ms, of appending 4 KiB to a file in `dir` and fsyncing it, as a
/// SQLite WAL commit does; 50 times.
fn fsync_latency(dir: &Path) -> anyhow::Result<(f64, f64)> {
    use std::io::Write as _;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let mut ms = Vec::with_capacity(50);
    for _ in 0..50 {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_all()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok((percentile(&ms, 0.5), percentile(&ms, 0.99)))
}

fn load_average() -> Option<Vec<f64>> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .take(3)
        .map(|s| s.parse().ok())
        .collect()
}

/// A field of /proc/self/status in bytes (Linux).
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------------
// Memory per device

#[derive(serde::Serialize, serde::Deserialize)]
struct StateResult {
    devices: usize,
    scored_devices: usize,
    rss_before: u64,
    rss_after: u64,
    bytes_per_device: f64,
    state_bytes_per_device: f64,
}

/// Runs `bench ingest --state-only` in a child process and reads its JSON line.
fn state_in_child(model_dir: &Path, devices: usize) -> anyhow::Result<StateResult> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let out = std::process::Command::new(exe)
        .args(["bench", "ingest", "--state-only", "--state-devices"])
        .arg(devices.to_string())
        .arg("--model")
        .arg(model_dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the memory measurement")?;
    if !out.status.success() {
        bail!("the memory measurement failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .with_context(|| format!("reading the memory measurement's output {line:?}"))
}

/// Two messages per device, seven days apart, so its state is warm and scored.
type Template = (Message, Message);

/// A message of another device: the same payload under `id`.
fn with_device(message: &Message, id: DeviceId) -> Message {
    match message {
        Message::Telemetry(t) => Message::Telemetry(domain::Telemetry {
            device_id: id,
            ..t.clone()
        }),
        Message::Fault(f) => Message::Fault(domain::FaultMessage {
            device_id: id,
            ..f.clone()
        }),
        Message::Status(s) => Message::Status(domain::StatusMessage {
            device_id: id,
            ..s.clone()
        }),
        Message::Command(_) => Message::Command(id),
        Message::CommandResult(r) => Message::CommandResult(domain::CommandResult {
            device_id: id,
            ..r.clone()
        }),
    }
}

/// Per template device of a small simulated fleet: its first message and its first
/// one at least [`models::features::WARM_UP_MS`] later.
fn state_templates(profiles: &ProfileSet) -> anyhow::Result<Vec<Template>> {
    let config = simulators::FleetConfig {
        devices: 1000,
        seed: 3,
        start: simulators::FleetConfig::DEFAULT_START,
        ..simulators::FleetConfig::default()
    };
    let start = config.start.millis();
    let mut fleet = simulators::Fleet::new(config, profiles)?;
    let mut first: HashMap<DeviceId, Message> = HashMap::new();
    let mut templates = Vec::new();
    let mut done: HashSet<DeviceId> = HashSet::new();
    let mut until = start;
    while until < start + 12 * Timestamp::DAY_MS {
        until += STEP_MS;
        for event in fleet.advance(Timestamp(until - 1)) {
            let simulators::SimEvent::Message(m) = event else {
                continue;
            };
            if done.contains(&m.device_id) {
                continue;
            }
            let Ok(message) = domain::decode(&m.topic(), &m.payload_bytes(), profiles) else {
                continue;
            };
            let Some(ts) = message.ts() else { continue };
            match first.get(&m.device_id) {
                None => {
                    first.insert(m.device_id.clone(), message);
                }
                Some(a) => {
                    let a_ts = a.ts().map_or(i64::MAX, Timestamp::millis);
                    if ts.millis().saturating_sub(a_ts) >= models::features::WARM_UP_MS {
                        if let Some(a) = first.remove(&m.device_id) {
                            templates.push((a, message));
                        }
                        done.insert(m.device_id.clone());
                    }
                }
            }
        }
    }
    if templates.is_empty() {
        bail!("the template fleet produced no warm device");
    }
    Ok(templates)
}

/// The child process: RSS before and after a scorer takes `devices` devices.
fn state_only(model_dir: &Path, devices: usize) -> anyhow::Result<StateResult> {
    let profiles = ProfileSet::builtin();
    let registry = models::ModelRegistry::load_dir(model_dir)
        .with_context(|| format!("loading models from {}", model_dir.display()))?;
    let templates = state_templates(&profiles)?;
    let mut scorer = models::Scorer::new(registry, profiles);
    let rss_before = proc_status_bytes("VmRSS:").context("reading VmRSS")?;
    let mut scored_devices = 0;
    for i in 0..devices {
        let (a, b) = &templates[i % templates.len()];
        let id = DeviceId::parse(&format!("{}-{i:07}", a.device_id()))?;
        std::hint::black_box(scorer.observe(&with_device(a, id.clone())));
        let predictions = scorer.observe(&with_device(b, id));
        scored_devices += usize::from(!predictions.is_empty());
        if i % 100_000 == 99_999 {
            eprintln!("  {} devices", i + 1);
        }
    }
    let rss_after = proc_status_bytes("VmRSS:").context("reading VmRSS")?;
    let n = scorer.device_count().max(1) as f64;
    Ok(StateResult {
        devices: scorer.device_count(),
        scored_devices,
        rss_before,
        rss_after,
        bytes_per_device: rss_after.saturating_sub(rss_before) as f64 / n,
        state_bytes_per_device: scorer.state_bytes() as f64 / n,
    })
}

// ---------------------------------------------------------------------------------
// The load

/// One message ready to publish.
#[derive(Clone)]
struct Out {
    /// The publishing device's index (selects its connection, keeping its order).
    device: u32,
    /// Topic and payload.
    publish: Publish,
    /// Event time.
    ts: i64,
    /// Device sequence number.
    seq: u64,
    /// A telemetry message (the store probes look for those).
    telemetry: bool,
    /// The pipeline's scorer returns predictions for it (a mirror scorer says so).
    scored: bool,
}

struct Load {
    /// Each device's first message, published before the timed ones.
    seeds: Vec<Out>,
    /// Timed through the raw relay and the pipeline.
    timed: Vec<Out>,
    /// The latency phase's background load.
    background: Vec<Out>,
    payload_bytes_mean: f64,
    /// Share of timed messages the pipeline scores.
    scored_share: f64,
}

/// Simulates `devices` devices (five kinds, default settings, seed 1): each device's
/// first message within [`SEED_WINDOW_MS`] becomes its seed, the other messages of that
/// window are dropped, and the messages after it are the timed ones, then the
/// background. A mirror scorer (the same model files) marks what the pipeline scores.
fn generate_load(
    devices: usize,
    timed: usize,
    background: usize,
    profiles: &ProfileSet,
    registry: &models::ModelRegistry,
) -> anyhow::Result<Load> {
    let config = simulators::FleetConfig {
        devices,
        seed: 1,
        start: simulators::FleetConfig::DEFAULT_START,
        ..simulators::FleetConfig::default()
    };
    let start = config.start.millis();
    let mut fleet = simulators::Fleet::new(config, profiles)?;
    let index: HashMap<DeviceId, u32> = fleet
        .devices()
        .into_iter()
        .enumerate()
        .map(|(i, d)| (d.device_id, i as u32))
        .collect();
    let mut mirror = models::Scorer::new(registry.clone(), profiles.clone());
    let mut seeded = vec![false; devices];
    let mut load = Load {
        seeds: Vec::new(),
        timed: Vec::with_capacity(timed),
        background: Vec::with_capacity(background),
        payload_bytes_mean: 0.0,
        scored_share: 0.0,
    };
    let mut until = start;
    let mut idle = 0;
    while load.timed.len() < timed || load.background.len() < background {
        until += STEP_MS;
        let events = fleet.advance(Timestamp(until - 1));
        if events.is_empty() {
            idle += 1;
            if idle > 1000 {
                bail!("the simulated fleet stopped sending messages");
            }
        } else {
            idle = 0;
        }
        for event in events {
            let simulators::SimEvent::Message(m) = event else {
                continue;
            };
            let device = index.get(&m.device_id).copied().unwrap_or(0);
            let in_seed_window = m.ts.millis() < start + SEED_WINDOW_MS;
            if in_seed_window && seeded[device as usize] {
                continue;
            }
            let topic = m.topic();
            let payload = m.payload_bytes();
            let message = domain::decode(&topic, &payload, profiles).ok();
            let scored = message
                .as_ref()
                .is_some_and(|msg| !mirror.observe(msg).is_empty());
            let out = Out {
                device,
                ts: m.ts.millis(),
                seq: m.seq(),
                telemetry: matches!(message, Some(Message::Telemetry(_))),
                scored,
                publish: Publish::new(topic, QoS::AtLeastOnce, payload),
            };
            if in_seed_window {
                seeded[device as usize] = true;
                load.seeds.push(out);
            } else if load.timed.len() < timed {
                load.timed.push(out);
            } else if load.background.len() < background {
                load.background.push(out);
            }
        }
    }
    let n = load.timed.len().max(1) as f64;
    load.payload_bytes_mean = load
        .timed
        .iter()
        .map(|o| o.publish.payload.len() as f64)
        .sum::<f64>()
        / n;
    load.scored_share = load.timed.iter().filter(|o| o.scored).count() as f64 / n;
    Ok(load)
}

/// A device whose next message opens a ticket.
struct TicketSample {
    device_id: DeviceId,
    /// Everything it sent before (published and scored before the sample is taken).
    prefix: Vec<Publish>,
    /// The message that completes a flag (persistence and hold time included).
    tip: Publish,
}

/// Simulates a fleet whose components fail often (12 times a year, always with a
/// precursor) and replays it through a mirror scorer with the pipeline's model files,
/// device by device, up to the first message that flags a component. Ids get a `tk-`
/// prefix so they never meet the load's devices.
fn find_ticket_samples(
    want: usize,
    profiles: &ProfileSet,
    registry: &models::ModelRegistry,
) -> anyhow::Result<Vec<TicketSample>> {
    if want == 0 {
        return Ok(Vec::new());
    }
    let config = simulators::FleetConfig {
        devices: (want * 3).max(50),
        seed: 4242,
        start: simulators::FleetConfig::DEFAULT_START,
        failure_rate_per_year: 12.0,
        sudden_failure_share: 0.0,
        refrigerator_interval_s: 3600,
        ..simulators::FleetConfig::default()
    };
    let start = config.start.millis();
    let mut fleet = simulators::Fleet::new(config, profiles)?;
    let mut mirror = models::Scorer::new(registry.clone(), profiles.clone());
    let mut pending: HashMap<DeviceId, Vec<Publish>> = HashMap::new();
    let mut done: HashSet<DeviceId> = HashSet::new();
    let mut samples = Vec::new();
    let mut until = start;
    'outer: while until < start + 120 * Timestamp::DAY_MS {
        until += 6 * STEP_MS;
        for event in fleet.advance(Timestamp(until - 1)) {
            let simulators::SimEvent::Message(m) = event else {
                continue;
            };
            if done.contains(&m.device_id) {
                continue;
            }
            let id = DeviceId::parse(&format!("tk-{}", m.device_id))?;
            let topic = m.kind.topic(&id);
            let payload = m.payload_bytes();
            // A message the pipeline would dead-letter does not reach its scorer.
            let Ok(message) = domain::decode(&topic, &payload, profiles) else {
                continue;
            };
            // A raised critical fault opens a reactive ticket at once, and a later flag
            // of that component would update it instead of opening one: such a device
            // would not measure the model's ticket latency, so it is not a sample.
            if let domain::Message::Fault(f) = &message {
                let critical = profiles
                    .get(&f.device_type)
                    .and_then(|p| p.fault(&f.code))
                    .is_some_and(|def| def.severity == domain::Severity::Critical);
                if critical && f.state == domain::FaultState::Raised {
                    pending.remove(&m.device_id);
                    done.insert(m.device_id.clone());
                    continue;
                }
            }
            let flagged = mirror.observe(&message).iter().any(|p| p.flagged);
            let publish = Publish::new(topic, QoS::AtLeastOnce, payload);
            if flagged {
                let prefix = pending.remove(&m.device_id).unwrap_or_default();
                done.insert(m.device_id.clone());
                samples.push(TicketSample {
                    device_id: id,
                    prefix,
                    tip: publish,
                });
                if samples.len() >= want {
                    break 'outer;
                }
            } else {
                pending
                    .entry(m.device_id.clone())
                    .or_default()
                    .push(publish);
            }
        }
    }
    if samples.len() < want {
        eprintln!(
            "  only {} of {want} devices opened a ticket within 120 simulated days",
            samples.len()
        );
    }
    Ok(samples)
}

// ---------------------------------------------------------------------------------
// MQTT

struct Target {
    host: String,
    port: u16,
    /// TLS for an `mqtts://` broker.
    tls: Option<rumqttc::TlsConfiguration>,
    connections: usize,
}

fn options(target: &Target, client_id: String) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, target.host.clone(), target.port);
    o.set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_inflight(INFLIGHT)
        .set_request_channel_capacity(REQUEST_CAPACITY)
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true);
    if let Some(tls) = &target.tls {
        o.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
    }
    o
}

/// Polls until the broker's CONNACK, or fails.
async fn connected(eventloop: &mut EventLoop) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
                return Ok::<_, anyhow::Error>(());
            }
        }
    })
    .await
    .context("connecting to the broker timed out")?
}

/// Publisher connections, each with its own event-loop task counting PUBACKs.
struct Pool {
    clients: Vec<AsyncClient>,
    acked: Arc<AtomicU64>,
    stop: CancellationToken,
    drivers: Vec<JoinHandle<()>>,
}

impl Pool {
    async fn connect(target: &Target, name: &str, connections: usize) -> anyhow::Result<Pool> {
        let acked = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let mut clients = Vec::new();
        let mut drivers = Vec::new();
        for k in 0..connections.max(1) {
            let id = format!("fixahead-bench-{name}-{}-{k}", std::process::id());
            let (client, mut eventloop) = AsyncClient::new(options(target, id), REQUEST_CAPACITY);
            connected(&mut eventloop).await?;
            let (acked, stop) = (acked.clone(), stop.clone());
            drivers.push(tokio::spawn(async move {
                loop {
                    let event = tokio::select! {
                        () = stop.cancelled() => break,
                        e = eventloop.poll() => e,
                    };
                    match event {
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "Publisher connection failed; reconnecting");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }));
            clients.push(client);
        }
        Ok(Pool {
            clients,
            acked,
            stop,
            drivers,
        })
    }

    fn client(&self, device: u32) -> &AsyncClient {
        &self.clients[device as usize % self.clients.len()]
    }

    /// Publishes every message, a device always on the same connection, all
    /// connections at once; returns when all are handed to the clients. With a gate,
    /// publishing waits while the gate's limit of messages ahead of the pipeline is
    /// reached.
    async fn publish_all(
        &self,
        messages: &Arc<Vec<Out>>,
        gate: Option<&Gate>,
    ) -> anyhow::Result<()> {
        let n = self.clients.len();
        let tasks: Vec<JoinHandle<anyhow::Result<()>>> = (0..n)
            .map(|k| {
                let client = self.clients[k].clone();
                let messages = messages.clone();
                let gate = gate.cloned();
                tokio::spawn(async move {
                    for m in messages.iter().filter(|m| m.device as usize % n == k) {
                        if let Some(g) = &gate {
                            g.wait().await;
                        }
                        publish(&client, &m.publish).await?;
                    }
                    Ok(())
                })
            })
            .collect();
        for t in tasks {
            t.await??;
        }
        Ok(())
    }

    /// Waits until the broker acknowledged `count` publishes.
    async fn drain(&self, count: u64) -> anyhow::Result<()> {
        let mut last = (0, Instant::now());
        loop {
            let acked = self.acked.load(Ordering::Relaxed);
            if acked >= count {
                return Ok(());
            }
            if acked > last.0 {
                last = (acked, Instant::now());
            } else if last.1.elapsed() > STALL {
                bail!("the broker acknowledged only {acked} of {count} publishes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn close(self) {
        for c in &self.clients {
            let _ = c.try_disconnect();
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while self.drivers.iter().any(|d| !d.is_finished()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        self.stop.cancel();
        for d in self.drivers {
            let _ = d.await;
        }
    }
}

/// Holds publishing to at most `max_ahead` messages the pipeline has not yet
/// acknowledged (`--max-ahead`), from its `acked` counter polled over HTTP.
#[derive(Clone)]
struct Gate {
    max_ahead: u64,
    /// Published through the gate, plus the pipeline's acknowledged count at the start.
    published: Arc<AtomicU64>,
    /// The pipeline's acknowledged count, refreshed every 2 ms.
    acked: Arc<AtomicU64>,
}

impl Gate {
    /// Starts polling the pipeline's counters; stops with `stop`.
    async fn start(
        http: SocketAddr,
        max_ahead: u64,
        stop: CancellationToken,
    ) -> anyhow::Result<Gate> {
        let acked = counters(http).await?.acked;
        let gate = Gate {
            max_ahead,
            published: Arc::new(AtomicU64::new(acked)),
            acked: Arc::new(AtomicU64::new(acked)),
        };
        let counter = gate.acked.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(2)) => {}
                }
                if let Ok(c) = counters(http).await {
                    counter.store(c.acked, Ordering::Relaxed);
                }
            }
        });
        Ok(gate)
    }

    /// Waits for room for one more message, and takes it.
    async fn wait(&self) {
        loop {
            let published = self.published.load(Ordering::Relaxed);
            if published < self.acked.load(Ordering::Relaxed) + self.max_ahead
                && self
                    .published
                    .compare_exchange(
                        published,
                        published + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn publish(client: &AsyncClient, p: &Publish) -> anyhow::Result<()> {
    client
        .publish_bytes(p.topic.clone(), QoS::AtLeastOnce, false, p.payload.clone())
        .await
        .context("publishing")
}

struct RawResult {
    received: u64,
    seconds: f64,
    publish_seconds: f64,
    msgs_per_s: f64,
}

/// A subscriber that only counts (QoS 1, acknowledging each message as rumqttc does by
/// default), fed by the publisher: from the first publish to the last message received.
async fn raw_relay(target: &Target, messages: &[Out]) -> anyhow::Result<RawResult> {
    let id = format!("fixahead-bench-raw-{}", std::process::id());
    let (sub, mut eventloop) = AsyncClient::new(options(target, id), REQUEST_CAPACITY);
    connected(&mut eventloop).await?;
    sub.subscribe(
        format!("{}+/+", domain::wire::TOPIC_PREFIX),
        QoS::AtLeastOnce,
    )
    .await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await? {
                return Ok::<_, anyhow::Error>(());
            }
        }
    })
    .await
    .context("subscribing timed out")??;

    let total = messages.len() as u64;
    let received = Arc::new(AtomicU64::new(0));
    let last_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let stop = CancellationToken::new();
    let counter = {
        let (received, last_at, stop) = (received.clone(), last_at.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => break,
                    e = eventloop.poll() => e,
                };
                match event {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(Event::Incoming(Packet::Publish(_))) => {
                        let n = received.fetch_add(1, Ordering::Relaxed) + 1;
                        if n == total {
                            if let Ok(mut t) = last_at.lock() {
                                *t = Some(Instant::now());
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "Subscriber connection failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };

    let pool = Pool::connect(target, "raw", target.connections).await?;
    let messages = Arc::new(messages.to_vec());
    let t0 = Instant::now();
    pool.publish_all(&messages, None).await?;
    let publish_seconds = t0.elapsed().as_secs_f64();
    let mut last = (0, Instant::now());
    loop {
        let n = received.load(Ordering::Relaxed);
        if n >= total {
            break;
        }
        if n > last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            eprintln!("  the subscriber stopped at {n} of {total} messages");
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let n = received.load(Ordering::Relaxed);
    let end = last_at
        .lock()
        .ok()
        .and_then(|t| *t)
        .unwrap_or(last.1)
        .max(t0);
    let seconds = (end - t0).as_secs_f64();
    pool.drain(total).await?;
    pool.close().await;
    let _ = sub.try_disconnect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel();
    let _ = counter.await;
    Ok(RawResult {
        received: n,
        seconds,
        publish_seconds,
        msgs_per_s: n as f64 / seconds.max(1e-9),
    })
}

// ---------------------------------------------------------------------------------
// HTTP

/// The API key [`http_get`] sends: created when the bench starts the pipeline.
static API_KEY: std::sync::RwLock<String> = std::sync::RwLock::new(String::new());

/// GET `path` with [`API_KEY`]; status and body.
async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let key = API_KEY
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    http_get_with_key(addr, path, &key).await
}

/// GET `path` with `key` on a new connection; status and body.
pub(crate) async fn http_get_with_key(
    addr: SocketAddr,
    path: &str,
    key: &str,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .context("HTTP request timed out")??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    Ok((status, body.to_owned()))
}

async fn get_json(addr: SocketAddr, path: &str) -> anyhow::Result<Value> {
    let (status, body) = http_get(addr, path).await?;
    if status != 200 {
        bail!("GET {path}: {status} {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// The pipeline's ingest counters, from `/health`.
struct Counters {
    /// Messages received from the broker.
    received: u64,
    /// Messages committed and acknowledged (stored, duplicates and dead letters).
    acked: u64,
    /// Hot-store transactions committed.
    batches: u64,
    dead_letters: u64,
}

async fn counters(http: SocketAddr) -> anyhow::Result<Counters> {
    let health = get_json(http, "/health").await?;
    let ingest = &health["ingest"];
    let n = |k: &str| ingest[k].as_u64().unwrap_or(0);
    Ok(Counters {
        received: n("received"),
        acked: n("acked"),
        batches: n("batches"),
        dead_letters: ingest["dead_letters"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum()),
    })
}

/// The pipeline stopped making progress.
#[derive(Debug, serde::Serialize)]
struct Stall {
    /// What was being published: `seeds`, `timed` or `ticket history`.
    phase: &'static str,
    /// Messages it should have acknowledged in all.
    expected: u64,
    /// Messages it received from the broker.
    received: u64,
    /// Messages it committed and acknowledged.
    acked: u64,
    /// Seconds without progress before giving up.
    stalled_for_s: u64,
}

/// Waits until the pipeline acknowledged `count` messages in all; returns when, or the
/// counters after [`STALL`] without progress.
async fn until_acked(http: SocketAddr, count: u64) -> anyhow::Result<Result<Instant, Stall>> {
    let mut last = (0, Instant::now());
    loop {
        let c = counters(http).await?;
        if c.acked >= count {
            return Ok(Ok(Instant::now()));
        }
        if c.acked > last.0 {
            last = (c.acked, Instant::now());
        } else if last.1.elapsed() > STALL {
            let stall = Stall {
                phase: "",
                expected: count,
                received: c.received,
                acked: c.acked,
                stalled_for_s: STALL.as_secs(),
            };
            eprintln!("  the pipeline stopped making progress: {stall:?}");
            return Ok(Err(stall));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A counter from `/metrics`.
async fn metric(http: SocketAddr, name: &str) -> anyhow::Result<u64> {
    let (_, text) = http_get(http, "/metrics").await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}

/// Predictions the ticket service recorded.
async fn predictions_recorded(http: SocketAddr) -> anyhow::Result<u64> {
    metric(http, "fixahead_ticket_predictions_total").await
}

/// Predictions recorded, tickets opened and tickets updated by a later flag.
async fn ticket_counters(http: SocketAddr) -> anyhow::Result<[u64; 3]> {
    Ok([
        predictions_recorded(http).await?,
        metric(http, "fixahead_tickets_opened_total").await?,
        metric(http, "fixahead_tickets_updated_total").await?,
    ])
}

/// Waits until the scoring stage is idle: the recorded predictions unchanged for 1 s.
async fn scoring_idle(http: SocketAddr) -> anyhow::Result<()> {
    let mut last = (predictions_recorded(http).await?, Instant::now());
    while last.1.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = predictions_recorded(http).await?;
        if n != last.0 {
            last = (n, Instant::now());
        }
    }
    Ok(())
}

/// Whether the device's current risk includes a score at event time `ts`.
async fn risk_at(http: SocketAddr, device_id: &str, ts: i64) -> anyhow::Result<bool> {
    let device = get_json(http, &format!("/api/v1/devices/{device_id}")).await?;
    Ok(device["risk"].as_array().is_some_and(|risks| {
        risks.iter().any(|r| {
            r["ts"]
                .as_str()
                .and_then(|s| Timestamp::parse(s).ok())
                .is_some_and(|t| t.millis() == ts)
        })
    }))
}

/// The device's proactive (model-flag) tickets: the ticket latency is about the model.
/// A critical fault code in a sample's history opens a reactive ticket at once, which
/// is not what the sample waits for.
async fn tickets_of(http: SocketAddr, device_id: &str) -> anyhow::Result<usize> {
    let body = get_json(
        http,
        &format!("/api/v1/tickets?device_id={device_id}&source=proactive&limit=10"),
    )
    .await?;
    Ok(body["tickets"].as_array().map_or(0, Vec::len))
}

// ---------------------------------------------------------------------------------
// The pipeline phases

struct PipelineResult {
    seconds: f64,
    publish_seconds: f64,
    scored_seconds: Option<f64>,
    msgs_per_s: f64,
    dead_letters: u64,
    /// Hot-store transactions the timed messages took.
    commits: u64,
    /// During the timed messages: predictions recorded by the ticket service (the
    /// latest per component and scoring batch, and every flagged one), tickets opened,
    /// and open tickets updated by a later flag.
    predictions_recorded: u64,
    tickets_opened: u64,
    tickets_updated: u64,
    /// Set when the pipeline stopped making progress (then the rest is not measured).
    stalled: Option<Stall>,
}

struct LatencyResult {
    store_ms: Vec<f64>,
    store_lost: usize,
    ticket_ms: Vec<f64>,
    ticket_timeouts: usize,
    ticket_skipped: usize,
    ticket_not_taken: usize,
    background_msgs_per_s: f64,
    backlog_at_end: u64,
}

impl PipelineResult {
    /// Nothing measured but how far it got.
    fn stalled(stall: Stall, publish_seconds: f64) -> PipelineResult {
        PipelineResult {
            seconds: f64::NAN,
            publish_seconds,
            scored_seconds: None,
            msgs_per_s: f64::NAN,
            dead_letters: 0,
            commits: 0,
            predictions_recorded: 0,
            tickets_opened: 0,
            tickets_updated: 0,
            stalled: Some(stall),
        }
    }
}

impl LatencyResult {
    /// Nothing measured (the pipeline stalled before the latency phase).
    fn not_measured() -> LatencyResult {
        LatencyResult {
            store_ms: Vec::new(),
            store_lost: 0,
            ticket_ms: Vec::new(),
            ticket_timeouts: 0,
            ticket_skipped: 0,
            ticket_not_taken: 0,
            background_msgs_per_s: f64::NAN,
            backlog_at_end: 0,
        }
    }
}

fn share(messages: &[Out]) -> Arc<Vec<Out>> {
    Arc::new(messages.to_vec())
}

async fn pipeline_phases(
    args: &IngestBenchArgs,
    target: &Target,
    http: SocketAddr,
    data_dir: &Path,
    load: &Load,
    samples: &[TicketSample],
) -> anyhow::Result<(PipelineResult, Option<LatencyResult>)> {
    let pool = Pool::connect(target, "pipeline", target.connections).await?;
    let base = counters(http).await?.acked;

    // Seeds first, untimed: every device then has a message a week before its timed ones.
    eprintln!("pipeline: {} seed messages (not timed)", load.seeds.len());
    let gate_stop = CancellationToken::new();
    let _stop_gate = gate_stop.clone().drop_guard();
    let gate = match args.max_ahead {
        0 => None,
        n => Some(Gate::start(http, n, gate_stop.clone()).await?),
    };
    pool.publish_all(&share(&load.seeds), gate.as_ref()).await?;
    let mut expected = base + load.seeds.len() as u64;
    if let Err(stall) = until_acked(http, expected).await? {
        eprintln!("  nothing timed: the pipeline stalled on the seed messages");
        pool.close().await;
        let stall = Stall {
            phase: "seeds",
            ..stall
        };
        return Ok((PipelineResult::stalled(stall, f64::NAN), None));
    }
    scoring_idle(http).await?;

    eprintln!("pipeline: {} timed messages", load.timed.len());
    let tickets_before = ticket_counters(http).await?;
    let batches_before = counters(http).await?.batches;
    let timed = share(&load.timed);
    let t0 = Instant::now();
    pool.publish_all(&timed, gate.as_ref()).await?;
    let publish_seconds = t0.elapsed().as_secs_f64();
    expected += load.timed.len() as u64;
    let stored_at = match until_acked(http, expected).await? {
        Ok(at) => at,
        Err(stall) => {
            // Nothing after this would measure anything but the stall.
            pool.close().await;
            let stall = Stall {
                phase: "timed",
                ..stall
            };
            return Ok((PipelineResult::stalled(stall, publish_seconds), None));
        }
    };
    let seconds = (stored_at - t0).as_secs_f64();
    // Scoring follows storing through a bounded channel; the last scored message's
    // risk showing in the API marks the end of scoring (up to one scoring batch).
    let scored_seconds = match load.timed.iter().rev().find(|m| m.scored) {
        Some(last) => {
            let device_id = device_of(&last.publish.topic);
            let deadline = Instant::now() + STALL;
            loop {
                if risk_at(http, device_id, last.ts).await? {
                    break Some(t0.elapsed().as_secs_f64());
                }
                if Instant::now() > deadline {
                    eprintln!("  the last scored message's risk never showed");
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        None => None,
    };
    let c = counters(http).await?;
    let tickets_after = ticket_counters(http).await?;
    let [predictions, opened, updated] =
        std::array::from_fn(|i| tickets_after[i].saturating_sub(tickets_before[i]));
    let pipeline = PipelineResult {
        commits: c.batches.saturating_sub(batches_before),
        predictions_recorded: predictions,
        tickets_opened: opened,
        tickets_updated: updated,
        seconds,
        publish_seconds,
        scored_seconds,
        msgs_per_s: load.timed.len() as f64 / seconds.max(1e-9),
        dead_letters: c.dead_letters,
        stalled: None,
    };
    eprintln!(
        "  {:.0} msg/s stored ({:.2} s; publishing took {:.2} s; scored after {})",
        pipeline.msgs_per_s,
        seconds,
        publish_seconds,
        scored_seconds.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.2} s"))
    );
    pool.drain(load.seeds.len() as u64 + load.timed.len() as u64)
        .await?;

    // The ticket samples' history, untimed.
    let prefixes: Vec<Out> = samples
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.prefix.iter().map(move |p| Out {
                device: i as u32,
                publish: p.clone(),
                ts: 0,
                seq: 0,
                telemetry: false,
                scored: false,
            })
        })
        .collect();
    eprintln!(
        "latency: {} messages of the ticket samples' history (not timed)",
        prefixes.len()
    );
    expected += prefixes.len() as u64;
    pool.publish_all(&Arc::new(prefixes), gate.as_ref()).await?;
    if let Err(stall) = until_acked(http, expected).await? {
        pool.close().await;
        eprintln!("  no latency phase: the pipeline stalled on the ticket samples' history");
        let pipeline = PipelineResult {
            stalled: Some(Stall {
                phase: "ticket history",
                ..stall
            }),
            ..pipeline
        };
        return Ok((pipeline, None));
    }
    scoring_idle(http).await?;

    let latency = latency_phase(args, target, http, data_dir, &pool, load, samples, expected).await;
    pool.close().await;
    Ok((pipeline, Some(latency?)))
}

/// The device id of a `fixahead/v1/{device_id}/{kind}` topic.
fn device_of(topic: &str) -> &str {
    topic
        .strip_prefix(domain::wire::TOPIC_PREFIX)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
}

/// A message whose arrival in the store is timed.
struct Probe {
    device_id: String,
    ts: i64,
    seq: u64,
    published: Instant,
}

/// Polls the hot store (a read connection of its own, as the API has) every
/// [`PROBE_POLL`] until each probe's row is readable; returns the latencies in ms and
/// how many never showed within [`STALL`].
fn probe_store(
    reader: StoreReader,
    rx: std::sync::mpsc::Receiver<Probe>,
    done: Arc<AtomicBool>,
) -> (Vec<f64>, usize) {
    let mut pending: Vec<Probe> = Vec::new();
    let mut latencies = Vec::new();
    let mut lost = 0;
    loop {
        while let Ok(p) = rx.try_recv() {
            pending.push(p);
        }
        let now = Instant::now();
        // Rows arrive about in publish order: look at the oldest few only, so a backlog
        // of pending probes does not turn this thread into a load of its own.
        let mut looked = 0;
        pending.retain(|p| {
            if looked >= PROBES_PER_POLL {
                return true;
            }
            looked += 1;
            let found = reader
                .telemetry(
                    &p.device_id,
                    Some(Timestamp(p.ts)),
                    Some(Timestamp(p.ts + 1)),
                    8,
                )
                .map(|rows| rows.iter().any(|r| r.seq == p.seq))
                .unwrap_or(false);
            if found {
                latencies.push((now - p.published).as_secs_f64() * 1e3);
                return false;
            }
            if now - p.published > STALL {
                lost += 1;
                return false;
            }
            true
        });
        if done.load(Ordering::Relaxed) && pending.is_empty() {
            break;
        }
        std::thread::sleep(PROBE_POLL);
    }
    (latencies, lost)
}

#[allow(clippy::too_many_arguments)]
async fn latency_phase(
    args: &IngestBenchArgs,
    target: &Target,
    http: SocketAddr,
    data_dir: &Path,
    pool: &Pool,
    load: &Load,
    samples: &[TicketSample],
    acked_before: u64,
) -> anyhow::Result<LatencyResult> {
    let rate = args.background_rate as f64;
    eprintln!(
        "latency: {} s at {rate:.0} msg/s background load, {} ticket samples",
        args.seconds,
        samples.len()
    );
    let reader = StoreReader::open(&data_dir.join("hot.db"))?;
    let (probe_tx, probe_rx) = std::sync::mpsc::channel();
    let probes_done = Arc::new(AtomicBool::new(false));
    let prober = {
        let done = probes_done.clone();
        std::thread::spawn(move || probe_store(reader, probe_rx, done))
    };

    // Background: paced, every 2 ms what is due; every (rate / PROBES_PER_S)-th
    // message, if telemetry, is a store probe.
    let stop = CancellationToken::new();
    let background = share(&load.background);
    let clients: Vec<AsyncClient> = pool.clients.clone();
    let bg = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let probe_every = (rate as u64 / PROBES_PER_S).max(1) as usize;
            let t0 = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut i = 0;
            'run: loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let due = ((t0.elapsed().as_secs_f64() * rate) as usize).min(background.len());
                while i < due {
                    let m = &background[i];
                    let client = &clients[m.device as usize % clients.len()];
                    let probe = (i % probe_every == 0 && m.telemetry).then(|| Probe {
                        device_id: device_of(&m.publish.topic).to_owned(),
                        ts: m.ts,
                        seq: m.seq,
                        published: Instant::now(),
                    });
                    if publish(client, &m.publish).await.is_err() {
                        break 'run;
                    }
                    if let Some(p) = probe {
                        let _ = probe_tx.send(p);
                    }
                    i += 1;
                }
                if i >= background.len() {
                    tracing::warn!("The background load ran out of messages");
                    break;
                }
            }
            (i as u64, t0.elapsed().as_secs_f64())
        })
    };

    // Tickets: each sample's tipping message on a connection of its own (the device's),
    // then the API polled until the ticket is readable.
    let tips = Pool::connect(target, "tips", 1).await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let slot = Duration::from_secs_f64(
        (args.seconds.saturating_sub(1) as f64 / samples.len().max(1) as f64).max(0.05),
    );
    let mut ticket_ms = Vec::new();
    let (mut timeouts, mut skipped, mut not_taken) = (0, 0, 0);
    for (i, s) in samples.iter().enumerate() {
        if timeouts >= MAX_TICKET_TIMEOUTS {
            // The pipeline is not keeping up with the background load: further samples
            // would only measure its backlog.
            not_taken = samples.len() - i;
            break;
        }
        let next = Instant::now() + slot;
        let id = s.device_id.as_str();
        if tickets_of(http, id).await? > 0 {
            // The prefix already flagged: the mirror and the pipeline disagree.
            skipped += 1;
            continue;
        }
        let published = Instant::now();
        publish(tips.client(0), &s.tip).await?;
        loop {
            if tickets_of(http, id).await? > 0 {
                ticket_ms.push(published.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if published.elapsed() > TICKET_TIMEOUT {
                timeouts += 1;
                break;
            }
            tokio::time::sleep(TICKET_POLL).await;
        }
        if i % 10 == 9 {
            eprintln!("  {} ticket samples", i + 1);
        }
        tokio::time::sleep_until(next.into()).await;
    }
    let remaining = Duration::from_secs(args.seconds).saturating_sub(started.elapsed());
    tokio::time::sleep(remaining).await;
    stop.cancel();
    let (published, secs) = bg.await?;
    tips.close().await;
    let tipped = (samples.len() - skipped - not_taken) as u64;
    let backlog = (acked_before + published + tipped).saturating_sub(counters(http).await?.acked);
    probes_done.store(true, Ordering::Relaxed);
    let (store_ms, store_lost) = tokio::task::spawn_blocking(move || prober.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the store probe thread panicked"))?;
    Ok(LatencyResult {
        store_ms,
        store_lost,
        ticket_ms,
        ticket_timeouts: timeouts,
        ticket_skipped: skipped,
        ticket_not_taken: not_taken,
        background_msgs_per_s: published as f64 / secs.max(1e-9),
        backlog_at_end: backlog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn device_ids_come_from_the_topic() {
        assert_eq!(device_of("fixahead/v1/wm-0001/telemetry"), "wm-0001");
        assert_eq!(device_of("other/wm-0001/telemetry"), "");
    }
}
