//! Device profiles: a device type is data, not code.
//!
//! A profile declares a type's channels (name, unit, physical range), its components and
//! its fault catalogue. The profiles for the kinds fixahead ships are compiled in
//! ([`ProfileSet::builtin`]); more are loaded from TOML files at run time by the binary
//! and handed over through [`Profile::from_toml`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Lang, Result};

/// One measured quantity of a device type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Name used as the key in a telemetry payload's `readings`.
    pub name: String,
    /// Unit, for people (`A`, `degC`, `s`, `ratio`).
    pub unit: String,
    /// Lowest physically possible value; anything below is a dead letter.
    pub min: f64,
    /// Highest physically possible value; anything above is a dead letter.
    pub max: f64,
    /// What the channel measures.
    #[serde(default)]
    pub description: String,
}

/// A channel the feature engine computes from two measured ones of the same message:
/// `numerator / (denominator - offset)`.
///
/// Why: some wear shows only relative to what the device was asked to do. A washer's
/// heat time grows as its element scales, but a 60 degC program takes three times as long
/// to heat as a 30 degC one, so the raw channel mostly says which program ran. Heat time
/// per kelvin of heating (`heat_time_s / (water_temp_c - 10)`, 10 degC a nominal mains
/// inlet) takes the program out and leaves the element. A ratio is a profile entry, not
/// code, so a new device type declares its own.
///
/// The value exists only for a message that carries both channels with finite values, a
/// positive `denominator - offset` and a numerator above `numerator_above` if that is
/// set; otherwise the ratio channel keeps its previous
/// state, like a measured channel a message does not carry. It is never read from a
/// payload and has no physical range (a ratio is not dead-lettered).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioChannel {
    /// Feature name prefix (`heat_time_per_k`); unique among the profile's channels.
    pub name: String,
    /// Unit, for people (`s/K`).
    pub unit: String,
    /// The measured channel divided.
    pub numerator: String,
    /// The measured channel divided by (less `offset`).
    pub denominator: String,
    /// Subtracted from the denominator before dividing (default 0).
    #[serde(default)]
    pub offset: f64,
    /// When set, the ratio exists only for a numerator above this value. Some channels
    /// report 0 for "did not happen this time" (a water heater's element current in an
    /// hour it did not heat): that is no measurement of the part, and a ratio of it
    /// would mostly follow how often the device was used.
    #[serde(default)]
    pub numerator_above: Option<f64>,
    /// Further conditions on the same message (all must hold), such as "while the
    /// compressor runs"; see [`Condition`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    /// What the ratio measures.
    #[serde(default)]
    pub description: String,
}

impl RatioChannel {
    /// The ratio of one message's readings, if it exists (see the type's docs). The
    /// [`RatioChannel::when`] conditions are the caller's: they read other channels.
    pub fn value(&self, numerator: f64, denominator: f64) -> Option<f64> {
        let d = denominator - self.offset;
        let v = numerator / d;
        let counted = self.numerator_above.is_none_or(|min| numerator > min);
        (counted && numerator.is_finite() && d > 0.0 && v.is_finite()).then_some(v)
    }
}

/// A channel the feature engine computes as the difference of two measured channels of
/// the same message: `channel - minus`.
///
/// Why: some wear shows as a temperature lift, not a temperature. An air conditioner
/// whose refrigerant charge leaks runs a hotter compressor discharge, but the discharge
/// temperature follows the outdoor air by degree; the discharge temperature above the
/// outdoor air, while it cools, leaves the charge (and the outdoor fan). Like a ratio, it
/// is never read from a payload and has no physical range. It exists only for a message
/// that carries both channels with finite values and meets every [`Condition`] of
/// `when`; otherwise it keeps its previous state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DifferenceChannel {
    /// Feature name prefix (`discharge_lift_cooling_k`); unique among the profile's
    /// channels.
    pub name: String,
    /// Unit, for people (`K`).
    pub unit: String,
    /// The measured channel subtracted from.
    pub channel: String,
    /// The measured channel subtracted.
    pub minus: String,
    /// Conditions on the same message (all must hold); see [`Condition`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    /// What the difference measures.
    #[serde(default)]
    pub description: String,
}

impl DifferenceChannel {
    /// The difference of one message's readings, if it is finite. The
    /// [`DifferenceChannel::when`] conditions are the caller's.
    pub fn value(&self, channel: f64, minus: f64) -> Option<f64> {
        let v = channel - minus;
        v.is_finite().then_some(v)
    }
}

