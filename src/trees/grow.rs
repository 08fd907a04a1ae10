//! Depth-wise tree growth: takes binned rows, a payload, a criterion and the rows of one tree,
//! gives the splits and leaf sums of a complete breadth-first tree (`Grown`), and turns them
//! into a `Tree`.
//!
//! Each node owns a range of one row-index array; a split partitions its range in place,
//! stably, so every range stays in ascending row order (histogram sums then have one fixed
//! order). With one feature set for the whole tree, only the smaller child's histogram is
//! summed and the larger one's is the parent's minus it.

use std::ops::Range;

use super::Tree;
use super::bins::Binned;
use super::hist::{Criterion, Hist, Payload, Split, best_split};
use crate::rng::Rng;

/// Which features a node's split may use.
pub(crate) enum Features {
    /// The same features for every node (boosting's per-tree column sample).
    Fixed(Vec<usize>),
    /// `count` features drawn per node from `usable`, from the stream `{prefix}/node-{n}`.
    PerNode {
        usable: Vec<usize>,
        count: usize,
        seed: u64,
        prefix: String,
    },
}

/// A grown tree before it has leaf values.
pub(crate) struct Grown {
    /// Per internal node (breadth-first), its split if it has one.
    pub splits: Vec<Option<Split>>,
    /// Per leaf, the channel sums of its rows (a node that stopped early passes its own sums
    /// to every leaf below it).
    pub leaf_totals: Vec<Vec<f64>>,
    /// Per leaf, its rows: `idx[leaf_ranges[j]]`.
    pub leaf_ranges: Vec<Range<usize>>,
    pub idx: Vec<u32>,
}

struct Node {
    range: Range<usize>,
    totals: Vec<f64>,
    hist: Option<Hist>,
    split: Option<Split>,
}

/// The most bytes of histograms a level of nodes keeps for its children.
const KEPT_BYTES: usize = 256 << 20;

/// Everything one growth reads.
pub(crate) struct Grower<'g, C: Criterion> {
    pub binned: &'g Binned,
    pub payload: &'g Payload<'g>,
    pub crit: &'g C,
    pub features: &'g Features,
    pub depth: usize,
    pub threads: usize,
}

/// A child made by a split, before its histogram is known.
struct Child {
    id: usize,
    range: Range<usize>,
    totals: Vec<f64>,
    /// Its parent's histogram, to become this child's once the sibling's is subtracted.
    hist: Option<Hist>,
    /// Whether its histogram is summed (its index among the level's sums).
    summed: Option<usize>,
    /// The sibling (index among the children) whose sums are subtracted from `hist`.
    minus: Option<usize>,
    splittable: bool,
}

impl Child {
    fn new(id: usize, range: Range<usize>, totals: Vec<f64>, splittable: bool) -> Child {
        Child {
            id,
            range,
            totals,
            hist: None,
            summed: None,
            minus: None,
            splittable,
        }
    }
}

