//! Wire protocol v1: topics and payloads, and the pure function that turns a received
//! MQTT message into either a typed [`Message`] or a [`Rejection`] with a reason.
//!
//! docs/protocol.md is the contract; keep the two in step.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{DeviceId, ProfileSet, Timestamp};

/// Largest accepted payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
/// Topic prefix of protocol v1.
pub const TOPIC_PREFIX: &str = "fixahead/v1/";
/// Most readings one telemetry message may carry.
pub const MAX_READINGS: usize = 256;

/// Which of a device's topics a message arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// `fixahead/v1/{id}/telemetry`
    Telemetry,
    /// `fixahead/v1/{id}/fault`
    Fault,
    /// `fixahead/v1/{id}/status` (retained)
    Status,
    /// `fixahead/v1/{id}/cmd`: a command fixahead sends the device. Ingest sees its own
    /// commands through `fixahead/v1/+/+` and ignores them.
    Command,
    /// `fixahead/v1/{id}/cmd/result`: the device's answer to a command.
    CommandResult,
}

impl MessageKind {
    /// The topic's last segment.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Fault => "fault",
            Self::Status => "status",
            Self::Command => "cmd",
            Self::CommandResult => "cmd/result",
        }
    }

    /// The topic a device publishes this kind of message on.
    pub fn topic(self, device_id: &DeviceId) -> String {
        format!("{TOPIC_PREFIX}{device_id}/{}", self.as_str())
    }

    /// The subscription filter covering every device's messages of this kind.
    pub fn filter(self) -> String {
        format!("{TOPIC_PREFIX}+/{}", self.as_str())
    }

    /// The kinds a device publishes as data (telemetry, faults, status).
    pub const ALL: [MessageKind; 3] = [Self::Telemetry, Self::Fault, Self::Status];
}

/// The command names fixahead sends on `fixahead/v1/{id}/cmd`.
pub const COMMANDS: [&str; 1] = ["self_test"];

/// A command for a device, the payload of `fixahead/v1/{id}/cmd` (docs/protocol.md,
/// "Commands").
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct CommandRequest {
    /// The command's id; the answer carries it back.
    pub id: i64,
    /// The command, one of [`COMMANDS`].
    pub command: String,
    /// When fixahead sent it.
    pub issued_at: Timestamp,
    /// Answers arriving after this time are recorded as late; the command is `timed_out`.
    pub deadline: Timestamp,
}

/// How a device says a command went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// The command ran; `report` holds what it found.
    Ok,
    /// The device could not run it; `error` says why.
    Error,
}

/// A validated answer to a command (`fixahead/v1/{id}/cmd/result`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandResult {
    /// The device, from the topic.
    pub device_id: DeviceId,
    /// The id of the command answered.
    pub id: i64,
    /// Whether it ran.
    pub status: CommandOutcome,
    /// Device time of the answer, if sent.
    pub ts: Option<Timestamp>,
    /// The report (a JSON object), with `ok`.
    pub report: Option<Value>,
    /// Why it failed, with `error`.
    pub error: Option<String>,
    /// When fixahead received it: not from the payload, set by ingest after decoding.
    pub received_at: Option<Timestamp>,
}

/// What a device says about itself in every telemetry and fault message: its type,
/// model, firmware, production batch and region (the payload's `type`, `model`, `fw`,
/// `batch`, `region`). The hot store keeps the latest one per device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Device type, a key of the profile set.
    #[serde(rename = "type")]
    pub device_type: String,
    /// Product model.
    pub model: String,
    /// Firmware version, if reported.
    pub fw: Option<String>,
    /// Production batch, if reported (`B2025-07`).
    pub batch: Option<String>,
    /// Sales or installation region, if reported (`north`).
    pub region: Option<String>,
}

/// A validated telemetry message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Telemetry {
    /// The device, from the topic.
    pub device_id: DeviceId,
    /// Event time, from the device.
    pub ts: Timestamp,
    /// The device's sequence number; `(device_id, seq)` is unique.
    pub seq: u64,
    /// The device's type, model, firmware, batch and region.
    #[serde(flatten)]
    pub device: DeviceInfo,
    /// Readings in payload order. Channels the profile knows are range-checked; others
    /// are kept (new firmware may add channels) but not used for features.
    pub readings: Vec<(String, f64)>,
}

/// Whether a fault code was raised or cleared.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultState {
    /// The fault began.
    Raised,
    /// The fault ended.
    Cleared,
}

impl FaultState {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Cleared => "cleared",
        }
    }
}

