use std::fmt;

use domain::{Priority, Severity, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A duration in a configuration file, written as a number and a unit:
/// `90s`, `15m`, `4h`, `7d` (also `ms`). Serialised the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConfigDuration(i64);

impl ConfigDuration {
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// A duration of `m` minutes.
    pub const fn from_minutes(m: i64) -> Self {
        Self(m * 60_000)
    }

    /// A duration of `h` hours.
    pub const fn from_hours(h: i64) -> Self {
        Self(h * 3_600_000)
    }

    /// Milliseconds.
    pub const fn millis(self) -> i64 {
        self.0
    }
}

impl TryFrom<String> for ConfigDuration {
    type Error = domain::DomainError;
    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        domain::time::parse_duration_ms(&s).map(Self)
    }
}

impl From<ConfigDuration> for String {
    fn from(d: ConfigDuration) -> String {
        d.to_string()
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(i64, &str); 4] = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ];
        for (unit, name) in UNITS {
            if self.0 % unit == 0 && self.0 != 0 {
                return write!(f, "{}{name}", self.0 / unit);
            }
        }
        write!(f, "{}ms", self.0)
    }
}

/// How predictions become tickets: priority rules, SLA response times and how often a
/// risk change is written to a ticket's log. Embeddable in the TOML config as
/// `[tickets]`; every field is optional and unknown keys are rejected.
///
/// **Priority rules** (applied when a ticket opens, and again on every update, where
/// a priority is only ever raised, never lowered automatically):
/// 1. `urgent` if the risk is at least `urgent_risk`, or the predicted lead time is at
///    most `urgent_lead_time`, or the device raised a fault code of `critical` severity
///    that the catalogue links to the ticket's component within `critical_fault_window`
///    before the prediction's event time;
/// 2. `important` if the risk is at least `important_risk`, or the predicted lead time
///    is at most `important_lead_time`;
/// 3. `normal` otherwise.
///
/// The predicted lead time is the model's (`Prediction::lead_time_days`: the median
/// time to failure of validation rows at a similar risk that did fail; docs/models.md);
/// a model without lead times leaves risk and fault severity to decide. A reactive
/// ticket (a critical fault code) is always urgent.
///
/// **SLA**: a ticket must be responded to (leave `open`) by `opened_at +
/// <tier>_response` and be resolved (or dismissed) by `opened_at + <tier>_resolve`.
/// When the priority is raised, each deadline moves to `min(deadline, now + <new tier>
/// time)`. A reopened ticket gets fresh clocks from the reopening time. A deadline that
/// passes is a breach: logged, escalated to `<tier>_escalation`, and announced as a
/// `ticket.sla_breached` event, once per clock.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `urgent_risk` | `0.9` | risk at or above which a ticket is urgent |
/// | `important_risk` | `0.7` | risk at or above which a ticket is important |
/// | `urgent_lead_time` | `"2d"` | predicted lead time at or below which a ticket is urgent |
/// | `important_lead_time` | `"7d"` | predicted lead time at or below which a ticket is important |
/// | `urgent_response` | `"1h"` | response time of urgent tickets |
/// | `important_response` | `"4h"` | response time of important tickets |
/// | `normal_response` | `"24h"` | response time of normal tickets |
/// | `urgent_resolve` | `"24h"` | resolution time of urgent tickets |
/// | `important_resolve` | `"48h"` | resolution time of important tickets |
/// | `normal_resolve` | `"72h"` | resolution time of normal tickets |
/// | `urgent_escalation` | `"after-sales-manager"` | who a breached urgent ticket escalates to |
/// | `important_escalation` | `"service-supervisor"` | who a breached important ticket escalates to |
/// | `normal_escalation` | `"service-supervisor"` | who a breached normal ticket escalates to |
/// | `reopen_window` | `"14d"` | how long after resolving or dismissing a ticket it may be reopened |
/// | `sla_check_interval` | `"30s"` | how often `fixahead run` checks SLA deadlines |
/// | `event_retention` | `"30d"` | events older than this are deleted (checked with the SLA) |
/// | `critical_fault_window` | `"7d"` | how far back a critical fault code makes a ticket urgent |
/// | `risk_log_delta` | `0.05` | a `risk_updated` log entry needs the risk to move at least this much from the last logged risk |
/// | `risk_log_interval` | `"1h"` | and at least this long since the last `risk_updated` entry |
///
/// Durations are a number and a unit: `ms`, `s`, `m`, `h` or `d` (`"15m"`, `"2h"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketConfig {
    /// Risk at or above which a ticket is urgent (default 0.9).
    pub urgent_risk: f64,
    /// Risk at or above which a ticket is important (default 0.7).
    pub important_risk: f64,
    /// Predicted lead time at or below which a ticket is urgent (default 2 d).
    pub urgent_lead_time: ConfigDuration,
    /// Predicted lead time at or below which a ticket is important (default 7 d).
    pub important_lead_time: ConfigDuration,
    /// Response time of urgent tickets (default 1 h).
    pub urgent_response: ConfigDuration,
    /// Response time of important tickets (default 4 h).
    pub important_response: ConfigDuration,
    /// Response time of normal tickets (default 24 h).
    pub normal_response: ConfigDuration,
    /// Resolution time of urgent tickets (default 24 h).
    pub urgent_resolve: ConfigDuration,
    /// Resolution time of important tickets (default 48 h).
    pub important_resolve: ConfigDuration,
    /// Resolution time of normal tickets (default 72 h).
    pub normal_resolve: ConfigDuration,
    /// Who a breached urgent ticket escalates to (default `after-sales-manager`).
    pub urgent_escalation: String,
    /// Who a breached important ticket escalates to (default `service-supervisor`).
    pub important_escalation: String,
    /// Who a breached normal ticket escalates to (default `service-supervisor`).
    pub normal_escalation: String,
    /// How long after it was resolved or dismissed a ticket may be reopened
    /// (default 14 d).
    pub reopen_window: ConfigDuration,
    /// How often the SLA checker runs in `fixahead run` (default 30 s).
    pub sla_check_interval: ConfigDuration,
    /// Events older than this are deleted by the SLA checker (default 30 d).
    pub event_retention: ConfigDuration,
    /// How far back (in event time) a critical fault code of the component makes a
    /// ticket urgent (default 7 d).
    pub critical_fault_window: ConfigDuration,
    /// Minimum change from the last logged risk for a `risk_updated` log entry
    /// (default 0.05).
    pub risk_log_delta: f64,
    /// Minimum time between two `risk_updated` log entries of a ticket (default 1 h).
    pub risk_log_interval: ConfigDuration,
}

