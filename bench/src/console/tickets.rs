//! The tickets of `bench console`, through the ticket service under a simulated clock,
//! day by day: a year of tickets opened by model flags and critical faults and closed a
//! few days later (confirmed with parts, no fault found, declined, not reached,
//! dismissed; half of the resolved ones closed), then in the last 30 days the open
//! queue: `open` tickets left open, acknowledged, scheduled to an engineer with a
//! window, or in progress.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use domain::{Contribution, OutcomeKind, Prediction, TicketSource, TicketStatus, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fleet::Fleet;
use crate::Result;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = Timestamp::DAY_MS;
/// Asia/Shanghai, where the benchmark's people work: windows are in their daytime.
const LOCAL_OFFSET_MS: i64 = 8 * HOUR_MS;
/// Days before the end in which the open tickets are raised.
const OPEN_DAYS: u32 = 30;

/// Engineers the tickets go to (`engineer-00` ...), besides the benchmark's own.
pub(super) const ENGINEERS: usize = 50;

/// An engineer's login.
pub(super) fn engineer(k: usize) -> String {
    format!("engineer-{:02}", k % ENGINEERS)
}

/// How the ticket log names engineer `login` (as it names a person: `name (login)`).
fn engineer_actor(login: &str) -> String {
    format!("{login} ({login})")
}

/// What happens to a closed-history ticket, and on which day.
enum Fate {
    Resolve {
        id: i64,
        device: usize,
        kind: OutcomeKind,
        component: String,
    },
    Dismiss {
        id: i64,
    },
    Close {
        id: i64,
    },
}

/// What [`write_tickets`] made.
pub(super) struct Written {
    /// Tickets per status at the end.
    pub(super) by_status: BTreeMap<String, u64>,
    /// An active ticket of shown device 0, for the planner's ticket page.
    pub(super) planner_ticket: i64,
    /// An active ticket of shown device 1, assigned to the benchmark's engineer.
    pub(super) engineer_ticket: i64,
    /// Changes the ticket service refused (e.g. a ticket already moved on).
    pub(super) refused: u64,
}

/// The generator's state from one day to the next.
struct Year<'a> {
    fleet: &'a Fleet,
    tickets: &'a api::TicketService,
    clock: &'a AtomicI64,
    rng: ChaCha8Rng,
    schedule: BTreeMap<u32, Vec<Fate>>,
    end: Timestamp,
    refused: u64,
}

