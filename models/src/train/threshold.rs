//! Threshold selection at event level: flag rules, and the threshold each rule gets
//! when its flag episodes are replayed over the validation rows as `eval` and the live
//! scorer count them.

use std::collections::HashMap;

use domain::Timestamp;

use super::TrainParams;
use crate::artifact::{sigmoid, EventMetrics, MonthSet, ThresholdRule};

/// One validation row for event-level threshold selection.
#[derive(Clone, Copy, Debug)]
pub(super) struct EventRow {
    pub(super) ts: i64,
    pub(super) dev: u32,
    /// Position among the device's sampled rows: a jump means rows were excluded (a
    /// broken or censored stretch) and breaks an episode.
    pub(super) seq: u32,
    /// Calendar month of `ts` ([`MonthSet::month_of`]).
    pub(super) month: u8,
    /// A failure of the component follows within the horizon.
    pub(super) positive: bool,
    /// That failure's time (meaningful when `positive`).
    pub(super) failure_ts: i64,
    pub(super) risk: f64,
    /// The component's fault-code rule fires at this row.
    pub(super) rule: bool,
}

/// Most candidate thresholds tried by [`event_threshold`] (quantiles of the risks).
const EVENT_CANDIDATES: usize = 400;

/// A flag rule: consecutive scores at or above the threshold, and event time held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FlagRule {
    pub(super) persistence: u32,
    pub(super) hold_ms: i64,
    /// Also flag while the component's fault-code rule fires ([`crate::FaultRule`]).
    pub(super) fault_rule: bool,
    /// The months the fault-code rule is on ([`FaultRule::months`]).
    pub(super) fault_months: MonthSet,
}

impl FlagRule {
    /// The flag rules training tries, slowest first (see
    /// [`TrainParams::adaptive_persistence`]): the configured one, and one score held
    /// `hold_ms` when that hold spans at least one sample interval. A flag always needs
    /// the risk to persist (a single reading never raises one), and validation rows are
    /// a sample every `sample_interval_ms`: they cannot show a shorter spell.
    /// `has_fault_rule`: the component has fault features, so each rule is also tried
    /// with its fault-code rule ([`TrainParams::fault_code_rule`]), after all rules
    /// without it.
    pub(super) fn candidates(p: &TrainParams, has_fault_rule: bool) -> Vec<FlagRule> {
        let mut rules = vec![FlagRule {
            persistence: p.persistence.max(1),
            hold_ms: p.hold_ms.max(0),
            fault_rule: false,
            fault_months: MonthSet::ALL,
        }];
        let held = FlagRule {
            persistence: 1,
            hold_ms: p.hold_ms.max(0),
            fault_rule: false,
            fault_months: MonthSet::ALL,
        };
        if p.adaptive_persistence && held.hold_ms >= p.sample_interval_ms && !rules.contains(&held)
        {
            rules.push(held);
        }
        if p.fault_code_rule && has_fault_rule {
            let with: Vec<FlagRule> = rules
                .iter()
                .map(|r| FlagRule {
                    fault_rule: true,
                    ..*r
                })
                .collect();
            rules.extend(with);
        }
        rules
    }

    /// `rules` without the fault-code rule, each with it on in `months` only.
    pub(super) fn seasonal(rules: &[FlagRule], months: MonthSet) -> Vec<FlagRule> {
        rules
            .iter()
            .filter(|r| !r.fault_rule)
            .map(|r| FlagRule {
                fault_rule: true,
                fault_months: months,
                ..*r
            })
            .collect()
    }

    /// Whether the fault-code rule raises a flag at `row`.
    fn fault_fires(&self, row: &EventRow) -> bool {
        self.fault_rule
            && row.rule
            && (self.fault_months.is_all() || self.fault_months.contains(row.month))
    }
}

/// A flag rule and its threshold, as [`event_threshold_and_rule`] returns them.
pub(super) type ChosenRule = (FlagRule, f64, ThresholdRule, EventMetrics);

/// How flag-rule candidates rank: a threshold meeting the target, then recall, then the
/// median lead time.
pub(super) fn candidate_key(name: ThresholdRule, m: &EventMetrics) -> (bool, f64, f64) {
    (
        name == ThresholdRule::EventTarget,
        m.recall,
        m.lead_time_days_median.unwrap_or(0.0),
    )
}

