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
    residual_clip: Kernel,
    clip_backward: Kernel,
    add_diagonal_blocks: Kernel,
    sum_diagonal_blocks: Kernel,
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
            residual_clip: Kernel::new(
                "residual clip",
                SOURCE,
                "residual_clip",
                &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)],
            ),
            clip_backward: Kernel::new(
                "clip backward",
                SOURCE,
                "clip_backward",
                &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)],
            ),
            add_diagonal_blocks: Kernel::new(
                "add diagonal blocks",
                SOURCE,
                "add_diagonal_blocks",
                &[(1, Access::Read), (3, Access::ReadWrite)],
            ),
            sum_diagonal_blocks: Kernel::new(
                "sum diagonal blocks",
                SOURCE,
                "sum_diagonal_blocks",
                &[(1, Access::Read), (3, Access::ReadWrite)],
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

pub(super) fn residual_clip(gpu: &GpuBackend, base: &Tensor, delta: &Tensor, out: &mut Tensor) {
    assert_eq!(base.shape(), delta.shape(), "residual_clip: shapes differ");
    assert_eq!(out.shape(), base.shape(), "residual_clip: out shape");
    gpu.dispatch(
        &gpu.kernels.elementwise.residual_clip,
        &[out.len() as u32],
        &[buffer(base), buffer(delta), buffer(out)],
        gpu.linear_grid(out.len()),
    );
}

pub(super) fn clip_backward(gpu: &GpuBackend, base: &Tensor, delta: &Tensor, grad: &mut Tensor) {
    assert_eq!(base.shape(), delta.shape(), "clip_backward: shapes differ");
    assert_eq!(grad.shape(), base.shape(), "clip_backward: grad shape");
    gpu.dispatch(
        &gpu.kernels.elementwise.clip_backward,
        &[grad.len() as u32],
        &[buffer(base), buffer(delta), buffer(grad)],
        gpu.linear_grid(grad.len()),
    );
}

/// The side C of the diagonal blocks and the side kC of the matrix, checked.
fn diagonal_blocks(block: &Tensor, matrix: &Tensor, operation: &str) -> (usize, usize) {
    let c = block.rows();
    assert_eq!(block.cols(), c, "{operation}: the block is square");
    let n = matrix.rows();
    assert!(
        matrix.cols() == n && c > 0 && n.is_multiple_of(c),
        "{operation}: the matrix is kC×kC"
    );
    (c, n)
}

pub(super) fn add_diagonal_blocks(gpu: &GpuBackend, block: &Tensor, out: &mut Tensor) {
    let (c, n) = diagonal_blocks(block, out, "add_diagonal_blocks");
    let count = n / c * c * c;
    gpu.dispatch(
        &gpu.kernels.elementwise.add_diagonal_blocks,
        &[count as u32, 0, 0, c as u32, n as u32],
        &[buffer(block), buffer(out)],
        gpu.linear_grid(count),
    );
}

pub(super) fn sum_diagonal_blocks(gpu: &GpuBackend, matrix: &Tensor, out: &mut Tensor) {
    let (c, n) = diagonal_blocks(out, matrix, "sum_diagonal_blocks");
    gpu.dispatch(
        &gpu.kernels.elementwise.sum_diagonal_blocks,
        &[(c * c) as u32, 0, 0, n as u32, c as u32],
        &[buffer(matrix), buffer(out)],
        gpu.linear_grid(c * c),
    );
}
