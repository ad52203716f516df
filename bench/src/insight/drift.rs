//! The drift monitor of `bench insight`: synthetic models with a training summary, and
//! one feature vector per device observed into the monitor.

use std::sync::Arc;
use std::time::Instant;

use domain::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fleet::Fleet;
use crate::Result;
use server::Context as _;

/// A synthetic model per device type whose training summary is a normal distribution
/// per feature, and one feature vector per device observed into the monitor (a third
/// of the types shifted, so the report has drifted features). Returns the mean cost of
/// one observation in nanoseconds.
pub(super) fn fill_drift(
    fleet: &Fleet,
    drift: &models::DriftMonitor,
    start: Timestamp,
    days: u32,
) -> Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut normal = move |mean: f64| {
        let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
        mean + (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let mut artifacts = Vec::new();
    for p in &fleet.profiles {
        let schema = models::FeatureSchema::for_profile(p);
        let d = schema.len();
        let rows: Vec<Vec<f32>> = (0..10_000)
            .map(|_| (0..d).map(|j| normal(j as f64) as f32).collect())
            .collect();
        artifacts.push(Arc::new(synthetic_model(p.device_type(), &schema, &rows)?));
    }
    // 64 vectors per type, drawn before the clock starts: the timing is the monitor's.
    let vectors: Vec<Vec<Vec<f64>>> = artifacts
        .iter()
        .enumerate()
        .map(|(k, model)| {
            let shift = if k % 3 == 0 { 0.5 } else { 0.0 };
            (0..64)
                .map(|_| {
                    (0..model.feature_schema.len())
                        .map(|j| normal(j as f64 + shift))
                        .collect()
                })
                .collect()
        })
        .collect();
    let end = start.millis() + i64::from(days) * Timestamp::DAY_MS;
    let t = Instant::now();
    for device in 0..fleet.ids.len() {
        let k = device % artifacts.len();
        let raw = &vectors[k][(device / artifacts.len()) % 64];
        drift.observe(
            &artifacts[k],
            Timestamp(end - (device % 3_600) as i64 * 1000),
            raw,
        );
    }
    Ok(t.elapsed().as_nanos() as f64 / fleet.ids.len().max(1) as f64)
}

fn synthetic_model(
    device_type: &str,
    schema: &models::FeatureSchema,
    rows: &[Vec<f32>],
) -> Result<models::ModelArtifact> {
    let d = schema.len();
    let mut artifact: models::ModelArtifact = serde_json::from_value(serde_json::json!({
        "format_version": models::artifact::FORMAT_VERSION,
        "version": format!("{device_type}-bench"),
        "device_type": device_type,
        "created_at": "2026-01-01T00:00:00.000Z",
        "horizon_ms": 14 * Timestamp::DAY_MS,
        "feature_schema": schema.names(),
        "feature_mean": vec![0.0; d],
        "feature_std": vec![1.0; d],
        "feature_p05": vec![0.0; d],
        "feature_p95": vec![0.0; d],
        "components": [],
        "training_summary": {
            "devices": 0, "rows": rows.len(), "train_rows": rows.len(), "validation_rows": 0,
            "positives": {}, "time_range": [0, 0], "split_ts": 0, "history_lines": 0,
            "rejected_lines": 0, "rejected_by_reason": {}, "rejected_events": 0,
            "params": models::TrainParams::default(),
        },
    }))
    .context("a synthetic model artefact")?;
    artifact.drift_baseline = Some(models::drift::DriftBaseline::from_rows(
        d,
        rows.iter().map(|r| r.as_slice()),
    ));
    Ok(artifact)
}
