//! Wiring: one process with the broker (or a client of an external one), ingest,
//! scoring, tickets and the HTTP API. Nothing here knows SQL or the wire format.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::{Message, ProfileSet, Timestamp};
use ingest::broker::{BrokerSettings, DeviceAuth, InternalAccount};
use ingest::metrics::IngestMetrics;
use ingest::source::{MqttSettings, MqttSource};
use models::{ModelRegistry, Scorer};
use store::credentials::CredentialStore;
use store::hot::{HotStore, StoreReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::scoring::{self, ScoringStage};

/// Receive time replayed into the feature engine at start-up: longer than the slowest
/// feature window (7 days), so the channel features are restored. (Device age and
/// message count restart from this window: see docs/operations.md.)
const WARM_UP_WINDOW_MS: i64 = 30 * Timestamp::DAY_MS;

/// A running fixahead.
pub(crate) struct Running {
    /// Where MQTT clients connect (the embedded broker, or the external one).
    pub(crate) mqtt_addr: String,
    /// The broker's host, as the ingestor connects to it.
    pub(crate) mqtt_host: String,
    /// The broker's port.
    pub(crate) mqtt_port: u16,
    /// TLS to the broker (`mqtts://`), for the demo's own publishers.
    pub(crate) mqtt_tls: Option<ingest::source::TlsConfig>,
    /// Where the HTTP API listens.
    pub(crate) http_addr: SocketAddr,
    /// How the first admin key came about (a generated one is for the caller to show).
    pub(crate) admin_key: crate::keys::Bootstrap,
    /// API keys and the audit log.
    pub(crate) access: api::AccessStore,
    stop: CancellationToken,
    ingest_task: JoinHandle<anyhow::Result<()>>,
    scoring_task: JoinHandle<()>,
    http_task: JoinHandle<anyhow::Result<()>>,
    reload_task: JoinHandle<()>,
    /// The SLA checker; it ends when stopped.
    sla_task: JoinHandle<()>,
    /// The webhook dispatcher. It stops at once: a delivery in flight is not recorded,
    /// so it is sent again after the next start (at least once).
    webhook_task: JoinHandle<()>,
    /// Deletes audit records past `[http] audit_retention`, hourly.
    audit_task: JoinHandle<()>,
    /// The command publisher's connection and the fleet-summary refresh; they end when
    /// stopped.
    aux_tasks: Vec<JoinHandle<()>>,
    /// Fleet analytics: snapshot refresh and the batch-alarm detector.
    fleet_task: JoinHandle<()>,
    /// The InfluxDB archive, when configured. It stops at once: what it has not sent
    /// stays in hot.db, after its cursor, for the next start.
    archive_task: Option<JoinHandle<()>>,
}

impl Running {
    /// A token that stops everything when cancelled.
    pub(crate) fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops taking messages, commits and acknowledges what was received, lets the
    /// scorer finish, and closes the HTTP server.
    pub(crate) async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until stopped (by [`Running::stop_token`] or a fatal error).
    pub(crate) async fn wait(self) -> anyhow::Result<()> {
        let ingest = self.ingest_task.await.context("ingest task")?;
        // The writer has dropped the scoring channel; the scorer drains it and ends.
        self.scoring_task.await.context("scoring task")?;
        self.stop.cancel();
        self.reload_task.abort();
        self.sla_task.await.context("SLA task")?;
        self.webhook_task.await.context("webhook task")?;
        self.audit_task.await.context("audit retention task")?;
        for task in self.aux_tasks {
            task.await
                .context("command publisher or fleet summary task")?;
        }
        self.fleet_task.await.context("fleet task")?;
        if let Some(archive) = self.archive_task {
            archive.await.context("archive task")?;
        }
        let http = self.http_task.await.context("HTTP task")?;
        ingest.and(http)
    }
}

/// Starts everything and returns once the broker and the HTTP listener are up.
pub(crate) async fn start(config: &Config, profiles: ProfileSet) -> anyhow::Result<Running> {
    start_with_clients(config, profiles, &[]).await
}

/// [`start`], letting `internal_clients` (fixahead's own, e.g. the demo's simulator)
/// into the embedded broker when it requires credentials.
pub(crate) async fn start_with_clients(
    config: &Config,
    profiles: ProfileSet,
    internal_clients: &[InternalAccount],
) -> anyhow::Result<Running> {
    let profiles = Arc::new(profiles);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let hot_path = config.data_dir.join("hot.db");
    let store = HotStore::open(&hot_path, config.ingest.synchronous)
        .with_context(|| format!("opening hot store {}", hot_path.display()))?
        .with_dead_letter_retention(config.dead_letter_retention()?);
    let reader = StoreReader::open(&hot_path)?;
    let tickets =
        api::TicketService::open(&config.data_dir.join("tickets.db"), config.tickets.clone())
            .context("opening ticket store")?;
    // Webhooks: registrations and the delivery outbox live in tickets.db, beside the
    // events they deliver.
    let webhooks =
        api::WebhookService::open(&config.data_dir.join("tickets.db"), config.webhooks.clone())
            .context("opening the webhook outbox")?;
    // API keys: every route but /health needs one, so make sure an admin key exists.
    let access = api::AccessStore::open_in(&config.data_dir)
        .with_context(|| format!("opening the API key store in {}", config.data_dir.display()))?;
    let admin_key =
        tokio::task::block_in_place(|| crate::keys::ensure_admin_key(&access, &config.data_dir))?;
    let model_dir = config.model_dir();
    let registry = ModelRegistry::load_dir(&model_dir)
        .with_context(|| format!("loading models from {}", model_dir.display()))?;
    let versions = registry.versions();
    if versions.is_empty() {
        tracing::warn!(dir = %model_dir.display(), "No active model: devices are stored but not scored until `fixahead train --out` writes one");
    } else {
        tracing::info!(?versions, "Active models");
    }
    let stale = registry.stale_types(&profiles);
    if !stale.is_empty() {
        tracing::warn!(
            ?stale,
            dir = %model_dir.display(),
            "Active models trained on other features than these types' profiles name: \
             their devices are stored but not scored until `fixahead train` writes new ones"
        );
    }

    let metrics = Arc::new(IngestMetrics::default());
    // Device credentials: checked by the embedded broker, issued by `fixahead devices`
    // and the API, exported for Mosquitto. Opened with an external broker too, so the
    // API can issue credentials for the export.
    let credentials = CredentialStore::open_in(&config.data_dir).with_context(|| {
        format!(
            "opening the credential store in {}",
            config.data_dir.display()
        )
    })?;

    // Broker: embedded unless an external URL is configured.
    let mut ingest_login = (config.mqtt.username.clone(), config.mqtt.password.clone());
    let mut commands_login = ingest_login.clone();
    let commands_client_id = format!("{}-commands", config.mqtt.client_id);
    let (host, port, tls, mqtt_addr) = match &config.mqtt.url {
        Some(url) => {
            let endpoint = config.mqtt_endpoint(url)?;
            (endpoint.host, endpoint.port, endpoint.tls, url.clone())
        }
        None => {
            let mut settings = BrokerSettings::new(config.mqtt.listen);
            if config.allow_anonymous() {
                tracing::warn!(
                    "The embedded MQTT broker lets any client connect (--allow-anonymous)"
                );
            } else {
                // The ingestor's own login: random, in memory, valid for this process only.
                let ingest_account = InternalAccount::generate("ingest");
                ingest_login = (
                    Some(ingest_account.username.clone()),
                    Some(ingest_account.secret.clone()),
                );
                let commands_account = InternalAccount::generate("commands");
                commands_login = (
                    Some(commands_account.username.clone()),
                    Some(commands_account.secret.clone()),
                );
                let mut internal = vec![ingest_account, commands_account];
                internal.extend(internal_clients.iter().cloned());
                settings.auth = Some(DeviceAuth {
                    store: credentials.clone(),
                    internal,
                    reserved_client_ids: vec![
                        config.mqtt.client_id.clone(),
                        commands_client_id.clone(),
                    ],
                    metrics: metrics.clone(),
                });
                let issued = tokio::task::block_in_place(|| credentials.list())?.len();
                if issued == 0 {
                    tracing::warn!("No device has MQTT credentials yet, so every device is refused: issue them with `fixahead devices add DEVICE_ID`, or start with --allow-anonymous");
                } else {
                    tracing::info!(
                        devices = issued,
                        "The embedded MQTT broker requires device credentials"
                    );
                }
            }
            let broker = ingest::broker::start(&settings)?;
            let addr = broker.addr();
            (
                addr.ip().to_string(),
                addr.port(),
                None,
                format!("mqtt://{addr}"),
            )
        }
    };

    // Rebuild feature state from the hot store before taking new messages, so a
    // restart scores exactly as an uninterrupted run would.
    let drift = models::DriftMonitor::new(config.drift_settings()?);
    let mut scorer = Scorer::new(registry.clone(), (*profiles).clone()).with_drift(drift.clone());
    let replayed = tokio::task::block_in_place(|| warm_up(&reader, &mut scorer))?;
    if replayed > 0 {
        tracing::info!(
            messages = replayed,
            devices = scorer.device_count(),
            "Feature state rebuilt from the hot store"
        );
    }

    let stop = CancellationToken::new();
    // Set up before anything starts: a missing token stops the start-up.
    let archiver = match config.influx_archive()? {
        Some((target, settings)) => {
            tracing::info!(url = %target.url, org = %target.org, bucket = %target.bucket, "Archiving to InfluxDB");
            Some(ingest::archive::Archiver {
                reader: StoreReader::open(&hot_path)?,
                sink: ingest::archive::InfluxSink::new(&target, settings.timeout)?,
                profiles: profiles.clone(),
                settings,
                metrics: Arc::new(ingest::archive::ArchiveMetrics::default()),
            })
        }
        None => None,
    };
    let archive_metrics = archiver.as_ref().map(|a| a.metrics.clone());

    // Commands to devices: fixahead's own publishing connection, the commands table
    // in tickets.db, and the fleet summary behind remote diagnosis.
    let mut publish_settings = MqttSettings::new(host.clone(), port);
    publish_settings.client_id = commands_client_id;
    (publish_settings.username, publish_settings.password) = commands_login;
    publish_settings.keep_alive = Duration::from_secs(config.mqtt.keep_alive_s);
    publish_settings.tls = tls.clone();
    let (publisher, publisher_task) =
        ingest::publisher::Publisher::start(&publish_settings, stop.clone());
    let tickets_path = config.data_dir.join("tickets.db");
    let commands = api::CommandService::open(
        &tickets_path,
        Duration::from_secs(config.commands.timeout_s),
        Arc::new(move |topic: &str, payload: Vec<u8>| publisher.publish(topic, payload)),
        Arc::new(|| Timestamp(ingest::source::now_ms())),
    )
    .context("opening the command store")?;
    let fleet_summary =
        api::FleetSummary::open(&tickets_path).context("opening the fleet summary")?;
    let summary_task = tokio::spawn(refresh_fleet(
        fleet_summary.clone(),
        commands.clone(),
        StoreReader::open(&hot_path)?,
        Duration::from_secs(config.diagnosis.refresh_interval_s),
        stop.clone(),
    ));

    // HTTP first, so the address is known and health answers during start-up.
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HTTP listener on {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let state = api::AppState::new(
        tickets.clone(),
        reader.clone(),
        (*profiles).clone(),
        {
            let metrics = metrics.clone();
            let registry = registry.clone();
            let archive_metrics = archive_metrics.clone();
            let webhooks = webhooks.clone();
            let drift = drift.clone();
            Arc::new(move || {
                let mut out = String::new();
                metrics.render_prometheus(&mut out);
                webhooks.render_prometheus(&mut out);
                drift.render_prometheus(&mut out);
                if let Some(archive) = &archive_metrics {
                    archive.render_prometheus(&mut out);
                }
                out.push_str(&format!(
                    "# HELP fixahead_model_reloads_total Model reloads that switched to a newly activated version.\n\
                     # TYPE fixahead_model_reloads_total counter\nfixahead_model_reloads_total {}\n\
                     # HELP fixahead_model_reload_failures_total Model reloads refused (unreadable or half-written artefact); the models in use stayed.\n\
                     # TYPE fixahead_model_reload_failures_total counter\nfixahead_model_reload_failures_total {}\n",
                    registry.reloads(),
                    registry.reload_failures()
                ));
                out
            })
        },
        {
            let metrics = metrics.clone();
            let registry = registry.clone();
            let archive_metrics = archive_metrics.clone();
            Arc::new(move || {
                let mut health = serde_json::json!({
                    "ingest": metrics.snapshot(),
                    "models": registry.versions(),
                });
                if let Some(archive) = &archive_metrics {
                    health["archive"] = serde_json::json!(archive.snapshot());
                }
                health
            })
        },
    )
    .with_drift(crate::insight::drift_reporter(drift))
    .with_regions(crate::insight::DeviceRegions::lookup(reader.clone()))
    .with_credentials(credentials)
    .with_webhooks(webhooks.clone())
    .with_commands(commands.clone())
    .with_fleet_summary(fleet_summary)
    .with_access(access.clone())
    .with_body_limit(config.http.max_body_bytes)
    .with_fleet(config.fleet.clone(), StoreReader::open(&hot_path)?);
    let fleet = state.fleet().clone();
    let http_stop = stop.clone();
    let streams = state.clone();
    let http_task = tokio::spawn(async move {
        api::serve(listener, api::router(state), async move {
            http_stop.cancelled().await;
            // Event streams never end by themselves; graceful shutdown waits for them.
            streams.close_streams();
        })
        .await
        .context("HTTP server")
    });
    tracing::info!(%http_addr, "HTTP API listening");

    // Ingest: source -> writer -> scoring.
    let mut mqtt = MqttSettings::new(host.clone(), port);
    mqtt.client_id = config.mqtt.client_id.clone();
    (mqtt.username, mqtt.password) = ingest_login;
    mqtt.keep_alive = Duration::from_secs(config.mqtt.keep_alive_s);
    mqtt.shared_group = config.mqtt.shared_group.clone();
    mqtt.tls = tls.clone();
    mqtt.protocol = config.mqtt_protocol()?;
    let request_capacity = config.ingest.queue_capacity + config.ingest.batch_max + 64;
    let source = MqttSource::new(&mqtt, request_capacity);
    let (tx, rx) = mpsc::channel(config.ingest.queue_capacity);
    let (scoring_tx, scoring_rx) = mpsc::channel::<Message>(1024);
    let writer = ingest::pipeline::Writer {
        store,
        acker: source.acker(),
        profiles: profiles.clone(),
        downstream: scoring_tx,
        metrics: metrics.clone(),
        settings: ingest::pipeline::PipelineSettings {
            batch_max: config.ingest.batch_max,
            batch_interval: config.batch_interval(),
            max_future_ms: config.max_future_ms()?,
        },
    };
    let drained = CancellationToken::new();
    let source_task = tokio::spawn(source.run(tx, metrics.clone(), stop.clone(), drained.clone()));
    let writer_stop = stop.clone();
    let ingest_task = tokio::spawn(async move {
        let result = writer.run(rx, writer_stop).await;
        // Everything the writer will acknowledge has been handed to the client.
        drained.cancel();
        let _ = source_task.await;
        result.map(drop).context("ingest writer")
    });

    // SLA clocks: a periodic check on the blocking pool, by the service's clock.
    let audit_task = tokio::spawn(prune_audit(
        access.clone(),
        config.http.audit_retention.millis(),
        stop.clone(),
    ));
    let webhook_task = tokio::spawn(api::webhooks::run(webhooks, tickets.subscribe_events(), {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    }));
    let sla_task = tokio::spawn(check_sla(
        tickets.clone(),
        Duration::from_millis(config.tickets.sla_check_interval.millis().max(1) as u64),
        stop.clone(),
    ));

    // Fleet analytics: refresh the snapshot, run the batch-alarm detector.
    let fleet_task = tokio::spawn(run_fleet(fleet, stop.clone()));

    // Its own connection: API reads must not stall the scorer (and through it ingest).
    let stage = ScoringStage {
        scorer,
        tickets,
        reader: StoreReader::open(&hot_path)?,
        profiles,
        commands,
        metrics: metrics.clone(),
    };
    let scoring_task = tokio::spawn(scoring::run(stage, scoring_rx));

    // The archive tails hot.db on its own connection; ingest never waits for it.
    let archive_task = archiver.map(|a| tokio::spawn(a.run(stop.clone())));

    let reload_every = config.models.reload_interval_s.unwrap_or(5);
    let reload_task = tokio::spawn(async move {
        if reload_every == 0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(reload_every));
        loop {
            tick.tick().await;
            let registry = registry.clone();
            match tokio::task::spawn_blocking(move || registry.reload()).await {
                Ok(Ok(changed)) if !changed.is_empty() => {
                    tracing::info!(?changed, "Switched to newly activated models");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "Model reload failed; keeping the current models")
                }
                _ => {}
            }
        }
    });

    Ok(Running {
        mqtt_addr,
        mqtt_host: host,
        mqtt_port: port,
        mqtt_tls: tls,
        http_addr,
        admin_key,
        access,
        stop,
        ingest_task,
        scoring_task,
        http_task,
        reload_task,
        sla_task,
        webhook_task,
        audit_task,
        aux_tasks: vec![publisher_task, summary_task],
        fleet_task,
        archive_task,
    })
}

