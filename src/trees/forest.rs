//! Random forests: takes training rows, a target and `ForestParams`, gives an `Ensemble` whose
//! plain sum is the mean over trees (leaves store value / trees).
//!
//! Classification: K outputs, leaf k of tree t = (weighted share of class k in the leaf) /
//! trees, link Log; splits by Gini impurity decrease. Regression: one output, the leaf's mean
//! target / trees, link Identity; splits by variance decrease (on targets centred by their
//! mean, so the decrease is not swamped by a large offset). Tree t's bootstrap comes from the
//! stream `forest/tree-{t}/bootstrap` (bootstrap copies count as rows, also for
//! `min_samples_leaf`) and node n's features from `forest/tree-{t}/node-{n}`; a node whose
//! drawn features give no valid split stops. Trees are grown in parallel, one tree a thread at
//! a time, and assembled in tree order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::bins::Binned;
use super::grow::{Features, Grower, to_tree};
use super::hist::{Criterion, Payload};
use super::{Ensemble, ForestParams, Link, Rows, Target, Tree, check_data, check_shape};
use crate::rng::Rng;

/// Gini impurity decrease over class weights.
struct Gini {
    min_leaf: f64,
}

impl Criterion for Gini {
    fn score(&self, s: &[f64]) -> f64 {
        let n: f64 = s.iter().sum();
        if n > 0.0 {
            s.iter().map(|c| c * c).sum::<f64>() / n
        } else {
            0.0
        }
    }
    fn gain(&self, children: f64, parent: f64) -> f64 {
        children - parent
    }
    fn accepts(&self, gain: f64, parent: f64) -> bool {
        gain > 1e-10 * parent.abs()
    }
    fn admissible(&self, s: &[f64]) -> bool {
        let n: f64 = s.iter().sum();
        n > 0.0 && n >= self.min_leaf
    }
    fn mass(&self, s: &[f64]) -> f64 {
        s.iter().sum()
    }
    fn rows(&self, s: &[f64]) -> f64 {
        s.iter().sum()
    }
    fn splittable(&self, s: &[f64]) -> bool {
        let n: f64 = s.iter().sum();
        let top = s.iter().copied().fold(0.0, f64::max);
        n >= 2.0 * self.min_leaf && n >= 2.0 && top < n
    }
}

/// Variance decrease over (weight, weight·value) sums.
struct Variance {
    min_leaf: f64,
}

impl Criterion for Variance {
    fn score(&self, s: &[f64]) -> f64 {
        if s[0] > 0.0 { s[1] * s[1] / s[0] } else { 0.0 }
    }
    fn gain(&self, children: f64, parent: f64) -> f64 {
        children - parent
    }
    fn accepts(&self, gain: f64, parent: f64) -> bool {
        gain > 1e-10 * parent.abs()
    }
    fn admissible(&self, s: &[f64]) -> bool {
        s[0] > 0.0 && s[0] >= self.min_leaf
    }
    fn mass(&self, s: &[f64]) -> f64 {
        s[0]
    }
    fn rows(&self, s: &[f64]) -> f64 {
        s[0]
    }
    fn splittable(&self, s: &[f64]) -> bool {
        s[0] >= 2.0 * self.min_leaf && s[0] >= 2.0
    }
}

/// What one tree needs besides its index.
struct Setup<'s> {
    binned: Binned,
    usable: Vec<usize>,
    target: Target<'s>,
    /// Regression: the training mean and the centred targets.
    mean: f64,
    centred: Vec<f32>,
    params: &'s ForestParams,
}

