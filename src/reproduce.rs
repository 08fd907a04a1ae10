//! `mlx resume` and `mlx verify`: takes a run directory and reopens the run from what it
//! holds (its own `spec.mlx`, the seed and back end of its `mlx.lock`, its checkpoint); gives
//! the finished run (resume), or a verdict on whether re-running the recorded experiment gives
//! the recorded figures and model bit for bit (verify). Both first check the directory against
//! its lock and refuse to go on when a data file, the mlx version or `spec.mlx` changed: the
//! result would no longer be the recorded experiment's.

use crate::backend::BackendKind;
use crate::check::hir::{self, TrainPlan};
use crate::diagnostics::{Diagnostic, Severity};
use crate::driver::{self, Checked};
use crate::rundir::lock::{self, Lock};
use crate::rundir::{self, Summary};
use crate::source::SourceMap;
use crate::train::checkpoint;
use crate::train::run::{self, Context, Options};
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Sources (for rendering) and every diagnostic.
pub type Failed = (SourceMap, Vec<Diagnostic>);

fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

/// Summary and metrics fields that measure time, not results: never compared.
const TIMING: &[&str] = &["samples_per_second", "wall_seconds", "seconds"];

/// A run directory reopened: its lock and the back end it names.
struct Opened {
    dir: PathBuf,
    lock: Lock,
    backend: BackendKind,
}

fn open(dir: &Path) -> Result<Opened, Failed> {
    let run = rundir::open(dir)
        .and_then(rundir::RunDir::require_run)
        .map_err(fail)?;
    let lock = run.lock().map_err(fail)?;
    let backend: BackendKind = lock.backend.parse().map_err(|e: String| {
        fail(Diagnostic::error(
            "mlx::rundir::corrupt",
            format!("{}: {e}", dir.join(lock::FILE).display()),
        ))
    })?;
    Ok(Opened {
        dir: dir.to_path_buf(),
        lock,
        backend,
    })
}

impl Opened {
    /// `spec.mlx`, checked again (after the lock: a changed data file is reported as such,
    /// not as whatever the checker makes of its new content). Its warnings were shown when
    /// the run was made; only errors are reported again.
    fn recheck(&self) -> Result<Checked, Failed> {
        recheck(&self.dir.join(rundir::SPEC))
    }

    /// The program and its one train (a run's `spec.mlx` declares exactly one).
    fn plan<'c>(&self, checked: &'c Checked) -> Result<(&'c hir::Program, &'c TrainPlan), Failed> {
        let program = checked
            .program
            .as_ref()
            .ok_or_else(|| fail(Diagnostic::internal("a checked run without a program")))?;
        let [plan] = program.trains.as_slice() else {
            return Err(fail(Diagnostic::error(
                "mlx::rundir::corrupt",
                format!(
                    "{} declares {} trains; a run's spec.mlx declares one",
                    self.dir.join("spec.mlx").display(),
                    program.trains.len()
                ),
            )));
        };
        if plan.seed != self.lock.seed {
            return Err(fail(Diagnostic::error(
                "mlx::rundir::corrupt",
                format!(
                    "spec.mlx says seed {}, but {} recorded seed {}",
                    plan.seed,
                    lock::FILE,
                    self.lock.seed
                ),
            )));
        }
        Ok((program, plan))
    }

    /// `mlx.lock` against the directory and the data; `because` says what is refused.
    fn check_lock(&self, because: &str) -> Result<(), Failed> {
        let mut diags = lock::check(&self.dir, &self.lock);
        if diags.is_empty() {
            return Ok(());
        }
        for d in &mut diags {
            if d.help.is_none() {
                d.help = Some(because.to_string());
            }
        }
        Err((SourceMap::new(), diags))
    }
}

/// A program a directory recorded (`spec.mlx`, `sweep.mlx`), checked again. Its warnings
/// were shown when it was recorded; only errors are reported again.
pub fn recheck(path: &Path) -> Result<Checked, Failed> {
    let mut checked = driver::check_file(path, &[]);
    if !checked.ok() {
        checked.diags.retain(Diagnostic::is_error);
        return Err((checked.sources, checked.diags));
    }
    Ok(checked)
}

