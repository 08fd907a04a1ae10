//! Checking: `ast::Module`s -> `hir::Program` plus diagnostics. Resolves every name, evaluates
//! constants, instantiates models with shapes, reads the data schema (through `SchemaSource`,
//! the only door to I/O) and checks every train and sweep point.

pub mod builtins;
pub mod config;
pub mod dataset;
pub mod dim;
mod error;
mod expr;
mod features;
pub mod hir;
mod init;
pub mod memory;
pub mod model;
pub(crate) mod objective;
mod pattern;
mod scan;
pub mod sweep;
pub mod tables;
pub mod train;
mod train_model;
pub mod trees;
pub mod value;

use crate::data::schema::{Schema, SchemaError};
use crate::diagnostics::Diagnostic;
use crate::source::{FileId, SourceMap, Span};
use crate::syntax::ast;
use error::Unknown;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Reads the schema of a data source (the driver's file I/O, or a fake in tests), and what
/// the machine offers: the checker's one door to the world outside the program.
pub trait SchemaSource {
    fn schema(&mut self, loader: &hir::Loader) -> Result<Arc<Schema>, SchemaError>;

    /// The memory a train may use, in bytes; `None`: no limit (trains are not sized).
    fn memory_limit(&mut self) -> Option<u64> {
        None
    }
}

/// `--set path=value`: overrides a `const` or a train entry (`epochs`, `optimizer.lr`,
/// `model.hidden`). The value is parsed mlx source; its span points into a virtual file.
#[derive(Clone, Debug)]
pub struct Override {
    pub path: Vec<String>,
    pub value: ast::Expr,
    pub span: Span,
}

/// Everything the checker looks at.
pub struct Input<'a> {
    pub sources: &'a SourceMap,
    pub modules: &'a [ast::Module],
    /// The file given on the command line; its trains and sweeps are the ones `mlx run` runs.
    pub root: FileId,
    pub overrides: &'a [Override],
}

/// Check a whole program.
pub fn check(input: &Input<'_>, schemas: &mut dyn SchemaSource) -> (hir::Program, Vec<Diagnostic>) {
    let mut c = Checker::new(input, schemas);
    c.run();
    let diags = c.finish_diagnostics();
    (c.program, diags)
}

/// Check a program, then apply model `name` (hyperparameters at their defaults) to an input
/// of the concrete `shape`. Returns the program and the instance, for tests and tools that
/// work on one model outside any train.
pub fn instantiate(
    input: &Input<'_>,
    schemas: &mut dyn SchemaSource,
    name: &str,
    shape: &[usize],
) -> (hir::Program, Option<hir::InstanceId>, Vec<Diagnostic>) {
    let mut c = Checker::new(input, schemas);
    c.run();
    let inst = match c.items.get(name).copied() {
        Some((ItemRef::Model(m), _)) => {
            let dims = shape
                .iter()
                .map(|d| dim::Dim::constant(*d as i64))
                .collect();
            let req = model::Request {
                model: m,
                hyper: None,
                inputs: vec![(dims, m.name.span)],
                expected: None,
                call_span: m.name.span,
                generic: false,
                context: None,
                note: None,
            };
            c.instantiate(req).map(|(id, _)| id)
        }
        _ => {
            c.fail(error::model::Error::NoModel {
                name: name.to_string(),
            });
            None
        }
    };
    let diags = c.finish_diagnostics();
    (c.program, inst, diags)
}

