//! `mlx export` end to end: every example (penguins, diabetes, the penguins sweep's best trial,
//! the Fashion MLP, LeNet, LSTM and GRU), a program using every preprocessing step and a CNN
//! with padding, strides, batch norm and overlapping pooling are exported to ONNX, run on raw
//! rows (missing values and unseen categories among them) by onnxruntime (Python, after
//! `onnx.checker.check_model(full_check=True)`) and by tract (Rust), and must agree with
//! `mlx predict` within 1e-4 on probabilities and values and exactly on labels. A model that
//! draws random numbers when it predicts is refused at its line, and no file is written.

use crate::run::{json, out_dir, run};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

fn mlx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlx"));
    c.current_dir(crate::root());
    c
}

/// The Python with onnx and onnxruntime: `MLX_ONNX_PYTHON`, else the virtual environment
/// `.ci/run` makes. Without one the onnxruntime half of the comparison is skipped with a
/// notice, unless `MLX_REQUIRE_ONNX` is set (CI sets it).
fn onnx_python() -> Option<PathBuf> {
    let p = std::env::var_os("MLX_ONNX_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/mlx-ci/onnx-venv/bin/python"))
        })
        .filter(|p| p.exists());
    if p.is_none() {
        assert!(
            std::env::var_os("MLX_REQUIRE_ONNX").is_none(),
            "MLX_REQUIRE_ONNX is set but no Python with onnxruntime was found (MLX_ONNX_PYTHON)"
        );
        eprintln!(
            "note: no Python with onnxruntime (MLX_ONNX_PYTHON); only tract runs the exports"
        );
    }
    p
}

