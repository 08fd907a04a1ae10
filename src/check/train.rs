//! Trains: every entry checked and resolved (defaults filled, `--set` and sweep overrides
//! applied), the loss and metrics fitted to the target, and the model instantiated on the
//! dataset's real feature shape with the target's output shape.

use super::config::{ArgOverride, ConfigCall, Sig, monitor};
use super::error::train::Error;
use super::error::{self, Unknown};
use super::hir::{
    self, DatasetPlan, EarlyStop, Loss, Metric, Monitor, Optimizer, Schedule, Split, TargetKind,
    TrainPlan, TreePlan,
};
use super::tables::{CHECKPOINT, EARLY_STOP, ENTRY_KEYS, LOSSES, OPTIMIZERS, SCHEDULES};
use super::value::Val;
use super::{Checker, ItemRef};
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

/// A train's entries as written and the `--set` and sweep overrides over them.
struct Entries<'e> {
    written: HashMap<&'static str, &'e ast::Entry>,
    overrides: Vec<EntryOverride<'e>>,
    /// The train's name: where an entry that is not written is reported.
    name_span: Span,
    /// Whether `model` names a tree model (which takes no loss, optimizer or epochs).
    tree: bool,
}

impl<'e> Entries<'e> {
    /// Entry `key`: the last override of the whole entry, else as written.
    fn get(&self, key: &str) -> Option<&'e ast::Expr> {
        self.overrides
            .iter()
            .rev()
            .find(|o| o.path.len() == 1 && o.path[0] == key)
            .map(|o| o.value)
            .or_else(|| self.written.get(key).map(|e| &e.value))
    }

    /// The overrides of arguments of entry `key` (`optimizer.lr`).
    fn args_of(&self, key: &str) -> Vec<ArgOverride<'e>> {
        self.overrides
            .iter()
            .filter(|o| o.path.len() == 2 && o.path[0] == key)
            .map(|o| ArgOverride {
                param: o.path[1].clone(),
                value: o.value,
                span: o.span,
            })
            .collect()
    }

    /// Where entry `key` is written, else the train's name.
    fn span(&self, key: &str) -> Span {
        self.written
            .get(key)
            .map_or(self.name_span, |e| e.value.span)
    }
}

/// A train's scalar entries with their defaults (`None`: reported as wrong).
struct Scalars {
    epochs: Option<i64>,
    batch: Option<i64>,
    seed: Option<i64>,
    clip_grad: Option<Option<f64>>,
    /// The number of shards if given, and where (else the train's name).
    shards: Option<(Option<usize>, Span)>,
}

impl Scalars {
    /// Record the scalars (and metrics) as resolved, in the order `mlx` shows them.
    fn record(
        &self,
        resolved: &mut Vec<(String, String)>,
        tree: bool,
        metrics: Option<&[(Metric, Span)]>,
    ) {
        for (k, v) in [
            (
                "epochs",
                self.epochs.filter(|_| !tree).map(|x| x.to_string()),
            ),
            ("batch", self.batch.map(|x| x.to_string())),
            ("seed", self.seed.map(|x| x.to_string())),
        ] {
            if let Some(v) = v {
                resolved.push((k.into(), v));
            }
        }
        if let Some(ms) = metrics {
            let names: Vec<&str> = ms.iter().map(|(m, _)| m.name()).collect();
            resolved.push(("metrics".into(), format!("[{}]", names.join(", "))));
        }
        if let Some(Some(c)) = self.clip_grad {
            resolved.push(("clip_grad".into(), crate::syntax::print::float(c)));
        }
        if let Some((Some(n), _)) = self.shards {
            resolved.push(("shards".into(), n.to_string()));
        }
    }
}

/// A train's configuration calls (`None`: reported as wrong, or for `loss` and `optimizer` not
/// given; `Some(None)`: not given).
struct Calls {
    loss: Option<ConfigCall>,
    optimizer: Option<ConfigCall>,
    schedule: Option<Option<ConfigCall>>,
    early_stop: Option<Option<ConfigCall>>,
    checkpoint: Option<Option<ConfigCall>>,
}

