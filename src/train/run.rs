//! `mlx run` for one train: load the data, split it, and for each fold fit the preprocessing on
//! the training rows, compile the program, initialise the parameters from named streams, train
//! epoch by epoch (checkpointing, early stopping, NaN detection), evaluate, and write the run
//! directory. `resume` continues a run in its own directory from its checkpoint and finishes
//! it exactly as the uninterrupted run would have. Everything a run writes is written
//! atomically.

use super::checkpoint::{self, Checkpoint, FoldFigures, Progress};
use super::feed::{Batch, Feed};
use super::graph::{self, Built, Spec};
use super::metrics;
use super::report::{self, epoch_line, print_results};
use crate::backend::{self, BackendKind, Executable, HostTensor};
use crate::check::Override;
use crate::check::hir::{self, Optimizer, TargetKind, TrainPlan};
use crate::data::stream::Part;
use crate::data::{self, Data, Fold, Preprocessor};
use crate::diagnostics::Diagnostic;
use crate::ir::StateKind;
use crate::rundir::{self, Lock, MetricsLine, NamedTensor, Summary};
use crate::source::SourceMap;
use crate::syntax::ast;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[cfg(test)]
pub(crate) mod differential;
mod grow;

/// What a run needs from the checked program.
pub struct Context<'a> {
    pub sources: &'a SourceMap,
    pub modules: &'a [ast::Module],
    pub overrides: &'a [Override],
    pub program: &'a hir::Program,
    /// The data schemas read while checking, by `driver::loader_key`.
    pub schemas:
        &'a std::collections::BTreeMap<String, std::sync::Arc<crate::data::schema::Schema>>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub backend: BackendKind,
    pub out: PathBuf,
    /// Draw progress bars (when standard error is a terminal).
    pub progress: bool,
    /// Print one line per epoch.
    pub verbose: bool,
    /// Threads of the CPU back end (default: one per core). Parallel sweep trials share them.
    pub threads: Option<usize>,
    /// Where the shards of a sharded train are computed: the ranks of an MPI job (`None`: all
    /// in this process).
    pub exchange: Option<std::sync::Arc<dyn super::parallel::Exchange>>,
}

impl Options {
    pub fn new(backend: BackendKind, out: PathBuf) -> Options {
        Options {
            backend,
            out,
            progress: false,
            verbose: false,
            threads: None,
            exchange: None,
        }
    }
}

/// A finished (or failed) run: its directory, if one was created, and its summary.
pub struct Outcome {
    pub dir: Option<PathBuf>,
    pub summary: Summary,
}

/// A run that failed after its directory was created: the diagnostic and where it is.
pub struct Failure {
    pub diagnostic: Box<Diagnostic>,
    pub dir: Option<PathBuf>,
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Failure {
        Failure {
            diagnostic: Box::new(d),
            dir: None,
        }
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Diagnostic {
    Diagnostic::error(
        "mlx::run::io",
        format!("cannot write {}: {e}", path.display()),
    )
}

fn corrupt(message: String) -> Diagnostic {
    Diagnostic::error("mlx::rundir::corrupt", message)
}

pub fn dataset<'p>(
    program: &'p hir::Program,
    plan: &TrainPlan,
) -> Result<&'p hir::DatasetPlan, Diagnostic> {
    program
        .datasets
        .iter()
        .find(|d| d.name == plan.dataset)
        .ok_or_else(|| Diagnostic::internal(format!("dataset `{}` has no plan", plan.dataset)))
}

/// The data files a dataset reads.
pub fn data_files(d: &hir::DatasetPlan) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for s in &d.sources {
        match &s.loader {
            hir::Loader::Csv { path, .. } => v.push(path.clone()),
            hir::Loader::Idx { images, labels } => {
                v.push(images.clone());
                v.extend(labels.clone());
            }
            hir::Loader::Parquet { path } => v.push(path.clone()),
            // A query's rows are hashed when they are read (`Data::queried`).
            hir::Loader::Sql { .. } => {}
        }
    }
    v
}

/// The back end `opts` names, limited to `opts.threads` threads on the CPU.
fn select_backend(opts: &Options) -> Result<Box<dyn backend::Backend>, Diagnostic> {
    let (b, note) = backend::select(opts.backend)?;
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    Ok(match opts.threads {
        Some(threads) if b.name() == "cpu" => Box::new(backend::cpu::Cpu {
            threads: threads.max(1),
            jit: true,
            direct_conv: true,
        }),
        _ => b,
    })
}

/// A run's data: a pool of every row and its folds, or what the fitting passes over a
/// streamed dataset found (its rows stay in the sources).
pub(crate) enum Loaded {
    Pool { data: Data, folds: Vec<Fold> },
    Stream(data::stream::Fitted),
}

impl Loaded {
    pub(crate) fn load(dset: &hir::DatasetPlan, seed: u64) -> Result<Loaded, Diagnostic> {
        if dset.stream.is_some() {
            return data::stream::fit(dset, seed)
                .map(Loaded::Stream)
                .map_err(|e| e.diagnostic());
        }
        let data = Data::load(dset).map_err(|e| e.diagnostic())?;
        let folds = data.folds(dset, seed).map_err(|e| e.diagnostic())?;
        Ok(Loaded::Pool { data, folds })
    }

    /// The rows of each part, to measure a trained model on: a pool and its folds, or what
    /// one counting pass over a stream finds (nothing is fitted: the run has its statistics).
    pub(crate) fn rows(dset: &hir::DatasetPlan, seed: u64) -> Result<Loaded, Diagnostic> {
        if dset.stream.is_none() {
            return Loaded::load(dset, seed);
        }
        let (counts, queried, digest) =
            data::stream::count(dset, seed).map_err(|e| e.diagnostic())?;
        Ok(Loaded::Stream(data::stream::Fitted {
            pre: Preprocessor {
                features: Vec::new(),
            },
            counts,
            queried,
            digest,
            passes: 1,
        }))
    }

    pub(crate) fn folds(&self) -> usize {
        match self {
            Loaded::Pool { folds, .. } => folds.len(),
            Loaded::Stream(_) => 1,
        }
    }

    fn queried(&self) -> &[data::load::QueriedRows] {
        match self {
            Loaded::Pool { data, .. } => data.queried(),
            Loaded::Stream(f) => &f.queried,
        }
    }

    /// The rows of fold `fi`.
    pub(crate) fn feed<'a>(&'a self, dset: &'a hir::DatasetPlan, seed: u64, fi: usize) -> Feed<'a> {
        match self {
            Loaded::Pool { data, folds } => Feed::Rows {
                data,
                train: &folds[fi].train,
                val: &folds[fi].val,
                test: &folds[fi].test,
            },
            Loaded::Stream(f) => Feed::Stream {
                dset,
                seed,
                counts: f.counts,
                digest: f.digest,
                buffer: dset.stream.and_then(|s| s.buffer),
            },
        }
    }

