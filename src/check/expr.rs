//! Expressions in model bodies: blocks, names, calls, pipelines, arithmetic, and applying
//! models and builtins.

use super::dim::Dim;
use super::error::model::Error;
use super::hir::{self, NodeId, Op};
use super::init::INIT_NAMES;
use super::model::{Body, Request};
use super::value::{CallArg, Val};
use super::{Checker, ItemRef};
use crate::source::Span;
use crate::syntax::ast::{self, BinOp, ExprKind};
use std::collections::HashMap;

impl<'a> Checker<'a> {
    pub(crate) fn block(&mut self, b: &mut Body, block: &ast::Block) -> Val {
        b.scopes.push(HashMap::new());
        for s in &block.stmts {
            match s {
                ast::Stmt::Let {
                    name, ty, value, ..
                } => {
                    let v = self.expr(b, value);
                    if let (Some(t), Val::Tensor(n)) = (ty, &v) {
                        let shape = b.shape(*n).to_vec();
                        if let Err(e) = self.bind_pattern(b, t, &shape, true) {
                            let origin = b.origin(*n);
                            self.report_pattern_error(
                                e,
                                &shape,
                                origin,
                                t,
                                &format!("`let {}`", name.name),
                                value.span,
                            );
                        }
                    }
                    self.check_shadow(b, name);
                    b.bind(&name.name, v, name.span);
                }
                ast::Stmt::Param {
                    name,
                    ty,
                    init,
                    span,
                } => {
                    self.check_shadow(b, name);
                    let Some(shape) = self.concrete_shape(b, ty) else {
                        b.bind(&name.name, Val::Poison, name.span);
                        continue;
                    };
                    let init = self.init_expr(b, init);
                    b.params.push(hir::ParamDecl {
                        name: name.name.clone(),
                        shape: shape.clone(),
                        init,
                        span: *span,
                    });
                    let n = b.add(Op::Param(b.params.len() - 1), shape, name.span);
                    b.bind(&name.name, Val::Tensor(n), name.span);
                }
            }
        }
        let v = self.expr(b, &block.result);
        b.scopes.pop();
        v
    }

    pub(super) fn check_shadow(&mut self, b: &Body, name: &ast::Ident) {
        if let Some(scope) = b.scopes.last()
            && let Some((_, prev)) = scope.get(&name.name)
        {
            self.fail(Error::BoundTwice {
                name: name.name.clone(),
                span: name.span,
                first: *prev,
            });
        }
    }

    /// Evaluate a scalar expression outside any model (constants, defaults, config values).
    pub(crate) fn scalar_expr(&mut self, e: &ast::Expr) -> Val {
        let mut b = Body::new("", false);
        let v = self.expr(&mut b, e);
        if let Val::Tensor(_) = v {
            self.fail(Error::TensorNotScalar { span: e.span });
            return Val::Poison;
        }
        v
    }

    pub(crate) fn call_args(&mut self, b: &mut Body, args: &[ast::Arg]) -> Vec<CallArg> {
        let mut out: Vec<CallArg> = Vec::new();
        for a in args {
            if let Some(n) = &a.name
                && out
                    .iter()
                    .any(|x| x.name.as_ref().is_some_and(|(m, _)| m == &n.name))
            {
                self.fail(Error::ArgumentTwice {
                    name: n.name.clone(),
                    span: n.span,
                });
                continue;
            }
            let value = self.expr(b, &a.value);
            // A bare name passing on a hyperparameter: its value was written where it was bound.
            let origin = match &a.value.kind {
                ExprKind::Name(id) => b
                    .lookup(&id.name)
                    .filter(|(v, s)| v.is_scalar() && *s != a.value.span)
                    .map(|(_, s)| s),
                _ => None,
            };
            out.push(CallArg {
                name: a.name.as_ref().map(|n| (n.name.clone(), n.span)),
                value,
                span: a.span,
                origin,
            });
        }
        out
    }

