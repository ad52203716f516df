//! The memory one tracked device costs: a scorer takes `--state-devices` warm devices
//! in a child process (`bench ingest --state-only`), so nothing this process allocated
//! before blurs the resident-memory delta.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use domain::{DeviceId, Message, ProfileSet, Timestamp};

use super::load::STEP_MS;
use server::Context as _;

use crate::error::bail;
use crate::model;
use crate::system::proc_status_bytes;
use crate::Result;

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StateResult {
    pub(super) devices: usize,
    pub(super) scored_devices: usize,
    pub(super) rss_before: u64,
    pub(super) rss_after: u64,
    pub(super) bytes_per_device: f64,
    pub(super) state_bytes_per_device: f64,
}

/// Runs `bench ingest --state-only` in a child process and reads its JSON line.
pub(super) fn state_in_child(model_dir: &Path, devices: usize) -> Result<StateResult> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let out = std::process::Command::new(exe)
        .args(["bench", "ingest", "--state-only", "--state-devices"])
        .arg(devices.to_string())
        .arg("--model")
        .arg(model_dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the memory measurement")?;
    if !out.status.success() {
        bail!("the memory measurement failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let measured = serde_json::from_str(line)
        .with_context(|| format!("reading the memory measurement's output {line:?}"))?;
    Ok(measured)
}

/// Two messages per device, seven days apart, so its state is warm and scored.
type Template = (Message, Message);

/// A message of another device: the same payload under `id`.
fn with_device(message: &Message, id: DeviceId) -> Message {
    match message {
        Message::Telemetry(t) => Message::Telemetry(domain::Telemetry {
            device_id: id,
            ..t.clone()
        }),
        Message::Fault(f) => Message::Fault(domain::FaultMessage {
            device_id: id,
            ..f.clone()
        }),
        Message::Status(s) => Message::Status(domain::StatusMessage {
            device_id: id,
            ..s.clone()
        }),
        Message::Command(_) => Message::Command(id),
        Message::CommandResult(r) => Message::CommandResult(domain::CommandResult {
            device_id: id,
            ..r.clone()
        }),
    }
}

/// Per template device of a small simulated fleet: its first message and its first
/// one at least [`models::features::WARM_UP_MS`] later.
fn state_templates(profiles: &ProfileSet) -> Result<Vec<Template>> {
    let config = simulators::FleetConfig {
        devices: 1000,
        seed: 3,
        start: simulators::FleetConfig::DEFAULT_START,
        ..simulators::FleetConfig::default()
    };
    let start = config.start.millis();
    let mut fleet = simulators::Fleet::new(config, profiles)?;
    let mut first: HashMap<DeviceId, Message> = HashMap::new();
    let mut templates = Vec::new();
    let mut done: HashSet<DeviceId> = HashSet::new();
    let mut until = start;
    while until < start + 12 * Timestamp::DAY_MS {
        until += STEP_MS;
        for event in fleet.advance(Timestamp(until - 1)) {
            let simulators::SimEvent::Message(m) = event else {
                continue;
            };
            if done.contains(&m.device_id) {
                continue;
            }
            let Ok(message) = domain::decode(&m.topic(), &m.payload_bytes(), profiles) else {
                continue;
            };
            let Some(ts) = message.ts() else { continue };
            match first.get(&m.device_id) {
                None => {
                    first.insert(m.device_id.clone(), message);
                }
                Some(a) => {
                    let a_ts = a.ts().map_or(i64::MAX, Timestamp::millis);
                    if ts.millis().saturating_sub(a_ts) >= models::features::WARM_UP_MS {
                        if let Some(a) = first.remove(&m.device_id) {
                            templates.push((a, message));
                        }
                        done.insert(m.device_id.clone());
                    }
                }
            }
        }
    }
    if templates.is_empty() {
        bail!("the template fleet produced no warm device");
    }
    Ok(templates)
}

/// The child process: RSS before and after a scorer takes `devices` devices.
pub(super) fn state_only(model_dir: &Path, devices: usize) -> Result<StateResult> {
    let profiles = ProfileSet::builtin();
    let registry = model::load(model_dir)?;
    let templates = state_templates(&profiles)?;
    let mut scorer = models::Scorer::new(registry, profiles);
    let rss_before = proc_status_bytes("VmRSS:").context("reading VmRSS")?;
    let mut scored_devices = 0;
    for i in 0..devices {
        let (a, b) = &templates[i % templates.len()];
        let id = DeviceId::parse(&format!("{}-{i:07}", a.device_id()))?;
        std::hint::black_box(scorer.observe(&with_device(a, id.clone())));
        let predictions = scorer.observe(&with_device(b, id));
        scored_devices += usize::from(!predictions.is_empty());
        if i % 100_000 == 99_999 {
            eprintln!("  {} devices", i + 1);
        }
    }
    let rss_after = proc_status_bytes("VmRSS:").context("reading VmRSS")?;
    let n = scorer.device_count().max(1) as f64;
    Ok(StateResult {
        devices: scorer.device_count(),
        scored_devices,
        rss_before,
        rss_after,
        bytes_per_device: rss_after.saturating_sub(rss_before) as f64 / n,
        state_bytes_per_device: scorer.state_bytes() as f64 / n,
    })
}
