//! Customer reports: joining, opening, priorities, concurrency (docs/intake.md).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use domain::{
    Contribution, DeviceId, Prediction, Priority, ProblemCategory, ProfileSet, ReportChannel,
    TicketSource, TicketStatus, Timestamp,
};

use super::*;
use crate::tickets::{DiagnosisContext, TicketQuery};

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    now: Arc<AtomicI64>,
    svc: TicketService,
}

fn clock(now: &Arc<AtomicI64>) -> Clock {
    let now = Arc::clone(now);
    Arc::new(move || Timestamp(now.load(Ordering::SeqCst)))
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.db");
        let now = Arc::new(AtomicI64::new(T0));
        let svc =
            TicketService::open_with_clock(&path, TicketConfig::default(), clock(&now)).unwrap();
        Self {
            _dir: dir,
            path,
            now,
            svc,
        }
    }
}

fn report(device: &str, category: ProblemCategory, faults: &[(&str, i64)]) -> ReportInput {
    ReportInput {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        channel: ReportChannel::Phone,
        category,
        words: "Water stays in the drum <b>since</b> Monday".into(),
        component: None,
        reporter: "call-centre".into(),
        customer_ref: Some("C-1".into()),
        context: DiagnosisContext {
            profile: ProfileSet::builtin().get("washer").cloned(),
            recent_faults: faults
                .iter()
                .map(|(c, ts)| ((*c).to_owned(), Timestamp(*ts)))
                .collect(),
            device: None,
        },
        readings: BTreeMap::new(),
        ranges: BTreeMap::new(),
        reference: Some(Timestamp(T0)),
    }
}

fn flag(device: &str, component: &str) -> Prediction {
    Prediction {
        device_id: DeviceId::parse(device).unwrap(),
        device_type: "washer".into(),
        component: component.into(),
        ts: Timestamp(T0),
        risk: 0.8,
        threshold: 0.6,
        flagged: true,
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

#[test]
fn a_healthy_device_opens_one_reactive_ticket_with_the_categorys_priority() {
    let f = Fixture::new();
    let r = f
        .svc
        .report(&report("wm-1", ProblemCategory::Noise, &[]))
        .unwrap();
    assert_eq!(r.result, ReportResultKind::Opened);
    let t = &r.ticket;
    assert_eq!(t.source, TicketSource::Reactive);
    assert_eq!(t.channel, ReportChannel::Phone);
    assert_eq!(t.priority, Priority::Important);
    // Nothing in the data: the category hints, but not confidently.
    assert_eq!(t.component, UNKNOWN_COMPONENT);
    assert_eq!(r.prejudgement.component, None);
    assert_eq!(t.prejudgement.as_ref(), Some(&r.prejudgement));
    assert_eq!(t.reports.len(), 1);
    assert!(!t.reports[0].joined);
    assert_eq!(
        t.reports[0].words,
        "Water stays in the drum <b>since</b> Monday"
    );
    let config = f.svc.config();
    assert_eq!(
        t.respond_by.millis(),
        T0 + config.response_ms(Priority::Important)
    );
    assert_eq!(r.planned.status, TicketStatus::Open);
    assert_eq!(r.planned.priority, Priority::Important);
    assert!(t.number.starts_with("20261124"));
    assert!(t.log.iter().any(|e| e.action == "customer_report"
        && e.actor == "call-centre"
        && e.note.contains("phone report (noise)")));
    let opened = f
        .svc
        .events_after(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "ticket.opened")
        .count();
    assert_eq!(opened, 1);
    // A question is normal; the caller's component is used.
    let mut q = report("wm-2", ProblemCategory::Question, &[]);
    q.component = Some("heater".into());
    let r = f.svc.report(&q).unwrap();
    assert_eq!(r.ticket.priority, Priority::Normal);
    assert_eq!(r.ticket.component, "heater");
    // Down is urgent; a critical code of the judged component too.
    let r = f
        .svc
        .report(&report("wm-3", ProblemCategory::Down, &[]))
        .unwrap();
    assert_eq!(r.ticket.priority, Priority::Urgent);
    let r = f
        .svc
        .report(&report("wm-4", ProblemCategory::ErrorCode, &[("E23", T0)]))
        .unwrap();
    assert_eq!(r.ticket.component, "drain_pump");
    assert_eq!(r.ticket.priority, Priority::Urgent);
    assert!(r.ticket.log[0].note.contains("critical fault E23"));
}

#[test]
fn a_report_joins_the_active_ticket_of_its_component_and_raises_its_priority() {
    let f = Fixture::new();
    let ctx = report("wm-1", ProblemCategory::Down, &[]).context;
    let opened = f
        .svc
        .record_predictions(&[flag("wm-1", "drain_pump")], &ctx)
        .unwrap();
    let before = f.svc.get(opened[0].ticket_id).unwrap().unwrap();
    assert_ne!(before.priority, Priority::Urgent);
    f.now.fetch_add(60_000, Ordering::SeqCst);
    let r = f
        .svc
        .report(&report("wm-1", ProblemCategory::Down, &[]))
        .unwrap();
    assert_eq!(r.result, ReportResultKind::Joined);
    assert_eq!(r.ticket.id, before.id);
    assert_eq!(r.ticket.component, "drain_pump");
    assert_eq!(r.prejudgement.component.as_deref(), Some("drain_pump"));
    assert_eq!(
        r.ticket.source,
        TicketSource::Proactive,
        "a join keeps the source"
    );
    assert_eq!(r.ticket.channel, ReportChannel::Device);
    assert_eq!(r.ticket.reports.len(), 1);
    assert!(r.ticket.reports[0].joined);
    assert_eq!(r.ticket.priority, Priority::Urgent);
    assert!(r.ticket.respond_by <= before.respond_by);
    assert_eq!(
        r.ticket.respond_by.millis(),
        (T0 + 60_000 + f.svc.config().response_ms(Priority::Urgent))
            .min(before.respond_by.millis())
    );
    let actions: Vec<&str> = r.ticket.log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"customer_report"), "{actions:?}");
    assert!(actions.contains(&"priority_raised"), "{actions:?}");
    let updated = f
        .svc
        .events_after(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "ticket.updated")
        .count();
    assert!(updated >= 2);
    // A lower-priority report joins without lowering it; without a component and
    // nothing confident, it joins the ticket the judgement ranks highest.
    let r = f
        .svc
        .report(&report("wm-1", ProblemCategory::Question, &[]))
        .unwrap();
    assert_eq!(r.result, ReportResultKind::Joined);
    assert_eq!(r.ticket.id, before.id);
    assert_eq!(r.ticket.priority, Priority::Urgent);
    assert_eq!(r.ticket.reports.len(), 2);
    assert_eq!(f.svc.list(&TicketQuery::default()).unwrap().len(), 1);
    // A report naming another component opens another ticket.
    let mut other = report("wm-1", ProblemCategory::Noise, &[]);
    other.component = Some("motor_bearing".into());
    let r = f.svc.report(&other).unwrap();
    assert_eq!(r.result, ReportResultKind::Opened);
    assert_eq!(f.svc.count_active().unwrap(), 2);
}

