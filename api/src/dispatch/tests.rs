//! The dispatcher over real stores with a controllable clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use domain::{DeviceId, Lang, Prediction, ProfileSet, Timestamp};
use store::engineers::{EngineerProfile, NewEngineer, WorkingHours};

use super::*;
use crate::tickets::{DeviceSignals, DiagnosisContext, FaultSignal, TicketConfig, TicketQuery};

/// 2026-11-24T06:00:00Z, a Tuesday.
const T0: i64 = 1_795_500_000_000;
const HOUR: i64 = Timestamp::HOUR_MS;

struct Fixture {
    dir: tempfile::TempDir,
    now: Arc<AtomicI64>,
    tickets: TicketService,
    users: UserStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(T0));
        let clock_now = Arc::clone(&now);
        let tickets = TicketService::open_with_clock(
            &dir.path().join("tickets.db"),
            TicketConfig::default(),
            Arc::new(move || Timestamp(clock_now.load(Ordering::SeqCst))),
        )
        .unwrap();
        let users = UserStore::open(&dir.path().join("keys.db")).unwrap();
        Self {
            dir,
            now,
            tickets,
            users,
        }
    }

    fn dispatcher(&self, config: DispatchConfig) -> Dispatcher {
        Dispatcher::new(self.tickets.clone(), self.users.clone(), config).unwrap()
    }

    fn engineer(&self, login: &str, skills: &[(&str, u8)], at: (f64, f64), capacity: u32) {
        let profile = EngineerProfile {
            skills: skills
                .iter()
                .map(|(k, l)| ((*k).to_owned(), *l))
                .collect::<BTreeMap<_, _>>(),
            region: Some("north".into()),
            lat: Some(at.0),
            lon: Some(at.1),
            working_hours: WorkingHours::default(),
            daily_capacity: capacity,
            supervisor: Some("zhang.min".into()),
        };
        let new = NewEngineer {
            display_name: "",
            lang: Lang::En,
            time_zone: "UTC",
        };
        self.users
            .put_engineer(login, &profile, &new, None)
            .unwrap();
    }

    /// Puts `device` at (31.2, 121.5) in the device directory.
    fn locate(&self, device: &str) {
        let c = rusqlite::Connection::open(self.dir.path().join("tickets.db")).unwrap();
        c.execute(
            "INSERT INTO device_directory (device_id, lat, lon, region, updated_at)
             VALUES (?1, 31.2, 121.5, 'north', 0)",
            [device],
        )
        .unwrap();
    }

    /// An urgent reactive ticket (critical fault E23 of a washer's drain pump, which
    /// needs plumbing and electrical skills).
    fn urgent(&self, device: &str) -> i64 {
        let ctx = DiagnosisContext {
            profile: ProfileSet::builtin().get("washer").cloned(),
            recent_faults: vec![("E23".into(), Timestamp(T0))],
            device: None,
        };
        let fault = FaultSignal {
            device_id: DeviceId::parse(device).unwrap(),
            device_type: "washer".into(),
            code: "E23".into(),
            ts: Timestamp(T0),
        };
        self.tickets
            .record(&[DeviceSignals {
                predictions: &[],
                faults: &[fault],
                context: &ctx,
            }])
            .unwrap()[0]
            .ticket_id
    }

    /// An important proactive ticket (a flag at risk 0.75).
    fn important(&self, device: &str) -> i64 {
        let ctx = DiagnosisContext {
            profile: ProfileSet::builtin().get("washer").cloned(),
            ..DiagnosisContext::default()
        };
        let p = Prediction {
            device_id: DeviceId::parse(device).unwrap(),
            device_type: "washer".into(),
            component: "drain_pump".into(),
            ts: Timestamp(T0),
            risk: 0.75,
            threshold: 0.6,
            flagged: true,
            model_version: "washer-v1".into(),
            top_features: Vec::new(),
            lead_time_days: None,
            warming_up: false,
        };
        let changes = self.tickets.record_predictions(&[p], &ctx).unwrap();
        let t = self.tickets.get(changes[0].ticket_id).unwrap().unwrap();
        assert_eq!(t.priority, Priority::Important);
        t.id
    }

    fn events(&self, kind: &str) -> usize {
        self.tickets
            .events_after(0, 10_000)
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }
}

