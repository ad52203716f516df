//! The report: [`EvalReport`] (what `metrics.json` holds), `episodes.jsonl` and
//! `report.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::count::EpisodeRecord;
use super::metrics::{Metrics, RowLevel, ScopedMetrics};
use super::DAY_MS;
use crate::{Error, Result};

/// Summary of the history read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HistorySummary {
    /// Non-blank telemetry lines.
    pub lines: u64,
    /// Decoded messages.
    pub decoded: u64,
    /// Lines skipped (undecodable).
    pub rejected: u64,
    /// Devices with at least one message.
    pub devices: u64,
}

/// Everything `eval` measured; also what `metrics.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvalReport {
    /// Horizon used per device type (ms).
    pub horizon_ms: BTreeMap<String, i64>,
    /// The active models.
    pub model: ScopedMetrics,
    /// The fault-code baseline on the same devices and components.
    pub baseline: ScopedMetrics,
    /// Row-level quality per type and component.
    pub row_level: BTreeMap<String, BTreeMap<String, RowLevel>>,
    /// Device types in the history without a usable model (not evaluated).
    pub types_without_model: Vec<String>,
    /// Failures of devices or components the model does not score, per `type/component`.
    pub unscored_failures: BTreeMap<String, u64>,
    /// What reading the history found.
    pub history: HistorySummary,
    /// PNG files written to the report directory.
    pub charts: Vec<String>,
    /// Whether the charts have text (a font was found); without one they have none.
    pub chart_text: bool,
}

