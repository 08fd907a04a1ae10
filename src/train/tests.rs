//! One training step of a linear classifier, compared with the same step computed by hand in
//! f64 (softmax cross-entropy gradient, then each optimizer's update rule as PyTorch defines
//! it), for every optimizer, weight decay, Nesterov and gradient clipping; and the losses.

use super::graph::{self, Spec};
use crate::backend::interp::Interp;
use crate::backend::{Backend, HostTensor};
use crate::check::hir;
use crate::driver::check_file;

const PROGRAM: &str = r#"
use std.nn
dataset penguins {
  source = csv("PENGUINS", missing: "NA")
  split  = random(train: 0.8, val: 0.2)
  features {
    bill_length_mm: Float = impute(median)
    bill_depth_mm:  Float = impute(median)
  }
  target species: Class[3]
}
model linear(x: Float[B, F]) -> Float[B, C] { x |> dense(C) }
train t {
  model = linear  data = penguins  loss = LOSS  optimizer = OPT  epochs = 1  batch = 2  seed = 1 CLIP
}
"#;

fn program(opt: &str, loss: &str, clip: &str) -> hir::Program {
    let dir = std::env::temp_dir().join(format!("mlx-step-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "step-{}.mlx",
        crate::rundir::sha256_hex(format!("{opt}{loss}{clip}").as_bytes())
    ));
    let penguins = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/penguins.csv");
    let text = PROGRAM
        .replace("PENGUINS", penguins)
        .replace("OPT", opt)
        .replace("LOSS", loss)
        .replace("CLIP", clip);
    std::fs::write(&path, text).unwrap();
    let c = check_file(&path, &[]);
    let msgs: Vec<String> = c.diags.iter().map(ToString::to_string).collect();
    assert!(c.ok(), "{msgs:?}");
    c.program.unwrap()
}

/// Parameters after `steps` training steps on the same batch, from the interpreter.
fn run_steps(
    p: &hir::Program,
    w0: &[f64],
    b0: &[f64],
    x: &[f64],
    y: &[i32],
    lr: f64,
    steps: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f32>) {
    let plan = &p.trains[0];
    let spec = Spec {
        hir: p,
        plan,
        dataset: &p.datasets[0],
        train_batches: vec![2],
        eval_batches: vec![],
        predict_batches: vec![],
        shard_batches: Vec::new(),
    };
    let built = graph::build(&spec).unwrap();
    let mut exe = Interp.compile(&built.program).unwrap();
    let w = built.program.state("dense_0.w").unwrap();
    let b = built.program.state("dense_0.b").unwrap();
    exe.write_state(
        w,
        &HostTensor::f32(vec![2, 3], w0.iter().map(|v| *v as f32).collect()),
    )
    .unwrap();
    exe.write_state(
        b,
        &HostTensor::f32(vec![3], b0.iter().map(|v| *v as f32).collect()),
    )
    .unwrap();
    let (b1, b2) = match plan.optimizer {
        hir::Optimizer::Adam { beta1, beta2, .. } | hir::Optimizer::AdamW { beta1, beta2, .. } => {
            (beta1, beta2)
        }
        _ => (0.0, 0.0),
    };
    let mut losses = Vec::new();
    for t in 1..=steps {
        let bc1 = if b1 > 0.0 {
            1.0 / (1.0 - b1.powi(t as i32))
        } else {
            1.0
        };
        let bc2 = if b2 > 0.0 {
            1.0 / (1.0 - b2.powi(t as i32))
        } else {
            1.0
        };
        let out = exe
            .run(
                built.train[&2],
                &[
                    HostTensor::f32(vec![2, 2], x.iter().map(|v| *v as f32).collect()),
                    HostTensor::i32(vec![2], y.to_vec()),
                    HostTensor::scalar(lr as f32),
                    HostTensor::scalar_i32(t as i32 - 1),
                    HostTensor::scalar(bc1 as f32),
                    HostTensor::scalar(bc2 as f32),
                ],
            )
            .unwrap();
        losses.push(out[0].item());
    }
    let f = |s| {
        exe.read_state(s)
            .unwrap()
            .into_f32()
            .into_iter()
            .map(f64::from)
            .collect()
    };
    (f(w), f(b), losses)
}

/// Mean softmax cross-entropy of a linear model and its gradients, by hand.
fn ce_grad(w: &[f64], b: &[f64], x: &[f64], y: &[i32]) -> (f64, Vec<f64>, Vec<f64>) {
    let (n, fdim, k) = (2, 2, 3);
    let mut gw = vec![0.0; fdim * k];
    let mut gb = vec![0.0; k];
    let mut loss = 0.0;
    for i in 0..n {
        let z: Vec<f64> = (0..k)
            .map(|c| {
                b[c] + (0..fdim)
                    .map(|f| x[i * fdim + f] * w[f * k + c])
                    .sum::<f64>()
            })
            .collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        loss -= (e[y[i] as usize] / s).ln() / n as f64;
        for c in 0..k {
            let d = (e[c] / s - if c == y[i] as usize { 1.0 } else { 0.0 }) / n as f64;
            gb[c] += d;
            for f in 0..fdim {
                gw[f * k + c] += x[i * fdim + f] * d;
            }
        }
    }
    (loss, gw, gb)
}

