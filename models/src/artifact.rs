//! Model artefacts: versioned, self-describing JSON files, one active per device type.
//!
//! Layout of a model directory:
//!
//! ```text
//! {model_dir}/{device_type}/{version}.json   one file per trained version
//! {model_dir}/{device_type}/ACTIVE           the active version's name, one line
//! ```
//!
//! Both are written atomically (temporary file in the same directory, fsync, rename),
//! so a reader sees either the old or the new file, never half of one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::train::TrainParams;
use crate::{Error, Result};

/// The artefact format this crate writes and reads.
///
/// * 1: logistic models only, uncalibrated.
/// * 2: adds `family` (`logistic` or `bagged_trees`), `trees`, Platt calibration
///   (`calibration_a`, `calibration_b`) and the compared `candidates`. A version 1 file
///   would be misread (its risks are uncalibrated), so [`load`] refuses it.
/// * 3: the feature schema gains the device-baseline channel features (`ewma_30d`,
///   `shift`, `shift_z`) and the component features `major_count_7d` and
///   `hours_since_repair`; thresholds are chosen at event level (`validation_events`).
///   A version 2 model would be fed vectors of another layout, so it is refused.
///
/// Fields added since with a default that keeps an older file's meaning stay in version
/// 3 (`hold_ms`, `release_ms`, `expire_ms`, `fault_rule` and its `months` and
/// `recent_hours`, ...): this build reads every version 3 file as it was validated. A
/// build older than `months` and `recent_hours` refuses a file that has them (the fault
/// rule rejects unknown fields, and the error names the field) rather than apply a
/// different rule. A component rejects unknown fields too since `expire_ms`, so later
/// fields are refused the same way; a build from before `expire_ms` reads a file with
/// it and scores without expiry (that build's rule, not the validated one).
pub const FORMAT_VERSION: u32 = 3;
/// Name of the file that holds a device type's active version.
pub const ACTIVE_FILE: &str = "ACTIVE";

/// A trained model for one device type: everything needed to score, explain and audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// [`FORMAT_VERSION`] at the time of writing.
    pub format_version: u32,
    /// `{device_type}-{created, UTC, YYYYMMDDTHHMMSSZ}-{8 hex digits of a content hash}`.
    pub version: String,
    /// The device type the model scores.
    pub device_type: String,
    /// When training finished (wall clock, RFC 3339).
    pub created_at: String,
    /// Label horizon: a score is the risk of failing within this many milliseconds.
    pub horizon_ms: i64,
    /// Feature names, in vector order ([`crate::FeatureSchema::names`] at training time).
    pub feature_schema: Vec<String>,
    /// Training mean of each feature (also the value substituted for an unknown one).
    pub feature_mean: Vec<f64>,
    /// Training standard deviation of each feature (1 where the feature was constant).
    pub feature_std: Vec<f64>,
    /// 5th percentile of each feature in the training data.
    pub feature_p05: Vec<f64>,
    /// 95th percentile of each feature in the training data.
    pub feature_p95: Vec<f64>,
    /// One model per component of the device type, in profile order.
    pub components: Vec<ComponentModel>,
    /// What the model was trained on.
    pub training_summary: TrainingSummary,
    /// The training distribution of each feature, for drift watch
    /// ([`crate::drift`]). Absent in artefacts written before it existed: their drift
    /// is reported as `no_baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_baseline: Option<crate::drift::DriftBaseline>,
}

