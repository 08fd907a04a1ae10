//! Tests of run history: run directories written by hand in a temp dir (`spec.mlx`,
//! `mlx.lock`, `summary.json`, `metrics.jsonl`, `sweep.json`), then the exact lines of
//! `compare` and `list`.

use super::{INPUT, compare, list, num, parse_run_id, when};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh empty directory, removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Temp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "mlx-history-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Temp(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SPEC: &str = r#"// The resolved program of this run: imports inlined, --set applied, defaults filled in.
use std.nn

const hidden = 32

dataset penguins {
  source = csv("/data/penguins.csv", missing: "NA")
  dedup = true
  split = random(train: 0.7, val: 0.15, test: 0.15, stratify: true)
  features {
    bill_length_mm: Float = impute(median) |> standardize
    flipper_length_mm: Float = impute(median) |> standardize
    island: Category = one_hot
  }
  target species: Class[3]
}

model classifier(hidden: Int = 32)(x: Float[B, F]) -> Float[B, C] {
  x |> dense(hidden) |> relu |> dropout(0.1) |> dense(C)
}

train penguins_mlp {
  model = classifier(hidden: 32)
  data = penguins
  loss = cross_entropy(label_smoothing: 0.0)
  optimizer = adam(lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0)
  epochs = 60
  batch = 32
  seed = 7
  metrics = [accuracy, macro_f1, confusion]
}
"#;

fn lock(program: &str, sha: &str, seed: u64) -> Value {
    json!({
        "backend": "interp",
        "data": [{"path": "examples/data/penguins.csv", "sha256": sha}],
        "mlx": "0.1.0",
        "program": format!("sha256:{program}"),
        "seed": seed,
    })
}

fn summary(acc: f64, loss: f64, epochs: u64, best: u64) -> Value {
    json!({
        "backend": "interp", "best_epoch": best, "epochs_run": epochs,
        "samples_per_second": 1000.0, "seed": 7, "status": "completed",
        "test": {"accuracy": 1.0, "loss": 0.0115, "macro_f1": 1.0,
                 "confusion": [[23, 0], [0, 10]]},
        "train": "penguins_mlp",
        "val": {"accuracy": acc, "loss": loss, "macro_f1": 0.9,
                "confusion": [[23, 0], [0, 10]]},
        "wall_seconds": 0.5,
    })
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(name), text).expect("write");
}

/// A complete run directory.
fn run(dir: &Path, spec: &str, lock: &Value, summary: &Value) -> PathBuf {
    write(dir, "spec.mlx", spec);
    write(dir, "mlx.lock", &lock.to_string());
    write(dir, "summary.json", &summary.to_string());
    dir.to_path_buf()
}

fn same_rest() -> (Value, Value) {
    (lock("aaaa", "f204", 7), summary(0.9423, 0.2, 33, 23))
}

/// The report's lines for run A (`SPEC`, `same_rest`) against a run B made of these.
fn report(spec_b: &str, lock_b: &Value, summary_b: &Value) -> Vec<String> {
    let t = Temp::new("cmp");
    let (l, s) = same_rest();
    let a = run(&t.0.join("a"), SPEC, &l, &s);
    let b = run(&t.0.join("b"), spec_b, lock_b, summary_b);
    let text = compare(&a, &b).expect("compare");
    text.lines().map(String::from).collect()
}

/// The lines of one section (after its title, up to the next blank line).
fn section(lines: &[String], title: &str) -> Vec<String> {
    lines
        .iter()
        .skip_while(|l| l.as_str() != title)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .cloned()
        .collect()
}

#[test]
fn a_changed_learning_rate_is_reported_argument_by_argument() {
    let (l, s) = same_rest();
    let b = SPEC
        .replace("adam(lr: 0.01,", "adam(lr: 0.003,")
        .replace("classifier(hidden: 32)", "classifier(hidden: 64)")
        .replace("epochs = 60", "epochs = 30");
    let lines = report(&b, &l, &s);
    assert_eq!(
        section(&lines, "program"),
        [
            "  train penguins_mlp:",
            "    model.hidden 32 → 64",
            "    optimizer.lr 0.01 → 0.003",
            "    epochs 60 → 30",
        ]
    );
    assert_eq!(section(&lines, "data"), ["  no differences"]);
    assert_eq!(section(&lines, "results"), ["  no differences"]);
}

