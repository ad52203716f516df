//! MQTT 5 (`--mqtt-protocol 5`) against Mosquitto with persistence: messages are
//! stored, and after a `kill -9` the restarted fixahead resumes its session (clean
//! start off, a session expiry interval of "never"), so what devices published while
//! it was down arrives, and nothing is lost or stored twice. A smaller version of
//! crash.rs's checks. Extended suite (FIXAHEAD_IT=1).

use std::time::{Duration, Instant};

use crate::harness::{free_port, now_ms, probe_until_stored, telemetry, Publisher, Server};
use crate::mosquitto::{extended_suite, Mosquitto};

/// Liveness bound for waits; never a speed target.
const LIVENESS: Duration = Duration::from_secs(120);
const DEVICE: &str = "v5-0";

/// Publishes seqs `range` of [`DEVICE`] and returns once the broker acknowledged them.
async fn publish(port: u16, range: std::ops::RangeInclusive<u64>, base_ms: i64) {
    let mut publisher = Publisher::connect(port, "it-v5-device").await;
    for seq in range {
        publisher
            .publish(
                &format!("fixahead/v1/{DEVICE}/telemetry"),
                telemetry(seq, base_ms + seq as i64 * 1000, r#"{"vibration_g": 0.1}"#),
            )
            .await;
    }
    publisher.flush().await;
}

/// Rows stored for [`DEVICE`] (the registry's count of rows inserted: a message stored
/// twice would show), 0 before the first.
async fn stored(server: &Server) -> u64 {
    let (status, body) = server.get(&format!("/api/v1/devices/{DEVICE}")).await;
    if status == 404 {
        return 0;
    }
    assert_eq!(status, 200, "{body}");
    body["messages"]
        .as_u64()
        .unwrap_or_else(|| panic!("no message count in {body:#}"))
}

async fn wait_stored(server: &Server, at_least: u64, what: &str) -> u64 {
    let deadline = Instant::now() + LIVENESS;
    loop {
        let n = stored(server).await;
        if n >= at_least {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {n} of {at_least} stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Probes until fixahead's MQTT 5 subscription is in place (the broker drops what
/// nobody subscribed to before the first session exists).
async fn wait_subscribed(server: &Server, port: u16) {
    let mut publisher = Publisher::connect(port, "it-v5-probe").await;
    probe_until_stored(&mut publisher, "v5-probe", &[server]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt5_session_survives_a_kill_with_nothing_lost_or_stored_twice() {
    if !extended_suite() {
        eprintln!(
            "skipped: mqtt5_session_survives_a_kill_with_nothing_lost_or_stored_twice needs FIXAHEAD_IT=1 and the mosquitto package"
        );
        return;
    }
    let broker = Mosquitto::start_persistent(free_port()).await;
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let dir = tempfile::tempdir().unwrap();
    let args = ["--mqtt-url", &url, "--mqtt-protocol", "5"];
    let base = now_ms() - 3_600_000;

    let mut server = Server::start_with(dir.path(), None, free_port(), &args).await;
    wait_subscribed(&server, broker.port).await;
    publish(broker.port, 1..=300, base).await;
    // Mid-stream for fixahead: some stored, the rest in flight or queued.
    wait_stored(&server, 50, "before the kill").await;
    server.kill();

    // While it is down, the broker queues for the MQTT 5 session it kept.
    publish(broker.port, 301..=600, base).await;

    let server = Server::start_with(dir.path(), None, free_port(), &args).await;
    let n = wait_stored(&server, 600, "after the restart").await;
    assert_eq!(n, 600, "every message stored exactly once");
    let (_, body) = server
        .get(&format!("/api/v1/devices/{DEVICE}/telemetry?limit=10000"))
        .await;
    let mut seqs: Vec<u64> = body["telemetry"]
        .as_array()
        .expect("telemetry")
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=600).collect::<Vec<_>>());
    let (_, health) = server.get("/health").await;
    let ingest = &health["ingest"];
    assert_eq!(ingest["connects"].as_u64(), Some(1), "{health:#}");
    assert!(
        ingest["dead_letters"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "{health:#}"
    );
}