    /// The preprocessing of fold `fi`, fitted on its training rows.
    fn fit(&self, dset: &hir::DatasetPlan, fi: usize) -> Result<Preprocessor, Diagnostic> {
        match self {
            Loaded::Pool { data, folds } => {
                Preprocessor::fit(dset, data, &folds[fi].train).map_err(|e| e.diagnostic())
            }
            Loaded::Stream(f) => Ok(f.pre.clone()),
        }
    }

    /// What the split leaves odd (see `split_warnings`).
    fn warnings(&self, dset: &hir::DatasetPlan) -> Vec<String> {
        match self {
            Loaded::Pool { data, folds } => split_warnings(dset, data, folds),
            Loaded::Stream(f) => {
                let c = f.counts;
                let counts = format!(
                    "{} rows: {} train, {} validation, {} test",
                    c.train + c.val + c.test,
                    c.train,
                    c.val,
                    c.test
                );
                empty_part_warnings(dset, &counts, c.val == 0, c.test == 0)
            }
        }
    }

    fn describe(&self) -> String {
        let (tr, va, te) = match self {
            Loaded::Pool { folds, .. } => folds
                .first()
                .map_or((0, 0, 0), |f| (f.train.len(), f.val.len(), f.test.len())),
            Loaded::Stream(f) => (f.counts.train, f.counts.val, f.counts.test),
        };
        format!(
            "{tr} train / {va} val / {te} test rows{}{}",
            if self.folds() > 1 {
                format!(", {} folds", self.folds())
            } else {
                String::new()
            },
            if matches!(self, Loaded::Stream(_)) {
                ", streamed"
            } else {
                ""
            }
        )
    }
}

/// Everything a run works from once its data is loaded.
struct Job<'a> {
    ctx: &'a Context<'a>,
    plan: &'a TrainPlan,
    dset: &'a hir::DatasetPlan,
    loaded: &'a Loaded,
    backend: &'a dyn backend::Backend,
    dir: &'a Path,
    opts: &'a Options,
    started: Instant,
    /// Wall-clock seconds spent before this process took the run over (resumed runs).
    wall_before: f64,
}

impl Job<'_> {
    /// Where this run's shards are computed.
    fn exchange(&self) -> &dyn super::parallel::Exchange {
        static LOCAL: std::sync::OnceLock<super::parallel::Local> = std::sync::OnceLock::new();
        match (&self.opts.exchange, super::parallel::process_exchange()) {
            (Some(e), _) | (None, Some(e)) => e.as_ref(),
            (None, None) => LOCAL.get_or_init(Default::default),
        }
    }

    fn wall_seconds(&self) -> f64 {
        self.wall_before + self.started.elapsed().as_secs_f64()
    }

    fn fail(&self, d: Diagnostic) -> Failure {
        Failure {
            diagnostic: Box::new(d),
            dir: Some(self.dir.to_path_buf()),
        }
    }
}

/// An empty validation or test part that the dataset asks for (`counts` says what each
/// part holds).
fn empty_part_warnings(
    dset: &hir::DatasetPlan,
    counts: &str,
    val_empty: bool,
    test_empty: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let wants_val = !matches!(dset.split, hir::Split::None)
        || dset.sources.iter().any(|s| s.role == hir::SourceRole::Val);
    let wants_test = matches!(dset.split, hir::Split::Random { test, .. } if test > 0.0)
        || dset.sources.iter().any(|s| s.role == hir::SourceRole::Test);
    if wants_val && val_empty {
        out.push(format!(
            "the validation split is empty ({counts}): validation figures, early stopping and the drift profile's answers have no rows"
        ));
    }
    if wants_test && test_empty {
        out.push(format!(
            "the test split is empty ({counts}): there are no test figures and `mlx eval` has nothing to measure"
        ));
    }
    out
}

/// What a run's split leaves odd: an empty validation or test part that the dataset asks for,
/// a number column with one value on the training rows, a class that only the test rows have.
pub fn split_warnings(dset: &hir::DatasetPlan, data: &Data, folds: &[Fold]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(first) = folds.first() else {
        return out;
    };
    let counts = format!(
        "{} rows: {} train, {} validation, {} test",
        data.len(),
        first.train.len(),
        first.val.len(),
        first.test.len()
    );
    out.extend(empty_part_warnings(
        dset,
        &counts,
        folds.iter().any(|f| f.val.is_empty()),
        first.test.is_empty(),
    ));
    // A number column with one value on the training rows carries nothing (and a scaler
    // divides it by 1 instead of its spread of 0).
    for name in data.column_names() {
        let Some(xs) = data.numeric(name) else {
            continue;
        };
        let mut present = first.train.iter().map(|r| xs[*r]).filter(|x| !x.is_nan());
        if let Some(v) = present.next()
            && first.train.len() > 1
            && present.all(|x| x == v)
        {
            out.push(format!(
                "column `{name}` has the single value {v} on the training rows: it tells the model nothing, and standardize or min_max scale it by 1"
            ));
        }
    }
    if let hir::TargetKind::Class { levels, .. } = &dset.target.kind {
        for f in folds {
            let seen: std::collections::HashSet<u32> =
                f.train.iter().filter_map(|r| data.class(*r)).collect();
            let mut only: Vec<u32> = f
                .test
                .iter()
                .filter_map(|r| data.class(*r))
                .filter(|c| !seen.contains(c))
                .collect();
            only.sort_unstable();
            only.dedup();
            for c in only {
                let name = levels
                    .get(c as usize)
                    .cloned()
                    .unwrap_or_else(|| c.to_string());
                let msg = format!(
                    "class `{name}` appears in the test rows but in no training row: the model cannot learn it"
                );
                if !out.contains(&msg) {
                    out.push(msg);
                }
            }
        }
    }
    out
}

/// Train `plan`, writing `opts.out/<name>/<run-id>/`.
pub fn train(ctx: &Context<'_>, plan: &TrainPlan, opts: &Options) -> Result<Outcome, Failure> {
    let started = Instant::now();
    super::parallel::check_ranks(plan, ranks(opts))?;
    let dset = dataset(ctx.program, plan)?;
    let backend = select_backend(opts)?;
    let t0 = Instant::now();
    let loaded = Loaded::load(dset, plan.seed)?;
    if let (Loaded::Stream(f), true) = (&loaded, opts.verbose) {
        let secs = t0.elapsed().as_secs_f64();
        let rows = f.counts.train + f.counts.val + f.counts.test;
        eprintln!(
            "streamed `{}`: {rows} rows, fitted in {} pass{} over the sources in {secs:.2} s ({:.0} rows/s a pass)",
            dset.name,
            f.passes,
            if f.passes == 1 { "" } else { "es" },
            (rows * f.passes) as f64 / secs.max(1e-9)
        );
    }
    // Every rank of an MPI job splits the same data: rank 0 says what it finds.
    if rank(opts) == 0 {
        for w in loaded.warnings(dset) {
            eprintln!("warning: `{}`: {w}", plan.name);
        }
    }

    // The directory gets its run id once its program, lock and schemas are in: every
    // directory named like a run can be resumed.
    let staging =
        rundir::Staging::new(&opts.out, &plan.name).map_err(|e| io_error(&opts.out, e))?;
    let _writing = rundir::lock_for_writing(staging.path(), &format!("mlx run `{}`", plan.name))?;
    let spec = super::resolve::spec_text(ctx.sources, ctx.modules, ctx.overrides, &[plan]);
    let first = First {
        spec: &spec,
        dset,
        queried: loaded.queried(),
        backend: backend.name(),
        seed: plan.seed,
    };
    write_first_files(ctx, staging.path(), &first)?;
    let dir = staging
        .publish()
        .map_err(|e| io_error(&opts.out.join(&plan.name), e))?;
    let job = Job {
        ctx,
        plan,
        dset,
        loaded: &loaded,
        backend: backend.as_ref(),
        dir: &dir,
        opts,
        started,
        wall_before: 0.0,
    };

    if opts.verbose {
        eprintln!(
            "training `{}`: {} on `{}` ({}), back end {}",
            plan.name,
            plan.model_call,
            plan.dataset,
            loaded.describe(),
            backend.name()
        );
    }
    execute(&job, None)
}

