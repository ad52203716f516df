//! Ingest counters. Labels are low-cardinality (message kind, reject reason), never a
//! device id.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use domain::RejectReason;
use serde::Serialize;

/// Why the embedded broker refused a connection (a label of
/// `fixahead_broker_auth_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    /// The username is no device with credentials (or not a valid device id).
    UnknownUser,
    /// The password does not match.
    WrongPassword,
    /// The client id is neither the device id nor `{device_id}:{suffix}`, or is
    /// reserved for fixahead's own ingest session.
    ClientId,
    /// The credential store could not be read, or holds a malformed hash.
    Error,
}

impl AuthRefusal {
    /// Every reason, in label order.
    pub const ALL: [AuthRefusal; 4] = [
        AuthRefusal::UnknownUser,
        AuthRefusal::WrongPassword,
        AuthRefusal::ClientId,
        AuthRefusal::Error,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthRefusal::UnknownUser => "unknown_user",
            AuthRefusal::WrongPassword => "wrong_password",
            AuthRefusal::ClientId => "client_id",
            AuthRefusal::Error => "error",
        }
    }
}

/// Counters updated by the pipeline; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Messages received from the broker.
    pub received: AtomicU64,
    /// Telemetry messages stored.
    pub stored_telemetry: AtomicU64,
    /// Fault messages stored.
    pub stored_faults: AtomicU64,
    /// Status messages applied.
    pub stored_status: AtomicU64,
    /// fixahead's own commands seen on `fixahead/v1/+/cmd` and ignored.
    pub own_commands: AtomicU64,
    /// Valid command results passed on to the command store.
    pub command_results: AtomicU64,
    /// Valid command results that answered no pending command of their device (unknown
    /// id, another device's command, or already answered); logged and dropped.
    pub command_results_unmatched: AtomicU64,
    /// Messages already stored (same device and seq), acknowledged and dropped.
    pub duplicates: AtomicU64,
    /// Messages acknowledged to the broker.
    pub acked: AtomicU64,
    /// Acknowledgements not sent because the connection they belonged to was lost
    /// (each is a redelivery later, recognised as a duplicate).
    pub acks_dropped: AtomicU64,
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Commits that failed and were retried.
    pub commit_errors: AtomicU64,
    /// Connections (and reconnections) to the broker.
    pub connects: AtomicU64,
    /// Broker connection errors.
    pub connection_errors: AtomicU64,
    /// Dead-letter rows deleted by retention. The rejections stay counted by reason.
    pub dead_letters_pruned: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    auth_accepted: AtomicU64,
    auth_refused: [AtomicU64; AuthRefusal::ALL.len()],
}

/// A point-in-time copy of [`IngestMetrics`], for JSON.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSnapshot {
    /// Messages received.
    pub received: u64,
    /// Telemetry stored.
    pub stored_telemetry: u64,
    /// Faults stored.
    pub stored_faults: u64,
    /// Status messages applied.
    pub stored_status: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Acknowledgements lost with their connection.
    pub acks_dropped: u64,
    /// Dead letters by reason.
    pub dead_letters: std::collections::BTreeMap<&'static str, u64>,
    /// Transactions committed.
    pub batches: u64,
    /// Failed commits.
    pub commit_errors: u64,
    /// Broker connections made.
    pub connects: u64,
    /// Broker connection errors.
    pub connection_errors: u64,
    /// Dead-letter rows deleted by retention.
    pub dead_letters_pruned: u64,
    /// Connections the embedded broker's authentication accepted.
    pub broker_auth_accepted: u64,
    /// Connections it refused, by reason (only reasons that occurred).
    pub broker_auth_refused: std::collections::BTreeMap<&'static str, u64>,
}

impl IngestMetrics {
    /// Counts one rejected message.
    pub fn count_rejected(&self, reason: RejectReason) {
        self.rejected[reason.index()].fetch_add(1, Relaxed);
    }

