//! Building IR functions: one method per op that infers the result shape, inserting explicit
//! `Broadcast`s where NumPy would broadcast. Shapes come from the checker, so a mismatch here is
//! a bug in mlx; `verify` reports it as an internal error.

use super::*;
use crate::source::Span;
use std::collections::HashMap;

pub struct FnBuilder<'a> {
    pub states: &'a mut Vec<StateDecl>,
    pub f: Function,
    state_reads: HashMap<StateId, ValueId>,
    /// Attached to every node pushed until changed.
    pub origin: Option<Span>,
    /// Every node by its content: pushing an op that exists returns the existing value
    /// (common subexpressions are computed once, and equal gradients assembled twice, as
    /// an unrolled recurrence's are, become one node).
    known: HashMap<String, ValueId>,
}

/// The NumPy broadcast of two shapes, if they broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let x = (i + a.len()).checked_sub(n).map_or(1, |j| a[j]);
        let y = (i + b.len()).checked_sub(n).map_or(1, |j| b[j]);
        *o = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return None;
        };
    }
    Some(out)
}

impl<'a> FnBuilder<'a> {
    pub fn new(name: &str, states: &'a mut Vec<StateDecl>) -> FnBuilder<'a> {
        FnBuilder {
            states,
            f: Function {
                name: name.to_string(),
                ..Function::default()
            },
            state_reads: HashMap::new(),
            origin: None,
            known: HashMap::new(),
        }
    }

    /// The function, simplified (`simplify`): dead nodes removed, slices sunk.
    pub fn finish(self) -> Function {
        super::simplify::simplify(self.f)
    }

    pub fn push(&mut self, op: Op, shape: Shape, dtype: DType) -> ValueId {
        let key = format!("{op:?} {shape:?} {dtype:?}");
        if let Some(v) = self.known.get(&key) {
            return *v;
        }
        self.known.insert(key, self.f.nodes.len());
        self.f.nodes.push(Node {
            op,
            shape,
            dtype,
            origin: self.origin,
        });
        self.f.nodes.len() - 1
    }

    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.f.nodes[v].shape
    }

    pub fn dtype(&self, v: ValueId) -> DType {
        self.f.nodes[v].dtype
    }

    pub fn input(&mut self, name: &str, shape: Shape, dtype: DType) -> ValueId {
        let i = self.f.inputs.len();
        self.f.inputs.push(InputDecl {
            name: name.to_string(),
            shape: shape.clone(),
            dtype,
        });
        self.push(Op::Input(i), shape, dtype)
    }

    /// Declare a state buffer (or find it by name).
    pub fn declare_state(&mut self, decl: StateDecl) -> StateId {
        if let Some(i) = self.states.iter().position(|s| s.name == decl.name) {
            return i;
        }
        self.states.push(decl);
        self.states.len() - 1
    }

    /// Read a state buffer (once per function).
    pub fn state(&mut self, id: StateId) -> ValueId {
        if let Some(v) = self.state_reads.get(&id) {
            return *v;
        }
        let shape = self.states[id].shape.clone();
        let v = self.push(Op::State(id), shape, DType::F32);
        self.state_reads.insert(id, v);
        v
    }

    pub fn update(&mut self, id: StateId, v: ValueId) {
        self.f.updates.push((id, v));
    }

    pub fn output(&mut self, name: &str, v: ValueId) {
        self.f.outputs.push((name.to_string(), v));
    }

    pub fn constant(&mut self, value: f32, shape: Shape) -> ValueId {
        self.push(Op::Constant(value), shape, DType::F32)
    }

    pub fn scalar(&mut self, value: f32) -> ValueId {
        self.constant(value, Vec::new())
    }

    pub fn unary(&mut self, op: UnaryOp, x: ValueId) -> ValueId {
        let s = self.shape(x).to_vec();
        self.push(Op::Unary(op, x), s, DType::F32)
    }

    /// Broadcast `x` to `shape` (no node when it already has it).
    pub fn broadcast(&mut self, x: ValueId, shape: &[usize]) -> ValueId {
        if self.shape(x) == shape {
            return x;
        }
        let dt = self.dtype(x);
        self.push(Op::Broadcast(x), shape.to_vec(), dt)
    }

    /// Elementwise with NumPy broadcasting.
    pub fn binary(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
        let s = broadcast_shapes(self.shape(a), self.shape(b))
            .unwrap_or_else(|| self.shape(a).to_vec());
        let a = self.broadcast(a, &s);
        let b = self.broadcast(b, &s);
        self.push(Op::Binary(op, a, b), s, DType::F32)
    }

