//! Live model swap: a half-written artefact is never loaded (the old model keeps
//! scoring), readers and a scorer only ever see complete artefacts while versions swap
//! under them, and swapping one type's model leaves the other types' models, and a
//! scorer's persistence counters for them, alone.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::{Message, Prediction, ProfileSet, Timestamp};

use crate::artifact::{self, ModelArtifact, ACTIVE_FILE};
use crate::test_support::{self, T0};
use crate::{FeatureSchema, ModelRegistry, Scorer};

const HOUR: i64 = Timestamp::HOUR_MS;
/// Mean of the driving channel: a reading here scores about 0.02, one 8 above about 0.98.
const NORMAL: f64 = 10.0;
const HIGH: f64 = 18.0;

/// The channel whose `.last` feature drives the one trained component of a type (its
/// first channel and first component in profile order).
fn driver(device_type: &str) -> (String, String) {
    let profiles = ProfileSet::builtin();
    let profile = profiles.get(device_type).expect("a built-in profile");
    let schema = FeatureSchema::for_profile(profile);
    (
        profile.channels()[0].name.clone(),
        schema.components()[0].clone(),
    )
}

/// A valid artefact for `device_type`: one trained component driven by its first
/// channel, with a threshold that differs per `variant` (so a prediction's threshold
/// tells which artefact scored it), and `padding` entries in the training summary so
/// the file is big enough (about 30 bytes per entry) that a write of it is not one
/// instant. The version ends with the artefact's content hash.
fn model(device_type: &str, variant: u32, padding: usize) -> ModelArtifact {
    let (channel, trained) = driver(device_type);
    let mut a = test_support::handmade(
        device_type,
        &format!("{channel}.last"),
        &trained,
        (NORMAL, 1.0),
        1.0,
    );
    for c in &mut a.components {
        c.threshold = 0.5 + 0.001 * f64::from(variant);
    }
    a.training_summary.rejected_by_reason = (0..padding)
        .map(|k| (format!("padding-{variant}-{k:06}"), k as u64))
        .collect();
    a.version = format!("{device_type}-v{variant}-{}", a.content_hash());
    a
}

fn telemetry(device_type: &str, id: &str, t: i64, value: f64) -> Message {
    test_support::telemetry(device_type, id, t, &[(&driver(device_type).0, value)])
}

/// A scorer over `registry` whose devices have a normal week behind them (so they are
/// scored from `T0` on).
fn warmed(registry: &ModelRegistry, devices: &[(&str, &str)]) -> Scorer {
    let mut scorer = Scorer::new(registry.clone(), ProfileSet::builtin());
    for (device_type, id) in devices {
        let mut t = T0 - crate::features::WARM_UP_MS - HOUR;
        while t < T0 {
            scorer.observe(&telemetry(device_type, id, t, NORMAL));
            t += 6 * HOUR;
        }
    }
    scorer
}

fn one(predictions: Vec<Prediction>) -> Prediction {
    assert_eq!(
        predictions.len(),
        1,
        "one trained component: {predictions:?}"
    );
    predictions.into_iter().next().unwrap()
}

fn threshold(a: &ModelArtifact, component: &str) -> f64 {
    a.components
        .iter()
        .find(|c| c.component == component)
        .map(|c| c.threshold)
        .expect("component in the artefact")
}

fn write_active(models: &Path, device_type: &str, version: &str) {
    std::fs::write(
        models.join(device_type).join(ACTIVE_FILE),
        format!("{version}\n"),
    )
    .unwrap();
}

