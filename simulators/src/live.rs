//! Live publishing: a fleet in scaled real time, over one MQTT connection.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::{MessageKind, Timestamp};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{Error, Fleet, Result, SimEvent};

/// Largest MQTT packet accepted or sent, both ways.
const MAX_PACKET_BYTES: usize = 64 * 1024;
/// QoS 1 publishes awaiting their PUBACK.
const INFLIGHT: u16 = 200;
/// Capacity of the client's request channel; publishing waits when it is full.
const REQUEST_CAPACITY: usize = 4096;
/// How often simulated time advances.
const TICK: Duration = Duration::from_millis(100);
/// Reconnect backoff bounds.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long to wait at the end for outstanding acknowledgements.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Where and how fast to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883 for plain MQTT).
    pub port: u16,
    /// MQTT client id of the gateway connection; must be non-empty (the session is
    /// persistent so unacknowledged publishes survive a reconnect).
    pub client_id: String,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password (used only with a user name).
    pub password: Option<String>,
    /// Simulated seconds per wall-clock second (1 = real time, 3600 = an hour a second).
    pub speed: f64,
    /// If set, ground-truth events are appended to this file as `events.jsonl` lines.
    pub ground_truth_path: Option<PathBuf>,
    /// Stop after this much wall-clock time.
    pub max_duration: Option<Duration>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 1883,
            client_id: "fixahead-simulator".into(),
            username: None,
            password: None,
            speed: 1.0,
            ground_truth_path: None,
            max_duration: None,
        }
    }
}

impl LiveConfig {
    /// A default config for `mqtt://[user[:password]@]host[:port]` (also `tcp://`; the
    /// port defaults to 1883). TLS (`mqtts://`) is not supported yet.
    pub fn from_mqtt_url(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected mqtt://host[:port]"))?;
        match scheme {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" => return Err(bad("TLS is not supported yet; use mqtt://")),
            _ => return Err(bad("the scheme must be mqtt:// or tcp://")),
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        let port = match port {
            None => 1883,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("the port must be 1-65535"))?,
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (Some(user.to_owned()), Some(pass.to_owned())),
                None => (Some(u.to_owned()), None),
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            username,
            password,
            ..Self::default()
        })
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidLiveConfig(msg));
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return bad(format!(
                "speed must be a positive number, got {}",
                self.speed
            ));
        }
        if self.client_id.is_empty() {
            return bad("client_id must not be empty".into());
        }
        if self.host.is_empty() {
            return bad("host must not be empty".into());
        }
        Ok(())
    }

    fn mqtt_options(&self) -> MqttOptions {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
            .set_inflight(INFLIGHT)
            .set_request_channel_capacity(REQUEST_CAPACITY)
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(false);
        if let Some(user) = &self.username {
            options.set_credentials(user, self.password.clone().unwrap_or_default());
        }
        options
    }
}

/// What [`publish_live`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSummary {
    /// Publishes handed to the MQTT client (status, telemetry and fault).
    pub published: u64,
    /// Telemetry messages among them.
    pub telemetry: u64,
    /// Fault messages among them.
    pub faults: u64,
    /// Retained `online` status messages among them (one per device).
    pub status: u64,
    /// PUBACKs received from the broker.
    pub acked: u64,
    /// Ground-truth events (failures and repairs) that happened.
    pub ground_truth: u64,
    /// Simulated time reached.
    pub simulated_until: Timestamp,
}

