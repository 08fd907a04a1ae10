//! Passes over a schedule, after `schedule` has formed its kernels:
//!
//! - `concat_in_place`: the parts of a concatenation are written where the concatenation
//!   puts them, instead of into temporaries that a copy then moves (an unrolled recurrence
//!   concatenates its T step gradients; this removes the copy and the T temporaries).
//! - `merge_kernels`: consecutive elementwise kernels over the same iteration space become
//!   one loop. A value the first stores and the second loads is passed in a register, and a
//!   store nothing else reads is dropped. Kernels are launched once instead of n times and
//!   their common inputs are read once.
//!
//! Both keep the meaning of the schedule exactly: every element is computed by the same
//! operations, only where it is kept and when the loop runs change.

use super::schedule::{
    Buf, KOp, Kernel, Schedule, Step, View, step_reads, step_views_mut as views_mut, step_writes,
};
use std::collections::HashMap;

/// The largest view (in elements) whose addresses the passes enumerate to prove two views of
/// one buffer disjoint or a view remappable; larger ones are left alone.
const ENUMERATE_MAX: usize = 1 << 22;

/// Element offsets of a view, row-major over its shape.
fn addresses(v: &View) -> Vec<isize> {
    let n = v.numel();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let r = v.shape.len();
    let mut idx = vec![0usize; r];
    let mut off = v.offset as isize;
    for _ in 0..n {
        out.push(off);
        for d in (0..r).rev() {
            idx[d] += 1;
            off += v.strides[d];
            if idx[d] < v.shape[d] {
                break;
            }
            off -= v.strides[d] * v.shape[d] as isize;
            idx[d] = 0;
        }
    }
    out
}

/// Whether two views of one buffer share no element (false when unsure).
fn disjoint(a: &View, b: &View) -> bool {
    if a.numel() == 0 || b.numel() == 0 {
        return true;
    }
    if a.numel() + b.numel() > ENUMERATE_MAX {
        return false;
    }
    let xs = addresses(a);
    let ys = addresses(b);
    let lo = xs.iter().chain(&ys).copied().min().unwrap_or(0);
    let hi = xs.iter().chain(&ys).copied().max().unwrap_or(0);
    let mut seen = vec![false; (hi - lo + 1) as usize];
    for x in xs {
        seen[(x - lo) as usize] = true;
    }
    ys.into_iter().all(|y| !seen[(y - lo) as usize])
}

/// The view of `region` (a strided view of another buffer, holding temp `t` whose contiguous
/// layout has `region`'s shape) that covers what `v` covers of `t`, if it is a strided view.
fn remap(v: &View, region: &View) -> Option<View> {
    if v.numel() > ENUMERATE_MAX {
        return None;
    }
    // Temp-linear index -> address in the region.
    let dims = &region.shape;
    let addr = |mut l: isize| -> isize {
        let mut a = region.offset as isize;
        for d in (0..dims.len()).rev() {
            let n = dims[d] as isize;
            a += (l % n) * region.strides[d];
            l /= n;
        }
        a
    };
    let base = v.offset as isize;
    let offset = addr(base);
    let strides: Vec<isize> = v
        .shape
        .iter()
        .zip(&v.strides)
        .map(|(d, s)| {
            if *d > 1 && *s != 0 {
                addr(base + s) - offset
            } else {
                0
            }
        })
        .collect();
    if offset < 0 || strides.iter().any(|s| *s < 0) {
        return None;
    }
    let out = View {
        buf: region.buf,
        offset: offset as usize,
        shape: v.shape.clone(),
        strides,
        dtype: v.dtype,
    };
    let ok = addresses(v)
        .into_iter()
        .zip(addresses(&out))
        .all(|(l, a)| addr(l) == a);
    ok.then_some(out)
}

/// Write the parts of each concatenation in place (see the module comment). A part qualifies
/// when it is a whole temporary, written before the concatenation (by one step, or part by
/// part when it is an inner concatenation placed already), used by no other concatenation,
/// and every view of it anywhere maps to a strided view of its place in the result.
pub fn concat_in_place(s: &mut Schedule) {
    let mut placed = vec![false; s.temps.len()];
    let mut ci = 0;
    while ci < s.steps.len() {
        let Step::Concat { xs, out, axis } = &s.steps[ci] else {
            ci += 1;
            continue;
        };
        let (xs, out, axis) = (xs.clone(), out.clone(), *axis);
        let Buf::Temp(o) = out.buf else {
            ci += 1;
            continue;
        };
        let mut rest: Vec<(View, View)> = Vec::new();
        let mut at = 0usize;
        for x in &xs {
            let region = View {
                buf: out.buf,
                offset: out.offset + at * out.strides[axis] as usize,
                shape: x.shape.clone(),
                strides: out.strides.clone(),
                dtype: out.dtype,
            };
            at += x.shape[axis];
            if !place(s, ci, o, x, &region, &mut placed) {
                rest.push((x.clone(), region));
            }
        }
        // The parts not placed are copied where the concatenation would have put them.
        let copies: Vec<Step> = rest
            .into_iter()
            .map(|(src, dst)| Step::Copy { src, dst })
            .collect();
        let n = copies.len();
        s.steps.splice(ci..=ci, copies);
        ci += n;
    }
}

