//! Tests of the tree ensembles on hand-computed and generated data: exact splits and leaves,
//! bin/threshold agreement, determinism across thread counts, replay, missing values, errors.

use super::bins::Binned;
use super::grow::{Features, Grower};
use super::hist::{COPIES, Criterion, Hist, Payload, SPREAD_ROWS};
use super::*;
use crate::rng::Rng;

pub(super) fn boost_params(rounds: usize, depth: usize) -> BoostParams {
    BoostParams {
        rounds,
        depth,
        lr: 1.0,
        min_child_weight: 0.0,
        l2: 1.0,
        min_split_gain: 0.0,
        subsample: 1.0,
        colsample: 1.0,
        bins: 255,
        seed: 7,
    }
}

pub(super) fn forest_params(trees: usize, depth: usize, max_features: usize) -> ForestParams {
    ForestParams {
        trees,
        depth,
        max_features,
        min_samples_leaf: 1,
        bootstrap: true,
        bins: 255,
        seed: 7,
    }
}

/// `n` rows of `cols` features: uniform, some rounded (ties), a few NaN; a class from a noisy
/// rule and a value.
fn synthetic(n: usize, cols: usize, seed: u64) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let mut rng = Rng::new(seed, "tests/synthetic");
    let mut x = Vec::with_capacity(n * cols);
    let mut labels = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f32> = (0..cols)
            .map(|f| {
                let v = rng.next_f64() as f32;
                match f % 4 {
                    1 => (v * 5.0).floor(),
                    2 if rng.next_f64() < 0.1 => f32::NAN,
                    _ => v,
                }
            })
            .collect();
        let a = if row[0].is_nan() { 0.5 } else { row[0] };
        let b = row.get(1).copied().unwrap_or(0.0);
        let noise = rng.next_f64() as f32 * 0.3;
        labels.push(((a + b * 0.2 + noise) * 3.0 / 2.3).min(2.0) as u32);
        values.push(
            a * 3.0
                + b
                + noise
                + if row.get(2).is_some_and(|v| v.is_nan()) {
                    1.0
                } else {
                    0.0
                },
        );
        x.extend(row);
    }
    (x, labels, values)
}

#[test]
fn hand_computed_squared_split() {
    // y = 1 2 3 10 11 12, base = mean 6.5, gradients s - y = 5.5 4.5 3.5 -3.5 -4.5 -5.5, h = 1.
    // Split after x = 3: G_L = 13.5, H_L = 3, G_R = -13.5, H_R = 3, G = 0, so with λ = 1 the gain
    // is 0.5·(13.5²/4 + 13.5²/4 - 0) = 91.125 / 2 = 45.5625, and the leaves are ∓13.5/4 = ∓3.375.
    // The left child's best split (after x = 1: 5.5²/2 + 8²/3 = 36.46 < 13.5²/4 = 45.56) loses,
    // so node 1 does not split and both its leaves carry -3.375.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let y = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
    let rows = Rows { x: &x, cols: 1 };
    let mut b = Booster::new(
        rows,
        Target::Values(&y),
        Loss::Squared,
        &boost_params(1, 2),
        1,
    )
    .expect("valid input");
    assert_eq!(b.base(), &[6.5]);
    let trees = b.round();
    let t = &trees[0];
    assert_eq!(t.feature, vec![0, 0, 0]);
    assert_eq!(t.threshold, vec![3.5, f32::INFINITY, f32::INFINITY]);
    assert_eq!(t.missing_right, vec![false, false, false]);
    assert_eq!(t.leaf, vec![-3.375, -3.375, 3.375, 3.375]);
    assert_eq!(b.gain(), &[45.5625]);
    assert_eq!(b.scores(), &[3.125, 3.125, 3.125, 9.875, 9.875, 9.875]);
    // mean((s - y)²) = (2.125² + 1.125² + 0.125² + 0.125² + 1.125² + 2.125²) / 6, as `mse`.
    let expect = 2.0 * (2.125f64.powi(2) + 1.125f64.powi(2) + 0.125f64.powi(2)) / 6.0;
    assert_eq!(b.train_loss(), expect);
}

