//! `mlx resume`: takes a run directory and reopens the run from what it holds (its own
//! `spec.mlx`, the seed and back end of its `mlx.lock`, its checkpoint); gives the finished run.
//! It first checks the directory against its lock and refuses to go on when a data file, the
//! mlx version or `spec.mlx` changed: the result would no longer be the recorded experiment's.

use crate::backend::BackendKind;
use crate::check::hir::{self, TrainPlan};
use crate::diagnostics::{Diagnostic, Severity};
use crate::driver::{self, Checked};
use crate::source::SourceMap;
use crate::train::checkpoint;
use crate::train::lock::{self, Lock};
use crate::train::run::{self, Context, Options};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Sources (for rendering) and every diagnostic.
type Failed = (SourceMap, Vec<Diagnostic>);

fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

/// A run directory reopened: its lock and the back end it names.
struct Opened {
    dir: PathBuf,
    lock: Lock,
    backend: BackendKind,
}

fn open(dir: &Path) -> Result<Opened, Failed> {
    if !dir.is_dir() {
        return Err(fail(
            Diagnostic::error(
                "mlx::rundir::missing",
                format!("there is no run directory {}", dir.display()),
            )
            .with_help("give the directory `mlx run` printed as its last line"),
        ));
    }
    if dir.join("sweep.json").is_file() || dir.join("trials").is_dir() {
        return Err(fail(
            Diagnostic::error(
                "mlx::rundir::missing",
                format!(
                    "{} is a sweep directory, not a run directory",
                    dir.display()
                ),
            )
            .with_help(format!(
                "give one of its trials: {}",
                dir.join("trials")
                    .join("<train>")
                    .join("<run-id>")
                    .display()
            )),
        ));
    }
    let lock = lock::read(dir).map_err(fail)?;
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
        let mut checked = driver::check_file(&self.dir.join("spec.mlx"), &[]);
        if !checked.ok() {
            checked.diags.retain(Diagnostic::is_error);
            return Err((checked.sources, checked.diags));
        }
        Ok(checked)
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

fn context<'a>(checked: &'a Checked, program: &'a hir::Program) -> Context<'a> {
    Context {
        sources: &checked.sources,
        modules: &checked.modules,
        overrides: &checked.overrides,
        program,
    }
}

fn summary(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn completed(summary: Option<&Value>) -> bool {
    summary
        .and_then(|s| s.get("status"))
        .and_then(Value::as_str)
        == Some("completed")
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
    match resume_inner(dir, opts) {
        Ok((diags, dir)) => (SourceMap::new(), diags, dir),
        Err((sources, diags)) => (sources, diags, None),
    }
}

fn resume_inner(
    dir: &Path,
    opts: &ResumeOptions,
) -> Result<(Vec<Diagnostic>, Option<PathBuf>), Failed> {
    let opened = open(dir)?;
    let s = summary(dir);
    if completed(s.as_ref()) {
        let epochs = s
            .as_ref()
            .and_then(|s| s.get("epochs_run"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let d = Diagnostic {
            severity: Severity::Advice,
            ..Diagnostic::error(
                "mlx::resume::completed",
                format!(
                    "the run in {} already completed ({epochs} epochs); there is nothing to resume",
                    dir.display()
                ),
            )
        };
        return Ok((vec![d], Some(dir.to_path_buf())));
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
                diags.extend(crate::commands::plot_warning(dir));
            }
            Ok((diags, o.dir))
        }
        Err(f) => {
            diags.push(*f.diagnostic);
            Err((checked.sources.clone(), diags))
        }
    }
}
