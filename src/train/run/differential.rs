//! Whole training steps of every example agree between a compiled back end (the CPU's here;
//! the GPU's, emulated, in `backend::cuda`'s tests and on a device with the `cuda` feature)
//! and the reference interpreter: the same parameters, the same real batches (of a size that divides
//! nothing: 13 rows), three optimizer steps, then an evaluation batch. Losses, every state
//! (parameters and optimizer moments) and the evaluation outputs must agree within a relative
//! tolerance of 1e-4 of each tensor's scale (the back ends sum in different orders, so bits
//! differ; after three steps the differences stay near single-precision rounding).

use super::*;
use crate::backend::Backend;
use crate::backend::cpu::Cpu;
use crate::backend::interp::Interp;

const BATCH: usize = 13;
const STEPS: usize = 3;

struct Trace {
    losses: Vec<f32>,
    states: Vec<HostTensor>,
    eval: Vec<HostTensor>,
}

fn trace(backend: &dyn Backend, file: &str) -> Option<Trace> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(file);
    let checked = crate::driver::check_file(&path, &[]);
    assert!(
        checked.ok(),
        "{file}: {:?}",
        checked
            .diags
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    let program = checked.program.expect("program");
    let plan = program
        .root_trains
        .first()
        .and_then(|n| program.trains.iter().find(|t| &t.name == n))
        .or(program.trains.first())?;
    let dset = dataset(&program, plan).expect("dataset");
    let data = Data::load(dset).expect("data");
    let folds = data.folds(dset, plan.seed).expect("folds");
    let fold = &folds[0];
    let pre = Preprocessor::fit(dset, &data, &fold.train).expect("preprocessing");
    let spec = Spec {
        hir: &program,
        plan,
        dataset: dset,
        train_batches: vec![BATCH],
        eval_batches: vec![BATCH],
        predict_batches: Vec::new(),
        shard_batches: Vec::new(),
    };
    let built = graph::build(&spec).expect("build");
    let mut exe = backend.compile(&built.program).expect("compile");
    for (i, s) in built.program.states.iter().enumerate() {
        let v = crate::train::init::values(&s.init, &s.shape, plan.seed, &s.name);
        exe.write_state(i, &HostTensor::f32(s.shape.clone(), v))
            .expect("state");
    }
    let lr = plan.optimizer.lr() as f32;
    let mut losses = Vec::new();
    for step in 0..STEPS {
        let rows = &fold.train[step * BATCH..(step + 1) * BATCH];
        let (x, y) = batch_inputs(dset, &pre, &data, rows).expect("batch");
        let t = (step + 1) as i32;
        let inputs = [
            x,
            y,
            HostTensor::scalar(lr),
            HostTensor::scalar_i32(step as i32),
            HostTensor::scalar(1.0 / (1.0 - 0.9f32.powi(t))),
            HostTensor::scalar(1.0 / (1.0 - 0.999f32.powi(t))),
        ];
        let f = built.train[&BATCH];
        losses.push(exe.run(f, &inputs).expect("train step")[0].item());
    }
    let rows = &fold.val[..BATCH.min(fold.val.len())];
    let rows = if rows.len() == BATCH {
        rows
    } else {
        &fold.train[..BATCH]
    };
    let (x, y) = batch_inputs(dset, &pre, &data, rows).expect("batch");
    let eval = exe.run(built.eval[&BATCH], &[x, y]).expect("eval");
    let states = (0..built.program.states.len())
        .map(|i| exe.read_state(i).expect("state"))
        .collect();
    Some(Trace {
        losses,
        states,
        eval,
    })
}

fn close_to(name: &str, what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = a
        .iter()
        .chain(b)
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * scale,
            "{what}[{i}]: {x} ({name}) vs {y} (interp), scale {scale}"
        );
    }
}

/// Fashion-MNIST needs the Debian package: skip with a notice when it is absent (unless
/// `MLX_REQUIRE_DATA` is set, as in CI).
fn fashion_installed() -> bool {
    let here = std::path::Path::new("/usr/share/datasets/fashion-mnist").exists();
    if !here {
        assert!(
            std::env::var_os("MLX_REQUIRE_DATA").is_none(),
            "Fashion-MNIST is not installed"
        );
        eprintln!("note: skipping: /usr/share/datasets/fashion-mnist is not installed");
    }
    here
}

fn agree(file: &str) {
    agree_with(&Cpu::new(), file);
}

/// Three training steps and an evaluation of example `file` agree between `candidate` and
/// the interpreter.
pub(crate) fn agree_with(candidate: &dyn Backend, file: &str) {
    if file.starts_with("fashion") && !fashion_installed() {
        return;
    }
    let Some(cpu) = trace(candidate, file) else {
        return;
    };
    let Some(reference) = trace(&Interp, file) else {
        return;
    };
    let name = candidate.name();
    let close = |what: &str, a: &[f32], b: &[f32]| close_to(name, what, a, b);
    close(&format!("{file} losses"), &cpu.losses, &reference.losses);
    assert!(
        cpu.losses.iter().all(|l| l.is_finite()),
        "{file}: {:?}",
        cpu.losses
    );
    for (i, (a, b)) in cpu.states.iter().zip(&reference.states).enumerate() {
        close(&format!("{file} state {i}"), a.as_f32(), b.as_f32());
    }
    for (i, (a, b)) in cpu.eval.iter().zip(&reference.eval).enumerate() {
        close(&format!("{file} eval output {i}"), a.as_f32(), b.as_f32());
    }
}

/// One `#[test]` per example, each `$agree(file)`: the same list for every back end checked
/// against the interpreter (here, the emulated GPU below, and `backend::cuda::gpu_tests`).
macro_rules! example_step_tests {
    ($agree:path) => {
        #[test]
        fn penguins_steps_agree() {
            $agree("penguins.mlx");
        }

        #[test]
        fn diabetes_steps_agree() {
            $agree("diabetes.mlx");
        }

        #[test]
        fn penguins_sweep_steps_agree() {
            $agree("penguins_sweep.mlx");
        }

        #[test]
        fn fashion_mlp_steps_agree() {
            $agree("fashion_mlp.mlx");
        }

        #[test]
        fn fashion_lenet_steps_agree() {
            $agree("fashion_lenet.mlx");
        }

        #[test]
        fn fashion_lstm_steps_agree() {
            $agree("fashion_lstm.mlx");
        }

        #[test]
        fn fashion_gru_steps_agree() {
            $agree("fashion_gru.mlx");
        }
    };
}
pub(crate) use example_step_tests;

example_step_tests!(agree);

mod emulated_gpu {
    //! The same steps on the GPU back end's emulated device (`backend::cuda::emulator`).

    use super::agree_with;
    use crate::backend::cuda::emulator::{EmulatedCuda, available};

    fn agree(file: &str) {
        if available() {
            agree_with(&EmulatedCuda, file);
        }
    }

    super::example_step_tests!(agree);
}
