//! The service simulation's driver (`fixahead simulate-service`): fixahead started
//! in-process on a manual service clock, a history replayed step by step, and the
//! service world ([`simulators::service`]) acting through the public HTTP API only.
//!
//! Per step (`--step`, default 30 simulated minutes): move the clock to the step's
//! end, publish the step's telemetry and fault lines to the broker, wait until
//! fixahead has stored and scored them, put the directory entries of devices seen for
//! the first time, run the service sweeps (plain blocking functions), then let the
//! world act ([`play::Play::tick`]). After the history, steps continue without
//! telemetry (`--drain-days`) until the world's work is done. Then the KPIs
//! (`GET /api/v1/kpis`), model performance and the ticket records are read back.

mod api;
mod history;
pub mod live;
pub mod play;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use domain::{ProfileSet, Role, Timestamp};
use serde::Serialize;
use serde_json::{json, Value};
use simulators::service::people::{customers, engineers};
use simulators::service::reports::customer_reports;
use simulators::service::ServiceConfig;
use tokio_util::sync::CancellationToken;

use crate::app::{self, Running};
use crate::clock::{ManualClock, ServiceClock};
use crate::settings::{ConfigFile, Settings};
use crate::{Context, Error, Result};

pub use play::{Counts, Rule};

/// What one run plays.
#[derive(Clone, Debug)]
pub struct SimulationOptions {
    /// The history directory (devices.jsonl, events.jsonl, telemetry.jsonl).
    pub history: PathBuf,
    /// Where each rule's fixahead keeps its data (`DIR/{rule}`).
    pub data_dir: PathBuf,
    /// The trained models.
    pub models: PathBuf,
    /// Extra device profiles.
    pub profiles_dir: Option<PathBuf>,
    /// The service world's parameters (seed, engineers, ...).
    pub world: ServiceConfig,
    /// Simulated time per step, ms.
    pub step_ms: i64,
    /// Simulated days after the history for open work to finish.
    pub drain_days: i64,
    /// Where the HTTP API listens (port 0: any free port).
    pub http_listen: SocketAddr,
    /// Print progress lines.
    pub progress: bool,
}

/// The measured share of customer reports pre-judged to the component the repair
/// confirmed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PreJudged {
    /// Customer-reported tickets whose outcome is `confirmed_failure`.
    pub confirmed: u64,
    /// ... whose pre-judgement named that component.
    pub matched: u64,
    /// `matched / confirmed` (null without any).
    pub share: Option<f64>,
}

/// What one rule's run measured.
#[derive(Clone, Debug, Serialize)]
pub struct RuleReport {
    /// The rule.
    pub rule: Rule,
    /// Its data directory (tickets.db holds the records the KPIs come from).
    pub data_dir: PathBuf,
    /// The API it ran (gone unless `--keep`).
    pub api: String,
    /// Simulated span, with the drain.
    pub from: Timestamp,
    /// End of the span.
    pub to: Timestamp,
    /// What the world did.
    pub counts: Counts,
    /// `GET /api/v1/kpis?from&to` (null when this fixahead has no KPI endpoint).
    pub kpis: Value,
    /// `GET /api/v1/models/performance`.
    pub model_performance: Value,
    /// Pre-judgement against confirmed repairs, from the ticket records.
    pub prejudged: PreJudged,
    /// Routes of the contract this fixahead lacks (the world skips what they do).
    pub missing_routes: Vec<String>,
    /// Wall-clock seconds the run took.
    pub seconds: f64,
}

/// The contract's routes the world uses.
const WORLD_ROUTES: [&str; 7] = [
    "post /api/v1/tickets",
    "put /api/v1/engineers/{login}",
    "put /api/v1/devices/{device_id}/directory",
    "get /api/v1/tickets/{id}/candidates",
    "post /api/v1/tickets/{id}/satisfaction",
    "post /api/v1/tickets/{id}/callback",
    "get /api/v1/kpis",
];

/// Sets the configuration a rule needs: `fcfs` turns fixahead's automatic dispatch
/// off (`[dispatch] enabled = false`), `fixahead` leaves it on.
fn configure(file: &mut ConfigFile, rule: Rule) {
    file.dispatch.enabled = rule == Rule::Fixahead;
}

/// The service sweeps, on the service clock, in the order `run`'s tasks run them: SLA
/// clocks, automatic dispatch (when `[dispatch] enabled`), procedure steps and
/// call-backs (alerts to the owners' supervisors from the engineers' directory).
pub fn sweep(
    tickets: &::api::TicketService,
    dispatcher: &::api::dispatch::Dispatcher,
) -> Result<()> {
    tickets.check_sla()?;
    if dispatcher.config().enabled {
        dispatcher.dispatch_pending()?;
    }
    tickets.check_steps(dispatcher)?;
    Ok(())
}

