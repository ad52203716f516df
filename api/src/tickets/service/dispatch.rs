//! What automatic dispatch writes to a ticket (the rules are in `crate::dispatch`):
//! its word (`dispatch`: `proposed`, `assigned`, `manual`), an automatic assignment
//! through the planner's path, and an escalation when nobody fits, each with its log
//! entry and events in one transaction.

use domain::Ticket;
use serde_json::json;
use store::tickets::{Booking, DeviceLocation, DispatchState};

use super::{log_change, summary, TicketService, SYSTEM_ACTOR};
use crate::tickets::{AssignmentInput, EVENT_ESCALATED};
use crate::{Error, Result};

impl TicketService {
    /// Up to `limit` active tickets dispatch has not considered yet, oldest first.
    pub fn undispatched(&self, limit: usize) -> Result<Vec<i64>> {
        self.read(|t| Ok(t.undispatched(limit)?))
    }

    /// Where dispatch stands with ticket `id`.
    pub fn dispatch_state(&self, id: i64) -> Result<Option<DispatchState>> {
        self.read(|t| Ok(t.dispatch_state(id)?))
    }

    /// Active tickets dispatch escalated, newest first.
    pub fn escalated_by_dispatch(&self, limit: usize) -> Result<Vec<i64>> {
        self.read(|t| Ok(t.escalated_by_dispatch(limit)?))
    }

    /// Where the device of `ticket` stands: the device directory's location and
    /// region, else the region the registry copied onto the ticket, else its
    /// assignment's region.
    pub fn device_location(&self, ticket: &Ticket) -> Result<DeviceLocation> {
        self.read(|t| {
            let mut loc = t
                .device_location(ticket.device_id.as_str())?
                .unwrap_or_default();
            if loc.region.is_none() {
                loc.region = t
                    .ticket_device_region(ticket.id)?
                    .or_else(|| ticket.assignment.region.clone());
            }
            Ok(loc)
        })
    }

    /// Visits booked from `from` on and the active tickets per engineer, both without
    /// ticket `except`, read in one snapshot.
    #[allow(clippy::type_complexity)]
    pub fn engineer_bookings(
        &self,
        from: domain::Timestamp,
        except: Option<i64>,
    ) -> Result<(Vec<Booking>, Vec<(String, u32)>)> {
        self.read(|t| Ok((t.bookings(from, except)?, t.active_per_engineer(except)?)))
    }

    /// Records dispatch's word on ticket `id` while it is still undecided; `false`
    /// when the ticket was decided meanwhile.
    pub fn mark_dispatch(&self, id: i64, state: &str) -> Result<bool> {
        self.write(|tx, now| {
            let undecided = tx.dispatch_state(id)?.is_some_and(|d| d.state.is_none());
            if undecided {
                tx.set_dispatch(id, state, now)?;
            }
            Ok(undecided)
        })
    }

    /// Assigns ticket `id` as dispatch decided (actor `fixahead`, `reasons` in the
    /// log note) and records `dispatch = 'assigned'`, in one transaction;
    /// [`Error::Conflict`] when the ticket was decided meanwhile.
    pub fn dispatch_assign(
        &self,
        id: i64,
        input: AssignmentInput,
        reasons: &str,
    ) -> Result<Ticket> {
        self.assign_with(id, input, SYSTEM_ACTOR, reasons, |tx, t, now| {
            if tx.dispatch_state(id)?.is_some_and(|d| d.state.is_some()) {
                return Err(Error::Conflict(format!(
                    "ticket {} was dispatched meanwhile",
                    t.number
                )));
            }
            tx.set_dispatch(id, "assigned", now)?;
            Ok(())
        })
    }

    /// Escalates ticket `id` to `manager` because no engineer fits: `escalated_to`,
    /// `dispatch = 'escalated'`, an `escalated` log entry by `fixahead` and the events
    /// `ticket.updated` and `ticket.escalated` (`{ticket, escalated_to, reason}`), in
    /// one transaction. Nothing happens when the ticket was decided meanwhile or is
    /// no longer active; the answer says whether it escalated.
    pub fn escalate_dispatch(&self, id: i64, manager: &str, reason: &str) -> Result<bool> {
        self.write(|tx, now| {
            let Some(t) = tx.get_ticket(id)? else {
                return Ok(false);
            };
            let undecided = tx.dispatch_state(id)?.is_some_and(|d| d.state.is_none());
            if !undecided || !t.status.is_active() {
                return Ok(false);
            }
            tx.escalate_dispatch(id, manager, now)?;
            let note = format!("No engineer fits; escalated to {manager}: {reason}");
            log_change(tx, id, now, SYSTEM_ACTOR, "escalated", &note)?;
            let data = json!({
                "ticket": summary(tx, id)?, "escalated_to": manager, "reason": reason,
            });
            tx.insert_event(
                now,
                EVENT_ESCALATED,
                Some(id),
                Some(t.device_id.as_str()),
                &data,
            )?;
            Ok(true)
        })
    }
}
