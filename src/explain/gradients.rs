//! Integrated gradients: takes a reopened run, the rows to explain and the options, gives each
//! row's attribution to every raw column (a one-hot block and an image's pixels summed into
//! their column; images also keep theirs per pixel) as `attributions.json`, a CSV table, and
//! heat maps for image models.
//!
//! The explained output is the model's probability of the class it predicts for the row (the
//! value, for a regression), as `mlx predict` shows it. An IR function `explain_B(x, mask)`
//! runs the model in evaluation mode and gives that output, `f = Σ_k p_k · mask_k`, and its
//! gradient with respect to the model input `x`, by the IR's reverse-mode autodiff.
//!
//! The baseline `x'` is the all-zeros model input: after `standardize` that is the training
//! mean of every numeric column; a one-hot block of zeros is "no level"; an image of zeros is
//! black after `scale`, the training mean image after `normalize`. The attribution of input
//! value `i` is `(x_i − x'_i) · (1/m) Σ_j ∂f/∂x_i (x' + α_j (x − x'))` with the midpoint rule,
//! `α_j = (j + ½) / m`. Completeness says a row's attributions sum to `f(x) − f(x')`; a row
//! whose sum misses by more than 1e-4 of `|f(x) − f(x')|` is integrated again with twice the
//! steps, up to 4096, and the worst error left is reported.

use super::{Explained, Options, RawColumn, fail, load_rows, raw_columns};
use crate::backend::{Executable, HostTensor};
use crate::diagnostics::Diagnostic;
use crate::ir::build::FnBuilder;
use crate::ir::{self, DType, StateDecl};
use crate::predict::{Failed, Reopened, argmax};
use crate::train::graph::{self, Spec};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// Points (model inputs) per call of the attribution function.
const CHUNK: usize = 128;
/// Points per group of rows integrated together.
const GROUP_POINTS: usize = 8192;
/// Completeness error (relative) under which a row is not integrated again.
const TOLERANCE: f64 = 1e-4;
/// The most steps a row is integrated with.
const MAX_STEPS: usize = 4096;
/// Image rows explained by default.
const IMAGE_ROWS: usize = 8;

/// `explain_B(x, mask) -> out, f, grad`: the shown outputs `[B, K]`, `f = Σ_k out·mask`
/// `[B]`, and `∂(Σ_b f_b)/∂x`, which is each row's own gradient since no evaluation-mode
/// function mixes rows.
pub fn attribution_fn(
    spec: &Spec<'_>,
    states: &mut Vec<StateDecl>,
    batch: usize,
    k: usize,
) -> Result<ir::Function, Diagnostic> {
    let mut b = FnBuilder::new(&format!("explain_{batch}"), states);
    let x = b.input("x", graph::input_shape(spec, batch), DType::F32);
    let mask = b.input("mask", vec![batch, k], DType::F32);
    let out = graph::forward(spec, &mut b, x, batch, false, None)?;
    b.origin = None;
    let shown = graph::shown(spec, &mut b, out, batch);
    let picked = b.mul(shown, mask);
    let f = b.sum(picked, &[1]);
    let total = b.sum_all(f);
    let grads = ir::autodiff::gradients(&mut b, total, &[x]);
    let g = *grads
        .first()
        .ok_or_else(|| Diagnostic::internal("no gradient of the input"))?;
    b.output("out", shown);
    b.output("f", f);
    b.output("grad", g);
    Ok(b.finish())
}

/// The attribution function compiled with the run's weights.
pub struct Attributor {
    exe: Box<dyn Executable>,
    function: usize,
    shape: Vec<usize>,
    row_len: usize,
    k: usize,
}

/// Outputs at some points: shown outputs (`k` a point), `f`, and gradients (`row_len` a point).
pub struct Evaluated {
    pub out: Vec<f32>,
    pub f: Vec<f32>,
    pub grad: Vec<f32>,
}

