//! The run-time side of trains with objectives: one training step runs every objective's
//! function in the order written (each its own forward, backward and update), the host draws
//! their noise from named streams, evaluation reports each objective's mean loss, and
//! `samples` become image grids (`samples/epoch-N.png`) and `samples.safetensors`.

use super::graph::{Built, MultiFns, noise_shapes};
use crate::backend::{Executable, HostTensor};
use crate::check::hir::{self, MultiPlan, TrainPlan};
use crate::data::{Data, Preprocessor};
use crate::diagnostics::Diagnostic;
use crate::rundir::{self, NamedTensor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The directory of the epoch image grids, inside the run directory.
pub const SAMPLES_DIR: &str = "samples";
/// The last epoch's samples, tensor `samples`.
pub const SAMPLES_FILE: &str = "samples.safetensors";

/// A standard-normal tensor of `shape` from the stream `name` (deterministic in the seed and
/// the name: the same on every back end and thread count).
pub fn noise(seed: u64, name: &str, shape: &[usize]) -> HostTensor {
    let mut r = crate::rng::Rng::new(seed, name);
    let n: usize = shape.iter().product();
    HostTensor::f32(shape.to_vec(), (0..n).map(|_| r.normal() as f32).collect())
}

fn multi_of<'a>(
    plan: &'a TrainPlan,
    built: &'a Built,
) -> Result<(&'a MultiPlan, &'a MultiFns), Diagnostic> {
    match (&plan.multi, &built.multi) {
        (Some(m), Some(f)) => Ok((m, f)),
        _ => Err(Diagnostic::internal(
            "a train without objectives run as one",
        )),
    }
}

/// Adam's bias corrections at step `t` (1-based) for an optimizer (1 for the others).
fn bias_corrections(opt: &hir::Optimizer, t: u64) -> (f32, f32) {
    let (b1, b2) = match opt {
        hir::Optimizer::Adam { beta1, beta2, .. } | hir::Optimizer::AdamW { beta1, beta2, .. } => {
            (*beta1, *beta2)
        }
        _ => (0.0, 0.0),
    };
    let t = t as i32;
    let bc = |b: f64| {
        if b > 0.0 {
            (1.0 / (1.0 - b.powi(t))) as f32
        } else {
            1.0
        }
    };
    (bc(b1), bc(b2))
}

/// One batch: every objective in order. Returns each objective's loss.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    exe: &mut dyn Executable,
    built: &Built,
    plan: &TrainPlan,
    x: &HostTensor,
    y: &HostTensor,
    step: u64,
    epoch: usize,
    lr0: &[f64],
    scheduler: &super::schedule::Scheduler,
) -> Result<Vec<f32>, Diagnostic> {
    let (multi, fns) = multi_of(plan, built)?;
    let rows = x.shape[0];
    let mut losses = Vec::with_capacity(multi.objectives.len());
    for (k, o) in multi.objectives.iter().enumerate() {
        let f = *fns.train[k].get(&rows).ok_or_else(|| {
            Diagnostic::internal(format!("no training function for batch {rows}"))
        })?;
        let lr = scheduler.rate(&o.schedule, lr0[k], epoch, plan.epochs);
        let (bc1, bc2) = bias_corrections(&o.optimizer, step + 1);
        let mut inputs = vec![
            x.clone(),
            y.clone(),
            HostTensor::scalar(lr as f32),
            HostTensor::scalar_i32(step as i32),
            HostTensor::scalar(bc1),
            HostTensor::scalar(bc2),
        ];
        for (i, s) in noise_shapes(&o.noise, rows).iter().enumerate() {
            inputs.push(noise(
                plan.seed,
                &format!("noise/{}/{i}/step-{step}", o.name),
                s,
            ));
        }
        let out = exe.run(f, &inputs).map_err(|e| e.diagnostic())?;
        losses.push(out[0].item());
    }
    Ok(losses)
}

/// The learning rates of the objectives in `epoch`.
pub fn rates(
    plan: &TrainPlan,
    lr0: &[f64],
    epoch: usize,
    s: &super::schedule::Scheduler,
) -> Vec<f64> {
    plan.multi.as_ref().map_or_else(Vec::new, |m| {
        m.objectives
            .iter()
            .zip(lr0)
            .map(|(o, lr)| s.rate(&o.schedule, *lr, epoch, plan.epochs))
            .collect()
    })
}

