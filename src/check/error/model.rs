//! The checker's mistakes in models, expressions and builtins, as data, and their diagnostics.

use super::super::dim::{Dim, show_shape};
use super::super::hir::NodeId;
use super::super::init::INIT_NAMES;
use super::super::model::{Body, plural};
use super::at;
use crate::diagnostics::Diagnostic;
use crate::source::Span;

/// An operand of a shape rule: where it was produced and its shape, labelled "this has shape
/// [..]".
#[derive(Debug)]
pub(crate) struct Shaped {
    pub span: Span,
    pub shape: Vec<Dim>,
}

impl Shaped {
    /// Node `n` of body `b`, at the place that produced it.
    pub(crate) fn of(b: &Body, n: NodeId) -> Shaped {
        Shaped {
            span: b.origin(n),
            shape: b.shape(n).to_vec(),
        }
    }

    fn label(&self) -> String {
        format!("this has shape {}", show_shape(&self.shape))
    }
}

/// Where a mistake about a value is labelled: where the value was written (or used, when it
/// was written nowhere else), and what else to point at.
#[derive(Debug)]
pub(crate) struct Placed {
    pub at: Span,
    pub reach: Option<Reach>,
}

/// The secondary place of a value written apart from where it was used.
#[derive(Debug)]
pub(crate) enum Reach {
    /// The value reached a stdlib layer, called by the user at this span (with its name).
    Layer(Span, String),
    /// The value was used here, in the user's code.
    Use(Span),
}

