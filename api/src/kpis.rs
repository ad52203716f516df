//! The service KPIs (`GET /api/v1/kpis`, the console's KPI page): the measures the
//! after-sales teams run the service by (../shared/SEEDS.md, "What they measure"),
//! computed from the tickets opened in a period. docs/kpis.md gives every definition;
//! each function here says the same in its doc comment.
//!
//! The work is in two steps, both pure functions over [`KpiFact`]s:
//! 1. [`judge`] decides, per ticket of the period, what it contributes to each figure
//!    (its response time, whether it was a repair fixed the first time, a repeat
//!    complaint, a failure warned in advance, a false alarm, ...), looking at the other
//!    tickets it needs (the 30 days before it, the reopen window after it);
//! 2. [`aggregate`] adds up any set of judged tickets into [`Kpis`]: the period, each
//!    group, each bucket of the series.
//!
//! So a ticket's contribution does not depend on how the report is cut: the groups of a
//! report add up to its overall counts.

use std::collections::{BTreeMap, HashMap};

use domain::{OutcomeKind, TicketSource, TicketStatus, Timestamp};
use serde::{Deserialize, Serialize};
use store::tickets::KpiFact;

use crate::tickets::TicketService;
use crate::{Error, Result};

/// An hour in milliseconds.
const HOUR_MS: i64 = 3_600_000;

/// How far back a customer report looks for an earlier one of the same device (the
/// seeds' "the same customer again within 30 days").
pub const REPEAT_WINDOW_MS: i64 = 30 * Timestamp::DAY_MS;

/// How long before a failure a proactive ticket still counts as its warning.
pub const WARNING_WINDOW_MS: i64 = 30 * Timestamp::DAY_MS;

/// The longest period one report covers (a year and a day, so a leap year fits).
pub const MAX_PERIOD_DAYS: i64 = 366;

/// The latest time a period may name: 9999-12-31T23:59:59.999Z.
const LATEST_MS: i64 = 253_402_300_799_999;

/// The period when the caller names none: the 30 days up to now.
pub const DEFAULT_PERIOD_DAYS: i64 = 30;

/// The satisfaction score at or below which a customer counts as dissatisfied when no
/// other is configured (the seeds' "a dissatisfied customer": 2 of 5 or less).
pub const DEFAULT_DISSATISFIED_AT_MOST: u8 = 2;

/// The parameters of the definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KpiRules {
    /// A score at or below it is dissatisfied (`[satisfaction] dissatisfied_at_most`).
    pub dissatisfied_at_most: u8,
    /// A repair that comes back within it (a reopen, or a new ticket for the same
    /// device and component) was not fixed the first time (`[tickets] reopen_window`).
    pub reopen_window_ms: i64,
}

impl Default for KpiRules {
    fn default() -> Self {
        Self {
            dissatisfied_at_most: DEFAULT_DISSATISFIED_AT_MOST,
            reopen_window_ms: 14 * Timestamp::DAY_MS,
        }
    }
}

/// What a report is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The device's region (the registry's, else the assignment's; `unknown`).
    Region,
    /// The assigned engineer (`unassigned`).
    Engineer,
    /// The device type.
    DeviceType,
    /// The ticket's priority.
    Priority,
    /// `proactive` or `reactive`.
    Source,
}

impl GroupBy {
    /// Every grouping.
    pub const ALL: [GroupBy; 5] = [
        Self::Region,
        Self::Engineer,
        Self::DeviceType,
        Self::Priority,
        Self::Source,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Region => "region",
            Self::Engineer => "engineer",
            Self::DeviceType => "device_type",
            Self::Priority => "priority",
            Self::Source => "source",
        }
    }

    /// From the wire name; [`Error::BadRequest`] naming the choices.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "parameter group_by: unknown grouping {s:?}; expected region, engineer, device_type, priority or source"
                ))
            })
    }

    /// The group a ticket falls in.
    fn key(self, f: &KpiFact) -> String {
        match self {
            Self::Region => f.region.clone().unwrap_or_else(|| "unknown".into()),
            Self::Engineer => f.engineer.clone().unwrap_or_else(|| "unassigned".into()),
            Self::DeviceType => f.device_type.clone(),
            Self::Priority => f
                .priority
                .map_or_else(|| "unknown".into(), |p| p.as_str().to_owned()),
            Self::Source => f.source.as_str().to_owned(),
        }
    }
}

