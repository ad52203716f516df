//! Customer reports in (docs/intake.md): a report from a person (phone, app, web,
//! installer) joins the device's active ticket for the same problem or opens a
//! reactive ticket, pre-judged from the device's own data, in one write transaction.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use domain::{
    CustomerReport, DeviceId, Evidence, PreJudgement, Priority, ProblemCategory, ReportChannel,
    Ticket, TicketSource, TicketStatus, Timestamp,
};
use serde::Serialize;
use store::tickets::{NormalRange, Tables};

use super::diagnosis::{build_diagnosis, skills_json};
use super::intake::{Batch, Opening};
use super::{log_change, TicketService, SYSTEM_ACTOR};
use crate::tickets::prejudge::{prejudge, PrejudgeInput};
use crate::tickets::DiagnosisContext;
use crate::{Error, Result};

/// The component of a ticket opened by a report nothing points at.
pub const UNKNOWN_COMPONENT: &str = "unknown";
/// Most characters of a report's words.
pub const MAX_WORDS: usize = 2000;

/// A customer report, its device resolved, with what the device's data says.
#[derive(Clone, Debug)]
pub struct ReportInput {
    /// The device.
    pub device_id: DeviceId,
    /// Its type (`unknown` when neither the registry nor the caller knows it).
    pub device_type: String,
    /// How the report came in (a person's channel, not `device`).
    pub channel: ReportChannel,
    /// The problem category.
    pub category: ProblemCategory,
    /// The customer's words, verbatim.
    pub words: String,
    /// The component the caller names, if any.
    pub component: Option<String>,
    /// Who took the report (the key's name or the person's login).
    pub reporter: String,
    /// The customer reference the caller gave.
    pub customer_ref: Option<String>,
    /// The device's profile, raised faults and registry facts.
    pub context: DiagnosisContext,
    /// The latest value of each channel.
    pub readings: BTreeMap<String, f64>,
    /// The fleet's normal range of each channel (for the device's type and model).
    pub ranges: BTreeMap<String, NormalRange>,
    /// The device's newest event time (`None` for a device that never reported).
    pub reference: Option<Timestamp>,
}

/// Whether a report opened a ticket or joined the active one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportResultKind {
    /// A new reactive ticket.
    Opened,
    /// The device's active ticket for the problem.
    Joined,
}

/// What is planned for the ticket, as the caller tells the customer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Planned {
    /// The ticket's status.
    #[schema(value_type = String)]
    pub status: TicketStatus,
    /// Its priority.
    #[schema(value_type = String)]
    pub priority: Priority,
    /// The engineer, when assigned.
    pub engineer: Option<String>,
    /// The visit window.
    #[schema(value_type = Option<String>)]
    pub window_start: Option<Timestamp>,
    /// The visit window's end.
    #[schema(value_type = Option<String>)]
    pub window_end: Option<Timestamp>,
    /// The respond deadline.
    #[schema(value_type = String)]
    pub respond_by: Timestamp,
    /// The resolve deadline.
    #[schema(value_type = Option<String>)]
    pub resolve_by: Option<Timestamp>,
}

impl Planned {
    /// What `t` says is planned.
    pub fn of(t: &Ticket) -> Self {
        Self {
            status: t.status,
            priority: t.priority,
            engineer: t.assignment.engineer.clone(),
            window_start: t.assignment.window_start,
            window_end: t.assignment.window_end,
            respond_by: t.respond_by,
            resolve_by: t.resolve_by,
        }
    }
}

/// What [`TicketService::report`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportResult {
    /// Opened or joined.
    pub result: ReportResultKind,
    /// The ticket after the report.
    pub ticket: Ticket,
    /// The report's pre-judgement (also stored on the ticket).
    pub prejudgement: PreJudgement,
    /// What is planned.
    pub planned: Planned,
}

/// Checks a report's words: at most [`MAX_WORDS`] characters, not blank, no control
/// characters but line breaks and tabs.
pub fn check_words(words: &str) -> Result<()> {
    if words.trim().is_empty() {
        return Err(Error::invalid("words: must not be empty"));
    }
    if words.chars().count() > MAX_WORDS {
        return Err(Error::invalid(format!(
            "words: at most {MAX_WORDS} characters"
        )));
    }
    if words
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::invalid(
            "words: control characters are not allowed (line breaks and tabs are)",
        ));
    }
    Ok(())
}

