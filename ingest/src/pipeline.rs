//! The ingest pipeline: batch, decode, commit, acknowledge, forward.
//!
//! ```text
//! MqttSource --(bounded Received)--> writer: decode + validate -> one SQLite transaction
//!                                            -> ack each message -> (bounded Message) --> downstream
//! ```
//!
//! * Acknowledge after commit (invariant 1 "nothing accepted is lost"): a message is acknowledged only after its
//!   row (or its dead letter) is committed. A failed commit is retried with backoff and
//!   nothing of the batch is acknowledged meanwhile.
//! * Store once (invariant 2 "nothing is stored twice"): a redelivered `(device_id, seq)` is acknowledged but not
//!   stored or forwarded again.
//! * One order (invariant 3 "one device, one order"): a single writer handles messages in arrival order and
//!   forwards them in that order.
//! * Bounded (invariant 4 "bounded everywhere"): both channels are bounded; a slow store or a slow
//!   downstream makes the writer wait, the source's channel fills, and the source stops
//!   polling the broker.
//! * Acknowledging never waits: the writer hands tokens back to the source, which
//!   writes them on the connection before it polls again ([`Acker`] says why).

use std::sync::Arc;
use std::time::Duration;

use domain::{decode, Message, ProfileSet, Rejection};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;
use crate::source::{Acker, Received};
use crate::{Error, Result};
use store::hot::{HotStore, Outcome, StoreItem};

/// Batching settings.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Most messages per transaction.
    pub batch_max: usize,
    /// Longest a batch waits for more messages once the queue runs empty. Zero (the
    /// default) is group commit: a batch is whatever waits in the queue (up to
    /// `batch_max`), committed at once, so batches grow with the load while one commit
    /// is under way and an idle pipeline commits every message without delay. This
    /// bounds both ack latency and what the embedded broker can lose in a crash.
    pub batch_interval: Duration,
    /// Reject (as `invalid_timestamp`) a message whose event time is more than this
    /// many milliseconds after its receive time. A device clock set years ahead would
    /// otherwise freeze its features (they only move forward in event time). `None`
    /// accepts any time: simulators that run faster than the clock need it.
    pub max_future_ms: Option<i64>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            batch_max: 512,
            batch_interval: Duration::ZERO,
            max_future_ms: Some(domain::Timestamp::DAY_MS),
        }
    }
}

/// The writer stage and everything it needs.
pub struct Writer {
    /// The hot store (the single writer).
    pub store: HotStore,
    /// Acknowledges on the source's connection.
    pub acker: Acker,
    /// Profiles used to validate payloads.
    pub profiles: Arc<ProfileSet>,
    /// Receives every newly stored telemetry and fault message and every valid command
    /// result, in order.
    pub downstream: mpsc::Sender<Message>,
    /// Counters.
    pub metrics: Arc<IngestMetrics>,
    /// Batching.
    pub settings: PipelineSettings,
}

impl Writer {
    /// Runs until the source's channel closes, then returns the store.
    ///
    /// `stop` only interrupts retries of a failing commit; a normal shutdown closes `rx`.
    pub async fn run(
        self,
        rx: mpsc::Receiver<Received>,
        stop: CancellationToken,
    ) -> Result<HotStore> {
        run_writer(self, rx, stop).await
    }
}

async fn run_writer(
    writer: Writer,
    mut rx: mpsc::Receiver<Received>,
    stop: CancellationToken,
) -> Result<HotStore> {
    let Writer {
        mut store,
        acker,
        profiles,
        downstream,
        metrics,
        settings,
    } = writer;
    let mut downstream = Some(downstream);
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::with_capacity(settings.batch_max);
        batch.push(first);
        fill_batch(&mut rx, &mut batch, &settings).await;

        let decoded = decode_batch(&batch, &profiles, settings.max_future_ms);

        let (s, committed) = commit_retrying(store, batch, decoded, &metrics, &stop).await?;
        store = s;
        let Some((outcomes, batch, decoded)) = committed else {
            return Ok(store);
        };
        metrics.batches.inc();
        metrics.dead_letters_pruned.inc_by(store.take_pruned());

        for r in &batch {
            if !acker.ack(r.ack) {
                tracing::warn!("The MQTT source is gone; the broker will redeliver");
                break;
            }
        }

        forward(outcomes, decoded, &metrics, &mut downstream).await;
    }
    Ok(store)
}

