//! The canonical text of an AST: one layout, no comments. `parse(print(m))` gives `m` back (up
//! to spans), which the tests check; `mlx fmt` and the semantic lock hash build on it.

use super::ast::*;
use std::fmt::Write;

pub fn module(m: &Module) -> String {
    let mut out = String::new();
    for (i, item) in m.items.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        self::item(&mut out, item);
        out.push('\n');
    }
    out
}

pub fn item(out: &mut String, item: &Item) {
    match item {
        Item::Use(u) => match &u.target {
            UseTarget::Module(p) => {
                let names: Vec<&str> = p.iter().map(|i| i.name.as_str()).collect();
                let _ = write!(out, "use {}", names.join("."));
            }
            UseTarget::File(f) => {
                let _ = write!(out, "use {}", quote(f));
            }
        },
        Item::Const(c) => {
            let _ = write!(out, "const {}", c.name.name);
            if let Some(t) = &c.ty {
                let _ = write!(out, ": {}", type_expr(t));
            }
            let _ = write!(out, " = {}", expr(&c.value));
        }
        Item::Dataset(d) => {
            let _ = writeln!(out, "dataset {} {{", d.name.name);
            for e in &d.entries {
                match e {
                    DatasetEntry::Source { name, value, .. } => {
                        let n = name
                            .as_ref()
                            .map_or(String::new(), |n| format!(" {}", n.name));
                        let _ = writeln!(out, "  source{n} = {}", expr(value));
                    }
                    DatasetEntry::Setting(en) => {
                        let _ = writeln!(out, "  {} = {}", en.key.name, expr(&en.value));
                    }
                    DatasetEntry::Features { features, .. } => {
                        out.push_str("  features {\n");
                        for f in features {
                            let col = match &f.column {
                                FeatureColumn::Named(n) => n.name.clone(),
                                FeatureColumn::Rest(_) => "*".into(),
                            };
                            let _ = write!(out, "    {col}: {}", type_expr(&f.ty));
                            if let Some(p) = &f.pipeline {
                                let _ = write!(out, " = {}", expr(p));
                            }
                            out.push('\n');
                        }
                        out.push_str("  }\n");
                    }
                    DatasetEntry::Target {
                        column,
                        ty,
                        pipeline,
                        ..
                    } => {
                        let _ = write!(out, "  target {}: {}", column.name, type_expr(ty));
                        if let Some(p) = pipeline {
                            let _ = write!(out, " = {}", expr(p));
                        }
                        out.push('\n');
                    }
                }
            }
            out.push('}');
        }
        Item::Model(m) => {
            let _ = write!(out, "model {}", m.name.name);
            if let Some(h) = &m.hyper {
                let _ = write!(out, "({})", params(h));
            }
            let _ = write!(out, "({})", params(&m.inputs));
            if let Some(r) = &m.ret {
                let _ = write!(out, " -> {}", type_expr(r));
            }
            out.push(' ');
            block(out, &m.body, 0);
        }
        Item::Train(t) => {
            let _ = writeln!(out, "train {} {{", t.name.name);
            for e in &t.entries {
                let _ = writeln!(out, "  {} = {}", e.key.name, expr(&e.value));
            }
            for m in &t.models {
                out.push_str("  models {\n");
                for e in &m.entries {
                    let _ = writeln!(out, "    {} = {}", e.key.name, expr(&e.value));
                }
                out.push_str("  }\n");
            }
            for o in &t.objectives {
                out.push_str(&objective(o));
            }
            out.push('}');
        }
        Item::Sweep(s) => {
            let _ = writeln!(out, "sweep {} {{", s.name.name);
            for e in &s.entries {
                match e {
                    SweepEntry::Setting(en) => {
                        let _ = writeln!(out, "  {} = {}", en.key.name, expr(&en.value));
                    }
                    SweepEntry::Grid { assignments, .. } => {
                        out.push_str("  grid {\n");
                        assigns(out, assignments);
                        out.push_str("  }\n");
                    }
                    SweepEntry::Random {
                        args, assignments, ..
                    } => {
                        let _ = writeln!(out, "  random({}) {{", arg_list(args));
                        assigns(out, assignments);
                        out.push_str("  }\n");
                    }
                }
            }
            out.push('}');
        }
    }
}

fn assigns(out: &mut String, a: &[Assignment]) {
    for x in a {
        let p: Vec<&str> = x.path.iter().map(|i| i.name.as_str()).collect();
        let _ = writeln!(out, "    {} = {}", p.join("."), expr(&x.value));
    }
}