/// Move part `x` of the concatenation at step `ci` (into temp `o`) to `region`, if it qualifies.
fn place(
    s: &mut Schedule,
    ci: usize,
    o: usize,
    x: &View,
    region: &View,
    placed: &mut [bool],
) -> bool {
    let Buf::Temp(t) = x.buf else { return false };
    if t == o
        || placed[t]
        || x.offset != 0
        || !x.is_contiguous()
        || x.numel() != s.temps[t].numel
        || x.dtype != region.dtype
    {
        return false;
    }
    // Used once by this concatenation, and by no other.
    let uses_here = match &s.steps[ci] {
        Step::Concat { xs, .. } => xs.iter().filter(|v| v.buf == x.buf).count(),
        _ => 0,
    };
    if uses_here != 1
        || s.steps.iter().enumerate().any(|(i, st)| {
            i != ci && matches!(st, Step::Concat { xs, .. } if xs.iter().any(|v| v.buf == x.buf))
        })
    {
        return false;
    }
    // Written only before the concatenation: by the step that computes it, or part by part
    // when it is itself a concatenation already written in place.
    let writers: Vec<usize> = (0..s.steps.len())
        .filter(|i| step_writes(&s.steps[*i]).iter().any(|v| v.buf == x.buf))
        .collect();
    if writers.is_empty() || writers.iter().any(|w| *w > ci) {
        return false;
    }
    // Every view of it, in the part's layout, maps into the region.
    let part = View {
        shape: x.shape.clone(),
        strides: region.strides.clone(),
        ..region.clone()
    };
    let mut mapped: Vec<(usize, usize, View)> = Vec::new();
    for (i, st) in s.steps.iter_mut().enumerate() {
        if i == ci {
            continue;
        }
        for (j, v) in views_mut(st).into_iter().enumerate() {
            if v.buf == x.buf {
                match remap(v, &part) {
                    Some(m) => mapped.push((i, j, m)),
                    None => return false,
                }
            }
        }
    }
    let mut outs: Vec<(usize, View)> = Vec::new();
    for (k, (_, v)) in s.outputs.iter().enumerate() {
        if v.buf == x.buf {
            match remap(v, &part) {
                Some(m) => outs.push((k, m)),
                None => return false,
            }
        }
    }
    for (i, j, m) in mapped {
        if let Some(v) = views_mut(&mut s.steps[i]).into_iter().nth(j) {
            *v = m;
        }
    }
    for (k, m) in outs {
        s.outputs[k].1 = m;
    }
    placed[t] = true;
    true
}

/// Merge consecutive elementwise kernels with one iteration shape (see the module comment).
pub fn merge_kernels(s: &mut Schedule) {
    let mut i = 0;
    while i + 1 < s.steps.len() {
        let merged = match (&s.steps[i], &s.steps[i + 1]) {
            (Step::Kernel(a), Step::Kernel(b))
                if a.reduce.is_none() && b.reduce.is_none() && a.shape == b.shape =>
            {
                merge(a, b)
            }
            _ => None,
        };
        match merged {
            Some(k) => {
                s.steps[i] = Step::Kernel(k);
                s.steps.remove(i + 1);
            }
            None => i += 1,
        }
    }
    drop_dead_stores(s);
}

