//! `fixahead simulate-service`: the service world against an in-process fixahead,
//! per dispatch rule, on the same fleet (the driver is [`crate::service_sim`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use domain::Timestamp;
use serde_json::Value;

use super::demo::{ensure_models_in, fleet_config};
use super::run::shutdown_signal;
use crate::cli::SimulateServiceArgs;
use crate::error::bail;
use crate::service_sim::{self, Rule, RuleReport, SimulationOptions};
use crate::settings::load_profiles;
use crate::{Context, Result};

/// `fixahead simulate-service`
pub async fn simulate_service(args: SimulateServiceArgs) -> Result<()> {
    let rules = rules(&args)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("data/simulate-service"));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let profiles = load_profiles(args.profiles.as_deref())?;
    let history = match &args.history {
        Some(h) => h.clone(),
        None => generate_history(&args, &data_dir, &profiles).await?,
    };
    let models = args
        .models
        .clone()
        .unwrap_or_else(|| data_dir.join("models"));
    ensure_models_in(&models, &data_dir, &profiles, args.seed).await?;
    let options = SimulationOptions {
        history: history.clone(),
        data_dir: data_dir.clone(),
        models,
        profiles_dir: args.profiles.clone(),
        world: simulators::service::ServiceConfig {
            seed: args.seed,
            engineers: args.engineers,
            ..simulators::service::ServiceConfig::default()
        },
        step_ms: i64::from(args.step_minutes.max(1)) * 60_000,
        drain_days: i64::from(args.drain_days),
        http_listen: args.http_listen,
        progress: !args.json,
    };
    let mut reports = Vec::new();
    let mut kept = None;
    for (i, rule) in rules.iter().enumerate() {
        if !args.json {
            eprintln!("Playing the service world under rule {}...", rule.as_str());
        }
        let keep = args.keep && i + 1 == rules.len();
        let (report, running) = service_sim::run_rule(&options, *rule, keep).await?;
        reports.push(report);
        kept = running;
    }
    if args.json {
        let doc = serde_json::json!({
            "history": history,
            "seed": args.seed,
            "engineers": args.engineers,
            "rules": reports,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_tables(&history, &reports);
    }
    if let Some(running) = kept {
        println!();
        println!(
            "fixahead ({} rule) keeps running at {} for inspection; Ctrl-C stops it.",
            reports.last().map_or("?", |r| r.rule.as_str()),
            reports.last().map_or("", |r| r.api.as_str())
        );
        println!(
            "  an admin key: fixahead keys create --role admin --data-dir {}",
            reports
                .last()
                .map_or(String::new(), |r| r.data_dir.display().to_string())
        );
        let stop = running.stop_token();
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = stop.cancelled() => {}
        }
        running.shutdown().await?;
    }
    Ok(())
}

/// The rules asked for: `--compare` is both, no `--rule` is fixahead.
fn rules(args: &SimulateServiceArgs) -> Result<Vec<Rule>> {
    if args.compare {
        return Ok(vec![Rule::Fcfs, Rule::Fixahead]);
    }
    let mut out = Vec::new();
    for r in &args.rules {
        let rule = match r.as_str() {
            "fcfs" => Rule::Fcfs,
            "fixahead" => Rule::Fixahead,
            other => bail!("--rule must be fcfs or fixahead, got {other:?}"),
        };
        if !out.contains(&rule) {
            out.push(rule);
        }
    }
    if out.is_empty() {
        out.push(Rule::Fixahead);
    }
    Ok(out)
}

/// Writes the history the run plays (`DATA_DIR/history`): `--devices` devices for
/// `--days` days from `--seed`, starting 2026-01-01, a share of devices wearing out
/// early so failures fall inside a short history, refrigerators reporting hourly
/// (the cadence the models are trained on).
async fn generate_history(
    args: &SimulateServiceArgs,
    data_dir: &std::path::Path,
    profiles: &domain::ProfileSet,
) -> Result<PathBuf> {
    if args.devices == 0 || args.days == 0 {
        bail!("--devices and --days must be at least 1");
    }
    let dir = data_dir.join("history");
    let config = simulators::FleetConfig {
        refrigerator_interval_s: 3600,
        ..fleet_config(
            args.devices,
            args.seed,
            simulators::FleetConfig::DEFAULT_START,
            0.3,
        )
    };
    let (d, p) = (dir.clone(), profiles.clone());
    let days = i64::from(args.days);
    let summary = tokio::task::spawn_blocking(move || {
        simulators::write_history(&d, config, &p, days * Timestamp::DAY_MS)
    })
    .await??;
    if !args.json {
        eprintln!(
            "Simulated a {}-day history of {} devices (seed {}): {} messages, {} failures, in {}",
            args.days,
            summary.devices,
            args.seed,
            summary.messages,
            summary.failures,
            dir.display()
        );
    }
    Ok(dir)
}

