//! Size: the memory one training step of a train needs, estimated from the checked instance
//! (every shape known, the batch size bound) and the optimizer: parameters, their gradients,
//! optimizer state, and one batch of activations kept for the backward pass.

use super::hir::{self, InstanceId, Op, Optimizer, Program};
use std::fmt;

/// Bytes per element: every tensor is f32.
const ELEMENT: f64 = 4.0;

/// What a train needs, in bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryEstimate {
    pub parameters: f64,
    pub gradients: f64,
    pub optimizer: f64,
    /// Forward activations of one batch, doubled for the backward pass.
    pub activations: f64,
    /// The largest parameter: its path (`dense_1.w`), shape and bytes.
    pub largest_parameter: Option<(String, String, f64)>,
    /// The largest activation: the layer path it belongs to, its shape and bytes (one batch).
    pub largest_activation: Option<(String, String, f64)>,
}

/// What a tree ensemble's program needs: its trees (split features, thresholds, missing
/// directions, leaf values) and, for one batch, the features gathered at every node, the
/// comparisons and the rows' paths through every level.
pub fn trees(p: &hir::TreePlan, features: usize, batch: usize) -> MemoryEstimate {
    let rounds = p.trees as f64;
    let all = rounds * p.outputs as f64;
    let (nodes, leaves) = (p.nodes() as f64, p.leaves() as f64);
    let parameters = (all * (3.0 * nodes + leaves) + p.outputs as f64) * ELEMENT;
    let per_batch = batch as f64 * all * (3.0 * nodes + 3.0 * leaves) * ELEMENT;
    MemoryEstimate {
        parameters,
        gradients: 0.0,
        optimizer: 0.0,
        activations: per_batch + batch as f64 * features as f64 * ELEMENT,
        largest_parameter: Some((
            "trees.leaf".into(),
            format!("[{}, {}, {}]", p.trees, p.outputs, p.leaves()),
            all * leaves * ELEMENT,
        )),
        largest_activation: Some((
            "trees".into(),
            format!("[{}, {}, B]", all, p.leaves()),
            batch as f64 * all * leaves * ELEMENT,
        )),
    }
}

impl MemoryEstimate {
    /// Two models' needs together (a train with objectives), the largest items kept, each
    /// named under its model (`g.dense_0.w`).
    pub fn plus(mut self, other: MemoryEstimate, prefix: &str) -> MemoryEstimate {
        self.parameters += other.parameters;
        self.gradients += other.gradients;
        self.optimizer += other.optimizer;
        self.activations += other.activations;
        let pick = |a: Option<(String, String, f64)>, b: Option<(String, String, f64)>| match (a, b)
        {
            (Some(a), Some(b)) if b.2 > a.2 => Some((format!("{prefix}{}", b.0), b.1, b.2)),
            (Some(a), _) => Some(a),
            (None, Some(b)) => Some((format!("{prefix}{}", b.0), b.1, b.2)),
            (None, None) => None,
        };
        self.largest_parameter = pick(self.largest_parameter, other.largest_parameter);
        self.largest_activation = pick(self.largest_activation, other.largest_activation);
        self
    }

    /// What most of the memory is: the largest parameter when parameters outweigh the
    /// activations, else the largest activation (of a batch of `batch` rows).
    pub fn dominant(&self, batch: usize) -> String {
        self.largest_parameter
            .as_ref()
            .filter(|_| self.parameters >= self.activations)
            .map(|(n, s, _)| format!("the parameter `{n}` {s}"))
            .or_else(|| {
                self.largest_activation
                    .as_ref()
                    .map(|(n, s, _)| format!("the activations of `{n}` ({s} per batch of {batch})"))
            })
            .unwrap_or_else(|| "the model".into())
    }

    pub fn total(&self) -> f64 {
        self.parameters + self.gradients + self.optimizer + self.activations
    }

    /// One line: `about 1.2 MB: parameters 0.3 MB (dense.w [784, 100]), ...`.
    pub fn describe(&self) -> String {
        let top = |t: &Option<(String, String, f64)>| match t {
            Some((name, shape, _)) => format!(" ({name} {shape})"),
            None => String::new(),
        };
        format!(
            "about {}: parameters {}{}, gradients {}, optimizer state {}, activations {}{}",
            bytes(self.total()),
            bytes(self.parameters),
            top(&self.largest_parameter),
            bytes(self.gradients),
            bytes(self.optimizer),
            bytes(self.activations),
            top(&self.largest_activation),
        )
    }
}

