//! The fitted preprocessing as ONNX operators: one graph input per raw column (numbers
//! `[N, 1]` float, categories `[N, 1]` string, images `[N, ...shape]` float of raw pixel
//! values), each feature's steps with the statistics of the run, in double precision as mlx
//! computes them, and the features concatenated and cast to the model's float input.
//!
//! Categories map to codes with `ai.onnx.ml.CategoryMapper` (levels to their position, the
//! missing tokens to -2, anything else to -1), so a level unseen in training encodes as all
//! zeros (one-hot) or -1 (ordinal), as in mlx. A missing value that no step fills becomes NaN,
//! and so does the row's output: mlx answers no prediction for such a row.

use super::builder::{self, Builder, Dim};
use super::proto::{ValueInfo, dtype};
use crate::data::preprocess::{FeatureKind, Fill, FittedFeature, FittedStep, Preprocessor};
use crate::diagnostics::Diagnostic;

/// Code of a missing value before any fill.
const MISSING: i64 = -2;

/// What the preprocessing gives the rest of the graph.
pub struct Prepared {
    /// The graph inputs.
    pub inputs: Vec<ValueInfo>,
    /// The model's input `[N, feature_shape...]` (float).
    pub x: String,
    /// `[N, 1]` bool: the rows that have no prediction (a value missing after every step).
    pub unusable: String,
}

