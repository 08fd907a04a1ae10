//! Experiments you can trust, end to end through the binary: the lock's hashes follow meaning
//! (not layout), `mlx verify` re-runs a run bit for bit and names a changed data file, and a run
//! killed with SIGKILL and resumed ends exactly as the uninterrupted run (single split with
//! early stopping; k-fold with a plateau schedule), even when its latest checkpoint is corrupt.

use crate::run::{json, out_dir, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn mlx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlx"));
    // Wide enough that messages are not wrapped.
    c.current_dir(crate::root()).env("COLUMNS", "400");
    c
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `mlx run ARGS --out OUT -q --no-plot` on `threads` threads, which must succeed: the run
/// directory.
pub(crate) fn run_ok(args: &[&str], out: &Path, threads: &str) -> PathBuf {
    let o = mlx()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .args(["-q", "--no-plot"])
        .env("MLX_THREADS", threads)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    last_line(&o)
}

/// The lines of a run's `metrics.jsonl`, each without its timing (`seconds`).
pub(crate) fn epochs(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

/// The first column of `mlx predict DIR ROWS` (the predicted label of each row).
pub(crate) fn predicted_labels(dir: &Path, rows: &Path) -> Vec<String> {
    let o = mlx().arg("predict").arg(dir).arg(rows).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or("").to_string())
        .collect()
}

pub(crate) fn last_line(o: &Output) -> PathBuf {
    PathBuf::from(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .expect("a last line"),
    )
}

/// The penguins example and its data, copied into `dir` (as `penguins.mlx`, or with `edit`
/// applied to the text), so tests can change them without touching `examples/`.
pub(crate) fn copy_penguins(dir: &Path, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let data = dir.join("data/penguins.csv");
    if !data.exists() {
        std::fs::copy(crate::root().join("examples/data/penguins.csv"), &data).unwrap();
    }
    let text = std::fs::read_to_string(crate::root().join("examples/penguins.mlx")).unwrap();
    let edited = edit(&text);
    let p = dir.join(name);
    std::fs::write(&p, edited).unwrap();
    p
}

pub(crate) fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in the example");
    text.replacen(from, to, 1)
}

