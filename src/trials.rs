//! Sweep trials as units of work any scheduler can run (a Ray task, a Slurm array job, a shell
//! loop): `mlx run FILE --sweep NAME --trial K --out DIR` runs exactly trial K of the sweep
//! into the sweep's directory DIR, and `mlx sweep collect DIR` assembles `sweep.json` from the
//! trials found there. `mlx sweep list FILE` names the trials, for launchers.
//!
//! A trial is a pure function of the file, its data, the seed and K, so where and in which
//! order trials run does not change them. Trials find each other by their resolved program
//! (`spec.mlx`), as `mlx resume SWEEP_DIR` does, never by directory name; one process at a
//! time runs a trial (an advisory lock, `.trial-K.lock`, per trial), and a trial started again
//! after a kill resumes from its checkpoint.

use crate::backend::BackendKind;
use crate::check::hir::{self, SweepPlan};
use crate::diagnostics::{Diagnostic, Severity};
use crate::driver::{self, Checked};
use crate::reproduce::{self, Failed, ResumeOptions};
use crate::rundir::{self, Summary};
use crate::source::SourceMap;
use crate::train::run::{self, Context, Options, Outcome};
use crate::train::sweep::{self, Trial, lock_trial};
use serde_json::json;
use std::path::{Path, PathBuf};

fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

pub struct TrialOptions {
    pub backend: BackendKind,
    pub progress: bool,
    pub verbose: bool,
    pub plot: bool,
}

/// The sweep `name` of the checked root file, or its only sweep when no name is given.
pub fn select<'p>(
    program: &'p hir::Program,
    file: &Path,
    name: Option<&str>,
) -> Result<&'p SweepPlan, Diagnostic> {
    let roots: Vec<&SweepPlan> = program
        .root_sweeps
        .iter()
        .filter_map(|n| program.sweeps.iter().find(|s| &s.name == n))
        .collect();
    let names: Vec<&str> = roots.iter().map(|s| s.name.as_str()).collect();
    match name {
        Some(name) => roots
            .iter()
            .copied()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let d = Diagnostic::error(
                    "mlx::run::unknown_sweep",
                    format!("`{name}` is not a sweep of {}", file.display()),
                );
                if names.is_empty() {
                    d.with_help(format!("{} declares no sweep", file.display()))
                } else {
                    d.suggest_or(
                        name,
                        names.iter().copied(),
                        format!("its sweeps are: {}", names.join(", ")),
                    )
                }
            }),
        None => match roots.as_slice() {
            [s] => Ok(s),
            [] => Err(Diagnostic::error(
                "mlx::run::unknown_sweep",
                format!("{} declares no sweep", file.display()),
            )),
            _ => Err(Diagnostic::error(
                "mlx::run::unknown_sweep",
                format!(
                    "{} declares {} sweeps; name one with `--sweep`",
                    file.display(),
                    roots.len()
                ),
            )
            .with_help(format!("its sweeps are: {}", names.join(", ")))),
        },
    }
}

