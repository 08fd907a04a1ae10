//! The run directory, the artifact everything after training reads: takes a path and gives a
//! typed view of a run, a sweep trial or a sweep (`open`), its documents as the structs the
//! writer uses (`docs`, `lock`), and the file primitives the writer uses (`io`: atomic writes,
//! safetensors, hashes). Every failure to read is one diagnostic naming the file: missing
//! (`mlx::rundir::missing`), corrupt (`mlx::rundir::corrupt`), or written by a newer format
//! (`mlx::rundir::format`).

pub mod docs;
pub mod io;
pub mod lock;

pub use docs::{
    BestTrial, ColumnProfile, ColumnStats, Direction, Figures, FoldSummary, InputFeature,
    InputKind, InputSchema, MetricsLine, NumberStats, PredictionProfile, Profile, RecordedSource,
    SourceSchemas, Status, Summary, SweepDoc, TargetSchema, TargetSchemaKind, TrialEntry,
    TrialStatus,
};
pub use io::{
    Metadata, NamedTensor, Staging, append_jsonl, fs_step, load_safetensors, new_run_dir,
    safetensors_bytes, save_safetensors, save_safetensors_fast, sha256_file, sha256_hex, sync_file,
    timestamp, write_atomic, write_durable,
};
pub use lock::Lock;

use crate::data::Preprocessor;
use crate::diagnostics::Diagnostic;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The run-directory format this mlx writes (the `format` field of `summary.json`,
/// `mlx.lock`, `sweep.json`, `input.json`); it reads this one and the unversioned files
/// written before formats were recorded.
pub const FORMAT: u32 = 1;

pub const SUMMARY: &str = "summary.json";
pub const METRICS: &str = "metrics.jsonl";
pub const SWEEP: &str = "sweep.json";
pub const INPUT: &str = "input.json";
pub const SOURCES: &str = "sources.json";
pub const PREPROCESS: &str = "preprocess.json";
pub const MODEL: &str = "model.safetensors";
pub const SPEC: &str = "spec.mlx";
pub const TRIALS: &str = "trials";
/// A sweep directory's resolved program (what `mlx resume SWEEP_DIR` checks again).
pub const SWEEP_SPEC: &str = "sweep.mlx";
/// Written by `mlx export` unless `-o` names another file.
pub const ONNX: &str = "model.onnx";
/// The training data's reference profile (drift monitoring).
pub const PROFILE: &str = "profile.json";
/// Held (with `flock`) by the one process that writes the directory.
pub const WRITER: &str = "writer.lock";

/// What a directory holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A run of a train.
    Run,
    /// A run that is a trial of the sweep in `sweep`.
    Trial { sweep: PathBuf },
    /// A sweep: `sweep.json` and `trials/`.
    Sweep,
}

/// An opened run or sweep directory; its documents are read on demand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    pub dir: PathBuf,
    pub kind: Kind,
}

/// Open `path` as a run, trial or sweep directory.
pub fn open(path: &Path) -> Result<RunDir, Diagnostic> {
    if !path.is_dir() {
        return Err(Diagnostic::error(
            "mlx::rundir::missing",
            format!(
                "{} is not a run directory: it does not exist",
                path.display()
            ),
        )
        .with_help("give the directory `mlx run` printed as its last line"));
    }
    let dir = path.to_path_buf();
    if is_sweep(&dir) {
        return Ok(RunDir {
            dir,
            kind: Kind::Sweep,
        });
    }
    if !is_run(&dir) {
        return Err(Diagnostic::error(
            "mlx::rundir::missing",
            format!(
                "{} is not a run directory: it has no {SUMMARY}, {} or {SPEC}",
                dir.display(),
                lock::FILE
            ),
        )
        .with_help("give the directory `mlx run` printed as its last line"));
    }
    // A trial lies at `<sweep>/trials/<train>/<id>`.
    let sweep = dir
        .parent()
        .and_then(Path::parent)
        .filter(|t| t.file_name().is_some_and(|n| n == TRIALS))
        .and_then(Path::parent)
        .filter(|s| is_sweep(s))
        .map(Path::to_path_buf);
    Ok(RunDir {
        dir,
        kind: match sweep {
            Some(sweep) => Kind::Trial { sweep },
            None => Kind::Run,
        },
    })
}

/// A sweep directory: `sweep.json`, or a `trials/` folder (a sweep still running or killed).
pub fn is_sweep(dir: &Path) -> bool {
    dir.join(SWEEP).is_file() || dir.join(TRIALS).is_dir() || dir.join(SWEEP_SPEC).is_file()
}

/// A run directory: one of the files every run writes first or last.
pub fn is_run(dir: &Path) -> bool {
    [SUMMARY, lock::FILE, SPEC, METRICS]
        .iter()
        .any(|f| dir.join(f).is_file())
}