#[test]
fn an_urgent_ticket_is_assigned_automatically_once_to_the_best_fit() {
    let f = Fixture::new();
    f.engineer(
        "near",
        &[("plumbing", 4), ("electrical", 3)],
        (31.21, 121.51),
        4,
    );
    f.engineer(
        "far",
        &[("plumbing", 5), ("electrical", 5)],
        (31.9, 122.2),
        4,
    );
    f.engineer("novice", &[("plumbing", 1)], (31.2, 121.5), 4);
    f.locate("wm-1");
    let id = f.urgent("wm-1");
    let d = f.dispatcher(DispatchConfig::default());
    let ranking = d.rank(&f.tickets.get(id).unwrap().unwrap()).unwrap();
    assert_eq!(ranking.mode, "auto");
    assert_eq!(ranking.dispatch, None);
    assert_eq!(ranking.needed_by, Timestamp(T0 + 4 * HOUR));
    assert_eq!(ranking.candidates[0].engineer, "near");
    let novice = ranking
        .candidates
        .iter()
        .find(|c| c.engineer == "novice")
        .unwrap();
    assert!(!novice.fits);

    let done = d.dispatch_pending().unwrap();
    assert_eq!(
        done,
        [Dispatched {
            ticket_id: id,
            decision: "assigned",
            engineer: Some("near".into())
        }]
    );
    let t = f.tickets.get(id).unwrap().unwrap();
    assert_eq!(t.assignment.engineer.as_deref(), Some("near"));
    // Working hours start at 08:00 UTC; a visit is 2 h.
    let eight = Timestamp(T0 + 2 * HOUR);
    assert_eq!(t.assignment.window_start, Some(eight));
    assert_eq!(
        t.assignment.window_end,
        Some(Timestamp(eight.millis() + 2 * HOUR))
    );
    let log = t.log.iter().find(|l| l.action == "assigned").unwrap();
    assert_eq!(log.actor, "fixahead");
    assert!(
        log.note.contains("dispatched automatically"),
        "{}",
        log.note
    );
    assert_eq!(t.planner, None, "fixahead is nobody's planner");
    assert_eq!(
        f.tickets
            .dispatch_state(id)
            .unwrap()
            .unwrap()
            .state
            .as_deref(),
        Some("assigned")
    );
    // Once: the next sweep has nothing to do, and the booking counts as load.
    assert!(d.dispatch_pending().unwrap().is_empty());
    let near = d.engineer("near").unwrap().unwrap();
    assert_eq!((near.load.active, near.load.capacity), (1, 4));
    f.now.fetch_add(2 * HOUR, Ordering::SeqCst);
    assert_eq!(d.engineer("near").unwrap().unwrap().load.today, 1);
}

#[test]
fn an_important_ticket_is_proposed_and_left_to_a_planner() {
    let f = Fixture::new();
    f.engineer(
        "near",
        &[("plumbing", 4), ("electrical", 3)],
        (31.21, 121.51),
        4,
    );
    let id = f.important("wm-2");
    let d = f.dispatcher(DispatchConfig::default());
    let done = d.dispatch_pending().unwrap();
    assert_eq!(done[0].decision, "proposed");
    let t = f.tickets.get(id).unwrap().unwrap();
    assert_eq!(t.assignment.engineer, None);
    assert_eq!(t.escalated_to, None);
    let r = d.rank(&t).unwrap();
    assert_eq!(r.dispatch.as_deref(), Some("proposed"));
    assert_eq!(r.mode, "propose");
    assert!(r.candidates[0].fits);
    assert!(d.dispatch_pending().unwrap().is_empty());
    // A device-type rule makes the same kind of ticket automatic.
    let mut config = DispatchConfig::default();
    config.device_types.insert(
        "washer".into(),
        ModeOverride {
            important: Some(DispatchMode::Auto),
            ..ModeOverride::default()
        },
    );
    let id2 = f.important("wm-3");
    let done = f.dispatcher(config).dispatch_pending().unwrap();
    assert_eq!(done[0].ticket_id, id2);
    assert_eq!(done[0].decision, "assigned");
}

