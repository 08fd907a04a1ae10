//! Splits and batches: takes a loaded pool and the plan's `split`, gives train/val/test row
//! indices (one fold, or `k` for k-fold) drawn from the `split` random stream, and shuffled
//! mini-batches per epoch from the `shuffle/epoch-N` stream.

use super::error::{DataError, SPLIT};
use super::load::Data;
use crate::check::hir::{DatasetPlan, SourceRole, Split};
use crate::rng::Rng;

/// Row indices (into the `Data` pool) of one train/validation/test assignment, each sorted
/// ascending.
#[derive(Clone, Debug, PartialEq)]
pub struct Fold {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

impl Data {
    /// The train/val/test row indices: one `Fold` for random/holdout/none splits, `k` for
    /// k-fold. Deterministic in `seed` (stream `split`).
    pub fn folds(&self, plan: &DatasetPlan, seed: u64) -> Result<Vec<Fold>, DataError> {
        let mut rng = Rng::new(seed, "split");
        let with = |roles: &[SourceRole]| -> Vec<usize> {
            (0..self.len())
                .filter(|r| roles.contains(&self.role(*r)))
                .collect()
        };
        let train_pool = with(&[SourceRole::All, SourceRole::Train]);
        let val_rows = with(&[SourceRole::Val]);
        let test_rows = with(&[SourceRole::Test]);
        let folds = match &plan.split {
            Split::None => vec![Fold {
                train: train_pool,
                val: val_rows,
                test: test_rows,
            }],
            Split::Random {
                train,
                val,
                test,
                stratify,
            } => {
                let all: Vec<usize> = (0..self.len()).collect();
                let parts = self.deal_fractions(&all, &[*train, *val, *test], *stratify, &mut rng);
                let [tr, va, te]: [Vec<usize>; 3] = parts.try_into().unwrap_or_default();
                vec![Fold {
                    train: tr,
                    val: va,
                    test: te,
                }]
            }
            Split::Holdout { val, stratify } => {
                if !(0.0..1.0).contains(val) {
                    return Err(DataError::new(
                        SPLIT,
                        format!("a holdout fraction must be in [0, 1), not {val}"),
                    ));
                }
                let parts =
                    self.deal_fractions(&train_pool, &[1.0 - val, *val], *stratify, &mut rng);
                let [tr, mut va]: [Vec<usize>; 2] = parts.try_into().unwrap_or_default();
                va.extend(&val_rows);
                va.sort_unstable();
                vec![Fold {
                    train: tr,
                    val: va,
                    test: test_rows,
                }]
            }
            Split::KFold { k, stratify } => {
                let k = *k;
                if k < 2 || k > train_pool.len() {
                    return Err(DataError::new(
                        SPLIT,
                        format!(
                            "{k} folds need at least 2 folds and {k} rows, but there are {} training rows",
                            train_pool.len()
                        ),
                    ));
                }
                if !val_rows.is_empty() {
                    return Err(DataError::new(
                        SPLIT,
                        "`kfold` makes its own validation folds, but the dataset has a `source val`",
                    ));
                }
                let mut parts = vec![Vec::new(); k];
                let mut next = 0;
                for mut group in self.groups(&train_pool, *stratify) {
                    rng.shuffle(&mut group);
                    for r in group {
                        parts[next % k].push(r);
                        next += 1;
                    }
                }
                for p in &mut parts {
                    p.sort_unstable();
                }
                (0..k)
                    .map(|i| {
                        let mut train: Vec<usize> = parts
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .flat_map(|(_, p)| p.iter().copied())
                            .collect();
                        train.sort_unstable();
                        Fold {
                            train,
                            val: parts[i].clone(),
                            test: test_rows.clone(),
                        }
                    })
                    .collect()
            }
        };
        for (i, f) in folds.iter().enumerate() {
            if f.train.is_empty() {
                let which = if folds.len() > 1 {
                    format!(" in fold {}", i + 1)
                } else {
                    String::new()
                };
                return Err(DataError::new(
                    SPLIT,
                    format!(
                        "the split of dataset `{}` leaves no training rows{which} ({} rows loaded)",
                        plan.name,
                        self.len()
                    ),
                )
                .with_help("check the split fractions and the data files"));
            }
        }
        Ok(folds)
    }

    /// `rows` grouped by class (in class order) when stratifying a classification target,
    /// else one group; each group ascending.
    fn groups(&self, rows: &[usize], stratify: bool) -> Vec<Vec<usize>> {
        if !stratify || rows.first().and_then(|r| self.class(*r)).is_none() {
            return vec![rows.to_vec()];
        }
        let classes = rows
            .iter()
            .filter_map(|r| self.class(*r))
            .max()
            .map_or(0, |m| m as usize + 1);
        let mut groups = vec![Vec::new(); classes];
        for &r in rows {
            if let Some(c) = self.class(r) {
                groups[c as usize].push(r);
            }
        }
        groups
    }

    /// Shuffle each group of `rows` and cut it into parts of the given fractions (counts by
    /// largest remainder); each part sorted ascending.
    fn deal_fractions(
        &self,
        rows: &[usize],
        fractions: &[f64],
        stratify: bool,
        rng: &mut Rng,
    ) -> Vec<Vec<usize>> {
        let mut parts = vec![Vec::new(); fractions.len()];
        for mut group in self.groups(rows, stratify) {
            rng.shuffle(&mut group);
            let counts = largest_remainder(group.len(), fractions);
            let mut at = 0;
            for (p, c) in parts.iter_mut().zip(counts) {
                p.extend_from_slice(&group[at..at + c]);
                at += c;
            }
        }
        for p in &mut parts {
            p.sort_unstable();
        }
        parts
    }
}

/// Split `n` into counts proportional to `fractions` that sum to `n`: floors first, then one
/// more to the largest fractional parts (ties to the earlier part).
pub fn largest_remainder(n: usize, fractions: &[f64]) -> Vec<usize> {
    let total: f64 = fractions.iter().map(|f| f.max(0.0)).sum();
    if total <= 0.0 || fractions.is_empty() {
        let mut v = vec![0; fractions.len()];
        if let Some(first) = v.first_mut() {
            *first = n;
        }
        return v;
    }
    let exact: Vec<f64> = fractions
        .iter()
        .map(|f| n as f64 * f.max(0.0) / total)
        .collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let assigned: usize = counts.iter().sum();
    let mut order: Vec<usize> = (0..fractions.len()).collect();
    order.sort_by(|a, b| {
        let (fa, fb) = (exact[*a] - exact[*a].floor(), exact[*b] - exact[*b].floor());
        fb.total_cmp(&fa).then(a.cmp(b))
    });
    for i in order.into_iter().take(n.saturating_sub(assigned)) {
        counts[i] += 1;
    }
    counts
}

/// Shuffled batches of `rows` for one epoch: shuffled with the stream
/// `shuffle/epoch-{epoch}`, then cut into chunks of `batch` (the last may be smaller; none is
/// dropped).
pub fn shuffled_batches(rows: &[usize], batch: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order = rows.to_vec();
    Rng::new(seed, &format!("shuffle/epoch-{epoch}")).shuffle(&mut order);
    order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}
