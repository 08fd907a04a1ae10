//! Tree ensembles as the `ai.onnx.ml` tree operators: the trees of a run's `model.safetensors`
//! (`train::ensemble`'s state tensors) as one `TreeEnsembleClassifier` (classes) or
//! `TreeEnsembleRegressor` (values) node, so ONNX tooling sees a tree model as one, and the
//! model's answer after it: class probabilities `[N, K]` or values `[N, 1]`.
//!
//! mlx keeps complete trees (a node that does not split has threshold +inf and sends
//! everything left); here each tree is pruned to the nodes that split, rounds not grown (zero
//! trees) are left out, and the trees of one round with the same structure (a forest's
//! per-class trees) become one tree with a weight per class. A split is `BRANCH_LEQ`: `x <=
//! threshold` goes left (the true branch), as mlx sends `x > threshold` right, and a missing
//! value follows the learned direction (`nodes_missing_value_tracks_true`).

use super::builder::{self, Builder};
use crate::check::hir::{TreeKind, TreePlan};
use crate::diagnostics::Diagnostic;
use crate::rundir::NamedTensor;
use crate::train::ensemble;
use crate::trees::Tree;

/// The trees in the attribute layout of ONNX's tree operators: one entry per node
/// (`nodes_*`) and one per leaf weight (`class_*` / `target_*`).
#[derive(Debug, Default, PartialEq)]
pub struct Flat {
    pub tree_ids: Vec<i64>,
    pub node_ids: Vec<i64>,
    pub feature_ids: Vec<i64>,
    pub values: Vec<f32>,
    pub modes: Vec<String>,
    pub true_ids: Vec<i64>,
    pub false_ids: Vec<i64>,
    pub missing_true: Vec<i64>,
    pub weight_trees: Vec<i64>,
    pub weight_nodes: Vec<i64>,
    pub weight_targets: Vec<i64>,
    pub weights: Vec<f32>,
}

impl Flat {
    /// The number of trees.
    pub fn trees(&self) -> usize {
        self.tree_ids.last().map_or(0, |t| *t as usize + 1)
    }

    fn node(&mut self, tree: i64, id: i64) -> usize {
        self.tree_ids.push(tree);
        self.node_ids.push(id);
        self.feature_ids.push(0);
        self.values.push(0.0);
        self.modes.push("LEAF".into());
        self.true_ids.push(0);
        self.false_ids.push(0);
        self.missing_true.push(0);
        self.node_ids.len() - 1
    }
}

/// Whether node `n` of `t` sends every row left (a node that does not split).
fn unsplit(t: &Tree, n: usize) -> bool {
    t.threshold[n] == f32::INFINITY && !t.missing_right[n]
}

/// Emit the pruned tree `t` as tree `tree` of `flat` from node `n` on, node ids in preorder
/// from `next`; gives the node's id and records `(leaf index, node id)` for every leaf.
fn walk(
    t: &Tree,
    n: usize,
    tree: i64,
    next: &mut i64,
    flat: &mut Flat,
    leaves: &mut Vec<(usize, i64)>,
) -> i64 {
    let internal = t.threshold.len();
    let id = *next;
    *next += 1;
    let at = flat.node(tree, id);
    let mut m = n;
    while m < internal && unsplit(t, m) {
        m = 2 * m + 1;
    }
    if m >= internal {
        leaves.push((m - internal, id));
        return id;
    }
    let left = walk(t, 2 * m + 1, tree, next, flat, leaves);
    let right = walk(t, 2 * m + 2, tree, next, flat, leaves);
    flat.feature_ids[at] = i64::from(t.feature[m]);
    flat.values[at] = t.threshold[m];
    flat.modes[at] = "BRANCH_LEQ".into();
    flat.true_ids[at] = left;
    flat.false_ids[at] = right;
    flat.missing_true[at] = i64::from(!t.missing_right[m]);
    id
}

/// Flatten `trees` (round-major, `k` a round; tree `j` adds to output `j % k`): zero trees
/// left out, trees of a round with the same splits merged. An ensemble with no tree left is
/// one leaf of weight 0.
pub fn flatten(trees: &[Tree], k: usize) -> Flat {
    let mut flat = Flat::default();
    let k = k.max(1);
    for round in trees.chunks(k) {
        // (representative tree, its ONNX id, its leaves' node ids by leaf index)
        let mut emitted: Vec<(&Tree, i64, Vec<Option<i64>>)> = Vec::new();
        for (target, t) in round.iter().enumerate() {
            if t.leaf.iter().all(|v| *v == 0.0) {
                continue;
            }
            let same = |e: &&(&Tree, i64, Vec<Option<i64>>)| {
                e.0.feature == t.feature
                    && e.0.threshold == t.threshold
                    && e.0.missing_right == t.missing_right
            };
            let (id, leaf_nodes) = match emitted.iter().find(same) {
                Some(e) => (e.1, e.2.clone()),
                None => {
                    let id = flat.trees() as i64;
                    let mut leaves = Vec::new();
                    walk(t, 0, id, &mut 0, &mut flat, &mut leaves);
                    let mut by_leaf = vec![None; t.leaf.len()];
                    for (l, node) in leaves {
                        by_leaf[l] = Some(node);
                    }
                    emitted.push((t, id, by_leaf.clone()));
                    (id, by_leaf)
                }
            };
            for (l, node) in leaf_nodes.iter().enumerate() {
                if let Some(node) = node {
                    flat.weight_trees.push(id);
                    flat.weight_nodes.push(*node);
                    flat.weight_targets.push(target as i64);
                    flat.weights.push(t.leaf[l]);
                }
            }
        }
    }
    if flat.tree_ids.is_empty() {
        flat.node(0, 0);
        flat.weight_trees.push(0);
        flat.weight_nodes.push(0);
        flat.weight_targets.push(0);
        flat.weights.push(0.0);
    }
    flat
}

