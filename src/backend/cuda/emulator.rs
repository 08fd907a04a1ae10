//! A CUDA device emulated on the host, for tests without a GPU: the generated CUDA C is
//! compiled as C++ by the system compiler, with a header that defines CUDA's built-ins
//! (`threadIdx`, `__syncthreads`, `__int_as_float`, `atomicCAS`, ...). Blocks run one after
//! another (at most two of them, so grid-stride loops are exercised); a kernel that
//! synchronises runs its block's threads as OS threads meeting at a real barrier. GEMMs are
//! the BLAS definition (`gemm::reference`). Everything between the schedule and the device,
//! the plan, the generated kernels, their arguments and the cuBLAS mapping, runs exactly as
//! it does on a GPU; what it cannot show is how a GPU differs from the host (its math
//! library's last bits, its memory model) and cudarc's part.

use super::codegen::{Code, Param};
use super::exec::{Device, Executor};
use super::gemm::{self, Gemm};
use super::plan;
use crate::backend::{Backend, Executable};
use crate::diagnostics::Diagnostic;
use crate::ir::Program;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

const SHIM: &str = r#"// CUDA built-ins for running generated kernels on the host (mlx's tests).
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>
struct mlx_uint3 { unsigned int x, y, z; };
static thread_local mlx_uint3 threadIdx;
static thread_local mlx_uint3 blockIdx;
static mlx_uint3 blockDim;
static mlx_uint3 gridDim;
static std::barrier<>* mlx_barrier = nullptr;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
static inline void __syncthreads() { mlx_barrier->arrive_and_wait(); }
static inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
static inline int atomicCAS(int* p, int expected, int desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected;
}
typedef void (*mlx_entry)(const unsigned long long*);
extern "C" void mlx_emu_launch(mlx_entry k, const unsigned long long* args, unsigned grid,
                               unsigned block, int barrier) {
  gridDim = {grid, 1, 1};
  blockDim = {block, 1, 1};
  if (!barrier) {
    for (unsigned b = 0; b < grid; ++b) {
      for (unsigned t = 0; t < block; ++t) {
        blockIdx = {b, 0, 0};
        threadIdx = {t, 0, 0};
        k(args);
      }
    }
    return;
  }
  std::barrier<> bar(block);
  mlx_barrier = &bar;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < block; ++t) {
    threads.emplace_back([=, &bar] {
      threadIdx = {t, 0, 0};
      for (unsigned b = 0; b < grid; ++b) {
        blockIdx = {b, 0, 0};
        k(args);
        bar.arrive_and_wait();
      }
    });
  }
  for (auto& th : threads) { th.join(); }
  mlx_barrier = nullptr;
}
"#;

type Entry = unsafe extern "C" fn(*const u64);
type LaunchFn = unsafe extern "C" fn(Entry, *const u64, u32, u32, i32);

/// The emulated device (buffers are host memory; addresses are host pointers).
#[derive(Clone, Default)]
pub struct Emulator {
    kernels: Vec<Code>,
}

pub struct Kernel {
    entry: Entry,
    launch: LaunchFn,
    _lib: Arc<libloading::Library>,
}

/// Whether the emulator can run here (a C++ compiler is found); without one, tests skip with a
/// notice unless `MLX_REQUIRE_EMULATOR` is set.
pub fn available() -> bool {
    if compiler().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("MLX_REQUIRE_EMULATOR").is_none(),
        "no C++ compiler for the CUDA emulator (MLX_REQUIRE_EMULATOR is set)"
    );
    eprintln!("note: skipping: no C++ compiler to emulate the GPU with");
    false
}

/// The host's C++ compiler, if there is one.
pub fn compiler() -> Option<&'static str> {
    ["c++", "g++", "clang++"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The C++ translation unit: shim, kernels, and one entry per kernel taking its arguments
/// as an array of 8-byte words.
fn unit(source: &str, kernels: &[Code]) -> String {
    let mut s = String::from(SHIM);
    s.push_str(source);
    for k in kernels {
        let args: Vec<String> = k
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Param::U64 => format!("a[{i}]"),
                _ => format!("({})a[{i}]", p.c_type()),
            })
            .collect();
        s.push_str(&format!(
            "extern \"C\" void {n}__emu(const unsigned long long* a) {{ {n}({}); }}\n",
            args.join(", "),
            n = k.name
        ));
    }
    s
}

