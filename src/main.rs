//! The `mlx` command line: parses arguments, runs the driver, renders diagnostics, and maps
//! outcomes to exit statuses (0 success, 1 user error, 2 internal error).

use clap::{Parser, Subcommand};
use mlx::backend::BackendKind;
use mlx::diagnostics::{self, Diagnostic, RenderOptions};
use mlx::source::SourceMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mlx",
    version,
    about = "Declarative machine-learning experiments: check, run, evaluate, predict."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check files: names, types, shapes, data schema, every sweep point. Nothing is trained.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Override a const or a train entry: `--set epochs=1`, `--set optimizer.lr=0.003`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Also print, for each train, the memory a training step needs.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Train every `train` (and run every `sweep`) declared in FILE; prints the run directory last.
    Run {
        file: PathBuf,
        /// Train only this one.
        #[arg(long, conflicts_with = "sweep")]
        train: Option<String>,
        /// Run only this sweep.
        #[arg(long)]
        sweep: Option<String>,
        /// Run only trial K (1-based, as `mlx sweep list` numbers them) of the sweep, into the
        /// sweep directory named by `--out`; a killed trial resumes, a completed one is left as
        /// it is. `mlx sweep collect DIR` then writes the sweep's `sweep.json`.
        #[arg(long, value_name = "K", requires = "out", conflicts_with = "jobs",
              value_parser = clap::value_parser!(u32).range(1..))]
        trial: Option<u32>,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Where run directories go (default: runs); with `--trial`, the sweep's directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No per-epoch lines or progress bars.
        #[arg(long, short)]
        quiet: bool,
        /// Run up to N sweep trials at a time (each in its own thread).
        #[arg(long, short = 'j', value_name = "N",
              value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Do not draw the SVG plots when a run or sweep ends.
        #[arg(long)]
        no_plot: bool,
    },
    /// Continue a killed or failed run from its last checkpoint, in its own directory, to the
    /// same result the uninterrupted run would have had.
    Resume {
        run_dir: PathBuf,
        #[arg(long, short)]
        quiet: bool,
        #[arg(long)]
        no_plot: bool,
    },
    /// Check a run against its lock (data, version, program), re-run it from its own spec.mlx
    /// in a temporary directory, and compare every figure and the model bit for bit.
    Verify {
        run_dir: PathBuf,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Evaluate a run's saved model on its test split again.
    Eval {
        run_dir: PathBuf,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
        /// Use the run even if its spec.mlx or model differ from what its lock recorded.
        #[arg(long)]
        ignore_lock: bool,
    },
    /// Apply a run's preprocessing and model to new inputs: a CSV or JSON Lines file for a
    /// tabular model; PNG or JPEG files, directories of them, or IDX files for an image model.
    /// Writes CSV (or `--format json`) to standard output.
    Predict {
        run_dir: PathBuf,
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
        format: String,
        /// Scale images of another size to the model's.
        #[arg(long)]
        resize: bool,
        /// Use the run even if its spec.mlx or model differ from what its lock recorded.
        #[arg(long)]
        ignore_lock: bool,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
        /// One model of a train with objectives, applied to rows of numbers as it saw them in
        /// training (JSON arrays or CSV without header): a generator's latent vectors, say.
        #[arg(long)]
        model: Option<String>,
    },
    /// Explain a trained model: which raw input columns it relies on. `permutation` (the
    /// default) shuffles each column across the rows and measures the loss in the train's
    /// first metric; `gradients` gives integrated-gradient attributions of every row.
    Explain {
        /// A completed run directory.
        run_dir: PathBuf,
        /// Labelled rows to explain on (a CSV file with the target column); default: the
        /// run's test split.
        input: Option<PathBuf>,
        /// permutation or gradients.
        #[arg(long, default_value = "permutation")]
        method: String,
        /// Shuffles per column (permutation).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
        /// Riemann steps from the baseline to a row (gradients).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
        steps: u32,
        /// Explain only the first N rows (gradients; default: every row, 8 images).
        #[arg(long, value_name = "N")]
        rows: Option<usize>,
        /// Where the files go (default: RUN_DIR/explain).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
        #[arg(long)]
        ignore_lock: bool,
    },
    /// Export a completed run as one ONNX model: raw input columns in, the fitted
    /// preprocessing and the model as standard operators, probabilities and labels (or
    /// values) out; runs in onnxruntime, tract and other ONNX runtimes.
    Export {
        run_dir: PathBuf,
        #[arg(long, default_value = "onnx", value_parser = ["onnx"])]
        format: String,
        /// Where to write the model (default: RUN_DIR/model.onnx).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// The model to export (a run holds one: its model's name).
        #[arg(long)]
        model: Option<String>,
        /// Export even if the run's spec.mlx or model differ from what its lock recorded.
        #[arg(long)]
        ignore_lock: bool,
        /// Standard ONNX operators only: a tree model as its prediction program (comparisons
        /// and sums) instead of ai.onnx.ml TreeEnsembleClassifier/Regressor, for runtimes
        /// without the ai.onnx.ml operators.
        #[arg(long)]
        plain: bool,
    },
    /// Compare new rows with a run's training data: per column PSI, KS or chi-square, missing
    /// and out-of-range rates, unseen levels; drift of the model's answers; the model's figures
    /// when the rows hold the target. A table, drift.json and SVG plots.
    Monitor {
        run_dir: PathBuf,
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Limits whose crossing is an error (exit 1), e.g. `psi=0.2,unseen=0.01`. Known:
        /// psi, ks, chi2_p, missing, range, unseen, prediction_psi.
        #[arg(long)]
        fail_on: Option<String>,
        /// Where drift.json and the plots go (default: RUN_DIR/monitor).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Scale images of another size to the model's.
        #[arg(long)]
        resize: bool,
        #[arg(long)]
        ignore_lock: bool,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
    },
    /// Serve run directories over HTTP (TensorFlow Serving's REST paths): each model under its
    /// train's name at /v1/models/NAME:predict; /healthz, /readyz and Prometheus /metrics.
    Serve {
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Largest request body in bytes (larger: 413).
        #[arg(long, default_value_t = 10_000_000)]
        max_body: usize,
        /// Most rows in one request (more: 413).
        #[arg(long, default_value_t = 10_000)]
        max_rows: usize,
        /// Most rows in one model call (default: each train's batch size); concurrent requests
        /// are gathered into calls of up to this many rows.
        #[arg(long)]
        max_batch: Option<usize>,
        /// How long (in milliseconds) a model call may wait for requests still being read
        /// (0: it takes the requests queued while the previous call ran, and never waits).
        #[arg(long, default_value_t = 0.0)]
        batch_wait_ms: f64,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
        /// Serve runs even if their spec.mlx or model differ from what their locks recorded.
        #[arg(long)]
        ignore_lock: bool,
        /// Rows of each model's drift window (GET /v1/models/NAME/drift, drift gauges).
        #[arg(long, default_value_t = 1000)]
        drift_window: usize,
        /// For runs of a train with objectives: serve its model NAME (repeat for more), under
        /// TRAIN.NAME, taking and giving tensors as the model saw them in training.
        #[arg(long = "model", value_name = "NAME")]
        models: Vec<String>,
    },
    /// List the runs under DIR (default `runs`): name, when, lock hash, key figures.
    Runs {
        #[arg(default_value = "runs")]
        dir: PathBuf,
    },
    /// Show what differs between two runs: the program's meaning, the data, the results.
    Compare { a: PathBuf, b: PathBuf },
    /// Draw a run's learning curves (and confusion matrix), or a sweep's objective, as SVG.
    Plot { dir: PathBuf },
    /// Sweeps whose trials a scheduler runs (Ray, Slurm): list the trials, collect them.
    Sweep {
        #[command(subcommand)]
        command: SweepCommand,
    },
    /// Print the IR of a train's training step, or (`--stage kernels`) what the compiled
    /// back ends run: fused kernels and library steps, or (`--stage cuda`) the GPU back end's
    /// commands and generated CUDA C.
    Ir {
        file: PathBuf,
        /// `ir`: the primitive-op graph; `kernels`: the schedule of fused kernels; `cuda`: the
        /// GPU commands and CUDA C.
        #[arg(long, default_value = "ir", value_parser = ["ir", "kernels", "cuda"])]
        stage: String,
        #[arg(long)]
        train: Option<String>,
        /// The batch size to lower for (default: the train's).
        #[arg(long)]
        batch: Option<usize>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Write `sweep.json` of a sweep directory whose trials were run with `mlx run --trial`:
    /// every trial, those not completed named (exit 1), the best. Safe to run again.
    Collect {
        dir: PathBuf,
        #[arg(long, short)]
        quiet: bool,
        #[arg(long)]
        no_plot: bool,
    },
    /// Print a sweep's trials, one line each (`K<TAB>point`), or as JSON: for launchers.
    List {
        file: PathBuf,
        #[arg(long)]
        sweep: Option<String>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // A bad command line is a user error (1), not clap's default 2, which means a bug here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // A panic is a bug in mlx: report it as an internal error with exit status 2.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error[mlx::internal]: mlx crashed: {info}");
        eprintln!(
            "  help: this is a bug in mlx, not in your program; please report it with the input that caused it"
        );
    }));
    let mpi = match Mpi::start() {
        Ok(m) => m,
        Err(d) => {
            emit_err(&diagnostics::render(
                &d,
                &SourceMap::default(),
                render_options(),
            ));
            return ExitCode::from(1);
        }
    };
    let status =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli, &mpi))).unwrap_or(2);
    ExitCode::from(mpi.finish(status))
}

