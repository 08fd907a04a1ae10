//! Gradient boosting (second order, XGBoost-style): takes training rows, a target, a loss and
//! `BoostParams`, gives the trees of one round at a time while keeping the training scores.
//!
//! Choices: base scores are the log-odds of the positive share (LogLoss, clamped to
//! [1e-6, 1 - 1e-6]), the training mean (Squared and Huber: the median would be robust too, but
//! the mean matched LightGBM better on the diabetes data) and 0 (Softmax). The Softmax hessian
//! is K/(K-1)·p(1-p), as LightGBM scales it, so that a step has the size of the two-class one.
//! Hessians are floored at `HESS_FLOOR` (1e-6), which also tells an empty set of rows. Round
//! `r`'s row sample comes from the stream `boost/round-{r}/rows` and tree k's column sample from
//! `boost/round-{r}/tree-{k}/cols`, so a replayed booster continues exactly.

use super::bins::Binned;
use super::grow::{Features, Grower, draw, to_tree};
use super::hist::{Criterion, Payload};
use super::{BoostParams, Ensemble, Link, Loss, Rows, Target, Tree, check_data, check_shape};
use crate::rng::Rng;

/// Gradient boosting, one round at a time (the caller runs rounds, computes validation
/// figures, early stopping and checkpoints between them).
pub struct Booster<'a> {
    rows: Rows<'a>,
    target: Target<'a>,
    loss: Loss,
    params: BoostParams,
    threads: usize,
    binned: Binned,
    usable: Vec<usize>,
    outputs: usize,
    base: Vec<f32>,
    /// Row-major training scores, `outputs` a row.
    scores: Vec<f64>,
    /// Per output, (gradient, hessian) a row at the current round's start.
    grads: Vec<Vec<[f32; 2]>>,
    gain: Vec<f64>,
    rounds: usize,
}

/// The second-order split gain with L2 regularisation.
struct Newton {
    l2: f64,
    min_child_weight: f64,
    min_split_gain: f64,
}

impl Criterion for Newton {
    fn score(&self, s: &[f64]) -> f64 {
        let d = s[1] + self.l2;
        if d > 0.0 { s[0] * s[0] / d } else { 0.0 }
    }
    fn gain(&self, children: f64, parent: f64) -> f64 {
        0.5 * (children - parent) - self.min_split_gain
    }
    fn accepts(&self, gain: f64, _parent: f64) -> bool {
        gain > 0.0
    }
    fn admissible(&self, s: &[f64]) -> bool {
        s[1] >= PRESENT && s[1] >= self.min_child_weight
    }
    fn mass(&self, s: &[f64]) -> f64 {
        s[1]
    }
    fn rows(&self, s: &[f64]) -> f64 {
        if s[1] >= PRESENT { s[1] } else { 0.0 }
    }
    fn splittable(&self, s: &[f64]) -> bool {
        s[1] >= 2.0 * PRESENT && s[1] >= 2.0 * self.min_child_weight
    }
}

