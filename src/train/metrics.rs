//! Metrics: takes class probabilities with true labels, or regression predictions with targets,
//! and the requested `Metric`s; gives a map of metric name -> JSON value (and the k-fold mean
//! of such maps).
//!
//! Definitions (all arithmetic in f64; `n` examples, `k` classes):
//!
//! * **Predicted class** = argmax of a row of probabilities; ties go to the lowest index.
//! * **accuracy** = correct / n.
//! * **Per-class** figures, from the k×k confusion matrix `C` (rows = true, columns =
//!   predicted): precision_c = C[c][c] / Σ_r C[r][c], recall_c = C[c][c] / Σ_j C[c][j], each 0
//!   when its denominator is 0 (scikit-learn's `zero_division=0`); F1_c = 2·P·R / (P + R), 0 when
//!   P + R = 0.
//! * **precision, recall, f1**: for k = 2, those of the positive class 1 (scikit-learn's
//!   `average='binary'`); for k > 2, the macro average of the per-class figures (so `f1` is the
//!   mean of per-class F1, not the F1 of macro precision and recall).
//! * **macro_f1**: always the macro average of per-class F1 (for k = 2 as well).
//! * **Macro averages** run over the classes that occur in the true labels or the predictions
//!   (scikit-learn's default label set, `unique_labels(y_true, y_pred)`): a class that is
//!   neither present nor predicted in this split is left out rather than counted as 0. A class
//!   that occurs on one side only contributes 0 where its denominator is 0 (see above).
//! * **roc_auc**: for k = 2, the AUC of the probability of class 1 against `label == 1`; for
//!   k > 2, the macro average of the one-vs-rest AUCs (probability of class c against
//!   `label == c`) over the classes that have both positives and negatives. Each AUC is the
//!   Mann–Whitney U statistic with average ranks for tied scores: AUC = (R₊ − n₊(n₊+1)/2) /
//!   (n₊·n₋), where R₊ is the sum of the (1-based, tie-averaged) ranks of the positives. When no
//!   class has both positives and negatives the value is `null`.
//! * **confusion**: the k×k matrix of counts as an array of arrays of integers.
//! * **mse** = mean (p − t)², **rmse** = √mse, **mae** = mean |p − t|, **r2** = 1 − SS_res /
//!   SS_tot with SS_res = Σ (p − t)², SS_tot = Σ (t − mean t)². A constant target (SS_tot = 0)
//!   gives r2 = 1.0 when SS_res = 0 and 0.0 otherwise (scikit-learn's `force_finite=True`);
//!   a NaN SS_res still gives NaN there.
//!
//! Invalid and degenerate input never panics; it yields `null` figures:
//!
//! * n = 0 (no labels / no targets): every requested figure is `null`.
//! * classification: `k < 2`, `probs.len() != n·k`, or a label `>= k`: every figure `null`.
//! * regression: `preds.len() != targets.len()`: every figure `null`.
//! * A NaN anywhere in `probs`: every classification figure `null` (no class can honestly be
//!   predicted from NaN, nor ranked). Infinite probabilities are ordered as numbers.
//! * Regression NaN/inf propagate through the arithmetic; a non-finite result is written as
//!   `null`, since JSON has no NaN or infinity. This holds for every figure.
//! * A regression metric asked of [`classification`], or a classification metric asked of
//!   [`regression`], is `null`.
//!
//! Only the requested metrics appear in the map, keyed by [`Metric::name`].

use crate::check::hir::Metric;
use serde_json::Value;
use std::collections::BTreeMap;

/// A JSON number, or `null` for NaN and ±infinity (JSON has neither).
fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// Every requested metric set to `null`.
fn all_null(metrics: &[Metric]) -> BTreeMap<String, Value> {
    metrics
        .iter()
        .map(|m| (m.name().to_string(), Value::Null))
        .collect()
}

