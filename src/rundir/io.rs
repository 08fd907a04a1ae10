//! The run directory's file primitives: atomic file writes (temp file, fsync, rename), run ids, weights in
//! safetensors, and content hashes for the lock file.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` so that a reader, or a killed process, sees the old file or the new
/// one, never half of one: write a temp file beside it, then rename it over. (A rename is
/// atomic; the data reaches the page cache before it, so a SIGKILL loses nothing written.)
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_file(path, bytes, false)
}

/// `write_atomic`, also flushed to disk before the rename (survives a power cut): for the
/// artifacts a finished run leaves behind.
pub fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_file(path, bytes, true)
}

/// A crash-test hook: with `MLX_CRASH_AT_STEP=N` in the environment, the process aborts
/// (as a kill would end it: no destructor, no flush) just before its Nth change to the file
/// system. Every change a run makes to its directory passes here, so a test can end a run
/// at each one in turn and check that what is left is resumable (or absent).
pub fn fs_step() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let limit = LIMIT.get_or_init(|| {
        std::env::var("MLX_CRASH_AT_STEP")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(n) = limit
        && COUNT.fetch_add(1, Ordering::SeqCst) + 1 >= *n
    {
        std::process::abort();
    }
}

fn write_file(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        fs_step();
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
    }
    fs_step();
    std::fs::rename(&tmp, path)?;
    if sync && let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Append one line to a JSONL file, in one write: a killed process leaves every earlier line
/// intact and this one whole or absent (only a power cut can tear it: the lines a checkpoint
/// covers are flushed to disk with it, and resume drops the lines after them). The file is
/// never read or rewritten, so a run's metrics cost what they hold.
pub fn append_jsonl<T: serde::Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_string(v).map_err(std::io::Error::other)?;
    line.push('\n');
    fs_step();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line.as_bytes())
}

/// Flush a file's written content to disk.
pub fn sync_file(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(f) => f.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A new, empty run directory `out/<name>/<timestamp>[-N]`.
pub fn new_run_dir(out: &Path, name: &str) -> std::io::Result<PathBuf> {
    let base = out.join(name);
    fs_step();
    std::fs::create_dir_all(&base)?;
    let stamp = timestamp();
    for n in 0..1000 {
        let dir = if n == 0 {
            base.join(&stamp)
        } else {
            base.join(format!("{stamp}-{n}"))
        };
        fs_step();
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "too many runs started in the same second",
    ))
}

/// A run directory being set up under a hidden name (`out/<name>/.partial-<pid>-<n>`)
/// until its first files are in; `publish` renames it to its run id. So every directory named
/// like a run id already holds what `resume` needs. Removed when dropped unpublished.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    base: PathBuf,
    stamp: String,
    published: bool,
}

