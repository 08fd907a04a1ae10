//! `mlx runs DIR`: takes a directory of run directories and gives an aligned table, one row per
//! run or sweep in start order: name, when, status, lock hash, seed, back end, key figures,
//! epochs (run/best) and the path relative to DIR.

use super::scan::{self, Found};
use super::{INPUT, num, parse_run_id, when};
use crate::diagnostics::Diagnostic;
use crate::rundir::{self, Figures, Lock, Status, Summary, SweepDoc, TrialEntry};
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

fn figures_text(split: &str, figures: &Figures) -> String {
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
    let run = scan::run_dir(p);
    let summary: Option<Summary> = run.summary().ok();
    let lock: Option<Lock> = run.lock().ok();
    let id = file_name(p);
    let name = summary
        .as_ref()
        .map(|s| s.train.clone())
        .filter(|t| !t.is_empty())
        .or_else(|| p.parent().map(file_name))
        .unwrap_or_default();
    let status = match &summary {
        Some(s) => s.status.map_or("unknown", Status::name).to_string(),
        None => "incomplete".into(),
    };
    let last = run.last_metrics();
    let test = summary.as_ref().and_then(|s| s.test.as_ref());
    let val = summary.as_ref().and_then(|s| s.val.as_ref());
    let figures = if scan::has_numbers(test) {
        test.map_or_else(|| "-".into(), |f| figures_text("test", f))
    } else if scan::has_numbers(val) {
        val.map_or_else(|| "-".into(), |f| figures_text("val", f))
    } else {
        match last.as_ref() {
            Some(m) if scan::has_numbers(m.val.as_ref()) => {
                let fold = m.fold.map_or_else(String::new, |f| format!("fold {f} "));
                let label = format!("{fold}epoch {} val", m.epoch.unwrap_or(0));
                m.val
                    .as_ref()
                    .map_or_else(|| "-".into(), |f| figures_text(&label, f))
            }
            _ => "-".into(),
        }
    };
    let s = summary.as_ref();
    let epochs = match (s.and_then(|s| s.epochs_run), s.and_then(|s| s.best_epoch)) {
        (Some(r), Some(b)) => format!("{r}/{b}"),
        (Some(r), None) => format!("{r}/-"),
        _ => last
            .as_ref()
            .and_then(|m| m.epoch)
            .map_or_else(|| "-".into(), |e| format!("{e}/-")),
    };
    let seed = s
        .and_then(|s| s.seed)
        .or(lock.as_ref().map(|l| l.seed))
        .map(|x| x.to_string());
    let backend = s
        .and_then(|s| s.backend.clone())
        .or(lock.as_ref().map(|l| l.backend.clone()));
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    Row {
        key: sort_key(dir, p),
        cells: [
            name,
            dash(when(&id)),
            status,
            dash(lock.as_ref().map(Lock::short_hash)),
            dash(seed),
            dash(backend),
            figures,
            epochs,
            relative(dir, p),
        ],
    }
}

/// The one value every trial's summary has, if they agree.
fn common<T: PartialEq + ToString>(
    trials: &[TrialEntry],
    key: impl Fn(&Summary) -> Option<T>,
) -> Option<String> {
    let mut values = trials.iter().map(|t| t.summary.as_ref().and_then(&key));
    let first = values.next()??;
    values
        .all(|v| v.as_ref() == Some(&first))
        .then(|| first.to_string())
}

fn sweep_row(dir: &Path, p: &Path) -> Row {
    let doc: Option<SweepDoc> = rundir::read_doc(&p.join(rundir::SWEEP)).ok();
    let id = file_name(p);
    let name = doc
        .as_ref()
        .map(|d| d.sweep.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| p.parent().map(file_name))
        .unwrap_or_default();
    let trials: &[TrialEntry] = doc.as_ref().map_or(&[], |d| d.trials.as_slice());
    let objective = doc
        .as_ref()
        .map(|d| d.objective.clone())
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| "objective".into());
    let figures = match doc.as_ref().map(|d| d.best.as_ref()) {
        None => "-".into(),
        Some(None) => format!("no best {objective} ({} trials)", trials.len()),
        Some(Some(b)) => {
            let v = b.objective.map_or_else(|| "-".into(), num);
            format!(
                "best {objective}={v} (trial {} of {})",
                b.trial,
                trials.len()
            )
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
            dash(common(trials, |s| s.seed)),
            dash(common(trials, |s| s.backend.clone())),
            figures,
            "-".into(),
            relative(dir, p),
        ],
    }
}
