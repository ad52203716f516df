//! What every simulated device shares, whatever its kind: identity, random stream,
//! sequence numbers, component wear and failure, fault-code bookkeeping, and an outbox
//! that releases messages in event-time order.
//!
//! A kind (washer, refrigerator, ...) is a module that provides a [`KindSpec`] and an
//! [`Appliance`] implementation; [`crate::fleet::KINDS`] lists them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use domain::{DeviceId, FaultState, MessageKind, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::{
    DeviceInfo, FleetConfig, GroundTruthEvent, GroundTruthKind, SensorFaultInfo, SensorFaultKind,
    SimEvent, WireMessage,
};

/// Milliseconds per minute, hour and day.
pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = Timestamp::HOUR_MS;
pub(crate) const DAY_MS: i64 = Timestamp::DAY_MS;

/// A simulated kind of appliance: its identity and what it emits.
pub(crate) struct KindSpec {
    /// Device type, the profile key.
    pub(crate) name: &'static str,
    /// Device id prefix (`wm`).
    pub(crate) id_prefix: &'static str,
    /// Product models, picked uniformly.
    pub(crate) models: &'static [&'static str],
    /// Firmware versions, picked uniformly.
    pub(crate) firmware: &'static [&'static str],
    /// Channels, in the order [`Appliance`] implementations pass values.
    pub(crate) channels: &'static [&'static str],
    /// Wearing components, indexed as [`DeviceCore::components`].
    pub(crate) components: &'static [ComponentSpec],
    /// Every fault code the kind raises.
    pub(crate) fault_codes: &'static [&'static str],
    /// Poor installations the kind can have (`sagging_drain_hose`, `low_voltage`, ...);
    /// the kind's physics reads [`DeviceCore::installation`].
    pub(crate) installations: &'static [&'static str],
    /// How some firmware versions report differently.
    pub(crate) quirks: &'static [FirmwareQuirk],
    /// Builds the kind's per-device model; may draw from the device's random stream.
    pub(crate) build: fn(&mut DeviceCore, &FleetConfig) -> Box<dyn Appliance>,
}

/// A component that wears out.
pub(crate) struct ComponentSpec {
    /// Component name from the profile.
    pub(crate) name: &'static str,
    /// Failure mode of a failure with a precursor.
    pub(crate) mode: &'static str,
    /// Range of the precursor's length, in days.
    pub(crate) onset_days: (f64, f64),
    /// Fault codes that a repair of this component clears.
    pub(crate) codes: &'static [&'static str],
    /// The component wears only while the appliance runs: its failure time and
    /// precursor are on the device's use clock ([`DeviceCore::advance_use`]), not the
    /// calendar. A compressor that is switched off neither wears nor fails.
    pub(crate) wears_with_use: bool,
}

/// A firmware version that reports one channel differently.
pub(crate) struct FirmwareQuirk {
    /// The firmware version (`2.6.3`).
    pub(crate) fw: &'static str,
    /// The channel it affects.
    pub(crate) channel: &'static str,
    /// What it does to the channel.
    pub(crate) effect: QuirkEffect,
}

/// How a firmware quirk changes a channel.
#[derive(Clone, Copy, Debug)]
pub(crate) enum QuirkEffect {
    /// Reports the value rounded to a multiple of this step.
    RoundTo(f64),
    /// Does not send the channel at all.
    Omit,
}

/// The installation every device has unless it is a poor one.
pub(crate) const INSTALLATION_OK: &str = "ok";
/// Mains voltage at the socket of a `low_voltage` installation is this much lower (range).
const LOW_VOLTAGE_DROP_V: (f64, f64) = (14.0, 24.0);

/// A kind's per-device physics.
pub(crate) trait Appliance: Send {
    /// Event time (ms) of the next step; never earlier than the previous step.
    fn next_step(&self) -> i64;
    /// Runs the step at [`Appliance::next_step`], emitting through `core` at times at or
    /// after that step.
    fn step(&mut self, core: &mut DeviceCore);
}

/// A sales region: sets mains voltage, climate, inlet water and room temperature.
pub(crate) struct Region {
    /// Position in [`REGIONS`], a key of the region's weather.
    pub(crate) index: u64,
    pub(crate) name: &'static str,
    pub(crate) supply_v: f64,
    /// Yearly mean of the cold-water inlet temperature, °C.
    pub(crate) inlet_water_c: f64,
    pub(crate) room_offset_c: f64,
    /// Yearly mean outdoor temperature, °C.
    pub(crate) outdoor_mean_c: f64,
    /// Half the difference between mid-summer and mid-winter means, K.
    pub(crate) seasonal_amplitude_c: f64,
    /// Half the difference between afternoon and night, K.
    pub(crate) daily_amplitude_c: f64,
}

