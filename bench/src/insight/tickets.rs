//! The year of tickets `bench insight` generates through the ticket service, day by
//! day under a simulated clock: flags (two model versions, the second from mid-year),
//! critical faults, then each ticket's fate a few days later (confirmed, false alarm,
//! declined, dismissed, repeat failures, some left open).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use domain::{OutcomeKind, Prediction, TicketSource, TicketStatus, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fleet::Fleet;
use super::{InsightArgs, REGIONS};
use crate::Result;

const DAY: i64 = Timestamp::DAY_MS;

/// What happens to a ticket later.
enum Action {
    Resolve {
        id: i64,
        region: u32,
        kind: OutcomeKind,
        failed_at: Option<Timestamp>,
    },
    Dismiss {
        id: i64,
        region: u32,
    },
    /// A critical fault of (device, code): a reactive ticket, or a repeat failure.
    Fault {
        device: usize,
        code: String,
    },
}

fn resolve(id: i64, region: u32, kind: OutcomeKind) -> Action {
    Action::Resolve {
        id,
        region,
        kind,
        failed_at: None,
    }
}

/// Assigns ticket `id` to an engineer of `region-{region}`.
pub(super) fn assign(
    tickets: &api::TicketService,
    id: i64,
    region: u32,
) -> api::Result<domain::Ticket> {
    tickets.assign(
        id,
        api::AssignmentInput {
            engineer: Some(format!("engineer-{}", id % 50)),
            region: Some(format!("region-{region}")),
            ..Default::default()
        },
        "bench",
    )
}

/// The generator's state from one day to the next.
struct Year<'a> {
    fleet: &'a Fleet,
    tickets: &'a api::TicketService,
    rng: ChaCha8Rng,
    /// Per day: the ticket changes due.
    schedule: BTreeMap<u32, Vec<Action>>,
    days: u32,
    /// Scheduled changes the ticket service refused.
    failed: u64,
}

/// A year of tickets through the ticket service (see the module docs). Returns the
/// tickets per status.
pub(super) fn write_tickets(
    fleet: &Fleet,
    tickets: &api::TicketService,
    clock: &AtomicI64,
    start: Timestamp,
    args: &InsightArgs,
) -> Result<BTreeMap<String, u64>> {
    let mut year = Year {
        fleet,
        tickets,
        rng: ChaCha8Rng::seed_from_u64(7),
        schedule: BTreeMap::new(),
        days: args.days.max(1),
        failed: 0,
    };
    for day in 0..year.days {
        let morning = start.millis() + i64::from(day) * DAY + 8 * 3_600_000;
        clock.store(morning, Ordering::SeqCst);
        year.flags(day, morning, args.flags_per_device_year)?;
        let fates = year.faults(day, morning, args.reactive_per_device_year)?;
        // Today's fates, in the afternoon.
        clock.store(morning + 6 * 3_600_000, Ordering::SeqCst);
        for action in fates {
            year.fate(day, action);
        }
    }
    if year.failed > 0 {
        eprintln!(
            "{} scheduled ticket changes were refused (e.g. a ticket updated into another state); skipped",
            year.failed
        );
    }
    Ok(tickets
        .count_by_status()?
        .into_iter()
        .map(|(s, n)| (s.to_string(), n))
        .collect())
}

