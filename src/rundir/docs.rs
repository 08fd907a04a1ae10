//! The documents of a run directory as serde structs, shared by the writer (`train`) and every
//! reader: `summary.json`, a `metrics.jsonl` line, `sweep.json` and `input.json` (the model's
//! input schema). `mlx.lock` is in `lock.rs`. A change of a field here changes both sides, so
//! a format change breaks the build, not a user's run.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The figures of a split: metric name to a number (`null` when not finite) or a confusion
/// matrix.
pub type Figures = BTreeMap<String, Value>;

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Completed,
    Failed,
    /// Stopped by Ctrl-C at an epoch's end, with a checkpoint: `mlx resume` finishes it.
    Interrupted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }
}

/// `summary.json`: written when a run ends (completed or failed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run-directory format (0: written before mlx recorded one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format: u32,
    #[serde(default)]
    pub train: String,
    /// Absent only in files not written by mlx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why a failed run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs_run: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// What an epoch of `epochs_run`, `best_epoch` and `metrics.jsonl` counts when it is not an
    /// epoch: `"round"` (of boosting, or a forest's single round) for a tree model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Validation figures (the mean over folds for k-fold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val: Option<Figures>,
    /// Test figures (the mean over folds for k-fold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Figures>,
    /// Each fold of a k-fold run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<Vec<FoldSummary>>,
    /// The fold whose model was saved (k-fold: the last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_fold: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}

impl Summary {
    pub fn completed(&self) -> bool {
        self.status == Some(Status::Completed)
    }

    /// A split's figures by name (`val` or `test`).
    pub fn split(&self, split: &str) -> Option<&Figures> {
        match split {
            "val" => self.val.as_ref(),
            "test" => self.test.as_ref(),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FoldSummary {
    #[serde(default)]
    pub val: Figures,
    #[serde(default)]
    pub test: Figures,
    #[serde(default)]
    pub best_epoch: Option<usize>,
    #[serde(default)]
    pub epochs_run: Option<usize>,
}

/// One line of `metrics.jsonl`: an epoch's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// 1-based; absent in hand-written files (then the one after the fold's previous line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<usize>,
    /// The fold (1-based) of a k-fold run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<usize>,
    #[serde(default)]
    pub lr: Option<f64>,
    #[serde(default)]
    pub train: Figures,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val: Option<Figures>,
    #[serde(default)]
    pub seconds: Option<f64>,
}

/// `sweep.json`: every trial in trial order and the best by the objective.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepDoc {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format: u32,
    #[serde(default)]
    pub sweep: String,
    #[serde(default)]
    pub base: String,
    /// `split.metric`, e.g. `val.accuracy`.
    #[serde(default)]
    pub objective: String,
    #[serde(default)]
    pub direction: Direction,
    pub trials: Vec<TrialEntry>,
    #[serde(default)]
    pub best: Option<BestTrial>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Maximize,
    #[default]
    Minimize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialEntry {
    /// 1-based.
    #[serde(default)]
    pub trial: Option<usize>,
    /// The swept hyperparameters, as source text.
    #[serde(default)]
    pub point: BTreeMap<String, Value>,
    #[serde(default)]
    pub objective: Option<f64>,
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default)]
    pub summary: Option<Summary>,
    /// Absent for a completed trial; otherwise what `mlx sweep collect` found of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TrialStatus>,
    /// Why a failed trial stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TrialEntry {
    pub fn completed(&self) -> bool {
        self.status.is_none() && self.summary.as_ref().is_some_and(Summary::completed)
    }
}

/// A trial that has not completed, as `mlx sweep collect` found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    /// No directory of this trial's program.
    Missing,
    /// A directory, not finished: being run, or killed (`mlx run --trial` resumes it).
    Incomplete,
    /// The run stopped with an error (its summary says which).
    Failed,
}

