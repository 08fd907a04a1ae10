//! The static memory plan of a schedule: every temporary gets a fixed offset in one arena,
//! reusing the space of temporaries that are no longer needed. Allocated once when compiled:
//! nothing is allocated per step. `check_bounds` proves every view inside its buffer, so
//! compiled back ends index without checks.

use super::schedule::{Buf, Schedule, View, step_reads, step_writes};
use super::{Function, Program};
use crate::diagnostics::Diagnostic;

/// Offsets are aligned to this many elements (64 bytes).
pub const ALIGN: usize = 16;

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Plan {
    /// Offset of each temporary, in elements.
    pub offsets: Vec<usize>,
    /// Arena size, in elements.
    pub size: usize,
}

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// First-fit allocation over the steps: a step's outputs are placed before the temporaries it
/// reads for the last time are freed, so no step's output overlaps its inputs.
pub fn plan(s: &Schedule) -> Plan {
    let n = s.temps.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    let end = s.steps.len();
    for (i, step) in s.steps.iter().enumerate() {
        for v in step_writes(step) {
            if let Buf::Temp(t) = v.buf {
                first[t] = first[t].min(i);
                last[t] = last[t].max(i);
            }
        }
        for v in step_reads(step) {
            if let Buf::Temp(t) = v.buf {
                last[t] = last[t].max(i);
            }
        }
    }
    for (_, v) in &s.outputs {
        if let Buf::Temp(t) = v.buf {
            last[t] = end;
        }
    }
    // Free blocks as (offset, size), sorted by offset.
    let mut free: Vec<(usize, usize)> = Vec::new();
    let mut top = 0usize;
    let mut offsets = vec![0usize; n];
    let mut by_first: Vec<Vec<usize>> = vec![Vec::new(); end + 1];
    let mut by_last: Vec<Vec<usize>> = vec![Vec::new(); end + 1];
    for t in 0..n {
        if first[t] == usize::MAX {
            continue;
        }
        by_first[first[t]].push(t);
        by_last[last[t]].push(t);
    }
    for step in 0..=end {
        for &t in &by_first[step] {
            let size = round_up(s.temps[t].numel.max(1));
            match free.iter().position(|(_, sz)| *sz >= size) {
                Some(i) => {
                    let (off, sz) = free[i];
                    offsets[t] = off;
                    if sz == size {
                        free.remove(i);
                    } else {
                        free[i] = (off + size, sz - size);
                    }
                }
                None => {
                    offsets[t] = top;
                    top += size;
                }
            }
        }
        for &t in &by_last[step] {
            let size = round_up(s.temps[t].numel.max(1));
            free.push((offsets[t], size));
            free.sort_unstable();
            // Coalesce neighbours.
            let mut merged: Vec<(usize, usize)> = Vec::with_capacity(free.len());
            for (o, z) in free.drain(..) {
                match merged.last_mut() {
                    Some((lo, lz)) if *lo + *lz == o => *lz += z,
                    _ => merged.push((o, z)),
                }
            }
            free = merged;
        }
    }
    Plan { offsets, size: top }
}

/// Lifetimes of each temporary as (first step, last step), for tests and dumps.
pub fn lifetimes(s: &Schedule) -> Vec<(usize, usize)> {
    let mut out = vec![(usize::MAX, 0); s.temps.len()];
    for (i, step) in s.steps.iter().enumerate() {
        for v in step_writes(step).into_iter().chain(step_reads(step)) {
            if let Buf::Temp(t) = v.buf {
                out[t].0 = out[t].0.min(i);
                out[t].1 = out[t].1.max(i);
            }
        }
    }
    for (_, v) in &s.outputs {
        if let Buf::Temp(t) = v.buf {
            out[t].1 = s.steps.len();
        }
    }
    out
}

/// Every view of every step lies inside its buffer: checked once, so the steps' pointer
/// arithmetic needs no checks when it runs.
pub fn check_bounds(p: &Program, f: &Function, s: &Schedule) -> Result<(), Diagnostic> {
    let size = |b: Buf| -> usize {
        match b {
            Buf::Input(i) => f.inputs.get(i).map_or(0, |d| d.shape.iter().product()),
            Buf::State(i) => p.states.get(i).map_or(0, |d| d.shape.iter().product()),
            Buf::Temp(t) => s.temps.get(t).map_or(0, |d| d.numel),
        }
    };
    let check = |v: &View| -> Result<(), Diagnostic> {
        if v.shape.contains(&0) {
            return Ok(());
        }
        let max = v.offset as isize
            + v.shape
                .iter()
                .zip(&v.strides)
                .map(|(d, st)| (*d as isize - 1) * st)
                .sum::<isize>();
        let ok = v.strides.iter().all(|st| *st >= 0)
            && (max as usize) < size(v.buf)
            && v.shape.len() == v.strides.len();
        if ok {
            Ok(())
        } else {
            Err(Diagnostic::internal(format!(
                "a view of {:?} reaches outside its buffer in `{}`",
                v.buf, f.name
            )))
        }
    };
    for step in &s.steps {
        for v in step_reads(step).into_iter().chain(step_writes(step)) {
            check(v)?;
        }
    }
    for (_, v) in &s.outputs {
        check(v)?;
    }
    Ok(())
}
