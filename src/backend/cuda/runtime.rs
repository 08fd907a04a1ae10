//! The CUDA device (feature `cuda`): cudarc's driver API, NVRTC and cuBLAS, each library
//! loaded when the back end starts. cudarc panics when it first calls into a library that is
//! absent, so `open` checks each one first and turns absence, or no device, into a reason the
//! caller reports. One device is opened per process and shared: compiled modules are cached
//! by the hash of their source, so a program compiled twice (a sweep's points, `eval` after a
//! run) is compiled once.

use super::exec::Device;
use super::gemm::Gemm;
use super::nvrtc;
use cudarc::cublas::CudaBlas;
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    /// `sm_XY` of the device.
    arch: String,
    name: String,
    modules: Mutex<HashMap<[u8; 32], Arc<CudaModule>>>,
}

/// The device of this process, opened on first use; the reason it cannot be used otherwise.
pub fn open() -> Result<Arc<Gpu>, String> {
    static GPU: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();
    GPU.get_or_init(|| open_device().map(Arc::new)).clone()
}

fn open_device() -> Result<Gpu, String> {
    // SAFETY: each only tries to open its library.
    let present = unsafe {
        [
            (
                "libcuda (the NVIDIA driver)",
                cudarc::driver::sys::is_culib_present(),
            ),
            ("libnvrtc", cudarc::nvrtc::sys::is_culib_present()),
            ("libcublas", cudarc::cublas::sys::is_culib_present()),
        ]
    };
    let missing: Vec<&str> = present
        .iter()
        .filter(|(_, here)| !here)
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} could not be loaded (looked for CUDA 13 libraries on the library path)",
            missing.join(", ")
        ));
    }
    // cudarc's bindings are CUDA 13's: an older driver may lack a function they load (which
    // would panic), and may refuse code from a CUDA 13 NVRTC.
    cudarc::driver::result::init().map_err(|e| format!("the CUDA driver failed to start: {e}"))?;
    let mut version = 0;
    // SAFETY: an out-parameter; the driver library was found above.
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) };
    if r != cudarc::driver::sys::CUresult::CUDA_SUCCESS || version < 13000 {
        return Err(format!(
            "the NVIDIA driver supports CUDA {}.{}; mlx's GPU back end needs CUDA 13 \
             (driver R580 or newer)",
            version / 1000,
            version % 1000 / 10
        ));
    }
    let count = CudaContext::device_count().map_err(|e| format!("the CUDA driver failed: {e}"))?;
    if count < 1 {
        return Err("the CUDA driver sees no device".to_string());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("cannot open CUDA device 0: {e}"))?;
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| format!("cannot query CUDA device 0: {e}"))?;
    let name = ctx.name().unwrap_or_else(|_| "CUDA device 0".to_string());
    // One stream: every copy, launch and GEMM is ordered on it.
    let stream = ctx.default_stream();
    let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS failed to start: {e}"))?;
    Ok(Gpu {
        ctx,
        stream,
        blas,
        arch: format!("sm_{major}{minor}"),
        name,
        modules: Mutex::new(HashMap::new()),
    })
}

impl Gpu {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Make the context current on this thread (raw driver and cuBLAS calls need it; the
    /// training loop may run on any thread).
    fn bind(&self) -> Result<(), String> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| format!("binding the CUDA context: {e}"))
    }

    fn module(&self, source: &str) -> Result<Arc<CudaModule>, String> {
        let key: [u8; 32] = Sha256::digest(format!("{}\n{source}", self.arch).as_bytes()).into();
        let mut cache = self
            .modules
            .lock()
            .map_err(|_| "the module cache is poisoned".to_string())?;
        if let Some(m) = cache.get(&key) {
            return Ok(m.clone());
        }
        let bin = nvrtc::compile(source, &self.arch)
            .map_err(|f| format!("NVRTC failed ({}) for {}:\n{}", f.error, self.arch, f.log))?;
        let module = self
            .ctx
            .load_module(Ptx::from_binary(bin))
            .map_err(|e| format!("the driver refused the compiled kernels: {e}"))?;
        cache.insert(key, module.clone());
        Ok(module)
    }
}

/// A device handle an executor owns.
#[derive(Clone)]
pub struct CudaDevice(pub Arc<Gpu>);

fn op(t: bool) -> cublasOperation_t {
    if t {
        cublasOperation_t::CUBLAS_OP_T
    } else {
        cublasOperation_t::CUBLAS_OP_N
    }
}

impl Device for CudaDevice {
    type Buffer = CudaSlice<u32>;
    type Kernel = CudaFunction;

    fn alloc(&self, words: usize) -> Result<CudaSlice<u32>, String> {
        self.0
            .stream
            .alloc_zeros::<u32>(words)
            .map_err(|e| format!("allocating {} MiB: {e}", (4 * words) >> 20))
    }

    fn address(&self, b: &CudaSlice<u32>) -> u64 {
        let (ptr, _sync) = b.device_ptr(&self.0.stream);
        ptr
    }

    fn write(&self, at: u64, words: &[u32]) -> Result<(), String> {
        self.0.bind()?;
        // SAFETY: `at` addresses `words.len()` words inside a buffer of this context (the plan
        // was checked against the buffers); copies from pageable memory return once the host
        // data has been taken.
        unsafe { cudarc::driver::result::memcpy_htod_async(at, words, self.0.stream.cu_stream()) }
            .map_err(|e| format!("copying to the device: {e}"))
    }

    fn read(&self, at: u64, out: &mut [u32]) -> Result<(), String> {
        self.0.bind()?;
        // SAFETY: as in `write`; the stream is synchronised before `out` is used.
        unsafe { cudarc::driver::result::memcpy_dtoh_async(out, at, self.0.stream.cu_stream()) }
            .map_err(|e| format!("copying from the device: {e}"))?;
        self.0
            .stream
            .synchronize()
            .map_err(|e| format!("waiting for the device: {e}"))
    }

    fn load(&self, source: &str, names: &[&str]) -> Result<Vec<CudaFunction>, String> {
        let module = self.0.module(source)?;
        names
            .iter()
            .map(|n| {
                module
                    .load_function(n)
                    .map_err(|e| format!("kernel {n}: {e}"))
            })
            .collect()
    }

    fn launch(
        &self,
        k: &CudaFunction,
        grid: u32,
        block: u32,
        _barrier: bool,
        args: &[u64],
    ) -> Result<(), String> {
        let mut b = self.0.stream.launch_builder(k);
        for a in args {
            b.arg(a);
        }
        let cfg = LaunchConfig {
            grid_dim: (grid, 1, 1),
            block_dim: (block, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match the kernel's parameters (8-byte addresses and integers,
        // generated together), and every address lies inside its buffer.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| format!("launching a kernel: {e}"))
    }

    fn gemm(&self, g: &Gemm<u64>) -> Result<(), String> {
        self.0.bind()?;
        let (alpha, beta) = (1.0f32, 0.0f32);
        // SAFETY: the planner proved every matrix inside its buffer with these leading
        // dimensions and strides.
        unsafe {
            cudarc::cublas::result::sgemm_strided_batched(
                *self.0.blas.handle(),
                op(g.trans_a),
                op(g.trans_b),
                g.m,
                g.n,
                g.k,
                &alpha,
                g.a as *const f32,
                g.lda,
                g.stride_a,
                g.b as *const f32,
                g.ldb,
                g.stride_b,
                &beta,
                g.c as *mut f32,
                g.ldc,
                g.stride_c,
                g.batch,
            )
        }
        .map_err(|e| format!("cuBLAS sgemm: {e}"))
    }
}
