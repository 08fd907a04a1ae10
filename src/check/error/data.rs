//! The checker's mistakes in datasets, features, configuration values and patterns, as data, and their diagnostics.

use crate::check::config::{Kind, Range, Sig, range_text};
use crate::check::model::plural;
use crate::diagnostics::Diagnostic;
use crate::source::Span;

const TYPE: &str = "mlx::type::mismatch";
const RANGE: &str = "mlx::value::range";

/// A mistake in a dataset, a feature, a configuration call or a shape pattern.
#[derive(Debug)]
pub(crate) enum Error {
    // ---- configuration calls ----
    /// More positional arguments than `sig` takes.
    ConfigArity { sig: Sig, span: Span },
    /// An argument given twice.
    ArgTwice {
        arg: &'static str,
        call: &'static str,
        span: Span,
    },
    /// A required argument missing.
    ArgMissing {
        sig: Sig,
        arg: &'static str,
        span: Span,
    },
    /// An argument outside its range (`value` as written out).
    ArgRange {
        arg: &'static str,
        call: &'static str,
        range: Range,
        value: String,
        span: Span,
    },
    /// Something other than a configuration call where one of `names` belongs.
    NotAConfig {
        what: String,
        names: Vec<&'static str>,
        span: Span,
    },
    /// An argument of the wrong kind (`found` described; `float_for_int`: a decimal where a
    /// whole number belongs).
    ArgKind {
        arg: &'static str,
        kind: Kind,
        found: String,
        float_for_int: bool,
        span: Span,
    },
    /// A monitored figure that names no objective of a train with objectives.
    MonitorNoObjective {
        message: String,
        help: String,
        span: Span,
    },
    /// A monitored figure mlx does not report.
    MonitorUnknown {
        message: String,
        help: String,
        span: Span,
    },

    // ---- shape patterns and dimensions ----
    /// A shape of the wrong rank for a pattern (see `PatternAt`).
    PatternRank {
        at: Box<PatternAt>,
        expected: String,
        found: usize,
    },
    /// A shape whose axis `index` is `found`, not the pattern's `expected`.
    PatternDim {
        at: Box<PatternAt>,
        index: usize,
        expected: String,
        found: String,
    },
    /// Dimension variables with no value.
    DimUnbound { name: String, span: Span },
    /// A dimension divided by zero.
    DimDivByZero { span: Span },
    /// An operator other than `+ - * /` in a dimension.
    DimOperator { op: &'static str, span: Span },
    /// A dimension that is not an integer expression.
    DimNotInteger { span: Span },
    /// A name used as a dimension whose value is not an integer (`found` described).
    DimValueType {
        name: String,
        found: String,
        span: Span,
    },
    /// A dimension below 1; its labels are placed by `Checker::at_origin`.
    DimNonPositive { dim: String },
    /// A parameter without a tensor type.
    ParamNotTensor { span: Span },
    /// `...` with nothing bound to it.
    RestUnbound { span: Span },

    // ---- memory ----
    /// A train whose step `needs` more memory than the machine `has` (`largest`: what takes
    /// most).
    TrainMemory {
        train: String,
        needs: String,
        has: String,
        largest: String,
        span: Span,
    },
}

/// Where a shape met a pattern: `what` expects `declared` at `span`; the shape (shown) comes
/// from `origin`; `declared_at`: the pattern's type, when it is worth pointing at.
#[derive(Debug)]
pub(crate) struct PatternAt {
    pub what: String,
    pub declared: String,
    pub shape: String,
    pub span: Span,
    pub origin: Span,
    pub declared_at: Option<Span>,
}

/// An error diagnostic (every mistake here is one, but `RestSelectsNothing`, a warning).
fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(code, message)
}