/// A condition on one measured channel of the same message, for a derived channel's
/// `when`: the channel's reading is above `above` and below `below` (either may be left
/// out, not both). A message that does not carry the channel, or carries a non-finite
/// value, does not meet it.
///
/// Why: a reading often means something only in one operating state. An air
/// conditioner's compressor current per Hz says how worn the compressor is only while
/// it runs (an hour off reports 0 A at 0 Hz), and its discharge temperature says how
/// much refrigerant it has in one way while cooling and in another while heating.
/// Features over all messages would mostly follow how often and in which mode the
/// household ran it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A measured channel of the profile.
    pub channel: String,
    /// The reading must be above this (strictly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// The reading must be below this (strictly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
}

impl Condition {
    /// Whether a reading meets the condition.
    pub fn holds(&self, x: f64) -> bool {
        x.is_finite() && self.above.is_none_or(|a| x > a) && self.below.is_none_or(|b| x < b)
    }
}

/// A channel the feature engine computes from two measured channels of one message: a
/// profile's `[[ratios]]` and `[[differences]]`, in that order.
#[derive(Clone, Debug, PartialEq)]
pub enum DerivedChannel {
    /// `numerator / (denominator - offset)`.
    Ratio(RatioChannel),
    /// `channel - minus`.
    Difference(DifferenceChannel),
}

impl DerivedChannel {
    /// Feature name prefix.
    pub fn name(&self) -> &str {
        match self {
            Self::Ratio(r) => &r.name,
            Self::Difference(d) => &d.name,
        }
    }

    /// The two measured channels it reads, in the order [`DerivedChannel::value`]
    /// takes them.
    pub fn operands(&self) -> (&str, &str) {
        match self {
            Self::Ratio(r) => (&r.numerator, &r.denominator),
            Self::Difference(d) => (&d.channel, &d.minus),
        }
    }

    /// Conditions on the same message, all of which must hold.
    pub fn when(&self) -> &[Condition] {
        match self {
            Self::Ratio(r) => &r.when,
            Self::Difference(d) => &d.when,
        }
    }

    /// The value of one message's operand readings, if it exists (conditions aside).
    pub fn value(&self, a: f64, b: f64) -> Option<f64> {
        match self {
            Self::Ratio(r) => r.value(a, b),
            Self::Difference(d) => d.value(a, b),
        }
    }
}

/// The Chinese text if `lang` is Chinese and there is one, else the English.
fn pick<'a>(lang: Lang, en: &'a str, zh: &'a str) -> &'a str {
    match lang {
        Lang::Zh if !zh.is_empty() => zh,
        _ => en,
    }
}

/// A replaceable part of a device type that can fail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Identifier used in predictions, tickets and history events.
    pub name: String,
    /// Human title.
    #[serde(default)]
    pub title: String,
    /// [`Component::title`] in Simplified Chinese; empty if there is none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title_zh: String,
    /// Engineer skills a repair needs.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Spare parts of the component with their catalogue references.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// The problem categories a customer reports when this component fails
    /// (`["leak", "down"]`): the pre-judgement's category hint (docs/intake.md).
    /// Optional; empty means no hint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symptoms: Vec<crate::service::ProblemCategory>,
    /// The measured channels whose latest reading outside the fleet's normal
    /// range points at this component: the pre-judgement's reading evidence
    /// (docs/intake.md). Optional; each must be a channel of the profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

impl Component {
    /// The title in `lang`: the Chinese one if asked for and given, else the English.
    pub fn title_in(&self, lang: Lang) -> &str {
        pick(lang, &self.title, &self.title_zh)
    }

    /// A spare part of the component by its (English) name.
    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
}

/// A spare part in the parts catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Part name, as the fault catalogue's `likely_parts` names it. It stays the key
    /// in every language: `likely_parts` and the API name parts in English.
    pub name: String,
    /// [`Part::name`] in Simplified Chinese; empty if there is none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_zh: String,
    /// Catalogue reference (order number).
    pub reference: String,
}

impl Part {
    /// The name in `lang`: the Chinese one if asked for and given, else the English.
    pub fn name_in(&self, lang: Lang) -> &str {
        pick(lang, &self.name, &self.name_zh)
    }
}

/// How serious a fault code is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational: usually the user's doing.
    Info,
    /// A minor fault: the appliance works.
    Minor,
    /// A major fault: degraded operation or a worsening problem.
    Major,
    /// Core function lost: the appliance is down.
    Critical,
}