/// A validated fault message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultMessage {
    /// The device, from the topic.
    pub device_id: DeviceId,
    /// Event time, from the device.
    pub ts: Timestamp,
    /// The device's sequence number.
    pub seq: u64,
    /// The device's type, model, firmware, batch and region.
    #[serde(flatten)]
    pub device: DeviceInfo,
    /// The fault code. Codes missing from the catalogue are stored, not rejected.
    pub code: String,
    /// Raised or cleared.
    pub state: FaultState,
}

/// A device's online/offline status (its last will says `offline`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusMessage {
    /// The device, from the topic.
    pub device_id: DeviceId,
    /// Whether the device says it is online.
    pub online: bool,
    /// Event time, if the payload carried one.
    pub ts: Option<Timestamp>,
}

/// A validated message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Message {
    /// Sensor readings.
    Telemetry(Telemetry),
    /// A fault code raised or cleared.
    Fault(FaultMessage),
    /// Online/offline.
    Status(StatusMessage),
    /// A command fixahead published (seen by ingest's own subscription); not stored.
    Command(DeviceId),
    /// A device's answer to a command.
    CommandResult(CommandResult),
}

impl Message {
    /// The device the message belongs to.
    pub fn device_id(&self) -> &DeviceId {
        match self {
            Self::Telemetry(t) => &t.device_id,
            Self::Fault(f) => &f.device_id,
            Self::Status(s) => &s.device_id,
            Self::Command(d) => d,
            Self::CommandResult(r) => &r.device_id,
        }
    }

    /// Event time, where the message carries one.
    pub fn ts(&self) -> Option<Timestamp> {
        match self {
            Self::Telemetry(t) => Some(t.ts),
            Self::Fault(f) => Some(f.ts),
            Self::Status(s) => s.ts,
            Self::Command(_) => None,
            Self::CommandResult(r) => r.ts,
        }
    }
}

/// Why a message was rejected. The `snake_case` name is stable: it is the dead-letter
/// `reason`, the label of the rejection counter and part of docs/protocol.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The topic is not `fixahead/v1/{device_id}/{telemetry|fault|status}` with a valid id.
    InvalidTopic,
    /// The payload is larger than [`MAX_PAYLOAD_BYTES`].
    PayloadTooLarge,
    /// The payload is empty.
    EmptyPayload,
    /// The payload is not UTF-8.
    InvalidUtf8,
    /// The payload is not JSON.
    MalformedJson,
    /// The payload is JSON but not an object.
    NotAnObject,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field has the right type but a value outside its set or shape.
    InvalidValue,
    /// `ts` is neither RFC 3339 nor integer epoch milliseconds.
    InvalidTimestamp,
    /// A reading is NaN, infinite, or too large for a double.
    NonFiniteReading,
    /// A reading lies outside its channel's physical range.
    OutOfRange,
    /// `type` names no known device profile.
    UnknownDeviceType,
    /// The payload's `device_id` differs from the topic's.
    DeviceMismatch,
}

impl RejectReason {
    /// Every reason, for counters and docs.
    pub const ALL: [RejectReason; 14] = [
        Self::InvalidTopic,
        Self::PayloadTooLarge,
        Self::EmptyPayload,
        Self::InvalidUtf8,
        Self::MalformedJson,
        Self::NotAnObject,
        Self::MissingField,
        Self::WrongType,
        Self::InvalidValue,
        Self::InvalidTimestamp,
        Self::NonFiniteReading,
        Self::OutOfRange,
        Self::UnknownDeviceType,
        Self::DeviceMismatch,
    ];

    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidTopic => "invalid_topic",
            Self::PayloadTooLarge => "payload_too_large",
            Self::EmptyPayload => "empty_payload",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::MalformedJson => "malformed_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::InvalidValue => "invalid_value",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::NonFiniteReading => "non_finite_reading",
            Self::OutOfRange => "out_of_range",
            Self::UnknownDeviceType => "unknown_device_type",
            Self::DeviceMismatch => "device_mismatch",
        }
    }

    /// Position in [`RejectReason::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected message: a stable reason and a sentence a person can act on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejection {
    /// Stable reason code.
    pub reason: RejectReason,
    /// What exactly was wrong.
    pub detail: String,
    /// The device, when the topic named a valid one.
    pub device_id: Option<DeviceId>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// Splits a v1 topic into device id and kind.
