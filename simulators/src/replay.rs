//! Replay: publish a history's `telemetry.jsonl` to an MQTT broker.
//!
//! Any history in the format of [`crate::history`] can be replayed, simulated or
//! recorded from a real fleet: each line is published as-is (the line is a valid v1
//! payload: v1 ignores the extra `msg` field and accepts a `device_id` equal to the
//! topic's) with QoS 1 to `fixahead/v1/{device_id}/{msg}`.
//! - A history directory's `devices.jsonl` gives each device's `batch` and `region`,
//!   which devices report but history lines leave out: they are appended to each line
//!   of a device listed there that does not carry them itself (the rest of the line
//!   stays byte for byte). Replaying a single file, or a device missing from
//!   `devices.jsonl` (or a line of it that does not parse), publishes lines as-is.
//!
//! - The file is streamed line by line (a reader thread, a bounded channel), never
//!   loaded whole; memory stays flat however long the history is.
//! - Per-device order is kept: devices are spread over [`ReplayConfig::connections`]
//!   connections by a stable hash of the device id, so a device always uses the same
//!   connection, and lines are published in file order.
//! - With [`ReplayConfig::speed`] `Some(x)`, publishing is paced by event time: the
//!   line with `ts = t` goes out `(t - first ts) / x` after the start (a line without a
//!   readable `ts`, or with one earlier than the lines before it, goes out at once).
//!   `None` publishes as fast as the broker takes them.
//! - Lines that cannot be routed are not published and are counted in
//!   [`ReplaySummary::skipped`] by reason: `empty_line`, `malformed_json` (not JSON),
//!   `not_an_object`, `missing_device_id`, `invalid_device_id` (not a string of 1-64
//!   `[A-Za-z0-9_-]`), `missing_msg`, `invalid_msg` (not `telemetry` or `fault`),
//!   `line_too_long` (over 128 KiB). Everything else is published, even a line fixahead
//!   will reject (say, a reading out of range): it becomes a dead letter there, exactly
//!   as if a device had sent it.
//! - [`replay`] returns once every publish is acknowledged by the broker (it gives up
//!   after 30 s without any acknowledgement arriving), or soon after cancellation.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use domain::{DeviceId, MessageKind, Timestamp};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::live::{validate_connections, Pool};
use crate::{BrokerTarget, Error, Result};

/// Longest line published; longer ones are skipped as `line_too_long`.
pub const MAX_LINE_BYTES: usize = 128 * 1024;
/// Lines per message between the reader thread and the publisher.
const BATCH: usize = 512;
/// Give up waiting for acknowledgements after this long without one.
const DRAIN_STALL: Duration = Duration::from_secs(30);
/// After cancellation, wait at most this long (without progress) for acknowledgements.
const CANCEL_DRAIN_STALL: Duration = Duration::from_secs(3);

/// Where and how fast to replay.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// The broker (default client id `fixahead-replay`).
    pub broker: BrokerTarget,
    /// Event-time seconds per wall-clock second; `None` publishes as fast as possible.
    pub speed: Option<f64>,
    /// MQTT connections, 1-10000.
    pub connections: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            broker: BrokerTarget {
                client_id: "fixahead-replay".into(),
                ..BrokerTarget::default()
            },
            speed: None,
            connections: 1,
        }
    }
}

impl ReplayConfig {
    fn validate(&self) -> Result<()> {
        if let Some(s) = self.speed {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::InvalidLiveConfig(format!(
                    "speed must be a positive number, got {s}"
                )));
            }
        }
        self.broker.validate()?;
        validate_connections(self.connections)
    }
}

/// What [`replay`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    /// Lines read (published or skipped).
    pub lines: u64,
    /// Lines published.
    pub published: u64,
    /// PUBACKs received from the broker.
    pub acked: u64,
    /// Lines not published, by reason (see the [module documentation](self)).
    pub skipped: BTreeMap<String, u64>,
    /// Event time of the first published line with a readable `ts`.
    pub first_ts: Option<Timestamp>,
    /// Event time of the last published line with a readable `ts`.
    pub last_ts: Option<Timestamp>,
}

