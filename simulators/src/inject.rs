//! Fault injection for live publishing: the ways real devices and networks misbehave.
//!
//! [`crate::publish_live`] passes every message the fleet produces through an
//! injector configured by [`InjectConfig`]. With the default config (every probability
//! 0) it publishes exactly the fleet's messages. Otherwise it adds, reorders, delays or
//! alters messages as below, and [`InjectCounts`] (in [`crate::LiveSummary`]) says how
//! many of each kind it *published*, so a test can reconcile what was sent with what
//! fixahead stored, dropped and dead-lettered.
//!
//! # Injection kinds and what fixahead does with them
//!
//! | name | probability applies to | what is published | effect in fixahead |
//! |---|---|---|---|
//! | `malformed_json` | each good telemetry message | an extra copy of it with the closing `}` cut off | dead letter, reason `malformed_json` |
//! | `wrong_type` | each good telemetry message | an extra copy with one reading written as a string (`"3.42"`) | dead letter, reason `wrong_type` |
//! | `out_of_range` | each good telemetry message | an extra copy with one reading set to 1e15 (finite, far outside any physical range) | dead letter, reason `out_of_range` |
//! | `oversized` | each good telemetry message | an extra copy padded with an unknown `pad` field to 17 KiB (valid JSON, over the 16 KiB limit) | dead letter, reason `payload_too_large` |
//! | `duplicate` | each good message (telemetry or fault) | the same bytes again, right after the original | acknowledged and dropped as a duplicate (counted in `duplicates`), stored once |
//! | `out_of_order` | each good message | the device's next message is published first, then this one | both stored; the late one does not move the device's features |
//! | `clock_skew` | each **device** (a share of the fleet, chosen once) | every message of a skewed device has its `ts` shifted by a fixed 1-60 minutes, earlier or later | stored with the shifted `ts` |
//! | `offline_gap` | each good message of a device that is online | the device goes offline: this and its following messages are held for 30 min to 6 h of simulated time, then published together in per-device order | all stored, late |
//! | `burst` | each good telemetry message | 2-5 extra valid telemetry messages (the same readings, `ts` 1 s apart, fresh `seq`s) right after it | all stored |
//!
//! The four *bad* kinds are extra messages on the device's real topic, built from a
//! real payload (after any clock skew) and corrupted so that exactly one rule of wire
//! protocol v1 breaks: each becomes exactly one dead letter with the reason in the
//! table, and nothing is stored for it. They carry the `seq` of the message they copy,
//! which is harmless: a rejected message never claims a `seq`.
//!
//! Sequence numbers: a burst's extras take the `seq`s right after the message they
//! follow, and every later message of that device is renumbered (its fleet `seq` plus
//! the number of burst extras the device has sent so far). So per device `seq` still
//! increases by one per good message and never collides; the fleet's own numbering is
//! shifted, not reused.
//!
//! Held messages (out-of-order, offline) are published when the run ends normally (at
//! `max_duration`); on cancellation they are dropped, and not counted.
//!
//! # Accounting
//!
//! For a run whose every publish was acknowledged ([`crate::LiveSummary::acked`] equals
//! `published`):
//!
//! - stored telemetry + stored faults = `good` (telemetry + faults, burst extras
//!   included);
//! - duplicates dropped = `injected.duplicate`;
//! - dead letters by reason = `expected_dead_letters` (`malformed_json`, `wrong_type`,
//!   `out_of_range`, `payload_too_large`), and no others;
//! - `published` = `status` + `good` + `injected.duplicate` + the four bad counts.
//!
//! The decisions are deterministic: the injector's random stream is seeded from the
//! fleet's seed, and decisions are taken in the fleet's (deterministic) message order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use domain::{MessageKind, Timestamp, MAX_PAYLOAD_BYTES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result, WireMessage};

