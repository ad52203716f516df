//! The subcommands.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use domain::{time::parse_duration_ms, ProfileSet, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::cli::{DemoArgs, EvalArgs, PredictArgs, RunArgs, ServeArgs, TrainArgs};
use crate::config::{load_profiles, Config};

/// Builds the effective configuration: file, then flags.
pub(crate) fn effective_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(a) = args.mqtt_listen {
        config.mqtt.listen = a;
    }
    if let Some(u) = &args.mqtt_url {
        config.mqtt.url = Some(u.clone());
    }
    if let Some(p) = &args.mqtt_protocol {
        config.mqtt.protocol = p.clone();
    }
    let tls = &args.mqtt_tls;
    if let Some(f) = &tls.mqtt_ca {
        config.mqtt.ca_file = Some(f.clone());
    }
    if let Some(f) = &tls.mqtt_client_cert {
        config.mqtt.client_cert = Some(f.clone());
    }
    if let Some(f) = &tls.mqtt_client_key {
        config.mqtt.client_key = Some(f.clone());
    }
    if let Some(g) = &args.shared_group {
        config.mqtt.shared_group = Some(g.clone());
    }
    if let Some(a) = args.http_listen {
        config.http.listen = a;
    }
    if let Some(d) = &args.model_dir {
        config.models.dir = Some(d.clone());
    }
    if let Some(d) = &args.profiles {
        config.profiles.dir = Some(d.clone());
    }
    if let Some(s) = &args.max_future_skew {
        config.ingest.max_future_skew = s.clone();
    }
    if args.allow_anonymous {
        config.mqtt.allow_anonymous = Some(true);
    }
    config.validate()?;
    Ok(config)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `fixahead run`
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = effective_config(&args.serve)?;
    let profiles = load_profiles(config.profiles.dir.as_deref())?;
    let running = app::start(&config, profiles).await?;
    crate::keys::announce(&running.admin_key);
    println!("fixahead is running");
    println!(
        "  MQTT     {}   (topics fixahead/v1/{{device_id}}/telemetry|fault|status)",
        running.mqtt_addr
    );
    if config.mqtt.url.is_none() {
        if config.allow_anonymous() {
            println!("  devices  any client may connect (--allow-anonymous)");
        } else {
            println!("  devices  log in with credentials from `fixahead devices add DEVICE_ID`");
        }
    }
    println!(
        "  HTTP     http://{}/health; every other route needs an API key (docs at /docs)",
        running.http_addr
    );
    println!("  data     {}", config.data_dir.display());
    let stop = running.stop_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("Shutting down: committing and acknowledging what was received");
        stop.cancel();
    });
    running.wait().await?;
    tracing::info!("Stopped cleanly");
    Ok(())
}

/// Training parameters from a TOML text (unknown names are an error; missing ones take
/// their defaults).
fn parse_train_params(text: &str) -> anyhow::Result<models::TrainParams> {
    let params: models::TrainParams = toml::from_str(text)?;
    params.validate()?;
    Ok(params)
}

/// `fixahead train`
pub(crate) fn train(args: TrainArgs) -> anyhow::Result<()> {
    let horizon_ms = parse_duration_ms(&args.horizon)?;
    let base = match &args.params {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            parse_train_params(&text)
                .with_context(|| format!("parsing training parameters in {}", path.display()))?
        }
        None => models::TrainParams::default(),
    };
    let params = models::TrainParams {
        horizon_ms,
        target_precision: args.target_precision,
        alert_budget: args.alert_budget,
        seed: args.seed,
        test_from_ms: match &args.test_from {
            Some(t) => Some(domain::Timestamp::parse(t)?.millis()),
            None => base.test_from_ms,
        },
        ..base
    };
    let data = match &args.history {
        Some(history) => models::TrainingData::from_history(history, &ProfileSet::builtin())
            .with_context(|| format!("reading {}", history.display()))?,
        None => {
            let (data_dir, profiles) = crate::feedback::data_dir_and_profiles(
                args.data_dir.as_deref(),
                args.config.as_deref(),
            )?;
            crate::feedback::training_data(&data_dir, profiles)?
        }
    };
    train_into(data, &args.out, &params, true)?;
    Ok(())
}