impl TrialStatus {
    pub fn word(self) -> &'static str {
        match self {
            TrialStatus::Missing => "missing",
            TrialStatus::Incomplete => "incomplete",
            TrialStatus::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BestTrial {
    pub trial: usize,
    #[serde(default)]
    pub point: BTreeMap<String, Value>,
    #[serde(default)]
    pub objective: Option<f64>,
    #[serde(default)]
    pub dir: Option<String>,
}

/// A point's value as text (strings without quotes).
pub fn point_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `input.json`: what a model takes and gives, recorded at train time, so predictions and
/// clients need neither the training data nor the program to know it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSchema {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format: u32,
    pub train: String,
    /// The raw feature columns, in the model's order.
    pub features: Vec<InputFeature>,
    pub target: TargetSchema,
    /// Text that marks a missing value in CSV input (besides an empty field).
    #[serde(default)]
    pub missing: Vec<String>,
    /// The CSV field separator.
    #[serde(default = "comma")]
    pub separator: char,
    /// Rows per batch the model was trained with.
    #[serde(default)]
    pub batch: usize,
}

fn comma() -> char {
    ','
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputFeature {
    pub name: String,
    #[serde(flatten)]
    pub kind: InputKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum InputKind {
    /// A number (missing: `null`, empty, `NaN` or a missing token).
    Number,
    /// A category; `levels` are those seen in the training rows (others encode as unseen).
    Category { levels: Vec<String> },
    /// An image of raw pixel values 0..=255, `shape` as declared (`[C, H, W]` or `[H, W]`).
    Image { shape: Vec<usize> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetSchema {
    pub name: String,
    #[serde(flatten)]
    pub kind: TargetSchemaKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TargetSchemaKind {
    /// A classifier's class names, in output order.
    Class { classes: Vec<String> },
    /// A regression value.
    Value,
}

impl InputSchema {
    /// The class names of a classifier.
    pub fn classes(&self) -> Option<&[String]> {
        match &self.target.kind {
            TargetSchemaKind::Class { classes } => Some(classes),
            TargetSchemaKind::Value => None,
        }
    }

    /// The image feature, when the model takes one.
    pub fn image(&self) -> Option<(&str, &[usize])> {
        self.features.iter().find_map(|f| match &f.kind {
            InputKind::Image { shape } => Some((f.name.as_str(), shape.as_slice())),
            _ => None,
        })
    }
}

/// `sources.json`: the schema of every data source of the run as read when its program was
/// checked, so that predict, serve and plots can check `spec.mlx` again without the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSchemas {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format: u32,
    pub sources: Vec<RecordedSource>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedSource {
    /// The source's loader, as `driver::loader_key` spells it.
    pub loader: String,
    pub schema: crate::data::schema::Schema,
}

/// `profile.json`: what the training data and the model's answers looked like, written at
/// train time, the reference `mlx monitor` and `mlx serve` measure drift against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format: u32,
    pub train: String,
    /// Training rows the columns were profiled on.
    pub rows: usize,
    /// One per raw input column, in the model's order.
    pub columns: Vec<ColumnProfile>,
    /// The model's answers on the validation rows.
    pub predictions: Option<PredictionProfile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    /// Values present (not missing).
    pub count: usize,
    pub missing_rate: f64,
    #[serde(flatten)]
    pub kind: ColumnStats,
}

/// Histograms with their bins fixed at train time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ColumnStats {
    Number(NumberStats),
    /// Training levels (sorted) and how many training rows had each.
    Category {
        levels: Vec<String>,
        counts: Vec<u64>,
    },
    /// Per channel, counts of pixel values in `bins` equal bins over 0..=255.
    Image {
        channels: usize,
        bins: usize,
        counts: Vec<Vec<u64>>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumberStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    /// Inner bin edges (the training deciles, repeated values removed): bin `i` holds
    /// `edges[i-1] < x <= edges[i]`, the first and last bins are open.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    /// Evenly spaced order statistics of the training values (all of them up to 1000): the
    /// reference distribution of the KS statistic.
    pub quantiles: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PredictionProfile {
    /// How often each class was predicted (the argmax), in class order.
    Class {
        rows: usize,
        counts: Vec<u64>,
    },
    Value {
        rows: usize,
        stats: NumberStats,
    },
}
