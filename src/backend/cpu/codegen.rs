//! Cranelift code generation for fused kernels. A kernel becomes one function
//! `fn(ptrs: *const *mut f32, start: i64, end: i64)` that runs its loop nest for outer indices
//! `start..end` (tasks split the outer axis). The iteration space is first coalesced (axes that
//! every operand walks contiguously merge); the innermost loop runs on `f32x4` vectors with a
//! scalar remainder when every operand is contiguous or broadcast along it. Reductions keep
//! their kept axes outside and fold the reduced axes inside, in a fixed order, so results do
//! not depend on how the outer axis was split across threads.
//!
//! Kernels are cached by content: the same kernel (at any batch size's buffers) compiles once.

use super::library::Raw;
use super::math::{Lanes, exp, log};
use super::pool::Pool;
use crate::diagnostics::Diagnostic;
use crate::ir::schedule::{KOp, Kernel};
use crate::ir::{BinaryOp, ReduceOp, UnaryOp};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use std::collections::HashMap;

type KernelPtr = unsafe extern "C" fn(*const *mut f32, i64, i64);

/// A compiled kernel: its code and how to split its outer axis.
#[derive(Clone, Copy)]
pub struct KernelFn {
    ptr: *const u8,
    /// Extent of the outer (parallel) axis.
    outer: usize,
    /// Elements computed per outer index.
    per_outer: usize,
    /// Estimated cost of one element (see `element_cost`).
    cost: usize,
}

/// The work of one element of a kernel, in units of about one simple vector instruction per
/// lane: transcendental functions cost far more than additions, so a kernel of a few
/// thousand sigmoids is worth splitting across threads while an addition that size is not.
fn element_cost(k: &Kernel) -> usize {
    let ops: usize = k
        .ops
        .iter()
        .map(|op| match op {
            KOp::Unary(UnaryOp::Exp | UnaryOp::Log | UnaryOp::Sigmoid | UnaryOp::Tanh, _) => 8,
            KOp::Unary(UnaryOp::Sqrt | UnaryOp::Recip, _)
            | KOp::Binary(BinaryOp::Div | BinaryOp::Pow, ..) => 3,
            KOp::Const(_) => 0,
            _ => 1,
        })
        .sum();
    ops + k.stores.len()
}

// SAFETY: the code is immutable once finalized and lives as long as the `Jit`.
unsafe impl Send for KernelFn {}
unsafe impl Sync for KernelFn {}

/// The loop structure of a kernel after coalescing axes.
#[derive(Clone, Debug, PartialEq)]
struct Layout {
    /// Axes in loop order (outer first), with extents.
    dims: Vec<usize>,
    /// Per operand (loads, then stores): strides along `dims`.
    strides: Vec<Vec<isize>>,
    /// How many leading axes of `dims` are kept (not reduced).
    kept: usize,
    /// A "column" reduction: the reduced axes run outside the last axis, which is kept and
    /// contiguous; each output element still folds its inputs in one fixed order.
    column: bool,
}

