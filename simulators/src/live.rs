//! Live publishing: a fleet in scaled real time over one or more MQTT connections,
//! optionally with fault injection ([`crate::InjectConfig`]).
//!
//! The fleet is sharded by device index over [`LiveConfig::connections`] connections
//! (device `i` always uses connection `i % connections`, so per-device order holds),
//! each driven by its own event-loop task. Like a gateway, one connection carries many
//! devices; the broker still sees per-device topics.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::{MessageKind, ProfileSet, Timestamp};
use rumqttc::{
    AsyncClient, ClientError, Event, EventLoop, Outgoing as MqttOutgoing, Packet, QoS, Request,
};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::broker::REQUEST_CAPACITY;
use crate::inject::{count, Class, Injector, Outgoing};
use crate::{
    BrokerTarget, Error, Fleet, FleetConfig, InjectConfig, InjectCounts, Result, SimEvent,
};

/// How often simulated time advances.
const TICK: Duration = Duration::from_millis(100);
/// When publishing falls behind, simulated time advances at most this many ticks'
/// worth per tick, so a backlog cannot grow without bound (simulated time lags instead).
const MAX_STEP_TICKS: f64 = 2.0;
/// Reconnect backoff bounds.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At the end, keep waiting for acknowledgements while they arrive; give up after this
/// long without one.
const DRAIN_STALL: Duration = Duration::from_secs(3);
/// Most MQTT connections one run may open.
pub(crate) const MAX_CONNECTIONS: usize = 10_000;

/// Where and how fast to publish.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// The broker, and the client id of the gateway connection (default
    /// `fixahead-simulator`).
    pub broker: BrokerTarget,
    /// Simulated seconds per wall-clock second (1 = real time, 3600 = an hour a second).
    pub speed: f64,
    /// If set, ground-truth events are appended to this file as `events.jsonl` lines.
    pub ground_truth_path: Option<PathBuf>,
    /// Stop after this much wall-clock time.
    pub max_duration: Option<Duration>,
    /// MQTT connections, 1-10000; device `i` publishes over connection `i % connections`.
    pub connections: usize,
    /// Fault injection (default: none).
    pub inject: InjectConfig,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            broker: BrokerTarget::default(),
            speed: 1.0,
            ground_truth_path: None,
            max_duration: None,
            connections: 1,
            inject: InjectConfig::default(),
        }
    }
}
impl LiveConfig {
    /// A default config for the broker at `url`; see [`BrokerTarget::from_mqtt_url`].
    pub fn from_mqtt_url(url: &str) -> Result<Self> {
        Ok(Self {
            broker: BrokerTarget::from_mqtt_url(url)?,
            ..Self::default()
        })
    }

    fn validate(&self) -> Result<()> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(Error::InvalidLiveConfig(format!(
                "speed must be a positive number, got {}",
                self.speed
            )));
        }
        self.broker.validate()?;
        validate_connections(self.connections)?;
        self.inject.validate()
    }
}

/// Refuses a connection count outside 1-[`MAX_CONNECTIONS`].
pub(crate) fn validate_connections(connections: usize) -> Result<()> {
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        return Err(Error::InvalidLiveConfig(format!(
            "connections must be 1-{MAX_CONNECTIONS}, got {connections}"
        )));
    }
    Ok(())
}

