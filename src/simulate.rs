//! The simulator-facing commands: `simulate`, `replay` and `bench`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use domain::{ProfileSet, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::cli::{BenchCommand, ReplayArgs, SimulateArgs};
use crate::commands::{now, shutdown_signal, simulator_config};

/// Parses `BATCH[:COMPONENT[:MULTIPLIER]]`.
fn parse_defective_batch(spec: &str) -> anyhow::Result<simulators::DefectiveBatch> {
    let mut parts = spec.split(':');
    let batch = parts
        .next()
        .filter(|b| !b.is_empty())
        .context("--defective-batch needs a batch name")?;
    let component = parts
        .next()
        .filter(|c| !c.is_empty() && *c != "*")
        .map(str::to_owned);
    let multiplier = match parts.next() {
        Some(m) => m
            .parse::<f64>()
            .with_context(|| format!("--defective-batch multiplier {m:?} is not a number"))?,
        None => 5.0,
    };
    if parts.next().is_some() {
        bail!("--defective-batch takes BATCH[:COMPONENT[:MULTIPLIER]], got {spec:?}");
    }
    Ok(simulators::DefectiveBatch {
        batch: batch.to_owned(),
        component,
        multiplier,
    })
}

fn fleet_config(args: &SimulateArgs, start: Timestamp) -> anyhow::Result<simulators::FleetConfig> {
    let mut config = simulators::FleetConfig {
        refrigerator_interval_s: args.refrigerator_interval,
        ..simulator_config(args.devices, args.seed, start, args.early_degradation)
    };
    config.failure_rate_per_year = args.failure_rate;
    config.sudden_failure_share = args.sudden_failures;
    if !args.kinds.is_empty() {
        config.kinds = args.kinds.clone();
    }
    if let Some(spec) = &args.defective_batch {
        config.defective_batch = Some(parse_defective_batch(spec)?);
    }
    Ok(config)
}

fn cancel_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        c.cancel();
    });
    cancel
}

