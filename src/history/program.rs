//! The program part of `mlx compare`: takes two parsed `spec.mlx` modules and gives the
//! differences in meaning, item by item by name, as report lines: constants, dataset entries
//! (source, split, each feature's type and pipeline, target), models (hyperparameters,
//! signature, body lines), trains entry by entry and argument by argument. Everything is
//! compared through the canonical printer, so layout and comments never show.

use crate::check::config::Sig;
use crate::check::tables;
use crate::syntax::ast::{
    Arg, DatasetEntry, Expr, ExprKind, FeatureColumn, Item, Model, Module, ParamDecl,
};
use crate::syntax::print;
use std::fmt::Write;

const ARROW: &str = "→";
const NONE: &str = "(none)";

/// The report lines (indented by two spaces) for the differences between two programs.
pub fn diff(a: &Module, b: &Module) -> Vec<String> {
    let mut out = Vec::new();
    let ka = keyed(a);
    let kb = keyed(b);
    let modules = [a, b];
    let models = ModelSigs { modules: &modules };
    for (key, ia) in &ka {
        match kb.iter().find(|(k, _)| k == key) {
            Some((_, ib)) => item(&mut out, ia, ib, &models),
            None => out.push(format!("  - {}", one_side(ia))),
        }
    }
    for (key, ib) in &kb {
        if !ka.iter().any(|(k, _)| k == key) {
            out.push(format!("  + {}", one_side(ib)));
        }
    }
    out
}

/// Items keyed by kind and name (`use` items by their text), in file order.
fn keyed(m: &Module) -> Vec<(String, &Item)> {
    m.items
        .iter()
        .map(|i| {
            let key = match i.name() {
                Some(n) => format!("{} {}", i.kind(), n.name),
                None => canonical(i),
            };
            (key, i)
        })
        .collect()
}

fn canonical(i: &Item) -> String {
    let mut s = String::new();
    print::item(&mut s, i);
    s
}

/// How an item present on one side only is named: `model resnet`, `const depth = 3`.
fn one_side(i: &Item) -> String {
    match i {
        Item::Use(_) | Item::Const(_) => canonical(i),
        _ => match i.name() {
            Some(n) => format!("{} {}", i.kind(), n.name),
            None => i.kind().to_string(),
        },
    }
}

fn item(out: &mut Vec<String>, a: &Item, b: &Item, models: &ModelSigs<'_>) {
    if canonical(a) == canonical(b) {
        return;
    }
    match (a, b) {
        (Item::Const(x), Item::Const(y)) => {
            let ty = |c: &crate::syntax::ast::Const| c.ty.as_ref().map(print::type_expr);
            let (ta, tb) = (ty(x), ty(y));
            if ta == tb {
                out.push(format!(
                    "  {}: {} {ARROW} {}",
                    x.name.name,
                    print::expr(&x.value),
                    print::expr(&y.value)
                ));
            } else {
                let full = |t: Option<String>, v: &Expr| match t {
                    Some(t) => format!("{t} = {}", print::expr(v)),
                    None => print::expr(v),
                };
                out.push(format!(
                    "  {}: {} {ARROW} {}",
                    x.name.name,
                    full(ta, &x.value),
                    full(tb, &y.value)
                ));
            }
        }
        (Item::Dataset(x), Item::Dataset(y)) => {
            dataset(out, &x.name.name, &x.entries, &y.entries);
        }
        (Item::Model(x), Item::Model(y)) => {
            out.push(format!("  model {}:", x.name.name));
            model(out, x, y);
        }
        (Item::Train(x), Item::Train(y)) => {
            out.push(format!("  train {}:", x.name.name));
            let ea: Vec<(String, &Expr)> = x
                .entries
                .iter()
                .map(|e| (e.key.name.clone(), &e.value))
                .collect();
            let eb: Vec<(String, &Expr)> = y
                .entries
                .iter()
                .map(|e| (e.key.name.clone(), &e.value))
                .collect();
            entries(out, "    ", "", " ", &ea, &eb, models);
        }
        _ => {
            // Sweeps (and anything else): the canonical text, line by line.
            out.push(format!("  {}:", one_side(a)));
            lines(out, &canonical(a), &canonical(b));
        }
    }
}

