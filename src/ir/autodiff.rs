//! Reverse-mode automatic differentiation on the IR. The gradient of a scalar with respect to
//! chosen values is appended to the same function as ordinary IR, so every back end runs the
//! backward pass with the same ops as the forward one.

use super::build::FnBuilder;
use super::*;
use std::collections::HashMap;

/// Append the gradients of the scalar `loss` with respect to each of `wrt`; returns them in
/// order (a zero tensor where `loss` does not depend on it).
pub fn gradients(b: &mut FnBuilder<'_>, loss: ValueId, wrt: &[ValueId]) -> Vec<ValueId> {
    let n = loss + 1;
    // Nodes that depend on some `wrt` value, and nodes `loss` depends on: only their
    // intersection carries gradient.
    let mut from_wrt = vec![false; n];
    for w in wrt {
        if *w < n {
            from_wrt[*w] = true;
        }
    }
    for i in 0..n {
        let node = &b.f.nodes[i];
        if node.dtype != DType::F32 || matches!(node.op, Op::StopGrad(_)) {
            continue;
        }
        if node.op.args().iter().any(|a| from_wrt[*a]) {
            from_wrt[i] = true;
        }
    }
    let mut to_loss = vec![false; n];
    to_loss[loss] = true;
    for i in (0..n).rev() {
        if to_loss[i] {
            for a in b.f.nodes[i].op.args() {
                to_loss[a] = true;
            }
        }
    }
    let live: Vec<bool> = (0..n).map(|i| from_wrt[i] && to_loss[i]).collect();

    let mut adj: HashMap<ValueId, ValueId> = HashMap::new();
    // Gradients of slices of one value, assembled once (see `assemble_slices`).
    let mut slices: HashMap<ValueId, Vec<(usize, usize, ValueId)>> = HashMap::new();
    // Products with a shared right operand (a recurrent weight): one product at the end.
    let mut products: HashMap<ValueId, Vec<(ValueId, ValueId)>> = HashMap::new();
    let one = b.constant(1.0, b.f.nodes[loss].shape.clone());
    adj.insert(loss, one);
    for i in (0..n).rev() {
        if let Some(pairs) = products.remove(&i) {
            let g = assemble_products(b, pairs);
            let acc = match adj.get(&i) {
                Some(prev) => b.add(*prev, g),
                None => g,
            };
            adj.insert(i, acc);
        }
        if let Some(parts) = slices.remove(&i) {
            let g = assemble_slices(b, i, parts);
            let acc = match adj.get(&i) {
                Some(prev) => b.add(*prev, g),
                None => g,
            };
            adj.insert(i, acc);
        }
        if !live[i] {
            continue;
        }
        let Some(g) = adj.get(&i).copied() else {
            continue;
        };
        let need = |v: ValueId| v < n && live[v];
        // A slice's gradient waits until every slice of the same value is known.
        if let Op::Slice { x, axis, start } = b.f.nodes[i].op
            && need(x)
        {
            slices.entry(x).or_default().push((axis, start, g));
            continue;
        }
        // d(x @ z)/dz = x^T g, deferred so several products sharing z become one.
        if let Op::MatMul(x, z) = b.f.nodes[i].op
            && b.shape(x).len() == 2
            && need(z)
        {
            products.entry(z).or_default().push((x, g));
            if need(x) {
                let zt = b.transpose(z, &[1, 0]);
                let gx = b.matmul(g, zt);
                let acc = match adj.get(&x) {
                    Some(prev) => b.add(*prev, gx),
                    None => gx,
                };
                adj.insert(x, acc);
            }
            continue;
        }
        let contributions = rule(b, i, g, &need);
        for (x, gx) in contributions {
            if x < n && live[x] {
                let acc = match adj.get(&x) {
                    Some(prev) => b.add(*prev, gx),
                    None => gx,
                };
                adj.insert(x, acc);
            }
        }
    }
    wrt.iter()
        .map(|w| match adj.get(w) {
            Some(g) => *g,
            None => {
                let s = b.f.nodes[*w].shape.clone();
                b.constant(0.0, s)
            }
        })
        .collect()
}

