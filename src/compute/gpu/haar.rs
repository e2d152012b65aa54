//! One level of the orthonormal 2-D Haar transform (`shaders/haar.wgsl`).

use super::{Access, GpuBackend, Kernel, Tensor, buffer};

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/haar.wgsl"));

pub(super) struct Kernels {
    forward: Kernel,
    inverse: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        const BINDINGS: &[(u32, Access)] = &[(1, Access::Read), (2, Access::ReadWrite)];
        Kernels {
            forward: Kernel::new("haar forward", SOURCE, "forward", BINDINGS),
            inverse: Kernel::new("haar inverse", SOURCE, "inverse", BINDINGS),
        }
    }
}

fn check(image: &Tensor, bands: &Tensor, height: usize, width: usize, operation: &str) {
    assert!(
        height.is_multiple_of(2) && width.is_multiple_of(2),
        "{operation}: {height}×{width} is not even in both directions"
    );
    assert_eq!(
        image.rows(),
        height * width,
        "{operation}: image must be (height·width)×C"
    );
    assert_eq!(
        bands.shape(),
        image.shape(),
        "{operation}: bands must be (4·h·w)×C"
    );
}

pub(super) fn forward(
    gpu: &GpuBackend,
    image: &Tensor,
    height: usize,
    width: usize,
    bands: &mut Tensor,
) {
    check(image, bands, height, width, "haar_forward");
    let channels = image.cols();
    gpu.dispatch(
        &gpu.kernels.haar.forward,
        &[(height / 2) as u32, (width / 2) as u32, channels as u32],
        &[buffer(image), buffer(bands)],
        gpu.linear_grid(height / 2 * (width / 2) * channels),
    );
}

pub(super) fn inverse(
    gpu: &GpuBackend,
    bands: &Tensor,
    height: usize,
    width: usize,
    image: &mut Tensor,
) {
    check(image, bands, height, width, "haar_inverse");
    let channels = image.cols();
    gpu.dispatch(
        &gpu.kernels.haar.inverse,
        &[(height / 2) as u32, (width / 2) as u32, channels as u32],
        &[buffer(bands), buffer(image)],
        gpu.linear_grid(height / 2 * (width / 2) * channels),
    );
}
