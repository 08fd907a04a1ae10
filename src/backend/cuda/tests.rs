//! The GPU back end without a GPU, in every build: the CUDA C it generates (its structure and
//! a few exact snippets), the cuBLAS mapping against the BLAS definition, every kernel of every
//! example compiled by NVRTC (when libnvrtc can be loaded), and whole programs run on the
//! emulated device (`emulator`) against the interpreter. `harness` holds the checks that the
//! GPU tests (`gpu_tests`, feature `cuda`) run on a real device too.

use super::codegen::{self, REDUCE_BLOCK};
use super::emulator::{self, EmulatedCuda};
use super::gemm::{self, Gemm};
use super::plan::{self, Command, Loc, Region};
use crate::backend::{Backend, HostTensor};
use crate::ir::build::FnBuilder;
use crate::ir::schedule::{Buf, KOp, Kernel, View, contiguous_strides};
use crate::ir::{BinaryOp, DType, Program, ReduceOp, UnaryOp};

fn view(buf: Buf, shape: &[usize], strides: &[isize]) -> View {
    View {
        buf,
        offset: 0,
        shape: shape.to_vec(),
        strides: strides.to_vec(),
        dtype: DType::F32,
    }
}

fn dense(buf: Buf, shape: &[usize]) -> View {
    view(buf, shape, &contiguous_strides(shape))
}

#[test]
fn elementwise_kernels_are_grid_stride_loops_over_coalesced_axes() {
    // tanh(x) + row over [64, 100]: x contiguous, row broadcast along axis 0.
    let k = Kernel {
        shape: vec![64, 100],
        reduce: None,
        loads: vec![
            dense(Buf::Input(0), &[64, 100]),
            view(Buf::Input(1), &[64, 100], &[0, 1]),
        ],
        ops: vec![
            KOp::Load(0),
            KOp::Unary(UnaryOp::Tanh, 0),
            KOp::Load(1),
            KOp::Binary(BinaryOp::Add, 1, 2),
        ],
        stores: vec![(dense(Buf::Temp(0), &[64, 100]), 3)],
    };
    let c = codegen::kernel(&k);
    assert!(c.name.starts_with('k') && c.name.len() == 17, "{}", c.name);
    assert!(
        c.source.starts_with(&format!(
            "extern \"C\" __global__ void {}(float* p0, float* p1, float* p2) {{",
            c.name
        )),
        "{}",
        c.source
    );
    assert!(
        c.source
            .contains("i += (unsigned int)blockDim.x * gridDim.x")
    );
    assert!(c.source.contains("i < 6400u"));
    // Two axes: the broadcast operand keeps them apart.
    assert!(c.source.contains("c1 = c_r % 100u"), "{}", c.source);
    assert!(c.source.contains("float v0 = p0[c0 * 100 + c1];"));
    assert!(c.source.contains("float v1 = tanhf(v0);"));
    assert!(c.source.contains("float v2 = p1[c1];"));
    assert!(c.source.contains("p2[c0 * 100 + c1] = v3;"));
    assert_eq!(c.params.len(), 3);
    assert!(!c.barrier);
    assert_eq!(c.blocks, 25);

    // Contiguous operands only: one flat index, no division.
    let mut flat = k.clone();
    flat.loads[1] = dense(Buf::Input(1), &[64, 100]);
    let c = codegen::kernel(&flat);
    assert!(!c.source.contains('%'), "{}", c.source);
    assert!(c.source.contains("float v2 = p1[c0];"));
}

