//! The feature engine: one implementation for training, evaluation and live scoring.
//!
//! A [`FeatureSchema`] is derived from a device profile, so a new device type needs no
//! code. A [`DeviceState`] is the O(1) running summary of one device: every message
//! updates it in constant time and memory, and [`DeviceState::write_features`] turns it
//! into the feature vector the schema names.

use std::collections::HashMap;
use std::sync::Arc;

use domain::{Condition, DerivedChannel, FaultState, Message, Profile, Severity, Timestamp};

/// Time constant of the fast windows (EWMA, fault counts): one day of event time.
pub const TAU_FAST_MS: f64 = Timestamp::DAY_MS as f64;
/// Time constant of the slow windows (EWMA, spread, min/max, fault counts): seven days.
pub const TAU_SLOW_MS: f64 = 7.0 * Timestamp::DAY_MS as f64;
/// Time constant of the device's own baseline (`ewma_30d`): thirty days. A precursor
/// builds over days to weeks, so the fast average departs from this baseline while the
/// baseline itself still reflects the device's normal; seasons move both together.
pub const TAU_LONG_MS: f64 = 30.0 * Timestamp::DAY_MS as f64;
/// `{channel}.shift_z` is clamped to this magnitude (a near-constant channel would
/// otherwise turn a rounding step into an enormous score).
pub const SHIFT_Z_CAP: f64 = 50.0;
/// Event time a device must have reported for before its features are used: one slow
/// time constant (see [`DeviceState::is_warm`]).
pub const WARM_UP_MS: i64 = 7 * Timestamp::DAY_MS;
/// `fault.{component}.hours_since` never exceeds this (and is this when the component
/// never faulted): 30 days.
pub const HOURS_SINCE_CAP: f64 = 720.0;

/// Per-channel features, in order; names are `{channel}.{feature}`.
///
/// * `ewma_fast`, `ewma_slow`: time-aware EWMAs, `alpha = 1 - exp(-dt / tau)` with `tau`
///   [`TAU_FAST_MS`] and [`TAU_SLOW_MS`].
/// * `std_slow`: exponentially weighted standard deviation with the slow constant.
/// * `trend`: `ewma_fast - ewma_slow`.
/// * `last`: the latest reading.
/// * `min_7d`, `max_7d`: decaying extremes: a new reading replaces the extreme if it
///   exceeds it, otherwise the extreme relaxes toward `ewma_slow` with the slow constant.
/// * `ewma_30d`: the device's own baseline, an EWMA with [`TAU_LONG_MS`].
/// * `shift`: `ewma_fast - ewma_30d`, the departure from the device's own normal. Units
///   differ between devices of one type (a model's drain time, a room's temperature);
///   the departure does not, so one threshold serves the whole fleet.
/// * `shift_z`: `shift / std_slow`, clamped to +-[`SHIFT_Z_CAP`] (0 while the spread is
///   still 0).
pub const CHANNEL_FEATURES: [&str; 10] = [
    "ewma_fast",
    "ewma_slow",
    "std_slow",
    "trend",
    "last",
    "min_7d",
    "max_7d",
    "ewma_30d",
    "shift",
    "shift_z",
];

/// Per-component features, in order; names are `fault.{component}.{feature}`.
///
/// * `count_1d`, `count_7d`: exponentially decayed counts of raised fault codes whose
///   catalogue entry points at the component (time constants one and seven days).
/// * `hours_since`: hours since the last such fault, capped at [`HOURS_SINCE_CAP`].
/// * `major_count_7d`: like `count_7d`, for codes of severity major or critical only
///   (a technician's "this is real" as opposed to informational codes).
/// * `hours_since_repair`: hours since the component was last seen repaired, capped at
///   [`HOURS_SINCE_CAP`]. The wire protocol has no repair message, so a repair is read
///   from the device itself: a *critical* code of the component being cleared (critical
///   codes latch until a technician fixes the part; docs/protocol.md).
pub const COMPONENT_FEATURES: [&str; 5] = [
    "count_1d",
    "count_7d",
    "hours_since",
    "major_count_7d",
    "hours_since_repair",
];

/// Device-wide features, in order, after the channel and component features.
///
/// * `fault.all.count_7d`: decayed count of every raised fault code (catalogued or not).
/// * `device.age_days`: days from the device's first message to its latest.
/// * `device.messages_log1p`: `ln(1 + messages applied)`.
pub const DEVICE_FEATURES: [&str; 3] = [
    "fault.all.count_7d",
    "device.age_days",
    "device.messages_log1p",
];

