//! The reference interpreter: the living definition of every IR op, over `ndarray`. It is
//! written to be obviously right, never clever: plain loops where the meaning is subtle,
//! sums accumulated in f64 in a fixed order. Every other back end is tested against it.

use super::{Backend, Executable, HostTensor, RuntimeError, TensorData};
use crate::diagnostics::Diagnostic;
use crate::ir::{self, BinaryOp, DType, Op, Program, ReduceOp, StateId, UnaryOp};
use crate::rng;
use ndarray::{ArrayD, Axis, IxDyn, Slice, Zip};

pub struct Interp;

impl Backend for Interp {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn compile(&self, program: &Program) -> Result<Box<dyn Executable>, Diagnostic> {
        ir::verify::program(program)?;
        let states = program
            .states
            .iter()
            .map(|s| ArrayD::zeros(IxDyn(&s.shape)))
            .collect();
        let last_use = program.functions.iter().map(last_uses).collect();
        Ok(Box::new(Interpreter {
            program: program.clone(),
            states,
            last_use,
        }))
    }
}

pub struct Interpreter {
    program: Program,
    states: Vec<ArrayD<f32>>,
    last_use: Vec<Vec<usize>>,
}

#[derive(Clone, Debug)]
enum Value {
    F(ArrayD<f32>),
    I(ArrayD<i32>),
}

/// For each node, the index of the last node (or output/update) that reads it.
fn last_uses(f: &ir::Function) -> Vec<usize> {
    let mut last: Vec<usize> = (0..f.nodes.len()).collect();
    for (i, n) in f.nodes.iter().enumerate() {
        for a in n.op.args() {
            last[a] = last[a].max(i);
        }
    }
    for (_, v) in &f.outputs {
        last[*v] = usize::MAX;
    }
    for (_, v) in &f.updates {
        last[*v] = usize::MAX;
    }
    last
}

fn to_array(t: &HostTensor) -> Result<Value, RuntimeError> {
    let bad =
        |e: ndarray::ShapeError| RuntimeError::new(format!("tensor of shape {:?}: {e}", t.shape));
    Ok(match &t.data {
        TensorData::F32(v) => {
            Value::F(ArrayD::from_shape_vec(IxDyn(&t.shape), v.clone()).map_err(bad)?)
        }
        TensorData::I32(v) => {
            Value::I(ArrayD::from_shape_vec(IxDyn(&t.shape), v.clone()).map_err(bad)?)
        }
    })
}

fn to_host(v: &Value) -> HostTensor {
    match v {
        Value::F(a) => HostTensor::f32(
            a.shape().to_vec(),
            a.as_standard_layout().iter().copied().collect(),
        ),
        Value::I(a) => HostTensor::i32(
            a.shape().to_vec(),
            a.as_standard_layout().iter().copied().collect(),
        ),
    }
}

impl Executable for Interpreter {
    fn run(
        &mut self,
        function: usize,
        inputs: &[HostTensor],
    ) -> Result<Vec<HostTensor>, RuntimeError> {
        let f = super::checked_call(&self.program, function, inputs)?;
        let last = &self.last_use[function];
        let mut vals: Vec<Option<Value>> = vec![None; f.nodes.len()];
        for (i, node) in f.nodes.iter().enumerate() {
            let v = eval(node, &vals, inputs, &self.states).map_err(|mut e| {
                e.origin = e.origin.or(node.origin);
                e
            })?;
            vals[i] = Some(v);
            for a in node.op.args() {
                if last[a] == i {
                    vals[a] = None;
                }
            }
        }
        let get = |v: usize| -> Result<&Value, RuntimeError> {
            vals[v]
                .as_ref()
                .ok_or_else(|| RuntimeError::new(format!("value %{v} was freed too early")))
        };
        let mut outs = Vec::new();
        for (_, v) in &f.outputs {
            outs.push(to_host(get(*v)?));
        }
        let mut new_states = Vec::new();
        for (s, v) in &f.updates {
            match get(*v)? {
                Value::F(a) => new_states.push((*s, a.as_standard_layout().to_owned())),
                Value::I(_) => return Err(RuntimeError::new("a state update must be f32")),
            }
        }
        for (s, a) in new_states {
            self.states[s] = a;
        }
        Ok(outs)
    }

    fn read_state(&self, id: StateId) -> Result<HostTensor, RuntimeError> {
        let s = self
            .states
            .get(id)
            .ok_or_else(|| RuntimeError::new("no such state"))?;
        Ok(to_host(&Value::F(s.clone())))
    }