/// Loop order and coalesced axes. Axes are grouped (kept outer, reduced, kept inner for column
/// reductions); size-1 axes drop and neighbours merge only within a group.
fn layout(k: &Kernel) -> Layout {
    let rank = k.shape.len();
    let reduced: Vec<usize> = k
        .reduce
        .as_ref()
        .map(|(_, a)| a.clone())
        .unwrap_or_default();
    let kept_axes: Vec<usize> = (0..rank).filter(|a| !reduced.contains(a)).collect();
    let views: Vec<&Vec<isize>> = k
        .loads
        .iter()
        .map(|v| &v.strides)
        .chain(k.stores.iter().map(|(v, _)| &v.strides))
        .collect();
    let n_loads = k.loads.len();
    // Column reductions: when the reduced axes are not contiguous but the last kept axis is.
    let unit = |a: usize| {
        views.iter().enumerate().all(|(o, s)| {
            if o < n_loads {
                matches!(s[a], 0 | 1)
            } else {
                s[a] == 1
            }
        })
    };
    let column = k.reduce.is_some()
        && k.stores.len() == 1
        && reduced.last().is_some_and(|r| !unit(*r) && k.shape[*r] > 1)
        && kept_axes
            .last()
            .is_some_and(|a| unit(*a) && k.shape[*a] >= 4);
    let mut order: Vec<(usize, u8)> = Vec::new();
    if column {
        let (last, outer) = kept_axes
            .split_last()
            .map(|(l, o)| (*l, o.to_vec()))
            .unwrap_or((0, Vec::new()));
        order.extend(outer.iter().map(|a| (*a, 0)));
        order.extend(reduced.iter().map(|a| (*a, 1)));
        order.push((last, 2));
    } else {
        order.extend(kept_axes.iter().map(|a| (*a, 0)));
        order.extend(reduced.iter().map(|a| (*a, 1)));
    }
    let mut dims: Vec<usize> = order.iter().map(|(a, _)| k.shape[*a]).collect();
    let mut group: Vec<u8> = order.iter().map(|(_, g)| *g).collect();
    let mut strides: Vec<Vec<isize>> = views
        .iter()
        .map(|s| order.iter().map(|(a, _)| s[*a]).collect())
        .collect();
    let remove =
        |i: usize, dims: &mut Vec<usize>, group: &mut Vec<u8>, strides: &mut Vec<Vec<isize>>| {
            dims.remove(i);
            group.remove(i);
            for s in strides.iter_mut() {
                s.remove(i);
            }
        };
    let mut i = 0;
    while i < dims.len() {
        let in_group = group.iter().filter(|g| **g == group[i]).count();
        if dims[i] == 1 && in_group > 1 {
            remove(i, &mut dims, &mut group, &mut strides);
        } else {
            i += 1;
        }
    }
    let mut i = 0;
    while i + 1 < dims.len() {
        if group[i] == group[i + 1]
            && strides
                .iter()
                .all(|s| s[i] == s[i + 1] * dims[i + 1] as isize)
        {
            dims[i] *= dims[i + 1];
            for s in &mut strides {
                s[i] = s[i + 1];
            }
            remove(i + 1, &mut dims, &mut group, &mut strides);
        } else {
            i += 1;
        }
    }
    if dims.is_empty() {
        dims.push(1);
        group.push(0);
        for s in &mut strides {
            s.push(0);
        }
    }
    let kept = group.iter().take_while(|g| **g == 0).count();
    let kept = if k.reduce.is_none() { dims.len() } else { kept };
    Layout {
        dims,
        strides,
        kept,
        column,
    }
}

pub struct Jit {
    module: JITModule,
    fctx: FunctionBuilderContext,
    cache: HashMap<String, (FuncId, Layout)>,
    /// Kernels compiled in this module, waiting for `finalize`: code, layout, element cost.
    pending: Vec<(FuncId, Layout, usize)>,
    finalized: Vec<KernelFn>,
    /// Print generated code to stderr (`MLX_DEBUG` set).
    debug: bool,
}

fn jit_error(what: &str, e: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::internal(format!("the CPU code generator failed to {what}: {e}"))
}