pub(crate) const REGIONS: &[Region] = &[
    Region {
        index: 0,
        outdoor_mean_c: 6.0,
        seasonal_amplitude_c: 10.0,
        daily_amplitude_c: 4.0,
        name: "north",
        supply_v: 229.0,
        inlet_water_c: 10.0,
        room_offset_c: -1.0,
    },
    Region {
        index: 1,
        outdoor_mean_c: 17.0,
        seasonal_amplitude_c: 8.0,
        daily_amplitude_c: 6.0,
        name: "south",
        supply_v: 232.0,
        inlet_water_c: 17.0,
        room_offset_c: 1.5,
    },
    Region {
        index: 2,
        outdoor_mean_c: 9.0,
        seasonal_amplitude_c: 11.0,
        daily_amplitude_c: 5.0,
        name: "east",
        supply_v: 226.0,
        inlet_water_c: 12.0,
        room_offset_c: 0.0,
    },
    Region {
        index: 3,
        outdoor_mean_c: 11.0,
        seasonal_amplitude_c: 6.0,
        daily_amplitude_c: 3.5,
        name: "west",
        supply_v: 231.0,
        inlet_water_c: 13.0,
        room_offset_c: 0.3,
    },
    Region {
        index: 4,
        outdoor_mean_c: 10.5,
        seasonal_amplitude_c: 9.0,
        daily_amplitude_c: 5.0,
        name: "central",
        supply_v: 230.0,
        inlet_water_c: 12.5,
        room_offset_c: 0.5,
    },
];

/// Wear (0 healthy, 1 failed) above which a self-test reports a component `degraded`:
/// low enough that a component a few days into its precursor already shows.
pub(crate) const SELF_TEST_WEAR_LIMIT: f64 = 0.04;

enum ComponentState {
    Healthy {
        fail_at: i64,
        onset_ms: i64,
        sudden: bool,
    },
    Failed {
        repair_at: i64,
        mode: &'static str,
    },
}

/// One component's wear state.
pub(crate) struct ComponentSim {
    spec: &'static ComponentSpec,
    state: ComponentState,
    /// Failure-rate multiplier (a defective batch's components fail more often).
    rate_multiplier: f64,
}

impl ComponentSim {
    /// Wear from 0 (healthy) to 1 (about to fail, or failed). Sudden failures show none.
    pub(crate) fn severity(&self, t: i64) -> f64 {
        match self.state {
            ComponentState::Healthy {
                fail_at,
                onset_ms,
                sudden,
            } => {
                if sudden || onset_ms <= 0 {
                    return 0.0;
                }
                let into = t.saturating_sub(fail_at.saturating_sub(onset_ms));
                (into as f64 / onset_ms as f64).clamp(0.0, 1.0).powf(1.5)
            }
            ComponentState::Failed { .. } => 1.0,
        }
    }

    /// Whether the component has failed and awaits repair.
    pub(crate) fn is_failed(&self) -> bool {
        matches!(self.state, ComponentState::Failed { .. })
    }

    /// Whether a healthy component's failure time has come.
    pub(crate) fn is_due(&self, t: i64) -> bool {
        matches!(self.state, ComponentState::Healthy { fail_at, .. } if t >= fail_at)
    }

    fn repair_at(&self) -> Option<i64> {
        match self.state {
            ComponentState::Failed { repair_at, .. } => Some(repair_at),
            ComponentState::Healthy { .. } => None,
        }
    }
}

enum Pending {
    Telemetry(Vec<f64>),
    Fault {
        code: &'static str,
        state: FaultState,
    },
    Truth {
        event: GroundTruthKind,
        component: &'static str,
        mode: &'static str,
    },
}

struct Scheduled {
    ts: i64,
    order: u64,
    item: Pending,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.order) == (other.ts, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: `BinaryHeap` is a max-heap and the outbox wants the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.ts, other.order).cmp(&(self.ts, self.order))
    }
}

/// A released event with its sort key for the fleet-wide merge.
pub(crate) struct Released {
    pub(crate) ts: i64,
    pub(crate) order: u64,
    pub(crate) raw: Raw,
}

/// A released event in compact form; [`DeviceCore::payload`] and
/// [`DeviceCore::to_event`] turn it into wire payloads and public events.
pub(crate) enum Raw {
    /// A message with its sequence number.
    Message { seq: u64, body: Body },
    /// A failure or repair.
    Truth {
        event: GroundTruthKind,
        component: &'static str,
        mode: &'static str,
    },
}

