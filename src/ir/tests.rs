//! Gradient tests: every primitive's autodiff gradient against central finite differences,
//! computed with the reference interpreter, at several shapes including broadcasting.

use super::build::FnBuilder;
use super::*;
use crate::backend::interp::Interp;
use crate::backend::{Backend, HostTensor};
use crate::rng::Rng;

/// Distinct values in [lo, hi), at least (hi - lo) / n apart, in random order: a finite
/// difference step never crosses a kink (max, abs, comparisons) unless the range says so.
pub(crate) fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut r = Rng::new(seed, "test-values");
    // Inputs get different offsets within the grid step, so two inputs never tie either.
    let offset = 0.1 + 0.8 * (seed % 7) as f32 / 7.0;
    let mut v: Vec<f32> = (0..n)
        .map(|i| lo + (hi - lo) * (i as f32 + offset) / n as f32)
        .collect();
    r.shuffle(&mut v);
    v
}

/// Builds the op under test from its inputs.
type BuildFn = Box<dyn Fn(&mut FnBuilder<'_>, &[ValueId]) -> ValueId>;

pub(crate) struct Case {
    pub(crate) name: String,
    /// Shapes (and value ranges) of the differentiable inputs.
    pub(crate) inputs: Vec<(Shape, f32, f32)>,
    /// Build the op from the inputs; returns the output.
    f: BuildFn,
}

fn case(
    name: &str,
    inputs: Vec<(Shape, f32, f32)>,
    f: impl Fn(&mut FnBuilder<'_>, &[ValueId]) -> ValueId + 'static,
) -> Case {
    Case {
        name: name.to_string(),
        inputs,
        f: Box::new(f),
    }
}

/// loss = sum(out * w) for a fixed random w, so every output element matters.
pub(crate) fn program(c: &Case) -> Program {
    let mut states = Vec::new();
    let mut b = FnBuilder::new("f", &mut states);
    let xs: Vec<ValueId> = c
        .inputs
        .iter()
        .enumerate()
        .map(|(i, (s, _, _))| b.input(&format!("x{i}"), s.clone(), DType::F32))
        .collect();
    let out = (c.f)(&mut b, &xs);
    let os = b.shape(out).to_vec();
    let w = b.input("w", os, DType::F32);
    let prod = b.mul(out, w);
    let loss = b.sum_all(prod);
    b.output("loss", loss);
    let grads = autodiff::gradients(&mut b, loss, &xs);
    for (i, g) in grads.iter().enumerate() {
        b.output(&format!("g{i}"), *g);
    }
    let f = b.finish();
    Program {
        states,
        functions: vec![f],
    }
}

/// Inputs for a case's program: each differentiable input with values in its range, then the
/// fixed random weights `w` of the loss.
pub(crate) fn case_inputs(c: &Case, p: &Program) -> Vec<HostTensor> {
    let mut inputs: Vec<HostTensor> = c
        .inputs
        .iter()
        .enumerate()
        .map(|(i, (s, lo, hi))| {
            HostTensor::f32(
                s.clone(),
                values(s.iter().product(), i as u64 + 1, *lo, *hi),
            )
        })
        .collect();
    let w = p.functions[0]
        .inputs
        .last()
        .map(|d| d.shape.clone())
        .unwrap_or_default();
    let n = w.iter().product();
    inputs.push(HostTensor::f32(w, values(n, 99, -1.0, 1.0)));
    inputs
}

fn check_case(c: &Case) {
    let p = program(c);
    verify::program(&p).unwrap_or_else(|e| panic!("{}: {e}\n{}", c.name, print::program(&p)));
    let mut exe = Interp.compile(&p).expect("compile");
    let inputs = case_inputs(c, &p);
    let outs = exe.run(0, &inputs).expect("run");
    let eps = 2e-3f32;
    for (i, (shape, _, _)) in c.inputs.iter().enumerate() {
        let analytic = outs[1 + i].as_f32().to_vec();
        let n: usize = shape.iter().product();
        for j in 0..n {
            let mut plus = inputs.clone();
            let mut minus = inputs.clone();
            if let crate::backend::TensorData::F32(v) = &mut plus[i].data {
                v[j] += eps;
            }
            if let crate::backend::TensorData::F32(v) = &mut minus[i].data {
                v[j] -= eps;
            }
            let lp = exe.run(0, &plus).expect("run")[0].item() as f64;
            let lm = exe.run(0, &minus).expect("run")[0].item() as f64;
            let numeric = (lp - lm) / (2.0 * eps as f64);
            let a = analytic[j] as f64;
            let tol = 2e-2 * (1.0 + numeric.abs().max(a.abs()));
            assert!(
                (numeric - a).abs() <= tol,
                "{}: d/dx{i}[{j}] autodiff {a} vs finite difference {numeric}",
                c.name
            );
        }
    }
}

pub(crate) fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (name, op, lo, hi) in [
        ("neg", UnaryOp::Neg, -1.0, 1.0),
        ("exp", UnaryOp::Exp, -1.0, 1.0),
        ("log", UnaryOp::Log, 0.5, 2.0),
        ("sqrt", UnaryOp::Sqrt, 0.5, 2.0),
        ("abs", UnaryOp::Abs, 0.2, 1.0),
        ("tanh", UnaryOp::Tanh, -2.0, 2.0),
        ("sigmoid", UnaryOp::Sigmoid, -3.0, 3.0),
        ("recip", UnaryOp::Recip, 0.5, 2.0),
    ] {
        for shape in [vec![1], vec![3], vec![2, 5]] {
            v.push(case(
                &format!("{name}{shape:?}"),
                vec![(shape, lo, hi)],
                move |b, x| b.unary(op, x[0]),
            ));
        }
    }
    for (name, op, lo, hi) in [
        ("add", BinaryOp::Add, -1.0, 1.0),
        ("sub", BinaryOp::Sub, -1.0, 1.0),
        ("mul", BinaryOp::Mul, -1.0, 1.0),
        ("div", BinaryOp::Div, 0.5, 2.0),
        ("max", BinaryOp::Max, -1.0, 1.0),
        ("min", BinaryOp::Min, -1.0, 1.0),
        ("pow", BinaryOp::Pow, 0.5, 2.0),
    ] {
        // Equal shapes, and NumPy broadcasting both ways.
        for (sa, sb) in [
            (vec![3], vec![3]),
            (vec![2, 3], vec![3]),
            (vec![1, 4], vec![3, 1]),
            (vec![2, 1, 3], vec![2, 3]),
        ] {
            v.push(case(
                &format!("{name}{sa:?}{sb:?}"),
                vec![(sa, lo, hi), (sb, lo, hi)],
                move |b, x| b.binary(op, x[0], x[1]),
            ));
        }
    }
    v.push(case(
        "select",
        vec![(vec![2, 3], -1.0, 1.0), (vec![2, 3], -1.0, 1.0)],
        |b, x| {
            let z = b.scalar(0.0);
            let c = b.binary(BinaryOp::Gt, x[0], z);
            b.select(c, x[0], x[1])
        },
    ));
    for axes in [vec![0], vec![1], vec![0, 2], vec![0, 1, 2]] {
        let a2 = axes.clone();
        v.push(case(
            &format!("sum{axes:?}"),
            vec![(vec![2, 3, 4], -1.0, 1.0)],
            move |b, x| b.sum(x[0], &a2),
        ));
        let a3 = axes.clone();
        v.push(case(
            &format!("max{axes:?}"),
            vec![(vec![2, 3, 4], -1.0, 1.0)],
            move |b, x| b.reduce(ReduceOp::Max, x[0], &a3),
        ));
    }
    for (sa, sb) in [
        (vec![1, 1], vec![1, 1]),
        (vec![3, 4], vec![4, 5]),
        (vec![2, 3, 4], vec![2, 4, 1]),
    ] {
        v.push(case(
            &format!("matmul{sa:?}{sb:?}"),
            vec![(sa, -1.0, 1.0), (sb, -1.0, 1.0)],
            |b, x| b.matmul(x[0], x[1]),
        ));
    }
    v.push(case("broadcast", vec![(vec![3, 1], -1.0, 1.0)], |b, x| {
        b.broadcast(x[0], &[2, 3, 4])
    }));
    v.push(case("reshape", vec![(vec![2, 6], -1.0, 1.0)], |b, x| {
        b.reshape(x[0], &[3, 4])
    }));
    v.push(case(
        "transpose",
        vec![(vec![2, 3, 4], -1.0, 1.0)],
        |b, x| b.transpose(x[0], &[2, 0, 1]),
    ));
    v.push(case("slice", vec![(vec![3, 5], -1.0, 1.0)], |b, x| {
        b.slice(x[0], 1, 1, 3)
    }));
    // An elementwise result read only through disjoint slices (as an LSTM step's gates are):
    // `finish` sinks the slices into the operands.
    v.push(case(
        "slices of a sum",
        vec![(vec![3, 1, 6], -2.0, 2.0), (vec![3, 6], -2.0, 2.0)],
        |b, x| {
            let r = b.reshape(x[0], &[3, 6]);
            let z = b.add(r, x[1]);
            let i = b.slice(z, 1, 0, 2);
            let i = b.unary(UnaryOp::Sigmoid, i);
            let g = b.slice(z, 1, 3, 3);
            let g = b.unary(UnaryOp::Tanh, g);
            let g = b.slice(g, 1, 1, 2);
            b.mul(i, g)
        },
    ));
    v.push(case("pad", vec![(vec![3, 2], -1.0, 1.0)], |b, x| {
        b.pad(x[0], 1, 2, 5)
    }));
    v.push(case(
        "concat",
        vec![(vec![2, 3], -1.0, 1.0), (vec![2, 1], -1.0, 1.0)],
        |b, x| b.concat(vec![x[0], x[1]], 1),
    ));
    v.push(case("gather", vec![(vec![4, 3], -1.0, 1.0)], |b, x| {
        let idx = b.constant(2.0, vec![5]);
        let i = b.cast(idx, DType::I32);
        b.push(
            Op::Gather {
                table: x[0],
                indices: i,
            },
            vec![5, 3],
            DType::F32,
        )
    }));
    for (shape, k, s, p) in [
        (vec![1, 1, 4, 4], 3, 1, 0),
        (vec![2, 2, 5, 5], 3, 2, 1),
        (vec![1, 3, 3, 3], 1, 1, 0),
        (vec![2, 3, 7, 6], 5, 1, 2),
        (vec![1, 2, 6, 5], 2, 2, 0),
    ] {
        v.push(case(
            &format!("im2col{shape:?}k{k}s{s}p{p}"),
            vec![(shape, -1.0, 1.0)],
            move |b, x| b.im2col(x[0], [k, k], s, p, 0.0),
        ));
    }
    // Windows of a channels-last view (as a matmul before a convolution leaves them).
    v.push(case(
        "im2col of a transposed input",
        vec![(vec![2, 5, 6, 3], -1.0, 1.0)],
        |b, x| {
            let t = b.transpose(x[0], &[0, 3, 1, 2]);
            b.im2col(t, [3, 3], 1, 1, 0.0)
        },
    ));
    v.push(case(
        "col2im",
        vec![(vec![1, 2, 2, 8], -1.0, 1.0)],
        |b, x| {
            b.push(
                Op::Col2Im {
                    cols: x[0],
                    kernel: [2, 2],
                    stride: 1,
                    padding: 0,
                },
                vec![1, 2, 3, 3],
                DType::F32,
            )
        },
    ));
    v.push(case("logsumexp", vec![(vec![3, 4], -2.0, 2.0)], |b, x| {
        b.logsumexp(x[0], 1)
    }));
    v
}

#[test]
fn every_primitive_gradient_matches_finite_differences() {
    let cs = cases();
    assert!(cs.len() > 60);
    for c in &cs {
        check_case(c);
    }
}

#[test]
fn stop_grad_blocks_the_gradient() {
    let c = case("stop_grad", vec![(vec![3], -1.0, 1.0)], |b, x| {
        let s = b.stop_grad(x[0]);
        let y = b.mul(s, x[0]);
        b.add(y, s)
    });
    let p = program(&c);
    let mut exe = Interp.compile(&p).expect("compile");
    let x = values(3, 1, -1.0, 1.0);
    let outs = exe
        .run(
            0,
            &[
                HostTensor::f32(vec![3], x.clone()),
                HostTensor::f32(vec![3], vec![1.0; 3]),
            ],
        )
        .expect("run");
    // d/dx (stop(x) * x + stop(x)) = stop(x) = x.
    let g = outs[1].as_f32();
    for i in 0..3 {
        assert!((g[i] - x[i]).abs() < 1e-6);
    }
}

#[test]
fn random_is_counter_based_and_uniform() {
    let mut states = Vec::new();
    let mut b = FnBuilder::new("r", &mut states);
    let c = b.input("c", vec![], DType::I32);
    let r = b.push(
        Op::Random {
            key: 42,
            counter: c,
        },
        vec![1000],
        DType::F32,
    );
    b.output("r", r);
    let f = b.finish();
    let p = Program {
        states,
        functions: vec![f],
    };
    let mut exe = Interp.compile(&p).expect("compile");
    let a = exe.run(0, &[HostTensor::scalar_i32(3)]).expect("run")[0]
        .as_f32()
        .to_vec();
    let a2 = exe.run(0, &[HostTensor::scalar_i32(3)]).expect("run")[0]
        .as_f32()
        .to_vec();
    let b2 = exe.run(0, &[HostTensor::scalar_i32(4)]).expect("run")[0]
        .as_f32()
        .to_vec();
    assert_eq!(a, a2);
    assert_ne!(a, b2);
    let mean = a.iter().sum::<f32>() / 1000.0;
    assert!(a.iter().all(|v| (0.0..1.0).contains(v)) && (mean - 0.5).abs() < 0.05);
    // Element i is a pure function of (key, counter, i).
    assert_eq!(
        a[7],
        crate::rng::unit_f32(crate::rng::at(crate::rng::at(42, 3), 7))
    );
}

/// A sum over many leading rows is built as two sums (row blocks, then blocks in order); it
/// equals the plain sum to rounding, on the interpreter and the JIT alike, and its gradient
/// is still a broadcast of ones.
#[test]
fn long_leading_sums_are_summed_in_row_blocks() {
    let (rows, cols) = (28 * 128, 64);
    let mut states = Vec::new();
    let mut b = FnBuilder::new("f", &mut states);
    let x = b.input("x", vec![128, 28, cols], DType::F32);
    let s = b.sum(x, &[0, 1]);
    b.output("s", s);
    let f = b.finish();
    let reduces = f
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Reduce(..)))
        .count();
    assert_eq!(reduces, 2, "two-stage sum");
    let p = Program {
        functions: vec![f],
        states,
    };
    let xs = values(rows * cols, 7, -1.0, 1.0);
    let input = [HostTensor::f32(vec![128, 28, cols], xs.clone())];
    let want: Vec<f64> = (0..cols)
        .map(|j| (0..rows).map(|i| f64::from(xs[i * cols + j])).sum())
        .collect();
    let backends: [(&str, Box<dyn crate::backend::Backend>); 2] = [
        ("interp", Box::new(Interp)),
        ("cpu", Box::new(crate::backend::cpu::Cpu::new())),
    ];
    for (name, be) in backends {
        let got = be.compile(&p).unwrap().run(0, &input).unwrap();
        for (j, (g, w)) in got[0].as_f32().iter().zip(&want).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() < 1e-4 * (1.0 + w.abs()),
                "{name}: column {j}: {g} vs {w}"
            );
        }
    }
}

