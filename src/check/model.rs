//! Models: binding hyperparameters, unifying input and return types with shapes, and
//! checking bodies expression by expression into an instance graph.

use super::dim::Dim;
use super::error::Unknown;
use super::error::model::{Error, Placed, Reach};
use super::hir::{self, Init, Node, NodeId, Op};
use super::value::{CallArg, Val};
use super::{Checker, Frame};
use crate::diagnostics::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::{self};
use std::collections::HashMap;

/// The instance graph being built for one model application.
pub(crate) struct Body {
    pub nodes: Vec<Node>,
    pub params: Vec<hir::ParamDecl>,
    pub scopes: Vec<HashMap<String, (Val, Span)>>,
    /// Dimension variables bound so far (`B`, `In`, ...).
    pub dims: HashMap<String, Dim>,
    /// What `...` stands for in this model's signature, once bound.
    pub rest: Option<Vec<Dim>>,
    pub layer_counts: HashMap<String, usize>,
    /// Checking a model on its own, with symbolic hyperparameters: only certain errors count.
    pub generic: bool,
    pub model: String,
    /// Inside an objective or `samples`: the train's models, noise draws and target.
    pub objective: Option<Box<super::objective::Scope>>,
}

impl Body {
    pub fn new(model: &str, generic: bool) -> Body {
        Body {
            nodes: Vec::new(),
            params: Vec::new(),
            scopes: vec![HashMap::new()],
            dims: HashMap::new(),
            rest: None,
            layer_counts: HashMap::new(),
            generic,
            model: model.to_string(),
            objective: None,
        }
    }

    pub fn add(&mut self, op: Op, shape: Vec<Dim>, span: Span) -> NodeId {
        self.nodes.push(Node { op, shape, span });
        self.nodes.len() - 1
    }

    pub fn shape(&self, n: NodeId) -> &[Dim] {
        &self.nodes[n].shape
    }

    pub fn origin(&self, n: NodeId) -> Span {
        self.nodes[n].span
    }

    pub(super) fn lookup(&self, name: &str) -> Option<(Val, Span)> {
        self.scopes.iter().rev().find_map(|s| s.get(name).cloned())
    }

    pub(super) fn bind(&mut self, name: &str, v: Val, span: Span) {
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_string(), (v, span));
        }
    }

    pub(super) fn local_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
        v.extend(self.dims.keys().cloned());
        v
    }
}

/// What a caller asks of an instantiation.
pub(crate) struct Request<'x> {
    pub model: &'x ast::Model,
    /// Hyperparameter arguments; `None` means "use the defaults" (or symbols, when generic).
    pub hyper: Option<Vec<CallArg>>,
    pub inputs: Vec<(Vec<Dim>, Span)>,
    /// The output shape the caller needs (a train's target), which binds return-type dims.
    pub expected: Option<Vec<Dim>>,
    pub call_span: Span,
    pub generic: bool,
    /// Shown beside errors in user code found during this instantiation.
    pub context: Option<String>,
    pub note: Option<String>,
}

/// Why a tensor type pattern did not match a shape.
pub(crate) enum PatternError {
    Rank {
        expected: String,
        found: usize,
    },
    Dim {
        index: usize,
        expected: Dim,
        found: Dim,
    },
    Reported,
}

impl<'a> Checker<'a> {
    /// Check a model on its own: every hyperparameter and free dimension symbolic.
    pub(crate) fn check_model_generic(&mut self, m: &ast::Model) {
        // A name declared twice among the hyperparameters and inputs: the second would
        // silently win.
        let decls = m.hyper.iter().flatten().chain(&m.inputs);
        let mut seen: Vec<&ast::Ident> = Vec::new();
        for d in decls {
            if let Some(first) = seen.iter().find(|i| i.name == d.name.name) {
                self.fail(Error::DeclaredTwice {
                    name: d.name.name.clone(),
                    model: m.name.name.clone(),
                    span: d.name.span,
                    first: first.span,
                });
            } else {
                seen.push(&d.name);
            }
        }
        let req = Request {
            model: m,
            hyper: None,
            inputs: Vec::new(),
            expected: None,
            call_span: m.name.span,
            generic: true,
            context: None,
            note: None,
        };
        self.instantiate(req);
    }

