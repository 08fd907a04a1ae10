//! The CPU back end against the reference interpreter: every primitive and its gradient
//! (generated code and the scalar evaluator), and the vectorised math against the platform's.

use super::Cpu;
use crate::backend::interp::Interp;
use crate::backend::{Backend, HostTensor};
use crate::ir::build::FnBuilder;
use crate::ir::tests::{case_inputs, cases, program, values};
use crate::ir::{DType, Program, UnaryOp};

/// Outputs agree within `rtol` relative (and `atol` absolute) error.
pub fn assert_close(what: &str, a: &[HostTensor], b: &[HostTensor], rtol: f32, atol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: output counts");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.shape, y.shape, "{what}: output {i} shapes");
        for (j, (p, q)) in x.as_f32().iter().zip(y.as_f32()).enumerate() {
            let ok = (p.is_nan() && q.is_nan())
                || p == q
                || (p - q).abs() <= atol + rtol * p.abs().max(q.abs());
            assert!(ok, "{what}: output {i} element {j}: {p} vs {q}");
        }
    }
}

fn backends() -> Vec<(&'static str, Box<dyn Backend>)> {
    vec![
        (
            "jit",
            Box::new(Cpu {
                threads: 2,
                jit: true,
                direct_conv: true,
            }),
        ),
        (
            "scalar",
            Box::new(Cpu {
                threads: 1,
                jit: false,
                direct_conv: true,
            }),
        ),
    ]
}

#[test]
fn every_primitive_and_gradient_agrees_with_the_interpreter() {
    for c in cases() {
        let p = program(&c);
        let inputs = case_inputs(&c, &p);
        let want = Interp.compile(&p).unwrap().run(0, &inputs).unwrap();
        for (name, be) in backends() {
            let got = be
                .compile(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", c.name))
                .run(0, &inputs)
                .unwrap();
            assert_close(&format!("{} ({name})", c.name), &got, &want, 2e-5, 1e-6);
        }
    }
}

fn unary_program(op: UnaryOp, n: usize) -> Program {
    let mut states = Vec::new();
    let mut b = FnBuilder::new("f", &mut states);
    let x = b.input("x", vec![n], DType::F32);
    let y = b.unary(op, x);
    b.output("y", y);
    let f = b.finish();
    Program {
        states,
        functions: vec![f],
    }
}

#[test]
fn generated_math_is_within_a_few_ulp_of_the_platform() {
    // Dense grids, the edges of each function's range, and the special values.
    let mut xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.025).collect();
    xs.extend([
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        1e-8,
        88.0,
        88.3,
        88.4,
        89.0,
        -87.0,
        -87.3,
        -87.4,
        -100.0,
        1e30,
        -1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        3.4e38,
    ]);
    let n = xs.len();
    for (op, f, ulps, rel_floor) in [
        (UnaryOp::Exp, f32::exp as fn(f32) -> f32, 4.0, 0.0),
        (UnaryOp::Log, f32::ln, 4.0, 0.0),
        (UnaryOp::Tanh, f32::tanh, 8.0, 1e-7),
        (
            UnaryOp::Sigmoid,
            |v: f32| crate::backend::interp::unary(UnaryOp::Sigmoid, v),
            8.0,
            1e-7,
        ),
    ] {
        let p = unary_program(op, n);
        let mut exe = Cpu {
            threads: 1,
            jit: true,
            direct_conv: true,
        }
        .compile(&p)
        .unwrap();
        let got = exe.run(0, &[HostTensor::f32(vec![n], xs.clone())]).unwrap()[0]
            .as_f32()
            .to_vec();
        for (x, g) in xs.iter().zip(&got) {
            let w = f(*x);
            if w.is_nan() {
                assert!(g.is_nan(), "{op:?}({x}) = {g}, want NaN");
                continue;
            }
            if w.is_infinite() || w == 0.0 {
                // exp underflow flushes to 0 below about -87.3 (documented); sigmoid below -87
                // stays at 1.7e-38 instead of going to 0.
                assert!(
                    *g == w || (w.abs() < 1.2e-38 && g.abs() < 2e-38),
                    "{op:?}({x}) = {g}, want {w}"
                );
                continue;
            }
            if op == UnaryOp::Exp && w.abs() < 1.2e-38 {
                continue;
            }
            let ulp = (w.abs() * f32::EPSILON).max(f32::MIN_POSITIVE);
            let err = (g - w).abs();
            assert!(
                err <= ulps * ulp || err <= rel_floor,
                "{op:?}({x}) = {g}, want {w}: {} ulp",
                err / ulp
            );
        }
    }
}