/// Each objective's mean loss over `rows` in evaluation mode (no update), by objective name.
/// Noise comes from streams named by the batch, so every epoch sees the same draws.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    exe: &mut dyn Executable,
    built: &Built,
    plan: &TrainPlan,
    dset: &hir::DatasetPlan,
    pre: &Preprocessor,
    data: &Data,
    rows: &[usize],
    split: &str,
) -> Result<BTreeMap<String, Value>, Diagnostic> {
    let (multi, fns) = multi_of(plan, built)?;
    let mut figures = BTreeMap::new();
    if rows.is_empty() {
        return Ok(figures);
    }
    let mut sums = vec![0.0f64; multi.objectives.len()];
    for (bi, chunk) in rows.chunks(plan.batch).enumerate() {
        let (x, y) = super::run::batch_inputs(dset, pre, data, chunk)?;
        for (k, o) in multi.objectives.iter().enumerate() {
            let f = *fns.eval[k].get(&chunk.len()).ok_or_else(|| {
                Diagnostic::internal(format!("no evaluation function for batch {}", chunk.len()))
            })?;
            let mut inputs = vec![x.clone(), y.clone()];
            for (i, s) in noise_shapes(&o.noise, chunk.len()).iter().enumerate() {
                inputs.push(noise(
                    plan.seed,
                    &format!("noise/{}/{i}/{split}-{bi}", o.name),
                    s,
                ));
            }
            let out = exe.run(f, &inputs).map_err(|e| e.diagnostic())?;
            sums[k] += f64::from(out[0].item()) * chunk.len() as f64;
        }
    }
    for (o, s) in multi.objectives.iter().zip(sums) {
        figures.insert(
            o.name.clone(),
            super::run::json_number(s / rows.len() as f64),
        );
    }
    Ok(figures)
}

/// Evaluate `samples`: the same draws after every epoch (stream `samples/<position>`), so the
/// grids show how the model changed.
pub fn samples(
    exe: &mut dyn Executable,
    built: &Built,
    plan: &TrainPlan,
) -> Result<Option<NamedTensor>, Diagnostic> {
    let (multi, fns) = multi_of(plan, built)?;
    let (Some(s), Some(f)) = (&multi.samples, fns.samples) else {
        return Ok(None);
    };
    let inputs: Vec<HostTensor> = noise_shapes(&s.noise, 1)
        .iter()
        .enumerate()
        .map(|(i, sh)| noise(plan.seed, &format!("samples/{i}"), sh))
        .collect();
    let out = exe.run(f, &inputs).map_err(|e| e.diagnostic())?;
    let t = out
        .into_iter()
        .next()
        .ok_or_else(|| Diagnostic::internal("samples without a value"))?;
    Ok(Some(NamedTensor {
        name: "samples".into(),
        shape: t.shape.clone(),
        data: t.into_f32(),
    }))
}

/// Write `samples/epoch-N.png` when the samples are a batch of images (`[N, H, W]`,
/// `[N, 1, H, W]` or `[N, 3, H, W]`): a near-square grid, each image scaled from its batch's
/// value range to 0..255. Other shapes are kept in `samples.safetensors` only.
pub fn write_grid(dir: &Path, epoch: usize, t: &NamedTensor) -> Result<(), Diagnostic> {
    let Some(png) = grid_png(&t.shape, &t.data)? else {
        return Ok(());
    };
    let d = dir.join(SAMPLES_DIR);
    std::fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
    let path = d.join(format!("epoch-{epoch}.png"));
    rundir::write_atomic(&path, &png).map_err(|e| io(&path, e))
}

pub fn write_last(dir: &Path, t: &NamedTensor, train: &str) -> Result<(), Diagnostic> {
    let path = dir.join(SAMPLES_FILE);
    rundir::save_safetensors(
        &path,
        std::slice::from_ref(t),
        &[("train".into(), train.to_string())],
    )
    .map_err(|e| io(&path, e))
}

fn io(path: &Path, e: std::io::Error) -> Diagnostic {
    Diagnostic::error(
        "mlx::run::io",
        format!(
            "cannot write {}: {}",
            path.display(),
            crate::data::csv::io_message(&e)
        ),
    )
}

/// The PNG bytes of an image grid, or `None` when `shape` is not a batch of images.
pub fn grid_png(shape: &[usize], data: &[f32]) -> Result<Option<Vec<u8>>, Diagnostic> {
    let (n, c, h, w) = match shape {
        [n, h, w] => (*n, 1, *h, *w),
        [n, c, h, w] if *c == 1 || *c == 3 => (*n, *c, *h, *w),
        _ => return Ok(None),
    };
    if n == 0 || h == 0 || w == 0 || n * c * h * w != data.len() || h * w > 1 << 20 {
        return Ok(None);
    }
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let gap = 2usize;
    let (lo, hi) = data
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let gw = (cols * (w + gap) + gap) as u32;
    let gh = (rows * (h + gap) + gap) as u32;
    let mut img = image::RgbImage::from_pixel(gw, gh, image::Rgb([255, 255, 255]));
    let plane = h * w;
    for i in 0..n {
        let (r, q) = (i / cols, i % cols);
        let (ox, oy) = (gap + q * (w + gap), gap + r * (h + gap));
        for yy in 0..h {
            for xx in 0..w {
                let px = |ch: usize| -> u8 {
                    let v = data[i * c * plane + ch * plane + yy * w + xx];
                    let v = if v.is_finite() { v } else { lo };
                    (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8
                };
                let rgb = if c == 3 {
                    [px(0), px(1), px(2)]
                } else {
                    let g = px(0);
                    [g, g, g]
                };
                img.put_pixel((ox + xx) as u32, (oy + yy) as u32, image::Rgb(rgb));
            }
        }
    }
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| Diagnostic::internal(format!("encoding the samples grid failed: {e}")))?;
    Ok(Some(bytes))
}
