//! The checker's mistakes in trains of one model and tree models, as data, and their diagnostics.

use super::super::trees::{CODE as TREES, MAX_BINS, MAX_DEPTH, MAX_TREES, SCALING};
use super::at;
use crate::diagnostics::Diagnostic;
use crate::source::Span;

#[derive(Debug)]
pub(crate) enum Error {
    // Entries and overrides.
    /// A `--set` or sweep path that names no entry or argument that can be overridden.
    OverridePath { path: String, span: Span },
    /// A required entry left out of a train.
    MissingEntry {
        train: String,
        key: &'static str,
        span: Span,
    },
    /// `data` is not a name.
    DataNotName { span: Span },
    /// `data` names an item that is not a dataset.
    NotDataset {
        name: String,
        kind: &'static str,
        span: Span,
        declared: Span,
    },

    // Scalar entries.
    /// A whole-number entry below its minimum (0 or 1).
    IntBelowMin {
        key: String,
        min: i64,
        value: i64,
        span: Span,
    },
    /// A whole-number entry past the largest integer.
    IntTooLarge { key: String, span: Span },
    /// A whole-number entry given something else (`found`: its description).
    NotWholeNumber {
        key: String,
        found: String,
        float: bool,
        span: Span,
    },
    /// `clip_grad` at or below zero.
    ClipGradRange { value: f64, span: Span },
    /// `clip_grad` not a number.
    ClipGradNotNumber { span: Span },
    /// More shards than rows in a batch.
    ShardsOverBatch {
        shards: usize,
        batch: usize,
        span: Span,
    },
    /// Shards over a streamed dataset.
    ShardsStreamed {
        dataset: String,
        span: Span,
        dataset_span: Span,
    },

    // Loss, optimizer, schedule.
    /// A train with a built-in loss on a dataset without a target.
    TargetAbsent { dataset: String, span: Span },
    /// `cross_entropy` on a Float target.
    LossNeedsClasses { dataset: String, span: Span },
    /// A distance loss (`mse`, `mae`, `huber`) on a Class target.
    LossNeedsNumber {
        loss: &'static str,
        dataset: String,
        span: Span,
    },
    /// `binary_cross_entropy` on a target of other than 2 classes.
    BinaryLossClasses {
        classes: usize,
        dataset: String,
        span: Span,
    },
    /// `sgd(nesterov: true)` without momentum.
    NesterovWithoutMomentum { span: Span },
    /// A cosine schedule whose warmup is not shorter than the epochs.
    WarmupTooLong {
        warmup: usize,
        epochs: i64,
        span: Span,
    },

    // Metrics and monitors.
    /// `metrics` is not a list.
    MetricsNotList { span: Span },
    /// An item of `metrics` is not a name.
    MetricNotName { span: Span },
    /// A metric listed twice (a warning).
    MetricTwice { name: String, span: Span },
    /// A classification metric on a regression target, or the other way round.
    MetricWrongKind {
        metric: &'static str,
        dataset: String,
        classification: bool,
        span: Span,
    },
    /// A validation quantity watched without a validation split.
    MonitorNoValidation { name: String, span: Span },
    /// A metric watched that `metrics` does not compute.
    MonitorNotComputed {
        name: String,
        metric: &'static str,
        span: Span,
    },
    /// Early stopping's patience not below the epochs or rounds (a warning).
    PatienceNeverReached {
        patience: i64,
        limit: i64,
        rounds: bool,
        span: Span,
    },

    // The model.
    /// `model` given something other than a model (`found`: its description).
    NotModel { found: String, span: Span },
    /// More positional hyperparameters than the model declares.
    TooManyHyper {
        model: String,
        count: usize,
        span: Span,
    },
    /// Hyperparameters given to a model that declares none.
    NoHyper { model: String, span: Span },

    // Tree models.
    /// A tree model where only networks go (an objective's models).
    TreeModelNotNetwork { name: String, span: Span },
    /// A train entry that means nothing to a tree model (`why`: the reason).
    NotForTrees {
        key: String,
        why: &'static str,
        span: Span,
    },
    /// A loss trees cannot minimise for the target.
    TreeLoss { classes: bool, span: Span },
    /// A tree model on a dataset of tensors.
    TreesOnTensors {
        model: String,
        dataset: String,
        shape: Vec<usize>,
        span: Span,
        data_span: Span,
    },
    /// A tree model on a streamed dataset.
    TreesStreamed {
        model: String,
        dataset: String,
        span: Span,
        dataset_span: Span,
    },
    /// More than `MAX_TREES` trees.
    TooManyTrees { trees: usize, span: Span },
    /// Deeper than `MAX_DEPTH`.
    TooDeep { depth: usize, span: Span },
    /// More than `MAX_BINS` bins.
    TooManyBins { bins: usize, span: Span },
    /// `max_features` above the dataset's feature count.
    MaxFeaturesOverWidth {
        max: usize,
        width: usize,
        dataset: String,
        span: Span,
    },
    /// Early stopping on a random forest.
    ForestEarlyStop { span: Span },
    /// A network on a dataset that keeps missing values (`columns`: those kept, first first).
    MissingForNetwork {
        dataset: String,
        columns: Vec<String>,
        span: Span,
        dataset_span: Span,
    },
    /// Features rescaled for a tree model (a warning).
    ScaledForTrees {
        dataset: String,
        columns: Vec<String>,
        model: String,
        span: Span,
        dataset_span: Span,
    },
}

