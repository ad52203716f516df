//! Electric storage water heater: a tank, an immersion element, a control thermostat and
//! a safety cut-out.
//!
//! The tank is simulated in 10-minute steps and reports once an hour (each device at its
//! own phase). The household's hot-water demand follows the day: showers in the morning
//! and evening, small draws (hands, kitchen) from morning to late evening, more on
//! weekend mornings; households have 1-5 people. A draw mixes cold inlet water into the
//! tank; the element (power `V^2 / R`) reheats it to the thermostat's cut-out; the tank
//! loses heat to the room; on Sunday nights a disinfection cycle heats to 70 °C.
//!
//! - `tank_temp_c`: top-of-tank temperature at the report; `max_tank_temp_c`: highest in
//!   the hour.
//! - `inlet_temp_c`: cold-water inlet, following the region and season.
//! - `heating_duty`: share of the hour the element was on; `element_current_a`: its
//!   current while on (0 when it did not heat).
//! - `water_drawn_l`: hot water drawn in the hour.
//! - `supply_voltage_v`: the socket's mains level plus noise.
//!
//! Components and their precursors: `heating_element` (`element_degradation`: the
//! element's resistance rises over 7-40 days, so its current and power fall, duty and
//! recovery time rise; `W12` slow recovery late; at failure `W11`, open circuit, the tank
//! goes cold), `thermostat` (`thermostat_drift`: the cut-out creeps up to 12 K above the
//! set point over 5-30 days, `W22` tank above set point late; at failure the contact
//! welds shut, the tank heats until the safety cut-out trips at 88 °C, `W21`, and stays
//! cold until the repair). Nuisance codes: `W31` (disinfection cycle incomplete, heavy
//! draw during it) and `W05` (supply voltage dip, mostly with a `low_voltage`
//! installation). A low supply voltage lowers current and power for good: it looks like
//! a degrading element, but it does not get worse.

use crate::climate;
use crate::device::{Appliance, ComponentSpec, DeviceCore, KindSpec, DAY_MS, MINUTE_MS};
use crate::FleetConfig;

pub(crate) static SPEC: KindSpec = KindSpec {
    name: "water_heater",
    id_prefix: "wh",
    models: &["WH-80", "WH-150"],
    firmware: &["1.2.0", "1.3.1", "1.4.0"],
    channels: &[
        "tank_temp_c",
        "max_tank_temp_c",
        "inlet_temp_c",
        "heating_duty",
        "element_current_a",
        "water_drawn_l",
        "supply_voltage_v",
    ],
    components: &[
        ComponentSpec {
            name: "heating_element",
            mode: "element_degradation",
            onset_days: (7.0, 40.0),
            codes: &["W11", "W12"],
            wears_with_use: false,
        },
        ComponentSpec {
            name: "thermostat",
            mode: "thermostat_drift",
            onset_days: (5.0, 30.0),
            codes: &["W21", "W22"],
            wears_with_use: false,
        },
    ],
    fault_codes: &["W05", "W11", "W12", "W21", "W22", "W31"],
    installations: &["low_voltage"],
    quirks: &[],
    build,
};

const ELEMENT: usize = 0;
const THERMOSTAT: usize = 1;

const STEP_MS: i64 = 10 * MINUTE_MS;
const STEPS_PER_REPORT: u32 = 6;
const WATER_J_PER_KG_K: f64 = 4186.0;
/// The safety cut-out's trip temperature.
const CUTOUT_C: f64 = 88.0;
/// The thermostat switches on this far below its cut-out.
const HYSTERESIS_K: f64 = 5.0;
/// Disinfection temperature and its weekly slot (Sunday 02:00-04:00 UTC).
const DISINFECT_C: f64 = 70.0;
/// Supply voltage below which the controller logs `W05`.
const DIP_V: f64 = 212.0;

/// Relative shower and small-draw demand per hour of day (weekday).
const SHOWER_WEIGHT: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 2.0, 4.0, 3.0, 1.0, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.6, 1.2,
    1.8, 2.0, 1.5, 1.0, 0.3,
];
const SMALL_WEIGHT: [f64; 24] = [
    0.1, 0.0, 0.0, 0.0, 0.0, 0.1, 1.0, 1.5, 1.2, 0.8, 0.7, 0.8, 1.2, 1.0, 0.7, 0.7, 0.8, 1.2, 1.8,
    2.0, 1.5, 1.0, 0.6, 0.3,
];

