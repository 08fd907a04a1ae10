//! Matrix products as cuBLAS calls. mlx's views are row-major with arbitrary strides; cuBLAS
//! is column-major. A row-major `[R, C]` matrix with row stride `ld` is, to cuBLAS, the
//! column-major `[C, R]` matrix `X^T` with leading dimension `ld`; a transposed view (unit row
//! stride) is `X` itself. So `C = A @ B` with a row-major output is computed as
//! `C^T = B^T A^T` (the operands swap places), with a column-major output as `C = A B`, and
//! each operand gets `N` or `T` from its own layout: no transpose is ever copied. Batch axes
//! that collapse to one stride per operand become one strided-batched call; other batches get
//! one call per entry. A matrix with neither stride 1 (a broadcast) is copied first (by the
//! planner; see `usable`).

use super::plan::Loc;
use crate::ir::schedule::View;

/// One `cublasSgemmStridedBatched` call with `alpha = 1`, `beta = 0`, in cuBLAS's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm<P> {
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: i32,
    pub n: i32,
    pub k: i32,
    pub a: P,
    pub lda: i32,
    pub stride_a: i64,
    pub b: P,
    pub ldb: i32,
    pub stride_b: i64,
    pub c: P,
    pub ldc: i32,
    pub stride_c: i64,
    pub batch: i32,
}