    pub(crate) fn expr(&mut self, b: &mut Body, e: &ast::Expr) -> Val {
        match &e.kind {
            ExprKind::Int(n) => Val::Int(Dim::constant(*n)),
            ExprKind::Float(f) => {
                if f.is_finite() {
                    Val::Float(Some(*f))
                } else {
                    self.fail(Error::NotFinite { span: e.span });
                    Val::Poison
                }
            }
            ExprKind::Str(s) => Val::Str(s.clone()),
            ExprKind::Bool(v) => Val::Bool(Some(*v)),
            ExprKind::Name(id) => self.name(b, id),
            ExprKind::Field(base, field) => {
                if base.as_name().is_some_and(|n| n.name == "prim") {
                    if super::builtins::is_builtin(&field.name) {
                        return Val::Builtin(field.name.clone());
                    }
                    let names = super::builtins::NAMES;
                    self.unknown_name(
                        "primitive",
                        field,
                        &names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                        None,
                    );
                    return Val::Poison;
                }
                match e.as_path() {
                    Some(p) if b.lookup(&p[0].name).is_none() => {
                        Val::Symbol(p.iter().map(|i| i.name.clone()).collect())
                    }
                    _ => {
                        self.fail(Error::NoFields { span: e.span });
                        Val::Poison
                    }
                }
            }
            ExprKind::List(xs) => Val::List(xs.iter().map(|x| (self.expr(b, x), x.span)).collect()),
            ExprKind::Call { callee, args } => self.call(b, callee, args, e.span, None),
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.expr(b, lhs);
                let r = self.expr(b, rhs);
                self.binary(b, *op, (l, lhs.span), (r, rhs.span), e.span)
            }
            ExprKind::Neg(x) => {
                let v = self.expr(b, x);
                match v {
                    Val::Int(d) => Val::Int(d.neg()),
                    Val::Float(f) => Val::Float(f.map(|v| -v)),
                    Val::Tensor(n) => {
                        let s = b.shape(n).to_vec();
                        Val::Tensor(b.add(Op::Unary(hir::Unary::Neg, n), s, e.span))
                    }
                    Val::Poison => Val::Poison,
                    other => {
                        self.fail(Error::CannotNegate {
                            found: other.describe(),
                            span: x.span,
                        });
                        Val::Poison
                    }
                }
            }
            ExprKind::Pipe { lhs, rhs } => {
                let v = self.expr(b, lhs);
                self.pipe(b, (v, lhs.span), rhs, e.span)
            }
            ExprKind::Lambda { .. } => {
                self.fail(Error::StrayLambda { span: e.span });
                Val::Poison
            }
            ExprKind::Error => Val::Poison,
        }
    }

    pub(super) fn name(&mut self, b: &mut Body, id: &ast::Ident) -> Val {
        if let Some((v, _)) = b.lookup(&id.name) {
            return v;
        }
        if let Some(d) = b.dims.get(&id.name) {
            return Val::Int(d.clone());
        }
        if let Some(s) = &b.objective {
            if s.has_slot(&id.name) {
                return Val::Slot(id.name.clone());
            }
            if super::objective::OBJECTIVE_FNS.contains(&id.name.as_str()) {
                return Val::Builtin(id.name.clone());
            }
        }
        if id.name == "..." {
            return Val::Poison;
        }
        match self.items.get(&id.name).copied() {
            Some((ItemRef::Const(_), _)) => return self.const_value(&id.name, id.span),
            Some((ItemRef::Model(_), _)) => {
                return Val::Model {
                    name: id.name.clone(),
                    hyper: None,
                    span: id.span,
                };
            }
            Some((other, _)) => {
                self.fail(Error::NotAValue {
                    name: id.name.clone(),
                    kind: other.kind(),
                    span: id.span,
                    declared: other.name_span(),
                });
                return Val::Poison;
            }
            None => {}
        }
        if super::builtins::is_builtin(&id.name) {
            return Val::Builtin(id.name.clone());
        }
        if INIT_NAMES.contains(&id.name.as_str()) {
            return self.init_call(&id.name, &[], id.span);
        }
        if b.model.is_empty() {
            // Configuration context: a bare word (`median`, `accuracy`) read by the caller.
            return Val::Symbol(vec![id.name.clone()]);
        }
        let mut cands = b.local_names();
        if let Some(s) = &b.objective {
            cands.extend(s.slots.iter().map(|x| x.name.clone()));
            cands.extend(
                super::objective::OBJECTIVE_FNS
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        cands.extend(self.item_names("model"));
        cands.extend(self.item_names("const"));
        cands.extend(super::builtins::NAMES.iter().map(|s| s.to_string()));
        let help = self.stdlib_hint(&id.name);
        self.unknown_name("name", id, &cands, help);
        Val::Poison
    }

    /// "`dense` is defined in std.nn: add `use std.nn`" when the name is a stdlib layer.
    pub(crate) fn stdlib_hint(&self, name: &str) -> Option<String> {
        crate::stdlib::defines(name)
            .map(|m| format!("`{name}` is defined in {m}: add `use {m}` at the top of the file"))
    }

    pub(super) fn pipe(
        &mut self,
        b: &mut Body,
        lhs: (Val, Span),
        rhs: &ast::Expr,
        span: Span,
    ) -> Val {
        // `x |> f(args)`: a builtin gets `x` as its first argument; a model gets its
        // hyperparameters from `args`, then is applied to `x`.
        // The application is labelled by the call on the right, not the whole pipeline.
        let _ = span;
        if let ExprKind::Call { callee, args } = &rhs.kind {
            return self.call(b, callee, args, rhs.span, Some(lhs));
        }
        let f = self.expr(b, rhs);
        self.apply(b, f, vec![lhs], rhs.span, rhs.span)
    }

    /// A call `callee(args)`, with `piped` the value of `x` in `x |> callee(args)`.
    pub(super) fn call(
        &mut self,
        b: &mut Body,
        callee: &ast::Expr,
        args: &[ast::Arg],
        span: Span,
        piped: Option<(Val, Span)>,
    ) -> Val {
        let f = self.expr(b, callee);
        match f {
            Val::Builtin(name) => {
                if name == "scan" {
                    return self.scan(b, args, span, piped);
                }
                let mut cargs = Vec::new();
                if let Some((v, s)) = piped {
                    cargs.push(CallArg {
                        name: None,
                        value: v,
                        span: s,
                        origin: None,
                    });
                }
                cargs.extend(self.call_args(b, args));
                if b.objective.is_some() && super::objective::OBJECTIVE_FNS.contains(&name.as_str())
                {
                    return self.objective_call(b, &name, cargs, span);
                }
                super::builtins::call(self, b, &name, cargs, span)
            }
            Val::Slot(name) => {
                let mut inputs: Vec<(Val, Span)> = piped.into_iter().collect();
                for a in self.call_args(b, args) {
                    if let Some((n, s)) = a.name {
                        self.fail(Error::SlotNamedArgument {
                            model: name,
                            arg: n,
                            span: s,
                        });
                        return Val::Poison;
                    }
                    inputs.push((a.value, a.span));
                }
                self.apply_slot(b, &name, inputs, span)
            }
            Val::Model {
                name,
                hyper: None,
                span: mspan,
            } => self.call_model(b, (name, mspan), callee, args, span, piped),
            Val::Model { .. } => {
                let cargs = self.call_args(b, args);
                let mut inputs: Vec<(Val, Span)> = piped.into_iter().collect();
                inputs.extend(cargs.into_iter().map(|a| (a.value, a.span)));
                self.apply(b, f, inputs, callee.span, span)
            }
            Val::Init(_) => f,
            Val::Poison => {
                // Still check the arguments for their own errors.
                let _ = self.call_args(b, args);
                Val::Poison
            }
            Val::Symbol(_) if b.model.is_empty() => f,
            other => {
                self.fail(Error::NotCallable {
                    found: other.describe(),
                    span: callee.span,
                });
                Val::Poison
            }
        }
    }

    /// A call of a model by name: `m(hyperparameters)` (applied to the piped value, if
    /// any), or `m(x)` for a model without hyperparameters.
    fn call_model(
        &mut self,
        b: &mut Body,
        (name, mspan): (String, Span),
        callee: &ast::Expr,
        args: &[ast::Arg],
        span: Span,
        piped: Option<(Val, Span)>,
    ) -> Val {
        let Some((ItemRef::Model(m), _)) = self.items.get(&name).copied() else {
            return Val::Poison;
        };
        let cargs = self.call_args(b, args);
        if m.hyper.is_some() {
            if let Some(a) = cargs.iter().find(|a| matches!(a.value, Val::Tensor(_))) {
                self.fail(Error::TensorForHyperparameter {
                    model: name,
                    span: a.span,
                });
                return Val::Poison;
            }
            let model = Val::Model {
                name,
                hyper: Some(cargs),
                span: mspan,
            };
            match piped {
                Some(x) => self.apply(b, model, vec![x], callee.span, span),
                None => model,
            }
        } else {
            let mut inputs: Vec<(Val, Span)> = Vec::new();
            if let Some(x) = piped {
                inputs.push(x);
            }
            for a in cargs {
                if let Some((n, s)) = a.name {
                    self.fail(Error::NamedArgumentNoHyperparameters {
                        model: name,
                        arg: n,
                        span: s,
                    });
                    return Val::Poison;
                }
                inputs.push((a.value, a.span));
            }
            let f = Val::Model {
                name,
                hyper: Some(Vec::new()),
                span: mspan,
            };
            self.apply(b, f, inputs, callee.span, span)
        }
    }

    /// Apply a model or builtin value to inputs.
    pub(crate) fn apply(
        &mut self,
        b: &mut Body,
        f: Val,
        inputs: Vec<(Val, Span)>,
        callee_span: Span,
        span: Span,
    ) -> Val {
        match f {
            Val::Builtin(name) => {
                let args = inputs
                    .into_iter()
                    .map(|(v, s)| CallArg {
                        name: None,
                        value: v,
                        span: s,
                        origin: None,
                    })
                    .collect();
                if b.objective.is_some() && super::objective::OBJECTIVE_FNS.contains(&name.as_str())
                {
                    return self.objective_call(b, &name, args, span);
                }
                super::builtins::call(self, b, &name, args, span)
            }
            Val::Slot(name) => self.apply_slot(b, &name, inputs, span),
            Val::Model { name, hyper, .. } => {
                let Some((ItemRef::Model(m), _)) = self.items.get(&name).copied() else {
                    return Val::Poison;
                };
                let mut shapes = Vec::new();
                for (v, s) in &inputs {
                    match self.as_tensor(b, v.clone(), *s) {
                        Some(n) => shapes.push((b.shape(n).to_vec(), b.origin(n), n)),
                        None => {
                            if !v.is_poison() {
                                self.fail(Error::ModelInputNotTensor {
                                    model: name,
                                    found: v.describe(),
                                    span: *s,
                                });
                            }
                            return Val::Poison;
                        }
                    }
                }
                let hyper_args = match hyper {
                    Some(h) if m.hyper.is_some() => Some(h),
                    _ => None,
                };
                let req = Request {
                    model: m,
                    hyper: hyper_args,
                    inputs: shapes.iter().map(|(s, o, _)| (s.clone(), *o)).collect(),
                    expected: None,
                    call_span: span,
                    generic: false,
                    context: None,
                    note: None,
                };
                // A generic caller still instantiates its callees concretely where it can;
                // symbolic dims simply flow through.
                let Some((inst, out)) = self.instantiate(req) else {
                    return Val::Poison;
                };
                let count = b.layer_counts.entry(name.clone()).or_insert(0);
                let layer = format!("{name}_{count}");
                *count += 1;
                let args = shapes.iter().map(|(_, _, n)| *n).collect();
                let _ = callee_span;
                Val::Tensor(b.add(
                    Op::Call {
                        instance: inst,
                        args,
                        layer,
                    },
                    out,
                    span,
                ))
            }
            Val::Poison => Val::Poison,
            other => {
                self.fail(Error::NotApplicable {
                    found: other.describe(),
                    span: callee_span,
                });
                Val::Poison
            }
        }
    }

    /// Scalars become rank-0 tensors; tensors stay.
    pub(crate) fn as_tensor(&mut self, b: &mut Body, v: Val, span: Span) -> Option<NodeId> {
        match v {
            Val::Tensor(n) => Some(n),
            Val::Float(f) => Some(b.add(Op::Scalar(f.unwrap_or(f64::NAN)), Vec::new(), span)),
            Val::Int(d) => Some(b.add(
                Op::Scalar(d.as_const().map_or(f64::NAN, |n| n as f64)),
                Vec::new(),
                span,
            )),
            _ => None,
        }
    }

    pub(super) fn binary(
        &mut self,
        b: &mut Body,
        op: BinOp,
        l: (Val, Span),
        r: (Val, Span),
        span: Span,
    ) -> Val {
        use Val::*;
        match (&l.0, &r.0) {
            (Poison, _) | (_, Poison) => Poison,
            (Int(x), Int(y)) => match op {
                BinOp::Add => Int(x.add(y)),
                BinOp::Sub => Int(x.sub(y)),
                BinOp::Mul => Int(x.mul(y)),
                BinOp::Div => match x.floor_div(y) {
                    Some(d) => Int(d),
                    None => {
                        self.fail(Error::DivisionByZero { span: r.1 });
                        Poison
                    }
                },
                BinOp::MatMul => self.not_tensors(op, span),
                _ => match (x.as_const(), y.as_const()) {
                    (Some(a), Some(c)) => Bool(Some(compare(op, a as f64, c as f64))),
                    _ => Bool(None),
                },
            },
            (Int(_) | Float(_), Int(_) | Float(_)) => {
                let (x, y) = (l.0.as_f64(), r.0.as_f64());
                let known = |f: fn(f64, f64) -> f64| match (x, y) {
                    (Some(a), Some(c)) => Float(Some(f(a, c))),
                    _ => Float(None),
                };
                match op {
                    BinOp::Add => known(|a, c| a + c),
                    BinOp::Sub => known(|a, c| a - c),
                    BinOp::Mul => known(|a, c| a * c),
                    BinOp::Div => {
                        if y == Some(0.0) {
                            self.fail(Error::DivisionByZero { span: r.1 });
                            return Poison;
                        }
                        known(|a, c| a / c)
                    }
                    BinOp::MatMul => self.not_tensors(op, span),
                    _ => match (x, y) {
                        (Some(a), Some(c)) => Bool(Some(compare(op, a, c))),
                        _ => Bool(None),
                    },
                }
            }
            (Tensor(_) | Int(_) | Float(_), Tensor(_) | Int(_) | Float(_)) => {
                let (Some(x), Some(y)) = (
                    self.as_tensor(b, l.0.clone(), l.1),
                    self.as_tensor(b, r.0.clone(), r.1),
                ) else {
                    return Poison;
                };
                if op == BinOp::MatMul {
                    return super::builtins::matmul(self, b, x, y, span);
                }
                let f = match op {
                    BinOp::Add => hir::Binary::Add,
                    BinOp::Sub => hir::Binary::Sub,
                    BinOp::Mul => hir::Binary::Mul,
                    BinOp::Div => hir::Binary::Div,
                    BinOp::Lt => hir::Binary::Lt,
                    BinOp::Le => hir::Binary::Le,
                    BinOp::Gt => hir::Binary::Gt,
                    BinOp::Ge => hir::Binary::Ge,
                    BinOp::Eq => hir::Binary::Eq,
                    BinOp::Ne => hir::Binary::Ne,
                    BinOp::MatMul => return Poison,
                };
                super::builtins::elementwise(self, b, f, x, y, span, op.symbol())
            }
            (a, c) => {
                self.fail(Error::CannotCombine {
                    op: op.symbol(),
                    lhs: a.describe(),
                    rhs: c.describe(),
                    span,
                    lhs_span: l.1,
                    rhs_span: r.1,
                });
                Poison
            }
        }
    }

    pub(super) fn not_tensors(&mut self, op: BinOp, span: Span) -> Val {
        self.fail(Error::ScalarsOnly {
            op: op.symbol(),
            span,
        });
        Val::Poison
    }
}

fn compare(op: BinOp, a: f64, c: f64) -> bool {
    match op {
        BinOp::Lt => a < c,
        BinOp::Le => a <= c,
        BinOp::Gt => a > c,
        BinOp::Ge => a >= c,
        BinOp::Eq => a == c,
        _ => a != c,
    }
}