/// Publishes `dir/telemetry.jsonl` (or `dir` itself, if it is a file) to the broker,
/// keeping per-device order; see the [module documentation](self).
pub async fn replay(
    dir: &Path,
    config: ReplayConfig,
    cancel: CancellationToken,
) -> Result<ReplaySummary> {
    config.validate()?;
    let path = if dir.is_dir() {
        dir.join("telemetry.jsonl")
    } else {
        dir.to_owned()
    };
    let file = File::open(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::InvalidReplay {
            path: dir.to_owned(),
            reason: if dir.is_dir() {
                "it has no telemetry.jsonl".into()
            } else {
                "no such file or directory".into()
            },
        },
        _ => Error::io(&path, e),
    })?;

    let attributes = if dir.is_dir() {
        read_attributes(&dir.join("devices.jsonl"))?
    } else {
        Attributes::new()
    };

    let (tx, mut rx) = mpsc::channel::<Vec<Item>>(16);
    let reader_path = path.clone();
    std::thread::Builder::new()
        .name("replay-reader".into())
        .spawn(move || read_lines(BufReader::with_capacity(256 * 1024, file), &attributes, tx))
        .map_err(|e| Error::io(&reader_path, e))?;

    let pool = Pool::connect(&config.broker, config.connections);
    info!(path = %path.display(), host = %config.broker.host, port = config.broker.port, speed = ?config.speed, "Replaying history");

    let mut summary = ReplaySummary::default();
    let result = publish_all(&mut rx, &pool, &config, &path, &cancel, &mut summary).await;
    drop(rx);
    let stall = if cancel.is_cancelled() {
        CANCEL_DRAIN_STALL
    } else {
        DRAIN_STALL
    };
    pool.drain(summary.published, stall, cancel.is_cancelled())
        .await;
    summary.acked = pool.acked();
    pool.close().await;
    info!(
        lines = summary.lines,
        published = summary.published,
        acked = summary.acked,
        skipped = summary.skipped.values().sum::<u64>(),
        "Replay finished"
    );
    result.map(|()| summary)
}

async fn publish_all(
    rx: &mut mpsc::Receiver<Vec<Item>>,
    pool: &Pool,
    config: &ReplayConfig,
    path: &Path,
    cancel: &CancellationToken,
    summary: &mut ReplaySummary,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let batch = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            b = rx.recv() => match b {
                Some(b) => b,
                None => return Ok(()),
            },
        };
        for item in batch {
            summary.lines += 1;
            let line = match item {
                Item::Line(line) => line,
                Item::Skip(reason) => {
                    *summary.skipped.entry(reason.to_owned()).or_default() += 1;
                    continue;
                }
                Item::Failed(e) => return Err(Error::io(path, e)),
            };
            if let Some(ts) = line.ts {
                let first = *summary.first_ts.get_or_insert(Timestamp(ts));
                summary.last_ts = Some(Timestamp(ts));
                if let Some(speed) = config.speed {
                    let offset_s = (ts.saturating_sub(first.millis())).max(0) as f64 / 1000.0;
                    let due = started + Duration::from_secs_f64((offset_s / speed).min(1e9));
                    if due > Instant::now() {
                        tokio::select! {
                            biased;
                            () = cancel.cancelled() => return Ok(()),
                            () = tokio::time::sleep_until(due) => {}
                        }
                    }
                }
            }
            let conn = pool.connection_of_id(line.device_id.as_str());
            let topic = line.kind.topic(&line.device_id);
            if !pool
                .publish(conn, topic, false, line.payload, cancel)
                .await?
            {
                return Ok(());
            }
            summary.published += 1;
        }
    }
}

/// What the reader thread found on one line.
enum Item {
    Line(Line),
    Skip(&'static str),
    Failed(io::Error),
}

/// A line to publish.
struct Line {
    device_id: DeviceId,
    kind: MessageKind,
    ts: Option<i64>,
    payload: Vec<u8>,
}

/// Per device id: the `batch` and `region` fields of its `devices.jsonl` line, as JSON
/// text to append to a line (`,"batch":"B2025-07"` and `,"region":"north"`; empty for a
/// field the device has none of).
type Attributes = HashMap<String, [String; 2]>;

/// The `batch` and `region` of every device in `devices.jsonl`; none if the file is
/// missing. Lines that do not parse are left out.
fn read_attributes(path: &Path) -> Result<Attributes> {
    #[derive(serde::Deserialize)]
    struct Entry {
        device_id: String,
        batch: Option<String>,
        region: Option<String>,
    }
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Attributes::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Attributes::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io(path, e))?;
        let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
            continue;
        };
        let field = |name: &str, value: Option<String>| {
            value.map_or_else(String::new, |v| format!(",\"{name}\":{}", Value::String(v)))
        };
        out.insert(
            entry.device_id,
            [field("batch", entry.batch), field("region", entry.region)],
        );
    }
    Ok(out)
}

