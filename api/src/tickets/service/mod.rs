//! The ticket service: the rules of tickets over the ticket store
//! ([`store::tickets::TicketDb`]), one idea per module:
//!
//! * [`intake`](self): signals in (model flags and critical fault codes) and the one
//!   active ticket per (device, component) they open or update;
//! * `diagnosis`: what a ticket's diagnosis snapshot says;
//! * `lifecycle`: transitions, outcomes and assignments by people;
//! * `sla`: the SLA clocks' sweep and escalation;
//! * `reports`: customer reports in, joined or opening a reactive ticket;
//! * `steps`: the procedure's step clocks, their sweep and the call-backs' sweep;
//! * `satisfaction`: satisfaction answers and call-backs;
//! * `events`: the event log's readers and their wake-up.
//!
//! This module holds the handle itself, the transaction helpers every change goes
//! through, and the queries.

mod diagnosis;
mod directory;
mod dispatch;
mod events;
mod intake;
mod lifecycle;
mod queue;
mod reports;
mod satisfaction;
mod sla;
mod steps;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use domain::{Ticket, TicketStatus, Timestamp};
use serde_json::{json, Value};
use store::tickets::{Tables, TicketDb, TicketReader};
use tokio::sync::watch;

pub use directory::MAX_CUSTOMER_DEVICES;
pub use reports::{
    check_words, Planned, ReportInput, ReportResult, ReportResultKind, MAX_WORDS, UNKNOWN_COMPONENT,
};

use super::{
    PerformanceQuery, PerformanceReport, ProcedureConfig, Regions, RiskRecord, SatisfactionConfig,
    TicketConfig, TicketQuery, TicketStats, EVENT_UPDATED,
};
use crate::{Error, Result};

/// A wall clock: returns "now". Injected so tests control time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The actor name of automatic actions in ticket logs.
pub const SYSTEM_ACTOR: &str = "fixahead";

/// The ticket service: records predictions and critical faults, opens and updates
/// tickets, moves them through their lifecycle, checks SLA clocks, writes events and
/// answers queries.
///
/// A cheap, clonable handle over the ticket store (one writer and one reader
/// connection). Every method blocks: call it from `tokio::task::spawn_blocking` in
/// async code.
#[derive(Clone)]
pub struct TicketService {
    inner: Arc<Inner>,
}

struct Inner {
    db: TicketDb,
    config: TicketConfig,
    /// `[procedures]`: the step clocks a ticket gets.
    procedures: ProcedureConfig,
    /// `[satisfaction]`: when an answer opens a call-back.
    satisfaction: SatisfactionConfig,
    clock: Clock,
    opened: AtomicU64,
    updated: AtomicU64,
    predictions: AtomicU64,
    flags: AtomicU64,
    sla_respond: AtomicU64,
    sla_resolve: AtomicU64,
    steps_overdue: AtomicU64,
    satisfaction_answers: AtomicU64,
    callbacks_opened: AtomicU64,
    callbacks_done: AtomicU64,
    callbacks_overdue: AtomicU64,
    /// The id of the newest committed event; SSE streams wait on it.
    events: watch::Sender<i64>,
    /// Every ticket as the performance report reads it, refreshed by change revision.
    performance: Mutex<super::performance::FactCache>,
}

impl std::fmt::Debug for TicketService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn system_clock() -> Timestamp {
    Timestamp::from(chrono::Utc::now())
}

fn after(t: Timestamp, ms: i64) -> Timestamp {
    Timestamp(t.millis().saturating_add(ms))
}

/// A ticket's summary as carried by its events.
fn summary(tx: &Tables<'_>, id: i64) -> Result<Value> {
    tx.ticket_summary(id)?
        .ok_or_else(|| Error::Corrupt(format!("ticket {id} vanished in its transaction")))
}

