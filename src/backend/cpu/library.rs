//! The steps that are not fused kernels, over raw strided buffers: matrix products (through
//! `matrixmultiply`, whose strides make transposed operands free), windows (im2col, col2im),
//! gathers, pads, concatenations, random numbers, one-hot rows, casts and copies.
//!
//! Every view was checked against its buffer's length when the program was compiled
//! (`super::check_bounds`), which is what makes the pointer arithmetic here sound.

use super::pool::Pool;
use crate::rng;

/// A resolved view: base pointer (offset applied), shape and strides in elements.
#[derive(Clone, Copy)]
pub struct Raw<'a> {
    pub ptr: *mut f32,
    pub shape: &'a [usize],
    pub strides: &'a [isize],
}

// SAFETY: tasks of one step write disjoint elements; raw views are only shared within a step.
unsafe impl Send for Raw<'_> {}
unsafe impl Sync for Raw<'_> {}

impl Raw<'_> {
    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Element offsets of the view in row-major order of its shape.
    pub fn offsets(&self) -> Offsets<'_> {
        Offsets {
            shape: self.shape,
            strides: self.strides,
            index: vec![0; self.shape.len()],
            offset: 0,
            left: self.numel(),
        }
    }

    unsafe fn at(&self, off: isize) -> *mut f32 {
        // SAFETY: the caller passes an offset of this view, which lies inside its buffer.
        unsafe { self.ptr.offset(off) }
    }
}

pub struct Offsets<'a> {
    shape: &'a [usize],
    strides: &'a [isize],
    index: Vec<usize>,
    offset: isize,
    left: usize,
}

impl Iterator for Offsets<'_> {
    type Item = isize;
    fn next(&mut self) -> Option<isize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let cur = self.offset;
        for d in (0..self.shape.len()).rev() {
            self.index[d] += 1;
            self.offset += self.strides[d];
            if self.index[d] < self.shape[d] {
                break;
            }
            self.offset -= self.strides[d] * self.shape[d] as isize;
            self.index[d] = 0;
        }
        Some(cur)
    }
}

/// The view without its last axis (for walking rows).
fn rows<'a>(r: &Raw<'a>) -> Raw<'a> {
    Raw {
        ptr: r.ptr,
        shape: &r.shape[..r.shape.len() - 1],
        strides: &r.strides[..r.strides.len() - 1],
    }
}

/// `dst = src` element by element (same shape): whole rows at a time where both are
/// contiguous along the last axis; a transposing copy (the unit-stride axes differ) goes by
/// square tiles so that both sides stay in cache.
pub fn copy(src: Raw<'_>, dst: Raw<'_>) {
    let r = src.shape.len();
    if r > 0 && src.strides[r - 1] == 1 && dst.strides[r - 1] == 1 {
        let len = src.shape[r - 1];
        for (s, d) in rows(&src).offsets().zip(rows(&dst).offsets()) {
            // SAFETY: each row lies inside its checked view; the views do not overlap
            // (a step's output never aliases its inputs).
            unsafe { std::ptr::copy_nonoverlapping(src.at(s), dst.at(d), len) };
        }
        return;
    }
    let unit = |v: &Raw<'_>| (0..r).rev().find(|a| v.strides[*a] == 1 && v.shape[*a] > 1);
    if let (Some(sa), Some(da)) = (unit(&src), unit(&dst))
        && sa != da
    {
        transpose_copy(src, dst, sa, da);
        return;
    }
    // Generic: walk the axis where the destination is contiguous innermost, if any.
    for (s, d) in src.offsets().zip(dst.offsets()) {
        // SAFETY: offsets of checked views.
        unsafe { *dst.at(d) = *src.at(s) };
    }
}

