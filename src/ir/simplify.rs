//! Graph rewrites run once a function is complete (`FnBuilder::finish`), when every node's
//! consumers are known:
//!
//! - **Slices sink through elementwise ops.** `slice(a + b)` becomes `slice(a) + slice(b)`
//!   when every consumer of the sum is a slice and the slices do not overlap, so no element is
//!   computed twice. An LSTM step adds the input and recurrent gate products and slices the
//!   sum into four gates; after the rewrite the additions join the kernel that applies the
//!   gates, instead of being a kernel of their own whose result is written and read back.
//! - **Dead nodes are removed**: nothing outside the outputs and state updates is computed
//!   (a scan's output sequence of which only the last step is read, say).
//!
//! Both keep every value the function computes bit for bit.

use super::*;

/// The rewrites above. Sinking runs until nothing changes (a slice sunk through one op may
/// reach another that now qualifies), at most a few rounds.
pub fn simplify(f: Function) -> Function {
    let mut f = prune(f);
    for _ in 0..8 {
        let (g, changed) = sink_views(f);
        f = prune(g);
        if !changed {
            break;
        }
    }
    f
}

fn consumers(f: &Function) -> Vec<Vec<ValueId>> {
    let mut cs = vec![Vec::new(); f.nodes.len()];
    for (i, node) in f.nodes.iter().enumerate() {
        for a in node.op.args() {
            if !cs[a].contains(&i) {
                cs[a].push(i);
            }
        }
    }
    cs
}

fn is_result(f: &Function, v: ValueId) -> bool {
    f.outputs.iter().any(|(_, o)| *o == v) || f.updates.iter().any(|(_, u)| *u == v)
}

/// A reshape that only inserts or removes axes of length 1 (always a view).
fn unit_reshape(from: &[usize], to: &[usize]) -> bool {
    from.iter()
        .filter(|d| **d != 1)
        .eq(to.iter().filter(|d| **d != 1))
}

/// Whether node `i` is elementwise and read only through non-overlapping slices along one
/// axis, or only by one reshape that inserts or removes unit axes.
fn sinkable(f: &Function, cs: &[Vec<ValueId>], i: ValueId) -> bool {
    let node = &f.nodes[i];
    if node.dtype != DType::F32
        || !matches!(node.op, Op::Unary(..) | Op::Binary(..) | Op::Select(..))
        || cs[i].is_empty()
        || is_result(f, i)
    {
        return false;
    }
    if let [c] = cs[i][..]
        && matches!(f.nodes[c].op, Op::Reshape(_))
    {
        return unit_reshape(&node.shape, &f.nodes[c].shape);
    }
    let mut ranges = Vec::new();
    let mut along = None;
    for &c in &cs[i] {
        let Op::Slice { axis, start, .. } = f.nodes[c].op else {
            return false;
        };
        if along.is_some_and(|a| a != axis) {
            return false;
        }
        along = Some(axis);
        ranges.push((start, start + f.nodes[c].shape[axis]));
    }
    ranges.sort_unstable();
    ranges.windows(2).all(|w| w[0].1 <= w[1].0)
}

/// One round of sinking; whether anything changed.
fn sink_views(f: Function) -> (Function, bool) {
    let cs = consumers(&f);
    let sink: Vec<bool> = (0..f.nodes.len()).map(|i| sinkable(&f, &cs, i)).collect();
    if !sink.iter().any(|s| *s) {
        return (f, false);
    }
    let mut out = Function {
        nodes: Vec::with_capacity(f.nodes.len()),
        ..f.clone()
    };
    let mut map = vec![usize::MAX; f.nodes.len()];
    for (i, node) in f.nodes.iter().enumerate() {
        if sink[i] {
            // Every reader is a slice, rewritten below.
            continue;
        }
        map[i] = match node.op {
            Op::Slice { x, axis, start } if sink[x] => {
                let len = node.shape[axis];
                // Operands of an elementwise op have its shape (broadcasts are nodes).
                let op = with_operands(&mut out, &f.nodes[x].op, &|out, a| {
                    slice_of(out, map[a], axis, start, len, node.origin)
                });
                push(&mut out, op, node.shape.clone(), node.dtype, node.origin)
            }
            Op::Reshape(x) if sink[x] => {
                let op = with_operands(&mut out, &f.nodes[x].op, &|out, a| {
                    reshape_of(out, map[a], &node.shape, node.origin)
                });
                push(&mut out, op, node.shape.clone(), node.dtype, node.origin)
            }
            _ => {
                let op = node.op.map_args(&|a| map[a]);
                push(&mut out, op, node.shape.clone(), node.dtype, node.origin)
            }
        };
    }
    for (_, v) in &mut out.outputs {
        *v = map[*v];
    }
    for (_, v) in &mut out.updates {
        *v = map[*v];
    }
    (out, true)
}