/// This process's rank among those a run's shards are spread over (0 alone).
fn rank(opts: &Options) -> usize {
    match (&opts.exchange, super::parallel::process_exchange()) {
        (Some(e), _) | (None, Some(e)) => e.rank(),
        (None, None) => 0,
    }
}

/// The processes a run's shards are spread over.
fn ranks(opts: &Options) -> usize {
    match (&opts.exchange, super::parallel::process_exchange()) {
        (Some(e), _) | (None, Some(e)) => e.ranks(),
        (None, None) => 1,
    }
}

/// What the first files of a run record.
struct First<'a> {
    spec: &'a str,
    dset: &'a hir::DatasetPlan,
    queried: &'a [crate::data::load::QueriedRows],
    backend: &'a str,
    seed: u64,
}

/// `spec.mlx`, `mlx.lock` and `sources.json`: what a run directory holds before training.
fn write_first_files(ctx: &Context<'_>, dir: &Path, first: &First<'_>) -> Result<(), Diagnostic> {
    let (spec, dset) = (first.spec, first.dset);
    let spec_path = dir.join(rundir::SPEC);
    rundir::write_atomic(&spec_path, spec.as_bytes()).map_err(|e| io_error(&spec_path, e))?;
    let lock = Lock::new(spec, dset, first.queried, first.backend, first.seed);
    let lock_path = dir.join(rundir::lock::FILE);
    rundir::write_doc(&lock_path, &lock).map_err(|e| io_error(&lock_path, e))?;
    // The schemas of the run's sources: its program checks again without the data.
    let sources = rundir::SourceSchemas {
        format: rundir::FORMAT,
        sources: dset
            .sources
            .iter()
            .filter_map(|s| {
                let key = crate::driver::loader_key(&s.loader);
                let schema = ctx.schemas.get(&key)?;
                Some(rundir::RecordedSource {
                    loader: key,
                    schema: schema.as_ref().clone(),
                })
            })
            .collect(),
    };
    let sources_path = dir.join(rundir::SOURCES);
    rundir::write_doc(&sources_path, &sources).map_err(|e| io_error(&sources_path, e))
}

/// Continue the run in `dir` (made by `train` for `plan`) from checkpoint `from`, or from the
/// start when it has none: the lines `metrics.jsonl` gained after the checkpoint are dropped,
/// and the run is finished exactly as an uninterrupted one (timings aside).
pub fn resume(
    ctx: &Context<'_>,
    plan: &TrainPlan,
    opts: &Options,
    dir: &Path,
    from: Option<Checkpoint>,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    super::parallel::check_ranks(plan, ranks(opts))?;
    let dset = dataset(ctx.program, plan)?;
    let backend = select_backend(opts)?;
    let loaded = Loaded::load(dset, plan.seed)?;
    let nfolds = loaded.folds();
    if let Some(c) = &from {
        if c.train != plan.name {
            return Err(corrupt(format!(
                "the checkpoint is of train `{}`, but spec.mlx runs `{}`",
                c.train, plan.name
            ))
            .into());
        }
        if c.fold >= nfolds || c.finished.len() != c.fold {
            return Err(corrupt(format!(
                "the checkpoint is at fold {} with {} finished, but the run has {} fold{}",
                c.fold + 1,
                c.finished.len(),
                nfolds,
                if nfolds == 1 { "" } else { "s" }
            ))
            .into());
        }
    }
    let lines = from.as_ref().map_or(0, |c| c.metrics_lines);
    truncate_metrics(&dir.join(rundir::METRICS), lines)?;
    if opts.verbose {
        match &from {
            Some(c) => eprintln!(
                "resuming `{}` after {}epoch {} of {} (step {}), back end {}",
                plan.name,
                if nfolds > 1 {
                    format!("fold {}/{}, ", c.fold + 1, nfolds)
                } else {
                    String::new()
                },
                c.progress.epoch,
                plan.epochs,
                c.progress.step,
                backend.name()
            ),
            None => eprintln!(
                "resuming `{}` from the start (it has no checkpoint), back end {}",
                plan.name,
                backend.name()
            ),
        }
    }
    let job = Job {
        ctx,
        plan,
        dset,
        loaded: &loaded,
        backend: backend.as_ref(),
        dir,
        opts,
        started,
        wall_before: from.as_ref().map_or(0.0, |c| c.wall_seconds),
    };
    execute(&job, from)
}

/// Keep the first `lines` lines of `metrics.jsonl` (those a checkpoint covers).
fn truncate_metrics(path: &Path, lines: usize) -> Result<(), Diagnostic> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && lines == 0 => return Ok(()),
        Err(e) => {
            return Err(corrupt(format!(
                "cannot read {}: {}",
                path.display(),
                crate::data::csv::io_message(&e)
            )));
        }
    };
    let kept: Vec<&str> = text.split_inclusive('\n').take(lines).collect();
    if kept.len() < lines || kept.last().is_some_and(|l| !l.ends_with('\n')) {
        return Err(corrupt(format!(
            "{} has {} complete lines, but the checkpoint was written after {lines}",
            path.display(),
            kept.iter().filter(|l| l.ends_with('\n')).count()
        )));
    }
    let kept = kept.concat();
    if kept.len() != text.len() {
        rundir::write_atomic(path, kept.as_bytes()).map_err(|e| io_error(path, e))?;
    }
    Ok(())
}

