//! The JSON `bench ingest` prints (its fields are documented in docs/performance.md).

use serde_json::{json, Value};

use super::latency::LatencyResult;
use super::load::Load;
use super::memory::StateResult;
use super::pipeline::PipelineRun;
use super::relay::RawResult;
use super::IngestArgs;
use crate::stats::{percentile, round1, round3};

/// Ratio target with the embedded broker.
const RATIO_TARGET_EMBEDDED: f64 = 0.6;
/// Ratio target with an external broker (Mosquitto).
const RATIO_TARGET_EXTERNAL: f64 = 0.9;
/// Ticket latency target (p99), at the background load.
const TICKET_P99_TARGET_MS: f64 = 50.0;
/// Memory target per tracked device.
const BYTES_PER_DEVICE_TARGET: f64 = 2048.0;

/// Everything measured, and what it was measured on.
pub(super) struct Measured<'a> {
    pub(super) args: &'a IngestArgs,
    pub(super) broker: String,
    pub(super) model_source: String,
    pub(super) load: &'a Load,
    pub(super) state: Option<StateResult>,
    pub(super) raw: RawResult,
    pub(super) run: PipelineRun,
    pub(super) load_before: Option<Vec<f64>>,
    pub(super) load_after: Option<Vec<f64>>,
}

/// The report: one JSON object, its fields grouped as in docs/performance.md.
pub(super) fn json(m: &Measured<'_>) -> Value {
    let latency_measured = m.run.latency.is_some();
    let not_measured = LatencyResult::not_measured();
    let latency = m.run.latency.as_ref().unwrap_or(&not_measured);
    let mut out = serde_json::Map::new();
    for part in [
        context(m),
        throughput(m),
        latencies(latency, latency_measured),
        memory(m),
    ] {
        if let Value::Object(fields) = part {
            out.extend(fields);
        }
    }
    out.insert("targets".into(), targets(m, latency, latency_measured));
    Value::Object(out)
}

fn context(m: &Measured<'_>) -> Value {
    json!({
        "bench": "ingest",
        "broker": m.broker,
        "messages": m.load.timed.len(),
        "devices": m.args.devices,
        "publisher_connections": m.args.connections,
        "batch_interval_ms": m.run.batch_interval_ms,
        "max_ahead": m.args.max_ahead,
        "payload_bytes_mean": round1(m.load.payload_bytes_mean),
        "model": m.model_source,
        "scored_share": round3(m.load.scored_share),
    })
}

fn ratio(m: &Measured<'_>) -> f64 {
    m.run.pipeline.msgs_per_s / m.raw.msgs_per_s.max(1e-9)
}

fn throughput(m: &Measured<'_>) -> Value {
    let (raw, pipeline) = (&m.raw, &m.run.pipeline);
    json!({
        "raw_msgs_per_s": raw.msgs_per_s.round(),
        "raw_seconds": round3(raw.seconds),
        "raw_publish_seconds": round3(raw.publish_seconds),
        "pipeline_msgs_per_s": pipeline.msgs_per_s.round(),
        "pipeline_seconds": round3(pipeline.seconds),
        "pipeline_publish_seconds": round3(pipeline.publish_seconds),
        "pipeline_scored_seconds": pipeline.scored_seconds.map(round3),
        "pipeline_dead_letters": pipeline.dead_letters,
        "pipeline_commits": pipeline.commits,
        "pipeline_messages_per_commit": round1(m.load.timed.len() as f64 / pipeline.commits as f64),
        "pipeline_predictions_recorded": pipeline.predictions_recorded,
        "pipeline_tickets_opened": pipeline.tickets_opened,
        "pipeline_tickets_updated": pipeline.tickets_updated,
        "pipeline_stalled": pipeline.stalled,
        "ratio": round3(ratio(m)),
    })
}

fn latencies(latency: &LatencyResult, latency_measured: bool) -> Value {
    json!({
        "latency_measured": latency_measured,
        "background_msgs_per_s": latency.background_msgs_per_s.round(),
        "background_backlog_at_end": latency.backlog_at_end,
        "store_latency_ms_p50": round1(percentile(&latency.store_ms, 0.5)),
        "store_latency_ms_p99": round1(percentile(&latency.store_ms, 0.99)),
        "store_latency_ms_max": round1(percentile(&latency.store_ms, 1.0)),
        "store_latency_samples": latency.store_ms.len(),
        "store_latency_lost": latency.store_lost,
        "ticket_latency_ms_p50": round1(percentile(&latency.ticket_ms, 0.5)),
        "ticket_latency_ms_p99": round1(percentile(&latency.ticket_ms, 0.99)),
        "ticket_latency_ms_max": round1(percentile(&latency.ticket_ms, 1.0)),
        "ticket_samples": latency.ticket_ms.len(),
        "ticket_timeouts": latency.ticket_timeouts,
        "ticket_skipped": latency.ticket_skipped,
        "ticket_not_taken": latency.ticket_not_taken,
    })
}

fn memory(m: &Measured<'_>) -> Value {
    let state = m.state.as_ref();
    let (fsync_before, fsync_after) = (m.run.fsync_before, m.run.fsync_after);
    json!({
        "bytes_per_device": state.map(|s| s.bytes_per_device.round()),
        "state_bytes_per_device": state.map(|s| s.state_bytes_per_device.round()),
        "state_devices": state.map(|s| s.devices),
        "state_scored_devices": state.map(|s| s.scored_devices),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "fsync_ms_p50_before": round3(fsync_before.0),
        "fsync_ms_p99_before": round3(fsync_before.1),
        "fsync_ms_p50_after": round3(fsync_after.0),
        "fsync_ms_p99_after": round3(fsync_after.1),
        "load_average_before": m.load_before,
        "load_average_after": m.load_after,
    })
}

fn targets(m: &Measured<'_>, latency: &LatencyResult, latency_measured: bool) -> Value {
    let ratio_target = if m.args.mqtt_url.is_some() {
        RATIO_TARGET_EXTERNAL
    } else {
        RATIO_TARGET_EMBEDDED
    };
    let ticket_p99 = percentile(&latency.ticket_ms, 0.99);
    let bytes_per_device = m.state.as_ref().map(|s| s.bytes_per_device);
    json!({
        "ratio": {"target": ratio_target, "met": ratio(m) >= ratio_target},
        "ticket_latency_ms_p99": {
            "target": TICKET_P99_TARGET_MS,
            "at_background_msgs_per_s": m.args.background_rate,
            "met": latency_measured
                && ticket_p99 < TICKET_P99_TARGET_MS
                && latency.ticket_timeouts == 0
                && latency.ticket_not_taken == 0,
        },
        "bytes_per_device": {
            "target": BYTES_PER_DEVICE_TARGET,
            "met": bytes_per_device.map(|b| b < BYTES_PER_DEVICE_TARGET),
        },
    })
}
