//! The MQTT source: one rumqttc connection with QoS 1 subscriptions, a persistent
//! session (`clean_session = false`) and manual acknowledgements.
//!
//! The source never acknowledges anything itself. It hands every publish to the
//! pipeline through a bounded channel; when that channel is full it stops polling the
//! broker, which is how backpressure reaches the devices (invariant 8). The pipeline
//! acknowledges through an [`Acker`] after the commit, and an acknowledgement never
//! waits: see [`Acker::try_ack`] for why that matters.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use domain::wire::TOPIC_PREFIX;
use domain::Timestamp;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS};
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
    /// Wraps a publish received now.
    pub fn new(publish: Publish, received_at: Timestamp) -> Self {
        Self {
            ack: AckToken {
                pkid: publish.pkid,
                qos: publish.qos as u8,
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
}

/// Why an acknowledgement was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckRefused {
    /// The connection task's request channel is full, or the task is gone. Both look
    /// the same from here; the caller keeps the token and tries again later.
    Busy,
}

/// Acknowledges deliveries on the source's connection.
#[derive(Clone)]
pub struct Acker {
    client: AsyncClient,
}

impl Acker {
    /// Acknowledges through `client` (normally [`MqttSource::acker`]).
    pub fn new(client: AsyncClient) -> Self {
        Self { client }
    }

    /// Queues the acknowledgement of `token` without waiting.
    ///
    /// Never waiting is what keeps ingest from stalling under a backlog. rumqttc's event
    /// loop hands out every publish it has buffered before it takes a request from its
    /// channel, and takes one request per poll, so under a backlog acknowledgements
    /// queue up faster than they leave and the channel fills. A writer that waited for
    /// room there would stop draining the source's queue; the source, waiting on that
    /// full queue, would stop polling; and polling is the only thing that empties the
    /// request channel. Found with Mosquitto and more than ~2,600 messages waiting
    /// (`fixahead bench ingest`); `tests/it/crash.rs` drains a larger backlog.
    pub fn try_ack(&self, token: AckToken) -> std::result::Result<(), AckRefused> {
        let qos = match token.qos {
            0 => return Ok(()),
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        let mut stub = Publish::new(String::new(), qos, Vec::new());
        stub.pkid = token.pkid;
        self.client.try_ack(&stub).map_err(|_| AckRefused::Busy)
    }
}

/// A connected-on-demand MQTT source.
pub struct MqttSource {
    client: AsyncClient,
    eventloop: EventLoop,
    filters: Vec<String>,
}

impl MqttSource {
    /// Creates the client. `request_capacity` bounds rumqttc's request channel, through
    /// which acknowledgements travel. Acknowledging never waits on it ([`Acker::try_ack`]),
    /// so its size only decides how many acknowledgements queue there rather than in the
    /// pipeline's own bounded backlog.
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
        Self {
            client,
            eventloop,
            filters: settings.filters(),
        }
    }

    /// A handle for acknowledging (and publishing).
    pub fn client(&self) -> AsyncClient {
        self.client.clone()
    }

    /// A handle for acknowledging deliveries.
    pub fn acker(&self) -> Acker {
        Acker::new(self.client.clone())
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
        loop {
            let event = tokio::select! {
                biased;
                _ = drained.cancelled() => break,
                // Stopping: close the channel so the pipeline finishes its last batch,
                // but keep polling so its acknowledgements still reach the broker.
                _ = stop.cancelled(), if tx.is_some() => {
                    tx = None;
                    continue;
                }
                ev = self.eventloop.poll() => ev,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
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
                    let Some(sender) = &tx else {
                        // Stopping: leave it unacknowledged; a persistent broker
                        // redelivers it to the next session.
                        continue;
                    };
                    let item = Received::new(publish, Timestamp(now_ms()));
                    tokio::select! {
                        res = sender.send(item) => if res.is_err() { tx = None; },
                        _ = stop.cancelled() => { tx = None; }
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
