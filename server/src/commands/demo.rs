//! `fixahead demo`: everything `run` does on embedded defaults, plus a model trained
//! on the fly when none is usable, the fleet's last week replayed at full speed, and a
//! simulated fleet publishing live, with the URLs and a key per role printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::{Lang, ProfileSet, Role, Timestamp};
use ingest::broker::InternalAccount;
use tokio_util::sync::CancellationToken;

use super::run::shutdown_signal;
use super::train::train_into;
use crate::admin_key::{self, Bootstrap};
use crate::app::{self, Running};
use crate::cli::DemoArgs;
use crate::clock::{ScaledClock, ServiceClock};
use crate::error::bail;
use crate::settings::{load_profiles, ConfigFile, Settings};
use crate::{Context, Result};

/// Simulated days the demo replays before going live: a device's risk counts only
/// once it has a week of reports.
const WARM_UP_DAYS: i64 = 8;

/// A simulated fleet of `devices` from `seed`, starting at `start`, with a share
/// `early` of devices already wearing out.
pub fn fleet_config(
    devices: usize,
    seed: u64,
    start: Timestamp,
    early: f64,
) -> simulators::FleetConfig {
    simulators::FleetConfig {
        devices,
        seed,
        start,
        early_degradation_share: early,
        ..simulators::FleetConfig::default()
    }
}

/// `fixahead demo`
pub async fn demo(args: DemoArgs) -> Result<()> {
    let settings = settings(&args)?;
    prepare_dir(&settings.data_dir)?;
    let profiles = load_profiles(settings.profiles_dir.as_deref())?;
    ensure_model(&settings, &profiles, args.seed).await?;
    // The demo's simulated devices publish for the whole fleet through fixahead's own
    // account, which the embedded broker lets in if it requires credentials
    // (mqtt.allow_anonymous = false in the config file; the demo allows anonymous
    // clients by default).
    let simulator = InternalAccount::generate("demo-simulator");
    let running = app::start_with_clients(
        &settings,
        profiles.clone(),
        std::slice::from_ref(&simulator),
    )
    .await?;
    let planner_key = announce(&running, &args)?;
    let fleet = replay_warm_up(&running, &settings, &profiles, &simulator, &args).await?;
    // The fleet page and statistics read a snapshot the fleet task took at start-up,
    // before the replay: take one now, so they show the replayed week at once rather
    // than after the first refresh interval.
    let analytics = running.fleet.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || analytics.refresh()).await? {
        tracing::warn!(error = %e, "Could not refresh the fleet snapshot after the replay");
    }
    // Service time runs at the fleet's speed from here on: failures, tickets, step
    // limits and customers share one time line (docs/service-simulation.md).
    if let ServiceClock::Scaled(clock) = &settings.clock {
        clock.start(fleet.now(), args.speed);
    }
    let world = crate::service_sim::live::LiveWorld {
        devices: fleet.devices(),
        ground_truth: settings.data_dir.join(GROUND_TRUTH),
        clock: settings.clock.clone(),
        seed: args.seed,
        engineers: 8,
        engineer_login: "engineer".into(),
        engineer_name: "王芳 Wang Fang".into(),
    };
    let live = simulators::LiveConfig {
        broker: broker_target(&running, &simulator, "fixahead-demo-fleet"),
        speed: args.speed,
        ground_truth_path: Some(settings.data_dir.join(GROUND_TRUTH)),
        max_duration: args.duration.map(Duration::from_secs),
        ..simulators::LiveConfig::default()
    };
    let sim_cancel = running.stop_token().child_token();
    let sim = tokio::spawn(simulators::publish_live(live, fleet, sim_cancel.clone()));
    let stop = running.stop_token();
    let mut service_world = Box::pin(crate::service_sim::live::run(
        &running,
        profiles.clone(),
        world,
        Duration::from_millis(500),
        stop.child_token(),
    ));
    let reporter = tokio::spawn(report_progress(
        running.http_addr,
        planner_key,
        stop.clone(),
    ));
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = stop.cancelled() => {}
        res = &mut service_world => {
            if let Err(e) = res {
                tracing::error!(error = %e, "The demo's service world stopped");
            }
        }
        res = sim => {
            match res {
                Ok(Ok(summary)) => println!(
                    "Simulation finished: {} messages published, simulated time reached {}",
                    summary.published, summary.simulated_until
                ),
                Ok(Err(e)) => tracing::error!(error = %e, "Simulator failed"),
                Err(e) => tracing::error!(error = %e, "Simulator task failed"),
            }
        }
    }
    sim_cancel.cancel();
    reporter.abort();
    drop(service_world);
    running.shutdown().await
}

