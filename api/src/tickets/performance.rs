//! Model performance in production, from ticket outcomes (`GET /api/v1/models/performance`).
//!
//! Definitions (docs/models.md, "Performance in production"):
//!
//! * A **flag** is a proactive ticket. It counts as **resolved** once its status is
//!   `resolved` or `closed` (both carry an outcome), **confirmed** when that outcome is
//!   `confirmed_failure`, and **dismissed** when its status is `dismissed`.
//! * **precision** = confirmed / resolved flags (an outcome of `no_fault_found`,
//!   `customer_declined` or `not_reached` is a resolved flag that was not confirmed);
//!   **dismissed_share** = dismissed / flags.
//! * **Lead time** of a confirmed flag = the outcome's `failed_at` (when the failure
//!   was confirmed if the engineer gave no time) minus the ticket's `opened_at`. A
//!   confirmed flag whose failure came before the ticket opened is **late**, not
//!   caught; the lead-time figures are over the **caught** ones (lead time >= 0).
//! * A **missed** failure is a confirmed failure on a resolved *reactive* ticket
//!   (opened by a critical fault code) for a (device, component) with no proactive
//!   ticket opened in the [`LOOKBACK_MS`] (30 days) before the failure. **recall** =
//!   caught / (caught + late + missed).
//! * A **repair** is a resolved ticket (either source) with a confirmed failure; its
//!   time is the ticket's `ended_at`. A **repeat failure** is a repair followed by
//!   another confirmed failure of the same device and component within
//!   [`REPEAT_WINDOW_MS`] (30 days); it counts in the repair's group.
//!
//! Rows are grouped per (model version, device type, component, region). The
//! component of a confirmed failure is the outcome's (which defaults to the
//! ticket's). The region is the device's region when the device registry knows one,
//! else the ticket's assignment region, else `unknown` (see [`Regions`]). A reactive
//! ticket's model version is the one that was scoring the pair when it opened, `none`
//! if none was.
//!
//! The period (`from`, `to`) selects tickets by `opened_at`; the look-ups (a flag
//! before a missed failure, a failure after a repair) see every ticket, so a repeat
//! failure or an earlier flag just outside the period still counts.
//!
//! [`FactCache`] keeps every ticket's [`Fact`] in memory and reads from the store only
//! the tickets changed since its last look (`perf_rev`, kept by triggers: see
//! [`super::store`]), so a report costs one index range of changes and a pass over
//! the facts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use domain::{OutcomeKind, TicketStatus, Timestamp};
use serde::Serialize;

/// How far back from a failure a proactive ticket of the pair counts as its flag.
pub const LOOKBACK_MS: i64 = 30 * Timestamp::DAY_MS;
/// How long after a repair another confirmed failure of the pair is a repeat.
pub const REPEAT_WINDOW_MS: i64 = 30 * Timestamp::DAY_MS;
/// The region of a ticket whose device and assignment have none.
pub const UNKNOWN_REGION: &str = "unknown";
/// The model version of a reactive ticket opened while no model scored the pair.
pub const NO_MODEL: &str = "none";

/// A ticket as the report reads it (one row of the covering index).
#[derive(Clone, Debug)]
pub(crate) struct Fact {
    pub(crate) opened_at: i64,
    pub(crate) proactive: bool,
    /// `None` for a status this version does not know.
    pub(crate) status: Option<TicketStatus>,
    pub(crate) device_id: String,
    pub(crate) device_type: String,
    pub(crate) component: String,
    pub(crate) model_version: String,
    pub(crate) region: Option<String>,
    pub(crate) ended_at: Option<i64>,
    pub(crate) outcome_kind: Option<OutcomeKind>,
    pub(crate) outcome_component: Option<String>,
    pub(crate) failed_at: Option<i64>,
}

impl From<store::tickets::PerformanceFact> for Fact {
    fn from(f: store::tickets::PerformanceFact) -> Self {
        Fact {
            opened_at: f.opened_at,
            proactive: f.proactive,
            status: f.status,
            device_id: f.device_id,
            device_type: f.device_type,
            component: f.component,
            model_version: f.model_version,
            region: f.region,
            ended_at: f.ended_at,
            outcome_kind: f.outcome_kind,
            outcome_component: f.outcome_component,
            failed_at: f.failed_at,
        }
    }
}

