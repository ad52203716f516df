//! The ingest pipeline: batch, decode, commit, acknowledge, forward.
//!
//! ```text
//! MqttSource --(bounded Received)--> writer: decode + validate -> one SQLite transaction
//!                                            -> ack each message -> (bounded Message) --> downstream
//! ```
//!
//! * Acknowledge after commit (invariant 1): a message is acknowledged only after its
//!   row (or its dead letter) is committed. A failed commit is retried with backoff and
//!   nothing of the batch is acknowledged meanwhile.
//! * Store once (invariant 2): a redelivered `(device_id, seq)` is acknowledged but not
//!   stored or forwarded again.
//! * One order (invariant 3): a single writer handles messages in arrival order and
//!   forwards them in that order.
//! * Bounded (invariant 8): both channels are bounded; a slow store or a slow
//!   downstream makes the writer wait, the source's channel fills, and the source stops
//!   polling the broker.
//! * Acknowledging never waits: acknowledgements the connection cannot take yet wait in
//!   [`PendingAcks`] (bounded by MQTT's 65,535 packet ids) and leave as it drains. A
//!   writer that waited for them would deadlock with the source ([`Acker::try_ack`]).

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use domain::{decode, Message, ProfileSet, Rejection};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;
use crate::source::{AckToken, Acker, Received};
use crate::store::{HotStore, Outcome, StoreItem};
use crate::{Error, Result};

