//! What training reads ([`TrainingData`]) and the first step of training: the replay of
//! its messages through the feature engine, sampling feature rows per device type.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use domain::{DeviceId, Message, ProfileSet, Timestamp};

use super::{TrainParams, TrainProgress};
use crate::features::{DeviceState, FeatureSchema};
use crate::history::{self, HealthyCheck, HistoryEvent, HistoryStats};
use crate::Result;

/// Reads the messages of a training set: hands each decoded message to the callback,
/// in the order the feature engine should apply them, and reports what it read.
pub type MessageReader<'a> =
    Box<dyn FnOnce(&ProfileSet, &mut dyn FnMut(Message)) -> Result<HistoryStats> + 'a>;

/// Everything training reads, wherever it comes from: a history directory
/// ([`TrainingData::from_history`]) or the live stores (`fixahead train --from-store`
/// builds one from `hot.db` and the ticket outcomes in `tickets.db`, in memory).
pub struct TrainingData<'a> {
    /// Where the data comes from (a directory or a file), for messages and errors.
    pub origin: PathBuf,
    /// Where the labels come from, recorded in each artefact: `history` (`events.jsonl`)
    /// or `store` (ticket outcomes).
    pub label_source: String,
    /// The profiles the messages are decoded and featurised with.
    pub profiles: ProfileSet,
    /// Failures and repairs, any order.
    pub events: Vec<HistoryEvent>,
    /// Event records that were unusable and skipped.
    pub rejected_events: u64,
    /// No-fault-found checks: negatives kept near the check (see the crate docs).
    pub healthy_checks: Vec<HealthyCheck>,
    /// The messages.
    pub messages: MessageReader<'a>,
}

impl TrainingData<'static> {
    /// A history directory (docs/history-format.md): `base` overridden by its
    /// `profiles/`, its `events.jsonl` and its `telemetry.jsonl` in file order.
    pub fn from_history(history_dir: &Path, base: &ProfileSet) -> Result<Self> {
        let profiles = history::load_profiles(history_dir, base)?;
        let (events, rejected_events) = history::load_events(history_dir)?;
        let dir = history_dir.to_owned();
        Ok(Self {
            origin: history_dir.to_owned(),
            label_source: LABELS_FROM_HISTORY.into(),
            profiles,
            events,
            rejected_events,
            healthy_checks: Vec::new(),
            messages: Box::new(move |profiles, f| history::for_each_message(&dir, profiles, f)),
        })
    }
}

/// [`LabelSummary::source`](crate::LabelSummary::source) of a model trained on a history
/// directory's `events.jsonl`.
pub const LABELS_FROM_HISTORY: &str = "history";
/// [`LabelSummary::source`](crate::LabelSummary::source) of a model trained on ticket
/// outcomes (`--from-store`).
pub const LABELS_FROM_STORE: &str = "store";

/// Feature rows of one device type, stored compactly (f32 row-major).
pub(super) struct TypeRows {
    pub(super) schema: FeatureSchema,
    feats: Vec<f32>,
    pub(super) ts: Vec<i64>,
    pub(super) dev: Vec<u32>,
    /// Position of the row among its device's rows.
    pub(super) seq: Vec<u32>,
    pub(super) devices: HashSet<u32>,
}

