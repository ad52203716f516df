//! The fault-code rule of a component, and the calendar months it is on.

use serde::{Deserialize, Serialize};

/// A fault-code rule read from a component's fault features, as the after-sales
/// catalogue rule (and `eval`'s baseline) reads the codes: it fires while a major or
/// critical code of the component was raised within about the last 7 days
/// (`fault.{c}.major_count_7d`, a count decaying with a 7-day time constant, at least
/// `e^-1`), or two or more of its codes within a few days (`fault.{c}.count_7d` at
/// least 1.5), and a code came after the component's last repair
/// (`fault.{c}.hours_since` under `fault.{c}.hours_since_repair`, or no repair seen
/// within the cap): the codes of the failure a repair fixed decay for weeks and
/// are not a new wear. Rules trained now also need the last code to be recent
/// (`recent_hours`). Read from the feature vector, it is the same in training,
/// evaluation and the live pipeline.
///
/// `months` limits the rule to calendar months (UTC) of the score's event time: a code
/// can be precise in one season and early in another (an air conditioner's
/// discharge-temperature code comes weeks before a leak fails while it heats, days
/// before while it cools). Training sets it only where the whole-year rule was not
/// chosen on validation ([`crate::train`](mod@crate::train); "A seasonal fault-code
/// rule" in docs/models.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Index of `fault.{component}.count_7d` in the feature schema.
    pub count_7d: usize,
    /// Index of `fault.{component}.major_count_7d` in the feature schema.
    pub major_count_7d: usize,
    /// Index of `fault.{component}.hours_since` (since its last code).
    pub hours_since: usize,
    /// Index of `fault.{component}.hours_since_repair` in the feature schema.
    pub hours_since_repair: usize,
    /// The calendar months the rule is on; every month when absent (artefacts written
    /// before it existed, and every rule validated on the whole year).
    #[serde(default, skip_serializing_if = "MonthSet::is_all")]
    pub months: MonthSet,
    /// When set, the rule fires only while the component's last code is younger than
    /// this many hours (`fault.{c}.hours_since`), so a flag it raised drops about
    /// `recent_hours` plus the release time after the last code, and a code weeks later
    /// raises a new one. Absent in artefacts written before it existed: their rule
    /// keeps firing while the decayed counts stay up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_hours: Option<u32>,
}

/// A set of calendar months (1 = January), serialised as the sorted list of its
/// month numbers. The default is every month.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MonthSet(u16);

impl std::fmt::Debug for MonthSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MonthSet({self})")
    }
}

impl MonthSet {
    const ALL_BITS: u16 = (1 << 12) - 1;
    /// Every month.
    pub const ALL: MonthSet = MonthSet(Self::ALL_BITS);
    /// No month.
    pub const NONE: MonthSet = MonthSet(0);

    /// The set of `months` (1-12); other numbers are ignored.
    pub fn of(months: impl IntoIterator<Item = u8>) -> MonthSet {
        MonthSet(
            months
                .into_iter()
                .filter(|m| (1..=12).contains(m))
                .fold(0, |bits, m| bits | 1 << (m - 1)),
        )
    }

    /// Whether `month` (1-12) is in the set.
    pub fn contains(self, month: u8) -> bool {
        (1..=12).contains(&month) && self.0 & (1 << (month - 1)) != 0
    }

    /// Whether the set holds every month.
    pub fn is_all(&self) -> bool {
        self.0 == Self::ALL_BITS
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The months in the set, ascending.
    pub fn months(self) -> impl Iterator<Item = u8> {
        (1..=12).filter(move |&m| self.contains(m))
    }

    /// The calendar month (1-12, UTC) of `ts_ms`, epoch milliseconds; 0 when out of
    /// chrono's range (no set contains it).
    pub fn month_of(ts_ms: i64) -> u8 {
        use chrono::Datelike;
        chrono::DateTime::from_timestamp_millis(ts_ms).map_or(0, |t| t.month() as u8)
    }
}

impl Default for MonthSet {
    fn default() -> Self {
        MonthSet::ALL
    }
}

impl std::fmt::Display for MonthSet {
    /// `Jun-Nov` style ranges, comma separated; `none` when empty.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        if self.is_empty() {
            return f.write_str("none");
        }
        let months: Vec<u8> = self.months().collect();
        let mut first = true;
        let mut k = 0;
        while k < months.len() {
            let start = months[k];
            while k + 1 < months.len() && months[k + 1] == months[k] + 1 {
                k += 1;
            }
            let end = months[k];
            if !first {
                f.write_str(",")?;
            }
            first = false;
            let name = |m: u8| NAMES[usize::from(m - 1)];
            if start == end {
                f.write_str(name(start))?;
            } else {
                write!(f, "{}-{}", name(start), name(end))?;
            }
            k += 1;
        }
        Ok(())
    }
}

