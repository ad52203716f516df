//! # History file format
//!
//! `fixahead simulate --out DIR --days N` (and [`write_history`]) writes a simulated
//! fleet's history into a directory as three [JSON Lines](https://jsonlines.org) files:
//! UTF-8, one JSON object per line, `\n` line ends. Timestamps are RFC 3339 UTC with
//! millisecond precision (`2026-01-01T06:00:00.000Z`). The same config and seed always
//! produce byte-identical files.
//!
//! ## `devices.jsonl`
//! One line per device, in device order:
//!
//! ```json
//! {"device_id":"wm-0001","type":"washer","model":"WM-700","fw":"2.4.1","region":"east","batch":"B2022-06","installed_at":"2022-07-07T00:00:00.000Z"}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `device_id` | device id, 1-64 characters of `[A-Za-z0-9_-]` |
//! | `type` | device type, a profile key (`washer`, `refrigerator`) |
//! | `model`, `fw` | product model and firmware version |
//! | `region` | sales region (`north`, `south`, `east`, `west`, `central`) |
//! | `batch` | production batch (`B{year}-{month}`) |
//! | `installed_at` | installation time, before the history starts |
//!
//! ## `telemetry.jsonl`
//! Every message the devices published, in event-time order (globally non-decreasing
//! `ts`; per device, strictly increasing `seq` starting at 1, counting telemetry and
//! fault messages together). Each line is the exact wire protocol v1 payload plus two
//! fields: `device_id` (the id from the topic) and `msg` (`telemetry` or `fault`, the
//! topic's last segment). Replaying a line means publishing it, with or without the two
//! extra fields (v1 ignores unknown fields and accepts a matching `device_id`), to
//! `fixahead/v1/{device_id}/{msg}`.
//!
//! ```json
//! {"device_id":"wm-0001","msg":"telemetry","ts":"2026-01-01T15:01:48.544Z","seq":1,"type":"washer","model":"WM-700","fw":"2.4.1","readings":{"motor_current_a":3.386,"vibration_g":0.142,"water_temp_c":39.531,"heat_time_s":723.216,"drain_time_s":16.434,"fill_time_s":113.414,"supply_voltage_v":224.172}}
//! {"device_id":"rf-0096","msg":"telemetry","ts":"2026-01-01T00:00:08.635Z","seq":1,"type":"refrigerator","model":"RF-420","fw":"1.8.2","readings":{"cabinet_temp_c":4.201,"freezer_temp_c":-19.28,"evaporator_temp_c":-26.833,"compressor_duty":0.437,"compressor_current_a":1.121,"ambient_temp_c":21.128,"defrost_time_min":23.988}}
//! {"device_id":"rf-0132","msg":"fault","ts":"2026-01-01T00:01:19.108Z","seq":2,"type":"refrigerator","model":"RF-300","fw":"2.0.1","code":"F21","state":"raised"}
//! ```
//!
//! Key order within a line is not part of the contract (live payloads, built as
//! `serde_json::Value`, may order keys differently). Readings use the channel names
//! of the device's profile and always lie within the channels' physical ranges. A
//! washer sends one telemetry line per wash program; a refrigerator one per
//! `refrigerator_interval_s` (15 minutes by default).
//!
//! ## `events.jsonl`
//! The ground truth: every component failure and repair, in event-time order. Devices
//! never publish these; they are what models are trained and evaluated against.
//!
//! ```json
//! {"device_id":"wm-0021","ts":"2026-01-03T12:59:42.407Z","event":"failure","component":"drain_pump","mode":"clog"}
//! {"device_id":"wm-0021","ts":"2026-01-05T08:12:03.911Z","event":"repair","component":"drain_pump","mode":"clog"}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `event` | `failure` or `repair` |
//! | `component` | a component of the device's profile |
//! | `mode` | how it failed: a progressive mode with a precursor in the telemetry (`clog`, `bearing_wear`, `heater_wear`, `compressor_wear`, `defrost_wear`) or `sudden` (no precursor); a repair repeats the mode of the failure it fixes |
//!
//! Every failure is followed by a repair of the same component 1-4 days later, unless
//! the history ends first. A failed component is not "failed again" before its repair.
//! Progressive failures show their precursor for 5-30 days before the failure (it may
//! have begun before the history starts). Each component's failure code is raised at
//! the failure and stays raised until the repair clears it:
//!
//! | type | component | progressive mode (precursor length) | precursor codes | failure code |
//! |---|---|---|---|---|
//! | washer | `drain_pump` | `clog` (5-25 d): drain time grows | `E21` | `E23` |
//! | washer | `motor_bearing` | `bearing_wear` (7-30 d): vibration, motor current grow | `E51`, more `E52` | `E51` |
//! | washer | `heater` | `heater_wear` (5-20 d): heat time grows | `E61` | `E62` |
//! | refrigerator | `compressor` | `compressor_wear` (5-30 d): duty, current grow, cabinet warms late | `F01` | `F02` (and `F01` as the cabinet warms) |
//! | refrigerator | `defrost_system` | `defrost_wear` (5-20 d): defrost time grows | `F11` | `F11` |
//!
//! Nuisance codes that say nothing about wear: `E41` and `E52` (washers), `F21`
//! (refrigerators). Status messages are not part of a history.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use domain::{MessageKind, ProfileSet, Timestamp};

