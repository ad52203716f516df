use std::sync::atomic::AtomicI64;

use domain::{Contribution, DeviceId, Priority, ProfileSet};

use std::sync::atomic::Ordering;
use std::sync::Arc;

use domain::{Prediction, Ticket, TicketStatus, Timestamp};
use rusqlite::Connection;

use super::*;
use crate::tickets::{
    AssignmentInput, DeviceSignals, DiagnosisContext, FaultSignal, OutcomeInput, SlaKind,
    TicketChangeKind, TicketQuery,
};
use domain::TicketSource;

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;
const HOUR: i64 = Timestamp::HOUR_MS;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    now: Arc<AtomicI64>,
    svc: TicketService,
}

impl Fixture {
    fn new() -> Self {
        Self::with_config(TicketConfig::default())
    }

    fn with_config(config: TicketConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("tickets.db");
        let now = Arc::new(AtomicI64::new(T0));
        let svc = TicketService::open_with_clock(&path, config, clock(&now)).unwrap();
        Self {
            _dir: dir,
            path,
            now,
            svc,
        }
    }

    fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

fn clock(now: &Arc<AtomicI64>) -> Clock {
    let now = Arc::clone(now);
    Arc::new(move || Timestamp(now.load(Ordering::SeqCst)))
}

fn pred(device: &str, component: &str, risk: f64, flagged: bool) -> Prediction {
    Prediction {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        component: component.into(),
        ts: Timestamp(T0),
        risk,
        threshold: 0.6,
        flagged,
        model_version: "washer-v1".into(),
        top_features: vec![Contribution {
            feature: "drain_time_s.ewma_fast".into(),
            value: 41.0,
            contribution: 1.2,
            normal_range: Some((10.0, 20.0)),
        }],
        lead_time_days: None,
        warming_up: false,
    }
}

fn washer_ctx(faults: &[(&str, i64)]) -> DiagnosisContext {
    DiagnosisContext {
        profile: ProfileSet::builtin().get("washer").cloned(),
        recent_faults: faults
            .iter()
            .map(|(code, ts)| ((*code).to_owned(), Timestamp(*ts)))
            .collect(),
        device: None,
    }
}

fn all(svc: &TicketService) -> Vec<Ticket> {
    svc.list(&TicketQuery::default()).unwrap()
}

#[test]
fn one_active_ticket_per_device_and_component() {
    let f = Fixture::new();
    let ctx = DiagnosisContext::default();
    let first = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.8, true)], &ctx)
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, TicketChangeKind::Opened);
    for i in 0..50 {
        f.advance(60_000);
        let risk = 0.8 + (i % 3) as f64 * 0.01;
        let changes = f
            .svc
            .record_predictions(&[pred("wm-1", "drain_pump", risk, true)], &ctx)
            .unwrap();
        assert_eq!(changes[0].kind, TicketChangeKind::Updated);
        assert_eq!(changes[0].ticket_id, first[0].ticket_id);
        assert_eq!(changes[0].number, first[0].number);
    }
    let tickets = all(&f.svc);
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].signals, 51);
    assert_eq!(f.svc.count_active().unwrap(), 1);
    // Another component of the same device is another ticket; an unflagged score none.
    let changes = f
        .svc
        .record_predictions(
            &[
                pred("wm-1", "heater", 0.8, true),
                pred("wm-1", "motor_bearing", 0.3, false),
            ],
            &ctx,
        )
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, TicketChangeKind::Opened);
    assert_eq!(f.svc.count_active().unwrap(), 2);
    assert_eq!(f.svc.stats().opened, 2);
    assert_eq!(f.svc.stats().updated, 50);
}

#[test]
fn concurrent_writers_on_one_file_still_open_one_ticket() {
    let f = Fixture::new();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            // Separate services: separate connections, so only the database can stop a
            // second ticket.
            let svc =
                TicketService::open_with_clock(&f.path, TicketConfig::default(), clock(&f.now))
                    .unwrap();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    svc.record_predictions(
                        &[pred("wm-9", "drain_pump", 0.8, true)],
                        &DiagnosisContext::default(),
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let tickets = all(&f.svc);
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].signals, 80);
}

