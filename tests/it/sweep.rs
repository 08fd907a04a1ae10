//! Sweeps and plots through the binary: the penguins sweep runs its six trials and names the
//! best, with the same objectives whether trials run one or three at a time; an invalid grid
//! point stops `mlx run` before any trial; runs and sweeps draw their plots unless told not to.

use crate::run::{json, out_dir};
use serde_json::Value;
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

fn objectives(sweep: &Value) -> Vec<(u64, Value, Value)> {
    sweep["trials"]
        .as_array()
        .expect("trials")
        .iter()
        .map(|t| {
            (
                t["trial"].as_u64().unwrap(),
                t["point"].clone(),
                t["objective"].clone(),
            )
        })
        .collect()
}

#[test]
fn the_penguins_sweep_names_its_best_and_parallel_trials_agree() {
    let out = out_dir("sweep");
    let sequential = ["examples/penguins_sweep.mlx", "--set", "epochs=8", "-q"];
    let (o1, d1) = mlx_run(&[&sequential[..], &["--no-plot"]].concat(), &out.join("j1"));
    assert!(o1.status.success(), "{}", stderr(&o1));
    let s1 = json(&d1.unwrap().join("sweep.json"));
    // Three at a time, with the end-of-sweep table and per-trial lines on standard error.
    let (o3, d3) = mlx_run(
        &[
            "examples/penguins_sweep.mlx",
            "--set",
            "epochs=8",
            "--jobs",
            "3",
        ],
        &out.join("j3"),
    );
    assert!(o3.status.success(), "{}", stderr(&o3));
    let d3 = d3.unwrap();
    let s3 = json(&d3.join("sweep.json"));

    let t1 = objectives(&s1);
    assert_eq!(t1.len(), 6);
    assert_eq!(
        t1.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6],
        "trials are listed in trial order"
    );
    assert!(t1.iter().all(|t| t.2.is_number()), "{t1:?}");
    assert_eq!(
        t1,
        objectives(&s3),
        "--jobs 3 must give what --jobs 1 gives"
    );
    assert_eq!(s1["best"], {
        let mut b = s3["best"].clone();
        b["dir"] = s1["best"]["dir"].clone();
        b
    });
    let best = s1["best"]["trial"].as_u64().expect("a best trial");
    let best_value = s1["best"]["objective"].as_f64().unwrap();
    assert!(
        t1.iter().all(|t| t.2.as_f64().unwrap() <= best_value),
        "{t1:?}"
    );
    // Each trial is a normal run directory.
    for t in s3["trials"].as_array().unwrap() {
        let dir = PathBuf::from(t["dir"].as_str().unwrap());
        assert!(dir.join("model.safetensors").is_file(), "{}", dir.display());
        assert!(dir.join("loss.svg").is_file(), "{}", dir.display());
    }

    let err = stderr(&o3);
    for i in 1..=6 {
        assert!(
            err.contains(&format!("trial {i}/6 started: ")),
            "trial {i}: {err}"
        );
        assert!(
            err.contains(&format!("trial {i}/6 finished: val.accuracy ")),
            "trial {i}: {err}"
        );
    }
    assert!(err.contains(&format!("best: trial {best}")), "{err}");
    // The sweep's own plot, drawn at the end.
    assert!(d3.join("objective.svg").is_file());
}

#[test]
fn an_invalid_grid_point_fails_before_any_trial() {
    let out = out_dir("sweep-invalid");
    let (o, _) = mlx_run(&["tests/ui/sweep/invalid_grid_point.mlx", "-q"], &out);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("mlx::value::range"), "{err}");
    assert!(
        err.contains("sweep point 2 of 2: optimizer.lr = 0.0"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "no run directory may be created"
    );
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
