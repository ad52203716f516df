//! # History file format
//!
//! `fixahead simulate --out DIR --days N` (and [`write_history`]) writes a simulated
//! fleet's history into a directory as three [JSON Lines](https://jsonlines.org) files:
//! UTF-8, one JSON object per line, `\n` line ends. Timestamps are RFC 3339 UTC with
//! millisecond precision (`2026-01-01T06:00:00.000Z`). The same config and seed always
//! produce byte-identical files (whatever the number of CPU cores that wrote them).
//!
//! ## `devices.jsonl`
//! One line per device, in device order:
//!
//! ```json
//! {"device_id":"wm-0001","type":"washer","model":"WM-700","fw":"2.4.1","region":"west","batch":"B2025-04","installed_at":"2025-05-26T00:00:00.000Z","installation":"ok","sensor_fault":null}
//! {"device_id":"dw-0002","type":"dishwasher","model":"DW-600","fw":"3.1.0","region":"north","batch":"B2024-09","installed_at":"2024-11-17T00:00:00.000Z","installation":"low_voltage","sensor_fault":{"channel":"cycle_time_min","kind":"spike","from":"2026-03-09T15:09:24.071Z","to":"2026-03-18T08:25:21.871Z"}}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `device_id` | device id, 1-64 characters of `[A-Za-z0-9_-]`; the prefix names the kind: `wm-` washer, `dw-` dishwasher, `rf-` refrigerator, `ac-` air conditioner, `wh-` water heater |
//! | `type` | device type, a profile key (`washer`, `dishwasher`, `refrigerator`, `air_conditioner`, `water_heater`) |
//! | `model`, `fw` | product model and firmware version |
//! | `region` | sales region (`north`, `south`, `east`, `west`, `central`): mains voltage, climate, inlet-water temperature |
//! | `batch` | production batch (`B{year}-{month}`, a few months before installation) |
//! | `installed_at` | installation time, before the history starts |
//! | `installation` | optional (default `ok`): `ok`, or a poor installation that shifts readings for good without any failure (see Confounders) |
//! | `sensor_fault` | optional (default `null`): the device's sensor fault episode, `{"channel", "kind": "stuck" \| "dropout" \| "spike", "from", "to"}` (`to` exclusive; it may lie outside the history) |
//!
//! `installation` and `sensor_fault` are ground truth for evaluating false alarms: a real
//! device does not report them.
//!
//! ## `telemetry.jsonl`
//! Every message the devices published. Each line is the exact wire protocol v1 payload
//! plus two fields: `device_id` (the id from the topic) and `msg` (`telemetry` or `fault`,
//! the topic's last segment). Replaying a line means publishing it, with or without the
//! two extra fields (v1 ignores unknown fields and accepts a matching `device_id`), to
//! `fixahead/v1/{device_id}/{msg}`.
//!
//! **Order.** Per device, lines are in event-time order with `seq` increasing by one from
//! 1 (telemetry and fault messages count together). Globally the file is **not** sorted by
//! time: it is written in blocks of six simulated hours; within a block, device by device
//! (in device order). So `ts` never goes back by more than six hours from one line to the
//! next, and a reader that keeps state per device (features, replay per device) can read
//! the file front to back. A reader that needs global time order must sort (or merge the
//! devices' streams).
//!
//! ```json
//! {"device_id":"wm-0006","msg":"telemetry","ts":"2026-01-01T12:45:01.697Z","seq":1,"type":"washer","model":"WM-500","fw":"2.4.1","readings":{"motor_current_a":2.89,"vibration_g":0.079,"water_temp_c":60.685,"heat_time_s":1479.053,"drain_time_s":17.595,"fill_time_s":139.711,"supply_voltage_v":226.779}}
//! {"device_id":"dw-0007","msg":"telemetry","ts":"2026-01-01T21:12:35.228Z","seq":1,"type":"dishwasher","model":"DW-450","fw":"3.1.0","readings":{"wash_temp_c":63.548,"heat_time_s":1500.291,"circulation_pressure_kpa":31.937,"pump_current_a":0.926,"turbidity_ntu":18.116,"drain_time_s":60.773,"fill_time_s":83.68,"cycle_time_min":174.513,"supply_voltage_v":228.53}}
//! {"device_id":"rf-0003","msg":"telemetry","ts":"2026-01-01T00:08:43.402Z","seq":1,"type":"refrigerator","model":"RF-420","fw":"1.8.2","readings":{"cabinet_temp_c":4.235,"freezer_temp_c":-16.784,"evaporator_temp_c":-24.533,"compressor_duty":0.513,"compressor_current_a":1.121,"ambient_temp_c":22.56,"defrost_time_min":26.712}}
//! {"device_id":"ac-0004","msg":"telemetry","ts":"2026-01-01T00:01:11.001Z","seq":1,"type":"air_conditioner","model":"AC-250","fw":"4.1.0","readings":{"outdoor_temp_c":8.269,"indoor_temp_c":17.026,"compressor_hz":0.0,"compressor_current_a":0.0,"discharge_temp_c":8.359,"indoor_coil_temp_c":17.521,"outdoor_fan_rpm":0.0,"supply_voltage_v":231.492}}
//! {"device_id":"wh-0005","msg":"telemetry","ts":"2026-01-01T00:44:14.669Z","seq":1,"type":"water_heater","model":"WH-80","fw":"1.4.0","readings":{"tank_temp_c":58.635,"max_tank_temp_c":60.274,"inlet_temp_c":15.07,"heating_duty":0.167,"element_current_a":7.428,"water_drawn_l":7.581,"supply_voltage_v":204.604}}
//! {"device_id":"wh-0005","msg":"fault","ts":"2026-01-01T01:44:14.669Z","seq":3,"type":"water_heater","model":"WH-80","fw":"1.4.0","code":"W05","state":"raised"}
//! ```
//!
//! Key order within a line is not part of the contract (live payloads, built as
//! `serde_json::Value`, may order keys differently). Readings use the channel names of the
//! device's profile and always lie within the channels' physical ranges. A message usually
//! carries every channel of its profile; a sensor dropout or a firmware quirk (below)
//! leaves one out.
//!
//! Reporting: a washer or dishwasher sends one telemetry line per program, at its end,
//! summarising its phases (a few programs a week); a refrigerator one per
//! `refrigerator_interval_s` (15 minutes by default); an air conditioner one per
//! `refrigerator_interval_s` while switched on and one an hour while off; a water heater
//! one an hour. Each device has its own phase.
//!
//! ### Behaviour
//!
//! - **Weather.** Each region has a climate (yearly mean, seasonal and daily swing; the
//!   regions lie in the northern hemisphere, coldest around 20 January) plus a weather
//!   anomaly of a few kelvin that all devices of the region share and that changes from day
//!   to day. It drives air conditioners (cooling in summer, heating in winter for
//!   households that heat with them, idle in between), refrigerators (room temperature
//!   follows the season a little), and cold-water inlet temperatures (washers,
//!   dishwashers, water heaters).
//! - **Use.** Washers run 0.3-1.5 programs a day (07:00-20:00 UTC), dishwashers
//!   0.35-1.1 (mostly after dinner). Air conditioners run on each household's daily
//!   schedule (some all day). Water heaters follow daily hot-water demand: showers in the
//!   morning and evening, small draws during the day, later on weekends, 1-5 people per
//!   household, a disinfection cycle to 70 °C on Sunday nights.
//! - **Idle readings.** Between cycles readings are those of an idle machine, not noise
//!   around a constant: an air conditioner that is off reports 0 Hz, 0 A, 0 rpm, a
//!   discharge temperature near the outdoor air and a coil at room temperature while the
//!   room floats with the weather; a water heater that did not heat reports duty 0 and
//!   current 0 while its tank cools slowly.
//!
//! ## `events.jsonl`
//! The ground truth: every component failure and repair, sorted by time (ties: device
//! order). Devices never publish these; they are what models are trained and evaluated
//! against. It holds `failure` and `repair` events only.
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
//! | `mode` | how it failed: a progressive mode with a precursor (table below) or `sudden` (no precursor at all); a repair repeats the mode of the failure it fixes |
//!
//! Every failure is followed by a repair of the same component 1-4 days later, unless the
//! history ends first. A failed component is not "failed again" before its repair; a
//! repair makes it as good as new (a fresh time to failure). Failure times are exponential
//! (`failure_rate_per_year` per component); a share `sudden_failure_share` (default 0.25)
//! of failures is sudden. A progressive failure's precursor length is drawn per failure
//! from the range in the table, so it differs between failures and devices (it may have
//! begun before the history starts). Each component's failure code is raised at the
//! failure and stays raised until the repair clears it:
//!
//! | type | component | progressive mode (precursor length): what changes | precursor codes | failure code |
//! |---|---|---|---|---|
//! | washer | `drain_pump` | `clog` (5-25 d): drain time grows | `E21` | `E23` |
//! | washer | `motor_bearing` | `bearing_wear` (7-30 d): vibration, motor current grow | `E51`, more `E52` | `E51` |
//! | washer | `heater` | `heater_wear` (5-20 d): heat time grows | `E61` | `E62` |
//! | dishwasher | `drain_pump` | `clog` (4-21 d): drain time grows | `E24` | `E25` |
//! | dishwasher | `circulation_pump` | `impeller_wear` (10-40 d): circulation pressure falls, pump current and rinse turbidity rise | `E14` | `E16` |
//! | dishwasher | `heater` | `heater_wear` (5-25 d): heat time grows | `E08` | `E09` |
//! | refrigerator | `compressor` | `compressor_wear` (5-30 d): duty, current grow, cabinet warms late | `F01` | `F02` (and `F01` as the cabinet warms) |
//! | refrigerator | `defrost_system` | `defrost_wear` (5-20 d): defrost time grows | `F11` | `F11` |
//! | air_conditioner | `refrigerant_circuit` | `refrigerant_leak` (14-60 d): discharge temperature and compressor frequency rise, the indoor coil loses its temperature difference | `P01` | `P02` |
//! | air_conditioner | `compressor` | `compressor_wear` (5-25 d): current per Hz rises | `P11` | `P10` |
//! | air_conditioner | `outdoor_fan` | `fan_bearing_wear` (7-30 d): fan speed falls (cooling: discharge temperature rises) | `P21` | `P20` |
//! | water_heater | `heating_element` | `element_degradation` (7-40 d): element current falls, duty and recovery time rise | `W12` | `W11` |
//! | water_heater | `thermostat` | `thermostat_drift` (5-30 d): the tank heats up to 12 K above its set point (`max_tank_temp_c`) | `W22` | `W21` (safety cut-out at 88 °C) |
//!
//! An air conditioner's compressor and outdoor fan wear with use: their failure time and
//! precursor run on a use clock that advances five hours per running hour (the
//! simulated fleet runs about 20% of the year) and stands still while the unit is off,
//! so they fail, and show their precursor, in the seasons the unit runs. A compressor
//! that is switched off neither wears nor fails. The refrigerant leak runs on the
//! calendar (gas escapes either way) and shows only while the unit runs.
//!
//! ## Confounders
//!
//! A real fleet has readings that look wrong without any component failing. The simulator
//! adds them, with ground truth in `devices.jsonl`:
//!
//! - **Sensor faults** (`sensor_fault_share` of devices, default 0.05): one episode of
//!   1-14 days, starting within the first 75 days, on one channel: `stuck` (the channel
//!   repeats its first reading of the episode), `dropout` (the channel is missing from
//!   `readings`) or `spike` (one reading in six is a plausible but wrong value, 15-40 % of
//!   the channel's range away, always within the physical range, so never a dead letter).
//! - **Poor installations** (`poor_installation_share` of devices, default 0.05), constant
//!   from the first day: `sagging_drain_hose` (washers, dishwashers: every drain takes
//!   40-100 % longer), `low_voltage` (all kinds: the socket's mains is 14-24 V low; heating
//!   takes longer, motors draw more current, a water heater's element current and power
//!   are low, like a degrading element that does not get worse; dishwashers and water
//!   heaters log `E27`/`W05`), `poor_ventilation` (refrigerators in a tight niche: 14-22 %
//!   less capacity, higher duty; air-conditioner outdoor units in an enclosure: 5-9 K
//!   higher condensing and discharge temperatures when cooling).
//! - **Nuisance codes** that come and go and say nothing about wear: `E41`, `E52` (washers),
//!   `E01`, `E17`, `E27` (dishwashers), `F21` (refrigerators), `H1` (defrost while heating
//!   in frost), `E8` (air conditioners), `W31`, `W05` (water heaters). How often a
//!   household triggers them varies between devices (some are chatty).
//!
//! ## Fleet attributes
//!
//! - **Defective batch** ([`crate::FleetConfig::defective_batch`], CLI `--defective-batch
//!   BATCH[:COMPONENT[:MULTIPLIER]]`): devices of that production batch fail `MULTIPLIER`
//!   times (default 5) as often, for one component or all of them. The batch name matches
//!   across kinds (a component name limits it to the kinds that have that component). The
//!   fleet checks that the batch exists and lists the existing ones otherwise.
//! - **Firmware effects**: washers with firmware `2.6.3` report `drain_time_s` rounded to
//!   10 s (a coarser timer; a clog still shows, in steps); air conditioners with firmware
//!   `4.2.1` do not send `indoor_coil_temp_c` (the sensor moved to a diagnostics message).
//!
//! Status messages are not part of a history.
//!
//! `docs/history-format.md` also describes how to train on your own data in this format.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;

