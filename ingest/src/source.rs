//! The MQTT source: one rumqttc connection with QoS 1 subscriptions, a persistent
//! session (`clean_session = false`) and manual acknowledgements.
//!
//! The source hands every publish to the pipeline through a bounded channel; when that
//! channel is full it stops polling the broker, which is how backpressure reaches the
//! devices (invariant 8). The pipeline decides when a message may be acknowledged
//! (after its commit) and hands the token back through an [`Acker`]; the source writes
//! the acknowledgements on the connection itself, before every poll and while it waits
//! for room in the pipeline. See [`Acker`] for why they do not go through rumqttc's
//! request channel.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use domain::wire::TOPIC_PREFIX;
use domain::Timestamp;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, PubAck, PubRec, Publish, QoS,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;
use crate::{Error, Result};

/// The largest packet MQTT can encode (the remaining length is at most 268,435,455).
pub const MQTT_MAX_PACKET_BYTES: usize = 268_435_455;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct MqttSettings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id; with a persistent session it must be stable across restarts.
    pub client_id: String,
    /// Username, if the broker wants one.
    pub username: Option<String>,
    /// Password, if the broker wants one.
    pub password: Option<String>,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Subscribe through `$share/{group}/...` so several instances split the load.
    pub shared_group: Option<String>,
}

impl MqttSettings {
    /// Settings for `host:port` with fixahead's defaults.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            client_id: "fixahead-ingest".into(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(30),
            shared_group: None,
        }
    }

    /// The subscription filters: one, `fixahead/v1/+/+`, covering every message kind.
    ///
    /// Not one filter per kind: a broker may keep a separate queue per subscription
    /// (rumqttd keeps one log per filter and serves them in chunks), so under a backlog
    /// a device's faults would arrive after its later telemetry. The feature engine only
    /// moves forward in event time, so those faults would be lost to scoring, and live
    /// scores would differ from an offline replay (`tests/it/parity.rs` caught this).
    /// One filter keeps each device's messages in publish order. A topic of an unknown
    /// kind under the prefix becomes an `invalid_topic` dead letter.
    pub fn filters(&self) -> Vec<String> {
        let all = format!("{TOPIC_PREFIX}+/+");
        vec![match &self.shared_group {
            Some(g) => format!("$share/{g}/{all}"),
            None => all,
        }]
    }
}

