//! Engineers and dispatch (docs/dispatch.md): who may do a ticket's work, ranked with
//! the reasons ([`ranking`], pure), the dispatcher that assigns, proposes or escalates
//! each new ticket by the `[dispatch]` rules ([`config`]), the capacity check of a
//! planner's assignment, and the engineers' supervisors for the step alerts.
//!
//! [`Dispatcher`] is a cheap, clonable, blocking handle over the ticket service and
//! the engineers' directory (`keys.db`, [`store::engineers`]).
//! [`Dispatcher::dispatch_pending`] is the sweep: `fixahead run` calls it every
//! `[dispatch] interval` and whenever a ticket event is committed; a simulation calls
//! it after advancing its clock.

pub mod config;
pub mod ranking;

use std::collections::HashMap;
use std::sync::Arc;

use domain::{Priority, Ticket, Timestamp};
use serde::Serialize;
use store::engineers::Engineer;
use store::users::UserStore;

pub use config::{DispatchConfig, DispatchMode, ModeOverride};
pub use ranking::{Candidate, Reasons};

use crate::tickets::{AssignmentInput, Supervisors, TicketService};
use crate::{Error, Result};

/// Tickets read per round of the sweep.
const BATCH: usize = 100;
/// Rounds per sweep at most (the next sweep takes the rest).
const MAX_ROUNDS: usize = 20;

/// An engineer's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Load {
    /// Active tickets assigned to them.
    pub active: u32,
    /// Visits booked today (windows starting today in their time zone).
    pub today: u32,
    /// Their daily capacity.
    pub capacity: u32,
}

/// An engineer with their load, as `GET /api/v1/engineers` lists them.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EngineerView {
    /// The engineer.
    #[serde(flatten)]
    pub engineer: Engineer,
    /// Their load now.
    pub load: Load,
}

/// A ticket's ranking, as `GET /api/v1/tickets/{id}/candidates` answers it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Ranking {
    /// The ticket.
    pub ticket_id: i64,
    /// When an engineer must be there at the latest (docs/dispatch.md).
    #[schema(value_type = String)]
    pub needed_by: Timestamp,
    /// What dispatch decided: `assigned`, `proposed`, `escalated`, `manual` (a person
    /// assigned it first), or `null` while not yet considered.
    pub dispatch: Option<String>,
    /// The mode the `[dispatch]` rules give the ticket: `auto` or `propose`.
    pub mode: &'static str,
    /// Every engineer, best first.
    pub candidates: Vec<Candidate>,
}

/// What the sweep did with one ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dispatched {
    /// The ticket.
    pub ticket_id: i64,
    /// `assigned`, `proposed`, `escalated` or `manual`.
    pub decision: &'static str,
    /// The engineer, when assigned.
    pub engineer: Option<String>,
}

/// A planner's assignment against the engineer's capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapacityCheck {
    /// The login is not a registered engineer (allowed, noted in the log).
    NotAnEngineer,
    /// Visits already booked on the visit's day and the daily capacity.
    Booked {
        /// The day (engineer's time zone), `YYYY-MM-DD`.
        day: String,
        /// Visits booked that day, this ticket excepted.
        load: u32,
        /// Daily capacity.
        capacity: u32,
    },
}

impl CapacityCheck {
    /// Whether one more visit would exceed the capacity.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Booked { load, capacity, .. } if load >= capacity)
    }
}

