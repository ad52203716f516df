//! What the handlers share: the services, the stores and the process's reporters.

use std::sync::Arc;

use domain::ProfileSet;
use store::hot::StoreReader;

use super::metrics::{self, ApiMetrics, ServiceMetrics};
use super::DEFAULT_BODY_LIMIT;
use super::{DriftReporter, RegionLookup};
use crate::access::AccessStore;
use crate::fleet::{Fleet, FleetSettings};
use crate::tickets::TicketService;

/// Returns extra health information (ingest counters, active model versions) as a
/// JSON object whose fields are merged into the `/health` response.
pub type HealthReporter = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What the handlers share. Cheap to clone.
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let data = std::path::Path::new("data");
/// let tickets = api::TicketService::open(&data.join("tickets.db"), api::TicketConfig::default())?;
/// let store = store::hot::StoreReader::open(&data.join("hot.db"))?;
/// let state = api::AppState::new(
///     tickets,
///     store,
///     domain::ProfileSet::builtin(),
///     prometheus::Registry::new(),
///     Arc::new(|| serde_json::json!({"ingest": {"messages_total": 0}})),
/// );
/// let app: axum::Router = api::router(state);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AppState {
    pub(super) tickets: TicketService,
    pub(super) store: StoreReader,
    pub(super) profiles: Arc<ProfileSet>,
    /// The process's one metrics registry, which `/metrics` encodes.
    pub(super) registry: prometheus::Registry,
    pub(super) health: HealthReporter,
    pub(super) api_metrics: Arc<ApiMetrics>,
    pub(super) credentials: Option<store::credentials::CredentialStore>,
    /// Set to `true` by [`AppState::close_streams`]: open event streams end.
    pub(super) streams_closed: Arc<tokio::sync::watch::Sender<bool>>,
    pub(super) access: Option<AccessStore>,
    pub(super) body_limit: usize,
    pub(super) webhooks: Option<crate::webhooks::WebhookService>,
    pub(super) commands: Option<crate::commands::CommandService>,
    pub(super) summary: Option<crate::fleet::FleetSummary>,
    pub(super) fleet: Fleet,
    /// Device regions for the performance report (default: none, assignment regions).
    pub(super) regions: RegionLookup,
    /// The drift of the active models, when the process scores.
    pub(super) drift: Option<DriftReporter>,
    /// Engineers and dispatch, when the server keeps an engineers' directory.
    pub(super) dispatcher: Option<crate::dispatch::Dispatcher>,
}

impl AppState {
    /// The handlers' state:
    /// * `tickets`: the ticket service;
    /// * `store`: a reader of the ingest hot store;
    /// * `profiles`: device profiles (a `ProfileSet` or an `Arc` of one);
    /// * `registry`: the process's one metrics registry; `/metrics` serves it, and the
    ///   API registers its own metrics and the ticket service's into it (the webhook
    ///   service's with [`AppState::with_webhooks`]);
    /// * `health`: extra health information; the fields of the JSON object it returns
    ///   are merged into `/health` (`status` excepted; a non-object value appears under
    ///   `details`, `null` adds nothing).
    ///
    /// Scrapes and `health` run on the blocking pool, so they may read SQLite.
    pub fn new(
        tickets: TicketService,
        store: StoreReader,
        profiles: impl Into<Arc<ProfileSet>>,
        registry: prometheus::Registry,
        health: HealthReporter,
    ) -> Self {
        let profiles: Arc<ProfileSet> = profiles.into();
        let fleet = Fleet::new(
            store.clone(),
            tickets.clone(),
            Arc::clone(&profiles),
            FleetSettings::default(),
        );
        let api_metrics = ApiMetrics::default();
        if let Err(e) = api_metrics.register(&registry) {
            tracing::error!(error = %e, "Could not register the API's metrics");
        }
        metrics::register(&registry, ServiceMetrics::tickets(tickets.clone()));
        Self {
            tickets,
            store,
            profiles,
            registry,
            health,
            api_metrics: Arc::new(api_metrics),
            credentials: None,
            streams_closed: Arc::new(tokio::sync::watch::Sender::new(false)),
            access: None,
            body_limit: DEFAULT_BODY_LIMIT,
            webhooks: None,
            commands: None,
            summary: None,
            fleet,
            regions: Arc::new(crate::tickets::AssignmentRegions),
            drift: None,
            dispatcher: None,
        }
    }

    /// Fleet analytics with `settings` (default [`FleetSettings::default`]), reading
    /// the hot store through `store`: a reader of its own, so that loading a snapshot
    /// (the whole registry) never holds up the device endpoints. Without this call they
    /// share the API's reader.
    pub fn with_fleet(mut self, settings: FleetSettings, store: StoreReader) -> Self {
        self.fleet = Fleet::new(
            store,
            self.tickets.clone(),
            Arc::clone(&self.profiles),
            settings,
        );
        self
    }

