//! Training hyper-parameters: [`TrainParams`] as a `--params` TOML file spells them,
//! and [`ValidTrainParams`], the same parameters once every range was checked: the only
//! kind training takes (linfa's `ParamGuard` pattern: `TrainParams::check` turns one
//! into the other).

use domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Training hyper-parameters, unchecked: [`TrainParams::check`] makes them the
/// [`ValidTrainParams`] that [`train`](super::train) and [`train_on`](super::train_on)
/// take.
///
/// | name | default | purpose | range |
/// |---|---|---|---|
/// | `horizon_ms` | 14 days | a row is positive if the component fails within this | > 0 |
/// | `sample_interval_ms` | 6 h | at most one feature row per device per interval | > 0 |
/// | `validation_share` | 0.3 | last share of the history's time range used for validation | (0, 1) |
/// | `target_precision` | 0.85 | thresholds aim for this event-level precision on validation | (0, 1] |
/// | `alert_budget` | 2 | and at most this many false alarms per 1000 device-months, per component | >= 0 |
/// | `persistence` | 3 | consecutive scores over the threshold needed to flag | >= 1 |
/// | `hold_ms` | 12 h | event time the risk must stay over the threshold before a flag | >= 0 |
/// | `release_ms` | 3 days | a raised flag stays up until the risk has been below the threshold this long | >= 0 |
/// | `expire_flags` | true | a flag still up one horizon after it was raised expires and is raised again if its rule still holds | bool |
/// | `fault_code_rule` | true | also try flagging on the component's fault codes | bool |
/// | `adaptive_persistence` | true | also try `persistence` 1 with `hold_ms` | bool |
/// | `seed` | 42 | seeds negative undersampling | any |
/// | `max_iterations` | 150 | L-BFGS iterations per component model | >= 1 |
/// | `negatives_per_positive` | 4 | negatives kept per positive in the training split | > 0 |
/// | `l2` | 10.0 | L2 penalty (linfa `alpha`, on a loss summed over rows) | >= 0 |
/// | `min_positives` | 5 | fewer positive training rows skip the component | >= 1 |
/// | `min_lift` | 2 | a component whose better family's AP on the selection half is under this multiple of that half's base rate gets no model (it would only raise false alarms) | >= 0 |
/// | `max_fit_rows` | 40,000 | cap on rows per fit (positives are subsampled too above it) | >= 10 |
/// | `trees` | 40 | trees of the bagged-trees candidate (0 = logistic only) | >= 0 |
/// | `tree_depth` | 7 | maximum depth of each tree | 1..=20 |
/// | `tree_rows` | 6,000 | bootstrap rows per tree (drawn from the logistic fit's sample) | >= 10 |
/// | `test_from_ms` | none | messages and events at or after this time are a test period that training never reads | any |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    /// Label horizon in milliseconds.
    pub horizon_ms: i64,
    /// Emit at most one feature row per device per this much event time.
    pub sample_interval_ms: i64,
    /// The last share of the history's time range that is validation (split by time).
    pub validation_share: f64,
    /// Event-level precision (share of flag episodes followed by a failure) the
    /// per-component thresholds aim for on the validation split.
    pub target_precision: f64,
    /// False alarms per 1000 device-months each component's threshold may raise on the
    /// validation split. Components add up: a five-component type at the default raises
    /// at most about 10 per 1000 device-months when every component uses its budget.
    pub alert_budget: f64,
    /// Consecutive scores at or above the threshold needed to flag.
    pub persistence: u32,
    /// Event time the risk must stay at or above the threshold before a flag.
    pub hold_ms: i64,
    /// Also try a faster flag rule per component, `persistence` 1 with `hold_ms` (one
    /// score held that long: at least two readings, so a single reading still cannot
    /// raise a flag), and keep the rule that catches the most validation failures
    /// within the precision target and the alert budget (a tie keeps the slower rule).
    /// A washer reporting once a day needs three days for three scores.
    pub adaptive_persistence: bool,
    /// Once raised, a flag stays raised until the risk has stayed below the threshold
    /// for this much event time: a daily reporter whose risk hovers at the threshold
    /// would otherwise raise a new flag, and a new false alarm, every other day.
    pub release_ms: i64,
    /// A flag is a prediction for `horizon_ms`: when one is still up that long after it
    /// was raised, it expires (down for one score) and the flag rule raises it again if
    /// it still holds, so a standing risk is restated, and counted, once per horizon
    /// (`ComponentModel::expire_ms`). Off: a flag stays up as long as its rule and
    /// release keep it, however long that is.
    pub expire_flags: bool,
    /// Also try, per component, flagging on its fault codes besides the risk
    /// ([`crate::FaultRule`]), and keep it where it catches more validation failures
    /// within the precision target and the alert budget (a tie keeps the risk alone).
    pub fault_code_rule: bool,
    /// Seed of the negative undersampling.
    pub seed: u64,
    /// Solver iterations per model.
    pub max_iterations: u64,
    /// Negatives kept per positive row when undersampling the training split.
    pub negatives_per_positive: f64,
    /// L2 regularisation strength.
    pub l2: f64,
    /// Components with fewer positive training rows are skipped.
    pub min_positives: u64,
    /// Components whose best selection-half AP is under `min_lift` x the base rate are
    /// left without a model.
    pub min_lift: f64,
    /// Most rows one component fit uses; above it positives are subsampled as well
    /// (keeps training in seconds; the intercept correction accounts for both rates).
    pub max_fit_rows: u64,
    /// Trees of the bagged-trees candidate family; 0 trains the logistic family only.
    pub trees: u32,
    /// Maximum depth of each tree.
    pub tree_depth: u32,
    /// Bootstrap rows per tree.
    pub tree_rows: u64,
    /// Epoch ms from which the history is a held-out test period: training, validation,
    /// calibration and threshold selection never read a message or event at or after it
    /// (`fixahead train --test-from`, then `fixahead eval --from` on the same history).
    pub test_from_ms: Option<i64>,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            horizon_ms: 14 * Timestamp::DAY_MS,
            sample_interval_ms: 6 * Timestamp::HOUR_MS,
            validation_share: 0.3,
            // Planners act on a flag only if it is usually right (the after-sales
            // teams' 85% precision target), and count false alarms per device-month.
            target_precision: 0.85,
            alert_budget: 2.0,
            persistence: 3,
            hold_ms: 12 * Timestamp::HOUR_MS,
            adaptive_persistence: true,
            release_ms: 3 * Timestamp::DAY_MS,
            expire_flags: true,
            fault_code_rule: true,
            seed: 42,
            max_iterations: 150,
            negatives_per_positive: 4.0,
            // On the simulator's history, 1.0 let small washer sets saturate the sigmoid
            // (threshold 1.000); 10 keeps thresholds meaningful at the same AP.
            l2: 10.0,
            min_positives: 5,
            min_lift: 2.0,
            max_fit_rows: 40_000,
            trees: 40,
            tree_depth: 7,
            tree_rows: 6_000,
            test_from_ms: None,
        }
    }
}