impl RunDir {
    pub fn is_sweep(&self) -> bool {
        self.kind == Kind::Sweep
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A run's directory, or a diagnostic when this is a sweep.
    pub fn require_run(self) -> Result<RunDir, Diagnostic> {
        if !self.is_sweep() {
            return Ok(self);
        }
        let best = self.sweep().ok().and_then(|s| s.best).and_then(|b| b.dir);
        let d = Diagnostic::error(
            "mlx::rundir::missing",
            format!(
                "{} is a sweep directory, not a run directory",
                self.dir.display()
            ),
        );
        Err(match best {
            Some(b) => d.with_help(format!("give one of its trials; the best is {b}")),
            None => d.with_help(format!(
                "give one of its trials: {}",
                self.dir
                    .join(TRIALS)
                    .join("<train>")
                    .join("<run id>")
                    .display()
            )),
        })
    }

    /// `summary.json`.
    pub fn summary(&self) -> Result<Summary, Diagnostic> {
        read_doc(&self.path(SUMMARY))
    }

    /// `summary.json`, `None` when the run has not written it (still running, or killed).
    pub fn summary_if_any(&self) -> Result<Option<Summary>, Diagnostic> {
        read_doc_if_any(&self.path(SUMMARY))
    }

    /// `summary.json` of a completed run (a run that failed or is unfinished has no model).
    pub fn completed_summary(&self) -> Result<Summary, Diagnostic> {
        let s = self.summary()?;
        if !s.completed() {
            return Err(Diagnostic::error(
                "mlx::rundir::incomplete",
                format!(
                    "the run in {} did not complete, so it has no final model",
                    self.dir.display()
                ),
            )
            .with_help(format!(
                "finish it with `mlx resume {}`",
                self.dir.display()
            )));
        }
        Ok(s)
    }

    pub fn lock(&self) -> Result<Lock, Diagnostic> {
        lock::read(&self.dir)
    }

    pub fn sweep(&self) -> Result<SweepDoc, Diagnostic> {
        read_doc(&self.path(SWEEP))
    }

    /// `input.json`: the model's input schema.
    /// `profile.json`, the reference of drift monitoring.
    pub fn profile(&self) -> Result<Profile, Diagnostic> {
        read_doc(&self.path(PROFILE)).map_err(|d| {
            if d.code == "mlx::rundir::missing" {
                d.with_help("runs made before mlx recorded a reference profile cannot be monitored; train the model again with `mlx run`")
            } else {
                d
            }
        })
    }

    pub fn input(&self) -> Result<InputSchema, Diagnostic> {
        read_doc(&self.path(INPUT)).map_err(|d| {
            if d.code == "mlx::rundir::missing" {
                d.with_help("runs made before mlx recorded input schemas cannot be served; train the model again with `mlx run`")
            } else {
                d
            }
        })
    }

    /// `sources.json`: the data schemas the run was checked with (empty for runs made
    /// before they were recorded).
    pub fn source_schemas(&self) -> Result<Vec<RecordedSource>, Diagnostic> {
        Ok(read_doc_if_any::<SourceSchemas>(&self.path(SOURCES))?
            .map(|s| s.sources)
            .unwrap_or_default())
    }

    /// `preprocess.json`: the fitted preprocessing.
    pub fn preprocessor(&self) -> Result<Preprocessor, Diagnostic> {
        read_doc(&self.path(PREPROCESS))
    }

    /// `metrics.jsonl`: one entry per epoch (none when the file does not exist). A corrupt
    /// line is an error naming it.
    pub fn metrics(&self) -> Result<Vec<MetricsLine>, Diagnostic> {
        let path = self.path(METRICS);
        if !path.is_file() {
            return Ok(Vec::new());
        }
        let text = read_text(&path)?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let m = serde_json::from_str(line)
                .map_err(|e| format!("line {} is not valid JSON: {e}", i + 1))
                .and_then(|v| object(v).map_err(|e| format!("line {}: {e}", i + 1)))
                .map_err(|e| corrupt(&path, e))?;
            out.push(m);
        }
        Ok(out)
    }

    /// The last line of `metrics.jsonl` that parses (a killed run may leave none).
    pub fn last_metrics(&self) -> Option<MetricsLine> {
        let text = std::fs::read_to_string(self.path(METRICS)).ok()?;
        text.lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .find_map(|l| serde_json::from_str(l).ok().and_then(|v| object(v).ok()))
    }

    /// The saved model's tensors.
    pub fn weights(&self) -> Result<Vec<NamedTensor>, Diagnostic> {
        let path = self.path(MODEL);
        if !path.is_file() {
            return Err(missing(&path, None));
        }
        load_safetensors(&path)
            .map(|(t, _)| t)
            .map_err(|m| Diagnostic::error("mlx::rundir::corrupt", m))
    }
}

