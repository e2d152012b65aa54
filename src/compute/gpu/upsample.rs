//! 2× upsampling (`shaders/upsample.wgsl`).

use super::{Access, GpuBackend, Kernel, Tensor, Upsample, buffer};

pub(super) const SOURCE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/upsample.wgsl"
));

pub(super) struct Kernels {
    nearest: Kernel,
    bilinear: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        const BINDINGS: &[(u32, Access)] = &[(1, Access::Read), (2, Access::ReadWrite)];
        Kernels {
            nearest: Kernel::new("upsample nearest", SOURCE, "nearest", BINDINGS),
            bilinear: Kernel::new("upsample bilinear", SOURCE, "bilinear", BINDINGS),
        }
    }
}

pub(super) fn upsample2x(
    gpu: &GpuBackend,
    image: &Tensor,
    height: usize,
    width: usize,
    mode: Upsample,
    out: &mut Tensor,
) {
    let channels = image.cols();
    assert_eq!(
        image.rows(),
        height * width,
        "upsample2x: image must be (height·width)×C"
    );
    assert_eq!(
        out.shape(),
        (4 * height * width, channels),
        "upsample2x: out must be (2height·2width)×C"
    );
    let kernel = match mode {
        Upsample::Nearest => &gpu.kernels.upsample.nearest,
        Upsample::Bilinear => &gpu.kernels.upsample.bilinear,
    };
    gpu.dispatch(
        kernel,
        &[height as u32, width as u32, channels as u32],
        &[buffer(image), buffer(out)],
        gpu.linear_grid(out.len()),
    );
}
