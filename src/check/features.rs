//! Dataset features: each column's type checked against the data, its preprocessing steps
//! checked in order (missing values handled, categories encoded), and its width computed.

use super::Checker;
use super::config::ConfigCall;
use super::error::data;
use super::hir::{ColumnKind, ConstValue, FeaturePlan, Step};
use super::tables::STEPS;
use super::value::Val;
use crate::data::schema::{Column, Schema};
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
            let columns = match &f.column {
                FeatureColumn::Named(n) => {
                    let clash = if let Some((_, first)) = seen.iter().find(|(x, _)| *x == n.name) {
                        Some(data::Error::FeatureTwice {
                            name: n.name.clone(),
                            span: n.span,
                            first: *first,
                        })
                    } else {
                        seen.push((&n.name, n.span));
                        target
                            .filter(|t| t.name == n.name)
                            .map(|t| data::Error::FeatureIsTarget {
                                name: n.name.clone(),
                                span: n.span,
                                target: t.span,
                            })
                    };
                    if let Some(e) = clash {
                        self.fail(e);
                        ok = false;
                        continue;
                    }
                    vec![n.clone()]
                }
                FeatureColumn::Rest(rs) => {
                    let Some(rest) = self.rest_columns(schemas, *rs, &named, target) else {
                        ok = false;
                        continue;
                    };
                    rest.into_iter()
                        .map(|name| ast::Ident { name, span: *rs })
                        .collect()
                }
            };
            for col in &columns {
                match self.feature(schemas, f, col, source_span) {
                    Some(p) => out.push(p),
                    None => ok = false,
                }
            }
        }
        if ok && out.is_empty() {
            self.fail(data::Error::FeaturesSelectNothing { span });
            return None;
        }
        ok.then_some(out)
    }

    /// The columns `*` (at `span`) selects: those neither `named` nor the target (`None` when
    /// it cannot select: an IDX dataset, reported, or a target the data lacks).
    fn rest_columns(
        &mut self,
        schemas: &[Arc<Schema>],
        span: Span,
        named: &[&str],
        target: Option<&ast::Ident>,
    ) -> Option<Vec<String>> {
        let Schema::Csv(c) = &*schemas[0] else {
            self.fail(data::Error::RestOnIdx { span });
            return None;
        };
        // A target the data lacks: `*` would take its column as a feature, and its errors
        // would bury the one that matters (reported at the target).
        if let Some(t) = target
            && !c.columns.iter().any(|x| x.name == t.name)
        {
            return None;
        }
        let rest: Vec<String> = c
            .columns
            .iter()
            .map(|x| x.name.clone())
            .filter(|x| !named.contains(&x.as_str()) && target.is_none_or(|t| **x != t.name))
            .collect();
        if rest.is_empty() {
            self.fail(data::Error::RestSelectsNothing { span });
        }
        Some(rest)
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
            return self.image_feature(&ix.image_dims, f, col, steps, &calls);
        }
        let column = self.find_column(schemas, col, source_span)?;
        let declared = ty.name.name.as_str();
        let stage = match (declared, ty.dims.is_some()) {
            ("Float" | "Int", false) => {
                if !column.numeric {
                    self.text_column_error(&column, col.span, declared);
                    return None;
                }
                Stage::Numbers
            }
            ("Category", false) => Stage::Text,
            _ => {
                self.fail(data::Error::FeatureType {
                    ty: crate::syntax::print::type_expr(ty),
                    span: ty.span,
                });
                return None;
            }
        };
        let is_category = stage == Stage::Text;
        let walked = match fitted_on_nothing(&schemas[0], col, &calls, &steps) {
            Some(e) => Err(e),
            None => walk_steps(&calls, &steps, &column, &col.name, declared, stage),
        };
        let (stage, handles_missing, width) = match walked {
            Ok(w) => w,
            Err(e) => {
                self.fail(e);
                return None;
            }
        };
        if stage == Stage::Text {
            self.fail(data::Error::CategoryNotEncoded {
                column: col.name.clone(),
                span: f.span,
            });
            return None;
        }
        if column.missing > 0 && !handles_missing {
            self.fail(data::Error::MissingUnhandled {
                column: col.name.clone(),
                missing: column.missing,
                category: is_category,
                span: col.span,
            });
            return None;
        }
        let kind = if is_category {
            let mut levels = column.levels.clone();
            for s in &steps {
                if let Step::ImputeConstant {
                    value: ConstValue::Text(t),
                } = s
                    && !levels.contains(t)
                {
                    levels.push(t.clone());
                    levels.sort();
                }
            }
            ColumnKind::Category { levels }
        } else {
            ColumnKind::Numeric
        };
        Some(FeaturePlan {
            column: col.name.clone(),
            kind,
            steps,
            width,
            span: f.span,
        })
    }

    /// The feature of an IDX dataset (images of `dims`): `image`, a tensor, with steps that
    /// apply to pixels.
    fn image_feature(
        &mut self,
        dims: &[usize],
        f: &ast::Feature,
        col: &ast::Ident,
        steps: Vec<Step>,
        calls: &[(ConfigCall, Span)],
    ) -> Option<FeaturePlan> {
        if col.name != "image" {
            self.fail(data::Error::IdxFeatureName {
                name: col.name.clone(),
                span: col.span,
            });
            return None;
        }
        let shape = self.image_shape(&f.ty, dims)?;
        let not_for_pixels = [
            "impute",
            "drop_missing",
            "keep_missing",
            "one_hot",
            "ordinal",
            "winsorize",
            "robust_scale",
        ];
        if let Some((c, s)) = calls
            .iter()
            .find(|(c, _)| not_for_pixels.contains(&c.name.as_str()))
        {
            self.fail(data::Error::StepOnImage {
                step: c.name.clone(),
                span: *s,
            });
            return None;
        }
        let width = shape.iter().product();
        Some(FeaturePlan {
            column: col.name.clone(),
            kind: ColumnKind::Tensor { shape },
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
                                self.fail(data::Error::ImputeConstantMissing {
                                    span: arg.map_or(e.span, |a| a.span),
                                });
                                return None;
                            }
                        };
                        let value = match self.scalar_expr(inner) {
                            Val::Str(s) => ConstValue::Text(s),
                            v => match v.as_f64() {
                                Some(x) => ConstValue::Number(x),
                                None => {
                                    if !v.is_poison() {
                                        self.fail(data::Error::ImputeConstantType {
                                            span: inner.span,
                                        });
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
        let Some(ds) = ty.dims.as_ref().filter(|_| ty.name.name == "Float") else {
            self.fail(data::Error::ImageNotTensor {
                dims: dims.to_vec(),
                span: ty.span,
            });
            return None;
        };
        let mut shape = Vec::new();
        for d in ds {
            let ast::DimExpr::Expr(e) = d else {
                self.fail(data::Error::ImageShapeRest { span: d.span() });
                return None;
            };
            match self.scalar_expr(e) {
                Val::Int(x) if x.as_const().is_some_and(|n| n >= 1) => {
                    shape.push(x.as_const().unwrap_or(1) as usize)
                }
                Val::Poison => return None,
                _ => {
                    self.fail(data::Error::ImageDimNotSize { span: e.span });
                    return None;
                }
            }
        }
        let squeeze = |v: &[usize]| v.iter().copied().filter(|d| *d != 1).collect::<Vec<_>>();
        if squeeze(&shape) != squeeze(dims) {
            self.fail(data::Error::ImageShape {
                dims: dims.to_vec(),
                ty: crate::syntax::print::type_expr(ty),
                span: ty.span,
            });
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
                self.fail(data::Error::TensorFeatureNotAlone { span: d.name.span });
                None
            }
        }
    }
}

/// The first fitted step of `col` when the training source (`schema`) has no value in it.
fn fitted_on_nothing(
    schema: &Schema,
    col: &ast::Ident,
    calls: &[(ConfigCall, Span)],
    steps: &[Step],
) -> Option<data::Error> {
    let Schema::Csv(c) = schema else { return None };
    let missing = c.columns.iter().find(|x| x.name == col.name)?.missing;
    if c.rows == 0 || missing < c.rows {
        return None;
    }
    let ((call, span), _) = calls.iter().zip(steps).find(|(_, st)| {
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
    })?;
    Some(data::Error::ColumnAllMissing {
        column: col.name.clone(),
        rows: c.rows,
        step: call.name.clone(),
        span: *span,
        column_span: col.span,
    })
}

/// A CSV feature's steps walked in order from `stage` (what its declared type makes it): the
/// stage they end in, whether they handle missing values, and the feature's width; or the
/// first step that does not fit.
fn walk_steps(
    calls: &[(ConfigCall, Span)],
    steps: &[Step],
    column: &Column,
    col: &str,
    declared: &str,
    mut stage: Stage,
) -> Result<(Stage, bool, usize), data::Error> {
    let is_category = stage == Stage::Text;
    let mut handles_missing = false;
    let mut width = 1;
    for (i, (c, span)) in calls.iter().enumerate() {
        let (name, span) = (c.name.as_str(), *span);
        let (step, column_name) = (|| name.to_string(), || col.to_string());
        match (stage, name) {
            (Stage::Encoded, _) => return Err(data::Error::StepAfterOneHot { step: step(), span }),
            (_, "drop_missing") => handles_missing = true,
            (Stage::Text, "keep_missing") => return Err(data::Error::KeepMissingCategory { span }),
            (_, "keep_missing") => handles_missing = true,
            (Stage::Text, "impute") => {
                let strategy = c.word("strategy").unwrap_or_default();
                if strategy != "mode" && strategy != "constant" {
                    return Err(data::Error::ImputeCategory { strategy, span });
                }
                handles_missing = true;
            }
            (Stage::Numbers, "impute")
                if matches!(
                    steps.get(i),
                    Some(Step::ImputeConstant {
                        value: ConstValue::Text(_)
                    })
                ) =>
            {
                let column = column_name();
                return Err(data::Error::ImputeTextIntoNumbers { column, span });
            }
            (_, "impute") => handles_missing = true,
            (Stage::Text, "one_hot") => {
                if column.levels_truncated {
                    let column = column_name();
                    return Err(data::Error::OneHotTooMany { column, span });
                }
                width = column.levels.len() + usize::from(imputes_new_level(steps, &column.levels));
                stage = Stage::Encoded;
            }
            (Stage::Text, "ordinal") => stage = Stage::Numbers,
            (Stage::Numbers, "one_hot") if is_category => {
                return Err(data::Error::OneHotAfterOrdinal { span });
            }
            (Stage::Numbers, "one_hot") => {
                return Err(data::Error::OneHotOnNumbers {
                    column: column_name(),
                    declared: declared.to_string(),
                    span,
                });
            }
            (Stage::Numbers, "ordinal") => {
                let column = column_name();
                return Err(data::Error::OrdinalOnNumbers { column, span });
            }
            (Stage::Text, _) => {
                return Err(data::Error::StepNeedsNumbers {
                    step: step(),
                    column: column_name(),
                    span,
                });
            }
            (Stage::Numbers, _) => {}
        }
        if let Some(Step::Clip { lo, hi } | Step::Winsorize { lo, hi }) = steps.get(i)
            && lo >= hi
        {
            return Err(data::Error::StepBounds {
                step: step(),
                lo: *lo,
                hi: *hi,
                span,
            });
        }
    }
    Ok((stage, handles_missing, width))
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
