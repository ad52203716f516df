//! What people do to a ticket: lifecycle transitions (the table is
//! `domain::TicketStatus::transitions`), outcomes and assignments.

use domain::{Assignment, Outcome, OutcomeKind, Ticket, TicketStatus, Timestamp};
use store::tickets::{Reopen, StatusChange};

use super::{after, log_change, TicketService, SYSTEM_ACTOR};
use crate::tickets::{AssignmentInput, OutcomeInput, StepName};
use crate::{Error, Result};

/// Longest engineer, region or note accepted.
const MAX_TEXT: usize = 2_000;

impl TicketService {
    /// The statuses `ticket` may move to now: the lifecycle table
    /// ([`TicketStatus::transitions`]), without reopens once the reopen window has
    /// passed.
    pub fn allowed_transitions(&self, ticket: &Ticket) -> Vec<TicketStatus> {
        self.allowed_at(ticket, self.now())
    }

    fn allowed_at(&self, t: &Ticket, now: Timestamp) -> Vec<TicketStatus> {
        let ended = t.ended_at.unwrap_or(t.updated_at);
        let in_window =
            now.millis().saturating_sub(ended.millis()) <= self.inner.config.reopen_window.millis();
        t.status
            .transitions()
            .iter()
            .copied()
            .filter(|to| !t.status.is_reopen(*to) || in_window)
            .collect()
    }

    /// Moves a ticket to `to` by `actor`, following the lifecycle table
    /// ([`TicketStatus::transitions`]), and logs it (`status_changed`, or `reopened`
    /// for a move from resolved, closed or dismissed back to an active status).
    ///
    /// * Leaving `open` stops the respond clock (`responded_at`).
    /// * `resolved` needs an outcome: one recorded before, or `outcome` here (also
    ///   accepted with `closed`). `resolved` and `dismissed` stop the resolve clock and
    ///   start the reopen window (`ended_at`).
    /// * A reopen is allowed within `reopen_window` of `ended_at`; it clears the
    ///   outcome, the breach flags and the escalation, and restarts the clocks from now
    ///   (to `open`: both; to `in_progress`: the resolve clock).
    ///
    /// Errors: [`Error::NotFound`]; [`Error::Transition`] (with the allowed statuses)
    /// for a move the table or the window refuses; [`Error::Conflict`] when a reopen
    /// would give the pair a second active ticket (naming it); [`Error::Invalid`] for
    /// a missing or invalid outcome.
    pub fn transition(
        &self,
        id: i64,
        to: TicketStatus,
        actor: &str,
        note: &str,
        outcome: Option<OutcomeInput>,
    ) -> Result<Ticket> {
        check_text("note", note)?;
        let config = &self.inner.config;
        self.change_ticket(id, |tx, t, now| {
        let from = t.status;
        let allowed = self.allowed_at(t, now);
        if !allowed.contains(&to) {
            let message = if from.can_become(to) {
                format!(
                    "ticket {} cannot be reopened: it ended more than {} ago (reopen_window)",
                    t.number, config.reopen_window
                )
            } else if from == to {
                format!("ticket {} is already {to}", t.number)
            } else {
                format!("ticket {} cannot go from {from} to {to}", t.number)
            };
            return Err(Error::Transition { message, allowed });
        }
        if outcome.is_some() && !matches!(to, TicketStatus::Resolved | TicketStatus::Closed) {
            return Err(Error::invalid(
                "outcome: only accepted with \"to\": \"resolved\" or \"closed\"",
            ));
        }
        if let Some(input) = outcome {
            let o = validate_outcome(t, input, actor, now)?;
            tx.set_outcome(id, &o, now)?;
            log_change(tx, id, now, actor, "outcome_recorded", &outcome_note(&o))?;
        } else if to == TicketStatus::Resolved && t.outcome.is_none() {
            return Err(Error::invalid(
                "outcome: resolving a ticket needs an outcome; record one first (POST .../outcome) or pass \"outcome\"",
            ));
        }
        let reopen = from.is_reopen(to);
        let ok = tx.change_status(&StatusChange {
                id,
                status: to,
                now,
                respond: from == TicketStatus::Open,
                end: matches!(to, TicketStatus::Resolved | TicketStatus::Dismissed),
                reopen: reopen.then(|| Reopen {
                    respond_by: (to == TicketStatus::Open)
                        .then(|| after(now, config.response_ms(t.priority))),
                    resolve_by: after(now, config.resolve_ms(t.priority)),
                }),
            },)?;
        if !ok {
            let other = tx.active_ticket(t.device_id.as_str(), &t.component)?.map_or_else(
                || "another ticket".to_owned(),
                |a| format!("ticket {}", a.number),
            );
            return Err(Error::Conflict(format!(
                "ticket {} cannot be reopened: {other} is active for {} / {}",
                t.number, t.device_id, t.component
            )));
        }
        let text = if note.is_empty() {
            format!("{from} -> {to}")
        } else {
            format!("{from} -> {to}: {note}")
        };
        self.steps_on_transition(tx, t, to, now)?;
        if to == TicketStatus::InProgress {
            tx.add_visit(id)?;
        }
        if to == TicketStatus::Acknowledged && actor != SYSTEM_ACTOR {
            tx.set_planner(id, actor)?;
        }
        let action = if reopen { "reopened" } else { "status_changed" };
        log_change(tx, id, now, actor, action, &text)?;
            Ok(())
        })
    }