impl TrainParams {
    /// How long a raised flag lasts before it expires (`expire_flags`): the horizon, or
    /// 0 (never).
    pub(crate) fn expire_ms(&self) -> i64 {
        if self.expire_flags {
            self.horizon_ms.max(0)
        } else {
            0
        }
    }

    /// Checks every parameter's range (the last column of the table above), and makes
    /// the parameters ones training takes. An out-of-range parameter is an
    /// [`Error::InvalidParams`] naming it.
    pub fn check(self) -> Result<ValidTrainParams> {
        self.validate()?;
        Ok(ValidTrainParams(self))
    }

    /// Checks every parameter's range without consuming the parameters (see
    /// [`TrainParams::check`]).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidParams(m.to_owned()));
        if self.horizon_ms <= 0 {
            return bad("horizon_ms must be positive");
        }
        if self.sample_interval_ms <= 0 {
            return bad("sample_interval_ms must be positive");
        }
        if !(self.validation_share > 0.0 && self.validation_share < 1.0) {
            return bad("validation_share must lie strictly between 0 and 1");
        }
        if !(self.target_precision > 0.0 && self.target_precision <= 1.0) {
            return bad("target_precision must lie in (0, 1]");
        }
        if !(self.alert_budget.is_finite() && self.alert_budget >= 0.0) {
            return bad("alert_budget must be a finite number >= 0");
        }
        if self.hold_ms < 0 {
            return bad("hold_ms must not be negative");
        }
        if self.release_ms < 0 {
            return bad("release_ms must not be negative");
        }
        if self.persistence == 0 {
            return bad("persistence must be at least 1");
        }
        if self.max_iterations == 0 {
            return bad("max_iterations must be at least 1");
        }
        if !(self.negatives_per_positive.is_finite() && self.negatives_per_positive > 0.0) {
            return bad("negatives_per_positive must be positive");
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad("l2 must be a non-negative number");
        }
        if !(self.min_lift.is_finite() && self.min_lift >= 0.0) {
            return bad("min_lift must be a finite number >= 0");
        }
        if self.min_positives == 0 {
            return bad("min_positives must be at least 1");
        }
        if self.max_fit_rows < 10 {
            return bad("max_fit_rows must be at least 10");
        }
        if !(1..=20).contains(&self.tree_depth) {
            return bad("tree_depth must lie in 1..=20");
        }
        if self.tree_rows < 10 {
            return bad("tree_rows must be at least 10");
        }
        Ok(())
    }
}