/// The dispatcher and the engineers' directory. Cheap to clone; every method blocks.
#[derive(Clone)]
pub struct Dispatcher {
    tickets: TicketService,
    users: UserStore,
    config: Arc<DispatchConfig>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher over `tickets` and the engineers of `users`, by `config`
    /// ([`DispatchConfig::validate`]d: [`Error::Config`]).
    pub fn new(tickets: TicketService, users: UserStore, config: DispatchConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            tickets,
            users,
            config: Arc::new(config),
        })
    }

    /// The rules in force.
    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }

    /// The engineers' directory (and the accounts it is part of).
    pub fn users(&self) -> &UserStore {
        &self.users
    }

    /// The ticket service.
    pub fn tickets(&self) -> &TicketService {
        &self.tickets
    }

    /// When an engineer must be there for `t`: urgent tickets `urgent_arrival` after
    /// opening; others by the resolve deadline less one visit (the respond deadline
    /// on tickets without a resolve clock), never before the respond deadline.
    pub fn needed_by(&self, t: &Ticket) -> Timestamp {
        match t.priority {
            Priority::Urgent => Timestamp(
                t.opened_at
                    .millis()
                    .saturating_add(self.config.urgent_arrival.millis()),
            ),
            _ => t.resolve_by.map_or(t.respond_by, |r| {
                Timestamp(r.millis().saturating_sub(self.config.visit.millis())).max(t.respond_by)
            }),
        }
    }

    /// Every engineer with their load now.
    pub fn engineers(&self) -> Result<Vec<EngineerView>> {
        let engineers = self.users.engineers()?;
        self.with_load(engineers)
    }

    /// Engineer `login` with their load now, if registered.
    pub fn engineer(&self, login: &str) -> Result<Option<EngineerView>> {
        let Some(e) = self.users.engineer(login)? else {
            return Ok(None);
        };
        Ok(self.with_load(vec![e])?.pop())
    }

    fn with_load(&self, engineers: Vec<Engineer>) -> Result<Vec<EngineerView>> {
        let now = self.tickets.now();
        let (bookings, active) = self.bookings(now, None)?;
        Ok(engineers
            .into_iter()
            .map(|e| {
                let b = bookings.get(&e.login).map_or(&[][..], Vec::as_slice);
                let load = Load {
                    active: active.get(&e.login).copied().unwrap_or(0),
                    today: ranking::load_on(&e, b, now),
                    capacity: e.daily_capacity,
                };
                EngineerView { engineer: e, load }
            })
            .collect())
    }

    /// Window starts per engineer from yesterday on (a local "today" starts at most
    /// a day before now) and active tickets per engineer, without ticket `except`.
    #[allow(clippy::type_complexity)]
    fn bookings(
        &self,
        now: Timestamp,
        except: Option<i64>,
    ) -> Result<(HashMap<String, Vec<Timestamp>>, HashMap<String, u32>)> {
        let from = Timestamp(now.millis().saturating_sub(2 * Timestamp::DAY_MS));
        let (bookings, active) = self.tickets.engineer_bookings(from, except)?;
        let mut by = HashMap::<String, Vec<Timestamp>>::new();
        for b in bookings {
            by.entry(b.engineer).or_default().push(b.window_start);
        }
        Ok((by, active.into_iter().collect()))
    }

    /// The ranking of every registered engineer for ticket `t` (docs/dispatch.md).
    pub fn rank(&self, t: &Ticket) -> Result<Ranking> {
        let engineers = self.users.engineers()?;
        self.rank_among(t, &engineers)
    }

    fn rank_among(&self, t: &Ticket, engineers: &[Engineer]) -> Result<Ranking> {
        let now = self.tickets.now();
        let loc = self.tickets.device_location(t)?;
        let (bookings, active) = self.bookings(now, Some(t.id))?;
        let situations: Vec<ranking::Situation<'_>> = engineers
            .iter()
            .map(|e| ranking::Situation {
                engineer: e,
                active: active.get(&e.login).copied().unwrap_or(0),
                bookings: bookings.get(&e.login).cloned().unwrap_or_default(),
            })
            .collect();
        let need = ranking::Need {
            skills: t.assignment.skills.clone(),
            location: loc.lat.zip(loc.lon),
            region: loc.region,
            now,
            needed_by: self.needed_by(t),
        };
        let candidates = ranking::rank(&need, &situations, &self.config.rank_settings());
        let dispatch = self.tickets.dispatch_state(t.id)?.and_then(|d| d.state);
        Ok(Ranking {
            ticket_id: t.id,
            needed_by: need.needed_by,
            dispatch,
            mode: self.config.mode(t.priority, &t.device_type).as_str(),
            candidates,
        })
    }

    /// Checks assigning ticket `ticket_id` to `engineer` with a visit starting at
    /// `window_start` (now when none) against the engineer's daily capacity: the
    /// visits booked on that day in their time zone, this ticket excepted.
    pub fn check_capacity(
        &self,
        ticket_id: i64,
        engineer: &str,
        window_start: Option<Timestamp>,
    ) -> Result<CapacityCheck> {
        let Some(e) = self.users.engineer(engineer)? else {
            return Ok(CapacityCheck::NotAnEngineer);
        };
        let day = window_start.unwrap_or_else(|| self.tickets.now());
        let from = Timestamp(day.millis().saturating_sub(2 * Timestamp::DAY_MS));
        let (bookings, _) = self.tickets.engineer_bookings(from, Some(ticket_id))?;
        let mine: Vec<Timestamp> = bookings
            .into_iter()
            .filter(|b| b.engineer == e.login)
            .map(|b| b.window_start)
            .collect();
        let tz = ranking::time_zone(&e);
        let date = day
            .to_datetime()
            .map(|d| d.with_timezone(&tz).date_naive().to_string())
            .unwrap_or_default();
        Ok(CapacityCheck::Booked {
            day: date,
            load: ranking::load_on(&e, &mine, day),
            capacity: e.daily_capacity,
        })
    }

    /// The sweep: every active ticket dispatch has not considered yet, oldest first,
    /// by the `[dispatch]` rules (docs/dispatch.md):
    ///
    /// * a ticket a person assigned already: `manual`, left alone;
    /// * `auto` with a fitting engineer: assigned to the best (actor `fixahead`, the
    ///   window from their `available_at` for one visit, the reasons in the log);
    /// * `propose` with a fitting engineer: `proposed` (the ticket page shows the
    ///   ranking);
    /// * nobody fits: escalated to `manager` (`ticket.escalated`).
    ///
    /// Does nothing when `enabled = false`, or while no engineer is registered (the
    /// tickets wait undecided until the first one is). Returns what it did.
    #[tracing::instrument(skip_all)]
    pub fn dispatch_pending(&self) -> Result<Vec<Dispatched>> {
        let mut out = Vec::new();
        if !self.config.enabled {
            return Ok(out);
        }
        let engineers = self.users.engineers()?;
        if engineers.is_empty() {
            return Ok(out);
        }
        for _ in 0..MAX_ROUNDS {
            let ids = self.tickets.undispatched(BATCH)?;
            if ids.is_empty() {
                break;
            }
            let mut progressed = false;
            for id in ids {
                match self.decide(id, &engineers) {
                    Ok(Some(d)) => {
                        progressed = true;
                        out.push(d);
                    }
                    Ok(None) => {}
                    // Decided meanwhile (a planner was quicker): nothing to do.
                    Err(Error::Conflict(m)) => {
                        tracing::debug!(ticket_id = id, %m, "Dispatch skipped")
                    }
                    Err(e) => return Err(e),
                }
            }
            if !progressed {
                break;
            }
        }
        for d in &out {
            tracing::info!(ticket_id = d.ticket_id, decision = d.decision, engineer = ?d.engineer, "Dispatched");
        }
        Ok(out)
    }

    fn decide(&self, id: i64, engineers: &[Engineer]) -> Result<Option<Dispatched>> {
        let Some(t) = self.tickets.get(id)? else {
            return Ok(None);
        };
        let done = |decision: &'static str, engineer: Option<String>| {
            Some(Dispatched {
                ticket_id: id,
                decision,
                engineer,
            })
        };
        if t.assignment.engineer.is_some() {
            return Ok(self
                .tickets
                .mark_dispatch(id, "manual")?
                .then(|| done("manual", None))
                .flatten());
        }
        let ranking = self.rank_among(&t, engineers)?;
        let mode = self.config.mode(t.priority, &t.device_type);
        let best = ranking.candidates.iter().find(|c| c.fits);
        match (mode, best) {
            (DispatchMode::Auto, Some(c)) => {
                let start = c.available_at.unwrap_or(ranking.needed_by);
                let end = Timestamp(start.millis().saturating_add(self.config.visit.millis()));
                let region = engineers
                    .iter()
                    .find(|e| e.login == c.engineer)
                    .and_then(|e| e.region.clone())
                    .or_else(|| t.assignment.region.clone());
                let input = AssignmentInput {
                    engineer: Some(c.engineer.clone()),
                    window_start: Some(start),
                    window_end: Some(end),
                    region,
                };
                self.tickets
                    .dispatch_assign(id, input, &reasons_note(c, ranking.needed_by))?;
                Ok(done("assigned", Some(c.engineer.clone())))
            }
            (DispatchMode::Propose, Some(_)) => Ok(self
                .tickets
                .mark_dispatch(id, "proposed")?
                .then(|| done("proposed", None))
                .flatten()),
            (_, None) => {
                let reason = nobody_fits(&ranking);
                Ok(self
                    .tickets
                    .escalate_dispatch(id, &self.config.manager, &reason)?
                    .then(|| done("escalated", None))
                    .flatten())
            }
        }
    }
}