/// Node `v` of `f` reshaped to `shape`: itself, what it reshapes, or a new reshape node.
fn reshape_of(f: &mut Function, v: ValueId, shape: &[usize], origin: Option<Span>) -> ValueId {
    if f.nodes[v].shape == shape {
        return v;
    }
    if let Op::Reshape(src) = f.nodes[v].op {
        return reshape_of(f, src, shape, origin);
    }
    let dt = f.nodes[v].dtype;
    push(f, Op::Reshape(v), shape.to_vec(), dt, origin)
}

/// `op` with each distinct operand `a` replaced by `view(f, a)` (a node pushed to `f`).
fn with_operands(
    f: &mut Function,
    op: &Op,
    view: &dyn Fn(&mut Function, ValueId) -> ValueId,
) -> Op {
    let mut new: Vec<(ValueId, ValueId)> = Vec::new();
    for a in op.args() {
        if !new.iter().any(|(o, _)| *o == a) {
            let v = view(f, a);
            new.push((a, v));
        }
    }
    op.map_args(&|a| {
        new.iter()
            .find(|(o, _)| *o == a)
            .map_or(usize::MAX, |(_, v)| *v)
    })
}

fn push(f: &mut Function, op: Op, shape: Shape, dtype: DType, origin: Option<Span>) -> ValueId {
    f.nodes.push(Node {
        op,
        shape,
        dtype,
        origin,
    });
    f.nodes.len() - 1
}

/// Elements `start..start + len` along `axis` of node `v`: `v` itself, a part of a
/// concatenation, a slice of what `v` slices, or a new slice node.
fn slice_of(
    f: &mut Function,
    v: ValueId,
    axis: usize,
    start: usize,
    len: usize,
    origin: Option<Span>,
) -> ValueId {
    let shape = &f.nodes[v].shape;
    if start == 0 && shape[axis] == len {
        return v;
    }
    match &f.nodes[v].op {
        Op::Concat(xs, cat) if *cat == axis => {
            let mut at = 0;
            for &p in xs {
                let n = f.nodes[p].shape[axis];
                if start >= at && start + len <= at + n {
                    return slice_of(f, p, axis, start - at, len, origin);
                }
                at += n;
            }
        }
        Op::Slice {
            x,
            axis: a,
            start: s,
        } if *a == axis => {
            let (x, s) = (*x, *s);
            return slice_of(f, x, axis, s + start, len, origin);
        }
        _ => {}
    }
    let mut shape = shape.clone();
    shape[axis] = len;
    push(
        f,
        Op::Slice { x: v, axis, start },
        shape,
        DType::F32,
        origin,
    )
}

