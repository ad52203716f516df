//! Times as a person reads them: in their time zone, formatted for their language.

use chrono::{TimeZone as _, Utc};
use chrono_tz::Tz;
use domain::{Lang, Timestamp};

/// A person's time zone and language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clock {
    pub(crate) tz: Tz,
    pub(crate) lang: Lang,
}

impl Clock {
    /// `tz` (an IANA name; UTC when it does not parse) in `lang`.
    pub(crate) fn new(tz: &str, lang: Lang) -> Self {
        Self {
            tz: tz.parse().unwrap_or(Tz::UTC),
            lang,
        }
    }

    fn local(&self, ts: Timestamp) -> Option<chrono::DateTime<Tz>> {
        Utc.timestamp_millis_opt(ts.millis())
            .single()
            .map(|t| t.with_timezone(&self.tz))
    }

    /// Date and minute: `2026-12-07 14:30` (both languages write dates this way in
    /// tables; Chinese readers know the ISO form from every service system).
    pub(crate) fn at(&self, ts: Timestamp) -> String {
        self.local(ts)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    }

    /// Date and time with the zone's abbreviation: `2026-12-07 14:30 CST`.
    pub(crate) fn at_zone(&self, ts: Timestamp) -> String {
        self.local(ts)
            .map(|t| t.format("%Y-%m-%d %H:%M %Z").to_string())
            .unwrap_or_default()
    }

    /// The date alone: `2026-12-07`.
    pub(crate) fn date(&self, ts: Timestamp) -> String {
        self.local(ts)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    }

    /// The machine-readable form for a `<time datetime>` attribute (RFC 3339, UTC).
    pub(crate) fn iso(&self, ts: Timestamp) -> String {
        ts.to_string()
    }

    /// A span of time, coarse: `3 d 4 h`, `2 h 15 min`, `45 min`, `< 1 min`
    /// (`3天4小时`, ...).
    pub(crate) fn span(&self, ms: i64) -> String {
        let minutes = ms.unsigned_abs() / 60_000;
        let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
        match self.lang {
            Lang::En => match (d, h, m) {
                (0, 0, 0) => "< 1 min".into(),
                (0, 0, m) => format!("{m} min"),
                (0, h, m) => format!("{h} h {m} min"),
                (d, h, _) => format!("{d} d {h} h"),
            },
            Lang::Zh => match (d, h, m) {
                (0, 0, 0) => "不到1分钟".into(),
                (0, 0, m) => format!("{m}分钟"),
                (0, h, m) => format!("{h}小时{m}分钟"),
                (d, h, _) => format!("{d}天{h}小时"),
            },
        }
    }

    /// How far `ts` is from `now`: `in 2 h 15 min` / `2 h 15 min ago`
    /// (`2小时15分钟后` / `2小时15分钟前`).
    pub(crate) fn relative(&self, ts: Timestamp, now: Timestamp) -> String {
        let d = ts.millis() - now.millis();
        let span = self.span(d);
        match (self.lang, d >= 0) {
            (Lang::En, true) => format!("in {span}"),
            (Lang::En, false) => format!("{span} ago"),
            (Lang::Zh, true) => format!("{span}后"),
            (Lang::Zh, false) => format!("{span}前"),
        }
    }

    /// A number with `decimals` places and thousands separators (`12,345.6`; the same
    /// in both languages, as mainland China writes numbers).
    pub(crate) fn number(&self, x: f64, decimals: usize) -> String {
        if !x.is_finite() {
            return "–".into();
        }
        let text = format!("{:.*}", decimals, x.abs());
        let (int, frac) = text
            .split_once('.')
            .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
        let mut grouped = String::with_capacity(text.len() + int.len() / 3 + 1);
        if x < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
            grouped.push('-');
        }
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if let Some(f) = frac {
            grouped.push('.');
            grouped.push_str(f);
        }
        grouped
    }

    /// A share as a percentage: `85%` / `85.3%`.
    pub(crate) fn percent(&self, share: f64, decimals: usize) -> String {
        format!("{}%", self.number(share * 100.0, decimals))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_persons_zone() {
        let ts = Timestamp(1_796_654_400_000); // 2026-12-07T14:40:00Z
        let shanghai = Clock::new("Asia/Shanghai", Lang::Zh);
        assert_eq!(shanghai.at(ts), "2026-12-07 22:40");
        assert_eq!(shanghai.at_zone(ts), "2026-12-07 22:40 CST");
        let utc = Clock::new("not a zone", Lang::En);
        assert_eq!(utc.at(ts), "2026-12-07 14:40");
        assert_eq!(utc.date(ts), "2026-12-07");
    }

    #[test]
    fn spans_and_relative_times_read_naturally_in_both_languages() {
        let now = Timestamp(0);
        let en = Clock::new("UTC", Lang::En);
        let zh = Clock::new("UTC", Lang::Zh);
        assert_eq!(en.relative(Timestamp(8_100_000), now), "in 2 h 15 min");
        assert_eq!(zh.relative(Timestamp(8_100_000), now), "2小时15分钟后");
        assert_eq!(en.relative(Timestamp(-90_000_000), now), "1 d 1 h ago");
        assert_eq!(zh.relative(Timestamp(-30_000), now), "不到1分钟前");
        assert_eq!(en.span(45 * 60_000), "45 min");
    }

    #[test]
    fn numbers_are_grouped() {
        let c = Clock::new("UTC", Lang::En);
        assert_eq!(c.number(1_234_567.891, 1), "1,234,567.9");
        assert_eq!(c.number(-1234.0, 0), "-1,234");
        assert_eq!(c.number(-0.01, 1), "0.0");
        assert_eq!(c.number(999.0, 0), "999");
        assert_eq!(c.number(f64::NAN, 2), "–");
        assert_eq!(c.percent(0.853, 1), "85.3%");
    }
}