/// `fixahead simulate`
pub(crate) async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let profiles = ProfileSet::builtin();
    if let Some(out) = &args.out {
        if args.inject.is_some() {
            bail!("--inject applies to live publishing; a history file holds only what devices really sent");
        }
        let duration_ms = i64::from(args.days.max(1)) * Timestamp::DAY_MS;
        let start = match &args.start {
            Some(s) => Timestamp::parse(s)?,
            None => Timestamp(now().millis() - duration_ms),
        };
        let config = fleet_config(&args, start)?;
        let summary = write_history_with_bar(out, config, profiles, duration_ms).await?;
        println!(
            "wrote {} devices, {} messages ({} telemetry, {} faults), {} failures and {} repairs, {} to {}, into {}",
            summary.devices, summary.messages, summary.telemetry, summary.faults, summary.failures, summary.repairs,
            summary.start, summary.end, out.display()
        );
        return Ok(());
    }
    let start = match &args.start {
        Some(s) => Timestamp::parse(s)?,
        None => now(),
    };
    let endpoint = args.mqtt_tls.endpoint(&args.mqtt_url)?;
    let fleet = simulators::Fleet::new(fleet_config(&args, start)?, &profiles)?;
    let inject = match &args.inject {
        Some(spec) => simulators::InjectConfig::parse(spec)?,
        None => simulators::InjectConfig::default(),
    };
    let live = simulators::LiveConfig {
        tls: endpoint.tls.as_ref().map(|t| t.rumqttc()),
        host: endpoint.host,
        port: endpoint.port,
        client_id: client_id(
            args.username.as_deref(),
            &format!("fixahead-sim-{}", args.seed),
        ),
        username: args.username,
        password: args.password,
        speed: args.speed,
        ground_truth_path: args.ground_truth,
        max_duration: args.duration.map(Duration::from_secs),
        connections: args.connections.max(1),
        inject,
    };
    let summary = simulators::publish_live(live, fleet, cancel_on_signal()).await?;
    // Machine-readable, so a test (or an operator) can reconcile what was sent with
    // what fixahead stored and dead-lettered.
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// Writes a history with a progress bar over simulated time.
pub(crate) async fn write_history_with_bar(
    out: &Path,
    config: simulators::FleetConfig,
    profiles: ProfileSet,
    duration_ms: i64,
) -> anyhow::Result<simulators::HistorySummary> {
    let bar = ProgressBar::new(u64::try_from(duration_ms / Timestamp::HOUR_MS).unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} simulated hours, {msg} [{elapsed_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let out = out.to_owned();
    let b = bar.clone();
    let summary = tokio::task::spawn_blocking(move || {
        simulators::write_history_with_progress(&out, config, &profiles, duration_ms, &mut |p| {
            b.set_position(u64::try_from(p.simulated_ms / Timestamp::HOUR_MS).unwrap_or(0));
            b.set_message(format!("{} messages", p.messages));
        })
    })
    .await??;
    bar.finish_and_clear();
    Ok(summary)
}

/// `fixahead replay`
pub(crate) async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let endpoint = args.mqtt_tls.endpoint(&args.mqtt_url)?;
    let speed = match args.speed.as_str() {
        "max" => None,
        s => {
            let x: f64 = s
                .parse()
                .with_context(|| format!("--speed {s:?} is neither a number nor `max`"))?;
            if !(x.is_finite() && x > 0.0) {
                bail!("--speed must be a positive number or `max`");
            }
            Some(x)
        }
    };
    let config = simulators::replay::ReplayConfig {
        tls: endpoint.tls.as_ref().map(|t| t.rumqttc()),
        host: endpoint.host,
        port: endpoint.port,
        client_id: client_id(args.username.as_deref(), "fixahead-replay"),
        username: args.username,
        password: args.password,
        speed,
        connections: args.connections.max(1),
    };
    let summary = simulators::replay::replay(&args.dir, config, cancel_on_signal())
        .await
        .with_context(|| format!("replaying {}", args.dir.display()))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// Peak resident memory of this process, from /proc (Linux).
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `fixahead bench ...`
pub(crate) async fn bench(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        command @ (BenchCommand::Train { .. } | BenchCommand::Score { .. }) => {
            crate::bench::run(command).await?;
        }
        BenchCommand::Ingest(args) => crate::bench_ingest::run(args).await?,
        BenchCommand::FleetAlarms {
            seeds,
            devices,
            days,
            multiplier,
            component,
        } => tokio::task::block_in_place(|| {
            crate::bench_fleet::run(seeds, devices, days, multiplier, component)
        })?,
        BenchCommand::Insight(args) => crate::bench_insight::run(args).await?,
        BenchCommand::SimulateOffline { devices, days, out } => {
            let tmp;
            let dir = match out {
                Some(d) => d,
                None => {
                    tmp =
                        std::env::temp_dir().join(format!("fixahead-bench-{}", std::process::id()));
                    tmp.clone()
                }
            };
            let duration_ms = i64::from(days) * Timestamp::DAY_MS;
            let config = simulators::FleetConfig {
                devices,
                seed: 1,
                start: simulators::FleetConfig::DEFAULT_START,
                ..simulators::FleetConfig::default()
            };
            let started = Instant::now();
            let summary =
                write_history_with_bar(&dir, config, ProfileSet::builtin(), duration_ms).await?;
            let secs = started.elapsed().as_secs_f64();
            let bytes: u64 = ["telemetry.jsonl", "events.jsonl", "devices.jsonl"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum();
            println!("bench simulate-offline");
            println!("  devices            {devices}");
            println!("  simulated days     {days}");
            println!("  messages           {}", summary.messages);
            println!("  failures           {}", summary.failures);
            println!("  history size       {:.1} MB", bytes as f64 / 1e6);
            println!("  wall time          {secs:.1} s   (target: at most 60 s for 10,000 devices x 90 days)");
            println!(
                "  throughput         {:.0} messages/s",
                summary.messages as f64 / secs
            );
            if let Some(rss) = peak_rss_bytes() {
                println!("  peak memory        {:.0} MB", rss as f64 / 1e6);
            }
            if dir.starts_with(std::env::temp_dir())
                && dir
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("fixahead-bench-"))
            {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        BenchCommand::SimulateLive {
            devices,
            seconds,
            connections,
            mqtt_url,
            mqtt_tls,
        } => {
            let (host, port, tls, where_) = match &mqtt_url {
                Some(url) => {
                    let endpoint = mqtt_tls.endpoint(url)?;
                    (
                        endpoint.host,
                        endpoint.port,
                        endpoint.tls.map(|t| t.rumqttc()),
                        format!("external broker {url}; peak memory is the publisher's alone"),
                    )
                }
                None => {
                    let settings = ingest::broker::BrokerSettings::new(std::net::SocketAddr::from(
                        ([127, 0, 0, 1], 0),
                    ));
                    let addr = ingest::broker::start(&settings)?.addr();
                    (
                        addr.ip().to_string(),
                        addr.port(),
                        None,
                        "embedded broker in this process; peak memory includes it".to_owned(),
                    )
                }
            };
            let result =
                simulators::bench_live(devices, seconds, connections, &host, port, tls).await?;
            println!("bench simulate-live (QoS 1, no subscriber, {where_})");
            println!("  devices            {}", result.devices);
            println!("  connections        {}", result.connections);
            println!("  simulation speed   {:.0}x", result.speed);
            println!("  measured for       {:.1} s", result.seconds);
            println!("  published          {}", result.published);
            println!("  acknowledged       {}", result.acked);
            println!(
                "  throughput         {:.0} messages/s   (target: at least 50,000)",
                result.msgs_per_sec
            );
            println!(
                "  peak RSS           {:.0} MB   (target: publisher under 2 GB)",
                result.peak_rss_bytes as f64 / 1e6
            );
        }
    }
    Ok(())
}

/// The publisher's client id. With a username (a device's credentials on a broker that
/// requires them), `{username}:{name}`: the embedded broker accepts a device only under
/// its own id or `{id}:{suffix}` (docs/operations.md, "Device credentials").
fn client_id(username: Option<&str>, name: &str) -> String {
    match username {
        Some(user) => format!("{user}:{name}"),
        None => name.to_owned(),
    }
}