#[test]
fn hand_computed_gini_forest() {
    // Without bootstrap and with every feature tried, the one tree splits x <= 2.5 (Gini
    // decrease from 2/4 impurity to 0): leaves hold the class shares.
    let x = [1.0, 2.0, 3.0, 4.0];
    let labels = [0, 0, 1, 1];
    let mut p = forest_params(1, 1, 1);
    p.bootstrap = false;
    let target = Target::Classes {
        labels: &labels,
        classes: 2,
    };
    let e = forest(Rows { x: &x, cols: 1 }, target, &p, 1, &mut |_| {}).expect("valid input");
    assert_eq!(e.trees.len(), 2);
    assert_eq!(e.trees[0].threshold, vec![2.5]);
    assert_eq!(e.trees[0].leaf, vec![1.0, 0.0]);
    assert_eq!(e.trees[1].leaf, vec![0.0, 1.0]);
    // Σc²/N: children 2 + 2, parent (4 + 4)/4 = 2: the decrease is 2 (weighted Gini).
    assert_eq!(e.gain, vec![2.0]);
    let mut out = [0.0; 2];
    e.predict_row(&[3.0], &mut out);
    assert_eq!(out, [1e-7f64.ln(), 0.0]);
}

/// Grows a tree over `x` with random gradients and checks that `Tree::leaf_of` on every raw row
/// lands in the leaf whose row range holds it.
fn assert_leaf_of_agrees(x: &[f32], cols: usize, bins: usize, per_node: bool) {
    let rows = Rows { x, cols };
    let n = rows.len();
    let binned = Binned::fit(&rows, bins, 3, 2);
    let mut rng = Rng::new(1, "tests/grads");
    let gh: Vec<[f32; 2]> = (0..n)
        .map(|_| [rng.normal() as f32, 0.5 + rng.next_f64() as f32])
        .collect();
    let usable: Vec<usize> = (0..cols).filter(|&f| binned.usable(f)).collect();
    let features = if per_node {
        Features::PerNode {
            usable,
            count: 2,
            seed: 3,
            prefix: "t".into(),
        }
    } else {
        Features::Fixed(usable)
    };
    let crit = TestNewton;
    let grown = Grower {
        binned: &binned,
        payload: &Payload::Grad(&gh),
        crit: &crit,
        features: &features,
        depth: 6,
        threads: 2,
    }
    .grow((0..n as u32).collect());
    assert!(grown.splits.iter().flatten().count() > 3, "the tree splits");
    let tree = grow::to_tree(&grown, &binned, |s| s[0] as f32);
    for (j, range) in grown.leaf_ranges.iter().enumerate() {
        for &r in &grown.idx[range.clone()] {
            assert_eq!(tree.leaf_of(rows.row(r as usize)), j, "row {r}");
        }
    }
}

/// A level's histograms summed together (and subtracted from a parent's as they are made)
/// are bit for bit the ones summed node by node: large nodes (four partial sums) and small
/// ones, rows interleaved between nodes, on one thread and two.
#[test]
fn level_histograms_equal_node_histograms_bit_for_bit() {
    let (x, _, _) = synthetic(20_000, 6, 4);
    check_level_histograms(&x, None);
}

/// A feature with 80% of its rows in one bin is summed over its other rows only, the common
/// bin being each node's totals minus the rest: every other bin is still bit for bit the
/// node's sum, the common one equal up to rounding.
#[test]
fn sparse_features_sum_their_other_rows_and_derive_the_common_bin() {
    let (mut x, _, _) = synthetic(20_000, 6, 4);
    let mut rng = Rng::new(5, "tests/sparse");
    for row in x.chunks_mut(6) {
        if rng.next_f64() < 0.8 {
            row[3] = 0.0;
        }
    }
    check_level_histograms(&x, Some(3));
}

