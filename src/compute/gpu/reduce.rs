//! Whole-tensor reductions (`shaders/reduce.wgsl`): float-float partial sums per workgroup on
//! the device, the final few hundred added on the host in f64.

use super::reductions::SumKernel;
use super::scratch::Scratch;
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

/// Records a partial-sum kernel over `count` elements (at least one) into pooled partials.
fn record<'a>(
    gpu: &'a GpuBackend,
    kernel: &Kernel,
    count: usize,
    operands: &[&wgpu::Buffer],
) -> (Scratch<'a>, usize) {
    let groups = count.div_ceil(LINEAR_WORKGROUP).min(MAX_PARTIALS);
    let partials = gpu.pooled_scratch("reduction partials", (groups * 8) as u64);
    let mut buffers = operands.to_vec();
    buffers.push(&partials);
    gpu.dispatch(
        kernel,
        &[count as u32, OPAQUE_ZERO],
        &buffers,
        [groups as u32, 1, 1],
    );
    (partials, groups)
}

/// The recorded partials read back with one wait, each set added in f64.
fn totals(gpu: &GpuBackend, recorded: &[(Scratch<'_>, usize)]) -> Vec<f64> {
    let sources: Vec<(&wgpu::Buffer, usize)> = recorded
        .iter()
        .map(|(partials, groups)| (&**partials, *groups))
        .collect();
    gpu.read_back_many::<[f32; 2]>(&sources)
        .iter()
        .map(|pairs| {
            pairs
                .iter()
                .map(|pair| f64::from(pair[0]) + f64::from(pair[1]))
                .sum()
        })
        .collect()
}

pub(super) fn sum(gpu: &GpuBackend, a: &Tensor) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let recorded = record(
        gpu,
        gpu.kernels.reduce.sum.pick(gpu.subgroups),
        a.len(),
        &[buffer(a)],
    );
    totals(gpu, &[recorded])[0]
}

/// The mean squared difference of each pair, read back together.
pub(super) fn mses(gpu: &GpuBackend, pairs: &[(&Tensor, &Tensor)]) -> Vec<f64> {
    let recorded: Vec<_> = pairs
        .iter()
        .filter(|(a, _)| !a.is_empty())
        .map(|&(a, b)| {
            assert_eq!(a.shape(), b.shape(), "mse: shapes differ");
            record(
                gpu,
                gpu.kernels.reduce.mse.pick(gpu.subgroups),
                a.len(),
                &[buffer(a), buffer(b)],
            )
        })
        .collect();
    let mut totals = totals(gpu, &recorded).into_iter();
    pairs
        .iter()
        .map(|(a, _)| {
            if a.is_empty() {
                0.0
            } else {
                totals.next().expect("one total per pair") / a.len() as f64
            }
        })
        .collect()
}
