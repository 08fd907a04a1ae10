//! The checked program: every model instantiated with concrete hyperparameters as a graph of
//! typed, shaped nodes (the batch dimension may stay symbolic), and every dataset, train and
//! sweep resolved into plain plans. This is what `ir::lower` and the runtime consume.

use super::dim::Dim;
use crate::source::Span;
use serde::Serialize;

pub type NodeId = usize;
pub type InstanceId = usize;

/// The name of the batch dimension symbol in shapes bound by a `train`.
pub const BATCH: &str = "B";

#[derive(Clone, Debug, Default)]
pub struct Program {
    pub instances: Vec<Instance>,
    pub datasets: Vec<DatasetPlan>,
    pub trains: Vec<TrainPlan>,
    pub sweeps: Vec<SweepPlan>,
    /// Names of the `train` and `sweep` items declared in the root file (what `mlx run` runs).
    pub root_trains: Vec<String>,
    pub root_sweeps: Vec<String>,
}

/// One model applied to inputs of known shapes with known hyperparameters.
#[derive(Clone, Debug)]
pub struct Instance {
    /// The model's name (`dense`), or `lambda` for a scan step.
    pub model: String,
    pub span: Span,
    pub inputs: Vec<Vec<Dim>>,
    pub params: Vec<ParamDecl>,
    pub nodes: Vec<Node>,
    pub results: Vec<NodeId>,
    /// A short description of the hyperparameters, for dumps: `units=64`.
    pub signature: String,
}

#[derive(Clone, Debug)]
pub struct ParamDecl {
    pub name: String,
    pub shape: Vec<Dim>,
    pub init: Init,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Init {
    Zeros,
    Ones,
    Constant(f64),
    Uniform {
        lo: f64,
        hi: f64,
    },
    Normal {
        mean: f64,
        std: f64,
    },
    GlorotUniform {
        fan: Fan,
    },
    GlorotNormal {
        fan: Fan,
    },
    HeUniform {
        fan: Fan,
    },
    HeNormal {
        fan: Fan,
    },
    /// PyTorch's default for linear and convolution layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    LecunUniform {
        fan: Fan,
    },
    Orthogonal {
        gain: f64,
    },
}

