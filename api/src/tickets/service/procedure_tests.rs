//! Step clocks, satisfaction and call-backs with a controllable clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use domain::{
    Contribution, DeviceId, OutcomeKind, Prediction, ProfileSet, ReportChannel, Ticket,
    TicketStatus, Timestamp,
};

use super::{Clock, TicketService};
use crate::tickets::{
    AssignmentInput, DeviceSignals, DiagnosisContext, FaultSignal, OutcomeInput, ProcedureConfig,
    SatisfactionConfig, SatisfactionInput, Supervisors, TicketConfig, EVENT_CALLBACK_OPENED,
    EVENT_CALLBACK_OVERDUE, EVENT_STEP_OVERDUE,
};
use crate::Error;

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;
const HOUR: i64 = Timestamp::HOUR_MS;
const MINUTE: i64 = 60_000;

/// `Supervisors` from a fixed map (until the engineers' directory lands).
struct Map(HashMap<&'static str, &'static str>);

impl Supervisors for Map {
    fn supervisor_of(&self, login: &str) -> Option<String> {
        self.0.get(login).map(|s| (*s).to_owned())
    }
}

fn supervisors() -> Map {
    Map(HashMap::from([
        ("li.wei", "zhang.min"),
        ("wang.fang", "chen.jie"),
    ]))
}

struct Fixture {
    _dir: tempfile::TempDir,
    now: Arc<AtomicI64>,
    svc: TicketService,
}

impl Fixture {
    fn new() -> Self {
        Self::with(ProcedureConfig::default(), SatisfactionConfig::default())
    }

    fn with(procedures: ProcedureConfig, satisfaction: SatisfactionConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(T0));
        let clock: Clock = {
            let now = Arc::clone(&now);
            Arc::new(move || Timestamp(now.load(Ordering::SeqCst)))
        };
        let svc = TicketService::open_with_clock(
            &dir.path().join("tickets.db"),
            TicketConfig::default(),
            clock,
        )
        .unwrap()
        .with_procedures(procedures, satisfaction)
        .unwrap();
        Self {
            _dir: dir,
            now,
            svc,
        }
    }

    fn at(&self, ms: i64) {
        self.now.store(T0 + ms, Ordering::SeqCst);
    }

    /// A reactive (critical fault E23) ticket of `device`'s drain pump.
    fn reactive(&self, device: &str) -> Ticket {
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
        let changes = self
            .svc
            .record(&[DeviceSignals {
                predictions: &[],
                faults: &[fault],
                context: &ctx,
            }])
            .unwrap();
        self.svc.get(changes[0].ticket_id).unwrap().unwrap()
    }

    /// A proactive ticket of `device`'s heater.
    fn proactive(&self, device: &str) -> Ticket {
        let p = Prediction {
            device_id: DeviceId::parse(device).unwrap(),
            device_type: "washer".into(),
            component: "heater".into(),
            ts: Timestamp(T0),
            risk: 0.8,
            threshold: 0.6,
            flagged: true,
            model_version: "washer-v1".into(),
            top_features: vec![Contribution {
                feature: "water_temp_c.ewma_fast".into(),
                value: 20.0,
                contribution: 1.0,
                normal_range: None,
            }],
            lead_time_days: None,
            warming_up: false,
        };
        let changes = self
            .svc
            .record_predictions(&[p], &DiagnosisContext::default())
            .unwrap();
        self.svc.get(changes[0].ticket_id).unwrap().unwrap()
    }

    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.svc
            .events_after(0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.data)
            .collect()
    }

    fn move_to(&self, id: i64, to: TicketStatus, actor: &str) -> Ticket {
        let outcome = (to == TicketStatus::Resolved).then(|| OutcomeInput {
            kind: Some(OutcomeKind::NoFaultFound),
            ..OutcomeInput::default()
        });
        self.svc.transition(id, to, actor, "", outcome).unwrap()
    }

    fn resolved(&self, device: &str) -> Ticket {
        let t = self.reactive(device);
        self.move_to(t.id, TicketStatus::Acknowledged, "planner.ma");
        self.move_to(t.id, TicketStatus::Resolved, "planner.ma")
    }
}

fn steps(t: &Ticket) -> Vec<(&str, i64)> {
    t.steps
        .iter()
        .map(|s| (s.step.as_str(), s.due.millis() - T0))
        .collect()
}