impl<C: Criterion> Grower<'_, C> {
    /// Grows one tree over `rows` (ascending), a level at a time: every split of a level
    /// partitions its rows, then the histograms the children need are summed together.
    pub fn grow(&self, rows: Vec<u32>) -> Grown {
        let mut idx = rows;
        let totals = self.payload.totals(&idx);
        let hist = if self.crit.splittable(&totals) {
            self.hists(&[0], &[&idx[..]], &mut [None]).pop()
        } else {
            None
        };
        let mut level = vec![self.node(0, 0..idx.len(), totals, hist)];
        let mut splits = vec![None; (1 << self.depth) - 1];
        let mut scratch = Vec::new();
        for depth in 0..self.depth {
            let mut children = Vec::with_capacity(level.len() * 2);
            for (j, mut node) in level.into_iter().enumerate() {
                let id = (1 << depth) - 1 + j;
                let Some(split) = node.split.take() else {
                    let end = node.range.end;
                    for (i, range) in [node.range.clone(), end..end].into_iter().enumerate() {
                        children.push(Child::new(
                            2 * id + 1 + i,
                            range,
                            node.totals.clone(),
                            false,
                        ));
                    }
                    continue;
                };
                let rows = &mut idx[node.range.clone()];
                let nb = self.binned.nonmissing_bins(split.feature);
                let col = self.binned.col(split.feature);
                let mid = node.range.start
                    + partition(
                        rows,
                        col,
                        split.bin,
                        nb,
                        split.missing_right,
                        self.threads,
                        &mut scratch,
                    );
                let right: Vec<f64> = node
                    .totals
                    .iter()
                    .zip(&split.left)
                    .map(|(t, l)| t - l)
                    .collect();
                let (lr, rr) = (node.range.start..mid, mid..node.range.end);
                let searched = |s: &[f64]| depth + 1 < self.depth && self.crit.splittable(s);
                let mut left =
                    Child::new(2 * id + 1, lr, split.left.clone(), searched(&split.left));
                let right_searched = searched(&right);
                let mut right = Child::new(2 * id + 2, rr, right, right_searched);
                self.plan(&mut left, &mut right, children.len(), node.hist.take());
                children.push(left);
                children.push(right);
                splits[id] = Some(split);
            }
            level = self.finish(depth + 1, &idx, children);
        }
        Grown {
            splits,
            leaf_ranges: level.iter().map(|n| n.range.clone()).collect(),
            leaf_totals: level.into_iter().map(|n| n.totals).collect(),
            idx,
        }
    }

    /// Decides how two children (`left` at index `at` among the level's children) get their
    /// histograms: only those worth searching need one; with one feature set for the whole
    /// tree and the parent's histogram kept, the smaller child's is summed and the larger
    /// one's is the parent's minus it.
    fn plan(&self, left: &mut Child, right: &mut Child, at: usize, parent: Option<Hist>) {
        if !left.splittable && !right.splittable {
            return;
        }
        match (self.features, parent) {
            (Features::Fixed(_), Some(parent)) => {
                let (small, large, s) = if left.range.len() <= right.range.len() {
                    (left, right, at)
                } else {
                    (right, left, at + 1)
                };
                small.summed = Some(0);
                large.hist = Some(parent);
                large.minus = Some(s);
            }
            _ => {
                left.summed = left.splittable.then_some(0);
                right.summed = right.splittable.then_some(0);
            }
        }
    }

    /// The nodes of a level from its children: sums the histograms they need (all in one
    /// pass), subtracts siblings, and finds each node's best split.
    fn finish(&self, depth: usize, idx: &[u32], mut children: Vec<Child>) -> Vec<Node> {
        let mut ids = Vec::new();
        let mut rows = Vec::new();
        for c in &mut children {
            if let Some(k) = c.summed.as_mut() {
                *k = ids.len();
                ids.push(c.id);
                rows.push(&idx[c.range.clone()]);
            }
        }
        // The parents' histograms the summed children are subtracted from (their siblings').
        let mut minus: Vec<Option<Hist>> = ids.iter().map(|_| None).collect();
        let mut owner = vec![usize::MAX; ids.len()];
        for i in 0..children.len() {
            if let Some(s) = children[i].minus {
                let k = children[s].summed.expect("a subtracted sibling is summed");
                minus[k] = children[i].hist.take();
                owner[k] = i;
            }
        }
        let mut sums: Vec<Option<Hist>> = self
            .hists(&ids, &rows, &mut minus)
            .into_iter()
            .map(Some)
            .collect();
        for (k, m) in minus.into_iter().enumerate() {
            if m.is_some() {
                children[owner[k]].hist = m;
            }
        }
        children
            .into_iter()
            .map(|c| {
                let hist = match c.summed {
                    Some(k) => sums[k].take(),
                    None => c.hist,
                };
                let hist = if c.splittable { hist } else { None };
                self.node(depth, c.range, c.totals, hist)
            })
            .collect()
    }

    /// A node at `depth` with its best split; its histogram is kept only while its children
    /// can still split.
    fn node(
        &self,
        depth: usize,
        range: Range<usize>,
        totals: Vec<f64>,
        hist: Option<Hist>,
    ) -> Node {
        let split = match &hist {
            Some(h) if depth < self.depth => {
                best_split(self.binned, h, &totals, self.crit, self.threads)
            }
            _ => None,
        };
        // A node keeps its histogram for its children (one of them is then the other's
        // difference from it) while a whole level of such histograms stays within
        // `KEPT_BYTES`; deeper levels of wide tables sum both children instead of holding
        // gigabytes (2^10 nodes × 784 features × 256 bins × 24 bytes is 4.9 GB).
        let bytes = hist.as_ref().map_or(0, |h| h.data.len() * 8);
        let keep = split.is_some()
            && depth + 1 < self.depth
            && (1usize << depth).saturating_mul(bytes) <= KEPT_BYTES;
        Node {
            range,
            totals,
            hist: if keep { hist } else { None },
            split,
        }
    }

    /// The histograms of nodes `ids` over their `rows`, each subtracted from its `minus`:
    /// boosting's together, one pass over each feature; a forest's one node at a time (each
    /// node draws its own features).
    fn hists(&self, ids: &[usize], rows: &[&[u32]], minus: &mut [Option<Hist>]) -> Vec<Hist> {
        match (self.features, self.payload) {
            (Features::Fixed(feats), Payload::Grad(gh)) if !rows.is_empty() => {
                Hist::build_level(self.binned, gh, feats, rows, minus, self.threads)
            }
            _ => ids
                .iter()
                .zip(rows)
                .zip(minus)
                .map(|((&id, r), m)| {
                    let h = self.hist(id, r);
                    if let Some(m) = m {
                        m.subtract(&h);
                    }
                    h
                })
                .collect(),
        }
    }

    /// The histogram of node `id` over `rows`, on its features.
    fn hist(&self, id: usize, rows: &[u32]) -> Hist {
        match self.features {
            Features::Fixed(feats) => {
                Hist::build(self.binned, self.payload, feats, rows, self.threads)
            }
            Features::PerNode {
                usable,
                count,
                seed,
                prefix,
            } => {
                let mut rng = Rng::new(*seed, &format!("{prefix}/node-{id}"));
                let feats = draw(usable, *count, &mut rng);
                Hist::build(self.binned, self.payload, &feats, rows, self.threads)
            }
        }
    }
}

