//! Data-parallel training (`shards = S`): each batch is cut into `S` fixed shards in a fixed
//! order; a shard's share of the batch gradient is computed apart (`grad_s` of the program),
//! the shares are added in shard order and the optimizer applies the sum (`apply`).
//!
//! The cut depends only on the batch and `S`, and the sum only on the shares and their order,
//! so the update is the same, bit for bit, wherever the shards were computed: all on one
//! process ([`Local`]), or spread over the ranks of an MPI job (`crate::mpi`), each rank
//! computing a contiguous range of them and every rank receiving every share (an all-gather,
//! not a floating-point all-reduce, whose order of addition is the MPI library's).

use crate::diagnostics::Diagnostic;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// The rows (positions in the batch) of shard `k` when `rows` rows are cut into `shards`:
/// contiguous, in order, sizes differing by at most one (a shard is empty when the batch has
/// fewer rows than shards).
pub fn shard_rows(rows: usize, shards: usize, k: usize) -> Range<usize> {
    k * rows / shards..(k + 1) * rows / shards
}

/// The distinct non-empty shard sizes of batches of the given sizes.
pub fn shard_sizes(batches: &[usize], shards: usize) -> Vec<usize> {
    let mut v: Vec<usize> = batches
        .iter()
        .flat_map(|&n| (0..shards).map(move |k| shard_rows(n, shards, k).len()))
        .filter(|s| *s > 0)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The shards rank `rank` of `ranks` computes: a contiguous range, as even as can be.
pub fn owned(shards: usize, ranks: usize, rank: usize) -> Range<usize> {
    rank * shards / ranks..(rank + 1) * shards / ranks
}

/// Where the shards of a batch are computed, and how their shares reach every process.
pub trait Exchange: Send + Sync {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn ranks(&self) -> usize;
    /// Every rank's `values` (each rank sends the same length), concatenated in rank order.
    fn all_gather(&self, values: Vec<f32>) -> Result<Vec<f32>, Diagnostic>;
    /// What the exchange has cost so far.
    fn clock(&self) -> &Clock;
}

impl std::fmt::Debug for dyn Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rank {} of {}", self.rank(), self.ranks())
    }
}

static PROCESS: std::sync::OnceLock<std::sync::Arc<dyn Exchange>> = std::sync::OnceLock::new();

/// Make `e` the exchange of every run of this process that names none (an MPI job's ranks).
pub fn set_process_exchange(e: std::sync::Arc<dyn Exchange>) {
    let _ = PROCESS.set(e);
}

/// The exchange set by [`set_process_exchange`], if any.
pub fn process_exchange() -> Option<&'static std::sync::Arc<dyn Exchange>> {
    PROCESS.get()
}

/// Refuse a train that cannot run on `ranks` processes: sharded training spreads the shards of
/// every batch over the ranks, so each train needs `shards` and at least one shard a rank.
pub fn check_ranks(plan: &crate::check::hir::TrainPlan, ranks: usize) -> Result<(), Diagnostic> {
    if ranks <= 1 {
        return Ok(());
    }
    let d = |m: String| Diagnostic::error(CODE, m);
    match plan.shards {
        None if plan.multi.is_some() => Err(d(format!(
            "train `{}` has objectives, which data-parallel training over {ranks} MPI ranks does not support",
            plan.name
        ))
        .with_help("run it without mpirun")),
        None => Err(d(format!(
            "train `{}` runs on {ranks} MPI ranks but does not set `shards`",
            plan.name
        ))
        .with_help(format!(
            "add `shards = {ranks}` (or more) to the train, or pass `--set shards={ranks}`: \
             each batch is cut into that many shards, and the result is the same, bit for bit, \
             on any number of ranks up to it and without MPI"
        ))),
        Some(s) if s < ranks => Err(d(format!(
            "train `{}` cuts its batches into {s} shards, fewer than the {ranks} MPI ranks",
            plan.name
        ))
        .with_help(format!(
            "run on at most {s} ranks, or set `shards` to {ranks} or more (a different number \
             of shards gives a different, equally valid, result)"
        ))),
        Some(_) => Ok(()),
    }
}

/// The code of data-parallel training's diagnostics.
pub const CODE: &str = "mlx::mpi::shards";

/// Time spent computing shards and exchanging their shares, summed over steps.
#[derive(Default)]
pub struct Clock {
    steps: AtomicU64,
    compute_ns: AtomicU64,
    exchange_ns: AtomicU64,
    bytes: AtomicU64,
}

