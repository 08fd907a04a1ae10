//! Convolutions with few output channels, computed from the input image instead of through an
//! im2col matrix.
//!
//! A convolution is lowered to `im2col` then a matrix product (and its weight gradient to a
//! product with the transposed im2col matrix). With few output channels (LeNet's first layer
//! has 6) those products are narrow: the matrix library computes mostly padding, and the
//! im2col matrix (25 values per output pixel) is written once and read twice, ten megabytes
//! a step at batch 128. `plan` finds such an im2col whose only readers are these products and
//! replaces the three steps: the im2col is skipped, the forward product becomes `forward`
//! (output rows accumulated from the padded image rows, vectorised along the row) and the
//! weight-gradient product becomes `weight_grad` (dot products of image rows with gradient
//! rows, in fixed lane and block order).
//!
//! Both read the image where the im2col step read it; `plan` only applies when that image
//! still holds its value when the products run (an input or a state, or a temporary read
//! again later). Sums run in a fixed order that depends on the shapes only, so results do
//! not depend on the thread count; they differ from the im2col path by rounding.

use super::library::Raw;
use super::pool::Pool;
use crate::ir::schedule::{Buf, Schedule, Step, View};

/// Convolutions with fewer output channels than this are computed directly.
const MAX_FILTERS: usize = 16;

/// A convolution's input and window parameters.
#[derive(Clone, Debug)]
pub struct Conv {
    pub x: View,
    pub kernel: [usize; 2],
    pub stride: usize,
    pub padding: usize,
    /// The weight gradient's output gradient as `[n, oh, ow, f]`, read where it lies when
    /// the schedule copies it into the `[n*oh*ow, f]` matrix the product reads (a transpose
    /// from NCHW): the copy is skipped.
    pub grad: Option<View>,
}

/// What the CPU back end runs instead of a scheduled step.
#[derive(Clone, Debug)]
pub enum Replace {
    /// An im2col nobody reads any more.
    Skip,
    /// `out = im2col(x) @ w`.
    Forward(Conv),
    /// `out = im2col(x)^T @ g`.
    WeightGrad(Conv),
}

/// The replaced steps of a schedule (see the module comment), by step index.
pub fn plan(s: &Schedule) -> Vec<Option<Replace>> {
    let mut out: Vec<Option<Replace>> = vec![None; s.steps.len()];
    for (si, step) in s.steps.iter().enumerate() {
        let Step::Im2Col {
            x,
            out: cols,
            kernel,
            stride,
            padding,
            pad_value,
        } = step
        else {
            continue;
        };
        let Buf::Temp(t) = cols.buf else { continue };
        if *pad_value != 0.0 || cols.offset != 0 || !cols.is_contiguous() || x.shape.len() != 4 {
            continue;
        }
        if s.outputs.iter().any(|(_, v)| v.buf == cols.buf) {
            continue;
        }
        let (n, oh, ow, ckk) = (cols.shape[0], cols.shape[1], cols.shape[2], cols.shape[3]);
        let m = n * oh * ow;
        let conv = Conv {
            x: x.clone(),
            kernel: *kernel,
            stride: *stride,
            padding: *padding,
            grad: None,
        };
        let mut found: Vec<(usize, Replace)> = Vec::new();
        let mut ok = true;
        for (ri, r) in s.steps.iter().enumerate() {
            if ri == si
                || !crate::ir::schedule::step_reads(r)
                    .iter()
                    .chain(crate::ir::schedule::step_writes(r).iter())
                    .any(|v| v.buf == Buf::Temp(t))
            {
                continue;
            }
            let Step::MatMul { a, b, out: o } = r else {
                ok = false;
                break;
            };
            if a.buf != Buf::Temp(t) || b.buf == Buf::Temp(t) || o.buf == Buf::Temp(t) {
                ok = false;
                break;
            }
            let f = b.shape[1];
            if ri < si || a.offset != 0 || b.shape.len() != 2 || f >= MAX_FILTERS {
                ok = false;
                break;
            }
            let ck = ckk as isize;
            if a.shape == [m, ckk] && a.strides == [ck, 1] && b.shape[0] == ckk {
                found.push((ri, Replace::Forward(conv.clone())));
            } else if a.shape == [ckk, m] && a.strides == [1, ck] && b.shape[0] == m {
                let copy = gradient_copy(s, ri, b, [n, oh, ow, f]);
                let mut conv = conv.clone();
                if let Some((ci, src)) = copy {
                    found.push((ci, Replace::Skip));
                    conv.grad = Some(src);
                }
                found.push((ri, Replace::WeightGrad(conv)));
            } else {
                ok = false;
                break;
            }
        }
        if !ok || found.is_empty() {
            continue;
        }
        // A state image must still hold its value at the last product (temporaries are kept
        // alive by the memory plan: see `for_planning`).
        let last = found.iter().map(|(ri, _)| *ri).max().unwrap_or(si);
        if let Buf::State(st) = x.buf
            && s.steps[si + 1..=last].iter().any(|r| {
                crate::ir::schedule::step_writes(r)
                    .iter()
                    .any(|v| v.buf == Buf::State(st))
            })
        {
            continue;
        }
        out[si] = Some(Replace::Skip);
        for (ri, r) in found {
            out[ri] = Some(r);
        }
    }
    out
}

