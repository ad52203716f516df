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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use domain::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use store::hot::StoreReader;

use crate::Result;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS fleet_ranges (
    device_type TEXT NOT NULL,
    model       TEXT NOT NULL,
    channel     TEXT NOT NULL,
    devices     INTEGER NOT NULL,
    p5          REAL NOT NULL,
    p50         REAL NOT NULL,
    p95         REAL NOT NULL,
    computed_at INTEGER NOT NULL,
    PRIMARY KEY (device_type, model, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_cohorts (
    device_type TEXT NOT NULL,
    model       TEXT NOT NULL,
    batch       TEXT NOT NULL,
    devices     INTEGER NOT NULL,
    devices_with_tickets INTEGER NOT NULL,
    components  TEXT NOT NULL,
    computed_at INTEGER NOT NULL,
    PRIMARY KEY (device_type, model, batch)
) WITHOUT ROWID;
"#;

/// Telemetry messages read back per device for its recent channel values.
const RECENT_MESSAGES: usize = 10;
/// Devices read per page of the registry.
const PAGE: usize = 1000;

/// A channel's normal range in a (type, model): percentiles of each device's latest value.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NormalRange {
    /// 5th percentile.
    pub p5: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Devices that reported the channel.
    pub devices: u64,
    /// When the summary was computed.
    #[schema(value_type = String)]
    pub computed_at: Timestamp,
}

/// How one component fared across a cohort of comparable devices.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ComponentHistory {
    /// The component.
    pub component: String,
    /// Tickets ever opened for it in the cohort.
    pub tickets: u64,
    /// Tickets active now.
    pub active: u64,
    /// Outcomes `confirmed_failure`.
    pub confirmed_failures: u64,
    /// Outcomes `no_fault_found`.
    pub no_fault_found: u64,
}

/// Comparable devices: same type, model and production batch (devices that report no
/// batch form one cohort per model).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Cohort {
    /// Product model.
    pub model: String,
    /// Production batch, `null` when the devices report none (then: the whole model).
    pub batch: Option<String>,
    /// Devices in the cohort (this one included).
    pub devices: u64,
    /// Devices that had at least one ticket.
    pub devices_with_tickets: u64,
    /// Per component, what their tickets came to.
    pub components: Vec<ComponentHistory>,
    /// When the summary was computed.
    #[schema(value_type = String)]
    pub computed_at: Timestamp,
}

/// (device type, model, batch key).
type CohortKey = (String, String, String);
/// Devices, devices with tickets, and per component what their tickets came to.
type CohortTally = (u64, u64, BTreeMap<String, ComponentHistory>);

