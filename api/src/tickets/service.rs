use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use domain::{
    Assignment, ComponentRisk, Contribution, Diagnosis, FaultNote, Outcome, OutcomeKind,
    Prediction, Priority, Ticket, TicketSource, TicketStatus, Timestamp,
};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::store::{self, NewTicket, Reopen, StatusChange, TicketUpdate};
use super::{
    AssignmentInput, DeviceSignals, DiagnosisContext, EventRecord, FaultSignal, OutcomeInput,
    PerformanceQuery, PerformanceReport, Regions, RiskRecord, SlaBreach, SlaKind, TicketChange,
    TicketChangeKind, TicketConfig, TicketQuery, TicketStats, EVENT_FLAGGED, EVENT_OPENED,
    EVENT_SLA_BREACHED, EVENT_UPDATED,
};
use crate::{Error, Result};

/// A wall clock: returns "now". Injected so tests control time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The actor name of automatic actions in ticket logs.
pub const SYSTEM_ACTOR: &str = "fixahead";

/// Most recent faults copied into a ticket's diagnosis.
const MAX_DIAGNOSIS_FAULTS: usize = 20;

/// Longest engineer, region or note accepted.
const MAX_TEXT: usize = 2_000;

/// The ticket service: records predictions and critical faults, opens and updates
/// tickets, moves them through their lifecycle, checks SLA clocks, writes events and
/// answers queries.
///
/// A cheap, clonable handle over one writer and one reader SQLite connection. Every
/// method blocks: call it from `tokio::task::spawn_blocking` in async code.
#[derive(Clone)]
pub struct TicketService {
    inner: Arc<Inner>,
}

struct Inner {
    path: std::path::PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    config: TicketConfig,
    clock: Clock,
    opened: AtomicU64,
    updated: AtomicU64,
    predictions: AtomicU64,
    flags: AtomicU64,
    sla_respond: AtomicU64,
    sla_resolve: AtomicU64,
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

/// Locks a connection. A panic while holding the lock cannot leave a transaction
/// half-applied (rusqlite rolls back on drop), so a poisoned lock is still usable.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn system_clock() -> Timestamp {
    Timestamp::from(chrono::Utc::now())
}

fn after(t: Timestamp, ms: i64) -> Timestamp {
    Timestamp(t.millis().saturating_add(ms))
}

/// A ticket's summary as carried by its events.
fn summary(conn: &Connection, id: i64) -> Result<Value> {
    let t = store::get_ticket_row(conn, id)?
        .ok_or_else(|| Error::Corrupt(format!("ticket {id} vanished in its transaction")))?;
    Ok(t)
}

