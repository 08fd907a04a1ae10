//! What a run reports: takes its figures and gives the per-epoch line, the end-of-run figures
//! (standard error) and the `summary.json` document.

use super::checkpoint::FoldFigures;
use super::metrics;
use super::run::json_number;
use crate::check::hir::TrainPlan;
use serde_json::{Map, Value, json};
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

pub(super) fn summary_json(
    plan: &TrainPlan,
    backend: &str,
    folds: &[FoldFigures],
    wall: f64,
) -> Value {
    let mut s = Map::new();
    s.insert("train".into(), json!(plan.name));
    s.insert("status".into(), json!("completed"));
    s.insert("seed".into(), json!(plan.seed));
    s.insert("backend".into(), json!(backend));
    let last = folds.last();
    s.insert("epochs_run".into(), json!(last.map_or(0, |f| f.epochs_run)));
    s.insert("best_epoch".into(), json!(last.map_or(0, |f| f.best_epoch)));
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
    s.insert(
        "val".into(),
        serde_json::to_value(val).unwrap_or(Value::Null),
    );
    s.insert(
        "test".into(),
        serde_json::to_value(test).unwrap_or(Value::Null),
    );
    if folds.len() > 1 {
        let fs: Vec<Value> = folds
            .iter()
            .map(|f| json!({"val": f.val, "test": f.test, "best_epoch": f.best_epoch, "epochs_run": f.epochs_run}))
            .collect();
        s.insert("folds".into(), Value::Array(fs));
        s.insert("model_fold".into(), json!(folds.len()));
    }
    let mut rates: Vec<f64> = folds.iter().map(|f| f.samples_per_second).collect();
    rates.sort_by(f64::total_cmp);
    s.insert(
        "samples_per_second".into(),
        json_number(rates.get(rates.len() / 2).copied().unwrap_or(0.0)),
    );
    s.insert("wall_seconds".into(), json_number(wall));
    Value::Object(s)
}

pub(super) fn print_results(plan: &TrainPlan, summary: &Value) {
    for split in ["val", "test"] {
        let Some(Value::Object(m)) = summary.get(split) else {
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
