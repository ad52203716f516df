//! Feature engine, training, model artefacts, model registry and live scoring.
//!
//! # Features ([`features`])
//! One implementation serves training, evaluation and the live pipeline (train/serve
//! parity): training replays a history through the same [`DeviceState`] that
//! [`Scorer::observe`] updates, message by message. The [`FeatureSchema`] is derived
//! from the device profile, so a new device type needs no code:
//!
//! * per channel: `ewma_fast` and `ewma_slow` (time-aware EWMAs with time constants of
//!   1 and 7 days of event time, `alpha = 1 - exp(-dt/tau)`), `std_slow` (exponentially
//!   weighted spread), `trend` (fast minus slow), `last`, decaying `min_7d`/`max_7d`,
//!   and the device's own baseline `ewma_30d` with the departure from it, `shift` and
//!   `shift_z` (see [`features::CHANNEL_FEATURES`]);
//! * per component: decayed counts of raised fault codes whose catalogue entry points at
//!   the component (`count_1d`, `count_7d`, and `major_count_7d` for major and critical
//!   codes), `hours_since` the last one and `hours_since_repair` (a critical code of the
//!   component cleared), both capped at 30 days;
//! * per device: `fault.all.count_7d`, `device.age_days`, `device.messages_log1p`.
//!
//! State is O(1) per channel and stored as `f32`: a washer takes 380 bytes.
//! A device is scored, and contributes training rows, only after it has reported for
//! [`features::WARM_UP_MS`] (7 days): before that, the slow averages still lean on the
//! first readings and `trend`/`std_slow` swing with the warm-up itself.
//! A message older than the device's latest applied message is not applied: features
//! only move forward in event time. A channel never reported yields `NaN` features,
//! which models treat as the training mean.
//!
//! # Labels ([`train()`])
//! Training takes [`ValidTrainParams`] only: [`TrainParams`] (the `--params` TOML form)
//! become them through [`TrainParams::check`], which checks every range.
//!
//! Rows are sampled from the replay at most once per device per `sample_interval_ms`
//! (default 6 h). A row at time `t` is positive for component `c` if `events.jsonl`
//! records a failure of `c` in `(t, t + horizon]`. Rows after a failure of `c` and
//! before its repair are excluded for `c` (the device is broken, not at risk); rows whose
//! horizon runs past the end of the history are excluded unless already positive
//! (their label is unknown). [`TrainingData`] can come from elsewhere than a history
//! directory (`fixahead train --from-store`: ticket outcomes); its no-fault-found
//! [`history::HealthyCheck`]s make the rows of their component within one horizon
//! before the check negatives, censored or not (unless positive or broken), and every
//! fit keeps those rows (docs/models.md, "The feedback loop").
//!
//! The split is by time, never shuffled: the last `validation_share` (default 30%) of the
//! history's time range validates. Training rows must have their whole horizon before
//! the split; rows within one horizon before it are dropped, so no training label
//! peeks into the validation period.
//!
//! # Model and imbalance
//! Two model families per (device type, component), the better kept (see the
//! models documentation, "Two model families"); the logistic one is a binary
//! logistic regression (linfa-logistic, L-BFGS, L2) per (device type,
//! component) on features standardised with the training mean and standard deviation.
//! Failures are rare, so the training split keeps every positive row and a seeded random
//! sample of `negatives_per_positive` (default 4) negatives per positive. The intercept
//! is then shifted by `ln(share of negatives kept)` (prior correction), so the risk is
//! again an estimate of the real-world probability. A fit uses at most `max_fit_rows`
//! (40,000) rows; above that positives are subsampled as well and the correction
//! becomes `ln(r_neg / r_pos)`. linfa's loss is a sum over rows, so the solver's gradient
//! tolerance is scaled by the row count (1e-3 on the mean gradient); otherwise every
//! fit would run all `max_iterations`. linfa reports the probability of
//! whichever class is larger, so the fitted coefficients are oriented by the model's
//! `labels()` and copied into our own artefact: scoring does not depend on linfa.
//! Components with fewer than `min_positives` (5) positive training rows are skipped,
//! and the artefact says why.
//!
//! # Thresholds and metrics
//! Per component, at event level, on the whole validation split (the first half picks
//! the family and fits the Platt calibration): flag episodes are replayed over the
//! validation rows with the persistence rule
//! (`train::threshold::event_threshold`): thresholds must reach `target_precision` (default 0.85) in event precision and stay
//! within `alert_budget` (default 2 false alarms per 1000 device-months); the band with
//! the highest recall gives the threshold (`event_target`), else the best event F1
//! within the budget (`event_max_f1`), else the component gets no model. If the
//! validation split has no positive rows, the training rows are used (suffix
//! `_training`; the artefact's [`artifact::ThresholdRule`]). Metrics recorded: row-level precision, recall, F1 and average
//! precision on the second half of validation, event-level recall, and
//! `validation_events` (the episode counts the threshold was chosen on). A flag needs
//! `persistence` (default 3) consecutive scores at or above the threshold, held for at
//! least `hold_ms` (default 12 h) of event time, so neither one noisy reading nor a
//! short burst from a device that reports every few minutes can flag. With
//! `adaptive_persistence` (default on) training also tries one score held `hold_ms`
//! (still at least two readings), and stores the rule that catches the most
//! validation failures per component (`train::threshold::event_threshold_and_rule`),
//! each also tried with the component's fault-code rule ([`FaultRule`]: flag on its catalogue codes since its last repair,
//! whatever the risk). A raised flag stays up until the risk has been below the
//! threshold for `release_ms` (default 3 days), and expires one horizon after it was
//! raised (`expire_ms`): it goes down for one score and the rule raises it again if it
//! still holds, unless the component was repaired under it.
//!
//! # Artefacts ([`artifact`], [`registry`])
//! `{model_dir}/{device_type}/{version}.json` (pretty JSON [`ModelArtifact`]: feature
//! names, mean/std, 5th/95th percentiles as normal ranges, per component its family
//! (logistic weights or bagged trees), intercept, calibration, threshold, persistence,
//! metrics or skip reason, training summary) and
//! `{model_dir}/{device_type}/ACTIVE` naming the active version. Both are written
//! atomically (temporary file + rename). [`ModelRegistry`] holds the active artefact per
//! type and swaps all of them at once on [`ModelRegistry::reload`]; a [`Scorer`] picks up
//! the new version on its next message and restarts that type's persistence counters.
//!
//! # Drift ([`drift`])
//! The artefact also carries `drift_baseline`, each feature's training distribution
//! (decile bins and their shares). A [`DriftMonitor`] given to the scorer
//! ([`Scorer::with_drift`]) counts the live feature vectors into the same bins per
//! device type over a window of event time and reports the population stability index
//! per feature (0.1 watch, 0.25 drift).

pub mod artifact;
mod calibrate;
pub mod drift;
mod error;
pub mod eval;
pub mod features;
pub mod history;
mod par;
pub mod predict;
pub mod registry;
pub mod scorer;
pub mod train;
pub mod trees;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod registry_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use artifact::{
    ComponentMetrics, ComponentModel, FaultRule, LabelSummary, ModelArtifact, MonthSet,
    TrainingSummary,
};
pub use drift::{DriftMonitor, DriftSettings};
pub use error::{Error, Result};
pub use features::{DeviceState, FeatureSchema};
pub use registry::ModelRegistry;
pub use scorer::{replay_history, Scorer};
pub use train::{train, train_on, TrainParams, TrainProgress, TrainingData, ValidTrainParams};
