//! The real binary: exit statuses and where output goes.

use std::process::Command;

fn mlx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mlx"))
}

#[test]
fn check_exits_zero_on_valid_files_and_one_on_errors() {
    let ok = mlx()
        .args(["check", "examples/penguins.mlx", "examples/diabetes.mlx"])
        .current_dir(crate::root())
        .output()
        .expect("run mlx");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = mlx()
        .args(["check", "tests/ui/shape/conv_window_too_large.mlx"])
        .current_dir(crate::root())
        .output()
        .expect("run mlx");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("mlx::shape::window"), "{err}");
    let missing = mlx()
        .args(["check", "no/such/file.mlx"])
        .output()
        .expect("run mlx");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

#[test]
fn set_overrides_are_checked_like_source() {
    let out = mlx()
        .args([
            "check",
            "examples/penguins.mlx",
            "--set",
            "optimizer.lr=-1",
            "--set",
            "epochs=2",
        ])
        .current_dir(crate::root())
        .output()
        .expect("run mlx");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`lr` of `adam` must be greater than 0"),
        "{err}"
    );
    let out = mlx()
        .args(["check", "examples/penguins.mlx", "--set", "hiden=3"])
        .current_dir(crate::root())
        .output()
        .expect("run mlx");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_bad_command_line_is_a_user_error() {
    let bad = mlx()
        .args(["run", "examples/penguins.mlx", "--jobs", "0"])
        .current_dir(crate::root())
        .output()
        .expect("run mlx");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--jobs"));
    let unknown = mlx().args(["frobnicate"]).output().expect("run mlx");
    assert_eq!(unknown.status.code(), Some(1));
    let version = mlx().arg("--version").output().expect("run mlx");
    assert_eq!(version.status.code(), Some(0));
}

#[test]
fn the_cuda_back_end_runs_or_says_why_it_cannot() {
    // Without the `cuda` feature, or without a GPU and its libraries, `--backend cuda` is a
    // diagnostic (exit 1), never a crash; with them, it trains.
    let out_dir = std::env::temp_dir().join(format!("mlx-cli-cuda-{}", std::process::id()));
    let out = mlx()
        .args(["run", "examples/diabetes.mlx", "--backend", "cuda", "-q"])
        .args(["--set", "epochs=1", "--out"])
        .arg(&out_dir)
        .current_dir(crate::root())
        .output()
        .expect("run mlx");
    let _ = std::fs::remove_dir_all(&out_dir);
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(1) => {
            assert!(err.contains("mlx::backend::unavailable"), "{err}");
            assert!(
                err.contains("--features cuda") || err.contains("LD_LIBRARY_PATH"),
                "the diagnostic says how to get the GPU back end: {err}"
            );
        }
        other => panic!("exit {other:?}: {err}"),
    }
}

#[test]
fn ir_prints_the_gpu_commands_and_cuda_c() {
    let out = mlx()
        .args([
            "ir",
            "examples/penguins.mlx",
            "--stage",
            "cuda",
            "--batch",
            "8",
        ])
        .current_dir(crate::root())
        .output()
        .expect("run mlx");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "function train_8:",
        "sgemm_strided_batched",
        "launch k",
        "extern \"C\" __global__ void k",
    ] {
        assert!(text.contains(want), "missing `{want}`");
    }
}