/// Whether `name` may be a component name: 1-64 characters of `[a-z0-9_]`.
fn is_component_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl TicketService {
    /// Takes a customer report (docs/intake.md): pre-judges it from the device's data,
    /// then joins the device's active ticket for the component (the caller's, else
    /// the confidently pre-judged one; for neither, the active ticket the
    /// pre-judgement ranks highest, else the most urgent one) or opens a reactive
    /// ticket for it (`unknown` when nothing points anywhere). A join appends the
    /// report, logs `customer_report` (with a `ticket.updated` event) and raises the
    /// priority when the report's is higher; an opening takes the category's
    /// priority, urgent when the device raised a critical fault code of the component
    /// in the fault window. One write transaction; the insert relies on the unique
    /// index, so concurrent reports of one problem make one ticket.
    pub fn report(&self, input: &ReportInput) -> Result<ReportResult> {
        check_words(&input.words)?;
        if input.channel == ReportChannel::Device {
            return Err(Error::invalid(
                "channel: a person's channel: phone, app, web or installer",
            ));
        }
        let profile = input.context.profile.as_deref();
        if let Some(c) = &input.component {
            let known = match profile {
                Some(p) => p.component(c).is_some(),
                None => is_component_name(c),
            };
            if !known {
                return Err(Error::invalid(format!(
                    "component: {c:?} is not a component of device type {}",
                    input.device_type
                )));
            }
        }
        let out = self.write(|tx, now| {
            let day = now
                .to_datetime()
                .map(|dt| dt.format("%Y%m%d").to_string())
                .ok_or_else(|| Error::Task(format!("clock out of range: {}", now.millis())))?;
            let batch = Batch { tx, now, day };
            self.apply_report(&batch, input)
        })?;
        let counter = match out.result {
            ReportResultKind::Opened => &self.inner.opened,
            ReportResultKind::Joined => &self.inner.updated,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    fn apply_report(&self, b: &Batch<'_, '_>, input: &ReportInput) -> Result<ReportResult> {
        let (tx, now) = (b.tx, b.now);
        let device_id = input.device_id.as_str();
        let risks = tx.device_risk(device_id)?;
        let judgement = prejudge(&PrejudgeInput {
            profile: input.context.profile.as_deref(),
            category: input.category,
            faults: &input.context.recent_faults,
            risks: &risks,
            readings: &input.readings,
            ranges: &input.ranges,
            reference: input.reference.unwrap_or(now),
            at: now,
        });
        let mut report = CustomerReport {
            at: now,
            channel: input.channel,
            category: input.category,
            words: input.words.clone(),
            reporter: input.reporter.clone(),
            customer_ref: input.customer_ref.clone(),
            joined: true,
        };
        let component = match input.component.clone().or(judgement.component.clone()) {
            Some(c) => c,
            None => {
                let active = tx.device_tickets(device_id, true, 100)?;
                match choose_active(&active, &judgement) {
                    Some(t) => t.component.clone(),
                    None => UNKNOWN_COMPONENT.to_owned(),
                }
            }
        };
        // Urgent when the device raised a critical code of the component recently.
        let critical = judgement.evidence.iter().find_map(|e| match e {
            Evidence::FaultCode {
                component: c,
                code,
                severity: Some(s),
                ..
            } if *c == component && s == "critical" => Some(code.clone()),
            _ => None,
        });
        let priority = if critical.is_some() {
            Priority::Urgent
        } else {
            input.category.priority()
        };

        let ctx = &input.context;
        let scored = risks.iter().find(|r| r.component == component);
        let diagnosis = serde_json::to_string(&build_diagnosis(
            &component,
            scored.map(|r| r.top_features.clone()).unwrap_or_default(),
            scored.map(|r| r.model_version.clone()),
            None,
            &risks,
            ctx,
        ))?;
        let skills = skills_json(ctx, &component)?;
        let opening = Opening {
            device_id,
            device_type: &input.device_type,
            component: &component,
            source: TicketSource::Reactive,
            risk: scored.map_or(0.0, |r| r.risk),
            model_version: scored.map_or("", |r| r.model_version.as_str()),
            priority,
            diagnosis_json: &diagnosis,
            skills_json: &skills,
            device: ctx.facts(),
        };
        let mut note = format!(
            "{} report ({}) for {component}; priority {priority}",
            input.channel, input.category
        );
        if let Some(code) = &critical {
            note.push_str(&format!(" (critical fault {code} raised)"));
        }
        let report_note = format!(
            "{} report ({}): {}",
            input.channel, input.category, input.words
        );
        if let Some((id, _)) = self.try_open(b, opening, &note)? {
            report.joined = false;
            tx.set_reports(id, input.channel, &[report], &judgement, now)?;
            tx.append_log(id, now, &input.reporter, "customer_report", &report_note)?;
            return self.reported(tx, id, ReportResultKind::Opened, judgement);
        }

        // The unique index reported an active ticket for the pair: join it.
        let active = Self::conflicting(tx, device_id, &component)?;
        let ticket = tx
            .get_ticket(active.id)?
            .ok_or_else(|| Error::Corrupt(format!("ticket {} vanished", active.id)))?;
        let mut reports = ticket.reports.clone();
        reports.push(report);
        tx.set_reports(active.id, ticket.channel, &reports, &judgement, now)?;
        log_change(
            tx,
            active.id,
            now,
            &input.reporter,
            "customer_report",
            &report_note,
        )?;
        // `Priority` orders urgent first, so `min` is the more urgent tier.
        let new_priority = active.priority.min(priority);
        if new_priority != active.priority {
            let (respond_by, resolve_by) = self.raised_deadlines(&active, new_priority, now);
            tx.set_priority(active.id, new_priority, respond_by, resolve_by, now)?;
            let note = format!(
                "Priority {} -> {new_priority} ({} report: {})",
                active.priority, input.channel, input.category
            );
            log_change(tx, active.id, now, SYSTEM_ACTOR, "priority_raised", &note)?;
        }
        self.reported(tx, active.id, ReportResultKind::Joined, judgement)
    }

    fn reported(
        &self,
        tx: &Tables<'_>,
        id: i64,
        result: ReportResultKind,
        prejudgement: PreJudgement,
    ) -> Result<ReportResult> {
        let ticket = tx
            .get_ticket(id)?
            .ok_or_else(|| Error::Corrupt(format!("ticket {id} vanished in its transaction")))?;
        Ok(ReportResult {
            result,
            planned: Planned::of(&ticket),
            ticket,
            prejudgement,
        })
    }
}

/// The active ticket a report without a component joins: the one whose component the
/// pre-judgement ranks highest, else the most urgent (oldest first among equals).
fn choose_active<'t>(active: &'t [Ticket], judgement: &PreJudgement) -> Option<&'t Ticket> {
    for c in &judgement.candidates {
        if let Some(t) = active.iter().find(|t| t.component == c.component) {
            return Some(t);
        }
    }
    active
        .iter()
        .min_by_key(|t| (t.priority, t.opened_at, t.id))
}
