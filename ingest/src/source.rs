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

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use domain::wire::TOPIC_PREFIX;
use domain::Timestamp;
use rumqttc::{
    v5, AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, PubAck, PubRec, Publish, QoS,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;
use crate::{Error, Result};

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

/// The MQTT protocol version spoken to the broker; `mqtt.protocol` in the
/// configuration file (`"3.1.1"` or `"5"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Protocol {
    /// MQTT 3.1.1 (the default; every broker speaks it).
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    /// MQTT 5.
    #[serde(rename = "5")]
    V5,
}

impl std::str::FromStr for Protocol {
    type Err = Error;

    /// `3.1.1` or `5`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "3.1.1" => Ok(Self::V311),
            "5" => Ok(Self::V5),
            _ => Err(Error::Mqtt(format!(
                "unknown MQTT protocol version {s:?}: expected 3.1.1 or 5"
            ))),
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V311 => "3.1.1",
            Self::V5 => "5",
        })
    }
}

/// Where and how to connect. Its `Debug` output leaves the password out.
#[derive(Clone)]
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
    /// TLS (`mqtts://`); `None` for plain TCP.
    pub tls: Option<TlsConfig>,
    /// MQTT 3.1.1 or 5.
    pub protocol: Protocol,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("keep_alive", &self.keep_alive)
            .field("shared_group", &self.shared_group)
            .field("tls", &self.tls.is_some())
            .field("protocol", &self.protocol)
            .finish()
    }
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
            tls: None,
            protocol: Protocol::V311,
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
    ///
    /// Besides it, `fixahead/v1/+/cmd/result`: devices' answers to commands
    /// (docs/protocol.md, "Commands"). Their order against telemetry does not matter.
    pub fn filters(&self) -> Vec<String> {
        let all = format!("{TOPIC_PREFIX}+/+");
        let results = domain::MessageKind::CommandResult.filter();
        [all, results]
            .into_iter()
            .map(|f| match &self.shared_group {
                Some(g) => format!("$share/{g}/{f}"),
                None => f,
            })
            .collect()
    }
}

/// The default port of `mqtt://`.
pub const MQTT_PORT: u16 = 1883;
/// The default port of `mqtts://`.
pub const MQTTS_PORT: u16 = 8883;

/// A broker URL: `mqtt://host[:port]` (TCP, port 1883 by default) or
/// `mqtts://host[:port]` (TLS, port 8883 by default). An IPv6 address goes in brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `mqtts://`: connect with TLS.
    pub tls: bool,
}

/// Parses `mqtt://host[:port]` or `mqtts://host[:port]`. Credentials, paths and queries
/// are rejected: the user name and password are settings of their own, kept out of
/// URLs that get logged.
pub fn parse_mqtt_url(url: &str) -> Result<BrokerUrl> {
    let bad = |why: &str| Error::Mqtt(format!("invalid MQTT URL {url:?}: {why}"));
    let (rest, tls) = if let Some(rest) = url.strip_prefix("mqtt://") {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix("mqtts://") {
        (rest, true)
    } else {
        return Err(bad("expected mqtt://host[:port] or mqtts://host[:port]"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
        return Err(bad(
            "expected mqtt://host[:port] or mqtts://host[:port], with no path or credentials",
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address needs its closing ']'"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':' after ']'"))?,
                ),
            ),
        }
    } else {
        match rest.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err(bad("an IPv6 address goes in brackets: [::1]:1883"))
            }
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("missing or malformed host"));
    }
    let port = match port {
        None if tls => MQTTS_PORT,
        None => MQTT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("the port must be a number 1-65535"))?,
    };
    if tls {
        // rumqttc connects to `{host}:{port}`, which an IPv6 literal cannot be, and
        // checks the certificate against the host as written.
        if host.contains(':') {
            return Err(bad(
                "mqtts:// to an IPv6 address is not supported (the MQTT client cannot \
                 connect to one); use a host name",
            ));
        }
        rustls::pki_types::ServerName::try_from(host)
            .map_err(|_| bad("the host is neither a DNS name nor an IP address"))?;
    }
    Ok(BrokerUrl {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// Files that configure TLS for `mqtts://`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CA certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to the broker (mutual TLS); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// True when no file is set.
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }
}

/// A TLS client configuration for rumqttc: rustls with the ring provider, TLS 1.2 and
/// 1.3, the server's certificate checked against the trusted roots and the URL's host.
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ClientConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig { .. }")
    }
}

