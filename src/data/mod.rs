//! Data: loaders (CSV, IDX), schemas read at check time, preprocessing fitted on the training
//! split only, splits and batches.

pub mod csv;
pub mod error;
pub mod idx;
pub mod load;
pub mod preprocess;
pub mod schema;
pub mod sources;
pub mod split;
pub mod stats;
pub mod stream;
pub mod transform;

pub use error::DataError;
pub use load::Data;
pub use preprocess::{FeatureKind, Fill, FittedFeature, FittedStep, Preprocessor};
pub use split::{Fold, shuffled_batches};

#[cfg(test)]
mod tests;
