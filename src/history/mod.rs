//! Run history: `mlx runs` lists run directories, `mlx compare` shows what differs between two
//! runs in meaning (spec), data (lock hashes) and results (being written).

use crate::diagnostics::Diagnostic;
use std::path::Path;

/// The table `mlx runs DIR` prints.
pub fn list(dir: &Path) -> Result<String, Diagnostic> {
    Err(Diagnostic::error(
        "mlx::history::todo",
        format!("listing {} is not implemented yet", dir.display()),
    ))
}

/// The report `mlx compare A B` prints.
pub fn compare(a: &Path, b: &Path) -> Result<String, Diagnostic> {
    Err(Diagnostic::error(
        "mlx::history::todo",
        format!(
            "comparing {} and {} is not implemented yet",
            a.display(),
            b.display()
        ),
    ))
}
