//! Wiring: one process with the broker (or a client of an external one), ingest,
//! scoring, tickets, the periodic tasks and the HTTP API. Nothing here knows SQL or the
//! wire format.
//!
//! [`start`] opens the stores, starts the broker, rebuilds the scorer's feature state
//! from the hot store, then starts the HTTP server, the pipeline (source -> writer ->
//! scoring stage, bounded channels) and the tasks, and returns a [`Running`] handle.

mod broker;
mod http;
mod stores;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::{Message, ProfileSet, Timestamp};
use ingest::broker::InternalAccount;
use ingest::metrics::IngestMetrics;
use ingest::source::{MqttSettings, MqttSource};
use models::Scorer;
use store::hot::StoreReader;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin_key::Bootstrap;
use crate::scoring::{self, ScoringStage};
use crate::settings::Settings;
use crate::{tasks, Context, Result};

/// Messages the writer may hand the scoring stage before it waits.
const SCORING_QUEUE: usize = 1024;

/// A running fixahead.
pub struct Running {
    /// Where MQTT clients connect (the embedded broker, or the external one).
    pub mqtt_addr: String,
    /// The broker's host, as the ingestor connects to it.
    pub mqtt_host: String,
    /// The broker's port.
    pub mqtt_port: u16,
    /// TLS to the broker (`mqtts://`), for the demo's own publishers.
    pub mqtt_tls: Option<ingest::source::TlsConfig>,
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// The console's address (`http://ADDR/console/`, or `https://` with TLS).
    pub console_url: String,
    /// The console's accounts.
    pub users: store::users::UserStore,
    /// Engineers and dispatch: the engineers' directory, rankings and the sweep
    /// (`dispatch_pending`), which a task runs every `[dispatch] interval` and after
    /// ticket events.
    pub dispatcher: api::dispatch::Dispatcher,
    /// Fleet analytics (its snapshot is refreshed by a task every `[fleet]
    /// refresh_interval`; `demo` refreshes it once more after its replay).
    pub fleet: api::fleet::Fleet,
    /// How the first admin key came about (a generated one is for the caller to show).
    pub admin_key: Bootstrap,
    /// API keys and the audit log.
    pub access: api::AccessStore,
    /// The ticket service (its sweeps are plain blocking functions: `simulate-service`
    /// calls them itself after moving the service clock).
    pub tickets: api::TicketService,
    /// The ingest counters.
    pub metrics: Arc<IngestMetrics>,
    /// Messages the scoring stage has finished.
    pub scored: Arc<std::sync::atomic::AtomicU64>,
    stop: CancellationToken,
    /// The writer, which owns the source: ends when stopped, after acknowledging
    /// what it committed.
    ingest_task: JoinHandle<Result<()>>,
    /// The scoring stage: ends when the writer drops its channel, after draining it.
    scoring_task: JoinHandle<()>,
    http_task: JoinHandle<Result<()>>,
    /// Model reloads: aborted at shutdown.
    reload_task: Option<JoinHandle<()>>,
    /// Every other task (SLA clocks, webhooks, audit retention, the command publisher,
    /// command deadlines, the fleet summary, fleet analytics, the archive): each ends
    /// when stopped. The webhook dispatcher and the archive stop at once: a delivery in
    /// flight is sent again after the next start (at least once), and what the archive
    /// has not sent stays in hot.db after its cursor.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Running {
    /// A token that stops everything when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops taking messages, commits and acknowledges what was received, lets the
    /// scorer finish, and closes the HTTP server.
    pub async fn shutdown(self) -> Result<()> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until stopped (by [`Running::stop_token`] or a fatal error).
    pub async fn wait(self) -> Result<()> {
        let ingest = self.ingest_task.await.context("ingest task")?;
        // The writer has dropped the scoring channel; the scorer drains it and ends.
        self.scoring_task.await.context("scoring task")?;
        self.stop.cancel();
        if let Some(reload) = self.reload_task {
            reload.abort();
        }
        for (what, task) in self.tasks {
            task.await.context(what)?;
        }
        let http = self.http_task.await.context("HTTP task")?;
        ingest.and(http)
    }
}

/// Starts everything and returns once the broker and the HTTP listener are up.
pub async fn start(settings: &Settings, profiles: ProfileSet) -> Result<Running> {
    start_with_clients(settings, profiles, &[]).await
}