/// Classification figures. `probs` is n×k row-major class probabilities (k ≥ 2; binary models
/// give k = 2), `labels` the true class indices (< k). Returns metric name -> value: numbers as
/// JSON numbers, `confusion` as a k×k array of arrays of integers (rows = true class, columns =
/// predicted class). Predicted class = argmax (ties: lowest index). See the module
/// documentation for the definitions and for what invalid input gives.
pub fn classification(
    probs: &[f32],
    k: usize,
    labels: &[u32],
    metrics: &[Metric],
) -> BTreeMap<String, Value> {
    let Some(stats) = ClassStats::new(probs, k, labels) else {
        return all_null(metrics);
    };
    metrics
        .iter()
        .map(|&m| (m.name().to_string(), stats.figure(m)))
        .collect()
}

/// Regression figures of predictions against targets. See the module documentation for the
/// definitions and for what invalid input gives.
pub fn regression(preds: &[f32], targets: &[f32], metrics: &[Metric]) -> BTreeMap<String, Value> {
    if preds.len() != targets.len() || preds.is_empty() {
        return all_null(metrics);
    }
    let n = preds.len() as f64;
    let mean_t = targets.iter().map(|&t| f64::from(t)).sum::<f64>() / n;
    let (mut ss_res, mut sum_abs, mut ss_tot) = (0.0f64, 0.0f64, 0.0f64);
    for (&p, &t) in preds.iter().zip(targets) {
        let (p, t) = (f64::from(p), f64::from(t));
        let e = p - t;
        ss_res += e * e;
        sum_abs += e.abs();
        ss_tot += (t - mean_t) * (t - mean_t);
    }
    let mse = ss_res / n;
    let r2 = if ss_tot == 0.0 {
        // Constant target: perfect predictions score 1, anything else 0 (NaN stays NaN).
        if ss_res == 0.0 {
            1.0
        } else if ss_res.is_nan() {
            f64::NAN
        } else {
            0.0
        }
    } else {
        1.0 - ss_res / ss_tot
    };
    metrics
        .iter()
        .map(|&m| {
            let v = match m {
                Metric::Mse => num(mse),
                Metric::Rmse => num(mse.sqrt()),
                Metric::Mae => num(sum_abs / n),
                Metric::R2 => num(r2),
                Metric::Accuracy
                | Metric::Precision
                | Metric::Recall
                | Metric::F1
                | Metric::MacroF1
                | Metric::Confusion
                | Metric::RocAuc => Value::Null,
            };
            (m.name().to_string(), v)
        })
        .collect()
}

/// Mean of each numeric figure over folds (k-fold "val" summary); non-numeric figures (the
/// confusion matrix) are summed elementwise.
///
/// Every key that occurs in any fold appears in the result. A figure is `null` in the result
/// when it is missing or `null` in any fold (as NaN would propagate through a mean), when the
/// folds disagree on its kind, or when confusion matrices differ in shape, hold anything other
/// than non-negative integers, or overflow on summing. `rmse` is averaged like every other
/// number (the mean of the per-fold rmse, not √ of the mean mse). No folds: an empty map.
pub fn mean_over_folds(folds: &[BTreeMap<String, Value>]) -> BTreeMap<String, Value> {
    let mut keys: Vec<&String> = folds.iter().flat_map(|f| f.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let values: Option<Vec<&Value>> = folds.iter().map(|f| f.get(key)).collect();
            let v = values.map_or(Value::Null, |vs| combine(&vs));
            (key.clone(), v)
        })
        .collect()
}

/// Combines one figure over folds: the mean of numbers, the elementwise sum of integer
/// matrices, `null` otherwise. `values` is non-empty (one per fold).
fn combine(values: &[&Value]) -> Value {
    if values.iter().all(|v| v.is_number()) {
        let sum: f64 = values.iter().filter_map(|v| v.as_f64()).sum();
        return num(sum / values.len() as f64);
    }
    let mut total: Option<Vec<Vec<u64>>> = None;
    for v in values {
        let Some(m) = as_matrix(v) else {
            return Value::Null;
        };
        total = match total {
            None => Some(m),
            Some(acc) => match add_matrices(acc, &m) {
                Some(s) => Some(s),
                None => return Value::Null,
            },
        };
    }
    total.map_or(Value::Null, matrix_value)
}

