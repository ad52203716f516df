//! What a simulation produces: wire messages, ground truth, and device descriptions.

use domain::{DeviceId, MessageKind, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One thing that happened in the simulated world.
#[derive(Clone, Debug, PartialEq)]
pub enum SimEvent {
    /// A message a device publishes.
    Message(WireMessage),
    /// A failure or repair: the truth the model is trained and evaluated against. Devices
    /// do not publish it.
    GroundTruth(GroundTruthEvent),
}

impl SimEvent {
    /// Event time.
    pub fn ts(&self) -> Timestamp {
        match self {
            Self::Message(m) => m.ts,
            Self::GroundTruth(g) => g.ts,
        }
    }

    /// The device it concerns.
    pub fn device_id(&self) -> &DeviceId {
        match self {
            Self::Message(m) => &m.device_id,
            Self::GroundTruth(g) => &g.device_id,
        }
    }
}

/// A message as a device publishes it under wire protocol v1.
#[derive(Clone, Debug, PartialEq)]
pub struct WireMessage {
    /// The publishing device.
    pub device_id: DeviceId,
    /// Telemetry or fault (status messages are published by [`crate::publish_live`]).
    pub kind: MessageKind,
    /// Event time (also in the payload's `ts`).
    pub ts: Timestamp,
    /// The exact v1 payload object.
    pub payload: Value,
}

impl WireMessage {
    /// The MQTT topic, `fixahead/v1/{device_id}/{telemetry|fault}`.
    pub fn topic(&self) -> String {
        self.kind.topic(&self.device_id)
    }

    /// The payload as compact JSON bytes.
    pub fn payload_bytes(&self) -> Vec<u8> {
        // Serialising a `Value` cannot fail: its map keys are strings.
        serde_json::to_vec(&self.payload).unwrap_or_default()
    }

    /// The payload's `seq`.
    pub fn seq(&self) -> u64 {
        self.payload.get("seq").and_then(Value::as_u64).unwrap_or(0)
    }
}

/// Whether a ground-truth event is a failure or a repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroundTruthKind {
    /// The component stopped working.
    Failure,
    /// The component was repaired and is healthy again.
    Repair,
}

impl GroundTruthKind {
    /// Wire name (`failure`, `repair`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::Repair => "repair",
        }
    }
}

/// A component failure or repair, as written to `events.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthEvent {
    /// The device.
    pub device_id: DeviceId,
    /// When it happened (RFC 3339 in JSON).
    #[serde(with = "rfc3339")]
    pub ts: Timestamp,
    /// Failure or repair.
    pub event: GroundTruthKind,
    /// Component name from the device's profile (`drain_pump`).
    pub component: String,
    /// Failure mode (`clog`, `bearing_wear`, `sudden`, ...); a repair repeats the mode
    /// of the failure it fixes.
    pub mode: String,
}

/// A simulated device's registry entry, as written to `devices.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device id (`wm-0001`).
    pub device_id: DeviceId,
    /// Device type, a profile key (`washer`).
    #[serde(rename = "type")]
    pub device_type: String,
    /// Product model (`WM-500`).
    pub model: String,
    /// Firmware version (`2.4.1`).
    pub fw: String,
    /// Sales region (`north`).
    pub region: String,
    /// Production batch (`B2025-07`).
    pub batch: String,
    /// When the appliance was installed (RFC 3339 in JSON).
    #[serde(with = "rfc3339")]
    pub installed_at: Timestamp,
    /// Installation quality: `ok`, or a poor installation that shifts readings without
    /// any component failing (`sagging_drain_hose`, `low_voltage`, `poor_ventilation`).
    /// Ground truth for false alarms; a device does not report it.
    #[serde(default = "installation_ok")]
    pub installation: String,
    /// The device's sensor fault episode, if it has one: a channel that reads wrong for
    /// a while although no component is failing. Ground truth for false alarms.
    #[serde(default)]
    pub sensor_fault: Option<SensorFaultInfo>,
}

fn installation_ok() -> String {
    "ok".to_owned()
}

/// How a faulty sensor misreports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorFaultKind {
    /// The channel repeats one value.
    Stuck,
    /// The channel is missing from `readings`.
    Dropout,
    /// Some readings are plausible but wrong values, still within the physical range.
    Spike,
}

/// A sensor fault episode, as written to `devices.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensorFaultInfo {
    /// The affected channel.
    pub channel: String,
    /// How it misreports.
    pub kind: SensorFaultKind,
    /// Start of the episode (RFC 3339 in JSON).
    #[serde(with = "rfc3339")]
    pub from: Timestamp,
    /// End of the episode, exclusive (RFC 3339 in JSON).
    #[serde(with = "rfc3339")]
    pub to: Timestamp,
}

/// Serde helpers writing a [`Timestamp`] as RFC 3339 and reading RFC 3339 or epoch ms.
pub(crate) mod rfc3339 {
    use domain::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ts.to_rfc3339())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One component in a simulated device's self-test report (docs/protocol.md, "Commands").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentCheck {
    /// Component name from the profile.
    pub component: String,
    /// `ok`, `degraded` (measured over the limit) or `failed`.
    pub status: String,
    /// What the test measured (for the simulator: wear, 0 healthy to 1 failed).
    pub measured: f64,
    /// The limit `measured` is judged against.
    pub limit: f64,
    /// What `measured` is.
    pub quantity: String,
}