impl Severity {
    /// The lowercase name used on the wire and in profiles.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Minor => "minor",
            Self::Major => "major",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a device type's fault catalogue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultDef {
    /// The code the device sends (`E21`).
    pub code: String,
    /// Short title.
    pub title: String,
    /// [`FaultDef::title`] in Simplified Chinese; empty if there is none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title_zh: String,
    /// What it means, for a technician.
    #[serde(default)]
    pub description: String,
    /// [`FaultDef::description`] in Simplified Chinese; empty if there is none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description_zh: String,
    /// The component it points at, if any (nuisance codes point at none).
    #[serde(default)]
    pub component: Option<String>,
    /// How serious it is.
    pub severity: Severity,
    /// Parts an engineer should bring.
    #[serde(default)]
    pub likely_parts: Vec<String>,
    /// Checks an engineer can do remotely before a visit.
    #[serde(default)]
    pub remote_checks: Vec<String>,
    /// [`FaultDef::remote_checks`] in Simplified Chinese, one for one in the same
    /// order, or empty if there are none (a profile with any other count is refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_checks_zh: Vec<String>,
}

impl FaultDef {
    /// The title in `lang`: the Chinese one if asked for and given, else the English.
    pub fn title_in(&self, lang: Lang) -> &str {
        pick(lang, &self.title, &self.title_zh)
    }

    /// The description in `lang`: the Chinese one if asked for and given, else the
    /// English.
    pub fn description_in(&self, lang: Lang) -> &str {
        pick(lang, &self.description, &self.description_zh)
    }

    /// The remote checks in `lang`: the Chinese ones if asked for and given, else the
    /// English. A loaded profile's Chinese checks are as many as its English ones.
    pub fn remote_checks_in(&self, lang: Lang) -> &[String] {
        match lang {
            Lang::Zh if !self.remote_checks_zh.is_empty() => &self.remote_checks_zh,
            _ => &self.remote_checks,
        }
    }
}

/// The on-disk form of a profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(rename = "type")]
    device_type: String,
    #[serde(default)]
    title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    title_zh: String,
    #[serde(default)]
    channels: Vec<Channel>,
    #[serde(default)]
    ratios: Vec<RatioChannel>,
    #[serde(default)]
    differences: Vec<DifferenceChannel>,
    #[serde(default)]
    components: Vec<Component>,
    #[serde(default)]
    faults: Vec<FaultDef>,
}

/// A validated device profile with lookup indices.
#[derive(Clone, Debug)]
pub struct Profile {
    device_type: String,
    title: String,
    title_zh: String,
    channels: Vec<Channel>,
    /// Ratios, then differences.
    derived: Vec<DerivedChannel>,
    components: Vec<Component>,
    faults: Vec<FaultDef>,
    channel_index: HashMap<String, usize>,
    fault_index: HashMap<String, usize>,
}