/// Fault injection probabilities, each 0-1. The default injects nothing.
///
/// See the [module documentation](self) for what each kind publishes and how fixahead
/// treats it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InjectConfig {
    /// Per good telemetry message: also publish a copy that is not JSON.
    pub malformed_json: f64,
    /// Per good telemetry message: also publish a copy with a reading as a string.
    pub wrong_type: f64,
    /// Per good telemetry message: also publish a copy with a reading out of range.
    pub out_of_range: f64,
    /// Per good telemetry message: also publish a copy over the 16 KiB limit.
    pub oversized: f64,
    /// Per good message: publish it twice.
    pub duplicate: f64,
    /// Per good message: publish it after the device's next message.
    pub out_of_order: f64,
    /// Share of devices whose clock is off by 1-60 minutes (either way).
    pub clock_skew: f64,
    /// Per good message of an online device: go offline for 30 min - 6 h (simulated),
    /// holding messages, then publish them together.
    pub offline_gap: f64,
    /// Per good telemetry message: follow it with 2-5 extra valid telemetry messages.
    pub burst: f64,
}

impl InjectConfig {
    /// The names [`InjectConfig::parse`] accepts, in field order.
    pub const NAMES: [&'static str; 9] = [
        "malformed_json",
        "wrong_type",
        "out_of_range",
        "oversized",
        "duplicate",
        "out_of_order",
        "clock_skew",
        "offline_gap",
        "burst",
    ];

    /// Parses a spec like `malformed_json=0.01,duplicate=0.02`: comma-separated
    /// `name=probability` pairs, names from [`InjectConfig::NAMES`], probabilities
    /// 0-1. `all=P` sets every kind (later pairs override it). Kinds not named stay 0;
    /// an empty spec injects nothing.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |msg: String| Error::InvalidInject(msg);
        let mut config = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                bad(format!(
                    "expected name=probability, got {pair:?} (names: {})",
                    Self::NAMES.join(", ")
                ))
            })?;
            let (name, value) = (name.trim(), value.trim());
            let p: f64 = value
                .parse()
                .map_err(|_| bad(format!("{name}: {value:?} is not a number")))?;
            if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
                return Err(bad(format!(
                    "{name} must be a probability 0-1, got {value}"
                )));
            }
            if seen.contains(&name) {
                return Err(bad(format!("{name} is given twice")));
            }
            seen.push(name);
            if name == "all" {
                for n in Self::NAMES {
                    if let Some(f) = config.field_mut(n) {
                        *f = p;
                    }
                }
                continue;
            }
            let field = config.field_mut(name).ok_or_else(|| {
                bad(format!(
                    "unknown kind {name:?}; valid kinds: {}, all",
                    Self::NAMES.join(", ")
                ))
            })?;
            *field = p;
        }
        Ok(config)
    }

    /// Checks that every probability is within 0-1.
    pub fn validate(&self) -> Result<()> {
        for (name, p) in self.fields() {
            if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
                return Err(Error::InvalidInject(format!(
                    "{name} must be a probability 0-1, got {p}"
                )));
            }
        }
        Ok(())
    }

    /// Whether any kind has a non-zero probability.
    pub fn is_enabled(&self) -> bool {
        self.fields().iter().any(|(_, p)| *p > 0.0)
    }

    /// `(name, probability)` of every kind, in [`InjectConfig::NAMES`] order.
    pub fn fields(&self) -> [(&'static str, f64); 9] {
        [
            ("malformed_json", self.malformed_json),
            ("wrong_type", self.wrong_type),
            ("out_of_range", self.out_of_range),
            ("oversized", self.oversized),
            ("duplicate", self.duplicate),
            ("out_of_order", self.out_of_order),
            ("clock_skew", self.clock_skew),
            ("offline_gap", self.offline_gap),
            ("burst", self.burst),
        ]
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut f64> {
        Some(match name {
            "malformed_json" => &mut self.malformed_json,
            "wrong_type" => &mut self.wrong_type,
            "out_of_range" => &mut self.out_of_range,
            "oversized" => &mut self.oversized,
            "duplicate" => &mut self.duplicate,
            "out_of_order" => &mut self.out_of_order,
            "clock_skew" => &mut self.clock_skew,
            "offline_gap" => &mut self.offline_gap,
            "burst" => &mut self.burst,
            _ => return None,
        })
    }
}

/// How many messages of each injection kind were published (see the
/// [module documentation](self) for what each count means).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InjectCounts {
    /// Bad messages that are not JSON (dead letters `malformed_json`).
    pub malformed_json: u64,
    /// Bad messages with a reading of the wrong type (dead letters `wrong_type`).
    pub wrong_type: u64,
    /// Bad messages with a reading out of range (dead letters `out_of_range`).
    pub out_of_range: u64,
    /// Bad messages over 16 KiB (dead letters `payload_too_large`).
    pub oversized: u64,
    /// Re-sent copies of good messages (dropped by fixahead as duplicates).
    pub duplicate: u64,
    /// Good messages published after the device's next message (stored).
    pub out_of_order: u64,
    /// Good messages published with a skewed `ts` (stored).
    pub clock_skew: u64,
    /// Good messages held during an offline gap and published late (stored).
    pub offline_gap: u64,
    /// Extra telemetry messages sent in bursts (stored; part of `good`).
    pub burst: u64,
    /// Devices whose clock is skewed.
    pub skewed_devices: u64,
    /// Offline gaps that ended (their held messages were published).
    pub offline_gaps: u64,
    /// Bursts sent.
    pub bursts: u64,
}

