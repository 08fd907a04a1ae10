//! Trains of tree ensembles: takes a train whose `model` is `gradient_boosting(...)` or
//! `random_forest(...)` and gives its `hir::TreePlan` (arguments checked against the
//! `TREE_MODELS` table and their limits), the loss the target implies, and the diagnostics for
//! what a tree model cannot do (images, optimizers, epochs, streamed data, ...).

use super::Checker;
use super::config::{ArgOverride, ConfigCall};
use super::error::train::Error;
use super::hir::{DatasetPlan, Loss, Step, TargetKind, TreeKind, TreePlan};
use super::tables::TREE_MODELS;
use crate::source::Span;
use crate::syntax::ast;

/// The code of every error about what a tree model cannot do.
pub const CODE: &str = "mlx::train::trees";
/// The warning for a spec that rescales features for a tree model.
pub const SCALING: &str = "mlx::train::scaling";

/// Trees are stored complete (2^depth leaves), so depth is bounded.
pub const MAX_DEPTH: usize = 12;
/// Bins are bytes, one of them for missing values.
pub const MAX_BINS: usize = 255;

/// The batch of a tree train without `batch`: a power of two from 1 to 256 that keeps one
/// batch's paths through every tree (`trees · outputs · 2^depth · rows`) near 2^24 values.
pub fn default_batch(p: &TreePlan) -> usize {
    let per_row = (p.trees as f64) * (p.outputs as f64) * (p.leaves() as f64);
    let rows = ((1u64 << 24) as f64 / per_row.max(1.0)).clamp(1.0, 256.0) as usize;
    1usize << rows.ilog2()
}

/// The most rounds (or forest trees) a tree model may have.
pub const MAX_TREES: usize = 100_000;

/// Train entries a tree model has no use for, and why.
const NOT_FOR_TREES: &[(&str, &str)] = &[
    (
        "optimizer",
        "trees are grown split by split, not by an optimizer: set `lr:` of `gradient_boosting` for the step size",
    ),
    (
        "epochs",
        "the rounds of a tree model are its `trees:` argument (early stopping counts rounds)",
    ),
    ("schedule", "a tree model has no learning-rate schedule"),
    ("clip_grad", "a tree model has no gradient to clip"),
    (
        "shards",
        "data-parallel shards split gradient steps; tree models use every core already",
    ),
];

