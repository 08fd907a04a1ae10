//! Tests of the plots: takes run and sweep directories built by hand in a temporary directory,
//! gives assertions on the SVG files `plot` writes (and on its errors).

use super::chart::{Axis, format_sig, nice_ticks};
use super::lines::clip;
use super::plot;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh empty directory, removed when dropped.
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mlx-plot-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Tmp(dir)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_metrics(dir: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
}

fn write_summary(dir: &Path, v: &Value) {
    std::fs::write(dir.join("summary.json"), v.to_string()).unwrap();
}

/// A classifier run of `n` epochs: loss falling, accuracy rising.
fn classifier_epochs(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|e| {
            let f = e as f64;
            json!({"epoch": e, "lr": 0.01, "seconds": 0.01,
                   "train": {"loss": 1.0 / f},
                   "val": {"loss": 1.2 / f + 0.01 * f, "accuracy": 0.5 + 0.04 * f,
                           "macro_f1": 0.4 + 0.05 * f, "confusion": [[1, 0], [0, 1]]}})
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts `svg` is a whole SVG document and returns it.
fn well_formed(path: &Path) -> String {
    let svg = read(path);
    assert!(
        svg.starts_with("<svg"),
        "{}: starts {:?}",
        path.display(),
        &svg[..20]
    );
    assert!(
        svg.trim_end().ends_with("</svg>"),
        "{}: not closed",
        path.display()
    );
    assert_eq!(
        svg.matches("<text").count(),
        svg.matches("</text>").count(),
        "{}",
        path.display()
    );
    svg
}

/// Every text drawn in an SVG.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..t.find("</text>")?];
            Some(body.trim().to_string())
        })
        .collect()
}

/// Polylines with this stroke and opacity that have at least `min_points` points (legend
/// swatches have two).
fn polylines(svg: &str, stroke: &str, opacity: &str, min_points: usize) -> usize {
    svg.split("<polyline")
        .skip(1)
        .filter(|p| {
            let tag = &p[..p.find("/>").unwrap_or(p.len())];
            let points = tag.split("points=\"").nth(1).map_or(0, |s| {
                s[..s.find('"').unwrap_or(0)].split_whitespace().count()
            });
            tag.contains(&format!("stroke=\"{stroke}\""))
                && tag.contains(&format!("opacity=\"{opacity}\""))
                && points >= min_points
        })
        .count()
}

const TRAIN: &str = "#1F77B4";
const VAL: &str = "#E66100";

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn classifier_run_gives_loss_metric_and_confusion_plots() {
    let t = Tmp::new("classifier");
    write_metrics(&t.0, &classifier_epochs(8));
    write_summary(
        &t.0,
        &json!({"train": "tiny_mlp", "status": "completed", "best_epoch": 5, "epochs_run": 8,
                "val": {"accuracy": 0.7, "confusion": [[9, 1, 0], [2, 7, 1], [0, 3, 12]]},
                "test": {"accuracy": 0.8, "confusion": [[10, 2, 0], [1, 8, 4], [0, 6, 13]]}}),
    );
    let files = plot(&t.0).unwrap();
    assert_eq!(
        names(&files),
        ["loss.svg", "accuracy.svg", "macro_f1.svg", "confusion.svg"]
    );
    for f in &files {
        assert!(f.starts_with(&t.0), "{}", f.display());
        well_formed(f);
    }
    let loss = well_formed(&t.0.join("loss.svg"));
    let lt = texts(&loss);
    for want in [
        "tiny_mlp: loss",
        "train",
        "validation",
        "best epoch 5",
        "epoch",
        "loss",
    ] {
        assert!(lt.iter().any(|t| t == want), "{want:?} not in {lt:?}");
    }
    // One train line and one validation line (the legend swatches have two points).
    assert_eq!(polylines(&loss, TRAIN, "1", 3), 1);
    assert_eq!(polylines(&loss, VAL, "1", 3), 1);
    // The best-epoch marker is dashed: many short segments.
    assert!(polylines(&loss, "#5A5A5A", "1", 2) > 5);

    let acc = well_formed(&t.0.join("accuracy.svg"));
    assert!(
        texts(&acc)
            .iter()
            .any(|t| t == "tiny_mlp: validation accuracy")
    );
    assert_eq!(
        polylines(&acc, TRAIN, "1", 3),
        0,
        "accuracy is validation only"
    );
    assert_eq!(polylines(&acc, VAL, "1", 3), 1);

    // The test split's matrix: every count, the fallback class names, the axis names.
    let conf = well_formed(&t.0.join("confusion.svg"));
    let ct = texts(&conf);
    for n in ["10", "2", "0", "1", "8", "4", "6", "13"] {
        assert!(ct.iter().any(|t| t == n), "count {n} not in {ct:?}");
    }
    assert_eq!(ct.iter().filter(|t| *t == "13").count(), 1);
    for want in ["true class", "predicted class", "count"] {
        assert!(ct.iter().any(|t| t == want), "{want:?} not in {ct:?}");
    }
    assert!(ct.iter().any(|t| t.contains("test confusion matrix")));
    assert!(ct.iter().any(|t| t.contains("44 examples")), "{ct:?}");
    // Nine cells, each filled.
    assert!(conf.matches("<rect").count() >= 9);
    // Nothing but the plots (and the inputs) is left behind.
    let mut left: Vec<String> = std::fs::read_dir(&t.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "accuracy.svg",
            "confusion.svg",
            "loss.svg",
            "macro_f1.svg",
            "metrics.jsonl",
            "summary.json"
        ]
    );
}

