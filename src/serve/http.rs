//! The HTTP side of `mlx serve`: takes requests and gives answers. Routes, body limits,
//! content types, the TensorFlow-Serving-style predict call, model metadata, health,
//! readiness and metrics; every error a JSON object `{"error", "reason", "row", "field"}`.

use super::Options;
use super::batch::{Batcher, Job};
use super::metrics::Metrics;
use crate::predict::{self, InputError, ModelInfo, Rows};
use crate::rundir::{self, Figures};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A served model: its description, its metadata document and its model thread.
pub struct Served {
    pub info: Arc<ModelInfo>,
    pub batcher: Batcher,
    metadata: Value,
    /// The drift window (`None`: the run has no reference profile).
    watch: Option<super::watch::Watch>,
}

impl Served {
    pub fn new(info: Arc<ModelInfo>, batcher: Batcher, window: usize) -> Served {
        let metadata = metadata(&info);
        // Drift is watched on raw input columns: a tensor model has none.
        let watch = if info.tensor.is_some() {
            None
        } else {
            super::watch::Watch::new(&info, window)
        };
        Served {
            info,
            batcher,
            metadata,
            watch,
        }
    }
}

/// `GET /v1/models/NAME`: what the model takes and gives, how it did, where it came from.
fn metadata(info: &ModelInfo) -> Value {
    let figures = |f: Option<&Figures>| -> Value {
        // The confusion matrix is for people reading the run; clients get the numbers.
        f.map_or(Value::Null, |m| {
            Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_array())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        })
    };
    let mut doc = json!({
        "name": info.name,
        "model_version_status": [{
            "version": "1",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }],
        "run_dir": info.run.dir.display().to_string(),
        "lock": info.lock.as_ref().map(|l| json!({
            "program": l.program,
            "mlx": l.mlx,
            "backend": l.backend,
            "seed": l.seed,
        })),
        "mlx_version": env!("CARGO_PKG_VERSION"),
        "max_batch": info.max_batch,
        "format": rundir::FORMAT,
    });
    let what = match &info.tensor {
        // One model of a train with objectives: tensors in and out.
        Some(t) => json!({
            "model": t.model,
            "input": {"kind": "tensor", "shape": t.input},
            "output": {"kind": "tensor", "shape": t.output},
        }),
        None => json!({
            "input": info.input,
            "classes": info.input.classes(),
            "test": figures(info.summary.test.as_ref()),
            "val": figures(info.summary.val.as_ref()),
        }),
    };
    if let (Some(d), Value::Object(w)) = (doc.as_object_mut(), what) {
        d.extend(w);
    }
    doc
}

#[derive(Clone)]
struct App {
    models: Arc<BTreeMap<String, Served>>,
    metrics: Arc<Metrics>,
    max_body: usize,
    max_rows: usize,
    stopping: Arc<AtomicBool>,
    info: Arc<Vec<(String, String, String)>>,
}

