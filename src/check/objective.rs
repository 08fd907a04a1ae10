//! Trains with several models: the `models` block, every `objective`'s loss checked as a graph
//! over one batch (features, target, noise draws) that applies the train's models, the models
//! each objective updates, its optimizer, and `samples`. Each model is instantiated once per
//! input shape; its parameters are named by the model (`g.dense_0.w`), so every application
//! shares them.

use super::config::{ArgOverride, ConfigCall};
use super::dim::{Dim, show_shape};
use super::error::objective::Error;
use super::error::{Error as CheckError, Unknown};
use super::hir::{
    self, EarlyStop, LossFn, ModelSlot, MultiPlan, NodeId, ObjectivePlan, Op, SamplesPlan,
    Schedule, TargetKind, TrainPlan,
};
use super::model::{Body, Request};
use super::tables::{CHECKPOINT, EARLY_STOP, OPTIMIZERS, SCHEDULES};
use super::train::EntryOverride;
use super::value::{CallArg, Val};
use super::{Checker, ItemRef};
use crate::source::Span;
use crate::syntax::ast::{self, ObjectiveItem};
use std::collections::HashMap;

/// Functions that exist only inside objectives and `samples`.
pub(crate) const OBJECTIVE_FNS: &[&str] = &[
    "noise",
    "cross_entropy",
    "binary_cross_entropy",
    "bce_with_logits",
    "mse",
    "mae",
    "huber",
];

/// Top-level entries of a train with objectives.
const MULTI_KEYS: &[&str] = &[
    "data",
    "epochs",
    "batch",
    "seed",
    "early_stop",
    "checkpoint",
    "samples",
];

/// The entries of an objective.
pub(crate) const OBJECTIVE_KEYS: &[&str] =
    &["updates", "loss", "optimizer", "schedule", "clip_grad"];

/// What an objective's (or `samples`') expressions can reach besides their own `let`s.
pub(crate) struct Scope {
    pub slots: Vec<SlotState>,
    /// Shapes of the `noise(...)` draws so far, in order.
    pub noise: Vec<Vec<Dim>>,
    /// The dataset's target node, and whether it holds class labels.
    pub target: Option<(NodeId, bool)>,
    /// Whether `B` (the batch) means something here (not in `samples`).
    pub batch: bool,
}

/// A `models` entry while its applications are checked.
#[derive(Clone)]
pub(crate) struct SlotState {
    pub name: String,
    pub model: String,
    pub hyper: Vec<CallArg>,
    pub call: String,
    pub span: Span,
    /// The input shapes and place of the first application.
    pub first: Option<(Vec<Vec<Dim>>, Span)>,
    /// The instance applied to a batch of `B` rows (for prediction).
    pub instance: Option<hir::InstanceId>,
}

impl Scope {
    fn slot(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    pub fn has_slot(&self, name: &str) -> bool {
        self.slot(name).is_some()
    }
}

/// One override of an entry of the multi-model train, split by where it reaches.
struct Overrides<'e> {
    top: Vec<EntryOverride<'e>>,
    /// `models.NAME[.ARG]`.
    models: Vec<EntryOverride<'e>>,
    /// `objective.NAME.KEY[.ARG]`.
    objectives: Vec<EntryOverride<'e>>,
}

