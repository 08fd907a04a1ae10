//! Vectorisable `exp`, `log` and `tanh` for generated kernels: range reduction and minimax
//! polynomials (the Cephes single-precision coefficients), written once over `Lanes` so the
//! same code emits scalar `f32` or `f32x4` instructions. Accuracy is within a few ulp of the
//! platform's `expf`/`logf`/`tanhf` (tested), with infinities, NaN, zero and underflow handled
//! explicitly. Values whose exact `exp` is subnormal (below about 1.2e-38) flush to 0.

use cranelift_codegen::ir::Endianness;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;

/// Scalar or 4-wide code.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lanes {
    vector: bool,
}

fn bitcast_flags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

impl Lanes {
    pub fn vector() -> Lanes {
        Lanes { vector: true }
    }

    pub fn scalar() -> Lanes {
        Lanes { vector: false }
    }

    pub fn is_vector(self) -> bool {
        self.vector
    }

    pub fn ty(self) -> Type {
        if self.vector {
            types::F32X4
        } else {
            types::F32
        }
    }

    fn ity(self) -> Type {
        if self.vector {
            types::I32X4
        } else {
            types::I32
        }
    }

    pub fn constant(self, b: &mut FunctionBuilder<'_>, v: f32) -> Value {
        let c = b.ins().f32const(v);
        if self.vector {
            b.ins().splat(types::F32X4, c)
        } else {
            c
        }
    }

    fn int(self, b: &mut FunctionBuilder<'_>, v: i32) -> Value {
        let c = b.ins().iconst(types::I32, i64::from(v));
        if self.vector {
            b.ins().splat(types::I32X4, c)
        } else {
            c
        }
    }

    /// A comparison mask (a boolean for scalars, all-ones lanes for vectors).
    pub fn compare(self, b: &mut FunctionBuilder<'_>, cc: FloatCC, x: Value, y: Value) -> Value {
        b.ins().fcmp(cc, x, y)
    }

    /// `mask ? x : y` lane by lane.
    pub fn select(self, b: &mut FunctionBuilder<'_>, mask: Value, x: Value, y: Value) -> Value {
        if self.vector {
            let m = b.ins().bitcast(types::F32X4, bitcast_flags(), mask);
            b.ins().bitselect(m, x, y)
        } else {
            b.ins().select(mask, x, y)
        }
    }

    fn to_bits(self, b: &mut FunctionBuilder<'_>, x: Value) -> Value {
        b.ins().bitcast(self.ity(), bitcast_flags(), x)
    }

    fn bits_to_float(self, b: &mut FunctionBuilder<'_>, x: Value) -> Value {
        b.ins().bitcast(self.ty(), bitcast_flags(), x)
    }

    /// `x * c`
    fn mulc(self, b: &mut FunctionBuilder<'_>, x: Value, c: f32) -> Value {
        let k = self.constant(b, c);
        b.ins().fmul(x, k)
    }

    /// `x + c`
    fn addc(self, b: &mut FunctionBuilder<'_>, x: Value, c: f32) -> Value {
        let k = self.constant(b, c);
        b.ins().fadd(x, k)
    }

    /// `x * y + z`: one fused instruction where the host has one.
    pub fn mul_add(self, b: &mut FunctionBuilder<'_>, x: Value, y: Value, z: Value) -> Value {
        if host_fma() {
            b.ins().fma(x, y, z)
        } else {
            let m = b.ins().fmul(x, y);
            b.ins().fadd(m, z)
        }
    }

    /// Horner evaluation of `coeffs[0] * x^n + ... + coeffs[n]`.
    fn poly(self, b: &mut FunctionBuilder<'_>, x: Value, coeffs: &[f32]) -> Value {
        let mut acc = self.constant(b, coeffs[0]);
        for c in &coeffs[1..] {
            let k = self.constant(b, *c);
            acc = self.mul_add(b, acc, x, k);
        }
        acc
    }

    /// `x < y ? x : y` (one `minps` for vectors; `y` when either is NaN).
    pub fn min_fast(self, b: &mut FunctionBuilder<'_>, x: Value, y: Value) -> Value {
        let m = self.compare(b, FloatCC::LessThan, x, y);
        self.select(b, m, x, y)
    }

    /// `y < x ? x : y` (one `maxps` for vectors; `y` when either is NaN).
    pub fn max_fast(self, b: &mut FunctionBuilder<'_>, x: Value, y: Value) -> Value {
        let m = self.compare(b, FloatCC::LessThan, y, x);
        self.select(b, m, x, y)
    }
}

/// Whether generated code may use fused multiply-add: the host has it (Cranelift's native
/// ISA flags then select it), so results are the same on every run on this machine.
pub fn host_fma() -> bool {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FMA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(target_arch = "aarch64")]
        {
            true
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            false
        }
    })
}