impl Attributor {
    pub fn new(r: &Reopened, opts: &Options) -> Result<Attributor, Failed> {
        let spec = r.spec(Vec::new(), Vec::new())?;
        let k = spec.dataset.target.kind.classes().unwrap_or(1);
        let mut program = ir::Program::default();
        let f = attribution_fn(&spec, &mut program.states, CHUNK, k).map_err(fail)?;
        program.functions.push(f);
        ir::verify::program(&program).map_err(fail)?;
        let exe = r.compile_program(opts.backend, &program)?;
        let mut shape = graph::input_shape(&spec, CHUNK);
        let row_len = shape[1..].iter().product();
        shape[0] = CHUNK;
        Ok(Attributor {
            exe,
            function: 0,
            shape,
            row_len,
            k,
        })
    }

    /// The outputs at `points` (`row_len` values each) with `masks` (`k` each).
    pub fn eval(&mut self, points: &[f32], masks: &[f32]) -> Result<Evaluated, Diagnostic> {
        let n = points.len() / self.row_len.max(1);
        let mut e = Evaluated {
            out: Vec::with_capacity(n * self.k),
            f: Vec::with_capacity(n),
            grad: Vec::with_capacity(n * self.row_len),
        };
        for start in (0..n).step_by(CHUNK) {
            let rows = (n - start).min(CHUNK);
            let mut x = points[start * self.row_len..(start + rows) * self.row_len].to_vec();
            x.resize(CHUNK * self.row_len, 0.0);
            let mut m = masks[start * self.k..(start + rows) * self.k].to_vec();
            m.resize(CHUNK * self.k, 0.0);
            let o = self
                .exe
                .run(
                    self.function,
                    &[
                        HostTensor::f32(self.shape.clone(), x),
                        HostTensor::f32(vec![CHUNK, self.k], m),
                    ],
                )
                .map_err(|e| e.diagnostic())?;
            let [out, f, grad] = o.as_slice() else {
                return Err(Diagnostic::internal(
                    "the attribution function has 3 outputs",
                ));
            };
            e.out.extend_from_slice(&out.as_f32()[..rows * self.k]);
            e.f.extend_from_slice(&f.as_f32()[..rows]);
            e.grad
                .extend_from_slice(&grad.as_f32()[..rows * self.row_len]);
        }
        Ok(e)
    }
}

/// One row's attributions.
#[derive(Clone, Debug, Serialize)]
pub struct RowAttribution {
    /// The row's index among the explained rows (0-based).
    pub row: usize,
    /// The predicted class name, or the predicted value as text.
    pub prediction: String,
    /// `f(x)`: the probability of the predicted class (or the value).
    pub output: f64,
    /// `f(x')` at the baseline.
    pub baseline_output: f64,
    /// Per raw column, in input order.
    pub attributions: Vec<f64>,
    /// `|Σ attributions − (f(x) − f(x'))|`.
    pub completeness_abs: f64,
    /// The same, relative to `|f(x) − f(x')|`.
    pub completeness_rel: f64,
    pub steps: usize,
    /// Per model-input value of an image column (row-major in the image's shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixels: Option<Vec<f32>>,
}

/// `attributions.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub format: u32,
    pub train: String,
    pub method: &'static str,
    pub output: &'static str,
    pub baseline: &'static str,
    pub rule: &'static str,
    pub steps: usize,
    pub rows_from: String,
    pub columns: Vec<String>,
    pub worst_completeness_rel: f64,
    pub worst_completeness_abs: f64,
    pub rows: Vec<RowAttribution>,
}

/// One row integrated: the attribution of every input value, `f(x)`, `f(x')`, the steps.
#[derive(Clone, Debug)]
pub struct Integrated {
    pub attr: Vec<f64>,
    pub fx: f64,
    pub f0: f64,
    pub steps: usize,
}