#[test]
fn threads_do_not_change_results() {
    // A large elementwise kernel and a reduction, split across 1 and 4 threads.
    let mut states = Vec::new();
    let mut b = FnBuilder::new("f", &mut states);
    let x = b.input("x", vec![300, 1000], DType::F32);
    let e = b.unary(UnaryOp::Tanh, x);
    let s = b.sum(e, &[1]);
    let t = b.sum_all(e);
    b.output("e", e);
    b.output("s", s);
    b.output("t", t);
    let f = b.finish();
    let p = Program {
        states,
        functions: vec![f],
    };
    let input = vec![HostTensor::f32(
        vec![300, 1000],
        values(300_000, 5, -3.0, 3.0),
    )];
    let one = Cpu {
        threads: 1,
        jit: true,
        direct_conv: true,
    }
    .compile(&p)
    .unwrap()
    .run(0, &input)
    .unwrap();
    let four = Cpu {
        threads: 4,
        jit: true,
        direct_conv: true,
    }
    .compile(&p)
    .unwrap()
    .run(0, &input)
    .unwrap();
    assert_eq!(one, four);
}

pub(crate) mod random {
    //! Random programs on random shapes: chains of elementwise ops (with broadcasts,
    //! transposes and slices), a reduction over random axes and a batched matrix product,
    //! with their gradients, agree between the compiled back end (2 threads) and the
    //! interpreter.

    use super::*;
    use crate::ir::autodiff;
    use crate::ir::{BinaryOp, ValueId};
    use proptest::prelude::*;