impl Serialize for MonthSet {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.months())
    }
}

impl<'de> Deserialize<'de> for MonthSet {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let months = Vec::<u8>::deserialize(deserializer)?;
        if let Some(bad) = months.iter().find(|m| !(1..=12).contains(*m)) {
            return Err(serde::de::Error::custom(format!(
                "month {bad} is not a calendar month (1-12)"
            )));
        }
        Ok(MonthSet::of(months))
    }
}

impl FaultRule {
    /// `major_count_7d` at or above this: a major or critical code within 7 days.
    pub const MAJOR_MIN: f64 = 0.367_879_441_171_442_33;
    /// `count_7d` at or above this: two codes within about 5 days (or more, longer).
    pub const COUNT_MIN: f64 = 1.5;
    /// [`FaultRule::recent_hours`] of the rules training builds: 4 days. With the
    /// 3-day release of a flag (`release_ms`), a code holds a flag up for about a week,
    /// the window of `eval`'s catalogue baseline. Without it, codes every few days kept
    /// the decayed counts up for weeks: one flag raised a month before a failure stayed
    /// up through it and counted as a false alarm and a miss (docs/models.md).
    pub const RECENT_HOURS: u32 = 96;

    /// The rule of `component` in a feature schema, when it has fault features.
    pub fn for_component(schema: &[String], component: &str) -> Option<FaultRule> {
        let find = |what: &str| {
            let name = format!("fault.{component}.{what}");
            schema.iter().position(|n| *n == name)
        };
        Some(FaultRule {
            count_7d: find("count_7d")?,
            major_count_7d: find("major_count_7d")?,
            hours_since: find("hours_since")?,
            hours_since_repair: find("hours_since_repair")?,
            months: MonthSet::ALL,
            recent_hours: Some(Self::RECENT_HOURS),
        })
    }

    /// Whether the rule fires at event time `ts_ms` on the raw feature vector `raw`:
    /// [`FaultRule::fires`] in one of its `months`.
    pub fn fires_at(&self, ts_ms: i64, raw: &[f64]) -> bool {
        self.fires(raw) && (self.months.is_all() || self.months.contains(MonthSet::month_of(ts_ms)))
    }

    /// Whether the rule fires on the raw (unstandardised) feature vector `raw`.
    pub fn fires(&self, raw: &[f64]) -> bool {
        self.fires_with(|i| raw.get(i).copied())
    }

    /// Whether the rule fires, reading feature `i` with `feature(i)`.
    pub fn fires_with(&self, feature: impl Fn(usize) -> Option<f64>) -> bool {
        let codes = feature(self.major_count_7d).is_some_and(|v| v >= Self::MAJOR_MIN)
            || feature(self.count_7d).is_some_and(|v| v >= Self::COUNT_MIN);
        if !codes {
            return false;
        }
        if let Some(hours) = self.recent_hours {
            if !feature(self.hours_since).is_some_and(|h| h < f64::from(hours)) {
                return false;
            }
        }
        // A component never seen repaired (NaN), or not within the cap: no old failure's
        // codes left in the counts.
        let since_repair = feature(self.hours_since_repair).unwrap_or(f64::NAN);
        if since_repair.is_nan() || since_repair >= crate::features::HOURS_SINCE_CAP {
            return true;
        }
        feature(self.hours_since).is_some_and(|h| h < since_repair)
    }

    /// The highest feature index the rule reads.
    pub(super) fn max_index(&self) -> usize {
        self.count_7d
            .max(self.major_count_7d)
            .max(self.hours_since)
            .max(self.hours_since_repair)
    }
}

#[cfg(test)]
mod fault_rule_tests {
    use super::FaultRule;

