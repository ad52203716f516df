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
//!
//! The types of a file are in `component` ([`ComponentModel`], its [`Family`] and its
//! metrics), `names` (the closed sets of names a file spells: [`FamilyName`],
//! [`ThresholdRule`], [`CalibrationSet`], [`SelectionSet`]), `fault_rule` ([`FaultRule`],
//! [`MonthSet`]) and `lead_time` ([`LeadTimeBin`]); `store` writes, activates, reads and
//! lists the files.

mod component;
mod fault_rule;
mod lead_time;
mod names;
mod store;

use std::collections::BTreeMap;

use domain::Timestamp;
use serde::{Deserialize, Serialize};

pub use component::{CandidateMetrics, ComponentMetrics, ComponentModel, EventMetrics, Family};
pub use fault_rule::{FaultRule, MonthSet};
pub use lead_time::{lead_time_bins, LeadTimeBin, LEAD_TIME_BINS, MIN_LEAD_TIME_ROWS};
pub use names::{CalibrationSet, FamilyName, SelectionSet, ThresholdRule, UnknownName};
pub use store::{activate, list_versions, load, save};

use crate::train::TrainParams;
use store::is_safe_name;

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
            c.validate(n)?;
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
