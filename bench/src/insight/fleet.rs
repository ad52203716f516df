//! The generated fleet of `bench insight` and its hot store: one report per device,
//! and two weeks of telemetry for the devices whose diagnosis is timed.

use std::path::Path;
use std::sync::Arc;

use domain::{DeviceId, Message, Telemetry, Timestamp};

use super::REGIONS;
use crate::kinds::Kinds;
use crate::Result;

/// Devices (the first few, one of each kind) given two weeks of telemetry every 15
/// minutes, for the diagnosis endpoint.
const DIAGNOSED_DEVICES: usize = 5;
/// Telemetry interval of those devices.
const DIAGNOSED_INTERVAL_MS: i64 = 15 * 60_000;

pub(super) struct Fleet {
    kinds: Kinds,
    pub(super) ids: Vec<DeviceId>,
}

/// The kinds' profiles, critical codes and diagnosis contexts, by device index.
impl std::ops::Deref for Fleet {
    type Target = Kinds;

    fn deref(&self) -> &Kinds {
        &self.kinds
    }
}

impl Fleet {
    pub(super) fn new(devices: usize) -> Result<Fleet> {
        let kinds = Kinds::builtin();
        Ok(Fleet {
            ids: kinds.ids(devices)?,
            kinds,
        })
    }

    /// What the ticket service is told about device `device`, with the facts the
    /// scoring stage reads from the registry (its report's).
    pub(super) fn context(&self, device: usize) -> api::DiagnosisContext {
        api::DiagnosisContext {
            profile: Some(Arc::clone(self.profile(device))),
            recent_faults: Vec::new(),
            device: match self.report(device, 0, 0, 0.0) {
                Message::Telemetry(t) => Some(t.device),
                _ => None,
            },
        }
    }

    /// Device `i`'s report `seq` at `ts`, each channel at mid-range plus `swing` of its
    /// physical range.
    fn report(&self, i: usize, seq: u64, ts: i64, swing: f64) -> Message {
        let p = self.profile(i);
        Message::Telemetry(Telemetry {
            device_id: self.ids[i].clone(),
            ts: Timestamp(ts),
            seq,
            device: domain::DeviceInfo {
                device_type: p.device_type().to_owned(),
                model: "BENCH-1".into(),
                fw: Some("1.0.0".into()),
                batch: Some(format!("B{:02}", i % 20)),
                region: Some(format!("region-{}", i as u32 % REGIONS)),
            },
            readings: self.readings(i, swing),
        })
    }
}

/// One telemetry report per device (mid-range readings), so hot.db knows the fleet,
/// and two weeks of readings every 15 minutes before `start` for the diagnosed devices
/// (sequence numbers after that report; a daily wave around mid-range).
pub(super) fn write_devices(fleet: &Fleet, dir: &Path, start: Timestamp) -> Result<()> {
    let mut store = store::hot::HotStore::open(&dir.join("hot.db"), store::Synchronous::Normal)?;
    let mut commit = |messages: Vec<Message>| -> Result<()> {
        let items: Vec<store::hot::StoreItem<'_>> = messages
            .iter()
            .map(|m| store::hot::StoreItem::Message {
                message: m,
                received_at: start,
            })
            .collect();
        store.commit(&items)?;
        Ok(())
    };
    for chunk in (0..fleet.ids.len()).collect::<Vec<_>>().chunks(5_000) {
        commit(
            chunk
                .iter()
                .map(|&i| fleet.report(i, 1, start.millis() + i as i64, 0.0))
                .collect(),
        )?;
    }
    let steps = 14 * Timestamp::DAY_MS / DIAGNOSED_INTERVAL_MS;
    for i in 0..DIAGNOSED_DEVICES.min(fleet.ids.len()) {
        commit(
            (0..steps)
                .map(|k| {
                    let wave = ((k % 96) as f64 / 96.0 * std::f64::consts::TAU).sin();
                    let ts = start.millis() - (steps - k) * DIAGNOSED_INTERVAL_MS;
                    fleet.report(i, 2 + k as u64, ts, wave / 8.0)
                })
                .collect(),
        )?;
    }
    Ok(())
}