/// `line` (a JSON object) with the device's `batch` and `region` fields appended, each
/// unless the line has it already.
fn with_attributes(
    line: &[u8],
    obj: &serde_json::Map<String, Value>,
    fields: &[String; 2],
) -> Vec<u8> {
    let Some(close) = line.iter().rposition(|&b| b == b'}') else {
        return line.to_vec();
    };
    let mut out = Vec::with_capacity(line.len() + fields[0].len() + fields[1].len());
    out.extend_from_slice(&line[..close]);
    for (name, field) in ["batch", "region"].iter().zip(fields) {
        if !obj.contains_key(*name) {
            out.extend_from_slice(field.as_bytes());
        }
    }
    out.extend_from_slice(&line[close..]);
    out
}

/// Reads and classifies lines until the end of the file or until the receiver is gone.
fn read_lines(mut reader: impl BufRead, attributes: &Attributes, tx: mpsc::Sender<Vec<Item>>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf = Vec::new();
    loop {
        let item = match read_line(&mut reader, &mut buf, MAX_LINE_BYTES) {
            Ok(ReadLine::Eof) => break,
            Ok(ReadLine::TooLong) => Item::Skip("line_too_long"),
            Ok(ReadLine::Line) => classify(&buf, attributes),
            Err(e) => Item::Failed(e),
        };
        let failed = matches!(item, Item::Failed(_));
        batch.push(item);
        if batch.len() >= BATCH || failed {
            if tx.blocking_send(std::mem::take(&mut batch)).is_err() || failed {
                return;
            }
            batch.reserve(BATCH);
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
}

enum ReadLine {
    /// `buf` holds the line, without its `\n` (or `\r\n`).
    Line,
    /// The line was longer than the limit; it was read past and dropped.
    TooLong,
    Eof,
}

/// Reads one line into `buf`, never holding more than `max` bytes of it.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadLine> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            if !any {
                return Ok(ReadLine::Eof);
            }
            break;
        }
        any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            break;
        }
    }
    if too_long {
        return Ok(ReadLine::TooLong);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(ReadLine::Line)
}

