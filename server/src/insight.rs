//! What the API's model endpoints need from the rest of the process: the drift watch
//! (`models::drift`) converted into the API's drift report (the API does not know
//! models), and the device registry's regions for the performance report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use models::drift::{self, DriftMonitor, TypeDrift};

/// `GET /api/v1/models/drift`'s reporter over the scorer's monitor.
pub fn drift_reporter(monitor: DriftMonitor) -> api::DriftReporter {
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

/// How long the device regions read from the registry are reused: a device's region
/// changes rarely, and reading 100,000 of them takes tens of milliseconds.
const REGIONS_TTL: Duration = Duration::from_secs(30);

/// Regions by device id, shared between reports.
type RegionMap = Arc<HashMap<String, String>>;

/// The device registry's regions (hot.db), read at most every [`REGIONS_TTL`].
pub struct DeviceRegions {
    reader: store::hot::StoreReader,
    cached: Mutex<Option<(Instant, RegionMap)>>,
}

impl DeviceRegions {
    /// The lookup the API takes ([`api::AppState::with_regions`]).
    pub fn lookup(reader: store::hot::StoreReader) -> api::RegionLookup {
        Arc::new(DeviceRegions {
            reader,
            cached: Mutex::new(None),
        })
    }
}

impl api::tickets::Regions for DeviceRegions {
    fn device_regions(&self) -> Arc<HashMap<String, String>> {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, regions)) = cached.as_ref() {
            if at.elapsed() < REGIONS_TTL {
                return Arc::clone(regions);
            }
        }
        match self.reader.device_regions() {
            Ok(regions) => {
                let regions = Arc::new(regions);
                *cached = Some((Instant::now(), Arc::clone(&regions)));
                regions
            }
            Err(e) => {
                // Assignment regions still apply; the next report tries again.
                tracing::warn!(error = %e, "Could not read device regions");
                cached
                    .as_ref()
                    .map(|(_, r)| Arc::clone(r))
                    .unwrap_or_default()
            }
        }
    }
}