struct WaterHeater {
    next_step: i64,
    steps: u32,
    tank_kg: f64,
    /// Rated element power at 230 V, W.
    element_w: f64,
    /// Standby heat loss, W/K.
    loss_w_per_k: f64,
    set_c: f64,
    room_c: f64,
    /// Mean showers and small draws per day.
    showers_per_day: f64,
    smalls_per_day: f64,
    shower_l: f64,
    temp_c: f64,
    heating: bool,
    /// The safety cut-out tripped (needs a reset by the engineer).
    tripped: bool,
    // Accumulators of the current report interval.
    acc_on_ms: f64,
    acc_current: f64,
    acc_drawn_l: f64,
    acc_max_c: f64,
    /// Highest temperature the thermostat heated to outside the disinfection cycle.
    acc_heated_to_c: f64,
    acc_v: f64,
    disinfect_heavy_draw: bool,
}

fn build(core: &mut DeviceCore, config: &FleetConfig) -> Box<dyn Appliance> {
    let big = core.info.model == "WH-150";
    let start = config.start.millis();
    let phase = (core.uniform(0.0, 1.0) * STEP_MS as f64) as i64;
    let people = 1.0 + core.uniform(0.0, 4.99).floor();
    let set_c = core.uniform(55.0, 65.0);
    Box::new(WaterHeater {
        next_step: start + phase,
        steps: core.uniform(0.0, f64::from(STEPS_PER_REPORT)) as u32,
        tank_kg: if big { 150.0 } else { 80.0 },
        element_w: if big { 3000.0 } else { 2000.0 } * core.gauss(1.0, 0.03),
        loss_w_per_k: if big { 2.2 } else { 1.5 } * core.gauss(1.0, 0.08),
        set_c,
        room_c: core.gauss(17.0, 2.0),
        showers_per_day: people * core.uniform(0.5, 1.0),
        smalls_per_day: people * core.uniform(5.0, 10.0),
        shower_l: core.uniform(25.0, 45.0),
        temp_c: set_c - core.uniform(0.0, HYSTERESIS_K),
        heating: false,
        tripped: false,
        acc_on_ms: 0.0,
        acc_current: 0.0,
        acc_drawn_l: 0.0,
        acc_max_c: 0.0,
        acc_heated_to_c: 0.0,
        acc_v: 0.0,
        disinfect_heavy_draw: false,
    })
}

fn weight(table: &[f64; 24], hour: f64) -> f64 {
    table[(hour as usize).min(23)]
}

fn mean_weight(table: &[f64; 24]) -> f64 {
    table.iter().sum::<f64>() / 24.0
}

/// Whether `t` falls in the weekly disinfection slot, Sunday 02:00-04:00 UTC.
fn disinfecting(t: i64) -> bool {
    // 1970-01-01 was a Thursday: day 3 of a week starting on Monday.
    let weekday = (t.div_euclid(DAY_MS) + 3).rem_euclid(7);
    let hour = climate::hour_of_day(t);
    weekday == 6 && (2.0..4.0).contains(&hour)
}

