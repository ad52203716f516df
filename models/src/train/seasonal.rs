//! A seasonal fault-code rule: the calendar months in which a component's fault-code
//! rule alone was precise over the whole history, and whether validation keeps it for
//! those months ("A seasonal fault-code rule" in docs/models.md).

use domain::Timestamp;

use super::data::TypeRows;
use super::label::Split;
use super::threshold::{candidate_key, event_threshold_and_rule, ChosenRule, EventRow, FlagRule};
use super::TrainParams;
use crate::artifact::{FaultRule, MonthSet};

/// `chosen` (the best of the whole-year candidates on the validation `rows`), or the
/// fault-code rule on in the months `seasonal` returns ([`seasonal_months`]; asked only
/// when the whole-year rule was not chosen) when that does at least as well on
/// `rows`: a tie goes to the seasonal rule, since validation saw it do no harm and the
/// months it is on were checked on the whole history (the rule has no fitted
/// parameter, so the training period is fair evidence for it). Where validation has
/// rows, its verdict stands: when the rule loses there, it is tried once more without
/// the months the validation rows cover. Nothing changes with
/// [`TrainParams::fault_code_rule`] off.
pub(super) fn with_seasonal_rule(
    rows: &[EventRow],
    p: &TrainParams,
    flag_rules: &[FlagRule],
    mut chosen: Option<ChosenRule>,
    seasonal: impl FnOnce() -> Option<MonthSet>,
) -> Option<ChosenRule> {
    if !p.fault_code_rule || chosen.as_ref().is_some_and(|c| c.0.fault_rule) {
        return chosen;
    }
    let Some(months) = seasonal() else {
        return chosen;
    };
    let validated = MonthSet::of(rows.iter().map(|r| r.month));
    let outside = MonthSet::of(months.months().filter(|&m| !validated.contains(m)));
    for months in [months, outside] {
        if months.is_empty() || chosen.as_ref().is_some_and(|c| c.0.fault_rule) {
            break;
        }
        let rules = FlagRule::seasonal(flag_rules, months);
        if let Some(s) = event_threshold_and_rule(rows, p, &rules) {
            if chosen
                .as_ref()
                .is_none_or(|c| candidate_key(s.2, &s.3) >= candidate_key(c.2, &c.3))
            {
                chosen = Some(s);
            }
        }
    }
    chosen
}

/// Every labelled row of the history before the test period (training, gap and
/// validation), as event rows with the fault-code rule's verdict and no risk: the
/// input of [`seasonal_months`].
pub(super) fn history_rule_rows(
    rows: &TypeRows,
    split_of: &[Split],
    labels: &[Option<(bool, i64)>],
    rule: FaultRule,
) -> Vec<EventRow> {
    (0..rows.len())
        .filter(|&i| matches!(split_of[i], Split::Train | Split::Gap | Split::Validation))
        .filter_map(|i| {
            let (positive, failure_ts) = labels[i]?;
            let row = rows.row(i);
            Some(EventRow {
                ts: rows.ts[i],
                dev: rows.dev[i],
                seq: rows.seq[i],
                month: MonthSet::month_of(rows.ts[i]),
                positive,
                failure_ts,
                risk: 0.0,
                rule: rule.fires_with(|k| row.get(k).map(|&x| f64::from(x))),
            })
        })
        .collect()
}

