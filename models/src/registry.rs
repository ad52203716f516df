//! The model registry: the active artefact per device type, swappable at run time.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntCounter;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::artifact::{self, ModelArtifact, ACTIVE_FILE};
use crate::{Error, Result};

#[derive(Debug)]
struct Inner {
    dir: Option<PathBuf>,
    active: RwLock<HashMap<String, Arc<ModelArtifact>>>,
    generation: AtomicU64,
    /// Reloads that swapped in at least one changed model.
    reloads: IntCounter,
    /// Reloads that failed and left the active models as they were.
    reload_failures: IntCounter,
    /// Serialises reloads, so a slow reload cannot swap back what a later one loaded.
    reloading: Mutex<()>,
}

/// The active model per device type. A cheap, clonable handle: every clone sees the
/// same models, and [`ModelRegistry::reload`] swaps them for all clones at once.
///
/// A swap replaces the whole map under a write lock held only for the assignment, so a
/// reader sees either the old set of models or the new one. An artefact is parsed and
/// validated in full before it can enter the map, so no reader ever sees half of one.
/// A reload that fails (a corrupt or half-written artefact, a dangling `ACTIVE`)
/// changes nothing. A type whose active version did not change keeps its very
/// [`Arc`] (its file is not even re-read), so a [`crate::Scorer`] keeps that type's
/// persistence counters when another type's model is swapped.
#[derive(Clone, Debug)]
pub struct ModelRegistry {
    inner: Arc<Inner>,
}

impl ModelRegistry {
    /// An empty registry with no directory behind it (tests, `--no-model` runs).
    pub fn empty() -> ModelRegistry {
        Self::with(None, HashMap::new())
    }

    /// A registry holding the given artefacts, with no directory behind it.
    pub fn from_artifacts(artifacts: impl IntoIterator<Item = ModelArtifact>) -> ModelRegistry {
        let map = artifacts
            .into_iter()
            .map(|a| (a.device_type.clone(), Arc::new(a)))
            .collect();
        Self::with(None, map)
    }

    /// Loads the active artefact of every device type under `dir` (see
    /// [`crate::artifact`] for the layout). A missing directory is an empty registry;
    /// a type directory without `ACTIVE` is skipped; anything unreadable is an error.
    pub fn load_dir(dir: &Path) -> Result<ModelRegistry> {
        let map = read_dir(dir)?;
        Ok(Self::with(Some(dir.to_owned()), map))
    }

    fn with(dir: Option<PathBuf>, map: HashMap<String, Arc<ModelArtifact>>) -> ModelRegistry {
        ModelRegistry {
            inner: Arc::new(Inner {
                dir,
                active: RwLock::new(map),
                generation: AtomicU64::new(0),
                // The names and helps are constants, so they are valid.
                reloads: IntCounter::new(
                    "fixahead_model_reloads_total",
                    "Model reloads that switched to a newly activated version.",
                )
                .expect("a valid metric name"),
                reload_failures: IntCounter::new(
                    "fixahead_model_reload_failures_total",
                    "Model reloads refused (unreadable or half-written artefact); the models in use stayed.",
                )
                .expect("a valid metric name"),
                reloading: Mutex::new(()),
            }),
        }
    }

    /// The active model of a device type.
    pub fn get(&self, device_type: &str) -> Option<Arc<ModelArtifact>> {
        self.read().get(device_type).cloned()
    }

