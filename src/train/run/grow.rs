//! One fold of a tree train: takes the fold's preprocessed training and validation rows and
//! grows the ensemble (`crate::trees`) round by round in place of the epoch loop: a
//! `metrics.jsonl` line per round (the training loss, the validation loss and metrics from the
//! scores so far), early stopping in rounds, a checkpoint every `checkpoint` rounds (the trees
//! so far as the ensemble's states), Ctrl-C; then the kept rounds are written into the
//! program's states, where evaluation and everything after the run read them.

use super::{Job, Progress, interrupt_agreed, io_error, json_number};
use crate::backend::Executable;
use crate::check::hir::{Loss, TargetKind, TreeKind, TreePlan};
use crate::data::Preprocessor;
use crate::data::stream::Part;
use crate::diagnostics::Diagnostic;
use crate::rundir::{self, MetricsLine};
use crate::train::checkpoint::FoldFigures;
use crate::train::ensemble;
use crate::train::feed::Feed;
use crate::train::graph::Built;
use crate::trees::{self, BoostParams, Booster, ForestParams, Rows, Target, Tree};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Instant;

/// The preprocessed rows of one part: features (row-major) and targets.
struct Matrix {
    x: Vec<f32>,
    y: Vec<f32>,
}

fn part(feed: &Feed<'_>, pre: &Preprocessor, which: Part) -> Result<Matrix, Diagnostic> {
    let (data, rows) = feed
        .rows(which)
        .ok_or_else(|| Diagnostic::internal("a tree model on a streamed dataset"))?;
    let mut x = Vec::with_capacity(rows.len() * pre.width());
    pre.features(data, rows, &mut x)
        .map_err(|e| e.diagnostic())?;
    let mut y = Vec::with_capacity(rows.len());
    data.targets(rows, &mut y);
    Ok(Matrix { x, y })
}

/// What the trees minimise for this target and loss.
fn tree_loss(loss: &Loss, target: &TargetKind) -> trees::Loss {
    match (target.classes(), loss) {
        (Some(2), _) => trees::Loss::LogLoss,
        (Some(_), _) => trees::Loss::Softmax,
        (None, Loss::Huber { delta }) => trees::Loss::Huber { delta: *delta },
        (None, _) => trees::Loss::Squared,
    }
}

/// Running scores of the validation rows: the base, plus each tree as it comes.
struct Scores {
    cols: usize,
    outputs: usize,
    values: Vec<f64>,
}

impl Scores {
    fn new(rows: usize, cols: usize, base: &[f32]) -> Scores {
        let values = (0..rows)
            .flat_map(|_| base.iter().map(|b| f64::from(*b)))
            .collect();
        Scores {
            cols,
            outputs: base.len().max(1),
            values,
        }
    }

    /// Add a round of trees (tree `k` to output `k`).
    fn add(&mut self, x: &[f32], round: &[Tree]) {
        let rows = self.values.len() / self.outputs;
        for r in 0..rows {
            let row = &x[r * self.cols..(r + 1) * self.cols];
            for (k, t) in round.iter().enumerate() {
                self.values[r * self.outputs + k] += f64::from(t.predict(row));
            }
        }
    }
}

/// The loss and the train's metrics of `scores` against `y`, computed as the evaluation
/// function does (probabilities for classes).
fn figures(job: &Job<'_>, p: &TreePlan, scores: &Scores, y: &[f32]) -> BTreeMap<String, Value> {
    let (plan, dset) = (job.plan, job.dset);
    let mut out = BTreeMap::new();
    if y.is_empty() {
        return out;
    }
    let classes = dset.target.kind.classes();
    let k = scores.outputs;
    let mut shown: Vec<f32> = Vec::with_capacity(y.len() * classes.unwrap_or(1));
    let mut loss = 0.0f64;
    for (r, target) in y.iter().enumerate() {
        let s = &scores.values[r * k..(r + 1) * k];
        match classes {
            Some(c) => {
                let logits: Vec<f64> = if ensemble::answers_log(p, classes) {
                    s.iter().map(|v| v.max(1e-7).ln()).collect()
                } else if c == 2 && k == 1 {
                    vec![0.0, s[0]]
                } else {
                    s.to_vec()
                };
                let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = logits.iter().map(|v| (v - m).exp()).sum();
                let label = *target as usize;
                loss += -(logits.get(label).copied().unwrap_or(m) - m - z.ln());
                shown.extend(logits.iter().map(|v| ((v - m).exp() / z) as f32));
            }
            None => {
                let d = s[0] - f64::from(*target);
                loss += match &plan.loss {
                    Loss::Huber { delta } if d.abs() > *delta => delta * (d.abs() - 0.5 * delta),
                    Loss::Huber { .. } => 0.5 * d * d,
                    _ => d * d,
                };
                shown.push(s[0] as f32);
            }
        }
    }
    out.insert("loss".into(), json_number(loss / y.len() as f64));
    out.extend(super::figures_of(plan, dset, &shown, y));
    out
}

