//! Gathering requests into model calls: takes prepared rows from any number of request
//! handlers and gives each its outputs, running one model call for many requests. Each model
//! has one thread that owns its compiled executable; it takes every request already queued,
//! and while other requests for the model are still being read and prepared (the `pending`
//! count) it waits for them up to the batch wait, then runs them as one call of up to
//! `max_batch` rows. A request alone is never held back.

use super::metrics::Metrics;
use crate::predict::{Failed, Model, ModelInfo};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Prepared rows waiting for the model, and where their outputs go.
pub struct Job {
    pub x: Vec<f32>,
    pub rows: usize,
    pub reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

/// The handle request handlers use to reach a model's thread.
pub struct Batcher {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    /// Requests for this model being read or prepared: the thread waits for them.
    pending: Arc<AtomicUsize>,
}

/// Counts a request as pending until it is submitted or dropped.
pub struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Batcher {
    /// Mark a request for this model as on its way.
    pub fn pending(&self) -> Pending {
        self.pending.fetch_add(1, Ordering::SeqCst);
        Pending(self.pending.clone())
    }

    /// Queue a job; `false` when the model's thread has stopped.
    pub fn submit(&self, job: Job, pending: Pending) -> bool {
        let sent = match self.tx.lock() {
            Ok(g) => g.as_ref().is_some_and(|tx| tx.send(job).is_ok()),
            Err(_) => false,
        };
        drop(pending);
        sent
    }

    /// Stop taking jobs: the thread finishes those queued, then ends.
    pub fn close(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
    }
}

/// Load the model in `dir` on a thread of its own and start serving jobs there. Returns once
/// the model is compiled (or failed to load).
pub fn start(
    dir: std::path::PathBuf,
    model: Option<String>,
    backend: crate::backend::BackendKind,
    max_batch: Option<usize>,
    wait: Duration,
    ignore_lock: bool,
    metrics: Arc<Metrics>,
) -> Result<(Arc<ModelInfo>, Batcher, std::thread::JoinHandle<()>), Failed> {
    let (tx, rx) = mpsc::channel::<Job>();
    let (loaded_tx, loaded_rx) = mpsc::channel();
    let pending = Arc::new(AtomicUsize::new(0));
    let waiting = pending.clone();
    let name = dir
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let handle = std::thread::Builder::new()
        .name(format!("mlx-model-{name}"))
        .spawn(move || {
            let loaded = match &model {
                Some(m) => Model::load_slot(&dir, m, backend, max_batch, ignore_lock),
                None => Model::load(&dir, backend, max_batch, ignore_lock),
            };
            let model = match loaded {
                Ok(m) => {
                    let _ = loaded_tx.send(Ok(m.info.clone()));
                    m
                }
                Err(f) => {
                    let _ = loaded_tx.send(Err(f));
                    return;
                }
            };
            run(model, &rx, &waiting, wait, &metrics);
        })
        .map_err(|e| {
            (
                crate::source::SourceMap::new(),
                vec![crate::diagnostics::Diagnostic::error(
                    "mlx::runtime::error",
                    format!("cannot start a model thread: {e}"),
                )],
            )
        })?;
    match loaded_rx.recv() {
        Ok(Ok(info)) => Ok((
            info,
            Batcher {
                tx: Mutex::new(Some(tx)),
                pending,
            },
            handle,
        )),
        Ok(Err(f)) => {
            let _ = handle.join();
            Err(f)
        }
        Err(_) => {
            let _ = handle.join();
            Err((
                crate::source::SourceMap::new(),
                vec![crate::diagnostics::Diagnostic::internal(
                    "the model thread stopped while loading",
                )],
            ))
        }
    }
}

/// The model thread's loop: gather, run, answer, until every sender is gone.
fn run(
    mut model: Model,
    rx: &mpsc::Receiver<Job>,
    pending: &AtomicUsize,
    wait: Duration,
    metrics: &Metrics,
) {
    let max = model.info.max_batch;
    let row_len = model.info.row_len;
    while let Ok(first) = rx.recv() {
        let mut rows = first.rows;
        let mut jobs = vec![first];
        let deadline = Instant::now() + wait;
        while rows < max {
            match rx.try_recv() {
                Ok(j) => {
                    rows += j.rows;
                    jobs.push(j);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {}
            }
            // Nothing queued: wait only for requests already on their way.
            let now = Instant::now();
            if pending.load(Ordering::SeqCst) == 0 || now >= deadline {
                break;
            }
            match rx.recv_timeout((deadline - now).min(Duration::from_micros(200))) {
                Ok(j) => {
                    rows += j.rows;
                    jobs.push(j);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let mut x = Vec::with_capacity(rows * row_len);
        for j in &jobs {
            x.extend_from_slice(&j.x);
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.predict(&x)));
        metrics.call(&model.info.name, rows);
        let out_len = model.info.out_len;
        match result {
            Ok(Ok(out)) => {
                let mut at = 0;
                for j in jobs {
                    let n = j.rows * out_len;
                    let part = out
                        .get(at..at + n)
                        .map(<[f32]>::to_vec)
                        .ok_or_else(|| "the model gave too few outputs".to_string());
                    let _ = j.reply.send(part);
                    at += n;
                }
            }
            Ok(Err(d)) => {
                for j in jobs {
                    let _ = j.reply.send(Err(d.message.clone()));
                }
            }
            Err(_) => {
                for j in jobs {
                    let _ = j.reply.send(Err("the model failed on this batch".into()));
                }
            }
        }
    }
}
