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
                prepared: Prepared::start(dset, *split_seed, pre, vec![Part::Train], None),
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
                prepared: Prepared::start(dset, *seed, pre, vec![part], None),
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

    /// The batches of each of `parts` in order, in one pass over a stream (`f` gets the index
    /// of the part in `parts` and the batch; each part's batches are those `eval_batches`
    /// gives). From a stream, also about `sample` training rows as they came (for the drift
    /// profile): those whose key, hashed once more, falls under `sample / rows`.
    pub fn eval_all(
        &self,
        dset: &DatasetPlan,
        pre: &Preprocessor,
        batch: usize,
        parts: &[Part],
        sample: Option<usize>,
        mut f: impl FnMut(usize, Batch) -> Result<(), Diagnostic>,
    ) -> Result<Option<Sample>, Diagnostic> {
        let Feed::Stream {
            dset: sdset,
            seed,
            counts,
            ..
        } = self
        else {
            for (i, part) in parts.iter().enumerate() {
                for b in self.eval_batches(dset, pre, batch, *part) {
                    f(i, b?)?;
                }
            }
            return Ok(None);
        };
        let batch = batch.max(1);
        let rate = sample.map(|cap| cap as f64 / counts.train.max(1) as f64);
        let prepared = Prepared::start(sdset, *seed, pre, parts.to_vec(), rate);
        let mut cur: Vec<(Vec<f32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); parts.len()];
        let width = pre.width();
        let mut emit = |i: usize, (x, y): (Vec<f32>, Vec<f32>)| {
            let n = y.len();
            let (x, y) = tensors(dset, n, x, y);
            f(
                i,
                Batch {
                    n,
                    rows: Vec::new(),
                    x,
                    y,
                },
            )
        };
        while let Some(got) = prepared.rx.as_ref().and_then(|rx| rx.recv().ok()) {
            let (i, x, y) = got.map_err(|e| e.diagnostic())?;
            for (r, t) in y.iter().enumerate() {
                let c = &mut cur[i];
                c.0.extend_from_slice(&x[r * width..(r + 1) * width]);
                c.1.push(*t);
                if c.1.len() == batch {
                    emit(i, std::mem::take(c))?;
                }
            }
        }
        for (i, c) in cur.into_iter().enumerate() {
            if !c.1.is_empty() {
                emit(i, c)?;
            }
        }
        Ok(prepared.finish())
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

/// A chunk's prepared rows of one part (its index among those asked for): inputs and targets.
type Chunk = Result<(usize, Vec<f32>, Vec<f32>), DataError>;

/// A pass over a stream on its own thread, sending each chunk's prepared rows of the parts
/// asked for, and keeping a sample of the training rows when asked to.
struct Prepared {
    rx: Option<Receiver<Chunk>>,
    thread: Option<std::thread::JoinHandle<Option<Sample>>>,
}

impl Prepared {
    fn start(
        dset: &DatasetPlan,
        seed: u64,
        pre: &Preprocessor,
        parts: Vec<Part>,
        sample: Option<f64>,
    ) -> Prepared {
        let (tx, rx) = sync_channel::<Chunk>(2);
        let (dset, pre) = (dset.clone(), pre.clone());
        let thread = std::thread::Builder::new()
            .name("mlx-stream".into())
            .spawn(move || produce(&dset, seed, &pre, &parts, sample, &tx))
            .ok();
        Prepared {
            rx: thread.is_some().then_some(rx),
            thread,
        }
    }

    /// The sample, once the pass is over.
    fn finish(mut self) -> Option<Sample> {
        self.rx = None;
        self.thread.take().and_then(|t| t.join().ok()).flatten()
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

fn produce(
    dset: &DatasetPlan,
    seed: u64,
    pre: &Preprocessor,
    wanted: &[Part],
    sample: Option<f64>,
    tx: &SyncSender<Chunk>,
) -> Option<Sample> {
    let mut hung_up = false;
    let mut kept = sample.map(|_| Sample::empty(pre));
    let r = stream::visit(dset, seed, |data, keys, parts| {
        for (i, part) in wanted.iter().enumerate() {
            let rows = stream::rows_of(parts, *part);
            if rows.is_empty() {
                continue;
            }
            let mut x = Vec::with_capacity(rows.len() * pre.width());
            pre.features(data, &rows, &mut x)?;
            let mut y = Vec::with_capacity(rows.len());
            data.targets(&rows, &mut y);
            if tx.send(Ok((i, x, y))).is_err() {
                hung_up = true;
                return Err(DataError::new(crate::data::error::VALUE, "stopped"));
            }
        }
        if let (Some(s), Some(rate)) = (kept.as_mut(), sample) {
            let rows: Vec<usize> = (0..parts.len())
                .filter(|r| {
                    parts[*r] == Part::Train
                        && stream::unit(crate::rng::mix(keys[*r] ^ 0x5bd1_e995)) < rate
                })
                .collect();
            s.push(data, &rows);
        }
        Ok(())
    });
    if let Err(e) = r
        && !hung_up
    {
        let _ = tx.send(Err(e));
    }
    kept
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
                Some(Ok(Ok((_, x, y)))) => {
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