fn context<'a>(checked: &'a Checked, program: &'a hir::Program) -> Context<'a> {
    Context {
        sources: &checked.sources,
        modules: &checked.modules,
        overrides: &checked.overrides,
        program,
        schemas: &checked.schemas,
    }
}

/// The run's summary; none while it has not ended (a corrupt one counts as none: the run is
/// resumed or refused by its checkpoint and lock, which say more).
fn summary(dir: &Path) -> Option<Summary> {
    rundir::read_doc(&dir.join(rundir::SUMMARY)).ok()
}

fn completed(summary: Option<&Summary>) -> bool {
    summary.is_some_and(Summary::completed)
}

pub struct ResumeOptions {
    pub progress: bool,
    pub verbose: bool,
    pub plot: bool,
}

/// `mlx resume`: finish the run in `dir` from its newest valid checkpoint. Returns the
/// sources, every diagnostic (warnings for skipped corrupt checkpoints, an advice when the run
/// had already completed) and the run directory when it is complete.
pub fn resume(dir: &Path, opts: &ResumeOptions) -> (SourceMap, Vec<Diagnostic>, Option<PathBuf>) {
    reported(resume_inner(dir, opts))
}

/// A command's result as `main` reports it: the sources (of a failure), every diagnostic, and
/// the directory to print.
pub(crate) fn reported(
    r: Result<(Vec<Diagnostic>, Option<PathBuf>), Failed>,
) -> (SourceMap, Vec<Diagnostic>, Option<PathBuf>) {
    match r {
        Ok((diags, dir)) => (SourceMap::new(), diags, dir),
        Err((sources, diags)) => (sources, diags, None),
    }
}

fn resume_inner(
    dir: &Path,
    opts: &ResumeOptions,
) -> Result<(Vec<Diagnostic>, Option<PathBuf>), Failed> {
    if rundir::open(dir).is_ok_and(|r| r.is_sweep()) {
        return resume_sweep(dir, opts);
    }
    resume_run(dir, opts)
}

/// `mlx resume RUN_DIR` for a run (not a sweep): the diagnostics and the run's directory.
pub fn resume_run(
    dir: &Path,
    opts: &ResumeOptions,
) -> Result<(Vec<Diagnostic>, Option<PathBuf>), Failed> {
    let opened = open(dir)?;
    let _writing = rundir::lock_for_writing(dir, "mlx resume").map_err(fail)?;
    let s = summary(dir);
    if completed(s.as_ref()) {
        let epochs = s.as_ref().and_then(|s| s.epochs_run).unwrap_or(0);
        let mut diags = Vec::new();
        // A completed run whose plots were lost (or never drawn) gets them again.
        if opts.plot && !dir.join("loss.svg").is_file() {
            diags.extend(crate::plot::warning(dir));
        }
        let d = Diagnostic {
            severity: Severity::Advice,
            ..Diagnostic::error(
                "mlx::resume::completed",
                format!(
                    "the run in {} already completed ({epochs} epoch{}); there is nothing to resume",
                    dir.display(),
                    if epochs == 1 { "" } else { "s" }
                ),
            )
        };
        diags.push(d);
        return Ok((diags, Some(dir.to_path_buf())));
    }
    opened.check_lock(
        "a resumed run must finish the recorded experiment, so nothing was resumed; restore it, or start a new run with `mlx run`",
    )?;
    let checked = opened.recheck()?;
    let (program, plan) = opened.plan(&checked)?;
    let mut diags = Vec::new();
    let from = match checkpoint::load(dir) {
        Ok(Some(l)) => {
            for why in &l.skipped {
                diags.push(Diagnostic::warning(
                    "mlx::rundir::checkpoint",
                    format!(
                        "{why}; resuming from {} (epoch {}) instead",
                        l.path.display(),
                        l.checkpoint.progress.epoch
                    ),
                ));
            }
            Some(l.checkpoint)
        }
        Ok(None) => None,
        Err(reasons) => {
            let mut d = Diagnostic::error(
                "mlx::rundir::corrupt",
                format!("every checkpoint in {} is corrupt", dir.display()),
            )
            .with_help(format!(
                "delete {} and {} to run it again from its first epoch with `mlx resume`",
                checkpoint::LATEST,
                checkpoint::PREVIOUS
            ));
            for r in reasons {
                d = d.with_note(r);
            }
            return Err(fail(d));
        }
    };
    let ropts = Options {
        progress: opts.progress,
        verbose: opts.verbose,
        ..Options::new(opened.backend, dir.to_path_buf())
    };
    let ctx = context(&checked, program);
    match run::resume(&ctx, plan, &ropts, dir, from) {
        Ok(o) => {
            if opts.plot {
                diags.extend(crate::plot::warning(dir));
            }
            Ok((diags, o.dir))
        }
        Err(f) => {
            diags.push(*f.diagnostic);
            Err((checked.sources.clone(), diags))
        }
    }
}

