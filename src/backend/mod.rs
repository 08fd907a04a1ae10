//! Back ends: the `Backend` trait takes a whole `ir::Program`, so each back end fuses, allocates
//! and launches its own way; an `Executable` keeps the program's state (parameters, optimizer
//! moments) resident between calls. `interp` is the reference every other back end is tested
//! against.

pub mod cpu;
pub mod cuda;
pub mod interp;

use crate::diagnostics::Diagnostic;
use crate::ir::{self, StateId};
use crate::source::Span;

#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

/// A tensor in host memory, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl HostTensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> HostTensor {
        HostTensor {
            shape,
            data: TensorData::F32(data),
        }
    }

    pub fn i32(shape: Vec<usize>, data: Vec<i32>) -> HostTensor {
        HostTensor {
            shape,
            data: TensorData::I32(data),
        }
    }

    pub fn scalar(v: f32) -> HostTensor {
        HostTensor::f32(Vec::new(), vec![v])
    }

    pub fn scalar_i32(v: i32) -> HostTensor {
        HostTensor::i32(Vec::new(), vec![v])
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The number of elements its data holds (`numel` when well formed).
    pub fn data_len(&self) -> usize {
        match &self.data {
            TensorData::F32(v) => v.len(),
            TensorData::I32(v) => v.len(),
        }
    }

    pub fn dtype(&self) -> ir::DType {
        match self.data {
            TensorData::F32(_) => ir::DType::F32,
            TensorData::I32(_) => ir::DType::I32,
        }
    }

    /// The f32 elements (empty for an I32 tensor).
    pub fn as_f32(&self) -> &[f32] {
        match &self.data {
            TensorData::F32(v) => v,
            TensorData::I32(_) => &[],
        }
    }

    pub fn into_f32(self) -> Vec<f32> {
        match self.data {
            TensorData::F32(v) => v,
            TensorData::I32(v) => v.into_iter().map(|x| x as f32).collect(),
        }
    }

    /// The single value of a scalar (NaN if it is not one).
    pub fn item(&self) -> f32 {
        match &self.data {
            TensorData::F32(v) if v.len() == 1 => v[0],
            TensorData::I32(v) if v.len() == 1 => v[0] as f32,
            _ => f32::NAN,
        }
    }
}

/// A failure while running a program, with the source expression that caused it if known.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeError {
    pub message: String,
    pub origin: Option<Span>,
}

impl RuntimeError {
    pub fn new(message: impl Into<String>) -> RuntimeError {
        RuntimeError {
            message: message.into(),
            origin: None,
        }
    }

    pub fn diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::error("mlx::runtime::error", self.message.clone());
        match self.origin {
            Some(s) => d.with_label(s, "while computing this"),
            None => d,
        }
    }
}

pub trait Backend {
    fn name(&self) -> &'static str;
    fn compile(&self, program: &ir::Program) -> Result<Box<dyn Executable>, Diagnostic>;
}

/// A compiled program with its state.
pub trait Executable {
    /// Run function `function` on `inputs`: returns its outputs, then applies its state updates.
    fn run(
        &mut self,
        function: usize,
        inputs: &[HostTensor],
    ) -> Result<Vec<HostTensor>, RuntimeError>;
    /// The current value of a state (a device back end copies it back, which can fail).
    fn read_state(&self, id: StateId) -> Result<HostTensor, RuntimeError>;
    fn write_state(&mut self, id: StateId, value: &HostTensor) -> Result<(), RuntimeError>;
}

/// What `--backend` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Auto,
    Interp,
    Cpu,
    Cuda,
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BackendKind::Auto),
            "interp" => Ok(BackendKind::Interp),
            "cpu" => Ok(BackendKind::Cpu),
            "cuda" => Ok(BackendKind::Cuda),
            _ => Err(format!(
                "unknown back end `{s}`: choose auto, cpu, cuda or interp"
            )),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Auto => "auto",
            BackendKind::Interp => "interp",
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
        })
    }
}

/// The back end for `kind`, with a note when `auto` could not use the GPU. `auto` takes the
/// CUDA back end when this build has it and a GPU can be used, the CPU back end otherwise.
pub fn select(kind: BackendKind) -> Result<(Box<dyn Backend>, Option<String>), Diagnostic> {
    match kind {
        BackendKind::Interp => Ok((Box::new(interp::Interp), None)),
        BackendKind::Cpu => Ok((Box::new(cpu::Cpu::new()), None)),
        BackendKind::Auto => match cuda::open() {
            Ok(gpu) => Ok((gpu, None)),
            // A build without the GPU back end has nothing to explain.
            Err(_) if !cuda::BUILT => Ok((Box::new(cpu::Cpu::new()), None)),
            Err(why) => Ok((
                Box::new(cpu::Cpu::new()),
                Some(format!(
                    "using the CPU back end: the GPU cannot be used ({why})"
                )),
            )),
        },
        BackendKind::Cuda => cuda::open().map(|gpu| (gpu, None)).map_err(|why| {
            let d = Diagnostic::error(
                "mlx::backend::unavailable",
                format!("the CUDA back end is not available: {why}"),
            );
            if cuda::BUILT {
                d.with_help(
                    "install the NVIDIA driver and the CUDA 13 NVRTC and cuBLAS libraries \
                     (or put them on LD_LIBRARY_PATH), or use `--backend cpu`",
                )
            } else {
                d.with_help(
                    "rebuild with `cargo build --release --features cuda` (CUDA is needed only \
                     to run, not to build), or use `--backend cpu`",
                )
            }
        }),
    }
}

/// The function `function` of `program`, once `inputs` match its declared inputs in number,
/// dtype and shape (and each tensor's data fits its shape): the check every back end's
/// `Executable::run` makes first.
pub fn checked_call<'p>(
    program: &'p ir::Program,
    function: usize,
    inputs: &[HostTensor],
) -> Result<&'p ir::Function, RuntimeError> {
    let f = program
        .functions
        .get(function)
        .ok_or_else(|| RuntimeError::new(format!("no function {function}")))?;
    if inputs.len() != f.inputs.len() {
        return Err(RuntimeError::new(format!(
            "`{}` takes {} inputs, got {}",
            f.name,
            f.inputs.len(),
            inputs.len()
        )));
    }
    for (d, t) in f.inputs.iter().zip(inputs) {
        if d.shape != t.shape || d.dtype != t.dtype() || t.data_len() != t.numel() {
            return Err(RuntimeError::new(format!(
                "input `{}` should be {:?}{:?}, got {:?}{:?}",
                d.name,
                d.dtype,
                d.shape,
                t.dtype(),
                t.shape
            )));
        }
    }
    Ok(f)
}

/// The diagnostic for memory a back end cannot have: `values` f32s for `what`.
pub fn out_of_memory(values: usize, what: &str) -> Diagnostic {
    let bytes = (values as f64) * 4.0;
    Diagnostic::error(
        "mlx::train::memory",
        format!(
            "cannot allocate {:.1} GB for {what}: the machine does not have that memory",
            bytes / 1e9
        ),
    )
    .with_help("make the model or the batch smaller; `mlx check -v` estimates what a training step needs (`MLX_MEMORY_LIMIT` set too high lets oversized models past the check)")
}
