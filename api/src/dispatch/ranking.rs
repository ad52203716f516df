//! The ranking: for one ticket, every engineer with a score, whether they fit and why
//! (docs/dispatch.md, "Ranking"). Pure: everything it needs comes in as arguments,
//! so tests give it fixed inputs.
//!
//! * **Skills**: the ticket's `assignment.skills` (the component's, from the profile)
//!   against the engineer's; every needed skill must be present to fit.
//! * **Distance**: haversine from the engineer's home to the device (device
//!   directory); when either location is missing, region equality instead.
//! * **Load**: visits booked today (tickets assigned with a window starting today in
//!   the engineer's time zone) against the daily capacity.
//! * **Availability**: the earliest time the engineer can be there: now plus the
//!   travel time, moved into the next working slot (working hours and days in their
//!   time zone), skipping a day whose capacity is full or whose remaining hours are
//!   shorter than a visit.
//!
//! `fits` = every skill present, the account enabled, and available no later than the
//! ticket's `needed_by` (on a day with capacity left).

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use domain::Timestamp;
use serde::Serialize;
use store::engineers::Engineer;

/// Score weights (they add up to 100).
pub const WEIGHT_SKILLS: f64 = 30.0;
/// Weight of closeness.
pub const WEIGHT_DISTANCE: f64 = 20.0;
/// Weight of free capacity today.
pub const WEIGHT_LOAD: f64 = 15.0;
/// Weight of arriving early within the ticket's time.
pub const WEIGHT_TIME: f64 = 35.0;
/// The distance at which closeness scores half: `1 / (1 + km / HALF_SCORE_KM)`.
pub const HALF_SCORE_KM: f64 = 25.0;

/// What the ranking needs besides the engineers.
#[derive(Clone, Debug, PartialEq)]
pub struct Need {
    /// Skills the repair needs.
    pub skills: Vec<String>,
    /// Where the device stands (lat, lon), when known.
    pub location: Option<(f64, f64)>,
    /// The device's region, when known.
    pub region: Option<String>,
    /// Now, by the service clock.
    pub now: Timestamp,
    /// When the engineer must be there at the latest.
    pub needed_by: Timestamp,
}

/// Travel and visit assumptions.
#[derive(Clone, Debug, PartialEq)]
pub struct RankSettings {
    /// Average travel speed, km/h.
    pub speed_kmh: f64,
    /// Travel time when the distance is unknown and the regions match.
    pub region_travel_ms: i64,
    /// Travel time when the distance is unknown and the engineer's region is unknown
    /// or not the device's (a device of unknown region counts as `region_travel_ms`).
    pub other_travel_ms: i64,
    /// Length of a visit: it must fit in the working day.
    pub visit_ms: i64,
    /// Days ahead searched for a free slot.
    pub horizon_days: u32,
}

/// One engineer as the ranking sees them.
#[derive(Clone, Debug)]
pub struct Situation<'a> {
    /// The engineer.
    pub engineer: &'a Engineer,
    /// Their active tickets.
    pub active: u32,
    /// Window starts of the visits booked for them (any order).
    pub bookings: Vec<Timestamp>,
}

/// Why an engineer ranks where they do.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reasons {
    /// The needed skills the engineer has.
    pub skills: Vec<String>,
    /// The needed skills the engineer lacks.
    pub missing_skills: Vec<String>,
    /// Their lowest level among the needed skills they have (0: none needed or none
    /// present).
    pub skill_level: u8,
    /// Kilometres from their home to the device, when both are known.
    pub distance_km: Option<f64>,
    /// Whether their region is the device's.
    pub same_region: bool,
    /// Visits booked today (their time zone).
    pub load: u32,
    /// Their daily capacity.
    pub capacity: u32,
    /// Their active tickets.
    pub active: u32,
    /// Whether they can be there by `needed_by`.
    pub in_window: bool,
}

/// One engineer in a ticket's ranking.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    /// Login.
    pub engineer: String,
    /// Display name.
    pub display_name: String,
    /// 0-100, higher is better (docs/dispatch.md).
    pub score: f64,
    /// Whether they may be dispatched: skills, time and capacity all fit.
    pub fits: bool,
    /// The earliest time they can be there; `null` when no slot within the horizon.
    #[schema(value_type = Option<String>)]
    pub available_at: Option<Timestamp>,
    /// The reasons.
    pub reasons: Reasons,
    /// Why they do not fit (absent when they do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// Great-circle distance in km between two (lat, lon) points in degrees.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// The engineer's time zone (UTC when the account's is not a known name).
