//! Configuration calls (`adam(lr: 1e-3)`, `random(train: 0.7, ...)`, `impute(median)`):
//! one checker for all of them, driven by signature tables, so every one gets the same
//! unknown-name, unknown-argument, type and range diagnostics.

use super::Checker;
use super::error::Unknown;
use super::error::data::{self, BadFigure, Figure};
use super::hir::{Metric, Monitor};
use super::value::Val;
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Float,
    Int,
    Bool,
    Str,
    /// `val.loss`, `val.accuracy`.
    Monitor,
    /// One of these bare words (`median`) or, for `Word`s that allow it, a call.
    Word(&'static [&'static str]),
    /// A number or a string (`impute(constant("unknown"))`).
    Scalar,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    Any,
    /// != 0
    NonZero,
    /// > 0
    Pos,
    /// >= 0
    NonNeg,
    /// [0, 1]
    Unit,
    /// [0, 1)
    UnitOpen,
    /// (0, 1)
    Open01,
    /// (0, 1]
    Unit01,
    AtLeast(i64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    Required,
    /// Optional, no value when absent.
    Absent,
    F(f64),
    I(i64),
    B(bool),
    W(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct P {
    pub name: &'static str,
    pub kind: Kind,
    pub range: Range,
    pub default: Default,
}

pub const fn p(name: &'static str, kind: Kind, range: Range, default: Default) -> P {
    P {
        name,
        kind,
        range,
        default,
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Sig {
    pub name: &'static str,
    pub params: &'static [P],
}

/// A checked configuration call with its arguments by name.
#[derive(Clone, Debug)]
pub struct ConfigCall {
    pub name: String,
    pub span: Span,
    pub sig: Sig,
    pub args: BTreeMap<String, (Val, Span)>,
}

impl ConfigCall {
    pub fn f(&self, k: &str) -> f64 {
        match self.args.get(k) {
            Some((v, _)) => v.as_f64().unwrap_or(f64::NAN),
            None => match self.param(k).map(|p| p.default) {
                Some(Default::F(v)) => v,
                Some(Default::I(v)) => v as f64,
                _ => f64::NAN,
            },
        }
    }

    pub fn opt_f(&self, k: &str) -> Option<f64> {
        self.args
            .get(k)
            .and_then(|(v, _)| v.as_f64())
            .or(match self.param(k).map(|p| p.default) {
                Some(Default::F(v)) => Some(v),
                _ => None,
            })
    }

    pub fn i(&self, k: &str) -> i64 {
        match self.args.get(k) {
            Some((Val::Int(d), _)) => d.as_const().unwrap_or(0),
            Some((v, _)) => v.as_f64().map_or(0, |x| x as i64),
            None => match self.param(k).map(|p| p.default) {
                Some(Default::I(v)) => v,
                _ => 0,
            },
        }
    }

    pub fn b(&self, k: &str) -> bool {
        match self.args.get(k) {
            Some((Val::Bool(Some(v)), _)) => *v,
            _ => matches!(self.param(k).map(|p| p.default), Some(Default::B(true))),
        }
    }

    pub fn word(&self, k: &str) -> Option<String> {
        match self.args.get(k) {
            Some((Val::Symbol(p), _)) => Some(p.join(".")),
            Some((Val::Model { name, .. }, _)) => Some(name.clone()),
            Some(_) => None,
            None => match self.param(k).map(|p| p.default) {
                Some(Default::W(w)) => Some(w.to_string()),
                _ => None,
            },
        }
    }

    pub fn val(&self, k: &str) -> Option<&Val> {
        self.args.get(k).map(|(v, _)| v)
    }

    pub fn span_of(&self, k: &str) -> Span {
        self.args.get(k).map_or(self.span, |(_, s)| *s)
    }

    fn param(&self, k: &str) -> Option<&P> {
        self.sig.params.iter().find(|p| p.name == k)
    }

    /// `adam(lr: 0.001, beta1: 0.9, ...)` with every default filled in.
    pub fn text(&self) -> String {
        if self.sig.params.is_empty() {
            return self.name.clone();
        }
        let parts: Vec<String> = self
            .sig
            .params
            .iter()
            .filter_map(|p| {
                let v = match self.args.get(p.name) {
                    Some((v, _)) => v.text(),
                    None => match p.default {
                        Default::F(x) => crate::syntax::print::float(x),
                        Default::I(x) => x.to_string(),
                        Default::B(x) => x.to_string(),
                        Default::W(w) => w.to_string(),
                        Default::Required | Default::Absent => return None,
                    },
                };
                Some(format!("{}: {v}", p.name))
            })
            .collect();
        format!("{}({})", self.name, parts.join(", "))
    }
}

/// A configuration override for one argument: `--set optimizer.lr=0.01` or a sweep point.
#[derive(Clone, Debug)]
pub struct ArgOverride<'a> {
    pub param: String,
    pub value: &'a ast::Expr,
    pub span: Span,
}

impl Sig {
    /// How to call it: "`adam` takes (lr?, beta1?, ...)", with `?` after optional arguments.
    pub(crate) fn usage(&self) -> String {
        let ps: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.default {
                Default::Required => p.name.to_string(),
                _ => format!("{}?", p.name),
            })
            .collect();
        format!("`{}` takes ({})", self.name, ps.join(", "))
    }
}

impl<'a> Checker<'a> {
    /// Check `e` as a call to one of `sigs` (a bare name is a call without arguments).
    pub(crate) fn config_call(
        &mut self,
        e: &ast::Expr,
        sigs: &[Sig],
        what: &str,
        overrides: &[ArgOverride<'_>],
    ) -> Option<ConfigCall> {
        let (id, args): (&ast::Ident, &[ast::Arg]) = match &e.kind {
            ExprKind::Name(id) => (id, &[]),
            ExprKind::Call { callee, args } => match callee.as_name() {
                Some(id) => (id, args.as_slice()),
                None => {
                    self.not_a_config(e, sigs, what);
                    return None;
                }
            },
            ExprKind::Error => return None,
            _ => {
                self.not_a_config(e, sigs, what);
                return None;
            }
        };
        let Some(sig) = sigs.iter().find(|s| s.name == id.name).copied() else {
            let names: Vec<&str> = sigs.iter().map(|s| s.name).collect();
            self.fail(
                Unknown::new(
                    "mlx::name::unknown",
                    format!("unknown {what} `{}`", id.name),
                    id.span,
                    format!("not a known {what}"),
                    &id.name,
                    names.iter().copied(),
                )
                .otherwise(format!("the {what}s are: {}", names.join(", "))),
            );
            return None;
        };
        let (mut out, mut ok) = self.config_args(sig, what, args);
        for o in overrides {
            let Some(p) = sig.params.iter().find(|p| p.name == o.param).copied() else {
                self.unknown_arg(sig, what, &o.param, o.span);
                ok = false;
                continue;
            };
            let v = self.config_value(o.value, p);
            if v.is_poison() {
                ok = false;
            }
            out.insert(p.name.to_string(), (v, o.value.span));
        }
        for p in sig.params {
            let bad = match out.get(p.name) {
                None if p.default == Default::Required && ok => data::Error::ArgMissing {
                    sig,
                    arg: p.name,
                    span: e.span,
                },
                Some((v, s)) if !self.in_range(v, p.range) => data::Error::ArgRange {
                    arg: p.name,
                    call: sig.name,
                    range: p.range,
                    value: v.text(),
                    span: *s,
                },
                _ => continue,
            };
            self.fail(bad);
            ok = false;
        }
        ok.then(|| ConfigCall {
            name: sig.name.to_string(),
            span: e.span,
            sig,
            args: out,
        })
    }

    /// The arguments written in a call to `sig`, by name, and whether all of them are right
    /// (each wrong one reported).
    fn config_args(
        &mut self,
        sig: Sig,
        what: &str,
        args: &[ast::Arg],
    ) -> (BTreeMap<String, (Val, Span)>, bool) {
        let mut out: BTreeMap<String, (Val, Span)> = BTreeMap::new();
        let mut ok = true;
        let mut pos = 0;
        for a in args {
            let p = match &a.name {
                Some(n) => match sig.params.iter().find(|p| p.name == n.name) {
                    Some(p) => *p,
                    None => {
                        self.unknown_arg(sig, what, &n.name, n.span);
                        ok = false;
                        continue;
                    }
                },
                None => match sig.params.get(pos) {
                    Some(p) => {
                        pos += 1;
                        *p
                    }
                    None => {
                        self.fail(data::Error::ConfigArity { sig, span: a.span });
                        ok = false;
                        continue;
                    }
                },
            };
            if out.contains_key(p.name) {
                self.fail(data::Error::ArgTwice {
                    arg: p.name,
                    call: sig.name,
                    span: a.span,
                });
                ok = false;
                continue;
            }
            let v = self.config_value(&a.value, p);
            if v.is_poison() {
                ok = false;
            }
            out.insert(p.name.to_string(), (v, a.value.span));
        }
        (out, ok)
    }

    fn unknown_arg(&mut self, sig: Sig, what: &str, name: &str, span: Span) {
        let names: Vec<&str> = sig.params.iter().map(|p| p.name).collect();
        let otherwise = if names.is_empty() {
            format!("`{}` takes no arguments", sig.name)
        } else {
            sig.usage()
        };
        self.fail(
            Unknown::new(
                "mlx::arg::unknown",
                format!("the {what} `{}` has no argument `{name}`", sig.name),
                span,
                "unknown argument",
                name,
                names,
            )
            .otherwise(otherwise),
        );
    }

    fn not_a_config(&mut self, e: &ast::Expr, sigs: &[Sig], what: &str) {
        self.fail(data::Error::NotAConfig {
            what: what.to_string(),
            names: sigs.iter().map(|s| s.name).collect(),
            span: e.span,
        });
    }

    /// Evaluate one argument and check its kind.
    pub(crate) fn config_value(&mut self, e: &ast::Expr, p: P) -> Val {
        if let Kind::Word(words) = p.kind {
            // Bare words (`median`) and calls (`constant(0)`) are read by the caller.
            let head = match &e.kind {
                ExprKind::Name(id) => Some(id),
                ExprKind::Call { callee, .. } => callee.as_name(),
                _ => None,
            };
            if let Some(id) = head {
                if words.contains(&id.name.as_str()) {
                    return Val::Symbol(vec![id.name.clone()]);
                }
                self.fail(
                    Unknown::new(
                        "mlx::name::unknown",
                        format!("`{}` is not a valid `{}`", id.name, p.name),
                        id.span,
                        "unknown choice",
                        &id.name,
                        words.iter().copied(),
                    )
                    .otherwise(format!("choose one of: {}", words.join(", "))),
                );
                return Val::Poison;
            }
        }
        let v = self.scalar_expr(e);
        if v.is_poison() {
            return v;
        }
        let ok = match (p.kind, &v) {
            (Kind::Float, Val::Float(_)) => true,
            (Kind::Float, Val::Int(d)) => return Val::Float(d.as_const().map(|n| n as f64)),
            (Kind::Int, Val::Int(d)) => d.is_const(),
            (Kind::Bool, Val::Bool(_)) => true,
            (Kind::Str, Val::Str(_)) => true,
            (Kind::Scalar, Val::Str(_) | Val::Float(_) | Val::Int(_)) => true,
            (Kind::Monitor, Val::Symbol(path)) if self.objective_figures.is_some() => {
                let objs = self.objective_figures.clone().unwrap_or_default();
                return match objective_monitor(path, &objs) {
                    Ok(_) => v.clone(),
                    Err(figure) => {
                        self.fail(data::Error::MonitorNoObjective {
                            figure,
                            span: e.span,
                        });
                        Val::Poison
                    }
                };
            }
            (Kind::Monitor, Val::Symbol(path)) => {
                return match monitor(path) {
                    Ok(_) => v.clone(),
                    Err(figure) => {
                        self.fail(data::Error::MonitorUnknown {
                            figure,
                            span: e.span,
                        });
                        Val::Poison
                    }
                };
            }
            _ => false,
        };
        if !ok {
            self.fail(data::Error::ArgKind {
                arg: p.name,
                kind: p.kind,
                found: v.describe(),
                float_for_int: p.kind == Kind::Int && matches!(v, Val::Float(_)),
                span: e.span,
            });
            return Val::Poison;
        }
        v
    }

    fn in_range(&self, v: &Val, r: Range) -> bool {
        let Some(x) = v.as_f64() else { return true };
        match r {
            Range::Any => true,
            Range::NonZero => x != 0.0,
            Range::Pos => x > 0.0,
            Range::NonNeg => x >= 0.0,
            Range::Unit => (0.0..=1.0).contains(&x),
            Range::UnitOpen => (0.0..1.0).contains(&x),
            Range::Open01 => x > 0.0 && x < 1.0,
            Range::Unit01 => x > 0.0 && x <= 1.0,
            Range::AtLeast(n) => x >= n as f64,
        }
    }
}

pub fn range_text(r: Range) -> String {
    match r {
        Range::Any => "any value".into(),
        Range::NonZero => "other than 0".into(),
        Range::Pos => "greater than 0".into(),
        Range::NonNeg => "at least 0".into(),
        Range::Unit => "in [0, 1]".into(),
        Range::UnitOpen => "in [0, 1)".into(),
        Range::Open01 => "in (0, 1)".into(),
        Range::Unit01 => "in (0, 1]".into(),
        Range::AtLeast(n) => format!("at least {n}"),
    }
}

/// Parse `val.<objective>` / `train.<objective>` in a train with objectives.
pub(crate) fn objective_monitor(
    path: &[String],
    objectives: &[String],
) -> Result<Monitor, BadFigure> {
    let bad = |kind| BadFigure {
        kind,
        objectives: Some(objectives.to_vec()),
    };
    let [split, fig] = path else {
        return Err(bad(Figure::Malformed {
            path: path.join("."),
        }));
    };
    if split != "val" && split != "train" {
        return Err(bad(Figure::NotASplit {
            split: split.clone(),
            figure: fig.clone(),
        }));
    }
    if objectives.contains(fig) {
        return Ok(Monitor {
            split: split.clone(),
            metric: None,
            objective: Some(fig.clone()),
        });
    }
    Err(bad(Figure::Unknown {
        split: split.clone(),
        figure: fig.clone(),
    }))
}

/// Parse `val.loss` / `val.accuracy` / `train.loss`.
pub(crate) fn monitor(path: &[String]) -> Result<Monitor, BadFigure> {
    let bad = |kind| BadFigure {
        kind,
        objectives: None,
    };
    let [split, fig] = path else {
        return Err(bad(Figure::Malformed {
            path: path.join("."),
        }));
    };
    if split != "val" && split != "train" {
        return Err(bad(Figure::NotASplit {
            split: split.clone(),
            figure: fig.clone(),
        }));
    }
    if fig == "loss" {
        return Ok(Monitor {
            split: split.clone(),
            metric: None,
            objective: None,
        });
    }
    match Metric::ALL.iter().find(|m| m.name() == fig) {
        Some(m) if *m != Metric::Confusion => Ok(Monitor {
            split: split.clone(),
            metric: Some(*m),
            objective: None,
        }),
        Some(_) => Err(bad(Figure::Confusion)),
        None => Err(bad(Figure::Unknown {
            split: split.clone(),
            figure: fig.clone(),
        })),
    }
}
