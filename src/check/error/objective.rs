//! The checker's mistakes in trains of several models, objectives and sweeps, as data, and their diagnostics.

use super::error;
use crate::check::objective::OBJECTIVE_KEYS;
use crate::diagnostics::{Diagnostic, did_you_mean};
use crate::source::Span;

#[derive(Debug)]
pub(crate) enum Error {
    // The entries and overrides of a train with objectives.
    /// `model = ...` beside a `models` block.
    ModelBesideModels { span: Span },
    /// `loss`, `optimizer`, ... at the top of a train with objectives.
    EntryOutsideObjective { key: String, span: Span },
    /// A `--set` or sweep path that reaches nothing in a train with objectives.
    SettingUnknown {
        path: String,
        train: String,
        span: Span,
    },
    /// No `data` or no `epochs` (`key`).
    TrainEntryMissing {
        train: String,
        key: &'static str,
        span: Span,
    },
    /// The dataset is streamed, but objectives read the data in memory.
    DataStreamed { dataset: String, span: Span },
    /// Early stopping watches a validation figure of a dataset without a validation split.
    MonitorWithoutValidation {
        monitor: String,
        objective: String,
        span: Span,
    },
    /// Warning: a patience of at least the epochs, so early stopping never triggers.
    PatienceNotBelowEpochs {
        patience: i64,
        epochs: i64,
        span: Span,
    },

    // The `models` block.
    /// A second `models` block.
    ModelsBlockTwice { span: Span, first: Span },
    /// Objectives without a `models` block.
    ModelsBlockMissing { train: String, span: Span },
    /// A model declared twice in the block.
    ModelTwice {
        name: String,
        span: Span,
        first: Span,
    },
    /// A `models` block that declares nothing.
    ModelsBlockEmpty { span: Span },

    // Objectives: entries, loss, updates, optimizer.
    /// Models but no `objective`.
    ObjectiveMissing { train: String, span: Span },
    /// An objective declared twice.
    ObjectiveTwice {
        name: String,
        span: Span,
        first: Span,
    },
    /// An objective without `updates`, `loss` or `optimizer` (`key`).
    ObjectiveEntryMissing {
        objective: String,
        key: &'static str,
        span: Span,
    },
    /// A `--set` or sweep path to an entry objectives do not have.
    ObjectiveSettingUnknown {
        path: String,
        objective: String,
        span: Span,
    },
    /// The loss is a tensor of more than one number (`shape` as shown).
    LossNotScalar {
        objective: String,
        shape: String,
        span: Span,
    },
    /// The loss is not a tensor at all (`found` describes it).
    LossNotTensor {
        objective: String,
        found: String,
        span: Span,
    },
    /// The loss applies a layer with parameters outside the train's models.
    LossOwnParameters { objective: String, span: Span },
    /// An item of `updates` that is not a name.
    UpdatesNotName { span: Span },
    /// A model listed twice in `updates`.
    UpdatesTwice { model: String, span: Span },
    /// A model in `updates` that the loss's gradient never reaches.
    UpdatesUnreached {
        objective: String,
        model: String,
        span: Span,
        loss: Span,
    },
    /// `reduce_on_plateau` as an objective's schedule.
    PlateauInObjective { span: Span },
    /// `clip_grad` that is not a positive number.
    ClipGradNotPositive { span: Span },