/// ln(f32::MAX): above it, exp overflows.
const EXP_HI: f32 = 88.722_83;
const EXP_LO: f32 = -87.336_55;

/// `exp(x)`: `x = n ln2 + r`, `exp(r)` by a degree-6 polynomial, times `2^n` built in the
/// exponent bits. `n` is rounded by adding 1.5 * 2^23 (the float's low mantissa bits then hold
/// it as an integer), which costs two instructions instead of a round and a conversion.
pub fn exp(b: &mut FunctionBuilder<'_>, l: Lanes, x: Value) -> Value {
    let res = exp_in_range(b, l, x, EXP_HI);
    // Beyond the range: +inf above, 0 below, NaN stays NaN.
    let hi = l.constant(b, EXP_HI);
    let lo = l.constant(b, EXP_LO);
    let over = l.compare(b, FloatCC::GreaterThan, x, hi);
    let inf = l.constant(b, f32::INFINITY);
    let res = l.select(b, over, inf, res);
    let under = l.compare(b, FloatCC::LessThan, x, lo);
    let zero = l.constant(b, 0.0);
    let res = l.select(b, under, zero, res);
    let nan = l.compare(b, FloatCC::Unordered, x, x);
    l.select(b, nan, x, res)
}

/// `exp(x)` for `x` clamped to [EXP_LO, `top`] (NaN gives a finite value): callers whose
/// result is the same at the ends of the range skip the fix-ups. With `top` below 127 ln 2,
/// `2^n` never needs the extra doubling.
fn exp_in_range(b: &mut FunctionBuilder<'_>, l: Lanes, x: Value, top: f32) -> Value {
    let hi = l.constant(b, top);
    let lo = l.constant(b, EXP_LO);
    // Clamped into range (NaN becomes EXP_HI here and is restored at the end).
    let xc = l.min_fast(b, x, hi);
    let xc = l.max_fast(b, xc, lo);
    let log2e = l.constant(b, std::f32::consts::LOG2_E);
    let magic = l.constant(b, 12_582_912.0);
    let t = l.mul_add(b, xc, log2e, magic);
    let n = b.ins().fsub(t, magic);
    // r = x - n*ln2, with ln2 split in two for precision.
    let c1 = l.constant(b, -0.693_359_4);
    let r = l.mul_add(b, n, c1, xc);
    let c2 = l.constant(b, 2.121_944_4e-4);
    let r = l.mul_add(b, n, c2, r);
    let z = b.ins().fmul(r, r);
    let p = l.poly(
        b,
        r,
        &[
            1.987_569_1e-4,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            5e-1,
        ],
    );
    let y = l.mul_add(b, p, z, r);
    let y = l.addc(b, y, 1.0);
    let tb = l.to_bits(b, t);
    let bias = l.int(b, 127 - 0x4B40_0000);
    if top < 88.0 {
        let e = b.ins().iadd(tb, bias);
        let e = b.ins().ishl_imm_u(e, 23);
        let pow2 = l.bits_to_float(b, e);
        return b.ins().fmul(y, pow2);
    }
    // 2^n: (n + 127) << 23 as float bits. n reaches 128 just below EXP_HI, one past the
    // largest exponent: there build 2^(n-1) and double the result.
    let top = l.constant(b, 127.5);
    let big = l.compare(b, FloatCC::GreaterThan, n, top);
    let one = l.constant(b, 1.0);
    let two = l.constant(b, 2.0);
    let factor = l.select(b, big, two, one);
    let e = if l.is_vector() {
        // The mask is -1 where big: adding it lowers n by one.
        let big_i = b.ins().bitcast(types::I32X4, bitcast_flags(), big);
        let e = b.ins().iadd(tb, bias);
        b.ins().iadd(e, big_i)
    } else {
        let one_i = l.int(b, 1);
        let zero_i = l.int(b, 0);
        let dec = b.ins().select(big, one_i, zero_i);
        let e = b.ins().iadd(tb, bias);
        b.ins().isub(e, dec)
    };
    let e = b.ins().ishl_imm_u(e, 23);
    let pow2 = l.bits_to_float(b, e);
    let res = b.ins().fmul(y, pow2);
    b.ins().fmul(res, factor)
}