impl Jit {
    pub fn new() -> Result<Jit, Diagnostic> {
        let mut flags = settings::builder();
        flags
            .set("opt_level", "speed")
            .map_err(|e| jit_error("configure", e))?;
        flags
            .set("use_colocated_libcalls", "false")
            .map_err(|e| jit_error("configure", e))?;
        flags
            .set("is_pic", "false")
            .map_err(|e| jit_error("configure", e))?;
        // The host's features (SSE4.1, AVX, FMA, ...): without them `fma` is a library call.
        let isa = cranelift_native::builder()
            .map_err(|e| jit_error("find the host ISA", e))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| jit_error("configure the host ISA", e))?;
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        Ok(Jit {
            module,
            fctx: FunctionBuilderContext::new(),
            cache: HashMap::new(),
            pending: Vec::new(),
            finalized: Vec::new(),
            debug: std::env::var_os("MLX_DEBUG").is_some(),
        })
    }

    /// Compile a kernel; `Ok(None)` for kernels left to the scalar evaluator (those using
    /// `pow`). The returned id is valid after `finalize`.
    pub fn compile(&mut self, k: &Kernel) -> Result<Option<usize>, Diagnostic> {
        if k.ops
            .iter()
            .any(|o| matches!(o, KOp::Binary(BinaryOp::Pow, ..)))
        {
            return Ok(None);
        }
        let lay = layout(k);
        let key = format!(
            "{:?}|{:?}|{:?}|{:?}",
            lay,
            k.reduce.as_ref().map(|r| r.0),
            k.ops,
            k.stores.iter().map(|(_, s)| *s).collect::<Vec<_>>()
        );
        let cost = element_cost(k);
        if let Some((id, l)) = self.cache.get(&key) {
            self.pending.push((*id, l.clone(), cost));
            return Ok(Some(self.pending.len() - 1));
        }
        let ptr_ty = self.module.target_config().pointer_type();
        let mut ctx = self.module.make_context();
        ctx.func.signature.params.push(AbiParam::new(ptr_ty));
        ctx.func.signature.params.push(AbiParam::new(types::I64));
        ctx.func.signature.params.push(AbiParam::new(types::I64));
        let name = format!("kernel{}", self.cache.len());
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &ctx.func.signature)
            .map_err(|e| jit_error("declare a kernel", e))?;
        let target = self.module.target_config();
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut self.fctx);
            Emitter::new(&mut b, k, &lay, ptr_ty).emit();
            b.seal_all_blocks();
            b.finalize(target);
        }
        if self.debug {
            eprintln!(
                "; {name}: {:?} reduce {:?}\n{}",
                lay.dims,
                k.reduce,
                ctx.func.display()
            );
        }
        ctx.set_disasm(self.debug);
        self.module
            .define_function(id, &mut ctx)
            .map_err(|e| jit_error("compile a kernel", format!("{e:?}")))?;
        if self.debug
            && let Some(asm) = ctx.compiled_code().and_then(|c| c.vcode.as_ref())
        {
            eprintln!("; {name} machine code\n{asm}");
        }
        self.module.clear_context(&mut ctx);
        self.cache.insert(key, (id, lay.clone()));
        self.pending.push((id, lay, cost));
        Ok(Some(self.pending.len() - 1))
    }

    /// Link everything compiled so far.
    pub fn finalize(&mut self) -> Result<(), Diagnostic> {
        self.module
            .finalize_definitions()
            .map_err(|e| jit_error("link kernels", e))?;
        self.finalized = self
            .pending
            .iter()
            .map(|(id, lay, cost)| {
                let total: usize = lay.dims.iter().product();
                let outer = if lay.kept > 0 {
                    lay.dims[0]
                } else if lay.column {
                    lay.dims[lay.dims.len() - 1]
                } else {
                    1
                };
                KernelFn {
                    ptr: self.module.get_finalized_function(*id),
                    outer,
                    per_outer: total / outer.max(1),
                    cost: *cost,
                }
            })
            .collect();
        Ok(())
    }

    pub fn kernel(&self, id: usize) -> Option<KernelFn> {
        self.finalized.get(id).copied()
    }
}

/// Work a task should have at least, in `element_cost` units (below this, handing work to
/// another thread costs more than it saves).
const MIN_TASK: usize = 64 * 1024;

/// Run a compiled kernel on resolved views, splitting its outer axis across the pool.
pub fn run(pool: &Pool, code: KernelFn, loads: &[Raw<'_>], stores: &[Raw<'_>]) {
    let ptrs: Vec<*mut f32> = loads.iter().chain(stores).map(|r| r.ptr).collect();
    // SAFETY: the function was generated for this kernel's layout; every address it computes
    // lies inside the views, which were checked against their buffers.
    let f: KernelPtr = unsafe { std::mem::transmute::<*const u8, KernelPtr>(code.ptr) };
    let total = code.outer * code.per_outer;
    let tasks = (total * code.cost / MIN_TASK)
        .clamp(1, code.outer.max(1))
        .min(pool.threads() * 4);
    if tasks <= 1 {
        unsafe { f(ptrs.as_ptr(), 0, code.outer as i64) };
        return;
    }
    let chunk = code.outer.div_ceil(tasks);
    let shared = SendPtrs(ptrs.as_ptr());
    pool.run(tasks, &|t| {
        let s = t * chunk;
        let e = ((t + 1) * chunk).min(code.outer);
        if s < e {
            let p = &shared;
            // SAFETY: tasks cover disjoint outer ranges, so they write disjoint elements.
            unsafe { f(p.0, s as i64, e as i64) };
        }
    });
}

struct SendPtrs(*const *mut f32);
// SAFETY: the pointer array outlives `pool.run`, and tasks only read it.
unsafe impl Sync for SendPtrs {}

/// Flags for element loads and stores: they cannot trap (views are checked against their
/// buffers) but need not be aligned (a view may start at any element), so no instruction that
/// requires alignment is used for them.
fn data_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Emits one kernel's function body.
struct Emitter<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    k: &'a Kernel,
    lay: &'a Layout,
    ptr_ty: Type,
    /// Base address of each operand (loads, then stores), per loop depth.
    base: Vec<Variable>,
    /// Inside an indexed loop (`strided_loop`): its axis and the byte offset of the current
    /// position from the bases, which then stay put.
    inner: Option<(usize, Variable)>,
}