    /// Device types of `profiles` whose active model does not [`ModelArtifact::fits`]
    /// its profile (trained before the profile changed): the scorer leaves them unscored
    /// until a model is trained on the profile as it is.
    pub fn stale_types(&self, profiles: &domain::ProfileSet) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(t, a)| profiles.get(t).is_some_and(|p| !a.fits(p)))
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Active version per device type.
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.read()
            .iter()
            .map(|(t, a)| (t.clone(), a.version.clone()))
            .collect()
    }

    /// Increases whenever the set of active models changes; lets a scorer notice a swap
    /// with one atomic load per message.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Adds the reload counters (`fixahead_model_reloads_total`,
    /// `fixahead_model_reload_failures_total`) to `registry`.
    pub fn register_metrics(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.inner.reloads.clone()))?;
        registry.register(Box::new(self.inner.reload_failures.clone()))
    }

    /// Reloads that swapped in at least one changed model since the registry was made.
    pub fn reloads(&self) -> u64 {
        self.inner.reloads.get()
    }

    /// Reloads that failed (and so changed nothing) since the registry was made.
    pub fn reload_failures(&self) -> u64 {
        self.inner.reload_failures.get()
    }

    /// Re-reads the directory and swaps in what changed. Returns the device types whose
    /// active version changed (added, replaced or removed). A registry without a
    /// directory reloads to itself.
    ///
    /// Only the types whose `ACTIVE` names another version than the one in memory are
    /// loaded; the others keep their artefact. Either every changed type loads and all
    /// are swapped in at once, or nothing changes and the error is returned.
    pub fn reload(&self) -> Result<Vec<String>> {
        let Some(dir) = &self.inner.dir else {
            return Ok(Vec::new());
        };
        let _one_at_a_time = self
            .inner
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.read().clone();
        let new = match read_dir_reusing(dir, &current) {
            Ok(new) => new,
            Err(e) => {
                self.inner.reload_failures.inc();
                return Err(e);
            }
        };
        let mut guard = self
            .inner
            .active
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut changed: Vec<String> = new
            .iter()
            .filter(|(t, a)| {
                guard
                    .get(*t)
                    .map(|old| old.version != a.version)
                    .unwrap_or(true)
            })
            .map(|(t, _)| t.clone())
            .collect();
        changed.extend(guard.keys().filter(|t| !new.contains_key(*t)).cloned());
        changed.sort();
        if !changed.is_empty() {
            *guard = new;
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
            self.inner.reloads.inc();
            tracing::info!(changed = ?changed, "Model registry reloaded");
        }
        Ok(changed)
    }

    /// Activates `artifact` in memory (no file is written), replacing its type's model.
    pub fn insert(&self, artifact: ModelArtifact) {
        let mut guard = self
            .inner
            .active
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        guard.insert(artifact.device_type.clone(), Arc::new(artifact));
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<ModelArtifact>>> {
        // The map is only ever replaced whole, so a poisoned lock still holds a
        // consistent map.
        self.inner
            .active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn read_dir(dir: &Path) -> Result<HashMap<String, Arc<ModelArtifact>>> {
    read_dir_reusing(dir, &HashMap::new())
}

/// Reads the active artefact of every type under `dir`, taking a type's artefact from
/// `current` instead of its file when `ACTIVE` still names the same version.
fn read_dir_reusing(
    dir: &Path,
    current: &HashMap<String, Arc<ModelArtifact>>,
) -> Result<HashMap<String, Arc<ModelArtifact>>> {
    let mut map = HashMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(map),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let type_dir = entry.path();
        if !type_dir.is_dir() {
            continue;
        }
        let device_type = entry.file_name().to_string_lossy().into_owned();
        let active_path = type_dir.join(ACTIVE_FILE);
        let version = match fs::read_to_string(&active_path) {
            Ok(v) => v.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&active_path, e)),
        };
        let path = type_dir.join(format!("{version}.json"));
        if version.is_empty() || version.contains(['/', '\\']) {
            return Err(Error::InvalidArtifact {
                path: active_path,
                message: format!("ACTIVE names an invalid version {version:?}"),
            });
        }
        if let Some(same) = current.get(&device_type).filter(|a| a.version == version) {
            // A version name is never reused for other content (it ends in a hash of it).
            map.insert(device_type, Arc::clone(same));
            continue;
        }
        let artifact = artifact::load(&path)?;
        if artifact.device_type != device_type {
            return Err(Error::InvalidArtifact {
                path,
                message: format!(
                    "artefact is for {:?} but lies under {device_type:?}",
                    artifact.device_type
                ),
            });
        }
        map.insert(device_type, Arc::new(artifact));
    }
    Ok(map)
}