impl Error {
    pub(crate) fn diagnostic(self) -> Diagnostic {
        use Error as E;
        match self {
            E::OverridePath { path, span } => at(
                "mlx::set::unknown",
                format!("`{path}` is not a setting that can be overridden"),
                span,
                "unknown path",
            )
            .with_help("override a whole entry (`epochs`) or one argument of it (`optimizer.lr`, `model.hidden`)"),
            E::MissingEntry { train, key, span } => missing_entry(&train, key, span),
            E::DataNotName { span } => at(
                "mlx::type::mismatch",
                "`data` names a dataset",
                span,
                "not a dataset name",
            ),
            E::NotDataset { name, kind, span, declared } => at(
                "mlx::name::kind",
                format!("`{name}` is a {kind}, not a dataset"),
                span,
                "not a dataset",
            )
            .with_secondary(declared, "declared here"),
            E::IntBelowMin { key, min, value, span } => {
                let what = if min == 0 { "at least 0" } else { "a positive integer" };
                let message = format!("`{key}` must be {what}, but is {value}");
                at("mlx::value::range", message, span, "out of range")
            }
            E::IntTooLarge { key, span } => at(
                "mlx::value::range",
                format!("`{key}` is too large: a whole number here is at most {}", i64::MAX),
                span,
                "too large",
            ),
            E::NotWholeNumber { key, found, float, span } => {
                let message = format!("`{key}` must be a whole number, found {found}");
                let d = at("mlx::type::mismatch", message, span, "not an integer");
                if float { d.with_help("write it without a decimal point") } else { d }
            }
            E::ClipGradRange { value, span } => at(
                "mlx::value::range",
                format!("`clip_grad` must be greater than 0, but is {value}"),
                span,
                "out of range",
            ),
            E::ClipGradNotNumber { span } => at(
                "mlx::type::mismatch",
                "`clip_grad` must be a number: the largest allowed gradient norm",
                span,
                "not a number",
            ),
            E::ShardsOverBatch { shards, batch, span } => at(
                "mlx::value::range",
                format!("`shards` ({shards}) is larger than `batch` ({batch}): a shard is a part of a batch"),
                span,
                "more shards than rows in a batch",
            )
            .with_help(format!("use at most {batch} shards, or a larger batch")),
            E::ShardsStreamed { dataset, span, dataset_span } => at(
                "mlx::data::stream",
                format!("`shards` spreads batches of rows held in memory, but dataset `{dataset}` is streamed"),
                span,
                "sharded",
            )
            .with_secondary(dataset_span, "streamed dataset")
            .with_help("remove `shards`, or `stream = true` from the dataset"),
            E::TargetAbsent { dataset, span } => at(
                "mlx::data::target",
                format!("dataset `{dataset}` has no `target`, so `model =` with a built-in loss has nothing to learn"),
                span,
                "a dataset without a target",
            )
            .with_help("add `target COLUMN: Class[K]` or `target COLUMN: Float` to the dataset, or write the loss as an objective: `models { m = ... }` and `objective fit { updates = m  loss = mse(m(image), image)  optimizer = adam(lr: 1e-3) }`"),
            E::LossNeedsClasses { dataset, span } => loss_misfit(
                "`cross_entropy` needs class labels, but the target is a Float".to_string(),
                &dataset,
                span,
                "for a Float target use `mse`, `mae` or `huber(delta)`",
            ),
            E::LossNeedsNumber { loss, dataset, span } => loss_misfit(
                format!("`{loss}` measures distance to a number, but the target is a class label"),
                &dataset,
                span,
                "for a Class target use `cross_entropy` (or `binary_cross_entropy` with 2 classes)",
            ),
            E::BinaryLossClasses { classes, dataset, span } => loss_misfit(
                format!("`binary_cross_entropy` needs exactly 2 classes, but the target has {classes}"),
                &dataset,
                span,
                "use `cross_entropy` for more than 2 classes",
            ),
            E::NesterovWithoutMomentum { span } => at(
                "mlx::value::range",
                "Nesterov momentum needs `momentum` above 0",
                span,
                "no momentum to look ahead with",
            )
            .with_help("add `momentum: 0.9`"),
            E::WarmupTooLong { warmup, epochs, span } => at(
                "mlx::value::range",
                format!("a warmup of {warmup} epochs leaves no room in {epochs} epochs"),
                span,
                "warmup too long",
            ),
            E::MetricsNotList { span } => at(
                "mlx::type::mismatch",
                "`metrics` is a list such as `[accuracy, macro_f1]`",
                span,
                "not a list",
            ),
            E::MetricNotName { span } => at(
                "mlx::type::mismatch",
                "a metric is a name such as `accuracy`",
                span,
                "not a metric",
            ),
            E::MetricTwice { name, span } => {
                Diagnostic::warning("mlx::train::metric", format!("`{name}` is listed twice"))
                    .with_label(span, "repeated")
            }
            E::MetricWrongKind { metric, dataset, classification, span } => {
                metric_wrong_kind(metric, &dataset, classification, span)
            }
            E::MonitorNoValidation { name, span } => at(
                "mlx::train::monitor",
                format!("`{name}` is watched, but the dataset has no validation split"),
                span,
                "nothing to monitor",
            )
            .with_help("give the dataset a validation split (`split = random(train: 0.8, val: 0.2)` or `holdout(val: 0.1)`), or monitor `train.loss`"),
            E::MonitorNotComputed { name, metric, span } => at(
                "mlx::train::monitor",
                format!("`{name}` is watched, but `{metric}` is not in `metrics`"),
                span,
                "not computed",
            )
            .with_help(format!("add `{metric}` to `metrics`")),
            E::PatienceNeverReached { patience, limit, rounds, span } => {
                let message = if rounds {
                    format!("patience {patience} is not below the {limit} rounds: early stopping can never trigger")
                } else {
                    format!("patience {patience} is not below epochs {limit}: early stopping can never trigger")
                };
                Diagnostic::warning("mlx::train::patience", message).with_label(span, "never reached")
            }
            E::NotModel { found, span } => at(
                "mlx::type::mismatch",
                format!("`model` must name a model, found {found}"),
                span,
                "not a model",
            ),
            E::TooManyHyper { model, count, span } => at(
                "mlx::type::arity",
                format!(
                    "model `{model}` takes {count} hyperparameter{}, but more were given",
                    super::super::model::plural(count)
                ),
                span,
                "one too many",
            ),
            E::NoHyper { model, span } => at(
                "mlx::type::arity",
                format!("model `{model}` has no hyperparameters"),
                span,
                "hyperparameters given here",
            ),
            E::TreeModelNotNetwork { name, span } => at(
                TREES,
                format!("`{name}` is a tree model, grown by its own train"),
                span,
                "a tree model",
            )
            .with_help(format!(
                "train it on its own: `train t {{ model = {name}(...)  data = ... }}`; objectives train networks by their gradients, which trees do not have"
            )),
            E::NotForTrees { key, why, span } => {
                at(TREES, format!("a tree model has no `{key}`"), span, "not used by trees")
                    .with_help(format!("remove `{key}`: {why}"))
            }
            E::TreeLoss { classes, span } => at(
                "mlx::train::loss",
                "a tree model cannot minimise this loss for this target",
                span,
                "not a loss trees are grown for",
            )
            .with_help(if classes {
                "a tree model on classes minimises `cross_entropy` (log-loss for two classes, softmax for more), without label smoothing; leave `loss` out to get it"
            } else {
                "a tree model on values minimises `mse` or `huber(delta)`; leave `loss` out for `mse`"
            }),
            E::TreesOnTensors { model, dataset, shape, span, data_span } => at(
                TREES,
                format!("`{model}` takes a table of features, but dataset `{dataset}` gives tensors of shape {shape:?} a row"),
                span,
                "a tree model",
            )
            .with_secondary(data_span, "rows of tensors (images)")
            .with_help("use a network (a `model`) for images, or a dataset of columns for trees"),
            E::TreesStreamed { model, dataset, span, dataset_span } => at(
                "mlx::data::stream",
                format!("`{model}` grows each tree from every training row at once, but dataset `{dataset}` is streamed"),
                span,
                "a tree model",
            )
            .with_secondary(dataset_span, "streamed dataset")
            .with_help("remove `stream = true` from the dataset to train trees on it"),
            E::TooManyTrees { trees, span } => at(
                "mlx::value::range",
                format!("`trees` is at most {MAX_TREES}, but is {trees}"),
                span,
                "too many trees",
            )
            .with_help("use a larger `lr` with fewer rounds, or early stopping to find the count"),
            E::TooDeep { depth, span } => at(
                "mlx::value::range",
                format!("`depth` is at most {MAX_DEPTH}, but is {depth}"),
                span,
                "too deep",
            )
            .with_help(format!(
                "trees are stored complete ({} leaves at depth {MAX_DEPTH}); use more trees rather than deeper ones",
                1usize << MAX_DEPTH
            )),
            E::TooManyBins { bins, span } => at(
                "mlx::value::range",
                format!("`bins` is at most {MAX_BINS}, but is {bins}"),
                span,
                "too many bins",
            )
            .with_help("each value is binned into one byte, one bin kept for missing values"),
            E::MaxFeaturesOverWidth { max, width, dataset, span } => at(
                "mlx::value::range",
                format!("`max_features` is {max}, but dataset `{dataset}` gives {width} features"),
                span,
                "more than there are",
            )
            .with_help(format!("use at most {width}")),
            E::ForestEarlyStop { span } => at(
                TREES,
                "a random forest has no rounds for early stopping to cut",
                span,
                "early stopping",
            )
            .with_help("remove `early_stop`: a forest's trees are grown independently and averaged; `gradient_boosting` stops early in rounds"),
            E::MissingForNetwork { dataset, columns, span, dataset_span } => {
                missing_for_network(&dataset, &columns, span, dataset_span)
            }
            E::ScaledForTrees { dataset, columns, model, span, dataset_span } => {
                scaled_for_trees(&dataset, &columns, &model, span, dataset_span)
            }
        }
    }
}

