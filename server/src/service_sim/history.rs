//! A history directory as the service simulation reads it: the devices, the ground
//! truth, and the telemetry and fault lines in time order.

use std::io::{BufRead, BufReader};
use std::path::Path;

use domain::{ProfileSet, Severity, Timestamp};
use simulators::service::reports::NuisanceCode;
use simulators::{DeviceInfo, GroundTruthEvent};

use crate::{Context, Result};

/// One published line.
pub(crate) struct Line {
    pub(crate) ts: Timestamp,
    pub(crate) device_id: String,
    pub(crate) text: String,
}

/// What the simulation plays.
pub(crate) struct History {
    pub(crate) devices: Vec<DeviceInfo>,
    pub(crate) events: Vec<GroundTruthEvent>,
    /// Every telemetry and fault line, by event time (per device in file order).
    pub(crate) lines: Vec<Line>,
    /// Non-critical codes raised (no component, or info/minor severity).
    pub(crate) nuisance: Vec<NuisanceCode>,
    /// First and last event time of the lines.
    pub(crate) span: (Timestamp, Timestamp),
}

fn jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{} line {}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// Reads `dir` (`devices.jsonl`, `events.jsonl`, `telemetry.jsonl`).
pub(crate) fn load(dir: &Path, profiles: &ProfileSet) -> Result<History> {
    let devices: Vec<DeviceInfo> = jsonl(&dir.join("devices.jsonl"))?;
    let events: Vec<GroundTruthEvent> = jsonl(&dir.join("events.jsonl"))?;
    let path = dir.join("telemetry.jsonl");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let type_of: std::collections::HashMap<&str, &str> = devices
        .iter()
        .map(|d| (d.device_id.as_str(), d.device_type.as_str()))
        .collect();
    let mut lines = Vec::new();
    let mut nuisance = Vec::new();
    for line in BufReader::new(file).lines() {
        let text = line.with_context(|| format!("reading {}", path.display()))?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let ts = v
            .get("ts")
            .and_then(|t| t.as_str())
            .and_then(|s| Timestamp::parse(s).ok())
            .or_else(|| v.get("ts").and_then(|t| t.as_i64()).map(Timestamp));
        let (Some(ts), Some(device)) = (ts, v.get("device_id").and_then(|d| d.as_str())) else {
            continue;
        };
        if v.get("msg").and_then(|m| m.as_str()) == Some("fault")
            && v.get("state").and_then(|s| s.as_str()) == Some("raised")
        {
            let code = v.get("code").and_then(|c| c.as_str()).unwrap_or_default();
            let def = type_of
                .get(device)
                .and_then(|t| profiles.get(t))
                .and_then(|p| p.fault(code).cloned());
            if def.is_some_and(|d| d.component.is_none() || d.severity <= Severity::Minor) {
                if let Ok(id) = domain::DeviceId::parse(device) {
                    nuisance.push(NuisanceCode {
                        device_id: id,
                        ts,
                        code: code.to_owned(),
                    });
                }
            }
        }
        lines.push(Line {
            ts,
            device_id: device.to_owned(),
            text,
        });
    }
    // Stable: a device's lines keep their file order.
    lines.sort_by_key(|l| l.ts);
    nuisance.sort_by_key(|n| n.ts);
    let span = match (lines.first(), lines.last()) {
        (Some(a), Some(b)) => (a.ts, b.ts),
        _ => crate::error::bail!("{} holds no telemetry", path.display()),
    };
    Ok(History {
        devices,
        events,
        lines,
        nuisance,
        span,
    })
}
