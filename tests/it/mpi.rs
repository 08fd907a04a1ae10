//! Data-parallel training over real MPI jobs (feature `mpi`; `.ci/run` installs Open MPI and
//! runs these with `cargo test --features mpi --test it mpi`): `mpirun -np 2` and `-np 3`
//! (oversubscribed on a 2-core machine) train penguins and the Fashion MLP exactly as one
//! process does; a rank killed mid-run ends the job with a diagnostic naming it, and
//! `mlx resume` under mpirun (on another number of ranks) then finishes the run exactly.

use crate::reproduce::{assert_same_run, last_line, mlx, stderr};
use crate::run::out_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `mpirun -np N` with what a container and a 2-core machine need: root allowed, more ranks
/// than cores, loopback only. `MLX_MPIRUN` names another launcher.
fn mpirun(n: usize) -> Command {
    let launcher = std::env::var("MLX_MPIRUN").unwrap_or_else(|_| "mpirun".into());
    let mut c = Command::new(launcher);
    c.current_dir(crate::root())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .env("OMPI_MCA_btl", "self,vader,tcp")
        .env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("OMPI_MCA_oob_tcp_if_include", "lo")
        .env("COLUMNS", "400")
        .args(["-np", &n.to_string()]);
    c
}

/// Run `cmd` to its end, failing the test if it takes longer than `limit`.
fn finish(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun (apt-get install openmpi-bin libopenmpi-dev)");
    let id = child.id();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    loop {
        if let Ok(o) = rx.recv_timeout(Duration::from_millis(200)) {
            return o.unwrap();
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!("the MPI job hangs after {limit:?}");
        }
    }
}

fn run_np(n: usize, file: &str, sets: &[&str], out: &Path) -> Output {
    let mut c = mpirun(n);
    c.arg(env!("CARGO_BIN_EXE_mlx")).args(["run", file]);
    for s in sets {
        c.args(["--set", s]);
    }
    c.args(["-q", "--no-plot", "--out"]).arg(out);
    finish(c, Duration::from_secs(600))
}

fn run_one(file: &str, sets: &[&str], out: &Path) -> PathBuf {
    let mut c = mlx();
    c.args(["run", file]);
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c
        .args(["-q", "--no-plot", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    last_line(&o)
}

fn same_on_ranks(name: &str, file: &str, sets: &[&str]) {
    let out = out_dir(name);
    let one = run_one(file, sets, &out.join("one"));
    for n in [2, 3] {
        let o = run_np(n, file, sets, &out.join(format!("np{n}")));
        assert!(o.status.success(), "-np {n}: {}", stderr(&o));
        // Rank 0 alone prints (and writes) the run.
        let lines = String::from_utf8_lossy(&o.stdout).lines().count();
        assert_eq!(lines, 1, "{}", String::from_utf8_lossy(&o.stdout));
        let dir = last_line(&o);
        assert_same_run(&one, &dir);
        let runs = std::fs::read_dir(dir.parent().unwrap()).unwrap().count();
        assert_eq!(runs, 1, "one run directory");
    }
}

#[test]
fn mpi_ranks_train_penguins_like_one_process() {
    same_on_ranks(
        "mpi-penguins",
        "examples/penguins.mlx",
        &["shards=6", "epochs=2"],
    );
}

#[test]
fn mpi_ranks_train_the_fashion_mlp_like_one_process() {
    if !crate::have_fashion("the Fashion MLP over MPI") {
        return;
    }
    same_on_ranks(
        "mpi-fashion",
        "examples/fashion_mlp.mlx",
        &["shards=6", "epochs=2"],
    );
}

#[test]
fn a_killed_rank_ends_the_job_and_resume_under_mpirun_finishes_the_run() {
    let out = out_dir("mpi-killed");
    let file = "examples/penguins.mlx";
    let sets = ["shards=4", "epochs=25"];
    let reference = run_one(file, &sets, &out.join("one"));
    // Rank 1 aborts (as a kill ends it) before its 35th change to the file system, in the
    // middle of the run; mpirun ends rank 0.
    let mut c = mpirun(2);
    c.args([
        "sh",
        "-c",
        "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then export MLX_CRASH_AT_STEP=35; fi; exec \"$@\"",
        "sh",
    ])
    .arg(env!("CARGO_BIN_EXE_mlx"))
    .args(["run", file]);
    for s in sets {
        c.args(["--set", s]);
    }
    c.args(["-q", "--no-plot", "--out"]).arg(out.join("np2"));
    let o = finish(c, Duration::from_secs(300));
    assert!(!o.status.success(), "the job survived its rank's death");
    let err = stderr(&o);
    assert!(err.contains("rank 1"), "the dead rank is named: {err}");
    let train = out.join("np2/penguins_mlp");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&train)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];
    assert!(
        !dir.join("model.safetensors").exists(),
        "the run finished before its rank died"
    );
    // Resumed on three ranks: the same run as one process.
    let mut c = mpirun(3);
    c.arg(env!("CARGO_BIN_EXE_mlx"))
        .arg("resume")
        .arg(dir)
        .args(["-q", "--no-plot"]);
    let r = finish(c, Duration::from_secs(300));
    assert!(r.status.success(), "{}", stderr(&r));
    assert_same_run(&reference, dir);
}

#[test]
fn a_failing_rank_ends_the_job_with_its_diagnostic() {
    // No `shards`: every rank refuses to train; the job ends, naming the failure.
    let out = out_dir("mpi-refused");
    let o = run_np(2, "examples/penguins.mlx", &["epochs=1"], &out);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("mlx::mpi::shards"), "{err}");
    assert!(err.contains("does not set `shards`"), "{err}");
    assert!(err.contains("mlx::mpi::job"), "{err}");
    // Whichever rank aborts first names itself (the abort ends the other).
    assert!(
        err.contains("rank 0 of 2 failed") || err.contains("rank 1 of 2 failed"),
        "{err}"
    );
    // Rank 0 alone prints the warnings every rank finds (if it gets that far before another
    // rank's abort ends it).
    assert!(err.matches("mlx::train::patience").count() <= 1, "{err}");
    // Commands other than run, resume and check would run once per rank: refused.
    let mut c = mpirun(2);
    c.arg(env!("CARGO_BIN_EXE_mlx")).args(["runs"]).arg(&out);
    let o = finish(c, Duration::from_secs(120));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("mlx::mpi::job"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("other commands run without it"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
}
