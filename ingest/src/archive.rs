//! The InfluxDB 2 archive: every stored reading and fault, as line protocol, in
//! batches, to `/api/v2/write` (docs/archive.md).
//!
//! ```text
//! writer --commit--> hot.db (telemetry, faults: `arrival` 1, 2, 3, ...)
//!                       |  StoreReader::read_after(cursor, batch_size)
//!                       v
//!                    Archiver: line protocol -> influxdb2 write -> cursor file
//! ```
//!
//! **The hot store is the spool.** The archiver tails `hot.db` instead of taking a
//! second copy of each message from the pipeline. It reads the rows committed after
//! its cursor (the `arrival` of the last row the server accepted, kept in a file in
//! the data directory), writes them as one batch, and moves the cursor only after the
//! server answered 204. So:
//! * ingest never waits for the archive: the writer knows nothing of it, and an
//!   unreachable server only grows the backlog, which is rows already on disk;
//! * the spool is ordered, durable and survives restarts, with no file format of its
//!   own: while the server is down the backlog is the rows after the cursor, and when
//!   it is back they are sent oldest first, in the order they were committed;
//! * a restart resumes at the cursor.
//!
//! **Exactly once in the archive** follows from point identity. A point's series key
//! (measurement, tags) and timestamp come from the stored row alone, so a batch sent
//! again (a crash between the server's answer and the cursor write, or an answer lost
//! on the way) carries the same points, and InfluxDB overwrites a point with the same
//! series and timestamp: resending is harmless. While it runs, the archiver resends
//! only a batch whose outcome it cannot know (no answer in time, the connection cut
//! after the request went out, a 5xx other than 503); it counts those points in
//! `points_uncertain`, the bound on the copies a server without InfluxDB's overwrite
//! (VictoriaMetrics without `-dedup.minScrapeInterval`) can hold twice.
//!
//! Failures: a write that fails for the server's or the network's sake (no connection,
//! timeout, 5xx, 429, 401/403/404: a token or bucket an operator can fix) is retried
//! with exponential backoff, without limit, and without moving the cursor. A batch the
//! server refuses for its content (400 malformed, 413 too large) is split in halves
//! until the refused points are isolated; those are skipped, counted and logged, the
//! rest written. A partial write (422: InfluxDB wrote the batch except the points it
//! drops, such as those older than the bucket's retention) counts as done, with the
//! dropped points counted. One bad point thus never blocks the archive, and a down
//! server never loses one.

use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use domain::{FaultMessage, FaultState, Message, ProfileSet, Telemetry};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};
use store::hot::StoreReader;

/// Where to write: an InfluxDB 2 server (or anything that accepts its
/// `/api/v2/write`, such as VictoriaMetrics).
#[derive(Clone)]
pub struct InfluxTarget {
    /// `http://host:port`, as returned by [`parse_influx_url`].
    pub url: String,
    /// Organization name.
    pub org: String,
    /// Bucket name.
    pub bucket: String,
    /// API token with write permission on the bucket.
    pub token: String,
}

impl std::fmt::Debug for InfluxTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxTarget")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// How the archiver batches and retries.
#[derive(Clone, Debug)]
pub struct ArchiveSettings {
    /// Most points per write request.
    pub batch_size: usize,
    /// How long the archiver waits after a batch that was not full before it looks for
    /// more rows: the longest a stored row waits to be sent while the server is up.
    pub flush_interval: Duration,
    /// A write request that has not been answered within this is a failure (retried).
    pub timeout: Duration,
    /// The first retry waits 100 ms (or this, if shorter), each next one twice as long,
    /// up to this.
    pub max_backoff: Duration,
    /// The cursor file.
    pub cursor_path: PathBuf,
}

impl ArchiveSettings {
    /// Default `batch_size`: InfluxData's recommended batch of 5,000 lines.
    pub const DEFAULT_BATCH_SIZE: usize = 5000;
    /// Default `flush_interval`.
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
    /// Default `timeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default `max_backoff`.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
    /// The cursor file's name in the data directory.
    pub const CURSOR_FILE: &'static str = "influxdb-archive.cursor";
}

