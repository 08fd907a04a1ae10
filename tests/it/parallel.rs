//! Data-parallel training (`shards = S`) without MPI: ranks as threads of this process, with an
//! all-gather over a barrier, run the same trains as one process; the runs are the same bit for
//! bit. A sharded train is the same model as the unsharded one (its update, to rounding), and
//! the checker refuses what sharding cannot do. `tests/it/mpi.rs` runs real MPI jobs.

use crate::reproduce::{assert_same_run, mlx, stderr};
use crate::run::{json, out_dir};
use mlx::diagnostics::Diagnostic;
use mlx::train::parallel::{Clock, Exchange};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};

/// `ranks` threads that gather through shared memory.
struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f32>>>,
}

struct ThreadRank {
    rank: usize,
    ranks: usize,
    shared: Arc<Shared>,
    clock: Clock,
}

impl Exchange for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn ranks(&self) -> usize {
        self.ranks
    }
    fn all_gather(&self, values: Vec<f32>) -> Result<Vec<f32>, Diagnostic> {
        self.shared.slots.lock().unwrap()[self.rank] = values;
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().unwrap().concat();
        self.shared.barrier.wait();
        Ok(all)
    }
    fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// `mlx run` in this process, quietly, on the CPU, into `out`, with this exchange.
fn run_options(out: PathBuf, exchange: Option<Arc<dyn Exchange>>) -> mlx::commands::RunOptions {
    mlx::commands::RunOptions {
        train: None,
        sweep: None,
        backend: mlx::backend::BackendKind::Cpu,
        out,
        progress: false,
        verbose: false,
        jobs: 1,
        plot: false,
        exchange,
    }
}