#[test]
fn whitespace_and_comment_differences_never_show() {
    let (l, s) = same_rest();
    let b = SPEC
        .replace("  optimizer = ", "  // tuned by hand\n  optimizer   =   ")
        .replace(
            "x |> dense(hidden)",
            "x\n    |> dense(hidden)  // first layer\n   ",
        )
        .replace("const hidden = 32", "const   hidden=32 // width");
    assert_ne!(b, SPEC);
    let lines = report(&b, &l, &s);
    assert_eq!(section(&lines, "program"), ["  no differences"]);
}

#[test]
fn a_changed_callee_shows_the_whole_new_call() {
    let (l, s) = same_rest();
    let b = SPEC
        .replace(
            "adam(lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0)",
            "sgd(lr: 0.01, momentum: 0.9, nesterov: false, weight_decay: 0.0)",
        )
        .replace("cross_entropy(label_smoothing: 0.0)", "cross_entropy")
        .replace("  batch = 32\n", "  batch = 32\n  clip_grad = 1.0\n");
    let lines = report(&b, &l, &s);
    assert_eq!(
        section(&lines, "program"),
        [
            "  train penguins_mlp:",
            "    loss.label_smoothing 0.0 → (none)",
            "    optimizer adam → sgd(lr: 0.01, momentum: 0.9, nesterov: false, weight_decay: 0.0)",
            "    + clip_grad = 1.0",
        ]
    );
}

#[test]
fn dataset_entries_are_compared_per_feature_and_setting() {
    let (l, s) = same_rest();
    let b = SPEC
        .replace(
            "flipper_length_mm: Float = impute(median) |> standardize",
            "flipper_length_mm: Float = impute(median) |> winsorize(0.01, 0.99) |> standardize",
        )
        .replace("    island: Category = one_hot\n", "")
        .replace(
            "  target species",
            "  features {\n    sex: Category = impute(mode) |> one_hot\n  }\n  target species",
        )
        .replace("stratify: true)", "stratify: false)")
        .replace("  dedup = true\n", "")
        .replace("csv(\"/data/penguins.csv\"", "csv(\"/data/penguins2.csv\"")
        .replace("Class[3]", "Category");
    let lines = report(&b, &l, &s);
    assert_eq!(
        section(&lines, "program"),
        [
            "  penguins.source.path \"/data/penguins.csv\" → \"/data/penguins2.csv\"",
            "  - penguins.dedup = true",
            "  penguins.split.stratify true → false",
            "  penguins.features.flipper_length_mm: impute(median) |> standardize → impute(median) |> winsorize(0.01, 0.99) |> standardize",
            "  - penguins.features.island: Category = one_hot",
            "  + penguins.features.sex: Category = impute(mode) |> one_hot",
            "  penguins.target: species: Class[3] → species: Category",
        ]
    );
}

#[test]
fn feature_order_and_type_changes_are_named() {
    let (l, s) = same_rest();
    let b = SPEC
        .replace(
            "    bill_length_mm: Float = impute(median) |> standardize\n",
            "",
        )
        .replace(
            "    island: Category = one_hot\n",
            "    island: Category = one_hot\n    bill_length_mm: Category = one_hot\n",
        );
    let lines = report(&b, &l, &s);
    assert_eq!(
        section(&lines, "program"),
        [
            "  penguins.features.bill_length_mm: Float = impute(median) |> standardize → Category = one_hot",
            "  penguins.features order: bill_length_mm, flipper_length_mm, island → flipper_length_mm, island, bill_length_mm",
        ]
    );
}

