//! `mlx.lock`: takes a run's resolved program text, its data files, back end and seed and gives
//! the lock (content hashes of the program and every data file, the mlx version, back end,
//! seed); reads a lock back and checks a run directory against it (data files unchanged, the
//! same mlx version, `spec.mlx` as recorded), each difference a diagnostic naming what changed.

use super::rundir;
use crate::check::hir;
use crate::diagnostics::Diagnostic;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub const FILE: &str = "mlx.lock";

/// The lock of a run. Data paths are made absolute so the lock can be checked from anywhere.
pub fn json(spec: &str, d: &hir::DatasetPlan, backend: &str, seed: u64) -> Value {
    let files: Vec<Value> = super::run::data_files(d)
        .iter()
        .map(|p| {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            json!({
                "path": abs.display().to_string(),
                "sha256": rundir::sha256_file(p).unwrap_or_else(|e| format!("unreadable: {e}")),
            })
        })
        .collect();
    json!({
        "mlx": env!("CARGO_PKG_VERSION"),
        "program": format!("sha256:{}", rundir::sha256_hex(spec.as_bytes())),
        "data": files,
        "backend": backend,
        "seed": seed,
    })
}

/// A lock as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Lock {
    pub mlx: String,
    /// `sha256:<hex>` of `spec.mlx`.
    pub program: String,
    /// Each data file and its sha256.
    pub data: Vec<(PathBuf, String)>,
    pub backend: String,
    pub seed: u64,
}

/// Read `dir/mlx.lock`.
pub fn read(dir: &Path) -> Result<Lock, Diagnostic> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Diagnostic::error(
            "mlx::rundir::missing",
            format!(
                "{} is not a run directory: cannot read {FILE} ({})",
                dir.display(),
                crate::data::csv::io_message(&e)
            ),
        )
        .with_help("give the directory `mlx run` printed as its last line")
    })?;
    let corrupt = |what: &str| {
        Diagnostic::error(
            "mlx::rundir::corrupt",
            format!("{} is corrupt: {what}", path.display()),
        )
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| corrupt(&e.to_string()))?;
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| corrupt(&format!("it has no `{k}`")))
    };
    let mut data = Vec::new();
    for f in v
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(p), Some(h)) = (
            f.get("path").and_then(Value::as_str),
            f.get("sha256").and_then(Value::as_str),
        ) else {
            return Err(corrupt("a data entry lacks its path or sha256"));
        };
        data.push((PathBuf::from(p), h.to_string()));
    }
    Ok(Lock {
        mlx: s("mlx")?,
        program: s("program")?,
        data,
        backend: s("backend")?,
        seed: v
            .get("seed")
            .and_then(Value::as_u64)
            .ok_or_else(|| corrupt("it has no `seed`"))?,
    })
}

/// Every way `dir` (with `lock`) no longer matches the recorded experiment: a data file whose
/// content changed or that cannot be read, a different mlx version, an edited `spec.mlx`.
/// Empty when the run can be repeated exactly.
pub fn check(dir: &Path, lock: &Lock) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (path, recorded) in &lock.data {
        match rundir::sha256_file(path) {
            Ok(now) if &now == recorded => {}
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
                format!(
                    "the data file {} cannot be read: {}",
                    path.display(),
                    crate::data::csv::io_message(&e)
                ),
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
    let spec = dir.join("spec.mlx");
    match rundir::sha256_file(&spec) {
        Ok(h) if format!("sha256:{h}") == lock.program => {}
        Ok(_) => out.push(
            Diagnostic::error(
                "mlx::lock::program",
                format!(
                    "{} was edited after the run: its hash differs from the lock's",
                    spec.display()
                ),
            )
            .with_help("start a new run of the edited program with `mlx run`"),
        ),
        Err(e) => out.push(Diagnostic::error(
            "mlx::rundir::missing",
            format!(
                "cannot read {}: {}",
                spec.display(),
                crate::data::csv::io_message(&e)
            ),
        )),
    }
    out
}
