//! Procedures: per problem type, the steps of a ticket's lifecycle with a time limit
//! each, measured from `opened_at` (or from the reopening time). The `[procedures]`
//! section of the config file; docs/procedures.md has the rules.

use std::fmt;
use std::str::FromStr;

use domain::{Priority, ReportChannel, StepClock, Ticket, TicketSource, TicketStatus, Timestamp};
use serde::{Deserialize, Serialize};

use super::ConfigDuration;
use crate::{Error, Result};

/// A step of a procedure, in the order a ticket goes through them. Completing a step
/// completes every earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// Done when the ticket leaves `open`.
    Respond,
    /// Done when a note is added while the ticket is `acknowledged` (the remote check's
    /// finding), or by any later step.
    RemoteCheck,
    /// Done when the ticket is assigned an engineer with a window, or becomes
    /// `scheduled`.
    Schedule,
    /// Done when the ticket becomes `in_progress` (the engineer is on site).
    Act,
    /// Done when the ticket becomes `resolved`.
    Finish,
    /// Done when the ticket becomes `closed` (the customer confirmed).
    Confirm,
}

impl StepName {
    /// Every step, in order.
    pub const ALL: [StepName; 6] = [
        Self::Respond,
        Self::RemoteCheck,
        Self::Schedule,
        Self::Act,
        Self::Finish,
        Self::Confirm,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Respond => "respond",
            Self::RemoteCheck => "remote_check",
            Self::Schedule => "schedule",
            Self::Act => "act",
            Self::Finish => "finish",
            Self::Confirm => "confirm",
        }
    }

    /// The step a ticket's move to `status` completes (with every earlier one);
    /// `None` for `open` and `dismissed` (a dismissal ends every pending step:
    /// [`complete_steps`] is called with the last step).
    pub const fn completed_by(status: TicketStatus) -> Option<StepName> {
        match status {
            TicketStatus::Acknowledged => Some(Self::Respond),
            TicketStatus::Scheduled => Some(Self::Schedule),
            TicketStatus::InProgress => Some(Self::Act),
            TicketStatus::Resolved => Some(Self::Finish),
            TicketStatus::Closed => Some(Self::Confirm),
            TicketStatus::Open | TicketStatus::Dismissed => None,
        }
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| Error::Corrupt(format!("unknown step {s:?}")))
    }
}

/// One step of a procedure: its name and its limit from `opened_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLimit {
    /// The step.
    pub step: StepName,
    /// Its limit, measured from the ticket's `opened_at` (or reopening time).
    pub within: ConfigDuration,
}

/// Which tickets a procedure applies to. Every field is a list of accepted values;
/// an empty (or absent) list accepts any value, so an empty match is a catch-all.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcedureMatch {
    /// Device types (`washer`, `refrigerator`, ...).
    pub device_type: Vec<String>,
    /// Components (`drain_pump`, ...).
    pub component: Vec<String>,
    /// Sources: `proactive` (a model's prediction) or `reactive` (a failure: a
    /// critical fault code or a customer's report).
    pub source: Vec<TicketSource>,
    /// Channels the ticket came through (`device`, `phone`, `app`, `web`,
    /// `installer`).
    pub channel: Vec<ReportChannel>,
    /// Priorities (`urgent`, `important`, `normal`).
    pub priority: Vec<Priority>,
}

impl ProcedureMatch {
    /// Whether it accepts every ticket.
    pub fn is_catch_all(&self) -> bool {
        self.device_type.is_empty()
            && self.component.is_empty()
            && self.source.is_empty()
            && self.channel.is_empty()
            && self.priority.is_empty()
    }

    /// Whether it accepts `t` (as it is now: its current priority and channel).
    pub fn accepts(&self, t: &Ticket) -> bool {
        fn any<T: PartialEq>(list: &[T], v: &T) -> bool {
            list.is_empty() || list.contains(v)
        }
        any(&self.device_type, &t.device_type)
            && any(&self.component, &t.component)
            && any(&self.source, &t.source)
            && any(&self.channel, &t.channel)
            && any(&self.priority, &t.priority)
    }
}

/// A named procedure: which tickets it applies to and its steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    /// Its name, shown on the ticket page and in the docs.
    pub name: String,
    /// Which tickets it applies to (default: every ticket).
    #[serde(default, rename = "match")]
    pub matches: ProcedureMatch,
    /// Its steps, in lifecycle order, with limits that never decrease.
    pub steps: Vec<StepLimit>,
}

