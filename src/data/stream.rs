//! Streamed datasets (`stream = true`): the rows are read from the sources a chunk at a time,
//! pass after pass, and never held whole.
//!
//! - **Split.** Each row's part comes from its key (`Data::stream`: a hash under the seed of
//!   the text of its feature and target fields): `u` = the key's top 53 bits as a fraction of
//!   one; `random(train: a, val: b, test: c)` gives train for `u < a`, val for `u < a + b`,
//!   test otherwise; `holdout(val: v)` gives the train source's row val for `u < v`; named
//!   `val`/`test` sources are their part. Equal rows land in one part.
//! - **Fit.** Every statistic is fitted on the training rows, step after step: one pass per
//!   round of statistics (a mean, a range, level counts: one; `standardize`: two, the mean and
//!   then the squared deviations, as in memory). Medians and quantiles are exact: a first pass
//!   counts values by the top 16 bits of their order-preserving key, later passes narrow the
//!   one bucket holding each wanted rank (16 bits a pass) until it holds few enough values to
//!   sort. Summed in source order, the statistics equal those fitted in memory on the same
//!   training rows in source order.
//! - **Shuffle.** A buffer of `shuffle_buffer` rows, filled in source order; once full, each
//!   new row swaps out a uniformly drawn one (stream `shuffle/epoch-N`), which goes to the
//!   batch; at the end the rest of the buffer is shuffled (Fisher-Yates, same stream) and
//!   follows. Batches are cut from that order, the last may be smaller.

use super::error::{DataError, SPLIT, STREAM, VALUE};
use super::load::{Column, Data, QueriedRows};
use super::preprocess::{
    FeatureKind, FittedFeature, FittedStep, LevelCounts, Preprocessor, category_steps, order_step,
    order_what, snapped,
};
use super::stats;
use crate::check::hir::{ColumnKind, DatasetPlan, SourceRole, Split, Step};
use crate::rng::Rng;

/// Rows read from a source at a time.
pub const CHUNK: usize = 1 << 16;

/// The part of the data a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Train,
    Val,
    Test,
}

/// Rows in each part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

impl Counts {
    pub fn of(&self, part: Part) -> usize {
        match part {
            Part::Train => self.train,
            Part::Val => self.val,
            Part::Test => self.test,
        }
    }
}

/// The fraction in [0, 1) a key stands for.
pub fn unit(key: u64) -> f64 {
    (key >> 11) as f64 / (1u64 << 53) as f64
}

/// The part of a row from `role`'s source with `key`.
pub fn part_of(split: &Split, role: SourceRole, key: u64) -> Part {
    match role {
        SourceRole::Val => return Part::Val,
        SourceRole::Test => return Part::Test,
        SourceRole::All | SourceRole::Train => {}
    }
    let u = unit(key);
    match split {
        Split::Random { train, val, .. } => {
            if u < *train {
                Part::Train
            } else if u < train + val {
                Part::Val
            } else {
                Part::Test
            }
        }
        Split::Holdout { val, .. } if u < *val => Part::Val,
        _ => Part::Train,
    }
}

/// What one pass read: its rows and the wrapping sum of their keys. Every pass of a run must
/// read what the first did (a source appended to or edited mid-run would otherwise give
/// batches of sizes nobody compiled, or statistics of rows that are gone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    pub rows: u64,
    pub keys: u64,
}

impl Digest {
    /// An error unless `now` (a later pass) read the rows of `self` (the first).
    pub fn same(self, now: Digest) -> Result<(), DataError> {
        if self == now {
            return Ok(());
        }
        let what = if self.rows == now.rows {
            format!("the same number of rows ({}) but other values", now.rows)
        } else {
            format!("{} rows where the first read {}", now.rows, self.rows)
        };
        Err(DataError::new(
            STREAM,
            format!("the streamed sources changed during the run: a later pass read {what}"),
        )
        .with_help("a streamed dataset is read several times: keep its files (and a query's rows, in a fixed ORDER BY) unchanged until the run ends"))
    }
}

