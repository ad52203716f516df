//! The `[dispatch]` configuration (docs/dispatch.md, docs/configuration.md).

use std::collections::BTreeMap;

use domain::Priority;
use serde::{Deserialize, Serialize};

use super::ranking::RankSettings;
use crate::tickets::ConfigDuration;
use crate::{Error, Result};

/// What dispatch does with a ticket of one priority (and device type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchMode {
    /// Assign the best fitting engineer at once.
    Auto,
    /// Rank the engineers for a planner; escalate only when nobody fits.
    Propose,
}

impl DispatchMode {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Propose => "propose",
        }
    }
}

/// Per-priority modes of one device type; a missing one falls back to the
/// section's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModeOverride {
    /// Urgent tickets.
    pub urgent: Option<DispatchMode>,
    /// Important tickets.
    pub important: Option<DispatchMode>,
    /// Normal tickets.
    pub normal: Option<DispatchMode>,
}

/// `[dispatch]`: automatic assignment and escalation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// Whether the dispatcher runs at all (default true). Off, no ticket is assigned
    /// or escalated automatically; the ranking is still served.
    pub enabled: bool,
    /// Whom a ticket escalates to when nobody fits (default `after-sales-manager`).
    pub manager: String,
    /// How often the dispatcher sweeps (default `30s`); it also runs as soon as a
    /// ticket event is committed.
    pub interval: ConfigDuration,
    /// Length of an automatic visit window (default `2h`); a visit must fit in the
    /// engineer's working day.
    pub visit: ConfigDuration,
    /// Average travel speed in km/h (default 40).
    pub speed_kmh: f64,
    /// Travel time when a distance is unknown and the regions match (default `1h`).
    pub region_travel: ConfigDuration,
    /// Travel time when a distance is unknown and the engineer's region is unknown or
    /// not the device's (default `4h`; a device of unknown region counts as
    /// `region_travel`).
    pub other_region_travel: ConfigDuration,
    /// How soon after opening an urgent ticket an engineer must be there (default
    /// `4h`, the seeds' "urgent tickets are handled within 4 hours").
    pub urgent_arrival: ConfigDuration,
    /// Days ahead searched for a free slot (default 14).
    pub horizon_days: u32,
    /// Urgent tickets (default `auto`).
    pub urgent: DispatchMode,
    /// Important tickets (default `propose`).
    pub important: DispatchMode,
    /// Normal tickets (default `propose`).
    pub normal: DispatchMode,
    /// Per device type overrides: `[dispatch.device_types.washer] normal = "auto"`.
    pub device_types: BTreeMap<String, ModeOverride>,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            manager: "after-sales-manager".into(),
            interval: ConfigDuration::from_millis(30_000),
            visit: ConfigDuration::from_hours(2),
            speed_kmh: 40.0,
            region_travel: ConfigDuration::from_hours(1),
            other_region_travel: ConfigDuration::from_hours(4),
            urgent_arrival: ConfigDuration::from_hours(4),
            horizon_days: 14,
            urgent: DispatchMode::Auto,
            important: DispatchMode::Propose,
            normal: DispatchMode::Propose,
            device_types: BTreeMap::new(),
        }
    }
}

impl DispatchConfig {
    /// Checks the values: a manager name, positive durations, a positive finite speed,
    /// a horizon of 1 to 365 days.
    pub fn validate(&self) -> Result<()> {
        if self.manager.trim().is_empty() {
            return Err(Error::Config("dispatch.manager: must not be empty".into()));
        }
        for (name, d) in [
            ("interval", self.interval),
            ("visit", self.visit),
            ("region_travel", self.region_travel),
            ("other_region_travel", self.other_region_travel),
            ("urgent_arrival", self.urgent_arrival),
        ] {
            if d.millis() <= 0 {
                return Err(Error::Config(format!("dispatch.{name}: must be positive")));
            }
        }
        if !(self.speed_kmh.is_finite() && self.speed_kmh > 0.0) {
            return Err(Error::Config(
                "dispatch.speed_kmh: must be a positive number".into(),
            ));
        }
        if !(1..=365).contains(&self.horizon_days) {
            return Err(Error::Config(
                "dispatch.horizon_days: must be between 1 and 365".into(),
            ));
        }
        Ok(())
    }

    /// The mode for a ticket of `priority` on a `device_type`.
    pub fn mode(&self, priority: Priority, device_type: &str) -> DispatchMode {
        let o = self.device_types.get(device_type);
        match priority {
            Priority::Urgent => o.and_then(|o| o.urgent).unwrap_or(self.urgent),
            Priority::Important => o.and_then(|o| o.important).unwrap_or(self.important),
            Priority::Normal => o.and_then(|o| o.normal).unwrap_or(self.normal),
        }
    }

    /// The ranking's travel and visit assumptions.
    pub fn rank_settings(&self) -> RankSettings {
        RankSettings {
            speed_kmh: self.speed_kmh,
            region_travel_ms: self.region_travel.millis(),
            other_travel_ms: self.other_region_travel.millis(),
            visit_ms: self.visit.millis(),
            horizon_days: self.horizon_days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_checks() {
        let c: DispatchConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, DispatchConfig::default());
        assert!(c.enabled);
        assert_eq!(c.mode(Priority::Urgent, "washer"), DispatchMode::Auto);
        assert_eq!(c.mode(Priority::Normal, "washer"), DispatchMode::Propose);
        let c: DispatchConfig = serde_json::from_str(
            r#"{"visit": "90m", "device_types": {"washer": {"normal": "auto", "urgent": "propose"}}}"#,
        )
        .unwrap();
        assert_eq!(c.visit.millis(), 90 * 60_000);
        assert_eq!(c.mode(Priority::Normal, "washer"), DispatchMode::Auto);
        assert_eq!(c.mode(Priority::Urgent, "washer"), DispatchMode::Propose);
        assert_eq!(c.mode(Priority::Important, "washer"), DispatchMode::Propose);
        assert_eq!(c.mode(Priority::Normal, "dryer"), DispatchMode::Propose);
        assert!(serde_json::from_str::<DispatchConfig>(r#"{"speed": 1}"#).is_err());
        assert!(serde_json::from_str::<DispatchConfig>(r#"{"urgent": "maybe"}"#).is_err());
        let bad = DispatchConfig {
            speed_kmh: 0.0,
            ..DispatchConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = DispatchConfig {
            manager: " ".into(),
            ..DispatchConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
