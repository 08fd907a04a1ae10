//! Datasets: sources (with their schema read from the files), split, features with their
//! preprocessing steps, and the target, all checked against the data's real columns.

use super::config::ConfigCall;
use super::features::pipeline_steps;
use super::hir::{
    ColumnKind, DatasetPlan, FeaturePlan, Loader, SourcePlan, SourceRole, Split, Step, StreamPlan,
    TargetKind, TargetPlan,
};
use super::tables::{DATASET_SETTINGS, SOURCES, SPLITS, STEPS};
use super::value::Val;
use super::{Checker, ItemRef};
use crate::data::schema::{Column, Schema};
use crate::diagnostics::{Diagnostic, did_you_mean};
use crate::source::Span;
use crate::syntax::ast::{self, DatasetEntry};
use std::path::PathBuf;
use std::sync::Arc;

/// The code of what a streamed dataset cannot do.
const STREAM: &str = "mlx::data::stream";

impl<'a> Checker<'a> {
    /// The checked plan of dataset `name` (index into `program.datasets`), built once.
    pub(crate) fn dataset_plan(&mut self, name: &str) -> Option<usize> {
        if let Some(p) = self.dataset_plans.get(name) {
            return *p;
        }
        self.dataset_plans.insert(name.to_string(), None);
        let Some((ItemRef::Dataset(d), file)) = self.items.get(name).copied() else {
            return None;
        };
        let dir = self.sources.get(file).dir().map(PathBuf::from);
        let plan = self.build_dataset(d, dir);
        let idx = plan.map(|p| {
            self.program.datasets.push(p);
            self.program.datasets.len() - 1
        });
        self.dataset_plans.insert(name.to_string(), idx);
        idx
    }

