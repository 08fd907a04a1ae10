//! Checkpoints for exact resumption: takes the whole state of a run between two epochs (every
//! tensor of the program, optimizer moments included; the step counter; the schedule's and
//! early stopping's state with the best weights; throughputs; the last validation figures; the
//! fold in progress and the finished folds' results) and gives `checkpoint.safetensors`, and
//! back. The previous checkpoint is kept as `checkpoint.prev.safetensors`; a content hash in
//! the file's metadata detects corruption and truncation, and loading then falls back to the
//! previous one.
//!
//! Layout: the tensors are the program's states by name, plus `early_stop.best/<name>` for the
//! best epoch's weights. Metadata: `format`, `train`, `epoch` (epochs completed in the fold),
//! `step`, `fold` (1-based), `resume` (JSON of everything else) and `sha256` (over the sorted
//! tensors and every other metadata entry).

use super::schedule::Scheduler;
use crate::rundir::{self, NamedTensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const LATEST: &str = "checkpoint.safetensors";
pub const PREVIOUS: &str = "checkpoint.prev.safetensors";
const FORMAT: &str = "mlx-checkpoint-1";
const BEST: &str = "early_stop.best/";

/// The figures of a finished fold (all a later fold, and the summary, need of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldFigures {
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub val: BTreeMap<String, Value>,
    pub test: BTreeMap<String, Value>,
    pub samples_per_second: f64,
}

/// Early stopping's state: the best monitored value so far with its epoch and weights, and
/// the epochs since it improved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EarlyState {
    pub best: Option<(f64, usize, Vec<NamedTensor>)>,
    pub bad_epochs: usize,
}

/// Where one fold's epoch loop stands after `epoch` completed epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub epoch: usize,
    pub step: u64,
    pub scheduler: Scheduler,
    pub early: EarlyState,
    /// Training samples per second of every epoch run so far.
    pub epoch_rates: Vec<f64>,
    pub last_val: BTreeMap<String, Value>,
}

impl Progress {
    pub fn new(lr: f64) -> Progress {
        Progress {
            epoch: 0,
            step: 0,
            scheduler: Scheduler::new(lr),
            early: EarlyState::default(),
            epoch_rates: Vec::new(),
            last_val: BTreeMap::new(),
        }
    }
}

/// A whole checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub train: String,
    /// The fold in progress (0-based).
    pub fold: usize,
    pub progress: Progress,
    /// Every state tensor of the program (parameters, optimizer moments, buffers).
    pub states: Vec<NamedTensor>,
    /// The results of the folds before `fold`.
    pub finished: Vec<FoldFigures>,
    /// Lines of `metrics.jsonl` written up to this checkpoint.
    pub metrics_lines: usize,
    /// Wall-clock seconds the run had taken.
    pub wall_seconds: f64,
}

/// The part of a checkpoint kept as JSON in the `resume` metadata entry.
#[derive(Serialize, Deserialize)]
struct Resume {
    scheduler: Scheduler,
    /// `f64::to_bits` of the best monitored value (exact, and NaN-safe), and its epoch.
    best: Option<(String, usize)>,
    bad_epochs: usize,
    epoch_rates: Vec<f64>,
    last_val: BTreeMap<String, Value>,
    finished: Vec<FoldFigures>,
    metrics_lines: usize,
    wall_seconds: f64,
}

impl Checkpoint {
    fn to_parts(&self) -> Result<(Vec<NamedTensor>, rundir::Metadata), String> {
        let p = &self.progress;
        let resume = Resume {
            scheduler: p.scheduler.clone(),
            best: p
                .early
                .best
                .as_ref()
                .map(|(v, e, _)| (format!("{:016x}", v.to_bits()), *e)),
            bad_epochs: p.early.bad_epochs,
            epoch_rates: p.epoch_rates.clone(),
            last_val: p.last_val.clone(),
            finished: self.finished.clone(),
            metrics_lines: self.metrics_lines,
            wall_seconds: self.wall_seconds,
        };
        let mut tensors = self.states.clone();
        if let Some((_, _, ws)) = &p.early.best {
            tensors.extend(ws.iter().map(|t| NamedTensor {
                name: format!("{BEST}{}", t.name),
                ..t.clone()
            }));
        }
        let mut meta = vec![
            ("format".to_string(), FORMAT.to_string()),
            ("train".to_string(), self.train.clone()),
            ("epoch".to_string(), p.epoch.to_string()),
            ("step".to_string(), p.step.to_string()),
            ("fold".to_string(), (self.fold + 1).to_string()),
            (
                "resume".to_string(),
                serde_json::to_string(&resume).map_err(|e| e.to_string())?,
            ),
        ];
        let hash = content_hash(&tensors, &meta);
        meta.push(("sha256".to_string(), hash));
        Ok((tensors, meta))
    }

