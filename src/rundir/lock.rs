//! `mlx.lock`: takes a run's resolved program text, its data files, back end and seed and gives
//! the lock (content hashes of the program and every data file, the mlx version, back end,
//! seed); reads a lock back and checks a run directory against it (data files unchanged, the
//! same mlx version, `spec.mlx` as recorded), each difference a diagnostic naming what changed.

use super::{FORMAT, io};
use crate::check::hir;
use crate::diagnostics::Diagnostic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE: &str = "mlx.lock";

/// `mlx.lock`: what a run was made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format: u32,
    /// The mlx version.
    pub mlx: String,
    /// `sha256:<hex>` of `spec.mlx`.
    pub program: String,
    /// Each data file (absolute) and its sha256.
    #[serde(default)]
    pub data: Vec<DataFile>,
    pub backend: String,
    pub seed: u64,
    /// `sha256:<hex>` of `model.safetensors`, recorded when the run completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// A file's absolute path, or a SQL source's URL.
    pub path: PathBuf,
    /// The file's sha256, or that of the rows the query returned.
    pub sha256: String,
    /// A SQL source's query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Lock {
    /// The lock of a run. Data paths are made absolute so the lock can be checked from
    /// anywhere.
    pub fn new(
        spec: &str,
        d: &hir::DatasetPlan,
        queried: &[crate::data::load::QueriedRows],
        backend: &str,
        seed: u64,
    ) -> Lock {
        let mut data: Vec<DataFile> = crate::train::run::data_files(d)
            .iter()
            .map(|p| DataFile {
                path: std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()),
                sha256: io::sha256_file(p).unwrap_or_else(|e| format!("unreadable: {e}")),
                query: None,
            })
            .collect();
        data.extend(queried.iter().map(|q| DataFile {
            path: PathBuf::from(&q.url),
            sha256: q.sha256.clone(),
            query: Some(q.query.clone()),
        }));
        Lock {
            format: FORMAT,
            mlx: env!("CARGO_PKG_VERSION").to_string(),
            program: format!("sha256:{}", io::sha256_hex(spec.as_bytes())),
            data,
            backend: backend.to_string(),
            seed,
            model: None,
        }
    }

    /// The first 8 hex digits of the program hash.
    pub fn short_hash(&self) -> String {
        let hex = self
            .program
            .strip_prefix("sha256:")
            .unwrap_or(&self.program);
        hex.chars().take(8).collect()
    }
}

/// Read `dir/mlx.lock`.
pub fn read(dir: &Path) -> Result<Lock, Diagnostic> {
    super::read_doc(&dir.join(FILE))
}

/// Every way `dir` (with `lock`) no longer matches the recorded experiment: a data file whose
/// content changed or that cannot be read, a different mlx version, an edited `spec.mlx`.
/// Empty when the run can be repeated exactly.
pub fn check(dir: &Path, lock: &Lock) -> Vec<Diagnostic> {
    check_with(dir, lock, &mut DataHashes::default())
}

/// The hashes of data files and SQL sources computed so far, by path (and query): checking
/// many runs of one dataset (a sweep's trials) reads each source once.
#[derive(Default)]
pub struct DataHashes(std::collections::HashMap<(PathBuf, Option<String>), Result<String, String>>);

impl DataHashes {
    fn of(&mut self, f: &DataFile) -> Result<String, String> {
        self.0
            .entry((f.path.clone(), f.query.clone()))
            .or_insert_with(|| match &f.query {
                Some(q) => crate::data::sources::sql_table(&f.path.display().to_string(), q)
                    .map(|(_, h)| h)
                    .map_err(|e| e.message),
                None => io::sha256_file(&f.path).map_err(|e| crate::data::csv::io_message(&e)),
            })
            .clone()
    }
}

/// `check`, with the hashes of sources shared between calls.
pub fn check_with(dir: &Path, lock: &Lock, hashes: &mut DataHashes) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for f in &lock.data {
        let (path, recorded) = (&f.path, &f.sha256);
        if let Some(query) = &f.query {
            let url = path.display().to_string();
            match hashes.of(f) {
                Ok(now) if now == *recorded => {}
                Ok(now) => out.push(
                    Diagnostic::error(
                        "mlx::lock::data",
                        format!("the rows of the SQL source {url} have changed since the run"),
                    )
                    .with_note(format!(
                        "query: {query}\nsha256 of its rows recorded in {FILE}: {recorded}\nsha256 now: {now}"
                    )),
                ),
                Err(e) => out.push(Diagnostic::error(
                    "mlx::lock::data",
                    format!("the SQL source {url} cannot be read: {e}"),
                )),
            }
            continue;
        }
        match hashes.of(f) {
            Ok(now) if now == *recorded => {}
            Ok(now) => out.push(
                Diagnostic::error(
                    "mlx::lock::data",
                    format!("the data file {} has changed since the run", path.display()),
                )
                .with_note(format!(
                    "sha256 recorded in {FILE}: {recorded}\nsha256 now: {now}"
                )),
            ),
            Err(e) => out.push(Diagnostic::error(
                "mlx::lock::data",
                format!("the data file {} cannot be read: {e}", path.display()),
            )),
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    if lock.mlx != version {
        out.push(
            Diagnostic::error(
                "mlx::lock::version",
                format!(
                    "the run was made by mlx {}; this is mlx {version}",
                    lock.mlx
                ),
            )
            .with_note("bit-identical results are promised only by the same mlx version"),
        );
    }
    out.extend(
        hashed(
            &dir.join(super::SPEC),
            &lock.program,
            "mlx::lock::program",
            "was edited after the run",
        )
        .map(|d| d.with_help("start a new run of the edited program with `mlx run`")),
    );
    out
}

/// `path` against a recorded `sha256:<hex>`: `None` when it matches, else a diagnostic with
/// `code` saying what happened to the file (or that it cannot be read).
fn hashed(path: &Path, recorded: &str, code: &'static str, what: &str) -> Option<Diagnostic> {
    match io::sha256_file(path) {
        Ok(h) if format!("sha256:{h}") == recorded => None,
        Ok(h) => Some(
            Diagnostic::error(
                code,
                format!(
                    "{} {what}: its hash differs from the lock's",
                    path.display()
                ),
            )
            .with_note(format!(
                "sha256 recorded in {FILE}: {recorded}\nsha256 now: sha256:{h}"
            )),
        ),
        Err(e) => Some(Diagnostic::error(
            "mlx::rundir::missing",
            format!(
                "cannot read {}: {}",
                path.display(),
                crate::data::csv::io_message(&e)
            ),
        )),
    }
}

/// What a reader of the model (eval, predict, serve) checks: `spec.mlx` and
/// `model.safetensors` are the ones the run recorded. Empty when both match (a lock from
/// before weights were hashed vouches for the program only).
pub fn check_model(dir: &Path, lock: &Lock) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = hashed(
        &dir.join(super::SPEC),
        &lock.program,
        "mlx::lock::program",
        "was edited after the run, so the model it describes is not the one trained",
    )
    .into_iter()
    .collect();
    if let Some(recorded) = &lock.model {
        out.extend(hashed(
            &dir.join(super::MODEL),
            recorded,
            "mlx::lock::model",
            "is not the model the run saved",
        ));
    }
    out
}
