//! One device type's artefact: standardisation and normal ranges from its training
//! rows, one model per component (labelled, fitted, chosen and calibrated), and what it
//! was trained on.

use std::collections::BTreeMap;

use domain::Timestamp;

use super::data::TypeRows;
use super::fit::{fit_component, fnv, mean_std, percentiles};
use super::label::{ComponentLabels, GroundTruth, Split};
use super::seasonal::{history_rule_rows, seasonal_months};
use super::select::{choose_and_calibrate, EvalRows};
use super::threshold::FlagRule;
use super::{TrainParams, TrainProgress};
use crate::artifact::{
    CalibrationSet, ComponentModel, Family, FaultRule, ModelArtifact, ThresholdRule,
    TrainingSummary, FORMAT_VERSION,
};
use crate::history::HistoryStats;
use crate::Result;

/// What every device type's training shares: the parameters, the time split and what
/// reading the data found.
pub(super) struct TrainContext<'a> {
    pub(super) params: &'a TrainParams,
    /// Rows at or before this time train (with their whole horizon); later rows validate.
    pub(super) split: Timestamp,
    pub(super) t_min: Timestamp,
    pub(super) t_max: Timestamp,
    pub(super) rejected_events: u64,
    pub(super) stats: &'a HistoryStats,
}

/// Trains the artefact of one device type from its sampled `rows`; `None` when no row
/// lies in the training period.
pub(super) fn train_type(
    ctx: &TrainContext<'_>,
    device_type: &str,
    rows: &TypeRows,
    truth: &GroundTruth<'_>,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<Option<ModelArtifact>> {
    let p = ctx.params;
    let d = rows.schema.len();
    let split_of = Split::of_rows(rows, ctx.split.0, p.horizon_ms);
    let train_idx: Vec<usize> = (0..rows.len())
        .filter(|&i| split_of[i] == Split::Train)
        .collect();
    if train_idx.is_empty() {
        return Ok(None);
    }

    // Standardisation and normal ranges from the training split (NaN = unknown, skipped).
    let (mean, std) = mean_std(rows, &train_idx, d);
    let (p05, p95) = percentiles(rows, &train_idx, d, &mean);

    let typed = TypeTraining {
        ctx,
        device_type,
        rows,
        split_of: &split_of,
        mean: &mean,
        std: &std,
    };
    let components = rows.schema.components().to_vec();
    let mut models = Vec::with_capacity(components.len());
    let mut positives_summary = BTreeMap::new();
    let mut nff_rows = BTreeMap::new();
    for component in &components {
        let labels = ComponentLabels::new(
            truth,
            component,
            rows,
            &train_idx,
            p.horizon_ms,
            ctx.t_max.0,
        );
        positives_summary.insert(component.clone(), labels.pos.len() as u64);
        if labels.checked_rows > 0 {
            nff_rows.insert(component.clone(), labels.checked_rows);
        }
        let model = typed.component_model(component, &labels);
        progress(TrainProgress::Component {
            device_type: device_type.to_owned(),
            component: component.clone(),
            outcome: match &model.skipped_reason {
                Some(r) => format!("skipped: {r}"),
                None => format!(
                    "trained ({}, threshold {:.3}, {})",
                    model.family, model.threshold, model.threshold_rule
                ),
            },
        });
        models.push(model);
    }

    let summary = TrainingSummary {
        devices: rows.devices.len() as u64,
        rows: rows.len() as u64,
        train_rows: train_idx.len() as u64,
        validation_rows: split_of.iter().filter(|s| **s == Split::Validation).count() as u64,
        positives: positives_summary,
        time_range: (ctx.t_min, ctx.t_max),
        split_ts: ctx.split,
        history_lines: ctx.stats.lines,
        rejected_lines: ctx.stats.rejected,
        rejected_by_reason: ctx.stats.rejected_by_reason.clone(),
        rejected_events: ctx.rejected_events,
        params: p.clone(),
        labels: truth.summary(device_type, nff_rows),
    };
    let now = chrono::Utc::now();
    let mut artifact = ModelArtifact {
        format_version: FORMAT_VERSION,
        version: String::new(),
        device_type: device_type.to_owned(),
        created_at: Timestamp::from(now).to_rfc3339(),
        horizon_ms: p.horizon_ms,
        feature_schema: rows.schema.names().to_vec(),
        feature_mean: mean,
        feature_std: std,
        feature_p05: p05,
        feature_p95: p95,
        components: models,
        training_summary: summary,
        drift_baseline: Some(crate::drift::DriftBaseline::from_rows(
            rows.schema.len(),
            train_idx.iter().map(|&i| rows.row(i)),
        )),
    };
    artifact.version = format!(
        "{device_type}-{}-{}",
        now.format("%Y%m%dT%H%M%SZ"),
        artifact.content_hash()
    );
    Ok(Some(artifact))
}