#[test]
fn nobody_fits_escalates_once_to_the_manager() {
    let f = Fixture::new();
    f.engineer("electrician", &[("electrical", 5)], (31.2, 121.5), 4);
    let id = f.urgent("wm-4");
    let d = f.dispatcher(DispatchConfig {
        manager: "service-director".into(),
        ..DispatchConfig::default()
    });
    let done = d.dispatch_pending().unwrap();
    assert_eq!(done[0].decision, "escalated");
    let t = f.tickets.get(id).unwrap().unwrap();
    assert_eq!(t.escalated_to.as_deref(), Some("service-director"));
    assert_eq!(t.assignment.engineer, None);
    let log = t.log.iter().find(|l| l.action == "escalated").unwrap();
    assert!(log.note.contains("plumbing"), "{}", log.note);
    assert_eq!(f.events(crate::tickets::EVENT_ESCALATED), 1);
    assert!(d.dispatch_pending().unwrap().is_empty());
    f.now.fetch_add(HOUR, Ordering::SeqCst);
    assert!(d.dispatch_pending().unwrap().is_empty());
    assert_eq!(f.events(crate::tickets::EVENT_ESCALATED), 1);
    assert_eq!(d.tickets().escalated_by_dispatch(10).unwrap(), [id]);
    // A proposed ticket with nobody fitting escalates too.
    let id2 = f.important("wm-5");
    let done = d.dispatch_pending().unwrap();
    assert_eq!((done[0].ticket_id, done[0].decision), (id2, "escalated"));
}

#[test]
fn full_capacity_means_the_next_day_and_escalation_when_that_is_too_late() {
    let f = Fixture::new();
    f.engineer(
        "solo",
        &[("plumbing", 4), ("electrical", 4)],
        (31.2, 121.5),
        1,
    );
    let d = f.dispatcher(DispatchConfig::default());
    let first = f.urgent("wm-6");
    let second = f.urgent("wm-7");
    let done = d.dispatch_pending().unwrap();
    let by_id: HashMap<i64, &str> = done.iter().map(|x| (x.ticket_id, x.decision)).collect();
    assert_eq!(by_id[&first], "assigned");
    assert_eq!(
        by_id[&second], "escalated",
        "solo's one visit today is taken"
    );
    let check = d.check_capacity(second, "solo", None).unwrap();
    assert!(check.is_full(), "{check:?}");
    assert_eq!(
        check,
        CapacityCheck::Booked {
            day: "2026-11-24".into(),
            load: 1,
            capacity: 1
        }
    );
    // The ticket's own booking does not count against itself.
    assert!(!d.check_capacity(first, "solo", None).unwrap().is_full());
    assert_eq!(
        d.check_capacity(first, "stranger", None).unwrap(),
        CapacityCheck::NotAnEngineer
    );
}

#[test]
fn disabled_or_without_engineers_nothing_is_dispatched() {
    let f = Fixture::new();
    let id = f.urgent("wm-8");
    let d = f.dispatcher(DispatchConfig::default());
    assert!(d.dispatch_pending().unwrap().is_empty(), "no engineers yet");
    assert_eq!(f.tickets.dispatch_state(id).unwrap().unwrap().state, None);
    f.engineer(
        "near",
        &[("plumbing", 4), ("electrical", 3)],
        (31.2, 121.5),
        4,
    );
    let off = f.dispatcher(DispatchConfig {
        enabled: false,
        ..DispatchConfig::default()
    });
    assert!(off.dispatch_pending().unwrap().is_empty());
    assert_eq!(f.tickets.dispatch_state(id).unwrap().unwrap().state, None);
    assert_eq!(f.events(crate::tickets::EVENT_ESCALATED), 0);
    // A person's assignment first: dispatch leaves it alone.
    f.tickets
        .assign(
            id,
            AssignmentInput {
                engineer: Some("someone".into()),
                ..AssignmentInput::default()
            },
            "Planner (p)",
        )
        .unwrap();
    assert_eq!(d.dispatch_pending().unwrap()[0].decision, "manual");
    let t = f.tickets.list(&TicketQuery::default()).unwrap().remove(0);
    assert_eq!(t.assignment.engineer.as_deref(), Some("someone"));
}

#[test]
fn supervisors_come_from_the_directory() {
    let f = Fixture::new();
    f.engineer("near", &[("plumbing", 4)], (31.2, 121.5), 4);
    let d = f.dispatcher(DispatchConfig::default());
    assert_eq!(d.supervisor_of("near").as_deref(), Some("zhang.min"));
    assert_eq!(d.supervisor_of("nobody"), None);
}
