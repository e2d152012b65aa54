//! Structural similarity and its gradient on stacked square grids (`shaders/ssim.wgsl`): four
//! passes per level (row blur of the moments, SSIM and its partials, row blur of the partials,
//! column blur into the gradient); the per-level SSIM sums come back as float-float partials
//! per workgroup, read back once per call and added on the host in f64.

use super::grids::Level;
use super::reductions::{SumCore, SumKernel};
use super::{Access, GpuBackend, Grids, Kernel, LINEAR_WORKGROUP, OPAQUE_ZERO, Tensor, buffer};
use crate::compute::check_level_loss;

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/ssim.wgsl"));

/// Most workgroups (and partials read back) per level of the SSIM pass.
const MAX_PARTIALS_PER_LEVEL: usize = 256;
/// Values per element of the scratch buffers: five blurred moments, then three partials.
const MOMENTS: usize = 5;
const PARTIALS: usize = 3;

pub(super) struct Kernels {
    moment_rows: Kernel,
    map: SumKernel,
    adjoint_rows: Kernel,
    grad: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        Kernels {
            moment_rows: Kernel::new(
                "ssim moment rows",
                SOURCE,
                "ssim_moment_rows",
                &[(1, Access::Read), (2, Access::Read), (4, Access::ReadWrite)],
            )
            .with_sum_core(SumCore::Workgroup),
            map: SumKernel::new(|| {
                Kernel::new(
                    "ssim map",
                    SOURCE,
                    "ssim_map",
                    &[
                        (4, Access::ReadWrite),
                        (5, Access::ReadWrite),
                        (6, Access::ReadWrite),
                    ],
                )
            }),
            adjoint_rows: Kernel::new(
                "ssim adjoint rows",
                SOURCE,
                "ssim_adjoint_rows",
                &[(4, Access::ReadWrite), (5, Access::ReadWrite)],
            )
            .with_sum_core(SumCore::Workgroup),
            grad: Kernel::new(
                "ssim grad",
                SOURCE,
                "ssim_grad",
                &[
                    (1, Access::Read),
                    (2, Access::Read),
                    (3, Access::ReadWrite),
                    (4, Access::ReadWrite),
                ],
            )
            .with_sum_core(SumCore::Workgroup),
        }
    }
}

pub(super) fn ssim_grad(
    gpu: &GpuBackend,
    pred: &Tensor,
    target: &Tensor,
    grids: Grids,
    level_scales: &[f32],
    grad: &mut Tensor,
) -> Vec<f64> {
    let channels = pred.cols();
    check_level_loss("ssim_grad", pred, target, grids, level_scales, grad);
    let elements = grids.rows() * channels;
    let row_blurred = gpu.scratch_buffer("ssim row blurred", (elements * MOMENTS * 4) as u64);
    let partials = gpu.scratch_buffer("ssim partials", (elements * PARTIALS * 4) as u64);
    let groups: Vec<usize> = Level::all(grids)
        .map(|level| {
            (level.pixels() * channels)
                .div_ceil(LINEAR_WORKGROUP)
                .min(MAX_PARTIALS_PER_LEVEL)
        })
        .collect();
    let total_groups: usize = groups.iter().sum();
    let ssim_partials = gpu.scratch_buffer("ssim sums", (total_groups * 8) as u64);
    let mut ranges = Vec::with_capacity(grids.levels);
    let mut first = 0;
    let (pred, target) = (buffer(pred), buffer(target));
    for (level, &level_groups) in Level::all(grids).zip(&groups) {
        let count = level.pixels() * channels;
        let [count_word, channels_word, side, rows_per_image, first_row] =
            level.params(count, channels);
        let d_ssim = -level_scales[level.index] / (level.side * level.side * channels) as f32;
        let params = [
            count_word,
            channels_word,
            side,
            rows_per_image,
            first_row,
            d_ssim.to_bits(),
            first as u32,
            OPAQUE_ZERO,
        ];
        let kernels = &gpu.kernels.ssim;
        let grid = gpu.linear_grid(count);
        gpu.dispatch(
            &kernels.moment_rows,
            &params,
            &[pred, target, &row_blurred],
            grid,
        );
        gpu.dispatch(
            kernels.map.pick(gpu.subgroups),
            &params,
            &[&row_blurred, &partials, &ssim_partials],
            [level_groups as u32, 1, 1],
        );
        gpu.dispatch(
            &kernels.adjoint_rows,
            &params,
            &[&row_blurred, &partials],
            grid,
        );
        gpu.dispatch(
            &kernels.grad,
            &params,
            &[pred, target, buffer(grad), &row_blurred],
            grid,
        );
        ranges.push((
            first..first + level_groups,
            level.side * level.side * channels,
        ));
        first += level_groups;
    }
    let values = gpu.read_back::<[f32; 2]>(&ssim_partials, total_groups);
    // Every grid of a level has the same size, so the sum of their means is the level's sum
    // over its elements divided by one grid's element count.
    ranges
        .into_iter()
        .map(|(range, grid_elements)| {
            values[range]
                .iter()
                .map(|partial| f64::from(partial[0]) + f64::from(partial[1]))
                .sum::<f64>()
                / grid_elements as f64
        })
        .collect()
}