/// `fixahead eval`
pub(crate) fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let registry = models::ModelRegistry::load_dir(&args.model)
        .with_context(|| format!("loading models from {}", args.model.display()))?;
    let params = models::eval::EvalParams {
        horizon_ms: args.horizon.as_deref().map(parse_duration_ms).transpose()?,
        from_ms: args
            .from
            .as_deref()
            .map(domain::Timestamp::parse)
            .transpose()?
            .map(domain::Timestamp::millis),
        ..models::eval::EvalParams::default()
    };
    let report = models::eval::eval(
        &args.history,
        &ProfileSet::builtin(),
        registry,
        &params,
        &args.report,
    )
    .with_context(|| format!("evaluating on {}", args.history.display()))?;
    for t in &report.types_without_model {
        eprintln!(
            "no usable model for device type {t} (none active, or trained on other features \
             than its profile names: retrain): its devices were not evaluated"
        );
    }
    let fmt = |x: Option<f64>| x.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
    for (name, m) in [
        ("model", &report.model.overall),
        ("baseline", &report.baseline.overall),
    ] {
        println!(
            "{name:<9} failures caught {}/{} (with precursors {}/{}), flags {}, precision {}, recall {}, F1 {}, median lead {} days, false alarms per 1000 device-months {}",
            m.caught, m.failures, m.caught_with_precursor, m.failures_with_precursor, m.flags,
            fmt(m.precision), fmt(m.recall), fmt(m.f1), fmt(m.lead_time_days_median), fmt(m.false_alarms_per_1000_device_months)
        );
    }
    println!("report: {}", args.report.join("report.md").display());
    Ok(())
}

/// `fixahead predict`
pub(crate) fn predict(args: PredictArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let registry = models::ModelRegistry::load_dir(&args.model)
        .with_context(|| format!("loading models from {}", args.model.display()))?;
    let options = models::predict::PredictOptions {
        features: args.features,
    };
    let out =
        models::predict::predict_with(&args.history, &ProfileSet::builtin(), registry, options)
            .with_context(|| format!("predicting on {}", args.history.display()))?;
    for t in &out.types_without_model {
        eprintln!(
            "no usable model for device type {t} (none active, or trained on other features \
             than its profile names: retrain): its devices have no prediction"
        );
    }
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    for line in &out.lines {
        serde_json::to_writer(&mut w, line)?;
        writeln!(w)?;
    }
    w.flush()?;
    Ok(())
}

/// Trains from a history directory into a model directory, printing a summary.
fn train_into(
    data: models::TrainingData<'_>,
    out: &Path,
    params: &models::TrainParams,
    verbose: bool,
) -> anyhow::Result<Vec<String>> {
    let history = data.origin.clone();
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("reading {}", history.display()));
    let mut on_progress = |p: models::TrainProgress| match p {
        models::TrainProgress::Reading { messages } => {
            bar.set_message(format!("reading history: {messages} messages"))
        }
        models::TrainProgress::Loaded {
            lines,
            rejected,
            devices,
            rows,
        } => {
            bar.println(format!("history: {lines} lines ({rejected} rejected), {devices} devices, {rows} feature rows"));
            bar.set_message("training");
        }
        models::TrainProgress::Component {
            device_type,
            component,
            outcome,
        } => {
            bar.set_message(format!("trained {device_type}/{component}: {outcome}"));
        }
    };
    let artifacts = models::train_on(data, params, &mut on_progress)
        .with_context(|| format!("training from {}", history.display()))?;
    bar.finish_and_clear();
    if artifacts.is_empty() {
        bail!(
            "the history at {} produced no model (no device type had enough failures)",
            history.display()
        );
    }
    let mut versions = Vec::new();
    for artifact in &artifacts {
        let path = models::artifact::save(artifact, out)?;
        if verbose {
            println!("{} -> {}", artifact.version, path.display());
            let summary = &artifact.training_summary;
            let labels = &summary.labels;
            println!(
                "  labels ({}): failures {}, no_fault_found {} ({} rows labelled negative), positive training rows {}",
                labels.source,
                per_component(&labels.failures),
                per_component(&labels.no_fault_found),
                labels.no_fault_found_rows.values().sum::<u64>(),
                per_component(&summary.positives),
            );
            for c in &artifact.components {
                match (&c.metrics, &c.skipped_reason) {
                    (_, Some(why)) => println!("  {:<16} skipped: {why}", c.component),
                    (Some(m), None) => println!(
                        "  {:<16} threshold {:.3}  flag after {} score(s) held {} h{}  precision {:.2}  recall {:.2}  AP {:.3} (base rate {:.3})  failures caught {}/{}{}",
                        c.component, c.threshold, c.persistence, c.hold_ms / 3_600_000,
                        match &c.fault_rule {
                            None => String::new(),
                            Some(r) if r.months.is_all() => " or on its fault codes".into(),
                            Some(r) => format!(" or on its fault codes in {}", r.months),
                        },
                        m.precision, m.recall, m.average_precision, m.base_rate, m.events_detected, m.events,
                        m.validation_events.as_ref().map_or(String::new(), |e| format!(
                            "  flags on validation: {} caught {}/{} failures, {} false",
                            e.flags, e.caught, e.failures, e.false_alarms
                        )),
                    ),
                    (None, None) => println!("  {:<16} no validation metrics", c.component),
                }
            }
        }
        versions.push(artifact.version.clone());
    }
    Ok(versions)
}

