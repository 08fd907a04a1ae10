//! Trains: every entry checked and resolved (defaults filled, `--set` and sweep overrides
//! applied), the loss and metrics fitted to the target, and the model instantiated on the
//! dataset's real feature shape with the target's output shape.

use super::config::{ArgOverride, ConfigCall, monitor};
use super::error::{Error, Unknown};
use super::hir::{
    self, EarlyStop, Loss, Metric, Monitor, Optimizer, Schedule, Split, TargetKind, TrainPlan,
};
use super::tables::{CHECKPOINT, EARLY_STOP, ENTRY_KEYS, LOSSES, OPTIMIZERS, SCHEDULES};
use super::value::Val;
use super::{Checker, ItemRef};
use crate::diagnostics::Diagnostic;
use crate::source::Span;
use crate::syntax::ast;
use std::collections::HashMap;

/// One override of a train entry or of an argument inside it (`optimizer.lr`).
#[derive(Clone, Debug)]
pub(crate) struct EntryOverride<'a> {
    pub path: Vec<String>,
    pub value: &'a ast::Expr,
    pub span: Span,
}

impl<'a> Checker<'a> {
    /// Check a train with the given extra overrides (a sweep point); `--set` applies too.
    pub(crate) fn train_plan<'e>(
        &mut self,
        t: &'e ast::Train,
        extra: &[EntryOverride<'e>],
    ) -> Option<TrainPlan>
    where
        'a: 'e,
    {
        if !t.models.is_empty() || !t.objectives.is_empty() {
            return self.multi_train_plan(t, extra);
        }
        let mut entries: HashMap<&str, &'e ast::Entry> = HashMap::new();
        let mut ok = true;
        for e in &t.entries {
            let k = e.key.name.as_str();
            if !ENTRY_KEYS.contains(&k) {
                self.fail(
                    Unknown::new(
                        "mlx::train::unknown_entry",
                        format!("`{k}` is not a train entry"),
                        e.key.span,
                        "unknown entry",
                        k,
                        ENTRY_KEYS.iter().copied(),
                    )
                    .otherwise(format!("train entries are: {}", ENTRY_KEYS.join(", "))),
                );
                ok = false;
                continue;
            }
            if let Some(prev) = entries.get(k) {
                self.fail(Error::EntryTwice {
                    key: k.to_string(),
                    span: e.key.span,
                    first: prev.key.span,
                });
                ok = false;
                continue;
            }
            entries.insert(
                ENTRY_KEYS
                    .iter()
                    .find(|x| **x == k)
                    .copied()
                    .unwrap_or("model"),
                e,
            );
        }
        // Overrides: `--set`, then the sweep point's.
        let mut overrides: Vec<EntryOverride<'e>> = self
            .input
            .overrides
            .iter()
            .filter(|o| {
                o.path
                    .first()
                    .is_some_and(|h| ENTRY_KEYS.contains(&h.as_str()))
            })
            .map(|o| EntryOverride {
                path: o.path.clone(),
                value: &o.value,
                span: o.span,
            })
            .collect();
        overrides.extend(extra.iter().cloned());
        let whole = |key: &str| {
            overrides
                .iter()
                .rev()
                .find(|o| o.path.len() == 1 && o.path[0] == key)
                .map(|o| o.value)
        };
        let args_of = |key: &str| -> Vec<ArgOverride<'e>> {
            overrides
                .iter()
                .filter(|o| o.path.len() == 2 && o.path[0] == key)
                .map(|o| ArgOverride {
                    param: o.path[1].clone(),
                    value: o.value,
                    span: o.span,
                })
                .collect()
        };
        for o in &overrides {
            if o.path.len() > 2
                || (o.path.len() == 2
                    && !matches!(
                        o.path[0].as_str(),
                        "model" | "optimizer" | "loss" | "schedule" | "early_stop" | "checkpoint"
                    ))
            {
                self.error(
                    Diagnostic::error("mlx::set::unknown", format!("`{}` is not a setting that can be overridden", o.path.join(".")))
                        .with_label(o.span, "unknown path")
                        .with_help("override a whole entry (`epochs`) or one argument of it (`optimizer.lr`, `model.hidden`)"),
                );
                ok = false;
            }
        }
        let get = |key: &str| -> Option<&'e ast::Expr> {
            whole(key).or_else(|| entries.get(key).map(|e| &e.value))
        };
        let entry_span = |key: &str| entries.get(key).map_or(t.name.span, |e| e.value.span);
        // A tree ensemble (`gradient_boosting(...)`) needs no loss, optimizer or epochs.
        let tree = get("model").and_then(|e| self.tree_model(e));
        let required: &[&str] = if tree.is_some() {
            &["model", "data"]
        } else {
            &["model", "data", "loss", "optimizer", "epochs"]
        };
        if tree.is_some() {
            let keys = ["optimizer", "epochs", "schedule", "clip_grad", "shards"];
            let mut set: Vec<(&str, Span)> = keys
                .into_iter()
                .filter(|k| get(k).is_some())
                .map(|k| (k, entry_span(k)))
                .collect();
            // `--set optimizer.lr=...` or a sweep over it would change nothing: an error too.
            set.extend(
                overrides
                    .iter()
                    .filter(|o| o.path.len() == 2)
                    .filter_map(|o| keys.iter().find(|k| **k == o.path[0]).map(|k| (*k, o.span))),
            );
            ok &= self.tree_entries(&set);
        }
        for &key in required {
            if get(key).is_none() {
                let example = match key {
                    "model" => "model = my_model",
                    "data" => "data = my_dataset",
                    "loss" => "loss = cross_entropy",
                    "optimizer" => "optimizer = adam(lr: 1e-3)",
                    _ => "epochs = 10",
                };
                self.error(
                    Diagnostic::error(
                        "mlx::train::missing_entry",
                        format!("train `{}` has no `{key}`", t.name.name),
                    )
                    .with_label(t.name.span, format!("`{key}` is required"))
                    .with_help(format!("add `{example}`")),
                );
                ok = false;
            }
        }
        let mut resolved: Vec<(String, String)> = Vec::new();

        // Data.
        let dataset = get("data").and_then(|e| self.dataset_ref(e));
        let plan_idx = dataset.as_ref().and_then(|n| self.dataset_plan(n));
        let data = plan_idx.map(|i| self.program.datasets[i].clone());
        if let Some(n) = &dataset {
            resolved.push(("data".into(), n.clone()));
        }

        // Scalars.
        let epochs = match tree {
            Some(_) => Some(0),
            None => get("epochs").and_then(|e| self.positive_int(e, "epochs", 1)),
        };
        let batch = match get("batch") {
            Some(e) => self.positive_int(e, "batch", 1),
            None => Some(32),
        };
        let seed = match get("seed") {
            Some(e) => self.positive_int(e, "seed", 0),
            None => Some(0),
        };
        let clip_grad = match get("clip_grad") {
            Some(e) => match self.scalar_expr(e).as_f64() {
                Some(v) if v > 0.0 => Some(Some(v)),
                Some(v) => {
                    self.error(
                        Diagnostic::error(
                            "mlx::value::range",
                            format!("`clip_grad` must be greater than 0, but is {v}"),
                        )
                        .with_label(e.span, "out of range"),
                    );
                    None
                }
                None => {
                    self.error(
                        Diagnostic::error(
                            "mlx::type::mismatch",
                            "`clip_grad` must be a number: the largest allowed gradient norm",
                        )
                        .with_label(e.span, "not a number"),
                    );
                    None
                }
            },
            None => Some(None),
        };

        let shards = match get("shards").filter(|_| tree.is_none()) {
            Some(e) => self
                .positive_int(e, "shards", 1)
                .map(|n| (Some(n as usize), e.span)),
            None => Some((None, t.name.span)),
        };

        // Configuration calls.
        let loss_c =
            get("loss").and_then(|e| self.config_call(e, LOSSES, "loss", &args_of("loss")));
        let opt_c = get("optimizer")
            .filter(|_| tree.is_none())
            .and_then(|e| self.config_call(e, OPTIMIZERS, "optimizer", &args_of("optimizer")));
        let sched_c = match get("schedule").filter(|_| tree.is_none()) {
            Some(e) => self
                .config_call(e, SCHEDULES, "schedule", &args_of("schedule"))
                .map(Some),
            None => Some(None),
        };
        let stop_c = match get("early_stop") {
            Some(e) => self
                .config_call(e, EARLY_STOP, "early stopping rule", &args_of("early_stop"))
                .map(Some),
            None => Some(None),
        };
        let ckpt_c = match get("checkpoint") {
            Some(e) => self
                .config_call(e, CHECKPOINT, "checkpoint rule", &args_of("checkpoint"))
                .map(Some),
            None => Some(None),
        };
        let metrics = match get("metrics") {
            Some(e) => self.metrics(e),
            None => Some(Vec::new()),
        };

        let loss = loss_c.as_ref().map(|c| match c.name.as_str() {
            "cross_entropy" => Loss::CrossEntropy {
                label_smoothing: c.f("label_smoothing"),
            },
            "binary_cross_entropy" => Loss::BinaryCrossEntropy,
            "mse" => Loss::Mse,
            "mae" => Loss::Mae,
            _ => Loss::Huber {
                delta: c.f("delta"),
            },
        });
        let optimizer = match tree {
            // Unused by trees; kept so a plan always has one.
            Some(_) => Some(Optimizer::Sgd {
                lr: 0.0,
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            }),
            None => opt_c.as_ref().and_then(|c| self.optimizer(c)),
        };
        let schedule = sched_c
            .as_ref()
            .map(|c| c.as_ref().map_or(Schedule::Constant, |c| self.schedule(c)));
        let early_stop = stop_c.as_ref().map(|c| {
            c.as_ref().map(|c| EarlyStop {
                monitor: monitor_of(c),
                patience: c.i("patience") as usize,
                min_delta: c.f("min_delta"),
            })
        });
        for (k, c) in [("loss", &loss_c), ("optimizer", &opt_c)] {
            if let Some(c) = c {
                resolved.push((k.into(), c.text()));
            }
        }
        if let Some(Some(c)) = &sched_c {
            resolved.push(("schedule".into(), c.text()));
        }
        if let Some(Some(c)) = &stop_c {
            resolved.push(("early_stop".into(), c.text()));
        }
        // Recorded so `mlx resume` checkpoints as the original run did.
        if let Some(Some(c)) = &ckpt_c {
            resolved.push(("checkpoint".into(), c.text()));
        }

        // Fit loss, metrics and monitors to the target.
        if let Some(d) = &data
            && d.target.kind == TargetKind::Absent
        {
            self.error(
                Diagnostic::error(
                    "mlx::data::target",
                    format!("dataset `{}` has no `target`, so `model =` with a built-in loss has nothing to learn", d.name),
                )
                .with_label(entry_span("data"), "a dataset without a target")
                .with_help("add `target COLUMN: Class[K]` or `target COLUMN: Float` to the dataset, or write the loss as an objective: `models { m = ... }` and `objective fit { updates = m  loss = mse(m(image), image)  optimizer = adam(lr: 1e-3) }`"),
            );
            return None;
        }
        let loss = match (tree, &data) {
            (Some(_), Some(d)) => {
                let written = match (&loss_c, loss) {
                    (Some(c), Some(l)) => Some((l, c.span)),
                    _ => None,
                };
                let l = self.tree_loss(written, &d.target.kind);
                ok &= l.is_some();
                l
            }
            _ => loss,
        };
        if tree.is_none()
            && let (Some(d), Some(loss)) = (&data, &loss)
            && !self.loss_fits(loss, &d.target.kind, entry_span("loss"), &d.name)
        {
            ok = false;
        }
        if tree.is_none()
            && let Some(d) = &data
        {
            ok &= self.missing_for_network(d, entry_span("data"));
        }
        if let (Some(d), Some(ms)) = (&data, &metrics) {
            for (m, s) in ms {
                if m.for_classification() != d.target.kind.classes().is_some() {
                    let (task, other) = if d.target.kind.classes().is_some() {
                        (
                            "classification",
                            "accuracy, precision, recall, f1, macro_f1, confusion, roc_auc",
                        )
                    } else {
                        ("regression", "mse, rmse, mae, r2")
                    };
                    self.error(
                        Diagnostic::error(
                            "mlx::train::metric",
                            format!(
                                "`{}` does not measure {task}: dataset `{}` has a {} target",
                                m.name(),
                                d.name,
                                if task == "regression" {
                                    "Float"
                                } else {
                                    "Class"
                                }
                            ),
                        )
                        .with_label(*s, "wrong kind of metric")
                        .with_help(format!("{task} metrics are: {other}")),
                    );
                    ok = false;
                }
            }
        }
        let has_val = data.as_ref().is_some_and(|d| {
            !matches!(d.split, Split::None)
                && !matches!(d.split, Split::Random { val, .. } if val == 0.0)
                || d.sources.iter().any(|s| s.role == hir::SourceRole::Val)
        });
        let metric_list: Vec<Metric> = metrics
            .as_ref()
            .map(|m| m.iter().map(|(x, _)| *x).collect())
            .unwrap_or_default();
        if let Some(Some(c)) = &stop_c {
            ok &= self.monitor_fits(
                &monitor_of(c),
                c.span_of("monitor"),
                c.span,
                has_val,
                &metric_list,
                data.is_some(),
            );
        }
        if let Some(Some(c)) = &sched_c
            && c.name == "reduce_on_plateau"
        {
            ok &= self.monitor_fits(
                &monitor_of(c),
                c.span_of("monitor"),
                c.span,
                has_val,
                &metric_list,
                data.is_some(),
            );
        }
        if let (Some(Some(c)), Some(e)) = (&stop_c, epochs)
            && tree.is_none()
            && c.i("patience") >= e
        {
            self.error(
                Diagnostic::warning(
                    "mlx::train::patience",
                    format!(
                        "patience {} is not below epochs {e}: early stopping can never trigger",
                        c.i("patience")
                    ),
                )
                .with_label(c.span_of("patience"), "never reached"),
            );
        }
        if let (Some(Schedule::Cosine { warmup, .. }), Some(e)) = (&schedule, epochs)
            && *warmup as i64 >= e
        {
            self.error(
                Diagnostic::error(
                    "mlx::value::range",
                    format!("a warmup of {warmup} epochs leaves no room in {e} epochs"),
                )
                .with_label(entry_span("schedule"), "warmup too long"),
            );
            ok = false;
        }

        // The model, instantiated on the data (a tree model: its plan).
        let model_e = get("model");
        let mut tree_plan = None;
        let instance = match (model_e, &data, &loss) {
            // Without its data a tree model has nothing more to check.
            (Some(_), None, _) if tree.is_some() => None,
            (Some(me), Some(d), _) if tree.is_some() => self
                .tree_plan(me, &args_of("model"), d, entry_span("data"))
                .map(|(p, text)| {
                    tree_plan = Some(p);
                    (usize::MAX, text)
                }),
            (Some(me), Some(d), Some(loss)) => self.train_model(t, me, &args_of("model"), d, loss),
            (Some(me), _, _) => {
                // Without data, still resolve the model name for its own errors.
                let _ = self.model_value(me, &args_of("model"));
                None
            }
            _ => None,
        };
        if let Some((_, text)) = &instance {
            resolved.insert(0, ("model".into(), text.clone()));
        }
        // A tree train checkpoints ten times by default (each checkpoint is the whole
        // ensemble's tensors, grown or not).
        let checkpoint_every = ckpt_c.as_ref().map(|c| {
            c.as_ref().map_or_else(
                || tree_plan.as_ref().map_or(1, |p| (p.trees / 10).max(1)),
                |c| c.i("epochs") as usize,
            )
        });
        // A tree model predicts in batches whose paths through every tree (`[trees, leaves,
        // rows]`) stay near 16 M values, unless `batch` says otherwise.
        let batch = match (&tree_plan, get("batch")) {
            (Some(p), None) => Some(super::trees::default_batch(p) as i64),
            _ => batch,
        };
        // A tree model's rounds stand in for epochs (progress, early stopping's patience).
        let epochs = match &tree_plan {
            Some(p) => Some(p.trees as i64),
            None => epochs,
        };
        if let (Some(Some(c)), Some(p)) = (&stop_c, &tree_plan)
            && p.kind == hir::TreeKind::Forest
        {
            self.error(
                Diagnostic::error(
                    super::trees::CODE,
                    "a random forest has no rounds for early stopping to cut",
                )
                .with_label(c.span, "early stopping")
                .with_help("remove `early_stop`: a forest's trees are grown independently and averaged; `gradient_boosting` stops early in rounds"),
            );
            return None;
        }
        if let (Some(Some(c)), Some(p)) = (&stop_c, &tree_plan)
            && c.i("patience") as usize >= p.trees
        {
            self.error(
                Diagnostic::warning(
                    "mlx::train::patience",
                    format!(
                        "patience {} is not below the {} rounds: early stopping can never trigger",
                        c.i("patience"),
                        p.trees
                    ),
                )
                .with_label(c.span_of("patience"), "never reached"),
            );
        }
        for (k, v) in [
            (
                "epochs",
                epochs.filter(|_| tree.is_none()).map(|x| x.to_string()),
            ),
            ("batch", batch.map(|x| x.to_string())),
            ("seed", seed.map(|x| x.to_string())),
        ] {
            if let Some(v) = v {
                resolved.push((k.into(), v));
            }
        }
        if let Some(ms) = &metrics {
            resolved.push((
                "metrics".into(),
                format!(
                    "[{}]",
                    ms.iter()
                        .map(|(m, _)| m.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let Some(Some(c)) = clip_grad {
            resolved.push(("clip_grad".into(), crate::syntax::print::float(c)));
        }
        if let Some((Some(n), _)) = shards {
            resolved.push(("shards".into(), n.to_string()));
        }
        if !ok {
            return None;
        }
        let ((inst, model_call), d) = (instance?, data?);
        let (optimizer, batch) = (optimizer?, batch? as usize);
        let (shards, shards_span) = shards?;
        if let Some(n) = shards
            && n > batch
        {
            self.error(
                Diagnostic::error(
                    "mlx::value::range",
                    format!("`shards` ({n}) is larger than `batch` ({batch}): a shard is a part of a batch"),
                )
                .with_label(shards_span, "more shards than rows in a batch")
                .with_help(format!("use at most {batch} shards, or a larger batch")),
            );
            return None;
        }
        if shards.is_some() && d.stream.is_some() {
            self.error(
                Diagnostic::error(
                    "mlx::data::stream",
                    format!(
                        "`shards` spreads batches of rows held in memory, but dataset `{}` is streamed",
                        d.name
                    ),
                )
                .with_label(shards_span, "sharded")
                .with_secondary(d.span, "streamed dataset")
                .with_help("remove `shards`, or `stream = true` from the dataset"),
            );
            return None;
        }
        let memory = match &tree_plan {
            Some(p) => super::memory::trees(p, d.feature_shape.iter().product(), batch),
            None => super::memory::estimate(&self.program, inst, batch, &optimizer),
        };
        if !self.memory_fits(&t.name.name, &memory, batch, entry_span("model")) {
            return None;
        }
        Some(TrainPlan {
            name: t.name.name.clone(),
            span: t.span,
            model_call,
            instance: inst,
            dataset: d.name.clone(),
            loss: loss?,
            optimizer,
            schedule: schedule?,
            epochs: epochs? as usize,
            batch,
            seed: seed? as u64,
            metrics: metric_list,
            early_stop: early_stop?,
            clip_grad: clip_grad?,
            shards,
            checkpoint_every: checkpoint_every?,
            resolved,
            memory,
            blocks: String::new(),
            multi: None,
            trees: tree_plan,
        })
    }

    pub(super) fn dataset_ref(&mut self, e: &ast::Expr) -> Option<String> {
        let Some(id) = e.as_name() else {
            self.error(
                Diagnostic::error("mlx::type::mismatch", "`data` names a dataset")
                    .with_label(e.span, "not a dataset name"),
            );
            return None;
        };
        match self.items.get(&id.name).copied() {
            Some((ItemRef::Dataset(_), _)) => Some(id.name.clone()),
            Some((other, _)) => {
                self.error(
                    Diagnostic::error(
                        "mlx::name::kind",
                        format!("`{}` is a {}, not a dataset", id.name, other.kind()),
                    )
                    .with_label(id.span, "not a dataset")
                    .with_secondary(other.name_span(), "declared here"),
                );
                None
            }
            None => {
                let cands = self.item_names("dataset");
                self.unknown_name("dataset", id, &cands, None);
                None
            }
        }
    }

    pub(super) fn positive_int(&mut self, e: &ast::Expr, key: &str, min: i64) -> Option<i64> {
        match self.scalar_expr(e) {
            Val::Int(d) => match d.as_const() {
                Some(n) if n >= min => Some(n),
                Some(n) => {
                    let what = if min == 0 {
                        "at least 0"
                    } else {
                        "a positive integer"
                    };
                    self.error(
                        Diagnostic::error(
                            "mlx::value::range",
                            format!("`{key}` must be {what}, but is {n}"),
                        )
                        .with_label(e.span, "out of range"),
                    );
                    None
                }
                None => None,
            },
            Val::Poison => None,
            // A whole number past the integers (the parser keeps it as a float).
            Val::Float(Some(x)) if x.fract() == 0.0 && x.abs() >= 9.223_372_036_854_775e18 => {
                self.error(
                    Diagnostic::error(
                        "mlx::value::range",
                        format!(
                            "`{key}` is too large: a whole number here is at most {}",
                            i64::MAX
                        ),
                    )
                    .with_label(e.span, "too large"),
                );
                None
            }
            v => {
                let mut d = Diagnostic::error(
                    "mlx::type::mismatch",
                    format!("`{key}` must be a whole number, found {}", v.describe()),
                )
                .with_label(e.span, "not an integer");
                if matches!(v, Val::Float(_)) {
                    d = d.with_help("write it without a decimal point");
                }
                self.error(d);
                None
            }
        }
    }

    fn metrics(&mut self, e: &ast::Expr) -> Option<Vec<(Metric, Span)>> {
        let ast::ExprKind::List(items) = &e.kind else {
            self.error(
                Diagnostic::error(
                    "mlx::type::mismatch",
                    "`metrics` is a list such as `[accuracy, macro_f1]`",
                )
                .with_label(e.span, "not a list"),
            );
            return None;
        };
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let mut out: Vec<(Metric, Span)> = Vec::new();
        let mut ok = true;
        for it in items {
            let Some(id) = it.as_name() else {
                self.error(
                    Diagnostic::error(
                        "mlx::type::mismatch",
                        "a metric is a name such as `accuracy`",
                    )
                    .with_label(it.span, "not a metric"),
                );
                ok = false;
                continue;
            };
            match Metric::ALL.iter().find(|m| m.name() == id.name) {
                Some(m) if out.iter().any(|(x, _)| x == m) => {
                    self.error(
                        Diagnostic::warning(
                            "mlx::train::metric",
                            format!("`{}` is listed twice", id.name),
                        )
                        .with_label(id.span, "repeated"),
                    );
                }
                Some(m) => out.push((*m, id.span)),
                None => {
                    let mut d = Diagnostic::error(
                        "mlx::name::unknown",
                        format!("unknown metric `{}`", id.name),
                    )
                    .with_label(id.span, "not a metric");
                    d = d.suggest_or(
                        &id.name,
                        names.iter().copied(),
                        format!("the metrics are: {}", names.join(", ")),
                    );
                    self.error(d);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    pub(super) fn optimizer(&mut self, c: &ConfigCall) -> Option<Optimizer> {
        Some(match c.name.as_str() {
            "sgd" => {
                if c.b("nesterov") && c.f("momentum") == 0.0 {
                    self.error(
                        Diagnostic::error(
                            "mlx::value::range",
                            "Nesterov momentum needs `momentum` above 0",
                        )
                        .with_label(c.span_of("nesterov"), "no momentum to look ahead with")
                        .with_help("add `momentum: 0.9`"),
                    );
                    return None;
                }
                Optimizer::Sgd {
                    lr: c.f("lr"),
                    momentum: c.f("momentum"),
                    nesterov: c.b("nesterov"),
                    weight_decay: c.f("weight_decay"),
                }
            }
            "adam" => Optimizer::Adam {
                lr: c.f("lr"),
                beta1: c.f("beta1"),
                beta2: c.f("beta2"),
                eps: c.f("eps"),
                weight_decay: c.f("weight_decay"),
            },
            "adamw" => Optimizer::AdamW {
                lr: c.f("lr"),
                beta1: c.f("beta1"),
                beta2: c.f("beta2"),
                eps: c.f("eps"),
                weight_decay: c.f("weight_decay"),
            },
            _ => Optimizer::RmsProp {
                lr: c.f("lr"),
                alpha: c.f("alpha"),
                eps: c.f("eps"),
                momentum: c.f("momentum"),
                weight_decay: c.f("weight_decay"),
            },
        })
    }

    pub(super) fn schedule(&mut self, c: &ConfigCall) -> Schedule {
        match c.name.as_str() {
            "step" => Schedule::Step {
                every: c.i("every") as usize,
                gamma: c.f("gamma"),
            },
            "exponential" => Schedule::Exponential {
                gamma: c.f("gamma"),
            },
            "cosine" => Schedule::Cosine {
                warmup: c.i("warmup") as usize,
                min_lr: c.f("min_lr"),
            },
            "reduce_on_plateau" => Schedule::ReduceOnPlateau {
                monitor: monitor_of(c),
                factor: c.f("factor"),
                patience: c.i("patience") as usize,
                min_lr: c.f("min_lr"),
            },
            _ => Schedule::Constant,
        }
    }

    fn loss_fits(&mut self, loss: &Loss, target: &TargetKind, span: Span, dataset: &str) -> bool {
        let problem = match (loss, target) {
            (Loss::CrossEntropy { .. }, TargetKind::Regression) => Some((
                "`cross_entropy` needs class labels, but the target is a Float".to_string(),
                "for a Float target use `mse`, `mae` or `huber(delta)`".to_string(),
            )),
            (Loss::Mse | Loss::Mae | Loss::Huber { .. }, TargetKind::Class { .. }) => Some((
                format!(
                    "`{}` measures distance to a number, but the target is a class label",
                    loss_name(loss)
                ),
                "for a Class target use `cross_entropy` (or `binary_cross_entropy` with 2 classes)"
                    .to_string(),
            )),
            (Loss::BinaryCrossEntropy, TargetKind::Class { classes, .. }) if *classes != 2 => {
                Some((
                    format!(
                        "`binary_cross_entropy` needs exactly 2 classes, but the target has {classes}"
                    ),
                    "use `cross_entropy` for more than 2 classes".to_string(),
                ))
            }
            _ => None,
        };
        if let Some((msg, help)) = problem {
            self.error(
                Diagnostic::error("mlx::train::loss", msg)
                    .with_label(span, format!("does not fit the target of `{dataset}`"))
                    .with_help(help),
            );
            return false;
        }
        true
    }

    fn monitor_fits(
        &mut self,
        m: &Monitor,
        span: Span,
        call: Span,
        has_val: bool,
        metrics: &[Metric],
        have_data: bool,
    ) -> bool {
        if m.split == "val" && !has_val && have_data {
            self.error(
                Diagnostic::error("mlx::train::monitor", format!("`{}` is watched, but the dataset has no validation split", m.name()))
                    .with_label(if span == call { call } else { span }, "nothing to monitor")
                    .with_help("give the dataset a validation split (`split = random(train: 0.8, val: 0.2)` or `holdout(val: 0.1)`), or monitor `train.loss`"),
            );
            return false;
        }
        if let Some(metric) = m.metric
            && !metrics.contains(&metric)
        {
            self.error(
                Diagnostic::error(
                    "mlx::train::monitor",
                    format!(
                        "`{}` is watched, but `{}` is not in `metrics`",
                        m.name(),
                        metric.name()
                    ),
                )
                .with_label(span, "not computed")
                .with_help(format!("add `{}` to `metrics`", metric.name())),
            );
            return false;
        }
        true
    }
}

fn monitor_of(c: &ConfigCall) -> Monitor {
    let path: Vec<String> = match c.val("monitor") {
        Some(Val::Symbol(p)) => p.clone(),
        _ => vec!["val".into(), "loss".into()],
    };
    monitor(&path).unwrap_or(Monitor {
        split: "val".into(),
        metric: None,
        objective: None,
    })
}

fn loss_name(l: &Loss) -> &'static str {
    match l {
        Loss::CrossEntropy { .. } => "cross_entropy",
        Loss::BinaryCrossEntropy => "binary_cross_entropy",
        Loss::Mse => "mse",
        Loss::Mae => "mae",
        Loss::Huber { .. } => "huber",
    }
}
