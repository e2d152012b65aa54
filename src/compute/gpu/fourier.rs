//! Fourier feature encoding (`shaders/fourier.wgsl`).

use super::{Access, GpuBackend, Kernel, Tensor, buffer};

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/fourier.wgsl"));

pub(super) struct Kernels {
    encode: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        Kernels {
            encode: Kernel::new(
                "fourier encode",
                SOURCE,
                "encode",
                &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)],
            ),
        }
    }
}

pub(super) fn encode(gpu: &GpuBackend, coords: &Tensor, frequencies: &Tensor, out: &mut Tensor) {
    let rows = coords.rows();
    let m = frequencies.cols();
    assert_eq!(coords.cols(), 2, "fourier_encode: coords must be N×2");
    assert_eq!(
        frequencies.rows(),
        2,
        "fourier_encode: frequencies must be 2×m"
    );
    assert_eq!(
        out.shape(),
        (rows, 2 * m),
        "fourier_encode: out must be N×2m"
    );
    gpu.dispatch(
        &gpu.kernels.fourier.encode,
        &[rows as u32, m as u32],
        &[buffer(coords), buffer(frequencies), buffer(out)],
        gpu.linear_grid(rows * m),
    );
}