    fn write_state(&mut self, id: StateId, value: &HostTensor) -> Result<(), RuntimeError> {
        let decl = self
            .program
            .states
            .get(id)
            .ok_or_else(|| RuntimeError::new("no such state"))?;
        if decl.shape != value.shape {
            return Err(RuntimeError::new(format!(
                "state `{}` is {:?}, not {:?}",
                decl.name, decl.shape, value.shape
            )));
        }
        match to_array(value)? {
            Value::F(a) => self.states[id] = a,
            Value::I(_) => return Err(RuntimeError::new("state must be f32")),
        }
        Ok(())
    }
}

fn f32_of(vals: &[Option<Value>], v: usize) -> Result<&ArrayD<f32>, RuntimeError> {
    match vals[v].as_ref() {
        Some(Value::F(a)) => Ok(a),
        _ => Err(RuntimeError::new(format!("%{v} is not an f32 value"))),
    }
}

fn i32_of(vals: &[Option<Value>], v: usize) -> Result<&ArrayD<i32>, RuntimeError> {
    match vals[v].as_ref() {
        Some(Value::I(a)) => Ok(a),
        _ => Err(RuntimeError::new(format!("%{v} is not an i32 value"))),
    }
}

fn shaped(shape: &[usize], data: Vec<f32>) -> Result<ArrayD<f32>, RuntimeError> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| RuntimeError::new(e.to_string()))
}

fn eval(
    node: &ir::Node,
    vals: &[Option<Value>],
    inputs: &[HostTensor],
    states: &[ArrayD<f32>],
) -> Result<Value, RuntimeError> {
    let f = |v: usize| f32_of(vals, v);
    Ok(Value::F(match &node.op {
        Op::Input(k) => return to_array(&inputs[*k]),
        Op::State(s) => states[*s].clone(),
        Op::Constant(c) => ArrayD::from_elem(IxDyn(&node.shape), *c),
        Op::Unary(op, x) => f(*x)?.mapv(|v| unary(*op, v)),
        Op::Binary(op, a, b) => Zip::from(f(*a)?)
            .and(f(*b)?)
            .map_collect(|x, y| binary(*op, *x, *y)),
        Op::Select(c, a, b) => Zip::from(f(*c)?)
            .and(f(*a)?)
            .and(f(*b)?)
            .map_collect(|c, x, y| if *c != 0.0 { *x } else { *y }),
        Op::Broadcast(x) => match vals[*x].as_ref() {
            Some(Value::I(a)) => {
                let b = a
                    .broadcast(IxDyn(&node.shape))
                    .ok_or_else(|| RuntimeError::new("bad broadcast"))?;
                return Ok(Value::I(b.to_owned()));
            }
            _ => f(*x)?
                .broadcast(IxDyn(&node.shape))
                .ok_or_else(|| RuntimeError::new("bad broadcast"))?
                .to_owned(),
        },
        Op::Reduce(op, x, axes) => reduce(*op, f(*x)?, axes, &node.shape)?,
        Op::MatMul(a, b) => matmul(f(*a)?, f(*b)?, &node.shape)?,
        Op::Reshape(x) => match vals[*x].as_ref() {
            Some(Value::I(a)) => {
                let data: Vec<i32> = a.as_standard_layout().iter().copied().collect();
                return ArrayD::from_shape_vec(IxDyn(&node.shape), data)
                    .map(Value::I)
                    .map_err(|e| RuntimeError::new(e.to_string()));
            }
            _ => shaped(
                &node.shape,
                f(*x)?.as_standard_layout().iter().copied().collect(),
            )?,
        },
        Op::Transpose(x, perm) => match vals[*x].as_ref() {
            Some(Value::I(a)) => {
                return Ok(Value::I(
                    a.clone()
                        .permuted_axes(IxDyn(perm))
                        .as_standard_layout()
                        .to_owned(),
                ));
            }
            _ => f(*x)?
                .clone()
                .permuted_axes(IxDyn(perm))
                .as_standard_layout()
                .to_owned(),
        },
        Op::Slice { x, axis, start } => {
            let len = node.shape[*axis];
            match vals[*x].as_ref() {
                Some(Value::I(a)) => {
                    return Ok(Value::I(
                        a.slice_axis(Axis(*axis), Slice::from(*start..start + len))
                            .to_owned(),
                    ));
                }
                _ => f(*x)?
                    .slice_axis(Axis(*axis), Slice::from(*start..start + len))
                    .to_owned(),
            }
        }
        Op::Pad { x, axis, start } => {
            let a = f(*x)?;
            let mut out = ArrayD::zeros(IxDyn(&node.shape));
            let len = a.shape()[*axis];
            out.slice_axis_mut(Axis(*axis), Slice::from(*start..start + len))
                .assign(a);
            out
        }
        Op::Concat(xs, axis) => {
            let parts: Vec<ndarray::ArrayViewD<'_, f32>> = xs
                .iter()
                .map(|x| f(*x).map(|a| a.view()))
                .collect::<Result<_, _>>()?;
            ndarray::concatenate(Axis(*axis), &parts)
                .map_err(|e| RuntimeError::new(e.to_string()))?
        }
        Op::Gather { table, indices } => gather(f(*table)?, i32_of(vals, *indices)?, &node.shape)?,
        Op::ScatterAdd { indices, updates } => {
            scatter_add(i32_of(vals, *indices)?, f(*updates)?, &node.shape)?
        }
        Op::Im2Col {
            x,
            kernel,
            stride,
            padding,
            pad_value,
        } => im2col(f(*x)?, *kernel, *stride, *padding, *pad_value, &node.shape)?,
        Op::Col2Im {
            cols,
            kernel,
            stride,
            padding,
        } => col2im(f(*cols)?, *kernel, *stride, *padding, &node.shape)?,
        Op::Random { key, counter } => {
            let c = i32_of(vals, *counter)?.iter().next().copied().unwrap_or(0) as u32 as u64;
            let k = rng::at(*key, c);
            let n = node.numel();
            shaped(
                &node.shape,
                (0..n as u64)
                    .map(|i| rng::unit_f32(rng::at(k, i)))
                    .collect(),
            )?
        }
        Op::OneHot { x, classes } => {
            let idx = i32_of(vals, *x)?;
            let mut data = vec![0.0f32; idx.len() * classes];
            for (r, v) in idx.iter().enumerate() {
                if *v >= 0 && (*v as usize) < *classes {
                    data[r * classes + *v as usize] = 1.0;
                }
            }
            shaped(&node.shape, data)?
        }
        Op::Cast(x) => match (vals[*x].as_ref(), node.dtype) {
            (Some(Value::F(a)), DType::I32) => return Ok(Value::I(a.mapv(|v| v as i32))),
            (Some(Value::I(a)), DType::F32) => a.mapv(|v| v as f32),
            (Some(v), _) => return Ok(v.clone()),
            (None, _) => return Err(RuntimeError::new("cast of a missing value")),
        },
        Op::StopGrad(x) => match vals[*x].as_ref() {
            Some(v) => return Ok(v.clone()),
            None => return Err(RuntimeError::new("missing value")),
        },
    }))
}