    // Loss functions, `noise`, `samples` and the models applied in objectives.
    /// A loss function given other than two tensors.
    LossArity {
        function: String,
        given: usize,
        span: Span,
    },
    /// `label_smoothing` or `delta` (`key`) outside [lo, hi).
    LossArgRange {
        key: String,
        function: String,
        lo: f64,
        hi: f64,
        span: Span,
    },
    /// `cross_entropy` of logits that are not [B, K].
    CrossEntropyRank { shape: String, span: Span },
    /// `cross_entropy` against neither the class target nor probabilities of the logits' shape.
    CrossEntropyTarget {
        logits: String,
        target: String,
        span: Span,
    },
    /// A distance loss against class labels.
    DistanceToClassLabels { function: String, span: Span },
    /// A loss of a prediction and a target of different shapes.
    LossShapeMismatch {
        function: String,
        pred: String,
        target: String,
        span: Span,
        target_span: Span,
    },
    /// A loss function's argument that is neither a tensor nor a number.
    LossArgNotTensor {
        function: String,
        found: String,
        span: Span,
    },
    /// `noise` given other than one argument.
    NoiseArity { given: usize, span: Span },
    /// `noise` of something other than a shape.
    NoiseNotShape { found: String, span: Span },
    /// A `noise` dimension of zero or less.
    NoiseDimNotPositive { dim: String, span: Span },
    /// A `noise` dimension that is not a whole number (or `B`, where `batch`).
    NoiseDimNotWhole {
        found: String,
        batch: bool,
        float: bool,
        span: Span,
    },
    /// `samples` with sizes that are not numbers.
    SamplesUnbound { shape: String, span: Span },
    /// `samples` that is not a tensor.
    SamplesNotTensor { found: String, span: Span },
    /// A model of the train applied to something other than a tensor.
    ModelInputNotTensor {
        model: String,
        found: String,
        span: Span,
    },
    /// A model of the train applied to inputs of another shape than before.
    ModelShapeChanged {
        model: String,
        now: String,
        before: String,
        span: Span,
        first: Span,
    },

    // Sweeps.
    /// `base` names an item that is not a train (`kind`).
    BaseNotTrain {
        name: String,
        kind: &'static str,
        span: Span,
    },
    /// `base` that is not a name.
    BaseNotName { span: Span },
    /// A second `grid` or `random` block.
    SweepBlockTwice { span: Span, first: Span },
    /// A grid axis that is not a list.
    GridAxisNotList { span: Span },
    /// A grid axis with no values.
    GridAxisEmpty { span: Span },
    /// A setting the grid lists twice.
    GridAxisTwice {
        path: String,
        span: Span,
        first: Span,
    },
    /// A sweep without `base`.
    SweepBaseMissing { sweep: String, span: Span },
    /// A sweep without `objective`.
    SweepObjectiveMissing { sweep: String, span: Span },
    /// A figure mlx does not report (`message` and `help` from the monitor check).
    FigureUnknown {
        figure: super::data::BadFigure,
        span: Span,
    },
    /// `val.NAME` that is neither a figure nor an objective of the base train (`objectives`).
    SweepFigureUnknown {
        figure: String,
        base: String,
        split: String,
        name: String,
        objectives: Vec<String>,
        span: Span,
    },
    /// The sweep's objective is a metric the base train does not compute.
    SweepMetricMissing {
        figure: String,
        base: String,
        span: Span,
    },
    /// A sweep objective other than `maximize(FIGURE)` or `minimize(FIGURE)`.
    SweepObjectiveShape { span: Span },
    /// `trials` below 1 or `seed` below 0 (`key`), or not whole.
    RandomArgRange { key: String, span: Span },
    /// A `random` block without `trials`.
    RandomTrialsMissing { span: Span },
    /// A setting the random block draws twice.
    RandomDrawTwice {
        path: String,
        span: Span,
        first: Span,
    },
    /// Warning: random trials that repeat earlier ones, as (trial, earlier trial), from 1.
    RandomRepeats {
        repeats: Vec<(usize, usize)>,
        trials: usize,
        span: Span,
    },
    /// A random axis that is not a distribution.
    NotADistribution { span: Span },
    /// A distribution's empty or invalid range.
    DistributionRange { dist: String, span: Span },
}