fn check_level_histograms(x: &[f32], sparse: Option<usize>) {
    let rows = Rows { x, cols: 6 };
    let binned = Binned::fit(&rows, 255, 3, 2);
    for f in 0..6 {
        assert_eq!(binned.sparse[f].is_some(), sparse == Some(f), "feature {f}");
    }
    let mut rng = Rng::new(2, "tests/level");
    let gh: Vec<[f32; 2]> = (0..rows.len())
        .map(|_| {
            // Magnitudes 1e-8..1e8, so that f64 sums round and their order shows.
            let scale = 10f64.powf(rng.next_f64() * 16.0 - 8.0);
            [(rng.normal() * scale) as f32, rng.next_f64() as f32]
        })
        .collect();
    let feats: Vec<usize> = (0..6).filter(|&f| binned.usable(f)).collect();
    // Rows dealt at random to four nodes (one large, one tiny, one empty) and left out.
    let mut nodes: Vec<Vec<u32>> = vec![Vec::new(); 4];
    for r in 0..rows.len() as u32 {
        match rng.below(100) {
            0..45 => nodes[0].push(r),
            45..47 => nodes[1].push(r),
            47..80 => nodes[2].push(r),
            _ => {}
        }
    }
    let parent_rows: Vec<u32> = {
        let mut p = [nodes[0].clone(), nodes[1].clone()].concat();
        p.sort_unstable();
        p
    };
    let payload = Payload::Grad(&gh);
    let node_rows: Vec<&[u32]> = nodes.iter().map(Vec::as_slice).collect();
    // The common bin's place in the histograms, if any.
    let common = sparse.map(|f| {
        let i = feats.iter().position(|&g| g == f).expect("usable");
        let (_, offs) = by_hand(&binned, &gh, &feats, &parent_rows);
        let c = binned.sparse[f].as_ref().expect("sparse").common as usize;
        offs[i] + 2 * c..offs[i] + 2 * c + 2
    });
    let same = |a: &[f64], b: &[f64], what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            if common.as_ref().is_some_and(|c| c.contains(&j)) {
                assert!(
                    (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                    "{what}: {j}: {x} vs {y}"
                );
            } else {
                assert_eq!(x.to_bits(), y.to_bits(), "{what}: {j}: {x} vs {y}");
            }
        }
    };
    for threads in [1, 2] {
        let mut minus = vec![
            None,
            Some(Hist::build(
                &binned,
                &payload,
                &feats,
                &parent_rows,
                threads,
            )),
            None,
            None,
        ];
        let level = Hist::build_level(&binned, &gh, &feats, &node_rows, &mut minus, threads);
        for (s, rows) in node_rows.iter().enumerate() {
            let (data, offs) = by_hand(&binned, &gh, &feats, rows);
            assert_eq!(level[s].offs, offs);
            same(
                &level[s].data,
                &data,
                &format!("node {s}, {threads} threads"),
            );
        }
        let (parent, _) = by_hand(&binned, &gh, &feats, &parent_rows);
        let expected: Vec<f64> = parent
            .iter()
            .zip(&level[1].data)
            .map(|(p, c)| p - c)
            .collect();
        let got = minus[1].take().expect("kept");
        same(&got.data, &expected, "the sibling");
    }
}

