//! Feature binning: takes training rows, gives per-feature quantile edges and the rows' bin
//! codes (`u8`, column-major), the representation every histogram is built from.
//!
//! A feature with `e` edges has `e + 1` bins for non-missing values and code `e + 1` for a
//! missing value. A value `x` gets the number of edges below it, so `x <= edges[b]` exactly when
//! its code is `<= b`: a split after bin `b` is the threshold `edges[b]`, and `Tree::leaf_of`
//! on the raw value agrees with the code bit for bit.

use super::Rows;
use crate::rng::Rng;

/// The most bins for non-missing values (one more code is the missing bin).
pub const MAX_BINS: usize = 255;

/// Edges are fitted on at most this many rows (a deterministic sample above it), as the
/// quantiles of a large sample are as good as exact ones and sorting all rows is slow.
const FIT_SAMPLE: usize = 200_000;

pub(crate) struct Binned {
    pub n: usize,
    /// Column-major codes: feature f of row r is `codes[f * n + r]`.
    pub codes: Vec<u8>,
    /// Per feature, ascending upper edges of all bins but the last.
    pub edges: Vec<Vec<f32>>,
    /// Per feature, whether any training row misses it.
    pub has_missing: Vec<bool>,
    /// Per feature whose most frequent code holds at least `SPARSE_SHARE` of the rows: that
    /// code and the other rows, ascending.
    pub sparse: Vec<Option<Sparse>>,
}

/// The rows of a feature outside its most frequent code (`common`).
pub(crate) struct Sparse {
    pub common: u8,
    pub rows: Vec<u32>,
}

/// A feature is kept sparse when its most frequent code holds this share of the rows: its other
/// rows then cost at most 1.2 bytes a row beside the codes, and summing only them is cheaper
/// than summing a node's rows from the first level on (a node holds at most half the rows).
const SPARSE_SHARE: f64 = 0.7;

impl Binned {
    /// Fits edges for every feature of `rows` and codes the rows.
    pub fn fit(rows: &Rows<'_>, bins: usize, seed: u64, threads: usize) -> Binned {
        let n = rows.len();
        let sample = fit_sample(n, seed);
        let cols = rows.cols;
        let mut edges = vec![Vec::new(); cols];
        for_blocks(threads, &mut edges, 1, |f0, block| {
            for (i, e) in block.iter_mut().enumerate() {
                *e = fit_edges(rows, f0 + i, &sample, bins);
            }
        });
        let mut codes = vec![0u8; cols * n];
        let edges_ref = &edges;
        for_blocks(threads, &mut codes, n, |f0, block| {
            code_columns(rows, f0, block, edges_ref)
        });
        let has_missing = (0..cols)
            .map(|f| {
                let miss = edges[f].len() as u8 + 1;
                codes[f * n..(f + 1) * n].contains(&miss)
            })
            .collect();
        let mut sparse: Vec<Option<Sparse>> = (0..cols).map(|_| None).collect();
        let codes_ref = &codes;
        for_blocks(threads, &mut sparse, 1, |f0, block| {
            for (i, s) in block.iter_mut().enumerate() {
                *s = sparse_rows(&codes_ref[(f0 + i) * n..(f0 + i + 1) * n]);
            }
        });
        Binned {
            n,
            codes,
            edges,
            has_missing,
            sparse,
        }
    }

    pub fn col(&self, f: usize) -> &[u8] {
        &self.codes[f * self.n..(f + 1) * self.n]
    }

    /// Bins for non-missing values of feature `f`; the missing code equals it.
    pub fn nonmissing_bins(&self, f: usize) -> usize {
        self.edges[f].len() + 1
    }

    /// Whether feature `f` can split any node at all.
    pub fn usable(&self, f: usize) -> bool {
        !self.edges[f].is_empty() || self.has_missing[f]
    }

    /// The threshold of a split after bin `b` of feature `f`: its upper edge, or infinity for
    /// the last bin (a split of missing from non-missing values).
    pub fn threshold(&self, f: usize, b: usize) -> f32 {
        self.edges[f].get(b).copied().unwrap_or(f32::INFINITY)
    }
}

/// A column's rows outside its most frequent code, when that code holds `SPARSE_SHARE`.
fn sparse_rows(col: &[u8]) -> Option<Sparse> {
    let mut counts = [0usize; 256];
    for &c in col {
        counts[c as usize] += 1;
    }
    let (common, &most) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(c, n)| (n, usize::MAX - c))?;
    if col.is_empty() || (most as f64) < SPARSE_SHARE * col.len() as f64 {
        return None;
    }
    let common = common as u8;
    let rows = (0..col.len() as u32)
        .filter(|&r| col[r as usize] != common)
        .collect();
    Some(Sparse { common, rows })
}

