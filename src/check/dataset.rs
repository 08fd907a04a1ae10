//! Datasets: sources (with their schema read from the files), split, features with their
//! preprocessing steps, and the target, all checked against the data's real columns.

use super::config::ConfigCall;
use super::error::{Unknown, data};
use super::features::pipeline_steps;
use super::hir::{
    ColumnKind, DatasetPlan, FeaturePlan, Loader, SourcePlan, SourceRole, Split, Step, StreamPlan,
    TargetKind, TargetPlan,
};
use super::tables::{DATASET_SETTINGS, SOURCES, SPLITS, STEPS};
use super::value::Val;
use super::{Checker, ItemRef};
use crate::data::schema::{Column, IdxSchema, Schema};
use crate::source::Span;
use crate::syntax::ast::{self, DatasetEntry};
use std::path::PathBuf;
use std::sync::Arc;

/// `source <role> = <value>`, with the entry's span.
type SourceEntry<'e> = (SourceRole, &'e ast::Expr, Span);

/// A source's schema, with the span of the source's value.
type SourceSchema = (Arc<Schema>, Span);

/// `target <column>: <type> = <pipeline>`, with the entry's span.
type TargetEntry<'e> = (
    &'e ast::Ident,
    &'e ast::TypeExpr,
    Option<&'e ast::Expr>,
    Span,
);