/// A model for one component. With `z` the standardised features, the model's log-odds
/// are `logit = intercept + weights · z` (family `logistic`) or
/// `logit = intercept + ln(p / (1 - p))` with `p` the trees' mean leaf share of failures
/// (family `bagged_trees`), and `risk = sigmoid(calibration_a * logit + calibration_b)`
/// (Platt scaling). Oriented so that `risk` is P(failure within horizon).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentModel {
    /// Component name from the profile.
    pub component: String,
    /// Model family used to score: `logistic` or `bagged_trees`.
    #[serde(default = "default_family")]
    pub family: String,
    /// One weight per feature (empty when skipped). Family `logistic` scores with them;
    /// for `bagged_trees` they are the logistic candidate's, kept for audit only.
    pub weights: Vec<f64>,
    /// Log-odds offset, corrected for the negative undersampling (both families).
    pub intercept: f64,
    /// The trees of family `bagged_trees` (empty otherwise).
    #[serde(default)]
    pub trees: Vec<crate::trees::Tree>,
    /// Platt scaling slope on the model's log-odds (1 = identity).
    #[serde(default = "one")]
    pub calibration_a: f64,
    /// Platt scaling offset (0 = identity).
    #[serde(default)]
    pub calibration_b: f64,
    /// Which rows fitted the calibration: `validation_first_half`, or `none` (identity)
    /// when that half had no positive or no negative row.
    #[serde(default)]
    pub calibration_set: String,
    /// The families compared for this component, with their average precision.
    #[serde(default)]
    pub candidates: Vec<CandidateMetrics>,
    /// A score at or above this counts toward a flag.
    pub threshold: f64,
    /// Consecutive scores at or above the threshold needed to flag.
    pub persistence: u32,
    /// Event time, in milliseconds, the risk must have stayed at or above the threshold
    /// (from the first score of the streak) before a flag, on top of `persistence`.
    /// A device that reports every few minutes would otherwise flag on a short burst.
    #[serde(default)]
    pub hold_ms: i64,
    /// Once raised, a flag stays raised until the risk has stayed below the threshold
    /// for this much event time (milliseconds), so a risk that dips under the threshold
    /// for a score or two does not end one flag and raise another. 0 (and artefacts
    /// written before it existed): the flag drops with the first score below.
    #[serde(default)]
    pub release_ms: i64,
    /// A raised flag is a prediction for this much event time (milliseconds, the
    /// model's horizon); once that has passed with the flag still up, the prediction has
    /// expired: the flag goes down for one score and is raised again by the flag rule
    /// if it still holds, a new flag episode (see `scorer::latch`). 0 (and artefacts
    /// written before it existed, validated without it): flags never expire.
    #[serde(default)]
    pub expire_ms: i64,
    /// When set, the component is also flagged while its fault codes say so, whatever
    /// the risk ([`FaultRule`]): training keeps it where it catches more validation
    /// failures within the precision target and the alert budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_rule: Option<FaultRule>,
    /// How the threshold was chosen: `target_precision`, `max_f1` or `max_f1_training`.
    pub threshold_rule: String,
    /// Validation metrics at the threshold, when the component was trained.
    pub metrics: Option<ComponentMetrics>,
    /// Why no model was trained for this component (too few positives, ...).
    pub skipped_reason: Option<String>,
    /// Predicted lead time by risk, from the validation period: for rows at or above
    /// the threshold whose component did fail within the horizon, the median time to
    /// that failure, in up to [`LEAD_TIME_BINS`] bins of equal row count ordered by
    /// risk. Empty when too few such rows (fewer than [`MIN_LEAD_TIME_ROWS`]) or in an
    /// artefact trained before lead times existed.
    #[serde(default)]
    pub lead_time: Vec<LeadTimeBin>,
}

/// Most bins of [`ComponentModel::lead_time`].
pub const LEAD_TIME_BINS: usize = 3;
/// Fewest flagged-and-failed validation rows per lead-time bin.
pub const MIN_LEAD_TIME_ROWS: usize = 8;

/// One risk band of a component's lead-time estimate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeadTimeBin {
    /// The band starts at this risk (the first band at the threshold) and ends where
    /// the next begins.
    pub min_risk: f64,
    /// Median time from a row in this band to the failure that followed, in days.
    pub median_days: f64,
    /// 25th percentile of that time, in days: a cautious planning figure.
    pub p25_days: f64,
    /// Validation rows the band was measured on.
    pub rows: usize,
}

