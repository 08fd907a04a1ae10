//! Learning curves: takes a run's epochs and summary, gives the charts to write (`loss.svg`,
//! then one `<metric>.svg` per other numeric validation figure), k-fold runs drawn per fold.

use super::chart::{TRAIN, VAL};
use super::lines::{Dot, Line, LineChart};
use super::read::{Epoch, Summary};
use plotters::style::RGBColor;
use std::collections::BTreeMap;

/// Which split a figure belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Split {
    Train,
    Val,
}

/// A figure's values per epoch, for one fold: `(epoch, value)` in epoch order.
type Curve = Vec<(f64, Option<f64>)>;

/// The curve of `split.name` in each fold (key 0 for a run without folds). Folds without
/// the figure at all are left out.
fn curves(epochs: &[Epoch], split: Split, name: &str) -> BTreeMap<usize, Curve> {
    let mut out: BTreeMap<usize, Curve> = BTreeMap::new();
    for e in epochs {
        let figs = match split {
            Split::Train => &e.train,
            Split::Val => &e.val,
        };
        if let Some(v) = figs.get(name) {
            out.entry(e.fold)
                .or_default()
                .push((e.epoch as f64, v.filter(|v| v.is_finite())));
        }
    }
    for c in out.values_mut() {
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out.retain(|_, c| c.iter().any(|p| p.1.is_some()));
    out
}

/// The mean over folds at each epoch every fold reached (the folds' non-finite values left
/// out of the mean).
fn mean_curve(folds: &BTreeMap<usize, Curve>) -> Curve {
    let reached = folds
        .values()
        .map(|c| c.last().map_or(0.0, |p| p.0))
        .fold(f64::INFINITY, f64::min);
    let mut sums: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
    for c in folds.values() {
        for (x, y) in c.iter().filter(|p| p.0 <= reached) {
            let s = sums.entry(*x as i64).or_insert((0.0, 0));
            if let Some(y) = y {
                s.0 += y;
                s.1 += 1;
            }
        }
    }
    sums.into_iter()
        .map(|(x, (s, n))| (x as f64, (n > 0).then(|| s / n as f64)))
        .collect()
}

/// The value of a curve at epoch `x`.
fn at(curve: &Curve, x: f64) -> Option<f64> {
    curve.iter().find(|p| p.0 == x).and_then(|p| p.1)
}

/// Everything the charts share about a run.
struct Run<'a> {
    name: String,
    failed: bool,
    folds: usize,
    summary: Option<&'a Summary>,
    /// What the x axis counts: `epoch`, or `round` (a tree model).
    unit: &'a str,
}

impl Run<'_> {
    fn title(&self, what: &str) -> String {
        format!("{}: {what}", self.name)
    }

    /// What the subtitle says about the run: epochs, folds, the best epoch, failure.
    fn subtitle(&self, epochs: &[Epoch]) -> String {
        let n = epochs.iter().map(|e| e.epoch).max().unwrap_or(0);
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let mut parts = Vec::new();
        if self.folds > 1 {
            parts.push(format!(
                "{}, {} each at most",
                plural(self.folds, "fold"),
                plural(n, self.unit)
            ));
        } else {
            parts.push(plural(n, self.unit));
        }
        if let Some(b) = self.best_epoch(epochs) {
            parts.push(format!("best {} {b}", self.unit));
        }
        if self.failed {
            parts.push("the run failed".into());
        }
        parts.join(", ")
    }

    /// The best epoch of a run without folds, when training went on past it.
    fn best_epoch(&self, epochs: &[Epoch]) -> Option<usize> {
        if self.folds > 1 {
            return None;
        }
        let s = self.summary?;
        let best = s.best_epoch.filter(|b| *b >= 1)?;
        let ran = s
            .epochs_run
            .or_else(|| epochs.iter().map(|e| e.epoch).max())?;
        (best < ran).then_some(best)
    }

    /// Each fold's best epoch, when training went on past it (fold numbers from 1).
    fn fold_bests(&self) -> Vec<(usize, usize)> {
        let Some(s) = self.summary else {
            return Vec::new();
        };
        s.folds
            .iter()
            .enumerate()
            .filter_map(|(i, (best, ran))| match (best, ran) {
                (Some(b), Some(r)) if *b >= 1 && b < r => Some((i + 1, *b)),
                _ => None,
            })
            .collect()
    }
}

/// Lines for one figure: a single line, or a thin line per fold and a bold mean.
fn lines(
    folds: &BTreeMap<usize, Curve>,
    color: plotters::style::RGBColor,
    what: &str,
) -> Vec<Line> {
    if folds.len() <= 1 {
        return folds
            .values()
            .map(|c| Line {
                label: Some(what.to_string()),
                points: c.clone(),
                color,
                width: 2,
                alpha: 1.0,
            })
            .collect();
    }
    let mut out: Vec<Line> = folds
        .values()
        .enumerate()
        .map(|(i, c)| Line {
            label: (i == 0).then(|| format!("{what}, each fold")),
            points: c.clone(),
            color,
            width: 1,
            alpha: 0.38,
        })
        .collect();
    out.push(Line {
        label: Some(format!("{what}, mean of {} folds", folds.len())),
        points: mean_curve(folds),
        color,
        width: 3,
        alpha: 1.0,
    });
    out
}

