//! The GPU back end on a real device (feature `cuda`): every primitive and gradient, the
//! library steps (random numbers bit for bit), index errors, long reductions and state, and
//! whole training steps of every example, each against the interpreter. Without a usable GPU
//! they print a notice and pass, unless `MLX_REQUIRE_GPU=1`, which makes them fail.

use super::tests::harness;
use crate::backend::Backend;

fn gpu() -> Option<Box<dyn Backend>> {
    match super::open() {
        Ok(b) => Some(b),
        Err(why) => {
            assert!(
                std::env::var_os("MLX_REQUIRE_GPU").is_none_or(|v| v != "1"),
                "MLX_REQUIRE_GPU=1 but the GPU cannot be used: {why}"
            );
            eprintln!("note: skipping GPU test: {why}");
            None
        }
    }
}

#[test]
fn gpu_agrees_with_the_interpreter_on_every_primitive_and_gradient() {
    if let Some(be) = gpu() {
        harness::primitives_agree(be.as_ref());
    }
}

#[test]
fn gpu_runs_library_steps_exactly() {
    if let Some(be) = gpu() {
        harness::library_steps_agree_exactly(be.as_ref());
    }
}

#[test]
fn gpu_reports_bad_indices() {
    if let Some(be) = gpu() {
        harness::bad_indices_are_reported(be.as_ref());
    }
}

#[test]
fn gpu_reductions_and_state_agree() {
    if let Some(be) = gpu() {
        harness::reductions_and_state_agree(be.as_ref());
    }
}

mod steps {
    //! Three training steps and an evaluation of every example, as in
    //! `train::run::differential`.

    use crate::train::run::differential::agree_with;

    fn agree(file: &str) {
        if let Some(be) = super::gpu() {
            agree_with(be.as_ref(), file);
        }
    }

    crate::train::run::differential::example_step_tests!(agree);
}
