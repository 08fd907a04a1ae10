//! Training: the loop, optimizers, schedules, metrics, early stopping, checkpoints; the
//! files they write are `crate::rundir`'s.

pub mod checkpoint;
pub mod ensemble;
pub mod feed;
pub mod graph;
pub mod init;
pub mod interrupt;
pub mod metrics;
pub mod objectives;
pub mod parallel;
pub mod progress;
mod report;
pub mod resolve;
pub mod run;
pub mod schedule;
pub mod sweep;

#[cfg(test)]
mod tests;
