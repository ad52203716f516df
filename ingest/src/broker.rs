//! The embedded MQTT broker (rumqttd) for the all-in-one mode.
//!
//! rumqttd runs on its own threads with their own runtimes; [`start`] returns once the
//! listener accepts TCP connections. Devices and the ingestor both connect to it over
//! TCP, exactly as they would to an external broker, so the pipeline does not know
//! which one it runs on.
//!
//! Guarantee (see docs/operations.md): rumqttd keeps sessions in memory and dies with
//! the process. It acknowledges a device's QoS 1 publish on receipt, so a crash can lose
//! what it had acknowledged but fixahead had not yet committed: at most one batch
//! interval's worth. Zero loss across crashes needs an external broker with persistence.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::{Error, Result};

/// Settings of the embedded broker.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// Address to listen on for MQTT 3.1.1 clients. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest publish the broker accepts. Larger than the protocol's 16 KiB payload
    /// limit on purpose: oversized payloads must reach ingest to become dead letters.
    pub max_payload_bytes: usize,
    /// Most concurrent client connections.
    pub max_connections: usize,
    /// Username -> password pairs. `None` lets anyone connect.
    pub credentials: Option<HashMap<String, String>>,
}

impl BrokerSettings {
    /// Defaults for `listen`, with anonymous access.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            max_payload_bytes: 1024 * 1024,
            max_connections: 10_000,
            credentials: None,
        }
    }
}

/// A running embedded broker. It stops when the process exits (rumqttd offers no
/// shutdown handle).
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// The address MQTT clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Starts the embedded broker and waits until it accepts connections.
pub fn start(settings: &BrokerSettings) -> Result<EmbeddedBroker> {
    // rumqttd binds inside its own thread and only logs a bind failure, so bind here
    // first to turn "address in use" into an error, and to resolve port 0.
    let addr = {
        let probe = TcpListener::bind(settings.listen)
            .map_err(|e| Error::Broker(format!("cannot listen on {}: {e}", settings.listen)))?;
        probe
            .local_addr()
            .map_err(|e| Error::Broker(format!("local address: {e}")))?
    };

    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: settings.max_payload_bytes,
        max_inflight_count: 1_000,
        auth: settings.credentials.clone(),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "fixahead-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: settings.max_connections,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    };

    let mut broker = Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "Embedded MQTT broker stopped");
            }
        })
        .map_err(|e| Error::Broker(format!("spawning broker thread: {e}")))?;

    let deadline = Instant::now() + Duration::from_secs(10);
    let connect_to = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    loop {
        if TcpStream::connect_timeout(&connect_to, Duration::from_millis(200)).is_ok() {
            tracing::info!(%addr, "Embedded MQTT broker listening");
            return Ok(EmbeddedBroker { addr: connect_to });
        }
        if Instant::now() > deadline {
            return Err(Error::Broker(format!(
                "broker did not start listening on {addr} within 10 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
