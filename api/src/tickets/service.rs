use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use domain::{Diagnosis, FaultNote, Prediction, Ticket, TicketStatus, Timestamp};
use rusqlite::{Connection, TransactionBehavior};

use super::store::{self, NewTicket, TicketUpdate};
use super::{
    DiagnosisContext, RiskRecord, TicketChange, TicketChangeKind, TicketConfig, TicketQuery,
    TicketStats,
};
use crate::{Error, Result};

/// A wall clock: returns "now". Injected so tests control time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The actor name of automatic actions in ticket logs.
pub const SYSTEM_ACTOR: &str = "fixahead";

/// Most recent faults copied into a ticket's diagnosis.
const MAX_DIAGNOSIS_FAULTS: usize = 20;

/// The ticket service: records predictions, opens and updates tickets, answers queries.
///
/// A cheap, clonable handle over one writer and one reader SQLite connection. Every
/// method blocks: call it from `tokio::task::spawn_blocking` in async code.
#[derive(Clone)]
pub struct TicketService {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    config: TicketConfig,
    clock: Clock,
    opened: AtomicU64,
    updated: AtomicU64,
    predictions: AtomicU64,
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

impl TicketService {
    /// Opens (creating if needed) the ticket store at `path`, e.g.
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
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                config,
                clock,
                opened: AtomicU64::new(0),
                updated: AtomicU64::new(0),
                predictions: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &TicketConfig {
        &self.inner.config
    }

    /// Counters since the service was opened.
    pub fn stats(&self) -> TicketStats {
        TicketStats {
            opened: self.inner.opened.load(Ordering::Relaxed),
            updated: self.inner.updated.load(Ordering::Relaxed),
            predictions: self.inner.predictions.load(Ordering::Relaxed),
        }
    }

    /// Records the predictions of one device, in one transaction:
    ///
    /// * every prediction becomes the current risk of its (device, component), unless a
    ///   newer score (by event time) is stored;
    /// * every *flagged* prediction opens a proactive ticket (status `open`, priority
    ///   and SLA from [`TicketConfig`], log entry `opened` by `fixahead`), or, when the
    ///   pair already has an active ticket, updates that one: latest risk, peak risk,
    ///   model version, one more signal, a fresh diagnosis, a priority raised (never
    ///   lowered) by the rules, and a `risk_updated` log entry when the risk moved by at
    ///   least `risk_log_delta` and `risk_log_interval` has passed since the last one.
    ///
    /// The insert relies on the store's unique index, not on a prior read, so two
    /// callers can never open two active tickets for one pair. `context` describes the
    /// device the predictions are about. Predictions with a non-finite risk are skipped
    /// (and logged). Returns one change per flagged prediction, in order.
    pub fn record_predictions(
        &self,
        predictions: &[Prediction],
        context: &DiagnosisContext,
    ) -> Result<Vec<TicketChange>> {
        self.record_batch(&[(predictions, context)])
    }

