//! Per-level losses on stacked square grids (`shaders/loss.wgsl`): the gradient is written on
//! the device, and the per-level sums come back as float-float partials per workgroup (one
//! dispatch per level), read back once per call and added on the host in f64.

use super::grids::Level;
use super::reductions::SumKernel;
use super::scratch::Scratch;
use super::{
    Access, GpuBackend, Grids, Kernel, LINEAR_WORKGROUP, LevelSums, OPAQUE_ZERO, Tensor, buffer,
};
use crate::compute::check_level_loss;

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/loss.wgsl"));

/// Most workgroups (and partials read back) per level.
const MAX_PARTIALS_PER_LEVEL: usize = 256;

pub(super) struct Kernels {
    l1_grad: SumKernel,
    image_gradient_l1_grad: SumKernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        Kernels {
            l1_grad: SumKernel::new(|| {
                Kernel::new(
                    "l1 grad",
                    SOURCE,
                    "l1_grad",
                    &[
                        (1, Access::Read),
                        (2, Access::Read),
                        (3, Access::ReadWrite),
                        (4, Access::ReadWrite),
                    ],
                )
            }),
            image_gradient_l1_grad: SumKernel::new(|| {
                Kernel::new(
                    "image gradient l1 grad",
                    SOURCE,
                    "image_gradient_l1_grad",
                    &[
                        (1, Access::Read),
                        (2, Access::Read),
                        (3, Access::ReadWrite),
                        (5, Access::ReadWrite),
                    ],
                )
            }),
        }
    }
}

/// Dispatches `kernel` once per level of `grids` over its elements and returns, per level,
/// the range of the partials its workgroups wrote (in a buffer of `partial_bytes` each).
fn per_level<'a>(
    gpu: &'a GpuBackend,
    kernel: &Kernel,
    operands: [&wgpu::Buffer; 3],
    grids: Grids,
    channels: usize,
    level_scales: &[f32],
    partial_bytes: usize,
) -> (Scratch<'a>, Vec<std::ops::Range<usize>>) {
    let groups: Vec<usize> = Level::all(grids)
        .map(|level| {
            (level.pixels() * channels)
                .div_ceil(LINEAR_WORKGROUP)
                .min(MAX_PARTIALS_PER_LEVEL)
        })
        .collect();
    let total: usize = groups.iter().sum();
    let partials = gpu.pooled_scratch("loss partials", (total * partial_bytes) as u64);
    let mut ranges = Vec::with_capacity(grids.levels);
    let mut first = 0;
    for (level, &level_groups) in Level::all(grids).zip(&groups) {
        let [count, channels_word, side, rows_per_image, first_row] =
            level.params(level.pixels() * channels, channels);
        let [pred, target, grad] = operands;
        gpu.dispatch(
            kernel,
            &[
                count,
                channels_word,
                side,
                rows_per_image,
                first_row,
                level_scales[level.index].to_bits(),
                first as u32,
                OPAQUE_ZERO,
            ],
            &[pred, target, grad, &partials],
            [level_groups as u32, 1, 1],
        );
        ranges.push(first..first + level_groups);
        first += level_groups;
    }
    (partials, ranges)
}

pub(super) fn l1_grad(
    gpu: &GpuBackend,
    pred: &Tensor,
    target: &Tensor,
    grids: Grids,
    level_scales: &[f32],
    grad: &mut Tensor,
) -> Vec<LevelSums> {
    check_level_loss("l1_grad", pred, target, grids, level_scales, grad);
    let (partials, ranges) = per_level(
        gpu,
        gpu.kernels.loss.l1_grad.pick(gpu.subgroups),
        [buffer(pred), buffer(target), buffer(grad)],
        grids,
        pred.cols(),
        level_scales,
        16,
    );
    let total = ranges.last().map_or(0, |range| range.end);
    let values = gpu.read_back::<[f32; 4]>(&partials, total);
    ranges
        .into_iter()
        .map(|range| {
            values[range]
                .iter()
                .fold(LevelSums::default(), |sums, partial| LevelSums {
                    absolute: sums.absolute + f64::from(partial[0]) + f64::from(partial[1]),
                    squared: sums.squared + f64::from(partial[2]) + f64::from(partial[3]),
                })
        })
        .collect()
}

pub(super) fn image_gradient_l1_grad(
    gpu: &GpuBackend,
    pred: &Tensor,
    target: &Tensor,
    grids: Grids,
    level_scales: &[f32],
    grad: &mut Tensor,
) -> Vec<f64> {
    check_level_loss(
        "image_gradient_l1_grad",
        pred,
        target,
        grids,
        level_scales,
        grad,
    );
    let (partials, ranges) = per_level(
        gpu,
        gpu.kernels.loss.image_gradient_l1_grad.pick(gpu.subgroups),
        [buffer(pred), buffer(target), buffer(grad)],
        grids,
        pred.cols(),
        level_scales,
        8,
    );
    let total = ranges.last().map_or(0, |range| range.end);
    let values = gpu.read_back::<[f32; 2]>(&partials, total);
    ranges
        .into_iter()
        .map(|range| {
            values[range]
                .iter()
                .map(|partial| f64::from(partial[0]) + f64::from(partial[1]))
                .sum()
        })
        .collect()
}