    fn from_parts(tensors: Vec<NamedTensor>, meta: &rundir::Metadata) -> Result<Self, String> {
        let get = |k: &str| {
            meta.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| format!("it has no `{k}` entry"))
        };
        let stored = get("sha256")?;
        let rest: rundir::Metadata = meta
            .iter()
            .filter(|(k, _)| k != "sha256")
            .cloned()
            .collect();
        let actual = content_hash(&tensors, &rest);
        if stored != actual {
            return Err(format!(
                "its content hash does not match (recorded {}, found {})",
                short(stored),
                short(&actual)
            ));
        }
        if get("format")? != FORMAT {
            return Err(format!("it is in an unknown format `{}`", get("format")?));
        }
        let num = |k: &str| -> Result<u64, String> {
            get(k)?
                .parse()
                .map_err(|_| format!("its `{k}` entry is not a number"))
        };
        let resume: Resume = serde_json::from_str(get("resume")?)
            .map_err(|e| format!("its `resume` entry is not valid: {e}"))?;
        let fold = usize::try_from(num("fold")?)
            .ok()
            .and_then(|f| f.checked_sub(1))
            .ok_or("its `fold` entry is 0")?;
        let (best_tensors, states): (Vec<NamedTensor>, Vec<NamedTensor>) =
            tensors.into_iter().partition(|t| t.name.starts_with(BEST));
        let best_weights: Vec<NamedTensor> = best_tensors
            .into_iter()
            .map(|t| NamedTensor {
                name: t.name[BEST.len()..].to_string(),
                ..t
            })
            .collect();
        let best = match resume.best {
            None => None,
            Some((bits, epoch)) => {
                let v = u64::from_str_radix(&bits, 16)
                    .map_err(|_| "its best value is not valid".to_string())?;
                Some((f64::from_bits(v), epoch, best_weights))
            }
        };
        Ok(Checkpoint {
            train: get("train")?.to_string(),
            fold,
            progress: Progress {
                epoch: num("epoch")? as usize,
                step: num("step")?,
                scheduler: resume.scheduler,
                early: EarlyState {
                    best,
                    bad_epochs: resume.bad_epochs,
                },
                epoch_rates: resume.epoch_rates,
                last_val: resume.last_val,
            },
            states,
            finished: resume.finished,
            metrics_lines: resume.metrics_lines,
            wall_seconds: resume.wall_seconds,
        })
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// sha256 over the tensors (sorted by name: name, shape, little-endian data) and the metadata
/// entries (sorted by key), each part length-prefixed so no two contents hash alike.
fn content_hash(tensors: &[NamedTensor], meta: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let mut ts: Vec<&NamedTensor> = tensors.iter().collect();
    ts.sort_by(|a, b| a.name.cmp(&b.name));
    for t in ts {
        part(t.name.as_bytes());
        let dims: Vec<u8> = t
            .shape
            .iter()
            .flat_map(|d| (*d as u64).to_le_bytes())
            .collect();
        part(&dims);
        let data: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        part(&data);
    }
    let mut ms: Vec<&(String, String)> = meta.iter().collect();
    ms.sort();
    for (k, v) in ms {
        part(k.as_bytes());
        part(v.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `c` as the latest checkpoint of `dir`, keeping the one it replaces as the previous
/// one. Both steps are renames, so at every moment at least one complete checkpoint exists
/// (after a kill between them, only the previous one).
pub fn save(dir: &Path, c: &Checkpoint) -> std::io::Result<()> {
    let (tensors, meta) = c.to_parts().map_err(std::io::Error::other)?;
    let bytes = rundir::safetensors_bytes(&tensors, &meta).map_err(std::io::Error::other)?;
    let latest = dir.join(LATEST);
    if latest.exists() {
        rundir::fs_step();
        std::fs::rename(&latest, dir.join(PREVIOUS))?;
    }
    rundir::write_atomic(&latest, &bytes)
}

/// A checkpoint read back, with where it came from and what was wrong with newer ones.
pub struct Loaded {
    pub checkpoint: Checkpoint,
    pub path: PathBuf,
    /// One sentence per checkpoint file that was skipped, and why.
    pub skipped: Vec<String>,
}

/// Read one checkpoint file, verifying its content hash.
pub fn load_file(path: &Path) -> Result<Checkpoint, String> {
    let (tensors, meta) = rundir::load_safetensors(path)?;
    Checkpoint::from_parts(tensors, &meta)
        .map_err(|why| format!("{} is corrupt: {why}", path.display()))
}

/// The newest valid checkpoint of `dir`: the latest, or the previous one when the latest is
/// missing or corrupt. `Ok(None)` when the run has no checkpoint at all; `Err` (the reasons)
/// when every one there is corrupt.
pub fn load(dir: &Path) -> Result<Option<Loaded>, Vec<String>> {
    let mut skipped = Vec::new();
    let mut any = false;
    for name in [LATEST, PREVIOUS] {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        any = true;
        match load_file(&path) {
            Ok(checkpoint) => {
                return Ok(Some(Loaded {
                    checkpoint,
                    path,
                    skipped,
                }));
            }
            Err(why) => skipped.push(why),
        }
    }
    if any { Err(skipped) } else { Ok(None) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Checkpoint {
        let w = NamedTensor {
            name: "dense_0.w".into(),
            shape: vec![2, 2],
            data: vec![1.0, -0.5, 3.25, f32::MIN_POSITIVE],
        };
        let m = NamedTensor {
            name: "adam.m.dense_0.w".into(),
            shape: vec![2, 2],
            data: vec![0.1, 0.2, 0.3, 0.4],
        };
        let mut val = BTreeMap::new();
        val.insert("loss".to_string(), json!(0.123_456_789_012_345_67));
        val.insert("confusion".to_string(), json!([[3, 0], [1, 4]]));
        let mut sched = Scheduler::new(0.01);
        sched.lr = 0.005;
        Checkpoint {
            train: "t".into(),
            fold: 2,
            progress: Progress {
                epoch: 7,
                step: 56,
                scheduler: sched,
                early: EarlyState {
                    best: Some((0.1 + 0.2, 5, vec![w.clone()])),
                    bad_epochs: 2,
                },
                epoch_rates: vec![1234.5, 1e-300],
                last_val: val.clone(),
            },
            states: vec![m, w],
            finished: vec![FoldFigures {
                best_epoch: 3,
                epochs_run: 4,
                val: val.clone(),
                test: val,
                samples_per_second: 99.5,
            }],
            metrics_lines: 11,
            wall_seconds: 1.5,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mlx-ckpt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_checkpoint_round_trips_exactly() {
        let dir = temp("round");
        let c = sample();
        save(&dir, &c).unwrap();
        let back = load(&dir).unwrap().unwrap();
        let mut want = c;
        want.states.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(back.checkpoint, want);
        assert!(back.skipped.is_empty());
    }

    #[test]
    fn a_corrupt_latest_checkpoint_falls_back_to_the_previous_one() {
        let dir = temp("fallback");
        let mut c = sample();
        save(&dir, &c).unwrap();
        c.progress.epoch = 8;
        c.progress.step = 64;
        save(&dir, &c).unwrap();
        assert_eq!(load(&dir).unwrap().unwrap().checkpoint.progress.epoch, 8);
        // Flip one byte of tensor data: still valid safetensors, caught by the hash.
        let latest = dir.join(LATEST);
        let mut bytes = std::fs::read(&latest).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x40;
        std::fs::write(&latest, &bytes).unwrap();
        let back = load(&dir).unwrap().unwrap();
        assert_eq!(back.checkpoint.progress.epoch, 7);
        assert!(back.path.ends_with(PREVIOUS));
        assert_eq!(back.skipped.len(), 1);
        assert!(
            back.skipped[0].contains("content hash"),
            "{:?}",
            back.skipped
        );
        // Truncated as well: the previous one is still there.
        std::fs::write(&latest, &bytes[..n / 2]).unwrap();
        let back = load(&dir).unwrap().unwrap();
        assert_eq!(back.checkpoint.progress.epoch, 7);
        // Both corrupt: every reason comes back.
        std::fs::write(dir.join(PREVIOUS), b"garbage").unwrap();
        assert_eq!(load(&dir).err().unwrap().len(), 2);
        // None at all.
        assert!(load(&temp("none")).unwrap().is_none());
    }
}