/// An array of arrays of non-negative integers, or `None`.
fn as_matrix(v: &Value) -> Option<Vec<Vec<u64>>> {
    v.as_array()?
        .iter()
        .map(|row| row.as_array()?.iter().map(Value::as_u64).collect())
        .collect()
}

/// Elementwise sum; `None` on differing shapes or overflow.
fn add_matrices(mut acc: Vec<Vec<u64>>, m: &[Vec<u64>]) -> Option<Vec<Vec<u64>>> {
    if acc.len() != m.len() {
        return None;
    }
    for (ra, rm) in acc.iter_mut().zip(m) {
        if ra.len() != rm.len() {
            return None;
        }
        for (a, &b) in ra.iter_mut().zip(rm) {
            *a = a.checked_add(b)?;
        }
    }
    Some(acc)
}

fn matrix_value(m: Vec<Vec<u64>>) -> Value {
    Value::Array(
        m.into_iter()
            .map(|row| Value::Array(row.into_iter().map(Value::from).collect()))
            .collect(),
    )
}

/// Validated classification input and its confusion matrix.
struct ClassStats<'a> {
    probs: &'a [f32],
    labels: &'a [u32],
    k: usize,
    /// k×k row-major counts: `confusion[t * k + p]`, t = true class, p = predicted class.
    confusion: Vec<u64>,
}

impl<'a> ClassStats<'a> {
    /// `None` when the input is empty or invalid (see the module documentation).
    fn new(probs: &'a [f32], k: usize, labels: &'a [u32]) -> Option<Self> {
        let n = labels.len();
        if n == 0 || k < 2 || n.checked_mul(k) != Some(probs.len()) {
            return None;
        }
        if probs.iter().any(|p| p.is_nan()) {
            return None;
        }
        let kk = k.checked_mul(k)?;
        let mut confusion = vec![0u64; kk];
        for (row, &label) in probs.chunks_exact(k).zip(labels) {
            let t = usize::try_from(label).ok().filter(|&t| t < k)?;
            let p = argmax(row);
            confusion[t * k + p] += 1;
        }
        Some(ClassStats {
            probs,
            labels,
            k,
            confusion,
        })
    }

    fn n(&self) -> usize {
        self.labels.len()
    }

    fn count(&self, t: usize, p: usize) -> u64 {
        self.confusion[t * self.k + p]
    }

    /// Examples whose true class is `c`.
    fn true_count(&self, c: usize) -> u64 {
        (0..self.k).map(|p| self.count(c, p)).sum()
    }

    /// Examples predicted as class `c`.
    fn pred_count(&self, c: usize) -> u64 {
        (0..self.k).map(|t| self.count(t, c)).sum()
    }

    /// (precision, recall, F1) of class `c`, with zero division giving 0.
    fn per_class(&self, c: usize) -> (f64, f64, f64) {
        let tp = self.count(c, c) as f64;
        let ratio = |den: u64| if den == 0 { 0.0 } else { tp / den as f64 };
        let precision = ratio(self.pred_count(c));
        let recall = ratio(self.true_count(c));
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        (precision, recall, f1)
    }

    /// Macro averages (precision, recall, F1) over the classes present in the true labels or
    /// the predictions. There is at least one such class since n > 0.
    fn macro_avg(&self) -> (f64, f64, f64) {
        let (mut sp, mut sr, mut sf, mut m) = (0.0, 0.0, 0.0, 0usize);
        for c in 0..self.k {
            if self.true_count(c) + self.pred_count(c) == 0 {
                continue;
            }
            let (p, r, f) = self.per_class(c);
            sp += p;
            sr += r;
            sf += f;
            m += 1;
        }
        if m == 0 {
            return (f64::NAN, f64::NAN, f64::NAN);
        }
        let m = m as f64;
        (sp / m, sr / m, sf / m)
    }

    /// Binary: figures of class 1; multiclass: macro averages.
    fn headline(&self) -> (f64, f64, f64) {
        if self.k == 2 {
            self.per_class(1)
        } else {
            self.macro_avg()
        }
    }