fn lock_of(file: &Path, out: &Path) -> Value {
    let (o, dir) = run(
        &[file.to_str().unwrap(), "--set", "epochs=1", "--no-plot"],
        out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    json(&dir.unwrap().join("mlx.lock"))
}

#[test]
fn the_lock_hashes_meaning_not_layout() {
    let work = out_dir("lock");
    let out = work.join("runs");
    let original = copy_penguins(&work, "a.mlx", str::to_string);
    let reformatted = copy_penguins(&work, "b.mlx", |t| {
        let t = replace(
            t,
            "model      = classifier(hidden: 32)",
            "model = classifier( hidden : 32 )   // same",
        );
        let t = replace(&t, "use std.nn\n", "use std.nn\n\n\n// a new comment\n");
        replace(
            &t,
            "  x |> dense(hidden) |> relu",
            "  x\n    |> dense(hidden)   // first layer\n    |> relu",
        )
    });
    let lr = copy_penguins(&work, "c.mlx", |t| {
        replace(t, "adam(lr: 0.01)", "adam(lr: 0.02)")
    });
    let width = copy_penguins(&work, "d.mlx", |t| {
        replace(t, "classifier(hidden: 32)", "classifier(hidden: 48)")
    });
    let a = lock_of(&original, &out);
    assert!(a["program"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(a["seed"], 7);
    assert_eq!(a["mlx"], env!("CARGO_PKG_VERSION"));
    let data = &a["data"][0];
    assert!(Path::new(data["path"].as_str().unwrap()).is_absolute());
    let b = lock_of(&reformatted, &out);
    assert_eq!(a, b, "layout and comments must not change the lock");
    let c = lock_of(&lr, &out);
    assert_ne!(a["program"], c["program"], "a learning rate is meaning");
    assert_eq!(a["data"], c["data"]);
    let d = lock_of(&width, &out);
    assert_ne!(a["program"], d["program"], "a layer width is meaning");
    assert_ne!(c["program"], d["program"]);
    // One byte of the data file: the same program, that file's hash changed.
    let csv = work.join("data/penguins.csv");
    let mut bytes = std::fs::read(&csv).unwrap();
    let at = bytes.iter().position(|b| *b == b'3').unwrap();
    bytes[at] = b'4';
    std::fs::write(&csv, &bytes).unwrap();
    let e = lock_of(&original, &out);
    assert_eq!(a["program"], e["program"]);
    assert_eq!(a["data"][0]["path"], e["data"][0]["path"]);
    assert_ne!(a["data"][0]["sha256"], e["data"][0]["sha256"]);
}

#[test]
fn verify_passes_on_a_fresh_run_and_names_what_changed() {
    let work = out_dir("verify");
    let file = copy_penguins(&work, "penguins.mlx", str::to_string);
    let (o, dir) = run(
        &[file.to_str().unwrap(), "--set", "epochs=6", "--no-plot"],
        &work.join("runs"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = dir.unwrap();
    // The re-run goes to a private, randomly named directory that is removed afterwards; a
    // link planted in the temporary directory is never written through.
    let tmp = work.join("tmp");
    let target = work.join("target");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, tmp.join("mlx-verify-0000000000000000")).unwrap();
    let v = mlx()
        .arg("verify")
        .arg(&dir)
        .arg("-q")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(0), "{report}{}", stderr(&v));
    assert!(report.contains("verified: "), "{report}");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "only the planted link is left: {left:?}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    assert!(report.contains("model.safetensors: identical"), "{report}");
    assert!(report.contains("summary.json: identical"), "{report}");

    // A recorded figure that the re-run does not give: a mismatch naming it.
    let summary_path = dir.join("summary.json");
    let original = std::fs::read(&summary_path).unwrap();
    let mut s = json(&summary_path);
    s["val"]["loss"] = serde_json::json!(0.123);
    std::fs::write(&summary_path, serde_json::to_string_pretty(&s).unwrap()).unwrap();
    let v = mlx().arg("verify").arg(&dir).arg("-q").output().unwrap();
    assert_eq!(v.status.code(), Some(1));
    let err = stderr(&v);
    assert!(err.contains("mlx::verify::mismatch"), "{err}");
    assert!(err.contains("val.loss: recorded 0.123"), "{err}");
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("summary.json: DIFFERS"),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    std::fs::write(&summary_path, original).unwrap();

    // A changed data file: named, and nothing is re-run.
    let csv = work.join("data/penguins.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("Adelie,Dream,40.0,18.0,190,3800,male,2009\n");
    std::fs::write(&csv, text).unwrap();
    let v = mlx().arg("verify").arg(&dir).output().unwrap();
    assert_eq!(v.status.code(), Some(1));
    let err = stderr(&v);
    assert!(err.contains("mlx::lock::data"), "{err}");
    let canonical = std::fs::canonicalize(&csv).unwrap();
    assert!(
        err.contains(&format!("{} has changed", canonical.display())),
        "{err}"
    );
    assert!(err.contains("nothing was re-run"), "{err}");
    assert!(!err.contains("re-running"), "{err}");

    // Nor does an unfinished run resume on changed data.
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let r = mlx().arg("resume").arg(&dir).output().unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = stderr(&r);
    assert!(err.contains("mlx::lock::data"), "{err}");
    assert!(err.contains("nothing was resumed"), "{err}");
}

/// Timing fields measure the machine, not the experiment.
fn without_timing(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("samples_per_second");
        m.remove("wall_seconds");
        m.remove("seconds");
    }
    v
}

fn metrics_lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| without_timing(serde_json::from_str(l).unwrap()))
        .collect()
}

/// Two runs ended alike: figures, epochs, preprocessing and model bytes.
pub(crate) fn assert_same_run(a: &Path, b: &Path) {
    let (sa, sb) = (json(&a.join("summary.json")), json(&b.join("summary.json")));
    assert_eq!(sa["status"], "completed");
    assert_eq!(without_timing(sa), without_timing(sb));
    assert_eq!(metrics_lines(a), metrics_lines(b));
    assert_eq!(
        json(&a.join("preprocess.json")),
        json(&b.join("preprocess.json"))
    );
    let (ma, mb) = (
        std::fs::read(a.join("model.safetensors")).unwrap(),
        std::fs::read(b.join("model.safetensors")).unwrap(),
    );
    assert!(ma == mb, "model.safetensors differ");
}

/// Start `mlx run`, wait until `ready` holds for its metrics lines, then SIGKILL it. Returns
/// the run directory.
pub(crate) fn run_and_kill(args: &[&str], out: &Path, ready: impl Fn(&[Value]) -> bool) -> PathBuf {
    let mut child = mlx()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .args(["-q", "--no-plot"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let dir = std::fs::read_dir(out)
            .ok()
            .and_then(|mut trains| trains.next())
            .and_then(|t| std::fs::read_dir(t.ok()?.path()).ok()?.next())
            .and_then(|r| Some(r.ok()?.path()));
        if let Some(dir) = dir {
            let lines: Vec<Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if ready(&lines) {
                // While the run lives, no other process may write its directory.
                let r = resume(&dir);
                assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
                assert!(stderr(&r).contains("mlx::rundir::locked"), "{}", stderr(&r));
                assert!(
                    stderr(&r).contains(&format!("process {}", child.id())),
                    "the holder is named: {}",
                    stderr(&r)
                );
                child.kill().unwrap(); // SIGKILL
                let status = child.wait().unwrap();
                assert!(!status.success(), "the run ended before it was killed");
                assert!(
                    !dir.join("model.safetensors").exists(),
                    "the run finished before it was killed; make it longer"
                );
                return dir;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be killed; make it longer");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "run hangs");
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub(crate) fn resume(dir: &Path) -> Output {
    mlx()
        .arg("resume")
        .arg(dir)
        .args(["-q", "--no-plot"])
        .output()
        .unwrap()
}

/// Settings that make the penguins example slow enough to kill mid-training: wide and
/// small-batched, checkpoints every 3 epochs (so a resumed run repeats the epochs after the
/// last one).
pub(crate) const SLOW_PENGUINS: [&str; 8] = [
    "--set",
    "model.hidden=256",
    "--set",
    "batch=2",
    "--set",
    "checkpoint=every(3)",
    "--set",
    "early_stop.patience=15",
];

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let work = out_dir("kill");
    let args = [&["examples/penguins.mlx"][..], &SLOW_PENGUINS[..]].concat();
    let (o, reference) = run(&[&args[..], &["--no-plot"]].concat(), &work.join("ref"));
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = reference.unwrap();
    let epochs = json(&reference.join("summary.json"))["epochs_run"]
        .as_u64()
        .unwrap();
    assert!(
        epochs >= 20,
        "the reference run stopped after {epochs} epochs"
    );

    let killed = run_and_kill(&args, &work.join("killed"), |lines| lines.len() >= 5);
    assert!(!killed.join("summary.json").exists());
    eprintln!(
        "killed after {} epochs, checkpoint at epoch {:?}",
        metrics_lines(&killed).len(),
        mlx::train::checkpoint::load(&killed)
            .ok()
            .flatten()
            .map(|c| c.checkpoint.progress.epoch)
    );
    // A resume while another process holds the directory (here: this test) is refused and
    // writes nothing; the lock dies with its holder, so the killed run's is free.
    let before = std::fs::read(killed.join("metrics.jsonl")).unwrap();
    {
        let holder = std::fs::File::options()
            .write(true)
            .open(killed.join("writer.lock"))
            .unwrap();
        holder.lock().unwrap();
        let r = resume(&killed);
        assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
        assert!(stderr(&r).contains("mlx::rundir::locked"), "{}", stderr(&r));
        assert_eq!(std::fs::read(killed.join("metrics.jsonl")).unwrap(), before);
    }
    // A temporary file of a write the kill interrupted is cleaned up by the next writer.
    let stale = killed.join(".checkpoint.safetensors.tmp-99999");
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    let r = resume(&killed);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(last_line(&r), killed);
    assert_same_run(&reference, &killed);
    assert!(!stale.exists());

    // Ctrl-C: the run stops at the end of the epoch with a checkpoint of it (though it
    // checkpoints every 3), says how to resume, exits 130; resumed, it is the same run.
    let out = work.join("interrupted");
    let mut child = mlx()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(&out)
        .args(["-q", "--no-plot"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let interrupted = loop {
        let dir = std::fs::read_dir(out.join("penguins_mlp"))
            .ok()
            .and_then(|mut d| d.find_map(|e| e.ok().map(|e| e.path())))
            .filter(|d| !d.file_name().unwrap().to_string_lossy().starts_with('.'));
        if let Some(dir) = dir
            && metrics_lines(&dir).len() >= 4
        {
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            break dir;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before Ctrl-C"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "run hangs");
        std::thread::sleep(Duration::from_millis(1));
    };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("mlx resume"), "{}", stderr(&o));
    assert_eq!(
        json(&interrupted.join("summary.json"))["status"],
        "interrupted"
    );
    let at = mlx::train::checkpoint::load(&interrupted)
        .unwrap()
        .unwrap()
        .checkpoint
        .progress
        .epoch;
    assert_eq!(
        at,
        metrics_lines(&interrupted).len(),
        "checkpointed at the stop"
    );
    let r = resume(&interrupted);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_same_run(&reference, &interrupted);

    // Resuming a finished run says so and changes nothing, but draws plots it lacks.
    assert!(
        !killed.join("loss.svg").exists(),
        "the runs here are made with --no-plot"
    );
    let drawn = mlx().arg("resume").arg(&killed).arg("-q").output().unwrap();
    assert!(drawn.status.success(), "{}", stderr(&drawn));
    assert!(killed.join("loss.svg").is_file());
    let again = resume(&killed);
    assert!(again.status.success());
    assert!(
        stderr(&again).contains("already completed"),
        "{}",
        stderr(&again)
    );
    assert_same_run(&reference, &killed);
}

#[test]
fn a_killed_kfold_run_with_a_plateau_schedule_resumes_exactly() {
    let work = out_dir("kill-kfold");
    let file = copy_penguins(&work, "kfold.mlx", |t| {
        replace(
            t,
            "split  = random(train: 0.7, val: 0.15, test: 0.15, stratify: true)",
            "split  = kfold(3)",
        )
    });
    let args = [
        file.to_str().unwrap(),
        "--set",
        "model.hidden=256",
        "--set",
        "batch=2",
        "--set",
        "checkpoint=every(2)",
        "--set",
        "schedule=reduce_on_plateau(monitor: val.loss, patience: 2, factor: 0.5)",
    ];
    let (o, reference) = run(&[&args[..], &["--no-plot"]].concat(), &work.join("ref"));
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = reference.unwrap();
    // Killed in the second fold: the first fold's results come from the checkpoint.
    let killed = run_and_kill(&args, &work.join("killed"), |lines| {
        lines.iter().any(|l| l["fold"] == 2)
    });
    let r = resume(&killed);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_same_run(&reference, &killed);
    let s = json(&killed.join("summary.json"));
    assert_eq!(s["folds"].as_array().unwrap().len(), 3);
    // The plateau schedule did cut the rate, so its state mattered.
    let lrs: Vec<f64> = metrics_lines(&killed)
        .iter()
        .map(|l| l["lr"].as_f64().unwrap())
        .collect();
    assert!(lrs.iter().any(|lr| *lr < 0.01), "{lrs:?}");
}

#[test]
fn a_corrupt_latest_checkpoint_falls_back_to_the_previous_one() {
    let work = out_dir("corrupt");
    let (o, reference) = run(
        &["examples/penguins.mlx", "--set", "epochs=12", "--no-plot"],
        &work.join("ref"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = reference.unwrap();
    // The same run as if killed after its last checkpoint, before its final files.
    let dir = work.join("copy");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&reference).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    for f in ["summary.json", "model.safetensors", "preprocess.json"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let latest = dir.join("checkpoint.safetensors");
    let mut bytes = std::fs::read(&latest).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x01;
    std::fs::write(&latest, &bytes).unwrap();
    let r = resume(&dir);
    assert!(r.status.success(), "{}", stderr(&r));
    let err = stderr(&r);
    assert!(err.contains("mlx::rundir::checkpoint"), "{err}");
    assert!(err.contains("content hash does not match"), "{err}");
    assert!(err.contains("checkpoint.prev.safetensors"), "{err}");
    assert_same_run(&reference, &dir);

    // Both corrupt: a diagnostic, nothing resumed.
    for f in ["summary.json", "model.safetensors"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    std::fs::write(&latest, b"not a checkpoint").unwrap();
    std::fs::write(dir.join("checkpoint.prev.safetensors"), b"nor this").unwrap();
    let r = resume(&dir);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("every checkpoint in"), "{}", stderr(&r));
    assert!(!dir.join("summary.json").exists());
}

#[test]
fn resume_and_verify_refuse_what_is_not_a_run() {
    for cmd in ["resume", "verify"] {
        let o = mlx().args([cmd, "no/such/run"]).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert!(
            stderr(&o).contains("mlx::rundir::missing"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
}

/// A directory named like a run id always holds its program and lock: a run set up under a
/// hidden name gets its id only once they are in, so any kill leaves a resumable directory or
/// none (Fashion hashes 30 MB of data for its lock, a window of about 100 ms before).
#[test]
fn every_directory_named_like_a_run_can_be_resumed() {
    if !crate::have_fashion("every_directory_named_like_a_run_can_be_resumed") {
        return;
    }
    let out = out_dir("window");
    // A planted staging directory of a process that is gone is cleaned up.
    let abandoned = out.join("fashion_mlp").join(".partial-999999999-0");
    std::fs::create_dir_all(&abandoned).unwrap();
    let mut child = mlx()
        .args([
            "run",
            "examples/fashion_mlp.mlx",
            "--set",
            "epochs=1",
            "-q",
            "--no-plot",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut seen = 0;
    while seen < 200 {
        if let Ok(entries) = std::fs::read_dir(out.join("fashion_mlp")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(|c: char| c.is_ascii_digit()) {
                    assert!(
                        e.path().join("mlx.lock").is_file() && e.path().join("spec.mlx").is_file(),
                        "{name} is visible without its lock"
                    );
                    seen += 1;
                }
            }
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen > 0, "the run directory never appeared");
    assert!(
        !abandoned.exists(),
        "the abandoned staging directory is removed"
    );
}

#[test]
fn verify_passes_on_a_run_started_with_a_relative_path() {
    // `mlx run examples/penguins.mlx` from the crate root: the data file is named relative
    // to the working directory in the program, by absolute path in the run's spec.mlx.
    let work = out_dir("verify-relative");
    let (o, dir) = run(
        &["examples/penguins.mlx", "--set", "epochs=2", "--no-plot"],
        &work,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v = mlx()
        .arg("verify")
        .arg(dir.unwrap())
        .arg("-q")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(0), "{report}{}", stderr(&v));
    assert!(report.contains("sources.json: identical"), "{report}");
}

/// The trial directories of a sweep directory, sorted.
pub(crate) fn trial_dirs(sweep: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(sweep.join("trials"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|t| std::fs::read_dir(t.path()).into_iter().flatten().flatten())
        .filter(|r| !r.file_name().to_string_lossy().starts_with('.'))
        .map(|r| r.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// A sweep's sweep.json with what differs between two sweeps of one experiment (trial
/// directories, timings) left out.
pub(crate) fn sweep_doc(dir: &Path) -> Value {
    let mut v = json(&dir.join("sweep.json"));
    for t in v["trials"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("dir");
        let s = t["summary"].take();
        t["summary"] = without_timing(s);
    }
    v["best"].as_object_mut().unwrap().remove("dir");
    v
}

#[test]
fn a_killed_sweep_resumes_to_the_same_sweep_json() {
    let work = out_dir("sweep-kill");
    // Six trials, slowed by a small batch so the kill lands inside one of them.
    let args = [&[crate::trials::FILE][..], &crate::trials::ARGS[..]].concat();
    let (o, reference) = run(&args, &work.join("ref"));
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = reference.unwrap();

    // Killed (SIGKILL) while its third or fourth trial trains, chosen by the clock.
    let at = 3
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as usize)
            % 2;
    let out = work.join("killed");
    let mut child = mlx()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let sweep = loop {
        let sweep = std::fs::read_dir(out.join("penguins_search"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| Some(e.ok()?.path()));
        if let Some(s) = &sweep {
            let trials = trial_dirs(s);
            // Counted without parsing a line still being written.
            let lines = |t: &PathBuf| {
                std::fs::read_to_string(t.join("metrics.jsonl"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| serde_json::from_str::<Value>(l).is_ok())
                    .count()
            };
            if trials.len() >= at && trials.last().is_some_and(|t| lines(t) >= 2) {
                break Some(s.clone());
            }
        }
        if started.elapsed() > Duration::from_secs(120) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let sweep = sweep.unwrap_or_else(|| panic!("the sweep never reached trial {at}"));
    assert!(
        !sweep.join("sweep.json").exists(),
        "the sweep finished before it was killed"
    );
    assert!(sweep.join("sweep.mlx").exists());
    let r = resume(&sweep);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(last_line(&r), sweep);
    assert_eq!(sweep_doc(&reference), sweep_doc(&sweep));
    // Every trial is the uninterrupted sweep's, bit for bit, and none was run twice.
    let (a, b) = (trial_dirs(&reference), trial_dirs(&sweep));
    assert_eq!(a.len(), 6);
    assert_eq!(b.len(), 6, "{b:?}");
    for (x, y) in a.iter().zip(&b) {
        assert_same_run(x, y);
    }
    // Resumed again: completed, nothing to do.
    let again = resume(&sweep);
    assert!(again.status.success());
    assert!(
        stderr(&again).contains("mlx::resume::completed"),
        "{}",
        stderr(&again)
    );
}

/// A run ended (as by a kill) just before each of its file-system changes in turn — the
/// staging directory, the lock, every document, each metrics line, each checkpoint's two
/// renames, the publishing rename — always leaves either no run directory or one that
/// `mlx resume` finishes to the uninterrupted result (the crash-test hook MLX_CRASH_AT_STEP
/// stands in for strace-driven kills).
#[test]
fn a_run_ended_at_every_file_system_step_is_resumable_or_absent() {
    let work = out_dir("every-step");
    let args = [
        "examples/penguins.mlx",
        "--set",
        "epochs=3",
        "--set",
        "checkpoint=every(1)",
        "--no-plot",
    ];
    let (o, reference) = run(&args, &work.join("ref"));
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = reference.unwrap();
    let mut resumed = 0;
    for n in 1.. {
        assert!(n < 500, "the run never completed");
        let out = work.join(format!("step-{n}"));
        let o = mlx()
            .arg("run")
            .args(args)
            .arg("--out")
            .arg(&out)
            .arg("-q")
            .env("MLX_CRASH_AT_STEP", n.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            assert!(n > 10, "only {n} steps: the hook is not reached");
            eprintln!(
                "{} file-system steps; {resumed} ended runs left a directory",
                n - 1
            );
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: {}", stderr(&o));
        let dirs: Vec<PathBuf> = std::fs::read_dir(out.join("penguins_mlp"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        assert!(dirs.len() <= 1, "step {n}: {dirs:?}");
        if let Some(d) = dirs.first() {
            let r = resume(d);
            assert!(r.status.success(), "step {n}: {}", stderr(&r));
            assert_same_run(&reference, d);
            resumed += 1;
        }
    }
    assert!(resumed > 5, "only {resumed} ended runs left a directory");
}