/// The log note of an automatic assignment: why this engineer.
fn reasons_note(c: &Candidate, needed_by: Timestamp) -> String {
    let r = &c.reasons;
    let distance = r.distance_km.map_or_else(
        || {
            if r.same_region {
                "same region".to_owned()
            } else {
                "distance unknown".to_owned()
            }
        },
        |d| format!("{d} km"),
    );
    format!(
        "dispatched automatically: score {}, skills {} (level {}), {distance}, load {} of {} today, there by {} (needed by {needed_by})",
        c.score,
        if r.skills.is_empty() {
            "none needed".to_owned()
        } else {
            r.skills.join(", ")
        },
        r.skill_level,
        r.load,
        r.capacity,
        c.available_at.map(|t| t.to_string()).unwrap_or_default(),
    )
}

/// Why nobody fits, for the escalation's log note and event.
fn nobody_fits(r: &Ranking) -> String {
    let mut why: Vec<String> = r
        .candidates
        .iter()
        .take(3)
        .map(|c| {
            format!(
                "{}: {}",
                c.engineer,
                c.why_not.as_deref().unwrap_or("does not fit")
            )
        })
        .collect();
    if r.candidates.len() > 3 {
        why.push(format!("{} more", r.candidates.len() - 3));
    }
    format!(
        "{} engineers ranked, none fits by {} ({})",
        r.candidates.len(),
        r.needed_by,
        why.join("; ")
    )
}

impl Supervisors for Dispatcher {
    /// The supervisor recorded in the engineer's profile.
    fn supervisor_of(&self, login: &str) -> Option<String> {
        match self.users.engineer(login) {
            Ok(e) => e.and_then(|e| e.supervisor),
            Err(e) => {
                tracing::warn!(error = %e, login, "Could not read the engineers' directory");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
