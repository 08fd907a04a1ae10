//! `mlx explain`: takes a completed run directory (and optionally labelled rows of one's own)
//! and gives what its model relies on, per raw input column: permutation importance in the
//! train's own first metric (`importance.json`, `importance.svg`, a table), or integrated
//! gradients per row (`attributions.json`, a CSV table, heat maps for image models).
//!
//! The rows are the run's test split, loaded and split again as `mlx eval` does (same data,
//! same seed), or the rows of `INPUT`, a CSV file that holds the target column too. A *raw
//! column* is one feature of `input.json` (one `Preprocessor` feature): a category's whole
//! one-hot block and an image's pixels belong to one column.

pub mod draw;
pub mod gradients;
pub mod permutation;

use crate::backend::BackendKind;
use crate::check::hir::{self, Metric};
use crate::data::{Data, Preprocessor};
use crate::diagnostics::{Diagnostic, did_you_mean};
use crate::predict::{Failed, Reopened};
use crate::source::SourceMap;
use std::path::{Path, PathBuf};

/// The ways to explain a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Permutation,
    Gradients,
}

impl Method {
    pub const NAMES: [&'static str; 2] = ["permutation", "gradients"];

    /// The method named `name`, or `mlx::explain::method`.
    pub fn parse(name: &str) -> Result<Method, Diagnostic> {
        match name {
            "permutation" => Ok(Method::Permutation),
            "gradients" => Ok(Method::Gradients),
            _ => {
                let d = Diagnostic::error(
                    "mlx::explain::method",
                    format!("`{name}` is not a method of `mlx explain`"),
                );
                Err(match did_you_mean(name, Method::NAMES.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("the methods are: permutation, gradients"),
                })
            }
        }
    }
}

pub struct Options {
    /// `permutation` or `gradients` (checked here, so a wrong name is a diagnostic).
    pub method: String,
    /// Labelled rows to explain instead of the test split (a CSV file with the target).
    pub input: Option<PathBuf>,
    /// Shuffles per column (permutation importance).
    pub repeats: usize,
    /// Riemann steps from the baseline to a row (integrated gradients).
    pub steps: usize,
    /// Explain only the first `rows` rows (integrated gradients; default: all rows of a
    /// tabular model, 8 images).
    pub rows: Option<usize>,
    /// Where the files go (default `RUN_DIR/explain`).
    pub out: Option<PathBuf>,
    pub backend: BackendKind,
    pub ignore_lock: bool,
}

/// What `mlx explain` gives: its table for stdout and the files it wrote.
pub struct Explained {
    pub table: String,
    pub summary: String,
    pub files: Vec<PathBuf>,
}

pub(crate) fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

/// One raw input column: its name and its values' place in a preprocessed row.
#[derive(Clone, Debug, PartialEq)]
pub struct RawColumn {
    pub name: String,
    pub offset: usize,
    pub width: usize,
    /// The image shape of an image column.
    pub image: Option<Vec<usize>>,
}

/// The raw columns of the fitted preprocessing, in input order.
pub fn raw_columns(pre: &Preprocessor) -> Vec<RawColumn> {
    let mut offset = 0;
    pre.features
        .iter()
        .map(|f| {
            let c = RawColumn {
                name: f.column.clone(),
                offset,
                width: f.width,
                image: match &f.kind {
                    crate::data::preprocess::FeatureKind::Tensor { shape } => Some(shape.clone()),
                    _ => None,
                },
            };
            offset += f.width;
            c
        })
        .collect()
}

/// The rows explained: their data, which of its rows, and where they came from.
pub struct Rows {
    pub data: Data,
    pub rows: Vec<usize>,
    /// `the test split` or the INPUT file.
    pub origin: String,
}

impl Rows {
    /// The preprocessed model inputs of the rows, row-major.
    pub fn features(&self, pre: &Preprocessor) -> Result<Vec<f32>, Diagnostic> {
        let mut x = Vec::new();
        pre.features(&self.data, &self.rows, &mut x)
            .map_err(|e| e.diagnostic())?;
        Ok(x)
    }