#[test]
fn registry_refuses_a_truncated_artifact_and_the_old_model_keeps_scoring() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let v1 = model("washer", 1, 200);
    artifact::save(&v1, &models).unwrap();
    let registry = ModelRegistry::load_dir(&models).unwrap();
    let mut scorer = warmed(&registry, &[("washer", "wm-1")]);
    let generation = registry.generation();

    // ACTIVE names v2, whose file was cut short (a crash mid-copy, a full disk, a
    // non-atomic writer): from empty to one byte short of complete.
    let v2 = model("washer", 2, 200);
    let bytes = serde_json::to_vec_pretty(&v2).unwrap();
    let path = models.join("washer").join(format!("{}.json", v2.version));
    let cuts = [0, 1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1];
    let mut t = T0;
    for (k, &cut) in cuts.iter().enumerate() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        write_active(&models, "washer", &v2.version);
        let err = registry
            .reload()
            .expect_err("a truncated artefact must not load");
        assert!(
            err.to_string().contains(&v2.version),
            "the error names the file: {err}"
        );
        assert_eq!(registry.get("washer").unwrap().version, v1.version);
        assert_eq!(registry.generation(), generation, "nothing was swapped");
        assert_eq!(registry.reload_failures(), k as u64 + 1);
        assert_eq!(registry.reloads(), 0);
        let p = one(scorer.observe(&telemetry("washer", "wm-1", t, NORMAL)));
        assert_eq!(p.model_version, v1.version, "cut at {cut}");
        assert_eq!(p.threshold, threshold(&v1, &p.component));
        t += HOUR;
        // activate() refuses it too.
        assert!(artifact::activate(&models, "washer", &v2.version).is_err());
    }

    // Once complete, the same version loads, whole.
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(registry.reload().unwrap(), vec!["washer".to_owned()]);
    assert_eq!(*registry.get("washer").unwrap(), v2);
    assert_eq!(registry.reloads(), 1);
    let p = one(scorer.observe(&telemetry("washer", "wm-1", t, NORMAL)));
    assert_eq!(p.model_version, v2.version);
    assert_eq!(p.threshold, threshold(&v2, &p.component));
}

#[test]
fn registry_does_not_load_a_version_file_still_being_written_under_active() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let v1 = model("refrigerator", 1, 200);
    artifact::save(&v1, &models).unwrap();
    let registry = ModelRegistry::load_dir(&models).unwrap();
    let mut scorer = warmed(&registry, &[("refrigerator", "rf-1")]);

    // ACTIVE already points at v2 (written first, by hand), whose file does not exist yet...
    let v2 = model("refrigerator", 2, 2_000);
    write_active(&models, "refrigerator", &v2.version);
    assert!(registry.reload().is_err());
    assert_eq!(registry.get("refrigerator").unwrap().version, v1.version);

    // ...then arrives in pieces. Until the last byte, every reload is refused and v1 scores.
    let bytes = serde_json::to_vec_pretty(&v2).unwrap();
    let path = models
        .join("refrigerator")
        .join(format!("{}.json", v2.version));
    let mut file = std::fs::File::create(&path).unwrap();
    let chunks: Vec<&[u8]> = bytes.chunks(bytes.len() / 8 + 1).collect();
    let mut t = T0;
    for (k, chunk) in chunks.iter().enumerate() {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        if k + 1 == chunks.len() {
            break;
        }
        assert!(
            registry.reload().is_err(),
            "{} of {} bytes written",
            chunks[..=k].iter().map(|c| c.len()).sum::<usize>(),
            bytes.len()
        );
        assert_eq!(registry.get("refrigerator").unwrap().version, v1.version);
        let p = one(scorer.observe(&telemetry("refrigerator", "rf-1", t, NORMAL)));
        assert_eq!(p.model_version, v1.version);
        assert_eq!(p.threshold, threshold(&v1, &p.component));
        t += HOUR;
    }
    drop(file);
    assert_eq!(registry.reload_failures(), chunks.len() as u64);
    assert_eq!(registry.reload().unwrap(), vec!["refrigerator".to_owned()]);
    assert_eq!(*registry.get("refrigerator").unwrap(), v2);
    let p = one(scorer.observe(&telemetry("refrigerator", "rf-1", t, NORMAL)));
    assert_eq!(p.model_version, v2.version);
    assert_eq!(p.threshold, threshold(&v2, &p.component));
}

