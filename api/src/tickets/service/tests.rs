use std::sync::atomic::AtomicI64;

use domain::{Contribution, DeviceId, Priority, ProfileSet};

use super::*;

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
    }
}

fn washer_ctx(faults: &[(&str, i64)]) -> DiagnosisContext {
    DiagnosisContext {
        profile: ProfileSet::builtin().get("washer").cloned(),
        recent_faults: faults
            .iter()
            .map(|(code, ts)| ((*code).to_owned(), Timestamp(*ts)))
            .collect(),
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
fn a_new_ticket_opens_after_the_previous_one_is_closed() {
    let f = Fixture::new();
    let ctx = DiagnosisContext::default();
    let a = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.8, true)], &ctx)
        .unwrap()
        .remove(0);
    let closed = f
        .svc
        .set_status(
            a.ticket_id,
            TicketStatus::Closed,
            "planner-7",
            "pump replaced",
        )
        .unwrap();
    assert_eq!(closed.status, TicketStatus::Closed);
    let last = closed.log.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.action.as_str()),
        ("planner-7", "status_changed")
    );
    assert!(
        last.note.contains("open -> closed: pump replaced"),
        "{}",
        last.note
    );

    let b = f
        .svc
        .record_predictions(&[pred("wm-1", "drain_pump", 0.8, true)], &ctx)
        .unwrap()
        .remove(0);
    assert_eq!(b.kind, TicketChangeKind::Opened);
    assert_ne!(b.ticket_id, a.ticket_id);
    assert_ne!(b.number, a.number);

    // Reopening the old one would make two active tickets: the store refuses.
    let err = f
        .svc
        .set_status(a.ticket_id, TicketStatus::Open, "planner-7", "")
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(matches!(
        f.svc.set_status(b.ticket_id, TicketStatus::Open, "x", ""),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        f.svc.set_status(999, TicketStatus::Closed, "x", ""),
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
    // Closing a ticket does not free its number.
    f.svc
        .set_status(1, TicketStatus::Closed, "planner", "")
        .unwrap();
    let ch = f
        .svc
        .record_predictions(&[pred("wm-0", "drain_pump", 0.8, true)], &ctx)
        .unwrap();
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
        .set_status(3, TicketStatus::Dismissed, "planner", "")
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
