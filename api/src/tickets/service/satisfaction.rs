//! The customer's satisfaction answer and the call-back a dissatisfied one opens
//! (docs/procedures.md).

use std::sync::atomic::Ordering;

use domain::{Callback, ReportChannel, Satisfaction, Ticket, TicketStatus};
use serde_json::json;

use super::lifecycle::check_text;
use super::TicketService;
use super::{after, log_change, summary};
use crate::tickets::{SatisfactionInput, EVENT_CALLBACK_OPENED};
use crate::{Error, Result};

impl TicketService {
    /// Records the customer's satisfaction with ticket `id` (resolved or closed only:
    /// [`Error::Conflict`] otherwise), by `actor`. A ticket keeps one answer: a second
    /// one replaces it (logged `satisfaction_replaced` rather than
    /// `satisfaction_recorded`). A score of `[satisfaction] dissatisfied_at_most` or
    /// less opens the ticket's call-back, unless it already has one: due
    /// `callback_within` from now, owned by the ticket's planner, logged
    /// `callback_opened` and announced as `ticket.callback_opened`. A score outside
    /// 1-5 or a comment over 2,000 characters is [`Error::Invalid`].
    pub fn record_satisfaction(
        &self,
        id: i64,
        input: SatisfactionInput,
        actor: &str,
    ) -> Result<Ticket> {
        if !(1..=5).contains(&input.score) {
            return Err(Error::invalid(format!(
                "score: must be 1 to 5, not {}",
                input.score
            )));
        }
        check_text("comment", &input.comment)?;
        let rules = &self.inner.satisfaction;
        let mut opened = false;
        let t = self.change_ticket(id, |tx, t, now| {
            if !matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed) {
                return Err(Error::Conflict(format!(
                    "ticket {} is {}: satisfaction is recorded on resolved or closed tickets",
                    t.number, t.status
                )));
            }
            let s = Satisfaction {
                score: input.score,
                comment: input.comment.trim().to_owned(),
                at: now,
                recorded_by: actor.to_owned(),
                channel: input.channel.unwrap_or(ReportChannel::Phone),
            };
            tx.set_satisfaction(id, &s, now)?;
            let action = if t.satisfaction.is_some() {
                "satisfaction_replaced"
            } else {
                "satisfaction_recorded"
            };
            let mut note = format!("score {}/5 by {}", s.score, s.channel);
            if !s.comment.is_empty() {
                note.push_str(&format!(": {}", s.comment));
            }
            log_change(tx, id, now, actor, action, &note)?;
            if rules.is_dissatisfied(s.score) && t.callback.is_none() {
                let c = Callback {
                    opened_at: now,
                    due: after(now, rules.callback_within.millis()),
                    owner: t.planner.clone(),
                    done_at: None,
                    done_by: None,
                    note: String::new(),
                    overdue_at: None,
                };
                tx.set_callback(id, &c, now)?;
                let note = format!(
                    "score {} is dissatisfied: call back by {}; owner {}",
                    s.score,
                    c.due,
                    c.owner.as_deref().unwrap_or("none")
                );
                tx.append_log(id, now, actor, "callback_opened", &note)?;
                let data = json!({
                    "ticket": summary(tx, id)?, "due": c.due, "owner": c.owner, "score": s.score,
                });
                tx.insert_event(
                    now,
                    EVENT_CALLBACK_OPENED,
                    Some(id),
                    Some(t.device_id.as_str()),
                    &data,
                )?;
                opened = true;
            }
            Ok(())
        })?;
        self.inner
            .satisfaction_answers
            .fetch_add(1, Ordering::Relaxed);
        if opened {
            self.inner.callbacks_opened.fetch_add(1, Ordering::Relaxed);
        }
        Ok(t)
    }

    /// Marks ticket `id`'s call-back done by `actor` with what the call found
    /// (`note`, required), logged `callback_done` (noting when it was late).
    /// [`Error::Conflict`] when the ticket has no call-back or it is already done.
    pub fn complete_callback(&self, id: i64, note: &str, actor: &str) -> Result<Ticket> {
        check_text("note", note)?;
        let note = note.trim();
        if note.is_empty() {
            return Err(Error::invalid(
                "note: must not be empty (what did the call find?)",
            ));
        }
        let t = self.change_ticket(id, |tx, t, now| {
            let Some(mut c) = t.callback.clone() else {
                return Err(Error::Conflict(format!(
                    "ticket {} has no call-back",
                    t.number
                )));
            };
            if c.done_at.is_some() {
                return Err(Error::Conflict(format!(
                    "ticket {}'s call-back is already done",
                    t.number
                )));
            }
            c.done_at = Some(now);
            c.done_by = Some(actor.to_owned());
            c.note = note.to_owned();
            tx.set_callback(id, &c, now)?;
            let late = if now > c.due {
                format!(" (late: due {})", c.due)
            } else {
                String::new()
            };
            log_change(
                tx,
                id,
                now,
                actor,
                "callback_done",
                &format!("{note}{late}"),
            )
        })?;
        self.inner.callbacks_done.fetch_add(1, Ordering::Relaxed);
        Ok(t)
    }
}
