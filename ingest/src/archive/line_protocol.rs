//! Line protocol: one point per stored telemetry or fault row ([`write_point`]), the
//! layout docs/archive.md describes.

use std::fmt::Write as _;

use domain::{FaultMessage, FaultState, Message, ProfileSet, Telemetry};

/// The measurement of telemetry points.
pub const TELEMETRY_MEASUREMENT: &str = "telemetry";
/// The measurement of fault points.
pub const FAULT_MEASUREMENT: &str = "fault";

/// Field and tag keys a reading cannot use as its field key: InfluxDB discards a point
/// with `time`, `_field` or `_measurement` as a key, and `seq` is the archive's own
/// field. A reading of that name is written as `reading_{name}`.
const RESERVED_KEYS: [&str; 4] = ["seq", "time", "_field", "_measurement"];

/// Appends `s` escaped for a tag key, tag value or field key: `\`, `,`, `=` and space
/// get a backslash. Line protocol cannot carry a line break in a key or tag value, so
/// control characters become spaces (escaped too).
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if matches!(c, '\\' | ',' | '=' | ' ') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn push_tag(out: &mut String, key: &str, value: &str) {
    // An empty tag value is not allowed; the tag is left out instead.
    if value.is_empty() {
        return;
    }
    out.push(',');
    push_escaped(out, key);
    out.push('=');
    push_escaped(out, value);
}

/// Appends one point for `message` as a line of line protocol (no newline), with the
/// event time in milliseconds. Returns `false`, appending nothing, for a status
/// message, which the archive does not keep (it has no history: the store keeps
/// only the latest).
///
/// Layout (docs/archive.md):
/// * `telemetry,device_id=..,device_type=..,model=.. {channel}=<float>,...,seq=<u64>u <ts>`
///   with one float field per reading; a reading that is not finite is left out.
/// * `fault,code=..,device_id=..,device_type=..,model=..,severity=.. active=1i|0i,seq=<u64>u <ts>`
///   with `severity` from the device type's fault catalogue (`unknown` if the code is
///   not in it) and `active` 1 for raised, 0 for cleared.
///
/// Tags are in key order, as InfluxDB prefers. Everything in the line comes from the
/// stored row (and the profile), so the same row always gives the same point.
pub fn write_point(out: &mut String, message: &Message, profiles: &ProfileSet) -> bool {
    match message {
        Message::Telemetry(t) => {
            write_telemetry(out, t);
            true
        }
        Message::Fault(f) => {
            write_fault(out, f, profiles);
            true
        }
        Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => false,
    }
}

fn write_telemetry(out: &mut String, t: &Telemetry) {
    out.push_str(TELEMETRY_MEASUREMENT);
    push_tag(out, "device_id", t.device_id.as_str());
    push_tag(out, "device_type", &t.device.device_type);
    push_tag(out, "model", &t.device.model);
    out.push(' ');
    for (name, value) in &t.readings {
        if !value.is_finite() {
            continue;
        }
        if RESERVED_KEYS.contains(&name.as_str()) {
            out.push_str("reading_");
        }
        push_escaped(out, name);
        // Debug prints the shortest text that reads back as the same f64, with an
        // exponent for very large or small values (1e300), which line protocol accepts.
        let _ = write!(out, "={value:?},");
    }
    let _ = write!(out, "seq={}u {}", t.seq, t.ts.millis());
}