impl Staging {
    pub fn new(out: &Path, name: &str) -> std::io::Result<Staging> {
        let base = out.join(name);
        std::fs::create_dir_all(&base)?;
        remove_abandoned(&base);
        let stamp = timestamp();
        // Parallel sweep trials set up their runs in one process at once.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = base.join(format!(".partial-{}-{n}", std::process::id()));
        fs_step();
        std::fs::create_dir(&path)?;
        Ok(Staging {
            path,
            base,
            stamp,
            published: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename the directory to `<stamp>[-N]`, the first free one; returns its path.
    pub fn publish(mut self) -> std::io::Result<PathBuf> {
        for n in 0..1000 {
            let dir = if n == 0 {
                self.base.join(&self.stamp)
            } else {
                self.base.join(format!("{}-{n}", self.stamp))
            };
            if dir.exists() {
                continue;
            }
            fs_step();
            match std::fs::rename(&self.path, &dir) {
                Ok(()) => {
                    self.published = true;
                    return Ok(dir);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other(
            "too many runs started in the same second",
        ))
    }
}

/// Remove the staging directories of processes that no longer run (killed before their run
/// got its id). Where processes cannot be looked up (no `/proc`), nothing is removed.
fn remove_abandoned(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".partial-")
            .and_then(|rest| rest.split('-').next())
            .map(str::to_string)
        else {
            continue;
        };
        if pid.bytes().all(|b| b.is_ascii_digit()) && !Path::new("/proc").join(&pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// String key-value metadata stored in a safetensors header.
pub type Metadata = Vec<(String, String)>;

/// A named f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Serialise tensors (and string metadata) as safetensors bytes.
pub fn safetensors_bytes(
    tensors: &[NamedTensor],
    meta: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::new();
    for (t, b) in tensors.iter().zip(&bytes) {
        let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
            .map_err(|e| e.to_string())?;
        views.push((t.name.clone(), v));
    }
    let meta = (!meta.is_empty()).then(|| meta.iter().cloned().collect());
    safetensors::serialize(views, meta).map_err(|e| e.to_string())
}

pub fn save_safetensors(
    path: &Path,
    tensors: &[NamedTensor],
    meta: &[(String, String)],
) -> std::io::Result<()> {
    let bytes = safetensors_bytes(tensors, meta).map_err(std::io::Error::other)?;
    write_durable(path, &bytes)
}

/// `save_safetensors` without the flush to disk (per-epoch checkpoints: still atomic).
pub fn save_safetensors_fast(
    path: &Path,
    tensors: &[NamedTensor],
    meta: &[(String, String)],
) -> std::io::Result<()> {
    let bytes = safetensors_bytes(tensors, meta).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Tensors and metadata from a safetensors file; a truncated or corrupt file is an error.
pub fn load_safetensors(path: &Path) -> Result<(Vec<NamedTensor>, Metadata), String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read {}: {}",
            path.display(),
            crate::data::csv::io_message(&e)
        )
    })?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("{} is not a valid safetensors file: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    for name in names {
        let t = st.tensor(name).map_err(|e| e.to_string())?;
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(format!("tensor `{name}` in {} is not f32", path.display()));
        }
        let data = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(NamedTensor {
            name: name.to_string(),
            shape: t.shape().to_vec(),
            data,
        });
    }
    let meta = safetensors::SafeTensors::read_metadata(&bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .map(|m| {
            let mut v: Vec<(String, String)> = m.into_iter().collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    Ok((out, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip_and_corruption_is_detected() {
        let dir = std::env::temp_dir().join(format!("mlx-rundir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.safetensors");
        let ts = vec![
            NamedTensor {
                name: "dense_0.w".into(),
                shape: vec![2, 3],
                data: vec![1.0, -2.0, 3.5, 0.0, 1e-7, f32::MAX],
            },
            NamedTensor {
                name: "dense_0.b".into(),
                shape: vec![3],
                data: vec![0.5; 3],
            },
        ];
        save_safetensors(&p, &ts, &[("epoch".into(), "3".into())]).unwrap();
        let (back, meta) = load_safetensors(&p).unwrap();
        let mut want = ts.clone();
        want.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(back, want);
        assert_eq!(meta, vec![("epoch".to_string(), "3".to_string())]);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        assert!(load_safetensors(&p).is_err());
    }

    #[test]
    fn jsonl_lines_are_appended_not_rewritten() {
        let dir = std::env::temp_dir().join(format!("mlx-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.jsonl");
        let _ = std::fs::remove_file(&p);
        append_jsonl(&p, &serde_json::json!({"epoch": 1})).unwrap();
        // A second name for the same file sees every later line only if the file is appended
        // to in place (a rewrite by rename would leave the link behind).
        let link = dir.join("link.jsonl");
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(&p, &link).unwrap();
        append_jsonl(&p, &serde_json::json!({"epoch": 2})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&link).unwrap(),
            "{\"epoch\":1}\n{\"epoch\":2}\n"
        );
        sync_file(&p).unwrap();
        sync_file(&dir.join("absent")).unwrap();
    }

    #[test]
    fn timestamps_look_like_dates() {
        let t = timestamp();
        assert_eq!(t.len(), 15);
        assert!(t.starts_with("20"));
        assert_eq!(&t[8..9], "-");
    }
}
