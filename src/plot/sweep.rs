//! Sweep plots: takes a sweep's trials, gives `objective.svg`, the objective against each swept
//! value (one panel per swept path), the best trial highlighted.

use super::chart::{
    Axis, MUTED, TRAIN, VAL, draw_err, font, format_sig, frame, legend, legend_corner,
};
use super::read::{Sweep, Trial};
use crate::diagnostics::Diagnostic;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A figure as written in titles: four decimals for ordinary magnitudes.
fn value_text(v: f64) -> String {
    if v.abs() < 1000.0 && v.abs() >= 1e-3 || v == 0.0 {
        format!("{v:.4}")
    } else {
        format_sig(v)
    }
}

/// The swept paths, in the order the trials first name them.
fn paths(trials: &[Trial]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in trials {
        for (k, _) in &t.point {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
    }
    out
}

/// The best trial: the one `sweep.json` names, else the best objective by the direction.
fn best(s: &Sweep) -> Option<&Trial> {
    if let Some(n) = s.best
        && let Some(t) = s
            .trials
            .iter()
            .find(|t| t.trial == n && t.objective.is_some())
    {
        return Some(t);
    }
    s.trials
        .iter()
        .filter(|t| t.objective.is_some())
        .max_by(|a, b| {
            let (x, y) = (a.objective.unwrap_or(0.0), b.objective.unwrap_or(0.0));
            if s.maximize {
                x.total_cmp(&y)
            } else {
                y.total_cmp(&x)
            }
        })
}

/// One panel's x axis and each trial's position on it (`None` for trials without the path).
struct Panel {
    path: String,
    axis: Axis,
    /// (position with jitter, group position, trial index)
    points: Vec<(f64, f64, usize)>,
}

fn panel(path: &str, trials: &[Trial]) -> Panel {
    let values: Vec<(usize, &str)> = trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.objective.is_some())
        .filter_map(|(i, t)| {
            t.point
                .iter()
                .find(|(k, _)| k == path)
                .map(|(_, v)| (i, v.as_str()))
        })
        .collect();
    let numbers: Option<Vec<f64>> = values
        .iter()
        .map(|(_, v)| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect();
    let mut distinct: Vec<&str> = Vec::new();
    for (_, v) in &values {
        if !distinct.contains(v) {
            distinct.push(v);
        }
    }
    match numbers {
        Some(xs) if !xs.is_empty() => {
            let integers = xs.iter().all(|x| x.fract() == 0.0);
            if integers && distinct.len() <= 12 {
                let mut d: Vec<(f64, &str)> =
                    xs.iter().copied().zip(values.iter().map(|v| v.1)).collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0));
                d.dedup_by(|a, b| a.0 == b.0);
                let names: Vec<String> = d.iter().map(|p| p.1.trim().to_string()).collect();
                let points = values
                    .iter()
                    .zip(&xs)
                    .filter_map(|((i, _), x)| {
                        d.iter().position(|p| p.0 == *x).map(|g| (g as f64, *i))
                    })
                    .collect();
                categorical(path, names, points)
            } else {
                let (lo, hi) = super::chart::min_max(xs.iter().copied());
                let mut axis = if lo > 0.0 && (hi / lo > 20.0 || geometric(&xs)) {
                    Axis::log(lo, hi, 0.1, 5)
                } else {
                    Axis::linear(lo, hi, 0.1, integers)
                };
                if distinct.len() <= 8 {
                    // A grid: the ticks at the values tried.
                    axis = axis.ticks_at(&xs);
                }
                // Trials at one value are spread a little so that none hides another.
                let spread = 0.015 * (axis.hi - axis.lo);
                let placed: Vec<(f64, usize)> = values
                    .iter()
                    .zip(&xs)
                    .filter_map(|((i, _), x)| axis.place(*x).map(|p| (p, *i)))
                    .collect();
                let points = placed
                    .iter()
                    .map(|(p, i)| {
                        let same: Vec<usize> =
                            placed.iter().filter(|q| q.0 == *p).map(|q| q.1).collect();
                        let n = same.len() as f64;
                        let j = same.iter().position(|x| x == i).unwrap_or(0) as f64;
                        (p + (j - (n - 1.0) / 2.0) * spread, *p, *i)
                    })
                    .collect();
                Panel {
                    path: path.to_string(),
                    axis,
                    points,
                }
            }
        }
        _ => {
            let names: Vec<String> = distinct.iter().map(|s| s.to_string()).collect();
            let points = values
                .iter()
                .filter_map(|(i, v)| distinct.iter().position(|d| d == v).map(|g| (g as f64, *i)))
                .collect();
            categorical(path, names, points)
        }
    }
}

