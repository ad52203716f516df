//! One component's model: its family, weights or trees, calibration, flag rule and
//! threshold, and what validation measured of it.

use serde::{Deserialize, Serialize};

use super::names::UnknownName;
use super::{
    sigmoid, CalibrationSet, FamilyName, FaultRule, LeadTimeBin, SelectionSet, ThresholdRule,
};
use crate::trees::Tree;

/// A model for one component. With `z` the standardised features, the model's log-odds
/// are `logit = intercept + weights · z` (family `logistic`) or
/// `logit = intercept + ln(p / (1 - p))` with `p` the trees' mean leaf share of failures
/// (family `bagged_trees`), and `risk = sigmoid(calibration_a * logit + calibration_b)`
/// (Platt scaling). Oriented so that `risk` is P(failure within horizon).
///
/// In JSON the family is the field `family` (`logistic` when absent) and its trees the
/// field `trees` (`[]` for the logistic family), as every format-3 artefact spells
/// them; the component rejects unknown fields, and reading names the component whose
/// family, threshold rule or calibration set is not one this build knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawComponentModel", into = "RawComponentModel")]
pub struct ComponentModel {
    /// Component name from the profile.
    pub component: String,
    /// Model family used to score, with what only that family scores with.
    pub family: Family,
    /// One weight per feature (empty when skipped). Family `logistic` scores with them;
    /// for `bagged_trees` they are the logistic candidate's, kept for audit only.
    pub weights: Vec<f64>,
    /// Log-odds offset, corrected for the negative undersampling (both families).
    pub intercept: f64,
    /// Platt scaling slope on the model's log-odds (1 = identity; 1 when absent).
    pub calibration_a: f64,
    /// Platt scaling offset (0 = identity; 0 when absent).
    pub calibration_b: f64,
    /// Which rows fitted the calibration: `validation_first_half`, or `none` (identity)
    /// when that half had no positive or no negative row. Absent (or empty) in a file:
    /// `none`.
    pub calibration_set: CalibrationSet,
    /// The families compared for this component, with their average precision.
    pub candidates: Vec<CandidateMetrics>,
    /// A score at or above this counts toward a flag.
    pub threshold: f64,
    /// Consecutive scores at or above the threshold needed to flag.
    pub persistence: u32,
    /// Event time, in milliseconds, the risk must have stayed at or above the threshold
    /// (from the first score of the streak) before a flag, on top of `persistence`.
    /// A device that reports every few minutes would otherwise flag on a short burst.
    pub hold_ms: i64,
    /// Once raised, a flag stays raised until the risk has stayed below the threshold
    /// for this much event time (milliseconds), so a risk that dips under the threshold
    /// for a score or two does not end one flag and raise another. 0 (and artefacts
    /// written before it existed): the flag drops with the first score below.
    pub release_ms: i64,
    /// A raised flag is a prediction for this much event time (milliseconds, the
    /// model's horizon); once that has passed with the flag still up, the prediction has
    /// expired: the flag goes down for one score and is raised again by the flag rule
    /// if it still holds, a new flag episode (see `scorer::latch`). 0 (and artefacts
    /// written before it existed, validated without it): flags never expire.
    pub expire_ms: i64,
    /// When set, the component is also flagged while its fault codes say so, whatever
    /// the risk ([`FaultRule`]): training keeps it where it catches more validation
    /// failures within the precision target and the alert budget.
    pub fault_rule: Option<FaultRule>,
    /// How the threshold was chosen.
    pub threshold_rule: ThresholdRule,
    /// Validation metrics at the threshold, when the component was trained.
    pub metrics: Option<ComponentMetrics>,
    /// Why no model was trained for this component (too few positives, ...).
    pub skipped_reason: Option<String>,
    /// Predicted lead time by risk, from the validation period: for rows at or above
    /// the threshold whose component did fail within the horizon, the median time to
    /// that failure, in up to [`LEAD_TIME_BINS`](super::LEAD_TIME_BINS) bins of equal
    /// row count ordered by risk. Empty when too few such rows (fewer than
    /// [`MIN_LEAD_TIME_ROWS`](super::MIN_LEAD_TIME_ROWS)) or in an artefact trained
    /// before lead times existed.
    pub lead_time: Vec<LeadTimeBin>,
}

/// A component's model family, with the data only that family scores with.
#[derive(Clone, Debug, PartialEq)]
pub enum Family {
    /// L2 logistic regression: `logit = intercept + weights · z`.
    Logistic,
    /// Bagged decision trees: `logit = intercept + ln(p / (1 - p))`, `p` the trees'
    /// mean leaf share of failures ([`crate::trees`]).
    BaggedTrees {
        /// The fitted trees.
        trees: Vec<Tree>,
    },
}

impl Family {
    /// The family's name.
    pub fn name(&self) -> FamilyName {
        match self {
            Family::Logistic => FamilyName::Logistic,
            Family::BaggedTrees { .. } => FamilyName::BaggedTrees,
        }
    }