/// `mlx resume SWEEP_DIR`: check the sweep's `sweep.mlx` again (the same points), match each
/// point to its trial directory by the trial's `spec.mlx`, keep the completed trials, resume
/// the interrupted ones from their checkpoints, run the missing ones, and write `sweep.json`
/// as the uninterrupted sweep would have.
fn resume_sweep(
    dir: &Path,
    opts: &ResumeOptions,
) -> Result<(Vec<Diagnostic>, Option<PathBuf>), Failed> {
    let _writing = rundir::lock_for_writing(dir, "mlx resume").map_err(fail)?;
    // A sweep.json of `mlx sweep collect` may list trials that have not completed.
    let collected = rundir::read_doc::<rundir::SweepDoc>(&dir.join(rundir::SWEEP));
    if collected.is_ok_and(|d| d.trials.iter().all(rundir::TrialEntry::completed)) {
        let d = Diagnostic {
            severity: Severity::Advice,
            ..Diagnostic::error(
                "mlx::resume::completed",
                format!(
                    "the sweep in {} already completed (it has its {}); there is nothing to resume",
                    dir.display(),
                    rundir::SWEEP
                ),
            )
        };
        return Ok((vec![d], Some(dir.to_path_buf())));
    }
    let spec = dir.join(rundir::SWEEP_SPEC);
    if !spec.is_file() {
        return Err(fail(
            Diagnostic::error(
                "mlx::rundir::missing",
                format!(
                    "{} has no {}: it was made by an mlx that did not record a sweep's program",
                    dir.display(),
                    rundir::SWEEP_SPEC
                ),
            )
            .with_help(
                "resume its trials one by one (`mlx resume TRIAL_DIR`), or run the sweep again",
            ),
        ));
    }
    let checked = recheck(&spec)?;
    let program = checked
        .program
        .as_ref()
        .ok_or_else(|| fail(Diagnostic::internal("a checked sweep without a program")))?;
    let [s] = program.sweeps.as_slice() else {
        return Err(fail(Diagnostic::error(
            "mlx::rundir::corrupt",
            format!(
                "{} declares {} sweeps; a sweep directory's declares one",
                spec.display(),
                program.sweeps.len()
            ),
        )));
    };
    let mut located = crate::trials::locate(dir, &checked, s)?;
    let ctx = context(&checked, program);
    let trial_opts = Options {
        progress: opts.progress,
        verbose: opts.verbose,
        ..Options::new(backend_of(&located), dir.join(rundir::TRIALS))
    };
    let n = s.trains.len();
    let mut diags = Vec::new();
    let mut results = Vec::new();
    for (i, plan) in s.trains.iter().enumerate() {
        // A scheduler may be running trials of this sweep (`mlx run --trial`) meanwhile.
        let _trial = crate::train::sweep::lock_trial(dir, s, i + 1, "mlx resume").map_err(fail)?;
        let r = match located[i].take() {
            Some(trial) if completed(summary(&trial).as_ref()) => {
                if opts.verbose {
                    eprintln!(
                        "sweep `{}` trial {}/{n}: completed in {}",
                        s.name,
                        i + 1,
                        trial.display()
                    );
                }
                Ok(crate::train::run::Outcome {
                    summary: summary(&trial).unwrap_or_default(),
                    dir: Some(trial),
                })
            }
            Some(trial) => {
                if opts.verbose {
                    eprintln!(
                        "sweep `{}` trial {}/{n}: resuming {}",
                        s.name,
                        i + 1,
                        trial.display()
                    );
                }
                match resume_inner(&trial, opts) {
                    Ok((ds, _)) => {
                        diags.extend(ds);
                        match summary(&trial) {
                            Some(sm) => Ok(crate::train::run::Outcome {
                                summary: sm,
                                dir: Some(trial),
                            }),
                            None => Err(crate::train::run::Failure {
                                diagnostic: Box::new(Diagnostic::internal(
                                    "a resumed trial without a summary",
                                )),
                                dir: Some(trial),
                            }),
                        }
                    }
                    Err((sources, ds)) => return Err((sources, [diags, ds].concat())),
                }
            }
            None => {
                if opts.verbose {
                    eprintln!("sweep `{}` trial {}/{n}: starting", s.name, i + 1);
                }
                run::train(&ctx, plan, &trial_opts)
            }
        };
        let failed = r.is_err();
        results.push(Some(r));
        if failed {
            break;
        }
    }
    results.resize_with(n, || None);
    match crate::train::sweep::finish(s, dir, results, opts.verbose) {
        Ok(d) => {
            if opts.plot {
                diags.extend(crate::plot::warning(&d));
            }
            Ok((diags, Some(d)))
        }
        Err(f) => {
            diags.push(*f.diagnostic);
            Err((checked.sources.clone(), diags))
        }
    }
}