fn train(name: &str, spec: &Path, extra: &[&str]) -> PathBuf {
    let out = out_dir(name);
    let mut args = vec![spec.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (o, dir) = run(&args, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.expect("run dir")
}

fn export(dir: &Path) -> PathBuf {
    export_with(dir, &[], "model.onnx")
}

/// `mlx export DIR ARGS -o DIR/FILE`.
fn export_with(dir: &Path, args: &[&str], file: &str) -> PathBuf {
    let o = mlx()
        .arg("export")
        .arg(dir)
        .args(args)
        .arg("-o")
        .arg(dir.join(file))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let path = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    assert_eq!(path, dir.join(file));
    path
}

/// The operator types of an exported model's nodes.
fn op_types(model: &Path) -> Vec<String> {
    use prost::Message;
    let bytes = std::fs::read(model).unwrap();
    let m = mlx::export::proto::Model::decode(bytes.as_slice()).unwrap();
    m.graph
        .unwrap()
        .node
        .into_iter()
        .map(|n| n.op_type)
        .collect()
}

/// What a runtime answered: per row, the probabilities (or `[value]`) and the label.
struct Answer {
    rows: Vec<Vec<f64>>,
    labels: Option<Vec<String>>,
}

/// onnxruntime on `input` (CSV or IDX), through `tests/onnx/run_onnx.py`.
fn onnxruntime(python: &Path, model: &Path, input: &Path) -> (Answer, Value) {
    let out = model.with_extension("ort.json");
    let o = Command::new(python)
        .arg(crate::root().join("tests/onnx/run_onnx.py"))
        .arg(model)
        .arg(input)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = json(&out);
    let rows = doc
        .get("probabilities")
        .or_else(|| doc.get("value"))
        .expect("an output")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let labels = doc.get("label").map(|l| {
        l.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    });
    (Answer { rows, labels }, doc)
}

/// The raw inputs of `input` for tract: CSV columns by the graph's input names and types,
/// or the images of an IDX file as `[N, 1, 28, 28]` floats.
fn tract_inputs(model: &InferenceModel, input: &Path) -> TVec<TValue> {
    let outlets = model.input_outlets().unwrap().to_vec();
    if input.extension().is_some_and(|e| e == "csv") {
        let text = std::fs::read_to_string(input).unwrap();
        let table = mlx::data::csv::parse(&text, ',').unwrap();
        let n = table.len();
        outlets
            .iter()
            .map(|o| {
                let name = &model.node(o.node).name;
                let col = table.header.iter().position(|h| h == name).unwrap();
                let ty = model.outlet_fact(*o).unwrap().datum_type.concretize();
                let t: Tensor = if ty == Some(String::datum_type()) {
                    let v: Vec<String> = (0..n).map(|r| table.get(r, col).to_string()).collect();
                    tract_ndarray::Array2::from_shape_vec((n, 1), v)
                        .unwrap()
                        .into()
                } else if ty == Some(f64::datum_type()) {
                    let v: Vec<f64> = (0..n)
                        .map(|r| table.get(r, col).trim().parse::<f64>().unwrap_or(f64::NAN))
                        .collect();
                    tract_ndarray::Array2::from_shape_vec((n, 1), v)
                        .unwrap()
                        .into()
                } else {
                    let v: Vec<f32> = (0..n)
                        .map(|r| table.get(r, col).trim().parse::<f32>().unwrap_or(f32::NAN))
                        .collect();
                    tract_ndarray::Array2::from_shape_vec((n, 1), v)
                        .unwrap()
                        .into()
                };
                t.into_tvalue()
            })
            .collect()
    } else {
        let mut bytes = Vec::new();
        std::fs::File::open(input)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let n = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let px: Vec<f32> = bytes[16..].iter().map(|b| f32::from(*b)).collect();
        let t: Tensor = tract_ndarray::Array4::from_shape_vec((n, 1, 28, 28), px)
            .unwrap()
            .into();
        tvec![t.into_tvalue()]
    }
}

/// tract on `input`: the model loaded, given the inputs' concrete shapes, optimized and run
/// as a Rust user would. (With the row count left symbolic, tract 0.23's optimizer fails on
/// the unrolled recurrences; its unoptimized plan runs them.)
fn tract(model_path: &Path, input: &Path) -> Answer {
    let mut model = tract_onnx::onnx().model_for_path(model_path).unwrap();
    let inputs = tract_inputs(&model, input);
    for (i, t) in inputs.iter().enumerate() {
        let fact = InferenceFact::dt_shape(t.datum_type(), t.shape());
        model = model.with_input_fact(i, fact).unwrap();
    }
    let plan = model.into_optimized().unwrap().into_runnable().unwrap();
    let out = plan.run(inputs).unwrap();
    let first = out[0].to_plain_array_view::<f32>().unwrap();
    let rows = first
        .outer_iter()
        .map(|r| r.iter().map(|v| f64::from(*v)).collect())
        .collect();
    let labels = out.get(1).map(|l| {
        l.to_plain_array_view::<String>()
            .unwrap()
            .iter()
            .cloned()
            .collect()
    });
    Answer { rows, labels }
}

/// Every row agrees with `mlx predict`: probabilities or values within 1e-4, labels exactly;
/// a row mlx gives no prediction for is NaN in the export.
fn agree(what: &str, got: &Answer, want: &[Value]) -> usize {
    agree_within(what, got, want, 1e-4)
}

/// `agree` within `tolerance` (relative to values past 1).
fn agree_within(what: &str, got: &Answer, want: &[Value], tolerance: f64) -> usize {
    assert_eq!(got.rows.len(), want.len(), "{what}: row count");
    let mut predicted = 0;
    for (i, (row, w)) in got.rows.iter().zip(want).enumerate() {
        if w.is_null() {
            assert!(
                row.iter().any(|v| v.is_nan()),
                "{what}: row {i} has no mlx prediction but the export gives {row:?}"
            );
            continue;
        }
        predicted += 1;
        let expected: Vec<f64> = match w.get("probabilities") {
            Some(p) => p
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .collect(),
            None => vec![w["value"].as_f64().unwrap()],
        };
        assert_eq!(row.len(), expected.len(), "{what}: row {i} width");
        for (a, b) in row.iter().zip(&expected) {
            let tol = tolerance * b.abs().max(1.0);
            assert!(
                (a - b).abs() <= tol,
                "{what}: row {i}: export {row:?}, mlx {expected:?}"
            );
        }
        if let Some(labels) = &got.labels {
            assert_eq!(
                labels[i],
                w["label"].as_str().unwrap(),
                "{what}: row {i} label"
            );
        }
    }
    predicted
}

/// Export `dir` and check both runtimes against `mlx predict` on `input`; gives the number
/// of rows with a prediction.
fn check_export(what: &str, dir: &Path, input: &Path) -> usize {
    let model = export(dir);
    let want = crate::serve::predict_json(dir, &[input]);
    let n = agree(&format!("{what} (tract)"), &tract(&model, input), &want);
    if let Some(py) = onnx_python() {
        let (answer, doc) = onnxruntime(&py, &model, input);
        agree(&format!("{what} (onnxruntime)"), &answer, &want);
        let meta = &doc["metadata"];
        let summary = json(&dir.join("summary.json"));
        assert_eq!(meta["train"], summary["train"], "{what}: metadata");
        assert_eq!(meta["mlx_version"], env!("CARGO_PKG_VERSION"));
        let lock = std::fs::read(dir.join("mlx.lock")).unwrap();
        use sha2::Digest;
        let hex: String = sha2::Sha256::digest(&lock)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(meta["lock"], format!("sha256:{hex}"), "{what}: lock hash");
        assert!(doc["opset"][""].as_i64().unwrap() >= 17);
    }
    n
}

/// Penguins rows with values the training rows never had: unseen islands and sexes, missing
/// numbers and categories.
fn penguins_with_surprises(dir: &Path) -> PathBuf {
    // (A missing island is left out: no step fills it, and `mlx predict` refuses such input.)
    let mut text =
        std::fs::read_to_string(crate::root().join("examples/data/penguins.csv")).unwrap();
    text.push_str(
        "Adelie,Atlantis,39.1,18.7,181,3750,male,2007\n\
         Gentoo,Biscoe,NA,NA,NA,NA,NA,2008\n\
         Chinstrap,Dream,49.0,NA,200,NA,unknown,2009\n\
         Adelie,Dream,41.0,17.0,,3500,,2007\n\
         Gentoo,Torgersen,50.0,15.0,220,5400,female,2030\n",
    );
    let p = dir.join("penguins_more.csv");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn tabular_examples_and_the_best_sweep_trial_export_and_agree_in_onnxruntime_and_tract() {
    let work = out_dir("export-tabular-input");
    let pen_input = penguins_with_surprises(&work);

    let pen = train(
        "export-penguins",
        &crate::root().join("examples/penguins.mlx"),
        &[],
    );
    let n = check_export("penguins", &pen, &pen_input);
    // The NA rows of the file and the extra rows are predicted (imputed), not dropped.
    assert_eq!(n, 344 + 5);

    let diabetes = train(
        "export-diabetes",
        &crate::root().join("examples/diabetes.mlx"),
        &[],
    );
    let n = check_export(
        "diabetes",
        &diabetes,
        &crate::root().join("examples/data/diabetes.csv"),
    );
    assert_eq!(n, 442);
    // An output file that cannot be written is a diagnostic.
    let o = mlx()
        .arg("export")
        .arg(&diabetes)
        .args(["-o", "/nonexistent-dir/model.onnx"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("mlx::export::write"), "{err}");

    let out = out_dir("export-sweep");
    let (o, dir) = run(
        &[
            "examples/penguins_sweep.mlx",
            "--set",
            "epochs=8",
            "--no-plot",
        ],
        &out,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sweep = json(&dir.unwrap().join("sweep.json"));
    let best = PathBuf::from(sweep["best"]["dir"].as_str().expect("best trial dir"));
    let best = if best.is_absolute() {
        best
    } else {
        crate::root().join(best)
    };
    check_export("penguins sweep best trial", &best, &pen_input);

    // Every preprocessing step, unseen levels and missing values, an ordinal code.
    let spec = work.join("every_step.mlx");
    std::fs::write(
        &spec,
        format!(
            r#"use std.nn
dataset pen {{
  source = csv("{}", missing: "NA")
  split  = random(train: 0.7, val: 0.15, test: 0.15, stratify: true)
  features {{
    bill_length_mm:    Float    = impute(constant(40.0)) |> log1p |> min_max
    bill_depth_mm:     Float    = impute(mean) |> robust_scale |> clip(-1.5, 1.5)
    flipper_length_mm: Float    = drop_missing |> scale(0.01) |> winsorize(0.05, 0.95)
    body_mass_g:       Float    = impute(median) |> normalize(mean: 4200.0, std: 800.0)
    island:            Category = ordinal |> standardize
    sex:               Category = impute(mode) |> one_hot
    year:              Float    = standardize
  }}
  target species: Class[3]
}}
model deep(x: Float[B, F]) -> Float[B, C] {{
  x |> dense(16) |> gelu |> dense(16) |> silu |> dropout(0.1) |> dense(C) |> leaky_relu
}}
train every_step {{
  model = deep  data = pen  loss = cross_entropy  optimizer = adam(lr: 0.01)
  epochs = 20  batch = 32  seed = 11
}}
"#,
            crate::root().join("examples/data/penguins.csv").display()
        ),
    )
    .unwrap();
    let every = train("export-every-step", &spec, &[]);
    let n = check_export("every step", &every, &pen_input);
    // Rows whose flipper length is missing have no prediction (`drop_missing`).
    assert!(n < 349 && n > 330, "{n}");
}

/// Small Fashion-MNIST files: the first `n` records of a gzip IDX file, uncompressed.
fn idx_head(src: &str, n: usize, to: &Path) {
    let mut d = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap())
        .read_to_end(&mut d)
        .unwrap();
    let rank = d[3] as usize;
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(d[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let per: usize = dims[1..].iter().product();
    let header = 4 + 4 * rank;
    let mut out = d[..4].to_vec();
    out.extend((n as u32).to_be_bytes());
    for x in &dims[1..] {
        out.extend((*x as u32).to_be_bytes());
    }
    out.extend(&d[header..header + n * per]);
    std::fs::write(to, out).unwrap();
}

#[test]
fn fashion_models_export_and_agree_in_onnxruntime_and_tract() {
    if !crate::have_fashion("fashion_models_export_and_agree_in_onnxruntime_and_tract") {
        return;
    }
    let work = out_dir("export-fashion-input");
    let f = crate::FASHION;
    for (name, file, n) in [
        ("train-images", "train-images-idx3-ubyte.gz", 1500),
        ("train-labels", "train-labels-idx1-ubyte.gz", 1500),
        ("test-images.idx", "t10k-images-idx3-ubyte.gz", 200),
        ("test-labels.idx", "t10k-labels-idx1-ubyte.gz", 200),
    ] {
        idx_head(&format!("{f}/{file}"), n, &work.join(name));
    }
    // The examples' own data definition on fewer rows: the models are the examples'.
    let data = std::fs::read_to_string(crate::root().join("examples/fashion_data.mlx"))
        .unwrap()
        .replace(
            &format!("{f}/train-images-idx3-ubyte.gz"),
            &work.join("train-images").display().to_string(),
        )
        .replace(
            &format!("{f}/train-labels-idx1-ubyte.gz"),
            &work.join("train-labels").display().to_string(),
        )
        .replace(
            &format!("{f}/t10k-images-idx3-ubyte.gz"),
            &work.join("test-images.idx").display().to_string(),
        )
        .replace(
            &format!("{f}/t10k-labels-idx1-ubyte.gz"),
            &work.join("test-labels.idx").display().to_string(),
        );
    assert!(
        data.contains("test-images.idx"),
        "the data file changed shape"
    );
    std::fs::write(work.join("fashion_data.mlx"), data).unwrap();
    std::fs::write(
        work.join("fashion_cnn.mlx"),
        r#"use std.nn
use "fashion_data.mlx"
// Strides, padding, batch norm, overlapping padded max pooling, average pooling.
model cnn(x: Float[B, 1, 28, 28]) -> Float[B, 10] {
  x |> conv2d(8, 3, stride: 2, padding: 1) |> batch_norm |> gelu
    |> max_pool2d(3, stride: 1, padding: 1)
    |> conv2d(16, 3, padding: 1) |> leaky_relu
    |> avg_pool2d(2)
    |> flatten |> dropout(0.2) |> dense(10)
}
train fashion_cnn {
  model = cnn  data = fashion  loss = cross_entropy  optimizer = adam(lr: 2e-3)
  epochs = 1  batch = 64  seed = 2
}
"#,
    )
    .unwrap();
    let test = work.join("test-images.idx");
    for ex in ["mlp", "lenet", "lstm", "gru", "cnn"] {
        let file = format!("fashion_{ex}.mlx");
        let spec = work.join(&file);
        if ex != "cnn" {
            std::fs::copy(crate::root().join("examples").join(&file), &spec).unwrap();
        }
        let dir = train(&format!("export-{ex}"), &spec, &["--set", "epochs=1"]);
        let n = check_export(&file, &dir, &test);
        assert_eq!(n, 200);
    }
}

#[test]
fn a_model_that_draws_random_numbers_when_predicting_is_refused_at_its_line() {
    let work = out_dir("export-refused");
    let spec = work.join("noisy.mlx");
    std::fs::write(
        &spec,
        format!(
            r#"use std.nn
dataset d {{
  source = csv("{}")
  split  = random(train: 0.8, val: 0.2)
  features {{ *: Float = standardize }}
  target progression: Float
}}
model noisy(x: Float[B, F]) -> Float[B, 1] {{
  x * bernoulli(x, 0.9) |> dense(1)
}}
train noisy_run {{
  model = noisy  data = d  loss = mse  optimizer = sgd(lr: 0.001)  epochs = 2  batch = 32
}}
"#,
            crate::root().join("examples/data/diabetes.csv").display()
        ),
    )
    .unwrap();
    let dir = train("export-noisy", &spec, &[]);
    let o = mlx().arg("export").arg(&dir).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("mlx::export::unsupported"), "{err}");
    assert!(err.contains("draws random numbers"), "{err}");
    // The label points at the line of `bernoulli` in the run's spec.mlx.
    let spec = std::fs::read_to_string(dir.join("spec.mlx")).unwrap();
    let line = 1 + spec.lines().position(|l| l.contains("bernoulli")).unwrap();
    assert!(err.contains(&format!("spec.mlx:{line}:7]")), "{err}");
    assert!(!dir.join("model.onnx").exists());
    assert!(o.stdout.is_empty());

    // `--model` names the model a run holds.
    let o = mlx()
        .arg("export")
        .arg(&dir)
        .args(["--model", "generator"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("mlx::export::model") && err.contains("`noisy`"),
        "{err}"
    );
}

/// A tree model's export: by default one `ai.onnx.ml` tree operator (with the preprocessing in
/// front) that onnxruntime answers as `mlx predict` does within 1e-5, labels exactly (tract
/// too where it has the operator: classifiers); with `--plain`, standard operators only (the
/// prediction program), which both runtimes answer within 1e-4. Gives the rows predicted.
fn check_tree_export(what: &str, dir: &Path, input: &Path) -> usize {
    let want = crate::serve::predict_json(dir, &[input]);
    let model = export(dir);
    let ops = op_types(&model);
    let regression = want.iter().any(|w| w.get("value").is_some());
    let tree_op = if regression {
        "TreeEnsembleRegressor"
    } else {
        "TreeEnsembleClassifier"
    };
    assert_eq!(
        ops.iter().filter(|o| *o == tree_op).count(),
        1,
        "{what}: {ops:?}"
    );
    // The program's leaf sums are gone (preprocessing sums nothing).
    assert!(!ops.iter().any(|o| o == "ReduceSum"), "{what}: {ops:?}");
    let mut n = 0;
    if !regression {
        n = agree_within(
            &format!("{what} (tract)"),
            &tract(&model, input),
            &want,
            1e-5,
        );
    }
    if let Some(py) = onnx_python() {
        let (answer, doc) = onnxruntime(&py, &model, input);
        n = agree_within(&format!("{what} (onnxruntime)"), &answer, &want, 1e-5);
        assert_eq!(doc["opset"]["ai.onnx.ml"].as_i64(), Some(1), "{what}");
    }
    let plain = export_with(dir, &["--plain"], "plain.onnx");
    let plain_ops = op_types(&plain);
    assert!(!plain_ops.iter().any(|o| o.starts_with("TreeEnsemble")));
    assert!(
        plain_ops.iter().any(|o| o == "ReduceSum"),
        "{what}: {plain_ops:?}"
    );
    let p = agree(
        &format!("{what} plain (tract)"),
        &tract(&plain, input),
        &want,
    );
    if let Some(py) = onnx_python() {
        agree(
            &format!("{what} plain (onnxruntime)"),
            &onnxruntime(&py, &plain, input).0,
            &want,
        );
    }
    assert!(n == 0 || n == p, "{what}: {n} rows predicted, {p} plain");
    p
}

/// Tree ensembles export as `TreeEnsembleClassifier`/`Regressor` (and, with `--plain`, as
/// their prediction program) and agree with `mlx predict` in onnxruntime and tract, on rows
/// with missing values and unseen categories; classification with three classes (boosted and
/// forest) and two (boosted: the logistic convention; forest), missing values kept for the
/// trees, and regression.
#[test]
fn tree_ensembles_export_and_agree_in_onnxruntime_and_tract() {
    let work = out_dir("export-trees");
    let pen_input = penguins_with_surprises(&work);
    for t in ["penguins_boosted", "penguins_forest"] {
        let dir = train(
            &format!("export-{t}"),
            &crate::root().join("examples/penguins_trees.mlx"),
            &["--train", t],
        );
        assert_eq!(check_tree_export(t, &dir, &pen_input), 344 + 5);
    }
    // Missing values kept for the trees (`keep_missing`): NaN reaches them in ONNX too, and the
    // rows with NA are predicted, not marked.
    let spec = work.join("penguins_kept.mlx");
    std::fs::write(
        &spec,
        format!(
            r#"dataset penguins {{
  source = csv("{}", missing: "NA")
  split  = random(train: 0.7, val: 0.15, test: 0.15, stratify: true)
  features {{
    bill_length_mm:    Float    = keep_missing
    bill_depth_mm:     Float    = keep_missing
    flipper_length_mm: Float    = keep_missing
    body_mass_g:       Float    = keep_missing
    island:            Category = one_hot
    sex:               Category = impute(mode) |> one_hot
  }}
  target species: Class[3]
}}

train penguins_boosted {{
  model = gradient_boosting(trees: 40, depth: 4)
  data  = penguins
  seed  = 7
}}
"#,
            crate::root().join("examples/data/penguins.csv").display()
        ),
    )
    .unwrap();
    let dir = train("export-trees-kept", &spec, &[]);
    assert_eq!(
        check_tree_export("penguins kept", &dir, &pen_input),
        344 + 5
    );
    // Two classes: boosting's one tree a round, and a forest's two.
    let titanic = crate::root().join("tests/data/trees/titanic");
    let spec = work.join("titanic.mlx");
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
  target survived: Class[2]
}}

train boosted {{
  model = gradient_boosting(trees: 30, depth: 4)
  data  = d
  seed  = 3
}}

train forest {{
  model = random_forest(trees: 20, depth: 6)
  data  = d
  seed  = 3
}}
"#,
            titanic.join("train.csv").display(),
            titanic.join("val.csv").display(),
            titanic.join("test.csv").display()
        ),
    )
    .unwrap();
    let rows = std::fs::read_to_string(titanic.join("test.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    for t in ["boosted", "forest"] {
        let dir = train(&format!("export-titanic-{t}"), &spec, &["--train", t]);
        let n = check_tree_export(&format!("titanic {t}"), &dir, &titanic.join("test.csv"));
        assert_eq!(n, rows, "titanic {t}");
    }
    let text = std::fs::read_to_string(crate::root().join("examples/diabetes.mlx"))
        .unwrap()
        .replace(
            "data/diabetes.csv",
            &crate::root()
                .join("examples/data/diabetes.csv")
                .display()
                .to_string(),
        )
        .replace("*: Float = standardize", "*: Float = impute(mean)")
        .replace(
            "model     = linear",
            "model     = gradient_boosting(trees: 40, depth: 3)",
        )
        .replace(
            "  loss      = mse\n  optimizer = sgd(lr: 0.005, momentum: 0.9)\n  epochs    = 100\n",
            "",
        );
    let spec = work.join("diabetes_trees.mlx");
    std::fs::write(&spec, text).unwrap();
    let dir = train("export-diabetes-trees", &spec, &[]);
    let n = check_tree_export(
        "diabetes boosted",
        &dir,
        &crate::root().join("examples/data/diabetes.csv"),
    );
    assert_eq!(n, 442);
}
