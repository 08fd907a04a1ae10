//! The tensor IR: one closed set of primitive ops over concrete shapes, shared by every back
//! end. A `Program` holds persistent state (parameters, optimizer moments, running statistics)
//! and functions (a training step, an evaluation pass) that read inputs and state and produce
//! outputs and state updates.
//!
//! The op set is deliberately small. Broadcasting is explicit (`Broadcast`), so elementwise ops
//! take equal shapes; convolution and pooling are `Im2Col` followed by `MatMul` or a `Reduce`;
//! recurrences are unrolled when lowered. Every op's meaning is defined by the reference
//! interpreter in `backend::interp`.

pub mod autodiff;
pub mod build;
pub mod lower;
pub mod memory;
pub mod passes;
pub mod print;
pub mod schedule;
pub mod simplify;
pub mod verify;

#[cfg(test)]
pub(crate) mod tests;

use crate::source::Span;
use serde::Serialize;

pub type ValueId = usize;
pub type StateId = usize;
pub type Shape = Vec<usize>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum DType {
    F32,
    I32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Sign,
    Recip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
    /// Comparisons give 1.0 where true, 0.0 where false.
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ReduceOp {
    Sum,
    Max,
}

/// A primitive operation. Operand shapes are constrained as `verify` checks; the result shape
/// is stored on the node.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The function's `i`-th input.
    Input(usize),
    /// The current value of a state buffer.
    State(StateId),
    /// Every element `value`.
    Constant(f32),
    /// Elementwise.
    Unary(UnaryOp, ValueId),
    /// Elementwise over equal shapes.
    Binary(BinaryOp, ValueId, ValueId),
    /// `cond != 0 ? a : b`, elementwise over equal shapes.
    Select(ValueId, ValueId, ValueId),
    /// NumPy broadcasting of the operand to the node's shape (align right; size-1 or missing
    /// axes are repeated).
    Broadcast(ValueId),
    /// Reduce over `axes` (removed from the shape).
    Reduce(ReduceOp, ValueId, Vec<usize>),
    /// `[..., M, K] @ [..., K, N]` with equal batch axes.
    MatMul(ValueId, ValueId),
    /// Same elements in row-major order, the node's shape.
    Reshape(ValueId),
    /// Output axis `i` is input axis `perm[i]`.
    Transpose(ValueId, Vec<usize>),
    /// Elements `start..start + len` of `axis` (len from the node's shape).
    Slice {
        x: ValueId,
        axis: usize,
        start: usize,
    },
    /// The operand placed at `start` along `axis` in zeros of the node's shape (the adjoint of
    /// `Slice`).
    Pad {
        x: ValueId,
        axis: usize,
        start: usize,
    },
    Concat(Vec<ValueId>, usize),
    /// `table[indices]`: indices (I32, any shape) pick rows of `table` `[V, ...]`.
    Gather {
        table: ValueId,
        indices: ValueId,
    },
    /// Zeros of the node's shape `[V, ...]` with `updates[i]` added at row `indices[i]`.
    ScatterAdd {
        indices: ValueId,
        updates: ValueId,
    },
    /// Windows of an NCHW tensor: `[N, C, H, W]` -> `[N, OH, OW, C*kh*kw]`, inner order
    /// (c, i, j); outside the input reads `pad_value`.
    Im2Col {
        x: ValueId,
        kernel: [usize; 2],
        stride: usize,
        padding: usize,
        pad_value: f32,
    },
    /// The adjoint of `Im2Col`: sums window entries back into `[N, C, H, W]` (the node's shape).
    Col2Im {
        cols: ValueId,
        kernel: [usize; 2],
        stride: usize,
        padding: usize,
    },
    /// Uniform [0, 1) numbers of the node's shape: element `i` is
    /// `unit_f32(rng::at(rng::at(key, counter), i))`; `counter` is an I32 scalar.
    Random {
        key: u64,
        counter: ValueId,
    },
    /// I32 class indices `[...]` -> F32 `[..., classes]` one-hot rows (out-of-range: zeros).
    OneHot {
        x: ValueId,
        classes: usize,
    },
    /// Convert between F32 and I32 (F32 -> I32 truncates toward zero).
    Cast(ValueId),
    /// The operand unchanged; no gradient flows through it.
    StopGrad(ValueId),
}

