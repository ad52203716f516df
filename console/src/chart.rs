//! Chart geometry for the device and fleet pages: typed structs of pixel positions and
//! labels that the page templates draw as inline SVG. Every label reaches the page
//! through the template, so askama escapes it like any other text (a region named
//! `<script>` is drawn as those characters); nothing here writes markup. No `style`
//! attributes either (the console's CSP): colours and strokes are CSS classes.

/// Rounds a pixel position to a tenth: enough for a crisp line, short in the page.
pub(crate) fn px(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// A linear map from data values `[d0, d1]` to pixels `[r0, r1]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    /// `[d0, d1]` onto `[r0, r1]`; an empty domain is widened around its value.
    pub(crate) fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Self {
        let (d0, d1) = if d1 > d0 {
            (d0, d1)
        } else {
            let pad = if d0 == 0.0 { 1.0 } else { d0.abs() * 0.1 };
            (d0 - pad, d0 + pad)
        };
        Self { d0, d1, r0, r1 }
    }

    /// The pixel of value `x`, clamped to the range.
    pub(crate) fn at(&self, x: f64) -> f64 {
        let t = ((x - self.d0) / (self.d1 - self.d0)).clamp(0.0, 1.0);
        px(self.r0 + t * (self.r1 - self.r0))
    }
}

/// Round tick values for `[lo, hi]`: about `n` of them, at 1, 2 or 5 times a power of
/// ten.
pub(crate) fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || n == 0 {
        return Vec::new();
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut out = Vec::new();
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-9 && out.len() <= 2 * n + 2 {
        // Avoid "-0" and float dust such as 0.30000000000000004.
        out.push(((v / step).round() * step * 1e6).round() / 1e6 + 0.0);
        v += step;
    }
    out
}

/// Shortens a label to `max` characters with an ellipsis (the full text goes in the
/// element's `<title>`).
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A channel's latest value against the fleet's p5-p95 band and median, drawn in a
/// [`RangeBar::WIDTH`] x [`RangeBar::HEIGHT`] box.
#[derive(Debug)]
pub(crate) struct RangeBar {
    pub(crate) band_x: f64,
    pub(crate) band_w: f64,
    pub(crate) median_x: f64,
    /// Where the value is, if there is one.
    pub(crate) value_x: Option<f64>,
    /// `low`, `normal` or `high`: the value's class.
    pub(crate) position: &'static str,
}

impl RangeBar {
    pub(crate) const WIDTH: f64 = 200.0;
    pub(crate) const HEIGHT: f64 = 28.0;

    /// The bar of `value` against `(p5, p50, p95)`; `None` if the range is not finite.
    pub(crate) fn new(value: Option<f64>, p5: f64, p50: f64, p95: f64) -> Option<Self> {
        if !(p5.is_finite() && p50.is_finite() && p95.is_finite()) {
            return None;
        }
        let value = value.filter(|v| v.is_finite());
        let mut lo = p5.min(p95);
        let mut hi = p5.max(p95);
        if let Some(v) = value {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let pad = if hi > lo {
            (hi - lo) * 0.12
        } else {
            lo.abs().max(1.0) * 0.1
        };
        let s = Scale::new(lo - pad, hi + pad, 6.0, Self::WIDTH - 6.0);
        let (x5, x95) = (s.at(p5.min(p95)), s.at(p5.max(p95)));
        let position = match value {
            Some(v) if v < p5.min(p95) => "low",
            Some(v) if v > p5.max(p95) => "high",
            _ => "normal",
        };
        Some(Self {
            band_x: x5,
            band_w: px((x95 - x5).max(2.0)),
            median_x: s.at(p50),
            value_x: value.map(|v| s.at(v)),
            position,
        })
    }
}

/// A tick of an axis: its pixel and label.
#[derive(Debug)]
pub(crate) struct Tick {
    pub(crate) at: f64,
    pub(crate) label: String,
    /// `start`, `middle` or `end`: the label's `text-anchor`, so that the first and
    /// last labels of an axis stay inside the chart.
    pub(crate) anchor: &'static str,
}

/// One point of a line, with what its tooltip says.
#[derive(Debug)]
pub(crate) struct Dot {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) title: String,
}

/// One line of a [`LineChart`].
#[derive(Debug)]
pub(crate) struct Line {
    /// `s0` ... `s5`: its colour (console.css).
    pub(crate) class: String,
    pub(crate) name: String,
    /// `x,y x,y ...` for the polyline.
    pub(crate) points: String,
    pub(crate) dots: Vec<Dot>,
}