/// Explicit fan-in/fan-out overrides; `None` means "derive from the shape".
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize)]
pub struct Fan {
    pub fan_in: Option<i64>,
    pub fan_out: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub shape: Vec<Dim>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Unary {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Relu,
    Sign,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PoolKind {
    Max,
    Avg,
}

#[derive(Clone, Debug)]
pub enum Op {
    Input(usize),
    Param(usize),
    /// A rank-0 constant.
    Scalar(f64),
    /// A tensor of the node's shape, every element `value`.
    Fill(f64),
    Unary(Unary, NodeId),
    /// Elementwise with NumPy broadcasting to the node's shape.
    Binary(Binary, NodeId, NodeId),
    /// `where(cond, a, b)`, broadcasting.
    Where(NodeId, NodeId, NodeId),
    /// `a @ b`: matrix product over the last two axes, batch axes broadcast.
    MatMul(NodeId, NodeId),
    Reduce {
        f: Reduce,
        x: NodeId,
        axes: Vec<usize>,
        keepdims: bool,
    },
    /// Same elements, the node's shape.
    Reshape(NodeId),
    Permute(NodeId, Vec<usize>),
    Slice {
        x: NodeId,
        axis: usize,
        start: Dim,
    },
    Concat {
        xs: Vec<NodeId>,
        axis: usize,
    },
    /// 2-D convolution, NCHW input, weight `[Cout, Cin, kh, kw]`.
    Conv {
        x: NodeId,
        w: NodeId,
        stride: i64,
        padding: i64,
    },
    Pool {
        kind: PoolKind,
        x: NodeId,
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    /// Rows of `table` picked by the integer values of `indices`.
    Gather {
        table: NodeId,
        indices: NodeId,
    },
    /// Random 0/1 mask of the node's shape with P(1) = p, from the layer's dropout stream.
    Bernoulli(f64),
    /// `train` while training, `eval` otherwise (dropout, batch statistics).
    WhenTraining {
        train: NodeId,
        eval: NodeId,
    },
    StopGradient(NodeId),
    /// Batch normalisation over every axis but 1, with running statistics kept as state.
    BatchNorm {
        x: NodeId,
        gamma: NodeId,
        beta: NodeId,
        momentum: f64,
        eps: f64,
    },
    /// Apply another instance; its parameters live under `layer`.
    Call {
        instance: InstanceId,
        args: Vec<NodeId>,
        layer: String,
    },
    /// Run `body` along `axis` of `xs`: inputs `(x_t, states..., captures...)`, results the new
    /// states; the node's value is the first state stacked along `axis`.
    Scan {
        body: InstanceId,
        xs: NodeId,
        axis: usize,
        init: Vec<NodeId>,
        captures: Vec<NodeId>,
    },
    /// A loss function used as a function in an objective (`mse(a, b)`): a scalar, the mean
    /// over the batch (and over every other axis) of the per-element loss.
    LossFn {
        f: LossFn,
        pred: NodeId,
        target: NodeId,
    },
}

impl Op {
    /// Every operand of the op (both branches of `when_training`).
    pub fn operands(&self) -> Vec<NodeId> {
        match self {
            Op::Input(_) | Op::Param(_) | Op::Scalar(_) | Op::Fill(_) | Op::Bernoulli(_) => vec![],
            Op::Unary(_, x)
            | Op::Reduce { x, .. }
            | Op::Reshape(x)
            | Op::Permute(x, _)
            | Op::Slice { x, .. }
            | Op::Pool { x, .. }
            | Op::StopGradient(x) => vec![*x],
            Op::Binary(_, a, c) | Op::MatMul(a, c) => vec![*a, *c],
            Op::Where(c, a, e) => vec![*c, *a, *e],
            Op::Concat { xs, .. } => xs.clone(),
            Op::Conv { x, w, .. } => vec![*x, *w],
            Op::Gather { table, indices } => vec![*table, *indices],
            Op::WhenTraining { train, eval } => vec![*train, *eval],
            Op::BatchNorm { x, gamma, beta, .. } => vec![*x, *gamma, *beta],
            Op::Call { args, .. } => args.clone(),
            Op::Scan {
                xs, init, captures, ..
            } => {
                let mut v = vec![*xs];
                v.extend(init.iter().copied());
                v.extend(captures.iter().copied());
                v
            }
            Op::LossFn { pred, target, .. } => vec![*pred, *target],
        }
    }
}

/// The loss functions an objective can call.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum LossFn {
    /// Logits `[B, K]` against class labels `[B]` (one-hot, optionally smoothed).
    CrossEntropy {
        label_smoothing: f64,
    },
    /// Logits `[B, K]` against a distribution over the classes `[B, K]`.
    SoftCrossEntropy,
    /// Probabilities against 0/1 targets (logs clamped at -100, as PyTorch does).
    BinaryCrossEntropy,
    /// Logits against 0/1 targets, computed stably.
    BceWithLogits,
    Mse,
    Mae,
    Huber {
        delta: f64,
    },
}

// ---------------------------------------------------------------------------------------------
// Data, training and sweep plans.

#[derive(Clone, Debug, Serialize)]
pub struct DatasetPlan {
    pub name: String,
    #[serde(skip)]
    pub span: Span,
    pub sources: Vec<SourcePlan>,
    pub dedup: bool,
    /// `stream = true`: the rows are read from the sources pass by pass, never held whole.
    pub stream: Option<StreamPlan>,
    pub split: Split,
    pub features: Vec<FeaturePlan>,
    pub target: TargetPlan,
    /// Shape of one example's feature tensor (without the batch axis).
    pub feature_shape: Vec<usize>,
}

/// A streamed dataset: rows split by a seeded hash of their text, statistics fitted in passes
/// over the training rows, batches drawn through a shuffle buffer of `buffer` rows (`None`:
/// the default, sized at run time from the row width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StreamPlan {
    pub buffer: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceRole {
    All,
    Train,
    Val,
    Test,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum Loader {
    Csv {
        path: std::path::PathBuf,
        missing: Vec<String>,
        sep: char,
    },
    Idx {
        images: std::path::PathBuf,
        /// `None`: images without labels (`idx("images.gz")`).
        #[serde(skip_serializing_if = "Option::is_none")]
        labels: Option<std::path::PathBuf>,
    },
    /// `parquet("file.parquet")`.
    Parquet { path: std::path::PathBuf },
    /// `sql("sqlite:file.db" | "postgres://...", query: "SELECT ...")`.
    Sql { url: String, query: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct SourcePlan {
    pub role: SourceRole,
    pub loader: Loader,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Split {
    /// Separate sources only (no validation split).
    None,
    Random {
        train: f64,
        val: f64,
        test: f64,
        stratify: bool,
    },
    Holdout {
        val: f64,
        stratify: bool,
    },
    KFold {
        k: usize,
        stratify: bool,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct FeaturePlan {
    pub column: String,
    pub kind: ColumnKind,
    pub steps: Vec<Step>,
    /// Number of model-input values this feature contributes (one-hot width, 1, or the
    /// element count of a tensor feature).
    pub width: usize,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ColumnKind {
    Numeric,
    /// Text categories; `levels` is the column's domain as read at check time (sorted).
    Category {
        levels: Vec<String>,
    },
    /// A tensor per example (IDX images), stored as bytes.
    Tensor {
        shape: Vec<usize>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    ImputeMean,
    ImputeMedian,
    ImputeMode,
    ImputeConstant {
        value: ConstValue,
    },
    DropMissing,
    /// Missing values stay NaN for the model (tree ensembles route them).
    KeepMissing,
    Standardize,
    MinMax,
    RobustScale,
    Normalize {
        mean: f64,
        std: f64,
    },
    Scale {
        factor: f64,
    },
    Log1p,
    Clip {
        lo: f64,
        hi: f64,
    },
    Winsorize {
        lo: f64,
        hi: f64,
    },
    OneHot,
    Ordinal,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ConstValue {
    Number(f64),
    Text(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetPlan {
    pub column: String,
    pub kind: TargetKind,
    pub drop_missing: bool,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TargetKind {
    /// `classes` labels; `levels` names them (text labels sorted, or the integers `0..K`).
    Class {
        classes: usize,
        levels: Vec<String>,
        numeric: bool,
    },
    Regression,
    /// The dataset declares no `target`: its features are all there is (objectives only).
    Absent,
}

impl TargetKind {
    pub fn classes(&self) -> Option<usize> {
        match self {
            TargetKind::Class { classes, .. } => Some(*classes),
            TargetKind::Regression | TargetKind::Absent => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainPlan {
    pub name: String,
    #[serde(skip)]
    pub span: Span,
    /// The model as written, with every hyperparameter: `classifier(hidden: 32)`.
    pub model_call: String,
    #[serde(skip)]
    pub instance: InstanceId,
    pub dataset: String,
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
    pub metrics: Vec<Metric>,
    pub early_stop: Option<EarlyStop>,
    pub clip_grad: Option<f64>,
    pub checkpoint_every: usize,
    /// Data-parallel training: each batch cut into this many shards whose gradients are
    /// computed apart and added in shard order (on one process or spread over MPI ranks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<usize>,
    /// Every resolved setting as `key -> value text`, defaults filled in (for the lock file
    /// and `mlx compare`).
    pub resolved: Vec<(String, String)>,
    /// The memory one training step needs (`mlx check --verbose` prints it).
    #[serde(skip)]
    pub memory: super::memory::MemoryEstimate,
    /// A train with a `models` block and objectives; `None` for `model = ...` with a built-in
    /// loss (then `instance`, `loss` and `optimizer` above are the train).
    #[serde(skip)]
    pub multi: Option<MultiPlan>,
    /// The `models` and `objective` blocks in canonical form, `--set` applied (for `spec.mlx`).
    pub blocks: String,
    /// A tree ensemble (`model = gradient_boosting(...)` or `random_forest(...)`): then
    /// `instance` and `optimizer` are unused placeholders and `epochs` counts rounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trees: Option<TreePlan>,
}

/// Which tree ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TreeKind {
    /// Gradient-boosted trees, second order, one tree per round (K for K classes).
    Boosting,
    /// A random forest: bootstrapped trees, class shares or means averaged.
    Forest,
}

/// A tree-ensemble model with every argument resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TreePlan {
    pub kind: TreeKind,
    /// Rounds of boosting, or trees of the forest.
    pub trees: usize,
    /// Every tree is stored complete to this depth.
    pub depth: usize,
    /// Boosting: the learning rate (shrinkage).
    pub lr: f64,
    /// Boosting: the least hessian sum in a child.
    pub min_child_weight: f64,
    /// Boosting: L2 regularisation of leaf values (λ).
    pub l2: f64,
    /// Boosting: the least gain of a split (γ).
    pub min_split_gain: f64,
    /// Boosting: the share of rows drawn for each round.
    pub subsample: f64,
    /// Boosting: the share of features drawn for each tree.
    pub colsample: f64,
    /// Forest: features tried at each split (`None`: √F for classes, F for values).
    pub max_features: Option<usize>,
    /// Forest: the fewest training rows in a leaf.
    pub min_samples_leaf: usize,
    /// Forest: each tree draws its rows with replacement.
    pub bootstrap: bool,
    /// Quantile bins per feature (fitted on the training rows).
    pub bins: usize,
    /// Trees per round: the classes for softmax boosting and forest classification, else 1.
    pub outputs: usize,
}

impl TreePlan {
    /// Internal nodes of one (complete) tree.
    pub fn nodes(&self) -> usize {
        (1usize << self.depth) - 1
    }

    /// Leaves of one (complete) tree.
    pub fn leaves(&self) -> usize {
        1usize << self.depth
    }
}

/// Several models trained by objectives written as expressions.
#[derive(Clone, Debug)]
pub struct MultiPlan {
    pub models: Vec<ModelSlot>,
    pub objectives: Vec<ObjectivePlan>,
    pub samples: Option<SamplesPlan>,
}

/// `g = generator(latent: 64)` in a `models` block.
#[derive(Clone, Debug)]
pub struct ModelSlot {
    pub name: String,
    /// The model as written with every hyperparameter: `generator(latent: 64)`.
    pub call: String,
    pub span: Span,
    /// The model applied to its first input shapes (batch axis `B`), for prediction.
    pub instance: Option<InstanceId>,
}

/// One objective: its loss as an instance whose inputs are the features `[B, ...]`, the target
/// (class labels `[B]` or values `[B, 1]`; a scalar placeholder when the dataset has none),
/// then one standard-normal draw per `noise(...)` call, in order.
#[derive(Clone, Debug)]
pub struct ObjectivePlan {
    pub name: String,
    pub span: Span,
    pub instance: InstanceId,
    /// The models whose parameters this objective changes (names of `models` entries).
    pub updates: Vec<String>,
    pub noise: Vec<Vec<Dim>>,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub clip_grad: Option<f64>,
}

/// `samples = EXPR`: an instance of the same input convention as an objective's, evaluated
/// after every epoch.
#[derive(Clone, Debug)]
pub struct SamplesPlan {
    pub instance: InstanceId,
    pub noise: Vec<Vec<Dim>>,
    pub shape: Vec<Dim>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Loss {
    CrossEntropy { label_smoothing: f64 },
    BinaryCrossEntropy,
    Mse,
    Mae,
    Huber { delta: f64 },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Optimizer {
    Sgd {
        lr: f64,
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    },
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    AdamW {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    RmsProp {
        lr: f64,
        alpha: f64,
        eps: f64,
        momentum: f64,
        weight_decay: f64,
    },
}

impl Optimizer {
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::Adam { lr, .. }
            | Optimizer::AdamW { lr, .. }
            | Optimizer::RmsProp { lr, .. } => *lr,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    Step {
        every: usize,
        gamma: f64,
    },
    Exponential {
        gamma: f64,
    },
    Cosine {
        warmup: usize,
        min_lr: f64,
    },
    ReduceOnPlateau {
        monitor: Monitor,
        factor: f64,
        patience: usize,
        min_lr: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    Precision,
    Recall,
    F1,
    MacroF1,
    Confusion,
    RocAuc,
    Mse,
    Rmse,
    Mae,
    R2,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::Accuracy,
        Metric::Precision,
        Metric::Recall,
        Metric::F1,
        Metric::MacroF1,
        Metric::Confusion,
        Metric::RocAuc,
        Metric::Mse,
        Metric::Rmse,
        Metric::Mae,
        Metric::R2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1",
            Metric::MacroF1 => "macro_f1",
            Metric::Confusion => "confusion",
            Metric::RocAuc => "roc_auc",
            Metric::Mse => "mse",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }

    pub fn for_classification(self) -> bool {
        matches!(
            self,
            Metric::Accuracy
                | Metric::Precision
                | Metric::Recall
                | Metric::F1
                | Metric::MacroF1
                | Metric::Confusion
                | Metric::RocAuc
        )
    }

    /// Whether a larger value is better (for monitors and sweep objectives).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Mse | Metric::Rmse | Metric::Mae)
    }
}

/// `val.loss` or `val.<metric>` (or `train.` for training figures).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Monitor {
    pub split: String,
    pub metric: Option<Metric>,
    /// `val.<objective>`: an objective's mean loss (trains with objectives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
}

impl Monitor {
    pub fn name(&self) -> String {
        if let Some(o) = &self.objective {
            return format!("{}.{o}", self.split);
        }
        format!(
            "{}.{}",
            self.split,
            self.metric.map_or("loss", Metric::name)
        )
    }

    pub fn higher_is_better(&self) -> bool {
        self.metric.is_some_and(Metric::higher_is_better)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EarlyStop {
    pub monitor: Monitor,
    pub patience: usize,
    pub min_delta: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepPlan {
    pub name: String,
    pub base: String,
    pub objective: Monitor,
    pub maximize: bool,
    /// Every point, each a list of `(path, value text)` overrides, checked.
    pub points: Vec<Vec<(String, String)>>,
    /// The base train re-checked at each point.
    #[serde(skip)]
    pub trains: Vec<TrainPlan>,
}