/// The running broker, as the demo's simulator connects to it under `client_id`.
fn broker_target(
    running: &Running,
    simulator: &InternalAccount,
    client_id: &str,
) -> simulators::BrokerTarget {
    simulators::BrokerTarget {
        host: running.mqtt_host.clone(),
        port: running.mqtt_port,
        tls: running.mqtt_tls.as_ref().map(|t| t.rumqttc()),
        client_id: client_id.into(),
        username: Some(simulator.username.clone()),
        password: Some(simulator.secret.clone()),
    }
}

/// The ground truth of the simulated fleet, appended as it happens.
const GROUND_TRUTH: &str = "demo-ground-truth.jsonl";

/// `run`'s settings with the demo's defaults: its own data directory, anonymous
/// clients allowed and no bound on future timestamps, unless the file or a flag says
/// otherwise.
fn settings(args: &DemoArgs) -> Result<Settings> {
    let mut file = ConfigFile::load_or_default(args.serve.config.as_deref())?;
    if args.serve.data_dir.is_none() && args.serve.config.is_none() {
        // Not ./data: `run`'s data must never be mistaken for the demo's.
        file.data_dir = PathBuf::from("data/demo");
    }
    // The demo is for trying things out on localhost: anyone may connect unless the
    // config file says otherwise.
    file.mqtt.allow_anonymous.get_or_insert(true);
    let mut overrides = args.serve.overrides();
    // Service time: the wall clock until the live fleet continues, then the fleet's
    // speed; the sweeps run often enough for it.
    // The simulated fleet runs at --speed, so its clocks run ahead of the wall clock.
    overrides
        .max_future_skew
        .get_or_insert_with(|| "off".into());
    let mut settings = Settings::build(file, &overrides)?;
    settings.clock = ServiceClock::Scaled(ScaledClock::new());
    settings.sweep_every = Some(Duration::from_millis(200));
    Ok(settings)
}

/// Whether the model directory holds a model of every type trained on today's
/// profiles; says why not.
fn usable_models(dir: &Path, profiles: &ProfileSet) -> bool {
    match models::ModelRegistry::load_dir(dir) {
        Ok(registry) => {
            let stale = registry.stale_types(profiles);
            if !stale.is_empty() {
                // Trained by an older fixahead whose profiles had other features.
                println!(
                    "The models in {} for {} were trained on other features than the profiles name now.",
                    dir.display(),
                    stale.join(", ")
                );
            }
            !registry.versions().is_empty() && stale.is_empty()
        }
        Err(e) => {
            // The demo's own models, e.g. from an older fixahead: train new ones.
            println!("The models in {} cannot be used ({e}).", dir.display());
            false
        }
    }
}

/// Simulates a year of history and trains on it, unless usable models exist.
async fn ensure_model(settings: &Settings, profiles: &ProfileSet, seed: u64) -> Result<()> {
    ensure_models_in(&settings.models.dir, &settings.data_dir, profiles, seed).await
}

/// Trains models into `model_dir` on a simulated year (written under `work_dir`),
/// unless it holds usable ones (`demo` and `simulate-service`).
pub(crate) async fn ensure_models_in(
    model_dir: &Path,
    work_dir: &Path,
    profiles: &ProfileSet,
    seed: u64,
) -> Result<()> {
    let model_dir = model_dir.to_owned();
    if usable_models(&model_dir, profiles) {
        return Ok(());
    }
    println!("No usable model in {}: simulating a year of fleet history and training on it (under a minute)...", model_dir.display());
    let history = work_dir.join("training-history");
    // A full year: the fleet has seasons, and a model that never saw one raises
    // false alarms in it.
    let start = Timestamp(crate::now().millis() - 365 * Timestamp::DAY_MS);
    let sim = simulators::FleetConfig {
        failure_rate_per_year: 1.0,
        // Hourly fridge reports: training samples one row per 6 h anyway, and a
        // quarter of the messages makes the history four times faster to read.
        refrigerator_interval_s: 3600,
        ..fleet_config(300, seed.wrapping_add(1000), start, 0.0)
    };
    let (h, p) = (history.clone(), profiles.clone());
    let summary = tokio::task::spawn_blocking(move || {
        simulators::write_history(&h, sim, &p, 365 * Timestamp::DAY_MS)
    })
    .await??;
    println!(
        "  simulated {} devices, {} messages, {} failures",
        summary.devices, summary.messages, summary.failures
    );
    let versions = tokio::task::spawn_blocking(move || {
        let data = models::TrainingData::from_history(&history, &ProfileSet::builtin())?;
        train_into(data, &model_dir, &models::ValidTrainParams::default(), true)
    })
    .await??;
    println!("  trained {}", versions.join(", "));
    Ok(())
}

