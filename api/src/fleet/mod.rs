//! Fleet analytics for planners (docs/fleet.md): statistics per group of devices,
//! batch alarms and the parts forecast; and [`FleetSummary`], the normal ranges and
//! comparable devices behind remote diagnosis (`summary`).
//!
//! Everything is answered from a [`FleetSnapshot`]: the device registry (hot store),
//! the current risk per (device, component) and every ticket with its outcome (ticket
//! store), loaded into compact in-memory rows with interned names. Loading reads each
//! table once (O(devices + risk rows + tickets)); [`Fleet::refresh`] does it, from the
//! periodic task of `fixahead run` every `[fleet] refresh_interval`, so requests never
//! pay for it. A request is one pass over those rows (O(devices + risk rows +
//! tickets), a few milliseconds for 100,000 devices) plus sorting its groups, and
//! never touches SQLite. Answers are as of the snapshot (`as_of` in every response).
//!
//! Definitions (also in docs/fleet.md):
//! * a device's **reporting span** is `[first_seen, last_seen]` from the registry
//!   (wall-clock receive times, the clock tickets use too); its **device-months** in a
//!   period are the overlap of that span with the period, in months of 30.4375 days;
//! * **open predictions** are active proactive tickets (open, acknowledged, scheduled,
//!   in progress): each flag opens or updates one, and a dismissed one is a prediction
//!   a planner rejected;
//! * a **confirmed failure** is a ticket whose outcome is `confirmed_failure`, at its
//!   `failed_at` (the recording time when not given), of the outcome's component (the
//!   ticket's when not given).

pub mod alarms;
pub mod stats;
mod summary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use domain::{ProfileSet, Timestamp};
use serde::{Deserialize, Serialize};
use store::hot::StoreReader;
use store::tickets::{Tables, TicketReader};

use crate::tickets::{ConfigDuration, TicketService};
use crate::{Error, Result};

pub use alarms::{AlarmRecord, DetectionReport};
pub use summary::{Cohort, FleetSummary, NormalRange};

/// A month, for device-months: 365.25 / 12 days.
pub const MONTH_MS: f64 = 30.4375 * 86_400_000.0;
const DAY_MS: f64 = 86_400_000.0;

/// `[fleet]`: fleet analytics and batch alarms (docs/configuration.md).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSettings {
    /// How often `fixahead run` reloads the snapshot the fleet endpoints answer from.
    pub refresh_interval: ConfigDuration,
    /// How often `fixahead run` runs the batch-alarm detector.
    pub alarm_interval: ConfigDuration,
    /// The detector looks at confirmed failures and exposure within this window
    /// before now.
    pub alarm_window: ConfigDuration,
    /// False discovery rate (Benjamini–Hochberg) over all tests of one run.
    pub alarm_fdr: f64,
    /// A group needs at least this many failures (or flagged devices) to alarm.
    pub alarm_min_count: u64,
    /// ... and a rate (or flagged share) at least this many times the rest of its
    /// model's.
    pub alarm_min_ratio: f64,
    /// An active alarm is cleared when its unadjusted p-value rises above this.
    pub alarm_clear_p: f64,
    /// The models' label horizon: a risk is P(failure within this).
    pub risk_horizon: ConfigDuration,
    /// The parts forecast's "recent confirmed failures" look back this far.
    pub parts_lookback: ConfigDuration,
}

impl Default for FleetSettings {
    fn default() -> Self {
        Self {
            refresh_interval: ConfigDuration::from_minutes(1),
            alarm_interval: ConfigDuration::from_hours(1),
            alarm_window: ConfigDuration::from_hours(365 * 24),
            alarm_fdr: 0.0001,
            alarm_min_count: 5,
            alarm_min_ratio: 2.0,
            alarm_clear_p: 0.05,
            risk_horizon: ConfigDuration::from_hours(14 * 24),
            parts_lookback: ConfigDuration::from_hours(90 * 24),
        }
    }
}