/// The best flag rule and its threshold ([`event_threshold`] for each of `rules`, from
/// [`FlagRule::candidates`]): a threshold meeting the target wins over a best-F1
/// fallback, then the higher recall, then the longer median lead time, then the slower
/// rule (fewer chances for noise).
pub(super) fn event_threshold_and_rule(
    rows: &[EventRow],
    p: &TrainParams,
    rules: &[FlagRule],
) -> Option<ChosenRule> {
    let mut best: Option<ChosenRule> = None;
    for &rule in rules {
        let Some((t, name, m)) = event_threshold(rows.to_vec(), p, rule) else {
            tracing::debug!(
                ?rule,
                "No threshold catches a failure within the alert budget"
            );
            continue;
        };
        tracing::debug!(?rule, threshold = t, selection = %name, flags = m.flags,
            false_alarms = m.false_alarms, caught = m.caught, failures = m.failures,
            false_alarms_per_1000_device_months = m.false_alarms_per_1000_device_months,
            lead_time_days_median = ?m.lead_time_days_median, "Flag rule candidate");

        if best
            .as_ref()
            .is_none_or(|(_, _, bn, bm)| candidate_key(name, &m) > candidate_key(*bn, bm))
        {
            best = Some((rule, t, name, m));
        }
    }
    best
}

/// Chooses a threshold at event level on rows sampled every `sample_interval_ms`.
///
/// Flags are counted the way `eval` and the live scorer raise them under `rule`: an
/// episode starts at the first row where the risk has been at or above the threshold
/// for at least `rule.persistence` consecutive rows and for at least `rule.hold_ms` of
/// event time since the first of them, and ends once the risk has stayed below it for
/// `release_ms` (at once when 0), or at a gap in the rows (an excluded period). An episode is true if its first flagged row is
/// positive (its component fails within the horizon), and it catches that failure.
///
/// Rule: among thresholds whose event precision reaches `target_precision` and whose
/// false alarms stay within `alert_budget` per 1000 device-months, with at least one
/// failure caught, those with the highest recall form a band, and the band's middle in
/// log-odds is chosen when it keeps that recall and the constraints, else its top
/// (`event_target`); otherwise, among thresholds within the budget that catch a
/// failure, the one with the best event F1, then the highest (`event_max_f1`).
/// `None` when no threshold catches a failure within the budget: such a model would
/// only send planners false alarms.
pub(super) fn event_threshold(
    rows: Vec<EventRow>,
    p: &TrainParams,
    rule: FlagRule,
) -> Option<(f64, ThresholdRule, EventMetrics)> {
    let replay = FlagReplay::new(rows, p, rule);
    let candidates = candidate_thresholds(&replay.rows);
    // The feasible thresholds with the best recall form a band: `target` is its top,
    // `target_low` its bottom.
    let mut target: Option<(f64, EventMetrics)> = None;
    let mut target_low: Option<f64> = None;
    let mut best: Option<(f64, f64, EventMetrics)> = None;
    // Every candidate's replay is independent: count them on all cores, choose in order.
    let counted = crate::par::map(&candidates, |&t| replay.count(t));
    for (&t, m) in candidates.iter().zip(counted) {
        let feasible = m.caught > 0
            && m.precision >= p.target_precision
            && m.false_alarms_per_1000_device_months <= p.alert_budget;
        if feasible {
            match &target {
                Some((_, b)) if m.recall <= b.recall => {
                    if m.recall == b.recall {
                        target_low = Some(t);
                    }
                }
                _ => {
                    target = Some((t, m.clone()));
                    target_low = Some(t);
                }
            }
        }
        let score = event_f1(&m);
        if m.caught > 0
            && m.false_alarms_per_1000_device_months <= p.alert_budget
            && best.as_ref().is_none_or(|(_, s, _)| score > *s)
        {
            best = Some((t, score, m));
        }
    }
    // The middle of the band (in log-odds) is the threshold least likely to lose a
    // catch or gain a false alarm on new data; it is used when it is itself feasible
    // with the same recall.
    if let (Some((hi, m_hi)), Some(lo)) = (&target, target_low) {
        let logit =
            |x: f64| (x.clamp(1e-12, 1.0 - 1e-12) / (1.0 - x.clamp(1e-12, 1.0 - 1e-12))).ln();
        let mid = sigmoid(0.5 * (logit(*hi) + logit(lo)));
        let m = replay.count(mid);
        if mid < *hi
            && m.recall >= m_hi.recall
            && m.precision >= p.target_precision
            && m.false_alarms_per_1000_device_months <= p.alert_budget
        {
            target = Some((mid, m));
        }
    }
    match (target, best) {
        (Some((t, m)), _) => Some((t, ThresholdRule::EventTarget, m)),
        (None, Some((t, _, m))) => Some((t, ThresholdRule::EventMaxF1, m)),
        (None, None) => None,
    }
}

