use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::{DomainError, Result};

/// An instant as milliseconds since the Unix epoch, UTC.
///
/// Event times come from devices, so this type never reads a clock itself; callers
/// that need "now" pass it in. In JSON it is written as RFC 3339 with milliseconds
/// (`2026-11-24T06:00:00.000Z`) and read from either RFC 3339 or integer epoch
/// milliseconds, like the wire protocol's `ts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// OpenAPI: an RFC 3339 date-time string (how a timestamp is serialised).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples(["2026-11-24T06:00:00.000Z"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.to_datetime() {
            Some(dt) => s.serialize_str(&dt.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => s.serialize_i64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Ok(Timestamp(ms)),
            Raw::Text(s) => Timestamp::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl Timestamp {
    /// Milliseconds in one hour.
    pub const HOUR_MS: i64 = 3_600_000;
    /// Milliseconds in one day.
    pub const DAY_MS: i64 = 86_400_000;

    /// Parses RFC 3339 (`2026-11-24T06:00:00Z`) or integer epoch milliseconds.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(Self(ms));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|dt| Self(dt.timestamp_millis()))
            .map_err(|_| DomainError::InvalidTimestamp(s.chars().take(64).collect()))
    }

    /// Epoch milliseconds.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The same instant as a chrono `DateTime<Utc>`, if it is representable.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.0).single()
    }

    /// RFC 3339 with millisecond precision, e.g. `2026-11-24T06:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .map(|dt| dt.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_else(|| self.0.to_string())
    }

    /// Hours from `earlier` to `self` (negative if `earlier` is later).
    pub fn hours_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / Self::HOUR_MS as f64
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Self(dt.timestamp_millis())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Parses a duration such as `30h`, `14d`, `90m`, `45s` or `1500ms`.
pub fn parse_duration_ms(s: &str) -> Result<i64> {
    let s = s.trim();
    let err = || DomainError::InvalidValue {
        what: "duration",
        value: s.to_owned(),
        expected: "a number followed by ms, s, m, h or d (e.g. 30h, 14d)",
    };
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(err)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| err())?;
    let unit_ms = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(err()),
    };
    let ms = n * unit_ms;
    if !ms.is_finite() || ms <= 0.0 || ms > i64::MAX as f64 {
        return Err(err());
    }
    Ok(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_timestamp_forms() {
        let a = Timestamp::parse("2026-11-24T06:00:00Z").unwrap();
        let b = Timestamp::parse("1795500000000").unwrap();
        assert_eq!(a.millis(), 1_795_500_000_000);
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2026-11-24T06:00:00.000Z");
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn json_is_rfc3339_and_reads_both_forms() {
        let t = Timestamp(1_795_500_000_000);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-11-24T06:00:00.000Z\""
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>("\"2026-11-24T06:00:00Z\"").unwrap(),
            t
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>("1795500000000").unwrap(),
            t
        );
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration_ms("30h").unwrap(), 30 * 3_600_000);
        assert_eq!(parse_duration_ms("14d").unwrap(), 14 * 86_400_000);
        assert_eq!(parse_duration_ms("1500ms").unwrap(), 1500);
        for bad in ["", "h", "10", "10w", "-3d", "0s"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?}");
        }
    }
}