/// Named entries compared key by key, values through `value`. `prefix` starts each path;
/// `sep` separates a path from its values (` ` for trains, `: ` where the syntax has a colon).
fn entries(
    out: &mut Vec<String>,
    indent: &str,
    prefix: &str,
    sep: &str,
    a: &[(String, &Expr)],
    b: &[(String, &Expr)],
    models: &ModelSigs<'_>,
) {
    for (k, va) in a {
        let path = format!("{prefix}{k}");
        match b.iter().find(|(kb, _)| kb == k) {
            Some((_, vb)) => value(out, indent, &path, sep, k, va, vb, models),
            None => out.push(format!("{indent}- {path} = {}", print::expr(va))),
        }
    }
    for (k, vb) in b {
        if !a.iter().any(|(ka, _)| ka == k) {
            out.push(format!("{indent}+ {prefix}{k} = {}", print::expr(vb)));
        }
    }
}

/// A call's callee name and arguments; a bare name counts as a call without arguments.
fn as_call(e: &Expr) -> Option<(String, &[Arg])> {
    match &e.kind {
        ExprKind::Call { callee, args } => Some((print::expr(callee), args.as_slice())),
        ExprKind::Name(n) => Some((n.name.clone(), &[])),
        _ => None,
    }
}

/// One value compared: calls with the same callee argument by argument (recursively), else
/// `path old → new`; when the callee differs, its old name and the whole new call.
#[allow(clippy::too_many_arguments)]
fn value(
    out: &mut Vec<String>,
    indent: &str,
    path: &str,
    sep: &str,
    entry: &str,
    a: &Expr,
    b: &Expr,
    models: &ModelSigs<'_>,
) {
    let (ta, tb) = (print::expr(a), print::expr(b));
    if ta == tb {
        return;
    }
    let plain = matches!(a.kind, ExprKind::Name(_)) && matches!(b.kind, ExprKind::Name(_));
    match (as_call(a), as_call(b)) {
        (Some((ca, aa)), Some((cb, ab))) if !plain => {
            if ca != cb {
                out.push(format!("{indent}{path}{sep}{ca} {ARROW} {tb}"));
                return;
            }
            let names = models.param_names(entry, &ca);
            let na = named_args(aa, &names);
            let nb = named_args(ab, &names);
            for (k, va) in &na {
                let sub = format!("{path}.{k}");
                match nb.iter().find(|(kb, _)| kb == k) {
                    Some((_, vb)) => value(out, indent, &sub, sep, entry, va, vb, models),
                    None => out.push(format!(
                        "{indent}{sub}{sep}{} {ARROW} {NONE}",
                        print::expr(va)
                    )),
                }
            }
            for (k, vb) in &nb {
                if !na.iter().any(|(ka, _)| ka == k) {
                    out.push(format!(
                        "{indent}{path}.{k}{sep}{NONE} {ARROW} {}",
                        print::expr(vb)
                    ));
                }
            }
        }
        _ => out.push(format!("{indent}{path}{sep}{ta} {ARROW} {tb}")),
    }
}

/// Arguments by name: a positional argument takes the name its signature gives that
/// position, or `#N` when no signature is known.
fn named_args<'e>(args: &'e [Arg], names: &[String]) -> Vec<(String, &'e Expr)> {
    let mut pos = 0;
    args.iter()
        .map(|a| match &a.name {
            Some(n) => (n.name.clone(), &a.value),
            None => {
                pos += 1;
                let name = names
                    .get(pos - 1)
                    .cloned()
                    .unwrap_or_else(|| format!("#{pos}"));
                (name, &a.value)
            }
        })
        .collect()
}

/// Where positional parameter names come from: the configuration tables, and the models of
/// either program (for `model = classifier(64)`).
struct ModelSigs<'m> {
    modules: &'m [&'m Module],
}

impl ModelSigs<'_> {
    fn param_names(&self, entry: &str, callee: &str) -> Vec<String> {
        if entry == "model" {
            for m in self.modules.iter().rev() {
                for i in &m.items {
                    if let Item::Model(md) = i
                        && md.name.name == callee
                    {
                        return md
                            .hyper
                            .iter()
                            .flatten()
                            .map(|p| p.name.name.clone())
                            .collect();
                    }
                }
            }
            return Vec::new();
        }
        let table: &[&[Sig]] = match entry {
            "source" => &[tables::SOURCES],
            "split" => &[tables::SPLITS],
            "loss" => &[tables::LOSSES],
            "optimizer" => &[tables::OPTIMIZERS],
            "schedule" => &[tables::SCHEDULES],
            "early_stop" => &[tables::EARLY_STOP],
            "checkpoint" => &[tables::CHECKPOINT],
            _ => &[
                tables::SOURCES,
                tables::SPLITS,
                tables::LOSSES,
                tables::OPTIMIZERS,
                tables::SCHEDULES,
                tables::EARLY_STOP,
                tables::CHECKPOINT,
            ],
        };
        table
            .iter()
            .flat_map(|t| t.iter())
            .find(|s| s.name == callee)
            .map(|s| s.params.iter().map(|p| p.name.to_string()).collect())
            .unwrap_or_default()
    }
}

