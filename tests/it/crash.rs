//! Crash safety against Mosquitto with persistence: `kill -9` of fixahead and restarts
//! of the broker lose no message the broker acknowledged to a device and store none
//! twice (ARCHITECTURE.md, invariant 1 "nothing accepted is lost" and invariant 2
//! "nothing is stored twice"; docs/operations.md, "Crash safety").
//! Extended suite: runs with FIXAHEAD_IT=1, skipped otherwise.
//!
//! Counts are read from the hot store through the API (`messages` per device in the
//! registry, the telemetry rows), not from counters: a killed process takes its
//! counters with it.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::harness::{
    free_port, now_ms, probe_until_stored, telemetry, wait_for, Publisher, Server,
};
use crate::mosquitto::{extended_suite, Mosquitto};

/// Devices in the stream; message `i` belongs to device `i % DEVICES`.
const DEVICES: u64 = 4;
/// Prefix of the streaming devices' ids (the subscription probe uses another).
const PREFIX: &str = "crash-";
/// Liveness bound for waits on ingest; never a speed target.
const LIVENESS: Duration = Duration::from_secs(120);

/// Message `i` of a stream: telemetry of device `crash-{i % DEVICES}` with seq
/// `i / DEVICES + 1`, so every (device, seq) is unique and each device's seqs are
/// 1..=n. Event times are a minute apart, ending well before now.
fn message(i: u64, base_ms: i64) -> (String, String) {
    let device = format!("{PREFIX}{}", i % DEVICES);
    let seq = i / DEVICES + 1;
    let vibration = 0.1 + (i % 7) as f64 * 0.01;
    (
        format!("fixahead/v1/{device}/telemetry"),
        telemetry(
            seq,
            base_ms + seq as i64 * 60_000,
            &format!(r#"{{"vibration_g": {vibration}, "drain_time_s": 12.5}}"#),
        ),
    )
}

/// Publishes messages `range` with QoS 1 from a connection of its own and returns once
/// the broker acknowledged all of them (from then on they are the broker's to keep).
fn publish_range(port: u16, client_id: &str, range: Range<u64>, base_ms: i64) -> JoinHandle<()> {
    let client_id = client_id.to_owned();
    tokio::spawn(async move {
        let mut publisher = Publisher::connect(port, &client_id).await;
        for i in range {
            let (topic, payload) = message(i, base_ms);
            publisher.publish(&topic, payload).await;
        }
        publisher.flush().await;
    })
}

/// Messages stored for the streaming devices, summed from the device registry (its
/// `messages` counts rows inserted, so a redelivery stored twice would show).
async fn stored(server: &Server) -> u64 {
    let (status, body) = server.get("/api/v1/devices?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    body["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter(|d| {
            d["device_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(PREFIX))
        })
        .map(|d| d["messages"].as_u64().expect("messages"))
        .sum()
}

/// Waits until `expected` messages are stored, then requires exactly that many.
async fn wait_stored(server: &Server, expected: u64, what: &str) {
    let deadline = Instant::now() + LIVENESS;
    loop {
        let n = stored(server).await;
        if n >= expected {
            assert_eq!(
                n, expected,
                "{what}: stored {n}, expected exactly {expected}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {n} of {expected} stored after {LIVENESS:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ingest_counters(server: &Server) -> Value {
    let (status, health) = server.get("/health").await;
    assert_eq!(status, 200, "{health}");
    health["ingest"].clone()
}

/// Counter `key` of an [`ingest_counters`] snapshot; panics if it is missing.
fn counter(c: &Value, key: &str) -> u64 {
    c[key].as_u64().unwrap_or_else(|| panic!("{key} in {c}"))
}

/// Checks an [`ingest_counters`] snapshot: every message the process received was
/// stored or recognised as a duplicate, and none was dead-lettered.
fn assert_received_were_stored_or_duplicates(c: &Value) {
    assert_eq!(
        counter(c, "received"),
        counter(c, "stored_telemetry") + counter(c, "duplicates"),
        "every message the process received was stored or a duplicate: {c}"
    );
    assert_eq!(c["dead_letters"], serde_json::json!({}), "{c}");
}

/// Waits until fixahead's subscription is in place at the broker: on the very first
/// start there is no session yet, and the broker drops what nobody subscribed to.
/// Publishes probe telemetry (device `probe`, not counted) until one is stored.
async fn wait_subscribed(server: &Server, broker_port: u16) {
    let mut publisher = Publisher::connect(broker_port, "it-crash-probe").await;
    probe_until_stored(&mut publisher, "probe", &[server]).await;
}

/// Checks the end state: each device holds exactly seqs 1..=per_device, counted once,
/// and nothing was dead-lettered.
async fn assert_each_message_stored_once(server: &Server, total: u64) {
    let per_device = total / DEVICES;
    for d in 0..DEVICES {
        let id = format!("{PREFIX}{d}");
        let (status, device) = server.get(&format!("/api/v1/devices/{id}")).await;
        assert_eq!(status, 200, "{device}");
        assert_eq!(
            device["messages"].as_u64(),
            Some(per_device),
            "{id} counted each message once: {device}"
        );
        let (status, body) = server
            .get(&format!("/api/v1/devices/{id}/telemetry?limit=10000"))
            .await;
        assert_eq!(status, 200, "{body}");
        let mut seqs: Vec<u64> = body["telemetry"]
            .as_array()
            .expect("telemetry")
            .iter()
            .map(|t| t["seq"].as_u64().expect("seq"))
            .collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (1..=per_device).collect::<Vec<_>>(),
            "{id} holds every seq exactly once"
        );
    }
    let (status, dead) = server.get("/api/v1/dead-letters").await;
    assert_eq!(status, 200, "{dead}");
    assert_eq!(
        dead["dead_letters"].as_array().map(Vec::len),
        Some(0),
        "{dead}"
    );
}

/// Waits until fixahead has dealt with everything it received: acknowledged it, or
/// dropped the acknowledgement with the connection it came over.
async fn wait_all_acked(server: &Server) {
    wait_for(
        LIVENESS,
        "fixahead to acknowledge all it received",
        || async {
            // An acknowledgement for a connection that has since been lost is not sent
            // (`acks_dropped`); the broker redelivers that message.
            let c = ingest_counters(server).await;
            counter(&c, "acked") + counter(&c, "acks_dropped") == counter(&c, "received")
        },
    )
    .await;
}

/// Takes the hot store's write lock (SQLite `BEGIN IMMEDIATE`) until the connection is
/// dropped: fixahead keeps receiving, but its commits wait.
fn lock_hot_store(data_dir: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(data_dir.join("hot.db")).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

/// Waits until fixahead received more than `before` (an ingest counters snapshot).
async fn wait_received_more(server: &Server, before: &Value, what: &str) {
    let before = before["received"].as_u64().expect("received");
    wait_for(LIVENESS, what, || async {
        ingest_counters(server).await["received"].as_u64() > Some(before)
    })
    .await;
}

/// A TCP relay between fixahead and the broker. On command it swallows everything
/// fixahead sends on the current connection (its PUBACKs) while still passing on the
/// broker's publishes: fixahead then receives, commits and "acknowledges" messages the
/// broker never hears about. A kill at that point leaves messages that are stored but
/// unacknowledged, which the broker must redeliver, every time.
struct AckSwallower {
    port: u16,
    current: Arc<Mutex<Arc<AtomicBool>>>,
    task: JoinHandle<()>,
}

impl AckSwallower {
    async fn start(broker_port: u16) -> AckSwallower {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let current = Arc::new(Mutex::new(Arc::new(AtomicBool::new(false))));
        let slot = current.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(broker) = TcpStream::connect(("127.0.0.1", broker_port)).await else {
                    continue; // fixahead sees the connection drop and retries
                };
                let swallow = Arc::new(AtomicBool::new(false));
                *slot.lock().unwrap() = swallow.clone();
                tokio::spawn(relay(client, broker, swallow));
            }
        });
        AckSwallower {
            port,
            current,
            task,
        }
    }

    /// From now on, drop what fixahead sends on its current connection.
    fn swallow_acks(&self) {
        self.current.lock().unwrap().store(true, SeqCst);
    }
}

impl Drop for AckSwallower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes, then closes both.
async fn relay(client: TcpStream, broker: TcpStream, swallow: Arc<AtomicBool>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut broker_rx, mut broker_tx) = broker.into_split();
    let to_client = tokio::io::copy(&mut broker_rx, &mut client_tx);
    let to_broker = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client_rx.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if !swallow.load(SeqCst) {
                broker_tx.write_all(&buf[..n]).await?;
            }
        }
    };
    tokio::select! {
        _ = to_client => {}
        _ = to_broker => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_stream_loses_nothing_and_stores_nothing_twice() {
    if !extended_suite() {
        eprintln!(
            "skipped: kill_9_mid_stream_loses_nothing_and_stores_nothing_twice needs FIXAHEAD_IT=1 and the mosquitto package"
        );
        return;
    }
    const TOTAL: u64 = 6000;
    let broker = Mosquitto::start_persistent(free_port()).await;
    let relay = AckSwallower::start(broker.port).await;
    let data = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}", relay.port);
    let extra = ["--mqtt-url", url.as_str()];
    // Every start uses the same data directory and the default client id, so the
    // broker hands each one the previous one's session.
    let start = || Server::start_with(data.path(), None, free_port(), &extra);
    let base = now_ms() - 3 * 86_400_000;

    let mut first = start().await;
    wait_subscribed(&first, broker.port).await;

    // Kill 1, at whatever point the stream is: messages may be in fixahead's queue,
    // in an uncommitted batch, or committed with their acks on the way.
    let phase1 = publish_range(broker.port, "it-crash-1", 0..2000, base);
    wait_for(LIVENESS, "the first process to store 500", || async {
        stored(&first).await >= 500
    })
    .await;
    first.kill();
    phase1.await.unwrap();
    // Devices keep publishing while fixahead is down; the broker queues for its session.
    publish_range(broker.port, "it-crash-2", 2000..3000, base)
        .await
        .unwrap();

    let mut second = start().await;
    wait_stored(
        &second,
        3000,
        "everything published before and during the first outage",
    )
    .await;

    // Kill 2, with messages received but not committed. The test holds the hot store's
    // write lock, so the writer's commit waits; had fixahead acknowledged on receipt,
    // these messages would be gone with the process.
    wait_all_acked(&second).await;
    let lock = lock_hot_store(data.path());
    let before = ingest_counters(&second).await;
    let phase3 = publish_range(broker.port, "it-crash-3", 3000..4000, base);
    wait_received_more(
        &second,
        &before,
        "the second process to receive messages it cannot commit",
    )
    .await;
    let c = ingest_counters(&second).await;
    assert_eq!(
        c["acked"], before["acked"],
        "nothing uncommitted is acknowledged: {c}"
    );
    assert_eq!(stored(&second).await, 3000);
    second.kill();
    drop(lock);
    phase3.await.unwrap();

    let mut third = start().await;
    wait_stored(
        &third,
        4000,
        "the messages received but uncommitted at kill 2",
    )
    .await;

    // Kill 3, with messages committed but not acknowledged: every ack sent from here on
    // is swallowed by the relay.
    relay.swallow_acks();
    let phase4 = publish_range(broker.port, "it-crash-4", 4000..5000, base);
    wait_for(
        LIVENESS,
        "the third process to store unacknowledged messages",
        || async { stored(&third).await > 4000 },
    )
    .await;
    // A lower bound: each of these was committed and its ack swallowed, so the broker
    // still holds it in flight for fixahead's session and must deliver it again.
    let stored_unacked = stored(&third).await - 4000;
    third.kill();
    phase4.await.unwrap();
    publish_range(broker.port, "it-crash-5", 5000..TOTAL, base)
        .await
        .unwrap();

    let last = start().await;
    wait_stored(&last, TOTAL, "every message across three kill -9s").await;
    wait_all_acked(&last).await;
    assert_each_message_stored_once(&last, TOTAL).await;

    let c = ingest_counters(&last).await;
    let count = |k: &str| counter(&c, k);
    eprintln!(
        "crash: {stored_unacked} stored but unacknowledged at kill 3; the last process \
         stored {} and recognised {} duplicates",
        count("stored_telemetry"),
        count("duplicates")
    );
    assert!(
        count("duplicates") >= stored_unacked,
        "the {stored_unacked} messages stored but not acknowledged at kill 3 were redelivered \
         and recognised as duplicates: {c}"
    );
    assert!(
        count("stored_telemetry") <= TOTAL - 4000 - stored_unacked,
        "the last process stored none of what the earlier ones had stored: {c}"
    );
    assert_received_were_stored_or_duplicates(&c);
}

#[tokio::test(flavor = "multi_thread")]
async fn mosquitto_restart_while_running_reconnects_and_carries_on() {
    if !extended_suite() {
        eprintln!(
            "skipped: mosquitto_restart_while_running_reconnects_and_carries_on needs FIXAHEAD_IT=1 and the mosquitto package"
        );
        return;
    }
    let mut broker = Mosquitto::start_persistent(free_port()).await;
    let data = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let server = Server::start_with(data.path(), None, free_port(), &["--mqtt-url", &url]).await;
    wait_subscribed(&server, broker.port).await;
    let base = now_ms() - 3 * 86_400_000;

    // Phase 1, then a clean broker restart while fixahead holds messages it received
    // but could not commit yet (the test holds the hot store's write lock) and the
    // broker holds the rest. Mosquitto saves the session with its queued and in-flight
    // messages on the way out and hands them back after; fixahead commits what it held
    // and acknowledges it over the new connection.
    let lock = lock_hot_store(data.path());
    let before = ingest_counters(&server).await;
    publish_range(broker.port, "it-broker-1", 0..2000, base)
        .await
        .unwrap();
    wait_received_more(&server, &before, "fixahead to receive phase 1").await;
    assert_eq!(stored(&server).await, 0, "nothing committed under the lock");
    broker.stop(false);
    broker.restart().await;
    drop(lock);
    // Phase 2, published whether or not fixahead has reconnected yet: the broker
    // queues it for fixahead's persistent session.
    publish_range(broker.port, "it-broker-2", 2000..4000, base)
        .await
        .unwrap();
    wait_stored(&server, 4000, "both phases around a broker restart").await;
    let c = ingest_counters(&server).await;
    assert!(
        c["connects"].as_u64().expect("connects") >= 2,
        "phase 2 arrived over a new connection: {c}"
    );

    // Phase 3: kill -9 the broker once everything is stored and acknowledged. It comes
    // back from its last autosave, which may still hold messages fixahead has since
    // acknowledged; they are delivered again and must not be stored again.
    wait_all_acked(&server).await;
    broker.stop(true);
    broker.restart().await;
    publish_range(broker.port, "it-broker-3", 4000..5000, base)
        .await
        .unwrap();
    wait_stored(&server, 5000, "all three phases around two broker restarts").await;
    wait_all_acked(&server).await;
    assert_each_message_stored_once(&server, 5000).await;

    let c = ingest_counters(&server).await;
    let count = |k: &str| counter(&c, k);
    eprintln!(
        "crash: {} connects; {} stored and {} duplicates across two broker restarts",
        count("connects"),
        count("stored_telemetry"),
        count("duplicates")
    );
    assert!(
        count("connects") >= 3,
        "reconnected after each restart: {c}"
    );
    assert_received_were_stored_or_duplicates(&c);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_far_larger_than_the_queues_drains_completely() {
    if !extended_suite() {
        eprintln!(
            "skipped: a_backlog_far_larger_than_the_queues_drains_completely needs FIXAHEAD_IT=1 and the mosquitto package"
        );
        return;
    }
    // Far more than ingest's queue plus rumqttc's request channel (about 2,600 with the
    // defaults), where acknowledgements sent through that channel backed up into a
    // stall, and more than MQTT's 65,535 packet ids, which a broker that ignores its
    // in-flight limit runs through if acknowledgements fall behind (docs/operations.md,
    // "Backpressure").
    const TOTAL: u64 = 80_000;
    let broker = Mosquitto::start_persistent(free_port()).await;
    let data = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let extra = ["--mqtt-url", url.as_str()];
    let start = || Server::start_with(data.path(), None, free_port(), &extra);
    let base = now_ms() - 30 * 86_400_000;

    let mut first = start().await;
    wait_subscribed(&first, broker.port).await;
    first.kill();
    // The whole backlog waits at the broker for fixahead's session, then arrives at once.
    publish_range(broker.port, "it-backlog", 0..TOTAL, base)
        .await
        .unwrap();
    let second = start().await;
    wait_stored(&second, TOTAL, "an 80,000-message backlog").await;
    wait_all_acked(&second).await;
    for d in 0..DEVICES {
        let id = format!("{PREFIX}{d}");
        let (status, device) = second.get(&format!("/api/v1/devices/{id}")).await;
        assert_eq!(status, 200, "{device}");
        assert_eq!(device["messages"], TOTAL / DEVICES, "{device}");
    }
    let c = ingest_counters(&second).await;
    assert_eq!(c["duplicates"], 0, "{c}");
    assert_eq!(c["acks_dropped"], 0, "{c}");
    assert_eq!(c["dead_letters"], serde_json::json!({}), "{c}");
}
