//! Live scoring: messages in, one [`Prediction`] per modelled component out.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use domain::{Contribution, DeviceId, Message, Prediction, ProfileSet};

use crate::artifact::ModelArtifact;
use crate::drift::DriftMonitor;
use crate::features::{DeviceState, FeatureSchema};
use crate::history;
use crate::registry::ModelRegistry;

use crate::Result;

/// How many contributions a prediction explains itself with.
pub const TOP_FEATURES: usize = 5;

struct TypeCtx {
    schema: FeatureSchema,
    /// The active model, when one exists and its feature schema matches the profile's.
    model: Option<Arc<ModelArtifact>>,
    /// Changes whenever `model` changes; devices reset their persistence counters then.
    epoch: u32,
}

struct DeviceEntry {
    type_idx: u32,
    epoch: u32,
    state: DeviceState,
    /// Consecutive scores at or above the threshold, per component model.
    streaks: Box<[u16]>,
    /// Event time (epoch seconds) of the first score of each current streak.
    streak_since: Box<[i64]>,
    /// Per component model: the flag state (see [`latch`]).
    latches: Box<[FlagLatch]>,
}

impl DeviceEntry {
    /// A device of the type at `type_idx` (`ctx`), seen for the first time: an empty
    /// feature state, and counters made when its model first scores it.
    fn new(type_idx: u32, ctx: &TypeCtx) -> DeviceEntry {
        DeviceEntry {
            type_idx,
            epoch: ctx.epoch,
            state: DeviceState::new(&ctx.schema),
            streaks: Box::new([]),
            streak_since: Box::new([]),
            latches: Box::new([]),
        }
    }
}

/// Keeps every device's feature state and scores it with the active model of its type.
///
/// Feed it each device's messages in order (one worker per device partition,
/// invariant 3 "one device, one order"). A new model version activated in the [`ModelRegistry`] is used from the next
/// message on; the persistence counters of that type start over.
pub struct Scorer {
    registry: ModelRegistry,
    profiles: ProfileSet,
    seen_generation: u64,
    types: Vec<TypeCtx>,
    type_index: HashMap<String, u32, foldhash::fast::RandomState>,
    /// The hot lookup of every message: foldhash (seeded per process, so device ids
    /// chosen to collide cannot be precomputed) instead of SipHash.
    devices: HashMap<DeviceId, DeviceEntry, foldhash::fast::RandomState>,
    raw: Vec<f64>,
    z: Vec<f64>,
    contrib: Vec<f64>,
    drift: Option<DriftMonitor>,
}

impl Scorer {
    /// A scorer over a registry handle (clone it to keep reloading) and the profiles.
    pub fn new(registry: ModelRegistry, profiles: ProfileSet) -> Scorer {
        Scorer {
            seen_generation: registry.generation(),
            registry,
            profiles,
            types: Vec::new(),
            type_index: HashMap::default(),
            devices: HashMap::default(),
            raw: Vec::new(),
            z: Vec::new(),
            contrib: Vec::new(),
            drift: None,
        }
    }

    /// Counts every feature vector this scorer scores into `monitor`, the drift watch
    /// ([`crate::drift`]).
    pub fn with_drift(mut self, monitor: DriftMonitor) -> Scorer {
        self.drift = Some(monitor);
        self
    }

    /// Devices with state.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Estimated bytes of per-device state (feature state, counters, map entry).
    pub fn state_bytes(&self) -> usize {
        self.devices
            .iter()
            .map(|(id, e)| {
                std::mem::size_of::<(DeviceId, DeviceEntry)>()
                    + id.as_str().len()
                    + e.state.size_bytes()
                    + std::mem::size_of_val(&*e.streaks)
                    + std::mem::size_of_val(&*e.streak_since)
                    + std::mem::size_of_val(&*e.latches)
            })
            .sum()
    }

