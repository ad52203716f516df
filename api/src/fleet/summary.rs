//! The fleet summary behind remote diagnosis: normal ranges of every channel per
//! (device type, model) and how comparable devices (same type, model and batch) fared,
//! pre-aggregated into `tickets.db` so a diagnosis reads a few indexed rows instead of
//! scanning the fleet.
//!
//! [`FleetSummary::refresh`] rebuilds both tables in one transaction (a periodic task
//! of the binary, `[diagnosis] refresh_interval`): it walks the device registry in
//! pages (O(devices) index lookups of each device's last few telemetry messages in
//! `hot.db`) and every ticket once (O(tickets) in `tickets.db`). Readers see the
//! previous summary until the new one commits.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use domain::Timestamp;
use store::hot::StoreReader;
use store::tickets::ComponentHistory;
pub use store::tickets::{Cohort, NormalRange};
use store::tickets::{CohortRow, RangeRow, TicketDb};

use crate::Result;

/// Telemetry messages read back per device for its recent channel values.
const RECENT_MESSAGES: usize = 10;
/// Devices read per page of the registry.
const PAGE: usize = 1000;

/// (device type, model, batch key).
type CohortKey = (String, String, String);
/// Devices, devices with tickets, and per component what their tickets came to.
type CohortTally = (u64, u64, BTreeMap<String, ComponentHistory>);

/// The pre-aggregated fleet summary in `tickets.db`. Cheap to clone.
#[derive(Clone)]
pub struct FleetSummary {
    /// Diagnoses read on its reader; a refresh scans the tickets on a connection of
    /// its own and writes on its writer, so reads never wait for it (WAL: they see the
    /// previous summary until it commits).
    db: TicketDb,
}

/// The value at quantile `q` of sorted `v`, interpolated between the two nearest
/// ranks (as numpy's default does).
fn quantile(v: &[f64], q: f64) -> f64 {
    let Some(last) = v.len().checked_sub(1) else {
        return f64::NAN;
    };
    let pos = last as f64 * q.clamp(0.0, 1.0);
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(last);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// The key of a batch in a cohort tally (`""`: no batch reported).
fn batch_key(batch: Option<&str>) -> &str {
    batch.unwrap_or("")
}

impl FleetSummary {
    /// Opens the summary tables in the ticket store at `path` (creating them).
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            db: TicketDb::open(path)?,
        })
    }

    /// Rebuilds the summary from the hot store and the tickets; returns the devices seen.
    pub fn refresh(&self, store: &StoreReader, now: Timestamp) -> Result<u64> {
        // (type, model, channel) -> latest values; device -> (type, model, batch).
        let mut values: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
        let mut cohort_of: HashMap<String, (String, String, String)> = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list_devices(None, after.as_deref(), PAGE)?;
            for d in &page {
                for (channel, (value, _)) in store.latest_readings(&d.device_id, RECENT_MESSAGES)? {
                    values
                        .entry((
                            d.device.device_type.clone(),
                            d.device.model.clone(),
                            channel,
                        ))
                        .or_default()
                        .push(value);
                }
                cohort_of.insert(
                    d.device_id.clone(),
                    (
                        d.device.device_type.clone(),
                        d.device.model.clone(),
                        batch_key(d.device.batch.as_deref()).to_owned(),
                    ),
                );
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.device_id.clone()),
                _ => break,
            }
        }
        let mut cohorts: BTreeMap<CohortKey, CohortTally> = BTreeMap::new();
        for key in cohort_of.values() {
            cohorts.entry(key.clone()).or_default().0 += 1;
        }
        let reader = self.db.reader()?;
        let mut last_device: Option<String> = None;
        reader
            .tables()
            .for_each_ticket_tally(|device, component, active, outcome| {
                let Some(key) = cohort_of.get(device) else {
                    return;
                };
                let entry = cohorts.entry(key.clone()).or_default();
                if last_device.as_deref() != Some(device) {
                    entry.1 += 1;
                    last_device = Some(device.to_owned());
                }
                let h = entry
                    .2
                    .entry(component.to_owned())
                    .or_insert_with(|| ComponentHistory {
                        component: component.to_owned(),
                        ..ComponentHistory::default()
                    });
                h.tickets += 1;
                if active {
                    h.active += 1;
                }
                match outcome {
                    Some("confirmed_failure") => h.confirmed_failures += 1,
                    Some("no_fault_found") => h.no_fault_found += 1,
                    _ => {}
                }
            })?;
        let ranges: Vec<RangeRow<'_>> = values
            .iter_mut()
            .map(|((t, m, c), v)| {
                v.sort_by(f64::total_cmp);
                RangeRow {
                    device_type: t,
                    model: m,
                    channel: c,
                    range: NormalRange {
                        p5: quantile(v, 0.05),
                        p50: quantile(v, 0.5),
                        p95: quantile(v, 0.95),
                        devices: v.len() as u64,
                        computed_at: now,
                    },
                }
            })
            .collect();
        let histories: Vec<(&CohortKey, u64, u64, Vec<ComponentHistory>)> = cohorts
            .iter()
            .map(|(key, (devices, with_tickets, components))| {
                let components = components.values().cloned().collect();
                (key, *devices, *with_tickets, components)
            })
            .collect();
        let cohort_rows: Vec<CohortRow<'_>> = histories
            .iter()
            .map(|((t, m, b), devices, with_tickets, components)| CohortRow {
                device_type: t,
                model: m,
                batch: (!b.is_empty()).then_some(b.as_str()),
                devices: *devices,
                devices_with_tickets: *with_tickets,
                components,
            })
            .collect();
        self.db
            .write(|tx| tx.replace_fleet_summary(&ranges, &cohort_rows, now))?;
        Ok(cohort_of.len() as u64)
    }

    /// Normal ranges of every channel of a (type, model), by channel.
    pub fn ranges(&self, device_type: &str, model: &str) -> Result<BTreeMap<String, NormalRange>> {
        Ok(self.db.read(|t| t.normal_ranges(device_type, model))?)
    }

    /// The cohort of a (type, model, batch), if the summary has it.
    pub fn cohort(
        &self,
        device_type: &str,
        model: &str,
        batch: Option<&str>,
    ) -> Result<Option<Cohort>> {
        Ok(self.db.read(|t| t.cohort(device_type, model, batch))?)
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert!((quantile(&v, 0.95) - 4.8).abs() < 1e-9);
        assert_eq!(quantile(&[7.0], 0.95), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