#[test]
fn ops_follow_the_interpreters_definitions() {
    let ops = vec![
        KOp::Load(0),
        KOp::Load(1),
        KOp::Binary(BinaryOp::Max, 0, 1),
        KOp::Binary(BinaryOp::Min, 0, 1),
        KOp::Binary(BinaryOp::Ge, 0, 1),
        KOp::Unary(UnaryOp::Sigmoid, 0),
        KOp::Unary(UnaryOp::Sign, 0),
        KOp::Unary(UnaryOp::Recip, 0),
        KOp::Binary(BinaryOp::Pow, 0, 1),
        KOp::Select(4, 0, 1),
        KOp::constant(f32::NAN),
        KOp::constant(0.1),
        KOp::constant(-2.0),
    ];
    let k = Kernel {
        shape: vec![5],
        reduce: None,
        loads: vec![dense(Buf::Input(0), &[5]), dense(Buf::Input(1), &[5])],
        stores: (2..ops.len())
            .map(|i| (dense(Buf::Temp(i), &[5]), i))
            .collect(),
        ops,
    };
    let s = codegen::kernel(&k).source;
    for want in [
        "mlx_max(v0, v1)",
        "mlx_min(v0, v1)",
        "(v0 >= v1 ? 1.0f : 0.0f)",
        "mlx_sigmoid(v0)",
        "mlx_sign(v0)",
        "1.0f / v0",
        "powf(v0, v1)",
        "(v4 != 0.0f ? v0 : v1)",
        // Constants by their bits, exactly (small integers spelled as such).
        "__int_as_float((int)0x7fc00000u)",
        "__int_as_float((int)0x3dcccccdu)",
        "float v12 = -2.0f;",
    ] {
        assert!(s.contains(want), "missing `{want}` in\n{s}");
    }
    // NaN-propagating max, two-sided sigmoid, saturating casts: in the prelude.
    for want in [
        "(x != x || y != y) ? mlx_nan() : (x >= y ? x : y)",
        "if (v >= 0.0f) { return 1.0f / (1.0f + expf(-v)); }",
        "if (v >= 2147483648.0f) { return 2147483647; }",
        "0xbf58476d1ce4e5b9ull",
        "0x94d049bb133111ebull",
        "0x9e3779b97f4a7c15ull",
        "(float)(bits >> 40) * (1.0f / 16777216.0f)",
    ] {
        assert!(codegen::PRELUDE.contains(want), "missing `{want}`");
    }
}

fn reduction(shape: &[usize], axes: &[usize]) -> Kernel {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|a| shape[*a]).collect();
    let cs = contiguous_strides(&out_shape);
    let mut strides = vec![0isize; shape.len()];
    for (j, a) in kept.iter().enumerate() {
        strides[*a] = cs[j];
    }
    Kernel {
        shape: shape.to_vec(),
        reduce: Some((ReduceOp::Sum, axes.to_vec())),
        loads: vec![dense(Buf::Input(0), shape)],
        ops: vec![KOp::Load(0), KOp::Unary(UnaryOp::Exp, 0)],
        stores: vec![
            (dense(Buf::Temp(1), shape), 1),
            (view(Buf::Temp(0), shape, &strides), 1),
        ],
    }
}

#[test]
fn reductions_fold_in_an_order_fixed_by_the_kernel() {
    // Many outputs, short rows: one thread per output, nested loops in row-major order.
    let c = codegen::kernel(&reduction(&[4096, 10], &[1]));
    assert!(!c.barrier && c.block == codegen::BLOCK);
    assert!(
        c.source
            .contains("for (unsigned int r0 = 0; r0 < 10u; ++r0) {"),
        "{}",
        c.source
    );
    assert!(c.source.contains("acc = acc + v1;"));
    // The side store of exp(x) happens at every position, the sum once per output.
    assert!(c.source.contains("p1[o0 * 10 + r0] = v1;"), "{}", c.source);
    assert!(c.source.contains("p2[o0] = acc;"));
    assert!(!c.source.contains("__syncthreads"));

    // Few outputs, long rows: a block per output, interleaved parts, then a fixed tree.
    let c = codegen::kernel(&reduction(&[3, 5000], &[1]));
    assert!(c.barrier && c.block == REDUCE_BLOCK && c.blocks == 3);
    for want in [
        "__shared__ float part[256];",
        "for (unsigned int o = blockIdx.x; o < 3u; o += gridDim.x) {",
        "for (unsigned int r = threadIdx.x; r < 5000u; r += 256u) {",
        "for (unsigned int s = 128u; s > 0u; s >>= 1) {",
        "if (threadIdx.x < s) { part[threadIdx.x] = part[threadIdx.x] + part[threadIdx.x + s]; }",
        "if (threadIdx.x == 0u) { p2[o0] = part[0]; }",
    ] {
        assert!(c.source.contains(want), "missing `{want}` in\n{}", c.source);
    }
    assert_eq!(c.source.matches("__syncthreads();").count(), 3);
}