impl Error {
    /// The diagnostic that reports this mistake.
    pub(crate) fn diagnostic(self) -> Diagnostic {
        use Error::*;
        match self {
            ModelBesideModels { span } => model_beside_models(span),
            EntryOutsideObjective { key, span } => entry_outside_objective(&key, span),
            SettingUnknown { path, train, span } => setting_unknown(&path, &train, span),
            TrainEntryMissing { train, key, span } => train_entry_missing(&train, key, span),
            DataStreamed { dataset, span } => data_streamed(&dataset, span),
            MonitorWithoutValidation {
                monitor,
                objective,
                span,
            } => monitor_without_validation(&monitor, &objective, span),
            PatienceNotBelowEpochs {
                patience,
                epochs,
                span,
            } => patience_not_below_epochs(patience, epochs, span),
            ModelsBlockTwice { span, first } => {
                error("mlx::name::duplicate", "a train has one `models` block")
                    .with_label(span, "second block")
                    .with_secondary(first, "first block")
            }
            ModelsBlockMissing { train, span } => models_block_missing(&train, span),
            ModelTwice { name, span, first } => twice(
                format!("model `{name}` is declared twice"),
                (span, "declared again here"),
                (first, "first declared here"),
            ),
            ModelsBlockEmpty { span } => {
                error("mlx::train::missing_entry", "the `models` block is empty")
                    .with_label(span, "no models")
                    .with_help("declare a model: `models { m = my_model }`")
            }
            ObjectiveMissing { train, span } => objective_missing(&train, span),
            ObjectiveTwice { name, span, first } => twice(
                format!("objective `{name}` is declared twice"),
                (span, "declared again here"),
                (first, "first declared here"),
            ),
            ObjectiveEntryMissing {
                objective,
                key,
                span,
            } => objective_entry_missing(&objective, key, span),
            ObjectiveSettingUnknown {
                path,
                objective,
                span,
            } => objective_setting_unknown(&path, &objective, span),
            LossNotScalar {
                objective,
                shape,
                span,
            } => loss_not_scalar(&objective, &shape, span),
            LossNotTensor {
                objective,
                found,
                span,
            } => loss_not_tensor(&objective, &found, span),
            LossOwnParameters { objective, span } => loss_own_parameters(&objective, span),
            UpdatesNotName { span } => error(
                "mlx::type::mismatch",
                "`updates` names models of the train: `d` or `[enc, dec]`",
            )
            .with_label(span, "not a model name"),
            UpdatesTwice { model, span } => error(
                "mlx::name::duplicate",
                format!("`{model}` is listed twice in `updates`"),
            )
            .with_label(span, "listed again"),
            UpdatesUnreached {
                objective,
                model,
                span,
                loss,
            } => updates_unreached(&objective, &model, span, loss),
            PlateauInObjective { span } => plateau_in_objective(span),
            ClipGradNotPositive { span } => error(
                "mlx::value::range",
                "`clip_grad` must be a number greater than 0: the largest allowed gradient norm",
            )
            .with_label(span, "not a positive number"),
            LossArity {
                function,
                given,
                span,
            } => error(
                "mlx::type::arity",
                format!("`{function}` takes 2 tensors (prediction, target), but {given} were given"),
            )
            .with_label(span, "called here"),
            LossArgRange {
                key,
                function,
                lo,
                hi,
                span,
            } => error(
                "mlx::value::range",
                format!("`{key}` of `{function}` must be a number in [{lo}, {hi})"),
            )
            .with_label(span, "out of range"),
            CrossEntropyRank { shape, span } => error(
                "mlx::shape::rank",
                format!("`cross_entropy` takes logits of shape [B, K], but got {shape}"),
            )
            .with_label(span, format!("shape {shape}")),
            CrossEntropyTarget {
                logits,
                target,
                span,
            } => cross_entropy_target(&logits, &target, span),
            DistanceToClassLabels { function, span } => distance_to_class_labels(&function, span),
            LossShapeMismatch {
                function,
                pred,
                target,
                span,
                target_span,
            } => loss_shape_mismatch(&function, &pred, &target, span, target_span),
            LossArgNotTensor {
                function,
                found,
                span,
            } => error(
                "mlx::type::mismatch",
                format!("`{function}` takes tensors or numbers, found {found}"),
            )
            .with_label(span, "not a tensor"),
            NoiseArity { given, span } => error(
                "mlx::type::arity",
                format!(
                    "`noise` takes one shape such as `[B, 64]`, but {given} arguments were given"
                ),
            )
            .with_label(span, "called here"),
            NoiseNotShape { found, span } => error(
                "mlx::type::mismatch",
                format!("`noise` takes a shape such as `[B, 64]`, found {found}"),
            )
            .with_label(span, "not a shape"),
            NoiseDimNotPositive { dim, span } => error(
                "mlx::shape::nonpositive",
                format!("a `noise` dimension must be positive, but is {dim}"),
            )
            .with_label(span, "not positive"),
            NoiseDimNotWhole {
                found,
                batch,
                float,
                span,
            } => noise_dim_not_whole(&found, batch, float, span),
            SamplesUnbound { shape, span } => error(
                "mlx::shape::unbound",
                format!("`samples` has shape {shape}: every size must be a number"),
            )
            .with_label(span, "sizes not known")
            .with_help("draw a fixed number: `g(noise([64, 64]))`"),
            SamplesNotTensor { found, span } => error(
                "mlx::type::mismatch",
                format!("`samples` must be a tensor, found {found}"),
            )
            .with_label(span, "not a tensor")
            .with_help("apply a model of the train: `samples = g(noise([64, 64]))`"),
            ModelInputNotTensor { model, found, span } => error(
                "mlx::type::mismatch",
                format!("model `{model}` takes a tensor, found {found}"),
            )
            .with_label(span, "not a tensor"),
            ModelShapeChanged {
                model,
                now,
                before,
                span,
                first,
            } => model_shape_changed(&model, &now, &before, span, first),
            BaseNotTrain { name, kind, span } => error(
                "mlx::name::kind",
                format!("`{name}` is a {kind}, but a sweep's base is a train"),
            )
            .with_label(span, "not a train"),
            BaseNotName { span } => {
                error("mlx::type::mismatch", "`base` names a train").with_label(span, "not a name")
            }
            SweepBlockTwice { span, first } => error(
                "mlx::sweep::block",
                "a sweep has one `grid` or `random` block",
            )
            .with_label(span, "second block")
            .with_secondary(first, "first block"),
            GridAxisNotList { span } => error(
                "mlx::type::mismatch",
                "a grid axis is a list of values: `optimizer.lr = [1e-3, 1e-2]`",
            )
            .with_label(span, "not a list"),
            GridAxisEmpty { span } => {
                error("mlx::sweep::point", "a grid axis needs at least one value")
                    .with_label(span, "empty")
            }
            GridAxisTwice { path, span, first } => grid_axis_twice(&path, span, first),
            SweepBaseMissing { sweep, span } => error(
                "mlx::sweep::base",
                format!("sweep `{sweep}` has no `base` train"),
            )
            .with_label(span, "what should it vary?")
            .with_help("add `base = my_train`"),
            SweepObjectiveMissing { sweep, span } => error(
                "mlx::sweep::objective",
                format!("sweep `{sweep}` has no `objective`"),
            )
            .with_label(span, "how are trials compared?")
            .with_help("add `objective = maximize(val.accuracy)` or `minimize(val.loss)`"),
            FigureUnknown { figure, span } => error("mlx::name::unknown", figure.message())
                .with_label(span, "unknown figure")
                .with_help(figure.help()),
            SweepFigureUnknown {
                figure,
                base,
                split,
                name,
                objectives,
                span,
            } => sweep_figure_unknown(&figure, &base, &split, &name, &objectives, span),
            SweepMetricMissing { figure, base, span } => error(
                "mlx::sweep::objective",
                format!("the objective `{figure}` is not among the base train's metrics"),
            )
            .with_label(span, "not computed by the trials")
            .with_help(format!("add it to `metrics` of train `{base}`")),
            SweepObjectiveShape { span } => error(
                "mlx::sweep::objective",
                "the objective is `maximize(FIGURE)` or `minimize(FIGURE)`",
            )
            .with_label(span, "not an objective")
            .with_help("e.g. `objective = maximize(val.accuracy)`"),
            RandomArgRange { key, span } => random_arg_range(&key, span),
            RandomTrialsMissing { span } => error("mlx::arg::missing", "`random` needs `trials`")
                .with_label(span, "how many points?")
                .with_help("write `random(trials: 20, seed: 1) { ... }`"),
            RandomDrawTwice { path, span, first } => random_draw_twice(&path, span, first),
            RandomRepeats {
                repeats,
                trials,
                span,
            } => random_repeats(&repeats, trials, span),
            NotADistribution { span } => error(
                "mlx::sweep::distribution",
                "a random axis is `choice([...])`, `uniform(lo, hi)`, `log_uniform(lo, hi)` or `int_range(lo, hi)`",
            )
            .with_label(span, "not a distribution"),
            DistributionRange { dist, span } => distribution_range(&dist, span),
        }
    }
}