/// `count` of `pool` drawn without replacement, in ascending order.
pub(crate) fn draw(pool: &[usize], count: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p = pool.to_vec();
    let m = count.min(p.len());
    for i in 0..m {
        let j = i + rng.below((p.len() - i) as u64) as usize;
        p.swap(i, j);
    }
    p.truncate(m);
    p.sort_unstable();
    p
}

/// Moves the rows going left to the front of `rows`, keeping the order on both sides; the
/// number going left. Large ranges are split into blocks (one a thread), each partitioned on
/// its own and the blocks' left and right parts then joined in block order.
fn partition(
    rows: &mut [u32],
    col: &[u8],
    bin: usize,
    missing_code: usize,
    missing_right: bool,
    threads: usize,
    scratch: &mut Vec<u32>,
) -> usize {
    let goes_right = |r: u32| {
        let code = col[r as usize] as usize;
        if code == missing_code {
            missing_right
        } else {
            code > bin
        }
    };
    let split = |rows: &mut [u32], scratch: &mut Vec<u32>| {
        scratch.clear();
        let mut w = 0;
        for i in 0..rows.len() {
            let r = rows[i];
            if goes_right(r) {
                scratch.push(r);
            } else {
                rows[w] = r;
                w += 1;
            }
        }
        rows[w..].copy_from_slice(scratch);
        w
    };
    if threads <= 1 || rows.len() < 1 << 16 {
        return split(rows, scratch);
    }
    let per = rows.len().div_ceil(threads);
    let lefts: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks_mut(per)
            .map(|block| {
                let split = &split;
                s.spawn(move || split(block, &mut Vec::new()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let blocks: Vec<&[u32]> = rows.chunks(per).collect();
    let mut joined = Vec::with_capacity(rows.len());
    for (block, &l) in blocks.iter().zip(&lefts) {
        joined.extend_from_slice(&block[..l]);
    }
    for (block, &l) in blocks.iter().zip(&lefts) {
        joined.extend_from_slice(&block[l..]);
    }
    rows.copy_from_slice(&joined);
    lefts.iter().sum()
}

/// The `Tree` of a grown structure, leaf `j` valued `leaf(leaf_totals[j])`.
pub(crate) fn to_tree(grown: &Grown, binned: &Binned, leaf: impl Fn(&[f64]) -> f32) -> Tree {
    let n = grown.splits.len();
    let mut tree = Tree {
        feature: vec![0; n],
        threshold: vec![f32::INFINITY; n],
        missing_right: vec![false; n],
        leaf: grown.leaf_totals.iter().map(|t| leaf(t)).collect(),
    };
    for (i, s) in grown.splits.iter().enumerate() {
        if let Some(s) = s {
            tree.feature[i] = s.feature as u32;
            tree.threshold[i] = binned.threshold(s.feature, s.bin);
            tree.missing_right[i] = s.missing_right;
        }
    }
    tree
}
