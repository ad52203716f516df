//! Fridge-freezer with one compressor and automatic defrost.
//!
//! A refrigerator reports every `refrigerator_interval_s` (each device at its own phase):
//!
//! - `ambient_temp_c`: the device's room level (region and household) plus a daily cycle
//!   peaking at 15:00 UTC.
//! - `compressor_duty`: heat leaking in is proportional to ambient minus freezer set
//!   point; duty is that load over the compressor's capacity, capped at 1. Door openings
//!   add load. When demand exceeds capacity the compartments warm up.
//! - `compressor_current_a`: a per-device level that rises with wear and slightly with
//!   ambient temperature.
//! - `cabinet_temp_c`, `freezer_temp_c`, `evaporator_temp_c`: set points plus noise and
//!   whatever the compressor cannot remove; an iced evaporator runs colder.
//! - `defrost_time_min`: length of the last defrost cycle (one every 8 or 12 hours).
//!
//! Components and their precursors: `compressor` (`compressor_wear`: capacity falls over
//! 5-30 days so duty creeps toward 1 and current rises; late, the cabinet drifts warm and
//! `F01` appears; at failure `F02` is critical, the compressor stops, and both
//! compartments warm toward room temperature), `defrost_system` (`defrost_wear`: defrost
//! takes ever longer over 5-20 days, `F11` when it passes 60 minutes; at failure every
//! defrost times out at 90 minutes, `F11` stays raised and ice slowly warms the cabinet).
//! `F21` (door open too long) is a nuisance code for everyone, about twice a week.

use std::f64::consts::TAU;

use crate::climate;
use crate::device::{Appliance, ComponentSpec, DeviceCore, KindSpec, DAY_MS, HOUR_MS};
use crate::FleetConfig;

pub(crate) static SPEC: KindSpec = KindSpec {
    name: "refrigerator",
    id_prefix: "rf",
    models: &["RF-300", "RF-420"],
    firmware: &["1.8.2", "1.9.0", "2.0.1"],
    channels: &[
        "cabinet_temp_c",
        "freezer_temp_c",
        "evaporator_temp_c",
        "compressor_duty",
        "compressor_current_a",
        "ambient_temp_c",
        "defrost_time_min",
    ],
    components: &[
        ComponentSpec {
            name: "compressor",
            mode: "compressor_wear",
            onset_days: (5.0, 30.0),
            codes: &["F01", "F02"],
            wears_with_use: false,
        },
        ComponentSpec {
            name: "defrost_system",
            mode: "defrost_wear",
            onset_days: (5.0, 20.0),
            codes: &["F11"],
            wears_with_use: false,
        },
    ],
    fault_codes: &["F01", "F02", "F11", "F21"],
    installations: &["poor_ventilation", "low_voltage"],
    quirks: &[],
    build,
};

const COMPRESSOR: usize = 0;
const DEFROST: usize = 1;

/// A defrost that has not ended after this long is stopped and reported as `F11`.
const DEFROST_TIMEOUT_MIN: f64 = 90.0;
/// `F11` is raised for defrosts longer than this.
const DEFROST_SLOW_MIN: f64 = 60.0;
/// Door-open-too-long events per device and day.
const DOOR_EVENTS_PER_DAY: f64 = 0.3;

struct Refrigerator {
    interval_ms: i64,
    next_tick: i64,
    room_c: f64,
    daily_amplitude_c: f64,
    cabinet_set_c: f64,
    freezer_set_c: f64,
    /// Duty per kelvin of ambient minus freezer set point, for a healthy compressor.
    duty_per_k: f64,
    current_a: f64,
    /// Capacity of a healthy compressor relative to nominal (a badly ventilated niche
    /// lowers it for good).
    capacity: f64,
    defrost_base_min: f64,
    defrost_period_ms: i64,
    next_defrost: i64,
    last_defrost_min: f64,
    /// When the compressor or the defrost system failed, for the warm-up after it.
    compressor_failed_at: Option<i64>,
    defrost_failed_at: Option<i64>,
}

fn build(core: &mut DeviceCore, config: &FleetConfig) -> Box<dyn Appliance> {
    let big = core.info.model == "RF-420";
    let interval_ms = config.refrigerator_interval_s.saturating_mul(1000) as i64;
    let start = config.start.millis();
    let phase = (core.uniform(0.0, 1.0) * interval_ms as f64) as i64;
    let defrost_period_ms = if core.chance(0.5) { 8 } else { 12 } * HOUR_MS;
    let defrost_phase = (core.uniform(0.0, 1.0) * defrost_period_ms as f64) as i64;
    let defrost_base_min = core.uniform(18.0, 28.0);
    Box::new(Refrigerator {
        interval_ms,
        next_tick: start + phase,
        room_c: core.gauss(21.5 + core.region.room_offset_c, 1.5),
        daily_amplitude_c: core.uniform(1.0, 3.5),
        cabinet_set_c: core.uniform(3.0, 5.0),
        freezer_set_c: core.uniform(-20.0, -17.0),
        duty_per_k: core.uniform(0.0095, 0.0125) * if big { 1.05 } else { 1.0 },
        // An induction motor under the same load draws more current at a lower voltage.
        current_a: core.gauss(if big { 1.25 } else { 1.0 }, 0.08) * (230.0 / core.supply_v),
        capacity: if core.installation == "poor_ventilation" {
            core.uniform(0.78, 0.86)
        } else {
            1.0
        },
        defrost_base_min,
        defrost_period_ms,
        next_defrost: start + defrost_phase,
        last_defrost_min: defrost_base_min,
        compressor_failed_at: None,
        defrost_failed_at: None,
    })
}

