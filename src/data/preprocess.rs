//! Fitting preprocessing: takes a dataset plan, the loaded pool and the training rows, gives a
//! `Preprocessor` holding every fitted statistic per feature (in plan order), fitted on the
//! training rows only, step after step. It serialises to `preprocess.json`.

use super::error::{COLUMN_MISSING, DataError, MALFORMED, SPLIT, VALUE};
use super::load::{Column, Data, MISSING};
use super::stats;
use crate::check::hir::{ColumnKind, ConstValue, DatasetPlan, Step};
use serde::{Deserialize, Serialize};

/// Every fitted statistic, per feature, in plan order: everything `features()` needs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Preprocessor {
    pub features: Vec<FittedFeature>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FittedFeature {
    pub column: String,
    pub kind: FeatureKind,
    /// Model-input values this feature contributes per example.
    pub width: usize,
    pub steps: Vec<FittedStep>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FeatureKind {
    Numeric,
    Category,
    /// An image: bytes per example, converted per batch.
    Tensor {
        shape: Vec<usize>,
    },
}

/// A value filled in for missing ones: a number, or a category level.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Fill {
    Number(f64),
    Text(String),
}

/// A preprocessing step with its fitted statistics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum FittedStep {
    ImputeMean {
        value: f64,
    },
    ImputeMedian {
        value: f64,
    },
    ImputeMode {
        value: Fill,
    },
    ImputeConstant {
        value: Fill,
    },
    DropMissing,
    /// Missing values stay NaN (a tree model routes them).
    KeepMissing,
    /// `(x - mean) / std`, population std (1 when it is 0).
    Standardize {
        mean: f64,
        std: f64,
    },
    /// `(x - min) / (max - min)`, 0 when the range is 0.
    MinMax {
        min: f64,
        max: f64,
    },
    /// `(x - median) / iqr`, iqr = q75 - q25 (1 when it is 0).
    RobustScale {
        median: f64,
        iqr: f64,
    },
    Normalize {
        mean: f64,
        std: f64,
    },
    Scale {
        factor: f64,
    },
    Log1p,
    Clip {
        lo: f64,
        hi: f64,
    },
    /// Clip to the training values' `lo_quantile` and `hi_quantile` quantiles (`lo`, `hi`).
    Winsorize {
        lo_quantile: f64,
        hi_quantile: f64,
        lo: f64,
        hi: f64,
    },
    /// One value per level of `levels` (the column's domain); only the `fitted` levels (those
    /// of the training rows) are encoded, any other level as all zeros.
    OneHot {
        levels: Vec<String>,
        fitted: Vec<String>,
    },
    /// The index in `levels` (the training levels, in sorted order); -1 for any other level.
    Ordinal {
        levels: Vec<String>,
    },
}

impl Preprocessor {
    /// Fit every step of every feature on `train_rows` only; a step's statistics are computed on
    /// the training values after the previous steps were applied.
    pub fn fit(
        plan: &DatasetPlan,
        data: &Data,
        train_rows: &[usize],
    ) -> Result<Preprocessor, DataError> {
        if train_rows.is_empty() {
            return Err(DataError::new(
                SPLIT,
                "there are no training rows to fit the preprocessing on",
            ));
        }
        let mut features = Vec::with_capacity(plan.features.len());
        for f in &plan.features {
            let col = data.column(&f.column).ok_or_else(|| {
                DataError::new(
                    COLUMN_MISSING,
                    format!("the data has no feature column `{}`", f.column),
                )
            })?;
            let fit = Fit {
                column: &f.column,
                data,
                rows: train_rows,
            };
            let fitted = match (&f.kind, col) {
                (ColumnKind::Numeric, Column::Numeric(xs)) => {
                    let mut vals: Vec<f64> = train_rows.iter().map(|r| xs[*r]).collect();
                    FittedFeature {
                        column: f.column.clone(),
                        kind: FeatureKind::Numeric,
                        width: 1,
                        steps: fit.numeric(&f.steps, &mut vals, Vec::new())?,
                    }
                }
                (ColumnKind::Category { levels: block }, Column::Category { codes, levels }) => {
                    fit.category(&f.steps, block, codes, levels)?
                }
                (ColumnKind::Tensor { shape }, Column::Image { size, pixels }) => FittedFeature {
                    column: f.column.clone(),
                    kind: FeatureKind::Tensor {
                        shape: shape.clone(),
                    },
                    width: *size,
                    steps: fit.image(&f.steps, *size, pixels)?,
                },
                _ => {
                    return Err(DataError::new(
                        VALUE,
                        format!(
                            "the loaded column `{}` does not have the plan's type",
                            f.column
                        ),
                    ));
                }
            };
            features.push(fitted);
        }
        Ok(Preprocessor { features })
    }

