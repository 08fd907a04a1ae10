//! Applying a fitted `Preprocessor`: takes loaded rows, gives the model-input values (f32,
//! row-major, features concatenated in plan order) and the prediction rows whose category
//! levels were never seen in training. Image bytes go through a 256-entry lookup table.

use super::error::{COLUMN_MISSING, DataError, VALUE};
use super::load::{Column, Data, MISSING};
use super::preprocess::{FeatureKind, Fill, FittedFeature, FittedStep, Preprocessor};
use std::collections::HashMap;

/// One step on one value; `NaN` is a missing value and passes through every step but an
/// impute. `Err(x)`: `log1p` of `x` below -1.
pub(crate) fn apply(step: &FittedStep, x: f64) -> Result<f64, f64> {
    use FittedStep as F;
    Ok(match step {
        F::ImputeMean { value } | F::ImputeMedian { value } => {
            if x.is_nan() {
                *value
            } else {
                x
            }
        }
        F::ImputeMode { value } | F::ImputeConstant { value } => match value {
            Fill::Number(v) if x.is_nan() => *v,
            _ => x,
        },
        F::DropMissing | F::KeepMissing | F::OneHot { .. } | F::Ordinal { .. } => x,
        F::Standardize { mean, std } | F::Normalize { mean, std } => (x - mean) / std,
        F::MinMax { min, max } => {
            if x.is_nan() || max <= min {
                if x.is_nan() { x } else { 0.0 }
            } else {
                (x - min) / (max - min)
            }
        }
        F::RobustScale { median, iqr } => (x - median) / iqr,
        F::Scale { factor } => x * factor,
        F::Log1p => {
            if x < -1.0 {
                return Err(x);
            }
            x.ln_1p()
        }
        F::Clip { lo, hi } | F::Winsorize { lo, hi, .. } => {
            if x.is_nan() {
                x
            } else {
                x.max(*lo).min(*hi)
            }
        }
    })
}

fn apply_all(steps: &[FittedStep], mut x: f64) -> Result<f64, f64> {
    for s in steps {
        x = apply(s, x)?;
    }
    Ok(x)
}

pub(crate) fn log1p_error(column: &str, x: f64, data: &Data, row: usize) -> DataError {
    let (path, line) = data.origin(row);
    DataError::new(
        VALUE,
        format!("`log1p` of {x} in column `{column}`: it needs values of at least -1"),
    )
    .at(path, Some(line))
    .with_help("clip or shift the values first, e.g. `clip(0, 1e9) |> log1p`")
}

fn not_finite(column: &str, x: f64, data: &Data, row: usize) -> DataError {
    let (path, line) = data.origin(row);
    let why = if x.is_nan() {
        "a missing value that no step fills in"
    } else {
        "an infinite value"
    };
    DataError::new(
        VALUE,
        format!("column `{column}` has {why} after preprocessing"),
    )
    .at(path, Some(line))
    .with_help("impute missing values (`impute(median)`) or drop such rows (`drop_missing`)")
}

/// How a category level encodes.
#[derive(Clone, Copy)]
enum Enc {
    /// One-hot position (`None`: all zeros).
    Hot(Option<usize>),
    /// Ordinal value, before the steps after `ordinal`.
    Ord(f64),
    Missing,
}

type Encode<'a> = Box<dyn Fn(&str) -> Enc + 'a>;

enum Encoder<'a> {
    Numeric {
        xs: &'a [f64],
        steps: &'a [FittedStep],
    },
    Category {
        codes: &'a [u32],
        /// Per data code.
        table: Vec<Enc>,
        missing: Enc,
        /// Steps after `ordinal`.
        post: &'a [FittedStep],
        /// Per data code: a level of the fitted vocabulary.
        known: Vec<bool>,
        levels: &'a [String],
        /// One-hot block width.
        width: usize,
    },
    Image {
        size: usize,
        pixels: &'a [u8],
        lut: Box<[f32; 256]>,
        all_finite: bool,
    },
}