/// [`start`], letting `internal_clients` (fixahead's own, e.g. the demo's simulator)
/// into the embedded broker when it requires credentials.
pub async fn start_with_clients(
    settings: &Settings,
    profiles: ProfileSet,
    internal_clients: &[InternalAccount],
) -> Result<Running> {
    let profiles = Arc::new(profiles);
    let (stores, hot_writer) = stores::Stores::open(settings, &profiles)?;
    let metrics = Arc::new(IngestMetrics::default());
    let link = broker::connect(settings, &stores.credentials, &metrics, internal_clients)?;

    // Rebuild feature state from the hot store before taking new messages, so a
    // restart scores exactly as an uninterrupted run would.
    let drift = models::DriftMonitor::new(settings.models.drift);
    let mut scorer =
        Scorer::new(stores.registry.clone(), (*profiles).clone()).with_drift(drift.clone());
    let replayed = tokio::task::block_in_place(|| warm_up(&stores.reader, &mut scorer))?;
    if replayed > 0 {
        tracing::info!(
            messages = replayed,
            devices = scorer.device_count(),
            "Feature state rebuilt from the hot store"
        );
    }

    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    // Commands to devices: fixahead's own publishing connection and the commands table.
    let mut publish = client_settings(settings, &link, broker::commands_client_id(settings));
    (publish.username, publish.password) = link.commands.clone();
    let (publisher, publisher_task) = ingest::publisher::Publisher::start(&publish, stop.clone());
    tasks.push(("command publisher", publisher_task));
    let commands = api::CommandService::open(
        &stores.tickets_path,
        settings.commands_timeout,
        Arc::new(move |topic: &str, payload: Vec<u8>| publisher.publish(topic, payload)),
        Arc::new(crate::now),
    )
    .context("opening the command store")?;
    let archiver = stores.archiver(settings, &profiles)?;

    // HTTP first, so the address is known and health answers during start-up.
    let served = http::serve(
        settings,
        &stores,
        &profiles,
        http::Reporters {
            metrics: metrics.clone(),
            archive: archiver.as_ref().map(|a| a.metrics.clone()),
            drift: drift.clone(),
        },
        commands.clone(),
        stop.clone(),
    )
    .await?;

    // Ingest: source -> writer -> scoring.
    let mut mqtt = client_settings(settings, &link, settings.mqtt.client_id.clone());
    (mqtt.username, mqtt.password) = link.ingest.clone();
    mqtt.shared_group = settings.mqtt.shared_group.clone();
    mqtt.protocol = settings.mqtt.protocol;
    let (scoring_tx, scoring_rx) = mpsc::channel::<Message>(SCORING_QUEUE);
    let scored = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ingest_task = spawn_ingest(
        settings, hot_writer, &mqtt, &profiles, &metrics, scoring_tx, &stop,
    );
    let stage = ScoringStage {
        scorer,
        tickets: stores.tickets.clone(),
        // Its own connection: API reads must not stall the scorer (and through it ingest).
        reader: StoreReader::open(&stores.hot_path)?,
        profiles: profiles.clone(),
        commands: commands.clone(),
        metrics: metrics.clone(),
        scored: scored.clone(),
    };
    let scoring_task = tokio::spawn(scoring::run(stage, scoring_rx));

    let fleet = served.fleet.clone();
    let tickets_handle = stores.tickets.clone();
    spawn_tasks(settings, &stores, served.fleet, commands, &stop, &mut tasks)?;
    tasks.push((
        "session pruning task",
        tokio::spawn(tasks::prune_sessions(served.users.clone(), stop.clone())),
    ));
    tasks.push((
        "dispatch task",
        tokio::spawn(tasks::dispatch(
            served.dispatcher.clone(),
            stores.tickets.subscribe_events(),
            stop.clone(),
        )),
    ));
    // The archive tails hot.db on its own connection; ingest never waits for it.
    if let Some(a) = archiver {
        tasks.push(("archive", tokio::spawn(a.run(stop.clone()))));
    }
    let reload_task = settings
        .models
        .reload_every
        .map(|every| tokio::spawn(tasks::reload_models(stores.registry.clone(), every)));

    Ok(Running {
        mqtt_addr: link.url,
        mqtt_host: link.host,
        mqtt_port: link.port,
        mqtt_tls: link.tls,
        http_addr: served.addr,
        console_url: format!("{}://{}{}/", served.scheme, served.addr, console::PREFIX),
        users: served.users,
        dispatcher: served.dispatcher,
        fleet,
        admin_key: stores.admin_key,
        access: stores.access,
        tickets: tickets_handle,
        metrics,
        scored,
        stop,
        ingest_task,
        scoring_task,
        http_task: served.task,
        reload_task,
        tasks,
    })
}