/// Plays `history` under `rule` from a fresh data directory; stops fixahead unless
/// `keep` (then returns the running instance too).
pub async fn run_rule(
    options: &SimulationOptions,
    rule: Rule,
    keep: bool,
) -> Result<(RuleReport, Option<Running>)> {
    let started = Instant::now();
    let profiles = crate::settings::load_profiles(options.profiles_dir.as_deref())?;
    let h = {
        let (dir, p) = (options.history.clone(), profiles.clone());
        tokio::task::spawn_blocking(move || history::load(&dir, &p)).await??
    };
    let data_dir = options.data_dir.join(rule.as_str());
    prepare_dir(&data_dir)?;
    let start = Timestamp(h.span.0.millis().div_euclid(options.step_ms) * options.step_ms);
    let clock = ManualClock::new(start);
    let mut file = ConfigFile {
        data_dir: data_dir.clone(),
        ..ConfigFile::default()
    };
    file.mqtt.allow_anonymous = Some(true);
    configure(&mut file, rule);
    let overrides = crate::settings::Overrides {
        mqtt_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        http_listen: Some(options.http_listen),
        model_dir: Some(options.models.clone()),
        profiles: options.profiles_dir.clone(),
        max_future_skew: Some("off".into()),
        ..Default::default()
    };
    let mut settings = Settings::build(file, &overrides)?;
    settings.clock = ServiceClock::Manual(clock.clone());
    let running = app::start(&settings, profiles.clone()).await?;
    let api = api::Api::new(running.http_addr)?;

    let world_engineers = engineers(&options.world, &regions(&h.devices), &skills(&profiles));
    let keys = keys(&running, &world_engineers)?;
    let routes = api.routes(&keys.admin).await?;
    let missing_routes: Vec<String> = WORLD_ROUTES
        .iter()
        .filter(|r| !routes.contains(**r))
        .map(|r| r.to_string())
        .collect();
    if !missing_routes.is_empty() {
        tracing::warn!(
            ?missing_routes,
            "This fixahead lacks routes the service world uses; it skips what they do"
        );
    }
    let mut world = play::Play::new(
        api.clone(),
        keys,
        rule,
        options.world.clone(),
        profiles.clone(),
        world_engineers,
        customers(&options.world, &h.devices),
        h.devices.clone(),
        routes,
    );
    world.create_engineers().await?;
    world.add_reports(customer_reports(
        &options.world,
        &h.devices,
        &h.events,
        &h.nuisance,
        h.span,
    ));
    world.learn(h.events.clone(), false);

    let step_dir = data_dir.join("replay-step");
    std::fs::create_dir_all(&step_dir).context("creating the replay step directory")?;
    std::fs::copy(
        options.history.join("devices.jsonl"),
        step_dir.join("devices.jsonl"),
    )
    .context("copying devices.jsonl for the replay")?;
    let end = Timestamp(h.span.1.millis() + options.drain_days * Timestamp::DAY_MS);
    let mut published: u64 = 0;
    let mut next_line = 0;
    let mut t = start;
    let mut last_progress = Instant::now();
    // Past the drain, open work may take up to another drain to finish.
    let hard_end = Timestamp(end.millis() + options.drain_days * Timestamp::DAY_MS);
    while t <= end || (world.busy() && t <= hard_end) {
        t = Timestamp(t.millis() + options.step_ms);
        clock.set(t);
        let from = next_line;
        while next_line < h.lines.len() && h.lines[next_line].ts <= t {
            next_line += 1;
        }
        if next_line > from {
            let lines = &h.lines[from..next_line];
            publish(&running, &step_dir, lines).await?;
            published += lines.len() as u64;
            wait_ingested(&running, published).await;
            let seen: BTreeSet<String> = lines.iter().map(|l| l.device_id.clone()).collect();
            world.put_directory(&seen).await?;
        }
        let (tickets, dispatcher) = (running.tickets.clone(), running.dispatcher.clone());
        tokio::task::spawn_blocking(move || sweep(&tickets, &dispatcher)).await??;
        world.tick(t).await?;
        if t > h.span.1 && !world.busy() {
            break;
        }
        if options.progress && last_progress.elapsed() > Duration::from_secs(10) {
            last_progress = Instant::now();
            eprintln!(
                "  [{}] simulated {} ({} tickets, {} resolved)",
                rule.as_str(),
                t.to_rfc3339(),
                world.counts.tickets,
                world.counts.resolved
            );
        }
    }
    let to = t;
    let admin = world_admin(&world);
    let kpis = if missing_routes.iter().any(|r| r == "get /api/v1/kpis") {
        Value::Null
    } else {
        let r = api
            .get(
                &admin,
                &format!(
                    "/api/v1/kpis?from={}&to={}",
                    start.to_rfc3339(),
                    to.to_rfc3339()
                ),
            )
            .await?;
        if r.ok() {
            r.body
        } else {
            json!({"error": r.body, "status": r.status})
        }
    };
    let model_performance = {
        let r = api.get(&admin, "/api/v1/models/performance").await?;
        if r.ok() {
            r.body
        } else {
            Value::Null
        }
    };
    let all = api
        .tickets(
            &admin,
            "status=open,acknowledged,scheduled,in_progress,resolved,closed,dismissed",
        )
        .await?;
    let report = RuleReport {
        rule,
        data_dir,
        api: format!("http://{}", running.http_addr),
        from: start,
        to,
        counts: world.counts.clone(),
        kpis,
        model_performance,
        prejudged: prejudged(&all),
        missing_routes,
        seconds: started.elapsed().as_secs_f64(),
    };
    if keep {
        Ok((report, Some(running)))
    } else {
        running.shutdown().await?;
        Ok((report, None))
    }
}