impl Profile {
    /// Parses and validates a profile from TOML. `source_name` labels errors.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Self> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| DomainError::InvalidProfile {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        Self::validate(source_name, file)
    }

    fn validate(source_name: &str, file: ProfileFile) -> Result<Self> {
        let bad = |message: String| DomainError::InvalidProfile {
            source_name: source_name.to_owned(),
            message,
        };
        if !is_identifier(&file.device_type) {
            return Err(bad(format!(
                "type {:?} must be 1-64 characters of a-z, 0-9 and '_'",
                file.device_type
            )));
        }
        if file.channels.is_empty() {
            return Err(bad("a profile needs at least one channel".into()));
        }
        if file.components.is_empty() {
            return Err(bad("a profile needs at least one component".into()));
        }
        let mut channel_index = HashMap::new();
        for (i, c) in file.channels.iter().enumerate() {
            if !is_identifier(&c.name) {
                return Err(bad(format!(
                    "channel name {:?} is not an identifier",
                    c.name
                )));
            }
            if !(c.min.is_finite() && c.max.is_finite() && c.min < c.max) {
                return Err(bad(format!("channel {}: need finite min < max", c.name)));
            }
            if channel_index.insert(c.name.clone(), i).is_some() {
                return Err(bad(format!("channel {} declared twice", c.name)));
            }
        }
        let derived: Vec<DerivedChannel> = file
            .ratios
            .into_iter()
            .map(DerivedChannel::Ratio)
            .chain(file.differences.into_iter().map(DerivedChannel::Difference))
            .collect();
        let mut derived_names = std::collections::HashSet::new();
        for d in &derived {
            let (kind, name) = match d {
                DerivedChannel::Ratio(r) => ("ratio", &r.name),
                DerivedChannel::Difference(d) => ("difference", &d.name),
            };
            if !is_identifier(name) {
                return Err(bad(format!("{kind} name {name:?} is not an identifier")));
            }
            if channel_index.contains_key(name) || !derived_names.insert(name.as_str()) {
                return Err(bad(format!("channel {name} declared twice")));
            }
            let (a, b) = d.operands();
            for operand in [a, b]
                .into_iter()
                .chain(d.when().iter().map(|c| c.channel.as_str()))
            {
                if !channel_index.contains_key(operand) {
                    return Err(bad(format!(
                        "{kind} {name} names unknown channel {operand}"
                    )));
                }
            }
            if let DerivedChannel::Ratio(r) = d {
                if !r.offset.is_finite() || r.numerator_above.is_some_and(|m| !m.is_finite()) {
                    return Err(bad(format!(
                        "ratio {name}: offset and numerator_above must be finite"
                    )));
                }
            }
            for c in d.when() {
                let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
                if (c.above.is_none() && c.below.is_none()) || !finite(c.above) || !finite(c.below)
                {
                    return Err(bad(format!(
                        "{kind} {name}: a condition on {} needs a finite above or below",
                        c.channel
                    )));
                }
            }
        }
        let mut component_names = std::collections::HashSet::new();
        for c in &file.components {
            if !is_identifier(&c.name) {
                return Err(bad(format!(
                    "component name {:?} is not an identifier",
                    c.name
                )));
            }
            if !component_names.insert(c.name.as_str()) {
                return Err(bad(format!("component {} declared twice", c.name)));
            }
            for ch in &c.channels {
                if !file.channels.iter().any(|m| &m.name == ch) {
                    return Err(bad(format!(
                        "component {}: channel {ch} is not a measured channel of the profile",
                        c.name
                    )));
                }
            }
        }
        let mut fault_index = HashMap::new();
        for (i, f) in file.faults.iter().enumerate() {
            if f.code.is_empty() || f.code.len() > 32 {
                return Err(bad(format!(
                    "fault code {:?} must be 1-32 characters",
                    f.code
                )));
            }
            if let Some(comp) = &f.component {
                if !component_names.contains(comp.as_str()) {
                    return Err(bad(format!(
                        "fault {} names unknown component {comp}",
                        f.code
                    )));
                }
            }
            if !f.remote_checks_zh.is_empty() && f.remote_checks_zh.len() != f.remote_checks.len() {
                return Err(bad(format!(
                    "fault {}: remote_checks_zh has {} entries but remote_checks has {}; \
                     give one Chinese check per English check, in the same order, or none",
                    f.code,
                    f.remote_checks_zh.len(),
                    f.remote_checks.len()
                )));
            }
            if let Some(n) = f.remote_checks_zh.iter().position(|c| c.trim().is_empty()) {
                return Err(bad(format!(
                    "fault {}: remote_checks_zh entry {} is empty",
                    f.code,
                    n + 1
                )));
            }
            if fault_index.insert(f.code.clone(), i).is_some() {
                return Err(bad(format!("fault {} declared twice", f.code)));
            }
        }
        Ok(Self {
            device_type: file.device_type,
            title: file.title,
            title_zh: file.title_zh,
            channels: file.channels,
            derived,
            components: file.components,
            faults: file.faults,
            channel_index,
            fault_index,
        })
    }

    /// The device type this profile describes (`washer`).
    pub fn device_type(&self) -> &str {
        &self.device_type
    }

    /// Human title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The title in `lang`: the Chinese one if asked for and given, else the English.
    pub fn title_in(&self, lang: Lang) -> &str {
        pick(lang, &self.title, &self.title_zh)
    }

    /// Channels in declaration order (the order features use).
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Derived channels (ratios, then differences, each in declaration order); the
    /// feature engine puts them after [`Profile::channels`].
    pub fn derived(&self) -> &[DerivedChannel] {
        &self.derived
    }

    /// Components in declaration order.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The fault catalogue.
    pub fn faults(&self) -> &[FaultDef] {
        &self.faults
    }

    /// Position of a channel in [`Profile::channels`].
    pub fn channel_index(&self, name: &str) -> Option<usize> {
        self.channel_index.get(name).copied()
    }

    /// Catalogue entry of a fault code.
    pub fn fault(&self, code: &str) -> Option<&FaultDef> {
        self.fault_index.get(code).map(|&i| &self.faults[i])
    }

    /// A component by name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// A part name (as `likely_parts` and [`Part::name`] give it) in `lang`: the
    /// Chinese name of the first component's part of that name, if asked for and
    /// given, else `name` itself (also for a part no component declares).
    pub fn part_name_in<'a>(&'a self, name: &'a str, lang: Lang) -> &'a str {
        self.components
            .iter()
            .find_map(|c| c.part(name))
            .map_or(name, |p| p.name_in(lang))
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Profiles by device type.
#[derive(Clone, Debug, Default)]
pub struct ProfileSet {
    by_type: BTreeMap<String, Arc<Profile>>,
}

/// The profile files compiled into the binary, as (file name, text).
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("washer.toml", include_str!("../../profiles/washer.toml")),
    (
        "dishwasher.toml",
        include_str!("../../profiles/dishwasher.toml"),
    ),
    (
        "refrigerator.toml",
        include_str!("../../profiles/refrigerator.toml"),
    ),
    (
        "air_conditioner.toml",
        include_str!("../../profiles/air_conditioner.toml"),
    ),
    (
        "water_heater.toml",
        include_str!("../../profiles/water_heater.toml"),
    ),
];