impl TicketConfig {
    fn default_const() -> Self {
        Self {
            urgent_risk: 0.9,
            important_risk: 0.7,
            urgent_lead_time: ConfigDuration::from_hours(2 * 24),
            important_lead_time: ConfigDuration::from_hours(7 * 24),
            urgent_response: ConfigDuration::from_hours(1),
            important_response: ConfigDuration::from_hours(4),
            normal_response: ConfigDuration::from_hours(24),
            urgent_resolve: ConfigDuration::from_hours(24),
            important_resolve: ConfigDuration::from_hours(48),
            normal_resolve: ConfigDuration::from_hours(72),
            urgent_escalation: "after-sales-manager".into(),
            important_escalation: "service-supervisor".into(),
            normal_escalation: "service-supervisor".into(),
            reopen_window: ConfigDuration::from_hours(14 * 24),
            sla_check_interval: ConfigDuration::from_millis(30_000),
            event_retention: ConfigDuration::from_hours(30 * 24),
            critical_fault_window: ConfigDuration::from_hours(7 * 24),
            risk_log_delta: 0.05,
            risk_log_interval: ConfigDuration::from_hours(1),
        }
    }

    /// Checks that thresholds are in [0, 1] with `important_risk <= urgent_risk`, that
    /// `risk_log_delta` is in [0, 1] and that durations are positive.
    pub fn validate(&self) -> Result<()> {
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        if !unit(self.urgent_risk) || !unit(self.important_risk) {
            return Err(Error::Config(
                "urgent_risk and important_risk must be between 0 and 1".into(),
            ));
        }
        if self.important_risk > self.urgent_risk {
            return Err(Error::Config(format!(
                "important_risk ({}) must not exceed urgent_risk ({})",
                self.important_risk, self.urgent_risk
            )));
        }
        if self.urgent_lead_time > self.important_lead_time {
            return Err(Error::Config(format!(
                "urgent_lead_time ({}) must not exceed important_lead_time ({})",
                self.urgent_lead_time, self.important_lead_time
            )));
        }
        if !unit(self.risk_log_delta) {
            return Err(Error::Config(
                "risk_log_delta must be between 0 and 1".into(),
            ));
        }
        for (name, d) in [
            ("urgent_response", self.urgent_response),
            ("important_response", self.important_response),
            ("normal_response", self.normal_response),
            ("urgent_resolve", self.urgent_resolve),
            ("important_resolve", self.important_resolve),
            ("normal_resolve", self.normal_resolve),
            ("reopen_window", self.reopen_window),
            ("sla_check_interval", self.sla_check_interval),
            ("event_retention", self.event_retention),
            ("critical_fault_window", self.critical_fault_window),
            ("risk_log_interval", self.risk_log_interval),
        ] {
            if d.millis() <= 0 {
                return Err(Error::Config(format!("{name} must be positive")));
            }
        }
        for (name, who) in [
            ("urgent_escalation", &self.urgent_escalation),
            ("important_escalation", &self.important_escalation),
            ("normal_escalation", &self.normal_escalation),
        ] {
            if who.trim().is_empty() {
                return Err(Error::Config(format!("{name} must not be empty")));
            }
        }
        Ok(())
    }