impl Checker<'_> {
    /// The tree model a train's `model` entry names, if it names one (a user item of the same
    /// name wins).
    pub(super) fn tree_model(&self, e: &ast::Expr) -> Option<&'static str> {
        let id = match &e.kind {
            ast::ExprKind::Call { callee, .. } => callee.as_name(),
            _ => e.as_name(),
        }?;
        if self.items.contains_key(&id.name) {
            return None;
        }
        TREE_MODELS
            .iter()
            .find(|s| s.name == id.name)
            .map(|s| s.name)
    }

    /// Entries set on a tree train that mean nothing to it: one error each.
    pub(super) fn tree_entries(&mut self, set: &[(&str, Span)]) -> bool {
        let mut ok = true;
        for (key, span) in set {
            if let Some((_, why)) = NOT_FOR_TREES.iter().find(|(k, _)| k == key) {
                self.fail(Error::NotForTrees {
                    key: key.to_string(),
                    why,
                    span: *span,
                });
                ok = false;
            }
        }
        ok
    }

    /// The loss of a tree train: the one written, if trees can minimise it, or the one the
    /// target implies (cross-entropy for classes, squared error for values).
    pub(super) fn tree_loss(
        &mut self,
        written: Option<(Loss, Span)>,
        target: &TargetKind,
    ) -> Option<Loss> {
        let classes = target.classes().is_some();
        let Some((loss, span)) = written else {
            return Some(if classes {
                Loss::CrossEntropy {
                    label_smoothing: 0.0,
                }
            } else {
                Loss::Mse
            });
        };
        let fits = match (&loss, classes) {
            (Loss::CrossEntropy { label_smoothing: s }, true) => *s == 0.0,
            (Loss::Mse | Loss::Huber { .. }, false) => true,
            _ => false,
        };
        if fits {
            return Some(loss);
        }
        self.fail(Error::TreeLoss { classes, span });
        None
    }

    /// The tree model `e` on dataset `d`: its arguments checked, or `None` after errors.
    /// Returns the plan and the call as written with every argument.
    pub(super) fn tree_plan(
        &mut self,
        e: &ast::Expr,
        overrides: &[ArgOverride<'_>],
        d: &DatasetPlan,
        data_span: Span,
    ) -> Option<(TreePlan, String)> {
        let c = self.config_call(e, TREE_MODELS, "model", overrides)?;
        let mut errors = Vec::new();
        if d.feature_shape.len() != 1 {
            errors.push(Error::TreesOnTensors {
                model: c.name.clone(),
                dataset: d.name.clone(),
                shape: d.feature_shape.clone(),
                span: c.span,
                data_span,
            });
        }
        if d.stream.is_some() {
            errors.push(Error::TreesStreamed {
                model: c.name.clone(),
                dataset: d.name.clone(),
                span: c.span,
                dataset_span: d.span,
            });
        }
        let trees = c.i("trees") as usize;
        if trees > MAX_TREES {
            let span = c.span_of("trees");
            errors.push(Error::TooManyTrees { trees, span });
        }
        let depth = c.i("depth") as usize;
        if depth > MAX_DEPTH {
            let span = c.span_of("depth");
            errors.push(Error::TooDeep { depth, span });
        }
        let bins = c.i("bins") as usize;
        if bins > MAX_BINS {
            let span = c.span_of("bins");
            errors.push(Error::TooManyBins { bins, span });
        }
        let width = d.feature_shape.iter().product::<usize>();
        let max_features = c
            .args
            .get("max_features")
            .map(|_| c.i("max_features") as usize);
        if let Some(max) = max_features
            && max > width
            && d.feature_shape.len() == 1
        {
            errors.push(Error::MaxFeaturesOverWidth {
                max,
                width,
                dataset: d.name.clone(),
                span: c.span_of("max_features"),
            });
        }
        let ok = errors.is_empty();
        for e in errors {
            self.fail(e);
        }
        if !ok {
            return None;
        }
        self.scaling_warning(&c, d);
        let kind = if c.name == "random_forest" {
            TreeKind::Forest
        } else {
            TreeKind::Boosting
        };
        let classes = d.target.kind.classes();
        let outputs = match (kind, classes) {
            (_, None) | (TreeKind::Boosting, Some(2)) => 1,
            (_, Some(k)) => k,
        };
        let f = |k: &str| {
            if c.sig.params.iter().any(|p| p.name == k) {
                c.f(k)
            } else {
                0.0
            }
        };
        let plan = TreePlan {
            kind,
            trees,
            depth,
            lr: f("lr"),
            min_child_weight: f("min_child_weight"),
            l2: f("l2"),
            min_split_gain: f("min_split_gain"),
            subsample: if kind == TreeKind::Boosting {
                f("subsample")
            } else {
                1.0
            },
            colsample: if kind == TreeKind::Boosting {
                f("colsample")
            } else {
                1.0
            },
            max_features,
            min_samples_leaf: if kind == TreeKind::Forest {
                c.i("min_samples_leaf") as usize
            } else {
                1
            },
            bootstrap: kind == TreeKind::Forest && c.b("bootstrap"),
            bins,
            outputs,
        };
        Some((plan, c.text()))
    }

    /// A network reads a dataset that keeps missing values (`keep_missing`): an error at the
    /// train's `data` entry (only trees route NaN). Returns whether all is well.
    pub(super) fn missing_for_network(&mut self, d: &DatasetPlan, span: Span) -> bool {
        let kept: Vec<&str> = d
            .features
            .iter()
            .filter(|f| f.steps.contains(&Step::KeepMissing))
            .map(|f| f.column.as_str())
            .collect();
        if kept.is_empty() {
            return true;
        }
        self.fail(Error::MissingForNetwork {
            dataset: d.name.clone(),
            columns: kept.into_iter().map(String::from).collect(),
            span,
            dataset_span: d.span,
        });
        false
    }

    /// A warning for features rescaled for a tree model: splits do not care about scale.
    fn scaling_warning(&mut self, c: &ConfigCall, d: &DatasetPlan) {
        let scaled: Vec<&str> = d
            .features
            .iter()
            .filter(|f| {
                f.steps.iter().any(|s| {
                    matches!(
                        s,
                        Step::Standardize
                            | Step::MinMax
                            | Step::RobustScale
                            | Step::Normalize { .. }
                            | Step::Scale { .. }
                    )
                })
            })
            .map(|f| f.column.as_str())
            .collect();
        if scaled.is_empty() || self.network_uses(&d.name) {
            return;
        }
        self.fail(Error::ScaledForTrees {
            dataset: d.name.clone(),
            columns: scaled.into_iter().map(String::from).collect(),
            model: c.name.clone(),
            span: c.span,
            dataset_span: d.span,
        });
    }

    /// Whether a train of a network (not a tree model) reads dataset `name`.
    fn network_uses(&self, name: &str) -> bool {
        self.items.values().any(|(r, _)| {
            let super::ItemRef::Train(t) = r else {
                return false;
            };
            let entry = |k: &str| t.entries.iter().find(|e| e.key.name == k).map(|e| &e.value);
            let reads = entry("data")
                .and_then(|e| e.as_name())
                .is_some_and(|id| id.name == name);
            reads
                && (!t.models.is_empty()
                    || entry("model").is_some_and(|m| self.tree_model(m).is_none()))
        })
    }
}
