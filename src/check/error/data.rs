//! The checker's mistakes in datasets, features, configuration values and patterns, as data, and their diagnostics.

use crate::diagnostics::Diagnostic;
use crate::source::Span;

const TYPE: &str = "mlx::type::mismatch";
const RANGE: &str = "mlx::value::range";

/// A mistake in a dataset, a feature, a configuration call or a shape pattern.
#[derive(Debug)]
pub(crate) enum Error {
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
fn pattern(at: PatternAt, code: &'static str, message: String, label: String) -> Diagnostic {
    let d = error(code, message)
        .with_label(at.span, label)
        .with_secondary(at.origin, format!("this has shape {}", at.shape));
    match at.declared_at {
        Some(s) => d.with_secondary(s, "declared here"),
        None => d,
    }
}