    /// Fleet analytics: the snapshot the fleet endpoints answer from and the
    /// batch-alarm detector. `fixahead run` refreshes and runs them periodically.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Serves `GET /api/v1/models/drift` from `reporter` (called on the blocking pool).
    /// Without it the endpoint answers an empty report.
    pub fn with_drift(mut self, reporter: DriftReporter) -> Self {
        self.drift = Some(reporter);
        self
    }

    /// Takes each device's region from `regions` (the device registry) in the
    /// performance report; tickets of devices without one fall back to their
    /// assignment region.
    pub fn with_regions(mut self, regions: RegionLookup) -> Self {
        self.regions = regions;
        self
    }

    /// Checks API keys against `store` and writes the audit log to it. Without it no
    /// key is valid: every route but `/health` answers 401.
    pub fn with_access(mut self, store: AccessStore) -> Self {
        self.access = Some(store);
        self
    }

    /// Refuses request bodies over `bytes` with 413 (default [`DEFAULT_BODY_LIMIT`]).
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Serves `POST`/`DELETE /api/v1/devices/{device_id}/credentials` from `store`.
    /// Without it those endpoints answer 404.
    pub fn with_credentials(mut self, store: store::credentials::CredentialStore) -> Self {
        self.credentials = Some(store);
        self
    }

    /// Serves `/api/v1/webhooks` from `service` (the `run` process also runs its
    /// dispatcher, [`crate::webhooks::run`]). Without it those endpoints answer 404.
    pub fn with_webhooks(mut self, service: crate::webhooks::WebhookService) -> Self {
        metrics::register(&self.registry, ServiceMetrics::webhooks(service.clone()));
        self.webhooks = Some(service);
        self
    }

    /// Sends and tracks device commands (`POST`/`GET .../commands`). Without it those
    /// endpoints answer 404.
    pub fn with_commands(mut self, commands: crate::commands::CommandService) -> Self {
        self.commands = Some(commands);
        self
    }

    /// Reads normal ranges and comparable devices for `GET .../diagnosis` from
    /// `fleet`. Without it the diagnosis has no ranges and no comparison.
    pub fn with_fleet_summary(mut self, summary: crate::fleet::FleetSummary) -> Self {
        self.summary = Some(summary);
        self
    }

    /// Serves the engineers' directory and the ticket rankings from `dispatcher`,
    /// and checks planners' assignments against engineers' capacity. Without it the
    /// engineer and candidate endpoints answer 404 and assignments are not checked.
    pub fn with_dispatcher(mut self, dispatcher: crate::dispatch::Dispatcher) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// Engineers and dispatch, when the server keeps an engineers' directory.
    pub fn dispatcher(&self) -> Option<&crate::dispatch::Dispatcher> {
        self.dispatcher.as_ref()
    }

    /// The ticket service.
    pub fn tickets(&self) -> &TicketService {
        &self.tickets
    }

    /// The reader of the hot store (devices, telemetry, faults, dead letters).
    pub fn store(&self) -> &StoreReader {
        &self.store
    }

    /// The device profiles.
    pub fn profiles(&self) -> &Arc<ProfileSet> {
        &self.profiles
    }

    /// The key store and audit log, when the API authenticates.
    pub fn access(&self) -> Option<&AccessStore> {
        self.access.as_ref()
    }

    /// The webhook service, when webhooks are on.
    pub fn webhooks(&self) -> Option<&crate::webhooks::WebhookService> {
        self.webhooks.as_ref()
    }

    /// The remote-command service, when devices can be commanded.
    pub fn commands(&self) -> Option<&crate::commands::CommandService> {
        self.commands.as_ref()
    }

    /// The fleet summary (normal ranges, comparable devices), when it is computed.
    pub fn fleet_summary(&self) -> Option<&crate::fleet::FleetSummary> {
        self.summary.as_ref()
    }

    /// The drift of the active models, when the process scores.
    pub fn drift(&self) -> Option<&DriftReporter> {
        self.drift.as_ref()
    }

    /// The device-region lookup of the performance report.
    pub fn regions(&self) -> &RegionLookup {
        &self.regions
    }

    /// A receiver that turns `true` when [`AppState::close_streams`] is called: a
    /// long-lived response (an event stream) ends then.
    pub fn streams_closed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.streams_closed.subscribe()
    }

    /// Ends every open `GET /api/v1/events` stream (and those opened later). Call it
    /// when shutting down: graceful shutdown waits for open responses, and an event
    /// stream never ends by itself.
    pub fn close_streams(&self) {
        self.streams_closed.send_replace(true);
    }
}