/// Checks an archive URL and returns it as `http://host[:port]`.
///
/// Only `http://` is accepted: fixahead is built without TLS for now (issue 5), like
/// its MQTT client. A path is refused rather than silently dropped: the write goes to
/// `/api/v2/write` at the server's root.
pub fn parse_influx_url(url: &str) -> std::result::Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| {
            if url.starts_with("https://") {
                format!("{url:?}: https is not supported yet (fixahead is built without TLS); use http:// or a TLS-terminating proxy on the same host")
            } else {
                format!("{url:?} must start with http://")
            }
        })?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err(format!(
            "{url:?}: give scheme, host and port only (http://host:8086); the write goes to /api/v2/write"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{url:?}: {addr:?} is not an IPv6 address"));
        }
        if !(after.is_empty() || after.starts_with(':')) {
            return Err(format!("{url:?}: only a port may follow the IPv6 address"));
        }
        (&authority[..addr.len() + 2], after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = host.starts_with('[')
        || (!host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'));
    if !host_ok {
        return Err(format!("{url:?}: the host must be a name or an IP address"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{url:?}: the port must be 1-65535"));
        }
    }
    Ok(format!("http://{authority}"))
}

// ---------------------------------------------------------------------------------
// Line protocol

/// The measurement of telemetry points.
pub const TELEMETRY_MEASUREMENT: &str = "telemetry";
/// The measurement of fault points.
pub const FAULT_MEASUREMENT: &str = "fault";

/// Field and tag keys a reading cannot use as its field key: InfluxDB discards a point
/// with `time`, `_field` or `_measurement` as a key, and `seq` is the archive's own
/// field. A reading of that name is written as `reading_{name}`.
const RESERVED_KEYS: [&str; 4] = ["seq", "time", "_field", "_measurement"];

/// Appends `s` escaped for a tag key, tag value or field key: `\`, `,`, `=` and space
/// get a backslash. Line protocol cannot carry a line break in a key or tag value, so
/// control characters become spaces (escaped too).
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if matches!(c, '\\' | ',' | '=' | ' ') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn push_tag(out: &mut String, key: &str, value: &str) {
    // An empty tag value is not allowed; the tag is left out instead.
    if value.is_empty() {
        return;
    }
    out.push(',');
    push_escaped(out, key);
    out.push('=');
    push_escaped(out, value);
}

/// Appends one point for `message` as a line of line protocol (no newline), with the
/// event time in milliseconds. Returns `false`, appending nothing, for a status
/// message, which the archive does not keep (it has no history: the store keeps
/// only the latest).
///
/// Layout (docs/archive.md):
/// * `telemetry,device_id=..,device_type=..,model=.. {channel}=<float>,...,seq=<u64>u <ts>`
///   with one float field per reading; a reading that is not finite is left out.
/// * `fault,code=..,device_id=..,device_type=..,model=..,severity=.. active=1i|0i,seq=<u64>u <ts>`
///   with `severity` from the device type's fault catalogue (`unknown` if the code is
///   not in it) and `active` 1 for raised, 0 for cleared.
///
/// Tags are in key order, as InfluxDB prefers. Everything in the line comes from the
/// stored row (and the profile), so the same row always gives the same point.
pub fn write_point(out: &mut String, message: &Message, profiles: &ProfileSet) -> bool {
    match message {
        Message::Telemetry(t) => {
            write_telemetry(out, t);
            true
        }
        Message::Fault(f) => {
            write_fault(out, f, profiles);
            true
        }
        Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => false,
    }
}

fn write_telemetry(out: &mut String, t: &Telemetry) {
    out.push_str(TELEMETRY_MEASUREMENT);
    push_tag(out, "device_id", t.device_id.as_str());
    push_tag(out, "device_type", &t.device_type);
    push_tag(out, "model", &t.model);
    out.push(' ');
    for (name, value) in &t.readings {
        if !value.is_finite() {
            continue;
        }
        if RESERVED_KEYS.contains(&name.as_str()) {
            out.push_str("reading_");
        }
        push_escaped(out, name);
        // Debug prints the shortest text that reads back as the same f64, with an
        // exponent for very large or small values (1e300), which line protocol accepts.
        let _ = write!(out, "={value:?},");
    }
    let _ = write!(out, "seq={}u {}", t.seq, t.ts.millis());
}

fn write_fault(out: &mut String, f: &FaultMessage, profiles: &ProfileSet) {
    let severity = profiles
        .get(&f.device_type)
        .and_then(|p| p.fault(&f.code))
        .map_or("unknown", |d| d.severity.as_str());
    out.push_str(FAULT_MEASUREMENT);
    push_tag(out, "code", &f.code);
    push_tag(out, "device_id", f.device_id.as_str());
    push_tag(out, "device_type", &f.device_type);
    push_tag(out, "model", &f.model);
    push_tag(out, "severity", severity);
    let active = match f.state {
        FaultState::Raised => 1,
        FaultState::Cleared => 0,
    };
    let _ = write!(out, " active={active}i,seq={}u {}", f.seq, f.ts.millis());
}

// ---------------------------------------------------------------------------------
// Writing

/// Why a write failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The server or the network failed before the batch was taken (no connection,
    /// 503, 429, 401/403/404): retry the same batch later.
    Retry(String),
    /// No clear answer: the request may have reached the server and been written (a
    /// timeout, a connection cut after sending, 500/502/504). Retry the same batch
    /// later; a server that did take it gets the same points twice.
    Unknown(String),
    /// The server refused the batch's content (400, 413) and wrote none of it: split
    /// it to find the points it refuses.
    Refused(String),
    /// The server wrote the batch except `dropped` points it will not take (422, e.g.
    /// older than the bucket's retention): done, nothing to send again.
    Partial {
        /// The server's answer.
        detail: String,
        /// Points it dropped, when its answer says (`dropped=N`).
        dropped: Option<u64>,
    },
}

/// The `dropped=N` of an InfluxDB partial-write answer.
fn dropped_points(detail: &str) -> Option<u64> {
    let after = &detail[detail.find("dropped=")? + "dropped=".len()..];
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    after[..digits].parse().ok()
}

/// Sends one body of line protocol with millisecond timestamps.
pub trait LineSink: Send + Sync + 'static {
    /// Writes `body`; `Ok` only once the server accepted every line.
    fn write(
        &self,
        body: String,
    ) -> impl Future<Output = std::result::Result<(), WriteError>> + Send;
}

/// [`LineSink`] over the `influxdb2` crate's raw line-protocol write.
pub struct InfluxSink {
    client: influxdb2::Client,
    bucket: String,
    org: String,
    timeout: Duration,
}

impl InfluxSink {
    /// A client for `target`. `target.url` must have passed [`parse_influx_url`]
    /// (the crate panics on a URL it cannot parse).
    pub fn new(target: &InfluxTarget, timeout: Duration) -> Result<Self> {
        let url = parse_influx_url(&target.url).map_err(Error::Archive)?;
        let client = influxdb2::ClientBuilder::new(url, &target.org, &target.token)
            .build()
            .map_err(|e| Error::Archive(format!("building the InfluxDB client: {e}")))?;
        Ok(Self {
            client,
            bucket: target.bucket.clone(),
            org: target.org.clone(),
            timeout,
        })
    }
}

impl LineSink for InfluxSink {
    async fn write(&self, body: String) -> std::result::Result<(), WriteError> {
        let write = self.client.write_line_protocol_with_precision(
            &self.org,
            &self.bucket,
            body,
            influxdb2::api::write::TimestampPrecision::Milliseconds,
        );
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(influxdb2::RequestError::Http { status, text })) => {
                let detail = format!("HTTP {status}: {}", text.trim());
                match status.as_u16() {
                    400 | 413 => Err(WriteError::Refused(detail)),
                    422 => Err(WriteError::Partial {
                        dropped: dropped_points(&detail),
                        detail,
                    }),
                    // A server that says it is unavailable or asks us to slow down
                    // did not write; any other server error may have written part or
                    // all of the batch (a proxy's 502/504 above a server that did).
                    s if s >= 500 && s != 503 => Err(WriteError::Unknown(detail)),
                    _ => Err(WriteError::Retry(detail)),
                }
            }
            // Not connected: the request never went out.
            Ok(Err(influxdb2::RequestError::ReqwestProcessing { source }))
                if source.is_connect() =>
            {
                Err(WriteError::Retry(source.to_string()))
            }
            // Sent, but the answer was lost on the way.
            Ok(Err(influxdb2::RequestError::ReqwestProcessing { source })) => {
                Err(WriteError::Unknown(source.to_string()))
            }
            Ok(Err(e)) => Err(WriteError::Retry(e.to_string())),
            Err(_) => Err(WriteError::Unknown(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------
// The cursor

/// The archive's position in the hot store: the `arrival` of the last row the server
/// accepted (or skipped as refused), in a file of its own. Written atomically
/// (temporary file, fsync, rename), so it is the old or the new position, never part.
#[derive(Clone, Debug)]
pub struct Cursor {
    path: PathBuf,
}

impl Cursor {
    /// The cursor in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored position; 0 (the start of the store) if there is no file yet. An
    /// unreadable or garbled file is an error (the caller starts from 0: sending rows
    /// again is harmless, skipping them is not).
    pub fn load(&self) -> Result<i64> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(Error::Io {
                    context: format!("reading {}", self.path.display()),
                    source,
                })
            }
        };
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .and_then(|l| l.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Error::Archive(format!(
                    "{} does not hold an archive position",
                    self.path.display()
                ))
            })
    }

    /// Stores `position` durably.
    pub fn store(&self, position: i64) -> Result<()> {
        let io = |context: &str, source| Error::Io {
            context: format!("{context} {}", self.path.display()),
            source,
        };
        let tmp = self.path.with_extension("cursor.tmp");
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
            write!(
                f,
                "# The InfluxDB archive's position in hot.db: the arrival of the last row sent.\n{position}\n"
            )
            .map_err(|e| io("writing", e))?;
            f.sync_all().map_err(|e| io("syncing", e))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| io("renaming to", e))?;
        if let Some(dir) = self.path.parent() {
            // The rename itself is durable once the directory is synced.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Metrics

/// Archive counters and gauges, for `/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct ArchiveMetrics {
    /// Telemetry points the server accepted.
    pub points_telemetry: AtomicU64,
    /// Fault points the server accepted.
    pub points_faults: AtomicU64,
    /// Points the server refused for their content (and the archive skipped) or
    /// dropped from a partial write.
    pub points_refused: AtomicU64,
    /// Write requests the server accepted.
    pub batches: AtomicU64,
    /// Write requests that failed (each retry counts).
    pub write_failures: AtomicU64,
    /// Points in failed writes whose outcome is unknown ([`WriteError::Unknown`]),
    /// all sent again: at most this many can be held twice by a server that does
    /// not overwrite a point with the same series and time.
    pub points_uncertain: AtomicU64,
    /// Stored rows not yet archived, as of the archiver's last look.
    pub backlog: AtomicU64,
    /// The cursor: the `arrival` of the last row archived.
    pub position: AtomicI64,
    /// Unix time in milliseconds of the last accepted write; 0: none yet.
    pub last_success_ms: AtomicI64,
}

/// A copy of [`ArchiveMetrics`], for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveSnapshot {
    /// Telemetry points accepted.
    pub points_telemetry: u64,
    /// Fault points accepted.
    pub points_faults: u64,
    /// Points refused and skipped.
    pub points_refused: u64,
    /// Write requests accepted.
    pub batches: u64,
    /// Write requests failed.
    pub write_failures: u64,
    /// Points sent again after a write with no clear answer.
    pub points_uncertain: u64,
    /// Rows behind.
    pub backlog: u64,
    /// The cursor.
    pub position: i64,
    /// Last accepted write (Unix ms), if any.
    pub last_success_ms: Option<i64>,
}

