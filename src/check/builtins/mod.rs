//! Primitive functions usable in model bodies (also as `prim.NAME`), with their shape rules.
//! Each rule either builds a node of the instance graph or reports why it can't. Dispatch,
//! argument matching and the elementwise, matrix and reduction rules live here; `layout` moves
//! elements around, `window` slides windows and keeps state.

mod layout;
mod window;

use layout::*;
use window::*;

use super::Checker;
use super::dim::Dim;
use super::error::Unknown;
use super::error::model::{Error, Shaped};
use super::hir::{self, NodeId, Op, PoolKind, Reduce, Unary};
use super::model::Body;
use super::value::{CallArg, Val};
use crate::source::Span;
use std::collections::HashMap;

pub const NAMES: [&str; 34] = [
    "exp",
    "log",
    "sqrt",
    "abs",
    "tanh",
    "sigmoid",
    "sign",
    "max",
    "min",
    "pow",
    "where",
    "sum",
    "mean",
    "reshape",
    "permute",
    "transpose",
    "squeeze",
    "unsqueeze",
    "slice",
    "index",
    "concat",
    "conv",
    "max_pool",
    "avg_pool",
    "zeros",
    "ones",
    "full",
    "bernoulli",
    "when_training",
    "stop_gradient",
    "scan",
    "gather",
    "batch_norm",
    "matmul",
];

pub fn is_builtin(name: &str) -> bool {
    NAMES.contains(&name)
}

/// A negative axis counts from the end.
pub fn norm_axis(a: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}

/// Arguments matched to a builtin's parameter names.
struct Matched {
    name: &'static str,
    span: Span,
    args: HashMap<&'static str, CallArg>,
}

impl Matched {
    fn get(&self, k: &str) -> Option<&CallArg> {
        self.args.get(k)
    }
}