    pub fn add(&mut self, a: ValueId, b: ValueId) -> ValueId {
        self.binary(BinaryOp::Add, a, b)
    }

    pub fn sub(&mut self, a: ValueId, b: ValueId) -> ValueId {
        self.binary(BinaryOp::Sub, a, b)
    }

    pub fn mul(&mut self, a: ValueId, b: ValueId) -> ValueId {
        self.binary(BinaryOp::Mul, a, b)
    }

    pub fn div(&mut self, a: ValueId, b: ValueId) -> ValueId {
        self.binary(BinaryOp::Div, a, b)
    }

    /// `a * s` for a scalar constant `s`.
    pub fn scale(&mut self, a: ValueId, s: f32) -> ValueId {
        let c = self.scalar(s);
        self.mul(a, c)
    }

    pub fn select(&mut self, c: ValueId, a: ValueId, b: ValueId) -> ValueId {
        let s = broadcast_shapes(self.shape(c), self.shape(a))
            .and_then(|s| broadcast_shapes(&s, self.shape(b)))
            .unwrap_or_else(|| self.shape(a).to_vec());
        let c = self.broadcast(c, &s);
        let a = self.broadcast(a, &s);
        let b = self.broadcast(b, &s);
        self.push(Op::Select(c, a, b), s, DType::F32)
    }