/// The series' bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// UTC days.
    #[default]
    Day,
    /// Weeks from Monday 00:00 UTC.
    Week,
}

impl Bucket {
    /// From the wire name; [`Error::BadRequest`] naming the choices.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            _ => Err(Error::BadRequest(format!(
                "parameter bucket: unknown bucket {s:?}; expected day or week"
            ))),
        }
    }

    fn len_ms(self) -> i64 {
        match self {
            Self::Day => Timestamp::DAY_MS,
            Self::Week => 7 * Timestamp::DAY_MS,
        }
    }

    /// The start of the bucket holding `t`. The epoch was a Thursday, so weeks are
    /// counted from Monday 1970-01-05.
    fn start(self, t: i64) -> i64 {
        let offset = match self {
            Self::Day => 0,
            Self::Week => 4 * Timestamp::DAY_MS,
        };
        t - (t - offset).rem_euclid(self.len_ms())
    }
}

/// What a report covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KpiQuery {
    /// Tickets opened at or after it.
    pub from: Timestamp,
    /// Tickets opened before it.
    pub to: Timestamp,
    /// Groups, if any.
    pub group_by: Option<GroupBy>,
    /// The series' bucket.
    pub bucket: Bucket,
}

impl KpiQuery {
    /// A query from the optional bounds (defaults: `to` now, `from` 30 days before
    /// `to`); [`Error::BadRequest`] when `from` is after `to` or the period is longer
    /// than [`MAX_PERIOD_DAYS`].
    pub fn new(
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        group_by: Option<GroupBy>,
        bucket: Bucket,
        now: Timestamp,
    ) -> Result<Self> {
        for (name, t) in [("from", from), ("to", to)] {
            if t.is_some_and(|t| !(0..=LATEST_MS).contains(&t.millis())) {
                return Err(Error::BadRequest(format!(
                    "parameter {name}: must lie between 1970 and the end of 9999"
                )));
            }
        }
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(Timestamp(
            to.millis() - DEFAULT_PERIOD_DAYS * Timestamp::DAY_MS,
        ));
        if from > to {
            return Err(Error::BadRequest(format!(
                "from ({from}) is later than to ({to})"
            )));
        }
        if to.millis() - from.millis() > MAX_PERIOD_DAYS * Timestamp::DAY_MS {
            return Err(Error::BadRequest(format!(
                "the period from {from} to {to} is longer than {MAX_PERIOD_DAYS} days; ask for it in parts"
            )));
        }
        Ok(Self {
            from,
            to,
            group_by,
            bucket,
        })
    }
}

/// Durations in hours: how many, their mean, median and 90th percentile (nearest
/// rank); `null` figures without any.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Durations {
    /// How many durations.
    pub count: u64,
    /// Mean, hours.
    pub mean_hours: Option<f64>,
    /// Median (nearest rank), hours.
    pub p50_hours: Option<f64>,
    /// 90th percentile (nearest rank), hours.
    pub p90_hours: Option<f64>,
}

impl Durations {
    fn of(mut hours: Vec<f64>) -> Self {
        if hours.is_empty() {
            return Self::default();
        }
        hours.sort_by(f64::total_cmp);
        let n = hours.len();
        let rank = |p: f64| hours[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self {
            count: n as u64,
            mean_hours: Some(hours.iter().sum::<f64>() / n as f64),
            p50_hours: Some(rank(0.5)),
            p90_hours: Some(rank(0.9)),
        }
    }
}

/// `part` of `whole`, `null` when `whole` is 0.
fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// First-time fix.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FirstTimeFix {
    /// Repairs: resolved or closed tickets whose outcome is `confirmed_failure`.
    pub repairs: u64,
    /// Of them, those with at most one visit that did not come back within the reopen
    /// window.
    pub fixed_first_time: u64,
    /// `fixed_first_time / repairs`.
    pub rate: Option<f64>,
}

/// Call-backs to dissatisfied customers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Callbacks {
    /// Opened.
    pub opened: u64,
    /// Done by their deadline.
    pub on_time: u64,
    /// Found past their deadline, or done after it.
    pub overdue: u64,
    /// Neither done nor overdue yet.
    pub pending: u64,
    /// `on_time / (on_time + overdue)`.
    pub on_time_share: Option<f64>,
}

