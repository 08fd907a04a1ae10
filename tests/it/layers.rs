//! Layers written in mlx (stdlib/nn.mlx), lowered and run by the reference interpreter:
//! convolution and pooling against direct loops at awkward sizes, and the gradients of whole
//! layers (conv, pooling, batch norm, embedding, rnn, lstm, gru) against central finite
//! differences, for the input and every parameter.

use mlx::backend::interp::Interp;
use mlx::backend::{Backend, Executable, HostTensor, TensorData};
use mlx::ir::build::FnBuilder;
use mlx::ir::lower::Lowering;
use mlx::ir::{DType, Program, StateKind, autodiff};
use mlx::rng::Rng;

/// A model applied to an input of `shape`: the program computes `out`, `loss = sum(out * w)`,
/// and the gradients of the loss for the input and each parameter.
struct Layer {
    exe: Box<dyn Executable>,
    params: Vec<(usize, Vec<usize>)>,
    x: HostTensor,
    w: HostTensor,
    training: bool,
}

fn layer(src: &str, model: &str, shape: &[usize], training: bool) -> Layer {
    let dir = std::env::temp_dir().join(format!("mlx-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{model}-{}.mlx",
        shape
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("x")
    ));
    std::fs::write(&path, src).unwrap();
    let (_, found, diags) = mlx::driver::instantiate_file(&path, model, shape);
    let (hir, inst) = found.unwrap_or_else(|| {
        panic!(
            "{model}: {:?}",
            diags.iter().map(ToString::to_string).collect::<Vec<_>>()
        )
    });
    let mut states = Vec::new();
    let mut b = FnBuilder::new("f", &mut states);
    let x = b.input("x", shape.to_vec(), DType::F32);
    let step = b.input("step", vec![], DType::I32);
    let low = Lowering {
        hir: &hir,
        batch: shape[0],
        training,
        seed: 3,
        counter: Some(step),
    };
    let out = low.instance(&mut b, inst, &[x], "", "").unwrap()[0];
    let os = b.shape(out).to_vec();
    let w = b.input("w", os.clone(), DType::F32);
    let prod = b.mul(out, w);
    let loss = b.sum_all(prod);
    b.output("out", out);
    b.output("loss", loss);
    let params: Vec<usize> = b
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == StateKind::Param)
        .map(|(i, _)| i)
        .collect();
    let mut wrt = vec![x];
    for p in &params {
        wrt.push(b.state(*p));
    }
    let grads = autodiff::gradients(&mut b, loss, &wrt);
    for (i, g) in grads.iter().enumerate() {
        b.output(&format!("g{i}"), *g);
    }
    let f = b.finish();
    let program = Program {
        states: states.clone(),
        functions: vec![f],
    };
    let mut exe = Interp.compile(&program).unwrap();
    let mut r = Rng::new(11, model);
    let mut rand = |n: usize, a: f32| -> Vec<f32> {
        (0..n)
            .map(|_| (r.next_f64() as f32 * 2.0 - 1.0) * a)
            .collect()
    };
    for (i, s) in states.iter().enumerate() {
        let n: usize = s.shape.iter().product();
        let v = match s.kind {
            StateKind::Param => rand(n, 0.5),
            _ => mlx::train::init::values(&s.init, &s.shape, 1, &s.name),
        };
        exe.write_state(i, &HostTensor::f32(s.shape.clone(), v))
            .unwrap();
    }
    let xn: usize = shape.iter().product();
    let wn: usize = os.iter().product();
    Layer {
        exe,
        params: params
            .iter()
            .map(|p| (*p, states[*p].shape.clone()))
            .collect(),
        x: HostTensor::f32(shape.to_vec(), rand(xn, 1.0)),
        w: HostTensor::f32(os, rand(wn, 1.0)),
        training,
    }
}

