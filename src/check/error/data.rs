//! The checker's mistakes in datasets, features, configuration values and patterns, as data, and their diagnostics.

use super::error;
use crate::check::config::{Kind, Range, Sig, range_text};
use crate::check::hir::Metric;
use crate::check::model::plural;
use crate::data::schema::MAX_LEVELS;
use crate::diagnostics::{Diagnostic, did_you_mean, shorten};
use crate::source::Span;
use crate::syntax::print::float;

const DUPLICATE: &str = "mlx::name::duplicate";
const TYPE: &str = "mlx::type::mismatch";
const RANGE: &str = "mlx::value::range";
const SOURCE: &str = "mlx::data::source";
const STREAM: &str = "mlx::data::stream";
const FEATURES: &str = "mlx::data::features";
const STEP: &str = "mlx::data::step";
const CLASSES: &str = "mlx::data::classes";
const SPLIT: &str = "mlx::data::split";
const MISSING_VALUES: &str = "mlx::data::missing_values";
const COLUMN_MISSING: &str = "mlx::data::column_missing";
const COLUMN_TYPE: &str = "mlx::data::column_type";
const MALFORMED: &str = "mlx::data::malformed";

/// A mistake in a dataset, a feature, a configuration call or a shape pattern.
#[derive(Debug)]
pub(crate) enum Error {
    // ---- a dataset's entries and sources ----
    /// A source named other than `train`, `val` or `test`.
    SourceName { name: String, span: Span },
    /// Two sources of the same role.
    SourceTwice { span: Span, first: Span },
    /// A second `features` block.
    FeaturesTwice { span: Span, first: Span },
    /// A second `target`.
    TargetTwice { span: Span, first: Span },
    /// A dataset without a `source`.
    SourceNone { dataset: String, span: Span },
    /// An unnamed source beside named ones.
    SourceUnnamedBesideNamed { span: Span },
    /// Named sources without a `source train`.
    SourceNoTrain { span: Span },
    /// A source without rows (`what`: "a header but no rows", "no images").
    SourceEmpty { what: &'static str, span: Span },
    /// A source whose columns (or image size) differ from the first source's.
    SourcesDiffer { span: Span, first: Span },
    /// A dataset without a `features` block.
    FeaturesNone { dataset: String, span: Span },
    /// A `true`/`false` setting given something else (`found` described).
    SettingNotBool {
        key: String,
        found: String,
        span: Span,
    },
    /// A `csv` separator that is not one usable character.
    SepNotOneChar { span: Span },
    /// A database URL holding a password.
    UrlPassword { span: Span },
    /// A URL of a database mlx does not read.
    UrlUnknown { url: String, span: Span },
    /// An empty SQL query.
    QueryEmpty { span: Span },
    /// A database that cannot be read, or refuses the query (`query`).
    DatabaseRefused {
        path: String,
        message: String,
        query: bool,
        span: Span,
    },
    /// A data file that does not exist.
    FileMissing { path: String, span: Span },
    /// A data file that cannot be read, at `line` when one is at fault.
    FileMalformed {
        path: String,
        line: Option<usize>,
        message: String,
        span: Span,
    },

    // ---- streamed datasets ----
    /// `shuffle_buffer` on a dataset that is not streamed.
    ShuffleNotStreamed { span: Span },
    /// `dedup` on a streamed dataset (`stream`: where it is streamed).
    StreamDedup { span: Span, stream: Span },
    /// A k-fold split of a streamed dataset.
    StreamFolds { span: Span, stream: Span },
    /// A stratified split of a streamed dataset.
    StreamStratified { span: Span, stream: Span },
    /// An IDX source streamed.
    StreamIdx { span: Span, stream: Span },
    /// `impute(mode)` of a number column on a streamed dataset.
    StreamImputeMode {
        column: String,
        span: Span,
        stream: Span,
    },
    /// Steps after `ordinal` on a streamed dataset.
    StreamAfterOrdinal {
        column: String,
        span: Span,
        stream: Span,
    },

    // ---- splits ----
    /// `stratify` with a regression target.
    StratifyRegression { span: Span },
    /// `random` on a dataset with named sources (`names`: those it has, e.g. `train/val`).
    RandomSplitNamedSources { span: Span, names: String },
    /// Split fractions that do not add up to 1.
    SplitSum {
        train: f64,
        val: f64,
        test: f64,
        span: Span,
    },
    /// A training fraction of 0 or less.
    SplitNoTrainFraction { span: Span },
    /// A split that leaves training without a row of the data's `rows`.
    SplitEmpty { rows: usize, share: f64, span: Span },
    /// `holdout` beside a `source val`.
    HoldoutWithVal { span: Span },
    /// More folds than rows.
    FoldsTooMany { k: usize, rows: usize, span: Span },
    /// `kfold` beside a `source val`.
    KFoldWithVal { span: Span },

    // ---- columns ----
    /// A column of a type mlx does not read (`source`: where its type comes from).
    ColumnUnsupported {
        column: String,
        ty: String,
        span: Span,
        source: Span,
    },
    /// A column the data lacks, among the source's `columns`.
    ColumnMissing {
        column: String,
        columns: Vec<String>,
        span: Span,
        source: Span,
    },
    /// A text column declared numeric; `example`: its first text value and line.
    ColumnText {
        column: String,
        example: Option<(String, usize)>,
        declared: String,
        span: Span,
    },

    // ---- the target ----
    /// A preprocessing step other than `drop_missing` on the target.
    TargetStep { step: String, span: Span },
    /// A target on an IDX source without labels (`source`), declared at `declared`.
    IdxTargetNoLabels {
        target: String,
        source: Span,
        declared: Span,
    },
    /// An IDX target named other than `label`.
    IdxTargetName {
        name: String,
        /// The declared type, as written (`Class[10]`).
        declared: String,
        span: Span,
    },
    /// Missing target values not dropped (`ty`: the target's type as written).
    TargetMissingValues {
        target: String,
        missing: usize,
        ty: String,
        span: Span,
    },
    /// A target type other than `Class[K]`, `Category` or `Float`.
    TargetType { ty: String, span: Span },
    /// More distinct target values than classes can be.
    ClassesTooMany { target: String, span: Span },
    /// Numeric class labels that are not whole numbers from 0.
    ClassLabelsNotWhole { target: String, span: Span },
    /// A target with fewer than two classes.
    OneClass {
        target: String,
        classes: usize,
        span: Span,
    },
    /// `Class` without its count.
    ClassCountMissing { span: Span },
    /// `Class` with more than one count.
    ClassCountNotOne { span: Span },
    /// A class count that is not an integer (`found` described).
    ClassCountNotInt { found: String, span: Span },
    /// A declared class count that does not fit the data's `found` classes (`levels`: the
    /// data's class names, for text labels); `data` labels the target.
    ClassCountMismatch {
        declared: i64,
        found: usize,
        levels: Option<Vec<String>>,
        span: Span,
        data: Span,
    },

    // ---- features ----
    /// A feature declared twice.
    FeatureTwice {
        name: String,
        span: Span,
        first: Span,
    },
    /// The target declared as a feature too.
    FeatureIsTarget {
        name: String,
        span: Span,
        target: Span,
    },
    /// `*` on an IDX dataset.
    RestOnIdx { span: Span },
    /// `*` that selects no column (a warning).
    RestSelectsNothing { span: Span },
    /// A `features` block that selects no column.
    FeaturesSelectNothing { span: Span },
    /// An IDX feature named other than `image`.
    IdxFeatureName { name: String, span: Span },
    /// A CSV feature of a type other than `Float` or `Category`.
    FeatureType { ty: String, span: Span },
    /// A fitted `step` on a column with no value in all `rows` of the training data.
    ColumnAllMissing {
        column: String,
        rows: usize,
        step: String,
        span: Span,
        column_span: Span,
    },
    /// A column's missing values that no step handles.
    MissingUnhandled {
        column: String,
        missing: usize,
        category: bool,
        span: Span,
    },
    /// A Category still text after its steps.
    CategoryNotEncoded { column: String, span: Span },
    /// A tensor feature beside other features.
    TensorFeatureNotAlone { span: Span },

    // ---- preprocessing steps ----
    /// A step that does not apply to image pixels.
    StepOnImage { step: String, span: Span },
    /// A step after `one_hot`.
    StepAfterOneHot { step: String, span: Span },
    /// `keep_missing` on a Category.
    KeepMissingCategory { span: Span },
    /// A Category imputed with a numeric `strategy`.
    ImputeCategory { strategy: String, span: Span },
    /// A text constant imputed into a number column.
    ImputeTextIntoNumbers { column: String, span: Span },
    /// `impute(constant)` without its value.
    ImputeConstantMissing { span: Span },
    /// `impute(constant(v))` with `v` neither a number nor a string.
    ImputeConstantType { span: Span },
    /// `one_hot` on a column with too many distinct values.
    OneHotTooMany { column: String, span: Span },
    /// `one_hot` after `ordinal`.
    OneHotAfterOrdinal { span: Span },
    /// `one_hot` on a column declared numeric.
    OneHotOnNumbers {
        column: String,
        declared: String,
        span: Span,
    },
    /// `ordinal` on a numeric column.
    OrdinalOnNumbers { column: String, span: Span },
    /// A numeric step on a Category not yet encoded.
    StepNeedsNumbers {
        step: String,
        column: String,
        span: Span,
    },
    /// `clip`/`winsorize` with `lo >= hi`.
    StepBounds {
        step: String,
        lo: f64,
        hi: f64,
        span: Span,
    },

    // ---- image features ----
    /// An image feature of a type that is not a tensor (`dims`: the data's image dims).
    ImageNotTensor { dims: Vec<usize>, span: Span },
    /// `...` in an image feature's shape.
    ImageShapeRest { span: Span },
    /// An image dimension that is not a positive integer.
    ImageDimNotSize { span: Span },
    /// An image feature's type (`ty`) that does not hold the data's images (`dims`).
    ImageShape {
        dims: Vec<usize>,
        ty: String,
        span: Span,
    },

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
    MonitorNoObjective { figure: BadFigure, span: Span },
    /// A monitored figure mlx does not report.
    MonitorUnknown { figure: BadFigure, span: Span },

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

/// A figure to monitor (`early_stop(monitor: ...)`, a sweep's objective) that does not
/// parse, and the train's objectives when it has some (the help lists them).
#[derive(Debug)]
pub(crate) struct BadFigure {
    pub kind: Figure,
    pub objectives: Option<Vec<String>>,
}

/// What is wrong with a figure to monitor.
#[derive(Debug)]
pub(crate) enum Figure {
    /// Not `split.figure`.
    Malformed { path: String },
    /// A first part other than `val` or `train`.
    NotASplit { split: String, figure: String },
    /// `val.confusion`: a matrix, not a number.
    Confusion,
    /// A figure mlx does not report (or, in a train with objectives, names no objective).
    Unknown { split: String, figure: String },
}

impl BadFigure {
    pub(crate) fn message(&self) -> String {
        match &self.kind {
            Figure::Malformed { path } => format!("`{path}` is not a figure"),
            Figure::NotASplit { split, .. } => {
                format!("`{split}` is not a split that is monitored during training")
            }
            Figure::Confusion => "a confusion matrix cannot be monitored".into(),
            Figure::Unknown { split, figure } if self.objectives.is_some() => {
                format!("`{split}.{figure}` names no objective of this train")
            }
            Figure::Unknown { figure, .. } => format!("unknown figure `{figure}`"),
        }
    }

    /// "did you mean `val.x`?" when a close name exists, else what can be monitored.
    pub(crate) fn help(&self) -> String {
        let fallback = match &self.objectives {
            Some(objectives) => {
                let list = objectives
                    .iter()
                    .map(|o| format!("`val.{o}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "a train with objectives reports each objective's loss: monitor one of {list}"
                )
            }
            None => {
                "write `val.loss` or `val.<metric>` (a metric listed in `metrics`), or `train.loss`"
                    .to_string()
            }
        };
        let (close, split, figure) = match &self.kind {
            Figure::NotASplit { split, figure } => {
                (did_you_mean(split, ["val", "train"]), None, figure.as_str())
            }
            Figure::Unknown { split, figure } => {
                let close = match &self.objectives {
                    Some(o) => did_you_mean(figure, o.iter().map(String::as_str)),
                    None => {
                        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                        names.push("loss");
                        did_you_mean(figure, names)
                    }
                };
                (close, Some(split.as_str()), "")
            }
            Figure::Malformed { .. } | Figure::Confusion => (None, None, ""),
        };
        match (close, split) {
            (Some(s), None) => format!("did you mean `{s}.{figure}`?"),
            (Some(s), Some(split)) => format!("did you mean `{split}.{s}`?"),
            (None, _) => fallback,
        }
    }
}

impl Error {
    /// The diagnostic that reports this mistake: the same code, message, labels, help and
    /// notes, whatever the site that found it.
    pub(crate) fn diagnostic(self) -> Diagnostic {
        match self {
            // ---- a dataset's entries and sources ----
            Error::SourceName { name, span } => source_name(&name, span),
            Error::SourceTwice { span, first } => error(DUPLICATE, "this source is declared twice")
                .with_label(span, "second declaration")
                .with_secondary(first, "first declared here"),
            Error::FeaturesTwice { span, first } => {
                error(DUPLICATE, "a dataset has one `features` block")
                    .with_label(span, "second block")
                    .with_secondary(first, "first block here")
            }
            Error::TargetTwice { span, first } => error(DUPLICATE, "a dataset has one `target`")
                .with_label(span, "second target")
                .with_secondary(first, "first target here"),
            Error::SourceNone { dataset, span } => {
                error(SOURCE, format!("dataset `{dataset}` has no `source`"))
                    .with_label(span, "no data")
                    .with_help("add `source = csv(\"file.csv\")` or `source train = idx(\"images.gz\", \"labels.gz\")`")
            }
            Error::SourceUnnamedBesideNamed { span } => error(
                SOURCE,
                "a dataset has either one unnamed `source` or named `train`/`val`/`test` sources, not both",
            )
            .with_label(span, "unnamed source beside named ones"),
            Error::SourceNoTrain { span } => error(
                SOURCE,
                "named sources need a `source train = ...`",
            )
            .with_label(span, "no training source"),
            Error::SourceEmpty { what, span } => error(
                "mlx::data::empty",
                format!("this source has {what}: there is nothing to train or evaluate on"),
            )
            .with_label(span, "no rows")
            .with_help("point it at a file with data"),
            Error::SourcesDiffer { span, first } => error(
                SOURCE,
                "the sources of a dataset must have the same columns (or image size)",
            )
            .with_label(span, "differs from the first source")
            .with_secondary(first, "first source"),
            Error::FeaturesNone { dataset, span } => {
                error(FEATURES, format!("dataset `{dataset}` has no `features` block"))
                    .with_label(span, "no inputs for the model")
                    .with_help("add `features { *: Float = standardize }` or name each column")
            }
            Error::SettingNotBool { key, found, span } => {
                error(TYPE, format!("`{key}` must be true or false, found {found}"))
                    .with_label(span, "not a boolean")
            }
            Error::SepNotOneChar { span } => error(
                RANGE,
                "`sep` must be a single character other than a quote or newline",
            )
            .with_label(span, "not one character"),
            Error::UrlPassword { span } => error(
                SOURCE,
                "the database URL holds a password, which would be copied into the run directory",
            )
            .with_label(span, "a password in the spec")
            .with_help("remove it from the URL; mlx reads it from PGPASSWORD or the password file (~/.pgpass, or PGPASSFILE)"),
            Error::UrlUnknown { url, span } => {
                error(SOURCE, format!("`{url}` is not a database URL mlx reads"))
                    .with_label(span, "unknown kind of database")
                    .with_help(format!("write {}", crate::data::sources::URL_FORMS))
            }
            Error::QueryEmpty { span } => error(SOURCE, "the query is empty")
                .with_label(span, "empty")
                .with_help("write the SELECT that returns the dataset's rows"),
            Error::DatabaseRefused {
                path,
                message,
                query,
                span,
            } => database_refused(&path, &message, query, span),
            Error::FileMissing { path, span } => error(
                "mlx::data::file_missing",
                format!("data file `{path}` does not exist"),
            )
            .with_label(span, "no such file")
            .with_help("paths are relative to the .mlx file that names them"),
            Error::FileMalformed {
                path,
                line: Some(line),
                message,
                span,
            } => error(MALFORMED, format!("{path}:{line}: {message}"))
                .with_label(span, format!("line {line} of this file is malformed")),
            Error::FileMalformed {
                path,
                line: None,
                message,
                span,
            } => error(MALFORMED, format!("{path}: {message}"))
                .with_label(span, "cannot read this file"),

            // ---- streamed datasets ----
            Error::ShuffleNotStreamed { span } => error(
                STREAM,
                "`shuffle_buffer` sizes the shuffle of a streamed dataset, but this dataset is not streamed",
            )
            .with_label(span, "no `stream = true`")
            .with_help("add `stream = true`, or remove `shuffle_buffer` (an in-memory dataset is shuffled whole)"),
            Error::StreamDedup { span, stream } => not_streamed(
                "`dedup` needs every row in memory to find duplicates; a streamed dataset never holds them".into(),
                span,
                "duplicates are found in memory",
                stream,
                "remove the duplicates from the source, or `dedup = false` (a streamed split keeps identical rows together: they hash alike)",
            ),
            Error::StreamFolds { span, stream } => not_streamed(
                "k-fold cross-validation is not streamed: each fold would read the data again".into(),
                span,
                "folds",
                stream,
                "use `random(...)` or `holdout(...)` with `stream = true`",
            ),
            Error::StreamStratified { span, stream } => not_streamed(
                "a streamed split decides each row by a hash of its text and cannot stratify".into(),
                span,
                "stratified",
                stream,
                "remove `stratify: true` (on millions of rows a hashed split keeps the class shares within a fraction of a percent)",
            ),
            Error::StreamIdx { span, stream } => not_streamed(
                "IDX image files are not streamed".into(),
                span,
                "an IDX source",
                stream,
                "remove `stream = true`: IDX files are read into memory",
            ),
            Error::StreamImputeMode {
                column,
                span,
                stream,
            } => not_streamed(
                format!("feature `{column}`: `impute(mode)` of a number column needs every distinct value's count"),
                span,
                "not streamed",
                stream,
                "use `impute(median)` or `impute(mean)`, or remove `stream = true`",
            ),
            Error::StreamAfterOrdinal {
                column,
                span,
                stream,
            } => not_streamed(
                format!("feature `{column}`: steps after `ordinal` are not fitted on a streamed dataset"),
                span,
                "not streamed",
                stream,
                "end the pipeline at `ordinal` (or use `one_hot`), or remove `stream = true`",
            ),

            // ---- splits ----
            Error::StratifyRegression { span } => error(
                SPLIT,
                "`stratify` balances classes, but the target is a regression value",
            )
            .with_label(span, "needs a Class target")
            .with_help("remove `stratify: true`"),
            Error::RandomSplitNamedSources { span, names } => error(
                SPLIT,
                format!("`random` splits one source; this dataset already has separate {names} sources"),
            )
            .with_label(span, "needs a single `source`")
            .with_help("use `holdout(val: 0.1)` to carve a validation set out of the training source"),
            Error::SplitSum {
                train,
                val,
                test,
                span,
            } => split_sum(train, val, test, span),
            Error::SplitNoTrainFraction { span } => {
                error(SPLIT, "the training fraction must be above 0")
                    .with_label(span, "no training rows")
            }
            Error::SplitEmpty { rows, share, span } => error(
                SPLIT,
                format!(
                    "this split leaves no training rows: {} of the data's {rows} rows is less than one",
                    float((share * 1e9).round() / 1e9)
                ),
            )
            .with_label(span, "no training rows")
            .with_help("give training a larger share, or use more data"),
            Error::HoldoutWithVal { span } => error(
                SPLIT,
                "`holdout` carves a validation set, but this dataset has a `source val` already",
            )
            .with_label(span, "two validation sets"),
            Error::FoldsTooMany { k, rows, span } => error(
                SPLIT,
                format!("{k} folds need at least {k} rows, but the data has {rows}"),
            )
            .with_label(span, "too many folds"),
            Error::KFoldWithVal { span } => error(
                SPLIT,
                "`kfold` makes its own validation folds, but this dataset has a `source val`",
            )
            .with_label(span, "two validation sets"),

            // ---- columns ----
            Error::ColumnUnsupported {
                column,
                ty,
                span,
                source,
            } => error(
                COLUMN_TYPE,
                format!("column `{column}` is of type {ty}, which mlx does not read"),
            )
            .with_label(span, "a column mlx cannot read")
            .with_secondary(source, "its type comes from this source")
            .with_help("convert it to a number or text where the data is made (in SQL: CAST it in the query)"),
            Error::ColumnMissing {
                column,
                columns,
                span,
                source,
            } => column_missing(&column, &columns, span, source),
            Error::ColumnText {
                column,
                example,
                declared,
                span,
            } => column_text(&column, example, &declared, span),

            // ---- the target ----
            Error::TargetStep { step, span } => {
                error(STEP, format!("`{step}` cannot be applied to the target"))
                    .with_label(span, "not allowed on a target")
                    .with_help("a target may only `drop_missing`; its values are what the model learns")
            }
            Error::IdxTargetNoLabels {
                target,
                source,
                declared,
            } => error(
                "mlx::data::target",
                format!("the target `{target}` needs labels, but the IDX source reads images only"),
            )
            .with_label(source, "no label file")
            .with_secondary(declared, "target declared here")
            .with_help("give the labels: `idx(\"images.gz\", \"labels.gz\")`, or remove the `target` for an unlabelled dataset"),
            Error::IdxTargetName {
                name,
                declared,
                span,
            } => error(
                COLUMN_MISSING,
                format!("an IDX dataset's target is `label`, not `{name}`"),
            )
            .with_label(span, "no such column")
            .with_help(format!("write `target label: {declared}`")),
            Error::TargetMissingValues {
                target,
                missing,
                ty,
                span,
            } => error(
                MISSING_VALUES,
                format!(
                    "the target `{target}` has {missing} missing value{} in the data",
                    plural(missing)
                ),
            )
            .with_label(span, "rows without a target cannot be used")
            .with_help(format!("drop those rows: `target {target}: {ty} = drop_missing`")),
            Error::TargetType { ty, span } => error(
                TYPE,
                format!("a target is `Class[K]`, `Category` or `Float`, not `{ty}`"),
            )
            .with_label(span, "not a target type"),
            Error::ClassesTooMany { target, span } => error(
                CLASSES,
                format!(
                    "`{target}` has more than {MAX_LEVELS} distinct values: too many for classes"
                ),
            )
            .with_label(span, "too many classes"),
            Error::ClassLabelsNotWhole { target, span } => error(
                CLASSES,
                format!("the class labels in `{target}` must be whole numbers from 0, or text"),
            )
            .with_label(span, "not usable as class labels")
            .with_help("for a numeric target to predict, declare it `Float`"),
            Error::OneClass {
                target,
                classes,
                span,
            } => error(
                CLASSES,
                format!("the target `{target}` has only {classes} class in the data"),
            )
            .with_label(span, "nothing to tell apart"),
            Error::ClassCountMissing { span } => error(
                TYPE,
                "`Class` needs its class count: `Class[3]`, or `Class[K]` to take it from the data",
            )
            .with_label(span, "missing [K]"),
            Error::ClassCountNotOne { span } => error(TYPE, "`Class` takes one count: `Class[3]`")
                .with_label(span, "one count expected"),
            Error::ClassCountNotInt { found, span } => {
                error(TYPE, format!("a class count must be an integer, found {found}"))
                    .with_label(span, "not an integer")
            }
            Error::ClassCountMismatch {
                declared,
                found,
                levels,
                span,
                data,
            } => class_count_mismatch(declared, found, levels.as_deref(), span, data),

            // ---- features ----
            Error::FeatureTwice { name, span, first } => {
                error(DUPLICATE, format!("feature `{name}` is declared twice"))
                    .with_label(span, "declared again")
                    .with_secondary(first, "first declared here")
            }
            Error::FeatureIsTarget { name, span, target } => error(
                FEATURES,
                format!("`{name}` is the target, so it cannot also be a feature"),
            )
            .with_label(span, "the target as input would leak the answer")
            .with_secondary(target, "target declared here"),
            Error::RestOnIdx { span } => error(
                FEATURES,
                "`*` selects CSV columns; an IDX dataset has only `image`",
            )
            .with_label(span, "no columns to select"),
            Error::RestSelectsNothing { span } => Diagnostic::warning(
                FEATURES,
                "`*` selects no column: every column is named or is the target",
            )
            .with_label(span, "matches nothing"),
            Error::FeaturesSelectNothing { span } => {
                error(FEATURES, "the `features` block selects no column")
                    .with_label(span, "no inputs for the model")
            }
            Error::IdxFeatureName { name, span } => error(
                COLUMN_MISSING,
                format!("an IDX dataset's feature is `image`, not `{name}`"),
            )
            .with_label(span, "no such feature"),
            Error::FeatureType { ty, span } => error(
                TYPE,
                format!("a CSV feature is `Float` or `Category`, not `{ty}`"),
            )
            .with_label(span, "not a column type"),
            Error::ColumnAllMissing {
                column,
                rows,
                step,
                span,
                column_span,
            } => column_all_missing(&column, rows, &step, span, column_span),
            Error::MissingUnhandled {
                column,
                missing,
                category,
                span,
            } => missing_unhandled(&column, missing, category, span),
            Error::CategoryNotEncoded { column, span } => error(
                STEP,
                format!("the Category `{column}` must be encoded as numbers for the model"),
            )
            .with_label(span, "still text at the end of its steps")
            .with_help("end its steps with `one_hot` or `ordinal`"),
            Error::TensorFeatureNotAlone { span } => error(
                FEATURES,
                "a tensor feature (an image) must be the only feature",
            )
            .with_label(span, "mixes an image with other features"),

            // ---- preprocessing steps ----
            Error::StepOnImage { step, span } => {
                error(STEP, format!("`{step}` does not apply to image pixels"))
                    .with_label(span, "not for images")
                    .with_help("images take `scale`, `normalize`, `clip`, `log1p`, `standardize` or `min_max`")
            }
            Error::StepAfterOneHot { step, span } => misplaced(
                format!("`{step}` comes after `one_hot`, which already made the final columns"),
                span,
                "put `one_hot` last",
            ),
            Error::KeepMissingCategory { span } => misplaced(
                "`keep_missing` keeps a number missing for a tree model; a Category's missing value can be a level of its own".into(),
                span,
                "use `impute(constant(\"missing\"))` before `one_hot`",
            ),
            Error::ImputeCategory { strategy, span } => misplaced(
                format!("a Category column cannot be imputed with its {strategy}"),
                span,
                "use `impute(mode)` or `impute(constant(\"unknown\"))`",
            ),
            Error::ImputeTextIntoNumbers { column, span } => misplaced(
                format!("`{column}` holds numbers, but the constant imputed into it is text"),
                span,
                "impute a number (`impute(constant(0))`), or declare the column `Category`",
            ),
            Error::ImputeConstantMissing { span } => error(
                "mlx::arg::missing",
                "`constant` needs the value to fill in: `impute(constant(0))`",
            )
            .with_label(span, "no value given"),
            Error::ImputeConstantType { span } => {
                error(TYPE, "the constant to impute must be a number or a string")
                    .with_label(span, "not a constant")
            }
            Error::OneHotTooMany { column, span } => misplaced(
                format!("`{column}` has more than {MAX_LEVELS} distinct values: too many for one-hot"),
                span,
                "use `ordinal`, or a coarser column",
            ),
            Error::OneHotAfterOrdinal { span } => misplaced(
                "`one_hot` after `ordinal` has nothing left to encode".into(),
                span,
                "use one of `ordinal` or `one_hot`",
            ),
            Error::OneHotOnNumbers {
                column,
                declared,
                span,
            } => misplaced(
                format!("`one_hot` encodes categories, but `{column}` is declared `{declared}`"),
                span,
                &format!(
                    "declare it `{column}: Category = one_hot` to treat its values as categories"
                ),
            ),
            Error::OrdinalOnNumbers { column, span } => misplaced(
                format!("`ordinal` encodes categories, but `{column}` is already numeric"),
                span,
                "drop `ordinal`, or declare the column `Category`",
            ),
            Error::StepNeedsNumbers { step, column, span } => misplaced(
                format!("`{step}` needs numbers, but `{column}` is a Category"),
                span,
                "encode it first: `one_hot` or `ordinal`",
            ),
            Error::StepBounds { step, lo, hi, span } => misplaced(
                format!("`{step}` needs lo < hi, but got {lo} and {hi}"),
                span,
                "swap the bounds",
            ),

            // ---- image features ----
            Error::ImageNotTensor { dims, span } => error(
                TYPE,
                format!(
                    "an image feature is a tensor type such as `Float[1, {}]`",
                    join(&dims)
                ),
            )
            .with_label(span, "not a tensor type"),
            Error::ImageShapeRest { span } => error(TYPE, "an image's shape is fixed: no `...`")
                .with_label(span, "write the dimensions"),
            Error::ImageDimNotSize { span } => {
                error(TYPE, "an image dimension must be a positive integer")
                    .with_label(span, "not a size")
            }
            Error::ImageShape { dims, ty, span } => image_shape(&join(&dims), &ty, span),

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
            Error::MonitorNoObjective { figure, span } => {
                error("mlx::train::monitor", figure.message())
                    .with_label(span, "names no objective")
                    .with_help(figure.help())
            }
            Error::MonitorUnknown { figure, span } => {
                error("mlx::name::unknown", figure.message())
                    .with_label(span, "not a figure mlx reports")
                    .with_help(figure.help())
            }

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

fn source_name(name: &str, span: Span) -> Diagnostic {
    let d = error(
        SOURCE,
        format!("a source is named `train`, `val` or `test`, not `{name}`"),
    )
    .with_label(span, "unknown source name");
    match name {
        "validation" | "valid" | "dev" => d.with_help("did you mean `val`?"),
        "training" => d.with_help("did you mean `train`?"),
        "testing" | "holdout" => d.with_help("did you mean `test`?"),
        _ => d.suggest(name, ["train", "val", "test"]),
    }
}

fn database_refused(path: &str, message: &str, query: bool, span: Span) -> Diagnostic {
    let (label, help) = if query {
        (
            "the database refuses this query",
            "mlx prepares the query at check time (and summarizes it with aggregate queries): try it in a SQL client",
        )
    } else {
        (
            "cannot read from this database",
            "check the URL, that the server runs, and the credentials (PGPASSWORD or ~/.pgpass)",
        )
    };
    error(SOURCE, format!("{path}: {message}"))
        .with_label(span, label)
        .with_help(help)
}

/// What a streamed dataset cannot do, labelled where it is asked for and where it is streamed.
fn not_streamed(message: String, span: Span, label: &str, stream: Span, help: &str) -> Diagnostic {
    error(STREAM, message)
        .with_label(span, label.to_string())
        .with_secondary(stream, "streamed here")
        .with_help(help.to_string())
}

fn split_sum(train: f64, val: f64, test: f64, span: Span) -> Diagnostic {
    let sum = train + val + test;
    let shown = (sum * 1e9).round() / 1e9;
    error(
        SPLIT,
        format!("the split fractions add up to {}, not 1", float(shown)),
    )
    .with_label(span, format!("{train} + {val} + {test} = {shown}"))
    .with_help("make train + val + test equal 1")
}

fn column_missing(column: &str, columns: &[String], span: Span, source: Span) -> Diagnostic {
    let d = error(COLUMN_MISSING, format!("the data has no column `{column}`"))
        .with_label(span, "no such column")
        .with_secondary(source, "columns come from this source");
    // One column whose name holds another separator: the file was split wrongly.
    let other_sep = match columns {
        [only] => [';', '\t', '|', ',']
            .into_iter()
            .find(|c| only.contains(*c) && column.len() < only.len()),
        _ => None,
    };
    match (
        other_sep,
        did_you_mean(column, columns.iter().map(String::as_str)),
    ) {
        (Some(c), _) => {
            let shown = if c == '\t' {
                "\\t".to_string()
            } else {
                c.to_string()
            };
            d.with_help(format!(
                "the header was read as one column, `{}`: the file looks separated by `{shown}`; write `csv(\"...\", sep: \"{shown}\")`",
                shorten(&columns[0], 60)
            ))
        }
        (None, Some(x)) => d.with_help(format!("did you mean `{x}`?")),
        (None, None) => d.with_help(format!("the columns are: {}", columns.join(", "))),
    }
}

fn column_text(
    column: &str,
    example: Option<(String, usize)>,
    declared: &str,
    span: Span,
) -> Diagnostic {
    let example = example.map_or(String::new(), |(v, line)| {
        format!(" (line {line} has \"{v}\")")
    });
    error(
        COLUMN_TYPE,
        format!("column `{column}` holds text{example}, but is declared `{declared}`"),
    )
    .with_label(span, format!("declared `{declared}`"))
    .with_help(format!(
        "declare it `{column}: Category = one_hot` (or `ordinal`)"
    ))
}

fn class_count_mismatch(
    declared: i64,
    found: usize,
    levels: Option<&[String]>,
    span: Span,
    data: Span,
) -> Diagnostic {
    let what = match levels {
        Some(l) => {
            let shown: Vec<&str> = l.iter().take(8).map(String::as_str).collect();
            let more = if l.len() > 8 { ", ..." } else { "" };
            format!("the data has {found} classes ({}{more})", shown.join(", "))
        }
        None => format!("the data has labels up to {}", found - 1),
    };
    error(
        CLASSES,
        format!("the target is declared `Class[{declared}]`, but {what}"),
    )
    .with_label(span, format!("declared {declared}"))
    .with_secondary(data, format!("{found} classes in the data"))
    .with_help(format!(
        "write `Class[{found}]`, or `Class[K]` to take the count from the data"
    ))
}

fn column_all_missing(
    column: &str,
    rows: usize,
    step: &str,
    span: Span,
    column_span: Span,
) -> Diagnostic {
    let what = if step == "drop_missing" {
        "`drop_missing` would drop every row".to_string()
    } else {
        format!("`{step}` has nothing to fit")
    };
    error(
        MISSING_VALUES,
        format!(
            "column `{column}` has no values: all {rows} rows of the training data are missing, so {what}"
        ),
    )
    .with_label(span, "fitted on no values")
    .with_secondary(column_span, "an empty column")
    .with_help("fill the column in the data, or leave it out of `features`")
}

fn missing_unhandled(column: &str, missing: usize, category: bool, span: Span) -> Diagnostic {
    error(
        MISSING_VALUES,
        format!(
            "column `{column}` has {missing} missing value{}, and nothing handles them",
            plural(missing)
        ),
    )
    .with_label(span, format!("{missing} missing"))
    .with_help(if category {
        "start its steps with `impute(mode)`, `impute(constant(\"unknown\"))` or `drop_missing`"
    } else {
        "start its steps with `impute(median)` (or mean, mode, constant(v)) or `drop_missing`"
    })
}

/// A preprocessing step where it does not fit.
fn misplaced(message: String, span: Span, help: &str) -> Diagnostic {
    error(STEP, message)
        .with_label(span, "does not fit here")
        .with_help(help.to_string())
}

fn join(dims: &[usize]) -> String {
    dims.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn image_shape(dims: &str, ty: &str, span: Span) -> Diagnostic {
    let found = format!("[{dims}]");
    error(
        "mlx::data::shape",
        format!("the images in the data are {found}, but the feature is declared `{ty}`"),
    )
    .with_label(span, format!("does not hold a {found} image"))
    .with_help(format!("declare `Float[1, {dims}]`"))
}

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
