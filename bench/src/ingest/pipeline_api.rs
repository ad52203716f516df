//! What `bench ingest` reads of the running pipeline, through its HTTP API with the
//! benchmark's own admin key: ingest counters (`/health`), ticket counters
//! (`/metrics`), a device's risk and tickets; and waiting for it to catch up.

use std::time::{Duration, Instant};

use domain::Timestamp;
use serde_json::Value;

use super::STALL;
use crate::http::ApiClient;
use crate::Result;
use server::Context as _;

/// The pipeline's ingest counters, from `/health`.
pub(super) struct Counters {
    /// Messages received from the broker.
    pub(super) received: u64,
    /// Messages committed and acknowledged (stored, duplicates and dead letters).
    pub(super) acked: u64,
    /// Hot-store transactions committed.
    pub(super) batches: u64,
    pub(super) dead_letters: u64,
}

/// The pipeline stopped making progress.
#[derive(Debug, serde::Serialize)]
pub(super) struct Stall {
    /// What was being published: `seeds`, `timed` or `ticket history`.
    pub(super) phase: &'static str,
    /// Messages it should have acknowledged in all.
    pub(super) expected: u64,
    /// Messages it received from the broker.
    pub(super) received: u64,
    /// Messages it committed and acknowledged.
    pub(super) acked: u64,
    /// Seconds without progress before giving up.
    pub(super) stalled_for_s: u64,
}

/// The running pipeline's API.
#[derive(Clone)]
pub(super) struct PipelineApi {
    pub(super) api: ApiClient,
}

impl PipelineApi {
    /// The ingest counters, from `/health`.
    pub(super) async fn counters(&self) -> Result<Counters> {
        let health = self.api.get_json("/health").await?;
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

    /// Waits until the pipeline acknowledged `count` messages in all; returns when, or the
    /// counters after [`STALL`] without progress.
    pub(super) async fn until_acked(
        &self,
        count: u64,
    ) -> Result<std::result::Result<Instant, Stall>> {
        let mut last = (0, Instant::now());
        loop {
            let c = self.counters().await?;
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
    async fn metric(&self, name: &str) -> Result<u64> {
        let (_, text) = self.api.get("/metrics").await?;
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {name} in /metrics"))?;
        Ok(value)
    }

    /// Predictions the ticket service recorded.
    async fn predictions_recorded(&self) -> Result<u64> {
        self.metric("fixahead_ticket_predictions_total").await
    }

    /// Predictions recorded, tickets opened and tickets updated by a later flag.
    pub(super) async fn ticket_counters(&self) -> Result<[u64; 3]> {
        Ok([
            self.predictions_recorded().await?,
            self.metric("fixahead_tickets_opened_total").await?,
            self.metric("fixahead_tickets_updated_total").await?,
        ])
    }

    /// Waits until the scoring stage is idle: the recorded predictions unchanged for 1 s.
    pub(super) async fn scoring_idle(&self) -> Result<()> {
        let mut last = (self.predictions_recorded().await?, Instant::now());
        while last.1.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let n = self.predictions_recorded().await?;
            if n != last.0 {
                last = (n, Instant::now());
            }
        }
        Ok(())
    }

    /// Whether the device's current risk includes a score at event time `ts`.
    pub(super) async fn risk_at(&self, device_id: &str, ts: i64) -> Result<bool> {
        let device = self
            .api
            .get_json(&format!("/api/v1/devices/{device_id}"))
            .await?;
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
    pub(super) async fn tickets_of(&self, device_id: &str) -> Result<usize> {
        let body = self
            .api
            .get_json(&format!(
                "/api/v1/tickets?device_id={device_id}&source=proactive&limit=10"
            ))
            .await?;
        Ok(body["tickets"].as_array().map_or(0, Vec::len))
    }
}