    /// Reduce over `axes` (removed). No node for an empty axis list.
    pub fn reduce(&mut self, op: ReduceOp, x: ValueId, axes: &[usize]) -> ValueId {
        if axes.is_empty() {
            return x;
        }
        let s: Shape = self
            .shape(x)
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, d)| *d)
            .collect();
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        if let Some(v) = self.sum_in_row_blocks(op, x, &axes, &s) {
            return v;
        }
        self.push(Op::Reduce(op, x, axes), s, DType::F32)
    }

    /// A sum over many leading rows (a bias gradient over batch × time) as two sums: over
    /// fixed blocks of rows, then over the blocks in order. Each block streams whole rows,
    /// and blocks are independent tasks; summed column by column, every task would walk the
    /// whole tensor with a row-sized stride. The blocks depend only on the shape, so the
    /// result is the same on every back end and thread count.
    fn sum_in_row_blocks(
        &mut self,
        op: ReduceOp,
        x: ValueId,
        axes: &[usize],
        kept: &[usize],
    ) -> Option<ValueId> {
        let shape = self.shape(x).to_vec();
        let lead = axes.len();
        if op != ReduceOp::Sum
            || lead >= shape.len()
            || axes.iter().enumerate().any(|(i, a)| i != *a)
        {
            return None;
        }
        let rows: usize = shape[..lead].iter().product();
        let cols: usize = shape[lead..].iter().product();
        if rows < 2048 || cols < 64 {
            return None;
        }
        let block = (32..=256).rev().find(|b| rows.is_multiple_of(*b))?;
        let v = self.reshape(x, &[rows / block, block, cols]);
        let partial = self.push(
            Op::Reduce(ReduceOp::Sum, v, vec![1]),
            vec![rows / block, cols],
            DType::F32,
        );
        let total = self.push(
            Op::Reduce(ReduceOp::Sum, partial, vec![0]),
            vec![cols],
            DType::F32,
        );
        Some(self.reshape(total, kept))
    }

    pub fn sum(&mut self, x: ValueId, axes: &[usize]) -> ValueId {
        self.reduce(ReduceOp::Sum, x, axes)
    }

    pub fn sum_all(&mut self, x: ValueId) -> ValueId {
        let axes: Vec<usize> = (0..self.shape(x).len()).collect();
        self.sum(x, &axes)
    }

    pub fn mean(&mut self, x: ValueId, axes: &[usize]) -> ValueId {
        let n: usize = axes.iter().map(|a| self.shape(x)[*a]).product();
        let s = self.sum(x, axes);
        self.scale(s, 1.0 / n.max(1) as f32)
    }

    pub fn reshape(&mut self, x: ValueId, shape: &[usize]) -> ValueId {
        if self.shape(x) == shape {
            return x;
        }
        // A reshape of a reshape is one reshape of the original (or the original itself).
        if let Op::Reshape(src) = self.f.nodes[x].op {
            return self.reshape(src, shape);
        }
        let dt = self.dtype(x);
        self.push(Op::Reshape(x), shape.to_vec(), dt)
    }

    pub fn transpose(&mut self, x: ValueId, perm: &[usize]) -> ValueId {
        if perm.iter().enumerate().all(|(i, p)| i == *p) {
            return x;
        }
        let s = perm.iter().map(|p| self.shape(x)[*p]).collect();
        let dt = self.dtype(x);
        self.push(Op::Transpose(x, perm.to_vec()), s, dt)
    }

    /// `a @ b` for rank ≥ 2 operands with equal batch axes.
    pub fn matmul(&mut self, a: ValueId, b: ValueId) -> ValueId {
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        let mut s = sa[..sa.len() - 1].to_vec();
        s.push(sb[sb.len() - 1]);
        self.push(Op::MatMul(a, b), s, DType::F32)
    }

    pub fn slice(&mut self, x: ValueId, axis: usize, start: usize, len: usize) -> ValueId {
        let mut s = self.shape(x).to_vec();
        if start == 0 && s[axis] == len {
            return x;
        }
        // A slice inside one part of a concatenation along the same axis is a slice of that
        // part: reading the last step of a scan's output then does not keep the whole
        // sequence (nor, in the backward pass, a gradient of zeros for every other step).
        if let Op::Concat(xs, cat) = &self.f.nodes[x].op
            && *cat == axis
        {
            let xs = xs.clone();
            let mut at = 0;
            for p in xs {
                let n = self.shape(p)[axis];
                if start >= at && start + len <= at + n {
                    return self.slice(p, axis, start - at, len);
                }
                at += n;
            }
        }
        s[axis] = len;
        self.push(Op::Slice { x, axis, start }, s, DType::F32)
    }

    pub fn pad(&mut self, x: ValueId, axis: usize, start: usize, total: usize) -> ValueId {
        let mut s = self.shape(x).to_vec();
        if start == 0 && s[axis] == total {
            return x;
        }
        s[axis] = total;
        self.push(Op::Pad { x, axis, start }, s, DType::F32)
    }

    pub fn concat(&mut self, xs: Vec<ValueId>, axis: usize) -> ValueId {
        if xs.len() == 1 {
            return xs[0];
        }
        let mut s = self.shape(xs[0]).to_vec();
        s[axis] = xs.iter().map(|x| self.shape(*x)[axis]).sum();
        self.push(Op::Concat(xs, axis), s, DType::F32)
    }

    pub fn cast(&mut self, x: ValueId, to: DType) -> ValueId {
        if self.dtype(x) == to {
            return x;
        }
        let s = self.shape(x).to_vec();
        self.push(Op::Cast(x), s, to)
    }

    pub fn one_hot(&mut self, x: ValueId, classes: usize) -> ValueId {
        let mut s = self.shape(x).to_vec();
        s.push(classes);
        self.push(Op::OneHot { x, classes }, s, DType::F32)
    }

    pub fn im2col(
        &mut self,
        x: ValueId,
        kernel: [usize; 2],
        stride: usize,
        padding: usize,
        pad_value: f32,
    ) -> ValueId {
        let s = self.shape(x).to_vec();
        let oh = (s[2] + 2 * padding - kernel[0]) / stride + 1;
        let ow = (s[3] + 2 * padding - kernel[1]) / stride + 1;
        self.push(
            Op::Im2Col {
                x,
                kernel,
                stride,
                padding,
                pad_value,
            },
            vec![s[0], oh, ow, s[1] * kernel[0] * kernel[1]],
            DType::F32,
        )
    }

    pub fn stop_grad(&mut self, x: ValueId) -> ValueId {
        let s = self.shape(x).to_vec();
        let dt = self.dtype(x);
        self.push(Op::StopGrad(x), s, dt)
    }

    /// Numerically stable `log(sum(exp(x), axis))` (the axis removed).
    pub fn logsumexp(&mut self, x: ValueId, axis: usize) -> ValueId {
        let m = self.reduce(ReduceOp::Max, x, &[axis]);
        let m = self.stop_grad(m);
        let mut keep = self.shape(x).to_vec();
        keep[axis] = 1;
        let m1 = self.reshape(m, &keep);
        let shifted = self.sub(x, m1);
        let e = self.unary(UnaryOp::Exp, shifted);
        let s = self.sum(e, &[axis]);
        let l = self.unary(UnaryOp::Log, s);
        self.add(l, m)
    }
}
