//! Operations on stacked square grids (`shaders/grids.wgsl`): one Haar level with its bands as
//! columns, the 3×3 depthwise stencil and its backward, and the backward of nearest 2×
//! upsampling. Each is one dispatch per level of the [`Grids`] stack, where every grid has the
//! same side.

use super::{Access, GpuBackend, Grids, Kernel, Tensor, buffer};

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/grids.wgsl"));

/// Pixels of a level that one workgroup of the weight-gradient reduction sums: four per
/// invocation, so each f32 running sum is short and the tree does the rest.
const PIXELS_PER_SPLIT: usize = 1024;
/// Most workgroups per channel and level of the weight-gradient reduction (and so partials per
/// level); beyond it each invocation sums more pixels.
const MAX_SPLITS: usize = 256;

pub(super) struct Kernels {
    haar_split: Kernel,
    haar_merge: Kernel,
    depthwise: Kernel,
    depthwise_input_backward: Kernel,
    depthwise_weight_partials: Kernel,
    sum_weight_partials: Kernel,
    upsample_nearest_backward: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        const READ_WRITE: &[(u32, Access)] = &[(1, Access::Read), (3, Access::ReadWrite)];
        const TWO_READ_WRITE: &[(u32, Access)] =
            &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)];
        Kernels {
            haar_split: Kernel::new(
                "haar split",
                SOURCE,
                "haar_split",
                &[
                    (1, Access::Read),
                    (3, Access::ReadWrite),
                    (4, Access::ReadWrite),
                ],
            ),
            haar_merge: Kernel::new("haar merge", SOURCE, "haar_merge", TWO_READ_WRITE),
            depthwise: Kernel::new("depthwise 3×3", SOURCE, "depthwise3x3", TWO_READ_WRITE),
            depthwise_input_backward: Kernel::new(
                "depthwise 3×3 input backward",
                SOURCE,
                "depthwise_input_backward",
                TWO_READ_WRITE,
            ),
            depthwise_weight_partials: Kernel::new(
                "depthwise 3×3 weight partials",
                SOURCE,
                "depthwise_weight_partials",
                TWO_READ_WRITE,
            ),
            sum_weight_partials: Kernel::new(
                "depthwise 3×3 weight partial sum",
                SOURCE,
                "sum_weight_partials",
                READ_WRITE,
            ),
            upsample_nearest_backward: Kernel::new(
                "upsample nearest backward",
                SOURCE,
                "upsample_nearest_backward",
                READ_WRITE,
            ),
        }
    }
}

/// One level of a [`Grids`] stack as the shaders find it: `images` grids of `side`², the
/// level's grid of image i starting at row `i·rows_per_image + first_row`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Level {
    pub(super) index: usize,
    pub(super) images: usize,
    pub(super) side: usize,
    pub(super) rows_per_image: usize,
    pub(super) first_row: usize,
}

impl Level {
    /// Every level of `grids`, coarse to fine.
    pub(super) fn all(grids: Grids) -> impl Iterator<Item = Level> {
        (0..grids.levels).map(move |index| Level {
            index,
            images: grids.count,
            side: grids.side(index),
            rows_per_image: grids.rows_per_image(),
            first_row: grids.level_offset(index),
        })
    }

    /// Pixels of this level over all images.
    pub(super) fn pixels(&self) -> usize {
        self.images * self.side * self.side
    }

    /// The first words of the shaders' `Params`: invocations (or pixels), C, side, rows per
    /// image, the level's first row.
    pub(super) fn params(&self, count: usize, channels: usize) -> [u32; 5] {
        [
            count as u32,
            channels as u32,
            self.side as u32,
            self.rows_per_image as u32,
            self.first_row as u32,
        ]
    }
}

/// Checks the shapes of a Haar split or merge: image laid out as `grids`, low (rows/4)×C and
/// high (rows/4)×3C laid out as `grids.halved()`.
fn check_haar(image: &Tensor, low: &Tensor, high: &Tensor, grids: Grids, operation: &str) {
    let channels = image.cols();
    let half_rows = grids.halved().rows();
    assert_eq!(
        image.rows(),
        grids.rows(),
        "{operation}: image must be laid out as grids"
    );
    assert_eq!(
        low.shape(),
        (half_rows, channels),
        "{operation}: low is (rows/4)×C"
    );
    assert_eq!(
        high.shape(),
        (half_rows, 3 * channels),
        "{operation}: high is (rows/4)×3C"
    );
}

pub(super) fn haar_split(
    gpu: &GpuBackend,
    image: &Tensor,
    grids: Grids,
    low: &mut Tensor,
    high: &mut Tensor,
) {
    check_haar(image, low, high, grids, "haar_split");
    let channels = image.cols();
    // One invocation per (block, channel): the blocks are the pixels of the halved layout.
    for level in Level::all(grids.halved()) {
        let invocations = level.pixels() * channels;
        gpu.dispatch(
            &gpu.kernels.grids.haar_split,
            &level.params(invocations, channels),
            &[buffer(image), buffer(low), buffer(high)],
            gpu.linear_grid(invocations),
        );
    }
}