/// The copy step (and its source, shaped `[n, oh, ow, f]`) that alone writes the gradient
/// matrix `b` of the product at step `ri`, when that product is its only reader.
fn gradient_copy(s: &Schedule, ri: usize, b: &View, shape4: [usize; 4]) -> Option<(usize, View)> {
    let Buf::Temp(tg) = b.buf else { return None };
    if b.offset != 0 || !b.is_contiguous() || s.outputs.iter().any(|(_, v)| v.buf == b.buf) {
        return None;
    }
    let touches = |st: &Step| {
        crate::ir::schedule::step_reads(st)
            .iter()
            .chain(crate::ir::schedule::step_writes(st).iter())
            .any(|v| v.buf == Buf::Temp(tg))
    };
    let users: Vec<usize> = (0..s.steps.len())
        .filter(|i| touches(&s.steps[*i]))
        .collect();
    let [ci, last] = users[..] else { return None };
    if last != ri {
        return None;
    }
    match &s.steps[ci] {
        Step::Copy { src, dst }
            if dst.buf == b.buf
                && dst.offset == 0
                && dst.is_contiguous()
                && dst.numel() == b.numel()
                && src.shape == shape4 =>
        {
            Some((ci, src.clone()))
        }
        _ => None,
    }
}

/// The schedule the memory plan is made from: a replaced product reads the image (and the
/// gradient where the copy was skipped), so those stay alive until it runs.
pub fn for_planning(s: &Schedule, replace: &[Option<Replace>]) -> Schedule {
    let mut p = s.clone();
    for (step, r) in p.steps.iter_mut().zip(replace) {
        let conv = match r {
            Some(Replace::Forward(c) | Replace::WeightGrad(c)) => c,
            _ => continue,
        };
        if let Step::MatMul { a, b, .. } = step {
            a.buf = conv.x.buf;
            a.offset = 0;
            a.shape = vec![1];
            a.strides = vec![1];
            if let Some(g) = &conv.grad {
                b.buf = g.buf;
                b.offset = 0;
                b.shape = vec![1];
                b.strides = vec![1];
            }
        }
    }
    p
}

/// Geometry shared by both directions.
struct Geo {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    s: usize,
    p: usize,
    oh: usize,
    ow: usize,
    /// Output row length rounded up to whole pairs of 8-lane vectors.
    owl: usize,
    /// Padded plane: rows of `wp` (long enough for `owl` outputs), `hp` rows.
    hp: usize,
    wp: usize,
}

const LANES: usize = 8;

impl Geo {
    fn new(x: &Raw<'_>, conv: &Conv) -> Geo {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let [kh, kw] = conv.kernel;
        let (s, p) = (conv.stride, conv.padding);
        let oh = (h + 2 * p - kh) / s + 1;
        let ow = (w + 2 * p - kw) / s + 1;
        let owl = ow.next_multiple_of(2 * LANES);
        Geo {
            n,
            c,
            h,
            w,
            kh,
            kw,
            s,
            p,
            oh,
            ow,
            owl,
            hp: h + 2 * p,
            wp: (owl - 1) * s + kw,
        }
    }

    /// Window column `j` of every output pixel of one padded image row (`owl` values): a
    /// slice of the row at stride 1, gathered into `src` otherwise.
    fn window_column<'r>(&self, row: &'r [f32], j: usize, src: &'r mut [f32]) -> &'r [f32] {
        if self.s == 1 {
            return &row[j..j + self.owl];
        }
        for (ox, v) in src.iter_mut().enumerate() {
            *v = row[ox * self.s + j];
        }
        src
    }

