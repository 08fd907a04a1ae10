//! The IR program of a training run: the model lowered for each batch size, with its loss,
//! gradients (autodiff), gradient clipping and optimizer updates as IR in the training
//! functions; evaluation and prediction functions run the model in evaluation mode.
//!
//! Functions, per batch size `B`:
//! - `train_B(x, y, lr, step, bc1, bc2) -> loss` updates parameters, optimizer state and
//!   buffers (`bc1`, `bc2` are Adam's bias corrections `1/(1-β^t)`; other optimizers ignore them);
//! - `eval_B(x, y) -> loss_sum, out` (per-example losses summed; `out` holds class
//!   probabilities `[B, K]` or predictions `[B, 1]`);
//! - `predict_B(x) -> out`.
//!
//! A train with `shards = S` (data-parallel training) has, instead of `train_B`, per shard size
//! `s`:
//! - `grad_s(x, y, counter, scale) -> loss, g...`: the shard's per-example losses summed and
//!   multiplied by `scale` (`1 / rows of the whole batch`), and its gradient with respect to
//!   every parameter (declaration order): a shard's share of the batch gradient;
//! - `apply(lr, bc1, bc2, g...)`: gradient clipping and the optimizer step for the gradient
//!   of the whole batch, the shards' shares added in shard order by the host.

use crate::check::hir::{self, Loss, Optimizer, TargetKind};
use crate::diagnostics::Diagnostic;
use crate::ir::build::FnBuilder;
use crate::ir::lower::{self, Lowering};
use crate::ir::{self, BinaryOp, DType, StateDecl, StateId, StateKind, UnaryOp, ValueId};
use std::collections::BTreeMap;

pub struct Spec<'a> {
    pub hir: &'a hir::Program,
    pub plan: &'a hir::TrainPlan,
    pub dataset: &'a hir::DatasetPlan,
    pub train_batches: Vec<usize>,
    pub eval_batches: Vec<usize>,
    pub predict_batches: Vec<usize>,
    /// A sharded train: the distinct sizes of its shards (`train_batches` is then unused).
    pub shard_batches: Vec<usize>,
}

pub struct Built {
    pub program: ir::Program,
    pub train: BTreeMap<usize, usize>,
    pub eval: BTreeMap<usize, usize>,
    pub predict: BTreeMap<usize, usize>,
    /// The trainable parameters, in declaration order.
    pub params: Vec<StateId>,
    /// A train with objectives: its functions (the maps above are empty).
    pub multi: Option<MultiFns>,
    /// A sharded train: `grad_s` per shard size (`train` is empty), and `apply`.
    pub grad: BTreeMap<usize, usize>,
    pub apply: Option<usize>,
}

/// The functions of a train with objectives, per objective in the order written.
///
/// - `obj_<name>_B(x, y, lr, step, bc1, bc2, noise...) -> loss`: forward, loss, gradients with
///   respect to the parameters of the models the objective updates, their optimizer step;
/// - `val_<name>_B(x, y, noise...) -> loss` in evaluation mode, no update;
/// - `samples(noise...) -> samples` in evaluation mode.
///
/// `y` is the target (class labels as I32, values as F32, NaN when the dataset has none);
/// every noise input is a standard-normal draw the host makes from the objective's streams.
#[derive(Default)]
pub struct MultiFns {
    pub train: Vec<BTreeMap<usize, usize>>,
    pub eval: Vec<BTreeMap<usize, usize>>,
    pub samples: Option<usize>,
}

/// The classes of the target, or `None` for regression.
pub fn classes(d: &hir::DatasetPlan) -> Option<usize> {
    d.target.kind.classes()
}