impl Fact {
    fn status(&self) -> Option<TicketStatus> {
        self.status
    }

    /// Resolved or closed: the outcome is final.
    fn is_resolved(&self) -> bool {
        matches!(
            self.status,
            Some(TicketStatus::Resolved | TicketStatus::Closed)
        )
    }

    fn outcome(&self) -> Option<OutcomeKind> {
        self.outcome_kind
    }

    /// A resolved confirmed failure: (failed component, failure time).
    fn confirmed_failure(&self) -> Option<(&str, i64)> {
        if !self.is_resolved() || self.outcome() != Some(OutcomeKind::ConfirmedFailure) {
            return None;
        }
        let component = self.outcome_component.as_deref().unwrap_or(&self.component);
        let failed_at = self.failed_at.or(self.ended_at).unwrap_or(self.opened_at);
        Some((component, failed_at))
    }
}

/// Where a ticket's region comes from: the device registry first (a device's region
/// is where it stands), then the ticket's assignment region (where the visit was
/// planned), else [`UNKNOWN_REGION`].
pub trait Regions {
    /// Every device's region in the registry, by device id (devices without one are
    /// absent). Called once per report.
    fn device_regions(&self) -> Arc<HashMap<String, String>>;
}

/// No device registry regions: every ticket falls back to its assignment region.
#[derive(Clone, Copy, Debug, Default)]
pub struct AssignmentRegions;

impl Regions for AssignmentRegions {
    fn device_regions(&self) -> Arc<HashMap<String, String>> {
        // One shared empty map, so a cached report stays valid (see `FactCache`).
        static NONE: std::sync::OnceLock<Arc<HashMap<String, String>>> = std::sync::OnceLock::new();
        Arc::clone(NONE.get_or_init(Arc::default))
    }
}

impl Regions for HashMap<String, String> {
    fn device_regions(&self) -> Arc<HashMap<String, String>> {
        Arc::new(self.clone())
    }
}

impl Regions for Arc<HashMap<String, String>> {
    fn device_regions(&self) -> Arc<HashMap<String, String>> {
        Arc::clone(self)
    }
}

/// Filters of the report. Times select tickets by `opened_at`, `from <= t < to`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerformanceQuery {
    /// Start of the period (default: the beginning).
    pub from: Option<Timestamp>,
    /// End of the period, exclusive (default: no end).
    pub to: Option<Timestamp>,
    /// Only this model version (`none` for reactive tickets without a model).
    pub model_version: Option<String>,
    /// Only this device type.
    pub device_type: Option<String>,
    /// Only this component.
    pub component: Option<String>,
    /// Only this region (`unknown` for tickets without one).
    pub region: Option<String>,
}

impl PerformanceQuery {
    fn in_period(&self, opened_at: i64) -> bool {
        self.from.is_none_or(|f| opened_at >= f.millis())
            && self.to.is_none_or(|t| opened_at < t.millis())
    }

    fn selects(&self, key: &GroupKey<'_>) -> bool {
        let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        ok(&self.model_version, key.model_version)
            && ok(&self.device_type, key.device_type)
            && ok(&self.component, key.component)
            && ok(&self.region, key.region)
    }
}

/// Lead times of caught failures, in days.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeadTime {
    /// Caught failures measured.
    pub count: u64,
    /// Median lead time in days (`null` without caught failures).
    pub median_days: Option<f64>,
    /// Mean lead time in days.
    pub mean_days: Option<f64>,
    /// 10th percentile: nine in ten caught failures had at least this much notice.
    pub p10_days: Option<f64>,
}

impl LeadTime {
    fn of(mut days: Vec<f64>) -> LeadTime {
        if days.is_empty() {
            return LeadTime::default();
        }
        days.sort_by(f64::total_cmp);
        let n = days.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            round3(days[rank - 1])
        };
        LeadTime {
            count: n as u64,
            median_days: Some(at(0.5)),
            mean_days: Some(round3(days.iter().sum::<f64>() / n as f64)),
            p10_days: Some(at(0.1)),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| round3(n as f64 / d as f64))
}

