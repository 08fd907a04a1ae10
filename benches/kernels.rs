//! Micro-benchmarks of the CPU back end's building blocks: generated elementwise kernels
//! (each transcendental), reductions and matrix products at the sizes the Fashion-MNIST
//! examples use. `cargo bench --bench kernels [FILTER]`; prints time per call and
//! throughput. Compare against `--backend interp` numbers with `MLX_BENCH_INTERP=1`.

use mlx::backend::cpu::Cpu;
use mlx::backend::interp::Interp;
use mlx::backend::{Backend, HostTensor};
use mlx::ir::build::FnBuilder;
use mlx::ir::{DType, Op, Program, UnaryOp};
use std::time::Instant;

fn program(shapes: &[Vec<usize>], f: impl Fn(&mut FnBuilder<'_>, &[usize]) -> usize) -> Program {
    let mut states = Vec::new();
    let mut b = FnBuilder::new("f", &mut states);
    let xs: Vec<usize> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| b.input(&format!("x{i}"), s.clone(), DType::F32))
        .collect();
    let y = f(&mut b, &xs);
    b.output("y", y);
    let f = b.finish();
    Program {
        states,
        functions: vec![f],
    }
}

fn inputs(shapes: &[Vec<usize>]) -> Vec<HostTensor> {
    shapes
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let n: usize = s.iter().product();
            HostTensor::f32(
                s.clone(),
                (0..n)
                    .map(|i| ((i * 7919 + k * 104_729) % 2001) as f32 / 500.0 - 2.0)
                    .collect(),
            )
        })
        .collect()
}

