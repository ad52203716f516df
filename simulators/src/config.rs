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
    /// Appliance kinds to simulate (`washer`, `refrigerator`).
    pub kinds: Vec<String>,
    /// Share of failures, 0-1, that come without any precursor (mode `sudden`).
    pub sudden_failure_share: f64,
    /// Failures per component per year (exponentially distributed times to failure).
    pub failure_rate_per_year: f64,
    /// Share of devices, 0-1, that start with one component already degrading and fail
    /// within the first 3-10 simulated days (useful for demos).
    pub early_degradation_share: f64,
    /// Simulated seconds between two refrigerator telemetry messages.
    pub refrigerator_interval_s: u64,
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
        Ok(())
    }
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            devices: 200,
            seed: 42,
            start: Self::DEFAULT_START,
            kinds: vec!["washer".into(), "refrigerator".into()],
            sudden_failure_share: 0.25,
            failure_rate_per_year: 0.5,
            early_degradation_share: 0.0,
            refrigerator_interval_s: 900,
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
    }
}