/// The points of one line: (time ms, value, tooltip), sorted by time.
pub(crate) type Points = Vec<(i64, f64, String)>;

/// A time-series chart of values in `[0, 1]` (risks), with a dashed threshold line.
#[derive(Debug)]
pub(crate) struct LineChart {
    pub(crate) left: f64,
    pub(crate) right: f64,
    pub(crate) top: f64,
    pub(crate) bottom: f64,
    pub(crate) lines: Vec<Line>,
    pub(crate) y_ticks: Vec<Tick>,
    pub(crate) x_ticks: Vec<Tick>,
    /// The threshold's pixel, if one is drawn.
    pub(crate) threshold_y: Option<f64>,
}

impl LineChart {
    pub(crate) const WIDTH: f64 = 640.0;
    pub(crate) const HEIGHT: f64 = 240.0;

    /// Lines of `(time ms, value, tooltip)` points (each sorted by time) named by
    /// `name`, over `[t0, t1]`; x ticks labelled by `label(ms)`.
    pub(crate) fn new(
        series: Vec<(String, Points)>,
        t0: i64,
        t1: i64,
        threshold: Option<f64>,
        label: impl Fn(i64) -> String,
    ) -> Self {
        Self::scaled(
            series,
            (t0, t1),
            &[0.0, 0.25, 0.5, 0.75, 1.0],
            |v| format!("{v:.2}"),
            threshold,
            label,
        )
    }

    /// Like [`LineChart::new`] for values from 0 to the last of `y_values` (the y
    /// ticks, ascending, labelled by `y_label`), e.g. hours from [`ticks`].
    pub(crate) fn scaled(
        series: Vec<(String, Points)>,
        (t0, t1): (i64, i64),
        y_values: &[f64],
        y_label: impl Fn(f64) -> String,
        threshold: Option<f64>,
        label: impl Fn(i64) -> String,
    ) -> Self {
        let (left, right, top, bottom) = (44.0, Self::WIDTH - 16.0, 12.0, Self::HEIGHT - 28.0);
        let x = Scale::new(t0 as f64, t1 as f64, left, right);
        let y_max = y_values.last().copied().unwrap_or(1.0);
        let y = Scale::new(0.0, y_max, bottom, top);
        let lines = series
            .into_iter()
            .enumerate()
            .map(|(i, (name, pts))| {
                let dots: Vec<Dot> = pts
                    .into_iter()
                    .map(|(t, v, title)| Dot {
                        x: x.at(t as f64),
                        y: y.at(v),
                        title,
                    })
                    .collect();
                let points = dots
                    .iter()
                    .map(|d| format!("{},{}", d.x, d.y))
                    .collect::<Vec<_>>()
                    .join(" ");
                Line {
                    class: format!("s{}", i % 6),
                    name,
                    points,
                    dots,
                }
            })
            .collect();
        let y_ticks = y_values
            .iter()
            .map(|&v| Tick {
                at: y.at(v),
                label: y_label(v),
                anchor: "end",
            })
            .collect();
        let span = (t1 - t0).max(1);
        let x_ticks = (0..=4)
            .map(|i| {
                let t = t0 + span * i / 4;
                Tick {
                    at: x.at(t as f64),
                    label: label(t),
                    anchor: match i {
                        0 => "start",
                        4 => "end",
                        _ => "middle",
                    },
                }
            })
            .collect();
        Self {
            left,
            right,
            top,
            bottom,
            lines,
            y_ticks,
            x_ticks,
            threshold_y: threshold.filter(|t| t.is_finite()).map(|t| y.at(t)),
        }
    }
}

/// One bar of a [`BarChart`].
#[derive(Debug)]
pub(crate) struct Bar {
    pub(crate) y: f64,
    /// The label shown (clipped) and the full one (its tooltip).
    pub(crate) label: String,
    pub(crate) full_label: String,
    pub(crate) width: f64,
    pub(crate) value_label: String,
    /// The value label's x: after the bar.
    pub(crate) value_x: f64,
}

/// Horizontal bars: one row per group, labels on the left (they read on a phone).
#[derive(Debug)]
pub(crate) struct BarChart {
    pub(crate) height: f64,
    pub(crate) bars: Vec<Bar>,
    /// Where bars start.
    pub(crate) left: f64,
    pub(crate) ticks: Vec<Tick>,
    /// The baseline of the tick labels.
    pub(crate) axis_y: f64,
}

impl BarChart {
    pub(crate) const WIDTH: f64 = 480.0;
    const ROW: f64 = 22.0;

