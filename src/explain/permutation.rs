//! Permutation importance: takes a reopened run, the rows to explain and the options, gives
//! each raw column's loss of score when that column is shuffled across the rows (the train's
//! first metric; mean and standard deviation over `--repeats` shuffles) as a table,
//! `importance.json` and `importance.svg`.
//!
//! Shuffling a raw column before preprocessing moves its whole block of model-input values
//! (a one-hot block, an image's pixels) from one row to another, since every feature is
//! encoded from its own raw value alone; so the rows are preprocessed once and the blocks are
//! permuted. Shuffle `k` of column `c` is the stream `explain/permutation/<c>/<k>` under the
//! run's seed, and a row's prediction does not depend on its batch or the thread count, so the
//! numbers are the same on every run.

use super::{Explained, Options, fail, higher_is_better, load_rows, raw_columns, score_metric};
use crate::check::hir::Metric;
use crate::diagnostics::Diagnostic;
use crate::predict::{Failed, Model, Reopened};
use crate::rng::Rng;
use crate::train::metrics;
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// One raw column's importance.
#[derive(Clone, Debug, Serialize)]
pub struct Importance {
    pub column: String,
    /// Mean over the shuffles of the score lost (positive: the model needs the column).
    pub mean: f64,
    /// Sample standard deviation of the losses (0 for one shuffle).
    pub std: f64,
    /// The score lost by each shuffle, in order.
    pub drops: Vec<f64>,
    /// A tree model's split-gain importance: the column's share of the gain of every split
    /// in the ensemble (a one-hot block's values together).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_gain: Option<f64>,
}

/// `importance.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub format: u32,
    pub train: String,
    pub method: &'static str,
    /// `the test split` or the INPUT file.
    pub rows_from: String,
    pub rows: usize,
    pub metric: String,
    pub higher_is_better: bool,
    /// The metric on the rows as they are.
    pub score: f64,
    pub repeats: usize,
    pub seed: u64,
    /// Most important first (input order among equals).
    pub columns: Vec<Importance>,
}