pub fn unary(op: UnaryOp, v: f32) -> f32 {
    match op {
        UnaryOp::Neg => -v,
        UnaryOp::Exp => v.exp(),
        UnaryOp::Log => v.ln(),
        UnaryOp::Sqrt => v.sqrt(),
        UnaryOp::Abs => v.abs(),
        UnaryOp::Tanh => v.tanh(),
        UnaryOp::Sigmoid => {
            // Stable on both sides: never exp of a large positive number.
            if v >= 0.0 {
                1.0 / (1.0 + (-v).exp())
            } else {
                let e = v.exp();
                e / (1.0 + e)
            }
        }
        UnaryOp::Sign => {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        UnaryOp::Recip => 1.0 / v,
    }
}

pub fn binary(op: BinaryOp, x: f32, y: f32) -> f32 {
    let b = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        // NaN-propagating, unlike f32::max.
        BinaryOp::Max => {
            if x.is_nan() || y.is_nan() {
                f32::NAN
            } else if x >= y {
                x
            } else {
                y
            }
        }
        BinaryOp::Min => {
            if x.is_nan() || y.is_nan() {
                f32::NAN
            } else if x <= y {
                x
            } else {
                y
            }
        }
        BinaryOp::Pow => x.powf(y),
        BinaryOp::Lt => b(x < y),
        BinaryOp::Le => b(x <= y),
        BinaryOp::Gt => b(x > y),
        BinaryOp::Ge => b(x >= y),
        BinaryOp::Eq => b(x == y),
        BinaryOp::Ne => b(x != y),
    }
}