pub fn time_zone(e: &Engineer) -> Tz {
    e.time_zone.parse().unwrap_or(Tz::UTC)
}

fn local_date(tz: Tz, t: Timestamp) -> NaiveDate {
    tz.timestamp_millis_opt(t.millis())
        .single()
        .map_or_else(NaiveDate::default, |d| d.date_naive())
}

fn at_local(tz: Tz, date: NaiveDate, minutes: u32) -> Timestamp {
    let day = date.and_time(NaiveTime::MIN);
    let local = day + chrono::Duration::minutes(i64::from(minutes));
    let ms = tz.from_local_datetime(&local).earliest().map_or_else(
        || local.and_utc().timestamp_millis(),
        |d| d.timestamp_millis(),
    );
    Timestamp(ms)
}

/// Visits booked for `e` on the local date of `t`.
pub fn load_on(e: &Engineer, bookings: &[Timestamp], t: Timestamp) -> u32 {
    let tz = time_zone(e);
    let day = local_date(tz, t);
    bookings
        .iter()
        .filter(|b| local_date(tz, **b) == day)
        .count() as u32
}

/// The earliest time `e` can start a visit at or after `arrival`: within working
/// hours on a working day (their time zone), on a day with capacity left, not
/// overlapping a visit already booked (each booking holds `visit_ms` from its window
/// start), with a whole visit before the day's end; `None` within `horizon_days`.
pub fn next_slot(
    e: &Engineer,
    bookings: &[Timestamp],
    arrival: Timestamp,
    s: &RankSettings,
) -> Option<Timestamp> {
    let (start, end) = e.working_hours.minutes().ok()?;
    let days = e.working_hours.day_indexes().ok()?;
    let tz = time_zone(e);
    let first = local_date(tz, arrival);
    for offset in 0..=s.horizon_days {
        let date = first + chrono::Days::new(u64::from(offset));
        if !days.contains(&date.weekday().num_days_from_monday()) {
            continue;
        }
        let mut booked: Vec<i64> = bookings
            .iter()
            .filter(|b| local_date(tz, **b) == date)
            .map(|b| b.millis())
            .collect();
        if booked.len() as u32 >= e.daily_capacity {
            continue;
        }
        booked.sort_unstable();
        let day_start = at_local(tz, date, start);
        let day_end = at_local(tz, date, end);
        // The first gap of a whole visit between the visits already booked that day:
        // an engineer works one visit after another.
        let mut t = arrival.max(day_start).millis();
        for b in booked {
            let b_end = b.saturating_add(s.visit_ms);
            if t < b_end && b < t.saturating_add(s.visit_ms) {
                t = b_end;
            }
        }
        if t.saturating_add(s.visit_ms) <= day_end.millis() {
            return Some(Timestamp(t));
        }
    }
    None
}