/// The rows edges are fitted on: all of them, or a sorted selection sample of `FIT_SAMPLE`.
fn fit_sample(n: usize, seed: u64) -> Vec<usize> {
    if n <= FIT_SAMPLE {
        return (0..n).collect();
    }
    let mut rng = Rng::new(seed, "trees/bin-sample");
    let mut out = Vec::with_capacity(FIT_SAMPLE);
    for r in 0..n {
        let need = (FIT_SAMPLE - out.len()) as f64;
        if rng.next_f64() * ((n - r) as f64) < need {
            out.push(r);
        }
    }
    out
}

/// Quantile edges of feature `f`: one bin per distinct value when there are at most `bins`,
/// else greedy bins of about equal row counts (a heavy value keeps a bin of its own). An edge
/// lies between two neighbouring distinct values (their midpoint, as f32, never equal to the
/// larger one).
fn fit_edges(rows: &Rows<'_>, f: usize, sample: &[usize], bins: usize) -> Vec<f32> {
    let mut v: Vec<f32> = sample
        .iter()
        .map(|&r| rows.x[r * rows.cols + f])
        .filter(|x| !x.is_nan())
        .collect();
    v.sort_unstable_by(f32::total_cmp);
    let mut vals: Vec<f32> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for x in v {
        match counts.last_mut() {
            Some(c) if vals.last() == Some(&x) => *c += 1,
            _ => {
                vals.push(x);
                counts.push(1);
            }
        }
    }
    if vals.len() <= bins {
        return vals.windows(2).map(|w| midpoint(w[0], w[1])).collect();
    }
    let mut edges = Vec::with_capacity(bins - 1);
    let mut remaining: usize = counts.iter().sum();
    let mut bins_left = bins;
    let mut acc = 0usize;
    for j in 0..vals.len() - 1 {
        acc += counts[j];
        let target = remaining as f64 / bins_left as f64;
        let now = acc as f64;
        let next = (acc + counts[j + 1]) as f64;
        if now >= target || next - target > target - now {
            edges.push(midpoint(vals[j], vals[j + 1]));
            remaining -= acc;
            bins_left -= 1;
            acc = 0;
            if bins_left == 1 {
                break;
            }
        }
    }
    edges
}

/// A value in `[a, b)` between two neighbouring distinct values `a < b`.
fn midpoint(a: f32, b: f32) -> f32 {
    let m = ((f64::from(a) + f64::from(b)) * 0.5) as f32;
    if m >= b || m < a || !m.is_finite() {
        a
    } else {
        m
    }
}

/// The code of value `x` under `edges`: the number of edges below it, or the missing code.
pub(crate) fn code(edges: &[f32], x: f32) -> u8 {
    if x.is_nan() {
        return (edges.len() + 1) as u8;
    }
    edges.partition_point(|&e| e < x) as u8
}

/// Codes the columns `f0..` held in `block` (`n` codes each), reading rows in chunks so the
/// row-major input stays in cache across the block's features.
fn code_columns(rows: &Rows<'_>, f0: usize, block: &mut [u8], edges: &[Vec<f32>]) {
    let n = rows.len();
    if n == 0 {
        return;
    }
    let chunk = (262_144 / (rows.cols * 4)).clamp(64, 4096);
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        for (i, col) in block.chunks_mut(n).enumerate() {
            let f = f0 + i;
            let e = &edges[f];
            for (r, c) in col.iter_mut().enumerate().take(end).skip(start) {
                *c = code(e, rows.x[r * rows.cols + f]);
            }
        }
        start = end;
    }
}

/// Runs `work(first_item, block)` over contiguous blocks of `items` (each item `width` long),
/// one block per thread; a block's result never depends on how many blocks there are.
pub(crate) fn for_blocks<T: Send>(
    threads: usize,
    items: &mut [T],
    width: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    let count = items.len() / width.max(1);
    let t = threads.clamp(1, count.max(1));
    if t == 1 {
        work(0, items);
        return;
    }
    let per = count.div_ceil(t);
    std::thread::scope(|s| {
        for (i, block) in items.chunks_mut(per * width).enumerate() {
            let work = &work;
            s.spawn(move || work(i * per, block));
        }
    });
}