/// Decodes and validates each received message, in order: the message, or why it is
/// rejected.
fn decode_batch(
    batch: &[Received],
    profiles: &ProfileSet,
    max_future_ms: Option<i64>,
) -> Vec<Result<Message, Rejection>> {
    batch
        .iter()
        .map(|r| {
            decode(&r.topic, &r.payload, profiles)
                .and_then(|m| check_clock(m, r.received_at, max_future_ms))
                .map(|mut m| {
                    if let Message::CommandResult(c) = &mut m {
                        c.received_at = Some(r.received_at);
                    }
                    m
                })
        })
        .collect()
}

/// A committed batch: the store's outcome for each message, the messages as received
/// and as decoded.
type Committed = (Vec<Outcome>, Vec<Received>, Vec<Result<Message, Rejection>>);

/// Commits the batch, retrying with backoff while the commit fails. Hands the store
/// back with the committed batch, or with `None` when `stop` came during a retry (the
/// batch is then neither committed nor acknowledged).
async fn commit_retrying(
    mut store: HotStore,
    mut batch: Vec<Received>,
    mut decoded: Vec<Result<Message, Rejection>>,
    metrics: &IngestMetrics,
    stop: &CancellationToken,
) -> Result<(HotStore, Option<Committed>)> {
    let mut backoff = Duration::from_millis(50);
    loop {
        let (s, batch_back, decoded_back, res) = commit_blocking(store, batch, decoded).await?;
        store = s;
        match res {
            Ok(outcomes) => return Ok((store, Some((outcomes, batch_back, decoded_back)))),
            Err(e) => {
                metrics.commit_errors.inc();
                tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "Hot-store commit failed; batch not acknowledged, retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => {
                        tracing::warn!("Stopping with an uncommitted batch; the broker still holds it");
                        return Ok((store, None));
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                batch = batch_back;
                decoded = decoded_back;
            }
        }
    }
}

/// Counts each committed message by its outcome and passes the newly stored telemetry
/// and faults and the valid command results downstream, in order. A downstream that is
/// gone is dropped (`None`): storing goes on without scoring.
async fn forward(
    outcomes: Vec<Outcome>,
    decoded: Vec<Result<Message, Rejection>>,
    metrics: &IngestMetrics,
    downstream: &mut Option<mpsc::Sender<Message>>,
) {
    for (outcome, result) in outcomes.into_iter().zip(decoded) {
        match (outcome, result) {
            (Outcome::Stored, Ok(message)) => {
                match &message {
                    Message::Telemetry(_) => metrics.stored_telemetry.inc(),
                    Message::Fault(_) => metrics.stored_faults.inc(),
                    Message::Status(_) => metrics.stored_status.inc(),
                    Message::Command(_) => metrics.own_commands.inc(),
                    Message::CommandResult(_) => metrics.command_results.inc(),
                };
                if matches!(message, Message::Status(_) | Message::Command(_)) {
                    continue;
                }
                if let Some(tx) = downstream {
                    if tx.send(message).await.is_err() {
                        tracing::warn!("Downstream stage is gone; storing without scoring");
                        *downstream = None;
                    }
                }
            }
            (Outcome::Duplicate, _) => {
                metrics.duplicates.inc();
            }
            (Outcome::DeadLettered, Err(rejection)) => {
                metrics.count_rejected(rejection.reason);
                tracing::debug!(reason = %rejection.reason, detail = %rejection.detail, "Message dead-lettered");
            }
            (outcome, _) => {
                tracing::error!(?outcome, "Store outcome does not match the decode result");
            }
        }
    }
}

