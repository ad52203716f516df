//! The service world: deterministic from the seed, first-time-fix odds by level,
//! satisfaction monotonic in waiting time.

use std::collections::BTreeSet;

use domain::{DeviceId, ProfileSet, Timestamp};

use super::people::{customers, engineers};
use super::reports::customer_reports;
use super::work::{fcfs_pick, Experience};
use super::*;
use crate::{Fleet, FleetConfig, GroundTruthEvent, GroundTruthKind};

fn fleet() -> Vec<crate::DeviceInfo> {
    let config = FleetConfig {
        devices: 40,
        seed: 3,
        poor_installation_share: 0.3,
        ..FleetConfig::default()
    };
    Fleet::new(config, &ProfileSet::builtin())
        .unwrap()
        .devices()
}

fn skills() -> BTreeSet<String> {
    ["electrical", "plumbing", "mechanical", "refrigeration"]
        .into_iter()
        .map(String::from)
        .collect()
}

fn regions(devices: &[crate::DeviceInfo]) -> Vec<String> {
    let set: BTreeSet<String> = devices.iter().map(|d| d.region.clone()).collect();
    set.into_iter().collect()
}

#[test]
fn the_world_is_deterministic_from_its_seed() {
    let devices = fleet();
    let config = ServiceConfig::default();
    let a = engineers(&config, &regions(&devices), &skills());
    let b = engineers(&config, &regions(&devices), &skills());
    assert_eq!(a, b);
    assert_eq!(customers(&config, &devices), customers(&config, &devices));
    let other = ServiceConfig {
        seed: 8,
        ..config.clone()
    };
    assert_ne!(customers(&config, &devices), customers(&other, &devices));
    assert_eq!(
        Visit::draw(&config, "t1", 1, 3, 12.0, true),
        Visit::draw(&config, "t1", 1, 3, 12.0, true)
    );
}

#[test]
fn engineers_cover_every_region_with_a_lead_and_skills() {
    let devices = fleet();
    let regions = regions(&devices);
    let config = ServiceConfig {
        engineers: 2,
        ..ServiceConfig::default()
    };
    let all = engineers(&config, &regions, &skills());
    assert_eq!(all.len(), regions.len().max(2));
    for r in &regions {
        let mine: Vec<_> = all.iter().filter(|e| &e.region == r).collect();
        assert!(!mine.is_empty(), "{r} has no engineer");
        assert!(mine[0].supervisor.is_none());
    }
    for e in &all {
        assert!(!e.skills.is_empty());
        assert!(e.skills.values().all(|l| (1..=5).contains(l)));
        assert!(e.daily_capacity >= 4 && e.daily_capacity <= 7);
    }
}

#[test]
fn customers_have_unique_serials_and_references() {
    let devices = fleet();
    let c = customers(&ServiceConfig::default(), &devices);
    let serials: BTreeSet<_> = c.iter().map(|c| c.serial.clone()).collect();
    let refs: BTreeSet<_> = c.iter().map(|c| c.customer_ref.clone()).collect();
    assert_eq!(serials.len(), c.len());
    assert_eq!(refs.len(), c.len());
    for (c, d) in c.iter().zip(&devices) {
        let (lat, lon) = people::region_centre(&d.region);
        assert!(distance_km((lat, lon), (c.lat, c.lon)) <= 41.0);
    }
}

#[test]
fn first_time_fix_rises_with_skill_level() {
    let config = ServiceConfig::default();
    let rate = |level: u8| {
        (0..2000)
            .filter(|i| Visit::draw(&config, &format!("t{i}"), 1, level, 10.0, true).fixed)
            .count() as f64
            / 2000.0
    };
    let (low, high) = (rate(1), rate(5));
    assert!((low - 0.55).abs() < 0.05, "level 1: {low}");
    assert!((high - 0.92).abs() < 0.05, "level 5: {high}");
    // A second visit always fixes; a false alarm needs no repair.
    assert!(Visit::draw(&config, "t", 2, 1, 10.0, true).fixed);
    let check = Visit::draw(&config, "t", 1, 1, 10.0, false);
    assert!(check.fixed && check.repair_ms == 0);
    // Travel follows the distance.
    let v = Visit::draw(&config, "t", 1, 3, 40.0, true);
    assert_eq!(v.travel_ms, 3_600_000);
}

