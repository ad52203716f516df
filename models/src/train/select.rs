//! Family choice and calibration: the candidate families of one component are measured
//! on the first half of the validation period, calibrated there (Platt scaling), and
//! the one whose flags catch the most validation failures within the precision target
//! and the alert budget is kept, with its threshold chosen at event level.

use domain::Timestamp;

use super::data::TypeRows;
use super::fit::Fitted;
use super::label::Split;
use super::model::{untrained, TrainContext};
use super::row_metrics::evaluate;
use super::seasonal::with_seasonal_rule;
use super::threshold::{event_threshold_and_rule, EventRow, FlagRule};
use super::TrainParams;
use crate::artifact::{
    sigmoid, CalibrationSet, CandidateMetrics, ComponentMetrics, ComponentModel, Family, FaultRule,
    MonthSet, SelectionSet, ThresholdRule,
};

/// One labelled row to evaluate on: `(row index, label, device, failure time)`.
type LabelledRow = (usize, bool, u32, i64);

/// A scored labelled row: `(score, label, device, failure time)`.
type ScoredRow = (f64, bool, u32, i64);

/// The labelled rows a component is evaluated on, split by time: the validation
/// period's first half calibrates and chooses the family, its second half chooses the
/// threshold and reports the metrics (never shuffled). Training rows are the fallback.
pub(super) struct EvalRows<'a> {
    rows: &'a TypeRows,
    mean: &'a [f64],
    std: &'a [f64],
    first_half: Vec<LabelledRow>,
    second_half: Vec<LabelledRow>,
    training: Vec<LabelledRow>,
}

impl<'a> EvalRows<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        rows: &'a TypeRows,
        split_of: &[Split],
        labels: &[Option<(bool, i64)>],
        pos: &[usize],
        neg: &[usize],
        ctx: &TrainContext<'_>,
        mean: &'a [f64],
        std: &'a [f64],
    ) -> EvalRows<'a> {
        let mid = ctx.split.0 + ctx.t_max.0.saturating_sub(ctx.split.0) / 2;
        let mut first_half = Vec::new();
        let mut second_half = Vec::new();
        for (i, s) in split_of.iter().enumerate() {
            if *s != Split::Validation {
                continue;
            }
            if let Some((y, f)) = labels[i] {
                let r = (i, y, rows.dev[i], f);
                if rows.ts[i] <= mid {
                    first_half.push(r);
                } else {
                    second_half.push(r);
                }
            }
        }
        let training = pos
            .iter()
            .chain(neg)
            .filter_map(|&i| labels[i].map(|(y, f)| (i, y, rows.dev[i], f)))
            .collect();
        EvalRows {
            rows,
            mean,
            std,
            first_half,
            second_half,
            training,
        }
    }

    /// `(logit, label, device, failure time)` of `model` on `set`.
    fn logits(&self, model: &ComponentModel, set: &[LabelledRow]) -> Vec<ScoredRow> {
        let mut z = vec![0.0; self.mean.len()];
        set.iter()
            .map(|&(i, y, dev, f)| {
                for (j, (out, &x)) in z.iter_mut().zip(self.rows.row(i)).enumerate() {
                    let x = f64::from(x);
                    *out = if x.is_finite() {
                        (x - self.mean[j]) / self.std[j]
                    } else {
                        0.0
                    };
                }
                (model.logit(&z), y, dev, f)
            })
            .collect()
    }
}

fn has_both(set: &[LabelledRow]) -> bool {
    set.iter().any(|r| r.1) && set.iter().any(|r| !r.1)
}

fn any_pos(set: &[LabelledRow]) -> bool {
    set.iter().any(|r| r.1)
}