/// Training parameters whose every range was checked: made only by
/// [`TrainParams::check`] (or `try_from`), so [`train`](super::train) and
/// [`train_on`](super::train_on), which take nothing else, never see an unchecked set.
/// Reads as the [`TrainParams`] inside (`Deref`). The default is
/// [`TrainParams::default`], which is valid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidTrainParams(TrainParams);

impl ValidTrainParams {
    /// The checked parameters.
    pub fn params(&self) -> &TrainParams {
        &self.0
    }

    /// The parameters, to change them (and check them again).
    pub fn into_inner(self) -> TrainParams {
        self.0
    }
}

impl std::ops::Deref for ValidTrainParams {
    type Target = TrainParams;

    fn deref(&self) -> &TrainParams {
        &self.0
    }
}

impl TryFrom<TrainParams> for ValidTrainParams {
    type Error = Error;

    fn try_from(params: TrainParams) -> Result<Self> {
        params.check()
    }
}

impl From<ValidTrainParams> for TrainParams {
    fn from(params: ValidTrainParams) -> Self {
        params.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_a_checked_set_keeps_every_value() {
        assert!(TrainParams::default().validate().is_ok());
        assert_eq!(
            ValidTrainParams::default().params(),
            &TrainParams::default()
        );
        let p = TrainParams {
            alert_budget: 1.5,
            tree_depth: 8,
            test_from_ms: Some(1),
            ..TrainParams::default()
        };
        let checked = p.clone().check().unwrap();
        assert_eq!(*checked, p);
        assert_eq!(TrainParams::from(checked.clone()), p);
        assert_eq!(ValidTrainParams::try_from(p).unwrap(), checked);
    }

    #[test]
    fn every_out_of_range_parameter_is_refused_by_name() {
        let d = TrainParams::default;
        for (bad, name) in [
            (
                TrainParams {
                    horizon_ms: 0,
                    ..d()
                },
                "horizon_ms",
            ),
            (
                TrainParams {
                    sample_interval_ms: -1,
                    ..d()
                },
                "sample_interval_ms",
            ),
            (
                TrainParams {
                    validation_share: 1.0,
                    ..d()
                },
                "validation_share",
            ),
            (
                TrainParams {
                    target_precision: 0.0,
                    ..d()
                },
                "target_precision",
            ),
            (
                TrainParams {
                    alert_budget: f64::INFINITY,
                    ..d()
                },
                "alert_budget",
            ),
            (TrainParams { hold_ms: -1, ..d() }, "hold_ms"),
            (
                TrainParams {
                    release_ms: -1,
                    ..d()
                },
                "release_ms",
            ),
            (
                TrainParams {
                    persistence: 0,
                    ..d()
                },
                "persistence",
            ),
            (
                TrainParams {
                    max_iterations: 0,
                    ..d()
                },
                "max_iterations",
            ),
            (
                TrainParams {
                    negatives_per_positive: 0.0,
                    ..d()
                },
                "negatives_per_positive",
            ),
            (
                TrainParams {
                    l2: f64::NAN,
                    ..d()
                },
                "l2",
            ),
            (
                TrainParams {
                    min_lift: -1.0,
                    ..d()
                },
                "min_lift",
            ),
            (
                TrainParams {
                    min_positives: 0,
                    ..d()
                },
                "min_positives",
            ),
            (
                TrainParams {
                    max_fit_rows: 9,
                    ..d()
                },
                "max_fit_rows",
            ),
            (
                TrainParams {
                    tree_depth: 21,
                    ..d()
                },
                "tree_depth",
            ),
            (
                TrainParams {
                    tree_rows: 9,
                    ..d()
                },
                "tree_rows",
            ),
        ] {
            let err = bad.check().unwrap_err();
            assert!(matches!(err, Error::InvalidParams(_)), "{name}: {err}");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}