pub fn parse_topic(topic: &str) -> Result<(DeviceId, MessageKind), String> {
    let rest = topic
        .strip_prefix(TOPIC_PREFIX)
        .ok_or_else(|| format!("topic must start with {TOPIC_PREFIX}"))?;
    let (id, kind) = rest
        .split_once('/')
        .ok_or_else(|| "topic must be fixahead/v1/{device_id}/{kind}".to_owned())?;
    let kind = match kind {
        "telemetry" => MessageKind::Telemetry,
        "fault" => MessageKind::Fault,
        "status" => MessageKind::Status,
        "cmd" => MessageKind::Command,
        "cmd/result" => MessageKind::CommandResult,
        other => {
            return Err(format!(
                "unknown message kind {:?}: expected telemetry, fault, status or cmd/result",
                truncate(other, 40)
            ))
        }
    };
    let id = DeviceId::parse(id).map_err(|e| e.to_string())?;
    Ok((id, kind))
}

/// Decodes and validates one received message.
///
/// Never panics, whatever the bytes: every failure is a [`Rejection`].
pub fn decode(topic: &str, payload: &[u8], profiles: &ProfileSet) -> Result<Message, Rejection> {
    let (device_id, kind) = parse_topic(topic).map_err(|detail| Rejection {
        reason: RejectReason::InvalidTopic,
        detail,
        device_id: None,
    })?;
    let reject = |reason: RejectReason, detail: String| Rejection {
        reason,
        detail,
        device_id: Some(device_id.clone()),
    };
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(reject(
            RejectReason::PayloadTooLarge,
            format!(
                "payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
                payload.len()
            ),
        ));
    }
    if payload.is_empty() {
        return Err(reject(
            RejectReason::EmptyPayload,
            "payload is empty".into(),
        ));
    }
    let text = std::str::from_utf8(payload).map_err(|e| {
        reject(
            RejectReason::InvalidUtf8,
            format!("payload is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;

    if kind == MessageKind::Command {
        // fixahead's own command, echoed by the broker: nothing to validate or keep.
        return Ok(Message::Command(device_id));
    }
    if kind == MessageKind::Status {
        if let Some(online) = plain_status(text) {
            return Ok(Message::Status(StatusMessage {
                device_id,
                online,
                ts: None,
            }));
        }
    }

    let (value, had_non_finite) = match serde_json::from_str::<Value>(text) {
        Ok(v) => (v, false),
        Err(e) if e.to_string().contains("number out of range") => {
            return Err(reject(
                RejectReason::NonFiniteReading,
                format!("a number does not fit a double ({e})"),
            ))
        }
        Err(e) => match replace_non_finite_tokens(text) {
            Some(sanitised) => match serde_json::from_str::<Value>(&sanitised) {
                Ok(v) => (v, true),
                Err(_) => return Err(reject(RejectReason::MalformedJson, e.to_string())),
            },
            None => return Err(reject(RejectReason::MalformedJson, e.to_string())),
        },
    };
    let Value::Object(obj) = value else {
        return Err(reject(
            RejectReason::NotAnObject,
            format!("payload must be a JSON object, got {}", json_type(&value)),
        ));
    };
    let fields = Fields {
        obj: &obj,
        had_non_finite,
    };
    fields
        .check_device_id(&device_id)
        .and_then(|()| match kind {
            MessageKind::Telemetry => fields
                .telemetry(&device_id, profiles)
                .map(Message::Telemetry),
            MessageKind::Fault => fields.fault(&device_id, profiles).map(Message::Fault),
            MessageKind::Status => fields.status(&device_id).map(Message::Status),
            MessageKind::CommandResult => fields
                .command_result(&device_id)
                .map(Message::CommandResult),
            MessageKind::Command => Ok(Message::Command(device_id.clone())),
        })
        .map_err(|(reason, detail)| reject(reason, detail))
}

type FieldResult<T> = Result<T, (RejectReason, String)>;

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    had_non_finite: bool,
}

/// What telemetry and fault messages both carry after the device id.
struct Header {
    ts: Timestamp,
    seq: u64,
    device: DeviceInfo,
}

impl Fields<'_> {
    fn check_device_id(&self, topic_id: &DeviceId) -> FieldResult<()> {
        match self.obj.get("device_id") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(s)) if s == topic_id.as_str() => Ok(()),
            Some(Value::String(s)) => Err((
                RejectReason::DeviceMismatch,
                format!(
                    "payload device_id {:?} differs from topic device id {:?}",
                    truncate(s, 64),
                    topic_id.as_str()
                ),
            )),
            Some(other) => Err(wrong_type("device_id", "a string", other)),
        }
    }

    fn required(&self, name: &'static str) -> FieldResult<&Value> {
        match self.obj.get(name) {
            Some(v) => Ok(v),
            None => Err((
                RejectReason::MissingField,
                format!("required field `{name}` is missing"),
            )),
        }
    }

    fn string(&self, name: &'static str, max_len: usize) -> FieldResult<String> {
        match self.required(name)? {
            Value::String(s) if !s.is_empty() && s.len() <= max_len => Ok(s.clone()),
            Value::String(s) => Err((
                RejectReason::InvalidValue,
                format!("`{name}` must be 1-{max_len} bytes, got {} bytes", s.len()),
            )),
            other => Err(wrong_type(name, "a string", other)),
        }
    }

    fn optional_string(&self, name: &'static str, max_len: usize) -> FieldResult<Option<String>> {
        self.optional(name, |_| self.string(name, max_len))
    }

    /// An optional field: absent or `null` is `None`, any other value must `read` well.
    fn optional<T>(
        &self,
        name: &str,
        read: impl FnOnce(&Value) -> FieldResult<T>,
    ) -> FieldResult<Option<T>> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => read(v).map(Some),
        }
    }

    /// A string field that must be exactly one of two `choices`.
    fn one_of<T: Copy>(&self, name: &'static str, choices: [(&str, T); 2]) -> FieldResult<T> {
        let [(a, x), (b, y)] = choices;
        let expected = format!("{a:?} or {b:?}");
        match self.required(name)? {
            Value::String(s) if s == a => Ok(x),
            Value::String(s) if s == b => Ok(y),
            Value::String(s) => Err((
                RejectReason::InvalidValue,
                format!("`{name}` must be {expected}, got {:?}", truncate(s, 32)),
            )),
            other => Err(wrong_type(name, &expected, other)),
        }
    }

    /// NaN or Infinity anywhere in the payload (read as `null`) rejects it: not JSON.
    fn finite(&self) -> FieldResult<()> {
        if self.had_non_finite {
            return Err((
                RejectReason::NonFiniteReading,
                "payload contains NaN or Infinity, which JSON does not allow".into(),
            ));
        }
        Ok(())
    }

    fn ts(&self) -> FieldResult<Timestamp> {
        match self.required("ts")? {
            Value::String(s) => {
                Timestamp::parse(s).map_err(|e| (RejectReason::InvalidTimestamp, e.to_string()))
            }
            Value::Number(n) => n.as_i64().map(Timestamp).ok_or_else(|| {
                (
                    RejectReason::InvalidTimestamp,
                    format!("`ts` {n} is not an integer number of epoch milliseconds"),
                )
            }),
            other => Err(wrong_type(
                "ts",
                "an RFC 3339 string or integer epoch milliseconds",
                other,
            )),
        }
    }

    fn seq(&self) -> FieldResult<u64> {
        match self.required("seq")? {
            Value::Number(n) => n.as_u64().ok_or_else(|| {
                (
                    RejectReason::InvalidValue,
                    format!("`seq` must be a non-negative integer, got {n}"),
                )
            }),
            other => Err(wrong_type("seq", "a non-negative integer", other)),
        }
    }

    fn device_type(&self, profiles: &ProfileSet) -> FieldResult<String> {
        let t = self.string("type", 64)?;
        if profiles.get(&t).is_none() {
            let known: Vec<&str> = profiles.types().collect();
            return Err((
                RejectReason::UnknownDeviceType,
                format!(
                    "device type {:?} has no profile (known: {})",
                    truncate(&t, 64),
                    known.join(", ")
                ),
            ));
        }
        Ok(t)
    }

    /// The fields telemetry and faults share, in the order they are checked.
    fn header(&self, profiles: &ProfileSet) -> FieldResult<Header> {
        Ok(Header {
            ts: self.ts()?,
            seq: self.seq()?,
            device: DeviceInfo {
                device_type: self.device_type(profiles)?,
                model: self.string("model", 64)?,
                fw: self.optional_string("fw", 64)?,
                batch: self.optional_string("batch", 64)?,
                region: self.optional_string("region", 64)?,
            },
        })
    }

    fn telemetry(&self, device_id: &DeviceId, profiles: &ProfileSet) -> FieldResult<Telemetry> {
        let h = self.header(profiles)?;
        let readings_obj = match self.required("readings")? {
            Value::Object(m) => m,
            other => {
                return Err(wrong_type(
                    "readings",
                    "an object of channel -> number",
                    other,
                ))
            }
        };
        if readings_obj.is_empty() {
            return Err((
                RejectReason::InvalidValue,
                "`readings` must hold at least one reading".into(),
            ));
        }
        if readings_obj.len() > MAX_READINGS {
            return Err((
                RejectReason::InvalidValue,
                format!(
                    "`readings` holds {} readings; the limit is {MAX_READINGS}",
                    readings_obj.len()
                ),
            ));
        }
        let profile = profiles
            .get(&h.device.device_type)
            .expect("device_type() checked the profile exists");
        let mut readings = Vec::with_capacity(readings_obj.len());
        for (name, value) in readings_obj {
            if name.is_empty() || name.len() > 64 {
                return Err((
                    RejectReason::InvalidValue,
                    format!(
                        "channel names must be 1-64 bytes, got {:?}",
                        truncate(name, 64)
                    ),
                ));
            }
            let x = match value {
                Value::Number(n) => n.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                    (
                        RejectReason::NonFiniteReading,
                        format!("reading `{name}` = {n} is not a finite number"),
                    )
                })?,
                Value::Null if self.had_non_finite => {
                    return Err((
                        RejectReason::NonFiniteReading,
                        format!(
                            "reading `{name}` is NaN or infinite; readings must be finite numbers"
                        ),
                    ))
                }
                other => {
                    return Err((
                        RejectReason::WrongType,
                        format!(
                            "reading `{name}` must be a number, got {}",
                            json_type(other)
                        ),
                    ))
                }
            };
            if let Some(i) = profile.channel_index(name) {
                let ch = &profile.channels()[i];
                if x < ch.min || x > ch.max {
                    return Err((
                        RejectReason::OutOfRange,
                        format!(
                            "reading `{name}` = {x} {} is outside the physical range [{}, {}]",
                            ch.unit, ch.min, ch.max
                        ),
                    ));
                }
            }
            readings.push((name.clone(), x));
        }
        // NaN/Infinity appeared outside `readings` (e.g. in `seq`), which the typed
        // checks above would have reported; reaching here means it sat in an ignored
        // extra field. Still not JSON, so still rejected.
        self.finite()?;
        Ok(Telemetry {
            device_id: device_id.clone(),
            ts: h.ts,
            seq: h.seq,
            device: h.device,
            readings,
        })
    }

    fn fault(&self, device_id: &DeviceId, profiles: &ProfileSet) -> FieldResult<FaultMessage> {
        let h = self.header(profiles)?;
        let code = self.string("code", 32)?;
        let state = self.one_of(
            "state",
            [
                ("raised", FaultState::Raised),
                ("cleared", FaultState::Cleared),
            ],
        )?;
        self.finite()?;
        Ok(FaultMessage {
            device_id: device_id.clone(),
            ts: h.ts,
            seq: h.seq,
            device: h.device,
            code,
            state,
        })
    }

    fn status(&self, device_id: &DeviceId) -> FieldResult<StatusMessage> {
        // Exact in JSON, as for every other enumerated field; only the plain payload
        // forgives the whitespace a shell tool adds (`plain_status`).
        let online = self.one_of("state", [("online", true), ("offline", false)])?;
        let ts = self.optional("ts", |_| self.ts())?;
        // A NaN `ts` became null above and would read as "no ts": still not JSON.
        self.finite()?;
        Ok(StatusMessage {
            device_id: device_id.clone(),
            online,
            ts,
        })
    }
}