#[test]
fn equal_kernels_share_one_compiled_function() {
    // Two functions with the same elementwise work (at different buffers) share a kernel.
    let mut states = Vec::new();
    let mut f1 = FnBuilder::new("a", &mut states);
    let x = f1.input("x", vec![7, 3], DType::F32);
    let y = f1.unary(UnaryOp::Exp, x);
    let z = f1.unary(UnaryOp::Neg, y);
    f1.output("z", z);
    let a = f1.finish();
    let mut f2 = FnBuilder::new("b", &mut states);
    let x = f2.input("x", vec![7, 3], DType::F32);
    let y = f2.unary(UnaryOp::Exp, x);
    let z = f2.unary(UnaryOp::Neg, y);
    f2.output("z", z);
    let b = f2.finish();
    let p = Program {
        states,
        functions: vec![a, b],
    };
    let plan = plan::plan(&p).unwrap();
    let launched = |f: usize| -> Vec<usize> {
        plan.functions[f]
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::Launch(l) => Some(l.kernel),
                Command::Gemm(_) => None,
            })
            .collect()
    };
    assert_eq!(launched(0), launched(1));
    assert_eq!(plan.kernels.len(), launched(0).len());
    // The translation unit holds each kernel once, after the prelude.
    let src = plan.source();
    assert!(src.starts_with(codegen::PRELUDE));
    for k in &plan.kernels {
        assert_eq!(src.matches(&format!("void {}(", k.name)).count(), 1);
    }
}

/// `out = a @ b` computed the plain way, row-major, from strided host views.
fn naive(a: &[f32], av: &View, b: &[f32], bv: &View, out_shape: &[usize]) -> Vec<f32> {
    let r = av.shape.len();
    let (m, k, n) = (av.shape[r - 2], av.shape[r - 1], bv.shape[r - 1]);
    let batch: usize = av.shape[..r - 2].iter().product();
    let mut out = vec![0.0f32; out_shape.iter().product()];
    for e in 0..batch {
        // Batch coordinates of entry e.
        let mut rem = e;
        let mut coords = vec![0usize; r - 2];
        for d in (0..r - 2).rev() {
            coords[d] = rem % av.shape[d];
            rem /= av.shape[d];
        }
        let boff = |v: &View| -> isize {
            coords
                .iter()
                .zip(&v.strides)
                .map(|(c, s)| *c as isize * s)
                .sum::<isize>()
                + v.offset as isize
        };
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for l in 0..k {
                    let ia =
                        boff(av) + i as isize * av.strides[r - 2] + l as isize * av.strides[r - 1];
                    let ib =
                        boff(bv) + l as isize * bv.strides[r - 2] + j as isize * bv.strides[r - 1];
                    acc += a[ia as usize] * b[ib as usize];
                }
                out[(e * m + i) * n + j] = acc;
            }
        }
    }
    out
}

