//! The pipeline phase of `bench ingest`: the pipeline `fixahead run` starts, on a
//! temporary data directory, fed the seeds (untimed), the timed messages (the rate
//! compared with the raw relay's) and the ticket samples' history (untimed), by the
//! same publisher as the raw relay.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::ProfileSet;
use server::settings::{ConfigFile, Overrides, Settings};
use tokio_util::sync::CancellationToken;

use super::gate::Gate;
use super::latency::{latency_phase, LatencyResult};
use super::load::{device_of, Load, Out, TicketSample};
use super::mqtt::{Pool, Target};
use super::pipeline_api::{PipelineApi, Stall};
use super::IngestArgs;
use super::STALL;
use crate::http::ApiClient;
use crate::Result;

pub(super) struct PipelineResult {
    pub(super) seconds: f64,
    pub(super) publish_seconds: f64,
    pub(super) scored_seconds: Option<f64>,
    pub(super) msgs_per_s: f64,
    pub(super) dead_letters: u64,
    /// Hot-store transactions the timed messages took.
    pub(super) commits: u64,
    /// During the timed messages: predictions recorded by the ticket service (the
    /// latest per component and scoring batch, and every flagged one), tickets opened,
    /// and open tickets updated by a later flag.
    pub(super) predictions_recorded: u64,
    pub(super) tickets_opened: u64,
    pub(super) tickets_updated: u64,
    /// Set when the pipeline stopped making progress (then the rest is not measured).
    pub(super) stalled: Option<Stall>,
}

impl PipelineResult {
    /// Nothing measured but how far it got.
    fn stalled(phase: &'static str, stall: Stall, publish_seconds: f64) -> PipelineResult {
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
            stalled: Some(Stall { phase, ..stall }),
        }
    }
}

/// What the pipeline phase measured, and the fsync latency next to its stores before
/// and after.
pub(super) struct PipelineRun {
    pub(super) pipeline: PipelineResult,
    pub(super) latency: Option<LatencyResult>,
    pub(super) batch_interval_ms: u64,
    pub(super) fsync_before: (f64, f64),
    pub(super) fsync_after: (f64, f64),
}