impl Refrigerator {
    fn ambient_c(&mut self, core: &mut DeviceCore, t: i64) -> f64 {
        let hour = t.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
        self.room_c
            + climate::indoor_offset_c(core.seed, core.region, t)
            + self.daily_amplitude_c * (TAU * (hour - 15.0) / 24.0).cos()
            + core.gauss(0.0, 0.25)
    }

    /// Runs the defrost cycles due by `t`.
    fn defrosts(&mut self, core: &mut DeviceCore, t: i64) {
        while self.next_defrost <= t {
            let started = self.next_defrost;
            self.next_defrost += self.defrost_period_ms;
            let minutes = if core.is_failed(DEFROST) {
                DEFROST_TIMEOUT_MIN
            } else {
                let wear = core.severity(DEFROST, started);
                (self.defrost_base_min * (1.0 + 2.5 * wear.powf(1.5)) * core.gauss(1.0, 0.05))
                    .min(DEFROST_TIMEOUT_MIN)
            };
            self.last_defrost_min = minutes;
            if minutes > DEFROST_SLOW_MIN && !core.is_failed(DEFROST) {
                let clear = core.minutes(60.0, 180.0);
                core.raise_fault("F11", t, Some(clear));
            }
        }
    }

    fn tick(&mut self, core: &mut DeviceCore, t: i64) {
        for i in core.due_failures(t) {
            core.fail(i, t);
            match i {
                COMPRESSOR => {
                    self.compressor_failed_at = Some(t);
                    core.raise_fault("F02", t, None);
                }
                _ => {
                    self.defrost_failed_at = Some(t);
                    core.raise_fault("F11", t, None);
                }
            }
        }
        if !core.is_failed(COMPRESSOR) {
            self.compressor_failed_at = None;
        }
        if !core.is_failed(DEFROST) {
            self.defrost_failed_at = None;
        }
        self.defrosts(core, t);

        let ambient = self.ambient_c(core, t);
        let s_comp = core.severity(COMPRESSOR, t);
        let s_def = core.severity(DEFROST, t);
        let iced_days = self
            .defrost_failed_at
            .map_or(0.0, |f| (t - f) as f64 / DAY_MS as f64);
        let ice = (s_def + 0.5 * iced_days).min(3.0);

        let door_open = core.chance(DOOR_EVENTS_PER_DAY * self.interval_ms as f64 / DAY_MS as f64);
        let door_load = if door_open {
            0.15
        } else {
            core.uniform(0.0, 0.05)
        };
        let demand =
            self.duty_per_k * (ambient - self.freezer_set_c) * core.gauss(1.0, 0.04) + door_load;

        let (cabinet, freezer, evaporator, duty, current) = match self.compressor_failed_at {
            Some(failed_at) => {
                // The compressor no longer starts: both compartments warm toward the room.
                let hours = (t - failed_at) as f64 / HOUR_MS as f64;
                let cabinet = ambient - (ambient - self.cabinet_set_c) * (-hours / 6.0).exp();
                let freezer = ambient - (ambient - self.freezer_set_c) * (-hours / 10.0).exp();
                (
                    cabinet + core.gauss(0.0, 0.2),
                    freezer + core.gauss(0.0, 0.3),
                    freezer + core.gauss(1.0, 0.3),
                    0.0,
                    0.0,
                )
            }
            None => {
                let capacity = self.capacity * (1.0 - 0.6 * s_comp) / (1.0 + 0.15 * ice);
                let needed = demand / capacity;
                let duty = needed.min(1.0);
                let deficit = (needed - 1.0).max(0.0);
                let ice_warming = (1.5 * iced_days).min(8.0);
                let cabinet = self.cabinet_set_c
                    + 8.0 * deficit
                    + 2.5 * s_comp.powi(3)
                    + ice_warming
                    + if door_open { 1.5 } else { 0.0 }
                    + core.gauss(0.0, 0.3);
                let freezer =
                    self.freezer_set_c + 14.0 * deficit + 0.6 * ice_warming + core.gauss(0.0, 0.5);
                let evaporator =
                    self.freezer_set_c - 7.0 + 5.0 * s_comp - 3.0 * ice + core.gauss(0.0, 0.5);
                let current = self.current_a
                    * (1.0 + 0.5 * s_comp)
                    * (1.0 + 0.01 * (ambient - 22.0))
                    * core.gauss(1.0, 0.02);
                (cabinet, freezer, evaporator, duty, current)
            }
        };

        core.telemetry(
            t,
            &[
                cabinet,
                freezer,
                evaporator,
                duty,
                current,
                ambient,
                self.last_defrost_min,
            ],
        );

        if cabinet > self.cabinet_set_c + 3.0 {
            if self.compressor_failed_at.is_some() {
                core.raise_fault("F01", t, None);
            } else if s_comp > 0.5 || ice > 0.5 {
                let clear = core.minutes(60.0, 180.0);
                core.raise_fault("F01", t, Some(clear));
            }
        }
        if door_open && core.chance(core.nuisance.min(1.0)) {
            let at = t + core.minutes(0.0, 5.0);
            let clear = core.minutes(3.0, 10.0);
            core.raise_fault("F21", at, Some(clear));
        }
    }
}

impl Appliance for Refrigerator {
    fn next_step(&self) -> i64 {
        self.next_tick
    }

    fn step(&mut self, core: &mut DeviceCore) {
        let t = self.next_tick;
        self.next_tick += self.interval_ms.max(1);
        self.tick(core, t);
    }
}