/// A name declared twice (`mlx::name::duplicate`): the repeat, then the first.
fn twice(message: String, again: (Span, &str), first: (Span, &str)) -> Diagnostic {
    error("mlx::name::duplicate", message)
        .with_label(again.0, again.1)
        .with_secondary(first.0, first.1)
}

fn model_beside_models(span: Span) -> Diagnostic {
    error(
        "mlx::train::unknown_entry",
        "a train with a `models` block declares every model there",
    )
    .with_label(span, "`model` beside `models`")
    .with_help("move it into the block: `models { m = ... }`")
}

fn entry_outside_objective(key: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::unknown_entry",
        format!("`{key}` belongs in an objective when a train has objectives"),
    )
    .with_label(span, "outside every objective")
    .with_help(format!(
        "move it into the `objective` block it is for: `objective NAME {{ ... {key} = ... }}`"
    ))
}

fn setting_unknown(path: &str, train: &str, span: Span) -> Diagnostic {
    error(
        "mlx::set::unknown",
        format!("`{path}` is not a setting of train `{train}`, which has objectives"),
    )
    .with_label(span, "unknown path")
    .with_help("override `epochs`, `models.NAME.HYPERPARAMETER` or `objective.NAME.optimizer.lr` (any entry or argument of an objective)")
}