/// Every chunk of a streamed dataset with the key and part of each of its rows. Returns what
/// the SQL sources returned and the pass's digest.
pub fn visit(
    plan: &DatasetPlan,
    seed: u64,
    mut f: impl FnMut(&Data, &[u64], &[Part]) -> Result<(), DataError>,
) -> Result<(Vec<QueriedRows>, Digest), DataError> {
    let mut parts = Vec::new();
    let mut digest = Digest::default();
    let queried = Data::stream(plan, seed, CHUNK, |data, keys| {
        parts.clear();
        parts.extend(
            keys.iter()
                .enumerate()
                .map(|(r, k)| part_of(&plan.split, data.role(r), *k)),
        );
        digest.rows += keys.len() as u64;
        digest.keys = keys.iter().fold(digest.keys, |a, k| a.wrapping_add(*k));
        f(data, keys, &parts)
    })?;
    Ok((queried, digest))
}

/// The rows of `part` in a chunk.
pub fn rows_of(parts: &[Part], part: Part) -> Vec<usize> {
    (0..parts.len()).filter(|r| parts[*r] == part).collect()
}

/// What fitting a streamed dataset found: the preprocessing, the rows of each part, what
/// each SQL source returned and the digest of the rows (from the first pass).
#[derive(Debug)]
pub struct Fitted {
    pub pre: Preprocessor,
    pub counts: Counts,
    pub queried: Vec<QueriedRows>,
    pub digest: Digest,
    /// Passes over the sources the fit took.
    pub passes: usize,
}

/// The rows of each part, in one pass.
pub fn count(
    plan: &DatasetPlan,
    seed: u64,
) -> Result<(Counts, Vec<QueriedRows>, Digest), DataError> {
    let mut c = Counts::default();
    let (queried, digest) = visit(plan, seed, |_, _, parts| {
        for p in parts {
            match p {
                Part::Train => c.train += 1,
                Part::Val => c.val += 1,
                Part::Test => c.test += 1,
            }
        }
        Ok(())
    })?;
    Ok((c, queried, digest))
}

/// Values at most a bucket may hold for its ranks to be found by sorting it (2 MiB of them).
const SORTED: usize = 1 << 18;

/// The order-preserving key of a number (`f64::total_cmp` order).
fn order_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | 1 << 63 }
}

fn from_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// A wanted order statistic: its rank, the key prefix of the bucket known to hold it, the
/// values with keys below that bucket, and what the current pass does about it.
struct Probe {
    /// The ranks this bucket holds (one probe per bucket).
    ranks: Vec<usize>,
    prefix: u64,
    bits: u32,
    below: usize,
    state: Probing,
}

enum Probing {
    /// Count the values of the bucket by their next 16 key bits.
    Count(Vec<u64>),
    /// Keep the bucket's values, to sort.
    Keep(Vec<f64>),
    /// The bucket's values, sorted (or its one value, once narrowed to a whole key).
    Found(Vec<f64>),
}

impl Probe {
    /// The probe for `rank` in the bucket `prefix` (`bits` long) that histogram `hist` (of
    /// the 16 bits after the prefix) counted.
    fn narrowed(rank: usize, prefix: u64, bits: u32, below: usize, hist: &[u64]) -> Probe {
        let mut cum = below;
        let mut b = 0;
        while b + 1 < hist.len() && cum + hist[b] as usize <= rank {
            cum += hist[b] as usize;
            b += 1;
        }
        let (prefix, bits) = ((prefix << 16) | b as u64, bits + 16);
        let state = if bits == 64 {
            Probing::Found(vec![from_key(prefix)])
        } else if hist[b] as usize <= SORTED {
            Probing::Keep(Vec::new())
        } else {
            Probing::Count(vec![0; 1 << 16])
        };
        Probe {
            ranks: vec![rank],
            prefix,
            bits,
            below: cum,
            state,
        }
    }