impl Error {
    /// The diagnostic that reports this mistake: the same code, message, labels, help and
    /// notes, whatever the site that found it.
    pub(crate) fn diagnostic(self) -> Diagnostic {
        match self {
            // ---- configuration calls ----
            Error::ConfigArity { sig, span } => error(
                "mlx::type::arity",
                format!(
                    "`{}` takes {} argument{}",
                    sig.name,
                    sig.params.len(),
                    plural(sig.params.len())
                ),
            )
            .with_label(span, "extra argument")
            .with_help(sig.usage()),
            Error::ArgTwice { arg, call, span } => error(
                "mlx::arg::duplicate",
                format!("argument `{arg}` of `{call}` is given twice"),
            )
            .with_label(span, "given again"),
            Error::ArgMissing { sig, arg, span } => error(
                "mlx::arg::missing",
                format!("`{}` needs its argument `{arg}`", sig.name),
            )
            .with_label(span, format!("`{arg}` is missing"))
            .with_help(sig.usage()),
            Error::ArgRange {
                arg,
                call,
                range,
                value,
                span,
            } => error(
                RANGE,
                format!(
                    "`{arg}` of `{call}` must be {}, but is {value}",
                    range_text(range)
                ),
            )
            .with_label(span, format!("{value} is out of range")),
            Error::NotAConfig { what, names, span } => {
                error(TYPE, format!("expected a {what}"))
                    .with_label(span, format!("not a {what}"))
                    .with_help(format!("the {what}s are: {}", names.join(", ")))
            }
            Error::ArgKind {
                arg,
                kind,
                found,
                float_for_int,
                span,
            } => arg_kind(arg, kind, &found, float_for_int, span),
            Error::MonitorNoObjective {
                message,
                help,
                span,
            } => error("mlx::train::monitor", message)
                .with_label(span, "names no objective")
                .with_help(help),
            Error::MonitorUnknown {
                message,
                help,
                span,
            } => error("mlx::name::unknown", message)
                .with_label(span, "not a figure mlx reports")
                .with_help(help),

            // ---- shape patterns and dimensions ----
            Error::PatternRank {
                at,
                expected,
                found,
            } => {
                let message = format!(
                    "{} expects a tensor of rank {expected} (`{}`), but got rank {found} {}",
                    at.what, at.declared, at.shape
                );
                let label = format!("expects `{}`", at.declared);
                pattern(*at, "mlx::shape::rank", message, label)
            }
            Error::PatternDim {
                at,
                index,
                expected,
                found,
            } => {
                let message = format!(
                    "{} expects `{}`, but axis {index} of {} is {found}, not {expected}",
                    at.what, at.declared, at.shape
                );
                let label = format!("expects axis {index} to be {expected}");
                pattern(*at, "mlx::shape::mismatch", message, label)
            }
            Error::DimUnbound { name, span } => error(
                "mlx::shape::unbound",
                format!("dimension `{name}` is not bound"),
            )
            .with_label(span, format!("`{name}` has no value here"))
            .with_help("a dimension variable gets its value from the input type (`x: Float[B, F]`), or is a hyperparameter or `const`"),
            Error::DimDivByZero { span } => error(RANGE, "division by zero in a dimension")
                .with_label(span, "divides by zero"),
            Error::DimOperator { op, span } => {
                error(TYPE, format!("`{op}` cannot be used in a dimension"))
                    .with_label(span, "dimensions use + - * / only")
            }
            Error::DimNotInteger { span } => error(
                TYPE,
                "a dimension must be an integer expression",
            )
            .with_label(span, "not a dimension")
            .with_help("dimensions are integers, names of integer hyperparameters or constants, capitalised dimension variables, or arithmetic on these"),
            Error::DimValueType { name, found, span } => error(
                TYPE,
                format!("`{name}` is {found}, but a dimension must be an integer"),
            )
            .with_label(span, "used as a dimension here"),
            Error::DimNonPositive { dim } => error(
                "mlx::shape::nonpositive",
                format!("a dimension must be at least 1, but this one is {dim}"),
            ),
            Error::ParamNotTensor { span } => error(
                TYPE,
                "a parameter must have a tensor type such as `Float[In, Out]`",
            )
            .with_label(span, "not a tensor type"),
            Error::RestUnbound { span } => error("mlx::shape::unbound", "`...` is not bound here")
                .with_label(span, "no input matched `...`"),

            // ---- memory ----
            Error::TrainMemory {
                train,
                needs,
                has,
                largest,
                span,
            } => error(
                "mlx::train::memory",
                format!("train `{train}` needs {needs}; this machine has {has}"),
            )
            .with_label(span, format!("most of it is {largest}"))
            .with_help("use a smaller model or batch, or set MLX_MEMORY_LIMIT (bytes) if this machine can hold it"),
        }
    }
}

/// What a streamed dataset cannot do, labelled where it is asked for and where it is streamed.
/// A preprocessing step where it does not fit.
fn arg_kind(arg: &str, kind: Kind, found: &str, float_for_int: bool, span: Span) -> Diagnostic {
    let want = match kind {
        Kind::Float => "a number",
        Kind::Int => "a whole number",
        Kind::Bool => "`true` or `false`",
        Kind::Str => "a string",
        Kind::Monitor => "a figure such as `val.loss` or `val.accuracy`",
        Kind::Word(_) => "a name",
        Kind::Scalar => "a number or a string",
    };
    let d = error(TYPE, format!("`{arg}` must be {want}, found {found}"))
        .with_label(span, format!("this is {found}"));
    if float_for_int {
        d.with_help("write a whole number, without a decimal point")
    } else {
        d
    }
}

fn pattern(at: PatternAt, code: &'static str, message: String, label: String) -> Diagnostic {
    let d = error(code, message)
        .with_label(at.span, label)
        .with_secondary(at.origin, format!("this has shape {}", at.shape));
    match at.declared_at {
        Some(s) => d.with_secondary(s, "declared here"),
        None => d,
    }
}