use domain::{MessageKind, ProfileSet, Timestamp};

use crate::device::{Device, Raw, HOUR_MS};
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

/// How far [`write_history_with_progress`] has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryProgress {
    /// Simulated time written so far, ms from the start.
    pub simulated_ms: i64,
    /// Simulated time to write in all, ms.
    pub total_ms: i64,
    /// Lines written to `telemetry.jsonl` so far.
    pub messages: u64,
}

/// Simulated time per block of `telemetry.jsonl`: within a block, lines go device by
/// device. A constant, so the bytes do not depend on the number of threads.
const BLOCK_MS: i64 = 6 * HOUR_MS;
/// Most worker threads used.
const MAX_THREADS: usize = 16;

/// Simulates `config` for `duration_ms` from `config.start` and writes the history
/// files (see the [module documentation](self)) into `dir`, creating it if needed and
/// replacing files of the same names.
pub fn write_history(
    dir: &Path,
    config: FleetConfig,
    profiles: &ProfileSet,
    duration_ms: i64,
) -> Result<HistorySummary> {
    write_history_with_progress(dir, config, profiles, duration_ms, &mut |_| {})
}

/// [`write_history`], calling `progress` after every block of simulated time (six hours)
/// is written. Devices are simulated on all available cores, in contiguous shards; the
/// files do not depend on the number of cores.
pub fn write_history_with_progress(
    dir: &Path,
    config: FleetConfig,
    profiles: &ProfileSet,
    duration_ms: i64,
    progress: &mut dyn FnMut(HistoryProgress),
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

    // Block ends: every BLOCK_MS after the start, and the end.
    let mut block_ends = Vec::new();
    let mut t = start.millis();
    while t < end.millis() {
        t = t.saturating_add(BLOCK_MS).min(end.millis());
        block_ends.push(t);
    }

    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_THREADS)
        .min(fleet.len().max(1));
    let per_shard = fleet.len().div_ceil(threads).max(1);
    let mut telemetry = Writer::create(&dir.join("telemetry.jsonl"))?;
    let mut truths: Vec<TruthLine> = Vec::new();
    let total_ms = duration_ms;
    let start_ms = start.millis();

    std::thread::scope(|scope| -> Result<()> {
        let mut receivers = Vec::new();
        for (shard, devices) in fleet.devices_mut().chunks_mut(per_shard).enumerate() {
            let (tx, rx) = mpsc::sync_channel::<Block>(1);
            // Written buffers go back to the worker: reusing them saves page faults.
            let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
            let first_index = shard * per_shard;
            let ends = &block_ends;
            scope.spawn(move || {
                let mut scratch = Vec::new();
                let mut last_len = 1 << 20;
                for &until in ends {
                    let mut lines = free_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(last_len + last_len / 4));
                    lines.clear();
                    let block = simulate_block(devices, first_index, until, &mut scratch, lines);
                    last_len = block.as_ref().map_or(last_len, |b| b.lines.len());
                    let block = match block {
                        Ok(b) => b,
                        Err(e) => Block::failed(e),
                    };
                    // A closed channel means the writer gave up: stop quietly.
                    if tx.send(block).is_err() {
                        return;
                    }
                }
            });
            receivers.push((rx, free_tx));
        }
        for &until in &block_ends {
            for (rx, free_tx) in &receivers {
                let block = rx.recv().map_err(|_| {
                    Error::InvalidConfig("a history worker thread stopped early".into())
                })?;
                if let Some(e) = block.error {
                    return Err(e);
                }
                telemetry.write_bytes(&block.lines)?;
                summary.messages += block.telemetry + block.faults;
                summary.telemetry += block.telemetry;
                summary.faults += block.faults;
                truths.extend(block.truths);
                // The worker may have finished; then the buffer is simply dropped.
                let _ = free_tx.send(block.lines);
            }
            progress(HistoryProgress {
                simulated_ms: (until - start_ms + 1).min(total_ms),
                total_ms,
                messages: summary.messages,
            });
        }
        Ok(())
    })?;
    telemetry.finish()?;

    truths.sort_unstable_by_key(|l| (l.ts, l.device, l.order));
    let mut events = Writer::create(&dir.join("events.jsonl"))?;
    for line in &truths {
        events.write_bytes(&line.line)?;
        match line.event {
            GroundTruthKind::Failure => summary.failures += 1,
            GroundTruthKind::Repair => summary.repairs += 1,
        }
    }
    events.finish()?;
    Ok(summary)
}