    /// [`Self::record_predictions`] for several devices, in one transaction: the live
    /// pipeline records a whole scoring batch at once, so the ticket store's durable
    /// commit (`synchronous = FULL`) is paid once per batch, not once per device.
    /// All or nothing: on an error nothing of the batch is recorded.
    pub fn record_batch(
        &self,
        devices: &[(&[Prediction], &DiagnosisContext)],
    ) -> Result<Vec<TicketChange>> {
        let now = (self.inner.clock)();
        let day = now
            .to_datetime()
            .map(|dt| dt.format("%Y%m%d").to_string())
            .ok_or_else(|| Error::Task(format!("clock out of range: {}", now.millis())))?;
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changes = Vec::new();
        let mut recorded = 0;
        for (predictions, context) in devices {
            for p in predictions.iter() {
                if !(p.risk.is_finite() && p.threshold.is_finite()) {
                    tracing::warn!(device_id = %p.device_id, component = %p.component, "Skipping a prediction with a non-finite risk");
                    continue;
                }
                store::upsert_risk(&tx, p, now)?;
                recorded += 1;
                if p.flagged {
                    changes.push(self.apply_flag(&tx, p, context, now, &day)?);
                }
            }
        }
        tx.commit()?;
        drop(conn);
        self.inner
            .predictions
            .fetch_add(recorded, Ordering::Relaxed);
        for c in &changes {
            let counter = match c.kind {
                TicketChangeKind::Opened => &self.inner.opened,
                TicketChangeKind::Updated => &self.inner.updated,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(changes)
    }

    fn apply_flag(
        &self,
        conn: &Connection,
        p: &Prediction,
        ctx: &DiagnosisContext,
        now: Timestamp,
        day: &str,
    ) -> Result<TicketChange> {
        let config = &self.inner.config;
        let critical = critical_fault(config, p, ctx);
        let priority = config.priority(p.risk, critical.is_some());
        let diagnosis = serde_json::to_string(&build_diagnosis(p, ctx))?;
        let change = |ticket_id, number, priority, kind| TicketChange {
            ticket_id,
            number,
            device_id: p.device_id.clone(),
            component: p.component.clone(),
            priority,
            kind,
        };

        let seq = store::peek_number(conn, day)?;
        let number = format!("{day}{seq:06}");
        let new = NewTicket {
            number: &number,
            prediction: p,
            priority,
            opened_at: now,
            respond_by: Timestamp(now.millis().saturating_add(config.response_ms(priority))),
            diagnosis_json: &diagnosis,
        };
        if let Some(id) = store::insert_ticket(conn, &new)? {
            store::issue_number(conn, day, seq)?;
            let mut note = format!(
                "Risk {:.2} (threshold {:.2}) for {} by model {}; priority {priority}",
                p.risk, p.threshold, p.component, p.model_version
            );
            if let Some(code) = critical {
                note.push_str(&format!(" (critical fault {code} raised)"));
            }
            store::append_log(conn, id, now, SYSTEM_ACTOR, "opened", &note)?;
            return Ok(change(id, number, priority, TicketChangeKind::Opened));
        }

        // The unique index reported an active ticket for the pair: update it. The write
        // transaction holds the database lock, so it is still there.
        let active =
            store::active_ticket(conn, p.device_id.as_str(), &p.component)?.ok_or_else(|| {
                Error::Corrupt(format!(
                    "insert conflicted but no active ticket for {}/{}",
                    p.device_id, p.component
                ))
            })?;
        // `Priority` orders urgent first, so `min` is the more urgent tier.
        let new_priority = active.priority.min(priority);
        let raised = new_priority != active.priority;
        let respond_by = if raised {
            let deadline = now
                .millis()
                .saturating_add(config.response_ms(new_priority));
            Timestamp(active.respond_by.millis().min(deadline))
        } else {
            active.respond_by
        };
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
                diagnosis_json: &diagnosis,
                risk_logged: log_risk.then_some((p.risk, now)),
            },
        )?;
        if log_risk {
            let note = format!(
                "Risk {:.2} -> {:.2} by model {}",
                active.risk_logged, p.risk, p.model_version
            );
            store::append_log(conn, active.id, now, SYSTEM_ACTOR, "risk_updated", &note)?;
        }
        if raised {
            let mut note = format!(
                "Priority {} -> {new_priority} (risk {:.2})",
                active.priority, p.risk
            );
            if let Some(code) = critical {
                note.push_str(&format!(", critical fault {code} raised"));
            }
            store::append_log(conn, active.id, now, SYSTEM_ACTOR, "priority_raised", &note)?;
        }
        Ok(change(
            active.id,
            active.number,
            new_priority,
            TicketChangeKind::Updated,
        ))
    }

    /// One ticket with its diagnosis and log.
    pub fn get(&self, id: i64) -> Result<Option<Ticket>> {
        store::get_ticket(&lock(&self.inner.reader), id)
    }

    /// Tickets matching `query`, newest first, each with its log.
    pub fn list(&self, query: &TicketQuery) -> Result<Vec<Ticket>> {
        store::list_tickets(&lock(&self.inner.reader), query)
    }

    /// The current risk of every scored component of a device.
    pub fn device_risk(&self, device_id: &str) -> Result<Vec<RiskRecord>> {
        store::device_risk(&lock(&self.inner.reader), device_id)
    }

    /// Number of active tickets (open, acknowledged, scheduled, in progress).
    pub fn count_active(&self) -> Result<u64> {
        store::count_active(&lock(&self.inner.reader))
    }

    /// Moves a ticket to `status` and logs `status_changed` by `actor` with `note`.
    ///
    /// A minimal lifecycle step: any status may follow any other. Errors:
    /// [`Error::NotFound`] for an unknown id; [`Error::Conflict`] when the ticket already
    /// has that status, or when making it active again would give its (device,
    /// component) a second active ticket.
    pub fn set_status(
        &self,
        id: i64,
        status: TicketStatus,
        actor: &str,
        note: &str,
    ) -> Result<Ticket> {
        let now = (self.inner.clock)();
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = store::ticket_status(&tx, id)?
            .ok_or_else(|| Error::NotFound(format!("ticket {id} not found")))?;
        if current == status {
            return Err(Error::Conflict(format!("ticket {id} is already {status}")));
        }
        if !store::set_status(&tx, id, status, now)? {
            return Err(Error::Conflict(format!(
                "ticket {id} cannot become {status}: its device and component already have an active ticket"
            )));
        }
        let text = if note.is_empty() {
            format!("{current} -> {status}")
        } else {
            format!("{current} -> {status}: {note}")
        };
        store::append_log(&tx, id, now, actor, "status_changed", &text)?;
        let ticket = store::get_ticket(&tx, id)?
            .ok_or_else(|| Error::Corrupt(format!("ticket {id} vanished in its transaction")))?;
        tx.commit()?;
        Ok(ticket)
    }
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

/// The diagnosis snapshot: the prediction's top features, the device's recent faults
/// with catalogue text (newest first), and the likely parts and remote checks of the
/// catalogue entries for the component, those of codes the device raised first.
fn build_diagnosis(p: &Prediction, ctx: &DiagnosisContext) -> Diagnosis {
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
            .filter(|d| d.component.as_deref() == Some(p.component.as_str()))
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
        top_features: p.top_features.clone(),
        recent_faults,
        likely_parts,
        remote_checks,
    }
}

#[cfg(test)]
mod tests;