    /// Apply `model` to inputs: returns the instance and its output shape.
    pub(crate) fn instantiate(&mut self, req: Request<'_>) -> Option<(hir::InstanceId, Vec<Dim>)> {
        let m = req.model;
        let key = (!req.generic).then(|| {
            format!(
                "{}|{}|{:?}|{:?}",
                m.name.name,
                req.hyper
                    .as_ref()
                    .map_or(String::new(), |h| super::value::args_text(h)),
                req.inputs.iter().map(|(s, _)| s).collect::<Vec<_>>(),
                req.expected
            )
        });
        if let Some(k) = &key
            && let Some(id) = self.memo.get(k)
        {
            let id = *id;
            let out = self.program.instances[id]
                .results
                .first()
                .map(|r| self.program.instances[id].nodes[*r].shape.clone())
                .unwrap_or_default();
            return Some((id, out));
        }
        if self.frames.len() > 64 {
            self.fail(Error::Recursion {
                model: m.name.name.clone(),
                span: req.call_span,
            });
            return None;
        }
        self.frames.push(Frame {
            call_span: req.call_span,
            model: m.name.name.clone(),
            context: req.context.clone(),
            note: req.note.clone(),
        });
        let errors_before = self.error_count;
        let result = self.instantiate_inner(&req);
        self.frames.pop();
        let (inst, out) = result?;
        let ok = self.error_count == errors_before;
        self.program.instances.push(inst);
        let id = self.program.instances.len() - 1;
        if ok && let Some(k) = key {
            self.memo.insert(k, id);
        }
        ok.then_some((id, out))
    }

    pub(super) fn instantiate_inner(
        &mut self,
        req: &Request<'_>,
    ) -> Option<(hir::Instance, Vec<Dim>)> {
        let m = req.model;
        let mut b = Body::new(&m.name.name, req.generic);
        let signature = self.bind_hyperparameters(&mut b, m, req)?;
        let input_shapes = self.bind_inputs(&mut b, req)?;
        self.bind_return_type(&mut b, req)?;

        // Body.
        let result = self.block(&mut b, &m.body);
        let Val::Tensor(out) = result else {
            if !result.is_poison() {
                self.fail(Error::ResultNotTensor {
                    model: m.name.name.clone(),
                    found: result.describe(),
                    span: m.body.result.span,
                });
            }
            return None;
        };
        let out_shape = b.shape(out).to_vec();
        self.check_output(&mut b, req, &out_shape)?;
        if !self.shapes_fit(&b) {
            return None;
        }
        let inst = hir::Instance {
            model: m.name.name.clone(),
            span: m.span,
            inputs: input_shapes,
            params: b.params,
            nodes: b.nodes,
            results: vec![out],
            signature,
        };
        Some((inst, out_shape))
    }

    /// Bind the model's inputs to the shapes the caller gives (or to symbols when checking
    /// generically); returns their shapes.
    fn bind_inputs(&mut self, b: &mut Body, req: &Request<'_>) -> Option<Vec<Vec<Dim>>> {
        let m = req.model;
        if !req.generic && req.inputs.len() != m.inputs.len() {
            self.fail(Error::InputCount {
                model: m.name.name.clone(),
                declared: m.inputs.len(),
                given: req.inputs.len(),
                span: req.call_span,
                header: m.header_span,
            });
            return None;
        }
        let mut input_shapes = Vec::new();
        for (i, decl) in m.inputs.iter().enumerate() {
            let (shape, origin) = if req.generic {
                let shape = self.generic_shape(b, &decl.ty)?;
                (shape, decl.name.span)
            } else {
                req.inputs[i].clone()
            };
            if !self.is_tensor_type(&decl.ty) {
                self.fail(Error::InputNotTensorType {
                    input: decl.name.name.clone(),
                    span: decl.ty.span,
                });
                return None;
            }
            if let Err(e) = self.bind_pattern(b, &decl.ty, &shape, true) {
                self.report_pattern_error(
                    e,
                    &shape,
                    origin,
                    &decl.ty,
                    &format!("input `{}` of `{}`", decl.name.name, m.name.name),
                    req.call_span,
                );
                return None;
            }
            let n = b.add(Op::Input(i), shape.clone(), origin);
            b.bind(&decl.name.name, Val::Tensor(n), decl.name.span);
            input_shapes.push(shape);
        }
        Some(input_shapes)
    }

