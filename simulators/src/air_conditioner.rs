//! Split air conditioner with an inverter compressor that also heats (a reversible heat
//! pump), driven by the weather of its region and season.
//!
//! The household switches the unit on by its own daily schedule (some run it all day).
//! While on, the unit cools when the room would otherwise be warmer than the cooling set
//! point, heats (if the household heats with it) when it would be colder than the heating
//! set point, and otherwise idles; while off, the room floats with the weather. The unit
//! reports every `refrigerator_interval_s` while on and at least hourly while off:
//!
//! - `outdoor_temp_c`: the region's weather (season, day, a shared weather anomaly).
//! - `indoor_temp_c`: the set point while the unit keeps up; when it cannot (load above
//!   capacity) or is off, the room drifts with the weather.
//! - `compressor_hz`: mean inverter frequency over the interval: the load (room heat
//!   loss or gain through its walls) over the unit's capacity, which falls in extreme
//!   weather and with lost refrigerant. 0 while off or idle.
//! - `compressor_current_a`: rises with frequency, falls with supply voltage, rises with
//!   compressor wear.
//! - `discharge_temp_c`: hot-gas temperature at the compressor outlet: condensing
//!   temperature plus superheat; a low refrigerant charge raises the superheat, a slow
//!   outdoor fan or a badly ventilated outdoor unit (cooling) the condensing temperature.
//!   Near the outdoor temperature while the compressor is off.
//! - `indoor_coil_temp_c`: about 8 °C while cooling, 35-45 °C while heating; a low charge
//!   pulls both toward the room. The room temperature while off.
//! - `outdoor_fan_rpm`: 600-950 rpm with the load; a worn fan bearing slows it.
//! - `supply_voltage_v`: the socket's mains level plus noise.
//!
//! Components and their precursors: `refrigerant_circuit` (`refrigerant_leak`: the charge
//! falls over 14-60 days: discharge temperature and frequency rise, the coil loses its
//! temperature difference; `P01` discharge temperature high late; at failure `P02` low
//! refrigerant protection stops the unit), `compressor` (`compressor_wear`: current rises
//! at the same frequency over 5-25 days, `P11` late; at failure `P10`, the compressor
//! does not start), `outdoor_fan` (`fan_bearing_wear`: fan speed falls over 7-30 days,
//! `P21` late; at failure `P20`, the fan stalls and the unit stops). The compressor and
//! the fan wear with use: their days are days of the use clock (see `USE_RATE`), so
//! they fail while the unit runs and never while it is off. Nuisance codes: `H1`
//! (defrost in progress, normal when heating in frost) and `E8` (indoor/outdoor
//! communication error, a few minutes).

use crate::climate;
use crate::device::{
    Appliance, ComponentSpec, DeviceCore, FirmwareQuirk, KindSpec, QuirkEffect, HOUR_MS, MINUTE_MS,
};
use crate::FleetConfig;

pub(crate) static SPEC: KindSpec = KindSpec {
    name: "air_conditioner",
    id_prefix: "ac",
    models: &["AC-250", "AC-350"],
    firmware: &["4.0.2", "4.1.0", "4.2.1"],
    channels: &[
        "outdoor_temp_c",
        "indoor_temp_c",
        "compressor_hz",
        "compressor_current_a",
        "discharge_temp_c",
        "indoor_coil_temp_c",
        "outdoor_fan_rpm",
        "supply_voltage_v",
    ],
    components: &[
        ComponentSpec {
            name: "refrigerant_circuit",
            mode: "refrigerant_leak",
            onset_days: (14.0, 60.0),
            codes: &["P01", "P02"],
            wears_with_use: false,
        },
        ComponentSpec {
            name: "compressor",
            mode: "compressor_wear",
            onset_days: (5.0, 25.0),
            codes: &["P10", "P11"],
            wears_with_use: true,
        },
        ComponentSpec {
            name: "outdoor_fan",
            mode: "fan_bearing_wear",
            onset_days: (7.0, 30.0),
            codes: &["P20", "P21"],
            wears_with_use: true,
        },
    ],
    fault_codes: &["E8", "H1", "P01", "P02", "P10", "P11", "P20", "P21"],
    installations: &["low_voltage", "poor_ventilation"],
    // Firmware 4.2.1 moved the indoor coil sensor to a diagnostics message that fixahead
    // does not receive: its telemetry lacks the channel.
    quirks: &[FirmwareQuirk {
        fw: "4.2.1",
        channel: "indoor_coil_temp_c",
        effect: QuirkEffect::Omit,
    }],
    build,
};

const REFRIGERANT: usize = 0;
const COMPRESSOR: usize = 1;
const FAN: usize = 2;

