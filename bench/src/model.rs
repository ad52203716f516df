//! The model a benchmark scores with: `--model DIR`, or one trained in-process when
//! none is given (`bench score`, `bench ingest`).

use std::path::Path;

use domain::{ProfileSet, Timestamp};
use server::commands::simulate::write_history_with_bar;

use crate::system::TempDir;
use crate::train::train_in_background;
use crate::Result;
use server::Context as _;

/// Where the model came from, as the reports print it, when none was given.
pub(crate) const TRAINED_IN_PROCESS: &str =
    "trained in-process on 300 simulated devices x 365 days (no --model given)";

/// The models in `dir`.
pub(crate) fn load(dir: &Path) -> Result<models::ModelRegistry> {
    let registry = models::ModelRegistry::load_dir(dir)
        .with_context(|| format!("loading models from {}", dir.display()))?;
    Ok(registry)
}

/// Trains a model on the demo's training recipe (300 devices, a year, one failure per
/// component per year) in a temporary directory.
pub(crate) async fn train_small_model() -> Result<models::ModelRegistry> {
    let tmp = TempDir::new("score-model");
    let days = 365;
    let config = simulators::FleetConfig {
        devices: 300,
        seed: 1001,
        start: simulators::FleetConfig::DEFAULT_START,
        failure_rate_per_year: 1.0,
        refrigerator_interval_s: 3600,
        ..simulators::FleetConfig::default()
    };
    eprintln!(
        "no --model: simulating 300 devices x {days} days and training a model on it (not timed)"
    );
    write_history_with_bar(
        &tmp.0,
        config,
        ProfileSet::builtin(),
        i64::from(days) * Timestamp::DAY_MS,
    )
    .await?;
    let t = train_in_background(tmp.0.clone()).await?;
    Ok(models::ModelRegistry::from_artifacts(t.artifacts))
}