/// Deletes audit records older than `retention_ms` at start and then hourly, until
/// `stop`.
async fn prune_audit(access: api::AccessStore, retention_ms: i64, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let store = access.clone();
        match tokio::task::spawn_blocking(move || store.prune_audit(retention_ms)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(deleted = n, "Deleted audit records past their retention"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Pruning the audit log failed; retrying in an hour")
            }
            Err(e) => tracing::error!(error = %e, "Pruning the audit log panicked"),
        }
    }
}

/// Refreshes the fleet snapshot every `[fleet] refresh_interval` and runs the
/// batch-alarm detector every `[fleet] alarm_interval` (first at start-up), until
/// `stop`.
async fn run_fleet(fleet: api::fleet::Fleet, stop: CancellationToken) {
    let every = |d: api::tickets::ConfigDuration| Duration::from_millis(d.millis().max(1) as u64);
    let mut refresh = tokio::time::interval(every(fleet.settings().refresh_interval));
    let mut detect = tokio::time::interval(every(fleet.settings().alarm_interval));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    detect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let detecting = tokio::select! {
            _ = stop.cancelled() => return,
            _ = detect.tick() => true,
            _ = refresh.tick() => false,
        };
        let f = fleet.clone();
        let result = tokio::task::spawn_blocking(move || {
            if detecting {
                f.detect().map(Some)
            } else {
                f.refresh().map(|_| None)
            }
        })
        .await;
        match result {
            Ok(Ok(Some(report))) => {
                for a in &report.raised {
                    tracing::warn!(alarm = a.id, model = %a.model, dimension = %a.dimension, value = %a.value, component = %a.component, statistic = %a.statistic, p_value = a.p_value, "Fleet batch alarm raised");
                }
                tracing::debug!(
                    tested = report.tested,
                    active = report.active,
                    "Batch alarm detector ran"
                );
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Fleet analytics failed; retrying at the next tick")
            }
            Err(e) => tracing::error!(error = %e, "Fleet analytics panicked"),
        }
    }
}