impl TypeRows {
    fn new(schema: &FeatureSchema) -> TypeRows {
        TypeRows {
            schema: schema.clone(),
            feats: Vec::new(),
            ts: Vec::new(),
            dev: Vec::new(),
            seq: Vec::new(),
            devices: HashSet::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ts.len()
    }

    pub(super) fn row(&self, i: usize) -> &[f32] {
        let d = self.schema.len();
        &self.feats[i * d..(i + 1) * d]
    }
}

/// One device's feature state during the replay.
pub(super) struct Device {
    /// The type the device last reported.
    pub(super) type_name: String,
    state: DeviceState,
    last_row_ms: Option<i64>,
    idx: u32,
    /// Rows sampled so far.
    rows: u32,
}

/// What the replay of a training set's messages gave.
pub(super) struct Sampled {
    /// Feature rows per device type.
    pub(super) types: BTreeMap<String, TypeRows>,
    /// Every device seen; its index in `device_ids` is its number in the rows.
    pub(super) devices: HashMap<DeviceId, Device>,
    /// Devices in the order they first reported.
    pub(super) device_ids: Vec<DeviceId>,
    /// The time range of the messages training reads (the test period excluded).
    pub(super) read_range: Option<(Timestamp, Timestamp)>,
    /// What reading the messages found.
    pub(super) stats: HistoryStats,
}

/// Replays the messages through the feature engine, sampling a row of each warm device
/// at most once per `sample_interval_ms`; messages at or after `test_from_ms` are not
/// read. Reports progress every 100,000 messages.
pub(super) fn sample_rows(
    read_messages: MessageReader<'_>,
    profiles: &ProfileSet,
    params: &TrainParams,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<Sampled> {
    let mut sampler = Sampler {
        profiles,
        sample_interval_ms: params.sample_interval_ms,
        test_from: params.test_from_ms.unwrap_or(i64::MAX),
        schemas: HashMap::new(),
        types: BTreeMap::new(),
        devices: HashMap::new(),
        device_ids: Vec::new(),
        scratch: Vec::new(),
        read_range: None,
    };
    let mut messages = 0u64;
    let mut next_report = 100_000u64;
    let stats = read_messages(profiles, &mut |msg| {
        messages += 1;
        if messages >= next_report {
            next_report += 100_000;
            progress(TrainProgress::Reading { messages });
        }
        sampler.observe(&msg);
    })?;
    Ok(Sampled {
        types: sampler.types,
        devices: sampler.devices,
        device_ids: sampler.device_ids,
        read_range: sampler.read_range,
        stats,
    })
}

/// The replay's state: every device's features and the rows sampled so far.
struct Sampler<'p> {
    profiles: &'p ProfileSet,
    sample_interval_ms: i64,
    test_from: i64,
    schemas: HashMap<String, FeatureSchema>,
    types: BTreeMap<String, TypeRows>,
    devices: HashMap<DeviceId, Device>,
    device_ids: Vec<DeviceId>,
    scratch: Vec<f64>,
    read_range: Option<(Timestamp, Timestamp)>,
}

impl Sampler<'_> {
    /// Applies one message to its device and samples a row when one is due.
    fn observe(&mut self, msg: &Message) {
        let (device_type, ts) = match msg {
            Message::Telemetry(t) => (t.device.device_type.as_str(), t.ts),
            Message::Fault(f) => (f.device.device_type.as_str(), f.ts),
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => return,
        };
        if ts.0 >= self.test_from {
            return;
        }
        self.read_range = Some(match self.read_range {
            None => (ts, ts),
            Some((lo, hi)) => (lo.min(ts), hi.max(ts)),
        });
        let Some(profile) = self.profiles.get(device_type) else {
            return;
        };
        let schema = self
            .schemas
            .entry(device_type.to_owned())
            .or_insert_with(|| FeatureSchema::for_profile(profile));
        let dev = match self.devices.get_mut(msg.device_id()) {
            Some(d) => d,
            None => {
                let idx = self.device_ids.len() as u32;
                self.device_ids.push(msg.device_id().clone());
                self.devices
                    .entry(msg.device_id().clone())
                    .or_insert(Device {
                        type_name: device_type.to_owned(),
                        state: DeviceState::new(schema),
                        last_row_ms: None,
                        idx,
                        rows: 0,
                    })
            }
        };
        if dev.type_name != device_type {
            // A device that changes type starts over with the new type's features.
            dev.type_name = device_type.to_owned();
            dev.state = DeviceState::new(schema);
            dev.last_row_ms = None;
        }
        if !dev.state.update(msg) || !dev.state.is_warm() {
            return;
        }
        if dev
            .last_row_ms
            .is_some_and(|last| ts.0.saturating_sub(last) < self.sample_interval_ms)
        {
            return;
        }
        dev.last_row_ms = Some(ts.0);
        let rows = self
            .types
            .entry(device_type.to_owned())
            .or_insert_with(|| TypeRows::new(schema));
        self.scratch.resize(schema.len(), 0.0);
        dev.state.write_features(&mut self.scratch);
        rows.feats.extend(self.scratch.iter().map(|&x| x as f32));
        rows.ts.push(ts.0);
        rows.dev.push(dev.idx);
        rows.seq.push(dev.rows);
        dev.rows = dev.rows.saturating_add(1);
        rows.devices.insert(dev.idx);
    }
}