    fn build_dataset(&mut self, d: &'a ast::Dataset, dir: Option<PathBuf>) -> Option<DatasetPlan> {
        let mut sources: Vec<(SourceRole, &ast::Expr, Span)> = Vec::new();
        let mut split_e: Option<&ast::Expr> = None;
        let mut dedup = false;
        let mut dedup_span = d.name.span;
        let mut stream: Option<(bool, Span)> = None;
        let mut buffer: Option<(usize, Span)> = None;
        let mut features: Option<(&[ast::Feature], Span)> = None;
        let mut target: Option<(&ast::Ident, &ast::TypeExpr, Option<&ast::Expr>, Span)> = None;
        let mut ok = true;
        for e in &d.entries {
            match e {
                DatasetEntry::Source { name, value, span } => {
                    let role = match name.as_ref().map(|n| n.name.as_str()) {
                        None => SourceRole::All,
                        Some("train") => SourceRole::Train,
                        Some("val") => SourceRole::Val,
                        Some("test") => SourceRole::Test,
                        Some(other) => {
                            let n = name.as_ref().map_or(*span, |n| n.span);
                            let mut diag = Diagnostic::error(
                                "mlx::data::source",
                                format!(
                                    "a source is named `train`, `val` or `test`, not `{other}`"
                                ),
                            )
                            .with_label(n, "unknown source name");
                            diag = match other {
                                "validation" | "valid" | "dev" => {
                                    diag.with_help("did you mean `val`?")
                                }
                                "training" => diag.with_help("did you mean `train`?"),
                                "testing" | "holdout" => diag.with_help("did you mean `test`?"),
                                _ => diag.suggest(other, ["train", "val", "test"]),
                            };
                            self.error(diag);
                            ok = false;
                            continue;
                        }
                    };
                    if let Some((_, _, prev)) = sources.iter().find(|(r, _, _)| *r == role) {
                        let prev = *prev;
                        self.error(
                            Diagnostic::error(
                                "mlx::name::duplicate",
                                "this source is declared twice",
                            )
                            .with_label(*span, "second declaration")
                            .with_secondary(prev, "first declared here"),
                        );
                        ok = false;
                        continue;
                    }
                    sources.push((role, value, *span));
                }
                DatasetEntry::Setting(en) => match en.key.name.as_str() {
                    "split" => split_e = Some(&en.value),
                    "dedup" => match self.bool_setting(en) {
                        Some(b) => {
                            dedup = b;
                            dedup_span = en.key.span.to(en.value.span);
                        }
                        None => ok = false,
                    },
                    "stream" => match self.bool_setting(en) {
                        Some(b) => stream = Some((b, en.key.span.to(en.value.span))),
                        None => ok = false,
                    },
                    "shuffle_buffer" => match self.positive_int(&en.value, "shuffle_buffer", 1) {
                        Some(n) => buffer = Some((n as usize, en.key.span.to(en.value.span))),
                        None => ok = false,
                    },
                    other => {
                        let mut diag = Diagnostic::error(
                            "mlx::name::unknown",
                            format!("unknown dataset setting `{other}`"),
                        )
                        .with_label(en.key.span, "not a dataset setting");
                        diag = diag.suggest_or(
                            other,
                            DATASET_SETTINGS.iter().copied(),
                            "a dataset has `source`, `split`, `dedup`, `stream`, `shuffle_buffer`, `features` and `target`",
                        );
                        self.error(diag);
                        ok = false;
                    }
                },
                DatasetEntry::Features { features: f, span } => {
                    if let Some((_, prev)) = features {
                        self.error(
                            Diagnostic::error(
                                "mlx::name::duplicate",
                                "a dataset has one `features` block",
                            )
                            .with_label(*span, "second block")
                            .with_secondary(prev, "first block here"),
                        );
                        ok = false;
                    }
                    features = Some((f, *span));
                }
                DatasetEntry::Target {
                    column,
                    ty,
                    pipeline,
                    span,
                } => {
                    if let Some((_, _, _, prev)) = target {
                        self.error(
                            Diagnostic::error("mlx::name::duplicate", "a dataset has one `target`")
                                .with_label(*span, "second target")
                                .with_secondary(prev, "first target here"),
                        );
                        ok = false;
                    }
                    target = Some((column, ty, pipeline.as_ref(), *span));
                }
            }
        }
        if sources.is_empty() {
            self.error(
                Diagnostic::error("mlx::data::source", format!("dataset `{}` has no `source`", d.name.name))
                    .with_label(d.name.span, "no data")
                    .with_help("add `source = csv(\"file.csv\")` or `source train = idx(\"images.gz\", \"labels.gz\")`"),
            );
            return None;
        }
        let named = sources.iter().any(|(r, _, _)| *r != SourceRole::All);
        if named && sources.iter().any(|(r, _, _)| *r == SourceRole::All) {
            let s = sources
                .iter()
                .find(|(r, _, _)| *r == SourceRole::All)
                .map_or(d.span, |x| x.2);
            self.error(
                Diagnostic::error("mlx::data::source", "a dataset has either one unnamed `source` or named `train`/`val`/`test` sources, not both")
                    .with_label(s, "unnamed source beside named ones"),
            );
            return None;
        }
        if named && !sources.iter().any(|(r, _, _)| *r == SourceRole::Train) {
            self.error(
                Diagnostic::error(
                    "mlx::data::source",
                    "named sources need a `source train = ...`",
                )
                .with_label(d.name.span, "no training source"),
            );
            return None;
        }
        // Read every source's schema.
        let mut plans = Vec::new();
        let mut schemas: Vec<(Arc<Schema>, Span)> = Vec::new();
        for (role, e, span) in &sources {
            let Some(call) = self.config_call(e, SOURCES, "data source", &[]) else {
                ok = false;
                continue;
            };
            let Some(loader) = self.loader(&call, dir.as_deref()) else {
                ok = false;
                continue;
            };
            match self.schemas.schema(&loader) {
                Ok(s) => schemas.push((s, e.span)),
                Err(err) => {
                    self.schema_error(&call, &err, *span);
                    ok = false;
                    continue;
                }
            }
            plans.push(SourcePlan {
                role: *role,
                loader,
                span: e.span,
            });
        }
        for (s, span) in &schemas {
            let (rows, what) = match &**s {
                Schema::Csv(c) => (c.rows, "a header but no rows"),
                Schema::Idx(i) => (i.images, "no images"),
            };
            if rows == 0 {
                self.error(
                    Diagnostic::error(
                        "mlx::data::empty",
                        format!("this source has {what}: there is nothing to train or evaluate on"),
                    )
                    .with_label(*span, "no rows")
                    .with_help("point it at a file with data"),
                );
                ok = false;
            }
        }
        if !ok || schemas.is_empty() {
            // Still check what can be checked without the data.
            if let Some(e) = split_e {
                self.config_call(e, SPLITS, "split", &[]);
            }
            return None;
        }
        let first = schemas[0].clone();
        for (s, span) in &schemas[1..] {
            if !same_layout(&first.0, s) {
                self.error(
                    Diagnostic::error(
                        "mlx::data::source",
                        "the sources of a dataset must have the same columns (or image size)",
                    )
                    .with_label(*span, "differs from the first source")
                    .with_secondary(first.1, "first source"),
                );
                return None;
            }
        }
        // A dataset without a target has features only: a train with objectives can use it
        // (an autoencoder, a GAN); `model = ...` with a built-in loss says it needs one.
        let all: Vec<Arc<Schema>> = schemas.iter().map(|(s, _)| s.clone()).collect();
        let target_plan = match target {
            Some((tcol, tty, tpipe, tspan)) => {
                self.target(&all, tcol, tty, tpipe, tspan, schemas[0].1)
            }
            None => Some(TargetPlan {
                column: String::new(),
                kind: TargetKind::Absent,
                drop_missing: false,
                span: d.name.span,
            }),
        };
        let tcol = target.map(|t| t.0);
        let feats = match features {
            Some((f, span)) => self.features(&all, f, span, tcol, schemas[0].1),
            None => {
                self.error(
                    Diagnostic::error(
                        "mlx::data::features",
                        format!("dataset `{}` has no `features` block", d.name.name),
                    )
                    .with_label(d.name.span, "no inputs for the model")
                    .with_help("add `features { *: Float = standardize }` or name each column"),
                );
                None
            }
        };
        let split = self.split(
            split_e,
            &sources.iter().map(|(r, _, _)| *r).collect::<Vec<_>>(),
            target_plan.as_ref(),
            &all,
        );
        let (target_plan, feats, split) = (target_plan?, feats?, split?);
        let feature_shape = self.feature_shape(&feats, d)?;
        let dedup = dedup.then_some(dedup_span);
        let stream = self.stream_plan(stream, buffer, dedup, &split, split_e, &plans, &feats)?;
        Some(DatasetPlan {
            name: d.name.name.clone(),
            span: d.name.span,
            sources: plans,
            dedup: dedup.is_some(),
            stream,
            split,
            features: feats,
            target: target_plan,
            feature_shape,
        })
    }