pub fn build(spec: &Spec<'_>) -> Result<Built, Diagnostic> {
    let mut program = ir::Program::default();
    let mut built = Built {
        program: ir::Program::default(),
        train: BTreeMap::new(),
        eval: BTreeMap::new(),
        predict: BTreeMap::new(),
        params: Vec::new(),
        multi: None,
        grad: BTreeMap::new(),
        apply: None,
    };
    if let Some(multi) = &spec.plan.multi {
        let mut fns = MultiFns::default();
        for o in &multi.objectives {
            let mut m = BTreeMap::new();
            for &bs in &spec.train_batches {
                let f = objective_fn(spec, o, &mut program.states, bs, true)?;
                program.functions.push(f);
                m.insert(bs, program.functions.len() - 1);
            }
            fns.train.push(m);
        }
        for o in &multi.objectives {
            let mut m = BTreeMap::new();
            for &bs in &spec.eval_batches {
                let f = objective_fn(spec, o, &mut program.states, bs, false)?;
                program.functions.push(f);
                m.insert(bs, program.functions.len() - 1);
            }
            fns.eval.push(m);
        }
        if let Some(s) = &multi.samples {
            let f = samples_fn(spec, s, &mut program.states)?;
            program.functions.push(f);
            fns.samples = Some(program.functions.len() - 1);
        }
        built.multi = Some(fns);
    } else {
        build_single(spec, &mut program, &mut built)?;
    }
    built.params = program
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == StateKind::Param)
        .map(|(i, _)| i)
        .collect();
    ir::verify::program(&program)?;
    built.program = program;
    Ok(built)
}

/// Concrete shapes of noise draws for a batch of `batch` rows.
pub fn noise_shapes(noise: &[Vec<crate::check::dim::Dim>], batch: usize) -> Vec<Vec<usize>> {
    noise
        .iter()
        .map(|s| {
            s.iter()
                .map(|d| {
                    d.eval(&|n| (n == hir::BATCH).then_some(batch as i64))
                        .unwrap_or(1)
                        .max(0) as usize
                })
                .collect()
        })
        .collect()
}

fn objective_fn(
    spec: &Spec<'_>,
    o: &hir::ObjectivePlan,
    states: &mut Vec<StateDecl>,
    batch: usize,
    training: bool,
) -> Result<ir::Function, Diagnostic> {
    let kind = if training { "obj" } else { "val" };
    let mut b = FnBuilder::new(&format!("{kind}_{}_{batch}", o.name), states);
    let x = b.input("x", input_shape(spec, batch), DType::F32);
    let y = b.input("y", vec![batch], target_dtype(spec));
    let (lr, step, bc1, bc2) = if training {
        (
            Some(b.input("lr", vec![], DType::F32)),
            Some(b.input("step", vec![], DType::I32)),
            Some(b.input("bc1", vec![], DType::F32)),
            Some(b.input("bc2", vec![], DType::F32)),
        )
    } else {
        (None, None, None, None)
    };
    let mut args = vec![x];
    args.push(match spec.dataset.target.kind {
        TargetKind::Class { .. } => b.cast(y, DType::F32),
        TargetKind::Regression => b.reshape(y, &[batch, 1]),
        TargetKind::Absent => y,
    });
    for (i, s) in noise_shapes(&o.noise, batch).into_iter().enumerate() {
        args.push(b.input(&format!("noise_{i}"), s, DType::F32));
    }
    let l = Lowering {
        hir: spec.hir,
        batch,
        training,
        seed: spec.plan.seed,
        counter: step,
    };
    let loss = l
        .instance(&mut b, o.instance, &args, "", "")?
        .into_iter()
        .next()
        .ok_or_else(|| Diagnostic::internal("objective without a loss"))?;
    b.origin = None;
    b.output("loss", loss);
    let (Some(lr), Some(bc1), Some(bc2)) = (lr, bc1, bc2) else {
        return Ok(b.finish());
    };
    let params: Vec<StateId> = b
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.kind == StateKind::Param
                && o.updates
                    .iter()
                    .any(|m| s.name.starts_with(&format!("{m}.")))
        })
        .map(|(i, _)| i)
        .collect();
    let reads: Vec<ValueId> = params.iter().map(|p| b.state(*p)).collect();
    let mut grads = ir::autodiff::gradients(&mut b, loss, &reads);
    if let Some(c) = o.clip_grad {
        grads = clip(&mut b, &grads, c as f32);
    }
    let prefix = format!("{}/", o.name);
    for ((p, read), g) in params.iter().zip(&reads).zip(&grads) {
        optimizer_update(&mut b, &o.optimizer, &prefix, *p, *read, *g, lr, bc1, bc2);
    }
    Ok(b.finish())
}

