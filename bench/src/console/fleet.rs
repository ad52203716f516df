//! The generated fleet of `bench console` and its hot store: every device registered
//! with one report, a year of telemetry at each kind's reporting rate and a fault every
//! two weeks for the devices the measured pages show, and dead letters.

use std::path::Path;

use domain::{
    DeviceId, DeviceInfo, FaultMessage, FaultState, Message, RejectReason, Rejection, Telemetry,
    Timestamp,
};
use store::hot::{HotStore, StoreItem};

use crate::kinds::Kinds;
use crate::Result;

/// Service regions.
pub(super) const REGIONS: [&str; 8] = [
    "north",
    "south",
    "east",
    "west",
    "central",
    "northeast",
    "southwest",
    "coast",
];

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = Timestamp::DAY_MS;

/// Messages per hot-store transaction.
const COMMIT: usize = 10_000;

/// How often a device of `device_type` reports, as the simulator's devices do
/// (simulators/src/history.rs): refrigerators and air conditioners (while on) every 15
/// minutes, water heaters hourly, washers and dishwashers once per program (about one
/// a day).
fn report_interval_ms(device_type: &str) -> i64 {
    match device_type {
        "refrigerator" | "air_conditioner" => 15 * MINUTE_MS,
        "water_heater" => HOUR_MS,
        "washer" | "dishwasher" => DAY_MS,
        _ => HOUR_MS,
    }
}

pub(super) struct Fleet {
    kinds: Kinds,
    pub(super) ids: Vec<DeviceId>,
    /// Devices the measured pages show (the first of the fleet, every kind): a year of
    /// telemetry and faults each, and tickets.
    pub(super) shown: usize,
}

/// The kinds' profiles, critical codes and diagnosis contexts, by device index.
impl std::ops::Deref for Fleet {
    type Target = Kinds;

    fn deref(&self) -> &Kinds {
        &self.kinds
    }
}

impl Fleet {
    pub(super) fn new(devices: usize, shown: usize) -> Result<Fleet> {
        let kinds = Kinds::builtin();
        Ok(Fleet {
            ids: kinds.ids(devices)?,
            kinds,
            shown: shown.min(devices),
        })
    }

    pub(super) fn region(&self, device: usize) -> &'static str {
        REGIONS[(device / 3) % REGIONS.len()]
    }

    pub(super) fn batch(&self, device: usize) -> String {
        format!(
            "B{}-{:02}",
            2024 + (device / 11) % 2,
            (device / 13) % 12 + 1
        )
    }

    /// Model, firmware, batch and region: three models per kind, four firmware
    /// versions, 24 batches, eight regions.
    pub(super) fn info(&self, device: usize) -> DeviceInfo {
        let p = self.profile(device);
        let kind = p.device_type();
        let prefix: String = kind
            .split('_')
            .filter_map(|w| w.chars().next())
            .collect::<String>()
            .to_uppercase();
        let n = self.kinds.profiles.len();
        DeviceInfo {
            device_type: kind.to_owned(),
            model: format!("{prefix}-{}", [300, 500, 700][(device / n) % 3]),
            fw: Some(["1.2.0", "1.3.1", "2.0.4", "2.1.0"][(device / 7) % 4].to_owned()),
            batch: Some(self.batch(device)),
            region: Some(self.region(device).to_owned()),
        }
    }

    /// What the ticket service is told about device `device`, with the facts the
    /// scoring stage reads from the registry.
    pub(super) fn context(&self, device: usize) -> api::DiagnosisContext {
        api::DiagnosisContext {
            profile: Some(std::sync::Arc::clone(self.profile(device))),
            recent_faults: Vec::new(),
            device: Some(self.info(device)),
        }
    }

    /// Device `i`'s report `seq` at `ts`: each channel at mid-range plus `swing` of its
    /// physical range.
    fn report(&self, i: usize, seq: u64, ts: i64, swing: f64) -> Message {
        Message::Telemetry(Telemetry {
            device_id: self.ids[i].clone(),
            ts: Timestamp(ts),
            seq,
            device: self.info(i),
            readings: self.readings(i, swing),
        })
    }

    /// Device `i`'s fault `code` raised at `ts`.
    pub(super) fn fault(&self, i: usize, seq: u64, ts: i64, code: &str) -> Message {
        Message::Fault(FaultMessage {
            device_id: self.ids[i].clone(),
            ts: Timestamp(ts),
            seq,
            device: self.info(i),
            code: code.to_owned(),
            state: FaultState::Raised,
        })
    }
}

/// What [`write_hot_store`] wrote.
pub(super) struct HotCounts {
    pub(super) telemetry: u64,
    pub(super) faults: u64,
    pub(super) dead_letters: u64,
}

