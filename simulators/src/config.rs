//! Fleet configuration.

use domain::Timestamp;

use crate::{Error, Result};

/// What fleet to simulate. Same config and seed give byte-identical output.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetConfig {
    /// Number of devices; kinds are assigned round-robin in [`FleetConfig::kinds`] order.
    pub devices: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Simulated time at which the fleet starts (history begins here).
    pub start: Timestamp,
    /// Appliance kinds to simulate (`washer`, `dishwasher`, `refrigerator`,
    /// `air_conditioner`, `water_heater`; all five by default).
    pub kinds: Vec<String>,
    /// Share of failures, 0-1, that come without any precursor (mode `sudden`).
    pub sudden_failure_share: f64,
    /// Failures per component per year (exponentially distributed times to failure).
    pub failure_rate_per_year: f64,
    /// Share of devices, 0-1, that start with one component already degrading and fail
    /// within the first 3-10 simulated days (useful for demos).
    pub early_degradation_share: f64,
    /// Simulated seconds between two refrigerator telemetry messages; air conditioners
    /// use it too while switched on (and report at least hourly in standby).
    pub refrigerator_interval_s: u64,
    /// A production batch whose components fail more often (ground truth for "is this
    /// batch bad?"); `None` for none. [`crate::Fleet::new`] checks that the batch exists
    /// in the fleet ([`crate::Fleet::batches`]).
    pub defective_batch: Option<DefectiveBatch>,
    /// Share of devices, 0-1, with one sensor fault episode (a stuck, dropping-out or
    /// spiking channel for 1-14 days) that is not a component failure.
    pub sensor_fault_share: f64,
    /// Share of devices, 0-1, with a poor installation (a sagging drain hose, low supply
    /// voltage, a badly ventilated niche) that shifts readings without a failure.
    pub poor_installation_share: f64,
}

/// A production batch with a defect: its devices' components fail `multiplier` times as
/// often as the rest of the fleet's.
#[derive(Clone, Debug, PartialEq)]
pub struct DefectiveBatch {
    /// Batch name as in `devices.jsonl` (`B2025-03`).
    pub batch: String,
    /// The defective component (`drain_pump`); `None` means every component.
    pub component: Option<String>,
    /// Failure-rate multiplier, finite and at least 1 ([`DefectiveBatch::DEFAULT_MULTIPLIER`]).
    pub multiplier: f64,
}

impl DefectiveBatch {
    /// The multiplier used when none is given: five times the normal failure rate.
    pub const DEFAULT_MULTIPLIER: f64 = 5.0;

    /// Every component of `batch` fails [`DefectiveBatch::DEFAULT_MULTIPLIER`] times as
    /// often.
    pub fn new(batch: impl Into<String>) -> Self {
        Self {
            batch: batch.into(),
            component: None,
            multiplier: Self::DEFAULT_MULTIPLIER,
        }
    }

    /// The failure-rate multiplier for `component` of a device from `batch`.
    pub(crate) fn multiplier_for(&self, batch: &str, component: &str) -> f64 {
        let hit = self.batch == batch && self.component.as_deref().is_none_or(|c| c == component);
        if hit {
            self.multiplier
        } else {
            1.0
        }
    }
}

