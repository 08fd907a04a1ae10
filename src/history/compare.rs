//! `mlx compare A B`: takes two run directories (`spec.mlx`, `mlx.lock`, `summary.json`, each
//! required) and gives a report in three sections: the program's meaning (via
//! `program::diff`), the data and environment from the locks, and the results from the
//! summaries with differences. A section with nothing to report says "no differences".

use super::{INPUT, num, program, read_text, when};
use crate::diagnostics::Diagnostic;
use crate::rundir::{self, Summary};
use crate::source::FileId;
use crate::syntax::ast::Module;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const ARROW: &str = "→";

struct Run {
    spec: Module,
    lock: Value,
    summary: Value,
    short_hash: String,
}

pub fn compare(a: &Path, b: &Path) -> Result<String, Diagnostic> {
    let ra = load(a)?;
    let rb = load(b)?;
    let mut out = String::new();
    let (ha, hb) = (headline("A", a, &ra), headline("B", b, &rb));
    // The two headlines as aligned columns.
    let widths: Vec<usize> = (0..ha.len().max(hb.len()))
        .map(|i| {
            let w = |h: &[String]| h.get(i).map_or(0, |c| c.chars().count());
            w(&ha).max(w(&hb))
        })
        .collect();
    for h in [ha, hb] {
        let cells: Vec<String> = h
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    section(&mut out, "program", program::diff(&ra.spec, &rb.spec));
    section(&mut out, "data", data(&ra.lock, &rb.lock));
    section(&mut out, "results", results(&ra.summary, &rb.summary));
    Ok(out)
}

fn load(dir: &Path) -> Result<Run, Diagnostic> {
    if !dir.is_dir() {
        return Err(Diagnostic::error(
            INPUT,
            format!("no such run directory: {}", dir.display()),
        ));
    }
    if dir.join(rundir::SWEEP).is_file() {
        let best = rundir::read_doc::<rundir::SweepDoc>(&dir.join(rundir::SWEEP))
            .ok()
            .and_then(|s| s.best?.dir);
        let d = Diagnostic::error(
            INPUT,
            format!(
                "{} is a sweep directory, not a run directory",
                dir.display()
            ),
        );
        return Err(match best {
            Some(b) => d.with_help(format!(
                "compare runs under its `trials/`; the best trial is {b}"
            )),
            None => d.with_help("compare runs under its `trials/`"),
        });
    }
    let spec_path = dir.join("spec.mlx");
    let text = read_text(&spec_path)?;
    let (spec, diags) = crate::syntax::parse(FileId(0), &text);
    if let Some(d) = diags.first() {
        return Err(Diagnostic::error(
            INPUT,
            format!("{} does not parse: {}", spec_path.display(), d.message),
        ));
    }
    let input = |d: Diagnostic| Diagnostic { code: INPUT, ..d };
    let lock = rundir::lock::read(dir).map_err(input)?;
    let summary: Summary = rundir::read_doc(&dir.join(rundir::SUMMARY)).map_err(input)?;
    // The comparison walks the documents field by field.
    let value =
        |v: Result<Value, serde_json::Error>| v.map_err(|e| Diagnostic::internal(e.to_string()));
    Ok(Run {
        spec,
        lock: value(serde_json::to_value(&lock))?,
        summary: value(serde_json::to_value(&summary))?,
        short_hash: lock.short_hash(),
    })
}

/// `A  runs/penguins_mlp/20261122-142857  penguins_mlp  2026-11-22 14:28:57  lock bba25a9d`,
/// as cells.
fn headline(tag: &str, dir: &Path, r: &Run) -> Vec<String> {
    let mut parts = vec![tag.to_string(), dir.display().to_string()];
    parts.push(text(r.summary.get("train")));
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parts.push(when(&id).unwrap_or_else(|| "-".into()));
    parts.push(format!("lock {}", r.short_hash));
    parts
}

fn section(out: &mut String, title: &str, lines: Vec<String>) {
    out.push('\n');
    out.push_str(title);
    out.push('\n');
    if lines.is_empty() {
        out.push_str("  no differences\n");
    }
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
}

/// A scalar as text (strings without quotes, numbers as figures); `(none)` when absent.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(n @ Value::Number(_)) => fig(n),
        Some(x) => x.to_string(),
    }
}