/// A JSON answer.
fn answer(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A JSON error answer.
fn error(status: StatusCode, e: &InputError) -> Response {
    let mut v = json!({"error": e.message, "reason": e.reason});
    if let Some(r) = e.row {
        v["row"] = json!(r);
    }
    if let Some(f) = &e.field {
        v["field"] = json!(f);
    }
    answer(status, v.to_string())
}

pub async fn run(
    models: Arc<BTreeMap<String, Served>>,
    metrics: Arc<Metrics>,
    opts: &Options,
) -> Result<(), crate::diagnostics::Diagnostic> {
    let info = models
        .values()
        .map(|m| {
            (
                m.info.name.clone(),
                env!("CARGO_PKG_VERSION").to_string(),
                m.info
                    .lock
                    .as_ref()
                    .map_or_else(String::new, |l| l.program.clone()),
            )
        })
        .collect();
    let app = App {
        models: models.clone(),
        metrics,
        max_body: opts.max_body,
        max_rows: opts.max_rows.max(1),
        stopping: Arc::new(AtomicBool::new(false)),
        info: Arc::new(info),
    };
    let stopping = app.stopping.clone();
    let router = Router::new()
        .route("/v1/models", get(list))
        .route("/v1/models/{spec}", get(model_get).post(model_post))
        .route("/v1/models/{spec}/drift", get(drift))
        .route(
            "/healthz",
            get(|| async { answer(StatusCode::OK, r#"{"status":"ok"}"#.into()) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .with_state(app);
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .map_err(|e| {
            crate::diagnostics::Diagnostic::error(
                "mlx::serve::bind",
                format!("cannot listen on {}:{}: {e}", opts.host, opts.port),
            )
            .with_help("choose another `--port` (0 picks a free one) or `--host`")
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| crate::diagnostics::Diagnostic::error("mlx::serve::bind", e.to_string()))?;
    let names: Vec<&str> = models.keys().map(String::as_str).collect();
    eprintln!(
        "mlx serve: listening on http://{addr} (models: {}); POST /v1/models/NAME:predict",
        names.join(", ")
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            stopping.store(true, Ordering::SeqCst);
            eprintln!("mlx serve: stopping: no new connections; answering the requests accepted");
        })
        .await
        .map_err(|e| {
            crate::diagnostics::Diagnostic::error(
                "mlx::runtime::error",
                format!("the server stopped: {e}"),
            )
        })?;
    eprintln!("mlx serve: stopped");
    Ok(())
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        &InputError::new(
            "not_found",
            "no such path: use /v1/models, /v1/models/NAME, POST /v1/models/NAME:predict, /healthz, /readyz or /metrics",
        ),
    )
}

async fn ready(State(app): State<App>) -> Response {
    if app.stopping.load(Ordering::SeqCst) {
        answer(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"stopping"}"#.into(),
        )
    } else {
        answer(StatusCode::OK, r#"{"status":"ready"}"#.into())
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    let reports: Vec<(String, crate::monitor::profile::Report)> = app
        .models
        .values()
        .filter_map(|m| {
            m.watch
                .as_ref()
                .map(|w| (m.info.name.clone(), w.report(&m.info)))
        })
        .collect();
    let mut text = app.metrics.render(&app.info);
    text.push_str(&super::watch::gauges(&reports));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

/// `GET /v1/models/NAME/drift`: the drift of the latest answered rows against training.
async fn drift(State(app): State<App>, Path(spec): Path<String>) -> Response {
    let started = Instant::now();
    let (name, r) = match app.models.get(&spec) {
        Some(m) => match &m.watch {
            Some(w) => (
                spec.as_str(),
                answer(
                    StatusCode::OK,
                    serde_json::to_string(&w.report(&m.info)).unwrap_or_default(),
                ),
            ),
            None => (
                spec.as_str(),
                error(
                    StatusCode::NOT_FOUND,
                    &InputError::new(
                        "no_profile",
                        format!(
                            "the run of `{spec}` has no reference profile (trained before mlx recorded one); train it again to watch its drift"
                        ),
                    ),
                ),
            ),
        },
        None => ("-", unknown_model(&app, &spec)),
    };
    app.metrics
        .request(name, r.status().as_u16(), started.elapsed());
    r
}

async fn list(State(app): State<App>) -> Response {
    let all: Vec<&Value> = app.models.values().map(|m| &m.metadata).collect();
    answer(StatusCode::OK, json!({ "models": all }).to_string())
}

fn unknown_model(app: &App, name: &str) -> Response {
    let names: Vec<&str> = app.models.keys().map(String::as_str).collect();
    error(
        StatusCode::NOT_FOUND,
        &InputError::new(
            "unknown_model",
            format!(
                "no model `{name}` is served here (models: {})",
                names.join(", ")
            ),
        ),
    )
}

async fn model_get(State(app): State<App>, Path(spec): Path<String>) -> Response {
    let started = Instant::now();
    let (name, r) = match app.models.get(&spec) {
        Some(m) => (
            spec.as_str(),
            answer(StatusCode::OK, m.metadata.to_string()),
        ),
        None => ("-", unknown_model(&app, &spec)),
    };
    app.metrics
        .request(name, r.status().as_u16(), started.elapsed());
    r
}

async fn model_post(
    State(app): State<App>,
    Path(spec): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (name, verb) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
    let Some(model) = app.models.get(name) else {
        let r = unknown_model(&app, name);
        app.metrics
            .request("-", r.status().as_u16(), started.elapsed());
        return r;
    };
    let r = if verb == "predict" {
        match predict(&app, model, &headers, body).await {
            Ok(r) => r,
            Err((status, e)) => {
                app.metrics.rejected(name, e.reason);
                error(status, &e)
            }
        }
    } else {
        error(
            StatusCode::NOT_FOUND,
            &InputError::new(
                "not_found",
                format!("POST /v1/models/{name}:predict is the call (not `{spec}`)"),
            ),
        )
    };
    app.metrics
        .request(name, r.status().as_u16(), started.elapsed());
    r
}

type Refused = (StatusCode, InputError);

fn bad(e: InputError) -> Refused {
    (StatusCode::BAD_REQUEST, e)
}

/// Read, check, prepare, queue for the model, answer.
async fn predict(
    app: &App,
    model: &Served,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let pending = model.batcher.pending();
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            InputError::new(
                "body_too_large",
                format!(
                    "the body is larger than {} bytes (--max-body)",
                    app.max_body
                ),
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body as u64) {
        return Err(too_large());
    }
    let bytes: Bytes = axum::body::to_bytes(body, app.max_body)
        .await
        .map_err(|_| too_large())?;
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let info = &model.info;
    if let Some(t) = &info.tensor {
        let (x, n) = tensor_rows(app, info, t, &kind, &bytes)?;
        let outputs = call(model, x, n, pending).await?;
        app.metrics.rows(&info.name, n);
        let w = info.out_len.max(1);
        let preds: Vec<Value> = outputs
            .chunks(w)
            .map(|c| predict::slot::nested(c, &t.output))
            .collect();
        return Ok(answer(
            StatusCode::OK,
            json!({"model": t.model, "shape": t.output, "predictions": preds}).to_string(),
        ));
    }
    let rows = match kind.as_str() {
        "text/csv" => {
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                bad(InputError::new(
                    "malformed",
                    "the CSV body is not UTF-8 text",
                ))
            })?;
            let rows = predict::input::from_csv(&info.input, text, true).map_err(bad)?;
            if let Rows::Table(t) = &rows {
                check_count(app, t.len())?;
            }
            rows
        }
        "image/png" | "image/jpeg" => match info.input.image() {
            Some((name, shape)) => Rows::Images(
                predict::input::decode_image(&bytes, shape, false)
                    .map_err(|m| bad(InputError::new("image", m).at(0, Some(name))))?,
            ),
            None => {
                return Err((
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    InputError::new(
                        "content_type",
                        "this model takes rows of columns, not an image: send JSON or CSV",
                    ),
                ));
            }
        },
        // JSON, whatever the client called it (curl's `-d` says form-urlencoded).
        _ => {
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                bad(InputError::new(
                    "malformed",
                    format!("the body is not valid JSON: {e}"),
                ))
            })?;
            let instances = match v.get("instances") {
                Some(Value::Array(a)) => a,
                _ => {
                    return Err(bad(InputError::new(
                        "malformed",
                        "the body must be a JSON object {\"instances\": [ROW, ...]}",
                    )));
                }
            };
            check_count(app, instances.len())?;
            predict::input::from_instances(&info.input, instances).map_err(bad)?
        }
    };
    let data = predict::data_of(info, rows, std::path::Path::new("request")).map_err(bad)?;
    let mut prepared = predict::prepare(info, &data).map_err(bad)?;
    if let Some((r, field)) = prepared.unusable.first() {
        return Err(bad(InputError::new(
            "missing_value",
            "the model cannot use a row with this value missing (the feature drops missing rows)",
        )
        .at(*r, Some(field))));
    }
    let n = data.len();
    let outputs = call(model, std::mem::take(&mut prepared.x), n, pending).await?;
    for u in &prepared.unseen {
        app.metrics.unseen(&info.name, &u.column);
    }
    app.metrics.rows(&info.name, n);
    if let Some(w) = &model.watch {
        let classes = info.input.classes().is_some();
        w.record(
            &data,
            crate::monitor::profile::answers(&outputs, info.out_len, classes),
        );
    }
    let p = prepared.with_outputs(outputs);
    Ok(answer(StatusCode::OK, predict::json_document(info, &p)))
}

/// Queue `n` prepared rows for the model and wait for their outputs.
async fn call(
    model: &Served,
    x: Vec<f32>,
    n: usize,
    pending: super::batch::Pending,
) -> Result<Vec<f32>, Refused> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job {
        x,
        rows: n,
        reply: tx,
    };
    let internal = |m: &str| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            InputError::new("internal", m.to_string()),
        )
    };
    if !model.batcher.submit(job, pending) {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            InputError::new("stopping", "the server is stopping"),
        ));
    }
    match rx.await {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(m)) => Err(internal(&m)),
        Err(_) => Err(internal("the model thread stopped")),
    }
}