impl FleetSettings {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("[fleet] {m}")));
        for (name, d) in [
            ("refresh_interval", self.refresh_interval),
            ("alarm_interval", self.alarm_interval),
            ("alarm_window", self.alarm_window),
            ("risk_horizon", self.risk_horizon),
            ("parts_lookback", self.parts_lookback),
        ] {
            if d.millis() <= 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if !(self.alarm_fdr > 0.0 && self.alarm_fdr < 1.0) {
            return bad(format!(
                "alarm_fdr must be within (0, 1), got {}",
                self.alarm_fdr
            ));
        }
        if !(self.alarm_clear_p > 0.0 && self.alarm_clear_p <= 1.0) {
            return bad(format!(
                "alarm_clear_p must be within (0, 1], got {}",
                self.alarm_clear_p
            ));
        }
        if !(self.alarm_min_ratio.is_finite() && self.alarm_min_ratio >= 1.0) {
            return bad(format!(
                "alarm_min_ratio must be a number of at least 1, got {}",
                self.alarm_min_ratio
            ));
        }
        if self.alarm_min_count == 0 {
            return bad("alarm_min_count must be at least 1".into());
        }
        Ok(())
    }
}

/// What the fleet endpoints group devices by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Product model.
    Model,
    /// Firmware version.
    Fw,
    /// Region.
    Region,
    /// Production batch.
    Batch,
    /// Device type.
    Type,
    /// One group of every device.
    None,
}

impl GroupBy {
    /// Parses a `group_by` parameter; `allowed` lists the accepted names.
    pub fn parse(raw: &str, allowed: &[GroupBy]) -> Result<GroupBy> {
        let all = [
            GroupBy::Model,
            GroupBy::Fw,
            GroupBy::Region,
            GroupBy::Batch,
            GroupBy::Type,
            GroupBy::None,
        ];
        all.into_iter()
            .find(|g| g.as_str() == raw && allowed.contains(g))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|g| g.as_str()).collect();
                Error::BadRequest(format!(
                    "parameter group_by: {raw:?} is not one of {}",
                    names.join(", ")
                ))
            })
    }

    /// The parameter value.
    pub const fn as_str(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Fw => "fw",
            GroupBy::Region => "region",
            GroupBy::Batch => "batch",
            GroupBy::Type => "type",
            GroupBy::None => "none",
        }
    }
}

/// Interned names: one `u32` per distinct string.
#[derive(Debug, Default)]
pub(crate) struct Names {
    list: Vec<String>,
    map: HashMap<String, u32>,
}

impl Names {
    pub(crate) fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_owned());
        self.map.insert(s.to_owned(), i);
        i
    }

    pub(crate) fn get(&self, i: u32) -> &str {
        self.list.get(i as usize).map_or("", String::as_str)
    }
}

/// A registered device.
#[derive(Clone, Debug)]
pub(crate) struct DeviceRow {
    pub(crate) device_type: u32,
    pub(crate) model: u32,
    pub(crate) fw: Option<u32>,
    pub(crate) batch: Option<u32>,
    pub(crate) region: Option<u32>,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
}

impl DeviceRow {
    /// Device-months of the reporting span within `[from, to)`.
    pub(crate) fn months_within(&self, from: i64, to: i64) -> f64 {
        let start = self.first_seen.max(from);
        let end = self.last_seen.min(to);
        if end > start {
            (end - start) as f64 / MONTH_MS
        } else {
            0.0
        }
    }

    pub(crate) fn key(&self, by: GroupBy) -> Option<u32> {
        match by {
            GroupBy::Model => Some(self.model),
            GroupBy::Fw => self.fw,
            GroupBy::Region => self.region,
            GroupBy::Batch => self.batch,
            GroupBy::Type => Some(self.device_type),
            GroupBy::None => None,
        }
    }
}