    /// The priority tier of a risk and its predicted lead time in days (if the model
    /// gives one), given whether a critical fault code of the component was raised
    /// recently (see the rules above).
    pub fn priority(
        &self,
        risk: f64,
        lead_time_days: Option<f64>,
        critical_fault: bool,
    ) -> Priority {
        let within = |d: ConfigDuration| {
            lead_time_days.is_some_and(|days| days * Timestamp::DAY_MS as f64 <= d.millis() as f64)
        };
        if critical_fault || risk >= self.urgent_risk || within(self.urgent_lead_time) {
            Priority::Urgent
        } else if risk >= self.important_risk || within(self.important_lead_time) {
            Priority::Important
        } else {
            Priority::Normal
        }
    }

    /// The SLA response time of a tier, in milliseconds.
    pub fn response_ms(&self, priority: Priority) -> i64 {
        match priority {
            Priority::Urgent => self.urgent_response.millis(),
            Priority::Important => self.important_response.millis(),
            Priority::Normal => self.normal_response.millis(),
        }
    }

    /// The SLA resolution time of a tier, in milliseconds.
    pub fn resolve_ms(&self, priority: Priority) -> i64 {
        match priority {
            Priority::Urgent => self.urgent_resolve.millis(),
            Priority::Important => self.important_resolve.millis(),
            Priority::Normal => self.normal_resolve.millis(),
        }
    }

    /// Who a breached ticket of a tier escalates to.
    pub fn escalation(&self, priority: Priority) -> &str {
        match priority {
            Priority::Urgent => &self.urgent_escalation,
            Priority::Important => &self.important_escalation,
            Priority::Normal => &self.normal_escalation,
        }
    }

    /// Whether a fault severity triggers the urgent rule.
    pub(crate) fn is_critical(severity: Severity) -> bool {
        severity == Severity::Critical
    }
}

impl Default for TicketConfig {
    fn default() -> Self {
        Self::default_const()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_toml() {
        let c: TicketConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, TicketConfig::default());
        assert_eq!(c.response_ms(Priority::Urgent), 3_600_000);
        assert_eq!(c.response_ms(Priority::Important), 4 * 3_600_000);
        assert_eq!(c.response_ms(Priority::Normal), 24 * 3_600_000);
        assert_eq!(c.resolve_ms(Priority::Urgent), 24 * 3_600_000);
        assert_eq!(c.resolve_ms(Priority::Important), 48 * 3_600_000);
        assert_eq!(c.resolve_ms(Priority::Normal), 72 * 3_600_000);
        assert_eq!(c.reopen_window.to_string(), "14d");
        assert_eq!(c.escalation(Priority::Urgent), "after-sales-manager");
        let c: TicketConfig =
            serde_json::from_str(r#"{"urgent_response": "15m", "important_response": "2h"}"#)
                .unwrap();
        assert_eq!(c.urgent_response.millis(), 15 * 60_000);
        assert_eq!(c.important_response.to_string(), "2h");
        assert!(serde_json::from_str::<TicketConfig>(r#"{"urgent": 1}"#).is_err());
        assert!(serde_json::from_str::<TicketConfig>(r#"{"urgent_response": "soon"}"#).is_err());
    }

    #[test]
    fn priority_rules() {
        let c = TicketConfig::default();
        assert_eq!(c.priority(0.95, None, false), Priority::Urgent);
        assert_eq!(c.priority(0.9, None, false), Priority::Urgent);
        assert_eq!(c.priority(0.89, None, false), Priority::Important);
        assert_eq!(c.priority(0.7, None, false), Priority::Important);
        assert_eq!(c.priority(0.5, None, false), Priority::Normal);
        assert_eq!(c.priority(0.5, None, true), Priority::Urgent);
        // Lead time: 2 days or less is urgent, 7 days or less important.
        assert_eq!(c.priority(0.5, Some(2.0), false), Priority::Urgent);
        assert_eq!(c.priority(0.5, Some(2.01), false), Priority::Important);
        assert_eq!(c.priority(0.5, Some(7.0), false), Priority::Important);
        assert_eq!(c.priority(0.5, Some(7.5), false), Priority::Normal);
        assert_eq!(
            c.priority(0.95, Some(30.0), false),
            Priority::Urgent,
            "risk still counts"
        );
    }

    #[test]
    fn validation() {
        assert!(TicketConfig::default().validate().is_ok());
        let bad = TicketConfig {
            important_risk: 0.95,
            ..TicketConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = TicketConfig {
            urgent_risk: f64::NAN,
            ..TicketConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = TicketConfig {
            urgent_lead_time: ConfigDuration::from_hours(200),
            ..TicketConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