#[test]
fn a_ticket_gets_its_procedures_steps_on_opening() {
    let f = Fixture::new();
    let r = f.reactive("wm-1");
    assert_eq!(
        steps(&r),
        [
            ("respond", 2 * HOUR),
            ("act", 24 * HOUR),
            ("finish", 48 * HOUR),
            ("confirm", 72 * HOUR)
        ]
    );
    let p = f.proactive("wm-2");
    assert_eq!(
        steps(&p),
        [
            ("respond", 4 * HOUR),
            ("act", 72 * HOUR),
            ("finish", 168 * HOUR)
        ]
    );
    assert!(r.steps.iter().all(|s| s.done_at.is_none()));
}

#[test]
fn every_overdue_step_fires_once_to_the_right_supervisor_and_never_after_it_is_done() {
    let f = Fixture::new();
    let sup = supervisors();
    let t = f.reactive("wm-1");
    // Nothing is due yet.
    f.at(2 * HOUR);
    assert!(
        f.svc.check_steps(&sup).unwrap().steps.is_empty(),
        "due is not past"
    );
    // respond overdue: nobody owns the ticket, so the urgent tier's escalation.
    f.at(2 * HOUR + 1);
    let sweep = f.svc.check_steps(&sup).unwrap();
    assert_eq!(sweep.steps.len(), 1);
    assert_eq!(sweep.steps[0].step, "respond");
    assert_eq!(sweep.steps[0].owner, None);
    assert_eq!(sweep.steps[0].supervisor, "after-sales-manager");
    // Once only.
    f.at(3 * HOUR);
    assert!(f.svc.check_steps(&sup).unwrap().steps.is_empty());
    // Assigned to li.wei: the next alert goes to li.wei's supervisor.
    f.svc
        .assign(
            t.id,
            AssignmentInput {
                engineer: Some("li.wei".into()),
                ..AssignmentInput::default()
            },
            "planner.ma",
        )
        .unwrap();
    f.move_to(t.id, TicketStatus::Acknowledged, "planner.ma");
    f.at(24 * HOUR + 1);
    let sweep = f.svc.check_steps(&sup).unwrap();
    assert_eq!(sweep.steps.len(), 1);
    assert_eq!(sweep.steps[0].step, "act");
    assert_eq!(sweep.steps[0].owner.as_deref(), Some("li.wei"));
    assert_eq!(sweep.steps[0].supervisor, "zhang.min");
    // The step done before its limit never fires: finish is done at 30 h.
    f.at(30 * HOUR);
    f.move_to(t.id, TicketStatus::InProgress, "li.wei");
    f.move_to(t.id, TicketStatus::Resolved, "li.wei");
    f.at(100 * HOUR);
    let sweep = f.svc.check_steps(&sup).unwrap();
    assert_eq!(sweep.steps.len(), 1, "only confirm: {sweep:?}");
    assert_eq!(sweep.steps[0].step, "confirm");
    f.at(200 * HOUR);
    assert!(f.svc.check_steps(&sup).unwrap().steps.is_empty());
    // The events: one per overdue step, with the contract's fields.
    let events = f.events(EVENT_STEP_OVERDUE);
    let fired: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_owned(),
                e["supervisor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        fired,
        [
            ("respond".to_owned(), "after-sales-manager".to_owned()),
            ("act".to_owned(), "zhang.min".to_owned()),
            ("confirm".to_owned(), "zhang.min".to_owned()),
        ]
    );
    assert_eq!(events[1]["ticket"]["id"], t.id);
    assert_eq!(events[1]["owner"], "li.wei");
    assert!(events[1]["due"].is_string());
    // The ticket shows it: overdue, alerted, and done (late) for act.
    let t = f.svc.get(t.id).unwrap().unwrap();
    let act = &t.steps[1];
    assert_eq!(act.alerted.as_deref(), Some("zhang.min"));
    assert_eq!(act.overdue_at, Some(Timestamp(T0 + 24 * HOUR + 1)));
    assert_eq!(act.done_at, Some(Timestamp(T0 + 30 * HOUR)));
    assert_eq!(t.steps[2].overdue_at, None, "finish was in time");
    let logged = t.log.iter().filter(|l| l.action == "step_overdue").count();
    assert_eq!(logged, 3);
    assert_eq!(f.svc.stats().steps_overdue, 3);
}