impl Layer {
    fn run(&mut self) -> Vec<HostTensor> {
        let step = HostTensor::scalar_i32(0);
        self.exe
            .run(0, &[self.x.clone(), step, self.w.clone()])
            .unwrap()
    }

    fn loss(&mut self) -> f64 {
        f64::from(self.run()[1].item())
    }

    /// Every gradient (input, then each parameter) against central differences, on up to 25
    /// elements of each.
    fn check_gradients(&mut self, what: &str) {
        self.check(what, 0);
    }

    /// Gradients of the parameters only (for layers whose input is discrete).
    fn check_param_gradients(&mut self, what: &str) {
        self.check(what, 1);
    }

    fn check(&mut self, what: &str, first: usize) {
        let base = self.run();
        let eps = 1e-2f32;
        for k in first..=self.params.len() {
            let analytic = base[2 + k].as_f32().to_vec();
            let n = analytic.len();
            let stride = (n / 25).max(1);
            for j in (0..n).step_by(stride) {
                let (plus, minus) = if k == 0 {
                    let orig = self.x.clone();
                    self.x = bump(&orig, j, eps);
                    let lp = self.loss();
                    self.x = bump(&orig, j, -eps);
                    let lm = self.loss();
                    self.x = orig;
                    (lp, lm)
                } else {
                    let (id, _) = self.params[k - 1];
                    let orig = self.exe.read_state(id).unwrap();
                    self.exe.write_state(id, &bump(&orig, j, eps)).unwrap();
                    let lp = self.loss();
                    self.exe.write_state(id, &bump(&orig, j, -eps)).unwrap();
                    let lm = self.loss();
                    self.exe.write_state(id, &orig).unwrap();
                    (lp, lm)
                };
                let numeric = (plus - minus) / (2.0 * f64::from(eps));
                let a = f64::from(analytic[j]);
                let tol = 3e-2 * (1.0 + numeric.abs().max(a.abs()));
                assert!(
                    (numeric - a).abs() <= tol,
                    "{what} ({}): gradient {} [{j}] autodiff {a} vs finite difference {numeric}",
                    if self.training { "training" } else { "eval" },
                    if k == 0 {
                        "input".to_string()
                    } else {
                        format!("param {k}")
                    }
                );
            }
        }
    }
}

fn bump(t: &HostTensor, j: usize, d: f32) -> HostTensor {
    let mut t = t.clone();
    if let TensorData::F32(v) = &mut t.data {
        v[j] += d;
    }
    t
}

fn model(body: &str, input: &str) -> String {
    format!("use std.nn\nmodel m(x: Float[{input}]) {{\n  {body}\n}}\n")
}

/// Direct convolution: NCHW input, [O, C, k, k] weight, then bias.
#[allow(clippy::too_many_arguments)]
fn conv_ref(
    x: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    wt: &[f32],
    bias: &[f32],
    o: usize,
    k: usize,
    s: usize,
    p: usize,
) -> Vec<f32> {
    let oh = (h + 2 * p - k) / s + 1;
    let ow = (w + 2 * p - k) / s + 1;
    let mut out = vec![0f32; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = f64::from(bias[oc]);
                    for ic in 0..c {
                        for i in 0..k {
                            for j in 0..k {
                                let iy = (y * s + i) as isize - p as isize;
                                let ix = (xx * s + j) as isize - p as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    acc += f64::from(
                                        x[((b * c + ic) * h + iy as usize) * w + ix as usize],
                                    ) * f64::from(wt[((oc * c + ic) * k + i) * k + j]);
                                }
                            }
                        }
                    }
                    out[((b * o + oc) * oh + y) * ow + xx] = acc as f32;
                }
            }
        }
    }
    out
}

