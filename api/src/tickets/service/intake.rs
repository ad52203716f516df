//! Signals in: model flags and critical fault codes, recorded in one transaction per
//! batch, each opening the one active ticket of its (device, component) or updating
//! it (invariant 7 "one risk, one ticket").

use std::sync::atomic::Ordering;

use domain::{Prediction, Priority, TicketSource, Timestamp};
use serde_json::json;
use store::tickets::{ActiveTicket, NewTicket, Tables, TicketUpdate};

use super::diagnosis::{build_diagnosis, critical_fault, skills_json};
use super::{after, log_change, summary, TicketService, SYSTEM_ACTOR};
use crate::tickets::{
    DeviceSignals, DiagnosisContext, FaultSignal, TicketChange, TicketChangeKind, TicketConfig,
    EVENT_FLAGGED, EVENT_OPENED,
};
use crate::{Error, Result};

/// One batch's write transaction, its time and its day (the prefix of the ticket
/// numbers it issues).
pub(super) struct Batch<'t, 'c> {
    pub(super) tx: &'t Tables<'c>,
    pub(super) now: Timestamp,
    pub(super) day: String,
}

/// A ticket to open, before it has a number and SLA clocks.
pub(super) struct Opening<'a> {
    pub(super) device_id: &'a str,
    pub(super) device_type: &'a str,
    pub(super) component: &'a str,
    pub(super) source: TicketSource,
    pub(super) risk: f64,
    pub(super) model_version: &'a str,
    pub(super) priority: Priority,
    pub(super) diagnosis_json: &'a str,
    pub(super) skills_json: &'a str,
    pub(super) device: store::tickets::DeviceFacts<'a>,
}

impl TicketService {
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
        let (changes, recorded, episodes) = self.write(|tx, now| {
            let day = now
                .to_datetime()
                .map(|dt| dt.format("%Y%m%d").to_string())
                .ok_or_else(|| Error::Task(format!("clock out of range: {}", now.millis())))?;
            let batch = Batch { tx, now, day };
            let mut changes = Vec::new();
            let mut recorded = 0;
            let mut episodes = 0;
            for device in devices {
                for f in device.faults {
                    if let Some(change) = self.apply_fault(&batch, f, device.context)? {
                        changes.push(change);
                    }
                }
                for p in device.predictions {
                    if !(p.risk.is_finite() && p.threshold.is_finite()) {
                        tracing::warn!(device_id = %p.device_id, component = %p.component, "Skipping a prediction with a non-finite risk");
                        continue;
                    }
                    if p.flagged && self.starts_episode(tx, p, now)? {
                        episodes += 1;
                    }
                    tx.upsert_risk(p, now)?;
                    recorded += 1;
                    if p.flagged {
                        changes.extend(self.apply_flag(&batch, p, device.context)?);
                    }
                }
            }
            Ok((changes, recorded, episodes))
        })?;
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

    /// Whether flagged `p` starts a flag episode (the stored risk of its pair was not
    /// flagged, and is not newer): if so, writes its `prediction.flagged` event.
    fn starts_episode(&self, tx: &Tables<'_>, p: &Prediction, now: Timestamp) -> Result<bool> {
        let previous = tx.risk_flagged(p.device_id.as_str(), &p.component)?;
        if !previous.is_none_or(|(flagged, ts)| !flagged && p.ts >= ts) {
            return Ok(false);
        }
        let data = json!({
            "device_id": p.device_id, "device_type": p.device_type,
            "component": p.component, "risk": p.risk, "threshold": p.threshold,
            "model_version": p.model_version, "ts": p.ts,
        });
        tx.insert_event(now, EVENT_FLAGGED, None, Some(p.device_id.as_str()), &data)?;
        Ok(true)
    }