impl WaterHeater {
    fn step_tank(&mut self, core: &mut DeviceCore, t: i64) {
        for i in core.due_failures(t) {
            core.fail(i, t);
            // A welded thermostat raises nothing yet: the element heats on until the
            // safety cut-out trips (`W21`, below).
            if i == ELEMENT {
                core.raise_fault("W11", t, None);
            }
        }
        let hour = climate::hour_of_day(t);
        let weekend = (t.div_euclid(DAY_MS) + 3).rem_euclid(7) >= 5;
        let shift = if weekend { 1.5 } else { 0.0 };
        let h_shifted = (hour - shift).rem_euclid(24.0);
        let step_days = STEP_MS as f64 / DAY_MS as f64;
        let inlet = climate::inlet_water_c(core.region, t);

        // Draws: showers and small draws, as Bernoulli trials per step.
        let mut drawn = 0.0;
        let p_shower = self.showers_per_day * step_days * weight(&SHOWER_WEIGHT, h_shifted)
            / mean_weight(&SHOWER_WEIGHT);
        if core.chance(p_shower) {
            drawn += self.shower_l * core.gauss(1.0, 0.25).max(0.3);
        }
        let p_small = self.smalls_per_day * step_days * weight(&SMALL_WEIGHT, h_shifted)
            / mean_weight(&SMALL_WEIGHT);
        if core.chance(p_small) {
            drawn += core.uniform(2.0, 8.0);
        }
        let drawn = drawn.min(self.tank_kg);
        // Hot water mixes with the cold inlet: a simple fully mixed tank.
        self.temp_c -= drawn / self.tank_kg * (self.temp_c - inlet);

        // Thermostat: cut-out at the set point (or the disinfection temperature), drifting
        // up as the thermostat wears; welded shut once failed.
        let disinfect = disinfecting(t);
        let drift = 12.0 * core.severity(THERMOSTAT, t);
        let cutout = if disinfect { DISINFECT_C } else { self.set_c } + drift;
        let welded = core.is_failed(THERMOSTAT);
        if disinfect && drawn > 30.0 {
            self.disinfect_heavy_draw = true;
        }
        if !self.heating && self.temp_c < cutout - HYSTERESIS_K {
            self.heating = true;
        }
        let v = core.gauss(core.supply_v, 1.5);
        let element_ok = !core.is_failed(ELEMENT) && !self.tripped;
        let power = if element_ok {
            self.element_w * (v / 230.0).powi(2) * (1.0 - 0.3 * core.severity(ELEMENT, t))
        } else {
            0.0
        };
        let loss_w = self.loss_w_per_k * (self.temp_c - self.room_c);
        let step_s = STEP_MS as f64 / 1000.0;
        let capacity_j = self.tank_kg * WATER_J_PER_KG_K;
        let mut on_s = 0.0;
        if self.heating && power > 0.0 {
            let target = if welded { CUTOUT_C + 0.5 } else { cutout };
            let need_s = (target - self.temp_c).max(0.0) * capacity_j / power;
            on_s = need_s.min(step_s);
            self.temp_c += (power * on_s - loss_w * step_s) / capacity_j;
            if on_s < step_s {
                self.heating = welded;
            }
        } else {
            self.temp_c -= loss_w * step_s / capacity_j;
        }
        if welded && self.temp_c >= CUTOUT_C && !self.tripped {
            self.tripped = true;
            self.heating = false;
            core.raise_fault("W21", t, None);
        }
        if !welded {
            self.tripped = false;
        }
        self.temp_c = self.temp_c.clamp(inlet.min(self.room_c), 95.0);

        self.acc_on_ms += on_s * 1000.0;
        if on_s > 0.0 {
            // I = P / V for a resistive element.
            self.acc_current = power / v.max(1.0);
        }
        self.acc_drawn_l += drawn;
        self.acc_max_c = self.acc_max_c.max(self.temp_c);
        if on_s > 0.0 && !disinfect {
            self.acc_heated_to_c = self.acc_heated_to_c.max(self.temp_c);
        }
        self.acc_v = v;

        if !disinfect && disinfecting(t - STEP_MS) && self.disinfect_heavy_draw {
            self.disinfect_heavy_draw = false;
            if core.chance(0.7) {
                let clear = core.minutes(60.0, 600.0);
                core.raise_fault("W31", t, Some(clear));
            }
        }
    }

    fn report(&mut self, core: &mut DeviceCore, t: i64) {
        let interval_ms = (STEPS_PER_REPORT as i64 * STEP_MS) as f64;
        let duty = self.acc_on_ms / interval_ms;
        let current = if self.acc_on_ms > 0.0 {
            self.acc_current * core.gauss(1.0, 0.01)
        } else {
            0.0
        };
        let inlet = climate::inlet_water_c(core.region, t) + core.gauss(0.0, 0.3);
        let temp = self.temp_c + core.gauss(0.0, 0.2);
        let max_temp = self.acc_max_c + core.gauss(0.0, 0.2);
        core.telemetry(
            t,
            &[
                temp,
                max_temp.max(temp),
                inlet,
                duty,
                current,
                self.acc_drawn_l,
                self.acc_v,
            ],
        );
        // Slow recovery: heating most of the hour with little water drawn.
        let element_weak = core.severity(ELEMENT, t) > 0.6;
        if element_weak && duty > 0.4 && !core.is_failed(ELEMENT) && core.chance(0.3) {
            let clear = core.minutes(60.0, 240.0);
            core.raise_fault("W12", t, Some(clear));
        }
        if self.acc_heated_to_c > self.set_c + 6.0
            && !core.is_failed(THERMOSTAT)
            && core.chance(0.5)
        {
            let clear = core.minutes(60.0, 300.0);
            core.raise_fault("W22", t, Some(clear));
        }
        if self.acc_v < DIP_V && core.chance(0.03 * core.nuisance) {
            let clear = core.minutes(1.0, 10.0);
            core.raise_fault("W05", t, Some(clear));
        }
        self.acc_on_ms = 0.0;
        self.acc_drawn_l = 0.0;
        self.acc_max_c = self.temp_c;
        self.acc_heated_to_c = 0.0;
    }
}

impl Appliance for WaterHeater {
    fn next_step(&self) -> i64 {
        self.next_step
    }

    fn step(&mut self, core: &mut DeviceCore) {
        let t = self.next_step;
        self.next_step += STEP_MS;
        self.step_tank(core, t);
        self.steps += 1;
        if self.steps >= STEPS_PER_REPORT {
            self.steps = 0;
            self.report(core, t);
        }
    }
}