/// The lead-time bins of `(risk, days to failure)` pairs of rows at or above the
/// threshold that failed within the horizon: bins of equal count by risk, at least
/// [`MIN_LEAD_TIME_ROWS`] each, at most [`LEAD_TIME_BINS`].
pub fn lead_time_bins(threshold: f64, mut rows: Vec<(f64, f64)>) -> Vec<LeadTimeBin> {
    rows.retain(|(r, d)| r.is_finite() && d.is_finite() && *r >= threshold && *d >= 0.0);
    let n_bins = (rows.len() / MIN_LEAD_TIME_ROWS).min(LEAD_TIME_BINS);
    if n_bins == 0 {
        return Vec::new();
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    (0..n_bins)
        .map(|b| {
            let (from, to) = (b * rows.len() / n_bins, (b + 1) * rows.len() / n_bins);
            let mut days: Vec<f64> = rows[from..to].iter().map(|r| r.1).collect();
            days.sort_by(f64::total_cmp);
            // A bin holds at least MIN_LEAD_TIME_ROWS rows, so it is never empty.
            let at = |q| crate::eval::percentile(&days, q).unwrap_or(f64::NAN);
            LeadTimeBin {
                min_risk: if b == 0 { threshold } else { rows[from].0 },
                median_days: at(0.5),
                p25_days: at(0.25),
                rows: to - from,
            }
        })
        .collect()
}

fn default_family() -> String {
    FAMILY_LOGISTIC.to_owned()
}

fn one() -> f64 {
    1.0
}

/// Family name of the L2 logistic regression.
pub const FAMILY_LOGISTIC: &str = "logistic";
/// Family name of the bagged decision trees.
pub const FAMILY_TREES: &str = "bagged_trees";

/// One candidate family's validation result for a component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateMetrics {
    /// `logistic` or `bagged_trees`.
    pub family: String,
    /// Average precision on the rows that choose the family (the first half of the
    /// validation period when it has positives; see `selection_set`).
    pub selection_ap: f64,
    /// Average precision on the rows that choose the threshold and report metrics.
    pub validation_ap: f64,
    /// `validation_first_half`, `validation` or `training`.
    pub selection_set: String,
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
            && match self.family.as_str() {
                FAMILY_TREES => !self.trees.is_empty(),
                _ => !self.weights.is_empty(),
            }
    }

    /// The model's log-odds for standardised features `z` (before calibration).
    pub fn logit(&self, z: &[f64]) -> f64 {
        if self.family == FAMILY_TREES {
            self.intercept + crate::trees::forest_logit(&self.trees, z)
        } else {
            self.intercept + self.weights.iter().zip(z).map(|(w, z)| w * z).sum::<f64>()
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
        let logit = if self.family == FAMILY_TREES {
            self.intercept + crate::trees::contributions(&self.trees, z, contrib)
        } else {
            // The same products, summed in the same order, as `logit`.
            let mut sum = -0.0f64;
            for ((out, w), z) in contrib.iter_mut().zip(&self.weights).zip(z) {
                *out = w * z;
                sum += *out;
            }
            self.intercept + sum
        };
        sigmoid(self.calibration_a * logit + self.calibration_b)
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

/// A fault-code rule read from a component's fault features, as the after-sales
/// catalogue rule (and `eval`'s baseline) reads the codes: it fires while a major or
/// critical code of the component was raised within about the last 7 days
/// (`fault.{c}.major_count_7d`, a count decaying with a 7-day time constant, at least
/// `e^-1`), or two or more of its codes within a few days (`fault.{c}.count_7d` at
/// least 1.5), and a code came after the component's last repair
/// (`fault.{c}.hours_since` under `fault.{c}.hours_since_repair`, or no repair seen
/// within the cap): the codes of the failure a repair fixed decay for weeks and
/// are not a new wear. Rules trained now also need the last code to be recent
/// (`recent_hours`). Read from the feature vector, it is the same in training,
/// evaluation and the live pipeline.
///
/// `months` limits the rule to calendar months (UTC) of the score's event time: a code
/// can be precise in one season and early in another (an air conditioner's
/// discharge-temperature code comes weeks before a leak fails while it heats, days
/// before while it cools). Training sets it only where the whole-year rule was not
/// chosen on validation ([`crate::train`](mod@crate::train); "A seasonal fault-code
/// rule" in docs/models.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Index of `fault.{component}.count_7d` in the feature schema.
    pub count_7d: usize,
    /// Index of `fault.{component}.major_count_7d` in the feature schema.
    pub major_count_7d: usize,
    /// Index of `fault.{component}.hours_since` (since its last code).
    pub hours_since: usize,
    /// Index of `fault.{component}.hours_since_repair` in the feature schema.
    pub hours_since_repair: usize,
    /// The calendar months the rule is on; every month when absent (artefacts written
    /// before it existed, and every rule validated on the whole year).
    #[serde(default, skip_serializing_if = "MonthSet::is_all")]
    pub months: MonthSet,
    /// When set, the rule fires only while the component's last code is younger than
    /// this many hours (`fault.{c}.hours_since`), so a flag it raised drops about
    /// `recent_hours` plus the release time after the last code, and a code weeks later
    /// raises a new one. Absent in artefacts written before it existed: their rule
    /// keeps firing while the decayed counts stay up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_hours: Option<u32>,
}

/// A set of calendar months (1 = January), serialised as the sorted list of its
/// month numbers. The default is every month.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MonthSet(u16);

impl std::fmt::Debug for MonthSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MonthSet({self})")
    }
}

