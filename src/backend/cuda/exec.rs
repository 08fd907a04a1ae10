//! Running a plan on a device. `Device` is the little a device must do: allocate zeroed
//! buffers, copy words in and out, load a module of generated kernels, launch one, and call
//! a GEMM. `Executor` does everything else the same way for every device: one buffer per
//! state, per function input, an arena for the temporaries, scratch and the error words, all
//! allocated when the program is compiled; a call uploads the batch, launches the plan's
//! commands, checks the error words, and copies the outputs back. Weights, optimizer state
//! and activations never leave the device.
//!
//! The CUDA device (`super::runtime`, feature `cuda`) is one implementation; the tests run
//! another, which compiles the same kernels for the host (`super::emulator`).

use super::gemm::Gemm;
use super::plan::{Arg, Command, FnPlan, Loc, Plan, Region};
use crate::backend::{Executable, HostTensor, RuntimeError, TensorData};
use crate::diagnostics::Diagnostic;
use crate::ir::{DType, Program, StateId};

pub trait Device {
    type Buffer;
    type Kernel;
    /// A buffer of `words` 32-bit words, zeroed.
    fn alloc(&self, words: usize) -> Result<Self::Buffer, String>;
    /// The device address of a buffer's first word.
    fn address(&self, b: &Self::Buffer) -> u64;
    /// Copy words to device address `at` (after the work already queued).
    fn write(&self, at: u64, words: &[u32]) -> Result<(), String>;
    /// Copy words from device address `at`, once the work already queued has finished.
    fn read(&self, at: u64, out: &mut [u32]) -> Result<(), String>;
    /// Compile and load a module; the kernels named, in order.
    fn load(&self, source: &str, names: &[&str]) -> Result<Vec<Self::Kernel>, String>;
    /// Queue a kernel; `args` are 8-byte values (addresses or integers) in parameter order.
    fn launch(
        &self,
        k: &Self::Kernel,
        grid: u32,
        block: u32,
        barrier: bool,
        args: &[u64],
    ) -> Result<(), String>;
    /// Queue a single-precision GEMM.
    fn gemm(&self, g: &Gemm<u64>) -> Result<(), String>;
}

pub struct Executor<D: Device> {
    device: D,
    program: Program,
    plan: Plan,
    kernels: Vec<D::Kernel>,
    states: Vec<D::Buffer>,
    inputs: Vec<Vec<D::Buffer>>,
    arena: D::Buffer,
    scratch: D::Buffer,
    errors: D::Buffer,
}

fn unavailable(what: &str, e: String) -> Diagnostic {
    Diagnostic::error("mlx::backend::unavailable", format!("{what}: {e}"))
        .with_help("use `--backend cpu`")
}