/// A dataset's entries, gathered before they are checked together.
#[derive(Default)]
struct Entries<'e> {
    sources: Vec<SourceEntry<'e>>,
    split: Option<&'e ast::Expr>,
    /// Where `dedup = true` is set, when it is.
    dedup: Option<Span>,
    stream: Option<(bool, Span)>,
    buffer: Option<(usize, Span)>,
    features: Option<(&'e [ast::Feature], Span)>,
    target: Option<TargetEntry<'e>>,
}

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
        let (en, mut ok) = self.dataset_entries(d);
        if !self.source_roles_fit(d, &en.sources) {
            return None;
        }
        let (plans, schemas, read) = self.read_sources(&en.sources, dir.as_deref());
        ok &= read;
        if !ok || schemas.is_empty() {
            // Still check what can be checked without the data.
            if let Some(e) = en.split {
                self.config_call(e, SPLITS, "split", &[]);
            }
            return None;
        }
        let first = schemas[0].clone();
        if let Some((_, span)) = schemas[1..].iter().find(|(s, _)| !same_layout(&first.0, s)) {
            self.fail(data::Error::SourcesDiffer {
                span: *span,
                first: first.1,
            });
            return None;
        }
        // A dataset without a target has features only: a train with objectives can use it
        // (an autoencoder, a GAN); `model = ...` with a built-in loss says it needs one.
        let all: Vec<Arc<Schema>> = schemas.iter().map(|(s, _)| s.clone()).collect();
        let target_plan = match en.target {
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
        let tcol = en.target.map(|t| t.0);
        let feats = match en.features {
            Some((f, span)) => self.features(&all, f, span, tcol, schemas[0].1),
            None => {
                self.fail(data::Error::FeaturesNone {
                    dataset: d.name.name.clone(),
                    span: d.name.span,
                });
                None
            }
        };
        let split = self.split(
            en.split,
            &en.sources.iter().map(|(r, _, _)| *r).collect::<Vec<_>>(),
            target_plan.as_ref(),
            &all,
        );
        let (target_plan, feats, split) = (target_plan?, feats?, split?);
        let feature_shape = self.feature_shape(&feats, d)?;
        let stream = self.stream_plan(
            en.stream, en.buffer, en.dedup, &split, en.split, &plans, &feats,
        )?;
        Some(DatasetPlan {
            name: d.name.name.clone(),
            span: d.name.span,
            sources: plans,
            dedup: en.dedup.is_some(),
            stream,
            split,
            features: feats,
            target: target_plan,
            feature_shape,
        })
    }

    /// A dataset's entries gathered (each reported when wrong or given twice), and whether
    /// all of them were right.
    fn dataset_entries(&mut self, d: &'a ast::Dataset) -> (Entries<'a>, bool) {
        let mut en = Entries::default();
        let mut ok = true;
        for e in &d.entries {
            match e {
                DatasetEntry::Source { name, value, span } => {
                    let Some(role) = self.source_role(name.as_ref()) else {
                        ok = false;
                        continue;
                    };
                    if let Some((_, _, prev)) = en.sources.iter().find(|(r, _, _)| *r == role) {
                        self.fail(data::Error::SourceTwice {
                            span: *span,
                            first: *prev,
                        });
                        ok = false;
                        continue;
                    }
                    en.sources.push((role, value, *span));
                }
                DatasetEntry::Setting(s) => ok &= self.dataset_setting(s, &mut en),
                DatasetEntry::Features { features: f, span } => {
                    if let Some((_, first)) = en.features {
                        self.fail(data::Error::FeaturesTwice { span: *span, first });
                        ok = false;
                    }
                    en.features = Some((f, *span));
                }
                DatasetEntry::Target {
                    column,
                    ty,
                    pipeline,
                    span,
                } => {
                    if let Some((_, _, _, first)) = en.target {
                        self.fail(data::Error::TargetTwice { span: *span, first });
                        ok = false;
                    }
                    en.target = Some((column, ty, pipeline.as_ref(), *span));
                }
            }
        }
        (en, ok)
    }

    /// The role of `source <name> = ...` (`None`, reported, for a name that is no role).
    fn source_role(&mut self, name: Option<&ast::Ident>) -> Option<SourceRole> {
        let Some(n) = name else {
            return Some(SourceRole::All);
        };
        match n.name.as_str() {
            "train" => Some(SourceRole::Train),
            "val" => Some(SourceRole::Val),
            "test" => Some(SourceRole::Test),
            other => {
                self.fail(data::Error::SourceName {
                    name: other.to_string(),
                    span: n.span,
                });
                None
            }
        }
    }

    /// Record one `key = value` dataset setting in `en`; false (reported) when it is wrong.
    fn dataset_setting(&mut self, s: &'a ast::Entry, en: &mut Entries<'a>) -> bool {
        let at = s.key.span.to(s.value.span);
        match s.key.name.as_str() {
            "split" => en.split = Some(&s.value),
            "dedup" => match self.bool_setting(s) {
                Some(b) => en.dedup = b.then_some(at),
                None => return false,
            },
            "stream" => match self.bool_setting(s) {
                Some(b) => en.stream = Some((b, at)),
                None => return false,
            },
            "shuffle_buffer" => match self.positive_int(&s.value, "shuffle_buffer", 1) {
                Some(n) => en.buffer = Some((n as usize, at)),
                None => return false,
            },
            other => {
                self.fail(
                    Unknown::new(
                        "mlx::name::unknown",
                        format!("unknown dataset setting `{other}`"),
                        s.key.span,
                        "not a dataset setting",
                        other,
                        DATASET_SETTINGS.iter().copied(),
                    )
                    .otherwise("a dataset has `source`, `split`, `dedup`, `stream`, `shuffle_buffer`, `features` and `target`"),
                );
                return false;
            }
        }
        true
    }

    /// Whether the sources' roles make a dataset: at least one, and either one unnamed source
    /// or named ones with a `train` (reported when not).
    fn source_roles_fit(&mut self, d: &ast::Dataset, sources: &[SourceEntry<'_>]) -> bool {
        let unnamed = sources.iter().find(|(r, _, _)| *r == SourceRole::All);
        let named = sources.iter().any(|(r, _, _)| *r != SourceRole::All);
        let e = if sources.is_empty() {
            data::Error::SourceNone {
                dataset: d.name.name.clone(),
                span: d.name.span,
            }
        } else if let (true, Some((_, _, span))) = (named, unnamed) {
            data::Error::SourceUnnamedBesideNamed { span: *span }
        } else if named && !sources.iter().any(|(r, _, _)| *r == SourceRole::Train) {
            data::Error::SourceNoTrain { span: d.name.span }
        } else {
            return true;
        };
        self.fail(e);
        false
    }

    /// Every source's loader and schema (with the span of its value), and whether all were
    /// read and hold rows (each failure reported).
    fn read_sources(
        &mut self,
        sources: &[SourceEntry<'_>],
        dir: Option<&std::path::Path>,
    ) -> (Vec<SourcePlan>, Vec<SourceSchema>, bool) {
        let mut ok = true;
        let mut plans = Vec::new();
        let mut schemas: Vec<SourceSchema> = Vec::new();
        for (role, e, _) in sources {
            let Some(call) = self.config_call(e, SOURCES, "data source", &[]) else {
                ok = false;
                continue;
            };
            let Some(loader) = self.loader(&call, dir) else {
                ok = false;
                continue;
            };
            match self.schemas.schema(&loader) {
                Ok(s) => schemas.push((s, e.span)),
                Err(err) => {
                    self.schema_error(&call, &err);
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
                self.fail(data::Error::SourceEmpty { what, span: *span });
                ok = false;
            }
        }
        (plans, schemas, ok)
    }

    /// The value of a `true`/`false` dataset setting (`None`, reported, when it is not one).
    fn bool_setting(&mut self, en: &ast::Entry) -> Option<bool> {
        match self.scalar_expr(&en.value) {
            Val::Bool(Some(b)) => Some(b),
            Val::Poison => None,
            v => {
                self.fail(data::Error::SettingNotBool {
                    key: en.key.name.clone(),
                    found: v.describe(),
                    span: en.value.span,
                });
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
                self.fail(data::Error::ShuffleNotStreamed { span });
                return None;
            }
            return Some(None);
        }
        let at = stream.map_or(Span::default(), |(_, s)| s);
        let split_span = split_e.map_or(at, |e| e.span);
        let refused = match (dedup, split) {
            (Some(span), _) => Some(data::Error::StreamDedup { span, stream: at }),
            (None, Split::KFold { .. }) => Some(data::Error::StreamFolds {
                span: split_span,
                stream: at,
            }),
            (
                None,
                Split::Random { stratify: true, .. } | Split::Holdout { stratify: true, .. },
            ) => Some(data::Error::StreamStratified {
                span: split_span,
                stream: at,
            }),
            _ => sources
                .iter()
                .find(|s| matches!(s.loader, Loader::Idx { .. }))
                .map(|s| data::Error::StreamIdx {
                    span: s.span,
                    stream: at,
                })
                .or_else(|| feats.iter().find_map(|f| self.feature_not_streamed(f, at))),
        };
        if let Some(e) = refused {
            self.fail(e);
            return None;
        }
        Some(Some(StreamPlan {
            buffer: buffer.map(|(n, _)| n),
        }))
    }

    /// What of feature `f` cannot be fitted on a dataset streamed at `stream`, if anything.
    fn feature_not_streamed(&self, f: &FeaturePlan, stream: Span) -> Option<data::Error> {
        let numeric_mode =
            matches!(f.kind, ColumnKind::Numeric) && f.steps.contains(&Step::ImputeMode);
        let after_ordinal = f
            .steps
            .iter()
            .position(|s| *s == Step::Ordinal)
            .is_some_and(|i| i + 1 < f.steps.len());
        if !numeric_mode && !after_ordinal {
            return None;
        }
        // The feature's first line (its span runs on to the next entry).
        let text = self.sources.get(f.span.file).snippet(f.span);
        let first = text.find('\n').map_or(text, |n| &text[..n]).trim_end();
        let span = Span::new(
            f.span.file,
            f.span.start as usize,
            f.span.start as usize + first.len(),
        );
        let column = f.column.clone();
        Some(if numeric_mode {
            data::Error::StreamImputeMode {
                column,
                span,
                stream,
            }
        } else {
            data::Error::StreamAfterOrdinal {
                column,
                span,
                stream,
            }
        })
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
                                self.fail(data::Error::SepNotOneChar {
                                    span: call.span_of("sep"),
                                });
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
                    self.fail(data::Error::UrlPassword {
                        span: call.span_of("url"),
                    });
                    return None;
                }
                if let Some(p) = crate::data::sources::sqlite_path(&url) {
                    let p = PathBuf::from(p);
                    if let (Some(d), true) = (dir, p.is_relative()) {
                        url = format!("sqlite:{}", d.join(p).display());
                    }
                } else if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                    self.fail(data::Error::UrlUnknown {
                        url,
                        span: call.span_of("url"),
                    });
                    return None;
                }
                if query.trim().is_empty() {
                    self.fail(data::Error::QueryEmpty {
                        span: call.span_of("query"),
                    });
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

    fn schema_error(&mut self, call: &ConfigCall, err: &crate::data::schema::SchemaError) {
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
        let span = call.span_of(arg);
        let path = err.path.display().to_string();
        let message = err.message.clone();
        self.fail(if call.name == "sql" && !err.missing_file {
            data::Error::DatabaseRefused {
                path,
                message,
                query: arg == "query",
                span,
            }
        } else if err.missing_file {
            data::Error::FileMissing { path, span }
        } else {
            data::Error::FileMalformed {
                path,
                line: (err.line > 0).then_some(err.line),
                message,
                span,
            }
        });
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
        let drop_missing = match pipeline {
            Some(p) => self.target_steps(p)?,
            None => false,
        };
        let kind = if let Schema::Idx(ix) = &*schemas[0] {
            self.idx_target(schemas, ix, col, ty, span, source_span)?
        } else {
            let column = self.find_column(schemas, col, source_span)?;
            if column.missing > 0 && !drop_missing {
                self.fail(data::Error::TargetMissingValues {
                    target: col.name.clone(),
                    missing: column.missing,
                    ty: crate::syntax::print::type_expr(ty),
                    span: col.span,
                });
                return None;
            }
            self.csv_target(&column, col, ty, span)?
        };
        Some(TargetPlan {
            column: col.name.clone(),
            kind,
            drop_missing,
            span,
        })
    }

    /// Whether the target's steps drop its missing values (`None`, reported, for a step
    /// other than `drop_missing`).
    fn target_steps(&mut self, pipeline: &ast::Expr) -> Option<bool> {
        let mut drop_missing = false;
        for step in pipeline_steps(pipeline) {
            let c = self.config_call(step, STEPS, "preprocessing step", &[])?;
            if c.name != "drop_missing" {
                self.fail(data::Error::TargetStep {
                    step: c.name,
                    span: step.span,
                });
                return None;
            }
            drop_missing = true;
        }
        Some(drop_missing)
    }

    /// The target of an IDX dataset: its labels, as classes.
    fn idx_target(
        &mut self,
        schemas: &[Arc<Schema>],
        ix: &IdxSchema,
        col: &ast::Ident,
        ty: &ast::TypeExpr,
        span: Span,
        source_span: Span,
    ) -> Option<TargetKind> {
        if ix.labels == 0 && ix.images > 0 {
            self.fail(data::Error::IdxTargetNoLabels {
                target: col.name.clone(),
                source: source_span,
                declared: col.span,
            });
            return None;
        }
        if col.name != "label" {
            self.fail(data::Error::IdxTargetName {
                name: col.name.clone(),
                declared: crate::syntax::print::type_expr(ty),
                span: col.span,
            });
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
        Some(TargetKind::Class {
            classes,
            levels: (0..classes).map(|i| i.to_string()).collect(),
            numeric: true,
        })
    }

    /// The kind of a CSV dataset's target `col`, declared `ty`, from its `column`.
    fn csv_target(
        &mut self,
        column: &Column,
        col: &ast::Ident,
        ty: &ast::TypeExpr,
        span: Span,
    ) -> Option<TargetKind> {
        let kind = match ty.name.name.as_str() {
            "Float" if ty.dims.is_none() => {
                if !column.numeric {
                    self.text_column_error(column, col.span, "Float");
                    return None;
                }
                TargetKind::Regression
            }
            "Class" | "Category" => self.class_target(column, col, ty, span)?,
            _ => {
                self.bad_target_type(ty);
                return None;
            }
        };
        if let TargetKind::Class { classes, .. } = &kind
            && *classes < 2
        {
            self.fail(data::Error::OneClass {
                target: col.name.clone(),
                classes: *classes,
                span: col.span,
            });
            return None;
        }
        Some(kind)
    }

    /// A `Class[K]` or `Category` target's classes: numbered from 0, or the column's levels.
    fn class_target(
        &mut self,
        column: &Column,
        col: &ast::Ident,
        ty: &ast::TypeExpr,
        span: Span,
    ) -> Option<TargetKind> {
        let category = ty.name.name == "Category";
        if category && ty.dims.is_some() {
            self.bad_target_type(ty);
            return None;
        }
        let target = || col.name.clone();
        if column.levels_truncated {
            self.fail(data::Error::ClassesTooMany {
                target: target(),
                span: col.span,
            });
            return None;
        }
        if !column.numeric {
            let n = column.levels.len();
            let classes = if category {
                n
            } else {
                self.class_count(ty, n, Some(&column.levels), span)?
            };
            return Some(TargetKind::Class {
                classes,
                levels: column.levels.clone(),
                numeric: false,
            });
        }
        if !column.integer || column.levels.iter().any(|l| l.starts_with('-')) {
            self.fail(data::Error::ClassLabelsNotWhole {
                target: target(),
                span: col.span,
            });
            return None;
        }
        let max = column
            .levels
            .iter()
            .filter_map(|l| crate::data::schema::parse_number(l))
            .fold(0.0f64, f64::max) as usize;
        let classes = if category {
            max + 1
        } else {
            self.class_count(ty, max + 1, None, span)?
        };
        Some(TargetKind::Class {
            classes,
            levels: (0..classes).map(|i| i.to_string()).collect(),
            numeric: true,
        })
    }

    fn bad_target_type(&mut self, ty: &ast::TypeExpr) {
        self.fail(data::Error::TargetType {
            ty: crate::syntax::print::type_expr(ty),
            span: ty.span,
        });
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
            self.fail(data::Error::ClassCountMissing { span: ty.span });
            return None;
        };
        let [ast::DimExpr::Expr(k)] = dims.as_slice() else {
            self.fail(data::Error::ClassCountNotOne { span: ty.span });
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
                self.fail(data::Error::ClassCountNotInt {
                    found: v.describe(),
                    span: k.span,
                });
                return None;
            }
        };
        let mismatch = match levels {
            Some(_) => declared as usize != found,
            None => (declared as usize) < found,
        };
        if declared < 2 || mismatch {
            self.fail(data::Error::ClassCountMismatch {
                declared,
                found,
                levels: levels.map(<[String]>::to_vec),
                span: k.span,
                data: span,
            });
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
                self.fail(data::Error::ColumnUnsupported {
                    column: col.name.clone(),
                    ty: ty.clone(),
                    span: col.span,
                    source: source_span,
                });
                return None;
            }
            let Some(found) = c.columns.iter().find(|x| x.name == col.name) else {
                self.fail(data::Error::ColumnMissing {
                    column: col.name.clone(),
                    columns: c.columns.iter().map(|x| x.name.clone()).collect(),
                    span: col.span,
                    source: source_span,
                });
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
        self.fail(data::Error::ColumnText {
            column: column.name.clone(),
            example: column.first_text.clone(),
            declared: declared.to_string(),
            span,
        });
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
        let stratify = c.b("stratify");
        if stratify && target.is_some_and(|t| t.kind == TargetKind::Regression) {
            self.fail(data::Error::StratifyRegression {
                span: c.span_of("stratify"),
            });
            return None;
        }
        let train_rows = schemas.first().map_or(0, |s| match &**s {
            Schema::Csv(c) => c.rows,
            Schema::Idx(i) => i.images,
        });
        let split = match c.name.as_str() {
            "random" => random_split(&c, roles, train_rows, stratify),
            "holdout" => holdout_split(&c, roles, train_rows, stratify),
            _ => kfold_split(&c, roles, train_rows, stratify),
        };
        split.map_err(|e| self.fail(e)).ok()
    }
}

/// `random(train: .., val: .., test: ..)` on the data's `rows` rows, or what is wrong with it.
fn random_split(
    c: &ConfigCall,
    roles: &[SourceRole],
    rows: usize,
    stratify: bool,
) -> Result<Split, data::Error> {
    if roles != [SourceRole::All] {
        let names = roles
            .iter()
            .map(|r| match r {
                SourceRole::All => "source",
                SourceRole::Train => "train",
                SourceRole::Val => "val",
                SourceRole::Test => "test",
            })
            .collect::<Vec<_>>()
            .join("/");
        return Err(data::Error::RandomSplitNamedSources {
            span: c.span,
            names,
        });
    }
    let (train, val, test) = (c.f("train"), c.f("val"), c.f("test"));
    if (train + val + test - 1.0).abs() > 1e-6 {
        let span = c.span;
        return Err(data::Error::SplitSum {
            train,
            val,
            test,
            span,
        });
    }
    if train <= 0.0 {
        let span = c.span_of("train");
        return Err(data::Error::SplitNoTrainFraction { span });
    }
    if no_training_rows(rows, &[train, val, test], stratify) {
        let span = c.span_of("train");
        return Err(data::Error::SplitEmpty {
            rows,
            share: train,
            span,
        });
    }
    Ok(Split::Random {
        train,
        val,
        test,
        stratify,
    })
}

/// `holdout(val: ..)` on the data's `rows` rows, or what is wrong with it.
fn holdout_split(
    c: &ConfigCall,
    roles: &[SourceRole],
    rows: usize,
    stratify: bool,
) -> Result<Split, data::Error> {
    if roles.contains(&SourceRole::Val) {
        return Err(data::Error::HoldoutWithVal { span: c.span });
    }
    let val = c.f("val");
    if (0.0..1.0).contains(&val) && no_training_rows(rows, &[1.0 - val, val], stratify) {
        let span = c.span_of("val");
        return Err(data::Error::SplitEmpty {
            rows,
            share: 1.0 - val,
            span,
        });
    }
    Ok(Split::Holdout { val, stratify })
}

/// `kfold(k: ..)` on the data's `rows` rows, or what is wrong with it.
fn kfold_split(
    c: &ConfigCall,
    roles: &[SourceRole],
    rows: usize,
    stratify: bool,
) -> Result<Split, data::Error> {
    let k = c.i("k") as usize;
    if k > rows {
        let span = c.span_of("k");
        return Err(data::Error::FoldsTooMany { k, rows, span });
    }
    if roles.contains(&SourceRole::Val) {
        return Err(data::Error::KFoldWithVal { span: c.span });
    }
    Ok(Split::KFold { k, stratify })
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
