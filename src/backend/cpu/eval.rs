//! A fused kernel evaluated one element at a time, in plain Rust: the fallback for kernels the
//! code generator does not handle, and a second implementation to test generated code against.

use super::library::Raw;
use crate::backend::interp::{binary, unary};
use crate::ir::ReduceOp;
use crate::ir::schedule::{KOp, Kernel};

fn eval_ops(k: &Kernel, loads: &[Raw<'_>], load_off: &[isize], vals: &mut [f32]) {
    for (i, op) in k.ops.iter().enumerate() {
        vals[i] = match op {
            // SAFETY: the offset belongs to a checked view.
            KOp::Load(l) => unsafe { *loads[*l].ptr.offset(load_off[*l]) },
            KOp::Const(bits) => f32::from_bits(*bits),
            KOp::Unary(u, a) => unary(*u, vals[*a]),
            KOp::Binary(b, a, c) => binary(*b, vals[*a], vals[*c]),
            KOp::Select(c, a, b) => {
                if vals[*c] != 0.0 {
                    vals[*a]
                } else {
                    vals[*b]
                }
            }
        };
    }
}

/// Run `k` on resolved views (each with the kernel's iteration shape).
pub fn run(k: &Kernel, loads: &[Raw<'_>], stores: &[Raw<'_>]) {
    let rank = k.shape.len();
    let reduced: Vec<usize> = k
        .reduce
        .as_ref()
        .map(|(_, a)| a.clone())
        .unwrap_or_default();
    let kept: Vec<usize> = (0..rank).filter(|a| !reduced.contains(a)).collect();
    let count = |axes: &[usize]| axes.iter().map(|a| k.shape[*a]).product::<usize>();
    let mut vals = vec![0f32; k.ops.len()];
    let mut idx = vec![0usize; rank];
    let n_side = stores.len() - usize::from(k.reduce.is_some());
    for o in 0..count(&kept) {
        let mut rem = o;
        for a in kept.iter().rev() {
            idx[*a] = rem % k.shape[*a];
            rem /= k.shape[*a];
        }
        let mut acc = match &k.reduce {
            Some((ReduceOp::Max, _)) => f64::NEG_INFINITY,
            _ => 0.0,
        };
        for r in 0..count(&reduced) {
            let mut rem = r;
            for a in reduced.iter().rev() {
                idx[*a] = rem % k.shape[*a];
                rem /= k.shape[*a];
            }
            let off = |v: &Raw<'_>| {
                idx.iter()
                    .zip(v.strides)
                    .map(|(i, s)| *i as isize * s)
                    .sum::<isize>()
            };
            let load_off: Vec<isize> = loads.iter().map(off).collect();
            eval_ops(k, loads, &load_off, &mut vals);
            for (s, (_, src)) in stores.iter().zip(&k.stores).take(n_side) {
                // SAFETY: the offset belongs to a checked view.
                unsafe { *s.ptr.offset(off(s)) = vals[*src] };
            }
            if let Some((op, _)) = &k.reduce {
                let v = f64::from(vals[k.stores[n_side].1]);
                acc = match op {
                    ReduceOp::Sum => acc + v,
                    ReduceOp::Max => {
                        if v.is_nan() || acc.is_nan() {
                            f64::NAN
                        } else {
                            acc.max(v)
                        }
                    }
                };
            }
        }
        if k.reduce.is_some() {
            let s = &stores[n_side];
            let off: isize = idx
                .iter()
                .zip(s.strides)
                .map(|(i, st)| *i as isize * st)
                .sum();
            // SAFETY: the offset belongs to a checked view.
            unsafe { *s.ptr.offset(off) = acc as f32 };
        }
    }
}
