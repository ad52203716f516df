//! Dishwasher with a circulation (wash) pump, a drain pump and a flow-through heater.
//!
//! A dishwasher runs 0.35-1.1 programs a day (Poisson per day; most after dinner,
//! 18:00-22:30 UTC, some at midday or in the morning) and sends one telemetry message per
//! program, at its end, summarising its phases (fill, heat, main wash, drain, rinse, dry):
//!
//! - `supply_voltage_v`: the socket's mains level plus noise.
//! - `fill_time_s`: a per-device level (water pressure, a half-open tap) plus noise.
//! - `wash_temp_c`, `heat_time_s`: the program's temperature (eco 45 °C, auto 55 °C,
//!   intensive 65 °C) reached from the season's inlet temperature; heat time is the
//!   water's energy over heater power, which falls with the square of the voltage and
//!   with scale on the element. A failed heater washes cold and reports the 2700 s
//!   heating timeout.
//! - `circulation_pressure_kpa`, `pump_current_a`: spray-arm pressure and wash-pump
//!   current in the main wash; a worn impeller and bearing lower the pressure and raise
//!   the current.
//! - `turbidity_ntu`: turbidity of the last rinse water; depends on how dirty the load
//!   was and on how well the spray arms cleaned (poor circulation leaves it cloudy).
//! - `drain_time_s`: a per-device level; a clogging drain pump drains ever slower.
//! - `cycle_time_min`: program length; slow heating and draining stretch it.
//!
//! Components and their precursors: `drain_pump` (`clog`: drain time grows over 4-21
//! days, `E24` as it gets bad, `E25` critical at failure), `circulation_pump`
//! (`impeller_wear`: pressure falls and current, turbidity rise over 10-40 days, `E14`
//! late, `E16` critical at failure), `heater` (`heater_wear`: heat time grows over 5-25
//! days, `E08` late, `E09` critical at failure). Nuisance codes: `E01` (door opened
//! during a program), `E17` (slow water supply, a half-closed tap), `E27` (supply
//! voltage low, mostly with a `low_voltage` installation).

use crate::climate;
use crate::device::{Appliance, ComponentSpec, DeviceCore, KindSpec, ProgramSchedule, MINUTE_MS};
use crate::FleetConfig;

pub(crate) static SPEC: KindSpec = KindSpec {
    name: "dishwasher",
    id_prefix: "dw",
    models: &["DW-450", "DW-600"],
    firmware: &["3.1.0", "3.2.2", "3.3.0"],
    channels: &[
        "wash_temp_c",
        "heat_time_s",
        "circulation_pressure_kpa",
        "pump_current_a",
        "turbidity_ntu",
        "drain_time_s",
        "fill_time_s",
        "cycle_time_min",
        "supply_voltage_v",
    ],
    components: &[
        ComponentSpec {
            name: "drain_pump",
            mode: "clog",
            onset_days: (4.0, 21.0),
            codes: &["E24", "E25"],
            wears_with_use: false,
        },
        ComponentSpec {
            name: "circulation_pump",
            mode: "impeller_wear",
            onset_days: (10.0, 40.0),
            codes: &["E14", "E16"],
            wears_with_use: false,
        },
        ComponentSpec {
            name: "heater",
            mode: "heater_wear",
            onset_days: (5.0, 25.0),
            codes: &["E08", "E09"],
            wears_with_use: false,
        },
    ],
    fault_codes: &[
        "E01", "E08", "E09", "E14", "E16", "E17", "E24", "E25", "E27",
    ],
    installations: &["sagging_drain_hose", "low_voltage"],
    quirks: &[],
    build,
};

const DRAIN: usize = 0;
const CIRCULATION: usize = 1;
const HEATER: usize = 2;

/// Drain phase limit: a blocked pump reports this and aborts.
const DRAIN_TIMEOUT_S: f64 = 300.0;
/// Heating phase limit: a dead heater reports this and washes cold.
const HEAT_TIMEOUT_S: f64 = 2700.0;
/// Supply voltage below which the electronics raise `E27`.
const LOW_VOLTAGE_V: f64 = 212.0;