fn build(text: &str) -> Result<PathBuf, String> {
    let cxx = compiler().ok_or("no C++ compiler")?;
    let hash: String = Sha256::digest(text.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = std::env::temp_dir().join("mlx-cuda-emulator");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let lib = dir.join(format!("{hash}.so"));
    if lib.exists() {
        return Ok(lib);
    }
    // Unique names while building; the rename publishes the library whole.
    let tag = format!(
        "{hash}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    )
    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
    let src = dir.join(format!("{tag}.cpp"));
    let tmp = dir.join(format!("{tag}.so"));
    std::fs::write(&src, text).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(cxx)
        .args([
            "-std=c++20",
            "-O1",
            "-ffp-contract=off",
            "-fno-fast-math",
            "-shared",
            "-fPIC",
        ])
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .arg("-pthread")
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&src);
    if !out.status.success() {
        return Err(format!(
            "{cxx} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &lib).map_err(|e| e.to_string())?;
    Ok(lib)
}

impl Device for Emulator {
    type Buffer = Box<[u32]>;
    type Kernel = Kernel;

    fn alloc(&self, words: usize) -> Result<Box<[u32]>, String> {
        Ok(vec![0u32; words].into_boxed_slice())
    }

    fn address(&self, b: &Box<[u32]>) -> u64 {
        b.as_ptr() as u64
    }

    fn write(&self, at: u64, words: &[u32]) -> Result<(), String> {
        // SAFETY: `at` addresses `words.len()` words of a live buffer (checked plans).
        unsafe { std::ptr::copy_nonoverlapping(words.as_ptr(), at as *mut u32, words.len()) };
        Ok(())
    }

    fn read(&self, at: u64, out: &mut [u32]) -> Result<(), String> {
        // SAFETY: as in `write`.
        unsafe { std::ptr::copy_nonoverlapping(at as *const u32, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    fn load(&self, source: &str, names: &[&str]) -> Result<Vec<Kernel>, String> {
        let path = build(&unit(source, &self.kernels))?;
        // SAFETY: a library just built from our own source, with no initialisers that matter.
        let lib = Arc::new(unsafe { libloading::Library::new(&path) }.map_err(|e| e.to_string())?);
        // SAFETY: symbols defined by `unit` with these signatures.
        let launch: LaunchFn =
            *unsafe { lib.get::<LaunchFn>(b"mlx_emu_launch") }.map_err(|e| e.to_string())?;
        names
            .iter()
            .map(|n| {
                let sym = format!("{n}__emu");
                // SAFETY: as above.
                let entry: Entry =
                    *unsafe { lib.get::<Entry>(sym.as_bytes()) }.map_err(|e| e.to_string())?;
                Ok(Kernel {
                    entry,
                    launch,
                    _lib: lib.clone(),
                })
            })
            .collect()
    }

    fn launch(
        &self,
        k: &Kernel,
        grid: u32,
        block: u32,
        barrier: bool,
        args: &[u64],
    ) -> Result<(), String> {
        // SAFETY: the arguments are the kernel's, and its addresses lie in live buffers.
        unsafe {
            (k.launch)(
                k.entry,
                args.as_ptr(),
                grid.min(2),
                block,
                i32::from(barrier),
            )
        };
        Ok(())
    }

    fn gemm(&self, g: &Gemm<u64>) -> Result<(), String> {
        // SAFETY: addresses of live host buffers covering the call (checked plans).
        unsafe { gemm::reference(g) };
        Ok(())
    }
}

/// The CUDA back end on the emulated device.
pub struct EmulatedCuda;

impl Backend for EmulatedCuda {
    fn name(&self) -> &'static str {
        "cuda-emulator"
    }

    fn compile(&self, program: &Program) -> Result<Box<dyn Executable>, Diagnostic> {
        let plan = plan::plan(program)?;
        let dev = Emulator {
            kernels: plan.kernels.clone(),
        };
        Ok(Box::new(Executor::new(dev, program, plan)?))
    }
}