impl MonthSet {
    const ALL_BITS: u16 = (1 << 12) - 1;
    /// Every month.
    pub const ALL: MonthSet = MonthSet(Self::ALL_BITS);
    /// No month.
    pub const NONE: MonthSet = MonthSet(0);

    /// The set of `months` (1-12); other numbers are ignored.
    pub fn of(months: impl IntoIterator<Item = u8>) -> MonthSet {
        MonthSet(
            months
                .into_iter()
                .filter(|m| (1..=12).contains(m))
                .fold(0, |bits, m| bits | 1 << (m - 1)),
        )
    }

    /// Whether `month` (1-12) is in the set.
    pub fn contains(self, month: u8) -> bool {
        (1..=12).contains(&month) && self.0 & (1 << (month - 1)) != 0
    }

    /// Whether the set holds every month.
    pub fn is_all(&self) -> bool {
        self.0 == Self::ALL_BITS
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The months in the set, ascending.
    pub fn months(self) -> impl Iterator<Item = u8> {
        (1..=12).filter(move |&m| self.contains(m))
    }

    /// The calendar month (1-12, UTC) of `ts_ms`, epoch milliseconds; 0 when out of
    /// chrono's range (no set contains it).
    pub fn month_of(ts_ms: i64) -> u8 {
        use chrono::Datelike;
        chrono::DateTime::from_timestamp_millis(ts_ms).map_or(0, |t| t.month() as u8)
    }
}

impl Default for MonthSet {
    fn default() -> Self {
        MonthSet::ALL
    }
}

impl std::fmt::Display for MonthSet {
    /// `Jun-Nov` style ranges, comma separated; `none` when empty.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        if self.is_empty() {
            return f.write_str("none");
        }
        let months: Vec<u8> = self.months().collect();
        let mut first = true;
        let mut k = 0;
        while k < months.len() {
            let start = months[k];
            while k + 1 < months.len() && months[k + 1] == months[k] + 1 {
                k += 1;
            }
            let end = months[k];
            if !first {
                f.write_str(",")?;
            }
            first = false;
            let name = |m: u8| NAMES[usize::from(m - 1)];
            if start == end {
                f.write_str(name(start))?;
            } else {
                write!(f, "{}-{}", name(start), name(end))?;
            }
            k += 1;
        }
        Ok(())
    }
}

impl Serialize for MonthSet {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.months())
    }
}

impl<'de> Deserialize<'de> for MonthSet {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let months = Vec::<u8>::deserialize(deserializer)?;
        if let Some(bad) = months.iter().find(|m| !(1..=12).contains(*m)) {
            return Err(serde::de::Error::custom(format!(
                "month {bad} is not a calendar month (1-12)"
            )));
        }
        Ok(MonthSet::of(months))
    }
}

impl FaultRule {
    /// `major_count_7d` at or above this: a major or critical code within 7 days.
    pub const MAJOR_MIN: f64 = 0.367_879_441_171_442_33;
    /// `count_7d` at or above this: two codes within about 5 days (or more, longer).
    pub const COUNT_MIN: f64 = 1.5;
    /// [`FaultRule::recent_hours`] of the rules training builds: 4 days. With the
    /// 3-day release of a flag (`release_ms`), a code holds a flag up for about a week,
    /// the window of `eval`'s catalogue baseline. Without it, codes every few days kept
    /// the decayed counts up for weeks: one flag raised a month before a failure stayed
    /// up through it and counted as a false alarm and a miss (docs/models.md).
    pub const RECENT_HOURS: u32 = 96;

    /// The rule of `component` in a feature schema, when it has fault features.
    pub fn for_component(schema: &[String], component: &str) -> Option<FaultRule> {
        let find = |what: &str| {
            let name = format!("fault.{component}.{what}");
            schema.iter().position(|n| *n == name)
        };
        Some(FaultRule {
            count_7d: find("count_7d")?,
            major_count_7d: find("major_count_7d")?,
            hours_since: find("hours_since")?,
            hours_since_repair: find("hours_since_repair")?,
            months: MonthSet::ALL,
            recent_hours: Some(Self::RECENT_HOURS),
        })
    }

    /// Whether the rule fires at event time `ts_ms` on the raw feature vector `raw`:
    /// [`FaultRule::fires`] in one of its `months`.
    pub fn fires_at(&self, ts_ms: i64, raw: &[f64]) -> bool {
        self.fires(raw) && (self.months.is_all() || self.months.contains(MonthSet::month_of(ts_ms)))
    }