impl<'a, 'b> Emitter<'a, 'b> {
    fn new(
        b: &'a mut FunctionBuilder<'b>,
        k: &'a Kernel,
        lay: &'a Layout,
        ptr_ty: Type,
    ) -> Emitter<'a, 'b> {
        Emitter {
            b,
            k,
            lay,
            ptr_ty,
            base: Vec::new(),
            inner: None,
        }
    }

    /// The address of operand `op` at the current position.
    fn addr(&mut self, op: usize) -> Value {
        let base = self.b.use_var(self.base[op]);
        match self.inner {
            Some((depth, off)) if self.lay.strides[op][depth] != 0 => {
                let o = self.b.use_var(off);
                self.b.ins().iadd(base, o)
            }
            _ => base,
        }
    }

    fn vector(&self) -> Lanes {
        Lanes::vector()
    }

    fn nops(&self) -> usize {
        self.k.loads.len() + self.k.stores.len()
    }

    fn emit(&mut self) {
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let params = self.b.block_params(entry).to_vec();
        let (ptrs, start, end) = (params[0], params[1], params[2]);
        let flags = MemFlagsData::trusted();
        for i in 0..self.nops() {
            let v = self.b.declare_var(self.ptr_ty);
            let p = self.b.ins().load(self.ptr_ty, flags, ptrs, (i * 8) as i32);
            self.b.def_var(v, p);
            self.base.push(v);
        }
        if self.lay.column && self.lay.kept == 0 {
            // Tasks split the last (kept) axis; the reduced axes run outside it.
            let zero = self.b.ins().iconst(types::I64, 0);
            self.column_reduction(0, zero, start, end);
        } else if self.lay.kept == 0 {
            // A full reduction: one output element, everything reduced.
            self.reduction(0);
        } else {
            // The outer axis runs start..end; advance every base to `start` first.
            self.advance(0, start);
            self.loop_over(0, start, end);
        }
        self.b.ins().return_(&[]);
    }

    /// Add `index * stride[depth]` to every operand's base.
    fn advance(&mut self, depth: usize, index: Value) {
        for op in 0..self.nops() {
            let st = self.lay.strides[op][depth];
            if st == 0 {
                continue;
            }
            let cur = self.b.use_var(self.base[op]);
            let off = self.b.ins().imul_imm_s(index, (st * 4) as i64);
            let nb = self.b.ins().iadd(cur, off);
            self.b.def_var(self.base[op], nb);
        }
    }

    /// A counted loop `for i in from..to` at `depth` around `body`; bases advance by one
    /// stride per iteration and are restored after.
    fn counted_loop(
        &mut self,
        depth: usize,
        from: Value,
        to: Value,
        body: &mut dyn FnMut(&mut Self),
    ) {
        let saved: Vec<Value> = (0..self.nops())
            .map(|o| self.b.use_var(self.base[o]))
            .collect();
        let i = self.b.declare_var(types::I64);
        self.b.def_var(i, from);
        let head = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let iv = self.b.use_var(i);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, iv, to);
        self.b.ins().brif(more, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        body(self);
        for op in 0..self.nops() {
            let st = self.lay.strides[op][depth];
            if st != 0 {
                let cur = self.b.use_var(self.base[op]);
                let nb = self.b.ins().iadd_imm_s(cur, (st * 4) as i64);
                self.b.def_var(self.base[op], nb);
            }
        }
        let iv = self.b.use_var(i);
        let next = self.b.ins().iadd_imm_s(iv, 1);
        self.b.def_var(i, next);
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(exit);
        for (o, v) in saved.into_iter().enumerate() {
            self.b.def_var(self.base[o], v);
        }
    }

    /// Loops over kept axes from `depth`; at the last kept axis, the element work (or the
    /// reduction of one output element).
    fn loop_over(&mut self, depth: usize, from: Value, to: Value) {
        let last_kept = self.lay.kept - 1;
        let innermost = self.lay.dims.len() - 1;
        if depth == last_kept && depth == innermost && self.k.reduce.is_none() {
            self.inner_elementwise(from, to);
            return;
        }
        self.counted_loop(depth, from, to, &mut |e| {
            if depth < last_kept {
                let zero = e.b.ins().iconst(types::I64, 0);
                let n = e.b.ins().iconst(types::I64, e.lay.dims[depth + 1] as i64);
                e.loop_over(depth + 1, zero, n);
            } else if e.lay.column {
                let zero = e.b.ins().iconst(types::I64, 0);
                let n =
                    e.b.ins()
                        .iconst(types::I64, e.lay.dims[e.lay.dims.len() - 1] as i64);
                e.column_reduction(depth + 1, zero, zero, n);
            } else {
                e.reduction(depth + 1);
            }
        });
    }

