//! A delivery and its acknowledgement: what the source hands the pipeline
//! ([`Received`]), what acknowledging it takes ([`AckToken`]), and the way back to the
//! source ([`Acker`]).

use domain::Timestamp;
use rumqttc::{v5, Publish};
use tokio::sync::mpsc;

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

    /// Wraps an MQTT 5 publish received now. A topic that is not UTF-8 (which the
    /// protocol forbids) is kept lossily, so it still reaches the dead letters.
    pub fn from_v5(
        publish: v5::mqttbytes::v5::Publish,
        connection: u64,
        received_at: Timestamp,
    ) -> Self {
        Self {
            ack: AckToken {
                pkid: publish.pkid,
                qos: publish.qos as u8,
                connection,
            },
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
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
