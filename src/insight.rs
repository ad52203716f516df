//! The glue between the drift watch (`models::drift`) and the API's drift report: the
//! API does not know models, so the process converts.

use std::sync::Arc;

use models::drift::{self, DriftMonitor, TypeDrift};

/// `GET /api/v1/models/drift`'s reporter over the scorer's monitor.
pub(crate) fn drift_reporter(monitor: DriftMonitor) -> api::DriftReporter {
    Arc::new(move || {
        let settings = monitor.settings();
        api::DriftReport {
            watch_threshold: drift::WATCH_PSI,
            drift_threshold: drift::DRIFT_PSI,
            min_samples: settings.min_samples,
            models: monitor.report().into_iter().map(model_drift).collect(),
        }
    })
}

fn model_drift(t: TypeDrift) -> api::ModelDrift {
    api::ModelDrift {
        drifted_features: t
            .features
            .iter()
            .filter(|f| f.status == drift::DriftStatus::Drift)
            .count() as u64,
        device_type: t.device_type,
        model_version: t.model_version,
        status: t.status.as_str().to_owned(),
        window_from: t.window_from,
        window_to: t.window_to,
        samples: t.samples,
        baseline_rows: t.baseline_rows,
        features: t
            .features
            .into_iter()
            .map(|f| api::FeatureDrift {
                channel: f.feature.split('.').next().unwrap_or_default().to_owned(),
                feature: f.feature,
                psi: f.psi,
                status: f.status.as_str().to_owned(),
                samples: f.samples,
                mean: f.mean,
                baseline_mean: f.baseline_mean,
            })
            .collect(),
    }
}