/// A feature or target as written after its column: `Float = impute(median) |> standardize`.
fn typed(ty: &crate::syntax::ast::TypeExpr, pipeline: Option<&Expr>) -> String {
    match pipeline {
        Some(p) => format!("{} = {}", print::type_expr(ty), print::expr(p)),
        None => print::type_expr(ty),
    }
}

fn dataset<'a>(out: &mut Vec<String>, name: &str, a: &'a [DatasetEntry], b: &'a [DatasetEntry]) {
    // Sources and settings: compared like train entries, argument by argument.
    let settings = |es: &'a [DatasetEntry]| -> Vec<(String, &'a Expr)> {
        es.iter()
            .filter_map(|e| match e {
                DatasetEntry::Source { name, value, .. } => Some((
                    name.as_ref()
                        .map_or_else(|| "source".into(), |n| format!("source.{}", n.name)),
                    value,
                )),
                DatasetEntry::Setting(en) => Some((en.key.name.clone(), &en.value)),
                _ => None,
            })
            .collect()
    };
    let no_models = ModelSigs { modules: &[] };
    entries(
        out,
        "  ",
        &format!("{name}."),
        " ",
        &settings(a),
        &settings(b),
        &no_models,
    );

    // Features: type and pipeline per column, and their order (the model input's layout).
    let features = |es: &[DatasetEntry]| -> Vec<(String, String, String)> {
        es.iter()
            .filter_map(|e| match e {
                DatasetEntry::Features { features, .. } => Some(features),
                _ => None,
            })
            .flatten()
            .map(|f| {
                let col = match &f.column {
                    FeatureColumn::Named(n) => n.name.clone(),
                    FeatureColumn::Rest(_) => "*".into(),
                };
                let ty = print::type_expr(&f.ty);
                (col, ty, typed(&f.ty, f.pipeline.as_ref()))
            })
            .collect()
    };
    let (fa, fb) = (features(a), features(b));
    for (col, ty, text) in &fa {
        let path = format!("{name}.features.{col}");
        match fb.iter().find(|(c, _, _)| c == col) {
            Some((_, tyb, textb)) if text != textb => {
                if ty == tyb {
                    let pipe = |t: &str| {
                        t.split_once(" = ")
                            .map_or_else(|| NONE.to_string(), |(_, p)| p.to_string())
                    };
                    out.push(format!("  {path}: {} {ARROW} {}", pipe(text), pipe(textb)));
                } else {
                    out.push(format!("  {path}: {text} {ARROW} {textb}"));
                }
            }
            Some(_) => {}
            None => out.push(format!("  - {path}: {text}")),
        }
    }
    for (col, _, text) in &fb {
        if !fa.iter().any(|(c, _, _)| c == col) {
            out.push(format!("  + {name}.features.{col}: {text}"));
        }
    }
    let common_a: Vec<&str> = fa
        .iter()
        .map(|f| f.0.as_str())
        .filter(|c| fb.iter().any(|f| f.0 == *c))
        .collect();
    let common_b: Vec<&str> = fb
        .iter()
        .map(|f| f.0.as_str())
        .filter(|c| fa.iter().any(|f| f.0 == *c))
        .collect();
    if common_a != common_b {
        out.push(format!(
            "  {name}.features order: {} {ARROW} {}",
            common_a.join(", "),
            common_b.join(", ")
        ));
    }

    let target = |es: &[DatasetEntry]| -> Option<String> {
        es.iter().find_map(|e| match e {
            DatasetEntry::Target {
                column,
                ty,
                pipeline,
                ..
            } => Some(format!("{}: {}", column.name, typed(ty, pipeline.as_ref()))),
            _ => None,
        })
    };
    let (ta, tb) = (target(a), target(b));
    if ta != tb {
        let show = |t: Option<String>| t.unwrap_or_else(|| NONE.into());
        out.push(format!(
            "  {name}.target: {} {ARROW} {}",
            show(ta),
            show(tb)
        ));
    }
}