impl ArchiveMetrics {
    /// Copies the values.
    pub fn snapshot(&self) -> ArchiveSnapshot {
        let last = self.last_success_ms.load(Relaxed);
        ArchiveSnapshot {
            points_telemetry: self.points_telemetry.load(Relaxed),
            points_faults: self.points_faults.load(Relaxed),
            points_refused: self.points_refused.load(Relaxed),
            batches: self.batches.load(Relaxed),
            write_failures: self.write_failures.load(Relaxed),
            points_uncertain: self.points_uncertain.load(Relaxed),
            backlog: self.backlog.load(Relaxed),
            position: self.position.load(Relaxed),
            last_success_ms: (last > 0).then_some(last),
        }
    }

    /// Prometheus text exposition.
    pub fn render_prometheus(&self, out: &mut String) {
        let s = self.snapshot();
        let _ = writeln!(
            out,
            "# HELP fixahead_archive_points_total Points the InfluxDB archive wrote (accepted by the server), by measurement.\n\
             # TYPE fixahead_archive_points_total counter\n\
             fixahead_archive_points_total{{measurement=\"telemetry\"}} {}\n\
             fixahead_archive_points_total{{measurement=\"fault\"}} {}",
            s.points_telemetry, s.points_faults
        );
        let metric = |out: &mut String, name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        metric(
            out,
            "fixahead_archive_points_refused_total",
            "counter",
            "Points the archive's server refused for their content (400/413; skipped) or dropped from a partial write (422, e.g. beyond the bucket's retention).",
            s.points_refused.to_string(),
        );
        metric(
            out,
            "fixahead_archive_batches_total",
            "counter",
            "Archive write requests the server accepted.",
            s.batches.to_string(),
        );
        metric(
            out,
            "fixahead_archive_write_failures_total",
            "counter",
            "Archive write requests that failed: retried (server down, timeout, 5xx, 401/403/404, 429), split (400/413) or partly written (422).",
            s.write_failures.to_string(),
        );
        metric(
            out,
            "fixahead_archive_points_uncertain_total",
            "counter",
            "Points in archive writes that got no clear answer (timeout, connection cut after sending, 500/502/504) and were sent again; a server that had taken them holds them twice unless it overwrites a point with the same series and time, as InfluxDB does.",
            s.points_uncertain.to_string(),
        );
        metric(
            out,
            "fixahead_archive_backlog_rows",
            "gauge",
            "Stored telemetry and fault rows not yet archived; they wait in hot.db.",
            s.backlog.to_string(),
        );
        metric(
            out,
            "fixahead_archive_position",
            "gauge",
            "The archive cursor: arrival number of the last stored row archived.",
            s.position.to_string(),
        );
        metric(
            out,
            "fixahead_archive_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last archive write the server accepted; 0 before the first.",
            format!("{:.3}", s.last_success_ms.unwrap_or(0) as f64 / 1000.0),
        );
    }
}

