//! Metrics of predictions against targets (being written).