/// Only what the outputs and state updates depend on, renumbered in the same order.
fn prune(f: Function) -> Function {
    let n = f.nodes.len();
    let mut live = vec![false; n];
    for (_, v) in &f.outputs {
        live[*v] = true;
    }
    for (_, v) in &f.updates {
        live[*v] = true;
    }
    for i in (0..n).rev() {
        if live[i] {
            for a in f.nodes[i].op.args() {
                live[a] = true;
            }
        }
    }
    if live.iter().all(|l| *l) {
        return f;
    }
    let mut map = vec![usize::MAX; n];
    let mut nodes = Vec::with_capacity(n);
    for (i, node) in f.nodes.into_iter().enumerate() {
        if live[i] {
            map[i] = nodes.len();
            nodes.push(Node {
                op: node.op.map_args(&|a| map[a]),
                ..node
            });
        }
    }
    Function {
        nodes,
        outputs: f.outputs.into_iter().map(|(k, v)| (k, map[v])).collect(),
        updates: f.updates.into_iter().map(|(k, v)| (k, map[v])).collect(),
        ..f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::interp::Interp;
    use crate::backend::{Backend, HostTensor};
    use crate::ir::build::FnBuilder;

    fn run(f: Function, states: Vec<StateDecl>, inputs: &[HostTensor]) -> Vec<Vec<f32>> {
        let p = Program {
            states,
            functions: vec![f],
        };
        let mut exe = Interp.compile(&p).expect("compiles");
        exe.run(0, inputs)
            .expect("runs")
            .iter()
            .map(|t| t.as_f32().to_vec())
            .collect()
    }

    /// The LSTM gate pattern: a sum of a sliced sequence step and a product, read as four
    /// slices. After `finish` no node computes the whole sum, every slice reads its operands
    /// directly, the unread sequence is gone, and the values are bit for bit those of the
    /// function as built.
    #[test]
    fn slices_sink_through_elementwise_ops_and_dead_nodes_go() {
        let mut states = Vec::new();
        let mut b = FnBuilder::new("f", &mut states);
        let seq = b.input("seq", vec![2, 3, 8], DType::F32);
        let h = b.input("h", vec![2, 8], DType::F32);
        let step = b.slice(seq, 1, 1, 1);
        let step = b.reshape(step, &[2, 8]);
        let z = b.add(step, h);
        let gates: Vec<ValueId> = (0..4)
            .map(|k| {
                let s = b.slice(z, 1, 2 * k, 2);
                b.unary(UnaryOp::Sigmoid, s)
            })
            .collect();
        let a = b.mul(gates[0], gates[1]);
        let c = b.mul(gates[2], gates[3]);
        let out = b.add(a, c);
        // A dead value: computed, never read.
        let _dead = b.unary(UnaryOp::Exp, h);
        b.output("out", out);
        let built = b.f.clone();
        let f = b.finish();

        assert!(
            !f.nodes
                .iter()
                .any(|n| matches!(n.op, Op::Binary(..)) && n.shape == [2, 8]),
            "the whole sum is not computed"
        );
        assert!(
            !f.nodes
                .iter()
                .any(|n| matches!(n.op, Op::Unary(UnaryOp::Exp, _))),
            "dead node removed"
        );
        let p = Program {
            states: Vec::new(),
            functions: vec![f.clone()],
        };
        crate::ir::verify::program(&p).expect("valid after simplification");

        let seq_v: Vec<f32> = (0..48).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let h_v: Vec<f32> = (0..16).map(|i| (i as f32 * 0.91).cos() * 2.0).collect();
        let inputs = [
            HostTensor::f32(vec![2, 3, 8], seq_v.clone()),
            HostTensor::f32(vec![2, 8], h_v.clone()),
        ];
        let got = run(f, Vec::new(), &inputs);
        let want = run(built, Vec::new(), &inputs);
        assert_eq!(got, want);
        // And by hand.
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        for r in 0..2 {
            for j in 0..2 {
                let z = |k: usize| seq_v[r * 24 + 8 + 2 * k + j] + h_v[r * 8 + 2 * k + j];
                let w = sig(z(0)) * sig(z(1)) + sig(z(2)) * sig(z(3));
                let g = got[0][r * 2 + j];
                assert!((g - w).abs() < 1e-6, "{g} vs {w}");
            }
        }
    }

    /// A slice that falls inside one part of a concatenation along its axis is that part: a
    /// scan's output sequence read only at its last step is never assembled.
    #[test]
    fn a_slice_of_a_concatenation_is_the_part() {
        let mut states = Vec::new();
        let mut b = FnBuilder::new("f", &mut states);
        let parts: Vec<ValueId> = (0..3)
            .map(|i| b.input(&format!("p{i}"), vec![2, 1, 4], DType::F32))
            .collect();
        let seq = b.concat(parts.clone(), 1);
        let last = b.slice(seq, 1, 2, 1);
        assert_eq!(last, parts[2]);
        let inner = b.slice(seq, 1, 1, 1);
        assert_eq!(inner, parts[1]);
        // Across two parts: a real slice.
        let across = b.slice(seq, 1, 1, 2);
        assert!(matches!(b.f.nodes[across].op, Op::Slice { .. }));
        let flat = b.reshape(last, &[2, 4]);
        let back = b.reshape(flat, &[2, 1, 4]);
        assert_eq!(
            back, parts[2],
            "a reshape of a reshape back is the original"
        );
        b.output("last", flat);
        let f = b.finish();
        assert!(!f.nodes.iter().any(|n| matches!(n.op, Op::Concat(..))));
    }
}
