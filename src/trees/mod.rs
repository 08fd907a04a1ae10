//! Tree ensembles: takes numeric rows and a target, gives gradient-boosted trees (`Booster`,
//! one round at a time) or a random forest (`forest`), both as plain `Tree`s and `Ensemble`s.
//!
//! Features are binned once per fit (`bins`: quantile edges fitted on the training rows, codes
//! as `u8`, column-major); trees grow depth-wise over histograms (`hist`, `grow`). Every tree is
//! a complete binary tree in breadth-first order, so prediction is a fixed number of compares.
//! Results are bit-identical for any thread count: each feature's histogram is summed by one
//! thread in row order, and the best split is chosen by scanning features in index order.

mod bins;
mod boost;
mod forest;
mod grow;
mod hist;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_data;

pub use boost::Booster;
pub use forest::forest;

/// The deepest tree either algorithm grows (4,096 leaves).
pub const MAX_DEPTH: usize = 12;

/// Rows of features: row-major, `cols` values a row, NaN = missing.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    pub x: &'a [f32],
    pub cols: usize,
}

impl Rows<'_> {
    /// The number of rows (0 when `cols` is 0).
    pub fn len(&self) -> usize {
        self.x.len().checked_div(self.cols).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r` (`r < len()`).
    pub fn row(&self, r: usize) -> &[f32] {
        &self.x[r * self.cols..(r + 1) * self.cols]
    }
}

/// What the trees learn to predict.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    Classes { labels: &'a [u32], classes: usize },
    Values(&'a [f32]),
}

/// The boosting objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Two classes: one tree per round, the score (logit) of class 1.
    LogLoss,
    /// K > 2 classes: K trees per round, one logit each.
    Softmax,
    Squared,
    Huber {
        delta: f64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct BoostParams {
    pub rounds: usize,
    pub depth: usize,
    pub lr: f64,
    pub min_child_weight: f64,
    pub l2: f64,
    pub min_split_gain: f64,
    pub subsample: f64,
    pub colsample: f64,
    /// At most this many bins for a feature's non-missing values (2..=255; missing values have
    /// one more bin of their own, so a code fits a byte).
    pub bins: usize,
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ForestParams {
    pub trees: usize,
    pub depth: usize,
    /// Features tried per split (clamped to the number of usable features).
    pub max_features: usize,
    pub min_samples_leaf: usize,
    pub bootstrap: bool,
    pub bins: usize,
    pub seed: u64,
}

/// A complete binary tree of depth `depth` (>= 1) in breadth-first order: internal nodes
/// 0..2^depth-1, children of n are 2n+1 (left) and 2n+2 (right); leaf j is node 2^depth-1+j.
/// At node n a row goes right iff (x[feature[n]] is NaN ? missing_right[n] : x[feature[n]] >
/// threshold[n]). A node that does not split: feature 0, threshold f32::INFINITY,
/// missing_right false, and every leaf below it carries its value (so any path gives the right
/// answer).
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    pub feature: Vec<u32>,
    pub threshold: Vec<f32>,
    pub missing_right: Vec<bool>,
    pub leaf: Vec<f32>,
}

impl Tree {
    /// The depth, from the number of leaves.
    pub fn depth(&self) -> usize {
        self.leaf.len().max(1).trailing_zeros() as usize
    }

    /// The index of the leaf `row` lands in. A feature index past the row's end reads as
    /// missing, so a short row cannot panic.
    pub fn leaf_of(&self, row: &[f32]) -> usize {
        let mut n = 0usize;
        for _ in 0..self.depth() {
            let f = self.feature.get(n).map_or(0, |&f| f as usize);
            let v = row.get(f).copied().unwrap_or(f32::NAN);
            let right = if v.is_nan() {
                self.missing_right.get(n).copied().unwrap_or(false)
            } else {
                v > self.threshold.get(n).copied().unwrap_or(f32::INFINITY)
            };
            n = 2 * n + 1 + usize::from(right);
        }
        n - self.feature.len()
    }

    pub fn predict(&self, row: &[f32]) -> f32 {
        self.leaf.get(self.leaf_of(row)).copied().unwrap_or(0.0)
    }
}

/// How an ensemble's summed outputs become its answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Link {
    /// The sums are the answer: scores, logits or values.
    Identity,
    /// The sums are probabilities; the answer is ln(max(sum, 1e-7)) (random-forest
    /// classification, so that it reads like a log-softmax).
    Log,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ensemble {
    pub depth: usize,
    /// K: trees per round (1 for LogLoss, Squared, Huber and forest regression; the number of
    /// classes for Softmax and forest classification).
    pub outputs: usize,
    /// K starting scores.
    pub base: Vec<f32>,
    /// Round-major: tree r*K + k adds to output k.
    pub trees: Vec<Tree>,
    pub link: Link,
    /// Total split gain per input feature (split-gain importance).
    pub gain: Vec<f64>,
}

impl Ensemble {
    /// Base + the trees' leaf values added in tree order, in f64, then the link. Writes
    /// `min(out.len(), outputs)` values.
    pub fn predict_row(&self, row: &[f32], out: &mut [f64]) {
        let k = self.outputs.max(1);
        for (o, slot) in out.iter_mut().enumerate().take(k) {
            *slot = f64::from(self.base.get(o).copied().unwrap_or(0.0));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            if let Some(slot) = out.get_mut(t % k) {
                *slot += f64::from(tree.predict(row));
            }
        }
        if self.link == Link::Log {
            for slot in out.iter_mut().take(k) {
                *slot = slot.max(1e-7).ln();
            }
        }
    }
}

/// Checks that the rows and target fit together; the target's number of outputs.
fn check_data(rows: &Rows<'_>, target: &Target<'_>) -> Result<(), String> {
    if rows.cols == 0 {
        return Err("trees need at least one feature column".into());
    }
    if !rows.x.len().is_multiple_of(rows.cols) {
        return Err(format!(
            "{} feature values do not make whole rows of {} columns",
            rows.x.len(),
            rows.cols
        ));
    }
    let n = rows.len();
    if n == 0 {
        return Err("no training rows".into());
    }
    match *target {
        Target::Classes { labels, classes } => {
            if labels.len() != n {
                return Err(format!("{} labels for {n} rows", labels.len()));
            }
            if classes < 2 {
                return Err(format!(
                    "classification needs at least 2 classes, not {classes}"
                ));
            }
            if let Some(bad) = labels.iter().find(|&&l| l as usize >= classes) {
                return Err(format!("label {bad} is out of range for {classes} classes"));
            }
        }
        Target::Values(v) => {
            if v.len() != n {
                return Err(format!("{} target values for {n} rows", v.len()));
            }
            if let Some(i) = v.iter().position(|y| !y.is_finite()) {
                return Err(format!("target value of row {i} is not a finite number"));
            }
        }
    }
    Ok(())
}

/// Checks the shared tree-shape parameters.
fn check_shape(depth: usize, bins: usize) -> Result<(), String> {
    if depth == 0 || depth > MAX_DEPTH {
        return Err(format!("tree depth must be 1 to {MAX_DEPTH}, not {depth}"));
    }
    if !(2..=bins::MAX_BINS).contains(&bins) {
        return Err(format!(
            "bins must be 2 to {} (missing values take one more), not {bins}",
            bins::MAX_BINS
        ));
    }
    Ok(())
}
