//! `mlx run` for one train: load the data, split it, and for each fold fit the preprocessing on
//! the training rows, compile the program, initialise the parameters from named streams, train
//! epoch by epoch (checkpointing, early stopping, NaN detection), evaluate, and write the run
//! directory. Everything the run writes is written atomically.

use super::graph::{self, Built, Spec};
use super::metrics;
use super::rundir::{self, NamedTensor};
use super::schedule::Scheduler;
use crate::backend::{self, BackendKind, Executable, HostTensor};
use crate::check::Override;
use crate::check::hir::{self, Optimizer, TargetKind, TrainPlan};
use crate::data::{self, Data, Fold, Preprocessor};
use crate::diagnostics::Diagnostic;
use crate::ir::StateKind;
use crate::source::SourceMap;
use crate::syntax::ast;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[cfg(test)]
pub(crate) mod differential;

/// What a run needs from the checked program.
pub struct Context<'a> {
    pub sources: &'a SourceMap,
    pub modules: &'a [ast::Module],
    pub overrides: &'a [Override],
    pub program: &'a hir::Program,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub backend: BackendKind,
    pub out: PathBuf,
    /// Draw progress bars (when standard error is a terminal).
    pub progress: bool,
    /// Print one line per epoch.
    pub verbose: bool,
}

/// A finished (or failed) run: its directory, if one was created, and its summary.
pub struct Outcome {
    pub dir: Option<PathBuf>,
    pub summary: Value,
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
                v.push(labels.clone());
            }
        }
    }
    v
}

/// Train `plan`, writing `opts.out/<name>/<run-id>/`.
pub fn train(ctx: &Context<'_>, plan: &TrainPlan, opts: &Options) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let dset = dataset(ctx.program, plan)?;
    let (backend, note) = backend::select(opts.backend)?;
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    let data = Data::load(dset).map_err(|e| e.diagnostic())?;
    let folds = data.folds(dset, plan.seed).map_err(|e| e.diagnostic())?;

    let dir = rundir::new_run_dir(&opts.out, &plan.name).map_err(|e| io_error(&opts.out, e))?;
    let fail = |d: Diagnostic| Failure {
        diagnostic: Box::new(d),
        dir: Some(dir.clone()),
    };
    let spec = super::resolve::spec_text(ctx.sources, ctx.modules, ctx.overrides, &[plan]);
    let w = |name: &str, bytes: &[u8]| {
        rundir::write_atomic(&dir.join(name), bytes).map_err(|e| io_error(&dir.join(name), e))
    };
    w("spec.mlx", spec.as_bytes()).map_err(fail)?;
    let lock = lock_json(&spec, dset, backend.name(), plan.seed);
    rundir::write_json(&dir.join("mlx.lock"), &lock)
        .map_err(|e| fail(io_error(&dir.join("mlx.lock"), e)))?;

    if opts.verbose {
        let sizes: Vec<String> = folds
            .iter()
            .take(1)
            .map(|f| {
                format!(
                    "{} train / {} val / {} test rows",
                    f.train.len(),
                    f.val.len(),
                    f.test.len()
                )
            })
            .collect();
        eprintln!(
            "training `{}`: {} on `{}` ({}{}), back end {}",
            plan.name,
            plan.model_call,
            plan.dataset,
            sizes.join(""),
            if folds.len() > 1 {
                format!(", {} folds", folds.len())
            } else {
                String::new()
            },
            backend.name()
        );
    }

    let mut fold_results = Vec::new();
    for (fi, fold) in folds.iter().enumerate() {
        let r = train_fold(
            ctx,
            plan,
            dset,
            &data,
            fold,
            fi,
            folds.len(),
            backend.as_ref(),
            &dir,
            opts,
        );
        match r {
            Ok(r) => fold_results.push(r),
            Err(d) => {
                let summary = json!({"train": plan.name, "status": "failed", "error": d.message});
                let _ = rundir::write_json(&dir.join("summary.json"), &summary);
                return Err(fail(d));
            }
        }
    }
    let Some(last) = fold_results.last() else {
        return Err(fail(Diagnostic::internal("no fold was trained")));
    };
    // The weights and statistics of the last fold are the run's model.
    let tensors = last.weights.clone();
    rundir::save_safetensors(
        &dir.join("model.safetensors"),
        &tensors,
        &[("train".into(), plan.name.clone())],
    )
    .map_err(|e| fail(io_error(&dir.join("model.safetensors"), e)))?;
    let pre = serde_json::to_value(&last.preprocessor)
        .map_err(|e| fail(Diagnostic::internal(e.to_string())))?;
    rundir::write_json(&dir.join("preprocess.json"), &pre)
        .map_err(|e| fail(io_error(&dir.join("preprocess.json"), e)))?;

    let summary = summary_json(
        plan,
        backend.name(),
        &fold_results,
        started.elapsed().as_secs_f64(),
    );
    rundir::write_json(&dir.join("summary.json"), &summary)
        .map_err(|e| fail(io_error(&dir.join("summary.json"), e)))?;
    if opts.verbose {
        print_results(plan, &summary);
    }
    Ok(Outcome {
        dir: Some(dir),
        summary,
    })
}

