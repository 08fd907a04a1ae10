//! Shared drawing for the plots: takes axes (linear, logarithmic or categorical) and lines of
//! points, gives SVG text (the palette, tick choice and number formatting live here too).

use crate::diagnostics::Diagnostic;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

/// The font family of every text (SVG names the family; the viewer picks the face).
pub const FONT: &str = "sans-serif";
/// Text colour.
pub const INK: RGBColor = RGBColor(38, 38, 38);
/// Secondary text (tick labels, notes).
pub const MUTED: RGBColor = RGBColor(96, 96, 96);
/// Gridlines.
pub const GRID: RGBColor = RGBColor(226, 226, 226);
/// Minor gridlines (between the decades of a log axis).
pub const GRID_MINOR: RGBColor = RGBColor(242, 242, 242);
/// Axis lines and tick marks.
pub const AXIS: RGBColor = RGBColor(150, 150, 150);
/// Training figures.
pub const TRAIN: RGBColor = RGBColor(31, 119, 180);
/// Validation figures.
pub const VAL: RGBColor = RGBColor(230, 97, 0);
/// Markers (the best epoch).
pub const MARK: RGBColor = RGBColor(90, 90, 90);

/// The coordinate of both axes of every chart: plain `f64` (logarithmic axes plot `log10`),
/// with the ticks chosen here rather than by plotters.
#[derive(Clone, Debug)]
pub struct Coord {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    minor: Vec<f64>,
}

impl Ranged for Coord {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let t = if span > 0.0 {
            (value - self.lo) / span
        } else {
            0.5
        };
        let px = f64::from(limit.0) + t * f64::from(limit.1 - limit.0);
        // Far-off values (never drawn by us) stay within i32.
        px.clamp(-1e6, 1e6).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}
/// A chart drawn into an SVG string.
pub type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Coord, Coord>>;

/// A plotting error as a diagnostic: plotters failing on an SVG string is a bug of ours.
pub fn draw_err(what: &str, e: impl std::fmt::Debug) -> Diagnostic {
    Diagnostic::internal(format!("drawing {what} failed: {e:?}"))
}

/// One axis: its range in plotted units, major and minor ticks, and how ticks are labelled.
#[derive(Clone, Debug)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    pub minor: Vec<f64>,
    pub log: bool,
    /// Category names: the axis plots the index `0..n`.
    pub categories: Option<Vec<String>>,
    /// Decimals of linear tick labels; `None`: each label as short as its value allows.
    decimals: Option<usize>,
}

