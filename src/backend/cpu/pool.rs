//! A persistent thread pool: `run(n, f)` calls `f(0..n)` across the worker threads and the
//! caller, and returns when every task is done. Tasks write disjoint parts of their outputs,
//! so results never depend on how many threads ran them.
//!
//! A training step runs hundreds of parallel steps of tens of microseconds each, so waking a
//! sleeping thread (tens of microseconds) would cost as much as the work. Idle workers and a
//! waiting caller therefore spin for a short while (`SPIN`) before they sleep.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long an idle thread polls for work before it sleeps.
const SPIN: Duration = Duration::from_micros(200);
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Task = dyn Fn(usize) + Sync;

struct Job {
    /// Valid until `remaining` reaches 0: `run` waits for that before returning.
    f: *const Task,
    n: usize,
    next: AtomicUsize,
    remaining: AtomicUsize,
}

// SAFETY: the task pointer refers to a `Sync` closure that outlives the job (see `run`).
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

#[derive(Default)]
struct Shared {
    job: Option<Arc<Job>>,
    generation: u64,
    shutdown: bool,
}

struct Inner {
    /// The generation of the latest job, readable without the lock (for spinning).
    posted: AtomicU64,
    /// Workers waiting on `wake` (changed under the lock): posting a job wakes them only when
    /// there are any, so a busy pool makes no system call per job.
    sleepers: AtomicUsize,
    /// The caller of `run` waits on `done` (see `run` and `work` for the ordering).
    caller_sleeping: AtomicBool,
    state: Mutex<Shared>,
    wake: Condvar,
    done: Condvar,
}

pub struct Pool {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
}

impl Pool {
    /// A pool of `threads` threads in all (the caller counts as one).
    pub fn new(threads: usize) -> Pool {
        let threads = threads.max(1);
        let inner = Arc::new(Inner {
            posted: AtomicU64::new(0),
            sleepers: AtomicUsize::new(0),
            caller_sleeping: AtomicBool::new(false),
            state: Mutex::new(Shared::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let workers = (1..threads)
            .filter_map(|i| {
                let inner = inner.clone();
                std::thread::Builder::new()
                    .name(format!("mlx-cpu-{i}"))
                    .spawn(move || worker(&inner))
                    .ok()
            })
            .collect::<Vec<_>>();
        let threads = workers.len() + 1;
        Pool {
            inner,
            workers,
            threads,
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Call `f(i)` for every `i` in `0..n`, in parallel; returns when all are done.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if n == 0 {
            return;
        }
        if n == 1 || self.threads == 1 {
            (0..n).for_each(f);
            return;
        }
        // SAFETY: the pointer's lifetime is erased for the job's duration only: this function
        // does not return before `remaining` is 0, i.e. before every task has finished with it.
        let f_static: *const Task = unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const Task>(f as *const _)
        };
        let job = Arc::new(Job {
            f: f_static,
            n,
            next: AtomicUsize::new(0),
            remaining: AtomicUsize::new(n),
        });
        {
            let mut s = match self.inner.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            s.job = Some(job.clone());
            s.generation += 1;
            self.inner.posted.store(s.generation, Ordering::Release);
        }
        // A worker that found no job under the lock counted itself before waiting, and this
        // thread took the lock after that: the count is visible here.
        if self.inner.sleepers.load(Ordering::SeqCst) > 0 {
            self.inner.wake.notify_all();
        }
        work(&job, &self.inner);
        // The last tasks may still run on other threads: poll, then sleep.
        let start = Instant::now();
        let mut polls = 0u32;
        while job.remaining.load(Ordering::Acquire) > 0 {
            std::hint::spin_loop();
            polls += 1;
            if polls.is_multiple_of(64) && start.elapsed() > SPIN {
                break;
            }
        }
        let mut s = match self.inner.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // Announce the wait before checking: the worker that finishes the last task reads the
        // flag after its decrement (both sequentially consistent), so either this check sees
        // 0 or that worker sees the flag and notifies under the lock.
        self.inner.caller_sleeping.store(true, Ordering::SeqCst);
        while job.remaining.load(Ordering::SeqCst) > 0 {
            s = match self.inner.done.wait(s) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
        self.inner.caller_sleeping.store(false, Ordering::SeqCst);
        s.job = None;
    }
}

fn work(job: &Job, inner: &Inner) {
    loop {
        let i = job.next.fetch_add(1, Ordering::AcqRel);
        if i >= job.n {
            return;
        }
        // SAFETY: see `Pool::run`: the closure outlives the job.
        let f = unsafe { &*job.f };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i)));
        if job.remaining.fetch_sub(1, Ordering::SeqCst) == 1
            && inner.caller_sleeping.load(Ordering::SeqCst)
        {
            let _g = inner.state.lock();
            inner.done.notify_all();
        }
    }
}

fn worker(inner: &Inner) {
    let mut seen = 0u64;
    loop {
        // Poll for the next job before sleeping.
        let start = Instant::now();
        let mut polls = 0u32;
        while inner.posted.load(Ordering::Acquire) == seen {
            std::hint::spin_loop();
            polls += 1;
            if polls.is_multiple_of(64) && start.elapsed() > SPIN {
                break;
            }
        }
        let job = {
            let mut s = match inner.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            while !s.shutdown && (s.generation == seen || s.job.is_none()) {
                inner.sleepers.fetch_add(1, Ordering::SeqCst);
                s = match inner.wake.wait(s) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                inner.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
            if s.shutdown {
                return;
            }
            seen = s.generation;
            s.job.clone()
        };
        if let Some(job) = job {
            work(&job, inner);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let mut s = match self.inner.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            s.shutdown = true;
        }
        self.inner.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The number of threads to use: `MLX_THREADS`, or the machine's processors.
pub fn default_threads() -> usize {
    std::env::var("MLX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Jobs posted while workers spin, sleep or are about to sleep, and callers that sleep
    /// waiting for a slow task: every job completes (a lost wake-up would hang here).
    #[test]
    fn no_job_is_lost_between_spinning_and_sleeping() {
        for threads in [2, 3] {
            let pool = Pool::new(threads);
            let total = AtomicU64::new(0);
            for round in 0..400u64 {
                // Every few rounds a pause longer than the spin, so workers fall asleep.
                if round % 37 == 0 {
                    std::thread::sleep(SPIN * 2);
                }
                let n = 1 + (round % 5) as usize;
                pool.run(n, &|i| {
                    if round % 53 == 0 && i == 0 {
                        std::thread::sleep(SPIN * 2);
                    }
                    total.fetch_add(1, Ordering::Relaxed);
                });
            }
            let want: u64 = (0..400u64).map(|r| 1 + r % 5).sum();
            assert_eq!(total.load(Ordering::Relaxed), want);
        }
    }

    #[test]
    fn every_task_runs_once_in_any_pool() {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads);
            for n in [0, 1, 3, 100] {
                let hits: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
                pool.run(n, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }
}