/// Parses `mqtt://host:port` (port defaults to 1883).
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16)> {
    let bad = |why: &str| Error::Mqtt(format!("invalid MQTT URL {url:?}: {why}"));
    let rest = if let Some(rest) = url.strip_prefix("mqtt://") {
        rest
    } else if url.starts_with("mqtts://") {
        return Err(bad("mqtts:// (TLS) is not supported yet; use mqtt://"));
    } else {
        return Err(bad("expected mqtt://host:port"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(bad("expected mqtt://host:port with no path or credentials"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| bad("port is not a number 1-65535"))?;
            (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                port,
            )
        }
        _ => (rest.to_owned(), 1883),
    };
    if host.is_empty() || port == 0 {
        return Err(bad("missing host or port"));
    }
    Ok((host, port))
}

/// A publish handed to the pipeline, with the time it arrived.
#[derive(Debug)]
pub struct Received {
    /// The MQTT topic.
    pub topic: String,
    /// The payload, as received.
    pub payload: bytes::Bytes,
    /// What acknowledging this delivery takes.
    pub ack: AckToken,
    /// Wall-clock receive time.
    pub received_at: Timestamp,
}

impl Received {
    /// Wraps a publish received on `connection`.
    pub fn new(publish: Publish, connection: u64, received_at: Timestamp) -> Self {
        Self {
            ack: AckToken {
                pkid: publish.pkid,
                qos: publish.qos as u8,
                connection,
            },
            topic: publish.topic,
            payload: publish.payload,
            received_at,
        }
    }
}

/// The protocol-neutral part of a delivery that its acknowledgement needs: the packet
/// id and the QoS it was delivered with (QoS 0 needs none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckToken {
    /// The packet id the broker chose.
    pub pkid: u16,
    /// 0, 1 or 2.
    pub qos: u8,
    /// The connection it arrived on (counted from 1 by the source). An acknowledgement
    /// is only ever written on the connection its publish came over: after a reconnect
    /// the broker redelivers what was not acknowledged, and the store recognises it.
    pub connection: u64,
}

/// Hands acknowledgements back to the source, which writes them on the connection.
///
/// Not rumqttc's `AsyncClient::ack`: rumqttc's event loop hands out the publishes it has
/// buffered (up to ten per socket read) before it takes one request from its channel,
/// so under a backlog acknowledgements leave far slower than publishes arrive. Awaiting
/// room in that channel deadlocked ingest with Mosquitto past ~2,600 waiting messages
/// (the writer waited on the channel, the source on the writer, and only the source's
/// polling empties the channel); not awaiting it let a broker that ignores its in-flight
/// limit run ahead by more than MQTT's 65,535 packet ids. So the source writes every
/// acknowledgement it has been handed before it polls again, and also while it waits for
/// room in the pipeline: acknowledgements leave at least as fast as commits produce
/// them, and never wait on anything that waits on them.
///
/// The channel is unbounded, but what it holds is bounded: a token exists only for a
/// message the pipeline took from the source's bounded queue and has not been
/// acknowledged, and the source empties it on every turn.
#[derive(Clone, Debug)]
pub struct Acker {
    tx: mpsc::UnboundedSender<AckToken>,
}

impl Acker {
    /// An acker and the receiving end the source drains (tests drain it themselves).
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<AckToken>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Asks for `token` to be acknowledged. False when the source is gone (shutting
    /// down): the broker then redelivers the message to the next session.
    pub fn ack(&self, token: AckToken) -> bool {
        token.qos == 0 || self.tx.send(token).is_ok()
    }
}

/// A connected-on-demand MQTT source.
pub struct MqttSource {
    client: AsyncClient,
    eventloop: EventLoop,
    filters: Vec<String>,
    acks: mpsc::UnboundedReceiver<AckToken>,
    acker: Acker,
    /// Connections made so far; the current one's number.
    connection: u64,
}

impl MqttSource {
    /// Creates the client. `request_capacity` bounds rumqttc's request channel, which
    /// carries the subscriptions and the disconnect (acknowledgements do not use it:
    /// see [`Acker`]).
    pub fn new(settings: &MqttSettings, request_capacity: usize) -> Self {
        let mut opts = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
        opts.set_keep_alive(settings.keep_alive)
            .set_clean_session(false)
            .set_manual_acks(true)
            // Any payload must arrive so that it can be dead-lettered: a packet above
            // the client's limit breaks the connection, and a persistent session would
            // redeliver it forever, stopping ingest. So the limit is MQTT's own maximum;
            // cap sizes at the broker to bound memory (docs/operations.md).
            .set_max_packet_size(MQTT_MAX_PACKET_BYTES, 1024 * 1024);
        if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
            opts.set_credentials(u, p);
        }
        let (client, eventloop) = AsyncClient::new(opts, request_capacity);
        let (acker, acks) = Acker::channel();
        Self {
            client,
            eventloop,
            filters: settings.filters(),
            acks,
            acker,
            connection: 0,
        }
    }

    /// A handle for acknowledging (and publishing).
    pub fn client(&self) -> AsyncClient {
        self.client.clone()
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
            let network = match self.eventloop.network.as_mut() {
                Some(n) if !failed && token.connection == self.connection => n,
                _ => {
                    dropped += 1;
                    continue;
                }
            };
            let packet = match token.qos {
                0 => continue,
                1 => Packet::PubAck(PubAck::new(token.pkid)),
                // fixahead subscribes with QoS 1, so a broker never delivers QoS 2.
                _ => Packet::PubRec(PubRec::new(token.pkid)),
            };
            if network.write(packet).await.is_err() {
                failed = true;
                dropped += 1;
            } else {
                written += 1;
            }
        }
        if written > 0 {
            if let Some(network) = self.eventloop.network.as_mut() {
                if !failed && network.flush().await.is_err() {
                    failed = true;
                }
            }
            if failed {
                dropped += written;
            } else {
                metrics.acked.fetch_add(written, Relaxed);
            }
        }
        if dropped > 0 {
            metrics.acks_dropped.fetch_add(dropped, Relaxed);
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
                ev = self.eventloop.poll() => ev,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    self.connection += 1;
                    metrics.connects.fetch_add(1, Relaxed);
                    backoff = Duration::from_millis(100);
                    tracing::info!(
                        session_present = ack.session_present,
                        "Connected to MQTT broker"
                    );
                    for f in &self.filters {
                        if let Err(e) = self.client.try_subscribe(f, QoS::AtLeastOnce) {
                            tracing::error!(error = %e, filter = %f, "Subscribe request failed");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        tracing::error!(?ack, "Broker refused a subscription");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    metrics.received.fetch_add(1, Relaxed);
                    if tx.is_none() {
                        // Stopping: leave it unacknowledged; a persistent broker
                        // redelivers it to the next session.
                        continue;
                    }
                    let item = Received::new(publish, self.connection, Timestamp(now_ms()));
                    let handed = match &tx {
                        Some(sender) => self.hand_over(sender, item, &metrics, &stop).await,
                        None => false,
                    };
                    if !handed {
                        tx = None;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    metrics.connection_errors.fetch_add(1, Relaxed);
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
        let _ = self.client.try_disconnect();
        let flush = async {
            loop {
                match self.eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
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

#[cfg(test)]
mod tests {
    use super::*;
    use domain::MessageKind;

    #[test]
    fn parses_mqtt_urls() {
        assert_eq!(
            parse_mqtt_url("mqtt://localhost:1884").unwrap(),
            ("localhost".into(), 1884)
        );
        assert_eq!(
            parse_mqtt_url("mqtt://broker").unwrap(),
            ("broker".into(), 1883)
        );
        assert_eq!(
            parse_mqtt_url("mqtt://[::1]:1883").unwrap(),
            ("::1".into(), 1883)
        );
        for bad in [
            "localhost:1883",
            "http://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtts://h:8883",
        ] {
            assert!(parse_mqtt_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_filter_covers_every_kind_and_shared_groups_prefix_it() {
        let mut s = MqttSettings::new("h", 1);
        assert_eq!(s.filters(), vec!["fixahead/v1/+/+".to_owned()]);
        for kind in MessageKind::ALL {
            assert!(
                kind.filter().starts_with("fixahead/v1/+/"),
                "{}",
                kind.filter()
            );
        }
        s.shared_group = Some("g".into());
        assert_eq!(s.filters(), vec!["$share/g/fixahead/v1/+/+".to_owned()]);
    }
}