#[test]
fn convolution_matches_direct_loops_at_awkward_sizes() {
    // (batch, channels, height, width, filters, kernel, stride, padding)
    for (n, c, h, w, o, k, s, p) in [
        (1, 1, 1, 1, 1, 1, 1, 0),
        (1, 3, 5, 7, 2, 3, 2, 1),
        (2, 2, 4, 4, 3, 4, 1, 0),
        (3, 1, 6, 5, 1, 3, 3, 2),
        (1, 2, 9, 9, 4, 5, 2, 2),
    ] {
        let src = model(
            &format!("x |> conv2d({o}, kernel: {k}, stride: {s}, padding: {p})"),
            "N, C, H, W",
        );
        let mut l = layer(&src, "m", &[n, c, h, w], false);
        let outs = l.run();
        let wt = l
            .exe
            .read_state(l.params.iter().find(|(_, s)| s.len() == 4).unwrap().0)
            .unwrap()
            .into_f32();
        let bias = l
            .exe
            .read_state(l.params.iter().find(|(_, s)| s.len() == 1).unwrap().0)
            .unwrap()
            .into_f32();
        let want = conv_ref(l.x.as_f32(), n, c, h, w, &wt, &bias, o, k, s, p);
        let got = outs[0].as_f32();
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() < 1e-4,
                "conv {n}x{c}x{h}x{w} k{k} s{s} p{p}: [{i}] {a} vs {b}"
            );
        }
        l.check_gradients(&format!("conv2d k{k} s{s} p{p}"));
    }
}

#[test]
fn pooling_matches_direct_loops_at_awkward_sizes() {
    for (kind, n, c, h, w, k, s, p) in [
        ("max", 1, 1, 3, 3, 3, 1, 0),
        ("max", 2, 3, 5, 7, 2, 2, 1),
        ("avg", 1, 2, 5, 5, 3, 2, 1),
        ("avg", 3, 1, 4, 6, 2, 2, 0),
        ("max", 1, 1, 1, 1, 1, 1, 0),
        // Non-overlapping windows (stride = kernel, no padding) whose last row/column does
        // not fill a window.
        ("max", 2, 3, 5, 7, 2, 2, 0),
        ("avg", 1, 2, 7, 5, 3, 3, 0),
    ] {
        let src = model(
            &format!("x |> {kind}_pool2d({k}, stride: {s}, padding: {p})"),
            "N, C, H, W",
        );
        let mut l = layer(&src, "m", &[n, c, h, w], false);
        let got = l.run()[0].as_f32().to_vec();
        let x = l.x.as_f32();
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (w + 2 * p - k) / s + 1;
        let mut want = Vec::new();
        for b in 0..n {
            for ch in 0..c {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut vals = Vec::new();
                        for i in 0..k {
                            for j in 0..k {
                                let iy = (y * s + i) as isize - p as isize;
                                let ix = (xx * s + j) as isize - p as isize;
                                let inside =
                                    iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w;
                                // Max pooling ignores padding; average pooling counts it as zeros.
                                if inside {
                                    vals.push(
                                        x[((b * c + ch) * h + iy as usize) * w + ix as usize],
                                    );
                                } else if kind == "avg" {
                                    vals.push(0.0);
                                }
                            }
                        }
                        want.push(if kind == "max" {
                            vals.iter().cloned().fold(f32::MIN, f32::max)
                        } else {
                            vals.iter().sum::<f32>() / (k * k) as f32
                        });
                    }
                }
            }
        }
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-5, "{kind} pool [{i}] {a} vs {b}");
        }
        l.check_gradients(&format!("{kind}_pool2d k{k} s{s} p{p}"));
    }
}

