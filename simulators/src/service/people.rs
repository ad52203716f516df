//! Engineers and customers.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, TimeZone, Timelike, Utc};
use domain::Timestamp;
use rand::Rng;

use super::{rng_for, ServiceConfig};
use crate::DeviceInfo;

/// The centre of a sales region (lat, lon); a region the table does not know gets a
/// place from its name.
pub fn region_centre(region: &str) -> (f64, f64) {
    match region {
        "north" => (39.90, 116.40),
        "south" => (23.13, 113.26),
        "east" => (31.23, 121.47),
        "west" => (30.57, 104.07),
        "central" => (30.59, 114.31),
        other => {
            let mut rng = rng_for(0, "region", other);
            (rng.gen_range(22.0..42.0), rng.gen_range(100.0..122.0))
        }
    }
}

/// A point uniformly within `radius_km` of `centre`.
fn jitter(rng: &mut impl Rng, centre: (f64, f64), radius_km: f64) -> (f64, f64) {
    let r = radius_km * rng.gen::<f64>().sqrt();
    let a = rng.gen_range(0.0..std::f64::consts::TAU);
    let dlat = r * a.sin() / 111.0;
    let dlon = r * a.cos() / (111.0 * centre.0.to_radians().cos().max(0.1));
    (
        ((centre.0 + dlat) * 1e5).round() / 1e5,
        ((centre.1 + dlon) * 1e5).round() / 1e5,
    )
}

/// When an engineer works, in UTC (the simulated fleet's clock).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkingHours {
    /// First hour of the working day, 0-23.
    pub start_hour: u32,
    /// Hour the working day ends, after `start_hour`, 1-24.
    pub end_hour: u32,
    /// Working days, 0 = Monday .. 6 = Sunday.
    pub days: Vec<u32>,
}

impl WorkingHours {
    /// `"08:00"`-style start and end.
    pub fn start_end(&self) -> (String, String) {
        (
            format!("{:02}:00", self.start_hour),
            format!("{:02}:00", self.end_hour),
        )
    }

    /// The days as the API names them (`mon` ...).
    pub fn day_names(&self) -> Vec<&'static str> {
        const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        self.days.iter().map(|d| NAMES[*d as usize % 7]).collect()
    }

    /// The earliest instant at or after `t` within working hours.
    pub fn next_open(&self, t: Timestamp) -> Timestamp {
        let Some(mut at) = Utc.timestamp_millis_opt(t.millis()).single() else {
            return t;
        };
        for _ in 0..15 {
            let day = at.weekday().num_days_from_monday();
            let hour = at.hour();
            if self.days.contains(&day) && hour < self.end_hour {
                if hour >= self.start_hour {
                    return Timestamp(at.timestamp_millis());
                }
                let start = at
                    .date_naive()
                    .and_hms_opt(self.start_hour, 0, 0)
                    .map(|d| d.and_utc().timestamp_millis());
                return Timestamp(start.unwrap_or(at.timestamp_millis()));
            }
            // The next day's midnight.
            let next = at
                .date_naive()
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc());
            match next {
                Some(n) => at = n,
                None => return t,
            }
        }
        t
    }

    /// The end of the working day that contains `t` (`t` itself if outside hours).
    pub fn day_end(&self, t: Timestamp) -> Timestamp {
        let Some(at) = Utc.timestamp_millis_opt(t.millis()).single() else {
            return t;
        };
        let end = at
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis() + i64::from(self.end_hour) * 3_600_000);
        end.map_or(t, |e| Timestamp(e.max(t.millis())))
    }
}

/// A simulated field engineer.
#[derive(Clone, Debug, PartialEq)]
pub struct Engineer {
    /// Console login (`eng-north-1`).
    pub login: String,
    /// Display name.
    pub display_name: String,
    /// Home region.
    pub region: String,
    /// Home location.
    pub lat: f64,
    /// Home location.
    pub lon: f64,
    /// Skills and their levels 1-5.
    pub skills: BTreeMap<String, u8>,
    /// When they work.
    pub hours: WorkingHours,
    /// Visits a day.
    pub daily_capacity: u32,
    /// Their supervisor's login (the region's first engineer leads it; the lead has
    /// none).
    pub supervisor: Option<String>,
}

impl Engineer {
    /// The engineer's level for a repair needing `needed` skills: the lowest level
    /// among them, 1 for a skill they lack (and 3 when the component names none).
    pub fn level_for(&self, needed: &[String]) -> u8 {
        if needed.is_empty() {
            return 3;
        }
        needed
            .iter()
            .map(|s| self.skills.get(s).copied().unwrap_or(1))
            .min()
            .unwrap_or(1)
    }
}

