//! Diagnostic codes raised after checking (by `mlx run`, `eval`, `predict`, `serve`, `resume`,
//! `verify`, `runs`, `compare`) or before any file is parsed (`mlx check` of a path that is not
//! a readable file): each provoked through the binary and asserted by its exit status and code,
//! so the tidy rule that every code is tested holds for codes no `tests/ui` case can reach.

use crate::run::{out_dir, run};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn mlx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlx"));
    c.current_dir(crate::root());
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert that `o` ended with `status` and that its standard error names `code`.
fn assert_code(o: &Output, status: i32, code: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(status),
        "expected exit {status} with {code}:\n{err}"
    );
    assert!(err.contains(code), "expected {code}:\n{err}");
}

/// One completed penguins run (one epoch), shared by the tests that only read it.
fn penguins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = out_dir("codes-penguins");
        let (o, dir) = run(
            &["examples/penguins.mlx", "--set", "epochs=1", "--no-plot"],
            &out,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        dir.expect("run dir")
    })
}

/// A copy of the shared penguins run, for a test that changes it.
fn penguins_copy(name: &str) -> PathBuf {
    let to = out_dir(name).join("run");
    copy_dir(penguins(), &to);
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Run `cmd` to its end, killing it (and failing) if it runs past `limit`: a command that
/// should refuse to start may, when broken, serve or train forever.
fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mlx");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}:\n{}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

#[test]
fn check_of_a_missing_file_or_a_directory_is_unreadable() {
    let o = mlx()
        .args(["check", "tests/ui/no_such_case.mlx"])
        .output()
        .unwrap();
    assert_code(&o, 1, "mlx::file::unreadable");
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    let o = mlx().args(["check", "tests/ui"]).output().unwrap();
    assert_code(&o, 1, "mlx::file::unreadable");
    assert!(stderr(&o).contains("directory"), "{}", stderr(&o));
}

#[test]
fn patience_not_below_epochs_is_a_warning_that_check_passes() {
    let o = mlx()
        .args(["check", "tests/ui/train/patience_not_below_epochs.mlx"])
        .output()
        .unwrap();
    assert_code(&o, 0, "mlx::train::patience");
}

#[test]
fn a_file_that_only_imports_trains_has_nothing_to_run() {
    let out = out_dir("codes-nothing");
    let file = out.join("only_imports.mlx");
    let penguins = crate::root().join("examples/penguins.mlx");
    std::fs::write(&file, format!("use \"{}\"\n", penguins.display())).unwrap();
    let (o, _) = run(&[file.to_str().unwrap(), "--no-plot"], &out.join("runs"));
    assert_code(&o, 1, "mlx::run::nothing");
    assert!(
        !out.join("runs/penguins_mlp").exists(),
        "an imported train ran"
    );
}

#[test]
fn eval_of_a_run_whose_rows_all_trained_has_no_test() {
    let out = out_dir("codes-no-test");
    let file = out.join("all_rows.mlx");
    let data = crate::root().join("examples/data/penguins.csv");
    std::fs::write(
        &file,
        format!(
            r#"use std.nn

dataset penguins {{
  source = csv("{}", missing: "NA")
  split  = random(train: 1.0)
  features {{
    bill_length_mm: Float    = impute(median) |> standardize
    body_mass_g:    Float    = impute(mean) |> standardize
    island:         Category = one_hot
  }}
  target species: Class[3]
}}

model mlp(x: Float[B, F]) -> Float[B, C] {{
  x |> dense(16) |> relu |> dense(C)
}}

train all_rows {{
  model     = mlp
  data      = penguins
  loss      = cross_entropy
  optimizer = adam(lr: 0.01)
  epochs    = 1
}}
"#,
            data.display()
        ),
    )
    .unwrap();
    let (o, dir) = run(&[file.to_str().unwrap(), "--no-plot"], &out.join("runs"));
    assert!(o.status.success(), "{}", stderr(&o));
    let e = mlx().arg("eval").arg(dir.unwrap()).output().unwrap();
    assert_code(&e, 1, "mlx::eval::no_test");
}

#[test]
fn verify_refuses_a_run_made_by_another_mlx_version() {
    let dir = penguins_copy("codes-lock-version");
    let lock = dir.join("mlx.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let mine = format!("\"mlx\": \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&mine), "{text}");
    std::fs::write(&lock, text.replace(&mine, "\"mlx\": \"0.0.0-older\"")).unwrap();
    let o = mlx().arg("verify").arg(&dir).output().unwrap();
    assert_code(&o, 1, "mlx::lock::version");
    assert!(stderr(&o).contains("0.0.0-older"), "{}", stderr(&o));
}

#[test]
fn predict_model_on_a_one_model_run_is_refused() {
    let out = out_dir("codes-predict-model");
    let rows = out.join("rows.json");
    std::fs::write(&rows, "[[0.1, 0.2, 0.3]]").unwrap();
    let o = mlx()
        .arg("predict")
        .arg(penguins())
        .args(["--model", "classifier"])
        .arg(&rows)
        .output()
        .unwrap();
    assert_code(&o, 1, "mlx::predict::model");
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn predict_model_with_rows_of_the_wrong_width_is_refused() {
    let out = out_dir("codes-predict-input");
    let (o, dir) = run(
        &[
            "examples/penguins_smoothing.mlx",
            "--set",
            "epochs=1",
            "--no-plot",
        ],
        &out.join("runs"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = dir.unwrap();
    // The classifier `m` takes the preprocessed features (9 values a row), not 2.
    let rows = out.join("rows.json");
    std::fs::write(&rows, "[[0.5, -1.0]]").unwrap();
    let p = mlx()
        .arg("predict")
        .arg(&dir)
        .args(["--model", "m"])
        .arg(&rows)
        .output()
        .unwrap();
    assert_code(&p, 1, "mlx::predict::input");
    // A model the train does not have is the other refusal.
    let p = mlx()
        .arg("predict")
        .arg(&dir)
        .args(["--model", "generator"])
        .arg(&rows)
        .output()
        .unwrap();
    assert_code(&p, 1, "mlx::predict::model");
}

#[test]
fn resuming_a_completed_run_is_advice_and_exit_zero() {
    let dir = penguins_copy("codes-resume-completed");
    let before = std::fs::read(dir.join("metrics.jsonl")).unwrap();
    let o = mlx()
        .arg("resume")
        .arg(&dir)
        .args(["-q", "--no-plot"])
        .output()
        .unwrap();
    assert_code(&o, 0, "mlx::resume::completed");
    assert_eq!(std::fs::read(dir.join("metrics.jsonl")).unwrap(), before);
}

#[test]
fn ctrl_c_stops_a_run_with_interrupted_and_leaves_it_incomplete() {
    let out = out_dir("codes-interrupted");
    // Far more epochs than the test waits for: only Ctrl-C ends it.
    let mut child = mlx()
        .arg("run")
        .args([
            "examples/penguins.mlx",
            "--set",
            "epochs=100000",
            "--set",
            "early_stop.patience=99999",
            "--set",
            "batch=2",
            "-q",
            "--no-plot",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let dir = loop {
        let dir = std::fs::read_dir(out.join("penguins_mlp"))
            .ok()
            .and_then(|mut d| d.find_map(|e| e.ok().map(|e| e.path())))
            .filter(|d| !d.file_name().unwrap().to_string_lossy().starts_with('.'));
        if let Some(dir) = dir
            && std::fs::read_to_string(dir.join("metrics.jsonl"))
                .is_ok_and(|m| m.lines().count() >= 1)
        {
            let kill = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(kill.success());
            break dir;
        }
        if started.elapsed() > Duration::from_secs(120) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("the run ended or hung before Ctrl-C:\n{}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 130, "mlx::run::interrupted");
    // The interrupted run has no final model to evaluate.
    let e = mlx().arg("eval").arg(&dir).output().unwrap();
    assert_code(&e, 1, "mlx::rundir::incomplete");
}

#[test]
fn a_summary_that_is_not_json_is_corrupt() {
    let dir = penguins_copy("codes-corrupt");
    std::fs::write(dir.join("summary.json"), "{\"format\": 1, \"train\": ").unwrap();
    let o = mlx().arg("eval").arg(&dir).output().unwrap();
    assert_code(&o, 1, "mlx::rundir::corrupt");
    assert!(stderr(&o).contains("summary.json"), "{}", stderr(&o));
}

#[test]
fn a_summary_from_a_newer_format_is_refused() {
    let dir = penguins_copy("codes-format");
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"format\": 1,"), "{text}");
    std::fs::write(
        &path,
        text.replacen("\"format\": 1,", "\"format\": 999,", 1),
    )
    .unwrap();
    let o = mlx().arg("eval").arg(&dir).output().unwrap();
    assert_code(&o, 1, "mlx::rundir::format");
    assert!(stderr(&o).contains("999"), "{}", stderr(&o));
}

#[test]
fn a_run_that_did_not_complete_has_no_model_to_predict_with() {
    let dir = penguins_copy("codes-incomplete");
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"status\": \"completed\""), "{text}");
    std::fs::write(
        &path,
        text.replace("\"status\": \"completed\"", "\"status\": \"failed\""),
    )
    .unwrap();
    let rows = dir.join("rows.csv");
    let csv = std::fs::read_to_string(crate::root().join("examples/data/penguins.csv")).unwrap();
    std::fs::write(
        &rows,
        csv.lines().take(3).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let o = mlx().arg("predict").arg(&dir).arg(&rows).output().unwrap();
    assert_code(&o, 1, "mlx::rundir::incomplete");
}

#[test]
fn serve_on_a_port_already_taken_cannot_bind() {
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = output_within(
        mlx()
            .arg("serve")
            .arg(penguins())
            .args(["--host", "127.0.0.1", "--port", &port]),
        Duration::from_secs(120),
    );
    assert_code(&o, 1, "mlx::serve::bind");
    assert!(stderr(&o).contains(&port), "{}", stderr(&o));
    drop(taken);
}

#[test]
fn serve_of_two_runs_of_one_train_is_refused() {
    let copy = penguins_copy("codes-serve-duplicate");
    let o = output_within(
        mlx()
            .arg("serve")
            .arg(penguins())
            .arg(&copy)
            .args(["--port", "0"]),
        Duration::from_secs(120),
    );
    assert_code(&o, 1, "mlx::serve::duplicate");
    assert!(stderr(&o).contains("penguins_mlp"), "{}", stderr(&o));
}

#[test]
fn runs_and_compare_refuse_what_is_not_a_run() {
    let out = out_dir("codes-history");
    let o = mlx().arg("runs").arg(out.join("missing")).output().unwrap();
    assert_code(&o, 1, "mlx::history::input");
    let broken = penguins_copy("codes-history-broken");
    std::fs::write(broken.join("summary.json"), "not json").unwrap();
    let o = mlx()
        .arg("compare")
        .arg(penguins())
        .arg(&broken)
        .output()
        .unwrap();
    assert_code(&o, 1, "mlx::history::input");
    assert!(stderr(&o).contains("summary.json"), "{}", stderr(&o));
}
