//! The ticket page's pictures as geometry: a feature's value against its normal range,
//! a risk meter, the risk trend, and the channel charts with fault codes and tickets
//! marked. The template draws them as SVG with classes (no inline styles: the CSP
//! forbids them); every text in them goes through askama's escaping.

/// Rounds to a tenth of a pixel, so attributes stay short.
fn px(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// A linear map from `[d0, d1]` onto `[r0, r1]`; a degenerate domain maps to the
/// middle.
#[derive(Clone, Copy, Debug)]
struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    fn at(&self, x: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span.abs() < f64::EPSILON || !span.is_finite() {
            return px((self.r0 + self.r1) / 2.0);
        }
        px(self.r0 + (x - self.d0) / span * (self.r1 - self.r0))
    }
}

/// Width of a feature bar's picture.
pub(crate) const BAR_W: f64 = 240.0;

/// A feature's value against its normal range: a track, the normal band and a dot.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bar {
    /// The normal band: x and width.
    pub(crate) band_x: f64,
    pub(crate) band_w: f64,
    /// The value's dot.
    pub(crate) value_x: f64,
    /// Whether the value lies outside the normal range.
    pub(crate) outside: bool,
}

impl Bar {
    /// The bar of `value` against `[lo, hi]` (either order), or `None` when a number
    /// is not finite.
    pub(crate) fn new(value: f64, lo: f64, hi: f64) -> Option<Bar> {
        if !(value.is_finite() && lo.is_finite() && hi.is_finite()) {
            return None;
        }
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        let min = lo.min(value);
        let max = hi.max(value);
        let mut span = max - min;
        if span <= 0.0 {
            span = value.abs().max(1.0);
        }
        let pad = span * 0.12;
        let s = Scale {
            d0: min - pad,
            d1: max + pad,
            r0: 6.0,
            r1: BAR_W - 6.0,
        };
        let band_x = s.at(lo);
        Some(Bar {
            band_x,
            band_w: px((s.at(hi) - band_x).max(2.0)),
            value_x: s.at(value),
            outside: value < lo || value > hi,
        })
    }
}

/// Width of a risk meter.
pub(crate) const METER_W: f64 = 200.0;

/// A risk in [0, 1] as a filled bar, with the model's threshold marked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Meter {
    pub(crate) fill_w: f64,
    pub(crate) threshold_x: Option<f64>,
    pub(crate) high: bool,
}

impl Meter {
    pub(crate) fn new(risk: f64, threshold: Option<f64>) -> Meter {
        let r = if risk.is_finite() {
            risk.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Meter {
            fill_w: px(r * METER_W),
            threshold_x: threshold
                .filter(|t| t.is_finite())
                .map(|t| px(t.clamp(0.0, 1.0) * METER_W)),
            high: threshold.is_some_and(|t| risk >= t),
        }
    }
}

/// Size of the risk trend picture.
pub(crate) const TREND_W: f64 = 320.0;
pub(crate) const TREND_H: f64 = 72.0;

/// The risk over time, from points `(time ms, risk)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Trend {
    pub(crate) points: String,
    pub(crate) dots: Vec<(f64, f64)>,
    pub(crate) threshold_y: Option<f64>,
}

impl Trend {
    /// The trend of `points` (oldest first), or `None` for fewer than two.
    pub(crate) fn new(points: &[(i64, f64)], threshold: Option<f64>) -> Option<Trend> {
        if points.len() < 2 {
            return None;
        }
        let (first, last) = (points[0].0, points[points.len() - 1].0);
        let x = Scale {
            d0: first as f64,
            d1: last as f64,
            r0: 6.0,
            r1: TREND_W - 6.0,
        };
        let y = Scale {
            d0: 0.0,
            d1: 1.0,
            r0: TREND_H - 6.0,
            r1: 6.0,
        };
        let dots: Vec<(f64, f64)> = points
            .iter()
            .map(|(t, r)| (x.at(*t as f64), y.at(r.clamp(0.0, 1.0))))
            .collect();
        Some(Trend {
            points: polyline(&dots),
            dots,
            threshold_y: threshold.filter(|t| t.is_finite()).map(|t| y.at(t)),
        })
    }
}

fn polyline(points: &[(f64, f64)]) -> String {
    let mut s = String::with_capacity(points.len() * 12);
    for (i, (x, y)) in points.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x},{y}"));
    }
    s
}

/// Size and plot area of a channel chart.
pub(crate) const PANEL_W: f64 = 720.0;
pub(crate) const PANEL_H: f64 = 180.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = PANEL_W - 10.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = PANEL_H - 24.0;

/// A mark on a chart: a fault code or a ticket at a time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Mark {
    pub(crate) x: f64,
    /// Shown as the mark's tooltip (`<title>`).
    pub(crate) label: String,
    /// A ticket mark of the page's own ticket.
    pub(crate) current: bool,
}

/// A tick of an axis: position and label.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tick {
    pub(crate) at: f64,
    pub(crate) label: String,
    /// `text-anchor`: the axis' ends keep their labels inside the picture.
    pub(crate) anchor: &'static str,
}