    /// Elements per example (= the product of the plan's `feature_shape`).
    pub fn width(&self) -> usize {
        self.features.iter().map(|f| f.width).sum()
    }

    /// The readable JSON of `preprocess.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Read `preprocess.json` back, checking that each feature's width fits its steps.
    pub fn from_json(text: &str) -> Result<Preprocessor, DataError> {
        let p: Preprocessor = serde_json::from_str(text).map_err(|e| {
            DataError::new(
                MALFORMED,
                format!("the preprocessing statistics cannot be read: {e}"),
            )
        })?;
        for f in &p.features {
            let want = match &f.kind {
                FeatureKind::Numeric => Some(1),
                FeatureKind::Tensor { shape } => Some(shape.iter().product()),
                FeatureKind::Category => f.steps.iter().find_map(|s| match s {
                    FittedStep::OneHot { levels, .. } => Some(levels.len()),
                    FittedStep::Ordinal { .. } => Some(1),
                    _ => None,
                }),
            };
            if want != Some(f.width) {
                return Err(DataError::new(
                    MALFORMED,
                    format!(
                        "the preprocessing statistics of `{}` are inconsistent: width {} does not fit its steps",
                        f.column, f.width
                    ),
                ));
            }
        }
        Ok(p)
    }
}

/// The fitting context of one feature.
struct Fit<'a> {
    column: &'a str,
    data: &'a Data,
    rows: &'a [usize],
}