/// The thresholds [`event_threshold`] tries, highest first: the 50 highest distinct
/// risks and up to [`EVENT_CANDIDATES`] quantiles of all of them.
fn candidate_thresholds(rows: &[EventRow]) -> Vec<f64> {
    let mut risks: Vec<f64> = rows
        .iter()
        .map(|r| r.risk)
        .filter(|r| r.is_finite())
        .collect();
    risks.sort_by(f64::total_cmp);
    risks.dedup();
    let step = risks.len().div_ceil(EVENT_CANDIDATES).max(1);
    // Highest first, so ties keep the higher threshold; the top risks are all tried.
    let mut candidates: Vec<f64> = risks.iter().rev().take(50).copied().collect();
    candidates.extend(risks.iter().rev().step_by(step).copied());
    candidates.sort_by(|a, b| b.total_cmp(a));
    candidates.dedup();
    candidates
}

/// Event-level F1 (0 without precision and recall).
fn event_f1(m: &EventMetrics) -> f64 {
    if m.precision + m.recall > 0.0 {
        2.0 * m.precision * m.recall / (m.precision + m.recall)
    } else {
        0.0
    }
}

/// One flag rule replayed over validation rows, for any threshold: the rows in device
/// and sample order, and what counting needs of them.
struct FlagReplay {
    rows: Vec<EventRow>,
    rule: FlagRule,
    /// Consecutive rows at or above the threshold a flag needs.
    need: usize,
    release_ms: i64,
    expire_ms: i64,
    /// Device-months the rows span: each device's first to last row.
    device_months: f64,
    /// Per row, the number of the failure it is positive for (`usize::MAX`: none).
    failure_of: Vec<usize>,
    n_failures: usize,
}

impl FlagReplay {
    fn new(mut rows: Vec<EventRow>, p: &TrainParams, rule: FlagRule) -> FlagReplay {
        rows.sort_by(|a, b| a.dev.cmp(&b.dev).then(a.seq.cmp(&b.seq)));
        // Device-months: each device's span of rows.
        let mut device_ms = 0i64;
        let mut k = 0;
        while k < rows.len() {
            let dev = rows[k].dev;
            let first = rows[k].ts;
            let mut last = first;
            while k < rows.len() && rows[k].dev == dev {
                last = rows[k].ts;
                k += 1;
            }
            device_ms += last - first;
        }
        // Each positive row's failure, numbered, so a candidate's catches are a vector.
        let mut failure_index: HashMap<(u32, i64), usize> = HashMap::new();
        let failure_of: Vec<usize> = rows
            .iter()
            .map(|r| {
                let next = failure_index.len();
                if r.positive {
                    *failure_index.entry((r.dev, r.failure_ts)).or_insert(next)
                } else {
                    usize::MAX
                }
            })
            .collect();
        FlagReplay {
            rule,
            need: rule.persistence.max(1) as usize,
            release_ms: p.release_ms.max(0),
            expire_ms: p.expire_ms(),
            device_months: device_ms as f64 / (30.44 * Timestamp::DAY_MS as f64),
            n_failures: failure_index.len(),
            failure_of,
            rows,
        }
    }

    /// Whether row `k` continues the episode of row `k - 1` (same device, next sample).
    fn contiguous(&self, k: usize) -> bool {
        let rows = &self.rows;
        k > 0 && rows[k - 1].dev == rows[k].dev && rows[k].seq == rows[k - 1].seq.saturating_add(1)
    }

