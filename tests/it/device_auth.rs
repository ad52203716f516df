//! Device credentials (issue 5): the embedded broker lets in only devices with their
//! own credentials unless `--allow-anonymous`; `fixahead devices export-mosquitto`
//! gives Mosquitto the same credentials plus per-device topic ACLs (extended suite).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectReturnCode, Event, Packet};

use crate::harness::{
    bin, free_port, metric, mqtt_options, run_cli, telemetry, wait_for, Publisher, Server,
};
use crate::mosquitto::{extended_suite, Mosquitto};

/// What a connection attempt came to.
#[derive(Debug, PartialEq)]
enum Attempt {
    Accepted,
    /// The broker refused: a CONNACK with this code (Mosquitto), or the connection
    /// closed before any CONNACK (rumqttd), `None`.
    Refused(Option<ConnectReturnCode>),
}

/// Connects once and reports whether the broker let the client in.
async fn attempt(port: u16, client_id: &str, login: Option<(&str, &str)>) -> Attempt {
    let (client, mut eventloop) = AsyncClient::new(mqtt_options(port, client_id, login), 10);
    // A liveness bound only: a broker decides within milliseconds.
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return if ack.code == ConnectReturnCode::Success {
                        Attempt::Accepted
                    } else {
                        Attempt::Refused(Some(ack.code))
                    };
                }
                Ok(_) => {}
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                    return Attempt::Refused(Some(code))
                }
                Err(_) => return Attempt::Refused(None),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no answer to {client_id}'s CONNECT within 20 s"));
    let _ = client.try_disconnect();
    outcome
}

fn data_arg(dir: &Path) -> String {
    dir.to_str().unwrap().to_owned()
}

/// `fixahead devices add ID`: the generated password.
fn add_device(data: &Path, id: &str) -> String {
    let out = run_cli(&["devices", "add", id, "--data-dir", &data_arg(data)]);
    let password = out.trim().to_owned();
    assert_eq!(
        password.len(),
        32,
        "one generated password on stdout: {out:?}"
    );
    password
}

/// Runs `fixahead` with `stdin`; returns (success, stdout, stderr).
fn run_with_stdin(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fixahead");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn stored_seqs(server: &Server, device: &str) -> Vec<u64> {
    let (status, body) = server
        .get(&format!("/api/v1/devices/{device}/telemetry?limit=100"))
        .await;
    if status == 404 {
        return Vec::new();
    }
    body["telemetry"]
        .as_array()
        .map(|t| t.iter().filter_map(|m| m["seq"].as_u64()).collect())
        .unwrap_or_default()
}

/// The password `wm-auth-2` is provisioned with, on stdin.
const SUPPLIED: &str = "provisioned-by-factory-0042";

/// Event time of the test telemetry.
const TS: i64 = 1_795_500_000_000;

