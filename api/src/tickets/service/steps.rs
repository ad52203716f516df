//! The procedure's step clocks (docs/procedures.md): started when a ticket opens,
//! completed by its lifecycle, restarted by a reopen, and swept: a step past its
//! limit is marked overdue once and alerts the owner's supervisor; a call-back past
//! its limit is marked overdue once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use domain::{Ticket, TicketStatus, Timestamp};
use serde_json::json;
use store::tickets::Tables;

use super::{summary, TicketService, SYSTEM_ACTOR};
use crate::tickets::procedures::complete_steps;
use crate::tickets::{
    CallbackOverdue, StepName, StepOverdue, StepSweep, Supervisors, EVENT_CALLBACK_OVERDUE,
    EVENT_STEP_OVERDUE,
};
use crate::{Error, Result};

impl TicketService {
    /// Starts ticket `id`'s step clocks in transaction `tx`: the first procedure of
    /// `[procedures]` that matches the ticket as stored (device type, component,
    /// source, channel, priority) gives its steps, each due `within` after `start`;
    /// the steps the ticket's status has already completed are marked done at
    /// `start`. Replaces any clocks it had (a reopen restarts them). Every path that
    /// opens a ticket calls it in the opening transaction.
    pub(crate) fn start_steps(&self, tx: &Tables<'_>, id: i64, start: Timestamp) -> Result<()> {
        let t = tx
            .get_ticket(id)?
            .ok_or_else(|| Error::Corrupt(format!("ticket {id} vanished in its transaction")))?;
        let Some(procedure) = self.inner.procedures.for_ticket(&t) else {
            if !t.steps.is_empty() {
                tx.set_steps(id, &[])?;
            }
            return Ok(());
        };
        let mut steps = procedure.clocks(start);
        if let Some(done) = StepName::completed_by(t.status) {
            complete_steps(&mut steps, done, start);
        }
        tx.set_steps(id, &steps)?;
        Ok(())
    }

    /// Marks done at `now` the steps of `t` (as stored before the change) up to and
    /// including `upto`, in transaction `tx`.
    pub(super) fn complete_steps(
        &self,
        tx: &Tables<'_>,
        t: &Ticket,
        upto: StepName,
        now: Timestamp,
    ) -> Result<()> {
        let mut steps = t.steps.clone();
        if complete_steps(&mut steps, upto, now) {
            tx.set_steps(t.id, &steps)?;
        }
        Ok(())
    }

    /// What a move of `t` (as stored before it) to `to` does to its steps: a reopen
    /// restarts them from `now`; a dismissal ends every pending step (done at `now`:
    /// nothing is left to alert about); any other move completes its step
    /// ([`StepName::completed_by`]) and the earlier ones.
    pub(super) fn steps_on_transition(
        &self,
        tx: &Tables<'_>,
        t: &Ticket,
        to: TicketStatus,
        now: Timestamp,
    ) -> Result<()> {
        if t.status.is_reopen(to) {
            return self.start_steps(tx, t.id, now);
        }
        if to == TicketStatus::Dismissed {
            let mut steps = t.steps.clone();
            let mut changed = false;
            for s in steps.iter_mut().filter(|s| s.done_at.is_none()) {
                s.done_at = Some(now);
                changed = true;
            }
            if changed {
                tx.set_steps(t.id, &steps)?;
            }
            return Ok(());
        }
        match StepName::completed_by(to) {
            Some(step) => self.complete_steps(tx, t, step, now),
            None => Ok(()),
        }
    }

    /// The tickets that need someone's attention, newest change first, at most
    /// `limit`, each with its log: a call-back not yet done, or a step found overdue
    /// and not yet done (the console's alerts view).
    pub fn alert_tickets(&self, limit: usize) -> Result<Vec<Ticket>> {
        self.read(|t| {
            let mut out = Vec::new();
            for id in t.alert_tickets(limit)? {
                out.extend(t.get_ticket(id)?);
            }
            Ok(out)
        })
    }

