//! Visits (travel, diagnosis, repair, first-time fix, parts) and satisfaction.

use domain::Timestamp;
use rand::Rng;

use super::{distance_km, rng_for, Engineer, ServiceConfig};

const MINUTE_MS: f64 = 60_000.0;

/// How one visit goes, drawn before it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Visit {
    /// Travel from the engineer's home to the customer, ms.
    pub travel_ms: i64,
    /// Diagnosis on site, ms.
    pub diagnosis_ms: i64,
    /// Repair on site, ms (0 when there is nothing to repair).
    pub repair_ms: i64,
    /// Whether the visit fixes it (a failed visit needs a second one).
    pub fixed: bool,
    /// When not fixed because the part is out of stock: the wait for it, ms.
    pub part_wait_ms: Option<i64>,
}

impl Visit {
    /// The visit number `visit` (1, 2, ...) of `key` (a ticket) by an engineer of
    /// skill `level` (1-5) travelling `km`. `repair`: whether there is something to
    /// repair (a false alarm needs only the diagnosis, and is always "fixed").
    /// A second or later visit always fixes (the part is there, the cause known).
    pub fn draw(
        config: &ServiceConfig,
        key: &str,
        visit: u32,
        level: u8,
        km: f64,
        repair: bool,
    ) -> Visit {
        let mut rng = rng_for(config.seed, "visit", &format!("{key}/{visit}"));
        let uniform = |rng: &mut rand_chacha::ChaCha8Rng, (lo, hi): (f64, f64)| {
            rng.gen_range(lo.min(hi)..=hi.max(lo))
        };
        let travel_ms = (km.max(0.0) / config.travel_kmh.max(1.0) * 60.0 * MINUTE_MS) as i64;
        let diagnosis_ms = (uniform(&mut rng, config.diagnosis_min) * MINUTE_MS) as i64;
        let repair_ms = (uniform(&mut rng, config.repair_min) * MINUTE_MS) as i64;
        let odds = first_time_fix(config, level);
        let fixed_draw: f64 = rng.gen();
        let stock_draw: f64 = rng.gen();
        let wait_days = uniform(&mut rng, config.part_wait_days);
        if !repair {
            return Visit {
                travel_ms,
                diagnosis_ms,
                repair_ms: 0,
                fixed: true,
                part_wait_ms: None,
            };
        }
        let fixed = visit > 1 || fixed_draw < odds;
        let part_wait_ms = (!fixed && stock_draw < config.part_out_of_stock)
            .then_some((wait_days * 86_400_000.0) as i64);
        Visit {
            travel_ms,
            diagnosis_ms,
            repair_ms: if fixed { repair_ms } else { repair_ms / 3 },
            fixed,
            part_wait_ms,
        }
    }

    /// Time on site.
    pub fn on_site_ms(&self) -> i64 {
        self.diagnosis_ms + self.repair_ms
    }
}

/// The first-time-fix probability of skill `level` (1-5; clamped).
pub fn first_time_fix(config: &ServiceConfig, level: u8) -> f64 {
    config.first_time_fix[usize::from(level.clamp(1, 5)) - 1].clamp(0.0, 1.0)
}

/// A customer's answer to the satisfaction check.
#[derive(Clone, Debug, PartialEq)]
pub struct Satisfaction {
    /// 1 (very dissatisfied) to 5.
    pub score: u8,
    /// A short comment.
    pub comment: String,
}

/// What the score depends on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Experience {
    /// Hours from the customer's first contact (or the failure, if earlier) to the
    /// fix; 0 for a proactive fix before any failure.
    pub wait_hours: f64,
    /// The fix came before the failure (a proactive repair that prevented it), or
    /// nothing was broken and the customer was reassured quickly.
    pub prevented: bool,
    /// The same component did not fail again within `held_days`.
    pub held: bool,
    /// Visits it took.
    pub visits: u32,
}

impl Satisfaction {
    /// The expected score before noise: 5, minus 1 per 24 hours of waiting (at most
    /// 3), minus 0.5 per extra visit, minus 2 when the fix did not hold, plus 0.5 when
    /// the failure was prevented.
    pub fn expected(e: &Experience) -> f64 {
        5.0 - (e.wait_hours.max(0.0) / 24.0).min(3.0)
            - 0.5 * f64::from(e.visits.saturating_sub(1))
            - if e.held { 0.0 } else { 2.0 }
            + if e.prevented { 0.5 } else { 0.0 }
    }

    /// The score for `e` with `noise` (-0.75..0.75) added, rounded into 1-5. For a
    /// fixed noise it never rises with the waiting time.
    pub fn score(e: &Experience, noise: f64) -> u8 {
        (Self::expected(e) + noise).round().clamp(1.0, 5.0) as u8
    }

    /// The answer of the customer of `key` (a ticket).
    pub fn draw(config: &ServiceConfig, key: &str, e: &Experience) -> Satisfaction {
        let mut rng = rng_for(config.seed, "satisfaction", key);
        let score = Self::score(e, rng.gen_range(-0.75..0.75));
        let comment = match score {
            5 => "Quick and friendly, thank you.",
            4 => "Fixed, fine.",
            3 => "It took a while.",
            2 => "Far too slow, I waited for days.",
            _ if !e.held => "It broke again right after the repair.",
            _ => "Unacceptable wait.",
        };
        Satisfaction {
            score,
            comment: comment.to_owned(),
        }
    }

    /// Whether the dissatisfied customer of `key` answers the call-back.
    pub fn answers_callback(config: &ServiceConfig, key: &str) -> bool {
        rng_for(config.seed, "callback", key).gen_bool(config.callback_answer.clamp(0.0, 1.0))
    }
}

/// First-come-first-served by region: the engineer of `region` who is free first
/// (`free_at[i]` for `engineers[i]`; ties to the lower index), or of any region when
/// the region has none. Ignores skills, distance and urgency.
pub fn fcfs_pick(engineers: &[Engineer], free_at: &[Timestamp], region: &str) -> Option<usize> {
    let pick = |same: bool| {
        engineers
            .iter()
            .enumerate()
            .filter(|(_, e)| !same || e.region == region)
            .min_by_key(|(i, _)| (free_at.get(*i).copied().unwrap_or(Timestamp(0)), *i))
            .map(|(i, _)| i)
    };
    pick(true).or_else(|| pick(false))
}

/// Travel distance from an engineer's home to a place, km.
pub fn travel_km(engineer: &Engineer, to: (f64, f64)) -> f64 {
    distance_km((engineer.lat, engineer.lon), to)
}