fn train_entry_missing(train: &str, key: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::missing_entry",
        format!("train `{train}` has no `{key}`"),
    )
    .with_label(span, format!("`{key}` is required"))
    .with_help(if key == "data" {
        "add `data = my_dataset`"
    } else {
        "add `epochs = 10`"
    })
}

fn data_streamed(dataset: &str, span: Span) -> Diagnostic {
    error(
        "mlx::data::stream",
        format!(
            "a train with objectives reads its data in memory, but dataset `{dataset}` is streamed"
        ),
    )
    .with_label(span, "streamed dataset")
    .with_help("remove `stream = true` from the dataset")
}

fn monitor_without_validation(monitor: &str, objective: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::monitor",
        format!("`{monitor}` is watched, but the dataset has no validation split"),
    )
    .with_label(span, "nothing to monitor")
    .with_help(format!(
        "give the dataset a validation split (`split = holdout(val: 0.1)`), or monitor `train.{objective}`"
    ))
}

fn patience_not_below_epochs(patience: i64, epochs: i64, span: Span) -> Diagnostic {
    Diagnostic::warning(
        "mlx::train::patience",
        format!(
            "patience {patience} is not below epochs {epochs}: early stopping can never trigger"
        ),
    )
    .with_label(span, "never reached")
}

fn models_block_missing(train: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::missing_entry",
        format!("train `{train}` has objectives but no `models` block"),
    )
    .with_label(span, "which models do the objectives train?")
    .with_help("declare them: `models { g = generator  d = discriminator }`")
}

