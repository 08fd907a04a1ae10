//! Learning-rate schedules, computed on the host once per epoch (the rate is an input of the
//! training step, so changing it never recompiles anything).

use crate::check::hir::Schedule;

/// The state a schedule carries between epochs (only `reduce_on_plateau` has any).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scheduler {
    pub lr: f64,
    best: Option<f64>,
    bad_epochs: usize,
}

impl Scheduler {
    pub fn new(lr: f64) -> Scheduler {
        Scheduler {
            lr,
            best: None,
            bad_epochs: 0,
        }
    }

    /// The learning rate for `epoch` (0-based) of `epochs`, from the base rate `lr0`.
    pub fn rate(&self, schedule: &Schedule, lr0: f64, epoch: usize, epochs: usize) -> f64 {
        match schedule {
            Schedule::Constant => lr0,
            Schedule::Step { every, gamma } => lr0 * gamma.powi((epoch / every.max(&1)) as i32),
            Schedule::Exponential { gamma } => lr0 * gamma.powi(epoch as i32),
            Schedule::Cosine { warmup, min_lr } => {
                if epoch < *warmup {
                    lr0 * (epoch + 1) as f64 / *warmup as f64
                } else {
                    let span = epochs.saturating_sub(*warmup).max(1) as f64;
                    let t = (epoch - warmup) as f64 / span;
                    min_lr + 0.5 * (lr0 - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
                }
            }
            Schedule::ReduceOnPlateau { .. } => self.lr,
        }
    }

    /// After an epoch: `reduce_on_plateau` cuts the rate when the monitored figure has not
    /// improved for `patience` epochs.
    pub fn observe(&mut self, schedule: &Schedule, value: Option<f64>) {
        let Schedule::ReduceOnPlateau {
            monitor,
            factor,
            patience,
            min_lr,
        } = schedule
        else {
            return;
        };
        let Some(v) = value.filter(|v| v.is_finite()) else {
            return;
        };
        let better = match self.best {
            None => true,
            Some(b) if monitor.higher_is_better() => v > b,
            Some(b) => v < b,
        };
        if better {
            self.best = Some(v);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
            if self.bad_epochs > *patience {
                self.lr = (self.lr * factor).max(*min_lr);
                self.bad_epochs = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::hir::Monitor;

    #[test]
    fn schedules_follow_their_formulas() {
        let s = Scheduler::new(0.1);
        let step = Schedule::Step {
            every: 2,
            gamma: 0.5,
        };
        let got: Vec<f64> = (0..5).map(|e| s.rate(&step, 0.1, e, 5)).collect();
        assert_eq!(got, vec![0.1, 0.1, 0.05, 0.05, 0.025]);
        let ex = Schedule::Exponential { gamma: 0.9 };
        assert!((s.rate(&ex, 1.0, 3, 10) - 0.729).abs() < 1e-12);
        let cos = Schedule::Cosine {
            warmup: 2,
            min_lr: 0.0,
        };
        assert!((s.rate(&cos, 1.0, 0, 10) - 0.5).abs() < 1e-12);
        assert!((s.rate(&cos, 1.0, 1, 10) - 1.0).abs() < 1e-12);
        assert!((s.rate(&cos, 1.0, 2, 10) - 1.0).abs() < 1e-12);
        assert!((s.rate(&cos, 1.0, 6, 10) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn plateau_cuts_after_patience() {
        let sched = Schedule::ReduceOnPlateau {
            monitor: Monitor {
                split: "val".into(),
                metric: None,
                objective: None,
            },
            factor: 0.5,
            patience: 1,
            min_lr: 0.01,
        };
        let mut s = Scheduler::new(0.1);
        for v in [1.0, 0.9, 0.95, 0.95] {
            s.observe(&sched, Some(v));
        }
        assert!((s.lr - 0.05).abs() < 1e-12);
        for _ in 0..20 {
            s.observe(&sched, Some(2.0));
        }
        assert!((s.lr - 0.01).abs() < 1e-12);
    }
}