/// The loss functions of objectives (`mse(a, b)`, ...) on hand-computed values, and their
/// gradients against finite differences.
#[test]
fn objective_loss_functions_match_hand_computed_values() {
    use crate::check::hir::LossFn as L;
    let run = |f: L, pred: (Shape, Vec<f32>), target: (Shape, Vec<f32>)| -> f32 {
        let mut states = Vec::new();
        let mut b = FnBuilder::new("f", &mut states);
        let p = b.input("p", pred.0.clone(), DType::F32);
        let t = b.input("t", target.0.clone(), DType::F32);
        let l = super::lower::loss_fn(&mut b, f, p, t);
        b.output("loss", l);
        let f = b.finish();
        let prog = Program {
            states,
            functions: vec![f],
        };
        verify::program(&prog).unwrap();
        let mut exe = Interp.compile(&prog).unwrap();
        exe.run(
            0,
            &[
                HostTensor::f32(pred.0, pred.1),
                HostTensor::f32(target.0, target.1),
            ],
        )
        .unwrap()[0]
            .item()
    };
    let close = |a: f32, b: f64, what: &str| {
        assert!((f64::from(a) - b).abs() < 1e-5, "{what}: {a} vs {b}");
    };
    // mse / mae / huber: the mean over every element of [2, 2].
    let p = (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let t = (vec![2, 2], vec![1.5, 2.0, 1.0, 4.0]);
    close(
        run(L::Mse, p.clone(), t.clone()),
        (0.25 + 0.0 + 4.0 + 0.0) / 4.0,
        "mse",
    );
    close(
        run(L::Mae, p.clone(), t.clone()),
        (0.5 + 0.0 + 2.0 + 0.0) / 4.0,
        "mae",
    );
    // huber(delta 1): 0.5 d^2 inside, delta (|d| - delta/2) outside.
    close(
        run(L::Huber { delta: 1.0 }, p.clone(), t.clone()),
        (0.125 + 0.0 + 1.5 + 0.0) / 4.0,
        "huber",
    );
    // A number target broadcasts.
    close(
        run(L::Mse, p.clone(), (vec![], vec![2.0])),
        (1.0 + 0.0 + 1.0 + 4.0) / 4.0,
        "mse vs 2",
    );
    // bce_with_logits(z, y) = log(1 + e^z) - z y.
    let z = (vec![3, 1], vec![-2.0f32, 0.0, 3.0]);
    let y = (vec![3, 1], vec![0.0f32, 1.0, 1.0]);
    let want: f64 = [(-2.0f64, 0.0f64), (0.0, 1.0), (3.0, 1.0)]
        .iter()
        .map(|(z, y)| (1.0 + z.exp()).ln() - z * y)
        .sum::<f64>()
        / 3.0;
    close(
        run(L::BceWithLogits, z.clone(), y.clone()),
        want,
        "bce_with_logits",
    );
    // binary_cross_entropy on probabilities, the logs clamped at -100 (p = 0 with y = 1).
    let pr = (vec![3, 1], vec![0.2f32, 0.9, 0.0]);
    let want = (-(0.8f64.ln()) - 0.9f64.ln() + 100.0) / 3.0;
    close(
        run(L::BinaryCrossEntropy, pr, y.clone()),
        want,
        "binary_cross_entropy",
    );
    // cross_entropy with labels (as F32 values), plain and smoothed, and against a
    // distribution: smoothing eps is (1 - eps) CE + eps CE(uniform).
    let logits = (vec![2, 3], vec![1.0f32, 2.0, 0.5, 0.0, -1.0, 3.0]);
    let labels = (vec![2], vec![1.0f32, 2.0]);
    let lsm = |row: &[f64]| -> Vec<f64> {
        let m = row.iter().fold(f64::MIN, |a, b| a.max(*b));
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        row.iter().map(|v| v - m - s.ln()).collect()
    };
    let r0 = lsm(&[1.0, 2.0, 0.5]);
    let r1 = lsm(&[0.0, -1.0, 3.0]);
    let ce = (-r0[1] - r1[2]) / 2.0;
    let uniform = (-r0.iter().sum::<f64>() - r1.iter().sum::<f64>()) / 6.0;
    close(
        run(
            L::CrossEntropy {
                label_smoothing: 0.0,
            },
            logits.clone(),
            labels.clone(),
        ),
        ce,
        "cross_entropy",
    );
    close(
        run(
            L::CrossEntropy {
                label_smoothing: 0.1,
            },
            logits.clone(),
            labels,
        ),
        0.9 * ce + 0.1 * uniform,
        "smoothed cross_entropy",
    );
    let dist = (vec![2, 3], vec![0.0f32, 1.0, 0.0, 0.5, 0.0, 0.5]);
    close(
        run(L::SoftCrossEntropy, logits, dist),
        (-r0[1] - 0.5 * r1[0] - 0.5 * r1[2]) / 2.0,
        "soft cross_entropy",
    );
    // Gradients with respect to the prediction, by finite differences.
    for (name, f) in [
        ("mse", L::Mse),
        ("huber", L::Huber { delta: 0.5 }),
        ("bce_with_logits", L::BceWithLogits),
    ] {
        check_case(&case(
            &format!("loss {name}"),
            vec![(vec![3, 2], -2.0, 2.0), (vec![3, 2], 0.05, 0.95)],
            move |b, x| super::lower::loss_fn(b, f, x[0], x[1]),
        ));
    }
}