    /// Whether the rule fires on the raw (unstandardised) feature vector `raw`.
    pub fn fires(&self, raw: &[f64]) -> bool {
        self.fires_with(|i| raw.get(i).copied())
    }

    /// Whether the rule fires, reading feature `i` with `feature(i)`.
    pub fn fires_with(&self, feature: impl Fn(usize) -> Option<f64>) -> bool {
        let codes = feature(self.major_count_7d).is_some_and(|v| v >= Self::MAJOR_MIN)
            || feature(self.count_7d).is_some_and(|v| v >= Self::COUNT_MIN);
        if !codes {
            return false;
        }
        if let Some(hours) = self.recent_hours {
            if !feature(self.hours_since).is_some_and(|h| h < f64::from(hours)) {
                return false;
            }
        }
        // A component never seen repaired (NaN), or not within the cap: no old failure's
        // codes left in the counts.
        let since_repair = feature(self.hours_since_repair).unwrap_or(f64::NAN);
        if since_repair.is_nan() || since_repair >= crate::features::HOURS_SINCE_CAP {
            return true;
        }
        feature(self.hours_since).is_some_and(|h| h < since_repair)
    }

    fn max_index(&self) -> usize {
        self.count_7d
            .max(self.major_count_7d)
            .max(self.hours_since)
            .max(self.hours_since_repair)
    }
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

/// What a model was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Devices of this type in the history.
    pub devices: u64,
    /// Feature rows sampled for this type (before exclusions).
    pub rows: u64,
    /// Rows in the training period.
    pub train_rows: u64,
    /// Rows in the validation period.
    pub validation_rows: u64,
    /// Positive rows per component in the training period.
    pub positives: BTreeMap<String, u64>,
    /// First and last message time of the whole history.
    pub time_range: (Timestamp, Timestamp),
    /// Rows at or before this time train; later rows validate.
    pub split_ts: Timestamp,
    /// Lines in `telemetry.jsonl`.
    pub history_lines: u64,
    /// Lines of `telemetry.jsonl` that did not decode and were skipped.
    pub rejected_lines: u64,
    /// Skipped lines by rejection reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Lines of `events.jsonl` that were unusable and skipped.
    pub rejected_events: u64,
    /// The parameters used.
    pub params: TrainParams,
    /// What the labels were: their source and the failures and no-fault-found checks
    /// per component of this type's devices (absent in files written before the
    /// feedback loop: empty).
    #[serde(default)]
    pub labels: LabelSummary,
}

/// The labels a model was trained on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelSummary {
    /// `history` (a history directory's `events.jsonl`) or `store` (ticket outcomes,
    /// `fixahead train --from-store`).
    pub source: String,
    /// Failure events per component (before any test period).
    pub failures: BTreeMap<String, u64>,
    /// No-fault-found checks per component.
    pub no_fault_found: BTreeMap<String, u64>,
    /// Feature rows per component (training and validation) that a no-fault-found
    /// check labelled negative; the training ones are in every fit.
    pub no_fault_found_rows: BTreeMap<String, u64>,
}

impl ModelArtifact {
    /// Whether the model was trained on the features `profile` derives today: the
    /// [`crate::Scorer`] scores a type only with such a model. A profile that gained or
    /// lost a channel, a ratio channel or a component since needs a new model.
    pub fn fits(&self, profile: &domain::Profile) -> bool {
        self.feature_schema.as_slice() == crate::FeatureSchema::for_profile(profile).names()
    }

