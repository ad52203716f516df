//! What planners ask of a snapshot: statistics per group and the parts forecast.

use std::collections::HashMap;

use domain::{ProfileSet, Timestamp};
use serde::Serialize;

use super::snapshot::{FleetSnapshot, TicketRow};
use super::{FleetSettings, GroupBy, DAY_MS};

impl FleetSnapshot {
    /// A group's value for the response (`None`: the device does not report it, or
    /// `group_by=none`).
    fn group_name(&self, key: Option<u32>) -> Option<String> {
        key.map(|k| self.names.get(k).to_owned())
    }

    fn ticket_key(&self, t: &TicketRow, by: GroupBy) -> Option<u32> {
        match (t.device, by) {
            (Some(d), _) => self.devices[d as usize].key(by),
            (None, GroupBy::Type) => Some(t.device_type),
            (None, _) => None,
        }
    }

    /// `GET /api/v1/fleet/stats`: one pass over devices, risks and tickets.
    pub fn stats(&self, by: GroupBy, from: Timestamp, to: Timestamp) -> Vec<GroupStats> {
        let (from, to) = (from.millis(), to.millis());
        #[derive(Default)]
        struct Acc {
            devices: u64,
            reporting: u64,
            months: f64,
            open: u64,
            failures: u64,
            proactive: u64,
            dismissed: u64,
            risk: HashMap<u32, (f64, u64)>,
        }
        let mut groups: HashMap<Option<u32>, Acc> = HashMap::new();
        for d in &self.devices {
            if d.first_seen >= to {
                continue;
            }
            let acc = groups.entry(d.key(by)).or_default();
            acc.devices += 1;
            if d.last_seen >= from {
                acc.reporting += 1;
            }
            acc.months += d.months_within(from, to);
        }
        for r in &self.risks {
            let acc = groups
                .entry(self.devices[r.device as usize].key(by))
                .or_default();
            let e = acc.risk.entry(r.component).or_default();
            e.0 += r.risk;
            e.1 += 1;
        }
        for t in &self.tickets {
            let key = self.ticket_key(t, by);
            let failed = t
                .failure
                .as_ref()
                .is_some_and(|f| (from..to).contains(&f.at));
            let opened = t.proactive && (from..to).contains(&t.opened_at);
            let open = t.active && t.proactive;
            if !(open || failed || opened) {
                continue;
            }
            let acc = groups.entry(key).or_default();
            acc.open += u64::from(open);
            acc.failures += u64::from(failed);
            acc.proactive += u64::from(opened);
            acc.dismissed += u64::from(opened && t.dismissed);
        }
        let mut out: Vec<GroupStats> = groups
            .into_iter()
            .map(|(key, a)| GroupStats {
                group: self.group_name(key),
                devices: a.devices,
                devices_reporting: a.reporting,
                device_months: a.months,
                open_predictions: a.open,
                confirmed_failures: a.failures,
                failures_per_1000_device_months: (a.months > 0.0)
                    .then(|| a.failures as f64 * 1000.0 / a.months),
                proactive_tickets_opened: a.proactive,
                dismissed: a.dismissed,
                dismissed_share: (a.proactive > 0).then(|| a.dismissed as f64 / a.proactive as f64),
                mean_risk: a
                    .risk
                    .into_iter()
                    .map(|(c, (sum, n))| (self.names.get(c).to_owned(), sum / n as f64))
                    .collect(),
            })
            .collect();
        sort_groups(&mut out, |g| &g.group);
        out
    }