/// A node's gradient histograms as the summation order is specified: per feature and bin, the
/// node's rows in row order, from `SPREAD_ROWS` rows on the `i`-th row into part
/// `i % COPIES` and the parts added in order; (data, each feature's offset).
fn by_hand(
    binned: &Binned,
    gh: &[[f32; 2]],
    feats: &[usize],
    rows: &[u32],
) -> (Vec<f64>, Vec<usize>) {
    let k = if rows.len() >= SPREAD_ROWS { COPIES } else { 1 };
    let (mut data, mut offs) = (Vec::new(), vec![0]);
    for &f in feats {
        let bins = binned.nonmissing_bins(f) + 1;
        let mut parts = vec![vec![[0.0f64; 2]; bins]; k];
        for (i, &r) in rows.iter().enumerate() {
            let e = &mut parts[i % k][binned.col(f)[r as usize] as usize];
            e[0] += f64::from(gh[r as usize][0]);
            e[1] += f64::from(gh[r as usize][1]);
        }
        for b in 0..bins {
            for c in 0..2 {
                let mut v = 0.0;
                for part in &parts {
                    v += part[b][c];
                }
                data.push(v);
            }
        }
        offs.push(data.len());
    }
    (data, offs)
}

struct TestNewton;

impl Criterion for TestNewton {
    fn score(&self, s: &[f64]) -> f64 {
        s[0] * s[0] / (s[1] + 1.0)
    }
    fn gain(&self, children: f64, parent: f64) -> f64 {
        children - parent
    }
    fn accepts(&self, gain: f64, _: f64) -> bool {
        gain > 0.0
    }
    fn admissible(&self, s: &[f64]) -> bool {
        s[1] > 0.25
    }
    fn mass(&self, s: &[f64]) -> f64 {
        s[1]
    }
    fn rows(&self, s: &[f64]) -> f64 {
        if s[1] > 0.25 { s[1] } else { 0.0 }
    }
    fn splittable(&self, s: &[f64]) -> bool {
        s[1] > 0.75
    }
}

#[test]
fn leaf_of_agrees_with_bins_on_every_training_row() {
    let (x, _, _) = synthetic(3000, 6, 1);
    assert_leaf_of_agrees(&x, 6, 255, false);
    assert_leaf_of_agrees(&x, 6, 16, false);
    assert_leaf_of_agrees(&x, 6, 2, true);
    // Awkward values: huge and tiny magnitudes, infinities, negative zero, heavy ties.
    let mut rng = Rng::new(2, "tests/awkward");
    let specials = [
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        0.0,
        f32::MAX,
        f32::MIN_POSITIVE,
        1e-40,
        16_777_217.0,
        f32::NAN,
    ];
    let x: Vec<f32> = (0..4000)
        .map(|i| {
            let u = rng.next_f64();
            if u < 0.2 {
                specials[rng.below(specials.len() as u64) as usize]
            } else if i % 2 == 0 {
                (u * 1e6) as f32 + 0.1
            } else {
                (u * 3.0).floor() as f32
            }
        })
        .collect();
    assert_leaf_of_agrees(&x, 2, 255, false);
    assert_leaf_of_agrees(&x, 2, 7, false);
    for (data, cols) in [super::tests_data::penguins(), super::tests_data::diabetes()]
        .into_iter()
        .map(|d| (d.x, d.cols))
    {
        assert_leaf_of_agrees(&data, cols, 255, false);
        assert_leaf_of_agrees(&data, cols, 8, true);
    }
}

fn boost_trees(
    x: &[f32],
    cols: usize,
    target: Target<'_>,
    loss: Loss,
    p: &BoostParams,
    threads: usize,
) -> Vec<Tree> {
    let mut b = Booster::new(Rows { x, cols }, target, loss, p, threads).expect("valid input");
    (0..p.rounds).flat_map(|_| b.round()).collect()
}