struct Dishwasher {
    drain_base_s: f64,
    fill_base_s: f64,
    heater_w: f64,
    water_kg: f64,
    pressure_kpa: f64,
    pump_a: f64,
    schedule: ProgramSchedule,
    /// How dirty this household's loads are (scales turbidity).
    soil: f64,
    busy_until: i64,
}

fn build(core: &mut DeviceCore, config: &FleetConfig) -> Box<dyn Appliance> {
    let big = core.info.model == "DW-600";
    let start = config.start.millis();
    let hose = if core.installation == "sagging_drain_hose" {
        core.uniform(1.4, 1.9)
    } else {
        1.0
    };
    let mut d = Dishwasher {
        drain_base_s: core.gauss(if big { 55.0 } else { 60.0 }, 6.0).max(30.0) * hose,
        fill_base_s: core.uniform(55.0, 95.0),
        heater_w: if big { 2100.0 } else { 1900.0 },
        water_kg: if big { 13.0 } else { 11.0 },
        pressure_kpa: core.gauss(if big { 32.0 } else { 28.0 }, 2.0),
        pump_a: core.gauss(if big { 1.1 } else { 0.95 }, 0.06),
        schedule: ProgramSchedule::new(core.uniform(0.35, 1.1), start),
        soil: core.uniform(0.6, 1.6),
        busy_until: start,
    };
    d.refill(core);
    Box::new(d)
}

impl Dishwasher {
    fn refill(&mut self, core: &mut DeviceCore) {
        self.schedule
            .refill(core, |core| match core.uniform(0.0, 1.0) {
                x if x < 0.62 => core.uniform(18.0, 22.5),
                x if x < 0.85 => core.uniform(12.0, 15.0),
                _ => core.uniform(7.0, 10.0),
            });
    }

    fn heat_time_s(&self, delta_c: f64, supply_v: f64, wear: f64) -> f64 {
        const WATER_J_PER_KG_K: f64 = 4186.0;
        let power = self.heater_w * (supply_v / 230.0).powi(2) * 0.9 * (1.0 - 0.5 * wear);
        self.water_kg * WATER_J_PER_KG_K * delta_c.max(1.0) / power.max(1.0)
    }

