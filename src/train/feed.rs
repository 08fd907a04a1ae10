//! Where a train's batches come from: rows of an in-memory pool (a fold's row indices), or a
//! streamed dataset read pass by pass (`data::stream`). A streamed pass is read on a thread of
//! its own, a chunk of prepared rows ahead of the step that uses them (two chunks at most
//! wait), so parsing overlaps training and memory stays bounded.

use crate::backend::HostTensor;
use crate::check::hir::{DatasetPlan, TargetKind};
use crate::data::stream::{self, Counts, Part, Shuffle};
use crate::data::{Data, DataError, Preprocessor};
use crate::diagnostics::Diagnostic;
use crate::monitor::profile::Sample;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// The rows a fold trains and evaluates on.
pub enum Feed<'a> {
    Rows {
        data: &'a Data,
        train: &'a [usize],
        val: &'a [usize],
        test: &'a [usize],
    },
    Stream {
        dset: &'a DatasetPlan,
        seed: u64,
        counts: Counts,
        buffer: usize,
    },
}

/// One batch: its inputs and targets, and (from a pool) its rows.
pub struct Batch {
    pub n: usize,
    pub rows: Vec<usize>,
    pub x: HostTensor,
    pub y: HostTensor,
}

fn tensors(dset: &DatasetPlan, n: usize, x: Vec<f32>, y: Vec<f32>) -> (HostTensor, HostTensor) {
    let mut shape = vec![n];
    shape.extend(dset.feature_shape.iter().copied());
    let yt = match dset.target.kind {
        TargetKind::Class { .. } => HostTensor::i32(vec![n], y.iter().map(|v| *v as i32).collect()),
        TargetKind::Regression | TargetKind::Absent => HostTensor::f32(vec![n], y),
    };
    (HostTensor::f32(shape, x), yt)
}

impl<'a> Feed<'a> {
    pub fn len(&self, part: Part) -> usize {
        match self {
            Feed::Rows {
                train, val, test, ..
            } => match part {
                Part::Train => train.len(),
                Part::Val => val.len(),
                Part::Test => test.len(),
            },
            Feed::Stream { counts, .. } => counts.of(part),
        }
    }

    /// The pool and rows of `part`, when the rows are in memory.
    pub fn rows(&self, part: Part) -> Option<(&'a Data, &'a [usize])> {
        match self {
            Feed::Rows {
                data,
                train,
                val,
                test,
            } => Some((
                data,
                match part {
                    Part::Train => train,
                    Part::Val => val,
                    Part::Test => test,
                },
            )),
            Feed::Stream { .. } => None,
        }
    }

    /// One epoch's training batches, in the order of the stream `shuffle/epoch-N`; `inputs`:
    /// build each batch's tensors (a sharded step builds its shards' instead).
    pub fn train_batches<'b>(
        &'b self,
        dset: &'b DatasetPlan,
        pre: &'b Preprocessor,
        batch: usize,
        seed: u64,
        epoch: usize,
        inputs: bool,
    ) -> Batches<'b> {
        let batch = batch.max(1);
        let total = self.len(Part::Train).div_ceil(batch);
        match self {
            Feed::Rows { data, train, .. } => Batches::Rows {
                dset,
                pre,
                data,
                order: crate::data::shuffled_batches(train, batch, seed, epoch).into(),
                inputs,
                total,
            },
            Feed::Stream {
                dset,
                seed: split_seed,
                buffer,
                ..
            } => Batches::Stream(Box::new(StreamBatches {
                prepared: Prepared::start(dset, *split_seed, pre, Part::Train),
                shuffle: Some(Shuffle::new(pre.width(), *buffer, seed, epoch)),
                dset: (*dset).clone(),
                width: pre.width(),
                batch,
                ready: VecDeque::new(),
                cur: (Vec::new(), Vec::new()),
                total,
            })),
        }
    }

    /// The batches of `part` in order (for evaluation).
    pub fn eval_batches<'b>(
        &'b self,
        dset: &'b DatasetPlan,
        pre: &'b Preprocessor,
        batch: usize,
        part: Part,
    ) -> Batches<'b> {
        let batch = batch.max(1);
        let total = self.len(part).div_ceil(batch);
        match self {
            Feed::Rows { data, .. } => {
                let rows = self.rows(part).map_or(&[][..], |r| r.1);
                Batches::Rows {
                    dset,
                    pre,
                    data,
                    order: rows.chunks(batch).map(<[usize]>::to_vec).collect(),
                    inputs: true,
                    total,
                }
            }
            Feed::Stream {
                dset, seed, counts, ..
            } => Batches::Stream(Box::new(StreamBatches {
                prepared: Prepared::start(dset, *seed, pre, part),
                shuffle: None,
                dset: (*dset).clone(),
                width: pre.width(),
                batch,
                ready: VecDeque::new(),
                cur: (Vec::new(), Vec::new()),
                total: counts.of(part).div_ceil(batch),
            })),
        }
    }

    /// About `cap` training rows of a stream as they came (for the drift profile): the rows
    /// whose key, hashed once more, falls under `cap / rows`; read in one more pass.
    pub fn train_sample(&self, pre: &Preprocessor, cap: usize) -> Result<Sample, Diagnostic> {
        let mut sample = Sample::empty(pre);
        let Feed::Stream {
            dset, seed, counts, ..
        } = self
        else {
            return Err(Diagnostic::internal("a sample of rows held in memory"));
        };
        let rate = cap as f64 / counts.train.max(1) as f64;
        stream::visit(dset, *seed, |data, keys, parts| {
            let rows: Vec<usize> = (0..parts.len())
                .filter(|r| {
                    parts[*r] == Part::Train
                        && stream::unit(crate::rng::mix(keys[*r] ^ 0x5bd1_e995)) < rate
                })
                .collect();
            sample.push(data, &rows);
            Ok(())
        })
        .map_err(|e| e.diagnostic())?;
        Ok(sample)
    }
}