fn check(file: &Path, sets: &[String]) -> Result<Checked, Failed> {
    let checked = driver::check_file(file, sets);
    if !checked.ok() || checked.program.is_none() {
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

/// The trial directories under a sweep directory, with their resolved programs, sorted.
/// `.partial-…` staging directories (a trial being set up, or killed while it was) are not
/// trials.
pub fn found_trials(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found: Vec<(PathBuf, String)> = Vec::new();
    if let Ok(trains) = std::fs::read_dir(dir.join(rundir::TRIALS)) {
        for t in trains.flatten() {
            for r in std::fs::read_dir(t.path()).into_iter().flatten().flatten() {
                if r.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                if let Ok(text) = std::fs::read_to_string(r.path().join(rundir::SPEC)) {
                    found.push((r.path(), text));
                }
            }
        }
    }
    found.sort();
    found
}

/// A run's summary; none while it has not ended.
fn summary(dir: &Path) -> Option<Summary> {
    rundir::read_doc(&dir.join(rundir::SUMMARY)).ok()
}

/// For each point of the sweep, the directory of its trial, if any: the one whose `spec.mlx`
/// is the point's resolved program (a completed one first, where a trial was run twice).
/// Every trial directory found must still match its lock (its data unchanged): otherwise the
/// sweep would mix results of two experiments.
pub fn locate(
    dir: &Path,
    checked: &Checked,
    s: &SweepPlan,
) -> Result<Vec<Option<PathBuf>>, Failed> {
    let found = found_trials(dir);
    let mut hashes = rundir::lock::DataHashes::default();
    for (trial, _) in &found {
        if let Ok(lock) = rundir::open(trial).and_then(|r| r.lock()) {
            let problems = rundir::lock::check_with(trial, &lock, &mut hashes);
            if !problems.is_empty() {
                return Err((
                    SourceMap::new(),
                    problems
                        .into_iter()
                        .map(|d| {
                            d.with_help(format!(
                                "trial {} no longer matches its lock, so the sweep's trials were not used; restore it, or run the sweep again",
                                trial.display()
                            ))
                        })
                        .collect(),
                ));
            }
        }
    }
    Ok(s.trains
        .iter()
        .map(|plan| {
            let want = crate::train::resolve::spec_text(
                &checked.sources,
                &checked.modules,
                &checked.overrides,
                &[plan],
            );
            let mine: Vec<&PathBuf> = found
                .iter()
                .filter(|(_, text)| *text == want)
                .map(|(p, _)| p)
                .collect();
            mine.iter()
                .find(|p| summary(p).is_some_and(|s| s.completed()))
                .or(mine.first())
                .map(|p| (*p).clone())
        })
        .collect())
}

/// Make `dir` the directory of sweep `s`: create it and record the sweep's program
/// (`sweep.mlx`), or check that the program it records is this one.
fn claim(dir: &Path, ctx: &Context<'_>, s: &SweepPlan) -> Result<(), Diagnostic> {
    let io = |e: std::io::Error| {
        Diagnostic::error(
            "mlx::run::io",
            format!("cannot create the sweep directory {}: {e}", dir.display()),
        )
    };
    if rundir::is_run(dir) {
        return Err(Diagnostic::error(
            "mlx::run::out",
            format!(
                "{} is a run directory; `--trial` writes into a sweep's directory",
                dir.display()
            ),
        )
        .with_help("name a new or existing sweep directory with `--out`"));
    }
    rundir::fs_step();
    std::fs::create_dir_all(dir).map_err(io)?;
    let text = sweep::sweep_text(ctx, s)
        .ok_or_else(|| Diagnostic::internal("a checked sweep without its declaration"))?;
    let path = dir.join(rundir::SWEEP_SPEC);
    match std::fs::read_to_string(&path) {
        Ok(recorded) if recorded == text => Ok(()),
        Ok(_) => Err(Diagnostic::error(
            "mlx::run::out",
            format!(
                "{} holds the trials of another sweep: its {} differs from this program's sweep `{}`",
                dir.display(),
                rundir::SWEEP_SPEC,
                s.name
            ),
        )
        .with_help(
            "every trial of one sweep must be run from the same file, data and `--set`s; name another directory with `--out`",
        )),
        // Trials started at once all write the same text; the rename makes it whole.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            rundir::write_atomic(&path, text.as_bytes()).map_err(|e| {
                Diagnostic::error(
                    "mlx::run::io",
                    format!("cannot write {}: {e}", path.display()),
                )
            })
        }
        Err(e) => Err(Diagnostic::error(
            "mlx::run::io",
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// `mlx run FILE --sweep NAME --trial K --out DIR`: run trial `k` (1-based) of the sweep into
/// the sweep directory `dir`; resume it when a killed run of it is there; nothing to do when
/// it completed. Returns the sources, every diagnostic and the trial's run directory.
pub fn run_trial(
    file: &Path,
    sets: &[String],
    sweep_name: Option<&str>,
    k: usize,
    dir: &Path,
    opts: &TrialOptions,
) -> (SourceMap, Vec<Diagnostic>, Option<PathBuf>) {
    let checked = match check(file, sets) {
        Ok(c) => c,
        Err((sources, diags)) => return (sources, diags, None),
    };
    let mut diags = checked.diags.clone();
    match run_trial_inner(file, &checked, sweep_name, k, dir, opts) {
        Ok((ds, d)) => {
            diags.extend(ds);
            (checked.sources.clone(), diags, d)
        }
        Err(ds) => {
            diags.extend(ds);
            (checked.sources.clone(), diags, None)
        }
    }
}

fn run_trial_inner(
    file: &Path,
    checked: &Checked,
    sweep_name: Option<&str>,
    k: usize,
    dir: &Path,
    opts: &TrialOptions,
) -> Result<(Vec<Diagnostic>, Option<PathBuf>), Vec<Diagnostic>> {
    let program = checked
        .program
        .as_ref()
        .ok_or_else(|| vec![Diagnostic::internal("a checked file without a program")])?;
    let s = select(program, file, sweep_name).map_err(|d| vec![d])?;
    let n = s.trains.len();
    if k == 0 || k > n {
        return Err(vec![
            Diagnostic::error(
                "mlx::run::trial",
                format!("sweep `{}` has no trial {k}", s.name),
            )
            .with_help(format!(
                "its trials are 1 to {n} (`mlx sweep list {}` names them)",
                file.display()
            )),
        ]);
    }
    let ctx = context(checked, program);
    claim(dir, &ctx, s).map_err(|d| vec![d])?;
    let _mine = lock_trial(dir, s, k, &format!("mlx run --trial {k}")).map_err(|d| vec![d])?;
    let located = locate(dir, checked, s).map_err(|(_, ds)| ds)?;
    let plan = &s.trains[k - 1];
    let point = s.points[k - 1]
        .iter()
        .map(|(a, b)| format!("{a} = {b}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut diags = Vec::new();
    let trial_dir = match &located[k - 1] {
        Some(t) if summary(t).is_some_and(|s| s.completed()) => {
            diags.push(Diagnostic {
                severity: Severity::Advice,
                ..Diagnostic::error(
                    "mlx::resume::completed",
                    format!(
                        "trial {k}/{n} of sweep `{}` already completed in {}; there is nothing to run",
                        s.name,
                        t.display()
                    ),
                )
            });
            return Ok((diags, Some(t.clone())));
        }
        Some(t) => {
            if opts.verbose {
                eprintln!(
                    "sweep `{}` trial {k}/{n}: resuming {} ({point})",
                    s.name,
                    t.display()
                );
            }
            let ropts = ResumeOptions {
                progress: opts.progress,
                verbose: opts.verbose,
                plot: false,
            };
            let (ds, d) = reproduce::resume_run(t, &ropts).map_err(|(_, ds)| ds)?;
            diags.extend(ds);
            d.unwrap_or_else(|| t.clone())
        }
        None => {
            if opts.verbose {
                eprintln!("sweep `{}` trial {k}/{n}: {point}", s.name);
            }
            let topts = Options {
                progress: opts.progress,
                verbose: opts.verbose,
                ..Options::new(opts.backend, dir.join(rundir::TRIALS))
            };
            match run::train(&ctx, plan, &topts) {
                Ok(Outcome { dir: Some(d), .. }) => d,
                Ok(Outcome { dir: None, .. }) => {
                    return Err(vec![Diagnostic::internal("a trial without a directory")]);
                }
                Err(f) => {
                    return Err(vec![(*f.diagnostic).with_note(format!(
                        "in sweep `{}` trial {k}/{n}: {point}",
                        s.name
                    ))]);
                }
            }
        }
    };
    if opts.plot {
        diags.extend(crate::plot::warning(&trial_dir));
    }
    Ok((diags, Some(trial_dir)))
}

pub struct CollectOptions {
    pub verbose: bool,
    pub plot: bool,
}

/// `mlx sweep collect DIR`: check the sweep's recorded program again, find each point's trial
/// and write `sweep.json`: every trial in trial order, those not completed marked missing,
/// incomplete or failed, and the best completed one. Idempotent: the document depends only on
/// the trials' directories. An error names the trials that have not completed (the document
/// is written all the same).
pub fn collect(dir: &Path, opts: &CollectOptions) -> (SourceMap, Vec<Diagnostic>, Option<PathBuf>) {
    crate::reproduce::reported(collect_inner(dir, opts))
}

fn collect_inner(
    dir: &Path,
    opts: &CollectOptions,
) -> Result<(Vec<Diagnostic>, Option<PathBuf>), Failed> {
    let spec = dir.join(rundir::SWEEP_SPEC);
    if !spec.is_file() {
        let d = if dir.is_dir() {
            Diagnostic::error(
                "mlx::rundir::missing",
                format!(
                    "{} has no {}: it is not a sweep directory",
                    dir.display(),
                    rundir::SWEEP_SPEC
                ),
            )
            .with_help("name the directory given to `mlx run --trial K --out DIR`")
        } else {
            Diagnostic::error(
                "mlx::rundir::missing",
                format!("{} is not a directory", dir.display()),
            )
        };
        return Err(fail(d));
    }
    let _writing = rundir::lock_for_writing(dir, "mlx sweep collect").map_err(fail)?;
    let checked = reproduce::recheck(&spec)?;
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
    let located = locate(dir, &checked, s)?;
    let results: Vec<Trial> = located
        .into_iter()
        .map(|t| match t {
            None => Trial::Missing,
            Some(t) => match summary(&t) {
                Some(sm) if sm.completed() => Trial::Done(Box::new(Outcome {
                    summary: sm,
                    dir: Some(t),
                })),
                Some(sm) if sm.status == Some(rundir::Status::Failed) => Trial::Failed {
                    error: sm.error.unwrap_or_else(|| "failed".into()),
                    dir: t,
                },
                _ => Trial::Incomplete(t),
            },
        })
        .collect();
    let doc = sweep::document(s, results);
    sweep::write(dir, &doc).map_err(|f| fail(*f.diagnostic))?;
    if opts.verbose {
        eprintln!("{}", sweep::table(s, &doc));
    }
    let mut diags = Vec::new();
    if opts.plot {
        diags.extend(crate::plot::warning(dir));
    }
    let open: Vec<String> = doc
        .trials
        .iter()
        .filter_map(|t| {
            let status = t.status?;
            let k = t.trial.unwrap_or(0);
            Some(match &t.error {
                Some(e) => format!("trial {k} ({}: {e})", status.word()),
                None => format!("trial {k} ({})", status.word()),
            })
        })
        .collect();
    if !open.is_empty() {
        diags.push(
            Diagnostic::error(
                "mlx::sweep::incomplete",
                format!(
                    "sweep `{}`: {} of {} trials have not completed: {}",
                    s.name,
                    open.len(),
                    doc.trials.len(),
                    open.join(", ")
                ),
            )
            .with_help(format!(
                "run each with `mlx run FILE --sweep {} --trial K --out {}` (a killed one resumes), then collect again; {} lists what completed",
                s.name,
                dir.display(),
                rundir::SWEEP
            )),
        );
        return Err((SourceMap::new(), diags));
    }
    Ok((diags, Some(dir.to_path_buf())))
}

/// `mlx sweep list FILE`: the sweep's trials, one line each (`K<TAB>point`), or as JSON
/// (`{"sweep", "trials": [{"trial", "point"}]}`) for launchers.
pub fn list(
    file: &Path,
    sets: &[String],
    sweep_name: Option<&str>,
    as_json: bool,
) -> (SourceMap, Vec<Diagnostic>, String) {
    let checked = match check(file, sets) {
        Ok(c) => c,
        Err((sources, diags)) => return (sources, diags, String::new()),
    };
    let mut diags = checked.diags.clone();
    let Some(program) = checked.program.as_ref() else {
        return (checked.sources.clone(), diags, String::new());
    };
    let s = match select(program, file, sweep_name) {
        Ok(s) => s,
        Err(d) => {
            diags.push(d);
            return (checked.sources.clone(), diags, String::new());
        }
    };
    let text = if as_json {
        let trials: Vec<serde_json::Value> = s
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let point: serde_json::Map<String, serde_json::Value> = p
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                json!({"trial": i + 1, "point": point})
            })
            .collect();
        let mut t = serde_json::to_string_pretty(&json!({"sweep": s.name, "trials": trials}))
            .unwrap_or_default();
        t.push('\n');
        t
    } else {
        s.points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let point: Vec<String> = p.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{}\t{}\n", i + 1, point.join(", "))
            })
            .collect()
    };
    (checked.sources.clone(), diags, text)
}