const FAMILY: [&str; 12] = [
    "Zhang", "Wang", "Li", "Zhao", "Chen", "Liu", "Yang", "Huang", "Zhou", "Wu", "Xu", "Sun",
];
const GIVEN: [&str; 12] = [
    "Wei", "Fang", "Min", "Jing", "Lei", "Yan", "Tao", "Hui", "Jun", "Na", "Qiang", "Ying",
];

/// `n` engineers (at least one per region), spread over `regions` round-robin, with
/// skills drawn from `skills` (every skill the profiles' components need).
pub fn engineers(
    config: &ServiceConfig,
    regions: &[String],
    skills: &BTreeSet<String>,
) -> Vec<Engineer> {
    let regions: Vec<String> = if regions.is_empty() {
        vec!["central".to_owned()]
    } else {
        regions.to_vec()
    };
    let n = config.engineers.max(regions.len());
    let skills: Vec<&String> = skills.iter().collect();
    let mut out: Vec<Engineer> = Vec::with_capacity(n);
    let mut per_region: BTreeMap<&str, usize> = BTreeMap::new();
    for i in 0..n {
        let region = &regions[i % regions.len()];
        let k = per_region.entry(region).or_default();
        *k += 1;
        let login = format!("eng-{region}-{k}");
        let mut rng = rng_for(config.seed, "engineer", &login);
        let (lat, lon) = jitter(
            &mut rng,
            region_centre(region),
            config.region_radius_km * 0.5,
        );
        let mut own = BTreeMap::new();
        for (j, s) in skills.iter().enumerate() {
            // Everyone has one main skill (round-robin, so each skill is covered in a
            // region with enough engineers) and each other skill with odds 0.6.
            let main = j == i / regions.len() % skills.len().max(1);
            if main || rng.gen_bool(0.6) {
                let level = if main {
                    rng.gen_range(3..=5)
                } else {
                    rng.gen_range(1..=5)
                };
                own.insert((*s).clone(), level);
            }
        }
        let lead = out
            .iter()
            .find(|e| &e.region == region)
            .map(|e| e.login.clone());
        let (lo, hi) = config.daily_capacity;
        out.push(Engineer {
            display_name: format!(
                "{} {}",
                FAMILY[rng.gen_range(0..FAMILY.len())],
                GIVEN[rng.gen_range(0..GIVEN.len())]
            ),
            login,
            region: region.clone(),
            lat,
            lon,
            skills: own,
            hours: WorkingHours {
                start_hour: 8,
                end_hour: 20,
                days: vec![0, 1, 2, 3, 4, 5],
            },
            daily_capacity: rng.gen_range(lo.min(hi)..=hi.max(lo)),
            supervisor: lead,
        });
    }
    out
}

/// The customer who owns a device.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    /// The device.
    pub device_id: String,
    /// Its device type.
    pub device_type: String,
    /// The serial on its rating plate.
    pub serial: String,
    /// The customer's reference in the call centre's books.
    pub customer_ref: String,
    /// Name.
    pub customer_name: String,
    /// Address.
    pub address: String,
    /// Location.
    pub lat: f64,
    /// Location.
    pub lon: f64,
    /// The device's region.
    pub region: String,
}

/// One customer per device, at the device's region plus jitter.
pub fn customers(config: &ServiceConfig, devices: &[DeviceInfo]) -> Vec<Customer> {
    const STREETS: [&str; 8] = [
        "Renmin Road",
        "Jiefang Avenue",
        "Zhongshan Road",
        "Heping Street",
        "Xinhua Road",
        "Chaoyang Lane",
        "Binjiang Avenue",
        "Huaihai Road",
    ];
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let id = d.device_id.as_str();
            let mut rng = rng_for(config.seed, "customer", id);
            let (lat, lon) = jitter(&mut rng, region_centre(&d.region), config.region_radius_km);
            Customer {
                device_id: id.to_owned(),
                device_type: d.device_type.clone(),
                serial: format!(
                    "SN{}{:05}{}",
                    id.split('-').next().unwrap_or("x").to_uppercase(),
                    i,
                    rng.gen_range(0..10)
                ),
                customer_ref: format!("C{:07}", 1_000_000 + i * 7 + rng.gen_range(0..7)),
                customer_name: format!(
                    "{} {}",
                    FAMILY[rng.gen_range(0..FAMILY.len())],
                    GIVEN[rng.gen_range(0..GIVEN.len())]
                ),
                address: format!(
                    "{} {}, {}",
                    rng.gen_range(1..400),
                    STREETS[rng.gen_range(0..STREETS.len())],
                    d.region
                ),
                lat,
                lon,
                region: d.region.clone(),
            }
        })
        .collect()
}