/// The `[procedures]` section: the procedures, tried in order (first match wins; the
/// last must be a catch-all, so every ticket has one). An empty list turns step
/// clocks off. The default is the seeds' example (docs/procedures.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcedureConfig {
    /// The procedures, `[[procedures.procedure]]` in TOML.
    pub procedure: Vec<Procedure>,
}

fn limit(step: StepName, hours: i64) -> StepLimit {
    StepLimit {
        step,
        within: ConfigDuration::from_hours(hours),
    }
}

impl Default for ProcedureConfig {
    /// The seeds' example: a predicted (proactive) fault: respond 4 h, act 72 h,
    /// finish 7 d; any other ticket (a product fault, reactive): respond 2 h, act
    /// 24 h, finish 48 h, confirm 72 h.
    fn default() -> Self {
        Self {
            procedure: vec![
                Procedure {
                    name: "predicted fault".into(),
                    matches: ProcedureMatch {
                        source: vec![TicketSource::Proactive],
                        ..ProcedureMatch::default()
                    },
                    steps: vec![
                        limit(StepName::Respond, 4),
                        limit(StepName::Act, 72),
                        limit(StepName::Finish, 7 * 24),
                    ],
                },
                Procedure {
                    name: "product fault".into(),
                    matches: ProcedureMatch::default(),
                    steps: vec![
                        limit(StepName::Respond, 2),
                        limit(StepName::Act, 24),
                        limit(StepName::Finish, 48),
                        limit(StepName::Confirm, 72),
                    ],
                },
            ],
        }
    }
}

impl ProcedureConfig {
    /// Checks every procedure: a non-blank unique name, steps in lifecycle order each
    /// at most once, positive limits that never decrease, and a catch-all last.
    pub fn validate(&self) -> Result<()> {
        let bad = |i: usize, m: String| Err(Error::Config(format!("procedures[{i}]: {m}")));
        for (i, p) in self.procedure.iter().enumerate() {
            if p.name.trim().is_empty() {
                return bad(i, "name must not be empty".into());
            }
            if self.procedure[..i].iter().any(|q| q.name == p.name) {
                return bad(i, format!("name {:?} is used twice", p.name));
            }
            for (j, s) in p.steps.iter().enumerate() {
                if s.within.millis() <= 0 {
                    return bad(
                        i,
                        format!("steps[{j}] ({}): within must be positive", s.step),
                    );
                }
                if let Some(prev) = j.checked_sub(1).map(|k| &p.steps[k]) {
                    if prev.step >= s.step {
                        return bad(
                            i,
                            format!(
                                "steps[{j}]: {} must come after {} (order: {})",
                                prev.step,
                                s.step,
                                StepName::ALL.map(StepName::as_str).join(", ")
                            ),
                        );
                    }
                    if prev.within > s.within {
                        return bad(
                            i,
                            format!(
                                "steps[{j}]: {} within {} is shorter than {} within {} (limits must not decrease)",
                                s.step, s.within, prev.step, prev.within
                            ),
                        );
                    }
                }
            }
        }
        if let Some(last) = self.procedure.last() {
            if !last.matches.is_catch_all() {
                return bad(
                    self.procedure.len() - 1,
                    format!(
                        "the last procedure ({:?}) must match every ticket (an empty match)",
                        last.name
                    ),
                );
            }
        }
        Ok(())
    }

    /// The procedure for `t`: the first that accepts it.
    pub fn for_ticket(&self, t: &Ticket) -> Option<&Procedure> {
        self.procedure.iter().find(|p| p.matches.accepts(t))
    }
}

impl Procedure {
    /// Fresh step clocks measured from `start`.
    pub fn clocks(&self, start: Timestamp) -> Vec<StepClock> {
        self.steps
            .iter()
            .map(|s| StepClock {
                step: s.step.as_str().to_owned(),
                due: Timestamp(start.millis().saturating_add(s.within.millis())),
                done_at: None,
                overdue_at: None,
                alerted: None,
            })
            .collect()
    }
}

