//! The model: an IR prediction function translated op by op into ONNX operators, so stdlib
//! layers and layers users write export alike. The function is built for two batch sizes;
//! an axis whose size differs between them is `k * N` (rows), every other axis is fixed, and
//! a function whose structure depends on the batch size cannot be exported.
//!
//! Mapping: elementwise ops to their ONNX namesakes (comparisons cast back to numbers),
//! `Broadcast` to `Expand`, `Reduce` to `ReduceSum`/`ReduceMax`, `Im2Col` to a padded gather
//! of window positions (exact for any pad value, -inf included), `OneHot` to a comparison
//! with a range, `StopGrad` to nothing. `Random`, `ScatterAdd` and `Col2Im` have no
//! prediction-time meaning and are refused at their source line.

use super::builder::{self, Builder, Dim};
use super::proto::dtype;
use crate::diagnostics::Diagnostic;
use crate::ir::{BinaryOp, DType, Function, Op, ReduceOp, StateDecl, UnaryOp};
use std::collections::HashMap;

pub const UNSUPPORTED: &str = "mlx::export::unsupported";

/// The two batch sizes the prediction function is built for: primes unlikely to equal a
/// width, so no two different axes coincide.
pub const PROBES: [usize; 2] = [97, 101];

pub fn onnx_type(d: DType) -> i32 {
    match d {
        DType::F32 => dtype::FLOAT,
        DType::I32 => dtype::INT32,
    }
}

/// Each node's axes, from the function built at both probe sizes.
pub fn dims(a: &Function, b: &Function) -> Result<Vec<Vec<Dim>>, Diagnostic> {
    let differs = || {
        Diagnostic::error(
            UNSUPPORTED,
            "the model's prediction function changes its structure with the number of rows, so it cannot be exported with a variable batch size",
        )
    };
    if a.nodes.len() != b.nodes.len() || a.inputs.len() != b.inputs.len() {
        return Err(differs());
    }
    let (pa, pb) = (PROBES[0], PROBES[1]);
    let mut out = Vec::with_capacity(a.nodes.len());
    for (na, nb) in a.nodes.iter().zip(&b.nodes) {
        if na.op != nb.op || na.dtype != nb.dtype || na.shape.len() != nb.shape.len() {
            return Err(at(differs(), na.origin));
        }
        let mut d = Vec::with_capacity(na.shape.len());
        for (&x, &y) in na.shape.iter().zip(&nb.shape) {
            if x == y {
                d.push(Dim::Fixed(x));
            } else if y > x && (y - x) % (pb - pa) == 0 && x == (y - x) / (pb - pa) * pa {
                d.push(Dim::Batch((y - x) / (pb - pa)));
            } else {
                return Err(at(differs(), na.origin));
            }
        }
        out.push(d);
    }
    Ok(out)
}

fn at(d: Diagnostic, origin: Option<crate::source::Span>) -> Diagnostic {
    match origin {
        Some(s) => d.with_label(s, "from here"),
        None => d,
    }
}

