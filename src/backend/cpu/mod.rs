//! The CPU back end: each function is scheduled (`ir::schedule`: fused kernels and library
//! steps), given a static memory plan (`ir::memory`), and its fused kernels are compiled to
//! machine code with Cranelift (`codegen`). State stays in host memory between calls; one
//! arena holds every temporary; a persistent thread pool runs the steps' parts.

mod codegen;
mod direct;
mod eval;
mod library;
mod math;
mod pool;

#[cfg(test)]
pub(crate) mod tests;

use super::{Backend, Executable, HostTensor, RuntimeError, TensorData};
use crate::diagnostics::Diagnostic;
use crate::ir::memory::{self, Plan};
use crate::ir::schedule::{self, Buf, Schedule, Step, View};
use crate::ir::{self, DType, Program, StateId};
use library::Raw;
use pool::Pool;

pub use pool::default_threads;

pub struct Cpu {
    pub threads: usize,
    /// Use generated code for fused kernels (off: the scalar evaluator, for tests).
    pub jit: bool,
    /// Compute convolutions with few output channels from the image (`direct`), not through
    /// an im2col matrix.
    pub direct_conv: bool,
}

impl Cpu {
    pub fn new() -> Cpu {
        Cpu {
            threads: default_threads(),
            jit: true,
            direct_conv: true,
        }
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new()
    }
}

#[derive(Default)]
struct CompiledFn {
    schedule: Schedule,
    plan: Plan,
    /// Generated code for each step that is a fused kernel.
    kernels: Vec<Option<codegen::KernelFn>>,
    /// Steps run differently (`direct`).
    replace: Vec<Option<direct::Replace>>,
}

pub struct CpuExecutable {
    program: Program,
    fns: Vec<CompiledFn>,
    states: Vec<Vec<f32>>,
    arena: Vec<f32>,
    pool: Pool,
    /// Owns the generated code.
    _jit: Option<codegen::Jit>,
    /// `MLX_PROFILE` set: time spent and calls of every step of every function.
    profile: Option<Vec<Vec<(std::time::Duration, u64)>>>,
}

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn compile(&self, program: &Program) -> Result<Box<dyn Executable>, Diagnostic> {
        ir::verify::program(program)?;
        let started = std::time::Instant::now();
        let mut scheduling = std::time::Duration::ZERO;
        let mut kernels = 0;
        let mut jit = if self.jit {
            Some(codegen::Jit::new()?)
        } else {
            None
        };
        let mut fns = Vec::new();
        let mut arena = 0;
        for f in &program.functions {
            let t = std::time::Instant::now();
            let schedule = schedule::schedule(program, f);
            let replace = if self.direct_conv {
                direct::plan(&schedule)
            } else {
                vec![None; schedule.steps.len()]
            };
            let plan = memory::plan(&direct::for_planning(&schedule, &replace));
            memory::check_bounds(program, f, &schedule)?;
            scheduling += t.elapsed();
            let mut kernel_ids = Vec::new();
            for step in &schedule.steps {
                kernel_ids.push(match (step, jit.as_mut()) {
                    (Step::Kernel(k), Some(j)) => {
                        kernels += 1;
                        j.compile(k)?
                    }
                    _ => None,
                });
            }
            arena = arena.max(plan.size);
            fns.push((schedule, plan, kernel_ids, replace));
        }
        if let Some(j) = jit.as_mut() {
            j.finalize()?;
        }
        let fns: Vec<CompiledFn> = fns
            .into_iter()
            .map(|(schedule, plan, ids, replace)| CompiledFn {
                schedule,
                plan,
                replace,
                kernels: ids
                    .into_iter()
                    .map(|id| id.and_then(|i| jit.as_ref().and_then(|j| j.kernel(i))))
                    .collect(),
            })
            .collect();
        if std::env::var_os("MLX_PROFILE").is_some() {
            let total = started.elapsed();
            eprintln!(
                "profile: compiled {} functions ({kernels} kernels) in {:.1} ms: scheduling and memory plans {:.1} ms, code generation {:.1} ms",
                program.functions.len(),
                total.as_secs_f64() * 1e3,
                scheduling.as_secs_f64() * 1e3,
                (total - scheduling).as_secs_f64() * 1e3
            );
        }
        let profile = std::env::var_os("MLX_PROFILE").map(|_| {
            fns.iter()
                .map(|f: &CompiledFn| vec![Default::default(); f.schedule.steps.len()])
                .collect()
        });
        let mut states = Vec::with_capacity(program.states.len());
        for s in &program.states {
            let n: usize = s.shape.iter().product();
            states.push(zeroed(n).ok_or_else(|| {
                crate::backend::out_of_memory(n, &format!("the tensor `{}` {:?}", s.name, s.shape))
            })?);
        }
        let arena_len = arena + memory::ALIGN;
        let arena = zeroed(arena_len).ok_or_else(|| {
            crate::backend::out_of_memory(arena_len, "the activations of one step")
        })?;
        Ok(Box::new(CpuExecutable {
            program: program.clone(),
            fns,
            states,
            arena,
            pool: Pool::new(self.threads),
            _jit: jit,
            profile,
        }))
    }
}

