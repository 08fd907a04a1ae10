//! Dataset features: each column's type checked against the data, its preprocessing steps
//! checked in order (missing values handled, categories encoded), and its width computed.

use super::Checker;
use super::config::ConfigCall;
use super::hir::{ColumnKind, ConstValue, FeaturePlan, Step};
use super::tables::STEPS;
use super::value::Val;
use crate::data::schema::Schema;
use crate::diagnostics::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind, FeatureColumn};
use std::sync::Arc;

/// What a feature column looks like while its steps are checked.
#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Numbers,
    Text,
    Encoded,
}

impl<'a> Checker<'a> {
    pub(super) fn features(
        &mut self,
        schemas: &[Arc<Schema>],
        feats: &[ast::Feature],
        span: Span,
        target: Option<&ast::Ident>,
        source_span: Span,
    ) -> Option<Vec<FeaturePlan>> {
        let mut out: Vec<FeaturePlan> = Vec::new();
        let mut ok = true;
        let named: Vec<&str> = feats
            .iter()
            .filter_map(|f| match &f.column {
                FeatureColumn::Named(n) => Some(n.name.as_str()),
                FeatureColumn::Rest(_) => None,
            })
            .collect();
        let mut seen: Vec<(&str, Span)> = Vec::new();
        for f in feats {
            match &f.column {
                FeatureColumn::Named(n) => {
                    if let Some((_, prev)) = seen.iter().find(|(x, _)| *x == n.name) {
                        let prev = *prev;
                        self.error(
                            Diagnostic::error(
                                "mlx::name::duplicate",
                                format!("feature `{}` is declared twice", n.name),
                            )
                            .with_label(n.span, "declared again")
                            .with_secondary(prev, "first declared here"),
                        );
                        ok = false;
                        continue;
                    }
                    seen.push((&n.name, n.span));
                    if let Some(target) = target
                        && n.name == target.name
                    {
                        self.error(
                            Diagnostic::error(
                                "mlx::data::features",
                                format!(
                                    "`{}` is the target, so it cannot also be a feature",
                                    n.name
                                ),
                            )
                            .with_label(n.span, "the target as input would leak the answer")
                            .with_secondary(target.span, "target declared here"),
                        );
                        ok = false;
                        continue;
                    }
                    match self.feature(schemas, f, n, source_span) {
                        Some(p) => out.push(p),
                        None => ok = false,
                    }
                }
                FeatureColumn::Rest(rs) => {
                    let Schema::Csv(c) = &*schemas[0] else {
                        self.error(
                            Diagnostic::error(
                                "mlx::data::features",
                                "`*` selects CSV columns; an IDX dataset has only `image`",
                            )
                            .with_label(*rs, "no columns to select"),
                        );
                        ok = false;
                        continue;
                    };
                    // A target the data lacks: `*` would take its column as a feature, and
                    // its errors would bury the one that matters (reported at the target).
                    if let Some(t) = target
                        && !c.columns.iter().any(|x| x.name == t.name)
                    {
                        ok = false;
                        continue;
                    }
                    let rest: Vec<String> = c
                        .columns
                        .iter()
                        .map(|x| x.name.clone())
                        .filter(|x| {
                            !named.contains(&x.as_str()) && target.is_none_or(|t| **x != t.name)
                        })
                        .collect();
                    if rest.is_empty() {
                        self.error(
                            Diagnostic::warning(
                                "mlx::data::features",
                                "`*` selects no column: every column is named or is the target",
                            )
                            .with_label(*rs, "matches nothing"),
                        );
                    }
                    for name in rest {
                        let id = ast::Ident { name, span: *rs };
                        match self.feature(schemas, f, &id, source_span) {
                            Some(p) => out.push(p),
                            None => ok = false,
                        }
                    }
                }
            }
        }
        if ok && out.is_empty() {
            self.error(
                Diagnostic::error(
                    "mlx::data::features",
                    "the `features` block selects no column",
                )
                .with_label(span, "no inputs for the model"),
            );
            return None;
        }
        ok.then_some(out)
    }

