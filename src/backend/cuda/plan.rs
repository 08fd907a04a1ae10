//! What the GPU runs for a program: every function's schedule (`ir::schedule`, the same pass
//! and memory plan as the CPU back end) lowered to device commands. Fused kernels and library
//! steps become launches of generated kernels (`codegen`), matrix products become cuBLAS calls
//! (`gemm`), and every pointer is a location in one of a few device buffers: the function's
//! inputs, each state, one arena for every temporary (offsets from `ir::memory`), a scratch
//! area and an error word. Pure data, built without CUDA, so it is tested in every build.

use super::codegen::{self, Code};
use super::gemm::{self, Gemm};
use crate::diagnostics::Diagnostic;
use crate::ir::memory;
use crate::ir::schedule::{self, Buf, KOp, Kernel, Schedule, Step, View};
use crate::ir::{DType, Function, Program};
use crate::source::Span;
use std::collections::HashMap;

/// Launches use at most this many blocks (every kernel loops grid-stride).
pub const MAX_GRID: u64 = 8192;

/// A device buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// The function's `i`-th input.
    Input(usize),
    State(usize),
    /// Every temporary of every function (one function runs at a time).
    Arena,
    /// Operands copied for cuBLAS, and outputs gathered before they are copied back.
    Scratch,
    /// Two words: the code of the first failed index check and the bad index.
    Errors,
}

/// A place in a buffer, in 4-byte words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Loc {
    pub region: Region,
    pub offset: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    Ptr(Loc),
    U64(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    /// Index into `Plan::kernels`.
    pub kernel: usize,
    pub grid: u32,
    pub block: u32,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Launch(Launch),
    Gemm(Gemm<Loc>),
}

/// An index check that can fail at run time (a gather or scatter), for its message.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexCheck {
    pub rows: usize,
    pub origin: Option<Span>,
}

/// Where an output can be read once the function's commands have run (contiguous).
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub loc: Loc,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnPlan {
    pub name: String,
    pub commands: Vec<Command>,
    /// Which step of the schedule each command comes from (for profiles and dumps).
    pub step_of: Vec<usize>,
    pub outputs: Vec<Output>,
    /// Index checks; error code `i + 1` is check `i`.
    pub checks: Vec<IndexCheck>,
    /// Words of arena and scratch it needs.
    pub arena: usize,
    pub scratch: usize,
    pub schedule: Schedule,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Plan {
    /// Every distinct kernel, named by its hash.
    pub kernels: Vec<Code>,
    pub functions: Vec<FnPlan>,
}

impl Plan {
    /// The CUDA C translation unit: the prelude, then every kernel.
    pub fn source(&self) -> String {
        let mut s = String::from(codegen::PRELUDE);
        for k in &self.kernels {
            s.push('\n');
            s.push_str(&k.source);
        }
        s
    }

    pub fn arena_words(&self) -> usize {
        self.functions.iter().map(|f| f.arena).max().unwrap_or(0) + memory::ALIGN
    }

    pub fn scratch_words(&self) -> usize {
        self.functions.iter().map(|f| f.scratch).max().unwrap_or(0) + memory::ALIGN
    }
}

/// Plan every function of `p`.
pub fn plan(p: &Program) -> Result<Plan, Diagnostic> {
    crate::ir::verify::program(p)?;
    let mut b = Builder {
        kernels: Vec::new(),
        index: HashMap::new(),
    };
    let mut functions = Vec::new();
    for f in &p.functions {
        functions.push(b.function(p, f)?);
    }
    Ok(Plan {
        kernels: b.kernels,
        functions,
    })
}

struct Builder {
    kernels: Vec<Code>,
    index: HashMap<String, usize>,
}

/// Lowering state of one function.
struct FnBuilder<'a> {
    f: &'a Function,
    temps: &'a [schedule::Temp],
    offsets: &'a [usize],
    commands: Vec<Command>,
    step_of: Vec<usize>,
    step: usize,
    checks: Vec<IndexCheck>,
    scratch: usize,
}

impl FnBuilder<'_> {
    fn loc(&self, v: &View) -> Loc {
        match v.buf {
            Buf::Input(i) => Loc {
                region: Region::Input(i),
                offset: v.offset,
            },
            Buf::State(s) => Loc {
                region: Region::State(s),
                offset: v.offset,
            },
            Buf::Temp(t) => Loc {
                region: Region::Arena,
                offset: self.offsets[t] + v.offset,
            },
        }
    }

    fn ptr(&self, v: &View) -> Arg {
        Arg::Ptr(self.loc(v))
    }

    fn push(&mut self, c: Command) {
        self.commands.push(c);
        self.step_of.push(self.step);
    }
}

impl Builder {
    fn add(&mut self, code: Code) -> usize {
        if let Some(i) = self.index.get(&code.name) {
            return *i;
        }
        self.index.insert(code.name.clone(), self.kernels.len());
        self.kernels.push(code);
        self.kernels.len() - 1
    }