    /// Bars of `(label, value, value label)`; values below 0 or not finite draw none.
    pub(crate) fn new(rows: Vec<(String, f64, String)>) -> Self {
        let left = 130.0;
        let right = Self::WIDTH - 70.0;
        let max = rows
            .iter()
            .map(|r| r.1)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let tick_values = ticks(0.0, if max > 0.0 { max } else { 1.0 }, 4);
        let top = tick_values.last().copied().unwrap_or(1.0).max(max);
        let s = Scale::new(0.0, if top > 0.0 { top } else { 1.0 }, left, right);
        let bars: Vec<Bar> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (label, value, value_label))| {
                let w = if value.is_finite() && value > 0.0 {
                    px((s.at(value) - left).max(1.0))
                } else {
                    0.0
                };
                Bar {
                    y: px(4.0 + i as f64 * Self::ROW),
                    label: clip(&label, 18),
                    full_label: label,
                    width: w,
                    value_x: px(left + w + 4.0),
                    value_label,
                }
            })
            .collect();
        let axis_y = px(4.0 + bars.len() as f64 * Self::ROW + 12.0);
        Self {
            height: axis_y + 4.0,
            ticks: tick_values
                .into_iter()
                .map(|v| Tick {
                    at: s.at(v),
                    label: if v.fract() == 0.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v}")
                    },
                    anchor: "middle",
                })
                .collect(),
            bars,
            left,
            axis_y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 0.9, 3), [0.0, 0.5]);
        assert_eq!(ticks(0.0, 7.3, 4), [0.0, 2.0, 4.0, 6.0]);
        assert!(ticks(1.0, 1.0, 4).is_empty());
        assert!(ticks(0.0, f64::NAN, 4).is_empty());
        assert_eq!(ticks(0.1, 0.35, 5), [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
    }

    #[test]
    fn a_range_bar_places_the_value_against_the_band() {
        let b = RangeBar::new(Some(30.0), 10.0, 15.0, 20.0).unwrap();
        assert_eq!(b.position, "high");
        let v = b.value_x.unwrap();
        assert!(v > b.band_x + b.band_w, "{b:?}");
        assert!(b.median_x > b.band_x && b.median_x < b.band_x + b.band_w);
        assert!(v <= RangeBar::WIDTH);
        assert_eq!(
            RangeBar::new(Some(5.0), 10.0, 15.0, 20.0).unwrap().position,
            "low"
        );
        assert_eq!(
            RangeBar::new(Some(12.0), 10.0, 15.0, 20.0)
                .unwrap()
                .position,
            "normal"
        );
        // One device in the fleet: p5 = p95; the band still shows.
        let one = RangeBar::new(None, 3.0, 3.0, 3.0).unwrap();
        assert!(one.band_w >= 2.0 && one.value_x.is_none());
        assert!(RangeBar::new(Some(1.0), f64::NAN, 1.0, 2.0).is_none());
    }

    #[test]
    fn a_line_chart_maps_time_and_risk_into_its_plot() {
        let c = LineChart::new(
            vec![(
                "Drain pump".into(),
                vec![(0, 0.0, "a".into()), (100, 1.0, "b".into())],
            )],
            0,
            100,
            Some(0.6),
            |t| t.to_string(),
        );
        let d = &c.lines[0].dots;
        assert_eq!((d[0].x, d[0].y), (c.left, c.bottom));
        assert_eq!((d[1].x, d[1].y), (c.right, c.top));
        assert_eq!(
            c.lines[0].points,
            format!("{},{} {},{}", c.left, c.bottom, c.right, c.top)
        );
        let t = c.threshold_y.unwrap();
        assert!(t > c.top && t < c.bottom);
        assert_eq!(c.x_ticks.len(), 5);
        assert_eq!(c.x_ticks[4].label, "100");
    }

    #[test]
    fn bars_scale_to_the_largest_and_labels_are_clipped() {
        let c = BarChart::new(vec![
            ("a very long batch name indeed".into(), 10.0, "10".into()),
            ("b".into(), 5.0, "5".into()),
            ("c".into(), f64::NAN, "–".into()),
        ]);
        assert_eq!(c.bars[0].label.chars().count(), 18);
        assert!(c.bars[0].label.ends_with('…'));
        assert_eq!(c.bars[0].full_label, "a very long batch name indeed");
        assert!((c.bars[0].width - 2.0 * c.bars[1].width).abs() < 0.2);
        assert_eq!(c.bars[2].width, 0.0);
        assert!(c.height > c.bars[2].y);
    }
}