/// Batching settings.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Most messages per transaction.
    pub batch_max: usize,
    /// Longest a message waits for its batch to fill before the batch is committed.
    /// This bounds both ack latency and what the embedded broker can lose in a crash.
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
            batch_interval: Duration::from_millis(20),
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
    /// Receives every newly stored telemetry and fault message, in order.
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
        store,
        acker,
        profiles,
        downstream,
        metrics,
        settings,
    } = writer;
    let mut store = Some(store);
    let mut downstream = Some(downstream);
    let mut acks = PendingAcks::new(acker, metrics.clone(), ACK_BACKLOG_MAX);
    loop {
        let first = if acks.is_empty() {
            rx.recv().await
        } else {
            tokio::select! {
                r = rx.recv() => r,
                _ = tokio::time::sleep(ACK_RETRY) => {
                    acks.flush();
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        acks.flush();
        let mut batch = Vec::with_capacity(settings.batch_max);
        batch.push(first);
        let deadline = Instant::now() + settings.batch_interval;
        while batch.len() < settings.batch_max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }

        let mut decoded: Vec<Result<Message, Rejection>> = batch
            .iter()
            .map(|r| {
                decode(&r.topic, &r.payload, &profiles)
                    .and_then(|m| check_clock(m, r.received_at, settings.max_future_ms))
            })
            .collect();

        let mut backoff = Duration::from_millis(50);
        let (outcomes, batch, decoded) = loop {
            let s = store
                .take()
                .ok_or_else(|| Error::Task("store lost".into()))?;
            let (s, batch_back, decoded_back, res) = commit_blocking(s, batch, decoded).await?;
            store = Some(s);
            match res {
                Ok(outcomes) => break (outcomes, batch_back, decoded_back),
                Err(e) => {
                    metrics.commit_errors.fetch_add(1, Relaxed);
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "Hot-store commit failed; batch not acknowledged, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => {
                            tracing::warn!("Stopping with an uncommitted batch; the broker still holds it");
                            return store.take().ok_or_else(|| Error::Task("store lost".into()));
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    batch = batch_back;
                    decoded = decoded_back;
                }
            }
        };
        metrics.batches.fetch_add(1, Relaxed);
        if let Some(s) = store.as_mut() {
            metrics
                .dead_letters_pruned
                .fetch_add(s.take_pruned(), Relaxed);
        }

        for r in &batch {
            acks.push(r.ack);
        }
        acks.flush();

        for (outcome, result) in outcomes.into_iter().zip(decoded) {
            match (outcome, result) {
                (Outcome::Stored, Ok(message)) => {
                    match &message {
                        Message::Telemetry(_) => metrics.stored_telemetry.fetch_add(1, Relaxed),
                        Message::Fault(_) => metrics.stored_faults.fetch_add(1, Relaxed),
                        Message::Status(_) => metrics.stored_status.fetch_add(1, Relaxed),
                    };
                    if matches!(message, Message::Status(_)) {
                        continue;
                    }
                    if let Some(tx) = &downstream {
                        if tx.send(message).await.is_err() {
                            tracing::warn!("Downstream stage is gone; storing without scoring");
                            downstream = None;
                        }
                    }
                }
                (Outcome::Duplicate, _) => {
                    metrics.duplicates.fetch_add(1, Relaxed);
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
    // The source keeps polling until we return, so what is pending still leaves.
    let deadline = Instant::now() + ACK_SHUTDOWN_GRACE;
    while !acks.flush() && Instant::now() < deadline {
        tokio::time::sleep(ACK_RETRY).await;
    }
    if !acks.is_empty() {
        tracing::warn!(
            pending = acks.len(),
            "Stopping with acknowledgements not sent; the broker will redeliver those messages"
        );
    }
    store.ok_or_else(|| Error::Task("store lost".into()))
}

/// How often pending acknowledgements are retried while the writer has nothing else to do.
const ACK_RETRY: Duration = Duration::from_millis(2);
/// How long a stopping writer keeps offering its last acknowledgements.
const ACK_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Most acknowledgements kept waiting. A broker cannot have more unacknowledged QoS 1
/// deliveries in flight to one session than there are packet ids (65,535), so a
/// working connection never reaches it; past it (a connection task that is gone) the
/// oldest is dropped, which only means a redelivery that the store recognises.
const ACK_BACKLOG_MAX: usize = 65_536;

/// Acknowledgements in commit order that the connection could not take yet.
pub struct PendingAcks {
    acker: Acker,
    queue: VecDeque<AckToken>,
    metrics: Arc<IngestMetrics>,
    max: usize,
}

impl PendingAcks {
    /// An empty backlog that keeps at most `max` tokens.
    pub fn new(acker: Acker, metrics: Arc<IngestMetrics>, max: usize) -> Self {
        Self {
            acker,
            queue: VecDeque::new(),
            metrics,
            max,
        }
    }

    /// Queues `token` behind the ones already waiting (acknowledgements leave in order).
    pub fn push(&mut self, token: AckToken) {
        if self.queue.len() >= self.max {
            self.queue.pop_front();
            self.metrics.acks_dropped.fetch_add(1, Relaxed);
            tracing::warn!(
                "Acknowledgement backlog full; dropped the oldest (the broker will redeliver it)"
            );
        }
        self.queue.push_back(token);
    }

    /// Hands over as many as the connection takes now; true when none are left.
    pub fn flush(&mut self) -> bool {
        while let Some(&token) = self.queue.front() {
            if self.acker.try_ack(token).is_err() {
                return false;
            }
            self.queue.pop_front();
            self.metrics.acked.fetch_add(1, Relaxed);
        }
        true
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.queue.len()
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
        let res = store.commit(&items);
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

    fn unpolled_acker(capacity: usize) -> (Acker, rumqttc::EventLoop) {
        let opts = rumqttc::MqttOptions::new("t", "127.0.0.1", 1);
        let (client, eventloop) = rumqttc::AsyncClient::new(opts, capacity);
        (Acker::new(client), eventloop)
    }

    #[test]
    fn acknowledgements_the_connection_cannot_take_wait_in_order_without_blocking() {
        // Nobody polls this connection: its request channel takes two and then is full,
        // as under a backlog. Pushing and flushing must return, never wait.
        let (acker, _eventloop) = unpolled_acker(2);
        let metrics = Arc::new(IngestMetrics::default());
        let mut acks = PendingAcks::new(acker, metrics.clone(), 100);
        for pkid in 1..=5 {
            acks.push(AckToken { pkid, qos: 1 });
        }
        assert!(!acks.flush(), "three cannot leave yet");
        assert_eq!(acks.len(), 3);
        assert_eq!(metrics.acked.load(Relaxed), 2);
        assert_eq!(acks.queue.front().map(|t| t.pkid), Some(3), "in order");
        // QoS 0 deliveries need no acknowledgement and never wait.
        let (acker, _eventloop) = unpolled_acker(1);
        let mut acks = PendingAcks::new(acker, metrics.clone(), 100);
        for pkid in 0..10 {
            acks.push(AckToken { pkid, qos: 0 });
        }
        assert!(acks.flush());
    }

    #[test]
    fn a_full_acknowledgement_backlog_drops_the_oldest_and_counts_it() {
        let (acker, _eventloop) = unpolled_acker(1);
        let metrics = Arc::new(IngestMetrics::default());
        let mut acks = PendingAcks::new(acker, metrics.clone(), 3);
        for pkid in 1..=5 {
            acks.push(AckToken { pkid, qos: 1 });
        }
        assert_eq!(acks.len(), 3);
        assert_eq!(metrics.acks_dropped.load(Relaxed), 2);
        assert_eq!(acks.queue.front().map(|t| t.pkid), Some(3));
    }

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
