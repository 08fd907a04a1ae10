//! Training: the loop, optimizers, schedules, metrics, early stopping, checkpoints and run
//! directories.

pub mod checkpoint;
pub mod graph;
pub mod init;
pub mod lock;
pub mod metrics;
pub mod progress;
mod report;
pub mod resolve;
pub mod run;
pub mod rundir;
pub mod schedule;
pub mod sweep;

#[cfg(test)]
mod tests;
