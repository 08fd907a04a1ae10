//! Sweeps: every checked point of a sweep trained as a normal run under the sweep's directory,
//! up to `jobs` trials at a time, then `sweep.json` with each trial's hyperparameters and
//! summary in trial order, and the best by the objective. Trials are independent runs (each
//! seeded by its own train), so the results do not depend on `jobs`.

use super::run::{self, Context, Failure, Options, Outcome};
use crate::check::hir::SweepPlan;
use crate::diagnostics::Diagnostic;
use crate::rundir::{self, BestTrial, Direction, Summary, SweepDoc, TrialEntry, TrialStatus};
use crate::syntax::ast;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// The objective's value in a run summary.
fn objective(s: &SweepPlan, summary: &Summary) -> Option<f64> {
    summary
        .split(&s.objective.split)?
        .get(
            s.objective
                .objective
                .as_deref()
                .unwrap_or_else(|| s.objective.metric.map_or("loss", |m| m.name())),
        )?
        .as_f64()
}

fn point_text(point: &[(String, String)]) -> String {
    let p: Vec<String> = point.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    p.join(", ")
}

/// The lock file of trial `k` (1-based) in a sweep directory.
pub fn lock_name(k: usize) -> String {
    format!(".trial-{k}.lock")
}

/// The right to run trial `k` of the sweep in `dir`, held until dropped (released by the
/// operating system when the process dies).
pub fn lock_trial(
    dir: &Path,
    s: &SweepPlan,
    k: usize,
    what: &str,
) -> Result<rundir::WriteLock, Diagnostic> {
    rundir::lock_file(
        dir,
        &lock_name(k),
        what,
        &format!("trial {k} of sweep `{}` in {}", s.name, dir.display()),
    )
}

/// Run the sweep's trials, `jobs` at a time. With one job a trial reports its epochs as a
/// plain run does; with more, each trial reports one line when it starts and one when it ends
/// (whole lines, so parallel trials never garble each other's output), and the CPU's threads
/// are shared out between the trials.
pub fn run(
    ctx: &Context<'_>,
    s: &SweepPlan,
    opts: &Options,
    jobs: usize,
) -> Result<PathBuf, Failure> {
    let dir = rundir::new_run_dir(&opts.out, &s.name).map_err(|e| {
        Diagnostic::error(
            "mlx::run::io",
            format!(
                "cannot create a run directory in {}: {e}",
                opts.out.display()
            ),
        )
    })?;
    // The sweep's own program first, so a killed sweep can be resumed as a sweep; the
    // directory is this process's while it runs.
    let _writing = rundir::lock_for_writing(&dir, "mlx run").map_err(|d| Failure {
        diagnostic: Box::new(d),
        dir: Some(dir.clone()),
    })?;
    if let Some(text) = sweep_text(ctx, s) {
        let path = dir.join(rundir::SWEEP_SPEC);
        rundir::write_atomic(&path, text.as_bytes()).map_err(|e| Failure {
            diagnostic: Box::new(Diagnostic::error(
                "mlx::run::io",
                format!("cannot write {}: {e}", path.display()),
            )),
            dir: Some(dir.clone()),
        })?;
    }
    let n = s.trains.len();
    let jobs = jobs.clamp(1, n.max(1));
    let parallel = jobs > 1;
    let trial_opts = Options {
        out: dir.join(rundir::TRIALS),
        progress: opts.progress && !parallel,
        verbose: opts.verbose && !parallel,
        threads: if parallel {
            Some(
                opts.threads
                    .unwrap_or_else(crate::backend::cpu::default_threads)
                    .div_ceil(jobs),
            )
        } else {
            opts.threads
        },
        ..opts.clone()
    };
    let results: Vec<Mutex<Option<Result<Outcome, Failure>>>> =
        (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let worker = || {
        // Trials start in order; after a failure no new one starts.
        while !failed.load(Ordering::SeqCst) {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= n {
                break;
            }
            let point = point_text(&s.points[i]);
            if opts.verbose {
                let verb = if parallel { " started" } else { "" };
                eprintln!("sweep `{}` trial {}/{n}{verb}: {point}", s.name, i + 1);
            }
            let t0 = Instant::now();
            // A scheduler could be running one of these trials (`mlx run --trial`) as well.
            let r = lock_trial(&dir, s, i + 1, "mlx run")
                .map_err(Failure::from)
                .and_then(|_mine| run::train(ctx, &s.trains[i], &trial_opts));
            if parallel && opts.verbose {
                let what = match &r {
                    Ok(o) => match objective(s, &o.summary) {
                        Some(v) => format!("{} {v:.4}", s.objective.name()),
                        None => format!("no {}", s.objective.name()),
                    },
                    Err(f) => format!("failed: {}", f.diagnostic.message),
                };
                eprintln!(
                    "sweep `{}` trial {}/{n} finished: {what} ({:.1} s)",
                    s.name,
                    i + 1,
                    t0.elapsed().as_secs_f64()
                );
            }
            if r.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            if let Ok(mut slot) = results[i].lock() {
                *slot = Some(r);
            }
        }
    };
    if parallel {
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(worker);
            }
        });
    } else {
        worker();
    }

    let results: Vec<Option<Result<Outcome, Failure>>> = results
        .into_iter()
        .map(|slot| slot.into_inner().ok().flatten())
        .collect();
    finish(s, &dir, results, opts.verbose)
}