impl Calls {
    /// The early stopping rule `early_stop` gives.
    fn early_stop_rule(&self) -> Option<Option<EarlyStop>> {
        self.early_stop.as_ref().map(|c| {
            c.as_ref().map(|c| EarlyStop {
                monitor: monitor_of(c),
                patience: c.i("patience") as usize,
                min_delta: c.f("min_delta"),
            })
        })
    }

    /// Record the calls as resolved (`checkpoint` so `mlx resume` checkpoints as the original
    /// run did).
    fn record(&self, resolved: &mut Vec<(String, String)>) {
        for (k, c) in [("loss", &self.loss), ("optimizer", &self.optimizer)] {
            if let Some(c) = c {
                resolved.push((k.into(), c.text()));
            }
        }
        for (k, c) in [
            ("schedule", &self.schedule),
            ("early_stop", &self.early_stop),
            ("checkpoint", &self.checkpoint),
        ] {
            if let Some(Some(c)) = c {
                resolved.push((k.into(), c.text()));
            }
        }
    }
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
        let (en, mut ok) = self.train_entries(t, extra);
        let mut resolved: Vec<(String, String)> = Vec::new();
        let data = self.train_data(&en, &mut resolved);
        let mut scalars = self.train_scalars(&en);
        let calls = self.config_calls(&en);
        let metrics = match en.get("metrics") {
            Some(e) => self.metrics(e),
            None => Some(Vec::new()),
        };
        let loss = calls.loss.as_ref().map(loss_of);
        let optimizer = self.train_optimizer(&en, &calls);
        let schedule = (calls.schedule.as_ref())
            .map(|c| c.as_ref().map_or(Schedule::Constant, |c| self.schedule(c)));
        let early_stop = calls.early_stop_rule();
        calls.record(&mut resolved);

        // Fit loss, metrics and monitors to the target.
        let (loss, fits) =
            self.fit_to_target(&en, data.as_ref(), &calls, loss, metrics.as_deref())?;
        ok &= fits;
        let metric_list: Vec<Metric> = (metrics.iter().flatten()).map(|(x, _)| *x).collect();
        ok &= self.monitors_fit(&calls, data.as_ref(), &metric_list);
        ok &= self.epochs_fit(&en, &calls, scalars.epochs, schedule.as_ref());

