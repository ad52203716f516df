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

mod acknowledge;
pub mod alarms;
mod queries;
mod snapshot;
pub mod stats;
mod summary;

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use domain::ProfileSet;
use serde::{Deserialize, Serialize};
use store::hot::StoreReader;
use store::tickets::TicketReader;

use crate::tickets::{ConfigDuration, TicketService};
use crate::{Error, Result};

pub use acknowledge::{check_ack_note, MAX_ACK_NOTE};
pub use alarms::{AlarmRecord, DetectionReport};
pub use queries::{likely_parts, GroupParts, GroupStats, PartDemand};
pub use snapshot::FleetSnapshot;
pub use store::tickets::AlarmAck;
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