impl Year<'_> {
    /// How many of an event expected `rate` times per device and year happen today.
    fn count(&mut self, rate: f64) -> usize {
        let n = rate * self.fleet.ids.len() as f64 / 365.0;
        n.floor() as usize + usize::from(self.rng.gen::<f64>() < n.fract())
    }

    /// Today's model flags, and the fate of each ticket they open.
    fn flags(&mut self, day: u32, morning: i64, rate: f64) -> Result<()> {
        let version = if day < self.days / 2 { "v1" } else { "v2" };
        let (fleet, n) = (self.fleet, self.fleet.ids.len());
        let flagged: Vec<(usize, Prediction, api::DiagnosisContext)> = (0..self.count(rate))
            .map(|_| {
                let device = self.rng.gen_range(0..n);
                let p = fleet.profile(device);
                let component = &p.components()[self.rng.gen_range(0..p.components().len())].name;
                let prediction = Prediction {
                    device_id: fleet.ids[device].clone(),
                    device_type: p.device_type().to_owned(),
                    component: component.clone(),
                    ts: Timestamp(morning),
                    risk: self.rng.gen_range(0.6..0.99),
                    threshold: 0.6,
                    flagged: true,
                    model_version: format!("{}-{version}", p.device_type()),
                    top_features: Vec::new(),
                    lead_time_days: None,
                    warming_up: false,
                };
                (device, prediction, fleet.context(device))
            })
            .collect();
        let batch: Vec<(&[Prediction], &api::DiagnosisContext)> = flagged
            .iter()
            .map(|(_, p, ctx)| (std::slice::from_ref(p), ctx))
            .collect();
        let changes = self.tickets.record_batch(&batch)?;
        for (change, (device, _, _)) in changes.iter().zip(&flagged) {
            if change.kind != api::TicketChangeKind::Opened {
                continue;
            }
            let region = (*device as u32) % REGIONS;
            if let Some((later, action)) = self.flag_fate(day, morning, change.ticket_id, region) {
                self.schedule.entry(day + later).or_default().push(action);
            }
        }
        Ok(())
    }

    /// What happens to a flag's ticket, and how many days later; `None` for a recent
    /// flag left open.
    fn flag_fate(&mut self, day: u32, morning: i64, id: i64, region: u32) -> Option<(u32, Action)> {
        let u: f64 = self.rng.gen();
        Some(if u < 0.10 {
            (1, Action::Dismiss { id, region })
        } else if day + 30 > self.days && u > 0.8 {
            return None; // recent flags still open
        } else if u < 0.62 {
            let lead = self.rng.gen_range(0..20);
            (
                lead + 1,
                Action::Resolve {
                    id,
                    region,
                    kind: OutcomeKind::ConfirmedFailure,
                    failed_at: Some(Timestamp(morning + i64::from(lead) * DAY + 3_600_000)),
                },
            )
        } else {
            let kind = if u < 0.85 {
                OutcomeKind::NoFaultFound
            } else if u < 0.92 {
                OutcomeKind::CustomerDeclined
            } else {
                OutcomeKind::NotReached
            };
            (self.rng.gen_range(2..8), resolve(id, region, kind))
        })
    }

    /// Critical faults: new reactive tickets, and the repeats scheduled for today.
    /// Returns today's other scheduled changes.
    fn faults(&mut self, day: u32, morning: i64, rate: f64) -> Result<Vec<Action>> {
        let fleet = self.fleet;
        let mut faults: Vec<(usize, String)> = Vec::new();
        for _ in 0..self.count(rate) {
            let device = self.rng.gen_range(0..fleet.ids.len());
            let codes = fleet.critical(device);
            if !codes.is_empty() {
                faults.push((device, codes[self.rng.gen_range(0..codes.len())].0.clone()));
            }
        }
        let today = self.schedule.remove(&day).unwrap_or_default();
        let (repeats, fates): (Vec<Action>, Vec<Action>) = today
            .into_iter()
            .partition(|a| matches!(a, Action::Fault { .. }));
        for a in repeats {
            if let Action::Fault { device, code } = a {
                faults.push((device, code));
            }
        }
        let signals: Vec<(usize, api::FaultSignal, api::DiagnosisContext)> = faults
            .into_iter()
            .map(|(device, code)| {
                let signal = api::FaultSignal {
                    device_id: fleet.ids[device].clone(),
                    device_type: fleet.profile(device).device_type().to_owned(),
                    code,
                    ts: Timestamp(morning),
                };
                (device, signal, fleet.context(device))
            })
            .collect();
        let batch: Vec<api::DeviceSignals<'_>> = signals
            .iter()
            .map(|(_, f, ctx)| api::DeviceSignals {
                predictions: &[],
                faults: std::slice::from_ref(f),
                context: ctx,
            })
            .collect();
        let changes = self.tickets.record(&batch)?;
        for (change, (device, _, _)) in changes.iter().zip(&signals) {
            if change.kind != api::TicketChangeKind::Opened
                || change.source != TicketSource::Reactive
            {
                continue;
            }
            let region = (*device as u32) % REGIONS;
            let kind = if self.rng.gen::<f64>() < 0.9 {
                OutcomeKind::ConfirmedFailure
            } else {
                OutcomeKind::NoFaultFound
            };
            self.schedule
                .entry(day + self.rng.gen_range(1..4))
                .or_default()
                .push(resolve(change.ticket_id, region, kind));
        }
        Ok(fates)
    }

    /// Carries out a scheduled dismissal or resolution; counts a refused one.
    fn fate(&mut self, day: u32, action: Action) {
        let tickets = self.tickets;
        let result = match action {
            Action::Dismiss { id, region } => assign(tickets, id, region)
                .and_then(|_| tickets.transition(id, TicketStatus::Dismissed, "bench", "", None)),
            Action::Resolve {
                id,
                region,
                kind,
                failed_at,
            } => {
                let outcome = api::OutcomeInput {
                    kind: Some(kind),
                    failed_at,
                    ..Default::default()
                };
                let done = assign(tickets, id, region).and_then(|_| {
                    tickets.transition(id, TicketStatus::Resolved, "bench", "", Some(outcome))
                });
                if let Ok(t) = &done {
                    if kind == OutcomeKind::ConfirmedFailure {
                        self.maybe_repeat(day, t);
                    }
                }
                done
            }
            Action::Fault { .. } => return,
        };
        if result.is_err() {
            self.failed += 1;
        }
    }

    /// One repair in 30 fails again within the month: a repeat failure.
    fn maybe_repeat(&mut self, day: u32, ticket: &domain::Ticket) {
        if self.rng.gen::<f64>() >= 1.0 / 30.0 {
            return;
        }
        let device = ticket
            .device_id
            .as_str()
            .rsplit('-')
            .next()
            .and_then(|i| i.parse::<usize>().ok());
        let code = self
            .fleet
            .critical(device.unwrap_or(0))
            .iter()
            .find(|(_, c)| *c == ticket.component)
            .map(|(code, _)| code.clone());
        if let (Some(device), Some(code)) = (device, code) {
            self.schedule
                .entry(day + self.rng.gen_range(3..25))
                .or_default()
                .push(Action::Fault { device, code });
        }
    }
}