#[test]
fn results_do_not_depend_on_threads() {
    // 30,000 rows × 8 features: large enough that histograms are built on several threads.
    let (x, labels, values) = synthetic(30_000, 8, 4);
    let mut p = boost_params(3, 5);
    p.lr = 0.3;
    p.subsample = 0.8;
    p.colsample = 0.8;
    let classes = Target::Classes {
        labels: &labels,
        classes: 3,
    };
    let one = boost_trees(&x, 8, classes, Loss::Softmax, &p, 1);
    assert_eq!(one, boost_trees(&x, 8, classes, Loss::Softmax, &p, 2));
    assert_eq!(one, boost_trees(&x, 8, classes, Loss::Softmax, &p, 3));
    let one = boost_trees(&x, 8, Target::Values(&values), Loss::Squared, &p, 1);
    assert_eq!(
        one,
        boost_trees(&x, 8, Target::Values(&values), Loss::Squared, &p, 3)
    );
    let fp = forest_params(5, 6, 3);
    let rows = Rows { x: &x, cols: 8 };
    let f1 = forest(rows, classes, &fp, 1, &mut |_| {}).expect("valid");
    let mut seen = Vec::new();
    let f2 = forest(rows, classes, &fp, 2, &mut |d| seen.push(d)).expect("valid");
    let f3 = forest(rows, Target::Values(&values), &fp, 3, &mut |_| {}).expect("valid");
    assert_eq!(f1, f2);
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        f3,
        forest(rows, Target::Values(&values), &fp, 1, &mut |_| {}).expect("valid")
    );
}

#[test]
fn replay_continues_exactly() {
    let (x, labels, _) = synthetic(5000, 6, 5);
    let mut p = boost_params(10, 4);
    p.lr = 0.2;
    p.subsample = 0.7;
    p.colsample = 0.6;
    let target = Target::Classes {
        labels: &labels,
        classes: 3,
    };
    let rows = Rows { x: &x, cols: 6 };
    let mut straight = Booster::new(rows, target, Loss::Softmax, &p, 2).expect("valid");
    let all: Vec<Tree> = (0..10).flat_map(|_| straight.round()).collect();
    let mut first = Booster::new(rows, target, Loss::Softmax, &p, 1).expect("valid");
    let mut trees: Vec<Tree> = (0..4).flat_map(|_| first.round()).collect();
    let mut resumed = Booster::new(rows, target, Loss::Softmax, &p, 3).expect("valid");
    resumed.replay(&trees);
    assert_eq!(resumed.rounds_done(), 4);
    assert_eq!(resumed.scores(), first.scores());
    trees.extend((0..6).flat_map(|_| resumed.round()));
    assert_eq!(trees, all);
    assert_eq!(resumed.scores(), straight.scores());
    assert_eq!(resumed.train_loss(), straight.train_loss());
    for (a, b) in resumed.gain().iter().zip(straight.gain()) {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} {b}");
    }
}

#[test]
fn missingness_that_predicts_the_class_is_learned() {
    // Feature 0 is missing for most class-1 rows and a noise value otherwise; feature 1 is noise.
    let make = |n: usize, seed: u64| {
        let mut rng = Rng::new(seed, "tests/missing");
        let mut x = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let class = rng.below(2) as u32;
            let missing = if class == 1 {
                rng.next_f64() < 0.9
            } else {
                rng.next_f64() < 0.05
            };
            x.push(if missing {
                f32::NAN
            } else {
                rng.next_f64() as f32
            });
            x.push(rng.next_f64() as f32);
            labels.push(class);
        }
        (x, labels)
    };
    let (x, labels) = make(2000, 1);
    let mut p = boost_params(20, 2);
    p.lr = 0.3;
    let target = Target::Classes {
        labels: &labels,
        classes: 2,
    };
    let mut b = Booster::new(Rows { x: &x, cols: 2 }, target, Loss::LogLoss, &p, 2).expect("valid");
    let trees: Vec<Tree> = (0..20).flat_map(|_| b.round()).collect();
    // The first split separates missing (class 1, right) from present values.
    assert_eq!(trees[0].feature[0], 0);
    assert!(trees[0].missing_right[0]);
    assert_eq!(trees[0].threshold[0], f32::INFINITY);
    let e = b.ensemble(trees);
    let (tx, tl) = make(2000, 2);
    let acc = accuracy(&e, &tx, 2, &tl);
    // The Bayes rate is 0.925 (0.9·0.5 + 0.95·0.5).
    assert!(acc > 0.9, "accuracy {acc}");
}

