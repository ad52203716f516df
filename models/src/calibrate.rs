//! Platt scaling: a 1-D logistic regression of the label on a model's log-odds.
//!
//! `risk = sigmoid(a * logit + b)`, fitted by Newton's method on the log loss with
//! Platt's smoothed targets (`(N+ + 1) / (N+ + 2)` for positives, `1 / (N- + 2)` for
//! negatives), so a perfectly separated calibration set still gives finite `a` and `b`.
//! A slope that would come out below [`MIN_SLOPE`] (a model that ranks the calibration
//! rows no better than chance) is fixed at it and only `b` is fitted: the risks then
//! sit near the calibration set's base rate and keep the model's order.

use crate::artifact::sigmoid;

/// Smallest slope kept, so the calibrated risk never reverses the model's ranking.
pub(crate) const MIN_SLOPE: f64 = 1e-3;

/// Fits `(a, b)` on `(logit, label)` pairs. Returns the identity `(1, 0)` when there
/// is no positive or no negative row.
pub(crate) fn platt(rows: &[(f64, bool)]) -> (f64, f64) {
    let n_pos = rows.iter().filter(|r| r.1).count() as f64;
    let n_neg = rows.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return (1.0, 0.0);
    }
    let t_pos = (n_pos + 1.0) / (n_pos + 2.0);
    let t_neg = 1.0 / (n_neg + 2.0);
    let target = |y: bool| if y { t_pos } else { t_neg };
    let (mut a, mut b) = (1.0, 0.0);
    // Start b at the base rate's log-odds, a at 1: usually close already.
    let rate = t_pos * n_pos / rows.len() as f64 + t_neg * n_neg / rows.len() as f64;
    b += (rate / (1.0 - rate)).ln() - mean_logit(rows);
    for _ in 0..100 {
        // Gradient and Hessian of the mean log loss, with a tiny ridge for stability.
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for &(s, y) in rows {
            let p = sigmoid(a * s + b);
            let e = p - target(y);
            let w = (p * (1.0 - p)).max(1e-12);
            ga += e * s;
            gb += e;
            haa += w * s * s;
            hab += w * s;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if !(det.is_finite() && det > 0.0) {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        // Damp large steps; Newton on the log loss is otherwise well behaved.
        let scale = 1.0f64.min(5.0 / da.abs().max(db.abs()).max(1e-300));
        a -= scale * da;
        b -= scale * db;
        if da.abs().max(db.abs()) < 1e-9 {
            break;
        }
    }
    if !(a.is_finite() && b.is_finite()) {
        return (1.0, 0.0);
    }
    if a < MIN_SLOPE {
        a = MIN_SLOPE;
        b = fit_offset(rows, a, &target);
    }
    (a, b)
}

fn mean_logit(rows: &[(f64, bool)]) -> f64 {
    rows.iter().map(|r| r.0).sum::<f64>() / rows.len() as f64
}

/// Fits `b` alone for a fixed slope `a` (1-D Newton).
fn fit_offset(rows: &[(f64, bool)], a: f64, target: &dyn Fn(bool) -> f64) -> f64 {
    let mut b = 0.0;
    for _ in 0..100 {
        let (mut g, mut h) = (0.0, 1e-9);
        for &(s, y) in rows {
            let p = sigmoid(a * s + b);
            g += p - target(y);
            h += (p * (1.0 - p)).max(1e-12);
        }
        let step = (g / h).clamp(-5.0, 5.0);
        b -= step;
        if step.abs() < 1e-9 {
            break;
        }
    }
    if b.is_finite() {
        b
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_link_and_degrades_gracefully() {
        // Labels drawn deterministically with P(y) = sigmoid(0.5 * s - 2).
        let mut rows = Vec::new();
        for i in 0..4000 {
            let s = (i % 200) as f64 / 20.0 - 5.0;
            let p = sigmoid(0.5 * s - 2.0);
            // A low-discrepancy sequence stands in for random draws.
            let u = (i as f64 * 0.618_033_988_75).fract();
            rows.push((s, u < p));
        }
        let (a, b) = platt(&rows);
        assert!(
            (a - 0.5).abs() < 0.1 && (b + 2.0).abs() < 0.2,
            "a {a} b {b}"
        );
        assert_eq!(platt(&[(1.0, true), (2.0, true)]), (1.0, 0.0));
        assert_eq!(platt(&[]), (1.0, 0.0));
        // An inverted model keeps its order (a > 0) and lands near the base rate.
        let inverted: Vec<(f64, bool)> = (0..100).map(|i| (i as f64, i < 10)).collect();
        let (a, b) = platt(&inverted);
        assert!(a >= MIN_SLOPE, "{a}");
        let mid = sigmoid(a * 50.0 + b);
        assert!((mid - 0.1).abs() < 0.05, "{mid}");
        // Separable data gives finite numbers.
        let sep: Vec<(f64, bool)> = (0..100).map(|i| (i as f64, i >= 90)).collect();
        let (a, b) = platt(&sep);
        assert!(a.is_finite() && b.is_finite() && a > 0.0);
    }
}