fn samples_fn(
    spec: &Spec<'_>,
    s: &hir::SamplesPlan,
    states: &mut Vec<StateDecl>,
) -> Result<ir::Function, Diagnostic> {
    let mut b = FnBuilder::new("samples", states);
    // The samples instance reads noise only: inputs 0 and 1 (features, target) are unused.
    let zero = b.scalar(0.0);
    let mut args = vec![zero, zero];
    for (i, sh) in noise_shapes(&s.noise, 1).into_iter().enumerate() {
        args.push(b.input(&format!("noise_{i}"), sh, DType::F32));
    }
    let l = Lowering {
        hir: spec.hir,
        batch: 1,
        training: false,
        seed: spec.plan.seed,
        counter: None,
    };
    let out = l
        .instance(&mut b, s.instance, &args, "", "")?
        .into_iter()
        .next()
        .ok_or_else(|| Diagnostic::internal("samples without a value"))?;
    b.origin = None;
    b.output("samples", out);
    Ok(b.finish())
}

fn build_single(
    spec: &Spec<'_>,
    program: &mut ir::Program,
    built: &mut Built,
) -> Result<(), Diagnostic> {
    if spec.plan.shards.is_some() && !spec.shard_batches.is_empty() {
        for &s in &spec.shard_batches {
            let f = grad_fn(spec, &mut program.states, s)?;
            program.functions.push(f);
            built.grad.insert(s, program.functions.len() - 1);
        }
        // Shards train each on its own rows: state a batch shares (batch norm's running
        // statistics) would depend on how the shards are spread over processes.
        if let Some(s) = program.states.iter().find(|s| s.kind == StateKind::Buffer) {
            return Err(Diagnostic::error(
                "mlx::train::shards",
                format!(
                    "train `{}` sets `shards`, but its model keeps running statistics (`{}`): \
                     batch normalization couples the rows of a batch, which sharded training \
                     computes apart",
                    spec.plan.name, s.name
                ),
            )
            .with_help("remove `shards`, or use a model without `batch_norm`"));
        }
        let f = apply_fn(spec, &mut program.states)?;
        program.functions.push(f);
        built.apply = Some(program.functions.len() - 1);
    } else if spec.plan.trees.is_none() {
        // Trees are grown on the host (`ensemble`), not trained by a step function.
        for &bs in &spec.train_batches {
            let f = train_fn(spec, &mut program.states, bs)?;
            program.functions.push(f);
            built.train.insert(bs, program.functions.len() - 1);
        }
    }
    for &bs in &spec.eval_batches {
        let f = eval_fn(spec, &mut program.states, bs, true)?;
        program.functions.push(f);
        built.eval.insert(bs, program.functions.len() - 1);
    }
    for &bs in &spec.predict_batches {
        let f = eval_fn(spec, &mut program.states, bs, false)?;
        program.functions.push(f);
        built.predict.insert(bs, program.functions.len() - 1);
    }
    Ok(())
}

pub(crate) fn input_shape(spec: &Spec<'_>, batch: usize) -> Vec<usize> {
    let mut s = vec![batch];
    s.extend(spec.dataset.feature_shape.iter().copied());
    s
}

fn target_dtype(spec: &Spec<'_>) -> DType {
    match spec.dataset.target.kind {
        TargetKind::Class { .. } => DType::I32,
        TargetKind::Regression | TargetKind::Absent => DType::F32,
    }
}