    /// The value of a `true`/`false` dataset setting (`None`, reported, when it is not one).
    fn bool_setting(&mut self, en: &ast::Entry) -> Option<bool> {
        match self.scalar_expr(&en.value) {
            Val::Bool(Some(b)) => Some(b),
            Val::Poison => None,
            v => {
                self.error(
                    Diagnostic::error(
                        "mlx::type::mismatch",
                        format!(
                            "`{}` must be true or false, found {}",
                            en.key.name,
                            v.describe()
                        ),
                    )
                    .with_label(en.value.span, "not a boolean"),
                );
                None
            }
        }
    }

    /// A streamed dataset's plan, or the first thing it cannot stream: rows are split by a
    /// hash of their own text (no stratification, no folds), duplicates are not found, IDX
    /// images are not streamed, and each fitted statistic must be computable in passes over the
    /// rows (no numeric mode, no steps after `ordinal`).
    #[allow(clippy::too_many_arguments)]
    fn stream_plan(
        &mut self,
        stream: Option<(bool, Span)>,
        buffer: Option<(usize, Span)>,
        dedup: Option<Span>,
        split: &Split,
        split_e: Option<&ast::Expr>,
        sources: &[SourcePlan],
        feats: &[FeaturePlan],
    ) -> Option<Option<StreamPlan>> {
        let on = stream.is_some_and(|(b, _)| b);
        if !on {
            if let Some((_, span)) = buffer {
                self.error(
                    Diagnostic::error(
                        STREAM,
                        "`shuffle_buffer` sizes the shuffle of a streamed dataset, but this dataset is not streamed",
                    )
                    .with_label(span, "no `stream = true`")
                    .with_help("add `stream = true`, or remove `shuffle_buffer` (an in-memory dataset is shuffled whole)"),
                );
                return None;
            }
            return Some(None);
        }
        let at = stream.map_or(Span::default(), |(_, s)| s);
        let refuse = |this: &mut Self, msg: String, span: Span, label: &str, help: &str| {
            this.error(
                Diagnostic::error(STREAM, msg)
                    .with_label(span, label.to_string())
                    .with_secondary(at, "streamed here")
                    .with_help(help.to_string()),
            );
        };
        if let Some(dedup) = dedup {
            refuse(
                self,
                "`dedup` needs every row in memory to find duplicates; a streamed dataset never holds them".into(),
                dedup,
                "duplicates are found in memory",
                "remove the duplicates from the source, or `dedup = false` (a streamed split keeps identical rows together: they hash alike)",
            );
            return None;
        }
        let split_span = split_e.map_or(at, |e| e.span);
        match split {
            Split::KFold { .. } => {
                refuse(
                    self,
                    "k-fold cross-validation is not streamed: each fold would read the data again"
                        .into(),
                    split_span,
                    "folds",
                    "use `random(...)` or `holdout(...)` with `stream = true`",
                );
                return None;
            }
            Split::Random { stratify: true, .. } | Split::Holdout { stratify: true, .. } => {
                refuse(
                    self,
                    "a streamed split decides each row by a hash of its text and cannot stratify"
                        .into(),
                    split_span,
                    "stratified",
                    "remove `stratify: true` (on millions of rows a hashed split keeps the class shares within a fraction of a percent)",
                );
                return None;
            }
            _ => {}
        }
        if let Some(s) = sources
            .iter()
            .find(|s| matches!(s.loader, Loader::Idx { .. }))
        {
            refuse(
                self,
                "IDX image files are not streamed".into(),
                s.span,
                "an IDX source",
                "remove `stream = true`: IDX files are read into memory",
            );
            return None;
        }
        for f in feats {
            let numeric_mode =
                matches!(f.kind, ColumnKind::Numeric) && f.steps.contains(&Step::ImputeMode);
            let after_ordinal = f
                .steps
                .iter()
                .position(|s| *s == Step::Ordinal)
                .is_some_and(|i| i + 1 < f.steps.len());
            let (why, help) = if numeric_mode {
                (
                    "`impute(mode)` of a number column needs every distinct value's count",
                    "use `impute(median)` or `impute(mean)`, or remove `stream = true`",
                )
            } else if after_ordinal {
                (
                    "steps after `ordinal` are not fitted on a streamed dataset",
                    "end the pipeline at `ordinal` (or use `one_hot`), or remove `stream = true`",
                )
            } else {
                continue;
            };
            // The feature's first line (its span runs on to the next entry).
            let text = self.sources.get(f.span.file).snippet(f.span);
            let first = text.find('\n').map_or(text, |n| &text[..n]).trim_end();
            let span = Span::new(
                f.span.file,
                f.span.start as usize,
                f.span.start as usize + first.len(),
            );
            refuse(
                self,
                format!("feature `{}`: {why}", f.column),
                span,
                "not streamed",
                help,
            );
            return None;
        }
        Some(Some(StreamPlan {
            buffer: buffer.map(|(n, _)| n),
        }))
    }