/// What [`publish_live`] did.
///
/// `published` = `status` + `good` + `injected.duplicate` + `injected.dead_letters()`.
/// When every publish was acknowledged (`acked == published`), fixahead stores exactly
/// `good` messages (`telemetry` + `faults`), drops `injected.duplicate` as duplicates
/// and records `expected_dead_letters` (see [`crate::InjectConfig`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveSummary {
    /// Publishes handed to the MQTT client: status, good, duplicate and bad messages,
    /// and answers to commands.
    pub published: u64,
    /// Distinct valid telemetry and fault messages (distinct `(device_id, seq)`),
    /// burst extras included: what fixahead should store.
    pub good: u64,
    /// Good telemetry messages among them.
    pub telemetry: u64,
    /// Good fault messages among them.
    pub faults: u64,
    /// Retained `online` status messages (one per device).
    pub status: u64,
    /// Injected messages by kind.
    pub injected: InjectCounts,
    /// The dead letters the injected bad messages should become, by reason.
    pub expected_dead_letters: std::collections::BTreeMap<String, u64>,
    /// PUBACKs received from the broker.
    pub acked: u64,
    /// Ground-truth events (failures and repairs) that happened.
    pub ground_truth: u64,
    /// Simulated time reached.
    pub simulated_until: Timestamp,
    /// Commands (`fixahead/v1/{id}/cmd`) answered on `.../cmd/result`.
    pub commands_answered: u64,
}

impl LiveSummary {
    fn record(&mut self, class: Class, flags: u8) {
        self.published += 1;
        match class {
            Class::Status => self.status += 1,
            Class::Telemetry => {
                self.good += 1;
                self.telemetry += 1;
            }
            Class::Fault => {
                self.good += 1;
                self.faults += 1;
            }
            Class::Duplicate | Class::Bad(_) => {}
        }
        count(class, flags, &mut self.injected);
    }
}