#[test]
fn no_best_epoch_marker_when_the_last_epoch_is_best() {
    let t = Tmp::new("nomarker");
    write_metrics(&t.0, &classifier_epochs(6));
    write_summary(
        &t.0,
        &json!({"train": "m", "best_epoch": 6, "epochs_run": 6}),
    );
    plot(&t.0).unwrap();
    let loss = read(&t.0.join("loss.svg"));
    assert!(!texts(&loss).iter().any(|t| t.starts_with("best epoch")));
    assert_eq!(polylines(&loss, "#5A5A5A", "1", 2), 0);
}

/// A tree model's run counts rounds: the axis, the subtitle and the best-round marker say so.
#[test]
fn a_tree_models_charts_count_rounds() {
    let t = Tmp::new("rounds");
    write_metrics(&t.0, &classifier_epochs(6));
    write_summary(
        &t.0,
        &json!({"train": "m", "best_epoch": 4, "epochs_run": 6, "unit": "round"}),
    );
    plot(&t.0).unwrap();
    for chart in ["loss.svg", "accuracy.svg"] {
        let texts = texts(&read(&t.0.join(chart)));
        assert!(texts.iter().any(|t| t == "round"), "{chart}: {texts:?}");
        assert!(
            texts.iter().any(|t| t.starts_with("best round 4")),
            "{chart}: {texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("6 rounds")),
            "{chart}: {texts:?}"
        );
        assert!(
            !texts.iter().any(|t| t.contains("epoch")),
            "{chart}: {texts:?}"
        );
    }
}

#[test]
fn validation_confusion_is_used_without_a_test_split() {
    let t = Tmp::new("valconf");
    write_metrics(&t.0, &classifier_epochs(3));
    write_summary(
        &t.0,
        &json!({"train": "m", "val": {"confusion": [[31, 4], [5, 27]]}, "test": {}}),
    );
    let files = plot(&t.0).unwrap();
    assert!(names(&files).contains(&"confusion.svg".to_string()));
    let ct = texts(&read(&t.0.join("confusion.svg")));
    assert!(ct.iter().any(|t| t.contains("validation confusion matrix")));
    for n in ["31", "4", "5", "27", "0", "1"] {
        assert!(ct.iter().any(|t| t == n), "{n} not in {ct:?}");
    }
}

