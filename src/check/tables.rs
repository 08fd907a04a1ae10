//! Every configuration call mlx knows, as signature tables: data sources, splits,
//! preprocessing steps, losses, optimizers, schedules, early stopping and checkpoints. The
//! defaults and ranges here are the documented ones.

use super::config::{Default as D, Kind, Range as R, Sig, p};

pub const SOURCES: &[Sig] = &[
    Sig {
        name: "csv",
        params: &[
            p("path", Kind::Str, R::Any, D::Required),
            p("missing", Kind::Str, R::Any, D::Absent),
            p("sep", Kind::Str, R::Any, D::Absent),
        ],
    },
    Sig {
        name: "idx",
        params: &[
            p("images", Kind::Str, R::Any, D::Required),
            p("labels", Kind::Str, R::Any, D::Absent),
        ],
    },
    Sig {
        name: "parquet",
        params: &[p("path", Kind::Str, R::Any, D::Required)],
    },
    Sig {
        name: "sql",
        params: &[
            p("url", Kind::Str, R::Any, D::Required),
            p("query", Kind::Str, R::Any, D::Required),
        ],
    },
];

pub const SPLITS: &[Sig] = &[
    Sig {
        name: "random",
        params: &[
            p("train", Kind::Float, R::Unit, D::Required),
            p("val", Kind::Float, R::Unit, D::F(0.0)),
            p("test", Kind::Float, R::Unit, D::F(0.0)),
            p("stratify", Kind::Bool, R::Any, D::B(false)),
        ],
    },
    Sig {
        name: "holdout",
        params: &[
            p("val", Kind::Float, R::Open01, D::Required),
            p("stratify", Kind::Bool, R::Any, D::B(false)),
        ],
    },
    Sig {
        name: "kfold",
        params: &[
            p("k", Kind::Int, R::AtLeast(2), D::Required),
            p("stratify", Kind::Bool, R::Any, D::B(false)),
        ],
    },
];

pub const DATASET_SETTINGS: &[&str] = &["split", "dedup", "stream", "shuffle_buffer"];

pub const IMPUTE: &[&str] = &["mean", "median", "mode", "constant"];

pub const STEPS: &[Sig] = &[
    Sig {
        name: "impute",
        params: &[p("strategy", Kind::Word(IMPUTE), R::Any, D::Required)],
    },
    Sig {
        name: "drop_missing",
        params: &[],
    },
    Sig {
        name: "keep_missing",
        params: &[],
    },
    Sig {
        name: "standardize",
        params: &[],
    },
    Sig {
        name: "min_max",
        params: &[],
    },
    Sig {
        name: "robust_scale",
        params: &[],
    },
    Sig {
        name: "normalize",
        params: &[
            p("mean", Kind::Float, R::Any, D::Required),
            p("std", Kind::Float, R::Pos, D::Required),
        ],
    },
    Sig {
        name: "scale",
        // A factor of 0 makes the feature a constant 0: the model can learn nothing from it.
        params: &[p("factor", Kind::Float, R::NonZero, D::Required)],
    },
    Sig {
        name: "log1p",
        params: &[],
    },
    Sig {
        name: "clip",
        params: &[
            p("lo", Kind::Float, R::Any, D::Required),
            p("hi", Kind::Float, R::Any, D::Required),
        ],
    },
    Sig {
        name: "winsorize",
        params: &[
            p("lo", Kind::Float, R::Unit, D::Required),
            p("hi", Kind::Float, R::Unit, D::Required),
        ],
    },
    Sig {
        name: "one_hot",
        params: &[],
    },
    Sig {
        name: "ordinal",
        params: &[],
    },
];

pub const ENTRY_KEYS: &[&str] = &[
    "model",
    "data",
    "loss",
    "optimizer",
    "schedule",
    "epochs",
    "batch",
    "seed",
    "metrics",
    "early_stop",
    "clip_grad",
    "checkpoint",
    "shards",
];

pub const LOSSES: &[Sig] = &[
    Sig {
        name: "cross_entropy",
        params: &[p("label_smoothing", Kind::Float, R::UnitOpen, D::F(0.0))],
    },
    Sig {
        name: "binary_cross_entropy",
        params: &[],
    },
    Sig {
        name: "mse",
        params: &[],
    },
    Sig {
        name: "mae",
        params: &[],
    },
    Sig {
        name: "huber",
        params: &[p("delta", Kind::Float, R::Pos, D::F(1.0))],
    },
];

