//! The commands behind the CLI, as library functions: `run`, `eval` and `ir` (`predict` is
//! `crate::predict::predict`, `serve` is `crate::serve::serve`). Each
//! returns its output and diagnostics; `main.rs` only renders and maps exit statuses.

use crate::backend::BackendKind;
use crate::check::hir::{self, TrainPlan};
use crate::data::stream::Part;
use crate::diagnostics::{Diagnostic, has_errors};
use crate::driver;
use crate::predict::Reopened;
use crate::source::SourceMap;
use crate::train::graph::{self, Spec};
use crate::train::run::{self, Context, Options};
use serde_json::json;
use std::path::{Path, PathBuf};

pub struct RunOptions {
    pub train: Option<String>,
    /// Run only this sweep.
    pub sweep: Option<String>,
    pub backend: BackendKind,
    pub out: PathBuf,
    pub progress: bool,
    pub verbose: bool,
    /// Sweep trials run at a time.
    pub jobs: usize,
    /// Draw the plots of every run and sweep when it ends.
    pub plot: bool,
    /// Where the shards of sharded trains are computed (`None`: the process's MPI job, if
    /// any, else this process alone).
    pub exchange: Option<std::sync::Arc<dyn crate::train::parallel::Exchange>>,
}

type Failed = (SourceMap, Vec<Diagnostic>);

/// `mlx run`: check, then train every train (or `--train NAME`) and run every sweep of the root
/// file. Returns the sources, every diagnostic, and the run directories written.
pub fn run(
    file: &Path,
    sets: &[String],
    opts: &RunOptions,
) -> (SourceMap, Vec<Diagnostic>, Vec<PathBuf>) {
    let checked = driver::check_file(file, sets);
    if !checked.ok() {
        return (checked.sources, checked.diags, Vec::new());
    }
    let Some(program) = checked.program.as_ref() else {
        return (checked.sources, checked.diags, Vec::new());
    };
    let mut diags = checked.diags.clone();
    let trains: Vec<&TrainPlan> = match &opts.train {
        None if opts.sweep.is_some() => Vec::new(),
        Some(name) => match program.trains.iter().find(|t| &t.name == name) {
            Some(t) => vec![t],
            None => {
                let names: Vec<&str> = program.trains.iter().map(|t| t.name.as_str()).collect();
                let mut d = Diagnostic::error(
                    "mlx::run::unknown_train",
                    format!("`{name}` is not a train of {}", file.display()),
                );
                d = d.suggest_or(
                    name,
                    names.iter().copied(),
                    format!("its trains are: {}", names.join(", ")),
                );
                diags.push(d);
                return (checked.sources, diags, Vec::new());
            }
        },
        None => program
            .root_trains
            .iter()
            .filter_map(|n| program.trains.iter().find(|t| &t.name == n))
            .collect(),
    };
    let sweeps: Vec<&hir::SweepPlan> = if opts.train.is_some() {
        Vec::new()
    } else if let Some(name) = &opts.sweep {
        match crate::trials::select(program, file, Some(name)) {
            Ok(s) => vec![s],
            Err(d) => {
                diags.push(d);
                return (checked.sources, diags, Vec::new());
            }
        }
    } else {
        program
            .root_sweeps
            .iter()
            .filter_map(|n| program.sweeps.iter().find(|s| &s.name == n))
            .collect()
    };
    if trains.is_empty() && sweeps.is_empty() {
        diags.push(
            Diagnostic::error(
                "mlx::run::nothing",
                format!("{} declares no `train` or `sweep` to run", file.display()),
            )
            .with_help(
                "trains and sweeps in imported files run only from the file that declares them",
            ),
        );
        return (checked.sources, diags, Vec::new());
    }
    let ctx = Context {
        sources: &checked.sources,
        modules: &checked.modules,
        overrides: &checked.overrides,
        program,
        schemas: &checked.schemas,
    };
    let ropts = Options {
        backend: opts.backend,
        out: opts.out.clone(),
        progress: opts.progress,
        verbose: opts.verbose,
        threads: None,
        exchange: opts.exchange.clone(),
    };
    let mut dirs = Vec::new();
    for t in trains {
        match run::train(&ctx, t, &ropts) {
            Ok(o) => {
                if opts.plot
                    && let Some(d) = &o.dir
                {
                    diags.extend(crate::plot::warning(d));
                }
                dirs.extend(o.dir);
            }
            Err(f) => {
                diags.push(*f.diagnostic);
                dirs.extend(f.dir);
                return (checked.sources.clone(), diags, dirs);
            }
        }
    }
    for s in sweeps {
        match crate::train::sweep::run(&ctx, s, &ropts, opts.jobs) {
            Ok(d) => {
                if opts.plot {
                    diags.extend(crate::plot::warning(&d));
                }
                dirs.push(d);
            }
            Err(f) => {
                diags.push(*f.diagnostic);
                dirs.extend(f.dir);
                return (checked.sources.clone(), diags, dirs);
            }
        }
    }
    (checked.sources.clone(), diags, dirs)
}