/// Reduce: the reduced axes are moved last, then each output element folds its contiguous
/// run in order (sums in f64).
fn reduce(
    op: ReduceOp,
    x: &ArrayD<f32>,
    axes: &[usize],
    out_shape: &[usize],
) -> Result<ArrayD<f32>, RuntimeError> {
    let r = x.ndim();
    let mut perm: Vec<usize> = (0..r).filter(|a| !axes.contains(a)).collect();
    perm.extend(axes.iter().copied());
    let moved = x.view().permuted_axes(IxDyn(&perm));
    let data: Vec<f32> = moved.as_standard_layout().iter().copied().collect();
    let run: usize = axes.iter().map(|a| x.shape()[*a]).product();
    let outer: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(outer);
    for o in 0..outer {
        let chunk = &data[o * run..(o + 1) * run];
        out.push(match op {
            ReduceOp::Sum => chunk.iter().map(|v| f64::from(*v)).sum::<f64>() as f32,
            ReduceOp::Max => chunk
                .iter()
                .fold(f32::NEG_INFINITY, |m, v| binary(BinaryOp::Max, m, *v)),
        });
    }
    shaped(out_shape, out)
}

fn matmul(
    a: &ArrayD<f32>,
    b: &ArrayD<f32>,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, RuntimeError> {
    let (sa, sb) = (a.shape(), b.shape());
    let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
    let batch: usize = sa[..sa.len() - 2].iter().product();
    let a3 = a
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((batch, m, k))
        .map_err(|e| RuntimeError::new(e.to_string()))?;
    let b3 = b
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((batch, k, n))
        .map_err(|e| RuntimeError::new(e.to_string()))?;
    let mut out = Vec::with_capacity(batch * m * n);
    for i in 0..batch {
        let c = a3.index_axis(Axis(0), i).dot(&b3.index_axis(Axis(0), i));
        out.extend(c.iter().copied());
    }
    shaped(out_shape, out)
}

fn gather(
    table: &ArrayD<f32>,
    idx: &ArrayD<i32>,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, RuntimeError> {
    let rows = table.shape()[0];
    let row: usize = table.shape()[1..].iter().product();
    let t: Vec<f32> = table.as_standard_layout().iter().copied().collect();
    let mut out = Vec::with_capacity(idx.len() * row);
    for v in idx.iter() {
        if *v < 0 || *v as usize >= rows {
            return Err(RuntimeError::new(format!(
                "index {v} is outside a table of {rows} rows"
            )));
        }
        let s = *v as usize * row;
        out.extend_from_slice(&t[s..s + row]);
    }
    shaped(out_shape, out)
}

fn scatter_add(
    idx: &ArrayD<i32>,
    updates: &ArrayD<f32>,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, RuntimeError> {
    let rows = out_shape[0];
    let row: usize = out_shape[1..].iter().product();
    let u: Vec<f32> = updates.as_standard_layout().iter().copied().collect();
    let mut out = vec![0.0f32; rows * row];
    for (i, v) in idx.iter().enumerate() {
        if *v < 0 || *v as usize >= rows {
            return Err(RuntimeError::new(format!(
                "index {v} is outside a table of {rows} rows"
            )));
        }
        let d = *v as usize * row;
        for j in 0..row {
            out[d + j] += u[i * row + j];
        }
    }
    shaped(out_shape, out)
}

fn im2col(
    x: &ArrayD<f32>,
    kernel: [usize; 2],
    stride: usize,
    padding: usize,
    pad: f32,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, RuntimeError> {
    let s = x.shape();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let xs: Vec<f32> = x.as_standard_layout().iter().copied().collect();
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    for i in 0..kernel[0] {
                        for j in 0..kernel[1] {
                            let yy = (oy * stride + i) as isize - padding as isize;
                            let xx = (ox * stride + j) as isize - padding as isize;
                            let v = if yy < 0 || xx < 0 || yy as usize >= h || xx as usize >= w {
                                pad
                            } else {
                                xs[((b * c + ch) * h + yy as usize) * w + xx as usize]
                            };
                            out.push(v);
                        }
                    }
                }
            }
        }
    }
    shaped(out_shape, out)
}

fn col2im(
    cols: &ArrayD<f32>,
    kernel: [usize; 2],
    stride: usize,
    padding: usize,
    out_shape: &[usize],
) -> Result<ArrayD<f32>, RuntimeError> {
    let (n, c, h, w) = (out_shape[0], out_shape[1], out_shape[2], out_shape[3]);
    let cs = cols.shape();
    let (oh, ow) = (cs[1], cs[2]);
    let data: Vec<f32> = cols.as_standard_layout().iter().copied().collect();
    let mut out = vec![0.0f32; n * c * h * w];
    let mut k = 0;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    for i in 0..kernel[0] {
                        for j in 0..kernel[1] {
                            let yy = (oy * stride + i) as isize - padding as isize;
                            let xx = (ox * stride + j) as isize - padding as isize;
                            if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                                out[((b * c + ch) * h + yy as usize) * w + xx as usize] += data[k];
                            }
                            k += 1;
                        }
                    }
                }
            }
        }
    }
    shaped(out_shape, out)
}
