//! Front-loading washing machine.
//!
//! A washer runs 0.3-1.5 programs a day (Poisson per day, starting between 07:00 and
//! 20:00 UTC) and sends one telemetry message per program, at its end, summarising it:
//!
//! - `supply_voltage_v`: the region's mains level plus noise.
//! - `fill_time_s`: a per-device level (water pressure) plus noise.
//! - `water_temp_c`, `heat_time_s`: the program's temperature (30/40/60 °C) reached from
//!   the region's inlet temperature; heat time is the energy for the load's water
//!   divided by heater power, which falls with the square of the voltage and with heater
//!   wear (scale, a thinning element). A failed heater washes cold: water stays at inlet
//!   temperature and heat time reports the 3600 s heating timeout.
//! - `motor_current_a`, `vibration_g`: load-dependent; bearing wear raises both.
//! - `drain_time_s`: a per-device level; a clogging pump drains ever slower. A failed
//!   pump aborts the program at the 600 s drain timeout, and users mostly stop washing
//!   until the repair.
//!
//! Components and their precursors: `drain_pump` (`clog`: drain time grows over 5-25
//! days, `E21` as it gets bad, `E23` critical at failure), `motor_bearing`
//! (`bearing_wear`: vibration and current rise over 7-30 days, `E51` late and at failure,
//! more `E52` unbalanced-load codes, which healthy washers also send now and then),
//! `heater` (`heater_wear`: heat time grows over 5-20 days, `E61` late, `E62` critical at
//! failure). `E41` (door lock) is a rare nuisance code for everyone. A failure shows
//! itself during the first program after its time has come.

use crate::climate;
use crate::device::{
    Appliance, ComponentSpec, DeviceCore, FirmwareQuirk, KindSpec, ProgramSchedule, QuirkEffect,
    MINUTE_MS,
};
use crate::FleetConfig;

pub(crate) static SPEC: KindSpec = KindSpec {
    name: "washer",
    id_prefix: "wm",
    models: &["WM-500", "WM-700"],
    firmware: &["2.4.1", "2.5.0", "2.6.3"],
    channels: &[
        "motor_current_a",
        "vibration_g",
        "water_temp_c",
        "heat_time_s",
        "drain_time_s",
        "fill_time_s",
        "supply_voltage_v",
    ],
    components: &[
        ComponentSpec {
            name: "drain_pump",
            mode: "clog",
            onset_days: (5.0, 25.0),
            codes: &["E21", "E23"],
            wears_with_use: false,
        },
        ComponentSpec {
            name: "motor_bearing",
            mode: "bearing_wear",
            onset_days: (7.0, 30.0),
            codes: &["E51", "E52"],
            wears_with_use: false,
        },
        ComponentSpec {
            name: "heater",
            mode: "heater_wear",
            onset_days: (5.0, 20.0),
            codes: &["E61", "E62"],
            wears_with_use: false,
        },
    ],
    fault_codes: &["E21", "E23", "E41", "E51", "E52", "E61", "E62"],
    installations: &["sagging_drain_hose", "low_voltage"],
    quirks: &[FirmwareQuirk {
        fw: "2.6.3",
        channel: "drain_time_s",
        effect: QuirkEffect::RoundTo(10.0),
    }],
    build,
};

const DRAIN: usize = 0;
const BEARING: usize = 1;
const HEATER: usize = 2;

/// Drain phase limit: a blocked pump reports this and aborts.
const DRAIN_TIMEOUT_S: f64 = 600.0;
/// Heating phase limit: a dead heater reports this and washes cold.
const HEAT_TIMEOUT_S: f64 = 3600.0;
/// Earliest and latest program start, hours after midnight UTC.
const DAY_WINDOW_H: (f64, f64) = (7.0, 20.0);

struct Washer {
    drain_base_s: f64,
    fill_base_s: f64,
    heater_w: f64,
    water_kg: f64,
    motor_a: f64,
    vibration_g: f64,
    schedule: ProgramSchedule,
    /// End of the last program: the next one cannot start earlier.
    busy_until: i64,
}

fn build(core: &mut DeviceCore, config: &FleetConfig) -> Box<dyn Appliance> {
    let big = core.info.model == "WM-700";
    let start = config.start.millis();
    // A drain hose that sags below the drum outlet holds water the pump must lift again:
    // every drain takes longer, from the first day, and nothing wears.
    let hose = if core.installation == "sagging_drain_hose" {
        core.uniform(1.5, 2.0)
    } else {
        1.0
    };
    let mut w = Washer {
        drain_base_s: core.gauss(if big { 13.0 } else { 15.0 }, 1.5).max(8.0) * hose,
        fill_base_s: core.uniform(70.0, 130.0),
        heater_w: if big { 2200.0 } else { 2000.0 },
        water_kg: if big { 14.0 } else { 12.0 },
        motor_a: core.gauss(if big { 3.2 } else { 2.8 }, 0.15),
        vibration_g: core.uniform(0.08, 0.15),
        schedule: ProgramSchedule::new(core.uniform(0.3, 1.5), start),
        busy_until: start,
    };
    w.refill(core);
    Box::new(w)
}

impl Washer {
    fn refill(&mut self, core: &mut DeviceCore) {
        self.schedule
            .refill(core, |core| core.uniform(DAY_WINDOW_H.0, DAY_WINDOW_H.1));
    }

