//! A train's model: the `model = ...` entry resolved to a model with every hyperparameter
//! named (sweep and `--set` overrides applied), then instantiated on the dataset's real feature
//! shape with the output shape its target and loss call for.

use super::config::ArgOverride;
use super::dim::{Dim, show_shape};
use super::error::Unknown;
use super::error::train::Error;
use super::hir::{self, Loss, TargetKind};
use super::model::Request;
use super::value::{CallArg, Val};
use super::{Checker, Frame, ItemRef};
use crate::syntax::ast;

impl<'a> Checker<'a> {
    /// The train's `model = ...` as a model value with every hyperparameter named.
    pub(super) fn model_value(
        &mut self,
        e: &ast::Expr,
        overrides: &[ArgOverride<'_>],
    ) -> Option<(&'a ast::Model, Vec<CallArg>)> {
        let v = self.scalar_expr(e);
        if let Val::Symbol(p) = &v
            && p.len() == 1
        {
            let head = match &e.kind {
                ast::ExprKind::Call { callee, .. } => callee.as_name(),
                _ => e.as_name(),
            };
            if let Some(id) = head
                && self.tree_model(e).is_some()
            {
                self.fail(Error::TreeModelNotNetwork {
                    name: id.name.clone(),
                    span: id.span,
                });
                return None;
            }
            if let Some(id) = head {
                let cands = self.item_names("model");
                let help = self.stdlib_hint(&id.name);
                self.unknown_name("model", id, &cands, help);
                return None;
            }
        }
        let Val::Model { name, hyper, .. } = v else {
            if !v.is_poison() {
                self.fail(Error::NotModel {
                    found: v.describe(),
                    span: e.span,
                });
            }
            return None;
        };
        let Some((ItemRef::Model(m), _)) = self.items.get(&name).copied() else {
            return None;
        };
        let decls: Vec<&ast::ParamDecl> = m.hyper.iter().flatten().collect();
        let mut args: Vec<CallArg> = Vec::new();
        for (i, a) in hyper.unwrap_or_default().into_iter().enumerate() {
            let named = match &a.name {
                Some(n) => n.clone(),
                None => match decls.get(i) {
                    Some(d) => (d.name.name.clone(), a.span),
                    None if !decls.is_empty() => {
                        self.fail(Error::TooManyHyper {
                            model: name,
                            count: decls.len(),
                            span: a.span,
                        });
                        return None;
                    }
                    None => {
                        args.push(a);
                        continue;
                    }
                },
            };
            args.push(CallArg {
                name: Some(named),
                ..a
            });
        }
        for o in overrides {
            if !decls.iter().any(|d| d.name.name == o.param) {
                let names: Vec<&str> = decls.iter().map(|d| d.name.name.as_str()).collect();
                let otherwise = if names.is_empty() {
                    format!("`{name}` has no hyperparameters")
                } else {
                    format!("its hyperparameters are: {}", names.join(", "))
                };
                self.fail(
                    Unknown::new(
                        "mlx::arg::unknown",
                        format!("model `{name}` has no hyperparameter `{}`", o.param),
                        o.span,
                        "unknown hyperparameter",
                        &o.param,
                        names,
                    )
                    .otherwise(otherwise),
                );
                return None;
            }
            let value = self.scalar_expr(o.value);
            args.retain(|a| a.name.as_ref().is_none_or(|(n, _)| *n != o.param));
            args.push(CallArg {
                name: Some((o.param.clone(), o.value.span)),
                value,
                span: o.value.span,
                origin: None,
            });
        }
        if m.hyper.is_none() && !args.is_empty() {
            self.fail(Error::NoHyper {
                model: name,
                span: e.span,
            });
            return None;
        }
        Some((m, args))
    }

    pub(super) fn train_model(
        &mut self,
        t: &ast::Train,
        e: &ast::Expr,
        overrides: &[ArgOverride<'_>],
        d: &hir::DatasetPlan,
        loss: &Loss,
    ) -> Option<(hir::InstanceId, String)> {
        let (m, args) = self.model_value(e, overrides)?;
        let batch = Dim::sym(hir::BATCH);
        let mut input = vec![batch.clone()];
        input.extend(d.feature_shape.iter().map(|n| Dim::constant(*n as i64)));
        let out_width = match (&d.target.kind, loss) {
            (TargetKind::Class { .. }, Loss::BinaryCrossEntropy) => 1,
            (TargetKind::Class { classes, .. }, _) => *classes,
            (TargetKind::Regression | TargetKind::Absent, _) => 1,
        };
        let expected = vec![batch, Dim::constant(out_width as i64)];
        let call_text = if args.is_empty() {
            m.name.name.clone()
        } else {
            format!("{}({})", m.name.name, super::value::args_text(&args))
        };
        // Fill in defaults for the record.
        let mut full = args.clone();
        for decl in m.hyper.iter().flatten() {
            if !full
                .iter()
                .any(|a| a.name.as_ref().is_some_and(|(n, _)| *n == decl.name.name))
                && let Some(def) = &decl.default
            {
                let v = self.scalar_expr(def);
                full.push(CallArg {
                    name: Some((decl.name.name.clone(), def.span)),
                    value: v,
                    span: def.span,
                    origin: None,
                });
            }
        }
        let full_text = if full.is_empty() {
            m.name.name.clone()
        } else {
            format!("{}({})", m.name.name, super::value::args_text(&full))
        };
        let _ = call_text;
        let req = Request {
            model: m,
            hyper: m.hyper.is_some().then_some(args),
            inputs: vec![(input.clone(), d.span)],
            expected: Some(expected.clone()),
            call_span: e.span,
            generic: false,
            context: Some(format!(
                "checked for train `{}`: input {} from `{}`, output {}",
                t.name.name,
                show_shape(&input),
                d.name,
                show_shape(&expected)
            )),
            note: Some(feature_breakdown(d)),
        };
        self.frames.push(Frame {
            call_span: e.span,
            model: m.name.name.clone(),
            context: None,
            note: None,
        });
        let r = self.instantiate(req);
        self.frames.pop();
        r.map(|(id, _)| (id, full_text))
    }
}

/// "dataset `penguins` gives 5 values per row: bill_length_mm 1, island 3 (one-hot), ..."
fn feature_breakdown(d: &hir::DatasetPlan) -> String {
    let total: usize = d.features.iter().map(|f| f.width).sum();
    let parts: Vec<String> = d
        .features
        .iter()
        .take(12)
        .map(|f| match &f.kind {
            hir::ColumnKind::Category { .. } if f.width > 1 => {
                format!("{} {} (one-hot)", f.column, f.width)
            }
            hir::ColumnKind::Tensor { shape } => format!(
                "{} [{}]",
                f.column,
                shape
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("{} 1", f.column),
        })
        .collect();
    let more = if d.features.len() > 12 { ", ..." } else { "" };
    format!(
        "dataset `{}` gives {total} value{} per row: {}{more}",
        d.name,
        super::model::plural(total),
        parts.join(", ")
    )
}
