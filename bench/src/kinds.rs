//! The device kinds a generated fleet cycles through (`bench insight`, `bench
//! console`): the built-in profiles, device `i` of kind `i % kinds` and named
//! `{kind}-{i:06}`, with the critical fault codes that open reactive tickets and
//! mid-range readings.

use std::sync::Arc;

use domain::{DeviceId, Profile, ProfileSet};
use server::Context as _;

use crate::Result;

pub(crate) struct Kinds {
    pub(crate) profiles: Vec<Arc<Profile>>,
    /// Per profile: its critical fault codes linked to a component, with the component.
    critical: Vec<Vec<(String, String)>>,
}

impl Kinds {
    /// The built-in profiles.
    pub(crate) fn builtin() -> Kinds {
        let profiles: Vec<Arc<Profile>> = ProfileSet::builtin().iter().cloned().collect();
        let critical = profiles
            .iter()
            .map(|p| {
                p.faults()
                    .iter()
                    .filter(|f| f.severity == domain::Severity::Critical)
                    .filter_map(|f| Some((f.code.clone(), f.component.clone()?)))
                    .collect()
            })
            .collect();
        Kinds { profiles, critical }
    }

    /// The ids of a fleet of `devices`.
    pub(crate) fn ids(&self, devices: usize) -> Result<Vec<DeviceId>> {
        (0..devices)
            .map(|i| {
                let kind = self.profile(i).device_type();
                Ok(DeviceId::parse(&format!("{kind}-{i:06}")).context("device id")?)
            })
            .collect()
    }

    /// Device `device`'s profile.
    pub(crate) fn profile(&self, device: usize) -> &Arc<Profile> {
        &self.profiles[device % self.profiles.len()]
    }

    /// The critical fault codes of the device's kind, with their components.
    pub(crate) fn critical(&self, device: usize) -> &[(String, String)] {
        &self.critical[device % self.profiles.len()]
    }

    /// Readings of every channel of device `device`'s kind: mid-range plus `swing` of
    /// the channel's physical range.
    pub(crate) fn readings(&self, device: usize, swing: f64) -> Vec<(String, f64)> {
        self.profile(device)
            .channels()
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    (c.min + c.max) / 2.0 + swing * (c.max - c.min),
                )
            })
            .collect()
    }
}