#[test]
fn matrix_products_map_onto_cublas_for_every_layout() {
    // (batch, m, k, n) and how each operand lies: row-major, transposed, padded rows,
    // broadcast over the batch, a transposed output.
    let mut cases = 0;
    for (bs, m, k, n) in [
        (vec![], 3usize, 5usize, 4usize),
        (vec![], 1, 7, 1),
        (vec![], 6, 1, 2),
        (vec![2], 3, 4, 5),
        (vec![2, 3], 4, 2, 3),
    ] {
        for (ta, tb, to, pad_a, bcast_b) in [
            (false, false, false, 0, false),
            (true, false, false, 0, false),
            (false, true, false, 0, false),
            (true, true, false, 2, false),
            (false, false, true, 0, false),
            (true, false, true, 1, true),
            (false, true, false, 3, true),
        ] {
            let r = bs.len() + 2;
            let nb: usize = bs.iter().product();
            // A [.., m, k]: stored [.., k, m] when transposed, rows padded by pad_a.
            let (ar, ac) = if ta { (k, m) } else { (m, k) };
            let ald = ac + pad_a;
            let mut ast = vec![0isize; r];
            let mut acc = (ar * ald) as isize;
            for d in (0..bs.len()).rev() {
                ast[d] = acc;
                acc *= bs[d] as isize;
            }
            if ta {
                ast[r - 2] = 1;
                ast[r - 1] = ald as isize;
            } else {
                ast[r - 2] = ald as isize;
                ast[r - 1] = 1;
            }
            let mut ashape = bs.clone();
            ashape.extend([m, k]);
            let av = View {
                buf: Buf::Input(0),
                offset: 1,
                shape: ashape,
                strides: ast,
                dtype: DType::F32,
            };
            let a_len = 1 + nb * ar * ald;
            // B [.., k, n]: broadcast over the batch (stride 0) or one per entry.
            let (br, bc) = if tb { (n, k) } else { (k, n) };
            let mut bst = vec![0isize; r];
            if !bcast_b {
                let mut acc = (br * bc) as isize;
                for d in (0..bs.len()).rev() {
                    bst[d] = acc;
                    acc *= bs[d] as isize;
                }
            }
            if tb {
                bst[r - 2] = 1;
                bst[r - 1] = bc as isize;
            } else {
                bst[r - 2] = bc as isize;
                bst[r - 1] = 1;
            }
            let mut bshape = bs.clone();
            bshape.extend([k, n]);
            let bv = View {
                buf: Buf::Input(1),
                offset: 0,
                shape: bshape,
                strides: bst,
                dtype: DType::F32,
            };
            let b_len = if bcast_b { br * bc } else { nb * br * bc };
            // The output: row-major, or each matrix stored transposed.
            let mut oshape = bs.clone();
            oshape.extend([m, n]);
            let mut ost = contiguous_strides(&oshape);
            if to {
                ost[r - 2] = 1;
                ost[r - 1] = m as isize;
            }
            let ov = View {
                buf: Buf::Temp(0),
                offset: 0,
                shape: oshape.clone(),
                strides: ost,
                dtype: DType::F32,
            };
            let a: Vec<f32> = (0..a_len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..b_len).map(|i| (i as f32 * 0.61).cos()).collect();
            let want = naive(&a, &av, &b, &bv, &oshape);
            assert!(gemm::usable(&av) && gemm::usable(&bv) && gemm::usable(&ov));
            let loc = |r: Region, offset: usize| Loc { region: r, offset };
            let calls = gemm::calls(
                &av,
                loc(Region::Input(0), av.offset),
                &bv,
                loc(Region::Input(1), 0),
                &ov,
                loc(Region::Arena, 0),
            )
            .unwrap();
            let mut out = vec![f32::NAN; nb * m * n];
            for g in &calls {
                let g: Gemm<u64> = g
                    .try_map(|l| {
                        Ok::<u64, ()>(match l.region {
                            Region::Input(0) => a.as_ptr() as u64 + 4 * l.offset as u64,
                            Region::Input(1) => b.as_ptr() as u64 + 4 * l.offset as u64,
                            _ => out.as_mut_ptr() as u64 + 4 * l.offset as u64,
                        })
                    })
                    .unwrap();
                // SAFETY: the three host arrays cover every matrix of the call.
                unsafe { gemm::reference(&g) };
            }
            // Read the output through its view.
            let got: Vec<f32> = (0..nb * m * n)
                .map(|lin| {
                    let mut rem = lin;
                    let mut off = 0isize;
                    for d in (0..r).rev() {
                        off += (rem % oshape[d]) as isize * ov.strides[d];
                        rem /= oshape[d];
                    }
                    out[off as usize]
                })
                .collect();
            for (x, y) in got.iter().zip(&want) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "batch {bs:?} {m}x{k}x{n} ta {ta} tb {tb} to {to}: {got:?} vs {want:?}"
                );
            }
            cases += 1;
        }
    }
    assert_eq!(cases, 35);
    // A matrix with no unit stride (broadcast rows) is not readable in place.
    assert!(!gemm::usable(&view(Buf::Input(0), &[3, 4], &[0, 2])));
}