#[test]
fn class_names_come_from_the_runs_input_schema() {
    let t = Tmp::new("spec");
    // The program is not read again (its data may be gone): the input schema names the
    // classes.
    std::fs::write(t.0.join("spec.mlx"), "this does not even parse").unwrap();
    let schema = crate::rundir::InputSchema {
        format: crate::rundir::FORMAT,
        train: "pets_clf".into(),
        features: Vec::new(),
        target: crate::rundir::TargetSchema {
            name: "animal".into(),
            kind: crate::rundir::TargetSchemaKind::Class {
                classes: vec!["cat".into(), "dog".into()],
            },
        },
        missing: Vec::new(),
        separator: ',',
        batch: 32,
    };
    crate::rundir::write_doc(&t.0.join(crate::rundir::INPUT), &schema).unwrap();
    write_summary(
        &t.0,
        &json!({"train": "pets_clf", "test": {"confusion": [[3, 1], [2, 4]]}}),
    );
    let files = plot(&t.0).unwrap();
    assert_eq!(names(&files), ["confusion.svg"]);
    let ct = texts(&read(&t.0.join("confusion.svg")));
    // Each name labels a row and a column.
    assert_eq!(ct.iter().filter(|t| *t == "cat").count(), 2, "{ct:?}");
    assert_eq!(ct.iter().filter(|t| *t == "dog").count(), 2, "{ct:?}");
}

#[test]
fn kfold_draws_a_thin_line_per_fold_and_a_bold_mean() {
    let t = Tmp::new("kfold");
    let mut lines = Vec::new();
    for fold in 1..=3 {
        // More than 12 epochs: no marker at every point.
        for e in 1..=13 {
            let f = e as f64 + fold as f64;
            lines.push(
                json!({"epoch": e, "fold": fold, "train": {"loss": 100.0 / f},
                              "val": {"loss": 120.0 / f, "r2": 0.1 * f}}),
            );
        }
    }
    write_metrics(&t.0, &lines);
    write_summary(
        &t.0,
        &json!({"train": "reg", "best_epoch": 13, "epochs_run": 13,
                "folds": [{"best_epoch": 7, "epochs_run": 13}, {"best_epoch": 13, "epochs_run": 13},
                          {"best_epoch": 4, "epochs_run": 13}]}),
    );
    let files = plot(&t.0).unwrap();
    assert_eq!(names(&files), ["loss.svg", "r2.svg"]);
    let loss = well_formed(&t.0.join("loss.svg"));
    assert_eq!(
        polylines(&loss, VAL, "0.38", 3),
        3,
        "one thin val line per fold"
    );
    assert_eq!(
        polylines(&loss, TRAIN, "0.38", 3),
        3,
        "one thin train line per fold"
    );
    assert_eq!(polylines(&loss, VAL, "1", 3), 1, "the val mean");
    assert_eq!(polylines(&loss, TRAIN, "1", 3), 1, "the train mean");
    let lt = texts(&loss);
    for want in [
        "validation, mean of 3 folds",
        "train, each fold",
        "best epoch of a fold",
    ] {
        assert!(lt.iter().any(|t| t == want), "{want:?} not in {lt:?}");
    }
    assert!(lt.iter().any(|t| t.starts_with("3 folds")), "{lt:?}");
    // Folds 1 and 3 stopped improving before the end: a dot each (plus the legend's).
    assert_eq!(loss.matches(&format!("fill=\"{VAL}\"")).count(), 3);
    let r2 = read(&t.0.join("r2.svg"));
    assert_eq!(polylines(&r2, VAL, "0.38", 3), 3);
    assert!(texts(&r2).iter().any(|t| t == "reg: validation R²"));
}

