//! Fleet analytics on small fixtures whose answers are computed by hand.

use domain::Timestamp;

use super::alarms::{test_cells, Cell, Dimension, Statistic};
use super::snapshot::{DeviceRow, FailureRow, RiskRow, TicketRow};
use super::*;

const DAY: i64 = 86_400_000;
/// "Now" of the fixtures: day 400.
const NOW: i64 = 400 * DAY;

struct Fixture {
    s: FleetSnapshot,
}

impl Fixture {
    fn new() -> Self {
        Self {
            s: FleetSnapshot::empty(Timestamp(NOW)),
        }
    }

    /// A washer of `model` in `batch`/`region`, reporting over days `[from, to]`.
    fn device(&mut self, model: &str, batch: &str, region: &str, days: (i64, i64)) -> u32 {
        let n = &mut self.s.names;
        self.s.devices.push(DeviceRow {
            device_type: n.id("washer"),
            model: n.id(model),
            fw: Some(n.id("2.4.1")),
            batch: Some(n.id(batch)),
            region: Some(n.id(region)),
            first_seen: days.0 * DAY,
            last_seen: days.1 * DAY,
        });
        self.s.devices.len() as u32 - 1
    }

    fn risk(&mut self, device: u32, component: &str, risk: f64, flagged: bool) {
        let component = self.s.names.id(component);
        self.s.risks.push(RiskRow {
            device,
            component,
            risk,
            flagged,
        });
    }

    /// A proactive ticket; `failed`: its confirmed failure's day and parts.
    fn ticket(
        &mut self,
        device: u32,
        component: &str,
        risk: f64,
        status: (bool, bool),
        opened_day: i64,
        failed: Option<(i64, &[&str])>,
    ) {
        let n = &mut self.s.names;
        let component = n.id(component);
        let failure = failed.map(|(day, parts)| FailureRow {
            at: day * DAY,
            component,
            parts: parts.iter().map(|p| n.id(p)).collect(),
        });
        self.s.tickets.push(TicketRow {
            device: Some(device),
            device_type: n.id("washer"),
            component,
            proactive: true,
            active: status.0,
            dismissed: status.1,
            opened_at: opened_day * DAY,
            risk,
            failure,
        });
    }
}

const ACTIVE: (bool, bool) = (true, false);
const DISMISSED: (bool, bool) = (false, true);
const CLOSED: (bool, bool) = (false, false);

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn stats_per_batch_by_hand() {
    let mut f = Fixture::new();
    // Period: days 370-400 (30 days).
    let a = f.device("WM-500", "B1", "north", (0, 400)); // 30 days in the period
    let b = f.device("WM-500", "B1", "north", (385, 400)); // 15 days
    let c = f.device("WM-500", "B2", "south", (0, 360)); // silent before the period
    let _late = f.device("WM-500", "B2", "south", (401, 402)); // after the period
    f.risk(a, "drain_pump", 0.2, false);
    f.risk(b, "drain_pump", 0.6, true);
    f.risk(c, "drain_pump", 0.1, false);
    f.ticket(b, "drain_pump", 0.6, ACTIVE, 390, None);
    f.ticket(a, "drain_pump", 0.7, DISMISSED, 380, None);
    f.ticket(a, "heater", 0.9, CLOSED, 375, Some((377, &[])));
    // Outside the period: counted for nothing but...
    f.ticket(c, "heater", 0.9, CLOSED, 100, Some((101, &[])));
    let groups =
        f.s.stats(GroupBy::Batch, Timestamp(370 * DAY), Timestamp(400 * DAY));
    assert_eq!(groups.len(), 2);
    let b1 = &groups[0];
    assert_eq!(b1.group.as_deref(), Some("B1"));
    assert_eq!((b1.devices, b1.devices_reporting), (2, 2));
    let months = 45.0 * DAY as f64 / MONTH_MS;
    assert!(close(b1.device_months, months));
    assert_eq!((b1.open_predictions, b1.confirmed_failures), (1, 1));
    assert!(close(
        b1.failures_per_1000_device_months.unwrap(),
        1000.0 / months
    ));
    // Three proactive tickets opened in the period, one dismissed.
    assert_eq!((b1.proactive_tickets_opened, b1.dismissed), (3, 1));
    assert!(close(b1.dismissed_share.unwrap(), 1.0 / 3.0));
    assert!(close(b1.mean_risk["drain_pump"], 0.4));
    let b2 = &groups[1];
    assert_eq!(b2.group.as_deref(), Some("B2"));
    // The late device is not registered before the end; c is registered but silent.
    assert_eq!((b2.devices, b2.devices_reporting), (1, 0));
    assert_eq!(b2.device_months, 0.0);
    assert_eq!(b2.failures_per_1000_device_months, None);
    assert_eq!(b2.dismissed_share, None);
    assert_eq!(b2.confirmed_failures, 0);
    assert!(close(b2.mean_risk["drain_pump"], 0.1));
}

