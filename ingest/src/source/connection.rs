//! One rumqttc connection, MQTT 3.1.1 or 5, behind one interface for the source loop.

use domain::Timestamp;
use rumqttc::{
    v5, AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, PubAck, PubRec, QoS,
};

use super::{now_ms, AckToken, MqttSettings, Protocol, Received};

/// The largest packet MQTT can encode (the remaining length is at most 268,435,455).
pub const MQTT_MAX_PACKET_BYTES: usize = 268_435_455;

/// The session expiry interval fixahead asks for with MQTT 5, in seconds: `u32::MAX`,
/// which MQTT 5 defines as "never expires", like a 3.1.1 session with
/// `clean_session = false`. A broker may cap it (EMQX: `session_expiry_interval`,
/// 2 hours by default; Mosquitto: `persistent_client_expiration`).
pub const MQTT5_SESSION_EXPIRY_S: u32 = u32::MAX;

/// How many unacknowledged QoS 1 messages fixahead lets an MQTT 5 broker send it (the
/// CONNECT's receive maximum); the embedded broker's window is the same size.
pub const MQTT5_RECEIVE_MAXIMUM: u16 = 1000;

/// One rumqttc connection, MQTT 3.1.1 or 5. What differs between the two versions
/// (options, event types, acknowledgements) stays in here and in
/// [`Acker`](super::Acker); the loop in [`MqttSource::run`](super::MqttSource::run) is
/// the same for both.
/// The event loops are boxed: they are large and of different sizes.
pub(super) enum Connection {
    V311 {
        client: AsyncClient,
        eventloop: Box<EventLoop>,
    },
    V5 {
        client: v5::AsyncClient,
        eventloop: Box<v5::EventLoop>,
    },
}

/// What the source loop needs to know of a connection event, whatever the version.
pub(super) enum SourceEvent {
    /// Connected; the broker did or did not still hold the session.
    ConnAck { session_present: bool },
    /// The broker refused a subscription (its SUBACK, for the log).
    SubscribeRefused(String),
    /// A delivery.
    Publish(Received),
    /// Our DISCONNECT went out.
    Disconnected,
    /// Anything else (acknowledgements, pings).
    Other,
}

impl Connection {
    /// The client and its event loop for `settings.protocol`, with the options
    /// [`MqttSource::new`](super::MqttSource::new) describes.
    pub(super) fn new(settings: &MqttSettings, request_capacity: usize) -> Self {
        let transport = settings.transport();
        match settings.protocol {
            Protocol::V311 => {
                let mut opts = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
                opts.set_keep_alive(settings.keep_alive)
                    .set_clean_session(false)
                    .set_manual_acks(true)
                    // Any payload must arrive so that it can be dead-lettered: a packet
                    // above the client's limit breaks the connection, and a persistent
                    // session would redeliver it forever, stopping ingest. So the limit
                    // is MQTT's own maximum; cap sizes at the broker to bound memory
                    // (docs/operations.md).
                    .set_max_packet_size(MQTT_MAX_PACKET_BYTES, 1024 * 1024)
                    .set_transport(transport);
                if let Some(u) = &settings.username {
                    opts.set_credentials(u, settings.password.as_deref().unwrap_or_default());
                }
                let (client, eventloop) = AsyncClient::new(opts, request_capacity);
                Connection::V311 {
                    client,
                    eventloop: Box::new(eventloop),
                }
            }
            Protocol::V5 => {
                let mut opts =
                    v5::MqttOptions::new(&settings.client_id, &settings.host, settings.port);
                opts.set_keep_alive(settings.keep_alive)
                    .set_clean_start(false)
                    .set_session_expiry_interval(Some(MQTT5_SESSION_EXPIRY_S))
                    .set_receive_maximum(Some(MQTT5_RECEIVE_MAXIMUM))
                    .set_manual_acks(true)
                    // As above; with MQTT 5 the limit is also announced to the broker,
                    // which then drops larger messages for this session instead.
                    .set_max_packet_size(Some(MQTT_MAX_PACKET_BYTES as u32))
                    .set_transport(transport);
                if let Some(u) = &settings.username {
                    opts.set_credentials(u, settings.password.as_deref().unwrap_or_default());
                }
                let (client, eventloop) = v5::AsyncClient::new(opts, request_capacity);
                Connection::V5 {
                    client,
                    eventloop: Box::new(eventloop),
                }
            }
        }
    }

