//! Reading what the plots need: takes a run or sweep directory, gives its epochs
//! (`metrics.jsonl`), summary, trials and class names, read through `crate::rundir`, or an
//! `mlx::plot::input` diagnostic.

use crate::diagnostics::Diagnostic;
use crate::rundir::{self, Figures, RunDir, SweepDoc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The error code of every unusable input.
pub const INPUT: &str = "mlx::plot::input";

/// One line of `metrics.jsonl`: the finite figures of an epoch (`None` for null/NaN).
#[derive(Clone, Debug, Default)]
pub struct Epoch {
    pub epoch: usize,
    /// The fold (1-based) of a k-fold run; 0 otherwise.
    pub fold: usize,
    pub train: BTreeMap<String, Option<f64>>,
    pub val: BTreeMap<String, Option<f64>>,
}

/// What the plots use of `summary.json`.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub train: Option<String>,
    pub status: Option<String>,
    pub best_epoch: Option<usize>,
    pub epochs_run: Option<usize>,
    /// What the x axis counts: `epoch`, or `round` for a tree model.
    pub unit: String,
    /// Each fold's `(best_epoch, epochs_run)` for k-fold runs.
    pub folds: Vec<(Option<usize>, Option<usize>)>,
    /// The confusion matrix to draw: its split (`test` or `val`) and counts.
    pub confusion: Option<(String, Vec<Vec<u64>>)>,
}

/// One trial of a sweep.
#[derive(Clone, Debug)]
pub struct Trial {
    pub trial: usize,
    pub point: Vec<(String, String)>,
    pub objective: Option<f64>,
    pub dir: Option<PathBuf>,
}

/// What the plots use of `sweep.json`.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub name: String,
    pub objective: String,
    pub maximize: bool,
    pub trials: Vec<Trial>,
    pub best: Option<usize>,
}

/// A run-directory read failure as this module's diagnostic (the message names the file).
fn input(d: Diagnostic) -> Diagnostic {
    Diagnostic { code: INPUT, ..d }
}

/// The finite number a JSON value holds.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

/// The numeric figures of a split (`{"loss": 0.4, "confusion": [..]}` gives `loss` only;
/// null counts as a missing value of that figure).
fn figures(v: Option<&Figures>) -> BTreeMap<String, Option<f64>> {
    let mut out = BTreeMap::new();
    for (k, x) in v.into_iter().flatten() {
        match x {
            Value::Number(_) => {
                out.insert(k.clone(), number(x));
            }
            Value::Null => {
                out.insert(k.clone(), None);
            }
            _ => {}
        }
    }
    out
}

/// The epochs of `metrics.jsonl` (none when the file does not exist).
pub fn metrics(dir: &Path) -> Result<Vec<Epoch>, Diagnostic> {
    let lines = run_dir(dir).metrics().map_err(input)?;
    let mut out: Vec<Epoch> = Vec::new();
    for m in lines {
        let fold = m.fold.unwrap_or(0);
        let epoch = m.epoch.unwrap_or_else(|| {
            // No epoch number: the one after this fold's previous line.
            out.iter()
                .filter(|e| e.fold == fold)
                .map(|e| e.epoch)
                .max()
                .unwrap_or(0)
                .saturating_add(1)
        });
        out.push(Epoch {
            epoch,
            fold,
            train: figures(Some(&m.train)),
            val: figures(m.val.as_ref()),
        });
    }
    Ok(out)
}

/// `dir` as a run directory (the plots read files that may or may not be there).
fn run_dir(dir: &Path) -> RunDir {
    RunDir {
        dir: dir.to_path_buf(),
        kind: rundir::Kind::Run,
    }
}

/// A k×k matrix of counts, if `v` is one.
fn matrix(v: Option<&Value>) -> Option<Vec<Vec<u64>>> {
    let rows = v?.as_array()?;
    let k = rows.len();
    if k == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(k);
    for r in rows {
        let r = r.as_array().filter(|r| r.len() == k)?;
        let row: Option<Vec<u64>> = r
            .iter()
            .map(|c| {
                c.as_u64().or_else(|| {
                    c.as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                })
            })
            .collect();
        out.push(row?);
    }
    Some(out)
}

/// `summary.json` (`None` when the file does not exist).
pub fn summary(dir: &Path) -> Result<Option<Summary>, Diagnostic> {
    let Some(s) = run_dir(dir).summary_if_any().map_err(input)? else {
        return Ok(None);
    };
    let folds = s
        .folds
        .iter()
        .flatten()
        .map(|f| (f.best_epoch, f.epochs_run))
        .collect();
    let confusion = ["test", "val"].iter().find_map(|split| {
        matrix(s.split(split).and_then(|f| f.get("confusion"))).map(|m| (split.to_string(), m))
    });
    Ok(Some(Summary {
        train: (!s.train.is_empty()).then(|| s.train.clone()),
        status: s.status.map(|st| st.name().to_string()),
        best_epoch: s.best_epoch,
        epochs_run: s.epochs_run,
        unit: s.unit.clone().unwrap_or_else(|| "epoch".into()),
        folds,
        confusion,
    }))
}

/// `sweep.json` of a sweep directory.
pub fn sweep(dir: &Path) -> Result<Sweep, Diagnostic> {
    let doc: SweepDoc = rundir::read_doc(&dir.join(rundir::SWEEP)).map_err(input)?;
    let trials = doc
        .trials
        .iter()
        .enumerate()
        .map(|(i, t)| Trial {
            trial: t.trial.unwrap_or(i + 1),
            point: t
                .point
                .iter()
                .map(|(k, v)| (k.clone(), rundir::docs::point_text(v)))
                .collect(),
            objective: t.objective.filter(|x| x.is_finite()),
            dir: t.dir.as_ref().map(PathBuf::from),
        })
        .collect();
    Ok(Sweep {
        name: if doc.sweep.is_empty() {
            dir_name(dir)
        } else {
            doc.sweep.clone()
        },
        objective: if doc.objective.is_empty() {
            "objective".into()
        } else {
            doc.objective.clone()
        },
        maximize: doc.direction == rundir::Direction::Maximize,
        best: doc.best.as_ref().map(|b| b.trial),
        trials,
    })
}

/// The last component of a directory's path, for titles.
pub fn dir_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The names of a classifier's `k` classes, as the run's input schema records them, else
/// `0..k`.
pub fn class_names(dir: &Path, k: usize) -> Vec<String> {
    match run_dir(dir).input() {
        Ok(schema) => match schema.classes() {
            Some(c) if c.len() == k => c.to_vec(),
            _ => (0..k).map(|i| i.to_string()).collect(),
        },
        Err(_) => (0..k).map(|i| i.to_string()).collect(),
    }
}
