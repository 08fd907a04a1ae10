//! Finding runs: takes a directory and gives every run directory (one holding `summary.json`,
//! `mlx.lock`, or a run-id-named one holding `spec.mlx`) and sweep directory (`sweep.json`, or
//! a run-id-named one holding `trials/`) below it, and reads what each says leniently: a
//! missing or corrupt file leaves its facts unknown instead of failing the listing.

use super::parse_run_id;
use crate::rundir::{self, Figures, RunDir};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// How deep the search descends (run directories sit 2 levels down, sweep trials 5).
const MAX_DEPTH: usize = 32;

#[derive(Debug, PartialEq)]
pub enum Found {
    Run(PathBuf),
    Sweep(PathBuf),
}

/// Every run and sweep directory at or below `dir`, in no particular order. Symbolic links
/// are not followed, so a link cycle cannot trap the search.
pub fn find(dir: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let named_like_run = d
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| parse_run_id(n).is_some());
        let has = |f: &str| d.join(f).is_file();
        if has(rundir::SWEEP) || (named_like_run && d.join(rundir::TRIALS).is_dir()) {
            out.push(Found::Sweep(d.clone()));
        } else if has(rundir::SUMMARY)
            || has(rundir::lock::FILE)
            || (named_like_run && has(rundir::SPEC))
        {
            out.push(Found::Run(d.clone()));
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            // A run still being set up (`rundir::Staging`) is not listed.
            let staging = e.file_name().to_string_lossy().starts_with(".partial-");
            if !staging && e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    out
}

/// A found directory as a run directory, whose documents are read leniently (a missing or
/// corrupt one is an unknown).
pub fn run_dir(p: &Path) -> RunDir {
    RunDir {
        dir: p.to_path_buf(),
        kind: rundir::Kind::Run,
    }
}

/// The figures `mlx runs` shows from a split's figure map: accuracy and macro F1 for a
/// classifier, R² and RMSE for a regression (two other figures when neither is there), and
/// always the loss.
pub fn key_figures(m: &Figures) -> Vec<(String, f64)> {
    let numeric = |k: &str| m.get(k).and_then(Value::as_f64);
    let pick = |keys: &[&str]| -> Vec<(String, f64)> {
        keys.iter()
            .filter_map(|k| numeric(k).map(|v| (k.to_string(), v)))
            .collect()
    };
    let mut out = pick(&["accuracy", "macro_f1"]);
    if out.is_empty() {
        out = pick(&["r2", "rmse"]);
    }
    if out.is_empty() {
        out = m
            .iter()
            .filter(|(k, _)| k.as_str() != "loss")
            .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
            .take(2)
            .collect();
    }
    out.extend(pick(&["loss"]));
    out
}

/// Whether a figure map holds any number (k-fold runs leave `test` empty).
pub fn has_numbers(figures: Option<&Figures>) -> bool {
    figures.is_some_and(|m| m.values().any(Value::is_number))
}