    /// Records (or replaces) a ticket's outcome, logged as `outcome_recorded`. Allowed
    /// while the ticket is active or resolved; [`Error::Conflict`] once it is closed or
    /// dismissed, [`Error::Invalid`] for fields that do not fit the kind.
    pub fn record_outcome(&self, id: i64, input: OutcomeInput, actor: &str) -> Result<Ticket> {
        self.change_ticket(id, |tx, t, now| {
            if !(t.status.is_active() || t.status == TicketStatus::Resolved) {
                return Err(Error::Conflict(format!(
                    "ticket {} is {}: its outcome can no longer change",
                    t.number, t.status
                )));
            }
            let o = validate_outcome(t, input, actor, now)?;
            tx.set_outcome(id, &o, now)?;
            log_change(tx, id, now, actor, "outcome_recorded", &outcome_note(&o))?;
            Ok(())
        })
    }

    /// Adds a note to a ticket's log (action `note`), in any status. A note must not
    /// be blank ([`Error::Invalid`]).
    pub fn add_note(&self, id: i64, note: &str, actor: &str) -> Result<Ticket> {
        check_text("note", note)?;
        if note.trim().is_empty() {
            return Err(Error::invalid("note: must not be empty"));
        }
        self.change_ticket(id, |tx, t, now| {
            if t.status == TicketStatus::Acknowledged {
                self.complete_steps(tx, t, StepName::RemoteCheck, now)?;
            }
            log_change(tx, id, now, actor, "note", note.trim())
        })
    }

    /// Sets a ticket's engineer, scheduled window and region (replacing all three;
    /// the skills come from the component and are kept), logged as `assigned`. Only
    /// active tickets can be assigned ([`Error::Conflict`] otherwise); a window must
    /// have both ends with the end after the start ([`Error::Invalid`]).
    pub fn assign(&self, id: i64, input: AssignmentInput, actor: &str) -> Result<Ticket> {
        self.assign_with(id, input, actor, "", |_, _, _| Ok(()))
    }

