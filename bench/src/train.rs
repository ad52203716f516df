//! `fixahead bench train`: the training speed target (`models::train`, default
//! parameters, on about a million feature rows; docs/benchmarks.md, "Training").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use domain::{ProfileSet, Timestamp};
use server::commands::simulate::write_history_with_bar;
use server::commands::train::spinner;

use server::Context as _;

use crate::error::bail;
use crate::stats::verdict;
use crate::system::{peak_rss_bytes, TempDir};
use crate::Result;

/// Training target: at most this long for [`TRAIN_TARGET_ROWS`] feature rows.
const TRAIN_TARGET_SECS: f64 = 60.0;
/// The row count the training target is stated for.
const TRAIN_TARGET_ROWS: u64 = 1_000_000;

// The flags of `fixahead bench train` (its help is the variant's doc in `BenchCommand`).
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Feature rows to size the simulated fleet for (target: 1,000,000 in at most 60 s).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Simulated days (the first 7 are warm-up and give no rows).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Train on this history instead of simulating one (--rows and --days are ignored).
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// Keep the simulated history here (default: a temporary directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub keep_history: Option<PathBuf>,
    /// Save the trained models here (for `bench score --model`); not timed.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Simulated seconds between two refrigerator reports.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub refrigerator_interval: u64,
}

/// Feature rows a device contributes per simulated day once warm (default training
/// parameters: at most one row per 6 h, and only when a message arrives). Refrigerators,
/// air conditioners and water heaters report at least hourly, so they give the full 4;
/// washers and dishwashers report about once per program (0.8 messages a day), which
/// gave 0.58-0.60 rows a day on a 100-device, 67-day simulated history.
fn rows_per_device_day(kind: &str) -> f64 {
    match kind {
        "washer" | "dishwasher" => 0.6,
        _ => 4.0,
    }
}

/// Devices for a fleet of `kinds` (round-robin) that yields about `rows` feature rows
/// over `days` simulated days: rows = devices x (days - 7 warm-up days) x the fleet's
/// mean rows per device-day. Returns the devices and the rows that estimate gives.
fn fleet_for_rows(rows: u64, days: u32, kinds: &[String]) -> Result<(usize, f64)> {
    let warm_up_days = (models::features::WARM_UP_MS / Timestamp::DAY_MS) as u32;
    if days <= warm_up_days {
        bail!("--days must exceed the {warm_up_days}-day warm-up, got {days}");
    }
    if kinds.is_empty() {
        bail!("no device kinds to simulate");
    }
    let per_device_day =
        kinds.iter().map(|k| rows_per_device_day(k)).sum::<f64>() / kinds.len() as f64;
    let per_device = f64::from(days - warm_up_days) * per_device_day;
    let devices = ((rows as f64 / per_device).ceil() as usize).max(kinds.len());
    Ok((devices, devices as f64 * per_device))
}

/// Timings of one `models::train` call, split at its progress reports.
pub(crate) struct TrainTiming {
    pub(crate) artifacts: Vec<models::ModelArtifact>,
    lines: u64,
    rejected: u64,
    devices: u64,
    rows: u64,
    total: Duration,
    /// Reading events and replaying the history into feature rows.
    replay: Duration,
    /// Per device type: fit time (standardisation, labels, both families, calibration,
    /// thresholds) and components trained of all.
    by_type: Vec<(String, Duration, usize, usize)>,
}

/// Times `models::train` with `params` on `history`, with a spinner on stderr.
pub(crate) fn timed_train(
    history: &Path,
    params: &models::ValidTrainParams,
) -> Result<TrainTiming> {
    let bar = spinner(format!("training on {}", history.display()));
    let mut loaded = None;
    let mut by_type: Vec<(String, Duration, usize, usize)> = Vec::new();
    let started = Instant::now();
    let mut last = started;
    let mut on_progress = |p: models::TrainProgress| match p {
        models::TrainProgress::Reading { messages } => {
            bar.set_message(format!("replaying history: {messages} messages"));
        }
        models::TrainProgress::Loaded {
            lines,
            rejected,
            devices,
            rows,
        } => {
            last = Instant::now();
            loaded = Some((last - started, lines, rejected, devices, rows));
            bar.set_message(format!("fitting on {rows} feature rows"));
        }
        models::TrainProgress::Component {
            device_type,
            component,
            outcome,
        } => {
            let now = Instant::now();
            let trained = usize::from(outcome.starts_with("trained"));
            let counted = usize::from(component != "*");
            match by_type.last_mut() {
                Some(t) if t.0 == device_type => {
                    t.1 += now - last;
                    t.2 += trained;
                    t.3 += counted;
                }
                _ => by_type.push((device_type.clone(), now - last, trained, counted)),
            }
            last = now;
            bar.set_message(format!("fitted {device_type}/{component}"));
        }
    };
    let artifacts = models::train(history, &ProfileSet::builtin(), params, &mut on_progress)
        .with_context(|| format!("training from {}", history.display()))?;
    let total = started.elapsed();
    bar.finish_and_clear();
    let (replay, lines, rejected, devices, rows) =
        loaded.context("training never reported its feature rows")?;
    Ok(TrainTiming {
        artifacts,
        lines,
        rejected,
        devices,
        rows,
        total,
        replay,
        by_type,
    })
}

/// `models::train` with default parameters on `history`, in a blocking task.
pub(crate) async fn train_in_background(history: PathBuf) -> Result<TrainTiming> {
    tokio::task::spawn_blocking(move || timed_train(&history, &models::ValidTrainParams::default()))
        .await?
}