/// Adds to `batch` what waits in the queue, up to `batch_max`. With a zero
/// `batch_interval` it stops when the queue is empty (after yielding once, so that a
/// source with a message in hand can hand it over); otherwise it waits up to
/// `batch_interval` for more.
async fn fill_batch(
    rx: &mut mpsc::Receiver<Received>,
    batch: &mut Vec<Received>,
    settings: &PipelineSettings,
) {
    let deadline = Instant::now() + settings.batch_interval;
    let mut yielded = false;
    while batch.len() < settings.batch_max {
        match rx.try_recv() {
            Ok(r) => {
                batch.push(r);
                continue;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        if settings.batch_interval.is_zero() {
            if yielded {
                return;
            }
            yielded = true;
            tokio::task::yield_now().await;
            continue;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(r)) => batch.push(r),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Rejects a message dated too far after its arrival.
fn check_clock(
    message: Message,
    received_at: domain::Timestamp,
    max_future_ms: Option<i64>,
) -> Result<Message, Rejection> {
    let (Some(max), Some(ts)) = (max_future_ms, message.ts()) else {
        return Ok(message);
    };
    if ts.millis() <= received_at.millis().saturating_add(max) {
        return Ok(message);
    }
    Err(Rejection {
        reason: domain::RejectReason::InvalidTimestamp,
        detail: format!(
            "ts {ts} is more than {} h after the receive time {received_at}; is the device clock wrong?",
            max / domain::Timestamp::HOUR_MS
        ),
        device_id: Some(message.device_id().clone()),
    })
}

type CommitResult = (
    HotStore,
    Vec<Received>,
    Vec<Result<Message, Rejection>>,
    Result<Vec<Outcome>>,
);

/// Commits on a blocking thread, handing ownership back with the result.
async fn commit_blocking(
    mut store: HotStore,
    batch: Vec<Received>,
    decoded: Vec<Result<Message, Rejection>>,
) -> Result<CommitResult> {
    tokio::task::spawn_blocking(move || {
        let items: Vec<StoreItem<'_>> = batch
            .iter()
            .zip(&decoded)
            .map(|(r, d)| match d {
                Ok(message) => StoreItem::Message {
                    message,
                    received_at: r.received_at,
                },
                Err(rejection) => StoreItem::DeadLetter {
                    topic: &r.topic,
                    payload: &r.payload,
                    rejection,
                    received_at: r.received_at,
                },
            })
            .collect();
        let res = store.commit(&items).map_err(Error::from);
        drop(items);
        (store, batch, decoded, res)
    })
    .await
    .map_err(|e| Error::Task(format!("commit task: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{ProfileSet, RejectReason, Timestamp};

    #[test]
    fn a_clock_far_ahead_is_rejected_unless_allowed() {
        let payload = br#"{"ts": "2099-01-01T00:00:00Z", "seq": 1, "type": "washer", "model": "M", "readings": {"vibration_g": 0.1}}"#;
        let msg = decode(
            "fixahead/v1/wm-1/telemetry",
            payload,
            &ProfileSet::builtin(),
        )
        .unwrap();
        let now = Timestamp::parse("2026-11-25T00:00:00Z").unwrap();
        let err = check_clock(msg.clone(), now, Some(Timestamp::DAY_MS)).unwrap_err();
        assert_eq!(err.reason, RejectReason::InvalidTimestamp);
        assert!(err.detail.contains("24 h"), "{}", err.detail);
        assert!(check_clock(msg.clone(), now, None).is_ok());
        let soon = Timestamp(now.millis() + Timestamp::HOUR_MS);
        assert!(check_clock(msg, soon, Some(Timestamp::DAY_MS * 30_000)).is_ok());
    }
}