/// The contributions of node `i`'s adjoint `g` to its operands.
fn rule(
    b: &mut FnBuilder<'_>,
    i: ValueId,
    g: ValueId,
    need: &dyn Fn(ValueId) -> bool,
) -> Vec<(ValueId, ValueId)> {
    let node = b.f.nodes[i].clone();
    let y = i;
    match node.op {
        Op::Input(_) | Op::State(_) | Op::Constant(_) | Op::Random { .. } | Op::OneHot { .. } => {
            vec![]
        }
        Op::Cast(_) | Op::StopGrad(_) => vec![],
        Op::Unary(op, x) => {
            let gx = match op {
                UnaryOp::Neg => b.unary(UnaryOp::Neg, g),
                UnaryOp::Exp => b.mul(g, y),
                UnaryOp::Log => b.div(g, x),
                UnaryOp::Sqrt => {
                    let t = b.div(g, y);
                    b.scale(t, 0.5)
                }
                UnaryOp::Abs => {
                    let s = b.unary(UnaryOp::Sign, x);
                    b.mul(g, s)
                }
                UnaryOp::Tanh => {
                    let y2 = b.mul(y, y);
                    let one = b.scalar(1.0);
                    let d = b.sub(one, y2);
                    b.mul(g, d)
                }
                UnaryOp::Sigmoid => {
                    let one = b.scalar(1.0);
                    let d = b.sub(one, y);
                    let d = b.mul(y, d);
                    b.mul(g, d)
                }
                UnaryOp::Sign => return vec![],
                UnaryOp::Recip => {
                    let y2 = b.mul(y, y);
                    let t = b.mul(g, y2);
                    b.unary(UnaryOp::Neg, t)
                }
            };
            vec![(x, gx)]
        }
        Op::Binary(op, x, z) => binary_rule(b, op, x, z, y, g, need),
        Op::Select(c, x, z) => {
            let zero = b.constant(0.0, node.shape.clone());
            let mut out = Vec::new();
            if need(x) {
                out.push((x, b.select(c, g, zero)));
            }
            if need(z) {
                out.push((z, b.select(c, zero, g)));
            }
            out
        }
        Op::Broadcast(x) => {
            let xs = b.shape(x).to_vec();
            vec![(x, unbroadcast(b, g, &xs))]
        }
        Op::Reduce(op, x, axes) => {
            let xs = b.shape(x).to_vec();
            let keep: Shape = xs
                .iter()
                .enumerate()
                .map(|(k, d)| if axes.contains(&k) { 1 } else { *d })
                .collect();
            match op {
                ReduceOp::Sum => {
                    let gk = b.reshape(g, &keep);
                    vec![(x, b.broadcast(gk, &xs))]
                }
                ReduceOp::Max => {
                    // Ties share the gradient equally: a valid subgradient, and symmetric.
                    let yk = b.reshape(y, &keep);
                    let yb = b.broadcast(yk, &xs);
                    let mask = b.binary(BinaryOp::Eq, x, yb);
                    let count = b.sum(mask, &axes);
                    let share = b.div(g, count);
                    let sk = b.reshape(share, &keep);
                    let sb = b.broadcast(sk, &xs);
                    vec![(x, b.mul(mask, sb))]
                }
            }
        }
        Op::MatMul(x, z) => {
            let r = b.shape(x).len();
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(r - 2, r - 1);
            let mut out = Vec::new();
            if need(x) {
                let zt = b.transpose(z, &perm);
                out.push((x, b.matmul(g, zt)));
            }
            if need(z) {
                let xt = b.transpose(x, &perm);
                out.push((z, b.matmul(xt, g)));
            }
            out
        }
        Op::Reshape(x) => {
            let xs = b.shape(x).to_vec();
            vec![(x, b.reshape(g, &xs))]
        }
        Op::Transpose(x, perm) => {
            let mut inv = vec![0; perm.len()];
            for (k, p) in perm.iter().enumerate() {
                inv[*p] = k;
            }
            vec![(x, b.transpose(g, &inv))]
        }
        Op::Slice { x, axis, start } => {
            let total = b.shape(x)[axis];
            vec![(x, b.pad(g, axis, start, total))]
        }
        Op::Pad { x, axis, start } => {
            let len = b.shape(x)[axis];
            vec![(x, b.slice(g, axis, start, len))]
        }
        Op::Concat(xs, axis) => {
            let mut off = 0;
            let mut out = Vec::new();
            for x in xs {
                let len = b.shape(x)[axis];
                out.push((x, b.slice(g, axis, off, len)));
                off += len;
            }
            out
        }
        Op::Gather { table, indices } => {
            let ts = b.shape(table).to_vec();
            let gt = b.push(
                Op::ScatterAdd {
                    indices,
                    updates: g,
                },
                ts,
                DType::F32,
            );
            vec![(table, gt)]
        }
        Op::ScatterAdd { indices, updates } => {
            let us = b.shape(updates).to_vec();
            let gu = b.push(Op::Gather { table: g, indices }, us, DType::F32);
            vec![(updates, gu)]
        }
        Op::Im2Col {
            x,
            kernel,
            stride,
            padding,
            ..
        } => {
            let xs = b.shape(x).to_vec();
            let gx = b.push(
                Op::Col2Im {
                    cols: g,
                    kernel,
                    stride,
                    padding,
                },
                xs,
                DType::F32,
            );
            vec![(x, gx)]
        }
        Op::Col2Im {
            cols,
            kernel,
            stride,
            padding,
        } => vec![(cols, b.im2col(g, kernel, stride, padding, 0.0))],
    }
}