const W0: [f64; 6] = [0.1, -0.2, 0.3, 0.05, 0.4, -0.1];
const B0: [f64; 3] = [0.0, 0.1, -0.05];
const X: [f64; 4] = [1.0, -0.5, 0.3, 2.0];
const Y: [i32; 2] = [2, 0];

fn close(a: &[f64], b: &[f64], what: &str) {
    for (i, (p, q)) in a.iter().zip(b).enumerate() {
        assert!(
            (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
            "{what}[{i}]: got {p}, by hand {q}"
        );
    }
}

/// Apply `update(param, grad, state)` twice by hand and compare with two interpreted steps.
fn check_optimizer(
    opt: &str,
    clip: &str,
    mut update: impl FnMut(&mut [f64], &[f64], usize, &mut Vec<Vec<f64>>, usize),
) {
    let p = program(opt, "cross_entropy", clip);
    let lr = p.trains[0].optimizer.lr();
    let (mut w, mut b) = (W0.to_vec(), B0.to_vec());
    let mut state: Vec<Vec<f64>> = vec![Vec::new(); 8];
    for t in 1..=2 {
        let (_, mut gw, mut gb) = ce_grad(&w, &b, &X, &Y);
        if let Some(c) = p.trains[0].clip_grad {
            let norm = (gw.iter().chain(&gb).map(|g| g * g).sum::<f64>()).sqrt();
            let s = (c / (norm + 1e-6)).min(1.0);
            gw.iter_mut().chain(gb.iter_mut()).for_each(|g| *g *= s);
        }
        update(&mut w, &gw, t, &mut state, 0);
        update(&mut b, &gb, t, &mut state, 4);
        let _ = lr;
    }
    let (iw, ib, _) = run_steps(&p, &W0, &B0, &X, &Y, lr, 2);
    close(&iw, &w, &format!("{opt} w"));
    close(&ib, &b, &format!("{opt} b"));
}

fn buf(state: &mut [Vec<f64>], slot: usize, n: usize) -> &mut Vec<f64> {
    if state[slot].is_empty() {
        state[slot] = vec![0.0; n];
    }
    &mut state[slot]
}

#[test]
fn the_loss_matches_softmax_cross_entropy() {
    let p = program("sgd(lr: 0.1)", "cross_entropy", "");
    let (_, _, losses) = run_steps(&p, &W0, &B0, &X, &Y, 0.1, 1);
    let (want, _, _) = ce_grad(&W0, &B0, &X, &Y);
    assert!(
        (losses[0] as f64 - want).abs() < 1e-6,
        "{} vs {want}",
        losses[0]
    );
}

#[test]
fn sgd_plain_momentum_nesterov_and_weight_decay_match_pytorch() {
    check_optimizer("sgd(lr: 0.1)", "", |p, g, _, _, _| {
        p.iter_mut().zip(g).for_each(|(p, g)| *p -= 0.1 * g)
    });
    for nesterov in [false, true] {
        check_optimizer(
            &format!("sgd(lr: 0.1, momentum: 0.9, nesterov: {nesterov}, weight_decay: 0.01)"),
            "",
            move |p, g, _, st, s| {
                let b = buf(st, s, p.len());
                for i in 0..p.len() {
                    let gi = g[i] + 0.01 * p[i];
                    b[i] = 0.9 * b[i] + gi;
                    let d = if nesterov { gi + 0.9 * b[i] } else { b[i] };
                    p[i] -= 0.1 * d;
                }
            },
        );
    }
}

#[test]
fn adam_and_adamw_match_pytorch() {
    for (opt, decoupled) in [
        ("adam(lr: 0.01, weight_decay: 0.1)", false),
        ("adamw(lr: 0.01, weight_decay: 0.1)", true),
    ] {
        check_optimizer(opt, "", move |p, g, t, st, s| {
            let (b1, b2, eps, lr, wd): (f64, f64, f64, f64, f64) = (0.9, 0.999, 1e-8, 0.01, 0.1);
            for i in 0..p.len() {
                let gi = if decoupled { g[i] } else { g[i] + wd * p[i] };
                let m = {
                    let mb = buf(st, s, p.len());
                    mb[i] = b1 * mb[i] + (1.0 - b1) * gi;
                    mb[i]
                };
                let v = {
                    let vb = buf(st, s + 1, p.len());
                    vb[i] = b2 * vb[i] + (1.0 - b2) * gi * gi;
                    vb[i]
                };
                let mhat = m / (1.0 - b1.powi(t as i32));
                let vhat = v / (1.0 - b2.powi(t as i32));
                if decoupled {
                    p[i] -= lr * wd * p[i];
                }
                p[i] -= lr * mhat / (vhat.sqrt() + eps);
            }
        });
    }
}

#[test]
fn rmsprop_with_momentum_matches_pytorch() {
    check_optimizer(
        "rmsprop(lr: 0.01, alpha: 0.9, momentum: 0.5)",
        "",
        |p, g, _, st, s| {
            for i in 0..p.len() {
                let sq = {
                    let sb = buf(st, s, p.len());
                    sb[i] = 0.9 * sb[i] + 0.1 * g[i] * g[i];
                    sb[i]
                };
                let mb = buf(st, s + 1, p.len());
                mb[i] = 0.5 * mb[i] + g[i] / (sq.sqrt() + 1e-8);
                p[i] -= 0.01 * mb[i];
            }
        },
    );
}

#[test]
fn gradient_clipping_uses_the_global_norm() {
    check_optimizer("sgd(lr: 0.5)", "clip_grad = 0.05", |p, g, _, _, _| {
        p.iter_mut().zip(g).for_each(|(p, g)| *p -= 0.5 * g)
    });
}

/// The summed evaluation loss of a one-feature linear model `y = w x + b` on two rows.
fn eval_loss(target: &str, loss: &str, w: f64, b: f64, x: [f64; 2], y: [f64; 2]) -> f64 {
    let dir = std::env::temp_dir().join(format!("mlx-loss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}.mlx",
        crate::rundir::sha256_hex(format!("{target}{loss}").as_bytes())
    ));
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/penguins.csv");
    let text = format!(
        "use std.nn\ndataset d {{\n  source = csv(\"{csv}\", missing: \"NA\")\n  features {{ bill_length_mm: Float = impute(median) }}\n  target {target}\n}}\nmodel lin(x: Float[B, 1]) -> Float[B, 1] {{ x |> dense(1) }}\ntrain t {{ model = lin  data = d  loss = {loss}  optimizer = sgd(lr: 0.1)  epochs = 1  batch = 2 }}\n"
    );
    std::fs::write(&path, text).unwrap();
    let c = check_file(&path, &[]);
    let msgs: Vec<String> = c.diags.iter().map(ToString::to_string).collect();
    assert!(c.ok(), "{msgs:?}");
    let p = c.program.unwrap();
    let spec = Spec {
        hir: &p,
        plan: &p.trains[0],
        dataset: &p.datasets[0],
        train_batches: vec![],
        eval_batches: vec![2],
        predict_batches: vec![],
        shard_batches: Vec::new(),
    };
    let built = graph::build(&spec).unwrap();
    let mut exe = Interp.compile(&built.program).unwrap();
    exe.write_state(
        built.program.state("dense_0.w").unwrap(),
        &HostTensor::f32(vec![1, 1], vec![w as f32]),
    )
    .unwrap();
    exe.write_state(
        built.program.state("dense_0.b").unwrap(),
        &HostTensor::f32(vec![1], vec![b as f32]),
    )
    .unwrap();
    let yt = if target.starts_with("sex") {
        HostTensor::i32(vec![2], y.iter().map(|v| *v as i32).collect())
    } else {
        HostTensor::f32(vec![2], y.iter().map(|v| *v as f32).collect())
    };
    let out = exe
        .run(
            built.eval[&2],
            &[
                HostTensor::f32(vec![2, 1], x.iter().map(|v| *v as f32).collect()),
                yt,
            ],
        )
        .unwrap();
    f64::from(out[0].item())
}

#[test]
fn regression_and_binary_losses_match_their_definitions() {
    // Predictions 2*x + 1 = [3, -1] against targets [2, 1]: errors [1, -2].
    let (x, y) = ([1.0, -1.0], [2.0, 1.0]);
    let t = "body_mass_g: Float = drop_missing";
    assert!((eval_loss(t, "mse", 2.0, 1.0, x, y) - (1.0 + 4.0)).abs() < 1e-5);
    assert!((eval_loss(t, "mae", 2.0, 1.0, x, y) - (1.0 + 2.0)).abs() < 1e-5);
    // Huber with delta 1.5: 0.5*1^2 for the small error, 1.5*(2 - 0.75) for the large one.
    assert!((eval_loss(t, "huber(delta: 1.5)", 2.0, 1.0, x, y) - (0.5 + 1.5 * 1.25)).abs() < 1e-5);
    // BCE with logits [3, -1] and labels [1, 0]: log(1 + e^-3) + log(1 + e^-1).
    let want = (1.0 + (-3.0f64).exp()).ln() + (1.0 + (-1.0f64).exp()).ln();
    let got = eval_loss(
        "sex: Category = drop_missing",
        "binary_cross_entropy",
        2.0,
        1.0,
        x,
        [1.0, 0.0],
    );
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    // Large logits stay finite (the stable form never exponentiates a large positive number).
    let big = eval_loss(
        "sex: Category = drop_missing",
        "binary_cross_entropy",
        100.0,
        0.0,
        [1.0, -1.0],
        [0.0, 1.0],
    );
    assert!((big - 200.0).abs() < 1e-3, "{big}");
}
