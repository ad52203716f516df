//! The simulator's commands: `simulate` (a live fleet over MQTT, or a history
//! directory) and `replay` (any history directory to a broker).

use std::path::Path;
use std::time::Duration;

use domain::{ProfileSet, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::demo::fleet_config as simulator_config;
use super::run::shutdown_signal;
use crate::cli::{ReplayArgs, SimulateArgs};
use crate::error::bail;
use crate::now;
use crate::{Context, Result};

/// Parses `BATCH[:COMPONENT[:MULTIPLIER]]`.
fn parse_defective_batch(spec: &str) -> Result<simulators::DefectiveBatch> {
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

fn fleet_config(args: &SimulateArgs, start: Timestamp) -> Result<simulators::FleetConfig> {
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
pub async fn simulate(args: SimulateArgs) -> Result<()> {
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
        broker: simulators::BrokerTarget {
            tls: endpoint.tls.as_ref().map(|t| t.rumqttc()),
            host: endpoint.host,
            port: endpoint.port,
            client_id: client_id(
                args.username.as_deref(),
                &format!("fixahead-sim-{}", args.seed),
            ),
            username: args.username,
            password: args.password,
        },
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
pub async fn write_history_with_bar(
    out: &Path,
    config: simulators::FleetConfig,
    profiles: ProfileSet,
    duration_ms: i64,
) -> Result<simulators::HistorySummary> {
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
pub async fn replay(args: ReplayArgs) -> Result<()> {
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
        broker: simulators::BrokerTarget {
            tls: endpoint.tls.as_ref().map(|t| t.rumqttc()),
            host: endpoint.host,
            port: endpoint.port,
            client_id: client_id(args.username.as_deref(), "fixahead-replay"),
            username: args.username,
            password: args.password,
        },
        speed,
        connections: args.connections.max(1),
    };
    let summary = simulators::replay::replay(&args.dir, config, cancel_on_signal())
        .await
        .with_context(|| format!("replaying {}", args.dir.display()))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
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