/// Routes one line: its device, message kind, event time and payload (with the
/// device's `attributes` added), or why it is skipped.
fn classify(line: &[u8], attributes: &Attributes) -> Item {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Item::Skip("empty_line");
    }
    let obj = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => return Item::Skip("not_an_object"),
        Err(_) => return Item::Skip("malformed_json"),
    };
    let device_id = match obj.get("device_id") {
        None | Some(Value::Null) => return Item::Skip("missing_device_id"),
        Some(Value::String(s)) => match DeviceId::parse(s) {
            Ok(id) => id,
            Err(_) => return Item::Skip("invalid_device_id"),
        },
        Some(_) => return Item::Skip("invalid_device_id"),
    };
    let kind = match obj.get("msg") {
        None | Some(Value::Null) => return Item::Skip("missing_msg"),
        Some(Value::String(s)) if s == "telemetry" => MessageKind::Telemetry,
        Some(Value::String(s)) if s == "fault" => MessageKind::Fault,
        Some(_) => return Item::Skip("invalid_msg"),
    };
    let ts = match obj.get("ts") {
        Some(Value::String(s)) => Timestamp::parse(s).ok().map(Timestamp::millis),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    let payload = match attributes.get(device_id.as_str()) {
        Some(fields) => with_attributes(line, &obj, fields),
        None => line.to_vec(),
    };
    Item::Line(Line {
        device_id,
        kind,
        ts,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn reads_bounded_lines() {
        let text = b"a\r\nbb\n\nxxxxxxxxxx\nlast";
        let mut r = BufReader::with_capacity(3, &text[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            match read_line(&mut r, &mut buf, 5).unwrap() {
                ReadLine::Eof => break,
                ReadLine::TooLong => got.push("<long>".to_owned()),
                ReadLine::Line => got.push(String::from_utf8(buf.clone()).unwrap()),
            }
        }
        assert_eq!(got, ["a", "bb", "", "<long>", "last"]);
    }

    #[test]
    fn classifies_lines() {
        let reason = |line: &str| match classify(line.as_bytes(), &Attributes::new()) {
            Item::Skip(r) => r.to_owned(),
            Item::Line(l) => format!("{}/{}", l.device_id, l.kind.as_str()),
            Item::Failed(e) => panic!("{e}"),
        };
        assert_eq!(reason("  "), "empty_line");
        assert_eq!(reason("{"), "malformed_json");
        assert_eq!(reason("[1]"), "not_an_object");
        assert_eq!(reason(r#"{"msg":"fault"}"#), "missing_device_id");
        assert_eq!(
            reason(r#"{"device_id":"a.b","msg":"fault"}"#),
            "invalid_device_id"
        );
        assert_eq!(
            reason(r#"{"device_id":7,"msg":"fault"}"#),
            "invalid_device_id"
        );
        assert_eq!(reason(r#"{"device_id":"d-1"}"#), "missing_msg");
        assert_eq!(
            reason(r#"{"device_id":"d-1","msg":"status"}"#),
            "invalid_msg"
        );
        assert_eq!(reason(r#"{"device_id":"d-1","msg":"fault"}"#), "d-1/fault");
        let Item::Line(l) = classify(
            br#"{"device_id":"d","msg":"telemetry","ts":"2026-01-01T00:00:01Z"}"#,
            &Attributes::new(),
        ) else {
            panic!()
        };
        assert_eq!(l.ts, Some(1_767_225_601_000));
        let Item::Line(l) = classify(
            br#"{"device_id":"d","msg":"telemetry","ts":5}"#,
            &Attributes::new(),
        ) else {
            panic!()
        };
        assert_eq!(l.ts, Some(5));
    }

    #[test]
    fn adds_the_devices_batch_and_region_unless_the_line_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.jsonl");
        std::fs::write(
            &path,
            "{\"device_id\":\"d\",\"batch\":\"B\\\"1\",\"region\":\"north\",\"other\":1}\nnot json\n{\"device_id\":\"e\"}\n",
        )
        .unwrap();
        let attributes = read_attributes(&path).unwrap();
        assert_eq!(attributes.len(), 2);
        let payload = |line: &str| match classify(line.as_bytes(), &attributes) {
            Item::Line(l) => String::from_utf8(l.payload).unwrap(),
            _ => panic!("{line}"),
        };
        assert_eq!(
            payload(r#"{"device_id":"d","msg":"fault","ts":5} "#),
            r#"{"device_id":"d","msg":"fault","ts":5,"batch":"B\"1","region":"north"} "#
        );
        assert_eq!(
            payload(r#"{"device_id":"d","msg":"fault","region":"south"}"#),
            r#"{"device_id":"d","msg":"fault","region":"south","batch":"B\"1"}"#
        );
        // Listed without either, or not listed: as-is.
        for line in [
            r#"{"device_id":"e","msg":"fault"}"#,
            r#"{"device_id":"f","msg":"fault"}"#,
        ] {
            assert_eq!(payload(line), line);
        }
        assert!(read_attributes(&dir.path().join("none.jsonl"))
            .unwrap()
            .is_empty());
    }

    /// Starts an embedded rumqttd on a free local port and a subscriber to
    /// `fixahead/v1/#`; returns the port and the received (topic, payload) stream.
    async fn broker_and_subscriber() -> (u16, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
        let port = crate::live::tests::start_broker();
        (
            port,
            crate::live::tests::subscribe_all(port, "replay-test-sub").await,
        )
    }

    async fn receive(
        rx: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>,
        n: u64,
    ) -> Vec<(String, Vec<u8>)> {
        let mut got = Vec::new();
        while (got.len() as u64) < n {
            let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("every publish arrives")
                .unwrap();
            got.push(m);
        }
        got
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replays_a_history_in_per_device_order() {
        // A simulated history, plus lines that cannot be routed.
        let dir = tempfile::tempdir().unwrap();
        let config = crate::FleetConfig {
            devices: 6,
            failure_rate_per_year: 20.0,
            ..crate::FleetConfig::default()
        };
        crate::write_history(
            dir.path(),
            config,
            &domain::ProfileSet::builtin(),
            2 * Timestamp::DAY_MS,
        )
        .unwrap();
        let path = dir.path().join("telemetry.jsonl");
        let history = std::fs::read_to_string(&path).unwrap();
        let good: Vec<&str> = history.lines().collect();
        assert!(good.len() > 50, "{}", good.len());
        let mut text = String::new();
        for (i, line) in good.iter().enumerate() {
            text.push_str(line);
            text.push('\n');
            if i == 3 {
                text.push_str("not json\n\n[1,2]\n{\"device_id\":\"x\",\"msg\":\"status\"}\n");
            }
        }
        std::fs::write(&path, text).unwrap();

        let (port, mut rx) = broker_and_subscriber().await;
        let summary = replay(
            dir.path(),
            ReplayConfig {
                broker: BrokerTarget {
                    port,
                    host: "127.0.0.1".into(),
                    ..ReplayConfig::default().broker
                },
                connections: 3,
                ..ReplayConfig::default()
            },
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(summary.published, good.len() as u64, "{summary:?}");
        assert_eq!(summary.acked, summary.published);
        assert_eq!(summary.lines, good.len() as u64 + 4);
        let skipped: Vec<(&str, u64)> = summary
            .skipped
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            skipped,
            [
                ("empty_line", 1),
                ("invalid_msg", 1),
                ("malformed_json", 1),
                ("not_an_object", 1)
            ]
        );
        assert!(summary.first_ts.is_some() && summary.first_ts <= summary.last_ts);

        // Every line arrives on its topic, as-is but for the device's batch and region
        // from devices.jsonl; per device in file order; and decodes as a valid message
        // that carries them.
        let got = receive(&mut rx, summary.published).await;
        let profiles = domain::ProfileSet::builtin();
        let devices: HashMap<String, (String, String)> =
            std::fs::read_to_string(dir.path().join("devices.jsonl"))
                .unwrap()
                .lines()
                .map(|l| {
                    let d: crate::DeviceInfo = serde_json::from_str(l).unwrap();
                    (d.device_id.to_string(), (d.batch, d.region))
                })
                .collect();
        let mut expected: HashMap<String, Vec<String>> = HashMap::new();
        for line in &good {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = v["device_id"].as_str().unwrap();
            let topic = format!("fixahead/v1/{id}/{}", v["msg"].as_str().unwrap());
            let (batch, region) = &devices[id];
            let sent = format!(
                r#"{},"batch":"{batch}","region":"{region}"}}"#,
                line.strip_suffix('}').unwrap()
            );
            expected.entry(topic).or_default().push(sent);
        }
        let mut received: HashMap<String, Vec<String>> = HashMap::new();
        for (topic, payload) in got {
            let (batch, region) = match domain::decode(&topic, &payload, &profiles) {
                Ok(domain::Message::Telemetry(t)) => (t.device.batch, t.device.region),
                Ok(domain::Message::Fault(f)) => (f.device.batch, f.device.region),
                other => panic!("{topic}: {other:?}"),
            };
            let id = topic.split('/').nth(2).unwrap();
            assert_eq!((batch.unwrap(), region.unwrap()), devices[id].clone());
            received
                .entry(topic)
                .or_default()
                .push(String::from_utf8(payload).unwrap());
        }
        assert_eq!(received, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paces_by_event_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let line = |seq: u64, ts: &str| {
            format!(
                r#"{{"device_id":"wm-1","msg":"fault","ts":"{ts}","seq":{seq},"type":"washer","model":"WM-500","code":"E21","state":"raised"}}"#
            )
        };
        let text = [
            line(1, "2026-01-01T00:00:00Z"),
            line(2, "2026-01-01T00:00:30Z"),
            line(3, "2026-01-01T00:01:00Z"),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let (port, mut rx) = broker_and_subscriber().await;
        let started = std::time::Instant::now();
        // 60 s of event time at 100x: about 0.6 s.
        let summary = replay(
            &path,
            ReplayConfig {
                broker: BrokerTarget {
                    port,
                    host: "127.0.0.1".into(),
                    ..ReplayConfig::default().broker
                },
                speed: Some(100.0),
                ..ReplayConfig::default()
            },
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let took = started.elapsed();
        assert_eq!((summary.published, summary.acked), (3, 3));
        assert!(took >= Duration::from_millis(590), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        let got = receive(&mut rx, 3).await;
        assert!(got.iter().all(|(t, _)| t == "fixahead/v1/wm-1/fault"));
    }

    #[tokio::test]
    async fn a_missing_history_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = replay(
            dir.path(),
            ReplayConfig::default(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("telemetry.jsonl"), "{e}");
    }
}