/// The calendar months in which the fault-code rule alone (flags raised while it fires,
/// released as the live scorer releases them) met the precision target and the alert
/// budget on `rows`, each month judged with its two neighbours: the flags that started
/// in those three months, and their device-months. A month whose three months hold no
/// flag has no evidence and stays off. `None` when no month or every month qualifies:
/// then there is no season to tell apart.
pub(super) fn seasonal_months(rows: &[EventRow], p: &TrainParams) -> Option<MonthSet> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.dev.cmp(&b.dev).then(a.seq.cmp(&b.seq)));
    // Per month: flags, false alarms, device milliseconds.
    let mut flags = [0u64; 13];
    let mut false_alarms = [0u64; 13];
    let mut device_ms = [0i64; 13];
    let mut latch = crate::scorer::FlagLatch::default();
    for k in 0..rows.len() {
        let r = rows[k];
        let m = usize::from(r.month.min(12));
        let contiguous =
            k > 0 && rows[k - 1].dev == r.dev && r.seq == rows[k - 1].seq.saturating_add(1);
        if contiguous {
            device_ms[m] += r.ts.saturating_sub(rows[k - 1].ts).max(0);
        } else {
            latch = crate::scorer::FlagLatch::default();
        }
        let was_up = latch.is_up();
        let up = crate::scorer::latch(
            &mut latch,
            r.rule,
            false,
            r.ts / 1000,
            p.release_ms,
            p.expire_ms(),
            // Rows stop at a failure and the latch restarts after the gap, so no flag
            // here spans a repair.
            |_| false,
        );
        if up && !was_up {
            flags[m] += 1;
            if !r.positive {
                false_alarms[m] += 1;
            }
        }
    }
    // A month is judged with its two neighbours (December and January are neighbours):
    // a season spans months, and one month of a small fleet holds a handful of flags,
    // too few to tell a clean month from a lucky one (the 300-device demo history put the
    // refrigerant rule on in Jan-Mar, May, Jul-Oct and Dec when judged month by month).
    let around = |counts: &[u64; 13], m: usize| -> u64 {
        let (before, after) = (
            if m == 1 { 12 } else { m - 1 },
            if m == 12 { 1 } else { m + 1 },
        );
        counts[before] + counts[m] + counts[after]
    };
    let device_ms = device_ms.map(|ms| ms.max(0) as u64);
    let month_ms = 30.44 * Timestamp::DAY_MS as f64;
    let months = MonthSet::of((1..=12u8).filter(|&m| {
        let m = usize::from(m);
        let (flags, false_alarms) = (around(&flags, m), around(&false_alarms, m));
        let device_months = around(&device_ms, m) as f64 / month_ms;
        flags > 0
            && (flags - false_alarms) as f64 / flags as f64 >= p.target_precision
            && device_months > 0.0
            && 1000.0 * false_alarms as f64 / device_months <= p.alert_budget
    }));
    tracing::debug!(?flags, ?false_alarms, %months, "Fault-code rule by month");
    (!months.is_empty() && !months.is_all()).then_some(months)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::threshold::tests::flag_rows;

    #[test]
    fn the_fault_code_rule_can_be_kept_for_the_months_where_it_is_precise() {
        let p = TrainParams::default();
        let day = Timestamp::DAY_MS;
        // 2026-07-01, 2026-01-01 and 2026-02-01, UTC.
        let (july, january, february) = (1_782_864_000_000, 1_767_225_600_000, 1_769_904_000_000);
        let shift = |rows: Vec<EventRow>, by: i64, devices: u32| -> Vec<EventRow> {
            rows.into_iter()
                .map(|mut r| {
                    (r.ts, r.failure_ts, r.dev) = (r.ts + by, r.failure_ts + by, r.dev + devices);
                    r.month = MonthSet::month_of(r.ts);
                    r
                })
                .collect()
        };
        let codes_on = |mut rows: Vec<EventRow>, devices: std::ops::Range<u32>, on_day: i64| {
            for r in rows.iter_mut().filter(|r| devices.contains(&r.dev)) {
                r.rule = r.ts / day == on_day;
            }
            rows
        };
        // The history: in July five of thirty devices raise codes on day 20 and fail on
        // day 24; in January five healthy devices raise them and nothing follows.
        let summer = codes_on(flag_rows(30, 5, day / 4, 100..101), 0..5, 20);
        let winter = codes_on(flag_rows(30, 0, day / 4, 100..101), 0..5, 20);
        let history: Vec<EventRow> = shift(summer, july, 0)
            .into_iter()
            .chain(shift(winter.clone(), january, 100))
            .collect();
        // July is judged with June and August, which it makes good; January, with
        // December and February, bad.
        assert_eq!(seasonal_months(&history, &p), Some(MonthSet::of([6, 7, 8])));
        assert_eq!(
            seasonal_months(&shift(winter, january, 0), &p),
            None,
            "no good month"
        );

        // Validation in February and March: the risk catches two failures; codes on
        // five healthy devices break the alert budget of the whole-year rule.
        let validation = shift(
            codes_on(flag_rows(30, 2, day / 4, 18..24), 10..15, 10),
            february,
            0,
        );
        let rules = FlagRule::candidates(&p, true);
        let whole_year = event_threshold_and_rule(&validation, &p, &rules).unwrap();
        assert!(!whole_year.0.fault_rule, "{:?}", whole_year.0);
        let choose = |months: Option<MonthSet>| {
            with_seasonal_rule(&validation, &p, &rules, Some(whole_year.clone()), || months)
                .unwrap()
        };
        // The July rule does no harm in validation: it is kept, for July only.
        let seasonal = choose(Some(MonthSet::of([7])));
        assert!(seasonal.0.fault_rule);
        assert_eq!(seasonal.0.fault_months, MonthSet::of([7]));
        assert_eq!(
            (seasonal.3.caught, seasonal.3.false_alarms),
            (whole_year.3.caught, whole_year.3.false_alarms)
        );
        // Validation judges the months it covers: February's false codes drop it.
        assert_eq!(
            choose(Some(MonthSet::of([2, 7]))).0.fault_months,
            MonthSet::of([7])
        );
        // Only February in the history's good months: validation refuses, the
        // whole-year choice stands; and without a season it stands too.
        assert!(!choose(Some(MonthSet::of([2]))).0.fault_rule);
        assert_eq!(choose(None).0, whole_year.0);
        // With the fault-code rule switched off, no season brings it back.
        let off = TrainParams {
            fault_code_rule: false,
            ..TrainParams::default()
        };
        let kept = with_seasonal_rule(&validation, &off, &rules, Some(whole_year.clone()), || {
            Some(MonthSet::of([7]))
        });
        assert_eq!(kept.map(|c| c.0), Some(whole_year.0));
        // A chosen whole-year rule stands, and the season is not even counted.
        let mut with_rule = whole_year.clone();
        with_rule.0.fault_rule = true;
        let kept = with_seasonal_rule(&validation, &p, &rules, Some(with_rule.clone()), || {
            unreachable!("the season is counted only without a whole-year rule")
        });
        assert_eq!(kept.map(|c| c.0), Some(with_rule.0));
    }
}