/// The current risk of one (device, component).
#[derive(Clone, Debug)]
pub(crate) struct RiskRow {
    pub(crate) device: u32,
    pub(crate) component: u32,
    pub(crate) risk: f64,
    pub(crate) flagged: bool,
}

/// A confirmed failure recorded on a ticket.
#[derive(Clone, Debug)]
pub(crate) struct FailureRow {
    pub(crate) at: i64,
    pub(crate) component: u32,
    /// Parts replaced, as recorded (may be empty).
    pub(crate) parts: Vec<u32>,
}

/// A ticket, as far as fleet analytics need it.
#[derive(Clone, Debug)]
pub(crate) struct TicketRow {
    /// The device, if it is in the registry.
    pub(crate) device: Option<u32>,
    pub(crate) device_type: u32,
    pub(crate) component: u32,
    pub(crate) proactive: bool,
    pub(crate) active: bool,
    pub(crate) dismissed: bool,
    pub(crate) opened_at: i64,
    pub(crate) risk: f64,
    pub(crate) failure: Option<FailureRow>,
}

/// Everything the fleet endpoints read, loaded at once (see the module docs).
#[derive(Debug)]
pub struct FleetSnapshot {
    /// When it was loaded, by the ticket service's clock.
    pub as_of: Timestamp,
    pub(crate) names: Names,
    pub(crate) devices: Vec<DeviceRow>,
    pub(crate) risks: Vec<RiskRow>,
    pub(crate) tickets: Vec<TicketRow>,
}

impl FleetSnapshot {
    /// A snapshot of nothing, as of `as_of`.
    #[cfg(test)]
    pub(crate) fn empty(as_of: Timestamp) -> Self {
        Self {
            as_of,
            names: Names::default(),
            devices: Vec::new(),
            risks: Vec::new(),
            tickets: Vec::new(),
        }
    }

    /// Reads the registry from `store`, the current risks and the tickets from
    /// `tickets_db` (the ticket store's tables), "now" from `tickets`' clock.
    pub fn load(
        store: &StoreReader,
        tickets: &TicketService,
        tickets_db: &Tables<'_>,
    ) -> Result<Self> {
        let as_of = tickets.now();
        let mut names = Names::default();
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut devices = Vec::new();
        for d in store.list_devices(None, None, i64::MAX as usize)? {
            index.insert(d.device_id.clone(), devices.len() as u32);
            devices.push(DeviceRow {
                device_type: names.id(&d.device_type),
                model: names.id(&d.model),
                fw: d.fw.as_deref().map(|s| names.id(s)),
                batch: d.batch.as_deref().map(|s| names.id(s)),
                region: d.region.as_deref().map(|s| names.id(s)),
                first_seen: d.first_seen.millis(),
                last_seen: d.last_seen.millis(),
            });
        }
        let mut risks = Vec::new();
        tickets_db.for_each_risk(|device_id, component, risk, flagged| {
            if let Some(&device) = index.get(device_id) {
                risks.push(RiskRow {
                    device,
                    component: names.id(component),
                    risk,
                    flagged,
                });
            }
        })?;
        let mut tickets = Vec::new();
        tickets_db.for_each_fleet_ticket(|t| {
            let failure = match t.outcome {
                Some(o) if o.kind == domain::OutcomeKind::ConfirmedFailure => Some(FailureRow {
                    at: o.failed_at.unwrap_or(o.recorded_at).millis(),
                    component: names.id(o.component.as_deref().unwrap_or(t.component)),
                    parts: o.parts_replaced.iter().map(|p| names.id(p)).collect(),
                }),
                _ => None,
            };
            tickets.push(TicketRow {
                device: index.get(t.device_id).copied(),
                device_type: names.id(t.device_type),
                component: names.id(t.component),
                proactive: t.proactive,
                active: t.active,
                dismissed: t.dismissed,
                opened_at: t.opened_at,
                risk: t.risk,
                failure,
            });
        })?;
        Ok(Self {
            as_of,
            names,
            devices,
            risks,
            tickets,
        })
    }