    fn feed(&mut self, k: u64, x: f64) {
        if k >> (64 - self.bits) != self.prefix {
            return;
        }
        match &mut self.state {
            Probing::Count(h) => h[((k >> (48 - self.bits)) & 0xffff) as usize] += 1,
            Probing::Keep(v) => v.push(x),
            Probing::Found(_) => {}
        }
    }

    /// After a pass: a counted bucket narrows (one probe per rank, merged again by
    /// `Select::finish` where they share a bucket), a kept one is sorted.
    fn finish(self) -> Vec<Probe> {
        match self.state {
            Probing::Count(h) => self
                .ranks
                .iter()
                .map(|r| Probe::narrowed(*r, self.prefix, self.bits, self.below, &h))
                .collect(),
            Probing::Keep(mut v) => {
                v.sort_by(f64::total_cmp);
                vec![Probe {
                    state: Probing::Found(v),
                    ..self
                }]
            }
            Probing::Found(_) => vec![self],
        }
    }

    /// The value of rank `r`, once found (`None` if the bucket held fewer values than the
    /// first pass counted: the digest check reports that).
    fn value_of(&self, r: usize) -> Option<f64> {
        match &self.state {
            Probing::Found(v) if v.len() == 1 && self.bits == 64 => Some(v[0]),
            Probing::Found(v) => v.get(r.checked_sub(self.below)?).copied(),
            _ => None,
        }
    }
}

/// Exact order statistics of the values fed, over passes.
struct Select {
    n: usize,
    /// The first pass: the count by the top 16 key bits.
    top: Option<Vec<u64>>,
    probes: Vec<Probe>,
    /// The ranks wanted, in order.
    wanted: Vec<usize>,
    /// The ranks wanted, as a function of the count.
    ranks: fn(usize, &[f64]) -> Vec<usize>,
    args: Vec<f64>,
}

impl Select {
    fn new(ranks: fn(usize, &[f64]) -> Vec<usize>, args: Vec<f64>) -> Select {
        Select {
            n: 0,
            top: Some(vec![0; 1 << 16]),
            probes: Vec::new(),
            wanted: Vec::new(),
            ranks,
            args,
        }
    }

    fn feed(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        let k = order_key(x);
        match &mut self.top {
            Some(h) => {
                self.n += 1;
                h[(k >> 48) as usize] += 1;
            }
            None => self.probes.iter_mut().for_each(|p| p.feed(k, x)),
        }
    }

    /// After a pass: the values at the wanted ranks once all are found.
    fn finish(&mut self) -> Option<Vec<f64>> {
        if let Some(h) = self.top.take() {
            if self.n == 0 {
                return Some(Vec::new());
            }
            let ranks = (self.ranks)(self.n, &self.args);
            self.probes = ranks
                .iter()
                .map(|r| Probe::narrowed(*r, 0, 0, 0, &h))
                .collect();
            self.wanted = ranks;
        } else {
            self.probes = std::mem::take(&mut self.probes)
                .into_iter()
                .flat_map(Probe::finish)
                .collect();
        }
        // Ranks in one bucket share its probe: one histogram or one kept copy of its values.
        let mut shared: Vec<Probe> = Vec::new();
        for p in std::mem::take(&mut self.probes) {
            match shared
                .iter_mut()
                .find(|q| (q.prefix, q.bits) == (p.prefix, p.bits))
            {
                Some(q) => q.ranks.extend(p.ranks),
                None => shared.push(p),
            }
        }
        self.probes = shared;
        let mut found = Vec::with_capacity(self.wanted.len());
        for r in &self.wanted {
            let p = self.probes.iter().find(|p| p.ranks.contains(r))?;
            found.push(p.value_of(*r)?);
        }
        Some(found)
    }
}

fn median_ranks(n: usize, _: &[f64]) -> Vec<usize> {
    let (lo, hi) = stats::median_ranks(n);
    vec![lo, hi]
}