/// One channel over the window.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) detail: String,
    /// The line, split where readings are missing for long.
    pub(crate) segments: Vec<String>,
    /// Dots on the readings when there are few.
    pub(crate) dots: Vec<(f64, f64)>,
    /// The normal range of the top feature on this channel, when it is a level: y and
    /// height.
    pub(crate) band: Option<(f64, f64)>,
    pub(crate) y_ticks: Vec<Tick>,
    pub(crate) x_ticks: Vec<Tick>,
    pub(crate) faults: Vec<Mark>,
    pub(crate) tickets: Vec<Mark>,
    /// Readings drawn.
    pub(crate) readings: usize,
}

/// What a channel chart is drawn from.
pub(crate) struct PanelInput<'a> {
    pub(crate) title: String,
    pub(crate) detail: String,
    /// `(event time ms, value)`, oldest first.
    pub(crate) series: &'a [(i64, f64)],
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) band: Option<(f64, f64)>,
    /// Fault codes and tickets: `(event time ms, label, is the page's ticket)`.
    pub(crate) faults: &'a [(i64, String)],
    pub(crate) tickets: &'a [(i64, String, bool)],
    /// Formats a value for the y axis.
    pub(crate) number: &'a dyn Fn(f64) -> String,
    /// Formats a time for the x axis.
    pub(crate) day: &'a dyn Fn(i64) -> String,
}

/// Readings at most this many, drawn as dots as well as the line.
const DOTS_UP_TO: usize = 60;

impl Panel {
    pub(crate) fn new(p: PanelInput<'_>) -> Panel {
        let x = Scale {
            d0: p.from as f64,
            d1: p.to as f64,
            r0: LEFT,
            r1: RIGHT,
        };
        let values = p.series.iter().map(|(_, v)| *v).filter(|v| v.is_finite());
        let band_values = p.band.into_iter().flat_map(|(a, b)| [a, b]);
        let (mut lo, mut hi) = values
            .chain(band_values)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if !lo.is_finite() || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if (hi - lo).abs() < f64::EPSILON {
            let pad = lo.abs().max(1.0) * 0.1;
            (lo, hi) = (lo - pad, hi + pad);
        }
        let pad = (hi - lo) * 0.08;
        let y = Scale {
            d0: lo - pad,
            d1: hi + pad,
            r0: BOTTOM,
            r1: TOP,
        };
        // Split the line where the gap between readings is far above the usual one.
        let gaps: Vec<i64> = p.series.windows(2).map(|w| w[1].0 - w[0].0).collect();
        let mut sorted = gaps.clone();
        sorted.sort_unstable();
        let typical = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
        let break_after = (typical * 4).max(domain::Timestamp::DAY_MS);
        let mut segments = Vec::new();
        let mut current: Vec<(f64, f64)> = Vec::new();
        let mut dots = Vec::new();
        for (i, (t, v)) in p.series.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            if i > 0 && gaps[i - 1] > break_after && !current.is_empty() {
                segments.push(polyline(&current));
                current.clear();
            }
            let point = (x.at(*t as f64), y.at(*v));
            current.push(point);
            if p.series.len() <= DOTS_UP_TO {
                dots.push(point);
            }
        }
        if !current.is_empty() {
            segments.push(polyline(&current));
        }
        let band = p.band.map(|(a, b)| {
            let (a, b) = (y.at(a.max(b)), y.at(a.min(b)));
            (a, px((b - a).max(1.0)))
        });
        let y_ticks = [lo, (lo + hi) / 2.0, hi]
            .into_iter()
            .map(|v| Tick {
                at: y.at(v),
                label: (p.number)(v),
                anchor: "end",
            })
            .collect();
        let n = 5;
        let x_ticks = (0..=n)
            .map(|i| {
                let t = p.from + (p.to - p.from) / n * i;
                Tick {
                    at: x.at(t as f64),
                    label: (p.day)(t),
                    anchor: match i {
                        0 => "start",
                        i if i == n => "end",
                        _ => "middle",
                    },
                }
            })
            .collect();
        let inside = |t: i64| t >= p.from && t <= p.to;
        let faults = p
            .faults
            .iter()
            .filter(|(t, _)| inside(*t))
            .map(|(t, label)| Mark {
                x: x.at(*t as f64),
                label: label.clone(),
                current: false,
            })
            .collect();
        let tickets = p
            .tickets
            .iter()
            .filter(|(t, ..)| inside(*t))
            .map(|(t, label, current)| Mark {
                x: x.at(*t as f64),
                label: label.clone(),
                current: *current,
            })
            .collect();
        Panel {
            title: p.title,
            detail: p.detail,
            segments,
            dots,
            band,
            y_ticks,
            x_ticks,
            faults,
            tickets,
            readings: p.series.len(),
        }
    }

    /// Geometry the template needs.
    pub(crate) fn left(&self) -> f64 {
        LEFT
    }
    pub(crate) fn right(&self) -> f64 {
        RIGHT
    }
    pub(crate) fn top(&self) -> f64 {
        TOP
    }
    pub(crate) fn bottom(&self) -> f64 {
        BOTTOM
    }
}