/// The data files of a lock: `(path, sha256)`.
fn files(lock: &Value) -> Vec<(String, String)> {
    lock.get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| (text(f.get("path")), text(f.get("sha256"))))
        .collect()
}

fn short(h: &str) -> String {
    if h.chars().count() > 12 {
        format!("{}…", h.chars().take(12).collect::<String>())
    } else {
        h.to_string()
    }
}

fn base_name(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

fn data(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (fa, fb) = (files(a), files(b));
    let mut left_a: Vec<&(String, String)> = Vec::new();
    for f in &fa {
        match fb.iter().find(|g| g.0 == f.0) {
            Some(g) if g.1 != f.1 => out.push(format!(
                "  {}: sha256 {} {ARROW} {}",
                f.0,
                short(&f.1),
                short(&g.1)
            )),
            Some(_) => {}
            None => left_a.push(f),
        }
    }
    let mut left_b: Vec<&(String, String)> = fb
        .iter()
        .filter(|g| !fa.iter().any(|f| f.0 == g.0))
        .collect();
    // A file that moved (same name, one of its kind on each side) is paired, not added+removed.
    let unique =
        |v: &[&(String, String)], n: &str| v.iter().filter(|f| base_name(&f.0) == n).count() == 1;
    let mut paired = Vec::new();
    for f in &left_a {
        let n = base_name(&f.0);
        if unique(&left_a, n)
            && unique(&left_b, n)
            && let Some(g) = left_b.iter().find(|g| base_name(&g.0) == n)
        {
            let content = if f.1 == g.1 {
                "same content".to_string()
            } else {
                format!("sha256 {} {ARROW} {}", short(&f.1), short(&g.1))
            };
            out.push(format!("  {} {ARROW} {} ({content})", f.0, g.0));
            paired.push((f.0.clone(), g.0.clone()));
        }
    }
    left_a.retain(|f| !paired.iter().any(|p| p.0 == f.0));
    left_b.retain(|g| !paired.iter().any(|p| p.1 == g.0));
    for f in left_a {
        out.push(format!("  - {} (sha256 {})", f.0, short(&f.1)));
    }
    for g in left_b {
        out.push(format!("  + {} (sha256 {})", g.0, short(&g.1)));
    }
    for (key, label) in [
        ("seed", "seed"),
        ("backend", "backend"),
        ("mlx", "mlx version"),
    ] {
        let (x, y) = (text(a.get(key)), text(b.get(key)));
        if x != y {
            out.push(format!("  {label} {x} {ARROW} {y}"));
        }
    }
    out
}

/// `old → new (±diff)` for two numbers: integers exactly; floats with four decimals, or in
/// full when that hides their difference.
fn change(a: &Value, b: &Value) -> String {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return format!("{x} {ARROW} {y} ({:+})", y - x);
    }
    let (x, y) = (
        a.as_f64().unwrap_or(f64::NAN),
        b.as_f64().unwrap_or(f64::NAN),
    );
    let d = y - x;
    let signed = |v: f64, s: String| if v < 0.0 { s } else { format!("+{s}") };
    let (sx, sy) = (num(x), num(y));
    if sx == sy {
        format!("{x} {ARROW} {y} ({})", signed(d, format!("{d:e}")))
    } else {
        format!("{sx} {ARROW} {sy} ({})", signed(d, num(d)))
    }
}

/// The numeric figures of a split, by name.
fn numeric(v: Option<&Value>) -> Vec<(String, Value)> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, x)| x.is_number())
        .map(|(k, x)| (k.clone(), x.clone()))
        .collect()
}

/// Figure lines for one pair of figure maps; equal figures go to `equal`.
fn figures(
    out: &mut Vec<String>,
    equal: &mut Vec<String>,
    prefix: &str,
    a: Option<&Value>,
    b: Option<&Value>,
) {
    let (na, nb) = (numeric(a), numeric(b));
    let keys: BTreeSet<&String> = na.iter().chain(&nb).map(|(k, _)| k).collect();
    for k in keys {
        let name = format!("{prefix}{k}");
        let x = na.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        let y = nb.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        match (x, y) {
            (Some(x), Some(y)) if x.as_f64() == y.as_f64() => equal.push(name),
            (Some(x), Some(y)) => out.push(format!("  {name} {}", change(x, y))),
            (Some(x), None) => out.push(format!("  {name} {} {ARROW} (none)", fig(x))),
            (None, Some(y)) => out.push(format!("  {name} (none) {ARROW} {}", fig(y))),
            (None, None) => {}
        }
    }
}

