//! The console's reads of the queue and of an engineer's day
//! ([`store::tickets::Tables::queue_page`] and friends), and the device facts that
//! let the queue filter by batch and region.
//!
//! **Batch and region.** The device registry (model, batch, region) lives in
//! `hot.db`, the tickets in `tickets.db`. Rather than join two files per request, a
//! ticket carries its device's model, batch and region: the scoring stage puts the
//! registry record in the [`DiagnosisContext`](crate::DiagnosisContext) of the
//! signals it records, the ticket copies it when it opens and every later signal
//! refreshes it. Tickets opened before schema version 6 (or whose device the registry
//! did not know) get theirs from [`TicketService::fill_device_facts`], which
//! `fixahead run` calls at start.

use store::hot::StoreReader;
use store::tickets::DeviceFacts;

use super::TicketService;
use crate::tickets::{QueueCell, QueueChoices, QueueQuery, QueueTicket};
use crate::Result;

/// Tickets read per transaction by [`TicketService::fill_device_facts`].
const FILL_PAGE: usize = 500;

impl TicketService {
    /// A page of the queue: the tickets matching `query` in the queue's order (SLA
    /// deadline, priority, risk), skipping `offset`, at most `limit`.
    pub fn queue_page(
        &self,
        query: &QueueQuery,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<QueueTicket>> {
        self.read(|t| Ok(t.queue_page(query, offset, limit)?))
    }

    /// The queue's counts per (status, priority) for `query` without its status and
    /// priority filters (see [`store::tickets::Tables::queue_counts`]).
    pub fn queue_counts(&self, query: &QueueQuery) -> Result<Vec<QueueCell>> {
        self.read(|t| Ok(t.queue_counts(query)?))
    }

    /// Regions, batches and engineers of the active tickets, for the filter form.
    pub fn queue_choices(&self) -> Result<QueueChoices> {
        self.read(|t| Ok(t.queue_choices()?))
    }

    /// The active tickets assigned to `engineer`, by window start (unscheduled last).
    pub fn assigned_tickets(&self, engineer: &str, limit: usize) -> Result<Vec<QueueTicket>> {
        self.read(|t| Ok(t.assigned_tickets(engineer, limit)?))
    }

    /// Gives every active ticket without device facts those of the registry (`hot.db`
    /// through `registry`); returns how many it filled. Idempotent; a ticket whose
    /// device the registry does not know stays without.
    pub fn fill_device_facts(&self, registry: &StoreReader) -> Result<u64> {
        let mut after = 0;
        let mut filled = 0;
        loop {
            let page = self.read(|t| Ok(t.tickets_without_device_facts(after, FILL_PAGE)?))?;
            let Some((last, _)) = page.last() else {
                return Ok(filled);
            };
            after = *last;
            let mut known = Vec::with_capacity(page.len());
            for (id, device_id) in page {
                if let Some(d) = registry.device(&device_id)? {
                    known.push((id, d.device));
                }
            }
            if known.is_empty() {
                continue;
            }
            self.inner.db.write(|tx| {
                for (id, d) in &known {
                    tx.set_device_facts(
                        *id,
                        &DeviceFacts {
                            model: Some(d.model.as_str()).filter(|m| !m.is_empty()),
                            batch: d.batch.as_deref(),
                            region: d.region.as_deref(),
                        },
                    )?;
                }
                Ok::<_, crate::Error>(())
            })?;
            filled += known.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::{DeviceId, DeviceInfo, Prediction, ProfileSet, Timestamp};
    use store::hot::{HotStore, StoreItem, StoreReader};
    use store::tickets::QueueQuery;

    use crate::tickets::{DiagnosisContext, TicketConfig, TicketService};

    const T0: i64 = 1_795_500_000_000;

    fn flag(device: &str, component: &str, risk: f64) -> Prediction {
        Prediction {
            device_id: DeviceId::parse(device).unwrap(),
            device_type: "washer".into(),
            component: component.into(),
            ts: Timestamp(T0),
            risk,
            threshold: 0.6,
            flagged: true,
            model_version: "washer-v1".into(),
            top_features: Vec::new(),
            lead_time_days: None,
            warming_up: false,
        }
    }

    fn info(batch: &str, region: &str) -> DeviceInfo {
        DeviceInfo {
            device_type: "washer".into(),
            model: "WM-500".into(),
            fw: None,
            batch: Some(batch.into()),
            region: Some(region.into()),
        }
    }

    fn service(dir: &std::path::Path) -> TicketService {
        TicketService::open_with_clock(
            &dir.join("tickets.db"),
            TicketConfig::default(),
            Arc::new(|| Timestamp(T0)),
        )
        .unwrap()
    }

    #[test]
    fn a_ticket_carries_its_devices_registry_facts_and_later_signals_refresh_them() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let ctx = DiagnosisContext::default().with_device(Some(info("B1", "north")));
        svc.record_predictions(&[flag("wm-1", "drain_pump", 0.8)], &ctx)
            .unwrap();
        let q = QueueQuery {
            batch: Some("B1".into()),
            ..QueueQuery::default()
        };
        let page = svc.queue_page(&q, 0, 10).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].device_model.as_deref(), Some("WM-500"));
        assert_eq!(page[0].shown_region(), Some("north"));
        // The device moved; the next signal says so. No facts keep the stored ones.
        let moved = DiagnosisContext::default().with_device(Some(info("B1", "south")));
        svc.record_predictions(&[flag("wm-1", "drain_pump", 0.85)], &moved)
            .unwrap();
        svc.record_predictions(
            &[flag("wm-1", "drain_pump", 0.86)],
            &DiagnosisContext::default(),
        )
        .unwrap();
        let page = svc.queue_page(&q, 0, 10).unwrap();
        assert_eq!(page[0].shown_region(), Some("south"));
        assert_eq!(page[0].device_batch.as_deref(), Some("B1"));
    }

    #[test]
    fn tickets_without_facts_get_them_from_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = ProfileSet::builtin();
        let hot = dir.path().join("hot.db");
        {
            let mut store = HotStore::open(&hot, store::Synchronous::Normal).unwrap();
            let payload = format!(
                r#"{{"ts": {T0}, "seq": 1, "type": "washer", "model": "WM-500", "batch": "B7", "region": "east", "readings": {{"drain_time_s": 12.0}}}}"#
            );
            let message =
                domain::decode("fixahead/v1/wm-1/telemetry", payload.as_bytes(), &profiles)
                    .unwrap();
            store
                .commit(&[StoreItem::Message {
                    message: &message,
                    received_at: Timestamp(T0),
                }])
                .unwrap();
        }
        let registry = StoreReader::open(&hot).unwrap();
        let svc = service(dir.path());
        let none = DiagnosisContext::default();
        svc.record_predictions(&[flag("wm-1", "drain_pump", 0.8)], &none)
            .unwrap();
        svc.record_predictions(&[flag("wm-9", "drain_pump", 0.8)], &none)
            .unwrap();
        assert_eq!(
            svc.fill_device_facts(&registry).unwrap(),
            1,
            "wm-9 is unknown"
        );
        let page = svc.queue_page(&QueueQuery::default(), 0, 10).unwrap();
        let wm1 = page.iter().find(|t| t.device_id == "wm-1").unwrap();
        assert_eq!(
            (wm1.device_batch.as_deref(), wm1.shown_region()),
            (Some("B7"), Some("east"))
        );
        assert_eq!(svc.fill_device_facts(&registry).unwrap(), 0, "idempotent");
    }
}