/// `mlx eval`: the saved model on the run's test split (the same split, from the same seed).
pub fn eval(dir: &Path, backend: BackendKind, ignore_lock: bool) -> Result<String, Failed> {
    let r = Reopened::open(dir, ignore_lock)?;
    for w in r.data_drift() {
        eprintln!("warning: {w}");
    }
    let (_, plan, d) = r.plans()?;
    let fail = |d: Diagnostic| (SourceMap::new(), vec![d]);
    // A streamed dataset is read again as it was split: its rows stay in the sources.
    let loaded = run::Loaded::rows(d, plan.seed).map_err(fail)?;
    let feed = loaded.feed(d, plan.seed, loaded.folds() - 1);
    let (part, split) = if feed.len(Part::Test) > 0 {
        (Part::Test, "test")
    } else {
        (Part::Val, "val")
    };
    if feed.len(part) == 0 {
        return Err(fail(Diagnostic::error(
            "mlx::eval::no_test",
            format!(
                "the dataset `{}` has no test or validation rows to evaluate on",
                d.name
            ),
        )));
    }
    let pre = r.run.preprocessor().map_err(fail)?;
    let (built, mut exe) = r.compile(
        backend,
        run::batch_sizes(feed.len(part), plan.batch),
        Vec::new(),
    )?;
    let figures =
        run::evaluate_feed(exe.as_mut(), &built, plan, d, &pre, &feed, part).map_err(fail)?;
    let out = json!({ "train": plan.name, split: figures, "recorded": r.summary.split(split) });
    Ok(serde_json::to_string_pretty(&out).unwrap_or_default())
}

/// `mlx ir`: the IR of a train's training and evaluation functions (`ir`), their schedule of
/// fused kernels and library steps (`kernels`), or the GPU back end's commands and CUDA C
/// (`cuda`).
pub fn ir(
    file: &Path,
    stage: &str,
    train: Option<&str>,
    batch: Option<usize>,
    sets: &[String],
) -> Result<String, Failed> {
    let program = lowered(file, train, batch, sets)?;
    Ok(match stage {
        "kernels" => crate::ir::print::schedules(&program),
        "cuda" => {
            let plan = crate::backend::cuda::plan::plan(&program)
                .map_err(|d| (SourceMap::new(), vec![d]))?;
            crate::backend::cuda::plan::listing(&plan)
        }
        _ => crate::ir::print::program(&program),
    })
}

/// The IR program of a train of `file` (its training and evaluation functions at one batch
/// size: the train's, or `batch`).
pub fn lowered(
    file: &Path,
    train: Option<&str>,
    batch: Option<usize>,
    sets: &[String],
) -> Result<crate::ir::Program, Failed> {
    let checked = driver::check_file(file, sets);
    if !checked.ok() || has_errors(&checked.diags) {
        return Err((checked.sources, checked.diags));
    }
    let fail = |d: Diagnostic| (SourceMap::new(), vec![d]);
    let program = checked
        .program
        .as_ref()
        .ok_or_else(|| fail(Diagnostic::internal("no program")))?;
    let plan = match train {
        Some(n) => program.trains.iter().find(|t| t.name == n),
        None => program
            .root_trains
            .first()
            .and_then(|n| program.trains.iter().find(|t| &t.name == n))
            .or(program.trains.first()),
    }
    .ok_or_else(|| {
        fail(Diagnostic::error(
            "mlx::run::unknown_train",
            format!("no such train in {}", file.display()),
        ))
    })?;
    let d = run::dataset(program, plan).map_err(fail)?;
    let b = batch.unwrap_or(plan.batch);
    let spec = Spec {
        hir: program,
        plan,
        dataset: d,
        train_batches: vec![b],
        eval_batches: vec![b],
        predict_batches: Vec::new(),
        shard_batches: Vec::new(),
    };
    Ok(graph::build(&spec).map_err(fail)?.program)
}