impl InjectCounts {
    /// Bad messages published: each should be exactly one dead letter.
    pub fn dead_letters(&self) -> u64 {
        self.malformed_json + self.wrong_type + self.out_of_range + self.oversized
    }

    /// The dead letters fixahead should record for them, by reason (`malformed_json`,
    /// `wrong_type`, `out_of_range`, `payload_too_large`); reasons with none are left out.
    pub fn expected_dead_letters(&self) -> BTreeMap<String, u64> {
        BadKind::ALL
            .iter()
            .map(|k| (k.reason().to_owned(), self.bad(*k)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn bad(&self, kind: BadKind) -> u64 {
        match kind {
            BadKind::MalformedJson => self.malformed_json,
            BadKind::WrongType => self.wrong_type,
            BadKind::OutOfRange => self.out_of_range,
            BadKind::Oversized => self.oversized,
        }
    }

    fn bad_mut(&mut self, kind: BadKind) -> &mut u64 {
        match kind {
            BadKind::MalformedJson => &mut self.malformed_json,
            BadKind::WrongType => &mut self.wrong_type,
            BadKind::OutOfRange => &mut self.out_of_range,
            BadKind::Oversized => &mut self.oversized,
        }
    }
}

/// A bad message kind, each breaking exactly one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadKind {
    MalformedJson,
    WrongType,
    OutOfRange,
    Oversized,
}

impl BadKind {
    pub(crate) const ALL: [BadKind; 4] = [
        Self::MalformedJson,
        Self::WrongType,
        Self::OutOfRange,
        Self::Oversized,
    ];

    /// The dead-letter reason fixahead records (`domain::RejectReason::as_str`).
    pub(crate) const fn reason(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::WrongType => "wrong_type",
            Self::OutOfRange => "out_of_range",
            Self::Oversized => "payload_too_large",
        }
    }

    fn probability(self, config: &InjectConfig) -> f64 {
        match self {
            Self::MalformedJson => config.malformed_json,
            Self::WrongType => config.wrong_type,
            Self::OutOfRange => config.out_of_range,
            Self::Oversized => config.oversized,
        }
    }

    /// The corrupted payload, from a valid telemetry payload object.
    pub(crate) fn corrupt(self, payload: &Value) -> Vec<u8> {
        match self {
            Self::MalformedJson => {
                let mut bytes = to_bytes(payload);
                // `{...}` without its closing brace: "EOF while parsing an object".
                bytes.pop();
                bytes
            }
            Self::WrongType => {
                let mut p = payload.clone();
                if let Some((_, v)) = first_reading(&mut p) {
                    *v = Value::String(v.to_string());
                }
                to_bytes(&p)
            }
            Self::OutOfRange => {
                let mut p = payload.clone();
                if let Some((_, v)) = first_reading(&mut p) {
                    *v = Value::from(OUT_OF_RANGE_READING);
                }
                to_bytes(&p)
            }
            Self::Oversized => {
                let mut p = payload.clone();
                if let Some(obj) = p.as_object_mut() {
                    obj.insert("pad".into(), Value::String("x".repeat(OVERSIZED_PAD_BYTES)));
                }
                to_bytes(&p)
            }
        }
    }
}

/// A reading no physical channel can produce, yet finite.
const OUT_OF_RANGE_READING: f64 = 1e15;
/// Padding of an oversized message: the payload ends up just over 17 KiB.
const OVERSIZED_PAD_BYTES: usize = MAX_PAYLOAD_BYTES + 1024;
/// Burst extras are this far apart in event time.
const BURST_SPACING_MS: i64 = 1_000;
/// Clock skew bounds (either direction).
const SKEW_MS: (i64, i64) = (60_000, 3_600_000);
/// Offline gap bounds, simulated time.
const GAP_MS: (i64, i64) = (30 * 60_000, 6 * 3_600_000);

fn first_reading(payload: &mut Value) -> Option<(&String, &mut Value)> {
    payload
        .get_mut("readings")
        .and_then(Value::as_object_mut)
        .and_then(|r| r.iter_mut().next())
}

fn to_bytes(payload: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail: its map keys are strings.
    serde_json::to_vec(payload).unwrap_or_default()
}

/// What a publish is, for the summary's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// A retained status message.
    Status,
    /// A good telemetry message (stored).
    Telemetry,
    /// A good fault message (stored).
    Fault,
    /// A re-sent good message (dropped as a duplicate).
    Duplicate,
    /// A bad message (dead-lettered).
    Bad(BadKind),
}

