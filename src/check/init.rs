//! Parameter initializers: `glorot_uniform`, `normal(std: 0.01)`, `orthogonal`, ...

use super::Checker;
use super::error::Unknown;
use super::error::model::Error;
use super::hir::{self, Init};
use super::model::Body;
use super::value::{CallArg, Val};
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind};
use std::collections::HashMap;

pub(super) const INIT_NAMES: [&str; 17] = [
    "zeros",
    "ones",
    "constant",
    "uniform",
    "normal",
    "glorot_uniform",
    "glorot_normal",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_uniform",
    "orthogonal",
    "torch_default",
    "truncated_normal",
];

impl<'a> Checker<'a> {
    /// The initializer of a `param`.
    pub(super) fn init_expr(&mut self, b: &mut Body, e: &ast::Expr) -> Init {
        let v = match &e.kind {
            ExprKind::Name(id)
                if INIT_NAMES.contains(&id.name.as_str()) && b.lookup(&id.name).is_none() =>
            {
                self.init_call(&id.name, &[], e.span)
            }
            ExprKind::Call { callee, args } => match callee.as_name() {
                Some(id) if INIT_NAMES.contains(&id.name.as_str()) => {
                    let args = self.call_args(b, args);
                    self.init_call(&id.name, &args, e.span)
                }
                _ => self.expr(b, e),
            },
            _ => self.expr(b, e),
        };
        match v {
            Val::Init(i) => i,
            Val::Poison => Init::Zeros,
            other => {
                self.fail(Error::NotAnInitializer {
                    found: other.describe(),
                    span: e.span,
                });
                Init::Zeros
            }
        }
    }

    pub(super) fn init_call(&mut self, name: &str, args: &[CallArg], span: Span) -> Val {
        let spec: &[&str] = match name {
            "constant" => &["value"],
            "uniform" => &["lo", "hi"],
            "normal" | "truncated_normal" => &["mean", "std"],
            "orthogonal" => &["gain"],
            "zeros" | "ones" => &[],
            _ => &["fan_in", "fan_out"],
        };
        let mut got: HashMap<&str, f64> = HashMap::new();
        for (i, a) in args.iter().enumerate() {
            let key = match &a.name {
                Some((n, s)) => match spec.iter().find(|k| *k == n) {
                    Some(k) => *k,
                    None => {
                        self.fail(Unknown::new(
                            "mlx::arg::unknown",
                            format!("initializer `{name}` has no argument `{n}`"),
                            *s,
                            "unknown argument",
                            n,
                            spec.iter().copied(),
                        ));
                        return Val::Poison;
                    }
                },
                None => match spec.get(i) {
                    Some(k) => k,
                    None => {
                        self.fail(Error::InitializerArity {
                            name: name.to_string(),
                            span: a.span,
                        });
                        return Val::Poison;
                    }
                },
            };
            match a.value.as_f64() {
                Some(v) => {
                    got.insert(key, v);
                }
                None if a.value.is_poison() => return Val::Poison,
                None if matches!(a.value, Val::Float(None)) => {
                    got.insert(key, 1.0);
                }
                None => {
                    self.fail(Error::ArgumentNotNumber {
                        key: key.to_string(),
                        name: name.to_string(),
                        found: a.value.describe(),
                        span: a.span,
                    });
                    return Val::Poison;
                }
            }
        }
        let fan = hir::Fan {
            fan_in: got.get("fan_in").map(|v| *v as i64),
            fan_out: got.get("fan_out").map(|v| *v as i64),
        };
        let need = |k: &str| got.get(k).copied();
        let init = match name {
            "zeros" => Init::Zeros,
            "ones" => Init::Ones,
            "constant" => Init::Constant(need("value").unwrap_or(0.0)),
            "uniform" => Init::Uniform {
                lo: need("lo").unwrap_or(-0.05),
                hi: need("hi").unwrap_or(0.05),
            },
            "normal" | "truncated_normal" => Init::Normal {
                mean: need("mean").unwrap_or(0.0),
                std: need("std").unwrap_or(0.05),
            },
            "glorot_uniform" | "xavier_uniform" => Init::GlorotUniform { fan },
            "glorot_normal" | "xavier_normal" => Init::GlorotNormal { fan },
            "he_uniform" | "kaiming_uniform" => Init::HeUniform { fan },
            "he_normal" | "kaiming_normal" => Init::HeNormal { fan },
            "lecun_uniform" | "torch_default" => Init::LecunUniform { fan },
            _ => Init::Orthogonal {
                gain: need("gain").unwrap_or(1.0),
            },
        };
        if let Init::Uniform { lo, hi } = init
            && lo > hi
        {
            self.fail(Error::UniformEmpty { lo, hi, span });
        }
        if let Init::Normal { std, .. } = init
            && std < 0.0
        {
            self.fail(Error::NegativeStd { span });
        }
        Val::Init(init)
    }
}