/// `mlx run FILE --set ...` in this process on `ranks` thread ranks (`None`: no exchange at
/// all, one process); returns rank 0's run directory.
fn run_ranks(file: &Path, sets: &[&str], ranks: Option<usize>, out: &Path) -> PathBuf {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let opts = |rank: usize, ex: Option<Arc<dyn Exchange>>| {
        run_options(out.join(format!("rank-{rank}")), ex)
    };
    let n = ranks.unwrap_or(1);
    let shared = Arc::new(Shared {
        barrier: Barrier::new(n),
        slots: Mutex::new(vec![Vec::new(); n]),
    });
    let dirs: Vec<Vec<PathBuf>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|rank| {
                let ex: Option<Arc<dyn Exchange>> = ranks.map(|ranks| {
                    Arc::new(ThreadRank {
                        rank,
                        ranks,
                        shared: shared.clone(),
                        clock: Clock::default(),
                    }) as Arc<dyn Exchange>
                });
                let o = opts(rank, ex);
                let sets = &sets;
                s.spawn(move || {
                    let (_, diags, dirs) = mlx::commands::run(file, sets, &o);
                    assert!(
                        !diags.iter().any(Diagnostic::is_error),
                        "rank {rank}: {diags:?}"
                    );
                    dirs
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    dirs[0][0].clone()
}

#[test]
fn shards_on_any_number_of_ranks_train_the_same_model() {
    let out = out_dir("parallel-ranks");
    let file = crate::root().join("examples/penguins.mlx");
    // 6 shards of batches of 32 rows (the last batch of each epoch has fewer); dropout draws
    // its masks by shard.
    let sets = ["shards=6", "epochs=12"];
    let one = run_ranks(&file, &sets, None, &out.join("one"));
    for ranks in [1, 2, 3, 4] {
        let dir = run_ranks(&file, &sets, Some(ranks), &out.join(format!("r{ranks}")));
        assert_same_run(&one, &dir);
    }
    let s = json(&one.join("summary.json"));
    let acc = s["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.9, "a sharded penguins model still learns: {s}");
    // The setting is part of the experiment (the resolved program), not a run-time option.
    let spec = std::fs::read_to_string(one.join("spec.mlx")).unwrap();
    assert!(spec.contains("shards = 6"), "{spec}");
}

/// Penguins without dropout, trained by plain SGD: sharded or not, the same updates to rounding.
#[test]
fn a_sharded_step_is_the_batch_step() {
    let out = out_dir("parallel-same-step");
    std::fs::create_dir_all(&out).unwrap();
    let text = std::fs::read_to_string(crate::root().join("examples/penguins.mlx"))
        .unwrap()
        .replace(" |> dropout(0.1)", "")
        .replace("adam(lr: 0.01)", "sgd(lr: 0.05)")
        .replace(
            "\"data/penguins.csv\"",
            &format!(
                "\"{}\"",
                crate::root().join("examples/data/penguins.csv").display()
            ),
        );
    let file = out.join("penguins_sgd.mlx");
    std::fs::write(&file, text).unwrap();
    let plain = run_ranks(&file, &["epochs=3"], None, &out.join("plain"));
    let sharded = run_ranks(&file, &["epochs=3", "shards=5"], None, &out.join("sharded"));
    let (a, b) = (weights(&plain), weights(&sharded));
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f32;
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        for (x, y) in va.iter().zip(vb) {
            worst = worst.max((x - y).abs() / (1.0 + x.abs()));
        }
    }
    // Rounding apart (f32 sums in another order over ~30 steps), not another model.
    assert!(worst < 1e-4, "sharded weights differ by {worst}");
    assert!(worst > 0.0, "the sharded run did not shard");
}

/// The tensors of a run's model.safetensors, by name.
fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let o = v["data_offsets"].as_array().unwrap();
            let (s, e) = (
                o[0].as_u64().unwrap() as usize,
                o[1].as_u64().unwrap() as usize,
            );
            let data = &bytes[8 + n + s..8 + n + e];
            (
                k.clone(),
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn sharding_refuses_what_it_cannot_do() {
    // More shards than rows in a batch.
    let o = mlx()
        .args(["check", "examples/penguins.mlx", "--set", "shards=33"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`shards` (33) is larger than `batch` (32)"),
        "{}",
        stderr(&o)
    );
    let o = mlx()
        .args(["check", "examples/penguins.mlx", "--set", "shards=0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("mlx::value::range"), "{}", stderr(&o));
    // A model with batch normalization: its statistics couple the rows of a batch.
    let out = out_dir("parallel-refusals");
    std::fs::create_dir_all(&out).unwrap();
    let text = std::fs::read_to_string(crate::root().join("examples/penguins.mlx"))
        .unwrap()
        .replace(
            "dense(hidden) |> relu",
            "dense(hidden) |> batch_norm |> relu",
        )
        .replace(
            "\"data/penguins.csv\"",
            &format!(
                "\"{}\"",
                crate::root().join("examples/data/penguins.csv").display()
            ),
        );
    let file = out.join("bn.mlx");
    std::fs::write(&file, text).unwrap();
    let o = mlx()
        .arg("run")
        .arg(&file)
        .args([
            "--set",
            "shards=2",
            "--set",
            "epochs=1",
            "-q",
            "--no-plot",
            "--out",
        ])
        .arg(out.join("runs"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("mlx::train::shards"), "{}", stderr(&o));
    assert!(stderr(&o).contains("batch normalization"), "{}", stderr(&o));
    // On more ranks than shards, or without shards on several ranks.
    let file = crate::root().join("examples/penguins.mlx");
    for (sets, expect) in [
        (&["epochs=1"][..], "does not set `shards`"),
        (&["epochs=1", "shards=2"][..], "fewer than the 3 MPI ranks"),
    ] {
        let shared = Arc::new(Shared {
            barrier: Barrier::new(1),
            slots: Mutex::new(vec![Vec::new(); 3]),
        });
        let ex: Arc<dyn Exchange> = Arc::new(ThreadRank {
            rank: 0,
            ranks: 3,
            shared,
            clock: Clock::default(),
        });
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let opts = run_options(out.join("ranks"), Some(ex));
        let (_, diags, dirs) = mlx::commands::run(&file, &sets, &opts);
        assert!(dirs.is_empty());
        let d = diags.iter().find(|d| d.is_error()).expect("an error");
        assert_eq!(d.code, "mlx::mpi::shards", "{d:?}");
        assert!(d.message.contains(expect), "{d:?}");
    }
}

/// A build without the `mpi` feature started by mpirun would train once per process.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_to_run_as_several_mpi_processes() {
    let out = out_dir("parallel-no-mpi");
    let o = mlx()
        .args([
            "run",
            "examples/penguins.mlx",
            "--set",
            "epochs=1",
            "-q",
            "--out",
        ])
        .arg(&out)
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("mlx::mpi::job"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--features mpi"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing was trained"
    );
}

/// Ranks that loaded different rows refuse to train instead of diverging silently.
#[test]
fn ranks_that_loaded_different_data_refuse_to_train() {
    let work = out_dir("parallel-other-data");
    std::fs::create_dir_all(work.join("data")).unwrap();
    let csv = std::fs::read_to_string(crate::root().join("examples/data/penguins.csv")).unwrap();
    // One value changed on "another machine".
    std::fs::write(
        work.join("data/penguins.csv"),
        csv.replacen("39.1,18.7", "39.2,18.7", 1),
    )
    .unwrap();
    let spec = std::fs::read_to_string(crate::root().join("examples/penguins.mlx")).unwrap();
    std::fs::write(work.join("penguins.mlx"), spec).unwrap();
    let files = [
        crate::root().join("examples/penguins.mlx"),
        work.join("penguins.mlx"),
    ];
    let shared = Arc::new(Shared {
        barrier: Barrier::new(2),
        slots: Mutex::new(vec![Vec::new(); 2]),
    });
    let sets: Vec<String> = ["shards=2", "epochs=1"].map(String::from).to_vec();
    let diags: Vec<Vec<Diagnostic>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let ex: Arc<dyn Exchange> = Arc::new(ThreadRank {
                    rank,
                    ranks: 2,
                    shared: shared.clone(),
                    clock: Clock::default(),
                });
                let (file, sets, out) = (&files[rank], &sets, work.join(format!("rank-{rank}")));
                s.spawn(move || {
                    let o = run_options(out, Some(ex));
                    mlx::commands::run(file, sets, &o).1
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (rank, d) in diags.iter().enumerate() {
        let e = d.iter().find(|d| d.is_error()).expect("an error");
        assert_eq!(e.code, "mlx::mpi::shards", "rank {rank}: {e:?}");
        assert!(
            e.message.contains("rank 1 loaded other data than rank 0"),
            "rank {rank}: {e:?}"
        );
    }
}