/// A copy whose source is contiguous along axis `sa` and destination along `da`: every other
/// axis is walked outside, and the (`sa`, `da`) planes are copied in 32 x 32 tiles.
fn transpose_copy(src: Raw<'_>, dst: Raw<'_>, sa: usize, da: usize) {
    const TILE: usize = 32;
    let r = src.shape.len();
    let outer: Vec<usize> = (0..r).filter(|a| *a != sa && *a != da).collect();
    let oshape: Vec<usize> = outer.iter().map(|a| src.shape[*a]).collect();
    let sst: Vec<isize> = outer.iter().map(|a| src.strides[*a]).collect();
    let dst_st: Vec<isize> = outer.iter().map(|a| dst.strides[*a]).collect();
    let so = Raw {
        ptr: src.ptr,
        shape: &oshape,
        strides: &sst,
    };
    let dso = Raw {
        ptr: dst.ptr,
        shape: &oshape,
        strides: &dst_st,
    };
    let (ns, nd) = (src.shape[sa], src.shape[da]);
    // Source steps along `da` by `s_da`; destination steps along `sa` by `d_sa`.
    let (s_da, d_sa) = (src.strides[da], dst.strides[sa]);
    for (s0, d0) in so.offsets().zip(dso.offsets()) {
        for tj in (0..nd).step_by(TILE) {
            for ti in (0..ns).step_by(TILE) {
                for j in tj..(tj + TILE).min(nd) {
                    let sb = s0 + j as isize * s_da;
                    let db = d0 + j as isize;
                    for i in ti..(ti + TILE).min(ns) {
                        // SAFETY: (i, j) and the outer offsets index checked views.
                        unsafe { *dst.at(db + i as isize * d_sa) = *src.at(sb + i as isize) };
                    }
                }
            }
        }
    }
}

/// Every element of the view set to 0.
pub fn zero(out: Raw<'_>) {
    let r = out.shape.len();
    if r > 0 && out.strides[r - 1] == 1 {
        let len = out.shape[r - 1];
        for o in rows(&out).offsets() {
            // SAFETY: each row lies inside the checked view.
            unsafe { std::ptr::write_bytes(out.at(o), 0, len) };
        }
        return;
    }
    for o in out.offsets() {
        // SAFETY: offsets of the checked view.
        unsafe { *out.at(o) = 0.0 };
    }
}

/// Below this many multiply-adds a matrix product runs on one thread.
const GEMM_MIN_TASK: usize = 1 << 18;

/// `out = a @ b`, batched over equal leading axes. Large products are split across the pool
/// by blocks of output rows or columns (or by batch entries): every output element is still
/// computed by the same kernel over the same `k` order, so the split never changes a bit of
/// the result.
pub fn matmul(pool: &Pool, a: Raw<'_>, b: Raw<'_>, out: Raw<'_>) {
    let r = a.shape.len();
    let (m, k, n) = (a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]);
    let bshape = &a.shape[..r - 2];
    let batch: usize = bshape.iter().product();
    // Each batch entry's element offsets in a, b and out.
    let mut offsets = Vec::with_capacity(batch);
    let mut idx = vec![0usize; r - 2];
    for _ in 0..batch {
        let off = |s: &[isize]| {
            idx.iter()
                .zip(s)
                .map(|(i, st)| *i as isize * st)
                .sum::<isize>()
        };
        offsets.push((off(a.strides), off(b.strides), off(out.strides)));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < bshape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    // One product of rows `rows` and columns `cols` of batch entry `e`.
    let gemm = |e: usize, rows: (usize, usize), cols: (usize, usize)| {
        let (oa, ob, oc) = offsets[e];
        let (rs, cs) = (rows.0 as isize, cols.0 as isize);
        // SAFETY: every element index in the product is inside the checked views; parts write
        // disjoint blocks of the output.
        unsafe {
            matrixmultiply::sgemm(
                rows.1 - rows.0,
                k,
                cols.1 - cols.0,
                1.0,
                a.at(oa + rs * a.strides[r - 2]),
                a.strides[r - 2],
                a.strides[r - 1],
                b.at(ob + cs * b.strides[r - 1]),
                b.strides[r - 2],
                b.strides[r - 1],
                0.0,
                out.at(oc + rs * out.strides[r - 2] + cs * out.strides[r - 1]),
                out.strides[r - 2],
                out.strides[r - 1],
            );
        }
    };
    let work = m * n * k.max(1);
    let parts = (work * batch / GEMM_MIN_TASK).clamp(1, pool.threads());
    if batch == 1 && m * n <= SPLIT_K_MAX_OUT && k >= 2 * SPLIT_K {
        split_k(pool, a, b, out, offsets[0]);
        return;
    }
    if parts <= 1 {
        (0..batch).for_each(|e| gemm(e, (0, m), (0, n)));
    } else if batch >= parts {
        let per = batch.div_ceil(parts);
        pool.run(parts, &|t| {
            (t * per..((t + 1) * per).min(batch)).for_each(|e| gemm(e, (0, m), (0, n)))
        });
    } else {
        // Split the longer side in blocks that are whole multiples of the kernels' tiles.
        let split = |len: usize| -> Vec<(usize, usize)> {
            let block = len.div_ceil(parts).next_multiple_of(16).max(16);
            (0..len.div_ceil(block))
                .map(|i| (i * block, ((i + 1) * block).min(len)))
                .collect()
        };
        let by_rows = m >= n;
        let blocks = split(if by_rows { m } else { n });
        for e in 0..batch {
            pool.run(blocks.len(), &|t| {
                if by_rows {
                    gemm(e, blocks[t], (0, n));
                } else {
                    gemm(e, (0, m), blocks[t]);
                }
            });
        }
    }
}

