//! `mlx serve` and `mlx predict` end to end on real data: a tabular model (penguins) and an
//! image model (Fashion-MNIST) served together; concurrent clients get exactly the predictions
//! `mlx predict` gives for the same rows; every kind of bad input is a 4xx naming the row and
//! field while other clients keep being served; `/metrics` counts what was sent; SIGTERM under
//! load answers every accepted request. `mlx predict` reads PNG files, directories and IDX
//! files and agrees with `mlx eval`.

use crate::run::{out_dir, run};
use base64::Engine;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn mlx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlx"));
    c.current_dir(crate::root());
    c
}

/// A small Fashion-MNIST model: trained on the train file, tested on the whole t10k file.
pub fn fashion_spec(dir: &Path) -> PathBuf {
    let f = crate::FASHION;
    let text = format!(
        r#"use std.nn
dataset fashion {{
  source train = idx("{f}/train-images-idx3-ubyte.gz", "{f}/train-labels-idx1-ubyte.gz")
  source test  = idx("{f}/t10k-images-idx3-ubyte.gz", "{f}/t10k-labels-idx1-ubyte.gz")
  split = holdout(val: 0.05)
  features {{
    image: Float[1, 28, 28] = scale(1.0 / 255.0) |> normalize(mean: 0.2860, std: 0.3530)
  }}
  target label: Class[10]
}}
model small(x: Float[B, 1, 28, 28]) -> Float[B, 10] {{
  x |> flatten |> dense(32) |> relu |> dense(10)
}}
train fashion_small {{
  model = small  data = fashion  loss = cross_entropy
  optimizer = adam(lr: 2e-3)  epochs = 1  batch = 64  seed = 5
  metrics = [accuracy]
}}
"#
    );
    let p = dir.join("fashion_small.mlx");
    std::fs::write(&p, text).unwrap();
    p
}

