//! Customers who call: about a failure (ground truth), a nuisance fault code, or a
//! poor installation.

use domain::{DeviceId, Timestamp};
use rand::Rng;

use super::{rng_for, ServiceConfig};
use crate::{DeviceInfo, GroundTruthEvent, GroundTruthKind};

/// What a report is really about (the driver's ground truth; never sent).
#[derive(Clone, Debug, PartialEq)]
pub enum ReportTruth {
    /// A component failed at `failed_at`.
    Failure {
        /// The failed component.
        component: String,
        /// Its failure mode.
        mode: String,
        /// When it failed.
        failed_at: Timestamp,
    },
    /// A non-critical fault code the customer noticed; nothing is broken.
    Nuisance {
        /// The code.
        code: String,
    },
    /// A poor installation (`sagging_drain_hose`, ...); nothing is broken.
    Installation {
        /// The installation issue.
        kind: String,
    },
}

/// One customer report, as the driver sends it to `POST /api/v1/tickets`.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerReport {
    /// When the customer calls.
    pub at: Timestamp,
    /// The device.
    pub device_id: String,
    /// `phone`, `app`, `web` or `installer`.
    pub channel: &'static str,
    /// `down`, `degraded`, `error_code`, `noise`, `leak`, `installation`.
    pub category: &'static str,
    /// The customer's words.
    pub words: String,
    /// What it is really about.
    pub truth: ReportTruth,
}

/// A non-critical fault code raised by a device (from the history's fault lines).
#[derive(Clone, Debug, PartialEq)]
pub struct NuisanceCode {
    /// The device.
    pub device_id: DeviceId,
    /// When it was raised.
    pub ts: Timestamp,
    /// The code.
    pub code: String,
}

fn channel(config: &ServiceConfig, rng: &mut impl Rng) -> &'static str {
    const CHANNELS: [&str; 4] = ["phone", "app", "web", "installer"];
    let total: f64 = config.channel_mix.iter().map(|w| w.max(0.0)).sum();
    let mut x = rng.gen::<f64>() * total.max(f64::MIN_POSITIVE);
    for (c, w) in CHANNELS.iter().zip(config.channel_mix) {
        x -= w.max(0.0);
        if x < 0.0 {
            return c;
        }
    }
    "phone"
}

/// The category a customer gives a failure of `component` in `mode`.
fn failure_category(component: &str, mode: &str, rng: &mut impl Rng) -> &'static str {
    let noisy = ["bearing", "fan", "motor", "compressor"]
        .iter()
        .any(|k| component.contains(k));
    let wet = ["pump", "valve", "seal", "hose", "inlet", "drain"]
        .iter()
        .any(|k| component.contains(k));
    let x: f64 = rng.gen();
    if mode == "sudden" && x < 0.7 {
        "down"
    } else if noisy && x < 0.5 {
        "noise"
    } else if wet && x < 0.4 {
        "leak"
    } else if x < 0.55 {
        "degraded"
    } else {
        "down"
    }
}

fn words(category: &str, device_type: &str, detail: &str) -> String {
    let what = device_type.replace('_', " ");
    match category {
        "down" => format!("My {what} has stopped working completely."),
        "degraded" => format!("My {what} still runs but works much worse than it used to."),
        "noise" => format!("My {what} makes a loud grinding noise."),
        "leak" => format!("There is water under my {what}."),
        "error_code" => format!("My {what} shows the code {detail} on its display."),
        "installation" => {
            format!("The {what} has not worked right since it was installed ({detail}).")
        }
        _ => format!("A question about my {what}."),
    }
}

/// Every customer report of a history, in time order: failures (reported with odds
/// `report_share`, after `report_delay_min`), the first nuisance code of a share of
/// devices, and a share of poor installations (once, at a time in the history).
pub fn customer_reports(
    config: &ServiceConfig,
    devices: &[DeviceInfo],
    events: &[GroundTruthEvent],
    nuisance: &[NuisanceCode],
    span: (Timestamp, Timestamp),
) -> Vec<CustomerReport> {
    let type_of = |id: &str| {
        devices
            .iter()
            .find(|d| d.device_id.as_str() == id)
            .map_or("appliance", |d| d.device_type.as_str())
    };
    let mut out = Vec::new();
    for e in events
        .iter()
        .filter(|e| e.event == GroundTruthKind::Failure)
    {
        let id = e.device_id.as_str();
        let mut rng = rng_for(
            config.seed,
            "failure report",
            &format!("{id}/{}/{}", e.component, e.ts.millis()),
        );
        if !rng.gen_bool(config.report_share.clamp(0.0, 1.0)) {
            continue;
        }
        let (lo, hi) = config.report_delay_min;
        let delay = rng.gen_range(lo.min(hi)..=hi.max(lo));
        let category = failure_category(&e.component, &e.mode, &mut rng);
        out.push(CustomerReport {
            at: Timestamp(e.ts.millis() + (delay * 60_000.0) as i64),
            device_id: id.to_owned(),
            channel: channel(config, &mut rng),
            category,
            words: words(category, type_of(id), ""),
            truth: ReportTruth::Failure {
                component: e.component.clone(),
                mode: e.mode.clone(),
                failed_at: e.ts,
            },
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for n in nuisance {
        let id = n.device_id.as_str();
        if !seen.insert(id) {
            continue;
        }
        let mut rng = rng_for(config.seed, "nuisance report", id);
        if !rng.gen_bool(config.nuisance_report_share.clamp(0.0, 1.0)) {
            continue;
        }
        out.push(CustomerReport {
            at: Timestamp(n.ts.millis() + rng.gen_range(5..120) * 60_000),
            device_id: id.to_owned(),
            channel: channel(config, &mut rng),
            category: "error_code",
            words: words("error_code", type_of(id), &n.code),
            truth: ReportTruth::Nuisance {
                code: n.code.clone(),
            },
        });
    }
    let (from, to) = span;
    for d in devices.iter().filter(|d| d.installation != "ok") {
        let id = d.device_id.as_str();
        let mut rng = rng_for(config.seed, "installation report", id);
        if !rng.gen_bool(config.installation_report_share.clamp(0.0, 1.0)) || to <= from {
            continue;
        }
        out.push(CustomerReport {
            at: Timestamp(rng.gen_range(from.millis()..to.millis())),
            device_id: id.to_owned(),
            channel: channel(config, &mut rng),
            category: "installation",
            words: words(
                "installation",
                &d.device_type,
                &d.installation.replace('_', " "),
            ),
            truth: ReportTruth::Installation {
                kind: d.installation.clone(),
            },
        });
    }
    out.sort_by(|a, b| (a.at, &a.device_id).cmp(&(b.at, &b.device_id)));
    out
}
