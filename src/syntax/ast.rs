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
    pub span: Span,
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