fn lock_json(spec: &str, d: &hir::DatasetPlan, backend: &str, seed: u64) -> Value {
    let files: Vec<Value> = data_files(d)
        .iter()
        .map(|p| {
            json!({
                "path": p.display().to_string(),
                "sha256": rundir::sha256_file(p).unwrap_or_else(|e| format!("unreadable: {e}")),
            })
        })
        .collect();
    json!({
        "mlx": env!("CARGO_PKG_VERSION"),
        "program": format!("sha256:{}", rundir::sha256_hex(spec.as_bytes())),
        "data": files,
        "backend": backend,
        "seed": seed,
    })
}

struct FoldResult {
    best_epoch: usize,
    epochs_run: usize,
    val: BTreeMap<String, Value>,
    test: BTreeMap<String, Value>,
    samples_per_second: f64,
    weights: Vec<NamedTensor>,
    preprocessor: Preprocessor,
}

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

/// Inputs for a batch: features and targets.
fn batch_inputs(
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
        TargetKind::Regression => HostTensor::f32(vec![rows.len()], y),
    };
    Ok((HostTensor::f32(shape, x), yt))
}

/// Loss and figures of the model on `rows` (evaluation mode).
pub fn evaluate(
    exe: &mut dyn Executable,
    built: &Built,
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    pre: &Preprocessor,
    data: &Data,
    rows: &[usize],
) -> Result<BTreeMap<String, Value>, Diagnostic> {
    let mut figures = BTreeMap::new();
    if rows.is_empty() {
        return Ok(figures);
    }
    let mut loss_sum = 0.0f64;
    let mut outs: Vec<f32> = Vec::new();
    let mut targets: Vec<f32> = Vec::new();
    for chunk in rows.chunks(plan.batch) {
        let f = *built.eval.get(&chunk.len()).ok_or_else(|| {
            Diagnostic::internal(format!("no evaluation function for batch {}", chunk.len()))
        })?;
        let (x, y) = batch_inputs(dset, pre, data, chunk)?;
        let r = exe.run(f, &[x, y.clone()]).map_err(|e| e.diagnostic())?;
        loss_sum += f64::from(r[0].item());
        outs.extend_from_slice(r[1].as_f32());
        targets.extend(y.into_f32());
    }
    figures.insert("loss".into(), json_number(loss_sum / rows.len() as f64));
    let more = match dset.target.kind.classes() {
        Some(_) => {
            let k = outs.len() / rows.len();
            let labels: Vec<u32> = targets.iter().map(|v| *v as u32).collect();
            metrics::classification(&outs, k, &labels, &plan.metrics)
        }
        None => metrics::regression(&outs, &targets, &plan.metrics),
    };
    figures.extend(more);
    Ok(figures)
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
    fold: &Fold,
    backend: &dyn backend::Backend,
) -> Result<(Built, Box<dyn Executable>), Diagnostic> {
    let mut eval = batch_sizes(fold.val.len(), plan.batch);
    eval.extend(batch_sizes(fold.test.len(), plan.batch));
    eval.sort_unstable();
    eval.dedup();
    let spec = Spec {
        hir: program,
        plan,
        dataset: dset,
        train_batches: batch_sizes(fold.train.len(), plan.batch),
        eval_batches: eval,
        predict_batches: Vec::new(),
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

#[allow(clippy::too_many_arguments)]
fn train_fold(
    ctx: &Context<'_>,
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    data: &Data,
    fold: &Fold,
    fi: usize,
    nfolds: usize,
    backend: &dyn backend::Backend,
    dir: &Path,
    opts: &Options,
) -> Result<FoldResult, Diagnostic> {
    let pre = Preprocessor::fit(dset, data, &fold.train).map_err(|e| e.diagnostic())?;
    let (built, mut exe) = compile(plan, dset, ctx.program, fold, backend)?;
    let lr0 = plan.optimizer.lr();
    let (b1, b2) = match plan.optimizer {
        Optimizer::Adam { beta1, beta2, .. } | Optimizer::AdamW { beta1, beta2, .. } => {
            (beta1, beta2)
        }
        _ => (0.0, 0.0),
    };
    let mut sched = Scheduler::new(lr0);
    let mut step: u64 = 0;
    let mut best: Option<(f64, usize, Vec<NamedTensor>)> = None;
    let mut bad_epochs = 0;
    let mut epoch_rates = Vec::new();
    let mut last_val = BTreeMap::new();
    let mut epochs_run = 0;
    let fold_tag = if nfolds > 1 {
        format!("fold {}/{nfolds} ", fi + 1)
    } else {
        String::new()
    };
    for epoch in 0..plan.epochs {
        let lr = sched.rate(&plan.schedule, lr0, epoch, plan.epochs);
        let batches = data::shuffled_batches(&fold.train, plan.batch, plan.seed, epoch);
        let bar = super::progress::bar(
            opts.progress,
            batches.len(),
            &format!("{fold_tag}epoch {}/{}", epoch + 1, plan.epochs),
        );
        let t0 = Instant::now();
        let mut loss_sum = 0.0f64;
        for (bi, rows) in batches.iter().enumerate() {
            let f = *built.train.get(&rows.len()).ok_or_else(|| {
                Diagnostic::internal(format!("no training function for batch {}", rows.len()))
            })?;
            let (x, y) = batch_inputs(dset, &pre, data, rows)?;
            let t = (step + 1) as i32;
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
            let inputs = [
                x,
                y,
                HostTensor::scalar(lr as f32),
                HostTensor::scalar_i32(step as i32),
                HostTensor::scalar(bc1 as f32),
                HostTensor::scalar(bc2 as f32),
            ];
            let out = exe.run(f, &inputs).map_err(|e| e.diagnostic())?;
            let loss = out[0].item();
            if !loss.is_finite() {
                bar.finish_and_clear();
                return Err(Diagnostic::error(
                    "mlx::train::diverged",
                    format!(
                        "the training loss became {} at {fold_tag}epoch {}, batch {} of {}",
                        if loss.is_nan() { "NaN" } else { "infinite" },
                        epoch + 1,
                        bi + 1,
                        batches.len()
                    ),
                )
                .with_label(plan.span, "in this train")
                .with_help("lower the learning rate (e.g. `--set optimizer.lr=...`), add `clip_grad = 1.0`, or standardize the features; the last good checkpoint is kept in the run directory"));
            }
            loss_sum += f64::from(loss) * rows.len() as f64;
            step += 1;
            bar.inc(1);
        }
        let secs = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        epoch_rates.push(fold.train.len() as f64 / secs.max(1e-9));
        let train_loss = loss_sum / fold.train.len().max(1) as f64;
        let val = evaluate(exe.as_mut(), &built, plan, dset, &pre, data, &fold.val)?;
        epochs_run = epoch + 1;
        let mut line = Map::new();
        line.insert("epoch".into(), json!(epoch + 1));
        if nfolds > 1 {
            line.insert("fold".into(), json!(fi + 1));
        }
        line.insert("lr".into(), json_number(lr));
        line.insert("train".into(), json!({"loss": json_number(train_loss)}));
        if !fold.val.is_empty() {
            line.insert(
                "val".into(),
                serde_json::to_value(&val).unwrap_or(Value::Null),
            );
        }
        line.insert("seconds".into(), json_number(secs));
        rundir::append_jsonl(&dir.join("metrics.jsonl"), &Value::Object(line))
            .map_err(|e| io_error(&dir.join("metrics.jsonl"), e))?;
        if opts.verbose {
            eprintln!(
                "{}",
                epoch_line(&fold_tag, epoch, plan.epochs, train_loss, &val, secs)
            );
        }
        // Early stopping watches the monitored figure; the best epoch's weights are kept.
        let monitored = monitor_value(plan, train_loss, &val);
        sched.observe(&plan.schedule, monitored);
        if let Some(es) = &plan.early_stop {
            let higher = es.monitor.higher_is_better();
            if let Some(v) = monitored {
                let improved = match &best {
                    None => true,
                    Some((b, _, _)) => {
                        if higher {
                            v > b + es.min_delta
                        } else {
                            v < b - es.min_delta
                        }
                    }
                };
                if improved {
                    best = Some((v, epoch + 1, weights(exe.as_ref(), &built)?));
                    bad_epochs = 0;
                } else {
                    bad_epochs += 1;
                }
            }
        }
        if (epoch + 1) % plan.checkpoint_every.max(1) == 0 || epoch + 1 == plan.epochs {
            checkpoint(exe.as_ref(), &built, dir, epoch + 1, step, fi)?;
        }
        last_val = val;
        if let Some(es) = &plan.early_stop
            && bad_epochs >= es.patience
        {
            if opts.verbose {
                eprintln!(
                    "{fold_tag}early stop after epoch {}: `{}` has not improved for {} epochs",
                    epoch + 1,
                    es.monitor.name(),
                    es.patience
                );
            }
            break;
        }
    }
    let best_epoch = match best {
        Some((_, e, ws)) => {
            restore(exe.as_mut(), &built, &ws)?;
            last_val = evaluate(exe.as_mut(), &built, plan, dset, &pre, data, &fold.val)?;
            e
        }
        None => epochs_run,
    };
    let test = evaluate(exe.as_mut(), &built, plan, dset, &pre, data, &fold.test)?;
    epoch_rates.sort_by(f64::total_cmp);
    let median = epoch_rates
        .get(epoch_rates.len() / 2)
        .copied()
        .unwrap_or(0.0);
    Ok(FoldResult {
        best_epoch,
        epochs_run,
        val: last_val,
        test,
        samples_per_second: median,
        weights: weights(exe.as_ref(), &built)?,
        preprocessor: pre,
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

/// Weights, optimizer state and position, for resuming after a crash.
fn checkpoint(
    exe: &dyn Executable,
    built: &Built,
    dir: &Path,
    epoch: usize,
    step: u64,
    fold: usize,
) -> Result<(), Diagnostic> {
    let tensors: Vec<NamedTensor> = built
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
        .collect::<Result<_, Diagnostic>>()?;
    let meta = vec![
        ("epoch".to_string(), epoch.to_string()),
        ("step".to_string(), step.to_string()),
        ("fold".to_string(), (fold + 1).to_string()),
    ];
    let p = dir.join("checkpoint.safetensors");
    rundir::save_safetensors_fast(&p, &tensors, &meta).map_err(|e| io_error(&p, e))
}

fn epoch_line(
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

fn summary_json(plan: &TrainPlan, backend: &str, folds: &[FoldResult], wall: f64) -> Value {
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

fn print_results(plan: &TrainPlan, summary: &Value) {
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
