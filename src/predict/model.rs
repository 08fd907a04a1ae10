//! A trained model reopened from its run directory: takes the directory and gives the checked
//! program's plans, the fitted preprocessing, the input schema, and an executable with the
//! saved weights, compiled once for a ladder of batch sizes (powers of two up to the largest),
//! that turns preprocessed rows into outputs in any number of rows.

use crate::backend::{self, BackendKind, Executable, HostTensor};
use crate::check::hir::{self, TrainPlan};
use crate::data::{Data, Preprocessor};
use crate::diagnostics::Diagnostic;
use crate::driver::{self, Checked};
use crate::rundir::{self, InputSchema, Lock, RunDir, Summary};
use crate::source::SourceMap;
use crate::train::graph::{self, Spec};
use crate::train::run;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Sources (for rendering) and every diagnostic.
pub type Failed = (SourceMap, Vec<Diagnostic>);

fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

/// A completed run, reopened: its documents and its program checked again.
pub struct Reopened {
    pub run: RunDir,
    pub summary: Summary,
    checked: Checked,
}

impl Reopened {
    /// Open `dir` (a completed run or trial), check that its program and weights are the
    /// ones its lock vouches for (unless `ignore_lock`: then a mismatch is a warning), and
    /// check its `spec.mlx` again, with the data schemas it recorded.
    pub fn open(dir: &std::path::Path, ignore_lock: bool) -> Result<Reopened, Failed> {
        let run = rundir::open(dir)
            .and_then(RunDir::require_run)
            .map_err(fail)?;
        let summary = run.completed_summary().map_err(fail)?;
        let problems = match run.lock() {
            Ok(lock) => rundir::lock::check_model(&run.dir, &lock),
            Err(d) => vec![d],
        };
        if ignore_lock {
            for d in &problems {
                eprintln!("warning: {} (--ignore-lock)", d.message);
            }
        } else if !problems.is_empty() {
            let help = "restore the run directory as `mlx run` wrote it, train again with `mlx run`, or pass `--ignore-lock` to use it anyway";
            return Err((
                SourceMap::new(),
                problems
                    .into_iter()
                    .map(|d| {
                        if d.help.is_none() {
                            d.with_help(help)
                        } else {
                            d
                        }
                    })
                    .collect(),
            ));
        }
        // The schemas the run recorded: its training data need not be here any more.
        let mut schemas = driver::RecordedSchemas {
            recorded: run
                .source_schemas()
                .map_err(fail)?
                .into_iter()
                .map(|s| (s.loader, std::sync::Arc::new(s.schema)))
                .collect(),
            disk: driver::DiskSchemas::default(),
        };
        let checked = driver::check_file_with(&run.path(rundir::SPEC), &[], &mut schemas);
        if !checked.ok() {
            return Err((checked.sources, checked.diags));
        }
        Ok(Reopened {
            run,
            summary,
            checked,
        })
    }

    /// The sources the program was checked from (to render diagnostics that point into it).
    pub fn sources(&self) -> &SourceMap {
        &self.checked.sources
    }

    /// The program, the run's train plan and its dataset plan (a run of one model).
    pub fn plans(&self) -> Result<(&hir::Program, &TrainPlan, &hir::DatasetPlan), Failed> {
        let (program, plan, d) = self.plans_any()?;
        if let Some(m) = &plan.multi {
            let names: Vec<&str> = m.models.iter().map(|s| s.name.as_str()).collect();
            return Err(fail(
                Diagnostic::error(
                    "mlx::rundir::models",
                    format!(
                        "run `{}` trained several models ({}) with objectives: predicting, serving and exporting need `--model NAME`; explaining and monitoring them are not available",
                        plan.name,
                        names.join(", ")
                    ),
                )
                .with_help(format!(
                    "choose one: `mlx predict {dir} --model {m} ROWS.json`, `mlx serve {dir} --model {m}`, `mlx export {dir} --model {m}`; the weights are in model.safetensors (tensors named `{m}.…`), the samples in samples.safetensors",
                    dir = self.run.dir.display(),
                    m = names.first().copied().unwrap_or("m"),
                )),
            ));
        }
        Ok((program, plan, d))
    }