impl CpuExecutable {
    /// The base pointer of a view's buffer, offset applied.
    fn base(&mut self, plan: &Plan, inputs: &[HostTensor], v: &View) -> *mut f32 {
        let p = match v.buf {
            Buf::Input(i) => match &inputs[i].data {
                TensorData::F32(d) => d.as_ptr() as *mut f32,
                TensorData::I32(d) => d.as_ptr() as *mut f32,
            },
            Buf::State(s) => self.states[s].as_mut_ptr(),
            // SAFETY: the plan's offsets lie inside the arena (sized from the plan).
            Buf::Temp(t) => unsafe { self.arena.as_mut_ptr().add(plan.offsets[t]) },
        };
        // SAFETY: offsets were checked against the buffer (`check_bounds`).
        unsafe { p.add(v.offset) }
    }
}

impl Executable for CpuExecutable {
    fn run(
        &mut self,
        function: usize,
        inputs: &[HostTensor],
    ) -> Result<Vec<HostTensor>, RuntimeError> {
        crate::backend::checked_call(&self.program, function, inputs)?;
        // The compiled function is taken out while it runs, so its steps are borrowed, not
        // cloned, alongside the mutable buffers.
        let compiled = std::mem::take(&mut self.fns[function]);
        let mut result = Ok(());
        for (si, step) in compiled.schedule.steps.iter().enumerate() {
            let start = self.profile.as_ref().map(|_| std::time::Instant::now());
            result = self.step(&compiled, function, si, step, inputs);
            if let (Some(start), Some(p)) = (start, self.profile.as_mut())
                && let Some(slot) = p.get_mut(function).and_then(|f| f.get_mut(si))
            {
                slot.0 += start.elapsed();
                slot.1 += 1;
            }
            if result.is_err() {
                break;
            }
        }
        self.fns[function] = compiled;
        result?;
        let outs: Vec<View> = self.fns[function]
            .schedule
            .outputs
            .iter()
            .map(|(_, v)| v.clone())
            .collect();
        let plan = self.fns[function].plan.clone();
        let mut result = Vec::new();
        for v in outs {
            let base = self.base(&plan, inputs, &v);
            let raw = Raw {
                ptr: base,
                shape: &v.shape,
                strides: &v.strides,
            };
            let mut data: Vec<f32> = vec![0.0; v.numel()];
            let strides = ir::schedule::contiguous_strides(&v.shape);
            let dst = Raw {
                ptr: data.as_mut_ptr(),
                shape: &v.shape,
                strides: &strides,
            };
            library::copy(raw, dst);
            result.push(match v.dtype {
                DType::F32 => HostTensor::f32(v.shape.clone(), data),
                DType::I32 => HostTensor::i32(
                    v.shape.clone(),
                    data.into_iter()
                        .map(f32::to_bits)
                        .map(|b| b as i32)
                        .collect(),
                ),
            });
        }
        Ok(result)
    }

    fn read_state(&self, id: StateId) -> Result<HostTensor, RuntimeError> {
        let decl = self
            .program
            .states
            .get(id)
            .ok_or_else(|| RuntimeError::new("no such state"))?;
        Ok(HostTensor::f32(decl.shape.clone(), self.states[id].clone()))
    }