/// `log(x)`: `x = m 2^e` with `m` in [sqrt(1/2), sqrt(2)), `log(m)` by a degree-9 polynomial.
pub fn log(b: &mut FunctionBuilder<'_>, l: Lanes, x: Value) -> Value {
    let bits = l.to_bits(b, x);
    let exp_bits = b.ins().ushr_imm_u(bits, 23);
    let mask8 = l.int(b, 0xff);
    let exp_bits = b.ins().band(exp_bits, mask8);
    let bias = l.int(b, 126);
    let e = b.ins().isub(exp_bits, bias);
    let mant_mask = l.int(b, 0x007f_ffff);
    let mant = b.ins().band(bits, mant_mask);
    let half = l.int(b, 0x3f00_0000);
    let mant = b.ins().bor(mant, half);
    let m = l.bits_to_float(b, mant);
    let sqrthf = l.constant(b, std::f32::consts::FRAC_1_SQRT_2);
    let small = l.compare(b, FloatCC::LessThan, m, sqrthf);
    // e -= 1 where m < sqrt(1/2); m doubles there.
    let one_i = l.int(b, 1);
    let zero_i = l.int(b, 0);
    let dec = if l.is_vector() {
        let small_i = b.ins().bitcast(types::I32X4, bitcast_flags(), small);
        b.ins().band(small_i, one_i)
    } else {
        b.ins().select(small, one_i, zero_i)
    };
    let e = b.ins().isub(e, dec);
    let m2 = b.ins().fadd(m, m);
    let mm = l.select(b, small, m2, m);
    let xm = l.addc(b, mm, -1.0);
    let z = b.ins().fmul(xm, xm);
    let p = l.poly(
        b,
        xm,
        &[
            7.037_683_6e-2,
            -1.151_461e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ],
    );
    let y = b.ins().fmul(p, xm);
    let y = b.ins().fmul(y, z);
    let ef = b.ins().fcvt_from_sint(l.ty(), e);
    let t = l.mulc(b, ef, -2.121_944_4e-4);
    let y = b.ins().fadd(y, t);
    let hz = l.mulc(b, z, 0.5);
    let y = b.ins().fsub(y, hz);
    let r = b.ins().fadd(xm, y);
    let t = l.mulc(b, ef, 0.693_359_4);
    let res = b.ins().fadd(r, t);
    // Zero, negatives, infinity, NaN.
    let zero = l.constant(b, 0.0);
    let is_zero = l.compare(b, FloatCC::Equal, x, zero);
    let ninf = l.constant(b, f32::NEG_INFINITY);
    let res = l.select(b, is_zero, ninf, res);
    let neg = l.compare(b, FloatCC::LessThan, x, zero);
    let nan = l.constant(b, f32::NAN);
    let res = l.select(b, neg, nan, res);
    let inf = l.constant(b, f32::INFINITY);
    let is_inf = l.compare(b, FloatCC::Equal, x, inf);
    let res = l.select(b, is_inf, inf, res);
    let unordered = l.compare(b, FloatCC::Unordered, x, x);
    l.select(b, unordered, x, res)
}

/// `tanh(x)`: `x P(x^2) / Q(x^2)` on [-9, 9] (beyond, tanh is 1 to single precision), a
/// rational approximation fitted for this code (weighted least squares on the relative error,
/// iteratively reweighted towards minimax): at most 3 ulp from the exact value evaluated in
/// `f32` with fused multiply-adds. No `exp`: a third of the instructions of `1 - 2/(e^2x + 1)`.
pub fn tanh(b: &mut FunctionBuilder<'_>, l: Lanes, x: Value) -> Value {
    let hi = l.constant(b, 9.0);
    let lo = l.constant(b, -9.0);
    let xc = l.min_fast(b, x, hi);
    let xc = l.max_fast(b, xc, lo);
    let z = b.ins().fmul(xc, xc);
    let p = l.poly(
        b,
        z,
        &[
            1.979_896_3e-11,
            -1.346_406_3e-8,
            9.519_313e-6,
            2.950_060_2e-3,
            1.294_702e-1,
            1.0,
        ],
    );
    let q = l.poly(b, z, &[2.320_527e-4, 2.388_479e-2, 4.628_033_6e-1, 1.0]);
    let num = b.ins().fmul(xc, p);
    let r = b.ins().fdiv(num, q);
    let one = l.constant(b, 1.0);
    let mone = l.constant(b, -1.0);
    let r = l.min_fast(b, r, one);
    let r = l.max_fast(b, r, mone);
    let nan = l.compare(b, FloatCC::Unordered, x, x);
    l.select(b, nan, x, r)
}

/// `sigmoid(x) = 1 / (1 + exp(-x))`, relatively accurate down to the smallest values (a
/// predicted probability of 1e-9 keeps its digits; ROC-AUC ranks by them). Outside exp's range
/// the clamped exp still gives 0 or 1 to single precision, so only NaN needs fixing.
pub fn sigmoid(b: &mut FunctionBuilder<'_>, l: Lanes, x: Value) -> Value {
    let n = b.ins().fneg(x);
    // exp(87) is already so large that 1 / (1 + exp) is below 2e-38.
    let e = exp_in_range(b, l, n, 87.0);
    let one = l.constant(b, 1.0);
    let d = b.ins().fadd(one, e);
    let r = b.ins().fdiv(one, d);
    let nan = l.compare(b, FloatCC::Unordered, x, x);
    l.select(b, nan, x, r)
}