/// `sweep.json` from the trials' outcomes, in trial order (a trial that never started follows a
/// failed one, whose failure is returned), and the end-of-sweep table when `verbose`.
pub fn finish(
    s: &SweepPlan,
    dir: &Path,
    results: Vec<Option<Result<Outcome, Failure>>>,
    verbose: bool,
) -> Result<PathBuf, Failure> {
    let n = s.trains.len();
    let mut done = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Some(Ok(out)) => done.push(Trial::Done(Box::new(out))),
            Some(Err(f)) => {
                let d = (*f.diagnostic).with_note(format!(
                    "in sweep `{}` trial {}/{n}: {}",
                    s.name,
                    i + 1,
                    point_text(&s.points[i])
                ));
                return Err(Failure {
                    diagnostic: Box::new(d),
                    dir: Some(dir.to_path_buf()),
                });
            }
            // Trials start in order, so one that never started follows a failed one.
            None => done.push(Trial::Missing),
        }
    }
    let doc = document(s, done);
    write(dir, &doc)?;
    if verbose {
        eprintln!("{}", table(s, &doc));
    }
    Ok(dir.to_path_buf())
}

/// What became of one trial of a sweep.
pub enum Trial {
    Done(Box<Outcome>),
    /// Its run stopped with an error.
    Failed {
        dir: PathBuf,
        error: String,
    },
    /// A directory that has not finished: running, or killed.
    Incomplete(PathBuf),
    /// No directory of its program.
    Missing,
}

