//! Types and shape patterns: matching `Float[B, ...]` against shapes, binding dimension
//! variables, and evaluating dimension expressions.

use super::dim::{Dim, show_shape};
use super::error::data::{self, PatternAt};
use super::model::{Body, DimEval, PatternError};
use super::value::Val;
use super::{Checker, ItemRef};
use crate::source::Span;
use crate::syntax::ast::{self, BinOp, ExprKind};

impl<'a> Checker<'a> {
    pub(super) fn is_tensor_type(&self, t: &ast::TypeExpr) -> bool {
        t.name.name == "Float" && t.dims.is_some()
    }

    /// A shape for a generic check: each free dim a symbol of its own name, `...` one symbol.
    pub(super) fn generic_shape(&mut self, b: &mut Body, t: &ast::TypeExpr) -> Option<Vec<Dim>> {
        let dims = t.dims.as_ref()?;
        let mut out = Vec::new();
        for d in dims {
            match d {
                ast::DimExpr::Rest(_) => out.push(Dim::sym("...")),
                ast::DimExpr::Expr(e) => match self.dim_expr(b, e, true) {
                    DimEval::Known(d) => out.push(d),
                    DimEval::Open(_, _) => {
                        if let Some(n) = e.as_name() {
                            out.push(Dim::sym(&n.name));
                        } else {
                            out.push(Dim::sym(&crate::syntax::print::expr(e)));
                        }
                    }
                    DimEval::Error => return None,
                },
            }
        }
        Some(out)
    }

    /// Bind every still-free dim variable of `t` to a symbol of its name.
    pub(super) fn bind_free_dims(&mut self, b: &mut Body, t: &ast::TypeExpr) {
        let Some(dims) = &t.dims else { return };
        for d in dims {
            if let ast::DimExpr::Expr(e) = d
                && let Some(n) = e.as_name()
                && self.is_dim_var(b, &n.name)
            {
                b.dims.insert(n.name.clone(), Dim::sym(&n.name));
            }
        }
    }

    pub(super) fn is_dim_var(&self, b: &Body, name: &str) -> bool {
        b.lookup(name).is_none()
            && !b.dims.contains_key(name)
            && !matches!(self.items.get(name), Some((ItemRef::Const(_), _)))
            && name.starts_with(|c: char| c.is_ascii_uppercase())
    }

    /// Match a tensor type against a shape, binding free dim variables when `bind` is set.
    pub(crate) fn bind_pattern(
        &mut self,
        b: &mut Body,
        t: &ast::TypeExpr,
        actual: &[Dim],
        bind: bool,
    ) -> Result<(), PatternError> {
        let Some(dims) = &t.dims else {
            return Err(PatternError::Rank {
                expected: "a tensor".into(),
                found: actual.len(),
            });
        };
        let rest_at = dims.iter().position(|d| matches!(d, ast::DimExpr::Rest(_)));
        let fixed = dims.len() - usize::from(rest_at.is_some());
        let rank_ok = match rest_at {
            Some(_) => actual.len() >= fixed,
            None => actual.len() == fixed,
        };
        if !rank_ok {
            return Err(PatternError::Rank {
                expected: match rest_at {
                    Some(_) => format!("at least {fixed}"),
                    None => fixed.to_string(),
                },
                found: actual.len(),
            });
        }
        let mut pairs: Vec<(usize, &ast::Expr, &Dim)> = Vec::new();
        match rest_at {
            None => {
                for (i, d) in dims.iter().enumerate() {
                    if let ast::DimExpr::Expr(e) = d {
                        pairs.push((i, e, &actual[i]));
                    }
                }
            }
            Some(r) => {
                let tail = dims.len() - r - 1;
                for (i, d) in dims[..r].iter().enumerate() {
                    if let ast::DimExpr::Expr(e) = d {
                        pairs.push((i, e, &actual[i]));
                    }
                }
                let rest: Vec<Dim> = actual[r..actual.len() - tail].to_vec();
                match &b.rest {
                    Some(prev) if prev.len() != rest.len() => {
                        return Err(PatternError::Rank {
                            expected: (fixed + prev.len()).to_string(),
                            found: actual.len(),
                        });
                    }
                    Some(prev) => {
                        for (k, (p, a)) in prev.clone().iter().zip(rest.iter()).enumerate() {
                            if !self.same_dim(b, p, a) {
                                return Err(PatternError::Dim {
                                    index: r + k,
                                    expected: p.clone(),
                                    found: a.clone(),
                                });
                            }
                        }
                    }
                    None if bind => b.rest = Some(rest),
                    None => {}
                }
                for (j, d) in dims[r + 1..].iter().enumerate() {
                    if let ast::DimExpr::Expr(e) = d {
                        let i = actual.len() - tail + j;
                        pairs.push((i, e, &actual[i]));
                    }
                }
            }
        }
        for (i, e, a) in pairs {
            match self.dim_expr(b, e, true) {
                DimEval::Known(d) => {
                    if !self.same_dim(b, &d, a) {
                        return Err(PatternError::Dim {
                            index: i,
                            expected: d,
                            found: a.clone(),
                        });
                    }
                }
                DimEval::Open(var, lin) => {
                    // pattern = coef*var + offset; solve for var when exact.
                    let (coef, offset) = lin;
                    let num = a.sub(&offset);
                    let solved = num.floor_div(&Dim::constant(coef));
                    match solved {
                        Some(v) if v.mul(&Dim::constant(coef)) == num => {
                            if bind {
                                b.dims.insert(var, v);
                            }
                        }
                        _ => {
                            return Err(PatternError::Dim {
                                index: i,
                                expected: Dim::sym(&crate::syntax::print::expr(e)),
                                found: a.clone(),
                            });
                        }
                    }
                }
                DimEval::Error => return Err(PatternError::Reported),
            }
        }
        Ok(())
    }