impl Placed {
    /// Label `d`: `message` on the value, `used` on its use (when that has its own place).
    pub(crate) fn label(self, d: Diagnostic, message: String, used: String) -> Diagnostic {
        let d = d.with_label(self.at, message);
        match self.reach {
            None => d,
            Some(Reach::Layer(s, model)) => {
                d.with_secondary(s, format!("reaches this `{model}` layer"))
            }
            Some(Reach::Use(s)) => d.with_secondary(s, used),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Error {
    // ---- top-level items and constants ----
    /// Two top-level items with one name (`where_` names the first one's file when another).
    DefinedTwice {
        name: String,
        span: Span,
        kind: &'static str,
        first: Span,
        first_kind: &'static str,
        where_: String,
    },
    /// Constants whose values depend on each other (`chain`: the names, from the first
    /// to `name` again).
    ConstCycle {
        name: String,
        chain: Vec<String>,
        span: Span,
    },
    /// A tool asked for a model the program does not define.
    NoModel { name: String },

    // ---- models ----
    /// A hyperparameter or input name declared twice in one model.
    DeclaredTwice {
        name: String,
        model: String,
        span: Span,
        first: Span,
    },
    /// A model that calls itself.
    Recursion { model: String, span: Span },
    /// A model applied to the wrong number of inputs.
    InputCount {
        model: String,
        declared: usize,
        given: usize,
        span: Span,
        header: Span,
    },
    /// A model input declared with a type that is not a tensor type.
    InputNotTensorType { input: String, span: Span },
    /// A model whose declared return type does not fit the output its caller needs.
    ReturnTypeUnmet {
        model: String,
        declared: String,
        needed: Vec<Dim>,
        span: Span,
        ret_span: Span,
        shown: String,
    },
    /// A model body that does not end in a tensor.
    ResultNotTensor {
        model: String,
        found: String,
        span: Span,
    },
    /// A model body whose result does not match its declared return type.
    ReturnShape {
        model: String,
        shape: Vec<Dim>,
        declared: String,
        span: Span,
        ret_span: Span,
        flatten_hint: bool,
    },
    /// A model without a return type whose output is not the one its caller needs.
    OutputShape {
        model: String,
        shape: Vec<Dim>,
        needed: Vec<Dim>,
        span: Span,
        result_span: Span,
    },
    /// A tensor whose size overflows 64 bits.
    ShapeOverflow { shape: Vec<Dim>, span: Span },

    // ---- hyperparameters and scalar types ----
    /// Hyperparameters passed to a model declared without any.
    NoHyperparameters {
        model: String,
        span: Span,
        header: Span,
    },
    /// More positional hyperparameters than the model declares.
    TooManyHyperparameters {
        model: String,
        declared: usize,
        span: Span,
        header: Span,
    },
    /// A hyperparameter given twice in one call.
    HyperparameterTwice { name: String, span: Span },
    /// A hyperparameter without a default left out of a call.
    HyperparameterMissing {
        model: String,
        name: String,
        span: Span,
        decl: Span,
    },
    /// A hyperparameter or constant declared with a type that does not exist (`alias`: the
    /// mlx name of another language's name for it).
    UnknownType {
        name: String,
        span: Span,
        alias: Option<&'static str>,
    },
    /// A scalar of the wrong type for its declaration.
    ScalarMismatch {
        want: String,
        found: String,
        span: Span,
        decl: Span,
        whole_number: bool,
        tensor: bool,
    },
    /// A hyperparameter outside its declared interval.
    OutOfRange {
        name: String,
        interval: String,
        value: String,
        range_span: Span,
        model: String,
        place: Placed,
    },

    // ---- expressions ----
    /// A name bound twice in one block.
    BoundTwice {
        name: String,
        span: Span,
        first: Span,
    },
    /// A tensor where a constant or configuration value is expected.
    TensorNotScalar { span: Span },
    /// A named argument given twice in one call.
    ArgumentTwice { name: String, span: Span },
    /// A number literal too large for a float.
    NotFinite { span: Span },
    /// A field access on a value.
    NoFields { span: Span },
    /// Negating something that is not a number or tensor.
    CannotNegate { found: String, span: Span },
    /// A lambda anywhere but the `step:` of `scan`.
    StrayLambda { span: Span },
    /// A dataset, train or sweep used as a value.
    NotAValue {
        name: String,
        kind: &'static str,
        span: Span,
        declared: Span,
    },
    /// A named argument to a train's model slot, applied to tensors.
    SlotNamedArgument {
        model: String,
        arg: String,
        span: Span,
    },
    /// A tensor where a model's hyperparameters are expected.
    TensorForHyperparameter { model: String, span: Span },
    /// A named argument to a model without hyperparameters.
    NamedArgumentNoHyperparameters {
        model: String,
        arg: String,
        span: Span,
    },
    /// Calling something that is neither a model nor a function.
    NotCallable { found: String, span: Span },
    /// A model applied to something that is not a tensor.
    ModelInputNotTensor {
        model: String,
        found: String,
        span: Span,
    },
    /// Applying something that is neither a model nor a function to a tensor.
    NotApplicable { found: String, span: Span },
    /// A division by a zero constant.
    DivisionByZero { span: Span },
    /// An operator between values it cannot combine.
    CannotCombine {
        op: &'static str,
        lhs: String,
        rhs: String,
        span: Span,
        lhs_span: Span,
        rhs_span: Span,
    },
    /// A tensor-only operator (`@`) between scalars.
    ScalarsOnly { op: &'static str, span: Span },

    // ---- initializers ----
    /// A parameter initialized by something that is not an initializer.
    NotAnInitializer { found: String, span: Span },
    /// Too many positional arguments to an initializer.
    InitializerArity { name: String, span: Span },
    /// `uniform(lo, hi)` with lo > hi.
    UniformEmpty { lo: f64, hi: f64, span: Span },
    /// A normal initializer with a negative std.
    NegativeStd { span: Span },

    // ---- scan ----
    /// A second positional argument to `scan`.
    ScanArity { span: Span },
    /// A `scan` without its sequence, `init:` or `step:`.
    ScanIncomplete { span: Span },
    /// A `scan` over something that is not a tensor.
    ScanNotTensor { span: Span },
    /// A `scan` axis outside the sequence's rank (or not known).
    ScanAxis { axis: Dim, rank: usize, span: Span },
    /// A `scan` axis that is not an integer.
    ScanAxisNotInteger { found: String, span: Span },
    /// A scan state (initial, or returned by the step) that is not a tensor.
    StateNotTensor { found: Option<String>, span: Span },
    /// A `step:` that is not a lambda.
    StepNotLambda { span: Span },
    /// A step lambda with the wrong number of parameters.
    StepParameters {
        states: usize,
        given: usize,
        span: Span,
    },
    /// A `param` declared inside a step.
    StepDeclaresParam { span: Span },
    /// A step returning the wrong number of states.
    StepReturns {
        states: usize,
        returned: usize,
        span: Span,
    },
    /// A state whose shape the step changes.
    StateShape {
        index: usize,
        start: Vec<Dim>,
        got: Vec<Dim>,
        span: Span,
        init_span: Span,
    },

    // ---- builtin arguments ----
    /// More positional arguments than a builtin takes.
    TooManyArguments {
        name: &'static str,
        takes: Vec<&'static str>,
        span: Span,
    },
    /// A builtin's argument given twice.
    BuiltinArgumentTwice {
        name: &'static str,
        key: String,
        span: Span,
    },
    /// A builtin's required argument left out.
    ArgumentMissing {
        name: &'static str,
        key: &'static str,
        takes: Vec<&'static str>,
        span: Span,
    },
    /// A builtin's argument that must be a tensor.
    ArgumentNotTensor {
        key: String,
        name: &'static str,
        found: String,
        span: Span,
    },
    /// An integer argument that must be known at check time but is symbolic.
    ArgumentNotConstant {
        key: String,
        name: &'static str,
        value: Dim,
        span: Span,
    },
    /// A builtin's argument that must be an integer.
    ArgumentNotInteger {
        key: String,
        name: &'static str,
        found: String,
        span: Span,
    },
    /// A builtin's or initializer's argument that must be a number.
    ArgumentNotNumber {
        key: String,
        name: String,
        found: String,
        span: Span,
    },
    /// A builtin's argument that must be true or false.
    ArgumentNotBool {
        key: String,
        name: &'static str,
        found: String,
        span: Span,
    },
    /// A builtin's integer argument below its minimum.
    ArgumentTooSmall {
        key: String,
        name: &'static str,
        min: i64,
        value: i64,
        span: Span,
    },
    /// An axis outside a tensor's rank.
    AxisOutOfRange { axis: i64, rank: usize, span: Span },
    /// An axis that is not an integer.
    AxisNotInteger { found: String, span: Span },
    /// An axis listed twice.
    AxisTwice { axis: i64, span: Span },
    /// A shape argument that is not a list.
    ShapeNotList {
        key: String,
        name: &'static str,
        found: String,
        span: Span,
    },
    /// A dimension in a shape list that is not an integer.
    DimNotInteger { found: String, span: Span },
    /// A probability outside [0, 1].
    Probability { p: f64, span: Span },

    // ---- builtin shape rules ----
    /// Operands whose shapes do not fit a builtin (`message` says how).
    ShapesDoNotFit {
        message: String,
        span: Span,
        operands: Vec<Shaped>,
    },
    /// Elementwise operands that do not broadcast.
    NoBroadcast {
        op: String,
        span: Span,
        lhs: Shaped,
        rhs: Shaped,
    },
    /// `@` between tensors whose inner axes differ.
    MatmulInner {
        k1: Dim,
        k2: Dim,
        vector: bool,
        span: Span,
        lhs: Shaped,
        rhs: Shaped,
    },
    /// `reshape` with several -1.
    ReshapeHoles { span: Span },
    /// `reshape` to a different number of elements.
    ReshapeCount {
        total: Dim,
        target: Vec<Dim>,
        span: Span,
        x: Shaped,
    },
    /// `permute` axes that are not a list.
    PermuteNotList { span: Span },
    /// A `permute` axis out of range or repeated.
    PermuteAxis { span: Span },
    /// `permute` with fewer or more axes than the rank.
    PermuteRank {
        shape: Vec<Dim>,
        given: usize,
        span: Span,
    },
    /// `squeeze` of an axis whose size is not 1.
    SqueezeNotOne {
        axis: i64,
        size: Dim,
        span: Span,
        x: Shaped,
    },
    /// A `slice` or `index` past the end of its axis.
    SliceOutOfBounds {
        name: &'static str,
        start: i64,
        end: i64,
        axis: i64,
        size: i64,
        span: Span,
        x: Shaped,
    },
    /// `concat` of something that is not a list.
    ConcatNotList { span: Span },
    /// `concat` of a list with something that is not a tensor.
    ConcatNotTensor { span: Span },
    /// `concat` of an empty list.
    ConcatEmpty { span: Span },
    /// A convolution or pooling window larger than its (padded) input.
    WindowTooLarge {
        what: &'static str,
        kernel: i64,
        input: Dim,
        padding: i64,
        span: Span,
        x: Shaped,
    },
    /// A convolution input not of rank 4.
    ConvRank { span: Span, x: Shaped },
    /// A convolution whose weight expects other input channels.
    Channels {
        expected: Dim,
        found: Dim,
        span: Span,
        x: Shaped,
    },
    /// A pooling input not of rank 4.
    PoolRank { span: Span, x: Shaped },
    /// Pooling padding over half the kernel.
    PoolPadding {
        padding: i64,
        kernel: i64,
        span: Span,
    },
}

const MISMATCH: &str = "mlx::type::mismatch";
const ARITY: &str = "mlx::type::arity";
const RANGE: &str = "mlx::value::range";
const SHAPE: &str = "mlx::shape::mismatch";

impl Error {
    pub(crate) fn diagnostic(self) -> Diagnostic {
        use Error::*;
        match self {
            DefinedTwice { name, span, kind, first, first_kind, where_ } => {
                defined_twice(&name, span, kind, first, first_kind, &where_)
            }
            ConstCycle { name, chain, span } => const_cycle(&name, &chain, span),
            NoModel { name } => Diagnostic::error("mlx::name::unknown", format!("no model `{name}`")),

            DeclaredTwice { name, model, span, first } => Diagnostic::error(
                "mlx::name::duplicate",
                format!("`{name}` is declared twice in model `{model}`"),
            )
            .with_label(span, "declared again here")
            .with_secondary(first, "first declared here"),
            Recursion { model, span } => at(
                "mlx::model::recursion",
                format!("model `{model}` calls itself (directly or through other models)"),
                span,
                "this call recurses without end",
            )
            .with_help("models are expanded when checked, so they cannot be recursive"),
            InputCount { model, declared, given, span, header } => at(
                ARITY,
                format!(
                    "model `{model}` takes {declared} input{}, but {given} {} given",
                    plural(declared),
                    if given == 1 { "was" } else { "were" }
                ),
                span,
                "called here",
            )
            .with_secondary(header, "declared here"),
            InputNotTensorType { input, span } => at(
                MISMATCH,
                format!("the input `{input}` of a model must be a tensor type such as `Float[B, F]`"),
                span,
                "not a tensor type",
            ),
            ReturnTypeUnmet { model, declared, needed, span, ret_span, shown } => Diagnostic::error(
                "mlx::train::output",
                format!(
                    "model `{model}` is declared to return `{declared}`, but {} is needed here",
                    show_shape(&needed)
                ),
            )
            .with_label(span, format!("needs an output of shape {}", show_shape(&needed)))
            .with_secondary(ret_span, format!("declared here as `{shown}`")),
            ResultNotTensor { model, found, span } => at(
                MISMATCH,
                format!("a model must return a tensor, but `{model}` returns {found}"),
                span,
                "not a tensor",
            ),
            ReturnShape { model, shape, declared, span, ret_span, flatten_hint } => {
                return_shape(&model, &shape, &declared, span, ret_span, flatten_hint)
            }
            OutputShape { model, shape, needed, span, result_span } => Diagnostic::error(
                "mlx::train::output",
                format!(
                    "model `{model}` returns shape {}, but {} is needed here",
                    show_shape(&shape),
                    show_shape(&needed)
                ),
            )
            .with_label(span, format!("needs {}", show_shape(&needed)))
            .with_secondary(result_span, format!("this has shape {}", show_shape(&shape))),
            ShapeOverflow { shape, span } => at(
                "mlx::shape::overflow",
                format!(
                    "a tensor of shape {} is too large to count: its size overflows 64 bits",
                    show_shape(&shape)
                ),
                span,
                "this shape overflows",
            )
            .with_help("a dimension this large cannot be allocated; check the sizes given to this layer"),

            NoHyperparameters { model, span, header } => at(
                ARITY,
                format!("model `{model}` has no hyperparameters"),
                span,
                "hyperparameters given here",
            )
            .with_secondary(header, "declared here"),
            TooManyHyperparameters { model, declared, span, header } => at(
                ARITY,
                format!(
                    "model `{model}` takes {declared} hyperparameter{}, but more were given",
                    plural(declared)
                ),
                span,
                "one too many",
            )
            .with_secondary(header, "declared here"),
            HyperparameterTwice { name, span } => at(
                "mlx::arg::duplicate",
                format!("hyperparameter `{name}` is given twice"),
                span,
                "given again here",
            ),
            HyperparameterMissing { model, name, span, decl } => Diagnostic::error(
                "mlx::arg::missing",
                format!("model `{model}` needs its hyperparameter `{name}`"),
            )
            .with_label(span, format!("`{name}` is not given here"))
            .with_secondary(decl, "declared without a default")
            .with_help(format!("pass it as `{model}({name}: ...)`")),
            UnknownType { name, span, alias } => unknown_type(&name, span, alias),
            ScalarMismatch { want, found, span, decl, whole_number, tensor } => {
                scalar_mismatch(&want, &found, span, decl, whole_number, tensor)
            }
            OutOfRange { name, interval, value, range_span, model, place } => place.label(
                Diagnostic::error(RANGE, format!("`{name}` must be in {interval}, but is {value}"))
                    .with_secondary(range_span, format!("`{name}` declares this range")),
                format!("{value} is out of range"),
                format!("passed on to `{model}`'s `{name}` here"),
            ),

            BoundTwice { name, span, first } => Diagnostic::error(
                "mlx::name::duplicate",
                format!("`{name}` is already bound in this block"),
            )
            .with_label(span, "bound again here")
            .with_secondary(first, "first bound here")
            .with_help("give the new value its own name"),
            TensorNotScalar { span } => at(
                MISMATCH,
                "expected a number, string or boolean, found a tensor",
                span,
                "a tensor here",
            ),
            ArgumentTwice { name, span } => at(
                "mlx::arg::duplicate",
                format!("argument `{name}` is given twice"),
                span,
                "given again here",
            ),
            NotFinite { span } => at(RANGE, "this number is too large", span, "not a finite number"),
            NoFields { span } => at(MISMATCH, "values have no fields", span, "`.` is not allowed here"),
            CannotNegate { found, span } => at(
                MISMATCH,
                format!("cannot negate {found}"),
                span,
                "not a number or tensor",
            ),
            StrayLambda { span } => at(
                MISMATCH,
                "a lambda can only be the `step:` of `scan`",
                span,
                "lambda here",
            ),
            NotAValue { name, kind, span, declared } => at(
                "mlx::name::kind",
                format!("`{name}` is a {kind}, not a value"),
                span,
                &format!("a {kind} used as a value"),
            )
            .with_secondary(declared, "declared here"),
            SlotNamedArgument { model, arg, span } => at(
                "mlx::arg::unknown",
                format!("model `{model}` of this train is applied to tensors; `{arg}:` means nothing here"),
                span,
                "named argument",
            )
            .with_help("its hyperparameters are set in the `models` block"),
            TensorForHyperparameter { model, span } => at(
                MISMATCH,
                format!("`{model}(...)` takes hyperparameters first, but a tensor was given"),
                span,
                "a tensor, where a hyperparameter is expected",
            )
            .with_help(format!(
                "give the hyperparameters, then the input: `x |> {model}(...)` or `{model}(...)(x)`"
            )),
            NamedArgumentNoHyperparameters { model, arg, span } => at(
                "mlx::arg::unknown",
                format!("model `{model}` has no hyperparameters, so `{arg}:` means nothing here"),
                span,
                "named argument to a model without hyperparameters",
            ),
            NotCallable { found, span } => at(
                MISMATCH,
                format!("{found} is not something that can be called"),
                span,
                "not a model or function",
            ),
            ModelInputNotTensor { model, found, span } => at(
                MISMATCH,
                format!("model `{model}` takes a tensor, found {found}"),
                span,
                "not a tensor",
            ),
            NotApplicable { found, span } => at(
                MISMATCH,
                format!("{found} cannot be applied to a tensor"),
                span,
                "not a model or function",
            ),
            DivisionByZero { span } => at(RANGE, "division by zero", span, "this is zero"),
            CannotCombine { op, lhs, rhs, span, lhs_span, rhs_span } => at(
                MISMATCH,
                format!("`{op}` cannot combine {lhs} and {rhs}"),
                span,
                "invalid operands",
            )
            .with_secondary(lhs_span, lhs)
            .with_secondary(rhs_span, rhs),
            ScalarsOnly { op, span } => at(
                MISMATCH,
                format!("`{op}` needs tensors"),
                span,
                "both sides are scalars",
            ),

            NotAnInitializer { found, span } => at(
                MISMATCH,
                format!("a parameter's initializer must be an initializer, found {found}"),
                span,
                "not an initializer",
            )
            .with_help(format!("initializers are: {}", INIT_NAMES.join(", "))),
            InitializerArity { name, span } => at(
                ARITY,
                format!("too many arguments for initializer `{name}`"),
                span,
                "extra argument",
            ),
            UniformEmpty { lo, hi, span } => at(
                RANGE,
                format!("uniform({lo}, {hi}) has lo > hi"),
                span,
                "empty interval",
            ),
            NegativeStd { span } => at(RANGE, "a normal initializer needs std >= 0", span, "negative std"),

            ScanArity { span } => at(
                ARITY,
                "`scan` takes one sequence and named `axis:`, `init:` and `step:`",
                span,
                "extra argument",
            ),
            ScanIncomplete { span } => at(
                "mlx::arg::missing",
                "`scan` needs a sequence, `init:` and `step:`",
                span,
                "incomplete scan",
            )
            .with_help("write `scan(xs, axis: 1, init: [h0], step: |x_t, h| { ... })`"),
            ScanNotTensor { span } => at(MISMATCH, "`scan` runs over a tensor", span, "not a tensor"),
            ScanAxis { axis, rank, span } => at(
                "mlx::shape::axis",
                format!("axis {axis} is out of range for a tensor of rank {rank}"),
                span,
                "bad axis",
            ),
            ScanAxisNotInteger { found, span } => at(
                MISMATCH,
                format!("`axis` must be an integer, found {found}"),
                span,
                "not an integer",
            ),
            StateNotTensor { found, span } => at(
                MISMATCH,
                match found {
                    Some(f) => format!("a scan state must be a tensor, found {f}"),
                    None => "a scan state must be a tensor".to_string(),
                },
                span,
                "not a tensor",
            ),
            StepNotLambda { span } => at(
                MISMATCH,
                "`step:` must be a lambda `|x_t, state...| { ... }`",
                span,
                "not a lambda",
            ),
            StepParameters { states, given, span } => at(
                ARITY,
                format!(
                    "the step takes the sequence element and {states} state{}, so it needs {} parameters, not {given}",
                    plural(states),
                    1 + states
                ),
                span,
                "wrong number of parameters",
            ),
            StepDeclaresParam { span } => at(
                MISMATCH,
                "a scan step cannot declare parameters",
                span,
                "declare `param`s in the enclosing model",
            )
            .with_help("parameters declared outside the lambda are shared by every step"),
            StepReturns { states, returned, span } => at(
                ARITY,
                format!(
                    "the step must return {states} new state{} (a list), but returns {returned}",
                    plural(states)
                ),
                span,
                "returned here",
            ),
            StateShape { index, start, got, span, init_span } => Diagnostic::error(
                SHAPE,
                format!(
                    "state {index} of the scan starts as {} but the step returns {}",
                    show_shape(&start),
                    show_shape(&got)
                ),
            )
            .with_label(span, format!("this has shape {}", show_shape(&got)))
            .with_secondary(
                init_span,
                format!("initial state has shape {}", show_shape(&start)),
            ),

            TooManyArguments { name, takes, span } => at(
                ARITY,
                format!(
                    "`{name}` takes at most {} argument{}",
                    takes.len(),
                    plural(takes.len())
                ),
                span,
                "extra argument",
            )
            .with_help(format!("`{name}` takes: {}", takes.join(", "))),
            BuiltinArgumentTwice { name, key, span } => at(
                "mlx::arg::duplicate",
                format!("argument `{key}` of `{name}` is given twice"),
                span,
                "given again",
            ),
            ArgumentMissing { name, key, takes, span } => Diagnostic::error(
                "mlx::arg::missing",
                format!("`{name}` needs its argument `{key}`"),
            )
            .with_label(span, format!("`{key}` is missing"))
            .with_help(format!("`{name}` takes: {}", takes.join(", "))),
            ArgumentNotTensor { key, name, found, span } => at(
                MISMATCH,
                format!("`{key}` of `{name}` must be a tensor, found {found}"),
                span,
                "not a tensor",
            ),
            ArgumentNotConstant { key, name, value, span } => at(
                MISMATCH,
                format!("`{key}` of `{name}` must be known when the model is checked, but is `{value}`"),
                span,
                "not a constant",
            ),
            ArgumentNotInteger { key, name, found, span } => at(
                MISMATCH,
                format!("`{key}` of `{name}` must be an integer, found {found}"),
                span,
                "not an integer",
            ),
            ArgumentNotNumber { key, name, found, span } => at(
                MISMATCH,
                format!("`{key}` of `{name}` must be a number, found {found}"),
                span,
                "not a number",
            ),
            ArgumentNotBool { key, name, found, span } => at(
                MISMATCH,
                format!("`{key}` of `{name}` must be true or false, found {found}"),
                span,
                "not a boolean",
            ),
            ArgumentTooSmall { key, name, min, value, span } => at(
                RANGE,
                format!("`{key}` of `{name}` must be at least {min}, but is {value}"),
                span,
                "out of range",
            ),
            AxisOutOfRange { axis, rank, span } => at(
                "mlx::shape::axis",
                format!("axis {axis} is out of range for a tensor of rank {rank}"),
                span,
                &format!("valid axes are {} to {}", -(rank as i64), rank as i64 - 1),
            ),
            AxisNotInteger { found, span } => at(
                MISMATCH,
                format!("an axis must be an integer, found {found}"),
                span,
                "not an axis",
            ),
            AxisTwice { axis, span } => at(
                "mlx::shape::axis",
                format!("axis {axis} is listed twice"),
                span,
                "repeated axis",
            ),
            ShapeNotList { key, name, found, span } => at(
                MISMATCH,
                format!("`{key}` of `{name}` must be a list of dimensions like `[B, 64]`, found {found}"),
                span,
                "not a list",
            ),
            DimNotInteger { found, span } => at(
                MISMATCH,
                format!("a dimension must be an integer, found {found}"),
                span,
                "not a dimension",
            ),
            Probability { p, span } => at(
                RANGE,
                format!("a probability must be in [0, 1], but is {p}"),
                span,
                "out of range",
            ),

            ShapesDoNotFit { message, span, operands } => operands.iter().fold(
                at(SHAPE, message, span, "shapes do not fit"),
                |d, o| d.with_secondary(o.span, o.label()),
            ),
            NoBroadcast { op, span, lhs, rhs } => at(
                SHAPE,
                format!(
                    "`{op}` cannot broadcast {} with {}",
                    show_shape(&lhs.shape),
                    show_shape(&rhs.shape)
                ),
                span,
                "shapes do not broadcast",
            )
            .with_secondary(lhs.span, lhs.label())
            .with_secondary(rhs.span, rhs.label())
            .with_help("elementwise operations need equal sizes, or size 1, on each axis counted from the right"),
            MatmulInner { k1, k2, vector, span, lhs, rhs } => at(
                SHAPE,
                format!(
                    "`@` needs the last axis of the left side to equal the {} axis of the right side, but {k1} ≠ {k2}",
                    if vector { "only" } else { "second-to-last" }
                ),
                span,
                &format!("{} @ {}", show_shape(&lhs.shape), show_shape(&rhs.shape)),
            )
            .with_secondary(lhs.span, lhs.label())
            .with_secondary(rhs.span, rhs.label()),
            ReshapeHoles { span } => at(
                "mlx::shape::reshape",
                "at most one dimension of `reshape` can be -1",
                span,
                "several -1",
            ),
            ReshapeCount { total, target, span, x } => at(
                "mlx::shape::reshape",
                format!(
                    "cannot reshape {} ({total} elements) to {}",
                    show_shape(&x.shape),
                    show_shape(&target)
                ),
                span,
                "element counts differ",
            )
            .with_secondary(x.span, x.label()),
            PermuteNotList { span } => at(
                MISMATCH,
                "`axes` of `permute` must be a list such as `[0, 2, 1]`",
                span,
                "not a list",
            ),
            PermuteAxis { span } => at(
                "mlx::shape::axis",
                "`permute` needs each axis exactly once",
                span,
                "bad or repeated axis",
            ),
            PermuteRank { shape, given, span } => at(
                "mlx::shape::rank",
                format!(
                    "`permute` needs {} axes for a tensor of shape {}",
                    shape.len(),
                    show_shape(&shape)
                ),
                span,
                &format!("{given} axes given"),
            ),
            SqueezeNotOne { axis, size, span, x } => at(
                SHAPE,
                format!(
                    "`squeeze` removes an axis of size 1, but axis {axis} of {} has size {size}",
                    show_shape(&x.shape)
                ),
                span,
                &format!("axis {axis} is not 1"),
            )
            .with_secondary(x.span, x.label()),
            SliceOutOfBounds { name, start, end, axis, size, span, x } => at(
                "mlx::shape::slice",
                format!("`{name}` takes elements {start}..{end} of axis {axis}, which has only {size}"),
                span,
                "out of bounds",
            )
            .with_secondary(x.span, x.label()),
            ConcatNotList { span } => at(
                MISMATCH,
                "`concat` takes a list of tensors: `concat([a, b], axis: 1)`",
                span,
                "not a list",
            ),
            ConcatNotTensor { span } => at(MISMATCH, "`concat` joins tensors", span, "not a tensor"),
            ConcatEmpty { span } => at(ARITY, "`concat` needs at least one tensor", span, "empty list"),
            WindowTooLarge { what, kernel, input, padding, span, x } => {
                window_too_large(what, kernel, &input, padding, span, &x)
            }
            ConvRank { span, x } => at(
                "mlx::shape::rank",
                format!(
                    "a 2-D convolution needs input of rank 4 [batch, channels, height, width], but got {}",
                    show_shape(&x.shape)
                ),
                span,
                "needs [B, C, H, W]",
            )
            .with_help(if x.shape.len() == 3 {
                "add a channel axis, e.g. `unsqueeze(x, axis: 1)`"
            } else {
                "reshape the input to [B, C, H, W]"
            })
            .with_secondary(x.span, x.label()),
            Channels { expected, found, span, x } => at(
                SHAPE,
                format!("the convolution expects {expected} input channels, but its input has {found}"),
                span,
                "channel counts differ",
            )
            .with_secondary(x.span, x.label()),
            PoolRank { span, x } => at(
                "mlx::shape::rank",
                format!(
                    "2-D pooling needs input of rank 4 [batch, channels, height, width], but got {}",
                    show_shape(&x.shape)
                ),
                span,
                "needs [B, C, H, W]",
            )
            .with_secondary(x.span, x.label()),
            PoolPadding { padding, kernel, span } => at(
                RANGE,
                format!("pooling padding ({padding}) must be at most half the kernel ({kernel})"),
                span,
                "too much padding",
            ),
        }
    }
}

fn defined_twice(
    name: &str,
    span: Span,
    kind: &str,
    first: Span,
    first_kind: &str,
    where_: &str,
) -> Diagnostic {
    Diagnostic::error("mlx::name::duplicate", format!("`{name}` is defined twice"))
        .with_label(span, format!("second definition, a {kind}"))
        .with_secondary(first, format!("first defined here{where_}, a {first_kind}"))
        .with_help("every top-level name (model, dataset, train, sweep, const) must be unique; rename one of them")
}

fn const_cycle(name: &str, chain: &[String], span: Span) -> Diagnostic {
    let message = if chain.len() <= 2 {
        format!("constant `{name}` depends on itself")
    } else {
        let chain: Vec<String> = chain.iter().map(|n| format!("`{n}`")).collect();
        format!(
            "constants depend on each other in a cycle: {}",
            chain.join(" → ")
        )
    };
    at(
        "mlx::const::cycle",
        message,
        span,
        "used here while computing its own value",
    )
    .with_help("define one of them without the others")
}

fn return_shape(
    model: &str,
    shape: &[Dim],
    declared: &str,
    span: Span,
    ret_span: Span,
    flatten_hint: bool,
) -> Diagnostic {
    let d = Diagnostic::error(
        "mlx::shape::return_type",
        format!(
            "model `{model}` returns a tensor of shape {}, but its signature says `{declared}`",
            show_shape(shape)
        ),
    )
    .with_label(span, format!("this has shape {}", show_shape(shape)))
    .with_secondary(ret_span, format!("declared as `{declared}`"));
    if flatten_hint {
        d.with_help("the result still has spatial axes: add `flatten` before the dense layers (`x |> flatten |> dense(...)`)")
    } else {
        d
    }
}

fn unknown_type(name: &str, span: Span, alias: Option<&str>) -> Diagnostic {
    let d = at(
        "mlx::type::unknown",
        format!("`{name}` is not a type a hyperparameter or constant can have"),
        span,
        "unknown type here",
    );
    match alias {
        Some(a) => d.with_help(format!("did you mean `{a}`?")),
        None => d.suggest_or(
            name,
            ["Int", "Float", "Bool", "String", "Init"],
            "hyperparameters are `Int`, `Float`, `Bool`, `String` or `Init`",
        ),
    }
}

fn scalar_mismatch(
    want: &str,
    found: &str,
    span: Span,
    decl: Span,
    whole_number: bool,
    tensor: bool,
) -> Diagnostic {
    let d = Diagnostic::error(MISMATCH, format!("expected {want}, found {found}"))
        .with_label(span, format!("this is {found}"))
        .with_secondary(decl, "declared here");
    if tensor {
        d.with_help("apply a model to a tensor with `x |> model(hyperparameters)` or `model(hyperparameters)(x)`")
    } else if whole_number {
        d.with_help("write a whole number, without a decimal point")
    } else {
        d
    }
}

fn window_too_large(
    what: &str,
    kernel: i64,
    input: &Dim,
    padding: i64,
    span: Span,
    x: &Shaped,
) -> Diagnostic {
    let padded = if padding > 0 {
        format!(" + 2·{padding} padding")
    } else {
        String::new()
    };
    at(
        "mlx::shape::window",
        format!("the {what} window ({kernel}) is larger than its input ({input}{padded})"),
        span,
        &format!("a {kernel}×{kernel} window does not fit"),
    )
    .with_secondary(x.span, x.label())
    .with_help("use a smaller kernel, add padding, or downsample less before this layer")
}
