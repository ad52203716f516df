//! `fixahead predict`: the latest prediction per device and component of a history.
//!
//! The history is replayed through the same [`Scorer`] as the live pipeline; for every
//! (device, component) the prediction of its **last scored observation** is kept, with
//! the same fields the live pipeline records as the current risk (risk, threshold,
//! flag, model version, event time, top features) and, on request, the full feature
//! vector the model saw. Devices whose type has no usable active model produce no
//! lines; their types are listed in [`PredictOutput::types_without_model`] so a caller
//! can say so instead of failing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use domain::{Contribution, Message, ProfileSet, Timestamp};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::features::FeatureSchema;
use crate::registry::ModelRegistry;
use crate::{history, Result, Scorer};

/// One output line of `fixahead predict`.
///
/// The JSON field names are part of the contract: `device_id`, `component`, `risk`,
/// `flagged` and `model_version` came first and never change; `ts`, `threshold` and
/// `top_features` were added with the same meaning as in the live pipeline's current
/// risk (`GET /api/v1/devices/{id}`), and `features` appears only when asked for.
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
    /// Event time of that observation (RFC 3339 in JSON, as in the API).
    pub ts: Timestamp,
    /// The threshold the model compares the risk with.
    pub threshold: f64,
    /// The largest contributions, most important first (as the live pipeline stores them).
    pub top_features: Vec<Contribution>,
    /// The full feature vector the model scored, when [`PredictOptions::features`] is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<FeatureVector>,
    /// The observation came from a device still in its feature warm-up, flagged (or
    /// ending a flag) by its fault codes: the risk is not to be trusted yet (as
    /// `domain::Prediction::warming_up`). Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warming_up: bool,
}

/// A device's full feature vector at one observation.
///
/// Serialises as a JSON object `name -> value` in schema order; a `NaN` value (a
/// channel the device never reported) or any other non-finite value becomes `null`.
#[derive(Clone, Debug)]
pub struct FeatureVector {
    schema: FeatureSchema,
    values: Arc<[f64]>,
}

impl FeatureVector {
    /// Feature names, in vector order.
    pub fn names(&self) -> &[String] {
        self.schema.names()
    }

    /// Feature values, in the order of [`FeatureVector::names`].
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The value of one feature by name (`NaN` for a channel never reported).
    pub fn get(&self, name: &str) -> Option<f64> {
        let i = self.names().iter().position(|n| n == name)?;
        self.values.get(i).copied()
    }
}

impl PartialEq for FeatureVector {
    /// Same names and the same values, where `NaN` equals `NaN` (both mean "unknown").
    fn eq(&self, other: &Self) -> bool {
        self.names() == other.names()
            && self.values.len() == other.values.len()
            && self
                .values
                .iter()
                .zip(other.values.iter())
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()))
    }
}

impl Serialize for FeatureVector {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.values.len()))?;
        for (name, v) in self.names().iter().zip(self.values.iter()) {
            map.serialize_entry(name, &v.is_finite().then_some(*v))?;
        }
        map.end()
    }
}

/// What [`predict_with`] adds to each line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PredictOptions {
    /// Attach the full feature vector of the scored observation ([`PredictLine::features`]).
    pub features: bool,
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

/// [`predict_with`] with the default options (no feature vectors).
pub fn predict(
    history_dir: &Path,
    profiles: &ProfileSet,
    registry: ModelRegistry,
) -> Result<PredictOutput> {
    predict_with(history_dir, profiles, registry, PredictOptions::default())
}

/// Replays `{history_dir}/telemetry.jsonl` through a fresh [`Scorer`] and returns, for
/// every device and component, the prediction at its last scored observation.
///
/// Profiles under `{history_dir}/profiles` override `profiles`, as in training. A
/// missing or unreadable telemetry file is an error; undecodable lines are counted in
/// [`PredictOutput::stats`] and skipped.
pub fn predict_with(
    history_dir: &Path,
    profiles: &ProfileSet,
    registry: ModelRegistry,
    options: PredictOptions,
) -> Result<PredictOutput> {
    let profiles = history::load_profiles(history_dir, profiles)?;
    let mut scorer = Scorer::new(registry.clone(), profiles.clone());
    let mut last: BTreeMap<(String, String), PredictLine> = BTreeMap::new();
    let mut types_seen: BTreeSet<String> = BTreeSet::new();
    let stats = history::for_each_message(history_dir, &profiles, |msg| {
        let device_type = match &msg {
            Message::Telemetry(t) => Some(&t.device.device_type),
            Message::Fault(f) => Some(&f.device.device_type),
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => None,
        };
        if let Some(t) = device_type {
            if !types_seen.contains(t) {
                types_seen.insert(t.clone());
            }
        }
        let predictions = scorer.observe(&msg);
        if predictions.is_empty() {
            return;
        }
        // The state the predictions were computed from: `observe` updates, then scores.
        let features = if options.features {
            scorer
                .device_state(msg.device_id())
                .map(|state| FeatureVector {
                    schema: state.schema().clone(),
                    values: state.features().into(),
                })
        } else {
            None
        };
        for p in predictions {
            let line = PredictLine {
                device_id: p.device_id.as_str().to_owned(),
                component: p.component,
                risk: p.risk,
                flagged: p.flagged,
                model_version: p.model_version,
                ts: p.ts,
                threshold: p.threshold,
                top_features: p.top_features,
                features: features.clone(),
                warming_up: p.warming_up,
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
    model.fits(profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceState;

    #[test]
    fn a_feature_vector_is_an_object_in_schema_order_with_null_for_unknown() {
        let profiles = ProfileSet::builtin();
        let schema = FeatureSchema::for_profile(profiles.get("washer").expect("washer profile"));
        let state = DeviceState::new(&schema);
        let v = FeatureVector {
            schema: schema.clone(),
            values: state.features().into(),
        };
        let json = serde_json::to_string(&v).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let obj = parsed.as_object().unwrap();
        assert_eq!(obj.len(), schema.len());
        // Schema order is kept in the text (a JSON object parsed back is sorted).
        let mut at = 0;
        for name in schema.names() {
            let key = format!("\"{name}\":");
            let found = json[at..]
                .find(&key)
                .unwrap_or_else(|| panic!("{key} in order"));
            at += found + key.len();
        }
        let channel = &schema.names()[0];
        assert!(obj[channel].is_null(), "never reported: {json}");
        assert!(v.get(channel).is_some_and(f64::is_nan));
        assert_eq!(obj["fault.all.count_7d"], serde_json::json!(0.0));
        assert_eq!(v.get("fault.all.count_7d"), Some(0.0));
        assert_eq!(v.get("no.such.feature"), None);
        assert_eq!(v, v.clone(), "NaN equals NaN in a feature vector");
    }
}