/// Markers for the best epoch: a dashed vertical line and a dot on the validation curve for
/// a plain run; a dot on each fold's validation curve for k-fold.
fn mark_best(chart: &mut LineChart, run: &Run<'_>, epochs: &[Epoch], val: &BTreeMap<usize, Curve>) {
    if let Some(b) = run.best_epoch(epochs) {
        let b = b as f64;
        chart.vline = Some((b, format!("best {} {b}", run.unit)));
        if let Some(y) = val.values().next().and_then(|c| at(c, b)) {
            chart.dots.push(Dot {
                x: b,
                y,
                color: VAL,
                label: None,
            });
        }
    }
    if val.len() > 1 {
        let mut first = true;
        for (fold, b) in run.fold_bests() {
            let b = b as f64;
            if let Some(y) = val.get(&fold).and_then(|c| at(c, b)) {
                chart.dots.push(Dot {
                    x: b,
                    y,
                    color: VAL,
                    label: first.then(|| format!("best {} of a fold", run.unit)),
                });
                first = false;
            }
        }
    }
}

/// The charts of a run: `(file name, chart)`, only those with something to draw.
pub fn charts(
    summary: Option<&Summary>,
    epochs: &[Epoch],
    fallback_name: &str,
) -> Vec<(String, LineChart)> {
    let mut folds: Vec<usize> = epochs.iter().map(|e| e.fold).collect();
    folds.sort_unstable();
    folds.dedup();
    let run = Run {
        name: summary
            .and_then(|s| s.train.clone())
            .unwrap_or_else(|| fallback_name.to_string()),
        failed: summary.is_some_and(|s| s.status.as_deref() == Some("failed")),
        folds: folds.len(),
        summary,
        unit: summary
            .map(|s| s.unit.as_str())
            .filter(|u| !u.is_empty())
            .unwrap_or("epoch"),
    };
    let mut out = Vec::new();

    // A train with objectives reports each objective's loss (`train.generate`) instead of
    // one `loss`: one chart with a training and a validation line per objective.
    let mut objectives: Vec<&String> = epochs.iter().flat_map(|e| e.train.keys()).collect();
    objectives.sort();
    objectives.dedup();
    if !objectives.is_empty() && !objectives.iter().any(|k| k.as_str() == "loss") {
        let mut chart = LineChart {
            title: run.title("objectives"),
            subtitle: run.subtitle(epochs),
            x_desc: run.unit.into(),
            y_desc: "loss".into(),
            lines: Vec::new(),
            dots: Vec::new(),
            vline: None,
            allow_log: true,
        };
        for (i, name) in objectives.iter().enumerate() {
            let (t, v) = OBJECTIVE_COLORS[i % OBJECTIVE_COLORS.len()];
            let train = curves(epochs, Split::Train, name);
            let val = curves(epochs, Split::Val, name);
            chart
                .lines
                .extend(lines(&train, t, &format!("train {name}")));
            chart
                .lines
                .extend(lines(&val, v, &format!("validation {name}")));
        }
        if let Some(b) = run.best_epoch(epochs) {
            chart.vline = Some((b as f64, format!("best {} {b}", run.unit)));
        }
        if chart.has_data() {
            out.push(("loss.svg".to_string(), chart));
        }
        return out;
    }

    let train = curves(epochs, Split::Train, "loss");
    let val = curves(epochs, Split::Val, "loss");
    let mut loss = LineChart {
        title: run.title("loss"),
        subtitle: run.subtitle(epochs),
        x_desc: run.unit.into(),
        y_desc: "loss".into(),
        lines: lines(&train, TRAIN, "train"),
        dots: Vec::new(),
        vline: None,
        allow_log: true,
    };
    loss.lines.extend(lines(&val, VAL, "validation"));
    mark_best(&mut loss, &run, epochs, &val);
    if loss.has_data() {
        out.push(("loss.svg".to_string(), loss));
    }

    let mut names: Vec<&String> = epochs
        .iter()
        .flat_map(|e| e.val.keys())
        .filter(|k| k.as_str() != "loss")
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let Some(file) = file_stem(name) else {
            continue;
        };
        let val = curves(epochs, Split::Val, name);
        let mut chart = LineChart {
            title: run.title(&format!("validation {}", display_name(name))),
            subtitle: run.subtitle(epochs),
            x_desc: run.unit.into(),
            y_desc: display_name(name),
            lines: lines(&val, VAL, "validation"),
            dots: Vec::new(),
            vline: None,
            allow_log: false,
        };
        mark_best(&mut chart, &run, epochs, &val);
        if chart.has_data() {
            out.push((format!("{file}.svg"), chart));
        }
    }
    out
}

/// Line colours of objectives: (training, validation), a darker and a lighter shade.
const OBJECTIVE_COLORS: [(RGBColor, RGBColor); 4] = [
    (TRAIN, RGBColor(120, 175, 220)),
    (VAL, RGBColor(245, 170, 110)),
    (RGBColor(44, 140, 60), RGBColor(140, 205, 140)),
    (RGBColor(150, 60, 160), RGBColor(205, 150, 215)),
];

/// A figure's name as a file stem, if it is a plain one (no path tricks).
fn file_stem(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then_some(name)
}

/// How a figure is named on a chart: `macro_f1` as `macro F1`, `r2` as `R²`.
fn display_name(name: &str) -> String {
    match name {
        "macro_f1" => "macro F1".into(),
        "r2" => "R²".into(),
        "rmse" => "RMSE".into(),
        "mae" => "MAE".into(),
        other => other.replace('_', " "),
    }
}
