//! Tree ensembles in a run: takes a train whose plan has `trees` and gives its prediction as
//! IR, so evaluation, `predict`, `serve`, `export`, `explain` and `monitor` run a tree model
//! like any other, and the ensemble as state tensors and back (checkpoints, resume). The loop
//! that grows it round by round is `train::run::grow`; the algorithm, `crate::trees`.
//!
//! The ensemble lives in state buffers (saved in `model.safetensors`): for `T = R·K`
//! complete trees of depth `d` (`R` rounds, `K` trees a round, `I = 2^d − 1` nodes, `L = 2^d`
//! leaves, breadth-first), `trees.feature` `[T, I]` (the feature index, as a float),
//! `trees.threshold` `[T, I]`, `trees.missing_right` `[T, I]` (1: a missing value goes right),
//! `trees.leaf` `[R, K, L]` and `trees.base` `[K]`, and beside them, read by no function,
//! `trees.gain` `[F]`: the split gain per model-input value. Rounds not grown (early
//! stopping) are zeros: every row reaches a leaf of value 0.
//!
//! In IR, a row's path is computed for all trees at once without per-row indexing: the
//! features at every node are gathered (`[T·I, B]`), compared (`x > threshold`, or the missing
//! direction where `x` is NaN), and the share of a row reaching each node is carried level by
//! level (`reach·c` to the right child, `reach − reach·c` to the left, exact in {0, 1}); the
//! leaves reached, times their values, summed over rounds and leaves, are the scores.

use crate::check::hir::{self, TreeKind, TreePlan};
use crate::diagnostics::Diagnostic;
use crate::ir::build::FnBuilder;
use crate::ir::{BinaryOp, DType, Op, StateDecl, StateKind, UnaryOp, ValueId};
use crate::rundir::NamedTensor;
use crate::trees::Tree;

/// The state names, in the order `tensors` gives them.
pub const FEATURE: &str = "trees.feature";
pub const THRESHOLD: &str = "trees.threshold";
pub const MISSING_RIGHT: &str = "trees.missing_right";
pub const LEAF: &str = "trees.leaf";
pub const BASE: &str = "trees.base";
/// The split gain gathered by each model-input value (`[F]`): split-gain importance. No
/// function reads it; it travels with the model.
pub const GAIN: &str = "trees.gain";

/// Whether the ensemble's sums are class probabilities (a classifying forest), whose logarithm
/// the model answers.
pub fn answers_log(p: &TreePlan, classes: Option<usize>) -> bool {
    p.kind == TreeKind::Forest && classes.is_some()
}

