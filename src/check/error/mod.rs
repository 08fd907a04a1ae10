//! The checker's errors as data: what went wrong (spans, names, values) as enum variants, and
//! `Error::diagnostic`, the one place they become `Diagnostic`s (code, message, labels, help).
//! The shapes every area repeats live here (an unknown name with "did you mean", an entry set
//! twice); each area's own mistakes are the variants of `data::Error` (datasets, features,
//! configuration values, patterns), `model::Error` (models, expressions, builtins),
//! `train::Error` (trains of one model, tree models) and `objective::Error` (trains of several
//! models, objectives, sweeps).

pub(crate) mod data;
pub(crate) mod model;
pub(crate) mod objective;
pub(crate) mod train;

use super::Checker;
use crate::diagnostics::Diagnostic;
use crate::source::Span;

/// A mistake the checker found in a program (or a warning about one).
#[derive(Debug)]
pub(crate) enum Error {
    /// A name or key outside a known list: the headline, and help that names the closest
    /// candidate ("did you mean `x`?") or else lists what is allowed.
    Unknown(Unknown),
    /// A train or objective entry given twice.
    EntryTwice {
        key: String,
        span: Span,
        first: Span,
    },
    Data(data::Error),
    Model(model::Error),
    Train(train::Error),
    Objective(objective::Error),
}

/// An unknown name or key (`mlx::name::unknown`, `mlx::arg::unknown`, ...).
#[derive(Debug)]
pub(crate) struct Unknown {
    pub code: &'static str,
    /// The headline, e.g. "`scan` has no argument `ax`".
    pub message: String,
    pub span: Span,
    pub label: String,
    /// The name as written.
    pub name: String,
    /// The names that would have been accepted.
    pub known: Vec<String>,
    /// The help when no candidate is close (usually the list of what is allowed); `None`: no
    /// help then.
    pub otherwise: Option<String>,
}

impl Unknown {
    pub(crate) fn new(
        code: &'static str,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
        name: &str,
        known: impl IntoIterator<Item = impl Into<String>>,
    ) -> Unknown {
        Unknown {
            code,
            message: message.into(),
            span,
            label: label.into(),
            name: name.to_string(),
            known: known.into_iter().map(Into::into).collect(),
            otherwise: None,
        }
    }

    /// The help given when no known name is close.
    pub(crate) fn otherwise(mut self, help: impl Into<String>) -> Unknown {
        self.otherwise = Some(help.into());
        self
    }
}

impl Error {
    /// The diagnostic that reports this mistake: the checker's one conversion.
    pub(crate) fn diagnostic(self) -> Diagnostic {
        match self {
            Error::Unknown(u) => {
                let d = Diagnostic::error(u.code, u.message).with_label(u.span, u.label);
                let known = u.known.iter().map(String::as_str);
                match u.otherwise {
                    Some(help) => d.suggest_or(&u.name, known, help),
                    None => d.suggest(&u.name, known),
                }
            }
            Error::EntryTwice { key, span, first } => Diagnostic::error(
                "mlx::name::duplicate",
                format!("entry `{key}` is set twice"),
            )
            .with_label(span, "set again here")
            .with_secondary(first, "first set here"),
            Error::Data(e) => e.diagnostic(),
            Error::Model(e) => e.diagnostic(),
            Error::Train(e) => e.diagnostic(),
            Error::Objective(e) => e.diagnostic(),
        }
    }
}

/// A diagnostic with its code and message (the start of every conversion).
fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(code, message)
}

/// A diagnostic with one label at `span`.
fn at(code: &'static str, message: impl Into<String>, span: Span, label: &str) -> Diagnostic {
    error(code, message).with_label(span, label)
}

impl From<Unknown> for Error {
    fn from(u: Unknown) -> Error {
        Error::Unknown(u)
    }
}

impl From<data::Error> for Error {
    fn from(e: data::Error) -> Error {
        Error::Data(e)
    }
}

impl From<model::Error> for Error {
    fn from(e: model::Error) -> Error {
        Error::Model(e)
    }
}

impl From<train::Error> for Error {
    fn from(e: train::Error) -> Error {
        Error::Train(e)
    }
}

impl From<objective::Error> for Error {
    fn from(e: objective::Error) -> Error {
        Error::Objective(e)
    }
}

impl Checker<'_> {
    /// Report a mistake (through `Checker::error`, which moves labels inside the standard
    /// library to the user's call site and drops repeats).
    pub(crate) fn fail(&mut self, e: impl Into<Error>) {
        self.error(e.into().diagnostic());
    }
}