#[test]
fn registry_swapping_one_type_keeps_the_others_model_and_persistence_streak() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let washer1 = model("washer", 1, 10);
    let fridge = model("refrigerator", 1, 10);
    artifact::save(&washer1, &models).unwrap();
    artifact::save(&fridge, &models).unwrap();
    let registry = ModelRegistry::load_dir(&models).unwrap();
    let mut scorer = warmed(&registry, &[("washer", "wm-1"), ("refrigerator", "rf-1")]);

    // Two high refrigerator scores: one short of `persistence` (3).
    for h in 0..2 {
        let p = one(scorer.observe(&telemetry("refrigerator", "rf-1", T0 + h * HOUR, HIGH)));
        assert!(p.risk >= p.threshold && !p.flagged);
    }
    let fridge_before = registry.get("refrigerator").unwrap();

    // A new washer model goes live between them.
    let washer2 = model("washer", 2, 10);
    artifact::save(&washer2, &models).unwrap();
    assert_eq!(registry.reload().unwrap(), vec!["washer".to_owned()]);
    assert!(
        Arc::ptr_eq(&fridge_before, &registry.get("refrigerator").unwrap()),
        "the refrigerator's model did not change, so it is not replaced"
    );
    let p = one(scorer.observe(&telemetry("refrigerator", "rf-1", T0 + 2 * HOUR, HIGH)));
    assert_eq!(p.model_version, fridge.version);
    assert!(
        p.flagged,
        "a washer swap must not restart the refrigerator's streak"
    );
    let p = one(scorer.observe(&telemetry("washer", "wm-1", T0, NORMAL)));
    assert_eq!(p.model_version, washer2.version);
}

/// Panics unless `a` is, in full, the artefact written under its version.
fn check(a: &ModelArtifact, device_type: &str, written: &HashMap<String, Arc<ModelArtifact>>) {
    let Some(expected) = written.get(&a.version) else {
        panic!("{device_type}: version {} was never written", a.version);
    };
    assert_eq!(a.device_type, device_type);
    assert!(
        a.version.ends_with(&a.content_hash()),
        "{}: content does not match its version",
        a.version
    );
    assert!(**expected == *a, "{}: not the artefact written", a.version);
}

/// Polls `done` until true; panics after `timeout` (a liveness bound, not a speed target).
fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

