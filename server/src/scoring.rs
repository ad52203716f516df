//! The scoring stage: newly stored messages in, predictions and tickets out.
//!
//! Messages arrive in the order the writer stored them, so each device's messages are
//! scored in order by this single task (invariant 3 "one device, one order").
//! Predictions are recorded in batches: per (device, component) only the latest score
//! of a batch is kept as the current risk, while every flagged score still reaches the
//! ticket service, which opens at most one ticket per pair (invariant 7 "one risk, one
//! ticket"). Every raised fault code of the batch reaches it too, in the same
//! transaction: one the catalogue rates critical opens (or updates) an urgent reactive
//! ticket, with or without a model.

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::{FaultState, Message, Prediction, ProfileSet};
use models::Scorer;
use store::hot::StoreReader;
use tokio::sync::mpsc;

/// Most messages scored before their predictions are recorded.
const MAX_BATCH: usize = 512;
/// Recent faults put into a ticket's diagnosis.
const RECENT_FAULTS: usize = 20;

/// What the stage owns.
pub struct ScoringStage {
    pub scorer: Scorer,
    pub tickets: api::TicketService,
    pub reader: StoreReader,
    pub profiles: Arc<ProfileSet>,
    /// Where devices' answers to commands are recorded.
    pub commands: api::CommandService,
    /// Counts answers that matched no open command.
    pub metrics: Arc<ingest::metrics::IngestMetrics>,
    /// Messages the stage has finished (scored, and their tickets recorded): what
    /// `simulate-service` waits for before it moves the service clock.
    pub scored: Arc<std::sync::atomic::AtomicU64>,
}

/// Runs until the writer closes the channel.
pub async fn run(mut stage: ScoringStage, mut rx: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let results: Vec<domain::CommandResult> = batch
            .iter()
            .filter_map(|m| match m {
                Message::CommandResult(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        if !results.is_empty() {
            let commands = stage.commands.clone();
            let metrics = stage.metrics.clone();
            let recorded =
                tokio::task::spawn_blocking(move || record_results(&commands, &metrics, &results))
                    .await;
            if let Err(e) = recorded {
                tracing::error!(error = %e, "Recording command results panicked");
            }
        }
        let mut by_device: BTreeMap<String, Signals> = BTreeMap::new();
        for message in &batch {
            if let Message::Fault(f) = message {
                if f.state == FaultState::Raised {
                    by_device
                        .entry(f.device_id.as_str().to_owned())
                        .or_default()
                        .faults
                        .push(api::FaultSignal {
                            device_id: f.device_id.clone(),
                            device_type: f.device.device_type.clone(),
                            code: f.code.clone(),
                            ts: f.ts,
                        });
                }
            }
            for p in stage.scorer.observe(message) {
                by_device
                    .entry(p.device_id.as_str().to_owned())
                    .or_default()
                    .predictions
                    .push(p);
            }
        }
        let done = batch.len() as u64;
        if by_device.is_empty() {
            stage
                .scored
                .fetch_add(done, std::sync::atomic::Ordering::SeqCst);
            continue;
        }
        let tickets = stage.tickets.clone();
        let reader = stage.reader.clone();
        let profiles = stage.profiles.clone();
        let recorded =
            tokio::task::spawn_blocking(move || record(&tickets, &reader, &profiles, by_device))
                .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "Recording predictions panicked");
        }
        stage
            .scored
            .fetch_add(done, std::sync::atomic::Ordering::SeqCst);
    }
    tracing::info!("Scoring stage stopped");
}

/// Records devices' answers to commands. An answer to no open command of its device
/// (unknown id, another device's, already answered) is counted and logged, not kept.
fn record_results(
    commands: &api::CommandService,
    metrics: &ingest::metrics::IngestMetrics,
    results: &[domain::CommandResult],
) {
    for r in results {
        match commands.record_result(r) {
            Ok(api::ResultOutcome::Recorded) => {
                tracing::info!(command_id = r.id, device_id = %r.device_id, "Command answered");
            }
            Ok(api::ResultOutcome::Late) => {
                tracing::info!(command_id = r.id, device_id = %r.device_id, "Command answered after its deadline; kept as late");
            }
            Ok(api::ResultOutcome::Unmatched) => {
                metrics.command_results_unmatched.inc();
                tracing::warn!(command_id = r.id, device_id = %r.device_id, "Command result matches no open command of its device; dropped");
            }
            Err(e) => {
                tracing::error!(command_id = r.id, device_id = %r.device_id, error = %e, "Could not record a command result");
            }
        }
    }
}

/// One device's signals in a batch.
#[derive(Default)]
struct Signals {
    predictions: Vec<Prediction>,
    faults: Vec<api::FaultSignal>,
}

/// Keeps, in order, every flagged prediction, every unflagged one that ends a flag (the
/// component's previous prediction in the batch was flagged), and the latest one per
/// component. The ends matter: a flag that goes down and comes up again within one
/// batch (an expired prediction restated, `models::scorer`) is two flag episodes, and
/// the ticket store can only tell them apart if it sees the unflagged score between.
pub(crate) fn condense(predictions: Vec<Prediction>) -> Vec<Prediction> {
    let mut keep = vec![false; predictions.len()];
    // Per component: the index of its latest prediction so far, and whether it flagged.
    let mut latest: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    for (i, p) in predictions.iter().enumerate() {
        let before = latest.insert(&p.component, (i, p.flagged));
        keep[i] = p.flagged || before.is_some_and(|(_, flagged)| flagged);
    }
    for &(i, _) in latest.values() {
        keep[i] = true;
    }
    predictions
        .into_iter()
        .zip(keep)
        .filter_map(|(p, keep)| keep.then_some(p))
        .collect()
}