#[test]
fn unseen_missing_values_go_to_the_side_with_more_hessian() {
    // x = 0..99, y = [x > 30]: the right side has 69 rows (squared loss: hessian = rows).
    let x: Vec<f32> = (0..100).map(|i| i as f32).collect();
    // The one-split tree of y = [x > cut].
    let stump = |cut: f32| {
        let y: Vec<f32> = x.iter().map(|&v| if v > cut { 1.0 } else { 0.0 }).collect();
        let mut b = Booster::new(
            Rows { x: &x, cols: 1 },
            Target::Values(&y),
            Loss::Squared,
            &boost_params(1, 1),
            1,
        )
        .expect("valid");
        b.round().remove(0)
    };
    let t = stump(30.0);
    assert_eq!(t.threshold[0], 30.5);
    assert!(t.missing_right[0]);
    assert_eq!(t.predict(&[f32::NAN]), t.predict(&[99.0]));
    // Mirrored, the left side is larger and takes missing values.
    let t = stump(70.0);
    assert!(!t.missing_right[0]);
    assert_eq!(t.predict(&[f32::NAN]), t.predict(&[0.0]));
}

pub(super) fn accuracy(e: &Ensemble, x: &[f32], cols: usize, labels: &[u32]) -> f64 {
    let mut out = vec![0.0; e.outputs];
    let mut right = 0;
    for (row, &l) in x.chunks(cols).zip(labels) {
        e.predict_row(row, &mut out);
        let class = if e.outputs == 1 {
            u32::from(out[0] > 0.0)
        } else {
            (0..out.len()).fold(0, |b, k| if out[k] > out[b] { k } else { b }) as u32
        };
        right += usize::from(class == l);
    }
    right as f64 / labels.len() as f64
}

#[test]
fn impossible_input_is_an_error() {
    let x = [1.0, 2.0, 3.0, 4.0];
    let rows = Rows { x: &x, cols: 1 };
    let y = [1.0, 2.0, 3.0, 4.0];
    let labels = [0, 1, 2, 1];
    let p = boost_params(1, 2);
    let new = |rows: Rows<'_>, target: Target<'_>, loss: Loss, p: &BoostParams| {
        Booster::new(rows, target, loss, p, 2).err()
    };
    let classes = |c| Target::Classes {
        labels: &labels,
        classes: c,
    };
    assert!(
        new(
            Rows { x: &[], cols: 1 },
            Target::Values(&[]),
            Loss::Squared,
            &p
        )
        .is_some()
    );
    assert!(
        new(
            Rows { x: &x, cols: 0 },
            Target::Values(&y),
            Loss::Squared,
            &p
        )
        .is_some()
    );
    assert!(
        new(rows, classes(2), Loss::Softmax, &p).is_some(),
        "label 2 of 2 classes"
    );
    assert!(
        new(rows, classes(3), Loss::LogLoss, &p).is_some(),
        "log loss on 3 classes"
    );
    assert!(new(rows, classes(3), Loss::Squared, &p).is_some());
    assert!(new(rows, Target::Values(&y), Loss::Softmax, &p).is_some());
    assert!(
        new(
            rows,
            Target::Values(&[1.0, f32::NAN, 0.0, 0.0]),
            Loss::Squared,
            &p
        )
        .is_some()
    );
    assert!(new(rows, Target::Values(&y[..3]), Loss::Squared, &p).is_some());
    assert!(new(rows, Target::Values(&y), Loss::Huber { delta: 0.0 }, &p).is_some());
    for change in [
        |p: &mut BoostParams| p.bins = 1,
        |p: &mut BoostParams| p.bins = 300,
        |p: &mut BoostParams| p.depth = 0,
        |p: &mut BoostParams| p.depth = 13,
        |p: &mut BoostParams| p.lr = f64::NAN,
        |p: &mut BoostParams| p.subsample = 0.0,
        |p: &mut BoostParams| p.colsample = 1.5,
        |p: &mut BoostParams| p.l2 = -1.0,
    ] {
        let mut q = p.clone();
        change(&mut q);
        assert!(
            new(rows, Target::Values(&y), Loss::Squared, &q).is_some(),
            "{q:?}"
        );
    }
    assert!(new(rows, classes(3), Loss::Softmax, &p).is_none());
    let f = |target: Target<'_>, p: &ForestParams| forest(rows, target, p, 2, &mut |_| {}).err();
    let fp = forest_params(2, 3, 1);
    assert!(f(classes(2), &fp).is_some());
    assert!(f(Target::Values(&[f32::INFINITY, 1.0, 2.0, 3.0]), &fp).is_some());
    for change in [
        |p: &mut ForestParams| p.bins = 1,
        |p: &mut ForestParams| p.bins = 300,
        |p: &mut ForestParams| p.depth = 0,
        |p: &mut ForestParams| p.trees = 0,
        |p: &mut ForestParams| p.max_features = 0,
        |p: &mut ForestParams| p.min_samples_leaf = 0,
    ] {
        let mut q = fp.clone();
        change(&mut q);
        assert!(f(Target::Values(&y), &q).is_some(), "{q:?}");
    }
    assert!(f(Target::Values(&y), &fp).is_none());
    // A short row at prediction reads the missing features as missing.
    let e = forest(rows, Target::Values(&y), &fp, 1, &mut |_| {}).expect("valid");
    let mut out = [0.0];
    e.predict_row(&[], &mut out);
    assert!(out[0].is_finite());
}

