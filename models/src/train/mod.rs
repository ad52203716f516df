//! Training: a history directory (or any [`TrainingData`]: `fixahead train --from-store`
//! builds one from the stores) in, one [`ModelArtifact`] per device type out.
//!
//! The steps, one module each: `data` replays the messages through the feature engine
//! and samples rows; `label` labels them per component and splits them by time; `fit`
//! standardises and fits both candidate families; `select` chooses the family and
//! calibrates it; `threshold` (and `seasonal`, for the fault-code rule's months) chooses
//! the flag rule and threshold at event level; `model` puts one device type's
//! artefact together. See the crate docs for what each step does.

mod data;
mod fit;
mod label;
mod model;
mod params;
mod row_metrics;
mod seasonal;
mod select;
mod threshold;

use std::path::Path;

use domain::{ProfileSet, Timestamp};

pub use data::{MessageReader, TrainingData, LABELS_FROM_HISTORY, LABELS_FROM_STORE};
pub use params::{TrainParams, ValidTrainParams};

use crate::artifact::ModelArtifact;
use crate::{Error, Result};
use label::GroundTruth;
use model::{train_type, TrainContext};

/// Progress reports of [`train`], for a progress bar or a log.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainProgress {
    /// Messages decoded so far (reported every 100,000).
    Reading {
        /// Messages decoded.
        messages: u64,
    },
    /// The history is read.
    Loaded {
        /// Lines read.
        lines: u64,
        /// Lines that did not decode and were skipped.
        rejected: u64,
        /// Devices seen.
        devices: u64,
        /// Feature rows sampled.
        rows: u64,
    },
    /// One component model is done (trained or skipped).
    Component {
        /// Device type.
        device_type: String,
        /// Component.
        component: String,
        /// `trained`, or why it was skipped.
        outcome: String,
    },
}
/// Trains one artefact per device type found in the history (see the crate docs for
/// features, labels, imbalance handling and thresholds). Types without enough data for
/// any training rows are reported through `progress` and left out.
pub fn train(
    history_dir: &Path,
    profiles: &ProfileSet,
    params: &ValidTrainParams,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<Vec<ModelArtifact>> {
    train_on(
        TrainingData::from_history(history_dir, profiles)?,
        params,
        progress,
    )
}

/// [`train`] on any [`TrainingData`].
pub fn train_on(
    data: TrainingData<'_>,
    params: &ValidTrainParams,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<Vec<ModelArtifact>> {
    let params: &TrainParams = params;
    let TrainingData {
        origin,
        label_source,
        profiles,
        mut events,
        rejected_events,
        mut healthy_checks,
        messages: read_messages,
    } = data;
    events.sort_by_key(|e| e.ts);
    let test_from = params.test_from_ms.unwrap_or(i64::MAX);
    events.retain(|e| e.ts.0 < test_from);
    healthy_checks.retain(|c| c.ts.0 < test_from);

    // 1. Replay the history through the feature engine, sampling rows.
    let sampled = data::sample_rows(read_messages, &profiles, params, progress)?;
    let stats = &sampled.stats;
    let total_rows: usize = sampled.types.values().map(data::TypeRows::len).sum();
    progress(TrainProgress::Loaded {
        lines: stats.lines,
        rejected: stats.rejected,
        devices: sampled.devices.len() as u64,
        rows: total_rows as u64,
    });
    let Some((t_min, t_max)) = sampled.read_range else {
        return Err(Error::InvalidHistory {
            path: origin,
            message: format!(
                "no decodable messages{} ({} lines, {} rejected)",
                if params.test_from_ms.is_some() {
                    " before the test period"
                } else {
                    ""
                },
                stats.lines,
                stats.rejected
            ),
        });
    };
    let span = t_max.0.saturating_sub(t_min.0) as f64;
    let split = Timestamp(
        t_min
            .0
            .saturating_add((span * (1.0 - params.validation_share)) as i64),
    );

    // 2. Ground truth per device and component.
    let truth = GroundTruth::new(
        &events,
        &healthy_checks,
        &sampled.device_ids,
        &sampled.devices,
        label_source,
    );

    // 3. One artefact per device type.
    let ctx = TrainContext {
        params,
        split,
        t_min,
        t_max,
        rejected_events,
        stats,
    };
    let mut out = Vec::new();
    for (device_type, rows) in &sampled.types {
        match train_type(&ctx, device_type, rows, &truth, progress)? {
            Some(a) => out.push(a),
            None => progress(TrainProgress::Component {
                device_type: device_type.clone(),
                component: "*".into(),
                outcome: "skipped: no training rows before the validation period".into(),
            }),
        }
    }
    Ok(out)
}