/// The metric of the model outputs `out` (`k` values a row) against `targets`; NaN when it
/// cannot be computed.
pub fn score(out: &[f32], k: usize, targets: &[f32], metric: Metric, classifier: bool) -> f64 {
    let figures = if classifier {
        let labels: Vec<u32> = targets.iter().map(|t| *t as u32).collect();
        metrics::classification(out, k, &labels, &[metric])
    } else {
        metrics::regression(out, targets, &[metric])
    };
    figures
        .get(metric.name())
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    let std = if v.len() > 1 {
        (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

pub fn run(r: &Reopened, opts: &Options, out: &Path) -> Result<Explained, Failed> {
    let (_, plan, d) = r.plans()?;
    let rows = load_rows(r, plan, d, opts.input.as_deref())?;
    let pre = r.run.preprocessor().map_err(fail)?;
    // A tree model's batch is sized by its paths through every tree (`check::trees`).
    let batch = match plan.trees {
        Some(_) => plan.batch,
        None => plan.batch.max(256),
    };
    let mut model = Model::from_reopened(r, opts.backend, Some(batch))?;
    let x = rows.features(&pre).map_err(fail)?;
    let targets = rows.targets();
    let n = rows.rows.len();
    let width = pre.width().max(1);
    let k = model.info.out_len;
    let classifier = d.target.kind.classes().is_some();
    let metric = score_metric(plan, d);
    let higher = higher_is_better(metric);
    let base = score(
        &model.predict(&x).map_err(fail)?,
        k,
        &targets,
        metric,
        classifier,
    );
    if !base.is_finite() {
        return Err(fail(Diagnostic::error(
            "mlx::explain::input",
            format!(
                "the model's {} on the {} cannot be computed (it is not a finite number)",
                metric.name(),
                rows.origin
            ),
        )));
    }
    let repeats = opts.repeats.max(1);
    // A tree model's split gains per model-input value, kept with its trees.
    let gains: Option<Vec<f32>> = match plan.trees {
        Some(_) => r
            .run
            .weights()
            .map_err(fail)?
            .into_iter()
            .find(|t| t.name == crate::train::ensemble::GAIN && t.data.len() == width)
            .map(|t| t.data),
        None => None,
    };
    let total_gain: f64 = gains
        .as_ref()
        .map_or(0.0, |g| g.iter().map(|v| f64::from(*v)).sum());
    let mut columns = Vec::new();
    let mut xp = x.clone();
    for c in raw_columns(&pre) {
        let mut drops = Vec::with_capacity(repeats);
        for rep in 0..repeats {
            let mut perm: Vec<usize> = (0..n).collect();
            Rng::new(plan.seed, &format!("explain/permutation/{}/{rep}", c.name))
                .shuffle(&mut perm);
            for (i, &j) in perm.iter().enumerate() {
                let (to, from) = (i * width + c.offset, j * width + c.offset);
                xp[to..to + c.width].copy_from_slice(&x[from..from + c.width]);
            }
            let s = score(
                &model.predict(&xp).map_err(fail)?,
                k,
                &targets,
                metric,
                classifier,
            );
            drops.push(if higher { base - s } else { s - base });
        }
        // Put the column back for the next one.
        for i in 0..n {
            let at = i * width + c.offset;
            xp[at..at + c.width].copy_from_slice(&x[at..at + c.width]);
        }
        let (mean, std) = mean_std(&drops);
        let split_gain = gains.as_ref().map(|g| {
            let own: f64 = g[c.offset..c.offset + c.width]
                .iter()
                .map(|v| f64::from(*v))
                .sum();
            if total_gain > 0.0 {
                own / total_gain
            } else {
                0.0
            }
        });
        columns.push(Importance {
            column: c.name,
            mean,
            std,
            drops,
            split_gain,
        });
    }
    columns.sort_by(|a, b| {
        b.mean
            .partial_cmp(&a.mean)
            .unwrap_or_else(|| a.mean.is_nan().cmp(&b.mean.is_nan()))
    });
    let doc = Document {
        format: crate::rundir::FORMAT,
        train: plan.name.clone(),
        method: "permutation",
        rows_from: rows.origin.clone(),
        rows: n,
        metric: metric.name().to_string(),
        higher_is_better: higher,
        score: base,
        repeats,
        seed: plan.seed,
        columns,
    };
    let json = serde_json::to_string_pretty(&doc)
        .map_err(|e| fail(Diagnostic::internal(format!("importance.json: {e}"))))?;
    let mut files = vec![super::write(
        out,
        "importance.json",
        format!("{json}\n").as_bytes(),
    )?];
    let svg = super::draw::importance_svg(&doc).map_err(fail)?;
    files.push(super::write(out, "importance.svg", svg.as_bytes())?);
    let summary = format!(
        "permutation importance on {n} rows of {}: {} {} with every column intact; importance = {} when a column is shuffled (mean ± std of {repeats} shuffles)",
        rows.origin,
        metric.name(),
        fmt(base),
        if higher {
            "the drop in it"
        } else {
            "the rise in it"
        },
    );
    Ok(Explained {
        table: table(&doc),
        summary,
        files,
    })
}

fn fmt(v: f64) -> String {
    format!("{v:.4}")
}

/// The table for stdout: one line a column, most important first.
pub fn table(doc: &Document) -> String {
    let w = doc
        .columns
        .iter()
        .map(|c| c.column.chars().count())
        .max()
        .unwrap_or(0)
        .max("column".len());
    let mut t = String::new();
    let gains = doc.columns.iter().any(|c| c.split_gain.is_some());
    let _ = write!(t, "{:<w$}  {:>10}  {:>8}", "column", "importance", "std");
    let _ = writeln!(t, "{}", if gains { "  split gain" } else { "" });
    for c in &doc.columns {
        let _ = write!(
            t,
            "{:<w$}  {:>10}  {:>8}",
            c.column,
            fmt(c.mean),
            fmt(c.std)
        );
        let _ = writeln!(
            t,
            "{}",
            c.split_gain
                .map_or(String::new(), |g| format!("  {:>10}", fmt(g)))
        );
    }
    t
}