    #[test]
    fn the_fault_code_rule_reads_codes_since_the_last_repair() {
        let schema: Vec<String> = [
            "x.level",
            "fault.pump.count_7d",
            "fault.pump.major_count_7d",
            "fault.pump.hours_since",
            "fault.pump.hours_since_repair",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(FaultRule::for_component(&schema, "fan"), None);
        let rule = FaultRule::for_component(&schema, "pump").unwrap();
        assert_eq!(
            rule,
            FaultRule {
                count_7d: 1,
                major_count_7d: 2,
                hours_since: 3,
                hours_since_repair: 4,
                months: super::MonthSet::ALL,
                recent_hours: Some(96),
            }
        );
        // An artefact written before `recent_hours`: the decayed counts alone decide.
        let legacy = FaultRule {
            recent_hours: None,
            ..rule
        };
        assert!(
            legacy.fires(&[0.0, 1.0, 0.37, 160.0, 720.0]),
            "a major code a week ago"
        );
        assert!(
            !legacy.fires(&[0.0, 1.0, 0.36, 170.0, 720.0]),
            "older than a week"
        );
        // Codes every five days keep the decayed count up for weeks; the recency ends
        // the rule's flag 4 days after the last one, so a later code raises a new one.
        assert!(legacy.fires(&[0.0, 2.0, 0.6, 120.0, 720.0]));
        assert!(!rule.fires(&[0.0, 2.0, 0.6, 120.0, 720.0]));
        assert!(rule.fires(&[0.0, 2.0, 0.6, 95.0, 720.0]));
        let fires = |count: f64, major: f64, since: f64, since_repair: f64| {
            rule.fires(&[0.0, count, major, since, since_repair])
        };
        // Never repaired (NaN or the 720 h cap): the codes alone decide.
        assert!(fires(1.0, 1.0, 2.0, f64::NAN), "a fresh major code");
        assert!(fires(1.0, 0.6, 90.0, 720.0), "a major code 90 h ago");
        assert!(fires(1.6, 0.0, 1.0, 720.0), "two minor codes within days");
        assert!(
            !fires(1.4, 0.0, 1.0, 720.0),
            "one minor code and an old one"
        );
        // Repaired 200 h ago: the failure's own codes still count up, but no code came
        // since the repair, so the rule stays quiet until one does.
        assert!(!legacy.fires(&[0.0, 1.2, 1.2, 260.0, 200.0]));
        assert!(fires(1.2, 1.2, 10.0, 200.0));
        assert!(
            !fires(1.2, 1.2, 90.0, 80.0),
            "a recent code, but before the repair"
        );
        // Missing or NaN features never panic.
        assert!(!rule.fires(&[]));
        assert!(!fires(f64::NAN, f64::NAN, f64::NAN, f64::NAN));
    }

    #[test]
    fn a_seasonal_rule_fires_in_its_months_and_old_files_read_as_every_month() {
        use super::MonthSet;
        let months = MonthSet::of([6, 7, 8, 9, 10, 12]);
        assert_eq!(months.to_string(), "Jun-Oct,Dec");
        assert_eq!(MonthSet::of([1, 3, 4]).to_string(), "Jan,Mar-Apr");
        assert_eq!(MonthSet::NONE.to_string(), "none");
        assert!(MonthSet::default().is_all());
        assert_eq!(
            MonthSet::of([0, 13, 7]),
            MonthSet::of([7]),
            "out of range ignored"
        );
        assert_eq!(serde_json::to_string(&months).unwrap(), "[6,7,8,9,10,12]");
        let back: MonthSet = serde_json::from_str("[12,6,7,8,9,10]").unwrap();
        assert_eq!(back, months);
        let err = serde_json::from_str::<MonthSet>("[6,13]").unwrap_err();
        assert!(err.to_string().contains("month 13"), "{err}");

        // 2026-07-15 and 2026-01-15, UTC.
        let (july, january) = (1_784_073_600_000, 1_768_435_200_000);
        assert_eq!(MonthSet::month_of(july), 7);
        assert_eq!(MonthSet::month_of(january), 1);
        assert_eq!(MonthSet::month_of(i64::MAX), 0, "out of range: no month");
        let raw = [1.0, 1.0, 1.0, 2.0, f64::NAN];
        let whole_year = FaultRule {
            count_7d: 0,
            major_count_7d: 1,
            hours_since: 3,
            hours_since_repair: 4,
            months: MonthSet::ALL,
            recent_hours: Some(96),
        };
        let summer = FaultRule {
            months: MonthSet::of([6, 7, 8]),
            ..whole_year
        };
        assert!(whole_year.fires_at(january, &raw) && whole_year.fires_at(july, &raw));
        assert!(summer.fires_at(july, &raw));
        assert!(!summer.fires_at(january, &raw));

        // A rule written before `months` and `recent_hours` existed reads as every
        // month without recency; a written rule reads back the same.
        let old: FaultRule = serde_json::from_str(
            r#"{"count_7d":0,"major_count_7d":1,"hours_since":3,"hours_since_repair":4}"#,
        )
        .unwrap();
        assert_eq!(
            old,
            FaultRule {
                recent_hours: None,
                ..whole_year
            }
        );
        let json = serde_json::to_string(&summer).unwrap();
        assert!(json.contains(r#""months":[6,7,8]"#), "{json}");
        assert_eq!(serde_json::from_str::<FaultRule>(&json).unwrap(), summer);
        assert!(!serde_json::to_string(&whole_year)
            .unwrap()
            .contains("months"));
    }
}