    pub(crate) fn build(dims: &[usize], ops: &[u8], axes_mask: u8, perm_seed: usize) -> Program {
        let mut states = Vec::new();
        let mut b = FnBuilder::new("f", &mut states);
        let x = b.input("x", dims.to_vec(), DType::F32);
        let w = b.input("w", dims.to_vec(), DType::F32);
        let r = dims.len();
        // A row vector broadcast along every axis but the last.
        let row = b.input("row", vec![dims[r - 1]], DType::F32);
        let mut v: ValueId = x;
        for op in ops {
            v = match op % 9 {
                0 => b.unary(UnaryOp::Tanh, v),
                1 => b.unary(UnaryOp::Sigmoid, v),
                2 => b.mul(v, w),
                3 => {
                    let rb = b.broadcast(row, dims);
                    b.add(v, rb)
                }
                4 => {
                    let sq = b.mul(v, v);
                    let n = b.unary(UnaryOp::Neg, sq);
                    b.unary(UnaryOp::Exp, n)
                }
                5 => {
                    // A transpose that is undone later keeps the shape for the next op.
                    let mut perm: Vec<usize> = (0..r).collect();
                    perm.rotate_left(perm_seed % r);
                    let t = b.transpose(v, &perm);
                    let e = b.unary(UnaryOp::Abs, t);
                    let mut inv = vec![0; r];
                    for (i, p) in perm.iter().enumerate() {
                        inv[*p] = i;
                    }
                    b.transpose(e, &inv)
                }
                6 => b.binary(BinaryOp::Max, v, w),
                7 => {
                    let a = b.unary(UnaryOp::Abs, w);
                    let one = b.constant(1.0, dims.to_vec());
                    let d = b.add(a, one);
                    b.div(v, d)
                }
                _ => {
                    // Slice the last axis and pad it back with a concatenation.
                    let n = dims[r - 1];
                    if n < 2 {
                        v
                    } else {
                        let lo = b.slice(v, r - 1, 0, n / 2);
                        let hi = b.slice(v, r - 1, n / 2, n - n / 2);
                        let hs = b.unary(UnaryOp::Tanh, hi);
                        b.concat(vec![lo, hs], r - 1)
                    }
                }
            };
        }
        let axes: Vec<usize> = (0..r).filter(|a| axes_mask & (1 << a) != 0).collect();
        let reduced = if axes.is_empty() { v } else { b.sum(v, &axes) };
        b.output("reduced", reduced);
        let mut loss = b.sum_all(reduced);
        if r >= 2 {
            // [..., m, k] @ [..., k, m]
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(r - 1, r - 2);
            let wt = b.transpose(w, &perm);
            let p = b.matmul(v, wt);
            b.output("product", p);
            let s = b.sum_all(p);
            loss = b.add(loss, s);
        }
        b.output("loss", loss);
        let grads = autodiff::gradients(&mut b, loss, &[x, w, row]);
        for (i, g) in grads.iter().enumerate() {
            b.output(&format!("g{i}"), *g);
        }
        let f = b.finish();
        Program {
            states,
            functions: vec![f],
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn random_programs_agree_with_the_interpreter(
            dims in prop::collection::vec(1usize..9, 1..5),
            ops in prop::collection::vec(any::<u8>(), 1..7),
            axes_mask in any::<u8>(),
            perm_seed in any::<usize>(),
            seed in any::<u64>(),
        ) {
            let p = build(&dims, &ops, axes_mask, perm_seed);
            let n: usize = dims.iter().product();
            let inputs = vec![
                HostTensor::f32(dims.clone(), values(n, seed, -2.0, 2.0)),
                HostTensor::f32(dims.clone(), values(n, seed ^ 1, -2.0, 2.0)),
                HostTensor::f32(vec![dims[dims.len() - 1]], values(dims[dims.len() - 1], seed ^ 2, -1.0, 1.0)),
            ];
            let want = Interp.compile(&p).unwrap().run(0, &inputs).unwrap();
            let got = Cpu { threads: 2, jit: true, direct_conv: true }.compile(&p).unwrap().run(0, &inputs).unwrap();
            assert_close(&format!("dims {dims:?} ops {ops:?} axes {axes_mask:#b}"), &got, &want, 1e-4, 1e-5);
        }
    }
}

#[test]
fn matrix_products_do_not_depend_on_threads() {
    // Small, row-split, column-split and split-k products.
    for (m, k, n) in [
        (3usize, 5usize, 4usize),
        (128, 128, 512),
        (700, 64, 20),
        (20, 64, 700),
        (25, 20_000, 6),
    ] {
        let mut states = Vec::new();
        let mut b = FnBuilder::new("f", &mut states);
        let x = b.input("a", vec![m, k], DType::F32);
        let y = b.input("b", vec![k, n], DType::F32);
        let p = b.matmul(x, y);
        b.output("p", p);
        let f = b.finish();
        let p = Program {
            states,
            functions: vec![f],
        };
        let input = vec![
            HostTensor::f32(vec![m, k], values(m * k, 3, -1.0, 1.0)),
            HostTensor::f32(vec![k, n], values(k * n, 4, -1.0, 1.0)),
        ];
        let runs: Vec<Vec<HostTensor>> = [1, 2, 3, 4]
            .into_iter()
            .map(|t| {
                Cpu {
                    threads: t,
                    jit: true,
                    direct_conv: true,
                }
                .compile(&p)
                .unwrap()
                .run(0, &input)
                .unwrap()
            })
            .collect();
        for r in &runs[1..] {
            assert_eq!(r, &runs[0], "{m}x{k}x{n}");
        }
        let want = Interp.compile(&p).unwrap().run(0, &input).unwrap();
        assert_close(&format!("{m}x{k}x{n}"), &runs[0], &want, 1e-4, 1e-4);
    }
}

/// Convolutions with few filters run from the image (`direct`): forward and weight gradient
/// agree with the im2col products on the interpreter, at strides 1 and 2, with and without
/// padding, one or several input channels, batches that do not fill a block, and a
/// channels-last (strided) input; the results do not depend on the thread count.
#[test]
fn direct_convolutions_agree_with_im2col_products() {
    use crate::ir::schedule;
    for (n, c, h, w, k, stride, pad, f, nchw_grad) in [
        (11, 1, 12, 10, 5, 1, 2, 6, true),
        (11, 1, 12, 10, 5, 1, 2, 6, false),
        (3, 3, 9, 9, 3, 2, 1, 4, true),
        (9, 2, 7, 8, 3, 1, 0, 15, false),
        (2, 1, 5, 5, 5, 1, 0, 1, true),
    ] {
        let mut states = Vec::new();
        let mut b = FnBuilder::new("f", &mut states);
        // Channels-last input, read as NCHW through a transpose (a strided view).
        let x = b.input("x", vec![n, h, w, c], DType::F32);
        let xt = b.transpose(x, &[0, 3, 1, 2]);
        let wt = b.input("w", vec![c * k * k, f], DType::F32);
        let cols = b.im2col(xt, [k, k], stride, pad, 0.0);
        let s = b.shape(cols).to_vec();
        let m = s[0] * s[1] * s[2];
        let cols = b.reshape(cols, &[m, c * k * k]);
        let y = b.matmul(cols, wt);
        let (oh, ow) = (s[1], s[2]);
        // The output gradient as a matrix, or NCHW as the layers above produce it (the
        // schedule then copies it into the matrix; the direct path reads it in place).
        let (g, gshape) = if nchw_grad {
            let g4 = b.input("g", vec![n, f, oh, ow], DType::F32);
            let t = b.transpose(g4, &[0, 2, 3, 1]);
            (b.reshape(t, &[m, f]), vec![n, f, oh, ow])
        } else {
            (b.input("g", vec![m, f], DType::F32), vec![m, f])
        };
        let ct = b.transpose(cols, &[1, 0]);
        let dw = b.matmul(ct, g);
        b.output("y", y);
        b.output("dw", dw);
        let f0 = b.finish();
        let p = Program {
            states,
            functions: vec![f0],
        };
        let sched = schedule::schedule(&p, &p.functions[0]);
        let replaced = super::direct::plan(&sched);
        let kinds: Vec<&str> = replaced
            .iter()
            .flatten()
            .map(|r| match r {
                super::direct::Replace::Skip => "skip",
                super::direct::Replace::Forward(_) => "forward",
                super::direct::Replace::WeightGrad(_) => "grad",
            })
            .collect();
        assert_eq!(
            kinds,
            if nchw_grad && f > 1 {
                &["skip", "forward", "skip", "grad"][..]
            } else {
                &["skip", "forward", "grad"][..]
            },
            "plan for {n}x{c}x{h}x{w}"
        );
        let inputs = vec![
            HostTensor::f32(vec![n, h, w, c], values(n * h * w * c, 1, -2.0, 2.0)),
            HostTensor::f32(vec![c * k * k, f], values(c * k * k * f, 2, -1.0, 1.0)),
            HostTensor::f32(gshape, values(m * f, 3, -1.0, 1.0)),
        ];
        let want = Interp.compile(&p).unwrap().run(0, &inputs).unwrap();
        let mut runs = Vec::new();
        for threads in [1, 2, 3] {
            let got = Cpu {
                threads,
                jit: true,
                direct_conv: true,
            }
            .compile(&p)
            .unwrap()
            .run(0, &inputs)
            .unwrap();
            assert_close(
                &format!("direct conv {n}x{c}x{h}x{w} k{k} s{stride} p{pad} f{f}"),
                &got,
                &want,
                1e-5,
                1e-5,
            );
            runs.push(got);
        }
        for r in &runs[1..] {
            for (a, b) in r.iter().zip(&runs[0]) {
                assert_eq!(a.as_f32(), b.as_f32(), "thread count changed a result");
            }
        }
    }
}
