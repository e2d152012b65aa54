//! Whole-tensor reductions (`shaders/reduce.wgsl`): float-float partial sums per workgroup on
//! the device, the final few hundred added on the host in f64.

use super::reductions::SumKernel;
use super::{Access, GpuBackend, Kernel, LINEAR_WORKGROUP, OPAQUE_ZERO, Tensor, buffer};

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/reduce.wgsl"));

/// Most workgroups (and partials read back) of one reduction.
const MAX_PARTIALS: usize = 1024;

pub(super) struct Kernels {
    sum: SumKernel,
    mse: SumKernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        Kernels {
            sum: SumKernel::new(|| {
                Kernel::new(
                    "sum partials",
                    SOURCE,
                    "sum_partials",
                    &[(1, Access::Read), (3, Access::ReadWrite)],
                )
            }),
            mse: SumKernel::new(|| {
                Kernel::new(
                    "mse partials",
                    SOURCE,
                    "mse_partials",
                    &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)],
                )
            }),
        }
    }
}

/// Runs a partial-sum kernel over `count` elements and adds the partials in f64.
fn reduce(gpu: &GpuBackend, kernel: &Kernel, count: usize, operands: &[&wgpu::Buffer]) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let groups = count.div_ceil(LINEAR_WORKGROUP).min(MAX_PARTIALS);
    let partials = gpu.scratch_buffer("reduction partials", (groups * 8) as u64);
    let mut buffers = operands.to_vec();
    buffers.push(&partials);
    gpu.dispatch(
        kernel,
        &[count as u32, OPAQUE_ZERO],
        &buffers,
        [groups as u32, 1, 1],
    );
    gpu.read_back::<[f32; 2]>(&partials, groups)
        .iter()
        .map(|pair| f64::from(pair[0]) + f64::from(pair[1]))
        .sum()
}

pub(super) fn sum(gpu: &GpuBackend, a: &Tensor) -> f64 {
    reduce(
        gpu,
        gpu.kernels.reduce.sum.pick(gpu.subgroups),
        a.len(),
        &[buffer(a)],
    )
}

pub(super) fn mse(gpu: &GpuBackend, a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape(), "mse: shapes differ");
    if a.is_empty() {
        return 0.0;
    }
    reduce(
        gpu,
        gpu.kernels.reduce.mse.pick(gpu.subgroups),
        a.len(),
        &[buffer(a), buffer(b)],
    ) / a.len() as f64
}