    /// One-vs-rest AUC of class `c`, `None` without both positives and negatives.
    fn auc_of(&self, c: usize) -> Option<f64> {
        let scores = self
            .probs
            .chunks_exact(self.k)
            .zip(self.labels)
            .map(|(row, &l)| (row[c], l as usize == c));
        auc(scores.collect())
    }

    fn roc_auc(&self) -> Option<f64> {
        if self.k == 2 {
            return self.auc_of(1);
        }
        let aucs: Vec<f64> = (0..self.k).filter_map(|c| self.auc_of(c)).collect();
        if aucs.is_empty() {
            None
        } else {
            Some(aucs.iter().sum::<f64>() / aucs.len() as f64)
        }
    }

    fn figure(&self, m: Metric) -> Value {
        match m {
            Metric::Accuracy => {
                let correct: u64 = (0..self.k).map(|c| self.count(c, c)).sum();
                num(correct as f64 / self.n() as f64)
            }
            Metric::Precision => num(self.headline().0),
            Metric::Recall => num(self.headline().1),
            Metric::F1 => num(self.headline().2),
            Metric::MacroF1 => num(self.macro_avg().2),
            Metric::Confusion => matrix_value(
                self.confusion
                    .chunks_exact(self.k)
                    .map(<[u64]>::to_vec)
                    .collect(),
            ),
            Metric::RocAuc => self.roc_auc().map_or(Value::Null, num),
            Metric::Mse | Metric::Rmse | Metric::Mae | Metric::R2 => Value::Null,
        }
    }
}