/// Lower the model in the given mode; returns its output `[B, width]`.
pub(crate) fn forward(
    spec: &Spec<'_>,
    b: &mut FnBuilder<'_>,
    x: ValueId,
    batch: usize,
    training: bool,
    counter: Option<ValueId>,
) -> Result<ValueId, Diagnostic> {
    if let Some(p) = &spec.plan.trees {
        return Ok(super::ensemble::forward(
            p,
            classes(spec.dataset),
            b,
            x,
            batch,
        ));
    }
    let l = Lowering {
        hir: spec.hir,
        batch,
        training,
        seed: spec.plan.seed,
        counter,
    };
    let outs = l.instance(b, spec.plan.instance, &[x], "", "")?;
    outs.into_iter()
        .next()
        .ok_or_else(|| Diagnostic::internal("model without output"))
}

/// Per-example losses `[B]` of the model output against the targets.
fn per_example_loss(spec: &Spec<'_>, b: &mut FnBuilder<'_>, out: ValueId, y: ValueId) -> ValueId {
    let batch = b.shape(out)[0];
    match &spec.plan.loss {
        Loss::CrossEntropy { label_smoothing } => {
            let k = b.shape(out)[1];
            let t = lower::smoothed_one_hot(b, y, k, *label_smoothing as f32);
            lower::cross_entropy_rows(b, out, t)
        }
        Loss::BinaryCrossEntropy => {
            let z = b.reshape(out, &[batch]);
            let yf = b.cast(y, DType::F32);
            lower::bce_with_logits_elems(b, z, yf)
        }
        Loss::Mse | Loss::Mae | Loss::Huber { .. } => {
            let p = b.reshape(out, &[batch]);
            let d = b.sub(p, y);
            match &spec.plan.loss {
                Loss::Mse => b.mul(d, d),
                Loss::Mae => b.unary(UnaryOp::Abs, d),
                Loss::Huber { delta } => lower::huber_elems(b, d, *delta as f32),
                _ => d,
            }
        }
    }
}

fn train_fn(
    spec: &Spec<'_>,
    states: &mut Vec<StateDecl>,
    batch: usize,
) -> Result<ir::Function, Diagnostic> {
    let mut b = FnBuilder::new(&format!("train_{batch}"), states);
    let x = b.input("x", input_shape(spec, batch), DType::F32);
    let y = b.input("y", vec![batch], target_dtype(spec));
    let lr = b.input("lr", vec![], DType::F32);
    let step = b.input("step", vec![], DType::I32);
    let bc1 = b.input("bc1", vec![], DType::F32);
    let bc2 = b.input("bc2", vec![], DType::F32);
    let out = forward(spec, &mut b, x, batch, true, Some(step))?;
    b.origin = None;
    let per = per_example_loss(spec, &mut b, out, y);
    let loss = b.mean(per, &[0]);
    b.output("loss", loss);
    let params = param_ids(b.states);
    let reads: Vec<ValueId> = params.iter().map(|p| b.state(*p)).collect();
    let grads = ir::autodiff::gradients(&mut b, loss, &reads);
    step_params(spec, &mut b, &params, &reads, grads, [lr, bc1, bc2]);
    Ok(b.finish())
}

/// Clip the gradients (when the train asks) and update every parameter with its optimizer.
/// `rates` are the step's inputs `lr`, `bc1`, `bc2`.
fn step_params(
    spec: &Spec<'_>,
    b: &mut FnBuilder<'_>,
    params: &[StateId],
    reads: &[ValueId],
    mut grads: Vec<ValueId>,
    [lr, bc1, bc2]: [ValueId; 3],
) {
    if let Some(c) = spec.plan.clip_grad {
        grads = clip(b, &grads, c as f32);
    }
    for ((p, read), g) in params.iter().zip(reads).zip(&grads) {
        optimizer_update(b, &spec.plan.optimizer, "", *p, *read, *g, lr, bc1, bc2);
    }
}

/// The parameters of the program so far, in declaration order.
fn param_ids(states: &[StateDecl]) -> Vec<StateId> {
    states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == StateKind::Param)
        .map(|(i, _)| i)
        .collect()
}

