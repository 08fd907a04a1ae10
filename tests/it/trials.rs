//! Sweep trials run by an outside scheduler: `mlx run --trial K --out DIR` in any order (one of
//! them killed mid-run and run again), then `mlx sweep collect DIR`, gives the sweep.json and
//! the trial runs of `mlx run` of the whole sweep in one process, bit for bit; the same through
//! the Ray launcher against a real local Ray cluster, and through the Slurm job-array script.

use crate::reproduce::{assert_same_run, last_line, mlx, stderr, sweep_doc, trial_dirs};

use crate::run::{out_dir, run};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The penguins sweep, slowed by a small batch and checkpointed, so a kill lands mid-run.
pub(crate) const ARGS: [&str; 7] = [
    "--set",
    "batch=4",
    "--set",
    "epochs=25",
    "--set",
    "checkpoint=every(2)",
    "--no-plot",
];
pub(crate) const FILE: &str = "examples/penguins_sweep.mlx";

/// The whole sweep in one process: its sweep directory.
fn reference(work: &Path) -> PathBuf {
    let (o, dir) = run(&[&[FILE][..], &ARGS[..]].concat(), &work.join("ref"));
    assert!(o.status.success(), "{}", stderr(&o));
    dir.unwrap()
}

fn trial(k: usize, out: &Path, crash_at: Option<u32>) -> Output {
    let mut c = mlx();
    c.args(["run", FILE, "--sweep", "penguins_search", "--trial"])
        .arg(k.to_string())
        .arg("--out")
        .arg(out)
        .args(ARGS)
        .arg("-q");
    if let Some(n) = crash_at {
        c.env("MLX_CRASH_AT_STEP", n.to_string());
    }
    c.output().unwrap()
}

fn collect(dir: &Path) -> Output {
    mlx()
        .args(["sweep", "collect", "-q"])
        .arg(dir)
        .output()
        .unwrap()
}

/// Trial 3 of the sweep in `out`, ended (as by SIGKILL: the crash-test hook aborts the
/// process, no destructor runs) while it trains: its directory holds a few epochs and no
/// completed summary.
fn kill_trial_3(out: &Path) {
    let o = trial(3, out, Some(35));
    assert_eq!(o.status.code(), None, "killed by a signal: {}", stderr(&o));
    let dirs = trial_dirs(out);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let lines = std::fs::read_to_string(dirs[0].join("metrics.jsonl")).unwrap();
    assert!(lines.lines().count() >= 2, "killed mid-run: {lines}");
    assert!(!dirs[0].join("summary.json").exists());
}

/// Every trial of two sweep directories: the same run, bit for bit.
fn assert_same_trials(a: &Path, b: &Path) {
    let (a, b) = (trial_dirs(a), trial_dirs(b));
    assert_eq!(a.len(), 6);
    assert_eq!(b.len(), 6, "one directory per trial: {b:?}");
    // Directories are named by start time; match them by their programs.
    for x in &a {
        let spec = std::fs::read_to_string(x.join("spec.mlx")).unwrap();
        let y = b
            .iter()
            .find(|y| std::fs::read_to_string(y.join("spec.mlx")).unwrap() == spec)
            .unwrap_or_else(|| panic!("no trial of {}", x.display()));
        assert_same_run(x, y);
    }
}