pub(super) fn haar_merge(
    gpu: &GpuBackend,
    low: &Tensor,
    high: &Tensor,
    grids: Grids,
    image: &mut Tensor,
) {
    check_haar(image, low, high, grids, "haar_merge");
    let channels = image.cols();
    for level in Level::all(grids.halved()) {
        let invocations = level.pixels() * channels;
        gpu.dispatch(
            &gpu.kernels.grids.haar_merge,
            &level.params(invocations, channels),
            &[buffer(low), buffer(high), buffer(image)],
            gpu.linear_grid(invocations),
        );
    }
}

pub(super) fn depthwise3x3(
    gpu: &GpuBackend,
    x: &Tensor,
    grids: Grids,
    weights: &Tensor,
    out: &mut Tensor,
) {
    let channels = x.cols();
    assert_eq!(
        x.rows(),
        grids.rows(),
        "depthwise3x3: x must be laid out as grids"
    );
    assert_eq!(
        weights.shape(),
        (9, channels),
        "depthwise3x3: weights are 9×C"
    );
    assert_eq!(out.shape(), x.shape(), "depthwise3x3: out is shaped as x");
    for level in Level::all(grids) {
        let invocations = level.pixels() * channels;
        gpu.dispatch(
            &gpu.kernels.grids.depthwise,
            &level.params(invocations, channels),
            &[buffer(x), buffer(weights), buffer(out)],
            gpu.linear_grid(invocations),
        );
    }
}

pub(super) fn depthwise3x3_backward(
    gpu: &GpuBackend,
    x: &Tensor,
    d_out: &Tensor,
    grids: Grids,
    weights: &Tensor,
    d_x: &mut Tensor,
    d_weights: &mut Tensor,
) {
    let channels = x.cols();
    assert_eq!(
        x.rows(),
        grids.rows(),
        "depthwise3x3_backward: x must be laid out as grids"
    );
    assert_eq!(d_out.shape(), x.shape(), "depthwise3x3_backward: d_out");
    assert_eq!(d_x.shape(), x.shape(), "depthwise3x3_backward: d_x");
    assert_eq!(
        weights.shape(),
        (9, channels),
        "depthwise3x3_backward: weights are 9×C"
    );
    assert_eq!(
        d_weights.shape(),
        (9, channels),
        "depthwise3x3_backward: d_weights are 9×C"
    );
    assert!(
        channels <= gpu.limits.max_compute_workgroups_per_dimension as usize,
        "depthwise3x3_backward: {channels} channels exceed the dispatch limit"
    );
    let kernels = &gpu.kernels.grids;
    for level in Level::all(grids) {
        let invocations = level.pixels() * channels;
        gpu.dispatch(
            &kernels.depthwise_input_backward,
            &level.params(invocations, channels),
            &[buffer(d_out), buffer(weights), buffer(d_x)],
            gpu.linear_grid(invocations),
        );
    }
    // The weight gradient sums over every pixel: per level, workgroups of (split, channel)
    // leave 9×C partials, which one more pass adds up into d_weights.
    let splits: Vec<usize> = Level::all(grids)
        .map(|level| {
            level
                .pixels()
                .div_ceil(PIXELS_PER_SPLIT)
                .clamp(1, MAX_SPLITS)
        })
        .collect();
    let total: usize = splits.iter().sum();
    let weights_len = 9 * channels;
    let partials = gpu.scratch_buffer(
        "depthwise weight partials",
        (total * weights_len * 4) as u64,
    );
    let mut first_partial = 0;
    for (level, &level_splits) in Level::all(grids).zip(&splits) {
        let [count, channels_word, side, rows_per_image, first_row] =
            level.params(level.pixels(), channels);
        gpu.dispatch(
            &kernels.depthwise_weight_partials,
            &[
                count,
                channels_word,
                side,
                rows_per_image,
                first_row,
                level_splits as u32,
                first_partial as u32,
            ],
            &[buffer(x), buffer(d_out), &partials],
            [level_splits as u32, channels as u32, 1],
        );
        first_partial += level_splits;
    }
    gpu.dispatch(
        &kernels.sum_weight_partials,
        &[weights_len as u32, 0, 0, 0, 0, 0, 0, total as u32],
        &[&partials, buffer(d_weights)],
        gpu.linear_grid(weights_len),
    );
}

pub(super) fn upsample_nearest_backward(
    gpu: &GpuBackend,
    d_up: &Tensor,
    grids: Grids,
    d_image: &mut Tensor,
) {
    let channels = d_image.cols();
    assert_eq!(
        d_image.rows(),
        grids.rows(),
        "upsample_nearest_backward: d_image must be laid out as grids"
    );
    assert_eq!(
        d_up.shape(),
        (grids.doubled().rows(), channels),
        "upsample_nearest_backward: d_up must be laid out as grids.doubled()"
    );
    for level in Level::all(grids) {
        let invocations = level.pixels() * channels;
        gpu.dispatch(
            &gpu.kernels.grids.upsample_nearest_backward,
            &level.params(invocations, channels),
            &[buffer(d_up), buffer(d_image)],
            gpu.linear_grid(invocations),
        );
    }
}
