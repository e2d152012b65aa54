//! Optimiser steps (`shaders/optim.wgsl`).

use super::{Access, AdamStep, GpuBackend, Kernel, Tensor, buffer};

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/optim.wgsl"));

pub(super) struct Kernels {
    sgd_momentum: Kernel,
    adam: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        Kernels {
            sgd_momentum: Kernel::new(
                "sgd momentum",
                SOURCE,
                "sgd_momentum",
                &[
                    (1, Access::ReadWrite),
                    (2, Access::Read),
                    (3, Access::ReadWrite),
                ],
            ),
            adam: Kernel::new(
                "adam",
                SOURCE,
                "adam",
                &[
                    (1, Access::ReadWrite),
                    (2, Access::Read),
                    (3, Access::ReadWrite),
                    (4, Access::ReadWrite),
                ],
            ),
        }
    }
}

pub(super) fn sgd_momentum(
    gpu: &GpuBackend,
    param: &mut Tensor,
    grad: &Tensor,
    velocity: &mut Tensor,
    learning_rate: f32,
    momentum: f32,
) {
    assert_eq!(param.shape(), grad.shape(), "sgd_momentum: grad shape");
    assert_eq!(
        param.shape(),
        velocity.shape(),
        "sgd_momentum: velocity shape"
    );
    gpu.dispatch(
        &gpu.kernels.optim.sgd_momentum,
        &[
            param.len() as u32,
            learning_rate.to_bits(),
            momentum.to_bits(),
        ],
        &[buffer(param), buffer(grad), buffer(velocity)],
        gpu.linear_grid(param.len()),
    );
}

pub(super) fn adam(
    gpu: &GpuBackend,
    param: &mut Tensor,
    grad: &Tensor,
    first_moment: &mut Tensor,
    second_moment: &mut Tensor,
    hyper: AdamStep,
) {
    assert_eq!(param.shape(), grad.shape(), "adam: grad shape");
    assert_eq!(
        param.shape(),
        first_moment.shape(),
        "adam: first moment shape"
    );
    assert_eq!(
        param.shape(),
        second_moment.shape(),
        "adam: second moment shape"
    );
    assert!(hyper.step >= 1, "adam: steps count from 1");
    // Bias corrections in f64: β^t underflows gracefully and 1 − β^t keeps its digits.
    let step = hyper.step as i32;
    let correction1 = (1.0 - f64::from(hyper.beta1).powi(step)) as f32;
    let correction2 = (1.0 - f64::from(hyper.beta2).powi(step)) as f32;
    gpu.dispatch(
        &gpu.kernels.optim.adam,
        &[
            param.len() as u32,
            hyper.learning_rate.to_bits(),
            hyper.beta1.to_bits(),
            hyper.beta2.to_bits(),
            hyper.epsilon.to_bits(),
            correction1.to_bits(),
            correction2.to_bits(),
        ],
        &[
            buffer(param),
            buffer(grad),
            buffer(first_moment),
            buffer(second_moment),
        ],
        gpu.linear_grid(param.len()),
    );
}