/// True for at least three distinct positive values spanning 5x or more that are spaced more
/// evenly by ratio than by difference (a grid such as 0.003, 0.01, 0.03).
fn geometric(xs: &[f64]) -> bool {
    let mut d: Vec<f64> = xs.iter().copied().filter(|x| *x > 0.0).collect();
    d.sort_by(f64::total_cmp);
    d.dedup();
    if d.len() < 3 {
        return false;
    }
    let (lo, hi) = (d[0], d[d.len() - 1]);
    if hi / lo < 5.0 {
        return false;
    }
    // Spread of the gaps relative to their mean: smaller is more even.
    let unevenness = |gaps: Vec<f64>| {
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        var.sqrt() / mean
    };
    let linear = unevenness(d.windows(2).map(|w| w[1] - w[0]).collect());
    let ratio = unevenness(d.windows(2).map(|w| (w[1] / w[0]).ln()).collect());
    ratio < linear
}

/// A categorical panel; points of one category are spread a little so that none hides another.
fn categorical(path: &str, names: Vec<String>, groups: Vec<(f64, usize)>) -> Panel {
    let mut points = Vec::new();
    for (g, i) in &groups {
        let same: Vec<usize> = groups.iter().filter(|p| p.0 == *g).map(|p| p.1).collect();
        let n = same.len() as f64;
        let j = same.iter().position(|x| x == i).unwrap_or(0) as f64;
        let spread = (0.4 / n).min(0.07);
        points.push((g + (j - (n - 1.0) / 2.0) * spread, *g, *i));
    }
    Panel {
        path: path.to_string(),
        axis: Axis::categorical(names),
        points,
    }
}

