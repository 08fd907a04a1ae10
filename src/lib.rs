//! mlx: a declarative language for machine-learning experiments. See `ARCHITECTURE.md`.

pub mod backend;
pub mod check;
pub mod commands;
pub mod data;
pub mod diagnostics;
pub mod driver;
pub mod explain;
pub mod export;
pub mod history;
pub mod ir;
pub mod monitor;
#[cfg(feature = "mpi")]
pub mod mpi_job;
pub mod plot;
pub mod predict;
pub mod reproduce;
pub mod rng;
pub mod rundir;
pub mod serve;
pub mod source;
pub mod stdlib;
pub mod syntax;
pub mod train;
pub mod trees;
pub mod trials;