/// Products with a small output and a long inner dimension (a convolution's weight gradient
/// sums over every position of the batch) are split along `k` into blocks of this many.
const SPLIT_K: usize = 4096;
const SPLIT_K_MAX_OUT: usize = 64 * 64;

/// `out = a @ b` as a sum of products of `SPLIT_K`-long blocks of `k`, computed in parallel
/// and added in block order. The blocks do not depend on the number of threads, so neither
/// does the result.
fn split_k(pool: &Pool, a: Raw<'_>, b: Raw<'_>, out: Raw<'_>, offs: (isize, isize, isize)) {
    let r = a.shape.len();
    let (m, k, n) = (a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]);
    let blocks = k.div_ceil(SPLIT_K);
    let mut partial = vec![0.0f32; blocks * m * n];
    let part_ptr = SendPtr(partial.as_mut_ptr());
    let (oa, ob, _) = offs;
    pool.run(blocks, &|t| {
        let k0 = t * SPLIT_K;
        let kk = SPLIT_K.min(k - k0);
        let p = &part_ptr;
        // SAFETY: block `t` reads rows `k0..k0 + kk` of the checked operands and writes its own
        // `m * n` part of `partial`.
        unsafe {
            matrixmultiply::sgemm(
                m,
                kk,
                n,
                1.0,
                a.at(oa + k0 as isize * a.strides[r - 1]),
                a.strides[r - 2],
                a.strides[r - 1],
                b.at(ob + k0 as isize * b.strides[r - 2]),
                b.strides[r - 2],
                b.strides[r - 1],
                0.0,
                p.0.add(t * m * n),
                n as isize,
                1,
            );
        }
    });
    let (_, _, oc) = offs;
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for t in 0..blocks {
                acc += partial[t * m * n + i * n + j];
            }
            // SAFETY: an element of the checked output.
            unsafe {
                *out.at(oc + i as isize * out.strides[r - 2] + j as isize * out.strides[r - 1]) =
                    acc
            };
        }
    }
}

struct SendPtr(*mut f32);
// SAFETY: tasks write disjoint parts of the buffer behind the pointer.
unsafe impl Sync for SendPtr {}

