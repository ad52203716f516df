//! The latency phase of `bench ingest`, with the pipeline still running: a background
//! load at `--background-rate`, store probes (publish to readable in the hot store),
//! and one ticket sample at a time (publish to a ticket readable through the API).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::Timestamp;
use rumqttc::AsyncClient;
use store::hot::StoreReader;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::load::{device_of, Load, TicketSample};
use super::mqtt::{publish, Pool, Target};
use super::pipeline_api::PipelineApi;
use super::IngestArgs;
use super::STALL;
use crate::Result;
use server::Context as _;

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

pub(super) struct LatencyResult {
    pub(super) store_ms: Vec<f64>,
    pub(super) store_lost: usize,
    pub(super) ticket_ms: Vec<f64>,
    pub(super) ticket_timeouts: usize,
    pub(super) ticket_skipped: usize,
    pub(super) ticket_not_taken: usize,
    pub(super) background_msgs_per_s: f64,
    pub(super) backlog_at_end: u64,
}

impl LatencyResult {
    /// Nothing measured (the pipeline stalled before the latency phase).
    pub(super) fn not_measured() -> LatencyResult {
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

/// The background load: paced, every 2 ms what is due at `rate`; every (rate /
/// [`PROBES_PER_S`])-th message, if telemetry, is a store probe sent to `probes`.
/// Returns the messages published and the seconds it ran, when `stop`ped.
fn background_load(
    load: &Load,
    rate: f64,
    clients: Vec<AsyncClient>,
    probes: std::sync::mpsc::Sender<Probe>,
    stop: CancellationToken,
) -> JoinHandle<(u64, f64)> {
    let background = Arc::new(load.background.clone());
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
                    let _ = probes.send(p);
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
}

/// What the ticket samples gave.
struct TicketSamples {
    ms: Vec<f64>,
    timeouts: usize,
    skipped: usize,
    not_taken: usize,
}

/// Each sample's tipping message on a connection of its own (the device's), then the
/// API polled until the ticket is readable; one sample per slot of the phase.
async fn sample_tickets(
    api: &PipelineApi,
    tips: &Pool,
    samples: &[TicketSample],
    seconds: u64,
) -> Result<TicketSamples> {
    let slot = Duration::from_secs_f64(
        (seconds.saturating_sub(1) as f64 / samples.len().max(1) as f64).max(0.05),
    );
    let mut t = TicketSamples {
        ms: Vec::new(),
        timeouts: 0,
        skipped: 0,
        not_taken: 0,
    };
    for (i, s) in samples.iter().enumerate() {
        if t.timeouts >= MAX_TICKET_TIMEOUTS {
            // The pipeline is not keeping up with the background load: further samples
            // would only measure its backlog.
            t.not_taken = samples.len() - i;
            break;
        }
        let next = Instant::now() + slot;
        let id = s.device_id.as_str();
        if api.tickets_of(id).await? > 0 {
            // The prefix already flagged: the mirror and the pipeline disagree.
            t.skipped += 1;
            continue;
        }
        let published = Instant::now();
        publish(tips.client(0), &s.tip).await?;
        loop {
            if api.tickets_of(id).await? > 0 {
                t.ms.push(published.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if published.elapsed() > TICKET_TIMEOUT {
                t.timeouts += 1;
                break;
            }
            tokio::time::sleep(TICKET_POLL).await;
        }
        if i % 10 == 9 {
            eprintln!("  {} ticket samples", i + 1);
        }
        tokio::time::sleep_until(next.into()).await;
    }
    Ok(t)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn latency_phase(
    args: &IngestArgs,
    target: &Target,
    api: &PipelineApi,
    data_dir: &Path,
    pool: &Pool,
    load: &Load,
    samples: &[TicketSample],
    acked_before: u64,
) -> Result<LatencyResult> {
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
    let stop = CancellationToken::new();
    let bg = background_load(load, rate, pool.clients.clone(), probe_tx, stop.clone());

    let tips = Pool::connect(target, "tips", 1).await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tickets = sample_tickets(api, &tips, samples, args.seconds).await?;
    let remaining = Duration::from_secs(args.seconds).saturating_sub(started.elapsed());
    tokio::time::sleep(remaining).await;
    stop.cancel();
    let (published, secs) = bg.await?;
    tips.close().await;
    let tipped = (samples.len() - tickets.skipped - tickets.not_taken) as u64;
    let backlog = (acked_before + published + tipped).saturating_sub(api.counters().await?.acked);
    probes_done.store(true, Ordering::Relaxed);
    let (store_ms, store_lost) = tokio::task::spawn_blocking(move || prober.join())
        .await?
        .ok()
        .context("the store probe thread panicked")?;
    Ok(LatencyResult {
        store_ms,
        store_lost,
        ticket_ms: tickets.ms,
        ticket_timeouts: tickets.timeouts,
        ticket_skipped: tickets.skipped,
        ticket_not_taken: tickets.not_taken,
        background_msgs_per_s: published as f64 / secs.max(1e-9),
        backlog_at_end: backlog,
    })
}
