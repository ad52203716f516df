//! The MQTT source: one rumqttc connection with QoS 1 subscriptions, a persistent
//! session (`clean_session = false`) and manual acknowledgements.
//!
//! The source hands every publish to the pipeline through a bounded channel; when that
//! channel is full it stops polling the broker, which is how backpressure reaches the
//! devices (invariant 4 "bounded everywhere"). The pipeline decides when a message may be acknowledged
//! (after its commit) and hands the token back through an [`Acker`]; the source writes
//! the acknowledgements on the connection itself, before every poll and while it waits
//! for room in the pipeline. See [`Acker`] for why they do not go through rumqttc's
//! request channel.
//!
//! Here: [`MqttSource`] and its loop. Beside it: `settings` ([`MqttSettings`],
//! [`Protocol`]), `endpoint` (broker URLs, [`Endpoint`]), `tls` ([`TlsConfig`]),
//! `delivery` ([`Received`], [`AckToken`], [`Acker`]) and `connection` (what differs
//! between MQTT 3.1.1 and 5).

mod connection;
mod delivery;
mod endpoint;
mod settings;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;

pub use connection::{MQTT5_RECEIVE_MAXIMUM, MQTT5_SESSION_EXPIRY_S, MQTT_MAX_PACKET_BYTES};
pub use delivery::{AckToken, Acker, Received};
pub use endpoint::{parse_mqtt_url, BrokerUrl, Endpoint, MQTTS_PORT, MQTT_PORT};
pub use settings::{MqttSettings, Protocol};
pub use tls::{TlsConfig, TlsFiles};

use connection::{Connection, SourceEvent};

/// A connected-on-demand MQTT source.
pub struct MqttSource {
    conn: Connection,
    filters: Vec<String>,
    acks: mpsc::UnboundedReceiver<AckToken>,
    acker: Acker,
    /// Connections made so far; the current one's number.
    connection: u64,
}

impl MqttSource {
    /// Creates the client. `request_capacity` bounds rumqttc's request channel, which
    /// carries the subscriptions, the disconnect and (MQTT 5 only) the
    /// acknowledgements; see [`Acker`]. It must exceed [`MQTT5_RECEIVE_MAXIMUM`].
    ///
    /// Both versions keep the session across restarts: MQTT 3.1.1 with
    /// `clean_session = false`, MQTT 5 with `clean_start = false` and a session expiry
    /// interval of [`MQTT5_SESSION_EXPIRY_S`] (never).
    pub fn new(settings: &MqttSettings, request_capacity: usize) -> Self {
        let conn = Connection::new(settings, request_capacity);
        let (acker, acks) = Acker::channel();
        Self {
            conn,
            filters: settings.filters(),
            acks,
            acker,
            connection: 0,
        }
    }

    /// A handle for acknowledging deliveries.
    pub fn acker(&self) -> Acker {
        self.acker.clone()
    }

    /// Hands `item` to the pipeline, waiting for room, and writes the acknowledgements
    /// handed back meanwhile. False when the pipeline is gone or ingest is stopping.
    async fn hand_over(
        &mut self,
        sender: &mpsc::Sender<Received>,
        item: Received,
        metrics: &IngestMetrics,
        stop: &CancellationToken,
    ) -> bool {
        loop {
            tokio::select! {
                permit = sender.reserve() => {
                    return match permit {
                        Ok(permit) => {
                            permit.send(item);
                            true
                        }
                        Err(_) => false,
                    };
                }
                Some(token) = self.acks.recv() => {
                    self.write_acks(Some(token), metrics).await;
                }
                _ = stop.cancelled() => return false,
            }
        }
    }

