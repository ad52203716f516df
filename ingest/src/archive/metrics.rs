//! The archive's counters and gauges ([`ArchiveMetrics`]) and their Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Archive counters and gauges, for `/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct ArchiveMetrics {
    /// Telemetry points the server accepted.
    pub points_telemetry: AtomicU64,
    /// Fault points the server accepted.
    pub points_faults: AtomicU64,
    /// Points the server refused for their content (and the archive skipped) or
    /// dropped from a partial write.
    pub points_refused: AtomicU64,
    /// Write requests the server accepted.
    pub batches: AtomicU64,
    /// Write requests that failed (each retry counts).
    pub write_failures: AtomicU64,
    /// Points in failed writes whose outcome is unknown
    /// ([`WriteError::Unknown`](super::WriteError::Unknown)), all sent again: at most
    /// this many can be held twice by a server that does not overwrite a point with
    /// the same series and time.
    pub points_uncertain: AtomicU64,
    /// Stored rows not yet archived, as of the archiver's last look.
    pub backlog: AtomicU64,
    /// The cursor: the `arrival` of the last row archived.
    pub position: AtomicI64,
    /// Unix time in milliseconds of the last accepted write; 0: none yet.
    pub last_success_ms: AtomicI64,
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

impl ArchiveMetrics {
    /// Copies the values.
    pub fn snapshot(&self) -> ArchiveSnapshot {
        let last = self.last_success_ms.load(Relaxed);
        ArchiveSnapshot {
            points_telemetry: self.points_telemetry.load(Relaxed),
            points_faults: self.points_faults.load(Relaxed),
            points_refused: self.points_refused.load(Relaxed),
            batches: self.batches.load(Relaxed),
            write_failures: self.write_failures.load(Relaxed),
            points_uncertain: self.points_uncertain.load(Relaxed),
            backlog: self.backlog.load(Relaxed),
            position: self.position.load(Relaxed),
            last_success_ms: (last > 0).then_some(last),
        }
    }

    /// Prometheus text exposition.
    pub fn render_prometheus(&self, out: &mut String) {
        let s = self.snapshot();
        let _ = writeln!(
            out,
            "# HELP fixahead_archive_points_total Points the InfluxDB archive wrote (accepted by the server), by measurement.\n\
             # TYPE fixahead_archive_points_total counter\n\
             fixahead_archive_points_total{{measurement=\"telemetry\"}} {}\n\
             fixahead_archive_points_total{{measurement=\"fault\"}} {}",
            s.points_telemetry, s.points_faults
        );
        let metric = |out: &mut String, name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        metric(
            out,
            "fixahead_archive_points_refused_total",
            "counter",
            "Points the archive's server refused for their content (400/413; skipped) or dropped from a partial write (422, e.g. beyond the bucket's retention).",
            s.points_refused.to_string(),
        );
        metric(
            out,
            "fixahead_archive_batches_total",
            "counter",
            "Archive write requests the server accepted.",
            s.batches.to_string(),
        );
        metric(
            out,
            "fixahead_archive_write_failures_total",
            "counter",
            "Archive write requests that failed: retried (server down, timeout, 5xx, 401/403/404, 429), split (400/413) or partly written (422).",
            s.write_failures.to_string(),
        );
        metric(
            out,
            "fixahead_archive_points_uncertain_total",
            "counter",
            "Points in archive writes that got no clear answer (timeout, connection cut after sending, 500/502/504) and were sent again; a server that had taken them holds them twice unless it overwrites a point with the same series and time, as InfluxDB does.",
            s.points_uncertain.to_string(),
        );
        metric(
            out,
            "fixahead_archive_backlog_rows",
            "gauge",
            "Stored telemetry and fault rows not yet archived; they wait in hot.db.",
            s.backlog.to_string(),
        );
        metric(
            out,
            "fixahead_archive_position",
            "gauge",
            "The archive cursor: arrival number of the last stored row archived.",
            s.position.to_string(),
        );
        metric(
            out,
            "fixahead_archive_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last archive write the server accepted; 0 before the first.",
            format!("{:.3}", s.last_success_ms.unwrap_or(0) as f64 / 1000.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = ArchiveMetrics::default();
        m.points_telemetry.store(5, Relaxed);
        m.points_faults.store(2, Relaxed);
        m.backlog.store(9, Relaxed);
        m.last_success_ms.store(1_795_500_000_123, Relaxed);
        let mut out = String::new();
        m.render_prometheus(&mut out);
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