    /// A group's value for the response (`None`: the device does not report it, or
    /// `group_by=none`).
    fn group_name(&self, key: Option<u32>) -> Option<String> {
        key.map(|k| self.names.get(k).to_owned())
    }

    fn ticket_key(&self, t: &TicketRow, by: GroupBy) -> Option<u32> {
        match (t.device, by) {
            (Some(d), _) => self.devices[d as usize].key(by),
            (None, GroupBy::Type) => Some(t.device_type),
            (None, _) => None,
        }
    }

    /// `GET /api/v1/fleet/stats`: one pass over devices, risks and tickets.
    pub fn stats(&self, by: GroupBy, from: Timestamp, to: Timestamp) -> Vec<GroupStats> {
        let (from, to) = (from.millis(), to.millis());
        #[derive(Default)]
        struct Acc {
            devices: u64,
            reporting: u64,
            months: f64,
            open: u64,
            failures: u64,
            proactive: u64,
            dismissed: u64,
            risk: HashMap<u32, (f64, u64)>,
        }
        let mut groups: HashMap<Option<u32>, Acc> = HashMap::new();
        for d in &self.devices {
            if d.first_seen >= to {
                continue;
            }
            let acc = groups.entry(d.key(by)).or_default();
            acc.devices += 1;
            if d.last_seen >= from {
                acc.reporting += 1;
            }
            acc.months += d.months_within(from, to);
        }
        for r in &self.risks {
            let acc = groups
                .entry(self.devices[r.device as usize].key(by))
                .or_default();
            let e = acc.risk.entry(r.component).or_default();
            e.0 += r.risk;
            e.1 += 1;
        }
        for t in &self.tickets {
            let key = self.ticket_key(t, by);
            let failed = t
                .failure
                .as_ref()
                .is_some_and(|f| (from..to).contains(&f.at));
            let opened = t.proactive && (from..to).contains(&t.opened_at);
            let open = t.active && t.proactive;
            if !(open || failed || opened) {
                continue;
            }
            let acc = groups.entry(key).or_default();
            acc.open += u64::from(open);
            acc.failures += u64::from(failed);
            acc.proactive += u64::from(opened);
            acc.dismissed += u64::from(opened && t.dismissed);
        }
        let mut out: Vec<GroupStats> = groups
            .into_iter()
            .map(|(key, a)| GroupStats {
                group: self.group_name(key),
                devices: a.devices,
                devices_reporting: a.reporting,
                device_months: a.months,
                open_predictions: a.open,
                confirmed_failures: a.failures,
                failures_per_1000_device_months: (a.months > 0.0)
                    .then(|| a.failures as f64 * 1000.0 / a.months),
                proactive_tickets_opened: a.proactive,
                dismissed: a.dismissed,
                dismissed_share: (a.proactive > 0).then(|| a.dismissed as f64 / a.proactive as f64),
                mean_risk: a
                    .risk
                    .into_iter()
                    .map(|(c, (sum, n))| (self.names.get(c).to_owned(), sum / n as f64))
                    .collect(),
            })
            .collect();
        sort_groups(&mut out, |g| &g.group);
        out
    }

