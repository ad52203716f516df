//! PNG charts of an evaluation (plotters, bitmap backend).
//!
//! Text needs a TrueType font registered at run time (plotters' `ab_glyph` feature has
//! no system font lookup). Without one the charts are drawn without any text.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::Series;
use crate::{Error, Result};

/// Font files tried in order; the first that exists and parses is used.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers the first available font as `sans-serif` (once per process); whether one
/// was found.
pub(super) fn font_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        for path in FONT_PATHS {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            // plotters keeps fonts for the life of the process; this runs at most once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
        false
    })
}

/// Per device type: (component, (recall, precision) points).
pub(super) type PrCurves = BTreeMap<String, Vec<(String, Vec<(f64, f64)>)>>;

/// One device's risk series for the risk-over-time chart.
#[derive(Clone, Debug)]
pub(super) struct DeviceSeries {
    pub(super) label: String,
    pub(super) series: Series,
    /// Failure times (epoch ms) of the plotted component.
    pub(super) failures: Vec<i64>,
}

/// What the charts show.
pub(super) struct ChartData<'a> {
    /// Per device type: (component, (recall, precision) points).
    pub(super) pr_curves: &'a PrCurves,
    /// Lead times of the model's catches, days.
    pub(super) lead_days: &'a [f64],
    /// Up to 3 failing and 3 healthy devices.
    pub(super) series: &'a [DeviceSeries],
    /// Time origin of the x axis (epoch ms).
    pub(super) origin_ms: i64,
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(format!("drawing chart: {e}")))
}

/// File-name-safe version of a device type.
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Draws every chart into `dir`; returns the file names written.
pub(super) fn draw_all(data: &ChartData<'_>, dir: &Path, text: bool) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for (device_type, curves) in data.pr_curves {
        let name = format!("pr_{}.png", safe(device_type));
        let path = dir.join(&name);
        draw_pr(&path, device_type, curves, text).map_err(|e| draw_err(&path, e))?;
        written.push(name);
    }
    let name = "lead_times.png".to_owned();
    let path = dir.join(&name);
    draw_lead_times(&path, data.lead_days, text).map_err(|e| draw_err(&path, e))?;
    written.push(name);
    let name = "risk_over_time.png".to_owned();
    let path = dir.join(&name);
    draw_risk(&path, data.series, data.origin_ms, text).map_err(|e| draw_err(&path, e))?;
    written.push(name);
    Ok(written)
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw_pr(
    path: &Path,
    device_type: &str,
    curves: &[(String, Vec<(f64, f64)>)],
    text: bool,
) -> DrawResult {
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if text {
        builder
            .caption(
                format!("Precision-recall per component: {device_type}"),
                ("sans-serif", 22),
            )
            .x_label_area_size(40)
            .y_label_area_size(50);
    }
    let mut chart = builder.build_cartesian_2d(0.0f64..1.0f64, 0.0f64..1.0f64)?;
    mesh(&mut chart, text, "recall", "precision")?;
    for (i, (component, points)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|(r, p)| r.is_finite() && p.is_finite())
            .map(|(r, p)| (r.clamp(0.0, 1.0), p.clamp(0.0, 1.0)))
            .collect();
        let s = chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))?;
        if text {
            s.label(component.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if text && !curves.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    text: bool,
    x_desc: &str,
    y_desc: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut m = chart.configure_mesh();
    if text {
        m.x_desc(x_desc).y_desc(y_desc);
    } else {
        m.x_labels(0).y_labels(0);
    }
    m.draw()?;
    Ok(())
}

fn draw_lead_times(path: &Path, lead_days: &[f64], text: bool) -> DrawResult {
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let days: Vec<f64> = lead_days
        .iter()
        .copied()
        .filter(|d| d.is_finite() && *d >= 0.0)
        .collect();
    let max_day = days.iter().copied().fold(0.0f64, f64::max).ceil().max(1.0);
    let bins = max_day as usize;
    let mut counts = vec![0u32; bins];
    for d in &days {
        let i = (d.floor() as usize).min(bins - 1);
        counts[i] += 1;
    }
    let top = f64::from(counts.iter().copied().max().unwrap_or(0).max(1)) * 1.1;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if text {
        builder
            .caption(
                format!("Lead time of the model's catches (n = {})", days.len()),
                ("sans-serif", 22),
            )
            .x_label_area_size(40)
            .y_label_area_size(50);
    }
    let mut chart = builder.build_cartesian_2d(0.0f64..max_day, 0.0f64..top)?;
    mesh(&mut chart, text, "lead time (days)", "failures caught")?;
    chart.draw_series(counts.iter().enumerate().map(|(i, &n)| {
        let x = i as f64;
        Rectangle::new(
            [(x + 0.05, 0.0), (x + 0.95, f64::from(n))],
            BLUE.mix(0.7).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

fn draw_risk(path: &Path, series: &[DeviceSeries], origin_ms: i64, text: bool) -> DrawResult {
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 2));
    let day = domain::Timestamp::DAY_MS as f64;
    let x_of = |ts: i64| (ts - origin_ms) as f64 / day;
    for (i, panel) in panels.iter().enumerate() {
        let Some(ds) = series.get(i) else {
            continue;
        };
        draw_risk_panel(panel, ds, &x_of, text)?;
    }
    root.present()?;
    Ok(())
}

fn draw_risk_panel(
    panel: &DrawingArea<BitMapBackend<'_>, Shift>,
    ds: &DeviceSeries,
    x_of: &dyn Fn(i64) -> f64,
    text: bool,
) -> DrawResult {
    let pts: Vec<(f64, f64)> = ds
        .series
        .points
        .iter()
        .map(|&(t, r)| {
            (
                x_of(t),
                if r.is_finite() {
                    r.clamp(0.0, 1.0)
                } else {
                    0.0
                },
            )
        })
        .collect();
    let xs = pts
        .iter()
        .map(|p| p.0)
        .chain(ds.failures.iter().map(|&t| x_of(t)));
    let (mut lo, mut hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1.0 {
        hi = lo + 1.0;
    }
    let mut builder = ChartBuilder::on(panel);
    builder.margin(8);
    if text {
        builder
            .caption(ds.label.clone(), ("sans-serif", 16))
            .x_label_area_size(28)
            .y_label_area_size(40);
    }
    let mut chart = builder.build_cartesian_2d(lo..hi, 0.0f64..1.0f64)?;
    mesh(&mut chart, text, "day", "risk")?;
    let threshold = ds.series.threshold;
    if threshold.is_finite() {
        let t = threshold.clamp(0.0, 1.0);
        chart.draw_series(LineSeries::new(
            vec![(lo, t), (hi, t)],
            RGBColor(150, 150, 150).stroke_width(1),
        ))?;
    }
    chart.draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))?;
    for &f in &ds.failures {
        let x = x_of(f);
        chart.draw_series(LineSeries::new(
            vec![(x, 0.0), (x, 1.0)],
            RED.stroke_width(2),
        ))?;
    }
    Ok(())
}