impl fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A byte count for people: `48.3 GB`, `512 B`.
pub fn bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if b < 1000.0 {
        return format!("{b:.0} B");
    }
    let mut v = b;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    if v >= 1000.0 {
        format!("{b:.3e} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// Estimate the memory of training `instance` with batches of `batch` and `optimizer`.
pub fn estimate(
    program: &Program,
    instance: InstanceId,
    batch: usize,
    optimizer: &Optimizer,
) -> MemoryEstimate {
    let mut e = MemoryEstimate::default();
    walk(program, instance, "", 1.0, batch, &mut e, 0);
    e.gradients = e.parameters;
    let copies = match optimizer {
        Optimizer::Sgd { momentum, .. } => f64::from(u8::from(*momentum != 0.0)),
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 2.0,
        Optimizer::RmsProp { momentum, .. } => 1.0 + f64::from(u8::from(*momentum != 0.0)),
    };
    e.optimizer = copies * e.parameters;
    e.activations *= 2.0;
    if let Some(a) = &mut e.largest_activation {
        a.2 *= 2.0;
    }
    e
}

/// Elements of a shape with the batch bound; symbols still free count as 1.
fn elements(shape: &[super::dim::Dim], batch: usize) -> f64 {
    shape
        .iter()
        .map(|d| {
            d.eval(&|s| (s == hir::BATCH).then_some(batch as i64))
                .map_or(1.0, |n| n.max(0) as f64)
        })
        .product()
}

fn walk(
    p: &Program,
    id: InstanceId,
    prefix: &str,
    repeat: f64,
    batch: usize,
    e: &mut MemoryEstimate,
    depth: usize,
) {
    let Some(inst) = p.instances.get(id) else {
        return;
    };
    // Instances nest as deep as models call models, which the checker bounds; this guards
    // against a malformed program all the same.
    if depth > 256 {
        return;
    }
    for param in &inst.params {
        let b = elements(&param.shape, batch) * ELEMENT;
        e.parameters += b;
        if e.largest_parameter.as_ref().is_none_or(|(_, _, x)| b > *x) {
            e.largest_parameter = Some((
                format!("{prefix}{}", param.name),
                super::dim::show_shape(&param.shape),
                b,
            ));
        }
    }
    for node in &inst.nodes {
        match &node.op {
            Op::Call {
                instance, layer, ..
            } => walk(
                p,
                *instance,
                &format!("{prefix}{layer}."),
                repeat,
                batch,
                e,
                depth + 1,
            ),
            Op::Scan { body, xs, axis, .. } => {
                let steps = inst
                    .nodes
                    .get(*xs)
                    .and_then(|x| x.shape.get(*axis))
                    .map_or(1.0, |d| elements(std::slice::from_ref(d), batch));
                walk(p, *body, prefix, repeat * steps, batch, e, depth + 1);
            }
            // Parameters are counted above; inputs and parameters read are not new buffers.
            Op::Param(_) => continue,
            _ => {}
        }
        let b = elements(&node.shape, batch) * ELEMENT * repeat;
        e.activations += b;
        if e.largest_activation.as_ref().is_none_or(|(_, _, x)| b > *x) {
            let owner = if prefix.is_empty() {
                inst.model.clone()
            } else {
                prefix.trim_end_matches('.').to_string()
            };
            e.largest_activation = Some((owner, super::dim::show_shape(&node.shape), b));
        }
    }
}

impl super::Checker<'_> {
    /// Report a train whose training step does not fit in this machine's memory (or
    /// `MLX_MEMORY_LIMIT`), labelled at `span`; true when it fits.
    pub(super) fn memory_fits(
        &mut self,
        train: &str,
        memory: &MemoryEstimate,
        batch: usize,
        span: crate::source::Span,
    ) -> bool {
        let Some(limit) = self.schemas.memory_limit() else {
            return true;
        };
        if memory.total() <= limit as f64 {
            return true;
        }
        self.fail(super::error::data::Error::TrainMemory {
            train: train.to_string(),
            needs: memory.describe(),
            has: bytes(limit as f64),
            largest: memory.dominant(batch),
            span,
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_well() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(48_300_000_000.0), "48.3 GB");
        assert_eq!(bytes(1.5e6), "1.5 MB");
    }
}
