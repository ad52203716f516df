//! The load of `bench ingest`, generated and decoded before anything is timed: a
//! simulated fleet's first message per device (seeds), the timed messages, a background
//! stream, and the ticket samples (devices whose next message opens a ticket).

use std::collections::{HashMap, HashSet};

use domain::{DeviceId, Message, ProfileSet, Timestamp};
use rumqttc::{Publish, QoS};

use crate::error::bail;
use crate::Result;

/// Event time before the timed messages start: the feature warm-up (7 days) plus two
/// days, so washers and dishwashers, whose first report can come a day or two in, are
/// warm (and scored) from the start.
const SEED_WINDOW_MS: i64 = 9 * Timestamp::DAY_MS;
/// Event time simulated per step while generating.
pub(super) const STEP_MS: i64 = Timestamp::HOUR_MS;

/// One message ready to publish.
#[derive(Clone)]
pub(super) struct Out {
    /// The publishing device's index (selects its connection, keeping its order).
    pub(super) device: u32,
    /// Topic and payload.
    pub(super) publish: Publish,
    /// Event time.
    pub(super) ts: i64,
    /// Device sequence number.
    pub(super) seq: u64,
    /// A telemetry message (the store probes look for those).
    pub(super) telemetry: bool,
    /// The pipeline's scorer returns predictions for it (a mirror scorer says so).
    pub(super) scored: bool,
}

pub(super) struct Load {
    /// Each device's first message, published before the timed ones.
    pub(super) seeds: Vec<Out>,
    /// Timed through the raw relay and the pipeline.
    pub(super) timed: Vec<Out>,
    /// The latency phase's background load.
    pub(super) background: Vec<Out>,
    pub(super) payload_bytes_mean: f64,
    /// Share of timed messages the pipeline scores.
    pub(super) scored_share: f64,
}

/// Simulates `devices` devices (five kinds, default settings, seed 1): each device's
/// first message within [`SEED_WINDOW_MS`] becomes its seed, the other messages of that
/// window are dropped, and the messages after it are the timed ones, then the
/// background. A mirror scorer (the same model files) marks what the pipeline scores.
pub(super) fn generate_load(
    devices: usize,
    timed: usize,
    background: usize,
    profiles: &ProfileSet,
    registry: &models::ModelRegistry,
) -> Result<Load> {
    let config = simulators::FleetConfig {
        devices,
        seed: 1,
        start: simulators::FleetConfig::DEFAULT_START,
        ..simulators::FleetConfig::default()
    };
    let start = config.start.millis();
    let mut fleet = simulators::Fleet::new(config, profiles)?;
    let index: HashMap<DeviceId, u32> = fleet
        .devices()
        .into_iter()
        .enumerate()
        .map(|(i, d)| (d.device_id, i as u32))
        .collect();
    let mut mirror = models::Scorer::new(registry.clone(), profiles.clone());
    let mut seeded = vec![false; devices];
    let mut load = Load {
        seeds: Vec::new(),
        timed: Vec::with_capacity(timed),
        background: Vec::with_capacity(background),
        payload_bytes_mean: 0.0,
        scored_share: 0.0,
    };
    let mut until = start;
    let mut idle = 0;
    while load.timed.len() < timed || load.background.len() < background {
        until += STEP_MS;
        let events = fleet.advance(Timestamp(until - 1));
        if events.is_empty() {
            idle += 1;
            if idle > 1000 {
                bail!("the simulated fleet stopped sending messages");
            }
        } else {
            idle = 0;
        }
        for event in events {
            let simulators::SimEvent::Message(m) = event else {
                continue;
            };
            let device = index.get(&m.device_id).copied().unwrap_or(0);
            let in_seed_window = m.ts.millis() < start + SEED_WINDOW_MS;
            if in_seed_window && seeded[device as usize] {
                continue;
            }
            let topic = m.topic();
            let payload = m.payload_bytes();
            let message = domain::decode(&topic, &payload, profiles).ok();
            let scored = message
                .as_ref()
                .is_some_and(|msg| !mirror.observe(msg).is_empty());
            let out = Out {
                device,
                ts: m.ts.millis(),
                seq: m.seq(),
                telemetry: matches!(message, Some(Message::Telemetry(_))),
                scored,
                publish: Publish::new(topic, QoS::AtLeastOnce, payload),
            };
            if in_seed_window {
                seeded[device as usize] = true;
                load.seeds.push(out);
            } else if load.timed.len() < timed {
                load.timed.push(out);
            } else if load.background.len() < background {
                load.background.push(out);
            }
        }
    }
    let n = load.timed.len().max(1) as f64;
    load.payload_bytes_mean = load
        .timed
        .iter()
        .map(|o| o.publish.payload.len() as f64)
        .sum::<f64>()
        / n;
    load.scored_share = load.timed.iter().filter(|o| o.scored).count() as f64 / n;
    Ok(load)
}