/// Counts and rates of one group (or of all groups, as `totals`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PerformanceRow {
    /// Model version (`none`: reactive tickets opened while no model scored the pair).
    /// Absent in `totals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Device type. Absent in `totals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Component. Absent in `totals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Region (`unknown` when neither the device nor the assignment has one). Absent
    /// in `totals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Proactive tickets opened in the period.
    pub flags: u64,
    /// Flags still active.
    pub active: u64,
    /// Flags resolved or closed (with an outcome).
    pub resolved: u64,
    /// Resolved flags with outcome `confirmed_failure`.
    pub confirmed: u64,
    /// Resolved flags with outcome `no_fault_found`.
    pub no_fault_found: u64,
    /// Resolved flags with outcome `customer_declined` or `not_reached`.
    pub inconclusive: u64,
    /// Flags dismissed.
    pub dismissed: u64,
    /// `confirmed / resolved` (`null` without resolved flags).
    pub precision: Option<f64>,
    /// `dismissed / flags` (`null` without flags).
    pub dismissed_share: Option<f64>,
    /// Confirmed flags with the failure at or after the ticket opened.
    pub caught: u64,
    /// Confirmed flags whose failure came before the ticket opened.
    pub late: u64,
    /// Confirmed failures on reactive tickets with no flag of the pair in the 30 days
    /// before.
    pub missed: u64,
    /// `caught / (caught + late + missed)` (`null` without failures).
    pub recall: Option<f64>,
    /// Lead time of the caught failures.
    pub lead_time: LeadTime,
    /// Resolved tickets (either source) with a confirmed failure: repairs.
    pub repairs: u64,
    /// Repairs followed by another confirmed failure of the same device and component
    /// within 30 days.
    pub repeat_failures: u64,
    /// `repeat_failures / repairs` (`null` without repairs).
    pub repeat_rate: Option<f64>,
}

/// The body of `GET /api/v1/models/performance`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PerformanceReport {
    /// Start of the period (`null`: from the first ticket).
    #[schema(value_type = Option<String>)]
    pub from: Option<Timestamp>,
    /// End of the period, exclusive (`null`: no end).
    #[schema(value_type = Option<String>)]
    pub to: Option<Timestamp>,
    /// Days before a failure a flag of the pair counts (missed failures).
    pub lookback_days: u32,
    /// Days after a repair another failure counts as a repeat.
    pub repeat_window_days: u32,
    /// One row per (model version, device type, component, region) with tickets in the
    /// period, ordered by those fields.
    pub rows: Vec<PerformanceRow>,
    /// All rows together (the lead time over all caught failures).
    pub totals: PerformanceRow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct GroupKey<'a> {
    model_version: &'a str,
    device_type: &'a str,
    component: &'a str,
    region: &'a str,
}

#[derive(Default)]
struct Acc {
    row: PerformanceRow,
    lead_days: Vec<f64>,
}

impl Acc {
    fn finish(mut self) -> PerformanceRow {
        let r = &mut self.row;
        r.precision = ratio(r.confirmed, r.resolved);
        r.dismissed_share = ratio(r.dismissed, r.flags);
        r.recall = ratio(r.caught, r.caught + r.late + r.missed);
        r.repeat_rate = ratio(r.repeat_failures, r.repairs);
        r.lead_time = LeadTime::of(self.lead_days);
        self.row
    }

    fn add(&mut self, other: &Acc) {
        let (a, b) = (&mut self.row, &other.row);
        a.flags += b.flags;
        a.active += b.active;
        a.resolved += b.resolved;
        a.confirmed += b.confirmed;
        a.no_fault_found += b.no_fault_found;
        a.inconclusive += b.inconclusive;
        a.dismissed += b.dismissed;
        a.caught += b.caught;
        a.late += b.late;
        a.missed += b.missed;
        a.repairs += b.repairs;
        a.repeat_failures += b.repeat_failures;
        self.lead_days.extend_from_slice(&other.lead_days);
    }
}