/// Measures the candidate families' average precision on the first half of validation,
/// calibrates them there (Platt scaling), picks the one whose flags catch the most
/// validation failures within the precision target and alert budget (then the higher
/// AP), checks the signal on the second half, and chooses the threshold at event level
/// on the whole validation period.
pub(super) fn choose_and_calibrate(
    component: &str,
    fit: Fitted,
    ev: &EvalRows<'_>,
    p: &TrainParams,
    flag_rules: &[FlagRule],
    fault_rule: Option<FaultRule>,
    seasonal: impl FnOnce() -> Option<MonthSet>,
) -> ComponentModel {
    let selector = Selector {
        ev,
        p,
        flag_rules,
        fault_rule,
    };
    let mut candidates = candidates(component, fit, p);
    let all_validation: Vec<LabelledRow> = ev
        .first_half
        .iter()
        .chain(&ev.second_half)
        .copied()
        .collect();
    let (selection, selection_name): (&[LabelledRow], SelectionSet) = if has_both(&ev.first_half) {
        (&ev.first_half, SelectionSet::ValidationFirstHalf)
    } else if any_pos(&all_validation) {
        (&all_validation, SelectionSet::Validation)
    } else {
        (&ev.training, SelectionSet::Training)
    };
    let holdout: &[LabelledRow] = if any_pos(&ev.second_half) {
        &ev.second_half
    } else if any_pos(&all_validation) {
        &all_validation
    } else {
        &ev.training
    };
    let (results, mut best) = selector.measure(&candidates, selection, selection_name, holdout);
    let selection_base =
        selection.iter().filter(|r| r.1).count() as f64 / selection.len().max(1) as f64;
    if any_pos(&all_validation) {
        if let Some(k) =
            selector.best_by_events(&candidates, &results, &all_validation, selection_base)
        {
            best = k;
        }
    }
    let mut model = candidates.swap_remove(best);
    // A model that ranks the selection rows barely better than chance only floods
    // planners with false alarms: leave the component without a model, and say why.
    let best_ap = results.get(best).map_or(0.0, |r| r.selection_ap);
    if selection_base > 0.0 && best_ap < p.min_lift * selection_base {
        model.skipped_reason = Some(format!(
            "no signal: best average precision {best_ap:.3} on the {selection_name} is under {} x its base rate {selection_base:.3}",
            p.min_lift
        ));
        model.candidates = results;
        return model;
    }
    let mut model = selector.calibrate(model);
    let scored = selector.risks(&model, holdout);
    // Row-level ranking quality on the threshold half (the no-signal rule, AP, base rate).
    let (_, _, row_metrics) = evaluate(&scored, p.target_precision, None);
    model.candidates = results;
    // The signal must hold on the threshold half too: a model that ranks those rows no
    // better than chance gets a threshold from the best-F1 fallback that flags nearly
    // every device.
    if row_metrics.base_rate > 0.0
        && row_metrics.average_precision < p.min_lift * row_metrics.base_rate
    {
        model.skipped_reason = Some(format!(
            "no signal: average precision {:.3} on the threshold half of validation is under {} x its base rate {:.3}",
            row_metrics.average_precision, p.min_lift, row_metrics.base_rate
        ));
        model.metrics = Some(row_metrics);
        return model;
    }
    // The threshold is chosen at event level, as planners count: flag episodes against
    // the failures that followed, over the whole validation period (both halves: a
    // half holds only a handful of failures per component). Calibration is monotone, so
    // fitting it on the first half does not bias which rows rank above a threshold.
    let (event_set, on_training_rows): (&[LabelledRow], bool) = if any_pos(&all_validation) {
        (&all_validation, false)
    } else {
        (&ev.training, true)
    };
    selector.with_threshold(
        model,
        (event_set, on_training_rows),
        (&scored, row_metrics),
        seasonal,
    )
}

/// The candidate models of a component: the logistic regression, and the bagged trees
/// when they were fitted.
fn candidates(component: &str, fit: Fitted, p: &TrainParams) -> Vec<ComponentModel> {
    let logistic = ComponentModel {
        weights: fit.weights,
        intercept: fit.intercept,
        ..untrained(component, p)
    };
    let mut candidates = vec![logistic.clone()];
    if !fit.trees.is_empty() {
        candidates.push(ComponentModel {
            family: Family::BaggedTrees { trees: fit.trees },
            intercept: fit.correction,
            ..logistic
        });
    }
    candidates
}

/// What choosing a component's family and threshold reads besides the candidates.
struct Selector<'a> {
    ev: &'a EvalRows<'a>,
    p: &'a TrainParams,
    flag_rules: &'a [FlagRule],
    fault_rule: Option<FaultRule>,
}