/// Every example's program (training and evaluation functions), with its name; Fashion-MNIST
/// programs only when the data is installed.
fn example_programs() -> Vec<(String, Program)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mlx"))
        .collect();
    files.sort();
    let fashion = std::path::Path::new("/usr/share/datasets/fashion-mnist").exists();
    let mut out = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("fashion") && !fashion {
            eprintln!("note: skipping {name}: Fashion-MNIST is not installed");
            continue;
        }
        match crate::commands::lowered(&f, None, Some(13), &[]) {
            Ok(p) => out.push((name, p)),
            // A file with no train (a data-only example) has nothing to compile.
            Err((_, diags)) if diags.iter().any(|d| d.code == "mlx::run::unknown_train") => {}
            Err((_, diags)) => panic!(
                "{name}: {:?}",
                diags.iter().map(ToString::to_string).collect::<Vec<_>>()
            ),
        }
    }
    out
}

/// Programs that use every op: each primitive case with its gradient.
fn case_programs() -> Vec<(String, Program)> {
    crate::ir::tests::cases()
        .iter()
        .map(|c| (c.name.clone(), crate::ir::tests::program(c)))
        .collect()
}

#[test]
fn every_generated_kernel_compiles_with_nvrtc() {
    if !super::nvrtc::available() {
        assert!(
            std::env::var_os("MLX_REQUIRE_NVRTC").is_none(),
            "libnvrtc cannot be loaded (MLX_REQUIRE_NVRTC is set)"
        );
        eprintln!(
            "note: skipping: libnvrtc cannot be loaded (pip install nvidia-cuda-nvrtc, then put \
             its nvidia/cu13/lib on LD_LIBRARY_PATH)"
        );
        return;
    }
    eprintln!("NVRTC {:?}", super::nvrtc::version());
    // One translation unit for everything: the kernels are deduplicated by name.
    let mut plan = plan::Plan::default();
    let mut names = std::collections::HashSet::new();
    let mut programs = example_programs();
    programs.extend(case_programs());
    programs.push(("library steps".into(), library_program()));
    for (name, p) in &programs {
        let pl = plan::plan(p).unwrap_or_else(|e| panic!("{name}: {e}"));
        for k in pl.kernels {
            if names.insert(k.name.clone()) {
                plan.kernels.push(k);
            }
        }
    }
    let src = plan.source();
    // A CUBIN for the H100 (ptxas runs too) and PTX for the oldest architecture NVRTC 13 has.
    for arch in ["sm_90", "compute_75"] {
        if let Err(f) = super::nvrtc::compile(&src, arch) {
            panic!("NVRTC ({arch}): {}\n{}", f.error, f.log);
        }
    }
    eprintln!(
        "compiled {} kernels of {} programs",
        plan.kernels.len(),
        programs.len()
    );
}

/// A program of every library step: gather (and its scatter-add gradient), one-hot, casts,
/// random numbers, windows, pads and concatenations.
fn library_program() -> Program {
    let mut states = Vec::new();
    let mut b = FnBuilder::new("lib", &mut states);
    let table = b.input("table", vec![6, 4], DType::F32);
    let idx = b.input("idx", vec![2, 3], DType::I32);
    let counter = b.input("counter", vec![], DType::I32);
    let img = b.input("img", vec![2, 3, 7, 6], DType::F32);
    let g = b.push(
        crate::ir::Op::Gather {
            table,
            indices: idx,
        },
        vec![2, 3, 4],
        DType::F32,
    );
    b.output("gather", g);
    let s = b.push(
        crate::ir::Op::ScatterAdd {
            indices: idx,
            updates: g,
        },
        vec![6, 4],
        DType::F32,
    );
    b.output("scatter", s);
    let oh = b.one_hot(idx, 5);
    b.output("one_hot", oh);
    let f = b.cast(idx, DType::F32);
    let half = b.scale(f, 0.75);
    let back = b.cast(half, DType::I32);
    b.output("cast", back);
    let r = b.push(
        crate::ir::Op::Random {
            key: 0x1234_5678_9abc_def0,
            counter,
        },
        vec![3, 5],
        DType::F32,
    );
    b.output("random", r);
    let cols = b.im2col(img, [3, 2], 2, 1, f32::NEG_INFINITY);
    b.output("im2col", cols);
    let cshape = b.shape(cols).to_vec();
    let back = b.push(
        crate::ir::Op::Col2Im {
            cols,
            kernel: [3, 2],
            stride: 2,
            padding: 1,
        },
        vec![2, 3, 7, 6],
        DType::F32,
    );
    let _ = cshape;
    b.output("col2im", back);
    let p = b.pad(table, 1, 2, 9);
    b.output("pad", p);
    let t = b.transpose(table, &[1, 0]);
    let c = b.concat(vec![t, t], 1);
    b.output("concat", c);
    let f = b.finish();
    Program {
        states,
        functions: vec![f],
    }
}

