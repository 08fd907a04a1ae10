//! Trains with several models: the `models` block, every `objective`'s loss checked as a graph
//! over one batch (features, target, noise draws) that applies the train's models, the models
//! each objective updates, its optimizer, and `samples`. Each model is instantiated once per
//! input shape; its parameters are named by the model (`g.dense_0.w`), so every application
//! shares them.

use super::config::ArgOverride;
use super::dim::{Dim, show_shape};
use super::hir::{
    self, EarlyStop, LossFn, ModelSlot, MultiPlan, NodeId, ObjectivePlan, Op, SamplesPlan,
    Schedule, TargetKind, TrainPlan,
};
use super::model::{Body, Request};
use super::tables::{CHECKPOINT, EARLY_STOP, OPTIMIZERS, SCHEDULES};
use super::train::EntryOverride;
use super::value::{CallArg, Val};
use super::{Checker, ItemRef};
use crate::diagnostics::{Diagnostic, did_you_mean};
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

const OBJECTIVE_KEYS: &[&str] = &["updates", "loss", "optimizer", "schedule", "clip_grad"];

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
        let mut ok = true;
        let mut entries: HashMap<&str, &'e ast::Entry> = HashMap::new();
        for e in &t.entries {
            let k = e.key.name.as_str();
            if !MULTI_KEYS.contains(&k) {
                let d = match k {
                    "model" => Diagnostic::error(
                        "mlx::train::unknown_entry",
                        "a train with a `models` block declares every model there",
                    )
                    .with_label(e.key.span, "`model` beside `models`")
                    .with_help("move it into the block: `models { m = ... }`"),
                    "loss" | "optimizer" | "schedule" | "clip_grad" => Diagnostic::error(
                        "mlx::train::unknown_entry",
                        format!("`{k}` belongs in an objective when a train has objectives"),
                    )
                    .with_label(e.key.span, "outside every objective")
                    .with_help(format!(
                        "move it into the `objective` block it is for: `objective NAME {{ ... {k} = ... }}`"
                    )),
                    _ => {
                        let d = Diagnostic::error(
                            "mlx::train::unknown_entry",
                            format!("`{k}` is not an entry of a train with objectives"),
                        )
                        .with_label(e.key.span, "unknown entry");
                        match did_you_mean(k, MULTI_KEYS.iter().copied()) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_help(format!(
                                "its entries are: {}, a `models` block and `objective` blocks",
                                MULTI_KEYS.join(", ")
                            )),
                        }
                    }
                };
                self.error(d);
                ok = false;
                continue;
            }
            if let Some(prev) = entries.get(k) {
                let prev = prev.key.span;
                self.error(
                    Diagnostic::error("mlx::name::duplicate", format!("entry `{k}` is set twice"))
                        .with_label(e.key.span, "set again here")
                        .with_secondary(prev, "first set here"),
                );
                ok = false;
                continue;
            }
            entries.insert(MULTI_KEYS.iter().find(|x| **x == k).copied()?, e);
        }

        // Overrides: `--set`, then the sweep point's.
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
                self.error(
                    Diagnostic::error(
                        "mlx::set::unknown",
                        format!(
                            "`{}` is not a setting of train `{}`, which has objectives",
                            o.path.join("."),
                            t.name.name
                        ),
                    )
                    .with_label(o.span, "unknown path")
                    .with_help("override `epochs`, `models.NAME.HYPERPARAMETER` or `objective.NAME.optimizer.lr` (any entry or argument of an objective)"),
                );
                ok = false;
                continue;
            }
            match head {
                "models" => ov.models.push(o),
                "objective" => ov.objectives.push(o),
                _ => ov.top.push(o),
            }
        }
        let get = |key: &str| -> Option<&'e ast::Expr> {
            Overrides::whole(&ov.top, &[key]).or_else(|| entries.get(key).map(|e| &e.value))
        };
        let mut resolved: Vec<(String, String)> = Vec::new();

        if get("data").is_none() || get("epochs").is_none() {
            for key in ["data", "epochs"] {
                if get(key).is_none() {
                    self.error(
                        Diagnostic::error(
                            "mlx::train::missing_entry",
                            format!("train `{}` has no `{key}`", t.name.name),
                        )
                        .with_label(t.name.span, format!("`{key}` is required"))
                        .with_help(if key == "data" {
                            "add `data = my_dataset`"
                        } else {
                            "add `epochs = 10`"
                        }),
                    );
                }
            }
            ok = false;
        }
        let dataset = get("data").and_then(|e| self.dataset_ref(e));
        let data = dataset
            .as_ref()
            .and_then(|n| self.dataset_plan(n))
            .map(|i| self.program.datasets[i].clone());
        if let Some(n) = &dataset {
            resolved.push(("data".into(), n.clone()));
        }
        if let Some(d) = data.as_ref().filter(|d| d.stream.is_some()) {
            self.error(
                Diagnostic::error(
                    "mlx::data::stream",
                    format!(
                        "a train with objectives reads its data in memory, but dataset `{}` is streamed",
                        d.name
                    ),
                )
                .with_label(get("data").map_or(t.name.span, |e| e.span), "streamed dataset")
                .with_help("remove `stream = true` from the dataset"),
            );
            ok = false;
        }
        if let Some(d) = &data {
            ok &= self.missing_for_network(d, get("data").map_or(t.name.span, |e| e.span));
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

        // Models.
        if t.models.len() > 1 {
            self.error(
                Diagnostic::error("mlx::name::duplicate", "a train has one `models` block")
                    .with_label(t.models[1].span, "second block")
                    .with_secondary(t.models[0].span, "first block"),
            );
            ok = false;
        }
        let Some(block) = t.models.first() else {
            self.error(
                Diagnostic::error(
                    "mlx::train::missing_entry",
                    format!(
                        "train `{}` has objectives but no `models` block",
                        t.name.name
                    ),
                )
                .with_label(t.name.span, "which models do the objectives train?")
                .with_help("declare them: `models { g = generator  d = discriminator }`"),
            );
            return None;
        };
        let mut slots: Vec<SlotState> = Vec::new();
        for e in &block.entries {
            if let Some(prev) = slots.iter().find(|s| s.name == e.key.name) {
                self.error(
                    Diagnostic::error(
                        "mlx::name::duplicate",
                        format!("model `{}` is declared twice", e.key.name),
                    )
                    .with_label(e.key.span, "declared again here")
                    .with_secondary(prev.span, "first declared here"),
                );
                ok = false;
                continue;
            }
            let value = Overrides::whole(&ov.models, &["models", &e.key.name]).unwrap_or(&e.value);
            let args = Overrides::args(&ov.models, &["models", &e.key.name]);
            let tree = self.tree_model(value).is_some();
            let Some((m, hyper)) = self.model_value(value, &args) else {
                if tree {
                    // The objectives would only repeat that the model is missing.
                    return None;
                }
                ok = false;
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
        for o in &ov.models {
            if !block.entries.iter().any(|e| e.key.name == o.path[1]) {
                let names: Vec<String> = block.entries.iter().map(|e| e.key.name.clone()).collect();
                self.unknown_set(o, "model of this train", &names);
                ok = false;
            }
        }
        if slots.is_empty() && ok {
            self.error(
                Diagnostic::error("mlx::train::missing_entry", "the `models` block is empty")
                    .with_label(block.span, "no models")
                    .with_help("declare a model: `models { m = my_model }`"),
            );
            return None;
        }

        // Objectives.
        if t.objectives.is_empty() {
            self.error(
                Diagnostic::error(
                    "mlx::train::missing_entry",
                    format!("train `{}` has models but no `objective`", t.name.name),
                )
                .with_label(t.name.span, "nothing trains the models")
                .with_help("add `objective fit { updates = m  loss = mse(m(x), y)  optimizer = adam(lr: 1e-3) }`"),
            );
            return None;
        }
        let names: Vec<String> = t.objectives.iter().map(|o| o.name.name.clone()).collect();
        for o in &ov.objectives {
            if !names.contains(&o.path[1]) {
                self.unknown_set(o, "objective", &names);
                ok = false;
            }
        }
        let data = data?;
        let mut objectives: Vec<ObjectivePlan> = Vec::new();
        let mut blocks = String::from("  models {\n");
        for (i, o) in t.objectives.iter().enumerate() {
            if let Some(prev) = t.objectives[..i]
                .iter()
                .find(|p| p.name.name == o.name.name)
            {
                self.error(
                    Diagnostic::error(
                        "mlx::name::duplicate",
                        format!("objective `{}` is declared twice", o.name.name),
                    )
                    .with_label(o.name.span, "declared again here")
                    .with_secondary(prev.name.span, "first declared here"),
                );
                ok = false;
                continue;
            }
            match self.objective_plan(o, &data, &mut slots, &ov.objectives) {
                Some(p) => objectives.push(p),
                None => ok = false,
            }
        }

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
        self.objective_figures = Some(names.clone());
        let stop_c = match get("early_stop") {
            Some(e) => self
                .config_call(
                    e,
                    EARLY_STOP,
                    "early stopping rule",
                    &Overrides::args(&ov.top, &["early_stop"]),
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
                    &Overrides::args(&ov.top, &["checkpoint"]),
                )
                .map(Some),
            None => Some(None),
        };
        let has_val = !matches!(data.split, hir::Split::None)
            && !matches!(data.split, hir::Split::Random { val, .. } if val == 0.0)
            || data.sources.iter().any(|s| s.role == hir::SourceRole::Val);
        let early_stop = match &stop_c {
            Some(Some(c)) => {
                let path = match c.val("monitor") {
                    Some(Val::Symbol(p)) => p.clone(),
                    _ => vec!["val".into(), names[0].clone()],
                };
                match super::config::objective_monitor(&path, &names) {
                    Ok(m) => {
                        if m.split == "val" && !has_val {
                            self.error(
                                Diagnostic::error("mlx::train::monitor", format!("`{}` is watched, but the dataset has no validation split", m.name()))
                                    .with_label(c.span, "nothing to monitor")
                                    .with_help(format!("give the dataset a validation split (`split = holdout(val: 0.1)`), or monitor `train.{}`", names[0])),
                            );
                            ok = false;
                        }
                        if let Some(e) = epochs
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
                    Err(_) => {
                        // Reported by the configuration check.
                        ok = false;
                        None
                    }
                }
            }
            Some(None) => None,
            None => {
                ok = false;
                None
            }
        };
        if let Some(Some(c)) = &ckpt_c {
            resolved.push(("checkpoint".into(), c.text()));
        }
        for (k, v) in [
            ("epochs", epochs.map(|x| x.to_string())),
            ("batch", batch.map(|x| x.to_string())),
            ("seed", seed.map(|x| x.to_string())),
        ] {
            if let Some(v) = v {
                resolved.push((k.into(), v));
            }
        }
        if !ok {
            return None;
        }
        for s in &slots {
            blocks.push_str(&format!("    {} = {}\n", s.name, s.call));
        }
        blocks.push_str("  }\n");
        for (o, p) in t.objectives.iter().zip(&objectives) {
            blocks.push_str(&objective_text(o, p, &ov.objectives));
        }

        let first = objectives.first()?;
        // Memory: every model applied to a batch, with the optimizer of the first objective
        // that updates it (activations of different models counted together: an objective
        // may run them all).
        let mut memory = super::memory::MemoryEstimate::default();
        for s in &slots {
            if let (Some(inst), Some(b)) = (s.instance, batch) {
                let opt = objectives
                    .iter()
                    .find(|o| o.updates.contains(&s.name))
                    .map_or(&first.optimizer, |o| &o.optimizer);
                let m = super::memory::estimate(&self.program, inst, b as usize, opt);
                memory = memory.plus(m, &format!("{}.", s.name));
            }
        }
        if !self.memory_fits(
            &t.name.name,
            &memory,
            batch.unwrap_or(0) as usize,
            block.span,
        ) {
            return None;
        }
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
            epochs: epochs? as usize,
            batch: batch? as usize,
            seed: seed? as u64,
            metrics: Vec::new(),
            early_stop,
            clip_grad: None,
            shards: None,
            checkpoint_every: ckpt_c?.as_ref().map_or(1, |c| c.i("epochs") as usize),
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

    fn unknown_set(&mut self, o: &EntryOverride<'_>, what: &str, names: &[String]) {
        let mut d = Diagnostic::error(
            "mlx::set::unknown",
            format!("`{}` names no {what} `{}`", o.path.join("."), o.path[1]),
        )
        .with_label(o.span, "unknown path");
        d = d.suggest(&o.path[1], names.iter().map(String::as_str));
        self.error(d);
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
        let mut entries: HashMap<&str, &ast::Entry> = HashMap::new();
        let mut ok = true;
        for e in o.entries() {
            let k = e.key.name.as_str();
            if !OBJECTIVE_KEYS.contains(&k) {
                let mut d = Diagnostic::error(
                    "mlx::train::unknown_entry",
                    format!("`{k}` is not an entry of an objective"),
                )
                .with_label(e.key.span, "unknown entry");
                d = d.suggest_or(
                    k,
                    OBJECTIVE_KEYS.iter().copied(),
                    format!(
                        "an objective has `let` bindings and: {}",
                        OBJECTIVE_KEYS.join(", ")
                    ),
                );
                self.error(d);
                ok = false;
                continue;
            }
            if let Some(prev) = entries.get(k) {
                let prev = prev.key.span;
                self.error(
                    Diagnostic::error("mlx::name::duplicate", format!("entry `{k}` is set twice"))
                        .with_label(e.key.span, "set again here")
                        .with_secondary(prev, "first set here"),
                );
                ok = false;
                continue;
            }
            entries.insert(OBJECTIVE_KEYS.iter().find(|x| **x == k).copied()?, e);
        }
        let get = |key: &str| -> Option<&'e ast::Expr> {
            Overrides::whole(overrides, &["objective", name, key])
                .or_else(|| o.entries().find(|e| e.key.name == key).map(|e| &e.value))
        };
        for key in ["updates", "loss", "optimizer"] {
            if get(key).is_none() {
                let example = match key {
                    "updates" => "updates = m",
                    "loss" => "loss = mse(m(x), x)",
                    _ => "optimizer = adam(lr: 1e-3)",
                };
                self.error(
                    Diagnostic::error(
                        "mlx::train::missing_entry",
                        format!("objective `{name}` has no `{key}`"),
                    )
                    .with_label(o.name.span, format!("`{key}` is required"))
                    .with_help(format!("add `{example}`")),
                );
                ok = false;
            }
        }
        for o2 in overrides.iter().filter(|x| x.path[1] == name) {
            if !OBJECTIVE_KEYS.contains(&o2.path[2].as_str()) {
                self.error(
                    Diagnostic::error(
                        "mlx::set::unknown",
                        format!(
                            "`{}` names no entry of objective `{name}`",
                            o2.path.join(".")
                        ),
                    )
                    .with_label(o2.span, "unknown path")
                    .with_help(format!(
                        "an objective's entries are: {}",
                        OBJECTIVE_KEYS.join(", ")
                    )),
                );
                ok = false;
            }
        }

        // The loss graph.
        let mut b = self.scope_body(&format!("objective {name}"), slots, true);
        let batch = Dim::sym(hir::BATCH);
        let mut xs = vec![batch.clone()];
        xs.extend(data.feature_shape.iter().map(|n| Dim::constant(*n as i64)));
        let x = b.add(Op::Input(0), xs.clone(), o.name.span);
        self.bind_batch_names(&mut b, data, x, o.name.span);
        match &data.target.kind {
            TargetKind::Class { .. } => {
                let y = b.add(Op::Input(1), vec![batch.clone()], data.target.span);
                b.bind(&data.target.column, Val::Tensor(y), data.target.span);
                if let Some(s) = b.objective.as_mut() {
                    s.target = Some((y, true));
                }
            }
            TargetKind::Regression => {
                let y = b.add(
                    Op::Input(1),
                    vec![batch.clone(), Dim::constant(1)],
                    data.target.span,
                );
                b.bind(&data.target.column, Val::Tensor(y), data.target.span);
                if let Some(s) = b.objective.as_mut() {
                    s.target = Some((y, false));
                }
            }
            TargetKind::Absent => {}
        }
        b.scopes.push(HashMap::new());
        for item in &o.items {
            if let ObjectiveItem::Let(ast::Stmt::Let { name, value, .. }) = item {
                let v = self.expr(&mut b, value);
                self.check_shadow(&b, name);
                b.bind(&name.name, v, name.span);
            }
        }
        let loss_e = get("loss");
        let loss = loss_e.map(|e| (self.expr(&mut b, e), e.span));
        let scope = b.objective.take();
        if let Some(s) = &scope {
            *slots = s.slots.clone();
        }
        let noise = scope.map(|s| s.noise).unwrap_or_default();
        let loss_node = match loss {
            Some((Val::Tensor(n), span)) => {
                if !b.shape(n).is_empty() {
                    self.error(
                        Diagnostic::error(
                            "mlx::train::loss",
                            format!(
                                "the loss of objective `{name}` must be a single number, but has shape {}",
                                show_shape(b.shape(n))
                            ),
                        )
                        .with_label(span, format!("shape {}", show_shape(b.shape(n))))
                        .with_help("reduce it to a number: use a loss function such as `mse(a, b)`, or `mean(...)`"),
                    );
                    ok = false;
                }
                Some(n)
            }
            Some((Val::Poison, _)) => {
                ok = false;
                None
            }
            Some((v, span)) => {
                self.error(
                    Diagnostic::error(
                        "mlx::train::loss",
                        format!(
                            "the loss of objective `{name}` must be a tensor computed from the batch, found {}",
                            v.describe()
                        ),
                    )
                    .with_label(span, "not computed from the models")
                    .with_help("apply a model: `loss = mse(m(image), image)`"),
                );
                ok = false;
                None
            }
            None => None,
        };

        // Parameters belong to the train's models: a layer with parameters applied in the
        // loss itself would have weights no objective updates.
        for n in &b.nodes {
            if let Op::Call {
                instance, layer, ..
            } = &n.op
                && !slots.iter().any(|s| s.name == *layer)
                && has_params(&self.program, *instance)
            {
                self.error(
                    Diagnostic::error(
                        "mlx::train::loss",
                        format!("objective `{name}` applies a layer with parameters of its own"),
                    )
                    .with_label(n.span, "these parameters belong to no model of the train")
                    .with_help("declare a model with this layer in `models` and apply it here, so an objective can update it"),
                );
                ok = false;
                break;
            }
        }

        // Updates: declared models, each reached by the loss through a gradient.
        let mut updates: Vec<String> = Vec::new();
        if let Some(e) = get("updates") {
            let items: Vec<&ast::Expr> = match &e.kind {
                ast::ExprKind::List(xs) => xs.iter().collect(),
                _ => vec![e],
            };
            let slot_names: Vec<String> = slots.iter().map(|s| s.name.clone()).collect();
            for it in items {
                let Some(id) = it.as_name() else {
                    self.error(
                        Diagnostic::error(
                            "mlx::type::mismatch",
                            "`updates` names models of the train: `d` or `[enc, dec]`",
                        )
                        .with_label(it.span, "not a model name"),
                    );
                    ok = false;
                    continue;
                };
                if !slot_names.contains(&id.name) {
                    let mut d = Diagnostic::error(
                        "mlx::name::unknown",
                        format!("`{}` is not declared in `models`", id.name),
                    )
                    .with_label(id.span, "not a model of this train");
                    d = d.suggest_or(
                        &id.name,
                        slot_names.iter().map(String::as_str),
                        format!("the train's models are: {}", slot_names.join(", ")),
                    );
                    self.error(d);
                    ok = false;
                    continue;
                }
                if updates.contains(&id.name) {
                    self.error(
                        Diagnostic::error(
                            "mlx::name::duplicate",
                            format!("`{}` is listed twice in `updates`", id.name),
                        )
                        .with_label(id.span, "listed again"),
                    );
                    ok = false;
                    continue;
                }
                if let Some(l) = loss_node
                    && !reaches(&b, l, &id.name)
                {
                    self.error(
                        Diagnostic::error(
                            "mlx::train::loss",
                            format!(
                                "objective `{name}` updates `{}`, but its loss does not depend on `{}`'s parameters",
                                id.name, id.name
                            ),
                        )
                        .with_label(id.span, "no gradient reaches this model")
                        .with_secondary(
                            get("loss").map_or(o.name.span, |e| e.span),
                            format!("`{}` is not applied here (or only under `stop_gradient`)", id.name),
                        )
                        .with_help(format!(
                            "apply `{}` in the loss, or remove it from `updates`",
                            id.name
                        )),
                    );
                    ok = false;
                    continue;
                }
                updates.push(id.name.clone());
            }
        }

        // Optimizer, schedule, clipping.
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
            Some(e) => {
                match self.config_call(
                    e,
                    SCHEDULES,
                    "schedule",
                    &Overrides::args(overrides, &["objective", name, "schedule"]),
                ) {
                    Some(c) if c.name == "reduce_on_plateau" => {
                        self.error(
                        Diagnostic::error(
                            "mlx::value::range",
                            "`reduce_on_plateau` is not available inside an objective",
                        )
                        .with_label(c.span, "a schedule that watches a figure")
                        .with_help("use `step`, `exponential` or `cosine`, which depend on the epoch only"),
                    );
                        None
                    }
                    Some(c) => Some(self.schedule(&c)),
                    None => None,
                }
            }
            None => Some(Schedule::Constant),
        };
        let clip_grad = match get("clip_grad") {
            Some(e) => match self.scalar_expr(e).as_f64() {
                Some(v) if v > 0.0 => Some(Some(v)),
                _ => {
                    self.error(
                        Diagnostic::error(
                            "mlx::value::range",
                            "`clip_grad` must be a number greater than 0: the largest allowed gradient norm",
                        )
                        .with_label(e.span, "not a positive number"),
                    );
                    None
                }
            },
            None => Some(None),
        };
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
                    self.error(
                        Diagnostic::error(
                            "mlx::shape::unbound",
                            format!(
                                "`samples` has shape {}: every size must be a number",
                                show_shape(&shape)
                            ),
                        )
                        .with_label(e.span, "sizes not known")
                        .with_help("draw a fixed number: `g(noise([64, 64]))`"),
                    );
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
                self.error(
                    Diagnostic::error(
                        "mlx::type::mismatch",
                        format!("`samples` must be a tensor, found {}", other.describe()),
                    )
                    .with_label(e.span, "not a tensor")
                    .with_help("apply a model of the train: `samples = g(noise([64, 64]))`"),
                );
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
                        self.error(
                            Diagnostic::error(
                                "mlx::type::mismatch",
                                format!("model `{name}` takes a tensor, found {}", v.describe()),
                            )
                            .with_label(*s, "not a tensor"),
                        );
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
                self.error(
                    Diagnostic::error(
                        "mlx::shape::mismatch",
                        format!(
                            "model `{name}` is applied to {} here, but to {} before: a model of a train has one set of parameters",
                            show(&dims),
                            show(first)
                        ),
                    )
                    .with_label(span, format!("{} here", show(&dims)))
                    .with_secondary(*at, format!("{} here", show(first)))
                    .with_help("apply each model to inputs of one shape (only the number of rows may differ)"),
                );
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
        let mut extra: HashMap<String, (Val, Span)> = HashMap::new();
        for (n, v, s) in named {
            if !allowed.contains(&n.as_str()) {
                let mut d = Diagnostic::error(
                    "mlx::arg::unknown",
                    format!("`{name}` has no argument `{n}`"),
                )
                .with_label(s, "unknown argument");
                d = d.suggest(&n, allowed.iter().copied());
                self.error(d);
                return Val::Poison;
            }
            extra.insert(n, (v, s));
        }
        if name == "huber" && positional.len() == 3 {
            let (v, s) = positional.pop().unwrap_or((Val::Poison, span));
            extra.insert("delta".into(), (v, s));
        }
        if positional.len() != 2 {
            self.error(
                Diagnostic::error(
                    "mlx::type::arity",
                    format!(
                        "`{name}` takes 2 tensors (prediction, target), but {} were given",
                        positional.len()
                    ),
                )
                .with_label(span, "called here"),
            );
            return Val::Poison;
        }
        if positional.iter().any(|(v, _)| v.is_poison()) {
            return Val::Poison;
        }
        let number = |this: &mut Self, key: &str, default: f64, lo: f64, hi: f64| -> Option<f64> {
            match extra.get(key) {
                None => Some(default),
                Some((v, s)) => match v.as_f64() {
                    Some(x) if x >= lo && x < hi => Some(x),
                    _ => {
                        this.error(
                            Diagnostic::error(
                                "mlx::value::range",
                                format!("`{key}` of `{name}` must be a number in [{lo}, {hi})"),
                            )
                            .with_label(*s, "out of range"),
                        );
                        None
                    }
                },
            }
        };
        let (pv, ps) = positional[0].clone();
        let (tv, ts) = positional[1].clone();
        let Some(pred) = self.tensor_arg(b, pv, ps, name) else {
            return Val::Poison;
        };
        let target_is_number = matches!(tv, Val::Float(_) | Val::Int(_));
        let Some(mut target) = self.tensor_arg(b, tv, ts, name) else {
            return Val::Poison;
        };
        let ps_shape = b.shape(pred).to_vec();
        let ts_shape = b.shape(target).to_vec();
        let dataset_target = b.objective.as_ref().and_then(|s| s.target);
        let f = if name == "cross_entropy" {
            let Some(eps) = number(self, "label_smoothing", 0.0, 0.0, 1.0) else {
                return Val::Poison;
            };
            if ps_shape.len() != 2 {
                self.error(
                    Diagnostic::error(
                        "mlx::shape::rank",
                        format!(
                            "`cross_entropy` takes logits of shape [B, K], but got {}",
                            show_shape(&ps_shape)
                        ),
                    )
                    .with_label(ps, format!("shape {}", show_shape(&ps_shape))),
                );
                return Val::Poison;
            }
            if dataset_target == Some((target, true)) {
                LossFn::CrossEntropy {
                    label_smoothing: eps,
                }
            } else if ts_shape == ps_shape && eps == 0.0 {
                LossFn::SoftCrossEntropy
            } else {
                self.error(
                    Diagnostic::error(
                        "mlx::shape::mismatch",
                        format!(
                            "`cross_entropy` takes the class target or probabilities of the logits' shape {}, but got {}",
                            show_shape(&ps_shape),
                            show_shape(&ts_shape)
                        ),
                    )
                    .with_label(ts, "neither the class labels nor a distribution over the classes")
                    .with_help("give the dataset's `Class` target, or a tensor of class probabilities (`softmax(teacher(x))`)"),
                );
                return Val::Poison;
            }
        } else {
            let f = match name {
                "binary_cross_entropy" => LossFn::BinaryCrossEntropy,
                "bce_with_logits" => LossFn::BceWithLogits,
                "mse" => LossFn::Mse,
                "mae" => LossFn::Mae,
                _ => {
                    let Some(delta) = number(self, "delta", 1.0, f64::MIN_POSITIVE, f64::MAX)
                    else {
                        return Val::Poison;
                    };
                    LossFn::Huber { delta }
                }
            };
            let class_labels = dataset_target == Some((target, true));
            if class_labels && !matches!(f, LossFn::BinaryCrossEntropy | LossFn::BceWithLogits) {
                self.error(
                    Diagnostic::error(
                        "mlx::train::loss",
                        format!("`{name}` measures distance to a number, but the target is a class label"),
                    )
                    .with_label(ts, "class labels")
                    .with_help("for class labels use `cross_entropy(logits, target)`"),
                );
                return Val::Poison;
            }
            if ts_shape.is_empty() || ts_shape == ps_shape || target_is_number {
                // A number broadcasts; equal shapes pair element by element.
            } else if class_labels && ps_shape.len() == 2 && ps_shape[1] == Dim::constant(1) {
                // Labels [B] against one logit a row [B, 1].
                target = b.add(Op::Reshape(target), ps_shape.clone(), ts);
            } else {
                self.error(
                    Diagnostic::error(
                        "mlx::shape::mismatch",
                        format!(
                            "`{name}` compares tensors of one shape, but got {} and {}",
                            show_shape(&ps_shape),
                            show_shape(&ts_shape)
                        ),
                    )
                    .with_label(ps, format!("shape {}", show_shape(&ps_shape)))
                    .with_secondary(ts, format!("shape {}", show_shape(&ts_shape)))
                    .with_help(format!(
                        "reshape the target to the prediction's shape: `reshape(y, {})`, or `flatten` both",
                        show_shape(&ps_shape)
                    )),
                );
                return Val::Poison;
            }
            f
        };
        Val::Tensor(b.add(Op::LossFn { f, pred, target }, Vec::new(), span))
    }

    fn tensor_arg(&mut self, b: &mut Body, v: Val, s: Span, name: &str) -> Option<NodeId> {
        match self.as_tensor(b, v.clone(), s) {
            Some(n) => Some(n),
            None => {
                if !v.is_poison() {
                    self.error(
                        Diagnostic::error(
                            "mlx::type::mismatch",
                            format!("`{name}` takes tensors or numbers, found {}", v.describe()),
                        )
                        .with_label(s, "not a tensor"),
                    );
                }
                None
            }
        }
    }

    fn noise(&mut self, b: &mut Body, args: Vec<CallArg>, span: Span) -> Val {
        let [arg] = args.as_slice() else {
            self.error(
                Diagnostic::error(
                    "mlx::type::arity",
                    format!(
                        "`noise` takes one shape such as `[B, 64]`, but {} arguments were given",
                        args.len()
                    ),
                )
                .with_label(span, "called here"),
            );
            return Val::Poison;
        };
        let Val::List(items) = &arg.value else {
            if !arg.value.is_poison() {
                self.error(
                    Diagnostic::error(
                        "mlx::type::mismatch",
                        format!(
                            "`noise` takes a shape such as `[B, 64]`, found {}",
                            arg.value.describe()
                        ),
                    )
                    .with_label(arg.span, "not a shape"),
                );
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
                    self.error(
                        Diagnostic::error(
                            "mlx::shape::nonpositive",
                            format!("a `noise` dimension must be positive, but is {d}"),
                        )
                        .with_label(*s, "not positive"),
                    );
                    return Val::Poison;
                }
                Val::Poison => return Val::Poison,
                other => {
                    let mut d = Diagnostic::error(
                        "mlx::type::mismatch",
                        format!(
                            "a `noise` dimension must be a whole number{}, found {}",
                            if batch_ok { " or `B`" } else { "" },
                            other.describe()
                        ),
                    )
                    .with_label(*s, "not a whole number");
                    if matches!(other, Val::Float(_)) {
                        d = d.with_help("write it without a decimal point");
                    }
                    self.error(d);
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