#[test]
fn satisfaction_never_rises_with_waiting_time() {
    for noise in [-0.7, -0.3, 0.0, 0.4, 0.7] {
        for (prevented, held, visits) in [(false, true, 1), (true, true, 1), (false, false, 2)] {
            let mut last = 5;
            for h in 0..200 {
                let e = Experience {
                    wait_hours: f64::from(h),
                    prevented,
                    held,
                    visits,
                };
                let s = Satisfaction::score(&e, noise);
                assert!(s <= last, "score rose at {h} h");
                assert!((1..=5).contains(&s));
                last = s;
            }
        }
    }
    let quick = Experience {
        wait_hours: 2.0,
        prevented: false,
        held: true,
        visits: 1,
    };
    let broke_again = Experience {
        held: false,
        ..quick
    };
    assert!(Satisfaction::score(&quick, 0.0) > Satisfaction::score(&broke_again, 0.0));
}

#[test]
fn fcfs_takes_the_regions_engineer_free_first() {
    let config = ServiceConfig {
        engineers: 4,
        ..ServiceConfig::default()
    };
    let regions = vec!["north".to_owned(), "south".to_owned()];
    let all = engineers(&config, &regions, &skills());
    // north: 0 and 2; south: 1 and 3.
    let free = [Timestamp(50), Timestamp(0), Timestamp(10), Timestamp(0)];
    assert_eq!(fcfs_pick(&all, &free, "north"), Some(2));
    assert_eq!(fcfs_pick(&all, &free, "south"), Some(1));
    assert_eq!(fcfs_pick(&all, &free, "west"), Some(1));
}

#[test]
fn reports_follow_failures_nuisance_codes_and_installations() {
    let devices = fleet();
    let start = FleetConfig::DEFAULT_START;
    let failure = |id: &DeviceId, h: i64| GroundTruthEvent {
        device_id: id.clone(),
        ts: Timestamp(start.millis() + h * 3_600_000),
        event: GroundTruthKind::Failure,
        component: "drain_pump".into(),
        mode: "sudden".into(),
    };
    let events: Vec<_> = devices
        .iter()
        .take(20)
        .enumerate()
        .map(|(i, d)| failure(&d.device_id, i as i64))
        .collect();
    let config = ServiceConfig {
        nuisance_report_share: 1.0,
        installation_report_share: 1.0,
        ..ServiceConfig::default()
    };
    let nuisance = vec![reports::NuisanceCode {
        device_id: devices[0].device_id.clone(),
        ts: start,
        code: "E41".into(),
    }];
    let span = (start, Timestamp(start.millis() + 7 * Timestamp::DAY_MS));
    let out = customer_reports(&config, &devices, &events, &nuisance, span);
    assert_eq!(
        out,
        customer_reports(&config, &devices, &events, &nuisance, span)
    );
    let failures = out
        .iter()
        .filter(|r| matches!(r.truth, ReportTruth::Failure { .. }))
        .count();
    assert!((14..=20).contains(&failures), "{failures} of 20 reported");
    for r in &out {
        if let ReportTruth::Failure { failed_at, .. } = r.truth {
            assert!(r.at > failed_at);
        }
    }
    assert!(out.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(out
        .iter()
        .any(|r| r.category == "error_code" && r.words.contains("E41")));
    let poor = devices.iter().filter(|d| d.installation != "ok").count();
    assert_eq!(
        out.iter().filter(|r| r.category == "installation").count(),
        poor
    );
}

#[test]
fn working_hours_find_the_next_open_instant() {
    let hours = people::WorkingHours {
        start_hour: 8,
        end_hour: 20,
        days: vec![0, 1, 2, 3, 4, 5],
    };
    // 2026-01-01 is a Thursday.
    let thu = FleetConfig::DEFAULT_START.millis();
    let h = 3_600_000;
    assert_eq!(hours.next_open(Timestamp(thu)), Timestamp(thu + 8 * h));
    assert_eq!(
        hours.next_open(Timestamp(thu + 9 * h)),
        Timestamp(thu + 9 * h)
    );
    // Saturday 21:00 -> Monday 08:00.
    let sat = thu + 2 * 24 * h;
    assert_eq!(
        hours.next_open(Timestamp(sat + 21 * h)),
        Timestamp(sat + 2 * 24 * h + 8 * h)
    );
    assert_eq!(
        hours.day_end(Timestamp(thu + 9 * h)),
        Timestamp(thu + 20 * h)
    );
}