    fn launch(&mut self, fb: &mut FnBuilder<'_>, code: Code, args: Vec<Arg>) {
        let grid = code.blocks.clamp(1, MAX_GRID) as u32;
        let block = code.block;
        let kernel = self.add(code);
        fb.push(Command::Launch(Launch {
            kernel,
            grid,
            block,
            args,
        }));
    }

    fn function(&mut self, p: &Program, f: &Function) -> Result<FnPlan, Diagnostic> {
        let sched = schedule::schedule(p, f);
        let mplan = memory::plan(&sched);
        memory::check_bounds(p, f, &sched)?;
        let mut fb = FnBuilder {
            f,
            temps: &sched.temps,
            offsets: &mplan.offsets,
            commands: Vec::new(),
            step_of: Vec::new(),
            step: 0,
            checks: Vec::new(),
            scratch: 0,
        };
        for (i, step) in sched.steps.iter().enumerate() {
            fb.step = i;
            self.step(&mut fb, step)?;
        }
        // Outputs that are not contiguous are gathered into scratch after the last step.
        fb.step = sched.steps.len();
        let mut at = 0usize;
        let mut outputs = Vec::new();
        for (_, v) in &sched.outputs {
            let loc = if v.is_contiguous() {
                fb.loc(v)
            } else {
                let dst = Loc {
                    region: Region::Scratch,
                    offset: at,
                };
                let code = codegen::copy(v, &codegen::dense(v.buf, &v.shape, v.dtype));
                let src = fb.ptr(v);
                self.launch(&mut fb, code, vec![src, Arg::Ptr(dst)]);
                at += v.numel().next_multiple_of(memory::ALIGN);
                dst
            };
            outputs.push(Output {
                loc,
                shape: v.shape.clone(),
                dtype: v.dtype,
            });
        }
        let scratch = fb.scratch.max(at);
        Ok(FnPlan {
            name: f.name.clone(),
            commands: fb.commands,
            step_of: fb.step_of,
            outputs,
            checks: fb.checks,
            arena: mplan.size,
            scratch,
            schedule: sched,
        })
    }

    fn step(&mut self, fb: &mut FnBuilder<'_>, step: &Step) -> Result<(), Diagnostic> {
        match step {
            Step::Kernel(k) => {
                let args = k
                    .loads
                    .iter()
                    .chain(k.stores.iter().map(|(v, _)| v))
                    .map(|v| fb.ptr(v))
                    .collect();
                self.launch(fb, codegen::kernel(k), args);
            }
            Step::MatMul { a, b, out } => self.matmul(fb, a, b, out)?,
            Step::Im2Col {
                x,
                out,
                kernel,
                stride,
                padding,
                pad_value,
            } => {
                let code = codegen::im2col(x, out, *kernel, *stride, *padding, *pad_value);
                let args = vec![fb.ptr(x), fb.ptr(out)];
                self.launch(fb, code, args);
            }
            Step::Col2Im {
                cols,
                out,
                kernel,
                stride,
                padding,
            } => {
                let code = codegen::col2im(cols, out, *kernel, *stride, *padding);
                let args = vec![fb.ptr(cols), fb.ptr(out)];
                self.launch(fb, code, args);
            }
            Step::Gather {
                table,
                indices,
                out,
            } => {
                let code = self.check(fb, table.shape[0], out);
                let k = codegen::gather(table, indices, out, code);
                let args = vec![fb.ptr(table), fb.ptr(indices), fb.ptr(out), errors()];
                self.launch(fb, k, args);
            }
            Step::ScatterAdd {
                indices,
                updates,
                out,
            } => {
                let code = self.check(fb, out.shape[0], out);
                let k = codegen::scatter_add(indices, updates, out, code);
                let args = vec![fb.ptr(indices), fb.ptr(updates), fb.ptr(out), errors()];
                self.launch(fb, k, args);
            }
            Step::Pad {
                x,
                out,
                axis,
                start,
            } => {
                let code = codegen::pad(x, out, *axis, *start);
                let args = vec![fb.ptr(x), fb.ptr(out)];
                self.launch(fb, code, args);
            }
            Step::Concat { xs, out, axis } => {
                let mut at = 0usize;
                for x in xs {
                    let region = View {
                        buf: out.buf,
                        offset: out.offset + at * out.strides[*axis] as usize,
                        shape: x.shape.clone(),
                        strides: out.strides.clone(),
                        dtype: out.dtype,
                    };
                    at += x.shape[*axis];
                    let args = vec![fb.ptr(x), fb.ptr(&region)];
                    self.launch(fb, codegen::copy(x, &region), args);
                }
            }
            Step::Random { key, counter, out } => {
                let code = codegen::random(out);
                let args = vec![Arg::U64(*key), fb.ptr(counter), fb.ptr(out)];
                self.launch(fb, code, args);
            }
            Step::OneHot { x, out, .. } => {
                let args = vec![fb.ptr(x), fb.ptr(out)];
                self.launch(fb, codegen::one_hot(x, out), args);
            }
            Step::Cast { x, out } => {
                let args = vec![fb.ptr(x), fb.ptr(out)];
                self.launch(fb, codegen::cast(x, out), args);
            }
            Step::Copy { src, dst } => {
                let args = vec![fb.ptr(src), fb.ptr(dst)];
                self.launch(fb, codegen::copy(src, dst), args);
            }
        }
        Ok(())
    }

