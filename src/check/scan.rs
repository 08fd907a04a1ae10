//! `scan`: the recurrence primitive. Its step lambda becomes an instance graph of its own,
//! with the outer tensors it uses passed in as captures.

use super::Checker;
use super::dim::show_shape;
use super::hir::{self, NodeId, Op};
use super::model::{Body, plural};
use super::value::Val;
use crate::diagnostics::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind};

impl<'a> Checker<'a> {
    /// `scan(xs, axis: 1, init: [h0, c0], step: |x_t, h, c| { ... })`.
    pub(super) fn scan(
        &mut self,
        b: &mut Body,
        args: &[ast::Arg],
        span: Span,
        piped: Option<(Val, Span)>,
    ) -> Val {
        let mut xs: Option<(Val, Span)> = piped;
        let mut axis: Option<(Val, Span)> = None;
        let mut init: Option<(Val, Span)> = None;
        let mut step: Option<&ast::Expr> = None;
        for a in args {
            match a.name.as_ref().map(|n| n.name.as_str()) {
                Some("step") => step = Some(&a.value),
                Some("axis") => axis = Some((self.expr(b, &a.value), a.span)),
                Some("init") => init = Some((self.expr(b, &a.value), a.span)),
                Some(other) => {
                    let mut d = Diagnostic::error(
                        "mlx::arg::unknown",
                        format!("`scan` has no argument `{other}`"),
                    )
                    .with_label(a.span, "unknown argument");
                    d = d.suggest(other, ["axis", "init", "step"]);
                    self.error(d);
                    return Val::Poison;
                }
                None if xs.is_none() => xs = Some((self.expr(b, &a.value), a.span)),
                None => {
                    self.error(
                        Diagnostic::error(
                            "mlx::type::arity",
                            "`scan` takes one sequence and named `axis:`, `init:` and `step:`",
                        )
                        .with_label(a.span, "extra argument"),
                    );
                    return Val::Poison;
                }
            }
        }
        let (Some((xs, xs_span)), Some((init, init_span)), Some(step)) = (xs, init, step) else {
            self.error(
                Diagnostic::error(
                    "mlx::arg::missing",
                    "`scan` needs a sequence, `init:` and `step:`",
                )
                .with_label(span, "incomplete scan")
                .with_help("write `scan(xs, axis: 1, init: [h0], step: |x_t, h| { ... })`"),
            );
            return Val::Poison;
        };
        let Some(xs_n) = self.as_tensor(b, xs.clone(), xs_span) else {
            if !xs.is_poison() {
                self.error(
                    Diagnostic::error("mlx::type::mismatch", "`scan` runs over a tensor")
                        .with_label(xs_span, "not a tensor"),
                );
            }
            return Val::Poison;
        };
        let xs_shape = b.shape(xs_n).to_vec();
        let axis = match axis {
            None => 1,
            Some((Val::Int(d), s)) => match d
                .as_const()
                .and_then(|a| super::builtins::norm_axis(a, xs_shape.len()))
            {
                Some(a) => a,
                None => {
                    self.error(
                        Diagnostic::error(
                            "mlx::shape::axis",
                            format!(
                                "axis {d} is out of range for a tensor of rank {}",
                                xs_shape.len()
                            ),
                        )
                        .with_label(s, "bad axis"),
                    );
                    return Val::Poison;
                }
            },
            Some((v, s)) => {
                self.error(
                    Diagnostic::error(
                        "mlx::type::mismatch",
                        format!("`axis` must be an integer, found {}", v.describe()),
                    )
                    .with_label(s, "not an integer"),
                );
                return Val::Poison;
            }
        };
        let inits: Vec<(Val, Span)> = match init {
            Val::List(v) => v,
            Val::Poison => return Val::Poison,
            other => vec![(other, init_span)],
        };
        let mut init_nodes = Vec::new();
        for (v, s) in inits {
            match self.as_tensor(b, v.clone(), s) {
                Some(n) => init_nodes.push(n),
                None => {
                    if !v.is_poison() {
                        self.error(
                            Diagnostic::error(
                                "mlx::type::mismatch",
                                format!("a scan state must be a tensor, found {}", v.describe()),
                            )
                            .with_label(s, "not a tensor"),
                        );
                    }
                    return Val::Poison;
                }
            }
        }
        let ExprKind::Lambda { params, body } = &step.kind else {
            self.error(
                Diagnostic::error(
                    "mlx::type::mismatch",
                    "`step:` must be a lambda `|x_t, state...| { ... }`",
                )
                .with_label(step.span, "not a lambda"),
            );
            return Val::Poison;
        };
        if params.len() != 1 + init_nodes.len() {
            self.error(
                Diagnostic::error(
                    "mlx::type::arity",
                    format!(
                        "the step takes the sequence element and {} state{}, so it needs {} parameters, not {}",
                        init_nodes.len(),
                        plural(init_nodes.len()),
                        1 + init_nodes.len(),
                        params.len()
                    ),
                )
                .with_label(step.span, "wrong number of parameters"),
            );
            return Val::Poison;
        }
        // The step body is its own graph: inputs (x_t, states...), then every outer tensor it
        // uses, captured by name.
        let mut elem_shape = xs_shape.clone();
        elem_shape.remove(axis);
        let mut sb = Body::new(&b.model, b.generic);
        sb.dims = b.dims.clone();
        sb.rest = b.rest.clone();
        sb.layer_counts = std::mem::take(&mut b.layer_counts);
        let mut state_shapes = Vec::new();
        let xt = sb.add(Op::Input(0), elem_shape, params[0].span);
        sb.bind(&params[0].name, Val::Tensor(xt), params[0].span);
        for (i, n) in init_nodes.iter().enumerate() {
            let s = b.shape(*n).to_vec();
            state_shapes.push(s.clone());
            let id = sb.add(Op::Input(i + 1), s, params[i + 1].span);
            sb.bind(&params[i + 1].name, Val::Tensor(id), params[i + 1].span);
        }
        // Outer non-tensor bindings are visible directly; outer tensors become captures.
        let mut captures: Vec<NodeId> = Vec::new();
        for scope in &b.scopes {
            for (name, (v, s)) in scope {
                if params.iter().any(|p| &p.name == name) {
                    continue;
                }
                match v {
                    Val::Tensor(n) => {
                        let idx = 1 + init_nodes.len() + captures.len();
                        let id = sb.add(Op::Input(idx), b.shape(*n).to_vec(), *s);
                        captures.push(*n);
                        sb.scopes[0].insert(name.clone(), (Val::Tensor(id), *s));
                    }
                    other => {
                        sb.scopes[0].insert(name.clone(), (other.clone(), *s));
                    }
                }
            }
        }
        let result = self.block(&mut sb, body);
        b.layer_counts = std::mem::take(&mut sb.layer_counts);
        if !sb.params.is_empty() {
            self.error(
                Diagnostic::error(
                    "mlx::type::mismatch",
                    "a scan step cannot declare parameters",
                )
                .with_label(step.span, "declare `param`s in the enclosing model")
                .with_help("parameters declared outside the lambda are shared by every step"),
            );
            return Val::Poison;
        }
        let outs: Vec<(Val, Span)> = match result {
            Val::List(v) => v,
            Val::Poison => return Val::Poison,
            other => vec![(other, body.result.span)],
        };
        if outs.len() != init_nodes.len() {
            self.error(
                Diagnostic::error(
                    "mlx::type::arity",
                    format!(
                        "the step must return {} new state{} (a list), but returns {}",
                        init_nodes.len(),
                        plural(init_nodes.len()),
                        outs.len()
                    ),
                )
                .with_label(body.result.span, "returned here"),
            );
            return Val::Poison;
        }
        let mut results = Vec::new();
        for (i, (v, s)) in outs.into_iter().enumerate() {
            let Some(n) = self.as_tensor(&mut sb, v.clone(), s) else {
                if !v.is_poison() {
                    self.error(
                        Diagnostic::error("mlx::type::mismatch", "a scan state must be a tensor")
                            .with_label(s, "not a tensor"),
                    );
                }
                return Val::Poison;
            };
            let got = sb.shape(n).to_vec();
            if !self.same_shape(&sb, &got, &state_shapes[i]) {
                self.error(
                    Diagnostic::error(
                        "mlx::shape::mismatch",
                        format!(
                            "state {i} of the scan starts as {} but the step returns {}",
                            show_shape(&state_shapes[i]),
                            show_shape(&got)
                        ),
                    )
                    .with_label(s, format!("this has shape {}", show_shape(&got)))
                    .with_secondary(
                        init_span,
                        format!("initial state has shape {}", show_shape(&state_shapes[i])),
                    ),
                );
                return Val::Poison;
            }
            results.push(n);
        }
        let mut inputs = vec![b.shape(xs_n).to_vec()];
        inputs.extend(state_shapes.iter().cloned());
        let inst = hir::Instance {
            model: "lambda".into(),
            span: step.span,
            inputs,
            params: Vec::new(),
            nodes: sb.nodes,
            results,
            signature: String::new(),
        };
        self.program.instances.push(inst);
        let body_id = self.program.instances.len() - 1;
        let mut out_shape = state_shapes[0].clone();
        out_shape.insert(axis, xs_shape[axis].clone());
        Val::Tensor(b.add(
            Op::Scan {
                body: body_id,
                xs: xs_n,
                axis,
                init: init_nodes,
                captures,
            },
            out_shape,
            span,
        ))
    }
}