/// The model's output `[B, width]` for the rows `x` `[B, F]`: logits for classes (`[0, s]` for
/// two classes boosted with one tree a round), values `[B, 1]` for regression.
pub fn forward(
    p: &TreePlan,
    classes: Option<usize>,
    b: &mut FnBuilder<'_>,
    x: ValueId,
    batch: usize,
) -> ValueId {
    let (r, k, i, l) = (p.trees, p.outputs, p.nodes(), p.leaves());
    let t = r * k;
    let state = |b: &mut FnBuilder<'_>, name: &str, shape: Vec<usize>| {
        let id = b.declare_state(StateDecl {
            name: name.into(),
            shape,
            kind: StateKind::Buffer,
            init: hir::Init::Zeros,
            origin: None,
        });
        b.state(id)
    };
    let feature = state(b, FEATURE, vec![t, i]);
    let threshold = state(b, THRESHOLD, vec![t, i]);
    let missing = state(b, MISSING_RIGHT, vec![t, i]);
    let leaf = state(b, LEAF, vec![r, k, l]);
    let base = state(b, BASE, vec![k]);
    let width = b.shape(x)[1];
    b.declare_state(StateDecl {
        name: GAIN.into(),
        shape: vec![width],
        kind: StateKind::Buffer,
        init: hir::Init::Zeros,
        origin: None,
    });
    // Every node's feature for every row: [T·I, B].
    let xt = b.transpose(x, &[1, 0]);
    let flat = b.reshape(feature, &[t * i]);
    let idx = b.cast(flat, DType::I32);
    let g = b.push(
        Op::Gather {
            table: xt,
            indices: idx,
        },
        vec![t * i, batch],
        DType::F32,
    );
    let per_node = |b: &mut FnBuilder<'_>, v: ValueId| {
        let v = b.reshape(v, &[t * i, 1]);
        b.broadcast(v, &[t * i, batch])
    };
    let thr = per_node(b, threshold);
    let right = b.binary(BinaryOp::Gt, g, thr);
    let nan = b.binary(BinaryOp::Ne, g, g);
    let miss = per_node(b, missing);
    let c = b.select(nan, miss, right);
    let c = b.reshape(c, &[t, i, batch]);
    // The share of each row at each node, level by level: [T, 2^level, B].
    let mut reach: Option<ValueId> = None;
    for level in 0..p.depth {
        let w = 1usize << level;
        let cl = b.slice(c, 1, w - 1, w);
        let (go_left, go_right) = match reach {
            None => {
                let one = b.constant(1.0, vec![t, w, batch]);
                (b.sub(one, cl), cl)
            }
            Some(at) => {
                let go_right = b.mul(at, cl);
                (b.sub(at, go_right), go_right)
            }
        };
        let go_left = b.reshape(go_left, &[t, w, 1, batch]);
        let go_right = b.reshape(go_right, &[t, w, 1, batch]);
        let both = b.concat(vec![go_left, go_right], 2);
        reach = Some(b.reshape(both, &[t, 2 * w, batch]));
    }
    let reach = match reach {
        Some(v) => v,
        None => b.constant(1.0, vec![t, 1, batch]),
    };
    let reach = b.reshape(reach, &[r, k, l, batch]);
    let values = b.reshape(leaf, &[r, k, l, 1]);
    let values = b.broadcast(values, &[r, k, l, batch]);
    let scored = b.mul(reach, values);
    let sums = b.sum(scored, &[0, 2]);
    let sums = b.transpose(sums, &[1, 0]);
    let base = b.broadcast(base, &[batch, k]);
    let out = b.add(sums, base);
    if answers_log(p, classes) {
        let floor = b.constant(1e-7, vec![batch, k]);
        let kept = b.binary(BinaryOp::Max, out, floor);
        return b.unary(UnaryOp::Log, kept);
    }
    if classes == Some(2) && k == 1 {
        let zero = b.constant(0.0, vec![batch, 1]);
        return b.concat(vec![zero, out], 1);
    }
    out
}

/// The ensemble's states (`base`, the trees grown so far, round-major, and the split gain of
/// each of the `gain.len()` model-input values), rounds not grown as zeros, shaped as
/// `forward` declares them.
pub fn tensors(p: &TreePlan, base: &[f32], grown: &[Tree], gain: &[f64]) -> Vec<NamedTensor> {
    let (r, k, i, l) = (p.trees, p.outputs, p.nodes(), p.leaves());
    let t = r * k;
    let mut feature = vec![0.0f32; t * i];
    let mut threshold = vec![0.0f32; t * i];
    let mut missing = vec![0.0f32; t * i];
    let mut leaf = vec![0.0f32; t * l];
    for (j, tree) in grown.iter().take(t).enumerate() {
        for n in 0..i.min(tree.feature.len()) {
            feature[j * i + n] = tree.feature[n] as f32;
            threshold[j * i + n] = tree.threshold[n];
            missing[j * i + n] = if tree.missing_right[n] { 1.0 } else { 0.0 };
        }
        let n = l.min(tree.leaf.len());
        leaf[j * l..j * l + n].copy_from_slice(&tree.leaf[..n]);
    }
    let named = |name: &str, shape: Vec<usize>, data: Vec<f32>| NamedTensor {
        name: name.into(),
        shape,
        data,
    };
    let mut b = base.to_vec();
    b.resize(k, 0.0);
    vec![
        named(FEATURE, vec![t, i], feature),
        named(THRESHOLD, vec![t, i], threshold),
        named(MISSING_RIGHT, vec![t, i], missing),
        named(LEAF, vec![r, k, l], leaf),
        named(BASE, vec![k], b),
        gain_tensor(gain),
    ]
}

