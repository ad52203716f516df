//! Weather and indoor climate: what drives cooling, heating and inlet-water temperature.
//!
//! Outdoor temperature in a region is an annual cycle (coldest around 20 January,
//! warmest around 20 July; the regions lie in the northern hemisphere), a daily cycle
//! (warmest at 15:00 UTC) and a weather anomaly that every device of the region shares:
//! smooth noise of a few kelvin that changes from day to day, drawn from the fleet's seed
//! and the region. Cold-water inlet and indoor temperatures follow the season, damped.

use std::f64::consts::TAU;

use crate::device::{Region, DAY_MS, HOUR_MS};

/// Day of year (0-365.25) of time `t` (epoch ms), counting from 1 January.
fn day_of_year(t: i64) -> f64 {
    // 1970-01-01 was day 0 of its year; a mean year keeps the phase within a day.
    const YEAR_MS: f64 = 365.2425 * DAY_MS as f64;
    (t as f64).rem_euclid(YEAR_MS) / DAY_MS as f64
}

/// -1 in mid-winter (about 20 January) to +1 in mid-summer (about 20 July).
pub(crate) fn season(t: i64) -> f64 {
    -(TAU * (day_of_year(t) - 20.0) / 365.2425).cos()
}

/// Hour of day, UTC, 0-24.
pub(crate) fn hour_of_day(t: i64) -> f64 {
    t.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64
}

/// Daily cycle, -1 at 03:00 UTC to +1 at 15:00 UTC.
pub(crate) fn daily(t: i64) -> f64 {
    (TAU * (hour_of_day(t) - 15.0) / 24.0).cos()
}

/// SplitMix64: a stateless hash of a 64-bit key.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard-normal-ish value (sum of three uniforms, scaled) for one day of a region.
fn day_noise(seed: u64, region: u64, day: i64) -> f64 {
    let h = mix(seed ^ mix(region.wrapping_mul(0x1000_0001) ^ day as u64));
    let u = |shift: u32| ((h >> shift) & 0x1F_FFFF) as f64 / 0x20_0000 as f64;
    (u(0) + u(21) + u(42) - 1.5) * 2.0
}

/// The region's weather anomaly at `t`, in kelvin: daily values 3 K apart (standard
/// deviation), smoothly interpolated, shared by every device of the region.
fn anomaly_c(seed: u64, region: &Region, t: i64) -> f64 {
    let days = t as f64 / DAY_MS as f64;
    let day = days.floor();
    let frac = days - day;
    let w = 0.5 - 0.5 * (std::f64::consts::PI * frac).cos();
    let a = day_noise(seed, region.index, day as i64);
    let b = day_noise(seed, region.index, day as i64 + 1);
    3.0 * (a + (b - a) * w)
}

/// Outdoor air temperature in `region` at `t`, °C.
pub(crate) fn outdoor_c(seed: u64, region: &Region, t: i64) -> f64 {
    region.outdoor_mean_c
        + region.seasonal_amplitude_c * season(t)
        + region.daily_amplitude_c * daily(t)
        + anomaly_c(seed, region, t)
}

/// Outdoor temperature in `region` at `t` without the daily cycle: the day's mean, °C.
pub(crate) fn outdoor_day_mean_c(seed: u64, region: &Region, t: i64) -> f64 {
    region.outdoor_mean_c + region.seasonal_amplitude_c * season(t) + anomaly_c(seed, region, t)
}

/// Mains cold-water temperature in `region` at `t`, °C: the region's mean plus a damped,
/// lagging share of the season.
pub(crate) fn inlet_water_c(region: &Region, t: i64) -> f64 {
    let lagged = season(t - 30 * DAY_MS);
    region.inlet_water_c + 0.35 * region.seasonal_amplitude_c * lagged
}

/// How much warmer than its yearly mean a heated, unconditioned room is at `t`, K
/// (heating holds winter rooms near 20 °C; summer rooms follow the weather a little).
pub(crate) fn indoor_offset_c(seed: u64, region: &Region, t: i64) -> f64 {
    let deviation = outdoor_day_mean_c(seed, region, t) - region.outdoor_mean_c;
    if deviation > 0.0 {
        0.25 * deviation
    } else {
        0.08 * deviation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::REGIONS;

    #[test]
    fn seasons_and_regions_order_temperatures() {
        // 2026-01-20 and 2026-07-20, 12:00 UTC.
        let winter = 1_768_910_400_000;
        let summer = winter + 181 * DAY_MS;
        assert!(season(winter) < -0.99 && season(summer) > 0.99);
        let mean = |region: &Region, t0: i64| {
            (0..30)
                .map(|d| outdoor_c(1, region, t0 + (d - 15) * DAY_MS))
                .sum::<f64>()
                / 30.0
        };
        for r in REGIONS {
            assert!(mean(r, summer) > mean(r, winter) + 8.0, "{}", r.name);
            assert!(inlet_water_c(r, summer) > inlet_water_c(r, winter));
        }
        let north = &REGIONS[0];
        let south = &REGIONS[1];
        assert!(mean(south, summer) > mean(north, summer));
        // The anomaly is shared within a region and differs between seeds.
        assert_eq!(outdoor_c(1, north, winter), outdoor_c(1, north, winter));
        assert_ne!(outdoor_c(1, north, winter), outdoor_c(2, north, winter));
    }
}