#[test]
fn concurrent_reports_of_one_problem_make_one_ticket() {
    let f = Fixture::new();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            // Separate services: separate connections, like two processes.
            let svc =
                TicketService::open_with_clock(&f.path, TicketConfig::default(), clock(&f.now))
                    .unwrap();
            std::thread::spawn(move || {
                let mut r = report("wm-7", ProblemCategory::Leak, &[]);
                r.component = Some("drain_pump".into());
                for _ in 0..5 {
                    svc.report(&r).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let tickets = f.svc.list(&TicketQuery::default()).unwrap();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!(tickets[0].reports.len(), 30);
    assert_eq!(tickets[0].reports.iter().filter(|r| !r.joined).count(), 1);
}

#[test]
fn bad_reports_are_refused() {
    let f = Fixture::new();
    let mut r = report("wm-1", ProblemCategory::Down, &[]);
    r.words = "a\u{7}b".into();
    assert!(matches!(f.svc.report(&r), Err(Error::Invalid { .. })));
    r.words = "x".repeat(MAX_WORDS + 1);
    assert!(matches!(f.svc.report(&r), Err(Error::Invalid { .. })));
    r.words = "   ".into();
    assert!(matches!(f.svc.report(&r), Err(Error::Invalid { .. })));
    r.words = "line one\r\nline two\ttab".into();
    r.component = Some("flux_capacitor".into());
    let err = f.svc.report(&r).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field: Some(f), .. } if f == "component"),
        "{err:?}"
    );
    r.component = None;
    r.channel = ReportChannel::Device;
    assert!(matches!(f.svc.report(&r), Err(Error::Invalid { .. })));
    r.channel = ReportChannel::Web;
    assert!(f.svc.report(&r).is_ok());
    assert_eq!(f.svc.list(&TicketQuery::default()).unwrap().len(), 1);
}

#[test]
fn the_directory_finds_devices_by_serial_and_customer() {
    let f = Fixture::new();
    let entry = |id: &str, serial: &str| store::tickets::DirectoryEntry {
        device_id: id.into(),
        serial: Some(serial.into()),
        customer_ref: Some("C-1".into()),
        customer_name: Some("Li Wei".into()),
        address: None,
        lat: Some(31.2),
        lon: Some(121.5),
        region: Some("east".into()),
        updated_at: Timestamp(0),
    };
    let stored = f.svc.put_directory(entry("wm-1", "SN-1")).unwrap();
    assert_eq!(
        stored.updated_at,
        Timestamp(T0),
        "stamped by the service clock"
    );
    f.svc.put_directory(entry("dw-1", "SN-2")).unwrap();
    assert!(matches!(
        f.svc.put_directory(entry("wm-2", "SN-1")),
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        f.svc
            .directory_by_serial("SN-2")
            .unwrap()
            .unwrap()
            .device_id,
        "dw-1"
    );
    assert_eq!(f.svc.directory_by_customer("C-1").unwrap().len(), 2);
    assert!(f.svc.directory_entry("wm-9").unwrap().is_none());
}
