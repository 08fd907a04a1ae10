//! `mpirun -np R mlx run FILE` (feature `mpi`): the ranks of an MPI job as the exchange of
//! data-parallel training (`train::parallel`).
//!
//! Every rank runs the same command on the same file and data: it checks, loads, shuffles,
//! evaluates and decides (early stopping, schedules) exactly as the others, and computes its own
//! range of each batch's shards. The shards' shares of the gradient are exchanged by
//! `MPI_Allgather` (raw `f32` bytes, no arithmetic in MPI) and every rank adds them in shard
//! order, so all ranks hold the same weights after every step, the same as one process would.
//!
//! Rank 0 alone writes where the user asked; the other ranks write their copy of the run into a
//! private scratch directory, removed when they end (`mlx resume` copies the run there first).
//! A rank that fails ends the job with `MPI_Abort` after its diagnostic (mpirun then names the
//! rank); one that is killed is named by mpirun, which ends the others.

use crate::diagnostics::Diagnostic;
use crate::train::parallel::{Clock, Exchange};
use mpi::traits::{Communicator, CommunicatorCollectives};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Whether this process was started by an MPI launcher (Open MPI's mpirun, MPICH's Hydra, srun
/// with PMI/PMIx).
pub fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// The job this process belongs to.
pub struct Job {
    /// Dropping it finalizes MPI ([`Job::finish`]).
    universe: Mutex<Option<mpi::environment::Universe>>,
    world: mpi::topology::SimpleCommunicator,
    rank: usize,
    ranks: usize,
    /// MPI is initialized for serialized calls: one at a time, from any thread.
    calls: Mutex<()>,
    clock: Clock,
    scratch: PathBuf,
}

// SAFETY: the communicator is a handle MPI allows any thread to use when calls are serialized
// (`MPI_THREAD_SERIALIZED`, asked for at initialization); `calls` serializes them.
unsafe impl Send for Job {}
// SAFETY: as above: every MPI call through `&Job` holds `calls`.
unsafe impl Sync for Job {}

impl Job {
    /// Initialize MPI (once per process).
    pub fn init() -> Result<Arc<Job>, Diagnostic> {
        let (universe, provided) = mpi::initialize_with_threading(mpi::Threading::Serialized)
            .ok_or_else(|| {
                Diagnostic::error(CODE, "MPI could not be initialized (it already was)")
            })?;
        if matches!(provided, mpi::Threading::Single | mpi::Threading::Funneled) {
            return Err(Diagnostic::error(
                CODE,
                format!("the MPI library offers threading {provided:?}; mlx needs Serialized"),
            ));
        }
        let world = universe.world();
        let (rank, ranks) = (world.rank() as usize, world.size() as usize);
        // A new directory of this rank's own: a random name, created exclusively. Rank 0
        // writes where the user asked and has none.
        let scratch = if rank > 0 {
            crate::rundir::TempDir::new(&format!("mlx-rank-{rank}-"))
                .map(crate::rundir::TempDir::keep)
                .map_err(|e| {
                    Diagnostic::error(
                        CODE,
                        format!("rank {rank}: cannot make a scratch directory: {e}"),
                    )
                })?
        } else {
            PathBuf::new()
        };
        Ok(Arc::new(Job {
            universe: Mutex::new(Some(universe)),
            world,
            rank,
            ranks,
            calls: Mutex::new(()),
            clock: Clock::default(),
            scratch,
        }))
    }

    fn remove_scratch(&self) {
        if !self.scratch.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }

    /// Where a rank other than 0 writes its copy of what rank 0 writes.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// This rank's copy of the run directory `dir` (rank 0 resumes `dir` itself).
    pub fn scratch_copy(&self, dir: &Path) -> Result<PathBuf, Diagnostic> {
        let name = dir
            .file_name()
            .map_or_else(|| "run".into(), |n| n.to_owned());
        let to = self.scratch.join("resume").join(name);
        copy_tree(dir, &to).map_err(|e| {
            Diagnostic::error(
                CODE,
                format!(
                    "rank {}: cannot copy the run {} to {}: {e}",
                    self.rank,
                    dir.display(),
                    to.display()
                ),
            )
        })?;
        Ok(to)
    }

    /// End the whole job after a failure on this rank.
    pub fn abort(&self, status: u8) -> ! {
        self.remove_scratch();
        let _guard = self.calls.lock();
        self.world.abort(i32::from(status.max(1)))
    }

    /// The end of a rank that succeeded: its scratch directory removed, MPI finalized (every
    /// rank must; the job waits for all of them).
    pub fn finish(&self) {
        self.remove_scratch();
        let _guard = self.calls.lock();
        if let Ok(mut u) = self.universe.lock() {
            drop(u.take());
        }
    }
}

/// The code of the job's own failures.
pub const CODE: &str = "mlx::mpi::job";

impl Exchange for Job {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn all_gather(&self, values: Vec<f32>) -> Result<Vec<f32>, Diagnostic> {
        let mut all = vec![0.0f32; values.len() * self.ranks];
        let _guard = self
            .calls
            .lock()
            .map_err(|_| Diagnostic::internal("an MPI call panicked"))?;
        self.world.all_gather_into(&values[..], &mut all[..]);
        Ok(all)
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// Copy a run (or sweep) directory, leaving out the temporary files of atomic writes and the
/// writers' locks; a file that vanishes meanwhile (rank 0 removing a killed writer's temporary
/// file) is skipped.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        let shown = name.to_string_lossy();
        if shown.contains(".tmp-")
            || (shown.ends_with(".lock") && shown != crate::rundir::lock::FILE)
        {
            continue;
        }
        let Ok(t) = e.file_type() else { continue };
        let dest = to.join(&name);
        let copied = if t.is_dir() {
            copy_tree(&e.path(), &dest)
        } else if t.is_file() {
            std::fs::copy(e.path(), dest).map(|_| ())
        } else {
            Ok(())
        };
        match copied {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}