    /// The sweep of step clocks and call-backs, in one transaction (the server runs
    /// it with the SLA check; a simulation calls it after advancing the clock):
    ///
    /// * every step neither done nor overdue whose limit passed before now is marked
    ///   overdue (`overdue_at`, and `alerted`: whom the alert went to), once; the
    ///   ticket's log gets `step_overdue` by `fixahead` and a `ticket.step_overdue`
    ///   event `{ticket, step, due, owner, supervisor}` is written. The owner is the
    ///   ticket's engineer, else its planner, else none; the supervisor is
    ///   `supervisors.supervisor_of(owner)`, else the priority's escalation contact
    ///   (`[tickets] <tier>_escalation`);
    /// * every pending call-back whose limit passed is marked overdue once, logged
    ///   (`callback_overdue`) and announced (`ticket.callback_overdue` `{ticket, due,
    ///   owner}`).
    ///
    /// A step done before the sweep never fires. The owners' supervisors are looked
    /// up before the write transaction opens (the directory may be slow or read
    /// another store). Returns what it marked.
    pub fn check_steps(&self, supervisors: &dyn Supervisors) -> Result<StepSweep> {
        let config = &self.inner.config;
        let due_at = self.now();
        let owners = self.read(|t| {
            let mut owners = Vec::new();
            for id in t.due_steps(due_at)? {
                if let Some(tk) = t.get_ticket(id)? {
                    owners.extend(tk.assignment.engineer.or(tk.planner));
                }
            }
            Ok(owners)
        })?;
        let mut known: HashMap<String, Option<String>> = HashMap::new();
        for o in owners {
            if let std::collections::hash_map::Entry::Vacant(e) = known.entry(o) {
                let s = supervisors.supervisor_of(e.key());
                e.insert(s);
            }
        }
        let supervisor_of = |o: &str| match known.get(o) {
            Some(s) => s.clone(),
            // Assigned since the lookup: ask now.
            None => supervisors.supervisor_of(o),
        };
        let sweep = self.write(|tx, now| {
            let mut sweep = StepSweep::default();
            for id in tx.due_steps(now)? {
                let Some(t) = tx.get_ticket(id)? else {
                    continue;
                };
                let owner = t.assignment.engineer.clone().or_else(|| t.planner.clone());
                let supervisor = owner
                    .as_deref()
                    .and_then(supervisor_of)
                    .unwrap_or_else(|| config.escalation(t.priority).to_owned());
                let mut steps = t.steps.clone();
                for s in steps.iter_mut() {
                    if s.done_at.is_some() || s.overdue_at.is_some() || s.due >= now {
                        continue;
                    }
                    s.overdue_at = Some(now);
                    s.alerted = Some(supervisor.clone());
                    let note = format!(
                        "step {} past its limit {}; owner {}; alerted {supervisor}",
                        s.step,
                        s.due,
                        owner.as_deref().unwrap_or("none")
                    );
                    tx.append_log(id, now, SYSTEM_ACTOR, "step_overdue", &note)?;
                    let data = json!({
                        "ticket": summary(tx, id)?, "step": s.step, "due": s.due,
                        "owner": owner, "supervisor": supervisor,
                    });
                    tx.insert_event(
                        now,
                        EVENT_STEP_OVERDUE,
                        Some(id),
                        Some(t.device_id.as_str()),
                        &data,
                    )?;
                    sweep.steps.push(StepOverdue {
                        ticket_id: id,
                        step: s.step.clone(),
                        due: s.due,
                        owner: owner.clone(),
                        supervisor: supervisor.clone(),
                    });
                }
                tx.set_steps(id, &steps)?;
            }
            for id in tx.due_callbacks(now)? {
                let Some(t) = tx.get_ticket(id)? else {
                    continue;
                };
                let Some(mut c) = t.callback.clone() else {
                    continue;
                };
                c.overdue_at = Some(now);
                tx.set_callback(id, &c, now)?;
                let note = format!(
                    "call-back past its limit {}; owner {}",
                    c.due,
                    c.owner.as_deref().unwrap_or("none")
                );
                tx.append_log(id, now, SYSTEM_ACTOR, "callback_overdue", &note)?;
                let data = json!({"ticket": summary(tx, id)?, "due": c.due, "owner": c.owner});
                tx.insert_event(
                    now,
                    EVENT_CALLBACK_OVERDUE,
                    Some(id),
                    Some(t.device_id.as_str()),
                    &data,
                )?;
                sweep.callbacks.push(CallbackOverdue {
                    ticket_id: id,
                    due: c.due,
                    owner: c.owner,
                });
            }
            Ok(sweep)
        })?;
        let inner = &self.inner;
        inner
            .steps_overdue
            .fetch_add(sweep.steps.len() as u64, Ordering::Relaxed);
        inner
            .callbacks_overdue
            .fetch_add(sweep.callbacks.len() as u64, Ordering::Relaxed);
        Ok(sweep)
    }
}