/// Every numeric leaf of `v`, by its path (`response_time.mean_hours`).
fn leaves(v: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(x, &p, out);
            }
        }
        Value::Number(n) => {
            let s = match n.as_f64() {
                Some(f) if f.fract() != 0.0 => format!("{f:.3}"),
                _ => n.to_string(),
            };
            out.insert(prefix.to_owned(), s);
        }
        Value::Null => {
            out.insert(prefix.to_owned(), "-".into());
        }
        _ => {}
    }
}

/// One table: rows by key, a column per rule.
fn table(title: &str, columns: &[String], rows: &[BTreeMap<String, String>]) {
    let keys: std::collections::BTreeSet<&String> = rows.iter().flat_map(|r| r.keys()).collect();
    if keys.is_empty() {
        return;
    }
    let width = keys
        .iter()
        .map(|k| k.len())
        .max()
        .unwrap_or(10)
        .max(title.len());
    println!();
    print!("{title:<width$}");
    for c in columns {
        print!("  {c:>12}");
    }
    println!();
    for k in keys {
        print!("{k:<width$}");
        for r in rows {
            print!("  {:>12}", r.get(k).map_or("-", String::as_str));
        }
        println!();
    }
}

fn print_tables(history: &std::path::Path, reports: &[RuleReport]) {
    let columns: Vec<String> = reports.iter().map(|r| r.rule.as_str().to_owned()).collect();
    println!();
    println!("Service simulation of {}", history.display());
    if let Some(r) = reports.first() {
        println!(
            "  simulated {} .. {}",
            r.from.to_rfc3339(),
            r.to.to_rfc3339()
        );
    }
    let kpis: Vec<BTreeMap<String, String>> = reports
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            leaves(r.kpis.get("overall").unwrap_or(&r.kpis), "", &mut m);
            m
        })
        .collect();
    table("KPIs (GET /api/v1/kpis, overall)", &columns, &kpis);
    let counts: Vec<BTreeMap<String, String>> = reports
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            leaves(
                &serde_json::to_value(&r.counts).unwrap_or(Value::Null),
                "",
                &mut m,
            );
            let mean = (r.counts.satisfaction_answers > 0)
                .then(|| r.counts.satisfaction_sum as f64 / r.counts.satisfaction_answers as f64);
            m.insert(
                "satisfaction_mean".into(),
                mean.map_or("-".into(), |x| format!("{x:.2}")),
            );
            m.insert(
                "prejudged_confirmed".into(),
                r.prejudged.confirmed.to_string(),
            );
            m.insert("prejudged_matched".into(), r.prejudged.matched.to_string());
            m.insert(
                "prejudged_share".into(),
                r.prejudged.share.map_or("-".into(), |s| format!("{s:.3}")),
            );
            m.insert("wall_seconds".into(), format!("{:.1}", r.seconds));
            m
        })
        .collect();
    table("What the service world did", &columns, &counts);
    let models: Vec<BTreeMap<String, String>> = reports
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            leaves(
                r.model_performance
                    .get("overall")
                    .unwrap_or(&r.model_performance),
                "",
                &mut m,
            );
            m
        })
        .collect();
    table(
        "Model performance (GET /api/v1/models/performance)",
        &columns,
        &models,
    );
    println!();
    for r in reports {
        if !r.missing_routes.is_empty() {
            println!(
                "{}: this fixahead lacks {} (the world skipped what they do)",
                r.rule.as_str(),
                r.missing_routes.join(", ")
            );
        }
        println!(
            "{}: ticket records in {}",
            r.rule.as_str(),
            r.data_dir.join("tickets.db").display()
        );
    }
}