impl TlsConfig {
    /// Reads the files. Trusts the CA certificates of `ca_file`, or, without one, the
    /// operating system's (rustls-native-certs: `/etc/ssl/certs` on Debian, or
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR`). A file that cannot be read or holds no usable
    /// certificate or key is an error here, at start-up, not at each connection attempt.
    pub fn load(files: &TlsFiles) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        match &files.ca_file {
            Some(path) => {
                for cert in read_certs(path, "CA file")? {
                    roots.add(cert).map_err(|e| {
                        Error::Tls(format!(
                            "CA file {}: not a usable CA certificate: {e}",
                            path.display()
                        ))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                    return Err(Error::Tls(format!(
                        "no CA certificates found in the system's store ({}); give a CA file \
                         (--mqtt-ca, mqtt.ca_file)",
                        if errors.is_empty() {
                            "it is empty".to_owned()
                        } else {
                            errors.join("; ")
                        }
                    )));
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots);
        let config = match (&files.client_cert, &files.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "client certificate")?;
                let key_der = read_key(key)?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    Error::Tls(format!(
                        "client certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?
            }
            _ => {
                return Err(Error::Tls(
                    "a client certificate needs its key and a key its certificate \
                     (--mqtt-client-cert with --mqtt-client-key)"
                        .into(),
                ))
            }
        };
        Ok(Self(Arc::new(config)))
    }

    /// The configuration as rumqttc takes it.
    pub fn rumqttc(&self) -> rumqttc::TlsConfiguration {
        rumqttc::TlsConfiguration::Rustls(self.0.clone())
    }

    /// A TLS transport for `MqttOptions::set_transport` (v3 and v5 alike).
    pub fn transport(&self) -> rumqttc::Transport {
        rumqttc::Transport::tls_with_config(self.rumqttc())
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Tls(format!("{what} {}: {e}", path.display())))
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let pem = read_pem(path, what)?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("{what} {}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{what} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let pem = read_pem(path, "client key")?;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        Error::Tls(format!(
            "client key {}: no usable PEM private key: {e}",
            path.display()
        ))
    })
}

/// Where to connect and how: a broker URL with, for `mqtts://`, its TLS configuration.
/// The one place the binary's commands (run, simulate, replay, bench) turn
/// `--mqtt-url` and the TLS files into a connection target.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Host name or IP address as rumqttc takes it: an IPv6 address in brackets, since
    /// rumqttc connects to `{host}:{port}`.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `Some` for `mqtts://`.
    pub tls: Option<TlsConfig>,
}

impl Endpoint {
    /// Parses `url` and, for `mqtts://`, loads the TLS files. TLS files with an
    /// `mqtt://` URL are an error rather than silently unused.
    pub fn resolve(url: &str, files: &TlsFiles) -> Result<Self> {
        let parsed = parse_mqtt_url(url)?;
        let tls = if parsed.tls {
            Some(TlsConfig::load(files)?)
        } else if !files.is_empty() {
            return Err(Error::Tls(format!(
                "a CA file or client certificate is set but {url:?} is not mqtts://"
            )));
        } else {
            None
        };
        let host = if parsed.host.contains(':') {
            format!("[{}]", parsed.host)
        } else {
            parsed.host
        };
        Ok(Self {
            host,
            port: parsed.port,
            tls,
        })
    }