    /// The flags, false alarms and catches of threshold `t`.
    fn count(&self, t: f64) -> EventMetrics {
        let rule = self.rule;
        let (mut flags, mut false_alarms) = (0u64, 0u64);
        // Per failure, the lead in days of the first flag that caught it (NaN: none).
        let mut caught = vec![f64::NAN; self.n_failures];
        // The live scorer's latch (`scorer::latch`) on event seconds.
        let (mut run, mut since) = (0usize, 0i64);
        let mut latch = crate::scorer::FlagLatch::default();
        for (k, r) in self.rows.iter().enumerate() {
            if !self.contiguous(k) {
                (run, latch) = (0, crate::scorer::FlagLatch::default());
            }
            let above = r.risk >= t;
            if above {
                if run == 0 {
                    since = r.ts;
                }
                run += 1;
            } else {
                run = 0;
            }
            // A fault-code rule raises a flag as soon as it fires: the device itself
            // reports the fault, which the service teams want the moment it happens.
            let raise =
                (above && run >= self.need && r.ts - since >= rule.hold_ms) || rule.fault_fires(r);
            let was_up = latch.is_up();
            let up = crate::scorer::latch(
                &mut latch,
                raise,
                above,
                r.ts / 1000,
                self.release_ms,
                self.expire_ms,
                |_| false, // as above: no flag here spans a repair
            );
            if up && !was_up {
                flags += 1;
                if let Some(lead) = caught.get_mut(self.failure_of[k]) {
                    if lead.is_nan() {
                        *lead = (r.failure_ts - r.ts) as f64 / Timestamp::DAY_MS as f64;
                    }
                } else {
                    false_alarms += 1;
                }
            }
        }
        let mut leads: Vec<f64> = caught.into_iter().filter(|l| !l.is_nan()).collect();
        let n_caught = leads.len() as u64;
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let device_months = self.device_months;
        EventMetrics {
            flags,
            false_alarms,
            failures: self.n_failures as u64,
            caught: n_caught,
            precision: ratio(flags - false_alarms, flags),
            recall: ratio(n_caught, self.n_failures as u64),
            false_alarms_per_1000_device_months: if device_months > 0.0 {
                1000.0 * false_alarms as f64 / device_months
            } else {
                0.0
            },
            device_months,
            lead_time_days_median: {
                leads.sort_by(f64::total_cmp);
                crate::eval::percentile(&leads, 0.5)
            },
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Rows of `devices` devices every `step_ms` for 60 days; devices below `failing`
    /// score `high` on the days in `high_days` and fail on day 24 (positives within
    /// the 14-day horizon before it), the others score 0.1 throughout.
    pub(in crate::train) fn flag_rows(
        devices: u32,
        failing: u32,
        step_ms: i64,
        high_days: std::ops::Range<i64>,
    ) -> Vec<EventRow> {
        let day = Timestamp::DAY_MS;
        let fail = 24 * day;
        let mut rows = Vec::new();
        for dev in 0..devices {
            for (seq, ts) in (0..60 * day).step_by(step_ms as usize).enumerate() {
                let failing = dev < failing;
                if failing && ts >= fail {
                    break; // broken, then the history of this test ends
                }
                let high = failing && high_days.contains(&(ts / day));
                rows.push(EventRow {
                    ts,
                    dev,
                    seq: seq as u32,
                    month: MonthSet::month_of(ts),
                    positive: failing && fail - ts <= 14 * day,
                    failure_ts: fail,
                    risk: if high { 0.9 } else { 0.1 },
                    rule: false,
                });
            }
        }
        rows
    }

    #[test]
    fn flag_rules_follow_event_time_and_a_single_reading_never_raises_a_flag() {
        let p = TrainParams::default();
        let day = Timestamp::DAY_MS;
        let slow = FlagRule {
            persistence: 3,
            hold_ms: 12 * Timestamp::HOUR_MS,
            fault_rule: false,
            fault_months: MonthSet::ALL,
        };
        let held = FlagRule {
            persistence: 1,
            hold_ms: 12 * Timestamp::HOUR_MS,
            fault_rule: false,
            fault_months: MonthSet::ALL,
        };
        assert_eq!(FlagRule::candidates(&p, false), vec![slow, held]);
        let fixed = TrainParams {
            adaptive_persistence: false,
            ..TrainParams::default()
        };
        assert_eq!(FlagRule::candidates(&fixed, false), vec![slow]);
        // Without a hold the faster rule would flag on one reading: it is not tried.
        let no_hold = TrainParams {
            hold_ms: 0,
            ..TrainParams::default()
        };
        assert_eq!(FlagRule::candidates(&no_hold, false).len(), 1);

        // A daily reporter whose precursor shows from day 18: the slow rule flags on the
        // third high score (day 20), the held rule on the second (day 19).
        let sustained = flag_rows(30, 5, day, 18..24);
        for (rule, lead) in [(slow, 4.0), (held, 5.0)] {
            let (t, name, m) = event_threshold(sustained.clone(), &p, rule).unwrap();
            assert_eq!(
                (name, m.caught, m.false_alarms),
                (ThresholdRule::EventTarget, 5, 0)
            );
            assert!(t > 0.1 && t <= 0.9, "{t}");
            assert_eq!(m.lead_time_days_median, Some(lead), "{rule:?}");
        }
        let (rule, _, _, m) =
            event_threshold_and_rule(&sustained, &p, &FlagRule::candidates(&p, false)).unwrap();
        assert_eq!((rule, m.recall), (held, 1.0), "same recall, longer lead");

        // One high score only (one reading): no rule raises a flag.
        let blip = flag_rows(30, 5, day, 20..21);
        assert!(event_threshold_and_rule(&blip, &p, &FlagRule::candidates(&p, false)).is_none());

        // Rows every 6 h of an hourly reporter: both rules flag 12 h into the episode,
        // the same catches and lead, so the slower rule is kept.
        let sampled = flag_rows(30, 5, 6 * Timestamp::HOUR_MS, 18..24);
        let (rule, _, _, m) =
            event_threshold_and_rule(&sampled, &p, &FlagRule::candidates(&p, false)).unwrap();
        assert_eq!((rule, m.lead_time_days_median), (slow, Some(5.5)));
    }

    /// The event counts of the top threshold under `p`'s release and expiry, with every
    /// threshold let through (no precision target, no budget) and one score raising a
    /// flag.
    fn top_threshold_counts(rows: Vec<EventRow>, p: TrainParams) -> crate::artifact::EventMetrics {
        let p = TrainParams {
            alert_budget: 1e9,
            target_precision: 0.0,
            ..p
        };
        let single = FlagRule {
            persistence: 1,
            hold_ms: 0,
            fault_rule: false,
            fault_months: MonthSet::ALL,
        };
        event_threshold(rows, &p, single).unwrap().2
    }

    #[test]
    fn a_flag_that_dips_under_the_threshold_within_the_release_time_is_one_flag() {
        let day = Timestamp::DAY_MS;
        // Healthy devices at 0.1 throughout; one device at 0.9 on days 10 and 12 (a dip
        // on day 11) and no failure: one false alarm with a release time, two without.
        let mut rows = flag_rows(40, 0, day, 0..0);
        for r in rows.iter_mut().filter(|r| r.dev == 0) {
            if [10, 12].contains(&(r.ts / day)) {
                r.risk = 0.9;
            }
        }
        let count = |release_ms: i64| {
            let mut rows = rows.clone();
            // One catchable failure elsewhere so that some threshold is usable.
            for r in rows.iter_mut().filter(|r| r.dev == 1 && r.ts / day == 20) {
                (r.risk, r.positive, r.failure_ts) = (0.9, true, 21 * day);
            }
            top_threshold_counts(
                rows,
                TrainParams {
                    release_ms,
                    ..TrainParams::default()
                },
            )
        };
        let released = count(3 * day);
        let at_once = count(0);
        assert_eq!((released.flags, released.false_alarms), (2, 1));
        assert_eq!((at_once.flags, at_once.false_alarms), (3, 2));
    }

    #[test]
    fn threshold_selection_counts_a_flag_restated_after_the_horizon_as_a_new_flag() {
        let day = Timestamp::DAY_MS;
        // Device 0 is healthy but at 0.9 from day 10 to day 40; device 1 at 0.9 from day
        // 5, 19 days before its failure on day 24 (the early flag: a false alarm).
        let mut rows = flag_rows(40, 0, day, 0..0);
        for r in rows.iter_mut().filter(|r| r.dev == 0) {
            if (10..=40).contains(&(r.ts / day)) {
                r.risk = 0.9;
            }
        }
        for r in rows.iter_mut().filter(|r| r.dev == 1) {
            if (5..24).contains(&(r.ts / day)) {
                r.risk = 0.9;
            }
            (r.positive, r.failure_ts) = (r.ts >= 10 * day && r.ts < 24 * day, 24 * day);
        }
        // Device 2: a catchable failure on day 21 (a flag on day 20), in both cases.
        for r in rows.iter_mut().filter(|r| r.dev == 2 && r.ts / day == 20) {
            (r.risk, r.positive, r.failure_ts) = (0.9, true, 21 * day);
        }
        let rows: Vec<EventRow> = rows
            .into_iter()
            .filter(|r| r.dev != 1 || r.ts < 24 * day)
            .collect();
        let count = |expire_flags: bool| {
            top_threshold_counts(
                rows.clone(),
                TrainParams {
                    expire_flags,
                    ..TrainParams::default()
                },
            )
        };
        // Expiring: device 0 flags on days 10, 25 and 40 (three false alarms); device 1
        // on day 5 (false) and again on day 20, which catches its failure 4 days ahead.
        let expiring = count(true);
        assert_eq!((expiring.flags, expiring.false_alarms), (6, 4));
        assert_eq!(expiring.caught, 2);
        // Without expiry: devices 0 and 1 flag once each, both false; device 1's
        // failure is missed.
        let standing = count(false);
        assert_eq!((standing.flags, standing.false_alarms), (3, 2));
        assert_eq!(standing.caught, 1);
    }

    #[test]
    fn the_fault_code_rule_is_kept_only_where_it_catches_more_within_the_budget() {
        let p = TrainParams::default();
        let day = Timestamp::DAY_MS;
        let with_rule = |r: FlagRule| FlagRule {
            fault_rule: true,
            fault_months: MonthSet::ALL,
            ..r
        };
        let base = FlagRule::candidates(&p, false);
        let all = FlagRule::candidates(&p, true);
        assert_eq!(all.len(), 2 * base.len());
        assert_eq!(
            all[base.len()..],
            base.iter().map(|&r| with_rule(r)).collect::<Vec<_>>()
        );
        let off = TrainParams {
            fault_code_rule: false,
            ..TrainParams::default()
        };
        assert_eq!(FlagRule::candidates(&off, true), base);

        // The risk shows one failing device (days 18-23, 0.9); the codes show all five,
        // on day 20 (a fault code raises the flag the moment it comes).
        let mut rows = flag_rows(30, 1, day, 18..24);
        for r in rows.iter_mut().filter(|r| r.dev < 5) {
            (r.positive, r.failure_ts) = (r.ts >= 10 * day, 24 * day);
            r.rule = r.ts / day == 20;
        }
        rows.retain(|r| r.dev >= 5 || r.ts < 24 * day);
        let (rule, _, _, m) = event_threshold_and_rule(&rows, &p, &all).unwrap();
        assert!(rule.fault_rule, "{rule:?}");
        assert_eq!((m.caught, m.false_alarms), (5, 0));
        // Codes on ten healthy devices as well: the rule breaks the budget, and the
        // risk alone is kept, with its one catch; a risk that catches the failures on
        // its own is kept alone too, since the rule adds only false alarms.
        let without_rule = |mut rows: Vec<EventRow>| {
            for r in rows
                .iter_mut()
                .filter(|r| (10..20).contains(&r.dev) && r.ts / day == 30)
            {
                r.rule = true;
            }
            let (rule, _, _, m) = event_threshold_and_rule(&rows, &p, &all).unwrap();
            assert!(!rule.fault_rule, "{rule:?}");
            (m.caught, m.false_alarms)
        };
        assert_eq!(without_rule(rows), (1, 0));
        assert_eq!(without_rule(flag_rows(30, 5, day, 18..24)), (5, 0));
    }
}