/// Train the folds from `from` (or the first) on, then write the model, the fitted
/// preprocessing and the summary.
fn execute(job: &Job<'_>, from: Option<Checkpoint>) -> Result<Outcome, Failure> {
    let plan = job.plan;
    same_data_on_every_rank(job).map_err(|d| job.fail(d))?;
    let clock_before = job.exchange().clock().totals();
    let (start, mut finished, mut lines, mut resume_at) = match from {
        Some(c) => (
            c.fold,
            c.finished,
            c.metrics_lines,
            Some((c.progress, c.states)),
        ),
        None => (0, Vec::new(), 0, None),
    };
    let mut last = None;
    for fi in start..job.loaded.folds() {
        match train_fold(job, fi, resume_at.take(), &finished, &mut lines) {
            Ok(o) => {
                finished.push(o.figures);
                last = Some((o.weights, o.preprocessor, o.profile));
            }
            Err(d) => {
                let summary = if d.code == super::interrupt::CODE {
                    report::interrupted(plan, &d.message)
                } else {
                    report::failed(plan, &d.message)
                };
                let _ = rundir::write_doc(&job.dir.join(rundir::SUMMARY), &summary);
                return Err(job.fail(d));
            }
        }
    }
    let Some((weights, preprocessor, profile)) = last else {
        return Err(job.fail(Diagnostic::internal("no fold was trained")));
    };
    // The weights and statistics of the last fold are the run's model.
    let dir = job.dir;
    rundir::save_safetensors(
        &dir.join(rundir::MODEL),
        &weights,
        &[("train".into(), plan.name.clone())],
    )
    .map_err(|e| job.fail(io_error(&dir.join(rundir::MODEL), e)))?;
    // The lock also vouches for the model: eval, predict and serve refuse other weights.
    let lock_path = dir.join(rundir::lock::FILE);
    let sealed = rundir::lock::read(dir).and_then(|mut lock| {
        let hash = rundir::sha256_file(&dir.join(rundir::MODEL))
            .map_err(|e| io_error(&dir.join(rundir::MODEL), e))?;
        lock.model = Some(format!("sha256:{hash}"));
        rundir::write_doc(&lock_path, &lock).map_err(|e| io_error(&lock_path, e))
    });
    sealed.map_err(|d| job.fail(d))?;
    let write =
        |file: &str, r: std::io::Result<()>| r.map_err(|e| job.fail(io_error(&dir.join(file), e)));
    write(
        rundir::PREPROCESS,
        rundir::write_doc(&dir.join(rundir::PREPROCESS), &preprocessor),
    )?;
    let input = report::input_schema(plan, job.dset, &preprocessor);
    write(
        rundir::INPUT,
        rundir::write_doc(&dir.join(rundir::INPUT), &input),
    )?;
    write(
        rundir::PROFILE,
        rundir::write_doc(&dir.join(rundir::PROFILE), &profile),
    )?;
    write(
        rundir::METRICS,
        rundir::sync_file(&dir.join(rundir::METRICS)),
    )?;
    let summary = report::summary(plan, job.backend.name(), &finished, job.wall_seconds());
    write(
        rundir::SUMMARY,
        rundir::write_doc(&dir.join(rundir::SUMMARY), &summary),
    )?;
    if job.opts.verbose {
        print_results(plan, &summary);
        if let Some(shards) = plan.shards {
            let ex = job.exchange();
            let (steps, compute, exchange, bytes) = ex.clock().per_step_since(clock_before);
            eprintln!(
                "data-parallel: {shards} shards on {} rank{}, {steps} steps: {compute:.3} ms computing and {exchange:.3} ms exchanging per step ({:.1} KiB gathered)",
                ex.ranks(),
                if ex.ranks() == 1 { "" } else { "s" },
                bytes / 1024.0
            );
        }
    }
    Ok(Outcome {
        dir: Some(dir.to_path_buf()),
        summary,
    })
}

/// A trained fold: its figures, and the weights and preprocessing (the model, when it is the
/// last fold).
struct FoldOutcome {
    figures: FoldFigures,
    weights: Vec<NamedTensor>,
    preprocessor: Preprocessor,
    profile: rundir::Profile,
}

/// Whether Ctrl-C asked the run to stop after this epoch: on any rank, for every rank (the
/// ranks of a data-parallel job stop together, or one would wait for the others forever).
fn interrupt_agreed(job: &Job<'_>) -> Result<bool, Diagnostic> {
    let mine = super::interrupt::requested();
    let ex = job.exchange();
    if ex.ranks() <= 1 || job.plan.shards.is_none() {
        return Ok(mine);
    }
    let all = ex.all_gather(vec![if mine { 1.0 } else { 0.0 }])?;
    Ok(all.iter().any(|x| *x > 0.0))
}