/// A device whose next message opens a ticket.
pub(super) struct TicketSample {
    pub(super) device_id: DeviceId,
    /// Everything it sent before (published and scored before the sample is taken).
    pub(super) prefix: Vec<Publish>,
    /// The message that completes a flag (persistence and hold time included).
    pub(super) tip: Publish,
}

/// Simulates a fleet whose components fail often (12 times a year, always with a
/// precursor) and replays it through a mirror scorer with the pipeline's model files,
/// device by device, up to the first message that flags a component. Ids get a `tk-`
/// prefix so they never meet the load's devices.
pub(super) fn find_ticket_samples(
    want: usize,
    profiles: &ProfileSet,
    registry: &models::ModelRegistry,
) -> Result<Vec<TicketSample>> {
    if want == 0 {
        return Ok(Vec::new());
    }
    let config = simulators::FleetConfig {
        devices: (want * 3).max(50),
        seed: 4242,
        start: simulators::FleetConfig::DEFAULT_START,
        failure_rate_per_year: 12.0,
        sudden_failure_share: 0.0,
        refrigerator_interval_s: 3600,
        ..simulators::FleetConfig::default()
    };
    let start = config.start.millis();
    let mut fleet = simulators::Fleet::new(config, profiles)?;
    let mut mirror = models::Scorer::new(registry.clone(), profiles.clone());
    let mut pending: HashMap<DeviceId, Vec<Publish>> = HashMap::new();
    let mut done: HashSet<DeviceId> = HashSet::new();
    let mut samples = Vec::new();
    let mut until = start;
    'outer: while until < start + 120 * Timestamp::DAY_MS {
        until += 6 * STEP_MS;
        for event in fleet.advance(Timestamp(until - 1)) {
            let simulators::SimEvent::Message(m) = event else {
                continue;
            };
            if done.contains(&m.device_id) {
                continue;
            }
            let id = DeviceId::parse(&format!("tk-{}", m.device_id))?;
            let topic = m.kind.topic(&id);
            let payload = m.payload_bytes();
            // A message the pipeline would dead-letter does not reach its scorer.
            let Ok(message) = domain::decode(&topic, &payload, profiles) else {
                continue;
            };
            // A raised critical fault opens a reactive ticket at once, and a later flag
            // of that component would update it instead of opening one: such a device
            // would not measure the model's ticket latency, so it is not a sample.
            if let domain::Message::Fault(f) = &message {
                let critical = profiles
                    .get(&f.device.device_type)
                    .and_then(|p| p.fault(&f.code))
                    .is_some_and(|def| def.severity == domain::Severity::Critical);
                if critical && f.state == domain::FaultState::Raised {
                    pending.remove(&m.device_id);
                    done.insert(m.device_id.clone());
                    continue;
                }
            }
            let flagged = mirror.observe(&message).iter().any(|p| p.flagged);
            let publish = Publish::new(topic, QoS::AtLeastOnce, payload);
            if flagged {
                let prefix = pending.remove(&m.device_id).unwrap_or_default();
                done.insert(m.device_id.clone());
                samples.push(TicketSample {
                    device_id: id,
                    prefix,
                    tip: publish,
                });
                if samples.len() >= want {
                    break 'outer;
                }
            } else {
                pending
                    .entry(m.device_id.clone())
                    .or_default()
                    .push(publish);
            }
        }
    }
    if samples.len() < want {
        eprintln!(
            "  only {} of {want} devices opened a ticket within 120 simulated days",
            samples.len()
        );
    }
    Ok(samples)
}

/// The device id of a `fixahead/v1/{device_id}/{kind}` topic.
pub(super) fn device_of(topic: &str) -> &str {
    topic
        .strip_prefix(domain::wire::TOPIC_PREFIX)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_come_from_the_topic() {
        assert_eq!(device_of("fixahead/v1/wm-0001/telemetry"), "wm-0001");
        assert_eq!(device_of("other/wm-0001/telemetry"), "");
    }
}
