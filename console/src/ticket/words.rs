//! Feature names in words a planner reads: `drain_time_s.ewma_fast` is "Drain time:
//! average over the last day" / "排水时长：近一天均值".
//!
//! A feature name is `{channel}.{kind}` (a measured or derived channel of the profile and
//! one of `models::features::CHANNEL_FEATURES`), `fault.{component}.{kind}`
//! (`COMPONENT_FEATURES`) or one of the device-wide features (`DEVICE_FEATURES`). The
//! channel part is named from the profile (its description, shown beside) and, in
//! a name per shipped channel in both languages ([`channel_name`]); the kind part from a phrase per kind. A name this module
//! does not know is shown as it is.

use domain::{Lang, Profile};

/// What a feature measures, for a page.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FeatureWords {
    /// The words: "Drain time: average over the last day".
    pub(crate) label: String,
    /// What the channel measures (the profile's description, in English), if known;
    /// empty on a Chinese page for a channel with a Chinese name.
    pub(crate) detail: String,
    /// The unit its value is in (`s`, `°C`, `σ`, `h`), or empty.
    pub(crate) unit: String,
    /// The measured or derived channel it reads, if it is a channel feature.
    pub(crate) channel: Option<String>,
    /// Whether the value is in the channel's own units and level (an average, an
    /// extreme, the latest reading), so its normal range can be drawn on the channel.
    pub(crate) level: bool,
}

/// A channel feature kind: English and Chinese phrase, whether it is a level in the
/// channel's units, and whether its unit is the channel's.
struct Kind {
    name: &'static str,
    en: &'static str,
    zh: &'static str,
    level: bool,
    unit: KindUnit,
}

#[derive(Clone, Copy)]
enum KindUnit {
    Channel,
    Sigma,
}

const CHANNEL_KINDS: [Kind; 10] = [
    Kind {
        name: "ewma_fast",
        en: "average over the last day",
        zh: "近一天均值",
        level: true,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "ewma_slow",
        en: "average over the last week",
        zh: "近一周均值",
        level: true,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "std_slow",
        en: "spread over the last week",
        zh: "近一周波动幅度",
        level: false,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "trend",
        en: "last day against the last week",
        zh: "近一天相对近一周的变化",
        level: false,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "last",
        en: "latest reading",
        zh: "最新读数",
        level: true,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "min_7d",
        en: "lowest over the last week",
        zh: "近一周最低值",
        level: true,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "max_7d",
        en: "highest over the last week",
        zh: "近一周最高值",
        level: true,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "ewma_30d",
        en: "the device's own 30-day normal",
        zh: "该设备自身的30天基线",
        level: true,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "shift",
        en: "change from the device's own normal",
        zh: "相对该设备自身基线的偏移",
        level: false,
        unit: KindUnit::Channel,
    },
    Kind {
        name: "shift_z",
        en: "change from the device's own normal, in standard deviations",
        zh: "相对自身基线的偏移（标准差倍数）",
        level: false,
        unit: KindUnit::Sigma,
    },
];

/// Per-component fault features: (kind, English, Chinese, unit in English, in Chinese);
/// `{}` is the component's title.
const COMPONENT_KINDS: [(&str, &str, &str, &str, &str); 5] = [
    (
        "count_1d",
        "{} fault codes in the last day",
        "近一天{}相关故障码次数",
        "",
        "",
    ),
    (
        "count_7d",
        "{} fault codes in the last week",
        "近一周{}相关故障码次数",
        "",
        "",
    ),
    (
        "hours_since",
        "hours since the last {} fault code",
        "距上次{}相关故障码的小时数",
        "h",
        "小时",
    ),
    (
        "major_count_7d",
        "major or critical {} fault codes in the last week",
        "近一周{}相关严重/致命故障码次数",
        "",
        "",
    ),
    (
        "hours_since_repair",
        "hours since the {} was last repaired",
        "距{}上次维修的小时数",
        "h",
        "小时",
    ),
];

/// Device-wide features: (name, English, Chinese, unit in English, in Chinese).
const DEVICE_KINDS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "fault.all.count_7d",
        "Fault codes of any kind in the last week",
        "近一周各类故障码总次数",
        "",
        "",
    ),
    (
        "device.age_days",
        "Days the device has been reporting",
        "设备已上报数据的天数",
        "d",
        "天",
    ),
    (
        "device.messages_log1p",
        "Messages reported (logarithmic)",
        "已上报消息数（对数）",
        "",
        "",
    ),
];