fn write_fault(out: &mut String, f: &FaultMessage, profiles: &ProfileSet) {
    let severity = profiles
        .get(&f.device.device_type)
        .and_then(|p| p.fault(&f.code))
        .map_or("unknown", |d| d.severity.as_str());
    out.push_str(FAULT_MEASUREMENT);
    push_tag(out, "code", &f.code);
    push_tag(out, "device_id", f.device_id.as_str());
    push_tag(out, "device_type", &f.device.device_type);
    push_tag(out, "model", &f.device.model);
    push_tag(out, "severity", severity);
    let active = match f.state {
        FaultState::Raised => 1,
        FaultState::Cleared => 0,
    };
    let _ = write!(out, " active={active}i,seq={}u {}", f.seq, f.ts.millis());
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{decode, Timestamp};

    fn telemetry(readings: Vec<(&str, f64)>) -> Message {
        Message::Telemetry(Telemetry {
            device_id: domain::DeviceId::parse("wm-1").unwrap(),
            ts: Timestamp(1_795_500_000_123),
            seq: 42,
            device: domain::DeviceInfo {
                device_type: "washer".into(),
                model: "WM-500".into(),
                fw: Some("1.0".into()),
                batch: None,
                region: None,
            },
            readings: readings
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        })
    }

    fn line(message: &Message) -> String {
        let mut out = String::new();
        assert!(write_point(&mut out, message, &ProfileSet::builtin()));
        out
    }

    #[test]
    fn telemetry_is_one_point_with_a_float_field_per_reading() {
        let m = telemetry(vec![("drain_time_s", 12.5), ("vibration_g", 1.0)]);
        assert_eq!(
            line(&m),
            "telemetry,device_id=wm-1,device_type=washer,model=WM-500 drain_time_s=12.5,vibration_g=1.0,seq=42u 1795500000123"
        );
    }

    #[test]
    fn tags_and_keys_escape_spaces_commas_equals_and_backslashes() {
        let mut m = telemetry(vec![("a b,c=d\\e", 0.5)]);
        if let Message::Telemetry(t) = &mut m {
            t.device.model = "WM 500,rev=2\\x".into();
            t.device.device_type = "wash\ner".into();
        }
        assert_eq!(
            line(&m),
            r"telemetry,device_id=wm-1,device_type=wash\ er,model=WM\ 500\,rev\=2\\x a\ b\,c\=d\\e=0.5,seq=42u 1795500000123"
        );
        let mut out = String::new();
        push_tag(&mut out, "k", "");
        assert_eq!(out, "", "an empty tag value leaves the tag out");
    }

    #[test]
    fn non_finite_readings_are_never_written_and_reserved_names_are_renamed() {
        let m = telemetry(vec![
            ("nan", f64::NAN),
            ("inf", f64::INFINITY),
            ("neg", f64::NEG_INFINITY),
            ("seq", 3.0),
            ("time", 1e300),
            ("tiny", -2.5e-300),
        ]);
        let l = line(&m);
        assert_eq!(
            l,
            "telemetry,device_id=wm-1,device_type=washer,model=WM-500 reading_seq=3.0,reading_time=1e300,tiny=-2.5e-300,seq=42u 1795500000123"
        );
        assert!(!l.to_lowercase().contains("nan") && !l.contains("inf"));
        // Every float written reads back as the same value.
        for (text, v) in [("1e300", 1e300), ("-2.5e-300", -2.5e-300), ("0.1", 0.1)] {
            assert_eq!(text.parse::<f64>().unwrap(), v);
            assert_eq!(format!("{v:?}"), text);
        }
    }

    #[test]
    fn faults_carry_code_severity_and_an_integer_state() {
        let raised = decode(
            "fixahead/v1/wm-1/fault",
            br#"{"ts": 1795500002000, "seq": 7, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}"#,
            &ProfileSet::builtin(),
        )
        .unwrap();
        let severity = ProfileSet::builtin()
            .get("washer")
            .unwrap()
            .fault("E21")
            .expect("E21 is in the washer catalogue")
            .severity
            .as_str();
        assert_eq!(
            line(&raised),
            format!("fault,code=E21,device_id=wm-1,device_type=washer,model=WM-500,severity={severity} active=1i,seq=7u 1795500002000")
        );
        let cleared = decode(
            "fixahead/v1/wm-1/fault",
            br#"{"ts": 1795500003000, "seq": 18446744073709551615, "type": "washer", "model": "WM-500", "code": "X 9", "state": "cleared"}"#,
            &ProfileSet::builtin(),
        )
        .unwrap();
        assert_eq!(
            line(&cleared),
            r"fault,code=X\ 9,device_id=wm-1,device_type=washer,model=WM-500,severity=unknown active=0i,seq=18446744073709551615u 1795500003000"
        );
        let status = decode("fixahead/v1/wm-1/status", b"online", &ProfileSet::builtin()).unwrap();
        let mut out = String::new();
        assert!(!write_point(&mut out, &status, &ProfileSet::builtin()));
        assert!(out.is_empty());
    }
}