/// The median's two ranks, then each quantile's two.
fn quantile_ranks(n: usize, qs: &[f64]) -> Vec<usize> {
    let mut v = median_ranks(n, qs);
    for q in qs {
        let (lo, hi, _) = stats::quantile_ranks(n, *q);
        v.extend([lo, hi]);
    }
    v
}

/// What one numeric step needs from a pass over the training values.
enum Acc {
    Sum { sum: f64, n: usize },
    Squares { mean: f64, ss: f64, n: usize },
    Range { min: f64, max: f64 },
    Select(Select),
}

impl Acc {
    fn feed(&mut self, x: f64) {
        match self {
            Acc::Select(s) => s.feed(x),
            _ if x.is_nan() => {}
            Acc::Sum { sum, n } => {
                *sum += x;
                *n += 1;
            }
            Acc::Squares { mean, ss, n } => {
                *ss += (x - *mean) * (x - *mean);
                *n += 1;
            }
            Acc::Range { min, max } => {
                *min = min.min(x);
                *max = max.max(x);
            }
        }
    }
}

/// A numeric feature being fitted: its steps, those fitted, and the statistic the current
/// one waits for.
struct NumberFit<'p> {
    column: &'p str,
    steps: &'p [Step],
    next: usize,
    done: Vec<FittedStep>,
    acc: Option<Acc>,
}

impl NumberFit<'_> {
    fn no_values(&self, what: &str) -> DataError {
        DataError::new(
            VALUE,
            format!(
                "column `{}` has no values in the training rows to compute its {what}",
                self.column
            ),
        )
    }

    /// Fit the steps that need no statistic, up to the next that does (or the end).
    fn advance(&mut self) -> Result<(), DataError> {
        while self.acc.is_none() && self.next < self.steps.len() {
            let step = &self.steps[self.next];
            let fitted = match step {
                Step::ImputeMean | Step::Standardize => {
                    self.acc = Some(Acc::Sum { sum: 0.0, n: 0 });
                    None
                }
                Step::MinMax => {
                    self.acc = Some(Acc::Range {
                        min: f64::INFINITY,
                        max: f64::NEG_INFINITY,
                    });
                    None
                }
                Step::ImputeMedian => {
                    self.acc = Some(Acc::Select(Select::new(median_ranks, Vec::new())));
                    None
                }
                Step::RobustScale => {
                    self.acc = Some(Acc::Select(Select::new(quantile_ranks, vec![0.25, 0.75])));
                    None
                }
                Step::Winsorize { lo, hi } => {
                    self.acc = Some(Acc::Select(Select::new(quantile_ranks, vec![*lo, *hi])));
                    None
                }
                Step::ImputeConstant {
                    value: crate::check::hir::ConstValue::Number(x),
                } => Some(FittedStep::ImputeConstant {
                    value: super::Fill::Number(*x),
                }),
                Step::DropMissing => Some(FittedStep::DropMissing),
                Step::KeepMissing => Some(FittedStep::KeepMissing),
                Step::Normalize { mean, std } => Some(FittedStep::Normalize {
                    mean: *mean,
                    std: *std,
                }),
                Step::Scale { factor } => Some(FittedStep::Scale { factor: *factor }),
                Step::Log1p => Some(FittedStep::Log1p),
                Step::Clip { lo, hi } => Some(FittedStep::Clip { lo: *lo, hi: *hi }),
                other => {
                    return Err(DataError::new(
                        VALUE,
                        format!(
                            "the step {other:?} is not fitted on a streamed dataset (feature `{}`)",
                            self.column
                        ),
                    ));
                }
            };
            if let Some(f) = fitted {
                self.done.push(snapped(f));
                self.next += 1;
            }
        }
        Ok(())
    }

    /// After a pass: fit the current step if its statistic is complete.
    fn finish(&mut self) -> Result<(), DataError> {
        let Some(acc) = self.acc.take() else {
            return Ok(());
        };
        let step = &self.steps[self.next];
        let fitted = match (acc, step) {
            (Acc::Sum { n: 0, .. }, _) => return Err(self.no_values("mean")),
            (Acc::Sum { sum, n }, Step::Standardize) => {
                self.acc = Some(Acc::Squares {
                    mean: sum / n as f64,
                    ss: 0.0,
                    n: 0,
                });
                return Ok(());
            }
            (Acc::Sum { sum, n }, _) => FittedStep::ImputeMean {
                value: sum / n as f64,
            },
            (Acc::Squares { mean, ss, n }, _) => {
                let std = (ss / n.max(1) as f64).sqrt();
                FittedStep::Standardize {
                    mean,
                    std: if std > 0.0 { std } else { 1.0 },
                }
            }
            (Acc::Range { min, max }, _) if min > max => return Err(self.no_values("range")),
            (Acc::Range { min, max }, _) => FittedStep::MinMax { min, max },
            (Acc::Select(mut s), step) => {
                let Some(v) = s.finish() else {
                    self.acc = Some(Acc::Select(s));
                    return Ok(());
                };
                if v.is_empty() {
                    return Err(self.no_values(order_what(step)));
                }
                let n = s.n;
                let median = stats::median_of(v[0], v[1], n % 2 == 1);
                // Quantile `p` of the arguments: its two ranks follow the median's.
                order_step(step, median, |p| {
                    s.args.iter().position(|a| *a == p).map_or(f64::NAN, |k| {
                        let i = 2 + 2 * k;
                        stats::interpolate(v[i], v[i + 1], stats::quantile_ranks(n, p).2)
                    })
                })
            }
        };
        self.done.push(snapped(fitted));
        self.next += 1;
        self.advance()
    }
}