/// Checks run on the emulated device here and on a real one in `gpu_tests`.
pub(crate) mod harness {
    use super::*;
    use crate::backend::cpu::tests::assert_close;
    use crate::backend::interp::Interp;
    use crate::ir::tests::{case_inputs, cases, program, values};

    pub fn primitives_agree(be: &dyn Backend) {
        for c in cases() {
            let p = program(&c);
            let inputs = case_inputs(&c, &p);
            let want = Interp.compile(&p).unwrap().run(0, &inputs).unwrap();
            let got = be
                .compile(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", c.name))
                .run(0, &inputs)
                .unwrap_or_else(|e| panic!("{}: {}", c.name, e.message));
            assert_close(
                &format!("{} ({})", c.name, be.name()),
                &got,
                &want,
                2e-5,
                1e-6,
            );
        }
    }

    fn library_inputs() -> Vec<HostTensor> {
        vec![
            HostTensor::f32(vec![6, 4], values(24, 3, -1.0, 1.0)),
            HostTensor::i32(vec![2, 3], vec![5, 0, 2, 2, 1, 5]),
            HostTensor::scalar_i32(41),
            HostTensor::f32(vec![2, 3, 7, 6], values(252, 4, -2.0, 2.0)),
        ]
    }

    /// Library steps agree exactly (they copy, count or sum in the interpreter's order),
    /// random numbers included.
    pub fn library_steps_agree_exactly(be: &dyn Backend) {
        let p = library_program();
        let inputs = library_inputs();
        let want = Interp.compile(&p).unwrap().run(0, &inputs).unwrap();
        let got = be.compile(&p).unwrap().run(0, &inputs).unwrap();
        let names: Vec<&str> = p.functions[0]
            .outputs
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        for ((name, g), w) in names.iter().zip(&got).zip(&want) {
            assert_eq!(g.shape, w.shape, "{name}");
            if *name == "scatter" || *name == "col2im" {
                // Sums: the interpreter's order, in f32 either way.
                assert_close(
                    name,
                    std::slice::from_ref(g),
                    std::slice::from_ref(w),
                    1e-6,
                    1e-6,
                );
            } else {
                assert_eq!(g.data, w.data, "{name} ({})", be.name());
            }
        }
    }

    /// A bad index is a runtime error naming the index, and the next call is clean.
    pub fn bad_indices_are_reported(be: &dyn Backend) {
        let p = library_program();
        let mut exe = be.compile(&p).unwrap();
        let mut inputs = library_inputs();
        inputs[1] = HostTensor::i32(vec![2, 3], vec![1, 2, 9, 0, 0, 0]);
        let e = exe.run(0, &inputs).unwrap_err();
        assert!(
            e.message.contains("index 9 is outside a table of 6 rows"),
            "{}",
            e.message
        );
        assert!(exe.run(0, &library_inputs()).is_ok());
    }

    /// Long reductions (block per output), wide ones (thread per output), a column
    /// reduction, a transposed product and state updated in place across calls.
    pub fn reductions_and_state_agree(be: &dyn Backend) {
        let mut states = Vec::new();
        let mut b = FnBuilder::new("f", &mut states);
        let x = b.input("x", vec![37, 1000], DType::F32);
        let e = b.unary(UnaryOp::Tanh, x);
        let rows = b.sum(e, &[1]);
        let cols = b.reduce(ReduceOp::Max, e, &[0]);
        let all = b.sum_all(e);
        let t = b.transpose(x, &[1, 0]);
        let gram = b.matmul(x, t);
        b.output("rows", rows);
        b.output("cols", cols);
        b.output("all", all);
        b.output("gram", gram);
        let s = b.declare_state(crate::ir::StateDecl {
            name: "acc".into(),
            shape: vec![37],
            kind: crate::ir::StateKind::Buffer,
            init: crate::check::hir::Init::Zeros,
            origin: None,
        });
        let old = b.state(s);
        let new = b.add(old, rows);
        b.update(s, new);
        let f = b.finish();
        let p = Program {
            states,
            functions: vec![f],
        };
        let input = vec![HostTensor::f32(
            vec![37, 1000],
            values(37_000, 5, -3.0, 3.0),
        )];
        let mut want_exe = Interp.compile(&p).unwrap();
        let mut got_exe = be.compile(&p).unwrap();
        for call in 0..2 {
            let want = want_exe.run(0, &input).unwrap();
            let got = got_exe.run(0, &input).unwrap();
            assert_close(
                &format!("call {call} ({})", be.name()),
                &got,
                &want,
                1e-4,
                1e-4,
            );
        }
        let want = want_exe.read_state(0).unwrap();
        let got = got_exe.read_state(0).unwrap();
        assert_close("state", &[got], &[want], 1e-4, 1e-4);
        // And the same answer twice: nothing depends on timing.
        let again = be.compile(&p).unwrap().run(0, &input).unwrap();
        let once = be.compile(&p).unwrap().run(0, &input).unwrap();
        assert_eq!(again, once);
    }
}

#[test]
fn emulated_gpu_agrees_with_the_interpreter_on_every_primitive_and_gradient() {
    if emulator::available() {
        harness::primitives_agree(&EmulatedCuda);
    }
}

#[test]
fn emulated_gpu_runs_library_steps_exactly() {
    if emulator::available() {
        harness::library_steps_agree_exactly(&EmulatedCuda);
    }
}

#[test]
fn emulated_gpu_reports_bad_indices() {
    if emulator::available() {
        harness::bad_indices_are_reported(&EmulatedCuda);
    }
}

#[test]
fn emulated_gpu_reductions_and_state_agree() {
    if emulator::available() {
        harness::reductions_and_state_agree(&EmulatedCuda);
    }
}

mod random {
    //! The CPU back end's random programs (chains of elementwise ops through broadcasts,
    //! transposes, slices and concatenations, a reduction over random axes, a batched product,
    //! and their gradients) on the emulated GPU against the interpreter.