    fn write_state(&mut self, id: StateId, value: &HostTensor) -> Result<(), RuntimeError> {
        let decl = self
            .program
            .states
            .get(id)
            .ok_or_else(|| RuntimeError::new("no such state"))?;
        if decl.shape != value.shape {
            return Err(RuntimeError::new(format!(
                "state `{}` is {:?}, not {:?}",
                decl.name, decl.shape, value.shape
            )));
        }
        match &value.data {
            TensorData::F32(v) if v.len() == self.states[id].len() => {
                self.states[id].copy_from_slice(v)
            }
            _ => return Err(RuntimeError::new("state must be f32 data of its shape")),
        }
        Ok(())
    }
}

impl CpuExecutable {
    fn raw<'v>(&mut self, plan: &Plan, inputs: &[HostTensor], v: &'v View) -> Raw<'v> {
        Raw {
            ptr: self.base(plan, inputs, v),
            shape: &v.shape,
            strides: &v.strides,
        }
    }

    fn step(
        &mut self,
        cf: &CompiledFn,
        fi: usize,
        si: usize,
        step: &Step,
        inputs: &[HostTensor],
    ) -> Result<(), RuntimeError> {
        let origin = |t: &View| -> Option<crate::source::Span> {
            match t.buf {
                Buf::Temp(i) => cf
                    .schedule
                    .temps
                    .get(i)
                    .and_then(|d| self.program.functions[fi].nodes[d.node].origin),
                _ => None,
            }
        };
        let plan = &cf.plan;
        match (cf.replace.get(si).and_then(|r| r.as_ref()), step) {
            (Some(direct::Replace::Skip), _) => return Ok(()),
            (Some(direct::Replace::Forward(conv)), Step::MatMul { b, out, .. }) => {
                let (x, w, out) = (
                    self.raw(plan, inputs, &conv.x),
                    self.raw(plan, inputs, b),
                    self.raw(plan, inputs, out),
                );
                direct::forward(&self.pool, conv, x, w, out);
                return Ok(());
            }
            (Some(direct::Replace::WeightGrad(conv)), Step::MatMul { b, out, .. }) => {
                let (x, g, out) = (
                    self.raw(plan, inputs, &conv.x),
                    self.raw(plan, inputs, conv.grad.as_ref().unwrap_or(b)),
                    self.raw(plan, inputs, out),
                );
                direct::weight_grad(&self.pool, conv, x, g, out);
                return Ok(());
            }
            _ => {}
        }
        match step {
            Step::Kernel(k) => {
                let loads: Vec<Raw<'_>> =
                    k.loads.iter().map(|v| self.raw(plan, inputs, v)).collect();
                let stores: Vec<Raw<'_>> = k
                    .stores
                    .iter()
                    .map(|(v, _)| self.raw(plan, inputs, v))
                    .collect();
                match cf.kernels[si] {
                    Some(code) => codegen::run(&self.pool, code, &loads, &stores),
                    None => eval::run(k, &loads, &stores),
                }
            }
            Step::MatMul { a, b, out } => {
                let (a, b, out) = (
                    self.raw(plan, inputs, a),
                    self.raw(plan, inputs, b),
                    self.raw(plan, inputs, out),
                );
                library::matmul(&self.pool, a, b, out);
            }
            Step::Im2Col {
                x,
                out,
                kernel,
                stride,
                padding,
                pad_value,
            } => {
                let (x, out) = (self.raw(plan, inputs, x), self.raw(plan, inputs, out));
                library::im2col(&self.pool, x, out, *kernel, *stride, *padding, *pad_value);
            }
            Step::Col2Im {
                cols,
                out,
                kernel,
                stride,
                padding,
            } => {
                let (c, out) = (self.raw(plan, inputs, cols), self.raw(plan, inputs, out));
                library::col2im(&self.pool, c, out, *kernel, *stride, *padding);
            }
            Step::Gather {
                table,
                indices,
                out,
            } => {
                let o = origin(out);
                let (t, i, out) = (
                    self.raw(plan, inputs, table),
                    self.raw(plan, inputs, indices),
                    self.raw(plan, inputs, out),
                );
                library::gather(t, i, out).map_err(|v| RuntimeError {
                    message: format!("index {v} is outside a table of {} rows", table.shape[0]),
                    origin: o,
                })?;
            }
            Step::ScatterAdd {
                indices,
                updates,
                out,
            } => {
                let (i, u, o) = (
                    self.raw(plan, inputs, indices),
                    self.raw(plan, inputs, updates),
                    self.raw(plan, inputs, out),
                );
                library::scatter_add(i, u, o).map_err(|v| {
                    RuntimeError::new(format!(
                        "index {v} is outside a table of {} rows",
                        out.shape[0]
                    ))
                })?;
            }
            Step::Pad {
                x,
                out,
                axis,
                start,
            } => {
                let (x, out) = (self.raw(plan, inputs, x), self.raw(plan, inputs, out));
                library::pad(x, out, *axis, *start);
            }
            Step::Concat { xs, out, axis } => {
                let parts: Vec<Raw<'_>> = xs.iter().map(|x| self.raw(plan, inputs, x)).collect();
                let out = self.raw(plan, inputs, out);
                library::concat(&parts, out, *axis);
            }
            Step::Random { key, counter, out } => {
                let c = self.raw(plan, inputs, counter);
                // SAFETY: a checked scalar view of I32 data.
                let cv = unsafe { *(c.ptr as *const i32) };
                let out = self.raw(plan, inputs, out);
                library::random(&self.pool, *key, cv, out);
            }
            Step::OneHot { x, out, classes } => {
                let (x, out) = (self.raw(plan, inputs, x), self.raw(plan, inputs, out));
                library::one_hot(x, out, *classes);
            }
            Step::Cast { x, out } => {
                let to_i32 = out.dtype == DType::I32;
                let (x, out) = (self.raw(plan, inputs, x), self.raw(plan, inputs, out));
                library::cast(x, out, to_i32);
            }
            Step::Copy { src, dst } => {
                let (s, d) = (self.raw(plan, inputs, src), self.raw(plan, inputs, dst));
                library::copy(s, d);
            }
        }
        Ok(())
    }
}

