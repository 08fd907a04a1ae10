//! Run history: takes run directories (`summary.json`, `mlx.lock`, `spec.mlx`,
//! `metrics.jsonl`, `sweep.json`) and gives the `mlx runs` table and the `mlx compare` report
//! (what differs in meaning, data and results). Shared here: file reading with
//! `mlx::history::input` errors, run-id times and number formatting.

mod compare;
mod list;
mod program;
mod scan;

use crate::diagnostics::Diagnostic;
use std::path::Path;

/// The code of every error about an unreadable or malformed run directory or file.
pub const INPUT: &str = "mlx::history::input";

/// The table `mlx runs DIR` prints.
pub fn list(dir: &Path) -> Result<String, Diagnostic> {
    list::list(dir)
}

/// The report `mlx compare A B` prints.
pub fn compare(a: &Path, b: &Path) -> Result<String, Diagnostic> {
    compare::compare(a, b)
}

/// The text of a file, or an error naming it.
fn read_text(path: &Path) -> Result<String, Diagnostic> {
    std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(
            INPUT,
            format!(
                "cannot read {}: {}",
                path.display(),
                crate::data::csv::io_message(&e)
            ),
        )
    })
}

/// The start time in a run id `YYYYMMDD-HHMMSS[-N]`: the sortable stamp `YYYYMMDD-HHMMSS` and
/// the suffix `N` (0 when absent); `None` when the name is not a run id.
fn parse_run_id(id: &str) -> Option<(&str, u64)> {
    let stamp = id.get(..15)?;
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..8) && b[8] == b'-' && digits(9..15)) {
        return None;
    }
    let rest = &id[15..];
    if rest.is_empty() {
        return Some((stamp, 0));
    }
    let n = rest.strip_prefix('-')?;
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((stamp, n.parse().ok()?))
}

/// A run id's start time as `2026-11-22 14:28:57` (UTC, as the id was written).
fn when(id: &str) -> Option<String> {
    let (s, _) = parse_run_id(id)?;
    Some(format!(
        "{}-{}-{} {}:{}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    ))
}

/// A figure for people: four decimals, one above 1000, scientific when tiny or huge.
fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !v.is_finite() {
        format!("{v}")
    } else if !(1e-3..1e7).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests;
