//! The KPI definitions on a fixture small enough to count by hand. The expected
//! numbers are worked out in the comments next to each assertion.

use domain::{OutcomeKind, Priority, TicketSource, TicketStatus, Timestamp};
use store::tickets::{KpiCallback, KpiFact, KpiStep};

use super::*;

/// Monday 2026-11-02 00:00 UTC.
const T0: i64 = 1_793_577_600_000;
const H: i64 = HOUR_MS;
const D: i64 = Timestamp::DAY_MS;

fn ts(ms: i64) -> Timestamp {
    Timestamp(ms)
}

fn fact(id: i64, device: &str, component: &str, source: TicketSource, channel: &str) -> KpiFact {
    KpiFact {
        id,
        device_id: device.into(),
        device_type: if device < "wm-d" { "washer" } else { "fridge" }.into(),
        component: component.into(),
        source,
        channel: channel.into(),
        priority: Some(Priority::Urgent),
        status: Some(TicketStatus::Open),
        opened_at: ts(T0),
        responded_at: None,
        ended_at: None,
        region: None,
        engineer: None,
        visits: 0,
        reopened: Vec::new(),
        outcome_kind: None,
        outcome_component: None,
        failed_at: None,
        satisfaction: None,
        callback: None,
        steps: Vec::new(),
    }
}

/// Ends `f` `resolved` (or `status`) `after` hours with `outcome`.
fn end(f: &mut KpiFact, status: TicketStatus, after_h: f64, outcome: Option<OutcomeKind>) {
    f.status = Some(status);
    f.ended_at = Some(ts(f.opened_at.millis() + (after_h * H as f64) as i64));
    f.outcome_kind = outcome;
}

fn respond(f: &mut KpiFact, after_h: f64) {
    f.responded_at = Some(ts(f.opened_at.millis() + (after_h * H as f64) as i64));
    if f.status == Some(TicketStatus::Open) {
        f.status = Some(TicketStatus::Acknowledged);
    }
}

fn step(name: &str, due: i64, done_at: Option<i64>, overdue_at: Option<i64>) -> KpiStep {
    KpiStep {
        step: name.into(),
        due: ts(due),
        done_at: done_at.map(ts),
        overdue_at: overdue_at.map(ts),
    }
}

