//! The ticket page's forms: which action a POST is, its fields, and turning them into
//! the inputs of `api::desk` (times typed in the person's zone, an engineer by login,
//! parts by name). What the lifecycle allows is not checked here: the desk does that.

use chrono::{NaiveDateTime, TimeZone as _};
use chrono_tz::Tz;
use domain::{OutcomeKind, Profile, TicketStatus, Timestamp};

use super::texts::{fill, Texts};

/// An action of the ticket page, the last segment of its POST path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Acknowledge,
    Schedule,
    Start,
    Resolve,
    Outcome,
    Dismiss,
    Reopen,
    Close,
    Note,
    Satisfaction,
    Callback,
}

impl Action {
    pub(crate) const ALL: [Action; 11] = [
        Action::Acknowledge,
        Action::Schedule,
        Action::Start,
        Action::Resolve,
        Action::Outcome,
        Action::Dismiss,
        Action::Reopen,
        Action::Close,
        Action::Note,
        Action::Satisfaction,
        Action::Callback,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Schedule => "schedule",
            Action::Start => "start",
            Action::Resolve => "resolve",
            Action::Outcome => "outcome",
            Action::Dismiss => "dismiss",
            Action::Reopen => "reopen",
            Action::Close => "close",
            Action::Note => "note",
            Action::Satisfaction => "satisfaction",
            Action::Callback => "callback",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The notice after it was done.
    pub(crate) fn done(self, t: &Texts) -> &'static str {
        match self {
            Action::Acknowledge => t.done_acknowledge,
            Action::Schedule => t.done_schedule,
            Action::Start => t.done_start,
            Action::Resolve => t.done_resolve,
            Action::Outcome => t.done_outcome,
            Action::Dismiss => t.done_dismiss,
            Action::Reopen => t.done_reopen,
            Action::Close => t.done_close,
            Action::Note => t.done_note,
            Action::Satisfaction => t.done_satisfaction,
            Action::Callback => t.done_callback,
        }
    }
}

/// A submitted form's fields as sent (repeated names kept, e.g. `parts`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields(pub(crate) Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, or empty.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What a person typed, to put back into the form when an action is refused.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Draft {
    pub(crate) action: Option<Action>,
    pub(crate) note: String,
    pub(crate) engineer: String,
    pub(crate) window_start: String,
    pub(crate) window_end: String,
    pub(crate) region: String,
    pub(crate) kind: String,
    pub(crate) component: String,
    pub(crate) parts: Vec<String>,
    pub(crate) failed_at: String,
    pub(crate) to: String,
    pub(crate) score: String,
    pub(crate) comment: String,
}

impl Draft {
    pub(crate) fn of(action: Action, f: &Fields) -> Draft {
        Draft {
            action: Some(action),
            note: f.get("note").to_owned(),
            engineer: f.get("engineer").to_owned(),
            window_start: f.get("window_start").to_owned(),
            window_end: f.get("window_end").to_owned(),
            region: f.get("region").to_owned(),
            kind: f.get("kind").to_owned(),
            component: f.get("component").to_owned(),
            parts: f.all("parts").into_iter().map(str::to_owned).collect(),
            failed_at: f.get("failed_at").to_owned(),
            to: f.get("to").to_owned(),
            score: f.get("score").to_owned(),
            comment: f.get("comment").to_owned(),
        }
    }

    /// Whether it belongs to the form of `action`.
    pub(crate) fn is(&self, action: Action) -> bool {
        self.action == Some(action)
    }
}

/// A time typed into a `datetime-local` input (`2026-12-08T09:00`, seconds optional,
/// a space for the `T` accepted), read in zone `tz`; `None` when empty. `label` names
/// the field in the message.
pub(crate) fn local_time(
    s: &str,
    tz: Tz,
    label: &str,
    t: &Texts,
) -> Result<Option<Timestamp>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| fill(t.err_time, label))?;
    // A time the clocks skip does not exist; one they pass twice is read as the first.
    let local = tz
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| fill(t.err_time_gap, label))?;
    Ok(Some(Timestamp::from(local.with_timezone(&chrono::Utc))))
}