#[test]
fn a_new_flag_episode_opens_a_new_ticket_after_the_previous_one_ended() {
    let f = Fixture::new();
    let ctx = DiagnosisContext::default();
    let a = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.8, true)], &ctx)
        .unwrap()
        .remove(0);
    f.advance(HOUR);
    let closed = f
        .svc
        .transition(
            a.ticket_id,
            TicketStatus::Dismissed,
            "planner-7",
            "pump replaced",
            None,
        )
        .unwrap();
    assert_eq!(closed.status, TicketStatus::Dismissed);
    let last = closed.log.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.action.as_str()),
        ("planner-7", "status_changed")
    );
    assert!(
        last.note.contains("open -> dismissed: pump replaced"),
        "{}",
        last.note
    );

    // The flag stays up: the same episode, which the planner has dealt with, opens
    // nothing, however long it lasts.
    for _ in 0..3 {
        f.advance(HOUR);
        let changes = f
            .svc
            .record_predictions(&[pred("wm-1", "drain_pump", 0.9, true)], &ctx)
            .unwrap();
        assert!(changes.is_empty(), "{changes:?}");
    }
    assert_eq!(f.svc.count_active().unwrap(), 0);
    // A critical code opens a reactive ticket meanwhile: the still-up flag updates it.
    let fault_ctx = washer_ctx(&[("E23", T0)]);
    let reactive = f
        .svc
        .record(&[DeviceSignals {
            predictions: &[],
            faults: &[critical_fault("wm-1")],
            context: &fault_ctx,
        }])
        .unwrap()
        .remove(0);
    let update = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.9, true)], &ctx)
        .unwrap();
    assert_eq!(update.len(), 1, "{update:?}");
    assert_eq!(
        (update[0].ticket_id, update[0].kind),
        (reactive.ticket_id, TicketChangeKind::Updated)
    );
    f.advance(HOUR);
    f.svc
        .transition(
            reactive.ticket_id,
            TicketStatus::Dismissed,
            "planner-7",
            "",
            None,
        )
        .unwrap();
    // The flag goes down and comes up again: a new episode, a new ticket.
    let mut down = pred("wm-1", "drain_pump", 0.3, false);
    down.ts = Timestamp(T0 + HOUR);
    assert!(f.svc.record_predictions(&[down], &ctx).unwrap().is_empty());
    let mut up = pred("wm-1", "drain_pump", 0.8, true);
    up.ts = Timestamp(T0 + 2 * HOUR);
    let b = f.svc.record_predictions(&[up], &ctx).unwrap().remove(0);
    assert_eq!(b.kind, TicketChangeKind::Opened);
    assert_ne!(b.ticket_id, a.ticket_id);
    assert_ne!(b.number, a.number);

    // Reopening the old one would make two active tickets: the store refuses.
    let err = f
        .svc
        .transition(a.ticket_id, TicketStatus::Open, "planner-7", "", None)
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains(&b.number), "{err}");
    assert!(matches!(
        f.svc
            .transition(b.ticket_id, TicketStatus::Open, "x", "", None),
        Err(Error::Transition { .. })
    ));
    assert!(matches!(
        f.svc.transition(999, TicketStatus::Closed, "x", "", None),
        Err(Error::NotFound(_))
    ));
    assert_eq!(f.svc.count_active().unwrap(), 1);
}

#[test]
fn numbers_are_date_and_daily_sequence_and_never_reused() {
    let f = Fixture::new();
    let ctx = DiagnosisContext::default();
    let mut numbers = Vec::new();
    for i in 0..3 {
        let ch = f
            .svc
            .record_predictions(&[pred(&format!("wm-{i}"), "drain_pump", 0.8, true)], &ctx)
            .unwrap();
        numbers.push(ch[0].number.clone());
        // Updates in between must not consume numbers.
        f.svc
            .record_predictions(&[pred(&format!("wm-{i}"), "drain_pump", 0.8, true)], &ctx)
            .unwrap();
    }
    assert_eq!(
        numbers,
        ["20261124000001", "20261124000002", "20261124000003"]
    );
    // Closing a ticket does not free its number (the next flag episode gets a new one).
    f.svc
        .transition(1, TicketStatus::Dismissed, "planner", "", None)
        .unwrap();
    let mut down = pred("wm-0", "drain_pump", 0.3, false);
    down.ts = Timestamp(T0 + 1);
    let mut up = pred("wm-0", "drain_pump", 0.8, true);
    up.ts = Timestamp(T0 + 2);
    let ch = f.svc.record_predictions(&[down, up], &ctx).unwrap();
    assert_eq!(ch[0].number, "20261124000004");
    // A new UTC day starts a new sequence.
    f.advance(24 * HOUR);
    let ch = f
        .svc
        .record_predictions(&[pred("wm-7", "drain_pump", 0.8, true)], &ctx)
        .unwrap();
    assert_eq!(ch[0].number, "20261125000001");
}

#[test]
fn priority_rules_and_sla_deadlines() {
    let f = Fixture::new();
    let ctx = washer_ctx(&[]);
    let changes = f
        .svc
        .record_predictions(
            &[
                pred("wm-1", "drain_pump", 0.95, true),
                pred("wm-2", "drain_pump", 0.75, true),
                pred("wm-3", "drain_pump", 0.65, true),
            ],
            &ctx,
        )
        .unwrap();
    let expect = [
        (Priority::Urgent, HOUR),
        (Priority::Important, 4 * HOUR),
        (Priority::Normal, 24 * HOUR),
    ];
    for (change, (priority, sla)) in changes.iter().zip(expect) {
        assert_eq!(change.priority, priority);
        let t = f.svc.get(change.ticket_id).unwrap().unwrap();
        assert_eq!(t.priority, priority);
        assert_eq!(t.respond_by.millis() - t.opened_at.millis(), sla);
    }

    // A critical fault code of the component makes a low risk urgent...
    let critical = washer_ctx(&[("E23", T0 - HOUR)]);
    let ch = f
        .svc
        .record_predictions(&[pred("wm-4", "drain_pump", 0.65, true)], &critical)
        .unwrap();
    assert_eq!(ch[0].priority, Priority::Urgent);
    let t = f.svc.get(ch[0].ticket_id).unwrap().unwrap();
    assert!(
        t.log[0].note.contains("critical fault E23"),
        "{}",
        t.log[0].note
    );
    // ...but not one of another component, nor one outside the window.
    let other = washer_ctx(&[("E62", T0 - HOUR), ("E23", T0 - 8 * 24 * HOUR)]);
    let ch = f
        .svc
        .record_predictions(&[pred("wm-5", "drain_pump", 0.65, true)], &other)
        .unwrap();
    assert_eq!(ch[0].priority, Priority::Normal);

    // A short predicted lead time raises a low risk, and the diagnosis carries it.
    let soon = |device: &str, days: f64| Prediction {
        lead_time_days: Some(days),
        warming_up: false,
        ..pred(device, "drain_pump", 0.65, true)
    };
    let ch = f
        .svc
        .record_predictions(
            &[soon("wm-6", 1.5), soon("wm-7", 5.0), soon("wm-8", 10.0)],
            &ctx,
        )
        .unwrap();
    let got: Vec<Priority> = ch.iter().map(|c| c.priority).collect();
    assert_eq!(
        got,
        [Priority::Urgent, Priority::Important, Priority::Normal]
    );
    let t = f.svc.get(ch[0].ticket_id).unwrap().unwrap();
    assert_eq!(t.diagnosis.lead_time_days, Some(1.5));
}