/// Translate `f` (built at the first probe size; `dims` from `dims`) reading `x` as its
/// input; `weights` holds every state it reads by name. Gives the name of each output.
pub fn translate(
    b: &mut Builder,
    f: &Function,
    dims: &[Vec<Dim>],
    states: &[StateDecl],
    weights: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    x: &str,
) -> Result<Vec<(String, String)>, Diagnostic> {
    let mut names: Vec<String> = Vec::with_capacity(f.nodes.len());
    for (i, node) in f.nodes.iter().enumerate() {
        let d = &dims[i];
        let ty = onnx_type(node.dtype);
        let arg = |v: usize| names[v].clone();
        let refuse = |what: &str| {
            at(
                Diagnostic::error(
                    UNSUPPORTED,
                    format!("the model cannot be exported to ONNX: {what}"),
                ),
                node.origin,
            )
        };
        let name = match &node.op {
            Op::Input(0) => x.to_string(),
            Op::Input(k) => return Err(refuse(&format!("it reads a second input ({k})"))),
            Op::State(s) => {
                let decl = states
                    .get(*s)
                    .ok_or_else(|| Diagnostic::internal("a state out of range"))?;
                let (shape, data) = weights.get(&decl.name).ok_or_else(|| {
                    Diagnostic::error(
                        "mlx::rundir::corrupt",
                        format!("the saved model has no tensor `{}`", decl.name),
                    )
                })?;
                if shape != &node.shape {
                    return Err(Diagnostic::error(
                        "mlx::rundir::corrupt",
                        format!(
                            "the saved tensor `{}` has shape {shape:?}, the model needs {:?}",
                            decl.name, node.shape
                        ),
                    ));
                }
                b.weight(&decl.name, shape, data)
            }
            Op::Constant(v) => {
                if d.is_empty() {
                    if ty == dtype::INT32 {
                        b.i32s(&[], &[*v as i32])
                    } else {
                        b.f32s(&[], &[*v])
                    }
                } else {
                    let shape = b.shape(d);
                    b.op(
                        "ConstantOfShape",
                        &[&shape],
                        vec![builder::tensor("value", builder::one(*v, ty))],
                    )
                }
            }
            Op::Unary(u, a) => {
                let op = match u {
                    UnaryOp::Neg => "Neg",
                    UnaryOp::Exp => "Exp",
                    UnaryOp::Log => "Log",
                    UnaryOp::Sqrt => "Sqrt",
                    UnaryOp::Abs => "Abs",
                    UnaryOp::Tanh => "Tanh",
                    UnaryOp::Sigmoid => "Sigmoid",
                    UnaryOp::Sign => "Sign",
                    UnaryOp::Recip => "Reciprocal",
                };
                b.op(op, &[&arg(*a)], vec![])
            }
            Op::Binary(op, l, r) => {
                let (l, r) = (arg(*l), arg(*r));
                let arith = match op {
                    BinaryOp::Add => Some("Add"),
                    BinaryOp::Sub => Some("Sub"),
                    BinaryOp::Mul => Some("Mul"),
                    BinaryOp::Div => Some("Div"),
                    BinaryOp::Max => Some("Max"),
                    BinaryOp::Min => Some("Min"),
                    BinaryOp::Pow => Some("Pow"),
                    _ => None,
                };
                match arith {
                    Some(o) => b.op(o, &[&l, &r], vec![]),
                    None => {
                        let cmp = match op {
                            BinaryOp::Lt => b.op("Less", &[&l, &r], vec![]),
                            BinaryOp::Le => b.op("LessOrEqual", &[&l, &r], vec![]),
                            BinaryOp::Gt => b.op("Greater", &[&l, &r], vec![]),
                            BinaryOp::Ge => b.op("GreaterOrEqual", &[&l, &r], vec![]),
                            BinaryOp::Eq => b.op("Equal", &[&l, &r], vec![]),
                            _ => {
                                let e = b.op("Equal", &[&l, &r], vec![]);
                                b.op("Not", &[&e], vec![])
                            }
                        };
                        b.op("Cast", &[&cmp], vec![builder::int("to", ty.into())])
                    }
                }
            }
            Op::Select(c, t, e) => {
                let c_ty = onnx_type(f.nodes[*c].dtype);
                let zero = if c_ty == dtype::INT32 {
                    b.i32s(&[], &[0])
                } else {
                    b.f32s(&[], &[0.0])
                };
                let is_zero = b.op("Equal", &[&arg(*c), &zero], vec![]);
                b.op("Where", &[&is_zero, &arg(*e), &arg(*t)], vec![])
            }
            Op::Broadcast(a) => {
                let shape = b.shape(d);
                b.op("Expand", &[&arg(*a), &shape], vec![])
            }
            Op::Reduce(_, a, axes) if axes.is_empty() => arg(*a),
            Op::Reduce(r, a, axes) => {
                let axes: Vec<i64> = axes.iter().map(|x| *x as i64).collect();
                match r {
                    ReduceOp::Sum => {
                        let ax = b.i64s(&[axes.len()], &axes);
                        b.op(
                            "ReduceSum",
                            &[&arg(*a), &ax],
                            vec![builder::int("keepdims", 0)],
                        )
                    }
                    ReduceOp::Max => b.op(
                        "ReduceMax",
                        &[&arg(*a)],
                        vec![builder::ints("axes", &axes), builder::int("keepdims", 0)],
                    ),
                }
            }
            Op::MatMul(l, r) => b.op("MatMul", &[&arg(*l), &arg(*r)], vec![]),
            Op::Reshape(a) => {
                let shape = b.shape(d);
                b.op("Reshape", &[&arg(*a), &shape], vec![])
            }
            Op::Transpose(a, perm) => {
                let perm: Vec<i64> = perm.iter().map(|p| *p as i64).collect();
                b.op("Transpose", &[&arg(*a)], vec![builder::ints("perm", &perm)])
            }
            Op::Slice { x: a, axis, start } => {
                let len = d[*axis];
                let ends = match len {
                    Dim::Fixed(n) => b.i64s(&[1], &[(start + n) as i64]),
                    Dim::Batch(_) if *start == 0 => b.shape(&[len]),
                    Dim::Batch(_) => {
                        return Err(refuse("a slice along the rows that does not start at 0"));
                    }
                };
                let starts = b.i64s(&[1], &[*start as i64]);
                let axes = b.i64s(&[1], &[*axis as i64]);
                b.op("Slice", &[&arg(*a), &starts, &ends, &axes], vec![])
            }
            Op::Pad { x: a, axis, start } => {
                let (Dim::Fixed(inner), Dim::Fixed(outer)) = (dims[*a][*axis], d[*axis]) else {
                    return Err(refuse("padding along the rows"));
                };
                let rank = d.len();
                let mut pads = vec![0i64; 2 * rank];
                pads[*axis] = *start as i64;
                pads[rank + axis] = (outer - inner - start) as i64;
                let pads = b.i64s(&[pads.len()], &pads);
                b.op("Pad", &[&arg(*a), &pads], vec![])
            }
            Op::Concat(xs, axis) => {
                let xs: Vec<String> = xs.iter().map(|v| arg(*v)).collect();
                let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
                b.op("Concat", &refs, vec![builder::int("axis", *axis as i64)])
            }
            Op::Gather { table, indices } => b.op(
                "Gather",
                &[&arg(*table), &arg(*indices)],
                vec![builder::int("axis", 0)],
            ),
            Op::Im2Col {
                x: a,
                kernel,
                stride,
                padding,
                pad_value,
            } => im2col(
                b,
                &arg(*a),
                &dims[*a],
                *kernel,
                *stride,
                *padding,
                *pad_value,
            )
            .ok_or_else(|| refuse("windows over an image whose size depends on the rows"))?,
            Op::OneHot { x: a, classes } => {
                let axes = b.i64s(&[1], &[-1]);
                let col = b.op("Unsqueeze", &[&arg(*a), &axes], vec![]);
                let range: Vec<i32> = (0..*classes as i32).collect();
                let range = b.i32s(&[*classes], &range);
                let hot = b.op("Equal", &[&col, &range], vec![]);
                b.op(
                    "Cast",
                    &[&hot],
                    vec![builder::int("to", dtype::FLOAT.into())],
                )
            }
            Op::Cast(a) => b.op("Cast", &[&arg(*a)], vec![builder::int("to", ty.into())]),
            Op::StopGrad(a) => arg(*a),
            Op::Random { .. } => {
                return Err(refuse(
                    "it draws random numbers when it predicts (`bernoulli` outside `when_training`), which an ONNX graph cannot reproduce",
                )
                .with_help("draw random numbers only while training: `when_training(train: ..., eval: ...)`"));
            }
            Op::ScatterAdd { .. } => return Err(refuse("it scatters values (a scatter-add)")),
            Op::Col2Im { .. } => {
                return Err(refuse("it folds windows back into an image (col2im)"));
            }
        };
        names.push(name);
    }
    Ok(f.outputs
        .iter()
        .map(|(n, v)| (n.clone(), names[*v].clone()))
        .collect())
}