/// The console's demo accounts: one per role, with a new password at every start
/// (the demo resets keys.db). The planner works in English, the engineer in Chinese,
/// both in Shanghai time; the language switch in every page's header changes it.
fn demo_people(running: &Running) -> Result<Vec<(String, Role, String)>> {
    let people = [
        ("admin", "Admin", Role::Admin, Lang::En, "UTC"),
        (
            "planner",
            "Li Wei 李伟",
            Role::Planner,
            Lang::En,
            "Asia/Shanghai",
        ),
        (
            "engineer",
            "王芳 Wang Fang",
            Role::Engineer,
            Lang::Zh,
            "Asia/Shanghai",
        ),
    ];
    let mut out = Vec::new();
    for (login, display_name, role, lang, time_zone) in people {
        let users = running.users.clone();
        let password = tokio::task::block_in_place(|| match users.by_login(login)? {
            Some(u) => users.reset_password(u.id).map(|(password, _)| password),
            None => users
                .add(&store::users::NewUser {
                    login,
                    display_name,
                    role,
                    lang,
                    time_zone,
                })
                .map(|(password, _)| password),
        })?;
        out.push((login.to_owned(), role, password));
    }
    Ok(out)
}

/// Creates a key per role (new at every start: the demo resets keys.db with its
/// store) and prints them with the URLs to try; returns the planner's key.
fn announce(running: &Running, args: &DemoArgs) -> Result<String> {
    let http = running.http_addr;
    let mut role_keys = Vec::new();
    for role in [Role::Planner, Role::Engineer, Role::Integration] {
        let access = running.access.clone();
        let (key, _) =
            tokio::task::block_in_place(|| access.create(role, &format!("demo {role}")))?;
        role_keys.push((role, key));
    }
    println!();
    println!(
        "fixahead demo is running: {} simulated appliances at {}x speed",
        args.devices, args.speed
    );
    println!("API keys (new at every demo start; send as Authorization: Bearer <key>):");
    match &running.admin_key {
        Bootstrap::Generated { key, .. } => println!("  admin         {key}"),
        _ => println!("  admin         (the key in {})", admin_key::ADMIN_KEY_ENV),
    }
    for (role, key) in &role_keys {
        println!("  {:<13} {key}", role.as_str());
    }
    println!();
    println!("Service console: {}", running.console_url);
    println!("  sign in as (new at every demo start):");
    for (login, role, password) in demo_people(running)? {
        println!("  {:<13} {login:<10} {password}", role.as_str());
    }
    println!();
    println!("  MQTT broker   {}", running.mqtt_addr);
    println!("  devices       curl -s -H \"Authorization: Bearer $PLANNER_KEY\" http://{http}/api/v1/devices");
    println!("  tickets       curl -s -H \"Authorization: Bearer $PLANNER_KEY\" http://{http}/api/v1/tickets");
    println!("  dead letters  curl -s -H \"Authorization: Bearer $PLANNER_KEY\" http://{http}/api/v1/dead-letters");
    println!("  health        curl -s http://{http}/health");
    println!("  metrics       curl -s -H \"Authorization: Bearer $INTEGRATION_KEY\" http://{http}/metrics");
    println!(
        "  API docs      http://{http}/docs (with a key: docs/api.md), http://{http}/openapi.json"
    );
    println!("Ctrl-C stops it.");
    println!();
    Ok(role_keys.swap_remove(0).1)
}