impl<'a> Booster<'a> {
    /// Fits the bins on these (training) rows only. Errors for impossible input: no rows,
    /// labels out of range, a loss that does not match the target, bins outside 2..=255,
    /// depth 0 or above 12, rates and fractions out of range.
    pub fn new(
        rows: Rows<'a>,
        target: Target<'a>,
        loss: Loss,
        params: &BoostParams,
        threads: usize,
    ) -> Result<Booster<'a>, String> {
        check_data(&rows, &target)?;
        check_shape(params.depth, params.bins)?;
        check_params(params)?;
        let outputs = outputs(loss, &target)?;
        let threads = threads.max(1);
        let binned = Binned::fit(&rows, params.bins, params.seed, threads);
        let usable = (0..rows.cols).filter(|&f| binned.usable(f)).collect();
        let base = base_scores(loss, &target, outputs);
        let n = rows.len();
        let scores = (0..n * outputs)
            .map(|i| f64::from(base[i % outputs]))
            .collect();
        Ok(Booster {
            rows,
            target,
            loss,
            params: params.clone(),
            threads,
            binned,
            usable,
            outputs,
            base,
            scores,
            grads: vec![vec![[0.0; 2]; n]; outputs],
            gain: vec![0.0; rows.cols],
            rounds: 0,
        })
    }

    pub fn base(&self) -> &[f32] {
        &self.base
    }

    /// K: trees a round.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    pub fn rounds_done(&self) -> usize {
        self.rounds
    }

    /// Total split gain per input feature so far (after `min_split_gain`).
    pub fn gain(&self) -> &[f64] {
        &self.gain
    }

    /// Row-major training scores, `outputs()` a row.
    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    /// The ensemble of these trees (round-major) with this booster's base and gains.
    pub fn ensemble(&self, trees: Vec<Tree>) -> Ensemble {
        Ensemble {
            depth: self.params.depth,
            outputs: self.outputs,
            base: self.base.clone(),
            trees,
            link: Link::Identity,
            gain: self.gain.clone(),
        }
    }

    /// The K trees of round r (the next round); updates the training scores.
    pub fn round(&mut self) -> Vec<Tree> {
        let r = self.rounds;
        self.compute_grads();
        let rows = self.sample_rows(r);
        let sampled = rows.len() < self.binned.n;
        let crit = self.criterion();
        let mut trees = Vec::with_capacity(self.outputs);
        for k in 0..self.outputs {
            let features = Features::Fixed(self.col_sample(r, k));
            let payload = Payload::Grad(&self.grads[k]);
            let grower = Grower {
                binned: &self.binned,
                payload: &payload,
                crit: &crit,
                features: &features,
                depth: self.params.depth,
                threads: self.threads,
            };
            let grown = grower.grow(rows.clone());
            let (lr, l2) = (self.params.lr, self.params.l2);
            let tree = to_tree(&grown, &self.binned, |s| leaf_value(s, l2, lr));
            for s in grown.splits.iter().flatten() {
                self.gain[s.feature] += s.gain;
            }
            for (j, range) in grown.leaf_ranges.iter().enumerate() {
                let v = f64::from(tree.leaf[j]);
                for &row in &grown.idx[range.clone()] {
                    self.scores[row as usize * self.outputs + k] += v;
                }
            }
            if sampled {
                self.add_outside(&tree, k, &rows);
            }
            trees.push(tree);
        }
        self.rounds += 1;
        trees
    }

    /// Restore: the trees of the rounds already done (round-major), their effect on the scores
    /// replayed (a trailing partial round is ignored). Gains are recomputed from the replayed
    /// rounds' gradients, so they equal an uninterrupted run's up to rounding.
    pub fn replay(&mut self, trees: &[Tree]) {
        for round in trees.chunks_exact(self.outputs) {
            self.compute_grads();
            let rows = self.sample_rows(self.rounds);
            for (k, tree) in round.iter().enumerate() {
                self.replay_gain(tree, k, &rows);
                for row in 0..self.binned.n {
                    self.scores[row * self.outputs + k] +=
                        f64::from(tree.predict(self.rows.row(row)));
                }
            }
            self.rounds += 1;
        }
    }

    /// Sets the gains (as saved with a checkpoint), for an exact restore.
    pub fn set_gain(&mut self, gain: &[f64]) {
        for (g, v) in self.gain.iter_mut().zip(gain) {
            *g = *v;
        }
    }

    /// Mean training loss at the current scores: (s-y)² (Squared, as `mse`), Huber's loss,
    /// binary or multi-class cross-entropy in nats.
    pub fn train_loss(&self) -> f64 {
        let n = self.binned.n;
        let k = self.outputs;
        let total: f64 = (0..n)
            .map(|r| row_loss(self.loss, &self.scores[r * k..(r + 1) * k], self.target, r))
            .sum();
        total / n as f64
    }

    fn criterion(&self) -> Newton {
        Newton {
            l2: self.params.l2,
            min_child_weight: self.params.min_child_weight,
            min_split_gain: self.params.min_split_gain,
        }
    }

    /// Round `r`'s rows: all, or `subsample` of them drawn without replacement (selection
    /// sampling, so the sample comes out in ascending order).
    fn sample_rows(&self, r: usize) -> Vec<u32> {
        let n = self.binned.n;
        if self.params.subsample >= 1.0 {
            return (0..n as u32).collect();
        }
        let m = ((self.params.subsample * n as f64).round() as usize).clamp(1, n);
        let mut rng = Rng::new(self.params.seed, &format!("boost/round-{r}/rows"));
        let mut out = Vec::with_capacity(m);
        for row in 0..n {
            if rng.next_f64() * ((n - row) as f64) < (m - out.len()) as f64 {
                out.push(row as u32);
            }
        }
        out
    }

    /// Tree k of round r's features: all usable ones or a `colsample` share of them.
    fn col_sample(&self, r: usize, k: usize) -> Vec<usize> {
        if self.params.colsample >= 1.0 {
            return self.usable.clone();
        }
        let m = ((self.params.colsample * self.usable.len() as f64).round() as usize).max(1);
        let mut rng = Rng::new(self.params.seed, &format!("boost/round-{r}/tree-{k}/cols"));
        draw(&self.usable, m, &mut rng)
    }

    /// Adds tree `k`'s values to the rows outside the (ascending) sample `rows`.
    fn add_outside(&mut self, tree: &Tree, k: usize, rows: &[u32]) {
        let mut next = rows.iter().peekable();
        for row in 0..self.binned.n {
            if next.peek().is_some_and(|&&s| s as usize == row) {
                next.next();
                continue;
            }
            self.scores[row * self.outputs + k] += f64::from(tree.predict(self.rows.row(row)));
        }
    }

    /// Adds the gains of `tree`'s splits, recomputed from the sample's gradients.
    fn replay_gain(&mut self, tree: &Tree, k: usize, rows: &[u32]) {
        let internal = tree.feature.len();
        let mut sums = vec![[0.0f64; 2]; 2 * internal + 1];
        for &row in rows {
            let [g, h] = self.grads[k][row as usize];
            let x = self.rows.row(row as usize);
            let leaf = tree.leaf_of(x);
            // Walk from the leaf up to the root, adding to every node on the path.
            let mut n = internal + leaf;
            loop {
                sums[n][0] += f64::from(g);
                sums[n][1] += f64::from(h);
                if n == 0 {
                    break;
                }
                n = (n - 1) / 2;
            }
        }
        let crit = self.criterion();
        for n in 0..internal {
            let splits = tree.missing_right[n] || tree.threshold[n] != f32::INFINITY;
            let f = tree.feature[n] as usize;
            if splits && f < self.gain.len() {
                let children = crit.score(&sums[2 * n + 1]) + crit.score(&sums[2 * n + 2]);
                self.gain[f] += crit.gain(children, crit.score(&sums[n]));
            }
        }
    }

    /// Gradients and hessians of every row and output at the current scores, in blocks of
    /// rows (one a thread).
    fn compute_grads(&mut self) {
        let (n, k) = (self.binned.n, self.outputs);
        let t = if n < 1 << 15 { 1 } else { self.threads };
        let per = n.div_ceil(t).max(1);
        let mut blocks: Vec<Vec<&mut [[f32; 2]]>> = (0..n.div_ceil(per))
            .map(|_| Vec::with_capacity(k))
            .collect();
        for g in &mut self.grads {
            for (block, chunk) in blocks.iter_mut().zip(g.chunks_mut(per)) {
                block.push(chunk);
            }
        }
        let (loss, target, scores) = (self.loss, self.target, &self.scores[..]);
        if let [outs] = &mut blocks[..] {
            return grads(loss, target, 0, scores, outs);
        }
        std::thread::scope(|s| {
            for (b, mut outs) in blocks.into_iter().enumerate() {
                let scores = &scores[b * per * k..];
                s.spawn(move || grads(loss, target, b * per, scores, &mut outs));
            }
        });
    }
}