/// The pre-aggregated fleet summary in `tickets.db`. Cheap to clone.
#[derive(Clone)]
pub struct FleetSummary {
    /// For the diagnoses' reads; a refresh writes on a connection of its own, so reads
    /// never wait for it (WAL: they see the previous summary until it commits).
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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

/// The key of a batch in `fleet_cohorts` (`""`: no batch reported).
fn batch_key(batch: Option<&str>) -> &str {
    batch.unwrap_or("")
}

impl FleetSummary {
    /// Opens the summary tables in the ticket store at `path` (creating them).
    pub fn open(path: &Path) -> Result<Self> {
        let conn = crate::tickets::store::open_connection(path, true)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
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
                        .entry((d.device_type.clone(), d.model.clone(), channel))
                        .or_default()
                        .push(value);
                }
                cohort_of.insert(
                    d.device_id.clone(),
                    (
                        d.device_type.clone(),
                        d.model.clone(),
                        batch_key(d.batch.as_deref()).to_owned(),
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
        let mut conn = crate::tickets::store::open_connection(&self.path, false)?;
        {
            let mut st = conn.prepare(
                "SELECT device_id, component, status, json_extract(outcome, '$.kind') FROM tickets ORDER BY device_id",
            )?;
            let mut rows = st.query([])?;
            let mut last_device: Option<String> = None;
            while let Some(r) = rows.next()? {
                let device: String = r.get(0)?;
                let Some(key) = cohort_of.get(&device) else {
                    continue;
                };
                let entry = cohorts.entry(key.clone()).or_default();
                if last_device.as_deref() != Some(device.as_str()) {
                    entry.1 += 1;
                    last_device = Some(device);
                }
                let component: String = r.get(1)?;
                let status: String = r.get(2)?;
                let outcome: Option<String> = r.get(3)?;
                let h = entry
                    .2
                    .entry(component.clone())
                    .or_insert_with(|| ComponentHistory {
                        component,
                        ..ComponentHistory::default()
                    });
                h.tickets += 1;
                if matches!(
                    status.as_str(),
                    "open" | "acknowledged" | "scheduled" | "in_progress"
                ) {
                    h.active += 1;
                }
                match outcome.as_deref() {
                    Some("confirmed_failure") => h.confirmed_failures += 1,
                    Some("no_fault_found") => h.no_fault_found += 1,
                    _ => {}
                }
            }
        }
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM fleet_ranges", [])?;
        tx.execute("DELETE FROM fleet_cohorts", [])?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO fleet_ranges (device_type, model, channel, devices, p5, p50, p95, computed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for ((t, m, c), mut v) in values {
                v.sort_by(f64::total_cmp);
                ins.execute(params![
                    t,
                    m,
                    c,
                    v.len() as i64,
                    quantile(&v, 0.05),
                    quantile(&v, 0.5),
                    quantile(&v, 0.95),
                    now.millis()
                ])?;
            }
            let mut ins = tx.prepare(
                "INSERT INTO fleet_cohorts (device_type, model, batch, devices, devices_with_tickets, components, computed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for ((t, m, b), (devices, with_tickets, components)) in cohorts {
                let components: Vec<ComponentHistory> = components.into_values().collect();
                ins.execute(params![
                    t,
                    m,
                    b,
                    devices as i64,
                    with_tickets as i64,
                    serde_json::to_string(&components)?,
                    now.millis()
                ])?;
            }
        }
        tx.commit()?;
        Ok(cohort_of.len() as u64)
    }

    /// Normal ranges of every channel of a (type, model), by channel.
    pub fn ranges(&self, device_type: &str, model: &str) -> Result<BTreeMap<String, NormalRange>> {
        let conn = lock(&self.conn);
        let mut st = conn.prepare_cached(
            "SELECT channel, p5, p50, p95, devices, computed_at FROM fleet_ranges
             WHERE device_type = ?1 AND model = ?2",
        )?;
        let rows = st.query_map(params![device_type, model], |r| {
            Ok((
                r.get::<_, String>(0)?,
                NormalRange {
                    p5: r.get(1)?,
                    p50: r.get(2)?,
                    p95: r.get(3)?,
                    devices: r.get::<_, i64>(4)?.max(0) as u64,
                    computed_at: Timestamp(r.get(5)?),
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The cohort of a (type, model, batch), if the summary has it.
    pub fn cohort(
        &self,
        device_type: &str,
        model: &str,
        batch: Option<&str>,
    ) -> Result<Option<Cohort>> {
        let conn = lock(&self.conn);
        let row = conn
            .prepare_cached(
                "SELECT devices, devices_with_tickets, components, computed_at FROM fleet_cohorts
                 WHERE device_type = ?1 AND model = ?2 AND batch = ?3",
            )?
            .query_row(params![device_type, model, batch_key(batch)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()?;
        row.map(|(devices, with_tickets, components, at)| {
            Ok(Cohort {
                model: model.to_owned(),
                batch: batch.map(str::to_owned),
                devices: devices.max(0) as u64,
                devices_with_tickets: with_tickets.max(0) as u64,
                components: serde_json::from_str(&components)?,
                computed_at: Timestamp(at),
            })
        })
        .transpose()
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
