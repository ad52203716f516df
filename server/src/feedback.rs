//! The feedback loop: `fixahead train --from-store`.
//!
//! Training data built in memory from a data directory: the telemetry and faults of
//! `hot.db` (replayed in arrival order, the order the live pipeline applied them in)
//! and labels from the ticket outcomes in `tickets.db` (docs/models.md, "The feedback
//! loop"). Both files are opened read-only, so a running `fixahead run` (WAL) is not
//! disturbed. The glue lives in the binary because `models` knows no tickets and `api`
//! no models.

use std::collections::BTreeMap;
use std::path::Path;

use domain::{DeviceId, OutcomeKind, ProfileSet, Timestamp};
use models::history::{EventKind, HealthyCheck, HistoryEvent, HistoryStats};
use models::train::LABELS_FROM_STORE;
use models::TrainingData;

use crate::error::bail;
use crate::{Context, Result};
use store::hot::{StoreReader, HOT_DB};
use store::tickets::TicketOutcome;
use store::tickets::TICKETS_DB;

/// What the ticket outcomes became.
#[derive(Debug, Default, PartialEq)]
pub struct Labels {
    /// A failure and its repair per confirmed failure.
    pub events: Vec<HistoryEvent>,
    /// One check per no-fault-found outcome.
    pub checks: Vec<HealthyCheck>,
    /// Outcomes per kind (wire name), labelled or not.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Outcomes whose device id does not parse (a hand-edited store): skipped.
    pub skipped: u64,
}

impl Labels {
    /// Confirmed failures that became failure events.
    pub fn failures(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Failure)
            .count()
    }
}

/// Turns ticket outcomes (each ticket's latest) into training labels:
///
/// * `confirmed_failure`: a failure of the outcome's component (the ticket's when it
///   names none) at `failed_at` (the recording time when absent), and a repair at the
///   recording time (the visit that confirmed it fixed it; never before the failure).
///   Rows between the two are "broken" and left out, as after a history's failure.
/// * `no_fault_found`: a [`HealthyCheck`] of the ticket's component at the recording
///   time.
/// * `customer_declined`, `not_reached`: counted, no label (nobody looked).
pub fn labels_from_outcomes(outcomes: &[TicketOutcome]) -> Labels {
    let mut labels = Labels::default();
    for t in outcomes {
        let o = &t.outcome;
        *labels.outcomes.entry(o.kind.as_str()).or_default() += 1;
        let Ok(device_id) = DeviceId::parse(&t.device_id) else {
            labels.skipped += 1;
            continue;
        };
        match o.kind {
            OutcomeKind::ConfirmedFailure => {
                let component = o.component.clone().unwrap_or_else(|| t.component.clone());
                let failed_at = o.failed_at.unwrap_or(o.recorded_at);
                for (ts, kind) in [
                    (failed_at, EventKind::Failure),
                    (o.recorded_at.max(failed_at), EventKind::Repair),
                ] {
                    labels.events.push(HistoryEvent {
                        device_id: device_id.clone(),
                        ts,
                        kind,
                        component: component.clone(),
                        mode: None,
                    });
                }
            }
            OutcomeKind::NoFaultFound => labels.checks.push(HealthyCheck {
                device_id,
                ts: o.recorded_at,
                component: t.component.clone(),
            }),
            OutcomeKind::CustomerDeclined | OutcomeKind::NotReached => {}
        }
    }
    labels
}

/// The training data of a data directory, after checking it holds enough to train:
/// telemetry, and at least one confirmed failure. Prints what it found.
pub fn training_data(data_dir: &Path, profiles: ProfileSet) -> Result<TrainingData<'static>> {
    let hot = data_dir.join(HOT_DB);
    let tickets = data_dir.join(TICKETS_DB);
    for (path, what) in [(&hot, "hot store"), (&tickets, "ticket store")] {
        if !path.is_file() {
            bail!(
                "no {what} at {}: --from-store needs the data directory of `fixahead run` (--data-dir)",
                path.display()
            );
        }
    }
    let reader = StoreReader::open(&hot).with_context(|| format!("opening {}", hot.display()))?;
    let counts = reader
        .counts()
        .with_context(|| format!("reading {}", hot.display()))?;
    let outcomes = store::tickets::read_outcomes(&tickets)
        .with_context(|| format!("reading outcomes from {}", tickets.display()))?;
    let labels = labels_from_outcomes(&outcomes);
    println!(
        "store {}: {} devices, {} messages ({} telemetry, {} faults)",
        data_dir.display(),
        counts.devices,
        counts.telemetry + counts.faults,
        counts.telemetry,
        counts.faults
    );
    println!("{}", outcome_summary(&labels));
    if counts.telemetry == 0 {
        bail!(
            "{} holds no telemetry: nothing to learn from (let `fixahead run` ingest the fleet first)",
            hot.display()
        );
    }
    if labels.failures() == 0 {
        bail!(
            "{} holds no confirmed failure: a model needs failures to learn from. Record outcomes \
             (POST /api/v1/tickets/{{id}}/outcome with \"kind\": \"confirmed_failure\") on the tickets \
             whose failure a visit confirmed, then train again",
            tickets.display()
        );
    }
    let origin = hot.clone();
    Ok(TrainingData {
        origin: hot.clone(),
        label_source: LABELS_FROM_STORE.into(),
        profiles,
        events: labels.events,
        rejected_events: labels.skipped,
        healthy_checks: labels.checks,
        messages: Box::new(move |_profiles, f| {
            let mut stats = HistoryStats::default();
            reader
                .replay_since(Timestamp(i64::MIN), |m| {
                    stats.lines += 1;
                    stats.decoded(&m);
                    f(m);
                })
                .map_err(|e| models::Error::InvalidHistory {
                    path: origin,
                    message: e.to_string(),
                })?;
            Ok(stats)
        }),
    })
}

