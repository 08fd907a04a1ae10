//! Training: the loop, optimizers, schedules, metrics, early stopping, checkpoints and run
//! directories.

pub mod metrics;