/// Flags of a good message, counted when it is published.
pub(crate) mod flag {
    pub(crate) const SKEWED: u8 = 1;
    pub(crate) const SWAPPED: u8 = 2;
    pub(crate) const HELD: u8 = 4;
    pub(crate) const GAP_FIRST: u8 = 8;
    pub(crate) const BURST: u8 = 16;
    pub(crate) const BURST_FIRST: u8 = 32;
}

/// One publish, ready to go.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    /// Index of the device in the fleet (picks the connection).
    pub(crate) device: usize,
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) retain: bool,
    pub(crate) class: Class,
    pub(crate) flags: u8,
}

impl Outgoing {
    /// Adds this publish to the counts (call once it is handed to the client).
    #[cfg(test)]
    fn count(&self, counts: &mut InjectCounts) {
        count(self.class, self.flags, counts);
    }
}

/// Adds a publish of this class and flags to the counts.
pub(crate) fn count(class: Class, flags: u8, counts: &mut InjectCounts) {
    match class {
        Class::Duplicate => counts.duplicate += 1,
        Class::Bad(kind) => *counts.bad_mut(kind) += 1,
        Class::Status => {}
        Class::Telemetry | Class::Fault => {
            counts.clock_skew += u64::from(flags & flag::SKEWED != 0);
            counts.out_of_order += u64::from(flags & flag::SWAPPED != 0);
            counts.offline_gap += u64::from(flags & flag::HELD != 0);
            counts.offline_gaps += u64::from(flags & flag::GAP_FIRST != 0);
            counts.burst += u64::from(flags & flag::BURST != 0);
            counts.bursts += u64::from(flags & flag::BURST_FIRST != 0);
        }
    }
}

#[derive(Default)]
struct DeviceState {
    /// Clock skew, ms (0: none).
    skew_ms: i64,
    /// Added to the fleet's `seq` (burst extras sent so far).
    seq_offset: u64,
    /// A unit held back to be published after the device's next one.
    swapped: Option<Vec<Outgoing>>,
    /// An offline gap in progress: until when (event time) and what is held.
    gap: Option<(i64, Vec<Outgoing>)>,
}