/// A derived channel with the indices of the measured channels it reads.
#[derive(Debug)]
struct Derived {
    def: DerivedChannel,
    /// Its two operands, in the order [`DerivedChannel::value`] takes them.
    operands: (usize, usize),
    /// Its conditions, each with the index of the channel it reads.
    when: Vec<(usize, Condition)>,
}

#[derive(Debug)]
struct SchemaInner {
    device_type: String,
    names: Vec<String>,
    channel_index: HashMap<String, usize>,
    /// Channel names in profile order, for the linear lookup of small profiles.
    channel_names: Vec<String>,
    /// Measured channels plus derived channels.
    n_channels: usize,
    /// Derived channels (ratios, then differences), in profile order after the measured
    /// ones.
    derived: Vec<Derived>,
    components: Vec<String>,
    /// Raised code -> (index of the component its catalogue entry points at, its
    /// severity is major or critical, it is critical).
    fault_component: HashMap<String, (usize, bool, bool)>,
}

/// The named features of one device type, derived from its profile.
///
/// Cheap to clone (an `Arc` inside). The order is: [`CHANNEL_FEATURES`] for each channel
/// in profile order, then for each of the profile's derived channels
/// ([`domain::DerivedChannel`]: ratios, then differences, each computed from two measured
/// channels of one message),
/// [`COMPONENT_FEATURES`] for each component in profile order, then
/// [`DEVICE_FEATURES`].
#[derive(Clone, Debug)]
pub struct FeatureSchema {
    inner: Arc<SchemaInner>,
}

impl FeatureSchema {
    /// Derives the schema of a profile.
    pub fn for_profile(profile: &Profile) -> FeatureSchema {
        let mut names = Vec::new();
        let channel_names = profile
            .channels()
            .iter()
            .map(|c| c.name.as_str())
            .chain(profile.derived().iter().map(DerivedChannel::name));
        for ch in channel_names {
            for f in CHANNEL_FEATURES {
                names.push(format!("{ch}.{f}"));
            }
        }
        let components: Vec<String> = profile
            .components()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        for c in &components {
            for f in COMPONENT_FEATURES {
                names.push(format!("fault.{c}.{f}"));
            }
        }
        names.extend(DEVICE_FEATURES.iter().map(|s| (*s).to_owned()));
        let channel_index = profile
            .channels()
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let fault_component = profile
            .faults()
            .iter()
            .filter_map(|f| {
                let comp = f.component.as_deref()?;
                let idx = components.iter().position(|c| c == comp)?;
                Some((
                    f.code.clone(),
                    (
                        idx,
                        f.severity >= Severity::Major,
                        f.severity == Severity::Critical,
                    ),
                ))
            })
            .collect();
        FeatureSchema {
            inner: Arc::new(SchemaInner {
                device_type: profile.device_type().to_owned(),
                names,
                channel_index,
                channel_names: profile.channels().iter().map(|c| c.name.clone()).collect(),
                n_channels: profile.channels().len() + profile.derived().len(),
                // A profile validates its operands and conditions, so every lookup
                // succeeds.
                derived: profile
                    .derived()
                    .iter()
                    .filter_map(|d| {
                        let (a, b) = d.operands();
                        let when = d
                            .when()
                            .iter()
                            .map(|c| Some((profile.channel_index(&c.channel)?, c.clone())))
                            .collect::<Option<Vec<_>>>()?;
                        Some(Derived {
                            def: d.clone(),
                            operands: (profile.channel_index(a)?, profile.channel_index(b)?),
                            when,
                        })
                    })
                    .collect(),
                components,
                fault_component,
            }),
        }
    }

    /// The device type the schema belongs to.
    pub fn device_type(&self) -> &str {
        &self.inner.device_type
    }

    /// Feature names, in vector order.
    pub fn names(&self) -> &[String] {
        &self.inner.names
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.inner.names.len()
    }

    /// Whether the schema has no features (never true for a valid profile).
    pub fn is_empty(&self) -> bool {
        self.inner.names.is_empty()
    }

    /// Index of a channel. A linear scan for up to [`LINEAR_LOOKUP`] channels (a few
    /// string compares, cheaper than hashing the name on every reading), the hash map
    /// above that.
    fn channel(&self, name: &str) -> Option<usize> {
        let inner = &self.inner;
        if inner.channel_names.len() <= LINEAR_LOOKUP {
            inner.channel_names.iter().position(|c| c == name)
        } else {
            inner.channel_index.get(name).copied()
        }
    }

    /// Components in profile order.
    pub fn components(&self) -> &[String] {
        &self.inner.components
    }
}

/// Profiles with at most this many channels look channels up by a linear scan.
const LINEAR_LOOKUP: usize = 24;