/// The back end the sweep's trials recorded (the CPU's when none has a lock yet).
fn backend_of(trials: &[Option<PathBuf>]) -> BackendKind {
    trials
        .iter()
        .flatten()
        .find_map(|p| {
            rundir::open(p)
                .ok()?
                .lock()
                .ok()?
                .backend
                .parse::<BackendKind>()
                .ok()
        })
        .unwrap_or(BackendKind::Auto)
}

/// `mlx verify`: the report (standard output) and the diagnostics; an error among them means
/// the run could not be verified or does not reproduce.
/// `progress` draws progress bars while the experiment is re-run.
pub fn verify(dir: &Path, verbose: bool, progress: bool) -> (SourceMap, Vec<Diagnostic>, String) {
    let mut text = String::new();
    match verify_inner(dir, verbose, progress, &mut text) {
        Ok(diags) => (SourceMap::new(), diags, text),
        Err((sources, diags)) => (sources, diags, text),
    }
}

fn verify_inner(
    dir: &Path,
    verbose: bool,
    progress: bool,
    text: &mut String,
) -> Result<Vec<Diagnostic>, Failed> {
    let opened = open(dir)?;
    let recorded = summary(dir);
    if !completed(recorded.as_ref()) {
        return Err(fail(
            Diagnostic::error(
                "mlx::rundir::incomplete",
                format!(
                    "the run in {} did not complete, so there is nothing to verify",
                    dir.display()
                ),
            )
            .with_help(format!(
                "finish it first with `mlx resume {}`",
                dir.display()
            )),
        ));
    }
    opened.check_lock(
        "verify repeats only the recorded experiment, so nothing was re-run; restore it, or start a new run with `mlx run`",
    )?;
    let lock = &opened.lock;
    let _ = writeln!(
        text,
        "lock: program {}, {} data file{} unchanged, mlx {}, back end {}, seed {}",
        lock.program.get(..19).unwrap_or(&lock.program),
        lock.data.len(),
        if lock.data.len() == 1 { "" } else { "s" },
        lock.mlx,
        lock.backend,
        lock.seed
    );
    let checked = opened.recheck()?;
    let (program, plan) = opened.plan(&checked)?;
    // A private directory with a random name, removed on every way out but a mismatch.
    let tmp = rundir::TempDir::new("mlx-verify-").map_err(|e| {
        fail(Diagnostic::error(
            "mlx::run::io",
            format!("cannot create a temporary directory for the re-run: {e}"),
        ))
    })?;
    if verbose {
        eprintln!(
            "re-running `{}` (seed {}, back end {}) in {}",
            plan.name,
            plan.seed,
            lock.backend,
            tmp.path().display()
        );
    }
    let ropts = Options {
        progress,
        ..Options::new(opened.backend, tmp.path().to_path_buf())
    };
    let ctx = context(&checked, program);
    let again = run::train(&ctx, plan, &ropts)
        .map_err(|f| (checked.sources.clone(), vec![*f.diagnostic]))?;
    let Some(rerun) = again.dir else {
        return Err(fail(Diagnostic::internal("the re-run has no directory")));
    };
    let mut diffs = Vec::new();
    compare(dir, &rerun, text, &mut diffs);
    if diffs.is_empty() {
        drop(tmp);
        let _ = writeln!(
            text,
            "verified: re-running {} reproduces it bit for bit",
            dir.display()
        );
        return Ok(Vec::new());
    }
    tmp.keep();
    let _ = writeln!(
        text,
        "NOT verified: the re-run differs from the recorded run"
    );
    let mut d = Diagnostic::error(
        "mlx::verify::mismatch",
        format!(
            "re-running {} does not reproduce it: {}",
            dir.display(),
            diffs
                .iter()
                .map(|(what, _)| what.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .with_help(format!(
        "the re-run is kept in {} for inspection",
        rerun.display()
    ));
    for (_, lines) in diffs {
        for l in lines.into_iter().take(8) {
            d = d.with_note(l);
        }
    }
    Err(fail(d))
}

/// Compare the recorded run `a` with the re-run `b`: one report line per file, and each
/// differing file with its differences.
fn compare(a: &Path, b: &Path, text: &mut String, diffs: &mut Vec<(String, Vec<String>)>) {
    let mut file = |name: &str, found: Result<(String, Vec<String>), String>| {
        let lines = match found {
            Ok((ok, lines)) if lines.is_empty() => {
                let _ = writeln!(text, "{name}: identical{ok}");
                return;
            }
            Ok((_, lines)) => lines,
            Err(why) => vec![why],
        };
        let _ = writeln!(
            text,
            "{name}: DIFFERS ({} difference{})",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        );
        diffs.push((name.to_string(), lines));
    };
    file(
        "program",
        json_file(a, b, lock::FILE).map(|(va, vb)| {
            let mut out = Vec::new();
            json_diff("program", &va["program"], &vb["program"], &mut out);
            (" (spec.mlx re-resolves to the locked hash)".into(), out)
        }),
    );
    file(
        rundir::SUMMARY,
        json_file(a, b, rundir::SUMMARY).map(|(va, vb)| {
            let mut out = Vec::new();
            json_diff("", &va, &vb, &mut out);
            (" (timing fields excepted)".into(), out)
        }),
    );
    file(rundir::METRICS, metrics(a, b));
    for name in [rundir::PREPROCESS, rundir::INPUT, rundir::SOURCES] {
        file(
            name,
            json_file(a, b, name).map(|(va, vb)| {
                let mut out = Vec::new();
                json_diff("", &va, &vb, &mut out);
                (String::new(), out)
            }),
        );
    }
    file(rundir::MODEL, bytes(a, b, rundir::MODEL));
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let p = dir.join(name);
    std::fs::read(&p).map_err(|e| {
        format!(
            "cannot read {}: {}",
            p.display(),
            crate::data::csv::io_message(&e)
        )
    })
}

fn parse(dir: &Path, name: &str, bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes)
        .map_err(|e| format!("{} is not valid JSON: {e}", dir.join(name).display()))
}

fn json_file(a: &Path, b: &Path, name: &str) -> Result<(Value, Value), String> {
    Ok((
        parse(a, name, &read(a, name)?)?,
        parse(b, name, &read(b, name)?)?,
    ))
}

fn bytes(a: &Path, b: &Path, name: &str) -> Result<(String, Vec<String>), String> {
    let (x, y) = (read(a, name)?, read(b, name)?);
    if x == y {
        return Ok((format!(" ({} bytes)", x.len()), Vec::new()));
    }
    let what = match rundir::load_safetensors(&b.join(name)) {
        Ok((tb, _)) => match rundir::load_safetensors(&a.join(name)) {
            Ok((ta, _)) => tensor_diff(&ta, &tb),
            Err(e) => vec![e],
        },
        Err(e) => vec![e],
    };
    Ok((String::new(), what))
}

/// Which tensors differ, and where first.
fn tensor_diff(a: &[rundir::NamedTensor], b: &[rundir::NamedTensor]) -> Vec<String> {
    let mut out = Vec::new();
    for t in a {
        match b.iter().find(|u| u.name == t.name) {
            None => out.push(format!("tensor `{}` is missing from the re-run", t.name)),
            Some(u) if u.shape != t.shape => out.push(format!(
                "tensor `{}`: shape {:?} recorded, {:?} re-run",
                t.name, t.shape, u.shape
            )),
            Some(u) => {
                let differing: Vec<usize> = (0..t.data.len())
                    .filter(|&i| t.data[i].to_bits() != u.data[i].to_bits())
                    .collect();
                if let Some(&i) = differing.first() {
                    out.push(format!(
                        "tensor `{}`: {} of {} values differ (first at {i}: {} recorded, {} re-run)",
                        t.name,
                        differing.len(),
                        t.data.len(),
                        t.data[i],
                        u.data[i]
                    ));
                }
            }
        }
    }
    for u in b {
        if !a.iter().any(|t| t.name == u.name) {
            out.push(format!("tensor `{}` appears only in the re-run", u.name));
        }
    }
    if out.is_empty() {
        out.push("the tensors are equal but the files' bytes differ (metadata)".into());
    }
    out
}

fn metrics(a: &Path, b: &Path) -> Result<(String, Vec<String>), String> {
    let name = rundir::METRICS;
    let (x, y) = (read(a, name)?, read(b, name)?);
    let lines = |bytes: &[u8], dir: &Path| -> Result<Vec<Value>, String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse(dir, name, l.as_bytes()))
            .collect()
    };
    let (la, lb) = (lines(&x, a)?, lines(&y, b)?);
    let mut out = Vec::new();
    if la.len() != lb.len() {
        out.push(format!(
            "{} epochs recorded, {} in the re-run",
            la.len(),
            lb.len()
        ));
    }
    for (i, (va, vb)) in la.iter().zip(&lb).enumerate() {
        json_diff(&format!("line {}", i + 1), va, vb, &mut out);
    }
    Ok((format!(" ({} epochs; seconds excepted)", la.len()), out))
}

/// Every difference between two JSON values, as `path: recorded A, re-run B`; timing fields
/// are skipped.
fn json_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                if TIMING.contains(&k.as_str()) {
                    continue;
                }
                match y.get(k) {
                    Some(vb) => json_diff(&join(k), va, vb, out),
                    None => out.push(format!("{}: missing from the re-run", join(k))),
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) && !TIMING.contains(&k.as_str()) {
                    out.push(format!("{}: only in the re-run", join(k)));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: recorded {a}, re-run {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_differences_name_their_path_and_skip_timing() {
        let a = json!({"val": {"loss": 0.5, "accuracy": 1.0}, "wall_seconds": 3.0,
                       "folds": [{"val": {"r2": 0.4}}], "epochs_run": 9});
        let b = json!({"val": {"loss": 0.5, "accuracy": 0.9}, "wall_seconds": 4.0,
                       "folds": [{"val": {"r2": 0.41}}], "epochs_run": 9});
        let mut out = Vec::new();
        json_diff("", &a, &b, &mut out);
        assert_eq!(
            out,
            vec![
                "folds[0].val.r2: recorded 0.4, re-run 0.41".to_string(),
                "val.accuracy: recorded 1.0, re-run 0.9".to_string(),
            ]
        );
    }
}