fn missing_entry(train: &str, key: &str, span: Span) -> Diagnostic {
    let example = match key {
        "model" => "model = my_model",
        "data" => "data = my_dataset",
        "loss" => "loss = cross_entropy",
        "optimizer" => "optimizer = adam(lr: 1e-3)",
        _ => "epochs = 10",
    };
    Diagnostic::error(
        "mlx::train::missing_entry",
        format!("train `{train}` has no `{key}`"),
    )
    .with_label(span, format!("`{key}` is required"))
    .with_help(format!("add `{example}`"))
}

fn loss_misfit(message: String, dataset: &str, span: Span, help: &str) -> Diagnostic {
    Diagnostic::error("mlx::train::loss", message)
        .with_label(span, format!("does not fit the target of `{dataset}`"))
        .with_help(help)
}

fn metric_wrong_kind(metric: &str, dataset: &str, classification: bool, span: Span) -> Diagnostic {
    let (task, other, target) = if classification {
        (
            "classification",
            "accuracy, precision, recall, f1, macro_f1, confusion, roc_auc",
            "Class",
        )
    } else {
        ("regression", "mse, rmse, mae, r2", "Float")
    };
    at(
        "mlx::train::metric",
        format!("`{metric}` does not measure {task}: dataset `{dataset}` has a {target} target"),
        span,
        "wrong kind of metric",
    )
    .with_help(format!("{task} metrics are: {other}"))
}