/// Queues telemetry `seq` of `device` (one reading at [`TS`]).
async fn publish_telemetry(publisher: &mut Publisher, device: &str, seq: u64) {
    publisher
        .publish(
            &format!("fixahead/v1/{device}/telemetry"),
            telemetry(seq, TS, r#"{"vibration_g": 0.1}"#),
        )
        .await;
}

/// Provisions `wm-auth-1` (generated password, returned) and `wm-auth-2` ([`SUPPLIED`]
/// on stdin) with `fixahead devices`, and checks that bad input is a clear error.
fn provision_devices(data: &Path) -> String {
    let pw1 = add_device(data, "wm-auth-1");
    // A provisioning system supplies its own password on stdin.
    let (ok, stdout, stderr) = run_with_stdin(
        &[
            "devices",
            "add",
            "wm-auth-2",
            "--password-stdin",
            "--data-dir",
            &data_arg(data),
        ],
        &format!("{SUPPLIED}\n"),
    );
    assert!(ok && stdout.is_empty(), "{stdout}{stderr}");
    // Bad input is a clear error, never a panic.
    for (args, expect) in [
        (vec!["devices", "add", "bad.id"], "invalid device id"),
        (
            vec!["devices", "add", "wm-auth-1"],
            "already has credentials",
        ),
        (vec!["devices", "remove", "wm-nobody"], "has no credentials"),
    ] {
        let mut args = args;
        let d = data_arg(data);
        args.extend(["--data-dir", &d]);
        let (ok, _, stderr) = run_with_stdin(&args, "");
        assert!(!ok && stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (ok, _, stderr) = run_with_stdin(
        &[
            "devices",
            "add",
            "wm-auth-3",
            "--password-stdin",
            "--data-dir",
            &data_arg(data),
        ],
        "short\n",
    );
    assert!(!ok && stderr.contains("at least 16"), "{stderr}");
    let listed = run_cli(&["devices", "list", "--data-dir", &data_arg(data)]);
    let ids: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids, ["wm-auth-1", "wm-auth-2"], "{listed}");
    pw1
}

/// Refused by the embedded broker on `port`: unknown user, wrong password, no
/// credentials, someone else's client id (a session takeover), the ingestor's client
/// id; `wm-auth-1` with `pw1` gets in. Each refusal is counted by reason.
async fn assert_only_own_credentials_get_in(server: &Server, port: u16, pw1: &str) {
    let refused = Attempt::Refused(None);
    assert_eq!(attempt(port, "wm-x", Some(("wm-x", pw1))).await, refused);
    assert_eq!(
        attempt(
            port,
            "wm-auth-1",
            Some(("wm-auth-1", "not-the-password-at-all"))
        )
        .await,
        refused
    );
    assert_eq!(attempt(port, "wm-auth-1", None).await, refused);
    assert_eq!(
        attempt(port, "wm-auth-2", Some(("wm-auth-1", pw1))).await,
        refused
    );
    assert_eq!(
        attempt(port, "wm-auth-1:", Some(("wm-auth-1", pw1))).await,
        refused
    );
    assert_eq!(
        attempt(
            port,
            "anything",
            Some(("fixahead:ingest", "guess-guess-guess"))
        )
        .await,
        refused
    );
    assert_eq!(
        attempt(port, "wm-auth-1", Some(("wm-auth-1", pw1))).await,
        Attempt::Accepted
    );
    for (reason, at_least) in [
        ("unknown_user", 1.0),
        ("wrong_password", 2.0),
        ("client_id", 2.0),
    ] {
        let n = metric(
            server,
            &format!("fixahead_broker_auth_refused_total{{reason=\"{reason}\"}}"),
        )
        .await;
        assert!(n >= at_least, "{reason}: {n}");
    }
}

/// The API issues credentials for `wm-api-1` (once) and revokes them; revocation
/// counts from the next connection to the broker on `port`.
async fn api_issues_and_revokes_credentials(server: &Server, port: u16) {
    let http = server.client();
    let url = format!("http://{}/api/v1/devices/wm-api-1/credentials", server.http);
    let resp = http.post(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["username"], "wm-api-1");
    let api_pw = body["password"].as_str().unwrap().to_owned();
    assert_eq!(http.post(&url).send().await.unwrap().status().as_u16(), 409);
    assert_eq!(
        attempt(port, "wm-api-1", Some(("wm-api-1", &api_pw))).await,
        Attempt::Accepted
    );
    let bad = format!("http://{}/api/v1/devices/bad.id/credentials", server.http);
    assert_eq!(http.post(&bad).send().await.unwrap().status().as_u16(), 400);
    assert_eq!(
        http.delete(&url).send().await.unwrap().status().as_u16(),
        204
    );
    assert_eq!(
        http.delete(&url).send().await.unwrap().status().as_u16(),
        404
    );
    assert_eq!(
        attempt(port, "wm-api-1", Some(("wm-api-1", &api_pw))).await,
        Attempt::Refused(None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_broker_lets_in_only_devices_with_their_own_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let pw1 = provision_devices(data);

    let port = free_port();
    let server = Server::start_args(data, None, port, &[]).await;

    // Correct credentials: connected, published, stored (through fixahead's own
    // ingest client, which the broker never refuses).
    let mut p = Publisher::connect_as(port, "wm-auth-1", "wm-auth-1", &pw1).await;
    publish_telemetry(&mut p, "wm-auth-1", 1).await;
    p.flush().await;
    let mut p2 = Publisher::connect_as(port, "wm-auth-2:gateway", "wm-auth-2", SUPPLIED).await;
    publish_telemetry(&mut p2, "wm-auth-2", 7).await;
    p2.flush().await;
    wait_for(
        Duration::from_secs(30),
        "both devices' telemetry stored",
        || async {
            stored_seqs(&server, "wm-auth-1").await == [1]
                && stored_seqs(&server, "wm-auth-2").await == [7]
        },
    )
    .await;

    assert_only_own_credentials_get_in(&server, port, &pw1).await;
    api_issues_and_revokes_credentials(&server, port).await;

    // The CLI beside the running server: takes effect without a restart.
    run_cli(&[
        "devices",
        "remove",
        "wm-auth-1",
        "--data-dir",
        &data_arg(data),
    ]);
    assert_eq!(
        attempt(port, "wm-auth-1", Some(("wm-auth-1", &pw1))).await,
        Attempt::Refused(None)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_allow_anonymous_anything_connects() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = Server::start_args(dir.path(), None, port, &["--allow-anonymous"]).await;
    assert_eq!(attempt(port, "", None).await, Attempt::Accepted);
    assert_eq!(
        attempt(port, "whoever", Some(("nobody", "wrong"))).await,
        Attempt::Accepted
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mosquitto_with_the_export_keeps_each_device_to_its_own_topics() {
    if !extended_suite() {
        eprintln!(
            "skipped: mosquitto_with_the_export_keeps_each_device_to_its_own_topics needs FIXAHEAD_IT=1 and the mosquitto package"
        );
        return;
    }
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let dir = tempfile::tempdir().unwrap();
    // Mosquitto started as root reads its files as the `mosquitto` user.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let pw_a = add_device(&data, "wm-a");
    let pw_b = add_device(&data, "wm-b");
    let pw_ingest = add_device(&data, "fixahead-ingest");
    let export = dir.path().join("mosquitto");
    run_cli(&[
        "devices",
        "export-mosquitto",
        export.to_str().unwrap(),
        "--data-dir",
        &data_arg(&data),
    ]);
    let (passwd, acl) = (export.join("passwd"), export.join("acl"));
    for f in [&passwd, &acl] {
        let meta = std::fs::metadata(f).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", f.display());
        if meta.uid() == 0 {
            // As docs/operations.md says: hand the files to the broker's user.
            let ok = Command::new("chown")
                .arg("mosquitto:")
                .arg(f)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown mosquitto: {}", f.display());
        }
    }
    std::fs::set_permissions(&export, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    let _broker = Mosquitto::start_with(
        port,
        &format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\npersistence false\n",
            passwd.display(),
            acl.display()
        ),
    )
    .await;

    // Refused by Mosquitto: wrong password, unknown user, anonymous.
    let refused = |a: &Attempt| {
        matches!(
            a,
            Attempt::Refused(Some(
                ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
            ))
        )
    };
    for (client, login) in [
        ("wm-a", Some(("wm-a", "not-the-password-at-all"))),
        ("wm-z", Some(("wm-z", pw_a.as_str()))),
        ("anon", None),
    ] {
        let a = attempt(port, client, login).await;
        assert!(refused(&a), "{client} {login:?}: {a:?}");
    }

    // fixahead's ingest reads through the exported ingest account.
    let config = dir.path().join("fixahead.toml");
    std::fs::write(
        &config,
        format!("[mqtt]\nusername = \"fixahead-ingest\"\npassword = \"{pw_ingest}\"\n"),
    )
    .unwrap();
    let url = format!("mqtt://127.0.0.1:{port}");
    let server = Server::start_with(
        &data,
        None,
        free_port(),
        &["--mqtt-url", &url, "--config", config.to_str().unwrap()],
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "fixahead to connect to Mosquitto",
        || async { metric(&server, "fixahead_mqtt_connects_total").await >= 1.0 },
    )
    .await;

    // Device A forges a message under B's id, then publishes under its own. Mosquitto
    // (MQTT 3.1.1) acknowledges the forged publish and drops it silently; the one
    // subscription delivers A's messages in order, so once A's own message is stored
    // the forged one would have been too.
    let mut a = Publisher::connect_as(port, "wm-a", "wm-a", &pw_a).await;
    publish_telemetry(&mut a, "wm-b", 666).await;
    publish_telemetry(&mut a, "wm-a", 1).await;
    a.flush().await;
    wait_for(
        Duration::from_secs(30),
        "A's own message stored",
        || async { stored_seqs(&server, "wm-a").await == [1] },
    )
    .await;
    assert!(
        stored_seqs(&server, "wm-b").await.is_empty(),
        "A's message under B's id got through"
    );
    // B publishing under its own id is delivered: the ACL denies only what is not its own.
    let mut b = Publisher::connect_as(port, "wm-b", "wm-b", &pw_b).await;
    publish_telemetry(&mut b, "wm-b", 2).await;
    b.flush().await;
    wait_for(
        Duration::from_secs(30),
        "B's own message stored",
        || async { stored_seqs(&server, "wm-b").await == [2] },
    )
    .await;
    assert_eq!(stored_seqs(&server, "wm-a").await, [1]);
}