impl Fit<'_> {
    fn no_values(&self, what: &str) -> DataError {
        DataError::new(
            VALUE,
            format!(
                "column `{}` has no values in the training rows to compute its {what}",
                self.column
            ),
        )
    }

    fn not_here(&self, step: &Step, what: &str) -> DataError {
        DataError::new(
            VALUE,
            format!(
                "the step {step:?} does not apply to {what} (feature `{}`)",
                self.column
            ),
        )
    }

    /// Fit numeric `steps` on the training values `vals` (NaN = missing), transforming them as
    /// it goes; appends to `out`.
    fn numeric(
        &self,
        steps: &[Step],
        vals: &mut [f64],
        mut out: Vec<FittedStep>,
    ) -> Result<Vec<FittedStep>, DataError> {
        for step in steps {
            let fitted = match step {
                Step::ImputeMean => FittedStep::ImputeMean {
                    value: stats::mean(vals).ok_or_else(|| self.no_values("mean"))?,
                },
                Step::ImputeMedian | Step::RobustScale | Step::Winsorize { .. } => {
                    let s = stats::sorted(vals);
                    let median =
                        stats::median_sorted(&s).ok_or_else(|| self.no_values(order_what(step)))?;
                    order_step(step, median, |p| {
                        stats::quantile_sorted(&s, p).unwrap_or(f64::NAN)
                    })
                }
                Step::ImputeMode => FittedStep::ImputeMode {
                    value: Fill::Number(
                        stats::mode_sorted(&stats::sorted(vals))
                            .ok_or_else(|| self.no_values("mode"))?,
                    ),
                },
                Step::ImputeConstant {
                    value: ConstValue::Number(x),
                } => FittedStep::ImputeConstant {
                    value: Fill::Number(*x),
                },
                Step::ImputeConstant { .. } => return Err(self.not_here(step, "numbers")),
                Step::DropMissing => FittedStep::DropMissing,
                Step::KeepMissing => FittedStep::KeepMissing,
                Step::Standardize => {
                    let (mean, std) =
                        stats::mean_std(vals).ok_or_else(|| self.no_values("mean"))?;
                    FittedStep::Standardize {
                        mean,
                        std: if std > 0.0 { std } else { 1.0 },
                    }
                }
                Step::MinMax => {
                    let s = stats::sorted(vals);
                    match (s.first(), s.last()) {
                        (Some(min), Some(max)) => FittedStep::MinMax {
                            min: *min,
                            max: *max,
                        },
                        _ => return Err(self.no_values("range")),
                    }
                }
                Step::Normalize { mean, std } => FittedStep::Normalize {
                    mean: *mean,
                    std: *std,
                },
                Step::Scale { factor } => FittedStep::Scale { factor: *factor },
                Step::Log1p => FittedStep::Log1p,
                Step::Clip { lo, hi } => FittedStep::Clip { lo: *lo, hi: *hi },
                Step::OneHot | Step::Ordinal => return Err(self.not_here(step, "numbers")),
            };
            let fitted = snapped(fitted);
            for (i, v) in vals.iter_mut().enumerate() {
                *v = super::transform::apply(&fitted, *v).map_err(|x| {
                    super::transform::log1p_error(self.column, x, self.data, self.rows[i])
                })?;
            }
            out.push(fitted);
        }
        Ok(out)
    }

    fn category(
        &self,
        steps: &[Step],
        block: &[String],
        codes: &[u32],
        data_levels: &[String],
    ) -> Result<FittedFeature, DataError> {
        let mut counts = LevelCounts::new(data_levels.to_vec());
        for r in self.rows {
            counts.add(codes[*r]);
        }
        let (feature, rest) = category_steps(self.column, steps, block, counts)?;
        match rest {
            // `ordinal`, then number steps on each row's index.
            Some((index, next)) => {
                let mut nums: Vec<f64> = self
                    .rows
                    .iter()
                    .map(|r| match codes[*r] {
                        MISSING => index.missing,
                        c => index.of.get(c as usize).copied().unwrap_or(f64::NAN),
                    })
                    .collect();
                let out = self.numeric(&steps[next..], &mut nums, feature.steps)?;
                Ok(FittedFeature {
                    steps: out,
                    ..feature
                })
            }
            None => Ok(feature),
        }
    }

    /// Fit image steps on a histogram of the training pixels: every step is a function of the
    /// byte, so a statistic over all training pixels is a weighted sum over 256 values.
    fn image(
        &self,
        steps: &[Step],
        size: usize,
        pixels: &[u8],
    ) -> Result<Vec<FittedStep>, DataError> {
        let mut hist = [0u64; 256];
        for r in self.rows {
            for p in &pixels[r * size..(r + 1) * size] {
                hist[*p as usize] += 1;
            }
        }
        let total: u64 = hist.iter().sum();
        let mut table: [f64; 256] = std::array::from_fn(|b| b as f64);
        let mut out = Vec::new();
        for step in steps {
            let present = || (0..256).filter(|b| hist[*b] > 0);
            let fitted = match step {
                Step::Standardize => {
                    if total == 0 {
                        return Err(self.no_values("mean"));
                    }
                    let n = total as f64;
                    let mean = present().map(|b| hist[b] as f64 * table[b]).sum::<f64>() / n;
                    let var = present()
                        .map(|b| hist[b] as f64 * (table[b] - mean) * (table[b] - mean))
                        .sum::<f64>()
                        / n;
                    let std = var.sqrt();
                    FittedStep::Standardize {
                        mean,
                        std: if std > 0.0 { std } else { 1.0 },
                    }
                }
                Step::MinMax => {
                    let min = present().map(|b| table[b]).reduce(f64::min);
                    let max = present().map(|b| table[b]).reduce(f64::max);
                    match (min, max) {
                        (Some(min), Some(max)) => FittedStep::MinMax { min, max },
                        _ => return Err(self.no_values("range")),
                    }
                }
                Step::Normalize { mean, std } => FittedStep::Normalize {
                    mean: *mean,
                    std: *std,
                },
                Step::Scale { factor } => FittedStep::Scale { factor: *factor },
                Step::Log1p => FittedStep::Log1p,
                Step::Clip { lo, hi } => FittedStep::Clip { lo: *lo, hi: *hi },
                _ => return Err(self.not_here(step, "image pixels")),
            };
            let fitted = snapped(fitted);
            for b in 0..256 {
                match super::transform::apply(&fitted, table[b]) {
                    Ok(x) => table[b] = x,
                    Err(x) if hist[b] > 0 => {
                        let row = self
                            .rows
                            .iter()
                            .copied()
                            .find(|r| pixels[r * size..(r + 1) * size].contains(&(b as u8)))
                            .unwrap_or(0);
                        return Err(super::transform::log1p_error(
                            self.column,
                            x,
                            self.data,
                            row,
                        ));
                    }
                    Err(_) => table[b] = f64::NAN,
                }
            }
            out.push(fitted);
        }
        Ok(out)
    }
}