    /// `GET /api/v1/fleet/parts-forecast` (formula in docs/fleet.md).
    pub fn parts_forecast(
        &self,
        profiles: &ProfileSet,
        by: GroupBy,
        days: f64,
        settings: &FleetSettings,
    ) -> Vec<GroupParts> {
        let horizon_days = settings.risk_horizon.millis() as f64 / DAY_MS;
        let lookback_days = settings.parts_lookback.millis() as f64 / DAY_MS;
        let since = self.as_of.millis() - settings.parts_lookback.millis();
        let exponent = days.min(horizon_days) / horizon_days;
        let mut parts_of: HashMap<(u32, u32), Vec<String>> = HashMap::new();
        let mut groups: HashMap<Option<u32>, PartSums> = HashMap::new();
        for t in &self.tickets {
            let key = self.ticket_key(t, by);
            if t.active && t.proactive {
                let p = 1.0 - (1.0 - t.risk.clamp(0.0, 1.0)).powf(exponent);
                let parts = parts_of
                    .entry((t.device_type, t.component))
                    .or_insert_with(|| {
                        likely_parts(
                            profiles,
                            self.names.get(t.device_type),
                            self.names.get(t.component),
                        )
                    });
                let g = groups.entry(key).or_default();
                for part in parts.iter() {
                    g.entry((t.device_type, part.clone())).or_default().0 += p;
                }
            }
            if let Some(f) = t
                .failure
                .as_ref()
                .filter(|f| f.at >= since && f.at < self.as_of.millis())
            {
                let recorded: Vec<String> = f
                    .parts
                    .iter()
                    .map(|p| self.names.get(*p).to_owned())
                    .collect();
                let parts = if recorded.is_empty() {
                    parts_of
                        .entry((t.device_type, f.component))
                        .or_insert_with(|| {
                            likely_parts(
                                profiles,
                                self.names.get(t.device_type),
                                self.names.get(f.component),
                            )
                        })
                        .clone()
                } else {
                    recorded
                };
                let g = groups.entry(key).or_default();
                for part in parts {
                    g.entry((t.device_type, part)).or_default().1 += 1;
                }
            }
        }
        let mut out: Vec<GroupParts> = groups
            .into_iter()
            .map(|(key, parts)| {
                let mut parts: Vec<PartDemand> = parts
                    .into_iter()
                    .map(|((ty, part), (predicted, failures))| {
                        let recent = failures as f64 / lookback_days * days;
                        PartDemand {
                            device_type: self.names.get(ty).to_owned(),
                            part,
                            from_predictions: predicted,
                            recent_failures: failures,
                            from_recent_failures: recent,
                            expected: predicted + recent,
                        }
                    })
                    .collect();
                parts.sort_by(|a, b| {
                    b.expected
                        .total_cmp(&a.expected)
                        .then_with(|| (&a.device_type, &a.part).cmp(&(&b.device_type, &b.part)))
                });
                GroupParts {
                    group: self.group_name(key),
                    parts,
                }
            })
            .collect();
        sort_groups(&mut out, |g| &g.group);
        out
    }
}

/// Per (device type, part): demand from predictions, recent failures.
type PartSums = HashMap<(u32, String), (f64, u64)>;

/// Groups by name, the group without a name last.
fn sort_groups<T>(v: &mut [T], name: impl Fn(&T) -> &Option<String>) {
    v.sort_by(|a, b| match (name(a), name(b)) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// The parts a repair of `component` needs: the likely parts of the profile's fault
/// codes for it, in catalogue order without repeats (as a ticket's diagnosis lists
/// them); the component's own name when the catalogue names none.
pub fn likely_parts(profiles: &ProfileSet, device_type: &str, component: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(profile) = profiles.get(device_type) {
        for d in profile
            .faults()
            .iter()
            .filter(|d| d.component.as_deref() == Some(component))
        {
            for p in &d.likely_parts {
                if !parts.contains(p) {
                    parts.push(p.clone());
                }
            }
        }
    }
    if parts.is_empty() {
        parts.push(component.to_owned());
    }
    parts
}

/// One group of `GET /api/v1/fleet/stats`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupStats {
    /// The group's model, firmware, region, batch or type; `null` for devices that do
    /// not report it (and for `group_by=none`).
    pub group: Option<String>,
    /// Devices registered before the end of the period.
    pub devices: u64,
    /// Of those, devices whose reporting span reaches into the period.
    pub devices_reporting: u64,
    /// Device-months of reporting within the period.
    pub device_months: f64,
    /// Active proactive tickets now.
    pub open_predictions: u64,
    /// Confirmed failures within the period.
    pub confirmed_failures: u64,
    /// Confirmed failures per 1000 device-months; `null` without exposure.
    pub failures_per_1000_device_months: Option<f64>,
    /// Proactive tickets opened within the period.
    pub proactive_tickets_opened: u64,
    /// Of those, the ones dismissed.
    pub dismissed: u64,
    /// `dismissed / proactive_tickets_opened`; `null` when none was opened.
    pub dismissed_share: Option<f64>,
    /// Mean current risk per component over the group's scored devices.
    pub mean_risk: std::collections::BTreeMap<String, f64>,
}

/// Expected demand for one part.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PartDemand {
    /// The device type the part belongs to.
    pub device_type: String,
    /// The part, as the profile's fault catalogue (or an outcome) names it.
    pub part: String,
    /// Σ over open predictions of P(failure within `days`).
    pub from_predictions: f64,
    /// Confirmed failures within the lookback that needed the part.
    pub recent_failures: u64,
    /// `recent_failures / lookback days × days`.
    pub from_recent_failures: f64,
    /// `from_predictions + from_recent_failures`.
    pub expected: f64,
}

/// One group of `GET /api/v1/fleet/parts-forecast`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupParts {
    /// As in [`GroupStats::group`].
    pub group: Option<String>,
    /// Parts, highest expected demand first.
    pub parts: Vec<PartDemand>,
}