/// Batches of one pass.
pub enum Batches<'a> {
    Rows {
        dset: &'a DatasetPlan,
        pre: &'a Preprocessor,
        data: &'a Data,
        order: VecDeque<Vec<usize>>,
        inputs: bool,
        total: usize,
    },
    Stream(Box<StreamBatches>),
}

impl Batches<'_> {
    /// How many batches the pass gives.
    pub fn total(&self) -> usize {
        match self {
            Batches::Rows { total, .. } => *total,
            Batches::Stream(s) => s.total,
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch, Diagnostic>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Batches::Rows {
                dset,
                pre,
                data,
                order,
                inputs,
                ..
            } => {
                let rows = order.pop_front()?;
                let n = rows.len();
                if !*inputs {
                    return Some(Ok(Batch {
                        n,
                        rows,
                        x: HostTensor::scalar(0.0),
                        y: HostTensor::scalar(0.0),
                    }));
                }
                Some(
                    super::run::batch_inputs(dset, pre, data, &rows).map(|(x, y)| Batch {
                        n,
                        rows,
                        x,
                        y,
                    }),
                )
            }
            Batches::Stream(s) => s.next(),
        }
    }
}

type Chunk = Result<(Vec<f32>, Vec<f32>), DataError>;

/// A pass over a stream on its own thread, sending each chunk's prepared rows of one part.
struct Prepared {
    rx: Option<Receiver<Chunk>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prepared {
    fn start(dset: &DatasetPlan, seed: u64, pre: &Preprocessor, part: Part) -> Prepared {
        let (tx, rx) = sync_channel::<Chunk>(2);
        let (dset, pre) = (dset.clone(), pre.clone());
        let thread = std::thread::Builder::new()
            .name("mlx-stream".into())
            .spawn(move || produce(&dset, seed, &pre, part, &tx))
            .ok();
        Prepared {
            rx: thread.is_some().then_some(rx),
            thread,
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Hang up first: a producer blocked on a full channel then stops.
        self.rx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn produce(dset: &DatasetPlan, seed: u64, pre: &Preprocessor, part: Part, tx: &SyncSender<Chunk>) {
    let mut hung_up = false;
    let r = stream::visit(dset, seed, |data, _, parts| {
        let rows = stream::rows_of(parts, part);
        if rows.is_empty() {
            return Ok(());
        }
        let mut x = Vec::with_capacity(rows.len() * pre.width());
        pre.features(data, &rows, &mut x)?;
        let mut y = Vec::with_capacity(rows.len());
        data.targets(&rows, &mut y);
        if tx.send(Ok((x, y))).is_err() {
            hung_up = true;
            return Err(DataError::new(crate::data::error::VALUE, "stopped"));
        }
        Ok(())
    });
    if let Err(e) = r
        && !hung_up
    {
        let _ = tx.send(Err(e));
    }
}

/// Batches cut from a streamed pass, through the shuffle buffer when training.
pub struct StreamBatches {
    prepared: Prepared,
    shuffle: Option<Shuffle>,
    dset: DatasetPlan,
    width: usize,
    batch: usize,
    ready: VecDeque<(Vec<f32>, Vec<f32>)>,
    cur: (Vec<f32>, Vec<f32>),
    total: usize,
}

impl StreamBatches {
    fn next(&mut self) -> Option<Result<Batch, Diagnostic>> {
        while self.ready.is_empty() {
            let got = self.prepared.rx.as_ref().map(Receiver::recv);
            let (width, batch) = (self.width, self.batch);
            let (cur, ready) = (&mut self.cur, &mut self.ready);
            let mut take = |x: &[f32], y: f32| {
                cur.0.extend_from_slice(x);
                cur.1.push(y);
                if cur.1.len() == batch {
                    ready.push_back(std::mem::take(cur));
                }
            };
            match got {
                Some(Ok(Ok((x, y)))) => {
                    for (r, t) in y.iter().enumerate() {
                        let row = &x[r * width..(r + 1) * width];
                        match &mut self.shuffle {
                            Some(s) => s.push(row, *t, &mut take),
                            None => take(row, *t),
                        }
                    }
                }
                Some(Ok(Err(e))) => {
                    self.prepared.rx = None;
                    return Some(Err(e.diagnostic()));
                }
                // The pass is over.
                Some(Err(_)) | None => {
                    if let Some(s) = &mut self.shuffle {
                        s.drain(&mut take);
                    }
                    if !cur.1.is_empty() {
                        ready.push_back(std::mem::take(cur));
                    }
                    self.prepared.rx = None;
                    break;
                }
            }
        }
        let (x, y) = self.ready.pop_front()?;
        let n = y.len();
        let (x, y) = tensors(&self.dset, n, x, y);
        Some(Ok(Batch {
            n,
            rows: Vec::new(),
            x,
            y,
        }))
    }
}