    fn run_program(&mut self, core: &mut DeviceCore, t0: i64) {
        let t0 = t0.max(self.busy_until + 5 * MINUTE_MS);
        let (target_c, base_min) = match core.uniform(0.0, 1.0) {
            x if x < 0.55 => (45.0, core.uniform(190.0, 230.0)),
            x if x < 0.85 => (55.0, core.uniform(120.0, 160.0)),
            _ => (65.0, core.uniform(140.0, 170.0)),
        };
        for i in core.due_failures(t0) {
            let at = match i {
                HEATER => t0 + 15 * MINUTE_MS,
                CIRCULATION => t0 + 8 * MINUTE_MS,
                _ => t0 + 40 * MINUTE_MS,
            };
            core.fail(i, at);
            match i {
                DRAIN => core.raise_fault("E25", at, None),
                CIRCULATION => core.raise_fault("E16", at, None),
                _ => core.raise_fault("E09", at, None),
            }
        }

        let inlet_c = core.gauss(climate::inlet_water_c(core.region, t0), 1.0);
        let supply_v = core.gauss(core.supply_v, 2.0);
        let fill_s = self.fill_base_s * core.gauss(1.0, 0.06).max(0.5);

        let s_heat = core.severity(HEATER, t0);
        let healthy_heat_s = self.heat_time_s(target_c - inlet_c, supply_v, 0.0);
        let (wash_c, heat_s) = if core.is_failed(HEATER) {
            (inlet_c + core.gauss(2.0, 0.5), HEAT_TIMEOUT_S)
        } else {
            let heat = self.heat_time_s(target_c - inlet_c, supply_v, s_heat);
            (
                core.gauss(target_c, 0.6),
                (heat * core.gauss(1.0, 0.04)).min(HEAT_TIMEOUT_S),
            )
        };

        // Main wash: the pump's pressure and current; a blocked pump does neither.
        let s_circ = core.severity(CIRCULATION, t0);
        let (pressure, current) = if core.is_failed(CIRCULATION) {
            (core.uniform(0.0, 1.5), core.uniform(0.0, 0.05))
        } else {
            (
                self.pressure_kpa * (1.0 - 0.45 * s_circ) * core.gauss(1.0, 0.04),
                self.pump_a * (1.0 + 0.35 * s_circ) * core.gauss(1.0, 0.03),
            )
        };
        let cleaning = pressure / self.pressure_kpa.max(1.0);
        let cold = if wash_c < 35.0 { 2.0 } else { 1.0 };
        let turbidity = 18.0
            * self.soil
            * cold
            * (1.0 + 5.0 * (1.0 - cleaning).max(0.0).powi(2))
            * core.gauss(0.0, 0.3).exp();

        let s_drain = core.severity(DRAIN, t0);
        let drain_s = if core.is_failed(DRAIN) {
            DRAIN_TIMEOUT_S
        } else {
            (self.drain_base_s * (1.0 + 3.0 * s_drain.powf(1.5)) * core.gauss(1.0, 0.06))
                .min(DRAIN_TIMEOUT_S)
        };
        let extra_min = (heat_s - healthy_heat_s).max(0.0) / 60.0 + 3.0 * (drain_s / 60.0);
        let cycle_min = if core.is_failed(DRAIN) || core.is_failed(CIRCULATION) {
            // Aborted with an error.
            core.uniform(15.0, 50.0)
        } else {
            base_min + extra_min + core.gauss(0.0, 3.0)
        };
        let end = t0 + (cycle_min * MINUTE_MS as f64) as i64;
        self.busy_until = end;

        core.telemetry(
            end,
            &[
                wash_c, heat_s, pressure, current, turbidity, drain_s, fill_s, cycle_min, supply_v,
            ],
        );

        // Codes: precursors as the wear shows, nuisance codes now and then.
        if !core.is_failed(HEATER) && heat_s > 1.45 * healthy_heat_s && core.chance(0.6) {
            let clear = core.minutes(60.0, 240.0);
            core.raise_fault("E08", t0 + 30 * MINUTE_MS, Some(clear));
        }
        if !core.is_failed(CIRCULATION) && s_circ > 0.6 && core.chance((s_circ - 0.55) * 1.5) {
            let clear = core.minutes(30.0, 180.0);
            core.raise_fault("E14", t0 + 20 * MINUTE_MS, Some(clear));
        }
        if !core.is_failed(DRAIN) && core.chance((drain_s / self.drain_base_s - 2.2) / 1.5) {
            let clear = core.minutes(30.0, 300.0);
            core.raise_fault("E24", end - 5 * MINUTE_MS, Some(clear));
        }
        if core.chance(0.015 * core.nuisance) {
            let at = t0 + core.minutes(5.0, cycle_min.max(6.0));
            let clear = core.minutes(1.0, 3.0);
            core.raise_fault("E01", at.min(end), Some(clear));
        }
        if fill_s > 88.0 && core.chance(0.05 * core.nuisance) {
            let clear = core.minutes(5.0, 30.0);
            core.raise_fault("E17", t0 + 2 * MINUTE_MS, Some(clear));
        }
        if supply_v < LOW_VOLTAGE_V && core.chance(0.3) {
            let clear = core.minutes(1.0, 10.0);
            core.raise_fault("E27", t0, Some(clear));
        }
    }
}

impl Appliance for Dishwasher {
    fn next_step(&self) -> i64 {
        self.schedule.next_start()
    }

    fn step(&mut self, core: &mut DeviceCore) {
        if let Some(t0) = self.schedule.pop() {
            // A machine that stops with an error gets few further tries before the visit.
            let broken = core.is_failed(DRAIN) || core.is_failed(CIRCULATION);
            if !broken || core.chance(0.25) {
                self.run_program(core, t0);
            }
        }
        self.refill(core);
    }
}