    /// [`TicketService::assign`] with `extra` appended to the `assigned` log note (a
    /// capacity override, dispatch's reasons) and `also` run in the same transaction
    /// before the log entry (dispatch records its word there).
    pub(crate) fn assign_with(
        &self,
        id: i64,
        input: AssignmentInput,
        actor: &str,
        extra: &str,
        also: impl FnOnce(&store::tickets::Tables<'_>, &Ticket, Timestamp) -> Result<()>,
    ) -> Result<Ticket> {
        for (name, value) in [("engineer", &input.engineer), ("region", &input.region)] {
            if let Some(v) = value {
                check_text(name, v)?;
                if v.trim().is_empty() {
                    return Err(Error::invalid(format!("{name}: must not be empty")));
                }
            }
        }
        match (input.window_start, input.window_end) {
            (Some(start), Some(end)) if end <= start => {
                return Err(Error::invalid("window_end: must be after window_start"))
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::invalid(
                    "window_start, window_end: give both or neither",
                ))
            }
            _ => {}
        }
        self.change_ticket(id, |tx, t, now| {
            if !t.status.is_active() {
                return Err(Error::Conflict(format!(
                    "ticket {} is {}: only active tickets can be assigned",
                    t.number, t.status
                )));
            }
            let a = Assignment {
                engineer: input.engineer,
                window_start: input.window_start,
                window_end: input.window_end,
                skills: t.assignment.skills.clone(),
                region: input.region,
            };
            tx.set_assignment(id, &a, now)?;
            if a.engineer.is_some() && a.window_start.is_some() {
                self.complete_steps(tx, t, StepName::Schedule, now)?;
            }
            if actor != SYSTEM_ACTOR {
                tx.set_planner(id, actor)?;
            }
            also(tx, t, now)?;
            let window = match (a.window_start, a.window_end) {
                (Some(s), Some(e)) => format!("{s} to {e}"),
                _ => "none".to_owned(),
            };
            let mut note = format!(
                "Engineer {}, window {window}, region {}",
                a.engineer.as_deref().unwrap_or("none"),
                a.region.as_deref().unwrap_or("none"),
            );
            if !extra.is_empty() {
                note.push_str("; ");
                note.push_str(extra);
            }
            log_change(tx, id, now, actor, "assigned", &note)?;
            Ok(())
        })
    }
}

/// Rejects text longer than [`MAX_TEXT`].
pub(super) fn check_text(name: &str, s: &str) -> Result<()> {
    if s.chars().count() > MAX_TEXT {
        return Err(Error::invalid(format!(
            "{name}: longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

/// Turns a reported outcome into the stored one, checking that its fields fit its kind.
fn validate_outcome(
    t: &Ticket,
    input: OutcomeInput,
    actor: &str,
    now: Timestamp,
) -> Result<Outcome> {
    let kind = input
        .kind
        .ok_or_else(|| Error::invalid("outcome.kind: required"))?;
    check_text("outcome.note", &input.note)?;
    if kind != OutcomeKind::ConfirmedFailure {
        for (field, given) in [
            ("component", input.component.is_some()),
            ("parts_replaced", !input.parts_replaced.is_empty()),
            ("failed_at", input.failed_at.is_some()),
        ] {
            if given {
                return Err(Error::invalid(format!(
                    "outcome.{field}: only for confirmed_failure, not {kind}"
                )));
            }
        }
        return Ok(Outcome {
            kind,
            component: None,
            parts_replaced: Vec::new(),
            failed_at: None,
            note: input.note,
            recorded_at: now,
            recorded_by: actor.to_owned(),
        });
    }
    if input.parts_replaced.iter().any(|p| p.trim().is_empty()) {
        return Err(Error::invalid(
            "outcome.parts_replaced: names must not be empty",
        ));
    }
    if let Some(c) = &input.component {
        if c.trim().is_empty() {
            return Err(Error::invalid("outcome.component: must not be empty"));
        }
    }
    if input.failed_at.is_some_and(|f| f > now) {
        return Err(Error::invalid("outcome.failed_at: in the future"));
    }
    Ok(Outcome {
        kind,
        component: Some(input.component.unwrap_or_else(|| t.component.clone())),
        parts_replaced: input.parts_replaced,
        failed_at: Some(input.failed_at.unwrap_or(now)),
        note: input.note,
        recorded_at: now,
        recorded_by: actor.to_owned(),
    })
}

fn outcome_note(o: &Outcome) -> String {
    let mut note = o.kind.to_string();
    if let Some(c) = &o.component {
        note.push_str(&format!(": {c}"));
    }
    if !o.parts_replaced.is_empty() {
        note.push_str(&format!(
            ", parts replaced: {}",
            o.parts_replaced.join(", ")
        ));
    }
    if !o.note.is_empty() {
        note.push_str(&format!(" ({})", o.note));
    }
    note
}