#[test]
fn trials_run_apart_and_collected_give_the_one_process_sweep() {
    let work = out_dir("trials");
    let reference = reference(&work);
    let out = work.join("scheduled");

    // Listed for launchers: six trials, numbered as sweep.json numbers them.
    let l = mlx().args(["sweep", "list", FILE]).output().unwrap();
    assert!(l.status.success(), "{}", stderr(&l));
    let listing = String::from_utf8_lossy(&l.stdout).into_owned();
    assert_eq!(listing.lines().count(), 6, "{listing}");
    assert!(
        listing.starts_with("1\toptimizer.lr = 0.003, model.hidden = 16\n"),
        "{listing}"
    );

    kill_trial_3(&out);
    // Collected now: the killed trial is incomplete, the others missing; exit 1, named.
    let c = collect(&out);
    assert_eq!(c.status.code(), Some(1), "{}", stderr(&c));
    let err = stderr(&c);
    assert!(err.contains("mlx::sweep::incomplete"), "{err}");
    assert!(err.contains("6 of 6 trials have not completed"), "{err}");
    assert!(err.contains("trial 3 (incomplete)"), "{err}");
    assert!(err.contains("trial 1 (missing)"), "{err}");
    let partial = crate::run::json(&out.join("sweep.json"));
    assert_eq!(partial["trials"][2]["status"], "incomplete");
    assert_eq!(partial["best"], serde_json::Value::Null);
    // This sweep.json is not a finished sweep's: `mlx resume` of the sweep finishes it.
    let r = crate::reproduce::resume(&out);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(!stderr(&r).contains("already completed"), "{}", stderr(&r));
    assert_eq!(sweep_doc(&reference), sweep_doc(&out));
    std::fs::remove_dir_all(&out).unwrap();

    // Out of order, one killed and run again (it resumes from its checkpoint).
    kill_trial_3(&out);
    for k in [6, 3, 1, 5, 2, 4] {
        let o = trial(k, &out, None);
        assert!(o.status.success(), "trial {k}: {}", stderr(&o));
        assert!(last_line(&o).starts_with(out.join("trials")), "trial {k}");
    }
    let c = collect(&out);
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(last_line(&c), out);
    assert_eq!(sweep_doc(&reference), sweep_doc(&out));
    assert_same_trials(&reference, &out);

    // Idempotent: collected again, the same bytes; a completed trial is not run again.
    let first = std::fs::read(out.join("sweep.json")).unwrap();
    assert!(collect(&out).status.success());
    assert_eq!(first, std::fs::read(out.join("sweep.json")).unwrap());
    let again = trial(2, &out, None);
    assert!(again.status.success());
    assert!(
        stderr(&again).contains("trial 2/6 of sweep `penguins_search` already completed"),
        "{}",
        stderr(&again)
    );
    assert_eq!(trial_dirs(&out).len(), 6);
}

