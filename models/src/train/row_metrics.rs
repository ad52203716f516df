//! Row-level metrics: how a component's scores rank its labelled rows (precision,
//! recall, average precision), and the row-level threshold rule they imply.

use std::collections::HashSet;

use crate::artifact::ComponentMetrics;

/// Chooses a threshold on `(score, label, device, failure_ts)` rows and measures it.
///
/// Rule: among thresholds whose precision (over rows scoring at least the threshold)
/// reaches `target` with at least one true positive, the one with the highest recall,
/// and of those the highest threshold (`target_precision`); otherwise the threshold with
/// the best F1 (`max_f1`).
pub(super) fn evaluate(
    rows: &[(f64, bool, u32, i64)],
    target: f64,
    fixed: Option<f64>,
) -> (f64, &'static str, ComponentMetrics) {
    let mut sorted: Vec<(f64, bool)> = rows.iter().map(|r| (r.0, r.1)).collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total_pos = sorted.iter().filter(|r| r.1).count() as f64;
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    let mut target_pick: Option<(f64, f64)> = None;
    let mut best_f1 = (f64::NEG_INFINITY, 1.0);
    let mut i = 0;
    while i < sorted.len() {
        let s = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == s {
            if sorted[i].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        let precision = tp / (tp + fp);
        let recall = if total_pos > 0.0 { tp / total_pos } else { 0.0 };
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        // Sweeping down, recall only grows: keep the highest threshold of each new
        // recall level, so ties in recall resolve to the more precise threshold.
        if tp >= 1.0 && precision >= target && target_pick.is_none_or(|(_, r)| recall > r) {
            target_pick = Some((s, recall));
        }
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        if f1 > best_f1.0 {
            best_f1 = (f1, s);
        }
    }
    let (threshold, rule) = match (fixed, target_pick) {
        (Some(t), _) => (t, "fixed"),
        (None, Some((s, _))) => (s, "target_precision"),
        (None, None) => (best_f1.1, "max_f1"),
    };
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut events: HashSet<(u32, i64)> = HashSet::new();
    let mut detected: HashSet<(u32, i64)> = HashSet::new();
    for &(s, y, dev, f) in rows {
        if y {
            events.insert((dev, f));
        }
        if s >= threshold {
            if y {
                tp += 1;
                detected.insert((dev, f));
            } else {
                fp += 1;
            }
        }
    }
    let positives = total_pos as u64;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, positives);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let metrics = ComponentMetrics {
        rows: rows.len() as u64,
        positives,
        base_rate: ratio(positives, rows.len() as u64),
        precision,
        recall,
        f1,
        average_precision: ap,
        mean_risk: if rows.is_empty() {
            0.0
        } else {
            rows.iter().map(|r| r.0).sum::<f64>() / rows.len() as f64
        },
        events: events.len() as u64,
        events_detected: detected.len() as u64,
        validation_events: None,
    };
    (threshold, rule, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_reaches_the_target_precision() {
        // Scores 0.9 (pos), 0.8 (pos), 0.7 (neg), 0.6 (pos), 0.5 (neg), 0.1 (neg) ...
        let rows: Vec<(f64, bool, u32, i64)> = [
            (0.9, true),
            (0.8, true),
            (0.7, false),
            (0.6, true),
            (0.5, false),
            (0.1, false),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(s, y))| (s, y, i as u32, 0))
        .collect();
        let (t, rule, m) = evaluate(&rows, 0.7, None);
        assert_eq!(rule, "target_precision");
        assert_eq!(t, 0.6, "precision at 0.6 is 3/4");
        assert!((m.precision - 0.75).abs() < 1e-12 && (m.recall - 1.0).abs() < 1e-12);
        let ap = 1.0 / 3.0 + 1.0 / 3.0 + 0.75 / 3.0;
        assert!((m.average_precision - ap).abs() < 1e-12);
        let (t, _, _) = evaluate(&rows, 0.5, None);
        assert_eq!(t, 0.6, "full recall already at 0.6: no lower threshold");
        let (_, rule, _) = evaluate(&rows, 1.0, None);
        assert_eq!(rule, "target_precision");
        let none: Vec<_> = rows.iter().map(|r| (r.0, false, r.2, 0)).collect();
        let (_, rule, _) = evaluate(&none, 0.5, None);
        assert_eq!(rule, "max_f1");
    }
}
