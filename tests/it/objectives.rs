//! Trains with several models and objectives, end to end through the binary: the canonical
//! autoencoder and GAN run from `examples/`, per-objective figures land in `metrics.jsonl`
//! and `summary.json`, samples are written as PNG grids and safetensors, a GAN killed with
//! SIGKILL resumes to the bit-identical weights and samples, a loss written as an
//! expression equals the built-in it spells out, and `--set` reaches into objectives and
//! models.

use crate::run::{json, out_dir, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tract_onnx::prelude::*;

fn mlx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlx"));
    c.current_dir(crate::root()).env("COLUMNS", "400");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The f32 values of tensor `name` in a safetensors file, with its shape.
fn tensor(path: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let data = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (t.shape().to_vec(), data)
}

#[test]
fn the_canonical_autoencoder_runs_and_reports_its_objective() {
    if !crate::have_fashion("the autoencoder example") {
        return;
    }
    let out = out_dir("autoencoder");
    let (o, dir) = run(
        &[
            "examples/fashion_autoencoder.mlx",
            "--set",
            "epochs=2",
            "--no-plot",
        ],
        &out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = dir.unwrap();
    let ls = lines(&dir);
    assert_eq!(ls.len(), 2);
    let train: Vec<f64> = ls
        .iter()
        .map(|l| l["train"]["reconstruct"].as_f64().unwrap())
        .collect();
    let val: Vec<f64> = ls
        .iter()
        .map(|l| l["val"]["reconstruct"].as_f64().unwrap())
        .collect();
    // Pixels in [0, 1]: predicting the mean image scores about 0.09; the code must beat it
    // by far, and the second epoch must improve on the first.
    assert!(
        val[1] < 0.03 && val[1] < val[0],
        "val {val:?} train {train:?}"
    );
    let s = json(&dir.join("summary.json"));
    let test = s["test"]["reconstruct"].as_f64().unwrap();
    assert!(
        test < 0.03 && (test - val[1]).abs() < 0.005,
        "test {test}, val {val:?}"
    );
    // Every model's parameters are in the model file, named by the model.
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = st.names().into_iter().map(String::from).collect();
    assert!(names.iter().any(|n| n.starts_with("enc.")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("dec.")), "{names:?}");
    // The resolved program holds the blocks, and checks again on its own.
    let spec = std::fs::read_to_string(dir.join("spec.mlx")).unwrap();
    assert!(spec.contains("objective reconstruct {"), "{spec}");
    assert!(spec.contains("enc = encoder(code: 32)"), "{spec}");
    let c = mlx()
        .arg("check")
        .arg(dir.join("spec.mlx"))
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", stderr(&c));
}

#[test]
fn the_canonical_gan_runs_and_draws_samples() {
    if !crate::have_fashion("the GAN example") {
        return;
    }
    let out = out_dir("gan");
    let (o, dir) = run(
        &["examples/fashion_gan.mlx", "--set", "epochs=1", "--no-plot"],
        &out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = dir.unwrap();
    let ls = lines(&dir);
    assert_eq!(ls.len(), 1);
    for k in ["discriminate", "generate"] {
        let v = ls[0]["train"][k].as_f64().unwrap();
        assert!(v.is_finite() && v > 0.0, "{k}: {v}");
    }
    assert!(
        ls[0].get("val").is_none_or(Value::is_null),
        "no split: no validation"
    );
    let (shape, data) = tensor(&dir.join("samples.safetensors"), "samples");
    assert_eq!(shape, vec![64, 1, 28, 28]);
    assert!(data.iter().all(|v| (-1.0..=1.0).contains(v)), "tanh output");
    // Samples are not all alike: the generator responds to its noise.
    let spread = data
        .iter()
        .zip(&data[784..])
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>();
    assert!(spread > 1.0, "{spread}");
    let png = std::fs::read(dir.join("samples/epoch-1.png")).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    // 8 x 8 images of 28 pixels with 2-pixel gaps.
    assert_eq!((img.width(), img.height()), (8 * 30 + 2, 8 * 30 + 2));
}

/// Start `mlx run`, SIGKILL it once `ready` holds for its metrics lines; the run directory.
fn run_and_kill(args: &[&str], out: &Path, ready: impl Fn(&[Value]) -> bool) -> PathBuf {
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
        if let Some(dir) = dir
            && ready(&lines(&dir))
        {
            child.kill().unwrap(); // SIGKILL
            assert!(!child.wait().unwrap().success());
            assert!(
                !dir.join("model.safetensors").exists(),
                "the run finished before it was killed"
            );
            return dir;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be killed");
        }
        assert!(started.elapsed() < Duration::from_secs(300), "run hangs");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_gan_killed_at_a_random_epoch_resumes_to_identical_weights_and_samples() {
    if !crate::have_fashion("the GAN resume test") {
        return;
    }
    let work = out_dir("gan-kill");
    let file = "tests/programs/fashion_gan_small.mlx";
    let (o, reference) = run(&[file, "--no-plot"], &work.join("ref"));
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = reference.unwrap();
    // A random epoch of the six (the clock's nanoseconds), killed as soon as it is logged.
    let at = 1
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as usize)
            % 4;
    eprintln!("killing after epoch {at}");
    let killed = run_and_kill(&[file], &work.join("killed"), |l| l.len() >= at);
    let r = mlx()
        .arg("resume")
        .arg(&killed)
        .args(["-q", "--no-plot"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", stderr(&r));
    for f in [
        "model.safetensors",
        "samples.safetensors",
        "samples/epoch-6.png",
    ] {
        let (a, b) = (
            std::fs::read(reference.join(f)).unwrap(),
            std::fs::read(killed.join(f)).unwrap(),
        );
        assert!(a == b, "{f} differs after resume");
    }
    let (la, lb) = (lines(&reference), lines(&killed));
    assert_eq!(la.len(), lb.len());
    for (a, b) in la.iter().zip(&lb) {
        assert_eq!(a["train"], b["train"]);
    }

    // The generator alone as ONNX: on the draws `samples` used (stream `samples/0`), tract
    // gives the samples the run wrote.
    let onnx = work.join("g.onnx");
    let e = mlx()
        .arg("export")
        .arg(&reference)
        .args(["--model", "g", "-o"])
        .arg(&onnx)
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", stderr(&e));
    let z = mlx::train::objectives::noise(3, "samples/0", &[16, 16]);
    let model = tract_onnx::onnx()
        .model_for_path(&onnx)
        .unwrap()
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), [16, 16]))
        .unwrap();
    let plan = model.into_optimized().unwrap().into_runnable().unwrap();
    let input: Tensor = tract_ndarray::Array2::from_shape_vec((16, 16), z.as_f32().to_vec())
        .unwrap()
        .into();
    let out = plan.run(tvec![input.into_tvalue()]).unwrap();
    let got = out[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(got.shape(), &[16, 1, 28, 28]);
    let (_, want) = tensor(&reference.join("samples.safetensors"), "samples");
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "the exported generator differs by {worst}");
    // `mlx predict --model g` on the same draws as JSON rows: the same samples.
    let rows: Vec<Vec<f32>> = z.as_f32().chunks(16).map(<[f32]>::to_vec).collect();
    let input = work.join("latent.json");
    std::fs::write(&input, serde_json::to_string(&rows).unwrap()).unwrap();
    let p = mlx()
        .arg("predict")
        .arg(&reference)
        .args(["--model", "g", "--format", "json"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", stderr(&p));
    let doc: Value = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(doc["shape"], serde_json::json!([1, 28, 28]));
    let mut flat = Vec::new();
    fn walk(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(xs) => xs.iter().for_each(|x| walk(x, out)),
            Value::Number(n) => out.push(n.as_f64().unwrap() as f32),
            _ => panic!("{v}"),
        }
    }
    walk(&doc["predictions"], &mut flat);
    assert_eq!(flat, want, "predict --model g gives the run's samples");
    // A row of the wrong width is a diagnostic.
    std::fs::write(&input, "[[1, 2, 3]]").unwrap();
    let p = mlx()
        .arg("predict")
        .arg(&reference)
        .args(["--model", "g"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(p.status.code(), Some(1), "{}", stderr(&p));
    assert!(
        stderr(&p).contains("row 1 has 3 numbers, but a row of this model has 16"),
        "{}",
        stderr(&p)
    );
    // `mlx serve --model g --model d`: each under TRAIN.MODEL, tensors in and out. The
    // generator gives the run's samples for the same draws; the discriminator gives what
    // `mlx predict --model d` gives for those samples.
    let server = crate::serve::Server::start(&[&reference], &["--model", "g", "--model", "d"]);
    let (status, text) = server.call(
        "POST",
        "/v1/models/small_gan.g:predict",
        "application/json",
        serde_json::json!({ "instances": rows })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["shape"], serde_json::json!([1, 28, 28]));
    let mut served = Vec::new();
    walk(&doc["predictions"], &mut served);
    assert_eq!(served, want, "serve --model g gives the run's samples");
    let images: Vec<Vec<f32>> = want.chunks(784).map(<[f32]>::to_vec).collect();
    let (status, text) = server.call(
        "POST",
        "/v1/models/small_gan.d:predict",
        "application/json",
        serde_json::json!({ "instances": images })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let mut scores = Vec::new();
    walk(
        &serde_json::from_str::<Value>(&text).unwrap()["predictions"],
        &mut scores,
    );
    std::fs::write(&input, serde_json::to_string(&images).unwrap()).unwrap();
    let p = mlx()
        .arg("predict")
        .arg(&reference)
        .args(["--model", "d", "--format", "json"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", stderr(&p));
    let mut predicted = Vec::new();
    walk(
        &serde_json::from_slice::<Value>(&p.stdout).unwrap()["predictions"],
        &mut predicted,
    );
    assert_eq!(scores.len(), 16);
    assert_eq!(
        scores, predicted,
        "serve --model d agrees with predict --model d"
    );
    // Metadata names the model and its shapes; a row of the wrong size is a 400 naming it.
    let (status, meta) = server.call("GET", "/v1/models/small_gan.d", "", b"");
    assert_eq!(status, 200);
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["input"]["shape"], serde_json::json!([1, 28, 28]));
    assert_eq!(meta["output"]["shape"], serde_json::json!([1]));
    let (status, text) = server.call(
        "POST",
        "/v1/models/small_gan.g:predict",
        "application/json",
        br#"{"instances": [[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], [1, 2]]}"#,
    );
    assert_eq!(status, 400, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (e["reason"].as_str(), e["row"].as_u64()),
        (Some("shape"), Some(1))
    );
    let (status, text) = server.call(
        "POST",
        "/v1/models/small_gan.g:predict",
        "text/csv",
        b"1,2,nan\n",
    );
    assert_eq!(status, 400, "{text}");
    drop(server);
    // A model the run does not have: exit 1, with the names it has.
    let s = mlx()
        .arg("serve")
        .arg(&reference)
        .args(["--port", "0", "--model", "gg"])
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(1), "{}", stderr(&s));
    assert!(
        stderr(&s).contains("mlx::serve::model") && stderr(&s).contains("did you mean `g`"),
        "{}",
        stderr(&s)
    );
    // Without `--model`, the export says which models there are.
    let e = mlx().arg("export").arg(&reference).output().unwrap();
    assert_eq!(e.status.code(), Some(1));
    assert!(
        stderr(&e).contains("mlx::export::model") && stderr(&e).contains("--model g"),
        "{}",
        stderr(&e)
    );
}

#[test]
fn a_loss_written_as_an_expression_trains_and_set_reaches_into_objectives() {
    let out = out_dir("smoothing");
    let args = [
        "examples/penguins_smoothing.mlx",
        "--set",
        "objective.fit.optimizer.lr=0.02",
        "--set",
        "models.m.hidden=16",
        "--no-plot",
    ];
    let (o, dir) = run(&args, &out.join("a"));
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = dir.unwrap();
    let spec = std::fs::read_to_string(dir.join("spec.mlx")).unwrap();
    assert!(spec.contains("m = classifier(hidden: 16)"), "{spec}");
    assert!(spec.contains("optimizer = adam(lr: 0.02"), "{spec}");
    let ls = lines(&dir);
    let first = ls[0]["val"]["fit"].as_f64().unwrap();
    let s = json(&dir.join("summary.json"));
    let best = s["val"]["fit"].as_f64().unwrap();
    // ln 3 = 1.10 is chance; the smoothed loss cannot go below about 0.2.
    assert!(best < 0.6 && best < first, "val.fit {first} -> {best}");
    // Bit-identical on another thread count.
    let (o2, dir2) = run(&args, &out.join("b"));
    assert!(o2.status.success(), "{}", stderr(&o2));
    let again = mlx()
        .env("MLX_THREADS", "1")
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out.join("c"))
        .arg("-q")
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let dir3 = PathBuf::from(
        String::from_utf8_lossy(&again.stdout)
            .lines()
            .last()
            .unwrap(),
    );
    let m = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(m(&dir) == m(&dir2.unwrap()));
    assert!(m(&dir) == m(&dir3));
    // A path into an objective that does not exist is a diagnostic.
    let bad = mlx()
        .args([
            "check",
            "examples/penguins_smoothing.mlx",
            "--set",
            "objective.fitt.optimizer.lr=1",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("mlx::set::unknown") && stderr(&bad).contains("did you mean `fit`?"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn predicting_with_a_multi_model_run_says_what_is_missing() {
    let out = out_dir("multi-predict");
    let (o, dir) = run(
        &[
            "examples/penguins_smoothing.mlx",
            "--set",
            "epochs=1",
            "--no-plot",
        ],
        &out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let p = mlx()
        .arg("predict")
        .arg(dir.unwrap())
        .arg("examples/data/penguins.csv")
        .output()
        .unwrap();
    assert_eq!(p.status.code(), Some(1), "{}", stderr(&p));
    assert!(stderr(&p).contains("mlx::rundir::models"), "{}", stderr(&p));
}

#[test]
fn a_sweep_varies_an_objective_and_a_model_and_picks_by_an_objective() {
    let work = out_dir("objective-sweep");
    std::fs::create_dir_all(work.join("data")).unwrap();
    std::fs::copy(
        crate::root().join("examples/data/penguins.csv"),
        work.join("data/penguins.csv"),
    )
    .unwrap();
    let text = std::fs::read_to_string(crate::root().join("examples/penguins_smoothing.mlx"))
        .unwrap()
        .replace("epochs     = 40", "epochs     = 8");
    let file = work.join("sweep.mlx");
    std::fs::write(
        &file,
        format!(
            "{text}\nsweep lr_and_width {{\n  base = penguins_smoothed\n  objective = minimize(val.fit)\n  grid {{\n    objective.fit.optimizer.lr = [0.001, 0.05]\n    models.m.hidden = [4, 16]\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let o = mlx()
        .arg("run")
        .arg(&file)
        .args(["--out"])
        .arg(work.join("runs"))
        .args(["-q", "--no-plot"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let sweep_dir = std::fs::read_dir(work.join("runs/lr_and_width"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let doc = json(&sweep_dir.join("sweep.json"));
    let trials = doc["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4, "{doc}");
    let values: Vec<f64> = trials
        .iter()
        .map(|t| t["objective"].as_f64().unwrap())
        .collect();
    // 8 epochs at lr 0.001 barely move from chance (ln 3); at 0.05 the loss falls far below.
    let best = values.iter().copied().fold(f64::INFINITY, f64::min);
    let worst = values.iter().copied().fold(0.0, f64::max);
    assert!(best < 0.5 && worst > 0.8, "{values:?}");
    assert_eq!(doc["best"]["objective"].as_f64().unwrap(), best, "{doc}");
    assert_eq!(doc["objective"], "val.fit");
    // An objective the base train does not have is named, with the ones it has.
    std::fs::write(
        &file,
        format!(
            "{text}\nsweep s {{\n  base = penguins_smoothed\n  objective = minimize(val.fitt)\n  grid {{\n    objective.fit.optimizer.lr = [0.001, 0.05]\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let c = mlx().arg("check").arg(&file).output().unwrap();
    assert_eq!(c.status.code(), Some(1));
    assert!(
        stderr(&c).contains("mlx::sweep::objective") && stderr(&c).contains("val.fit"),
        "{}",
        stderr(&c)
    );
}

#[test]
fn early_stopping_keeps_the_best_epochs_models_and_their_samples() {
    if !crate::have_fashion("the GAN early-stopping test") {
        return;
    }
    let work = out_dir("gan-early-stop");
    // The generator's loss rises as the discriminator learns: the first epoch is its best.
    let (o, dir) = run(
        &[
            "tests/programs/fashion_gan_small.mlx",
            "--set",
            "early_stop=early_stopping(monitor: train.generate, patience: 1)",
            "--no-plot",
        ],
        &work,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = dir.unwrap();
    let summary = json(&dir.join("summary.json"));
    let (best, ran) = (
        summary["best_epoch"].as_u64().unwrap(),
        summary["epochs_run"].as_u64().unwrap(),
    );
    assert!(
        best < ran,
        "best epoch {best} of {ran}: no earlier epoch was restored"
    );
    // samples.safetensors is what the kept generator makes of the samples' draws.
    let z = mlx::train::objectives::noise(3, "samples/0", &[16, 16]);
    let rows: Vec<Vec<f32>> = z.as_f32().chunks(16).map(<[f32]>::to_vec).collect();
    let input = work.join("latent.json");
    std::fs::write(&input, serde_json::to_string(&rows).unwrap()).unwrap();
    let p = mlx()
        .arg("predict")
        .arg(&dir)
        .args(["--model", "g", "--format", "csv"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", stderr(&p));
    let predicted: Vec<f32> = String::from_utf8(p.stdout)
        .unwrap()
        .split([',', '\n'])
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (_, samples) = tensor(&dir.join("samples.safetensors"), "samples");
    assert_eq!(
        samples, predicted,
        "samples.safetensors is not the kept generator's"
    );
}