/// Integrated gradients of `xs` (rows of `row_len` values) for the classes `classes` (one a
/// row): per row, the attribution of every input value, `f(x)`, `f(x')` and the steps used.
pub fn integrate(
    a: &mut Attributor,
    xs: &[f32],
    classes: &[usize],
    steps: usize,
) -> Result<Vec<Integrated>, Diagnostic> {
    let len = a.row_len.max(1);
    let n = xs.len() / len;
    let mut result: Vec<Option<Integrated>> = vec![None; n];
    let mut todo: Vec<usize> = (0..n).collect();
    let mut m = steps.max(1);
    while !todo.is_empty() {
        let per_row = m + 2;
        let group = (GROUP_POINTS / per_row).max(1);
        let mut again = Vec::new();
        for rows in todo.chunks(group) {
            let mut points = Vec::with_capacity(rows.len() * per_row * len);
            let mut masks = vec![0.0f32; rows.len() * per_row * a.k];
            for (g, &r) in rows.iter().enumerate() {
                let x = &xs[r * len..(r + 1) * len];
                for j in 0..m {
                    let alpha = (j as f32 + 0.5) / m as f32;
                    points.extend(x.iter().map(|v| alpha * v));
                }
                points.extend_from_slice(x);
                points.extend(std::iter::repeat_n(0.0, len));
                for p in 0..per_row {
                    masks[(g * per_row + p) * a.k + classes[r]] = 1.0;
                }
            }
            let e = a.eval(&points, &masks)?;
            for (g, &r) in rows.iter().enumerate() {
                let x = &xs[r * len..(r + 1) * len];
                let base = g * per_row;
                let mut sum = vec![0.0f64; len];
                for j in 0..m {
                    let gr = &e.grad[(base + j) * len..(base + j + 1) * len];
                    for (s, v) in sum.iter_mut().zip(gr) {
                        *s += f64::from(*v);
                    }
                }
                let attr: Vec<f64> = sum
                    .iter()
                    .zip(x)
                    .map(|(s, v)| f64::from(*v) * s / m as f64)
                    .collect();
                let fx = f64::from(e.f[base + m]);
                let f0 = f64::from(e.f[base + m + 1]);
                let (_, rel) = completeness(&attr, fx, f0);
                let done = rel <= TOLERANCE || m >= MAX_STEPS || !rel.is_finite();
                if done {
                    result[r] = Some(Integrated {
                        attr,
                        fx,
                        f0,
                        steps: m,
                    });
                } else {
                    again.push(r);
                }
            }
        }
        todo = again;
        m *= 2;
    }
    result
        .into_iter()
        .map(|r| r.ok_or_else(|| Diagnostic::internal("a row was not integrated")))
        .collect()
}

/// Absolute and relative completeness error of attributions against `f(x) − f(x')`.
pub fn completeness(attr: &[f64], fx: f64, f0: f64) -> (f64, f64) {
    let delta = fx - f0;
    let abs = (attr.iter().sum::<f64>() - delta).abs();
    let rel = if delta == 0.0 {
        if abs == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        abs / delta.abs()
    };
    (abs, rel)
}

/// Sum the per-value attributions of a row into its raw columns.
pub fn per_column(attr: &[f64], columns: &[RawColumn]) -> Vec<f64> {
    columns
        .iter()
        .map(|c| attr[c.offset..c.offset + c.width].iter().sum())
        .collect()
}