#[test]
fn null_figures_are_skipped_and_break_the_line() {
    let t = Tmp::new("nulls");
    let mut lines = classifier_epochs(9);
    lines[4]["val"]["loss"] = Value::Null;
    lines[8]["train"]["loss"] = Value::Null;
    for l in &mut lines {
        l["val"]["accuracy"] = Value::Null;
    }
    write_metrics(&t.0, &lines);
    let files = plot(&t.0).unwrap();
    // Accuracy has no value at all: no chart. The run has no summary: no confusion.
    assert_eq!(names(&files), ["loss.svg", "macro_f1.svg"]);
    let loss = well_formed(&t.0.join("loss.svg"));
    assert_eq!(
        polylines(&loss, VAL, "1", 3),
        2,
        "the gap splits the val line"
    );
    assert_eq!(polylines(&loss, TRAIN, "1", 3), 1);
    assert!(!loss.contains("NaN"));
    // The title falls back to the directory's name.
    let title = texts(&loss)[0].clone();
    assert!(title.starts_with("mlx-plot-nulls"), "{title}");
}

#[test]
fn a_run_of_one_epoch_draws_points() {
    let t = Tmp::new("one");
    write_metrics(&t.0, &classifier_epochs(1));
    write_summary(
        &t.0,
        &json!({"train": "m", "best_epoch": 1, "epochs_run": 1}),
    );
    let files = plot(&t.0).unwrap();
    assert_eq!(names(&files), ["loss.svg", "accuracy.svg", "macro_f1.svg"]);
    let loss = well_formed(&t.0.join("loss.svg"));
    assert!(loss.contains(&format!("fill=\"{TRAIN}\"")), "train point");
    assert!(loss.contains(&format!("fill=\"{VAL}\"")), "val point");
    assert!(texts(&loss).iter().any(|t| t == "1 epoch"));
}

#[test]
fn a_failed_run_plots_what_it_has() {
    let t = Tmp::new("failed");
    let mut lines = classifier_epochs(3);
    lines[2]["train"]["loss"] = Value::Null;
    write_metrics(&t.0, &lines);
    write_summary(
        &t.0,
        &json!({"train": "m", "status": "failed", "error": "the loss became NaN"}),
    );
    let files = plot(&t.0).unwrap();
    assert_eq!(names(&files), ["loss.svg", "accuracy.svg", "macro_f1.svg"]);
    let lt = texts(&read(&t.0.join("loss.svg")));
    assert!(lt.iter().any(|t| t.contains("the run failed")), "{lt:?}");

    // Failed before the first epoch: nothing to draw, and no error.
    let t = Tmp::new("failed0");
    std::fs::write(t.0.join("metrics.jsonl"), "").unwrap();
    write_summary(
        &t.0,
        &json!({"train": "m", "status": "failed", "error": "x"}),
    );
    assert_eq!(plot(&t.0).unwrap(), Vec::<PathBuf>::new());
}

#[test]
fn a_regression_run_has_no_confusion_matrix() {
    let t = Tmp::new("regression");
    let lines: Vec<Value> = (1..=5)
        .map(|e| json!({"epoch": e, "train": {"loss": 10.0 / e as f64},
                        "val": {"loss": 12.0 / e as f64, "r2": 0.1 * e as f64, "rmse": 3.0 / e as f64}}))
        .collect();
    write_metrics(&t.0, &lines);
    write_summary(
        &t.0,
        &json!({"train": "reg", "val": {"r2": 0.5}, "test": {"rmse": 1.0}}),
    );
    let files = plot(&t.0).unwrap();
    assert_eq!(names(&files), ["loss.svg", "r2.svg", "rmse.svg"]);
    assert!(!t.0.join("confusion.svg").exists());
    assert!(
        texts(&read(&t.0.join("rmse.svg")))
            .iter()
            .any(|t| t == "RMSE")
    );
}