#[test]
fn the_planner_owns_a_ticket_without_an_engineer() {
    let f = Fixture::new();
    let sup = Map(HashMap::from([("planner.ma", "head.of.planning")]));
    let t = f.proactive("wm-1");
    f.move_to(t.id, TicketStatus::Acknowledged, "planner.ma");
    f.at(72 * HOUR + 1);
    let sweep = f.svc.check_steps(&sup).unwrap();
    assert_eq!(sweep.steps[0].owner.as_deref(), Some("planner.ma"));
    assert_eq!(sweep.steps[0].supervisor, "head.of.planning");
}

#[test]
fn a_status_completes_its_step_and_the_earlier_ones() {
    let f = Fixture::new();
    let t = f.reactive("wm-1");
    f.at(MINUTE);
    // Open -> resolved directly: respond, act and finish are done; confirm is not.
    let t = f.move_to(t.id, TicketStatus::Resolved, "planner.ma");
    let done: Vec<_> = t.steps.iter().map(|s| s.done_at.is_some()).collect();
    assert_eq!(done, [true, true, true, false]);
    let t = f.move_to(t.id, TicketStatus::Closed, "planner.ma");
    assert!(t
        .steps
        .iter()
        .all(|s| s.done_at == Some(Timestamp(T0 + MINUTE))));
    // A dismissal ends every pending step.
    let t = f.reactive("wm-2");
    let t = f.move_to(t.id, TicketStatus::Dismissed, "planner.ma");
    assert!(t.steps.iter().all(|s| s.done_at.is_some()));
    f.at(1_000 * HOUR);
    assert!(f.svc.check_steps(&supervisors()).unwrap().steps.is_empty());
}

#[test]
fn schedule_and_remote_check_are_tied_to_their_actions() {
    let text = r#"
[[procedure]]
name = "full"
steps = [{ step = "respond", within = "1h" }, { step = "remote_check", within = "2h" },
         { step = "schedule", within = "4h" }, { step = "act", within = "24h" }]
"#;
    let procedures: ProcedureConfig = toml::from_str(text).unwrap();
    let f = Fixture::with(procedures, SatisfactionConfig::default());
    let t = f.reactive("wm-1");
    f.at(MINUTE);
    f.move_to(t.id, TicketStatus::Acknowledged, "planner.ma");
    // A note while acknowledged is the remote check.
    f.at(2 * MINUTE);
    let t = f
        .svc
        .add_note(t.id, "Self-test: pump current low", "planner.ma")
        .unwrap();
    assert_eq!(t.steps[1].done_at, Some(Timestamp(T0 + 2 * MINUTE)));
    assert!(t.steps[2].done_at.is_none());
    // An assignment without a window does not schedule; with one it does.
    let t = f
        .svc
        .assign(
            t.id,
            AssignmentInput {
                engineer: Some("li.wei".into()),
                ..AssignmentInput::default()
            },
            "planner.ma",
        )
        .unwrap();
    assert!(t.steps[2].done_at.is_none());
    f.at(3 * MINUTE);
    let t = f
        .svc
        .assign(
            t.id,
            AssignmentInput {
                engineer: Some("li.wei".into()),
                window_start: Some(Timestamp(T0 + 5 * HOUR)),
                window_end: Some(Timestamp(T0 + 7 * HOUR)),
                region: None,
            },
            "planner.ma",
        )
        .unwrap();
    assert_eq!(t.steps[2].done_at, Some(Timestamp(T0 + 3 * MINUTE)));
    assert!(t.steps[3].done_at.is_none());
}

#[test]
fn a_reopen_restarts_the_clocks_from_the_reopening_time() {
    let f = Fixture::new();
    let sup = supervisors();
    let t = f.reactive("wm-1");
    f.at(3 * HOUR);
    assert_eq!(
        f.svc.check_steps(&sup).unwrap().steps.len(),
        1,
        "respond late"
    );
    f.move_to(t.id, TicketStatus::Resolved, "planner.ma");
    f.at(10 * HOUR);
    let t = f.move_to(t.id, TicketStatus::Open, "planner.ma");
    assert_eq!(
        steps(&t),
        [
            ("respond", 12 * HOUR),
            ("act", 34 * HOUR),
            ("finish", 58 * HOUR),
            ("confirm", 82 * HOUR)
        ]
    );
    assert!(t
        .steps
        .iter()
        .all(|s| s.done_at.is_none() && s.overdue_at.is_none()));
    // The fresh respond fires again once.
    f.at(12 * HOUR + 1);
    let sweep = f.svc.check_steps(&sup).unwrap();
    assert_eq!(sweep.steps.len(), 1);
    assert_eq!(sweep.steps[0].step, "respond");
    // Reopening to in_progress restarts with act (and before) done.
    let t = f.move_to(t.id, TicketStatus::Resolved, "planner.ma");
    f.at(13 * HOUR);
    let t = f.move_to(t.id, TicketStatus::InProgress, "planner.ma");
    let _ = &t;
    let t = f.svc.get(t.id).unwrap().unwrap();
    let done: Vec<_> = t.steps.iter().map(|s| s.done_at).collect();
    let at = Some(Timestamp(T0 + 13 * HOUR));
    assert_eq!(done, [at, at, None, None]);
    assert_eq!(t.steps[2].due, Timestamp(T0 + 13 * HOUR + 48 * HOUR));
}

