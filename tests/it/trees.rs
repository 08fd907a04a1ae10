//! Tree ensembles end to end on the real example data: the example that compares a network
//! and two ensembles, the same model bytes on any thread count, a killed boosting run resumed
//! to the same model, `eval` and `predict` agreeing with the run, explain and export on a tree
//! model, and accuracy against figures LightGBM, XGBoost and scikit-learn reach on the same
//! split (`bench/trees_accuracy.py` made them).

use crate::reproduce::{epochs, mlx, predicted_labels, resume, run_ok, stderr};
use crate::run::{json, out_dir, run};
use std::path::{Path, PathBuf};

const EXAMPLE: &str = "examples/penguins_trees.mlx";

fn figure(dir: &Path, part: &str, name: &str) -> f64 {
    json(&dir.join("summary.json"))[part][name]
        .as_f64()
        .unwrap_or_else(|| panic!("{}: no {part}.{name}", dir.display()))
}

#[test]
fn the_example_trains_a_network_and_two_ensembles_on_one_split() {
    let work = out_dir("trees-example");
    let (o, _) = run(&[EXAMPLE, "--no-plot"], &work);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let dirs: Vec<PathBuf> = text.lines().map(PathBuf::from).collect();
    assert_eq!(dirs.len(), 3, "{text}");
    for d in &dirs {
        let acc = figure(d, "test", "accuracy");
        assert!(acc >= 0.95, "{}: test accuracy {acc}", d.display());
    }
    // Boosting logs a line per round and stops early in rounds.
    let boosted = dirs
        .iter()
        .find(|d| d.to_string_lossy().contains("penguins_boosted"))
        .expect("boosted run");
    let lines = std::fs::read_to_string(boosted.join("metrics.jsonl")).unwrap();
    let summary = json(&boosted.join("summary.json"));
    let rounds = summary["epochs_run"].as_u64().unwrap();
    assert_eq!(lines.lines().count() as u64, rounds);
    assert!(rounds < 200, "early stopping never cut the 200 rounds");
    assert!(summary["best_epoch"].as_u64().unwrap() + 20 == rounds);
}