    /// Vectors of 4 along `depth`: stores need unit stride; loads of any other stride than 0
    /// (splat) or 1 are gathered lane by lane, which still beats scalar code once the kernel
    /// does more than copy (a transposed operand feeding a bias and an activation, say).
    fn vectorizable(&self, depth: usize) -> bool {
        let n_loads = self.k.loads.len();
        let stores_unit = (n_loads..self.nops()).all(|o| self.lay.strides[o][depth] == 1);
        let gathers = (0..n_loads)
            .filter(|&o| !matches!(self.lay.strides[o][depth], 0 | 1))
            .count();
        let work = self
            .k
            .ops
            .iter()
            .filter(|op| !matches!(op, KOp::Load(_) | KOp::Const(_)))
            .count();
        stores_unit && self.lay.dims[depth] >= 4 && (gathers == 0 || work >= gathers)
    }

    /// The innermost elementwise loop over `from..to` (bases stand at `from`): vectors of 4,
    /// then single elements.
    fn inner_elementwise(&mut self, from: Value, to: Value) {
        let depth = self.lay.dims.len() - 1;
        let at = from;
        let mut start = from;
        if self.vectorizable(depth) {
            // Vector part: up to the largest multiple of 4 from `from`.
            let span = self.b.ins().isub(to, from);
            let rem = self.b.ins().band_imm_s(span, 3);
            let vec_end = self.b.ins().isub(to, rem);
            let lanes = self.vector();
            self.strided_loop(depth, at, from, vec_end, 4, &mut |e| {
                e.body_storing(lanes);
            });
            start = vec_end;
        }
        let lanes = Lanes::scalar();
        self.strided_loop(depth, at, start, to, 1, &mut |e| {
            e.body_storing(lanes);
        });
    }

