//! Sweeps: every checked point of a sweep trained as a normal run under the sweep's directory,
//! then `sweep.json` with each trial's hyperparameters and summary, and the best by the
//! objective.

use super::run::{self, Context, Failure, Options};
use super::rundir;
use crate::check::hir::SweepPlan;
use crate::diagnostics::Diagnostic;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The objective's value in a run summary.
fn objective(s: &SweepPlan, summary: &Value) -> Option<f64> {
    summary
        .get(&s.objective.split)?
        .get(s.objective.metric.map_or("loss", |m| m.name()))?
        .as_f64()
}

pub fn run(ctx: &Context<'_>, s: &SweepPlan, opts: &Options) -> Result<PathBuf, Failure> {
    let dir = rundir::new_run_dir(&opts.out, &s.name).map_err(|e| {
        Diagnostic::error(
            "mlx::run::io",
            format!(
                "cannot create a run directory in {}: {e}",
                opts.out.display()
            ),
        )
    })?;
    let trial_opts = Options {
        out: dir.join("trials"),
        ..opts.clone()
    };
    let mut trials = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for (i, (plan, point)) in s.trains.iter().zip(&s.points).enumerate() {
        if opts.verbose {
            let p: Vec<String> = point.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            eprintln!(
                "sweep `{}` trial {}/{}: {}",
                s.name,
                i + 1,
                s.trains.len(),
                p.join(", ")
            );
        }
        let out = run::train(ctx, plan, &trial_opts).map_err(|f| Failure {
            diagnostic: f.diagnostic,
            dir: Some(dir.clone()),
        })?;
        let value = objective(s, &out.summary);
        if let Some(v) = value {
            let better = match best {
                None => true,
                Some((_, b)) => (s.maximize && v > b) || (!s.maximize && v < b),
            };
            if better {
                best = Some((i, v));
            }
        }
        let point: serde_json::Map<String, Value> =
            point.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        trials.push(json!({
            "trial": i + 1,
            "point": point,
            "objective": value,
            "dir": out.dir.as_ref().map(|d| d.display().to_string()),
            "summary": out.summary,
        }));
    }
    let best_json = best.map(|(i, v)| {
        json!({"trial": i + 1, "point": trials[i]["point"], "objective": v, "dir": trials[i]["dir"]})
    });
    let doc = json!({
        "sweep": s.name,
        "base": s.base,
        "objective": s.objective.name(),
        "direction": if s.maximize { "maximize" } else { "minimize" },
        "trials": trials,
        "best": best_json,
    });
    rundir::write_json(&dir.join("sweep.json"), &doc).map_err(|e| Failure {
        diagnostic: Box::new(Diagnostic::error(
            "mlx::run::io",
            format!("cannot write sweep.json: {e}"),
        )),
        dir: Some(dir.clone()),
    })?;
    if opts.verbose {
        eprintln!("{}", table(s, &doc));
    }
    Ok(dir)
}

/// The end-of-sweep table: one row per trial, the best marked.
pub fn table(s: &SweepPlan, doc: &Value) -> String {
    let keys: Vec<String> = s
        .points
        .first()
        .map(|p| p.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let best = doc["best"]["trial"].as_u64();
    let mut out = format!(
        "sweep `{}` ({} {}):\n",
        s.name,
        doc["direction"].as_str().unwrap_or(""),
        s.objective.name()
    );
    out.push_str(&format!("  {:>5}  ", "trial"));
    for k in &keys {
        out.push_str(&format!("{k:>14}  "));
    }
    out.push_str(&format!("{:>14}\n", s.objective.name()));
    for t in doc["trials"].as_array().into_iter().flatten() {
        let n = t["trial"].as_u64().unwrap_or(0);
        out.push_str(&format!(
            "{} {:>5}  ",
            if Some(n) == best { "*" } else { " " },
            n
        ));
        for k in &keys {
            out.push_str(&format!("{:>14}  ", t["point"][k].as_str().unwrap_or("")));
        }
        match t["objective"].as_f64() {
            Some(v) => out.push_str(&format!("{v:>14.4}\n")),
            None => out.push_str(&format!("{:>14}\n", "-")),
        }
    }
    if let Some(b) = best {
        out.push_str(&format!("best: trial {b}"));
    }
    out
}