/// `a 1, b 2` (only the non-zero counts), or `none`.
fn per_component(counts: &std::collections::BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

pub(crate) fn simulator_config(
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

pub(crate) fn now() -> Timestamp {
    Timestamp(ingest::source::now_ms())
}

/// `fixahead demo`
pub(crate) async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let mut config = effective_config(&args.serve)?;
    if args.serve.data_dir.is_none() && args.serve.config.is_none() {
        // Not ./data: `run`'s data must never be mistaken for the demo's.
        config.data_dir = std::path::PathBuf::from("data/demo");
    }
    prepare_demo_dir(&config.data_dir)?;
    // The demo is for trying things out on localhost: anyone may connect unless the
    // config file says otherwise.
    config.mqtt.allow_anonymous.get_or_insert(true);
    if args.serve.max_future_skew.is_none() {
        // The simulated fleet runs at --speed, so its clocks run ahead of the wall clock.
        config.ingest.max_future_skew = "off".into();
    }
    let profiles = load_profiles(config.profiles.dir.as_deref())?;
    let model_dir = config.model_dir();
    let usable = match models::ModelRegistry::load_dir(&model_dir) {
        Ok(registry) => {
            let stale = registry.stale_types(&profiles);
            if !stale.is_empty() {
                // Trained by an older fixahead whose profiles had other features.
                println!(
                    "The models in {} for {} were trained on other features than the profiles name now.",
                    model_dir.display(),
                    stale.join(", ")
                );
            }
            !registry.versions().is_empty() && stale.is_empty()
        }
        Err(e) => {
            // The demo's own models, e.g. from an older fixahead: train new ones.
            println!(
                "The models in {} cannot be used ({e}).",
                model_dir.display()
            );
            false
        }
    };
    if !usable {
        println!("No usable model in {}: simulating a year of fleet history and training on it (under a minute)...", model_dir.display());
        let history = config.data_dir.join("training-history");
        // A full year: the fleet has seasons, and a model that never saw one raises
        // false alarms in it.
        let start = Timestamp(now().millis() - 365 * Timestamp::DAY_MS);
        let sim = simulators::FleetConfig {
            failure_rate_per_year: 1.0,
            // Hourly fridge reports: training samples one row per 6 h anyway, and a
            // quarter of the messages makes the history four times faster to read.
            refrigerator_interval_s: 3600,
            ..simulator_config(300, args.seed.wrapping_add(1000), start, 0.0)
        };
        let h = history.clone();
        let p = profiles.clone();
        let summary = tokio::task::spawn_blocking(move || {
            simulators::write_history(&h, sim, &p, 365 * Timestamp::DAY_MS)
        })
        .await??;
        println!(
            "  simulated {} devices, {} messages, {} failures",
            summary.devices, summary.messages, summary.failures
        );
        let out = model_dir.clone();
        let versions = tokio::task::spawn_blocking(move || {
            let data = models::TrainingData::from_history(&history, &ProfileSet::builtin())?;
            train_into(data, &out, &models::TrainParams::default(), true)
        })
        .await??;
        println!("  trained {}", versions.join(", "));
    }

    // The demo's simulated devices publish for the whole fleet through fixahead's own
    // account, which the embedded broker lets in if it requires credentials
    // (mqtt.allow_anonymous = false in the config file; the demo allows anonymous
    // clients by default).
    let simulator = ingest::broker::InternalAccount::generate("demo-simulator");
    let running =
        app::start_with_clients(&config, profiles.clone(), std::slice::from_ref(&simulator))
            .await?;
    let http = running.http_addr;
    // One key per role, new at every start (the demo resets keys.db with its store).
    let mut role_keys = Vec::new();
    for role in [
        api::Role::Planner,
        api::Role::Engineer,
        api::Role::Integration,
    ] {
        let access = running.access.clone();
        let (key, _) =
            tokio::task::block_in_place(|| access.create(role, &format!("demo {role}")))?;
        role_keys.push((role, key));
    }
    let planner_key = role_keys[0].1.clone();
    println!();
    println!(
        "fixahead demo is running: {} simulated appliances at {}x speed",
        args.devices, args.speed
    );
    println!("API keys (new at every demo start; send as Authorization: Bearer <key>):");
    match &running.admin_key {
        crate::keys::Bootstrap::Generated { key, .. } => println!("  admin         {key}"),
        _ => println!(
            "  admin         (the key in {})",
            crate::keys::ADMIN_KEY_ENV
        ),
    }
    for (role, key) in &role_keys {
        println!("  {:<13} {key}", role.as_str());
    }
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

    let (host, port) = (running.mqtt_host.clone(), running.mqtt_port);
    // Warm start: devices are scored only after a week of reports, so the fleet starts
    // eight simulated days ago. That week is written as a history and replayed at full
    // speed; the same (deterministic) fleet then continues live from there.
    let warm_up_ms = 8 * Timestamp::DAY_MS;
    let fleet_config = simulator_config(
        args.devices,
        args.seed,
        Timestamp(now().millis() - warm_up_ms),
        0.3,
    );
    let warm_dir = config.data_dir.join("demo-warm-up");
    {
        let (dir, cfg, p) = (warm_dir.clone(), fleet_config.clone(), profiles.clone());
        tokio::task::spawn_blocking(move || simulators::write_history(&dir, cfg, &p, warm_up_ms))
            .await??;
    }
    std::fs::copy(
        warm_dir.join("events.jsonl"),
        config.data_dir.join("demo-ground-truth.jsonl"),
    )
    .context("starting the demo's ground-truth log")?;
    let replayed = simulators::replay::replay(
        &warm_dir,
        simulators::replay::ReplayConfig {
            host: host.clone(),
            port,
            tls: running.mqtt_tls.as_ref().map(|t| t.rumqttc()),
            client_id: "fixahead-demo-warm-up".into(),
            username: Some(simulator.username.clone()),
            password: Some(simulator.secret.clone()),
            ..simulators::replay::ReplayConfig::default()
        },
        running.stop_token().child_token(),
    )
    .await?;
    println!(
        "Replayed the fleet's last {} days: {} messages.",
        warm_up_ms / Timestamp::DAY_MS,
        replayed.published
    );
    let mut fleet = simulators::Fleet::new(fleet_config.clone(), &profiles)?;
    // Already published by the replay; the live run continues after them.
    drop(fleet.advance(Timestamp(fleet_config.start.millis() + warm_up_ms)));
    let live = simulators::LiveConfig {
        host,
        port,
        tls: running.mqtt_tls.as_ref().map(|t| t.rumqttc()),
        client_id: "fixahead-demo-fleet".into(),
        username: Some(simulator.username.clone()),
        password: Some(simulator.secret.clone()),
        speed: args.speed,
        ground_truth_path: Some(config.data_dir.join("demo-ground-truth.jsonl")),
        max_duration: args.duration.map(Duration::from_secs),
        ..simulators::LiveConfig::default()
    };
    let sim_cancel = running.stop_token().child_token();
    let sim = tokio::spawn(simulators::publish_live(live, fleet, sim_cancel.clone()));

    let stop = running.stop_token();
    let reporter = tokio::spawn(report_progress(http, planner_key, stop.clone()));
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = stop.cancelled() => {}
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
    running.shutdown().await
}

/// The demo starts from an empty store every time: its simulated devices restart their
/// sequence numbers, which a kept store would drop as duplicates. It only resets a
/// directory it created (marked by `DEMO_MARKER`), keeping trained models.
fn prepare_demo_dir(dir: &Path) -> anyhow::Result<()> {
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
        crate::keys::ADMIN_KEY_FILE,
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

/// Prints a one-line status every few seconds, from the public API.
async fn report_progress(http: std::net::SocketAddr, key: String, stop: CancellationToken) {
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let health = fetch_json(http, "/health", &key).await;
        let tickets = fetch_json(http, "/api/v1/tickets?status=active&limit=1000", &key).await;
        let received = health
            .as_ref()
            .and_then(|h| h.pointer("/ingest/received"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let n_tickets = tickets
            .as_ref()
            .and_then(|t| t.get("tickets"))
            .and_then(|t| t.as_array())
            .map_or(0, Vec::len);
        println!(
            "[{:>4}s] messages received: {received:>7}   open tickets: {n_tickets}",
            started.elapsed().as_secs()
        );
        if let Some(list) = tickets
            .as_ref()
            .and_then(|t| t.get("tickets"))
            .and_then(|t| t.as_array())
        {
            for t in list.iter().take(3) {
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
}

/// A minimal HTTP/1.1 GET for the demo's own status line (no client library needed).
async fn fetch_json(
    addr: std::net::SocketAddr,
    path: &str,
    key: &str,
) -> Option<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_train_params;

    #[test]
    fn the_documented_training_parameters_parse_and_typos_are_refused() {
        let doc = include_str!("../docs/models.md");
        let start = doc
            .find("```toml\n# params.toml")
            .expect("example in docs/models.md");
        let body = &doc[start + "```toml\n".len()..];
        let example = &body[..body.find("```").expect("end of the example")];
        let p = parse_train_params(example).unwrap();
        let default = models::TrainParams::default();
        assert_eq!((p.alert_budget, p.tree_depth), (1.5, 8));
        assert_eq!((p.trees, p.tree_rows), (default.trees, default.tree_rows));
        assert!(parse_train_params("tres = 40\n").is_err());
        assert!(parse_train_params("tree_depth = 99\n").is_err());
    }
}