/// Windows of `x` ([N, C, H, W]) as rows: `out[b, oy, ox, (c, i, j)] = x[b, c, oy*s+i-p,
/// ox*s+j-p]`, `pad` outside. One batch element per task: its planes are first copied into a
/// padded, contiguous scratch (so every later read is in bounds and unit-stride, whatever the
/// input's layout), then each window row is a short branch-free copy.
pub fn im2col(
    pool: &Pool,
    x: Raw<'_>,
    out: Raw<'_>,
    kernel: [usize; 2],
    stride: usize,
    padding: usize,
    pad: f32,
) {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let (oh, ow) = (out.shape[1], out.shape[2]);
    let (kh, kw) = (kernel[0], kernel[1]);
    let (hp, wp) = (h + 2 * padding, w + 2 * padding);
    let xs = x.strides;
    let os = out.strides;
    let unit = os[3] == 1;
    // Without padding, rows of unit stride are read where they lie; otherwise from the scratch.
    let direct = padding == 0 && xs[3] == 1;
    pool.run(n, &|b| {
        let mut planes = Vec::new();
        let (pp, cst, rst) = if direct {
            // SAFETY: batch element `b` of the checked input.
            let p = unsafe { x.at(b as isize * xs[0]) } as *const f32;
            (p, xs[1], xs[2])
        } else {
            planes.resize(c * hp * wp, pad);
            for ch in 0..c {
                for y in 0..h {
                    let row = b as isize * xs[0] + ch as isize * xs[1] + y as isize * xs[2];
                    let dst = &mut planes[(ch * hp + y + padding) * wp + padding..][..w];
                    for (xx, d) in dst.iter_mut().enumerate() {
                        // SAFETY: an element of the checked input view.
                        *d = unsafe { *x.at(row + xx as isize * xs[3]) };
                    }
                }
            }
            (planes.as_ptr(), (hp * wp) as isize, wp as isize)
        };
        for oy in 0..oh {
            // For each (channel, kernel row) the source row is fixed and the window moves
            // along it: one tight loop over the output pixels of row `oy`.
            let mut j = 0usize;
            for ch in 0..c {
                for i in 0..kh {
                    let src = ch as isize * cst + (oy * stride + i) as isize * rst;
                    let base = b as isize * os[0] + oy as isize * os[1] + j as isize * os[3];
                    // SAFETY: `src + ox*stride + jj` stays inside the image (padded or not:
                    // oy*stride + i < hp, (ow-1)*stride + kw <= wp), and the output offsets are
                    // elements of batch `b` of the checked output, which belongs to this task.
                    unsafe {
                        let s = pp.offset(src);
                        let d = out.at(base);
                        if unit {
                            match kw {
                                2 => window_rows::<2, false>(s, stride, d, os[2], ow),
                                3 => window_rows::<3, false>(s, stride, d, os[2], ow),
                                5 => window_rows::<5, false>(s, stride, d, os[2], ow),
                                _ => window_rows_any::<false>(s, stride, d, os[2], 1, ow, kw),
                            }
                        } else {
                            window_rows_any::<false>(s, stride, d, os[2], os[3], ow, kw);
                        }
                    }
                    j += kw;
                }
            }
        }
    });
}

/// `n` window rows of `K` elements: row `t` reads `K` consecutive elements at
/// `src + t*src_step` and writes (or, with `ADD`, adds) them to `K` consecutive elements at
/// `dst + t*dst_step`. `K` is a constant for the usual kernel widths, so each row is a few
/// moves.
///
/// # Safety
/// Every address touched must lie in a live buffer; destinations must not be read or written
/// by another thread meanwhile.
#[inline(always)]
unsafe fn window_rows<const K: usize, const ADD: bool>(
    src: *const f32,
    src_step: impl StepLike,
    dst: *mut f32,
    dst_step: impl StepLike,
    n: usize,
) {
    let (ss, ds) = (src_step.step(), dst_step.step());
    for t in 0..n as isize {
        // SAFETY: the caller's contract.
        unsafe {
            let s = src.offset(t * ss);
            let d = dst.offset(t * ds);
            for jj in 0..K {
                if ADD {
                    *d.add(jj) += *s.add(jj);
                } else {
                    *d.add(jj) = *s.add(jj);
                }
            }
        }
    }
}

/// `window_rows` for any width and element strides (`elem` on the strided side).
///
/// # Safety
/// As for `window_rows`.
#[allow(clippy::too_many_arguments)]
unsafe fn window_rows_any<const ADD: bool>(
    src: *const f32,
    src_step: impl StepLike,
    dst: *mut f32,
    dst_step: impl StepLike,
    elem: isize,
    n: usize,
    k: usize,
) {
    let (ss, ds) = (src_step.step(), dst_step.step());
    // The strided side is the run tensor: the output of im2col, the input of col2im.
    let (se, de) = if ADD { (elem, 1) } else { (1, elem) };
    for t in 0..n as isize {
        for jj in 0..k as isize {
            // SAFETY: the caller's contract.
            unsafe {
                let s = src.offset(t * ss + jj * se);
                let d = dst.offset(t * ds + jj * de);
                if ADD {
                    *d += *s;
                } else {
                    *d = *s;
                }
            }
        }
    }
}

/// A step between window rows, as `usize` (a stride) or `isize` (a view's stride).
trait StepLike {
    fn step(self) -> isize;
}

