//! `mlx runs DIR`: takes a directory of run directories and gives an aligned table, one row per
//! run or sweep in start order: name, when, status, lock hash, seed, back end, key figures,
//! epochs (run/best) and the path relative to DIR.

use super::scan::{self, Found};
use super::{INPUT, num, parse_run_id, short_hash, when};
use crate::diagnostics::Diagnostic;
use serde_json::Value;
use std::path::Path;

const HEADER: [&str; 9] = [
    "name", "when", "status", "lock", "seed", "backend", "figures", "epochs", "path",
];

struct Row {
    /// The run id's stamp (`None` sorts last), then the path in natural order.
    key: (Option<String>, Vec<(String, u64)>),
    cells: [String; 9],
}

pub fn list(dir: &Path) -> Result<String, Diagnostic> {
    if !dir.exists() {
        return Err(
            Diagnostic::error(INPUT, format!("no such directory: {}", dir.display()))
                .with_help("`mlx run` writes run directories under `runs/` (or its `--out DIR`)"),
        );
    }
    if !dir.is_dir() {
        return Err(Diagnostic::error(
            INPUT,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mut rows: Vec<Row> = scan::find(dir)
        .iter()
        .map(|f| match f {
            Found::Run(p) => run_row(dir, p),
            Found::Sweep(p) => sweep_row(dir, p),
        })
        .collect();
    if rows.is_empty() {
        return Ok(format!("no runs in {}\n", dir.display()));
    }
    rows.sort_by(|a, b| match (&a.key.0, &b.key.0) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.key.1.cmp(&b.key.1)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.key.1.cmp(&b.key.1),
    });
    let header = HEADER.map(String::from);
    Ok(table(
        std::iter::once(&header).chain(rows.iter().map(|r| &r.cells)),
    ))
}

/// Columns padded to their widest cell, two spaces apart; the last is not padded.
fn table<'a>(rows: impl Iterator<Item = &'a [String; 9]> + Clone) -> String {
    let mut widths = [0usize; 9];
    for r in rows.clone() {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let pad = widths[i] - c.chars().count();
                line.push_str(c);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The path relative to DIR with `/` separators (`.` for DIR itself).
fn relative(dir: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(dir).unwrap_or(p);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// The sort key of a row: its run id's stamp, then its path with run-id suffixes compared
/// as numbers (`-2` before `-10`).
fn sort_key(dir: &Path, p: &Path) -> (Option<String>, Vec<(String, u64)>) {
    let stamp = parse_run_id(&file_name(p)).map(|(s, _)| s.to_string());
    let rel = p.strip_prefix(dir).unwrap_or(p);
    let path = rel
        .components()
        .map(|c| {
            let s = c.as_os_str().to_string_lossy().into_owned();
            match parse_run_id(&s) {
                Some((st, n)) => (st.to_string(), n),
                None => (s, 0),
            }
        })
        .collect();
    (stamp, path)
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn figures_text(split: &str, figures: &Value) -> String {
    let f: Vec<String> = scan::key_figures(figures)
        .iter()
        .map(|(k, v)| format!("{k}={}", num(*v)))
        .collect();
    if f.is_empty() {
        "-".into()
    } else {
        format!("{split} {}", f.join(" "))
    }
}

fn run_row(dir: &Path, p: &Path) -> Row {
    let summary = scan::json_or_none(&p.join("summary.json"));
    let lock = scan::json_or_none(&p.join("mlx.lock"));
    let s = |k: &str| summary.as_ref().and_then(|s| s.get(k));
    let l = |k: &str| lock.as_ref().and_then(|l| l.get(k));
    let id = file_name(p);
    let name = text_of(s("train"))
        .or_else(|| p.parent().map(file_name))
        .unwrap_or_default();
    let status = match &summary {
        Some(_) => text_of(s("status")).unwrap_or_else(|| "unknown".into()),
        None => "incomplete".into(),
    };
    let last = scan::last_metrics(p);
    let figures = if scan::has_numbers(s("test")) {
        s("test").map_or_else(|| "-".into(), |f| figures_text("test", f))
    } else if scan::has_numbers(s("val")) {
        s("val").map_or_else(|| "-".into(), |f| figures_text("val", f))
    } else {
        match last.as_ref() {
            Some(m) if scan::has_numbers(m.get("val")) => {
                let fold = m
                    .get("fold")
                    .and_then(Value::as_u64)
                    .map_or_else(String::new, |f| format!("fold {f} "));
                let epoch = m.get("epoch").and_then(Value::as_u64).unwrap_or(0);
                let label = format!("{fold}epoch {epoch} val");
                m.get("val")
                    .map_or_else(|| "-".into(), |f| figures_text(&label, f))
            }
            _ => "-".into(),
        }
    };
    let epochs = match (text_of(s("epochs_run")), text_of(s("best_epoch"))) {
        (Some(r), Some(b)) => format!("{r}/{b}"),
        (Some(r), None) => format!("{r}/-"),
        _ => last
            .as_ref()
            .and_then(|m| m.get("epoch"))
            .and_then(Value::as_u64)
            .map_or_else(|| "-".into(), |e| format!("{e}/-")),
    };
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    Row {
        key: sort_key(dir, p),
        cells: [
            name,
            dash(when(&id)),
            status,
            dash(lock.as_ref().and_then(short_hash)),
            dash(text_of(s("seed")).or_else(|| text_of(l("seed")))),
            dash(text_of(s("backend")).or_else(|| text_of(l("backend")))),
            figures,
            epochs,
            relative(dir, p),
        ],
    }
}

/// The one value every trial's summary has for `key`, if they agree.
fn common(trials: &[Value], key: &str) -> Option<String> {
    let mut values = trials
        .iter()
        .map(|t| text_of(t.get("summary").and_then(|s| s.get(key))));
    let first = values.next()??;
    values
        .all(|v| v.as_deref() == Some(first.as_str()))
        .then_some(first)
}

fn sweep_row(dir: &Path, p: &Path) -> Row {
    let doc = scan::json_or_none(&p.join("sweep.json"));
    let d = |k: &str| doc.as_ref().and_then(|s| s.get(k));
    let id = file_name(p);
    let name = text_of(d("sweep"))
        .or_else(|| p.parent().map(file_name))
        .unwrap_or_default();
    let trials: Vec<Value> = d("trials")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let objective = text_of(d("objective")).unwrap_or_else(|| "objective".into());
    let best = d("best").filter(|b| !b.is_null());
    let figures = match (&doc, best) {
        (None, _) => "-".into(),
        (Some(_), None) => format!("no best {objective} ({} trials)", trials.len()),
        (Some(_), Some(b)) => {
            let v = b
                .get("objective")
                .and_then(Value::as_f64)
                .map_or_else(|| "-".into(), num);
            let t = text_of(b.get("trial")).unwrap_or_else(|| "?".into());
            format!("best {objective}={v} (trial {t} of {})", trials.len())
        }
    };
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    Row {
        key: sort_key(dir, p),
        cells: [
            name,
            dash(when(&id)),
            if doc.is_some() {
                "completed".into()
            } else {
                "incomplete".into()
            },
            "-".into(),
            dash(common(&trials, "seed")),
            dash(common(&trials, "backend")),
            figures,
            "-".into(),
            relative(dir, p),
        ],
    }
}