/// Marks a channel or component that has not been seen yet.
const NEVER: u32 = u32::MAX;

/// Running statistics of one channel: 32 bytes.
#[derive(Clone, Copy, Debug)]
struct ChannelState {
    fast: f32,
    slow: f32,
    long: f32,
    var: f32,
    last: f32,
    min: f32,
    max: f32,
    /// Seconds from the device's first message to this channel's latest reading.
    at_s: u32,
}

impl ChannelState {
    const EMPTY: ChannelState = ChannelState {
        fast: 0.0,
        slow: 0.0,
        long: 0.0,
        var: 0.0,
        last: 0.0,
        min: 0.0,
        max: 0.0,
        at_s: NEVER,
    };

    fn update(&mut self, x: f64, k: &Decay, at_s: u32) {
        if self.at_s == NEVER {
            *self = ChannelState {
                fast: x as f32,
                slow: x as f32,
                long: x as f32,
                var: 0.0,
                last: x as f32,
                min: x as f32,
                max: x as f32,
                at_s,
            };
            return;
        }
        let Decay {
            a_fast,
            keep_slow,
            a_slow,
            a_long,
            ..
        } = *k;
        let fast = f64::from(self.fast);
        let long = f64::from(self.long);
        let mut slow = f64::from(self.slow);
        let var = f64::from(self.var);
        let diff = x - slow;
        let incr = a_slow * diff;
        slow += incr;
        let var = (1.0 - a_slow) * (var + diff * incr);
        let max = x.max(slow + (f64::from(self.max) - slow) * keep_slow);
        let min = x.min(slow + (f64::from(self.min) - slow) * keep_slow);
        *self = ChannelState {
            fast: (fast + a_fast * (x - fast)) as f32,
            slow: slow as f32,
            long: (long + a_long * (x - long)) as f32,
            var: var.max(0.0) as f32,
            last: x as f32,
            min: min as f32,
            max: max as f32,
            at_s,
        };
    }
}

/// The EWMA weights for one time step `dt_ms`. The channels of one message usually share
/// their step, so [`DeviceState::update`] computes these once per distinct step rather
/// than three `exp` per channel.
#[derive(Clone, Copy, Debug)]
struct Decay {
    dt_ms: f64,
    a_fast: f64,
    keep_slow: f64,
    a_slow: f64,
    a_long: f64,
}

impl Decay {
    fn new(dt_ms: f64) -> Decay {
        let dt = dt_ms.max(0.0);
        let keep_slow = (-dt / TAU_SLOW_MS).exp();
        Decay {
            dt_ms,
            a_fast: 1.0 - (-dt / TAU_FAST_MS).exp(),
            keep_slow,
            a_slow: 1.0 - keep_slow,
            a_long: 1.0 - (-dt / TAU_LONG_MS).exp(),
        }
    }
}

/// Fault statistics of one component: 20 bytes.
#[derive(Clone, Copy, Debug)]
struct ComponentState {
    count_1d: f32,
    count_7d: f32,
    major_7d: f32,
    /// Seconds from the device's first message to the component's latest fault.
    last_fault_s: u32,
    /// Seconds from the device's first message to the component's latest repair.
    last_repair_s: u32,
}

/// The running feature state of one device.
///
/// O(1) in time and memory per message and per channel: a washer (7 channels, 3
/// components, one ratio channel) takes [`DeviceState::size_bytes`] = 380 bytes on a
/// 64-bit target.
///
/// **Event-time rule.** Features only move forward in event time: a message whose `ts`
/// is older than the latest `ts` this state has applied is *not* applied
/// ([`DeviceState::update`] returns `false`). Ingest still stores such a message; it just
/// does not move the features, so replaying a history and scoring live give the same
/// features whatever the arrival order of late data. Messages with an equal `ts` are
/// applied. Readings of channels the profile does not know are ignored; channels a
/// message does not carry keep their previous state. Status messages are ignored.
#[derive(Clone, Debug)]
pub struct DeviceState {
    schema: FeatureSchema,
    origin_ms: i64,
    last_ms: i64,
    messages: u32,
    all_faults_7d: f32,
    channels: Box<[ChannelState]>,
    components: Box<[ComponentState]>,
}

impl DeviceState {
    /// An empty state for a device of the schema's type.
    pub fn new(schema: &FeatureSchema) -> DeviceState {
        DeviceState {
            schema: schema.clone(),
            origin_ms: 0,
            last_ms: 0,
            messages: 0,
            all_faults_7d: 0.0,
            channels: vec![ChannelState::EMPTY; schema.inner.n_channels].into_boxed_slice(),
            components: vec![
                ComponentState {
                    count_1d: 0.0,
                    count_7d: 0.0,
                    major_7d: 0.0,
                    last_fault_s: NEVER,
                    last_repair_s: NEVER,
                };
                schema.inner.components.len()
            ]
            .into_boxed_slice(),
        }
    }