#[derive(Clone, Copy)]
pub(crate) enum ItemRef<'a> {
    Model(&'a ast::Model),
    Dataset(&'a ast::Dataset),
    Train(&'a ast::Train),
    Sweep(&'a ast::Sweep),
    Const(&'a ast::Const),
}

impl ItemRef<'_> {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ItemRef::Model(_) => "model",
            ItemRef::Dataset(_) => "dataset",
            ItemRef::Train(_) => "train",
            ItemRef::Sweep(_) => "sweep",
            ItemRef::Const(_) => "const",
        }
    }

    pub(crate) fn name_span(&self) -> Span {
        match self {
            ItemRef::Model(m) => m.name.span,
            ItemRef::Dataset(d) => d.name.span,
            ItemRef::Train(t) => t.name.span,
            ItemRef::Sweep(s) => s.name.span,
            ItemRef::Const(c) => c.name.span,
        }
    }
}

/// One level of the model-instantiation stack, for attributing errors.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    /// The call (or train entry) that caused this instantiation.
    pub call_span: Span,
    pub model: String,
    /// A label added to errors in user code found while this frame is active (train context).
    pub context: Option<String>,
    /// A note added to those errors (what the data gives the model).
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum ConstState {
    Evaluating,
    Done(value::Val),
}

pub(crate) struct Checker<'a> {
    pub sources: &'a SourceMap,
    pub input: &'a Input<'a>,
    pub schemas: &'a mut dyn SchemaSource,
    pub items: HashMap<String, (ItemRef<'a>, FileId)>,
    /// Names declared by items that failed to parse: never "unknown".
    pub broken: HashSet<String>,
    pub consts: HashMap<String, ConstState>,
    /// The constants being evaluated, outermost first (to name a cycle's members).
    const_stack: Vec<String>,
    pub diags: Vec<Diagnostic>,
    seen: HashSet<(&'static str, Span)>,
    pub frames: Vec<Frame>,
    pub program: hir::Program,
    pub memo: HashMap<String, hir::InstanceId>,
    pub dataset_plans: HashMap<String, Option<usize>>,
    /// Counts errors so callers can tell whether a sub-check failed.
    pub error_count: usize,
    /// While a train with objectives is checked: its objectives, the figures a monitor may
    /// name (`val.<objective>`).
    pub objective_figures: Option<Vec<String>>,
}

impl<'a> Checker<'a> {
    fn new(input: &'a Input<'a>, schemas: &'a mut dyn SchemaSource) -> Checker<'a> {
        Checker {
            sources: input.sources,
            input,
            schemas,
            items: HashMap::new(),
            broken: HashSet::new(),
            consts: HashMap::new(),
            const_stack: Vec::new(),
            diags: Vec::new(),
            seen: HashSet::new(),
            frames: Vec::new(),
            program: hir::Program::default(),
            memo: HashMap::new(),
            dataset_plans: HashMap::new(),
            error_count: 0,
            objective_figures: None,
        }
    }

    fn run(&mut self) {
        self.collect_items();
        self.check_overrides_paths();
        // Constants, then datasets (they read the data schema), then every model on its own
        // (generic shapes), then trains (concrete shapes from the data), then sweeps.
        let mut names: Vec<(String, ItemRef<'a>, FileId)> = self
            .items
            .iter()
            .map(|(n, (r, f))| (n.clone(), *r, *f))
            .collect();
        names.sort_by_key(|(_, r, _)| r.name_span());
        for (name, item, _) in &names {
            if let ItemRef::Const(_) = item {
                self.const_value(name, item.name_span());
            }
        }
        for (name, item, _) in &names {
            if let ItemRef::Dataset(_) = item {
                self.dataset_plan(name);
            }
        }
        for (_, item, file) in &names {
            if let ItemRef::Model(m) = item
                && !self.sources.get(*file).is_stdlib()
            {
                self.check_model_generic(m);
            }
        }
        for (name, item, file) in &names {
            if let ItemRef::Train(t) = item
                && let Some(plan) = self.train_plan(t, &[])
            {
                if *file == self.input.root {
                    self.program.root_trains.push(name.clone());
                }
                self.program.trains.push(plan);
            }
        }
        for (name, item, file) in &names {
            if let ItemRef::Sweep(s) = item
                && let Some(plan) = self.sweep_plan(s)
            {
                if *file == self.input.root {
                    self.program.root_sweeps.push(name.clone());
                }
                self.program.sweeps.push(plan);
            }
        }
        let mut trains = std::mem::take(&mut self.program.root_trains);
        trains.sort_by_key(|n| self.item_order(n));
        self.program.root_trains = trains;
        let mut sweeps = std::mem::take(&mut self.program.root_sweeps);
        sweeps.sort_by_key(|n| self.item_order(n));
        self.program.root_sweeps = sweeps;
    }

    fn item_order(&self, name: &str) -> Span {
        self.items
            .get(name)
            .map_or(Span::default(), |(r, _)| r.name_span())
    }

    fn collect_items(&mut self) {
        for m in self.input.modules {
            for (name, _) in &m.broken {
                if let Some(n) = name {
                    self.broken.insert(n.clone());
                }
            }
            for item in &m.items {
                let r = match item {
                    ast::Item::Use(_) => continue,
                    ast::Item::Const(c) => ItemRef::Const(c),
                    ast::Item::Dataset(d) => ItemRef::Dataset(d),
                    ast::Item::Model(md) => ItemRef::Model(md),
                    ast::Item::Train(t) => ItemRef::Train(t),
                    ast::Item::Sweep(s) => ItemRef::Sweep(s),
                };
                let Some(name) = item.name() else { continue };
                if let Some((prev, prev_file)) = self.items.get(&name.name) {
                    let where_ = if *prev_file == m.file {
                        String::new()
                    } else {
                        format!(" in {}", self.sources.get(*prev_file).name())
                    };
                    let e = error::model::Error::DefinedTwice {
                        name: name.name.clone(),
                        span: name.span,
                        kind: r.kind(),
                        first: prev.name_span(),
                        first_kind: prev.kind(),
                        where_,
                    };
                    self.fail(e);
                    continue;
                }
                self.items.insert(name.name.clone(), (r, m.file));
            }
        }
    }

    /// Every `--set` path names something that exists.
    fn check_overrides_paths(&mut self) {
        let train_keys = tables::ENTRY_KEYS;
        for o in self.input.overrides {
            let Some(head) = o.path.first() else { continue };
            if o.path.len() == 1 && matches!(self.items.get(head), Some((ItemRef::Const(_), _))) {
                continue;
            }
            if train_keys.contains(&head.as_str()) {
                continue;
            }
            // Settings of trains with objectives; each such train checks its own paths.
            if matches!(head.as_str(), "models" | "objective" | "samples") {
                continue;
            }
            let mut cands: Vec<&str> = train_keys.to_vec();
            let consts: Vec<String> = self
                .items
                .iter()
                .filter(|(_, (r, _))| matches!(r, ItemRef::Const(_)))
                .map(|(n, _)| n.clone())
                .collect();
            cands.extend(consts.iter().map(String::as_str));
            let message = format!(
                "`--set {}` names neither a const nor a train entry",
                o.path.join(".")
            );
            let otherwise = format!(
                "train entries are {}; constants are those declared with `const`",
                train_keys.join(", ")
            );
            let u = Unknown::new(
                "mlx::set::unknown",
                message,
                o.span,
                "unknown path",
                head,
                cands,
            );
            self.fail(u.otherwise(otherwise));
        }
    }

    /// The value of a `const`, with `--set` applied.
    pub(crate) fn const_value(&mut self, name: &str, use_span: Span) -> value::Val {
        match self.consts.get(name) {
            Some(ConstState::Done(v)) => return v.clone(),
            Some(ConstState::Evaluating) => {
                let from = self.const_stack.iter().position(|n| n == name).unwrap_or(0);
                let mut chain = self.const_stack[from..].to_vec();
                chain.push(name.to_string());
                self.fail(error::model::Error::ConstCycle {
                    name: name.to_string(),
                    chain,
                    span: use_span,
                });
                return value::Val::Poison;
            }
            None => {}
        }
        let Some((ItemRef::Const(c), _)) = self.items.get(name).copied() else {
            return value::Val::Poison;
        };
        self.consts.insert(name.to_string(), ConstState::Evaluating);
        self.const_stack.push(name.to_string());
        let overridden = self
            .input
            .overrides
            .iter()
            .rev()
            .find(|o| o.path.len() == 1 && o.path[0] == name);
        let expr = overridden.map_or(&c.value, |o| &o.value);
        let mut v = self.scalar_expr(expr);
        if let Some(ty) = &c.ty {
            v = self.coerce_scalar(v, ty, expr.span);
        }
        self.const_stack.pop();
        self.consts
            .insert(name.to_string(), ConstState::Done(v.clone()));
        v
    }

    // ---- diagnostics ----

    /// Report an error, attributing errors inside stdlib bodies to the user's call site and
    /// dropping repeats of the same error at the same place.
    pub(crate) fn error(&mut self, mut d: Diagnostic) {
        if let Some(primary) = d.primary_span()
            && self.is_stdlib(primary.file)
        {
            let site = self
                .frames
                .iter()
                .rev()
                .find(|f| !self.is_stdlib(f.call_span.file))
                .cloned();
            let inner = self.frames.last().map(|f| f.model.clone());
            let primary_msg = d
                .labels
                .iter()
                .find(|l| l.primary)
                .map(|l| l.message.clone())
                .unwrap_or_default();
            d.labels.retain(|l| !l.primary);
            self.stdlib_labels_to_notes(&mut d);
            if let Some(site) = site {
                let layer = site.model.clone();
                d.labels.insert(
                    0,
                    crate::diagnostics::Label {
                        span: site.call_span,
                        message: if primary_msg.is_empty() {
                            format!("in this `{layer}` layer")
                        } else {
                            format!("in this `{layer}` layer: {primary_msg}")
                        },
                        primary: true,
                    },
                );
                if let Some(inner) = inner
                    && inner != layer
                {
                    d = d.with_note(format!(
                        "the check failed inside `{inner}`, called by `{layer}`"
                    ));
                }
            }
        } else {
            self.stdlib_labels_to_notes(&mut d);
        }
        // Errors found while checking a model for a train (or at a sweep point) say so: a
        // label where the context has its own place, a note where it would sit on the error.
        if let Some(primary) = d.primary_span() {
            let contexts: Vec<(Span, String, Option<String>)> = self
                .frames
                .iter()
                .filter_map(|f| {
                    f.context
                        .as_ref()
                        .map(|c| (f.call_span, c.clone(), f.note.clone()))
                })
                .collect();
            for (s, c, note) in contexts {
                if s == primary || d.labels.iter().any(|l| l.span == s) {
                    d = d.with_note(c);
                } else {
                    d = d.with_secondary(s, c);
                }
                if let Some(n) = note {
                    d = d.with_note(n);
                }
            }
        }
        let key = (d.code, d.primary_span().unwrap_or_default());
        if d.primary_span().is_some() && !self.seen.insert(key) {
            return;
        }
        if d.is_error() {
            self.error_count += 1;
        }
        self.diags.push(d);
    }

    /// Users see their own source: a secondary label inside the stdlib becomes a note quoting
    /// the stdlib text it pointed at.
    fn stdlib_labels_to_notes(&self, d: &mut Diagnostic) {
        let (keep, moved): (Vec<_>, Vec<_>) = std::mem::take(&mut d.labels)
            .into_iter()
            .partition(|l| l.primary || !self.is_stdlib(l.span.file));
        d.labels = keep;
        for l in moved {
            let file = self.sources.get(l.span.file);
            let text = file
                .snippet(l.span)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            d.notes.push(format!(
                "{} ({}): `{text}`",
                l.message,
                file.name().trim_matches(['<', '>'])
            ));
        }
    }

    pub(crate) fn is_stdlib(&self, file: FileId) -> bool {
        (file.0 as usize) < self.sources.len() && self.sources.get(file).is_stdlib()
    }

    fn finish_diagnostics(&mut self) -> Vec<Diagnostic> {
        let mut d = std::mem::take(&mut self.diags);
        // Source order, so a file's errors read top to bottom.
        d.sort_by_key(|x| x.primary_span().map(|s| (s.file, s.start)));
        d
    }

    /// "unknown name" with a did-you-mean over the given candidates.
    pub(crate) fn unknown_name(
        &mut self,
        what: &str,
        name: &ast::Ident,
        candidates: &[String],
        extra_help: Option<String>,
    ) {
        if self.broken.contains(&name.name) {
            return;
        }
        let label = if what == "name" {
            "not defined".to_string()
        } else {
            format!("no {what} of this name")
        };
        let u = Unknown::new(
            "mlx::name::unknown",
            format!("unknown {what} `{}`", name.name),
            name.span,
            label,
            &name.name,
            candidates.iter().map(String::as_str),
        );
        self.fail(match extra_help {
            Some(h) => u.otherwise(h),
            None => u,
        });
    }

    pub(crate) fn item_names(&self, kind: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .items
            .iter()
            .filter(|(_, (r, _))| r.kind() == kind)
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests;