    /// The program, the run's train plan and its dataset plan, whatever the train.
    pub fn plans_any(&self) -> Result<(&hir::Program, &TrainPlan, &hir::DatasetPlan), Failed> {
        let program = self
            .checked
            .program
            .as_ref()
            .ok_or_else(|| fail(Diagnostic::internal("checked run without program")))?;
        let plan = program
            .trains
            .iter()
            .find(|t| t.name == self.summary.train)
            .ok_or_else(|| {
                fail(Diagnostic::error(
                    "mlx::rundir::corrupt",
                    format!(
                        "{} has no train `{}`",
                        self.run.path(rundir::SPEC).display(),
                        self.summary.train
                    ),
                ))
            })?;
        let d = run::dataset(program, plan).map_err(fail)?;
        Ok((program, plan, d))
    }

    /// A compiled program with evaluation functions for `eval` batch sizes and prediction
    /// functions for `predict` ones, the saved weights loaded.
    pub fn compile(
        &self,
        backend: BackendKind,
        eval: Vec<usize>,
        predict: Vec<usize>,
    ) -> Result<(graph::Built, Box<dyn Executable>), Failed> {
        let spec = self.spec(eval, predict)?;
        let built = graph::build(&spec).map_err(fail)?;
        let exe = self.compile_program(backend, &built.program)?;
        Ok((built, exe))
    }

    /// The program spec of the run's train with evaluation functions for `eval` batch sizes
    /// and prediction functions for `predict` ones (no training functions).
    pub fn spec(&self, eval: Vec<usize>, predict: Vec<usize>) -> Result<Spec<'_>, Failed> {
        let (program, plan, d) = self.plans()?;
        Ok(Spec {
            hir: program,
            plan,
            dataset: d,
            train_batches: Vec::new(),
            eval_batches: eval,
            predict_batches: predict,
            shard_batches: Vec::new(),
        })
    }

    /// `program` (built from [`Reopened::spec`], with any functions added) compiled, the
    /// saved weights loaded into its states.
    pub fn compile_program(
        &self,
        backend: BackendKind,
        program: &crate::ir::Program,
    ) -> Result<Box<dyn Executable>, Failed> {
        let (be, note) = backend::select(backend).map_err(fail)?;
        if let Some(n) = note {
            eprintln!("note: {n}");
        }
        let mut exe = be.compile(program).map_err(fail)?;
        let tensors = self.run.weights().map_err(fail)?;
        for (i, s) in program.states.iter().enumerate() {
            if s.kind == crate::ir::StateKind::Optimizer {
                continue;
            }
            let t = tensors.iter().find(|t| t.name == s.name).ok_or_else(|| {
                fail(Diagnostic::error(
                    "mlx::rundir::corrupt",
                    format!(
                        "{} has no tensor `{}`",
                        self.run.path(rundir::MODEL).display(),
                        s.name
                    ),
                ))
            })?;
            exe.write_state(i, &HostTensor::f32(t.shape.clone(), t.data.clone()))
                .map_err(|e| fail(e.diagnostic()))?;
        }
        Ok(exe)
    }

    /// Warnings for data files whose content changed since the run.
    pub fn data_drift(&self) -> Vec<String> {
        let lock = match self.run.lock() {
            Ok(l) => l,
            Err(d) => return vec![format!("the run's data cannot be verified: {}", d.message)],
        };
        let mut out = Vec::new();
        for f in &lock.data {
            if let Some(query) = &f.query {
                // A SQL source: its rows read again and hashed.
                let url = f.path.display().to_string();
                match crate::data::sources::sql_table(&url, query) {
                    Ok((_, now)) if now == f.sha256 => {}
                    Ok(_) => out.push(format!("the rows of {url} have changed since the run")),
                    Err(e) => out.push(format!("{url} cannot be read: {}", e.message)),
                }
                continue;
            }
            match rundir::sha256_file(&f.path) {
                Ok(now) if now == f.sha256 => {}
                Ok(_) => out.push(format!("{} has changed since the run", f.path.display())),
                Err(e) => out.push(format!("{} cannot be read: {e}", f.path.display())),
            }
        }
        out
    }
}

