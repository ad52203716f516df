//! `--max-ahead`: publishing held back while the pipeline is too far behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::pipeline_api::PipelineApi;
use crate::Result;

/// Holds publishing to at most `max_ahead` messages the pipeline has not yet
/// acknowledged (`--max-ahead`), from its `acked` counter polled over HTTP.
#[derive(Clone)]
pub(super) struct Gate {
    max_ahead: u64,
    /// Published through the gate, plus the pipeline's acknowledged count at the start.
    published: Arc<AtomicU64>,
    /// The pipeline's acknowledged count, refreshed every 2 ms.
    acked: Arc<AtomicU64>,
}

impl Gate {
    /// Starts polling the pipeline's counters; stops with `stop`.
    pub(super) async fn start(
        pipeline: &PipelineApi,
        max_ahead: u64,
        stop: CancellationToken,
    ) -> Result<Gate> {
        let acked = pipeline.counters().await?.acked;
        let gate = Gate {
            max_ahead,
            published: Arc::new(AtomicU64::new(acked)),
            acked: Arc::new(AtomicU64::new(acked)),
        };
        let (counter, pipeline) = (gate.acked.clone(), pipeline.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(2)) => {}
                }
                if let Ok(c) = pipeline.counters().await {
                    counter.store(c.acked, Ordering::Relaxed);
                }
            }
        });
        Ok(gate)
    }

    /// Waits for room for one more message, and takes it.
    pub(super) async fn wait(&self) {
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