impl<P: Copy> Gemm<P> {
    /// The same call with its three matrices placed by `f`.
    pub fn try_map<Q, E>(&self, mut f: impl FnMut(P) -> Result<Q, E>) -> Result<Gemm<Q>, E> {
        Ok(Gemm {
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            m: self.m,
            n: self.n,
            k: self.k,
            a: f(self.a)?,
            lda: self.lda,
            stride_a: self.stride_a,
            b: f(self.b)?,
            ldb: self.ldb,
            stride_b: self.stride_b,
            c: f(self.c)?,
            ldc: self.ldc,
            stride_c: self.stride_c,
            batch: self.batch,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Major {
    /// Unit column stride: cuBLAS sees the transpose.
    Row,
    /// Unit row stride: cuBLAS sees the matrix.
    Col,
}

/// How cuBLAS can read a `[rows, cols]` matrix with strides (`sr`, `sc`): its major order and
/// leading dimension, if it has one (the leading dimension must cover the other side).
fn layout(rows: usize, cols: usize, sr: isize, sc: isize) -> Option<(Major, usize)> {
    if (cols == 1 || sc == 1) && (rows == 1 || sr >= cols.max(1) as isize) {
        let ld = if rows == 1 { cols.max(1) } else { sr as usize };
        return Some((Major::Row, ld));
    }
    if (rows == 1 || sr == 1) && (cols == 1 || sc >= rows.max(1) as isize) {
        let ld = if cols == 1 { rows.max(1) } else { sc as usize };
        return Some((Major::Col, ld));
    }
    None
}

fn matrix(v: &View) -> Option<(Major, usize)> {
    let r = v.shape.len();
    layout(
        v.shape[r - 2],
        v.shape[r - 1],
        v.strides[r - 2],
        v.strides[r - 1],
    )
}

/// Whether cuBLAS can use this operand of a product where it lies.
pub fn usable(v: &View) -> bool {
    v.shape.len() >= 2 && matrix(v).is_some()
}

/// Batch axes as one (count, stride), when they collapse.
fn collapse(shape: &[usize], strides: &[isize]) -> Option<(usize, isize)> {
    let axes: Vec<(usize, isize)> = shape
        .iter()
        .copied()
        .zip(strides.iter().copied())
        .filter(|(d, _)| *d != 1)
        .collect();
    for w in axes.windows(2) {
        if w[0].1 != w[1].1 * w[1].0 as isize {
            return None;
        }
    }
    let count = axes.iter().map(|(d, _)| d).product();
    Some((count, axes.last().map_or(0, |(_, s)| *s)))
}

fn i32_of(v: usize) -> Option<i32> {
    i32::try_from(v).ok()
}

fn at(l: Loc, off: isize) -> Loc {
    Loc {
        region: l.region,
        offset: (l.offset as isize + off) as usize,
    }
}

/// The cuBLAS calls computing `out = a @ b` (batched over equal leading axes), each view at
/// its location; `None` when a size exceeds cuBLAS's 32-bit arguments or a view has no
/// layout cuBLAS reads (see `usable`).
pub fn calls(a: &View, al: Loc, b: &View, bl: Loc, out: &View, ol: Loc) -> Option<Vec<Gemm<Loc>>> {
    let r = a.shape.len();
    let (m, k, n) = (a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]);
    let (la, lb, lc) = (matrix(a)?, matrix(b)?, matrix(out)?);
    let (m32, n32, k32) = (i32_of(m)?, i32_of(n)?, i32_of(k)?);
    let (lda, ldb, ldc) = (i32_of(la.1)?, i32_of(lb.1)?, i32_of(lc.1)?);
    // One entry: cuBLAS's (first, second) operands in the orientation the output needs.
    let one = |pa: Loc, pb: Loc, pc: Loc, sa: i64, sb: i64, sc: i64, batch: i32| {
        if lc.0 == Major::Row {
            Gemm {
                trans_a: lb.0 != Major::Row,
                trans_b: la.0 != Major::Row,
                m: n32,
                n: m32,
                k: k32,
                a: pb,
                lda: ldb,
                stride_a: sb,
                b: pa,
                ldb: lda,
                stride_b: sa,
                c: pc,
                ldc,
                stride_c: sc,
                batch,
            }
        } else {
            Gemm {
                trans_a: la.0 != Major::Col,
                trans_b: lb.0 != Major::Col,
                m: m32,
                n: n32,
                k: k32,
                a: pa,
                lda,
                stride_a: sa,
                b: pb,
                ldb,
                stride_b: sb,
                c: pc,
                ldc,
                stride_c: sc,
                batch,
            }
        }
    };
    let bshape = &a.shape[..r - 2];
    let batch = |v: &View| collapse(bshape, &v.strides[..r - 2]);
    if let (Some((count, sa)), Some((_, sb)), Some((_, sc))) = (batch(a), batch(b), batch(out)) {
        return Some(vec![one(
            al,
            bl,
            ol,
            sa as i64,
            sb as i64,
            sc as i64,
            i32_of(count.max(1))?,
        )]);
    }
    // One call per batch entry.
    let count: usize = bshape.iter().product();
    let mut idx = vec![0usize; bshape.len()];
    let mut out_calls = Vec::with_capacity(count);
    for _ in 0..count {
        let off = |v: &View| -> isize {
            idx.iter()
                .zip(&v.strides[..r - 2])
                .map(|(i, s)| *i as isize * s)
                .sum()
        };
        out_calls.push(one(
            at(al, off(a)),
            at(bl, off(b)),
            at(ol, off(out)),
            0,
            0,
            0,
            1,
        ));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < bshape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Some(out_calls)
}

/// One line for listings.
pub fn describe(g: &Gemm<Loc>) -> String {
    let t = |x: bool| if x { "T" } else { "N" };
    format!(
        "sgemm_strided_batched {}{} m={} n={} k={} a={} lda={} sa={} b={} ldb={} sb={} c={} ldc={} sc={} batch={}",
        t(g.trans_a),
        t(g.trans_b),
        g.m,
        g.n,
        g.k,
        super::plan::loc_text(&g.a),
        g.lda,
        g.stride_a,
        super::plan::loc_text(&g.b),
        g.ldb,
        g.stride_b,
        super::plan::loc_text(&g.c),
        g.ldc,
        g.stride_c,
        g.batch
    )
}

/// What cuBLAS computes, by the BLAS definition (column-major, `alpha = 1`, `beta = 0`), over
/// host memory: the reference the mapping above is tested against, and the emulator's GEMM.
///
/// # Safety
/// The addresses must be host pointers to `f32` arrays holding every element the call reads
/// or writes.
#[cfg(test)]
pub(crate) unsafe fn reference(g: &Gemm<u64>) {
    for p in 0..g.batch as i64 {
        let a = (g.a as *const f32).wrapping_offset((p * g.stride_a) as isize);
        let b = (g.b as *const f32).wrapping_offset((p * g.stride_b) as isize);
        let c = (g.c as *mut f32).wrapping_offset((p * g.stride_c) as isize);
        for j in 0..g.n as isize {
            for i in 0..g.m as isize {
                let mut acc = 0.0f32;
                for l in 0..g.k as isize {
                    let ea = if g.trans_a {
                        l + i * g.lda as isize
                    } else {
                        i + l * g.lda as isize
                    };
                    let eb = if g.trans_b {
                        j + l * g.ldb as isize
                    } else {
                        l + j * g.ldb as isize
                    };
                    // SAFETY: the caller guarantees the arrays cover the call.
                    acc += unsafe { *a.offset(ea) * *b.offset(eb) };
                }
                // SAFETY: as above.
                unsafe { *c.offset(i + j * g.ldc as isize) = acc };
            }
        }
    }
}