    /// The feature state of a device, if it has one.
    pub fn device_state(&self, device_id: &DeviceId) -> Option<&DeviceState> {
        self.devices.get(device_id).map(|e| &e.state)
    }

    fn type_ctx(&mut self, device_type: &str) -> Option<u32> {
        if let Some(&i) = self.type_index.get(device_type) {
            return Some(i);
        }
        let profile = self.profiles.get(device_type)?;
        let schema = FeatureSchema::for_profile(profile);
        let model = compatible(self.registry.get(device_type), &schema);
        let i = self.types.len() as u32;
        self.types.push(TypeCtx {
            schema,
            model,
            epoch: 0,
        });
        self.type_index.insert(device_type.to_owned(), i);
        Some(i)
    }

    fn refresh_models(&mut self) {
        let generation = self.registry.generation();
        if generation == self.seen_generation {
            return;
        }
        self.seen_generation = generation;
        for (device_type, &i) in &self.type_index {
            let ctx = &mut self.types[i as usize];
            let new = compatible(self.registry.get(device_type), &ctx.schema);
            let same = match (&ctx.model, &new) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                ctx.model = new;
                ctx.epoch = ctx.epoch.wrapping_add(1);
            }
        }
    }

    /// Applies a message to its device's state and scores the device.
    ///
    /// Returns one prediction per trained component of the device type's active model;
    /// nothing for status messages, unknown types, types without a model, and messages
    /// older than the device's latest (see [`DeviceState`]'s event-time rule).
    pub fn observe(&mut self, msg: &Message) -> Vec<Prediction> {
        let (device_type, ts) = match msg {
            Message::Telemetry(t) => (t.device.device_type.as_str(), t.ts),
            Message::Fault(f) => (f.device.device_type.as_str(), f.ts),
            Message::Status(_) | Message::Command(_) | Message::CommandResult(_) => {
                return Vec::new()
            }
        };
        self.refresh_models();
        let Some(type_idx) = self.type_ctx(device_type) else {
            return Vec::new();
        };
        let ctx = &self.types[type_idx as usize];
        let entry = match self.devices.get_mut(msg.device_id()) {
            Some(e) => e,
            None => self
                .devices
                .entry(msg.device_id().clone())
                .or_insert_with(|| DeviceEntry::new(type_idx, ctx)),
        };
        if entry.type_idx != type_idx {
            *entry = DeviceEntry::new(type_idx, ctx);
        }
        if !entry.state.update(msg) {
            return Vec::new();
        }
        let Some(model) = &ctx.model else {
            return Vec::new();
        };
        // Before the warm-up the statistical features still lean on the first readings,
        // so the risk cannot raise a flag; the fault-code rule can (the appliance's own
        // diagnosis needs no history), and only its flags are reported.
        let warm = entry.state.is_warm();
        if !warm && !model.components.iter().any(|c| c.fault_rule.is_some()) {
            return Vec::new();
        }
        if entry.epoch != ctx.epoch || entry.streaks.len() != model.components.len() {
            entry.epoch = ctx.epoch;
            entry.streaks = vec![0u16; model.components.len()].into_boxed_slice();
            entry.streak_since = vec![0i64; model.components.len()].into_boxed_slice();
            entry.latches = vec![FlagLatch::default(); model.components.len()].into_boxed_slice();
        }
        let d = model.feature_schema.len();
        self.raw.resize(d, 0.0);
        self.z.resize(d, 0.0);
        entry.state.write_features(&mut self.raw);
        if let (true, Some(drift)) = (warm, &self.drift) {
            drift.observe(model, ts, &self.raw);
        }
        model.standardize(&self.raw, &mut self.z);

        let mut out = Vec::with_capacity(model.components.len());
        for (ci, comp) in model.components.iter().enumerate() {
            if !comp.is_trained() {
                continue;
            }
            let was_up = entry.latches[ci].is_up();
            let fault_fires = comp
                .fault_rule
                .is_some_and(|r| r.fires_at(ts.millis(), &self.raw));
            if !warm && !was_up && !fault_fires {
                continue;
            }
            let risk = comp.risk_and_contributions(&self.z, &mut self.contrib);
            let streak = &mut entry.streaks[ci];
            *streak = if warm && risk >= comp.threshold {
                streak.saturating_add(1)
            } else {
                0
            };
            if *streak == 1 {
                entry.streak_since[ci] = ts.millis() / 1000;
            }
            let now_s = ts.millis() / 1000;
            let held_ms = now_s
                .saturating_sub(entry.streak_since[ci])
                .saturating_mul(1000);
            let raise = (u32::from(*streak) >= comp.persistence.max(1) && held_ms >= comp.hold_ms)
                || fault_fires;
            let flagged = latch(
                &mut entry.latches[ci],
                raise,
                *streak > 0,
                now_s,
                comp.release_ms,
                comp.expire_ms,
                |up_since_s| {
                    let slot = ctx
                        .schema
                        .components()
                        .iter()
                        .position(|c| *c == comp.component);
                    slot.and_then(|i| entry.state.last_repair_ms(i))
                        .is_some_and(|at| at / 1000 >= up_since_s)
                },
            );
            out.push(Prediction {
                device_id: msg.device_id().clone(),
                device_type: device_type.to_owned(),
                component: comp.component.clone(),
                ts,
                risk,
                threshold: comp.threshold,
                flagged,
                model_version: model.version.clone(),
                top_features: top_contributions(model, &self.contrib, &self.raw),
                lead_time_days: if warm {
                    comp.lead_time_days(risk)
                } else {
                    None
                },
                warming_up: !warm,
            });
        }
        out
    }
}

