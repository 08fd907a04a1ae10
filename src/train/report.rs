//! What a run reports: takes its figures and gives the per-epoch line, the end-of-run figures
//! (standard error), the `summary.json` document and the model's input schema (`input.json`).

use super::checkpoint::FoldFigures;
use super::metrics;
use crate::check::hir::{self, ColumnKind, TargetKind, TrainPlan};
use crate::data::Preprocessor;
use crate::data::preprocess::FittedStep;
use crate::rundir::{
    self, FoldSummary, InputFeature, InputKind, InputSchema, Status, Summary, TargetSchema,
    TargetSchemaKind,
};
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) fn epoch_line(
    fold: &str,
    epoch: usize,
    epochs: usize,
    train_loss: f64,
    val: &BTreeMap<String, Value>,
    secs: f64,
) -> String {
    let mut s = format!(
        "{fold}epoch {:>width$}/{epochs}  train loss {train_loss:.4}",
        epoch + 1,
        width = epochs.to_string().len()
    );
    for (k, v) in val {
        if let Some(x) = v.as_f64() {
            s.push_str(&format!("  val {k} {x:.4}"));
        }
    }
    s.push_str(&format!("  ({secs:.2} s)"));
    s
}

/// The progress line of a train with objectives: each objective's training loss, then its
/// validation loss.
pub(super) fn objectives_line(
    fold: &str,
    epoch: usize,
    epochs: usize,
    train: &BTreeMap<String, Value>,
    val: &BTreeMap<String, Value>,
    secs: f64,
) -> String {
    let mut s = format!(
        "{fold}epoch {:>width$}/{epochs} ",
        epoch + 1,
        width = epochs.to_string().len()
    );
    for (k, v) in train {
        if let Some(x) = v.as_f64() {
            s.push_str(&format!(" train {k} {x:.4}"));
        }
    }
    for (k, v) in val {
        if let Some(x) = v.as_f64() {
            s.push_str(&format!("  val {k} {x:.4}"));
        }
    }
    s.push_str(&format!("  ({secs:.2} s)"));
    s
}

pub(super) fn summary(
    plan: &TrainPlan,
    backend: &str,
    folds: &[FoldFigures],
    wall: f64,
) -> Summary {
    let last = folds.last();
    let vals: Vec<BTreeMap<String, Value>> = folds.iter().map(|f| f.val.clone()).collect();
    let tests: Vec<BTreeMap<String, Value>> = folds.iter().map(|f| f.test.clone()).collect();
    let (val, test) = if folds.len() > 1 {
        (
            metrics::mean_over_folds(&vals),
            metrics::mean_over_folds(&tests),
        )
    } else {
        (
            vals.into_iter().next().unwrap_or_default(),
            tests.into_iter().next().unwrap_or_default(),
        )
    };
    let kfold = folds.len() > 1;
    let mut rates: Vec<f64> = folds.iter().map(|f| f.samples_per_second).collect();
    rates.sort_by(f64::total_cmp);
    let finite = |x: f64| x.is_finite().then_some(x);
    Summary {
        format: rundir::FORMAT,
        train: plan.name.clone(),
        status: Some(Status::Completed),
        error: None,
        seed: Some(plan.seed),
        backend: Some(backend.to_string()),
        epochs_run: Some(last.map_or(0, |f| f.epochs_run)),
        best_epoch: Some(last.map_or(0, |f| f.best_epoch)),
        unit: plan.trees.is_some().then(|| "round".to_string()),
        val: Some(val),
        test: Some(test),
        folds: kfold.then(|| {
            folds
                .iter()
                .map(|f| FoldSummary {
                    val: f.val.clone(),
                    test: f.test.clone(),
                    best_epoch: Some(f.best_epoch),
                    epochs_run: Some(f.epochs_run),
                })
                .collect()
        }),
        model_fold: kfold.then_some(folds.len()),
        samples_per_second: finite(rates.get(rates.len() / 2).copied().unwrap_or(0.0)),
        wall_seconds: finite(wall),
    }
}

/// The summary of a run stopped by Ctrl-C (it can be resumed).
pub(super) fn interrupted(plan: &TrainPlan, message: &str) -> Summary {
    Summary {
        status: Some(Status::Interrupted),
        ..failed(plan, message)
    }
}

/// The summary of a run that stopped with `error`.
pub(super) fn failed(plan: &TrainPlan, error: &str) -> Summary {
    Summary {
        format: rundir::FORMAT,
        train: plan.name.clone(),
        status: Some(Status::Failed),
        error: Some(error.to_string()),
        unit: plan.trees.is_some().then(|| "round".to_string()),
        ..Summary::default()
    }
}

pub(super) fn print_results(plan: &TrainPlan, summary: &Summary) {
    for split in ["val", "test"] {
        let Some(m) = summary.split(split) else {
            continue;
        };
        let parts: Vec<String> = m
            .iter()
            .filter_map(|(k, v)| v.as_f64().map(|x| format!("{k} {x:.4}")))
            .collect();
        if !parts.is_empty() {
            eprintln!("{} {split}: {}", plan.name, parts.join("  "));
        }
    }
}

/// The model's input schema (`input.json`): the raw feature columns in order with the levels
/// the preprocessing was fitted on, and the target's class names.
pub(super) fn input_schema(
    plan: &TrainPlan,
    d: &hir::DatasetPlan,
    pre: &Preprocessor,
) -> InputSchema {
    let features = d
        .features
        .iter()
        .map(|f| {
            let kind = match &f.kind {
                ColumnKind::Numeric => InputKind::Number,
                ColumnKind::Tensor { shape } => InputKind::Image {
                    shape: shape.clone(),
                },
                ColumnKind::Category { levels } => {
                    let fitted = pre
                        .features
                        .iter()
                        .find(|p| p.column == f.column)
                        .and_then(|p| {
                            p.steps.iter().find_map(|s| match s {
                                FittedStep::OneHot { fitted, .. } => Some(fitted.clone()),
                                FittedStep::Ordinal { levels } => Some(levels.clone()),
                                _ => None,
                            })
                        });
                    InputKind::Category {
                        levels: fitted.unwrap_or_else(|| levels.clone()),
                    }
                }
            };
            InputFeature {
                name: f.column.clone(),
                kind,
            }
        })
        .collect();
    let target = TargetSchema {
        name: d.target.column.clone(),
        kind: match &d.target.kind {
            TargetKind::Class {
                classes, levels, ..
            } => TargetSchemaKind::Class {
                classes: if levels.len() == *classes {
                    levels.clone()
                } else {
                    (0..*classes).map(|i| i.to_string()).collect()
                },
            },
            TargetKind::Regression | TargetKind::Absent => TargetSchemaKind::Value,
        },
    };
    let (missing, separator) = d
        .sources
        .iter()
        .find_map(|s| match &s.loader {
            hir::Loader::Csv { missing, sep, .. } => Some((missing.clone(), *sep)),
            _ => None,
        })
        .unwrap_or((Vec::new(), ','));
    InputSchema {
        format: rundir::FORMAT,
        train: plan.name.clone(),
        features,
        target,
        missing,
        separator,
        batch: plan.batch,
    }
}