/// Publishes `fleet` to an MQTT broker in scaled real time until `cancel` fires or
/// `config.max_duration` passes.
///
/// The whole fleet shares one MQTT connection, like a gateway. It first publishes a
/// retained `{"state":"online","ts":...}` on `fixahead/v1/{device_id}/status` for every
/// device, then every telemetry and fault message with QoS 1 on its topic. Per-device
/// connections, each with an `offline` last will, come later.
///
/// Simulated time is `max(fleet start, where the fleet stopped) + wall time elapsed *
/// speed`, advanced every 100 ms; set [`crate::FleetConfig::start`] to the current time
/// for message timestamps close to the wall clock. The MQTT event loop runs in its own
/// task and reconnects with backoff; while the broker is away, publishing waits once
/// the client's request queue is full. At the end, outstanding acknowledgements get a
/// few seconds before the connection is closed.
pub async fn publish_live(
    config: LiveConfig,
    mut fleet: Fleet,
    cancel: CancellationToken,
) -> Result<LiveSummary> {
    config.validate()?;
    let mut ground_truth = match &config.ground_truth_path {
        Some(path) => Some(open_append(path)?),
        None => None,
    };
    let (client, eventloop) = AsyncClient::new(config.mqtt_options(), REQUEST_CAPACITY);
    let link = Arc::new(Link::default());
    let stop_loop = CancellationToken::new();
    let driver = tokio::spawn(drive(eventloop, stop_loop.clone(), Arc::clone(&link)));
    info!(
        host = %config.host,
        port = config.port,
        devices = fleet.len(),
        speed = config.speed,
        "Publishing simulated fleet"
    );

    let mut summary = LiveSummary {
        published: 0,
        telemetry: 0,
        faults: 0,
        status: 0,
        acked: 0,
        ground_truth: 0,
        simulated_until: fleet.now(),
    };
    let result = produce(
        &config,
        &mut fleet,
        &client,
        ground_truth.as_mut(),
        &cancel,
        &mut summary,
    )
    .await;

    // Give outstanding publishes a moment to be acknowledged, then close cleanly.
    let drain_until = Instant::now() + DRAIN_TIMEOUT;
    while link.connected.load(Ordering::Relaxed)
        && link.acked.load(Ordering::Relaxed) < summary.published
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while !driver.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
    stop_loop.cancel();
    let _ = driver.await;
    summary.acked = link.acked.load(Ordering::Relaxed);
    summary.simulated_until = fleet.now();
    info!(
        published = summary.published,
        acked = summary.acked,
        ground_truth = summary.ground_truth,
        simulated_until = %summary.simulated_until,
        "Stopped publishing"
    );
    result.map(|()| summary)
}

async fn produce(
    config: &LiveConfig,
    fleet: &mut Fleet,
    client: &AsyncClient,
    mut ground_truth: Option<&mut GroundTruthFile>,
    cancel: &CancellationToken,
    summary: &mut LiveSummary,
) -> Result<()> {
    let base = fleet.config().start.max(fleet.now());
    for info in fleet.devices() {
        let payload = serde_json::json!({"state": "online", "ts": base.to_rfc3339()});
        let topic = MessageKind::Status.topic(&info.device_id);
        if !publish(
            client,
            cancel,
            topic,
            true,
            payload.to_string().into_bytes(),
        )
        .await?
        {
            return Ok(());
        }
        summary.published += 1;
        summary.status += 1;
    }

    let started = Instant::now();
    let deadline = config.max_duration.map(|d| started + d);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let wall = match deadline {
            Some(d) if now >= d => d - started,
            _ => now - started,
        };
        let sim_ms = (wall.as_secs_f64() * config.speed * 1000.0) as i64;
        let until = Timestamp(base.millis().saturating_add(sim_ms));
        for event in fleet.advance(until) {
            match event {
                SimEvent::Message(msg) => {
                    let bytes = msg.payload_bytes();
                    if !publish(client, cancel, msg.topic(), false, bytes).await? {
                        return Ok(());
                    }
                    summary.published += 1;
                    match msg.kind {
                        MessageKind::Telemetry => summary.telemetry += 1,
                        _ => summary.faults += 1,
                    }
                }
                SimEvent::GroundTruth(truth) => {
                    summary.ground_truth += 1;
                    debug!(device_id = %truth.device_id, event = truth.event.as_str(), component = %truth.component, "Ground truth");
                    if let Some(file) = ground_truth.as_deref_mut() {
                        file.append(&truth)?;
                    }
                }
            }
        }
        if let Some(file) = ground_truth.as_deref_mut() {
            file.flush()?;
        }
        if deadline.is_some_and(|d| now >= d) {
            return Ok(());
        }
    }
}

/// Publishes with QoS 1; `Ok(false)` if cancelled while waiting for queue space.
async fn publish(
    client: &AsyncClient,
    cancel: &CancellationToken,
    topic: String,
    retain: bool,
    payload: Vec<u8>,
) -> Result<bool> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(false),
        r = client.publish(topic, QoS::AtLeastOnce, retain, payload) => r.map(|()| true).map_err(Error::from),
    }
}

/// What the event-loop task reports to the publisher.
#[derive(Default)]
struct Link {
    connected: AtomicBool,
    acked: AtomicU64,
}