/// The flag state of one (device, component): when the flag went up and since when
/// the risk has been below the threshold. Both are event seconds; 0 means "not".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FlagLatch {
    /// When the flag was raised; 0 while no flag is up; [`FULFILLED`] once the
    /// component was repaired under the flag (it no longer expires).
    up_since_s: i64,
    /// Since when the risk has been below the threshold under a raised flag; 0 while it
    /// is at or above it.
    below_since_s: i64,
}

/// `FlagLatch::up_since_s` of a flag whose component was repaired while it was up.
const FULFILLED: i64 = i64::MAX;

impl FlagLatch {
    /// Whether a flag is up.
    pub(crate) fn is_up(&self) -> bool {
        self.up_since_s != 0
    }
}

/// Keeps a raised flag up until the risk has been below the threshold for `release_ms`
/// of event time; with `release_ms` 0 the flag is exactly `raise`.
///
/// A flag is a prediction for the `expire_ms` (the model's horizon) after it was
/// raised. Once that has passed without the flag going down, the prediction has
/// expired: the flag goes down for this score, whatever the rule says, and the next
/// score raises it again by the same rule as any flag (at once when the risk is still
/// above the threshold with its persistence, or the fault-code rule still fires). So a
/// standing risk is restated once per horizon, as a new flag episode: `eval` judges
/// each restatement on its own (one that no failure follows is a false alarm), and a
/// ticket a planner dismissed can be opened again by it (without expiry, a flag that
/// never drops would never open another). `expire_ms` 0: flags never expire.
///
/// Except when the prediction came true: `repaired_since(up_since_s)`, asked only when
/// a flag is due to expire, says whether the component was repaired (so it failed)
/// after the flag went up. Such a flag does not expire; it ends by the release time
/// alone, as before expiry existed. A repaired part's risk stays high while its
/// feature windows still hold the failing readings, and a restated flag would open a
/// new ticket for a device a technician has just fixed.
pub(crate) fn latch(
    state: &mut FlagLatch,
    raise: bool,
    above: bool,
    now_s: i64,
    release_ms: i64,
    expire_ms: i64,
    repaired_since: impl FnOnce(i64) -> bool,
) -> bool {
    if expire_ms > 0
        && state.is_up()
        && now_s.saturating_sub(state.up_since_s).saturating_mul(1000) >= expire_ms
    {
        if repaired_since(state.up_since_s) {
            state.up_since_s = FULFILLED;
        } else {
            *state = FlagLatch::default();
            return false;
        }
    }
    if raise || (state.is_up() && above) {
        if !state.is_up() {
            state.up_since_s = now_s.max(1);
        }
        state.below_since_s = 0;
        return true;
    }
    if !state.is_up() {
        return false;
    }
    if state.below_since_s == 0 {
        // The first score below the threshold since the flag went up.
        state.below_since_s = now_s.max(1);
    }
    if now_s
        .saturating_sub(state.below_since_s)
        .saturating_mul(1000)
        >= release_ms.max(0)
    {
        *state = FlagLatch::default();
        return false;
    }
    true
}

