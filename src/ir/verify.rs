//! The IR verifier: every operand defined before use, every op's operand shapes and dtypes as
//! its definition requires, every result shape what the op computes. It runs after every
//! transformation in tests and debug builds; a failure is a bug in mlx.

use super::*;
use crate::diagnostics::Diagnostic;

pub fn program(p: &Program) -> Result<(), Diagnostic> {
    for f in &p.functions {
        function(p, f).map_err(|e| {
            Diagnostic::internal(format!("IR verification failed in `{}`: {e}", f.name))
        })?;
    }
    Ok(())
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

pub fn function(p: &Program, f: &Function) -> Result<(), String> {
    for (i, n) in f.nodes.iter().enumerate() {
        for a in n.op.args() {
            if a >= i {
                return Err(format!("%{i} uses %{a}, which is not defined before it"));
            }
        }
        let sh = |v: ValueId| f.nodes[v].shape.as_slice();
        let dt = |v: ValueId| f.nodes[v].dtype;
        let err = |m: String| Err(format!("%{i} ({:?}): {m}", n.op));
        let f32_only = |vs: &[ValueId]| vs.iter().all(|v| dt(*v) == DType::F32);
        match &n.op {
            Op::Input(k) => match f.inputs.get(*k) {
                Some(d) if d.shape == n.shape && d.dtype == n.dtype => {}
                _ => return err("input declaration does not match".into()),
            },
            Op::State(s) => match p.states.get(*s) {
                Some(d) if d.shape == n.shape && n.dtype == DType::F32 => {}
                _ => return err("state declaration does not match".into()),
            },
            Op::Constant(_) => {}
            Op::Unary(_, x) => {
                if sh(*x) != n.shape.as_slice() || !f32_only(&[*x]) {
                    return err("unary operand shape or dtype differs".into());
                }
            }
            Op::Binary(_, a, b) => {
                if sh(*a) != n.shape.as_slice()
                    || sh(*b) != n.shape.as_slice()
                    || !f32_only(&[*a, *b])
                {
                    return err(format!(
                        "binary operands {:?} and {:?} for {:?}",
                        sh(*a),
                        sh(*b),
                        n.shape
                    ));
                }
            }
            Op::Select(c, a, b) => {
                if [c, a, b].iter().any(|v| sh(**v) != n.shape.as_slice()) {
                    return err("select operands differ in shape".into());
                }
            }
            Op::Broadcast(x) => {
                if build::broadcast_shapes(sh(*x), &n.shape).as_deref() != Some(n.shape.as_slice())
                    || sh(*x).len() > n.shape.len()
                {
                    return err(format!("{:?} does not broadcast to {:?}", sh(*x), n.shape));
                }
            }
            Op::Reduce(_, x, axes) => {
                let s = sh(*x);
                if axes.iter().any(|a| *a >= s.len()) || axes.windows(2).any(|w| w[0] >= w[1]) {
                    return err("bad reduction axes".into());
                }
                let want: Vec<usize> = s
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !axes.contains(i))
                    .map(|(_, d)| *d)
                    .collect();
                if want != n.shape {
                    return err("reduction result shape".into());
                }
            }
            Op::MatMul(a, b) => {
                let (x, y) = (sh(*a), sh(*b));
                if x.len() < 2
                    || x.len() != y.len()
                    || x[..x.len() - 2] != y[..y.len() - 2]
                    || x[x.len() - 1] != y[y.len() - 2]
                {
                    return err(format!("matmul of {x:?} and {y:?}"));
                }
                let mut want = x[..x.len() - 1].to_vec();
                want.push(y[y.len() - 1]);
                if want != n.shape {
                    return err("matmul result shape".into());
                }
            }
            Op::Reshape(x) => {
                if numel(sh(*x)) != n.numel() {
                    return err(format!("reshape of {:?} to {:?}", sh(*x), n.shape));
                }
            }
            Op::Transpose(x, perm) => {
                let s = sh(*x);
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..s.len()).collect::<Vec<_>>()
                    || perm.iter().map(|p| s[*p]).collect::<Vec<_>>() != n.shape
                {
                    return err("bad permutation".into());
                }
            }
            Op::Slice { x, axis, start } => {
                let s = sh(*x);
                if *axis >= s.len() || n.shape.len() != s.len() || start + n.shape[*axis] > s[*axis]
                {
                    return err("slice out of range".into());
                }
            }
            Op::Pad { x, axis, start } => {
                let s = sh(*x);
                if *axis >= s.len() || n.shape.len() != s.len() || start + s[*axis] > n.shape[*axis]
                {
                    return err("pad out of range".into());
                }
            }
            Op::Concat(xs, axis) => {
                let total: usize = xs
                    .iter()
                    .map(|x| sh(*x).get(*axis).copied().unwrap_or(0))
                    .sum();
                if xs.is_empty() || n.shape.get(*axis) != Some(&total) {
                    return err("concat sizes".into());
                }
            }
            Op::Gather { table, indices } => {
                if dt(*indices) != DType::I32 || sh(*table).is_empty() {
                    return err("gather needs I32 indices and a table".into());
                }
            }
            Op::ScatterAdd { indices, updates } => {
                if dt(*indices) != DType::I32
                    || numel(sh(*updates)) != numel(sh(*indices)) * numel(&n.shape[1..])
                {
                    return err("scatter sizes".into());
                }
            }
            Op::Im2Col {
                x,
                kernel,
                stride,
                padding,
                ..
            } => {
                let s = sh(*x);
                if s.len() != 4
                    || *stride == 0
                    || s[2] + 2 * padding < kernel[0]
                    || s[3] + 2 * padding < kernel[1]
                {
                    return err("im2col geometry".into());
                }
            }
            Op::Col2Im {
                cols,
                kernel,
                stride,
                padding,
            } => {
                let c = sh(*cols);
                let s = &n.shape;
                if s.len() != 4 || c.len() != 4 || *stride == 0 {
                    return err("col2im geometry".into());
                }
                let oh = (s[2] + 2 * padding - kernel[0]) / stride + 1;
                let ow = (s[3] + 2 * padding - kernel[1]) / stride + 1;
                if c != [s[0], oh, ow, s[1] * kernel[0] * kernel[1]] {
                    return err("col2im shapes".into());
                }
            }
            Op::Random { counter, .. } => {
                if dt(*counter) != DType::I32 || !sh(*counter).is_empty() {
                    return err("random counter must be an I32 scalar".into());
                }
            }
            Op::OneHot { x, classes } => {
                let mut want = sh(*x).to_vec();
                want.push(*classes);
                if dt(*x) != DType::I32 || want != n.shape {
                    return err("one-hot shapes".into());
                }
            }
            Op::Cast(x) | Op::StopGrad(x) => {
                if sh(*x) != n.shape.as_slice() {
                    return err("shape changed".into());
                }
            }
        }
    }
    for (name, v) in &f.outputs {
        if *v >= f.nodes.len() {
            return Err(format!("output `{name}` is undefined"));
        }
    }
    for (s, v) in &f.updates {
        match (p.states.get(*s), f.nodes.get(*v)) {
            (Some(d), Some(n)) if d.shape == n.shape && n.dtype == DType::F32 => {}
            _ => return Err(format!("update of state {s} does not match")),
        }
    }
    Ok(())
}