#[test]
fn an_empty_procedure_list_gives_no_clocks() {
    let procedures: ProcedureConfig = toml::from_str("procedure = []").unwrap();
    let f = Fixture::with(procedures, SatisfactionConfig::default());
    let t = f.reactive("wm-1");
    assert!(t.steps.is_empty());
    f.at(1_000 * HOUR);
    assert!(f.svc.check_steps(&supervisors()).unwrap().steps.is_empty());
}

#[test]
fn with_procedures_validates_and_needs_an_unshared_handle() {
    let dir = tempfile::tempdir().unwrap();
    let svc = TicketService::open(&dir.path().join("t.db"), TicketConfig::default()).unwrap();
    let bad: ProcedureConfig = toml::from_str(
        r#"[[procedure]]
name = "a"
steps = [{ step = "act", within = "4h" }, { step = "respond", within = "8h" }]"#,
    )
    .unwrap();
    assert!(matches!(
        svc.clone()
            .with_procedures(bad, SatisfactionConfig::default()),
        Err(Error::Config(_))
    ));
    let shared = svc.clone();
    assert!(svc
        .with_procedures(ProcedureConfig::default(), SatisfactionConfig::default())
        .is_err());
    drop(shared);
}

fn answer(score: u8) -> SatisfactionInput {
    SatisfactionInput {
        score,
        comment: "the engineer was late".into(),
        channel: Some(ReportChannel::App),
    }
}

#[test]
fn a_low_score_opens_exactly_one_callback_with_the_right_deadline() {
    let f = Fixture::new();
    let t = f.resolved("wm-1");
    f.at(5 * HOUR);
    let t = f.svc.record_satisfaction(t.id, answer(2), "crm").unwrap();
    let s = t.satisfaction.as_ref().unwrap();
    assert_eq!((s.score, s.channel), (2, ReportChannel::App));
    assert_eq!(s.recorded_by, "crm");
    let c = t.callback.clone().unwrap();
    assert_eq!(c.opened_at, Timestamp(T0 + 5 * HOUR));
    assert_eq!(c.due, Timestamp(T0 + 6 * HOUR));
    assert_eq!(c.owner.as_deref(), Some("planner.ma"));
    // A second dissatisfied answer replaces the first and opens no second call-back.
    f.at(5 * HOUR + MINUTE);
    let t = f.svc.record_satisfaction(t.id, answer(1), "crm").unwrap();
    assert_eq!(t.satisfaction.as_ref().unwrap().score, 1);
    assert_eq!(t.callback, Some(c));
    assert_eq!(f.events(EVENT_CALLBACK_OPENED).len(), 1);
    let actions: Vec<_> = t.log.iter().map(|l| l.action.as_str()).collect();
    assert!(actions.contains(&"satisfaction_recorded"));
    assert!(actions.contains(&"satisfaction_replaced"));
    assert_eq!(
        actions.iter().filter(|a| **a == "callback_opened").count(),
        1
    );
    let stats = f.svc.stats();
    assert_eq!((stats.satisfaction_answers, stats.callbacks_opened), (2, 1));
}