/// `Im2Col` as data movement: pad with `pad_value`, flatten the image, gather every window
/// position, and order the result `[N, OH, OW, C*kh*kw]` with (c, i, j) inner.
fn im2col(
    b: &mut Builder,
    x: &str,
    xd: &[Dim],
    kernel: [usize; 2],
    stride: usize,
    padding: usize,
    pad_value: f32,
) -> Option<String> {
    let [n, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)] = *xd else {
        return None;
    };
    let (kh, kw) = (kernel[0], kernel[1]);
    let (hp, wp) = (h + 2 * padding, w + 2 * padding);
    if hp < kh || wp < kw || stride == 0 {
        return None;
    }
    let (oh, ow) = ((hp - kh) / stride + 1, (wp - kw) / stride + 1);
    let padded = if padding > 0 {
        let p = padding as i64;
        let pads = b.i64s(&[8], &[0, 0, p, p, 0, 0, p, p]);
        let value = b.f32s(&[], &[pad_value]);
        b.op("Pad", &[x, &pads, &value], vec![])
    } else {
        x.to_string()
    };
    let flat_shape = b.shape(&[n, Dim::Fixed(c), Dim::Fixed(hp * wp)]);
    let flat = b.op("Reshape", &[&padded, &flat_shape], vec![]);
    let mut idx = Vec::with_capacity(oh * ow * kh * kw);
    for y in 0..oh {
        for z in 0..ow {
            for i in 0..kh {
                for j in 0..kw {
                    idx.push(((y * stride + i) * wp + z * stride + j) as i64);
                }
            }
        }
    }
    let idx = b.i64s(&[idx.len()], &idx);
    let picked = b.op("Gather", &[&flat, &idx], vec![builder::int("axis", 2)]);
    let six = b.shape(&[
        n,
        Dim::Fixed(c),
        Dim::Fixed(oh),
        Dim::Fixed(ow),
        Dim::Fixed(kh),
        Dim::Fixed(kw),
    ]);
    let windows = b.op("Reshape", &[&picked, &six], vec![]);
    let t = b.op(
        "Transpose",
        &[&windows],
        vec![builder::ints("perm", &[0, 2, 3, 1, 4, 5])],
    );
    let out = b.shape(&[n, Dim::Fixed(oh), Dim::Fixed(ow), Dim::Fixed(c * kh * kw)]);
    Some(b.op("Reshape", &[&t, &out], vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Node, Op};

    fn function(shapes: &[Vec<usize>]) -> Function {
        Function {
            name: "predict".into(),
            nodes: shapes
                .iter()
                .map(|s| Node {
                    op: Op::Constant(0.0),
                    shape: s.clone(),
                    dtype: DType::F32,
                    origin: None,
                })
                .collect(),
            ..Function::default()
        }
    }

    #[test]
    fn axes_that_grow_with_the_batch_are_multiples_of_the_rows() {
        let [a, b] = PROBES;
        let fa = function(&[vec![a, 3], vec![a * 28, 64], vec![5, a]]);
        let fb = function(&[vec![b, 3], vec![b * 28, 64], vec![5, b]]);
        assert_eq!(
            dims(&fa, &fb).unwrap(),
            vec![
                vec![Dim::Batch(1), Dim::Fixed(3)],
                vec![Dim::Batch(28), Dim::Fixed(64)],
                vec![Dim::Fixed(5), Dim::Batch(1)],
            ]
        );
        // An axis of `N + 1` rows, or a different op, is not a batch size we can express.
        let fb = function(&[vec![b + 1, 3], vec![b * 28, 64], vec![5, b]]);
        let fa = function(&[vec![a + 1, 3], vec![a * 28, 64], vec![5, a]]);
        let d = dims(&fa, &fb).unwrap_err();
        assert_eq!(d.code, UNSUPPORTED);
        let mut fc = function(&[vec![b, 3], vec![b * 28, 64], vec![5, b]]);
        fc.nodes[1].op = Op::Constant(1.0);
        let fa = function(&[vec![a, 3], vec![a * 28, 64], vec![5, a]]);
        assert!(dims(&fa, &fc).is_err());
    }
}