/// Reporting interval while the unit is off: at least hourly.
const STANDBY_INTERVAL_MS: i64 = HOUR_MS;
/// Mean compressor frequency at full rated capacity.
/// Use-clock rate of the compressor and the outdoor fan while the compressor runs: the
/// simulated fleet's air conditioners run about 20% of the year (19.9% of the hourly
/// reports of a 1,000-device year had the compressor on), so a running hour wears like
/// five calendar hours and a year at that duty like a calendar year. They do not wear
/// while off: their failures and precursors come in the seasons they run.
const USE_RATE: f64 = 5.0;
const RATED_HZ: f64 = 85.0;
const MAX_HZ: f64 = 110.0;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Off,
    Idle,
    Cooling,
    Heating,
}

struct AirConditioner {
    interval_ms: i64,
    next_tick: i64,
    /// Rated capacity, kW.
    capacity_kw: f64,
    /// Room heat loss or gain per kelvin, kW/K.
    ua_kw_per_k: f64,
    rated_a: f64,
    cool_set_c: f64,
    heat_set_c: f64,
    heats_with_unit: bool,
    /// Daily on-times as (from, to) hours; all day when `always_on`.
    on_hours: [(f64, f64); 2],
    always_on: bool,
    /// Extra condensing temperature of an outdoor unit in a badly ventilated spot, K.
    vent_penalty_k: f64,
    fan_rpm: f64,
    /// Whether the compressor ran in the last interval (advances the use clock).
    ran: bool,
}

fn build(core: &mut DeviceCore, config: &FleetConfig) -> Box<dyn Appliance> {
    let big = core.info.model == "AC-350";
    let interval_ms = config.refrigerator_interval_s.saturating_mul(1000) as i64;
    let start = config.start.millis();
    let phase = (core.uniform(0.0, 1.0) * interval_ms as f64) as i64;
    let capacity_kw = if big { 3.5 } else { 2.5 };
    let cold_region = matches!(core.region.name, "north" | "east");
    let shift = core.uniform(-1.0, 1.0);
    Box::new(AirConditioner {
        interval_ms,
        next_tick: start + phase,
        capacity_kw,
        ua_kw_per_k: capacity_kw * core.uniform(0.035, 0.055),
        rated_a: if big { 4.6 } else { 3.3 } * core.gauss(1.0, 0.04),
        cool_set_c: core.uniform(22.0, 26.0),
        heat_set_c: core.uniform(19.0, 23.0),
        heats_with_unit: core.chance(if cold_region { 0.65 } else { 0.55 }),
        on_hours: [(5.5 + shift, 8.5 + shift), (16.0 + shift, 23.0 + shift)],
        always_on: core.chance(0.15),
        vent_penalty_k: if core.installation == "poor_ventilation" {
            core.uniform(5.0, 9.0)
        } else {
            0.0
        },
        fan_rpm: core.gauss(if big { 900.0 } else { 820.0 }, 30.0),
        ran: false,
    })
}

impl AirConditioner {
    fn scheduled_on(&self, t: i64) -> bool {
        if self.always_on {
            return true;
        }
        let h = climate::hour_of_day(t);
        self.on_hours.iter().any(|&(a, b)| h >= a && h < b)
    }

    /// Room temperature without the unit: heating systems of their own keep rooms warm
    /// unless the household heats with this unit.
    fn free_float_c(&self, outdoor: f64) -> f64 {
        if outdoor >= 15.0 {
            20.5 + 0.45 * (outdoor - 15.0)
        } else if self.heats_with_unit {
            18.0 + 0.25 * (outdoor - 15.0)
        } else {
            20.5
        }
    }