    use super::*;
    use crate::backend::cpu::tests::assert_close;
    use crate::backend::cpu::tests::random::build;
    use crate::backend::interp::Interp;
    use crate::ir::tests::values;
    use proptest::prelude::*;

    proptest! {
        // Each case compiles a module for the host: fewer cases than the CPU's 64.
        #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn random_programs_agree_with_the_interpreter_on_the_emulated_gpu(
            dims in prop::collection::vec(1usize..9, 1..5),
            ops in prop::collection::vec(any::<u8>(), 1..7),
            axes_mask in any::<u8>(),
            perm_seed in any::<usize>(),
            seed in any::<u64>(),
        ) {
            if !emulator::available() {
                return Ok(());
            }
            let p = build(&dims, &ops, axes_mask, perm_seed);
            let n: usize = dims.iter().product();
            let last = dims[dims.len() - 1];
            let inputs = vec![
                HostTensor::f32(dims.clone(), values(n, seed, -2.0, 2.0)),
                HostTensor::f32(dims.clone(), values(n, seed ^ 1, -2.0, 2.0)),
                HostTensor::f32(vec![last], values(last, seed ^ 2, -1.0, 1.0)),
            ];
            let want = Interp.compile(&p).unwrap().run(0, &inputs).unwrap();
            let got = EmulatedCuda.compile(&p).unwrap().run(0, &inputs).unwrap();
            assert_close(&format!("dims {dims:?} ops {ops:?} axes {axes_mask:#b}"), &got, &want, 1e-4, 1e-5);
        }
    }
}