/// The ranks of a data-parallel job must train on the same rows in the same order: each
/// rank's loaded data is hashed and the hashes compared before the first step. A data file
/// that differs between machines, or a query whose rows came back in another order, ends the
/// run with a diagnostic naming the ranks instead of silently training on different batches.
fn same_data_on_every_rank(job: &Job<'_>) -> Result<(), Diagnostic> {
    let ex = job.exchange();
    if ex.ranks() <= 1 || job.plan.shards.is_none() {
        return Ok(());
    }
    // 16-bit pieces, each an f32 exactly (no bit pattern that could be a NaN in transit).
    let Loaded::Pool { data, .. } = job.loaded else {
        return Ok(());
    };
    let mine: Vec<f32> = data
        .fingerprint()
        .chunks_exact(2)
        .map(|c| f32::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    let all = ex.all_gather(mine)?;
    let bits = |r: usize| -> Vec<u32> {
        all[r * 16..r * 16 + 16]
            .iter()
            .map(|x| x.to_bits())
            .collect()
    };
    let differ: Vec<String> = (1..ex.ranks())
        .filter(|r| bits(*r) != bits(0))
        .map(|r| r.to_string())
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(Diagnostic::error(
        super::parallel::CODE,
        format!(
            "rank{} {} loaded other data than rank 0: the ranks would train on different batches",
            if differ.len() == 1 { "" } else { "s" },
            differ.join(", ")
        ),
    )
    .with_help("give every rank the same data files (a shared file system), and a SQL query an ORDER BY over a unique key"))
}

/// Training rows a streamed dataset's drift profile is drawn from (about: a hashed sample).
const PROFILE_ROWS: usize = 100_000;

/// Distinct batch sizes needed to cover `n` rows in batches of `b`.
pub fn batch_sizes(n: usize, b: usize) -> Vec<usize> {
    let mut v = Vec::new();
    if n >= b {
        v.push(b);
    }
    if !n.is_multiple_of(b) {
        v.push(n % b);
    }
    v
}

/// The per-step inputs of a training update.
struct Step {
    lr: f32,
    /// Steps taken before this one (dropout's counter).
    counter: u64,
    bc1: f32,
    bc2: f32,
}

/// One step of a sharded train: this process's shards' shares of the batch gradient, every
/// rank's gathered, added in shard order and applied. Returns the batch's mean loss.
fn sharded_step(
    job: &Job<'_>,
    built: &Built,
    exe: &mut dyn Executable,
    pre: &Preprocessor,
    shards: usize,
    rows: &[usize],
    step: Step,
) -> Result<f32, Diagnostic> {
    use super::parallel::{owned, shard_rows, sum_in_shard_order};
    let ex = job.exchange();
    let (rank, ranks) = (ex.rank(), ex.ranks());
    let shapes: Vec<Vec<usize>> = built
        .params
        .iter()
        .map(|p| built.program.states[*p].shape.clone())
        .collect();
    let width = 1 + shapes
        .iter()
        .map(|s| s.iter().product::<usize>())
        .sum::<usize>();
    let slots = shards.div_ceil(ranks);
    let n = rows.len();
    let scale = 1.0 / n as f32;
    let t0 = Instant::now();
    let mut mine = vec![0.0f32; slots * width];
    for (i, k) in owned(shards, ranks, rank).enumerate() {
        let part = shard_rows(n, shards, k);
        if part.is_empty() {
            continue;
        }
        let f = *built.grad.get(&part.len()).ok_or_else(|| {
            Diagnostic::internal(format!(
                "no gradient function for a shard of {}",
                part.len()
            ))
        })?;
        let Loaded::Pool { data, .. } = job.loaded else {
            return Err(Diagnostic::internal(
                "a sharded step without its rows in memory",
            ));
        };
        let (x, y) = batch_inputs(job.dset, pre, data, &rows[part])?;
        // A counter of its own for every shard of every step (dropout masks).
        let counter = step
            .counter
            .wrapping_mul(shards as u64)
            .wrapping_add(k as u64) as u32 as i32;
        let inputs = [
            x,
            y,
            HostTensor::scalar_i32(counter),
            HostTensor::scalar(scale),
        ];
        let out = exe.run(f, &inputs).map_err(|e| e.diagnostic())?;
        let share = &mut mine[i * width..(i + 1) * width];
        share[0] = out[0].item();
        let mut at = 1;
        for g in &out[1..] {
            let g = g.as_f32();
            share[at..at + g.len()].copy_from_slice(g);
            at += g.len();
        }
        if at != width {
            return Err(Diagnostic::internal(
                "a shard's gradient does not match the parameters",
            ));
        }
    }
    let computed = t0.elapsed();
    let t1 = Instant::now();
    let gathered = ex.all_gather(mine)?;
    let exchanged = t1.elapsed();
    if gathered.len() != ranks * slots * width {
        return Err(Diagnostic::internal(
            "the gathered gradients have the wrong size",
        ));
    }
    let total = sum_in_shard_order(&gathered, shards, ranks, slots, width, |k| {
        shard_rows(n, shards, k).is_empty()
    });
    let t2 = Instant::now();
    let apply = built
        .apply
        .ok_or_else(|| Diagnostic::internal("a sharded train without its update"))?;
    let mut inputs = vec![
        HostTensor::scalar(step.lr),
        HostTensor::scalar(step.bc1),
        HostTensor::scalar(step.bc2),
    ];
    let mut at = 1;
    for s in shapes {
        let len: usize = s.iter().product();
        inputs.push(HostTensor::f32(s, total[at..at + len].to_vec()));
        at += len;
    }
    exe.run(apply, &inputs).map_err(|e| e.diagnostic())?;
    ex.clock()
        .add(computed + t2.elapsed(), exchanged, gathered.len() * 4);
    Ok(total[0])
}

/// The model's tensors (parameters and buffers) as they are now.
fn weights(exe: &dyn Executable, built: &Built) -> Result<Vec<NamedTensor>, Diagnostic> {
    built
        .program
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind != StateKind::Optimizer)
        .map(|(i, s)| {
            Ok(NamedTensor {
                name: s.name.clone(),
                shape: s.shape.clone(),
                data: exe.read_state(i).map_err(|e| e.diagnostic())?.into_f32(),
            })
        })
        .collect()
}

fn restore(exe: &mut dyn Executable, built: &Built, ws: &[NamedTensor]) -> Result<(), Diagnostic> {
    for t in ws {
        if let Some(i) = built.program.state(&t.name) {
            exe.write_state(i, &HostTensor::f32(t.shape.clone(), t.data.clone()))
                .map_err(|e| e.diagnostic())?;
        }
    }
    Ok(())
}

/// Every state of the program as it is now (parameters, optimizer moments, buffers).
fn all_states(exe: &dyn Executable, built: &Built) -> Result<Vec<NamedTensor>, Diagnostic> {
    built
        .program
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(NamedTensor {
                name: s.name.clone(),
                shape: s.shape.clone(),
                data: exe.read_state(i).map_err(|e| e.diagnostic())?.into_f32(),
            })
        })
        .collect()
}

/// Write a checkpoint's states back: every state of the program must be there, shaped alike.
fn restore_states(
    exe: &mut dyn Executable,
    built: &Built,
    states: &[NamedTensor],
) -> Result<(), Diagnostic> {
    for (i, s) in built.program.states.iter().enumerate() {
        let t = states
            .iter()
            .find(|t| t.name == s.name && t.shape == s.shape)
            .ok_or_else(|| {
                corrupt(format!(
                    "the checkpoint has no tensor `{}` of shape {:?}: it does not belong to the program in spec.mlx",
                    s.name, s.shape
                ))
            })?;
        exe.write_state(i, &HostTensor::f32(t.shape.clone(), t.data.clone()))
            .map_err(|e| e.diagnostic())?;
    }
    Ok(())
}

/// Inputs for a batch: features and targets.
pub(super) fn batch_inputs(
    dset: &hir::DatasetPlan,
    pre: &Preprocessor,
    data: &Data,
    rows: &[usize],
) -> Result<(HostTensor, HostTensor), Diagnostic> {
    let mut x = Vec::with_capacity(rows.len() * pre.width());
    pre.features(data, rows, &mut x)
        .map_err(|e| e.diagnostic())?;
    let mut shape = vec![rows.len()];
    shape.extend(dset.feature_shape.iter().copied());
    let mut y = Vec::with_capacity(rows.len());
    data.targets(rows, &mut y);
    let yt = match dset.target.kind {
        TargetKind::Class { .. } => {
            HostTensor::i32(vec![rows.len()], y.iter().map(|v| *v as i32).collect())
        }
        TargetKind::Regression | TargetKind::Absent => HostTensor::f32(vec![rows.len()], y),
    };
    Ok((HostTensor::f32(shape, x), yt))
}

/// The evaluation function over the rows of `part`, in order, in batches of the train's size.
pub fn eval_feed(
    exe: &mut dyn Executable,
    built: &Built,
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    pre: &Preprocessor,
    feed: &Feed<'_>,
    part: Part,
) -> Result<(f64, Vec<f32>, Vec<f32>), Diagnostic> {
    let (mut all, _) = eval_parts(exe, built, plan, dset, pre, feed, &[part], None)?;
    let e = all.pop().unwrap_or_default();
    Ok((e.loss_sum, e.outs, e.targets))
}

/// What the evaluation function gave over one part's rows: the summed loss, the outputs (`k`
/// values a row) and the targets.
#[derive(Default)]
struct Evaluated {
    loss_sum: f64,
    outs: Vec<f32>,
    targets: Vec<f32>,
}