/// How often each level of a category column occurs in the training rows (by the pool's
/// level codes), and how often it is missing: everything its steps are fitted on.
#[derive(Clone, Debug, Default)]
pub(crate) struct LevelCounts {
    pub levels: Vec<String>,
    pub counts: Vec<u64>,
    pub missing: u64,
}

impl LevelCounts {
    pub fn new(levels: Vec<String>) -> LevelCounts {
        LevelCounts {
            counts: vec![0; levels.len()],
            levels,
            missing: 0,
        }
    }

    pub fn add(&mut self, code: u32) {
        if code == MISSING {
            self.missing += 1;
            return;
        }
        let c = code as usize;
        if c >= self.counts.len() {
            self.counts.resize(c + 1, 0);
        }
        self.counts[c] += 1;
    }
}

/// The ordinal index of each level code after `ordinal` (NaN: not a training level), and of
/// a missing value (that of the level it was filled with, or NaN).
pub(crate) struct OrdinalIndex {
    pub of: Vec<f64>,
    pub missing: f64,
}

/// Fit a category's steps on its level counts, up to and including its encoding. After
/// `ordinal`, the steps that follow are number steps on each row's index: returned with
/// the index and the position of the first of them.
pub(crate) fn category_steps(
    column: &str,
    steps: &[Step],
    block: &[String],
    mut c: LevelCounts,
) -> Result<(FittedFeature, Option<(OrdinalIndex, usize)>), DataError> {
    let no_values = |what: &str| {
        DataError::new(
            VALUE,
            format!("column `{column}` has no values in the training rows to compute its {what}"),
        )
    };
    let not_here = |step: &Step, what: &str| {
        DataError::new(
            VALUE,
            format!("the step {step:?} does not apply to {what} (feature `{column}`)"),
        )
    };
    c.counts.resize(c.levels.len().max(c.counts.len()), 0);
    let mut out = Vec::new();
    // The level missing values were filled with (the first fill: later ones find none).
    let mut filled: Option<usize> = None;
    let feature = |steps, width| FittedFeature {
        column: column.to_string(),
        kind: FeatureKind::Category,
        width,
        steps,
    };
    for (i, step) in steps.iter().enumerate() {
        let present: Vec<bool> = c.counts.iter().map(|n| *n > 0).collect();
        let fill = match step {
            Step::DropMissing => {
                out.push(FittedStep::DropMissing);
                continue;
            }
            Step::ImputeMode => {
                let best = (0..c.counts.len())
                    .filter(|k| c.counts[*k] > 0)
                    .max_by(|a, b| c.counts[*a].cmp(&c.counts[*b]).then(b.cmp(a)))
                    .ok_or_else(|| no_values("mode"))?;
                c.levels[best].clone()
            }
            Step::ImputeConstant { value } => level_text(value),
            Step::OneHot => {
                let fitted = block
                    .iter()
                    .filter(|l| {
                        c.levels
                            .iter()
                            .position(|x| x == *l)
                            .is_some_and(|k| present[k])
                    })
                    .cloned()
                    .collect();
                out.push(FittedStep::OneHot {
                    levels: block.to_vec(),
                    fitted,
                });
                if let Some(next) = steps.get(i + 1) {
                    return Err(not_here(next, "one-hot columns"));
                }
                return Ok((feature(out, block.len()), None));
            }
            Step::Ordinal => {
                let order: Vec<usize> = (0..c.levels.len()).filter(|k| present[*k]).collect();
                let mut of = vec![f64::NAN; c.levels.len()];
                for (k, code) in order.iter().enumerate() {
                    of[*code] = k as f64;
                }
                out.push(FittedStep::Ordinal {
                    levels: order.iter().map(|k| c.levels[*k].clone()).collect(),
                });
                let rest = (i + 1 < steps.len()).then_some((
                    OrdinalIndex {
                        missing: filled.map_or(f64::NAN, |k| of[k]),
                        of,
                    },
                    i + 1,
                ));
                return Ok((feature(out, 1), rest));
            }
            _ => return Err(not_here(step, "a category before it is encoded")),
        };
        let code = match c.levels.iter().position(|l| *l == fill) {
            Some(k) => k,
            None => {
                c.levels.push(fill.clone());
                c.counts.push(0);
                c.levels.len() - 1
            }
        };
        filled.get_or_insert(code);
        c.counts[code] += std::mem::take(&mut c.missing);
        out.push(match step {
            Step::ImputeMode => FittedStep::ImputeMode {
                value: Fill::Text(fill),
            },
            _ => FittedStep::ImputeConstant {
                value: Fill::Text(fill),
            },
        });
    }
    Err(DataError::new(
        VALUE,
        format!("the category `{column}` is never encoded (`one_hot` or `ordinal`)"),
    ))
}