/// Index of the largest value; ties go to the lowest index. `row` is non-empty and NaN-free.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Area under the ROC curve of (score, is_positive) pairs via the Mann–Whitney U statistic
/// with average ranks for ties; `None` without both positives and negatives. Scores are
/// NaN-free.
fn auc(mut pairs: Vec<(f32, bool)>) -> Option<f64> {
    let n_pos = pairs.iter().filter(|p| p.1).count();
    let n_neg = pairs.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_pos = 0.0f64;
    let mut start = 0;
    while start < pairs.len() {
        // A group of equal scores (== also joins -0.0 and 0.0, adjacent under total_cmp).
        let mut end = start + 1;
        while end < pairs.len() && pairs[end].0 == pairs[start].0 {
            end += 1;
        }
        // 1-based ranks start+1 ..= end; their average.
        let avg_rank = (start + 1 + end) as f64 / 2.0;
        let pos_in_group = pairs[start..end].iter().filter(|p| p.1).count();
        rank_sum_pos += avg_rank * pos_in_group as f64;
        start = end;
    }
    let (np, nn) = (n_pos as f64, n_neg as f64);
    Some((rank_sum_pos - np * (np + 1.0) / 2.0) / (np * nn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EPS: f64 = 1e-12;

    /// The number under `key`; fails the test when it is missing or not a number.
    fn get(m: &BTreeMap<String, Value>, key: &str) -> f64 {
        match m.get(key).and_then(Value::as_f64) {
            Some(x) => x,
            None => panic!("{key}: expected a number, got {:?}", m.get(key)),
        }
    }

    fn close(m: &BTreeMap<String, Value>, key: &str, want: f64) {
        let got = get(m, key);
        assert!((got - want).abs() < EPS, "{key}: got {got}, want {want}");
    }

    fn is_null(m: &BTreeMap<String, Value>, key: &str) {
        assert_eq!(m.get(key), Some(&Value::Null), "{key} should be null");
    }

    /// A probability row of `k` classes that predicts `c` (0.8 there, the rest shared).
    fn onehot(c: usize, k: usize) -> Vec<f32> {
        let other = 0.2 / (k - 1) as f32;
        (0..k).map(|i| if i == c { 0.8 } else { other }).collect()
    }

    /// Probabilities and labels from (true, predicted) pairs.
    fn from_pairs(pairs: &[(u32, usize)], k: usize) -> (Vec<f32>, Vec<u32>) {
        let probs = pairs.iter().flat_map(|&(_, p)| onehot(p, k)).collect();
        let labels = pairs.iter().map(|&(t, _)| t).collect();
        (probs, labels)
    }

    const CLS: [Metric; 7] = [
        Metric::Accuracy,
        Metric::Precision,
        Metric::Recall,
        Metric::F1,
        Metric::MacroF1,
        Metric::Confusion,
        Metric::RocAuc,
    ];
    const REG: [Metric; 4] = [Metric::Mse, Metric::Rmse, Metric::Mae, Metric::R2];

    #[test]
    fn three_class_confusion_and_macro_figures() {
        // Confusion (rows true, columns predicted):
        //   [[3, 1, 0],
        //    [1, 2, 0],
        //    [1, 1, 1]]          n = 10, diagonal 6 -> accuracy 0.6
        // Column sums (predicted) 5, 4, 1; row sums (true) 4, 3, 3.
        // P = 3/5, 2/4, 1/1           -> macro P = (0.6 + 0.5 + 1) / 3 = 0.7
        // R = 3/4, 2/3, 1/3           -> macro R = (0.75 + 2/3 + 1/3) / 3 = 1.75 / 3
        // F1 = 2PR/(P+R): 0.9/1.35 = 2/3; (2/3)/(7/6) = 4/7; (2/3)/(4/3) = 1/2
        //   -> macro F1 = (2/3 + 4/7 + 1/2) / 3 = (28 + 24 + 21) / 42 / 3 = 73/126
        // (F1 of macro P and R would be 2·0.7·0.58333/1.28333 = 0.636..., which is wrong.)
        let mut pairs = vec![(0, 0), (0, 0), (0, 1), (1, 0), (1, 1), (1, 1)];
        pairs.extend([(2, 0), (2, 1), (2, 2)]);
        let (mut probs, mut labels) = from_pairs(&pairs, 3);
        // A tied row [0.4, 0.4, 0.2] must predict class 0 (lowest index): the third (0, 0).
        probs.extend([0.4, 0.4, 0.2]);
        labels.push(0);
        let m = classification(&probs, 3, &labels, &CLS);
        assert_eq!(m["confusion"], json!([[3, 1, 0], [1, 2, 0], [1, 1, 1]]));
        close(&m, "accuracy", 0.6);
        close(&m, "precision", 0.7);
        close(&m, "recall", 1.75 / 3.0);
        close(&m, "f1", 73.0 / 126.0);
        close(&m, "macro_f1", 73.0 / 126.0);
        assert_eq!(m.len(), CLS.len());
    }

    #[test]
    fn binary_figures_are_of_class_one() {
        // labels [1, 1, 1, 1, 0, 0], predicted [1, 1, 0, 0, 1, 0]
        // class 1: tp 2, fp 1, fn 2 -> P = 2/3, R = 1/2, F1 = (2/3)/(7/6) = 4/7
        // class 0: tp 1, predicted 3, true 2 -> P = 1/3, R = 1/2, F1 = (1/3)/(5/6) = 2/5
        // macro F1 = (4/7 + 2/5) / 2 = 17/35; accuracy = 3/6.
        // (Macro precision would be 1/2, so 2/3 shows the binary rule.)
        let pairs = [(1, 1), (1, 1), (1, 0), (1, 0), (0, 1), (0, 0)];
        let (probs, labels) = from_pairs(&pairs, 2);
        let m = classification(&probs, 2, &labels, &CLS);
        close(&m, "precision", 2.0 / 3.0);
        close(&m, "recall", 0.5);
        close(&m, "f1", 4.0 / 7.0);
        close(&m, "macro_f1", 17.0 / 35.0);
        close(&m, "accuracy", 0.5);
        assert_eq!(m["confusion"], json!([[1, 1], [2, 2]]));
    }

    #[test]
    fn binary_auc_and_ties() {
        // Scores of class 1 [0.1, 0.4, 0.35, 0.8], labels [0, 0, 1, 1]:
        // positives 0.35 (beats 0.1 only) and 0.8 (beats both) -> 3 of 4 pairs = 0.75.
        let probs = [0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8];
        let m = classification(&probs, 2, &[0, 0, 1, 1], &[Metric::RocAuc]);
        close(&m, "roc_auc", 0.75);
        // Ties: scores [0.2, 0.5, 0.5, 0.9], labels [0, 0, 1, 1]: ranks 1, 2.5, 2.5, 4;
        // R+ = 2.5 + 4 = 6.5, U = 6.5 - 2·3/2 = 3.5, AUC = 3.5 / 4 = 0.875.
        let probs = [0.8, 0.2, 0.5, 0.5, 0.5, 0.5, 0.1, 0.9];
        let m = classification(&probs, 2, &[0, 0, 1, 1], &[Metric::RocAuc]);
        close(&m, "roc_auc", 0.875);
        // Inverted scores -> 0.
        let probs = [0.1, 0.9, 0.2, 0.8, 0.8, 0.2, 0.9, 0.1];
        let m = classification(&probs, 2, &[0, 0, 1, 1], &[Metric::RocAuc]);
        close(&m, "roc_auc", 0.0);
    }

    #[test]
    fn multiclass_one_vs_rest_auc() {
        // rows (label: probabilities):
        //   0: [0.7, 0.2, 0.1]   1: [0.2, 0.5, 0.3]   2: [0.1, 0.3, 0.6]
        //   0: [0.3, 0.4, 0.3]   1: [0.5, 0.3, 0.2]   2: [0.2, 0.2, 0.6]
        // class 0: pos 0.7, 0.3 vs neg 0.2, 0.1, 0.5, 0.2 -> 4 + 3 = 7/8
        // class 1: pos 0.5, 0.3 vs neg 0.2, 0.3, 0.4, 0.2 -> 4 + (1 + 0.5 + 0 + 1) = 6.5/8
        // class 2: pos 0.6, 0.6 vs neg 0.1, 0.3, 0.3, 0.2 -> 8/8
        // macro = (0.875 + 0.8125 + 1) / 3 = 2.6875 / 3
        let probs = [
            0.7, 0.2, 0.1, 0.2, 0.5, 0.3, 0.1, 0.3, 0.6, //
            0.3, 0.4, 0.3, 0.5, 0.3, 0.2, 0.2, 0.2, 0.6,
        ];
        let m = classification(&probs, 3, &[0, 1, 2, 0, 1, 2], &[Metric::RocAuc]);
        close(&m, "roc_auc", 2.6875 / 3.0);
    }

    #[test]
    fn absent_class_is_skipped_in_auc_and_macro_averages() {
        // k = 3 but class 2 never occurs nor is predicted.
        // rows: l0 [0.8, 0.1, 0.1], l1 [0.1, 0.8, 0.1], l0 [0.6, 0.3, 0.1], l1 [0.5, 0.2, 0.3]
        // AUC class 0: pos 0.8, 0.6 vs neg 0.1, 0.5 -> 4/4; class 1: pos 0.8, 0.2 vs neg
        // 0.1, 0.3 -> (2 + 1)/4; class 2: no positives, skipped -> (1 + 0.75) / 2 = 0.875.
        // Predicted 0, 1, 0, 0: P0 = 2/3, P1 = 1/1 -> macro P = 5/6 (not 5/9 over 3 classes);
        // R0 = 2/2, R1 = 1/2 -> macro R = 3/4.
        let probs = [0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.6, 0.3, 0.1, 0.5, 0.2, 0.3];
        let m = classification(&probs, 3, &[0, 1, 0, 1], &CLS);
        close(&m, "roc_auc", 0.875);
        close(&m, "precision", 5.0 / 6.0);
        close(&m, "recall", 0.75);
        assert_eq!(m["confusion"], json!([[2, 0, 0], [1, 1, 0], [0, 0, 0]]));
    }

    #[test]
    fn auc_is_null_without_both_classes() {
        let m = classification(&[0.3, 0.7, 0.6, 0.4], 2, &[1, 1], &[Metric::RocAuc]);
        is_null(&m, "roc_auc");
        let probs = [0.5, 0.3, 0.2, 0.1, 0.6, 0.3];
        let m = classification(&probs, 3, &[0, 0], &[Metric::RocAuc, Metric::Accuracy]);
        is_null(&m, "roc_auc");
        close(&m, "accuracy", 0.5);
    }

    #[test]
    fn zero_division_gives_zero() {
        // Nothing predicted positive: labels [1, 0], predicted [0, 0]:
        // precision 0 (no predictions), recall 0/1 = 0, f1 0.
        let (probs, labels) = from_pairs(&[(1, 0), (0, 0)], 2);
        let m = classification(&probs, 2, &labels, &CLS);
        close(&m, "precision", 0.0);
        close(&m, "recall", 0.0);
        close(&m, "f1", 0.0);
        // macro F1: class 0 P = 1/2, R = 1 -> F1 = 2/3; class 1 F1 = 0 -> 1/3.
        close(&m, "macro_f1", 1.0 / 3.0);
        // No true positives: labels [0, 0], predicted [1, 0]: P = 0/1, R has no true examples.
        let (probs, labels) = from_pairs(&[(0, 1), (0, 0)], 2);
        let m = classification(&probs, 2, &labels, &CLS);
        close(&m, "precision", 0.0);
        close(&m, "recall", 0.0);
        close(&m, "f1", 0.0);
        // Multiclass: class 2 is predicted but never true, class 1 true but never predicted.
        // pairs (0,0), (1,2): P0 = 1, R0 = 1, F1 = 1; P1 = 0 (none predicted), R1 = 0;
        // P2 = 0/1, R2 = 0 (none true) -> macro P = 1/3, R = 1/3, F1 = 1/3.
        let (probs, labels) = from_pairs(&[(0, 0), (1, 2)], 3);
        let m = classification(&probs, 3, &labels, &CLS);
        close(&m, "precision", 1.0 / 3.0);
        close(&m, "recall", 1.0 / 3.0);
        close(&m, "f1", 1.0 / 3.0);
    }

    #[test]
    fn empty_and_invalid_classification_input_is_null() {
        let all: Vec<Metric> = Metric::ALL.to_vec();
        let cases: [(&[f32], usize, &[u32]); 6] = [
            (&[], 2, &[]),                  // n = 0
            (&[0.5, 0.5, 0.1], 2, &[0, 1]), // probs.len() != n·k
            (&[0.5, 0.5], 2, &[2]),         // label >= k
            (&[1.0, 1.0], 1, &[0, 0]),      // k < 2
            (&[], 0, &[0]),                 // k = 0
            (&[f32::NAN, 0.5], 2, &[0]),    // NaN probability
        ];
        for (probs, k, labels) in cases {
            let m = classification(probs, k, labels, &all);
            assert_eq!(m.len(), all.len());
            assert!(
                m.values().all(Value::is_null),
                "{probs:?} {k} {labels:?}: {m:?}"
            );
        }
    }

    #[test]
    fn only_requested_metrics_and_wrong_kind_is_null() {
        let m = classification(&[0.2, 0.8], 2, &[1], &[Metric::Accuracy, Metric::Mse]);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["accuracy", "mse"]);
        close(&m, "accuracy", 1.0);
        is_null(&m, "mse");
        let m = regression(&[1.0], &[1.0], &[Metric::Mae, Metric::Accuracy]);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["accuracy", "mae"]);
        close(&m, "mae", 0.0);
        is_null(&m, "accuracy");
        // Infinite probabilities are ordered: +inf wins the argmax.
        let m = classification(&[0.5, f32::INFINITY], 2, &[1], &[Metric::Accuracy]);
        close(&m, "accuracy", 1.0);
    }

    #[test]
    fn regression_small_integers() {
        // preds [1, 2, 3, 4], targets [2, 2, 4, 6]: errors -1, 0, -1, -2
        // SS_res = 1 + 0 + 1 + 4 = 6 -> mse 1.5, rmse √1.5, mae (1 + 0 + 1 + 2)/4 = 1
        // mean target 3.5, SS_tot = 2.25 + 2.25 + 0.25 + 6.25 = 11 -> r2 = 1 - 6/11 = 5/11
        let m = regression(&[1.0, 2.0, 3.0, 4.0], &[2.0, 2.0, 4.0, 6.0], &REG);
        close(&m, "mse", 1.5);
        close(&m, "rmse", 1.5f64.sqrt());
        close(&m, "mae", 1.0);
        close(&m, "r2", 5.0 / 11.0);
        // Perfect predictions: r2 = 1, errors 0.
        let m = regression(&[1.0, 5.0], &[1.0, 5.0], &REG);
        close(&m, "r2", 1.0);
        close(&m, "mse", 0.0);
        // Predicting the mean: r2 = 0; worse than the mean: negative.
        let m = regression(&[2.0, 2.0], &[1.0, 3.0], &[Metric::R2]);
        close(&m, "r2", 0.0);
        let m = regression(&[3.0, 1.0], &[1.0, 3.0], &[Metric::R2]);
        close(&m, "r2", -3.0); // SS_res 8, SS_tot 2
    }

    #[test]
    fn regression_constant_target() {
        let m = regression(&[3.0, 3.0], &[3.0, 3.0], &[Metric::R2]);
        close(&m, "r2", 1.0);
        let m = regression(&[2.0, 4.0], &[3.0, 3.0], &[Metric::R2, Metric::Mse]);
        close(&m, "r2", 0.0);
        close(&m, "mse", 1.0);
    }

    #[test]
    fn regression_nan_inf_empty_and_mismatch_are_null() {
        let m = regression(&[f32::NAN, 1.0], &[1.0, 1.0], &REG);
        assert!(m.values().all(Value::is_null), "{m:?}");
        let m = regression(&[f32::NAN, 1.0], &[1.0, 2.0], &REG);
        assert!(m.values().all(Value::is_null), "{m:?}");
        let m = regression(&[f32::INFINITY, 1.0], &[1.0, 2.0], &REG);
        assert!(m.values().all(Value::is_null), "{m:?}");
        let m = regression(&[], &[], &REG);
        assert_eq!(m.len(), REG.len());
        assert!(m.values().all(Value::is_null), "{m:?}");
        let m = regression(&[1.0, 2.0], &[1.0], &REG);
        assert!(m.values().all(Value::is_null), "{m:?}");
    }

    fn fold(v: Value) -> BTreeMap<String, Value> {
        match v {
            Value::Object(o) => o.into_iter().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn mean_over_two_folds() {
        let a = fold(json!({
            "accuracy": 0.5, "loss": 1.0, "confusion": [[1, 2], [3, 4]],
            "roc_auc": 0.8, "mse": 2, "only_a": 1.0
        }));
        let b = fold(json!({
            "accuracy": 0.75, "loss": 0.5, "confusion": [[0, 1], [1, 0]],
            "roc_auc": null, "mse": 3
        }));
        let m = mean_over_folds(&[a, b]);
        close(&m, "accuracy", 0.625);
        close(&m, "loss", 0.75);
        close(&m, "mse", 2.5);
        assert_eq!(m["confusion"], json!([[1, 3], [4, 4]]));
        is_null(&m, "roc_auc"); // null in one fold
        is_null(&m, "only_a"); // missing in one fold
        assert_eq!(m.len(), 6);
    }

    #[test]
    fn mean_over_folds_edge_cases() {
        assert!(mean_over_folds(&[]).is_empty());
        let one = fold(json!({"accuracy": 0.25, "confusion": [[2]]}));
        assert_eq!(mean_over_folds(std::slice::from_ref(&one)), one);
        // Differing shapes, kinds, non-integer counts and overflow give null.
        let a = fold(json!({"c": [[1, 2]], "k": 1.0, "f": [[1.5]], "o": [[u64::MAX]]}));
        let b = fold(json!({"c": [[1], [2]], "k": [[1]], "f": [[1.5]], "o": [[1]]}));
        let m = mean_over_folds(&[a, b]);
        for key in ["c", "k", "f", "o"] {
            is_null(&m, key);
        }
    }
}