    /// The return type binds dims the body may use (`dense(C)`), from what the caller
    /// expects, or as symbols when checking generically.
    fn bind_return_type(&mut self, b: &mut Body, req: &Request<'_>) -> Option<()> {
        let m = req.model;
        let Some(ret) = &m.ret else { return Some(()) };
        if let Some(exp) = &req.expected {
            if let Err(e) = self.bind_pattern(b, ret, exp, true) {
                if let PatternError::Reported = e {
                    return None;
                }
                let shown = self.show_type(b, ret);
                self.fail(Error::ReturnTypeUnmet {
                    model: m.name.name.clone(),
                    declared: crate::syntax::print::type_expr(ret),
                    needed: exp.clone(),
                    span: req.call_span,
                    ret_span: ret.span,
                    shown,
                });
                return None;
            }
        } else if req.generic {
            self.bind_free_dims(b, ret);
        }
        Some(())
    }

    /// The body's result fits the declared return type, or else what the caller expects.
    fn check_output(&mut self, b: &mut Body, req: &Request<'_>, out_shape: &[Dim]) -> Option<()> {
        let m = req.model;
        if let Some(ret) = &m.ret {
            if let Err(e) = self.bind_pattern(b, ret, out_shape, false) {
                if !matches!(e, PatternError::Reported) {
                    let declared_rank = ret.dims.as_ref().map_or(0, Vec::len);
                    let declared = self.show_type(b, ret);
                    self.fail(Error::ReturnShape {
                        model: m.name.name.clone(),
                        shape: out_shape.to_vec(),
                        declared,
                        span: m.body.result.span,
                        ret_span: ret.span,
                        flatten_hint: out_shape.len() > declared_rank && declared_rank == 2,
                    });
                }
                return None;
            }
        } else if let Some(exp) = &req.expected
            && !self.same_shape(b, out_shape, exp)
        {
            self.fail(Error::OutputShape {
                model: m.name.name.clone(),
                shape: out_shape.to_vec(),
                needed: exp.clone(),
                span: req.call_span,
                result_span: m.body.result.span,
            });
            return None;
        }
        Some(())
    }

    /// Every parameter and node of a checked body has a shape whose size is countable: no
    /// dimension overflowed 64 bits, and the bytes of one example (symbols counted as 1) fit
    /// in 64 bits. Otherwise `mlx::shape::overflow` at the first place that does not.
    fn shapes_fit(&mut self, b: &Body) -> bool {
        let shapes = b
            .params
            .iter()
            .map(|p| (&p.shape, p.span))
            .chain(b.nodes.iter().map(|n| (&n.shape, n.span)));
        for (shape, span) in shapes {
            let bytes = shape.iter().try_fold(4i64, |acc, d| match d.as_const() {
                Some(n) if !d.overflowed() => acc.checked_mul(n.max(1)),
                Some(_) => None,
                None if d.overflowed() => None,
                None => Some(acc),
            });
            if bytes.is_none() {
                self.fail(Error::ShapeOverflow {
                    shape: shape.clone(),
                    span,
                });
                return false;
            }
        }
        true
    }

