//! The service world: the people around a simulated fleet. Pure and deterministic from
//! a seed, no I/O and no HTTP; `fixahead simulate-service` (and `demo`) drive it
//! against fixahead's API (docs/service-simulation.md).
//!
//! * [`people`]: engineers (home region and location, skills with levels 1-5, working
//!   hours, daily capacity, a supervisor) and customers (one per device: a location in
//!   the device's region, a serial, a customer reference).
//! * [`reports`]: customers who call when a failure happens (ground truth
//!   `events.jsonl`), sometimes about a nuisance fault code or a poor installation;
//!   the channel, the category and the words.
//! * [`work`]: travel, diagnosis and repair durations, first-time-fix odds by skill
//!   level, parts out of stock, and how a customer scores the service.
//!
//! Every random draw comes from an rng keyed by the seed and what it is about (a
//! ticket, a visit, a device), so a draw does not depend on the order in which the
//! driver asks: the same world plays the same under two dispatch rules.

pub mod people;
pub mod reports;
pub mod work;

#[cfg(test)]
mod tests;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use people::{Customer, Engineer, WorkingHours};
pub use reports::{CustomerReport, ReportTruth};
pub use work::{Satisfaction, Visit};

/// Every parameter of the service world, with its default (docs/service-simulation.md
/// lists them).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// Seed of every draw.
    pub seed: u64,
    /// Engineers, spread over the fleet's regions round-robin (at least one each).
    pub engineers: usize,
    /// Radius of a region around its centre, km (customers and engineers are placed
    /// uniformly in it).
    pub region_radius_km: f64,
    /// Travel speed, km/h (straight line).
    pub travel_kmh: f64,
    /// Diagnosis time on site, minutes (uniform between the two).
    pub diagnosis_min: (f64, f64),
    /// Repair time on site, minutes (uniform between the two).
    pub repair_min: (f64, f64),
    /// First-time-fix probability by skill level 1..=5 (index 0 is level 1); an
    /// engineer without the component's skills counts as level 1.
    pub first_time_fix: [f64; 5],
    /// Probability that the part a repair needs is out of stock.
    pub part_out_of_stock: f64,
    /// Wait for a part out of stock, days (uniform between the two).
    pub part_wait_days: (f64, f64),
    /// Engineers' daily capacity (visits), uniform between the two inclusive.
    pub daily_capacity: (u32, u32),
    /// Share of failures a customer reports (the rest go unnoticed until a visit).
    pub report_share: f64,
    /// Delay from a failure to the customer's call, minutes (uniform between the two).
    pub report_delay_min: (f64, f64),
    /// Channel mix of reports: phone, app, web, installer (weights).
    pub channel_mix: [f64; 4],
    /// Share of devices with non-critical (nuisance) fault codes whose customer calls
    /// about the first one.
    pub nuisance_report_share: f64,
    /// Share of poorly installed devices whose customer calls about it (once).
    pub installation_report_share: f64,
    /// Days after a repair within which the same component failing again means the
    /// fix did not hold.
    pub held_days: i64,
    /// Probability that a dissatisfied customer answers the call-back.
    pub callback_answer: f64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            engineers: 10,
            region_radius_km: 40.0,
            travel_kmh: 40.0,
            diagnosis_min: (20.0, 60.0),
            repair_min: (30.0, 150.0),
            first_time_fix: [0.55, 0.65, 0.75, 0.85, 0.92],
            part_out_of_stock: 0.15,
            part_wait_days: (1.0, 4.0),
            daily_capacity: (4, 7),
            report_share: 0.9,
            report_delay_min: (10.0, 360.0),
            channel_mix: [0.5, 0.25, 0.15, 0.1],
            nuisance_report_share: 0.3,
            installation_report_share: 0.5,
            held_days: 30,
            callback_answer: 0.8,
        }
    }
}

/// An rng for one decision: keyed by the world's seed, what it is about (`topic`:
/// `"visit"`, `"report"`, ...) and whose (`key`: a ticket or device id).
pub fn rng_for(seed: u64, topic: &str, key: &str) -> ChaCha8Rng {
    // FNV-1a over the topic and the key, mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A uniform draw from `lo..hi` (empty: `lo`) for one decision (see [`rng_for`]).
pub fn uniform(seed: u64, topic: &str, key: &str, lo: i64, hi: i64) -> i64 {
    use rand::Rng;
    if hi <= lo {
        return lo;
    }
    rng_for(seed, topic, key).gen_range(lo..hi)
}

/// Whether an event of probability `p` happens, for one decision.
pub fn chance(seed: u64, topic: &str, key: &str, p: f64) -> bool {
    use rand::Rng;
    rng_for(seed, topic, key).gen_bool(p.clamp(0.0, 1.0))
}

/// Great-circle distance, km.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}