    /// `GET /api/v1/fleet/parts-forecast` (formula in docs/fleet.md).
    pub fn parts_forecast(
        &self,
        profiles: &ProfileSet,
        by: GroupBy,
        days: f64,
        settings: &FleetSettings,
    ) -> Vec<GroupParts> {
        let horizon_days = settings.risk_horizon.millis() as f64 / DAY_MS;
        let lookback_days = settings.parts_lookback.millis() as f64 / DAY_MS;
        let since = self.as_of.millis() - settings.parts_lookback.millis();
        let exponent = days.min(horizon_days) / horizon_days;
        let mut parts_of: HashMap<(u32, u32), Vec<String>> = HashMap::new();
        let mut groups: HashMap<Option<u32>, PartSums> = HashMap::new();
        for t in &self.tickets {
            let key = self.ticket_key(t, by);
            if t.active && t.proactive {
                let p = 1.0 - (1.0 - t.risk.clamp(0.0, 1.0)).powf(exponent);
                let parts = parts_of
                    .entry((t.device_type, t.component))
                    .or_insert_with(|| {
                        likely_parts(
                            profiles,
                            self.names.get(t.device_type),
                            self.names.get(t.component),
                        )
                    });
                let g = groups.entry(key).or_default();
                for part in parts.iter() {
                    g.entry((t.device_type, part.clone())).or_default().0 += p;
                }
            }
            if let Some(f) = t
                .failure
                .as_ref()
                .filter(|f| f.at >= since && f.at < self.as_of.millis())
            {
                let recorded: Vec<String> = f
                    .parts
                    .iter()
                    .map(|p| self.names.get(*p).to_owned())
                    .collect();
                let parts = if recorded.is_empty() {
                    parts_of
                        .entry((t.device_type, f.component))
                        .or_insert_with(|| {
                            likely_parts(
                                profiles,
                                self.names.get(t.device_type),
                                self.names.get(f.component),
                            )
                        })
                        .clone()
                } else {
                    recorded
                };
                let g = groups.entry(key).or_default();
                for part in parts {
                    g.entry((t.device_type, part)).or_default().1 += 1;
                }
            }
        }
        let mut out: Vec<GroupParts> = groups
            .into_iter()
            .map(|(key, parts)| {
                let mut parts: Vec<PartDemand> = parts
                    .into_iter()
                    .map(|((ty, part), (predicted, failures))| {
                        let recent = failures as f64 / lookback_days * days;
                        PartDemand {
                            device_type: self.names.get(ty).to_owned(),
                            part,
                            from_predictions: predicted,
                            recent_failures: failures,
                            from_recent_failures: recent,
                            expected: predicted + recent,
                        }
                    })
                    .collect();
                parts.sort_by(|a, b| {
                    b.expected
                        .total_cmp(&a.expected)
                        .then_with(|| (&a.device_type, &a.part).cmp(&(&b.device_type, &b.part)))
                });
                GroupParts {
                    group: self.group_name(key),
                    parts,
                }
            })
            .collect();
        sort_groups(&mut out, |g| &g.group);
        out
    }
}

/// Per (device type, part): demand from predictions, recent failures.
type PartSums = HashMap<(u32, String), (f64, u64)>;

/// Groups by name, the group without a name last.
fn sort_groups<T>(v: &mut [T], name: impl Fn(&T) -> &Option<String>) {
    v.sort_by(|a, b| match (name(a), name(b)) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// The parts a repair of `component` needs: the likely parts of the profile's fault
/// codes for it, in catalogue order without repeats (as a ticket's diagnosis lists
/// them); the component's own name when the catalogue names none.
pub fn likely_parts(profiles: &ProfileSet, device_type: &str, component: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(profile) = profiles.get(device_type) {
        for d in profile
            .faults()
            .iter()
            .filter(|d| d.component.as_deref() == Some(component))
        {
            for p in &d.likely_parts {
                if !parts.contains(p) {
                    parts.push(p.clone());
                }
            }
        }
    }
    if parts.is_empty() {
        parts.push(component.to_owned());
    }
    parts
}

/// One group of `GET /api/v1/fleet/stats`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupStats {
    /// The group's model, firmware, region, batch or type; `null` for devices that do
    /// not report it (and for `group_by=none`).
    pub group: Option<String>,
    /// Devices registered before the end of the period.
    pub devices: u64,
    /// Of those, devices whose reporting span reaches into the period.
    pub devices_reporting: u64,
    /// Device-months of reporting within the period.
    pub device_months: f64,
    /// Active proactive tickets now.
    pub open_predictions: u64,
    /// Confirmed failures within the period.
    pub confirmed_failures: u64,
    /// Confirmed failures per 1000 device-months; `null` without exposure.
    pub failures_per_1000_device_months: Option<f64>,
    /// Proactive tickets opened within the period.
    pub proactive_tickets_opened: u64,
    /// Of those, the ones dismissed.
    pub dismissed: u64,
    /// `dismissed / proactive_tickets_opened`; `null` when none was opened.
    pub dismissed_share: Option<f64>,
    /// Mean current risk per component over the group's scored devices.
    pub mean_risk: std::collections::BTreeMap<String, f64>,
}

/// Expected demand for one part.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PartDemand {
    /// The device type the part belongs to.
    pub device_type: String,
    /// The part, as the profile's fault catalogue (or an outcome) names it.
    pub part: String,
    /// Σ over open predictions of P(failure within `days`).
    pub from_predictions: f64,
    /// Confirmed failures within the lookback that needed the part.
    pub recent_failures: u64,
    /// `recent_failures / lookback days × days`.
    pub from_recent_failures: f64,
    /// `from_predictions + from_recent_failures`.
    pub expected: f64,
}