impl Axis {
    /// A linear axis covering `lo..=hi`, padded by `pad` (a fraction of the span) on each side;
    /// `integer` keeps ticks on whole numbers (epochs, counts).
    pub fn linear(lo: f64, hi: f64, pad: f64, integer: bool) -> Axis {
        // Bounded so that spans and padding stay finite.
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
            (lo.clamp(-1e300, 1e300), hi.clamp(-1e300, 1e300))
        } else {
            (0.0, 1.0)
        };
        if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
            let d = if integer {
                0.5
            } else if lo == 0.0 {
                1.0
            } else {
                lo.abs() * 0.1
            };
            lo -= d;
            hi += d;
        } else {
            let p = (hi - lo) * pad;
            lo -= p;
            hi += p;
        }
        let (ticks, step) = nice_ticks(lo, hi, 6, integer);
        Axis {
            lo,
            hi,
            ticks,
            minor: Vec::new(),
            log: false,
            categories: None,
            decimals: Some(decimals_for(step)),
        }
    }

    /// A base-10 logarithmic axis covering `lo..=hi` (both > 0), padded by `pad` (a fraction
    /// of the span in log units) on each side, with at most about `max_ticks` labels.
    pub fn log(lo: f64, hi: f64, pad: f64, max_ticks: usize) -> Axis {
        let (a, b) = (lo.log10(), hi.log10());
        if !(a.is_finite() && b.is_finite() && a < b) {
            return Axis::linear(lo, hi, pad, false);
        }
        let pad = (b - a) * pad;
        let (a, b) = (a - pad, b + pad);
        let (first, last) = (a.floor() as i32, b.ceil() as i32);
        // Every 1..9 x 10^d inside the range, as (decade, multiplier, position).
        let all: Vec<(i32, u8, f64)> = (first..=last)
            .flat_map(|d| (1..10u8).map(move |m| (d, m, (f64::from(m) * 10f64.powi(d)).log10())))
            .filter(|(_, _, v)| *v >= a - 1e-9 && *v <= b + 1e-9)
            .collect();
        let choices: [&[u8]; 3] = [&[1, 2, 5], &[1, 3], &[1]];
        let mut chosen: Option<&[u8]> = None;
        for c in choices {
            if all.iter().filter(|(_, m, _)| c.contains(m)).count() <= max_ticks.max(2) {
                chosen = Some(c);
                break;
            }
        }
        type Ticks<'t> = Vec<&'t (i32, u8, f64)>;
        let (ticks, minor): (Ticks<'_>, Ticks<'_>) = match chosen {
            Some(c) => all.iter().partition(|(_, m, _)| c.contains(m)),
            None => {
                // Too many decades: every k-th one.
                let decades = all.iter().filter(|(_, m, _)| *m == 1).count();
                let k = decades.div_ceil(max_ticks.max(2)).max(1) as i32;
                all.iter()
                    .filter(|(_, m, _)| *m == 1)
                    .partition(|(d, _, _)| d.rem_euclid(k) == 0)
            }
        };
        Axis {
            lo: a,
            hi: b,
            ticks: ticks.iter().map(|t| t.2).collect(),
            minor: minor.iter().map(|t| t.2).collect(),
            log: true,
            categories: None,
            decimals: None,
        }
    }

    /// A categorical axis: one slot per name, plotted at `0..n`.
    pub fn categorical(names: Vec<String>) -> Axis {
        let n = names.len().max(1) as f64;
        Axis {
            lo: -0.5,
            hi: n - 0.5,
            ticks: (0..names.len()).map(|i| i as f64).collect(),
            minor: Vec::new(),
            log: false,
            categories: Some(names),
            decimals: None,
        }
    }

    /// The same axis with its ticks at `values` instead (those inside the range).
    pub fn ticks_at(mut self, values: &[f64]) -> Axis {
        let ticks: Vec<f64> = values
            .iter()
            .filter_map(|v| self.place(*v))
            .filter(|t| (self.lo..=self.hi).contains(t))
            .collect();
        if !ticks.is_empty() {
            self.minor
                .retain(|m| !ticks.iter().any(|t| (t - m).abs() < 1e-9));
            self.ticks = ticks;
            self.decimals = None;
        }
        self
    }

    /// Where a value is plotted; `None` for values the axis cannot show (non-finite, or not
    /// positive on a log axis).
    pub fn place(&self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        if self.log {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    }

    /// The text of the tick at plotted position `t`.
    pub fn label(&self, t: f64) -> String {
        if let Some(names) = &self.categories {
            let i = t.round();
            return if i >= 0.0 && (i as usize) < names.len() && (t - i).abs() < 1e-6 {
                names[i as usize].clone()
            } else {
                String::new()
            };
        }
        match (self.log, self.decimals) {
            (true, _) if self.hi > 6.0 || self.lo < -4.5 => format_exp(10f64.powf(t)),
            (true, _) => format_sig(10f64.powf(t)),
            (false, Some(d)) => format_fixed(t, d),
            (false, None) => format_sig(t),
        }
    }

    pub fn coord(&self) -> Coord {
        Coord {
            lo: self.lo,
            hi: self.hi,
            ticks: self.ticks.clone(),
            minor: self.minor.clone(),
        }
    }
}

/// Evenly spaced ticks at 1, 2, 2.5 or 5 times a power of ten, about `target` of them, inside
/// `lo..=hi`; and their step.
pub fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (vec![lo], 1.0);
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * mag);
    if integer {
        step = step.max(1.0).round();
    }
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last)
        .take(100)
        .map(|i| {
            let v = i as f64 * step;
            // No "-0".
            if v.abs() < step * 1e-9 { 0.0 } else { v }
        })
        .collect();
    (ticks, step)
}