impl Fields<'_> {
    fn command_result(&self, device_id: &DeviceId) -> FieldResult<CommandResult> {
        self.finite()?;
        let id = match self.required("id")? {
            Value::Number(n) => n.as_i64().filter(|i| *i >= 1).ok_or_else(|| {
                (
                    RejectReason::InvalidValue,
                    format!("`id` must be a command id (an integer from 1), got {n}"),
                )
            })?,
            other => return Err(wrong_type("id", "an integer", other)),
        };
        let status = self.one_of(
            "status",
            [("ok", CommandOutcome::Ok), ("error", CommandOutcome::Error)],
        )?;
        let ts = self.optional("ts", |_| self.ts())?;
        let report = self.optional("report", |v| match v {
            Value::Object(_) => Ok(v.clone()),
            other => Err(wrong_type("report", "an object", other)),
        })?;
        let error = self.optional_string("error", 1000)?;
        match (status, &report, &error) {
            (CommandOutcome::Ok, None, _) => Err((
                RejectReason::MissingField,
                "required field `report` is missing (status \"ok\")".into(),
            )),
            (CommandOutcome::Error, _, None) => Err((
                RejectReason::MissingField,
                "required field `error` is missing (status \"error\")".into(),
            )),
            _ => Ok(CommandResult {
                device_id: device_id.clone(),
                id,
                status,
                ts,
                report,
                error,
                received_at: None,
            }),
        }
    }
}