/// One shard's output for one block of simulated time.
struct Block {
    /// `telemetry.jsonl` lines, device by device, each device's in time order.
    lines: Vec<u8>,
    telemetry: u64,
    faults: u64,
    truths: Vec<TruthLine>,
    error: Option<Error>,
}

impl Block {
    fn failed(error: Error) -> Self {
        Self {
            lines: Vec::new(),
            telemetry: 0,
            faults: 0,
            truths: Vec::new(),
            error: Some(error),
        }
    }
}

/// An `events.jsonl` line with its sort key.
struct TruthLine {
    ts: i64,
    device: usize,
    order: u64,
    event: GroundTruthKind,
    line: Vec<u8>,
}

/// Runs `devices` (fleet indices from `first_index`) up to `until` and formats what they
/// released.
fn simulate_block(
    devices: &mut [Device],
    first_index: usize,
    until: i64,
    scratch: &mut Vec<crate::device::Released>,
    lines: Vec<u8>,
) -> Result<Block> {
    let mut block = Block {
        lines,
        telemetry: 0,
        faults: 0,
        truths: Vec::new(),
        error: None,
    };
    for (offset, device) in devices.iter_mut().enumerate() {
        device.run_until(until);
        scratch.clear();
        device.core.release(until, scratch);
        let core = &device.core;
        for released in scratch.iter() {
            match &released.raw {
                Raw::Message { seq, body } => {
                    let (kind, mut payload) = core.payload(released.ts, *seq, body);
                    payload.device_id = Some(core.info.device_id.as_str());
                    payload.msg = Some(kind.as_str());
                    // devices.jsonl holds them once per device; replay adds them back.
                    (payload.batch, payload.region) = (None, None);
                    serde_json::to_writer(&mut block.lines, &payload)?;
                    block.lines.push(b'\n');
                    match kind {
                        MessageKind::Telemetry => block.telemetry += 1,
                        _ => block.faults += 1,
                    }
                }
                Raw::Truth {
                    event,
                    component,
                    mode,
                } => {
                    let truth = core.ground_truth(Timestamp(released.ts), *event, component, mode);
                    let mut line = serde_json::to_vec(&truth)?;
                    line.push(b'\n');
                    block.truths.push(TruthLine {
                        ts: released.ts,
                        device: first_index + offset,
                        order: released.order,
                        event: *event,
                        line,
                    });
                }
            }
        }
    }
    Ok(block)
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

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}