/// `a` then `b` as one kernel, if every pair of their accesses to one buffer is either the
/// same view (a value passed on, or read then overwritten element by element) or disjoint.
fn merge(a: &Kernel, b: &Kernel) -> Option<Kernel> {
    for (bv, _) in &b.stores {
        for av in &a.loads {
            if av.buf == bv.buf && av != bv && !disjoint(av, bv) {
                return None;
            }
        }
        for (av, _) in &a.stores {
            if av.buf == bv.buf && !disjoint(av, bv) {
                return None;
            }
        }
    }
    let mut k = a.clone();
    // Index of b's ops in the merged kernel.
    let mut at: Vec<usize> = Vec::with_capacity(b.ops.len());
    let mut load_of: HashMap<View, usize> = k
        .loads
        .iter()
        .enumerate()
        .map(|(i, v)| (v.clone(), i))
        .collect();
    for op in &b.ops {
        let new = match op {
            KOp::Load(l) => {
                let v = &b.loads[*l];
                // A value `a` stores: passed on.
                if let Some((_, val)) = a.stores.iter().find(|(sv, _)| sv == v) {
                    at.push(*val);
                    continue;
                }
                if a.stores
                    .iter()
                    .any(|(sv, _)| sv.buf == v.buf && !disjoint(sv, v))
                {
                    return None;
                }
                let li = match load_of.get(v) {
                    Some(li) => *li,
                    None => {
                        k.loads.push(v.clone());
                        load_of.insert(v.clone(), k.loads.len() - 1);
                        k.loads.len() - 1
                    }
                };
                KOp::Load(li)
            }
            KOp::Const(c) => KOp::Const(*c),
            KOp::Unary(u, x) => KOp::Unary(*u, at[*x]),
            KOp::Binary(op, x, y) => KOp::Binary(*op, at[*x], at[*y]),
            KOp::Select(c, x, y) => KOp::Select(at[*c], at[*x], at[*y]),
        };
        k.ops.push(new);
        at.push(k.ops.len() - 1);
    }
    for (v, val) in &b.stores {
        k.stores.push((v.clone(), at[*val]));
    }
    Some(k)
}

/// Stores of temporaries that no step and no output reads are removed (with kernels left
/// storing nothing).
fn drop_dead_stores(s: &mut Schedule) {
    let mut read = vec![false; s.temps.len()];
    for st in &s.steps {
        for v in step_reads(st) {
            if let Buf::Temp(t) = v.buf {
                read[t] = true;
            }
        }
    }
    for (_, v) in &s.outputs {
        if let Buf::Temp(t) = v.buf {
            read[t] = true;
        }
    }
    let mut dropped = 0;
    for st in &mut s.steps {
        if let Step::Kernel(k) = st
            && k.reduce.is_none()
        {
            let before = k.stores.len();
            k.stores
                .retain(|(v, _)| !matches!(v.buf, Buf::Temp(t) if !read[t]));
            dropped += before - k.stores.len();
        }
    }
    s.steps
        .retain(|st| !matches!(st, Step::Kernel(k) if k.stores.is_empty()));
    s.fused += dropped;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::interp::Interp;
    use crate::backend::{Backend, HostTensor};
    use crate::ir::build::FnBuilder;
    use crate::ir::{DType, Program, UnaryOp, schedule};

    /// Concatenations of concatenations (an LSTM's backward pass stacks each step's four gate
    /// gradients, then stacks the steps for the weight gradient): every part is written where
    /// the outer concatenation puts it, with no copy, also when the inner one has another
    /// reader; the values match the interpreter.
    #[test]
    fn nested_concatenations_are_written_in_place() {
        let mut states = Vec::new();
        let mut b = FnBuilder::new("f", &mut states);
        let x = b.input("x", vec![4, 3, 8], DType::F32);
        let w = b.input("w", vec![16, 2], DType::F32);
        let mut inner = Vec::new();
        let mut products = Vec::new();
        for t in 0..3 {
            let s = b.slice(x, 1, t, 1);
            let s = b.reshape(s, &[4, 8]);
            let a = b.unary(UnaryOp::Sigmoid, s);
            let g = b.unary(UnaryOp::Tanh, s);
            let c = b.concat(vec![a, g], 1);
            products.push(b.matmul(c, w));
            inner.push(b.reshape(c, &[4, 1, 16]));
        }
        let outer = b.concat(inner, 1);
        b.output("outer", outer);
        let p0 = b.add(products[0], products[1]);
        let p = b.add(p0, products[2]);
        b.output("p", p);
        let f = b.finish();
        let prog = Program {
            states,
            functions: vec![f],
        };
        let s = schedule::schedule(&prog, &prog.functions[0]);
        let copies = s
            .steps
            .iter()
            .filter(|st| matches!(st, Step::Copy { .. } | Step::Concat { .. }))
            .count();
        assert_eq!(copies, 0, "{:#?}", s.steps);

        let xs: Vec<f32> = (0..96).map(|i| (i as f32 * 0.71).sin() * 2.0).collect();
        let ws: Vec<f32> = (0..32).map(|i| (i as f32 * 0.23).cos()).collect();
        let inputs = [
            HostTensor::f32(vec![4, 3, 8], xs),
            HostTensor::f32(vec![16, 2], ws),
        ];
        let run = |be: &dyn Backend| -> Vec<Vec<f32>> {
            let mut exe = be.compile(&prog).expect("compiles");
            exe.run(0, &inputs)
                .expect("runs")
                .iter()
                .map(|t| t.as_f32().to_vec())
                .collect()
        };
        let want = run(&Interp);
        let got = run(&crate::backend::cpu::Cpu::new());
        for (g, w) in got.iter().zip(&want) {
            for (a, b) in g.iter().zip(w) {
                assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }
}