    /// The schema this state computes.
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// Event time of the latest applied message, if any.
    pub fn last_ts(&self) -> Option<Timestamp> {
        (self.messages > 0).then_some(Timestamp(self.last_ms))
    }

    /// Number of messages applied.
    pub fn messages(&self) -> u32 {
        self.messages
    }

    /// Bytes this state occupies (inline part plus its two boxed slices; the shared
    /// schema is not counted).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of_val(&*self.channels)
            + std::mem::size_of_val(&*self.components)
    }

    /// Whether the features are settled: the device has reported for at least
    /// [`WARM_UP_MS`] of event time. Before that the slow averages still lean on the
    /// first readings and `trend`/`std_slow` swing with the warm-up itself, so training
    /// takes no rows from this period and the scorer's risk cannot flag it (only the
    /// fault-code rule can, `crate::scorer`).
    pub fn is_warm(&self) -> bool {
        self.messages > 0 && self.last_ms.saturating_sub(self.origin_ms) >= WARM_UP_MS
    }

    /// Whether a message with event time `ts` would be applied (see the event-time rule).
    pub fn accepts(&self, ts: Timestamp) -> bool {
        self.messages == 0 || ts.0 >= self.last_ms
    }

    /// Applies a telemetry or fault message. Returns whether it was applied: `false` for
    /// status messages and for messages older than the latest applied one.
    pub fn update(&mut self, msg: &Message) -> bool {
        let ts = match msg {
            Message::Telemetry(t) => t.ts,
            Message::Fault(f) => f.ts,
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => return false,
        };
        if !self.accepts(ts) {
            return false;
        }
        if self.messages == 0 {
            self.origin_ms = ts.0;
            self.last_ms = ts.0;
        }
        let dt = ts.0.saturating_sub(self.last_ms) as f64;
        if dt > 0.0 {
            let k_fast = (-dt / TAU_FAST_MS).exp() as f32;
            let k_slow = (-dt / TAU_SLOW_MS).exp() as f32;
            for c in self.components.iter_mut() {
                c.count_1d *= k_fast;
                c.count_7d *= k_slow;
                c.major_7d *= k_slow;
            }
            self.all_faults_7d *= k_slow;
        }
        self.last_ms = ts.0;
        self.messages = self.messages.saturating_add(1);
        let at_s = self.seconds_since_origin(ts.0);
        match msg {
            Message::Telemetry(t) => {
                let mut decay: Option<Decay> = None;
                for (name, x) in &t.readings {
                    let Some(i) = self.schema.channel(name) else {
                        continue;
                    };
                    if !x.is_finite() {
                        continue;
                    }
                    let ch = &mut self.channels[i];
                    let prev_ms = self.origin_ms.saturating_add(i64::from(ch.at_s) * 1000);
                    let dt_ms = ts.0.saturating_sub(prev_ms) as f64;
                    if decay.is_none_or(|d| d.dt_ms != dt_ms) {
                        decay = Some(Decay::new(dt_ms));
                    }
                    if let Some(k) = &decay {
                        ch.update(*x, k, at_s);
                    }
                }
                self.update_derived(ts.0, at_s);
            }
            Message::Fault(f) if f.state == FaultState::Raised => {
                self.all_faults_7d += 1.0;
                if let Some(&(i, major, _)) = self.schema.inner.fault_component.get(&f.code) {
                    let c = &mut self.components[i];
                    c.count_1d += 1.0;
                    c.count_7d += 1.0;
                    if major {
                        c.major_7d += 1.0;
                    }
                    c.last_fault_s = at_s;
                }
            }
            Message::Fault(f) => {
                if let Some(&(i, _, true)) = self.schema.inner.fault_component.get(&f.code) {
                    self.components[i].last_repair_s = at_s;
                }
            }
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => {}
        }
        true
    }

    /// Updates the derived channels whose operands and condition channels were all read
    /// at `at_s`, the second of the message just applied (its own values at f32
    /// precision, or for a channel it did not carry, one read in that same second), and
    /// whose conditions hold.
    fn update_derived(&mut self, ts_ms: i64, at_s: u32) {
        let inner = &self.schema.inner;
        for (i, d) in inner.derived.iter().enumerate() {
            let read = |c: usize| {
                let ch = &self.channels[c];
                (ch.at_s == at_s).then_some(f64::from(ch.last))
            };
            let (Some(a), Some(b)) = (read(d.operands.0), read(d.operands.1)) else {
                continue;
            };
            if !d
                .when
                .iter()
                .all(|(c, cond)| read(*c).is_some_and(|x| cond.holds(x)))
            {
                continue;
            }
            let Some(x) = d.def.value(a, b) else {
                continue;
            };
            let ch = &mut self.channels[inner.channel_names.len() + i];
            let prev_ms = self.origin_ms.saturating_add(i64::from(ch.at_s) * 1000);
            ch.update(x, &Decay::new(ts_ms.saturating_sub(prev_ms) as f64), at_s);
        }
    }

    /// Event time (epoch ms) of the latest repair seen of the schema's `component`-th
    /// component (a critical code of it cleared); `None` if none was seen.
    pub fn last_repair_ms(&self, component: usize) -> Option<i64> {
        self.epoch_ms(self.components.get(component)?.last_repair_s)
    }

    /// Event time (epoch ms) of `at_s` (seconds since the origin); `None` for [`NEVER`].
    fn epoch_ms(&self, at_s: u32) -> Option<i64> {
        (at_s != NEVER).then(|| self.origin_ms.saturating_add(i64::from(at_s) * 1000))
    }

    /// Hours from `at_s` (seconds since the origin, [`NEVER`] for never) to the latest
    /// applied message, capped at [`HOURS_SINCE_CAP`].
    fn hours_since(&self, at_s: u32) -> f64 {
        let Some(at_ms) = self.epoch_ms(at_s) else {
            return HOURS_SINCE_CAP;
        };
        (self.last_ms.saturating_sub(at_ms) as f64 / Timestamp::HOUR_MS as f64)
            .clamp(0.0, HOURS_SINCE_CAP)
    }

    fn seconds_since_origin(&self, ts_ms: i64) -> u32 {
        (ts_ms.saturating_sub(self.origin_ms) / 1000).clamp(0, i64::from(NEVER - 1)) as u32
    }

    /// Writes the feature vector into `out` (length [`FeatureSchema::len`]; extra slots
    /// are left alone, a shorter slice gets a prefix).
    ///
    /// Features of a channel the device has never reported are `NaN`: models treat `NaN`
    /// as "unknown" and substitute the training mean (a standardised value of 0).
    pub fn write_features(&self, out: &mut [f64]) {
        let mut slots = out.iter_mut();
        let mut put = |v: f64| {
            if let Some(slot) = slots.next() {
                *slot = v;
            }
        };
        for ch in self.channels.iter() {
            if ch.at_s == NEVER {
                for _ in CHANNEL_FEATURES {
                    put(f64::NAN);
                }
                continue;
            }
            put(f64::from(ch.fast));
            put(f64::from(ch.slow));
            put(f64::from(ch.var).sqrt());
            put(f64::from(ch.fast) - f64::from(ch.slow));
            put(f64::from(ch.last));
            put(f64::from(ch.min));
            put(f64::from(ch.max));
            let shift = f64::from(ch.fast) - f64::from(ch.long);
            let sd = f64::from(ch.var).sqrt();
            put(f64::from(ch.long));
            put(shift);
            put(if sd > 0.0 {
                (shift / sd).clamp(-SHIFT_Z_CAP, SHIFT_Z_CAP)
            } else {
                0.0
            });
        }
        for c in self.components.iter() {
            put(f64::from(c.count_1d));
            put(f64::from(c.count_7d));
            put(self.hours_since(c.last_fault_s));
            put(f64::from(c.major_7d));
            put(self.hours_since(c.last_repair_s));
        }
        put(f64::from(self.all_faults_7d));
        put(self.last_ms.saturating_sub(self.origin_ms) as f64 / Timestamp::DAY_MS as f64);
        put(f64::from(self.messages).ln_1p());
    }

    /// The feature vector as a new `Vec` (see [`DeviceState::write_features`]).
    pub fn features(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.schema.len()];
        self.write_features(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ProfileSet;

    fn washer() -> FeatureSchema {
        let profiles = ProfileSet::builtin();
        FeatureSchema::for_profile(profiles.get("washer").unwrap())
    }

    /// An empty state of a washer.
    fn washer_state() -> DeviceState {
        DeviceState::new(&washer())
    }

    fn telemetry(ts_ms: i64, readings: &[(&str, f64)]) -> Message {
        crate::test_support::telemetry("washer", "wm-1", ts_ms, readings)
    }

    fn fault(ts_ms: i64, code: &str) -> Message {
        crate::test_support::fault("washer", "wm-1", ts_ms, code, FaultState::Raised)
    }

    fn feature(state: &DeviceState, name: &str) -> f64 {
        let i = state
            .schema()
            .names()
            .iter()
            .position(|n| n == name)
            .unwrap();
        state.features()[i]
    }

    #[test]
    fn schema_is_derived_from_the_profile() {
        let s = washer();
        // Seven measured channels and the ratio `heat_time_per_k`.
        assert_eq!(s.len(), 8 * 10 + 3 * 5 + 3);
        assert_eq!(s.names()[70], "heat_time_per_k.ewma_fast");
        assert!(s.names().contains(&"drain_time_s.ewma_fast".to_owned()));
        assert!(s.names().contains(&"fault.drain_pump.count_7d".to_owned()));
        assert_eq!(s.names().last().unwrap(), "device.messages_log1p");
    }

    #[test]
    fn state_is_compact_and_constant_size() {
        let mut st = washer_state();
        let before = st.size_bytes();
        for i in 0..10_000 {
            st.update(&telemetry(
                i * 60_000,
                &[("drain_time_s", 12.0 + (i % 7) as f64)],
            ));
        }
        assert_eq!(st.size_bytes(), before, "state must not grow with messages");
        assert!(before < 2048, "washer state is {before} bytes");
        assert!(before <= 400, "washer state is {before} bytes");
        let profiles = ProfileSet::builtin();
        let fridge = DeviceState::new(&FeatureSchema::for_profile(
            profiles.get("refrigerator").unwrap(),
        ));
        eprintln!(
            "state bytes: washer {before}, refrigerator {}",
            fridge.size_bytes()
        );
        assert!(fridge.size_bytes() < 2048);
    }

    #[test]
    fn a_ratio_channel_divides_the_readings_of_one_message() {
        let mut st = washer_state();
        let d = Timestamp::DAY_MS;
        // 1200 s to heat to 40 degC: 40 K above the profile's nominal 10 degC inlet.
        st.update(&telemetry(
            0,
            &[("heat_time_s", 1200.0), ("water_temp_c", 40.0)],
        ));
        assert_eq!(feature(&st, "heat_time_per_k.last"), 40.0);
        // A message without one of the two, or with water no warmer than the offset
        // (a heater that did not heat), leaves the ratio alone.
        st.update(&telemetry(d, &[("heat_time_s", 3000.0)]));
        st.update(&telemetry(
            2 * d,
            &[("heat_time_s", 3600.0), ("water_temp_c", 9.5)],
        ));
        st.update(&telemetry(
            3 * d,
            &[("heat_time_s", f64::NAN), ("water_temp_c", 60.0)],
        ));
        assert_eq!(feature(&st, "heat_time_per_k.last"), 40.0);
        // The same element heating a 60 degC program: the raw heat time more than
        // doubles, the ratio stays.
        st.update(&telemetry(
            4 * d,
            &[("heat_time_s", 2000.0), ("water_temp_c", 60.0)],
        ));
        assert_eq!(feature(&st, "heat_time_per_k.last"), 40.0);
        assert_eq!(feature(&st, "heat_time_per_k.std_slow"), 0.0);
        assert!(feature(&st, "heat_time_s.std_slow") > 100.0);
        // A device that never reported both has no ratio, like a channel never reported.
        let fresh = washer_state();
        assert!(feature(&fresh, "heat_time_per_k.ewma_fast").is_nan());
    }

    #[test]
    fn conditions_gate_derived_channels_and_a_difference_subtracts() {
        let profile = domain::Profile::from_toml(
            "t",
            r#"
type = "ac"
[[channels]]
name = "hz"
unit = "Hz"
min = 0.0
max = 130.0
[[channels]]
name = "amps"
unit = "A"
min = 0.0
max = 30.0
[[channels]]
name = "outdoor"
unit = "degC"
min = -40.0
max = 60.0
[[channels]]
name = "discharge"
unit = "degC"
min = -40.0
max = 130.0
[[ratios]]
name = "amps_per_hz"
unit = "A/Hz"
numerator = "amps"
denominator = "hz"
offset = -10.0
when = [{ channel = "hz", above = 0.0 }]
[[differences]]
name = "lift"
unit = "K"
channel = "discharge"
minus = "outdoor"
when = [{ channel = "hz", above = 0.0 }, { channel = "outdoor", above = 16.0, below = 50.0 }]
[[components]]
name = "compressor"
"#,
        )
        .unwrap();
        let s = FeatureSchema::for_profile(&profile);
        let names = s.names();
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        // Measured channels, then the ratio, then the difference.
        assert!(at("discharge.shift_z") < at("amps_per_hz.ewma_fast"));
        assert!(at("amps_per_hz.shift_z") < at("lift.ewma_fast"));
        let mut st = DeviceState::new(&s);
        let h = Timestamp::HOUR_MS;
        // (hz, amps, outdoor, discharge) of one report at hour `k`.
        let report = |k: i64, hz: f64, amps: f64, outdoor: f64, discharge: f64| {
            telemetry(
                k * h,
                &[
                    ("hz", hz),
                    ("amps", amps),
                    ("outdoor", outdoor),
                    ("discharge", discharge),
                ],
            )
        };
        let ratio = |st: &DeviceState| feature(st, "amps_per_hz.last");
        st.update(&report(0, 40.0, 2.5, 30.0, 65.0));
        assert!((ratio(&st) - 0.05).abs() < 1e-6);
        assert_eq!(feature(&st, "lift.last"), 35.0);
        // Off: 0 Hz fails both conditions, so an hour off moves neither.
        st.update(&report(1, 0.0, 0.0, 30.0, 31.0));
        assert!((ratio(&st) - 0.05).abs() < 1e-6);
        assert_eq!(feature(&st, "lift.last"), 35.0);
        // Running on a cold day: the ratio moves, the cooling-only difference does not.
        st.update(&report(2, 90.0, 6.0, 5.0, 70.0));
        assert!((ratio(&st) - 0.06).abs() < 1e-6);
        assert_eq!(feature(&st, "lift.last"), 35.0);
        // A message without the condition's channel (or with it NaN) meets no condition.
        st.update(&telemetry(
            3 * h,
            &[("amps", 9.0), ("outdoor", 30.0), ("discharge", 80.0)],
        ));
        st.update(&report(4, f64::NAN, 9.0, 30.0, 80.0));
        assert!((ratio(&st) - 0.06).abs() < 1e-6);
        assert_eq!(feature(&st, "lift.last"), 35.0);
        // Running and warm again: both move.
        st.update(&report(5, 40.0, 3.0, 20.0, 60.0));
        assert!((ratio(&st) - 0.06).abs() < 1e-6);
        assert_eq!(feature(&st, "lift.last"), 40.0);
    }

    #[test]
    fn ewma_is_time_aware_and_tracks_a_step() {
        let mut st = washer_state();
        let h = Timestamp::HOUR_MS;
        for i in 0..100 {
            st.update(&telemetry(i * h, &[("drain_time_s", 10.0)]));
        }
        assert!((feature(&st, "drain_time_s.ewma_fast") - 10.0).abs() < 1e-4);
        assert!(feature(&st, "drain_time_s.std_slow") < 1e-3);
        // A step to 20 for two days: the fast EWMA moves most of the way, the slow one less.
        for i in 100..148 {
            st.update(&telemetry(i * h, &[("drain_time_s", 20.0)]));
        }
        let fast = feature(&st, "drain_time_s.ewma_fast");
        let slow = feature(&st, "drain_time_s.ewma_slow");
        assert!(fast > 18.0 && fast < 20.0, "{fast}");
        assert!(slow > 12.0 && slow < 16.0, "{slow}");
        assert!(feature(&st, "drain_time_s.trend") > 3.0);
        assert!(feature(&st, "drain_time_s.std_slow") > 1.0);
        assert_eq!(feature(&st, "drain_time_s.max_7d"), 20.0);
        let min = feature(&st, "drain_time_s.min_7d");
        assert!((10.0..slow).contains(&min), "{min}");
        // A channel never reported is unknown, not zero.
        assert!(feature(&st, "vibration_g.ewma_fast").is_nan());
    }

    #[test]
    fn late_messages_are_not_applied() {
        let mut st = washer_state();
        assert!(st.update(&telemetry(10_000_000, &[("drain_time_s", 10.0)])));
        let before = st.features();
        assert!(!st.update(&telemetry(9_000_000, &[("drain_time_s", 500.0)])));
        assert!(!st.update(&fault(9_000_000, "E21")));
        let after = st.features();
        assert_eq!(
            before.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            after.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(st.messages(), 1);
        assert!(
            st.update(&telemetry(10_000_000, &[("drain_time_s", 11.0)])),
            "equal ts applies"
        );
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        let mut st = washer_state();
        assert!(st.update(&telemetry(i64::MIN + 1, &[("drain_time_s", 10.0)])));
        assert!(st.update(&fault(0, "E21")));
        assert!(st.update(&telemetry(i64::MAX, &[("drain_time_s", 20.0)])));
        let f = st.features();
        assert!(f.iter().all(|v| v.is_finite() || v.is_nan()), "{f:?}");
        assert_eq!(feature(&st, "drain_time_s.last"), 20.0);
    }

    #[test]
    fn fault_counts_decay_and_unknown_channels_are_ignored() {
        let mut st = washer_state();
        let d = Timestamp::DAY_MS;
        st.update(&telemetry(
            0,
            &[("drain_time_s", 10.0), ("new_sensor", 3.0)],
        ));
        st.update(&fault(d, "E21"));
        st.update(&fault(d, "E23"));
        st.update(&fault(d, "E41")); // points at no component
        assert!((feature(&st, "fault.drain_pump.count_1d") - 2.0).abs() < 1e-6);
        assert!((feature(&st, "fault.all.count_7d") - 3.0).abs() < 1e-6);
        assert_eq!(feature(&st, "fault.drain_pump.hours_since"), 0.0);
        assert_eq!(feature(&st, "fault.heater.hours_since"), HOURS_SINCE_CAP);
        st.update(&telemetry(2 * d, &[("vibration_g", 0.1)]));
        let c1 = feature(&st, "fault.drain_pump.count_1d");
        assert!((c1 - 2.0 * (-1.0f64).exp()).abs() < 1e-4, "{c1}");
        assert!((feature(&st, "fault.drain_pump.hours_since") - 24.0).abs() < 1e-9);
        assert!((feature(&st, "device.age_days") - 2.0).abs() < 1e-9);
        assert_eq!(
            feature(&st, "drain_time_s.last"),
            10.0,
            "missing channels keep state"
        );
    }

    fn cleared(ts_ms: i64, code: &str) -> Message {
        crate::test_support::fault("washer", "wm-1", ts_ms, code, FaultState::Cleared)
    }

    #[test]
    fn severity_counts_and_repairs_come_from_the_catalogue() {
        let mut st = washer_state();
        let h = Timestamp::HOUR_MS;
        st.update(&telemetry(0, &[("drain_time_s", 10.0)]));
        st.update(&fault(h, "E52")); // info, motor bearing
        st.update(&fault(h, "E51")); // major, motor bearing
        st.update(&fault(h, "E23")); // critical, drain pump
        assert!((feature(&st, "fault.motor_bearing.count_7d") - 2.0).abs() < 1e-6);
        assert!((feature(&st, "fault.motor_bearing.major_count_7d") - 1.0).abs() < 1e-6);
        assert!((feature(&st, "fault.drain_pump.major_count_7d") - 1.0).abs() < 1e-6);
        assert_eq!(
            feature(&st, "fault.drain_pump.hours_since_repair"),
            HOURS_SINCE_CAP
        );
        // Clearing a major code is not a repair; clearing the critical one is.
        st.update(&cleared(2 * h, "E51"));
        assert_eq!(
            feature(&st, "fault.motor_bearing.hours_since_repair"),
            HOURS_SINCE_CAP
        );
        let slot = |c: &str| washer().components().iter().position(|x| x == c).unwrap();
        assert_eq!(st.last_repair_ms(slot("motor_bearing")), None);
        st.update(&cleared(3 * h, "E23"));
        st.update(&telemetry(8 * h, &[("drain_time_s", 10.0)]));
        assert!((feature(&st, "fault.drain_pump.hours_since_repair") - 5.0).abs() < 1e-9);
        assert_eq!(st.last_repair_ms(slot("drain_pump")), Some(3 * h));
        assert_eq!(st.last_repair_ms(slot("motor_bearing")), None);
        assert_eq!(st.last_repair_ms(99), None);
    }

    #[test]
    fn shift_measures_the_departure_from_the_devices_own_baseline() {
        let s = washer();
        let h = Timestamp::HOUR_MS;
        // Two devices with different normals (a 10 s and a 30 s drain), each drifting
        // up by 50% over the last three days: their levels differ, their shift_z agree
        // in sign and are both well above what steady noise gives.
        let mut z = Vec::new();
        for base in [10.0, 30.0] {
            let mut st = DeviceState::new(&s);
            for i in 0..(40 * 24) {
                let noise = if i % 2 == 0 { 0.02 } else { -0.02 };
                let drift = if i >= 37 * 24 { 0.5 } else { 0.0 };
                st.update(&telemetry(
                    i * h,
                    &[("drain_time_s", base * (1.0 + noise + drift))],
                ));
            }
            let long = feature(&st, "drain_time_s.ewma_30d");
            assert!(long > base && long < 1.2 * base, "{long}");
            assert!(feature(&st, "drain_time_s.shift") > 0.3 * base);
            z.push(feature(&st, "drain_time_s.shift_z"));
        }
        assert!(z.iter().all(|z| *z > 1.0 && *z <= SHIFT_Z_CAP), "{z:?}");
        assert!((z[0] - z[1]).abs() < 0.05 * z[0], "{z:?}");
    }
}