    pub(super) fn feature(
        &mut self,
        schemas: &[Arc<Schema>],
        f: &ast::Feature,
        col: &ast::Ident,
        source_span: Span,
    ) -> Option<FeaturePlan> {
        let ty = &f.ty;
        let steps_e: Vec<&ast::Expr> = f.pipeline.as_ref().map(pipeline_steps).unwrap_or_default();
        let mut steps = Vec::new();
        let mut calls = Vec::new();
        for e in &steps_e {
            let c = self.config_call(e, STEPS, "preprocessing step", &[])?;
            let step = self.step(&c, e)?;
            calls.push((c, e.span));
            steps.push(step);
        }
        if let Schema::Idx(ix) = &*schemas[0] {
            if col.name != "image" {
                self.error(
                    Diagnostic::error(
                        "mlx::data::column_missing",
                        format!("an IDX dataset's feature is `image`, not `{}`", col.name),
                    )
                    .with_label(col.span, "no such feature"),
                );
                return None;
            }
            let shape = self.image_shape(ty, &ix.image_dims)?;
            for (c, s) in &calls {
                if matches!(
                    c.name.as_str(),
                    "impute"
                        | "drop_missing"
                        | "keep_missing"
                        | "one_hot"
                        | "ordinal"
                        | "winsorize"
                        | "robust_scale"
                ) {
                    self.error(
                        Diagnostic::error("mlx::data::step", format!("`{}` does not apply to image pixels", c.name))
                            .with_label(*s, "not for images")
                            .with_help("images take `scale`, `normalize`, `clip`, `log1p`, `standardize` or `min_max`"),
                    );
                    return None;
                }
            }
            let width = shape.iter().product();
            return Some(FeaturePlan {
                column: col.name.clone(),
                kind: ColumnKind::Tensor { shape },
                steps,
                width,
                span: f.span,
            });
        }
        let column = self.find_column(schemas, col, source_span)?;
        let declared = ty.name.name.as_str();
        let mut stage = match (declared, ty.dims.is_some()) {
            ("Float" | "Int", false) => {
                if !column.numeric {
                    self.text_column_error(&column, col.span, declared);
                    return None;
                }
                Stage::Numbers
            }
            ("Category", false) => Stage::Text,
            _ => {
                self.error(
                    Diagnostic::error(
                        "mlx::type::mismatch",
                        format!(
                            "a CSV feature is `Float` or `Category`, not `{}`",
                            crate::syntax::print::type_expr(ty)
                        ),
                    )
                    .with_label(ty.span, "not a column type"),
                );
                return None;
            }
        };
        let is_category = stage == Stage::Text;
        // A column with no value on the training source: a fitted step has nothing to fit.
        let training = match &*schemas[0] {
            Schema::Csv(c) => c
                .columns
                .iter()
                .find(|x| x.name == col.name)
                .map(|x| (c.rows, x.missing)),
            Schema::Idx(_) => None,
        };
        if let Some((rows, missing)) = training
            && rows > 0
            && missing >= rows
            && let Some(((c, s), step)) = calls.iter().zip(&steps).find(|(_, st)| {
                matches!(
                    st,
                    Step::ImputeMean
                        | Step::ImputeMedian
                        | Step::ImputeMode
                        | Step::DropMissing
                        | Step::Standardize
                        | Step::MinMax
                        | Step::RobustScale
                        | Step::Winsorize { .. }
                        | Step::OneHot
                        | Step::Ordinal
                )
            })
        {
            let what = if matches!(step, Step::DropMissing) {
                "`drop_missing` would drop every row".to_string()
            } else {
                format!("`{}` has nothing to fit", c.name)
            };
            self.error(
                Diagnostic::error(
                    "mlx::data::missing_values",
                    format!(
                        "column `{}` has no values: all {rows} rows of the training data are missing, so {what}",
                        col.name
                    ),
                )
                .with_label(*s, "fitted on no values")
                .with_secondary(col.span, "an empty column")
                .with_help("fill the column in the data, or leave it out of `features`"),
            );
            return None;
        }
        let mut handles_missing = false;
        let mut width = 1;
        for (c, s) in &calls {
            let name = c.name.as_str();
            let err = |this: &mut Self, msg: String, help: &str| {
                this.error(
                    Diagnostic::error("mlx::data::step", msg)
                        .with_label(*s, "does not fit here")
                        .with_help(help.to_string()),
                );
            };
            match (stage, name) {
                (Stage::Encoded, _) => {
                    err(
                        self,
                        format!(
                            "`{name}` comes after `one_hot`, which already made the final columns"
                        ),
                        "put `one_hot` last",
                    );
                    return None;
                }
                (_, "drop_missing") => handles_missing = true,
                (Stage::Text, "keep_missing") => {
                    err(
                        self,
                        "`keep_missing` keeps a number missing for a tree model; a Category's missing value can be a level of its own".to_string(),
                        "use `impute(constant(\"missing\"))` before `one_hot`",
                    );
                    return None;
                }
                (_, "keep_missing") => handles_missing = true,
                (Stage::Text, "impute") => {
                    let strategy = c.word("strategy").unwrap_or_default();
                    if strategy != "mode" && strategy != "constant" {
                        err(
                            self,
                            format!("a Category column cannot be imputed with its {strategy}"),
                            "use `impute(mode)` or `impute(constant(\"unknown\"))`",
                        );
                        return None;
                    }
                    handles_missing = true;
                }
                (Stage::Numbers, "impute")
                    if calls
                        .iter()
                        .position(|(x, _)| std::ptr::eq(x, c))
                        .and_then(|i| steps.get(i))
                        .is_some_and(|st| {
                            matches!(
                                st,
                                Step::ImputeConstant {
                                    value: ConstValue::Text(_)
                                }
                            )
                        }) =>
                {
                    err(
                        self,
                        format!(
                            "`{}` holds numbers, but the constant imputed into it is text",
                            col.name
                        ),
                        "impute a number (`impute(constant(0))`), or declare the column `Category`",
                    );
                    return None;
                }
                (_, "impute") => handles_missing = true,
                (Stage::Text, "one_hot") => {
                    if column.levels_truncated {
                        err(
                            self,
                            format!(
                                "`{}` has more than {} distinct values: too many for one-hot",
                                col.name,
                                crate::data::schema::MAX_LEVELS
                            ),
                            "use `ordinal`, or a coarser column",
                        );
                        return None;
                    }
                    width = column.levels.len()
                        + usize::from(imputes_new_level(&steps, &column.levels));
                    stage = Stage::Encoded;
                }
                (Stage::Text, "ordinal") => stage = Stage::Numbers,
                (Stage::Numbers, "one_hot") => {
                    if is_category {
                        err(
                            self,
                            "`one_hot` after `ordinal` has nothing left to encode".into(),
                            "use one of `ordinal` or `one_hot`",
                        );
                    } else {
                        err(
                            self,
                            format!(
                                "`one_hot` encodes categories, but `{}` is declared `{declared}`",
                                col.name
                            ),
                            &format!(
                                "declare it `{}: Category = one_hot` to treat its values as categories",
                                col.name
                            ),
                        );
                    }
                    return None;
                }
                (Stage::Numbers, "ordinal") => {
                    err(
                        self,
                        format!(
                            "`ordinal` encodes categories, but `{}` is already numeric",
                            col.name
                        ),
                        "drop `ordinal`, or declare the column `Category`",
                    );
                    return None;
                }
                (Stage::Text, _) => {
                    err(
                        self,
                        format!("`{name}` needs numbers, but `{}` is a Category", col.name),
                        "encode it first: `one_hot` or `ordinal`",
                    );
                    return None;
                }
                (Stage::Numbers, _) => {}
            }
            if let Step::Clip { lo, hi } | Step::Winsorize { lo, hi } = steps[calls
                .iter()
                .position(|(x, _)| std::ptr::eq(x, c))
                .unwrap_or(0)]
                && lo >= hi
            {
                err(
                    self,
                    format!("`{name}` needs lo < hi, but got {lo} and {hi}"),
                    "swap the bounds",
                );
                return None;
            }
        }
        if stage == Stage::Text {
            self.error(
                Diagnostic::error(
                    "mlx::data::step",
                    format!(
                        "the Category `{}` must be encoded as numbers for the model",
                        col.name
                    ),
                )
                .with_label(f.span, "still text at the end of its steps")
                .with_help("end its steps with `one_hot` or `ordinal`"),
            );
            return None;
        }
        if column.missing > 0 && !handles_missing {
            self.error(
                Diagnostic::error(
                    "mlx::data::missing_values",
                    format!("column `{}` has {} missing value{}, and nothing handles them", col.name, column.missing, super::model::plural(column.missing)),
                )
                .with_label(col.span, format!("{} missing", column.missing))
                .with_help(if is_category {
                    "start its steps with `impute(mode)`, `impute(constant(\"unknown\"))` or `drop_missing`"
                } else {
                    "start its steps with `impute(median)` (or mean, mode, constant(v)) or `drop_missing`"
                }),
            );
            return None;
        }
        let levels = if is_category {
            let mut l = column.levels.clone();
            for s in &steps {
                if let Step::ImputeConstant {
                    value: ConstValue::Text(t),
                } = s
                    && !l.contains(t)
                {
                    l.push(t.clone());
                    l.sort();
                }
            }
            l
        } else {
            Vec::new()
        };
        Some(FeaturePlan {
            column: col.name.clone(),
            kind: if is_category {
                ColumnKind::Category { levels }
            } else {
                ColumnKind::Numeric
            },
            steps,
            width,
            span: f.span,
        })
    }