    /// Checks internal consistency: vector lengths, finite numbers, a safe version name.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "format_version {} is not supported (expected {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if !is_safe_name(&self.version) {
            return Err(format!(
                "version {:?} is not a safe file name",
                self.version
            ));
        }
        if !is_safe_name(&self.device_type) {
            return Err(format!(
                "device_type {:?} is not a safe name",
                self.device_type
            ));
        }
        let n = self.feature_schema.len();
        for (what, v) in [
            ("feature_mean", &self.feature_mean),
            ("feature_std", &self.feature_std),
            ("feature_p05", &self.feature_p05),
            ("feature_p95", &self.feature_p95),
        ] {
            if v.len() != n {
                return Err(format!("{what} has {} values for {n} features", v.len()));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(format!("{what} holds a non-finite value"));
            }
        }
        if self.feature_std.iter().any(|s| *s <= 0.0) {
            return Err("feature_std holds a non-positive value".into());
        }
        if let Some(b) = &self.drift_baseline {
            b.validate(n)?;
        }
        for c in &self.components {
            if !c.is_trained() {
                continue;
            }
            if c.family != FAMILY_LOGISTIC && c.family != FAMILY_TREES {
                return Err(format!(
                    "component {} has unknown model family {:?}",
                    c.component, c.family
                ));
            }
            if c.family == FAMILY_TREES {
                crate::trees::validate(&c.trees, n)
                    .map_err(|m| format!("component {}: {m}", c.component))?;
            }
            if c.fault_rule.is_some_and(|r| r.max_index() >= n) {
                return Err(format!(
                    "component {} has a fault rule on features beyond the {n} of its schema",
                    c.component
                ));
            }
            if c.family == FAMILY_LOGISTIC && c.weights.len() != n {
                return Err(format!(
                    "component {} has {} weights for {n} features",
                    c.component,
                    c.weights.len()
                ));
            }
            if c.weights
                .iter()
                .chain([
                    &c.intercept,
                    &c.threshold,
                    &c.calibration_a,
                    &c.calibration_b,
                ])
                .any(|x| !x.is_finite())
            {
                return Err(format!(
                    "component {} holds a non-finite number",
                    c.component
                ));
            }
        }
        Ok(())
    }

    /// Standardises a raw feature vector into `z` (unknown, i.e. `NaN`, features become 0).
    pub fn standardize(&self, raw: &[f64], z: &mut [f64]) {
        for (i, (out, x)) in z.iter_mut().zip(raw).enumerate() {
            let (Some(m), Some(s)) = (self.feature_mean.get(i), self.feature_std.get(i)) else {
                *out = 0.0;
                continue;
            };
            *out = if x.is_finite() { (x - m) / s } else { 0.0 };
        }
    }

    /// The content hash used in version names: FNV-1a 64 of the JSON with `version`
    /// and `created_at` blanked, as 8 hex digits.
    pub fn content_hash(&self) -> String {
        let mut copy = self.clone();
        copy.version.clear();
        copy.created_at.clear();
        let bytes = serde_json::to_vec(&copy).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{:08x}", h >> 32)
    }
}

/// `risk = sigmoid(x)`, numerically safe at both ends.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync,
/// rename over the target.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process *and* per call: two threads writing the same target must not
    // share (and rename) one temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable where the platform allows it.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Saves an artefact as `{model_dir}/{device_type}/{version}.json`, then makes it the