#[test]
fn rescaled_features_are_warned_about_unless_a_network_shares_them() {
    let o = mlx()
        .args([
            "check",
            "tests/ui/pass/trees_on_standardized_features_warn.mlx",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("mlx::train::scaling"), "{}", stderr(&o));
    // The example standardizes for its network, which shares the dataset: no warning.
    let o = mlx().args(["check", EXAMPLE]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("mlx::train::scaling"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn tree_models_are_the_same_bytes_on_any_thread_count() {
    let work = out_dir("trees-threads");
    for t in ["penguins_boosted", "penguins_forest"] {
        let args = [EXAMPLE, "--train", t];
        let one = run_ok(&args, &work.join(format!("{t}-1")), "1");
        let two = run_ok(&args, &work.join(format!("{t}-2")), "2");
        let three = run_ok(&args, &work.join(format!("{t}-3")), "3");
        let bytes = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
        assert!(bytes(&one) == bytes(&two), "{t}: 1 and 2 threads differ");
        assert!(bytes(&one) == bytes(&three), "{t}: 1 and 3 threads differ");
        // ... and eval reproduces the recorded test figures from the saved trees.
        let o = mlx().arg("eval").arg(&one).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            shown["test"], shown["recorded"],
            "{t}: eval differs from the run"
        );
        assert!(shown["test"]["accuracy"].as_f64().unwrap() >= 0.9);
    }
}

#[test]
fn a_killed_boosting_run_resumes_to_the_same_trees() {
    let work = out_dir("trees-resume");
    let args = [
        EXAMPLE,
        "--train",
        "penguins_boosted",
        "--set",
        "checkpoint=every(7)",
    ];
    let reference = run_ok(&args, &work.join("ref"), "2");
    // Crash in the middle of the rounds (each round appends a metrics line), then resume.
    let o = mlx()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(work.join("killed"))
        .args(["-q", "--no-plot"])
        .env("MLX_CRASH_AT_STEP", "40")
        .output()
        .unwrap();
    assert!(!o.status.success(), "the crash hook did not fire");
    let killed = std::fs::read_dir(work.join("killed/penguins_boosted"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("checkpoint.safetensors").exists())
        .expect("a run directory with a checkpoint");
    let r = resume(&killed);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        std::fs::read(killed.join("model.safetensors")).unwrap()
            == std::fs::read(reference.join("model.safetensors")).unwrap(),
        "the resumed trees differ"
    );
    assert_eq!(epochs(&killed), epochs(&reference));
}

#[test]
fn predict_explain_and_export_take_a_tree_model() {
    let work = out_dir("trees-downstream");
    let dir = run_ok(&[EXAMPLE, "--train", "penguins_boosted"], &work, "2");
    let rows = work.join("rows.csv");
    std::fs::write(
        &rows,
        "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,island,sex\n\
         39.1,18.7,181,3750,Torgersen,male\n\
         46.5,17.9,192,3500,Dream,female\n\
         50.0,15.2,218,5700,Biscoe,male\n",
    )
    .unwrap();
    assert_eq!(
        predicted_labels(&dir, &rows),
        ["Adelie", "Chinstrap", "Gentoo"]
    );
    // Permutation importance works; integrated gradients are refused with a reason.
    let o = mlx()
        .arg("explain")
        .arg(&dir)
        .arg("--out")
        .arg(work.join("explain"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // ... with the split-gain importance beside it: shares of all the gain, the bill and
    // flipper lengths (what tells the species apart) ahead of body mass and sex.
    let doc = json(&work.join("explain/importance.json"));
    let gain = |c: &str| {
        doc["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["column"] == c)
            .and_then(|x| x["split_gain"].as_f64())
            .unwrap_or_else(|| panic!("no split gain for {c}"))
    };
    let columns = [
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "island",
        "sex",
    ];
    let total: f64 = columns.iter().map(|c| gain(c)).sum();
    assert!((total - 1.0).abs() < 1e-6, "split gains sum to {total}");
    assert!(
        gain("bill_length_mm") > gain("body_mass_g") && gain("flipper_length_mm") > gain("sex")
    );
    let o = mlx()
        .arg("explain")
        .arg(&dir)
        .args(["--method", "gradients"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no gradient"), "{}", stderr(&o));
    let onnx = work.join("model.onnx");
    let o = mlx()
        .arg("export")
        .arg(&dir)
        .arg("--output")
        .arg(&onnx)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(&onnx).unwrap().len() > 0);
}

/// On the first split of `bench/trees_accuracy.py` (files in `tests/data/trees`, preprocessed
/// there with training statistics), mlx's boosted trees reach the test accuracy of the weaker
/// of LightGBM and XGBoost less 0.01 (R² less 0.02), and its forest scikit-learn's, with the
/// same hyperparameters (boosting: 100 rounds, depth 6, lr 0.1, 255 bins; forests: 100 trees,
/// depth 10); the peers' figures are in `reference.json`.
#[test]
fn boosted_trees_and_forests_match_lightgbm_xgboost_and_scikit_learn() {
    let data = crate::root().join("tests/data/trees");
    let reference = json(&data.join("reference.json"));
    let work = out_dir("trees-accuracy");
    for r in reference.as_array().unwrap() {
        let name = r["dataset"].as_str().unwrap();
        let (target, kind, metric, slack) = match name {
            "penguins" => ("species", "Class[3]", "accuracy", 0.01),
            "titanic" => ("survived", "Class[2]", "accuracy", 0.01),
            _ => ("progression", "Float", "r2", 0.02),
        };
        let dir = data.join(name);
        let src = |part: &str| dir.join(format!("{part}.csv")).display().to_string();
        let spec = work.join(format!("{name}.mlx"));
        std::fs::write(
            &spec,
            format!(
                r#"dataset d {{
  source train = csv("{}")
  source val   = csv("{}")
  source test  = csv("{}")
  features {{
    *: Float
  }}
  target {target}: {kind}
}}

train boosted {{
  model   = gradient_boosting(trees: 100, depth: 6, lr: 0.1, bins: 255)
  data    = d
  seed    = 1
  metrics = [{metric}]
}}

train forest {{
  model   = random_forest(trees: 100, depth: 10)
  data    = d
  seed    = 1
  metrics = [{metric}]
}}
"#,
                src("train"),
                src("val"),
                src("test")
            ),
        )
        .unwrap();
        let (o, _) = run(&[spec.to_str().unwrap(), "--no-plot"], &work.join(name));
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let dirs: Vec<PathBuf> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(PathBuf::from)
            .collect();
        let boosted = figure(&dirs[0], "test", metric);
        let forest = figure(&dirs[1], "test", metric);
        let peer = |k: &str| r[k].as_f64().unwrap();
        let weaker = peer("lightgbm").min(peer("xgboost"));
        assert!(
            boosted >= weaker - slack,
            "{name}: boosted {metric} {boosted} < {weaker} - {slack} (LightGBM {}, XGBoost {})",
            peer("lightgbm"),
            peer("xgboost")
        );
        assert!(
            forest >= peer("sklearn_rf") - slack,
            "{name}: forest {metric} {forest} < scikit-learn's {} - {slack}",
            peer("sklearn_rf")
        );
    }
}

/// `keep_missing` hands NaN to the trees, which learn where it goes: with the bill length of
/// every Gentoo blanked out, a missing bill length is what says Gentoo — in `mlx predict` and
/// in the ONNX export (checked in `export.rs`'s tree test through the same rows).
#[test]
fn missing_values_kept_for_trees_are_routed_by_a_learned_direction() {
    let work = out_dir("trees-missing");
    let csv = std::fs::read_to_string(crate::root().join("examples/data/penguins.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let column = header
        .split(',')
        .position(|c| c == "bill_length_mm")
        .unwrap();
    let mut out = vec![header.to_string()];
    for l in lines {
        let mut fields: Vec<String> = l.split(',').map(str::to_string).collect();
        if fields[0] == "Gentoo" {
            fields[column] = "NA".into();
        }
        out.push(fields.join(","));
    }
    let data = work.join("penguins_blanked.csv");
    std::fs::write(&data, out.join("\n") + "\n").unwrap();
    let spec = work.join("blanked.mlx");
    std::fs::write(
        &spec,
        format!(
            r#"dataset penguins {{
  source = csv("{}", missing: "NA")
  split  = random(train: 0.7, val: 0.15, test: 0.15, stratify: true)
  features {{
    bill_length_mm: Float = keep_missing
  }}
  target species: Class[3]
}}

train boosted {{
  model   = gradient_boosting(trees: 30, depth: 2)
  data    = penguins
  seed    = 3
  metrics = [accuracy]
}}
"#,
            data.display()
        ),
    )
    .unwrap();
    let dir = run_ok(&[spec.to_str().unwrap()], &work.join("runs"), "2");
    // Gentoo is told apart by the missing value alone; Adelie and Chinstrap overlap a little.
    let acc = figure(&dir, "test", "accuracy");
    assert!(acc >= 0.85, "test accuracy {acc}");
    let rows = work.join("rows.csv");
    std::fs::write(&rows, "bill_length_mm\nNA\n36.5\n50.5\n").unwrap();
    assert_eq!(
        predicted_labels(&dir, &rows),
        ["Gentoo", "Adelie", "Chinstrap"]
    );
}

/// A sweep varies a tree model's arguments like a network's hyperparameters: every point is a
/// trial whose model has that depth and rate, and `--set` reaches them too.
#[test]
fn sweeps_and_set_reach_a_tree_models_arguments() {
    let work = out_dir("trees-sweep");
    let spec = work.join("sweep.mlx");
    std::fs::write(
        &spec,
        format!(
            r#"dataset penguins {{
  source = csv("{}", missing: "NA")
  split  = random(train: 0.7, val: 0.15, test: 0.15, stratify: true)
  features {{
    bill_length_mm: Float = impute(median)
    body_mass_g:    Float = impute(mean)
  }}
  target species: Class[3]
}}

train boosted {{
  model   = gradient_boosting(trees: 20, depth: 3)
  data    = penguins
  metrics = [accuracy]
}}

sweep search {{
  base = boosted
  grid {{ model.depth = [2, 4]  model.lr = [0.1, 0.3] }}
  objective = maximize(val.accuracy)
}}
"#,
            crate::root().join("examples/data/penguins.csv").display()
        ),
    )
    .unwrap();
    let (o, _) = run(
        &[spec.to_str().unwrap(), "--sweep", "search", "--no-plot"],
        &work,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let sweep = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(PathBuf::from)
        .find(|d| d.join("sweep.json").exists())
        .expect("a sweep directory");
    let doc = json(&sweep.join("sweep.json"));
    let trials = doc["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    let mut models: Vec<String> = trials
        .iter()
        .map(|t| {
            let dir = PathBuf::from(t["dir"].as_str().unwrap());
            let dir = if dir.is_absolute() {
                dir
            } else {
                crate::root().join(dir)
            };
            let spec = std::fs::read_to_string(dir.join("spec.mlx")).unwrap();
            spec.lines()
                .find(|l| l.contains("gradient_boosting("))
                .unwrap_or_else(|| panic!("no model in {spec}"))
                .to_string()
        })
        .collect();
    models.sort();
    assert!(
        models[0].contains("depth: 2") && models[0].contains("lr: 0.1"),
        "{models:?}"
    );
    assert!(
        models[3].contains("depth: 4") && models[3].contains("lr: 0.3"),
        "{models:?}"
    );
    // `--set` reaches an argument; it is checked as in the file.
    let o = mlx()
        .args(["check", spec.to_str().unwrap(), "--set", "model.depth=13"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("`depth` is at most 12"),
        "{}",
        stderr(&o)
    );
}
