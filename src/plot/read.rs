//! Reading what the plots need: takes a run or sweep directory, gives its epochs
//! (`metrics.jsonl`), summary, trials and class names, or an `mlx::plot::input` diagnostic.

use crate::check::hir::TargetKind;
use crate::diagnostics::Diagnostic;
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

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(INPUT, format!("{} is not valid: {what}", path.display()))
}

fn read_json(path: &Path) -> Result<Value, Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::error(INPUT, format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| corrupt(path, e))
}

/// The finite number a JSON value holds.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

fn count(v: Option<&Value>) -> Option<usize> {
    v.and_then(Value::as_u64).map(|n| n as usize)
}

/// The numeric figures of a split (`{"loss": 0.4, "confusion": [..]}` gives `loss` only;
/// null counts as a missing value of that figure).
fn figures(v: Option<&Value>) -> BTreeMap<String, Option<f64>> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(m)) = v {
        for (k, x) in m {
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
    }
    out
}

/// The epochs of `metrics.jsonl` (none when the file does not exist).
pub fn metrics(dir: &Path) -> Result<Vec<Epoch>, Diagnostic> {
    let path = dir.join("metrics.jsonl");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Diagnostic::error(INPUT, format!("cannot read {}: {e}", path.display())))?;
    let mut out: Vec<Epoch> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| corrupt(&path, format_args!("line {}: {e}", i + 1)))?;
        if !v.is_object() {
            return Err(corrupt(
                &path,
                format_args!("line {} is not a JSON object", i + 1),
            ));
        }
        let fold = count(v.get("fold")).unwrap_or(0);
        let epoch = count(v.get("epoch")).unwrap_or_else(|| {
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
            train: figures(v.get("train")),
            val: figures(v.get("val")),
        });
    }
    Ok(out)
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
    let path = dir.join("summary.json");
    if !path.is_file() {
        return Ok(None);
    }
    let v = read_json(&path)?;
    if !v.is_object() {
        return Err(corrupt(&path, "it is not a JSON object"));
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let folds = v
        .get("folds")
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .map(|f| (count(f.get("best_epoch")), count(f.get("epochs_run"))))
                .collect()
        })
        .unwrap_or_default();
    let confusion = ["test", "val"].iter().find_map(|split| {
        matrix(v.get(split).and_then(|s| s.get("confusion"))).map(|m| (split.to_string(), m))
    });
    Ok(Some(Summary {
        train: text("train"),
        status: text("status"),
        best_epoch: count(v.get("best_epoch")),
        epochs_run: count(v.get("epochs_run")),
        folds,
        confusion,
    }))
}

/// `sweep.json` of a sweep directory.
pub fn sweep(dir: &Path) -> Result<Sweep, Diagnostic> {
    let path = dir.join("sweep.json");
    let v = read_json(&path)?;
    let Some(trials) = v.get("trials").and_then(Value::as_array) else {
        return Err(corrupt(&path, "it has no \"trials\" list"));
    };
    let mut out = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        let point = match t.get("point") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect(),
            _ => Vec::new(),
        };
        out.push(Trial {
            trial: count(t.get("trial")).unwrap_or(i + 1),
            point,
            objective: t.get("objective").and_then(number),
            dir: t.get("dir").and_then(Value::as_str).map(PathBuf::from),
        });
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Sweep {
        name: text("sweep").unwrap_or_else(|| dir_name(dir)),
        objective: text("objective").unwrap_or_else(|| "objective".into()),
        maximize: text("direction").as_deref() == Some("maximize"),
        best: v.get("best").and_then(|b| count(b.get("trial"))),
        trials: out,
    })
}

/// The last component of a directory's path, for titles.
pub fn dir_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The names of a classifier's `k` classes: the target levels of the run's own `spec.mlx`
/// when it still checks (its data files are readable), else `0..k`.
pub fn class_names(dir: &Path, train: Option<&str>, k: usize) -> Vec<String> {
    let fallback = || (0..k).map(|i| i.to_string()).collect();
    let spec = dir.join("spec.mlx");
    if !spec.is_file() {
        return fallback();
    }
    let checked = crate::driver::check_file(&spec, &[]);
    let Some(program) = checked.program else {
        return fallback();
    };
    let dataset = train
        .and_then(|t| program.trains.iter().find(|p| p.name == t))
        .and_then(|p| program.datasets.iter().find(|d| d.name == p.dataset))
        .or_else(|| program.datasets.first());
    match dataset.map(|d| &d.target.kind) {
        Some(TargetKind::Class { levels, .. }) if levels.len() == k => levels.clone(),
        _ => fallback(),
    }
}
