//! Plots through the binary: runs and sweeps draw their plots unless told not to.

use crate::run::out_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mlx_run(args: &[&str], out: &Path) -> (Output, Option<PathBuf>) {
    let o = Command::new(env!("CARGO_BIN_EXE_mlx"))
        .current_dir(crate::root())
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run mlx");
    let dir = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .map(PathBuf::from);
    (o, dir)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn runs_draw_their_plots_unless_told_not_to() {
    let out = out_dir("plots");
    let (o, dir) = mlx_run(&["examples/penguins.mlx", "--set", "epochs=4", "-q"], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = dir.unwrap();
    let svg = std::fs::read_to_string(dir.join("loss.svg")).expect("loss.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(dir.join("confusion.svg").is_file());
    let (o, dir) = mlx_run(
        &[
            "examples/penguins.mlx",
            "--set",
            "epochs=4",
            "-q",
            "--no-plot",
        ],
        &out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dir.unwrap().join("loss.svg").exists());
    // A sweep draws its objective and every trial's curves.
    let (o, dir) = mlx_run(
        &["examples/penguins_sweep.mlx", "--set", "epochs=2", "-q"],
        &out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = dir.unwrap();
    assert!(dir.join("objective.svg").is_file());
    let trials = crate::run::json(&dir.join("sweep.json"));
    for t in trials["trials"].as_array().unwrap() {
        let trial = PathBuf::from(t["dir"].as_str().unwrap());
        assert!(trial.join("loss.svg").is_file(), "{}", trial.display());
    }
}