/// Publishes `fleet` to an MQTT broker in scaled real time until `cancel` fires or
/// `config.max_duration` passes.
///
/// It first publishes a retained `{"state":"online","ts":...}` on
/// `fixahead/v1/{device_id}/status` for every device, then every telemetry and fault
/// message with QoS 1 on its topic, passed through fault injection
/// ([`LiveConfig::inject`]). Devices are spread over [`LiveConfig::connections`] MQTT
/// connections by index; a device always uses the same one, so its messages arrive in
/// the order they were published. Per-device connections with an `offline` last will
/// come later.
///
/// Simulated time is `max(fleet start, where the fleet stopped) + wall time elapsed *
/// speed`, advanced every 100 ms; set [`crate::FleetConfig::start`] to the current time
/// for message timestamps close to the wall clock. If publishing cannot keep up,
/// simulated time advances at most 200 ms * speed per tick and lags behind instead of
/// queueing without bound. Each MQTT event loop runs in its own task and reconnects
/// with backoff; while the broker is away, publishing waits once a client's request
/// queue is full. When `max_duration` passes, messages held by injection are published;
/// then outstanding acknowledgements are awaited (while they keep arriving, giving up
/// after 3 s without one) before the connections close.
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
    let pool = Pool::connect_answering(&config.broker, config.connections);
    let mut injector = Injector::new(config.inject.clone(), fleet.len(), fleet.config().seed);
    info!(
        host = %config.broker.host,
        port = config.broker.port,
        devices = fleet.len(),
        speed = config.speed,
        connections = config.connections,
        inject = config.inject.is_enabled(),
        "Publishing simulated fleet"
    );

    let mut summary = LiveSummary {
        published: 0,
        good: 0,
        telemetry: 0,
        faults: 0,
        status: 0,
        injected: InjectCounts {
            skewed_devices: injector.skewed_devices(),
            ..InjectCounts::default()
        },
        expected_dead_letters: Default::default(),
        acked: 0,
        ground_truth: 0,
        simulated_until: fleet.now(),
        commands_answered: 0,
    };
    let result = produce(
        &config,
        &mut fleet,
        &mut injector,
        &pool,
        ground_truth.as_mut(),
        &cancel,
        &mut summary,
    )
    .await;

    pool.drain(summary.published, DRAIN_STALL, true).await;
    summary.acked = pool.acked();
    pool.close().await;
    summary.simulated_until = fleet.now();
    summary.expected_dead_letters = summary.injected.expected_dead_letters();
    info!(
        published = summary.published,
        good = summary.good,
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
    injector: &mut Injector,
    pool: &Pool,
    mut ground_truth: Option<&mut GroundTruthFile>,
    cancel: &CancellationToken,
    summary: &mut LiveSummary,
) -> Result<()> {
    let mut commands = pool.commands.lock().await;
    let base = fleet.config().start.max(fleet.now());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(fleet.len());
    let status_payload = serde_json::to_vec(&serde_json::json!({
        "state": "online",
        "ts": base.to_rfc3339(),
    }))?;
    for (i, info) in fleet.devices().into_iter().enumerate() {
        let out = Outgoing {
            device: i,
            topic: MessageKind::Status.topic(&info.device_id),
            payload: status_payload.clone(),
            retain: true,
            class: Class::Status,
            flags: 0,
        };
        if !send(pool, out, cancel, summary).await? {
            return Ok(());
        }
        index.insert(String::from(info.device_id), i);
    }

    let started = Instant::now();
    let deadline = config.max_duration.map(|d| started + d);
    let max_step_ms = ((TICK.as_secs_f64() * MAX_STEP_TICKS * config.speed * 1000.0) as i64).max(1);
    let mut reached = base.millis();
    let mut buf = Vec::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            Some(command) = commands.recv() => {
                if let Some((conn, topic, payload)) = answer(fleet, &index, pool, command) {
                    if !pool.publish(conn, topic, false, payload, cancel).await? {
                        return Ok(());
                    }
                    summary.published += 1;
                    summary.commands_answered += 1;
                }
                continue;
            }
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let wall = match deadline {
            Some(d) if now >= d => d - started,
            _ => now - started,
        };
        let sim_ms = (wall.as_secs_f64() * config.speed * 1000.0) as i64;
        let target = base.millis().saturating_add(sim_ms);
        let until = target.min(reached.saturating_add(max_step_ms)).max(reached);
        reached = until;
        for event in fleet.advance(Timestamp(until)) {
            match event {
                SimEvent::Message(msg) => {
                    let device = index.get(msg.device_id.as_str()).copied().unwrap_or(0);
                    injector.message(device, msg, &mut buf);
                    for out in buf.drain(..) {
                        if !send(pool, out, cancel, summary).await? {
                            return Ok(());
                        }
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
        injector.tick(until, &mut buf);
        for out in buf.drain(..) {
            if !send(pool, out, cancel, summary).await? {
                return Ok(());
            }
        }
        if let Some(file) = ground_truth.as_deref_mut() {
            file.flush()?;
        }
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
    }
    // A normal end: publish what injection still holds.
    injector.flush(&mut buf);
    for out in buf.drain(..) {
        if !send(pool, out, cancel, summary).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// A command received on a connection: `fixahead/v1/{device_id}/cmd` and its payload.
#[derive(Debug)]
pub(crate) struct IncomingCommand {
    conn: usize,
    topic: String,
    payload: Vec<u8>,
}

/// Commands waiting for the publishing loop, per run; beyond it they are dropped
/// (and time out at fixahead).
const COMMAND_QUEUE: usize = 1024;

/// The answer of a simulated device to a command (docs/protocol.md, "Commands"):
/// connection, topic and payload. `None` when the command is not for a device of this
/// fleet on this connection (every connection subscribes to all commands), or has no
/// readable id to answer to.
fn answer(
    fleet: &Fleet,
    index: &HashMap<String, usize>,
    pool: &Pool,
    command: IncomingCommand,
) -> Option<(usize, String, Vec<u8>)> {
    let (device_id, kind) = domain::wire::parse_topic(&command.topic).ok()?;
    if kind != MessageKind::Command {
        return None;
    }
    let device = *index.get(device_id.as_str())?;
    if pool.connection_of(device) != command.conn {
        return None;
    }
    let request: domain::CommandRequest = match serde_json::from_slice(&command.payload) {
        Ok(r) => r,
        Err(e) => {
            warn!(device_id = %device_id, error = %e, "Unreadable command; not answered");
            return None;
        }
    };
    let body = match (request.command.as_str(), fleet.self_test(device)) {
        ("self_test", Some(components)) => {
            let pass = components.iter().all(|c| c.status == "ok");
            serde_json::json!({
                "id": request.id,
                "status": "ok",
                "report": {
                    "command": "self_test",
                    "result": if pass { "pass" } else { "fail" },
                    "simulated_at": fleet.now().to_rfc3339(),
                    "components": components,
                },
            })
        }
        (other, _) => serde_json::json!({
            "id": request.id,
            "status": "error",
            "error": format!("unsupported command {other:?}"),
        }),
    };
    debug!(device_id = %device_id, command_id = request.id, "Answering a command");
    let payload = serde_json::to_vec(&body).ok()?;
    Some((
        command.conn,
        MessageKind::CommandResult.topic(&device_id),
        payload,
    ))
}

/// Publishes one message on its device's connection and counts it; `Ok(false)` if
/// cancelled while waiting for queue space (then it is not counted).
async fn send(
    pool: &Pool,
    out: Outgoing,
    cancel: &CancellationToken,
    summary: &mut LiveSummary,
) -> Result<bool> {
    let Outgoing {
        device,
        topic,
        payload,
        retain,
        class,
        flags,
    } = out;
    let sent = pool
        .publish(pool.connection_of(device), topic, retain, payload, cancel)
        .await?;
    if sent {
        summary.record(class, flags);
    }
    Ok(sent)
}

/// Several MQTT connections, each with its own event-loop task.
pub(crate) struct Pool {
    conns: Vec<Conn>,
    /// Commands received (only by a pool made with [`Pool::connect_answering`]).
    commands: tokio::sync::Mutex<mpsc::Receiver<IncomingCommand>>,
}

struct Conn {
    client: AsyncClient,
    link: Arc<Link>,
    stop: CancellationToken,
    driver: JoinHandle<()>,
}

impl Pool {
    /// Opens `connections` (at least 1) connections; connection `k` of several uses the
    /// client id `{client_id}-{k}`. Connecting happens in the background.
    pub(crate) fn connect(broker: &BrokerTarget, connections: usize) -> Pool {
        Self::open(broker, connections, false)
    }

    /// [`Pool::connect`], each connection also subscribed to `fixahead/v1/+/cmd`: the
    /// commands queue up in the pool, for the fleet to answer.
    pub(crate) fn connect_answering(broker: &BrokerTarget, connections: usize) -> Pool {
        Self::open(broker, connections, true)
    }

    fn open(broker: &BrokerTarget, connections: usize, answer: bool) -> Pool {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let commands = answer.then_some(tx);
        let n = connections.max(1);
        let conns = (0..n)
            .map(|k| {
                let id = if n == 1 {
                    broker.client_id.clone()
                } else {
                    format!("{}-{k}", broker.client_id)
                };
                let (client, eventloop) =
                    AsyncClient::new(broker.mqtt_options(id), REQUEST_CAPACITY);
                let link = Arc::new(Link::default());
                let stop = CancellationToken::new();
                let answering = commands.clone().map(|tx| Answering {
                    client: client.clone(),
                    conn: k,
                    tx,
                });
                let driver =
                    tokio::spawn(drive(eventloop, stop.clone(), Arc::clone(&link), answering));
                Conn {
                    client,
                    link,
                    stop,
                    driver,
                }
            })
            .collect();
        Pool {
            conns,
            commands: tokio::sync::Mutex::new(rx),
        }
    }

    /// The connection device number `device` uses.
    pub(crate) fn connection_of(&self, device: usize) -> usize {
        device % self.conns.len()
    }

    /// The connection a device id uses when there is no index (replay): a stable hash.
    pub(crate) fn connection_of_id(&self, device_id: &str) -> usize {
        // FNV-1a: stable across runs and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in device_id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % self.conns.len() as u64) as usize
    }

    /// Publishes with QoS 1 on connection `conn`; `Ok(false)` if cancelled while
    /// waiting for queue space.
    pub(crate) async fn publish(
        &self,
        conn: usize,
        topic: String,
        retain: bool,
        payload: Vec<u8>,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        let client = &self.conns[conn % self.conns.len()].client;
        // Fast path: room in the queue, no waiting.
        let publish = match client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => return Ok(true),
            Err(ClientError::TryRequest(Request::Publish(p))) => p,
            Err(e) => return Err(e.into()),
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => Ok(false),
            r = client.publish_bytes(publish.topic, QoS::AtLeastOnce, retain, publish.payload) => {
                r.map(|()| true).map_err(Error::from)
            }
        }
    }

    /// PUBACKs received on all connections.
    pub(crate) fn acked(&self) -> u64 {
        self.conns
            .iter()
            .map(|c| c.link.acked.load(Ordering::Relaxed))
            .sum()
    }

    fn any_connected(&self) -> bool {
        self.conns
            .iter()
            .any(|c| c.link.connected.load(Ordering::Relaxed))
    }

    /// Waits until `published` publishes are acknowledged, giving up after `stall`
    /// without progress (at once if `only_while_connected` and no connection is up).
    pub(crate) async fn drain(&self, published: u64, stall: Duration, only_while_connected: bool) {
        let mut last = self.acked();
        let mut last_progress = Instant::now();
        while last < published {
            if only_while_connected && !self.any_connected() {
                break;
            }
            if last_progress.elapsed() >= stall {
                warn!(
                    published,
                    acked = last,
                    "Gave up waiting for acknowledgements"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            let acked = self.acked();
            if acked > last {
                last = acked;
                last_progress = Instant::now();
            }
        }
    }

    /// Disconnects cleanly (briefly) and stops the event loops.
    pub(crate) async fn close(self) {
        for c in &self.conns {
            let _ = c.client.try_disconnect();
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while self.conns.iter().any(|c| !c.driver.is_finished()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        for c in self.conns {
            c.stop.cancel();
            let _ = c.driver.await;
        }
    }
}

/// What an event-loop task reports to the publisher.
#[derive(Default)]
struct Link {
    connected: AtomicBool,
    acked: AtomicU64,
}

/// What a connection that answers commands needs in its event-loop task.
struct Answering {
    client: AsyncClient,
    conn: usize,
    tx: mpsc::Sender<IncomingCommand>,
}

/// Polls the MQTT event loop until stopped, reconnecting with backoff. With
/// `answering`, subscribes to the commands on every connect and hands them over.
async fn drive(
    mut eventloop: EventLoop,
    stop: CancellationToken,
    link: Arc<Link>,
    answering: Option<Answering>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                debug!("Connected to MQTT broker");
                link.connected.store(true, Ordering::Relaxed);
                backoff = MIN_BACKOFF;
                if let Some(a) = &answering {
                    if let Err(e) = a
                        .client
                        .try_subscribe(MessageKind::Command.filter(), QoS::AtLeastOnce)
                    {
                        warn!(error = %e, "Could not subscribe to commands");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(a) = &answering {
                    let command = IncomingCommand {
                        conn: a.conn,
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    };
                    if a.tx.try_send(command).is_err() {
                        warn!("Command queue full; a command goes unanswered");
                    }
                }
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                link.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Outgoing(MqttOutgoing::Disconnect)) => break,
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

/// What [`bench_live`] measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveBench {
    /// Simulated devices.
    pub devices: usize,
    /// MQTT connections.
    pub connections: usize,
    /// Simulated seconds per wall-clock second used (chosen to saturate the publisher).
    pub speed: f64,
    /// Wall-clock seconds from the first publish (status messages included) to the last
    /// acknowledgement.
    pub seconds: f64,
    /// Messages published (status, telemetry, faults).
    pub published: u64,
    /// PUBACKs received.
    pub acked: u64,
    /// `acked / seconds`.
    pub msgs_per_sec: f64,
    /// Peak resident memory of this process (`VmHWM`; 0 where unavailable). Includes
    /// anything else in the process, such as an embedded broker.
    pub peak_rss_bytes: u64,
}

/// The message rate [`bench_live`] aims the simulation at: above what one publisher
/// process can send here, so the publisher, not the simulated clock, is the limit.
const BENCH_TARGET_RATE: f64 = 200_000.0;

/// Publishes a fleet of `devices` (default kinds, seed 1) to `host:port` (with `tls`,
/// an `mqtts://` broker) for `seconds`
/// of wall-clock time over `connections` connections, as fast as it goes, and measures
/// the acknowledged publish rate and the process's peak memory.
///
/// The speed is computed from the fleet's message rate (measured on a small probe fleet
/// over one simulated day) so that the simulation would produce 200,000 messages/s:
/// more than the publisher can send, so the run measures the publisher. No fault
/// injection, no ground-truth file.
pub async fn bench_live(
    devices: usize,
    seconds: u64,
    connections: usize,
    host: &str,
    port: u16,
    tls: Option<rumqttc::TlsConfiguration>,
) -> Result<LiveBench> {
    let profiles = ProfileSet::builtin();
    let fleet_config = FleetConfig {
        devices,
        seed: 1,
        ..FleetConfig::default()
    };
    let per_device_per_sim_s = {
        let probe_devices = devices.clamp(1, 1000);
        let mut probe = Fleet::new(
            FleetConfig {
                devices: probe_devices,
                ..fleet_config.clone()
            },
            &profiles,
        )?;
        let day = Timestamp(fleet_config.start.millis() + Timestamp::DAY_MS);
        let messages = probe
            .advance(day)
            .iter()
            .filter(|e| matches!(e, SimEvent::Message(_)))
            .count();
        (messages.max(1) as f64) / (probe_devices as f64 * 86_400.0)
    };
    let speed = (BENCH_TARGET_RATE / (per_device_per_sim_s * devices as f64)).clamp(1.0, 1e9);
    let fleet = Fleet::new(fleet_config, &profiles)?;
    let config = LiveConfig {
        broker: BrokerTarget {
            host: host.to_owned(),
            port,
            tls,
            client_id: format!("fixahead-bench-{}", std::process::id()),
            ..BrokerTarget::default()
        },
        speed,
        max_duration: Some(Duration::from_secs(seconds)),
        connections,
        ..LiveConfig::default()
    };
    let started = Instant::now();
    let summary = publish_live(config, fleet, CancellationToken::new()).await?;
    let secs = started.elapsed().as_secs_f64();
    Ok(LiveBench {
        devices,
        connections,
        speed,
        seconds: secs,
        published: summary.published,
        acked: summary.acked,
        msgs_per_sec: summary.acked as f64 / secs.max(1e-9),
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Peak resident memory of this process from `/proc/self/status` (`VmHWM`), or 0.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
pub(crate) mod tests {
    use rumqttc::MqttOptions;

    use super::*;
    use crate::broker::MAX_PACKET_BYTES;

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
    pub(crate) fn start_broker() -> u16 {
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

    /// A subscriber to `fixahead/v1/#` on the local broker at `port`, given 300 ms to
    /// subscribe; returns the (topic, payload) of every publish it receives.
    pub(crate) async fn subscribe_all(
        port: u16,
        client_id: &str,
    ) -> mpsc::UnboundedReceiver<(String, Vec<u8>)> {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        let (sub, mut sub_loop) = AsyncClient::new(o, 100);
        sub.subscribe("fixahead/v1/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _sub = sub;
            while let Ok(event) = sub_loop.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = event {
                    let _ = tx.send((p.topic, p.payload.to_vec()));
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        rx
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_valid_messages_to_a_broker() {
        let port = start_broker();
        let mut rx = subscribe_all(port, "test-sub").await;

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
            broker: BrokerTarget {
                port,
                client_id: "test-sim".into(),
                ..BrokerTarget::default()
            },
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn injected_messages_reconcile_with_what_a_subscriber_decodes() {
        use std::collections::{BTreeMap, HashMap, HashSet};

        let port = start_broker();
        let mut rx = subscribe_all(port, "test-sub-inject").await;

        let fleet = Fleet::new(
            crate::FleetConfig {
                devices: 20,
                seed: 9,
                ..crate::FleetConfig::default()
            },
            &domain::ProfileSet::builtin(),
        )
        .unwrap();
        let config = LiveConfig {
            broker: BrokerTarget {
                port,
                client_id: "test-sim-inject".into(),
                ..BrokerTarget::default()
            },
            speed: 20.0 * 86_400.0,
            max_duration: Some(Duration::from_millis(1500)),
            connections: 3,
            inject: crate::InjectConfig::parse(
                "malformed_json=0.03,wrong_type=0.03,out_of_range=0.03,oversized=0.02,\
                 duplicate=0.04,out_of_order=0.04,clock_skew=0.3,offline_gap=0.03,burst=0.03",
            )
            .unwrap(),
            ..LiveConfig::default()
        };
        let summary = publish_live(config, fleet, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(summary.acked, summary.published, "{summary:?}");
        let i = &summary.injected;
        assert_eq!(
            summary.published,
            summary.status + summary.good + i.duplicate + i.dead_letters()
        );
        assert_eq!(summary.good, summary.telemetry + summary.faults);
        for (name, n) in [
            ("malformed_json", i.malformed_json),
            ("wrong_type", i.wrong_type),
            ("out_of_range", i.out_of_range),
            ("oversized", i.oversized),
            ("duplicate", i.duplicate),
            ("out_of_order", i.out_of_order),
            ("clock_skew", i.clock_skew),
            ("offline_gap", i.offline_gap),
            ("burst", i.burst),
        ] {
            assert!(n > 0, "nothing injected for {name}: {summary:?}");
        }

        // Do what fixahead does with each received message.
        let profiles = domain::ProfileSet::builtin();
        let mut stored = HashSet::new();
        let (mut duplicates, mut status) = (0, 0);
        let mut dead: BTreeMap<String, u64> = BTreeMap::new();
        let mut per_topic: HashMap<String, u64> = HashMap::new();
        for _ in 0..summary.published {
            let (topic, payload) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("every publish arrives")
                .unwrap();
            *per_topic.entry(topic.clone()).or_default() += 1;
            match domain::decode(&topic, &payload, &profiles) {
                Ok(domain::Message::Telemetry(t)) => {
                    if !stored.insert((t.device_id, t.seq)) {
                        duplicates += 1;
                    }
                }
                Ok(domain::Message::Fault(f)) => {
                    if !stored.insert((f.device_id, f.seq)) {
                        duplicates += 1;
                    }
                }
                Ok(domain::Message::Status(_)) => status += 1,
                Ok(domain::Message::Command(_) | domain::Message::CommandResult(_)) => {}
                Err(r) => *dead.entry(r.reason.as_str().to_owned()).or_default() += 1,
            }
        }
        assert_eq!(stored.len() as u64, summary.good, "{summary:?}");
        assert_eq!(duplicates, i.duplicate);
        assert_eq!(status, summary.status);
        assert_eq!(dead, summary.expected_dead_letters);
        // Per-device topics, not a gateway topic.
        assert!(per_topic.keys().all(|t| t.starts_with("fixahead/v1/")));
        assert!(per_topic.len() >= 40, "{}", per_topic.len());
        let json = serde_json::to_value(&summary).unwrap();
        assert!(json["injected"]["oversized"].as_u64().is_some(), "{json}");
    }
}