        // The model, instantiated on the data (a tree model: its plan).
        let (instance, tree_plan) = self.train_instance(t, &en, data.as_ref(), loss.as_ref());
        if let Some((_, text)) = &instance {
            resolved.insert(0, ("model".into(), text.clone()));
        }
        // A tree train checkpoints ten times by default (each checkpoint is the whole
        // ensemble's tensors, grown or not).
        let checkpoint_every = calls.checkpoint.as_ref().map(|c| {
            c.as_ref().map_or_else(
                || tree_plan.as_ref().map_or(1, |p| (p.trees / 10).max(1)),
                |c| c.i("epochs") as usize,
            )
        });
        if let Some(p) = &tree_plan {
            // A tree model predicts in batches whose paths through every tree (`[trees,
            // leaves, rows]`) stay near 16 M values, unless `batch` says otherwise.
            if en.get("batch").is_none() {
                scalars.batch = Some(super::trees::default_batch(p) as i64);
            }
            // A tree model's rounds stand in for epochs (progress, early stopping's patience).
            scalars.epochs = Some(p.trees as i64);
            if !self.rounds_fit(&calls, p) {
                return None;
            }
        }
        scalars.record(&mut resolved, en.tree, metrics.as_deref());
        if !ok {
            return None;
        }
        let ((inst, model_call), d) = (instance?, data?);
        let (optimizer, batch) = (optimizer?, scalars.batch? as usize);
        let (shards, shards_span) = scalars.shards?;
        if !self.shards_fit(shards, shards_span, batch, &d) {
            return None;
        }
        let memory = match &tree_plan {
            Some(p) => super::memory::trees(p, d.feature_shape.iter().product(), batch),
            None => super::memory::estimate(&self.program, inst, batch, &optimizer),
        };
        if !self.memory_fits(&t.name.name, &memory, batch, en.span("model")) {
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
            epochs: scalars.epochs? as usize,
            batch,
            seed: scalars.seed? as u64,
            metrics: metric_list,
            early_stop: early_stop?,
            clip_grad: scalars.clip_grad?,
            shards,
            checkpoint_every: checkpoint_every?,
            resolved,
            memory,
            blocks: String::new(),
            multi: None,
            trees: tree_plan,
        })
    }

    /// A train's entries and overrides, and whether they are all well: known keys, each given
    /// once, the required ones given and none a tree model has no use for.
    fn train_entries<'e>(
        &mut self,
        t: &'e ast::Train,
        extra: &[EntryOverride<'e>],
    ) -> (Entries<'e>, bool)
    where
        'a: 'e,
    {
        let (written, mut ok) = self.written_entries(t);
        let (overrides, paths_ok) = self.entry_overrides(extra);
        ok &= paths_ok;
        let mut en = Entries {
            written,
            overrides,
            name_span: t.name.span,
            tree: false,
        };
        // A tree ensemble (`gradient_boosting(...)`) needs no loss, optimizer or epochs.
        en.tree = en.get("model").and_then(|e| self.tree_model(e)).is_some();
        ok &= self.required_entries(t, &en);
        (en, ok)
    }

    /// The dataset `data` names, planned (and recorded as resolved).
    fn train_data(
        &mut self,
        en: &Entries<'_>,
        resolved: &mut Vec<(String, String)>,
    ) -> Option<DatasetPlan> {
        let dataset = en.get("data").and_then(|e| self.dataset_ref(e));
        let plan_idx = dataset.as_ref().and_then(|n| self.dataset_plan(n));
        let data = plan_idx.map(|i| self.program.datasets[i].clone());
        if let Some(n) = dataset {
            resolved.push(("data".into(), n));
        }
        data
    }

    /// The optimizer `optimizer` names (a tree model: a stand-in, unused, so a plan always has
    /// one).
    fn train_optimizer(&mut self, en: &Entries<'_>, calls: &Calls) -> Option<Optimizer> {
        if en.tree {
            return Some(Optimizer::Sgd {
                lr: 0.0,
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            });
        }
        calls.optimizer.as_ref().and_then(|c| self.optimizer(c))
    }

    /// A train's entries by key: an unknown key or one given twice is reported (and `false`).
    fn written_entries<'e>(
        &mut self,
        t: &'e ast::Train,
    ) -> (HashMap<&'static str, &'e ast::Entry>, bool) {
        let mut entries: HashMap<&'static str, &'e ast::Entry> = HashMap::new();
        let mut ok = true;
        for e in &t.entries {
            let k = e.key.name.as_str();
            let Some(key) = ENTRY_KEYS.iter().find(|x| **x == k).copied() else {
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
            };
            if let Some(prev) = entries.get(key) {
                self.fail(error::Error::EntryTwice {
                    key: k.to_string(),
                    span: e.key.span,
                    first: prev.key.span,
                });
                ok = false;
                continue;
            }
            entries.insert(key, e);
        }
        (entries, ok)
    }

    /// The overrides of train entries: `--set`, then the sweep point's. A path that is not a
    /// whole entry or one argument of one is reported (and `false`).
    fn entry_overrides<'e>(&mut self, extra: &[EntryOverride<'e>]) -> (Vec<EntryOverride<'e>>, bool)
    where
        'a: 'e,
    {
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
        let mut ok = true;
        for o in &overrides {
            if o.path.len() > 2
                || (o.path.len() == 2
                    && !matches!(
                        o.path[0].as_str(),
                        "model" | "optimizer" | "loss" | "schedule" | "early_stop" | "checkpoint"
                    ))
            {
                let (path, span) = (o.path.join("."), o.span);
                self.fail(Error::OverridePath { path, span });
                ok = false;
            }
        }
        (overrides, ok)
    }

    /// The entries a train must have, and none a tree model has no use for. Returns whether
    /// all is well.
    fn required_entries(&mut self, t: &ast::Train, en: &Entries<'_>) -> bool {
        let mut ok = true;
        if en.tree {
            let keys = ["optimizer", "epochs", "schedule", "clip_grad", "shards"];
            let mut set: Vec<(&str, Span)> = keys
                .into_iter()
                .filter(|k| en.get(k).is_some())
                .map(|k| (k, en.span(k)))
                .collect();
            // `--set optimizer.lr=...` or a sweep over it would change nothing: an error too.
            set.extend(
                (en.overrides.iter())
                    .filter(|o| o.path.len() == 2)
                    .filter_map(|o| keys.iter().find(|k| **k == o.path[0]).map(|k| (*k, o.span))),
            );
            ok &= self.tree_entries(&set);
        }
        let required: &[&'static str] = if en.tree {
            &["model", "data"]
        } else {
            &["model", "data", "loss", "optimizer", "epochs"]
        };
        for &key in required {
            if en.get(key).is_none() {
                self.fail(Error::MissingEntry {
                    train: t.name.name.clone(),
                    key,
                    span: t.name.span,
                });
                ok = false;
            }
        }
        ok
    }

    /// The scalar entries (`epochs`, `batch`, `seed`, `clip_grad`, `shards`) checked, with
    /// their defaults.
    fn train_scalars(&mut self, en: &Entries<'_>) -> Scalars {
        let epochs = if en.tree {
            Some(0)
        } else {
            (en.get("epochs")).and_then(|e| self.positive_int(e, "epochs", 1))
        };
        let batch = match en.get("batch") {
            Some(e) => self.positive_int(e, "batch", 1),
            None => Some(32),
        };
        let seed = match en.get("seed") {
            Some(e) => self.positive_int(e, "seed", 0),
            None => Some(0),
        };
        let clip_grad = match en.get("clip_grad") {
            Some(e) => self.clip_grad(e).map(Some),
            None => Some(None),
        };
        let shards = match en.get("shards").filter(|_| !en.tree) {
            Some(e) => self
                .positive_int(e, "shards", 1)
                .map(|n| (Some(n as usize), e.span)),
            None => Some((None, en.name_span)),
        };
        Scalars {
            epochs,
            batch,
            seed,
            clip_grad,
            shards,
        }
    }

    /// `clip_grad`: a number above 0.
    fn clip_grad(&mut self, e: &ast::Expr) -> Option<f64> {
        match self.scalar_expr(e).as_f64() {
            Some(v) if v > 0.0 => Some(v),
            Some(value) => {
                self.fail(Error::ClipGradRange {
                    value,
                    span: e.span,
                });
                None
            }
            None => {
                self.fail(Error::ClipGradNotNumber { span: e.span });
                None
            }
        }
    }

    /// The configuration calls of the entries (a tree model's optimizer and schedule are not
    /// read: they were reported).
    fn config_calls(&mut self, en: &Entries<'_>) -> Calls {
        let loss =
            (en.get("loss")).and_then(|e| self.config_call(e, LOSSES, "loss", &en.args_of("loss")));
        let optimizer = (en.get("optimizer"))
            .filter(|_| !en.tree)
            .and_then(|e| self.config_call(e, OPTIMIZERS, "optimizer", &en.args_of("optimizer")));
        let schedule = if en.tree {
            Some(None)
        } else {
            self.optional_call(en, "schedule", SCHEDULES, "schedule")
        };
        let early_stop = self.optional_call(en, "early_stop", EARLY_STOP, "early stopping rule");
        let checkpoint = self.optional_call(en, "checkpoint", CHECKPOINT, "checkpoint rule");
        Calls {
            loss,
            optimizer,
            schedule,
            early_stop,
            checkpoint,
        }
    }

    /// An entry that may be left out: `Some(None)` then.
    fn optional_call(
        &mut self,
        en: &Entries<'_>,
        key: &str,
        sigs: &[Sig],
        what: &str,
    ) -> Option<Option<ConfigCall>> {
        match en.get(key) {
            Some(e) => self.config_call(e, sigs, what, &en.args_of(key)).map(Some),
            None => Some(None),
        }
    }

    /// The loss and metrics fitted to the target, and whether all is well; `None` (after an
    /// error) when the dataset has no target.
    fn fit_to_target(
        &mut self,
        en: &Entries<'_>,
        data: Option<&DatasetPlan>,
        calls: &Calls,
        loss: Option<Loss>,
        metrics: Option<&[(Metric, Span)]>,
    ) -> Option<(Option<Loss>, bool)> {
        if let Some(d) = data
            && d.target.kind == TargetKind::Absent
        {
            let (dataset, span) = (d.name.clone(), en.span("data"));
            self.fail(Error::TargetAbsent { dataset, span });
            return None;
        }
        let (loss, mut ok) = self.target_loss(en, data, calls, loss);
        if !en.tree
            && let Some(d) = data
        {
            ok &= self.missing_for_network(d, en.span("data"));
        }
        if let (Some(d), Some(ms)) = (data, metrics) {
            ok &= self.metrics_fit(d, ms);
        }
        Some((loss, ok))
    }

    /// The loss for the target: a tree model's (written, if trees can minimise it, or
    /// implied), or the written one checked against the target. Also whether all is well.
    fn target_loss(
        &mut self,
        en: &Entries<'_>,
        data: Option<&DatasetPlan>,
        calls: &Calls,
        loss: Option<Loss>,
    ) -> (Option<Loss>, bool) {
        let mut ok = true;
        let loss = match data {
            Some(d) if en.tree => {
                let written = match (&calls.loss, loss) {
                    (Some(c), Some(l)) => Some((l, c.span)),
                    _ => None,
                };
                let l = self.tree_loss(written, &d.target.kind);
                ok &= l.is_some();
                l
            }
            _ => loss,
        };
        if !en.tree
            && let (Some(d), Some(loss)) = (data, &loss)
            && !self.loss_fits(loss, &d.target.kind, en.span("loss"), &d.name)
        {
            ok = false;
        }
        (loss, ok)
    }

    /// Metrics of the target's kind (classification or regression). Returns whether all are.
    fn metrics_fit(&mut self, d: &DatasetPlan, ms: &[(Metric, Span)]) -> bool {
        let classification = d.target.kind.classes().is_some();
        let mut ok = true;
        for (m, span) in ms {
            if m.for_classification() != classification {
                self.fail(Error::MetricWrongKind {
                    metric: m.name(),
                    dataset: d.name.clone(),
                    classification,
                    span: *span,
                });
                ok = false;
            }
        }
        ok
    }

    /// What early stopping and `reduce_on_plateau` watch: computed on a split the dataset
    /// has. Returns whether all is well.
    fn monitors_fit(
        &mut self,
        calls: &Calls,
        data: Option<&DatasetPlan>,
        metrics: &[Metric],
    ) -> bool {
        let has_val = data.is_some_and(|d| {
            !matches!(d.split, Split::None)
                && !matches!(d.split, Split::Random { val, .. } if val == 0.0)
                || d.sources.iter().any(|s| s.role == hir::SourceRole::Val)
        });
        let plateau = calls
            .schedule
            .as_ref()
            .and_then(|c| c.as_ref().filter(|c| c.name == "reduce_on_plateau"));
        let mut ok = true;
        for c in [calls.early_stop.as_ref().and_then(Option::as_ref), plateau]
            .into_iter()
            .flatten()
        {
            ok &= self.monitor_fits(
                &monitor_of(c),
                c.span_of("monitor"),
                has_val,
                metrics,
                data.is_some(),
            );
        }
        ok
    }

    /// Early stopping's patience (a warning) and a cosine schedule's warmup against the
    /// epochs. Returns whether all is well.
    fn epochs_fit(
        &mut self,
        en: &Entries<'_>,
        calls: &Calls,
        epochs: Option<i64>,
        schedule: Option<&Schedule>,
    ) -> bool {
        if let (Some(Some(c)), Some(limit)) = (&calls.early_stop, epochs)
            && !en.tree
            && c.i("patience") >= limit
        {
            self.fail(Error::PatienceNeverReached {
                patience: c.i("patience"),
                limit,
                rounds: false,
                span: c.span_of("patience"),
            });
        }
        if let (Some(Schedule::Cosine { warmup, .. }), Some(epochs)) = (schedule, epochs)
            && *warmup as i64 >= epochs
        {
            let (warmup, span) = (*warmup, en.span("schedule"));
            self.fail(Error::WarmupTooLong {
                warmup,
                epochs,
                span,
            });
            return false;
        }
        true
    }

    /// The model instantiated on the data and its call with every argument (a tree model:
    /// its plan too, and no instance), or `None` after errors.
    fn train_instance(
        &mut self,
        t: &ast::Train,
        en: &Entries<'_>,
        data: Option<&DatasetPlan>,
        loss: Option<&Loss>,
    ) -> (Option<(hir::InstanceId, String)>, Option<TreePlan>) {
        let args = en.args_of("model");
        let mut tree_plan = None;
        let instance = match (en.get("model"), data, loss) {
            // Without its data a tree model has nothing more to check.
            (Some(_), None, _) if en.tree => None,
            (Some(me), Some(d), _) if en.tree => {
                self.tree_plan(me, &args, d, en.span("data"))
                    .map(|(p, text)| {
                        tree_plan = Some(p);
                        (usize::MAX, text)
                    })
            }
            (Some(me), Some(d), Some(loss)) => self.train_model(t, me, &args, d, loss),
            (Some(me), _, _) => {
                // Without data, still resolve the model name for its own errors.
                let _ = self.model_value(me, &args);
                None
            }
            _ => None,
        };
        (instance, tree_plan)
    }

    /// Early stopping on a tree model: none for a forest (an error: `false`), and a warning
    /// when the patience outlasts the rounds.
    fn rounds_fit(&mut self, calls: &Calls, p: &TreePlan) -> bool {
        let Some(Some(c)) = &calls.early_stop else {
            return true;
        };
        if p.kind == hir::TreeKind::Forest {
            self.fail(Error::ForestEarlyStop { span: c.span });
            return false;
        }
        if c.i("patience") as usize >= p.trees {
            self.fail(Error::PatienceNeverReached {
                patience: c.i("patience"),
                limit: p.trees as i64,
                rounds: true,
                span: c.span_of("patience"),
            });
        }
        true
    }

    /// `shards`: at most a batch's rows, and only over rows held in memory.
    fn shards_fit(
        &mut self,
        shards: Option<usize>,
        span: Span,
        batch: usize,
        d: &DatasetPlan,
    ) -> bool {
        if let Some(shards) = shards
            && shards > batch
        {
            self.fail(Error::ShardsOverBatch {
                shards,
                batch,
                span,
            });
            return false;
        }
        if shards.is_some() && d.stream.is_some() {
            self.fail(Error::ShardsStreamed {
                dataset: d.name.clone(),
                span,
                dataset_span: d.span,
            });
            return false;
        }
        true
    }

    pub(super) fn dataset_ref(&mut self, e: &ast::Expr) -> Option<String> {
        let Some(id) = e.as_name() else {
            self.fail(Error::DataNotName { span: e.span });
            return None;
        };
        match self.items.get(&id.name).copied() {
            Some((ItemRef::Dataset(_), _)) => Some(id.name.clone()),
            Some((other, _)) => {
                self.fail(Error::NotDataset {
                    name: id.name.clone(),
                    kind: other.kind(),
                    span: id.span,
                    declared: other.name_span(),
                });
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
                Some(value) => {
                    self.fail(Error::IntBelowMin {
                        key: key.to_string(),
                        min,
                        value,
                        span: e.span,
                    });
                    None
                }
                None => None,
            },
            Val::Poison => None,
            // A whole number past the integers (the parser keeps it as a float).
            Val::Float(Some(x)) if x.fract() == 0.0 && x.abs() >= 9.223_372_036_854_775e18 => {
                self.fail(Error::IntTooLarge {
                    key: key.to_string(),
                    span: e.span,
                });
                None
            }
            v => {
                self.fail(Error::NotWholeNumber {
                    key: key.to_string(),
                    found: v.describe(),
                    float: matches!(v, Val::Float(_)),
                    span: e.span,
                });
                None
            }
        }
    }

    fn metrics(&mut self, e: &ast::Expr) -> Option<Vec<(Metric, Span)>> {
        let ast::ExprKind::List(items) = &e.kind else {
            self.fail(Error::MetricsNotList { span: e.span });
            return None;
        };
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let mut out: Vec<(Metric, Span)> = Vec::new();
        let mut ok = true;
        for it in items {
            let Some(id) = it.as_name() else {
                self.fail(Error::MetricNotName { span: it.span });
                ok = false;
                continue;
            };
            match Metric::ALL.iter().find(|m| m.name() == id.name) {
                Some(m) if out.iter().any(|(x, _)| x == m) => {
                    self.fail(Error::MetricTwice {
                        name: id.name.clone(),
                        span: id.span,
                    });
                }
                Some(m) => out.push((*m, id.span)),
                None => {
                    self.fail(
                        Unknown::new(
                            "mlx::name::unknown",
                            format!("unknown metric `{}`", id.name),
                            id.span,
                            "not a metric",
                            &id.name,
                            names.iter().copied(),
                        )
                        .otherwise(format!("the metrics are: {}", names.join(", "))),
                    );
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
                    let span = c.span_of("nesterov");
                    self.fail(Error::NesterovWithoutMomentum { span });
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
        let dataset = dataset.to_string();
        let e = match (loss, target) {
            (Loss::CrossEntropy { .. }, TargetKind::Regression) => {
                Error::LossNeedsClasses { dataset, span }
            }
            (Loss::Mse | Loss::Mae | Loss::Huber { .. }, TargetKind::Class { .. }) => {
                let loss = loss_name(loss);
                Error::LossNeedsNumber {
                    loss,
                    dataset,
                    span,
                }
            }
            (Loss::BinaryCrossEntropy, TargetKind::Class { classes, .. }) if *classes != 2 => {
                let classes = *classes;
                Error::BinaryLossClasses {
                    classes,
                    dataset,
                    span,
                }
            }
            _ => return true,
        };
        self.fail(e);
        false
    }

    fn monitor_fits(
        &mut self,
        m: &Monitor,
        span: Span,
        has_val: bool,
        metrics: &[Metric],
        have_data: bool,
    ) -> bool {
        if m.split == "val" && !has_val && have_data {
            self.fail(Error::MonitorNoValidation {
                name: m.name(),
                span,
            });
            return false;
        }
        if let Some(metric) = m.metric
            && !metrics.contains(&metric)
        {
            self.fail(Error::MonitorNotComputed {
                name: m.name(),
                metric: metric.name(),
                span,
            });
            return false;
        }
        true
    }
}

/// The loss a `loss` call names.
fn loss_of(c: &ConfigCall) -> Loss {
    match c.name.as_str() {
        "cross_entropy" => Loss::CrossEntropy {
            label_smoothing: c.f("label_smoothing"),
        },
        "binary_cross_entropy" => Loss::BinaryCrossEntropy,
        "mse" => Loss::Mse,
        "mae" => Loss::Mae,
        _ => Loss::Huber {
            delta: c.f("delta"),
        },
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
