//! The commands behind the CLI, as library functions: `run`, `eval`, `predict` and `ir`. Each
//! returns its output and diagnostics; `main.rs` only renders and maps exit statuses.

use crate::backend::{self, BackendKind, HostTensor};
use crate::check::hir::{self, TargetKind, TrainPlan};
use crate::data::{Data, Preprocessor};
use crate::diagnostics::{Diagnostic, did_you_mean, has_errors};
use crate::driver::{self, Checked};
use crate::source::SourceMap;
use crate::train::graph::{self, Spec};
use crate::train::run::{self, Context, Options};
use crate::train::rundir;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub struct RunOptions {
    pub train: Option<String>,
    pub backend: BackendKind,
    pub out: PathBuf,
    pub progress: bool,
    pub verbose: bool,
    /// Sweep trials run at a time.
    pub jobs: usize,
    /// Draw the plots of every run and sweep when it ends.
    pub plot: bool,
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
        Some(name) => match program.trains.iter().find(|t| &t.name == name) {
            Some(t) => vec![t],
            None => {
                let names: Vec<&str> = program.trains.iter().map(|t| t.name.as_str()).collect();
                let mut d = Diagnostic::error(
                    "mlx::run::unknown_train",
                    format!("`{name}` is not a train of {}", file.display()),
                );
                d = match did_you_mean(name, names.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("its trains are: {}", names.join(", "))),
                };
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
    };
    let ropts = Options {
        backend: opts.backend,
        out: opts.out.clone(),
        progress: opts.progress,
        verbose: opts.verbose,
        threads: None,
    };
    let mut dirs = Vec::new();
    for t in trains {
        match run::train(&ctx, t, &ropts) {
            Ok(o) => {
                if opts.plot
                    && let Some(d) = &o.dir
                {
                    diags.extend(plot_warning(d));
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
                    diags.extend(plot_warning(&d));
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

/// Draw the plots of a finished run or sweep; a failure is only a warning, never the run's.
pub fn plot_warning(dir: &Path) -> Option<Diagnostic> {
    let d = crate::plot::plot(dir).err()?;
    Some(
        Diagnostic::warning(
            "mlx::plot::failed",
            format!(
                "the plots of {} were not drawn: {}",
                dir.display(),
                d.message
            ),
        )
        .with_help(format!("try again with `mlx plot {}`", dir.display())),
    )
}

/// A run directory, re-checked: its program, train plan and dataset plan.
struct Reopened {
    checked: Checked,
    train: String,
    summary: Value,
    dir: PathBuf,
}

fn reopen(dir: &Path) -> Result<Reopened, Failed> {
    let fail = |d: Diagnostic| (SourceMap::new(), vec![d]);
    let summary_path = dir.join("summary.json");
    let text = std::fs::read_to_string(&summary_path).map_err(|e| {
        fail(
            Diagnostic::error(
                "mlx::rundir::missing",
                format!(
                    "{} is not a run directory: cannot read summary.json ({})",
                    dir.display(),
                    crate::data::csv::io_message(&e)
                ),
            )
            .with_help("give the directory `mlx run` printed as its last line"),
        )
    })?;
    let summary: Value = serde_json::from_str(&text).map_err(|e| {
        fail(Diagnostic::error(
            "mlx::rundir::corrupt",
            format!("{} is not valid JSON: {e}", summary_path.display()),
        ))
    })?;
    if summary.get("status").and_then(Value::as_str) != Some("completed") {
        return Err(fail(Diagnostic::error(
            "mlx::rundir::incomplete",
            format!(
                "the run in {} did not complete, so it has no final model",
                dir.display()
            ),
        )));
    }
    let train = summary
        .get("train")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let checked = driver::check_file(&dir.join("spec.mlx"), &[]);
    if !checked.ok() {
        return Err((checked.sources, checked.diags));
    }
    Ok(Reopened {
        checked,
        train,
        summary,
        dir: dir.to_path_buf(),
    })
}

impl Reopened {
    fn plans(&self) -> Result<(&hir::Program, &TrainPlan, &hir::DatasetPlan), Failed> {
        let fail = |d: Diagnostic| (SourceMap::new(), vec![d]);
        let program = self
            .checked
            .program
            .as_ref()
            .ok_or_else(|| fail(Diagnostic::internal("checked run without program")))?;
        let plan = program
            .trains
            .iter()
            .find(|t| t.name == self.train)
            .ok_or_else(|| {
                fail(Diagnostic::error(
                    "mlx::rundir::corrupt",
                    format!("spec.mlx has no train `{}`", self.train),
                ))
            })?;
        let d = run::dataset(program, plan).map_err(fail)?;
        Ok((program, plan, d))
    }

    fn preprocessor(&self) -> Result<Preprocessor, Failed> {
        let p = self.dir.join("preprocess.json");
        let text = std::fs::read_to_string(&p).map_err(|e| {
            (
                SourceMap::new(),
                vec![Diagnostic::error(
                    "mlx::rundir::missing",
                    format!(
                        "cannot read {}: {}",
                        p.display(),
                        crate::data::csv::io_message(&e)
                    ),
                )],
            )
        })?;
        serde_json::from_str(&text).map_err(|e| {
            (
                SourceMap::new(),
                vec![Diagnostic::error(
                    "mlx::rundir::corrupt",
                    format!("{} is corrupt: {e}", p.display()),
                )],
            )
        })
    }

    /// A compiled program for `batches` with the saved weights loaded.
    fn compile(
        &self,
        backend: BackendKind,
        eval: Vec<usize>,
        predict: Vec<usize>,
    ) -> Result<(graph::Built, Box<dyn backend::Executable>), Failed> {
        let (program, plan, d) = self.plans()?;
        let fail = |d: Diagnostic| (SourceMap::new(), vec![d]);
        let spec = Spec {
            hir: program,
            plan,
            dataset: d,
            train_batches: Vec::new(),
            eval_batches: eval,
            predict_batches: predict,
        };
        let built = graph::build(&spec).map_err(fail)?;
        let (be, _) = backend::select(backend).map_err(fail)?;
        let mut exe = be.compile(&built.program).map_err(fail)?;
        let (tensors, _) = rundir::load_safetensors(&self.dir.join("model.safetensors"))
            .map_err(|m| fail(Diagnostic::error("mlx::rundir::corrupt", m)))?;
        for (i, s) in built.program.states.iter().enumerate() {
            if s.kind == crate::ir::StateKind::Optimizer {
                continue;
            }
            let t = tensors.iter().find(|t| t.name == s.name).ok_or_else(|| {
                fail(Diagnostic::error(
                    "mlx::rundir::corrupt",
                    format!("model.safetensors has no tensor `{}`", s.name),
                ))
            })?;
            exe.write_state(i, &HostTensor::f32(t.shape.clone(), t.data.clone()))
                .map_err(|e| fail(e.diagnostic()))?;
        }
        Ok((built, exe))
    }

    /// Warnings for data files whose content changed since the run.
    fn data_drift(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.dir.join("mlx.lock")) else {
            return vec!["the run has no mlx.lock; its data cannot be verified".into()];
        };
        let Ok(lock) = serde_json::from_str::<Value>(&text) else {
            return vec!["mlx.lock is corrupt".into()];
        };
        let mut out = Vec::new();
        for f in lock
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(p), Some(h)) = (
                f.get("path").and_then(Value::as_str),
                f.get("sha256").and_then(Value::as_str),
            ) else {
                continue;
            };
            match rundir::sha256_file(Path::new(p)) {
                Ok(now) if now == h => {}
                Ok(_) => out.push(format!("{p} has changed since the run")),
                Err(e) => out.push(format!("{p} cannot be read: {e}")),
            }
        }
        out
    }
}

/// `mlx eval`: the saved model on the run's test split (the same split, from the same seed).
pub fn eval(dir: &Path, backend: BackendKind) -> Result<String, Failed> {
    let r = reopen(dir)?;
    for w in r.data_drift() {
        eprintln!("warning: {w}");
    }
    let (_, plan, d) = r.plans()?;
    let fail = |d: Diagnostic| (SourceMap::new(), vec![d]);
    let data = Data::load(d).map_err(|e| fail(e.diagnostic()))?;
    let folds = data.folds(d, plan.seed).map_err(|e| fail(e.diagnostic()))?;
    let fold = folds
        .last()
        .ok_or_else(|| fail(Diagnostic::internal("no fold")))?;
    let (rows, split) = if !fold.test.is_empty() {
        (&fold.test, "test")
    } else {
        (&fold.val, "val")
    };
    if rows.is_empty() {
        return Err(fail(Diagnostic::error(
            "mlx::eval::no_test",
            format!(
                "the dataset `{}` has no test or validation rows to evaluate on",
                d.name
            ),
        )));
    }
    let pre = r.preprocessor()?;
    let (built, mut exe) = r.compile(
        backend,
        run::batch_sizes(rows.len(), plan.batch),
        Vec::new(),
    )?;
    let figures = run::evaluate(exe.as_mut(), &built, plan, d, &pre, &data, rows).map_err(fail)?;
    let out = json!({ "train": plan.name, split: figures, "recorded": r.summary.get(split) });
    Ok(serde_json::to_string_pretty(&out).unwrap_or_default())
}

/// `mlx predict`: CSV with the predicted class and class probabilities (or the value) per row.
pub fn predict(
    dir: &Path,
    input: &Path,
    backend: BackendKind,
) -> Result<(String, Vec<String>), Failed> {
    let r = reopen(dir)?;
    let (_, plan, d) = r.plans()?;
    let fail = |d: Diagnostic| (SourceMap::new(), vec![d]);
    let data = Data::load_for_predict(d, input).map_err(|e| fail(e.diagnostic()))?;
    let pre = r.preprocessor()?;
    let n = data.len();
    let rows: Vec<usize> = (0..n).collect();
    let mut warnings = Vec::new();
    let unseen = pre.unseen_levels(&data, &rows);
    if !unseen.is_empty() {
        let shown: Vec<String> = unseen
            .iter()
            .take(5)
            .map(|(row, what)| format!("row {}: {what}", row + 1))
            .collect();
        warnings.push(format!(
            "{} row{} have category levels never seen in training, encoded as all zeros ({}{})",
            unseen.len(),
            if unseen.len() == 1 { "" } else { "s" },
            shown.join("; "),
            if unseen.len() > 5 { "; ..." } else { "" }
        ));
    }
    if !data.unusable_rows().is_empty() {
        warnings.push(format!(
            "{} row{} have missing values the model cannot use (a `drop_missing` column); their prediction is left empty",
            data.unusable_rows().len(),
            if data.unusable_rows().len() == 1 { "" } else { "s" }
        ));
    }
    let (built, mut exe) =
        r.compile(backend, Vec::new(), run::batch_sizes(n.max(1), plan.batch))?;
    let mut outs: Vec<f32> = Vec::new();
    for chunk in rows.chunks(plan.batch) {
        let f = *built
            .predict
            .get(&chunk.len())
            .ok_or_else(|| fail(Diagnostic::internal("no predict function")))?;
        let mut x = Vec::new();
        pre.features(&data, chunk, &mut x)
            .map_err(|e| fail(e.diagnostic()))?;
        let mut shape = vec![chunk.len()];
        shape.extend(d.feature_shape.iter().copied());
        let o = exe
            .run(f, &[HostTensor::f32(shape, x)])
            .map_err(|e| fail(e.diagnostic()))?;
        outs.extend_from_slice(o[0].as_f32());
    }
    let mut csv = String::new();
    match &d.target.kind {
        TargetKind::Class { levels, .. } => {
            let k = levels.len();
            csv.push_str("prediction");
            for l in levels {
                csv.push_str(&format!(",p_{}", csv_field(l)));
            }
            csv.push('\n');
            for (i, row) in outs.chunks(k.max(1)).enumerate() {
                if data.is_unusable(i) || row.iter().any(|v| !v.is_finite()) {
                    csv.push_str(&",".repeat(k));
                    csv.push('\n');
                    continue;
                }
                let best = row
                    .iter()
                    .enumerate()
                    .fold(0, |b, (j, v)| if *v > row[b] { j } else { b });
                csv.push_str(&csv_field(&levels[best]));
                for v in row {
                    csv.push_str(&format!(",{v:.6}"));
                }
                csv.push('\n');
            }
        }
        TargetKind::Regression => {
            csv.push_str("prediction\n");
            for (i, v) in outs.iter().enumerate() {
                if data.is_unusable(i) || !v.is_finite() {
                    csv.push('\n');
                } else {
                    csv.push_str(&format!("{v}\n"));
                }
            }
        }
    }
    Ok((csv, warnings))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
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
    };
    Ok(graph::build(&spec).map_err(fail)?.program)
}