    pub(super) fn step(&mut self, c: &ConfigCall, e: &ast::Expr) -> Option<Step> {
        Some(match c.name.as_str() {
            "impute" => {
                match c.word("strategy").as_deref() {
                    Some("mean") => Step::ImputeMean,
                    Some("median") => Step::ImputeMedian,
                    Some("mode") => Step::ImputeMode,
                    _ => {
                        // impute(constant(v)): read v from the source.
                        let arg = match &e.kind {
                            ExprKind::Call { args, .. } => args.first().map(|a| &a.value),
                            _ => None,
                        };
                        let inner = match arg.map(|a| &a.kind) {
                            Some(ExprKind::Call { args, .. }) if args.len() == 1 => &args[0].value,
                            _ => {
                                self.error(
                                Diagnostic::error("mlx::arg::missing", "`constant` needs the value to fill in: `impute(constant(0))`")
                                    .with_label(arg.map_or(e.span, |a| a.span), "no value given"),
                            );
                                return None;
                            }
                        };
                        let value = match self.scalar_expr(inner) {
                            Val::Str(s) => ConstValue::Text(s),
                            v => match v.as_f64() {
                                Some(x) => ConstValue::Number(x),
                                None => {
                                    if !v.is_poison() {
                                        self.error(Diagnostic::error("mlx::type::mismatch", "the constant to impute must be a number or a string").with_label(inner.span, "not a constant"));
                                    }
                                    return None;
                                }
                            },
                        };
                        Step::ImputeConstant { value }
                    }
                }
            }
            "drop_missing" => Step::DropMissing,
            "keep_missing" => Step::KeepMissing,
            "standardize" => Step::Standardize,
            "min_max" => Step::MinMax,
            "robust_scale" => Step::RobustScale,
            "normalize" => Step::Normalize {
                mean: c.f("mean"),
                std: c.f("std"),
            },
            "scale" => Step::Scale {
                factor: c.f("factor"),
            },
            "log1p" => Step::Log1p,
            "clip" => Step::Clip {
                lo: c.f("lo"),
                hi: c.f("hi"),
            },
            "winsorize" => Step::Winsorize {
                lo: c.f("lo"),
                hi: c.f("hi"),
            },
            "one_hot" => Step::OneHot,
            _ => Step::Ordinal,
        })
    }