/// Appends a log entry and the `ticket.updated` event that announces it.
fn log_change(
    tx: &Tables<'_>,
    id: i64,
    now: Timestamp,
    actor: &str,
    action: &str,
    note: &str,
) -> Result<()> {
    tx.append_log(id, now, actor, action, note)?;
    let data = json!({"ticket": summary(tx, id)?, "action": action, "actor": actor, "note": note});
    let device = data["ticket"]["device_id"].as_str().unwrap_or_default();
    tx.insert_event(now, EVENT_UPDATED, Some(id), Some(device), &data)?;
    Ok(())
}

impl TicketService {
    /// Opens (creating or upgrading if needed) the ticket store at `path`, e.g.
    /// `{data_dir}/tickets.db`, with the system clock.
    pub fn open(path: &Path, config: TicketConfig) -> Result<Self> {
        Self::open_with_clock(path, config, Arc::new(system_clock))
    }

    /// Like [`TicketService::open`], with an injected clock.
    pub fn open_with_clock(path: &Path, config: TicketConfig, clock: Clock) -> Result<Self> {
        config.validate()?;
        let db = TicketDb::open(path)?;
        let last_event = db.read(|t| t.last_event_id())?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                config,
                procedures: ProcedureConfig::default(),
                satisfaction: SatisfactionConfig::default(),
                clock,
                opened: AtomicU64::new(0),
                updated: AtomicU64::new(0),
                predictions: AtomicU64::new(0),
                flags: AtomicU64::new(0),
                sla_respond: AtomicU64::new(0),
                sla_resolve: AtomicU64::new(0),
                steps_overdue: AtomicU64::new(0),
                satisfaction_answers: AtomicU64::new(0),
                callbacks_opened: AtomicU64::new(0),
                callbacks_done: AtomicU64::new(0),
                callbacks_overdue: AtomicU64::new(0),
                events: watch::Sender::new(last_event),
                performance: Mutex::default(),
            }),
        })
    }

    /// The same service with `[procedures]` and `[satisfaction]` in force instead of
    /// their defaults (validated). Call it right after opening, before the handle is
    /// cloned: [`Error::Config`] otherwise.
    pub fn with_procedures(
        mut self,
        procedures: ProcedureConfig,
        satisfaction: SatisfactionConfig,
    ) -> Result<Self> {
        procedures.validate()?;
        satisfaction.validate()?;
        let inner = Arc::get_mut(&mut self.inner).ok_or_else(|| {
            Error::Config("procedures must be set before the ticket service is shared".into())
        })?;
        inner.procedures = procedures;
        inner.satisfaction = satisfaction;
        Ok(self)
    }

    /// The configuration in force.
    pub fn config(&self) -> &TicketConfig {
        &self.inner.config
    }

    /// The procedures in force.
    pub fn procedures(&self) -> &ProcedureConfig {
        &self.inner.procedures
    }

    /// The satisfaction rules in force.
    pub fn satisfaction_config(&self) -> &SatisfactionConfig {
        &self.inner.satisfaction
    }

    /// "Now" by the service's clock.
    pub fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    /// Counters since the service was opened.
    pub fn stats(&self) -> TicketStats {
        TicketStats {
            opened: self.inner.opened.load(Ordering::Relaxed),
            updated: self.inner.updated.load(Ordering::Relaxed),
            predictions: self.inner.predictions.load(Ordering::Relaxed),
            flags: self.inner.flags.load(Ordering::Relaxed),
            sla_respond_breaches: self.inner.sla_respond.load(Ordering::Relaxed),
            sla_resolve_breaches: self.inner.sla_resolve.load(Ordering::Relaxed),
            steps_overdue: self.inner.steps_overdue.load(Ordering::Relaxed),
            satisfaction_answers: self.inner.satisfaction_answers.load(Ordering::Relaxed),
            callbacks_opened: self.inner.callbacks_opened.load(Ordering::Relaxed),
            callbacks_done: self.inner.callbacks_done.load(Ordering::Relaxed),
            callbacks_overdue: self.inner.callbacks_overdue.load(Ordering::Relaxed),
        }
    }

    /// Changes ticket `id` in one write transaction: `change` gets the transaction, the
    /// ticket as stored and the service's time; then the ticket is read back, the
    /// transaction committed and event subscribers woken. [`Error::NotFound`] if there
    /// is no such ticket; nothing is written when `change` fails.
    fn change_ticket(
        &self,
        id: i64,
        change: impl FnOnce(&Tables<'_>, &Ticket, Timestamp) -> Result<()>,
    ) -> Result<Ticket> {
        self.write(|tx, now| {
            let t = tx
                .get_ticket(id)?
                .ok_or_else(|| Error::NotFound(format!("ticket {id} not found")))?;
            change(tx, &t, now)?;
            tx.get_ticket(id)?
                .ok_or_else(|| Error::Corrupt(format!("ticket {id} vanished in its transaction")))
        })
    }

    /// Runs `f` on the reader connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Tables<'_>) -> Result<T>) -> Result<T> {
        self.inner.db.read(f)
    }

    /// A read-only connection of its own, for a reader that scans whole tables
    /// (fleet snapshots) without holding up the service's reader.
    pub(crate) fn open_reader(&self) -> Result<TicketReader> {
        Ok(self.inner.db.reader()?)
    }

    /// Runs `f` in one immediate write transaction with the service's time, commits
    /// and wakes event subscribers; nothing is written when `f` fails.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Tables<'_>, Timestamp) -> Result<T>,
    ) -> Result<T> {
        let now = self.now();
        let out = self.inner.db.write(|tx| f(tx, now))?;
        self.notify();
        Ok(out)
    }

    /// One ticket with its diagnosis and log.
    pub fn get(&self, id: i64) -> Result<Option<Ticket>> {
        self.read(|t| Ok(t.get_ticket(id)?))
    }

    /// Tickets matching `query`, newest first, each with its log.
    pub fn list(&self, query: &TicketQuery) -> Result<Vec<Ticket>> {
        self.read(|t| Ok(t.list_tickets(query)?))
    }

    /// The newest `limit` tickets of one device (only the active ones when
    /// `active_only`), newest first, each with its log: one indexed read, for the
    /// device page and remote diagnosis (where [`TicketService::list`] would scan).
    pub fn device_tickets(
        &self,
        device_id: &str,
        active_only: bool,
        limit: usize,
    ) -> Result<Vec<Ticket>> {
        self.read(|t| Ok(t.device_tickets(device_id, active_only, limit)?))
    }

    /// Model performance from ticket outcomes (see [`super::performance`]), with
    /// regions from `regions` first and the tickets' assignments second.
    pub fn performance(
        &self,
        query: &PerformanceQuery,
        regions: &dyn Regions,
    ) -> Result<PerformanceReport> {
        let mut cache = self
            .inner
            .performance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let changed = self.read(|t| Ok(t.performance_facts(cache.rev())?))?;
        cache.apply(changed);
        Ok(cache.report(query, regions))
    }

    /// The current risk of every scored component of a device.
    pub fn device_risk(&self, device_id: &str) -> Result<Vec<RiskRecord>> {
        self.read(|t| Ok(t.device_risk(device_id)?))
    }

    /// Number of active tickets (open, acknowledged, scheduled, in progress).
    pub fn count_active(&self) -> Result<u64> {
        self.read(|t| Ok(t.count_active()?))
    }

    /// Number of tickets in each status (every status, zeros included).
    pub fn count_by_status(&self) -> Result<Vec<(TicketStatus, u64)>> {
        let counts = self.read(|t| Ok(t.count_by_status()?))?;
        Ok(TicketStatus::ALL
            .into_iter()
            .map(|s| {
                let n = counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
                (s, n)
            })
            .collect())
    }
}

#[cfg(test)]
mod procedure_tests;
#[cfg(test)]
mod reports_tests;
#[cfg(test)]
mod tests;