/// One group of `GET /api/v1/fleet/parts-forecast`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupParts {
    /// As in [`GroupStats::group`].
    pub group: Option<String>,
    /// Parts, highest expected demand first.
    pub parts: Vec<PartDemand>,
}

/// Fleet analytics over one hot store and ticket store: the snapshot cache, the
/// detector and its settings. Cheap to clone. Every method blocks.
#[derive(Clone)]
pub struct Fleet {
    store: StoreReader,
    tickets: TicketService,
    profiles: Arc<ProfileSet>,
    settings: Arc<FleetSettings>,
    current: Arc<RwLock<Option<Arc<FleetSnapshot>>>>,
    /// Its own ticket-store connection, opened on first use: loading a snapshot scans
    /// whole tables and must not hold up the ticket endpoints' reader.
    tickets_db: Arc<Mutex<Option<TicketReader>>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Fleet analytics over `store` (best a reader of its own, for the same reason as
    /// the ticket-store connection it opens) and `tickets`.
    pub fn new(
        store: StoreReader,
        tickets: TicketService,
        profiles: Arc<ProfileSet>,
        settings: FleetSettings,
    ) -> Self {
        Self {
            store,
            tickets,
            profiles,
            settings: Arc::new(settings),
            current: Arc::default(),
            tickets_db: Arc::default(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &FleetSettings {
        &self.settings
    }

    /// The device profiles.
    pub fn profiles(&self) -> &ProfileSet {
        &self.profiles
    }

    /// Loads a new snapshot and makes it the current one.
    pub fn refresh(&self) -> Result<Arc<FleetSnapshot>> {
        let snapshot = {
            let mut db = self
                .tickets_db
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if db.is_none() {
                *db = Some(self.tickets.open_reader()?);
            }
            let Some(conn) = db.as_ref() else {
                return Err(Error::Task("ticket store connection missing".into()));
            };
            Arc::new(FleetSnapshot::load(
                &self.store,
                &self.tickets,
                &conn.tables(),
            )?)
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// The current snapshot, loading the first one if there is none yet.
    pub fn snapshot(&self) -> Result<Arc<FleetSnapshot>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match current {
            Some(s) => Ok(s),
            None => self.refresh(),
        }
    }

    /// Runs the batch-alarm detector on a fresh snapshot and records what it found
    /// (docs/fleet.md, "Batch alarms").
    pub fn detect(&self) -> Result<DetectionReport> {
        let snapshot = self.refresh()?;
        let cells = alarms::cells(&snapshot, &self.profiles, &self.settings);
        let findings = alarms::test_cells(cells, &self.settings);
        alarms::record(&self.tickets, &findings, &self.settings)
    }

    /// Alarms, newest first.
    pub fn alarms(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AlarmRecord>> {
        alarms::list(&self.tickets, status, before, limit)
    }
}

#[cfg(test)]
mod tests;