/// Ranks `engineers` for `need`: best first (fitting ones first, then by score, then
/// the earlier available, then by login).
pub fn rank(need: &Need, engineers: &[Situation<'_>], s: &RankSettings) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = engineers.iter().map(|x| candidate(need, x, s)).collect();
    out.sort_by(|a, b| {
        b.fits
            .cmp(&a.fits)
            .then(b.score.total_cmp(&a.score))
            .then(
                a.available_at
                    .unwrap_or(Timestamp(i64::MAX))
                    .cmp(&b.available_at.unwrap_or(Timestamp(i64::MAX))),
            )
            .then(a.engineer.cmp(&b.engineer))
    });
    out
}

fn candidate(need: &Need, x: &Situation<'_>, s: &RankSettings) -> Candidate {
    let e = x.engineer;
    let needed: BTreeSet<&str> = need.skills.iter().map(String::as_str).collect();
    let have: Vec<String> = needed
        .iter()
        .filter(|k| e.skills.contains_key(**k))
        .map(|k| (*k).to_owned())
        .collect();
    let missing: Vec<String> = needed
        .iter()
        .filter(|k| !e.skills.contains_key(**k))
        .map(|k| (*k).to_owned())
        .collect();
    let levels: Vec<u8> = have
        .iter()
        .filter_map(|k| e.skills.get(k).copied())
        .collect();
    let skill_level = levels.iter().copied().min().unwrap_or(0);
    let skill_score = if needed.is_empty() {
        1.0
    } else {
        let mean = levels.iter().map(|l| f64::from(*l)).sum::<f64>() / needed.len() as f64;
        mean / f64::from(store::engineers::MAX_SKILL_LEVEL)
    };

    let same_region = matches!((&e.region, &need.region), (Some(a), Some(b)) if a == b);
    let distance_km = match (e.lat.zip(e.lon), need.location) {
        (Some(home), Some(device)) => Some(haversine_km(home, device)),
        _ => None,
    };
    let distance_score = match distance_km {
        Some(km) => 1.0 / (1.0 + km / HALF_SCORE_KM),
        None if same_region => 0.5,
        None => 0.0,
    };
    let travel_ms = match distance_km {
        Some(km) if s.speed_kmh > 0.0 => (km / s.speed_kmh * 3_600_000.0).round() as i64,
        // Without a distance: the region's travel time when the regions match or the
        // device's is unknown (nothing says it is far), the longer one otherwise.
        _ if same_region || need.region.is_none() => s.region_travel_ms,
        _ => s.other_travel_ms,
    };

    let load = load_on(e, &x.bookings, need.now);
    let load_score = if e.daily_capacity == 0 {
        0.0
    } else {
        (1.0 - f64::from(load) / f64::from(e.daily_capacity)).clamp(0.0, 1.0)
    };

    let arrival = Timestamp(need.now.millis().saturating_add(travel_ms));
    let available_at = if e.disabled {
        None
    } else {
        next_slot(e, &x.bookings, arrival, s)
    };
    let in_window = available_at.is_some_and(|t| t <= need.needed_by);
    // Earlier is better inside the window and outside it: when nobody fits, the
    // planner still wants the engineer who gets there first, not one who is as "out of
    // time" as any other (a cross-region engineer hours away scored like a local one).
    let time_score = available_at.map_or(0.0, |t| {
        let span = (need.needed_by.millis() - need.now.millis()).max(Timestamp::HOUR_MS) as f64;
        let delay = (t.millis() - need.now.millis()).max(0) as f64;
        span / (span + delay)
    });

    let why_not = if e.disabled {
        Some("the account is disabled".to_owned())
    } else if !missing.is_empty() {
        Some(format!("lacks the skills {}", missing.join(", ")))
    } else if e.daily_capacity == 0 {
        Some("daily capacity is 0".to_owned())
    } else if available_at.is_none() {
        Some(format!(
            "no free working slot within {} days (booked {load} of {} today)",
            s.horizon_days, e.daily_capacity
        ))
    } else if !in_window {
        Some(format!(
            "available at {} at the earliest, after the ticket's needed_by {}",
            available_at.map(|t| t.to_string()).unwrap_or_default(),
            need.needed_by
        ))
    } else {
        None
    };
    let score = WEIGHT_SKILLS * skill_score
        + WEIGHT_DISTANCE * distance_score
        + WEIGHT_LOAD * load_score
        + WEIGHT_TIME * time_score;
    Candidate {
        engineer: e.login.clone(),
        display_name: e.display_name.clone(),
        score: (score * 10.0).round() / 10.0,
        fits: why_not.is_none(),
        available_at,
        reasons: Reasons {
            skills: have,
            missing_skills: missing,
            skill_level,
            distance_km: distance_km.map(|d| (d * 10.0).round() / 10.0),
            same_region,
            load,
            capacity: e.daily_capacity,
            active: x.active,
            in_window,
        },
        why_not,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use store::engineers::WorkingHours;

    use super::*;

    const H: i64 = Timestamp::HOUR_MS;

    /// Monday 2026-11-23 09:00 UTC.
    fn monday_9() -> Timestamp {
        Timestamp::parse("2026-11-23T09:00:00Z").unwrap()
    }

    fn settings() -> RankSettings {
        RankSettings {
            speed_kmh: 40.0,
            region_travel_ms: H,
            other_travel_ms: 4 * H,
            visit_ms: 2 * H,
            horizon_days: 14,
        }
    }

    fn engineer(login: &str, skills: &[(&str, u8)], at: Option<(f64, f64)>) -> Engineer {
        Engineer {
            login: login.into(),
            display_name: login.into(),
            time_zone: "UTC".into(),
            disabled: false,
            skills: skills
                .iter()
                .map(|(k, l)| ((*k).to_owned(), *l))
                .collect::<BTreeMap<_, _>>(),
            region: Some("north".into()),
            lat: at.map(|a| a.0),
            lon: at.map(|a| a.1),
            working_hours: WorkingHours::default(),
            daily_capacity: 3,
            supervisor: None,
            updated_at: Timestamp(0),
        }
    }

    fn need(skills: &[&str], needed_in_h: i64) -> Need {
        Need {
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            location: Some((31.20, 121.50)),
            region: Some("north".into()),
            now: monday_9(),
            needed_by: Timestamp(monday_9().millis() + needed_in_h * H),
        }
    }

    fn situation(e: &Engineer) -> Situation<'_> {
        Situation {
            engineer: e,
            active: 0,
            bookings: Vec::new(),
        }
    }

    #[test]
    fn visits_already_booked_push_the_slot_and_a_free_engineer_wins_when_nobody_fits() {
        // Default hours 08:00-18:00, visits of 2 h; booked at 09:00 and 11:00 today.
        let e = engineer("busy", &[("electrical", 3)], Some((31.2, 121.5)));
        let at = |h: i64| Timestamp(monday_9().millis() + h * H);
        let booked = [at(0), at(2)];
        assert_eq!(next_slot(&e, &booked, at(0), &settings()), Some(at(4)));
        // A gap of a whole visit between bookings is used.
        assert_eq!(
            next_slot(&e, &[at(0), at(4)], at(0), &settings()),
            Some(at(2))
        );
        // Nobody can be there at once: the one who can start first ranks first.
        let busy = Situation {
            engineer: &e,
            active: 2,
            bookings: booked.to_vec(),
        };
        let free = engineer("free", &[("electrical", 3)], Some((31.4, 121.7)));
        let ranked = rank(
            &need(&["electrical"], 0),
            &[busy, situation(&free)],
            &settings(),
        );
        assert!(ranked.iter().all(|c| !c.fits));
        assert_eq!(ranked[0].engineer, "free", "{ranked:?}");
    }

    #[test]
    fn haversine_matches_known_distances() {
        // Shanghai to Beijing is about 1,068 km.
        let d = haversine_km((31.2304, 121.4737), (39.9042, 116.4074));
        assert!((d - 1068.0).abs() < 10.0, "{d}");
        assert!(haversine_km((31.2, 121.5), (31.2, 121.5)) < 1e-9);
    }

    #[test]
    fn skills_decide_fit_and_level_decides_score() {
        let expert = engineer(
            "expert",
            &[("electrical", 5), ("plumbing", 5)],
            Some((31.2, 121.5)),
        );
        let novice = engineer(
            "novice",
            &[("electrical", 1), ("plumbing", 1)],
            Some((31.2, 121.5)),
        );
        let half = engineer("half", &[("electrical", 5)], Some((31.2, 121.5)));
        let ranked = rank(
            &need(&["electrical", "plumbing"], 8),
            &[situation(&half), situation(&novice), situation(&expert)],
            &settings(),
        );
        let order: Vec<&str> = ranked.iter().map(|c| c.engineer.as_str()).collect();
        assert_eq!(order, ["expert", "novice", "half"]);
        assert!(ranked[0].fits && ranked[1].fits && !ranked[2].fits);
        assert_eq!(ranked[2].reasons.missing_skills, ["plumbing"]);
        assert!(ranked[2].why_not.as_deref().unwrap().contains("plumbing"));
        assert_eq!(ranked[1].reasons.skill_level, 1);
        assert!(ranked[0].score > ranked[1].score);
    }

    #[test]
    fn closer_ranks_higher_and_region_stands_in_for_a_missing_location() {
        let near = engineer("near", &[("electrical", 3)], Some((31.21, 121.51)));
        let far = engineer("far", &[("electrical", 3)], Some((31.60, 121.90)));
        let mut unknown = engineer("unknown", &[("electrical", 3)], None);
        let ranked = rank(
            &need(&["electrical"], 8),
            &[situation(&far), situation(&unknown), situation(&near)],
            &settings(),
        );
        assert_eq!(ranked[0].engineer, "near");
        let far_c = ranked.iter().find(|c| c.engineer == "far").unwrap();
        assert!(far_c.reasons.distance_km.unwrap() > 50.0);
        let unk = ranked.iter().find(|c| c.engineer == "unknown").unwrap();
        assert_eq!(unk.reasons.distance_km, None);
        assert!(unk.reasons.same_region);
        // Same region, unknown distance: the region's travel time (1 h).
        assert_eq!(unk.available_at, Some(Timestamp(monday_9().millis() + H)));
        // Another region and no distance: the longer travel time, so later.
        unknown.region = Some("south".into());
        let ranked = rank(
            &need(&["electrical"], 8),
            &[situation(&unknown)],
            &settings(),
        );
        assert_eq!(
            ranked[0].available_at,
            Some(Timestamp(monday_9().millis() + 4 * H))
        );
        assert!(!ranked[0].reasons.same_region);
        // Nothing known of the device's whereabouts: the region's travel time.
        let mut nowhere = need(&["electrical"], 8);
        nowhere.location = None;
        nowhere.region = None;
        let ranked = rank(&nowhere, &[situation(&unknown)], &settings());
        assert_eq!(
            ranked[0].available_at,
            Some(Timestamp(monday_9().millis() + H))
        );
    }

    #[test]
    fn load_lowers_the_score_and_a_full_day_moves_to_the_next() {
        let e = engineer("e", &[("electrical", 3)], Some((31.2, 121.5)));
        let free = situation(&e);
        let busy = Situation {
            bookings: vec![Timestamp(monday_9().millis() + 3 * H)],
            ..situation(&e)
        };
        let a = rank(&need(&["electrical"], 8), &[free], &settings());
        let b = rank(&need(&["electrical"], 8), &[busy], &settings());
        assert_eq!(b[0].reasons.load, 1);
        assert!(a[0].score > b[0].score);
        // Full today (3 of 3): the next working day's start, Tuesday 08:00 UTC.
        let full = Situation {
            bookings: (0..3)
                .map(|i| Timestamp(monday_9().millis() + i * H))
                .collect(),
            ..situation(&e)
        };
        let c = rank(
            &need(&["electrical"], 8),
            std::slice::from_ref(&full),
            &settings(),
        );
        assert_eq!(
            c[0].available_at,
            Some(Timestamp::parse("2026-11-24T08:00:00Z").unwrap())
        );
        assert!(!c[0].fits, "not before needed_by (8 h)");
        let d = rank(&need(&["electrical"], 48), &[full], &settings());
        assert!(d[0].fits, "tomorrow is soon enough for 48 h");
    }

    #[test]
    fn working_hours_days_and_time_zone_set_the_window() {
        // Friday 17:00 UTC: a 2 h visit no longer fits today; Saturday and Sunday are
        // off, so Monday 08:00.
        let mut e = engineer("e", &[("electrical", 3)], Some((31.2, 121.5)));
        let mut n = need(&["electrical"], 100);
        n.now = Timestamp::parse("2026-11-27T17:00:00Z").unwrap();
        n.needed_by = Timestamp(n.now.millis() + 100 * H);
        let r = rank(&n, &[situation(&e)], &settings());
        assert_eq!(
            r[0].available_at,
            Some(Timestamp::parse("2026-11-30T08:00:00Z").unwrap())
        );
        // In Shanghai (UTC+8) the same instant is Saturday 01:00: Monday 08:00 local.
        e.time_zone = "Asia/Shanghai".into();
        let r = rank(&n, &[situation(&e)], &settings());
        assert_eq!(
            r[0].available_at,
            Some(Timestamp::parse("2026-11-30T00:00:00Z").unwrap())
        );
        // Working Saturdays too.
        e.working_hours.days.push("sat".into());
        let r = rank(&n, &[situation(&e)], &settings());
        assert_eq!(
            r[0].available_at,
            Some(Timestamp::parse("2026-11-28T00:00:00Z").unwrap())
        );
    }

    #[test]
    fn nobody_fits_when_no_one_is_in_time_or_skilled() {
        let slow = engineer("slow", &[("electrical", 5)], Some((39.9, 116.4)));
        let unskilled = engineer("unskilled", &[("plumbing", 5)], Some((31.2, 121.5)));
        let mut disabled = engineer("disabled", &[("electrical", 5)], Some((31.2, 121.5)));
        disabled.disabled = true;
        let mut zero = engineer("zero", &[("electrical", 5)], Some((31.2, 121.5)));
        zero.daily_capacity = 0;
        let ranked = rank(
            &need(&["electrical"], 2),
            &[
                situation(&slow),
                situation(&unskilled),
                situation(&disabled),
                situation(&zero),
            ],
            &settings(),
        );
        assert!(ranked.iter().all(|c| !c.fits), "{ranked:#?}");
        assert!(ranked.iter().all(|c| c.why_not.is_some()));
        let slow_c = ranked.iter().find(|c| c.engineer == "slow").unwrap();
        assert!(!slow_c.reasons.in_window);
        assert!(slow_c.why_not.as_deref().unwrap().contains("needed_by"));
    }
}