    pub(super) fn image_shape(&mut self, ty: &ast::TypeExpr, dims: &[usize]) -> Option<Vec<usize>> {
        let found = format!(
            "[{}]",
            dims.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let Some(ds) = ty.dims.as_ref().filter(|_| ty.name.name == "Float") else {
            self.error(
                Diagnostic::error(
                    "mlx::type::mismatch",
                    format!(
                        "an image feature is a tensor type such as `Float[1, {}]`",
                        dims.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_label(ty.span, "not a tensor type"),
            );
            return None;
        };
        let mut shape = Vec::new();
        for d in ds {
            let ast::DimExpr::Expr(e) = d else {
                self.error(
                    Diagnostic::error("mlx::type::mismatch", "an image's shape is fixed: no `...`")
                        .with_label(d.span(), "write the dimensions"),
                );
                return None;
            };
            match self.scalar_expr(e) {
                Val::Int(x) if x.as_const().is_some_and(|n| n >= 1) => {
                    shape.push(x.as_const().unwrap_or(1) as usize)
                }
                Val::Poison => return None,
                _ => {
                    self.error(
                        Diagnostic::error(
                            "mlx::type::mismatch",
                            "an image dimension must be a positive integer",
                        )
                        .with_label(e.span, "not a size"),
                    );
                    return None;
                }
            }
        }
        let squeeze = |v: &[usize]| v.iter().copied().filter(|d| *d != 1).collect::<Vec<_>>();
        if squeeze(&shape) != squeeze(dims) {
            self.error(
                Diagnostic::error(
                    "mlx::data::shape",
                    format!(
                        "the images in the data are {found}, but the feature is declared `{}`",
                        crate::syntax::print::type_expr(ty)
                    ),
                )
                .with_label(ty.span, format!("does not hold a {found} image"))
                .with_help(format!(
                    "declare `Float[1, {}]`",
                    dims.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            return None;
        }
        Some(shape)
    }

    pub(super) fn feature_shape(
        &mut self,
        feats: &[FeaturePlan],
        d: &ast::Dataset,
    ) -> Option<Vec<usize>> {
        let tensors: Vec<&FeaturePlan> = feats
            .iter()
            .filter(|f| matches!(f.kind, ColumnKind::Tensor { .. }))
            .collect();
        match (tensors.len(), feats.len()) {
            (0, _) => Some(vec![feats.iter().map(|f| f.width).sum()]),
            (1, 1) => match &tensors[0].kind {
                ColumnKind::Tensor { shape } => Some(shape.clone()),
                _ => None,
            },
            _ => {
                self.error(
                    Diagnostic::error(
                        "mlx::data::features",
                        "a tensor feature (an image) must be the only feature",
                    )
                    .with_label(d.name.span, "mixes an image with other features"),
                );
                None
            }
        }
    }
}

/// `a |> b |> c` as `[a, b, c]`.
pub(crate) fn pipeline_steps(e: &ast::Expr) -> Vec<&ast::Expr> {
    match &e.kind {
        ExprKind::Pipe { lhs, rhs } => {
            let mut v = pipeline_steps(lhs);
            v.extend(pipeline_steps(rhs));
            v
        }
        _ => vec![e],
    }
}

fn imputes_new_level(steps: &[Step], levels: &[String]) -> bool {
    steps.iter().any(
        |s| matches!(s, Step::ImputeConstant { value: ConstValue::Text(t) } if !levels.contains(t)),
    )
}
