//! The abstract syntax tree: what a `.mlx` file says, before names are resolved. Every node
//! carries a `Span`.

use crate::source::{FileId, Span};

#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub file: FileId,
    pub items: Vec<Item>,
    /// Spans of items that failed to parse, with the name they declare when it could be read:
    /// the checker treats those names as known, so one syntax error does not cascade.
    pub broken: Vec<(Option<String>, Span)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Use(Use),
    Const(Const),
    Dataset(Dataset),
    Model(Model),
    Train(Train),
    Sweep(Sweep),
}

impl Item {
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Item::Use(_) => None,
            Item::Const(c) => Some(&c.name),
            Item::Dataset(d) => Some(&d.name),
            Item::Model(m) => Some(&m.name),
            Item::Train(t) => Some(&t.name),
            Item::Sweep(s) => Some(&s.name),
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Item::Use(u) => u.span,
            Item::Const(c) => c.span,
            Item::Dataset(d) => d.span,
            Item::Model(m) => m.span,
            Item::Train(t) => t.span,
            Item::Sweep(s) => s.span,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Item::Use(_) => "use",
            Item::Const(_) => "const",
            Item::Dataset(_) => "dataset",
            Item::Model(_) => "model",
            Item::Train(_) => "train",
            Item::Sweep(_) => "sweep",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum UseTarget {
    /// `use std.nn`: a dotted module path.
    Module(Vec<Ident>),
    /// `use "layers/block.mlx"`: a file relative to the importing file.
    File(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Use {
    pub target: UseTarget,
    pub target_span: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub name: Ident,
    pub entries: Vec<DatasetEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DatasetEntry {
    /// `source = csv(...)` (name `None`) or `source train = idx(...)`.
    Source {
        name: Option<Ident>,
        value: Expr,
        span: Span,
    },
    Features {
        features: Vec<Feature>,
        span: Span,
    },
    Target {
        column: Ident,
        ty: TypeExpr,
        pipeline: Option<Expr>,
        span: Span,
    },
    /// `split = ...`, `dedup = true`, ...
    Setting(Entry),
}

#[derive(Clone, Debug, PartialEq)]
pub enum FeatureColumn {
    Named(Ident),
    /// `*`: every column not named elsewhere (and not the target).
    Rest(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    pub column: FeatureColumn,
    pub ty: TypeExpr,
    pub pipeline: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: Ident,
    /// `None` when the model has a single parameter list (no hyperparameters).
    pub hyper: Option<Vec<ParamDecl>>,
    pub inputs: Vec<ParamDecl>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
    /// From `model` to the end of the signature.
    pub header_span: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub range: Option<Range>,
    pub default: Option<Expr>,
    pub span: Span,
}

/// `in [lo, hi)`: an interval a hyperparameter must lie in.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub lo: Expr,
    pub hi: Expr,
    pub lo_inclusive: bool,
    pub hi_inclusive: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub result: Box<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Let {
        name: Ident,
        ty: Option<TypeExpr>,
        value: Expr,
        span: Span,
    },
    Param {
        name: Ident,
        ty: TypeExpr,
        init: Expr,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Train {
    pub name: Ident,
    pub entries: Vec<Entry>,
    /// `models { NAME = MODEL ... }` blocks (one is allowed; the checker says so).
    pub models: Vec<ModelsBlock>,
    pub objectives: Vec<Objective>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelsBlock {
    pub entries: Vec<Entry>,
    pub span: Span,
}

/// `objective NAME { let ..., updates = ..., loss = ..., optimizer = ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    pub name: Ident,
    pub items: Vec<ObjectiveItem>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ObjectiveItem {
    /// A `let` binding (`Stmt::Let`).
    Let(Stmt),
    Entry(Entry),
}

impl Objective {
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.items.iter().filter_map(|i| match i {
            ObjectiveItem::Entry(e) => Some(e),
            ObjectiveItem::Let(_) => None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub name: Ident,
    pub entries: Vec<SweepEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SweepEntry {
    Setting(Entry),
    Grid {
        assignments: Vec<Assignment>,
        span: Span,
    },
    Random {
        args: Vec<Arg>,
        assignments: Vec<Assignment>,
        span: Span,
    },
}

/// `optimizer.lr = [1e-3, 1e-2]` inside a `grid` or `random` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub path: Vec<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub name: Ident,
    /// `None` for a scalar type (`Float`), `Some` for `Float[...]` or `Class[K]`.
    pub dims: Option<Vec<DimExpr>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DimExpr {
    /// `...`: any number of dimensions.
    Rest(Span),
    Expr(Expr),
}

impl DimExpr {
    pub fn span(&self) -> Span {
        match self {
            DimExpr::Rest(s) => *s,
            DimExpr::Expr(e) => e.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::MatMul => "@",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Name(Ident),
    /// `a.b`
    Field(Box<Expr>, Ident),
    List(Vec<Expr>),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
    /// `lhs |> rhs`
    Pipe {
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `|a, b| { ... }`
    Lambda {
        params: Vec<Ident>,
        body: Block,
    },
    /// A node the parser could not build; the checker skips it silently.
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

impl Expr {
    /// `a.b.c` as a list of names, if the expression is such a path.
    pub fn as_path(&self) -> Option<Vec<&Ident>> {
        match &self.kind {
            ExprKind::Name(id) => Some(vec![id]),
            ExprKind::Field(base, id) => {
                let mut p = base.as_path()?;
                p.push(id);
                Some(p)
            }
            _ => None,
        }
    }

    pub fn as_name(&self) -> Option<&Ident> {
        match &self.kind {
            ExprKind::Name(id) => Some(id),
            _ => None,
        }
    }
}

// ---- depth: long chains and deep nesting ------------------------------------------------------

/// A placeholder left where a child was taken out (by `Drop`).
fn hole() -> Expr {
    Expr {
        kind: ExprKind::Error,
        span: Span::default(),
    }
}

impl Expr {
    /// The sub-expressions one level down, including the expressions inside a lambda's body
    /// and its type annotations.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Field(b, _) | ExprKind::Neg(b) => vec![&**b],
            ExprKind::List(xs) => xs.iter().collect(),
            ExprKind::Call { callee, args } => std::iter::once(&**callee)
                .chain(args.iter().map(|a| &a.value))
                .collect(),
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Pipe { lhs, rhs } => {
                vec![&**lhs, &**rhs]
            }
            ExprKind::Lambda { body, .. } => body.exprs(),
            _ => Vec::new(),
        }
    }

    /// The span of the first expression found nested more than `limit` deep inside this one
    /// (a long `|>` or `+` chain nests as deep as it is long).
    pub fn deeper_than(&self, limit: usize) -> Option<Span> {
        let mut stack = vec![(self, 1usize)];
        while let Some((e, d)) = stack.pop() {
            if d > limit {
                return Some(e.span);
            }
            stack.extend(e.children().into_iter().map(|c| (c, d + 1)));
        }
        None
    }

    /// Move the boxed and listed children out, leaving error placeholders (for `Drop`).
    fn take_children(&mut self, out: &mut Vec<Expr>) {
        match &mut self.kind {
            ExprKind::Field(b, _) | ExprKind::Neg(b) => {
                out.push(std::mem::replace(&mut **b, hole()))
            }
            ExprKind::List(xs) => out.append(xs),
            ExprKind::Call { callee, args } => {
                out.push(std::mem::replace(&mut **callee, hole()));
                out.extend(
                    args.iter_mut()
                        .map(|a| std::mem::replace(&mut a.value, hole())),
                );
            }
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Pipe { lhs, rhs } => {
                out.push(std::mem::replace(&mut **lhs, hole()));
                out.push(std::mem::replace(&mut **rhs, hole()));
            }
            _ => {}
        }
    }
}

/// Dropping a 10,000-stage pipeline must not recurse 10,000 deep: children are taken out and
/// dropped from a work list. (Lambdas and type annotations still recurse, but they nest only as
/// deep as brackets do, which the parser bounds.)
impl Drop for Expr {
    fn drop(&mut self) {
        let shallow = !matches!(
            &self.kind,
            ExprKind::Field(..)
                | ExprKind::Neg(_)
                | ExprKind::List(_)
                | ExprKind::Call { .. }
                | ExprKind::Binary { .. }
                | ExprKind::Pipe { .. }
        );
        if shallow {
            return;
        }
        let mut work = Vec::new();
        self.take_children(&mut work);
        while let Some(mut e) = work.pop() {
            e.take_children(&mut work);
        }
    }
}

impl TypeExpr {
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.dims.iter().flatten().filter_map(|d| match d {
            DimExpr::Expr(e) => Some(e),
            DimExpr::Rest(_) => None,
        })
    }
}

impl Block {
    /// Every expression written in the block (statements, their types, the result).
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        for s in &self.stmts {
            match s {
                Stmt::Let { ty, value, .. } => {
                    out.extend(ty.iter().flat_map(TypeExpr::exprs));
                    out.push(value);
                }
                Stmt::Param { ty, init, .. } => {
                    out.extend(ty.exprs());
                    out.push(init);
                }
            }
        }
        out.push(&*self.result);
        out
    }
}

impl ParamDecl {
    fn exprs(&self) -> Vec<&Expr> {
        let mut out: Vec<&Expr> = self.ty.exprs().collect();
        if let Some(r) = &self.range {
            out.push(&r.lo);
            out.push(&r.hi);
        }
        out.extend(self.default.iter());
        out
    }
}

impl Item {
    /// The outermost expressions written in the item.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        match self {
            Item::Use(_) => {}
            Item::Const(c) => {
                out.extend(c.ty.iter().flat_map(TypeExpr::exprs));
                out.push(&c.value);
            }
            Item::Dataset(d) => {
                for e in &d.entries {
                    match e {
                        DatasetEntry::Source { value, .. } => out.push(value),
                        DatasetEntry::Features { features, .. } => {
                            for f in features {
                                out.extend(f.ty.exprs());
                                out.extend(f.pipeline.iter());
                            }
                        }
                        DatasetEntry::Target { ty, pipeline, .. } => {
                            out.extend(ty.exprs());
                            out.extend(pipeline.iter());
                        }
                        DatasetEntry::Setting(en) => out.push(&en.value),
                    }
                }
            }
            Item::Model(m) => {
                for p in m.hyper.iter().flatten().chain(&m.inputs) {
                    out.extend(p.exprs());
                }
                out.extend(m.ret.iter().flat_map(TypeExpr::exprs));
                out.extend(m.body.exprs());
            }
            Item::Train(t) => {
                out.extend(t.entries.iter().map(|e| &e.value));
                for m in &t.models {
                    out.extend(m.entries.iter().map(|e| &e.value));
                }
                for o in &t.objectives {
                    for i in &o.items {
                        match i {
                            ObjectiveItem::Entry(e) => out.push(&e.value),
                            ObjectiveItem::Let(Stmt::Let { ty, value, .. }) => {
                                out.extend(ty.iter().flat_map(TypeExpr::exprs));
                                out.push(value);
                            }
                            ObjectiveItem::Let(Stmt::Param { .. }) => {}
                        }
                    }
                }
            }
            Item::Sweep(s) => {
                for e in &s.entries {
                    match e {
                        SweepEntry::Setting(en) => out.push(&en.value),
                        SweepEntry::Grid { assignments, .. } => {
                            out.extend(assignments.iter().map(|a| &a.value));
                        }
                        SweepEntry::Random {
                            args, assignments, ..
                        } => {
                            out.extend(args.iter().map(|a| &a.value));
                            out.extend(assignments.iter().map(|a| &a.value));
                        }
                    }
                }
            }
        }
        out
    }
}
