//! Data: loaders (CSV, IDX), schemas read at check time, preprocessing fitted on the training
//! split only, splits and batches.

pub mod csv;
pub mod idx;
pub mod schema;
