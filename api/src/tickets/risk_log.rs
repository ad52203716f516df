//! A ticket's risk over time, read back from its progress log. The ticket store keeps
//! only the latest score per (device, component); what history there is lives in the
//! logs the intake writes (`service::intake`): the `opened` entry of a proactive ticket
//! names the risk it opened at, and a `risk_updated` entry is written whenever the risk
//! moved by at least `risk_log_delta` after `risk_log_interval`. The device page of
//! the console draws its risk chart from these points; this module is the one reader
//! of those notes, beside the service that writes them, and its test holds both to the
//! same format.

use domain::{LogEntry, Ticket, Timestamp};

/// The risk a log entry records, if it records one: `opened` ("... Risk 0.95
/// (threshold 0.60) for ...") and `risk_updated` ("Risk 0.61 -> 0.72 by model ...").
pub fn logged_risk(entry: &LogEntry) -> Option<f64> {
    let number = |s: &str| -> Option<f64> {
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        s[..end]
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
    };
    match entry.action.as_str() {
        "opened" => {
            let at = entry.note.find("Risk ")? + "Risk ".len();
            number(&entry.note[at..])
        }
        "risk_updated" => {
            let at = entry.note.find("-> ")? + "-> ".len();
            number(&entry.note[at..])
        }
        _ => None,
    }
}

/// The risk points of a ticket, oldest first: those its log records, and its latest
/// risk at its last update when that is newer (a reactive ticket opened on a fault
/// code records none until a score updates it).
pub fn risk_points(t: &Ticket) -> Vec<(Timestamp, f64)> {
    let mut points: Vec<(Timestamp, f64)> = t
        .log
        .iter()
        .filter_map(|e| logged_risk(e).map(|r| (e.at, r)))
        .collect();
    let newest = points.last().map(|p| p.0);
    if t.risk > 0.0 && newest.is_none_or(|at| t.updated_at > at) {
        points.push((t.updated_at, t.risk));
    }
    points
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use domain::{DeviceId, Prediction};

    use super::*;
    use crate::tickets::{DiagnosisContext, TicketConfig, TicketQuery, TicketService};

    fn prediction(risk: f64, ts: i64) -> Prediction {
        Prediction {
            device_id: DeviceId::parse("wm-1").unwrap(),
            device_type: "washer".into(),
            component: "drain_pump".into(),
            ts: Timestamp(ts),
            risk,
            threshold: 0.6,
            flagged: true,
            model_version: "washer-v1".into(),
            top_features: Vec::new(),
            lead_time_days: None,
            warming_up: false,
        }
    }

    #[test]
    fn the_points_are_read_from_the_notes_the_intake_writes() {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(1_795_500_000_000));
        let clock = now.clone();
        let tickets = TicketService::open_with_clock(
            &dir.path().join("tickets.db"),
            TicketConfig::default(),
            Arc::new(move || Timestamp(clock.load(Ordering::SeqCst))),
        )
        .unwrap();
        let ctx = DiagnosisContext::default();
        let t0 = now.load(Ordering::SeqCst);
        tickets
            .record_predictions(&[prediction(0.71, t0)], &ctx)
            .unwrap();
        now.fetch_add(2 * 3_600_000, Ordering::SeqCst);
        tickets
            .record_predictions(&[prediction(0.88, t0 + 1)], &ctx)
            .unwrap();
        now.fetch_add(60_000, Ordering::SeqCst);
        // Too soon after the last entry to be logged: the ticket's latest risk only.
        tickets
            .record_predictions(&[prediction(0.93, t0 + 2)], &ctx)
            .unwrap();
        let t = tickets
            .list(&TicketQuery::default())
            .unwrap()
            .pop()
            .unwrap();
        let points: Vec<f64> = risk_points(&t).into_iter().map(|p| p.1).collect();
        assert_eq!(points, [0.71, 0.88, 0.93]);
        let times: Vec<i64> = risk_points(&t).iter().map(|p| p.0.millis()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    #[test]
    fn other_entries_and_odd_notes_record_nothing() {
        let entry = |action: &str, note: &str| LogEntry {
            at: Timestamp(0),
            actor: "x".into(),
            action: action.into(),
            note: note.into(),
        };
        assert_eq!(logged_risk(&entry("note", "Risk 0.5")), None);
        assert_eq!(
            logged_risk(&entry("opened", "Critical fault E21 raised")),
            None
        );
        assert_eq!(
            logged_risk(&entry("opened", "Risk 7.5 (threshold 0.6)")),
            None
        );
        assert_eq!(logged_risk(&entry("risk_updated", "Risk 0.5 -> x")), None);
        assert_eq!(
            logged_risk(&entry(
                "opened",
                "flagged on its fault codes; Risk 0.42 (threshold 0.60) for heater"
            )),
            Some(0.42)
        );
    }
}