/// The settings `fixahead run` would build for `data_dir`, the broker at `host:port`
/// (or --mqtt-url) and the model in `model_dir`; and their batch interval.
fn settings(
    args: &IngestArgs,
    host: &str,
    port: u16,
    data_dir: &Path,
    model_dir: &Path,
) -> Result<(Settings, u64)> {
    let mut config = ConfigFile {
        data_dir: data_dir.to_owned(),
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
    config.models.dir = Some(model_dir.to_owned());
    if let Some(ms) = args.batch_interval_ms {
        config.ingest.batch_interval_ms = ms;
    }
    let batch_interval_ms = config.ingest.batch_interval_ms;
    Ok((
        Settings::build(config, &Overrides::default())?,
        batch_interval_ms,
    ))
}

/// Starts the pipeline in `data_dir`, runs [`pipeline_phases`] against it and stops it.
pub(super) async fn run_pipeline(
    args: &IngestArgs,
    target: &Target,
    data_dir: &Path,
    model_dir: &Path,
    load: &Load,
    samples: &[TicketSample],
) -> Result<PipelineRun> {
    let (settings, batch_interval_ms) =
        settings(args, &target.host, target.port, data_dir, model_dir)?;
    // The stores commit with an fsync each (`synchronous = full`): the disk's fsync
    // latency, measured next to them before and after, is part of the context.
    std::fs::create_dir_all(data_dir)?;
    let fsync_before = tokio::task::block_in_place(|| crate::system::fsync_latency(data_dir))?;
    let running = server::app::start(&settings, ProfileSet::builtin()).await?;
    // The bench reads the pipeline's progress through the API, with its own admin key.
    let access = running.access.clone();
    let (key, _) = tokio::task::block_in_place(|| access.create(api::Role::Admin, "bench ingest"))?;
    let pipeline = PipelineApi {
        api: ApiClient::new(running.http_addr, key)?,
    };
    let result = pipeline_phases(args, target, &pipeline, data_dir, load, samples).await;
    eprintln!("stopping the pipeline");
    let stopped = running.shutdown().await;
    let (pipeline, latency) = result?;
    stopped?;
    let fsync_after = tokio::task::block_in_place(|| crate::system::fsync_latency(data_dir))?;
    Ok(PipelineRun {
        pipeline,
        latency,
        batch_interval_ms,
        fsync_before,
        fsync_after,
    })
}

fn share(messages: &[Out]) -> Arc<Vec<Out>> {
    Arc::new(messages.to_vec())
}

async fn pipeline_phases(
    args: &IngestArgs,
    target: &Target,
    api: &PipelineApi,
    data_dir: &Path,
    load: &Load,
    samples: &[TicketSample],
) -> Result<(PipelineResult, Option<LatencyResult>)> {
    let pool = Pool::connect(target, "pipeline", target.connections).await?;
    let base = api.counters().await?.acked;

    // Seeds first, untimed: every device then has a message a week before its timed ones.
    eprintln!("pipeline: {} seed messages (not timed)", load.seeds.len());
    let gate_stop = CancellationToken::new();
    let _stop_gate = gate_stop.clone().drop_guard();
    let gate = match args.max_ahead {
        0 => None,
        n => Some(Gate::start(api, n, gate_stop.clone()).await?),
    };
    pool.publish_all(&share(&load.seeds), gate.as_ref()).await?;
    let mut expected = base + load.seeds.len() as u64;
    if let Err(stall) = api.until_acked(expected).await? {
        eprintln!("  nothing timed: the pipeline stalled on the seed messages");
        pool.close().await;
        return Ok((PipelineResult::stalled("seeds", stall, f64::NAN), None));
    }
    api.scoring_idle().await?;

    expected += load.timed.len() as u64;
    let pipeline = match timed_phase(api, &pool, gate.as_ref(), load, expected).await? {
        Ok(pipeline) => pipeline,
        Err(stalled) => {
            // Nothing after this would measure anything but the stall.
            pool.close().await;
            return Ok((stalled, None));
        }
    };
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
    if let Err(stall) = api.until_acked(expected).await? {
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
    api.scoring_idle().await?;

    let latency = latency_phase(args, target, api, data_dir, &pool, load, samples, expected).await;
    pool.close().await;
    Ok((pipeline, Some(latency?)))
}

/// The timed messages, from the first publish until the pipeline acknowledged
/// `expected` messages in all (stored), and until the last scored one's risk shows.
/// `Err` with what was measured when the pipeline stalled.
async fn timed_phase(
    api: &PipelineApi,
    pool: &Pool,
    gate: Option<&Gate>,
    load: &Load,
    expected: u64,
) -> Result<std::result::Result<PipelineResult, PipelineResult>> {
    eprintln!("pipeline: {} timed messages", load.timed.len());
    let tickets_before = api.ticket_counters().await?;
    let batches_before = api.counters().await?.batches;
    let timed = share(&load.timed);
    let t0 = Instant::now();
    pool.publish_all(&timed, gate).await?;
    let publish_seconds = t0.elapsed().as_secs_f64();
    let stored_at = match api.until_acked(expected).await? {
        Ok(at) => at,
        Err(stall) => {
            return Ok(Err(PipelineResult::stalled(
                "timed",
                stall,
                publish_seconds,
            )))
        }
    };
    let seconds = (stored_at - t0).as_secs_f64();
    let scored_seconds = scored_seconds(api, load, t0).await?;
    let c = api.counters().await?;
    let tickets_after = api.ticket_counters().await?;
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
    Ok(Ok(pipeline))
}

/// Scoring follows storing through a bounded channel; the last scored message's risk
/// showing in the API marks the end of scoring (up to one scoring batch). Seconds
/// since `t0`, or `None` when no timed message is scored or its risk never showed.
async fn scored_seconds(api: &PipelineApi, load: &Load, t0: Instant) -> Result<Option<f64>> {
    let Some(last) = load.timed.iter().rev().find(|m| m.scored) else {
        return Ok(None);
    };
    let device_id = device_of(&last.publish.topic);
    let deadline = Instant::now() + STALL;
    loop {
        if api.risk_at(device_id, last.ts).await? {
            return Ok(Some(t0.elapsed().as_secs_f64()));
        }
        if Instant::now() > deadline {
            eprintln!("  the last scored message's risk never showed");
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