#[test]
fn a_trial_refuses_what_is_not_its_sweep() {
    let work = out_dir("trials-refuse");
    let out = work.join("sweep");
    let no_such = trial(7, &out, None);
    assert_eq!(no_such.status.code(), Some(1));
    let err = stderr(&no_such);
    assert!(err.contains("mlx::run::trial"), "{err}");
    assert!(err.contains("its trials are 1 to 6"), "{err}");
    assert!(
        !out.exists(),
        "nothing is created for a trial that does not exist"
    );

    let o = mlx()
        .args([
            "run",
            FILE,
            "--sweep",
            "penguins_serch",
            "--trial",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("mlx::run::unknown_sweep"), "{err}");
    assert!(err.contains("penguins_search"), "did you mean: {err}");

    // Trial 1 of another experiment (another epoch count) into this sweep's directory.
    assert!(trial(1, &out, None).status.success());
    let other = mlx()
        .args(["run", FILE, "--trial", "1", "--set", "epochs=3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
    let err = stderr(&other);
    assert!(err.contains("mlx::run::out"), "{err}");
    assert!(err.contains("holds the trials of another sweep"), "{err}");

    // A run directory is not a sweep's.
    let run_dir = trial_dirs(&out).remove(0);
    let into_run = trial(2, &run_dir, None);
    assert_eq!(into_run.status.code(), Some(1));
    assert!(
        stderr(&into_run).contains("is a run directory"),
        "{}",
        stderr(&into_run)
    );
    let not_sweep = collect(&work);
    assert_eq!(not_sweep.status.code(), Some(1));
    assert!(
        stderr(&not_sweep).contains("it is not a sweep directory"),
        "{}",
        stderr(&not_sweep)
    );
}

/// The Python with Ray, and the address of a running Ray cluster (`.ci/run` starts one on
/// loopback with `ray start --head` and sets both). Without them the test skips with a notice,
/// unless `MLX_REQUIRE_RAY` is set.
fn ray() -> Option<(String, String)> {
    let python = std::env::var("MLX_RAY_PYTHON").ok();
    let address = std::env::var("RAY_ADDRESS").ok();
    match (python, address) {
        (Some(p), Some(a)) => Some((p, a)),
        _ => {
            assert!(
                std::env::var_os("MLX_REQUIRE_RAY").is_none(),
                "MLX_RAY_PYTHON and RAY_ADDRESS must name a Python with Ray and a running cluster"
            );
            eprintln!(
                "note: skipping the Ray launcher test: set MLX_RAY_PYTHON (a Python with ray) and RAY_ADDRESS (`ray start --head`)"
            );
            None
        }
    }
}

#[test]
fn the_ray_launcher_runs_the_sweep_as_ray_tasks() {
    let Some((python, address)) = ray() else {
        return;
    };
    let work = out_dir("trials-ray");
    let reference = reference(&work);
    let out = work.join("ray");
    // A trial killed before the launcher starts: its Ray task resumes it.
    kill_trial_3(&out);
    let o = std::process::Command::new(python)
        .current_dir(crate::root())
        .arg("scripts/ray_sweep.py")
        .arg(FILE)
        .arg("--out")
        .arg(&out)
        .args(&ARGS[..6])
        .args(["--mlx", env!("CARGO_BIN_EXE_mlx"), "--address", &address])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("6 trials as Ray tasks"), "{err}");
    for k in 1..=6 {
        assert!(err.contains(&format!("trial {k} done: ")), "{err}");
    }
    assert_eq!(sweep_doc(&reference), sweep_doc(&out));
    assert_same_trials(&reference, &out);
}

#[test]
fn the_slurm_script_runs_array_tasks_and_collects() {
    let work = out_dir("trials-slurm");
    let script = crate::root().join("scripts/slurm_sweep.sh");
    // Checked by shellcheck where it is installed (CI installs it).
    match std::process::Command::new("shellcheck")
        .arg(&script)
        .output()
    {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout)),
        Err(_) => {
            assert!(
                std::env::var_os("MLX_REQUIRE_SHELLCHECK").is_none(),
                "shellcheck is not installed"
            );
            eprintln!("note: not shell-checking scripts/slurm_sweep.sh: no shellcheck");
        }
    }
    // Submitting: a stand-in `sbatch` records what it was asked for.
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sbatch = bin.join("sbatch");
    std::fs::write(
        &sbatch,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\necho 4242\n",
            work.join("sbatch.log").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = work.join("sweep");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sh = |env: &[(&str, &str)]| {
        let mut c = std::process::Command::new("bash");
        c.current_dir(crate::root())
            .arg(&script)
            .arg(FILE)
            .arg(&out)
            .args(["--sweep", "penguins_search", "--set", "epochs=6"])
            .env("MLX", env!("CARGO_BIN_EXE_mlx"))
            .env("PATH", &path);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = sh(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = std::fs::read_to_string(work.join("sbatch.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].starts_with("--parsable --array=0-5 "), "{log}");
    assert!(
        lines[0].ends_with("--sweep penguins_search --set epochs=6"),
        "{log}"
    );
    assert!(
        lines[1].contains("--dependency=afterany:4242") && lines[1].contains("MLX_SWEEP_COLLECT=1"),
        "{log}"
    );
    // The array's tasks, as Slurm would start them, then the collecting job.
    for k in 0..6 {
        let o = sh(&[
            ("SLURM_ARRAY_TASK_ID", &k.to_string()),
            ("SLURM_CPUS_PER_TASK", "1"),
        ]);
        assert!(o.status.success(), "task {k}: {}", stderr(&o));
    }
    let c = sh(&[("MLX_SWEEP_COLLECT", "1")]);
    assert!(c.status.success(), "{}", stderr(&c));
    let (o, reference) = run(&[FILE, "--set", "epochs=6", "--no-plot"], &work.join("ref"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sweep_doc(&reference.unwrap()), sweep_doc(&out));
}