    /// Opens a ticket (the next number of the day, the SLA clocks of its priority, log
    /// entry `opened` with `note`, the `ticket.opened` event) unless the pair has an
    /// active one; `Some((id, number))` if it opened one.
    pub(super) fn try_open(
        &self,
        b: &Batch<'_, '_>,
        o: Opening<'_>,
        note: &str,
    ) -> Result<Option<(i64, String)>> {
        let (tx, now, config) = (b.tx, b.now, &self.inner.config);
        let seq = tx.peek_number(&b.day)?;
        let number = format!("{}{seq:06}", b.day);
        let new = NewTicket {
            number: &number,
            device_id: o.device_id,
            device_type: o.device_type,
            component: o.component,
            source: o.source,
            risk: o.risk,
            model_version: o.model_version,
            priority: o.priority,
            opened_at: now,
            respond_by: after(now, config.response_ms(o.priority)),
            resolve_by: after(now, config.resolve_ms(o.priority)),
            diagnosis_json: o.diagnosis_json,
            skills_json: o.skills_json,
            device: o.device,
        };
        let Some(id) = tx.insert_ticket(&new)? else {
            return Ok(None);
        };
        tx.issue_number(&b.day, seq)?;
        self.start_steps(tx, id, now)?;
        tx.append_log(id, now, SYSTEM_ACTOR, "opened", note)?;
        let data = json!({"ticket": summary(tx, id)?, "action": "opened", "actor": SYSTEM_ACTOR, "note": note});
        let device = data["ticket"]["device_id"].as_str().unwrap_or_default();
        tx.insert_event(now, EVENT_OPENED, Some(id), Some(device), &data)?;
        Ok(Some((id, number)))
    }

    /// The active ticket of a pair, which must exist after an insert conflicted (the
    /// write transaction holds the database lock).
    pub(super) fn conflicting(
        tx: &Tables<'_>,
        device_id: &str,
        component: &str,
    ) -> Result<ActiveTicket> {
        tx.active_ticket(device_id, component)?.ok_or_else(|| {
            Error::Corrupt(format!(
                "insert conflicted but no active ticket for {device_id}/{component}"
            ))
        })
    }