#[test]
fn configured_tiers_apply() {
    let config: TicketConfig = serde_json::from_str(
        r#"{"urgent_risk": 0.8, "important_risk": 0.5, "urgent_response": "15m"}"#,
    )
    .unwrap();
    let f = Fixture::with_config(config);
    let ch = f
        .svc
        .record_predictions(&[pred("wm-1", "heater", 0.85, true)], &washer_ctx(&[]))
        .unwrap();
    let t = f.svc.get(ch[0].ticket_id).unwrap().unwrap();
    assert_eq!(t.priority, Priority::Urgent);
    assert_eq!(t.respond_by.millis() - t.opened_at.millis(), 15 * 60_000);
    let bad = TicketConfig {
        urgent_risk: 0.5,
        important_risk: 0.8,
        ..TicketConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        TicketService::open(&dir.path().join("t.db"), bad),
        Err(Error::Config(_))
    ));
}

#[test]
fn updates_raise_priority_and_rate_limit_the_log() {
    let f = Fixture::new();
    let ctx = washer_ctx(&[]);
    let id = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.65, true)], &ctx)
        .unwrap()[0]
        .ticket_id;
    // Small moves and big moves within the hour: no log entries.
    for risk in [0.66, 0.64, 0.69, 0.62, 0.66] {
        f.advance(5 * 60_000);
        f.svc
            .record_predictions(&[pred("wm-1", "drain_pump", risk, true)], &ctx)
            .unwrap();
    }
    let t = f.svc.get(id).unwrap().unwrap();
    assert_eq!(t.log.len(), 1, "{:?}", t.log);
    assert_eq!(t.log[0].action, "opened");
    assert_eq!(t.log[0].actor, "fixahead");
    assert!(t.log[0].note.contains("washer-v1"));
    assert!(!t.log[0].note.contains("fault codes"), "{}", t.log[0].note);
    assert!((t.peak_risk - 0.69).abs() < 1e-9);
    assert!((t.risk - 0.66).abs() < 1e-9);

    // An hour later a meaningful move is logged, and crossing a tier raises priority
    // and pulls the deadline in.
    f.advance(HOUR);
    let before = t.respond_by;
    let ch = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.93, true)], &ctx)
        .unwrap();
    assert_eq!(ch[0].priority, Priority::Urgent);
    let t = f.svc.get(id).unwrap().unwrap();
    let actions: Vec<_> = t.log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["opened", "risk_updated", "priority_raised"]);
    assert_eq!(t.priority, Priority::Urgent);
    assert!(t.respond_by < before);
    assert_eq!(t.respond_by.millis(), (f.now.load(Ordering::SeqCst)) + HOUR);

    // A lower risk later does not lower the priority.
    f.advance(2 * HOUR);
    let ch = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.7, true)], &ctx)
        .unwrap();
    assert_eq!(ch[0].priority, Priority::Urgent);
    let t = f.svc.get(id).unwrap().unwrap();
    assert!((t.peak_risk - 0.93).abs() < 1e-9);
    assert_eq!(t.log.len(), 4);
}

#[test]
fn diagnosis_uses_the_catalogue() {
    let f = Fixture::new();
    let ctx = washer_ctx(&[("E41", T0 - 2 * HOUR), ("E21", T0 - HOUR), ("X99", T0)]);
    let ch = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.8, true)], &ctx)
        .unwrap();
    let d = f.svc.get(ch[0].ticket_id).unwrap().unwrap().diagnosis;
    let codes: Vec<_> = d.recent_faults.iter().map(|n| n.code.as_str()).collect();
    assert_eq!(codes, ["X99", "E21", "E41"]);
    assert_eq!(d.recent_faults[1].title.as_deref(), Some("Drain timeout"));
    assert_eq!(d.recent_faults[1].severity.as_deref(), Some("major"));
    assert_eq!(d.recent_faults[0].title, None);
    assert_eq!(d.likely_parts, ["drain pump assembly", "pump filter"]);
    assert!(d.remote_checks.iter().any(|c| c.contains("pump filter")));
    assert!(!d.remote_checks.iter().any(|c| c.contains("door")));
    assert_eq!(d.top_features[0].feature, "drain_time_s.ewma_fast");
}