/// Reports kept for queries asked again while nothing changed, at most.
const MAX_CACHED_REPORTS: usize = 64;

/// Every ticket's [`Fact`] by id, the newest `perf_rev` seen, and the reports computed
/// since then (a report stays valid until a ticket changes or the regions do).
#[derive(Debug)]
pub(crate) struct FactCache {
    rev: i64,
    facts: HashMap<i64, Fact>,
    /// Per query: the regions it was computed with, and the report.
    reports: HashMap<PerformanceQuery, (Arc<HashMap<String, String>>, PerformanceReport)>,
}

impl Default for FactCache {
    fn default() -> Self {
        // Revision 0 is a valid one (a file upgraded before any change), so start below.
        FactCache {
            rev: -1,
            facts: HashMap::new(),
            reports: HashMap::new(),
        }
    }
}

impl FactCache {
    /// The newest revision applied.
    pub(crate) fn rev(&self) -> i64 {
        self.rev
    }

    /// Applies the tickets changed after [`Self::rev`]: (id, revision, fact). Any
    /// change drops the reports computed before it.
    pub(crate) fn apply(&mut self, changed: Vec<(i64, i64, store::tickets::PerformanceFact)>) {
        if !changed.is_empty() {
            self.reports.clear();
        }
        for (id, rev, fact) in changed {
            self.rev = self.rev.max(rev);
            self.facts.insert(id, fact.into());
        }
    }

    /// The report over the facts held: the one computed before for the same query when
    /// no ticket and no region changed since.
    pub(crate) fn report(
        &mut self,
        query: &PerformanceQuery,
        regions: &dyn Regions,
    ) -> PerformanceReport {
        let device_regions = regions.device_regions();
        if let Some((used, report)) = self.reports.get(query) {
            if Arc::ptr_eq(used, &device_regions) {
                return report.clone();
            }
        }
        let facts: Vec<&Fact> = self.facts.values().collect();
        let report = compute(&facts, query, &device_regions);
        if self.reports.len() >= MAX_CACHED_REPORTS {
            self.reports.clear();
        }
        self.reports
            .insert(query.clone(), (device_regions, report.clone()));
        report
    }
}