    /// Batch element `b` of `x`, zero-padded, into `planes` (`c` planes of `hp` x `wp`).
    fn pad(&self, x: &Raw<'_>, b: usize, planes: &mut Vec<f32>) {
        planes.clear();
        planes.resize(self.c * self.hp * self.wp, 0.0);
        let xs = x.strides;
        for ch in 0..self.c {
            for y in 0..self.h {
                let row = b as isize * xs[0] + ch as isize * xs[1] + y as isize * xs[2];
                let dst = &mut planes[(ch * self.hp + y + self.p) * self.wp + self.p..][..self.w];
                for (xx, d) in dst.iter_mut().enumerate() {
                    // SAFETY: an element of the checked input view.
                    *d = unsafe { *x.ptr.offset(row + xx as isize * xs[3]) };
                }
            }
        }
    }
}

/// Whether the host runs the AVX2 + FMA versions.
fn wide() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `acc + a * b`, fused where the caller is compiled with FMA.
#[inline(always)]
fn madd<const FMA: bool>(acc: f32, a: f32, b: f32) -> f32 {
    if FMA { a.mul_add(b, acc) } else { acc + a * b }
}

/// `out[(b, oy, ox), f] = sum over (c, i, j) of x[b, c, oy*s+i-p, ox*s+j-p] * w[(c, i, j), f]`.
pub fn forward(pool: &Pool, conv: &Conv, x: Raw<'_>, w: Raw<'_>, out: Raw<'_>) {
    let g = Geo::new(&x, conv);
    let f = w.shape[1];
    let ckk = g.c * g.kh * g.kw;
    // Weights as [f][ckk], contiguous.
    let mut wt = vec![0.0f32; f * ckk];
    for k in 0..ckk {
        for ff in 0..f {
            // SAFETY: an element of the checked weight view.
            wt[ff * ckk + k] = unsafe {
                *w.ptr
                    .offset(k as isize * w.strides[0] + ff as isize * w.strides[1])
            };
        }
    }
    let fma = wide();
    pool.run(g.n, &|b| {
        #[cfg(target_arch = "x86_64")]
        if fma {
            // SAFETY: the host has AVX2 and FMA (checked above).
            unsafe { forward_fma(&g, &x, &wt, f, &out, b) };
            return;
        }
        let _ = fma;
        forward_image::<false>(&g, &x, &wt, f, &out, b);
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_fma(g: &Geo, x: &Raw<'_>, wt: &[f32], f: usize, out: &Raw<'_>, b: usize) {
    if g.s != 1 {
        forward_image::<true>(g, x, wt, f, out, b);
        return;
    }
    let mut planes = Vec::new();
    g.pad(x, b, &mut planes);
    let ckk = g.c * g.kh * g.kw;
    let mut acc = vec![0.0f32; f * g.owl];
    for oy in 0..g.oh {
        for ox0 in (0..g.owl).step_by(2 * LANES) {
            let mut ff0 = 0;
            while ff0 < f {
                let nf = (f - ff0).min(4);
                // SAFETY: AVX2 and FMA are enabled here; the tile reads rows of `planes`
                // (`ox0 + 16 <= owl` columns from `j`, inside `wp`) and writes `acc`.
                unsafe {
                    match nf {
                        4 => fwd_tile::<4>(g, &planes, wt, ckk, oy, ox0, ff0, &mut acc),
                        3 => fwd_tile::<3>(g, &planes, wt, ckk, oy, ox0, ff0, &mut acc),
                        2 => fwd_tile::<2>(g, &planes, wt, ckk, oy, ox0, ff0, &mut acc),
                        _ => fwd_tile::<1>(g, &planes, wt, ckk, oy, ox0, ff0, &mut acc),
                    }
                }
                ff0 += nf;
            }
        }
        write_row(g, &acc, f, out, b, oy);
    }
}

/// Outputs `ox0 .. ox0 + 16` of row `oy` for filters `ff0 .. ff0 + NF`, accumulated in
/// registers over the (channel, kernel row, kernel column) taps in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn fwd_tile<const NF: usize>(
    g: &Geo,
    planes: &[f32],
    wt: &[f32],
    ckk: usize,
    oy: usize,
    ox0: usize,
    ff0: usize,
    acc: &mut [f32],
) {
    use std::arch::x86_64::*;
    let mut a = [[_mm256_setzero_ps(); 2]; NF];
    let mut k = 0;
    for ch in 0..g.c {
        for i in 0..g.kh {
            let row = &planes[(ch * g.hp + oy + i) * g.wp..][..g.wp];
            for j in 0..g.kw {
                let src = &row[j + ox0..j + ox0 + 2 * LANES];
                // SAFETY: `src` holds 16 floats.
                let (x0, x1) = unsafe {
                    (
                        _mm256_loadu_ps(src.as_ptr()),
                        _mm256_loadu_ps(src.as_ptr().add(LANES)),
                    )
                };
                for (q, aq) in a.iter_mut().enumerate() {
                    let w = _mm256_set1_ps(wt[(ff0 + q) * ckk + k]);
                    aq[0] = _mm256_fmadd_ps(w, x0, aq[0]);
                    aq[1] = _mm256_fmadd_ps(w, x1, aq[1]);
                }
                k += 1;
            }
        }
    }
    for (q, aq) in a.iter().enumerate() {
        let dst = &mut acc[(ff0 + q) * g.owl + ox0..][..2 * LANES];
        // SAFETY: `dst` holds 16 floats.
        unsafe {
            _mm256_storeu_ps(dst.as_mut_ptr(), aq[0]);
            _mm256_storeu_ps(dst.as_mut_ptr().add(LANES), aq[1]);
        }
    }
}

/// Row `oy` of image `b` from `acc` (`[f][owl]`) into the output rows `(b, oy, ox)`.
fn write_row(g: &Geo, acc: &[f32], f: usize, out: &Raw<'_>, b: usize, oy: usize) {
    let os = out.strides;
    let base = ((b * g.oh + oy) * g.ow) as isize * os[0];
    if os[1] == 1 {
        for ox in 0..g.ow {
            // SAFETY: row (b, oy, ox) of the checked output (`f` contiguous elements), which
            // this task owns.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(out.ptr.offset(base + ox as isize * os[0]), f)
            };
            for (ff, d) in dst.iter_mut().enumerate() {
                *d = acc[ff * g.owl + ox];
            }
        }
        return;
    }
    for ox in 0..g.ow {
        for ff in 0..f {
            // SAFETY: row (b, oy, ox) of the checked output, which this task owns.
            unsafe {
                *out.ptr
                    .offset(base + ox as isize * os[0] + ff as isize * os[1]) = acc[ff * g.owl + ox]
            };
        }
    }
}

/// Batch element `b` of `forward`: each output row accumulates, for every (channel, kernel
/// row, kernel column), a shifted image row times one weight; in that order, the same for
/// every element.
#[inline(always)]
fn forward_image<const FMA: bool>(
    g: &Geo,
    x: &Raw<'_>,
    wt: &[f32],
    f: usize,
    out: &Raw<'_>,
    b: usize,
) {
    let mut planes = Vec::new();
    g.pad(x, b, &mut planes);
    let ckk = g.c * g.kh * g.kw;
    let mut acc = vec![0.0f32; f * g.owl];
    let mut src = vec![0.0f32; g.owl];
    for oy in 0..g.oh {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let mut k = 0;
        for ch in 0..g.c {
            for i in 0..g.kh {
                let row = &planes[(ch * g.hp + oy * g.s + i) * g.wp..][..g.wp];
                for j in 0..g.kw {
                    let shifted = g.window_column(row, j, &mut src);
                    for ff in 0..f {
                        let wv = wt[ff * ckk + k];
                        let a = &mut acc[ff * g.owl..][..g.owl];
                        for (av, sv) in a.iter_mut().zip(shifted) {
                            *av = madd::<FMA>(*av, wv, *sv);
                        }
                    }
                    k += 1;
                }
            }
        }
        write_row(g, &acc, f, out, b, oy);
    }
}

/// Images per block of the weight gradient: blocks are summed separately, then in order.
const BLOCK: usize = 8;

/// `out[(c, i, j), f] = sum over (b, oy, ox) of x[b, c, oy*s+i-p, ox*s+j-p] * g[(b, oy, ox), f]`.
pub fn weight_grad(pool: &Pool, conv: &Conv, x: Raw<'_>, grad: Raw<'_>, out: Raw<'_>) {
    let g = Geo::new(&x, conv);
    let f = grad.shape[grad.shape.len() - 1];
    let ckk = g.c * g.kh * g.kw;
    let blocks = g.n.div_ceil(BLOCK);
    let mut partial = vec![0.0f32; blocks * ckk * f];
    let parts = PartPtr(partial.as_mut_ptr());
    let fma = wide();
    pool.run(blocks, &|blk| {
        let p = &parts;
        // SAFETY: block `blk` owns its `ckk * f` slice of `partial`.
        let mine = unsafe { std::slice::from_raw_parts_mut(p.0.add(blk * ckk * f), ckk * f) };
        #[cfg(target_arch = "x86_64")]
        if fma {
            // SAFETY: the host has AVX2 and FMA (checked above).
            unsafe { grad_block_fma(&g, &x, &grad, f, blk, mine) };
            return;
        }
        let _ = fma;
        grad_block::<false>(&g, &x, &grad, f, blk, mine);
    });
    for k in 0..ckk {
        for ff in 0..f {
            let mut sum = 0.0f32;
            for blk in 0..blocks {
                sum += partial[(blk * ckk + k) * f + ff];
            }
            // SAFETY: an element of the checked output.
            unsafe {
                *out.ptr
                    .offset(k as isize * out.strides[0] + ff as isize * out.strides[1]) = sum
            };
        }
    }
}

struct PartPtr(*mut f32);
// SAFETY: blocks write disjoint parts of the buffer.
unsafe impl Sync for PartPtr {}

/// The weight gradient of one block with AVX2: per tap and image, one 8-lane accumulator per
/// filter (up to 8 filters at a time) stays in a register across the image's rows; lanes are
/// summed in order at the end, exactly as `grad_block` does.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn grad_block_fma(
    g: &Geo,
    x: &Raw<'_>,
    grad: &Raw<'_>,
    f: usize,
    blk: usize,
    out: &mut [f32],
) {
    if g.s != 1 {
        grad_block::<true>(g, x, grad, f, blk, out);
        return;
    }
    let ckk = g.c * g.kh * g.kw;
    let mut planes = Vec::new();
    let mut gt = vec![0.0f32; f * g.oh * g.owl];
    let mut lanes = vec![[0.0f32; LANES]; ckk * f];
    let gs = grad.strides;
    for b in blk * BLOCK..((blk + 1) * BLOCK).min(g.n) {
        g.pad(x, b, &mut planes);
        fill_grad_rows(g, grad, gs, f, b, &mut gt);
        let mut k = 0;
        for ch in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let mut ff0 = 0;
                    while ff0 < f {
                        let nf = (f - ff0).min(8);
                        let t = GradTap {
                            g,
                            planes: &planes,
                            gt: &gt,
                            ch,
                            i,
                            j,
                            ff0,
                        };
                        let l = &mut lanes[k * f + ff0..][..nf];
                        // SAFETY: AVX2 and FMA are enabled here; see `grad_tap`.
                        unsafe {
                            match nf {
                                8 => grad_tap::<8>(&t, l),
                                7 => grad_tap::<7>(&t, l),
                                6 => grad_tap::<6>(&t, l),
                                5 => grad_tap::<5>(&t, l),
                                4 => grad_tap::<4>(&t, l),
                                3 => grad_tap::<3>(&t, l),
                                2 => grad_tap::<2>(&t, l),
                                _ => grad_tap::<1>(&t, l),
                            }
                        }
                        ff0 += nf;
                    }
                    k += 1;
                }
            }
        }
    }
    sum_lanes(&lanes, out);
}

