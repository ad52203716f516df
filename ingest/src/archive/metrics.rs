//! The archive's counters and gauges ([`ArchiveMetrics`]), registered into the
//! process's one metrics registry ([`ArchiveMetrics::register`]).

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde::Serialize;

/// Archive counters and gauges, for `/metrics` and `/health`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ArchiveMetrics {
    /// Telemetry points the server accepted.
    pub points_telemetry: IntCounter,
    /// Fault points the server accepted.
    pub points_faults: IntCounter,
    /// Points the server refused for their content (and the archive skipped) or
    /// dropped from a partial write.
    pub points_refused: IntCounter,
    /// Write requests the server accepted.
    pub batches: IntCounter,
    /// Write requests that failed (each retry counts).
    pub write_failures: IntCounter,
    /// Points in failed writes whose outcome is unknown
    /// ([`WriteError::Unknown`](super::WriteError::Unknown)), all sent again: at most
    /// this many can be held twice by a server that does not overwrite a point with
    /// the same series and time.
    pub points_uncertain: IntCounter,
    /// Stored rows not yet archived, as of the archiver's last look.
    pub backlog: IntGauge,
    /// The cursor: the `arrival` of the last row archived.
    pub position: IntGauge,
    /// Unix time in seconds (to the millisecond) of the last accepted write; 0: none
    /// yet.
    pub last_success: Gauge,
    /// The family of the two point counters.
    points: IntCounterVec,
}

impl Default for ArchiveMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn named<T>(made: prometheus::Result<T>) -> T {
    // The names and helps are constants of this module, so they are valid.
    made.expect("a valid metric name")
}

impl ArchiveMetrics {
    /// New metrics, all zero, not yet registered.
    pub fn new() -> Self {
        let points = named(IntCounterVec::new(
            Opts::new(
                "fixahead_archive_points_total",
                "Points the InfluxDB archive wrote (accepted by the server), by measurement.",
            ),
            &["measurement"],
        ));
        Self {
            points_telemetry: points.with_label_values(&["telemetry"]),
            points_faults: points.with_label_values(&["fault"]),
            points,
            points_refused: named(IntCounter::new(
                "fixahead_archive_points_refused_total",
                "Points the archive's server refused for their content (400/413; skipped) or dropped from a partial write (422, e.g. beyond the bucket's retention).",
            )),
            batches: named(IntCounter::new(
                "fixahead_archive_batches_total",
                "Archive write requests the server accepted.",
            )),
            write_failures: named(IntCounter::new(
                "fixahead_archive_write_failures_total",
                "Archive write requests that failed: retried (server down, timeout, 5xx, 401/403/404, 429), split (400/413) or partly written (422).",
            )),
            points_uncertain: named(IntCounter::new(
                "fixahead_archive_points_uncertain_total",
                "Points in archive writes that got no clear answer (timeout, connection cut after sending, 500/502/504) and were sent again; a server that had taken them holds them twice unless it overwrites a point with the same series and time, as InfluxDB does.",
            )),
            backlog: named(IntGauge::new(
                "fixahead_archive_backlog_rows",
                "Stored telemetry and fault rows not yet archived; they wait in hot.db.",
            )),
            position: named(IntGauge::new(
                "fixahead_archive_position",
                "The archive cursor: arrival number of the last stored row archived.",
            )),
            last_success: named(Gauge::new(
                "fixahead_archive_last_success_timestamp_seconds",
                "Unix time of the last archive write the server accepted; 0 before the first.",
            )),
        }
    }

    /// Adds every metric to `registry` (once per registry).
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.points.clone()))?;
        for counter in [
            &self.points_refused,
            &self.batches,
            &self.write_failures,
            &self.points_uncertain,
        ] {
            registry.register(Box::new(counter.clone()))?;
        }
        registry.register(Box::new(self.backlog.clone()))?;
        registry.register(Box::new(self.position.clone()))?;
        registry.register(Box::new(self.last_success.clone()))?;
        Ok(())
    }

    /// Records an accepted write at `at_ms` (Unix milliseconds).
    pub fn succeeded_at(&self, at_ms: i64) {
        self.last_success.set(at_ms as f64 / 1000.0);
    }

    /// Copies the values.
    pub fn snapshot(&self) -> ArchiveSnapshot {
        let last = (self.last_success.get() * 1000.0).round() as i64;
        ArchiveSnapshot {
            points_telemetry: self.points_telemetry.get(),
            points_faults: self.points_faults.get(),
            points_refused: self.points_refused.get(),
            batches: self.batches.get(),
            write_failures: self.write_failures.get(),
            points_uncertain: self.points_uncertain.get(),
            backlog: self.backlog.get().max(0) as u64,
            position: self.position.get(),
            last_success_ms: (last > 0).then_some(last),
        }
    }
}

/// A copy of [`ArchiveMetrics`], for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveSnapshot {
    /// Telemetry points accepted.
    pub points_telemetry: u64,
    /// Fault points accepted.
    pub points_faults: u64,
    /// Points refused and skipped.
    pub points_refused: u64,
    /// Write requests accepted.
    pub batches: u64,
    /// Write requests failed.
    pub write_failures: u64,
    /// Points sent again after a write with no clear answer.
    pub points_uncertain: u64,
    /// Rows behind.
    pub backlog: u64,
    /// The cursor.
    pub position: i64,
    /// Last accepted write (Unix ms), if any.
    pub last_success_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = ArchiveMetrics::default();
        m.points_telemetry.inc_by(5);
        m.points_faults.inc_by(2);
        m.backlog.set(9);
        m.succeeded_at(1_795_500_000_123);
        let registry = Registry::new();
        m.register(&registry).unwrap();
        let out = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        for want in [
            "fixahead_archive_points_total{measurement=\"telemetry\"} 5\n",
            "fixahead_archive_points_total{measurement=\"fault\"} 2\n",
            "fixahead_archive_backlog_rows 9\n",
            "fixahead_archive_write_failures_total 0\n",
            "fixahead_archive_points_uncertain_total 0\n",
            "fixahead_archive_last_success_timestamp_seconds 1795500000.123\n",
            "# TYPE fixahead_archive_backlog_rows gauge\n",
        ] {
            assert!(out.contains(want), "{want} missing from\n{out}");
        }
    }
}