/// The evaluation function over each of `parts` (one pass over a stream), and from a stream
/// the drift profile's sample of about `sample` training rows.
#[allow(clippy::too_many_arguments)]
fn eval_parts(
    exe: &mut dyn Executable,
    built: &Built,
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    pre: &Preprocessor,
    feed: &Feed<'_>,
    parts: &[Part],
    sample: Option<usize>,
) -> Result<(Vec<Evaluated>, Option<crate::monitor::profile::Sample>), Diagnostic> {
    let mut all: Vec<Evaluated> = parts.iter().map(|_| Evaluated::default()).collect();
    let sample = feed.eval_all(dset, pre, plan.batch, parts, sample, |i, b| {
        let f = *built.eval.get(&b.n).ok_or_else(|| {
            Diagnostic::internal(format!("no evaluation function for batch {}", b.n))
        })?;
        let r = exe
            .run(f, &[b.x, b.y.clone()])
            .map_err(|e| e.diagnostic())?;
        let e = &mut all[i];
        e.loss_sum += f64::from(r[0].item());
        e.outs.extend_from_slice(r[1].as_f32());
        e.targets.extend(b.y.into_f32());
        Ok(())
    })?;
    Ok((all, sample))
}

/// The mean loss and the train's metrics of an evaluation (none without rows).
fn figures_from(
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    e: &Evaluated,
) -> BTreeMap<String, Value> {
    let mut figures = BTreeMap::new();
    if e.targets.is_empty() {
        return figures;
    }
    figures.insert(
        "loss".into(),
        json_number(e.loss_sum / e.targets.len() as f64),
    );
    figures.extend(figures_of(plan, dset, &e.outs, &e.targets));
    figures
}

/// Loss and figures of the model on the rows of `part` (evaluation mode).
pub fn evaluate_feed(
    exe: &mut dyn Executable,
    built: &Built,
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    pre: &Preprocessor,
    feed: &Feed<'_>,
    part: Part,
) -> Result<BTreeMap<String, Value>, Diagnostic> {
    if feed.len(part) == 0 {
        return Ok(BTreeMap::new());
    }
    let (mut all, _) = eval_parts(exe, built, plan, dset, pre, feed, &[part], None)?;
    Ok(figures_from(plan, dset, &all.pop().unwrap_or_default()))
}

/// The train's metrics of outputs against targets.
pub fn figures_of(
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    outs: &[f32],
    targets: &[f32],
) -> BTreeMap<String, Value> {
    if targets.is_empty() {
        return BTreeMap::new();
    }
    match dset.target.kind.classes() {
        Some(_) => {
            let k = outs.len() / targets.len();
            let labels: Vec<u32> = targets.iter().map(|v| *v as u32).collect();
            metrics::classification(outs, k, &labels, &plan.metrics)
        }
        None => metrics::regression(outs, targets, &plan.metrics),
    }
}

pub fn json_number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn figure(m: &BTreeMap<String, Value>, name: &str) -> Option<f64> {
    m.get(name).and_then(Value::as_f64)
}

/// The program for one fold, compiled, its parameters initialised.
fn compile(
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    program: &hir::Program,
    feed: &Feed<'_>,
    backend: &dyn backend::Backend,
) -> Result<(Built, Box<dyn Executable>), Diagnostic> {
    let train_rows = feed.len(Part::Train);
    let mut eval = batch_sizes(feed.len(Part::Val), plan.batch);
    eval.extend(batch_sizes(feed.len(Part::Test), plan.batch));
    eval.sort_unstable();
    eval.dedup();
    let spec = Spec {
        hir: program,
        plan,
        dataset: dset,
        train_batches: if plan.trees.is_some() {
            Vec::new()
        } else {
            batch_sizes(train_rows, plan.batch)
        },
        eval_batches: eval,
        predict_batches: Vec::new(),
        shard_batches: plan.shards.map_or_else(Vec::new, |s| {
            super::parallel::shard_sizes(&batch_sizes(train_rows, plan.batch), s)
        }),
    };
    let built = graph::build(&spec)?;
    let mut exe = backend.compile(&built.program)?;
    for (i, s) in built.program.states.iter().enumerate() {
        let v = super::init::values(&s.init, &s.shape, plan.seed, &s.name);
        exe.write_state(i, &HostTensor::f32(s.shape.clone(), v))
            .map_err(|e| e.diagnostic())?;
    }
    Ok((built, exe))
}

/// Whether early stopping has ended the fold's epoch loop.
fn stopped_early(plan: &TrainPlan, p: &Progress) -> bool {
    p.epoch > 0
        && plan
            .early_stop
            .as_ref()
            .is_some_and(|es| p.early.bad_epochs >= es.patience)
}