impl ProfileSet {
    /// The profiles fixahead ships.
    pub fn builtin() -> Self {
        let mut set = Self::default();
        for (name, text) in BUILTIN_PROFILES {
            // The built-in files are part of the source tree and covered by a unit test,
            // so failing here is a broken build, not bad input.
            let profile = Profile::from_toml(name, text).expect("built-in profile is valid");
            set.insert(profile);
        }
        set
    }

    /// Adds or replaces the profile for its device type.
    pub fn insert(&mut self, profile: Profile) {
        self.by_type
            .insert(profile.device_type().to_owned(), Arc::new(profile));
    }

    /// The profile of a device type.
    pub fn get(&self, device_type: &str) -> Option<&Arc<Profile>> {
        self.by_type.get(device_type)
    }

    /// All profiles, ordered by type.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.by_type.values()
    }

    /// Known device types, ordered.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_are_valid_and_complete() {
        let set = ProfileSet::builtin();
        let washer = set.get("washer").unwrap();
        assert!(washer.channels().len() >= 5);
        assert!(washer.components().len() >= 2);
        assert_eq!(
            washer.fault("E21").unwrap().component.as_deref(),
            Some("drain_pump")
        );
        let fridge = set.get("refrigerator").unwrap();
        assert!(fridge.channel_index("compressor_duty").is_some());
        let types: Vec<&str> = set.types().collect();
        assert_eq!(
            types,
            [
                "air_conditioner",
                "dishwasher",
                "refrigerator",
                "washer",
                "water_heater"
            ]
        );
        for profile in set.iter() {
            let t = profile.device_type();
            assert!(profile.channels().len() >= 5, "{t}: channels");
            assert!(profile.components().len() >= 2, "{t}: components");
            for c in profile.components() {
                assert!(!c.title.is_empty(), "{t}: {} has no title", c.name);
                let codes: Vec<_> = profile
                    .faults()
                    .iter()
                    .filter(|f| f.component.as_deref() == Some(c.name.as_str()))
                    .collect();
                assert!(!codes.is_empty(), "{t}: no fault code for {}", c.name);
                assert!(
                    codes.iter().any(|f| f.severity >= Severity::Major),
                    "{t}: no major or critical code for {}",
                    c.name
                );
            }
            for f in profile.faults() {
                assert!(!f.description.is_empty(), "{t} {}: description", f.code);
                assert!(!f.remote_checks.is_empty(), "{t} {}: remote checks", f.code);
                if f.component.is_some() {
                    assert!(!f.likely_parts.is_empty(), "{t} {}: likely parts", f.code);
                }
            }
        }
    }

    /// Whether `s` has a CJK ideograph: a `_zh` text that is English by mistake has none.
    fn has_hanzi(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn builtin_profiles_speak_chinese() {
        for profile in ProfileSet::builtin().iter() {
            let t = profile.device_type();
            assert!(has_hanzi(profile.title_in(Lang::Zh)), "{t}: title_zh");
            assert_eq!(profile.title_in(Lang::En), profile.title());
            for c in profile.components() {
                assert!(has_hanzi(&c.title_zh), "{t} {}: title_zh", c.name);
                assert_eq!(c.title_in(Lang::Zh), c.title_zh);
                assert_eq!(c.title_in(Lang::En), c.title);
                for p in &c.parts {
                    assert!(has_hanzi(&p.name_zh), "{t} {}: name_zh", p.name);
                    assert_eq!(profile.part_name_in(&p.name, Lang::Zh), p.name_zh);
                    assert_eq!(profile.part_name_in(&p.name, Lang::En), p.name);
                }
            }
            for f in profile.faults() {
                let code = &f.code;
                assert!(has_hanzi(&f.title_zh), "{t} {code}: title_zh");
                assert!(has_hanzi(&f.description_zh), "{t} {code}: description_zh");
                assert_eq!(
                    f.remote_checks_zh.len(),
                    f.remote_checks.len(),
                    "{t} {code}: remote_checks_zh"
                );
                for check in &f.remote_checks_zh {
                    assert!(has_hanzi(check), "{t} {code}: remote check {check:?}");
                }
                assert_eq!(f.title_in(Lang::Zh), f.title_zh);
                assert_eq!(f.description_in(Lang::Zh), f.description_zh);
                assert_eq!(f.remote_checks_in(Lang::Zh), f.remote_checks_zh);
                assert_eq!(f.title_in(Lang::En), f.title);
                assert_eq!(f.description_in(Lang::En), f.description);
                assert_eq!(f.remote_checks_in(Lang::En), f.remote_checks);
                // A component's likely parts are parts it declares, so they have a
                // Chinese name (a nuisance code's parts, with no component, may not).
                if let Some(component) = &f.component {
                    let c = profile.component(component).unwrap();
                    for part in &f.likely_parts {
                        assert!(
                            c.part(part).is_some(),
                            "{t} {code}: likely part {part:?} is not a part of {component}"
                        );
                    }
                }
            }
        }
    }

    const MINIMAL: &str = "type = \"x\"\n[[channels]]\nname=\"a\"\nunit=\"V\"\nmin=0.0\nmax=1.0\n\
                           [[components]]\nname=\"c\"\ntitle=\"Pump\"\n\
                           parts=[{name=\"impeller\", reference=\"R1\"}]\n";

    #[test]
    fn chinese_remote_checks_match_the_english_ones() {
        let fault = |zh: &str| {
            format!(
                "{MINIMAL}[[faults]]\ncode=\"E7\"\ntitle=\"t\"\nseverity=\"minor\"\n\
                 remote_checks=[\"Check one\", \"Check two\"]\n{zh}"
            )
        };
        let ok = Profile::from_toml("t", &fault("remote_checks_zh=[\"一\", \"二\"]\n")).unwrap();
        assert_eq!(
            ok.fault("E7").unwrap().remote_checks_in(Lang::Zh),
            ["一", "二"]
        );
        for zh in [
            "remote_checks_zh=[\"一\"]\n",
            "remote_checks_zh=[\"一\", \"二\", \"三\"]\n",
        ] {
            let err = Profile::from_toml("t.toml", &fault(zh))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("profile t.toml: fault E7: remote_checks_zh has")
                    && err.contains("but remote_checks has 2"),
                "{zh}: {err}"
            );
        }
        let err = Profile::from_toml("t", &fault("remote_checks_zh=[\"一\", \" \"]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fault E7: remote_checks_zh entry 2 is empty"),
            "{err}"
        );
        // Chinese checks without English ones are a count mismatch too.
        let no_english = format!(
            "{MINIMAL}[[faults]]\ncode=\"E8\"\ntitle=\"t\"\nseverity=\"info\"\n\
             remote_checks_zh=[\"一\"]\n"
        );
        let err = Profile::from_toml("t", &no_english)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fault E8: remote_checks_zh has 1 entries but remote_checks has 0"),
            "{err}"
        );
    }

    #[test]
    fn text_without_chinese_falls_back_to_english() {
        let text = format!(
            "{MINIMAL}[[faults]]\ncode=\"E7\"\ntitle=\"Pump slow\"\n\
             description=\"It is slow.\"\nseverity=\"minor\"\nremote_checks=[\"Look\"]\n"
        );
        let profile = Profile::from_toml(
            "t",
            &text.replace("type = \"x\"", "type = \"x\"\ntitle = \"X\""),
        )
        .unwrap();
        assert_eq!(profile.title_in(Lang::Zh), "X");
        let c = profile.component("c").unwrap();
        assert_eq!(c.title_in(Lang::Zh), "Pump");
        assert_eq!(c.parts[0].name_in(Lang::Zh), "impeller");
        assert_eq!(profile.part_name_in("impeller", Lang::Zh), "impeller");
        assert_eq!(
            profile.part_name_in("not declared", Lang::Zh),
            "not declared"
        );
        let f = profile.fault("E7").unwrap();
        assert_eq!(f.title_in(Lang::Zh), "Pump slow");
        assert_eq!(f.description_in(Lang::Zh), "It is slow.");
        assert_eq!(f.remote_checks_in(Lang::Zh), ["Look"]);
        // No Chinese: the JSON the API serves is what it was before the `_zh` keys.
        assert_eq!(
            serde_json::to_value(f).unwrap(),
            serde_json::json!({
                "code": "E7", "title": "Pump slow", "description": "It is slow.",
                "component": null, "severity": "minor", "likely_parts": [],
                "remote_checks": ["Look"]
            })
        );
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            serde_json::json!({
                "name": "c", "title": "Pump", "skills": [],
                "parts": [{"name": "impeller", "reference": "R1"}]
            })
        );

        // Chinese given: English still for English, Chinese for Chinese, and the JSON
        // carries both.
        let zh = text
            .replace("title=\"Pump\"\n", "title=\"Pump\"\ntitle_zh=\"泵\"\n")
            .replace("name=\"impeller\",", "name=\"impeller\", name_zh=\"叶轮\",")
            .replace(
                "title=\"Pump slow\"\n",
                "title=\"Pump slow\"\ntitle_zh=\"泵慢\"\ndescription_zh=\"慢。\"\n",
            )
            .replace(
                "remote_checks=[\"Look\"]",
                "remote_checks=[\"Look\"]\nremote_checks_zh=[\"看\"]",
            );
        let profile = Profile::from_toml("t", &zh).unwrap();
        let c = profile.component("c").unwrap();
        assert_eq!((c.title_in(Lang::En), c.title_in(Lang::Zh)), ("Pump", "泵"));
        assert_eq!(profile.part_name_in("impeller", Lang::Zh), "叶轮");
        assert_eq!(profile.part_name_in("impeller", Lang::En), "impeller");
        let f = profile.fault("E7").unwrap();
        assert_eq!(
            (f.title_in(Lang::En), f.title_in(Lang::Zh)),
            ("Pump slow", "泵慢")
        );
        assert_eq!(f.description_in(Lang::Zh), "慢。");
        assert_eq!(f.remote_checks_in(Lang::En), ["Look"]);
        assert_eq!(f.remote_checks_in(Lang::Zh), ["看"]);
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(json["title_zh"], "泵慢");
        assert_eq!(json["description_zh"], "慢。");
        assert_eq!(json["remote_checks_zh"], serde_json::json!(["看"]));
        assert_eq!(
            serde_json::to_value(c).unwrap()["parts"][0]["name_zh"],
            "叶轮"
        );
    }

    #[test]
    fn components_may_name_symptoms_and_channels() {
        let base = "type = \"x\"\n[[channels]]\nname=\"a\"\nunit=\"V\"\nmin=0.0\nmax=1.0\n[[components]]\nname=\"c\"\n";
        let ok = Profile::from_toml(
            "t",
            &format!("{base}symptoms=[\"leak\", \"down\"]\nchannels=[\"a\"]\n"),
        )
        .unwrap();
        let c = ok.component("c").unwrap();
        assert_eq!(
            c.symptoms,
            [
                crate::service::ProblemCategory::Leak,
                crate::service::ProblemCategory::Down
            ]
        );
        assert_eq!(c.channels, ["a"]);
        let err = Profile::from_toml("t", &format!("{base}channels=[\"b\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("channel b"), "{err}");
        assert!(Profile::from_toml("t", &format!("{base}symptoms=[\"sad\"]\n")).is_err());
        // Every shipped profile gives each component a hint.
        for t in [
            "washer",
            "dishwasher",
            "refrigerator",
            "air_conditioner",
            "water_heater",
        ] {
            let set = ProfileSet::builtin();
            for c in set.get(t).unwrap().components() {
                assert!(
                    !c.symptoms.is_empty() && !c.channels.is_empty(),
                    "{t}/{}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn rejects_unknown_keys_and_dangling_components() {
        let unknown_key = "type = \"x\"\ncolour = 1\n[[channels]]\nname=\"a\"\nunit=\"V\"\nmin=0.0\nmax=1.0\n[[components]]\nname=\"c\"\n";
        assert!(Profile::from_toml("t", unknown_key).is_err());
        let dangling = "type = \"x\"\n[[channels]]\nname=\"a\"\nunit=\"V\"\nmin=0.0\nmax=1.0\n[[components]]\nname=\"c\"\n[[faults]]\ncode=\"E1\"\ntitle=\"t\"\ncomponent=\"nope\"\nseverity=\"major\"\n";
        let err = Profile::from_toml("t", dangling).unwrap_err().to_string();
        assert!(err.contains("unknown component nope"), "{err}");
        let ratio = |num: &str, offset: &str| {
            format!("type = \"x\"\n[[channels]]\nname=\"a\"\nunit=\"V\"\nmin=0.0\nmax=1.0\n[[ratios]]\nname=\"r\"\nunit=\"1\"\nnumerator=\"{num}\"\ndenominator=\"a\"\noffset={offset}\n[[components]]\nname=\"c\"\n")
        };
        let ok = Profile::from_toml("t", &ratio("a", "0.5")).unwrap();
        assert_eq!(ok.derived()[0].value(3.0, 2.0), Some(2.0));
        assert_eq!(ok.derived()[0].value(3.0, 0.5), None, "zero denominator");
        assert_eq!(
            ok.derived()[0].value(3.0, 0.2),
            None,
            "negative denominator"
        );
        assert_eq!(ok.derived()[0].value(f64::NAN, 2.0), None);
        let err = Profile::from_toml("t", &ratio("b", "0.0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ratio r names unknown channel b"), "{err}");
        let err = Profile::from_toml("t", &ratio("a", "nan"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("offset and numerator_above must be finite"),
            "{err}"
        );
        let gated = ratio("a", "0.0").replace("offset=0.0\n", "offset=0.0\nnumerator_above=0.0\n");
        let gated = Profile::from_toml("t", &gated).unwrap();
        assert_eq!(
            gated.derived()[0].value(0.0, 2.0),
            None,
            "0 A: the element did not heat"
        );
        assert_eq!(gated.derived()[0].value(1.0, 2.0), Some(0.5));
        let clash = ratio("a", "0.0").replace("name=\"r\"", "name=\"a\"");
        let err = Profile::from_toml("t", &clash).unwrap_err().to_string();
        assert!(err.contains("channel a declared twice"), "{err}");
        let inverted = "type = \"x\"\n[[channels]]\nname=\"a\"\nunit=\"V\"\nmin=2.0\nmax=1.0\n[[components]]\nname=\"c\"\n";
        assert!(Profile::from_toml("t", inverted).is_err());
    }

    #[test]
    fn differences_and_conditions_are_validated() {
        let profile = |derived: &str| {
            format!(
                "type = \"x\"\n[[channels]]\nname=\"a\"\nunit=\"V\"\nmin=0.0\nmax=9.0\n\
                 [[channels]]\nname=\"b\"\nunit=\"V\"\nmin=0.0\nmax=9.0\n{derived}\
                 [[components]]\nname=\"c\"\n"
            )
        };
        let ok = Profile::from_toml(
            "t",
            &profile(
                "[[ratios]]\nname=\"r\"\nunit=\"1\"\nnumerator=\"a\"\ndenominator=\"b\"\n\
                 [[differences]]\nname=\"d\"\nunit=\"V\"\nchannel=\"a\"\nminus=\"b\"\n\
                 when=[{channel=\"b\", above=1.0, below=5.0}]\n",
            ),
        )
        .unwrap();
        // Ratios first, then differences: the order of their features.
        let names: Vec<&str> = ok.derived().iter().map(DerivedChannel::name).collect();
        assert_eq!(names, ["r", "d"]);
        let d = &ok.derived()[1];
        assert_eq!(d.operands(), ("a", "b"));
        assert_eq!(d.value(5.0, 2.0), Some(3.0));
        assert_eq!(d.value(f64::INFINITY, 2.0), None);
        let when = &d.when()[0];
        assert!(when.holds(3.0));
        assert!(!when.holds(1.0) && !when.holds(5.0) && !when.holds(f64::NAN));
        for (derived, message) in [
            (
                "[[differences]]\nname=\"d\"\nunit=\"V\"\nchannel=\"a\"\nminus=\"z\"\n",
                "difference d names unknown channel z",
            ),
            (
                "[[differences]]\nname=\"b\"\nunit=\"V\"\nchannel=\"a\"\nminus=\"b\"\n",
                "channel b declared twice",
            ),
            (
                "[[differences]]\nname=\"d\"\nunit=\"V\"\nchannel=\"a\"\nminus=\"b\"\n\
                 when=[{channel=\"q\", above=0.0}]\n",
                "difference d names unknown channel q",
            ),
            (
                "[[ratios]]\nname=\"r\"\nunit=\"1\"\nnumerator=\"a\"\ndenominator=\"b\"\n\
                 when=[{channel=\"a\"}]\n",
                "ratio r: a condition on a needs a finite above or below",
            ),
            (
                "[[ratios]]\nname=\"r\"\nunit=\"1\"\nnumerator=\"a\"\ndenominator=\"b\"\n\
                 when=[{channel=\"a\", below=inf}]\n",
                "ratio r: a condition on a needs a finite above or below",
            ),
            (
                "[[differences]]\nname=\"d\"\nunit=\"V\"\nchannel=\"a\"\nminus=\"b\"\noffset=1.0\n",
                "unknown field `offset`",
            ),
        ] {
            let err = Profile::from_toml("t", &profile(derived))
                .unwrap_err()
                .to_string();
            assert!(err.contains(message), "{derived}: {err}");
        }
    }
}