/// One device type's rows, split and standardisation: what each of its component
/// models is trained from.
struct TypeTraining<'a> {
    ctx: &'a TrainContext<'a>,
    device_type: &'a str,
    rows: &'a TypeRows,
    split_of: &'a [Split],
    mean: &'a [f64],
    std: &'a [f64],
}

impl TypeTraining<'_> {
    /// The model of `component` with its `labels`: skipped with the reason when it has
    /// too few positive or no negative training rows or the solver fails; otherwise both
    /// families fitted, the better chosen and calibrated, with its threshold.
    fn component_model(&self, component: &str, labels: &ComponentLabels) -> ComponentModel {
        let p = self.ctx.params;
        let (rows, split_of) = (self.rows, self.split_of);
        let ComponentLabels {
            labels,
            pos,
            neg,
            hard_neg,
            ..
        } = labels;
        let skip = |reason: String| ComponentModel {
            skipped_reason: Some(reason),
            ..untrained(component, p)
        };
        if (pos.len() as u64) < p.min_positives {
            return skip(format!(
                "too few positive training rows: {} (need {})",
                pos.len(),
                p.min_positives
            ));
        }
        if neg.is_empty() && hard_neg.is_empty() {
            return skip("no negative training rows".into());
        }
        let seed =
            p.seed ^ fnv(self.device_type.as_bytes()) ^ fnv(component.as_bytes()).rotate_left(17);
        let fit = match fit_component(rows, pos, neg, hard_neg, self.mean, self.std, p, seed) {
            Err(message) => return skip(format!("solver failed: {message}")),
            Ok(fit) => fit,
        };
        let all_neg: Vec<usize> = neg.iter().chain(hard_neg).copied().collect();
        let ev = EvalRows::new(
            rows, split_of, labels, pos, &all_neg, self.ctx, self.mean, self.std,
        );
        let fault_rule = FaultRule::for_component(rows.schema.names(), component);
        let flag_rules = FlagRule::candidates(p, fault_rule.is_some());
        // Counted only when the whole-year rule is not chosen.
        let seasonal = || {
            fault_rule.and_then(|rule| {
                seasonal_months(&history_rule_rows(rows, split_of, labels, rule), p)
            })
        };
        choose_and_calibrate(component, fit, &ev, p, &flag_rules, fault_rule, seasonal)
    }
}

/// A component model with nothing fitted yet: logistic family, identity calibration,
/// the training parameters' persistence and hold time, no threshold.
pub(super) fn untrained(component: &str, p: &TrainParams) -> ComponentModel {
    ComponentModel {
        component: component.to_owned(),
        family: Family::Logistic,
        weights: Vec::new(),
        intercept: 0.0,
        calibration_a: 1.0,
        calibration_b: 0.0,
        calibration_set: CalibrationSet::None,
        candidates: Vec::new(),
        threshold: 1.0,
        persistence: p.persistence,
        hold_ms: p.hold_ms,
        release_ms: p.release_ms.max(0),
        expire_ms: p.expire_ms(),
        fault_rule: None,
        threshold_rule: ThresholdRule::None,
        metrics: None,
        skipped_reason: None,
        lead_time: Vec::new(),
    }
}