/// A plain status payload: `online` or `offline`, with surrounding whitespace allowed
/// (`echo offline | mosquitto_pub -s` sends a line break).
fn plain_status(s: &str) -> Option<bool> {
    match s.trim() {
        "online" => Some(true),
        "offline" => Some(false),
        _ => None,
    }
}

fn wrong_type(name: &str, expected: &str, got: &Value) -> (RejectReason, String) {
    (
        RejectReason::WrongType,
        format!("`{name}` must be {expected}, got {}", json_type(got)),
    )
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Replaces bare `NaN`, `Infinity` and `-Infinity` tokens outside strings with `null`,
/// so a payload written by a JSON encoder that emits them (Python's `json.dumps` does)
/// is reported as a non-finite reading rather than as malformed JSON. Returns `None`
/// when there is no such token.
fn replace_non_finite_tokens(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut found = false;
    let mut i = 0;
    let mut copied_to = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        // Compare bytes: `i` may sit inside a multi-byte character (outside a string
        // in malformed JSON), where slicing the `str` would panic. A match starts with
        // an ASCII byte, so `i` is a character boundary whenever one is found.
        let rest = &bytes[i..];
        let token_len = ["-Infinity", "+Infinity", "Infinity", "-NaN", "NaN"]
            .iter()
            .find(|t| rest.starts_with(t.as_bytes()))
            .map(|t| t.len());
        if let Some(len) = token_len {
            out.push_str(&text[copied_to..i]);
            out.push_str("null");
            i += len;
            copied_to = i;
            found = true;
            continue;
        }
        i += 1;
    }
    if !found {
        return None;
    }
    out.push_str(&text[copied_to..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> ProfileSet {
        ProfileSet::builtin()
    }

    const TOPIC: &str = "fixahead/v1/wm-1/telemetry";

    fn reason(topic: &str, payload: &str) -> RejectReason {
        decode(topic, payload.as_bytes(), &profiles())
            .expect_err("should be rejected")
            .reason
    }

    #[test]
    fn decodes_the_documented_example() {
        let payload = r#"{"ts": "2026-11-24T06:00:00Z", "seq": 18342, "type": "washer", "model": "WM-500",
            "fw": "2.4.1", "readings": {"motor_current_a": 3.42, "vibration_g": 0.118,
            "water_temp_c": 40.2, "drain_time_s": 12.5, "new_channel": 7}, "extra": [1,2]}"#;
        let Message::Telemetry(t) = decode(TOPIC, payload.as_bytes(), &profiles()).unwrap() else {
            panic!("not telemetry")
        };
        assert_eq!(t.seq, 18342);
        assert_eq!(t.ts, Timestamp::parse("2026-11-24T06:00:00Z").unwrap());
        assert_eq!(t.readings.len(), 5, "unknown channels are kept");
        assert_eq!(t.device.fw.as_deref(), Some("2.4.1"));
    }

    #[test]
    fn batch_and_region_are_optional_strings_like_fw() {
        let t = r#"{"ts": 1795500000000, "seq": 1, "type": "washer", "model": "WM-500",
            "batch": "B2025-07", "region": "north", "readings": {"vibration_g": 0.1}}"#;
        let Ok(Message::Telemetry(t)) = decode(TOPIC, t.as_bytes(), &profiles()) else {
            panic!("not telemetry")
        };
        assert_eq!(t.device.batch.as_deref(), Some("B2025-07"));
        assert_eq!(t.device.region.as_deref(), Some("north"));
        let f = r#"{"ts": 1795500000000, "seq": 2, "type": "washer", "model": "WM-500",
            "region": "south", "code": "E21", "state": "raised"}"#;
        let Ok(Message::Fault(f)) = decode("fixahead/v1/wm-1/fault", f.as_bytes(), &profiles())
        else {
            panic!("not a fault")
        };
        assert_eq!(
            (f.device.batch, f.device.region.as_deref()),
            (None, Some("south"))
        );
        let long = "x".repeat(65);
        for field in ["batch", "region"] {
            let wrong = format!(
                r#"{{"ts": 1, "seq": 1, "type": "washer", "model": "M", "{field}": 7, "readings": {{"vibration_g": 0.1}}}}"#
            );
            assert_eq!(reason(TOPIC, &wrong), RejectReason::WrongType, "{field}");
            let too_long = format!(
                r#"{{"ts": 1, "seq": 1, "type": "washer", "model": "M", "{field}": "{long}", "readings": {{"vibration_g": 0.1}}}}"#
            );
            assert_eq!(
                reason(TOPIC, &too_long),
                RejectReason::InvalidValue,
                "{field}"
            );
        }
    }

    #[test]
    fn decodes_faults_and_status() {
        let f = r#"{"ts": 1795500000000, "seq": 2, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}"#;
        assert!(matches!(
            decode("fixahead/v1/wm-1/fault", f.as_bytes(), &profiles()),
            Ok(Message::Fault(FaultMessage {
                state: FaultState::Raised,
                ..
            }))
        ));
        assert!(matches!(
            decode("fixahead/v1/wm-1/status", b"offline", &profiles()),
            Ok(Message::Status(StatusMessage { online: false, .. }))
        ));
        assert!(matches!(
            decode(
                "fixahead/v1/wm-1/status",
                br#"{"state":"online"}"#,
                &profiles()
            ),
            Ok(Message::Status(StatusMessage { online: true, .. }))
        ));
    }

    #[test]
    fn every_rejection_has_its_own_reason() {
        let ok = r#""ts": 1, "seq": 1, "type": "washer", "model": "M""#;
        let cases = [
            (
                "fixahead/v1/bad.id/telemetry",
                format!("{{{ok}, \"readings\": {{\"vibration_g\": 1}}}}"),
                RejectReason::InvalidTopic,
            ),
            (TOPIC, "{\"ts\": 1,".into(), RejectReason::MalformedJson),
            (TOPIC, "[1,2]".into(), RejectReason::NotAnObject),
            (TOPIC, "".into(), RejectReason::EmptyPayload),
            (TOPIC, format!("{{{ok}}}"), RejectReason::MissingField),
            (
                TOPIC,
                format!("{{{ok}, \"readings\": {{\"vibration_g\": \"high\"}}}}"),
                RejectReason::WrongType,
            ),
            (
                TOPIC,
                format!("{{{ok}, \"readings\": {{\"vibration_g\": NaN}}}}"),
                RejectReason::NonFiniteReading,
            ),
            (
                TOPIC,
                format!("{{{ok}, \"readings\": {{\"vibration_g\": -Infinity}}}}"),
                RejectReason::NonFiniteReading,
            ),
            (
                TOPIC,
                format!("{{{ok}, \"readings\": {{\"vibration_g\": 1e999}}}}"),
                RejectReason::NonFiniteReading,
            ),
            (
                TOPIC,
                format!("{{{ok}, \"readings\": {{\"vibration_g\": 99}}}}"),
                RejectReason::OutOfRange,
            ),
            (
                TOPIC,
                format!("{{{ok}, \"device_id\": \"other\", \"readings\": {{\"vibration_g\": 1}}}}"),
                RejectReason::DeviceMismatch,
            ),
            (
                TOPIC,
                r#"{"ts": 1, "seq": 1, "type": "toaster", "model": "M", "readings": {"a": 1}}"#
                    .into(),
                RejectReason::UnknownDeviceType,
            ),
            (
                TOPIC,
                r#"{"ts": "soon", "seq": 1, "type": "washer", "model": "M", "readings": {"a": 1}}"#
                    .into(),
                RejectReason::InvalidTimestamp,
            ),
            (
                TOPIC,
                r#"{"ts": 1, "seq": -4, "type": "washer", "model": "M", "readings": {"a": 1}}"#
                    .into(),
                RejectReason::InvalidValue,
            ),
            (
                TOPIC,
                r#"{"ts": 1, "seq": "4", "type": "washer", "model": "M", "readings": {"a": 1}}"#
                    .into(),
                RejectReason::WrongType,
            ),
        ];
        for (topic, payload, want) in cases {
            assert_eq!(reason(topic, &payload), want, "{payload}");
        }
        assert_eq!(
            decode(TOPIC, &[b'{'; MAX_PAYLOAD_BYTES + 1], &profiles())
                .unwrap_err()
                .reason,
            RejectReason::PayloadTooLarge
        );
        assert_eq!(
            decode(TOPIC, &[0xff, 0xfe], &profiles())
                .unwrap_err()
                .reason,
            RejectReason::InvalidUtf8
        );
    }

    #[test]
    fn nan_inside_strings_is_not_a_number() {
        let p = r#"{"ts": 1, "seq": 1, "type": "washer", "model": "NaN-Infinity", "readings": {"vibration_g": 1}}"#;
        assert!(decode(TOPIC, p.as_bytes(), &profiles()).is_ok());
    }

    #[test]
    fn multi_byte_characters_outside_strings_do_not_panic() {
        // Found by tests/fuzz_decode.rs: malformed JSON with a multi-byte character
        // outside a string sent the NaN scan into the middle of the character.
        for p in [
            "\u{e9}x",
            "{\"a\": \u{1f600}NaN}",
            "NaN\u{1f600}",
            "[\u{20ac}Infinity]",
        ] {
            for topic in [TOPIC, "fixahead/v1/wm-1/status"] {
                assert_eq!(reason(topic, p), RejectReason::MalformedJson, "{p}");
            }
        }
    }

    #[test]
    fn a_json_status_state_is_exact_and_a_plain_one_may_carry_whitespace() {
        // Found by tests/fuzz_decode.rs: `{"state": "offline "}` was accepted.
        for p in [r#"{"state": "offline "}"#, r#"{"state": " online"}"#] {
            assert_eq!(
                reason("fixahead/v1/wm-1/status", p),
                RejectReason::InvalidValue,
                "{p}"
            );
        }
        for (p, online) in [("offline\n", false), (" online ", true)] {
            let Message::Status(s) =
                decode("fixahead/v1/wm-1/status", p.as_bytes(), &profiles()).unwrap()
            else {
                panic!("not a status")
            };
            assert_eq!(s.online, online, "{p:?}");
        }
    }

    #[test]
    fn status_with_nan_is_rejected() {
        // Found by tests/fuzz_decode.rs: NaN in a status payload (as `ts` or an extra
        // field) was read as null and the message accepted.
        for p in [
            r#"{"state": "online", "ts": NaN}"#,
            r#"{"state": "offline", "x": -Infinity}"#,
        ] {
            assert_eq!(
                reason("fixahead/v1/wm-1/status", p),
                RejectReason::NonFiniteReading,
                "{p}"
            );
        }
    }

    #[test]
    fn enumerated_fields_say_what_they_accept() {
        let detail = |topic: &str, payload: &str| {
            decode(topic, payload.as_bytes(), &profiles())
                .expect_err("should be rejected")
                .detail
        };
        let fault = |state: &str| {
            format!(
                r#"{{"ts": 1, "seq": 1, "type": "washer", "model": "M", "code": "E1", "state": {state}}}"#
            )
        };
        let (status, result) = ("fixahead/v1/wm-1/status", "fixahead/v1/wm-1/cmd/result");
        for (topic, payload, want) in [
            (
                "fixahead/v1/wm-1/fault",
                fault(r#""open""#),
                r#"`state` must be "raised" or "cleared", got "open""#,
            ),
            (
                "fixahead/v1/wm-1/fault",
                fault("1"),
                r#"`state` must be "raised" or "cleared", got a number"#,
            ),
            (
                status,
                r#"{"state": "up"}"#.into(),
                r#"`state` must be "online" or "offline", got "up""#,
            ),
            (
                status,
                r#"{"state": true}"#.into(),
                r#"`state` must be "online" or "offline", got a boolean"#,
            ),
            (
                result,
                r#"{"id": 1, "status": "done"}"#.into(),
                r#"`status` must be "ok" or "error", got "done""#,
            ),
            (
                result,
                r#"{"id": 1, "status": null}"#.into(),
                r#"`status` must be "ok" or "error", got null"#,
            ),
            (
                result,
                r#"{"id": 1, "status": "ok", "report": []}"#.into(),
                "`report` must be an object, got an array",
            ),
            (
                result,
                r#"{"id": 1, "status": "error", "error": ""}"#.into(),
                "`error` must be 1-1000 bytes, got 0 bytes",
            ),
        ] {
            assert_eq!(detail(topic, &payload), want, "{payload}");
        }
    }

    #[test]
    fn a_duplicated_key_counts_with_its_last_value() {
        let p = r#"{"ts": 1, "seq": "x", "type": "washer", "model": "M", "seq": 7,
            "readings": {"vibration_g": 99, "vibration_g": 0.5}}"#;
        let Message::Telemetry(t) = decode(TOPIC, p.as_bytes(), &profiles()).unwrap() else {
            panic!("not telemetry")
        };
        assert_eq!(t.seq, 7);
        assert_eq!(t.readings, vec![("vibration_g".to_owned(), 0.5)]);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix and many byte flips of a valid payload.
        let valid = br#"{"ts": "2026-11-24T06:00:00Z", "seq": 1, "type": "washer", "model": "M", "readings": {"vibration_g": 0.5}}"#;
        let set = profiles();
        for end in 0..valid.len() {
            let _ = decode(TOPIC, &valid[..end], &set);
        }
        let mut state: u32 = 7;
        for _ in 0..5000 {
            let mut p = valid.to_vec();
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (state as usize >> 8) % p.len();
            p[i] = (state >> 16) as u8;
            let _ = decode(TOPIC, &p, &set);
        }
    }
}