#[test]
fn a_high_score_opens_none_and_the_threshold_is_configurable() {
    let f = Fixture::new();
    let t = f.resolved("wm-1");
    let t = f.svc.record_satisfaction(t.id, answer(3), "crm").unwrap();
    assert!(t.callback.is_none());
    let t = f.svc.record_satisfaction(t.id, answer(5), "crm").unwrap();
    assert!(t.callback.is_none());
    assert!(f.events(EVENT_CALLBACK_OPENED).is_empty());
    let strict = SatisfactionConfig {
        dissatisfied_at_most: 3,
        callback_within: crate::tickets::ConfigDuration::from_minutes(30),
    };
    let f = Fixture::with(ProcedureConfig::default(), strict);
    let t = f.resolved("wm-1");
    let t = f.svc.record_satisfaction(t.id, answer(3), "crm").unwrap();
    assert_eq!(t.callback.unwrap().due, Timestamp(T0 + 30 * MINUTE));
}

#[test]
fn satisfaction_needs_a_resolved_or_closed_ticket_and_a_score_of_1_to_5() {
    let f = Fixture::new();
    let t = f.reactive("wm-1");
    assert!(matches!(
        f.svc.record_satisfaction(t.id, answer(4), "crm"),
        Err(Error::Conflict(_))
    ));
    let t = f.move_to(t.id, TicketStatus::Resolved, "planner.ma");
    for bad in [0, 6] {
        assert!(matches!(
            f.svc.record_satisfaction(t.id, answer(bad), "crm"),
            Err(Error::Invalid { .. })
        ));
    }
    assert!(matches!(
        f.svc.record_satisfaction(999, answer(4), "crm"),
        Err(Error::NotFound(_))
    ));
    let t = f.move_to(t.id, TicketStatus::Closed, "planner.ma");
    let t = f
        .svc
        .record_satisfaction(
            t.id,
            SatisfactionInput {
                score: 4,
                comment: String::new(),
                channel: None,
            },
            "crm",
        )
        .unwrap();
    assert_eq!(t.satisfaction.unwrap().channel, ReportChannel::Phone);
}

#[test]
fn a_callback_is_done_once_and_an_overdue_one_is_marked_once() {
    let f = Fixture::new();
    let sup = supervisors();
    // No call-back: 409.
    let t = f.resolved("wm-1");
    assert!(matches!(
        f.svc.complete_callback(t.id, "called", "planner.ma"),
        Err(Error::Conflict(_))
    ));
    // Done in time: never overdue.
    f.svc.record_satisfaction(t.id, answer(1), "crm").unwrap();
    assert!(matches!(
        f.svc.complete_callback(t.id, "  ", "planner.ma"),
        Err(Error::Invalid { .. })
    ));
    f.at(30 * MINUTE);
    let t = f
        .svc
        .complete_callback(t.id, "Apologised; a new visit on Friday", "planner.ma")
        .unwrap();
    let c = t.callback.clone().unwrap();
    assert_eq!(c.done_at, Some(Timestamp(T0 + 30 * MINUTE)));
    assert_eq!(c.done_by.as_deref(), Some("planner.ma"));
    assert!(matches!(
        f.svc.complete_callback(t.id, "again", "planner.ma"),
        Err(Error::Conflict(_))
    ));
    f.at(5 * HOUR);
    assert!(f.svc.check_steps(&sup).unwrap().callbacks.is_empty());
    // Not done in time: marked overdue once, then done late.
    let u = f.resolved("wm-2");
    f.svc.record_satisfaction(u.id, answer(2), "crm").unwrap();
    f.at(6 * HOUR + 1);
    let sweep = f.svc.check_steps(&sup).unwrap();
    assert_eq!(sweep.callbacks.len(), 1);
    assert_eq!(sweep.callbacks[0].ticket_id, u.id);
    assert_eq!(sweep.callbacks[0].due, Timestamp(T0 + 6 * HOUR));
    f.at(7 * HOUR);
    assert!(
        f.svc.check_steps(&sup).unwrap().callbacks.is_empty(),
        "once"
    );
    let u = f
        .svc
        .complete_callback(u.id, "reached them", "planner.ma")
        .unwrap();
    let c = u.callback.unwrap();
    assert_eq!(c.overdue_at, Some(Timestamp(T0 + 6 * HOUR + 1)));
    assert!(c.done_at.is_some());
    let late = u.log.iter().find(|l| l.action == "callback_done").unwrap();
    assert!(late.note.contains("late"), "{}", late.note);
    let overdue = f.events(EVENT_CALLBACK_OVERDUE);
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["owner"], "planner.ma");
    let stats = f.svc.stats();
    assert_eq!(
        (
            stats.callbacks_opened,
            stats.callbacks_done,
            stats.callbacks_overdue
        ),
        (2, 2, 1)
    );
}