    /// Deadlines after a priority change: each moves to `min(deadline, now + new tier)`.
    pub(super) fn raised_deadlines(
        &self,
        active: &ActiveTicket,
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

    /// A flagged prediction: opens a proactive ticket, or updates the active one of its
    /// pair (see [`Self::record`]).
    fn apply_flag(
        &self,
        b: &Batch<'_, '_>,
        p: &Prediction,
        ctx: &DiagnosisContext,
    ) -> Result<Option<TicketChange>> {
        let (tx, now) = (b.tx, b.now);
        // One flag episode, one ticket: a planner who resolved or dismissed this
        // episode's ticket has dealt with it, and a flag that stays up (the risk of a
        // repaired part stays high while its windows still hold the failing readings;
        // a dismissed prediction has not changed) must not open another at once. A new
        // episode, after the flag went down, opens a new ticket; a critical fault code
        // opens a reactive one regardless (`apply_fault`).
        let (device_id, component) = (p.device_id.as_str(), p.component.as_str());
        if tx.episode_ticket_ended(device_id, component)? {
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
        let risks = tx.device_risk(device_id)?;
        let diagnosis = serde_json::to_string(&build_diagnosis(
            component,
            p.top_features.clone(),
            Some(p.model_version.clone()),
            p.lead_time_days,
            &risks,
            ctx,
        ))?;
        let change = |ticket_id, number, priority, kind| TicketChange {
            ticket_id,
            number,
            device_id: p.device_id.clone(),
            component: p.component.clone(),
            priority,
            kind,
            source: TicketSource::Proactive,
        };
        let skills = skills_json(ctx, component)?;
        let opening = Opening {
            device_id,
            device_type: &p.device_type,
            component,
            source: TicketSource::Proactive,
            risk: p.risk,
            model_version: &p.model_version,
            priority,
            diagnosis_json: &diagnosis,
            skills_json: &skills,
            device: ctx.facts(),
        };
        if let Some((id, number)) = self.try_open(b, opening, &flag_note(p, priority, critical))? {
            return Ok(Some(change(id, number, priority, TicketChangeKind::Opened)));
        }

        // The unique index reported an active ticket for the pair: update it.
        let active = Self::conflicting(tx, device_id, component)?;
        // `Priority` orders urgent first, so `min` is the more urgent tier.
        let new_priority = active.priority.min(priority);
        let (respond_by, resolve_by) = self.raised_deadlines(&active, new_priority, now);
        let log_risk = (p.risk - active.risk_logged).abs() >= config.risk_log_delta
            && now.millis().saturating_sub(active.risk_logged_at.millis())
                >= config.risk_log_interval.millis();
        tx.update_ticket(&TicketUpdate {
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
            device: ctx.facts(),
        })?;
        if log_risk {
            let note = format!(
                "Risk {:.2} -> {:.2} by model {}",
                active.risk_logged, p.risk, p.model_version
            );
            log_change(tx, active.id, now, SYSTEM_ACTOR, "risk_updated", &note)?;
        }
        if new_priority != active.priority {
            let mut note = format!(
                "Priority {} -> {new_priority} (risk {:.2})",
                active.priority, p.risk
            );
            if let Some(code) = critical {
                note.push_str(&format!(", critical fault {code} raised"));
            }
            log_change(tx, active.id, now, SYSTEM_ACTOR, "priority_raised", &note)?;
        }
        let (id, number) = (active.id, active.number);
        Ok(Some(change(
            id,
            number,
            new_priority,
            TicketChangeKind::Updated,
        )))
    }

    /// A raised fault code: opens or updates a reactive ticket if the catalogue rates it
    /// critical and links it to a component; `None` otherwise.
    fn apply_fault(
        &self,
        b: &Batch<'_, '_>,
        f: &FaultSignal,
        ctx: &DiagnosisContext,
    ) -> Result<Option<TicketChange>> {
        let (tx, now) = (b.tx, b.now);
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
        let risks = tx.device_risk(f.device_id.as_str())?;
        let scored = risks.iter().find(|r| r.component == component);
        let diagnosis = serde_json::to_string(&build_diagnosis(
            component,
            scored.map(|r| r.top_features.clone()).unwrap_or_default(),
            scored.map(|r| r.model_version.clone()),
            None,
            &risks,
            ctx,
        ))?;
        let change = |ticket_id, number, kind| TicketChange {
            ticket_id,
            number,
            device_id: f.device_id.clone(),
            component: component.to_owned(),
            priority,
            kind,
            source: TicketSource::Reactive,
        };
        let skills = skills_json(ctx, component)?;
        let opening = Opening {
            device_id: f.device_id.as_str(),
            device_type: &f.device_type,
            component,
            source: TicketSource::Reactive,
            risk: scored.map_or(0.0, |r| r.risk),
            model_version: scored.map_or("", |r| r.model_version.as_str()),
            priority,
            diagnosis_json: &diagnosis,
            skills_json: &skills,
            device: ctx.facts(),
        };
        let note = format!(
            "Critical fault {} ({}) raised at {} for {component}",
            f.code, def.title, f.ts
        );
        if let Some((id, number)) =
            self.try_open(b, opening, &format!("{note}; priority urgent"))?
        {
            return Ok(Some(change(id, number, TicketChangeKind::Opened)));
        }
        let active = Self::conflicting(tx, f.device_id.as_str(), component)?;
        let (respond_by, resolve_by) = self.raised_deadlines(&active, priority, now);
        tx.update_ticket(&TicketUpdate {
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
            device: ctx.facts(),
        })?;
        log_change(tx, active.id, now, SYSTEM_ACTOR, "fault_raised", &note)?;
        if priority != active.priority {
            let note = format!(
                "Priority {} -> {priority} (critical fault {})",
                active.priority, f.code
            );
            log_change(tx, active.id, now, SYSTEM_ACTOR, "priority_raised", &note)?;
        }
        Ok(Some(change(
            active.id,
            active.number,
            TicketChangeKind::Updated,
        )))
    }
}

/// The `opened` log note of a proactive ticket. A flag under the threshold was raised
/// by the model's fault-code rule (`models::FaultRule`): it says so, or the note reads
/// as a contradiction. So is every flag of a device in its warm-up, whatever its risk
/// says.
fn flag_note(p: &Prediction, priority: Priority, critical: Option<&str>) -> String {
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
    note
}