/// Warm start: the fleet starts [`WARM_UP_DAYS`] simulated days ago. That stretch is
/// written as a history and replayed at full speed; the same (deterministic) fleet,
/// returned, then continues live from there.
async fn replay_warm_up(
    running: &Running,
    settings: &Settings,
    profiles: &ProfileSet,
    simulator: &InternalAccount,
    args: &DemoArgs,
) -> Result<simulators::Fleet> {
    let warm_up_ms = WARM_UP_DAYS * Timestamp::DAY_MS;
    let config = fleet_config(
        args.devices,
        args.seed,
        Timestamp(crate::now().millis() - warm_up_ms),
        0.3,
    );
    let warm_dir = settings.data_dir.join("demo-warm-up");
    {
        let (dir, cfg, p) = (warm_dir.clone(), config.clone(), profiles.clone());
        tokio::task::spawn_blocking(move || simulators::write_history(&dir, cfg, &p, warm_up_ms))
            .await??;
    }
    std::fs::copy(
        warm_dir.join("events.jsonl"),
        settings.data_dir.join(GROUND_TRUTH),
    )
    .context("starting the demo's ground-truth log")?;
    let replayed = simulators::replay::replay(
        &warm_dir,
        simulators::replay::ReplayConfig {
            broker: broker_target(running, simulator, "fixahead-demo-warm-up"),
            ..simulators::replay::ReplayConfig::default()
        },
        running.stop_token().child_token(),
    )
    .await?;
    println!(
        "Replayed the fleet's last {WARM_UP_DAYS} days: {} messages.",
        replayed.published
    );
    let mut fleet = simulators::Fleet::new(config.clone(), profiles)?;
    // Already published by the replay; the live run continues after them.
    drop(fleet.advance(Timestamp(config.start.millis() + warm_up_ms)));
    Ok(fleet)
}

/// The demo starts from an empty store every time: its simulated devices restart their
/// sequence numbers, which a kept store would drop as duplicates. It only resets a
/// directory it created (marked by `DEMO_MARKER`), keeping trained models.
fn prepare_dir(dir: &Path) -> Result<()> {
    const DEMO_MARKER: &str = "fixahead-demo";
    let marker = dir.join(DEMO_MARKER);
    if dir.join("hot.db").exists() && !marker.exists() {
        bail!(
            "{} holds data that `fixahead demo` did not create; the demo resets its store on every start, so give it its own --data-dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        &marker,
        "This directory belongs to `fixahead demo`, which resets its store on every start.\n",
    )
    .with_context(|| format!("writing {}", marker.display()))?;
    for name in [
        "hot.db",
        "hot.db-wal",
        "hot.db-shm",
        "tickets.db",
        "tickets.db-wal",
        "tickets.db-shm",
        "keys.db",
        "keys.db-wal",
        "keys.db-shm",
        admin_key::ADMIN_KEY_FILE,
        "demo-ground-truth.jsonl",
    ] {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("resetting the demo store in {}", dir.display()))
            }
        }
    }
    Ok(())
}

/// Prints a one-line status every 10 seconds, from the public API.
async fn report_progress(http: SocketAddr, key: String, stop: CancellationToken) {
    let started = std::time::Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let get = |path: &'static str| {
        client
            .get(format!("http://{http}{path}"))
            .bearer_auth(&key)
            .send()
    };
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let health = json(get("/health").await).await;
        let tickets = json(get("/api/v1/tickets?status=active&limit=1000").await).await;
        let received = health
            .as_ref()
            .and_then(|h| h.pointer("/ingest/received"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let list = tickets
            .as_ref()
            .and_then(|t| t.get("tickets"))
            .and_then(|t| t.as_array());
        println!(
            "[{:>4}s] messages received: {received:>7}   open tickets: {}",
            started.elapsed().as_secs(),
            list.map_or(0, Vec::len)
        );
        for t in list.into_iter().flatten().take(3) {
            println!(
                "         ticket {} {} {} risk {:.2} ({})",
                t["number"].as_str().unwrap_or("?"),
                t["device_id"].as_str().unwrap_or("?"),
                t["component"].as_str().unwrap_or("?"),
                t["risk"].as_f64().unwrap_or(0.0),
                t["priority"].as_str().unwrap_or("?"),
            );
        }
    }
}

/// The JSON body of a response, if it came and parsed.
async fn json(
    response: std::result::Result<reqwest::Response, reqwest::Error>,
) -> Option<serde_json::Value> {
    response.ok()?.json().await.ok()
}