/// Whether this process is an MPI rank other than 0.
static FOLLOWER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// This process's place in an MPI job (`mpirun -np R mlx run FILE`, feature `mpi`): rank 0
/// writes and prints as a lone process would; the others train beside it quietly, writing into
/// a scratch directory of their own.
#[derive(Default)]
struct Mpi {
    rank: usize,
    ranks: usize,
    #[cfg(feature = "mpi")]
    job: Option<std::sync::Arc<mlx::mpi_job::Job>>,
}

impl Mpi {
    #[cfg(feature = "mpi")]
    fn start() -> Result<Mpi, Diagnostic> {
        if !mlx::mpi_job::launched() {
            return Ok(Mpi {
                ranks: 1,
                ..Mpi::default()
            });
        }
        let job = mlx::mpi_job::Job::init()?;
        use mlx::train::parallel::Exchange;
        mlx::train::parallel::set_process_exchange(job.clone());
        FOLLOWER.store(job.rank() > 0, std::sync::atomic::Ordering::Relaxed);
        Ok(Mpi {
            rank: job.rank(),
            ranks: job.ranks(),
            job: Some(job),
        })
    }

    /// Without the `mpi` feature, several processes started by mpirun would each train alone.
    #[cfg(not(feature = "mpi"))]
    fn start() -> Result<Mpi, Diagnostic> {
        let size = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
            .iter()
            .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok());
        match size {
            Some(n) if n > 1 => Err(Diagnostic::error(
                "mlx::mpi::job",
                format!(
                    "mlx was started as {n} MPI processes, but this build has no MPI support: each would train alone"
                ),
            )
            .with_help("build mlx with `cargo build --release --features mpi` (it needs an MPI library, e.g. Debian's libopenmpi-dev), or run it without mpirun")),
            _ => Ok(Mpi {
                ranks: 1,
                ..Mpi::default()
            }),
        }
    }

    /// A rank other than 0: it prints nothing and writes only into its scratch directory.
    fn follower(&self) -> bool {
        self.rank > 0
    }

    /// Where a follower's run directories go.
    fn scratch_out(&self) -> Option<PathBuf> {
        #[cfg(feature = "mpi")]
        if let (true, Some(j)) = (self.follower(), &self.job) {
            return Some(j.scratch().join("runs"));
        }
        None
    }

    /// The run directory this rank resumes: its own copy of `dir` for a follower.
    fn resume_dir(&self, dir: PathBuf) -> Result<PathBuf, Diagnostic> {
        #[cfg(feature = "mpi")]
        if let (true, Some(j)) = (self.follower(), &self.job) {
            return j.scratch_copy(&dir);
        }
        Ok(dir)
    }

    /// The exit status; a failure on any rank of a job of several ends every rank (an
    /// interrupt, 130, is agreed between the ranks, which all stop after the same epoch).
    fn finish(&self, status: u8) -> u8 {
        #[cfg(feature = "mpi")]
        if let Some(j) = &self.job {
            if status != 0 && status != 130 && self.ranks > 1 {
                emit_err(&format!(
                    "error[mlx::mpi::job]: rank {} of {} failed (exit status {status}); ending the MPI job\n",
                    self.rank, self.ranks
                ));
                j.abort(status);
            }
            j.finish();
        }
        status
    }
}