/// Marks done at `now` every pending step up to and including `upto`; returns
/// whether anything changed. Steps with an unknown name (a procedure changed since)
/// count as later than every known one.
pub fn complete_steps(steps: &mut [StepClock], upto: StepName, now: Timestamp) -> bool {
    let mut changed = false;
    for s in steps.iter_mut() {
        let done = s.step.parse::<StepName>().is_ok_and(|n| n <= upto);
        if done && s.done_at.is_none() {
            s.done_at = Some(now);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> std::result::Result<ProcedureConfig, String> {
        toml::from_str::<ProcedureConfig>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn default_is_the_seeds_example_and_valid() {
        let c = ProcedureConfig::default();
        c.validate().unwrap();
        let hours = |p: &Procedure| -> Vec<(StepName, i64)> {
            p.steps
                .iter()
                .map(|s| (s.step, s.within.millis() / 3_600_000))
                .collect()
        };
        assert_eq!(
            hours(&c.procedure[0]),
            [
                (StepName::Respond, 4),
                (StepName::Act, 72),
                (StepName::Finish, 168)
            ]
        );
        assert_eq!(
            hours(&c.procedure[1]),
            [
                (StepName::Respond, 2),
                (StepName::Act, 24),
                (StepName::Finish, 48),
                (StepName::Confirm, 72)
            ]
        );
        assert_eq!(parse("").unwrap(), c);
    }

    #[test]
    fn toml_with_matches() {
        let c = parse(
            r#"
[[procedure]]
name = "urgent washers"
match = { device_type = ["washer"], priority = ["urgent"], channel = ["phone", "app"] }
steps = [{ step = "respond", within = "15m" }, { step = "remote_check", within = "1h" },
         { step = "schedule", within = "2h" }, { step = "act", within = "8h" }]

[[procedure]]
name = "anything else"
steps = [{ step = "respond", within = "4h" }]
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.procedure[0].matches.priority, [Priority::Urgent]);
        assert_eq!(c.procedure[0].steps[1].step, StepName::RemoteCheck);
        assert!(c.procedure[1].matches.is_catch_all());
    }

    #[test]
    fn validation_refuses_bad_procedures() {
        for (why, text) in [
            (
                "unknown step",
                r#"[[procedure]]
name = "a"
steps = [{ step = "pray", within = "1h" }]"#,
            ),
            (
                "unknown key",
                r#"[[procedure]]
name = "a"
steps = []
sla = 1"#,
            ),
            (
                "unknown match key",
                r#"[[procedure]]
name = "a"
match = { colour = ["red"] }
steps = []"#,
            ),
            (
                "bad duration",
                r#"[[procedure]]
name = "a"
steps = [{ step = "act", within = "soon" }]"#,
            ),
            (
                "zero",
                r#"[[procedure]]
name = "a"
steps = [{ step = "act", within = "0s" }]"#,
            ),
        ] {
            assert!(parse(text).is_err(), "{why}");
        }
        for (why, text) in [
            (
                "decreasing",
                r#"[[procedure]]
name = "a"
steps = [{ step = "respond", within = "4h" }, { step = "act", within = "2h" }]"#,
            ),
            (
                "out of order",
                r#"[[procedure]]
name = "a"
steps = [{ step = "act", within = "4h" }, { step = "respond", within = "8h" }]"#,
            ),
            (
                "twice",
                r#"[[procedure]]
name = "a"
steps = [{ step = "act", within = "4h" }, { step = "act", within = "8h" }]"#,
            ),
            (
                "no catch-all last",
                r#"[[procedure]]
name = "a"
match = { source = ["reactive"] }
steps = []"#,
            ),
            (
                "blank name",
                r#"[[procedure]]
name = " "
steps = []"#,
            ),
        ] {
            let c = parse(text).unwrap_or_else(|e| panic!("{why}: {e}"));
            assert!(c.validate().is_err(), "{why}");
        }
        let equal = parse(
            r#"[[procedure]]
name = "a"
steps = [{ step = "respond", within = "4h" }, { step = "act", within = "4h" }]"#,
        )
        .unwrap();
        equal.validate().unwrap();
        parse("procedure = []").unwrap().validate().unwrap();
    }

    #[test]
    fn completing_a_step_completes_the_earlier_ones() {
        let p = &ProcedureConfig::default().procedure[1];
        let mut steps = p.clocks(Timestamp(0));
        assert_eq!(steps[0].due, Timestamp(2 * 3_600_000));
        assert!(complete_steps(&mut steps, StepName::Act, Timestamp(5)));
        let done: Vec<_> = steps.iter().map(|s| s.done_at).collect();
        assert_eq!(done, [Some(Timestamp(5)), Some(Timestamp(5)), None, None]);
        assert!(!complete_steps(
            &mut steps,
            StepName::Schedule,
            Timestamp(6)
        ));
        assert_eq!(steps[0].done_at, Some(Timestamp(5)), "kept");
    }
}
