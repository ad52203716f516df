//! What the scorer says about a device.

use serde::{Deserialize, Serialize};

use crate::{DeviceId, Timestamp};

/// One feature's share in a score: the explanation a planner reads.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Feature name, e.g. `drain_time_s.ewma_fast`.
    pub feature: String,
    /// The feature's value for this device.
    pub value: f64,
    /// The feature's push on the log-odds of failure (positive raises the risk).
    pub contribution: f64,
    /// The fleet's normal range for this feature (5th to 95th percentile of the
    /// training data), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<f64>>, min_items = 2, max_items = 2))]
    pub normal_range: Option<(f64, f64)>,
}

/// A risk score for one component of one device at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The device scored.
    pub device_id: DeviceId,
    /// Its type.
    pub device_type: String,
    /// The component at risk.
    pub component: String,
    /// Event time of the message that triggered the score.
    pub ts: Timestamp,
    /// Probability-like risk in [0, 1] that the component fails within the model's horizon.
    pub risk: f64,
    /// The threshold above which a score counts toward a flag.
    pub threshold: f64,
    /// Whether the risk has stayed above the threshold long enough to flag the device.
    pub flagged: bool,
    /// The version of the model that produced the score.
    pub model_version: String,
    /// The largest contributions, most important first.
    pub top_features: Vec<Contribution>,
    /// Predicted days until the failure, when the risk is at or above the threshold and
    /// the model measured lead times (`models::ComponentModel::lead_time`): the median
    /// time to failure of validation rows at a similar risk that did fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time_days: Option<f64>,
    /// The device has reported for less than the feature warm-up (7 days): its
    /// statistical features still lean on the first readings, so the risk is not to be
    /// trusted and cannot raise a flag. Only the model's fault-code rule flags such a
    /// device, and only its flags (and the score that ends one) are reported. Absent
    /// when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warming_up: bool,
}
