//! `mqtts://`: fixahead against a Mosquitto with TLS listeners, certificates generated
//! at test time (rcgen) into a temporary directory. Extended suite (FIXAHEAD_IT=1);
//! the start-up check of a bad CA file runs always.
//!
//! - With the right CA, fixahead connects, over MQTT 3.1.1 and 5, and messages
//!   published over TLS are stored (also through `fixahead replay --mqtt-url
//!   mqtts://... --mqtt-ca`).
//! - A CA that did not sign the broker's certificate, or a certificate for another host
//!   name, keeps fixahead from connecting: it retries with backoff, counts connection
//!   errors, stays up, and stores nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ingest::source::{Endpoint, TlsFiles};
use serde_json::Value;

use crate::harness::{
    bin, free_port, now_ms, probe_until_stored, telemetry, wait_for, Publisher, Server,
};
use crate::mosquitto::{extended_suite, Mosquitto};

/// Liveness bound for waits; never a speed target.
const LIVENESS: Duration = Duration::from_secs(60);

/// PEM files of a test PKI: a CA, a server certificate it signed for localhost and
/// 127.0.0.1, one it signed for another host name only, and an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn generate() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let dir = tempfile::tempdir().unwrap();
        // Mosquitto, started as root, drops to the `mosquitto` user: it must be able
        // to read the files (a test key readable by all is fine).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        };
        let ca = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = params.self_signed(&key).unwrap();
            (cert, key)
        };
        let (ca_cert, ca_key) = ca("fixahead test CA");
        let (other_cert, _) = ca("another CA");
        write("ca.pem", ca_cert.pem());
        write("other-ca.pem", other_cert.pem());
        for (name, sans) in [
            (
                "server",
                vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            ),
            ("elsewhere", vec!["broker.elsewhere.example".to_owned()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}-key.pem"), key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }
}

/// A TLS publisher to 127.0.0.1:`port` trusting `ca`.
async fn tls_publisher(port: u16, ca: &Path, client_id: &str) -> Publisher {
    let endpoint = Endpoint::resolve(
        &format!("mqtts://127.0.0.1:{port}"),
        &TlsFiles {
            ca_file: Some(ca.to_owned()),
            ..TlsFiles::default()
        },
    )
    .expect("TLS settings for the test publisher");
    Publisher::connect_with(port, client_id, endpoint.transport()).await
}

async fn ingest(server: &Server) -> Value {
    let (status, health) = server.get("/health").await;
    assert_eq!(status, 200, "{health}");
    health["ingest"].clone()
}

fn count(ingest: &Value, key: &str) -> u64 {
    ingest[key].as_u64().unwrap_or(0)
}

/// `fixahead replay --mqtt-url url --mqtt-ca` (the simulators' TLS path) publishes the
/// example history to the broker; then waits (at most [`LIVENESS`]) until `server`
/// stored it, and requires exactly every line of it.
async fn replay_over_tls_is_stored(server: &Server, url: &str, pki: &Pki) {
    let before = {
        let i = ingest(server).await;
        count(&i, "stored_telemetry") + count(&i, "stored_faults")
    };
    let history = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/history");
    let lines = std::fs::read_to_string(format!("{history}/telemetry.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    let out = Command::new(bin())
        .args(["replay", history, "--mqtt-url", url, "--mqtt-ca"])
        .arg(pki.path("ca.pem"))
        .output()
        .expect("spawn fixahead replay");
    assert!(
        out.status.success(),
        "fixahead replay over TLS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("replay summary");
    assert_eq!(summary["published"].as_u64(), Some(lines), "{summary:#}");
    let deadline = std::time::Instant::now() + LIVENESS;
    loop {
        let i = ingest(server).await;
        if count(&i, "stored_telemetry") + count(&i, "stored_faults") >= before + lines {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replayed history was not stored ({before} + {lines} expected): {i:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let i = ingest(server).await;
    assert_eq!(
        count(&i, "stored_telemetry") + count(&i, "stored_faults"),
        before + lines,
        "{i:#}"
    );
    assert!(count(&i, "connects") >= 1, "{i:#}");
}

/// `server` (misconfigured with `what`) never connected, received or stored anything.
async fn assert_never_connected(server: &Server, what: &str) {
    let i = ingest(server).await;
    assert_eq!(count(&i, "connects"), 0, "{what}: {i:#}");
    assert_eq!(count(&i, "received"), 0, "{what}: {i:#}");
    assert_eq!(count(&i, "stored_telemetry"), 0, "{what}: {i:#}");
    let (_, devices) = server.get("/api/v1/devices").await;
    assert_eq!(
        devices["devices"].as_array().map_or(0, Vec::len),
        0,
        "{what}: {devices:#}"
    );
}

/// Starts fixahead against the broker at `url` trusting the CA in `ca` (a path), with
/// `extra` flags.
async fn start_trusting(dir: &Path, url: &str, ca: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--mqtt-url", url, "--mqtt-ca", ca];
    args.extend_from_slice(extra);
    Server::start_with(dir, None, free_port(), &args).await
}

// One scenario whose steps depend on each other: one broker, the failing instances checked last.
#[tokio::test(flavor = "multi_thread")]
async fn mqtts_with_a_custom_ca_stores_and_a_wrong_ca_or_host_never_connects() {
    if !extended_suite() {
        eprintln!(
            "skipped: mqtts_with_a_custom_ca_stores_and_a_wrong_ca_or_host_never_connects needs FIXAHEAD_IT=1 and the mosquitto package"
        );
        return;
    }
    let pki = Pki::generate();
    let (port, wrong_name_port) = (free_port(), free_port());
    // Two TLS listeners: one with the server certificate for 127.0.0.1, one with a
    // certificate from the same CA for another host name.
    let _broker = Mosquitto::start_with(
        port,
        &format!(
            "persistence false\nmax_inflight_messages 100\nmax_queued_messages 100000\n\
             certfile {}\nkeyfile {}\n\
             listener {wrong_name_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
            pki.arg("server.pem"),
            pki.arg("server-key.pem"),
            pki.arg("elsewhere.pem"),
            pki.arg("elsewhere-key.pem"),
        ),
    )
    .await;
    let url = format!("mqtts://127.0.0.1:{port}");

    // The failures first, side by side: a CA that did not sign the broker's
    // certificate, and a certificate for another name. They never get as far as an
    // MQTT CONNECT, so the shared client id does not matter.
    let wrong_ca_dir = tempfile::tempdir().unwrap();
    let wrong_ca = start_trusting(wrong_ca_dir.path(), &url, &pki.arg("other-ca.pem"), &[]).await;
    let wrong_name_dir = tempfile::tempdir().unwrap();
    let wrong_name_url = format!("mqtts://127.0.0.1:{wrong_name_port}");
    let wrong_name = start_trusting(
        wrong_name_dir.path(),
        &wrong_name_url,
        &pki.arg("ca.pem"),
        &[],
    )
    .await;
    for (server, what) in [
        (&wrong_ca, "a wrong CA"),
        (&wrong_name, "a wrong host name"),
    ] {
        // Two errors: it retried after the first, with backoff, and is still up.
        wait_for(
            LIVENESS,
            &format!("fixahead with {what} to fail a connection twice"),
            || async { count(&ingest(server).await, "connection_errors") >= 2 },
        )
        .await;
    }

    // The right CA: connected, subscribed (a probe is stored), then a stream.
    let dir = tempfile::tempdir().unwrap();
    let server = start_trusting(dir.path(), &url, &pki.arg("ca.pem"), &[]).await;
    // The same over MQTT 5, under a client id of its own.
    let dir5 = tempfile::tempdir().unwrap();
    let config5 = dir5.path().join("fixahead.toml");
    std::fs::write(&config5, "[mqtt]\nclient_id = \"fixahead-tls-v5\"\n").unwrap();
    let server5 = start_trusting(
        dir5.path(),
        &url,
        &pki.arg("ca.pem"),
        &[
            "--config",
            config5.to_str().unwrap(),
            "--mqtt-protocol",
            "5",
        ],
    )
    .await;
    let mut publisher = tls_publisher(port, &pki.path("ca.pem"), "it-tls-devices").await;
    // Mosquitto drops what nobody subscribed to: probe until one is stored.
    probe_until_stored(&mut publisher, "tls-probe", &[&server, &server5]).await;
    let base = now_ms() - 3_600_000;
    for seq in 1..=200u64 {
        publisher
            .publish(
                "fixahead/v1/tls-1/telemetry",
                telemetry(seq, base + seq as i64 * 1000, r#"{"vibration_g": 0.12}"#),
            )
            .await;
    }
    publisher.flush().await;
    for s in [&server, &server5] {
        wait_for(
            LIVENESS,
            "200 messages sent over TLS to be stored",
            || async {
                let (status, body) = s.get("/api/v1/devices/tls-1/telemetry?limit=1000").await;
                status == 200 && body["telemetry"].as_array().map_or(0, Vec::len) >= 200
            },
        )
        .await;
        let (_, body) = s.get("/api/v1/devices/tls-1/telemetry?limit=1000").await;
        assert_eq!(
            body["telemetry"].as_array().map_or(0, Vec::len),
            200,
            "{body:#}"
        );
    }

    // The simulators' TLS path: `fixahead replay` to the same broker.
    replay_over_tls_is_stored(&server, &url, &pki).await;

    // Meanwhile the misconfigured instances never connected and stored nothing.
    for (server, what) in [
        (&wrong_ca, "a wrong CA"),
        (&wrong_name, "a wrong host name"),
    ] {
        assert_never_connected(server, what).await;
    }
}

/// A CA file that cannot be used stops the start-up with a message naming it, rather
/// than a process that retries a connection that can never work. Needs no broker.
#[test]
fn a_bad_ca_file_stops_the_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = dir.path().join("missing.pem");
    for (ca, expect) in [(&missing, "missing.pem"), (&not_pem, "no PEM certificate")] {
        let out = Command::new(bin())
            .args(["run", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--mqtt-url", "mqtts://127.0.0.1:1", "--mqtt-ca"])
            .arg(ca)
            .args(["--http-listen", "127.0.0.1:0"])
            .output()
            .expect("spawn fixahead run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A CA file is for mqtts:// only.
    let out = Command::new(bin())
        .args(["run", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--mqtt-url", "mqtt://127.0.0.1:1", "--mqtt-ca"])
        .arg(&not_pem)
        .output()
        .expect("spawn fixahead run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("not mqtts://"), "{stderr}");
}