/// Polls the MQTT event loop until stopped, reconnecting with backoff.
async fn drive(mut eventloop: EventLoop, stop: CancellationToken, link: Arc<Link>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                info!("Connected to MQTT broker");
                link.connected.store(true, Ordering::Relaxed);
                backoff = MIN_BACKOFF;
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                link.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(error) => {
                link.connected.store(false, Ordering::Relaxed);
                warn!(%error, retry_in_ms = backoff.as_millis() as u64, "MQTT connection failed; reconnecting");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

struct GroundTruthFile {
    path: PathBuf,
    out: BufWriter<File>,
}

fn open_append(path: &Path) -> Result<GroundTruthFile> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    Ok(GroundTruthFile {
        path: path.to_owned(),
        out: BufWriter::new(file),
    })
}

impl GroundTruthFile {
    fn append(&mut self, event: &crate::GroundTruthEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mqtt_urls() {
        let c = LiveConfig::from_mqtt_url("mqtt://localhost:1884").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("localhost", 1884));
        let c = LiveConfig::from_mqtt_url("tcp://u:p@broker/").unwrap();
        assert_eq!(c.port, 1883);
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p"));
        let c = LiveConfig::from_mqtt_url("mqtt://[::1]:1900").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 1900));
        for bad in [
            "localhost:1883",
            "mqtts://h",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "http://h",
        ] {
            assert!(LiveConfig::from_mqtt_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn stops_on_cancel_without_a_broker() {
        // Port 1 on localhost refuses connections: the event loop keeps retrying, and
        // cancellation still ends the run promptly.
        let fleet = Fleet::new(
            crate::FleetConfig {
                devices: 2,
                ..crate::FleetConfig::default()
            },
            &domain::ProfileSet::builtin(),
        )
        .unwrap();
        let config = LiveConfig {
            port: 1,
            speed: 3600.0,
            ..LiveConfig::from_mqtt_url("mqtt://127.0.0.1:1").unwrap()
        };
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stopper.cancel();
        });
        let summary =
            tokio::time::timeout(Duration::from_secs(10), publish_live(config, fleet, cancel))
                .await
                .expect("publish_live ends after cancel")
                .unwrap();
        assert_eq!(summary.status, 2);
        assert_eq!(summary.acked, 0);
    }

    /// Starts an embedded rumqttd on a free local port.
    fn start_broker() -> u16 {
        use std::collections::HashMap;
        use std::net::{SocketAddr, TcpListener, TcpStream};

        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let server = rumqttd::ServerSettings {
            name: "test".into(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections: rumqttd::ConnectionSettings {
                connection_timeout_ms: 60_000,
                max_payload_size: 256 * 1024,
                max_inflight_count: 1_000,
                auth: None,
                external_auth: None,
                dynamic_filters: true,
            },
        };
        let config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 100,
                max_outgoing_packet_count: 200,
                max_segment_size: 100 * 1024 * 1024,
                max_segment_count: 10,
                ..rumqttd::RouterConfig::default()
            },
            v4: Some(HashMap::from([("1".to_string(), server)])),
            ..rumqttd::Config::default()
        };
        let mut broker = rumqttd::Broker::new(config);
        std::thread::spawn(move || {
            if let Err(e) = broker.start() {
                eprintln!("test broker stopped: {e}");
            }
        });
        for _ in 0..500 {
            if TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], addr.port()))).is_ok() {
                return addr.port();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("broker did not start");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_valid_messages_to_a_broker() {
        let port = start_broker();
        let (sub, mut sub_loop) = AsyncClient::new(
            {
                let mut o = MqttOptions::new("test-sub", "127.0.0.1", port);
                o.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
                o
            },
            100,
        );
        sub.subscribe("fixahead/v1/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = sub_loop.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = event {
                    let _ = tx.send((p.topic, p.payload.to_vec()));
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;

        let fleet = Fleet::new(
            crate::FleetConfig {
                devices: 6,
                failure_rate_per_year: 20.0,
                ..crate::FleetConfig::default()
            },
            &domain::ProfileSet::builtin(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let truth_path = dir.path().join("events.jsonl");
        let config = LiveConfig {
            port,
            client_id: "test-sim".into(),
            speed: 2.0 * 86_400.0, // two simulated days per second
            ground_truth_path: Some(truth_path.clone()),
            max_duration: Some(Duration::from_millis(1500)),
            ..LiveConfig::default()
        };
        let summary = publish_live(config, fleet, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(summary.status, 6);
        assert!(summary.telemetry > 100, "{summary:?}");
        assert_eq!(summary.acked, summary.published, "{summary:?}");

        let profiles = domain::ProfileSet::builtin();
        let mut received = 0;
        while received < summary.published {
            let (topic, payload) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("every publish arrives")
                .unwrap();
            domain::decode(&topic, &payload, &profiles).unwrap_or_else(|r| panic!("{topic}: {r}"));
            received += 1;
        }
        let lines = std::fs::read_to_string(truth_path).unwrap().lines().count();
        assert_eq!(lines as u64, summary.ground_truth);
    }
}