    /// Bind hyperparameters from the call's arguments (or defaults / symbols). Returns a text
    /// of the bound values.
    pub(super) fn bind_hyperparameters(
        &mut self,
        b: &mut Body,
        m: &ast::Model,
        req: &Request<'_>,
    ) -> Option<String> {
        let decls: &[ast::ParamDecl] = m.hyper.as_deref().unwrap_or(&[]);
        let args = req.hyper.clone().unwrap_or_default();
        if m.hyper.is_none() && req.hyper.as_ref().is_some_and(|a| !a.is_empty()) {
            self.fail(Error::NoHyperparameters {
                model: m.name.name.clone(),
                span: req.call_span,
                header: m.header_span,
            });
            return None;
        }
        let mut bound: Vec<Option<(Val, Span, Option<Span>)>> = vec![None; decls.len()];
        let mut positional = 0;
        let mut ok = true;
        for a in &args {
            let idx = match &a.name {
                Some((n, nspan)) => match decls.iter().position(|d| &d.name.name == n) {
                    Some(i) => i,
                    None => {
                        let names: Vec<&str> = decls.iter().map(|d| d.name.name.as_str()).collect();
                        let u = Unknown::new(
                            "mlx::arg::unknown",
                            format!("model `{}` has no hyperparameter `{n}`", m.name.name),
                            *nspan,
                            "unknown hyperparameter",
                            n,
                            names.iter().copied(),
                        );
                        self.fail(
                            u.otherwise(format!("its hyperparameters are: {}", names.join(", "))),
                        );
                        ok = false;
                        continue;
                    }
                },
                None => {
                    let i = positional;
                    positional += 1;
                    if i >= decls.len() {
                        self.fail(Error::TooManyHyperparameters {
                            model: m.name.name.clone(),
                            declared: decls.len(),
                            span: a.span,
                            header: m.header_span,
                        });
                        ok = false;
                        continue;
                    }
                    i
                }
            };
            if bound[idx].is_some() {
                self.fail(Error::HyperparameterTwice {
                    name: decls[idx].name.name.clone(),
                    span: a.span,
                });
                ok = false;
                continue;
            }
            bound[idx] = Some((a.value.clone(), a.span, a.origin));
        }
        let mut text = Vec::new();
        for (i, decl) in decls.iter().enumerate() {
            let (v, span, origin) = match bound[i].take() {
                Some(x) => x,
                None if req.generic => (self.symbolic_hyper(decl), decl.name.span, None),
                None => match &decl.default {
                    Some(def) => {
                        // Defaults may name earlier hyperparameters (`stride: Int = kernel`).
                        let v = self.expr(b, def);
                        (v, def.span, None)
                    }
                    None if !ok => {
                        // A misnamed argument was already reported: it is probably this one.
                        continue;
                    }
                    None => {
                        self.fail(Error::HyperparameterMissing {
                            model: m.name.name.clone(),
                            name: decl.name.name.clone(),
                            span: req.call_span,
                            decl: decl.span,
                        });
                        ok = false;
                        continue;
                    }
                },
            };
            // Defaults are checked even when generic.
            if req.generic
                && let Some(def) = &decl.default
            {
                let dv = self.expr(b, def);
                let dv = self.coerce_scalar(dv, &decl.ty, def.span);
                self.check_range(decl, &dv, def.span, None, &m.name.name);
            }
            let v = self.coerce_scalar_decl(v, &decl.ty, span, decl.name.span.to(decl.ty.span));
            if v.is_poison() || !self.check_range(decl, &v, span, origin, &m.name.name) {
                ok = false;
            }
            text.push(format!("{}={}", decl.name.name, v.text()));
            // Bound with the place its value was written, so layers it is passed on to can
            // point there.
            b.bind(&decl.name.name, v, origin.unwrap_or(span));
        }
        ok.then(|| text.join(", "))
    }

    pub(super) fn symbolic_hyper(&mut self, decl: &ast::ParamDecl) -> Val {
        match decl.ty.name.name.as_str() {
            "Int" => Val::Int(Dim::sym(&decl.name.name)),
            "Float" => Val::Float(None),
            "Bool" => Val::Bool(None),
            "String" => Val::Str(String::new()),
            "Init" => Val::Init(Init::Zeros),
            _ => Val::Poison,
        }
    }

    /// Check a scalar against a declared scalar type; Int converts to Float.
    pub(crate) fn coerce_scalar(&mut self, v: Val, ty: &ast::TypeExpr, span: Span) -> Val {
        self.coerce_scalar_decl(v, ty, span, ty.span)
    }