#[test]
fn odd_figures_never_escape_the_directory_or_panic() {
    let t = Tmp::new("odd");
    let lines: Vec<Value> = (1..=4)
        .map(|e| {
            json!({"epoch": e, "train": {"loss": 1e300},
                        "val": {"loss": -1e300, "../escape": 1.0, "ok": "text", "big": 1e308}})
        })
        .collect();
    write_metrics(&t.0, &lines);
    // Not a square matrix: no confusion plot.
    write_summary(
        &t.0,
        &json!({"train": "m", "test": {"confusion": [[1, 2], [3]]}}),
    );
    let files = plot(&t.0).unwrap();
    assert_eq!(names(&files), ["loss.svg", "big.svg"]);
    assert!(!t.0.parent().unwrap().join("escape.svg").exists());
    for f in &files {
        well_formed(f);
    }
    // Counts whose sums overflow, and values at the ends of f64.
    let lines: Vec<Value> = (1..=3)
        .map(|e| json!({"epoch": e, "train": {"loss": f64::MAX}, "val": {"loss": -f64::MAX}}))
        .collect();
    write_metrics(&t.0, &lines);
    write_summary(
        &t.0,
        &json!({"train": "m", "test": {"confusion": [[u64::MAX, u64::MAX], [1, 0]]}}),
    );
    let files = plot(&t.0).unwrap();
    assert_eq!(names(&files), ["loss.svg", "confusion.svg"]);
    for f in &files {
        well_formed(f);
    }
}