/// The model if its feature schema is the profile's; otherwise none (and a warning):
/// scoring with misaligned features would be silently wrong.
fn compatible(
    model: Option<Arc<ModelArtifact>>,
    schema: &FeatureSchema,
) -> Option<Arc<ModelArtifact>> {
    let model = model?;
    if model.feature_schema.as_slice() == schema.names() {
        Some(model)
    } else {
        tracing::warn!(
            device_type = schema.device_type(),
            version = %model.version,
            "Model feature schema differs from the profile's; not scoring this type"
        );
        None
    }
}

/// The largest positive contributions, most important first. For the logistic family a
/// feature's contribution is `w_i * z_i` (log-odds); for bagged trees it is the change
/// of the failure share along the decision paths at the feature's splits, averaged
/// over the trees (see [`crate::trees`]).
fn top_contributions(model: &ModelArtifact, contrib: &[f64], raw: &[f64]) -> Vec<Contribution> {
    let mut top: [(f64, usize); TOP_FEATURES] = [(0.0, usize::MAX); TOP_FEATURES];
    for (i, &c) in contrib.iter().enumerate() {
        if c > top[TOP_FEATURES - 1].0 {
            top[TOP_FEATURES - 1] = (c, i);
            top.sort_by(|a, b| b.0.total_cmp(&a.0));
        }
    }
    top.iter()
        .filter(|(_, i)| *i != usize::MAX)
        .filter_map(|&(c, i)| {
            Some(Contribution {
                feature: model.feature_schema.get(i)?.clone(),
                value: raw.get(i).copied().filter(|v| v.is_finite())?,
                contribution: c,
                normal_range: Some((*model.feature_p05.get(i)?, *model.feature_p95.get(i)?)),
            })
        })
        .collect()
}

/// Replays a history directory through a fresh [`Scorer`], calling `f` with every
/// decoded message and its predictions (for `fixahead predict` and evaluation).
/// Profiles under `{history_dir}/profiles` override `profiles`, as in training.
pub fn replay_history(
    history_dir: &Path,
    profiles: &ProfileSet,
    registry: ModelRegistry,
    mut f: impl FnMut(&Message, Vec<Prediction>),
) -> Result<history::HistoryStats> {
    let profiles = history::load_profiles(history_dir, profiles)?;
    let mut scorer = Scorer::new(registry, profiles.clone());
    history::for_each_message(history_dir, &profiles, |msg| {
        let preds = scorer.observe(&msg);
        f(&msg, preds);
    })
}

#[cfg(test)]
mod tests {
    use super::{latch, FlagLatch};

    const DAY: i64 = 86_400;

    /// Runs `latch` over (seconds, raise, above) scores, without expiry.
    fn run(release_ms: i64, scores: &[(i64, bool, bool)]) -> Vec<bool> {
        run_expiring(release_ms, 0, scores)
    }