    /// The name artefacts spell it with: `logistic` or `bagged_trees`.
    pub fn as_str(&self) -> &'static str {
        self.name().as_str()
    }

    /// The trees of family `bagged_trees` (none for `logistic`).
    pub fn trees(&self) -> &[Tree] {
        match self {
            Family::Logistic => &[],
            Family::BaggedTrees { trees } => trees,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`ComponentModel`] as a file spells it: the family a name with the trees beside it,
/// the other closed sets as strings (checked when converted, so an error names the
/// component), and the defaults of fields added over format 3.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponentModel {
    component: String,
    #[serde(default = "default_family")]
    family: String,
    weights: Vec<f64>,
    intercept: f64,
    #[serde(default)]
    trees: Vec<Tree>,
    #[serde(default = "one")]
    calibration_a: f64,
    #[serde(default)]
    calibration_b: f64,
    #[serde(default)]
    calibration_set: String,
    #[serde(default)]
    candidates: Vec<CandidateMetrics>,
    threshold: f64,
    persistence: u32,
    #[serde(default)]
    hold_ms: i64,
    #[serde(default)]
    release_ms: i64,
    #[serde(default)]
    expire_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fault_rule: Option<FaultRule>,
    threshold_rule: String,
    metrics: Option<ComponentMetrics>,
    skipped_reason: Option<String>,
    #[serde(default)]
    lead_time: Vec<LeadTimeBin>,
}

fn default_family() -> String {
    FamilyName::Logistic.as_str().to_owned()
}

fn one() -> f64 {
    1.0
}

impl TryFrom<RawComponentModel> for ComponentModel {
    type Error = String;

    fn try_from(raw: RawComponentModel) -> Result<Self, String> {
        let named = |e: UnknownName| format!("component {}: {e}", raw.component);
        let family = match raw.family.parse::<FamilyName>().map_err(named)? {
            FamilyName::BaggedTrees => Family::BaggedTrees { trees: raw.trees },
            FamilyName::Logistic if raw.trees.is_empty() => Family::Logistic,
            FamilyName::Logistic => {
                return Err(format!(
                "component {}: family logistic has {} trees (only bagged_trees scores with trees)",
                raw.component,
                raw.trees.len()
            ))
            }
        };
        // Written before the field existed (serde's default): no calibration.
        let calibration_set = match raw.calibration_set.as_str() {
            "" => CalibrationSet::None,
            set => set.parse().map_err(named)?,
        };
        let threshold_rule = raw.threshold_rule.parse().map_err(named)?;
        Ok(ComponentModel {
            component: raw.component,
            family,
            weights: raw.weights,
            intercept: raw.intercept,
            calibration_a: raw.calibration_a,
            calibration_b: raw.calibration_b,
            calibration_set,
            candidates: raw.candidates,
            threshold: raw.threshold,
            persistence: raw.persistence,
            hold_ms: raw.hold_ms,
            release_ms: raw.release_ms,
            expire_ms: raw.expire_ms,
            fault_rule: raw.fault_rule,
            threshold_rule,
            metrics: raw.metrics,
            skipped_reason: raw.skipped_reason,
            lead_time: raw.lead_time,
        })
    }
}

impl From<ComponentModel> for RawComponentModel {
    fn from(c: ComponentModel) -> Self {
        let family = c.family.as_str().to_owned();
        let trees = match c.family {
            Family::Logistic => Vec::new(),
            Family::BaggedTrees { trees } => trees,
        };
        RawComponentModel {
            component: c.component,
            family,
            weights: c.weights,
            intercept: c.intercept,
            trees,
            calibration_a: c.calibration_a,
            calibration_b: c.calibration_b,
            calibration_set: c.calibration_set.as_str().to_owned(),
            candidates: c.candidates,
            threshold: c.threshold,
            persistence: c.persistence,
            hold_ms: c.hold_ms,
            release_ms: c.release_ms,
            expire_ms: c.expire_ms,
            fault_rule: c.fault_rule,
            threshold_rule: c.threshold_rule.as_str().to_owned(),
            metrics: c.metrics,
            skipped_reason: c.skipped_reason,
            lead_time: c.lead_time,
        }
    }
}

/// One candidate family's validation result for a component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateMetrics {
    /// `logistic` or `bagged_trees`.
    pub family: FamilyName,
    /// Average precision on the rows that choose the family (the first half of the
    /// validation period when it has positives; see `selection_set`).
    pub selection_ap: f64,
    /// Average precision on the rows that choose the threshold and report metrics.
    pub validation_ap: f64,
    /// `validation_first_half`, `validation` or `training`.
    pub selection_set: SelectionSet,
}

impl ComponentModel {
    /// The predicted lead time, in days, for a score of `risk`: the median of the band
    /// it falls in (the first band below its start). `None` without bins or below the
    /// threshold.
    pub fn lead_time_days(&self, risk: f64) -> Option<f64> {
        if risk < self.threshold {
            return None;
        }
        self.lead_time
            .iter()
            .rev()
            .find(|b| risk >= b.min_risk)
            .or(self.lead_time.first())
            .map(|b| b.median_days)
    }

