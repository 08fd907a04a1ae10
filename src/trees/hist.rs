//! Histograms and split search: takes binned rows, per-row statistics (`Payload`) and a split
//! criterion, gives per-node histograms (summed in f64, in row order) and the node's best
//! split.
//!
//! Work is split over features only: each feature's histogram and best split come from one
//! thread, and the per-block winners are compared in feature order with a strict `>`, so the
//! answer is the same for any thread count.

use std::ops::Range;

use super::bins::{Binned, Sparse};

/// Per-row statistics a histogram sums, `channels()` values a bin.
pub(crate) enum Payload<'p> {
    /// Boosting: (gradient, hessian) a row; channels gradient, hessian (a row's hessian is
    /// never below `boost::HESS_FLOOR`, so a sum says whether there are rows).
    Grad(&'p [[f32; 2]]),
    /// Forest classification: channel k sums the weights of class-k rows.
    Class {
        w: &'p [f32],
        labels: &'p [u32],
        classes: usize,
    },
    /// Forest regression: channels weight, weight * value.
    Value { w: &'p [f32], y: &'p [f32] },
}

impl Payload<'_> {
    pub fn channels(&self) -> usize {
        match self {
            Payload::Grad(_) => 2,
            Payload::Class { classes, .. } => *classes,
            Payload::Value { .. } => 2,
        }
    }

    /// The channel sums over `rows`, in row order.
    pub fn totals(&self, rows: &[u32]) -> Vec<f64> {
        let mut t = vec![0.0; self.channels()];
        for &r in rows {
            self.add(r as usize, &mut t);
        }
        t
    }

    #[inline]
    fn add(&self, r: usize, e: &mut [f64]) {
        match self {
            Payload::Grad(gh) => {
                e[0] += f64::from(gh[r][0]);
                e[1] += f64::from(gh[r][1]);
            }
            Payload::Class { w, labels, .. } => e[labels[r] as usize] += f64::from(w[r]),
            Payload::Value { w, y } => {
                let w = f64::from(w[r]);
                e[0] += w;
                e[1] += w * f64::from(y[r]);
            }
        }
    }

    /// Adds `rows` into one feature's histogram `h` (`channels()` slots a bin), `col` being
    /// that feature's codes.
    fn accumulate(&self, col: &[u8], rows: &[u32], h: &mut [f64]) {
        let c = self.channels();
        for &r in rows {
            let r = r as usize;
            let b = col[r] as usize;
            self.add(r, &mut h[b * c..(b + 1) * c]);
        }
    }
}

/// Nodes with at least this many rows sum their gradients into `COPIES` partial histograms, the
/// node's `i`-th row into part `i % COPIES`, the parts then added in order: a bin most rows
/// share (a pixel's 0) becomes four chains of additions instead of one, each waiting on the
/// last. The order of the additions depends only on the rows, so any thread count gives the
/// same sums.
pub(super) const SPREAD_ROWS: usize = 4096;
pub(super) const COPIES: usize = 4;

/// Where each feature's bins start in a histogram of `feats`, `c` values a bin (the missing
/// bin last), and the total length last.
fn offsets(binned: &Binned, feats: &[usize], c: usize) -> Vec<usize> {
    let mut offs = Vec::with_capacity(feats.len() + 1);
    offs.push(0);
    for &f in feats {
        let last = offs[offs.len() - 1];
        offs.push(last + (binned.nonmissing_bins(f) + 1) * c);
    }
    offs
}

/// One node's histograms over the features `feats`: feature `feats[i]` owns
/// `data[offs[i]..offs[i + 1]]`, its bins (the missing bin last) times the channels.
pub(crate) struct Hist {
    pub feats: Vec<usize>,
    pub offs: Vec<usize>,
    pub data: Vec<f64>,
}

/// Histogram buffers of this thread kept for reuse: a node's histogram is megabytes (784
/// features × 256 bins × 3 sums), and allocating and freeing one per node made the kernel map,
/// fault in and unmap (with a TLB shootdown on every core) that much memory each time.
const POOLED: usize = 32;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `len` values, from the pool when one is there, holding whatever it held.
fn reused(len: usize) -> Vec<f64> {
    let mut v = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    v.resize(len, 0.0);
    v
}

/// `len` zeros, in a buffer from the pool when one is there.
fn zeroed(len: usize) -> Vec<f64> {
    let mut v = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    v.clear();
    v.resize(len, 0.0);
    v
}