pub fn preprocess(
    b: &mut Builder,
    p: &Preprocessor,
    missing: &[String],
    feature_shape: &[usize],
) -> Result<Prepared, Diagnostic> {
    let mut inputs: Vec<ValueInfo> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    // Per model-input value: 1 where a missing value means no prediction, 0 where the feature
    // keeps it missing for the model (`keep_missing`: a tree model routes it).
    let mut counted: Vec<f32> = Vec::new();
    for f in &p.features {
        let keeps = f.steps.contains(&FittedStep::KeepMissing);
        counted.extend(std::iter::repeat_n(if keeps { 0.0 } else { 1.0 }, f.width));
        let column = f.column.as_str();
        let (ty, dims) = match &f.kind {
            // Doubles, as mlx parses a number: a value rounded to single precision before
            // its preprocessing can land on the other side of a tree's threshold.
            FeatureKind::Numeric => (dtype::DOUBLE, vec![Dim::Batch(1), Dim::Fixed(1)]),
            FeatureKind::Category => (dtype::STRING, vec![Dim::Batch(1), Dim::Fixed(1)]),
            FeatureKind::Tensor { shape } => {
                let mut d = vec![Dim::Batch(1)];
                d.extend(shape.iter().map(|s| Dim::Fixed(*s)));
                (dtype::FLOAT, d)
            }
        };
        if !inputs.iter().any(|i| i.name == column) {
            inputs.push(builder::value_info(column, ty, &dims));
        }
        if b.rows_from.is_none() {
            b.rows_from = Some(column.to_string());
        }
        let part = match &f.kind {
            FeatureKind::Numeric | FeatureKind::Tensor { .. } => {
                let x = b.op(
                    "Cast",
                    &[column],
                    vec![builder::int("to", dtype::DOUBLE.into())],
                );
                let x = numeric(b, f, &f.steps, x)?;
                b.op("Flatten", &[&x], vec![builder::int("axis", 1)])
            }
            FeatureKind::Category => category(b, f, missing)?,
        };
        parts.push(part);
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let all = match refs.as_slice() {
        [one] => one.to_string(),
        _ => b.op("Concat", &refs, vec![builder::int("axis", 1)]),
    };
    let x = b.op(
        "Cast",
        &[&all],
        vec![builder::int("to", dtype::FLOAT.into())],
    );
    // Marked here rather than left to NaN's way through the model: runtimes differ on
    // `Max(NaN, 0)` (a ReLU), and mlx gives such rows no prediction whatever the model does.
    let nan = b.op("IsNaN", &[&x], vec![]);
    let nan = b.op(
        "Cast",
        &[&nan],
        vec![builder::int("to", dtype::FLOAT.into())],
    );
    let nan = if counted.iter().all(|c| *c == 1.0) {
        nan
    } else {
        let mask = b.f32s(&[counted.len()], &counted);
        b.op("Mul", &[&nan, &mask], vec![])
    };
    let any = b.op(
        "ReduceMax",
        &[&nan],
        vec![builder::ints("axes", &[1]), builder::int("keepdims", 1)],
    );
    let zero = b.f32s(&[], &[0.0]);
    let unusable = b.op("Greater", &[&any, &zero], vec![]);
    let mut dims = vec![Dim::Batch(1)];
    dims.extend(feature_shape.iter().map(|s| Dim::Fixed(*s)));
    let shape = b.shape(&dims);
    Ok(Prepared {
        inputs,
        x: b.op("Reshape", &[&x, &shape], vec![]),
        unusable,
    })
}

fn unsupported(f: &FittedFeature, step: &FittedStep) -> Diagnostic {
    Diagnostic::error(
        super::model::UNSUPPORTED,
        format!(
            "the preprocessing of `{}` cannot be exported to ONNX: the step {step:?} does not apply to its values",
            f.column
        ),
    )
}

/// Numeric steps on `x` (double), NaN passing through every step but an impute.
fn numeric(
    b: &mut Builder,
    f: &FittedFeature,
    steps: &[FittedStep],
    mut x: String,
) -> Result<String, Diagnostic> {
    use FittedStep as F;
    for step in steps {
        x = match step {
            F::ImputeMean { value }
            | F::ImputeMedian { value }
            | F::ImputeMode {
                value: Fill::Number(value),
            }
            | F::ImputeConstant {
                value: Fill::Number(value),
            } => {
                let nan = is_nan(b, &x);
                let v = b.f64s(&[], &[*value]);
                b.op("Where", &[&nan, &v, &x], vec![])
            }
            F::ImputeMode { .. } | F::ImputeConstant { .. } | F::DropMissing | F::KeepMissing => x,
            F::Standardize { mean, std } | F::Normalize { mean, std } => affine(b, &x, *mean, *std),
            F::RobustScale { median, iqr } => affine(b, &x, *median, *iqr),
            F::MinMax { min, max } => {
                if max <= min {
                    let zero = b.f64s(&[], &[0.0]);
                    b.op("Mul", &[&x, &zero], vec![])
                } else {
                    affine(b, &x, *min, max - min)
                }
            }
            F::Scale { factor } => {
                let k = b.f64s(&[], &[*factor]);
                b.op("Mul", &[&x, &k], vec![])
            }
            F::Log1p => {
                let one = b.f64s(&[], &[1.0]);
                let y = b.op("Add", &[&x, &one], vec![]);
                b.op("Log", &[&y], vec![])
            }
            F::Clip { lo, hi } | F::Winsorize { lo, hi, .. } => {
                let (l, h) = (b.f64s(&[], &[*lo]), b.f64s(&[], &[*hi]));
                let up = b.op("Max", &[&x, &l], vec![]);
                let clipped = b.op("Min", &[&up, &h], vec![]);
                let nan = is_nan(b, &x);
                b.op("Where", &[&nan, &x, &clipped], vec![])
            }
            F::OneHot { .. } | F::Ordinal { .. } => return Err(unsupported(f, step)),
        };
    }
    Ok(x)
}

/// Where `x` (double) is NaN, tested in single precision: a cast keeps NaN and makes no new
/// one, and `IsNaN` on doubles is not implemented by every runtime (tract's takes f16 and f32,
/// and it folds `x == x` to true).
fn is_nan(b: &mut Builder, x: &str) -> String {
    let single = b.op("Cast", &[x], vec![builder::int("to", dtype::FLOAT.into())]);
    b.op("IsNaN", &[&single], vec![])
}

/// `(x - shift) / div`.
fn affine(b: &mut Builder, x: &str, shift: f64, div: f64) -> String {
    let s = b.f64s(&[], &[shift]);
    let d = b.f64s(&[], &[div]);
    let y = b.op("Sub", &[x, &s], vec![]);
    b.op("Div", &[&y, &d], vec![])
}

/// A category column `[N, 1]` (string) to its encoding `[N, width]` (double).
fn category(b: &mut Builder, f: &FittedFeature, missing: &[String]) -> Result<String, Diagnostic> {
    let column = f.column.as_str();
    let at = f
        .steps
        .iter()
        .position(|s| matches!(s, FittedStep::OneHot { .. } | FittedStep::Ordinal { .. }));
    let Some(at) = at else {
        return Err(Diagnostic::error(
            super::model::UNSUPPORTED,
            format!("the category `{column}` has no encoding step (one_hot or ordinal) to export"),
        ));
    };
    let mut fill: Option<&str> = None;
    for s in &f.steps[..at] {
        match s {
            FittedStep::ImputeMode {
                value: Fill::Text(t),
            }
            | FittedStep::ImputeConstant {
                value: Fill::Text(t),
            } => fill = fill.or(Some(t.as_str())),
            FittedStep::DropMissing
            | FittedStep::ImputeMode { .. }
            | FittedStep::ImputeConstant { .. } => {}
            other => return Err(unsupported(f, other)),
        }
    }
    // Each level's code: its position among the encoded levels, -1 when not encoded.
    let (levels, codes, width): (Vec<String>, Vec<i64>, usize) = match &f.steps[at] {
        FittedStep::OneHot { levels, fitted } => {
            let (l, c): (Vec<String>, Vec<i64>) = levels
                .iter()
                .enumerate()
                .filter(|(_, l)| fitted.contains(l))
                .map(|(i, l)| (l.clone(), i as i64))
                .unzip();
            (l, c, levels.len())
        }
        FittedStep::Ordinal { levels } => (levels.clone(), (0..levels.len() as i64).collect(), 1),
        _ => return Err(Diagnostic::internal("an encoding step that is not one")),
    };
    let fill_code = fill.map(|t| levels.iter().position(|l| l == t).map_or(-1, |i| codes[i]));
    let mut strings = levels.clone();
    let mut ints = codes.clone();
    for t in std::iter::once("").chain(missing.iter().map(String::as_str)) {
        if !strings.iter().any(|s| s == t) {
            strings.push(t.to_string());
            ints.push(MISSING);
        }
    }
    let code = b.fresh("codes");
    b.op_into(
        "CategoryMapper",
        "ai.onnx.ml",
        &[column],
        vec![
            builder::strings("cats_strings", &strings),
            builder::ints("cats_int64s", &ints),
            builder::int("default_int64", -1),
        ],
        &code,
    );
    let minus2 = b.i64s(&[], &[MISSING]);
    let is_missing = b.op("Equal", &[&code, &minus2], vec![]);
    let code = match fill_code {
        Some(fc) => {
            let fc = b.i64s(&[], &[fc]);
            b.op("Where", &[&is_missing, &fc, &code], vec![])
        }
        None => code,
    };
    let encoded = match &f.steps[at] {
        FittedStep::OneHot { .. } => {
            let range: Vec<i64> = (0..width as i64).collect();
            let range = b.i64s(&[width], &range);
            let hot = b.op("Equal", &[&code, &range], vec![]);
            b.op(
                "Cast",
                &[&hot],
                vec![builder::int("to", dtype::DOUBLE.into())],
            )
        }
        _ => {
            let v = b.op(
                "Cast",
                &[&code],
                vec![builder::int("to", dtype::DOUBLE.into())],
            );
            numeric(b, f, &f.steps[at + 1..], v)?
        }
    };
    Ok(if fill_code.is_some() {
        encoded
    } else {
        // A missing value nothing fills: no prediction for the row (NaN), as in mlx.
        let nan = b.f64s(&[], &[f64::NAN]);
        b.op("Where", &[&is_missing, &nan, &encoded], vec![])
    })
}
