//! Scale-out with an MQTT shared subscription: two instances in one `--shared-group`
//! split the load, and every message is stored exactly once by one of them.
//! Runs with FIXAHEAD_IT=1 against Mosquitto (`.ci/run` installs it); skipped otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::{free_port, metric, telemetry, wait_for, Publisher, Server};
use crate::mosquitto::{extended_suite, Mosquitto};

/// Starts one instance in group `g` with its own data directory and client id (two
/// members with one client id would take each other's session over).
async fn member(dir: &std::path::Path, url: &str, client_id: &str) -> Server {
    let config = dir.join("fixahead.toml");
    std::fs::write(&config, format!("[mqtt]\nclient_id = \"{client_id}\"\n")).unwrap();
    Server::start_with(
        dir,
        None,
        free_port(),
        &[
            "--mqtt-url",
            url,
            "--shared-group",
            "g",
            "--config",
            config.to_str().unwrap(),
            "--max-future-skew",
            "off",
        ],
    )
    .await
}

async fn stored(s: &Server) -> u64 {
    metric(s, "fixahead_ingest_stored_total").await as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_in_a_shared_group_split_the_load_and_store_each_message_once() {
    if !extended_suite() {
        eprintln!(
            "skipped: shared subscriptions are tested against Mosquitto; set FIXAHEAD_IT=1 and install mosquitto"
        );
        return;
    }
    let port = free_port();
    let _broker = Mosquitto::start(port).await;
    let url = format!("mqtt://127.0.0.1:{port}");
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = member(da.path(), &url, "fixahead-a").await;
    let b = member(db.path(), &url, "fixahead-b").await;
    // Both members must be subscribed before the first publish, or the first would
    // get everything: wait until each has connected.
    for s in [&a, &b] {
        wait_for(
            Duration::from_secs(30),
            "both members connected",
            || async { metric(s, "fixahead_mqtt_connects_total").await >= 1.0 },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // An odd count, so Mosquitto's per-message round robin cannot line up with the
    // publish order and keep each device on one member by accident.
    let devices = 21u64;
    let per_device = 100u64;
    let n = devices * per_device;
    let mut publisher = Publisher::connect(port, "shared-test-publisher").await;
    let t0 = 1_790_000_000_000i64;
    for seq in 1..=per_device {
        for d in 0..devices {
            let ts = t0 + seq as i64 * 60_000;
            publisher
                .publish(
                    &format!("fixahead/v1/wm-{d:04}/telemetry"),
                    telemetry(seq, ts, r#"{"drain_time_s": 12.5}"#),
                )
                .await;
        }
    }
    publisher.flush().await;

    wait_for(
        Duration::from_secs(60),
        "every message stored by one member",
        || async { stored(&a).await + stored(&b).await >= n },
    )
    .await;
    // Give a duplicate delivery time to show up before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (sa, sb) = (stored(&a).await, stored(&b).await);
    assert_eq!(
        sa + sb,
        n,
        "each message is stored exactly once in the group"
    );
    assert!(sa > 0 && sb > 0, "both members got work: {sa} + {sb}");
    for s in [&a, &b] {
        assert_eq!(metric(s, "fixahead_ingest_duplicates_total").await, 0.0);
        assert_eq!(metric(s, "fixahead_ingest_dead_letters_total").await, 0.0);
    }

    // Mosquitto spreads a shared subscription's messages over the members one message
    // at a time, not by device: report how many devices ended up on both (the reason
    // docs/operations.md, "Scale-out", asks for a broker that keeps a device on one
    // member).
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for s in [&a, &b] {
        let (status, body) = s.get("/api/v1/devices?limit=1000").await;
        assert_eq!(status, 200, "{body}");
        let list = body
            .get("devices")
            .and_then(|d| d.as_array())
            .cloned()
            .unwrap_or_default();
        for d in list {
            if let Some(id) = d.get("device_id").and_then(|v| v.as_str()) {
                *seen.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    assert_eq!(seen.len() as u64, devices, "{seen:?}");
    let split = seen.values().filter(|&&c| c > 1).count();
    eprintln!("shared group: member a stored {sa}, b {sb}; {split} of {devices} devices were split over both members");
    assert!(
        split > 0,
        "Mosquitto kept every device on one member; docs/operations.md says it does not"
    );
}