    fn run_expiring(release_ms: i64, expire_ms: i64, scores: &[(i64, bool, bool)]) -> Vec<bool> {
        let mut state = FlagLatch::default();
        scores
            .iter()
            .map(|&(t, raise, above)| {
                latch(&mut state, raise, above, t, release_ms, expire_ms, |_| {
                    false
                })
            })
            .collect()
    }

    #[test]
    fn a_raised_flag_stays_up_until_the_risk_has_been_low_for_the_release_time() {
        // Daily scores: raised, a dip for a day, above again (not yet a raise), then low.
        let scores = [
            (0, false, false),
            (DAY, true, true),
            (2 * DAY, false, false),
            (3 * DAY, false, true),
            (4 * DAY, false, false),
            (5 * DAY, false, false),
            (6 * DAY, false, false),
            (7 * DAY, false, false),
            (8 * DAY, false, true),
        ];
        // Without a release time the flag is exactly the raise rule.
        assert_eq!(
            run(0, &scores),
            [false, true, false, false, false, false, false, false, false]
        );
        // With 3 days, the dip does not end it; three days below (day 4 to day 7) do,
        // and a score above the threshold alone does not raise it again.
        assert_eq!(
            run(3 * DAY * 1000, &scores),
            [false, true, true, true, true, true, true, false, false]
        );
    }

    #[test]
    fn a_flag_expires_after_the_horizon_and_a_standing_risk_raises_it_again() {
        let (release, horizon) = (3 * DAY * 1000, 14 * DAY * 1000);
        // Daily scores: raised on day 1, the rule keeps firing to day 20.
        let firing: Vec<_> = (0..=20).map(|d| (d * DAY, d >= 1, d >= 1)).collect();
        let up = run_expiring(release, horizon, &firing);
        // Up from day 1; on day 15, 14 days after the raise, the prediction expired: down
        // for that score, raised again on day 16 (a second episode), up to day 20.
        let down: Vec<i64> = (0..=20).filter(|&d| !up[d as usize]).collect();
        assert_eq!(down, [0, 15]);
        // Without expiry it is one unbroken flag.
        assert!(run(release, &firing)[1..].iter().all(|&f| f));

        // Held only by the release time (the risk fell on day 13): the expiry on day 15
        // ends it for good, with no raise to bring it back.
        let fading: Vec<_> = (0..=20)
            .map(|d| (d * DAY, (1..13).contains(&d), (1..13).contains(&d)))
            .collect();
        let up = run_expiring(release, horizon, &fading);
        let raised: Vec<i64> = (0..=20).filter(|&d| up[d as usize]).collect();
        assert_eq!(raised, (1..15).collect::<Vec<_>>());
        // Without expiry the release time alone ends it three days after the drop.
        let up = run(release, &fading);
        let raised: Vec<i64> = (0..=20).filter(|&d| up[d as usize]).collect();
        assert_eq!(raised, (1..16).collect::<Vec<_>>());
    }

    #[test]
    fn a_flag_whose_component_was_repaired_under_it_does_not_expire() {
        let (release, horizon) = (3 * DAY * 1000, 14 * DAY * 1000);
        // Raised on day 1, the component failed and was repaired on day 8, and the
        // repaired part's risk stays high to day 20, then falls.
        let mut state = FlagLatch::default();
        let mut asked = Vec::new();
        let up: Vec<bool> = (0..=25)
            .map(|d| {
                let above = (1..=20).contains(&d);
                latch(
                    &mut state,
                    above,
                    above,
                    d * DAY,
                    release,
                    horizon,
                    |since| {
                        asked.push((d, since));
                        since <= 8 * DAY
                    },
                )
            })
            .collect();
        // Asked once, when the flag was due to expire on day 15; then one flag to the
        // release, three days after the risk fell.
        assert_eq!(asked, [(15, DAY)]);
        let raised: Vec<i64> = (0..=25).filter(|&d| up[d as usize]).collect();
        assert_eq!(raised, (1..=23).collect::<Vec<_>>());
    }
}
