//! Builds the AST from pest's parse tree. pest types never leave `syntax/`.

use super::ast::*;
use crate::source::{FileId, Span};
use pest::iterators::Pair;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "../grammar/mlx.pest"]
pub(super) struct MlxParser;

pub(super) struct Builder {
    pub file: FileId,
    /// Byte offset of the parsed text within the file (non-zero when recovering item by item).
    pub base: usize,
}

type P<'i> = Pair<'i, Rule>;

impl Builder {
    /// The pair's span without trailing whitespace (a rule that ends at the next entry's
    /// newline and indentation would otherwise label two lines).
    fn span(&self, p: &P<'_>) -> Span {
        let s = p.as_span();
        let text = p.as_str();
        let trimmed = text.trim_end();
        let end = if trimmed.is_empty() {
            s.end()
        } else {
            s.start() + trimmed.len()
        };
        Span::new(self.file, self.base + s.start(), self.base + end)
    }

    fn ident(&self, p: P<'_>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    pub fn items(&self, file: P<'_>) -> Vec<Item> {
        file.into_inner()
            .filter(|p| p.as_rule() != Rule::EOI)
            .map(|p| self.item(p))
            .collect()
    }

    fn item(&self, p: P<'_>) -> Item {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::use_item => self.use_item(p, span),
            Rule::const_item => {
                let mut it = p.into_inner().skip(1);
                let name = self.ident(next(&mut it));
                let mut ty = None;
                let mut value = None;
                for q in it {
                    match q.as_rule() {
                        Rule::type_expr => ty = Some(self.type_expr(q)),
                        _ => value = Some(self.expr(q)),
                    }
                }
                Item::Const(Const {
                    name,
                    ty,
                    value: value.unwrap_or_else(|| error_expr(span)),
                    span,
                })
            }
            Rule::dataset_item => self.dataset(p, span),
            Rule::model_item => self.model(p, span),
            Rule::train_item => {
                let mut it = p.into_inner().skip(1);
                let name = self.ident(next(&mut it));
                let mut entries = Vec::new();
                let mut models = Vec::new();
                let mut objectives = Vec::new();
                for q in it {
                    let qs = self.span(&q);
                    match q.as_rule() {
                        Rule::models_block => models.push(ModelsBlock {
                            entries: q.into_inner().skip(1).map(|e| self.entry(e)).collect(),
                            span: qs,
                        }),
                        Rule::objective_block => objectives.push(self.objective(q, qs)),
                        _ => entries.push(self.entry(q)),
                    }
                }
                Item::Train(Train {
                    name,
                    entries,
                    models,
                    objectives,
                    span,
                })
            }
            Rule::sweep_item => self.sweep(p, span),
            r => unreachable_rule(r),
        }
    }

    fn use_item(&self, p: P<'_>, span: Span) -> Item {
        let target = p.into_inner().nth(1);
        let (target, target_span) = match target {
            Some(t) if t.as_rule() == Rule::string => {
                let s = self.span(&t);
                (UseTarget::File(unescape(t.into_inner().as_str())), s)
            }
            Some(t) => {
                let s = self.span(&t);
                (
                    UseTarget::Module(t.into_inner().map(|i| self.ident(i)).collect()),
                    s,
                )
            }
            None => (UseTarget::Module(Vec::new()), span),
        };
        Item::Use(Use {
            target,
            target_span,
            span,
        })
    }

    fn dataset(&self, p: P<'_>, span: Span) -> Item {
        let mut it = p.into_inner().skip(1);
        let name = self.ident(next(&mut it));
        let body = next(&mut it);
        let mut entries = Vec::new();
        for e in body.into_inner() {
            let es = self.span(&e);
            match e.as_rule() {
                Rule::source_entry => {
                    let mut parts = e.into_inner().skip(1).peekable();
                    let name = match parts.peek() {
                        Some(q) if q.as_rule() == Rule::ident => Some(self.ident(next(&mut parts))),
                        _ => None,
                    };
                    let value = parts
                        .next()
                        .map_or_else(|| error_expr(es), |q| self.expr(q));
                    entries.push(DatasetEntry::Source {
                        name,
                        value,
                        span: es,
                    });
                }
                Rule::features_block => {
                    let features = e.into_inner().skip(1).map(|f| self.feature(f)).collect();
                    entries.push(DatasetEntry::Features { features, span: es });
                }
                Rule::target_entry => {
                    let mut parts = e.into_inner().skip(1);
                    let column = self.ident(next(&mut parts));
                    let ty = self.type_expr(next(&mut parts));
                    let pipeline = parts.next().map(|q| self.expr(q));
                    entries.push(DatasetEntry::Target {
                        column,
                        ty,
                        pipeline,
                        span: es,
                    });
                }
                Rule::entry => entries.push(DatasetEntry::Setting(self.entry(e))),
                r => unreachable_rule(r),
            }
        }
        Item::Dataset(Dataset {
            name,
            entries,
            span,
        })
    }

    fn feature(&self, p: P<'_>) -> Feature {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let col = next(&mut it);
        let column = if col.as_rule() == Rule::rest_column {
            FeatureColumn::Rest(self.span(&col))
        } else {
            FeatureColumn::Named(self.ident(col))
        };
        let ty = self.type_expr(next(&mut it));
        let pipeline = it.next().map(|q| self.expr(q));
        Feature {
            column,
            ty,
            pipeline,
            span,
        }
    }

    fn model(&self, p: P<'_>, span: Span) -> Item {
        let mut it = p.into_inner();
        let kw = next(&mut it);
        let name = self.ident(next(&mut it));
        let mut lists = Vec::new();
        let mut ret = None;
        let mut body = None;
        let mut header_end = self.span(&kw);
        for q in it {
            match q.as_rule() {
                Rule::param_list => {
                    header_end = self.span(&q);
                    lists.push(
                        q.into_inner()
                            .map(|d| self.param_decl(d))
                            .collect::<Vec<_>>(),
                    );
                }
                Rule::return_type => {
                    header_end = self.span(&q);
                    ret = q.into_inner().next().map(|t| self.type_expr(t));
                }
                Rule::block => body = Some(self.block(q)),
                r => unreachable_rule(r),
            }
        }
        let (hyper, inputs) = if lists.len() >= 2 {
            let inputs = lists.pop().unwrap_or_default();
            (lists.pop(), inputs)
        } else {
            (None, lists.pop().unwrap_or_default())
        };
        let body = body.unwrap_or_else(|| Block {
            stmts: Vec::new(),
            result: Box::new(error_expr(span)),
            span,
        });
        Item::Model(Model {
            // From `model` to the end of the signature, not the body.
            header_span: Span {
                end: header_end.end,
                ..span
            },
            name,
            hyper,
            inputs,
            ret,
            body,
            span,
        })
    }

    fn param_decl(&self, p: P<'_>) -> ParamDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(next(&mut it));
        let ty = self.type_expr(next(&mut it));
        let mut range = None;
        let mut default = None;
        for q in it {
            match q.as_rule() {
                Rule::range => range = Some(self.range(q)),
                _ => default = Some(self.expr(q)),
            }
        }
        ParamDecl {
            name,
            ty,
            range,
            default,
            span,
        }
    }

    fn range(&self, p: P<'_>) -> Range {
        let span = self.span(&p);
        let mut it = p.into_inner().skip(1);
        let open = next(&mut it).as_str() == "[";
        let lo = self.expr(next(&mut it));
        let hi = self.expr(next(&mut it));
        let close = next(&mut it).as_str() == "]";
        Range {
            lo,
            hi,
            lo_inclusive: open,
            hi_inclusive: close,
            span,
        }
    }

    fn let_stmt(&self, q: P<'_>) -> Stmt {
        let qs = self.span(&q);
        let mut it = q.into_inner().skip(1);
        let name = self.ident(next(&mut it));
        let mut ty = None;
        let mut value = None;
        for r in it {
            match r.as_rule() {
                Rule::type_expr => ty = Some(self.type_expr(r)),
                _ => value = Some(self.expr(r)),
            }
        }
        Stmt::Let {
            name,
            ty,
            value: value.unwrap_or_else(|| error_expr(qs)),
            span: qs,
        }
    }

    fn block(&self, p: P<'_>) -> Block {
        let span = self.span(&p);
        let mut stmts = Vec::new();
        let mut result = None;
        for q in p.into_inner() {
            let qs = self.span(&q);
            match q.as_rule() {
                Rule::let_stmt => stmts.push(self.let_stmt(q)),
                Rule::param_stmt => {
                    let mut it = q.into_inner().skip(1);
                    let name = self.ident(next(&mut it));
                    let ty = self.type_expr(next(&mut it));
                    let init = it.next().map_or_else(|| error_expr(qs), |r| self.expr(r));
                    stmts.push(Stmt::Param {
                        name,
                        ty,
                        init,
                        span: qs,
                    });
                }
                _ => result = Some(self.expr(q)),
            }
        }
        Block {
            stmts,
            result: Box::new(result.unwrap_or_else(|| error_expr(span))),
            span,
        }
    }

    fn objective(&self, p: P<'_>, span: Span) -> Objective {
        let mut it = p.into_inner().skip(1);
        let name = self.ident(next(&mut it));
        let items = it
            .map(|q| match q.as_rule() {
                Rule::let_stmt => ObjectiveItem::Let(self.let_stmt(q)),
                _ => ObjectiveItem::Entry(self.entry(q)),
            })
            .collect();
        Objective { name, items, span }
    }

    fn entry(&self, p: P<'_>) -> Entry {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let key = self.ident(next(&mut it));
        let value = it.next().map_or_else(|| error_expr(span), |q| self.expr(q));
        Entry { key, value, span }
    }

    fn sweep(&self, p: P<'_>, span: Span) -> Item {
        let mut it = p.into_inner().skip(1);
        let name = self.ident(next(&mut it));
        let mut entries = Vec::new();
        for e in it {
            let es = self.span(&e);
            match e.as_rule() {
                Rule::entry => entries.push(SweepEntry::Setting(self.entry(e))),
                Rule::grid_block => {
                    let assignments = e.into_inner().skip(1).map(|a| self.assignment(a)).collect();
                    entries.push(SweepEntry::Grid {
                        assignments,
                        span: es,
                    });
                }
                Rule::random_block => {
                    let mut parts = e.into_inner().skip(1);
                    let args = self.args(next(&mut parts));
                    let assignments = parts.map(|a| self.assignment(a)).collect();
                    entries.push(SweepEntry::Random {
                        args,
                        assignments,
                        span: es,
                    });
                }
                r => unreachable_rule(r),
            }
        }
        Item::Sweep(Sweep {
            name,
            entries,
            span,
        })
    }

    fn assignment(&self, p: P<'_>) -> Assignment {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let path = next(&mut it).into_inner().map(|i| self.ident(i)).collect();
        let value = it.next().map_or_else(|| error_expr(span), |q| self.expr(q));
        Assignment { path, value, span }
    }

    fn type_expr(&self, p: P<'_>) -> TypeExpr {
        let span = self.span(&p);
        let text = p.as_str();
        let mut it = p.into_inner();
        let name = self.ident(next(&mut it));
        let dims: Vec<DimExpr> = it
            .map(|d| {
                let inner = d.into_inner().next();
                match inner {
                    Some(q) if q.as_rule() == Rule::rest_dims => DimExpr::Rest(self.span(&q)),
                    Some(q) => DimExpr::Expr(self.expr(q)),
                    None => DimExpr::Expr(error_expr(span)),
                }
            })
            .collect();
        let has_brackets = text.contains('[');
        TypeExpr {
            name,
            dims: has_brackets.then_some(dims),
            span,
        }
    }

    // ---- expressions ----

    pub fn expr(&self, p: P<'_>) -> Expr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::expr => {
                let mut it = p.into_inner();
                let mut lhs = self.expr(next(&mut it));
                while let Some(_op) = it.next() {
                    let rhs = self.expr(next(&mut it));
                    let s = lhs.span.to(rhs.span);
                    lhs = Expr {
                        kind: ExprKind::Pipe {
                            lhs: Box::new(lhs),
                            rhs: Box::new(rhs),
                        },
                        span: s,
                    };
                }
                lhs
            }
            Rule::compare | Rule::sum | Rule::product => {
                let mut it = p.into_inner();
                let mut lhs = self.expr(next(&mut it));
                while let Some(op) = it.next() {
                    let op = match op.as_str() {
                        "+" => BinOp::Add,
                        "-" => BinOp::Sub,
                        "*" => BinOp::Mul,
                        "/" => BinOp::Div,
                        "@" => BinOp::MatMul,
                        "<" => BinOp::Lt,
                        "<=" => BinOp::Le,
                        ">" => BinOp::Gt,
                        ">=" => BinOp::Ge,
                        "==" => BinOp::Eq,
                        _ => BinOp::Ne,
                    };
                    let rhs = self.expr(next(&mut it));
                    let s = lhs.span.to(rhs.span);
                    lhs = Expr {
                        kind: ExprKind::Binary {
                            op,
                            lhs: Box::new(lhs),
                            rhs: Box::new(rhs),
                        },
                        span: s,
                    };
                }
                lhs
            }
            Rule::unary => {
                let parts: Vec<P<'_>> = p.into_inner().collect();
                let negs = parts.iter().filter(|q| q.as_rule() == Rule::neg_op).count();
                let mut e = parts
                    .into_iter()
                    .find(|q| q.as_rule() != Rule::neg_op)
                    .map_or_else(|| error_expr(span), |q| self.expr(q));
                for _ in 0..negs {
                    e = Expr {
                        kind: ExprKind::Neg(Box::new(e)),
                        span,
                    };
                }
                e
            }
            Rule::postfix => {
                let mut it = p.into_inner();
                let mut e = self.expr(next(&mut it));
                for q in it {
                    let qs = self.span(&q);
                    match q.as_rule() {
                        Rule::args => {
                            let args = self.args(q);
                            e = Expr {
                                span: e.span.to(qs),
                                kind: ExprKind::Call {
                                    callee: Box::new(e),
                                    args,
                                },
                            };
                        }
                        _ => {
                            let id = self.ident(next(&mut q.into_inner()));
                            e = Expr {
                                span: e.span.to(qs),
                                kind: ExprKind::Field(Box::new(e), id),
                            };
                        }
                    }
                }
                e
            }
            Rule::paren => p
                .into_inner()
                .next()
                .map_or_else(|| error_expr(span), |q| self.expr(q)),
            Rule::list => Expr {
                kind: ExprKind::List(p.into_inner().map(|q| self.expr(q)).collect()),
                span,
            },
            Rule::lambda => {
                let mut params = Vec::new();
                let mut body = None;
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::ident => params.push(self.ident(q)),
                        _ => body = Some(self.block(q)),
                    }
                }
                let body = body.unwrap_or_else(|| Block {
                    stmts: Vec::new(),
                    result: Box::new(error_expr(span)),
                    span,
                });
                Expr {
                    kind: ExprKind::Lambda { params, body },
                    span,
                }
            }
            Rule::int => {
                let digits: String = p.as_str().chars().filter(|c| *c != '_').collect();
                match digits.parse::<i64>() {
                    Ok(v) => Expr {
                        kind: ExprKind::Int(v),
                        span,
                    },
                    // Too large for an integer: keep it as a float so the checker can say so.
                    Err(_) => Expr {
                        kind: ExprKind::Float(digits.parse::<f64>().unwrap_or(f64::INFINITY)),
                        span,
                    },
                }
            }
            Rule::float => {
                let digits: String = p.as_str().chars().filter(|c| *c != '_').collect();
                Expr {
                    kind: ExprKind::Float(digits.parse::<f64>().unwrap_or(f64::NAN)),
                    span,
                }
            }
            Rule::string => Expr {
                kind: ExprKind::Str(unescape(p.into_inner().as_str())),
                span,
            },
            Rule::boolean => Expr {
                kind: ExprKind::Bool(p.as_str() == "true"),
                span,
            },
            Rule::ident => Expr {
                kind: ExprKind::Name(self.ident(p)),
                span,
            },
            _ => error_expr(span),
        }
    }

    fn args(&self, p: P<'_>) -> Vec<Arg> {
        p.into_inner()
            .map(|a| {
                let span = self.span(&a);
                let parts: Vec<P<'_>> = a.into_inner().collect();
                let (name, value) = match parts.len() {
                    2 => {
                        let mut it = parts.into_iter();
                        let n = self.ident(next(&mut it));
                        (Some(n), self.expr(next(&mut it)))
                    }
                    _ => (
                        None,
                        parts
                            .into_iter()
                            .next()
                            .map_or_else(|| error_expr(span), |q| self.expr(q)),
                    ),
                };
                Arg { name, value, span }
            })
            .collect()
    }
}

/// The next child of a pair. The grammar guarantees the children the builder asks for, so a
/// missing one means the grammar and the builder disagree: that is a bug in mlx, and the
/// builder degrades to an error node rather than aborting.
fn next<'i>(it: &mut impl Iterator<Item = P<'i>>) -> P<'i> {
    match it.next() {
        Some(p) => p,
        None => fallback_pair(),
    }
}

fn fallback_pair() -> P<'static> {
    // A parse of the empty identifier rule can't fail on this literal input.
    use pest::Parser;
    match MlxParser::parse(Rule::ident, "_") {
        Ok(mut pairs) => match pairs.next() {
            Some(p) => p,
            None => unreachable!("ident rule yields one pair"),
        },
        Err(_) => unreachable!("`_` is an identifier"),
    }
}

fn unreachable_rule(r: Rule) -> ! {
    unreachable!("grammar rule {r:?} in an unexpected place")
}

fn error_expr(span: Span) -> Expr {
    Expr {
        kind: ExprKind::Error,
        span,
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}