    /// A loop over `from..to` of axis `depth`, `step` elements at a time (the body handles
    /// `step` elements). The bases stand at index `at` of this axis on entry and are restored
    /// on exit.
    #[allow(clippy::too_many_arguments)]
    fn strided_loop(
        &mut self,
        depth: usize,
        at: Value,
        from: Value,
        to: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self),
    ) {
        let saved: Vec<Value> = (0..self.nops())
            .map(|o| self.b.use_var(self.base[o]))
            .collect();
        let delta = self.b.ins().isub(from, at);
        self.advance(depth, delta);
        // Unit or zero strides (the usual inner loop): one offset for every operand instead of
        // one pointer increment each (a kernel with many operands would spill its pointers).
        let indexed = self.inner.is_none()
            && (0..self.nops()).all(|o| matches!(self.lay.strides[o][depth], 0 | 1));
        let off = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(off, zero);
        let i = self.b.declare_var(types::I64);
        self.b.def_var(i, from);
        let head = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let iv = self.b.use_var(i);
        let next_end = self.b.ins().iadd_imm_s(iv, step);
        let more = self
            .b
            .ins()
            .icmp(IntCC::SignedLessThanOrEqual, next_end, to);
        self.b.ins().brif(more, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        if indexed {
            self.inner = Some((depth, off));
            body(self);
            self.inner = None;
            let o = self.b.use_var(off);
            let next = self.b.ins().iadd_imm_s(o, 4 * step);
            self.b.def_var(off, next);
        } else {
            body(self);
            for op in 0..self.nops() {
                let st = self.lay.strides[op][depth];
                if st != 0 {
                    let cur = self.b.use_var(self.base[op]);
                    let nb = self.b.ins().iadd_imm_s(cur, (st as i64) * 4 * step);
                    self.b.def_var(self.base[op], nb);
                }
            }
        }
        let iv = self.b.use_var(i);
        let next = self.b.ins().iadd_imm_s(iv, step);
        self.b.def_var(i, next);
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(exit);
        for (o, v) in saved.into_iter().enumerate() {
            self.b.def_var(self.base[o], v);
        }
    }

    /// A column reduction over the reduced axes `depth..last` into the output elements
    /// `from..to` of the last axis (bases at index `at` of it): the outputs are set to the
    /// fold's start value, then each reduced position is folded into them in order.
    fn column_reduction(&mut self, depth: usize, at: Value, from: Value, to: Value) {
        let Some((rop, _)) = self.k.reduce.clone() else {
            return;
        };
        let last = self.lay.dims.len() - 1;
        let out = self.k.loads.len();
        let init = match rop {
            ReduceOp::Sum => 0.0f32,
            ReduceOp::Max => f32::NEG_INFINITY,
        };
        let span = self.b.ins().isub(to, from);
        let rem = self.b.ins().band_imm_s(span, 3);
        let vec_end = self.b.ins().isub(to, rem);
        let vectorize = self.lay.dims[last] >= 4;
        let vlanes = self.vector();
        let lanes_for = move |vector: bool| if vector { vlanes } else { Lanes::scalar() };
        for (vector, lo, hi) in [(true, from, vec_end), (false, vec_end, to)] {
            if vector && !vectorize {
                continue;
            }
            let (lo, hi) = if vectorize { (lo, hi) } else { (from, to) };
            let lanes = lanes_for(vector);
            let step = if vector { 4 } else { 1 };
            self.strided_loop(last, at, lo, hi, step, &mut |e| {
                let p = e.addr(out);
                let c = lanes.constant(e.b, init);
                e.b.ins().store(data_flags(), c, p, 0);
            });
        }
        self.column_loops(depth, last, at, from, vec_end, to, vectorize, rop);
    }

    #[allow(clippy::too_many_arguments)]
    fn column_loops(
        &mut self,
        depth: usize,
        last: usize,
        at: Value,
        from: Value,
        vec_end: Value,
        to: Value,
        vectorize: bool,
        rop: ReduceOp,
    ) {
        if depth < last {
            let zero = self.b.ins().iconst(types::I64, 0);
            let n = self.b.ins().iconst(types::I64, self.lay.dims[depth] as i64);
            self.counted_loop(depth, zero, n, &mut |e| {
                e.column_loops(depth + 1, last, at, from, vec_end, to, vectorize, rop)
            });
            return;
        }
        let out = self.k.loads.len();
        let src = self.k.stores[0].1;
        for (vector, lo, hi) in [(true, from, vec_end), (false, vec_end, to)] {
            if vector && !vectorize {
                continue;
            }
            let (lo, hi) = if vectorize { (lo, hi) } else { (from, to) };
            let lanes = if vector {
                self.vector()
            } else {
                Lanes::scalar()
            };
            let step = if vector { 4 } else { 1 };
            self.strided_loop(last, at, lo, hi, step, &mut |e| {
                let vals = e.body(lanes);
                let p = e.addr(out);
                let acc = e.b.ins().load(lanes.ty(), data_flags(), p, 0);
                let n = match rop {
                    ReduceOp::Sum => e.b.ins().fadd(acc, vals[src]),
                    ReduceOp::Max => nan_max(e.b, lanes, acc, vals[src]),
                };
                e.b.ins().store(data_flags(), n, p, 0);
            });
        }
    }

    /// Reduce over the axes from `depth` (all reduced) into one output element.
    fn reduction(&mut self, depth: usize) {
        let Some((rop, _)) = self.k.reduce.clone() else {
            return;
        };
        let innermost = self.lay.dims.len() - 1;
        let n_side = self.k.stores.len() - 1;
        let init = match rop {
            ReduceOp::Sum => 0.0f32,
            ReduceOp::Max => f32::NEG_INFINITY,
        };
        let acc_s = self.b.declare_var(types::F32);
        let acc_v = self.b.declare_var(types::F32X4);
        let c = self.b.ins().f32const(init);
        self.b.def_var(acc_s, c);
        let cv = self.b.ins().splat(types::F32X4, c);
        self.b.def_var(acc_v, cv);
        let red_src = self.k.stores[n_side].1;
        let fold = move |e: &mut Self, lanes: Lanes, vals: &[Value]| {
            let v = vals[red_src];
            let var = if lanes.is_vector() { acc_v } else { acc_s };
            let acc = e.b.use_var(var);
            let n = match rop {
                ReduceOp::Sum => e.b.ins().fadd(acc, v),
                ReduceOp::Max => nan_max(e.b, lanes, acc, v),
            };
            e.b.def_var(var, n);
        };
        self.reduce_loops(depth, innermost, n_side, &fold);
        // Fold the vector lanes in a fixed order, then the scalar part.
        let v = self.b.use_var(acc_v);
        let mut total = self.b.ins().extractlane(v, 0u8);
        for lane in 1..4u8 {
            let l = self.b.ins().extractlane(v, lane);
            total = match rop {
                ReduceOp::Sum => self.b.ins().fadd(total, l),
                ReduceOp::Max => nan_max(self.b, Lanes::scalar(), total, l),
            };
        }
        let s = self.b.use_var(acc_s);
        total = match rop {
            ReduceOp::Sum => self.b.ins().fadd(total, s),
            ReduceOp::Max => nan_max(self.b, Lanes::scalar(), total, s),
        };
        let out = self.b.use_var(self.base[self.k.loads.len() + n_side]);
        self.b.ins().store(data_flags(), total, out, 0);
    }

    fn reduce_loops(
        &mut self,
        depth: usize,
        innermost: usize,
        n_side: usize,
        fold: &dyn Fn(&mut Self, Lanes, &[Value]),
    ) {
        let zero = self.b.ins().iconst(types::I64, 0);
        let n = self.b.ins().iconst(types::I64, self.lay.dims[depth] as i64);
        if depth < innermost {
            self.counted_loop(depth, zero, n, &mut |e| {
                e.reduce_loops(depth + 1, innermost, n_side, fold)
            });
            return;
        }
        let mut start = zero;
        let loads_ok = (0..self.k.loads.len()).all(|o| matches!(self.lay.strides[o][depth], 0 | 1));
        let sides_ok = (0..n_side).all(|s| self.lay.strides[self.k.loads.len() + s][depth] == 1);
        if loads_ok && sides_ok && self.lay.dims[depth] >= 4 {
            let rem = self.lay.dims[depth] as i64 % 4;
            let vec_end = self
                .b
                .ins()
                .iconst(types::I64, self.lay.dims[depth] as i64 - rem);
            self.strided_loop(depth, zero, zero, vec_end, 4, &mut |e| {
                let v = e.vector();
                let vals = e.body(v);
                e.store_sides(v, &vals, n_side);
                fold(e, v, &vals);
            });
            start = vec_end;
        }
        self.strided_loop(depth, zero, start, n, 1, &mut |e| {
            let vals = e.body(Lanes::scalar());
            e.store_sides(Lanes::scalar(), &vals, n_side);
            fold(e, Lanes::scalar(), &vals);
        });
    }

    fn store_sides(&mut self, lanes: Lanes, vals: &[Value], n_side: usize) {
        for s in 0..n_side {
            let src = self.k.stores[s].1;
            let p = self.addr(self.k.loads.len() + s);
            self.b.ins().store(data_flags(), vals[src], p, 0);
        }
        let _ = lanes;
    }

    /// The kernel's ops at the current position, each stored as soon as it is computed (a
    /// value held to the end of a long body would take a register throughout it).
    fn body_storing(&mut self, lanes: Lanes) {
        self.body_with(lanes, true);
    }

    /// The kernel's ops at the current position: one value per op.
    fn body(&mut self, lanes: Lanes) -> Vec<Value> {
        self.body_with(lanes, false)
    }

    fn body_with(&mut self, lanes: Lanes, store: bool) -> Vec<Value> {
        let flags = data_flags();
        let depth = self.lay.dims.len() - 1;
        let mut vals: Vec<Value> = Vec::with_capacity(self.k.ops.len());
        for op in &self.k.ops {
            let v = match op {
                KOp::Load(l) => {
                    let p = self.addr(*l);
                    let st = self.lay.strides[*l][depth];
                    if lanes.is_vector() && st == 0 {
                        let s = self.b.ins().load(types::F32, flags, p, 0);
                        self.b.ins().splat(types::F32X4, s)
                    } else if lanes.is_vector() && st != 1 {
                        // A gather: four scalar loads `st` elements apart.
                        let first = self.b.ins().load(types::F32, flags, p, 0);
                        let mut v = self.b.ins().splat(types::F32X4, first);
                        for lane in 1..4u8 {
                            let off = i32::try_from(st * 4 * isize::from(lane));
                            let x = match off {
                                Ok(off) => self.b.ins().load(types::F32, flags, p, off),
                                Err(_) => {
                                    let q = self
                                        .b
                                        .ins()
                                        .iadd_imm_s(p, (st * 4) as i64 * i64::from(lane));
                                    self.b.ins().load(types::F32, flags, q, 0)
                                }
                            };
                            v = self.b.ins().insertlane(v, x, lane);
                        }
                        v
                    } else {
                        self.b.ins().load(lanes.ty(), flags, p, 0)
                    }
                }
                KOp::Const(bits) => lanes.constant(self.b, f32::from_bits(*bits)),
                KOp::Unary(u, a) => unary(self.b, lanes, *u, vals[*a]),
                KOp::Binary(op, a, c) => binary(self.b, lanes, *op, vals[*a], vals[*c]),
                KOp::Select(c, a, e) => {
                    let zero = lanes.constant(self.b, 0.0);
                    let m = lanes.compare(self.b, FloatCC::NotEqual, vals[*c], zero);
                    lanes.select(self.b, m, vals[*a], vals[*e])
                }
            };
            vals.push(v);
            if store {
                let at = vals.len() - 1;
                for s in 0..self.k.stores.len() {
                    if self.k.stores[s].1 == at {
                        let p = self.addr(self.k.loads.len() + s);
                        self.b.ins().store(data_flags(), v, p, 0);
                    }
                }
            }
        }
        vals
    }
}