enum FeatureFit<'p> {
    Number(NumberFit<'p>),
    Category(LevelCounts),
}

/// Fit a streamed dataset's preprocessing on its training rows, in as many passes over the
/// sources as its steps need (one at least, which also counts the parts).
pub fn fit(plan: &DatasetPlan, seed: u64) -> Result<Fitted, DataError> {
    let mut fits: Vec<FeatureFit<'_>> = Vec::with_capacity(plan.features.len());
    for f in &plan.features {
        fits.push(match &f.kind {
            ColumnKind::Numeric => {
                let mut n = NumberFit {
                    column: &f.column,
                    steps: &f.steps,
                    next: 0,
                    done: Vec::new(),
                    acc: None,
                };
                n.advance()?;
                FeatureFit::Number(n)
            }
            ColumnKind::Category { levels } => {
                FeatureFit::Category(LevelCounts::new(levels.clone()))
            }
            ColumnKind::Tensor { .. } => {
                return Err(DataError::new(
                    VALUE,
                    format!("the image feature `{}` is not streamed", f.column),
                ));
            }
        });
    }
    let mut counts: Option<Counts> = None;
    let mut queried = Vec::new();
    let mut first_digest = Digest::default();
    let mut passes = 0;
    loop {
        let first = counts.is_none();
        let waiting = fits
            .iter()
            .any(|f| matches!(f, FeatureFit::Number(n) if n.acc.is_some()));
        if !first && !waiting {
            break;
        }
        let mut c = Counts::default();
        passes += 1;
        let (q, digest) = visit(plan, seed, |data, _, parts| {
            let train = rows_of(parts, Part::Train);
            if first {
                c.train += train.len();
                c.val += parts.iter().filter(|p| **p == Part::Val).count();
                c.test += parts.iter().filter(|p| **p == Part::Test).count();
            }
            for (f, fit) in plan.features.iter().zip(fits.iter_mut()) {
                match (fit, data.column(&f.column)) {
                    (FeatureFit::Number(n), Some(Column::Numeric(xs))) => {
                        let Some(acc) = n.acc.as_mut() else { continue };
                        for r in &train {
                            let mut x = xs[*r];
                            for s in &n.done {
                                x = super::transform::apply(s, x).map_err(|x| {
                                    super::transform::log1p_error(n.column, x, data, *r)
                                })?;
                            }
                            acc.feed(x);
                        }
                    }
                    (FeatureFit::Category(lc), Some(Column::Category { codes, levels })) => {
                        if first {
                            train.iter().for_each(|r| lc.add(codes[*r]));
                            lc.levels.clone_from(levels);
                        }
                    }
                    _ => {
                        return Err(DataError::new(
                            VALUE,
                            format!(
                                "the loaded column `{}` does not have the plan's type",
                                f.column
                            ),
                        ));
                    }
                }
            }
            Ok(())
        })?;
        if first {
            if c.train == 0 {
                return Err(DataError::new(
                    SPLIT,
                    "there are no training rows to fit the preprocessing on",
                ));
            }
            counts = Some(c);
            queried = q;
            first_digest = digest;
        } else {
            first_digest.same(digest)?;
        }
        for fit in fits.iter_mut() {
            if let FeatureFit::Number(n) = fit {
                n.finish()?;
            }
        }
    }
    let mut features = Vec::with_capacity(fits.len());
    for (f, fit) in plan.features.iter().zip(fits) {
        features.push(match (fit, &f.kind) {
            (FeatureFit::Number(n), _) => FittedFeature {
                column: f.column.clone(),
                kind: FeatureKind::Numeric,
                width: 1,
                steps: n.done,
            },
            (FeatureFit::Category(lc), ColumnKind::Category { levels: block }) => {
                match category_steps(&f.column, &f.steps, block, lc)? {
                    (fitted, None) => fitted,
                    (_, Some(_)) => {
                        return Err(DataError::new(
                            STREAM,
                            format!(
                                "feature `{}`: steps after `ordinal` are not fitted on a streamed dataset",
                                f.column
                            ),
                        ));
                    }
                }
            }
            _ => return Err(DataError::new(VALUE, "a feature of another kind")),
        });
    }
    Ok(Fitted {
        pre: Preprocessor { features },
        counts: counts.unwrap_or_default(),
        queried,
        digest: first_digest,
        passes,
    })
}