fn objective_missing(train: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::missing_entry",
        format!("train `{train}` has models but no `objective`"),
    )
    .with_label(span, "nothing trains the models")
    .with_help(
        "add `objective fit { updates = m  loss = mse(m(x), y)  optimizer = adam(lr: 1e-3) }`",
    )
}

fn objective_entry_missing(objective: &str, key: &str, span: Span) -> Diagnostic {
    let example = match key {
        "updates" => "updates = m",
        "loss" => "loss = mse(m(x), x)",
        _ => "optimizer = adam(lr: 1e-3)",
    };
    error(
        "mlx::train::missing_entry",
        format!("objective `{objective}` has no `{key}`"),
    )
    .with_label(span, format!("`{key}` is required"))
    .with_help(format!("add `{example}`"))
}

fn objective_setting_unknown(path: &str, objective: &str, span: Span) -> Diagnostic {
    error(
        "mlx::set::unknown",
        format!("`{path}` names no entry of objective `{objective}`"),
    )
    .with_label(span, "unknown path")
    .with_help(format!(
        "an objective's entries are: {}",
        OBJECTIVE_KEYS.join(", ")
    ))
}

fn loss_not_scalar(objective: &str, shape: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::loss",
        format!(
            "the loss of objective `{objective}` must be a single number, but has shape {shape}"
        ),
    )
    .with_label(span, format!("shape {shape}"))
    .with_help("reduce it to a number: use a loss function such as `mse(a, b)`, or `mean(...)`")
}

fn loss_not_tensor(objective: &str, found: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::loss",
        format!(
            "the loss of objective `{objective}` must be a tensor computed from the batch, found {found}"
        ),
    )
    .with_label(span, "not computed from the models")
    .with_help("apply a model: `loss = mse(m(image), image)`")
}

fn loss_own_parameters(objective: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::loss",
        format!("objective `{objective}` applies a layer with parameters of its own"),
    )
    .with_label(span, "these parameters belong to no model of the train")
    .with_help("declare a model with this layer in `models` and apply it here, so an objective can update it")
}

fn updates_unreached(objective: &str, model: &str, span: Span, loss: Span) -> Diagnostic {
    error(
        "mlx::train::loss",
        format!(
            "objective `{objective}` updates `{model}`, but its loss does not depend on `{model}`'s parameters"
        ),
    )
    .with_label(span, "no gradient reaches this model")
    .with_secondary(
        loss,
        format!("`{model}` is not applied here (or only under `stop_gradient`)"),
    )
    .with_help(format!(
        "apply `{model}` in the loss, or remove it from `updates`"
    ))
}

fn plateau_in_objective(span: Span) -> Diagnostic {
    error(
        "mlx::value::range",
        "`reduce_on_plateau` is not available inside an objective",
    )
    .with_label(span, "a schedule that watches a figure")
    .with_help("use `step`, `exponential` or `cosine`, which depend on the epoch only")
}

fn cross_entropy_target(logits: &str, target: &str, span: Span) -> Diagnostic {
    error(
        "mlx::shape::mismatch",
        format!(
            "`cross_entropy` takes the class target or probabilities of the logits' shape {logits}, but got {target}"
        ),
    )
    .with_label(span, "neither the class labels nor a distribution over the classes")
    .with_help("give the dataset's `Class` target, or a tensor of class probabilities (`softmax(teacher(x))`)")
}

fn distance_to_class_labels(function: &str, span: Span) -> Diagnostic {
    error(
        "mlx::train::loss",
        format!("`{function}` measures distance to a number, but the target is a class label"),
    )
    .with_label(span, "class labels")
    .with_help("for class labels use `cross_entropy(logits, target)`")
}