/// NaN-propagating maximum (as the interpreter defines it).
fn nan_max(b: &mut FunctionBuilder<'_>, lanes: Lanes, x: Value, y: Value) -> Value {
    min_max(b, lanes, BinaryOp::Max, x, y)
}

/// `x >= y ? x : y` (max) or `x <= y ? x : y` (min), NaN when either is NaN, as the
/// interpreter defines them: one `maxps`/`minps` (the shapes Cranelift matches) and a NaN fix.
fn min_max(b: &mut FunctionBuilder<'_>, lanes: Lanes, op: BinaryOp, x: Value, y: Value) -> Value {
    let pick_y = if op == BinaryOp::Max {
        lanes.compare(b, FloatCC::LessThan, x, y)
    } else {
        lanes.compare(b, FloatCC::LessThan, y, x)
    };
    // NaN in x: the comparison is false and x comes out.
    let r = lanes.select(b, pick_y, y, x);
    let y_nan = lanes.compare(b, FloatCC::Unordered, y, y);
    lanes.select(b, y_nan, y, r)
}

fn unary(b: &mut FunctionBuilder<'_>, lanes: Lanes, op: UnaryOp, x: Value) -> Value {
    match op {
        UnaryOp::Neg => b.ins().fneg(x),
        UnaryOp::Abs => b.ins().fabs(x),
        UnaryOp::Sqrt => b.ins().sqrt(x),
        UnaryOp::Recip => {
            let one = lanes.constant(b, 1.0);
            b.ins().fdiv(one, x)
        }
        UnaryOp::Exp => exp(b, lanes, x),
        UnaryOp::Log => log(b, lanes, x),
        UnaryOp::Sigmoid => super::math::sigmoid(b, lanes, x),
        UnaryOp::Tanh => super::math::tanh(b, lanes, x),
        UnaryOp::Sign => {
            let zero = lanes.constant(b, 0.0);
            let one = lanes.constant(b, 1.0);
            let mone = lanes.constant(b, -1.0);
            let pos = lanes.compare(b, FloatCC::GreaterThan, x, zero);
            let neg = lanes.compare(b, FloatCC::LessThan, x, zero);
            let t = lanes.select(b, neg, mone, zero);
            lanes.select(b, pos, one, t)
        }
    }
}