/// Customer satisfaction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SatisfactionKpis {
    /// Tickets with an answer.
    pub answers: u64,
    /// Mean score (1-5).
    pub mean_score: Option<f64>,
    /// Answers at or below the dissatisfied score.
    pub dissatisfied: u64,
    /// `dissatisfied / answers`.
    pub dissatisfied_share: Option<f64>,
    /// The call-backs.
    pub callbacks: Callbacks,
}

/// Repeat complaints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RepeatComplaints {
    /// Customer-reported tickets (channel other than `device`).
    pub customer_reports: u64,
    /// Of them, those whose device had another customer-reported ticket opened in the
    /// 30 days before.
    pub repeats: u64,
    /// `repeats / customer_reports`.
    pub rate: Option<f64>,
}

/// Failures warned in advance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WarnedInAdvance {
    /// Confirmed failures with a failure time.
    pub failures: u64,
    /// Of them, those a proactive ticket for the same device and component warned of:
    /// opened before the failure and at most 30 days before it.
    pub warned: u64,
    /// `warned / failures`.
    pub share: Option<f64>,
    /// Lead time of the warned failures (failure time minus the first warning's
    /// opening), hours.
    pub lead_time: Durations,
}

/// False alarms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FalseAlarms {
    /// Proactive tickets that ended: resolved, closed or dismissed.
    pub ended_proactive: u64,
    /// Of them, those dismissed or resolved as `no_fault_found`.
    pub false_alarms: u64,
    /// `false_alarms / ended_proactive`.
    pub share: Option<f64>,
}

/// Step-limit breaches of one step (or all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StepBreaches {
    /// The step's name (`all` for the total).
    pub step: String,
    /// Step clocks.
    pub with_clock: u64,
    /// Of them, those past their limit (found overdue, or done after the limit).
    pub overdue: u64,
    /// `overdue / with_clock`.
    pub share: Option<f64>,
}

/// Tickets counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// Tickets opened.
    pub opened: u64,
    /// Of them, still active.
    pub active: u64,
    /// By source (`proactive`, `reactive`).
    pub by_source: BTreeMap<String, u64>,
    /// By channel (`device`, `phone`, `app`, `web`, `installer`).
    pub by_channel: BTreeMap<String, u64>,
}

/// The service KPIs of a set of tickets (docs/kpis.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Kpis {
    /// Tickets opened, by source and channel.
    pub counts: Counts,
    /// Opening to first contact (leaving `open`).
    pub response: Durations,
    /// Opening to resolution, of resolved and closed tickets.
    pub resolution: Durations,
    /// First-time fix rate of repairs.
    pub first_time_fix: FirstTimeFix,
    /// Customer satisfaction and call-backs.
    pub satisfaction: SatisfactionKpis,
    /// Repeat complaints within 30 days.
    pub repeat_complaints: RepeatComplaints,
    /// Failures warned in advance.
    pub warned_in_advance: WarnedInAdvance,
    /// False alarms of proactive tickets.
    pub false_alarms: FalseAlarms,
    /// Step-limit breaches: the total, then per step by name.
    pub steps: StepBreaches,
    /// Per step, by name.
    pub steps_by_name: Vec<StepBreaches>,
}

/// One group of a report.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KpiGroup {
    /// The group's key (a region, a login, a device type, a priority, a source).
    pub key: String,
    /// Its figures.
    pub kpis: Kpis,
}

/// One bucket of the series.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KpiPoint {
    /// The bucket's start (UTC day or Monday).
    #[schema(value_type = String)]
    pub start: Timestamp,
    /// The figures of the tickets opened in it.
    pub kpis: Kpis,
}

/// `GET /api/v1/kpis`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KpiReport {
    /// Tickets opened at or after it.
    #[schema(value_type = String)]
    pub from: Timestamp,
    /// Tickets opened before it.
    #[schema(value_type = String)]
    pub to: Timestamp,
    /// The grouping asked for.
    pub group_by: Option<GroupBy>,
    /// The series' bucket.
    pub bucket: Bucket,
    /// The score at or below which an answer counts as dissatisfied.
    pub dissatisfied_at_most: u8,
    /// Every ticket of the period.
    pub overall: Kpis,
    /// One per group, by key (empty without `group_by`).
    pub groups: Vec<KpiGroup>,
    /// One per bucket from the one holding `from`, oldest first.
    pub series: Vec<KpiPoint>,
}