/// One forest: `params.trees` trees (times K for classification), `progress` told the number
/// of trees finished after each.
pub fn forest(
    rows: Rows<'_>,
    target: Target<'_>,
    params: &ForestParams,
    threads: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Ensemble, String> {
    check_data(&rows, &target)?;
    check_shape(params.depth, params.bins)?;
    if params.trees == 0 {
        return Err("a forest needs at least one tree".into());
    }
    if params.max_features == 0 {
        return Err("max_features must be at least 1".into());
    }
    if params.min_samples_leaf == 0 {
        return Err("min_samples_leaf must be at least 1".into());
    }
    let threads = threads.max(1);
    let binned = Binned::fit(&rows, params.bins, params.seed, threads);
    let usable = (0..rows.cols).filter(|&f| binned.usable(f)).collect();
    let (mean, centred) = match target {
        Target::Values(v) => {
            let mean = v.iter().map(|&y| f64::from(y)).sum::<f64>() / v.len() as f64;
            let c = v.iter().map(|&y| (f64::from(y) - mean) as f32).collect();
            (mean, c)
        }
        Target::Classes { .. } => (0.0, Vec::new()),
    };
    let setup = Setup {
        binned,
        usable,
        target,
        mean,
        centred,
        params,
    };
    let grown = grow_all(&setup, threads, progress);
    let mut trees = Vec::new();
    let mut gain = vec![0.0; rows.cols];
    for (t, g) in grown {
        trees.extend(t);
        for (f, v) in g {
            gain[f] += v;
        }
    }
    let (outputs, link) = match target {
        Target::Classes { classes, .. } => (classes, Link::Log),
        Target::Values(_) => (1, Link::Identity),
    };
    Ok(Ensemble {
        depth: params.depth,
        outputs,
        base: vec![0.0; outputs],
        trees,
        link,
        gain,
    })
}

/// A tree's K trees and its splits' (feature, gain) in breadth-first order.
type Grown = (Vec<Tree>, Vec<(usize, f64)>);

/// Grows every tree, `threads` at a time, and returns them in tree order.
fn grow_all(setup: &Setup<'_>, threads: usize, progress: &mut dyn FnMut(usize)) -> Vec<Grown> {
    let count = setup.params.trees;
    let mut out: Vec<Option<Grown>> = (0..count).map(|_| None).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..threads.min(count) {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || {
                loop {
                    let t = next.fetch_add(1, Ordering::Relaxed);
                    if t >= count || tx.send((t, grow_one(setup, t))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (done, (t, g)) in rx.into_iter().enumerate() {
            out[t] = Some(g);
            progress(done + 1);
        }
    });
    out.into_iter().flatten().collect()
}

/// Tree `t`: its bootstrap, growth and leaves.
fn grow_one(setup: &Setup<'_>, t: usize) -> Grown {
    let p = setup.params;
    let n = setup.binned.n;
    let mut w = vec![0.0f32; n];
    if p.bootstrap {
        let mut rng = Rng::new(p.seed, &format!("forest/tree-{t}/bootstrap"));
        for _ in 0..n {
            w[rng.below(n as u64) as usize] += 1.0;
        }
    } else {
        w.fill(1.0);
    }
    let rows: Vec<u32> = (0..n as u32).filter(|&r| w[r as usize] > 0.0).collect();
    let features = Features::PerNode {
        usable: setup.usable.clone(),
        count: p.max_features,
        seed: p.seed,
        prefix: format!("forest/tree-{t}"),
    };
    let min_leaf = p.min_samples_leaf as f64;
    let trees = p.trees as f64;
    let (trees_out, grown) = match setup.target {
        Target::Classes { labels, classes } => {
            let payload = Payload::Class {
                w: &w,
                labels,
                classes,
            };
            let grown = grow_with(setup, &payload, &Gini { min_leaf }, &features, rows);
            let out = (0..classes)
                .map(|k| {
                    to_tree(&grown, &setup.binned, |s| {
                        let total: f64 = s.iter().sum();
                        if total > 0.0 {
                            (s[k] / total / trees) as f32
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            (out, grown)
        }
        Target::Values(_) => {
            let payload = Payload::Value {
                w: &w,
                y: &setup.centred,
            };
            let grown = grow_with(setup, &payload, &Variance { min_leaf }, &features, rows);
            let mean = setup.mean;
            let tree = to_tree(&grown, &setup.binned, |s| {
                let m = if s[0] > 0.0 { s[1] / s[0] } else { 0.0 };
                ((m + mean) / trees) as f32
            });
            (vec![tree], grown)
        }
    };
    let gains = grown
        .splits
        .iter()
        .flatten()
        .map(|s| (s.feature, s.gain))
        .collect();
    (trees_out, gains)
}

fn grow_with<C: Criterion>(
    setup: &Setup<'_>,
    payload: &Payload<'_>,
    crit: &C,
    features: &Features,
    rows: Vec<u32>,
) -> super::grow::Grown {
    Grower {
        binned: &setup.binned,
        payload,
        crit,
        features,
        depth: setup.params.depth,
        threads: 1,
    }
    .grow(rows)
}