fn params(ps: &[ParamDecl]) -> String {
    ps.iter()
        .map(|p| {
            let mut s = format!("{}: {}", p.name.name, type_expr(&p.ty));
            if let Some(r) = &p.range {
                let _ = write!(
                    s,
                    " in {}{}, {}{}",
                    if r.lo_inclusive { "[" } else { "(" },
                    expr(&r.lo),
                    expr(&r.hi),
                    if r.hi_inclusive { "]" } else { ")" }
                );
            }
            if let Some(d) = &p.default {
                let _ = write!(s, " = {}", expr(d));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn block(out: &mut String, b: &Block, indent: usize) {
    let pad = "  ".repeat(indent + 1);
    out.push_str("{\n");
    for s in &b.stmts {
        match s {
            Stmt::Let {
                name, ty, value, ..
            } => {
                let t = ty
                    .as_ref()
                    .map_or(String::new(), |t| format!(": {}", type_expr(t)));
                let _ = writeln!(
                    out,
                    "{pad}let {}{t} = {}",
                    name.name,
                    expr_at(value, indent + 1)
                );
            }
            Stmt::Param { name, ty, init, .. } => {
                let _ = writeln!(
                    out,
                    "{pad}param {}: {} = {}",
                    name.name,
                    type_expr(ty),
                    expr_at(init, indent + 1)
                );
            }
        }
    }
    let _ = writeln!(out, "{pad}{}", expr_at(&b.result, indent + 1));
    let _ = write!(out, "{}}}", "  ".repeat(indent));
}

pub fn type_expr(t: &TypeExpr) -> String {
    match &t.dims {
        None => t.name.name.clone(),
        Some(dims) => {
            let d: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    DimExpr::Rest(_) => "...".to_string(),
                    DimExpr::Expr(e) => expr(e),
                })
                .collect();
            format!("{}[{}]", t.name.name, d.join(", "))
        }
    }
}

pub fn expr(e: &Expr) -> String {
    expr_at(e, 0)
}

fn prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Pipe { .. } => 1,
        ExprKind::Binary { op, .. } => match op {
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne => 2,
            BinOp::Add | BinOp::Sub => 3,
            BinOp::Mul | BinOp::Div | BinOp::MatMul => 4,
        },
        ExprKind::Neg(_) => 5,
        _ => 6,
    }
}

fn wrap(e: &Expr, min: u8, indent: usize) -> String {
    let s = expr_at(e, indent);
    if prec(e) < min { format!("({s})") } else { s }
}

fn expr_at(e: &Expr, indent: usize) -> String {
    match &e.kind {
        ExprKind::Int(v) => v.to_string(),
        ExprKind::Float(v) => float(*v),
        ExprKind::Str(s) => quote(s),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Name(i) => i.name.clone(),
        ExprKind::Field(b, i) => format!("{}.{}", wrap(b, 6, indent), i.name),
        ExprKind::List(xs) => {
            let v: Vec<String> = xs.iter().map(|x| expr_at(x, indent)).collect();
            format!("[{}]", v.join(", "))
        }
        ExprKind::Call { callee, args } => {
            format!("{}({})", wrap(callee, 6, indent), arg_list_at(args, indent))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let p = prec(e);
            // Comparisons do not chain; every other operator is left-associative.
            let lp = if p == 2 { p + 1 } else { p };
            format!(
                "{} {} {}",
                wrap(lhs, lp, indent),
                op.symbol(),
                wrap(rhs, p + 1, indent)
            )
        }
        ExprKind::Neg(x) => format!("-{}", wrap(x, 5, indent)),
        ExprKind::Pipe { lhs, rhs } => {
            format!("{} |> {}", wrap(lhs, 1, indent), wrap(rhs, 2, indent))
        }
        ExprKind::Lambda { params, body } => {
            let p: Vec<&str> = params.iter().map(|i| i.name.as_str()).collect();
            let mut s = format!("|{}| ", p.join(", "));
            block(&mut s, body, indent);
            s
        }
        ExprKind::Error => "<error>".into(),
    }
}

fn arg_list(args: &[Arg]) -> String {
    arg_list_at(args, 0)
}

fn arg_list_at(args: &[Arg], indent: usize) -> String {
    args.iter()
        .map(|a| match &a.name {
            Some(n) => format!("{}: {}", n.name, expr_at(&a.value, indent)),
            None => expr_at(&a.value, indent),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A float literal that reads back as the same f64 and always as a float.
pub fn float(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let s = format!("{v:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An objective block in canonical form, indented as a train entry (`--set` values are
/// applied by the caller before printing).
pub fn objective(o: &Objective) -> String {
    let mut out = format!("  objective {} {{\n", o.name.name);
    for i in &o.items {
        match i {
            ObjectiveItem::Let(Stmt::Let {
                name, ty, value, ..
            }) => {
                let t = ty
                    .as_ref()
                    .map_or(String::new(), |t| format!(": {}", type_expr(t)));
                let _ = writeln!(out, "    let {}{t} = {}", name.name, expr_at(value, 2));
            }
            ObjectiveItem::Let(Stmt::Param { .. }) => {}
            ObjectiveItem::Entry(e) => {
                let _ = writeln!(out, "    {} = {}", e.key.name, expr_at(&e.value, 2));
            }
        }
    }
    out.push_str("  }\n");
    out
}