impl Drop for Hist {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOLED {
                p.push(data);
            }
        });
    }
}

impl Hist {
    /// Sums `rows` into a new histogram; `threads` split the features. Boosting's gradients
    /// are summed as a level of one node.
    pub fn build(
        binned: &Binned,
        payload: &Payload<'_>,
        feats: &[usize],
        rows: &[u32],
        threads: usize,
    ) -> Hist {
        if let Payload::Grad(gh) = payload {
            let mut hists = Hist::build_level(binned, gh, feats, &[rows], &mut [None], threads);
            return hists.pop().expect("one node, one histogram");
        }
        let offs = offsets(binned, feats, payload.channels());
        let mut data = zeroed(offs[feats.len()]);
        let threads = if rows.len() * feats.len() < 100_000 {
            1
        } else {
            threads
        };
        by_feature_blocks(threads, feats, &offs, &mut data, |i, h| {
            payload.accumulate(binned.col(feats[i]), rows, h);
        });
        Hist {
            feats: feats.to_vec(),
            offs,
            data,
        }
    }

    /// The gradient histograms of several nodes over the same features (each node's rows in
    /// row order, in `COPIES` interleaved partial sums from `SPREAD_ROWS` rows on); node `s`'s
    /// sums are also subtracted from
    /// `minus[s]` (its parent's histogram becoming its sibling's, as `subtract` does). The
    /// nodes' rows are merged into one ascending list with the gradients in its order, and
    /// each feature's codes are read in one pass over it, its sums subtracted while they are
    /// in cache: a node at a time reads every cache line of every column once per node (at
    /// depth 5 of Fashion-MNIST, 16 nodes × 47 MB) and gathers each row's gradient once per
    /// feature.
    pub fn build_level(
        binned: &Binned,
        gh: &[[f32; 2]],
        feats: &[usize],
        nodes: &[&[u32]],
        minus: &mut [Option<Hist>],
        threads: usize,
    ) -> Vec<Hist> {
        let offs = offsets(binned, feats, 2);
        let merged = Merged::new(binned, gh, nodes, threads);
        // Every value is written by `Merged::feature`.
        let mut data: Vec<Vec<f64>> = nodes.iter().map(|_| reused(offs[feats.len()])).collect();
        let t = if merged.rows.len() * feats.len() < 100_000 {
            1
        } else {
            threads.clamp(1, feats.len().max(1))
        };
        let per = feats.len().div_ceil(t).max(1);
        // Per block of features, every node's slice of it (and of what it is subtracted from).
        let mut blocks: Vec<Vec<Out<'_>>> = (0..feats.len().div_ceil(per))
            .map(|_| Vec::with_capacity(nodes.len()))
            .collect();
        for (d, m) in data.iter_mut().zip(minus.iter_mut()) {
            let mut rest = d.as_mut_slice();
            let mut rest_m = m.as_mut().map(|h| h.data.as_mut_slice());
            for (b, block) in blocks.iter_mut().enumerate() {
                let len = offs[((b + 1) * per).min(feats.len())] - offs[b * per];
                let (head, tail) = rest.split_at_mut(len);
                rest = tail;
                let head_m = rest_m.take().map(|r| {
                    let (h, t) = r.split_at_mut(len);
                    rest_m = Some(t);
                    h
                });
                block.push((head, head_m));
            }
        }
        let run = |b: usize, outs: &mut [Out<'_>]| {
            let mut acc = Vec::new();
            let first = b * per;
            for i in first..((b + 1) * per).min(feats.len()) {
                let (lo, hi) = (offs[i] - offs[first], offs[i + 1] - offs[first]);
                let f = feats[i];
                merged.feature(
                    binned.col(f),
                    binned.sparse[f].as_ref(),
                    lo..hi,
                    &mut acc,
                    outs,
                );
            }
        };
        if blocks.len() == 1 {
            run(0, &mut blocks[0]);
        } else {
            std::thread::scope(|s| {
                for (b, outs) in blocks.iter_mut().enumerate() {
                    let run = &run;
                    s.spawn(move || run(b, outs));
                }
            });
        }
        data.into_iter()
            .map(|data| Hist {
                feats: feats.to_vec(),
                offs: offs.clone(),
                data,
            })
            .collect()
    }

    /// Turns this parent histogram into its other child's, given one child's.
    pub fn subtract(&mut self, child: &Hist) {
        for (p, c) in self.data.iter_mut().zip(&child.data) {
            *p -= c;
        }
    }
}