impl Drop for CpuExecutable {
    /// With `MLX_PROFILE` set: where the time went, by kind of step and by step.
    fn drop(&mut self) {
        let Some(profile) = &self.profile else { return };
        let mut rows = Vec::new();
        let mut by_kind: std::collections::BTreeMap<&str, (f64, u64)> = Default::default();
        let mut total = 0.0;
        for (fi, steps) in profile.iter().enumerate() {
            let Some(cf) = self.fns.get(fi) else { continue };
            for (si, step) in cf.schedule.steps.iter().enumerate() {
                let (t, n) = steps.get(si).copied().unwrap_or_default();
                if n == 0 {
                    continue;
                }
                let secs = t.as_secs_f64();
                total += secs;
                let e = by_kind.entry(schedule::step_name(step)).or_default();
                e.0 += secs;
                e.1 += n;
                rows.push((secs, n, fi, si, schedule::describe(step)));
            }
        }
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        eprintln!("profile: {total:.3} s in steps");
        let mut kinds: Vec<_> = by_kind.into_iter().collect();
        kinds.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        for (k, (t, n)) in kinds {
            eprintln!(
                "  {:>6.1}%  {t:>8.3} s  {k} ({n} runs, {:.1} us each)",
                100.0 * t / total.max(1e-12),
                1e6 * t / n.max(1) as f64
            );
        }
        // `MLX_PROFILE=N` lists the N slowest steps (40 when it is not a number).
        let top = std::env::var("MLX_PROFILE")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 1)
            .unwrap_or(40);
        for (secs, n, fi, si, text) in rows.iter().take(top) {
            let name = self
                .program
                .functions
                .get(*fi)
                .map_or("?", |f| f.name.as_str());
            eprintln!(
                "  {:>6.1}%  {:>9.1} us x{n:<6} {name}#{si} {text}",
                100.0 * secs / total.max(1e-12),
                1e6 * secs / *n as f64
            );
        }
    }
}

/// `n` zeros, or `None` when the memory cannot be had (instead of aborting the process). The
/// pages are zeroed lazily by the system, as `vec![0.0; n]` would have them.
fn zeroed(n: usize) -> Option<Vec<f32>> {
    if n == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<f32>(n).ok()?;
    // SAFETY: `layout` has a non-zero size; a non-null block of it holds `n` zeroed f32s, and
    // it was allocated by the global allocator with the layout `Vec<f32>` of capacity `n`
    // frees it with.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout).cast::<f32>();
        if p.is_null() {
            return None;
        }
        Some(Vec::from_raw_parts(p, n, n))
    }
}