impl StepLike for usize {
    fn step(self) -> isize {
        self as isize
    }
}

impl StepLike for isize {
    fn step(self) -> isize {
        self
    }
}

/// The adjoint of `im2col`: window entries summed back into NCHW, one batch element per task,
/// in a fixed order (windows in row-major order, then their entries), accumulated in a padded
/// contiguous scratch whose interior is then written out.
pub fn col2im(
    pool: &Pool,
    cols: Raw<'_>,
    out: Raw<'_>,
    kernel: [usize; 2],
    stride: usize,
    padding: usize,
) {
    let (n, c, h, w) = (out.shape[0], out.shape[1], out.shape[2], out.shape[3]);
    let (oh, ow) = (cols.shape[1], cols.shape[2]);
    let (kh, kw) = (kernel[0], kernel[1]);
    let (hp, wp) = (h + 2 * padding, w + 2 * padding);
    let cs = cols.strides;
    let os = out.strides;
    let unit = cs[3] == 1;
    // Without padding, sums go straight into output rows of unit stride (zeroed first);
    // otherwise into a padded scratch whose interior is then written out.
    let direct = padding == 0 && os[3] == 1;
    pool.run(n, &|b| {
        let mut planes = Vec::new();
        let (pp, cst, rst) = if direct {
            for ch in 0..c {
                for y in 0..h {
                    let row = b as isize * os[0] + ch as isize * os[1] + y as isize * os[2];
                    // SAFETY: a unit-stride row of batch `b`, which belongs to this task.
                    unsafe { std::ptr::write_bytes(out.at(row), 0, w) };
                }
            }
            // SAFETY: batch element `b` of the checked output.
            (unsafe { out.at(b as isize * os[0]) }, os[1], os[2])
        } else {
            planes.resize(c * hp * wp, 0.0f32);
            (planes.as_mut_ptr(), (hp * wp) as isize, wp as isize)
        };
        for oy in 0..oh {
            // Same walk as `im2col`, adding instead of copying. For any output element the
            // contributions still arrive in window order (oy, then ox): `oy` fixes the kernel
            // row, and `ox` runs ascending inside.
            let mut j = 0usize;
            for ch in 0..c {
                for i in 0..kh {
                    let dst = ch as isize * cst + (oy * stride + i) as isize * rst;
                    let base = b as isize * cs[0] + oy as isize * cs[1] + j as isize * cs[3];
                    // SAFETY: as in `im2col`, with the roles of source and destination swapped.
                    unsafe {
                        let d = pp.offset(dst);
                        let s = cols.at(base);
                        if unit {
                            match kw {
                                2 => window_rows::<2, true>(s, cs[2], d, stride as isize, ow),
                                3 => window_rows::<3, true>(s, cs[2], d, stride as isize, ow),
                                5 => window_rows::<5, true>(s, cs[2], d, stride as isize, ow),
                                _ => {
                                    window_rows_any::<true>(s, cs[2], d, stride as isize, 1, ow, kw)
                                }
                            }
                        } else {
                            window_rows_any::<true>(s, cs[2], d, stride as isize, cs[3], ow, kw);
                        }
                    }
                    j += kw;
                }
            }
        }
        if direct {
            return;
        }
        for ch in 0..c {
            for y in 0..h {
                let row = b as isize * os[0] + ch as isize * os[1] + y as isize * os[2];
                let src = &planes[(ch * hp + y + padding) * wp + padding..][..w];
                for (xx, v) in src.iter().enumerate() {
                    // SAFETY: an element of batch `b`, which belongs to this task.
                    unsafe { *out.at(row + xx as isize * os[3]) = *v };
                }
            }
        }
    });
}

/// Row `i` of `out` is row `indices[i]` of `table`. Returns the first bad index.
pub fn gather(table: Raw<'_>, indices: Raw<'_>, out: Raw<'_>) -> Result<(), i32> {
    let rows = table.shape[0];
    let row: usize = table.shape[1..].iter().product();
    let idx: Vec<i32> = indices
        .offsets()
        .map(|o| unsafe { *(indices.at(o) as *const i32) })
        .collect();
    let tv = Raw {
        ptr: table.ptr,
        shape: &table.shape[1..],
        strides: &table.strides[1..],
    };
    let mut outs = out.offsets();
    for v in idx {
        if v < 0 || v as usize >= rows {
            return Err(v);
        }
        let base = v as isize * table.strides[0];
        for o in tv.offsets() {
            if let Some(d) = outs.next() {
                // SAFETY: offsets of checked views.
                unsafe { *out.at(d) = *table.at(base + o) };
            }
        }
        let _ = row;
    }
    Ok(())
}