/// Decimals needed to write multiples of `step` exactly (at most 8).
fn decimals_for(step: f64) -> usize {
    (0..=8)
        .find(|d| {
            let s = step * 10f64.powi(*d as i32);
            (s - s.round()).abs() < 1e-6 * s.abs().max(1.0)
        })
        .unwrap_or(8)
}

/// `v` with `decimals` digits after the point (scientific for very large magnitudes).
pub fn format_fixed(v: f64, decimals: usize) -> String {
    if v.abs() >= 1e7 {
        return format_sig(v);
    }
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// `v` with about three significant digits, no trailing zeros: 0.003, 12.5, 2e-5, 3e7.
pub fn format_sig(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-4..1e7).contains(&a) {
        let s = format!("{v:.2e}");
        // 2.00e-5 -> 2e-5
        return match s.split_once('e') {
            Some((m, e)) => {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{e}")
            }
            None => s,
        };
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `v` as `2e-5` or `1e13` (one significant digit: for the ticks of a log axis).
pub fn format_exp(v: f64) -> String {
    let s = format!("{v:.0e}");
    match s.strip_suffix("e0") {
        Some(m) => m.to_string(),
        None => s,
    }
}

/// The font at `px` pixels (plotters writes `font-size` as its size divided by 1.24).
pub fn font(px: f64) -> TextStyle<'static> {
    (FONT, px * 1.24).into_font().color(&INK)
}

/// Sets up a chart with our axes, gridlines and labels on `area`.
pub fn frame<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    x: &Axis,
    y: &Axis,
    x_desc: &str,
    y_desc: &str,
) -> Result<Chart<'a, 'b>, Diagnostic> {
    let y_label_width = y
        .ticks
        .iter()
        .map(|t| y.label(*t).chars().count())
        .max()
        .unwrap_or(1);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_top(12)
        .margin_right(24)
        .margin_left(10)
        .margin_bottom(8)
        .x_label_area_size(52)
        .y_label_area_size(34 + (y_label_width as f64 * 7.4) as u32);
    let mut chart = builder
        .build_cartesian_2d(x.coord(), y.coord())
        .map_err(|e| draw_err("a chart frame", e))?;
    let fx = |v: &f64| x.label(*v);
    let fy = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(GRID_MINOR)
        .axis_style(AXIS)
        .set_all_tick_mark_size(4)
        .label_style(font(13.0).color(&MUTED))
        .axis_desc_style(font(14.5))
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| draw_err("a chart frame", e))?;
    Ok(chart)
}

/// Where a legend covers the fewest of `points` (in plotted units), preferring the upper
/// right.
pub fn legend_corner(points: &[(f64, f64)], x: &Axis, y: &Axis) -> SeriesLabelPosition {
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let w = (x.hi - x.lo).max(f64::MIN_POSITIVE);
    let h = (y.hi - y.lo).max(f64::MIN_POSITIVE);
    let mut best = (usize::MAX, SeriesLabelPosition::UpperRight);
    for (pos, right, upper) in corners {
        let n = points
            .iter()
            .filter(|(px, py)| {
                let u = (px - x.lo) / w;
                let v = (py - y.lo) / h;
                let in_x = if right { u >= 0.55 } else { u <= 0.45 };
                let in_y = if upper { v >= 0.62 } else { v <= 0.38 };
                in_x && in_y
            })
            .count();
        if n < best.0 {
            best = (n, pos);
        }
    }
    best.1
}

/// Draws the legend of the series that were given labels.
pub fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    pos: SeriesLabelPosition,
) -> Result<(), Diagnostic> {
    chart
        .configure_series_labels()
        .position(pos)
        .margin(12)
        .legend_area_size(28)
        .background_style(WHITE.mix(0.88))
        .border_style(GRID)
        .label_font(font(13.0))
        .draw()
        .map_err(|e| draw_err("a legend", e))
}

/// The smallest and largest of `values` ((0, 1) when there are none).
pub fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}
