//! Ingest counters, registered into the process's one metrics registry
//! ([`IngestMetrics::register`]). Labels are low-cardinality (message kind, reject
//! reason), never a device id.

use domain::RejectReason;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
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

    /// Its place in [`AuthRefusal::ALL`].
    fn index(self) -> usize {
        self as usize
    }

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

/// Counters updated by the pipeline; cheap to share behind an `Arc`. Each is a
/// prometheus counter: incrementing it is one atomic add.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    /// Messages received from the broker.
    pub received: IntCounter,
    /// Telemetry messages stored.
    pub stored_telemetry: IntCounter,
    /// Fault messages stored.
    pub stored_faults: IntCounter,
    /// Status messages applied.
    pub stored_status: IntCounter,
    /// fixahead's own commands seen on `fixahead/v1/+/cmd` and ignored (not exported).
    pub own_commands: IntCounter,
    /// Valid command results passed on to the command store.
    pub command_results: IntCounter,
    /// Valid command results that answered no pending command of their device (unknown
    /// id, another device's command, or already answered); logged and dropped.
    pub command_results_unmatched: IntCounter,
    /// Messages already stored (same device and seq), acknowledged and dropped.
    pub duplicates: IntCounter,
    /// Messages acknowledged to the broker.
    pub acked: IntCounter,
    /// Acknowledgements not sent because the connection they belonged to was lost
    /// (each is a redelivery later, recognised as a duplicate).
    pub acks_dropped: IntCounter,
    /// Transactions committed.
    pub batches: IntCounter,
    /// Commits that failed and were retried.
    pub commit_errors: IntCounter,
    /// Connections (and reconnections) to the broker.
    pub connects: IntCounter,
    /// Broker connection errors.
    pub connection_errors: IntCounter,
    /// Dead-letter rows deleted by retention. The rejections stay counted by reason.
    pub dead_letters_pruned: IntCounter,
    /// Rejections by reason, in [`RejectReason::ALL`] order.
    rejected: Vec<IntCounter>,
    auth_accepted: IntCounter,
    /// Refused connections by reason, in [`AuthRefusal::ALL`] order.
    auth_refused: Vec<IntCounter>,
    /// The labelled families the children above belong to.
    stored: IntCounterVec,
    dead_letters: IntCounterVec,
    refused: IntCounterVec,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A counter; `name` and `help` are constants of this module, so they are valid.
fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("a valid metric name")
}

/// A labelled counter with every label value of `values` present from the start (a
/// scrape shows zeros, not gaps); returns the family and its children in order.
fn counters(
    name: &str,
    help: &str,
    label: &str,
    values: &[&str],
) -> (IntCounterVec, Vec<IntCounter>) {
    let family = IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid metric name");
    let children = values
        .iter()
        .map(|v| family.with_label_values(&[*v]))
        .collect();
    (family, children)
}