#[test]
fn parts_forecast_is_the_risk_weighted_sum_by_hand() {
    let profiles = ProfileSet::builtin();
    // The washer's drain pump parts, from its fault catalogue.
    let pump = likely_parts(&profiles, "washer", "drain_pump");
    assert_eq!(pump, ["drain pump assembly", "pump filter"]);
    let settings = FleetSettings::default(); // horizon 14 d, look-back 90 d
    let mut f = Fixture::new();
    let n1 = f.device("WM-500", "B1", "north", (0, 400));
    let n2 = f.device("WM-500", "B1", "north", (0, 400));
    let s1 = f.device("WM-500", "B1", "south", (0, 400));
    f.ticket(n1, "drain_pump", 0.5, ACTIVE, 399, None);
    f.ticket(n2, "drain_pump", 0.25, ACTIVE, 399, None);
    f.ticket(s1, "drain_pump", 0.8, DISMISSED, 399, None); // not an open prediction
                                                           // Recent failures: one with parts recorded, one without (catalogue parts).
    f.ticket(
        s1,
        "drain_pump",
        0.9,
        CLOSED,
        350,
        Some((360, &["pump filter"])),
    );
    f.ticket(n1, "drain_pump", 0.9, CLOSED, 330, Some((331, &[])));
    f.ticket(n1, "drain_pump", 0.9, CLOSED, 100, Some((101, &[]))); // too old
    let groups =
        f.s.parts_forecast(&profiles, GroupBy::Region, 30.0, &settings);
    let get = |g: usize, part: &str| {
        groups[g]
            .parts
            .iter()
            .find(|p| p.part == part)
            .cloned()
            .unwrap()
    };
    assert_eq!(groups[0].group.as_deref(), Some("north"));
    // 30 days >= the 14-day horizon: each risk counts as is: 0.5 + 0.25.
    // One recent failure needing both parts: 1 / 90 * 30.
    for part in ["drain pump assembly", "pump filter"] {
        let p = get(0, part);
        assert!(close(p.from_predictions, 0.75), "{p:?}");
        assert_eq!(p.recent_failures, 1);
        assert!(close(p.from_recent_failures, 30.0 / 90.0));
        assert!(close(p.expected, 0.75 + 30.0 / 90.0));
    }
    assert_eq!(groups[1].group.as_deref(), Some("south"));
    assert_eq!(groups[1].parts.len(), 1, "only the part recorded");
    let p = get(1, "pump filter");
    assert!(close(p.from_predictions, 0.0) && close(p.expected, 30.0 / 90.0));

    // 7 days, half the horizon: P = 1 - (1 - r)^(1/2).
    let week = f.s.parts_forecast(&profiles, GroupBy::None, 7.0, &settings);
    assert_eq!(week.len(), 1);
    assert_eq!(week[0].group, None);
    let p = week[0]
        .parts
        .iter()
        .find(|p| p.part == "drain pump assembly")
        .unwrap();
    let want = (1.0 - 0.5f64.sqrt()) + (1.0 - 0.75f64.sqrt());
    assert!(close(p.from_predictions, want), "{p:?}");
    assert!(close(p.from_recent_failures, 7.0 / 90.0));
}

#[test]
fn group_by_names_the_parameter_and_the_choices() {
    let e = GroupBy::parse("colour", &[GroupBy::Model, GroupBy::Batch]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "parameter group_by: \"colour\" is not one of model, batch"
    );
    assert_eq!(
        GroupBy::parse("batch", &[GroupBy::Model, GroupBy::Batch]).unwrap(),
        GroupBy::Batch
    );
    assert!(GroupBy::parse("fw", &[GroupBy::Model]).is_err());
}

fn failures_cell(value: &str, observed: u64, exposure: f64, rest: (u64, f64)) -> Cell {
    Cell {
        model: "WM-500".into(),
        dimension: Dimension::Batch,
        value: value.into(),
        component: "drain_pump".into(),
        statistic: Statistic::ConfirmedFailures,
        observed,
        exposure,
        rest_observed: rest.0,
        rest_exposure: rest.1,
    }
}