/// `objective.svg` for a sweep; `None` when no trial has an objective value.
pub fn render(s: &Sweep) -> Result<Option<String>, Diagnostic> {
    let scored = s.trials.iter().filter(|t| t.objective.is_some()).count();
    if scored == 0 {
        return Ok(None);
    }
    let best = best(s);
    let mut panels: Vec<Panel> = paths(&s.trials)
        .iter()
        .map(|p| panel(p, &s.trials))
        .filter(|p| !p.points.is_empty())
        .collect();
    if panels.is_empty() {
        // Nothing swept that we can show: the objective per trial.
        let names = s.trials.iter().map(|t| t.trial.to_string()).collect();
        let points = s
            .trials
            .iter()
            .enumerate()
            .filter(|(_, t)| t.objective.is_some())
            .map(|(i, _)| (i as f64, i as f64, i))
            .collect();
        panels.push(Panel {
            path: "trial".into(),
            axis: Axis::categorical(names),
            points,
        });
    }
    let objectives: Vec<f64> = s.trials.iter().filter_map(|t| t.objective).collect();
    let (lo, hi) = super::chart::min_max(objectives.iter().copied());
    let ya = Axis::linear(lo, hi, 0.1, false);

    let cols = panels.len().min(3);
    let rows = panels.len().div_ceil(cols);
    let (pw, ph) = (460u32, 380u32);
    let head = 84u32;
    let width = pw * cols as u32;
    let height = head + ph * rows as u32;
    let direction = if s.maximize { "maximize" } else { "minimize" };
    let title = format!(
        "{}: {} ({direction}), {} trial{}",
        s.name,
        s.objective,
        s.trials.len(),
        if s.trials.len() == 1 { "" } else { "s" }
    );
    let subtitle = best.map_or_else(String::new, |b| {
        let point: Vec<String> = b.point.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        format!(
            "best: trial {}, {} = {}{}",
            b.trial,
            s.objective,
            value_text(b.objective.unwrap_or(f64::NAN)),
            if point.is_empty() {
                String::new()
            } else {
                format!(" ({})", point.join(", "))
            }
        )
    });

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let err = |e| draw_err("a sweep's objective", e);
        root.fill(&WHITE).map_err(err)?;
        let centered = Pos::new(HPos::Center, VPos::Center);
        let mid = (width / 2) as i32;
        root.draw(&Text::new(
            title.clone(),
            (mid, 26),
            font(19.0).pos(centered),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            subtitle,
            (mid, 54),
            font(13.0).color(&MUTED).pos(centered),
        ))
        .map_err(err)?;
        let body = root.margin(head, 0, 0, 0);
        let areas = body.split_evenly((rows, cols));
        for (p, area) in panels.iter().zip(areas.iter()) {
            draw_panel(area, p, &ya, s, best.map(|b| b.trial))?;
        }
        root.present().map_err(err)?;
    }
    Ok(Some(svg))
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    p: &Panel,
    ya: &Axis,
    s: &Sweep,
    best: Option<usize>,
) -> Result<(), Diagnostic> {
    let err = |e| draw_err("a sweep panel", e);
    let x_desc = if p.axis.log {
        format!("{} (log scale)", p.path)
    } else {
        p.path.clone()
    };
    let mut chart = frame(area, &p.axis, ya, &x_desc, &s.objective)?;
    let y_of = |i: usize| {
        s.trials
            .get(i)
            .and_then(|t| t.objective)
            .unwrap_or(f64::NAN)
    };

    // The best objective at each distinct value, joined in axis order.
    let mut groups: Vec<(f64, f64)> = Vec::new();
    for (_, g, i) in &p.points {
        let y = y_of(*i);
        match groups.iter_mut().find(|q| q.0 == *g) {
            Some(q) => {
                if (s.maximize && y > q.1) || (!s.maximize && y < q.1) {
                    q.1 = y;
                }
            }
            None => groups.push((*g, y)),
        }
    }
    groups.sort_by(|a, b| a.0.total_cmp(&b.0));
    let trend = MUTED.mix(0.55).stroke_width(2);
    // Only where values repeat (a grid, a choice); for continuous values it would zigzag.
    if groups.len() > 1 && groups.len() < p.points.len() {
        chart
            .draw_series(LineSeries::new(groups.clone(), trend))
            .map_err(err)?
            .label("best at each value")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], trend));
    }

    let dot = TRAIN.mix(0.75).filled();
    let pts: Vec<(f64, f64)> = p.points.iter().map(|(x, _, i)| (*x, y_of(*i))).collect();
    chart
        .draw_series(pts.iter().map(|q| Circle::new(*q, 5, dot)))
        .map_err(err)?
        .label("trial")
        .legend(move |(x, y)| Circle::new((x + 11, y), 5, dot));
    let best_pt = p
        .points
        .iter()
        .find(|(_, _, i)| s.trials.get(*i).map(|t| t.trial) == best)
        .map(|(x, _, i)| (*x, y_of(*i)));
    if let (Some(q), Some(n)) = (best_pt, best) {
        chart
            .draw_series(std::iter::once(Circle::new(q, 8, VAL.filled())))
            .map_err(err)?
            .label(format!("best (trial {n})"))
            .legend(move |(x, y)| Circle::new((x + 11, y), 7, VAL.filled()));
        chart
            .draw_series(std::iter::once(Circle::new(q, 8, WHITE.stroke_width(2))))
            .map_err(err)?;
    }
    let mut placed = pts;
    placed.extend(groups);
    legend(&mut chart, legend_corner(&placed, &p.axis, ya))
}