/// A time as a `datetime-local` value in zone `tz`.
pub(crate) fn local_input(ts: Timestamp, tz: Tz) -> String {
    ts.to_datetime()
        .map(|d| d.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// The longest region the schedule form takes: the queue's region filter takes no
/// longer value, so a longer region could not be filtered on.
pub(crate) const MAX_REGION_CHARS: usize = 100;

/// A schedule as the form gives it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Schedule {
    pub(crate) engineer: String,
    pub(crate) window: Option<(Timestamp, Timestamp)>,
    pub(crate) region: Option<String>,
}

/// Reads the schedule form: an engineer among `engineers` (logins of enabled engineer
/// accounts), both ends of the window or neither, the end after the start.
pub(crate) fn schedule(
    f: &Fields,
    engineers: &[String],
    tz: Tz,
    t: &Texts,
) -> Result<Schedule, String> {
    let engineer = f.get("engineer").trim();
    if engineer.is_empty() {
        return Err(t.err_engineer_missing.into());
    }
    if !engineers.iter().any(|e| e == engineer) {
        return Err(fill(t.err_engineer_unknown, engineer));
    }
    let start = local_time(f.get("window_start"), tz, t.window_start, t)?;
    let end = local_time(f.get("window_end"), tz, t.window_end, t)?;
    let window = match (start, end) {
        (None, None) => None,
        (Some(s), Some(e)) if e > s => Some((s, e)),
        (Some(_), Some(_)) => return Err(t.err_window_order.into()),
        _ => return Err(t.err_window_half.into()),
    };
    let region = f.get("region").trim();
    if region.chars().count() > MAX_REGION_CHARS {
        return Err(fill(t.err_too_long, t.region));
    }
    Ok(Schedule {
        engineer: engineer.to_owned(),
        window,
        region: (!region.is_empty()).then(|| region.to_owned()),
    })
}

/// Reads the outcome form into the desk's input. A confirmed failure needs its
/// component; parts must be parts of the device type (`profile`); parts and a failure
/// time go only with a confirmed failure (the component select always sends a value,
/// so it is dropped for the other kinds).
pub(crate) fn outcome(
    f: &Fields,
    profile: Option<&Profile>,
    tz: Tz,
    t: &Texts,
) -> Result<api::OutcomeInput, String> {
    let kind = match f.get("kind") {
        "confirmed_failure" => OutcomeKind::ConfirmedFailure,
        "no_fault_found" => OutcomeKind::NoFaultFound,
        "customer_declined" => OutcomeKind::CustomerDeclined,
        "not_reached" => OutcomeKind::NotReached,
        _ => return Err(t.err_kind.into()),
    };
    let mut parts: Vec<String> = Vec::new();
    for p in f.all("parts") {
        let known = profile.is_some_and(|pr| pr.components().iter().any(|c| c.part(p).is_some()));
        if !known {
            return Err(fill(t.err_part, p));
        }
        if !parts.iter().any(|q| q == p) {
            parts.push(p.to_owned());
        }
    }
    let failed_at = local_time(f.get("failed_at"), tz, t.failed_at, t)?;
    let note = f.get("note").trim().to_owned();
    if kind != OutcomeKind::ConfirmedFailure {
        if !parts.is_empty() || failed_at.is_some() {
            return Err(t.err_only_confirmed.into());
        }
        return Ok(api::OutcomeInput {
            kind: Some(kind),
            note,
            ..Default::default()
        });
    }
    let component = f.get("component").trim();
    if component.is_empty() {
        return Err(t.err_component.into());
    }
    Ok(api::OutcomeInput {
        kind: Some(kind),
        component: Some(component.to_owned()),
        parts_replaced: parts,
        failed_at,
        note,
    })
}

/// The status a reopen goes to: `open` or `in_progress`.
pub(crate) fn reopen_to(f: &Fields, t: &Texts) -> Result<TicketStatus, String> {
    match f.get("to").parse::<TicketStatus>() {
        Ok(s @ (TicketStatus::Open | TicketStatus::InProgress)) => Ok(s),
        _ => Err(t.err_reopen_to.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::texts::EN;
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn times_are_read_in_the_persons_zone() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let ts = local_time("2026-12-08T09:00", tz, "x", &EN)
            .unwrap()
            .unwrap();
        assert_eq!(ts.to_string(), "2026-12-08T01:00:00.000Z");
        assert_eq!(local_input(ts, tz), "2026-12-08T09:00");
        assert_eq!(local_time(" ", tz, "x", &EN), Ok(None));
        assert!(local_time("tomorrow", tz, "Window start", &EN)
            .unwrap_err()
            .starts_with("Window start"));
        // Berlin skips 02:00-03:00 on 2026-03-29.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert!(local_time("2026-03-29T02:30", berlin, "x", &EN)
            .unwrap_err()
            .contains("does not exist"));
    }

    #[test]
    fn a_schedule_needs_a_known_engineer_and_an_ordered_window() {
        let tz = Tz::UTC;
        let engineers = vec!["engineer".to_owned()];
        let ok = schedule(
            &fields(&[
                ("engineer", "engineer"),
                ("window_start", "2026-12-08T09:00"),
                ("window_end", "2026-12-08T11:00"),
                ("region", " north "),
            ]),
            &engineers,
            tz,
            &EN,
        )
        .unwrap();
        assert_eq!(ok.region.as_deref(), Some("north"));
        assert!(ok.window.is_some());
        let no_window = schedule(&fields(&[("engineer", "engineer")]), &engineers, tz, &EN);
        assert_eq!(no_window.unwrap().window, None);
        let long = "n".repeat(MAX_REGION_CHARS + 1);
        for (pairs, message) in [
            (vec![], EN.err_engineer_missing.to_owned()),
            (
                vec![("engineer", "nobody")],
                fill(EN.err_engineer_unknown, "nobody"),
            ),
            (
                vec![
                    ("engineer", "engineer"),
                    ("window_start", "2026-12-08T11:00"),
                    ("window_end", "2026-12-08T09:00"),
                ],
                EN.err_window_order.to_owned(),
            ),
            (
                vec![("engineer", "engineer"), ("window_end", "2026-12-08T09:00")],
                EN.err_window_half.to_owned(),
            ),
            (
                vec![("engineer", "engineer"), ("region", long.as_str())],
                fill(EN.err_too_long, EN.region),
            ),
        ] {
            assert_eq!(schedule(&fields(&pairs), &engineers, tz, &EN), Err(message));
        }
    }

    #[test]
    fn an_outcome_fits_its_kind() {
        let profiles = domain::ProfileSet::builtin();
        let washer = profiles.get("washer").map(|p| p.as_ref());
        let tz = Tz::UTC;
        let ok = outcome(
            &fields(&[
                ("kind", "confirmed_failure"),
                ("component", "drain_pump"),
                ("parts", "pump filter"),
                ("parts", "pump filter"),
                ("note", " done "),
            ]),
            washer,
            tz,
            &EN,
        )
        .unwrap();
        assert_eq!(ok.parts_replaced, vec!["pump filter".to_owned()]);
        assert_eq!(ok.note, "done");
        let nff = outcome(
            &fields(&[("kind", "no_fault_found"), ("component", "drain_pump")]),
            washer,
            tz,
            &EN,
        )
        .unwrap();
        assert_eq!(nff.component, None);
        for (pairs, message) in [
            (vec![("kind", "x")], EN.err_kind.to_owned()),
            (
                vec![("kind", "confirmed_failure"), ("component", "")],
                EN.err_component.to_owned(),
            ),
            (
                vec![
                    ("kind", "confirmed_failure"),
                    ("component", "drain_pump"),
                    ("parts", "<b>"),
                ],
                fill(EN.err_part, "<b>"),
            ),
            (
                vec![("kind", "not_reached"), ("parts", "pump filter")],
                EN.err_only_confirmed.to_owned(),
            ),
        ] {
            assert_eq!(outcome(&fields(&pairs), washer, tz, &EN), Err(message));
        }
    }

    #[test]
    fn actions_round_trip_their_names() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("explode"), None);
        assert_eq!(
            reopen_to(&fields(&[("to", "closed")]), &EN),
            Err(EN.err_reopen_to.into())
        );
    }
}
