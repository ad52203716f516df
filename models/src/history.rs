//! Reading a history directory: the input of training, evaluation and replay.
//!
//! * `telemetry.jsonl`: one v1 wire payload per line plus `"device_id"` and
//!   `"msg": "telemetry" | "fault"`. Each line is decoded exactly as a live message:
//!   [`domain::wire::decode`] on the topic `fixahead/v1/{device_id}/{msg}`. Lines that do
//!   not decode are counted by reason and skipped.
//! * `events.jsonl`: `{"device_id", "ts", "event": "failure" | "repair", "component",
//!   "mode"?}`; unusable lines are counted and skipped.
//! * `profiles/*.toml` (optional): profiles that override the built-in ones.
//! * `devices.jsonl` (optional): not needed for training and not read.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;

use domain::{DeviceId, Message, Profile, ProfileSet, Timestamp};
use serde::Deserialize;

use crate::{Error, Result};

/// Name of the messages file in a history directory.
pub const TELEMETRY_FILE: &str = "telemetry.jsonl";
/// Name of the ground-truth events file in a history directory.
pub const EVENTS_FILE: &str = "events.jsonl";

/// What reading `telemetry.jsonl` found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryStats {
    /// Non-blank lines read.
    pub lines: u64,
    /// Lines decoded into messages.
    pub decoded: u64,
    /// Lines skipped because they did not decode.
    pub rejected: u64,
    /// Skipped lines by reason (a [`domain::RejectReason`] name, or `invalid_line` when
    /// the line lacks a string `device_id` or `msg`).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Earliest and latest event time among decoded messages.
    pub time_range: Option<(Timestamp, Timestamp)>,
}

/// Whether a component failed or was repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// The component failed (ground truth).
    Failure,
    /// The component was repaired or replaced.
    Repair,
}

/// One line of `events.jsonl`.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEvent {
    /// The device.
    pub device_id: DeviceId,
    /// When it happened.
    pub ts: Timestamp,
    /// Failure or repair.
    pub kind: EventKind,
    /// The component concerned.
    pub component: String,
    /// Failure mode, when given.
    pub mode: Option<String>,
}

/// A check that found a component healthy: a service ticket closed with the outcome
/// `no_fault_found` (`fixahead train --from-store`). Training keeps the rows of that
/// device and component in the horizon before the check as negatives (see
/// [`crate::train`](mod@crate::train)); a history directory has none.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthyCheck {
    /// The device.
    pub device_id: DeviceId,
    /// When the check found nothing wrong.
    pub ts: Timestamp,
    /// The component checked.
    pub component: String,
}

/// `base` plus the profiles in `{history_dir}/profiles/*.toml`, which override builtins.
pub fn load_profiles(history_dir: &Path, base: &ProfileSet) -> Result<ProfileSet> {
    let mut set = base.clone();
    let dir = history_dir.join("profiles");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(set),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    for path in paths {
        let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        set.insert(Profile::from_toml(&path.display().to_string(), &text)?);
    }
    Ok(set)
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    device_id: Cow<'a, str>,
    #[serde(borrow)]
    msg: Cow<'a, str>,
}

/// Decodes every line of `{history_dir}/telemetry.jsonl` and hands each message to `f`,
/// in file order. Lines that do not decode are counted and skipped, never fatal.
pub fn for_each_message(
    history_dir: &Path,
    profiles: &ProfileSet,
    mut f: impl FnMut(Message),
) -> Result<HistoryStats> {
    let path = history_dir.join(TELEMETRY_FILE);
    let file = fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut stats = HistoryStats::default();
    let mut line = Vec::with_capacity(1024);
    let mut topic = String::with_capacity(96);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(&path, e))?;
        if n == 0 {
            break;
        }
        let bytes = line.trim_ascii();
        if bytes.is_empty() {
            continue;
        }
        stats.lines += 1;
        let head: Head<'_> = match serde_json::from_slice(bytes) {
            Ok(h) => h,
            Err(_) => {
                stats.reject("invalid_line");
                continue;
            }
        };
        topic.clear();
        topic.push_str(domain::wire::TOPIC_PREFIX);
        topic.push_str(&head.device_id);
        topic.push('/');
        topic.push_str(&head.msg);
        match domain::decode(&topic, bytes, profiles) {
            Ok(msg) => {
                stats.decoded(&msg);
                f(msg);
            }
            Err(rejection) => stats.reject(rejection.reason.as_str()),
        }
    }
    Ok(stats)
}

impl HistoryStats {
    /// Counts a decoded message: `decoded`, and `time_range` from its event time.
    pub fn decoded(&mut self, msg: &Message) {
        self.decoded += 1;
        if let Some(ts) = msg.ts() {
            self.time_range = Some(match self.time_range {
                None => (ts, ts),
                Some((a, b)) => (a.min(ts), b.max(ts)),
            });
        }
    }

    fn reject(&mut self, reason: &str) {
        self.rejected += 1;
        *self
            .rejected_by_reason
            .entry(reason.to_owned())
            .or_default() += 1;
    }
}

#[derive(Deserialize)]
struct EventLine {
    device_id: String,
    ts: serde_json::Value,
    event: String,
    component: String,
    #[serde(default)]
    mode: Option<String>,
}

/// Reads `{history_dir}/events.jsonl`, sorted by time. Returns the events and the number
/// of unusable lines skipped.
pub fn load_events(history_dir: &Path) -> Result<(Vec<HistoryEvent>, u64)> {
    let path = history_dir.join(EVENTS_FILE);
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut events = Vec::new();
    let mut rejected = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match parse_event(line) {
            Some(e) => events.push(e),
            None => rejected += 1,
        }
    }
    events.sort_by_key(|e| e.ts);
    Ok((events, rejected))
}

fn parse_event(line: &str) -> Option<HistoryEvent> {
    let raw: EventLine = serde_json::from_str(line).ok()?;
    let ts = match &raw.ts {
        serde_json::Value::String(s) => Timestamp::parse(s).ok()?,
        serde_json::Value::Number(n) => Timestamp(n.as_i64()?),
        _ => return None,
    };
    let kind = match raw.event.as_str() {
        "failure" => EventKind::Failure,
        "repair" => EventKind::Repair,
        _ => return None,
    };
    Some(HistoryEvent {
        device_id: DeviceId::parse(&raw.device_id).ok()?,
        ts,
        kind,
        component: raw.component,
        mode: raw.mode,
    })
}