impl<D: Device> Executor<D> {
    /// Load the plan's kernels and allocate every buffer.
    pub fn new(device: D, program: &Program, plan: Plan) -> Result<Executor<D>, Diagnostic> {
        let names: Vec<&str> = plan.kernels.iter().map(|k| k.name.as_str()).collect();
        let kernels = device
            .load(&plan.source(), &names)
            .map_err(|e| unavailable("the GPU could not load the generated kernels", e))?;
        let alloc = |words: usize| {
            device
                .alloc(words.max(1))
                .map_err(|e| unavailable("the GPU could not allocate memory", e))
        };
        let states = program
            .states
            .iter()
            .map(|s| alloc(s.shape.iter().product()))
            .collect::<Result<Vec<_>, _>>()?;
        let inputs = program
            .functions
            .iter()
            .map(|f| {
                f.inputs
                    .iter()
                    .map(|d| alloc(d.shape.iter().product()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let arena = alloc(plan.arena_words())?;
        let scratch = alloc(plan.scratch_words())?;
        let errors = alloc(2)?;
        Ok(Executor {
            device,
            program: program.clone(),
            plan,
            kernels,
            states,
            inputs,
            arena,
            scratch,
            errors,
        })
    }

    fn address(&self, function: usize, l: Loc) -> Result<u64, RuntimeError> {
        let buf = match l.region {
            Region::Input(i) => self
                .inputs
                .get(function)
                .and_then(|v| v.get(i))
                .ok_or_else(|| RuntimeError::new(format!("no input {i}")))?,
            Region::State(s) => self
                .states
                .get(s)
                .ok_or_else(|| RuntimeError::new(format!("no state {s}")))?,
            Region::Arena => &self.arena,
            Region::Scratch => &self.scratch,
            Region::Errors => &self.errors,
        };
        Ok(self.device.address(buf) + 4 * l.offset as u64)
    }

    fn device_error(e: String) -> RuntimeError {
        RuntimeError::new(format!("the GPU failed: {e}"))
    }

    fn launch_all(&self, function: usize, fp: &FnPlan) -> Result<(), RuntimeError> {
        let mut args = Vec::new();
        for c in &fp.commands {
            match c {
                Command::Launch(l) => {
                    args.clear();
                    for a in &l.args {
                        args.push(match a {
                            Arg::Ptr(loc) => self.address(function, *loc)?,
                            Arg::U64(v) => *v,
                        });
                    }
                    let code = &self.plan.kernels[l.kernel];
                    self.device
                        .launch(
                            &self.kernels[l.kernel],
                            l.grid,
                            l.block,
                            code.barrier,
                            &args,
                        )
                        .map_err(Self::device_error)?;
                }
                Command::Gemm(g) => {
                    let g = g.try_map(|l| self.address(function, l))?;
                    self.device.gemm(&g).map_err(Self::device_error)?;
                }
            }
        }
        Ok(())
    }

    /// The first failed index check of the last call, if any (and clear it).
    fn check_errors(&self, fp: &FnPlan) -> Result<(), RuntimeError> {
        if fp.checks.is_empty() {
            return Ok(());
        }
        let at = self.device.address(&self.errors);
        let mut words = [0u32; 2];
        self.device
            .read(at, &mut words)
            .map_err(Self::device_error)?;
        let code = words[0] as i32;
        if code == 0 {
            return Ok(());
        }
        self.device.write(at, &[0, 0]).map_err(Self::device_error)?;
        let check = fp.checks.get(code as usize - 1);
        Err(RuntimeError {
            message: format!(
                "index {} is outside a table of {} rows",
                words[1] as i32,
                check.map_or(0, |c| c.rows)
            ),
            origin: check.and_then(|c| c.origin),
        })
    }
}

fn words_of(t: &HostTensor) -> Vec<u32> {
    match &t.data {
        TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
        TensorData::I32(v) => v.iter().map(|x| *x as u32).collect(),
    }
}

fn tensor_of(shape: Vec<usize>, dtype: DType, words: Vec<u32>) -> HostTensor {
    match dtype {
        DType::F32 => HostTensor::f32(shape, words.into_iter().map(f32::from_bits).collect()),
        DType::I32 => HostTensor::i32(shape, words.into_iter().map(|w| w as i32).collect()),
    }
}

impl<D: Device> Executable for Executor<D> {
    fn run(
        &mut self,
        function: usize,
        inputs: &[HostTensor],
    ) -> Result<Vec<HostTensor>, RuntimeError> {
        crate::backend::checked_call(&self.program, function, inputs)?;
        for (i, t) in inputs.iter().enumerate() {
            let words = words_of(t);
            let at = self.address(
                function,
                Loc {
                    region: Region::Input(i),
                    offset: 0,
                },
            )?;
            self.device.write(at, &words).map_err(Self::device_error)?;
        }
        let fp = &self.plan.functions[function];
        self.launch_all(function, fp)?;
        self.check_errors(fp)?;
        let mut out = Vec::with_capacity(fp.outputs.len());
        for o in &fp.outputs {
            let mut words = vec![0u32; o.shape.iter().product()];
            let at = self.address(function, o.loc)?;
            self.device
                .read(at, &mut words)
                .map_err(Self::device_error)?;
            out.push(tensor_of(o.shape.clone(), o.dtype, words));
        }
        Ok(out)
    }

    fn read_state(&self, id: StateId) -> Result<HostTensor, RuntimeError> {
        let decl = self
            .program
            .states
            .get(id)
            .ok_or_else(|| RuntimeError::new("no such state"))?;
        let mut words = vec![0u32; decl.shape.iter().product()];
        let at = self.device.address(&self.states[id]);
        self.device
            .read(at, &mut words)
            .map_err(Self::device_error)?;
        Ok(tensor_of(decl.shape.clone(), DType::F32, words))
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
            TensorData::F32(v) if v.len() == value.numel() => {
                let at = self.device.address(&self.states[id]);
                self.device
                    .write(at, &words_of(value))
                    .map_err(Self::device_error)
            }
            _ => Err(RuntimeError::new("state must be f32 data of its shape")),
        }
    }
}