fn trained(name: &str, spec: &Path) -> PathBuf {
    let out = out_dir(name);
    let (o, dir) = run(&[spec.to_str().unwrap()], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.expect("run dir")
}

/// `mlx predict --format json` on `inputs`: the predictions, in input order.
pub fn predict_json(dir: &Path, inputs: &[&Path]) -> Vec<Value> {
    let o = mlx()
        .arg("predict")
        .arg(dir)
        .args(inputs)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["predictions"].as_array().unwrap().clone()
}

/// A running `mlx serve` on a free port; killed when dropped.
pub struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    /// Reads the server's standard error into `log` until it closes.
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(dirs: &[&Path], extra: &[&str]) -> Server {
        let mut child = mlx()
            .arg("serve")
            .args(dirs)
            .args(["--port", "0"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        let port = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("mlx serve ended:\n{log}"))
                .unwrap();
            log.push_str(&line);
            log.push('\n');
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap();
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        let log = Arc::new(Mutex::new(log));
        let sink = log.clone();
        let drain = std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let mut g = sink.lock().unwrap();
                g.push_str(&l);
                g.push('\n');
            }
        });
        Server {
            child,
            port,
            log,
            drain: Some(drain),
        }
    }

    pub fn call(&self, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, String) {
        http(self.port, method, path, ctype, body).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn predict(&self, model: &str, body: &Value) -> (u16, Value) {
        let (s, text) = self.call(
            "POST",
            &format!("/v1/models/{model}:predict"),
            "application/json",
            body.to_string().as_bytes(),
        );
        (
            s,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on its own connection: the status and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    ctype: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    response(&mut s)
}

fn response(s: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("no response: {text:?}"),
        )
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((len, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// The penguins rows as JSON instances (feature columns only; `NA` is null).
fn penguin_instances(schema: &Value) -> Vec<Value> {
    let t = mlx::data::csv::read(&crate::root().join("examples/data/penguins.csv"), ',').unwrap();
    let features = schema["features"].as_array().unwrap();
    (0..t.len())
        .map(|r| {
            let row = t.row(r);
            let mut m = serde_json::Map::new();
            for f in features {
                let name = f["name"].as_str().unwrap();
                let c = t.header.iter().position(|h| h == name).unwrap();
                let v = row[c];
                let value = if v == "NA" || v.is_empty() {
                    Value::Null
                } else if f["kind"] == "number" {
                    json!(v.parse::<f64>().unwrap())
                } else {
                    json!(v)
                };
                m.insert(name.to_string(), value);
            }
            Value::Object(m)
        })
        .collect()
}

fn png(pixels: &[u8], w: u32, h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_raw(w, h, pixels.to_vec()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn t10k() -> (Vec<u8>, Vec<u8>) {
    let f = Path::new(crate::FASHION);
    let (_, px) = mlx::data::idx::load(&f.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let (_, labels) = mlx::data::idx::load(&f.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    (px, labels)
}

/// A Fashion image as a JSON instance: base64 PNG or nested pixel arrays, alternately.
fn image_instance(px: &[u8], as_png: bool) -> Value {
    if as_png {
        json!({"image": {"b64": base64::engine::general_purpose::STANDARD.encode(png(px, 28, 28))}})
    } else {
        let rows: Vec<Vec<u8>> = px.chunks(28).map(<[u8]>::to_vec).collect();
        json!({"image": [rows]})
    }
}

/// A deterministic stream of numbers for the clients.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn counter(metrics: &str, line_start: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn serve_answers_concurrent_clients_exactly_as_predict_and_refuses_bad_input() {
    if !crate::have_fashion("serve_answers_concurrent_clients") {
        return;
    }
    let work = out_dir("serve-specs");
    let pdir = trained(
        "serve-penguins",
        &crate::root().join("examples/penguins.mlx"),
    );
    let fdir = trained("serve-fashion", &fashion_spec(&work));
    let pschema: Value = crate::run::json(&pdir.join("input.json"));

    // What `mlx predict` says for every row the clients will send.
    let p_expected = predict_json(&pdir, &[&crate::root().join("examples/data/penguins.csv")]);
    let f_expected = predict_json(
        &fdir,
        &[&Path::new(crate::FASHION).join("t10k-images-idx3-ubyte.gz")],
    );
    let pen = penguin_instances(&pschema);
    assert_eq!(pen.len(), p_expected.len());
    // JSON Lines input gives the same predictions as the CSV.
    let jsonl = work.join("penguins.jsonl");
    let lines: Vec<String> = pen.iter().map(Value::to_string).collect();
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    assert_eq!(predict_json(&pdir, &[&jsonl]), p_expected);
    let (pixels, _) = t10k();
    let images = 400;

    let mut server = Server::start(
        &[&pdir, &fdir],
        &["--max-body", "1000000", "--max-rows", "60"],
    );
    // Metadata and health.
    let (s, health) = server.call("GET", "/healthz", "", b"");
    assert_eq!((s, health.contains("ok")), (200, true));
    assert_eq!(server.call("GET", "/readyz", "", b"").0, 200);
    let (s, models) = server.call("GET", "/v1/models", "", b"");
    assert_eq!(s, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fashion_small", "penguins_mlp"]);
    let (s, meta) = server.call("GET", "/v1/models/penguins_mlp", "", b"");
    assert_eq!(s, 200);
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["classes"], json!(["Adelie", "Chinstrap", "Gentoo"]));
    assert_eq!(meta["input"], pschema);
    let summary = crate::run::json(&pdir.join("summary.json"));
    assert_eq!(meta["test"]["accuracy"], summary["test"]["accuracy"]);
    let lock = crate::run::json(&pdir.join("mlx.lock"));
    assert_eq!(meta["lock"]["program"], lock["program"]);
    assert_eq!(meta["mlx_version"], lock["mlx"]);

    // 8 clients x 100 requests of 1-50 rows, penguins and Fashion mixed, while a ninth client
    // sends bad input.
    let sent_rows = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(Mutex::new([0u64; 2]));
    std::thread::scope(|scope| {
        for c in 0..8u64 {
            let (server, pen, pixels, p_expected, f_expected) =
                (&server, &pen, &pixels, &p_expected, &f_expected);
            let (sent_rows, ok) = (sent_rows.clone(), ok.clone());
            scope.spawn(move || {
                let mut rng = Lcg(c + 1);
                for i in 0..100 {
                    let n = 1 + rng.below(50);
                    let tabular = (c + i) % 2 == 0;
                    let rows: Vec<usize> = (0..n)
                        .map(|_| rng.below(if tabular { pen.len() } else { images }))
                        .collect();
                    let (model, instances, expected): (&str, Vec<Value>, Vec<&Value>) = if tabular {
                        (
                            "penguins_mlp",
                            rows.iter().map(|&r| pen[r].clone()).collect(),
                            rows.iter().map(|&r| &p_expected[r]).collect(),
                        )
                    } else {
                        (
                            "fashion_small",
                            rows.iter()
                                .enumerate()
                                .map(|(k, &r)| {
                                    image_instance(&pixels[r * 784..(r + 1) * 784], k % 2 == 0)
                                })
                                .collect(),
                            rows.iter().map(|&r| &f_expected[r]).collect(),
                        )
                    };
                    let (s, body) = server.predict(model, &json!({ "instances": instances }));
                    assert_eq!(s, 200, "{model}: {body}");
                    let got = body["predictions"].as_array().unwrap();
                    assert_eq!(got.len(), n);
                    for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
                        assert_eq!(
                            g, *e,
                            "client {c} request {i} row {k} ({model} row {})",
                            rows[k]
                        );
                    }
                    sent_rows.fetch_add(n, Ordering::SeqCst);
                    ok.lock().unwrap()[usize::from(!tabular)] += 1;
                }
            });
        }
        scope.spawn(|| bad_inputs(&server, &pen));
    });

    // The counters say what was sent.
    let (s, metrics) = server.call("GET", "/metrics", "", b"");
    assert_eq!(s, 200);
    let [p_ok, f_ok] = *ok.lock().unwrap();
    assert_eq!(
        counter(
            &metrics,
            "mlx_requests_total{model=\"penguins_mlp\",code=\"200\"}"
        ),
        // and the metadata request, the CSV body and its JSON twin, the two with unseen
        // categories.
        p_ok + 5,
        "{metrics}"
    );
    assert_eq!(
        counter(
            &metrics,
            "mlx_requests_total{model=\"fashion_small\",code=\"200\"}"
        ),
        f_ok,
        "{metrics}"
    );
    let rows_total = counter(&metrics, "mlx_rows_predicted_total{model=\"penguins_mlp\"}")
        + counter(
            &metrics,
            "mlx_rows_predicted_total{model=\"fashion_small\"}",
        );
    assert_eq!(rows_total, sent_rows.load(Ordering::SeqCst) as u64 + 5);
    assert_eq!(
        counter(
            &metrics,
            "mlx_unseen_categories_total{model=\"penguins_mlp\",column=\"island\"}"
        ),
        2,
        "{metrics}"
    );
    for (reason, n) in [
        ("malformed", 2),
        ("missing_field", 1),
        ("unknown_field", 1),
        ("wrong_type", 1),
        ("not_finite", 1),
        ("too_many_rows", 1),
        ("body_too_large", 1),
    ] {
        assert_eq!(
            counter(
                &metrics,
                &format!("mlx_rejected_inputs_total{{model=\"penguins_mlp\",reason=\"{reason}\"}}")
            ),
            n,
            "{reason}: {metrics}"
        );
    }
    assert_eq!(
        counter(
            &metrics,
            "mlx_rejected_inputs_total{model=\"fashion_small\",reason=\"image\"}"
        ),
        2,
        "{metrics}"
    );
    assert!(
        counter(
            &metrics,
            "mlx_request_duration_seconds_count{model=\"fashion_small\"}"
        ) >= f_ok
    );
    // Batching happened: fewer model calls than requests.
    let calls = counter(&metrics, "mlx_model_calls_total{model=\"penguins_mlp\"}");
    eprintln!("penguins: {p_ok} requests answered in {calls} model calls");

    // SIGTERM under load: every request the server accepted is answered, correctly.
    let answered = AtomicUsize::new(0);
    let (port, pid) = (server.port, server.child.id());
    std::thread::scope(|scope| {
        for c in 0..4u64 {
            let (pen, p_expected, answered) = (&pen, &p_expected, &answered);
            scope.spawn(move || {
                let mut rng = Lcg(100 + c);
                loop {
                    let n = 1 + rng.below(50);
                    let rows: Vec<usize> = (0..n).map(|_| rng.below(pen.len())).collect();
                    let body = json!({"instances": rows.iter().map(|&r| pen[r].clone()).collect::<Vec<_>>()});
                    match http(
                        port,
                        "POST",
                        "/v1/models/penguins_mlp:predict",
                        "application/json",
                        body.to_string().as_bytes(),
                    ) {
                        Ok((s, text)) => {
                            assert_eq!(s, 200, "{text}");
                            let v: Value = serde_json::from_str(&text).unwrap();
                            for (k, g) in v["predictions"].as_array().unwrap().iter().enumerate() {
                                assert_eq!(g, &p_expected[rows[k]]);
                            }
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        // Refused, or closed before the server took the request: not accepted.
                        Err(_) => break,
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(400));
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
    });
    let code = server.child.wait().unwrap().code();
    // Everything the server wrote is in the log once its standard error closes.
    server.drain.take().unwrap().join().unwrap();
    assert_eq!(code, Some(0), "{}", server.log.lock().unwrap());
    assert!(answered.load(Ordering::SeqCst) > 0);
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("stopped"), "{log}");
}

/// Each kind of bad input: its status, reason, row and field.
fn bad_inputs(server: &Server, pen: &[Value]) {
    let expect = |model: &str, body: &[u8], ctype: &str, status: u16, reason: &str| -> Value {
        let (s, text) = server.call("POST", &format!("/v1/models/{model}:predict"), ctype, body);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!((s, v["reason"].as_str()), (status, Some(reason)), "{text}");
        assert!(!v["error"].as_str().unwrap_or("").is_empty(), "{text}");
        v
    };
    let row = |r: usize| pen[r].clone();
    let body = |rows: Vec<Value>| json!({ "instances": rows }).to_string().into_bytes();
    // Malformed JSON; a body that is not {"instances": [...]}.
    expect(
        "penguins_mlp",
        b"{\"instances\": [",
        "application/json",
        400,
        "malformed",
    );
    expect(
        "penguins_mlp",
        b"[1, 2]",
        "application/json",
        400,
        "malformed",
    );
    // A missing column, an extra one, a wrong type: named with their row.
    let mut missing = row(3);
    missing.as_object_mut().unwrap().remove("sex");
    let v = expect(
        "penguins_mlp",
        &body(vec![row(0), missing]),
        "application/json",
        400,
        "missing_field",
    );
    assert_eq!(
        (v["row"].clone(), v["field"].clone()),
        (json!(1), json!("sex"))
    );
    let mut extra = row(1);
    extra["year"] = json!(2007);
    let v = expect(
        "penguins_mlp",
        &body(vec![extra]),
        "application/json",
        400,
        "unknown_field",
    );
    assert_eq!(
        (v["row"].clone(), v["field"].clone()),
        (json!(0), json!("year"))
    );
    let mut wrong = row(2);
    wrong["body_mass_g"] = json!("heavy");
    let v = expect(
        "penguins_mlp",
        &body(vec![row(0), row(1), wrong]),
        "application/json",
        400,
        "wrong_type",
    );
    assert_eq!(
        (v["row"].clone(), v["field"].clone()),
        (json!(2), json!("body_mass_g"))
    );
    // A non-finite number (CSV can write one; JSON cannot).
    let csv = "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,island,sex\n39.1,18.7,181,inf,Torgersen,male\n";
    let v = expect(
        "penguins_mlp",
        csv.as_bytes(),
        "text/csv",
        400,
        "not_finite",
    );
    assert_eq!(
        (v["row"].clone(), v["field"].clone()),
        (json!(0), json!("body_mass_g"))
    );
    // Too many rows; a body over --max-body (refused from its declared length).
    expect(
        "penguins_mlp",
        &body((0..61).map(row).collect()),
        "application/json",
        413,
        "too_many_rows",
    );
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(b"POST /v1/models/penguins_mlp:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n").unwrap();
    let (status, text) = response(&mut s).unwrap();
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("body_too_large"), "{text}");
    // Images that do not decode, or have the wrong size.
    let junk = json!({"instances": [{"image": {"b64": base64::engine::general_purpose::STANDARD.encode(b"not an image")}}]});
    let v = expect(
        "fashion_small",
        junk.to_string().as_bytes(),
        "application/json",
        400,
        "image",
    );
    assert_eq!(
        (v["row"].clone(), v["field"].clone()),
        (json!(0), json!("image"))
    );
    let small = png(&[0u8; 27 * 28], 27, 28);
    let v = expect("fashion_small", &small, "image/png", 400, "image");
    assert!(v["error"].as_str().unwrap().contains("27x28"), "{v}");
    // An unknown model.
    let (s, text) = server.call(
        "POST",
        "/v1/models/nope:predict",
        "application/json",
        &body(vec![row(0)]),
    );
    assert_eq!(s, 404, "{text}");
    // A CSV body is read like a CSV file.
    let csv = "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,island,sex\n39.1,18.7,181,3750,Torgersen,male\n";
    let (s, text) = server.call(
        "POST",
        "/v1/models/penguins_mlp:predict",
        "text/csv",
        csv.as_bytes(),
    );
    assert_eq!(s, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["predictions"][0],
        server
            .predict("penguins_mlp", &json!({"instances": [row(0)]}))
            .1["predictions"][0]
    );
    // An unseen category predicts as `mlx predict` does, and says so.
    let mut unseen = row(5);
    unseen["island"] = json!("Atlantis");
    let (s, v) = server.predict(
        "penguins_mlp",
        &json!({"instances": [row(0), unseen.clone()]}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["warnings"][0]["row"], json!(1));
    assert_eq!(v["warnings"][0]["field"], json!("island"));
    let (s, again) = server.predict("penguins_mlp", &json!({"instances": [unseen]}));
    assert_eq!(s, 200);
    assert_eq!(again["predictions"][0], v["predictions"][1]);
}

#[test]
fn predict_reads_png_files_directories_and_idx_like_eval() {
    if !crate::have_fashion("predict_reads_png_files_directories_and_idx") {
        return;
    }
    let work = out_dir("predict-images");
    let dir = trained("predict-images-run", &fashion_spec(&work));
    let idx = Path::new(crate::FASHION).join("t10k-images-idx3-ubyte.gz");
    let predictions = predict_json(&dir, &[&idx]);
    let (pixels, labels) = t10k();
    assert_eq!(predictions.len(), labels.len());
    // The classes of the whole test file give `mlx eval`'s test accuracy.
    let correct = predictions
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p["label"].as_str() == Some(&l.to_string()))
        .count();
    let o = mlx().arg("eval").arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval: Value = serde_json::from_slice(&o.stdout).unwrap();
    let acc = eval["test"]["accuracy"].as_f64().unwrap();
    assert_eq!(correct as f64 / labels.len() as f64, acc);

    // The first images as PNG files: one by one, and as a directory, the same predictions.
    let pngs = work.join("pngs");
    std::fs::create_dir_all(&pngs).unwrap();
    let n = 12;
    let mut files = Vec::new();
    for i in 0..n {
        let f = pngs.join(format!("img{i:02}.png"));
        std::fs::write(&f, png(&pixels[i * 784..(i + 1) * 784], 28, 28)).unwrap();
        files.push(f);
    }
    let some: Vec<&Path> = files.iter().take(3).map(PathBuf::as_path).collect();
    assert_eq!(predict_json(&dir, &some), predictions[..3].to_vec());
    assert_eq!(predict_json(&dir, &[&pngs]), predictions[..n].to_vec());
    // An RGB image of the same grey pixels is the same image.
    let rgb: Vec<u8> = pixels[..784].iter().flat_map(|v| [*v, *v, *v]).collect();
    let rgb_file = work.join("rgb.png");
    image::RgbImage::from_raw(28, 28, rgb)
        .unwrap()
        .save(&rgb_file)
        .unwrap();
    assert_eq!(predict_json(&dir, &[&rgb_file]), predictions[..1].to_vec());
    // CSV output names each input.
    let o = mlx()
        .arg("predict")
        .arg(&dir)
        .arg(&files[0])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(csv.starts_with("input,prediction,p_0,"), "{csv}");
    assert!(csv.contains("img00.png,"), "{csv}");
    // A wrong size is a diagnostic, unless --resize.
    let wide = work.join("wide.png");
    std::fs::write(&wide, png(&vec![128u8; 30 * 28], 30, 28)).unwrap();
    let o = mlx().arg("predict").arg(&dir).arg(&wide).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("mlx::data::shape") && err.contains("30x28"),
        "{err}"
    );
    assert!(err.contains("--resize"), "{err}");
    let o = mlx()
        .arg("predict")
        .arg(&dir)
        .arg(&wide)
        .arg("--resize")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A file that is not an image is a diagnostic, not a crash.
    let bogus = work.join("bogus.png");
    std::fs::write(&bogus, b"\x89PNG but not really").unwrap();
    let o = mlx().arg("predict").arg(&dir).arg(&bogus).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_run_predicts_and_serves_without_its_training_data() {
    let work = out_dir("no-data");
    std::fs::create_dir_all(work.join("data")).unwrap();
    let csv = crate::root().join("examples/data/penguins.csv");
    std::fs::copy(&csv, work.join("data/penguins.csv")).unwrap();
    let spec = work.join("penguins.mlx");
    std::fs::copy(crate::root().join("examples/penguins.mlx"), &spec).unwrap();
    let dir = trained("no-data-run", &spec);
    let expected = predict_json(&dir, &[&csv]);
    // The model leaves for production; its training data stays behind.
    std::fs::remove_file(work.join("data/penguins.csv")).unwrap();
    assert_eq!(predict_json(&dir, &[&csv]), expected);
    let schema: Value = crate::run::json(&dir.join("input.json"));
    let server = Server::start(&[&dir], &[]);
    let (s, v) = server.predict(
        "penguins_mlp",
        &json!({"instances": [penguin_instances(&schema)[0]]}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["predictions"][0], expected[0]);
    // Evaluating needs the data: a diagnostic naming it, not a crash.
    let o = mlx().arg("eval").arg(&dir).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("penguins.csv"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn eval_predict_and_serve_refuse_a_program_or_model_the_lock_does_not_vouch_for() {
    let dir = trained("lock-check", &crate::root().join("examples/penguins.mlx"));
    let csv = crate::root().join("examples/data/penguins.csv");
    let predict = |extra: &[&str]| {
        mlx()
            .arg("predict")
            .arg(&dir)
            .arg(&csv)
            .args(extra)
            .output()
            .unwrap()
    };
    let good = predict(&[]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let lock = crate::run::json(&dir.join("mlx.lock"));
    assert!(
        lock["model"].as_str().unwrap().starts_with("sha256:"),
        "{lock}"
    );

    // An edited activation in spec.mlx.
    let spec = dir.join("spec.mlx");
    let original = std::fs::read_to_string(&spec).unwrap();
    assert!(original.contains("|> relu"));
    std::fs::write(&spec, original.replace("|> relu", "|> tanh")).unwrap();
    let o = predict(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("mlx::lock::program") && err.contains("--ignore-lock"),
        "{err}"
    );
    let o = mlx().arg("eval").arg(&dir).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let o = predict(&["--ignore-lock"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning"));
    assert_ne!(o.stdout, good.stdout, "tanh is not relu");
    std::fs::write(&spec, &original).unwrap();

    // A flipped byte in the weights.
    let model = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&model, &bytes).unwrap();
    let o = mlx().arg("eval").arg(&dir).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("mlx::lock::model"), "{err}");
    let o = mlx()
        .args(["serve", "--port", "0"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "the server does not start");
    assert!(String::from_utf8_lossy(&o.stderr).contains("mlx::lock::model"));
    bytes[last] ^= 1;
    std::fs::write(&model, &bytes).unwrap();
    assert_eq!(predict(&[]).stdout, good.stdout);

    // No lock at all: nothing vouches for the run.
    std::fs::remove_file(dir.join("mlx.lock")).unwrap();
    let o = predict(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("mlx.lock"), "{err}");
}

/// Tree ensembles are served like networks: every penguins row, sent in requests of up to 60
/// rows to a boosted and a forest model side by side, answers what `mlx predict` says.
#[test]
fn serve_answers_tree_ensembles_as_predict_does() {
    let example = crate::root().join("examples/penguins_trees.mlx");
    let mut dirs = Vec::new();
    for t in ["penguins_boosted", "penguins_forest"] {
        let out = out_dir(&format!("serve-{t}"));
        let (o, dir) = run(
            &[example.to_str().unwrap(), "--train", t, "--no-plot"],
            &out,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dirs.push(dir.expect("run dir"));
    }
    let csv = crate::root().join("examples/data/penguins.csv");
    let schema: Value = crate::run::json(&dirs[0].join("input.json"));
    let pen = penguin_instances(&schema);
    let server = Server::start(&[&dirs[0], &dirs[1]], &[]);
    for (dir, name) in dirs.iter().zip(["penguins_boosted", "penguins_forest"]) {
        let expected = predict_json(dir, &[&csv]);
        assert_eq!(expected.len(), pen.len());
        for (chunk, want) in pen.chunks(60).zip(expected.chunks(60)) {
            let (s, body) = server.predict(name, &json!({ "instances": chunk }));
            assert_eq!(s, 200, "{name}: {body}");
            assert_eq!(
                body["predictions"].as_array().unwrap().as_slice(),
                want,
                "{name}"
            );
        }
    }
}