fn binary(b: &mut FunctionBuilder<'_>, lanes: Lanes, op: BinaryOp, x: Value, y: Value) -> Value {
    let cmp = |b: &mut FunctionBuilder<'_>, cc: FloatCC| {
        let m = lanes.compare(b, cc, x, y);
        let one = lanes.constant(b, 1.0);
        let zero = lanes.constant(b, 0.0);
        lanes.select(b, m, one, zero)
    };
    match op {
        BinaryOp::Add => b.ins().fadd(x, y),
        BinaryOp::Sub => b.ins().fsub(x, y),
        BinaryOp::Mul => b.ins().fmul(x, y),
        BinaryOp::Div => b.ins().fdiv(x, y),
        // `x >= y ? x : y` with NaN from either side, as the interpreter defines max.
        BinaryOp::Max | BinaryOp::Min => min_max(b, lanes, op, x, y),
        BinaryOp::Pow => x,
        BinaryOp::Lt => cmp(b, FloatCC::LessThan),
        BinaryOp::Le => cmp(b, FloatCC::LessThanOrEqual),
        BinaryOp::Gt => cmp(b, FloatCC::GreaterThan),
        BinaryOp::Ge => cmp(b, FloatCC::GreaterThanOrEqual),
        BinaryOp::Eq => cmp(b, FloatCC::Equal),
        BinaryOp::Ne => cmp(b, FloatCC::NotEqual),
    }
}