#[test]
fn the_failure_test_by_hand() {
    let settings = FleetSettings {
        alarm_min_count: 3,
        alarm_fdr: 0.05,
        ..FleetSettings::default()
    };
    // Equal exposure, 4 of 4 failures in the group: P(X >= 4 | n = 4, p = 1/2) = 1/16.
    let f = test_cells(vec![failures_cell("B1", 4, 100.0, (0, 100.0))], &settings);
    assert!(close(f[0].p_value, 1.0 / 16.0));
    assert!(close(f[0].expected, 2.0));
    assert_eq!(f[0].ratio, None);
    assert!(!f[0].significant, "0.0625 > 0.05");
    // Below the minimum count: not tested.
    assert!(test_cells(vec![failures_cell("B1", 2, 100.0, (0, 100.0))], &settings).is_empty());
    // 10 of 10 in a group with a tenth of the exposure: p = 0.1^10, ratio infinite.
    let f = test_cells(
        vec![
            failures_cell("B1", 10, 10.0, (0, 90.0)),
            failures_cell("B2", 3, 30.0, (7, 70.0)),
        ],
        &settings,
    );
    assert!(close(f[0].p_value / 1e-10, 1.0));
    assert!(f[0].significant);
    // Same rate as the rest: ratio 1, not an alarm however small the p-value.
    assert!(close(f[1].ratio.unwrap(), 1.0));
    assert!(!f[1].significant);
}

#[test]
fn the_flagged_share_test_by_hand() {
    let settings = FleetSettings {
        alarm_min_count: 2,
        alarm_fdr: 0.5,
        alarm_min_ratio: 1.0,
        ..FleetSettings::default()
    };
    // 3 scored devices with 2 flagged, 7 others with 2 flagged: population 10, 4
    // flagged, 3 drawn: P(X >= 2) = 40 / 120.
    let cell = Cell {
        statistic: Statistic::FlaggedShare,
        ..failures_cell("B1", 2, 3.0, (2, 7.0))
    };
    let f = test_cells(vec![cell], &settings);
    assert!(close(f[0].p_value, 40.0 / 120.0));
    assert!(close(f[0].expected, 1.2));
    assert!(close(f[0].ratio.unwrap(), (2.0 / 3.0) / (2.0 / 7.0)));
    assert!(f[0].significant);
}

#[test]
fn cells_come_from_the_window_and_the_rest_of_the_model() {
    let settings = FleetSettings::default(); // window 365 days: days 35-400
    let mut f = Fixture::new();
    let a = f.device("WM-500", "B1", "north", (0, 400)); // 365 days in the window
    let b = f.device("WM-500", "B2", "north", (200, 400)); // 200 days
    let _other_model = f.device("WM-700", "B1", "north", (0, 400));
    f.ticket(a, "drain_pump", 0.9, CLOSED, 50, Some((60, &[])));
    f.ticket(a, "drain_pump", 0.9, CLOSED, 10, Some((20, &[]))); // before the window
    f.ticket(b, "drain_pump", 0.9, CLOSED, 300, Some((300, &[])));
    f.risk(a, "drain_pump", 0.9, true);
    f.risk(b, "drain_pump", 0.1, false);
    let profiles = ProfileSet::builtin();
    let cells = alarms::cells(&f.s, &profiles, &settings);
    let find = |model: &str, dim: Dimension, value: &str, stat: Statistic| {
        cells
            .iter()
            .find(|c| {
                c.model == model
                    && c.dimension == dim
                    && c.value == value
                    && c.component == "drain_pump"
                    && c.statistic == stat
            })
            .unwrap()
    };
    let c = find(
        "WM-500",
        Dimension::Batch,
        "B1",
        Statistic::ConfirmedFailures,
    );
    assert_eq!((c.observed, c.rest_observed), (1, 1));
    assert!(close(c.exposure, 365.0 * DAY as f64 / MONTH_MS));
    assert!(close(c.rest_exposure, 200.0 * DAY as f64 / MONTH_MS));
    let c = find("WM-500", Dimension::Batch, "B1", Statistic::FlaggedShare);
    assert_eq!(
        (c.observed, c.exposure, c.rest_observed, c.rest_exposure),
        (1, 1.0, 0, 1.0)
    );
    // Firmware groups hold the whole model here: nothing to compare with.
    let c = find(
        "WM-500",
        Dimension::Fw,
        "2.4.1",
        Statistic::ConfirmedFailures,
    );
    assert_eq!((c.observed, c.rest_exposure), (2, 0.0));
    let c = find(
        "WM-700",
        Dimension::Batch,
        "B1",
        Statistic::ConfirmedFailures,
    );
    assert_eq!(c.observed, 0);
    // Every washer component is a cell, failed or not.
    assert!(cells
        .iter()
        .any(|c| c.component == "heater" && c.model == "WM-700"));
}