    fn loader(&mut self, call: &ConfigCall, dir: Option<&std::path::Path>) -> Option<Loader> {
        let path = |k: &str| -> PathBuf {
            let s = match call.val(k) {
                Some(Val::Str(s)) => s.clone(),
                _ => String::new(),
            };
            let p = PathBuf::from(&s);
            match dir {
                Some(d) if p.is_relative() => d.join(p),
                _ => p,
            }
        };
        match call.name.as_str() {
            "csv" => {
                let sep = match call.val("sep") {
                    Some(Val::Str(s)) => {
                        let s = if s == "\\t" { "\t" } else { s.as_str() };
                        let mut chars = s.chars();
                        match (chars.next(), chars.next()) {
                            (Some(c), None) if c != '"' && c != '\n' => c,
                            _ => {
                                self.error(
                                    Diagnostic::error("mlx::value::range", "`sep` must be a single character other than a quote or newline")
                                        .with_label(call.span_of("sep"), "not one character"),
                                );
                                return None;
                            }
                        }
                    }
                    _ => ',',
                };
                let missing = match call.val("missing") {
                    Some(Val::Str(s)) => vec![s.clone()],
                    _ => Vec::new(),
                };
                Some(Loader::Csv {
                    path: path("path"),
                    missing,
                    sep,
                })
            }
            "parquet" => Some(Loader::Parquet { path: path("path") }),
            "sql" => {
                let text = |k: &str| match call.val(k) {
                    Some(Val::Str(s)) => s.clone(),
                    _ => String::new(),
                };
                let (mut url, query) = (text("url"), text("query"));
                if crate::data::sources::url_has_password(&url) {
                    self.error(
                        Diagnostic::error(
                            "mlx::data::source",
                            "the database URL holds a password, which would be copied into the run directory",
                        )
                        .with_label(call.span_of("url"), "a password in the spec")
                        .with_help("remove it from the URL; mlx reads it from PGPASSWORD or the password file (~/.pgpass, or PGPASSFILE)"),
                    );
                    return None;
                }
                if let Some(p) = crate::data::sources::sqlite_path(&url) {
                    let p = PathBuf::from(p);
                    if let (Some(d), true) = (dir, p.is_relative()) {
                        url = format!("sqlite:{}", d.join(p).display());
                    }
                } else if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                    self.error(
                        Diagnostic::error(
                            "mlx::data::source",
                            format!("`{url}` is not a database URL mlx reads"),
                        )
                        .with_label(call.span_of("url"), "unknown kind of database")
                        .with_help(format!("write {}", crate::data::sources::URL_FORMS)),
                    );
                    return None;
                }
                if query.trim().is_empty() {
                    self.error(
                        Diagnostic::error("mlx::data::source", "the query is empty")
                            .with_label(call.span_of("query"), "empty")
                            .with_help("write the SELECT that returns the dataset's rows"),
                    );
                    return None;
                }
                Some(Loader::Sql { url, query })
            }
            _ => Some(Loader::Idx {
                images: path("images"),
                labels: matches!(call.val("labels"), Some(Val::Str(_))).then(|| path("labels")),
            }),
        }
    }

    fn schema_error(
        &mut self,
        call: &ConfigCall,
        err: &crate::data::schema::SchemaError,
        span: Span,
    ) {
        let arg = if let Some(a) = err.arg {
            a
        } else if call.name == "csv" || call.name == "parquet" {
            "path"
        } else if call.name == "sql" {
            "url"
        } else if matches!(call.val("labels"), Some(Val::Str(s)) if err.path.ends_with(s)) {
            "labels"
        } else {
            "images"
        };
        let at = call.span_of(arg);
        let d = if call.name == "sql" && !err.missing_file {
            let (label, help) = if arg == "query" {
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
            Diagnostic::error(
                "mlx::data::source",
                format!("{}: {}", err.path.display(), err.message),
            )
            .with_label(at, label)
            .with_help(help)
        } else if err.missing_file {
            Diagnostic::error(
                "mlx::data::file_missing",
                format!("data file `{}` does not exist", err.path.display()),
            )
            .with_label(at, "no such file")
            .with_help("paths are relative to the .mlx file that names them")
        } else if err.line > 0 {
            Diagnostic::error(
                "mlx::data::malformed",
                format!("{}:{}: {}", err.path.display(), err.line, err.message),
            )
            .with_label(at, format!("line {} of this file is malformed", err.line))
        } else {
            Diagnostic::error(
                "mlx::data::malformed",
                format!("{}: {}", err.path.display(), err.message),
            )
            .with_label(at, "cannot read this file")
        };
        let _ = span;
        self.error(d);
    }

    fn target(
        &mut self,
        schemas: &[Arc<Schema>],
        col: &ast::Ident,
        ty: &ast::TypeExpr,
        pipeline: Option<&ast::Expr>,
        span: Span,
        source_span: Span,
    ) -> Option<TargetPlan> {
        let mut drop_missing = false;
        if let Some(p) = pipeline {
            for step in pipeline_steps(p) {
                match self.config_call(step, STEPS, "preprocessing step", &[]) {
                    Some(c) if c.name == "drop_missing" => drop_missing = true,
                    Some(c) => {
                        self.error(
                            Diagnostic::error("mlx::data::step", format!("`{}` cannot be applied to the target", c.name))
                                .with_label(step.span, "not allowed on a target")
                                .with_help("a target may only `drop_missing`; its values are what the model learns"),
                        );
                        return None;
                    }
                    None => return None,
                }
            }
        }
        let kind_name = ty.name.name.as_str();
        if let Schema::Idx(ix) = &*schemas[0] {
            if ix.labels == 0 && ix.images > 0 {
                self.error(
                    Diagnostic::error(
                        "mlx::data::target",
                        format!("the target `{}` needs labels, but the IDX source reads images only", col.name),
                    )
                    .with_label(source_span, "no label file")
                    .with_secondary(col.span, "target declared here")
                    .with_help("give the labels: `idx(\"images.gz\", \"labels.gz\")`, or remove the `target` for an unlabelled dataset"),
                );
                return None;
            }
            if col.name != "label" {
                self.error(
                    Diagnostic::error(
                        "mlx::data::column_missing",
                        format!("an IDX dataset's target is `label`, not `{}`", col.name),
                    )
                    .with_label(col.span, "no such column")
                    .with_help("write `target label: Class[10]`"),
                );
                return None;
            }
            let max = schemas
                .iter()
                .filter_map(|s| match &**s {
                    Schema::Idx(i) => Some(i.max_label),
                    Schema::Csv(_) => None,
                })
                .max()
                .unwrap_or(ix.max_label) as usize;
            let classes = self.class_count(ty, max + 1, None, span)?;
            return Some(TargetPlan {
                column: col.name.clone(),
                kind: TargetKind::Class {
                    classes,
                    levels: (0..classes).map(|i| i.to_string()).collect(),
                    numeric: true,
                },
                drop_missing,
                span,
            });
        }
        let column = self.find_column(schemas, col, source_span)?;
        if column.missing > 0 && !drop_missing {
            self.error(
                Diagnostic::error(
                    "mlx::data::missing_values",
                    format!(
                        "the target `{}` has {} missing value{} in the data",
                        col.name,
                        column.missing,
                        super::model::plural(column.missing)
                    ),
                )
                .with_label(col.span, "rows without a target cannot be used")
                .with_help(format!(
                    "drop those rows: `target {}: {} = drop_missing`",
                    col.name,
                    crate::syntax::print::type_expr(ty)
                )),
            );
            return None;
        }
        let kind = match kind_name {
            "Float" if ty.dims.is_none() => {
                if !column.numeric {
                    self.text_column_error(&column, col.span, "Float");
                    return None;
                }
                TargetKind::Regression
            }
            "Class" | "Category" => {
                if kind_name == "Category" && ty.dims.is_some() {
                    self.bad_target_type(ty);
                    return None;
                }
                if column.levels_truncated {
                    self.error(
                        Diagnostic::error(
                            "mlx::data::classes",
                            format!(
                                "`{}` has more than {} distinct values: too many for classes",
                                col.name,
                                crate::data::schema::MAX_LEVELS
                            ),
                        )
                        .with_label(col.span, "too many classes"),
                    );
                    return None;
                }
                if column.numeric {
                    if !column.integer || column.levels.iter().any(|l| l.starts_with('-')) {
                        self.error(
                            Diagnostic::error("mlx::data::classes", format!("the class labels in `{}` must be whole numbers from 0, or text", col.name))
                                .with_label(col.span, "not usable as class labels")
                                .with_help("for a numeric target to predict, declare it `Float`"),
                        );
                        return None;
                    }
                    let max = column
                        .levels
                        .iter()
                        .filter_map(|l| crate::data::schema::parse_number(l))
                        .fold(0.0f64, f64::max) as usize;
                    let classes = if kind_name == "Category" {
                        max + 1
                    } else {
                        self.class_count(ty, max + 1, None, span)?
                    };
                    TargetKind::Class {
                        classes,
                        levels: (0..classes).map(|i| i.to_string()).collect(),
                        numeric: true,
                    }
                } else {
                    let n = column.levels.len();
                    let classes = if kind_name == "Category" {
                        n
                    } else {
                        self.class_count(ty, n, Some(&column.levels), span)?
                    };
                    TargetKind::Class {
                        classes,
                        levels: column.levels.clone(),
                        numeric: false,
                    }
                }
            }
            _ => {
                self.bad_target_type(ty);
                return None;
            }
        };
        if let TargetKind::Class { classes, .. } = &kind
            && *classes < 2
        {
            self.error(
                Diagnostic::error(
                    "mlx::data::classes",
                    format!(
                        "the target `{}` has only {classes} class in the data",
                        col.name
                    ),
                )
                .with_label(col.span, "nothing to tell apart"),
            );
            return None;
        }
        Some(TargetPlan {
            column: col.name.clone(),
            kind,
            drop_missing,
            span,
        })
    }

    fn bad_target_type(&mut self, ty: &ast::TypeExpr) {
        self.error(
            Diagnostic::error(
                "mlx::type::mismatch",
                format!(
                    "a target is `Class[K]`, `Category` or `Float`, not `{}`",
                    crate::syntax::print::type_expr(ty)
                ),
            )
            .with_label(ty.span, "not a target type"),
        );
    }

    /// The class count of `Class[K]` against the data's `found` classes.
    fn class_count(
        &mut self,
        ty: &ast::TypeExpr,
        found: usize,
        levels: Option<&[String]>,
        span: Span,
    ) -> Option<usize> {
        let Some(dims) = &ty.dims else {
            self.error(
                Diagnostic::error("mlx::type::mismatch", "`Class` needs its class count: `Class[3]`, or `Class[K]` to take it from the data")
                    .with_label(ty.span, "missing [K]"),
            );
            return None;
        };
        let [ast::DimExpr::Expr(k)] = dims.as_slice() else {
            self.error(
                Diagnostic::error("mlx::type::mismatch", "`Class` takes one count: `Class[3]`")
                    .with_label(ty.span, "one count expected"),
            );
            return None;
        };
        if let Some(n) = k.as_name()
            && n.name.starts_with(|c: char| c.is_ascii_uppercase())
            && !matches!(self.items.get(&n.name), Some((ItemRef::Const(_), _)))
        {
            return Some(found);
        }
        let declared = match self.scalar_expr(k) {
            Val::Int(d) => d.as_const()?,
            Val::Poison => return None,
            v => {
                self.error(
                    Diagnostic::error(
                        "mlx::type::mismatch",
                        format!("a class count must be an integer, found {}", v.describe()),
                    )
                    .with_label(k.span, "not an integer"),
                );
                return None;
            }
        };
        let mismatch = match levels {
            Some(_) => declared as usize != found,
            None => (declared as usize) < found,
        };
        if declared < 2 || mismatch {
            let listed = levels.map_or(String::new(), |l| {
                let shown: Vec<&str> = l.iter().take(8).map(String::as_str).collect();
                format!(
                    " ({}{})",
                    shown.join(", "),
                    if l.len() > 8 { ", ..." } else { "" }
                )
            });
            let what = if levels.is_some() {
                format!("the data has {found} classes{listed}")
            } else {
                format!("the data has labels up to {}", found - 1)
            };
            self.error(
                Diagnostic::error(
                    "mlx::data::classes",
                    format!("the target is declared `Class[{declared}]`, but {what}"),
                )
                .with_label(k.span, format!("declared {declared}"))
                .with_secondary(span, format!("{found} in the data"))
                .with_help(format!(
                    "write `Class[{found}]`, or `Class[K]` to take the count from the data"
                )),
            );
            return None;
        }
        Some(declared as usize)
    }

    pub(super) fn find_column(
        &mut self,
        schemas: &[Arc<Schema>],
        col: &ast::Ident,
        source_span: Span,
    ) -> Option<Column> {
        let mut merged: Option<Column> = None;
        for s in schemas {
            let Schema::Csv(c) = &**s else { return None };
            if let Some(ty) = c
                .columns
                .iter()
                .find(|x| x.name == col.name)
                .and_then(|x| x.unsupported.as_ref())
            {
                self.error(
                    Diagnostic::error(
                        "mlx::data::column_type",
                        format!("column `{}` is of type {ty}, which mlx does not read", col.name),
                    )
                    .with_label(col.span, "a column mlx cannot read")
                    .with_secondary(source_span, "its type comes from this source")
                    .with_help("convert it to a number or text where the data is made (in SQL: CAST it in the query)"),
                );
                return None;
            }
            let Some(found) = c.columns.iter().find(|x| x.name == col.name) else {
                let names: Vec<&str> = c.columns.iter().map(|x| x.name.as_str()).collect();
                let mut d = Diagnostic::error(
                    "mlx::data::column_missing",
                    format!("the data has no column `{}`", col.name),
                )
                .with_label(col.span, "no such column")
                .with_secondary(source_span, "columns come from this source");
                // One column whose name holds another separator: the file was split wrongly.
                let other_sep = match names.as_slice() {
                    [only] => [';', '\t', '|', ',']
                        .into_iter()
                        .find(|c| only.contains(*c) && col.name.len() < only.len()),
                    _ => None,
                };
                d = match (other_sep, did_you_mean(&col.name, names.iter().copied())) {
                    (Some(c), _) => {
                        let shown = if c == '\t' {
                            "\\t".to_string()
                        } else {
                            c.to_string()
                        };
                        d.with_help(format!(
                            "the header was read as one column, `{}`: the file looks separated by `{shown}`; write `csv(\"...\", sep: \"{shown}\")`",
                            crate::diagnostics::shorten(names[0], 60)
                        ))
                    }
                    (None, Some(x)) => d.with_help(format!("did you mean `{x}`?")),
                    (None, None) => d.with_help(format!("the columns are: {}", names.join(", "))),
                };
                self.error(d);
                return None;
            };
            merged = Some(match merged {
                None => found.clone(),
                Some(mut m) => {
                    m.numeric &= found.numeric;
                    m.integer &= found.integer;
                    m.missing += found.missing;
                    if m.first_text.is_none() {
                        m.first_text = found.first_text.clone();
                    }
                    let mut lv: Vec<String> =
                        m.levels.iter().chain(&found.levels).cloned().collect();
                    lv.sort();
                    lv.dedup();
                    if m.numeric {
                        lv.sort_by(|a, b| {
                            crate::data::schema::parse_number(a)
                                .unwrap_or(0.0)
                                .total_cmp(&crate::data::schema::parse_number(b).unwrap_or(0.0))
                        });
                    }
                    m.levels = lv;
                    m.levels_truncated |= found.levels_truncated;
                    m
                }
            });
        }
        merged
    }

    pub(super) fn text_column_error(&mut self, column: &Column, span: Span, declared: &str) {
        let example = column
            .first_text
            .as_ref()
            .map_or(String::new(), |(v, line)| {
                format!(" (line {line} has \"{v}\")")
            });
        self.error(
            Diagnostic::error(
                "mlx::data::column_type",
                format!(
                    "column `{}` holds text{example}, but is declared `{declared}`",
                    column.name
                ),
            )
            .with_label(span, format!("declared `{declared}`"))
            .with_help(format!(
                "declare it `{}: Category = one_hot` (or `ordinal`)",
                column.name
            )),
        );
    }

    fn split(
        &mut self,
        e: Option<&ast::Expr>,
        roles: &[SourceRole],
        target: Option<&TargetPlan>,
        schemas: &[Arc<Schema>],
    ) -> Option<Split> {
        let Some(e) = e else { return Some(Split::None) };
        let c = self.config_call(e, SPLITS, "split", &[])?;
        let single = roles == [SourceRole::All];
        let stratify = c.b("stratify");
        if stratify && target.is_some_and(|t| t.kind == TargetKind::Regression) {
            self.error(
                Diagnostic::error(
                    "mlx::data::split",
                    "`stratify` balances classes, but the target is a regression value",
                )
                .with_label(c.span_of("stratify"), "needs a Class target")
                .with_help("remove `stratify: true`"),
            );
            return None;
        }
        let rows = schemas.iter().map(|s| match &**s {
            Schema::Csv(c) => c.rows,
            Schema::Idx(i) => i.images,
        });
        let train_rows = rows.clone().next().unwrap_or(0);
        match c.name.as_str() {
            "random" => {
                if !single {
                    self.error(
                        Diagnostic::error("mlx::data::split", "`random` splits one source; this dataset already has separate train/test sources")
                            .with_label(c.span, "needs a single `source`")
                            .with_help("use `holdout(val: 0.1)` to carve a validation set out of the training source"),
                    );
                    return None;
                }
                let (tr, va, te) = (c.f("train"), c.f("val"), c.f("test"));
                let sum = tr + va + te;
                if (sum - 1.0).abs() > 1e-6 {
                    self.error(
                        Diagnostic::error(
                            "mlx::data::split",
                            format!(
                                "the split fractions add up to {}, not 1",
                                crate::syntax::print::float((sum * 1e9).round() / 1e9)
                            ),
                        )
                        .with_label(
                            c.span,
                            format!("{} + {} + {} = {}", tr, va, te, (sum * 1e9).round() / 1e9),
                        )
                        .with_help("make train + val + test equal 1"),
                    );
                    return None;
                }
                if tr <= 0.0 {
                    self.error(
                        Diagnostic::error(
                            "mlx::data::split",
                            "the training fraction must be above 0",
                        )
                        .with_label(c.span_of("train"), "no training rows"),
                    );
                    return None;
                }
                if no_training_rows(train_rows, &[tr, va, te], stratify) {
                    self.empty_training_split(c.span_of("train"), train_rows, tr);
                    return None;
                }
                Some(Split::Random {
                    train: tr,
                    val: va,
                    test: te,
                    stratify,
                })
            }
            "holdout" => {
                if roles.contains(&SourceRole::Val) {
                    self.error(Diagnostic::error("mlx::data::split", "`holdout` carves a validation set, but this dataset has a `source val` already").with_label(c.span, "two validation sets"));
                    return None;
                }
                let val = c.f("val");
                if (0.0..1.0).contains(&val)
                    && no_training_rows(train_rows, &[1.0 - val, val], stratify)
                {
                    self.empty_training_split(c.span_of("val"), train_rows, 1.0 - val);
                    return None;
                }
                Some(Split::Holdout { val, stratify })
            }
            _ => {
                let k = c.i("k") as usize;
                if k > train_rows {
                    self.error(
                        Diagnostic::error(
                            "mlx::data::split",
                            format!(
                                "{k} folds need at least {k} rows, but the data has {train_rows}"
                            ),
                        )
                        .with_label(c.span_of("k"), "too many folds"),
                    );
                    return None;
                }
                if roles.contains(&SourceRole::Val) {
                    self.error(Diagnostic::error("mlx::data::split", "`kfold` makes its own validation folds, but this dataset has a `source val`").with_label(c.span, "two validation sets"));
                    return None;
                }
                Some(Split::KFold { k, stratify })
            }
        }
    }
}