/// Where a ticket opened at wall-clock time `opened` sits on the device's event-time
/// axis, from readings `(event time, received at)` in arrival order: at the first
/// reading received at or after it (the reading whose scoring opened it, or the next).
/// A ticket opened after the last reading sits at the last one if it came within
/// `slack_ms` of it; otherwise, and before the first reading, it is off the chart.
///
/// Why: ticket times are wall-clock times, readings carry the device's clock; they
/// agree for a live fleet, but a simulated fleet (`demo --speed`) runs its clock
/// ahead, and a fleet that was offline sends old readings late.
pub(crate) fn event_time_of(opened: i64, readings: &[(i64, i64)], slack_ms: i64) -> Option<i64> {
    let first = readings.first()?;
    if opened < first.1 {
        return None;
    }
    if let Some((ts, _)) = readings.iter().find(|(_, received)| *received >= opened) {
        return Some(*ts);
    }
    let last = readings.last()?;
    (opened - last.1 <= slack_ms).then_some(last.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_puts_the_value_against_its_band() {
        let b = Bar::new(31.0, 10.0, 20.0).unwrap();
        assert!(b.outside);
        assert!(b.value_x > b.band_x + b.band_w, "{b:?}");
        assert!(b.value_x <= BAR_W);
        let inside = Bar::new(15.0, 20.0, 10.0).unwrap();
        assert!(!inside.outside);
        assert!(inside.value_x > inside.band_x && inside.value_x < inside.band_x + inside.band_w);
        let flat = Bar::new(5.0, 5.0, 5.0).unwrap();
        assert!(!flat.outside);
        assert!(flat.band_w >= 2.0);
        assert!(Bar::new(f64::NAN, 0.0, 1.0).is_none());
    }

    #[test]
    fn a_meter_marks_the_threshold() {
        let m = Meter::new(0.95, Some(0.6));
        assert_eq!(m.fill_w, 190.0);
        assert_eq!(m.threshold_x, Some(120.0));
        assert!(m.high);
        assert_eq!(Meter::new(f64::NAN, None).fill_w, 0.0);
    }

    #[test]
    fn a_trend_needs_two_points() {
        assert!(Trend::new(&[(0, 0.5)], None).is_none());
        let t = Trend::new(&[(0, 0.0), (10, 1.0)], Some(0.5)).unwrap();
        assert_eq!(t.points, format!("6,{} {},6", TREND_H - 6.0, TREND_W - 6.0));
        assert_eq!(t.threshold_y, Some(TREND_H / 2.0));
    }

    #[test]
    fn a_panel_splits_long_gaps_and_keeps_marks_in_its_window() {
        let day = domain::Timestamp::DAY_MS;
        let series: Vec<(i64, f64)> = (0..10)
            .map(|i| (i * 3_600_000, i as f64))
            .chain((0..10).map(|i| (5 * day + i * 3_600_000, 10.0 + i as f64)))
            .collect();
        let number = |v: f64| format!("{v:.0}");
        let dayf = |t: i64| format!("d{}", t / day);
        let p = Panel::new(PanelInput {
            title: "Drain time".into(),
            detail: String::new(),
            series: &series,
            from: 0,
            to: 7 * day,
            band: Some((2.0, 4.0)),
            faults: &[(day, "E21".into()), (-1, "old".into())],
            tickets: &[
                (6 * day, "T1".into(), true),
                (8 * day, "later".into(), false),
            ],
            number: &number,
            day: &dayf,
        });
        assert_eq!(p.segments.len(), 2, "{:?}", p.segments);
        assert_eq!(p.dots.len(), 20);
        assert_eq!(p.faults.len(), 1);
        assert_eq!(p.tickets.len(), 1);
        assert!(p.tickets[0].current);
        assert_eq!(p.x_ticks.len(), 6);
        assert_eq!(p.x_ticks[0].label, "d0");
        assert_eq!(p.x_ticks[0].anchor, "start");
        assert_eq!(p.x_ticks[5].anchor, "end");
        let (band_y, band_h) = p.band.unwrap();
        assert!(band_y > TOP && band_y + band_h < BOTTOM);
        // No readings: still a frame, no line.
        let empty = Panel::new(PanelInput {
            title: String::new(),
            detail: String::new(),
            series: &[],
            from: 0,
            to: day,
            band: None,
            faults: &[],
            tickets: &[],
            number: &number,
            day: &dayf,
        });
        assert!(empty.segments.is_empty());
    }

    #[test]
    fn tickets_are_placed_on_the_devices_clock() {
        // The device's clock runs 1000 s ahead of the wall clock.
        let readings = [(2_000, 1_000), (3_000, 2_000), (4_000, 3_000)];
        assert_eq!(event_time_of(1_500, &readings, 100), Some(3_000));
        assert_eq!(event_time_of(3_000, &readings, 100), Some(4_000));
        assert_eq!(event_time_of(3_050, &readings, 100), Some(4_000));
        assert_eq!(event_time_of(9_000, &readings, 100), None);
        assert_eq!(event_time_of(500, &readings, 100), None);
        assert_eq!(event_time_of(500, &[], 100), None);
    }
}