/// Writes hot.db: one report in the last day for every device not shown; for the
/// shown devices a year (`start` to `end`) of reports at their kind's rate (a daily
/// wave and a slow drift around mid-range) and a fault every two weeks; and
/// `dead_letters` rejected messages over the year.
pub(super) fn write_hot_store(
    fleet: &Fleet,
    dir: &Path,
    start: Timestamp,
    end: Timestamp,
    dead_letters: usize,
) -> Result<HotCounts> {
    let mut store = HotStore::open(&dir.join("hot.db"), store::Synchronous::Normal)?;
    let received = end;
    let mut counts = HotCounts {
        telemetry: 0,
        faults: 0,
        dead_letters: 0,
    };
    let mut commit = |messages: &mut Vec<Message>| -> Result<()> {
        let items: Vec<StoreItem<'_>> = messages
            .iter()
            .map(|m| StoreItem::Message {
                message: m,
                received_at: received,
            })
            .collect();
        store.commit(&items)?;
        messages.clear();
        Ok(())
    };
    let mut batch = Vec::with_capacity(COMMIT);
    for i in fleet.shown..fleet.ids.len() {
        let ts = end.millis() - 1 - (i as i64 * 7_919) % DAY_MS;
        batch.push(fleet.report(i, 1, ts, 0.0));
        counts.telemetry += 1;
        if batch.len() == COMMIT {
            commit(&mut batch)?;
        }
    }
    for i in 0..fleet.shown {
        let p = fleet.profile(i);
        let step = report_interval_ms(p.device_type());
        // Each device at its own phase.
        let mut ts = start.millis() + (i as i64 * 104_729) % step;
        let mut seq = 1u64;
        while ts < end.millis() {
            let day = (ts - start.millis()) as f64 / DAY_MS as f64;
            let wave = ((ts % DAY_MS) as f64 / DAY_MS as f64 * std::f64::consts::TAU).sin();
            batch.push(fleet.report(i, seq, ts, wave / 10.0 + day / 365.0 / 20.0));
            counts.telemetry += 1;
            seq += 1;
            ts += step;
            if batch.len() == COMMIT {
                commit(&mut batch)?;
            }
        }
        let codes = p.faults();
        if !codes.is_empty() {
            let mut k = 0usize;
            let mut ts = start.millis() + 3 * DAY_MS + (i as i64 * 3_571) % DAY_MS;
            while ts < end.millis() {
                let code = &codes[(i + k) % codes.len()].code;
                batch.push(fleet.fault(i, 100_000_000 + k as u64, ts, code));
                counts.faults += 1;
                k += 1;
                ts += 14 * DAY_MS;
            }
        }
    }
    commit(&mut batch)?;
    write_dead_letters(&mut store, fleet, start, end, dead_letters)?;
    counts.dead_letters = dead_letters as u64;
    Ok(counts)
}

/// `n` rejected messages spread over the year, with the reasons devices in the field
/// get most.
fn write_dead_letters(
    store: &mut HotStore,
    fleet: &Fleet,
    start: Timestamp,
    end: Timestamp,
    n: usize,
) -> Result<()> {
    let reasons = [
        (
            RejectReason::MalformedJson,
            "expected value at line 1 column 1",
        ),
        (RejectReason::OutOfRange, "drain_time_s 9000 above 3600"),
        (RejectReason::MissingField, "missing field `ts`"),
        (
            RejectReason::UnknownDeviceType,
            "no profile for type \"dryer\"",
        ),
        (
            RejectReason::InvalidTimestamp,
            "ts \"yesterday\" is not RFC 3339",
        ),
    ];
    let span = (end.millis() - start.millis()).max(1);
    for chunk_start in (0..n).step_by(COMMIT) {
        let rows: Vec<(String, Vec<u8>, Rejection, Timestamp)> = (chunk_start
            ..(chunk_start + COMMIT).min(n))
            .map(|k| {
                let device = k * 37 % fleet.ids.len().max(1);
                let (reason, detail) = reasons[k % reasons.len()];
                let id = fleet.ids.get(device).cloned();
                (
                    format!(
                        "fixahead/v1/{}/telemetry",
                        id.as_ref().map_or("unknown", |d| d.as_str())
                    ),
                    format!("{{\"seq\": {k}, \"broken\": true").into_bytes(),
                    Rejection {
                        reason,
                        detail: detail.to_owned(),
                        device_id: id,
                    },
                    Timestamp(start.millis() + (k as i64 * 7_777_777) % span),
                )
            })
            .collect();
        let items: Vec<StoreItem<'_>> = rows
            .iter()
            .map(|(topic, payload, rejection, at)| StoreItem::DeadLetter {
                topic,
                payload,
                rejection,
                received_at: *at,
            })
            .collect();
        store.commit(&items)?;
    }
    Ok(())
}