/// (gradient, hessian) of rows `first..` (as many as `out[0]` holds) for every output, their
/// scores `scores` (row-major, from row `first`).
fn grads(
    loss: Loss,
    target: Target<'_>,
    first: usize,
    scores: &[f64],
    out: &mut [&mut [[f32; 2]]],
) {
    let k = out.len();
    let mut p = vec![0.0f64; k];
    for i in 0..out.first().map_or(0, |o| o.len()) {
        let r = first + i;
        let s = &scores[i * k..(i + 1) * k];
        match (loss, target) {
            (Loss::Softmax, Target::Classes { labels, .. }) => {
                softmax(s, &mut p);
                let scale = k as f64 / (k as f64 - 1.0);
                for (c, &pc) in p.iter().enumerate() {
                    let y = if labels[r] as usize == c { 1.0 } else { 0.0 };
                    out[c][i] = [(pc - y) as f32, hess(scale * pc * (1.0 - pc))];
                }
            }
            (_, Target::Classes { labels, .. }) => {
                let pc = 1.0 / (1.0 + (-s[0]).exp());
                let y = f64::from(labels[r]);
                out[0][i] = [(pc - y) as f32, hess(pc * (1.0 - pc))];
            }
            (Loss::Huber { delta }, Target::Values(v)) => {
                let d = (s[0] - f64::from(v[r])).clamp(-delta, delta);
                out[0][i] = [d as f32, 1.0];
            }
            (_, Target::Values(v)) => {
                out[0][i] = [(s[0] - f64::from(v[r])) as f32, 1.0];
            }
        }
    }
}

