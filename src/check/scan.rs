//! `scan`: the recurrence primitive. Its step lambda becomes an instance graph of its own,
//! with the outer tensors it uses passed in as captures.

use super::Checker;
use super::dim::Dim;
use super::error::Unknown;
use super::error::model::Error;
use super::hir::{self, NodeId, Op};
use super::model::Body;
use super::value::Val;
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind};

/// The arguments of a `scan`, evaluated (the step stays an expression).
struct ScanArgs<'e> {
    xs: (Val, Span),
    axis: Option<(Val, Span)>,
    init: (Val, Span),
    step: &'e ast::Expr,
}

/// The step's own graph, before its body is checked.
struct Step {
    body: Body,
    state_shapes: Vec<Vec<Dim>>,
    /// The outer tensors the step uses, in the order of its capture inputs.
    captures: Vec<NodeId>,
}

impl<'a> Checker<'a> {
    /// `scan(xs, axis: 1, init: [h0, c0], step: |x_t, h, c| { ... })`.
    pub(super) fn scan(
        &mut self,
        b: &mut Body,
        args: &[ast::Arg],
        span: Span,
        piped: Option<(Val, Span)>,
    ) -> Val {
        let Some(a) = self.scan_args(b, args, span, piped) else {
            return Val::Poison;
        };
        let (xs, xs_span) = a.xs;
        let Some(xs_n) = self.as_tensor(b, xs.clone(), xs_span) else {
            if !xs.is_poison() {
                self.fail(Error::ScanNotTensor { span: xs_span });
            }
            return Val::Poison;
        };
        let xs_shape = b.shape(xs_n).to_vec();
        let Some(axis) = self.scan_axis(a.axis, xs_shape.len()) else {
            return Val::Poison;
        };
        let init_span = a.init.1;
        let Some(init_nodes) = self.scan_states(b, a.init) else {
            return Val::Poison;
        };
        let step = a.step;
        let ExprKind::Lambda { params, body } = &step.kind else {
            self.fail(Error::StepNotLambda { span: step.span });
            return Val::Poison;
        };
        if params.len() != 1 + init_nodes.len() {
            self.fail(Error::StepParameters {
                states: init_nodes.len(),
                given: params.len(),
                span: step.span,
            });
            return Val::Poison;
        }
        let mut elem_shape = xs_shape.clone();
        elem_shape.remove(axis);
        let Step {
            body: mut sb,
            state_shapes,
            captures,
        } = step_graph(b, params, &init_nodes, elem_shape);
        let result = self.block(&mut sb, body);
        b.layer_counts = std::mem::take(&mut sb.layer_counts);
        if !sb.params.is_empty() {
            self.fail(Error::StepDeclaresParam { span: step.span });
            return Val::Poison;
        }
        let Some(results) = self.step_results(&mut sb, result, body, &state_shapes, init_span)
        else {
            return Val::Poison;
        };
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

    /// Evaluate a `scan`'s arguments: a sequence (or the piped value), `axis:`, `init:` and
    /// `step:`; `None` (reported) when one is unknown, extra or missing.
    fn scan_args<'e>(
        &mut self,
        b: &mut Body,
        args: &'e [ast::Arg],
        span: Span,
        piped: Option<(Val, Span)>,
    ) -> Option<ScanArgs<'e>> {
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
                    self.fail(Unknown::new(
                        "mlx::arg::unknown",
                        format!("`scan` has no argument `{other}`"),
                        a.span,
                        "unknown argument",
                        other,
                        ["axis", "init", "step"],
                    ));
                    return None;
                }
                None if xs.is_none() => xs = Some((self.expr(b, &a.value), a.span)),
                None => {
                    self.fail(Error::ScanArity { span: a.span });
                    return None;
                }
            }
        }
        let (Some(xs), Some(init), Some(step)) = (xs, init, step) else {
            self.fail(Error::ScanIncomplete { span });
            return None;
        };
        Some(ScanArgs {
            xs,
            axis,
            init,
            step,
        })
    }

    /// The axis a scan runs along (1 when not given), within the sequence's `rank`.
    fn scan_axis(&mut self, axis: Option<(Val, Span)>, rank: usize) -> Option<usize> {
        match axis {
            None => Some(1),
            Some((Val::Int(d), s)) => {
                let a = d
                    .as_const()
                    .and_then(|a| super::builtins::norm_axis(a, rank));
                if a.is_none() {
                    self.fail(Error::ScanAxis {
                        axis: d,
                        rank,
                        span: s,
                    });
                }
                a
            }
            Some((v, s)) => {
                self.fail(Error::ScanAxisNotInteger {
                    found: v.describe(),
                    span: s,
                });
                None
            }
        }
    }

    /// The initial states of a scan (one tensor, or a list of them) as nodes.
    fn scan_states(&mut self, b: &mut Body, init: (Val, Span)) -> Option<Vec<NodeId>> {
        let inits: Vec<(Val, Span)> = match init.0 {
            Val::List(v) => v,
            Val::Poison => return None,
            other => vec![(other, init.1)],
        };
        let mut init_nodes = Vec::new();
        for (v, s) in inits {
            match self.as_tensor(b, v.clone(), s) {
                Some(n) => init_nodes.push(n),
                None => {
                    if !v.is_poison() {
                        self.fail(Error::StateNotTensor {
                            found: Some(v.describe()),
                            span: s,
                        });
                    }
                    return None;
                }
            }
        }
        Some(init_nodes)
    }

    /// The new states a step returns, each a tensor of its state's shape.
    fn step_results(
        &mut self,
        sb: &mut Body,
        result: Val,
        body: &ast::Block,
        state_shapes: &[Vec<Dim>],
        init_span: Span,
    ) -> Option<Vec<NodeId>> {
        let outs: Vec<(Val, Span)> = match result {
            Val::List(v) => v,
            Val::Poison => return None,
            other => vec![(other, body.result.span)],
        };
        if outs.len() != state_shapes.len() {
            self.fail(Error::StepReturns {
                states: state_shapes.len(),
                returned: outs.len(),
                span: body.result.span,
            });
            return None;
        }
        let mut results = Vec::new();
        for (i, (v, s)) in outs.into_iter().enumerate() {
            let Some(n) = self.as_tensor(sb, v.clone(), s) else {
                if !v.is_poison() {
                    self.fail(Error::StateNotTensor {
                        found: None,
                        span: s,
                    });
                }
                return None;
            };
            let got = sb.shape(n).to_vec();
            if !self.same_shape(sb, &got, &state_shapes[i]) {
                self.fail(Error::StateShape {
                    index: i,
                    start: state_shapes[i].clone(),
                    got,
                    span: s,
                    init_span,
                });
                return None;
            }
            results.push(n);
        }
        Some(results)
    }
}

/// The step body's own graph: inputs (x_t, states...), then every outer tensor it uses,
/// captured by name; outer non-tensor bindings are visible directly.
fn step_graph(
    b: &mut Body,
    params: &[ast::Ident],
    init_nodes: &[NodeId],
    elem_shape: Vec<Dim>,
) -> Step {
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
    Step {
        body: sb,
        state_shapes,
        captures,
    }
}