#[test]
fn device_risk_keeps_the_latest_score_by_event_time() {
    let f = Fixture::new();
    let ctx = DiagnosisContext::default();
    let mut newer = pred("wm-1", "heater", 0.2, false);
    newer.ts = Timestamp(T0 + HOUR);
    f.svc
        .record_predictions(&[newer, pred("wm-1", "drain_pump", 0.4, false)], &ctx)
        .unwrap();
    // An older score arriving late does not override.
    f.svc
        .record_predictions(&[pred("wm-1", "heater", 0.9, false)], &ctx)
        .unwrap();
    let risk = f.svc.device_risk("wm-1").unwrap();
    assert_eq!(risk.len(), 2);
    assert_eq!(risk[0].component, "drain_pump");
    assert_eq!(risk[1].component, "heater");
    assert!((risk[1].risk - 0.2).abs() < 1e-9);
    assert_eq!(risk[1].top_features.len(), 1);
    assert!(f.svc.device_risk("wm-2").unwrap().is_empty());
    assert_eq!(all(&f.svc).len(), 0);
    // A non-finite risk is skipped, not stored.
    let changes = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", f64::NAN, true)], &ctx)
        .unwrap();
    assert!(changes.is_empty());
}

#[test]
fn list_filters_and_pages() {
    let f = Fixture::new();
    let ctx = washer_ctx(&[]);
    f.svc
        .record_predictions(
            &[
                pred("wm-1", "drain_pump", 0.95, true),
                pred("wm-1", "heater", 0.75, true),
                pred("wm-2", "drain_pump", 0.65, true),
            ],
            &ctx,
        )
        .unwrap();
    f.svc
        .transition(3, TicketStatus::Dismissed, "planner", "", None)
        .unwrap();
    let ids =
        |q: TicketQuery| -> Vec<i64> { f.svc.list(&q).unwrap().iter().map(|t| t.id).collect() };
    assert_eq!(ids(TicketQuery::default()), [3, 2, 1]);
    assert_eq!(
        ids(TicketQuery {
            device_id: Some(DeviceId::parse("wm-1").unwrap()),
            ..Default::default()
        }),
        [2, 1]
    );
    assert_eq!(
        ids(TicketQuery {
            component: Some("drain_pump".into()),
            ..Default::default()
        }),
        [3, 1]
    );
    assert_eq!(
        ids(TicketQuery {
            priority: Some(Priority::Important),
            ..Default::default()
        }),
        [2]
    );
    assert_eq!(
        ids(TicketQuery {
            statuses: TicketQuery::active_statuses(),
            ..Default::default()
        }),
        [2, 1]
    );
    assert_eq!(
        ids(TicketQuery {
            statuses: vec![TicketStatus::Dismissed],
            ..Default::default()
        }),
        [3]
    );
    assert_eq!(
        ids(TicketQuery {
            limit: 2,
            ..Default::default()
        }),
        [3, 2]
    );
    assert_eq!(
        ids(TicketQuery {
            limit: 2,
            after_id: Some(2),
            ..Default::default()
        }),
        [1]
    );
    assert!(f.svc.get(42).unwrap().is_none());
}

#[test]
fn the_database_itself_refuses_a_second_active_ticket() {
    let f = Fixture::new();
    f.svc
        .record_predictions(
            &[pred("wm-1", "drain_pump", 0.8, true)],
            &DiagnosisContext::default(),
        )
        .unwrap();
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    let copy = |number: &str, status: &str| {
        conn.execute(
            "INSERT INTO tickets (number, device_id, device_type, component, source, status,
                 priority, risk, peak_risk, model_version, opened_at, updated_at, respond_by,
                 signals, diagnosis, risk_logged, risk_logged_at)
             SELECT ?1, device_id, device_type, component, source, ?2, priority, risk,
                 peak_risk, model_version, opened_at, updated_at, respond_by, signals,
                 diagnosis, risk_logged, risk_logged_at FROM tickets WHERE id = 1",
            rusqlite::params![number, status],
        )
    };
    for status in ["open", "acknowledged", "scheduled", "in_progress"] {
        assert!(
            copy("x1", status).is_err(),
            "second {status} ticket accepted"
        );
    }
    // Inactive duplicates are history and allowed; a reused number is not.
    copy("x2", "closed").unwrap();
    assert!(copy("x2", "dismissed").is_err());
}

// ---- Lifecycle, SLA, reactive tickets and events ----

use domain::OutcomeKind;

fn open_one(f: &Fixture, device: &str) -> i64 {
    f.svc
        .record_predictions(&[pred(device, "drain_pump", 0.8, true)], &washer_ctx(&[]))
        .unwrap()[0]
        .ticket_id
}

fn nff() -> OutcomeInput {
    OutcomeInput {
        kind: Some(OutcomeKind::NoFaultFound),
        ..Default::default()
    }
}

/// Drives a fresh ticket into `status` along allowed transitions.
fn ticket_in(f: &Fixture, device: &str, status: TicketStatus) -> i64 {
    use TicketStatus::*;
    let id = open_one(f, device);
    let path: &[TicketStatus] = match status {
        Open => &[],
        Acknowledged => &[Acknowledged],
        Scheduled => &[Scheduled],
        InProgress => &[Acknowledged, InProgress],
        Resolved => &[Resolved],
        Closed => &[Resolved, Closed],
        Dismissed => &[Dismissed],
    };
    for to in path {
        let outcome = (*to == Resolved).then(nff);
        f.svc.transition(id, *to, "planner", "", outcome).unwrap();
    }
    assert_eq!(f.svc.get(id).unwrap().unwrap().status, status);
    id
}

