//! NVRTC, loaded at run time through cudarc: CUDA C to a CUBIN for one GPU architecture.
//! A CUBIN (not PTX) is what the runtime loads, so a driver older than the NVRTC library
//! still accepts the code (PTX from a newer toolkit it would refuse). The tests use the same
//! function to compile every generated kernel without a GPU.

use cudarc::nvrtc::{result, sys};
use std::ffi::{CStr, CString, c_char};

/// The options every module is compiled with: no contraction of `a * b + c` into a fused
/// multiply-add (each op rounds as the interpreter's does), IEEE division and square root,
/// denormals kept.
pub fn options(arch: &str) -> Vec<String> {
    vec![
        format!("--gpu-architecture={arch}"),
        "--fmad=false".to_string(),
        "--prec-div=true".to_string(),
        "--prec-sqrt=true".to_string(),
        "--ftz=false".to_string(),
    ]
}

/// Whether libnvrtc can be loaded (cudarc panics on first use when it cannot).
pub fn available() -> bool {
    // SAFETY: only tries to open the library.
    unsafe { sys::is_culib_present() }
}

/// NVRTC's version, as (major, minor).
pub fn version() -> Option<(i32, i32)> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two out-parameters; the library was found by `available` first (callers check).
    let r = unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
    (r == sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
}

/// Why a compilation failed: NVRTC's error and its log.
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    pub log: String,
}

fn text(v: &[c_char]) -> String {
    let bytes: Vec<u8> = v
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Compile `source` for `arch` (`sm_90`: a CUBIN; `compute_90`: PTX text).
pub fn compile(source: &str, arch: &str) -> Result<Vec<u8>, Failure> {
    let fail = |e: result::NvrtcError, log: String| Failure {
        error: format!("{e:?}"),
        log,
    };
    let src = CString::new(source).map_err(|e| Failure {
        error: e.to_string(),
        log: String::new(),
    })?;
    let name: &CStr = c"mlx_kernels.cu";
    let prog = result::create_program(&src, Some(name)).map_err(|e| fail(e, String::new()))?;
    let opts = options(arch);
    // SAFETY: `prog` was just created and is destroyed below, after its last use.
    let out = unsafe {
        match result::compile_program(prog, &opts) {
            Err(e) => {
                let log = result::get_program_log(prog)
                    .map(|l| text(&l))
                    .unwrap_or_default();
                Err(fail(e, log))
            }
            Ok(()) if arch.starts_with("sm_") => {
                let mut size = 0usize;
                let r = sys::nvrtcGetCUBINSize(prog, &mut size);
                let mut bin = vec![0u8; size];
                let r2 = if r == sys::nvrtcResult::NVRTC_SUCCESS {
                    sys::nvrtcGetCUBIN(prog, bin.as_mut_ptr() as *mut c_char)
                } else {
                    r
                };
                r2.result()
                    .map(|()| bin)
                    .map_err(|e| fail(e, String::new()))
            }
            Ok(()) => result::get_ptx(prog)
                .map(|p| text(&p).into_bytes())
                .map_err(|e| fail(e, String::new())),
        }
    };
    // SAFETY: created above and not used after this.
    let _ = unsafe { result::destroy_program(prog) };
    out
}