/// The batch sizes a model is compiled for: powers of two below `max`, and `max`.
pub fn ladder(max: usize) -> Vec<usize> {
    let max = max.max(1);
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |b| b.checked_mul(2))
        .take_while(|b| *b < max)
        .collect();
    v.push(max);
    v
}

/// Everything about a model but its executable: what inputs, preprocessing and answers need.
/// Shared between threads (a server's request handlers).
pub struct ModelInfo {
    /// The train's name (the name it is served under).
    pub name: String,
    pub run: RunDir,
    pub summary: Summary,
    pub lock: Option<Lock>,
    pub input: InputSchema,
    pub dataset: hir::DatasetPlan,
    pub preprocessor: Preprocessor,
    /// Most rows one call runs.
    pub max_batch: usize,
    /// Model-input values per row.
    pub row_len: usize,
    /// Output values per row (classes, or 1; a tensor model's output row).
    pub out_len: usize,
    /// The shape of one row of the model's input (the features' shape, or a tensor model's).
    pub in_shape: Vec<usize>,
    /// Set for one model of a train with objectives, served as tensors in and out.
    pub tensor: Option<TensorIo>,
}

/// One model of a train with objectives, as served: rows of numbers in the shape it saw in
/// training, and its output tensor for each row.
#[derive(Clone, Debug)]
pub struct TensorIo {
    /// The model's name in its train.
    pub model: String,
    /// One row of its input.
    pub input: Vec<usize>,
    /// One row of its output.
    pub output: Vec<usize>,
}

impl ModelInfo {
    /// The model-input values of `data`'s rows (the fitted preprocessing applied).
    pub fn features(&self, data: &Data) -> Result<Vec<f32>, crate::data::DataError> {
        let rows: Vec<usize> = (0..data.len()).collect();
        let mut x = Vec::with_capacity(rows.len() * self.row_len);
        self.preprocessor.features(data, &rows, &mut x)?;
        Ok(x)
    }
}

/// A model ready to predict: its description and the compiled prediction functions.
pub struct Model {
    pub info: Arc<ModelInfo>,
    exe: Box<dyn Executable>,
    /// Batch size to prediction function, for every size of the ladder.
    functions: BTreeMap<usize, usize>,
}

impl Model {
    /// Load the model of the completed run in `dir`, compiled for up to `max_batch` rows a
    /// call (default: the train's batch size).
    pub fn load(
        dir: &std::path::Path,
        backend: BackendKind,
        max_batch: Option<usize>,
        ignore_lock: bool,
    ) -> Result<Model, Failed> {
        let r = Reopened::open(dir, ignore_lock)?;
        Model::from_reopened(&r, backend, max_batch)
    }

    /// The model of a reopened run, compiled for up to `max_batch` rows a call (default: the
    /// train's batch size).
    pub fn from_reopened(
        r: &Reopened,
        backend: BackendKind,
        max_batch: Option<usize>,
    ) -> Result<Model, Failed> {
        let input = r.run.input().map_err(fail)?;
        let preprocessor = r.run.preprocessor().map_err(fail)?;
        let (_, plan, d) = r.plans()?;
        let max_batch = max_batch.unwrap_or(plan.batch).max(1);
        let sizes = ladder(max_batch);
        let (built, exe) = r.compile(backend, Vec::new(), sizes.clone())?;
        let functions: BTreeMap<usize, usize> = sizes
            .iter()
            .filter_map(|b| built.predict.get(b).map(|f| (*b, *f)))
            .collect();
        if functions.len() != sizes.len() {
            return Err(fail(Diagnostic::internal(
                "a prediction function is missing",
            )));
        }
        let info = ModelInfo {
            name: plan.name.clone(),
            lock: r.run.lock().ok(),
            dataset: d.clone(),
            run: r.run.clone(),
            summary: r.summary.clone(),
            input,
            preprocessor,
            max_batch,
            row_len: d.feature_shape.iter().product(),
            out_len: d.target.kind.classes().unwrap_or(1),
            in_shape: d.feature_shape.clone(),
            tensor: None,
        };
        Ok(Model {
            info: Arc::new(info),
            exe,
            functions,
        })
    }