#[test]
fn recurrent_layers_have_finite_difference_gradients() {
    for (layer_call, shape) in [
        ("lstm(4)", [2, 3, 5]),
        ("gru(3)", [1, 4, 2]),
        ("rnn(5)", [3, 2, 3]),
        ("lstm(1)", [1, 1, 1]),
        ("gru(2)", [2, 5, 3]),
    ] {
        let src = model(&format!("x |> {layer_call}"), "N, T, F");
        let mut l = layer(&src, "m", &shape, true);
        let out = l.run()[0].clone();
        assert_eq!(
            out.shape[..2],
            shape[..2],
            "{layer_call} keeps batch and time axes"
        );
        l.check_gradients(layer_call);
    }
    // `last` of an LSTM: only the final step's output.
    let src = model("x |> lstm(3) |> last", "N, T, F");
    let mut l = layer(&src, "m", &[2, 4, 2], true);
    assert_eq!(l.run()[0].shape, vec![2, 3]);
    l.check_gradients("lstm |> last");
}

/// `x [B, T, I] @ w [I, N]` at step `t` plus `b`, for batch row `bi`.
fn affine(
    x: &[f32],
    i: usize,
    t_len: usize,
    bi: usize,
    t: usize,
    w: &[f32],
    b: &[f32],
) -> Vec<f64> {
    let n = b.len();
    (0..n)
        .map(|j| {
            let mut acc = f64::from(b[j]);
            for k in 0..i {
                acc += f64::from(x[(bi * t_len + t) * i + k]) * f64::from(w[k * n + j]);
            }
            acc
        })
        .collect()
}

/// `h [H] @ w [H, N]`.
fn times(h: &[f64], w: &[f32], n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| (0..h.len()).map(|k| h[k] * f64::from(w[k * n + j])).sum())
        .collect()
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

#[test]
fn recurrent_layers_compute_their_equations() {
    // Every parameter (biases included) is random, so each term of the equations counts.
    let (bsz, t_len, i_len) = (2usize, 4usize, 3usize);
    for (call, hid) in [("lstm(3)", 3usize), ("gru(2)", 2), ("rnn(4)", 4)] {
        let src = model(&format!("x |> {call}"), "N, T, F");
        let mut l = layer(&src, "m", &[bsz, t_len, i_len], true);
        let got = l.run()[0].as_f32().to_vec();
        let p: Vec<Vec<f32>> = l
            .params
            .iter()
            .map(|(id, _)| l.exe.read_state(*id).unwrap().into_f32())
            .collect();
        let x = l.x.as_f32().to_vec();
        for bi in 0..bsz {
            let mut h = vec![0.0f64; hid];
            let mut c = vec![0.0f64; hid];
            for t in 0..t_len {
                h = match call {
                    // w_x, w_h, b_i, b_f, b_g, b_o; gates input, forget, cell, output.
                    "lstm(3)" => {
                        let bias: Vec<f32> = p[2..6].concat();
                        let zx = affine(&x, i_len, t_len, bi, t, &p[0], &bias);
                        let zh = times(&h, &p[1], 4 * hid);
                        let z: Vec<f64> = zx.iter().zip(&zh).map(|(a, b)| a + b).collect();
                        (0..hid)
                            .map(|j| {
                                let (ig, fg) = (sigmoid(z[j]), sigmoid(z[hid + j]));
                                let (u, og) = (z[2 * hid + j].tanh(), sigmoid(z[3 * hid + j]));
                                c[j] = fg * c[j] + ig * u;
                                og * c[j].tanh()
                            })
                            .collect()
                    }
                    // w_x, w_h, b_x, b_h; gates reset, update, new.
                    "gru(2)" => {
                        let g = affine(&x, i_len, t_len, bi, t, &p[0], &p[2]);
                        let gh: Vec<f64> = times(&h, &p[1], 3 * hid)
                            .iter()
                            .zip(&p[3])
                            .map(|(a, b)| a + f64::from(*b))
                            .collect();
                        (0..hid)
                            .map(|j| {
                                let r = sigmoid(g[j] + gh[j]);
                                let zg = sigmoid(g[hid + j] + gh[hid + j]);
                                let n = (g[2 * hid + j] + r * gh[2 * hid + j]).tanh();
                                (1.0 - zg) * n + zg * h[j]
                            })
                            .collect()
                    }
                    // w_x, w_h, b.
                    _ => {
                        let zx = affine(&x, i_len, t_len, bi, t, &p[0], &p[2]);
                        let zh = times(&h, &p[1], hid);
                        (0..hid).map(|j| (zx[j] + zh[j]).tanh()).collect()
                    }
                };
                for j in 0..hid {
                    let g = got[(bi * t_len + t) * hid + j];
                    assert!(
                        (f64::from(g) - h[j]).abs() < 1e-5,
                        "{call} batch {bi} step {t} unit {j}: {g} vs {}",
                        h[j]
                    );
                }
            }
        }
    }
}