impl<'a> Encoder<'a> {
    fn new(f: &'a FittedFeature, data: &'a Data) -> Result<Encoder<'a>, DataError> {
        let col = data.column(&f.column).ok_or_else(|| {
            DataError::new(
                COLUMN_MISSING,
                format!("the data has no feature column `{}`", f.column),
            )
        })?;
        Ok(match (&f.kind, col) {
            (FeatureKind::Numeric, Column::Numeric(xs)) => Encoder::Numeric {
                xs,
                steps: &f.steps,
            },
            (FeatureKind::Category, Column::Category { codes, levels }) => {
                let at = f
                    .steps
                    .iter()
                    .position(|s| {
                        matches!(s, FittedStep::OneHot { .. } | FittedStep::Ordinal { .. })
                    })
                    .unwrap_or(f.steps.len());
                let fill = f.steps[..at].iter().find_map(|s| match s {
                    FittedStep::ImputeMode {
                        value: Fill::Text(t),
                    }
                    | FittedStep::ImputeConstant {
                        value: Fill::Text(t),
                    } => Some(t.as_str()),
                    _ => None,
                });
                let (encode, vocabulary): (Encode<'_>, Vec<&String>) = match f.steps.get(at) {
                    Some(FittedStep::OneHot {
                        levels: block,
                        fitted,
                    }) => {
                        let pos: HashMap<&str, usize> = block
                            .iter()
                            .enumerate()
                            .filter(|(_, l)| fitted.contains(l))
                            .map(|(i, l)| (l.as_str(), i))
                            .collect();
                        (
                            Box::new(move |l: &str| Enc::Hot(pos.get(l).copied())),
                            fitted.iter().collect(),
                        )
                    }
                    Some(FittedStep::Ordinal { levels: order }) => {
                        let pos: HashMap<&str, usize> = order
                            .iter()
                            .enumerate()
                            .map(|(i, l)| (l.as_str(), i))
                            .collect();
                        (
                            Box::new(move |l: &str| {
                                Enc::Ord(pos.get(l).map_or(-1.0, |i| *i as f64))
                            }),
                            order.iter().collect(),
                        )
                    }
                    _ => (Box::new(|_: &str| Enc::Missing), Vec::new()),
                };
                Encoder::Category {
                    codes,
                    table: levels.iter().map(|l| encode(l)).collect(),
                    missing: fill.map_or(Enc::Missing, &encode),
                    post: f.steps.get(at + 1..).unwrap_or(&[]),
                    known: levels.iter().map(|l| vocabulary.contains(&l)).collect(),
                    levels,
                    width: f.width,
                }
            }
            (FeatureKind::Tensor { .. }, Column::Image { size, pixels }) if *size == f.width => {
                let mut lut = Box::new([0f32; 256]);
                for (b, v) in lut.iter_mut().enumerate() {
                    *v = apply_all(&f.steps, b as f64).map_or(f32::NAN, |x| x as f32);
                }
                Encoder::Image {
                    size: *size,
                    pixels,
                    all_finite: lut.iter().all(|v| v.is_finite()),
                    lut,
                }
            }
            _ => {
                return Err(DataError::new(
                    VALUE,
                    format!(
                        "the column `{}` does not have the type its statistics were fitted on",
                        f.column
                    ),
                ));
            }
        })
    }

    fn write(
        &self,
        column: &str,
        data: &Data,
        row: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), DataError> {
        let finite = |x: f64| -> Result<f32, DataError> {
            let y = x as f32;
            if y.is_finite() {
                Ok(y)
            } else {
                Err(not_finite(column, x, data, row))
            }
        };
        match self {
            Encoder::Numeric { xs, steps } => {
                let x = apply_all(steps, xs[row]).map_err(|x| log1p_error(column, x, data, row))?;
                // `keep_missing`: NaN goes to the model (a tree routes it).
                if x.is_nan() && steps.contains(&FittedStep::KeepMissing) {
                    out.push(f32::NAN);
                } else {
                    out.push(finite(x)?);
                }
            }
            Encoder::Category {
                codes,
                table,
                missing,
                post,
                width,
                ..
            } => {
                let c = codes[row];
                let enc = if c == MISSING {
                    *missing
                } else {
                    table[c as usize]
                };
                match enc {
                    Enc::Hot(pos) => {
                        let start = out.len();
                        out.resize(start + width, 0.0);
                        if let Some(p) = pos.filter(|p| *p < *width) {
                            out[start + p] = 1.0;
                        }
                    }
                    Enc::Ord(v) => {
                        let x =
                            apply_all(post, v).map_err(|x| log1p_error(column, x, data, row))?;
                        out.push(finite(x)?);
                    }
                    Enc::Missing => return Err(not_finite(column, f64::NAN, data, row)),
                }
            }
            Encoder::Image {
                size,
                pixels,
                lut,
                all_finite,
            } => {
                let px = &pixels[row * size..(row + 1) * size];
                if !all_finite && let Some(p) = px.iter().find(|p| !lut[**p as usize].is_finite()) {
                    return Err(not_finite(column, f64::from(lut[*p as usize]), data, row));
                }
                out.extend(px.iter().map(|p| lut[*p as usize]));
            }
        }
        Ok(())
    }
}

impl Preprocessor {
    /// The model-input values of `rows`, row-major, appended to `out` (`rows.len() * width()`).
    /// Unusable prediction rows are filled with NaN.
    pub fn features(
        &self,
        data: &Data,
        rows: &[usize],
        out: &mut Vec<f32>,
    ) -> Result<(), DataError> {
        let encoders = self
            .features
            .iter()
            .map(|f| Encoder::new(f, data))
            .collect::<Result<Vec<_>, _>>()?;
        let width = self.width();
        out.reserve(rows.len() * width);
        for &r in rows {
            if data.is_unusable(r) {
                out.resize(out.len() + width, f32::NAN);
                continue;
            }
            for (f, e) in self.features.iter().zip(&encoders) {
                e.write(&f.column, data, r, out)?;
            }
        }
        Ok(())
    }

    /// Every category value (among `rows`) whose level was never seen in training: its row,
    /// column and level, in row order.
    pub fn unseen(&self, data: &Data, rows: &[usize]) -> Vec<(usize, String, String)> {
        let encoders: Vec<(&str, Encoder<'_>)> = self
            .features
            .iter()
            .filter_map(|f| Encoder::new(f, data).ok().map(|e| (f.column.as_str(), e)))
            .collect();
        let mut found = Vec::new();
        for &r in rows {
            for (column, e) in &encoders {
                if let Encoder::Category {
                    codes,
                    known,
                    levels,
                    ..
                } = e
                {
                    let c = codes[r];
                    if c != MISSING && !known[c as usize] {
                        found.push((r, column.to_string(), levels[c as usize].clone()));
                    }
                }
            }
        }
        found
    }

    /// Rows (among `rows`) with a category level never seen in training, each with a readable
    /// description: `island = "Atlantis"`.
    pub fn unseen_levels(&self, data: &Data, rows: &[usize]) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = Vec::new();
        for (r, column, level) in self.unseen(data, rows) {
            let what = format!("{column} = {level:?}");
            match out.last_mut() {
                Some((last, text)) if *last == r => {
                    text.push_str(", ");
                    text.push_str(&what);
                }
                _ => out.push((r, what)),
            }
        }
        out
    }
}
