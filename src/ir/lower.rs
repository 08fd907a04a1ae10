//! Lowering: a checked model instance (`hir`) becomes IR for one batch size and one mode
//! (training or evaluation). Calls are inlined with their parameters named by layer path
//! (`dense_0.w`), scans are unrolled over the sequence axis with weights shared by every step,
//! and convolution and pooling become `Im2Col` with a `MatMul` or a reduction.

use super::build::FnBuilder;
use super::*;
use crate::check::dim::Dim;
use crate::check::hir::{self, InstanceId, PoolKind};
use crate::diagnostics::Diagnostic;

pub struct Lowering<'h> {
    pub hir: &'h hir::Program,
    pub batch: usize,
    pub training: bool,
    /// Root seed: dropout streams are named `dropout/<layer path>`.
    pub seed: u64,
    /// The I32 scalar that advances random streams (the step number), if the function has one.
    pub counter: Option<ValueId>,
}

impl Lowering<'_> {
    fn shape(&self, dims: &[Dim]) -> Result<Shape, Diagnostic> {
        dims.iter()
            .map(|d| {
                let v = d.eval(&|s| (s == hir::BATCH).then_some(self.batch as i64));
                match v {
                    Some(n) if n >= 0 => Ok(n as usize),
                    _ => Err(Diagnostic::internal(format!(
                        "dimension `{d}` is unknown when lowering"
                    ))),
                }
            })
            .collect()
    }

    fn int(&self, d: &Dim) -> Result<usize, Diagnostic> {
        Ok(self.shape(std::slice::from_ref(d))?[0])
    }

    /// Lower instance `inst` applied to `args`; returns its results.
    pub fn instance(
        &self,
        b: &mut FnBuilder<'_>,
        inst: InstanceId,
        args: &[ValueId],
        prefix: &str,
        rand: &str,
    ) -> Result<Vec<ValueId>, Diagnostic> {
        let i = self
            .hir
            .instances
            .get(inst)
            .ok_or_else(|| Diagnostic::internal(format!("instance {inst} is missing")))?;
        // Only what the results need in this mode: `when_training` picks one branch.
        let mut needed = vec![false; i.nodes.len()];
        for r in &i.results {
            needed[*r] = true;
        }
        for k in (0..i.nodes.len()).rev() {
            if !needed[k] {
                continue;
            }
            for a in self.operands(&i.nodes[k].op) {
                needed[a] = true;
            }
        }
        let mut vals: Vec<Option<ValueId>> = vec![None; i.nodes.len()];
        for (k, node) in i.nodes.iter().enumerate() {
            if !needed[k] {
                continue;
            }
            b.origin = Some(node.span);
            let v = |x: usize| -> Result<ValueId, Diagnostic> {
                vals[x].ok_or_else(|| Diagnostic::internal("operand lowered out of order"))
            };
            let out = self.node(b, i, node, args, prefix, rand, &v)?;
            vals[k] = Some(out);
        }
        i.results
            .iter()
            .map(|r| vals[*r].ok_or_else(|| Diagnostic::internal("result not lowered")))
            .collect()
    }

    /// The operands of a HIR op, as lowering will read them in the current mode.
    fn operands(&self, op: &hir::Op) -> Vec<usize> {
        use hir::Op as H;
        match op {
            H::Input(_) | H::Param(_) | H::Scalar(_) | H::Fill(_) | H::Bernoulli(_) => vec![],
            H::Unary(_, x)
            | H::Reduce { x, .. }
            | H::Reshape(x)
            | H::Permute(x, _)
            | H::Slice { x, .. }
            | H::Pool { x, .. }
            | H::StopGradient(x) => {
                vec![*x]
            }
            H::Binary(_, a, c) | H::MatMul(a, c) => vec![*a, *c],
            H::Where(c, a, e) => vec![*c, *a, *e],
            H::Concat { xs, .. } => xs.clone(),
            H::Conv { x, w, .. } => vec![*x, *w],
            H::Gather { table, indices } => vec![*table, *indices],
            H::WhenTraining { train, eval } => vec![if self.training { *train } else { *eval }],
            H::BatchNorm { x, gamma, beta, .. } => vec![*x, *gamma, *beta],
            H::Call { args, .. } => args.clone(),
            H::Scan {
                xs, init, captures, ..
            } => {
                let mut v = vec![*xs];
                v.extend(init.iter().copied());
                v.extend(captures.iter().copied());
                v
            }
            H::LossFn { pred, target, .. } => vec![*pred, *target],
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &self,
        b: &mut FnBuilder<'_>,
        inst: &hir::Instance,
        node: &hir::Node,
        args: &[ValueId],
        prefix: &str,
        rand: &str,
        v: &dyn Fn(usize) -> Result<ValueId, Diagnostic>,
    ) -> Result<ValueId, Diagnostic> {
        use hir::Op as H;
        let shape = self.shape(&node.shape)?;
        Ok(match &node.op {
            H::Input(k) => *args
                .get(*k)
                .ok_or_else(|| Diagnostic::internal("missing instance input"))?,
            H::Param(p) => {
                let decl = &inst.params[*p];
                let id = b.declare_state(StateDecl {
                    name: format!("{prefix}{}", decl.name),
                    shape: self.shape(&decl.shape)?,
                    kind: StateKind::Param,
                    init: decl.init.clone(),
                    origin: Some(decl.span),
                });
                b.state(id)
            }
            H::Scalar(x) => b.scalar(*x as f32),
            H::Fill(x) => b.constant(*x as f32, shape),
            H::Unary(f, x) => {
                let x = v(*x)?;
                let op = match f {
                    hir::Unary::Neg => UnaryOp::Neg,
                    hir::Unary::Exp => UnaryOp::Exp,
                    hir::Unary::Log => UnaryOp::Log,
                    hir::Unary::Sqrt => UnaryOp::Sqrt,
                    hir::Unary::Abs => UnaryOp::Abs,
                    hir::Unary::Tanh => UnaryOp::Tanh,
                    hir::Unary::Sigmoid => UnaryOp::Sigmoid,
                    hir::Unary::Sign => UnaryOp::Sign,
                    hir::Unary::Relu => {
                        let z = b.scalar(0.0);
                        return Ok(b.binary(BinaryOp::Max, x, z));
                    }
                };
                b.unary(op, x)
            }
            H::Binary(f, a, c) => {
                let op = match f {
                    hir::Binary::Add => BinaryOp::Add,
                    hir::Binary::Sub => BinaryOp::Sub,
                    hir::Binary::Mul => BinaryOp::Mul,
                    hir::Binary::Div => BinaryOp::Div,
                    hir::Binary::Max => BinaryOp::Max,
                    hir::Binary::Min => BinaryOp::Min,
                    hir::Binary::Pow => BinaryOp::Pow,
                    hir::Binary::Lt => BinaryOp::Lt,
                    hir::Binary::Le => BinaryOp::Le,
                    hir::Binary::Gt => BinaryOp::Gt,
                    hir::Binary::Ge => BinaryOp::Ge,
                    hir::Binary::Eq => BinaryOp::Eq,
                    hir::Binary::Ne => BinaryOp::Ne,
                };
                let out = b.binary(op, v(*a)?, v(*c)?);
                b.broadcast(out, &shape)
            }
            H::Where(c, a, e) => b.select(v(*c)?, v(*a)?, v(*e)?),
            H::MatMul(a, c) => self.matmul(b, v(*a)?, v(*c)?, &shape),
            H::Reduce {
                f,
                x,
                axes,
                keepdims,
            } => {
                let x = v(*x)?;
                let r = match f {
                    hir::Reduce::Sum => b.sum(x, axes),
                    hir::Reduce::Mean => b.mean(x, axes),
                    hir::Reduce::Max => b.reduce(ReduceOp::Max, x, axes),
                    hir::Reduce::Min => {
                        let n = b.unary(UnaryOp::Neg, x);
                        let m = b.reduce(ReduceOp::Max, n, axes);
                        b.unary(UnaryOp::Neg, m)
                    }
                };
                let _ = keepdims;
                b.reshape(r, &shape)
            }
            H::Reshape(x) => b.reshape(v(*x)?, &shape),
            H::Permute(x, perm) => b.transpose(v(*x)?, perm),
            H::Slice { x, axis, start } => {
                let start = self.int(start)?;
                b.slice(v(*x)?, *axis, start, shape[*axis])
            }
            H::Concat { xs, axis } => {
                let xs = xs.iter().map(|x| v(*x)).collect::<Result<Vec<_>, _>>()?;
                b.concat(xs, *axis)
            }
            H::Conv {
                x,
                w,
                stride,
                padding,
            } => self.conv(
                b,
                v(*x)?,
                v(*w)?,
                *stride as usize,
                *padding as usize,
                &shape,
            ),
            H::Pool {
                kind,
                x,
                kernel,
                stride,
                padding,
            } => self.pool(
                b,
                *kind,
                v(*x)?,
                *kernel as usize,
                *stride as usize,
                *padding as usize,
                &shape,
            ),
            H::Gather { table, indices } => {
                let idx = b.cast(v(*indices)?, DType::I32);
                b.push(
                    Op::Gather {
                        table: v(*table)?,
                        indices: idx,
                    },
                    shape,
                    DType::F32,
                )
            }
            H::Bernoulli(p) => {
                let counter = match self.counter {
                    Some(c) => c,
                    None => b.push(Op::Constant(0.0), Vec::new(), DType::F32),
                };
                let counter = b.cast(counter, DType::I32);
                let key = crate::rng::key(self.seed, &format!("dropout/{rand}{}", inst.model));
                let r = b.push(Op::Random { key, counter }, shape, DType::F32);
                let p = b.scalar(*p as f32);
                b.binary(BinaryOp::Lt, r, p)
            }
            H::WhenTraining { train, eval } => v(if self.training { *train } else { *eval })?,
            H::StopGradient(x) => b.stop_grad(v(*x)?),
            H::BatchNorm {
                x,
                gamma,
                beta,
                momentum,
                eps,
            } => self.batch_norm(
                b,
                v(*x)?,
                v(*gamma)?,
                v(*beta)?,
                *momentum as f32,
                *eps as f32,
                prefix,
            ),
            H::Call {
                instance,
                args: cargs,
                layer,
            } => {
                let a = cargs.iter().map(|x| v(*x)).collect::<Result<Vec<_>, _>>()?;
                let outs = self.instance(
                    b,
                    *instance,
                    &a,
                    &format!("{prefix}{layer}."),
                    &format!("{rand}{layer}."),
                )?;
                outs.into_iter()
                    .next()
                    .ok_or_else(|| Diagnostic::internal("call without result"))?
            }
            H::LossFn { f, pred, target } => loss_fn(b, *f, v(*pred)?, v(*target)?),
            H::Scan {
                body,
                xs,
                axis,
                init,
                captures,
            } => {
                let xs = v(*xs)?;
                let mut states = init.iter().map(|x| v(*x)).collect::<Result<Vec<_>, _>>()?;
                let caps = captures
                    .iter()
                    .map(|x| v(*x))
                    .collect::<Result<Vec<_>, _>>()?;
                let xshape = b.shape(xs).to_vec();
                let steps = xshape[*axis];
                let mut elem = xshape.clone();
                elem.remove(*axis);
                let mut outs = Vec::with_capacity(steps);
                for t in 0..steps {
                    let s = b.slice(xs, *axis, t, 1);
                    let xt = b.reshape(s, &elem);
                    let mut a = vec![xt];
                    a.extend(states.iter().copied());
                    a.extend(caps.iter().copied());
                    // Weights are shared by every step; random streams are not.
                    states = self.instance(b, *body, &a, prefix, &format!("{rand}t{t}."))?;
                    let first = states[0];
                    let mut with_axis = b.shape(first).to_vec();
                    with_axis.insert(*axis, 1);
                    outs.push(b.reshape(first, &with_axis));
                }
                b.concat(outs, *axis)
            }
        })
    }

    /// NumPy `matmul`: vectors are promoted, batch axes broadcast; an `[.., M, K] @ [K, N]`
    /// product becomes one 2-D matrix product.
    fn matmul(&self, b: &mut FnBuilder<'_>, x: ValueId, y: ValueId, out: &[usize]) -> ValueId {
        let (xs, ys) = (b.shape(x).to_vec(), b.shape(y).to_vec());
        let x2 = if xs.len() == 1 {
            b.reshape(x, &[1, xs[0]])
        } else {
            x
        };
        let y2 = if ys.len() == 1 {
            b.reshape(y, &[ys[0], 1])
        } else {
            y
        };
        let (xs2, ys2) = (b.shape(x2).to_vec(), b.shape(y2).to_vec());
        let k = xs2[xs2.len() - 1];
        let n = ys2[ys2.len() - 1];
        let r = if ys2.len() == 2 {
            let rows: usize = xs2[..xs2.len() - 1].iter().product();
            let flat = b.reshape(x2, &[rows, k]);
            b.matmul(flat, y2)
        } else {
            let xb = &xs2[..xs2.len() - 2];
            let yb = &ys2[..ys2.len() - 2];
            let batch = super::build::broadcast_shapes(xb, yb).unwrap_or_else(|| xb.to_vec());
            let mut xt = batch.clone();
            xt.extend_from_slice(&xs2[xs2.len() - 2..]);
            let mut yt = batch.clone();
            yt.extend_from_slice(&ys2[ys2.len() - 2..]);
            let xe = b.broadcast(x2, &xt);
            let ye = b.broadcast(y2, &yt);
            b.matmul(xe, ye)
        };
        let _ = n;
        b.reshape(r, out)
    }

    fn conv(
        &self,
        b: &mut FnBuilder<'_>,
        x: ValueId,
        w: ValueId,
        stride: usize,
        padding: usize,
        out: &[usize],
    ) -> ValueId {
        let ws = b.shape(w).to_vec();
        let (o, c, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        let cols = b.im2col(x, [kh, kw], stride, padding, 0.0);
        let cs = b.shape(cols).to_vec();
        let rows = cs[0] * cs[1] * cs[2];
        let flat = b.reshape(cols, &[rows, c * kh * kw]);
        let w2 = b.reshape(w, &[o, c * kh * kw]);
        let wt = b.transpose(w2, &[1, 0]);
        let y = b.matmul(flat, wt);
        let y4 = b.reshape(y, &[cs[0], cs[1], cs[2], o]);
        let r = b.transpose(y4, &[0, 3, 1, 2]);
        b.reshape(r, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn pool(
        &self,
        b: &mut FnBuilder<'_>,
        kind: PoolKind,
        x: ValueId,
        k: usize,
        stride: usize,
        padding: usize,
        out: &[usize],
    ) -> ValueId {
        let pad = if kind == PoolKind::Max {
            f32::NEG_INFINITY
        } else {
            0.0
        };
        let xs = b.shape(x).to_vec();
        let cols = b.im2col(x, [k, k], stride, padding, pad);
        let cs = b.shape(cols).to_vec();
        let win = b.reshape(cols, &[cs[0], cs[1], cs[2], xs[1], k * k]);
        let r = match kind {
            PoolKind::Max => b.reduce(ReduceOp::Max, win, &[4]),
            PoolKind::Avg => b.mean(win, &[4]),
        };
        let t = b.transpose(r, &[0, 3, 1, 2]);
        b.reshape(t, out)
    }

    /// Batch normalisation over every axis but 1. Training: batch statistics, and the running
    /// statistics (state) move toward them; evaluation: the running statistics.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm(
        &self,
        b: &mut FnBuilder<'_>,
        x: ValueId,
        gamma: ValueId,
        beta: ValueId,
        momentum: f32,
        eps: f32,
        prefix: &str,
    ) -> ValueId {
        let xs = b.shape(x).to_vec();
        let c = xs[1];
        let axes: Vec<usize> = (0..xs.len()).filter(|a| *a != 1).collect();
        let mut keep = vec![1; xs.len()];
        keep[1] = c;
        let decl = |name: &str, init| StateDecl {
            name: format!("{prefix}{name}"),
            shape: vec![c],
            kind: StateKind::Buffer,
            init,
            origin: None,
        };
        let rm = b.declare_state(decl("running_mean", hir::Init::Zeros));
        let rv = b.declare_state(decl("running_var", hir::Init::Ones));
        let (mean, var) = if self.training {
            let mean = b.mean(x, &axes);
            let mk = b.reshape(mean, &keep);
            let xc = b.sub(x, mk);
            let sq = b.mul(xc, xc);
            let var = b.mean(sq, &axes);
            let n: usize = axes.iter().map(|a| xs[*a]).product();
            let unbiased = (n as f32 / (n.max(2) - 1) as f32).max(1.0);
            for (sid, stat, scale) in [(rm, mean, 1.0), (rv, var, unbiased)] {
                let cur = b.state(sid);
                let s = b.stop_grad(stat);
                let s = b.scale(s, scale * momentum);
                let keep_old = b.scale(cur, 1.0 - momentum);
                let new = b.add(keep_old, s);
                b.update(sid, new);
            }
            (mean, var)
        } else {
            (b.state(rm), b.state(rv))
        };
        let mk = b.reshape(mean, &keep);
        let e = b.scalar(eps);
        let ve = b.add(var, e);
        let sd = b.unary(UnaryOp::Sqrt, ve);
        let sk = b.reshape(sd, &keep);
        let xc = b.sub(x, mk);
        let norm = b.div(xc, sk);
        let gk = b.reshape(gamma, &keep);
        let bk = b.reshape(beta, &keep);
        let scaled = b.mul(norm, gk);
        b.add(scaled, bk)
    }
}

/// `-Σ t · log softmax(logits)` per row (`[B]`), `t` a distribution over the classes `[B, K]`.
pub fn cross_entropy_rows(b: &mut FnBuilder<'_>, logits: ValueId, t: ValueId) -> ValueId {
    let batch = b.shape(logits)[0];
    let lse = b.logsumexp(logits, 1);
    let lse_k = b.reshape(lse, &[batch, 1]);
    let logp = b.sub(logits, lse_k);
    let prod = b.mul(t, logp);
    let s = b.sum(prod, &[1]);
    b.unary(UnaryOp::Neg, s)
}

/// Class labels (I32) `[B]` as one-hot rows `[B, K]`, smoothed by `eps` toward uniform.
pub fn smoothed_one_hot(b: &mut FnBuilder<'_>, labels: ValueId, k: usize, eps: f32) -> ValueId {
    let onehot = b.one_hot(labels, k);
    if eps > 0.0 {
        let keep = b.scale(onehot, 1.0 - eps);
        let spread = b.scalar(eps / k as f32);
        b.add(keep, spread)
    } else {
        onehot
    }
}

/// `max(z, 0) - z*y + log(1 + exp(-|z|))` elementwise: never exp of a large positive number.
pub fn bce_with_logits_elems(b: &mut FnBuilder<'_>, z: ValueId, y: ValueId) -> ValueId {
    let zero = b.scalar(0.0);
    let relu = b.binary(BinaryOp::Max, z, zero);
    let zy = b.mul(z, y);
    let a = b.unary(UnaryOp::Abs, z);
    let na = b.unary(UnaryOp::Neg, a);
    let e = b.unary(UnaryOp::Exp, na);
    let one = b.scalar(1.0);
    let ope = b.add(one, e);
    let l = b.unary(UnaryOp::Log, ope);
    let t = b.sub(relu, zy);
    b.add(t, l)
}

/// Huber's loss of differences `d`: `d²/2` within `delta`, `delta (|d| - delta/2)` outside.
pub fn huber_elems(b: &mut FnBuilder<'_>, d: ValueId, delta: f32) -> ValueId {
    let a = b.unary(UnaryOp::Abs, d);
    let dl = b.scalar(delta);
    let small = b.binary(BinaryOp::Le, a, dl);
    let sq = b.mul(d, d);
    let quad = b.scale(sq, 0.5);
    let half = b.scalar(0.5 * delta);
    let am = b.sub(a, half);
    let lin = b.scale(am, delta);
    b.select(small, quad, lin)
}

/// A loss function of an objective: the mean over every element (the batch, and any other
/// axis) of the per-element loss of `pred` against `target` (same shape, or a scalar; class
/// labels `[B]` for cross-entropy, as F32 values).
pub fn loss_fn(b: &mut FnBuilder<'_>, f: hir::LossFn, pred: ValueId, target: ValueId) -> ValueId {
    use hir::LossFn as L;
    let shape = b.shape(pred).to_vec();
    let all: Vec<usize> = (0..shape.len()).collect();
    let per = match f {
        L::CrossEntropy { label_smoothing } => {
            let labels = b.cast(target, DType::I32);
            let t = smoothed_one_hot(b, labels, shape[1], label_smoothing as f32);
            let n = cross_entropy_rows(b, pred, t);
            return b.mean(n, &[0]);
        }
        L::SoftCrossEntropy => {
            let n = cross_entropy_rows(b, pred, target);
            return b.mean(n, &[0]);
        }
        L::BceWithLogits => bce_with_logits_elems(b, pred, target),
        L::BinaryCrossEntropy => {
            // -(y log p + (1 - y) log(1 - p)), each log clamped at -100 as PyTorch does.
            let floor = b.scalar(-100.0);
            let lp = b.unary(UnaryOp::Log, pred);
            let lp = b.binary(BinaryOp::Max, lp, floor);
            let one = b.scalar(1.0);
            let q = b.sub(one, pred);
            let lq = b.unary(UnaryOp::Log, q);
            let lq = b.binary(BinaryOp::Max, lq, floor);
            let a = b.binary(BinaryOp::Mul, target, lp);
            let one = b.scalar(1.0);
            let ny = b.binary(BinaryOp::Sub, one, target);
            let c = b.binary(BinaryOp::Mul, ny, lq);
            let s = b.add(a, c);
            b.unary(UnaryOp::Neg, s)
        }
        L::Mse | L::Mae | L::Huber { .. } => {
            let d = b.binary(BinaryOp::Sub, pred, target);
            match f {
                L::Mse => b.mul(d, d),
                L::Mae => b.unary(UnaryOp::Abs, d),
                L::Huber { delta } => huber_elems(b, d, delta as f32),
                _ => d,
            }
        }
    };
    let per = b.broadcast(per, &shape);
    b.mean(per, &all)
}
