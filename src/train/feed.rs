//! Where a train's batches come from: rows of an in-memory pool (a fold's row indices), or a
//! streamed dataset read pass by pass (`data::stream`). A streamed pass is read on a thread of
//! its own, prepared rows a piece ahead of the step that uses them (pieces of at most 16 MiB,
//! two at most waiting), so parsing overlaps training and memory stays bounded. Every pass
//! must read the rows the first did (`stream::Digest`); a thread that fails ends the run with
//! a diagnostic, never with a short pass.

use crate::backend::HostTensor;
use crate::check::hir::{DatasetPlan, TargetKind};
use crate::data::stream::{self, Counts, Digest, Part, Shuffle};
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
        digest: Digest,
        /// `shuffle_buffer`, if the dataset sets it.
        buffer: Option<usize>,
    },
}

/// Prepared inputs one piece sent by the reading thread holds at most (16 MiB).
const PIECE_FLOATS: usize = 1 << 22;

/// The shuffle buffer's rows when the dataset does not say: 65,536, fewer for wide rows so
/// that it holds at most 256 MiB (at least 1,024 rows).
fn default_buffer(width: usize) -> usize {
    ((256usize << 20) / (4 * (width + 1))).clamp(1024, 1 << 16)
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
                digest,
                ..
            } => Batches::Stream(Box::new(StreamBatches {
                prepared: Prepared::start(dset, *split_seed, *digest, pre, vec![Part::Train], None),
                shuffle: Some(Shuffle::new(
                    pre.width(),
                    buffer.unwrap_or_else(|| default_buffer(pre.width())),
                    seed,
                    epoch,
                )),
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
                dset,
                seed,
                counts,
                digest,
                ..
            } => Batches::Stream(Box::new(StreamBatches {
                prepared: Prepared::start(dset, *seed, *digest, pre, vec![part], None),
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
    /// gives). From a stream, also at most `sample` training rows as they came (for the drift
    /// profile): each row is drawn with probability `sample / rows` by a hash of its key and
    /// its place in the pass (so repeated rows are drawn apart), until `sample` are kept.
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
            digest,
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
        let sampling = sample.map(|cap| (cap as f64 / counts.train.max(1) as f64, cap));
        let mut prepared = Prepared::start(sdset, *seed, *digest, pre, parts.to_vec(), sampling);
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
        while let Some(got) = prepared.next() {
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
        let sample = prepared.end()?;
        for (i, c) in cur.into_iter().enumerate() {
            if !c.1.is_empty() {
                emit(i, c)?;
            }
        }
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

/// A piece of a chunk's prepared rows of one part (its index among those asked for): inputs
/// and targets.
type Chunk = Result<(usize, Vec<f32>, Vec<f32>), DataError>;

/// A pass over a stream on its own thread, sending the prepared rows of the parts asked for,
/// and keeping a sample of the training rows when asked to.
struct Prepared {
    rx: Option<Receiver<Chunk>>,
    thread: Option<std::thread::JoinHandle<Option<Sample>>>,
}

impl Prepared {
    fn start(
        dset: &DatasetPlan,
        seed: u64,
        digest: Digest,
        pre: &Preprocessor,
        parts: Vec<Part>,
        sample: Option<(f64, usize)>,
    ) -> Prepared {
        let (tx, rx) = sync_channel::<Chunk>(2);
        let (dset, pre) = (dset.clone(), pre.clone());
        let thread = std::thread::Builder::new()
            .name("mlx-stream".into())
            .spawn(move || produce(&dset, seed, digest, &pre, &parts, sample, &tx))
            .ok();
        Prepared {
            rx: Some(rx),
            thread,
        }
    }

    /// The next piece, or `None` when the thread has sent everything (or stopped).
    fn next(&mut self) -> Option<Chunk> {
        self.rx.as_ref()?.recv().ok()
    }

    /// After the last piece: the sample, or why the thread stopped early (it panicked, or
    /// never started).
    fn end(&mut self) -> Result<Option<Sample>, Diagnostic> {
        self.rx = None;
        let thread = self.thread.take().ok_or_else(|| {
            Diagnostic::internal("the thread reading the streamed sources could not start")
        })?;
        thread.join().map_err(|panic| {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Diagnostic::internal(format!(
                "the thread reading the streamed sources stopped: {why}"
            ))
        })
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
    digest: Digest,
    pre: &Preprocessor,
    wanted: &[Part],
    sample: Option<(f64, usize)>,
    tx: &SyncSender<Chunk>,
) -> Option<Sample> {
    let mut hung_up = false;
    let mut kept = sample.map(|_| Sample::empty(pre));
    let (mut at, mut drawn) = (0u64, 0usize);
    let piece = (PIECE_FLOATS / pre.width().max(1)).max(1);
    let r = stream::visit(dset, seed, |data, keys, parts| {
        for (i, part) in wanted.iter().enumerate() {
            let rows = stream::rows_of(parts, *part);
            for rows in rows.chunks(piece) {
                let mut x = Vec::with_capacity(rows.len() * pre.width());
                pre.features(data, rows, &mut x)?;
                let mut y = Vec::with_capacity(rows.len());
                data.targets(rows, &mut y);
                if tx.send(Ok((i, x, y))).is_err() {
                    hung_up = true;
                    return Err(DataError::new(crate::data::error::VALUE, "stopped"));
                }
            }
        }
        if let (Some(s), Some((rate, cap))) = (kept.as_mut(), sample) {
            let mut rows = Vec::new();
            for r in 0..parts.len() {
                let place = at + r as u64;
                if parts[r] == Part::Train
                    && drawn + rows.len() < cap
                    && stream::unit(crate::rng::mix(
                        keys[r] ^ place.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    )) < rate
                {
                    rows.push(r);
                }
            }
            drawn += rows.len();
            s.push(data, &rows);
        }
        at += parts.len() as u64;
        Ok(())
    });
    let r = r.and_then(|(_, now)| digest.same(now));
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
            let got = self.prepared.next();
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
                Some(Ok((_, x, y))) => {
                    for (r, t) in y.iter().enumerate() {
                        let row = &x[r * width..(r + 1) * width];
                        match &mut self.shuffle {
                            Some(s) => s.push(row, *t, &mut take),
                            None => take(row, *t),
                        }
                    }
                }
                Some(Err(e)) => {
                    self.prepared.rx = None;
                    return Some(Err(e.diagnostic()));
                }
                // The pass is over (or its thread stopped: that is the error).
                None => {
                    if self.prepared.rx.is_some()
                        && let Err(d) = self.prepared.end()
                    {
                        return Some(Err(d));
                    }
                    if let Some(s) = &mut self.shuffle {
                        s.drain(&mut take);
                    }
                    if !cur.1.is_empty() {
                        ready.push_back(std::mem::take(cur));
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::hir::{Split, StreamPlan};

    fn streamed_penguins() -> DatasetPlan {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let checked = crate::driver::check_file(&root.join("examples/penguins.mlx"), &[]);
        let mut plan = checked.program.expect("penguins checks").datasets.remove(0);
        plan.dedup = false;
        plan.stream = Some(StreamPlan { buffer: Some(50) });
        plan.split = Split::Random {
            train: 0.6,
            val: 0.2,
            test: 0.2,
            stratify: false,
        };
        plan
    }

    fn streamed<'a>(
        plan: &'a DatasetPlan,
        fitted: &stream::Fitted,
        digest: Digest,
        buffer: Option<usize>,
    ) -> Feed<'a> {
        Feed::Stream {
            dset: plan,
            seed: 7,
            counts: fitted.counts,
            digest,
            buffer,
        }
    }

    /// A pass gives every row of its part once, in the batches counted up front; a pass that
    /// reads other rows than the first (a source changed mid-run) ends in an error, not in
    /// short or long epochs.
    #[test]
    fn passes_give_every_row_once_and_refuse_changed_sources() {
        let plan = streamed_penguins();
        let fitted = stream::fit(&plan, 7).unwrap();
        let feed = streamed(&plan, &fitted, fitted.digest, Some(50));
        let train = feed.train_batches(&plan, &fitted.pre, 32, 7, 0, true);
        let total = train.total();
        let sizes: Vec<usize> = train.map(|b| b.unwrap().n).collect();
        assert_eq!(sizes.len(), total);
        assert_eq!(sizes.iter().sum::<usize>(), fitted.counts.train);
        assert!(sizes[..sizes.len() - 1].iter().all(|n| *n == 32));
        let val: usize = feed
            .eval_batches(&plan, &fitted.pre, 32, Part::Val)
            .map(|b| b.unwrap().n)
            .sum();
        assert_eq!(val, fitted.counts.val);

        let other = Digest {
            keys: fitted.digest.keys ^ 1,
            ..fitted.digest
        };
        let changed = streamed(&plan, &fitted, other, Some(50));
        let r: Result<Vec<Batch>, Diagnostic> = changed
            .train_batches(&plan, &fitted.pre, 32, 7, 0, true)
            .collect();
        let e = r.err().expect("a changed source is an error");
        assert_eq!(e.code, "mlx::data::stream");
        assert!(
            e.message.contains("changed during the run"),
            "{}",
            e.message
        );
        let r = changed.eval_all(
            &plan,
            &fitted.pre,
            32,
            &[Part::Val, Part::Test],
            Some(10),
            |_, _| Ok(()),
        );
        assert!(r.is_err());
    }

    /// The drift sample keeps at most its cap, drawn across repeated rows too.
    #[test]
    fn the_drift_sample_is_capped() {
        let plan = streamed_penguins();
        let fitted = stream::fit(&plan, 7).unwrap();
        let feed = streamed(&plan, &fitted, fitted.digest, None);
        for cap in [10, 100, 100_000] {
            let sample = feed
                .eval_all(&plan, &fitted.pre, 32, &[Part::Test], Some(cap), |_, _| {
                    Ok(())
                })
                .unwrap()
                .expect("a sample");
            let rows = sample.len();
            assert!(rows <= cap, "{rows} rows for a cap of {cap}");
            assert!(
                rows >= cap.min(fitted.counts.train) / 3,
                "{rows} rows for {cap}"
            );
        }
    }
}