#[test]
fn constants_and_items_on_one_side() {
    let (l, s) = same_rest();
    let a_spec = SPEC.replace(
        "const hidden = 32",
        "const hidden = 32\n\ndataset old {\n  source = csv(\"/old.csv\")\n  split = kfold(5)\n  target y: Float\n}",
    );
    let b_spec = format!(
        "{}\nmodel resnet(x: Float[B, F]) -> Float[B, C] {{\n  x |> dense(C)\n}}\n",
        SPEC.replace("const hidden = 32", "const hidden = 64")
    );
    let t = Temp::new("items");
    let a = run(&t.0.join("a"), &a_spec, &l, &s);
    let b = run(&t.0.join("b"), &b_spec, &l, &s);
    let text = compare(&a, &b).expect("compare");
    let lines: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(
        section(&lines, "program"),
        ["  hidden: 32 → 64", "  - dataset old", "  + model resnet"]
    );
}

#[test]
fn a_changed_model_shows_its_defaults_and_body_lines() {
    let (l, s) = same_rest();
    let b = SPEC
        .replace(
            "classifier(hidden: Int = 32)",
            "classifier(hidden: Int = 48, rate: Float in [0.0, 1.0) = 0.2)",
        )
        .replace(
            "x |> dense(hidden) |> relu |> dropout(0.1) |> dense(C)",
            "let h = x |> dense(hidden) |> gelu\n  h |> dropout(rate) |> dense(C)",
        );
    let lines = report(&b, &l, &s);
    assert_eq!(
        section(&lines, "program"),
        [
            "  model classifier:",
            "    hidden = 32 → 48",
            "    + hyperparameter rate: Float in [0.0, 1.0) = 0.2",
            "    - x |> dense(hidden) |> relu |> dropout(0.1) |> dense(C)",
            "    + let h = x |> dense(hidden) |> gelu",
            "    + h |> dropout(rate) |> dense(C)",
        ]
    );
}

#[test]
fn a_changed_data_hash_names_the_file() {
    let (_, s) = same_rest();
    let mut l = lock("aaaa", "0123456789abcdef0123", 3);
    l["backend"] = json!("cpu");
    l["mlx"] = json!("0.2.0");
    if let Some(files) = l["data"].as_array_mut() {
        files.push(json!({"path": "extra.csv", "sha256": "feed"}));
    }
    let lines = report(SPEC, &l, &s);
    assert_eq!(
        section(&lines, "data"),
        [
            "  examples/data/penguins.csv: sha256 f204 → 0123456789ab…",
            "  + extra.csv (sha256 feed)",
            "  seed 7 → 3",
            "  backend interp → cpu",
            "  mlx version 0.1.0 → 0.2.0",
        ]
    );
    assert_eq!(section(&lines, "program"), ["  no differences"]);
}

#[test]
fn a_moved_data_file_is_paired_by_name() {
    let (_, s) = same_rest();
    let mut l = lock("aaaa", "f204", 7);
    l["data"] = json!([{"path": "/abs/examples/data/penguins.csv", "sha256": "f204"}]);
    let lines = report(SPEC, &l, &s);
    assert_eq!(
        section(&lines, "data"),
        ["  examples/data/penguins.csv → /abs/examples/data/penguins.csv (same content)"]
    );
}

#[test]
fn results_show_figures_side_by_side_with_their_difference() {
    let l = lock("aaaa", "f204", 7);
    let mut s = summary(0.9615, 0.2, 41, 31);
    s["val"]["confusion"] = json!([[22, 1], [0, 10]]);
    s["wall_seconds"] = json!(0.75);
    s["test"]["note"] = json!("text is skipped");
    let lines = report(SPEC, &l, &s);
    assert_eq!(
        section(&lines, "results"),
        [
            "  val.accuracy 0.9423 → 0.9615 (+0.0192)",
            "  epochs_run 33 → 41 (+8)",
            "  best_epoch 23 → 31 (+8)",
            "  wall_seconds 0.5000 → 0.7500 (+0.2500)",
            "  val.confusion (A | B):",
            "    23  0  |  22  1",
            "     0 10  |   0 10",
            "  equal: val.loss, val.macro_f1, test.accuracy, test.loss, test.macro_f1",
        ]
    );
}