/// The period's tickets (1-6 and 8, opened in the week from T0) and the look-ups
/// (0 and 9 before it, 7 after it):
///
/// | id | device | component | source | channel | opened | what happened |
/// |---|---|---|---|---|---|---|
/// | 0 | wm-b | heater | proactive | device | T0-5d | (look-up) the warning of 2 |
/// | 1 | wm-a | drain_pump | proactive | device | T0 | responded 1h, resolved 10h, confirmed, 1 visit, score 5, steps on time |
/// | 2 | wm-b | heater | reactive | phone | T0+1d | responded 3h, resolved 30h, confirmed (failed T0+1d-2h), 2 visits, score 2, call-back late, both steps late |
/// | 3 | wm-c | bearing | proactive | device | T0+1d+1h | responded 2h, dismissed 4h |
/// | 4 | wm-d | drain_pump | proactive | device | T0+2d | responded 0.5h, resolved 6h no fault found, score 2, call-back pending |
/// | 5 | wm-b | heater | reactive | app | T0+3d | still open |
/// | 6 | wm-e | drain_pump | reactive | web | T0+4d | responded 1h, resolved 5h, confirmed (failed T0+4d-1h), 1 visit, score 1, call-back on time |
/// | 7 | wm-e | drain_pump | reactive | phone | T0+9d | (look-up) the fault of 6 came back |
/// | 8 | wm-f | drain_pump | reactive | phone | T0+5d | responded 2h, reopened, closed (ended 8h), confirmed, 1 visit, score 3 |
/// | 9 | wm-f | drain_pump | proactive | device | T0-10d | (look-up) the warning of 8 |
fn fixture() -> (Vec<KpiFact>, Vec<KpiFact>) {
    use TicketSource::{Proactive, Reactive};
    let confirmed = Some(OutcomeKind::ConfirmedFailure);

    let mut t0 = fact(0, "wm-b", "heater", Proactive, "device");
    t0.opened_at = ts(T0 - 5 * D);
    end(&mut t0, TicketStatus::Dismissed, 1.0, None);

    let mut t1 = fact(1, "wm-a", "drain_pump", Proactive, "device");
    t1.region = Some("north".into());
    t1.engineer = Some("li.wei".into());
    respond(&mut t1, 1.0);
    end(&mut t1, TicketStatus::Resolved, 10.0, confirmed);
    t1.visits = 1;
    t1.satisfaction = Some(5);
    t1.steps = vec![
        step("respond", T0 + 2 * H, Some(T0 + H), None),
        step("act", T0 + 24 * H, Some(T0 + 5 * H), None),
    ];

    let mut t2 = fact(2, "wm-b", "heater", Reactive, "phone");
    t2.opened_at = ts(T0 + D);
    t2.priority = Some(Priority::Important);
    t2.region = Some("south".into());
    t2.engineer = Some("wang.fang".into());
    respond(&mut t2, 3.0);
    end(&mut t2, TicketStatus::Closed, 30.0, confirmed);
    t2.failed_at = Some(ts(T0 + D - 2 * H));
    t2.visits = 2;
    t2.satisfaction = Some(2);
    t2.callback = Some(KpiCallback {
        due: ts(T0 + 3 * D),
        done_at: Some(ts(T0 + 3 * D + H)),
        overdue_at: None,
    });
    t2.steps = vec![
        step("respond", T0 + D + 2 * H, Some(T0 + D + 3 * H), None),
        step("act", T0 + 2 * D, None, Some(T0 + 2 * D + H)),
    ];

    let mut t3 = fact(3, "wm-c", "bearing", Proactive, "device");
    t3.opened_at = ts(T0 + D + H);
    t3.priority = Some(Priority::Normal);
    t3.region = Some("north".into());
    respond(&mut t3, 2.0);
    end(&mut t3, TicketStatus::Dismissed, 4.0, None);

    let mut t4 = fact(4, "wm-d", "drain_pump", Proactive, "device");
    t4.opened_at = ts(T0 + 2 * D);
    t4.region = Some("north".into());
    t4.engineer = Some("li.wei".into());
    respond(&mut t4, 0.5);
    end(
        &mut t4,
        TicketStatus::Resolved,
        6.0,
        Some(OutcomeKind::NoFaultFound),
    );
    t4.satisfaction = Some(2);
    t4.callback = Some(KpiCallback {
        due: ts(T0 + 3 * D),
        done_at: None,
        overdue_at: None,
    });

    let mut t5 = fact(5, "wm-b", "heater", Reactive, "app");
    t5.opened_at = ts(T0 + 3 * D);
    t5.priority = Some(Priority::Important);
    t5.region = Some("south".into());
    t5.engineer = Some("wang.fang".into());

    let mut t6 = fact(6, "wm-e", "drain_pump", Reactive, "web");
    t6.opened_at = ts(T0 + 4 * D);
    t6.engineer = Some("li.wei".into());
    respond(&mut t6, 1.0);
    end(&mut t6, TicketStatus::Resolved, 5.0, confirmed);
    t6.failed_at = Some(ts(T0 + 4 * D - H));
    t6.visits = 1;
    t6.satisfaction = Some(1);
    t6.callback = Some(KpiCallback {
        due: ts(T0 + 4 * D + 7 * H),
        done_at: Some(ts(T0 + 4 * D + 6 * H)),
        overdue_at: None,
    });

    let mut t7 = fact(7, "wm-e", "drain_pump", Reactive, "phone");
    t7.opened_at = ts(T0 + 9 * D);

    let mut t8 = fact(8, "wm-f", "drain_pump", Reactive, "phone");
    t8.opened_at = ts(T0 + 5 * D);
    t8.region = Some("south".into());
    respond(&mut t8, 2.0);
    end(&mut t8, TicketStatus::Closed, 8.0, confirmed);
    t8.reopened = vec![ts(T0 + 5 * D + 4 * H)];
    t8.visits = 1;
    t8.satisfaction = Some(3);

    let mut t9 = fact(9, "wm-f", "drain_pump", Proactive, "device");
    t9.opened_at = ts(T0 - 10 * D);

    let period = vec![t1, t2, t3, t4, t5, t6, t8];
    let mut lookup = period.clone();
    lookup.extend([t0, t7, t9]);
    (period, lookup)
}