impl FleetConfig {
    /// 2026-01-01T00:00:00Z, the default start.
    pub const DEFAULT_START: Timestamp = Timestamp(1_767_225_600_000);
    /// Latest accepted start, 9999-12-31T23:59:59.999Z (keeps time arithmetic far from
    /// overflow).
    pub const MAX_START: Timestamp = Timestamp(253_402_300_799_999);
    /// Most devices one fleet may hold.
    pub const MAX_DEVICES: usize = 1_000_000;

    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidConfig(msg));
        if self.devices == 0 || self.devices > Self::MAX_DEVICES {
            return bad(format!(
                "devices must be 1-{}, got {}",
                Self::MAX_DEVICES,
                self.devices
            ));
        }
        if self.kinds.is_empty() {
            return bad("kinds must name at least one appliance kind".into());
        }
        for (name, share) in [
            ("sudden_failure_share", self.sudden_failure_share),
            ("early_degradation_share", self.early_degradation_share),
            ("sensor_fault_share", self.sensor_fault_share),
            ("poor_installation_share", self.poor_installation_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return bad(format!("{name} must be within 0-1, got {share}"));
            }
        }
        if !(self.failure_rate_per_year.is_finite() && self.failure_rate_per_year >= 0.0) {
            return bad(format!(
                "failure_rate_per_year must be a finite number >= 0, got {}",
                self.failure_rate_per_year
            ));
        }
        if !(0..=Self::MAX_START.millis()).contains(&self.start.millis()) {
            return bad(format!(
                "start must lie between 1970 and 9999, got {} ms",
                self.start.millis()
            ));
        }
        if !(10..=86_400).contains(&self.refrigerator_interval_s) {
            return bad(format!(
                "refrigerator_interval_s must be 10-86400, got {}",
                self.refrigerator_interval_s
            ));
        }
        if let Some(d) = &self.defective_batch {
            if d.batch.trim().is_empty() {
                return bad("defective_batch needs a batch name".into());
            }
            if d.component.as_deref().is_some_and(str::is_empty) {
                return bad(
                    "defective_batch component must not be empty (use None for all)".into(),
                );
            }
            if !(d.multiplier.is_finite() && (1.0..=1000.0).contains(&d.multiplier)) {
                return bad(format!(
                    "defective_batch multiplier must be a finite number within 1-1000, got {}",
                    d.multiplier
                ));
            }
        }
        Ok(())
    }
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            devices: 200,
            seed: 42,
            start: Self::DEFAULT_START,
            kinds: crate::known_kinds().into_iter().map(String::from).collect(),
            sudden_failure_share: 0.25,
            failure_rate_per_year: 0.5,
            early_degradation_share: 0.0,
            refrigerator_interval_s: 900,
            defective_batch: None,
            sensor_fault_share: 0.05,
            poor_installation_share: 0.05,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_named() {
        assert!(FleetConfig::default().validate().is_ok());
        let bad = FleetConfig {
            sudden_failure_share: 1.5,
            ..FleetConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("sudden_failure_share"), "{err}");
        let nan = FleetConfig {
            failure_rate_per_year: f64::NAN,
            ..FleetConfig::default()
        };
        assert!(nan.validate().is_err());
        assert!(FleetConfig {
            start: Timestamp(i64::MAX),
            ..FleetConfig::default()
        }
        .validate()
        .is_err());
        assert!(FleetConfig {
            devices: 0,
            ..FleetConfig::default()
        }
        .validate()
        .is_err());
        let bad_batch = FleetConfig {
            defective_batch: Some(DefectiveBatch {
                multiplier: f64::INFINITY,
                ..DefectiveBatch::new("B2025-01")
            }),
            ..FleetConfig::default()
        };
        let err = bad_batch.validate().unwrap_err().to_string();
        assert!(err.contains("multiplier"), "{err}");
        let share = FleetConfig {
            sensor_fault_share: -0.1,
            ..FleetConfig::default()
        };
        let err = share.validate().unwrap_err().to_string();
        assert!(err.contains("sensor_fault_share"), "{err}");
    }

    #[test]
    fn a_defective_batch_multiplies_only_its_component() {
        let d = DefectiveBatch {
            component: Some("drain_pump".into()),
            ..DefectiveBatch::new("B1")
        };
        assert_eq!(d.multiplier_for("B1", "drain_pump"), 5.0);
        assert_eq!(d.multiplier_for("B1", "heater"), 1.0);
        assert_eq!(d.multiplier_for("B2", "drain_pump"), 1.0);
        assert_eq!(
            DefectiveBatch::new("B1").multiplier_for("B1", "heater"),
            5.0
        );
    }
}