    /// The rumqttc transport: TCP, or TLS for `mqtts://`.
    pub fn transport(&self) -> rumqttc::Transport {
        match &self.tls {
            Some(t) => t.transport(),
            None => rumqttc::Transport::Tcp,
        }
    }
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

impl Received {
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

/// A connected-on-demand MQTT source.
pub struct MqttSource {
    conn: Connection,
    filters: Vec<String>,
    acks: mpsc::UnboundedReceiver<AckToken>,
    acker: Acker,
    /// Connections made so far; the current one's number.
    connection: u64,
}

/// One rumqttc connection, MQTT 3.1.1 or 5. What differs between the two versions
/// (options, event types, acknowledgements) stays in here and in [`Acker`]; the loop in
/// [`MqttSource::run`] is the same for both.
/// The event loops are boxed: they are large and of different sizes.
enum Connection {
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
enum SourceEvent {
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
    /// The next event; a delivery is tagged with `connection`, the current one.
    async fn poll(&mut self, connection: u64) -> std::result::Result<SourceEvent, String> {
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

    fn try_subscribe(&self, filter: &str) -> std::result::Result<(), String> {
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
    /// not through rumqttc's request channel ([`Acker`] says why); the caller flushes.
    /// MQTT 5's event loop does not expose its connection, so there the request channel
    /// carries it: it cannot fill there, because the broker keeps at most
    /// [`MQTT5_RECEIVE_MAXIMUM`] deliveries unacknowledged (the receive maximum is
    /// protocol-level flow control in MQTT 5, which 3.1.1 lacks) and the channel is
    /// larger than that.
    async fn write_ack(&mut self, token: AckToken) -> bool {
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
    async fn flush_acks(&mut self) -> bool {
        match self {
            Self::V311 { eventloop, .. } => match eventloop.network.as_mut() {
                Some(network) => network.flush().await.is_ok(),
                None => false,
            },
            Self::V5 { .. } => true,
        }
    }

    fn try_disconnect(&self) {
        let _ = match self {
            Self::V311 { client, .. } => client.try_disconnect().map_err(|e| e.to_string()),
            Self::V5 { client, .. } => client.try_disconnect().map_err(|e| e.to_string()),
        };
    }
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
        let transport = match &settings.tls {
            Some(tls) => tls.transport(),
            None => rumqttc::Transport::Tcp,
        };
        let conn = match settings.protocol {
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
        };
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
                ev = self.conn.poll(self.connection) => ev,
            };
            match event {
                Ok(SourceEvent::ConnAck { session_present }) => {
                    self.connection += 1;
                    metrics.connects.fetch_add(1, Relaxed);
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
                    metrics.received.fetch_add(1, Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use domain::MessageKind;

    fn url(host: &str, port: u16, tls: bool) -> BrokerUrl {
        BrokerUrl {
            host: host.into(),
            port,
            tls,
        }
    }

    #[test]
    fn parses_mqtt_and_mqtts_urls_with_default_ports() {
        for (text, want) in [
            ("mqtt://localhost:1884", url("localhost", 1884, false)),
            ("mqtt://broker", url("broker", 1883, false)),
            ("mqtt://broker/", url("broker", 1883, false)),
            ("mqtt://10.0.0.1:1", url("10.0.0.1", 1, false)),
            ("mqtt://[::1]:1883", url("::1", 1883, false)),
            ("mqtt://[::1]", url("::1", 1883, false)),
            ("mqtt://[fe80::1]:2000", url("fe80::1", 2000, false)),
            ("mqtts://broker", url("broker", 8883, true)),
            (
                "mqtts://broker.example.com:8884",
                url("broker.example.com", 8884, true),
            ),
            ("mqtts://127.0.0.1:9000/", url("127.0.0.1", 9000, true)),
        ] {
            assert_eq!(parse_mqtt_url(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_mqtt_urls() {
        for bad in [
            "localhost:1883",
            "http://x",
            "tcp://x",
            "ssl://x",
            "MQTT://x",
            "mqtt://",
            "mqtts://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://h:",
            "mqtt://h:65536",
            "mqtt://:1883",
            "mqtt://u:p@h:1883",
            "mqtts://u@h",
            "mqtt://h/topic",
            "mqtt://h?x=1",
            "mqtt://::1",
            "mqtt://::1:1883",
            "mqtt://[::1",
            "mqtt://[::1]x",
            "mqtt://[nope]:1883",
            "mqtt://h st:1",
            "mqtts://[::1]:8883",
            "mqtts://bad_name!:8883",
        ] {
            assert!(parse_mqtt_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_files_need_mqtts_and_readable_pem() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let files = TlsFiles {
            ca_file: Some(ca.clone()),
            ..TlsFiles::default()
        };
        // A CA file with mqtt:// is a mistake, not silently unused.
        let e = Endpoint::resolve("mqtt://h", &files).unwrap_err();
        assert!(e.to_string().contains("not mqtts://"), "{e}");
        // Missing, empty and garbage files are clear errors, never a panic.
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        std::fs::write(&ca, "").unwrap();
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("not a usable CA certificate"), "{e}");
        // A certificate without its key.
        let files = TlsFiles {
            client_cert: Some(ca.clone()),
            ..TlsFiles::default()
        };
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("needs its key"), "{e}");
        // rumqttc connects to `{host}:{port}`: an IPv6 address keeps its brackets.
        let v6 = Endpoint::resolve("mqtt://[::1]:1884", &TlsFiles::default()).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[::1]", 1884));
        // Plain TCP needs nothing.
        let plain = Endpoint::resolve("mqtt://h", &TlsFiles::default()).unwrap();
        assert!(plain.tls.is_none());
        assert!(matches!(plain.transport(), rumqttc::Transport::Tcp));
    }

    #[test]
    fn protocol_versions_parse() {
        assert_eq!("3.1.1".parse::<Protocol>().unwrap(), Protocol::V311);
        assert_eq!("5".parse::<Protocol>().unwrap(), Protocol::V5);
        assert_eq!(Protocol::default(), Protocol::V311);
        for bad in ["", "3", "4", "5.0", "v5", "3.1"] {
            assert!(bad.parse::<Protocol>().is_err(), "{bad}");
        }
        assert_eq!(Protocol::V5.to_string(), "5");
    }

    #[test]
    fn settings_debug_never_shows_the_password() {
        let mut s = MqttSettings::new("h", 1);
        s.username = Some("user".into());
        s.password = Some("hunter2".into());
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("user"), "{text}");
    }

    #[test]
    fn one_filter_covers_every_kind_and_shared_groups_prefix_it() {
        let mut s = MqttSettings::new("h", 1);
        assert_eq!(
            s.filters(),
            vec![
                "fixahead/v1/+/+".to_owned(),
                "fixahead/v1/+/cmd/result".to_owned()
            ]
        );
        for kind in MessageKind::ALL {
            assert!(
                kind.filter().starts_with("fixahead/v1/+/"),
                "{}",
                kind.filter()
            );
        }
        s.shared_group = Some("g".into());
        assert_eq!(
            s.filters(),
            vec![
                "$share/g/fixahead/v1/+/+".to_owned(),
                "$share/g/fixahead/v1/+/cmd/result".to_owned()
            ]
        );
    }
}