#[test]
fn every_transition_of_the_table_is_allowed_and_every_other_refused() {
    let f = Fixture::new();
    let mut n = 0;
    for from in TicketStatus::ALL {
        for to in TicketStatus::ALL {
            n += 1;
            let device = format!("wm-{n}");
            let id = ticket_in(&f, &device, from);
            let outcome = (to == TicketStatus::Resolved).then(nff);
            let result = f.svc.transition(id, to, "planner-1", "why", outcome);
            if from.can_become(to) {
                let t = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(t.status, to);
                let last = t.log.last().unwrap();
                assert_eq!(last.actor, "planner-1");
                let action = if from.is_reopen(to) {
                    "reopened"
                } else {
                    "status_changed"
                };
                assert_eq!(last.action, action, "{from} -> {to}");
                assert_eq!(last.note, format!("{from} -> {to}: why"));
            } else {
                match result {
                    Err(Error::Transition { allowed, .. }) => {
                        assert_eq!(allowed, from.transitions(), "{from} -> {to}");
                    }
                    other => panic!("{from} -> {to} should be refused: {other:?}"),
                }
                assert_eq!(f.svc.get(id).unwrap().unwrap().status, from);
            }
        }
    }
}

#[test]
fn resolving_needs_an_outcome_and_the_outcome_is_checked() {
    let f = Fixture::new();
    let id = open_one(&f, "wm-1");
    let err = f
        .svc
        .transition(id, TicketStatus::Resolved, "eng", "", None)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field: Some(f), .. } if f.starts_with("outcome")),
        "{err}"
    );
    // Fields that do not fit the kind are refused, naming the field.
    let bad = OutcomeInput {
        kind: Some(OutcomeKind::NoFaultFound),
        parts_replaced: vec!["pump".into()],
        ..Default::default()
    };
    let err = f.svc.record_outcome(id, bad, "eng").unwrap_err();
    assert!(err.to_string().contains("outcome.parts_replaced"), "{err}");
    // A confirmed failure defaults to the ticket's component and the recording time.
    f.advance(HOUR);
    let confirmed = OutcomeInput {
        kind: Some(OutcomeKind::ConfirmedFailure),
        parts_replaced: vec!["drain pump assembly".into()],
        ..Default::default()
    };
    let t = f.svc.record_outcome(id, confirmed, "eng-4").unwrap();
    let o = t.outcome.unwrap();
    assert_eq!(o.component.as_deref(), Some("drain_pump"));
    assert_eq!(o.failed_at, Some(Timestamp(T0 + HOUR)));
    assert_eq!(o.recorded_by, "eng-4");
    assert_eq!(t.log.last().unwrap().action, "outcome_recorded");
    let t = f
        .svc
        .transition(id, TicketStatus::Resolved, "eng-4", "fixed", None)
        .unwrap();
    assert_eq!(t.ended_at, Some(Timestamp(T0 + HOUR)));
    // An outcome passed with the transition is recorded in the same step.
    let id2 = open_one(&f, "wm-2");
    let t = f
        .svc
        .transition(id2, TicketStatus::Resolved, "eng", "", Some(nff()))
        .unwrap();
    assert_eq!(t.outcome.unwrap().kind, OutcomeKind::NoFaultFound);
    // ...but not with other transitions.
    let id3 = open_one(&f, "wm-3");
    assert!(matches!(
        f.svc
            .transition(id3, TicketStatus::Acknowledged, "eng", "", Some(nff())),
        Err(Error::Invalid { .. })
    ));
    // Closed tickets keep their outcome.
    f.svc
        .transition(id, TicketStatus::Closed, "planner", "", None)
        .unwrap();
    assert!(matches!(
        f.svc.record_outcome(id, nff(), "eng"),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn reopening_works_within_the_window_only() {
    let f = Fixture::new();
    let id = ticket_in(&f, "wm-1", TicketStatus::Closed);
    f.advance(14 * 24 * HOUR - 1);
    let t = f
        .svc
        .transition(id, TicketStatus::Open, "planner", "came back", None)
        .unwrap();
    assert_eq!(t.status, TicketStatus::Open);
    assert_eq!(t.outcome, None, "a reopened ticket needs a new outcome");
    assert_eq!(t.ended_at, None);
    assert_eq!(t.responded_at, None);
    assert_eq!(t.respond_by.millis(), f.svc.now().millis() + 4 * HOUR);
    assert_eq!(t.log.last().unwrap().action, "reopened");

    let dismissed = ticket_in(&f, "wm-2", TicketStatus::Dismissed);
    f.advance(14 * 24 * HOUR + 1);
    match f
        .svc
        .transition(dismissed, TicketStatus::Open, "planner", "", None)
    {
        Err(Error::Transition { message, allowed }) => {
            assert!(message.contains("reopen_window"), "{message}");
            assert!(allowed.is_empty());
        }
        other => panic!("expected a refusal: {other:?}"),
    }
    let t = f.svc.get(dismissed).unwrap().unwrap();
    assert!(f.svc.allowed_transitions(&t).is_empty());
}

#[test]
fn assignment_sets_engineer_window_region_and_keeps_skills() {
    let f = Fixture::new();
    let id = open_one(&f, "wm-1");
    let t = f.svc.get(id).unwrap().unwrap();
    let skills = t.assignment.skills.clone();
    assert!(!skills.is_empty(), "skills come from the washer profile");
    let input = AssignmentInput {
        engineer: Some("eng-12".into()),
        window_start: Some(Timestamp(T0 + 2 * HOUR)),
        window_end: Some(Timestamp(T0 + 4 * HOUR)),
        region: Some("north".into()),
    };
    let t = f.svc.assign(id, input.clone(), "planner-2").unwrap();
    assert_eq!(t.assignment.engineer.as_deref(), Some("eng-12"));
    assert_eq!(t.assignment.region.as_deref(), Some("north"));
    assert_eq!(t.assignment.window_end, Some(Timestamp(T0 + 4 * HOUR)));
    assert_eq!(t.assignment.skills, skills);
    assert_eq!(t.log.last().unwrap().action, "assigned");
    let backwards = AssignmentInput {
        window_end: Some(Timestamp(T0)),
        ..input.clone()
    };
    let err = f.svc.assign(id, backwards, "planner").unwrap_err();
    assert!(err.to_string().starts_with("window_end"), "{err}");
    let done = ticket_in(&f, "wm-2", TicketStatus::Dismissed);
    assert!(matches!(
        f.svc.assign(done, input, "planner"),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn sla_clocks_breach_once_escalate_and_raise_events() {
    let config = TicketConfig {
        important_escalation: "duty-manager".into(),
        ..TicketConfig::default()
    };
    let f = Fixture::with_config(config);
    let id = open_one(&f, "wm-1"); // important: respond 4 h, resolve 48 h
    let acked = open_one(&f, "wm-2");
    f.svc
        .transition(acked, TicketStatus::Acknowledged, "planner", "", None)
        .unwrap();
    let t = f.svc.get(id).unwrap().unwrap();
    assert_eq!(t.resolve_by, Some(Timestamp(T0 + 48 * HOUR)));

    f.advance(4 * HOUR);
    assert!(
        f.svc.check_sla().unwrap().is_empty(),
        "the deadline itself is not late"
    );
    f.advance(1);
    let breaches = f.svc.check_sla().unwrap();
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(
        (breaches[0].ticket_id, breaches[0].kind),
        (id, SlaKind::Respond)
    );
    assert_eq!(breaches[0].escalated_to, "duty-manager");
    assert!(
        f.svc.check_sla().unwrap().is_empty(),
        "a breach is raised once"
    );
    let t = f.svc.get(id).unwrap().unwrap();
    assert_eq!(t.sla_breaches, ["respond"]);
    assert_eq!(t.escalated_to.as_deref(), Some("duty-manager"));
    assert_eq!(t.log.last().unwrap().action, "sla_breached");

    f.advance(44 * HOUR);
    let breaches = f.svc.check_sla().unwrap();
    let kinds: Vec<_> = breaches.iter().map(|b| (b.ticket_id, b.kind)).collect();
    assert_eq!(kinds, [(id, SlaKind::Resolve), (acked, SlaKind::Resolve)]);
    let stats = f.svc.stats();
    assert_eq!(
        (stats.sla_respond_breaches, stats.sla_resolve_breaches),
        (1, 2)
    );
    let events = f.svc.events_after(0, 100).unwrap();
    let breached: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "ticket.sla_breached")
        .map(|e| (e.ticket_id, e.data["kind"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        breached,
        [
            (Some(id), "respond".to_owned()),
            (Some(id), "resolve".to_owned()),
            (Some(acked), "resolve".to_owned())
        ]
    );
}

fn critical_fault(device: &str) -> FaultSignal {
    FaultSignal {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        code: "E23".into(),
        ts: Timestamp(T0),
    }
}

#[test]
fn a_critical_fault_opens_an_urgent_reactive_ticket_and_later_signals_update_it() {
    let f = Fixture::new();
    let ctx = washer_ctx(&[("E23", T0)]);
    // A minor code opens nothing.
    let minor = FaultSignal {
        code: "E21".into(),
        ..critical_fault("wm-1")
    };
    let signals =
        |faults: &'static [FaultSignal], predictions: &'static [Prediction]| (faults, predictions);
    let _ = signals;
    let changes = f
        .svc
        .record(&[DeviceSignals {
            predictions: &[],
            faults: &[minor],
            context: &ctx,
        }])
        .unwrap();
    assert!(changes.is_empty());
    let changes = f
        .svc
        .record(&[DeviceSignals {
            predictions: &[],
            faults: &[critical_fault("wm-1")],
            context: &ctx,
        }])
        .unwrap();
    assert_eq!(changes.len(), 1);
    let t = f.svc.get(changes[0].ticket_id).unwrap().unwrap();
    assert_eq!(t.source, TicketSource::Reactive);
    assert_eq!(t.priority, Priority::Urgent);
    assert_eq!(t.component, "drain_pump");
    assert_eq!(t.respond_by, Timestamp(T0 + HOUR));
    assert!(t.log[0].note.contains("E23"), "{}", t.log[0].note);
    // A flag and another fault update the same ticket.
    let flagged = [pred("wm-1", "drain_pump", 0.75, true)];
    let changes = f
        .svc
        .record(&[DeviceSignals {
            predictions: &flagged,
            faults: &[critical_fault("wm-1")],
            context: &ctx,
        }])
        .unwrap();
    assert!(changes.iter().all(|c| c.kind == TicketChangeKind::Updated));
    let all = all(&f.svc);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].signals, 3);
    assert_eq!(all[0].risk, 0.75);
    assert_eq!(all[0].source, TicketSource::Reactive);
    assert!(all[0].log.iter().any(|l| l.action == "fault_raised"));
}

#[test]
fn a_critical_fault_makes_an_active_proactive_ticket_urgent() {
    let f = Fixture::new();
    let id = open_one(&f, "wm-1"); // important
    let ctx = washer_ctx(&[("E23", T0)]);
    f.advance(HOUR);
    f.svc
        .record(&[DeviceSignals {
            predictions: &[],
            faults: &[critical_fault("wm-1")],
            context: &ctx,
        }])
        .unwrap();
    let t = f.svc.get(id).unwrap().unwrap();
    assert_eq!(t.priority, Priority::Urgent);
    assert_eq!(t.source, TicketSource::Proactive);
    assert_eq!(t.respond_by, Timestamp(T0 + 2 * HOUR));
    assert_eq!(t.resolve_by, Some(Timestamp(T0 + 25 * HOUR)));
}

#[test]
fn concurrent_flags_and_faults_for_one_pair_open_exactly_one_ticket() {
    let f = Fixture::new();
    let ctx = washer_ctx(&[("E23", T0)]);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            // Separate services on one file: separate connections, like two processes.
            let svc =
                TicketService::open_with_clock(&f.path, TicketConfig::default(), clock(&f.now))
                    .unwrap();
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let p = [pred("wm-1", "drain_pump", 0.8, true)];
                    let faults = [critical_fault("wm-1")];
                    let (predictions, faults): (&[Prediction], &[FaultSignal]) = if (i + j) % 2 == 0
                    {
                        (&p, &[])
                    } else {
                        (&[], &faults)
                    };
                    svc.record(&[DeviceSignals {
                        predictions,
                        faults,
                        context: &ctx,
                    }])
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let tickets = all(&f.svc);
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!(tickets[0].signals, 80);
    assert_eq!(f.svc.count_active().unwrap(), 1);
    let opened = f
        .svc
        .events_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "ticket.opened")
        .count();
    assert_eq!(opened, 1);
}

#[test]
fn events_are_written_with_their_change_and_flags_once_per_episode() {
    let f = Fixture::new();
    let ctx = washer_ctx(&[]);
    let mut rx = f.svc.subscribe_events();
    let before = *rx.borrow_and_update();
    for _ in 0..3 {
        f.svc
            .record_predictions(&[pred("wm-1", "drain_pump", 0.8, true)], &ctx)
            .unwrap();
    }
    assert!(
        rx.has_changed().unwrap(),
        "subscribers are woken after the commit"
    );
    // The episode ends when an unflagged score is stored, then a new one starts.
    let mut calm = pred("wm-1", "drain_pump", 0.2, false);
    calm.ts = Timestamp(T0 + 1);
    let mut again = pred("wm-1", "drain_pump", 0.8, true);
    again.ts = Timestamp(T0 + 2);
    f.svc.record_predictions(&[calm], &ctx).unwrap();
    f.svc.record_predictions(&[again], &ctx).unwrap();
    let id = all(&f.svc)[0].id;
    f.svc
        .transition(id, TicketStatus::Acknowledged, "planner", "", None)
        .unwrap();
    let events = f.svc.events_after(before, 100).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "prediction.flagged",
            "ticket.opened",
            "prediction.flagged",
            "ticket.updated"
        ]
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(events[3].data["action"], "status_changed");
    assert_eq!(events[3].data["ticket"]["status"], "acknowledged");
    assert_eq!(*rx.borrow_and_update(), events[3].id);
    // Paging by id.
    let page = f.svc.events_after(events[1].id, 1).unwrap();
    assert_eq!(page[0].id, events[2].id);
}

#[test]
fn a_file_from_the_first_schema_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE tickets (
                id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT NOT NULL UNIQUE,
                device_id TEXT NOT NULL, device_type TEXT NOT NULL, component TEXT NOT NULL,
                source TEXT NOT NULL, status TEXT NOT NULL, priority TEXT NOT NULL,
                risk REAL NOT NULL, peak_risk REAL NOT NULL, model_version TEXT NOT NULL,
                opened_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                respond_by INTEGER NOT NULL, signals INTEGER NOT NULL, diagnosis TEXT NOT NULL,
                risk_logged REAL NOT NULL, risk_logged_at INTEGER NOT NULL);
             INSERT INTO tickets VALUES (1, '20261124000001', 'wm-1', 'washer', 'drain_pump',
                'proactive', 'open', 'normal', 0.7, 0.7, 'v1', 0, 0, 3600000, 1,
                '{\"top_features\":[],\"recent_faults\":[],\"likely_parts\":[],\"remote_checks\":[]}',
                0.7, 0);",
        )
        .unwrap();
    }
    let now = Arc::new(AtomicI64::new(T0));
    for _ in 0..2 {
        let svc =
            TicketService::open_with_clock(&path, TicketConfig::default(), clock(&now)).unwrap();
        let t = svc.get(1).unwrap().unwrap();
        assert_eq!(t.resolve_by, None);
        assert_eq!(t.assignment, domain::Assignment::default());
        // The old ticket still takes part in the lifecycle and the SLA checker.
        assert_eq!(svc.check_sla().unwrap().len(), 1);
        drop(svc);
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE tickets SET respond_breached = 0", [])
            .unwrap();
    }
}