pub const OPTIMIZERS: &[Sig] = &[
    Sig {
        name: "sgd",
        params: &[
            p("lr", Kind::Float, R::Pos, D::Required),
            p("momentum", Kind::Float, R::UnitOpen, D::F(0.0)),
            p("nesterov", Kind::Bool, R::Any, D::B(false)),
            p("weight_decay", Kind::Float, R::NonNeg, D::F(0.0)),
        ],
    },
    Sig {
        name: "adam",
        params: &[
            p("lr", Kind::Float, R::Pos, D::F(1e-3)),
            p("beta1", Kind::Float, R::UnitOpen, D::F(0.9)),
            p("beta2", Kind::Float, R::UnitOpen, D::F(0.999)),
            p("eps", Kind::Float, R::Pos, D::F(1e-8)),
            p("weight_decay", Kind::Float, R::NonNeg, D::F(0.0)),
        ],
    },
    Sig {
        name: "adamw",
        params: &[
            p("lr", Kind::Float, R::Pos, D::F(1e-3)),
            p("beta1", Kind::Float, R::UnitOpen, D::F(0.9)),
            p("beta2", Kind::Float, R::UnitOpen, D::F(0.999)),
            p("eps", Kind::Float, R::Pos, D::F(1e-8)),
            p("weight_decay", Kind::Float, R::NonNeg, D::F(0.01)),
        ],
    },
    Sig {
        name: "rmsprop",
        params: &[
            p("lr", Kind::Float, R::Pos, D::F(1e-2)),
            p("alpha", Kind::Float, R::UnitOpen, D::F(0.99)),
            p("eps", Kind::Float, R::Pos, D::F(1e-8)),
            p("momentum", Kind::Float, R::UnitOpen, D::F(0.0)),
            p("weight_decay", Kind::Float, R::NonNeg, D::F(0.0)),
        ],
    },
];

pub const SCHEDULES: &[Sig] = &[
    Sig {
        name: "constant",
        params: &[],
    },
    Sig {
        name: "step",
        params: &[
            p("every", Kind::Int, R::AtLeast(1), D::Required),
            p("gamma", Kind::Float, R::Unit01, D::F(0.1)),
        ],
    },
    Sig {
        name: "exponential",
        params: &[p("gamma", Kind::Float, R::Unit01, D::Required)],
    },
    Sig {
        name: "cosine",
        params: &[
            p("warmup", Kind::Int, R::AtLeast(0), D::I(0)),
            p("min_lr", Kind::Float, R::NonNeg, D::F(0.0)),
        ],
    },
    Sig {
        name: "reduce_on_plateau",
        params: &[
            p("monitor", Kind::Monitor, R::Any, D::W("val.loss")),
            p("factor", Kind::Float, R::Open01, D::F(0.1)),
            p("patience", Kind::Int, R::AtLeast(0), D::I(5)),
            p("min_lr", Kind::Float, R::NonNeg, D::F(0.0)),
        ],
    },
];

pub const EARLY_STOP: &[Sig] = &[Sig {
    name: "early_stopping",
    params: &[
        p("monitor", Kind::Monitor, R::Any, D::W("val.loss")),
        p("patience", Kind::Int, R::AtLeast(1), D::I(5)),
        p("min_delta", Kind::Float, R::NonNeg, D::F(0.0)),
    ],
}];

/// The built-in tree models (`model = gradient_boosting(...)`), defaults as XGBoost's `hist`
/// and scikit-learn's forests.
pub const TREE_MODELS: &[Sig] = &[
    Sig {
        name: "gradient_boosting",
        params: &[
            p("trees", Kind::Int, R::AtLeast(1), D::I(100)),
            p("depth", Kind::Int, R::AtLeast(1), D::I(6)),
            p("lr", Kind::Float, R::Pos, D::F(0.1)),
            p("min_child_weight", Kind::Float, R::NonNeg, D::F(1.0)),
            p("l2", Kind::Float, R::NonNeg, D::F(1.0)),
            p("min_split_gain", Kind::Float, R::NonNeg, D::F(0.0)),
            p("subsample", Kind::Float, R::Unit01, D::F(1.0)),
            p("colsample", Kind::Float, R::Unit01, D::F(1.0)),
            p("bins", Kind::Int, R::AtLeast(2), D::I(255)),
        ],
    },
    Sig {
        name: "random_forest",
        params: &[
            p("trees", Kind::Int, R::AtLeast(1), D::I(100)),
            p("depth", Kind::Int, R::AtLeast(1), D::I(10)),
            p("max_features", Kind::Int, R::AtLeast(1), D::Absent),
            p("min_samples_leaf", Kind::Int, R::AtLeast(1), D::I(1)),
            p("bootstrap", Kind::Bool, R::Any, D::B(true)),
            p("bins", Kind::Int, R::AtLeast(2), D::I(255)),
        ],
    },
];

pub const CHECKPOINT: &[Sig] = &[Sig {
    name: "every",
    params: &[p("epochs", Kind::Int, R::AtLeast(1), D::I(1))],
}];