impl Checker<'_> {
    fn empty_training_split(&mut self, span: Span, rows: usize, share: f64) {
        self.error(
            Diagnostic::error(
                "mlx::data::split",
                format!(
                    "this split leaves no training rows: {} of the data's {rows} rows is less than one",
                    crate::syntax::print::float((share * 1e9).round() / 1e9)
                ),
            )
            .with_label(span, "no training rows")
            .with_help("give training a larger share, or use more data"),
        );
    }
}

/// Whether cutting `rows` rows by `fractions` (training first) leaves training empty however
/// the rows fall into classes: exact without stratification (the loader deals by largest
/// remainder); with it, only when no class size could give training a row.
fn no_training_rows(rows: usize, fractions: &[f64], stratify: bool) -> bool {
    use crate::data::split::largest_remainder;
    if rows == 0 {
        return false;
    }
    if !stratify {
        return largest_remainder(rows, fractions)[0] == 0;
    }
    let total: f64 = fractions.iter().map(|f| f.max(0.0)).sum();
    let share = fractions[0].max(0.0) / total.max(f64::MIN_POSITIVE);
    // A class of ceil(1/share) rows surely gives training one: look no further.
    let limit = if share > 0.0 {
        rows.min((1.0 / share).ceil() as usize + 1)
    } else {
        rows
    };
    (1..=limit).all(|g| largest_remainder(g, fractions)[0] == 0)
}

fn same_layout(a: &Schema, b: &Schema) -> bool {
    match (a, b) {
        (Schema::Csv(x), Schema::Csv(y)) => {
            x.columns.len() == y.columns.len()
                && x.columns
                    .iter()
                    .zip(&y.columns)
                    .all(|(p, q)| p.name == q.name)
        }
        (Schema::Idx(x), Schema::Idx(y)) => x.image_dims == y.image_dims,
        _ => false,
    }
}