/// Checks the tickets' SLA clocks every `every` until `stop`.
async fn check_sla(tickets: api::TicketService, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let svc = tickets.clone();
        match tokio::task::spawn_blocking(move || svc.check_sla()).await {
            Ok(Ok(breaches)) => {
                for b in breaches {
                    tracing::warn!(ticket_id = b.ticket_id, kind = b.kind.as_str(), escalated_to = %b.escalated_to, "SLA breached");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "SLA check failed; retrying at the next tick"),
            Err(e) => tracing::error!(error = %e, "SLA check panicked"),
        }
    }
}

/// Rebuilds the fleet summary at start and every `every`, and times out the commands
/// whose deadline passed (reads do that too), until `stop`.
async fn refresh_fleet(
    fleet: api::FleetSummary,
    commands: api::CommandService,
    reader: StoreReader,
    every: Duration,
    stop: CancellationToken,
) {
    let mut refresh = tokio::time::interval(every);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expire = tokio::time::interval(Duration::from_secs(1));
    expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = refresh.tick() => {
                let (fleet, reader) = (fleet.clone(), reader.clone());
                let started = std::time::Instant::now();
                match tokio::task::spawn_blocking(move || {
                    fleet.refresh(&reader, Timestamp(ingest::source::now_ms()))
                })
                .await
                {
                    Ok(Ok(devices)) => tracing::debug!(devices, ms = started.elapsed().as_millis() as u64, "Fleet summary refreshed"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "Fleet summary refresh failed; retrying at the next tick"),
                    Err(e) => tracing::error!(error = %e, "Fleet summary refresh panicked"),
                }
            }
            _ = expire.tick() => {
                let commands = commands.clone();
                match tokio::task::spawn_blocking(move || commands.expire()).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!(commands = n, "Commands timed out"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "Timing out commands failed"),
                    _ => {}
                }
            }
        }
    }
}

/// Replays recent stored messages into the scorer, oldest first.
fn warm_up(reader: &StoreReader, scorer: &mut Scorer) -> anyhow::Result<u64> {
    let Some(newest) = reader.newest_received_at()? else {
        return Ok(0);
    };
    let since = Timestamp(newest.millis().saturating_sub(WARM_UP_WINDOW_MS));
    Ok(reader.replay_since(since, |message| {
        scorer.observe(&message);
    })?)
}