#[test]
fn batch_norm_embedding_and_dense_have_finite_difference_gradients() {
    let mut l = layer(
        &model("x |> batch_norm", "N, C, H, W"),
        "m",
        &[3, 2, 2, 3],
        true,
    );
    // Training mode normalises each channel with the batch's statistics, then scales by gamma
    // and shifts by beta: each channel's output has mean beta and standard deviation |gamma|.
    let out = l.run()[0].as_f32().to_vec();
    let gamma = l.exe.read_state(l.params[0].0).unwrap().into_f32();
    let beta = l.exe.read_state(l.params[1].0).unwrap().into_f32();
    for ch in 0..2 {
        let vals: Vec<f64> = (0..3)
            .flat_map(|b| (0..6).map(move |i| (b, i)))
            .map(|(b, i)| f64::from(out[(b * 2 + ch) * 6 + i]))
            .collect();
        let mean = vals.iter().sum::<f64>() / 18.0;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 18.0).sqrt();
        assert!(
            (mean - f64::from(beta[ch])).abs() < 1e-4,
            "channel {ch} mean {mean}"
        );
        assert!(
            (sd - f64::from(gamma[ch].abs())).abs() < 1e-3,
            "channel {ch} sd {sd}"
        );
    }
    l.check_gradients("batch_norm");
    let mut l = layer(
        &model("x |> dense(3) |> gelu |> dense(2) |> softmax", "N, F"),
        "m",
        &[4, 5],
        true,
    );
    l.check_gradients("dense, gelu, softmax");
    let mut l = layer(
        &model(
            "x |> dense(4) |> leaky_relu(0.1) |> silu |> log_softmax",
            "N, F",
        ),
        "m",
        &[2, 3],
        true,
    );
    l.check_gradients("leaky_relu, silu, log_softmax");
    // Embedding rows picked by integer-valued inputs; the table gets the gradient.
    let mut l = layer(&model("x |> embedding(10, 3)", "N, T"), "m", &[2, 4], true);
    l.x = HostTensor::f32(vec![2, 4], vec![0.0, 3.0, 9.0, 3.0, 5.0, 1.0, 1.0, 7.0]);
    let out = l.run()[0].clone();
    assert_eq!(out.shape, vec![2, 4, 3]);
    let table = l.exe.read_state(l.params[0].0).unwrap().into_f32();
    assert_eq!(&out.as_f32()[3..6], &table[9..12]);
    // Indices are discrete: only the table's gradient is meaningful.
    l.check_param_gradients("embedding");
}

#[test]
fn dropout_is_active_only_while_training() {
    let src = model("x |> dropout(0.5)", "N, F");
    let mut train = layer(&src, "m", &[4, 50], true);
    let t = train.run()[0].as_f32().to_vec();
    let zeros = t.iter().filter(|v| **v == 0.0).count();
    assert!((60..140).contains(&zeros), "{zeros} of 200 dropped");
    // Kept values are scaled by 1 / (1 - rate).
    for (a, b) in t.iter().zip(train.x.as_f32()) {
        assert!(*a == 0.0 || (a - 2.0 * b).abs() < 1e-6);
    }
    let mut eval = layer(&src, "m", &[4, 50], false);
    let e = eval.run()[0].as_f32().to_vec();
    assert_eq!(e, eval.x.as_f32());
}
