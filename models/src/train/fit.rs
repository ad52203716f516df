//! Fitting: standardisation and normal ranges from the training rows, and one
//! component's two candidate families (logistic regression, bagged trees) on an
//! undersampled sample of its training rows.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, Ix1};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::data::TypeRows;
use super::TrainParams;
use crate::trees::Tree;

/// FNV-1a 64 of `bytes`: mixes a device type and component into the fit's seed.
pub(super) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Mean and standard deviation per feature over the rows `idx` (unknown values are
/// skipped; a (near) constant feature gets standard deviation 1).
pub(super) fn mean_std(rows: &TypeRows, idx: &[usize], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sum = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    let mut cnt = vec![0u64; d];
    for &i in idx {
        for (j, &x) in rows.row(i).iter().enumerate() {
            if x.is_finite() {
                let x = f64::from(x);
                sum[j] += x;
                sq[j] += x * x;
                cnt[j] += 1;
            }
        }
    }
    let mut mean = vec![0.0; d];
    let mut std = vec![1.0; d];
    for j in 0..d {
        if cnt[j] > 0 {
            let m = sum[j] / cnt[j] as f64;
            let var = (sq[j] / cnt[j] as f64 - m * m).max(0.0);
            mean[j] = m;
            let s = var.sqrt();
            // A (near) constant feature keeps std 1 so it standardises to ~0.
            if s > 1e-9 * m.abs().max(1.0) {
                std[j] = s;
            }
        }
    }
    (mean, std)
}

/// 5th and 95th percentiles per feature over at most 50,000 evenly spaced training rows.
pub(super) fn percentiles(
    rows: &TypeRows,
    idx: &[usize],
    d: usize,
    mean: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let step = idx.len().div_ceil(50_000).max(1);
    let mut p05 = Vec::with_capacity(d);
    let mut p95 = Vec::with_capacity(d);
    let mut col = Vec::with_capacity(idx.len() / step + 1);
    for (j, m) in mean.iter().enumerate().take(d) {
        col.clear();
        col.extend(
            idx.iter()
                .step_by(step)
                .map(|&i| f64::from(rows.row(i)[j]))
                .filter(|x| x.is_finite()),
        );
        if col.is_empty() {
            p05.push(*m);
            p95.push(*m);
            continue;
        }
        col.sort_by(f64::total_cmp);
        let at = |q: f64| col[((col.len() - 1) as f64 * q).round() as usize];
        p05.push(at(0.05));
        p95.push(at(0.95));
    }
    (p05, p95)
}

/// Fits one component: all positives (at most `max_fit_rows / (1 + ratio)` of them),
/// `negatives_per_positive` times as many negatives, drawn with the seed, on standardised
/// features; returns oriented weights and the intercept corrected for the sampling.
#[allow(clippy::too_many_arguments)]
pub(super) fn fit_component(
    rows: &TypeRows,
    pos: &[usize],
    neg: &[usize],
    keep_neg: &[usize],
    mean: &[f64],
    std: &[f64],
    p: &TrainParams,
    seed: u64,
) -> std::result::Result<Fitted, String> {
    let d = rows.schema.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ratio = p.negatives_per_positive;
    let cap = ((p.max_fit_rows as f64 / (1.0 + ratio)).floor() as usize).max(1);
    let pos_keep = pos.len().min(cap);
    let neg_total = neg.len() + keep_neg.len();
    let neg_keep = ((pos_keep as f64 * ratio).ceil() as usize).clamp(1, neg_total);
    let mut sample = |from: &[usize], k: usize| -> Vec<usize> {
        if k >= from.len() {
            return from.to_vec();
        }
        let mut v: Vec<usize> = rand::seq::index::sample(&mut rng, from.len(), k)
            .into_iter()
            .map(|j| from[j])
            .collect();
        v.sort_unstable();
        v
    };
    let pos = sample(pos, pos_keep);
    // Checked negatives (no fault found) are always kept; the draw fills up the rest.
    let mut chosen = sample(neg, neg_keep.saturating_sub(keep_neg.len()));
    chosen.extend_from_slice(keep_neg);
    chosen.sort_unstable();
    // Prior correction: sampling keeps positives at rate r_pos and negatives at r_neg,
    // which multiplies the odds by r_pos / r_neg.
    let correction =
        (chosen.len() as f64 / neg_total as f64).ln() - (pos_keep as f64 / pos.len() as f64).ln();

    let m = pos.len() + chosen.len();
    let mut x = Array2::<f64>::zeros((m, d));
    let mut y = Array1::<bool>::from_elem(m, false);
    for (r, &i) in pos.iter().chain(&chosen).enumerate() {
        for (j, &v) in rows.row(i).iter().enumerate() {
            let v = f64::from(v);
            x[[r, j]] = if v.is_finite() {
                (v - mean[j]) / std[j]
            } else {
                0.0
            };
        }
        y[r] = r < pos.len();
    }
    let dataset = Dataset::new(x, y);
    let fit_started = std::time::Instant::now();
    let fitted = LogisticRegression::default()
        .alpha(p.l2)
        .max_iterations(p.max_iterations)
        // linfa's loss is a sum over rows, so a fixed gradient tolerance is never reached
        // on large data and every fit would run all iterations: scale it with the rows
        // (a tolerance of 1e-3 on the mean gradient).
        .gradient_tolerance(1e-3 * m as f64)
        .fit(&dataset)
        .map_err(|e| e.to_string())?;
    tracing::debug!(
        rows = m,
        elapsed_ms = fit_started.elapsed().as_millis() as u64,
        "Component model fitted"
    );
    // linfa reports the probability of the class it calls positive, which is the
    // *larger* class, so it can be "no failure": orient by its labels.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let weights: Vec<f64> = fitted.params().iter().map(|w| sign * w).collect();
    let intercept = sign * fitted.intercept() + correction;
    if weights.iter().any(|w| !w.is_finite()) || !intercept.is_finite() {
        return Err("non-finite coefficients".into());
    }
    let trees = if p.trees == 0 {
        Vec::new()
    } else {
        fit_trees(&dataset, p, seed)
    };
    Ok(Fitted {
        weights,
        intercept,
        trees,
        correction,
    })
}

/// The bagged-trees candidate on the logistic fit's sample (empty, with a warning, when
/// fitting fails: the component then has the logistic family only).
fn fit_trees(dataset: &Dataset<f64, bool, Ix1>, p: &TrainParams, seed: u64) -> Vec<Tree> {
    let m = dataset.records().nrows();
    let started = std::time::Instant::now();
    let labels: Vec<bool> = dataset.targets().iter().copied().collect();
    let forest = crate::trees::fit_forest(
        dataset.records().view(),
        &labels,
        &crate::trees::ForestParams {
            trees: p.trees as usize,
            max_depth: p.tree_depth as usize,
            rows_per_tree: p.tree_rows as usize,
            min_leaf: 5.0,
        },
        seed ^ 0x7ee5_5eed,
    );
    tracing::debug!(
        rows = m,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Bagged trees fitted"
    );
    match forest {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "Bagged trees failed; logistic only");
            Vec::new()
        }
    }
}

/// Both candidate families fitted on the same sample; `intercept` is the logistic
/// intercept (already prior-corrected) and `correction` the trees' prior correction.
pub(super) struct Fitted {
    pub(super) weights: Vec<f64>,
    pub(super) intercept: f64,
    pub(super) trees: Vec<Tree>,
    pub(super) correction: f64,
}