    /// Load the model `name` of the train with objectives whose completed run is in `dir`,
    /// compiled for up to `max_batch` rows a call (default: the train's batch size).
    pub fn load_slot(
        dir: &std::path::Path,
        name: &str,
        backend: BackendKind,
        max_batch: Option<usize>,
        ignore_lock: bool,
    ) -> Result<Model, Failed> {
        let r = Reopened::open(dir, ignore_lock)?;
        let (program, plan, d) = r.plans_any()?;
        let slot = super::slot::find(plan, name, "mlx::serve::model")?;
        let max_batch = max_batch.unwrap_or(plan.batch).max(1);
        let sizes = ladder(max_batch);
        let (prog, functions, row) =
            graph::slot_program(program, plan, slot, &sizes).map_err(fail)?;
        let mut exe = r.compile_program(backend, &prog)?;
        // One row of zeros tells the output's shape (and warms the executable).
        let one = *functions
            .get(&1)
            .ok_or_else(|| fail(Diagnostic::internal("a prediction function is missing")))?;
        let mut shape = vec![1];
        shape.extend(&row);
        let row_len: usize = row.iter().product::<usize>().max(1);
        let probe = exe
            .run(one, &[HostTensor::f32(shape, vec![0.0; row_len])])
            .map_err(|e| fail(e.diagnostic()))?;
        let output: Vec<usize> = probe
            .first()
            .ok_or_else(|| fail(Diagnostic::internal("a prediction function without output")))?
            .shape[1..]
            .to_vec();
        let info = ModelInfo {
            name: format!("{}.{}", plan.name, slot.name),
            lock: r.run.lock().ok(),
            dataset: d.clone(),
            run: r.run.clone(),
            summary: r.summary.clone(),
            input: r.run.input().map_err(fail)?,
            preprocessor: r.run.preprocessor().map_err(fail)?,
            max_batch,
            row_len,
            out_len: output.iter().product::<usize>().max(1),
            in_shape: row.clone(),
            tensor: Some(TensorIo {
                model: slot.name.clone(),
                input: row,
                output,
            }),
        };
        Ok(Model {
            info: Arc::new(info),
            exe,
            functions,
        })
    }

    /// The outputs of `x` (rows of `row_len` values, row-major): `out_len` values a row. Rows
    /// run in calls of at most `max_batch`, each padded with zero rows to a compiled size; a
    /// row's output does not depend on the rows that share its call.
    pub fn predict(&mut self, x: &[f32]) -> Result<Vec<f32>, Diagnostic> {
        let info = &self.info;
        let row_len = info.row_len.max(1);
        let n = x.len() / row_len;
        let mut out = Vec::with_capacity(n * info.out_len);
        let mut shape = vec![0];
        shape.extend(info.in_shape.iter().copied());
        for chunk in x.chunks(info.max_batch * row_len) {
            let rows = chunk.len() / row_len;
            let (&size, &f) = self
                .functions
                .range(rows..)
                .next()
                .ok_or_else(|| Diagnostic::internal("no prediction function for the batch"))?;
            let mut input = Vec::with_capacity(size * row_len);
            input.extend_from_slice(chunk);
            input.resize(size * row_len, 0.0);
            shape[0] = size;
            let o = self
                .exe
                .run(f, &[HostTensor::f32(shape.clone(), input)])
                .map_err(|e| e.diagnostic())?;
            let values = o
                .first()
                .ok_or_else(|| Diagnostic::internal("a prediction function without output"))?
                .as_f32();
            out.extend_from_slice(&values[..rows * info.out_len]);
        }
        Ok(out)
    }
}