fn missing_for_network(dataset: &str, columns: &[String], span: Span, keep: Span) -> Diagnostic {
    let first = columns.first().map_or("", String::as_str);
    let more = if columns.len() > 1 {
        format!(" and {} more", columns.len() - 1)
    } else {
        String::new()
    };
    at(
        "mlx::data::missing_values",
        format!("dataset `{dataset}` keeps the missing values of `{first}`{more} for the model, but a network cannot take NaN"),
        span,
        "a network on this dataset",
    )
    .with_secondary(keep, "`keep_missing` here")
    .with_help("impute the column (`impute(median)`) for a network; `keep_missing` is for `gradient_boosting` and `random_forest`, which learn where missing values go")
}

fn scaled_for_trees(
    dataset: &str,
    columns: &[String],
    model: &str,
    span: Span,
    rescaled: Span,
) -> Diagnostic {
    let shown: Vec<String> = columns.iter().take(4).map(|c| format!("`{c}`")).collect();
    let more = if columns.len() > 4 {
        format!(" and {} more", columns.len() - 4)
    } else {
        String::new()
    };
    Diagnostic::warning(
        SCALING,
        format!(
            "dataset `{dataset}` rescales {}{more} for `{model}`: a tree's splits do not depend on the scale of a feature",
            shown.join(", "),
        ),
    )
    .with_label(span, "a tree model")
    .with_secondary(rescaled, "rescaled features")
    .with_help("trees need no `standardize`, `min_max`, `robust_scale`, `normalize` or `scale` (they change nothing but the thresholds); keep them only if a network shares the dataset")
}