/// Applies an [`InjectConfig`] to a fleet's message stream.
pub(crate) struct Injector {
    config: InjectConfig,
    enabled: bool,
    rng: ChaCha8Rng,
    devices: Vec<DeviceState>,
    /// Offline gaps by end time, to release them when simulated time passes it.
    gaps: BinaryHeap<Reverse<(i64, usize)>>,
    skewed_devices: u64,
}

impl Injector {
    /// An injector for a fleet of `devices`, its decisions seeded by `seed`.
    pub(crate) fn new(config: InjectConfig, devices: usize, seed: u64) -> Self {
        let enabled = config.is_enabled();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x696e_6a65_6374_0001);
        let mut states = Vec::new();
        let mut skewed_devices = 0;
        if enabled {
            states.resize_with(devices, DeviceState::default);
            if config.clock_skew > 0.0 {
                for state in &mut states {
                    if rng.gen_bool(config.clock_skew) {
                        let ms = rng.gen_range(SKEW_MS.0..=SKEW_MS.1);
                        state.skew_ms = if rng.gen_bool(0.5) { ms } else { -ms };
                        skewed_devices += 1;
                    }
                }
            }
        }
        Self {
            config,
            enabled,
            rng,
            devices: states,
            gaps: BinaryHeap::new(),
            skewed_devices,
        }
    }

    /// Devices with a skewed clock.
    pub(crate) fn skewed_devices(&self) -> u64 {
        self.skewed_devices
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p.min(1.0))
    }

    /// Takes one fleet message of device `device` and appends what to publish now.
    pub(crate) fn message(&mut self, device: usize, msg: WireMessage, out: &mut Vec<Outgoing>) {
        let class = match msg.kind {
            MessageKind::Telemetry => Class::Telemetry,
            _ => Class::Fault,
        };
        let topic = msg.topic();
        if !self.enabled || device >= self.devices.len() {
            out.push(Outgoing {
                device,
                payload: msg.payload_bytes(),
                topic,
                retain: false,
                class,
                flags: 0,
            });
            return;
        }
        let ts = msg.ts.millis();
        let fleet_seq = msg.seq();
        let mut payload = msg.payload;
        let (skew_ms, seq_offset) = {
            let d = &self.devices[device];
            (d.skew_ms, d.seq_offset)
        };
        let seq = fleet_seq.saturating_add(seq_offset);
        let mut flags = 0;
        if let Some(obj) = payload.as_object_mut() {
            if seq_offset > 0 {
                obj.insert("seq".into(), Value::from(seq));
            }
            if skew_ms != 0 {
                obj.insert(
                    "ts".into(),
                    Value::String(Timestamp(ts.saturating_add(skew_ms)).to_rfc3339()),
                );
                flags |= flag::SKEWED;
            }
        }
        let good = Outgoing {
            device,
            topic,
            payload: to_bytes(&payload),
            retain: false,
            class,
            flags,
        };
        let mut unit = Vec::with_capacity(1);
        if self.chance(self.config.duplicate) {
            let mut dup = good.clone();
            dup.class = Class::Duplicate;
            dup.flags = 0;
            unit.push(good);
            unit.push(dup);
        } else {
            unit.push(good);
        }
        if class == Class::Telemetry {
            for kind in BadKind::ALL {
                if self.chance(kind.probability(&self.config)) {
                    unit.push(Outgoing {
                        device,
                        topic: unit[0].topic.clone(),
                        payload: kind.corrupt(&payload),
                        retain: false,
                        class: Class::Bad(kind),
                        flags: 0,
                    });
                }
            }
            if self.chance(self.config.burst) {
                let extras: u64 = self.rng.gen_range(2..=5);
                for j in 1..=extras {
                    let mut p = payload.clone();
                    if let Some(obj) = p.as_object_mut() {
                        obj.insert("seq".into(), Value::from(seq.saturating_add(j)));
                        let extra_ts = ts + skew_ms + j as i64 * BURST_SPACING_MS;
                        obj.insert("ts".into(), Value::String(Timestamp(extra_ts).to_rfc3339()));
                    }
                    let mut f = flags | flag::BURST;
                    if j == 1 {
                        f |= flag::BURST_FIRST;
                    }
                    unit.push(Outgoing {
                        device,
                        topic: unit[0].topic.clone(),
                        payload: to_bytes(&p),
                        retain: false,
                        class: Class::Telemetry,
                        flags: f,
                    });
                }
                self.devices[device].seq_offset += extras;
            }
        }

        // Out of order: hold this unit until the device's next one has gone out.
        if let Some(held) = self.devices[device].swapped.take() {
            self.emit(device, ts, unit, out);
            self.emit(device, ts, held, out);
        } else if self.chance(self.config.out_of_order) {
            unit[0].flags |= flag::SWAPPED;
            self.devices[device].swapped = Some(unit);
        } else {
            self.emit(device, ts, unit, out);
        }
    }

    /// Passes a unit through the offline-gap stage.
    fn emit(&mut self, device: usize, ts: i64, mut unit: Vec<Outgoing>, out: &mut Vec<Outgoing>) {
        let d = &mut self.devices[device];
        if let Some((until, held)) = &mut d.gap {
            if ts >= *until {
                out.append(held);
                d.gap = None;
                out.append(&mut unit);
            } else {
                mark_held(&mut unit, false);
                held.append(&mut unit);
            }
            return;
        }
        if self.chance(self.config.offline_gap) {
            let until = ts.saturating_add(self.rng.gen_range(GAP_MS.0..=GAP_MS.1));
            mark_held(&mut unit, true);
            self.devices[device].gap = Some((until, unit));
            self.gaps.push(Reverse((until, device)));
        } else {
            out.append(&mut unit);
        }
    }

    /// Ends the offline gaps that are over at simulated time `now` (epoch ms).
    pub(crate) fn tick(&mut self, now: i64, out: &mut Vec<Outgoing>) {
        while let Some(&Reverse((until, device))) = self.gaps.peek() {
            if until > now {
                break;
            }
            self.gaps.pop();
            let d = &mut self.devices[device];
            if d.gap.as_ref().is_some_and(|(u, _)| *u == until) {
                if let Some((_, mut held)) = d.gap.take() {
                    out.append(&mut held);
                }
            }
        }
    }

    /// Everything still held, in per-device order (end of a run).
    pub(crate) fn flush(&mut self, out: &mut Vec<Outgoing>) {
        self.gaps.clear();
        for d in &mut self.devices {
            if let Some((_, mut held)) = d.gap.take() {
                out.append(&mut held);
            }
            if let Some(mut held) = d.swapped.take() {
                out.append(&mut held);
            }
        }
    }
}