fn param(p: &ParamDecl) -> String {
    let mut s = format!("{}: {}", p.name.name, print::type_expr(&p.ty));
    if let Some(r) = &p.range {
        let _ = write!(
            s,
            " in {}{}, {}{}",
            if r.lo_inclusive { "[" } else { "(" },
            print::expr(&r.lo),
            print::expr(&r.hi),
            if r.hi_inclusive { "]" } else { ")" }
        );
    }
    if let Some(d) = &p.default {
        let _ = write!(s, " = {}", print::expr(d));
    }
    s
}

fn model(out: &mut Vec<String>, a: &Model, b: &Model) {
    // Hyperparameters by name: the declaration without its default, the default, the whole.
    let hyper = |m: &Model| -> Vec<(String, String, Option<String>, String)> {
        m.hyper
            .iter()
            .flatten()
            .map(|p| {
                let bare = param(&ParamDecl {
                    default: None,
                    ..p.clone()
                });
                let default = p.default.as_ref().map(print::expr);
                (p.name.name.clone(), bare, default, param(p))
            })
            .collect()
    };
    let (ha, hb) = (hyper(a), hyper(b));
    for (n, bare_a, da, pa) in &ha {
        match hb.iter().find(|h| &h.0 == n) {
            Some((_, bare_b, db, pb)) if pa != pb => {
                // Only the default changed: `hidden = 32 → 64`; else both declarations.
                if bare_a == bare_b {
                    let show = |d: &Option<String>| d.clone().unwrap_or_else(|| NONE.into());
                    out.push(format!("    {n} = {} {ARROW} {}", show(da), show(db)));
                } else {
                    out.push(format!("    {pa} {ARROW} {pb}"));
                }
            }
            Some(_) => {}
            None => out.push(format!("    - hyperparameter {pa}")),
        }
    }
    for (n, _, _, pb) in &hb {
        if !ha.iter().any(|h| &h.0 == n) {
            out.push(format!("    + hyperparameter {pb}"));
        }
    }
    let names = |m: &Model| -> Vec<String> {
        m.hyper
            .iter()
            .flatten()
            .map(|p| p.name.name.clone())
            .collect()
    };
    let (na, nb) = (names(a), names(b));
    let common_a: Vec<&String> = na.iter().filter(|n| nb.contains(n)).collect();
    let common_b: Vec<&String> = nb.iter().filter(|n| na.contains(n)).collect();
    if common_a != common_b {
        let j = |v: Vec<&String>| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        out.push(format!(
            "    hyperparameter order: {} {ARROW} {}",
            j(common_a),
            j(common_b)
        ));
    }
    let inputs = |m: &Model| -> String {
        let v: Vec<String> = m.inputs.iter().map(param).collect();
        format!("({})", v.join(", "))
    };
    if inputs(a) != inputs(b) {
        out.push(format!("    inputs {} {ARROW} {}", inputs(a), inputs(b)));
    }
    let ret = |m: &Model| m.ret.as_ref().map_or_else(|| NONE.into(), print::type_expr);
    if ret(a) != ret(b) {
        out.push(format!("    returns {} {ARROW} {}", ret(a), ret(b)));
    }
    let body = |m: &Model| canonical(&Item::Model(m.clone()));
    lines(out, &body(a), &body(b));
}

/// The body lines (after the first line, without the closing brace) that differ, as a
/// line diff: `- old` / `+ new`, four spaces in.
fn lines(out: &mut Vec<String>, a: &str, b: &str) {
    let inner = |t: &str| -> Vec<String> {
        let v: Vec<&str> = t.lines().collect();
        let end = v.len().saturating_sub(1).max(1);
        v.get(1..end)
            .unwrap_or(&[])
            .iter()
            .map(|l| l.strip_prefix("  ").unwrap_or(l).to_string())
            .collect()
    };
    let (la, lb) = (inner(a), inner(b));
    // Longest common subsequence, then walk it.
    let (n, m) = (la.len(), lb.len());
    let mut t = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if la[i] == lb[j] {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && la[i] == lb[j] {
            i += 1;
            j += 1;
        } else if i < n && (j == m || t[i + 1][j] >= t[i][j + 1]) {
            out.push(format!("    - {}", la[i]));
            i += 1;
        } else {
            out.push(format!("    + {}", lb[j]));
            j += 1;
        }
    }
}