    /// Register an index check of a step writing `out`; returns its error code.
    fn check(&mut self, fb: &mut FnBuilder<'_>, rows: usize, out: &View) -> i32 {
        let origin = match out.buf {
            Buf::Temp(t) => fb
                .temps
                .get(t)
                .and_then(|d| fb.f.nodes.get(d.node))
                .and_then(|n| n.origin),
            _ => None,
        };
        fb.checks.push(IndexCheck { rows, origin });
        fb.checks.len() as i32
    }

    /// `out = a @ b` through cuBLAS: operands whose layout cuBLAS cannot read are first copied
    /// into scratch, and an output it cannot write is computed in scratch and copied out.
    fn matmul(
        &mut self,
        fb: &mut FnBuilder<'_>,
        a: &View,
        b: &View,
        out: &View,
    ) -> Result<(), Diagnostic> {
        // Where cuBLAS reads or writes each matrix: in place, or a dense copy in scratch.
        let mut at = 0usize;
        let mut place = |v: &View, fb: &FnBuilder<'_>| -> (View, Loc) {
            if gemm::usable(v) {
                return (v.clone(), fb.loc(v));
            }
            let loc = Loc {
                region: Region::Scratch,
                offset: at,
            };
            at += v.numel().next_multiple_of(memory::ALIGN);
            (codegen::dense(v.buf, &v.shape, v.dtype), loc)
        };
        let (av, al) = place(a, fb);
        let (bv, bl) = place(b, fb);
        let (ov, ol) = place(out, fb);
        for (src, dense, loc) in [(a, &av, al), (b, &bv, bl)] {
            if loc.region == Region::Scratch {
                let from = fb.ptr(src);
                self.launch(fb, codegen::copy(src, dense), vec![from, Arg::Ptr(loc)]);
            }
        }
        fb.scratch = fb.scratch.max(at);
        let r = av.shape.len();
        if av.shape[r - 1] == 0 {
            // An empty inner dimension: the product is zeros.
            let k = Kernel {
                shape: ov.shape.clone(),
                reduce: None,
                loads: Vec::new(),
                ops: vec![KOp::constant(0.0)],
                stores: vec![(ov.clone(), 0)],
            };
            self.launch(fb, codegen::kernel(&k), vec![Arg::Ptr(ol)]);
        } else {
            let calls = gemm::calls(&av, al, &bv, bl, &ov, ol).ok_or_else(|| {
                Diagnostic::error(
                    "mlx::backend::unavailable",
                    format!(
                        "a matrix product of {:?} and {:?} is too large for cuBLAS's 32-bit sizes",
                        a.shape, b.shape
                    ),
                )
                .with_help("use `--backend cpu`")
            })?;
            for c in calls {
                fb.push(Command::Gemm(c));
            }
        }
        if ol.region == Region::Scratch {
            self.launch(fb, codegen::copy(&ov, out), vec![Arg::Ptr(ol), fb.ptr(out)]);
        }
        Ok(())
    }
}

fn errors() -> Arg {
    Arg::Ptr(Loc {
        region: Region::Errors,
        offset: 0,
    })
}

/// A readable listing of a plan: the commands of each function, then the CUDA C
/// (`mlx ir --stage cuda`).
pub fn listing(p: &Plan) -> String {
    let mut s = String::new();
    for f in &p.functions {
        s.push_str(&format!(
            "function {}: {} commands, arena {} words, scratch {} words\n",
            f.name,
            f.commands.len(),
            f.arena,
            f.scratch
        ));
        for (c, step) in f.commands.iter().zip(&f.step_of) {
            match c {
                Command::Launch(l) => s.push_str(&format!(
                    "  #{step} launch {} <<<{}, {}>>>({})\n",
                    p.kernels[l.kernel].name,
                    l.grid,
                    l.block,
                    l.args.iter().map(arg_text).collect::<Vec<_>>().join(", ")
                )),
                Command::Gemm(g) => s.push_str(&format!("  #{step} {}\n", gemm::describe(g))),
            }
        }
    }
    s.push('\n');
    s.push_str(&p.source());
    s
}

fn arg_text(a: &Arg) -> String {
    match a {
        Arg::U64(v) => format!("{v:#x}"),
        Arg::Ptr(l) => loc_text(l),
    }
}

pub fn loc_text(l: &Loc) -> String {
    let r = match l.region {
        Region::Input(i) => format!("in{i}"),
        Region::State(i) => format!("s{i}"),
        Region::Arena => "arena".to_string(),
        Region::Scratch => "scratch".to_string(),
        Region::Errors => "errors".to_string(),
    };
    if l.offset == 0 {
        r
    } else {
        format!("{r}+{}", l.offset)
    }
}