/// One tap `(ch, i, j)` of the weight gradient for filters `ff0 ..` of one image.
#[cfg(target_arch = "x86_64")]
struct GradTap<'a> {
    g: &'a Geo,
    planes: &'a [f32],
    gt: &'a [f32],
    ch: usize,
    i: usize,
    j: usize,
    ff0: usize,
}

/// Adds one image's products for tap `t` and filters `ff0 .. ff0 + NF` to `lanes`, the
/// accumulators held in registers over the image's rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn grad_tap<const NF: usize>(t: &GradTap<'_>, lanes: &mut [[f32; LANES]]) {
    use std::arch::x86_64::*;
    let g = t.g;
    let mut acc = [_mm256_setzero_ps(); NF];
    for (a, l) in acc.iter_mut().zip(lanes.iter()) {
        // SAFETY: 8 floats.
        *a = unsafe { _mm256_loadu_ps(l.as_ptr()) };
    }
    let plane = g.oh * g.owl;
    assert!(t.gt.len() >= (t.ff0 + NF) * plane);
    assert!(t.planes.len() >= (t.ch * g.hp + g.oh - 1 + t.i) * g.wp + t.j + g.owl);
    for oy in 0..g.oh {
        // SAFETY: the row `(ch, oy + i)` from column `j` has `owl` floats inside the padded
        // plane (`j + owl <= wp`), and `gt` holds `owl` floats per (filter, row): both
        // bounded by the assertions above.
        unsafe {
            let xrow = t.planes.as_ptr().add((t.ch * g.hp + oy + t.i) * g.wp + t.j);
            let grow = t.gt.as_ptr().add(t.ff0 * plane + oy * g.owl);
            let mut c0 = 0;
            while c0 < g.owl {
                let xv = _mm256_loadu_ps(xrow.add(c0));
                for (q, a) in acc.iter_mut().enumerate() {
                    let gv = _mm256_loadu_ps(grow.add(q * plane + c0));
                    *a = _mm256_fmadd_ps(xv, gv, *a);
                }
                c0 += LANES;
            }
        }
    }
    for (a, l) in acc.iter().zip(lanes.iter_mut()) {
        // SAFETY: 8 floats.
        unsafe { _mm256_storeu_ps(l.as_mut_ptr(), *a) };
    }
}