fn week(group_by: Option<GroupBy>, bucket: Bucket) -> KpiQuery {
    KpiQuery {
        from: ts(T0),
        to: ts(T0 + 7 * D),
        group_by,
        bucket,
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn every_definition_on_the_hand_counted_fixture() {
    let (period, lookup) = fixture();
    let r = report(
        &week(None, Bucket::Day),
        &period,
        &lookup,
        &KpiRules::default(),
    );
    let k = &r.overall;

    // Counts: 1-6 and 8 = 7 tickets; only 5 is active. Proactive 1, 3, 4; reactive
    // 2, 5, 6, 8. Channels: device 1, 3, 4; phone 2, 8; app 5; web 6.
    assert_eq!((k.counts.opened, k.counts.active), (7, 1));
    assert_eq!(k.counts.by_source["proactive"], 3);
    assert_eq!(k.counts.by_source["reactive"], 4);
    assert_eq!(
        k.counts
            .by_channel
            .iter()
            .map(|(c, n)| (c.as_str(), *n))
            .collect::<Vec<_>>(),
        [("app", 1), ("device", 3), ("phone", 2), ("web", 1)]
    );

    // Response: 1h, 3h, 2h, 0.5h, 1h, 2h (5 has not been answered): sorted 0.5 1 1 2 2 3;
    // mean 9.5/6; p50 = 3rd of 6 = 1; p90 = 6th (ceil 5.4) = 3.
    assert_eq!(k.response.count, 6);
    assert!(close(k.response.mean_hours, 9.5 / 6.0));
    assert!(close(k.response.p50_hours, 1.0));
    assert!(close(k.response.p90_hours, 3.0));

    // Resolution (resolved or closed; 3 was dismissed): 10, 30, 6, 5, 8 -> sorted
    // 5 6 8 10 30; mean 59/5 = 11.8; p50 = 3rd = 8; p90 = 5th (ceil 4.5) = 30.
    assert_eq!(k.resolution.count, 5);
    assert!(close(k.resolution.mean_hours, 11.8));
    assert!(close(k.resolution.p50_hours, 8.0));
    assert!(close(k.resolution.p90_hours, 30.0));

    // Repairs: 1, 2, 6, 8 (4 found no fault). First time: 1 only (2 took two visits,
    // 6 came back as ticket 7 five days after it ended, 8 was reopened): 1/4.
    assert_eq!(k.first_time_fix.repairs, 4);
    assert_eq!(k.first_time_fix.fixed_first_time, 1);
    assert!(close(k.first_time_fix.rate, 0.25));

    // Satisfaction: 5, 2, 2, 1, 3 -> mean 13/5 = 2.6; dissatisfied (<= 2): 2, 4, 6 = 3/5.
    // Call-backs: 2 done after its due (overdue), 4 pending, 6 on time: on time 1/2.
    let s = &k.satisfaction;
    assert_eq!((s.answers, s.dissatisfied), (5, 3));
    assert!(close(s.mean_score, 2.6));
    assert!(close(s.dissatisfied_share, 0.6));
    let cb = &s.callbacks;
    assert_eq!(
        (cb.opened, cb.on_time, cb.overdue, cb.pending),
        (3, 1, 1, 1)
    );
    assert!(close(cb.on_time_share, 0.5));

    // Repeat complaints: customer tickets 2, 5, 6, 8; 5 repeats 2 (same device wm-b, two
    // days before). 0 and 9 came from the device, so 2 and 8 are no repeats: 1/4.
    let rc = &k.repeat_complaints;
    assert_eq!((rc.customer_reports, rc.repeats), (4, 1));
    assert!(close(rc.rate, 0.25));

    // Failures: 1 (at its end, T0+10h), 2 (T0+1d-2h), 6 (T0+4d-1h), 8 (at its end,
    // T0+5d+8h). Warned: 1 by itself (10h), 2 by 0 (6d-2h = 142h), 8 by 9
    // (15d+8h = 368h); 6 only by a reactive ticket after it: 3/4. Lead: 10 142 368 ->
    // mean 520/3, p50 142, p90 368.
    let w = &k.warned_in_advance;
    assert_eq!((w.failures, w.warned), (4, 3));
    assert!(close(w.share, 0.75));
    assert!(close(w.lead_time.mean_hours, 520.0 / 3.0));
    assert!(close(w.lead_time.p50_hours, 142.0));
    assert!(close(w.lead_time.p90_hours, 368.0));

    // False alarms: ended proactive 1, 3, 4; 3 dismissed, 4 no fault found: 2/3.
    let fa = &k.false_alarms;
    assert_eq!((fa.ended_proactive, fa.false_alarms), (3, 2));
    assert!(close(fa.share, 2.0 / 3.0));

    // Steps: 1's two on time; 2's respond done late and act found overdue: 2/4.
    assert_eq!((k.steps.with_clock, k.steps.overdue), (4, 2));
    assert!(close(k.steps.share, 0.5));
    let by: Vec<_> = k
        .steps_by_name
        .iter()
        .map(|s| (s.step.as_str(), s.with_clock, s.overdue))
        .collect();
    assert_eq!(by, [("act", 2, 1), ("respond", 2, 1)]);
    assert_eq!(r.dissatisfied_at_most, 2);
}

#[test]
fn the_dissatisfied_score_and_the_reopen_window_are_parameters() {
    let (period, lookup) = fixture();
    let rules = KpiRules {
        dissatisfied_at_most: 1,
        // Ticket 7 opened 5 days - 5 h after 6 ended: outside a 4-day window.
        reopen_window_ms: 4 * D,
    };
    let k = report(&week(None, Bucket::Day), &period, &lookup, &rules).overall;
    // Only 6's score of 1.
    assert_eq!(k.satisfaction.dissatisfied, 1);
    // 1 and now 6 were fixed the first time.
    assert_eq!(k.first_time_fix.fixed_first_time, 2);
}

#[test]
fn groups_add_up_to_the_whole_and_judge_each_ticket_the_same() {
    let (period, lookup) = fixture();
    let rules = KpiRules::default();
    let r = report(
        &week(Some(GroupBy::Region), Bucket::Day),
        &period,
        &lookup,
        &rules,
    );
    let keys: Vec<_> = r.groups.iter().map(|g| g.key.as_str()).collect();
    // north 1, 3, 4; south 2, 5, 8; unknown 6.
    assert_eq!(keys, ["north", "south", "unknown"]);
    let g = |k: &str| &r.groups.iter().find(|g| g.key == k).unwrap().kpis;
    assert_eq!(g("north").counts.opened, 3);
    assert_eq!(g("south").counts.opened, 3);
    assert_eq!(g("unknown").counts.opened, 1);
    // North's one repair (1) held; south's two (2, 8) did not.
    assert_eq!(g("north").first_time_fix.rate, Some(1.0));
    assert_eq!(g("south").first_time_fix.rate, Some(0.0));
    // 5's repeat is south's, judged against 2 in the same group.
    assert_eq!(g("south").repeat_complaints.repeats, 1);
    let sum: u64 = r.groups.iter().map(|g| g.kpis.counts.opened).sum();
    assert_eq!(sum, r.overall.counts.opened);

    let by = |g: GroupBy| {
        report(&week(Some(g), Bucket::Day), &period, &lookup, &rules)
            .groups
            .into_iter()
            .map(|g| (g.key, g.kpis.counts.opened))
            .collect::<Vec<_>>()
    };
    let own = |v: &[(&str, u64)]| {
        v.iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by(GroupBy::Engineer),
        own(&[("li.wei", 3), ("unassigned", 2), ("wang.fang", 2)])
    );
    assert_eq!(
        by(GroupBy::Priority),
        own(&[("important", 2), ("normal", 1), ("urgent", 4)])
    );
    assert_eq!(
        by(GroupBy::Source),
        own(&[("proactive", 3), ("reactive", 4)])
    );
    // wm-a, wm-b, wm-c are washers; wm-d, wm-e, wm-f fridges.
    assert_eq!(
        by(GroupBy::DeviceType),
        own(&[("fridge", 3), ("washer", 4)])
    );
}

#[test]
fn the_series_has_one_bucket_per_day_or_week_from_the_start_of_the_first() {
    let (period, lookup) = fixture();
    let rules = KpiRules::default();
    let days = report(&week(None, Bucket::Day), &period, &lookup, &rules).series;
    // Opened per day: T0: 1; +1d: 2, 3; +2d: 4; +3d: 5; +4d: 6; +5d: 8; +6d: none.
    let counts: Vec<u64> = days.iter().map(|p| p.kpis.counts.opened).collect();
    assert_eq!(counts, [1, 2, 1, 1, 1, 1, 0]);
    assert_eq!(days[0].start, ts(T0));
    assert_eq!(days[6].start, ts(T0 + 6 * D));
    // An empty day has no figures, not zeros.
    assert_eq!(days[6].kpis.response.mean_hours, None);
    assert_eq!(days[1].kpis.response.count, 2);

    // From a Wednesday noon: the week bucket starts on the Monday before.
    let q = KpiQuery {
        from: ts(T0 + 2 * D + 12 * H),
        to: ts(T0 + 9 * D),
        group_by: None,
        bucket: Bucket::Week,
    };
    let weeks = report(&q, &period, &lookup, &rules).series;
    assert_eq!(
        weeks.iter().map(|p| p.start).collect::<Vec<_>>(),
        [ts(T0), ts(T0 + 7 * D)]
    );
}

#[test]
fn queries_refuse_a_backwards_or_overlong_period_and_default_to_30_days() {
    let now = ts(T0);
    assert!(matches!(
        KpiQuery::new(Some(ts(T0 + 1)), Some(ts(T0)), None, Bucket::Day, now),
        Err(Error::BadRequest(_))
    ));
    let long = KpiQuery::new(Some(ts(T0 - 367 * D)), Some(ts(T0)), None, Bucket::Day, now);
    assert!(matches!(long, Err(Error::BadRequest(m)) if m.contains("366 days")));
    for (from, to) in [(Some(ts(i64::MIN)), None), (None, Some(ts(i64::MAX)))] {
        let e = KpiQuery::new(from, to, None, Bucket::Day, now);
        assert!(matches!(e, Err(Error::BadRequest(m)) if m.contains("9999")));
    }
    let q = KpiQuery::new(None, None, None, Bucket::Week, now).unwrap();
    assert_eq!((q.from, q.to), (ts(T0 - 30 * D), now));
    assert!(GroupBy::parse("team").is_err());
    assert_eq!(GroupBy::parse("device_type").unwrap(), GroupBy::DeviceType);
    assert!(Bucket::parse("month").is_err());
}

#[test]
fn no_tickets_gives_counts_of_zero_and_no_figures() {
    let r = report(
        &week(Some(GroupBy::Region), Bucket::Week),
        &[],
        &[],
        &KpiRules::default(),
    );
    assert_eq!(r.overall.counts.opened, 0);
    assert_eq!(r.overall.first_time_fix.rate, None);
    assert_eq!(r.overall.satisfaction.mean_score, None);
    assert!(r.groups.is_empty());
    assert_eq!(r.series.len(), 1);
}