fn match_args(
    c: &mut Checker<'_>,
    name: &'static str,
    args: Vec<CallArg>,
    spec: &[&'static str],
    required: usize,
    span: Span,
) -> Option<Matched> {
    let mut out: HashMap<&'static str, CallArg> = HashMap::new();
    let mut pos = 0;
    let mut ok = true;
    for a in args {
        if a.value.is_poison() {
            ok = false;
        }
        let key = match &a.name {
            Some((n, s)) => match spec.iter().find(|k| *k == n) {
                Some(k) => *k,
                None => {
                    let u = Unknown::new(
                        "mlx::arg::unknown",
                        format!("`{name}` has no argument `{n}`"),
                        *s,
                        "unknown argument",
                        n,
                        spec.iter().copied(),
                    );
                    c.fail(u.otherwise(format!("`{name}` takes: {}", spec.join(", "))));
                    ok = false;
                    continue;
                }
            },
            None => {
                let Some(k) = spec.get(pos) else {
                    c.fail(Error::TooManyArguments {
                        name,
                        takes: spec.to_vec(),
                        span: a.span,
                    });
                    ok = false;
                    continue;
                };
                pos += 1;
                k
            }
        };
        if out.contains_key(key) {
            c.fail(Error::BuiltinArgumentTwice {
                name,
                key: key.to_string(),
                span: a.span,
            });
            ok = false;
            continue;
        }
        out.insert(key, a);
    }
    for k in &spec[..required] {
        if !out.contains_key(k) {
            c.fail(Error::ArgumentMissing {
                name,
                key: k,
                takes: spec.to_vec(),
                span,
            });
            ok = false;
        }
    }
    ok.then_some(Matched {
        name,
        span,
        args: out,
    })
}

fn tensor(c: &mut Checker<'_>, b: &mut Body, m: &Matched, k: &str) -> Option<NodeId> {
    let a = m.get(k)?;
    match c.as_tensor(b, a.value.clone(), a.span) {
        Some(n) => Some(n),
        None => {
            if !a.value.is_poison() {
                c.fail(Error::ArgumentNotTensor {
                    key: k.to_string(),
                    name: m.name,
                    found: a.value.describe(),
                    span: a.span,
                });
            }
            None
        }
    }
}

/// An integer argument known at check time (axes, strides): `Ok(None)` when absent.
fn int(c: &mut Checker<'_>, m: &Matched, k: &str) -> Result<Option<i64>, ()> {
    let Some(a) = m.get(k) else { return Ok(None) };
    match &a.value {
        Val::Int(d) => match d.as_const() {
            Some(n) => Ok(Some(n)),
            None => {
                c.fail(Error::ArgumentNotConstant {
                    key: k.to_string(),
                    name: m.name,
                    value: d.clone(),
                    span: a.span,
                });
                Err(())
            }
        },
        Val::Poison => Err(()),
        v => {
            c.fail(Error::ArgumentNotInteger {
                key: k.to_string(),
                name: m.name,
                found: v.describe(),
                span: a.span,
            });
            Err(())
        }
    }
}

/// An integer argument that may stay symbolic in a generic check.
fn int_or_sym(c: &mut Checker<'_>, m: &Matched, k: &str) -> Result<Option<Dim>, ()> {
    let Some(a) = m.get(k) else { return Ok(None) };
    match &a.value {
        Val::Int(d) => Ok(Some(d.clone())),
        Val::Poison => Err(()),
        v => {
            c.fail(Error::ArgumentNotInteger {
                key: k.to_string(),
                name: m.name,
                found: v.describe(),
                span: a.span,
            });
            Err(())
        }
    }
}

fn float(c: &mut Checker<'_>, m: &Matched, k: &str) -> Result<Option<Option<f64>>, ()> {
    let Some(a) = m.get(k) else { return Ok(None) };
    match &a.value {
        Val::Float(f) => Ok(Some(*f)),
        Val::Int(d) => Ok(Some(d.as_const().map(|n| n as f64))),
        Val::Poison => Err(()),
        v => {
            c.fail(Error::ArgumentNotNumber {
                key: k.to_string(),
                name: m.name.to_string(),
                found: v.describe(),
                span: a.span,
            });
            Err(())
        }
    }
}

fn boolean(c: &mut Checker<'_>, m: &Matched, k: &str, default: bool) -> Result<bool, ()> {
    let Some(a) = m.get(k) else {
        return Ok(default);
    };
    match &a.value {
        Val::Bool(v) => Ok(v.unwrap_or(default)),
        Val::Poison => Err(()),
        v => {
            c.fail(Error::ArgumentNotBool {
                key: k.to_string(),
                name: m.name,
                found: v.describe(),
                span: a.span,
            });
            Err(())
        }
    }
}

fn axis_error(c: &mut Checker<'_>, a: i64, rank: usize, span: Span) {
    c.fail(Error::AxisOutOfRange {
        axis: a,
        rank,
        span,
    });
}

/// An axis or list of axes: all axes when absent.
fn axes(c: &mut Checker<'_>, m: &Matched, k: &str, rank: usize) -> Result<Vec<usize>, ()> {
    let Some(a) = m.get(k) else {
        return Ok((0..rank).collect());
    };
    let items: Vec<(Val, Span)> = match &a.value {
        Val::List(v) => v.clone(),
        v => vec![(v.clone(), a.span)],
    };
    let mut out = Vec::new();
    for (v, s) in items {
        let Val::Int(d) = &v else {
            if !v.is_poison() {
                c.fail(Error::AxisNotInteger {
                    found: v.describe(),
                    span: s,
                });
            }
            return Err(());
        };
        let Some(n) = d.as_const() else {
            return Err(());
        };
        match norm_axis(n, rank) {
            Some(x) if !out.contains(&x) => out.push(x),
            Some(_) => {
                c.fail(Error::AxisTwice { axis: n, span: s });
                return Err(());
            }
            None => {
                axis_error(c, n, rank, s);
                return Err(());
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn shape_list(c: &mut Checker<'_>, b: &Body, m: &Matched, k: &str) -> Result<Vec<(Dim, Span)>, ()> {
    let Some(a) = m.get(k) else { return Err(()) };
    let items: Vec<(Val, Span)> = match &a.value {
        Val::List(v) => v.clone(),
        Val::Poison => return Err(()),
        v => {
            c.fail(Error::ShapeNotList {
                key: k.to_string(),
                name: m.name,
                found: v.describe(),
                span: a.span,
            });
            return Err(());
        }
    };
    let mut out = Vec::new();
    for (v, s) in items {
        match v {
            Val::Int(d) => out.push((d, s)),
            Val::Poison => return Err(()),
            other => {
                c.fail(Error::DimNotInteger {
                    found: other.describe(),
                    span: s,
                });
                return Err(());
            }
        }
    }
    let _ = b;
    Ok(out)
}

/// Dispatch a builtin call.
pub(crate) fn call(
    c: &mut Checker<'_>,
    b: &mut Body,
    name: &str,
    args: Vec<CallArg>,
    span: Span,
) -> Val {
    let r = match name {
        "exp" => unary(c, b, "exp", Unary::Exp, args, span),
        "log" => unary(c, b, "log", Unary::Log, args, span),
        "sqrt" => unary(c, b, "sqrt", Unary::Sqrt, args, span),
        "abs" => unary(c, b, "abs", Unary::Abs, args, span),
        "tanh" => unary(c, b, "tanh", Unary::Tanh, args, span),
        "sigmoid" => unary(c, b, "sigmoid", Unary::Sigmoid, args, span),
        "sign" => unary(c, b, "sign", Unary::Sign, args, span),
        "stop_gradient" => {
            let m = match_args(c, "stop_gradient", args, &["x"], 1, span);
            m.and_then(|m| {
                let x = tensor(c, b, &m, "x")?;
                let s = b.shape(x).to_vec();
                Some(b.add(Op::StopGradient(x), s, span))
            })
        }
        "max" | "min" => max_min(c, b, name == "max", args, span),
        "pow" => {
            let m = match_args(c, "pow", args, &["x", "y"], 2, span);
            m.and_then(|m| {
                let x = tensor(c, b, &m, "x")?;
                let y = tensor(c, b, &m, "y")?;
                as_node(elementwise(c, b, hir::Binary::Pow, x, y, span, "pow"))
            })
        }
        "where" => where_(c, b, args, span),
        "sum" => reduce(c, b, "sum", Reduce::Sum, args, span),
        "mean" => reduce(c, b, "mean", Reduce::Mean, args, span),
        "reshape" => reshape(c, b, args, span),
        "permute" => permute(c, b, args, span),
        "transpose" => transpose(c, b, args, span),
        "squeeze" => squeeze(c, b, args, span),
        "unsqueeze" => unsqueeze(c, b, args, span),
        "slice" => slice(c, b, args, span, false),
        "index" => slice(c, b, args, span, true),
        "concat" => concat(c, b, args, span),
        "conv" => conv(c, b, args, span),
        "max_pool" => pool(c, b, "max_pool", PoolKind::Max, args, span),
        "avg_pool" => pool(c, b, "avg_pool", PoolKind::Avg, args, span),
        "zeros" => fill(c, b, "zeros", Some(0.0), args, span),
        "ones" => fill(c, b, "ones", Some(1.0), args, span),
        "full" => fill(c, b, "full", None, args, span),
        "bernoulli" => bernoulli(c, b, args, span),
        "when_training" => {
            let m = match_args(c, "when_training", args, &["train", "eval"], 2, span);
            m.and_then(|m| {
                let t = tensor(c, b, &m, "train")?;
                let e = tensor(c, b, &m, "eval")?;
                let (ts, es) = (b.shape(t).to_vec(), b.shape(e).to_vec());
                if !c.same_shape(b, &ts, &es) {
                    shape_error(
                        c,
                        b,
                        "`when_training` needs both branches to have the same shape",
                        span,
                        &[t, e],
                    );
                    return None;
                }
                Some(b.add(Op::WhenTraining { train: t, eval: e }, ts, span))
            })
        }
        "gather" => gather(c, b, args, span),
        "batch_norm" => batch_norm(c, b, args, span),
        "matmul" => {
            let m = match_args(c, "matmul", args, &["a", "b"], 2, span);
            m.and_then(|m| {
                let x = tensor(c, b, &m, "a")?;
                let y = tensor(c, b, &m, "b")?;
                as_node(matmul(c, b, x, y, span))
            })
        }
        _ => None,
    };
    r.map_or(Val::Poison, Val::Tensor)
}

fn as_node(v: Val) -> Option<NodeId> {
    match v {
        Val::Tensor(n) => Some(n),
        _ => None,
    }
}

/// A shape error that labels every operand with its shape.
fn shape_error(c: &mut Checker<'_>, b: &Body, msg: &str, span: Span, operands: &[NodeId]) {
    c.fail(Error::ShapesDoNotFit {
        message: msg.to_string(),
        span,
        operands: operands.iter().map(|n| Shaped::of(b, *n)).collect(),
    });
}

fn unary(
    c: &mut Checker<'_>,
    b: &mut Body,
    name: &'static str,
    f: Unary,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, name, args, &["x"], 1, span)?;
    let x = tensor(c, b, &m, "x")?;
    let s = b.shape(x).to_vec();
    Some(b.add(Op::Unary(f, x), s, span))
}

/// NumPy broadcasting of two shapes; `None` when they don't fit.
pub(crate) fn broadcast(c: &Checker<'_>, b: &Body, x: &[Dim], y: &[Dim]) -> Option<Vec<Dim>> {
    let n = x.len().max(y.len());
    let one = Dim::constant(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let dx = (i + x.len()).checked_sub(n).map(|j| &x[j]);
        let dy = (i + y.len()).checked_sub(n).map(|j| &y[j]);
        let d = match (dx, dy) {
            (Some(a), None) => a.clone(),
            (None, Some(a)) => a.clone(),
            (Some(a), Some(bb)) => {
                if a == bb || *bb == one {
                    a.clone()
                } else if *a == one {
                    bb.clone()
                } else if c.same_dim(b, a, bb) {
                    a.clone()
                } else {
                    return None;
                }
            }
            (None, None) => return None,
        };
        out.push(d);
    }
    Some(out)
}

pub(crate) fn elementwise(
    c: &mut Checker<'_>,
    b: &mut Body,
    f: hir::Binary,
    x: NodeId,
    y: NodeId,
    span: Span,
    sym: &str,
) -> Val {
    let (xs, ys) = (b.shape(x).to_vec(), b.shape(y).to_vec());
    match broadcast(c, b, &xs, &ys) {
        Some(s) => Val::Tensor(b.add(Op::Binary(f, x, y), s, span)),
        None => {
            c.fail(Error::NoBroadcast {
                op: sym.to_string(),
                span,
                lhs: Shaped::of(b, x),
                rhs: Shaped::of(b, y),
            });
            Val::Poison
        }
    }
}

/// `a @ b` with NumPy `matmul` semantics.
pub(crate) fn matmul(c: &mut Checker<'_>, b: &mut Body, x: NodeId, y: NodeId, span: Span) -> Val {
    let (xs, ys) = (b.shape(x).to_vec(), b.shape(y).to_vec());
    if xs.is_empty() || ys.is_empty() {
        shape_error(c, b, "`@` needs tensors of rank 1 or more", span, &[x, y]);
        return Val::Poison;
    }
    let k1 = &xs[xs.len() - 1];
    let k2 = if ys.len() == 1 {
        &ys[0]
    } else {
        &ys[ys.len() - 2]
    };
    if !c.same_dim(b, k1, k2) {
        c.fail(Error::MatmulInner {
            k1: k1.clone(),
            k2: k2.clone(),
            vector: ys.len() == 1,
            span,
            lhs: Shaped::of(b, x),
            rhs: Shaped::of(b, y),
        });
        return Val::Poison;
    }
    let xb = if xs.len() > 2 {
        &xs[..xs.len() - 2]
    } else {
        &[][..]
    };
    let yb = if ys.len() > 2 {
        &ys[..ys.len() - 2]
    } else {
        &[][..]
    };
    let Some(mut out) = broadcast(c, b, xb, yb) else {
        shape_error(
            c,
            b,
            "the batch axes of `@` do not broadcast",
            span,
            &[x, y],
        );
        return Val::Poison;
    };
    if xs.len() >= 2 {
        out.push(xs[xs.len() - 2].clone());
    }
    if ys.len() >= 2 {
        out.push(ys[ys.len() - 1].clone());
    }
    Val::Tensor(b.add(Op::MatMul(x, y), out, span))
}

fn max_min(
    c: &mut Checker<'_>,
    b: &mut Body,
    is_max: bool,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let name: &'static str = if is_max { "max" } else { "min" };
    let positional = args.iter().filter(|a| a.name.is_none()).count();
    if positional >= 2 {
        let m = match_args(c, name, args, &["x", "y"], 2, span)?;
        let x = tensor(c, b, &m, "x")?;
        let y = tensor(c, b, &m, "y")?;
        let f = if is_max {
            hir::Binary::Max
        } else {
            hir::Binary::Min
        };
        return as_node(elementwise(c, b, f, x, y, span, name));
    }
    reduce(
        c,
        b,
        name,
        if is_max { Reduce::Max } else { Reduce::Min },
        args,
        span,
    )
}

fn where_(c: &mut Checker<'_>, b: &mut Body, args: Vec<CallArg>, span: Span) -> Option<NodeId> {
    let m = match_args(c, "where", args, &["cond", "a", "b"], 3, span)?;
    let k = tensor(c, b, &m, "cond")?;
    let x = tensor(c, b, &m, "a")?;
    let y = tensor(c, b, &m, "b")?;
    let s1 = broadcast(c, b, b.shape(k), b.shape(x));
    let s = s1.and_then(|s| broadcast(c, b, &s, b.shape(y)));
    match s {
        Some(s) => Some(b.add(Op::Where(k, x, y), s, span)),
        None => {
            shape_error(
                c,
                b,
                "the arguments of `where` do not broadcast together",
                span,
                &[k, x, y],
            );
            None
        }
    }
}

fn reduce(
    c: &mut Checker<'_>,
    b: &mut Body,
    name: &'static str,
    f: Reduce,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, name, args, &["x", "axis", "keepdims"], 1, span)?;
    let x = tensor(c, b, &m, "x")?;
    let shape = b.shape(x).to_vec();
    let axes = axes(c, &m, "axis", shape.len()).ok()?;
    let keepdims = boolean(c, &m, "keepdims", false).ok()?;
    let mut out = Vec::new();
    for (i, d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                out.push(Dim::constant(1));
            }
        } else {
            out.push(d.clone());
        }
    }
    Some(b.add(
        Op::Reduce {
            f,
            x,
            axes,
            keepdims,
        },
        out,
        span,
    ))
}
