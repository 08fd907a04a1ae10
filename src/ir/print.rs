//! The stable text form of the IR (`mlx ir`), used by snapshot tests and `MLX_DEBUG`.

use super::*;
use std::fmt::Write;

fn ty(n: &Node) -> String {
    let dt = match n.dtype {
        DType::F32 => "f32",
        DType::I32 => "i32",
    };
    let d: Vec<String> = n.shape.iter().map(ToString::to_string).collect();
    format!("{dt}[{}]", d.join(", "))
}

pub fn program(p: &Program) -> String {
    let mut out = String::new();
    for (i, s) in p.states.iter().enumerate() {
        let d: Vec<String> = s.shape.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "state #{i} {} : f32[{}] ({:?}, init {:?})",
            s.name,
            d.join(", "),
            s.kind,
            s.init
        );
    }
    for f in &p.functions {
        out.push('\n');
        out.push_str(&function(p, f));
    }
    out
}

pub fn function(p: &Program, f: &Function) -> String {
    let mut out = String::new();
    let ins: Vec<String> = f
        .inputs
        .iter()
        .map(|i| {
            let d: Vec<String> = i.shape.iter().map(ToString::to_string).collect();
            format!("{}: {:?}[{}]", i.name, i.dtype, d.join(", "))
                .replace("F32", "f32")
                .replace("I32", "i32")
        })
        .collect();
    let _ = writeln!(out, "fn {}({}) {{", f.name, ins.join(", "));
    for (i, n) in f.nodes.iter().enumerate() {
        let a = |v: &ValueId| format!("%{v}");
        let text = match &n.op {
            Op::Input(k) => format!(
                "input {}",
                f.inputs.get(*k).map_or("?", |d| d.name.as_str())
            ),
            Op::State(s) => format!(
                "state {}",
                p.states.get(*s).map_or("?", |d| d.name.as_str())
            ),
            Op::Constant(v) => format!("const {v:?}"),
            Op::Unary(op, x) => format!("{} {}", format!("{op:?}").to_lowercase(), a(x)),
            Op::Binary(op, x, y) => {
                format!("{} {}, {}", format!("{op:?}").to_lowercase(), a(x), a(y))
            }
            Op::Select(c, x, y) => format!("select {}, {}, {}", a(c), a(x), a(y)),
            Op::Broadcast(x) => format!("broadcast {}", a(x)),
            Op::Reduce(op, x, axes) => format!(
                "reduce_{} {} axes {axes:?}",
                format!("{op:?}").to_lowercase(),
                a(x)
            ),
            Op::MatMul(x, y) => format!("matmul {}, {}", a(x), a(y)),
            Op::Reshape(x) => format!("reshape {}", a(x)),
            Op::Transpose(x, perm) => format!("transpose {} {perm:?}", a(x)),
            Op::Slice { x, axis, start } => format!("slice {} axis {axis} start {start}", a(x)),
            Op::Pad { x, axis, start } => format!("pad {} axis {axis} start {start}", a(x)),
            Op::Concat(xs, axis) => format!(
                "concat [{}] axis {axis}",
                xs.iter().map(a).collect::<Vec<_>>().join(", ")
            ),
            Op::Gather { table, indices } => format!("gather {}, {}", a(table), a(indices)),
            Op::ScatterAdd { indices, updates } => {
                format!("scatter_add {}, {}", a(indices), a(updates))
            }
            Op::Im2Col {
                x,
                kernel,
                stride,
                padding,
                pad_value,
            } => {
                format!(
                    "im2col {} kernel {kernel:?} stride {stride} padding {padding} pad {pad_value:?}",
                    a(x)
                )
            }
            Op::Col2Im {
                cols,
                kernel,
                stride,
                padding,
            } => {
                format!(
                    "col2im {} kernel {kernel:?} stride {stride} padding {padding}",
                    a(cols)
                )
            }
            Op::Random { key, counter } => format!("random key {key:#018x} counter {}", a(counter)),
            Op::OneHot { x, classes } => format!("one_hot {} classes {classes}", a(x)),
            Op::Cast(x) => format!("cast {}", a(x)),
            Op::StopGrad(x) => format!("stop_grad {}", a(x)),
        };
        let _ = writeln!(out, "  %{i} = {text} : {}", ty(n));
    }
    for (name, v) in &f.outputs {
        let _ = writeln!(out, "  output {name} = %{v}");
    }
    for (s, v) in &f.updates {
        let _ = writeln!(
            out,
            "  update {} <- %{v}",
            p.states.get(*s).map_or("?", |d| d.name.as_str())
        );
    }
    out.push_str("}\n");
    out
}

/// The compiled form of every function (`mlx ir --stage kernels`): its steps in order, with
/// each fused kernel's operations, and the size of its memory plan.
pub fn schedules(p: &Program) -> String {
    use super::schedule::{self, KOp, Step};
    let mut out = String::new();
    for f in &p.functions {
        let s = schedule::schedule(p, f);
        let plan = super::memory::plan(&s);
        let kernels = s
            .steps
            .iter()
            .filter(|st| matches!(st, Step::Kernel(_)))
            .count();
        let _ = writeln!(
            out,
            "fn {}: {} steps ({kernels} fused kernels, {} elementwise ops fused away), {} temporaries in {:.2} MB",
            f.name,
            s.steps.len(),
            s.fused,
            s.temps.len(),
            plan.size as f64 * 4.0 / 1e6
        );
        for (i, st) in s.steps.iter().enumerate() {
            let _ = writeln!(out, "  #{i} {}", schedule::describe(st));
            if let Step::Kernel(k) = st {
                let ops: Vec<String> = k
                    .ops
                    .iter()
                    .enumerate()
                    .map(|(j, op)| {
                        let body = match op {
                            KOp::Load(l) => format!("load {l}"),
                            KOp::Const(bits) => format!("{:?}", f32::from_bits(*bits)),
                            KOp::Unary(u, a) => format!("{} v{a}", format!("{u:?}").to_lowercase()),
                            KOp::Binary(b, x, y) => {
                                format!("{} v{x} v{y}", format!("{b:?}").to_lowercase())
                            }
                            KOp::Select(c, x, y) => format!("select v{c} v{x} v{y}"),
                        };
                        format!("v{j} = {body}")
                    })
                    .collect();
                let stores: Vec<String> = k
                    .stores
                    .iter()
                    .enumerate()
                    .map(|(j, (_, v))| format!("store {j} <- v{v}"))
                    .collect();
                let _ = writeln!(out, "      {}; {}", ops.join("; "), stores.join("; "));
            }
        }
        out.push('\n');
    }
    out
}
