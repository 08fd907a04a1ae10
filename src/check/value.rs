//! Values the checker computes for expressions: tensors (nodes of the graph being built),
//! scalars known or unknown at check time, lists, models and builtins as callables.

use super::dim::Dim;
use super::hir::{Init, NodeId};
use crate::source::Span;

#[derive(Clone, Debug)]
pub enum Val {
    /// A tensor: a node of the instance graph being built.
    Tensor(NodeId),
    /// An integer; every integer is a dimension, possibly symbolic.
    Int(Dim),
    /// A float, `None` when only known to be a float (generic checking).
    Float(Option<f64>),
    Bool(Option<bool>),
    Str(String),
    List(Vec<(Val, Span)>),
    /// A model, with its hyperparameter arguments if a call gave them.
    Model {
        name: String,
        hyper: Option<Vec<CallArg>>,
        span: Span,
    },
    /// A primitive function (`exp`, `sum`, `conv`, ...).
    Builtin(String),
    /// A model of a train's `models` block (`g`), inside an objective or `samples`.
    Slot(String),
    Init(Init),
    /// A bare name that means something only in configuration (`median`, `val.loss`):
    /// checked by whoever reads it.
    Symbol(Vec<String>),
    /// An error was already reported for this value; stay quiet about it.
    Poison,
}

#[derive(Clone, Debug)]
pub struct CallArg {
    pub name: Option<(String, Span)>,
    pub value: Val,
    pub span: Span,
    /// Where the value was written, when the argument only passes it on (a bare name bound
    /// to a hyperparameter given at a call site, by `--set` or by a sweep point): errors about
    /// the value point there.
    pub origin: Option<Span>,
}

impl Val {
    /// A number, flag or text (what a hyperparameter holds), not a tensor or a function.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Val::Int(_) | Val::Float(_) | Val::Bool(_) | Val::Str(_)
        )
    }

    /// What kind of value this is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Val::Tensor(_) => "a tensor".into(),
            Val::Int(d) => match d.as_const() {
                Some(n) => format!("the integer {n}"),
                None => format!("the integer `{d}`"),
            },
            Val::Float(Some(v)) => format!("the float {v}"),
            Val::Float(None) => "a float".into(),
            Val::Bool(_) => "a boolean".into(),
            Val::Str(s) => format!("the string \"{s}\""),
            Val::List(_) => "a list".into(),
            Val::Model { name, .. } => format!("the model `{name}`"),
            Val::Builtin(n) => format!("the function `{n}`"),
            Val::Slot(n) => format!("the model `{n}` of this train"),
            Val::Init(_) => "an initializer".into(),
            Val::Symbol(p) => format!("`{}`", p.join(".")),
            Val::Poison => "an invalid value".into(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Float(v) => *v,
            Val::Int(d) => d.as_const().map(|n| n as f64),
            _ => None,
        }
    }

    pub fn is_poison(&self) -> bool {
        matches!(self, Val::Poison)
    }

    /// Text for lock files and messages: `32`, `0.001`, `"NA"`, `[accuracy, f1]`.
    pub fn text(&self) -> String {
        match self {
            Val::Int(d) => d.to_string(),
            Val::Float(Some(v)) => crate::syntax::print::float(*v),
            Val::Float(None) => "?".into(),
            Val::Bool(Some(b)) => b.to_string(),
            Val::Bool(None) => "?".into(),
            Val::Str(s) => format!("{s:?}"),
            Val::List(xs) => {
                let v: Vec<String> = xs.iter().map(|(x, _)| x.text()).collect();
                format!("[{}]", v.join(", "))
            }
            Val::Model { name, hyper, .. } => match hyper {
                None => name.clone(),
                Some(args) => format!("{name}({})", args_text(args)),
            },
            Val::Builtin(n) | Val::Slot(n) => n.clone(),
            Val::Init(i) => format!("{i:?}"),
            Val::Symbol(p) => p.join("."),
            Val::Tensor(_) => "<tensor>".into(),
            Val::Poison => "<error>".into(),
        }
    }
}

pub fn args_text(args: &[CallArg]) -> String {
    args.iter()
        .map(|a| match &a.name {
            Some((n, _)) => format!("{n}: {}", a.value.text()),
            None => a.value.text(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
