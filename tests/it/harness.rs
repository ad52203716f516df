//! Spawning the binary, publishing over MQTT, polling the API.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use domain::Timestamp;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, Transport};
use serde_json::Value;
use simulators::FleetConfig;

/// The admin key every `Server` starts with (`FIXAHEAD_ADMIN_KEY`) and sends by default.
pub(crate) const ADMIN_KEY: &str = "fxa_it-admin-key-0123456789abcdefghijklmnop";

/// The binary under test.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_fixahead")
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn quiet() -> bool {
    std::env::var_os("TEST_LOG").is_none()
}

/// Where a spawned service's stderr goes: the test's own with `TEST_LOG` set, else
/// nowhere.
pub(crate) fn service_stderr() -> Stdio {
    if quiet() {
        Stdio::null()
    } else {
        Stdio::inherit()
    }
}

/// Sends SIGTERM to `child` (a clean stop); does not wait for it.
pub(crate) fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// Runs a `fixahead` subcommand to completion and returns its stdout.
pub(crate) fn run_cli(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .stderr(if quiet() {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .output()
        .expect("spawn fixahead");
    assert!(
        out.status.success(),
        "fixahead {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a `fixahead` subcommand that prints a JSON summary and returns the summary.
pub(crate) fn run_cli_json(args: &[&str]) -> Value {
    let out = run_cli(args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("fixahead {args:?} did not print a JSON summary ({e}): {out}"))
}

/// A model directory trained once per test run from a simulated history, through
/// the public commands `fixahead simulate --out` and `fixahead train`.
///
/// The history covers the full year before the scenarios (which start on
/// 2026-09-01): the simulator has seasons, and a model that never saw one raises false
/// alarms in it.
pub(crate) fn trained_models() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_stale_model_dirs();
        let root = std::env::temp_dir().join(format!("fixahead-it-models-{}", std::process::id()));
        let history = root.join("history");
        let models = root.join("models");
        let _ = std::fs::remove_dir_all(&root);
        run_cli(&[
            "simulate",
            "--out",
            history.to_str().unwrap(),
            "--devices",
            "200",
            "--days",
            "365",
            "--seed",
            "11",
            "--start",
            "2025-09-01T00:00:00Z",
            "--refrigerator-interval",
            "3600",
            "--kinds",
            "washer,refrigerator",
        ]);
        run_cli(&[
            "train",
            "--history",
            history.to_str().unwrap(),
            "--horizon",
            "14d",
            "--out",
            models.to_str().unwrap(),
        ]);
        // The history (hundreds of MB) is not needed once the models exist; the models
        // (a few MB) stay for this process's tests, and the next run removes them.
        let _ = std::fs::remove_dir_all(&history);
        models
    })
}

/// A fleet of `kinds` for the [`trained_models`] to score: refrigerators report hourly,
/// the cadence the models were trained on, and there are no confounders (no sensor
/// faults, no poor installations).
pub(crate) fn scored_fleet_config(
    devices: usize,
    seed: u64,
    start: Timestamp,
    kinds: &[&str],
) -> FleetConfig {
    FleetConfig {
        devices,
        seed,
        start,
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        sensor_fault_share: 0.0,
        poor_installation_share: 0.0,
        refrigerator_interval_s: 3600,
        ..FleetConfig::default()
    }
}

/// Removes the model directories of earlier test processes that are gone: a static
/// is never dropped, so each run of the suite would otherwise leave one behind.
fn remove_stale_model_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("fixahead-it-models-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A running `fixahead run`, killed on drop.
pub(crate) struct Server {
    child: Option<Child>,
    /// HTTP API address.
    pub(crate) http: SocketAddr,
    /// MQTT port devices connect to.
    pub(crate) mqtt_port: u16,
}

impl Server {
    /// Starts the embedded-broker pipeline on free ports.
    pub(crate) async fn start(data_dir: &Path, model_dir: Option<&Path>) -> Server {
        Self::start_with(data_dir, model_dir, free_port(), &[]).await
    }

    /// Starts with an explicit MQTT port (the embedded broker's, or an external broker's
    /// when `extra` holds `--mqtt-url`). The embedded broker lets any client in
    /// (`--allow-anonymous`): these tests are about the pipeline, device_auth.rs about
    /// credentials.
    pub(crate) async fn start_with(
        data_dir: &Path,
        model_dir: Option<&Path>,
        mqtt_port: u16,
        extra: &[&str],
    ) -> Server {
        let mut args = vec!["--allow-anonymous"];
        args.extend_from_slice(extra);
        Self::start_args(data_dir, model_dir, mqtt_port, &args).await
    }

    /// Starts with exactly these extra flags: without `--allow-anonymous`, the embedded
    /// broker requires device credentials.
    pub(crate) async fn start_args(
        data_dir: &Path,
        model_dir: Option<&Path>,
        mqtt_port: u16,
        extra: &[&str],
    ) -> Server {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = Command::new(bin());
        cmd.env("FIXAHEAD_ADMIN_KEY", ADMIN_KEY)
            .arg("run")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--mqtt-listen")
            .arg(format!("127.0.0.1:{mqtt_port}"))
            .arg("--http-listen")
            .arg(http.to_string())
            .args(extra)
            .stdout(Stdio::null());
        if let Some(m) = model_dir {
            cmd.arg("--model-dir").arg(m);
        } else {
            cmd.arg("--model-dir").arg(data_dir.join("no-models"));
        }
        cmd.stderr(service_stderr());
        let child = cmd.spawn().expect("spawn fixahead run");
        let server = Server {
            child: Some(child),
            http,
            mqtt_port,
        };
        wait_for(
            Duration::from_secs(60),
            "the server to answer /health",
            || async {
                get(http, "/health")
                    .await
                    .map(|(s, _)| s == 200)
                    .unwrap_or(false)
            },
        )
        .await;
        server
    }

    /// GET a path with the admin key, expecting JSON; returns status and body.
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        get(self.http, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Sends `method path` with `key` (none: no `Authorization` header) and an optional
    /// JSON body; returns status and body (non-JSON bodies become a JSON string).
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method.clone(), format!("http://{}{path}", self.http))
            .timeout(Duration::from_secs(10));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// How many telemetry rows `device` has stored (read up to 10,000; 0 when the
    /// device is unknown).
    pub(crate) async fn stored_telemetry(&self, device: &str) -> usize {
        let path = format!("/api/v1/devices/{device}/telemetry?limit=10000");
        self.get(&path).await.1["telemetry"]
            .as_array()
            .map_or(0, Vec::len)
    }

    /// A client that sends the admin key on every request.
    pub(crate) fn client(&self) -> reqwest::Client {
        admin_client()
    }

    /// Stops with SIGTERM (a clean shutdown) and waits for the exit status.
    ///
    /// The bound is a liveness check, not a speed target: a clean stop commits at most
    /// one batch, and 10 s is well under the 30 s MQTT keep-alive, so a shutdown that
    /// waits for the next broker event instead of acting on the signal fails here.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        sigterm(&child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills with SIGKILL (`kill -9`: no shutdown code runs) and waits for the exit.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("server running");
        child.kill().expect("SIGKILL fixahead");
        child.wait().expect("wait for fixahead");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client that sends [`ADMIN_KEY`] on every request.
pub(crate) fn admin_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {ADMIN_KEY}")).expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

/// GET with the admin key, returning status and JSON body (non-JSON bodies become a
/// JSON string).
pub(crate) async fn get(http: SocketAddr, path: &str) -> Result<(u16, Value), reqwest::Error> {
    let resp = admin_client()
        .get(format!("http://{http}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

/// Polls `check` until it is true; panics with `what` after `timeout`.
pub(crate) async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An MQTT publisher that waits for the broker's PUBACK of everything it sent.
pub(crate) struct Publisher {
    client: AsyncClient,
    eventloop: EventLoop,
    sent: u64,
    acked: u64,
}

impl Publisher {
    /// Connects to 127.0.0.1:`port`.
    pub(crate) async fn connect(port: u16, client_id: &str) -> Publisher {
        Self::connect_with(port, client_id, Transport::Tcp).await
    }

    /// Connects to 127.0.0.1:`port` with a username and password.
    pub(crate) async fn connect_as(
        port: u16,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Publisher {
        Self::connect_opts(mqtt_options(port, client_id, Some((username, password)))).await
    }

    /// Connects to 127.0.0.1:`port` over `transport` (TLS for an `mqtts://` broker).
    pub(crate) async fn connect_with(
        port: u16,
        client_id: &str,
        transport: Transport,
    ) -> Publisher {
        let mut opts = mqtt_options(port, client_id, None);
        opts.set_transport(transport);
        Self::connect_opts(opts).await
    }

    async fn connect_opts(opts: MqttOptions) -> Publisher {
        let port = opts.broker_address().1;
        let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    assert!(
                        Instant::now() < deadline,
                        "MQTT connect to port {port} failed: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(_) => panic!("MQTT connect to port {port} timed out"),
            }
        }
        Publisher {
            client,
            eventloop,
            sent: 0,
            acked: 0,
        }
    }

    /// Queues a QoS 1 publish.
    pub(crate) async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("queue publish");
        self.sent += 1;
        // Keep the event loop moving so the request channel never fills up.
        if self.sent - self.acked > 500 {
            self.flush().await;
        }
    }

    /// Drives the connection until the broker acknowledged every publish.
    pub(crate) async fn flush(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acked < self.sent {
            assert!(
                Instant::now() < deadline,
                "broker did not acknowledge {} publishes",
                self.sent - self.acked
            );
            match tokio::time::timeout(Duration::from_secs(10), self.eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => self.acked += 1,
                Ok(Ok(Event::Outgoing(Outgoing::Publish(_)))) | Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("MQTT publisher connection failed: {e}"),
                Err(_) => panic!("no progress publishing for 10 s"),
            }
        }
    }
}

/// The options the test clients use, with optional credentials.
pub(crate) fn mqtt_options(port: u16, client_id: &str, login: Option<(&str, &str)>) -> MqttOptions {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1024 * 1024, 1024 * 1024)
        .set_inflight(100);
    if let Some((user, password)) = login {
        opts.set_credentials(user, password);
    }
    opts
}

/// A v1 telemetry payload.
pub(crate) fn telemetry(seq: u64, ts_ms: i64, readings: &str) -> String {
    washer_payload(
        seq,
        ts_ms,
        &format!(r#""fw": "2.4.1", "readings": {readings}"#),
    )
}

/// A v1 fault payload: washer fault `code` raised.
pub(crate) fn raised_fault(seq: u64, ts_ms: i64, code: &str) -> String {
    washer_payload(
        seq,
        ts_ms,
        &format!(r#""code": "{code}", "state": "raised""#),
    )
}

/// A v1 payload of a `WM-500` washer: `ts`, `seq`, `type` and `model`, then `fields`
/// (JSON object members, such as `"code": "E23", "state": "raised"`).
pub(crate) fn washer_payload(seq: u64, ts_ms: i64, fields: &str) -> String {
    format!(r#"{{"ts": {ts_ms}, "seq": {seq}, "type": "washer", "model": "WM-500", {fields}}}"#)
}

/// The value of one Prometheus series (`name` or `name{labels}`), summed over all
/// series of that name when `series` has no labels.
pub(crate) async fn metric(server: &Server, series: &str) -> f64 {
    Metrics::scrape(server).await.get(series)
}

/// One scrape of `/metrics`, to read several series from the same moment.
pub(crate) struct Metrics(String);

impl Metrics {
    pub(crate) async fn scrape(server: &Server) -> Metrics {
        let (status, body) = server.get("/metrics").await;
        assert_eq!(status, 200);
        Metrics(body.as_str().expect("/metrics is text").to_owned())
    }

    /// The value of one series, as [`metric`] reads it; panics if there is none.
    pub(crate) fn get(&self, series: &str) -> f64 {
        let mut found = None;
        for line in self.0.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let matches =
                name == series || (!series.contains('{') && name.split('{').next() == Some(series));
            if matches {
                *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
            }
        }
        found.unwrap_or_else(|| panic!("/metrics has no {series}:\n{}", self.0))
    }
}

/// Wall-clock milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Publishes probe telemetry of device `device` until every server in `servers` has
/// stored one. Before a persistent session exists, a broker drops what nobody has
/// subscribed to yet, so tests against an external broker wait for this first.
pub(crate) async fn probe_until_stored(
    publisher: &mut Publisher,
    device: &str,
    servers: &[&Server],
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let topic = format!("fixahead/v1/{device}/telemetry");
    let path = format!("/api/v1/devices/{device}");
    for seq in 1.. {
        publisher
            .publish(
                &topic,
                telemetry(seq, now_ms() - 60_000, r#"{"vibration_g": 0.1}"#),
            )
            .await;
        publisher.flush().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut all = true;
        for server in servers {
            all &= server.get(&path).await.0 == 200;
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no probe of {device} was stored: not subscribed?"
        );
    }
}
