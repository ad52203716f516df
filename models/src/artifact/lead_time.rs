//! Predicted lead time by risk: the bins training measures on the validation period.

use serde::{Deserialize, Serialize};

/// Most bins of [`ComponentModel::lead_time`](super::ComponentModel::lead_time).
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

#[cfg(test)]
mod lead_time_tests {
    use super::*;
    use crate::artifact::ComponentModel;

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
                "persistence": 1, "threshold_rule": "event_target", "metrics": null, "skipped_reason": null
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