/// A reader that stops early (`mlx predict ... | head -1`) is a normal end, not a crash.
#[test]
fn a_closed_output_pipe_is_a_normal_end() {
    use std::io::{BufRead, BufReader};
    let out = crate::run::out_dir("pipe");
    let (o, dir) = crate::run::run(&["examples/penguins.mlx", "--no-plot"], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Far more output than a pipe holds.
    let text = std::fs::read_to_string(crate::root().join("examples/data/penguins.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let big = out.join("big.csv");
    std::fs::write(&big, format!("{header}\n{}", rows.repeat(100))).unwrap();
    let mut child = mlx()
        .arg("predict")
        .arg(dir.as_ref().unwrap())
        .arg(&big)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone now.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status} after {first:?}");
    assert!(first.starts_with("prediction,"), "{first}");
}

/// A device or a FIFO given as a program, an import or a data file is refused at once (reading
/// `/dev/zero` would never end; opening a FIFO blocks), never read.
#[test]
fn devices_and_fifos_are_refused_not_read() {
    let dir = crate::run::out_dir("special-files");
    let fifo = dir.join("pipe.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let spec = |source: &str| {
        format!(
            "use std.nn\ndataset d {{\n  source = csv(\"{source}\")\n  split = random(train: 0.8, val: 0.2)\n  features {{ x: Float = standardize }}\n  target y: Float\n}}\n"
        )
    };
    let cases = [
        ("zero.mlx", spec("/dev/zero")),
        ("fifo.mlx", spec(&fifo.display().to_string())),
        ("use_zero.mlx", "use \"/dev/zero\"\n".to_string()),
    ];
    let check = |args: &[&std::path::Path]| {
        let mut child = mlx()
            .arg("check")
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(30) {
                let _ = child.kill();
                panic!("mlx check {args:?} hangs");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    };
    for (name, text) in cases {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let o = check(&[&p]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("not a regular file"), "{name}: {err}");
    }
    let o = check(&[std::path::Path::new("/dev/zero")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a regular file"));
}

/// Data that is not tabular — a file without line breaks, a line of megabytes, a header of
/// millions of columns — ends `mlx check` and `mlx run` with a diagnostic of a few kilobytes,
/// under a memory limit (`ulimit -v`), never an abort or a diagnostic as large as the file.
#[test]
fn huge_lines_and_headers_end_in_bounded_diagnostics_under_a_memory_limit() {
    let dir = crate::run::out_dir("huge-lines");
    let cases: [(&str, String, &str); 3] = [
        (
            "nonl.csv",
            "x".repeat(40_000_000),
            "a field longer than 1 MiB",
        ),
        (
            "line.csv",
            format!("a,b\n1,2\n3,{}\n", "9".repeat(5_000_000)),
            "a field longer than 1 MiB",
        ),
        (
            "cols.csv",
            format!(
                "{}\n{}\n",
                (0..2_000_000)
                    .map(|i| format!("c{i}"))
                    .collect::<Vec<_>>()
                    .join(","),
                vec!["0"; 2_000_000].join(",")
            ),
            "more bytes",
        ),
    ];
    let bin = env!("CARGO_BIN_EXE_mlx");
    for (name, text, expect) in cases {
        std::fs::write(dir.join(name), text).unwrap();
        let spec = dir.join(format!("{name}.mlx"));
        std::fs::write(
            &spec,
            format!(
                "use std.nn\ndataset d {{\n  source = csv(\"{name}\")\n  split = random(train: 0.8, val: 0.2)\n  features {{ a: Float = standardize }}\n  target b: Float\n}}\nmodel m(x: Float[B, F]) -> Float[B, 1] {{ x |> dense(1) }}\ntrain t {{ model = m  data = d  loss = mse  optimizer = sgd(lr: 0.1)  epochs = 1  batch = 2 }}\n"
            ),
        )
        .unwrap();
        let out = format!("--out {}", dir.join("runs").display());
        for (cmd, extra) in [("check", ""), ("run", out.as_str())] {
            let o = Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "ulimit -v 3000000; exec {bin} {cmd} {} {extra}",
                    spec.display()
                ))
                .current_dir(&dir)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{name} {cmd}: {}",
                &err[..err.len().min(2000)]
            );
            assert!(
                err.len() < 20_000,
                "{name} {cmd}: a {} byte diagnostic",
                err.len()
            );
            assert!(err.contains(expect), "{name} {cmd}: {err}");
        }
    }
}

/// A mistake on (or next to) a line of 70,000 columns is reported by file, line and column,
/// not drawn as a snippet (the renderer panics past column 65,535, and such a snippet would
/// be as large as the line).
#[test]
fn mistakes_on_very_long_lines_are_reported_by_position() {
    let dir = crate::run::out_dir("wide-lines");
    let p = dir.join("wide.mlx");
    std::fs::write(
        &p,
        format!(
            "const c = {}zz + 1\nconst d = 1 + \"x\"\n",
            " ".repeat(70_000)
        ),
    )
    .unwrap();
    let o = mlx().arg("check").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", &err[..err.len().min(3000)]);
    assert!(err.len() < 5_000, "a {} byte report", err.len());
    assert!(err.contains("wide.mlx:1:70011"), "{err}");
    assert!(err.contains("wide.mlx:2:15: the string \"x\""), "{err}");
}

/// A UTF-8 byte-order mark before a program (as some editors write) is not part of it: the
/// program checks, and errors point at the right columns.
#[test]
fn a_byte_order_mark_before_a_program_is_ignored() {
    let dir = crate::run::out_dir("bom");
    let good = dir.join("good.mlx");
    std::fs::write(&good, "\u{feff}const a = 1\nconst b = a + 1\n").unwrap();
    let o = mlx().arg("check").arg(&good).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bad = dir.join("bad.mlx");
    std::fs::write(&bad, "\u{feff}const a = 1 + \"x\"\n").unwrap();
    let o = mlx().arg("check").arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.mlx:1:11]"), "{err}");
}

/// Memory the machine cannot give (here: 8 GB of weights under a 4 GB address-space limit,
/// past the checker because `MLX_MEMORY_LIMIT` claims a petabyte) ends `mlx run` with a
/// diagnostic naming the tensor, exit 1, never an abort.
#[test]
fn an_allocation_the_machine_refuses_is_a_diagnostic() {
    let dir = crate::run::out_dir("alloc");
    let spec = dir.join("wide.mlx");
    std::fs::write(
        &spec,
        format!(
            "use std.nn\ndataset d {{\n  source = csv(\"{}\", missing: \"NA\")\n  split = random(train: 0.7, val: 0.15, test: 0.15)\n  features {{ bill_length_mm: Float = impute(median) |> standardize }}\n  target species: Class[3]\n}}\nmodel wide(x: Float[B, F]) -> Float[B, C] {{ x |> dense(2000000000) |> relu |> dense(C) }}\ntrain t {{ model = wide  data = d  loss = cross_entropy  optimizer = adam(lr: 0.01)  epochs = 1 }}\n",
            crate::root().join("examples/data/penguins.csv").display()
        ),
    )
    .unwrap();
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v 4000000; exec {} run {} --out {} -q",
            env!("CARGO_BIN_EXE_mlx"),
            spec.display(),
            dir.join("runs").display()
        ))
        .env("MLX_MEMORY_LIMIT", "1000000000000000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("mlx::train::memory") && err.contains("dense_0.w"),
        "{err}"
    );
    // Without the override the checker refuses it first, naming the same tensor.
    let c = Command::new(env!("CARGO_BIN_EXE_mlx"))
        .arg("check")
        .arg(&spec)
        .env("MLX_MEMORY_LIMIT", "4000000000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&c.stderr);
    assert_eq!(c.status.code(), Some(1), "{err}");
    assert!(err.contains("mlx::train::memory"), "{err}");
}
