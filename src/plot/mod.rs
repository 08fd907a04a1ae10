//! Plots of runs and sweeps: takes a run directory (or a sweep directory), writes SVG files into
//! it (learning curves, a confusion matrix; a sweep's objective and every trial's plots) and
//! gives their paths.

pub(crate) mod chart;
mod confusion;
mod curves;
mod lines;
mod read;
mod sweep;
#[cfg(test)]
mod tests;

use crate::diagnostics::Diagnostic;
use crate::rundir;
use read::INPUT;
use std::path::{Path, PathBuf};

/// Plots for a run directory (or a sweep directory); returns the files written.
pub fn plot(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if !dir.exists() {
        return Err(
            Diagnostic::error(INPUT, format!("there is no directory {}", dir.display()))
                .with_help("give the run directory that `mlx run` printed as its last line"),
        );
    }
    if !dir.is_dir() {
        return Err(Diagnostic::error(
            INPUT,
            format!("{} is a file, not a run directory", dir.display()),
        )
        .with_help("give the run directory that `mlx run` printed as its last line"));
    }
    if dir.join(rundir::SWEEP).is_file() {
        return plot_sweep(dir);
    }
    if is_run(dir) {
        return plot_run(dir);
    }
    let mut d = Diagnostic::error(
        INPUT,
        format!(
            "{} is not a run directory: it has neither metrics.jsonl nor summary.json (nor a sweep's sweep.json)",
            dir.display()
        ),
    );
    let inside = runs_inside(dir);
    if let Some(first) = inside.first() {
        d = d.with_help(format!(
            "it holds {} run director{}; plot one of them, e.g. `mlx plot {}`",
            inside.len(),
            if inside.len() == 1 { "y" } else { "ies" },
            first.display()
        ));
    }
    Err(d)
}

fn is_run(dir: &Path) -> bool {
    dir.join(rundir::METRICS).is_file() || dir.join(rundir::SUMMARY).is_file()
}

/// Run or sweep directories directly inside `dir`, sorted (the newest run ids last).
fn runs_inside(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && (is_run(p) || p.join(rundir::SWEEP).is_file()))
        .collect();
    out.sort();
    out.reverse();
    out
}

/// Writes `text` to `dir/name` atomically and records the path.
fn write(dir: &Path, name: &str, text: &str, out: &mut Vec<PathBuf>) -> Result<(), Diagnostic> {
    let path = dir.join(name);
    crate::rundir::write_atomic(&path, text.as_bytes()).map_err(|e| {
        Diagnostic::error(
            "mlx::run::io",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    out.push(path);
    Ok(())
}

fn plot_run(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let summary = read::summary(dir)?;
    let epochs = read::metrics(dir)?;
    let mut out = Vec::new();
    for (name, chart) in curves::charts(summary.as_ref(), &epochs, &read::dir_name(dir)) {
        write(dir, &name, &chart.render()?, &mut out)?;
    }
    if let Some(s) = &summary
        && let Some((split, m)) = &s.confusion
    {
        let train = s.train.as_deref();
        let classes = read::class_names(dir, m.len());
        let run = train.map_or_else(|| read::dir_name(dir), str::to_string);
        let (title, subtitle) = confusion::captions(&run, split, m);
        let svg = confusion::render(&title, &subtitle, &classes, m)?;
        write(dir, "confusion.svg", &svg, &mut out)?;
    }
    Ok(out)
}

fn plot_sweep(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let s = read::sweep(dir)?;
    let mut out = Vec::new();
    if let Some(svg) = sweep::render(&s)? {
        write(dir, "objective.svg", &svg, &mut out)?;
    }
    for t in &s.trials {
        // A trial that cannot be found or read is left out; the others are still drawn.
        if let Some(trial_dir) = trial_dir(dir, t.dir.as_deref())
            && let Ok(files) = plot_run(&trial_dir)
        {
            out.extend(files);
        }
    }
    Ok(out)
}

/// Where a trial's run directory is: as recorded, or, when the sweep directory was moved, at
/// the same place under `trials/` of this sweep directory.
fn trial_dir(sweep: &Path, recorded: Option<&Path>) -> Option<PathBuf> {
    let recorded = recorded?;
    let direct = if recorded.is_absolute() {
        recorded.to_path_buf()
    } else {
        sweep.join(recorded)
    };
    if is_run(&direct) {
        return Some(direct);
    }
    // .../trials/<train>/<run-id>
    let parts: Vec<_> = recorded.components().rev().take(2).collect();
    if let [id, train] = parts.as_slice() {
        let moved = sweep
            .join("trials")
            .join(train.as_os_str())
            .join(id.as_os_str());
        if is_run(&moved) {
            return Some(moved);
        }
    }
    None
}

/// Draw the plots of a finished run or sweep; a failure is only a warning, never the run's.
pub fn warning(dir: &std::path::Path) -> Option<crate::diagnostics::Diagnostic> {
    let d = plot(dir).err()?;
    Some(
        crate::diagnostics::Diagnostic::warning(
            "mlx::plot::failed",
            format!(
                "the plots of {} were not drawn: {}",
                dir.display(),
                d.message
            ),
        )
        .with_help(format!("try again with `mlx plot {}`", dir.display())),
    )
}