/// What a message says.
pub(crate) enum Body {
    Telemetry(Vec<f64>),
    Fault {
        code: &'static str,
        state: FaultState,
    },
}

/// A v1 wire payload, serialised directly (history files) or into a `Value`.
#[derive(Serialize)]
pub(crate) struct Payload<'a> {
    /// Only in history lines: the device the topic names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) device_id: Option<&'a str>,
    /// Only in history lines: `telemetry` or `fault`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) msg: Option<&'static str>,
    ts: Rfc3339,
    seq: u64,
    #[serde(rename = "type")]
    device_type: &'a str,
    model: &'a str,
    fw: &'a str,
    /// Only in live payloads: the production batch (history lines leave it to
    /// `devices.jsonl`; replay adds it back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) batch: Option<&'a str>,
    /// Only in live payloads: the region, as `batch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    readings: Option<Readings<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
}

/// A timestamp formatted as RFC 3339 UTC with milliseconds
/// (`2026-01-01T06:00:00.000Z`, as [`Timestamp::to_rfc3339`]) without allocating.
pub(crate) enum Rfc3339 {
    /// Years 0000-9999.
    Fast([u8; 24]),
    /// Anything else, formatted by `domain`.
    Other(String),
}

impl Rfc3339 {
    pub(crate) fn new(ms: i64) -> Self {
        const MAX_MS: i64 = 253_402_300_799_999;
        if !(0..=MAX_MS).contains(&ms) {
            return Self::Other(Timestamp(ms).to_rfc3339());
        }
        let days = ms.div_euclid(DAY_MS);
        let in_day = ms.rem_euclid(DAY_MS);
        // Days to civil date (Howard Hinnant's algorithm), for days >= 0.
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let (h, rest) = (in_day / HOUR_MS, in_day % HOUR_MS);
        let (m, rest) = (rest / MINUTE_MS, rest % MINUTE_MS);
        let (sec, milli) = (rest / 1000, rest % 1000);
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, h);
        put(14, 2, m);
        put(17, 2, sec);
        put(20, 3, milli);
        Self::Fast(b)
    }

    fn as_str(&self) -> &str {
        match self {
            // Only ASCII digits and separators are written.
            Self::Fast(b) => std::str::from_utf8(b).unwrap_or(""),
            Self::Other(s) => s,
        }
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Readings as a JSON object of channel -> value; a NaN value is a channel the device
/// did not send (a sensor dropout or a firmware that omits it) and is left out.
pub(crate) struct Readings<'a> {
    names: &'static [&'static str],
    values: &'a [f64],
}