impl IngestMetrics {
    /// New counters, all zero, not yet registered.
    pub fn new() -> Self {
        let (stored, kinds) = counters(
            "fixahead_ingest_stored_total",
            "Messages committed to the hot store.",
            "kind",
            &["telemetry", "fault", "status"],
        );
        let reasons: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        let (dead_letters, rejected) = counters(
            "fixahead_ingest_dead_letters_total",
            "Rejected messages, by reason.",
            "reason",
            &reasons,
        );
        let refusals: Vec<&str> = AuthRefusal::ALL.iter().map(|r| r.as_str()).collect();
        let (refused, auth_refused) = counters(
            "fixahead_broker_auth_refused_total",
            "Connections the embedded broker refused, by reason (a CONNECT without a username is refused by rumqttd itself and not counted).",
            "reason",
            &refusals,
        );
        Self {
            received: counter("fixahead_ingest_received_total", "MQTT messages received."),
            stored_telemetry: kinds[0].clone(),
            stored_faults: kinds[1].clone(),
            stored_status: kinds[2].clone(),
            own_commands: counter("fixahead_ingest_own_commands_total", "fixahead's own commands seen and ignored."),
            command_results: counter(
                "fixahead_ingest_command_results_total",
                "Valid answers to commands received on fixahead/v1/+/cmd/result.",
            ),
            command_results_unmatched: counter(
                "fixahead_ingest_command_results_unmatched_total",
                "Valid command answers for an unknown command, another device's, or one already answered.",
            ),
            duplicates: counter(
                "fixahead_ingest_duplicates_total",
                "Redelivered messages already stored.",
            ),
            acked: counter(
                "fixahead_ingest_acked_total",
                "Messages acknowledged to the broker after commit.",
            ),
            acks_dropped: counter(
                "fixahead_ingest_acks_dropped_total",
                "Acknowledgements not sent because their connection was lost (the broker redelivers).",
            ),
            batches: counter(
                "fixahead_ingest_batches_total",
                "Hot-store transactions committed.",
            ),
            commit_errors: counter(
                "fixahead_ingest_commit_errors_total",
                "Hot-store commits that failed and were retried.",
            ),
            connects: counter("fixahead_mqtt_connects_total", "Connections to the MQTT broker."),
            connection_errors: counter(
                "fixahead_mqtt_connection_errors_total",
                "MQTT connection errors.",
            ),
            dead_letters_pruned: counter(
                "fixahead_dead_letters_pruned_total",
                "Dead-letter rows deleted by retention (dead_letters.max_rows, max_age); fixahead_ingest_dead_letters_total still counts every rejection.",
            ),
            rejected,
            auth_accepted: counter(
                "fixahead_broker_auth_accepted_total",
                "Connections the embedded broker's device authentication accepted.",
            ),
            auth_refused,
            stored,
            dead_letters,
            refused,
        }
    }

    /// Adds every exported counter to `registry` (once per registry).
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        let single = [
            &self.received,
            &self.command_results,
            &self.command_results_unmatched,
            &self.duplicates,
            &self.acked,
            &self.acks_dropped,
            &self.dead_letters_pruned,
            &self.batches,
            &self.commit_errors,
            &self.connects,
            &self.connection_errors,
            &self.auth_accepted,
        ];
        for counter in single {
            registry.register(Box::new(counter.clone()))?;
        }
        for family in [&self.stored, &self.dead_letters, &self.refused] {
            registry.register(Box::new(family.clone()))?;
        }
        Ok(())
    }

    /// Counts one rejected message.
    pub fn count_rejected(&self, reason: RejectReason) {
        self.rejected[reason.index()].inc();
    }

    /// Rejected messages of one reason.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()].get()
    }

    /// Counts a connection the embedded broker's authentication accepted.
    pub fn count_auth_accepted(&self) {
        self.auth_accepted.inc();
    }

    /// Counts a connection it refused.
    pub fn count_auth_refused(&self, reason: AuthRefusal) {
        self.auth_refused[reason.index()].inc();
    }

    /// Connections refused for `reason`.
    pub fn auth_refused(&self, reason: AuthRefusal) -> u64 {
        self.auth_refused[reason.index()].get()
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> IngestSnapshot {
        IngestSnapshot {
            received: self.received.get(),
            stored_telemetry: self.stored_telemetry.get(),
            stored_faults: self.stored_faults.get(),
            stored_status: self.stored_status.get(),
            duplicates: self.duplicates.get(),
            acked: self.acked.get(),
            acks_dropped: self.acks_dropped.get(),
            dead_letters: RejectReason::ALL
                .iter()
                .map(|r| (r.as_str(), self.rejected(*r)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            batches: self.batches.get(),
            commit_errors: self.commit_errors.get(),
            connects: self.connects.get(),
            connection_errors: self.connection_errors.get(),
            dead_letters_pruned: self.dead_letters_pruned.get(),
            broker_auth_accepted: self.auth_accepted.get(),
            broker_auth_refused: AuthRefusal::ALL
                .iter()
                .map(|r| (r.as_str(), self.auth_refused(*r)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}