impl<'e> Overrides<'e> {
    fn whole(list: &[EntryOverride<'e>], path: &[&str]) -> Option<&'e ast::Expr> {
        list.iter()
            .rev()
            .find(|o| o.path.len() == path.len() && o.path.iter().zip(path).all(|(a, b)| a == b))
            .map(|o| o.value)
    }

    fn args(list: &[EntryOverride<'e>], prefix: &[&str]) -> Vec<ArgOverride<'e>> {
        list.iter()
            .filter(|o| {
                o.path.len() == prefix.len() + 1 && o.path.iter().zip(prefix).all(|(a, b)| a == b)
            })
            .map(|o| ArgOverride {
                param: o.path[prefix.len()].clone(),
                value: o.value,
                span: o.span,
            })
            .collect()
    }
}

impl<'a> Checker<'a> {
    /// A train with a `models` block and `objective` blocks.
    pub(crate) fn multi_train_plan<'e>(
        &mut self,
        t: &'e ast::Train,
        extra: &[EntryOverride<'e>],
    ) -> Option<TrainPlan>
    where
        'a: 'e,
    {
        let (entries, mut ok) = self.multi_entries(t)?;
        let ov = self.multi_overrides(t, extra, &mut ok);
        let get = |key: &str| -> Option<&'e ast::Expr> {
            Overrides::whole(&ov.top, &[key]).or_else(|| entries.get(key).map(|e| &e.value))
        };
        let mut resolved: Vec<(String, String)> = Vec::new();
        let basics = self.multi_basics(t, &get, &mut resolved, &mut ok);
        let (block, mut slots) = self.models_block(t, &ov.models, &mut ok)?;
        let names = self.objective_names(t, &ov.objectives, &mut ok)?;
        let data = basics.data?;
        let objectives = self.objective_plans(t, &data, &mut slots, &ov.objectives, &mut ok);

        // Samples: the models applied to noise, after every epoch.
        let samples = match get("samples") {
            Some(e) => match self.samples(e, &mut slots) {
                Some(s) => {
                    resolved.push(("samples".into(), crate::syntax::print::expr(e)));
                    Some(s)
                }
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };

        // Early stopping and checkpoints: monitors name objectives.
        let (early_stop, checkpoint_every) = self.multi_stopping(
            &get,
            &ov.top,
            &names,
            &data,
            basics.epochs,
            &mut resolved,
            &mut ok,
        );
        for (k, v) in [
            ("epochs", basics.epochs.map(|x| x.to_string())),
            ("batch", basics.batch.map(|x| x.to_string())),
            ("seed", basics.seed.map(|x| x.to_string())),
        ] {
            if let Some(v) = v {
                resolved.push((k.into(), v));
            }
        }
        if !ok {
            return None;
        }
        let blocks = multi_blocks(t, &slots, &objectives, &ov.objectives);
        let first = objectives.first()?;
        let memory = self.multi_memory(t, block, &slots, &objectives, basics.batch)?;
        let instance = slots
            .iter()
            .find_map(|s| s.instance)
            .unwrap_or(first.instance);
        Some(TrainPlan {
            name: t.name.name.clone(),
            span: t.span,
            model_call: slots
                .iter()
                .map(|s| format!("{} = {}", s.name, s.call))
                .collect::<Vec<_>>()
                .join(", "),
            instance,
            dataset: data.name.clone(),
            loss: hir::Loss::Mse,
            optimizer: first.optimizer.clone(),
            schedule: Schedule::Constant,
            epochs: basics.epochs? as usize,
            batch: basics.batch? as usize,
            seed: basics.seed? as u64,
            metrics: Vec::new(),
            early_stop,
            clip_grad: None,
            shards: None,
            checkpoint_every: checkpoint_every?,
            resolved,
            memory,
            blocks,
            trees: None,
            multi: Some(MultiPlan {
                models: slots
                    .into_iter()
                    .map(|s| ModelSlot {
                        name: s.name,
                        call: s.call,
                        span: s.span,
                        instance: s.instance,
                    })
                    .collect(),
                objectives,
                samples,
            }),
        })
    }

    /// The top-level entries of a train with objectives by key, and whether they are all
    /// known and set once.
    fn multi_entries<'e>(
        &mut self,
        t: &'e ast::Train,
    ) -> Option<(HashMap<&'static str, &'e ast::Entry>, bool)> {
        let mut ok = true;
        let mut entries: HashMap<&'static str, &'e ast::Entry> = HashMap::new();
        for e in &t.entries {
            let k = e.key.name.as_str();
            if !MULTI_KEYS.contains(&k) {
                let span = e.key.span;
                match k {
                    "model" => self.fail(Error::ModelBesideModels { span }),
                    "loss" | "optimizer" | "schedule" | "clip_grad" => {
                        self.fail(Error::EntryOutsideObjective {
                            key: k.to_string(),
                            span,
                        })
                    }
                    _ => self.fail(
                        Unknown::new(
                            "mlx::train::unknown_entry",
                            format!("`{k}` is not an entry of a train with objectives"),
                            span,
                            "unknown entry",
                            k,
                            MULTI_KEYS.iter().copied(),
                        )
                        .otherwise(format!(
                            "its entries are: {}, a `models` block and `objective` blocks",
                            MULTI_KEYS.join(", ")
                        )),
                    ),
                }
                ok = false;
                continue;
            }
            if let Some(prev) = entries.get(k) {
                self.fail(CheckError::EntryTwice {
                    key: k.to_string(),
                    span: e.key.span,
                    first: prev.key.span,
                });
                ok = false;
                continue;
            }
            entries.insert(MULTI_KEYS.iter().find(|x| **x == k).copied()?, e);
        }
        Some((entries, ok))
    }

    /// `--set`, then the sweep point's overrides, split by where they reach; a path that
    /// reaches nothing is reported (and clears `ok`).
    fn multi_overrides<'e>(
        &mut self,
        t: &ast::Train,
        extra: &[EntryOverride<'e>],
        ok: &mut bool,
    ) -> Overrides<'e>
    where
        'a: 'e,
    {
        let mut all: Vec<EntryOverride<'e>> = self
            .input
            .overrides
            .iter()
            .filter(|o| {
                o.path.first().is_some_and(|h| {
                    MULTI_KEYS.contains(&h.as_str())
                        || h == "models"
                        || h == "objective"
                        || super::tables::ENTRY_KEYS.contains(&h.as_str())
                })
            })
            .map(|o| EntryOverride {
                path: o.path.clone(),
                value: &o.value,
                span: o.span,
            })
            .collect();
        all.extend(extra.iter().cloned());
        let mut ov = Overrides {
            top: Vec::new(),
            models: Vec::new(),
            objectives: Vec::new(),
        };
        for o in all {
            let head = o.path[0].as_str();
            let fits = match head {
                "models" => (2..=3).contains(&o.path.len()),
                "objective" => (3..=4).contains(&o.path.len()),
                h if MULTI_KEYS.contains(&h) => {
                    o.path.len() == 1
                        || (o.path.len() == 2 && matches!(h, "early_stop" | "checkpoint"))
                }
                _ => false,
            };
            if !fits {
                self.fail(Error::SettingUnknown {
                    path: o.path.join("."),
                    train: t.name.name.clone(),
                    span: o.span,
                });
                *ok = false;
                continue;
            }
            match head {
                "models" => ov.models.push(o),
                "objective" => ov.objectives.push(o),
                _ => ov.top.push(o),
            }
        }
        ov
    }

    /// The dataset, `epochs`, `batch` and `seed` of a train with objectives.
    fn multi_basics<'e>(
        &mut self,
        t: &ast::Train,
        get: &impl Fn(&str) -> Option<&'e ast::Expr>,
        resolved: &mut Vec<(String, String)>,
        ok: &mut bool,
    ) -> Basics {
        if get("data").is_none() || get("epochs").is_none() {
            for key in ["data", "epochs"] {
                if get(key).is_none() {
                    self.fail(Error::TrainEntryMissing {
                        train: t.name.name.clone(),
                        key,
                        span: t.name.span,
                    });
                }
            }
            *ok = false;
        }
        let dataset = get("data").and_then(|e| self.dataset_ref(e));
        let data = dataset
            .as_ref()
            .and_then(|n| self.dataset_plan(n))
            .map(|i| self.program.datasets[i].clone());
        if let Some(n) = &dataset {
            resolved.push(("data".into(), n.clone()));
        }
        let data_span = get("data").map_or(t.name.span, |e| e.span);
        if let Some(d) = data.as_ref().filter(|d| d.stream.is_some()) {
            self.fail(Error::DataStreamed {
                dataset: d.name.clone(),
                span: data_span,
            });
            *ok = false;
        }
        if let Some(d) = &data {
            *ok &= self.missing_for_network(d, data_span);
        }
        let epochs = get("epochs").and_then(|e| self.positive_int(e, "epochs", 1));
        let batch = match get("batch") {
            Some(e) => self.positive_int(e, "batch", 1),
            None => Some(32),
        };
        let seed = match get("seed") {
            Some(e) => self.positive_int(e, "seed", 0),
            None => Some(0),
        };
        Basics {
            data,
            epochs,
            batch,
            seed,
        }
    }

    /// The `models` block and its models; `None` when nothing further is worth checking.
    fn models_block<'e>(
        &mut self,
        t: &'e ast::Train,
        overrides: &[EntryOverride<'e>],
        ok: &mut bool,
    ) -> Option<(&'e ast::ModelsBlock, Vec<SlotState>)>
    where
        'a: 'e,
    {
        if t.models.len() > 1 {
            self.fail(Error::ModelsBlockTwice {
                span: t.models[1].span,
                first: t.models[0].span,
            });
            *ok = false;
        }
        let Some(block) = t.models.first() else {
            self.fail(Error::ModelsBlockMissing {
                train: t.name.name.clone(),
                span: t.name.span,
            });
            return None;
        };
        let mut slots: Vec<SlotState> = Vec::new();
        for e in &block.entries {
            if let Some(prev) = slots.iter().find(|s| s.name == e.key.name) {
                self.fail(Error::ModelTwice {
                    name: e.key.name.clone(),
                    span: e.key.span,
                    first: prev.span,
                });
                *ok = false;
                continue;
            }
            let value = Overrides::whole(overrides, &["models", &e.key.name]).unwrap_or(&e.value);
            let args = Overrides::args(overrides, &["models", &e.key.name]);
            let tree = self.tree_model(value).is_some();
            let Some((m, hyper)) = self.model_value(value, &args) else {
                if tree {
                    // The objectives would only repeat that the model is missing.
                    return None;
                }
                *ok = false;
                continue;
            };
            let call = self.full_call_text(m, &hyper);
            slots.push(SlotState {
                name: e.key.name.clone(),
                model: m.name.name.clone(),
                hyper,
                call,
                span: e.key.span,
                first: None,
                instance: None,
            });
        }
        for o in overrides {
            if !block.entries.iter().any(|e| e.key.name == o.path[1]) {
                let names: Vec<String> = block.entries.iter().map(|e| e.key.name.clone()).collect();
                self.unknown_set(o, "model of this train", &names);
                *ok = false;
            }
        }
        if slots.is_empty() && *ok {
            self.fail(Error::ModelsBlockEmpty { span: block.span });
            return None;
        }
        Some((block, slots))
    }

    /// The names of the train's objectives, with the overrides that name none reported;
    /// `None` when it has no objective.
    fn objective_names(
        &mut self,
        t: &ast::Train,
        overrides: &[EntryOverride<'_>],
        ok: &mut bool,
    ) -> Option<Vec<String>> {
        if t.objectives.is_empty() {
            self.fail(Error::ObjectiveMissing {
                train: t.name.name.clone(),
                span: t.name.span,
            });
            return None;
        }
        let names: Vec<String> = t.objectives.iter().map(|o| o.name.name.clone()).collect();
        for o in overrides {
            if !names.contains(&o.path[1]) {
                self.unknown_set(o, "objective", &names);
                *ok = false;
            }
        }
        Some(names)
    }

    /// Every objective of the train checked, in order; one declared twice is reported.
    fn objective_plans<'e>(
        &mut self,
        t: &'e ast::Train,
        data: &hir::DatasetPlan,
        slots: &mut Vec<SlotState>,
        overrides: &[EntryOverride<'e>],
        ok: &mut bool,
    ) -> Vec<ObjectivePlan> {
        let mut objectives: Vec<ObjectivePlan> = Vec::new();
        for (i, o) in t.objectives.iter().enumerate() {
            if let Some(prev) = t.objectives[..i]
                .iter()
                .find(|p| p.name.name == o.name.name)
            {
                self.fail(Error::ObjectiveTwice {
                    name: o.name.name.clone(),
                    span: o.name.span,
                    first: prev.name.span,
                });
                *ok = false;
                continue;
            }
            match self.objective_plan(o, data, slots, overrides) {
                Some(p) => objectives.push(p),
                None => *ok = false,
            }
        }
        objectives
    }

    /// Early stopping (its monitor names an objective) and the checkpoint rule: the rule, and
    /// the epochs between checkpoints (`None` when the checkpoint rule has errors).
    #[allow(clippy::too_many_arguments)]
    fn multi_stopping<'e>(
        &mut self,
        get: &impl Fn(&str) -> Option<&'e ast::Expr>,
        top: &[EntryOverride<'e>],
        names: &[String],
        data: &hir::DatasetPlan,
        epochs: Option<i64>,
        resolved: &mut Vec<(String, String)>,
        ok: &mut bool,
    ) -> (Option<EarlyStop>, Option<usize>) {
        self.objective_figures = Some(names.to_vec());
        let stop_c = match get("early_stop") {
            Some(e) => self
                .config_call(
                    e,
                    EARLY_STOP,
                    "early stopping rule",
                    &Overrides::args(top, &["early_stop"]),
                )
                .map(Some),
            None => Some(None),
        };
        self.objective_figures = None;
        let ckpt_c = match get("checkpoint") {
            Some(e) => self
                .config_call(
                    e,
                    CHECKPOINT,
                    "checkpoint rule",
                    &Overrides::args(top, &["checkpoint"]),
                )
                .map(Some),
            None => Some(None),
        };
        let has_val = !matches!(data.split, hir::Split::None)
            && !matches!(data.split, hir::Split::Random { val, .. } if val == 0.0)
            || data.sources.iter().any(|s| s.role == hir::SourceRole::Val);
        let early_stop = match &stop_c {
            Some(Some(c)) => self.multi_early_stop(c, names, has_val, epochs, resolved, ok),
            Some(None) => None,
            None => {
                *ok = false;
                None
            }
        };
        if let Some(Some(c)) = &ckpt_c {
            resolved.push(("checkpoint".into(), c.text()));
        }
        let every = ckpt_c.map(|c| c.as_ref().map_or(1, |c| c.i("epochs") as usize));
        (early_stop, every)
    }

    /// The early-stopping rule of a train with objectives (its monitor `val.OBJECTIVE` by
    /// default).
    fn multi_early_stop(
        &mut self,
        c: &ConfigCall,
        names: &[String],
        has_val: bool,
        epochs: Option<i64>,
        resolved: &mut Vec<(String, String)>,
        ok: &mut bool,
    ) -> Option<EarlyStop> {
        let path = match c.val("monitor") {
            Some(Val::Symbol(p)) => p.clone(),
            _ => vec!["val".into(), names[0].clone()],
        };
        let Ok(m) = super::config::objective_monitor(&path, names) else {
            // Reported by the configuration check.
            *ok = false;
            return None;
        };
        if m.split == "val" && !has_val {
            self.fail(Error::MonitorWithoutValidation {
                monitor: m.name(),
                objective: names[0].clone(),
                span: c.span,
            });
            *ok = false;
        }
        if let Some(e) = epochs
            && c.i("patience") >= e
        {
            self.fail(Error::PatienceNotBelowEpochs {
                patience: c.i("patience"),
                epochs: e,
                span: c.span_of("patience"),
            });
        }
        resolved.push((
            "early_stop".into(),
            format!(
                "early_stopping(monitor: {}, patience: {}, min_delta: {})",
                m.name(),
                c.i("patience"),
                crate::syntax::print::float(c.f("min_delta"))
            ),
        ));
        Some(EarlyStop {
            monitor: m,
            patience: c.i("patience") as usize,
            min_delta: c.f("min_delta"),
        })
    }

    /// Memory: every model applied to a batch, with the optimizer of the first objective that
    /// updates it (activations of different models counted together: an objective may run
    /// them all); `None` when it does not fit.
    fn multi_memory(
        &mut self,
        t: &ast::Train,
        block: &ast::ModelsBlock,
        slots: &[SlotState],
        objectives: &[ObjectivePlan],
        batch: Option<i64>,
    ) -> Option<super::memory::MemoryEstimate> {
        let first = objectives.first()?;
        let mut memory = super::memory::MemoryEstimate::default();
        for s in slots {
            if let (Some(inst), Some(b)) = (s.instance, batch) {
                let opt = objectives
                    .iter()
                    .find(|o| o.updates.contains(&s.name))
                    .map_or(&first.optimizer, |o| &o.optimizer);
                let m = super::memory::estimate(&self.program, inst, b as usize, opt);
                memory = memory.plus(m, &format!("{}.", s.name));
            }
        }
        self.memory_fits(
            &t.name.name,
            &memory,
            batch.unwrap_or(0) as usize,
            block.span,
        )
        .then_some(memory)
    }

    fn unknown_set(&mut self, o: &EntryOverride<'_>, what: &str, names: &[String]) {
        self.fail(Unknown::new(
            "mlx::set::unknown",
            format!("`{}` names no {what} `{}`", o.path.join("."), o.path[1]),
            o.span,
            "unknown path",
            &o.path[1],
            names,
        ));
    }

    /// `generator(latent: 64)`: the model with every hyperparameter, defaults filled in.
    fn full_call_text(&mut self, m: &ast::Model, args: &[CallArg]) -> String {
        let mut full = args.to_vec();
        for decl in m.hyper.iter().flatten() {
            if !full
                .iter()
                .any(|a| a.name.as_ref().is_some_and(|(n, _)| *n == decl.name.name))
                && let Some(def) = &decl.default
            {
                let v = self.scalar_expr(def);
                full.push(CallArg {
                    name: Some((decl.name.name.clone(), def.span)),
                    value: v,
                    span: def.span,
                    origin: None,
                });
            }
        }
        if m.hyper.is_none() {
            m.name.name.clone()
        } else {
            format!("{}({})", m.name.name, super::value::args_text(&full))
        }
    }

    /// A body for an objective or `samples`: `B` bound, the train's models reachable.
    fn scope_body(&self, what: &str, slots: &mut Vec<SlotState>, batch: bool) -> Body {
        let mut b = Body::new(what, false);
        if batch {
            b.dims.insert("B".into(), Dim::sym(hir::BATCH));
        }
        b.objective = Some(Box::new(Scope {
            slots: std::mem::take(slots),
            noise: Vec::new(),
            target: None,
            batch,
        }));
        b
    }

    fn objective_plan<'e>(
        &mut self,
        o: &'e ast::Objective,
        data: &hir::DatasetPlan,
        slots: &mut Vec<SlotState>,
        overrides: &[EntryOverride<'e>],
    ) -> Option<ObjectivePlan> {
        let name = o.name.name.as_str();
        let mut ok = self.objective_entries(o, overrides)?;
        let get = |key: &str| objective_entry(o, overrides, key);

        // The loss graph.
        let (mut b, xs, loss) = self.loss_graph(o, data, slots, get("loss"));
        let scope = b.objective.take();
        if let Some(s) = &scope {
            *slots = s.slots.clone();
        }
        let noise = scope.map(|s| s.noise).unwrap_or_default();
        let loss_node = match loss {
            Some((Val::Tensor(n), span)) => {
                if !b.shape(n).is_empty() {
                    self.fail(Error::LossNotScalar {
                        objective: name.to_string(),
                        shape: show_shape(b.shape(n)),
                        span,
                    });
                    ok = false;
                }
                Some(n)
            }
            Some((Val::Poison, _)) => {
                ok = false;
                None
            }
            Some((v, span)) => {
                self.fail(Error::LossNotTensor {
                    objective: name.to_string(),
                    found: v.describe(),
                    span,
                });
                ok = false;
                None
            }
            None => None,
        };
        ok &= self.loss_params_owned(name, &b, slots);
        let updates = self.objective_updates(o, overrides, &b, loss_node, slots, &mut ok);

        // Optimizer, schedule, clipping.
        let (optimizer, schedule, clip_grad) = self.objective_optimizer(o, overrides);
        if !ok {
            return None;
        }
        let inst = hir::Instance {
            model: format!("objective {name}"),
            span: o.span,
            inputs: vec![xs],
            params: b.params,
            nodes: b.nodes,
            results: vec![loss_node?],
            signature: String::new(),
        };
        self.program.instances.push(inst);
        Some(ObjectivePlan {
            name: name.to_string(),
            span: o.name.span,
            instance: self.program.instances.len() - 1,
            updates,
            noise,
            optimizer: optimizer?,
            schedule: schedule?,
            clip_grad: clip_grad?,
        })
    }

    /// Whether an objective's entries are known, set once and complete, and the overrides
    /// that reach it name its entries (`None` never, in practice: a known key has a name).
    fn objective_entries(
        &mut self,
        o: &ast::Objective,
        overrides: &[EntryOverride<'_>],
    ) -> Option<bool> {
        let name = o.name.name.as_str();
        let mut entries: HashMap<&str, &ast::Entry> = HashMap::new();
        let mut ok = true;
        for e in o.entries() {
            let k = e.key.name.as_str();
            if !OBJECTIVE_KEYS.contains(&k) {
                self.fail(
                    Unknown::new(
                        "mlx::train::unknown_entry",
                        format!("`{k}` is not an entry of an objective"),
                        e.key.span,
                        "unknown entry",
                        k,
                        OBJECTIVE_KEYS.iter().copied(),
                    )
                    .otherwise(format!(
                        "an objective has `let` bindings and: {}",
                        OBJECTIVE_KEYS.join(", ")
                    )),
                );
                ok = false;
                continue;
            }
            if let Some(prev) = entries.get(k) {
                self.fail(CheckError::EntryTwice {
                    key: k.to_string(),
                    span: e.key.span,
                    first: prev.key.span,
                });
                ok = false;
                continue;
            }
            entries.insert(OBJECTIVE_KEYS.iter().find(|x| **x == k).copied()?, e);
        }
        for key in ["updates", "loss", "optimizer"] {
            if objective_entry(o, overrides, key).is_none() {
                self.fail(Error::ObjectiveEntryMissing {
                    objective: name.to_string(),
                    key,
                    span: o.name.span,
                });
                ok = false;
            }
        }
        for o2 in overrides.iter().filter(|x| x.path[1] == name) {
            if !OBJECTIVE_KEYS.contains(&o2.path[2].as_str()) {
                self.fail(Error::ObjectiveSettingUnknown {
                    path: o2.path.join("."),
                    objective: name.to_string(),
                    span: o2.span,
                });
                ok = false;
            }
        }
        Some(ok)
    }

    /// An objective's loss as a graph over one batch: the body (its scope still attached),
    /// the batch's input shape, and the loss's value and place.
    fn loss_graph(
        &mut self,
        o: &ast::Objective,
        data: &hir::DatasetPlan,
        slots: &mut Vec<SlotState>,
        loss: Option<&ast::Expr>,
    ) -> (Body, Vec<Dim>, Option<(Val, Span)>) {
        let mut b = self.scope_body(&format!("objective {}", o.name.name), slots, true);
        let batch = Dim::sym(hir::BATCH);
        let mut xs = vec![batch.clone()];
        xs.extend(data.feature_shape.iter().map(|n| Dim::constant(*n as i64)));
        let x = b.add(Op::Input(0), xs.clone(), o.name.span);
        self.bind_batch_names(&mut b, data, x, o.name.span);
        let target = match &data.target.kind {
            TargetKind::Class { .. } => Some((vec![batch.clone()], true)),
            TargetKind::Regression => Some((vec![batch.clone(), Dim::constant(1)], false)),
            TargetKind::Absent => None,
        };
        if let Some((shape, class)) = target {
            let y = b.add(Op::Input(1), shape, data.target.span);
            b.bind(&data.target.column, Val::Tensor(y), data.target.span);
            if let Some(s) = b.objective.as_mut() {
                s.target = Some((y, class));
            }
        }
        b.scopes.push(HashMap::new());
        for item in &o.items {
            if let ObjectiveItem::Let(ast::Stmt::Let { name, value, .. }) = item {
                let v = self.expr(&mut b, value);
                self.check_shadow(&b, name);
                b.bind(&name.name, v, name.span);
            }
        }
        let loss = loss.map(|e| (self.expr(&mut b, e), e.span));
        (b, xs, loss)
    }

    /// Parameters belong to the train's models: a layer with parameters applied in the loss
    /// itself would have weights no objective updates. Whether none is.
    fn loss_params_owned(&mut self, objective: &str, b: &Body, slots: &[SlotState]) -> bool {
        for n in &b.nodes {
            if let Op::Call {
                instance, layer, ..
            } = &n.op
                && !slots.iter().any(|s| s.name == *layer)
                && has_params(&self.program, *instance)
            {
                self.fail(Error::LossOwnParameters {
                    objective: objective.to_string(),
                    span: n.span,
                });
                return false;
            }
        }
        true
    }

    /// Updates: declared models, each reached by the loss through a gradient.
    fn objective_updates(
        &mut self,
        o: &ast::Objective,
        overrides: &[EntryOverride<'_>],
        b: &Body,
        loss_node: Option<NodeId>,
        slots: &[SlotState],
        ok: &mut bool,
    ) -> Vec<String> {
        let mut updates: Vec<String> = Vec::new();
        let Some(e) = objective_entry(o, overrides, "updates") else {
            return updates;
        };
        let items: Vec<&ast::Expr> = match &e.kind {
            ast::ExprKind::List(xs) => xs.iter().collect(),
            _ => vec![e],
        };
        let slot_names: Vec<String> = slots.iter().map(|s| s.name.clone()).collect();
        for it in items {
            let Some(id) = it.as_name() else {
                self.fail(Error::UpdatesNotName { span: it.span });
                *ok = false;
                continue;
            };
            if !slot_names.contains(&id.name) {
                self.fail(
                    Unknown::new(
                        "mlx::name::unknown",
                        format!("`{}` is not declared in `models`", id.name),
                        id.span,
                        "not a model of this train",
                        &id.name,
                        &slot_names,
                    )
                    .otherwise(format!("the train's models are: {}", slot_names.join(", "))),
                );
                *ok = false;
                continue;
            }
            if updates.contains(&id.name) {
                self.fail(Error::UpdatesTwice {
                    model: id.name.clone(),
                    span: id.span,
                });
                *ok = false;
                continue;
            }
            if let Some(l) = loss_node
                && !reaches(b, l, &id.name)
            {
                self.fail(Error::UpdatesUnreached {
                    objective: o.name.name.clone(),
                    model: id.name.clone(),
                    span: id.span,
                    loss: objective_entry(o, overrides, "loss").map_or(o.name.span, |e| e.span),
                });
                *ok = false;
                continue;
            }
            updates.push(id.name.clone());
        }
        updates
    }

    /// An objective's optimizer, schedule and gradient clipping (each `None` when wrong).
    fn objective_optimizer(
        &mut self,
        o: &ast::Objective,
        overrides: &[EntryOverride<'_>],
    ) -> (
        Option<hir::Optimizer>,
        Option<Schedule>,
        Option<Option<f64>>,
    ) {
        let name = o.name.name.as_str();
        let get = |key: &str| objective_entry(o, overrides, key);
        let opt = get("optimizer").and_then(|e| {
            self.config_call(
                e,
                OPTIMIZERS,
                "optimizer",
                &Overrides::args(overrides, &["objective", name, "optimizer"]),
            )
        });
        let optimizer = opt.as_ref().and_then(|c| self.optimizer(c));
        let schedule = match get("schedule") {
            Some(e) => match self.config_call(
                e,
                SCHEDULES,
                "schedule",
                &Overrides::args(overrides, &["objective", name, "schedule"]),
            ) {
                Some(c) if c.name == "reduce_on_plateau" => {
                    self.fail(Error::PlateauInObjective { span: c.span });
                    None
                }
                Some(c) => Some(self.schedule(&c)),
                None => None,
            },
            None => Some(Schedule::Constant),
        };
        let clip_grad = match get("clip_grad") {
            Some(e) => match self.scalar_expr(e).as_f64() {
                Some(v) if v > 0.0 => Some(Some(v)),
                _ => {
                    self.fail(Error::ClipGradNotPositive { span: e.span });
                    None
                }
            },
            None => Some(None),
        };
        (optimizer, schedule, clip_grad)
    }

    /// `features`, each feature column by name, for an objective's batch `x`.
    fn bind_batch_names(&mut self, b: &mut Body, data: &hir::DatasetPlan, x: NodeId, span: Span) {
        b.bind("features", Val::Tensor(x), span);
        if data.features.len() == 1 {
            b.bind(
                &data.features[0].column,
                Val::Tensor(x),
                data.features[0].span,
            );
            return;
        }
        if data.feature_shape.len() != 1 {
            return;
        }
        let mut start = 0i64;
        for f in &data.features {
            let w = f.width as i64;
            let n = b.add(
                Op::Slice {
                    x,
                    axis: 1,
                    start: Dim::constant(start),
                },
                vec![Dim::sym(hir::BATCH), Dim::constant(w)],
                f.span,
            );
            b.bind(&f.column, Val::Tensor(n), f.span);
            start += w;
        }
    }

    fn samples(&mut self, e: &ast::Expr, slots: &mut Vec<SlotState>) -> Option<SamplesPlan> {
        let mut b = self.scope_body("samples", slots, false);
        let v = self.expr(&mut b, e);
        let scope = b.objective.take();
        if let Some(s) = &scope {
            *slots = s.slots.clone();
        }
        let noise = scope.map(|s| s.noise).unwrap_or_default();
        match v {
            Val::Tensor(n) => {
                let shape = b.shape(n).to_vec();
                if shape.iter().any(|d| d.as_const().is_none()) {
                    self.fail(Error::SamplesUnbound {
                        shape: show_shape(&shape),
                        span: e.span,
                    });
                    return None;
                }
                self.program.instances.push(hir::Instance {
                    model: "samples".into(),
                    span: e.span,
                    inputs: Vec::new(),
                    params: b.params,
                    nodes: b.nodes,
                    results: vec![n],
                    signature: String::new(),
                });
                Some(SamplesPlan {
                    instance: self.program.instances.len() - 1,
                    noise,
                    shape,
                })
            }
            Val::Poison => None,
            other => {
                self.fail(Error::SamplesNotTensor {
                    found: other.describe(),
                    span: e.span,
                });
                None
            }
        }
    }

    /// `g(x)` inside an objective: the model instantiated on `x`'s shape, its parameters
    /// under `g.`.
    pub(crate) fn apply_slot(
        &mut self,
        b: &mut Body,
        name: &str,
        inputs: Vec<(Val, Span)>,
        span: Span,
    ) -> Val {
        let Some(slot) = b
            .objective
            .as_ref()
            .and_then(|s| s.slot(name).map(|i| s.slots[i].clone()))
        else {
            return Val::Poison;
        };
        let Some((ItemRef::Model(m), _)) = self.items.get(&slot.model).copied() else {
            return Val::Poison;
        };
        let mut shapes = Vec::new();
        for (v, s) in &inputs {
            match self.as_tensor(b, v.clone(), *s) {
                Some(n) => shapes.push((b.shape(n).to_vec(), b.origin(n), n)),
                None => {
                    if !v.is_poison() {
                        self.fail(Error::ModelInputNotTensor {
                            model: name.to_string(),
                            found: v.describe(),
                            span: *s,
                        });
                    }
                    return Val::Poison;
                }
            }
        }
        let dims: Vec<Vec<Dim>> = shapes.iter().map(|(s, _, _)| s.clone()).collect();
        if let Some((first, at)) = &slot.first {
            let same = first.len() == dims.len()
                && first
                    .iter()
                    .zip(&dims)
                    .all(|(a, c)| a.len() == c.len() && a.iter().skip(1).eq(c.iter().skip(1)));
            if !same {
                let show = |d: &[Vec<Dim>]| {
                    d.iter()
                        .map(|s| show_shape(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                self.fail(Error::ModelShapeChanged {
                    model: name.to_string(),
                    now: show(&dims),
                    before: show(first),
                    span,
                    first: *at,
                });
                return Val::Poison;
            }
        }
        let req = Request {
            model: m,
            hyper: m.hyper.is_some().then(|| slot.hyper.clone()),
            inputs: shapes.iter().map(|(s, o, _)| (s.clone(), *o)).collect(),
            expected: None,
            call_span: span,
            generic: false,
            context: Some(format!("model `{name}` = {}", slot.call)),
            note: None,
        };
        let Some((inst, out)) = self.instantiate(req) else {
            return Val::Poison;
        };
        if let Some(s) = b.objective.as_mut()
            && let Some(i) = s.slot(name)
        {
            let st = &mut s.slots[i];
            if st.first.is_none() {
                st.first = Some((dims.clone(), span));
            }
            let batched = dims
                .first()
                .and_then(|d| d.first())
                .is_some_and(|d| *d == Dim::sym(hir::BATCH));
            if st.instance.is_none() && batched {
                st.instance = Some(inst);
            }
        }
        let args = shapes.iter().map(|(_, _, n)| *n).collect();
        Val::Tensor(b.add(
            Op::Call {
                instance: inst,
                args,
                layer: name.to_string(),
            },
            out,
            span,
        ))
    }

    /// `noise(SHAPE)` and the loss functions, inside an objective or `samples`.
    pub(crate) fn objective_call(
        &mut self,
        b: &mut Body,
        name: &str,
        args: Vec<CallArg>,
        span: Span,
    ) -> Val {
        if name == "noise" {
            return self.noise(b, args, span);
        }
        let Some((positional, extra)) = self.loss_args(name, args, span) else {
            return Val::Poison;
        };
        let (pv, ps) = positional[0].clone();
        let (tv, ts) = positional[1].clone();
        let Some(pred) = self.tensor_arg(b, pv, ps, name) else {
            return Val::Poison;
        };
        let target_is_number = matches!(tv, Val::Float(_) | Val::Int(_));
        let Some(target) = self.tensor_arg(b, tv, ts, name) else {
            return Val::Poison;
        };
        let loss = if name == "cross_entropy" {
            self.cross_entropy_fn(b, (pred, ps), (target, ts), &extra)
                .map(|f| (f, target))
        } else {
            self.distance_fn(b, name, (pred, ps), (target, ts), target_is_number, &extra)
        };
        let Some((f, target)) = loss else {
            return Val::Poison;
        };
        Val::Tensor(b.add(Op::LossFn { f, pred, target }, Vec::new(), span))
    }

    /// A loss function's two tensors (prediction, target) and its named arguments;
    /// `None` when they are wrong (reported) or poisoned.
    fn loss_args(
        &mut self,
        name: &str,
        args: Vec<CallArg>,
        span: Span,
    ) -> Option<(Vec<(Val, Span)>, LossNamed)> {
        let mut positional: Vec<(Val, Span)> = Vec::new();
        let mut named: Vec<(String, Val, Span)> = Vec::new();
        for a in args {
            match a.name {
                Some((n, s)) => named.push((n, a.value, s)),
                None => positional.push((a.value, a.span)),
            }
        }
        let allowed: &[&str] = match name {
            "cross_entropy" => &["label_smoothing"],
            "huber" => &["delta"],
            _ => &[],
        };
        let mut extra: LossNamed = HashMap::new();
        for (n, v, s) in named {
            if !allowed.contains(&n.as_str()) {
                self.fail(Unknown::new(
                    "mlx::arg::unknown",
                    format!("`{name}` has no argument `{n}`"),
                    s,
                    "unknown argument",
                    &n,
                    allowed.iter().copied(),
                ));
                return None;
            }
            extra.insert(n, (v, s));
        }
        if name == "huber" && positional.len() == 3 {
            let (v, s) = positional.pop().unwrap_or((Val::Poison, span));
            extra.insert("delta".into(), (v, s));
        }
        if positional.len() != 2 {
            self.fail(Error::LossArity {
                function: name.to_string(),
                given: positional.len(),
                span,
            });
            return None;
        }
        if positional.iter().any(|(v, _)| v.is_poison()) {
            return None;
        }
        Some((positional, extra))
    }

    /// A loss function's number argument `key`: `default` when absent, `None` (reported)
    /// outside [lo, hi).
    fn loss_number(
        &mut self,
        name: &str,
        extra: &LossNamed,
        key: &str,
        default: f64,
        (lo, hi): (f64, f64),
    ) -> Option<f64> {
        let Some((v, s)) = extra.get(key) else {
            return Some(default);
        };
        match v.as_f64() {
            Some(x) if x >= lo && x < hi => Some(x),
            _ => {
                self.fail(Error::LossArgRange {
                    key: key.to_string(),
                    function: name.to_string(),
                    lo,
                    hi,
                    span: *s,
                });
                None
            }
        }
    }

    /// `cross_entropy(logits, target)`: against the class labels, or against class
    /// probabilities of the logits' shape (without label smoothing).
    fn cross_entropy_fn(
        &mut self,
        b: &Body,
        (pred, ps): (NodeId, Span),
        (target, ts): (NodeId, Span),
        extra: &LossNamed,
    ) -> Option<LossFn> {
        let ps_shape = b.shape(pred).to_vec();
        let ts_shape = b.shape(target).to_vec();
        let dataset_target = b.objective.as_ref().and_then(|s| s.target);
        let eps = self.loss_number("cross_entropy", extra, "label_smoothing", 0.0, (0.0, 1.0))?;
        if ps_shape.len() != 2 {
            self.fail(Error::CrossEntropyRank {
                shape: show_shape(&ps_shape),
                span: ps,
            });
            return None;
        }
        if dataset_target == Some((target, true)) {
            Some(LossFn::CrossEntropy {
                label_smoothing: eps,
            })
        } else if ts_shape == ps_shape && eps == 0.0 {
            Some(LossFn::SoftCrossEntropy)
        } else {
            self.fail(Error::CrossEntropyTarget {
                logits: show_shape(&ps_shape),
                target: show_shape(&ts_shape),
                span: ts,
            });
            None
        }
    }

    /// The losses that compare a prediction with a target of its shape (`mse`, `mae`,
    /// `huber`, the binary cross entropies), and the target, reshaped where labels [B] meet
    /// one logit a row [B, 1].
    fn distance_fn(
        &mut self,
        b: &mut Body,
        name: &str,
        (pred, ps): (NodeId, Span),
        (target, ts): (NodeId, Span),
        target_is_number: bool,
        extra: &LossNamed,
    ) -> Option<(LossFn, NodeId)> {
        let ps_shape = b.shape(pred).to_vec();
        let ts_shape = b.shape(target).to_vec();
        let dataset_target = b.objective.as_ref().and_then(|s| s.target);
        let f = match name {
            "binary_cross_entropy" => LossFn::BinaryCrossEntropy,
            "bce_with_logits" => LossFn::BceWithLogits,
            "mse" => LossFn::Mse,
            "mae" => LossFn::Mae,
            _ => {
                let range = (f64::MIN_POSITIVE, f64::MAX);
                let delta = self.loss_number(name, extra, "delta", 1.0, range)?;
                LossFn::Huber { delta }
            }
        };
        let class_labels = dataset_target == Some((target, true));
        if class_labels && !matches!(f, LossFn::BinaryCrossEntropy | LossFn::BceWithLogits) {
            self.fail(Error::DistanceToClassLabels {
                function: name.to_string(),
                span: ts,
            });
            return None;
        }
        if ts_shape.is_empty() || ts_shape == ps_shape || target_is_number {
            // A number broadcasts; equal shapes pair element by element.
            Some((f, target))
        } else if class_labels && ps_shape.len() == 2 && ps_shape[1] == Dim::constant(1) {
            // Labels [B] against one logit a row [B, 1].
            Some((f, b.add(Op::Reshape(target), ps_shape.clone(), ts)))
        } else {
            self.fail(Error::LossShapeMismatch {
                function: name.to_string(),
                pred: show_shape(&ps_shape),
                target: show_shape(&ts_shape),
                span: ps,
                target_span: ts,
            });
            None
        }
    }

    fn tensor_arg(&mut self, b: &mut Body, v: Val, s: Span, name: &str) -> Option<NodeId> {
        match self.as_tensor(b, v.clone(), s) {
            Some(n) => Some(n),
            None => {
                if !v.is_poison() {
                    self.fail(Error::LossArgNotTensor {
                        function: name.to_string(),
                        found: v.describe(),
                        span: s,
                    });
                }
                None
            }
        }
    }

    fn noise(&mut self, b: &mut Body, args: Vec<CallArg>, span: Span) -> Val {
        let [arg] = args.as_slice() else {
            self.fail(Error::NoiseArity {
                given: args.len(),
                span,
            });
            return Val::Poison;
        };
        let Val::List(items) = &arg.value else {
            if !arg.value.is_poison() {
                self.fail(Error::NoiseNotShape {
                    found: arg.value.describe(),
                    span: arg.span,
                });
            }
            return Val::Poison;
        };
        let batch_ok = b.objective.as_ref().is_some_and(|s| s.batch);
        let mut shape = Vec::new();
        for (v, s) in items {
            match v {
                Val::Int(d) if d.as_const().is_some_and(|n| n > 0) => shape.push(d.clone()),
                Val::Int(d) if *d == Dim::sym(hir::BATCH) && batch_ok => shape.push(d.clone()),
                Val::Int(d) if d.as_const().is_some() => {
                    self.fail(Error::NoiseDimNotPositive {
                        dim: d.to_string(),
                        span: *s,
                    });
                    return Val::Poison;
                }
                Val::Poison => return Val::Poison,
                other => {
                    self.fail(Error::NoiseDimNotWhole {
                        found: other.describe(),
                        batch: batch_ok,
                        float: matches!(other, Val::Float(_)),
                        span: *s,
                    });
                    return Val::Poison;
                }
            }
        }
        let Some(scope) = b.objective.as_mut() else {
            return Val::Poison;
        };
        scope.noise.push(shape.clone());
        let k = scope.noise.len() + 1;
        Val::Tensor(b.add(Op::Input(k), shape, span))
    }
}

/// Whether an instance (or one it applies) declares parameters.
fn has_params(p: &hir::Program, inst: hir::InstanceId) -> bool {
    let mut stack = vec![inst];
    let mut seen = std::collections::HashSet::new();
    while let Some(i) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        let Some(x) = p.instances.get(i) else {
            continue;
        };
        if !x.params.is_empty() {
            return true;
        }
        for n in &x.nodes {
            match &n.op {
                Op::Call { instance, .. } => stack.push(*instance),
                Op::Scan { body, .. } => stack.push(*body),
                _ => {}
            }
        }
    }
    false
}

/// Whether `node` depends on a parameter of the model applied as `layer`, through a path that
/// gradients follow (not through `stop_gradient`).
fn reaches(b: &Body, node: NodeId, layer: &str) -> bool {
    let mut seen = vec![false; b.nodes.len()];
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        match &b.nodes[n].op {
            Op::StopGradient(_) => {}
            Op::Call { layer: l, .. } if l == layer => return true,
            op => stack.extend(op.operands()),
        }
    }
    false
}

/// An objective's entry `key`, overridden or as written.
fn objective_entry<'e>(
    o: &'e ast::Objective,
    overrides: &[EntryOverride<'e>],
    key: &str,
) -> Option<&'e ast::Expr> {
    Overrides::whole(overrides, &["objective", &o.name.name, key])
        .or_else(|| o.entries().find(|e| e.key.name == key).map(|e| &e.value))
}

/// An objective in canonical form with `--set` applied to its entries.
fn objective_text(
    o: &ast::Objective,
    p: &ObjectivePlan,
    overrides: &[EntryOverride<'_>],
) -> String {
    let mut out = format!("  objective {} {{\n", o.name.name);
    for i in &o.items {
        match i {
            ObjectiveItem::Let(ast::Stmt::Let { name, value, .. }) => {
                out.push_str(&format!(
                    "    let {} = {}\n",
                    name.name,
                    crate::syntax::print::expr(value)
                ));
            }
            ObjectiveItem::Let(_) => {}
            ObjectiveItem::Entry(_) => {}
        }
    }
    let over = |key: &str| Overrides::whole(overrides, &["objective", &o.name.name, key]);
    let entry = |key: &str| {
        over(key)
            .or_else(|| o.entries().find(|e| e.key.name == key).map(|e| &e.value))
            .map(crate::syntax::print::expr)
    };
    if let Some(u) = entry("updates") {
        out.push_str(&format!("    updates = {u}\n"));
    }
    if let Some(l) = entry("loss") {
        out.push_str(&format!("    loss = {l}\n"));
    }
    out.push_str(&format!(
        "    optimizer = {}\n",
        optimizer_text(&p.optimizer)
    ));
    if p.schedule != Schedule::Constant {
        out.push_str(&format!("    schedule = {}\n", schedule_text(&p.schedule)));
    }
    if let Some(c) = p.clip_grad {
        out.push_str(&format!(
            "    clip_grad = {}\n",
            crate::syntax::print::float(c)
        ));
    }
    out.push_str("  }\n");
    out
}

fn optimizer_text(o: &hir::Optimizer) -> String {
    let f = crate::syntax::print::float;
    match o {
        hir::Optimizer::Sgd {
            lr,
            momentum,
            nesterov,
            weight_decay,
        } => format!(
            "sgd(lr: {}, momentum: {}, nesterov: {nesterov}, weight_decay: {})",
            f(*lr),
            f(*momentum),
            f(*weight_decay)
        ),
        hir::Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => format!(
            "adam(lr: {}, beta1: {}, beta2: {}, eps: {}, weight_decay: {})",
            f(*lr),
            f(*beta1),
            f(*beta2),
            f(*eps),
            f(*weight_decay)
        ),
        hir::Optimizer::AdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => format!(
            "adamw(lr: {}, beta1: {}, beta2: {}, eps: {}, weight_decay: {})",
            f(*lr),
            f(*beta1),
            f(*beta2),
            f(*eps),
            f(*weight_decay)
        ),
        hir::Optimizer::RmsProp {
            lr,
            alpha,
            eps,
            momentum,
            weight_decay,
        } => format!(
            "rmsprop(lr: {}, alpha: {}, eps: {}, momentum: {}, weight_decay: {})",
            f(*lr),
            f(*alpha),
            f(*eps),
            f(*momentum),
            f(*weight_decay)
        ),
    }
}

fn schedule_text(s: &Schedule) -> String {
    let f = crate::syntax::print::float;
    match s {
        Schedule::Step { every, gamma } => format!("step(every: {every}, gamma: {})", f(*gamma)),
        Schedule::Exponential { gamma } => format!("exponential(gamma: {})", f(*gamma)),
        Schedule::Cosine { warmup, min_lr } => {
            format!("cosine(warmup: {warmup}, min_lr: {})", f(*min_lr))
        }
        _ => "constant".into(),
    }
}

/// A loss function's named arguments (`label_smoothing`, `delta`): value and place.
type LossNamed = HashMap<String, (Val, Span)>;

/// The dataset, `epochs`, `batch` and `seed` of a train with objectives (`None` where wrong).
struct Basics {
    data: Option<hir::DatasetPlan>,
    epochs: Option<i64>,
    batch: Option<i64>,
    seed: Option<i64>,
}

/// The `models` block and every objective in canonical form, overrides applied.
fn multi_blocks(
    t: &ast::Train,
    slots: &[SlotState],
    objectives: &[ObjectivePlan],
    overrides: &[EntryOverride<'_>],
) -> String {
    let mut blocks = String::from("  models {\n");
    for s in slots {
        blocks.push_str(&format!("    {} = {}\n", s.name, s.call));
    }
    blocks.push_str("  }\n");
    for (o, p) in t.objectives.iter().zip(objectives) {
        blocks.push_str(&objective_text(o, p, overrides));
    }
    blocks
}