#[test]
fn a_version_3_file_gains_flagged_at_and_its_flagged_episodes_count_from_their_last_update() {
    let Fixture {
        _dir,
        path,
        now,
        svc,
    } = Fixture::new();
    let ctx = DiagnosisContext::default();
    let a = svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.8, true)], &ctx)
        .unwrap()
        .remove(0);
    drop(svc);
    Connection::open(&path)
        .unwrap()
        .execute_batch("ALTER TABLE device_risk DROP COLUMN flagged_at; PRAGMA user_version = 3;")
        .unwrap();
    let svc = TicketService::open_with_clock(&path, TicketConfig::default(), clock(&now)).unwrap();
    let flagged_at: Option<i64> = Connection::open(&path)
        .unwrap()
        .query_row("SELECT flagged_at FROM device_risk", [], |r| r.get(0))
        .unwrap();
    assert_eq!(flagged_at, Some(T0), "the row's updated_at");
    // The upgraded episode behaves as any: its ended ticket is not reopened by it.
    now.fetch_add(HOUR, Ordering::SeqCst);
    svc.transition(a.ticket_id, TicketStatus::Dismissed, "planner", "", None)
        .unwrap();
    let changes = svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.8, true)], &ctx)
        .unwrap();
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn performance_reads_changed_tickets_from_the_covering_index_and_sees_every_change() {
    let f = Fixture::new();
    let id = open_one(&f, "wm-1");
    let false_alarm = open_one(&f, "wm-2");
    let report = |f: &Fixture| {
        f.svc
            .performance(
                &PerformanceQuery::default(),
                &crate::tickets::AssignmentRegions,
            )
            .unwrap()
            .totals
    };
    assert_eq!((report(&f).flags, report(&f).active), (2, 2));
    let rev = |f: &Fixture| -> i64 {
        Connection::open(&f.path)
            .unwrap()
            .query_row("SELECT MAX(perf_rev) FROM tickets", [], |r| r.get(0))
            .unwrap()
    };
    // A new score of the same model on an open ticket changes nothing the report reads.
    let before = rev(&f);
    open_one(&f, "wm-1");
    assert_eq!(rev(&f), before);
    f.advance(72 * HOUR);
    let confirmed = OutcomeInput {
        kind: Some(OutcomeKind::ConfirmedFailure),
        failed_at: Some(Timestamp(T0 + 60 * HOUR)),
        ..Default::default()
    };
    f.svc
        .transition(id, TicketStatus::Resolved, "eng", "", Some(confirmed))
        .unwrap();
    // The kept report is dropped: the change shows, and so does the next one.
    let t = report(&f);
    assert_eq!((t.flags, t.resolved, t.confirmed, t.active), (2, 1, 1, 1));
    assert_eq!(t.lead_time.median_days, Some(2.5));
    f.svc
        .transition(false_alarm, TicketStatus::Dismissed, "planner", "", None)
        .unwrap();
    assert_eq!((report(&f).dismissed, report(&f).active), (1, 0));
    // The report reads the index alone, never the rows with their JSON.
    let conn = Connection::open(&f.path).unwrap();
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT id, perf_rev, opened_at, source, status, device_id,
                 device_type, component, model_version, region, ended_at, outcome_kind,
                 outcome_component, outcome_failed_at FROM tickets
                 INDEXED BY tickets_performance WHERE perf_rev > 0",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|p| p.contains("COVERING INDEX tickets_performance")),
        "{plan:?}"
    );
}