#[test]
fn k_fold_figures_are_compared_fold_by_fold() {
    let l = lock("aaaa", "f204", 7);
    let folds = |r2: f64| json!([{"val": {"r2": 0.5}}, {"val": {"r2": r2}}]);
    let mut a = summary(0.9423, 0.2, 33, 23);
    a["folds"] = folds(0.25);
    let mut b = a.clone();
    b["folds"] = folds(0.5);
    let t = Temp::new("folds");
    let da = run(&t.0.join("a"), SPEC, &l, &a);
    let db = run(&t.0.join("b"), SPEC, &l, &b);
    let text = compare(&da, &db).expect("compare");
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let r = section(&lines, "results");
    assert_eq!(r[0], "  fold2.val.r2 0.2500 → 0.5000 (+0.2500)");
    assert!(r[1].starts_with("  equal: "), "{r:?}");
    assert!(r[1].ends_with(", fold1.val.r2"), "{r:?}");
}

#[test]
fn status_and_figures_on_one_side() {
    let l = lock("aaaa", "f204", 7);
    let s = json!({"train": "penguins_mlp", "status": "failed", "error": "loss became NaN"});
    let lines = report(SPEC, &l, &s);
    let r = section(&lines, "results");
    assert_eq!(r[0], "  status completed → failed");
    assert_eq!(r[1], "  error (none) → loss became NaN");
    assert!(
        r.contains(&"  val.accuracy 0.9423 → (none)".to_string()),
        "{r:?}"
    );
    assert!(r.contains(&"  epochs_run 33 → (none)".to_string()), "{r:?}");
}

#[test]
fn comparing_a_run_with_itself_finds_no_differences() {
    let t = Temp::new("self");
    let (l, s) = same_rest();
    let a = run(&t.0.join("penguins_mlp/20261122-142857"), SPEC, &l, &s);
    let text = compare(&a, &a).expect("compare");
    let p = a.display().to_string();
    assert_eq!(
        text,
        format!(
            "A  {p}  penguins_mlp  2026-11-22 14:28:57  lock aaaa\n\
             B  {p}  penguins_mlp  2026-11-22 14:28:57  lock aaaa\n\
             \nprogram\n  no differences\n\
             \ndata\n  no differences\n\
             \nresults\n  no differences\n"
        )
    );
}

#[test]
fn missing_or_corrupt_files_are_input_errors_naming_the_file() {
    let t = Temp::new("bad");
    let (l, s) = same_rest();
    let good = run(&t.0.join("good"), SPEC, &l, &s);

    let no_summary = t.0.join("no_summary");
    write(&no_summary, "spec.mlx", SPEC);
    write(&no_summary, "mlx.lock", &l.to_string());
    let e = compare(&good, &no_summary).expect_err("missing summary");
    assert_eq!(e.code, INPUT);
    assert!(
        e.message.contains("no_summary/summary.json"),
        "{}",
        e.message
    );

    let bad_lock = run(&t.0.join("bad_lock"), SPEC, &l, &s);
    write(&bad_lock, "mlx.lock", "{\"program\": ");
    let e = compare(&bad_lock, &good).expect_err("corrupt lock");
    assert_eq!(e.code, INPUT);
    assert!(
        e.message.contains("bad_lock/mlx.lock is not valid JSON"),
        "{}",
        e.message
    );

    let bad_spec = run(&t.0.join("bad_spec"), "train x {\n  epochs = \n}\n", &l, &s);
    let e = compare(&good, &bad_spec).expect_err("broken spec");
    assert_eq!(e.code, INPUT);
    assert!(
        e.message.contains("bad_spec/spec.mlx does not parse"),
        "{}",
        e.message
    );

    let e = compare(&good, &t.0.join("nowhere")).expect_err("missing dir");
    assert_eq!(e.code, INPUT);
    assert!(e.message.contains("nowhere"), "{}", e.message);

    let sweep = t.0.join("sweep");
    write(&sweep, "sweep.json", "{}");
    let e = compare(&sweep, &good).expect_err("sweep dir");
    assert!(e.message.contains("is a sweep directory"), "{}", e.message);
}

fn metrics_line(epoch: u64, acc: f64) -> String {
    json!({"epoch": epoch, "train": {"loss": 0.5},
           "val": {"accuracy": acc, "loss": 0.25, "macro_f1": 0.5}})
    .to_string()
}