/// Grow the fold's ensemble. `p` is the loop's position (rounds done, early stopping); on
/// resume the states already hold the trees of `p.epoch` rounds. Returns the round whose
/// trees were kept when early stopping cut the rest.
#[allow(clippy::too_many_arguments)]
pub(super) fn grow(
    job: &Job<'_>,
    fi: usize,
    feed: &Feed<'_>,
    pre: &Preprocessor,
    built: &Built,
    exe: &mut dyn Executable,
    p: &mut Progress,
    finished: &[FoldFigures],
    lines: &mut usize,
    fold_tag: &str,
) -> Result<Option<usize>, Diagnostic> {
    let (plan, dset) = (job.plan, job.dset);
    let tp = plan
        .trees
        .as_ref()
        .ok_or_else(|| Diagnostic::internal("grow without trees"))?;
    let train = part(feed, pre, Part::Train)?;
    let val = part(feed, pre, Part::Val)?;
    let cols = pre.width();
    let threads = job
        .opts
        .threads
        .unwrap_or_else(crate::backend::cpu::default_threads);
    let labels: Vec<u32> = train.y.iter().map(|v| *v as u32).collect();
    let target = match dset.target.kind.classes() {
        Some(classes) => Target::Classes {
            labels: &labels,
            classes,
        },
        None => Target::Values(&train.y),
    };
    let rows = Rows { x: &train.x, cols };
    let bad = |e: String| {
        Diagnostic::error(
            "mlx::data::value",
            format!("the trees of `{}` cannot be grown: {e}", plan.name),
        )
    };
    if tp.kind == TreeKind::Forest {
        if p.epoch >= tp.trees {
            // Resumed after the forest was grown: its trees are in the states.
            return Ok(None);
        }
        let params = ForestParams {
            trees: tp.trees,
            depth: tp.depth,
            max_features: tp.max_features.unwrap_or(match dset.target.kind.classes() {
                Some(_) => ((cols as f64).sqrt().floor() as usize).max(1),
                None => cols.max(1),
            }),
            min_samples_leaf: tp.min_samples_leaf,
            bootstrap: tp.bootstrap,
            bins: tp.bins,
            seed: plan.seed,
        };
        let bar =
            crate::train::progress::bar(job.opts.progress, tp.trees, &format!("{fold_tag}trees"));
        let t0 = Instant::now();
        let forest =
            trees::forest(rows, target, &params, threads, &mut |_| bar.inc(1)).map_err(bad)?;
        bar.finish_and_clear();
        let secs = t0.elapsed().as_secs_f64();
        let mut scores = Scores::new(val.y.len(), cols, &forest.base);
        for round in forest.trees.chunks(forest.outputs.max(1)) {
            scores.add(&val.x, round);
        }
        let val_figures = figures(job, tp, &scores, &val.y);
        write_line(
            job,
            fi,
            lines,
            tp.trees,
            BTreeMap::new(),
            &val_figures,
            secs,
        )?;
        p.epoch = tp.trees;
        p.epoch_rates.push(train.y.len() as f64 / secs.max(1e-9));
        p.last_val = val_figures;
        let states = ensemble::tensors(tp, &forest.base, &forest.trees, &forest.gain);
        super::restore(exe, built, &states)?;
        super::save_checkpoint(job, fi, p, states, finished, *lines)?;
        if interrupt_agreed(job)? && fi + 1 < job.loaded.folds() {
            return Err(super::interrupted_after(
                job,
                &format!("{fold_tag}its trees"),
            ));
        }
        return Ok(None);
    }
    let params = BoostParams {
        rounds: tp.trees,
        depth: tp.depth,
        lr: tp.lr,
        min_child_weight: tp.min_child_weight,
        l2: tp.l2,
        min_split_gain: tp.min_split_gain,
        subsample: tp.subsample,
        colsample: tp.colsample,
        bins: tp.bins,
        seed: plan.seed,
    };
    let setup = Instant::now();
    let mut booster = Booster::new(
        rows,
        target,
        tree_loss(&plan.loss, &dset.target.kind),
        &params,
        threads,
    )
    .map_err(bad)?;
    // Fitting the bins is part of the first round's time (as it is of a peer's `fit`).
    let mut pending = setup.elapsed().as_secs_f64();
    let mut grown: Vec<Tree> = Vec::new();
    let mut base = booster.base().to_vec();
    if p.epoch > 0 {
        // Resumed: the checkpoint's trees are in the states.
        let states = super::all_states(exe, built)?;
        let r = ensemble::from_tensors(tp, &states, p.epoch)?;
        booster.replay(&r.trees);
        // Replaying sums the gains in another order: the checkpoint's are exact.
        if r.gain.len() == cols {
            booster.set_gain(&r.gain);
        }
        base = r.base;
        grown = r.trees;
    }
    let k = tp.outputs;
    let mut scores = Scores::new(val.y.len(), cols, &base);
    for round in grown.chunks(k) {
        scores.add(&val.x, round);
    }
    let bar =
        crate::train::progress::bar(job.opts.progress, tp.trees, &format!("{fold_tag}rounds"));
    bar.inc(p.epoch as u64);
    let every = (tp.trees / 10).max(1);
    while p.epoch < tp.trees && !super::stopped_early(plan, p) {
        let t0 = Instant::now();
        let round = booster.round();
        scores.add(&val.x, &round);
        grown.extend(round);
        let secs = t0.elapsed().as_secs_f64() + std::mem::take(&mut pending);
        let train_loss = booster.train_loss();
        if !train_loss.is_finite() {
            bar.finish_and_clear();
            return Err(Diagnostic::error(
                "mlx::train::diverged",
                format!(
                    "the training loss of `{}` became {train_loss} in {fold_tag}round {}",
                    plan.name,
                    p.epoch + 1
                ),
            )
            .with_help(format!(
                "lower the learning rate (`--set model.lr={}`) or raise `l2`; the last checkpoint is kept in the run directory",
                tp.lr / 10.0
            )));
        }
        let val_figures = figures(job, tp, &scores, &val.y);
        let train_figures: BTreeMap<String, Value> =
            [("loss".to_string(), json_number(train_loss))].into();
        write_line(
            job,
            fi,
            lines,
            p.epoch + 1,
            train_figures.clone(),
            &val_figures,
            secs,
        )?;
        p.epoch_rates.push(train.y.len() as f64 / secs.max(1e-9));
        if job.opts.verbose && ((p.epoch + 1).is_multiple_of(every) || p.epoch + 1 == tp.trees) {
            bar.suspend(|| {
                eprintln!(
                    "{}",
                    crate::train::report::epoch_line(
                        fold_tag,
                        p.epoch,
                        tp.trees,
                        train_loss,
                        &val_figures,
                        secs
                    )
                    .replacen("epoch", "round", 1)
                )
            });
        }
        let monitored = super::monitored(plan, train_loss, &train_figures, &val_figures);
        // The best round's trees are the first rounds: only the count is kept, and the split
        // gains up to it.
        super::watch_early(plan, p, monitored, p.epoch + 1, || {
            Ok(vec![ensemble::gain_tensor(booster.gain())])
        })?;
        p.epoch += 1;
        p.last_val = val_figures;
        bar.inc(1);
        let stop = super::stopped_early(plan, p);
        let interrupted = interrupt_agreed(job)?;
        if p.epoch.is_multiple_of(plan.checkpoint_every.max(1))
            || p.epoch == tp.trees
            || stop
            || interrupted
        {
            let states = ensemble::tensors(tp, &base, &grown, booster.gain());
            super::save_checkpoint(job, fi, p, states, finished, *lines)?;
        }
        if interrupted && (p.epoch < tp.trees && !stop || fi + 1 < job.loaded.folds()) {
            bar.finish_and_clear();
            return Err(super::interrupted_after(
                job,
                &format!("{fold_tag}round {}", p.epoch),
            ));
        }
        if stop
            && job.opts.verbose
            && let Some(es) = &plan.early_stop
        {
            bar.suspend(|| {
                eprintln!(
                    "{fold_tag}early stop after round {}: `{}` has not improved for {} rounds",
                    p.epoch,
                    es.monitor.name(),
                    es.patience
                )
            });
        }
    }
    bar.finish_and_clear();
    // Early stopping keeps the rounds up to the best one.
    let (kept, gain) = match p.early.best.take() {
        Some((_, best, at_best)) if best < p.epoch => (
            Some(best),
            at_best
                .into_iter()
                .find(|t| t.name == ensemble::GAIN)
                .map(|t| t.data.iter().map(|g| f64::from(*g)).collect::<Vec<f64>>()),
        ),
        _ => (None, None),
    };
    let rounds = kept.unwrap_or(p.epoch);
    grown.truncate(rounds * k);
    let gain = gain.unwrap_or_else(|| booster.gain().to_vec());
    super::restore(exe, built, &ensemble::tensors(tp, &base, &grown, &gain))?;
    Ok(kept)
}

/// Append a round's line to `metrics.jsonl`.
fn write_line(
    job: &Job<'_>,
    fi: usize,
    lines: &mut usize,
    round: usize,
    train: BTreeMap<String, Value>,
    val: &BTreeMap<String, Value>,
    secs: f64,
) -> Result<(), Diagnostic> {
    let line = MetricsLine {
        epoch: Some(round),
        fold: (job.loaded.folds() > 1).then_some(fi + 1),
        lr: None,
        train,
        val: (!val.is_empty()).then(|| val.clone()),
        seconds: secs.is_finite().then_some(secs),
    };
    let path = job.dir.join(rundir::METRICS);
    rundir::append_jsonl(&path, &line).map_err(|e| io_error(&path, e))?;
    *lines += 1;
    Ok(())
}