/// One line: how many outcomes of each kind there are and what they became.
fn outcome_summary(labels: &Labels) -> String {
    let n = |kind: OutcomeKind| labels.outcomes.get(kind.as_str()).copied().unwrap_or(0);
    let mut line = format!(
        "outcomes: confirmed_failure {} -> {} failure events, no_fault_found {} -> {} negative labels, customer_declined {} and not_reached {} -> no label",
        n(OutcomeKind::ConfirmedFailure),
        labels.failures(),
        n(OutcomeKind::NoFaultFound),
        labels.checks.len(),
        n(OutcomeKind::CustomerDeclined),
        n(OutcomeKind::NotReached),
    );
    if labels.skipped > 0 {
        line.push_str(&format!(", {} skipped (invalid device id)", labels.skipped));
    }
    line
}

#[cfg(test)]
mod tests {
    use domain::Outcome;

    use super::*;

    const T: i64 = 1_795_500_000_000;

    fn ticket(id: i64, device: &str, component: &str, outcome: Outcome) -> TicketOutcome {
        TicketOutcome {
            ticket_id: id,
            number: format!("20261124{id:06}"),
            device_id: device.into(),
            device_type: "washer".into(),
            component: component.into(),
            status: domain::TicketStatus::Resolved,
            outcome,
        }
    }

    fn outcome(kind: OutcomeKind) -> Outcome {
        Outcome {
            kind,
            component: None,
            parts_replaced: Vec::new(),
            failed_at: None,
            note: String::new(),
            recorded_at: Timestamp(T),
            recorded_by: "eng".into(),
        }
    }

    fn event(device: &str, ts: i64, kind: EventKind, component: &str) -> HistoryEvent {
        HistoryEvent {
            device_id: DeviceId::parse(device).unwrap(),
            ts: Timestamp(ts),
            kind,
            component: component.into(),
            mode: None,
        }
    }

    #[test]
    fn a_confirmed_failure_is_a_failure_then_a_repair_at_the_recording() {
        let explicit = Outcome {
            component: Some("heater".into()),
            parts_replaced: vec!["heating element".into()],
            failed_at: Some(Timestamp(T - 5_000)),
            ..outcome(OutcomeKind::ConfirmedFailure)
        };
        let labels = labels_from_outcomes(&[ticket(1, "wm-1", "drain_pump", explicit)]);
        assert_eq!(
            labels.events,
            [
                event("wm-1", T - 5_000, EventKind::Failure, "heater"),
                event("wm-1", T, EventKind::Repair, "heater"),
            ],
            "the outcome's component and failure time"
        );
        assert!(labels.checks.is_empty());
        assert_eq!(labels.failures(), 1);
    }

    #[test]
    fn a_confirmed_failure_defaults_to_the_tickets_component_and_the_recording_time() {
        let labels = labels_from_outcomes(&[ticket(
            1,
            "wm-1",
            "drain_pump",
            outcome(OutcomeKind::ConfirmedFailure),
        )]);
        assert_eq!(
            labels.events,
            [
                event("wm-1", T, EventKind::Failure, "drain_pump"),
                event("wm-1", T, EventKind::Repair, "drain_pump"),
            ]
        );
    }

    #[test]
    fn no_fault_found_is_a_healthy_check_and_the_others_carry_no_label() {
        let labels = labels_from_outcomes(&[
            ticket(1, "wm-1", "drain_pump", outcome(OutcomeKind::NoFaultFound)),
            ticket(2, "wm-2", "heater", outcome(OutcomeKind::CustomerDeclined)),
            ticket(3, "wm-3", "heater", outcome(OutcomeKind::NotReached)),
            ticket(
                4,
                "not a device id",
                "heater",
                outcome(OutcomeKind::NoFaultFound),
            ),
        ]);
        assert!(labels.events.is_empty());
        assert_eq!(
            labels.checks,
            [HealthyCheck {
                device_id: DeviceId::parse("wm-1").unwrap(),
                ts: Timestamp(T),
                component: "drain_pump".into(),
            }]
        );
        assert_eq!(labels.skipped, 1);
        assert_eq!(
            labels.outcomes,
            BTreeMap::from([
                ("customer_declined", 1),
                ("no_fault_found", 2),
                ("not_reached", 1)
            ])
        );
        assert_eq!(labels.failures(), 0);
        let line = outcome_summary(&labels);
        assert!(
            line.contains("no_fault_found 2 -> 1 negative labels") && line.contains("1 skipped"),
            "{line}"
        );
    }

    #[test]
    fn a_reopened_ticket_counts_with_its_latest_outcome_only() {
        // The store keeps one outcome per ticket (a reopen clears it, a new one replaces
        // it: api's read_outcomes test), so a ticket confirmed, reopened and then found
        // healthy arrives here once, as no_fault_found, and adds no failure.
        let labels = labels_from_outcomes(&[
            ticket(7, "wm-7", "drain_pump", outcome(OutcomeKind::NoFaultFound)),
            ticket(
                8,
                "wm-7",
                "drain_pump",
                Outcome {
                    failed_at: Some(Timestamp(T - 1)),
                    ..outcome(OutcomeKind::ConfirmedFailure)
                },
            ),
        ]);
        assert_eq!(labels.failures(), 1, "the later ticket's failure");
        assert_eq!(labels.checks.len(), 1, "the first ticket's check");
    }
}