/// The split gains as their state tensor.
pub fn gain_tensor(gain: &[f64]) -> NamedTensor {
    NamedTensor {
        name: GAIN.into(),
        shape: vec![gain.len()],
        data: gain.iter().map(|g| *g as f32).collect(),
    }
}

/// The ensemble as a checkpoint holds it: the base scores, the first `rounds` rounds of trees
/// and the split gains.
pub struct Restored {
    pub base: Vec<f32>,
    pub trees: Vec<Tree>,
    pub gain: Vec<f64>,
}

/// The first `rounds` rounds of trees, the base scores and the gains back from the states
/// `tensors` wrote (a checkpoint's).
pub fn from_tensors(
    p: &TreePlan,
    states: &[NamedTensor],
    rounds: usize,
) -> Result<Restored, Diagnostic> {
    let (r, k, i, l) = (p.trees, p.outputs, p.nodes(), p.leaves());
    let get = |name: &str, len: usize| {
        states
            .iter()
            .find(|t| t.name == name && t.data.len() == len)
            .map(|t| t.data.as_slice())
            .ok_or_else(|| {
                Diagnostic::error(
                    "mlx::rundir::corrupt",
                    format!("the checkpoint has no tensor `{name}` of {len} values"),
                )
            })
    };
    let feature = get(FEATURE, r * k * i)?;
    let threshold = get(THRESHOLD, r * k * i)?;
    let missing = get(MISSING_RIGHT, r * k * i)?;
    let leaf = get(LEAF, r * k * l)?;
    let base = get(BASE, k)?.to_vec();
    let gain = states
        .iter()
        .find(|t| t.name == GAIN)
        .map(|t| t.data.iter().map(|g| f64::from(*g)).collect())
        .unwrap_or_default();
    let trees = (0..rounds.min(r) * k)
        .map(|j| Tree {
            feature: feature[j * i..(j + 1) * i]
                .iter()
                .map(|f| *f as u32)
                .collect(),
            threshold: threshold[j * i..(j + 1) * i].to_vec(),
            missing_right: missing[j * i..(j + 1) * i]
                .iter()
                .map(|m| *m != 0.0)
                .collect(),
            leaf: leaf[j * l..(j + 1) * l].to_vec(),
        })
        .collect();
    Ok(Restored { base, trees, gain })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::Cpu;
    use crate::backend::interp::Interp;
    use crate::backend::{Backend, HostTensor};
    use crate::rng::Rng;

    fn plan(kind: TreeKind, trees: usize, depth: usize, outputs: usize) -> TreePlan {
        TreePlan {
            kind,
            trees,
            depth,
            lr: 0.1,
            min_child_weight: 1.0,
            l2: 1.0,
            min_split_gain: 0.0,
            subsample: 1.0,
            colsample: 1.0,
            max_features: None,
            min_samples_leaf: 1,
            bootstrap: true,
            bins: 255,
            outputs,
        }
    }

    /// Random complete trees, some nodes unsplit (threshold +inf), random missing directions.
    fn random_trees(p: &TreePlan, cols: usize, grown_rounds: usize, rng: &mut Rng) -> Vec<Tree> {
        (0..grown_rounds * p.outputs)
            .map(|_| {
                let (i, l) = (p.nodes(), p.leaves());
                Tree {
                    feature: (0..i).map(|_| rng.below(cols as u64) as u32).collect(),
                    threshold: (0..i)
                        .map(|_| {
                            if rng.below(5) == 0 {
                                f32::INFINITY
                            } else {
                                (rng.next_f64() * 4.0 - 2.0) as f32
                            }
                        })
                        .collect(),
                    missing_right: (0..i).map(|_| rng.below(2) == 1).collect(),
                    leaf: (0..l).map(|_| (rng.next_f64() - 0.5) as f32).collect(),
                }
            })
            .collect()
    }

    /// The IR program (interpreter and JIT) answers what the trees say row by row: the base
    /// plus each tree's leaf, NaN routed by the missing direction, then the link.
    #[test]
    fn the_program_routes_rows_as_the_trees_do() {
        let mut rng = Rng::new(3, "test/ensemble");
        let cols = 5;
        for (kind, classes, outputs, depth, grown) in [
            (TreeKind::Boosting, Some(2), 1, 3, 7),
            (TreeKind::Boosting, Some(3), 3, 4, 5),
            (TreeKind::Boosting, None, 1, 1, 6),
            (TreeKind::Forest, Some(3), 3, 2, 8),
            (TreeKind::Forest, None, 1, 5, 8),
        ] {
            let p = plan(kind, 8, depth, outputs);
            let trees = random_trees(&p, cols, grown, &mut rng);
            let base: Vec<f32> = (0..outputs).map(|k| 0.25 * k as f32 - 0.1).collect();
            let base = if kind == TreeKind::Forest {
                vec![0.0; outputs]
            } else {
                base
            };
            let rows = 37;
            let x: Vec<f32> = (0..rows * cols)
                .map(|_| match rng.below(8) {
                    0 => f32::NAN,
                    _ => (rng.next_f64() * 5.0 - 2.5) as f32,
                })
                .collect();
            let mut states = Vec::new();
            let mut b = FnBuilder::new("predict", &mut states);
            let xi = b.input("x", vec![rows, cols], DType::F32);
            let out = forward(&p, classes, &mut b, xi, rows);
            b.output("out", out);
            let f = b.finish();
            let program = crate::ir::Program {
                states,
                functions: vec![f],
            };
            let gain: Vec<f64> = (0..cols).map(|c| c as f64 * 0.5).collect();
            let values = tensors(&p, &base, &trees, &gain);
            let backends: Vec<Box<dyn Backend>> = vec![
                Box::new(Interp),
                Box::new(Cpu {
                    threads: 2,
                    jit: true,
                    direct_conv: true,
                }),
            ];
            for be in backends {
                let mut exe = be.compile(&program).expect("compiles");
                for (si, s) in program.states.iter().enumerate() {
                    let t = values.iter().find(|t| t.name == s.name).expect("state");
                    assert_eq!(t.shape, s.shape, "{}", s.name);
                    exe.write_state(si, &HostTensor::f32(t.shape.clone(), t.data.clone()))
                        .expect("write");
                }
                let got = exe
                    .run(0, &[HostTensor::f32(vec![rows, cols], x.clone())])
                    .expect("runs");
                let got = got[0].as_f32();
                let width = got.len() / rows;
                for r in 0..rows {
                    let row = &x[r * cols..(r + 1) * cols];
                    let mut want: Vec<f64> = base.iter().map(|v| f64::from(*v)).collect();
                    for (j, t) in trees.iter().enumerate() {
                        want[j % outputs] += f64::from(t.predict(row));
                    }
                    let want: Vec<f64> = if answers_log(&p, classes) {
                        want.iter().map(|v| v.max(1e-7).ln()).collect()
                    } else if classes == Some(2) && outputs == 1 {
                        vec![0.0, want[0]]
                    } else {
                        want
                    };
                    assert_eq!(width, want.len());
                    for (k, w) in want.iter().enumerate() {
                        let g = f64::from(got[r * width + k]);
                        assert!(
                            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{kind:?} {} row {r} output {k}: {g} vs {w}",
                            be.name()
                        );
                    }
                }
            }
            // The states give the grown trees back.
            let back = from_tensors(&p, &values, grown).expect("decodes");
            assert_eq!(back.base, base);
            assert_eq!(back.trees, trees);
            assert_eq!(back.gain, gain);
        }
    }
}