/// Writes the tickets (see the module docs): about `closed` over `days` days, then
/// `open` active ones in the last 30 days, `mine` of them scheduled to `me`.
pub(super) fn write_tickets(
    fleet: &Fleet,
    tickets: &api::TicketService,
    clock: &AtomicI64,
    (start, end): (Timestamp, Timestamp),
    closed: usize,
    open: usize,
    me: &str,
) -> Result<Written> {
    let days = ((end.millis() - start.millis()) / DAY_MS).max(1) as u32;
    let mut year = Year {
        fleet,
        tickets,
        clock,
        rng: ChaCha8Rng::seed_from_u64(19),
        schedule: BTreeMap::new(),
        end,
        refused: 0,
    };
    let history_days = days.saturating_sub(OPEN_DAYS).max(1);
    let open_from = days.saturating_sub(OPEN_DAYS);
    let mut opened_active: Vec<i64> = Vec::new();
    let mut carry_closed = 0.0;
    for day in 0..days {
        let morning = start.millis() + i64::from(day) * DAY_MS + 8 * HOUR_MS;
        year.at(morning);
        if day < history_days {
            carry_closed += closed as f64 / f64::from(history_days);
            let n = carry_closed.floor() as usize;
            carry_closed -= n as f64;
            for (id, device, component) in year.raise(n, morning, 0.05)? {
                year.plan(day, id, device, component);
            }
        }
        if day >= open_from {
            // By the end of today, this share of the open tickets; a flag on a pair
            // whose flag episode already had a ticket opens none, so what falls short
            // is raised again (on the last day until the count is reached).
            let due = open * (day - open_from + 1) as usize / (days - open_from) as usize;
            for attempt in 0..if day + 1 == days { 20 } else { 1 } {
                let n = due.saturating_sub(opened_active.len());
                if n == 0 {
                    break;
                }
                let at = morning + HOUR_MS + attempt * 60_000;
                year.at(at);
                let raised = year.raise(n, at, 0.002)?;
                year.at(at + 2 * HOUR_MS);
                for (id, device, _) in raised {
                    year.progress(id, device);
                    opened_active.push(id);
                }
            }
        }
        year.at(morning + 8 * HOUR_MS);
        for fate in year.schedule.remove(&day).unwrap_or_default() {
            year.fate(day, fate);
        }
    }
    // The shown devices: each an active ticket of its first component (the pages'
    // subjects), from a flag raised anew (a score under the threshold first ends the
    // flag episode an earlier ticket may have had); device 1's is the benchmark
    // engineer's, in progress.
    let mut shown_tickets = Vec::new();
    for device in 0..fleet.shown {
        let component = fleet.profile(device).components()[0].name.clone();
        let ctx = fleet.context(device);
        let mut calm = year.prediction(device, &component, end.millis() - 3 * HOUR_MS);
        calm.risk = 0.2;
        calm.flagged = false;
        year.at(end.millis() - 3 * HOUR_MS);
        tickets.record_batch(&[(std::slice::from_ref(&calm), &ctx)])?;
        let p = year.prediction(device, &component, end.millis() - 2 * HOUR_MS);
        year.at(end.millis() - 2 * HOUR_MS);
        let changes = tickets.record_batch(&[(std::slice::from_ref(&p), &ctx)])?;
        if let Some(c) = changes.first() {
            shown_tickets.push(c.ticket_id);
        }
    }
    let planner_ticket = *shown_tickets
        .first()
        .ok_or_else(|| crate::Error::Failed("no shown device got a ticket".into()))?;
    let engineer_ticket = *shown_tickets.get(1).unwrap_or(&planner_ticket);
    year.schedule_to(engineer_ticket, me, 0, 9)?;
    year.attempt(tickets.transition(engineer_ticket, TicketStatus::InProgress, me, "", None));
    // The benchmark engineer's day and fortnight: `mine` scheduled tickets.
    let mine = opened_active.len().min(45);
    for (k, id) in opened_active.iter().rev().take(mine).enumerate() {
        let (day, hour) = if k < 10 {
            (0, 8 + k as i64)
        } else {
            (1 + (k as i64 - 10) % 14, 9 + (k as i64 % 8))
        };
        year.schedule_to(*id, me, day, hour)?;
    }
    clock.store(0, Ordering::SeqCst);
    Ok(Written {
        by_status: tickets
            .count_by_status()?
            .into_iter()
            .map(|(s, n)| (s.to_string(), n))
            .collect(),
        planner_ticket,
        engineer_ticket,
        refused: year.refused,
    })
}