    /// The next event; a delivery is tagged with `connection`, the current one.
    pub(super) async fn poll(
        &mut self,
        connection: u64,
    ) -> std::result::Result<SourceEvent, String> {
        match self {
            Self::V311 { eventloop, .. } => match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => Ok(SourceEvent::ConnAck {
                    session_present: ack.session_present,
                }),
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        Ok(SourceEvent::SubscribeRefused(format!("{ack:?}")))
                    } else {
                        Ok(SourceEvent::Other)
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => Ok(SourceEvent::Publish(
                    Received::new(publish, connection, Timestamp(now_ms())),
                )),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => Ok(SourceEvent::Disconnected),
                Ok(_) => Ok(SourceEvent::Other),
                Err(e) => Err(e.to_string()),
            },
            Self::V5 { eventloop, .. } => {
                use v5::mqttbytes::v5::{Packet as Packet5, SubscribeReasonCode as Code5};
                match eventloop.poll().await {
                    Ok(v5::Event::Incoming(Packet5::ConnAck(ack))) => Ok(SourceEvent::ConnAck {
                        session_present: ack.session_present,
                    }),
                    Ok(v5::Event::Incoming(Packet5::SubAck(ack))) => {
                        if ack
                            .return_codes
                            .iter()
                            .any(|c| !matches!(c, Code5::Success(_)))
                        {
                            Ok(SourceEvent::SubscribeRefused(format!("{ack:?}")))
                        } else {
                            Ok(SourceEvent::Other)
                        }
                    }
                    Ok(v5::Event::Incoming(Packet5::Publish(publish))) => Ok(SourceEvent::Publish(
                        Received::from_v5(publish, connection, Timestamp(now_ms())),
                    )),
                    Ok(v5::Event::Outgoing(Outgoing::Disconnect)) => Ok(SourceEvent::Disconnected),
                    Ok(_) => Ok(SourceEvent::Other),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    pub(super) fn try_subscribe(&self, filter: &str) -> std::result::Result<(), String> {
        match self {
            Self::V311 { client, .. } => client
                .try_subscribe(filter, QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
            Self::V5 { client, .. } => client
                .try_subscribe(filter, v5::mqttbytes::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
        }
    }

    /// Writes the acknowledgement of `token`; false if it could not be written.
    ///
    /// MQTT 3.1.1 writes straight on the connection (rumqttc's event loop exposes it),
    /// not through rumqttc's request channel ([`Acker`](super::Acker) says why); the
    /// caller flushes. MQTT 5's event loop does not expose its connection, so there the
    /// request channel carries it: it cannot fill there, because the broker keeps at most
    /// [`MQTT5_RECEIVE_MAXIMUM`] deliveries unacknowledged (the receive maximum is
    /// protocol-level flow control in MQTT 5, which 3.1.1 lacks) and the channel is
    /// larger than that.
    pub(super) async fn write_ack(&mut self, token: AckToken) -> bool {
        match self {
            Self::V311 { eventloop, .. } => {
                let Some(network) = eventloop.network.as_mut() else {
                    return false;
                };
                let packet = match token.qos {
                    0 => return true,
                    1 => Packet::PubAck(PubAck::new(token.pkid)),
                    // fixahead subscribes with QoS 1, so a broker never delivers QoS 2.
                    _ => Packet::PubRec(PubRec::new(token.pkid)),
                };
                network.write(packet).await.is_ok()
            }
            Self::V5 { client, .. } => {
                use v5::mqttbytes::QoS as QoS5;
                let qos = match token.qos {
                    0 => return true,
                    1 => QoS5::AtLeastOnce,
                    _ => QoS5::ExactlyOnce,
                };
                let mut stub = v5::mqttbytes::v5::Publish::new("", qos, Vec::new(), None);
                stub.pkid = token.pkid;
                client.try_ack(&stub).is_ok()
            }
        }
    }

    /// Flushes what [`Self::write_ack`] wrote; false on a write error.
    pub(super) async fn flush_acks(&mut self) -> bool {
        match self {
            Self::V311 { eventloop, .. } => match eventloop.network.as_mut() {
                Some(network) => network.flush().await.is_ok(),
                None => false,
            },
            Self::V5 { .. } => true,
        }
    }

    pub(super) fn try_disconnect(&self) {
        let _ = match self {
            Self::V311 { client, .. } => client.try_disconnect().map_err(|e| e.to_string()),
            Self::V5 { client, .. } => client.try_disconnect().map_err(|e| e.to_string()),
        };
    }
}