impl Selector<'_> {
    /// Each candidate's average precision on the `selection` and `holdout` rows, and
    /// the one with the best on the selection rows (the first of equals).
    fn measure(
        &self,
        candidates: &[ComponentModel],
        selection: &[LabelledRow],
        selection_name: SelectionSet,
        holdout: &[LabelledRow],
    ) -> (Vec<CandidateMetrics>, usize) {
        let ap = |scored: &[ScoredRow]| {
            evaluate(scored, self.p.target_precision, None)
                .2
                .average_precision
        };
        let mut results = Vec::new();
        let mut best = 0usize;
        for (k, c) in candidates.iter().enumerate() {
            let selection_ap = ap(&self.ev.logits(c, selection));
            let holdout_logits = self.ev.logits(c, holdout);
            let validation_ap = ap(&holdout_logits);
            if selection_ap
                > results
                    .get(best)
                    .map_or(f64::NEG_INFINITY, |r: &CandidateMetrics| r.selection_ap)
            {
                best = k;
            }
            results.push(CandidateMetrics {
                family: c.family.name(),
                selection_ap,
                validation_ap,
                selection_set: selection_name,
            });
        }
        (results, best)
    }

    /// The family is chosen by what planners see: every candidate with a signal is
    /// calibrated and its flags are replayed over the validation period; the one that
    /// catches the most failures within the precision target and the alert budget wins,
    /// then the higher selection AP. (Average precision alone picked a logistic model
    /// for the air-conditioner compressor that caught 6 of 29 validation failures where
    /// the trees caught 12, at no false alarm.) `None` when no candidate with a signal
    /// gets a threshold.
    fn best_by_events(
        &self,
        candidates: &[ComponentModel],
        results: &[CandidateMetrics],
        all_validation: &[LabelledRow],
        selection_base: f64,
    ) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut best_key: Option<(bool, f64, f64)> = None;
        for (k, c) in candidates.iter().enumerate() {
            let selection_ap = results[k].selection_ap;
            if selection_ap < self.p.min_lift * selection_base {
                continue;
            }
            let cal = self.calibrate(c.clone());
            if let Some((_, _, rule, m)) = event_threshold_and_rule(
                &self.event_rows(&cal, all_validation),
                self.p,
                self.flag_rules,
            ) {
                let key = (rule == ThresholdRule::EventTarget, m.recall, selection_ap);
                if best_key.is_none_or(|b| key > b) {
                    best_key = Some(key);
                    best = Some(k);
                }
            }
        }
        best
    }

    /// `model` with Platt scaling fitted on the first half of validation, when it has
    /// both classes (otherwise unchanged: identity calibration).
    fn calibrate(&self, mut model: ComponentModel) -> ComponentModel {
        let ev = self.ev;
        if has_both(&ev.first_half) {
            let calib: Vec<(f64, bool)> = ev
                .logits(&model, &ev.first_half)
                .iter()
                .map(|r| (r.0, r.1))
                .collect();
            let (a, b) = crate::calibrate::platt(&calib);
            model.calibration_a = a;
            model.calibration_b = b;
            model.calibration_set = CalibrationSet::ValidationFirstHalf;
        }
        model
    }

    /// `(calibrated risk, label, device, failure time)` of `model` on `set`.
    fn risks(&self, model: &ComponentModel, set: &[LabelledRow]) -> Vec<ScoredRow> {
        self.ev
            .logits(model, set)
            .into_iter()
            .map(|(s, y, dev, f)| {
                (
                    sigmoid(model.calibration_a * s + model.calibration_b),
                    y,
                    dev,
                    f,
                )
            })
            .collect()
    }

    /// `set` as event rows with `model`'s calibrated risk and the fault-code rule's
    /// verdict.
    fn event_rows(&self, model: &ComponentModel, set: &[LabelledRow]) -> Vec<EventRow> {
        let rows = self.ev.rows;
        self.ev
            .logits(model, set)
            .into_iter()
            .zip(set)
            .map(|((s, y, dev, f), r)| EventRow {
                ts: rows.ts[r.0],
                dev,
                seq: rows.seq[r.0],
                month: MonthSet::month_of(rows.ts[r.0]),
                positive: y,
                failure_ts: f,
                risk: sigmoid(model.calibration_a * s + model.calibration_b),
                rule: self.fault_rule.is_some_and(|rule| {
                    let row = rows.row(r.0);
                    rule.fires_with(|i| row.get(i).map(|&x| f64::from(x)))
                }),
            })
            .collect()
    }

    /// The calibrated `model` with its flag rule and threshold chosen at event level on
    /// `event_set` (the training rows when `on_training_rows`), its lead-time
    /// bins and its metrics on the `scored` holdout rows (whose row-level metrics are
    /// `row_metrics`); skipped when no threshold catches a failure within the budget.
    fn with_threshold(
        &self,
        mut model: ComponentModel,
        (event_set, on_training_rows): (&[LabelledRow], bool),
        (scored, row_metrics): (&[ScoredRow], ComponentMetrics),
        seasonal: impl FnOnce() -> Option<MonthSet>,
    ) -> ComponentModel {
        let p = self.p;
        let event_rows = self.event_rows(&model, event_set);
        let lead_rows: Vec<(f64, f64)> = event_rows
            .iter()
            .filter(|r| r.positive)
            .map(|r| {
                (
                    r.risk,
                    (r.failure_ts - r.ts) as f64 / Timestamp::DAY_MS as f64,
                )
            })
            .collect();
        let chosen = with_seasonal_rule(
            &event_rows,
            p,
            self.flag_rules,
            event_threshold_and_rule(&event_rows, p, self.flag_rules),
            seasonal,
        );
        let Some((flag_rule, threshold, rule, events)) = chosen else {
            model.skipped_reason = Some(format!(
                "no usable threshold: none catches a failure in the validation period within the alert budget of {} false alarms per 1000 device-months",
                p.alert_budget
            ));
            model.metrics = Some(row_metrics);
            return model;
        };
        let (_, _, mut metrics) = evaluate(scored, p.target_precision, Some(threshold));
        metrics.validation_events = Some(events);
        model.threshold = threshold;
        model.persistence = flag_rule.persistence;
        model.hold_ms = flag_rule.hold_ms;
        model.fault_rule = self
            .fault_rule
            .filter(|_| flag_rule.fault_rule)
            .map(|rule| FaultRule {
                months: flag_rule.fault_months,
                ..rule
            });
        model.lead_time = crate::artifact::lead_time_bins(threshold, lead_rows);
        model.threshold_rule = if on_training_rows {
            rule.on_training_rows()
        } else {
            rule
        };
        model.metrics = Some(metrics);
        model
    }
}