/// One fold: fit the preprocessing on its training rows, compile, initialise the states (or
/// restore them and the loop's position from a checkpoint), run the remaining epochs, then
/// restore the best weights and evaluate.
///
/// Every epoch is a function of the states and `Progress` at its start: its shuffle comes from
/// the stream `shuffle/epoch-N`, dropout from the step counter, the rate from the scheduler.
/// So an epoch re-run from a checkpoint is the epoch the killed process was running.
fn train_fold(
    job: &Job<'_>,
    fi: usize,
    from: Option<(Progress, Vec<NamedTensor>)>,
    finished: &[FoldFigures],
    lines: &mut usize,
) -> Result<FoldOutcome, Diagnostic> {
    let (plan, dset, dir) = (job.plan, job.dset, job.dir);
    let feed = job.loaded.feed(dset, plan.seed, fi);
    let nfolds = job.loaded.folds();
    let train_rows = feed.len(Part::Train);
    let pre = job.loaded.fit(dset, fi)?;
    let (built, mut exe) = compile(plan, dset, job.ctx.program, &feed, job.backend)?;
    let lr0 = plan.optimizer.lr();
    // A train with objectives: each objective's initial rate, and its training losses.
    let multi = plan.multi.as_ref();
    let lr0s: Vec<f64> = multi.map_or_else(Vec::new, |m| {
        m.objectives.iter().map(|o| o.optimizer.lr()).collect()
    });
    let names: Vec<String> = multi.map_or_else(
        || vec!["loss".to_string()],
        |m| m.objectives.iter().map(|o| o.name.clone()).collect(),
    );
    let mut p = match from {
        Some((p, states)) => {
            restore_states(exe.as_mut(), &built, &states)?;
            p
        }
        None => Progress::new(lr0),
    };
    let (b1, b2) = match plan.optimizer {
        Optimizer::Adam { beta1, beta2, .. } | Optimizer::AdamW { beta1, beta2, .. } => {
            (beta1, beta2)
        }
        _ => (0.0, 0.0),
    };
    let fold_tag = if nfolds > 1 {
        format!("fold {}/{nfolds} ", fi + 1)
    } else {
        String::new()
    };
    // A tree model grows its rounds instead of running epochs.
    let kept_round = match plan.trees {
        Some(_) => grow::grow(
            job,
            fi,
            &feed,
            &pre,
            &built,
            exe.as_mut(),
            &mut p,
            finished,
            lines,
            &fold_tag,
        )?,
        None => None,
    };
    while plan.trees.is_none() && p.epoch < plan.epochs && !stopped_early(plan, &p) {
        let epoch = p.epoch;
        let lr = p.scheduler.rate(&plan.schedule, lr0, epoch, plan.epochs);
        let batches = feed.train_batches(
            dset,
            &pre,
            plan.batch,
            plan.seed,
            epoch,
            plan.shards.is_none(),
        );
        let nb = batches.total();
        let bar = super::progress::bar(
            job.opts.progress,
            nb,
            &format!("{fold_tag}epoch {}/{}", epoch + 1, plan.epochs),
        );
        let t0 = Instant::now();
        let mut loss_sum = 0.0f64;
        let mut loss_sums = vec![0.0f64; names.len()];
        for (bi, b) in batches.enumerate() {
            // A sharded step reads its own shards' rows.
            let Batch { n, rows, x, y } = b?;
            if multi.is_some() {
                let losses = super::objectives::train_step(
                    exe.as_mut(),
                    &built,
                    plan,
                    &x,
                    &y,
                    p.step,
                    epoch,
                    &lr0s,
                    &p.scheduler,
                )?;
                for (k, loss) in losses.iter().enumerate() {
                    if !loss.is_finite() {
                        bar.finish_and_clear();
                        return Err(diverged(
                            plan,
                            &format!("the loss of objective `{}`", names[k]),
                            *loss,
                            &fold_tag,
                            epoch,
                            bi,
                            nb,
                        ));
                    }
                    loss_sums[k] += f64::from(*loss) * n as f64;
                }
                p.step += 1;
                bar.inc(1);
                continue;
            }
            let t = (p.step + 1) as i32;
            let bc1 = if b1 > 0.0 {
                1.0 / (1.0 - b1.powi(t))
            } else {
                1.0
            };
            let bc2 = if b2 > 0.0 {
                1.0 / (1.0 - b2.powi(t))
            } else {
                1.0
            };
            let loss = if let Some(shards) = plan.shards {
                let step = Step {
                    lr: lr as f32,
                    counter: p.step,
                    bc1: bc1 as f32,
                    bc2: bc2 as f32,
                };
                sharded_step(job, &built, exe.as_mut(), &pre, shards, &rows, step)?
            } else {
                let f = *built.train.get(&n).ok_or_else(|| {
                    Diagnostic::internal(format!("no training function for batch {n}"))
                })?;
                let inputs = [
                    x,
                    y,
                    HostTensor::scalar(lr as f32),
                    HostTensor::scalar_i32(p.step as i32),
                    HostTensor::scalar(bc1 as f32),
                    HostTensor::scalar(bc2 as f32),
                ];
                let out = exe.run(f, &inputs).map_err(|e| e.diagnostic())?;
                out[0].item()
            };
            if !loss.is_finite() {
                bar.finish_and_clear();
                return Err(diverged(
                    plan,
                    "the training loss",
                    loss,
                    &fold_tag,
                    epoch,
                    bi,
                    nb,
                ));
            }
            loss_sum += f64::from(loss) * n as f64;
            p.step += 1;
            bar.inc(1);
        }
        let secs = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        p.epoch_rates.push(train_rows as f64 / secs.max(1e-9));
        let train_loss = loss_sum / train_rows.max(1) as f64;
        let train_losses: Vec<f64> = loss_sums
            .iter()
            .map(|s| s / train_rows.max(1) as f64)
            .collect();
        let val = evaluate_any(
            exe.as_mut(),
            &built,
            plan,
            dset,
            &pre,
            &feed,
            Part::Val,
            "val",
        )?;
        let finite = |x: f64| x.is_finite().then_some(x);
        let train_figures: BTreeMap<String, Value> = if multi.is_some() {
            names
                .iter()
                .zip(&train_losses)
                .map(|(n, l)| (n.clone(), json_number(*l)))
                .collect()
        } else {
            [("loss".to_string(), json_number(train_loss))].into()
        };
        let line = MetricsLine {
            epoch: Some(epoch + 1),
            fold: (nfolds > 1).then_some(fi + 1),
            lr: if multi.is_some() {
                super::objectives::rates(plan, &lr0s, epoch, &p.scheduler)
                    .first()
                    .copied()
                    .and_then(finite)
            } else {
                finite(lr)
            },
            train: train_figures.clone(),
            val: (feed.len(Part::Val) > 0).then(|| val.clone()),
            seconds: finite(secs),
        };
        let metrics_path = dir.join(rundir::METRICS);
        rundir::append_jsonl(&metrics_path, &line).map_err(|e| io_error(&metrics_path, e))?;
        *lines += 1;
        if job.opts.verbose {
            if multi.is_some() {
                eprintln!(
                    "{}",
                    super::report::objectives_line(
                        &fold_tag,
                        epoch,
                        plan.epochs,
                        &train_figures,
                        &val,
                        secs
                    )
                );
            } else {
                eprintln!(
                    "{}",
                    epoch_line(&fold_tag, epoch, plan.epochs, train_loss, &val, secs)
                );
            }
        }
        // The samples of this epoch: a grid per epoch, the tensor of the last.
        if multi.is_some()
            && let Some(t) = super::objectives::samples(exe.as_mut(), &built, plan)?
        {
            super::objectives::write_grid(dir, epoch + 1, &t)?;
            super::objectives::write_last(dir, &t, &plan.name)?;
        }
        // Early stopping watches the monitored figure; the best epoch's weights are kept.
        let monitored = monitored(plan, train_loss, &train_figures, &val);
        p.scheduler.observe(&plan.schedule, monitored);
        watch_early(plan, &mut p, monitored, epoch + 1, || {
            weights(exe.as_ref(), &built)
        })?;
        p.epoch = epoch + 1;
        p.last_val = val;
        let stop = stopped_early(plan, &p);
        let interrupted = interrupt_agreed(job)?;
        if p.epoch % plan.checkpoint_every.max(1) == 0
            || p.epoch == plan.epochs
            || stop
            || interrupted
        {
            let states = all_states(exe.as_ref(), &built)?;
            save_checkpoint(job, fi, &p, states, finished, *lines)?;
        }
        if interrupted && ((p.epoch < plan.epochs && !stop) || fi + 1 < job.loaded.folds()) {
            return Err(interrupted_after(
                job,
                &format!("{fold_tag}epoch {}", p.epoch),
            ));
        }
        if stop
            && job.opts.verbose
            && let Some(es) = &plan.early_stop
        {
            eprintln!(
                "{fold_tag}early stop after epoch {}: `{}` has not improved for {} epochs",
                p.epoch,
                es.monitor.name(),
                es.patience
            );
        }
    }
    let epochs_run = p.epoch;
    let restored = match p.early.best {
        Some((_, e, ws)) => {
            restore(exe.as_mut(), &built, &ws)?;
            // samples.safetensors shows the models the run keeps: the best epoch's.
            if multi.is_some()
                && let Some(t) = super::objectives::samples(exe.as_mut(), &built, plan)?
            {
                super::objectives::write_last(dir, &t, &plan.name)?;
            }
            Some(e)
        }
        None => kept_round,
    };
    let best_epoch = restored.unwrap_or(epochs_run);
    // The reference of drift monitoring: the training rows as they came, and the answers
    // of the model on the validation rows.
    let k = dset.target.kind.classes();
    let (val, test, profile) = match feed.rows(Part::Train) {
        // A stream: the validation figures and answers, the test figures and the drift
        // profile's sample of training rows, in one pass.
        None => {
            let (all, sample) = eval_parts(
                exe.as_mut(),
                &built,
                plan,
                dset,
                &pre,
                &feed,
                &[Part::Val, Part::Test],
                Some(PROFILE_ROWS),
            )?;
            let answers =
                crate::monitor::profile::answers(&all[0].outs, k.unwrap_or(1), k.is_some());
            let sample = sample.ok_or_else(|| Diagnostic::internal("no sample of a stream"))?;
            let mut profile = crate::monitor::profile::profile(&plan.name, &sample, &answers, k);
            profile.rows = train_rows;
            (
                figures_from(plan, dset, &all[0]),
                figures_from(plan, dset, &all[1]),
                profile,
            )
        }
        Some((data, rows)) => {
            // Trees were scored on the host while growing: the figures reported are the
            // program's, as eval and predict compute them.
            let val = if restored.is_some() || plan.trees.is_some() {
                evaluate_any(
                    exe.as_mut(),
                    &built,
                    plan,
                    dset,
                    &pre,
                    &feed,
                    Part::Val,
                    "val",
                )?
            } else {
                p.last_val
            };
            let test = evaluate_any(
                exe.as_mut(),
                &built,
                plan,
                dset,
                &pre,
                &feed,
                Part::Test,
                "test",
            )?;
            let answers = if feed.len(Part::Val) == 0 || multi.is_some() {
                Vec::new()
            } else {
                let (_, outs, _) =
                    eval_feed(exe.as_mut(), &built, plan, dset, &pre, &feed, Part::Val)?;
                crate::monitor::profile::answers(&outs, k.unwrap_or(1), k.is_some())
            };
            let profile =
                crate::monitor::profile::profile_rows(&plan.name, &pre, data, rows, &answers, k);
            (val, test, profile)
        }
    };
    let mut rates = p.epoch_rates;
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    Ok(FoldOutcome {
        figures: FoldFigures {
            best_epoch,
            epochs_run,
            val,
            test,
            samples_per_second: median,
        },
        weights: weights(exe.as_ref(), &built)?,
        preprocessor: pre,
        profile,
    })
}