impl Op {
    /// The operands of this op.
    pub fn args(&self) -> Vec<ValueId> {
        match self {
            Op::Input(_) | Op::State(_) | Op::Constant(_) => vec![],
            Op::Unary(_, x)
            | Op::Broadcast(x)
            | Op::Reduce(_, x, _)
            | Op::Reshape(x)
            | Op::Transpose(x, _)
            | Op::Slice { x, .. }
            | Op::Pad { x, .. }
            | Op::Im2Col { x, .. }
            | Op::OneHot { x, .. }
            | Op::Cast(x)
            | Op::StopGrad(x) => vec![*x],
            Op::Col2Im { cols, .. } => vec![*cols],
            Op::Binary(_, a, b) | Op::MatMul(a, b) => vec![*a, *b],
            Op::Select(c, a, b) => vec![*c, *a, *b],
            Op::Concat(xs, _) => xs.clone(),
            Op::Gather { table, indices } => vec![*table, *indices],
            Op::ScatterAdd { indices, updates } => vec![*indices, *updates],
            Op::Random { counter, .. } => vec![*counter],
        }
    }

    /// The op with every operand renamed by `f`.
    pub fn map_args(&self, f: &dyn Fn(ValueId) -> ValueId) -> Op {
        let mut op = self.clone();
        match &mut op {
            Op::Input(_) | Op::State(_) | Op::Constant(_) => {}
            Op::Unary(_, x)
            | Op::Broadcast(x)
            | Op::Reduce(_, x, _)
            | Op::Reshape(x)
            | Op::Transpose(x, _)
            | Op::Slice { x, .. }
            | Op::Pad { x, .. }
            | Op::Im2Col { x, .. }
            | Op::OneHot { x, .. }
            | Op::Cast(x)
            | Op::StopGrad(x) => *x = f(*x),
            Op::Col2Im { cols, .. } => *cols = f(*cols),
            Op::Binary(_, a, b) | Op::MatMul(a, b) => {
                *a = f(*a);
                *b = f(*b);
            }
            Op::Select(c, a, b) => {
                *c = f(*c);
                *a = f(*a);
                *b = f(*b);
            }
            Op::Concat(xs, _) => xs.iter_mut().for_each(|x| *x = f(*x)),
            Op::Gather { table, indices } => {
                *table = f(*table);
                *indices = f(*indices);
            }
            Op::ScatterAdd { indices, updates } => {
                *indices = f(*indices);
                *updates = f(*updates);
            }
            Op::Random { counter, .. } => *counter = f(*counter),
        }
        op
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub shape: Shape,
    pub dtype: DType,
    /// The source expression this node came from, for runtime errors.
    pub origin: Option<Span>,
}

impl Node {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InputDecl {
    pub name: String,
    pub shape: Shape,
    pub dtype: DType,
}

/// A function of inputs and state: nodes in topological order (operands come first).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Function {
    pub name: String,
    pub inputs: Vec<InputDecl>,
    pub nodes: Vec<Node>,
    pub outputs: Vec<(String, ValueId)>,
    /// State buffers replaced by these values once the function has run.
    pub updates: Vec<(StateId, ValueId)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StateKind {
    /// A trainable parameter.
    Param,
    /// Optimizer state (moments, momentum buffers).
    Optimizer,
    /// Non-trainable model state (batch-norm running statistics).
    Buffer,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StateDecl {
    /// A path such as `dense_0.w` or `adam.m.dense_0.w`.
    pub name: String,
    pub shape: Shape,
    pub kind: StateKind,
    /// How the runtime fills it before the first step.
    pub init: crate::check::hir::Init,
    #[serde(skip)]
    pub origin: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub states: Vec<StateDecl>,
    pub functions: Vec<Function>,
}

impl Program {
    pub fn function(&self, name: &str) -> Option<usize> {
        self.functions.iter().position(|f| f.name == name)
    }

    pub fn state(&self, name: &str) -> Option<StateId> {
        self.states.iter().position(|s| s.name == name)
    }
}