/// active version of its type. Returns the artefact's path.
pub fn save(artifact: &ModelArtifact, model_dir: &Path) -> Result<PathBuf> {
    let dir = model_dir.join(&artifact.device_type);
    let path = dir.join(format!("{}.json", artifact.version));
    artifact
        .validate()
        .map_err(|message| Error::InvalidArtifact {
            path: path.clone(),
            message,
        })?;
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let json = serde_json::to_vec_pretty(artifact).map_err(|e| Error::InvalidArtifact {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &json)?;
    activate(model_dir, &artifact.device_type, &artifact.version)?;
    Ok(path)
}

/// Makes an already saved version the active one of its device type (also a rollback).
pub fn activate(model_dir: &Path, device_type: &str, version: &str) -> Result<()> {
    let dir = model_dir.join(device_type);
    let path = dir.join(format!("{version}.json"));
    if !is_safe_name(device_type) || !is_safe_name(version) {
        return Err(Error::InvalidArtifact {
            path,
            message: "device type and version must be safe file names".into(),
        });
    }
    // Refuse to point ACTIVE at something that would not load.
    let artifact = load(&path)?;
    if artifact.device_type != device_type || artifact.version != version {
        return Err(Error::InvalidArtifact {
            path,
            message: format!(
                "file holds {}/{}, not {device_type}/{version}",
                artifact.device_type, artifact.version
            ),
        });
    }
    write_atomic(&dir.join(ACTIVE_FILE), format!("{version}\n").as_bytes())
}

/// Reads and validates one artefact file. A file of another [`FORMAT_VERSION`] is
/// refused with a message naming both versions, before its layout is interpreted.
pub fn load(path: &Path) -> Result<ModelArtifact> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    check_format_version(&bytes).map_err(|message| Error::InvalidArtifact {
        path: path.to_owned(),
        message,
    })?;
    let artifact: ModelArtifact =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidArtifact {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    artifact
        .validate()
        .map_err(|message| Error::InvalidArtifact {
            path: path.to_owned(),
            message,
        })?;
    Ok(artifact)
}

/// Reads only `format_version` and refuses any other than [`FORMAT_VERSION`].
fn check_format_version(bytes: &[u8]) -> std::result::Result<(), String> {
    #[derive(Deserialize)]
    struct Header {
        format_version: Option<serde_json::Value>,
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match header
        .format_version
        .as_ref()
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(FORMAT_VERSION) => Ok(()),
        Some(v) if v < u64::from(FORMAT_VERSION) => Err(format!(
            "model format_version {v} was written by an older fixahead and is not \
             supported by this build (format_version {FORMAT_VERSION}); retrain the model \
             with `fixahead train`"
        )),
        Some(v) => Err(format!(
            "model format_version {v} is newer than this build supports \
             (format_version {FORMAT_VERSION}); upgrade fixahead or activate an older model"
        )),
        None => Err(format!(
            "model file has no valid format_version (this build reads format_version \
             {FORMAT_VERSION}); retrain the model with `fixahead train`"
        )),
    }
}

/// The versions saved for a device type, oldest name first.
pub fn list_versions(model_dir: &Path, device_type: &str) -> Result<Vec<String>> {
    let dir = model_dir.join(device_type);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(v) = name.strip_suffix(".json") {
            if !name.starts_with('.') {
                out.push(v.to_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod lead_time_tests {
    use super::*;

    #[test]
    fn bins_split_by_risk_and_give_each_band_its_median() {
        // 24 flagged rows that failed: higher risk, sooner failure.
        let rows: Vec<(f64, f64)> = (0..24)
            .map(|i| (0.6 + 0.015 * f64::from(i), 12.0 - 0.5 * f64::from(i)))
            .chain([(0.4, 1.0), (f64::NAN, 3.0)]) // below the threshold, broken: ignored
            .collect();
        let bins = lead_time_bins(0.6, rows);
        assert_eq!(bins.len(), 3);
        assert_eq!(bins.iter().map(|b| b.rows).sum::<usize>(), 24);
        assert_eq!(bins[0].min_risk, 0.6);
        assert!(
            bins[0].median_days > bins[1].median_days && bins[1].median_days > bins[2].median_days
        );
        // The first band: rows 0..8, days 12.0 down to 8.5, median 10.25.
        assert!((bins[0].median_days - 10.25).abs() < 1e-9, "{bins:?}");
        assert!(bins[0].p25_days <= bins[0].median_days);

        let model = ComponentModel {
            threshold: 0.6,
            lead_time: bins.clone(),
            ..serde_json::from_value::<ComponentModel>(serde_json::json!({
                "component": "c", "weights": [], "intercept": 0.0, "threshold": 0.6,
                "persistence": 1, "threshold_rule": "x", "metrics": null, "skipped_reason": null
            }))
            .unwrap()
        };
        assert_eq!(model.lead_time_days(0.5), None, "below the threshold");
        assert_eq!(model.lead_time_days(0.6), Some(bins[0].median_days));
        assert_eq!(model.lead_time_days(0.99), Some(bins[2].median_days));
        assert!(
            lead_time_bins(0.6, vec![(0.7, 3.0); 7]).is_empty(),
            "too few rows"
        );
        assert_eq!(lead_time_bins(0.6, vec![(0.7, 3.0); 9]).len(), 1);
    }
}

#[cfg(test)]
mod fault_rule_tests {
    use super::FaultRule;

    #[test]
    fn the_fault_code_rule_reads_codes_since_the_last_repair() {
        let schema: Vec<String> = [
            "x.level",
            "fault.pump.count_7d",
            "fault.pump.major_count_7d",
            "fault.pump.hours_since",
            "fault.pump.hours_since_repair",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(FaultRule::for_component(&schema, "fan"), None);
        let rule = FaultRule::for_component(&schema, "pump").unwrap();
        assert_eq!(
            rule,
            FaultRule {
                count_7d: 1,
                major_count_7d: 2,
                hours_since: 3,
                hours_since_repair: 4,
                months: super::MonthSet::ALL,
                recent_hours: Some(96),
            }
        );
        // An artefact written before `recent_hours`: the decayed counts alone decide.
        let legacy = FaultRule {
            recent_hours: None,
            ..rule
        };
        assert!(
            legacy.fires(&[0.0, 1.0, 0.37, 160.0, 720.0]),
            "a major code a week ago"
        );
        assert!(
            !legacy.fires(&[0.0, 1.0, 0.36, 170.0, 720.0]),
            "older than a week"
        );
        // Codes every five days keep the decayed count up for weeks; the recency ends
        // the rule's flag 4 days after the last one, so a later code raises a new one.
        assert!(legacy.fires(&[0.0, 2.0, 0.6, 120.0, 720.0]));
        assert!(!rule.fires(&[0.0, 2.0, 0.6, 120.0, 720.0]));
        assert!(rule.fires(&[0.0, 2.0, 0.6, 95.0, 720.0]));
        let fires = |count: f64, major: f64, since: f64, since_repair: f64| {
            rule.fires(&[0.0, count, major, since, since_repair])
        };
        // Never repaired (NaN or the 720 h cap): the codes alone decide.
        assert!(fires(1.0, 1.0, 2.0, f64::NAN), "a fresh major code");
        assert!(fires(1.0, 0.6, 90.0, 720.0), "a major code 90 h ago");
        assert!(fires(1.6, 0.0, 1.0, 720.0), "two minor codes within days");
        assert!(
            !fires(1.4, 0.0, 1.0, 720.0),
            "one minor code and an old one"
        );
        // Repaired 200 h ago: the failure's own codes still count up, but no code came
        // since the repair, so the rule stays quiet until one does.
        assert!(!legacy.fires(&[0.0, 1.2, 1.2, 260.0, 200.0]));
        assert!(fires(1.2, 1.2, 10.0, 200.0));
        assert!(
            !fires(1.2, 1.2, 90.0, 80.0),
            "a recent code, but before the repair"
        );
        // Missing or NaN features never panic.
        assert!(!rule.fires(&[]));
        assert!(!fires(f64::NAN, f64::NAN, f64::NAN, f64::NAN));
    }

    #[test]
    fn a_seasonal_rule_fires_in_its_months_and_old_files_read_as_every_month() {
        use super::MonthSet;
        let months = MonthSet::of([6, 7, 8, 9, 10, 12]);
        assert_eq!(months.to_string(), "Jun-Oct,Dec");
        assert_eq!(MonthSet::of([1, 3, 4]).to_string(), "Jan,Mar-Apr");
        assert_eq!(MonthSet::NONE.to_string(), "none");
        assert!(MonthSet::default().is_all());
        assert_eq!(
            MonthSet::of([0, 13, 7]),
            MonthSet::of([7]),
            "out of range ignored"
        );
        assert_eq!(serde_json::to_string(&months).unwrap(), "[6,7,8,9,10,12]");
        let back: MonthSet = serde_json::from_str("[12,6,7,8,9,10]").unwrap();
        assert_eq!(back, months);
        let err = serde_json::from_str::<MonthSet>("[6,13]").unwrap_err();
        assert!(err.to_string().contains("month 13"), "{err}");

        // 2026-07-15 and 2026-01-15, UTC.
        let (july, january) = (1_784_073_600_000, 1_768_435_200_000);
        assert_eq!(MonthSet::month_of(july), 7);
        assert_eq!(MonthSet::month_of(january), 1);
        assert_eq!(MonthSet::month_of(i64::MAX), 0, "out of range: no month");
        let raw = [1.0, 1.0, 1.0, 2.0, f64::NAN];
        let whole_year = FaultRule {
            count_7d: 0,
            major_count_7d: 1,
            hours_since: 3,
            hours_since_repair: 4,
            months: MonthSet::ALL,
            recent_hours: Some(96),
        };
        let summer = FaultRule {
            months: MonthSet::of([6, 7, 8]),
            ..whole_year
        };
        assert!(whole_year.fires_at(january, &raw) && whole_year.fires_at(july, &raw));
        assert!(summer.fires_at(july, &raw));
        assert!(!summer.fires_at(january, &raw));

        // A rule written before `months` and `recent_hours` existed reads as every
        // month without recency; a written rule reads back the same.
        let old: FaultRule = serde_json::from_str(
            r#"{"count_7d":0,"major_count_7d":1,"hours_since":3,"hours_since_repair":4}"#,
        )
        .unwrap();
        assert_eq!(
            old,
            FaultRule {
                recent_hours: None,
                ..whole_year
            }
        );
        let json = serde_json::to_string(&summer).unwrap();
        assert!(json.contains(r#""months":[6,7,8]"#), "{json}");
        assert_eq!(serde_json::from_str::<FaultRule>(&json).unwrap(), summer);
        assert!(!serde_json::to_string(&whole_year)
            .unwrap()
            .contains("months"));
    }
}