    /// The targets of the rows: class indices as f32, or values.
    pub fn targets(&self) -> Vec<f32> {
        let mut t = Vec::new();
        self.data.targets(&self.rows, &mut t);
        t
    }
}

/// The rows to explain: `input`'s, or the run's test split.
pub fn load_rows(
    r: &Reopened,
    plan: &hir::TrainPlan,
    d: &hir::DatasetPlan,
    input: Option<&Path>,
) -> Result<Rows, Failed> {
    if let Some(path) = input {
        let data = Data::load_labelled(d, path).map_err(|e| {
            let mut diag = Diagnostic::error(
                "mlx::explain::input",
                format!("INPUT {}: {}", path.display(), e.full_message()),
            );
            diag = diag.with_help(format!(
                "INPUT is a CSV file with the feature columns and the target column `{}`, as the training data",
                d.target.column
            ));
            fail(diag)
        })?;
        if data.is_empty() {
            return Err(fail(Diagnostic::error(
                "mlx::explain::input",
                format!("INPUT {} holds no usable rows", path.display()),
            )));
        }
        let rows = (0..data.len()).collect();
        return Ok(Rows {
            data,
            rows,
            origin: path.display().to_string(),
        });
    }
    if d.stream.is_some() {
        return Err(fail(
            Diagnostic::error(
                "mlx::data::stream",
                format!(
                    "the dataset `{}` of {} is streamed: its test split stays in its sources, and explaining needs the rows in memory",
                    d.name,
                    r.run.dir.display()
                ),
            )
            .with_help(format!(
                "give labelled rows as INPUT (a CSV file with the feature columns and the target `{}`, e.g. a sample of the test rows)",
                d.target.column
            )),
        ));
    }
    for w in r.data_drift() {
        eprintln!("warning: {w}");
    }
    let data = Data::load(d).map_err(|e| fail(e.diagnostic()))?;
    let folds = data.folds(d, plan.seed).map_err(|e| fail(e.diagnostic()))?;
    let fold = folds
        .last()
        .ok_or_else(|| fail(Diagnostic::internal("no fold")))?;
    if fold.test.is_empty() {
        return Err(fail(
            Diagnostic::error(
                "mlx::explain::no_test",
                format!(
                    "the dataset `{}` of {} has no test split to explain the model on",
                    d.name,
                    r.run.dir.display()
                ),
            )
            .with_help(format!(
                "give labelled rows as INPUT (a CSV file with the feature columns and the target `{}`), or train with a split that keeps test rows",
                d.target.column
            )),
        ));
    }
    Ok(Rows {
        rows: fold.test.clone(),
        data,
        origin: "the test split".into(),
    })
}

/// The metric importance is measured in: the train's first one that is a number (not the
/// confusion matrix), else accuracy for a classifier and rmse for a regression.
pub fn score_metric(plan: &hir::TrainPlan, d: &hir::DatasetPlan) -> Metric {
    plan.metrics
        .iter()
        .copied()
        .find(|m| *m != Metric::Confusion)
        .unwrap_or(if d.target.kind.classes().is_some() {
            Metric::Accuracy
        } else {
            Metric::Rmse
        })
}

/// Whether a larger value of `m` is better.
pub fn higher_is_better(m: Metric) -> bool {
    !matches!(m, Metric::Mse | Metric::Rmse | Metric::Mae)
}

/// Write `bytes` to `dir/name` atomically (creating `dir`); a failure is `mlx::explain::write`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, Failed> {
    let p = dir.join(name);
    std::fs::create_dir_all(dir)
        .and_then(|()| crate::rundir::write_atomic(&p, bytes))
        .map_err(|e| {
            fail(Diagnostic::error(
                "mlx::explain::write",
                format!("{} cannot be written: {e}", p.display()),
            ))
        })?;
    Ok(p)
}

/// `mlx explain`: explain the model of the completed run in `dir`.
pub fn explain(dir: &Path, opts: &Options) -> Result<Explained, Failed> {
    let method = Method::parse(&opts.method).map_err(fail)?;
    let r = Reopened::open(dir, opts.ignore_lock)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| r.run.dir.join("explain"));
    if let Some(p) = &opts.input
        && r.run.input().map_err(fail)?.image().is_some()
    {
        return Err(fail(
            Diagnostic::error(
                "mlx::explain::input",
                format!(
                    "INPUT {}: an image model is explained on its test split; INPUT is for tabular models",
                    p.display()
                ),
            )
            .with_help("leave INPUT out"),
        ));
    }
    if method == Method::Gradients
        && let Ok((_, plan, _)) = r.plans_any()
        && plan.trees.is_some()
    {
        return Err(fail(
            Diagnostic::error(
                "mlx::explain::method",
                format!(
                    "run `{}` trained a tree model, whose answer has no gradient to integrate",
                    plan.name
                ),
            )
            .with_help("use `--method permutation` (the default)"),
        ));
    }
    match method {
        Method::Permutation => permutation::run(&r, opts, &out),
        Method::Gradients => gradients::run(&r, opts, &out),
    }
}