/// Image `b`'s gradient rows as `[f][oh][owl]` (columns past `ow` stay zero), from the
/// `[n*oh*ow, f]` matrix or an `[n, oh, ow, f]` view.
fn fill_grad_rows(g: &Geo, grad: &Raw<'_>, gs: &[isize], f: usize, b: usize, gt: &mut [f32]) {
    let four = grad.shape.len() == 4;
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let (r, fs) = if four {
                (
                    b as isize * gs[0] + oy as isize * gs[1] + ox as isize * gs[2],
                    gs[3],
                )
            } else {
                (((b * g.oh + oy) * g.ow + ox) as isize * gs[0], gs[1])
            };
            for ff in 0..f {
                // SAFETY: an element of the checked gradient view.
                gt[(ff * g.oh + oy) * g.owl + ox] =
                    unsafe { *grad.ptr.offset(r + ff as isize * fs) };
            }
        }
    }
}

/// Each weight's lanes added in lane order.
fn sum_lanes(lanes: &[[f32; LANES]], out: &mut [f32]) {
    for (o, l) in out.iter_mut().zip(lanes) {
        let mut s = 0.0f32;
        for v in l {
            s += v;
        }
        *o = s;
    }
}

/// The weight gradient of images `blk * BLOCK ..` into `out` (`[ckk][f]`): per weight, lane
/// sums over the block's pixels, in pixel order, then the lanes added in order.
#[inline(always)]
fn grad_block<const FMA: bool>(
    g: &Geo,
    x: &Raw<'_>,
    grad: &Raw<'_>,
    f: usize,
    blk: usize,
    out: &mut [f32],
) {
    let ckk = g.c * g.kh * g.kw;
    let mut planes = Vec::new();
    // The block's gradient rows as [f][oh][owl] per image (zeros past `ow`).
    let mut gt = vec![0.0f32; f * g.oh * g.owl];
    let mut src = vec![0.0f32; g.owl];
    let mut lanes = vec![[0.0f32; LANES]; ckk * f];
    let gs = grad.strides;
    for b in blk * BLOCK..((blk + 1) * BLOCK).min(g.n) {
        g.pad(x, b, &mut planes);
        fill_grad_rows(g, grad, gs, f, b, &mut gt);
        let mut k = 0;
        for ch in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    for oy in 0..g.oh {
                        let row = &planes[(ch * g.hp + oy * g.s + i) * g.wp..][..g.wp];
                        let shifted = g.window_column(row, j, &mut src);
                        for ff in 0..f {
                            let grow = &gt[(ff * g.oh + oy) * g.owl..][..g.owl];
                            let l = &mut lanes[k * f + ff];
                            for (sc, gc) in
                                shifted.chunks_exact(LANES).zip(grow.chunks_exact(LANES))
                            {
                                for q in 0..LANES {
                                    l[q] = madd::<FMA>(l[q], sc[q], gc[q]);
                                }
                            }
                        }
                    }
                    k += 1;
                }
            }
        }
    }
    sum_lanes(&lanes, out);
}
