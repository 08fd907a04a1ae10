//! `mlx monitor` and the serve drift endpoint on penguins: a shifted copy (body mass +20%, a
//! new island level) is flagged on exactly the shifted columns, bootstrap resamples of the
//! training rows are not flagged at the default limits, the endpoint agrees with the command
//! on the same rows, and bad input is a diagnostic.

use crate::run::{json, out_dir, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn mlx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlx"));
    c.current_dir(crate::root());
    c
}

fn penguins_run(name: &str) -> PathBuf {
    let out = out_dir(name);
    let (o, dir) = run(&["examples/penguins.mlx", "--no-plot"], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.expect("run dir")
}

fn penguins_lines() -> Vec<String> {
    std::fs::read_to_string(crate::root().join("examples/data/penguins.csv"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The CSV lines (header first) of the run's training rows, from its own program and seed.
fn training_lines(dir: &Path) -> Vec<String> {
    let checked = mlx::driver::check_file(&dir.join("spec.mlx"), &[]);
    let program = checked.program.as_ref().expect("program");
    let plan = &program.trains[0];
    let dset = mlx::train::run::dataset(program, plan).unwrap();
    let data = mlx::data::Data::load(dset).unwrap();
    let folds = data.folds(dset, plan.seed).unwrap();
    let lines = penguins_lines();
    let mut out = vec![lines[0].clone()];
    for r in &folds[0].train {
        let (_, line) = data.origin(*r);
        out.push(lines[line - 1].clone());
    }
    out
}

fn monitor_json(dir: &Path, input: &Path, out: &Path, extra: &[&str]) -> (i32, Value, String) {
    let o = mlx()
        .arg("monitor")
        .arg(dir)
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let doc = if out.join("drift.json").exists() {
        json(&out.join("drift.json"))
    } else {
        Value::Null
    };
    (o.status.code().unwrap_or(-1), doc, err)
}

fn drifted(doc: &Value) -> Vec<String> {
    doc["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_shifted_copy_is_flagged_on_the_shifted_columns_and_bootstrap_resamples_are_not() {
    let dir = penguins_run("monitor");
    let profile = json(&dir.join("profile.json"));
    assert_eq!(profile["columns"].as_array().unwrap().len(), 6);
    let work = out_dir("monitor-input");

    // Body mass +20% and every third island a new level.
    let lines = penguins_lines();
    let header: Vec<&str> = lines[0].split(',').collect();
    let mass = header.iter().position(|h| *h == "body_mass_g").unwrap();
    let island = header.iter().position(|h| *h == "island").unwrap();
    let mut shifted = vec![lines[0].clone()];
    for (i, l) in lines[1..].iter().enumerate() {
        let mut f: Vec<String> = l.split(',').map(String::from).collect();
        if let Ok(x) = f[mass].parse::<f64>() {
            f[mass] = format!("{}", x * 1.2);
        }
        if i % 3 == 0 {
            f[island] = "Atlantis".into();
        }
        shifted.push(f.join(","));
    }
    let shifted_csv = work.join("shifted.csv");
    std::fs::write(&shifted_csv, shifted.join("\n") + "\n").unwrap();
    let out = work.join("shifted");
    let (code, doc, err) = monitor_json(&dir, &shifted_csv, &out, &["--fail-on", "psi=0.2"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(drifted(&doc), ["body_mass_g", "island"], "{doc:#}");
    assert!(
        err.contains("mlx::monitor::drift")
            && err.contains("`body_mass_g`")
            && err.contains("`island`"),
        "{err}"
    );
    let col = |name: &str| {
        doc["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert!(col("island")["unseen"].as_f64().unwrap() > 0.3);
    assert_eq!(col("island")["unseen_levels"][0][0], "Atlantis");
    assert!(col("body_mass_g")["ks"].as_f64().unwrap() > 0.3);
    // The file holds the target: the model's figures on it, beside the test figures.
    assert!(doc["figures"]["new"]["accuracy"].as_f64().is_some());
    for f in [
        "drift.json",
        "drift.svg",
        "drift-body_mass_g.svg",
        "drift-island.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // Without --fail-on the same drift is reported, exit 0.
    let (code, doc, err) = monitor_json(&dir, &shifted_csv, &work.join("plain"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(drifted(&doc), ["body_mass_g", "island"]);

    // 40 bootstrap resamples of the training rows: at the default limits, at least 38 flag
    // no column.
    let train = training_lines(&dir);
    assert_eq!(train.len() - 1, profile["rows"].as_u64().unwrap() as usize);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut quiet = 0;
    let mut seen = Vec::new();
    for k in 0..40 {
        let mut rows = vec![train[0].clone()];
        for _ in 1..train.len() {
            rows.push(train[1 + (next() as usize) % (train.len() - 1)].clone());
        }
        let p = work.join(format!("boot{k}.csv"));
        std::fs::write(&p, rows.join("\n") + "\n").unwrap();
        let (code, doc, err) = monitor_json(&dir, &p, &work.join(format!("boot{k}")), &[]);
        assert_eq!(code, 0, "{err}");
        let d = drifted(&doc);
        if d.is_empty() {
            quiet += 1;
        }
        seen.push(d);
    }
    assert!(quiet >= 38, "{quiet} of 40 resamples unflagged: {seen:?}");
}

#[test]
fn the_serve_drift_endpoint_agrees_with_monitor_and_bad_input_is_a_diagnostic() {
    let dir = penguins_run("monitor-serve");
    let work = out_dir("monitor-serve-input");
    // The feature columns only (the server refuses columns the model does not take).
    let lines = penguins_lines();
    let features: Vec<String> = lines
        .iter()
        .map(|l| l.split(',').skip(1).take(6).collect::<Vec<_>>().join(","))
        .collect();
    let csv = work.join("features.csv");
    std::fs::write(&csv, features.join("\n") + "\n").unwrap();

    let server = crate::serve::Server::start(&[&dir], &[]);
    let (status, _) = server.call("GET", "/v1/models/penguins_mlp/drift", "", b"");
    assert_eq!(status, 200);
    // Sent in two requests, in another order: the window holds the same rows.
    let half = features.len() / 2;
    let second = [features[0].clone()]
        .into_iter()
        .chain(features[half..].iter().cloned())
        .collect::<Vec<_>>()
        .join("\n");
    let first = features[..half].join("\n");
    for body in [second, first] {
        let (status, text) = server.call(
            "POST",
            "/v1/models/penguins_mlp:predict",
            "text/csv",
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{text}");
    }
    let (status, text) = server.call("GET", "/v1/models/penguins_mlp/drift", "", b"");
    assert_eq!(status, 200, "{text}");
    let served: Value = serde_json::from_str(&text).unwrap();
    let (code, mut doc, err) = monitor_json(&dir, &csv, &work.join("m"), &[]);
    assert_eq!(code, 0, "{err}");
    doc.as_object_mut().unwrap().remove("figures");
    assert_eq!(served, doc);
    assert_eq!(served["rows"], 344);
    let (_, metrics) = server.call("GET", "/metrics", "", b"");
    assert!(
        metrics.contains("mlx_drift_psi{model=\"penguins_mlp\",column=\"body_mass_g\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("mlx_drift_window_rows{model=\"penguins_mlp\"} 344"));
    drop(server);

    // Bad input: columns the model does not know, an empty file, a header alone, a bad
    // limit, a run without a profile.
    let cases: [(&str, &str, &[&str], &str); 4] = [
        (
            "unknown.csv",
            "a,b,c\n1,2,3\n",
            &[],
            "mlx::data::column_missing",
        ),
        ("empty.csv", "", &[], "mlx::"),
        (
            "header.csv",
            &(lines[0].clone() + "\n"),
            &[],
            "mlx::monitor::empty",
        ),
        (
            "ok.csv",
            &lines.join("\n"),
            &["--fail-on", "psi=high"],
            "mlx::monitor::fail_on",
        ),
    ];
    for (name, text, extra, code) in cases {
        let p = work.join(name);
        std::fs::write(&p, text).unwrap();
        let (status, _, err) = monitor_json(&dir, &p, &work.join(format!("bad-{name}")), extra);
        assert_eq!(status, 1, "{name}: {err}");
        assert!(err.contains(code), "{name}: {err}");
    }
    std::fs::remove_file(dir.join("profile.json")).unwrap();
    let (status, _, err) = monitor_json(&dir, &csv, &work.join("old"), &[]);
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("profile.json") && err.contains("reference profile"),
        "{err}"
    );
}