/// One shard's share of a sharded batch: its losses summed and scaled, and their gradient.
fn grad_fn(
    spec: &Spec<'_>,
    states: &mut Vec<StateDecl>,
    rows: usize,
) -> Result<ir::Function, Diagnostic> {
    let mut b = FnBuilder::new(&format!("grad_{rows}"), states);
    let x = b.input("x", input_shape(spec, rows), DType::F32);
    let y = b.input("y", vec![rows], target_dtype(spec));
    let counter = b.input("counter", vec![], DType::I32);
    let scale = b.input("scale", vec![], DType::F32);
    let out = forward(spec, &mut b, x, rows, true, Some(counter))?;
    b.origin = None;
    let per = per_example_loss(spec, &mut b, out, y);
    let sum = b.sum_all(per);
    let loss = b.mul(sum, scale);
    b.output("loss", loss);
    let params = param_ids(b.states);
    let reads: Vec<ValueId> = params.iter().map(|p| b.state(*p)).collect();
    let grads = ir::autodiff::gradients(&mut b, loss, &reads);
    for (p, g) in params.iter().zip(grads) {
        let name = format!("g.{}", b.states[*p].name);
        b.output(&name, g);
    }
    Ok(b.finish())
}

/// The update of a sharded train from the gradient of the whole batch.
fn apply_fn(spec: &Spec<'_>, states: &mut Vec<StateDecl>) -> Result<ir::Function, Diagnostic> {
    let mut b = FnBuilder::new("apply", states);
    let lr = b.input("lr", vec![], DType::F32);
    let bc1 = b.input("bc1", vec![], DType::F32);
    let bc2 = b.input("bc2", vec![], DType::F32);
    let params = param_ids(b.states);
    let grads: Vec<ValueId> = params
        .iter()
        .map(|p| {
            let (name, shape) = (b.states[*p].name.clone(), b.states[*p].shape.clone());
            b.input(&format!("g.{name}"), shape, DType::F32)
        })
        .collect();
    let reads: Vec<ValueId> = params.iter().map(|p| b.state(*p)).collect();
    step_params(spec, &mut b, &params, &reads, grads, [lr, bc1, bc2]);
    Ok(b.finish())
}

/// Scale every gradient by `min(1, c / (‖g‖ + 1e-6))`, the global norm over all of them.
fn clip(b: &mut FnBuilder<'_>, grads: &[ValueId], c: f32) -> Vec<ValueId> {
    let mut total: Option<ValueId> = None;
    for g in grads {
        let sq = b.mul(*g, *g);
        let s = b.sum_all(sq);
        total = Some(match total {
            Some(t) => b.add(t, s),
            None => s,
        });
    }
    let Some(total) = total else {
        return grads.to_vec();
    };
    let norm = b.unary(UnaryOp::Sqrt, total);
    let eps = b.scalar(1e-6);
    let denom = b.add(norm, eps);
    let cc = b.scalar(c);
    let ratio = b.div(cc, denom);
    let one = b.scalar(1.0);
    let scale = b.binary(BinaryOp::Min, ratio, one);
    grads.iter().map(|g| b.mul(*g, scale)).collect()
}

fn opt_state(b: &mut FnBuilder<'_>, kind: &str, p: StateId) -> (StateId, ValueId) {
    let decl = StateDecl {
        name: format!("{kind}.{}", b.states[p].name),
        shape: b.states[p].shape.clone(),
        kind: StateKind::Optimizer,
        init: hir::Init::Zeros,
        origin: None,
    };
    let id = b.declare_state(decl);
    (id, b.state(id))
}

