//! Line charts over epochs: takes lines of `(epoch, value)` points, markers and captions, gives
//! an SVG (log y for values spanning decades; early outliers cut off so the rest is readable).

use super::chart::{
    Axis, Chart, MARK, MUTED, draw_err, font, format_sig, frame, legend, legend_corner, min_max,
};
use crate::diagnostics::Diagnostic;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line of a chart: points in data units (`None` or non-finite values break the line).
#[derive(Clone, Debug)]
pub struct Line {
    pub label: Option<String>,
    pub points: Vec<(f64, Option<f64>)>,
    pub color: RGBColor,
    pub width: u32,
    pub alpha: f64,
}

/// A dot on a line (the best epoch), optionally named in the legend.
#[derive(Clone, Debug)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub color: RGBColor,
    pub label: Option<String>,
}

/// A line chart over whole-number x (epochs).
#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub subtitle: String,
    pub x_desc: String,
    pub y_desc: String,
    pub lines: Vec<Line>,
    pub dots: Vec<Dot>,
    /// A vertical dashed marker at x, named in the legend.
    pub vline: Option<(f64, String)>,
    /// Plot y on a log axis when every value is positive and they span more than 20x.
    pub allow_log: bool,
}

/// Width and height of a line chart.
const SIZE: (u32, u32) = (860, 540);
/// Room for the title and subtitle.
const HEAD: u32 = 64;

impl LineChart {
    /// Every finite point of the lines.
    fn values(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.lines.iter().flat_map(|l| {
            l.points.iter().filter_map(|(x, y)| {
                y.filter(|y| y.is_finite() && x.is_finite())
                    .map(|y| (*x, y))
            })
        })
    }

    /// True when there is at least one point to draw.
    pub fn has_data(&self) -> bool {
        self.values().next().is_some()
    }

    /// Whether the y axis is logarithmic.
    pub fn log_y(&self) -> bool {
        let (lo, hi) = min_max(self.values().map(|p| p.1));
        self.allow_log && lo > 0.0 && hi / lo > 20.0
    }

    /// The y range of a linear axis, and a note when early values fall outside it: when the
    /// first tenth of the epochs would squeeze the rest into under a sixth of the height,
    /// the range is that of the later epochs (with headroom).
    fn linear_y(&self) -> (f64, f64, Option<String>) {
        let (lo, hi) = min_max(self.values().map(|p| p.1));
        let (x_lo, x_hi) = min_max(self.values().map(|p| p.0));
        if x_hi - x_lo < 9.0 {
            return (lo, hi, None);
        }
        let cut = x_lo + 0.1 * (x_hi - x_lo);
        let (s_lo, s_hi) = min_max(self.values().filter(|p| p.0 > cut).map(|p| p.1));
        let span = (s_hi - s_lo).max(1e-12 * s_hi.abs().max(1.0));
        if hi - lo <= 6.0 * span {
            return (lo, hi, None);
        }
        let (c_lo, c_hi) = (lo.max(s_lo - span), hi.min(s_hi + span));
        let mut notes = Vec::new();
        let extreme = |above: bool| {
            self.values()
                .filter(|p| if above { p.1 > c_hi } else { p.1 < c_lo })
                .max_by(|a, b| {
                    let (a, b) = if above { (a.1, b.1) } else { (b.1, a.1) };
                    a.total_cmp(&b)
                })
        };
        if let Some((x, y)) = extreme(true) {
            notes.push(format!("{} at epoch {x} is above the chart", format_sig(y)));
        }
        if let Some((x, y)) = extreme(false) {
            notes.push(format!("{} at epoch {x} is below the chart", format_sig(y)));
        }
        (c_lo, c_hi, (!notes.is_empty()).then(|| notes.join("; ")))
    }