/// The rows of several nodes merged in ascending order, each with its gradient and the partial
/// histogram it is summed into (`part`: a node's first part plus the row's place in the node
/// modulo its number of parts).
struct Merged<'g> {
    rows: Vec<u32>,
    part: Vec<u32>,
    grad: Vec<[f32; 2]>,
    /// Per node, its first part and its number of parts.
    parts: Vec<(usize, usize)>,
    /// Every row's gradient.
    gh: &'g [[f32; 2]],
    /// When some feature is sparse: every row's part, or `discard` (a part no node reads).
    tag: Vec<u32>,
    discard: usize,
    /// When some feature is sparse: per node, the sums of its rows (in row order).
    totals: Vec<[f64; 2]>,
}

impl<'g> Merged<'g> {
    fn new(binned: &Binned, gh: &'g [[f32; 2]], nodes: &[&[u32]], threads: usize) -> Merged<'g> {
        let n = binned.n;
        let mut parts = Vec::with_capacity(nodes.len());
        let mut next = 0;
        for rows in nodes {
            let k = if rows.len() >= SPREAD_ROWS { COPIES } else { 1 };
            parts.push((next, k));
            next += k;
        }
        let discard = next;
        let sparse = binned.sparse.iter().any(Option::is_some);
        // Only a sparse feature's common bin needs them.
        let totals = nodes
            .iter()
            .filter(|_| sparse)
            .map(|rows| {
                let mut t = [0.0; 2];
                for &r in *rows {
                    t[0] += f64::from(gh[r as usize][0]);
                    t[1] += f64::from(gh[r as usize][1]);
                }
                t
            })
            .collect();
        let mut merged = Merged {
            rows: Vec::new(),
            part: Vec::new(),
            grad: Vec::new(),
            parts,
            gh,
            tag: Vec::new(),
            discard,
            totals,
        };
        if !sparse && let [only] = nodes {
            let k = merged.parts[0].1;
            merged.rows = only.to_vec();
            merged.part = (0..only.len()).map(|p| (p % k) as u32).collect();
            merged.grad = only.iter().map(|&r| gh[r as usize]).collect();
            return merged;
        }
        let mut tag = vec![discard as u32; n];
        for (rs, &(first, k)) in nodes.iter().zip(&merged.parts) {
            for (p, &r) in rs.iter().enumerate() {
                tag[r as usize] = (first + p % k) as u32;
            }
        }
        // The tagged rows in ascending order, in blocks of rows (one a thread) joined in order.
        let collect = |from: usize, tags: &[u32]| {
            let (mut rows, mut part, mut grad) = (Vec::new(), Vec::new(), Vec::new());
            for (r, &t) in (from..).zip(tags) {
                if t as usize != discard {
                    rows.push(r as u32);
                    part.push(t);
                    grad.push(gh[r]);
                }
            }
            (rows, part, grad)
        };
        let t = if n < 1 << 16 { 1 } else { threads.max(1) };
        let per = n.div_ceil(t).max(1);
        let blocks: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = tag
                .chunks(per)
                .enumerate()
                .map(|(b, tags)| {
                    let collect = &collect;
                    s.spawn(move || collect(b * per, tags))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for (rows, part, grad) in blocks {
            merged.rows.extend(rows);
            merged.part.extend(part);
            merged.grad.extend(grad);
        }
        if sparse {
            merged.tag = tag;
        }
        merged
    }

    /// Writes one feature's sums (codes `col`) into `outs[s].0[at]`, node `s`'s histogram of
    /// it, and subtracts them from `outs[s].1[at]`. A sparse feature with fewer rows outside
    /// its common code than the nodes have sums only those rows; the common bin is then each
    /// node's totals minus its other bins.
    fn feature(
        &self,
        col: &[u8],
        sparse: Option<&Sparse>,
        at: Range<usize>,
        acc: &mut Vec<f64>,
        outs: &mut [Out<'_>],
    ) {
        let len = at.len();
        let bins = len / 2;
        acc.clear();
        acc.resize((self.discard + 1) * len, 0.0);
        let (cells, _) = acc.as_chunks_mut::<2>();
        let sparse = sparse.filter(|s| !self.tag.is_empty() && s.rows.len() < self.rows.len());
        if let Some(sp) = sparse {
            for &r in &sp.rows {
                let r = r as usize;
                let e = &mut cells[self.tag[r] as usize * bins + col[r] as usize];
                let [g, h] = self.gh[r];
                e[0] += f64::from(g);
                e[1] += f64::from(h);
            }
        } else {
            for ((&r, &p), &[g, h]) in self.rows.iter().zip(&self.part).zip(&self.grad) {
                let e = &mut cells[p as usize * bins + col[r as usize] as usize];
                e[0] += f64::from(g);
                e[1] += f64::from(h);
            }
        }
        for (s, (&(first, k), (h, minus))) in self.parts.iter().zip(outs.iter_mut()).enumerate() {
            let h = &mut h[at.clone()];
            let parts = &acc[first * len..(first + k) * len];
            for (j, x) in h.iter_mut().enumerate() {
                // As a zeroed histogram the parts are added to, in order.
                let mut v = 0.0;
                for part in parts.chunks_exact(len) {
                    v += part[j];
                }
                *x = v;
            }
            if let Some(sp) = sparse {
                let c = sp.common as usize;
                let mut rest = [0.0; 2];
                for (b, e) in h.chunks_exact(2).enumerate() {
                    if b != c {
                        rest[0] += e[0];
                        rest[1] += e[1];
                    }
                }
                let total = self.totals[s];
                h[2 * c] = total[0] - rest[0];
                h[2 * c + 1] = total[1] - rest[1];
            }
            if let Some(m) = minus {
                for (m, x) in m[at.clone()].iter_mut().zip(h.iter()) {
                    *m -= x;
                }
            }
        }
    }
}

/// A node's histogram block being written, and its parent's block the sums are subtracted
/// from.
type Out<'o> = (&'o mut [f64], Option<&'o mut [f64]>);

/// Runs `work(i, histogram of feats[i])` for every feature, the features in contiguous blocks,
/// one block a thread.
fn by_feature_blocks(
    threads: usize,
    feats: &[usize],
    offs: &[usize],
    data: &mut [f64],
    work: impl Fn(usize, &mut [f64]) + Sync,
) {
    let t = threads.clamp(1, feats.len().max(1));
    let run = |first: usize, last: usize, block: &mut [f64]| {
        let base = offs[first];
        for i in first..last {
            work(i, &mut block[offs[i] - base..offs[i + 1] - base]);
        }
    };
    if t == 1 {
        run(0, feats.len(), data);
        return;
    }
    let per = feats.len().div_ceil(t);
    std::thread::scope(|s| {
        let mut rest = data;
        let mut first = 0;
        while first < feats.len() {
            let last = (first + per).min(feats.len());
            let (block, tail) = rest.split_at_mut(offs[last] - offs[first]);
            rest = tail;
            let run = &run;
            s.spawn(move || run(first, last, block));
            first = last;
        }
    });
}

/// How a split is judged; `s` is a node's (or child's) channel sums.
pub(crate) trait Criterion: Sync {
    /// A child's term: the split's gain is `gain(score(left) + score(right), score(parent))`.
    fn score(&self, s: &[f64]) -> f64;
    fn gain(&self, children: f64, parent: f64) -> f64;
    /// Whether a split with this gain is taken.
    fn accepts(&self, gain: f64, parent: f64) -> bool;
    /// Whether a child with these sums may exist.
    fn admissible(&self, s: &[f64]) -> bool;
    /// The weight that picks the side for missing values a node never saw (hessian or rows).
    fn mass(&self, s: &[f64]) -> f64;
    /// Positive exactly when there are rows: their (weighted) number, or their hessian.
    fn rows(&self, s: &[f64]) -> f64;
    /// Whether a node with these sums is worth searching at all (not pure, not too small).
    fn splittable(&self, s: &[f64]) -> bool;
}

/// A node's chosen split: rows with code `<= bin` go left, missing ones as `missing_right`.
#[derive(Clone, Debug)]
pub(crate) struct Split {
    pub feature: usize,
    pub bin: usize,
    pub missing_right: bool,
    pub gain: f64,
    pub left: Vec<f64>,
}

/// The best accepted split of a node with sums `totals` and histogram `hist`, if any.
pub(crate) fn best_split(
    binned: &Binned,
    hist: &Hist,
    totals: &[f64],
    crit: &impl Criterion,
    threads: usize,
) -> Option<Split> {
    let parent = crit.score(totals);
    let n = hist.feats.len();
    let t = if hist.data.len() < 50_000 {
        1
    } else {
        threads.clamp(1, n.max(1))
    };
    let block_best = |first: usize, last: usize| {
        let mut best: Option<Split> = None;
        for i in first..last {
            let h = &hist.data[hist.offs[i]..hist.offs[i + 1]];
            let s = feature_best(binned, hist.feats[i], h, totals, parent, crit);
            best = better(best, s);
        }
        best
    };
    if t == 1 {
        return block_best(0, n);
    }
    let per = n.div_ceil(t);
    let bests: Vec<Option<Split>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|first| {
                let block_best = &block_best;
                s.spawn(move || block_best(first, (first + per).min(n)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(None))
            .collect()
    });
    bests.into_iter().fold(None, better)
}

/// The earlier candidate unless the later one has a strictly larger gain.
fn better(a: Option<Split>, b: Option<Split>) -> Option<Split> {
    match (a, b) {
        (Some(a), Some(b)) if b.gain > a.gain => Some(b),
        (Some(a), _) => Some(a),
        (None, b) => b,
    }
}

/// The best split on feature `f`, trying both sides for missing values at every edge; when the
/// node has no missing rows for `f`, they go to the side with more mass (ties: left).
fn feature_best(
    binned: &Binned,
    f: usize,
    h: &[f64],
    totals: &[f64],
    parent: f64,
    crit: &impl Criterion,
) -> Option<Split> {
    let scan = Scan {
        nb: binned.nonmissing_bins(f),
        h,
        totals,
        parent,
    };
    let (gain, bin, missing_right, left) = match totals.len() {
        2 => scan
            .best(crit, [0.0; 2])
            .map(|(g, b, m, l)| (g, b, m, l.to_vec()))?,
        3 => scan
            .best(crit, [0.0; 3])
            .map(|(g, b, m, l)| (g, b, m, l.to_vec()))?,
        c => scan.best(crit, vec![0.0; c])?,
    };
    Some(Split {
        feature: f,
        bin,
        missing_right,
        gain,
        left,
    })
}

/// One feature's histogram `h` (`nb` bins, then the missing one) of a node.
struct Scan<'s> {
    nb: usize,
    h: &'s [f64],
    totals: &'s [f64],
    parent: f64,
}

impl Scan<'_> {
    /// The best (gain, bin, missing_right, left sums), the sums kept in an `S` (an array when
    /// the number of channels is known, so the loops unroll). A bin without rows after the
    /// first gives the candidates of the bin before it again (the same left sums, so the same
    /// gain, which never beats the earlier one) and is skipped.
    fn best<S: AsRef<[f64]> + AsMut<[f64]> + Clone>(
        &self,
        crit: &impl Criterion,
        zero: S,
    ) -> Option<(f64, usize, bool, S)> {
        let (nb, c) = (self.nb, self.totals.len());
        let miss = &self.h[nb * c..(nb + 1) * c];
        let has_miss = crit.rows(miss) > 0.0;
        let mut acc = zero.clone();
        let mut left = zero.clone();
        let mut right = zero;
        let mut best: Option<(f64, usize, bool, S)> = None;
        let mut consider = |left: &S, right: &mut S, bin: usize, missing: Option<bool>| {
            let (l, r) = (left.as_ref(), right.as_mut());
            for ((r, t), l) in r.iter_mut().zip(self.totals).zip(l) {
                *r = t - l;
            }
            let r = &*r;
            if !crit.admissible(l) || !crit.admissible(r) {
                return;
            }
            let gain = crit.gain(crit.score(l) + crit.score(r), self.parent);
            if !crit.accepts(gain, self.parent) || best.as_ref().is_some_and(|b| gain <= b.0) {
                return;
            }
            let missing_right = missing.unwrap_or_else(|| crit.mass(r) > crit.mass(l));
            best = Some((gain, bin, missing_right, left.clone()));
        };
        for b in 0..nb {
            let bin = &self.h[b * c..(b + 1) * c];
            if b > 0 && b + 1 < nb && bin.iter().all(|&v| v == 0.0) {
                continue;
            }
            for (a, v) in acc.as_mut().iter_mut().zip(bin) {
                *a += v;
            }
            if b + 1 < nb {
                consider(&acc, &mut right, b, has_miss.then_some(true));
                if has_miss {
                    for ((l, a), m) in left.as_mut().iter_mut().zip(acc.as_ref()).zip(miss) {
                        *l = a + m;
                    }
                    consider(&left, &mut right, b, Some(false));
                }
            } else if has_miss {
                consider(&acc, &mut right, b, Some(true));
            }
        }
        best
    }
}