fn bench(
    name: &str,
    filter: &Option<String>,
    shapes: Vec<Vec<usize>>,
    flops: f64,
    f: impl Fn(&mut FnBuilder<'_>, &[usize]) -> usize,
) {
    if filter.as_ref().is_some_and(|w| !name.contains(w.as_str())) {
        return;
    }
    let p = program(&shapes, f);
    let ins = inputs(&shapes);
    let backend: Box<dyn Backend> = if std::env::var_os("MLX_BENCH_INTERP").is_some() {
        Box::new(Interp)
    } else {
        Box::new(Cpu::new())
    };
    let mut exe = match backend.compile(&p) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{name}: {e}");
            return;
        }
    };
    // Warm up, then time enough calls for about 0.3 s.
    let _ = exe.run(0, &ins);
    // `MLX_BENCH_CALLS`: a fixed number of calls (for counting instructions with `perf stat`).
    let fixed: Option<u32> = std::env::var("MLX_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok());
    let start = Instant::now();
    let mut calls = 0u32;
    while fixed.map_or(start.elapsed().as_secs_f64() < 0.3, |n| calls < n) {
        let _ = exe.run(0, &ins);
        calls += 1;
    }
    let per = start.elapsed().as_secs_f64() / f64::from(calls);
    println!(
        "{name:<44} {:>10.1} us/call {:>8.2} G/s",
        per * 1e6,
        flops / per / 1e9
    );
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let f = &filter;
    let hw = vec![128usize, 128];
    let n = 128.0 * 128.0;
    for (name, op) in [
        ("exp", UnaryOp::Exp),
        ("log", UnaryOp::Log),
        ("tanh", UnaryOp::Tanh),
        ("sigmoid", UnaryOp::Sigmoid),
        ("sqrt", UnaryOp::Sqrt),
    ] {
        bench(
            &format!("unary {name} [128,128]"),
            f,
            vec![hw.clone()],
            n,
            move |b, x| b.unary(op, x[0]),
        );
    }
    // The forward cell of an LSTM step (hidden 128, batch 128): gates from the pre-activations,
    // new cell and hidden state; every intermediate is an output, as training keeps them.
    bench(
        "lstm cell [128,4x128]",
        f,
        vec![vec![128, 512], vec![128, 128]],
        n,
        |b, x| {
            let z = x[0];
            let gate = |b: &mut FnBuilder<'_>, k: usize, op: UnaryOp| {
                let s = b.slice(z, 1, k * 128, 128);
                b.unary(op, s)
            };
            let i = gate(b, 0, UnaryOp::Sigmoid);
            let fg = gate(b, 1, UnaryOp::Sigmoid);
            let g = gate(b, 2, UnaryOp::Tanh);
            let o = gate(b, 3, UnaryOp::Sigmoid);
            let fc = b.mul(fg, x[1]);
            let ig = b.mul(i, g);
            let c = b.add(fc, ig);
            let tc = b.unary(UnaryOp::Tanh, c);
            let h = b.mul(o, tc);
            let parts = [i, fg, g, o, c, tc, h].map(|v| b.reshape(v, &[128, 1, 128]));
            b.concat(parts.to_vec(), 1)
        },
    );
    bench(
        "add [128,128]",
        f,
        vec![hw.clone(), hw.clone()],
        n,
        |b, x| b.add(x[0], x[1]),
    );
    bench(
        "add [1024,1024]",
        f,
        vec![vec![1024, 1024], vec![1024, 1024]],
        1024.0 * 1024.0,
        |b, x| b.add(x[0], x[1]),
    );
    bench(
        "sum rows [128,512]",
        f,
        vec![vec![128, 512]],
        128.0 * 512.0,
        |b, x| b.sum(x[0], &[1]),
    );
    bench(
        "sum columns [3584,512]",
        f,
        vec![vec![3584, 512]],
        3584.0 * 512.0,
        |b, x| b.sum(x[0], &[0]),
    );
    // Convolution lowering of LeNet-5 (batch 128): conv1 (1 channel, 5x5, padding 2), conv2
    // (6 channels, 5x5) read channels-last as the matmul before it leaves them, max pooling
    // windows, and the adjoints.
    bench(
        "im2col conv1 [128,1,28,28] k5 p2",
        f,
        vec![vec![128, 1, 28, 28]],
        128.0 * 784.0 * 25.0,
        |b, x| b.im2col(x[0], [5, 5], 1, 2, 0.0),
    );
    // LeNet's first convolution (6 filters) and its weight gradient: few output channels,
    // computed from the image (`backend::cpu::direct`) rather than an im2col matrix.
    bench(
        "conv1 forward [128,1,28,28] 6x5x5 p2",
        f,
        vec![vec![128, 1, 28, 28], vec![25, 6]],
        2.0 * 128.0 * 784.0 * 25.0 * 6.0,
        |b, x| {
            let c = b.im2col(x[0], [5, 5], 1, 2, 0.0);
            let c = b.reshape(c, &[128 * 784, 25]);
            b.matmul(c, x[1])
        },
    );
    bench(
        "conv1 weight gradient [128,1,28,28] 6x5x5 p2",
        f,
        vec![vec![128, 1, 28, 28], vec![128 * 784, 6]],
        2.0 * 128.0 * 784.0 * 25.0 * 6.0,
        |b, x| {
            let c = b.im2col(x[0], [5, 5], 1, 2, 0.0);
            let c = b.reshape(c, &[128 * 784, 25]);
            let t = b.transpose(c, &[1, 0]);
            b.matmul(t, x[1])
        },
    );
    bench(
        "im2col conv2 [128,6,14,14] channels-last k5",
        f,
        vec![vec![128, 14, 14, 6]],
        128.0 * 100.0 * 150.0,
        |b, x| {
            let t = b.transpose(x[0], &[0, 3, 1, 2]);
            b.im2col(t, [5, 5], 1, 0, 0.0)
        },
    );
    bench(
        "im2col pool [128,6,28,28] k2 s2",
        f,
        vec![vec![128, 6, 28, 28]],
        128.0 * 6.0 * 784.0,
        |b, x| b.im2col(x[0], [2, 2], 2, 0, f32::NEG_INFINITY),
    );
    for (name, cols, out, k, stride, padding) in [
        (
            "col2im conv2",
            [128, 10, 10, 150],
            [128, 6, 14, 14],
            5,
            1,
            0,
        ),
        ("col2im conv1", [128, 28, 28, 25], [128, 1, 28, 28], 5, 1, 2),
        ("col2im pool", [128, 14, 14, 24], [128, 6, 28, 28], 2, 2, 0),
    ] {
        bench(
            &format!("{name} {cols:?} -> {out:?}"),
            f,
            vec![cols.to_vec()],
            cols.iter().product::<usize>() as f64,
            move |b, x| {
                b.push(
                    Op::Col2Im {
                        cols: x[0],
                        kernel: [k, k],
                        stride,
                        padding,
                    },
                    out.to_vec(),
                    DType::F32,
                )
            },
        );
    }
    for (m, k, nn) in [
        (128usize, 128usize, 512usize),
        (128, 512, 128),
        (128, 3584, 512),
        (3584, 28, 512),
        (128, 784, 256),
        (784, 128, 256),
        (25, 100_352, 6),
        (100_352, 25, 6),
        (150, 12_800, 16),
        (12_800, 16, 150),
    ] {
        bench(
            &format!("matmul [{m},{k}]x[{k},{nn}]"),
            f,
            vec![vec![m, k], vec![k, nn]],
            2.0 * (m * k * nn) as f64,
            |b, x| b.matmul(x[0], x[1]),
        );
    }
    // Transposed operands, as backward passes read them: `a^T b` (weight gradients) and
    // `a b^T` (input gradients).
    for (m, k, nn) in [
        (128usize, 128usize, 512usize),
        (128, 512, 128),
        (128, 3584, 512),
        (784, 128, 256),
    ] {
        bench(
            &format!("matmul T[{k},{m}]x[{k},{nn}]"),
            f,
            vec![vec![k, m], vec![k, nn]],
            2.0 * (m * k * nn) as f64,
            |b, x| {
                let t = b.transpose(x[0], &[1, 0]);
                b.matmul(t, x[1])
            },
        );
        bench(
            &format!("matmul [{m},{k}]xT[{nn},{k}]"),
            f,
            vec![vec![m, k], vec![nn, k]],
            2.0 * (m * k * nn) as f64,
            |b, x| {
                let t = b.transpose(x[1], &[1, 0]);
                b.matmul(x[0], t)
            },
        );
    }
}