/// One optimizer step for parameter `p` with gradient `g`, as in PyTorch.
#[allow(clippy::too_many_arguments)]
fn optimizer_update(
    b: &mut FnBuilder<'_>,
    opt: &Optimizer,
    prefix: &str,
    p: StateId,
    w: ValueId,
    g: ValueId,
    lr: ValueId,
    bc1: ValueId,
    bc2: ValueId,
) {
    let l2 = |b: &mut FnBuilder<'_>, g: ValueId, wd: f64| {
        if wd > 0.0 {
            let d = b.scale(w, wd as f32);
            b.add(g, d)
        } else {
            g
        }
    };
    let new_w = match opt {
        Optimizer::Sgd {
            momentum,
            nesterov,
            weight_decay,
            ..
        } => {
            let g = l2(b, g, *weight_decay);
            let dir = if *momentum > 0.0 {
                let (buf_id, buf) = opt_state(b, &format!("{prefix}sgd.momentum"), p);
                let mb = b.scale(buf, *momentum as f32);
                let nb = b.add(mb, g);
                b.update(buf_id, nb);
                if *nesterov {
                    let m2 = b.scale(nb, *momentum as f32);
                    b.add(g, m2)
                } else {
                    nb
                }
            } else {
                g
            };
            let stepv = b.mul(dir, lr);
            b.sub(w, stepv)
        }
        Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        }
        | Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        } => {
            let decoupled = matches!(opt, Optimizer::AdamW { .. });
            let g = if decoupled {
                g
            } else {
                l2(b, g, *weight_decay)
            };
            let (m_id, m) = opt_state(b, &format!("{prefix}adam.m"), p);
            let (v_id, v) = opt_state(b, &format!("{prefix}adam.v"), p);
            let m1 = b.scale(m, *beta1 as f32);
            let g1 = b.scale(g, (1.0 - beta1) as f32);
            let nm = b.add(m1, g1);
            let v1 = b.scale(v, *beta2 as f32);
            let gg = b.mul(g, g);
            let g2 = b.scale(gg, (1.0 - beta2) as f32);
            let nv = b.add(v1, g2);
            b.update(m_id, nm);
            b.update(v_id, nv);
            let mhat = b.mul(nm, bc1);
            let vhat = b.mul(nv, bc2);
            let sv = b.unary(UnaryOp::Sqrt, vhat);
            let e = b.scalar(*eps as f32);
            let den = b.add(sv, e);
            let upd = b.div(mhat, den);
            let w0 = if decoupled && *weight_decay > 0.0 {
                let wl = b.mul(w, lr);
                let decay = b.scale(wl, *weight_decay as f32);
                b.sub(w, decay)
            } else {
                w
            };
            let stepv = b.mul(upd, lr);
            b.sub(w0, stepv)
        }
        Optimizer::RmsProp {
            alpha,
            eps,
            momentum,
            weight_decay,
            ..
        } => {
            let g = l2(b, g, *weight_decay);
            let (sq_id, sq) = opt_state(b, &format!("{prefix}rmsprop.square_avg"), p);
            let s1 = b.scale(sq, *alpha as f32);
            let gg = b.mul(g, g);
            let s2 = b.scale(gg, (1.0 - alpha) as f32);
            let ns = b.add(s1, s2);
            b.update(sq_id, ns);
            let root = b.unary(UnaryOp::Sqrt, ns);
            let e = b.scalar(*eps as f32);
            let avg = b.add(root, e);
            let ratio = b.div(g, avg);
            let dir = if *momentum > 0.0 {
                let (buf_id, buf) = opt_state(b, &format!("{prefix}rmsprop.momentum"), p);
                let mb = b.scale(buf, *momentum as f32);
                let nb = b.add(mb, ratio);
                b.update(buf_id, nb);
                nb
            } else {
                ratio
            };
            let stepv = b.mul(dir, lr);
            b.sub(w, stepv)
        }
    };
    b.update(p, new_w);
}