#[test]
fn constant_features_and_targets_make_single_leaf_trees() {
    let x = [5.0; 10];
    let y: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let mut b = Booster::new(
        Rows { x: &x, cols: 1 },
        Target::Values(&y),
        Loss::Squared,
        &boost_params(1, 3),
        1,
    )
    .expect("valid");
    let t = b.round().remove(0);
    assert!(t.leaf.iter().all(|&v| v == 0.0), "{t:?}");
    assert!(t.threshold.iter().all(|&v| v == f32::INFINITY));
    let x: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let same = [2.5f32; 10];
    let e = forest(
        Rows { x: &x, cols: 1 },
        Target::Values(&same),
        &forest_params(3, 4, 1),
        1,
        &mut |_| {},
    )
    .expect("valid");
    let mut out = [0.0];
    e.predict_row(&[4.0], &mut out);
    assert!((out[0] - 2.5).abs() < 1e-6, "{out:?}");
    assert!(
        e.trees
            .iter()
            .all(|t| t.threshold.iter().all(|&v| v == f32::INFINITY))
    );
}

/// Deep trees on a wide table: past some level the histograms of a whole level no longer fit
/// the budget for keeping them (`grow::KEPT_BYTES`), and both children are summed directly.
/// The trees are still the same for any thread count and still split at the deepest level.
#[test]
fn deep_trees_on_wide_tables_sum_children_when_histograms_are_not_kept() {
    // 120 features × 256 codes × 3 sums × 8 bytes ≈ 737 kB a node; 2^9 nodes ≈ 377 MB.
    let cols = 120;
    let (x, labels, _) = synthetic(3_000, cols, 9);
    let mut p = boost_params(2, 10);
    p.min_child_weight = 0.0;
    let classes = Target::Classes {
        labels: &labels,
        classes: 3,
    };
    let one = boost_trees(&x, cols, classes, Loss::Softmax, &p, 1);
    assert_eq!(one, boost_trees(&x, cols, classes, Loss::Softmax, &p, 2));
    // Splits reach the deepest level (the level whose parents kept no histogram).
    let deepest = (1usize << 9) - 1..(1usize << 10) - 1;
    assert!(
        one.iter()
            .any(|t| t.threshold[deepest.clone()].iter().any(|v| v.is_finite())),
        "no tree split at depth 10"
    );
}