/// The figure early stopping (and a plateau schedule) watches after an epoch or a round.
fn monitored(
    plan: &TrainPlan,
    train_loss: f64,
    train: &BTreeMap<String, Value>,
    val: &BTreeMap<String, Value>,
) -> Option<f64> {
    match plan
        .early_stop
        .as_ref()
        .and_then(|es| es.monitor.objective.as_ref().map(|o| (es, o)))
    {
        Some((es, o)) if es.monitor.split == "train" => figure(train, o),
        Some((_, o)) => figure(val, o),
        None => monitor_value(plan, train_loss, val),
    }
}

/// Early stopping's bookkeeping after epoch (or round) `done`: a better monitored value `v`
/// becomes the best, with `snapshot()` (what restores it); otherwise one more epoch without
/// improvement.
fn watch_early(
    plan: &TrainPlan,
    p: &mut Progress,
    v: Option<f64>,
    done: usize,
    snapshot: impl FnOnce() -> Result<Vec<NamedTensor>, Diagnostic>,
) -> Result<(), Diagnostic> {
    let (Some(es), Some(v)) = (&plan.early_stop, v) else {
        return Ok(());
    };
    let improved = match &p.early.best {
        None => true,
        Some((b, _, _)) if es.monitor.higher_is_better() => v > b + es.min_delta,
        Some((b, _, _)) => v < b - es.min_delta,
    };
    if improved {
        p.early.best = Some((v, done, snapshot()?));
        p.early.bad_epochs = 0;
    } else {
        p.early.bad_epochs += 1;
    }
    Ok(())
}

/// Write fold `fi`'s checkpoint at `p` with the program's `states`.
fn save_checkpoint(
    job: &Job<'_>,
    fi: usize,
    p: &Progress,
    states: Vec<NamedTensor>,
    finished: &[FoldFigures],
    lines: usize,
) -> Result<(), Diagnostic> {
    let c = Checkpoint {
        train: job.plan.name.clone(),
        fold: fi,
        progress: p.clone(),
        states,
        finished: finished.to_vec(),
        metrics_lines: lines,
        wall_seconds: job.wall_seconds(),
    };
    checkpoint::save(job.dir, &c).map_err(|e| io_error(&job.dir.join(checkpoint::LATEST), e))
}

/// Ctrl-C honoured after `what` (`fold 2/5 epoch 3`): the checkpoint is saved.
fn interrupted_after(job: &Job<'_>, what: &str) -> Diagnostic {
    Diagnostic::error(
        super::interrupt::CODE,
        format!(
            "`{}` was interrupted after {what}; its checkpoint is saved",
            job.plan.name
        ),
    )
    .with_help(format!("finish it with `mlx resume {}`", job.dir.display()))
}

/// The figures of the model on `rows`: the loss and metrics, or each objective's loss.
#[allow(clippy::too_many_arguments)]
fn evaluate_any(
    exe: &mut dyn Executable,
    built: &Built,
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    pre: &Preprocessor,
    feed: &Feed<'_>,
    part: Part,
    split: &str,
) -> Result<BTreeMap<String, Value>, Diagnostic> {
    if plan.multi.is_some() {
        let (data, rows) = feed
            .rows(part)
            .ok_or_else(|| Diagnostic::internal("objectives on a streamed dataset"))?;
        super::objectives::evaluate(exe, built, plan, dset, pre, data, rows, split)
    } else {
        evaluate_feed(exe, built, plan, dset, pre, feed, part)
    }
}

/// `mlx::train::diverged`: a loss became NaN or infinite.
fn diverged(
    plan: &TrainPlan,
    what: &str,
    loss: f32,
    fold_tag: &str,
    epoch: usize,
    bi: usize,
    batches: usize,
) -> Diagnostic {
    Diagnostic::error(
        "mlx::train::diverged",
        format!(
            "{what} became {} at {fold_tag}epoch {}, batch {} of {batches}",
            if loss.is_nan() { "NaN" } else { "infinite" },
            epoch + 1,
            bi + 1,
        ),
    )
    .with_label(plan.span, "in this train")
    .with_help(if plan.multi.is_some() {
        "lower the learning rate (e.g. `--set objective.NAME.optimizer.lr=...`), add `clip_grad = 1.0` to the objective, or standardize the features; the last good checkpoint is kept in the run directory"
    } else {
        "lower the learning rate (e.g. `--set optimizer.lr=...`), add `clip_grad = 1.0`, or standardize the features; the last good checkpoint is kept in the run directory"
    })
}

fn monitor_value(plan: &TrainPlan, train_loss: f64, val: &BTreeMap<String, Value>) -> Option<f64> {
    let m = match (&plan.early_stop, &plan.schedule) {
        (Some(es), _) => &es.monitor,
        (None, hir::Schedule::ReduceOnPlateau { monitor, .. }) => monitor,
        _ => return None,
    };
    if m.split == "train" {
        return (m.metric.is_none()).then_some(train_loss);
    }
    figure(val, m.metric.map_or("loss", hir::Metric::name))
}