/// A table's rows as cells (columns are two or more spaces apart; cells have single ones).
fn cells(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[test]
fn runs_lists_every_run_in_start_order_with_aligned_columns() {
    let t = Temp::new("list");
    let r = &t.0;
    let (l, s) = same_rest();
    // Written out of order: the listing sorts by run id, then path (suffixes as numbers).
    run(&r.join("penguins_mlp/20261122-142857-10"), SPEC, &l, &s);
    run(&r.join("penguins_mlp/20261122-142857-2"), SPEC, &l, &s);
    run(&r.join("penguins_mlp/20261122-142857"), SPEC, &l, &s);
    let mut reg = json!({
        "train": "diabetes_linear", "status": "completed", "seed": 3, "backend": "cpu",
        "epochs_run": 100, "best_epoch": 100, "test": {},
        "val": {"loss": 3036.7, "r2": 0.4694, "rmse": 55.0378, "mae": 44.7},
        "folds": [{"val": {}}, {"val": {}}],
    });
    let dl = lock("0123456789", "abcd", 3);
    run(&r.join("diabetes_linear/20261121-090000"), SPEC, &dl, &reg);
    // Killed mid-run: a lock and two epochs of metrics, no summary.
    let killed = r.join("penguins_mlp/20261123-000000");
    write(
        &killed,
        "mlx.lock",
        &lock("deadbeef77", "f204", 7).to_string(),
    );
    write(
        &killed,
        "metrics.jsonl",
        &format!("{}\n{}\n", metrics_line(1, 0.5), metrics_line(2, 0.75)),
    );
    // A directory whose name is not a run id sorts last.
    reg["train"] = json!("renamed");
    run(&r.join("keep/best"), SPEC, &dl, &reg);
    std::fs::create_dir_all(r.join("not_a_run/empty")).expect("mkdir");

    let text = list(r).expect("list");
    let expected = [
        "name|when|status|lock|seed|backend|figures|epochs|path",
        "diabetes_linear|2026-11-21 09:00:00|completed|01234567|3|cpu|val r2=0.4694 rmse=55.0378 loss=3036.7|100/100|diabetes_linear/20261121-090000",
        "penguins_mlp|2026-11-22 14:28:57|completed|aaaa|7|interp|test accuracy=1.0000 macro_f1=1.0000 loss=0.0115|33/23|penguins_mlp/20261122-142857",
        "penguins_mlp|2026-11-22 14:28:57|completed|aaaa|7|interp|test accuracy=1.0000 macro_f1=1.0000 loss=0.0115|33/23|penguins_mlp/20261122-142857-2",
        "penguins_mlp|2026-11-22 14:28:57|completed|aaaa|7|interp|test accuracy=1.0000 macro_f1=1.0000 loss=0.0115|33/23|penguins_mlp/20261122-142857-10",
        "penguins_mlp|2026-11-23 00:00:00|incomplete|deadbeef|7|interp|epoch 2 val accuracy=0.7500 macro_f1=0.5000 loss=0.2500|2/-|penguins_mlp/20261123-000000",
        "renamed|-|completed|01234567|3|cpu|val r2=0.4694 rmse=55.0378 loss=3036.7|100/100|keep/best",
    ];
    let got: Vec<String> = cells(&text).iter().map(|r| r.join("|")).collect();
    assert_eq!(got, expected);
    // Aligned: every cell of a column starts where its header does; no trailing blanks.
    let lines: Vec<&str> = text.lines().collect();
    let starts = |l: &str| -> Vec<usize> {
        let mut v = vec![0];
        let b = l.as_bytes();
        for i in 1..b.len() {
            if b[i] != b' ' && b[i - 1] == b' ' && i >= 2 && b[i - 2] == b' ' {
                v.push(i);
            }
        }
        v
    };
    let header = starts(lines[0]);
    assert_eq!(header.len(), 9);
    for l in &lines {
        assert_eq!(starts(l), header, "{l}");
        assert!(!l.ends_with(' '), "{l}");
    }
}

#[test]
fn runs_lists_sweeps_with_their_best_objective_and_their_trials() {
    let t = Temp::new("sweep");
    let r = &t.0;
    let (l, s) = same_rest();
    let sweep = r.join("search/20261122-150000");
    let trial = run(
        &sweep.join("trials/penguins_mlp/20261122-150000-1"),
        SPEC,
        &l,
        &s,
    );
    let doc = json!({
        "sweep": "search", "base": "penguins_mlp", "objective": "val.accuracy",
        "direction": "maximize",
        "trials": [
            {"trial": 1, "objective": 0.9, "summary": s, "dir": trial.display().to_string()},
            {"trial": 2, "objective": 0.95, "summary": s},
        ],
        "best": {"trial": 2, "objective": 0.95},
    });
    write(&sweep, "sweep.json", &doc.to_string());
    // A sweep killed before it wrote sweep.json.
    std::fs::create_dir_all(r.join("search/20261122-160000/trials")).expect("mkdir");

    let text = list(r).expect("list");
    let rows = cells(&text);
    assert_eq!(rows.len(), 4, "{text}");
    assert_eq!(
        rows[1].join("|"),
        "search|2026-11-22 15:00:00|completed|-|7|interp|best val.accuracy=0.9500 (trial 2 of 2)|-|search/20261122-150000"
    );
    assert_eq!(rows[2][0], "penguins_mlp");
    assert_eq!(
        rows[2][8],
        "search/20261122-150000/trials/penguins_mlp/20261122-150000-1"
    );
    assert_eq!(
        rows[3].join("|"),
        "search|2026-11-22 16:00:00|incomplete|-|-|-|-|-|search/20261122-160000"
    );
}

#[test]
fn runs_of_a_missing_or_empty_directory() {
    let t = Temp::new("empty");
    let e = list(&t.0.join("missing")).expect_err("missing dir");
    assert_eq!(e.code, INPUT);
    assert!(e.message.contains("no such directory"), "{}", e.message);
    assert_eq!(
        list(&t.0).expect("empty"),
        format!("no runs in {}\n", t.0.display())
    );
    write(&t.0, "file.txt", "x");
    let e = list(&t.0.join("file.txt")).expect_err("a file");
    assert!(e.message.contains("is not a directory"), "{}", e.message);
}

#[test]
fn run_ids_times_and_numbers() {
    assert_eq!(
        parse_run_id("20261122-142857"),
        Some(("20261122-142857", 0))
    );
    assert_eq!(
        parse_run_id("20261122-142857-12"),
        Some(("20261122-142857", 12))
    );
    assert_eq!(parse_run_id("20261122-142857-"), None);
    assert_eq!(parse_run_id("2026112x-142857"), None);
    assert_eq!(parse_run_id("trials"), None);
    assert_eq!(
        when("20261122-142857-3").as_deref(),
        Some("2026-11-22 14:28:57")
    );
    assert_eq!(num(0.94230769), "0.9423");
    assert_eq!(num(264040.72), "264040.7");
    assert_eq!(num(0.000135), "1.350e-4");
    assert_eq!(num(0.0), "0");
}

#[test]
fn imports_and_sweeps_are_compared_too() {
    let (l, s) = same_rest();
    let sweep = "\nsweep search {\n  base = penguins_mlp\n  grid {\n    optimizer.lr = [0.001, 0.01]\n  }\n  objective = maximize(val.accuracy)\n}\n";
    let t = Temp::new("sweepitem");
    let a = run(&t.0.join("a"), &format!("{SPEC}{sweep}"), &l, &s);
    let b_spec = format!("{SPEC}{}", sweep.replace("[0.001, 0.01]", "[0.001, 0.1]"))
        .replace("use std.nn", "use std.nn\nuse \"layers.mlx\"");
    let b = run(&t.0.join("b"), &b_spec, &l, &s);
    let text = compare(&a, &b).expect("compare");
    let lines: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(
        section(&lines, "program"),
        [
            "  sweep search:",
            "    -   optimizer.lr = [0.001, 0.01]",
            "    +   optimizer.lr = [0.001, 0.1]",
            "  + use \"layers.mlx\"",
        ]
    );
}