fn eval_fn(
    spec: &Spec<'_>,
    states: &mut Vec<StateDecl>,
    batch: usize,
    with_targets: bool,
) -> Result<ir::Function, Diagnostic> {
    let name = if with_targets { "eval" } else { "predict" };
    let mut b = FnBuilder::new(&format!("{name}_{batch}"), states);
    let x = b.input("x", input_shape(spec, batch), DType::F32);
    let y = with_targets.then(|| b.input("y", vec![batch], target_dtype(spec)));
    let out = forward(spec, &mut b, x, batch, false, None)?;
    b.origin = None;
    if let Some(y) = y {
        let per = per_example_loss(spec, &mut b, out, y);
        let total = b.sum(per, &[0]);
        b.output("loss_sum", total);
    }
    let shown = shown(spec, &mut b, out, batch);
    b.output("out", shown);
    Ok(b.finish())
}

/// What a prediction shows of the model output `out` `[B, width]`: class probabilities
/// `[B, K]` (softmax, or `[1 - p, p]` for a binary cross-entropy model), or the predicted
/// values `[B, 1]`.
pub(crate) fn shown(spec: &Spec<'_>, b: &mut FnBuilder<'_>, out: ValueId, batch: usize) -> ValueId {
    match (&spec.plan.loss, &spec.dataset.target.kind) {
        (Loss::BinaryCrossEntropy, TargetKind::Class { .. }) => {
            let p1 = b.unary(UnaryOp::Sigmoid, out);
            let one = b.scalar(1.0);
            let p0 = b.sub(one, p1);
            b.concat(vec![p0, p1], 1)
        }
        (_, TargetKind::Class { .. }) => {
            let lse = b.logsumexp(out, 1);
            let lk = b.reshape(lse, &[batch, 1]);
            let lp = b.sub(out, lk);
            b.unary(UnaryOp::Exp, lp)
        }
        (_, TargetKind::Regression | TargetKind::Absent) => out,
    }
}

/// A model's prediction program, its function per batch size, the shape of one input row.
pub type SlotProgram = (ir::Program, BTreeMap<usize, usize>, Vec<usize>);

/// One model of a train with objectives as a prediction program: `predict_B(x) -> out` for
/// each batch size, `x` of the shape the model was first applied to (`B` rows), evaluation
/// mode, parameters named as in training (`g.dense_0.w`). Returns the program, the function
/// of each batch size, and the shape of one input row.
pub fn slot_program(
    hir: &hir::Program,
    plan: &hir::TrainPlan,
    slot: &hir::ModelSlot,
    batches: &[usize],
) -> Result<SlotProgram, Diagnostic> {
    let inst = slot
        .instance
        .and_then(|i| hir.instances.get(i))
        .ok_or_else(|| {
            Diagnostic::error(
                "mlx::export::model",
                format!(
                    "model `{}` is never applied to a batch of rows in train `{}`, so it has no input to predict from",
                    slot.name, plan.name
                ),
            )
        })?;
    let dims = inst
        .inputs
        .first()
        .ok_or_else(|| Diagnostic::internal("a model without input"))?;
    let row: Vec<usize> = dims
        .iter()
        .skip(1)
        .map(|d| d.as_const().map_or(0, |n| n.max(0) as usize))
        .collect();
    let mut program = ir::Program::default();
    let mut fns = BTreeMap::new();
    for &bs in batches {
        let mut b = FnBuilder::new(&format!("predict_{bs}"), &mut program.states);
        let mut shape = vec![bs];
        shape.extend(&row);
        let x = b.input("x", shape, DType::F32);
        let l = Lowering {
            hir,
            batch: bs,
            training: false,
            seed: plan.seed,
            counter: None,
        };
        let prefix = format!("{}.", slot.name);
        let out = l
            .instance(
                &mut b,
                slot.instance.unwrap_or_default(),
                &[x],
                &prefix,
                &prefix,
            )?
            .into_iter()
            .next()
            .ok_or_else(|| Diagnostic::internal("model without output"))?;
        b.origin = None;
        b.output("out", out);
        program.functions.push(b.finish());
        fns.insert(bs, program.functions.len() - 1);
    }
    ir::verify::program(&program)?;
    Ok((program, fns, row))
}
