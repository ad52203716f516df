//! The SLA clocks' sweep: breaches marked once, escalated, logged and announced.

use std::sync::atomic::Ordering;

use domain::Timestamp;
use serde_json::json;

use super::{summary, TicketService, SYSTEM_ACTOR};
use crate::tickets::{SlaBreach, SlaKind, EVENT_SLA_BREACHED};
use crate::Result;

impl TicketService {
    /// Checks every active ticket's SLA clocks against the service's clock, in one
    /// transaction. A clock that ran out (respond: still `open` past `respond_by`;
    /// resolve: still active past `resolve_by`) is marked breached once, the ticket
    /// records `escalated_to` (the tier's escalation from the configuration), its log
    /// gets `sla_breached` by `fixahead`, and a `ticket.sla_breached` event is written.
    /// Also deletes events older than `event_retention`. Returns the new breaches.
    pub fn check_sla(&self) -> Result<Vec<SlaBreach>> {
        let config = &self.inner.config;
        let breaches = self.write(|tx, now| {
            let mut breaches = Vec::new();
            for kind in [SlaKind::Respond, SlaKind::Resolve] {
                for due in tx.due_clocks(now, kind)? {
                    let escalated_to = config.escalation(due.priority).to_owned();
                    tx.mark_breached(due.id, kind, &escalated_to, now)?;
                    let note = format!(
                        "{} deadline {} passed ({} ticket); escalated to {escalated_to}",
                        kind.as_str(),
                        due.deadline,
                        due.priority
                    );
                    tx.append_log(due.id, now, SYSTEM_ACTOR, "sla_breached", &note)?;
                    let data = json!({
                        "ticket": summary(tx, due.id)?, "kind": kind, "deadline": due.deadline,
                        "escalated_to": escalated_to,
                    });
                    let device = data["ticket"]["device_id"].as_str().unwrap_or_default();
                    tx.insert_event(now, EVENT_SLA_BREACHED, Some(due.id), Some(device), &data)?;
                    breaches.push(SlaBreach {
                        ticket_id: due.id,
                        kind,
                        deadline: due.deadline,
                        escalated_to,
                    });
                }
            }
            let cutoff = Timestamp(now.millis().saturating_sub(config.event_retention.millis()));
            let deleted = tx.delete_events_before(cutoff)?;
            if deleted > 0 {
                tracing::debug!(deleted, "Deleted events past their retention");
            }
            Ok(breaches)
        })?;
        for b in &breaches {
            let counter = match b.kind {
                SlaKind::Respond => &self.inner.sla_respond,
                SlaKind::Resolve => &self.inner.sla_resolve,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(breaches)
    }
}
