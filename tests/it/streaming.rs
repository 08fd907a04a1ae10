//! Streamed datasets end to end (`stream = true`): a run reads its rows pass by pass and is
//! still reproducible: the same on any thread count, from CSV or Parquet, after a kill and
//! `mlx resume`, and `mlx eval` / `mlx verify` read the same split again.

use crate::reproduce::{
    SLOW_PENGUINS, copy_penguins, epochs, mlx, replace, resume, run_and_kill, run_ok, stderr,
};
use crate::run::{json, out_dir, run};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The penguins example, streamed (no dedup, no stratification) with a small shuffle buffer,
/// reading `data` (relative to the spec).
fn streamed(dir: &Path, name: &str, data: &str) -> PathBuf {
    copy_penguins(dir, name, |t| {
        let t = replace(
            t,
            "  dedup  = true",
            "  stream = true\n  shuffle_buffer = 50",
        );
        let t = replace(&t, ", stratify: true", "");
        replace(&t, "csv(\"data/penguins.csv\", missing: \"NA\")", data)
    })
}

#[test]
fn a_streamed_run_is_the_same_on_any_thread_count_and_from_parquet() {
    let work = out_dir("stream-same");
    let spec = streamed(
        &work,
        "csv.mlx",
        "csv(\"data/penguins.csv\", missing: \"NA\")",
    );
    let file = spec.to_str().unwrap();
    let one = run_ok(&[file], &work.join("t1"), "1");
    let two = run_ok(&[file], &work.join("t2"), "2");
    let model = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(model(&one), model(&two));
    assert_eq!(epochs(&one), epochs(&two));
    let summary = json(&one.join("summary.json"));
    assert_eq!(summary["test"], json(&two.join("summary.json"))["test"]);
    // A real model: the test split is measured, and well.
    let acc = summary["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");

    // The same rows as Parquet (nulls where the CSV says NA): the same split, the same model.
    std::fs::copy(
        crate::root().join("examples/data/penguins.parquet"),
        work.join("data/penguins.parquet"),
    )
    .unwrap();
    let pq = streamed(&work, "pq.mlx", "parquet(\"data/penguins.parquet\")");
    let from_parquet = run_ok(&[pq.to_str().unwrap()], &work.join("pq"), "2");
    assert_eq!(model(&from_parquet), model(&one));
    assert_eq!(epochs(&from_parquet), epochs(&one));

    // The whole pipeline in memory (the same spec without `stream`) is another run: the
    // split differs (a shuffled deal, not a hash), so the weights do.
    let mem = copy_penguins(&work, "mem.mlx", |t| replace(t, ", stratify: true", ""));
    let in_memory = run_ok(&[mem.to_str().unwrap()], &work.join("mem"), "2");
    assert_ne!(model(&in_memory), model(&one));

    // `mlx eval` reads the same test rows again; `mlx verify` re-runs it bit for bit.
    let o = mlx().arg("eval").arg(&one).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(eval["test"], summary["test"]);
    let o = mlx().arg("verify").arg(&one).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Explaining needs rows in memory: refused with a way out; labelled rows work.
    let o = mlx().arg("explain").arg(&one).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("mlx::data::stream"), "{}", stderr(&o));
    let o = mlx()
        .arg("explain")
        .arg(&one)
        .arg(work.join("data/penguins.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // The drift profile is drawn from the training rows.
    let profile = json(&one.join("profile.json"));
    let rows = profile["rows"].as_u64().unwrap();
    assert!((200..280).contains(&rows), "{rows} training rows");
}

#[test]
fn a_killed_streamed_run_resumes_to_the_uninterrupted_result() {
    let work = out_dir("stream-kill");
    let spec = streamed(
        &work,
        "s.mlx",
        "csv(\"data/penguins.csv\", missing: \"NA\")",
    );
    let args = [&[spec.to_str().unwrap()][..], &SLOW_PENGUINS[..]].concat();
    let (o, reference) = run(&[&args[..], &["--no-plot"]].concat(), &work.join("ref"));
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = reference.unwrap();
    let killed = run_and_kill(&args, &work.join("killed"), |lines| lines.len() >= 5);
    let r = resume(&killed);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(
        std::fs::read(killed.join("model.safetensors")).unwrap(),
        std::fs::read(reference.join("model.safetensors")).unwrap()
    );
    assert_eq!(epochs(&killed), epochs(&reference));
}

/// The peak resident memory (VmHWM) of a child process, watched until it exits.
#[cfg(target_os = "linux")]
fn peak_while_running(mut child: std::process::Child) -> (std::process::ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb * 1024);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Six times the rows, the same memory: a streamed run holds a chunk, the shuffle buffer and
/// the drift sample, never the rows (here penguins repeated, 86,000 and 516,000 rows).
#[cfg(target_os = "linux")]
#[test]
fn a_streamed_run_holds_the_same_memory_for_six_times_the_rows() {
    let work = out_dir("stream-memory");
    let text = std::fs::read_to_string(crate::root().join("examples/data/penguins.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let peak = |copies: usize, stream: bool| {
        let dir = work.join(format!("{copies}-{stream}"));
        let mut body = String::with_capacity(rows.len() * copies + header.len() + 1);
        body.push_str(header);
        body.push('\n');
        for _ in 0..copies {
            body.push_str(rows);
        }
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/penguins.csv"), body).unwrap();
        let spec = copy_penguins(&dir, "s.mlx", |t| {
            let t = replace(t, ", stratify: true", "");
            if stream {
                replace(&t, "  dedup  = true", "  stream = true")
            } else {
                replace(&t, "  dedup  = true", "")
            }
        });
        let child = mlx()
            .arg("run")
            .arg(&spec)
            .args(["--set", "epochs=1", "--set", "batch=256", "-q", "--no-plot"])
            .arg("--out")
            .arg(dir.join("runs"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (status, peak) = peak_while_running(child);
        assert!(status.success(), "{copies} copies, stream {stream}");
        peak
    };
    let (small, large) = (peak(250, true), peak(1500, true));
    let (held_small, held_large) = (peak(250, false), peak(1500, false));
    eprintln!(
        "peak memory, 86k and 516k rows: streamed {} and {} MB, in memory {} and {} MB",
        small >> 20,
        large >> 20,
        held_small >> 20,
        held_large >> 20
    );
    assert!(
        large < small + (16 << 20),
        "streamed: {small} bytes for 86k rows, {large} for 516k"
    );
    // Rows held in memory do grow with their number: the test sees what it guards against.
    assert!(
        held_large - held_small > 2 * large.saturating_sub(small),
        "in memory {held_small} and {held_large} bytes, streamed {small} and {large}"
    );
}
