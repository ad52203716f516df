//! The HTTP side of start-up: the API's state over the stores and the process's
//! reporters, served until stopped.

use std::net::SocketAddr;
use std::sync::Arc;

use domain::ProfileSet;
use ingest::archive::ArchiveMetrics;
use ingest::metrics::IngestMetrics;
use store::hot::StoreReader;
use store::users::UserStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::stores::Stores;
use crate::settings::Settings;
use crate::{insight, Context, Result};

/// What `/metrics`, `/health` and the model endpoints report about the rest of the
/// process.
pub(super) struct Reporters {
    pub(super) metrics: Arc<IngestMetrics>,
    pub(super) archive: Option<Arc<ArchiveMetrics>>,
    pub(super) drift: models::DriftMonitor,
}

/// The HTTP server, started.
pub(super) struct Served {
    pub(super) addr: SocketAddr,
    pub(super) task: JoinHandle<Result<()>>,
    /// Fleet analytics, whose snapshot and detector the fleet task runs.
    pub(super) fleet: api::fleet::Fleet,
    /// The console's accounts, whose expired sessions a task prunes.
    pub(super) users: UserStore,
    /// Engineers and dispatch, whose sweep a task runs.
    pub(super) dispatcher: api::dispatch::Dispatcher,
    /// `http` or `https`.
    pub(super) scheme: &'static str,
}

/// Binds the listener and serves the API until `stop`.
pub(super) async fn serve(
    settings: &Settings,
    stores: &Stores,
    profiles: &Arc<ProfileSet>,
    reporters: Reporters,
    commands: api::CommandService,
    stop: CancellationToken,
) -> Result<Served> {
    let listen = settings.http.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding HTTP listener on {listen}"))?;
    let addr = listener.local_addr()?;
    let users = UserStore::open_in(&settings.data_dir)
        .context("opening the console's accounts")?
        .with_policies(settings.console.sessions, settings.console.sign_in);
    let dispatcher = api::dispatch::Dispatcher::new(
        stores.tickets.clone(),
        users.clone(),
        settings.dispatch.clone(),
    )?;
    let state = api::AppState::new(
        stores.tickets.clone(),
        stores.reader.clone(),
        (**profiles).clone(),
        metrics_registry(stores, &reporters)?,
        health_reporter(stores, &reporters),
    )
    .with_drift(insight::drift_reporter(reporters.drift))
    .with_regions(insight::DeviceRegions::lookup(stores.reader.clone()))
    .with_credentials(stores.credentials.clone())
    .with_webhooks(stores.webhooks.clone())
    .with_commands(commands)
    .with_fleet_summary(stores.fleet_summary.clone())
    .with_access(stores.access.clone())
    .with_body_limit(settings.http.max_body_bytes)
    .with_fleet(settings.fleet.clone(), StoreReader::open(&stores.hot_path)?)
    .with_dispatcher(dispatcher.clone());
    let fleet = state.fleet().clone();
    let console = console::ConsoleState::new(
        state.clone(),
        users.clone(),
        console::ConsoleSettings {
            secure_cookies: settings.console.secure_cookies,
        },
    );
    let app = api::router(state.clone()).merge(console::router(console));
    let streams = state;
    let shutdown = async move {
        stop.cancelled().await;
        // Event streams never end by themselves; graceful shutdown waits for them.
        streams.close_streams();
    };
    let task = match &settings.http.tls {
        None => tokio::spawn(async move {
            api::serve(listener, app, shutdown)
                .await
                .context("HTTP server")
        }),
        Some(tls) => {
            let config = super::tls::server_config(tls)?;
            let listener = listener.into_std()?;
            tokio::spawn(serve_tls(listener, config, app, shutdown))
        }
    };
    let scheme = if settings.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(http_addr = %addr, scheme, "HTTP API and console listening");
    Ok(Served {
        addr,
        task,
        fleet,
        users,
        dispatcher,
        scheme,
    })
}

/// Serves `app` over HTTPS until `shutdown`, then lets in-flight requests finish.
async fn serve_tls(
    listener: std::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
    axum_server::from_tcp_rustls(listener, config)
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
        .context("HTTPS server")
}

/// The process's one metrics registry: ingest, the archive, the drift watch and the
/// model reloads register here; the API adds its own and the ticket and webhook
/// services' when its state is built.
fn metrics_registry(stores: &Stores, r: &Reporters) -> Result<prometheus::Registry> {
    let registry = prometheus::Registry::new();
    let registered = || -> prometheus::Result<()> {
        r.metrics.register(&registry)?;
        if let Some(archive) = &r.archive {
            archive.register(&registry)?;
        }
        registry.register(Box::new(r.drift.metrics()))?;
        stores.registry.register_metrics(&registry)
    };
    registered().map_err(|e| crate::Error::Failed(format!("registering metrics: {e}")))?;
    Ok(registry)
}

fn health_reporter(stores: &Stores, r: &Reporters) -> api::HealthReporter {
    let metrics = r.metrics.clone();
    let registry = stores.registry.clone();
    let archive = r.archive.clone();
    Arc::new(move || {
        let mut health = serde_json::json!({
            "ingest": metrics.snapshot(),
            "models": registry.versions(),
        });
        if let Some(archive) = &archive {
            health["archive"] = serde_json::json!(archive.snapshot());
        }
        health
    })
}
