//! The one integration-test binary: UI diagnostics, examples, fuzzing, CLI and tidy rules.
// Test helpers may unwrap: a panic in a test is a failing test, which is the point.
#![allow(clippy::unwrap_used)]

mod cli;
mod codes;
mod examples;
mod explain;
mod export;
mod fuzz;
mod layers;
mod monitor;
#[cfg(feature = "mpi")]
mod mpi;
mod objectives;
mod parallel;
mod reproduce;
mod run;
mod serve;
mod sources;
mod streaming;
mod sweep;
mod tidy;
mod trees;
mod trials;
mod ui;

/// Where the Debian package `dataset-fashion-mnist` puts its files.
pub const FASHION: &str = "/usr/share/datasets/fashion-mnist";

/// Whether Fashion-MNIST is installed. Without it, tests that need it print a notice and
/// skip, unless `MLX_REQUIRE_DATA` is set (CI sets it), where its absence fails them.
pub fn have_fashion(what: &str) -> bool {
    if std::path::Path::new(FASHION).exists() {
        return true;
    }
    assert!(
        std::env::var_os("MLX_REQUIRE_DATA").is_none(),
        "{what} needs {FASHION} (apt-get install -y dataset-fashion-mnist)"
    );
    eprintln!(
        "note: skipping {what}: {FASHION} is not installed (apt-get install -y dataset-fashion-mnist)"
    );
    false
}

/// The repository root (tests run with it as the working directory).
pub fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