/// FNV-1a: the report hashes about 150,000 short string keys per computation, where
/// the standard library's DoS-resistant SipHash costs several times more. The keys are
/// names already in the ticket store (device ids were validated at ingest); a fleet of
/// crafted colliding ids could slow this report only.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// Computes the report from every ticket's fact.
pub(crate) fn compute(
    facts: &[&Fact],
    query: &PerformanceQuery,
    regions: &dyn Regions,
) -> PerformanceReport {
    // Per (device, component): proactive open times and confirmed failure times, sorted.
    let mut flags_of: FastMap<(&str, &str), Vec<i64>> = FastMap::default();
    let mut failures_of: FastMap<(&str, &str), Vec<i64>> = FastMap::default();
    for f in facts.iter().copied() {
        if f.proactive {
            flags_of
                .entry((&f.device_id, &f.component))
                .or_default()
                .push(f.opened_at);
        }
        if let Some((component, at)) = f.confirmed_failure() {
            failures_of
                .entry((&f.device_id, component))
                .or_default()
                .push(at);
        }
    }
    for v in flags_of.values_mut().chain(failures_of.values_mut()) {
        v.sort_unstable();
    }
    let any_in = |times: Option<&Vec<i64>>, lo: i64, hi: i64| {
        times.is_some_and(|t| {
            let i = t.partition_point(|&x| x < lo);
            t.get(i).is_some_and(|&x| x <= hi)
        })
    };

    let in_period: Vec<&Fact> = facts
        .iter()
        .copied()
        .filter(|f| query.in_period(f.opened_at))
        .collect();
    let device_regions = regions.device_regions();
    let mut groups: FastMap<GroupKey<'_>, Acc> = FastMap::default();
    for f in in_period {
        let confirmed = f.confirmed_failure();
        let component = confirmed.map_or(f.component.as_str(), |(c, _)| c);
        let region = device_regions
            .get(f.device_id.as_str())
            .map(String::as_str)
            .or(f.region.as_deref())
            .unwrap_or(UNKNOWN_REGION);
        let key = GroupKey {
            model_version: if f.model_version.is_empty() {
                NO_MODEL
            } else {
                &f.model_version
            },
            device_type: &f.device_type,
            component,
            region,
        };
        if !query.selects(&key) {
            continue;
        }
        let acc = groups.entry(key).or_default();
        let r = &mut acc.row;
        let status = f.status();
        if f.proactive {
            r.flags += 1;
            match status {
                Some(s) if s.is_active() => r.active += 1,
                Some(TicketStatus::Dismissed) => r.dismissed += 1,
                _ => {}
            }
            if f.is_resolved() {
                r.resolved += 1;
                match f.outcome() {
                    Some(OutcomeKind::ConfirmedFailure) => r.confirmed += 1,
                    Some(OutcomeKind::NoFaultFound) => r.no_fault_found += 1,
                    Some(_) => r.inconclusive += 1,
                    None => {}
                }
            }
        }
        let Some((component, failed_at)) = confirmed else {
            continue;
        };
        if f.proactive {
            let lead = failed_at - f.opened_at;
            if lead >= 0 {
                r.caught += 1;
                acc.lead_days.push(lead as f64 / Timestamp::DAY_MS as f64);
            } else {
                r.late += 1;
            }
        } else {
            let flagged = any_in(
                flags_of.get(&(f.device_id.as_str(), component)),
                failed_at.saturating_sub(LOOKBACK_MS),
                failed_at,
            );
            if !flagged {
                r.missed += 1;
            }
        }
        r.repairs += 1;
        let repaired_at = f.ended_at.unwrap_or(failed_at);
        if any_in(
            failures_of.get(&(f.device_id.as_str(), component)),
            repaired_at.saturating_add(1),
            repaired_at.saturating_add(REPEAT_WINDOW_MS),
        ) {
            r.repeat_failures += 1;
        }
    }

    let mut total = Acc::default();
    let mut rows: BTreeMap<GroupKey<'_>, PerformanceRow> = BTreeMap::new();
    for (key, acc) in groups {
        total.add(&acc);
        let mut row = acc.finish();
        row.model_version = Some(key.model_version.to_owned());
        row.device_type = Some(key.device_type.to_owned());
        row.component = Some(key.component.to_owned());
        row.region = Some(key.region.to_owned());
        rows.insert(key, row);
    }
    PerformanceReport {
        from: query.from,
        to: query.to,
        lookback_days: (LOOKBACK_MS / Timestamp::DAY_MS) as u32,
        repeat_window_days: (REPEAT_WINDOW_MS / Timestamp::DAY_MS) as u32,
        rows: rows.into_values().collect(),
        totals: total.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = Timestamp::DAY_MS;

    fn compute(
        facts: &[Fact],
        query: &PerformanceQuery,
        regions: &dyn Regions,
    ) -> PerformanceReport {
        super::compute(&facts.iter().collect::<Vec<_>>(), query, regions)
    }

    fn fact(device: &str, proactive: bool, status: &str, opened_at: i64) -> Fact {
        Fact {
            opened_at,
            proactive,
            status: status.parse().ok(),
            device_id: device.into(),
            device_type: "washer".into(),
            component: "drain_pump".into(),
            model_version: if proactive {
                "washer-v1".into()
            } else {
                String::new()
            },
            region: None,
            ended_at: None,
            outcome_kind: None,
            outcome_component: None,
            failed_at: None,
        }
    }

    /// An outcome kind from its wire name, as the store reads it.
    fn outcome_kind(name: &str) -> Option<OutcomeKind> {
        serde_json::from_value(serde_json::Value::String(name.into())).ok()
    }

    fn resolved(mut f: Fact, kind: &str, failed_at: Option<i64>, ended_at: i64) -> Fact {
        f.outcome_kind = outcome_kind(kind);
        f.failed_at = failed_at;
        f.ended_at = Some(ended_at);
        f
    }

    #[test]
    fn precision_lead_time_missed_and_repeats_follow_the_definitions() {
        let facts = vec![
            // Caught 4 days ahead, repaired on day 5, failed again on day 20: a repeat.
            resolved(
                fact("a", true, "resolved", 0),
                "confirmed_failure",
                Some(4 * DAY),
                5 * DAY,
            ),
            resolved(
                fact("a", false, "closed", 20 * DAY),
                "confirmed_failure",
                Some(20 * DAY),
                21 * DAY,
            ),
            // A false alarm, a declined visit, a dismissal, one still open.
            resolved(fact("b", true, "resolved", 0), "no_fault_found", None, DAY),
            resolved(fact("c", true, "closed", 0), "customer_declined", None, DAY),
            fact("d", true, "dismissed", 0),
            fact("e", true, "open", 0),
            // Caught 2 days ahead.
            resolved(
                fact("f", true, "resolved", DAY),
                "confirmed_failure",
                Some(3 * DAY),
                3 * DAY,
            ),
            // Missed: a reactive failure with no flag before it.
            resolved(
                fact("g", false, "resolved", 10 * DAY),
                "confirmed_failure",
                None,
                11 * DAY,
            ),
        ];
        let report = compute(&facts, &PerformanceQuery::default(), &AssignmentRegions);
        let t = &report.totals;
        assert_eq!(
            (t.flags, t.resolved, t.confirmed, t.dismissed, t.active),
            (6, 4, 2, 1, 1)
        );
        assert_eq!(t.precision, Some(0.5));
        assert_eq!(t.dismissed_share, Some(round3(1.0 / 6.0)));
        assert_eq!((t.caught, t.late, t.missed), (2, 0, 1));
        assert_eq!(t.lead_time.count, 2);
        assert_eq!(t.lead_time.mean_days, Some(3.0));
        assert_eq!(t.lead_time.median_days, Some(2.0));
        // Repairs: a (day 5, repeat on day 20), a again (day 21), f, g.
        assert_eq!((t.repairs, t.repeat_failures), (4, 1));
        // The reactive ticket of "a" had a flag 20 days before: not missed.
        let none_row = report
            .rows
            .iter()
            .find(|r| r.model_version.as_deref() == Some(NO_MODEL))
            .unwrap();
        assert_eq!((none_row.missed, none_row.repairs), (1, 2));
        assert_eq!(none_row.region.as_deref(), Some(UNKNOWN_REGION));
    }

    #[test]
    fn device_regions_win_over_assignment_regions_and_filters_select_groups() {
        let mut with_assignment = fact("a", true, "open", 0);
        with_assignment.region = Some("south".into());
        let mut other = fact("b", true, "open", 0);
        other.region = Some("south".into());
        let facts = vec![with_assignment, other];
        let registry = HashMap::from([("a".to_owned(), "north".to_owned())]);
        let report = compute(&facts, &PerformanceQuery::default(), &registry);
        let regions: Vec<_> = report
            .rows
            .iter()
            .map(|r| r.region.clone().unwrap())
            .collect();
        assert_eq!(regions, ["north", "south"]);
        let q = PerformanceQuery {
            region: Some("south".into()),
            ..Default::default()
        };
        let report = compute(&facts, &q, &registry);
        assert_eq!(report.totals.flags, 1);
    }

    #[test]
    fn the_period_selects_by_opened_at_but_looks_outside_it() {
        let facts = vec![
            // A flag before the period, then a reactive failure inside it: not missed.
            fact("a", true, "dismissed", 0),
            resolved(
                fact("a", false, "resolved", 10 * DAY),
                "confirmed_failure",
                None,
                11 * DAY,
            ),
            // A late flag: the failure came before it opened.
            resolved(
                fact("b", true, "resolved", 10 * DAY),
                "confirmed_failure",
                Some(9 * DAY),
                12 * DAY,
            ),
        ];
        let q = PerformanceQuery {
            from: Some(Timestamp(5 * DAY)),
            to: Some(Timestamp(20 * DAY)),
            ..Default::default()
        };
        let t = compute(&facts, &q, &AssignmentRegions).totals;
        assert_eq!((t.flags, t.missed, t.late, t.caught), (1, 0, 1, 0));
        assert_eq!(t.recall, Some(0.0));
        assert_eq!(t.lead_time, LeadTime::default());
    }
}
