//! `fixahead bench simulate-offline` (writing a simulated history) and `fixahead bench
//! simulate-live` (publishing a large fleet to a broker): docs/benchmarks.md,
//! "Simulation".

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use domain::{ProfileSet, Timestamp};
use server::commands::simulate::write_history_with_bar;

use crate::broker::Broker;
use crate::system::peak_rss_bytes;
use crate::Result;

// The flags of `fixahead bench simulate-offline`.
#[derive(Debug, Args)]
pub struct SimulateOfflineArgs {
    /// Devices.
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Simulated days.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Where to write (default: a temporary directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

// The flags of `fixahead bench simulate-live`.
#[derive(Debug, Args)]
pub struct SimulateLiveArgs {
    /// Devices.
    #[arg(long, default_value_t = 100_000)]
    pub devices: usize,
    /// Wall-clock seconds to publish for.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// MQTT connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Publish to this broker (mqtt:// or mqtts://) instead of an embedded one
    /// started in this process, so the peak memory printed is the publisher's alone.
    #[arg(long, value_name = "URL")]
    pub mqtt_url: Option<String>,
    #[command(flatten)]
    pub mqtt_tls: server::cli::MqttTlsArgs,
}

/// `fixahead bench simulate-offline`.
pub(crate) async fn offline(args: SimulateOfflineArgs) -> Result<()> {
    let SimulateOfflineArgs { devices, days, out } = args;
    let dir = out.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("fixahead-bench-{}", std::process::id()))
    });
    let duration_ms = i64::from(days) * Timestamp::DAY_MS;
    let config = simulators::FleetConfig {
        devices,
        seed: 1,
        start: simulators::FleetConfig::DEFAULT_START,
        ..simulators::FleetConfig::default()
    };
    let started = Instant::now();
    let summary = write_history_with_bar(&dir, config, ProfileSet::builtin(), duration_ms).await?;
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
    println!(
        "  wall time          {secs:.1} s   (target: at most 60 s for 10,000 devices x 90 days)"
    );
    println!(
        "  throughput         {:.0} messages/s",
        summary.messages as f64 / secs
    );
    if let Some(rss) = peak_rss_bytes() {
        println!("  peak memory        {:.0} MB", rss as f64 / 1e6);
    }
    // The default directory is removed afterwards, and so is an --out directory named
    // like one in the temporary directory (as it always was).
    if dir.starts_with(std::env::temp_dir())
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("fixahead-bench-"))
    {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// `fixahead bench simulate-live`.
pub(crate) async fn live(args: SimulateLiveArgs) -> Result<()> {
    let broker = Broker::resolve(args.mqtt_url.as_deref(), &args.mqtt_tls)?;
    let where_ = match &args.mqtt_url {
        Some(url) => format!("external broker {url}; peak memory is the publisher's alone"),
        None => "embedded broker in this process; peak memory includes it".to_owned(),
    };
    let tls = broker.tls.as_ref().map(|t| t.rumqttc());
    let result = simulators::bench_live(
        args.devices,
        args.seconds,
        args.connections,
        &broker.host,
        broker.port,
        tls,
    )
    .await?;
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
    Ok(())
}