    /// Whether this component has a usable model.
    pub fn is_trained(&self) -> bool {
        self.skipped_reason.is_none()
            && match &self.family {
                Family::BaggedTrees { trees } => !trees.is_empty(),
                Family::Logistic => !self.weights.is_empty(),
            }
    }

    /// The model's log-odds for standardised features `z` (before calibration).
    pub fn logit(&self, z: &[f64]) -> f64 {
        match &self.family {
            Family::BaggedTrees { trees } => self.intercept + crate::trees::forest_logit(trees, z),
            Family::Logistic => {
                self.intercept + self.weights.iter().zip(z).map(|(w, z)| w * z).sum::<f64>()
            }
        }
    }

    /// The calibrated risk for standardised features `z`.
    pub fn risk(&self, z: &[f64]) -> f64 {
        sigmoid(self.calibration_a * self.logit(z) + self.calibration_b)
    }

    /// [`ComponentModel::risk`] (bit for bit) together with each feature's contribution
    /// to it, written into `contrib` (cleared and resized to `z`'s length): log-odds
    /// terms for logistic models, decision-path shares for trees. One pass serves both.
    pub fn risk_and_contributions(&self, z: &[f64], contrib: &mut Vec<f64>) -> f64 {
        contrib.clear();
        contrib.resize(z.len(), 0.0);
        let logit = match &self.family {
            Family::BaggedTrees { trees } => {
                self.intercept + crate::trees::contributions(trees, z, contrib)
            }
            Family::Logistic => {
                // The same products, summed in the same order, as `logit`.
                let mut sum = -0.0f64;
                for ((out, w), z) in contrib.iter_mut().zip(&self.weights).zip(z) {
                    *out = w * z;
                    sum += *out;
                }
                self.intercept + sum
            }
        };
        sigmoid(self.calibration_a * logit + self.calibration_b)
    }

    /// Checks a trained component against a schema of `n` features: well-formed trees,
    /// a fault rule within the schema, one weight per feature for the logistic family,
    /// finite numbers. An untrained one always passes. (An unknown family is refused
    /// when the file is read.)
    pub(super) fn validate(&self, n: usize) -> std::result::Result<(), String> {
        if !self.is_trained() {
            return Ok(());
        }
        if let Family::BaggedTrees { trees } = &self.family {
            crate::trees::validate(trees, n)
                .map_err(|m| format!("component {}: {m}", self.component))?;
        }
        if self.fault_rule.is_some_and(|r| r.max_index() >= n) {
            return Err(format!(
                "component {} has a fault rule on features beyond the {n} of its schema",
                self.component
            ));
        }
        if self.family == Family::Logistic && self.weights.len() != n {
            return Err(format!(
                "component {} has {} weights for {n} features",
                self.component,
                self.weights.len()
            ));
        }
        if self
            .weights
            .iter()
            .chain([
                &self.intercept,
                &self.threshold,
                &self.calibration_a,
                &self.calibration_b,
            ])
            .any(|x| !x.is_finite())
        {
            return Err(format!(
                "component {} holds a non-finite number",
                self.component
            ));
        }
        Ok(())
    }
}

/// Metrics of one component model on the validation period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentMetrics {
    /// Rows scored.
    pub rows: u64,
    /// Positive rows among them.
    pub positives: u64,
    /// Share of positive rows: the precision of a coin flip.
    pub base_rate: f64,
    /// Precision at the threshold.
    pub precision: f64,
    /// Recall at the threshold (row level).
    pub recall: f64,
    /// F1 at the threshold.
    pub f1: f64,
    /// Average precision (area under the precision-recall curve).
    pub average_precision: f64,
    /// Mean risk over the rows: close to `base_rate` when the risks are calibrated.
    #[serde(default)]
    pub mean_risk: f64,
    /// Failures with at least one validation row in the horizon before them.
    pub events: u64,
    /// Those failures with at least one such row at or above the threshold.
    pub events_detected: u64,
    /// Event-level counts at the chosen threshold, as `eval` counts them, on the rows the
    /// threshold was chosen on (see `threshold_rule`).
    #[serde(default)]
    pub validation_events: Option<EventMetrics>,
}

/// Event-level outcome of a threshold on validation rows: flag episodes (a run of
/// persistent scores at or above the threshold) against the failures that followed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMetrics {
    /// Flag episodes started.
    pub flags: u64,
    /// Episodes not followed by a failure of the component within the horizon.
    pub false_alarms: u64,
    /// Distinct failures with at least one row in the horizon before them.
    pub failures: u64,
    /// Those with an episode started within the horizon before them.
    pub caught: u64,
    /// `1 - false_alarms / flags` (0 without flags).
    pub precision: f64,
    /// `caught / failures` (0 without failures).
    pub recall: f64,
    /// False alarms per 1000 device-months of validation rows.
    pub false_alarms_per_1000_device_months: f64,
    /// Device-months the rows span.
    pub device_months: f64,
    /// Median days from the flag that caught a failure to the failure (absent without
    /// catches, and in files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time_days_median: Option<f64>,
}