/// Appends a log entry and the `ticket.updated` event that announces it.
fn log_change(
    conn: &Connection,
    id: i64,
    now: Timestamp,
    actor: &str,
    action: &str,
    note: &str,
) -> Result<()> {
    store::append_log(conn, id, now, actor, action, note)?;
    let data =
        json!({"ticket": summary(conn, id)?, "action": action, "actor": actor, "note": note});
    let device = data["ticket"]["device_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    store::insert_event(conn, now, EVENT_UPDATED, Some(id), &device, &data)?;
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
        let writer = store::open_connection(path, true)?;
        let reader = store::open_connection(path, false)?;
        reader.pragma_update(None, "query_only", "ON")?;
        let last_event = store::last_event_id(&writer)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                config,
                clock,
                opened: AtomicU64::new(0),
                updated: AtomicU64::new(0),
                predictions: AtomicU64::new(0),
                flags: AtomicU64::new(0),
                sla_respond: AtomicU64::new(0),
                sla_resolve: AtomicU64::new(0),
                events: watch::Sender::new(last_event),
                performance: Mutex::default(),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &TicketConfig {
        &self.inner.config
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
        }
    }

    /// Commits a write transaction (callers then [`Self::notify`] event subscribers).
    fn commit(&self, tx: Transaction<'_>) -> Result<()> {
        tx.commit()?;
        Ok(())
    }

    /// Changes ticket `id` in one write transaction: `change` gets the transaction, the
    /// ticket as stored and the service's time; then the ticket is read back, the
    /// transaction committed and event subscribers woken. [`Error::NotFound`] if there
    /// is no such ticket; nothing is written when `change` fails.
    fn change_ticket(
        &self,
        id: i64,
        change: impl FnOnce(&Transaction<'_>, &Ticket, Timestamp) -> Result<()>,
    ) -> Result<Ticket> {
        let now = self.now();
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let t = store::get_ticket(&tx, id)?
            .ok_or_else(|| Error::NotFound(format!("ticket {id} not found")))?;
        change(&tx, &t, now)?;
        let ticket = store::get_ticket(&tx, id)?
            .ok_or_else(|| Error::Corrupt(format!("ticket {id} vanished in its transaction")))?;
        self.commit(tx)?;
        self.notify(&conn);
        Ok(ticket)
    }

    /// Runs `f` on the reader connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&lock(&self.inner.reader))
    }

    /// A new read-only connection of its own, for a reader that scans whole tables
    /// (fleet snapshots) without holding up the service's reader.
    pub(crate) fn open_reader(&self) -> Result<Connection> {
        let conn = store::open_connection(&self.inner.path, false)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(conn)
    }

    /// Runs `f` in one immediate write transaction with the service's time, commits
    /// and wakes event subscribers; nothing is written when `f` fails.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, Timestamp) -> Result<T>,
    ) -> Result<T> {
        let now = self.now();
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx, now)?;
        self.commit(tx)?;
        self.notify(&conn);
        Ok(out)
    }

    /// Tells subscribers about events committed on `conn` (the writer, still locked).
    fn notify(&self, conn: &Connection) {
        match store::last_event_id(conn) {
            Ok(last) => {
                self.inner.events.send_if_modified(|cur| {
                    let newer = last > *cur;
                    if newer {
                        *cur = last;
                    }
                    newer
                });
            }
            Err(e) => tracing::warn!(error = %e, "Could not read the last event id"),
        }
    }

    /// Records the predictions of one device; see [`Self::record`].
    pub fn record_predictions(
        &self,
        predictions: &[Prediction],
        context: &DiagnosisContext,
    ) -> Result<Vec<TicketChange>> {
        self.record(&[DeviceSignals {
            predictions,
            faults: &[],
            context,
        }])
    }

    /// Predictions of several devices, without faults; see [`Self::record`].
    pub fn record_batch(
        &self,
        devices: &[(&[Prediction], &DiagnosisContext)],
    ) -> Result<Vec<TicketChange>> {
        let signals: Vec<DeviceSignals<'_>> = devices
            .iter()
            .map(|(predictions, context)| DeviceSignals {
                predictions,
                faults: &[],
                context,
            })
            .collect();
        self.record(&signals)
    }

    /// Records the signals of several devices in one transaction (the live pipeline
    /// records a whole scoring batch at once, so the durable commit is paid once per
    /// batch). All or nothing: on an error nothing of the batch is recorded. Per device:
    ///
    /// * every raised fault code that the catalogue rates `critical` and links to a
    ///   component opens an urgent *reactive* ticket for (device, component), or
    ///   updates the active ticket of the pair (one more signal, urgent, log entry
    ///   `fault_raised`); faults are applied before the device's predictions, so a
    ///   failure that has happened is what opens the ticket;
    /// * every prediction becomes the current risk of its (device, component), unless a
    ///   newer score (by event time) is stored; the first flagged score of a flag
    ///   episode (the stored risk was not flagged) writes a `prediction.flagged` event;
    /// * every *flagged* prediction opens a proactive ticket (status `open`, priority
    ///   and SLA clocks from [`TicketConfig`], log entry `opened` by `fixahead`), or
    ///   updates the active ticket of the pair: latest risk, peak risk, model version,
    ///   one more signal, a fresh diagnosis, a priority raised (never lowered) by the
    ///   rules, and a `risk_updated` log entry when the risk moved by at least
    ///   `risk_log_delta` and `risk_log_interval` has passed since the last one;
    /// * except that one flag episode opens at most one ticket: with no active ticket,
    ///   a flagged prediction whose episode already had a ticket that was resolved or
    ///   dismissed since the episode began changes nothing (the flag must go down and
    ///   come up again to open another).
    ///
    /// The insert relies on the store's unique index, not on a prior read, so two
    /// callers can never open two active tickets for one pair. Events are written in
    /// the same transaction. Predictions with a non-finite risk are skipped (and
    /// logged). Returns one change per ticket-affecting signal, in order.
    pub fn record(&self, devices: &[DeviceSignals<'_>]) -> Result<Vec<TicketChange>> {
        let now = self.now();
        let day = now
            .to_datetime()
            .map(|dt| dt.format("%Y%m%d").to_string())
            .ok_or_else(|| Error::Task(format!("clock out of range: {}", now.millis())))?;
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changes = Vec::new();
        let mut recorded = 0;
        let mut episodes = 0;
        for device in devices {
            for f in device.faults {
                if let Some(change) = self.apply_fault(&tx, f, device.context, now, &day)? {
                    changes.push(change);
                }
            }
            for p in device.predictions {
                if !(p.risk.is_finite() && p.threshold.is_finite()) {
                    tracing::warn!(device_id = %p.device_id, component = %p.component, "Skipping a prediction with a non-finite risk");
                    continue;
                }
                if p.flagged {
                    let previous = store::risk_flagged(&tx, p.device_id.as_str(), &p.component)?;
                    if previous.is_none_or(|(flagged, ts)| !flagged && p.ts >= ts) {
                        let data = json!({
                            "device_id": p.device_id, "device_type": p.device_type,
                            "component": p.component, "risk": p.risk, "threshold": p.threshold,
                            "model_version": p.model_version, "ts": p.ts,
                        });
                        store::insert_event(
                            &tx,
                            now,
                            EVENT_FLAGGED,
                            None,
                            p.device_id.as_str(),
                            &data,
                        )?;
                        episodes += 1;
                    }
                }
                store::upsert_risk(&tx, p, now)?;
                recorded += 1;
                if p.flagged {
                    changes.extend(self.apply_flag(&tx, p, device.context, now, &day)?);
                }
            }
        }
        self.commit(tx)?;
        self.notify(&conn);
        drop(conn);
        self.inner
            .predictions
            .fetch_add(recorded, Ordering::Relaxed);
        self.inner.flags.fetch_add(episodes, Ordering::Relaxed);
        for c in &changes {
            let counter = match c.kind {
                TicketChangeKind::Opened => &self.inner.opened,
                TicketChangeKind::Updated => &self.inner.updated,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(changes)
    }

    /// Inserts a ticket unless the pair has an active one; `Some((id, number))` if it
    /// was inserted.
    fn try_open(
        &self,
        conn: &Connection,
        day: &str,
        new: NewTicket<'_>,
    ) -> Result<Option<(i64, String)>> {
        let seq = store::peek_number(conn, day)?;
        let number = format!("{day}{seq:06}");
        let new = NewTicket {
            number: &number,
            ..new
        };
        match store::insert_ticket(conn, &new)? {
            Some(id) => {
                store::issue_number(conn, day, seq)?;
                Ok(Some((id, number)))
            }
            None => Ok(None),
        }
    }

    /// Logs `opened` and writes the `ticket.opened` event.
    fn opened(&self, conn: &Connection, id: i64, now: Timestamp, note: &str) -> Result<()> {
        store::append_log(conn, id, now, SYSTEM_ACTOR, "opened", note)?;
        let data = json!({"ticket": summary(conn, id)?, "action": "opened", "actor": SYSTEM_ACTOR, "note": note});
        let device = data["ticket"]["device_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        store::insert_event(conn, now, EVENT_OPENED, Some(id), &device, &data)?;
        Ok(())
    }

    /// The active ticket of a pair, which must exist after an insert conflicted (the
    /// write transaction holds the database lock).
    fn conflicting(
        conn: &Connection,
        device_id: &str,
        component: &str,
    ) -> Result<store::ActiveTicket> {
        store::active_ticket(conn, device_id, component)?.ok_or_else(|| {
            Error::Corrupt(format!(
                "insert conflicted but no active ticket for {device_id}/{component}"
            ))
        })
    }

    /// Deadlines after a priority change: each moves to `min(deadline, now + new tier)`.
    fn raised_deadlines(
        &self,
        active: &store::ActiveTicket,
        priority: Priority,
        now: Timestamp,
    ) -> (Timestamp, Option<Timestamp>) {
        let config = &self.inner.config;
        if priority == active.priority {
            return (active.respond_by, active.resolve_by);
        }
        let respond = after(now, config.response_ms(priority)).min(active.respond_by);
        let resolve = after(now, config.resolve_ms(priority));
        (
            respond,
            Some(active.resolve_by.map_or(resolve, |r| r.min(resolve))),
        )
    }

    fn apply_flag(
        &self,
        conn: &Connection,
        p: &Prediction,
        ctx: &DiagnosisContext,
        now: Timestamp,
        day: &str,
    ) -> Result<Option<TicketChange>> {
        // One flag episode, one ticket: a planner who resolved or dismissed this
        // episode's ticket has dealt with it, and a flag that stays up (the risk of a
        // repaired part stays high while its windows still hold the failing readings;
        // a dismissed prediction has not changed) must not open another at once. A new
        // episode, after the flag went down, opens a new ticket; a critical fault code
        // opens a reactive one regardless (`apply_fault`).
        let (device_id, component) = (p.device_id.as_str(), p.component.as_str());
        if store::episode_ticket_ended(conn, device_id, component)? {
            tracing::debug!(
                device_id,
                component,
                "Flag episode already had a ticket that ended; not opening another"
            );
            return Ok(None);
        }
        let config = &self.inner.config;
        let critical = critical_fault(config, p, ctx);
        let priority = config.priority(p.risk, p.lead_time_days, critical.is_some());
        let risks = store::device_risk(conn, p.device_id.as_str())?;
        let diagnosis = serde_json::to_string(&build_diagnosis(
            &p.component,
            p.top_features.clone(),
            Some(p.model_version.clone()),
            p.lead_time_days,
            &risks,
            ctx,
        ))?;
        let change = |ticket_id, number, priority, kind, source| TicketChange {
            ticket_id,
            number,
            device_id: p.device_id.clone(),
            component: p.component.clone(),
            priority,
            kind,
            source,
        };
        let skills = skills_json(ctx, &p.component)?;
        let new = NewTicket {
            number: "",
            device_id: p.device_id.as_str(),
            device_type: &p.device_type,
            component: &p.component,
            source: TicketSource::Proactive,
            risk: p.risk,
            model_version: &p.model_version,
            priority,
            opened_at: now,
            respond_by: after(now, config.response_ms(priority)),
            resolve_by: after(now, config.resolve_ms(priority)),
            diagnosis_json: &diagnosis,
            skills_json: &skills,
        };
        if let Some((id, number)) = self.try_open(conn, day, new)? {
            // A flag under the threshold was raised by the model's fault-code rule
            // (models::FaultRule): say so, or the note reads as a contradiction. So is
            // every flag of a device in its warm-up, whatever its risk says.
            let why = if p.warming_up {
                "flagged on its fault codes; device warming up, risk not reliable yet; "
            } else if p.risk < p.threshold {
                "flagged on its fault codes; "
            } else {
                ""
            };
            let mut note = format!(
                "{why}Risk {:.2} (threshold {:.2}) for {} by model {}; priority {priority}",
                p.risk, p.threshold, p.component, p.model_version
            );
            if let Some(code) = critical {
                note.push_str(&format!(" (critical fault {code} raised)"));
            }
            self.opened(conn, id, now, &note)?;
            return Ok(Some(change(
                id,
                number,
                priority,
                TicketChangeKind::Opened,
                TicketSource::Proactive,
            )));
        }

        // The unique index reported an active ticket for the pair: update it.
        let active = Self::conflicting(conn, p.device_id.as_str(), &p.component)?;
        // `Priority` orders urgent first, so `min` is the more urgent tier.
        let new_priority = active.priority.min(priority);
        let (respond_by, resolve_by) = self.raised_deadlines(&active, new_priority, now);
        let log_risk = (p.risk - active.risk_logged).abs() >= config.risk_log_delta
            && now.millis().saturating_sub(active.risk_logged_at.millis())
                >= config.risk_log_interval.millis();
        store::update_ticket(
            conn,
            &TicketUpdate {
                id: active.id,
                priority: new_priority,
                risk: p.risk,
                peak_risk: active.peak_risk.max(p.risk),
                model_version: &p.model_version,
                updated_at: now,
                respond_by,
                resolve_by,
                diagnosis_json: &diagnosis,
                risk_logged: log_risk.then_some((p.risk, now)),
            },
        )?;
        if log_risk {
            let note = format!(
                "Risk {:.2} -> {:.2} by model {}",
                active.risk_logged, p.risk, p.model_version
            );
            log_change(conn, active.id, now, SYSTEM_ACTOR, "risk_updated", &note)?;
        }
        if new_priority != active.priority {
            let mut note = format!(
                "Priority {} -> {new_priority} (risk {:.2})",
                active.priority, p.risk
            );
            if let Some(code) = critical {
                note.push_str(&format!(", critical fault {code} raised"));
            }
            log_change(conn, active.id, now, SYSTEM_ACTOR, "priority_raised", &note)?;
        }
        Ok(Some(change(
            active.id,
            active.number,
            new_priority,
            TicketChangeKind::Updated,
            TicketSource::Proactive,
        )))
    }

    /// A raised fault code: opens or updates a reactive ticket if the catalogue rates it
    /// critical and links it to a component; `None` otherwise.
    fn apply_fault(
        &self,
        conn: &Connection,
        f: &FaultSignal,
        ctx: &DiagnosisContext,
        now: Timestamp,
        day: &str,
    ) -> Result<Option<TicketChange>> {
        let config = &self.inner.config;
        let Some(def) = ctx.profile.as_ref().and_then(|p| p.fault(&f.code)) else {
            return Ok(None);
        };
        let Some(component) = def.component.as_deref() else {
            return Ok(None);
        };
        if !TicketConfig::is_critical(def.severity) {
            return Ok(None);
        }
        let priority = Priority::Urgent;
        let risks = store::device_risk(conn, f.device_id.as_str())?;
        let scored = risks.iter().find(|r| r.component == component);
        let diagnosis = serde_json::to_string(&build_diagnosis(
            component,
            scored.map(|r| r.top_features.clone()).unwrap_or_default(),
            scored.map(|r| r.model_version.clone()),
            None,
            &risks,
            ctx,
        ))?;
        let change = |ticket_id, number, kind, source| TicketChange {
            ticket_id,
            number,
            device_id: f.device_id.clone(),
            component: component.to_owned(),
            priority,
            kind,
            source,
        };
        let skills = skills_json(ctx, component)?;
        let new = NewTicket {
            number: "",
            device_id: f.device_id.as_str(),
            device_type: &f.device_type,
            component,
            source: TicketSource::Reactive,
            risk: scored.map_or(0.0, |r| r.risk),
            model_version: scored.map_or("", |r| r.model_version.as_str()),
            priority,
            opened_at: now,
            respond_by: after(now, config.response_ms(priority)),
            resolve_by: after(now, config.resolve_ms(priority)),
            diagnosis_json: &diagnosis,
            skills_json: &skills,
        };
        let note = format!(
            "Critical fault {} ({}) raised at {} for {component}",
            f.code, def.title, f.ts
        );
        if let Some((id, number)) = self.try_open(conn, day, new)? {
            self.opened(conn, id, now, &format!("{note}; priority urgent"))?;
            return Ok(Some(change(
                id,
                number,
                TicketChangeKind::Opened,
                TicketSource::Reactive,
            )));
        }
        let active = Self::conflicting(conn, f.device_id.as_str(), component)?;
        let (respond_by, resolve_by) = self.raised_deadlines(&active, priority, now);
        store::update_ticket(
            conn,
            &TicketUpdate {
                id: active.id,
                priority,
                risk: active.risk,
                peak_risk: active.peak_risk,
                model_version: &active.model_version,
                updated_at: now,
                respond_by,
                resolve_by,
                diagnosis_json: &diagnosis,
                risk_logged: None,
            },
        )?;
        log_change(conn, active.id, now, SYSTEM_ACTOR, "fault_raised", &note)?;
        if priority != active.priority {
            let note = format!(
                "Priority {} -> {priority} (critical fault {})",
                active.priority, f.code
            );
            log_change(conn, active.id, now, SYSTEM_ACTOR, "priority_raised", &note)?;
        }
        Ok(Some(change(
            active.id,
            active.number,
            TicketChangeKind::Updated,
            TicketSource::Reactive,
        )))
    }

    /// One ticket with its diagnosis and log.
    pub fn get(&self, id: i64) -> Result<Option<Ticket>> {
        store::get_ticket(&lock(&self.inner.reader), id)
    }

    /// Tickets matching `query`, newest first, each with its log.
    pub fn list(&self, query: &TicketQuery) -> Result<Vec<Ticket>> {
        store::list_tickets(&lock(&self.inner.reader), query)
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
        let changed = store::performance_facts(&lock(&self.inner.reader), cache.rev())?;
        cache.apply(changed);
        Ok(cache.report(query, regions))
    }

    /// The current risk of every scored component of a device.
    pub fn device_risk(&self, device_id: &str) -> Result<Vec<RiskRecord>> {
        store::device_risk(&lock(&self.inner.reader), device_id)
    }

    /// Number of active tickets (open, acknowledged, scheduled, in progress).
    pub fn count_active(&self) -> Result<u64> {
        store::count_active(&lock(&self.inner.reader))
    }

    /// Number of tickets in each status (every status, zeros included).
    pub fn count_by_status(&self) -> Result<Vec<(TicketStatus, u64)>> {
        let counts = store::count_by_status(&lock(&self.inner.reader))?;
        Ok(TicketStatus::ALL
            .into_iter()
            .map(|s| {
                let n = counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
                (s, n)
            })
            .collect())
    }

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
            store::set_outcome(tx, id, &o, now)?;
            log_change(tx, id, now, actor, "outcome_recorded", &outcome_note(&o))?;
        } else if to == TicketStatus::Resolved && t.outcome.is_none() {
            return Err(Error::invalid(
                "outcome: resolving a ticket needs an outcome; record one first (POST .../outcome) or pass \"outcome\"",
            ));
        }
        let reopen = from.is_reopen(to);
        let ok = store::change_status(
            tx,
            &StatusChange {
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
            },
        )?;
        if !ok {
            let other = store::active_ticket(tx, t.device_id.as_str(), &t.component)?.map_or_else(
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
            store::set_outcome(tx, id, &o, now)?;
            log_change(tx, id, now, actor, "outcome_recorded", &outcome_note(&o))?;
            Ok(())
        })
    }

    /// Sets a ticket's engineer, scheduled window and region (replacing all three;
    /// the skills come from the component and are kept), logged as `assigned`. Only
    /// active tickets can be assigned ([`Error::Conflict`] otherwise); a window must
    /// have both ends with the end after the start ([`Error::Invalid`]).
    pub fn assign(&self, id: i64, input: AssignmentInput, actor: &str) -> Result<Ticket> {
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
            store::set_assignment(tx, id, &a, now)?;
            let window = match (a.window_start, a.window_end) {
                (Some(s), Some(e)) => format!("{s} to {e}"),
                _ => "none".to_owned(),
            };
            let note = format!(
                "Engineer {}, window {window}, region {}",
                a.engineer.as_deref().unwrap_or("none"),
                a.region.as_deref().unwrap_or("none"),
            );
            log_change(tx, id, now, actor, "assigned", &note)?;
            Ok(())
        })
    }

    /// Checks every active ticket's SLA clocks against the service's clock, in one
    /// transaction. A clock that ran out (respond: still `open` past `respond_by`;
    /// resolve: still active past `resolve_by`) is marked breached once, the ticket
    /// records `escalated_to` (the tier's escalation from the configuration), its log
    /// gets `sla_breached` by `fixahead`, and a `ticket.sla_breached` event is written.
    /// Also deletes events older than `event_retention`. Returns the new breaches.
    pub fn check_sla(&self) -> Result<Vec<SlaBreach>> {
        let now = self.now();
        let config = &self.inner.config;
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut breaches = Vec::new();
        for kind in [SlaKind::Respond, SlaKind::Resolve] {
            for due in store::due_clocks(&tx, now, kind)? {
                let escalated_to = config.escalation(due.priority).to_owned();
                store::mark_breached(&tx, due.id, kind, &escalated_to, now)?;
                let note = format!(
                    "{} deadline {} passed ({} ticket); escalated to {escalated_to}",
                    kind.as_str(),
                    due.deadline,
                    due.priority
                );
                store::append_log(&tx, due.id, now, SYSTEM_ACTOR, "sla_breached", &note)?;
                let data = json!({
                    "ticket": summary(&tx, due.id)?, "kind": kind, "deadline": due.deadline,
                    "escalated_to": escalated_to,
                });
                let device = data["ticket"]["device_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                store::insert_event(&tx, now, EVENT_SLA_BREACHED, Some(due.id), &device, &data)?;
                breaches.push(SlaBreach {
                    ticket_id: due.id,
                    kind,
                    deadline: due.deadline,
                    escalated_to,
                });
            }
        }
        let cutoff = Timestamp(now.millis().saturating_sub(config.event_retention.millis()));
        let deleted = store::delete_events_before(&tx, cutoff)?;
        if deleted > 0 {
            tracing::debug!(deleted, "Deleted events past their retention");
        }
        self.commit(tx)?;
        self.notify(&conn);
        drop(conn);
        for b in &breaches {
            let counter = match b.kind {
                SlaKind::Respond => &self.inner.sla_respond,
                SlaKind::Resolve => &self.inner.sla_resolve,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(breaches)
    }

    /// Events with an id above `after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventRecord>> {
        store::events_after(&lock(&self.inner.reader), after, limit)
    }

    /// A receiver of the newest committed event id; it changes after every commit
    /// that wrote events. Readers then call [`Self::events_after`], so a wake-up that
    /// covers several commits loses nothing.
    pub fn subscribe_events(&self) -> watch::Receiver<i64> {
        self.inner.events.subscribe()
    }
}

/// Rejects text longer than [`MAX_TEXT`].
fn check_text(name: &str, s: &str) -> Result<()> {
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

/// The skills a component's repair needs, from the profile, as a JSON array.
fn skills_json(ctx: &DiagnosisContext, component: &str) -> Result<String> {
    let skills = ctx
        .profile
        .as_ref()
        .and_then(|p| p.component(component))
        .map(|c| c.skills.clone())
        .unwrap_or_default();
    Ok(serde_json::to_string(&skills)?)
}

/// The first critical-severity fault code of the prediction's component the device
/// raised within the configured window before the prediction.
fn critical_fault<'a>(
    config: &TicketConfig,
    p: &Prediction,
    ctx: &'a DiagnosisContext,
) -> Option<&'a str> {
    let profile = ctx.profile.as_ref()?;
    let since =
        p.ts.millis()
            .saturating_sub(config.critical_fault_window.millis());
    ctx.recent_faults
        .iter()
        .filter(|(_, ts)| ts.millis() >= since && *ts <= p.ts)
        .find(|(code, _)| {
            profile.fault(code).is_some_and(|def| {
                TicketConfig::is_critical(def.severity)
                    && def.component.as_deref() == Some(p.component.as_str())
            })
        })
        .map(|(code, _)| code.as_str())
}

