//! `mlx explain` end to end: permutation importance ranks the informative columns of a
//! generated dataset above its noise columns (the same numbers for any thread count);
//! integrated gradients are complete (each row's attributions sum to f(x) − f(baseline))
//! on penguins and a Fashion-MNIST MLP; bad input is a diagnostic with exit status 1.

use crate::run::{json, out_dir, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mlx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlx"));
    c.current_dir(crate::root());
    c
}

fn explain(dir: &Path, args: &[&str]) -> Output {
    mlx().arg("explain").arg(dir).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn trained(args: &[&str], out: &Path) -> PathBuf {
    let (o, dir) = run(args, out);
    assert!(o.status.success(), "{}", stderr(&o));
    dir.expect("run dir")
}

/// 600 rows: `label` is `pos` when `a + b/10 − c/100 > 0`; `noise` and `colour` are
/// independent of everything.
fn synthetic(dir: &Path) -> PathBuf {
    // SplitMix64: a fixed sequence, so the data is the same on every run.
    let mut state = 0x1234_5678_u64;
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut csv = String::from("a,b,c,noise,colour,label\n");
    for _ in 0..600 {
        let (a, b, c) = (uniform(), 10.0 * uniform(), 100.0 * uniform());
        let noise = uniform();
        let colour = ["red", "green", "blue"][((uniform() + 1.0) * 1.5).min(2.0) as usize];
        let label = if a + b / 10.0 - c / 100.0 > 0.0 {
            "pos"
        } else {
            "neg"
        };
        csv.push_str(&format!(
            "{a:.5},{b:.5},{c:.5},{noise:.5},{colour},{label}\n"
        ));
    }
    std::fs::write(dir.join("synth.csv"), csv).unwrap();
    let spec = r#"use std.nn
dataset synth {
  source = csv("synth.csv")
  split  = random(train: 0.6, val: 0.1, test: 0.3, stratify: true)
  features {
    a:      Float    = standardize
    b:      Float    = standardize
    c:      Float    = standardize
    noise:  Float    = standardize
    colour: Category = one_hot
  }
  target label: Class[2]
}
dataset synth_no_test {
  source = csv("synth.csv")
  split  = random(train: 0.8, val: 0.2)
  features { a: Float = standardize  b: Float = standardize }
  target label: Class[2]
}
model mlp(x: Float[B, F]) -> Float[B, C] {
  x |> dense(16) |> relu |> dense(C)
}
train synth_mlp {
  model = mlp  data = synth  loss = cross_entropy  optimizer = adam(lr: 0.02)
  epochs = 15  batch = 32  seed = 3  metrics = [accuracy]
}
train no_test {
  model = mlp  data = synth_no_test  loss = cross_entropy  optimizer = adam(lr: 0.02)
  epochs = 1  batch = 32  seed = 3  metrics = [accuracy]
}
"#;
    let p = dir.join("synth.mlx");
    std::fs::write(&p, spec).unwrap();
    p
}

#[test]
fn permutation_importance_ranks_informative_columns_above_noise() {
    let work = out_dir("explain-synth");
    let spec = synthetic(&work);
    let dir = trained(
        &[spec.to_str().unwrap(), "--train", "synth_mlp"],
        &work.join("runs"),
    );
    let o = mlx()
        .arg("explain")
        .arg(&dir)
        .env("MLX_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!("{}{table}", stderr(&o));
    let doc = json(&dir.join("explain/importance.json"));
    assert_eq!(doc["metric"], "accuracy");
    assert!(doc["score"].as_f64().unwrap() > 0.9, "{doc}");
    let columns = doc["columns"].as_array().unwrap();
    let get = |name: &str| -> (f64, f64) {
        let c = columns.iter().find(|c| c["column"] == name).unwrap();
        (c["mean"].as_f64().unwrap(), c["std"].as_f64().unwrap())
    };
    let informative = ["a", "b", "c"].map(get);
    let noise = ["noise", "colour"].map(get);
    for (m, _) in informative {
        for (n, _) in noise {
            assert!(
                m > n,
                "an informative column ranks below a noise column: {doc}"
            );
        }
    }
    for (m, s) in noise {
        assert!(m.abs() <= (2.0 * s).max(0.01), "noise matters: {doc}");
    }
    // Most important first, a line per column.
    assert_eq!(table.lines().count(), 6, "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .is_some_and(|c| ["a", "b", "c"].contains(&c))
    );
    assert!(dir.join("explain/importance.svg").is_file());
    // The same numbers with more threads, into another directory.
    let other = work.join("again");
    let o = mlx()
        .arg("explain")
        .arg(&dir)
        .args(["--out", other.to_str().unwrap()])
        .env("MLX_THREADS", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.join("explain/importance.json")).unwrap(),
        std::fs::read(other.join("importance.json")).unwrap()
    );
}

/// Every row's attributions sum to `f(x) − f(baseline)` within 1e-3 of it.
fn assert_complete(doc: &Value) -> f64 {
    let rows = doc["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    let mut worst = 0.0f64;
    for r in rows {
        let sum: f64 = r["attributions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum();
        let delta = r["output"].as_f64().unwrap() - r["baseline_output"].as_f64().unwrap();
        let rel = (sum - delta).abs() / delta.abs();
        worst = worst.max(rel);
    }
    assert!(worst <= 1e-3, "worst completeness error {worst}");
    assert!(doc["worst_completeness_rel"].as_f64().unwrap() <= 1e-3);
    worst
}

#[test]
fn integrated_gradients_are_complete_on_penguins() {
    let work = out_dir("explain-penguins");
    let dir = trained(&["examples/penguins.mlx"], &work);
    let o = explain(&dir, &["--method", "gradients"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json(&dir.join("explain/attributions.json"));
    let worst = assert_complete(&doc);
    eprintln!("penguins: worst completeness error {worst:.2e}");
    let csv = String::from_utf8_lossy(&o.stdout).into_owned();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "row,prediction,output,baseline_output,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,island,sex"
    );
    assert_eq!(
        csv.lines().count(),
        doc["rows"].as_array().unwrap().len() + 1
    );
}

#[test]
fn integrated_gradients_are_complete_on_a_fashion_mlp() {
    if !crate::have_fashion("integrated gradients on Fashion-MNIST") {
        return;
    }
    let work = out_dir("explain-fashion");
    let spec = crate::serve::fashion_spec(&work);
    let dir = trained(&[spec.to_str().unwrap()], &work.join("runs"));
    let out = work.join("ig");
    let o = explain(
        &dir,
        &[
            "--method",
            "gradients",
            "--rows",
            "4",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json(&out.join("attributions.json"));
    let worst = assert_complete(&doc);
    eprintln!("fashion: worst completeness error {worst:.2e}");
    assert_eq!(doc["rows"].as_array().unwrap().len(), 4);
    assert_eq!(doc["rows"][0]["pixels"].as_array().unwrap().len(), 784);
    for i in 0..4 {
        let png = image::open(out.join(format!("heatmap_{i}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (2 * 28 * 8 + 4, 28 * 8));
    }
}

#[test]
fn bad_input_is_a_diagnostic() {
    let work = out_dir("explain-bad");
    let spec = synthetic(&work);
    let dir = trained(
        &[
            spec.to_str().unwrap(),
            "--train",
            "synth_mlp",
            "--set",
            "epochs=1",
        ],
        &work.join("runs"),
    );
    let code = |o: &Output, code: &str| {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        assert!(stderr(o).contains(code), "{}", stderr(o));
    };
    code(
        &explain(&dir, &["--method", "shap"]),
        "mlx::explain::method",
    );
    // INPUT without the target column.
    let unlabelled = work.join("unlabelled.csv");
    std::fs::write(&unlabelled, "a,b,c,noise,colour\n0.1,1,10,0.3,red\n").unwrap();
    code(
        &explain(&dir, &[unlabelled.to_str().unwrap()]),
        "mlx::explain::input",
    );
    // A run without a test split, and no INPUT.
    let no_test = trained(
        &[spec.to_str().unwrap(), "--train", "no_test"],
        &work.join("runs"),
    );
    code(&explain(&no_test, &[]), "mlx::explain::no_test");
    // With labelled rows it explains.
    let labelled = work.join("labelled.csv");
    let rows: String = std::fs::read_to_string(work.join("synth.csv"))
        .unwrap()
        .lines()
        .take(101)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&labelled, rows).unwrap();
    let o = explain(&no_test, &[labelled.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&no_test.join("explain/importance.json"))["rows"], 100);
}