fn record(
    tickets: &api::TicketService,
    reader: &StoreReader,
    profiles: &ProfileSet,
    by_device: BTreeMap<String, Signals>,
) {
    let devices: Vec<(
        Vec<Prediction>,
        Vec<api::FaultSignal>,
        api::DiagnosisContext,
    )> = by_device
        .into_iter()
        .map(|(device_id, signals)| {
            let predictions = condense(signals.predictions);
            let device_type = predictions
                .first()
                .map(|p| p.device_type.as_str())
                .or_else(|| signals.faults.first().map(|f| f.device_type.as_str()))
                .unwrap_or_default()
                .to_owned();
            let ctx = if predictions.iter().any(|p| p.flagged) || !signals.faults.is_empty() {
                diagnosis_context(reader, profiles, &device_id, &device_type)
            } else {
                api::DiagnosisContext::default()
            };
            (predictions, signals.faults, ctx)
        })
        .collect();
    let batch: Vec<api::DeviceSignals<'_>> = devices
        .iter()
        .map(|(predictions, faults, context)| api::DeviceSignals {
            predictions,
            faults,
            context,
        })
        .collect();
    match record_with_retry(tickets, &batch) {
        Ok(changes) => {
            for change in changes {
                match change.kind {
                    api::TicketChangeKind::Opened => tracing::info!(
                        device_id = %change.device_id, ticket = %change.number, component = %change.component,
                        priority = ?change.priority, source = ?change.source, "Ticket opened"
                    ),
                    api::TicketChangeKind::Updated => tracing::debug!(
                        device_id = %change.device_id, ticket = %change.number, source = ?change.source, "Ticket updated by a new signal"
                    ),
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, devices = devices.len(), "Recording predictions failed")
        }
    }
}

/// What a ticket's diagnosis needs beyond the predictions: the profile and the
/// device's recent raised faults.
fn diagnosis_context(
    reader: &StoreReader,
    profiles: &ProfileSet,
    device_id: &str,
    device_type: &str,
) -> api::DiagnosisContext {
    let mut ctx = api::DiagnosisContext {
        profile: profiles.get(device_type).cloned(),
        ..Default::default()
    };
    // The registry's model, batch and region go onto the ticket (the console's queue
    // filters by them).
    match reader.device(device_id) {
        Ok(record) => ctx.device = record.map(|r| r.device),
        Err(e) => {
            tracing::warn!(error = %e, %device_id, "Could not read the device registry for a ticket")
        }
    }
    match reader.recent_faults(device_id, RECENT_FAULTS) {
        Ok(faults) => {
            ctx.recent_faults = faults
                .into_iter()
                .filter(|f| f.state == FaultState::Raised)
                .map(|f| (f.code, f.ts))
                .collect();
        }
        Err(e) => {
            tracing::warn!(error = %e, %device_id, "Could not read recent faults for a diagnosis")
        }
    }
    ctx
}

/// Records a batch of predictions in one transaction, retrying a failed one (a busy
/// or briefly unavailable ticket store) with backoff before giving up: a dropped flag
/// would be a ticket never opened. Blocking here is backpressure, like the writer's
/// commit retries.
fn record_with_retry(
    tickets: &api::TicketService,
    batch: &[api::DeviceSignals<'_>],
) -> api::Result<Vec<api::TicketChange>> {
    let mut backoff = std::time::Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match tickets.record(batch) {
            Ok(changes) => return Ok(changes),
            Err(e) if attempt < RECORD_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, retry_in_ms = backoff.as_millis() as u64, "Recording predictions failed; retrying");
                std::thread::sleep(backoff);
                backoff *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Attempts per batch of one device's predictions (about 3 s of backoff in all).
const RECORD_ATTEMPTS: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DeviceId, Timestamp};

    fn p(component: &str, risk: f64, flagged: bool) -> Prediction {
        Prediction {
            device_id: DeviceId::parse("d").unwrap(),
            device_type: "washer".into(),
            component: component.into(),
            ts: Timestamp(0),
            risk,
            threshold: 0.5,
            flagged,
            model_version: "v".into(),
            top_features: vec![],
            lead_time_days: None,
            warming_up: false,
        }
    }

    /// The risks of the predictions `condense` keeps, in order.
    fn kept(predictions: &[(&str, f64, bool)]) -> Vec<f64> {
        let predictions = predictions.iter().map(|&(c, r, f)| p(c, r, f)).collect();
        condense(predictions).iter().map(|p| p.risk).collect()
    }

    #[test]
    fn condense_keeps_latest_and_flagged() {
        let risks = kept(&[
            ("a", 0.1, false),
            ("a", 0.9, true),
            ("b", 0.2, false),
            ("a", 0.3, false),
        ]);
        assert_eq!(risks, vec![0.9, 0.2, 0.3]);
    }

    #[test]
    fn condense_keeps_the_score_that_ends_a_flag_between_two_flags() {
        // A flag, the score where it expired, the flag raised again, then quiet scores.
        let risks = kept(&[
            ("a", 0.91, true),
            ("a", 0.92, false),
            ("a", 0.93, true),
            ("a", 0.4, false),
            ("a", 0.3, false),
            ("a", 0.2, false),
        ]);
        assert_eq!(risks, vec![0.91, 0.92, 0.93, 0.4, 0.2]);
    }
}