impl Clock {
    pub fn add(&self, compute: std::time::Duration, exchange: std::time::Duration, bytes: usize) {
        self.steps.fetch_add(1, Ordering::Relaxed);
        self.compute_ns
            .fetch_add(compute.as_nanos() as u64, Ordering::Relaxed);
        self.exchange_ns
            .fetch_add(exchange.as_nanos() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The totals so far: steps, nanoseconds computing and exchanging, bytes gathered.
    pub fn totals(&self) -> [u64; 4] {
        [
            self.steps.load(Ordering::Relaxed),
            self.compute_ns.load(Ordering::Relaxed),
            self.exchange_ns.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        ]
    }

    /// Since `before` (a run's start: one clock serves every run of a process): steps, then
    /// milliseconds per step computing and exchanging, and bytes gathered per step.
    pub fn per_step_since(&self, before: [u64; 4]) -> (u64, f64, f64, f64) {
        let now = self.totals();
        let d = |i: usize| now[i].saturating_sub(before[i]);
        let n = d(0);
        let per = n.max(1) as f64;
        (
            n,
            d(1) as f64 / 1e6 / per,
            d(2) as f64 / 1e6 / per,
            d(3) as f64 / per,
        )
    }
}

/// One process computes every shard.
#[derive(Default)]
pub struct Local {
    clock: Clock,
}

impl Exchange for Local {
    fn rank(&self) -> usize {
        0
    }
    fn ranks(&self) -> usize {
        1
    }
    fn all_gather(&self, values: Vec<f32>) -> Result<Vec<f32>, Diagnostic> {
        Ok(values)
    }
    fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// The gradient of a batch from its shards' shares, gathered from every rank: `gathered` holds
/// `ranks` blocks of `slots` shares each (rank `r`'s block starts with the shares of its own
/// shards, in order, then unused slots), a share being `width` values (the scaled loss, then
/// every gradient). Returns the shares added in shard order, skipping empty shards.
pub fn sum_in_shard_order(
    gathered: &[f32],
    shards: usize,
    ranks: usize,
    slots: usize,
    width: usize,
    empty: impl Fn(usize) -> bool,
) -> Vec<f32> {
    let mut total = vec![0.0f32; width];
    for r in 0..ranks {
        for (i, k) in owned(shards, ranks, r).enumerate() {
            if empty(k) {
                continue;
            }
            let at = (r * slots + i) * width;
            for (t, v) in total.iter_mut().zip(&gathered[at..at + width]) {
                *t += *v;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cut_every_batch_into_contiguous_parts_in_order() {
        for rows in 0..40 {
            for shards in 1..9 {
                let parts: Vec<Range<usize>> =
                    (0..shards).map(|k| shard_rows(rows, shards, k)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[shards - 1].end, rows);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let (lo, hi) = (
                    parts.iter().map(|p| p.len()).min().unwrap(),
                    parts.iter().map(|p| p.len()).max().unwrap(),
                );
                assert!(hi - lo <= 1, "{rows} rows in {shards}: {parts:?}");
            }
        }
        assert_eq!(shard_rows(10, 3, 0), 0..3);
        assert_eq!(shard_rows(10, 3, 1), 3..6);
        assert_eq!(shard_rows(10, 3, 2), 6..10);
        assert_eq!(shard_sizes(&[32, 7], 6), vec![1, 2, 5, 6]);
    }

    #[test]
    fn ranks_own_every_shard_once() {
        for shards in 1..10 {
            for ranks in 1..=shards {
                let all: Vec<usize> = (0..ranks).flat_map(|r| owned(shards, ranks, r)).collect();
                assert_eq!(all, (0..shards).collect::<Vec<_>>());
            }
        }
        assert_eq!(owned(6, 4, 0), 0..1);
        assert_eq!(owned(6, 4, 3), 4..6);
    }

    #[test]
    fn the_sum_is_the_same_for_any_number_of_ranks() {
        // Shares whose sum depends on the order of addition in f32.
        let (shards, width) = (6, 3);
        let share = |k: usize| -> Vec<f32> {
            (0..width)
                .map(|j| [1e8f32, 1.0, -1e8, 3.5, 1e-3, 7.25][(k + j) % 6])
                .collect()
        };
        let mut expect = vec![0.0f32; width];
        for k in 0..shards {
            for (e, v) in expect.iter_mut().zip(share(k)) {
                *e += v;
            }
        }
        for ranks in 1..=shards {
            let slots = shards.div_ceil(ranks);
            let mut gathered = vec![f32::NAN; ranks * slots * width];
            for r in 0..ranks {
                for (i, k) in owned(shards, ranks, r).enumerate() {
                    let at = (r * slots + i) * width;
                    gathered[at..at + width].copy_from_slice(&share(k));
                }
            }
            let got = sum_in_shard_order(&gathered, shards, ranks, slots, width, |_| false);
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                expect.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                "{ranks} ranks"
            );
        }
        // A different order gives a different sum: the test above can tell.
        let mut reversed = vec![0.0f32; width];
        for k in (0..shards).rev() {
            for (e, v) in reversed.iter_mut().zip(share(k)) {
                *e += v;
            }
        }
        assert_ne!(reversed, expect);
    }
}