    /// `coerce_scalar`, labelling `decl_span` as the declaration.
    pub(super) fn coerce_scalar_decl(
        &mut self,
        v: Val,
        ty: &ast::TypeExpr,
        span: Span,
        decl_span: Span,
    ) -> Val {
        if v.is_poison() {
            return v;
        }
        let want = ty.name.name.as_str();
        let ok = match (want, &v) {
            ("Int", Val::Int(_)) => return v,
            ("Float", Val::Float(_)) => return v,
            ("Float", Val::Int(d)) => return Val::Float(d.as_const().map(|n| n as f64)),
            ("Bool", Val::Bool(_)) => return v,
            ("String", Val::Str(_)) => return v,
            ("Init", Val::Init(_)) => return v,
            ("Int" | "Float" | "Bool" | "String" | "Init", _) => false,
            _ => {
                // The names other languages give these types.
                let alias = match ty.name.name.to_ascii_lowercase().as_str() {
                    "integer" | "int32" | "int64" | "i32" | "i64" | "usize" | "long" => Some("Int"),
                    "double" | "float32" | "float64" | "f32" | "f64" | "real" => Some("Float"),
                    "boolean" | "bool" => Some("Bool"),
                    "str" | "text" => Some("String"),
                    _ => None,
                };
                self.fail(Error::UnknownType {
                    name: ty.name.name.clone(),
                    span: ty.span,
                    alias,
                });
                return Val::Poison;
            }
        };
        if !ok {
            self.fail(Error::ScalarMismatch {
                want: want.to_string(),
                found: v.describe(),
                span,
                decl: decl_span,
                whole_number: want == "Int" && matches!(v, Val::Float(_)),
                tensor: matches!(v, Val::Tensor(_)),
            });
            return Val::Poison;
        }
        v
    }

    /// Report a value outside the hyperparameter's declared interval; true when it is inside.
    pub(super) fn check_range(
        &mut self,
        decl: &ast::ParamDecl,
        v: &Val,
        span: Span,
        origin: Option<Span>,
        model: &str,
    ) -> bool {
        let Some(r) = &decl.range else { return true };
        let Some(x) = v.as_f64() else { return true };
        let lo = self.scalar_expr(&r.lo).as_f64();
        let hi = self.scalar_expr(&r.hi).as_f64();
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return true;
        };
        let inside = (if r.lo_inclusive { x >= lo } else { x > lo })
            && (if r.hi_inclusive { x <= hi } else { x < hi });
        if !inside {
            let interval = format!(
                "{}{}, {}{}",
                if r.lo_inclusive { "[" } else { "(" },
                crate::syntax::print::expr(&r.lo),
                crate::syntax::print::expr(&r.hi),
                if r.hi_inclusive { "]" } else { ")" }
            );
            self.fail(Error::OutOfRange {
                name: decl.name.name.clone(),
                interval,
                value: v.text(),
                range_span: r.span,
                model: model.to_string(),
                place: self.placed(span, origin),
            });
            return false;
        }
        true
    }

    /// Label a diagnostic about a value at `origin` (where the value was written) when it
    /// has one apart from `span` (where it was used), with the use and the layer it reached
    /// as secondary labels; else at `span`.
    pub(super) fn at_origin(
        &self,
        d: Diagnostic,
        span: Span,
        origin: Option<Span>,
        message: String,
        used: String,
    ) -> Diagnostic {
        self.placed(span, origin).label(d, message, used)
    }

    /// Where to label a value used at `span` and written at `origin` (see `at_origin`).
    pub(super) fn placed(&self, span: Span, origin: Option<Span>) -> Placed {
        let Some(o) = origin.filter(|o| *o != span && !self.is_stdlib(o.file)) else {
            return Placed {
                at: span,
                reach: None,
            };
        };
        let reach = if self.is_stdlib(span.file) {
            self.frames
                .iter()
                .rev()
                .find(|f| !self.is_stdlib(f.call_span.file))
                .filter(|f| f.call_span != o)
                .map(|f| Reach::Layer(f.call_span, f.model.clone()))
        } else {
            Some(Reach::Use(span))
        };
        Placed { at: o, reach }
    }

    // ---- types and patterns ----
}

pub(crate) enum DimEval {
    Known(Dim),
    /// A free variable `var` with the pattern `coef*var + offset`.
    Open(String, (i64, Dim)),
    Error,
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
