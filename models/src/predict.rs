//! `fixahead predict`: the latest prediction per device and component of a history.
//!
//! The history is replayed through the same [`Scorer`] as the live pipeline; for every
//! (device, component) the prediction of its **last scored observation** is kept.
//! Devices whose type has no usable active model produce no lines; their types are
//! listed in [`PredictOutput::types_without_model`] so a caller can say so instead of
//! failing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use domain::{Message, ProfileSet};
use serde::Serialize;

use crate::features::FeatureSchema;
use crate::registry::ModelRegistry;
use crate::{history, Result, Scorer};

/// One output line of `fixahead predict` (JSON field names are part of the contract).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PredictLine {
    /// The device.
    pub device_id: String,
    /// The component at risk.
    pub component: String,
    /// Risk at the device's last scored observation.
    pub risk: f64,
    /// Whether the component was flagged at that observation.
    pub flagged: bool,
    /// The model version that produced the score.
    pub model_version: String,
}

/// What [`predict`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PredictOutput {
    /// One line per scored (device, component), sorted by device id, then component.
    pub lines: Vec<PredictLine>,
    /// Device types seen in the history that have no active model (or one whose
    /// feature schema does not match the profile), sorted. Their devices have no lines.
    pub types_without_model: Vec<String>,
    /// What reading the history found (lines, rejected lines, time range).
    pub stats: history::HistoryStats,
}

/// Replays `{history_dir}/telemetry.jsonl` through a fresh [`Scorer`] and returns, for
/// every device and component, the prediction at its last scored observation.
///
/// Profiles under `{history_dir}/profiles` override `profiles`, as in training. A
/// missing or unreadable telemetry file is an error; undecodable lines are counted in
/// [`PredictOutput::stats`] and skipped.
pub fn predict(
    history_dir: &Path,
    profiles: &ProfileSet,
    registry: ModelRegistry,
) -> Result<PredictOutput> {
    let profiles = history::load_profiles(history_dir, profiles)?;
    let mut scorer = Scorer::new(registry.clone(), profiles.clone());
    let mut last: BTreeMap<(String, String), PredictLine> = BTreeMap::new();
    let mut types_seen: BTreeSet<String> = BTreeSet::new();
    let stats = history::for_each_message(history_dir, &profiles, |msg| {
        match &msg {
            Message::Telemetry(t) => {
                if !types_seen.contains(&t.device_type) {
                    types_seen.insert(t.device_type.clone());
                }
            }
            Message::Fault(f) => {
                if !types_seen.contains(&f.device_type) {
                    types_seen.insert(f.device_type.clone());
                }
            }
            Message::Status(_) => {}
        }
        for p in scorer.observe(&msg) {
            let line = PredictLine {
                device_id: p.device_id.as_str().to_owned(),
                component: p.component,
                risk: p.risk,
                flagged: p.flagged,
                model_version: p.model_version,
            };
            last.insert((line.device_id.clone(), line.component.clone()), line);
        }
    })?;
    let types_without_model = types_seen
        .into_iter()
        .filter(|t| !has_usable_model(&registry, &profiles, t))
        .collect();
    Ok(PredictOutput {
        lines: last.into_values().collect(),
        types_without_model,
        stats,
    })
}

/// Whether `device_type` has an active model whose feature schema matches its profile
/// (the [`Scorer`] only scores with such a model).
pub(crate) fn has_usable_model(
    registry: &ModelRegistry,
    profiles: &ProfileSet,
    device_type: &str,
) -> bool {
    let (Some(model), Some(profile)) = (registry.get(device_type), profiles.get(device_type))
    else {
        return false;
    };
    model.feature_schema.as_slice() == FeatureSchema::for_profile(profile).names()
}