/// A sweep directory with trials run dirs under `trials/m/`, recorded at `recorded(i)`.
fn sweep_dir(t: &Tmp, recorded: impl Fn(usize, &Path) -> String) -> Vec<Value> {
    let grid = [
        ("0.001", "16", 0.61),
        ("0.01", "16", 0.93),
        ("0.1", "16", 0.72),
        ("0.01", "64", 0.9),
    ];
    let mut trials = Vec::new();
    for (i, (lr, hidden, acc)) in grid.iter().enumerate() {
        let dir = t.0.join("trials").join("m").join(format!("run-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        write_metrics(&dir, &classifier_epochs(4));
        write_summary(&dir, &json!({"train": "m", "val": {"accuracy": acc}}));
        trials.push(
            json!({"trial": i + 1, "point": {"optimizer.lr": lr, "model.hidden": hidden},
                           "objective": acc, "dir": recorded(i, &dir), "summary": {}}),
        );
    }
    trials
}

#[test]
fn a_sweep_gives_objective_svg_and_every_trials_plots() {
    let t = Tmp::new("sweep");
    // The last trial's recorded path is stale (the sweep was moved): found under trials/.
    let trials = sweep_dir(&t, |i, dir| {
        if i == 3 {
            format!("/nowhere/moved/trials/m/run-{i}")
        } else {
            dir.display().to_string()
        }
    });
    let doc = json!({"sweep": "grid_search", "objective": "val.accuracy", "direction": "maximize",
                     "trials": trials, "best": {"trial": 2, "objective": 0.93}});
    std::fs::write(t.0.join("sweep.json"), doc.to_string()).unwrap();
    let files = plot(&t.0).unwrap();
    assert_eq!(files[0], t.0.join("objective.svg"));
    let svg = well_formed(&files[0]);
    let st = texts(&svg);
    for want in [
        "model.hidden",
        "optimizer.lr (log scale)",
        "best (trial 2)",
        "trial",
    ] {
        assert!(st.iter().any(|t| t == want), "{want:?} not in {st:?}");
    }
    // The grid's values are the ticks.
    for want in ["0.001", "0.01", "0.1", "16", "64"] {
        assert!(st.iter().any(|t| t == want), "{want:?} not in {st:?}");
    }
    assert!(
        st.iter()
            .any(|t| t.starts_with("best: trial 2, val.accuracy = 0.9300")),
        "{st:?}"
    );
    for i in 0..4 {
        let loss =
            t.0.join("trials/m")
                .join(format!("run-{i}"))
                .join("loss.svg");
        assert!(files.contains(&loss), "{} not written", loss.display());
    }
    assert_eq!(files.len(), 1 + 4 * 3);
}

#[test]
fn a_sweep_survives_missing_trials_and_objectives() {
    let t = Tmp::new("sweep-missing");
    let mut trials = sweep_dir(&t, |i, dir| {
        if i == 0 {
            "/nowhere/at/all".to_string()
        } else {
            dir.display().to_string()
        }
    });
    trials[1]["objective"] = Value::Null;
    trials[2]["point"] = json!({"optimizer.lr": "adam", "model.hidden": "16"});
    let doc = json!({"sweep": "s", "objective": "val.loss", "direction": "minimize",
                     "trials": trials, "best": null});
    std::fs::write(t.0.join("sweep.json"), doc.to_string()).unwrap();
    let files = plot(&t.0).unwrap();
    let svg = well_formed(&t.0.join("objective.svg"));
    // No best recorded: the lowest objective is highlighted.
    assert!(
        texts(&svg).iter().any(|t| t == "best (trial 1)"),
        "{:?}",
        texts(&svg)
    );
    // Trial 1's directory is gone; the other three are drawn.
    assert_eq!(files.len(), 1 + 3 * 3);

    // No objective at all: no objective.svg, trials still drawn.
    for tr in &mut trials {
        tr["objective"] = Value::Null;
    }
    let doc = json!({"sweep": "s", "trials": trials});
    std::fs::write(t.0.join("sweep.json"), doc.to_string()).unwrap();
    let files = plot(&t.0).unwrap();
    assert!(!files.iter().any(|f| f.ends_with("objective.svg")));
    assert_eq!(files.len(), 3 * 3);
}

#[test]
fn bad_inputs_are_input_errors() {
    let t = Tmp::new("bad");
    let input = |dir: &Path| {
        let e = plot(dir).expect_err("should fail");
        assert_eq!(e.code, "mlx::plot::input", "{}", e.message);
        e
    };
    let e = input(&t.0.join("missing"));
    assert!(e.message.contains("no directory"), "{}", e.message);

    std::fs::write(t.0.join("file.txt"), "x").unwrap();
    let e = input(&t.0.join("file.txt"));
    assert!(e.message.contains("is a file"), "{}", e.message);

    let e = input(&t.0);
    assert!(e.message.contains("not a run directory"), "{}", e.message);

    let run = t.0.join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"epoch\": 1}\n{\"epoch\": 2,\n",
    )
    .unwrap();
    let e = input(&run);
    assert!(e.message.contains("line 2"), "{}", e.message);
    // The parent now holds a run: the help names it.
    let e = input(&t.0);
    assert!(e.help.unwrap_or_default().contains("run"));

    std::fs::write(run.join("metrics.jsonl"), "[1, 2]\n").unwrap();
    input(&run);

    std::fs::write(run.join("metrics.jsonl"), "").unwrap();
    std::fs::write(run.join("summary.json"), "{\"train\": ").unwrap();
    let e = input(&run);
    assert!(e.message.contains("summary.json"), "{}", e.message);
    std::fs::write(run.join("summary.json"), "[]").unwrap();
    input(&run);

    let sweep = t.0.join("sweep");
    std::fs::create_dir(&sweep).unwrap();
    std::fs::write(sweep.join("sweep.json"), "{\"sweep\": \"s\"}").unwrap();
    let e = input(&sweep);
    assert!(e.message.contains("trials"), "{}", e.message);
    std::fs::write(sweep.join("sweep.json"), "not json").unwrap();
    input(&sweep);
}

#[test]
fn early_outliers_are_cut_off_and_said_so() {
    let t = Tmp::new("outlier");
    let lines: Vec<Value> = (1..=30)
        .map(|e| {
            let loss = if e == 1 {
                20000.0
            } else {
                3000.0 + 10.0 * (e % 5) as f64
            };
            json!({"epoch": e, "train": {"loss": loss}, "val": {"loss": loss + 50.0}})
        })
        .collect();
    write_metrics(&t.0, &lines);
    plot(&t.0).unwrap();
    let loss = read(&t.0.join("loss.svg"));
    let lt = texts(&loss);
    assert!(
        lt.iter()
            .any(|t| t.contains("20050 at epoch 1 is above the chart")),
        "{lt:?}"
    );
    // No tick reaches the outlier.
    assert!(!lt.iter().any(|t| t == "20000" || t == "15000"), "{lt:?}");
}

#[test]
fn ticks_and_numbers_read_well() {
    let (ticks, step) = nice_ticks(0.0, 1.0, 5, false);
    assert!((step - 0.2).abs() < 1e-12, "{step}");
    assert_eq!(ticks.len(), 6);
    let (ticks, _) = nice_ticks(0.5, 1.5, 6, true);
    assert_eq!(ticks, [1.0]);
    assert_eq!(format_sig(0.003), "0.003");
    assert_eq!(format_sig(12.5), "12.5");
    assert_eq!(format_sig(2e-5), "2e-5");
    assert_eq!(format_sig(-0.5), "-0.5");
    let a = Axis::linear(0.92, 1.0, 0.0, false);
    let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
    assert!(labels.contains(&"0.94".to_string()), "{labels:?}");
    assert!(!labels.iter().any(|l| l == "-0" || l == "-0.00"));
    // Thirteen decades: at most about ten labels, all of one form.
    let a = Axis::log(1e-1, 1e12, 0.0, 10);
    assert!(a.ticks.len() <= 10 && a.ticks.len() >= 5, "{:?}", a.ticks);
    let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
    assert!(
        labels.iter().all(|l| l.contains('e') || l == "1"),
        "{labels:?}"
    );
    assert!(labels.contains(&"1e12".to_string()), "{labels:?}");
    // Two decades: 1, 2, 5 steps.
    let a = Axis::log(0.01, 1.0, 0.0, 10);
    let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
    assert_eq!(labels, ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]);
    // A degenerate range still has a span.
    let a = Axis::linear(1.0, 1.0, 0.1, false);
    assert!(a.hi > a.lo);
    assert!(Axis::log(0.0, 1.0, 0.0, 5).hi > 0.5);
}

