//! The `[satisfaction]` section: which score counts as dissatisfied and how soon the
//! call-back it opens is due (docs/procedures.md).

use serde::{Deserialize, Serialize};

use super::ConfigDuration;
use crate::{Error, Result};

/// How a satisfaction answer is judged. Every field is optional and unknown keys are
/// rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SatisfactionConfig {
    /// A score at or below this (1-5) is dissatisfied and opens a call-back
    /// (default 2; 0 turns call-backs off).
    pub dissatisfied_at_most: u8,
    /// How soon after the answer the call-back is due (default 1 h).
    pub callback_within: ConfigDuration,
}

impl Default for SatisfactionConfig {
    fn default() -> Self {
        Self {
            dissatisfied_at_most: 2,
            callback_within: ConfigDuration::from_hours(1),
        }
    }
}

impl SatisfactionConfig {
    /// Checks that `dissatisfied_at_most` is 0 to 4 (5 would make every answer
    /// dissatisfied) and that `callback_within` is positive.
    pub fn validate(&self) -> Result<()> {
        if self.dissatisfied_at_most > 4 {
            return Err(Error::Config(format!(
                "satisfaction.dissatisfied_at_most must be 0 to 4, not {}",
                self.dissatisfied_at_most
            )));
        }
        if self.callback_within.millis() <= 0 {
            return Err(Error::Config(
                "satisfaction.callback_within must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Whether `score` is dissatisfied.
    pub fn is_dissatisfied(&self, score: u8) -> bool {
        score <= self.dissatisfied_at_most
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c: SatisfactionConfig = toml::from_str("").unwrap();
        assert_eq!(c, SatisfactionConfig::default());
        c.validate().unwrap();
        assert!(c.is_dissatisfied(2) && !c.is_dissatisfied(3));
        let c: SatisfactionConfig =
            toml::from_str("dissatisfied_at_most = 3\ncallback_within = \"30m\"").unwrap();
        assert_eq!(c.callback_within.millis(), 30 * 60_000);
        assert!(toml::from_str::<SatisfactionConfig>("threshold = 2").is_err());
        let bad = SatisfactionConfig {
            dissatisfied_at_most: 5,
            ..SatisfactionConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = SatisfactionConfig {
            callback_within: ConfigDuration::from_millis(0),
            ..SatisfactionConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