    /// Writes every acknowledgement handed back so far on the current connection and
    /// flushes once. Tokens of an earlier connection are dropped (the broker redelivers
    /// those messages), as are the ones a failed write could not send; the connection
    /// error then surfaces at the next poll.
    async fn write_acks(&mut self, first: Option<AckToken>, metrics: &IngestMetrics) {
        let mut written = 0u64;
        let mut dropped = 0u64;
        let mut failed = false;
        let mut first = first;
        while let Some(token) = first.take().or_else(|| self.acks.try_recv().ok()) {
            if failed || token.connection != self.connection {
                dropped += 1;
            } else if self.conn.write_ack(token).await {
                written += 1;
            } else {
                failed = true;
                dropped += 1;
            }
        }
        if written > 0 {
            if !failed && !self.conn.flush_acks().await {
                failed = true;
            }
            if failed {
                dropped += written;
            } else {
                metrics.acked.inc_by(written);
            }
        }
        if dropped > 0 {
            metrics.acks_dropped.inc_by(dropped);
            tracing::debug!(
                dropped,
                "Acknowledgements not sent (connection lost); the broker will redeliver"
            );
        }
    }

    /// Drives the connection until `stop` is cancelled, forwarding publishes to `tx`.
    ///
    /// After `stop`, nothing new is forwarded but the connection keeps being polled so
    /// that the pipeline's last acknowledgements reach the broker; `drained` is
    /// cancelled by the pipeline when it has acknowledged everything it will, and then
    /// the source disconnects.
    pub async fn run(
        mut self,
        tx: mpsc::Sender<Received>,
        metrics: Arc<IngestMetrics>,
        stop: CancellationToken,
        drained: CancellationToken,
    ) {
        let mut tx = Some(tx);
        let mut backoff = Duration::from_millis(100);
        let mut first_ack = None;
        loop {
            self.write_acks(first_ack.take(), &metrics).await;
            let event = tokio::select! {
                biased;
                _ = drained.cancelled() => break,
                // Stopping: close the channel so the pipeline finishes its last batch,
                // but keep polling so its acknowledgements still reach the broker.
                _ = stop.cancelled(), if tx.is_some() => {
                    tx = None;
                    continue;
                }
                // An acknowledgement to write: go round (the poll is cancel-safe).
                Some(token) = self.acks.recv() => {
                    first_ack = Some(token);
                    continue;
                }
                ev = self.conn.poll(self.connection) => ev,
            };
            match event {
                Ok(SourceEvent::ConnAck { session_present }) => {
                    self.connection += 1;
                    metrics.connects.inc();
                    backoff = Duration::from_millis(100);
                    tracing::info!(session_present, "Connected to MQTT broker");
                    for f in &self.filters {
                        if let Err(e) = self.conn.try_subscribe(f) {
                            tracing::error!(error = %e, filter = %f, "Subscribe request failed");
                        }
                    }
                }
                Ok(SourceEvent::SubscribeRefused(ack)) => {
                    tracing::error!(%ack, "Broker refused a subscription");
                }
                Ok(SourceEvent::Publish(item)) => {
                    metrics.received.inc();
                    if tx.is_none() {
                        // Stopping: leave it unacknowledged; a persistent broker
                        // redelivers it to the next session.
                        continue;
                    }
                    let handed = match &tx {
                        Some(sender) => self.hand_over(sender, item, &metrics, &stop).await,
                        None => false,
                    };
                    if !handed {
                        tx = None;
                    }
                }
                Ok(SourceEvent::Disconnected | SourceEvent::Other) => {}
                Err(e) => {
                    metrics.connection_errors.inc();
                    if stop.is_cancelled() {
                        tracing::warn!(error = %e, "MQTT connection lost during shutdown");
                        break;
                    }
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT connection error");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = drained.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.write_acks(None, &metrics).await;
        // Flush what is queued (the last acks), then say goodbye.
        self.conn.try_disconnect();
        let connection = self.connection;
        let flush = async {
            loop {
                match self.conn.poll(connection).await {
                    Ok(SourceEvent::Disconnected) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
        tracing::info!("MQTT source stopped");
    }
}

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
