//! The fleet snapshot: the device registry, the current risks and the tickets,
//! interned and loaded at once, which every fleet query reads.

use std::collections::HashMap;

use domain::Timestamp;
use store::hot::StoreReader;
use store::tickets::Tables;

use super::{GroupBy, MONTH_MS};
use crate::tickets::TicketService;
use crate::Result;

/// Interned names: one `u32` per distinct string.
#[derive(Debug, Default)]
pub(crate) struct Names {
    list: Vec<String>,
    pub(super) map: HashMap<String, u32>,
}

impl Names {
    pub(crate) fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_owned());
        self.map.insert(s.to_owned(), i);
        i
    }

    pub(crate) fn get(&self, i: u32) -> &str {
        self.list.get(i as usize).map_or("", String::as_str)
    }
}

/// A registered device.
#[derive(Clone, Debug)]
pub(crate) struct DeviceRow {
    pub(crate) device_type: u32,
    pub(crate) model: u32,
    pub(crate) fw: Option<u32>,
    pub(crate) batch: Option<u32>,
    pub(crate) region: Option<u32>,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
}

impl DeviceRow {
    /// Device-months of the reporting span within `[from, to)`.
    pub(crate) fn months_within(&self, from: i64, to: i64) -> f64 {
        let start = self.first_seen.max(from);
        let end = self.last_seen.min(to);
        if end > start {
            (end - start) as f64 / MONTH_MS
        } else {
            0.0
        }
    }

    pub(crate) fn key(&self, by: GroupBy) -> Option<u32> {
        match by {
            GroupBy::Model => Some(self.model),
            GroupBy::Fw => self.fw,
            GroupBy::Region => self.region,
            GroupBy::Batch => self.batch,
            GroupBy::Type => Some(self.device_type),
            GroupBy::None => None,
        }
    }
}

/// The current risk of one (device, component).
#[derive(Clone, Debug)]
pub(crate) struct RiskRow {
    pub(crate) device: u32,
    pub(crate) component: u32,
    pub(crate) risk: f64,
    pub(crate) flagged: bool,
}

/// A confirmed failure recorded on a ticket.
#[derive(Clone, Debug)]
pub(crate) struct FailureRow {
    pub(crate) at: i64,
    pub(crate) component: u32,
    /// Parts replaced, as recorded (may be empty).
    pub(crate) parts: Vec<u32>,
}

/// A ticket, as far as fleet analytics need it.
#[derive(Clone, Debug)]
pub(crate) struct TicketRow {
    /// The device, if it is in the registry.
    pub(crate) device: Option<u32>,
    pub(crate) device_type: u32,
    pub(crate) component: u32,
    pub(crate) proactive: bool,
    pub(crate) active: bool,
    pub(crate) dismissed: bool,
    pub(crate) opened_at: i64,
    pub(crate) risk: f64,
    pub(crate) failure: Option<FailureRow>,
}

/// Everything the fleet endpoints read, loaded at once (see the module docs).
#[derive(Debug)]
pub struct FleetSnapshot {
    /// When it was loaded, by the ticket service's clock.
    pub as_of: Timestamp,
    pub(crate) names: Names,
    pub(crate) devices: Vec<DeviceRow>,
    pub(crate) risks: Vec<RiskRow>,
    pub(crate) tickets: Vec<TicketRow>,
}

impl FleetSnapshot {
    /// A snapshot of nothing, as of `as_of`.
    #[cfg(test)]
    pub(crate) fn empty(as_of: Timestamp) -> Self {
        Self {
            as_of,
            names: Names::default(),
            devices: Vec::new(),
            risks: Vec::new(),
            tickets: Vec::new(),
        }
    }

    /// Reads the registry from `store`, the current risks and the tickets from
    /// `tickets_db` (the ticket store's tables), "now" from `tickets`' clock.
    pub fn load(
        store: &StoreReader,
        tickets: &TicketService,
        tickets_db: &Tables<'_>,
    ) -> Result<Self> {
        let as_of = tickets.now();
        let mut names = Names::default();
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut devices = Vec::new();
        for d in store.list_devices(None, None, i64::MAX as usize)? {
            index.insert(d.device_id.clone(), devices.len() as u32);
            devices.push(DeviceRow {
                device_type: names.id(&d.device.device_type),
                model: names.id(&d.device.model),
                fw: d.device.fw.as_deref().map(|s| names.id(s)),
                batch: d.device.batch.as_deref().map(|s| names.id(s)),
                region: d.device.region.as_deref().map(|s| names.id(s)),
                first_seen: d.first_seen.millis(),
                last_seen: d.last_seen.millis(),
            });
        }
        let mut risks = Vec::new();
        tickets_db.for_each_risk(|device_id, component, risk, flagged| {
            if let Some(&device) = index.get(device_id) {
                risks.push(RiskRow {
                    device,
                    component: names.id(component),
                    risk,
                    flagged,
                });
            }
        })?;
        let mut tickets = Vec::new();
        tickets_db.for_each_fleet_ticket(|t| {
            let failure = match t.outcome {
                Some(o) if o.kind == domain::OutcomeKind::ConfirmedFailure => Some(FailureRow {
                    at: o.failed_at.unwrap_or(o.recorded_at).millis(),
                    component: names.id(o.component.as_deref().unwrap_or(t.component)),
                    parts: o.parts_replaced.iter().map(|p| names.id(p)).collect(),
                }),
                _ => None,
            };
            tickets.push(TicketRow {
                device: index.get(t.device_id).copied(),
                device_type: names.id(t.device_type),
                component: names.id(t.component),
                proactive: t.proactive,
                active: t.active,
                dismissed: t.dismissed,
                opened_at: t.opened_at,
                risk: t.risk,
                failure,
            });
        })?;
        Ok(Self {
            as_of,
            names,
            devices,
            risks,
            tickets,
        })
    }
}