/// `out` zeroed, then `updates[i]` added to row `indices[i]`, in order (deterministic).
pub fn scatter_add(indices: Raw<'_>, updates: Raw<'_>, out: Raw<'_>) -> Result<(), i32> {
    let rows = out.shape[0];
    zero(out);
    let idx: Vec<i32> = indices
        .offsets()
        .map(|o| unsafe { *(indices.at(o) as *const i32) })
        .collect();
    let rv = Raw {
        ptr: out.ptr,
        shape: &out.shape[1..],
        strides: &out.strides[1..],
    };
    let mut ups = updates.offsets();
    for v in idx {
        if v < 0 || v as usize >= rows {
            return Err(v);
        }
        let base = v as isize * out.strides[0];
        for o in rv.offsets() {
            if let Some(u) = ups.next() {
                // SAFETY: offsets of checked views.
                unsafe { *out.at(base + o) += *updates.at(u) };
            }
        }
    }
    Ok(())
}

/// `out` zeroed, then `x` placed at `start` along `axis`.
pub fn pad(x: Raw<'_>, out: Raw<'_>, axis: usize, start: usize) {
    zero(out);
    let region = Raw {
        // SAFETY: `start` along `axis` is inside the output (checked shapes).
        ptr: unsafe { out.at(start as isize * out.strides[axis]) },
        shape: x.shape,
        strides: out.strides,
    };
    copy(x, region);
}

pub fn concat(xs: &[Raw<'_>], out: Raw<'_>, axis: usize) {
    let mut at = 0isize;
    for x in xs {
        let region = Raw {
            // SAFETY: each part lies inside the output along `axis` (checked shapes).
            ptr: unsafe { out.at(at * out.strides[axis]) },
            shape: x.shape,
            strides: out.strides,
        };
        copy(*x, region);
        at += x.shape[axis] as isize;
    }
}

/// Uniform [0, 1) numbers: element `i` is `unit_f32(at(at(key, counter), i))`.
pub fn random(pool: &Pool, key: u64, counter: i32, out: Raw<'_>) {
    let k = rng::at(key, counter as u32 as u64);
    let n = out.numel();
    let chunk = 16_384;
    let os: Vec<isize> = if out.shape.is_empty() {
        vec![0]
    } else {
        out.offsets().collect()
    };
    pool.run(n.div_ceil(chunk), &|c| {
        let end = ((c + 1) * chunk).min(n);
        for (i, &o) in os.iter().enumerate().take(end).skip(c * chunk) {
            // SAFETY: this task owns elements `c*chunk..` of the checked output.
            unsafe { *out.at(o) = rng::unit_f32(rng::at(k, i as u64)) };
        }
    });
}

pub fn one_hot(x: Raw<'_>, out: Raw<'_>, classes: usize) {
    zero(out);
    let cs = out.strides[out.strides.len() - 1];
    let rows = Raw {
        ptr: out.ptr,
        shape: &out.shape[..out.shape.len() - 1],
        strides: &out.strides[..out.strides.len() - 1],
    };
    for (xo, ro) in x.offsets().zip(rows.offsets()) {
        // SAFETY: offsets of checked views; `v` is checked against `classes`.
        let v = unsafe { *(x.at(xo) as *const i32) };
        if v >= 0 && (v as usize) < classes {
            unsafe { *out.at(ro + v as isize * cs) = 1.0 };
        }
    }
}

/// F32 -> I32 (truncating) or I32 -> F32.
pub fn cast(x: Raw<'_>, out: Raw<'_>, to_i32: bool) {
    for (s, d) in x.offsets().zip(out.offsets()) {
        // SAFETY: offsets of checked views; both dtypes are 4 bytes.
        unsafe {
            if to_i32 {
                *(out.at(d) as *mut i32) = *x.at(s) as i32;
            } else {
                *out.at(d) = *(x.at(s) as *const i32) as f32;
            }
        }
    }
}