/// The attributes every tree operator shares, with its `post_transform`.
fn node_attributes(f: &Flat, post_transform: &str) -> Vec<super::proto::Attribute> {
    vec![
        builder::ints("nodes_treeids", &f.tree_ids),
        builder::ints("nodes_nodeids", &f.node_ids),
        builder::ints("nodes_featureids", &f.feature_ids),
        builder::floats("nodes_values", &f.values),
        builder::strings("nodes_modes", &f.modes),
        builder::ints("nodes_truenodeids", &f.true_ids),
        builder::ints("nodes_falsenodeids", &f.false_ids),
        builder::ints("nodes_missing_value_tracks_true", &f.missing_true),
        builder::string("post_transform", post_transform),
    ]
}

/// The ensemble in `weights` (a run's states) as a tree operator reading `x` `[N, F]`
/// (float); gives the model's answer: probabilities `[N, classes]` or values `[N, 1]`.
pub fn translate(
    b: &mut Builder,
    p: &TreePlan,
    classes: Option<usize>,
    weights: &[NamedTensor],
    x: &str,
) -> Result<String, Diagnostic> {
    let restored = ensemble::from_tensors(p, weights, p.trees)?;
    let flat = flatten(&restored.trees, p.outputs);
    let Some(classes) = classes else {
        let mut attributes = node_attributes(&flat, "NONE");
        attributes.extend([
            builder::int("n_targets", p.outputs as i64),
            builder::ints("target_treeids", &flat.weight_trees),
            builder::ints("target_nodeids", &flat.weight_nodes),
            builder::ints("target_ids", &flat.weight_targets),
            builder::floats("target_weights", &flat.weights),
            builder::floats("base_values", &restored.base),
            builder::string("aggregate_function", "SUM"),
        ]);
        let y = b.fresh("tree_values");
        b.op_outputs(
            "TreeEnsembleRegressor",
            "ai.onnx.ml",
            &[x],
            attributes,
            &[&y],
        );
        return Ok(y);
    };
    // Two classes boosted with one tree a round (mlx's logits `[0, s]`): the convention of
    // ONNX's converters for XGBoost and LightGBM, the weights as class 0's and a logistic
    // transform, which runtimes answer as `[1 − σ(s), σ(s)]`. Without `base_values` (with two,
    // onnxruntime 1.32 answers 0.5; tract wants one per class): the base score is added to
    // the first tree's leaves instead, as every row reaches exactly one of them.
    let binary = classes == 2 && p.outputs == 1;
    let mut attributes = node_attributes(&flat, if binary { "LOGISTIC" } else { "NONE" });
    let mut weights = flat.weights.clone();
    if binary {
        let base = restored.base.first().copied().unwrap_or(0.0);
        for (w, t) in weights.iter_mut().zip(&flat.weight_trees) {
            if *t == 0 {
                *w += base;
            }
        }
    } else if p.kind == TreeKind::Boosting {
        attributes.push(builder::floats("base_values", &restored.base));
    }
    let labels: Vec<i64> = (0..classes as i64).collect();
    attributes.extend([
        builder::ints("classlabels_int64s", &labels),
        builder::ints("class_treeids", &flat.weight_trees),
        builder::ints("class_nodeids", &flat.weight_nodes),
        builder::ints("class_ids", &flat.weight_targets),
        builder::floats("class_weights", &weights),
    ]);
    let (label, scores) = (b.fresh("tree_label"), b.fresh("tree_scores"));
    b.op_outputs(
        "TreeEnsembleClassifier",
        "ai.onnx.ml",
        &[x],
        attributes,
        &[&label, &scores],
    );
    if binary {
        return Ok(scores);
    }
    // The answer as mlx computes it: a softmax of the scores (boosting's logits), or of the
    // logarithm of the summed class probabilities (a forest), floored at 1e-7.
    let logits = if ensemble::answers_log(p, Some(classes)) {
        let floor = b.f32s(&[], &[1e-7]);
        let kept = b.op("Max", &[&scores, &floor], vec![]);
        b.op("Log", &[&kept], vec![])
    } else {
        scores
    };
    Ok(b.op("Softmax", &[&logits], vec![builder::int("axis", 1)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(feature: &[u32], threshold: &[f32], missing: &[bool], leaf: &[f32]) -> Tree {
        Tree {
            feature: feature.to_vec(),
            threshold: threshold.to_vec(),
            missing_right: missing.to_vec(),
            leaf: leaf.to_vec(),
        }
    }

    /// A depth-2 tree whose right child does not split: the pruned tree has 5 nodes in
    /// preorder (root, left split and its two leaves, the right leaf), the right leaf carries
    /// the value of the leftmost leaf below the unsplit node.
    #[test]
    fn unsplit_nodes_are_pruned_and_their_leaf_kept() {
        let inf = f32::INFINITY;
        let t = tree(
            &[3, 1, 0],
            &[0.5, -2.0, inf],
            &[true, false, false],
            &[1.0, 2.0, 3.0, 3.0],
        );
        let f = flatten(&[t], 1);
        assert_eq!(f.node_ids, vec![0, 1, 2, 3, 4]);
        assert_eq!(
            f.modes,
            vec!["BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF"]
        );
        assert_eq!(f.feature_ids[..2], [3, 1]);
        assert_eq!(f.values[..2], [0.5, -2.0]);
        assert_eq!(f.true_ids[..2], [1, 2]);
        assert_eq!(f.false_ids[..2], [4, 3]);
        // Missing goes right at the root (not the true branch), left at node 1.
        assert_eq!(f.missing_true[..2], [0, 1]);
        assert_eq!(f.weight_nodes, vec![2, 3, 4]);
        assert_eq!(f.weights, vec![1.0, 2.0, 3.0]);
        assert_eq!(f.weight_targets, vec![0, 0, 0]);
    }

    /// Zero trees (rounds early stopping left ungrown) are left out; the trees of one round
    /// with the same splits share one ONNX tree; the targets follow the tree's place.
    #[test]
    fn zero_trees_are_dropped_and_equal_structures_merged() {
        let a = tree(&[0], &[1.0], &[false], &[0.25, 0.75]);
        let b = tree(&[0], &[1.0], &[false], &[0.75, 0.25]);
        let c = tree(&[2], &[0.0], &[true], &[0.5, -0.5]);
        let zero = tree(&[0], &[0.0], &[false], &[0.0, 0.0]);
        let f = flatten(&[a, b, c, zero.clone(), zero.clone(), zero], 3);
        assert_eq!(f.trees(), 2);
        assert_eq!(f.tree_ids, vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(f.weight_trees, vec![0, 0, 0, 0, 1, 1]);
        assert_eq!(f.weight_targets, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(f.weights, vec![0.25, 0.75, 0.75, 0.25, 0.5, -0.5]);
        let empty = flatten(&[tree(&[0], &[0.0], &[false], &[0.0, 0.0])], 1);
        assert_eq!(empty.modes, vec!["LEAF"]);
        assert_eq!(empty.weights, vec![0.0]);
    }

    /// The flattened trees answer as the complete ones on random rows (NaN included).
    #[test]
    fn flattened_trees_route_rows_as_mlx_does() {
        let mut rng = crate::rng::Rng::new(11, "flatten");
        let depth = 4;
        let (i, l) = ((1 << depth) - 1, 1 << depth);
        for _ in 0..50 {
            let t = Tree {
                feature: (0..i).map(|_| rng.below(5) as u32).collect(),
                threshold: (0..i)
                    .map(|_| {
                        if rng.below(4) == 0 {
                            f32::INFINITY
                        } else {
                            rng.below(7) as f32 - 3.0
                        }
                    })
                    .collect(),
                missing_right: (0..i).map(|_| rng.below(2) == 1).collect(),
                leaf: (0..l).map(|j| j as f32 + 1.0).collect(),
            };
            // Keep "unsplit" nodes honest: below one, every leaf has the leftmost value.
            let mut t = t;
            for n in 0..i {
                if unsplit(&t, n) {
                    let (mut lo, mut hi) = (n, n);
                    while lo < i {
                        lo = 2 * lo + 1;
                        hi = 2 * hi + 2;
                    }
                    let v = t.leaf[lo - i];
                    for j in lo..=hi {
                        t.leaf[j - i] = v;
                    }
                }
            }
            let f = flatten(std::slice::from_ref(&t), 1);
            for _ in 0..40 {
                let row: Vec<f32> = (0..5)
                    .map(|_| match rng.below(6) {
                        0 => f32::NAN,
                        v => v as f32 - 3.5,
                    })
                    .collect();
                let want = t.leaf[t.leaf_of(&row)];
                let mut at = 0usize;
                while f.modes[at] != "LEAF" {
                    let v = row[f.feature_ids[at] as usize];
                    let go_true = if v.is_nan() {
                        f.missing_true[at] == 1
                    } else {
                        v <= f.values[at]
                    };
                    let next = if go_true {
                        f.true_ids[at]
                    } else {
                        f.false_ids[at]
                    };
                    at = f.node_ids.iter().position(|n| *n == next).unwrap();
                }
                let w = f
                    .weight_nodes
                    .iter()
                    .position(|n| *n as usize == at)
                    .unwrap();
                assert_eq!(f.weights[w], want, "row {row:?}");
            }
        }
    }
}