pub fn run(r: &Reopened, opts: &Options, out: &Path) -> Result<Explained, Failed> {
    let (_, plan, d) = r.plans()?;
    let rows = load_rows(r, plan, d, opts.input.as_deref())?;
    let pre = r.run.preprocessor().map_err(fail)?;
    let input = r.run.input().map_err(fail)?;
    let columns = raw_columns(&pre);
    let image = columns.iter().any(|c| c.image.is_some());
    let limit = opts
        .rows
        .unwrap_or(if image { IMAGE_ROWS } else { usize::MAX })
        .min(rows.rows.len());
    let explained = super::Rows {
        rows: rows.rows[..limit].to_vec(),
        data: rows.data,
        origin: rows.origin,
    };
    let xs = explained.features(&pre).map_err(fail)?;
    let mut a = Attributor::new(r, opts)?;
    let len = a.row_len.max(1);
    let n = xs.len() / len;
    // The predicted class of every row.
    let first = a.eval(&xs, &vec![0.0; n * a.k]).map_err(fail)?;
    let classifier = input.classes().is_some();
    let classes: Vec<usize> = first
        .out
        .chunks(a.k.max(1))
        .map(|o| if classifier { argmax(o) } else { 0 })
        .collect();
    let steps = opts.steps.max(1);
    let found = integrate(&mut a, &xs, &classes, steps).map_err(fail)?;
    let mut doc_rows = Vec::with_capacity(n);
    for (
        i,
        Integrated {
            attr,
            fx,
            f0,
            steps: m,
        },
    ) in found.into_iter().enumerate()
    {
        let (abs, rel) = completeness(&attr, fx, f0);
        let prediction = match input.classes() {
            Some(names) => names.get(classes[i]).cloned().unwrap_or_default(),
            None => format!("{}", fx as f32),
        };
        let pixels = columns.iter().find(|c| c.image.is_some()).map(|c| {
            attr[c.offset..c.offset + c.width]
                .iter()
                .map(|v| *v as f32)
                .collect()
        });
        doc_rows.push(RowAttribution {
            row: i,
            prediction,
            output: fx,
            baseline_output: f0,
            attributions: per_column(&attr, &columns),
            completeness_abs: abs,
            completeness_rel: rel,
            steps: m,
            pixels,
        });
    }
    let worst = |f: fn(&RowAttribution) -> f64| doc_rows.iter().map(f).fold(0.0, f64::max);
    let doc = Document {
        format: crate::rundir::FORMAT,
        train: plan.name.clone(),
        method: "integrated_gradients",
        output: if classifier {
            "the probability of the predicted class"
        } else {
            "the predicted value"
        },
        baseline: "the all-zeros model input (after preprocessing: the training mean of standardized columns, no level of one-hot columns)",
        rule: "midpoint",
        steps,
        rows_from: explained.origin.clone(),
        columns: columns.iter().map(|c| c.name.clone()).collect(),
        worst_completeness_rel: worst(|r| r.completeness_rel),
        worst_completeness_abs: worst(|r| r.completeness_abs),
        rows: doc_rows,
    };
    let json = serde_json::to_string(&doc)
        .map_err(|e| fail(Diagnostic::internal(format!("attributions.json: {e}"))))?;
    let mut files = vec![super::write(
        out,
        "attributions.json",
        format!("{json}\n").as_bytes(),
    )?];
    if let Some(c) = columns.iter().find(|c| c.image.is_some()) {
        let shape = c.image.clone().unwrap_or_default();
        for row in &doc.rows {
            let x = &xs[row.row * len + c.offset..row.row * len + c.offset + c.width];
            let px = row.pixels.as_deref().unwrap_or_default();
            let png = super::draw::heat_map_png(&shape, x, px).map_err(fail)?;
            files.push(super::write(
                out,
                &format!("heatmap_{}.png", row.row),
                &png,
            )?);
        }
    }
    let summary = format!(
        "integrated gradients of {} on {n} rows of {}: baseline = all-zeros model input, midpoint rule from {steps} steps; completeness (attributions sum to f(x) − f(baseline)) worst error {:.2e} relative, {:.2e} absolute",
        doc.output, explained.origin, doc.worst_completeness_rel, doc.worst_completeness_abs
    );
    Ok(Explained {
        table: if image {
            String::new()
        } else {
            csv_table(&doc)
        },
        summary,
        files,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV for stdout: a line per row, a column per raw column.
pub fn csv_table(doc: &Document) -> String {
    let mut t = String::from("row,prediction,output,baseline_output");
    for c in &doc.columns {
        t.push(',');
        t.push_str(&csv_field(c));
    }
    t.push('\n');
    for r in &doc.rows {
        let _ = write!(
            t,
            "{},{},{:.6},{:.6}",
            r.row,
            csv_field(&r.prediction),
            r.output,
            r.baseline_output
        );
        for v in &r.attributions {
            let _ = write!(t, ",{v:.6}");
        }
        t.push('\n');
    }
    t
}