fn binary_rule(
    b: &mut FnBuilder<'_>,
    op: BinaryOp,
    x: ValueId,
    z: ValueId,
    y: ValueId,
    g: ValueId,
    need: &dyn Fn(ValueId) -> bool,
) -> Vec<(ValueId, ValueId)> {
    let all = match op {
        BinaryOp::Add => vec![(x, g), (z, g)],
        BinaryOp::Sub => {
            let n = b.unary(UnaryOp::Neg, g);
            vec![(x, g), (z, n)]
        }
        BinaryOp::Mul => {
            let mut out = Vec::new();
            if need(x) {
                out.push((x, b.mul(g, z)));
            }
            if need(z) {
                out.push((z, b.mul(g, x)));
            }
            return out;
        }
        BinaryOp::Div => {
            let gx = b.div(g, z);
            let mut out = Vec::new();
            if need(z) {
                let t = b.mul(gx, y);
                out.push((z, b.unary(UnaryOp::Neg, t)));
            }
            if need(x) {
                out.push((x, gx));
            }
            return out;
        }
        BinaryOp::Max | BinaryOp::Min => {
            // The gradient goes to the chosen operand; ties go to the left one.
            let pick_x = if op == BinaryOp::Max {
                b.binary(BinaryOp::Ge, x, z)
            } else {
                b.binary(BinaryOp::Le, x, z)
            };
            let one = b.scalar(1.0);
            let pick_z = b.sub(one, pick_x);
            let gx = b.mul(g, pick_x);
            let gz = b.mul(g, pick_z);
            vec![(x, gx), (z, gz)]
        }
        BinaryOp::Pow => {
            let mut out = Vec::new();
            if need(x) {
                let one = b.scalar(1.0);
                let zm1 = b.sub(z, one);
                let p = b.binary(BinaryOp::Pow, x, zm1);
                let t = b.mul(z, p);
                out.push((x, b.mul(g, t)));
            }
            if need(z) {
                let lx = b.unary(UnaryOp::Log, x);
                let t2 = b.mul(y, lx);
                out.push((z, b.mul(g, t2)));
            }
            return out;
        }
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne => {
            vec![]
        }
    };
    all.into_iter().filter(|(v, _)| need(*v)).collect()
}