/// MQTT client settings for `client_id` on the linked broker.
fn client_settings(
    settings: &Settings,
    link: &broker::BrokerLink,
    client_id: String,
) -> MqttSettings {
    let mut mqtt = MqttSettings::new(link.host.clone(), link.port);
    mqtt.client_id = client_id;
    mqtt.keep_alive = settings.mqtt.keep_alive;
    mqtt.tls = link.tls.clone();
    mqtt
}

/// Starts the MQTT source and the writer; the task ends when the writer has
/// committed and handed back every acknowledgement, and the source has sent them.
fn spawn_ingest(
    settings: &Settings,
    store: store::hot::HotStore,
    mqtt: &MqttSettings,
    profiles: &Arc<ProfileSet>,
    metrics: &Arc<IngestMetrics>,
    scoring_tx: mpsc::Sender<Message>,
    stop: &CancellationToken,
) -> JoinHandle<Result<()>> {
    let ingest = &settings.ingest;
    let request_capacity = ingest.queue_capacity + ingest.batch_max + 64;
    let source = MqttSource::new(mqtt, request_capacity);
    let (tx, rx) = mpsc::channel(ingest.queue_capacity);
    let writer = ingest::pipeline::Writer {
        store,
        acker: source.acker(),
        profiles: profiles.clone(),
        downstream: scoring_tx,
        metrics: metrics.clone(),
        settings: ingest::pipeline::PipelineSettings {
            batch_max: ingest.batch_max,
            batch_interval: ingest.batch_interval,
            max_future_ms: ingest.max_future_ms,
        },
    };
    let drained = CancellationToken::new();
    let source_task = tokio::spawn(source.run(tx, metrics.clone(), stop.clone(), drained.clone()));
    let writer_stop = stop.clone();
    tokio::spawn(async move {
        let result = writer.run(rx, writer_stop).await;
        // Everything the writer will acknowledge has been handed to the client.
        drained.cancel();
        let _ = source_task.await;
        result.map(drop).context("ingest writer")
    })
}

/// The periodic tasks (see [`tasks`]).
fn spawn_tasks(
    settings: &Settings,
    stores: &stores::Stores,
    fleet: api::fleet::Fleet,
    commands: api::CommandService,
    stop: &CancellationToken,
    out: &mut Vec<(&'static str, JoinHandle<()>)>,
) -> Result<()> {
    let sla_every = settings.sweep_interval(Duration::from_millis(
        settings.tickets.sla_check_interval.millis().max(1) as u64,
    ));
    out.extend([
        (
            "SLA task",
            tokio::spawn(tasks::check_sla(
                stores.tickets.clone(),
                // The engineers' directory replaces this when it lands (issue 20, part B).
                std::sync::Arc::new(api::tickets::NoSupervisors),
                sla_every,
                stop.clone(),
            )),
        ),
        (
            "webhook task",
            tokio::spawn(api::webhooks::run(
                stores.webhooks.clone(),
                stores.tickets.subscribe_events(),
                {
                    let stop = stop.clone();
                    async move { stop.cancelled().await }
                },
            )),
        ),
        (
            "audit retention task",
            tokio::spawn(tasks::prune_audit(
                stores.access.clone(),
                settings.http.audit_retention_ms,
                stop.clone(),
            )),
        ),
        (
            "fleet summary task",
            tokio::spawn(tasks::refresh_fleet_summary(
                stores.fleet_summary.clone(),
                StoreReader::open(&stores.hot_path)?,
                settings.diagnosis_refresh,
                stop.clone(),
            )),
        ),
        (
            "command deadline task",
            tokio::spawn(tasks::expire_commands(commands, stop.clone())),
        ),
        (
            "fleet task",
            tokio::spawn(tasks::run_fleet(fleet, stop.clone())),
        ),
    ]);
    Ok(())
}

/// Replays recent stored messages into the scorer, oldest first.
fn warm_up(reader: &StoreReader, scorer: &mut Scorer) -> Result<u64> {
    let Some(newest) = reader.newest_received_at()? else {
        return Ok(0);
    };
    let since = Timestamp(newest.millis().saturating_sub(tasks::WARM_UP_WINDOW_MS));
    Ok(reader.replay_since(since, |message| {
        scorer.observe(&message);
    })?)
}