/// The rows of a request to a tensor model: JSON `{"instances": [ROW, ...]}`, each row an
/// array (flat or nested) of the model's input-row size, or CSV of numbers, one row a line.
fn tensor_rows(
    app: &App,
    info: &ModelInfo,
    t: &predict::model::TensorIo,
    kind: &str,
    bytes: &[u8],
) -> Result<(Vec<f32>, usize), Refused> {
    let width = info.row_len.max(1);
    let shape = format!("{:?}", t.input);
    let refused = |e: predict::slot::RowError| {
        let mut r = InputError::new(e.reason, format!("this row {} ({shape})", e.message));
        r.row = e.row;
        bad(r)
    };
    match kind {
        "text/csv" => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                bad(InputError::new(
                    "malformed",
                    "the CSV body is not UTF-8 text",
                ))
            })?;
            check_count(app, text.lines().filter(|l| !l.trim().is_empty()).count())?;
            predict::slot::csv_rows(text, width).map_err(refused)
        }
        "image/png" | "image/jpeg" => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            InputError::new(
                "content_type",
                format!("this model takes rows of numbers ({shape}): send JSON or CSV"),
            ),
        )),
        _ => {
            let v: Value = serde_json::from_slice(bytes).map_err(|e| {
                bad(InputError::new(
                    "malformed",
                    format!("the body is not valid JSON: {e}"),
                ))
            })?;
            let Some(Value::Array(rows)) = v.get("instances") else {
                return Err(bad(InputError::new(
                    "malformed",
                    "the body must be a JSON object {\"instances\": [ROW, ...]}",
                )));
            };
            check_count(app, rows.len())?;
            let x = predict::slot::json_rows(rows, width).map_err(refused)?;
            Ok((x, rows.len()))
        }
    }
}

fn check_count(app: &App, n: usize) -> Result<(), Refused> {
    if n == 0 {
        return Err(bad(InputError::new("no_rows", "the request has no rows")));
    }
    if n > app.max_rows {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            InputError::new(
                "too_many_rows",
                format!(
                    "{n} rows; at most {} in one request (--max-rows)",
                    app.max_rows
                ),
            ),
        ));
    }
    Ok(())
}
