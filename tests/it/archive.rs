//! The InfluxDB 2 archive against a real server that speaks InfluxDB 2's write API:
//! VictoriaMetrics (Debian package `victoria-metrics`; no InfluxDB 2 package exists),
//! started by the test on a free port. Runs with FIXAHEAD_IT=1; skipped otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    free_port, metric, service_stderr, sigterm, wait_for, Metrics, Publisher, Server,
};
use crate::mosquitto::extended_suite;

const VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";

/// A VictoriaMetrics on 127.0.0.1:`port`, killed on drop. Its storage directory
/// outlives restarts.
struct VictoriaMetrics {
    child: Option<Child>,
    port: u16,
    storage: tempfile::TempDir,
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl VictoriaMetrics {
    async fn start(port: u16) -> VictoriaMetrics {
        let mut vm = VictoriaMetrics {
            child: None,
            port,
            storage: tempfile::tempdir().unwrap(),
        };
        vm.spawn().await;
        vm
    }

    async fn spawn(&mut self) {
        assert!(
            Path::new(VICTORIA_METRICS).exists(),
            "FIXAHEAD_IT=1 but {VICTORIA_METRICS} is missing (apt-get install victoria-metrics)"
        );
        let child = Command::new(VICTORIA_METRICS)
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!(
                "-storageDataPath={}",
                self.storage.path().display()
            ))
            // The points carry event times of the last hours; keep them all.
            .arg("-retentionPeriod=100y")
            // No -dedup.minScrapeInterval: VictoriaMetrics then keeps a point written
            // twice as two samples (InfluxDB would overwrite it), so this test sees
            // every duplicate the archive sends.
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(service_stderr())
            .spawn()
            .expect("start victoria-metrics");
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/health", self.port);
        wait_for(
            Duration::from_secs(30),
            "victoria-metrics to answer /health",
            || async {
                reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
    }

    /// Stops it with SIGTERM and waits. VictoriaMetrics answers a write only after it
    /// buffered the points in memory and flushes that buffer to disk on SIGTERM, not on
    /// SIGKILL: a SIGKILL would lose points the server had accepted, which no client
    /// can tell, so the outage here is a clean stop.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("victoria-metrics running");
        sigterm(&child);
        let status = child.wait().expect("wait for victoria-metrics");
        assert!(status.success(), "victoria-metrics stopped with {status}");
    }

    /// The raw samples of every `telemetry_*` and `fault_*` series, by metric name and
    /// device: (timestamp, value) in time order, duplicates kept.
    async fn export(&self) -> BTreeMap<(String, String), Vec<(i64, f64)>> {
        let text = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/api/v1/export", self.port))
            .query(&[("match[]", r#"{__name__=~"(telemetry|fault)_.+"}"#)])
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("export body");
        let mut series: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("export line is JSON");
            let labels = &v["metric"];
            let name = labels["__name__"].as_str().unwrap().to_owned();
            let device = labels["device_id"].as_str().unwrap_or("").to_owned();
            // Every point of the test carries the model with characters that need
            // escaping, so a tag written wrong shows as a label read wrong.
            assert_eq!(labels["model"], MODEL, "{line}");
            assert_eq!(labels["device_type"], "washer", "{line}");
            if name.starts_with("fault_") {
                assert_eq!(labels["code"], "E21", "{line}");
                assert_eq!(labels["severity"], "major", "{line}");
            }
            let samples = series.entry((name, device)).or_default();
            let values = v["values"].as_array().unwrap();
            let times = v["timestamps"].as_array().unwrap();
            assert_eq!(values.len(), times.len());
            for (t, x) in times.iter().zip(values) {
                samples.push((t.as_i64().unwrap(), x.as_f64().unwrap()));
            }
        }
        for samples in series.values_mut() {
            samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        series
    }
}

/// A model name with a space, a comma and an equals sign: all need escaping in a tag.
const MODEL: &str = "WM-500 Eco,rev=2";
const DEVICES: [&str; 3] = ["arc-1", "arc-2", "arc-3"];

/// What was published, as the archive should show it: per (series, device), the
/// samples (event time, value).
#[derive(Default)]
struct Expected {
    series: BTreeMap<(String, String), Vec<(i64, f64)>>,
    next_seq: BTreeMap<&'static str, u64>,
    messages: u64,
    base_ms: i64,
}

impl Expected {
    fn new() -> Self {
        Self {
            // Event times from three hours ago, a second apart: in the past, unique
            // per device, within any retention.
            base_ms: chrono::Utc::now().timestamp_millis() - 3 * 3_600_000,
            ..Self::default()
        }
    }

    fn add(&mut self, name: &str, device: &str, ts: i64, value: f64) {
        self.series
            .entry((name.to_owned(), device.to_owned()))
            .or_default()
            .push((ts, value));
    }

    /// Publishes `per_device` messages for each device, every tenth a fault.
    async fn publish(&mut self, p: &mut Publisher, per_device: u64) {
        for _ in 0..per_device {
            for device in DEVICES {
                let seq = self.next_seq.entry(device).or_insert(1);
                let n = *seq;
                *seq += 1;
                let ts = self.base_ms + n as i64 * 1000;
                if n % 10 == 0 {
                    let (state, active) = if n % 20 == 0 {
                        ("cleared", 0.0)
                    } else {
                        ("raised", 1.0)
                    };
                    p.publish(
                        &format!("fixahead/v1/{device}/fault"),
                        format!(r#"{{"ts": {ts}, "seq": {n}, "type": "washer", "model": "{MODEL}", "code": "E21", "state": "{state}"}}"#),
                    )
                    .await;
                    self.add("fault_active", device, ts, active);
                    self.add("fault_seq", device, ts, n as f64);
                } else {
                    let vibration = (n % 50) as f64 / 100.0;
                    let drain = 10.0 + (n % 7) as f64;
                    p.publish(
                        &format!("fixahead/v1/{device}/telemetry"),
                        format!(r#"{{"ts": {ts}, "seq": {n}, "type": "washer", "model": "{MODEL}", "readings": {{"vibration_g": {vibration}, "drain_time_s": {drain}}}}}"#),
                    )
                    .await;
                    self.add("telemetry_vibration_g", device, ts, vibration);
                    self.add("telemetry_drain_time_s", device, ts, drain);
                    self.add("telemetry_seq", device, ts, n as f64);
                }
                self.messages += 1;
            }
        }
        p.flush().await;
    }

    fn samples(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }
}

/// While the archive is down: all `stored` messages are stored, writes failed, and a
/// backlog waits (one scrape of `/metrics`).
async fn holding_back(server: &Server, stored: f64) -> bool {
    let m = Metrics::scrape(server).await;
    m.get("fixahead_ingest_stored_total") == stored
        && m.get("fixahead_archive_write_failures_total") > 0.0
        && m.get("fixahead_archive_backlog_rows") > 0.0
}

/// Once the archive is back: all `total` points written and no backlog (one scrape of
/// `/metrics`).
async fn drained(server: &Server, total: f64) -> bool {
    let m = Metrics::scrape(server).await;
    m.get("fixahead_archive_points_total") == total && m.get("fixahead_archive_backlog_rows") == 0.0
}

fn write_config(dir: &Path, vm_port: u16) -> PathBuf {
    let path = dir.join("archive.toml");
    std::fs::write(
        &path,
        format!(
            "[archive.influxdb]\n\
             url = \"http://127.0.0.1:{vm_port}\"\n\
             org = \"fixahead-it\"\n\
             bucket = \"archive\"\n\
             token = \"it-token\"\n\
             batch_size = 100\n\
             flush_interval = \"50ms\"\n\
             timeout = \"5s\"\n\
             max_backoff = \"500ms\"\n"
        ),
    )
    .unwrap();
    path
}

/// Per series, the distinct sample times.
fn distinct_samples(got: &BTreeMap<(String, String), Vec<(i64, f64)>>) -> usize {
    got.values()
        .map(|samples| {
            let mut times: Vec<i64> = samples.iter().map(|s| s.0).collect();
            times.dedup();
            times.len()
        })
        .sum()
}

/// Waits until VictoriaMetrics shows every expected sample (it makes written points
/// searchable within seconds), then requires exactly the expected points, with their
/// tags and values, and no point twice beyond what fixahead reports as `uncertain`:
/// points in a write that got no clear answer and was sent again. Such a point can
/// reach a server twice, as identical copies, and InfluxDB keeps one (same series and
/// time); VictoriaMetrics here runs without deduplication so that every copy shows.
async fn assert_archive_is_exact(vm: &VictoriaMetrics, expected: &Expected, uncertain: f64) {
    let want = expected.samples();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut got = vm.export().await;
    while distinct_samples(&got) < want {
        assert!(
            std::time::Instant::now() < deadline,
            "victoria-metrics shows {} distinct samples of {want} after 60 s",
            distinct_samples(&got)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        got = vm.export().await;
    }
    let mut twice = 0;
    for (key, want_samples) in &expected.series {
        let mut got_samples = got.get(key).cloned().unwrap_or_default();
        let before = got_samples.len();
        got_samples.dedup_by(|b, a| {
            let same_time = a.0 == b.0;
            assert!(
                !same_time || a.1 == b.1,
                "{key:?} at {}: two different values {} and {}",
                a.0,
                a.1,
                b.1
            );
            same_time
        });
        // Every point has one `seq` field: its copies count the points sent twice.
        if key.0.ends_with("_seq") {
            twice += before - got_samples.len();
        }
        let times: Vec<i64> = got_samples.iter().map(|s| s.0).collect();
        let want_times: Vec<i64> = want_samples.iter().map(|s| s.0).collect();
        assert_eq!(times, want_times, "{key:?}: every point, none missing");
        for ((t, g), (_, w)) in got_samples.iter().zip(want_samples) {
            assert!((g - w).abs() < 1e-9, "{key:?} at {t}: {g} != {w}");
        }
    }
    assert!(
        twice as f64 <= uncertain,
        "{twice} points arrived twice, but fixahead resent only {uncertain} after writes with no clear answer"
    );
    if twice > 0 {
        eprintln!(
            "{twice} points arrived twice, all resent after a lost answer ({uncertain} uncertain)"
        );
    }
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !expected.series.contains_key(*k))
        .collect();
    assert!(extra.is_empty(), "series nobody published: {extra:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn influxdb_archive_rides_out_a_server_outage_and_writes_every_point_once() {
    if !extended_suite() {
        eprintln!(
            "skipped: influxdb_archive_rides_out_a_server_outage_and_writes_every_point_once needs FIXAHEAD_IT=1 and the victoria-metrics package"
        );
        return;
    }
    let mut vm = VictoriaMetrics::start(free_port()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), vm.port);
    let config = config.to_str().unwrap();
    let mut server = Server::start_with(dir.path(), None, free_port(), &["--config", config]).await;
    let mut publisher = Publisher::connect(server.mqtt_port, "it-archive").await;
    let mut expected = Expected::new();

    // 1. The server is up: points flow.
    expected.publish(&mut publisher, 200).await;
    wait_for(
        Duration::from_secs(60),
        "the first points to reach the archive",
        || async { metric(&server, "fixahead_archive_points_total").await > 0.0 },
    )
    .await;

    // 2. It stops mid-stream; devices keep publishing and fixahead keeps storing.
    vm.stop();
    expected.publish(&mut publisher, 200).await;
    let stored = expected.messages as f64;
    wait_for(
        Duration::from_secs(60),
        "fixahead to store everything while the archive is down, with failed writes and a backlog",
        || holding_back(&server, stored),
    )
    .await;
    let (_, health) = server.get("/health").await;
    assert!(
        health["archive"]["backlog"].as_u64().unwrap() > 0,
        "{health}"
    );

    // 3. It comes back on the same storage; more messages arrive meanwhile.
    vm.spawn().await;
    expected.publish(&mut publisher, 150).await;
    let total = expected.messages as f64;
    wait_for(
        Duration::from_secs(120),
        "the archive to drain its backlog",
        || drained(&server, total),
    )
    .await;
    assert_eq!(
        metric(&server, "fixahead_archive_points_refused_total").await,
        0.0
    );
    assert!(metric(&server, "fixahead_archive_last_success_timestamp_seconds").await > 0.0);
    let uncertain = metric(&server, "fixahead_archive_points_uncertain_total").await;
    assert_archive_is_exact(&vm, &expected, uncertain).await;

    // 4. fixahead restarts: the archive resumes at its cursor and sends only what is new.
    assert!(server.stop().success());
    let server = Server::start_with(dir.path(), None, free_port(), &["--config", config]).await;
    let mut publisher = Publisher::connect(server.mqtt_port, "it-archive-2").await;
    let before = expected.messages;
    expected.publish(&mut publisher, 20).await;
    let new = (expected.messages - before) as f64;
    wait_for(
        Duration::from_secs(60),
        "the restarted archive to send the new points",
        || async {
            metric(&server, "fixahead_archive_points_total").await >= new
                && metric(&server, "fixahead_archive_backlog_rows").await == 0.0
        },
    )
    .await;
    assert_eq!(
        metric(&server, "fixahead_archive_points_total").await,
        new,
        "only the points stored since the restart"
    );
    let uncertain = uncertain + metric(&server, "fixahead_archive_points_uncertain_total").await;
    assert_archive_is_exact(&vm, &expected, uncertain).await;
}
