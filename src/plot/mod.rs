//! Plots of runs and sweeps as SVG files in their directories (being written).

use crate::diagnostics::Diagnostic;
use std::path::{Path, PathBuf};

/// Plots for a run directory (or a sweep directory); returns the files written.
pub fn plot(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    Err(Diagnostic::error(
        "mlx::plot::todo",
        format!("plotting {} is not implemented yet", dir.display()),
    ))
}