/// The history `bench train` simulated (not part of the target).
struct Simulated {
    devices: usize,
    estimate: f64,
    summary: simulators::HistorySummary,
    took: Duration,
    /// The temporary directory it is in, unless --keep-history.
    _tmp: Option<TempDir>,
}

/// Simulates a fleet sized for about `args.rows` feature rows, into --keep-history or a
/// temporary directory.
async fn simulate_for_rows(args: &TrainArgs) -> Result<(PathBuf, Simulated)> {
    let config = simulators::FleetConfig {
        seed: 1,
        start: simulators::FleetConfig::DEFAULT_START,
        refrigerator_interval_s: args.refrigerator_interval,
        ..simulators::FleetConfig::default()
    };
    let (devices, estimate) = fleet_for_rows(args.rows, args.days, &config.kinds)?;
    let config = simulators::FleetConfig { devices, ..config };
    let (dir, tmp) = match &args.keep_history {
        Some(d) => (d.clone(), None),
        None => {
            let t = TempDir::new("train");
            (t.0.clone(), Some(t))
        }
    };
    eprintln!(
        "simulating {devices} devices x {} days (about {estimate:.0} feature rows) into {}",
        args.days,
        dir.display()
    );
    let started = Instant::now();
    let summary = write_history_with_bar(
        &dir,
        config,
        ProfileSet::builtin(),
        i64::from(args.days) * Timestamp::DAY_MS,
    )
    .await?;
    let simulated = Simulated {
        devices,
        estimate,
        summary,
        took: started.elapsed(),
        _tmp: tmp,
    };
    Ok((dir, simulated))
}

/// `fixahead bench train`.
pub(crate) async fn run(args: TrainArgs) -> Result<()> {
    let (dir, simulated) = match &args.history {
        Some(dir) => (dir.clone(), None),
        None => {
            let (dir, simulated) = simulate_for_rows(&args).await?;
            (dir, Some(simulated))
        }
    };
    let t = train_in_background(dir.clone()).await?;
    if let Some(out) = &args.out {
        for a in &t.artifacts {
            models::artifact::save(a, out)?;
        }
    }
    print_report(&args, &dir, simulated.as_ref(), &t);
    Ok(())
}

fn print_report(args: &TrainArgs, dir: &Path, simulated: Option<&Simulated>, t: &TrainTiming) {
    println!("bench train (models::train, default parameters)");
    match simulated {
        Some(s) => {
            println!(
                "  history            simulated: {} devices of five kinds x {} days, refrigerator interval {} s",
                s.devices, args.days, args.refrigerator_interval
            );
            println!(
                "  simulation         {:.1} s, {} messages, {} failures (not part of the target)",
                s.took.as_secs_f64(),
                s.summary.messages,
                s.summary.failures
            );
            println!("  estimated rows     {:.0}", s.estimate);
        }
        None => println!("  history            {}", dir.display()),
    }
    println!(
        "  messages           {} ({} rejected), {} devices",
        t.lines, t.rejected, t.devices
    );
    println!("  feature rows       {}", t.rows);
    let total = t.total.as_secs_f64();
    let replay = t.replay.as_secs_f64();
    println!(
        "  replay             {replay:.1} s   (read events, decode the history, update features, sample rows: {:.0} messages/s)",
        t.lines as f64 / replay.max(1e-9)
    );
    println!(
        "  fit                {:.1} s   (labels, logistic + bagged trees, calibration, thresholds)",
        total - replay
    );
    for (device_type, d, trained, components) in &t.by_type {
        println!(
            "    {device_type:<18} {:>5.1} s   {trained}/{components} components trained",
            d.as_secs_f64()
        );
    }
    println!(
        "  train total        {total:.1} s   ({:.0} rows/s)",
        t.rows as f64 / total.max(1e-9)
    );
    // The target is stated for 1,000,000 rows; scale it linearly for other sizes.
    let target = TRAIN_TARGET_SECS * t.rows as f64 / TRAIN_TARGET_ROWS as f64;
    println!(
        "  target             at most {TRAIN_TARGET_SECS:.0} s for {TRAIN_TARGET_ROWS} rows ({target:.1} s for {} rows): {}",
        t.rows,
        verdict(total <= target)
    );
    if let Some(out) = &args.out {
        println!("  models saved to    {}", out.display());
    }
    if let Some(rss) = peak_rss_bytes() {
        println!("  peak memory        {:.0} MB", rss as f64 / 1e6);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five_kinds() -> Vec<String> {
        simulators::FleetConfig::default().kinds
    }

    #[test]
    fn a_million_rows_over_a_year_takes_about_1059_devices() {
        // Five kinds round-robin: (3 x 4 + 2 x 0.6) / 5 = 2.64 rows per device-day,
        // over 365 - 7 = 358 warm days: 1,000,000 / 945.12 = 1058.06, rounded up.
        let (devices, estimate) = fleet_for_rows(1_000_000, 365, &five_kinds()).unwrap();
        assert_eq!(devices, 1059);
        assert!((estimate - 1059.0 * 358.0 * 2.64).abs() < 1e-6);
        assert!(estimate >= 1_000_000.0);
    }

    #[test]
    fn hourly_reporters_give_four_rows_a_day() {
        let kinds = vec!["refrigerator".to_owned()];
        let (devices, _) = fleet_for_rows(4 * 93 * 10, 100, &kinds).unwrap();
        assert_eq!(devices, 10);
    }

    #[test]
    fn a_fleet_has_at_least_one_device_per_kind_and_needs_warm_days() {
        let (devices, _) = fleet_for_rows(1, 365, &five_kinds()).unwrap();
        assert_eq!(devices, 5);
        assert!(fleet_for_rows(1_000, 7, &five_kinds()).is_err());
        assert!(fleet_for_rows(1_000, 30, &[]).is_err());
    }
}
