//! Element-wise operations (`shaders/elementwise.wgsl`).

use super::{Access, GpuBackend, Kernel, Tensor, buffer};

pub(super) const SOURCE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/elementwise.wgsl"
));

pub(super) struct Kernels {
    clip: Kernel,
    axpy: Kernel,
    copy_columns: Kernel,
    mse_grad: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        Kernels {
            clip: Kernel::new("clip", SOURCE, "clip", &[(3, Access::ReadWrite)]),
            axpy: Kernel::new(
                "axpy",
                SOURCE,
                "axpy",
                &[(1, Access::Read), (3, Access::ReadWrite)],
            ),
            copy_columns: Kernel::new(
                "copy columns",
                SOURCE,
                "copy_columns",
                &[(1, Access::Read), (3, Access::ReadWrite)],
            ),
            mse_grad: Kernel::new(
                "mse grad",
                SOURCE,
                "mse_grad",
                &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)],
            ),
        }
    }
}

pub(super) fn clip(gpu: &GpuBackend, x: &mut Tensor, lo: f32, hi: f32) {
    gpu.dispatch(
        &gpu.kernels.elementwise.clip,
        &[x.len() as u32, lo.to_bits(), hi.to_bits()],
        &[buffer(x)],
        gpu.linear_grid(x.len()),
    );
}

pub(super) fn axpy(gpu: &GpuBackend, alpha: f32, x: &Tensor, y: &mut Tensor) {
    assert_eq!(x.shape(), y.shape(), "axpy: shapes differ");
    gpu.dispatch(
        &gpu.kernels.elementwise.axpy,
        &[y.len() as u32, alpha.to_bits()],
        &[buffer(x), buffer(y)],
        gpu.linear_grid(y.len()),
    );
}

pub(super) fn concat_cols(gpu: &GpuBackend, parts: &[&Tensor], out: &mut Tensor) {
    let (rows, columns) = out.shape();
    let total: usize = parts.iter().map(|part| part.cols()).sum();
    assert_eq!(
        total, columns,
        "concat_cols: part widths must add up to out's"
    );
    let mut offset = 0;
    for part in parts {
        assert_eq!(
            part.rows(),
            rows,
            "concat_cols: every part must have out's rows"
        );
        gpu.dispatch(
            &gpu.kernels.elementwise.copy_columns,
            &[
                part.len() as u32,
                0,
                0,
                part.cols() as u32,
                columns as u32,
                offset as u32,
            ],
            &[buffer(part), buffer(out)],
            gpu.linear_grid(part.len()),
        );
        offset += part.cols();
    }
}

pub(super) fn mse_grad(
    gpu: &GpuBackend,
    pred: &Tensor,
    target: &Tensor,
    scale: f32,
    out: &mut Tensor,
) {
    assert_eq!(pred.shape(), target.shape(), "mse_grad: shapes differ");
    assert_eq!(pred.shape(), out.shape(), "mse_grad: out shape");
    gpu.dispatch(
        &gpu.kernels.elementwise.mse_grad,
        &[out.len() as u32, (2.0 * scale).to_bits()],
        &[buffer(pred), buffer(target), buffer(out)],
        gpu.linear_grid(out.len()),
    );
}