// ---------------------------------------------------------------------------------
// The archiver

/// The task that tails the hot store into the archive.
pub struct Archiver<S> {
    /// Its own read connection to hot.db.
    pub reader: StoreReader,
    /// Where points go.
    pub sink: S,
    /// For fault severities.
    pub profiles: Arc<ProfileSet>,
    /// Batching and retries.
    pub settings: ArchiveSettings,
    /// Counters.
    pub metrics: Arc<ArchiveMetrics>,
}

/// One point of a batch.
struct Line {
    text: String,
    fault: bool,
}

/// How a batch ended.
enum Delivery {
    /// Every point was accepted or refused (and skipped).
    Done,
    /// Stopped while retrying.
    Stopped,
}

impl<S: LineSink> Archiver<S> {
    /// Runs until `stop` is cancelled. Never fails: store and server errors are
    /// logged and retried, since ingest must not depend on the archive.
    pub async fn run(self, stop: CancellationToken) {
        let cursor = Cursor::new(&self.settings.cursor_path);
        let mut position = {
            let (c, r) = (cursor.clone(), self.reader.clone());
            match tokio::task::spawn_blocking(move || (c.load(), r.newest_arrival())).await {
                Ok((Ok(p), Ok(newest))) if p > newest => {
                    tracing::warn!(
                        position = p,
                        newest,
                        "The archive cursor is ahead of hot.db (a different or restored store?): archiving it from the start; points already archived are overwritten with themselves"
                    );
                    0
                }
                Ok((Ok(p), _)) => p,
                Ok((Err(e), _)) => {
                    tracing::warn!(error = %e, "Archive cursor unreadable: archiving hot.db from the start; points already archived are overwritten with themselves");
                    0
                }
                Err(e) => {
                    tracing::error!(error = %e, "Archive start-up failed");
                    return;
                }
            }
        };
        self.metrics.position.store(position, Relaxed);
        tracing::info!(
            position,
            cursor = %cursor.path().display(),
            "InfluxDB archive started"
        );
        let mut backoff = self.first_backoff();
        loop {
            if stop.is_cancelled() {
                return;
            }
            let reader = self.reader.clone();
            let limit = self.settings.batch_size;
            let page = match tokio::task::spawn_blocking(move || reader.read_after(position, limit))
                .await
            {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "Archive could not read hot.db; retrying");
                    if !self.pause(&stop, backoff).await {
                        return;
                    }
                    backoff = self.next_backoff(backoff);
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Archive read task failed");
                    return;
                }
            };
            backoff = self.first_backoff();
            self.set_backlog(page.newest, position);
            if page.through == position {
                if !self.pause(&stop, self.settings.flush_interval).await {
                    return;
                }
                continue;
            }
            let full = page.through - position >= limit as i64;
            let mut lines = Vec::with_capacity(page.messages.len());
            for (_, message) in &page.messages {
                let mut text = String::with_capacity(160);
                if write_point(&mut text, message, &self.profiles) {
                    lines.push(Line {
                        text,
                        fault: matches!(message, Message::Fault(_)),
                    });
                }
            }
            match self.deliver(&lines, &stop).await {
                Delivery::Stopped => return,
                Delivery::Done => {}
            }
            position = page.through;
            self.metrics.position.store(position, Relaxed);
            // Rows committed while the batch was on its way count too.
            self.refresh_backlog().await;
            let c = cursor.clone();
            match tokio::task::spawn_blocking(move || c.store(position)).await {
                Ok(Ok(())) => {}
                // The position in memory moves on; after a restart the rows since the
                // last stored position are sent again, which overwrites them in place.
                Ok(Err(e)) => tracing::warn!(error = %e, "Archive cursor not saved"),
                Err(e) => tracing::warn!(error = %e, "Archive cursor task failed"),
            }
            if !full && !self.pause(&stop, self.settings.flush_interval).await {
                return;
            }
        }
    }

    fn first_backoff(&self) -> Duration {
        Duration::from_millis(100).min(self.settings.max_backoff)
    }

    fn next_backoff(&self, current: Duration) -> Duration {
        (current * 2).min(self.settings.max_backoff)
    }

    /// Sleeps `d`; `false` if stopped meanwhile.
    async fn pause(&self, stop: &CancellationToken, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stop.cancelled() => false,
        }
    }

    fn set_backlog(&self, newest: i64, position: i64) {
        self.metrics
            .backlog
            .store(newest.saturating_sub(position).max(0) as u64, Relaxed);
    }

    /// Refreshes the backlog while a batch waits for the server, so `/metrics` shows
    /// it grow during an outage.
    async fn refresh_backlog(&self) {
        let reader = self.reader.clone();
        if let Ok(Ok(newest)) = tokio::task::spawn_blocking(move || reader.newest_arrival()).await {
            let position = self.metrics.position.load(Relaxed);
            self.set_backlog(newest, position);
        }
    }

    /// Writes `lines` in order: the whole batch, retried until the server is back; if
    /// the server refuses its content, each half in turn, down to single points,
    /// which are skipped when refused.
    async fn deliver(&self, lines: &[Line], stop: &CancellationToken) -> Delivery {
        // Ranges still to write, the next one last.
        let mut todo = vec![(0, lines.len())];
        let mut backoff = self.first_backoff();
        while let Some((from, to)) = todo.pop() {
            if from == to {
                continue;
            }
            let body = lines[from..to]
                .iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            // A stop does not wait for the server: a batch cut off is sent again at
            // the next start, and a copy the server did take is overwritten.
            let result = tokio::select! {
                r = self.sink.write(body) => r,
                _ = stop.cancelled() => return Delivery::Stopped,
            };
            match result {
                Ok(()) => {
                    self.written(&lines[from..to], 0);
                    backoff = self.first_backoff();
                }
                Err(WriteError::Partial { detail, dropped }) => {
                    self.metrics.write_failures.fetch_add(1, Relaxed);
                    let dropped = dropped.unwrap_or(0).min((to - from) as u64);
                    self.written(&lines[from..to], dropped);
                    let refused = self.metrics.points_refused.fetch_add(dropped, Relaxed) + dropped;
                    tracing::warn!(points = to - from, dropped, refused_so_far = refused, server = %detail,
                        "The archive's server wrote a batch in part (the dropped points stay in hot.db)");
                    backoff = self.first_backoff();
                }
                Err(WriteError::Refused(detail)) => {
                    self.metrics.write_failures.fetch_add(1, Relaxed);
                    if to - from == 1 {
                        let refused = self.metrics.points_refused.fetch_add(1, Relaxed) + 1;
                        // Bounded logging: a bucket that refuses every point (a field
                        // type another writer chose) would otherwise log each one.
                        if refused <= 10 || refused.is_power_of_two() {
                            tracing::warn!(point = %lines[from].text, server = %detail, refused_so_far = refused,
                                "The archive's server refused a point; skipped (it stays in hot.db)");
                        }
                    } else {
                        tracing::debug!(points = to - from, server = %detail,
                            "The archive's server refused a batch; splitting it to find the points it refuses");
                        let mid = from + (to - from) / 2;
                        todo.push((mid, to));
                        todo.push((from, mid));
                    }
                }
                Err(WriteError::Unknown(detail)) => {
                    self.metrics
                        .points_uncertain
                        .fetch_add((to - from) as u64, Relaxed);
                    tracing::warn!(error = %detail, points = to - from, retry_in_ms = backoff.as_millis() as u64,
                        "Archive write got no clear answer; the points are sent again, and a server that took them holds them twice unless it overwrites");
                    todo.push((from, to));
                    if !self.retry_later(stop, &mut backoff).await {
                        return Delivery::Stopped;
                    }
                }
                Err(WriteError::Retry(detail)) => {
                    tracing::warn!(error = %detail, retry_in_ms = backoff.as_millis() as u64,
                        "Archive write failed; the points wait in hot.db and are retried");
                    todo.push((from, to));
                    if !self.retry_later(stop, &mut backoff).await {
                        return Delivery::Stopped;
                    }
                }
            }
        }
        Delivery::Done
    }

    /// After a failed write: counts it, refreshes the backlog and waits `backoff`,
    /// which then grows. False if stopped while waiting.
    async fn retry_later(&self, stop: &CancellationToken, backoff: &mut Duration) -> bool {
        self.metrics.write_failures.fetch_add(1, Relaxed);
        self.refresh_backlog().await;
        if !self.pause(stop, *backoff).await {
            return false;
        }
        *backoff = self.next_backoff(*backoff);
        true
    }

    /// Counts a write the server took, but for `dropped` of its points.
    fn written(&self, lines: &[Line], dropped: u64) {
        let faults = lines.iter().filter(|l| l.fault).count() as u64;
        let telemetry = lines.len() as u64 - faults;
        // Which points a partial write dropped is not said: telemetry first.
        let dropped_telemetry = dropped.min(telemetry);
        self.metrics
            .points_telemetry
            .fetch_add(telemetry - dropped_telemetry, Relaxed);
        self.metrics
            .points_faults
            .fetch_add(faults - (dropped - dropped_telemetry).min(faults), Relaxed);
        self.metrics.batches.fetch_add(1, Relaxed);
        self.metrics
            .last_success_ms
            .store(chrono::Utc::now().timestamp_millis(), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{decode, Timestamp};
    use std::sync::Mutex;
    use store::hot::{HotStore, StoreItem};
    use store::Synchronous;

    fn telemetry(readings: Vec<(&str, f64)>) -> Message {
        Message::Telemetry(Telemetry {
            device_id: domain::DeviceId::parse("wm-1").unwrap(),
            ts: Timestamp(1_795_500_000_123),
            seq: 42,
            device_type: "washer".into(),
            model: "WM-500".into(),
            fw: Some("1.0".into()),
            batch: None,
            region: None,
            readings: readings
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        })
    }

    fn line(message: &Message) -> String {
        let mut out = String::new();
        assert!(write_point(&mut out, message, &ProfileSet::builtin()));
        out
    }

    #[test]
    fn telemetry_is_one_point_with_a_float_field_per_reading() {
        let m = telemetry(vec![("drain_time_s", 12.5), ("vibration_g", 1.0)]);
        assert_eq!(
            line(&m),
            "telemetry,device_id=wm-1,device_type=washer,model=WM-500 drain_time_s=12.5,vibration_g=1.0,seq=42u 1795500000123"
        );
    }

    #[test]
    fn tags_and_keys_escape_spaces_commas_equals_and_backslashes() {
        let mut m = telemetry(vec![("a b,c=d\\e", 0.5)]);
        if let Message::Telemetry(t) = &mut m {
            t.model = "WM 500,rev=2\\x".into();
            t.device_type = "wash\ner".into();
        }
        assert_eq!(
            line(&m),
            r"telemetry,device_id=wm-1,device_type=wash\ er,model=WM\ 500\,rev\=2\\x a\ b\,c\=d\\e=0.5,seq=42u 1795500000123"
        );
        let mut out = String::new();
        push_tag(&mut out, "k", "");
        assert_eq!(out, "", "an empty tag value leaves the tag out");
    }

    #[test]
    fn non_finite_readings_are_never_written_and_reserved_names_are_renamed() {
        let m = telemetry(vec![
            ("nan", f64::NAN),
            ("inf", f64::INFINITY),
            ("neg", f64::NEG_INFINITY),
            ("seq", 3.0),
            ("time", 1e300),
            ("tiny", -2.5e-300),
        ]);
        let l = line(&m);
        assert_eq!(
            l,
            "telemetry,device_id=wm-1,device_type=washer,model=WM-500 reading_seq=3.0,reading_time=1e300,tiny=-2.5e-300,seq=42u 1795500000123"
        );
        assert!(!l.to_lowercase().contains("nan") && !l.contains("inf"));
        // Every float written reads back as the same value.
        for (text, v) in [("1e300", 1e300), ("-2.5e-300", -2.5e-300), ("0.1", 0.1)] {
            assert_eq!(text.parse::<f64>().unwrap(), v);
            assert_eq!(format!("{v:?}"), text);
        }
    }

    #[test]
    fn faults_carry_code_severity_and_an_integer_state() {
        let raised = decode(
            "fixahead/v1/wm-1/fault",
            br#"{"ts": 1795500002000, "seq": 7, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}"#,
            &ProfileSet::builtin(),
        )
        .unwrap();
        let severity = ProfileSet::builtin()
            .get("washer")
            .unwrap()
            .fault("E21")
            .expect("E21 is in the washer catalogue")
            .severity
            .as_str();
        assert_eq!(
            line(&raised),
            format!("fault,code=E21,device_id=wm-1,device_type=washer,model=WM-500,severity={severity} active=1i,seq=7u 1795500002000")
        );
        let cleared = decode(
            "fixahead/v1/wm-1/fault",
            br#"{"ts": 1795500003000, "seq": 18446744073709551615, "type": "washer", "model": "WM-500", "code": "X 9", "state": "cleared"}"#,
            &ProfileSet::builtin(),
        )
        .unwrap();
        assert_eq!(
            line(&cleared),
            r"fault,code=X\ 9,device_id=wm-1,device_type=washer,model=WM-500,severity=unknown active=0i,seq=18446744073709551615u 1795500003000"
        );
        let status = decode("fixahead/v1/wm-1/status", b"online", &ProfileSet::builtin()).unwrap();
        let mut out = String::new();
        assert!(!write_point(&mut out, &status, &ProfileSet::builtin()));
        assert!(out.is_empty());
    }

    #[test]
    fn partial_writes_say_how_many_points_were_dropped() {
        assert_eq!(
            dropped_points(
                r#"HTTP 422 Unprocessable Entity: {"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped=37"}"#
            ),
            Some(37)
        );
        assert_eq!(dropped_points("HTTP 422: something else"), None);
    }

    #[test]
    fn urls_are_http_host_and_port_only() {
        for (ok, want) in [
            ("http://influxdb:8086", "http://influxdb:8086"),
            ("http://127.0.0.1:8086/", "http://127.0.0.1:8086"),
            ("http://[::1]:8086", "http://[::1]:8086"),
            ("http://influx.internal", "http://influx.internal"),
        ] {
            assert_eq!(parse_influx_url(ok).as_deref(), Ok(want), "{ok}");
        }
        for bad in [
            "https://influxdb:8086",
            "influxdb:8086",
            "http://",
            "http://:8086",
            "http://influxdb:0",
            "http://influxdb:99999",
            "http://influxdb:8086/api/v2",
            "http://in flux:8086",
            "http://[::1:8086",
            "http://[nope]:8086",
            "http://[::1]x",
            "http://user@influxdb:8086",
        ] {
            assert!(parse_influx_url(bad).is_err(), "{bad}");
        }
        let https = parse_influx_url("https://x:1").unwrap_err();
        assert!(https.contains("TLS"), "{https}");
    }

    #[test]
    fn the_cursor_starts_at_zero_and_survives_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cursor::new(dir.path().join(ArchiveSettings::CURSOR_FILE));
        assert_eq!(c.load().unwrap(), 0, "no file: the start of the store");
        c.store(17).unwrap();
        assert_eq!(c.load().unwrap(), 17);
        c.store(4096).unwrap();
        assert_eq!(c.load().unwrap(), 4096);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
        std::fs::write(c.path(), "garbage\n").unwrap();
        assert!(c.load().is_err());
        std::fs::write(c.path(), "-3\n").unwrap();
        assert!(c.load().is_err());
    }

    /// A sink that records what it accepted and fails as told.
    #[derive(Default)]
    struct FakeSink {
        state: Mutex<FakeState>,
    }

    #[derive(Default)]
    struct FakeState {
        /// Accepted lines, in order.
        accepted: Vec<String>,
        /// Requests to fail with Retry before accepting anything.
        down_for: usize,
        /// Lines containing this are refused (the whole request is).
        poison: Option<String>,
        /// Lines containing this are dropped from a partial write (422).
        drop: Option<String>,
        /// Never answer.
        hang: bool,
        /// Requests to write, then answer with Unknown (the answer lost on the way).
        lose_answers: usize,
        requests: usize,
    }

    impl LineSink for Arc<FakeSink> {
        fn write(
            &self,
            body: String,
        ) -> impl Future<Output = std::result::Result<(), WriteError>> + Send {
            let this = self.clone();
            async move {
                if this.state.lock().unwrap().hang {
                    this.state.lock().unwrap().requests += 1;
                    std::future::pending::<()>().await;
                }
                let mut s = this.state.lock().unwrap();
                s.requests += 1;
                if s.down_for > 0 {
                    s.down_for -= 1;
                    return Err(WriteError::Retry("connection refused".into()));
                }
                if let Some(p) = &s.poison {
                    if body.contains(p.as_str()) {
                        return Err(WriteError::Refused("HTTP 400: bad point".into()));
                    }
                }
                let drop = s.drop.clone().unwrap_or_else(|| "\n".into());
                let before = s.accepted.len();
                s.accepted.extend(
                    body.lines()
                        .filter(|l| !l.contains(&drop))
                        .map(str::to_owned),
                );
                let dropped = body.lines().count() - (s.accepted.len() - before);
                if s.lose_answers > 0 {
                    s.lose_answers -= 1;
                    return Err(WriteError::Unknown(
                        "connection closed before the answer".into(),
                    ));
                }
                if dropped > 0 {
                    return Err(WriteError::Partial {
                        detail: format!("partial write: dropped={dropped}"),
                        dropped: Some(dropped as u64),
                    });
                }
                Ok(())
            }
        }
    }

    struct Fixture {
        dir: tempfile::TempDir,
        store: HotStore,
        next_seq: u64,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = HotStore::open(&dir.path().join("hot.db"), Synchronous::Normal).unwrap();
            Self {
                dir,
                store,
                next_seq: 1,
            }
        }

        /// Commits `n` messages of device wm-1 (every fifth a fault), one batch.
        fn commit(&mut self, n: u64) {
            let messages: Vec<Message> = (0..n)
                .map(|_| {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let ts = 1_795_500_000_000 + seq as i64 * 1000;
                    let (topic, payload) = if seq.is_multiple_of(5) {
                        ("fixahead/v1/wm-1/fault", format!(r#"{{"ts": {ts}, "seq": {seq}, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}}"#))
                    } else {
                        ("fixahead/v1/wm-1/telemetry", format!(r#"{{"ts": {ts}, "seq": {seq}, "type": "washer", "model": "WM-500", "readings": {{"vibration_g": 0.{seq}}}}}"#))
                    };
                    decode(topic, payload.as_bytes(), &ProfileSet::builtin()).unwrap()
                })
                .collect();
            let items: Vec<_> = messages
                .iter()
                .map(|message| StoreItem::Message {
                    message,
                    received_at: Timestamp(1),
                })
                .collect();
            self.store.commit(&items).unwrap();
        }

        fn archiver(&self, sink: Arc<FakeSink>, batch_size: usize) -> Archiver<Arc<FakeSink>> {
            Archiver {
                reader: StoreReader::open(&self.dir.path().join("hot.db")).unwrap(),
                sink,
                profiles: Arc::new(ProfileSet::builtin()),
                settings: ArchiveSettings {
                    batch_size,
                    flush_interval: Duration::from_millis(5),
                    timeout: Duration::from_secs(5),
                    max_backoff: Duration::from_millis(5),
                    cursor_path: self.dir.path().join(ArchiveSettings::CURSOR_FILE),
                },
                metrics: Arc::new(ArchiveMetrics::default()),
            }
        }

        fn cursor(&self) -> i64 {
            Cursor::new(self.dir.path().join(ArchiveSettings::CURSOR_FILE))
                .load()
                .unwrap()
        }
    }

    /// Runs `archiver` until `done` holds for its sink and metrics, then stops it.
    async fn run_until(
        archiver: Archiver<Arc<FakeSink>>,
        done: impl Fn(&FakeState, &ArchiveMetrics) -> bool,
    ) -> (Arc<FakeSink>, Arc<ArchiveMetrics>) {
        let sink = archiver.sink.clone();
        let metrics = archiver.metrics.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(archiver.run(stop.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !done(&sink.state.lock().unwrap(), &metrics) {
            assert!(
                std::time::Instant::now() < deadline,
                "archiver made no progress"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.cancel();
        task.await.unwrap();
        (sink, metrics)
    }

    fn seqs(lines: &[String]) -> Vec<u64> {
        lines
            .iter()
            .map(|l| {
                let field = l.split("seq=").nth(1).unwrap();
                field[..field.find('u').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_every_row_once_in_commit_order_and_resumes_at_the_cursor() {
        let mut fx = Fixture::new();
        fx.commit(23);
        let (sink, metrics) = run_until(fx.archiver(Arc::default(), 10), |s, m| {
            s.accepted.len() == 23 && m.backlog.load(Relaxed) == 0
        })
        .await;
        let first = sink.state.lock().unwrap().accepted.clone();
        assert_eq!(seqs(&first), (1..=23).collect::<Vec<_>>());
        assert_eq!(first.iter().filter(|l| l.starts_with("fault,")).count(), 4);
        let m = metrics.snapshot();
        assert_eq!((m.points_telemetry, m.points_faults), (19, 4));
        assert_eq!(m.batches, 3, "batches of 10, 10 and 3");
        assert_eq!((m.position, m.write_failures), (23, 0));
        assert!(m.last_success_ms.is_some());
        assert_eq!(fx.cursor(), 23);

        // A new archiver (a restart) sends only what was stored since.
        fx.commit(5);
        let (sink, metrics) = run_until(fx.archiver(Arc::default(), 10), |s, _| {
            s.accepted.len() >= 5
        })
        .await;
        assert_eq!(
            seqs(&sink.state.lock().unwrap().accepted),
            (24..=28).collect::<Vec<_>>()
        );
        assert_eq!(metrics.snapshot().position, 28);
        assert_eq!(fx.cursor(), 28);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_down_server_costs_retries_not_points_and_the_backlog_shows_it() {
        let mut fx = Fixture::new();
        fx.commit(12);
        let sink = Arc::new(FakeSink::default());
        sink.state.lock().unwrap().down_for = 7;
        let (sink, metrics) = run_until(fx.archiver(sink, 5), |s, _| s.accepted.len() == 12).await;
        let s = sink.state.lock().unwrap();
        assert_eq!(
            seqs(&s.accepted),
            (1..=12).collect::<Vec<_>>(),
            "in order, none twice"
        );
        let m = metrics.snapshot();
        assert_eq!(m.write_failures, 7);
        assert_eq!(s.requests, 7 + 3);
        assert_eq!(m.points_telemetry + m.points_faults, 12);
        assert_eq!(fx.cursor(), 12);
    }

    /// An HTTP server on a free port that answers one request per connection with
    /// `answer` (raw bytes after reading the request head; empty: close unanswered).
    async fn one_shot_server(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 64 * 1024];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        url
    }

    async fn write_to(url: String) -> std::result::Result<(), WriteError> {
        let target = InfluxTarget {
            url,
            org: "o".into(),
            bucket: "b".into(),
            token: "t".into(),
        };
        let sink = InfluxSink::new(&target, Duration::from_secs(5)).unwrap();
        sink.write("m,device_id=a v=1 1".into()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_say_whether_the_server_may_have_written_the_batch() {
        // Nothing listens: the request never went out.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let refused = write_to(format!("http://127.0.0.1:{port}")).await;
        assert!(matches!(refused, Err(WriteError::Retry(_))), "{refused:?}");
        // Read the request, then hung up: it may have been written.
        let cut = write_to(one_shot_server("").await).await;
        assert!(matches!(cut, Err(WriteError::Unknown(_))), "{cut:?}");
        let answer = |status: &'static str| {
            one_shot_server(match status {
                "503" => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy",
                "500" => "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops",
                _ => "HTTP/1.1 204 No Content\r\n\r\n",
            })
        };
        let unavailable = write_to(answer("503").await).await;
        assert!(
            matches!(unavailable, Err(WriteError::Retry(_))),
            "{unavailable:?}"
        );
        let internal = write_to(answer("500").await).await;
        assert!(
            matches!(internal, Err(WriteError::Unknown(_))),
            "{internal:?}"
        );
        assert_eq!(write_to(answer("204").await).await, Ok(()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_answer_resends_the_batch_and_counts_its_points_as_uncertain() {
        let mut fx = Fixture::new();
        fx.commit(12);
        let sink = Arc::new(FakeSink::default());
        sink.state.lock().unwrap().lose_answers = 1;
        let (sink, metrics) = run_until(fx.archiver(sink, 5), |s, m| {
            s.accepted.len() == 17 && m.backlog.load(Relaxed) == 0
        })
        .await;
        let s = sink.state.lock().unwrap();
        let mut want: Vec<u64> = (1..=5).collect();
        want.extend(1..=12);
        assert_eq!(
            seqs(&s.accepted),
            want,
            "the first batch twice (the server took it, the answer was lost), then the rest once"
        );
        let m = metrics.snapshot();
        assert_eq!(
            m.points_uncertain, 5,
            "the points that may now be held twice"
        );
        assert_eq!(m.write_failures, 1);
        assert_eq!(
            m.points_telemetry + m.points_faults,
            12,
            "accepted points count once"
        );
        assert_eq!(fx.cursor(), 12);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_backlog_grows_while_the_server_is_down() {
        let mut fx = Fixture::new();
        fx.commit(3);
        let sink = Arc::new(FakeSink::default());
        sink.state.lock().unwrap().down_for = usize::MAX;
        let archiver = fx.archiver(sink.clone(), 100);
        let metrics = archiver.metrics.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(archiver.run(stop.clone()));
        let wait = |want: u64| {
            let metrics = metrics.clone();
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while metrics.backlog.load(Relaxed) != want {
                    assert!(std::time::Instant::now() < deadline, "backlog never {want}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        wait(3).await;
        fx.commit(4);
        wait(7).await;
        assert!(metrics.write_failures.load(Relaxed) >= 2);
        assert_eq!(metrics.position.load(Relaxed), 0);
        // Up again: everything goes, and the cursor follows.
        sink.state.lock().unwrap().down_for = 0;
        wait(0).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sink.state.lock().unwrap().accepted.len() < 7 {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.cancel();
        task.await.unwrap();
        assert_eq!(
            seqs(&sink.state.lock().unwrap().accepted),
            (1..=7).collect::<Vec<_>>()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_point_is_isolated_and_skipped_and_the_rest_is_written() {
        let mut fx = Fixture::new();
        fx.commit(16);
        let sink = Arc::new(FakeSink::default());
        sink.state.lock().unwrap().poison = Some("seq=11u".into());
        let (sink, metrics) =
            run_until(fx.archiver(sink, 16), |_, m| m.position.load(Relaxed) == 16).await;
        let want: Vec<u64> = (1..=16).filter(|s| *s != 11).collect();
        assert_eq!(seqs(&sink.state.lock().unwrap().accepted), want);
        let m = metrics.snapshot();
        assert_eq!(m.points_refused, 1);
        assert_eq!(m.points_telemetry + m.points_faults, 15);
        // 16 -> 8 -> 4 -> 2 -> 1: four refused requests on the way down, one for the point.
        assert_eq!(m.write_failures, 5);
        assert_eq!(
            fx.cursor(),
            16,
            "a refused point does not hold the archive up"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_does_not_wait_for_a_server_that_never_answers() {
        let mut fx = Fixture::new();
        fx.commit(3);
        let sink = Arc::new(FakeSink::default());
        sink.state.lock().unwrap().hang = true;
        let archiver = fx.archiver(sink.clone(), 10);
        let stop = CancellationToken::new();
        let task = tokio::spawn(archiver.run(stop.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sink.state.lock().unwrap().requests == 0 {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.cancel();
        // The write never returns; the bound is a liveness check only.
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the archiver stops while a write hangs")
            .unwrap();
        assert_eq!(fx.cursor(), 0, "nothing acknowledged, nothing moved");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partial_write_is_done_and_counts_the_dropped_points() {
        let mut fx = Fixture::new();
        fx.commit(9);
        let sink = Arc::new(FakeSink::default());
        sink.state.lock().unwrap().drop = Some("vibration_g=0.3,".into());
        let (sink, metrics) =
            run_until(fx.archiver(sink, 100), |_, m| m.position.load(Relaxed) == 9).await;
        let s = sink.state.lock().unwrap();
        assert_eq!(seqs(&s.accepted), vec![1, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(s.requests, 1, "nothing sent again, nothing split");
        let m = metrics.snapshot();
        assert_eq!((m.points_refused, m.write_failures), (1, 1));
        assert_eq!(
            (m.points_telemetry, m.points_faults),
            (7, 1),
            "seq 5 is the fault"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cursor_ahead_of_the_store_starts_over_and_a_garbled_one_too() {
        let mut fx = Fixture::new();
        fx.commit(4);
        Cursor::new(fx.dir.path().join(ArchiveSettings::CURSOR_FILE))
            .store(1000)
            .unwrap();
        let (sink, _) = run_until(fx.archiver(Arc::default(), 10), |s, _| {
            s.accepted.len() == 4
        })
        .await;
        assert_eq!(seqs(&sink.state.lock().unwrap().accepted), vec![1, 2, 3, 4]);
        std::fs::write(fx.dir.path().join(ArchiveSettings::CURSOR_FILE), "x").unwrap();
        let (sink, _) = run_until(fx.archiver(Arc::default(), 10), |s, _| {
            s.accepted.len() == 4
        })
        .await;
        assert_eq!(seqs(&sink.state.lock().unwrap().accepted), vec![1, 2, 3, 4]);
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = ArchiveMetrics::default();
        m.points_telemetry.store(5, Relaxed);
        m.points_faults.store(2, Relaxed);
        m.backlog.store(9, Relaxed);
        m.last_success_ms.store(1_795_500_000_123, Relaxed);
        let mut out = String::new();
        m.render_prometheus(&mut out);
        for want in [
            "fixahead_archive_points_total{measurement=\"telemetry\"} 5\n",
            "fixahead_archive_points_total{measurement=\"fault\"} 2\n",
            "fixahead_archive_backlog_rows 9\n",
            "fixahead_archive_write_failures_total 0\n",
            "fixahead_archive_points_uncertain_total 0\n",
            "fixahead_archive_last_success_timestamp_seconds 1795500000.123\n",
            "# TYPE fixahead_archive_backlog_rows gauge\n",
        ] {
            assert!(out.contains(want), "{want} missing from\n{out}");
        }
    }
}
