//! `store::tickets::read_outcomes`: what the feedback loop reads from `tickets.db`.

use api::{DiagnosisContext, OutcomeInput, TicketConfig, TicketService};
use domain::{DeviceId, OutcomeKind, Prediction, TicketStatus, Timestamp};
use store::tickets::read_outcomes;

fn flag(device: &str, component: &str) -> Prediction {
    Prediction {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        component: component.into(),
        ts: Timestamp(1_795_500_000_000),
        risk: 0.9,
        threshold: 0.5,
        flagged: true,
        model_version: "washer-v1".into(),
        top_features: Vec::new(),
        lead_time_days: None,
        warming_up: false,
    }
}

fn outcome(kind: OutcomeKind) -> OutcomeInput {
    OutcomeInput {
        kind: Some(kind),
        ..OutcomeInput::default()
    }
}

#[test]
fn outcomes_are_read_read_only_and_a_reopen_keeps_only_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets.db");
    let tickets = TicketService::open(&path, TicketConfig::default()).unwrap();
    let ctx = DiagnosisContext::default();
    tickets
        .record_predictions(
            &[
                flag("wm-1", "drain_pump"),
                flag("wm-2", "heater"),
                flag("wm-3", "drain_pump"),
            ],
            &ctx,
        )
        .unwrap();
    let mut ids: Vec<i64> = tickets
        .list(&Default::default())
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids.len(), 3);
    ids.sort_unstable();
    let (first, second) = (ids[0], ids[1]);
    assert!(read_outcomes(&path).unwrap().is_empty(), "no outcome yet");

    // The first ticket: confirmed, resolved, reopened (the outcome is withdrawn),
    // then found healthy: the latest outcome is the one that counts.
    tickets
        .record_outcome(first, outcome(OutcomeKind::ConfirmedFailure), "eng")
        .unwrap();
    let read = read_outcomes(&path).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].outcome.kind, OutcomeKind::ConfirmedFailure);
    tickets
        .transition(first, TicketStatus::Resolved, "eng", "", None)
        .unwrap();
    tickets
        .transition(first, TicketStatus::InProgress, "eng", "still broken", None)
        .unwrap();
    assert!(
        read_outcomes(&path).unwrap().is_empty(),
        "a reopen clears it"
    );
    tickets
        .record_outcome(first, outcome(OutcomeKind::NoFaultFound), "eng")
        .unwrap();
    tickets
        .record_outcome(second, outcome(OutcomeKind::NotReached), "eng")
        .unwrap();

    let read = read_outcomes(&path).unwrap();
    let kinds: Vec<(i64, OutcomeKind)> =
        read.iter().map(|o| (o.ticket_id, o.outcome.kind)).collect();
    assert_eq!(
        kinds,
        [
            (first, OutcomeKind::NoFaultFound),
            (second, OutcomeKind::NotReached)
        ]
    );
    let o = read.iter().find(|o| o.ticket_id == first).unwrap();
    assert_eq!(o.status, TicketStatus::InProgress);
    assert_eq!(o.component, "drain_pump");
    assert_eq!(o.device_type, "washer");
}

#[test]
fn a_missing_store_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets.db");
    assert!(read_outcomes(&path).is_err());
    assert!(!path.exists(), "read-only: nothing created");
}