/// The names of the shipped profiles' channels in English and Chinese (their files
/// describe channels in English sentences only).
const SHIPPED: [(&str, &str, &str); 35] = [
    // Washer, dishwasher.
    (
        "motor_current_a",
        "Motor current",
        "电机电流（脱水阶段平均）",
    ),
    ("vibration_g", "Drum vibration", "滚筒振动（最终脱水）"),
    ("water_temp_c", "Water temperature", "洗涤水温峰值"),
    ("wash_temp_c", "Wash temperature", "主洗水温峰值"),
    ("heat_time_s", "Heating time", "加热时长"),
    (
        "heat_time_per_k",
        "Heating time per kelvin",
        "每升温1开尔文所需加热时长",
    ),
    ("drain_time_s", "Drain time", "排水时长"),
    ("fill_time_s", "Fill time", "进水时长"),
    ("supply_voltage_v", "Supply voltage", "电源电压"),
    ("circulation_pressure_kpa", "Spray pressure", "喷淋压力"),
    ("pump_current_a", "Circulation pump current", "循环泵电流"),
    ("turbidity_ntu", "Rinse water turbidity", "漂洗水浊度"),
    ("cycle_time_min", "Program length", "程序时长"),
    // Air conditioner.
    ("outdoor_temp_c", "Outdoor temperature", "室外温度"),
    ("indoor_temp_c", "Room temperature", "室内温度"),
    ("compressor_hz", "Compressor frequency", "压缩机频率"),
    ("compressor_current_a", "Compressor current", "压缩机电流"),
    (
        "discharge_temp_c",
        "Discharge temperature",
        "压缩机排气温度",
    ),
    (
        "indoor_coil_temp_c",
        "Indoor coil temperature",
        "室内换热器温度",
    ),
    ("outdoor_fan_rpm", "Outdoor fan speed", "室外风机转速"),
    (
        "compressor_current_per_hz",
        "Compressor current per Hz",
        "压缩机单位频率电流",
    ),
    (
        "fan_speed_per_command",
        "Fan speed against command",
        "室外风机转速与指令之比",
    ),
    // Refrigerator.
    ("cabinet_temp_c", "Fridge temperature", "冷藏室温度"),
    ("freezer_temp_c", "Freezer temperature", "冷冻室温度"),
    ("evaporator_temp_c", "Evaporator temperature", "蒸发器温度"),
    ("compressor_duty", "Compressor duty", "压缩机运行占空比"),
    ("ambient_temp_c", "Room temperature", "环境温度"),
    ("defrost_time_min", "Defrost time", "除霜时长"),
    // Water heater.
    ("tank_temp_c", "Tank temperature", "水箱温度"),
    (
        "max_tank_temp_c",
        "Highest tank temperature",
        "水箱最高温度",
    ),
    ("inlet_temp_c", "Inlet temperature", "进水温度"),
    ("heating_duty", "Heating duty", "加热占空比"),
    ("element_current_a", "Element current", "加热管电流"),
    ("water_drawn_l", "Water drawn", "用水量"),
    ("element_conductance_s", "Element conductance", "加热管电导"),
];

fn shipped(channel: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    SHIPPED.iter().find(|(name, ..)| *name == channel)
}

/// Unit suffixes of channel names, dropped from the spoken name.
const UNIT_SUFFIXES: [&str; 14] = [
    "_s", "_a", "_c", "_v", "_g", "_l", "_kpa", "_ntu", "_min", "_hz", "_rpm", "_pct", "_k", "_w",
];