    /// Two dims are the same, or (when generic) might be.
    pub(crate) fn same_dim(&self, b: &Body, x: &Dim, y: &Dim) -> bool {
        if x == y {
            return true;
        }
        if b.generic {
            return !x.sub(y).certainly_nonzero();
        }
        false
    }

    pub(crate) fn same_shape(&self, b: &Body, x: &[Dim], y: &[Dim]) -> bool {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| self.same_dim(b, p, q))
    }

    /// A type written out with its bound dims substituted: `Float[B, 10]`.
    pub(crate) fn show_type(&mut self, b: &Body, t: &ast::TypeExpr) -> String {
        let Some(dims) = &t.dims else {
            return t.name.name.clone();
        };
        let parts: Vec<String> = dims
            .iter()
            .map(|d| match d {
                ast::DimExpr::Rest(_) => match &b.rest {
                    Some(r) => r
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => "...".into(),
                },
                ast::DimExpr::Expr(e) => {
                    let txt = crate::syntax::print::expr(e);
                    match self.dim_expr_quiet(b, e) {
                        Some(d) if d.to_string() != txt => format!("{txt} = {d}"),
                        Some(d) => d.to_string(),
                        None => txt,
                    }
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        format!("{}[{}]", t.name.name, parts.join(", "))
    }

    pub(super) fn dim_expr_quiet(&mut self, b: &Body, e: &ast::Expr) -> Option<Dim> {
        // Evaluate without reporting: only names already bound.
        match &e.kind {
            ExprKind::Int(n) => Some(Dim::constant(*n)),
            ExprKind::Name(id) => {
                if let Some(d) = b.dims.get(&id.name) {
                    return Some(d.clone());
                }
                match b.lookup(&id.name) {
                    Some((Val::Int(d), _)) => Some(d),
                    _ => match self.consts.get(&id.name) {
                        Some(super::ConstState::Done(Val::Int(d))) => Some(d.clone()),
                        _ => None,
                    },
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.dim_expr_quiet(b, lhs)?;
                let r = self.dim_expr_quiet(b, rhs)?;
                match op {
                    BinOp::Add => Some(l.add(&r)),
                    BinOp::Sub => Some(l.sub(&r)),
                    BinOp::Mul => Some(l.mul(&r)),
                    BinOp::Div => l.floor_div(&r),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    pub(crate) fn report_pattern_error(
        &mut self,
        e: PatternError,
        actual: &[Dim],
        origin: Span,
        ty: &ast::TypeExpr,
        what: &str,
        call_span: Span,
    ) {
        let at = Box::new(PatternAt {
            what: what.to_string(),
            declared: crate::syntax::print::type_expr(ty),
            shape: show_shape(actual),
            span: call_span,
            origin,
            declared_at: (call_span.file == ty.span.file && !self.is_stdlib(ty.span.file))
                .then_some(ty.span),
        });
        self.fail(match e {
            PatternError::Reported => return,
            PatternError::Rank { expected, found } => data::Error::PatternRank {
                at,
                expected,
                found,
            },
            PatternError::Dim {
                index,
                expected,
                found,
            } => data::Error::PatternDim {
                at,
                index,
                expected: expected.to_string(),
                found: found.to_string(),
            },
        });
    }

    // ---- dimension expressions ----

    /// Evaluate a dimension expression. A lone free dim variable (or `k*V + c`) is `Open` when
    /// `allow_open`, so patterns can bind it.
    pub(crate) fn dim_expr(&mut self, b: &mut Body, e: &ast::Expr, allow_open: bool) -> DimEval {
        // Substitute free variables by marker symbols, then check linearity.
        let mut free = Vec::new();
        let d = self.dim_expr_marked(b, e, &mut free);
        let Some(d) = d else { return DimEval::Error };
        free.sort();
        free.dedup();
        if free.is_empty() {
            return DimEval::Known(d);
        }
        if allow_open && free.len() == 1 {
            let var = free[0].clone();
            let marker = format!("?{var}");
            // d = coef*marker + offset with coef constant.
            let coef_part = d.subst(&|s| (s == marker).then(|| Dim::constant(1)));
            let offset = d.subst(&|s| (s == marker).then(|| Dim::constant(0)));
            let coef = coef_part.sub(&offset).as_const();
            if let Some(c) = coef
                && c != 0
                && d == Dim::constant(c).mul(&Dim::sym(&marker)).add(&offset)
            {
                return DimEval::Open(var, (c, offset));
            }
        }
        self.fail(data::Error::DimUnbound {
            name: free.join(", "),
            span: e.span,
        });
        DimEval::Error
    }

    pub(super) fn dim_expr_marked(
        &mut self,
        b: &mut Body,
        e: &ast::Expr,
        free: &mut Vec<String>,
    ) -> Option<Dim> {
        match &e.kind {
            ExprKind::Int(n) => Some(Dim::constant(*n)),
            ExprKind::Name(id) => {
                if let Some(d) = b.dims.get(&id.name) {
                    return Some(d.clone());
                }
                if let Some((v, _)) = b.lookup(&id.name) {
                    return self.dim_of_val(v, e.span, &id.name);
                }
                if let Some((ItemRef::Const(_), _)) = self.items.get(&id.name) {
                    let v = self.const_value(&id.name, id.span);
                    return self.dim_of_val(v, e.span, &id.name);
                }
                if id.name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    free.push(id.name.clone());
                    return Some(Dim::sym(&format!("?{}", id.name)));
                }
                let cands = b.local_names();
                let mut all = cands.clone();
                all.extend(self.item_names("const"));
                self.unknown_name(
                    "dimension",
                    id,
                    &all,
                    Some("dimension variables are capitalised (`B`, `F`); lowercase names must be hyperparameters or constants".into()),
                );
                None
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.dim_expr_marked(b, lhs, free)?;
                let r = self.dim_expr_marked(b, rhs, free)?;
                match op {
                    BinOp::Add => Some(l.add(&r)),
                    BinOp::Sub => Some(l.sub(&r)),
                    BinOp::Mul => Some(l.mul(&r)),
                    BinOp::Div => match l.floor_div(&r) {
                        Some(d) => Some(d),
                        None => {
                            self.fail(data::Error::DimDivByZero { span: e.span });
                            None
                        }
                    },
                    _ => {
                        self.fail(data::Error::DimOperator {
                            op: op.symbol(),
                            span: e.span,
                        });
                        None
                    }
                }
            }
            ExprKind::Neg(x) => self.dim_expr_marked(b, x, free).map(|d| d.neg()),
            _ => {
                self.fail(data::Error::DimNotInteger { span: e.span });
                None
            }
        }
    }

    pub(super) fn dim_of_val(&mut self, v: Val, span: Span, name: &str) -> Option<Dim> {
        match v {
            Val::Int(d) => Some(d),
            Val::Poison => None,
            other => {
                self.fail(data::Error::DimValueType {
                    name: name.to_string(),
                    found: other.describe(),
                    span,
                });
                None
            }
        }
    }

    /// A fully bound tensor shape from a type (parameter declarations, `zeros`).
    pub(super) fn concrete_shape(&mut self, b: &mut Body, t: &ast::TypeExpr) -> Option<Vec<Dim>> {
        if !self.is_tensor_type(t) {
            self.fail(data::Error::ParamNotTensor { span: t.span });
            return None;
        }
        let mut out = Vec::new();
        for d in t.dims.iter().flatten() {
            match d {
                ast::DimExpr::Rest(s) => match &b.rest {
                    Some(r) => out.extend(r.iter().cloned()),
                    None => {
                        self.fail(data::Error::RestUnbound { span: *s });
                        return None;
                    }
                },
                ast::DimExpr::Expr(e) => match self.dim_expr(b, e, false) {
                    DimEval::Known(x) => {
                        // A bare hyperparameter: its value was written where it was bound.
                        let origin = match &e.kind {
                            ExprKind::Name(id) => b.lookup(&id.name).map(|(_, s)| s),
                            _ => None,
                        };
                        if !self.positive_dim_at(b, &x, e.span, origin) {
                            return None;
                        }
                        out.push(x);
                    }
                    _ => return None,
                },
            }
        }
        Some(out)
    }

    /// Report a dimension that is certainly zero or negative.
    pub(crate) fn positive_dim(&mut self, b: &Body, d: &Dim, span: Span) -> bool {
        self.positive_dim_at(b, d, span, None)
    }

    /// `positive_dim`, labelled at `origin` (where the value was written) when it has one.
    pub(crate) fn positive_dim_at(
        &mut self,
        b: &Body,
        d: &Dim,
        span: Span,
        origin: Option<Span>,
    ) -> bool {
        let bad = match d.as_const() {
            Some(n) => n < 1,
            None => d.certainly_nonzero() && d.sub(&Dim::constant(0)).to_string().starts_with('-'),
        };
        if bad && (d.is_const() || !b.generic) {
            // The labels go where the value was written (`at_origin`).
            let diag = data::Error::DimNonPositive { dim: d.to_string() }.diagnostic();
            let diag = self.at_origin(
                diag,
                span,
                origin,
                format!("is {d}"),
                "used as a dimension here".into(),
            );
            self.error(diag);
            return false;
        }
        true
    }

    // ---- blocks and expressions ----
}
