//! `mlx serve`: takes run directories and serves each model over HTTP under its train's name,
//! on tokio and axum. Paths and bodies follow TensorFlow Serving's REST API
//! (`POST /v1/models/NAME:predict` with `{"instances": [...]}` gives `{"predictions": [...]}`);
//! `GET /v1/models[/NAME]`, `/healthz`, `/readyz` and Prometheus `/metrics` complete it.
//! Every model is compiled once; concurrent requests are gathered into model calls
//! (`batch`). Bad input is a 4xx naming the row and field, never a crash; SIGINT or SIGTERM
//! stops accepting, answers what was accepted, and returns.

mod batch;
mod http;
pub mod metrics;
mod watch;

use crate::backend::BackendKind;
use crate::diagnostics::Diagnostic;
use crate::predict::Failed;
use crate::source::SourceMap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Options {
    pub host: String,
    pub port: u16,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Most rows in one request.
    pub max_rows: usize,
    /// Most rows in one model call (default: each train's batch size).
    pub max_batch: Option<usize>,
    /// How long a model call waits for requests that are on their way.
    pub batch_wait: Duration,
    pub backend: BackendKind,
    /// Serve runs whose program or weights differ from their locks' (with a warning).
    pub ignore_lock: bool,
    /// Rows of each model's drift window.
    pub drift_window: usize,
    /// For runs of trains with objectives: the models to serve (each under `TRAIN.MODEL`).
    pub models: Vec<String>,
}

fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

/// Load every model, listen, and serve until SIGINT or SIGTERM.
pub fn serve(dirs: &[PathBuf], opts: &Options) -> Result<(), Failed> {
    let metrics = Arc::new(metrics::Metrics::default());
    let mut models = BTreeMap::new();
    let mut threads = Vec::new();
    let mut served: Vec<(&PathBuf, Option<String>)> = Vec::new();
    for dir in dirs {
        if opts.models.is_empty() {
            served.push((dir, None));
        } else {
            served.extend(opts.models.iter().map(|m| (dir, Some(m.clone()))));
        }
    }
    for (dir, model) in served {
        let (info, batcher, handle) = batch::start(
            dir.clone(),
            model,
            opts.backend,
            opts.max_batch,
            opts.batch_wait,
            opts.ignore_lock,
            metrics.clone(),
        )?;
        threads.push(handle);
        if let Some(other) = models.get(&info.name) {
            let other: &http::Served = other;
            return Err(fail(
                Diagnostic::error(
                    "mlx::serve::duplicate",
                    format!(
                        "two run directories hold the train `{}`: {} and {}",
                        info.name,
                        other.info.run.dir.display(),
                        dir.display()
                    ),
                )
                .with_help("serve one run of each train per server (start another `mlx serve` for the other)"),
            ));
        }
        eprintln!(
            "mlx serve: loaded `{}` from {} ({} rows a call at most)",
            info.name,
            dir.display(),
            info.max_batch
        );
        models.insert(
            info.name.clone(),
            http::Served::new(info, batcher, opts.drift_window),
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mlx-serve")
        .build()
        .map_err(|e| {
            fail(Diagnostic::error(
                "mlx::runtime::error",
                format!("cannot start the server's runtime: {e}"),
            ))
        })?;
    let models = Arc::new(models);
    let result = runtime.block_on(http::run(models.clone(), metrics, opts));
    for m in models.values() {
        m.batcher.close();
    }
    drop(runtime);
    for t in threads {
        let _ = t.join();
    }
    result.map_err(fail)
}