impl Serialize for Readings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (name, value) in self.names.iter().zip(self.values) {
            if !value.is_nan() {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// A sensor fault episode: one channel reads wrong for a while; no component is at fault.
struct SensorEpisode {
    channel: usize,
    kind: SensorFaultKind,
    from: i64,
    to: i64,
    /// The value a stuck channel repeats, once the episode has begun.
    stuck: Option<f64>,
}

/// State every device has, whatever its kind.
pub(crate) struct DeviceCore {
    pub(crate) info: DeviceInfo,
    pub(crate) region: &'static Region,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) components: Vec<ComponentSim>,
    /// Installation quality, [`INSTALLATION_OK`] or one of the kind's `installations`.
    pub(crate) installation: &'static str,
    /// Mean mains voltage at the socket (region, household wiring, installation), V.
    pub(crate) supply_v: f64,
    /// Multiplier of nuisance-code rates: some households trigger them far more often.
    pub(crate) nuisance: f64,
    /// The fleet's seed, which keys the regional weather.
    pub(crate) seed: u64,
    sensor: Option<SensorEpisode>,
    /// Channel index and effect of this device's firmware quirks.
    quirks: Vec<(usize, QuirkEffect)>,
    kind: &'static KindSpec,
    /// Clamp range of each of `kind.channels`, from the profile.
    ranges: Vec<(f64, f64)>,
    /// Active fault codes and until when they stay active (`i64::MAX`: until repaired).
    active_faults: BTreeMap<&'static str, i64>,
    outbox: BinaryHeap<Scheduled>,
    next_order: u64,
    seq: u64,
    failure_rate_per_year: f64,
    sudden_share: f64,
    /// Use time (ms) for components that wear with use, scaled so that a fleet-average
    /// duty wears like the calendar; starts at the history's start.
    use_clock: i64,
    /// Event time up to which `use_clock` has been advanced.
    use_until: i64,
}

impl DeviceCore {
    /// Creates device number `index` (0-based) of the fleet. `ranges` align with
    /// `kind.channels`.
    pub(crate) fn new(
        index: usize,
        kind: &'static KindSpec,
        ranges: Vec<(f64, f64)>,
        config: &FleetConfig,
    ) -> crate::Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(index as u64 + 1);
        let device_id = DeviceId::parse(&format!("{}-{:04}", kind.id_prefix, index + 1))?;
        let model = pick(&mut rng, kind.models).to_string();
        let fw = pick(&mut rng, kind.firmware).to_string();
        let region = &REGIONS[rng.gen_range(0..REGIONS.len())];
        let start = config.start.millis();
        let installed_at = start - rng.gen_range(30..1500) * DAY_MS;
        let batch = Timestamp(installed_at - rng.gen_range(10..90) * DAY_MS)
            .to_datetime()
            .map(|d| d.format("B%Y-%m").to_string())
            .unwrap_or_else(|| "B0000-00".into());
        let installation = if !kind.installations.is_empty()
            && rng.gen_bool(config.poor_installation_share.clamp(0.0, 1.0))
        {
            pick(&mut rng, kind.installations)
        } else {
            INSTALLATION_OK
        };
        let z: f64 = rng.sample(StandardNormal);
        let mut supply_v = region.supply_v + 1.5 * z;
        if installation == "low_voltage" {
            supply_v -= rng.gen_range(LOW_VOLTAGE_DROP_V.0..LOW_VOLTAGE_DROP_V.1);
        }
        let z: f64 = rng.sample(StandardNormal);
        let nuisance = (0.8 * z - 0.32).exp();
        let sensor = if rng.gen_bool(config.sensor_fault_share.clamp(0.0, 1.0)) {
            let channel = rng.gen_range(0..kind.channels.len().max(1));
            let kind_of = match rng.gen_range(0..3) {
                0 => SensorFaultKind::Stuck,
                1 => SensorFaultKind::Dropout,
                _ => SensorFaultKind::Spike,
            };
            let from = start + (rng.gen_range(0.0..75.0) * DAY_MS as f64) as i64;
            let to = from + (rng.gen_range(1.0..14.0) * DAY_MS as f64) as i64;
            Some(SensorEpisode {
                channel,
                kind: kind_of,
                from,
                to,
                stuck: None,
            })
        } else {
            None
        };
        let quirks = kind
            .quirks
            .iter()
            .filter(|q| q.fw == fw)
            .filter_map(|q| {
                let i = kind.channels.iter().position(|c| *c == q.channel)?;
                Some((i, q.effect))
            })
            .collect();
        let info = DeviceInfo {
            device_id,
            device_type: kind.name.to_owned(),
            model,
            fw,
            region: region.name.to_owned(),
            batch,
            installed_at: Timestamp(installed_at),
            installation: installation.to_owned(),
            sensor_fault: sensor.as_ref().map(|e| SensorFaultInfo {
                channel: kind
                    .channels
                    .get(e.channel)
                    .copied()
                    .unwrap_or("")
                    .to_owned(),
                kind: e.kind,
                from: Timestamp(e.from),
                to: Timestamp(e.to),
            }),
        };
        let mut core = Self {
            info,
            region,
            rng,
            components: Vec::with_capacity(kind.components.len()),
            installation,
            supply_v,
            nuisance,
            seed: config.seed,
            sensor,
            quirks,
            kind,
            ranges,
            active_faults: BTreeMap::new(),
            outbox: BinaryHeap::new(),
            next_order: 0,
            seq: 0,
            failure_rate_per_year: config.failure_rate_per_year,
            sudden_share: config.sudden_failure_share,
            use_clock: start,
            use_until: start,
        };
        for spec in kind.components {
            let rate_multiplier = config
                .defective_batch
                .as_ref()
                .map_or(1.0, |d| d.multiplier_for(&core.info.batch, spec.name));
            let state = core.sample_failure(spec, start, rate_multiplier);
            core.components.push(ComponentSim {
                spec,
                state,
                rate_multiplier,
            });
        }
        if !kind.components.is_empty() && core.rng.gen_bool(config.early_degradation_share) {
            let i = core.rng.gen_range(0..kind.components.len());
            let fail_at = start + (core.rng.gen_range(3.0..10.0) * DAY_MS as f64) as i64;
            let onset_ms = fail_at - start + (core.rng.gen_range(3.0..12.0) * DAY_MS as f64) as i64;
            core.components[i].state = ComponentState::Healthy {
                fail_at,
                onset_ms,
                sudden: false,
            };
        }
        Ok(core)
    }

    fn sample_failure(
        &mut self,
        spec: &ComponentSpec,
        from: i64,
        rate_multiplier: f64,
    ) -> ComponentState {
        const MAX_AHEAD_MS: f64 = 100.0 * 365.25 * DAY_MS as f64;
        let rate = self.failure_rate_per_year * rate_multiplier;
        let ahead = if rate > 0.0 {
            let u: f64 = self.rng.gen();
            let years = -(1.0 - u).ln() / rate;
            (years * 365.25 * DAY_MS as f64).min(MAX_AHEAD_MS)
        } else {
            MAX_AHEAD_MS
        };
        let sudden = self.rng.gen_bool(self.sudden_share);
        let (lo, hi) = spec.onset_days;
        let onset_days = if sudden {
            0.0
        } else {
            self.rng.gen_range(lo..=hi)
        };
        ComponentState::Healthy {
            fail_at: from.saturating_add(ahead as i64),
            onset_ms: (onset_days * DAY_MS as f64) as i64,
            sudden,
        }
    }

    /// Advances the use clock to `t`: by the elapsed time times `rate` when the
    /// appliance ran since the last call, not at all when it did not. `rate` is the
    /// inverse of the fleet's average duty, so a year at average use wears like a
    /// calendar year.
    pub(crate) fn advance_use(&mut self, t: i64, ran: bool, rate: f64) {
        let dt = t.saturating_sub(self.use_until).max(0);
        self.use_until = self.use_until.max(t);
        if ran {
            self.use_clock = self
                .use_clock
                .saturating_add((dt as f64 * rate.max(0.0)) as i64);
        }
    }

    /// The clock component `i` wears on at event time `t`.
    fn clock(&self, i: usize, t: i64) -> i64 {
        match self.components.get(i) {
            Some(c) if c.spec.wears_with_use => self.use_clock,
            _ => t,
        }
    }

    /// Wear of component `i` at `t`, 0-1.
    pub(crate) fn severity(&self, i: usize, t: i64) -> f64 {
        self.components
            .get(i)
            .map_or(0.0, |c| c.severity(self.clock(i, t)))
    }

    /// A self-test at `t`: every component's wear against [`SELF_TEST_WEAR_LIMIT`].
    /// Reads the hidden state only: it draws no random number, so answering a
    /// command never changes what the device does next.
    pub(crate) fn self_test(&self, t: i64) -> Vec<crate::ComponentCheck> {
        self.components
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let wear = c.severity(self.clock(i, t));
                let status = if c.is_failed() {
                    "failed"
                } else if wear > SELF_TEST_WEAR_LIMIT {
                    "degraded"
                } else {
                    "ok"
                };
                crate::ComponentCheck {
                    component: c.spec.name.to_owned(),
                    status: status.to_owned(),
                    measured: round3(wear),
                    limit: SELF_TEST_WEAR_LIMIT,
                    quantity: "wear".to_owned(),
                }
            })
            .collect()
    }

    /// Whether component `i` has failed and awaits repair.
    pub(crate) fn is_failed(&self, i: usize) -> bool {
        self.components.get(i).is_some_and(ComponentSim::is_failed)
    }

    /// Indices of healthy components whose failure time has come by `t`.
    pub(crate) fn due_failures(&self, t: i64) -> Vec<usize> {
        (0..self.components.len())
            .filter(|&i| self.components[i].is_due(self.clock(i, t)))
            .collect()
    }

    /// Fails component `i` at `t`, records ground truth and schedules the repair 1-4
    /// days later.
    pub(crate) fn fail(&mut self, i: usize, t: i64) {
        let Some(c) = self.components.get(i) else {
            return;
        };
        let mode = match c.state {
            ComponentState::Healthy { sudden: true, .. } => "sudden",
            _ => c.spec.mode,
        };
        let name = c.spec.name;
        let repair_at = t + (self.rng.gen_range(1.0..4.0) * DAY_MS as f64) as i64;
        self.components[i].state = ComponentState::Failed { repair_at, mode };
        self.schedule(
            t,
            Pending::Truth {
                event: GroundTruthKind::Failure,
                component: name,
                mode,
            },
        );
    }

    /// The earliest pending repair, as (component index, time).
    pub(crate) fn next_repair(&self) -> Option<(usize, i64)> {
        self.components
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.repair_at().map(|t| (i, t)))
            .min_by_key(|&(i, t)| (t, i))
    }

    /// Repairs component `i` at `t`: ground truth, its fault codes cleared, and a fresh
    /// time to failure.
    pub(crate) fn repair(&mut self, i: usize, t: i64) {
        let Some(c) = self.components.get(i) else {
            return;
        };
        let ComponentState::Failed { mode, .. } = c.state else {
            return;
        };
        let spec = c.spec;
        self.schedule(
            t,
            Pending::Truth {
                event: GroundTruthKind::Repair,
                component: spec.name,
                mode,
            },
        );
        for code in spec.codes {
            self.clear_fault(code, t);
        }
        let multiplier = self.components[i].rate_multiplier;
        let from = self.clock(i, t);
        let state = self.sample_failure(spec, from, multiplier);
        self.components[i].state = state;
    }

    /// Emits a telemetry message at `t`; `values` align with the kind's channels and are
    /// rounded and clamped into the profile's ranges. A sensor fault episode and the
    /// firmware's quirks then change what is sent.
    pub(crate) fn telemetry(&mut self, t: i64, values: &[f64]) {
        let mut values: Vec<f64> = values
            .iter()
            .zip(&self.ranges)
            .map(|(&x, &(min, max))| {
                let x = if x.is_finite() { x } else { min };
                round3(x).clamp(min, max)
            })
            .collect();
        self.apply_sensor_fault(t, &mut values);
        for &(i, effect) in &self.quirks {
            let (Some(x), Some(&(min, max))) = (values.get_mut(i), self.ranges.get(i)) else {
                continue;
            };
            match effect {
                QuirkEffect::RoundTo(step) if step > 0.0 && !x.is_nan() => {
                    *x = round3((*x / step).round() * step).clamp(min, max);
                }
                QuirkEffect::RoundTo(_) => {}
                QuirkEffect::Omit => *x = f64::NAN,
            }
        }
        self.schedule(t, Pending::Telemetry(values));
    }

    /// A stuck channel repeats its first reading of the episode, a dropout leaves it out
    /// (NaN), a spike replaces one reading in six by a plausible but wrong value within
    /// the channel's range.
    fn apply_sensor_fault(&mut self, t: i64, values: &mut [f64]) {
        let Some(ep) = self.sensor.as_mut() else {
            return;
        };
        if t < ep.from || t >= ep.to {
            return;
        }
        let (Some(x), Some(&(min, max))) =
            (values.get_mut(ep.channel), self.ranges.get(ep.channel))
        else {
            return;
        };
        match ep.kind {
            SensorFaultKind::Stuck => *x = *ep.stuck.get_or_insert(*x),
            SensorFaultKind::Dropout => *x = f64::NAN,
            SensorFaultKind::Spike => {
                if self.rng.gen_bool(1.0 / 6.0) {
                    let jump = self.rng.gen_range(0.15..0.4) * (max - min);
                    let up = if *x + jump <= max {
                        *x - jump < min || self.rng.gen_bool(0.5)
                    } else {
                        false
                    };
                    *x = round3(if up { *x + jump } else { *x - jump }).clamp(min, max);
                }
            }
        }
    }

    /// Whether `code` is active at `t`.
    pub(crate) fn fault_active(&self, code: &str, t: i64) -> bool {
        self.active_faults.get(code).is_some_and(|&until| until > t)
    }

    /// Raises `code` at `t` unless it is active; it clears by itself after `clear_after_ms`,
    /// or stays until [`DeviceCore::clear_fault`] (or a repair) when that is `None`.
    /// Raising a persistent fault while the code is active with a pending clear makes it
    /// persistent.
    pub(crate) fn raise_fault(&mut self, code: &'static str, t: i64, clear_after_ms: Option<i64>) {
        match (self.fault_active(code, t), clear_after_ms) {
            (true, Some(_)) => {}
            (true, None) => {
                self.cancel_pending_clear(code);
                self.active_faults.insert(code, i64::MAX);
            }
            (false, Some(after)) => {
                let until = t + after.max(1);
                self.schedule(t, fault(code, FaultState::Raised));
                self.schedule(until, fault(code, FaultState::Cleared));
                self.active_faults.insert(code, until);
            }
            (false, None) => {
                self.schedule(t, fault(code, FaultState::Raised));
                self.active_faults.insert(code, i64::MAX);
            }
        }
    }

    /// Clears `code` at `t` if it is active.
    pub(crate) fn clear_fault(&mut self, code: &'static str, t: i64) {
        if !self.fault_active(code, t) {
            return;
        }
        self.cancel_pending_clear(code);
        self.schedule(t, fault(code, FaultState::Cleared));
        self.active_faults.insert(code, t);
    }

    /// Removes the scheduled clear of an active code (the one at its `active_until`);
    /// clears of earlier activations stay, even if not yet released.
    fn cancel_pending_clear(&mut self, code: &str) {
        let Some(&until) = self.active_faults.get(code) else {
            return;
        };
        if until == i64::MAX {
            return;
        }
        self.outbox.retain(|s| {
            !(s.ts == until
                && matches!(s.item, Pending::Fault { code: c, state: FaultState::Cleared } if c == code))
        });
    }

    fn schedule(&mut self, ts: i64, item: Pending) {
        let order = self.next_order;
        self.next_order += 1;
        self.outbox.push(Scheduled { ts, order, item });
    }

    /// Moves every scheduled event at or before `until` into `out`, assigning sequence
    /// numbers in event-time order.
    pub(crate) fn release(&mut self, until: i64, out: &mut Vec<Released>) {
        while self.outbox.peek().is_some_and(|s| s.ts <= until) {
            let Some(s) = self.outbox.pop() else { break };
            let raw = match s.item {
                Pending::Telemetry(values) => self.numbered(Body::Telemetry(values)),
                Pending::Fault { code, state } => self.numbered(Body::Fault { code, state }),
                Pending::Truth {
                    event,
                    component,
                    mode,
                } => Raw::Truth {
                    event,
                    component,
                    mode,
                },
            };
            out.push(Released {
                ts: s.ts,
                order: s.order,
                raw,
            });
        }
    }

    fn numbered(&mut self, body: Body) -> Raw {
        self.seq += 1;
        Raw::Message {
            seq: self.seq,
            body,
        }
    }

    /// The wire payload of a released message, as a device publishes it (with `batch`
    /// and `region`), without the history file's `device_id` and `msg` fields.
    pub(crate) fn payload<'a>(
        &'a self,
        ts: i64,
        seq: u64,
        body: &'a Body,
    ) -> (MessageKind, Payload<'a>) {
        let (kind, readings, code, state) = match body {
            Body::Telemetry(values) => (
                MessageKind::Telemetry,
                Some(Readings {
                    names: self.kind.channels,
                    values,
                }),
                None,
                None,
            ),
            Body::Fault { code, state } => {
                (MessageKind::Fault, None, Some(*code), Some(state.as_str()))
            }
        };
        let payload = Payload {
            device_id: None,
            msg: None,
            ts: Rfc3339::new(ts),
            seq,
            device_type: &self.info.device_type,
            model: &self.info.model,
            fw: &self.info.fw,
            batch: Some(&self.info.batch),
            region: Some(&self.info.region),
            readings,
            code,
            state,
        };
        (kind, payload)
    }

    /// The public form of a released event.
    pub(crate) fn to_event(&self, released: &Released) -> SimEvent {
        let ts = Timestamp(released.ts);
        match &released.raw {
            Raw::Message { seq, body } => {
                let (kind, payload) = self.payload(released.ts, *seq, body);
                SimEvent::Message(WireMessage {
                    device_id: self.info.device_id.clone(),
                    kind,
                    ts,
                    // Strings and finite numbers always convert.
                    payload: serde_json::to_value(payload).unwrap_or_default(),
                })
            }
            Raw::Truth {
                event,
                component,
                mode,
            } => SimEvent::GroundTruth(self.ground_truth(ts, *event, component, mode)),
        }
    }

    pub(crate) fn ground_truth(
        &self,
        ts: Timestamp,
        event: GroundTruthKind,
        component: &str,
        mode: &str,
    ) -> GroundTruthEvent {
        GroundTruthEvent {
            device_id: self.info.device_id.clone(),
            ts,
            event,
            component: component.to_owned(),
            mode: mode.to_owned(),
        }
    }

    /// A normal sample with the given mean and standard deviation.
    pub(crate) fn gauss(&mut self, mean: f64, sd: f64) -> f64 {
        let z: f64 = self.rng.sample(StandardNormal);
        mean + sd * z
    }

    /// A uniform sample from `[lo, hi)`; `lo` if the range is empty.
    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if hi > lo {
            self.rng.gen_range(lo..hi)
        } else {
            lo
        }
    }

    /// True with probability `p` (clamped to 0-1).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        let p = if p.is_finite() {
            p.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.rng.gen_bool(p)
    }

    /// A uniform duration in `[lo_min, hi_min)` minutes, in ms.
    pub(crate) fn minutes(&mut self, lo_min: f64, hi_min: f64) -> i64 {
        (self.uniform(lo_min, hi_min) * MINUTE_MS as f64) as i64
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn fault(code: &'static str, state: FaultState) -> Pending {
    Pending::Fault { code, state }
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    if items.is_empty() {
        return "unknown";
    }
    items[rng.gen_range(0..items.len())]
}

/// A device: the shared core plus its kind's physics.
pub(crate) struct Device {
    pub(crate) core: DeviceCore,
    model: Box<dyn Appliance>,
}

impl Device {
    pub(crate) fn new(mut core: DeviceCore, config: &FleetConfig) -> Self {
        let model = (core.kind.build)(&mut core, config);
        Self { core, model }
    }

    /// Runs every repair and kind step up to and including `until`.
    pub(crate) fn run_until(&mut self, until: i64) {
        loop {
            let step = self.model.next_step();
            match self.core.next_repair() {
                Some((i, t)) if t <= step && t <= until => self.core.repair(i, t),
                _ if step <= until => self.model.step(&mut self.core),
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: ComponentSpec = ComponentSpec {
        name: "part",
        mode: "wear",
        onset_days: (10.0, 10.0),
        codes: &["X1"],
        wears_with_use: false,
    };

    #[test]
    fn fast_timestamps_match_domain_formatting() {
        let mut t: i64 = 0;
        while t < 253_402_300_799_999 {
            assert_eq!(Rfc3339::new(t).as_str(), Timestamp(t).to_rfc3339(), "{t}");
            t += 7_777_777_777 + t / 3;
        }
        for t in [
            0,
            951_782_400_000,
            1_767_225_600_000,
            253_402_300_799_999,
            -1,
        ] {
            assert_eq!(Rfc3339::new(t).as_str(), Timestamp(t).to_rfc3339(), "{t}");
        }
    }

    #[test]
    fn severity_ramps_over_the_onset_and_sudden_shows_none() {
        let c = ComponentSim {
            spec: &SPEC,
            state: ComponentState::Healthy {
                fail_at: 20 * DAY_MS,
                onset_ms: 10 * DAY_MS,
                sudden: false,
            },
            rate_multiplier: 1.0,
        };
        assert_eq!(c.severity(5 * DAY_MS), 0.0);
        let mid = c.severity(15 * DAY_MS);
        assert!(mid > 0.2 && mid < 0.5, "{mid}");
        assert_eq!(c.severity(25 * DAY_MS), 1.0);
        let s = ComponentSim {
            spec: &SPEC,
            state: ComponentState::Healthy {
                fail_at: 20 * DAY_MS,
                onset_ms: 0,
                sudden: true,
            },
            rate_multiplier: 1.0,
        };
        assert_eq!(s.severity(19 * DAY_MS), 0.0);
    }
}

/// When an appliance that runs programs (washer, dishwasher) starts them: a Poisson
/// number per day, each at an hour the kind draws, generated one day at a time.
#[derive(Debug)]
pub(crate) struct ProgramSchedule {
    per_day: f64,
    /// Program start times not yet run, in order.
    queue: VecDeque<i64>,
    /// Start of the next day whose programs are not generated yet.
    next_day: i64,
    /// Programs before this time are skipped (the fleet's start).
    not_before: i64,
}

impl ProgramSchedule {
    /// A schedule of `per_day` programs a day on average, from `start_ms` on.
    pub(crate) fn new(per_day: f64, start_ms: i64) -> Self {
        Self {
            per_day,
            queue: VecDeque::new(),
            next_day: start_ms.div_euclid(DAY_MS) * DAY_MS,
            not_before: start_ms,
        }
    }

    /// The next program's start (or, with none queued, the next day to generate).
    pub(crate) fn next_start(&self) -> i64 {
        self.queue.front().copied().unwrap_or(self.next_day)
    }

    /// Takes the next program's start time.
    pub(crate) fn pop(&mut self) -> Option<i64> {
        self.queue.pop_front()
    }

    /// Generates programs day by day until at least one is queued; `hour_of_day`
    /// draws a program's start hour (0-24).
    pub(crate) fn refill(
        &mut self,
        core: &mut DeviceCore,
        mut hour_of_day: impl FnMut(&mut DeviceCore) -> f64,
    ) {
        while self.queue.is_empty() {
            let n = Poisson::new(self.per_day)
                .map(|p| p.sample(&mut core.rng) as usize)
                .unwrap_or(0);
            let mut times: Vec<i64> = (0..n)
                .map(|_| self.next_day + (hour_of_day(core) * HOUR_MS as f64) as i64)
                .filter(|&t| t >= self.not_before)
                .collect();
            times.sort_unstable();
            self.queue.extend(times);
            self.next_day += DAY_MS;
        }
    }
}