#[test]
fn a_flag_under_the_threshold_says_the_fault_codes_raised_it() {
    let f = Fixture::new();
    let ctx = DiagnosisContext::default();
    // The model's fault-code rule flags a component whose risk is under the threshold.
    let id = f
        .svc
        .record_predictions(&[pred("wm-7", "drain_pump", 0.2, true)], &ctx)
        .unwrap()[0]
        .ticket_id;
    let t = f.svc.get(id).unwrap().unwrap();
    assert!(
        t.log[0]
            .note
            .starts_with("flagged on its fault codes; Risk 0.20 (threshold 0.60)"),
        "{}",
        t.log[0].note
    );
}

#[test]
fn a_warming_up_flag_says_so_in_its_ticket_and_risk_and_older_files_gain_the_column() {
    let Fixture {
        _dir: dir,
        path,
        now,
        svc,
    } = Fixture::new();
    let ctx = DiagnosisContext::default();
    // A device in its warm-up week, flagged by its fault codes with a risk over the
    // threshold that is not to be trusted yet.
    let warming = Prediction {
        warming_up: true,
        ..pred("wm-8", "drain_pump", 0.9, true)
    };
    let id = svc.record_predictions(&[warming], &ctx).unwrap()[0].ticket_id;
    let t = svc.get(id).unwrap().unwrap();
    assert!(
        t.log[0].note.starts_with(
            "flagged on its fault codes; device warming up, risk not reliable yet; Risk 0.90"
        ),
        "{}",
        t.log[0].note
    );
    let risk = svc.device_risk("wm-8").unwrap();
    assert!(risk[0].warming_up && risk[0].flagged);
    assert!(serde_json::to_string(&risk[0])
        .unwrap()
        .contains("\"warming_up\":true"));
    // A warm score replaces it and drops the mark (and the field).
    now.fetch_add(HOUR, Ordering::SeqCst);
    let warm = Prediction {
        ts: Timestamp(T0 + HOUR),
        ..pred("wm-8", "drain_pump", 0.9, true)
    };
    svc.record_predictions(&[warm], &ctx).unwrap();
    let risk = svc.device_risk("wm-8").unwrap();
    assert!(!risk[0].warming_up);
    assert!(!serde_json::to_string(&risk[0])
        .unwrap()
        .contains("warming_up"));
    // A version-4 file (no column) is upgraded in place; its rows read as warm.
    drop(svc);
    Connection::open(&path)
        .unwrap()
        .execute_batch("ALTER TABLE device_risk DROP COLUMN warming_up; PRAGMA user_version = 4;")
        .unwrap();
    let svc = TicketService::open_with_clock(&path, TicketConfig::default(), clock(&now)).unwrap();
    assert!(!svc.device_risk("wm-8").unwrap()[0].warming_up);
    drop(dir);
}