/// `episodes.jsonl`: one [`EpisodeRecord`] per line, by device, component and scorer.
pub(super) fn write_episodes(episodes: &[EpisodeRecord], path: &Path) -> Result<()> {
    let mut text = String::new();
    for e in episodes {
        let line = serde_json::to_string(e).map_err(|e| {
            Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// `metrics.json`: the report, pretty-printed.
pub(super) fn write_json(report: &EvalReport, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(|e| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "-".to_owned(),
    }
}

/// Which of model and baseline has the higher F1 (ties and missing values say so).
fn winner(model: Option<f64>, baseline: Option<f64>) -> &'static str {
    match (model, baseline) {
        (Some(m), Some(b)) if m > b + 1e-12 => "model",
        (Some(m), Some(b)) if b > m + 1e-12 => "baseline",
        (Some(_), Some(_)) => "tie",
        (Some(_), None) => "model",
        (None, Some(_)) => "baseline",
        (None, None) => "n/a",
    }
}

fn metrics_row(out: &mut String, label: &str, m: &Metrics, b: &Metrics) {
    let _ = writeln!(
        out,
        "| {label} | {} | {} / {} / {} | {} / {} | {} / {} / {} | {} / {} | {} / {} | {} / {} | {} |",
        m.failures,
        m.flags,
        m.caught,
        m.false_alarms,
        fmt_opt(m.precision, 2),
        fmt_opt(m.recall, 2),
        b.flags,
        b.caught,
        b.false_alarms,
        fmt_opt(b.precision, 2),
        fmt_opt(b.recall, 2),
        fmt_opt(m.f1, 2),
        fmt_opt(b.f1, 2),
        fmt_opt(m.lead_time_days_median, 1),
        fmt_opt(b.lead_time_days_median, 1),
        winner(m.f1, b.f1),
    );
}

const TABLE_HEAD: &str = "| scope | failures | model flags / caught / false alarms | model P / R | baseline flags / caught / false alarms | baseline P / R | F1 model / baseline | lead days median model / baseline | F1 winner |\n|---|---|---|---|---|---|---|---|---|\n";

pub(super) fn render_markdown(r: &EvalReport, no_charts: bool) -> String {
    let mut s = String::new();
    render_intro(&mut s, r);
    render_overall(&mut s, r);
    render_by_type(&mut s, r);
    render_components(&mut s, r);
    render_footer(&mut s, r, no_charts);
    s
}

/// The title, what was read, how events are counted, and the horizons.
fn render_intro(s: &mut String, r: &EvalReport) {
    let _ = writeln!(s, "# Evaluation report\n");
    let _ = writeln!(
        s,
        "History: {} lines, {} decoded, {} rejected, {} devices. Model version(s): {}.\n",
        r.history.lines,
        r.history.decoded,
        r.history.rejected,
        r.history.devices,
        if r.model.overall.model_version.is_empty() {
            "none"
        } else {
            &r.model.overall.model_version
        }
    );
    let _ = writeln!(
        s,
        "Counted at event level: a flag is an episode of consecutive flagged scores (one per \
         rising edge); a failure is caught if a flag of that device and component started \
         within the horizon before it; a flag not followed by a failure of its component \
         within the horizon is a false alarm, unless the history ends before its horizon \
         does (censored: not yet known, not counted; the false-alarm rate is per judged \
         device-month, up to one horizon before the end). Flags that start while the \
         component is already failed are not counted. Every flag and missed failure is in \
         `episodes.jsonl`. Baseline: flag a component when the device raised \
         at least 2 of its fault codes, or one major/critical code, in the last 7 days. \
         Both start after the same 7-day warm-up. See `metrics.json` for every number.\n"
    );
    for (t, h) in &r.horizon_ms {
        let _ = writeln!(
            s,
            "- horizon for `{t}`: {:.1} days",
            *h as f64 / DAY_MS as f64
        );
    }
    let _ = writeln!(s);
}

/// All devices and components together.
fn render_overall(s: &mut String, r: &EvalReport) {
    let _ = writeln!(s, "## Overall\n");
    s.push_str(TABLE_HEAD);
    metrics_row(s, "all", &r.model.overall, &r.baseline.overall);
    let _ = writeln!(
        s,
        "\nRecall over failures with a precursor (not `sudden`): model {}, baseline {}. \
         Failures before the device's warm-up completed (counted, rarely catchable): {}. \
         False alarms per 1000 device-months: model {}, baseline {}. Lead time p10: model {} days.\n",
        fmt_opt(r.model.overall.recall_with_precursor, 2),
        fmt_opt(r.baseline.overall.recall_with_precursor, 2),
        r.model.overall.failures_before_warm_up,
        fmt_opt(r.model.overall.false_alarms_per_1000_device_months, 1),
        fmt_opt(r.baseline.overall.false_alarms_per_1000_device_months, 1),
        fmt_opt(r.model.overall.lead_time_days_p10, 1),
    );
}

/// One row per device type, and the F1 winner of each.
fn render_by_type(s: &mut String, r: &EvalReport) {
    let _ = writeln!(s, "## By device type\n");
    s.push_str(TABLE_HEAD);
    let empty = Metrics::default();
    for (t, m) in &r.model.by_type {
        let b = r.baseline.by_type.get(t).unwrap_or(&empty);
        metrics_row(s, t, m, b);
    }
    let _ = writeln!(s, "\nF1 winner per device type:\n");
    for (t, m) in &r.model.by_type {
        let b = r.baseline.by_type.get(t).unwrap_or(&empty);
        let _ = writeln!(
            s,
            "- `{t}`: **{}** (model F1 {}, baseline F1 {})",
            winner(m.f1, b.f1),
            fmt_opt(m.f1, 2),
            fmt_opt(b.f1, 2)
        );
    }
    let _ = writeln!(s);
}

/// One section per device type: a row per component, and its row-level quality.
fn render_components(s: &mut String, r: &EvalReport) {
    let empty = Metrics::default();
    for (t, comps) in &r.model.by_component {
        let _ = writeln!(s, "## {t}\n");
        s.push_str(TABLE_HEAD);
        for (c, m) in comps {
            let b = r
                .baseline
                .by_component
                .get(t)
                .and_then(|x| x.get(c))
                .unwrap_or(&empty);
            metrics_row(s, c, m, b);
        }
        if let Some(rows) = r.row_level.get(t) {
            let _ = writeln!(s, "\nRow level (every scored message):\n");
            for (c, row) in rows {
                let _ = writeln!(
                    s,
                    "- `{c}`: {} rows, base rate {}, average precision {}",
                    row.rows,
                    fmt_opt(row.base_rate, 3),
                    fmt_opt(row.average_precision, 3)
                );
            }
        }
        let _ = writeln!(s);
    }
}

/// What was not evaluated, and the charts.
fn render_footer(s: &mut String, r: &EvalReport, no_charts: bool) {
    if !r.types_without_model.is_empty() {
        let _ = writeln!(
            s,
            "Not evaluated (no usable model): {}.\n",
            r.types_without_model.join(", ")
        );
    }
    if !r.unscored_failures.is_empty() {
        let list: Vec<String> = r
            .unscored_failures
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let _ = writeln!(
            s,
            "Failures of components the model does not score (not in any table): {}.\n",
            list.join(", ")
        );
    }
    let _ = writeln!(s, "## Charts\n");
    if no_charts {
        let _ = writeln!(s, "Charts were not requested.");
    } else {
        if !r.chart_text {
            let _ = writeln!(
                s,
                "No font was found (looked for DejaVu Sans, Liberation Sans and a few other \
                 common paths), so the charts are drawn without captions, labels or legends.\n"
            );
        }
        for c in &r.charts {
            let _ = writeln!(s, "![{c}]({c})");
        }
    }
}
