//! The exact tests behind batch alarms (docs/fleet.md): one-sided binomial and
//! hypergeometric upper tails, summed term by term in log space so that tiny p-values
//! stay exact, and the Benjamini–Hochberg adjustment.
//!
//! Written here rather than taken from `statrs`: the three functions are short, need
//! only `ln Γ`, and `statrs` would bring `nalgebra` into the build for them.

/// `ln Γ(x)` for `x > 0` (Lanczos approximation, g = 7, nine coefficients; relative
/// error below 1e-13 over the range used here).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(π x).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// `ln C(n, k)`.
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// `ln Σ exp(t)` without overflow or underflow.
fn log_sum_exp(terms: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = terms.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + terms.map(|t| (t - max).exp()).sum::<f64>().ln()
}

/// `P(X >= k)` for `X ~ Binomial(n, p)`.
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (ln_p, ln_q) = (p.ln(), (-p).ln_1p());
    let terms = (k..=n).map(|i| ln_choose(n, i) + i as f64 * ln_p + (n - i) as f64 * ln_q);
    log_sum_exp(terms).exp().clamp(0.0, 1.0)
}

/// `P(X >= k)` for `X ~ Hypergeometric(population, successes, draws)`: the one-sided
/// Fisher exact test of a 2x2 table whose first row has `k` of `draws`.
pub fn hypergeometric_sf(k: u64, population: u64, successes: u64, draws: u64) -> f64 {
    let successes = successes.min(population);
    let draws = draws.min(population);
    let lo = (draws + successes).saturating_sub(population);
    let hi = draws.min(successes);
    if k <= lo {
        return 1.0;
    }
    if k > hi {
        return 0.0;
    }
    let total = ln_choose(population, draws);
    let terms = (k..=hi)
        .map(|i| ln_choose(successes, i) + ln_choose(population - successes, draws - i) - total);
    log_sum_exp(terms).exp().clamp(0.0, 1.0)
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the order given: a test is
/// significant at false discovery rate `q` when its adjusted value is at most `q`.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut out = vec![1.0; m];
    let mut running = 1.0f64;
    for (pos, &i) in order.iter().enumerate() {
        let rank = m - pos;
        running = running.min(p[i] * m as f64 / rank as f64);
        out[i] = running.clamp(0.0, 1.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30u32 {
            f *= f64::from(n);
            assert!(close(ln_gamma(f64::from(n) + 1.0), f.ln(), 1e-12), "{n}");
        }
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn binomial_tail_by_hand() {
        // n = 4, p = 1/2: P(X >= 3) = (4 + 1) / 16.
        assert!(close(binomial_sf(3, 4, 0.5), 5.0 / 16.0, 1e-12));
        // P(X >= 1) = 1 - 0.9^10.
        assert!(close(binomial_sf(1, 10, 0.1), 1.0 - 0.9f64.powi(10), 1e-12));
        assert_eq!(binomial_sf(0, 10, 0.1), 1.0);
        assert_eq!(binomial_sf(11, 10, 0.1), 0.0);
        // All 20 of 20 at p = 0.1: 1e-20, far below what 1 - cdf could show.
        assert!(close(binomial_sf(20, 20, 0.1), 1e-20, 1e-10));
    }

    #[test]
    fn fisher_tail_by_hand() {
        // Population 10 with 4 successes, 3 draws: P(X >= 2) = (C(4,2) C(6,1) +
        // C(4,3)) / C(10,3) = (36 + 4) / 120.
        assert!(close(hypergeometric_sf(2, 10, 4, 3), 40.0 / 120.0, 1e-12));
        assert_eq!(hypergeometric_sf(0, 10, 4, 3), 1.0);
        assert_eq!(hypergeometric_sf(4, 10, 4, 3), 0.0);
        // Draws that must contain successes: population 5, 4 successes, 3 draws
        // always hold at least 2.
        assert_eq!(hypergeometric_sf(2, 5, 4, 3), 1.0);
    }

    #[test]
    fn benjamini_hochberg_by_hand() {
        // m = 4: sorted 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.04, 0.04, 0.5.
        let q = benjamini_hochberg(&[0.03, 0.5, 0.01, 0.02]);
        for (got, want) in q.iter().zip([0.04, 0.5, 0.04, 0.04]) {
            assert!(close(*got, want, 1e-12), "{q:?}");
        }
        assert!(benjamini_hochberg(&[]).is_empty());
    }
}