    /// Rejected messages of one reason.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()].load(Relaxed)
    }

    /// Counts a connection the embedded broker's authentication accepted.
    pub fn count_auth_accepted(&self) {
        self.auth_accepted.fetch_add(1, Relaxed);
    }

    /// Counts a connection it refused.
    pub fn count_auth_refused(&self, reason: AuthRefusal) {
        let i = AuthRefusal::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(AuthRefusal::ALL.len() - 1);
        self.auth_refused[i].fetch_add(1, Relaxed);
    }

    /// Connections refused for `reason`.
    pub fn auth_refused(&self, reason: AuthRefusal) -> u64 {
        AuthRefusal::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.auth_refused[i].load(Relaxed))
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> IngestSnapshot {
        IngestSnapshot {
            received: self.received.load(Relaxed),
            stored_telemetry: self.stored_telemetry.load(Relaxed),
            stored_faults: self.stored_faults.load(Relaxed),
            stored_status: self.stored_status.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            acked: self.acked.load(Relaxed),
            acks_dropped: self.acks_dropped.load(Relaxed),
            dead_letters: RejectReason::ALL
                .iter()
                .map(|r| (r.as_str(), self.rejected(*r)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            batches: self.batches.load(Relaxed),
            commit_errors: self.commit_errors.load(Relaxed),
            connects: self.connects.load(Relaxed),
            connection_errors: self.connection_errors.load(Relaxed),
            dead_letters_pruned: self.dead_letters_pruned.load(Relaxed),
            broker_auth_accepted: self.auth_accepted.load(Relaxed),
            broker_auth_refused: AuthRefusal::ALL
                .iter()
                .map(|r| (r.as_str(), self.auth_refused(*r)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    /// Prometheus text exposition of the counters.
    pub fn render_prometheus(&self, out: &mut String) {
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            out,
            "fixahead_ingest_received_total",
            "MQTT messages received.",
            self.received.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP fixahead_ingest_stored_total Messages committed to the hot store.\n# TYPE fixahead_ingest_stored_total counter"
        );
        for (kind, v) in [
            ("telemetry", &self.stored_telemetry),
            ("fault", &self.stored_faults),
            ("status", &self.stored_status),
        ] {
            let _ = writeln!(
                out,
                "fixahead_ingest_stored_total{{kind=\"{kind}\"}} {}",
                v.load(Relaxed)
            );
        }
        counter(
            out,
            "fixahead_ingest_command_results_total",
            "Valid answers to commands received on fixahead/v1/+/cmd/result.",
            self.command_results.load(Relaxed),
        );
        counter(
            out,
            "fixahead_ingest_command_results_unmatched_total",
            "Valid command answers for an unknown command, another device's, or one already answered.",
            self.command_results_unmatched.load(Relaxed),
        );
        counter(
            out,
            "fixahead_ingest_duplicates_total",
            "Redelivered messages already stored.",
            self.duplicates.load(Relaxed),
        );
        counter(
            out,
            "fixahead_ingest_acked_total",
            "Messages acknowledged to the broker after commit.",
            self.acked.load(Relaxed),
        );
        counter(
            out,
            "fixahead_ingest_acks_dropped_total",
            "Acknowledgements not sent because their connection was lost (the broker redelivers).",
            self.acks_dropped.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP fixahead_ingest_dead_letters_total Rejected messages, by reason.\n# TYPE fixahead_ingest_dead_letters_total counter"
        );
        for r in RejectReason::ALL {
            let _ = writeln!(
                out,
                "fixahead_ingest_dead_letters_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.rejected(r)
            );
        }
        counter(
            out,
            "fixahead_dead_letters_pruned_total",
            "Dead-letter rows deleted by retention (dead_letters.max_rows, max_age); fixahead_ingest_dead_letters_total still counts every rejection.",
            self.dead_letters_pruned.load(Relaxed),
        );
        counter(
            out,
            "fixahead_ingest_batches_total",
            "Hot-store transactions committed.",
            self.batches.load(Relaxed),
        );
        counter(
            out,
            "fixahead_ingest_commit_errors_total",
            "Hot-store commits that failed and were retried.",
            self.commit_errors.load(Relaxed),
        );
        counter(
            out,
            "fixahead_mqtt_connects_total",
            "Connections to the MQTT broker.",
            self.connects.load(Relaxed),
        );
        counter(
            out,
            "fixahead_mqtt_connection_errors_total",
            "MQTT connection errors.",
            self.connection_errors.load(Relaxed),
        );
        counter(
            out,
            "fixahead_broker_auth_accepted_total",
            "Connections the embedded broker's device authentication accepted.",
            self.auth_accepted.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP fixahead_broker_auth_refused_total Connections the embedded broker refused, by reason (a CONNECT without a username is refused by rumqttd itself and not counted).\n# TYPE fixahead_broker_auth_refused_total counter"
        );
        for r in AuthRefusal::ALL {
            let _ = writeln!(
                out,
                "fixahead_broker_auth_refused_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.auth_refused(r)
            );
        }
    }
}
