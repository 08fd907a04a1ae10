//! Ctrl-C during training: takes SIGINT and gives the training loop a flag to stop at the
//! next safe point (the end of the current epoch, where a checkpoint is written). A second
//! Ctrl-C ends the process at once with status 130; the last checkpoint is still there.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The diagnostic code of a run stopped by Ctrl-C (exit status 130).
pub const CODE: &str = "mlx::run::interrupted";

/// Handle SIGINT from now on (for `mlx run` and `mlx resume`).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: stopping at the end of this epoch with a checkpoint (Ctrl-C again to stop now)"
        );
    });
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