fn render_options() -> RenderOptions {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100);
    RenderOptions { color, width }
}

/// 130 (as for SIGINT) when the run was stopped by Ctrl-C, else `status`.
fn interrupted_or(diags: &[Diagnostic], status: u8) -> u8 {
    if diags.iter().any(|d| d.code == mlx::train::interrupt::CODE) {
        130
    } else {
        status
    }
}

/// Print diagnostics; returns the exit status they call for.
fn report(diags: &[Diagnostic], sources: &SourceMap) -> u8 {
    let opts = render_options();
    // Every rank of an MPI job checks the same program: rank 0 alone prints its warnings.
    let follower = FOLLOWER.load(std::sync::atomic::Ordering::Relaxed);
    for d in diags.iter().filter(|d| !follower || d.is_error()) {
        emit_err(&diagnostics::render(d, sources, opts));
    }
    if diags.iter().any(Diagnostic::is_internal) {
        2
    } else if diagnostics::has_errors(diags) {
        1
    } else {
        0
    }
}

fn run(cli: Cli, mpi: &Mpi) -> u8 {
    // Under mpirun, the ranks train together; any other command would run once per rank.
    if mpi.ranks > 1
        && !matches!(
            cli.command,
            Command::Run { .. } | Command::Resume { .. } | Command::Check { .. }
        )
    {
        let d = Diagnostic::error(
            "mlx::mpi::job",
            "under mpirun, mlx runs `mlx run` and `mlx resume` (the ranks train together); other commands run without it",
        );
        return report(&[d], &SourceMap::default());
    }
    match cli.command {
        Command::Check {
            files,
            sets,
            verbose,
        } => {
            let mut status = 0;
            for f in &files {
                let checked = mlx::driver::check_file(f, &sets);
                let s = report(&checked.diags, &checked.sources);
                if let (true, Some(p)) = (verbose, &checked.program) {
                    let limit = mlx::driver::memory_limit().map_or(String::new(), |l| {
                        format!(" (limit {})", mlx::check::memory::bytes(l as f64))
                    });
                    for t in p.trains.iter().filter(|t| p.root_trains.contains(&t.name)) {
                        emit_err(&format!("train {}: needs {}{limit}\n", t.name, t.memory));
                    }
                }
                let errors = checked.diags.iter().filter(|d| d.is_error()).count();
                if s == 0 {
                    emit_err(&format!("{}: ok\n", f.display()));
                } else {
                    emit_err(&format!(
                        "{}: {errors} error{}\n",
                        f.display(),
                        if errors == 1 { "" } else { "s" }
                    ));
                }
                status = status.max(s);
            }
            status
        }
        Command::Run {
            file,
            train,
            sweep,
            trial,
            backend,
            sets,
            out,
            quiet,
            jobs,
            no_plot,
        } => {
            mlx::train::interrupt::install();
            if mpi.ranks > 1 && (trial.is_some() || jobs.is_some_and(|j| j > 1)) {
                let d = Diagnostic::error(
                    "mlx::mpi::job",
                    "under mpirun, `mlx run` trains with every rank together, one train at a time",
                )
                .with_help(if trial.is_some() {
                    "run sweep trials (`--trial`) without mpirun, one process each"
                } else {
                    "leave out `--jobs`"
                });
                return report(&[d], &SourceMap::default());
            }
            // Every rank but 0 trains quietly into its scratch directory.
            let (quiet, no_plot) = (quiet || mpi.follower(), no_plot || mpi.follower());
            let out = mpi.scratch_out().or(out);
            if let (Some(k), Some(dir)) = (trial, &out) {
                let opts = mlx::trials::TrialOptions {
                    backend,
                    progress: !quiet && std::io::stderr().is_terminal(),
                    verbose: !quiet,
                    plot: !no_plot,
                };
                let (sources, diags, d) =
                    mlx::trials::run_trial(&file, &sets, sweep.as_deref(), k as usize, dir, &opts);
                let s = interrupted_or(&diags, report(&diags, &sources));
                if let Some(d) = d {
                    emit(&format!("{}\n", d.display()));
                }
                return s;
            }
            let opts = mlx::commands::RunOptions {
                train,
                sweep,
                backend,
                out: out.unwrap_or_else(|| PathBuf::from("runs")),
                progress: !quiet && std::io::stderr().is_terminal(),
                verbose: !quiet,
                jobs: usize::from(jobs.unwrap_or(1)),
                plot: !no_plot,
                exchange: None,
            };
            let (sources, diags, dirs) = mlx::commands::run(&file, &sets, &opts);
            let s = interrupted_or(&diags, report(&diags, &sources));
            if !mpi.follower() {
                for d in &dirs {
                    emit(&format!("{}\n", d.display()));
                }
            }
            s
        }
        Command::Resume {
            run_dir,
            quiet,
            no_plot,
        } => {
            let (quiet, no_plot) = (quiet || mpi.follower(), no_plot || mpi.follower());
            let opts = mlx::reproduce::ResumeOptions {
                progress: !quiet && std::io::stderr().is_terminal(),
                verbose: !quiet,
                plot: !no_plot,
            };
            mlx::train::interrupt::install();
            let run_dir = match mpi.resume_dir(run_dir) {
                Ok(d) => d,
                Err(d) => return report(&[d], &SourceMap::default()),
            };
            let (sources, diags, dir) = mlx::reproduce::resume(&run_dir, &opts);
            let s = interrupted_or(&diags, report(&diags, &sources));
            if let (Some(d), false) = (dir, mpi.follower()) {
                emit(&format!("{}\n", d.display()));
            }
            s
        }
        Command::Sweep {
            command:
                SweepCommand::Collect {
                    dir,
                    quiet,
                    no_plot,
                },
        } => {
            let opts = mlx::trials::CollectOptions {
                verbose: !quiet,
                plot: !no_plot,
            };
            let (sources, diags, d) = mlx::trials::collect(&dir, &opts);
            let s = report(&diags, &sources);
            if let Some(d) = d {
                emit(&format!("{}\n", d.display()));
            }
            s
        }
        Command::Sweep {
            command:
                SweepCommand::List {
                    file,
                    sweep,
                    sets,
                    json,
                },
        } => {
            let (sources, diags, text) = mlx::trials::list(&file, &sets, sweep.as_deref(), json);
            let s = report(&diags, &sources);
            if s == 0 {
                emit(&text);
            }
            s
        }
        Command::Verify { run_dir, quiet } => {
            let (sources, diags, text) =
                mlx::reproduce::verify(&run_dir, !quiet, !quiet && std::io::stderr().is_terminal());
            emit(&text);
            report(&diags, &sources)
        }
        Command::Eval {
            run_dir,
            backend,
            ignore_lock,
        } => match mlx::commands::eval(&run_dir, backend, ignore_lock) {
            Ok(text) => {
                emit(&format!("{text}\n"));
                0
            }
            Err((sources, diags)) => report(&diags, &sources).max(1),
        },
        Command::Explain {
            run_dir,
            input,
            method,
            repeats,
            steps,
            rows,
            out,
            backend,
            ignore_lock,
        } => {
            let opts = mlx::explain::Options {
                method,
                input,
                repeats: repeats as usize,
                steps: steps as usize,
                rows,
                out,
                backend,
                ignore_lock,
            };
            match mlx::explain::explain(&run_dir, &opts) {
                Ok(e) => {
                    emit_err(&format!("{}\n", e.summary));
                    emit(&e.table);
                    for f in &e.files {
                        emit_err(&format!("wrote {}\n", f.display()));
                    }
                    0
                }
                Err((sources, diags)) => report(&diags, &sources).max(1),
            }
        }
        Command::Export {
            run_dir,
            format: _,
            output,
            model,
            ignore_lock,
            plain,
        } => {
            let opts = mlx::export::Options {
                output,
                model,
                ignore_lock,
                plain,
            };
            match mlx::export::export(&run_dir, &opts) {
                Ok(e) => {
                    emit_err(&format!(
                        "exported {} ONNX nodes ({} bytes, opset {})\n",
                        e.nodes,
                        e.bytes,
                        mlx::export::OPSET
                    ));
                    emit(&format!("{}\n", e.path.display()));
                    0
                }
                Err((sources, diags)) => report(&diags, &sources).max(1),
            }
        }
        Command::Monitor {
            run_dir,
            inputs,
            fail_on,
            out,
            resize,
            ignore_lock,
            backend,
        } => {
            let parsed = fail_on
                .as_deref()
                .map(mlx::monitor::profile::Thresholds::parse)
                .transpose()
                .map_err(|m| {
                    (
                        SourceMap::new(),
                        vec![Diagnostic::error(
                            "mlx::monitor::fail_on",
                            format!("--fail-on: {m}"),
                        )],
                    )
                });
            let result = parsed.and_then(|fail_on| {
                let opts = mlx::monitor::Options {
                    fail_on,
                    out,
                    resize,
                    ignore_lock,
                    backend,
                };
                mlx::monitor::monitor(&run_dir, &inputs, &opts)
            });
            match result {
                Ok(m) => {
                    emit(&m.table);
                    if m.failures.is_empty() {
                        0
                    } else {
                        report(&m.failures, &SourceMap::new()).max(1)
                    }
                }
                Err((sources, diags)) => report(&diags, &sources).max(1),
            }
        }
        Command::Predict {
            run_dir,
            inputs,
            format,
            resize,
            ignore_lock,
            backend,
            model,
        } => {
            let fmt = if format == "json" {
                mlx::predict::Format::Json
            } else {
                mlx::predict::Format::Csv
            };
            if let Some(name) = model {
                match mlx::predict::slot::predict(
                    &run_dir,
                    &name,
                    &inputs,
                    fmt,
                    backend,
                    ignore_lock,
                ) {
                    Ok(doc) => {
                        emit(&doc);
                        0
                    }
                    Err((sources, diags)) => report(&diags, &sources).max(1),
                }
            } else {
                let opts = mlx::predict::PredictOptions {
                    backend,
                    format: fmt,
                    resize,
                    ignore_lock,
                };
                match mlx::predict::predict(&run_dir, &inputs, &opts) {
                    Ok((doc, warnings)) => {
                        for w in warnings {
                            emit_err(&format!("warning: {w}\n"));
                        }
                        emit(&doc);
                        0
                    }
                    Err((sources, diags)) => report(&diags, &sources).max(1),
                }
            }
        }
        Command::Serve {
            run_dirs,
            host,
            port,
            max_body,
            max_rows,
            max_batch,
            batch_wait_ms,
            backend,
            ignore_lock,
            drift_window,
            models,
        } => {
            let opts = mlx::serve::Options {
                host,
                port,
                max_body,
                max_rows,
                max_batch,
                batch_wait: std::time::Duration::from_secs_f64(
                    batch_wait_ms.clamp(0.0, 1000.0) / 1000.0,
                ),
                backend,
                ignore_lock,
                drift_window,
                models,
            };
            match mlx::serve::serve(&run_dirs, &opts) {
                Ok(()) => 0,
                Err((sources, diags)) => report(&diags, &sources).max(1),
            }
        }
        Command::Runs { dir } => match mlx::history::list(&dir) {
            Ok(text) => {
                emit(&text);
                0
            }
            Err(d) => report(&[d], &SourceMap::new()).max(1),
        },
        Command::Compare { a, b } => match mlx::history::compare(&a, &b) {
            Ok(text) => {
                emit(&text);
                0
            }
            Err(d) => report(&[d], &SourceMap::new()).max(1),
        },
        Command::Plot { dir } => match mlx::plot::plot(&dir) {
            Ok(files) => {
                for f in files {
                    emit(&format!("{}\n", f.display()));
                }
                0
            }
            Err(d) => report(&[d], &SourceMap::new()).max(1),
        },
        Command::Ir {
            file,
            stage,
            train,
            batch,
            sets,
        } => match mlx::commands::ir(&file, &stage, train.as_deref(), batch, &sets) {
            Ok(text) => {
                emit(&text);
                0
            }
            Err((sources, diags)) => report(&diags, &sources).max(1),
        },
    }
}

/// Write command output to standard output. A reader that stopped reading (`mlx ... | head`)
/// is a normal end: the rest is dropped and the exit status stays the command's.
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `emit` for standard error (diagnostics and notes).
fn emit_err(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
