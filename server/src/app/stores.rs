//! Opening the data directory: every store, the model registry, the first admin key.

use std::path::PathBuf;
use std::sync::Arc;

use domain::ProfileSet;
use models::ModelRegistry;
use store::credentials::CredentialStore;
use store::hot::{HotStore, StoreReader, HOT_DB};
use store::tickets::TICKETS_DB;

use crate::admin_key::{self, Bootstrap};
use crate::settings::Settings;
use crate::{Context, Result};

/// The stores of a running fixahead (the hot store's writer is handed out
/// separately: it has exactly one owner, the ingest writer).
pub(super) struct Stores {
    pub(super) hot_path: PathBuf,
    pub(super) tickets_path: PathBuf,
    /// The API's reader of the hot store.
    pub(super) reader: StoreReader,
    pub(super) tickets: api::TicketService,
    pub(super) webhooks: api::WebhookService,
    pub(super) access: api::AccessStore,
    pub(super) admin_key: Bootstrap,
    pub(super) credentials: CredentialStore,
    pub(super) fleet_summary: api::FleetSummary,
    pub(super) registry: ModelRegistry,
}

impl Stores {
    /// Opens (creating or upgrading) every store of the data directory and loads the
    /// active models; returns the stores and the hot store's writer.
    pub(super) fn open(settings: &Settings, profiles: &ProfileSet) -> Result<(Self, HotStore)> {
        let dir = &settings.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let hot_path = dir.join(HOT_DB);
        // The writer first: it creates the file the readers open.
        let writer = HotStore::open(&hot_path, settings.ingest.synchronous)
            .with_context(|| format!("opening hot store {}", hot_path.display()))?
            .with_dead_letter_retention(settings.dead_letters);
        let tickets_path = dir.join(TICKETS_DB);
        let tickets = api::TicketService::open_with_clock(
            &tickets_path,
            settings.tickets.clone(),
            settings.clock.clock(),
        )
        .context("opening ticket store")?
        .with_procedures(settings.procedures.clone(), settings.satisfaction.clone())
        .context("configuring procedures")?;
        // Webhooks: registrations and the delivery outbox live in tickets.db, beside the
        // events they deliver.
        let webhooks = api::WebhookService::open(&tickets_path, settings.webhooks.clone())
            .context("opening the webhook outbox")?;
        // API keys: every route but /health needs one, so make sure an admin key exists.
        let access = api::AccessStore::open_in(dir)
            .with_context(|| format!("opening the API key store in {}", dir.display()))?;
        let admin_key = tokio::task::block_in_place(|| admin_key::ensure(&access, dir))?;
        // Device credentials: checked by the embedded broker, issued by `fixahead
        // devices` and the API, exported for Mosquitto. Opened with an external broker
        // too, so the API can issue credentials for the export.
        let credentials = CredentialStore::open_in(dir)
            .with_context(|| format!("opening the credential store in {}", dir.display()))?;
        let fleet_summary =
            api::FleetSummary::open(&tickets_path).context("opening the fleet summary")?;
        let reader = StoreReader::open(&hot_path)?;
        // Tickets opened before tickets.db schema 6 learn their device's batch and
        // region (the console's queue filters by them).
        match tokio::task::block_in_place(|| tickets.fill_device_facts(&reader)) {
            Ok(0) => {}
            Ok(n) => tracing::info!(tickets = n, "Copied device batch and region onto tickets"),
            Err(e) => tracing::warn!(error = %e, "Could not copy device facts onto tickets"),
        }
        let stores = Stores {
            reader,
            hot_path,
            tickets_path,
            tickets,
            webhooks,
            access,
            admin_key,
            credentials,
            fleet_summary,
            registry: load_models(settings, profiles)?,
        };
        Ok((stores, writer))
    }

    /// The InfluxDB archive, when configured.
    pub(super) fn archiver(
        &self,
        settings: &Settings,
        profiles: &Arc<ProfileSet>,
    ) -> Result<Option<ingest::archive::Archiver<ingest::archive::InfluxSink>>> {
        let Some(archive) = &settings.archive else {
            return Ok(None);
        };
        let target = &archive.target;
        tracing::info!(url = %target.url, org = %target.org, bucket = %target.bucket, "Archiving to InfluxDB");
        Ok(Some(ingest::archive::Archiver {
            reader: StoreReader::open(&self.hot_path)?,
            sink: ingest::archive::InfluxSink::new(target, archive.settings.timeout)?,
            profiles: profiles.clone(),
            settings: archive.settings.clone(),
            metrics: Arc::new(ingest::archive::ArchiveMetrics::default()),
        }))
    }
}

/// The active model of every type, and warnings for what is missing or stale.
fn load_models(settings: &Settings, profiles: &ProfileSet) -> Result<ModelRegistry> {
    let dir = &settings.models.dir;
    let registry = ModelRegistry::load_dir(dir)
        .with_context(|| format!("loading models from {}", dir.display()))?;
    let versions = registry.versions();
    if versions.is_empty() {
        tracing::warn!(dir = %dir.display(), "No active model: devices are stored but not scored until `fixahead train --out` writes one");
    } else {
        tracing::info!(?versions, "Active models");
    }
    let stale = registry.stale_types(profiles);
    if !stale.is_empty() {
        tracing::warn!(
            ?stale,
            dir = %dir.display(),
            "Active models trained on other features than these types' profiles name: \
             their devices are stored but not scored until `fixahead train` writes new ones"
        );
    }
    Ok(registry)
}