use crate::device::{Raw, DAY_MS};
use crate::{Error, Fleet, FleetConfig, GroundTruthKind, Result};

/// What [`write_history`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistorySummary {
    /// Lines of `devices.jsonl`.
    pub devices: usize,
    /// Lines of `telemetry.jsonl` (telemetry and fault messages).
    pub messages: u64,
    /// Telemetry messages among them.
    pub telemetry: u64,
    /// Fault messages among them.
    pub faults: u64,
    /// Failure lines of `events.jsonl`.
    pub failures: u64,
    /// Repair lines of `events.jsonl`.
    pub repairs: u64,
    /// First instant covered.
    pub start: Timestamp,
    /// Last instant covered (inclusive).
    pub end: Timestamp,
}

/// Simulates `config` for `duration_ms` from `config.start` and writes the history
/// files (see the [module documentation](self)) into `dir`, creating it if needed and
/// replacing files of the same names.
pub fn write_history(
    dir: &Path,
    config: FleetConfig,
    profiles: &ProfileSet,
    duration_ms: i64,
) -> Result<HistorySummary> {
    if duration_ms <= 0 {
        return Err(Error::InvalidConfig(format!(
            "history duration must be positive, got {duration_ms} ms"
        )));
    }
    let mut fleet = Fleet::new(config, profiles)?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let start = fleet.config().start;
    let end = Timestamp(start.millis().saturating_add(duration_ms - 1));
    let mut summary = HistorySummary {
        devices: 0,
        messages: 0,
        telemetry: 0,
        faults: 0,
        failures: 0,
        repairs: 0,
        start,
        end,
    };

    let mut devices = Writer::create(&dir.join("devices.jsonl"))?;
    for info in fleet.devices() {
        devices.json_line(&info)?;
        summary.devices += 1;
    }
    devices.finish()?;

    let mut telemetry = Writer::create(&dir.join("telemetry.jsonl"))?;
    let mut events = Writer::create(&dir.join("events.jsonl"))?;
    let mut t = start.millis();
    while t < end.millis() {
        t = t.saturating_add(DAY_MS).min(end.millis());
        for (index, released) in fleet.advance_raw(Timestamp(t)) {
            let Some(core) = fleet.core(index) else {
                continue;
            };
            match released.raw {
                Raw::Message { seq, body } => {
                    let (kind, mut payload) = core.payload(released.ts, seq, &body);
                    payload.device_id = Some(core.info.device_id.as_str());
                    payload.msg = Some(kind.as_str());
                    telemetry.json_line(&payload)?;
                    summary.messages += 1;
                    match kind {
                        MessageKind::Telemetry => summary.telemetry += 1,
                        _ => summary.faults += 1,
                    }
                }
                Raw::Truth {
                    event,
                    component,
                    mode,
                } => {
                    events.json_line(&core.ground_truth(
                        Timestamp(released.ts),
                        event,
                        component,
                        mode,
                    ))?;
                    match event {
                        GroundTruthKind::Failure => summary.failures += 1,
                        GroundTruthKind::Repair => summary.repairs += 1,
                    }
                }
            }
        }
    }
    telemetry.finish()?;
    events.finish()?;
    Ok(summary)
}

/// A buffered JSON Lines writer that names its file in errors.
struct Writer {
    path: std::path::PathBuf,
    out: BufWriter<File>,
    scratch: Vec<u8>,
}

impl Writer {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 20, file),
            scratch: Vec::with_capacity(512),
        })
    }

    fn json_line(&mut self, value: &impl serde::Serialize) -> Result<()> {
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, value)?;
        self.scratch.push(b'\n');
        self.write_scratch()
    }

    fn write_scratch(&mut self) -> Result<()> {
        self.out
            .write_all(&self.scratch)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}