impl Year<'_> {
    /// Sets the simulated clock.
    fn at(&self, ms: i64) {
        self.clock.store(ms, Ordering::SeqCst);
    }

    /// A flagged prediction for `component` of `device` at `ts`, explained by three
    /// of its channels (value against the normal range).
    fn prediction(&mut self, device: usize, component: &str, ts: i64) -> Prediction {
        let p = self.fleet.profile(device);
        let top_features = p
            .channels()
            .iter()
            .take(3)
            .enumerate()
            .map(|(k, c)| {
                let span = c.max - c.min;
                Contribution {
                    feature: format!("{}.ewma_fast", c.name),
                    value: c.min + span * self.rng.gen_range(0.6..0.9),
                    contribution: 1.5 / (k as f64 + 1.0),
                    normal_range: Some((c.min + span * 0.3, c.min + span * 0.5)),
                }
            })
            .collect();
        Prediction {
            device_id: self.fleet.ids[device].clone(),
            device_type: p.device_type().to_owned(),
            component: component.to_owned(),
            ts: Timestamp(ts),
            risk: self.rng.gen_range(0.6..0.99),
            threshold: 0.6,
            flagged: true,
            model_version: format!("{}-v2", p.device_type()),
            top_features,
            lead_time_days: Some(self.rng.gen_range(2.0..21.0)),
            warming_up: false,
        }
    }

    /// Raises `n` tickets at `ts` (three in four from model flags, the rest from
    /// critical faults), a share `shown` of them on the shown devices; returns the
    /// opened ones as (id, device, component).
    fn raise(&mut self, n: usize, ts: i64, shown: f64) -> Result<Vec<(i64, usize, String)>> {
        let fleet = self.fleet;
        let mut flags: Vec<(usize, Prediction, api::DiagnosisContext)> = Vec::new();
        let mut faults: Vec<(usize, String, api::FaultSignal, api::DiagnosisContext)> = Vec::new();
        for _ in 0..n {
            let device = if fleet.shown > 0 && self.rng.gen::<f64>() < shown {
                self.rng.gen_range(0..fleet.shown)
            } else {
                self.rng
                    .gen_range(fleet.shown.min(fleet.ids.len() - 1)..fleet.ids.len())
            };
            let critical = fleet.critical(device);
            if self.rng.gen::<f64>() < 0.25 && !critical.is_empty() {
                let (code, component) = critical[self.rng.gen_range(0..critical.len())].clone();
                let signal = api::FaultSignal {
                    device_id: fleet.ids[device].clone(),
                    device_type: fleet.profile(device).device_type().to_owned(),
                    code,
                    ts: Timestamp(ts),
                };
                faults.push((device, component, signal, fleet.context(device)));
            } else {
                let components = fleet.profile(device).components();
                let component = components[self.rng.gen_range(0..components.len())]
                    .name
                    .clone();
                let p = self.prediction(device, &component, ts);
                flags.push((device, p, fleet.context(device)));
            }
        }
        let mut opened = Vec::new();
        let batch: Vec<(&[Prediction], &api::DiagnosisContext)> = flags
            .iter()
            .map(|(_, p, ctx)| (std::slice::from_ref(p), ctx))
            .collect();
        for (change, (device, p, _)) in self.tickets.record_batch(&batch)?.iter().zip(&flags) {
            if change.kind == api::TicketChangeKind::Opened {
                opened.push((change.ticket_id, *device, p.component.clone()));
            }
        }
        let signals: Vec<api::DeviceSignals<'_>> = faults
            .iter()
            .map(|(_, _, f, ctx)| api::DeviceSignals {
                predictions: &[],
                faults: std::slice::from_ref(f),
                context: ctx,
            })
            .collect();
        for (change, (device, component, _, _)) in
            self.tickets.record(&signals)?.iter().zip(&faults)
        {
            if change.kind == api::TicketChangeKind::Opened
                && change.source == TicketSource::Reactive
            {
                opened.push((change.ticket_id, *device, component.clone()));
            }
        }
        Ok(opened)
    }

    /// Plans a history ticket's fate 1-10 days after `day`.
    fn plan(&mut self, day: u32, id: i64, device: usize, component: String) {
        let u: f64 = self.rng.gen();
        let fate = if u < 0.15 {
            Fate::Dismiss { id }
        } else {
            let kind = if u < 0.70 {
                OutcomeKind::ConfirmedFailure
            } else if u < 0.88 {
                OutcomeKind::NoFaultFound
            } else if u < 0.94 {
                OutcomeKind::CustomerDeclined
            } else {
                OutcomeKind::NotReached
            };
            Fate::Resolve {
                id,
                device,
                kind,
                component,
            }
        };
        let later = self.rng.gen_range(1..=10);
        self.schedule.entry(day + later).or_default().push(fate);
    }

    /// Carries out a fate; a resolved ticket is closed three days later, one in two.
    fn fate(&mut self, day: u32, fate: Fate) {
        let tickets = self.tickets;
        match fate {
            Fate::Dismiss { id } => {
                let r = tickets.transition(
                    id,
                    TicketStatus::Dismissed,
                    "bench.planner (bench.planner)",
                    "not worth a visit",
                    None,
                );
                self.attempt(r);
            }
            Fate::Resolve {
                id,
                device,
                kind,
                component,
            } => {
                let who = engineer(self.rng.gen_range(0..ENGINEERS));
                let region = self.fleet.region(device).to_owned();
                let assigned = tickets.assign(
                    id,
                    api::AssignmentInput {
                        engineer: Some(who.clone()),
                        region: Some(region),
                        ..Default::default()
                    },
                    "bench.planner (bench.planner)",
                );
                if !self.attempt(assigned) {
                    return;
                }
                let outcome = self.outcome(device, kind, &component);
                let r = tickets.transition(
                    id,
                    TicketStatus::Resolved,
                    &engineer_actor(&who),
                    "",
                    Some(outcome),
                );
                if self.attempt(r) && self.rng.gen::<bool>() {
                    self.schedule
                        .entry(day + 3)
                        .or_default()
                        .push(Fate::Close { id });
                }
            }
            Fate::Close { id } => {
                let r = tickets.transition(
                    id,
                    TicketStatus::Closed,
                    "bench.planner (bench.planner)",
                    "",
                    None,
                );
                self.attempt(r);
            }
        }
    }

    /// The outcome of a visit: a confirmed failure names the component's first part.
    fn outcome(&mut self, device: usize, kind: OutcomeKind, component: &str) -> api::OutcomeInput {
        if kind != OutcomeKind::ConfirmedFailure {
            return api::OutcomeInput {
                kind: Some(kind),
                note: "checked on site".into(),
                ..Default::default()
            };
        }
        let p = self.fleet.profile(device);
        let part = p
            .component(component)
            .or_else(|| p.components().first())
            .and_then(|c| c.parts.first())
            .map(|part| part.name.clone());
        let now = self.clock.load(Ordering::SeqCst);
        api::OutcomeInput {
            kind: Some(kind),
            component: None,
            parts_replaced: part.into_iter().collect(),
            failed_at: Some(Timestamp(now - self.rng.gen_range(0..3) * DAY_MS)),
            note: "replaced".into(),
        }
    }

    /// Moves a newly opened ticket on, as a planner's desk would: a third left open,
    /// the rest acknowledged, scheduled to an engineer with a window in the next two
    /// weeks, or in progress.
    fn progress(&mut self, id: i64, device: usize) {
        let tickets = self.tickets;
        let planner = "bench.planner (bench.planner)";
        let u: f64 = self.rng.gen();
        if u < 0.35 {
            return;
        }
        if u < 0.55 {
            let r = tickets.transition(id, TicketStatus::Acknowledged, planner, "", None);
            self.attempt(r);
            return;
        }
        let who = engineer(self.rng.gen_range(0..ENGINEERS));
        let day = self.rng.gen_range(0..14);
        let hour = self.rng.gen_range(8..17);
        let (from, to) = self.window(day, hour);
        let assigned = tickets.assign(
            id,
            api::AssignmentInput {
                engineer: Some(who.clone()),
                window_start: Some(from),
                window_end: Some(to),
                region: Some(self.fleet.region(device).to_owned()),
            },
            planner,
        );
        if !self.attempt(assigned) {
            return;
        }
        let r = tickets.transition(id, TicketStatus::Scheduled, planner, "", None);
        if self.attempt(r) && u >= 0.85 {
            let r = tickets.transition(
                id,
                TicketStatus::InProgress,
                &engineer_actor(&who),
                "",
                None,
            );
            self.attempt(r);
        }
    }

    /// Two hours from `hour`:00 local time, `day` days after the end's local date.
    fn window(&self, day: i64, hour: i64) -> (Timestamp, Timestamp) {
        let local_midnight = (self.end.millis() + LOCAL_OFFSET_MS).div_euclid(DAY_MS) * DAY_MS;
        let from = local_midnight + day * DAY_MS + hour * HOUR_MS - LOCAL_OFFSET_MS;
        (Timestamp(from), Timestamp(from + 2 * HOUR_MS))
    }

    /// Schedules ticket `id` to `login` `day` days from the end at `hour`:00 local time.
    fn schedule_to(&mut self, id: i64, login: &str, day: i64, hour: i64) -> Result<()> {
        let (from, to) = self.window(day, hour);
        let planner = "bench.planner (bench.planner)";
        let t = self.tickets.assign(
            id,
            api::AssignmentInput {
                engineer: Some(login.to_owned()),
                window_start: Some(from),
                window_end: Some(to),
                region: None,
            },
            planner,
        )?;
        if matches!(t.status, TicketStatus::Open | TicketStatus::Acknowledged) {
            let r = self
                .tickets
                .transition(id, TicketStatus::Scheduled, planner, "", None);
            self.attempt(r);
        }
        Ok(())
    }

    /// Counts a refused change; true when it was made.
    fn attempt<T>(&mut self, result: api::Result<T>) -> bool {
        let ok = result.is_ok();
        if !ok {
            self.refused += 1;
        }
        ok
    }
}