/// The sweep's document: every trial in trial order (those not completed with their status),
/// and the best completed one by the objective.
pub fn document(s: &SweepPlan, results: Vec<Trial>) -> SweepDoc {
    let mut trials = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for (i, r) in results.into_iter().enumerate() {
        let point: std::collections::BTreeMap<String, Value> = s.points[i]
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut entry = TrialEntry {
            trial: Some(i + 1),
            point,
            ..TrialEntry::default()
        };
        match r {
            Trial::Done(out) => {
                let value = objective(s, &out.summary);
                if let Some(v) = value {
                    let better = match best {
                        None => true,
                        Some((_, b)) => (s.maximize && v > b) || (!s.maximize && v < b),
                    };
                    if better {
                        best = Some((trials.len(), v));
                    }
                }
                entry.objective = value;
                entry.dir = out.dir.as_ref().map(|d| d.display().to_string());
                entry.summary = Some(out.summary);
            }
            Trial::Failed { dir, error } => {
                entry.dir = Some(dir.display().to_string());
                entry.status = Some(TrialStatus::Failed);
                entry.error = Some(error);
            }
            Trial::Incomplete(dir) => {
                entry.dir = Some(dir.display().to_string());
                entry.status = Some(TrialStatus::Incomplete);
            }
            Trial::Missing => entry.status = Some(TrialStatus::Missing),
        }
        trials.push(entry);
    }
    let best = best.map(|(k, v)| BestTrial {
        trial: trials[k].trial.unwrap_or(k + 1),
        point: trials[k].point.clone(),
        objective: Some(v),
        dir: trials[k].dir.clone(),
    });
    SweepDoc {
        format: rundir::FORMAT,
        sweep: s.name.clone(),
        base: s.base.clone(),
        objective: s.objective.name(),
        direction: if s.maximize {
            Direction::Maximize
        } else {
            Direction::Minimize
        },
        trials,
        best,
    }
}

/// Write `sweep.json` into the sweep's directory, atomically.
pub fn write(dir: &Path, doc: &SweepDoc) -> Result<(), Failure> {
    rundir::write_doc(&dir.join(rundir::SWEEP), doc).map_err(|e| Failure {
        diagnostic: Box::new(Diagnostic::error(
            "mlx::run::io",
            format!("cannot write sweep.json: {e}"),
        )),
        dir: Some(dir.to_path_buf()),
    })
}

/// The sweep's resolved program (`sweep.mlx`): the base train as its runs write it (imports
/// inlined, `--set` applied, defaults filled in) and the sweep block, so checking it again
/// gives the same points. `None` when the base train or the block cannot be found.
pub fn sweep_text(ctx: &Context<'_>, s: &SweepPlan) -> Option<String> {
    let base = ctx.program.trains.iter().find(|t| t.name == s.base)?;
    let block = ctx
        .modules
        .iter()
        .flat_map(|m| &m.items)
        .find(|i| matches!(i, ast::Item::Sweep(w) if w.name.name == s.name))?;
    let mut text = super::resolve::spec_text(ctx.sources, ctx.modules, ctx.overrides, &[base]);
    text.push('\n');
    crate::syntax::print::item(&mut text, block);
    Some(text)
}

/// The end-of-sweep table: one row per trial, the best marked.
pub fn table(s: &SweepPlan, doc: &SweepDoc) -> String {
    let keys: Vec<String> = s
        .points
        .first()
        .map(|p| p.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let best = doc.best.as_ref().map(|b| b.trial);
    let mut out = format!(
        "sweep `{}` ({} {}):\n",
        s.name,
        match doc.direction {
            Direction::Maximize => "maximize",
            Direction::Minimize => "minimize",
        },
        s.objective.name()
    );
    out.push_str(&format!("  {:>5}  ", "trial"));
    for k in &keys {
        out.push_str(&format!("{k:>14}  "));
    }
    out.push_str(&format!("{:>14}\n", s.objective.name()));
    for t in &doc.trials {
        let n = t.trial.unwrap_or(0);
        out.push_str(&format!(
            "{} {:>5}  ",
            if Some(n) == best { "*" } else { " " },
            n
        ));
        for k in &keys {
            let v = t
                .point
                .get(k)
                .map(rundir::docs::point_text)
                .unwrap_or_default();
            out.push_str(&format!("{v:>14}  "));
        }
        match (t.objective, t.status) {
            (Some(v), _) => out.push_str(&format!("{v:>14.4}\n")),
            (None, Some(status)) => out.push_str(&format!("{:>14}\n", status.word())),
            (None, None) => out.push_str(&format!("{:>14}\n", "-")),
        }
    }
    if let Some(b) = best {
        out.push_str(&format!("best: trial {b}"));
    }
    out
}