    fn run_program(&mut self, core: &mut DeviceCore, t0: i64) {
        let t0 = t0.max(self.busy_until + 5 * MINUTE_MS);
        let duration = core.minutes(80.0, 160.0);
        let end = t0 + duration;
        self.busy_until = end;
        // A failure shows itself during the program: the heater in the heating phase,
        // the pump and the bearing near the end.
        for i in core.due_failures(t0) {
            let at = match i {
                HEATER => t0 + 10 * MINUTE_MS,
                _ => end - 10 * MINUTE_MS,
            };
            core.fail(i, at);
            match i {
                DRAIN => core.raise_fault("E23", at, None),
                BEARING => core.raise_fault("E51", at, None),
                _ => core.raise_fault("E62", at, None),
            }
        }

        let temp_c = match core.uniform(0.0, 1.0) {
            x if x < 0.45 => 30.0,
            x if x < 0.85 => 40.0,
            _ => 60.0,
        };
        let load = core.uniform(0.3, 1.0);
        let inlet_c = core.gauss(climate::inlet_water_c(core.region, t0), 1.0);
        let supply_v = core.gauss(core.supply_v, 2.0);
        let fill_s = self.fill_base_s * core.gauss(1.0, 0.05).max(0.5);

        // Heating: E = m c dT, P = P_rated (V/230)^2 * efficiency.
        let s_heat = core.severity(HEATER, t0);
        let healthy_heat_s = self.heat_time_s(load, temp_c - inlet_c, supply_v, 0.0);
        let (water_c, heat_s) = if core.is_failed(HEATER) {
            (inlet_c + core.gauss(0.5, 0.3), HEAT_TIMEOUT_S)
        } else {
            let heat = self.heat_time_s(load, temp_c - inlet_c, supply_v, s_heat);
            (core.gauss(temp_c, 0.5), heat * core.gauss(1.0, 0.04))
        };

        // Spin: current and vibration grow with load and bearing wear.
        let s_bear = core.severity(BEARING, t0);
        let motor_a =
            self.motor_a * (0.85 + 0.3 * load) * (1.0 + 0.45 * s_bear) * core.gauss(1.0, 0.04);
        let imbalance = core.gauss(0.0, 0.25).exp();
        let vibration_g = self.vibration_g * imbalance * (1.0 + 3.5 * s_bear.powf(1.5));

        // Drain: a clog slows it, a blocked pump times out.
        let s_drain = core.severity(DRAIN, t0);
        let drain_s = if core.is_failed(DRAIN) {
            DRAIN_TIMEOUT_S
        } else {
            (self.drain_base_s * (1.0 + 5.0 * s_drain.powf(1.5)) + 2.0 * load)
                * core.gauss(1.0, 0.06)
        };

        core.telemetry(
            end,
            &[
                motor_a,
                vibration_g,
                water_c,
                heat_s,
                drain_s,
                fill_s,
                supply_v,
            ],
        );
        self.raise_faults(core, t0, end, heat_s / healthy_heat_s, drain_s, s_bear);
    }

    fn heat_time_s(&self, load: f64, delta_c: f64, supply_v: f64, wear: f64) -> f64 {
        const WATER_J_PER_KG_K: f64 = 4186.0;
        let kg = self.water_kg * (0.6 + 0.5 * load);
        let power = self.heater_w * (supply_v / 230.0).powi(2) * 0.92 * (1.0 - 0.55 * wear);
        kg * WATER_J_PER_KG_K * delta_c.max(1.0) / power.max(1.0)
    }

    fn raise_faults(
        &self,
        core: &mut DeviceCore,
        t0: i64,
        end: i64,
        heat_ratio: f64,
        drain_s: f64,
        s_bear: f64,
    ) {
        if core.chance(0.01 * core.nuisance) {
            let clear = core.minutes(1.0, 4.0);
            core.raise_fault("E41", t0, Some(clear));
        }
        if !core.is_failed(HEATER) && heat_ratio > 1.5 && core.chance(0.6) {
            let clear = core.minutes(60.0, 240.0);
            core.raise_fault("E61", t0 + 30 * MINUTE_MS, Some(clear));
        }
        if core.chance(0.03 * core.nuisance + 0.35 * s_bear) {
            let clear = core.minutes(10.0, 40.0);
            core.raise_fault("E52", end - 15 * MINUTE_MS, Some(clear));
        }
        if !core.is_failed(BEARING) && s_bear > 0.65 && core.chance((s_bear - 0.6) * 1.5) {
            let clear = core.minutes(60.0, 240.0);
            core.raise_fault("E51", end - 12 * MINUTE_MS, Some(clear));
        }
        let drain_ratio = drain_s / self.drain_base_s;
        if !core.is_failed(DRAIN) && core.chance((drain_ratio - 2.5) / 2.0) {
            let clear = core.minutes(30.0, 360.0);
            core.raise_fault("E21", end - 5 * MINUTE_MS, Some(clear));
        }
    }
}

impl Appliance for Washer {
    fn next_step(&self) -> i64 {
        self.schedule.next_start()
    }

    fn step(&mut self, core: &mut DeviceCore) {
        if let Some(t0) = self.schedule.pop() {
            // With water standing in the drum, most users wait for the engineer.
            if !core.is_failed(DRAIN) || core.chance(0.3) {
                self.run_program(core, t0);
            }
        }
        self.refill(core);
    }
}