/// The least hessian of a row. Histograms keep no row counts (a bin is two sums, one 16-byte
/// addition a row): a set of rows is empty exactly when its hessian is below `PRESENT`, half
/// this, far above the rounding left by subtracting a sibling's sums from its parent's
/// (about 1e-16 of a sum, and a sum of hessians is at most the number of rows).
pub(crate) const HESS_FLOOR: f64 = 1e-6;
const PRESENT: f64 = HESS_FLOOR / 2.0;

fn hess(h: f64) -> f32 {
    h.max(HESS_FLOOR) as f32
}

/// −G/(H+λ)·lr, or 0 for a leaf without weight.
fn leaf_value(s: &[f64], l2: f64, lr: f64) -> f32 {
    let d = s[1] + l2;
    if d > 0.0 {
        (-s[0] / d * lr) as f32
    } else {
        0.0
    }
}

fn softmax(s: &[f64], p: &mut [f64]) {
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut z = 0.0;
    for (pi, &si) in p.iter_mut().zip(s) {
        *pi = (si - m).exp();
        z += *pi;
    }
    for pi in p.iter_mut() {
        *pi /= z;
    }
}

/// The loss of row `r` at scores `s`.
fn row_loss(loss: Loss, s: &[f64], target: Target<'_>, r: usize) -> f64 {
    match (loss, target) {
        (Loss::Softmax, Target::Classes { labels, .. }) => {
            let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            lse - s[labels[r] as usize]
        }
        (_, Target::Classes { labels, .. }) => {
            let z = s[0];
            let y = f64::from(labels[r]);
            z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
        }
        (Loss::Huber { delta }, Target::Values(v)) => {
            let d = (s[0] - f64::from(v[r])).abs();
            if d <= delta {
                0.5 * d * d
            } else {
                delta * (d - 0.5 * delta)
            }
        }
        // The squared error itself (what `mse` reports), not the half the gradient uses.
        (_, Target::Values(v)) => {
            let d = s[0] - f64::from(v[r]);
            d * d
        }
    }
}

fn check_params(p: &BoostParams) -> Result<(), String> {
    let fin = |name: &str, v: f64, ok: bool| {
        if v.is_finite() && ok {
            Ok(())
        } else {
            Err(format!("{name} is out of range: {v}"))
        }
    };
    fin("learning rate", p.lr, p.lr > 0.0)?;
    fin(
        "min_child_weight",
        p.min_child_weight,
        p.min_child_weight >= 0.0,
    )?;
    fin("l2", p.l2, p.l2 >= 0.0)?;
    fin("min_split_gain", p.min_split_gain, p.min_split_gain >= 0.0)?;
    fin(
        "subsample",
        p.subsample,
        p.subsample > 0.0 && p.subsample <= 1.0,
    )?;
    fin(
        "colsample",
        p.colsample,
        p.colsample > 0.0 && p.colsample <= 1.0,
    )
}

/// Trees a round for this loss and target, or why they do not fit together.
fn outputs(loss: Loss, target: &Target<'_>) -> Result<usize, String> {
    match (loss, target) {
        (Loss::LogLoss, Target::Classes { classes: 2, .. }) => Ok(1),
        (Loss::LogLoss, Target::Classes { classes, .. }) => Err(format!(
            "log loss is for two classes; this target has {classes} (use softmax)"
        )),
        (Loss::Softmax, Target::Classes { classes, .. }) => Ok(*classes),
        (Loss::Squared, Target::Values(_)) => Ok(1),
        (Loss::Huber { delta }, Target::Values(_)) if delta.is_finite() && delta > 0.0 => Ok(1),
        (Loss::Huber { delta }, Target::Values(_)) => Err(format!(
            "huber delta must be a positive number, not {delta}"
        )),
        (Loss::LogLoss | Loss::Softmax, Target::Values(_)) => {
            Err("a classification loss needs class labels, not values".into())
        }
        (_, Target::Classes { .. }) => {
            Err("a regression loss needs target values, not class labels".into())
        }
    }
}

/// The starting scores (see the module comment).
fn base_scores(loss: Loss, target: &Target<'_>, outputs: usize) -> Vec<f32> {
    match (loss, target) {
        (Loss::LogLoss, Target::Classes { labels, .. }) => {
            let pos = labels.iter().filter(|&&l| l == 1).count() as f64;
            let p = (pos / labels.len() as f64).clamp(1e-6, 1.0 - 1e-6);
            vec![(p / (1.0 - p)).ln() as f32]
        }
        (Loss::Squared | Loss::Huber { .. }, Target::Values(v)) => {
            let sum: f64 = v.iter().map(|&y| f64::from(y)).sum();
            vec![(sum / v.len() as f64) as f32]
        }
        _ => vec![0.0; outputs],
    }
}