fn world_admin(world: &play::Play) -> String {
    world.admin_key()
}

/// The share of customer-reported tickets with a confirmed failure whose
/// pre-judgement named the confirmed component.
pub fn prejudged(tickets: &[Value]) -> PreJudged {
    let mut out = PreJudged::default();
    for t in tickets {
        let reported = t["reports"].as_array().is_some_and(|r| !r.is_empty());
        if !reported
            || t.pointer("/outcome/kind").and_then(Value::as_str) != Some("confirmed_failure")
        {
            continue;
        }
        let confirmed = t
            .pointer("/outcome/component")
            .and_then(Value::as_str)
            .or_else(|| t["component"].as_str());
        out.confirmed += 1;
        if confirmed.is_some()
            && t.pointer("/prejudgement/component").and_then(Value::as_str) == confirmed
        {
            out.matched += 1;
        }
    }
    out.share = (out.confirmed > 0).then(|| out.matched as f64 / out.confirmed as f64);
    out
}

/// The fleet's regions, sorted.
fn regions(devices: &[simulators::DeviceInfo]) -> Vec<String> {
    let set: BTreeSet<String> = devices.iter().map(|d| d.region.clone()).collect();
    set.into_iter().collect()
}

/// Every skill the profiles' components need.
pub(crate) fn skills(profiles: &ProfileSet) -> BTreeSet<String> {
    profiles
        .iter()
        .flat_map(|p| p.components().iter().flat_map(|c| c.skills.iter().cloned()))
        .collect()
}

/// A key per role, and one per engineer named by their login.
fn keys(running: &Running, engineers: &[simulators::service::Engineer]) -> Result<play::Keys> {
    let access = running.access.clone();
    let engineers: Vec<String> = engineers.iter().map(|e| e.login.clone()).collect();
    tokio::task::block_in_place(|| {
        let (admin, _) = access.create(Role::Admin, "simulate-service admin")?;
        let (planner, _) = access.create(Role::Planner, "simulate-service planner")?;
        let (integration, _) = access.create(Role::Integration, "simulate-service call centre")?;
        let mut keys = std::collections::HashMap::new();
        for login in engineers {
            let (key, _) = access.create(Role::Engineer, &login)?;
            keys.insert(login, key);
        }
        Ok::<_, store::Error>(play::Keys {
            admin,
            planner,
            integration,
            engineers: keys,
        })
    })
    .map_err(Error::from)
}

/// Publishes `lines` through the embedded broker (a replay of one step).
async fn publish(running: &Running, dir: &Path, lines: &[history::Line]) -> Result<()> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.text);
        text.push('\n');
    }
    std::fs::write(dir.join("telemetry.jsonl"), text).context("writing the replay step")?;
    simulators::replay::replay(
        dir,
        simulators::replay::ReplayConfig {
            broker: simulators::BrokerTarget {
                host: running.mqtt_host.clone(),
                port: running.mqtt_port,
                client_id: "fixahead-simulate-service".into(),
                ..simulators::BrokerTarget::default()
            },
            ..simulators::replay::ReplayConfig::default()
        },
        CancellationToken::new(),
    )
    .await?;
    Ok(())
}

/// Waits until fixahead has received `published` messages, stored (or rejected) them
/// and scored what it stored; gives up after a minute.
async fn wait_ingested(running: &Running, published: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = running.metrics.snapshot();
        let stored = m.stored_telemetry + m.stored_faults;
        let settled = stored + m.duplicates + m.dead_letters.values().sum::<u64>();
        if m.received >= published
            && settled >= m.received
            && running.scored.load(Ordering::SeqCst) >= stored
        {
            return;
        }
        if Instant::now() > deadline {
            tracing::warn!(
                published,
                received = m.received,
                "Gave up waiting for the step's messages to be scored"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Creates `dir`, or empties it if an earlier `simulate-service` made it.
fn prepare_dir(dir: &Path) -> Result<()> {
    const MARKER: &str = "fixahead-simulate-service";
    if dir.exists() {
        if !dir.join(MARKER).exists() && std::fs::read_dir(dir)?.next().is_some() {
            crate::error::bail!(
                "{} holds data that `fixahead simulate-service` did not create; give it its own --data-dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "This directory belongs to `fixahead simulate-service`, which empties it on every run.\n",
    )
    .with_context(|| format!("writing the marker in {}", dir.display()))?;
    Ok(())
}