/// The diagnosis snapshot: the score's top features, the device's recent faults with
/// catalogue text (newest first), the likely parts and remote checks of the catalogue
/// entries for the component (those of codes the device raised first), and the
/// current risk of each scored component.
fn build_diagnosis(
    component: &str,
    top_features: Vec<Contribution>,
    model_version: Option<String>,
    lead_time_days: Option<f64>,
    risks: &[RiskRecord],
    ctx: &DiagnosisContext,
) -> Diagnosis {
    let profile = ctx.profile.as_deref();
    let mut faults = ctx.recent_faults.clone();
    faults.sort_by_key(|(_, ts)| std::cmp::Reverse(*ts));
    faults.truncate(MAX_DIAGNOSIS_FAULTS);
    let recent_faults = faults
        .iter()
        .map(|(code, ts)| {
            let def = profile.and_then(|pr| pr.fault(code));
            FaultNote {
                code: code.clone(),
                ts: *ts,
                title: def.map(|d| d.title.clone()),
                severity: def.map(|d| d.severity.as_str().to_owned()),
            }
        })
        .collect();

    let mut likely_parts: Vec<String> = Vec::new();
    let mut remote_checks: Vec<String> = Vec::new();
    if let Some(profile) = profile {
        let seen = |code: &str| faults.iter().any(|(c, _)| c == code);
        let mut defs: Vec<_> = profile
            .faults()
            .iter()
            .filter(|d| d.component.as_deref() == Some(component))
            .collect();
        // Stable sort: codes the device raised first, catalogue order otherwise.
        defs.sort_by_key(|d| !seen(&d.code));
        for d in defs {
            for part in &d.likely_parts {
                if !likely_parts.contains(part) {
                    likely_parts.push(part.clone());
                }
            }
            for check in &d.remote_checks {
                if !remote_checks.contains(check) {
                    remote_checks.push(check.clone());
                }
            }
        }
    }
    Diagnosis {
        top_features,
        recent_faults,
        likely_parts,
        remote_checks,
        component_risks: risks
            .iter()
            .map(|r| ComponentRisk {
                component: r.component.clone(),
                risk: r.risk,
                flagged: r.flagged,
            })
            .collect(),
        lead_time_days,
        model_version,
    }
}

#[cfg(test)]
mod tests;