    fn tick(&mut self, core: &mut DeviceCore, t: i64) {
        core.advance_use(t, self.ran, USE_RATE);
        for i in core.due_failures(t) {
            core.fail(i, t);
            let code = match i {
                REFRIGERANT => "P02",
                COMPRESSOR => "P10",
                _ => "P20",
            };
            core.raise_fault(code, t, None);
        }
        let outdoor = climate::outdoor_c(core.seed, core.region, t) + core.gauss(0.0, 0.3);
        let free = self.free_float_c(outdoor) + core.gauss(0.0, 0.4);
        let supply_v = core.gauss(core.supply_v, 1.5);
        let broken = (0..3).any(|i| core.is_failed(i));
        let on = self.scheduled_on(t);
        // The day's mean temperature stands for the household's sense of season: nobody
        // heats on a cool summer morning or cools on a sunny winter afternoon.
        let day_mean = climate::outdoor_day_mean_c(core.seed, core.region, t);
        let mode = if !on {
            Mode::Off
        } else if free > self.cool_set_c + 0.5 && day_mean > 16.0 {
            Mode::Cooling
        } else if self.heats_with_unit && free < self.heat_set_c - 0.5 && day_mean < 13.0 {
            Mode::Heating
        } else {
            Mode::Idle
        };
        let s_leak = core.severity(REFRIGERANT, t);
        let s_comp = core.severity(COMPRESSOR, t);
        let s_fan = core.severity(FAN, t);

        let running = matches!(mode, Mode::Cooling | Mode::Heating) && !broken;
        self.ran = running;
        let readings = if running {
            let cooling = mode == Mode::Cooling;
            let (set, load_kw, derate) = if cooling {
                let load = self.ua_kw_per_k * (outdoor - self.cool_set_c) + 0.3;
                (
                    self.cool_set_c,
                    load,
                    1.0 - 0.012 * (outdoor - 35.0).max(0.0),
                )
            } else {
                let load = self.ua_kw_per_k * (self.heat_set_c - outdoor) - 0.2;
                (
                    self.heat_set_c,
                    load,
                    1.0 - 0.018 * (7.0 - outdoor).max(0.0),
                )
            };
            let capacity = self.capacity_kw * derate.max(0.3) * (1.0 - 0.55 * s_leak);
            let need = (load_kw / capacity).max(0.05);
            let hz = (need * RATED_HZ).min(MAX_HZ) * core.gauss(1.0, 0.03);
            let deficit = (need * RATED_HZ - MAX_HZ).max(0.0) / RATED_HZ;
            let indoor = if cooling {
                set + (4.0 * deficit).min(free - set).max(0.0)
            } else {
                set - (4.0 * deficit).min(set - free).max(0.0)
            } + core.gauss(0.0, 0.3);
            let frac = (hz / RATED_HZ).min(1.3);
            let current = (0.4 + self.rated_a * frac)
                * (1.0 + 0.45 * s_comp)
                * (230.0 / supply_v)
                * core.gauss(1.0, 0.02);
            let fan = self.fan_rpm * (0.7 + 0.3 * frac.min(1.0)) * (1.0 - 0.4 * s_fan);
            let (condensing, coil) = if cooling {
                let condensing = outdoor + 9.0 + 6.0 * frac + 9.0 * s_fan + self.vent_penalty_k;
                let coil = 6.0 + 3.0 * (1.0 - frac.min(1.0)) - 9.0 * s_leak;
                (condensing, coil)
            } else {
                let condensing = 34.0 + 8.0 * frac - 12.0 * s_leak;
                (condensing, condensing + 2.0)
            };
            let discharge = condensing + 18.0 + 30.0 * s_leak + 7.0 * s_comp;
            [
                outdoor,
                indoor,
                hz,
                current,
                discharge + core.gauss(0.0, 1.0),
                coil + core.gauss(0.0, 0.5),
                fan + core.gauss(0.0, 10.0),
                supply_v,
            ]
        } else {
            // Off, idling, or stopped by a failure: the room floats (toward the set point
            // band when the unit merely idles) and the outdoor unit sits at air
            // temperature.
            let indoor = match mode {
                Mode::Idle if !broken => free.clamp(self.heat_set_c - 0.5, self.cool_set_c + 0.5),
                _ => free,
            };
            [
                outdoor,
                indoor,
                0.0,
                0.0,
                outdoor + core.gauss(1.0, 0.6),
                indoor + core.gauss(0.0, 0.3),
                0.0,
                supply_v,
            ]
        };
        core.telemetry(t, &readings);
        self.codes(core, t, mode, running, &readings, s_leak, s_comp, s_fan);
    }

    #[allow(clippy::too_many_arguments)]
    fn codes(
        &self,
        core: &mut DeviceCore,
        t: i64,
        mode: Mode,
        running: bool,
        readings: &[f64; 8],
        s_leak: f64,
        s_comp: f64,
        s_fan: f64,
    ) {
        // Per-tick chances are per 15 minutes of reporting, whatever the interval.
        let per = self.interval_ms as f64 / (15.0 * MINUTE_MS as f64);
        // The controller sees a high discharge temperature, or a high superheat.
        let hot = readings[4] > 92.0 || s_leak > 0.65;
        if running && hot && core.chance(0.4 * per) {
            let clear = core.minutes(30.0, 120.0);
            core.raise_fault("P01", t, Some(clear));
        }
        if running && s_comp > 0.6 && core.chance((s_comp - 0.55) * 0.6 * per) {
            let clear = core.minutes(20.0, 90.0);
            core.raise_fault("P11", t, Some(clear));
        }
        if running && s_fan > 0.6 && core.chance((s_fan - 0.55) * 0.6 * per) {
            let clear = core.minutes(20.0, 90.0);
            core.raise_fault("P21", t, Some(clear));
        }
        if running && mode == Mode::Heating && readings[0] < 3.0 && core.chance(0.1 * per) {
            let at = t + core.minutes(0.0, 10.0);
            let clear = core.minutes(5.0, 12.0);
            core.raise_fault("H1", at, Some(clear));
        }
        if core.chance(0.002 * core.nuisance * per) {
            let clear = core.minutes(1.0, 6.0);
            core.raise_fault("E8", t, Some(clear));
        }
    }
}

impl Appliance for AirConditioner {
    fn next_step(&self) -> i64 {
        self.next_tick
    }

    fn step(&mut self, core: &mut DeviceCore) {
        let t = self.next_tick;
        let on = self.scheduled_on(t);
        let step = if on {
            self.interval_ms
        } else {
            self.interval_ms.max(STANDBY_INTERVAL_MS)
        };
        self.next_tick += step.max(1);
        self.tick(core, t);
    }
}