/// Marks a unit's good messages as held in an offline gap.
fn mark_held(unit: &mut [Outgoing], first_of_gap: bool) {
    let mut first = first_of_gap;
    for o in unit {
        if matches!(o.class, Class::Telemetry | Class::Fault) {
            o.flags |= flag::HELD;
            if first {
                o.flags |= flag::GAP_FIRST;
                first = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use domain::{Message, ProfileSet};

    use super::*;
    use crate::{Fleet, FleetConfig, SimEvent};

    #[test]
    fn parses_specs() {
        let c = InjectConfig::parse("malformed_json=0.01, duplicate=0.02").unwrap();
        assert_eq!(c.malformed_json, 0.01);
        assert_eq!(c.duplicate, 0.02);
        assert_eq!(c.burst, 0.0);
        assert!(c.is_enabled());
        assert_eq!(InjectConfig::parse("").unwrap(), InjectConfig::default());
        assert!(!InjectConfig::default().is_enabled());
        let all = InjectConfig::parse("all=0.1,burst=0").unwrap();
        assert_eq!(all.clock_skew, 0.1);
        assert_eq!(all.burst, 0.0);
        let e = InjectConfig::parse("toaster=0.1").unwrap_err().to_string();
        assert!(
            e.contains("toaster") && e.contains("malformed_json") && e.contains("burst"),
            "{e}"
        );
        for bad in [
            "duplicate",
            "duplicate=x",
            "duplicate=1.5",
            "duplicate=-0.1",
            "duplicate=NaN",
            "burst=0.1,burst=0.2",
        ] {
            assert!(InjectConfig::parse(bad).is_err(), "{bad}");
        }
        assert!(InjectConfig {
            burst: 2.0,
            ..InjectConfig::default()
        }
        .validate()
        .is_err());
    }

    fn fleet_messages(devices: usize, days: i64) -> (Vec<(usize, WireMessage)>, usize) {
        let mut fleet = Fleet::new(
            FleetConfig {
                devices,
                failure_rate_per_year: 10.0,
                ..FleetConfig::default()
            },
            &ProfileSet::builtin(),
        )
        .unwrap();
        let index: HashMap<String, usize> = fleet
            .devices()
            .iter()
            .enumerate()
            .map(|(i, d)| (d.device_id.as_str().to_owned(), i))
            .collect();
        let until = Timestamp(FleetConfig::DEFAULT_START.millis() + days * Timestamp::DAY_MS);
        let msgs = fleet
            .advance(until)
            .into_iter()
            .filter_map(|e| match e {
                SimEvent::Message(m) => Some((index[m.device_id.as_str()], m)),
                SimEvent::GroundTruth(_) => None,
            })
            .collect();
        (msgs, devices)
    }

    #[test]
    fn every_bad_kind_breaks_exactly_its_rule() {
        let profiles = ProfileSet::builtin();
        let (msgs, _) = fleet_messages(6, 3);
        let mut seen = 0;
        for (_, m) in msgs
            .iter()
            .filter(|(_, m)| m.kind == MessageKind::Telemetry)
        {
            for kind in BadKind::ALL {
                let bytes = kind.corrupt(&m.payload);
                let err = domain::decode(&m.topic(), &bytes, &profiles)
                    .expect_err("a bad message is rejected");
                assert_eq!(err.reason.as_str(), kind.reason(), "{kind:?}: {err}");
            }
            seen += 1;
        }
        assert!(seen > 20, "{seen}");
    }

    /// What fixahead would do with a stream of publishes: store, drop as duplicate, or
    /// dead-letter.
    #[derive(Default, Debug)]
    struct Outcome {
        stored: HashSet<(String, u64)>,
        duplicates: u64,
        dead: BTreeMap<String, u64>,
        /// Per device, the seqs in publish order.
        order: HashMap<String, Vec<u64>>,
    }

    fn ingest(out: &[Outgoing]) -> Outcome {
        let profiles = ProfileSet::builtin();
        let mut o = Outcome::default();
        for p in out {
            match domain::decode(&p.topic, &p.payload, &profiles) {
                Ok(Message::Telemetry(t)) => {
                    o.order
                        .entry(t.device_id.as_str().into())
                        .or_default()
                        .push(t.seq);
                    if !o.stored.insert((t.device_id.as_str().into(), t.seq)) {
                        o.duplicates += 1;
                    }
                }
                Ok(Message::Fault(f)) => {
                    o.order
                        .entry(f.device_id.as_str().into())
                        .or_default()
                        .push(f.seq);
                    if !o.stored.insert((f.device_id.as_str().into(), f.seq)) {
                        o.duplicates += 1;
                    }
                }
                Ok(Message::Status(_) | Message::Command(_) | Message::CommandResult(_)) => {}
                Err(r) => *o.dead.entry(r.reason.as_str().into()).or_default() += 1,
            }
        }
        o
    }

    #[test]
    fn injection_accounting_is_exact() {
        let (msgs, devices) = fleet_messages(40, 20);
        let config = InjectConfig {
            malformed_json: 0.03,
            wrong_type: 0.03,
            out_of_range: 0.03,
            oversized: 0.02,
            duplicate: 0.05,
            out_of_order: 0.05,
            clock_skew: 0.3,
            offline_gap: 0.02,
            burst: 0.03,
        };
        let mut injector = Injector::new(config, devices, 5);
        let mut out = Vec::new();
        let mut last_tick = i64::MIN;
        for (device, m) in msgs.iter().cloned() {
            // Tick every simulated hour, as the live loop would.
            let hour = m.ts.millis() / Timestamp::HOUR_MS;
            if hour != last_tick {
                injector.tick(m.ts.millis(), &mut out);
                last_tick = hour;
            }
            injector.message(device, m, &mut out);
        }
        injector.flush(&mut out);

        let mut counts = InjectCounts {
            skewed_devices: injector.skewed_devices(),
            ..InjectCounts::default()
        };
        let mut good = 0;
        for o in &out {
            o.count(&mut counts);
            good += u64::from(matches!(o.class, Class::Telemetry | Class::Fault));
        }
        for (name, n) in [
            ("malformed_json", counts.malformed_json),
            ("wrong_type", counts.wrong_type),
            ("out_of_range", counts.out_of_range),
            ("oversized", counts.oversized),
            ("duplicate", counts.duplicate),
            ("out_of_order", counts.out_of_order),
            ("clock_skew", counts.clock_skew),
            ("offline_gap", counts.offline_gap),
            ("burst", counts.burst),
            ("skewed_devices", counts.skewed_devices),
            ("offline_gaps", counts.offline_gaps),
            ("bursts", counts.bursts),
        ] {
            assert!(n > 0, "nothing counted for {name}: {counts:?}");
        }
        assert_eq!(good, msgs.len() as u64 + counts.burst);

        let outcome = ingest(&out);
        assert_eq!(
            outcome.stored.len() as u64,
            good,
            "every good message stored"
        );
        assert_eq!(outcome.duplicates, counts.duplicate);
        assert_eq!(outcome.dead, counts.expected_dead_letters());
        assert_eq!(
            out.len() as u64,
            good + counts.duplicate + counts.dead_letters()
        );
        // Per device, the stored seqs are 1..=n: bursts renumber, nothing collides.
        let mut per_device: HashMap<&str, Vec<u64>> = HashMap::new();
        for (d, s) in &outcome.stored {
            per_device.entry(d).or_default().push(*s);
        }
        for (d, mut seqs) in per_device {
            seqs.sort_unstable();
            assert!(
                seqs.iter().copied().eq(1..=seqs.len() as u64),
                "{d}: {seqs:?}"
            );
        }
        // Out of order is the only reordering (offline gaps keep per-device order).
        let inversions: u64 = outcome
            .order
            .values()
            .map(|seqs| {
                let mut dedup = seqs.clone();
                dedup.dedup();
                dedup.windows(2).filter(|w| w[0] > w[1]).count() as u64
            })
            .sum();
        assert!(
            inversions > 0 && inversions <= counts.out_of_order,
            "{inversions}"
        );

        // Deterministic.
        let mut again = Injector::new(injector.config.clone(), devices, 5);
        let mut out2 = Vec::new();
        let mut last_tick = i64::MIN;
        for (device, m) in msgs.iter().cloned() {
            let hour = m.ts.millis() / Timestamp::HOUR_MS;
            if hour != last_tick {
                again.tick(m.ts.millis(), &mut out2);
                last_tick = hour;
            }
            again.message(device, m, &mut out2);
        }
        again.flush(&mut out2);
        assert!(out
            .iter()
            .map(|o| &o.payload)
            .eq(out2.iter().map(|o| &o.payload)));
    }

    #[test]
    fn no_injection_passes_messages_through() {
        let (msgs, devices) = fleet_messages(4, 2);
        let mut injector = Injector::new(InjectConfig::default(), devices, 1);
        let mut out = Vec::new();
        for (device, m) in msgs.iter().cloned() {
            injector.message(device, m, &mut out);
        }
        injector.flush(&mut out);
        assert_eq!(out.len(), msgs.len());
        for (o, (_, m)) in out.iter().zip(&msgs) {
            assert_eq!(o.payload, m.payload_bytes());
            assert_eq!(o.topic, m.topic());
        }
    }
}
