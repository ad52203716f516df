//! The model commands: `train` (from a history or from the stores), `eval` and
//! `predict`, with progress and summaries on the terminal.

use std::path::Path;
use std::time::Duration;

use domain::{time::parse_duration_ms, ProfileSet};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{EvalArgs, PredictArgs, TrainArgs};
use crate::error::bail;
use crate::settings::{load_profiles, ConfigFile};
use crate::{Context, Result};

/// Training parameters from a TOML text (unknown names are an error; missing ones take
/// their defaults).
fn parse_train_params(text: &str) -> Result<models::TrainParams> {
    let params: models::TrainParams = toml::from_str(text)?;
    params.validate()?;
    Ok(params)
}

/// `fixahead train`
pub fn train(args: TrainArgs) -> Result<()> {
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
    }
    .check()?;
    let data = match &args.history {
        Some(history) => models::TrainingData::from_history(history, &ProfileSet::builtin())
            .with_context(|| format!("reading {}", history.display()))?,
        None => {
            let config = ConfigFile::load_or_default(args.config.as_deref())?;
            let profiles = load_profiles(config.profiles.dir.as_deref())?;
            let data_dir = args.data_dir.unwrap_or(config.data_dir);
            crate::feedback::training_data(&data_dir, profiles)?
        }
    };
    train_into(data, &args.out, &params, true)?;
    Ok(())
}

/// `fixahead eval`
pub fn eval(args: EvalArgs) -> Result<()> {
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
pub fn predict(args: PredictArgs) -> Result<()> {
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

/// A spinner on stderr with the elapsed time and `message`, as training shows it
/// (`fixahead train`, and `fixahead bench train`).
pub fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(message);
    bar
}

/// Trains from a history directory into a model directory, printing a summary.
pub(crate) fn train_into(
    data: models::TrainingData<'_>,
    out: &Path,
    params: &models::ValidTrainParams,
    verbose: bool,
) -> Result<Vec<String>> {
    let history = data.origin.clone();
    let bar = spinner(format!("reading {}", history.display()));
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

#[cfg(test)]
mod tests {
    use super::parse_train_params;

    #[test]
    fn the_documented_training_parameters_parse_and_typos_are_refused() {
        let doc = include_str!("../../../docs/models.md");
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