// One piece: the reader threads, the scorer and the writer's rounds share the versions
// they race on; split up, each part would need the others' state passed around.
#[test]
fn registry_readers_and_a_scorer_see_only_complete_artifacts_while_versions_swap() {
    const TYPES: [&str; 2] = ["washer", "refrigerator"];
    const VARIANTS: u32 = 4;
    const ROUNDS: u32 = 3;
    const READERS: usize = 4;
    const LIVENESS: Duration = Duration::from_secs(60);

    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    // Every version that will ever be written, by name: about 100 KB of JSON each.
    let written: Arc<HashMap<String, Arc<ModelArtifact>>> = Arc::new(
        TYPES
            .iter()
            .flat_map(|t| (0..VARIANTS).map(move |v| model(t, v, 3_000)))
            .map(|a| (a.version.clone(), Arc::new(a)))
            .collect(),
    );
    let version_of = |t: &str, v: u32| model(t, v, 3_000).version;
    for t in TYPES {
        artifact::save(&written[&version_of(t, 0)], &models).unwrap();
    }
    let registry = ModelRegistry::load_dir(&models).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    // Per version: how often a reader met a new artefact of it, and how many
    // predictions the scorer made with it.
    let counters = || -> Arc<HashMap<String, AtomicU64>> {
        Arc::new(
            written
                .keys()
                .map(|v| (v.clone(), AtomicU64::new(0)))
                .collect(),
        )
    };
    let read_by_version = counters();
    let scored_by_version = counters();
    let reads = Arc::new(AtomicU64::new(0));

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (registry, stop, written, counts, reads) = (
                registry.clone(),
                stop.clone(),
                written.clone(),
                read_by_version.clone(),
                reads.clone(),
            );
            std::thread::spawn(move || {
                let mut last: HashMap<&str, Arc<ModelArtifact>> = HashMap::new();
                while !stop.load(Ordering::Relaxed) {
                    for t in TYPES {
                        let a = registry.get(t).expect("a model for every type, always");
                        if last.get(t).is_some_and(|l| Arc::ptr_eq(l, &a)) {
                            continue;
                        }
                        check(&a, t, &written);
                        counts[&a.version].fetch_add(1, Ordering::SeqCst);
                        last.insert(t, a);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let scorer = {
        let (registry, stop, written, counts) = (
            registry.clone(),
            stop.clone(),
            written.clone(),
            scored_by_version.clone(),
        );
        std::thread::spawn(move || {
            let devices = [("washer", "wm-1"), ("refrigerator", "rf-1")];
            let mut scorer = warmed(&registry, &devices);
            let mut t = T0;
            while !stop.load(Ordering::Relaxed) {
                for (device_type, id) in devices {
                    let value = if (t / HOUR) % 2 == 0 { NORMAL } else { HIGH };
                    let p = one(scorer.observe(&telemetry(device_type, id, t, value)));
                    let Some(a) = written.get(&p.model_version) else {
                        panic!("scored with version {} never written", p.model_version);
                    };
                    assert_eq!(a.device_type, device_type);
                    assert_eq!(p.threshold, threshold(a, &p.component));
                    counts[&p.model_version].fetch_add(1, Ordering::SeqCst);
                }
                t += HOUR;
            }
        })
    };

    // Reloads as fast as it can, like `fixahead run`'s reload task with no interval.
    let reload_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let reloader = {
        let (registry, stop, errors) = (registry.clone(), stop.clone(), reload_errors.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = registry.reload() {
                    errors.lock().unwrap().push(e.to_string());
                }
                std::thread::yield_now();
            }
        })
    };

    // The swapper: new versions through `artifact::save` in the first round, rollbacks
    // through `artifact::activate` after. Each swap waits until the registry holds the
    // version and both a reader and the scorer used it (liveness bounds only).
    let mut swaps = 0u64;
    let mut activated = HashSet::new();
    for round in 0..ROUNDS {
        for v in 0..VARIANTS {
            if round == 0 && v == 0 {
                continue;
            }
            for t in TYPES {
                let version = version_of(t, v);
                let (read_before, scored_before) = (
                    read_by_version[&version].load(Ordering::SeqCst),
                    scored_by_version[&version].load(Ordering::SeqCst),
                );
                if activated.insert(version.clone()) {
                    artifact::save(&written[&version], &models).unwrap();
                } else {
                    artifact::activate(&models, t, &version).unwrap();
                }
                swaps += 1;
                wait_until(
                    LIVENESS,
                    &format!("{version} to be read and scored"),
                    || {
                        registry.get(t).is_some_and(|a| a.version == version)
                            && read_by_version[&version].load(Ordering::SeqCst) > read_before
                            && scored_by_version[&version].load(Ordering::SeqCst) > scored_before
                    },
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join()
            .expect("a reader saw an incomplete or unknown artefact");
    }
    scorer
        .join()
        .expect("the scorer scored with an incomplete or unknown artefact");
    reloader.join().unwrap();

    // Writes through the artefact API are atomic, so no reload ever met half a file.
    assert_eq!(*reload_errors.lock().unwrap(), Vec::<String>::new());
    assert_eq!(registry.reload_failures(), 0);
    assert!(
        registry.reloads() >= swaps,
        "{} reloads for {swaps} swaps",
        registry.reloads()
    );
    assert_eq!(swaps, u64::from(ROUNDS * VARIANTS - 1) * TYPES.len() as u64);
    assert!(reads.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_model_trained_before_its_profile_changed_is_stale_and_not_scored() {
    let profiles = ProfileSet::builtin();
    let fresh = model("washer", 1, 0);
    let mut old = model("dishwasher", 1, 0);
    // A dishwasher model from before the profile's ratio channel: ten features fewer.
    old.feature_schema
        .retain(|n| !n.starts_with("heat_time_per_k."));
    assert!(fresh.fits(profiles.get("washer").unwrap()));
    assert!(!old.fits(profiles.get("dishwasher").unwrap()));
    let registry = ModelRegistry::from_artifacts([fresh, old]);
    assert_eq!(registry.stale_types(&profiles), ["dishwasher"]);
    let mut scorer = Scorer::new(registry.clone(), profiles.clone());
    for h in 0..24 * 8 {
        for (t, id) in [("washer", "wm-1"), ("dishwasher", "dw-1")] {
            let predictions = scorer.observe(&telemetry(t, id, T0 + h * HOUR, NORMAL));
            if t == "dishwasher" {
                assert!(predictions.is_empty(), "a stale model scored");
            } else if h >= 24 * 7 {
                assert!(!predictions.is_empty(), "the fitting model did not score");
            }
        }
    }
}