/// The order rows are batched in: a bounded shuffle buffer (see the module's notes).
pub struct Shuffle {
    width: usize,
    cap: usize,
    x: Vec<f32>,
    y: Vec<f32>,
    rng: Rng,
}

impl Shuffle {
    pub fn new(width: usize, cap: usize, seed: u64, epoch: usize) -> Shuffle {
        Shuffle {
            width,
            cap: cap.max(1),
            x: Vec::new(),
            y: Vec::new(),
            rng: Rng::new(seed, &format!("shuffle/epoch-{epoch}")),
        }
    }

    fn len(&self) -> usize {
        self.y.len()
    }

    /// Take in one row (`width` inputs and its target); `out` gets the row it lets go, if any.
    pub fn push(&mut self, x: &[f32], y: f32, out: &mut impl FnMut(&[f32], f32)) {
        if self.len() < self.cap {
            self.x.extend_from_slice(x);
            self.y.push(y);
            return;
        }
        let j = self.rng.below(self.cap as u64) as usize;
        let w = self.width;
        out(&self.x[j * w..(j + 1) * w], self.y[j]);
        self.x[j * w..(j + 1) * w].copy_from_slice(x);
        self.y[j] = y;
    }

    /// The rows still held, shuffled.
    pub fn drain(&mut self, out: &mut impl FnMut(&[f32], f32)) {
        let n = self.len();
        let mut order: Vec<usize> = (0..n).collect();
        self.rng.shuffle(&mut order);
        let w = self.width;
        for j in order {
            out(&self.x[j * w..(j + 1) * w], self.y[j]);
        }
        self.x.clear();
        self.y.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_sort_like_total_cmp_and_invert() {
        let mut xs = vec![3.5, -0.0, 0.0, -7.25, 1e-300, -1e300, f64::INFINITY, 2.0];
        let mut by_key = xs.clone();
        by_key.sort_by_key(|x| order_key(*x));
        xs.sort_by(f64::total_cmp);
        assert_eq!(
            by_key.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        for x in xs {
            assert_eq!(from_key(order_key(x)).to_bits(), x.to_bits());
        }
    }

    /// Quantiles found in passes equal those of the sorted values, also when one bucket
    /// holds more values than are sorted at once (narrowed 16 bits a pass) and when the
    /// wanted values repeat.
    #[test]
    fn selection_in_passes_is_exact() {
        let mut rng = Rng::new(5, "test");
        let mut cases: Vec<Vec<f64>> = vec![
            (0..1001).map(|_| rng.next_f64() * 100.0 - 50.0).collect(),
            vec![4.0, 1.0, f64::NAN, 3.0, 2.0],
            vec![7.0; 10],
        ];
        // Over SORTED values in [1, 1 + 2^-10): one top bucket, narrowed twice or more.
        cases.push(
            (0..SORTED + 4321)
                .map(|_| 1.0 + rng.next_f64() / 1024.0)
                .collect(),
        );
        for vals in cases {
            let mut s = Select::new(quantile_ranks, vec![0.25, 0.75, 0.01]);
            let mut passes = 0;
            let got = loop {
                vals.iter().for_each(|x| s.feed(*x));
                passes += 1;
                if let Some(v) = s.finish() {
                    break v;
                }
                assert!(passes < 6);
            };
            let sorted = stats::sorted(&vals);
            let n = sorted.len();
            let median = stats::median_of(got[0], got[1], n % 2 == 1);
            assert_eq!(Some(median), stats::median_sorted(&sorted));
            for (i, q) in [0.25, 0.75, 0.01].iter().enumerate() {
                let frac = stats::quantile_ranks(n, *q).2;
                let x = stats::interpolate(got[2 + 2 * i], got[3 + 2 * i], frac);
                assert_eq!(Some(x), stats::quantile_sorted(&sorted, *q), "q {q}");
            }
            if vals.len() > SORTED {
                assert!(passes >= 3, "{passes} passes");
            }
        }
    }

    #[test]
    fn the_shuffle_buffer_lets_every_row_out_once_in_a_seeded_order() {
        let order = |cap: usize, seed: u64, epoch: usize| {
            let mut s = Shuffle::new(1, cap, seed, epoch);
            let mut out = Vec::new();
            let mut take = |x: &[f32], y: f32| {
                assert_eq!(x[0], y);
                out.push(y as usize);
            };
            for i in 0..100 {
                s.push(&[i as f32], i as f32, &mut take);
            }
            s.drain(&mut take);
            out
        };
        let a = order(16, 7, 0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        assert_eq!(order(16, 7, 0), a);
        assert_ne!(order(16, 7, 1), a);
        assert_ne!(order(16, 8, 0), a);
        // A row can only leave after the buffer has filled: the first out is one of the first 17.
        assert!(a[0] <= 16);
        // A buffer as large as the data shuffles it whole.
        assert_eq!(order(1000, 7, 0).len(), 100);
    }

    #[test]
    fn parts_follow_the_fractions() {
        let split = Split::Random {
            train: 0.7,
            val: 0.2,
            test: 0.1,
            stratify: false,
        };
        let mut c = [0usize; 3];
        for i in 0..100_000u64 {
            match part_of(&split, SourceRole::All, crate::rng::mix(i)) {
                Part::Train => c[0] += 1,
                Part::Val => c[1] += 1,
                Part::Test => c[2] += 1,
            }
        }
        assert!((69_000..71_000).contains(&c[0]), "{c:?}");
        assert!((19_000..21_000).contains(&c[1]), "{c:?}");
        assert!((9_000..11_000).contains(&c[2]), "{c:?}");
        assert_eq!(part_of(&split, SourceRole::Test, 0), Part::Test);
        let hold = Split::Holdout {
            val: 0.25,
            stratify: false,
        };
        assert_eq!(part_of(&hold, SourceRole::Train, 0), Part::Val);
        assert_eq!(part_of(&hold, SourceRole::Train, u64::MAX), Part::Train);
        assert_eq!(part_of(&hold, SourceRole::Val, u64::MAX), Part::Val);
    }
}