/// The exclusive right to write a run directory: held until dropped, and released by the
/// operating system when the process dies (an advisory `flock` on `writer.lock`, which names
/// the holder).
#[derive(Debug)]
pub struct WriteLock {
    _file: std::fs::File,
}

/// Take the right to write `dir` for `what` (e.g. `mlx resume`), or a diagnostic naming the
/// process that holds it.
pub fn lock_for_writing(dir: &Path, what: &str) -> Result<WriteLock, Diagnostic> {
    let lock = lock_file(dir, WRITER, what, &dir.display().to_string())?;
    remove_stale_temporaries(dir);
    Ok(lock)
}

/// The exclusive right to one part of a directory (`file` in `dir`, e.g. one sweep trial's
/// lock), `what` naming the holder, `whole` naming what is locked in the diagnostic.
pub fn lock_file(dir: &Path, file: &str, what: &str, whole: &str) -> Result<WriteLock, Diagnostic> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(file);
    let io = |e: std::io::Error| {
        Diagnostic::error(
            "mlx::run::io",
            format!("cannot lock {}: {e}", path.display()),
        )
    };
    fs_step();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "process {}: {what}", std::process::id()).map_err(io)?;
            Ok(WriteLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Err(Diagnostic::error(
                "mlx::rundir::locked",
                format!(
                    "{whole} is being written by another mlx ({})",
                    if holder.is_empty() {
                        "process unknown"
                    } else {
                        holder
                    }
                ),
            )
            .with_help("wait for it to end (or stop it); only one process writes a run directory"))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// Remove the temporary files (`.NAME.tmp-PID`) of writes a killed process left behind. Only
/// the holder of the write lock calls it, so none of them is being written.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && name
                .rsplit_once(".tmp-")
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            && e.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A new private directory under the system's temporary directory: a random name, created
/// exclusively (an existing file or planted symbolic link of that name is never used) and
/// readable by its owner only; removed when dropped unless `keep` was called.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        use std::hash::{BuildHasher, Hasher};
        let base = std::env::temp_dir();
        let mut last = None;
        for attempt in 0u32..16 {
            // RandomState is seeded from the operating system's randomness.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(attempt);
            h.write_u32(std::process::id());
            let path = base.join(format!("{prefix}{:016x}", h.finish()));
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            match b.create(&path) {
                Ok(()) => return Ok(TempDir { path, keep: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leave the directory in place (for inspection).
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn missing(path: &Path, e: Option<&std::io::Error>) -> Diagnostic {
    let why = e.map_or_else(
        || "it does not exist".to_string(),
        crate::data::csv::io_message,
    );
    Diagnostic::error(
        "mlx::rundir::missing",
        format!("cannot read {}: {why}", path.display()),
    )
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(
        "mlx::rundir::corrupt",
        format!("{} is corrupt: {what}", path.display()),
    )
}

fn read_text(path: &Path) -> Result<String, Diagnostic> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => corrupt(path, "it is not UTF-8 text"),
        _ => missing(path, Some(&e)),
    })
}

/// A JSON document of a run directory: missing, corrupt, or from a newer format are each a
/// diagnostic naming the file.
pub fn read_doc<T: DeserializeOwned>(path: &Path) -> Result<T, Diagnostic> {
    let text = read_text(path)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Diagnostic::error(
            "mlx::rundir::corrupt",
            format!("{} is not valid JSON: {e}", path.display()),
        )
    })?;
    if let Some(f) = v.get("format").and_then(serde_json::Value::as_u64)
        && f > u64::from(FORMAT)
    {
        return Err(Diagnostic::error(
            "mlx::rundir::format",
            format!(
                "{} was written in run-directory format {f}, by a newer mlx; this mlx ({}) reads format {FORMAT}",
                path.display(),
                env!("CARGO_PKG_VERSION")
            ),
        )
        .with_help("use the mlx that wrote the run"));
    }
    object(v).map_err(|e| corrupt(path, e))
}

/// A document from a JSON object (not from an array, which serde would also take).
fn object<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    if !v.is_object() {
        return Err("it is not a JSON object".into());
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// `read_doc`, `None` when the file does not exist.
pub fn read_doc_if_any<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, Diagnostic> {
    if !path.exists() {
        return Ok(None);
    }
    read_doc(path).map(Some)
}

/// Write a document as pretty JSON, atomically and flushed to disk.
pub fn write_doc<T: Serialize>(path: &Path, doc: &T) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(doc).map_err(std::io::Error::other)?;
    text.push('\n');
    write_durable(path, text.as_bytes())
}

#[cfg(test)]
mod tests;