/// What an order-statistic step computes, for "no values to compute its ...".
pub(crate) fn order_what(step: &Step) -> &'static str {
    match step {
        Step::Winsorize { .. } => "quantiles",
        _ => "median",
    }
}

/// The fitted form of a step fitted on order statistics (`impute(median)`, `robust_scale`,
/// `winsorize`) from the values' median and their quantile function: the in-memory fit sorts
/// the values, the streamed one selects the ranks it needs (any other step is `impute(median)`).
pub(crate) fn order_step(step: &Step, median: f64, q: impl Fn(f64) -> f64) -> FittedStep {
    match step {
        Step::RobustScale => {
            let iqr = q(0.75) - q(0.25);
            FittedStep::RobustScale {
                median,
                iqr: if iqr > 0.0 { iqr } else { 1.0 },
            }
        }
        Step::Winsorize { lo, hi } => FittedStep::Winsorize {
            lo_quantile: *lo,
            hi_quantile: *hi,
            lo: q(*lo),
            hi: q(*hi),
        },
        _ => FittedStep::ImputeMedian { value: median },
    }
}

/// The level text a constant fills a category with (`0` for the number 0).
fn level_text(v: &ConstValue) -> String {
    match v {
        ConstValue::Text(t) => t.clone(),
        ConstValue::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", *x as i64),
        ConstValue::Number(x) => x.to_string(),
    }
}

/// The step with every number (fitted or given) snapped to a value that survives JSON unchanged.
pub(crate) fn snapped(s: FittedStep) -> FittedStep {
    use FittedStep as F;
    let n = stats::snap;
    match s {
        F::ImputeMean { value } => F::ImputeMean { value: n(value) },
        F::ImputeMedian { value } => F::ImputeMedian { value: n(value) },
        F::ImputeMode {
            value: Fill::Number(x),
        } => F::ImputeMode {
            value: Fill::Number(n(x)),
        },
        F::Standardize { mean, std } => F::Standardize {
            mean: n(mean),
            std: n(std),
        },
        F::MinMax { min, max } => F::MinMax {
            min: n(min),
            max: n(max),
        },
        F::RobustScale { median, iqr } => F::RobustScale {
            median: n(median),
            iqr: n(iqr),
        },
        F::Winsorize {
            lo_quantile,
            hi_quantile,
            lo,
            hi,
        } => F::Winsorize {
            lo_quantile: n(lo_quantile),
            hi_quantile: n(hi_quantile),
            lo: n(lo),
            hi: n(hi),
        },
        F::ImputeConstant {
            value: Fill::Number(x),
        } => F::ImputeConstant {
            value: Fill::Number(n(x)),
        },
        F::Normalize { mean, std } => F::Normalize {
            mean: n(mean),
            std: n(std),
        },
        F::Scale { factor } => F::Scale { factor: n(factor) },
        F::Clip { lo, hi } => F::Clip {
            lo: n(lo),
            hi: n(hi),
        },
        other => other,
    }
}