/// The state of a call-back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallbackState {
    OnTime,
    Overdue,
    Pending,
}

/// What one ticket contributes to each figure (`None`: it does not count there).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    response_h: Option<f64>,
    resolution_h: Option<f64>,
    /// A repair: whether it was fixed the first time.
    repair: Option<bool>,
    satisfaction: Option<u8>,
    callback: Option<CallbackState>,
    /// A customer report: whether it repeats one of the 30 days before.
    complaint: Option<bool>,
    /// A confirmed failure: the lead time of its warning, if warned.
    failure: Option<Option<f64>>,
    /// An ended proactive ticket: whether it was a false alarm.
    proactive_end: Option<bool>,
    /// (step, overdue) per step clock.
    steps: Vec<(String, bool)>,
}

fn hours(from: Timestamp, to: Timestamp) -> f64 {
    (to.millis() - from.millis()).max(0) as f64 / HOUR_MS as f64
}

fn ended_as_resolved(f: &KpiFact) -> bool {
    matches!(
        f.status,
        Some(TicketStatus::Resolved | TicketStatus::Closed)
    )
}

/// Decides what each ticket of `period` contributes, with `lookup` the tickets around
/// it (those opened from 60 days before the period to the reopen window after it; it
/// may include `period`'s own). The definitions:
///
/// * **Response time**: `responded_at - opened_at` (first contact: the ticket left
///   `open`, by a person or the dispatcher), of the tickets that have left `open`.
/// * **Resolution time**: `ended_at - opened_at` of resolved and closed tickets
///   (dismissed ones are not resolutions). The clock stops at `resolved`, not
///   `closed`: closing is the customer's confirmation, which waits on the customer.
/// * **Repair** (first-time fix): a resolved or closed ticket whose outcome is
///   `confirmed_failure`. It was fixed the first time when it had at most one visit
///   (0: fixed remotely), was never reopened (a reopen is allowed only within the
///   reopen window), and no other ticket for the same device and component opened
///   after its resolution within the reopen window (the fault came back as a new
///   ticket).
/// * **Satisfaction**: the answer's score; the call-back is on time when done by its
///   deadline, overdue when found overdue or done after the deadline, else pending.
/// * **Complaint**: a ticket whose channel is not `device`; a repeat when another
///   ticket of the same device with a channel other than `device` opened in the 30
///   days before it.
/// * **Failure**: a ticket whose outcome is `confirmed_failure`, at `failed_at`, else
///   `ended_at` (without either it is not counted yet), of the outcome's component
///   (else the ticket's). Warned when a proactive ticket of the same device and
///   component (the failure's own ticket included) opened before the failure time and
///   at most 30 days before it; the lead time runs from the earliest such warning.
/// * **Ended proactive ticket**: resolved, closed or dismissed; a false alarm when
///   dismissed or its outcome is `no_fault_found`.
/// * **Step clocks**: each step of the procedure; overdue when found past its limit
///   (`overdue_at`) or done after its `due`.
pub fn judge(period: &[KpiFact], lookup: &[KpiFact], rules: &KpiRules) -> Vec<Verdict> {
    let mut by_device: HashMap<&str, Vec<&KpiFact>> = HashMap::new();
    for f in lookup {
        by_device.entry(f.device_id.as_str()).or_default().push(f);
    }
    let empty = Vec::new();
    period
        .iter()
        .map(|f| {
            let same_device = by_device.get(f.device_id.as_str()).unwrap_or(&empty);
            let resolved = ended_as_resolved(f);
            let confirmed = f.outcome_kind == Some(OutcomeKind::ConfirmedFailure);
            let repair = (resolved && confirmed).then(|| {
                let came_back = f.ended_at.is_some_and(|end| {
                    same_device.iter().any(|o| {
                        o.id != f.id
                            && o.component == f.component
                            && o.opened_at > end
                            && o.opened_at.millis() - end.millis() <= rules.reopen_window_ms
                    })
                });
                f.visits <= 1 && f.reopened.is_empty() && !came_back
            });
            let callback = f.callback.as_ref().map(|c| match c.done_at {
                Some(done) if done <= c.due => CallbackState::OnTime,
                Some(_) => CallbackState::Overdue,
                None if c.overdue_at.is_some() => CallbackState::Overdue,
                None => CallbackState::Pending,
            });
            let by_customer = |o: &KpiFact| o.channel != "device";
            let complaint = by_customer(f).then(|| {
                same_device.iter().any(|o| {
                    o.id != f.id
                        && by_customer(o)
                        && o.opened_at <= f.opened_at
                        && f.opened_at.millis() - o.opened_at.millis() <= REPEAT_WINDOW_MS
                        && (o.opened_at < f.opened_at || o.id < f.id)
                })
            });
            let failure = if confirmed {
                f.failed_at.or(f.ended_at).map(|at| {
                    let component = f.outcome_component.as_deref().unwrap_or(&f.component);
                    same_device
                        .iter()
                        .filter(|o| {
                            o.source == TicketSource::Proactive
                                && o.component == component
                                && o.opened_at < at
                                && at.millis() - o.opened_at.millis() <= WARNING_WINDOW_MS
                        })
                        .map(|o| o.opened_at)
                        .min()
                        .map(|first| hours(first, at))
                })
            } else {
                None
            };
            let ended = matches!(
                f.status,
                Some(TicketStatus::Resolved | TicketStatus::Closed | TicketStatus::Dismissed)
            );
            let proactive_end = (f.source == TicketSource::Proactive && ended).then(|| {
                f.status == Some(TicketStatus::Dismissed)
                    || f.outcome_kind == Some(OutcomeKind::NoFaultFound)
            });
            Verdict {
                response_h: f.responded_at.map(|r| hours(f.opened_at, r)),
                resolution_h: resolved
                    .then_some(f.ended_at)
                    .flatten()
                    .map(|e| hours(f.opened_at, e)),
                repair,
                satisfaction: f.satisfaction,
                callback,
                complaint,
                failure,
                proactive_end,
                steps: f
                    .steps
                    .iter()
                    .map(|s| {
                        let late = s.overdue_at.is_some() || s.done_at.is_some_and(|d| d > s.due);
                        (s.step.clone(), late)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Adds up judged tickets into [`Kpis`].
pub fn aggregate<'a>(
    items: impl IntoIterator<Item = (&'a KpiFact, &'a Verdict)>,
    rules: &KpiRules,
) -> Kpis {
    let mut k = Kpis::default();
    let (mut response, mut resolution, mut leads) = (Vec::new(), Vec::new(), Vec::new());
    let mut score_sum = 0u64;
    let mut steps: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (f, v) in items {
        let c = &mut k.counts;
        c.opened += 1;
        if f.status.is_some_and(TicketStatus::is_active) {
            c.active += 1;
        }
        *c.by_source.entry(f.source.as_str().to_owned()).or_default() += 1;
        *c.by_channel.entry(f.channel.clone()).or_default() += 1;
        response.extend(v.response_h);
        resolution.extend(v.resolution_h);
        if let Some(first) = v.repair {
            k.first_time_fix.repairs += 1;
            k.first_time_fix.fixed_first_time += u64::from(first);
        }
        if let Some(score) = v.satisfaction {
            let s = &mut k.satisfaction;
            s.answers += 1;
            score_sum += u64::from(score);
            s.dissatisfied += u64::from(score <= rules.dissatisfied_at_most);
        }
        if let Some(state) = v.callback {
            let cb = &mut k.satisfaction.callbacks;
            cb.opened += 1;
            match state {
                CallbackState::OnTime => cb.on_time += 1,
                CallbackState::Overdue => cb.overdue += 1,
                CallbackState::Pending => cb.pending += 1,
            }
        }
        if let Some(repeat) = v.complaint {
            k.repeat_complaints.customer_reports += 1;
            k.repeat_complaints.repeats += u64::from(repeat);
        }
        if let Some(lead) = v.failure {
            k.warned_in_advance.failures += 1;
            if let Some(h) = lead {
                k.warned_in_advance.warned += 1;
                leads.push(h);
            }
        }
        if let Some(false_alarm) = v.proactive_end {
            k.false_alarms.ended_proactive += 1;
            k.false_alarms.false_alarms += u64::from(false_alarm);
        }
        for (name, late) in &v.steps {
            let e = steps.entry(name.as_str()).or_default();
            e.0 += 1;
            e.1 += u64::from(*late);
        }
    }
    k.response = Durations::of(response);
    k.resolution = Durations::of(resolution);
    let ftf = &mut k.first_time_fix;
    ftf.rate = share(ftf.fixed_first_time, ftf.repairs);
    let s = &mut k.satisfaction;
    s.mean_score = (s.answers > 0).then(|| score_sum as f64 / s.answers as f64);
    s.dissatisfied_share = share(s.dissatisfied, s.answers);
    let cb = &mut s.callbacks;
    cb.on_time_share = share(cb.on_time, cb.on_time + cb.overdue);
    let r = &mut k.repeat_complaints;
    r.rate = share(r.repeats, r.customer_reports);
    let w = &mut k.warned_in_advance;
    w.share = share(w.warned, w.failures);
    w.lead_time = Durations::of(leads);
    let fa = &mut k.false_alarms;
    fa.share = share(fa.false_alarms, fa.ended_proactive);
    let breach = |step: &str, (with_clock, overdue): (u64, u64)| StepBreaches {
        step: step.to_owned(),
        with_clock,
        overdue,
        share: share(overdue, with_clock),
    };
    let total = steps.values().fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    k.steps = breach("all", total);
    k.steps_by_name = steps.into_iter().map(|(s, n)| breach(s, n)).collect();
    k
}

/// The report of `query` from the tickets of its period (`period`, opened in
/// `[from, to)`) and those around it (`lookup`).
pub fn report(
    query: &KpiQuery,
    period: &[KpiFact],
    lookup: &[KpiFact],
    rules: &KpiRules,
) -> KpiReport {
    let verdicts = judge(period, lookup, rules);
    let all = || period.iter().zip(&verdicts);
    let groups = query.group_by.map_or_else(Vec::new, |g| {
        let mut keys: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, f) in period.iter().enumerate() {
            keys.entry(g.key(f)).or_default().push(i);
        }
        keys.into_iter()
            .map(|(key, idx)| KpiGroup {
                key,
                kpis: aggregate(idx.into_iter().map(|i| (&period[i], &verdicts[i])), rules),
            })
            .collect()
    });
    let len = query.bucket.len_ms();
    let first = query.bucket.start(query.from.millis());
    let buckets = (query.to.millis() - first + len - 1).div_euclid(len).max(0) as usize;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); buckets];
    for (i, f) in period.iter().enumerate() {
        let b = (f.opened_at.millis() - first).div_euclid(len);
        if let Some(m) = usize::try_from(b).ok().and_then(|b| members.get_mut(b)) {
            m.push(i);
        }
    }
    let series = members
        .into_iter()
        .enumerate()
        .map(|(b, idx)| KpiPoint {
            start: Timestamp(first + b as i64 * len),
            kpis: aggregate(idx.into_iter().map(|i| (&period[i], &verdicts[i])), rules),
        })
        .collect();
    KpiReport {
        from: query.from,
        to: query.to,
        group_by: query.group_by,
        bucket: query.bucket,
        dissatisfied_at_most: rules.dissatisfied_at_most,
        overall: aggregate(all(), rules),
        groups,
        series,
    }
}

impl TicketService {
    /// The rules of the KPI definitions in force: the reopen window of the ticket
    /// configuration and the dissatisfied score ([`DEFAULT_DISSATISFIED_AT_MOST`]).
    pub fn kpi_rules(&self) -> KpiRules {
        KpiRules {
            dissatisfied_at_most: DEFAULT_DISSATISFIED_AT_MOST,
            reopen_window_ms: self.config().reopen_window.millis(),
        }
    }

    /// The service KPIs of `query` (docs/kpis.md): reads the tickets opened from 60
    /// days before the period (30 days of look-back for repeats and warnings, and up
    /// to 30 more for a failure that happened before its ticket opened) to the reopen
    /// window after it, on a connection of its own. Blocking.
    #[tracing::instrument(skip(self), fields(from = %query.from, to = %query.to))]
    pub fn kpis(&self, query: &KpiQuery) -> Result<KpiReport> {
        let rules = self.kpi_rules();
        let lo = Timestamp(query.from.millis() - REPEAT_WINDOW_MS - WARNING_WINDOW_MS);
        let hi = Timestamp(query.to.millis().saturating_add(rules.reopen_window_ms));
        let reader = self.open_reader()?;
        let lookup = reader.tables().kpi_facts(lo, hi)?;
        let period: Vec<KpiFact> = lookup
            .iter()
            .filter(|f| f.opened_at >= query.from && f.opened_at < query.to)
            .cloned()
            .collect();
        Ok(report(query, &period, &lookup, &rules))
    }
}

#[cfg(test)]
mod tests;
