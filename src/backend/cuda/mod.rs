//! The GPU back end. Each function is scheduled by the same pass as the CPU back end
//! (`ir::schedule`, `ir::memory`); `plan` lowers the schedule to device commands, `codegen`
//! renders each fused kernel and library step as CUDA C, `gemm` maps matrix products onto
//! cuBLAS, and `exec` runs the commands on a `Device`. Rendering and planning are plain Rust
//! and are compiled and tested in every build; the CUDA device itself (`runtime`: driver,
//! NVRTC and cuBLAS through cudarc, loaded at run time) needs the `cuda` feature.

pub mod codegen;
pub mod exec;
pub mod gemm;
#[cfg(any(feature = "cuda", test))]
pub mod nvrtc;
pub mod plan;
#[cfg(feature = "cuda")]
mod runtime;

#[cfg(test)]
pub(crate) mod emulator;
#[cfg(all(test, feature = "cuda"))]
mod gpu_tests;
#[cfg(test)]
pub(crate) mod tests;

use super::Backend;

/// The CUDA back end, or why it cannot run here.
#[cfg(feature = "cuda")]
pub fn open() -> Result<Box<dyn Backend>, String> {
    runtime::open().map(|gpu| Box::new(Cuda { gpu }) as Box<dyn Backend>)
}

/// The CUDA back end, or why it cannot run here.
#[cfg(not(feature = "cuda"))]
pub fn open() -> Result<Box<dyn Backend>, String> {
    Err("this mlx was built without the `cuda` feature".to_string())
}

/// Whether this build has the CUDA back end at all.
pub const BUILT: bool = cfg!(feature = "cuda");

#[cfg(feature = "cuda")]
pub struct Cuda {
    gpu: std::sync::Arc<runtime::Gpu>,
}

#[cfg(feature = "cuda")]
impl Cuda {
    /// The device's name, for notes.
    pub fn device_name(&self) -> &str {
        self.gpu.name()
    }
}

#[cfg(feature = "cuda")]
impl Backend for Cuda {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn compile(
        &self,
        program: &crate::ir::Program,
    ) -> Result<Box<dyn super::Executable>, crate::diagnostics::Diagnostic> {
        let plan = plan::plan(program)?;
        let exe = exec::Executor::new(runtime::CudaDevice(self.gpu.clone()), program, plan)?;
        Ok(Box::new(exe))
    }
}
