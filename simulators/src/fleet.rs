//! The fleet: devices of every configured kind, advanced together in event time.

use domain::{ProfileSet, Timestamp};

use crate::device::{Device, DeviceCore, KindSpec, Released};
use crate::{
    air_conditioner, dishwasher, refrigerator, washer, water_heater, DeviceInfo, Error,
    FleetConfig, Result, SimEvent,
};

/// Every kind the simulator can simulate. A new kind is a module with a `SPEC` and an
/// entry here.
pub(crate) static KINDS: &[&KindSpec] = &[
    &washer::SPEC,
    &dishwasher::SPEC,
    &refrigerator::SPEC,
    &air_conditioner::SPEC,
    &water_heater::SPEC,
];

/// Names of the kinds the simulator can simulate.
pub fn known_kinds() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

/// A deterministic fleet of simulated appliances.
///
/// Every device has its own random stream derived from the seed and its index, and
/// schedules its own events, so the output depends only on the config and seed, not on
/// how time is advanced (one call for 180 days or one per 100 ms give the same events).
pub struct Fleet {
    config: FleetConfig,
    devices: Vec<Device>,
    now: Timestamp,
    buffer: Vec<Released>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("config", &self.config)
            .field("devices", &self.devices.len())
            .field("now", &self.now)
            .finish()
    }
}

impl Fleet {
    /// Builds the fleet. Fails on an invalid config, an unknown kind, or a profile that
    /// lacks a channel, component or fault code the simulator emits (so every message
    /// the fleet produces is valid under `profiles`).
    pub fn new(config: FleetConfig, profiles: &ProfileSet) -> Result<Fleet> {
        config.validate()?;
        let mut kinds = Vec::with_capacity(config.kinds.len());
        for name in &config.kinds {
            let spec = KINDS
                .iter()
                .find(|k| k.name == name.as_str())
                .ok_or_else(|| Error::UnknownKind {
                    kind: name.clone(),
                    known: known_kinds().join(", "),
                })?;
            kinds.push((*spec, channel_ranges(spec, profiles)?));
        }
        let mut devices = Vec::with_capacity(config.devices);
        for index in 0..config.devices {
            let (spec, ranges) = &kinds[index % kinds.len()];
            let core = DeviceCore::new(index, spec, ranges.clone(), &config)?;
            devices.push(Device::new(core, &config));
        }
        if let Some(defect) = &config.defective_batch {
            let batches = distinct_batches(&devices);
            if !batches.contains(&defect.batch) {
                return Err(Error::InvalidConfig(format!(
                    "defective batch {:?} is not in the fleet; its batches are: {}",
                    defect.batch,
                    batches.join(", ")
                )));
            }
            if let Some(component) = &defect.component {
                let known: Vec<&str> = kinds
                    .iter()
                    .flat_map(|(spec, _)| spec.components.iter().map(|c| c.name))
                    .collect();
                if !known.contains(&component.as_str()) {
                    return Err(Error::InvalidConfig(format!(
                        "defective batch component {component:?} is not a component of the \
                         simulated kinds; they have: {}",
                        known.join(", ")
                    )));
                }
            }
        }
        // Nothing happens before the start, so "now" begins just before it.
        let now = Timestamp(config.start.millis() - 1);
        Ok(Fleet {
            config,
            devices,
            now,
            buffer: Vec::new(),
        })
    }

    /// Advances simulated time to `until` (inclusive) and returns everything that
    /// happened since the last call, in event-time order (ties: device order, then the
    /// device's own order). Per device, message `seq` increases by one from 1.
    pub fn advance(&mut self, until: Timestamp) -> Vec<SimEvent> {
        let raw = self.advance_raw(until);
        raw.iter()
            .map(|(index, r)| self.devices[*index].core.to_event(r))
            .collect()
    }

    /// [`Fleet::advance`] in compact form: (device index, event), in the same order.
    pub(crate) fn advance_raw(&mut self, until: Timestamp) -> Vec<(usize, Released)> {
        if until <= self.now {
            return Vec::new();
        }
        self.now = until;
        let mut out = Vec::new();
        for (index, device) in self.devices.iter_mut().enumerate() {
            device.run_until(until.millis());
            device.core.release(until.millis(), &mut self.buffer);
            out.extend(self.buffer.drain(..).map(|r| (index, r)));
        }
        out.sort_unstable_by_key(|(index, r)| (r.ts, *index, r.order));
        out
    }

    /// The simulated time up to which events have been returned.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The config the fleet was built from.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the fleet has no devices (never true for a fleet built by [`Fleet::new`]).
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The distinct production batches of the fleet's devices, sorted.
    pub fn batches(&self) -> Vec<String> {
        distinct_batches(&self.devices)
    }

    /// What a self-test of device number `index` finds now (at [`Fleet::now`]), per
    /// component; `None` for an index past the fleet.
    pub fn self_test(&self, index: usize) -> Option<Vec<crate::ComponentCheck>> {
        self.devices
            .get(index)
            .map(|d| d.core.self_test(self.now.millis()))
    }

    /// The devices, for the history writer's shards.
    pub(crate) fn devices_mut(&mut self) -> &mut [Device] {
        &mut self.devices
    }

    /// Registry entries of all devices, in device order.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.devices.iter().map(|d| d.core.info.clone()).collect()
    }
}

fn distinct_batches(devices: &[Device]) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> =
        devices.iter().map(|d| d.core.info.batch.as_str()).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// The profile's range for each of the kind's channels, checking that the profile knows
/// every channel, component and fault code the kind emits.
fn channel_ranges(spec: &KindSpec, profiles: &ProfileSet) -> Result<Vec<(f64, f64)>> {
    let profile = profiles
        .get(spec.name)
        .ok_or_else(|| Error::MissingProfile(spec.name.to_owned()))?;
    let missing = |what: &'static str, name: &str| Error::ProfileMismatch {
        kind: spec.name.to_owned(),
        what,
        name: name.to_owned(),
    };
    for c in spec.components {
        if profile.component(c.name).is_none() {
            return Err(missing("component", c.name));
        }
    }
    for code in spec.fault_codes {
        if profile.fault(code).is_none() {
            return Err(missing("fault code", code));
        }
    }
    spec.channels
        .iter()
        .map(|name| {
            let i = profile
                .channel_index(name)
                .ok_or_else(|| missing("channel", name))?;
            let ch = &profile.channels()[i];
            Ok((ch.min, ch.max))
        })
        .collect()
}