/// `sum_i x_i^T g_i` as one product: `[x_1; ...; x_n]^T [g_1; ...; g_n]`. An unrolled
/// recurrence uses its weight once per step; one large matrix product is much faster than T
/// small ones and T - 1 additions. The parts are stacked along a new second axis (row
/// `r * n + i` is row `r` of part `i`), the layout of a sequence `[B, T, ...]`: the stacked
/// step gradients are then the same node as the gradient of the sequence the steps were
/// sliced from (`assemble_slices`), built once.
fn assemble_products(b: &mut FnBuilder<'_>, mut pairs: Vec<(ValueId, ValueId)>) -> ValueId {
    // Steps in forward order, so the sum's association is fixed.
    pairs.sort_unstable();
    let (xs, gs): (Vec<ValueId>, Vec<ValueId>) = pairs.into_iter().unzip();
    let x = stack_rows(b, xs);
    let g = stack_rows(b, gs);
    let xt = b.transpose(x, &[1, 0]);
    b.matmul(xt, g)
}

/// Matrices `[m, k]` stacked along a new second axis and flattened to `[m * n, k]`.
fn stack_rows(b: &mut FnBuilder<'_>, parts: Vec<ValueId>) -> ValueId {
    let n = parts.len();
    let (m, k) = {
        let s = b.shape(parts[0]);
        (s[0], s[1])
    };
    let parts: Vec<ValueId> = parts
        .into_iter()
        .map(|p| b.reshape(p, &[m, 1, k]))
        .collect();
    let stacked = b.concat(parts, 1);
    b.reshape(stacked, &[m * n, k])
}

/// The gradient of `x` from the gradients of several slices of it: one concatenation of the
/// parts (zeros in the gaps) when they are disjoint slices along one axis, instead of a sum of
/// full-size pads (which costs O(T^2) for the T steps of an unrolled recurrence).
fn assemble_slices(
    b: &mut FnBuilder<'_>,
    x: ValueId,
    mut parts: Vec<(usize, usize, ValueId)>,
) -> ValueId {
    let shape = b.shape(x).to_vec();
    let axis = parts[0].0;
    parts.sort_by_key(|(_, start, _)| *start);
    let mut disjoint = parts.iter().all(|(a, _, _)| *a == axis);
    let mut pos = 0;
    for (_, start, g) in &parts {
        if *start < pos {
            disjoint = false;
        }
        pos = start + b.shape(*g)[axis];
    }
    if !disjoint {
        let mut acc: Option<ValueId> = None;
        for (a, start, g) in parts {
            let p = b.pad(g, a, start, shape[a]);
            acc = Some(match acc {
                Some(prev) => b.add(prev, p),
                None => p,
            });
        }
        return acc.unwrap_or_else(|| b.constant(0.0, shape.clone()));
    }
    let mut pieces = Vec::new();
    let mut at = 0;
    for (_, start, g) in parts {
        if start > at {
            let mut z = shape.clone();
            z[axis] = start - at;
            pieces.push(b.constant(0.0, z));
        }
        at = start + b.shape(g)[axis];
        pieces.push(g);
    }
    if at < shape[axis] {
        let mut z = shape.clone();
        z[axis] = shape[axis] - at;
        pieces.push(b.constant(0.0, z));
    }
    b.concat(pieces, axis)
}

/// Sum `g` over the axes a broadcast to its shape repeated, giving shape `to`.
pub fn unbroadcast(b: &mut FnBuilder<'_>, g: ValueId, to: &[usize]) -> ValueId {
    let gs = b.shape(g).to_vec();
    if gs == to {
        return g;
    }
    let lead = gs.len() - to.len();
    let mut axes: Vec<usize> = (0..lead).collect();
    for (k, d) in to.iter().enumerate() {
        if *d == 1 && gs[lead + k] != 1 {
            axes.push(lead + k);
        }
    }
    let s = b.sum(g, &axes);
    b.reshape(s, to)
}