fn loss_shape_mismatch(
    function: &str,
    pred: &str,
    target: &str,
    span: Span,
    target_span: Span,
) -> Diagnostic {
    error(
        "mlx::shape::mismatch",
        format!("`{function}` compares tensors of one shape, but got {pred} and {target}"),
    )
    .with_label(span, format!("shape {pred}"))
    .with_secondary(target_span, format!("shape {target}"))
    .with_help(format!(
        "reshape the target to the prediction's shape: `reshape(y, {pred})`, or `flatten` both"
    ))
}

fn noise_dim_not_whole(found: &str, batch: bool, float: bool, span: Span) -> Diagnostic {
    let d = error(
        "mlx::type::mismatch",
        format!(
            "a `noise` dimension must be a whole number{}, found {found}",
            if batch { " or `B`" } else { "" }
        ),
    )
    .with_label(span, "not a whole number");
    if float {
        d.with_help("write it without a decimal point")
    } else {
        d
    }
}

fn model_shape_changed(
    model: &str,
    now: &str,
    before: &str,
    span: Span,
    first: Span,
) -> Diagnostic {
    error(
        "mlx::shape::mismatch",
        format!(
            "model `{model}` is applied to {now} here, but to {before} before: a model of a train has one set of parameters"
        ),
    )
    .with_label(span, format!("{now} here"))
    .with_secondary(first, format!("{before} here"))
    .with_help("apply each model to inputs of one shape (only the number of rows may differ)")
}

fn grid_axis_twice(path: &str, span: Span, first: Span) -> Diagnostic {
    twice(
        format!("the grid lists `{path}` twice (the sweep would run duplicate points)"),
        (span, "listed again here"),
        (first, "first listed here"),
    )
    .with_help("put every value in one list: `optimizer.lr = [0.003, 0.01, 0.1]`")
}

fn sweep_figure_unknown(
    figure: &str,
    base: &str,
    split: &str,
    name: &str,
    objectives: &[String],
    span: Span,
) -> Diagnostic {
    let d = error(
        "mlx::sweep::objective",
        format!("`{figure}` is neither a figure mlx reports nor an objective of train `{base}`"),
    )
    .with_label(span, "unknown figure");
    match did_you_mean(name, objectives.iter().map(String::as_str)) {
        Some(x) => d.with_help(format!("did you mean `{split}.{x}`?")),
        None => d.with_help("write `val.loss`, `val.<metric>` or `val.<objective>`"),
    }
}

fn random_arg_range(key: &str, span: Span) -> Diagnostic {
    let least = if key == "trials" { 1 } else { 0 };
    error(
        "mlx::value::range",
        format!("`{key}` must be a whole number of at least {least}"),
    )
    .with_label(span, "out of range")
}

fn random_draw_twice(path: &str, span: Span, first: Span) -> Diagnostic {
    twice(
        format!("the random block draws `{path}` twice (the second draw would replace the first)"),
        (span, "drawn again here"),
        (first, "first drawn here"),
    )
    .with_help("give each setting one distribution")
}

fn random_repeats(repeats: &[(usize, usize)], trials: usize, span: Span) -> Diagnostic {
    let shown: Vec<String> = repeats
        .iter()
        .take(4)
        .map(|(k, j)| format!("trial {k} is trial {j}"))
        .collect();
    Diagnostic::warning(
        "mlx::sweep::repeat",
        format!(
            "{} of the {trials} random trials draw a point already drawn ({}{}): each repeat trains the same model again",
            repeats.len(),
            shown.join(", "),
            if repeats.len() > shown.len() { ", ..." } else { "" }
        ),
    )
    .with_label(span, "repeats points")
    .with_help("draw fewer trials, give the choices more values, or list the points in a `grid { ... }`")
}

fn distribution_range(dist: &str, span: Span) -> Diagnostic {
    let positive = if dist == "log_uniform" { "0 < " } else { "" };
    error(
        "mlx::value::range",
        format!("`{dist}` needs {positive}lo <= hi"),
    )
    .with_label(span, "empty or invalid range")
}