#[test]
fn clipping_cuts_lines_at_the_bounds() {
    let runs = clip(&[(0.0, 0.0), (1.0, 10.0), (2.0, 0.0)], -1.0, 5.0);
    assert_eq!(
        runs,
        vec![vec![(0.0, 0.0), (0.5, 5.0)], vec![(1.5, 5.0), (2.0, 0.0)]]
    );
    let runs = clip(&[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)], 0.0, 5.0);
    assert_eq!(runs, vec![vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]]);
    assert!(clip(&[(0.0, 9.0), (1.0, 9.0)], 0.0, 5.0).is_empty());
    assert!(clip(&[(0.0, 9.0)], 0.0, 5.0).is_empty());
}

#[test]
fn a_run_with_objectives_plots_each_objective_in_one_loss_chart() {
    let t = Tmp::new("objectives");
    let epochs: Vec<Value> = (1..=6)
        .map(|e| {
            let f = e as f64;
            json!({"epoch": e, "train": {"discriminate": 1.0 + 0.02 * f, "generate": 1.5 / f},
                   "val": {"discriminate": 1.1 + 0.02 * f, "generate": 1.6 / f}})
        })
        .collect();
    write_metrics(&t.0, &epochs);
    write_summary(
        &t.0,
        &json!({"train": "gan", "status": "completed", "best_epoch": 6, "epochs_run": 6,
                "val": {"discriminate": 1.2, "generate": 0.3}}),
    );
    let files = plot(&t.0).unwrap();
    // One chart: no `loss` figure, and objectives get no validation-only chart of their own.
    assert_eq!(names(&files), ["loss.svg"]);
    let svg = well_formed(&t.0.join("loss.svg"));
    let lt = texts(&svg);
    for want in [
        "gan: objectives",
        "train discriminate",
        "validation discriminate",
        "train generate",
        "validation generate",
    ] {
        assert!(lt.iter().any(|t| t == want), "{want:?} not in {lt:?}");
    }
    // A line of all six epochs per objective and split, in four colours.
    assert_eq!(polylines(&svg, TRAIN, "1", 6), 1, "{svg}");
    assert_eq!(polylines(&svg, VAL, "1", 6), 1);
    assert_eq!(polylines(&svg, "#78AFDC", "1", 6), 1);
    assert_eq!(polylines(&svg, "#F5AA6E", "1", 6), 1);
}