/// A channel name as English words, for a channel of no shipped profile:
/// `drain_time_s` is "Drain time".
fn humanise(channel: &str) -> String {
    let mut base = channel;
    for suffix in UNIT_SUFFIXES {
        if let Some(stripped) = channel.strip_suffix(suffix) {
            if !stripped.is_empty() {
                base = stripped;
                break;
            }
        }
    }
    let words = base.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A channel's name in `lang`.
pub(crate) fn channel_name(channel: &str, lang: Lang) -> String {
    match (shipped(channel), lang) {
        (Some((_, _, zh)), Lang::Zh) => (*zh).to_owned(),
        (Some((_, en, _)), Lang::En) => (*en).to_owned(),
        (None, _) => humanise(channel),
    }
}

/// A unit as people write it: `degC` is `°C`, `ratio` is nothing.
pub(crate) fn unit(u: &str) -> String {
    match u {
        "degC" => "°C".into(),
        "ratio" => String::new(),
        other => other.into(),
    }
}

/// A channel's unit and description from the profile (measured or derived).
fn channel_info(profile: Option<&Profile>, channel: &str) -> Option<(String, String)> {
    let profile = profile?;
    if let Some(c) = profile.channels().iter().find(|c| c.name == channel) {
        return Some((unit(&c.unit), c.description.clone()));
    }
    profile
        .derived()
        .iter()
        .find(|d| d.name() == channel)
        .map(|d| match d {
            domain::DerivedChannel::Ratio(r) => (unit(&r.unit), r.description.clone()),
            domain::DerivedChannel::Difference(x) => (unit(&x.unit), x.description.clone()),
        })
}

/// A component's title in `lang`, or its name.
pub(crate) fn component_title(profile: Option<&Profile>, component: &str, lang: Lang) -> String {
    profile
        .and_then(|p| p.component(component))
        .map(|c| c.title_in(lang))
        .filter(|t| !t.is_empty())
        .map_or_else(|| component.replace('_', " "), str::to_owned)
}

/// The words of feature `name` in `lang`.
pub(crate) fn feature(name: &str, profile: Option<&Profile>, lang: Lang) -> FeatureWords {
    let zh = lang == Lang::Zh;
    if let Some((_, en, zh_text, unit_en, unit_zh)) = DEVICE_KINDS.iter().find(|(n, ..)| *n == name)
    {
        return FeatureWords {
            label: if zh { zh_text } else { en }.to_string(),
            detail: String::new(),
            unit: if zh { unit_zh } else { unit_en }.to_string(),
            channel: None,
            level: false,
        };
    }
    if let Some(rest) = name.strip_prefix("fault.") {
        if let Some((component, kind)) = rest.rsplit_once('.') {
            if let Some((_, en, zh_text, unit_en, unit_zh)) =
                COMPONENT_KINDS.iter().find(|(k, ..)| *k == kind)
            {
                let title = component_title(profile, component, lang);
                let title = if zh { title } else { title.to_lowercase() };
                let text = if zh { zh_text } else { en };
                let label = capitalise(&text.replacen("{}", &title, 1));
                return FeatureWords {
                    label,
                    detail: String::new(),
                    unit: if zh { unit_zh } else { unit_en }.to_string(),
                    channel: None,
                    level: false,
                };
            }
        }
    }
    if let Some((channel, kind)) = name.rsplit_once('.') {
        if let Some(k) = CHANNEL_KINDS.iter().find(|k| k.name == kind) {
            let (channel_unit, mut detail) = channel_info(profile, channel).unwrap_or_default();
            // Profiles describe channels in English; a Chinese page names the shipped
            // ones in Chinese and keeps the English sentence only for the others.
            if zh && shipped(channel).is_some() {
                detail.clear();
            }
            let phrase = if zh { k.zh } else { k.en };
            let sep = if zh { "：" } else { ": " };
            return FeatureWords {
                label: format!("{}{sep}{phrase}", channel_name(channel, lang)),
                detail,
                unit: match k.unit {
                    KindUnit::Channel => channel_unit,
                    KindUnit::Sigma => "σ".into(),
                },
                channel: Some(channel.to_owned()),
                level: k.level,
            };
        }
    }
    FeatureWords {
        label: name.to_owned(),
        detail: String::new(),
        unit: String::new(),
        channel: None,
        level: false,
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn washer() -> std::sync::Arc<Profile> {
        domain::ProfileSet::builtin()
            .get("washer")
            .cloned()
            .expect("washer profile")
    }

    #[test]
    fn channel_features_read_as_a_channel_and_a_phrase() {
        let p = washer();
        let en = feature("drain_time_s.ewma_fast", Some(&p), Lang::En);
        assert_eq!(en.label, "Drain time: average over the last day");
        assert_eq!(en.unit, "s");
        assert!(en.level);
        assert_eq!(en.channel.as_deref(), Some("drain_time_s"));
        assert!(en.detail.contains("empty the drum"), "{}", en.detail);
        let zh = feature("drain_time_s.ewma_fast", Some(&p), Lang::Zh);
        assert_eq!(zh.label, "排水时长：近一天均值");
        let z = feature("water_temp_c.shift_z", Some(&p), Lang::En);
        assert_eq!(z.unit, "σ");
        assert!(!z.level);
        let ratio = feature("heat_time_per_k.trend", Some(&p), Lang::En);
        assert_eq!(ratio.unit, "s/K");
        assert_eq!(
            ratio.label,
            "Heating time per kelvin: last day against the last week"
        );
        assert_eq!(channel_name("oil_pressure_kpa", Lang::Zh), "Oil pressure");
    }

    #[test]
    fn fault_and_device_features_name_the_component() {
        let p = washer();
        let en = feature("fault.drain_pump.count_7d", Some(&p), Lang::En);
        assert_eq!(en.label, "Drain pump fault codes in the last week");
        let zh = feature("fault.drain_pump.hours_since", Some(&p), Lang::Zh);
        assert_eq!(zh.label, "距上次排水泵相关故障码的小时数");
        assert_eq!(zh.unit, "小时");
        let all = feature("fault.all.count_7d", Some(&p), Lang::En);
        assert_eq!(all.label, "Fault codes of any kind in the last week");
        assert_eq!(
            feature("something.odd", None, Lang::En).label,
            "something.odd"
        );
        assert_eq!(feature("", None, Lang::Zh).label, "");
    }

    #[test]
    fn every_shipped_channel_has_a_chinese_name() {
        for profile in domain::ProfileSet::builtin().iter() {
            for c in profile.channels() {
                assert!(shipped(&c.name).is_some(), "{}", c.name);
            }
            for d in profile.derived() {
                assert!(shipped(d.name()).is_some(), "{}", d.name());
            }
        }
    }
}