    /// The chart as an SVG document.
    pub fn render(&self) -> Result<String, Diagnostic> {
        let err = |e| draw_err(&self.title, e);
        let (x_lo, x_hi) = min_max(self.values().map(|p| p.0));
        let x_lo = x_lo.min(self.vline.as_ref().map_or(x_lo, |v| v.0));
        let x_hi = x_hi.max(self.vline.as_ref().map_or(x_hi, |v| v.0));
        let xa = Axis::linear(x_lo, x_hi, 0.0, true);
        let (ya, note) = if self.log_y() {
            let (lo, hi) = min_max(self.values().map(|p| p.1));
            (Axis::log(lo, hi, 0.04, 10), None)
        } else {
            let (lo, hi, note) = self.linear_y();
            (Axis::linear(lo, hi, 0.06, false), note)
        };
        let y_desc = if ya.log {
            format!("{} (log scale)", self.y_desc)
        } else {
            self.y_desc.clone()
        };
        let subtitle = match (&note, self.subtitle.is_empty()) {
            (Some(n), true) => n.clone(),
            (Some(n), false) => format!("{}; {n}", self.subtitle),
            (None, _) => self.subtitle.clone(),
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let centered = Pos::new(HPos::Center, VPos::Center);
            let mid = (SIZE.0 / 2) as i32;
            root.draw(&Text::new(
                self.title.clone(),
                (mid, 22),
                font(19.0).pos(centered),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                subtitle,
                (mid, 48),
                font(13.0).color(&MUTED).pos(centered),
            ))
            .map_err(err)?;
            let area = root.margin(HEAD, 0, 0, 0);
            let mut chart = frame(&area, &xa, &ya, &self.x_desc, &y_desc)?;
            let mut placed = Vec::new();
            if let Some((x, label)) = &self.vline {
                let style = MARK.stroke_width(1);
                let pts = vec![(*x, ya.lo), (*x, ya.hi)];
                chart
                    .draw_series(DashedLineSeries::new(pts, 6, 4, style))
                    .map_err(err)?
                    .label(label.clone())
                    .legend(move |(lx, ly)| {
                        DashedPathElement::new(vec![(lx, ly), (lx + 22, ly)], 5, 3, style)
                    });
            }
            for line in &self.lines {
                draw_line(&mut chart, line, &ya, &mut placed).map_err(err)?;
            }
            for dot in &self.dots {
                let Some(y) = ya.place(dot.y).filter(|y| (ya.lo..=ya.hi).contains(y)) else {
                    continue;
                };
                let (x, c) = (dot.x, dot.color);
                placed.push((x, y));
                chart
                    .draw_series(std::iter::once(Circle::new((x, y), 6, WHITE.filled())))
                    .map_err(err)?;
                let ann = chart
                    .draw_series(std::iter::once(Circle::new((x, y), 5, c.filled())))
                    .map_err(err)?;
                if let Some(l) = &dot.label {
                    ann.label(l.clone())
                        .legend(move |(lx, ly)| Circle::new((lx + 11, ly), 5, c.filled()));
                }
            }
            let labelled = self.lines.iter().any(|l| l.label.is_some())
                || self.vline.is_some()
                || self.dots.iter().any(|d| d.label.is_some());
            if labelled {
                legend(&mut chart, legend_corner(&placed, &xa, &ya))?;
            }
            root.present().map_err(err)?;
        }
        Ok(svg)
    }
}

/// The parts of a polyline inside `lo..=hi` in y, cut where it crosses the bounds.
pub fn clip(points: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let inside = |p: &(f64, f64)| p.1 >= lo && p.1 <= hi;
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    if points.len() == 1 {
        if inside(&points[0]) {
            out.push(points.to_vec());
        }
        return out;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        // The part of the segment with y in [lo, hi], as t in [t0, t1].
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let dy = y1 - y0;
        if dy == 0.0 {
            if !(lo..=hi).contains(&y0) {
                continue;
            }
        } else {
            let (a, b) = ((lo - y0) / dy, (hi - y0) / dy);
            t0 = t0.max(a.min(b));
            t1 = t1.min(a.max(b));
            if t0 > t1 {
                continue;
            }
        }
        let at = |t: f64| (x0 + (x1 - x0) * t, (y0 + dy * t).clamp(lo, hi));
        let (p, q) = (at(t0), at(t1));
        match out.last_mut() {
            Some(run) if t0 == 0.0 && run.last() == Some(&p) => run.push(q),
            _ => out.push(vec![p, q]),
        }
    }
    out
}

/// Draws one line as runs of consecutive finite points within the y axis (a lone point
/// becomes a dot); small series get a marker at every point. Records the plotted points.
fn draw_line(
    chart: &mut Chart<'_, '_>,
    line: &Line,
    ya: &Axis,
    placed: &mut Vec<(f64, f64)>,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let mut finite: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in &line.points {
        match y.and_then(|y| ya.place(y)).filter(|_| x.is_finite()) {
            Some(y) => {
                if let Some(run) = finite.last_mut() {
                    run.push((*x, y));
                }
            }
            None => finite.push(Vec::new()),
        }
    }
    let color = line.color.mix(line.alpha);
    let style = color.stroke_width(line.width);
    let inside = |p: &&(f64, f64)| p.1 >= ya.lo && p.1 <= ya.hi;
    let total: usize = finite.iter().map(Vec::len).sum();
    let markers = total <= 12;
    let mut drawn = false;
    for run in finite.iter().filter(|r| !r.is_empty()) {
        if markers || run.len() == 1 {
            let r = line.width + 2;
            let dots = run
                .iter()
                .filter(inside)
                .map(|p| Circle::new(*p, r, color.filled()));
            chart.draw_series(dots)?;
        }
        for piece in clip(run, ya.lo, ya.hi).into_iter().filter(|p| p.len() > 1) {
            chart.draw_series(LineSeries::new(piece, style))?;
        }
        placed.extend(run.iter().filter(inside).copied());
        drawn = true;
    }
    // The legend entry, on an empty series of its own.
    if let (true, Some(l)) = (drawn, &line.label) {
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
            .label(l.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], style.stroke_width(3))
            });
    }
    Ok(())
}
