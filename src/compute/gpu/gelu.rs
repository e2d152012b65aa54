//! The exact (erf) GELU and its derivative (`shaders/gelu.wgsl`).

use super::{Access, GpuBackend, Kernel, Tensor, buffer};

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/gelu.wgsl"));

pub(super) struct Kernels {
    residual: Kernel,
    backward: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        const BINDINGS: &[(u32, Access)] =
            &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)];
        Kernels {
            residual: Kernel::new("gelu residual", SOURCE, "gelu_residual", BINDINGS),
            backward: Kernel::new("gelu backward", SOURCE, "gelu_backward", BINDINGS),
        }
    }
}

pub(super) fn residual(gpu: &GpuBackend, pre: &Tensor, residual: &Tensor, out: &mut Tensor) {
    assert_eq!(
        pre.shape(),
        residual.shape(),
        "gelu_residual: shapes differ"
    );
    assert_eq!(out.shape(), pre.shape(), "gelu_residual: out shape");
    gpu.dispatch(
        &gpu.kernels.gelu.residual,
        &[out.len() as u32],
        &[buffer(pre), buffer(residual), buffer(out)],
        gpu.linear_grid(out.len()),
    );
}

pub(super) fn backward(gpu: &GpuBackend, pre: &Tensor, d_out: &Tensor, d_pre: &mut Tensor) {
    assert_eq!(pre.shape(), d_out.shape(), "gelu_backward: shapes differ");
    assert_eq!(d_pre.shape(), pre.shape(), "gelu_backward: d_pre shape");
    gpu.dispatch(
        &gpu.kernels.gelu.backward,
        &[d_pre.len() as u32],
        &[buffer(pre), buffer(d_out), buffer(d_pre)],
        gpu.linear_grid(d_pre.len()),
    );
}