fn fig(v: &Value) -> String {
    match (v.as_i64(), v.as_f64()) {
        (Some(i), _) => i.to_string(),
        (None, Some(f)) => num(f),
        _ => v.to_string(),
    }
}

fn results(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["status", "error"] {
        let (x, y) = (a.get(key), b.get(key));
        if x != y {
            out.push(format!("  {key} {} {ARROW} {}", text(x), text(y)));
        }
    }
    let mut equal = Vec::new();
    for split in ["val", "test"] {
        figures(
            &mut out,
            &mut equal,
            &format!("{split}."),
            a.get(split),
            b.get(split),
        );
    }
    let folds = |s: &Value| s.get("folds").and_then(Value::as_array).cloned();
    match (folds(a), folds(b)) {
        (Some(fa), Some(fb)) if fa.len() == fb.len() => {
            for (i, (x, y)) in fa.iter().zip(&fb).enumerate() {
                for split in ["val", "test"] {
                    figures(
                        &mut out,
                        &mut equal,
                        &format!("fold{}.{split}.", i + 1),
                        x.get(split),
                        y.get(split),
                    );
                }
            }
        }
        (None, None) => {}
        (x, y) => {
            let n =
                |f: Option<Vec<Value>>| f.map_or_else(|| "(none)".into(), |v| v.len().to_string());
            out.push(format!("  folds {} {ARROW} {}", n(x), n(y)));
        }
    }
    for key in [
        "epochs_run",
        "best_epoch",
        "samples_per_second",
        "wall_seconds",
    ] {
        match (a.get(key), b.get(key)) {
            (Some(x), Some(y)) if x.is_number() && y.is_number() && x.as_f64() != y.as_f64() => {
                out.push(format!("  {key} {}", change(x, y)));
            }
            (Some(x), Some(y)) if x.is_number() && y.is_number() => {}
            (x, y) if x != y => out.push(format!("  {key} {} {ARROW} {}", text(x), text(y))),
            _ => {}
        }
    }
    for split in ["val", "test"] {
        let m = |s: &Value| {
            s.get(split)
                .and_then(|f| f.get("confusion"))
                .and_then(matrix)
        };
        if let (Some(x), Some(y)) = (m(a), m(b))
            && x != y
        {
            out.push(format!("  {split}.confusion (A | B):"));
            out.extend(side_by_side(&x, &y));
        }
    }
    if !out.is_empty() && !equal.is_empty() {
        out.push(format!("  equal: {}", equal.join(", ")));
    }
    out
}

/// A confusion matrix: rows of counts.
fn matrix(v: &Value) -> Option<Vec<Vec<String>>> {
    v.as_array()?
        .iter()
        .map(|r| {
            r.as_array()?
                .iter()
                .map(|c| c.is_number().then(|| c.to_string()))
                .collect()
        })
        .collect()
}

fn side_by_side(a: &[Vec<String>], b: &[Vec<String>]) -> Vec<String> {
    let w = a
        .iter()
        .chain(b)
        .flatten()
        .map(String::len)
        .max()
        .unwrap_or(1);
    let cols = |m: &[Vec<String>]| m.iter().map(Vec::len).max().unwrap_or(0);
    let row = |m: &[Vec<String>], i: usize, n: usize| -> String {
        let cells: Vec<String> = (0..n)
            .map(|j| {
                let c = m.get(i).and_then(|r| r.get(j)).map_or("", String::as_str);
                format!("{c:>w$}")
            })
            .collect();
        cells.join(" ")
    };
    let (ca, cb) = (cols(a), cols(b));
    (0..a.len().max(b.len()))
        .map(|i| {
            format!("    {}  |  {}", row(a, i, ca), row(b, i, cb))
                .trim_end()
                .to_string()
        })
        .collect()
}
