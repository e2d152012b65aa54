//! Dense layers (`shaders/linear.wgsl`): forward with fused bias and activation, and the
//! backward products with dz formed on the fly.

use super::reductions::{SumCore, SumKernel};
use super::tiled::{ProductTile, Tile, TileShape, TiledKernel};
use super::{Access, Activation, GpuBackend, Kernel, OPAQUE_ZERO, Tensor, buffer};

pub(super) const SOURCE: &str = concat!(
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/tanh.wgsl")),
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/linear.wgsl"))
);

/// The products linear.wgsl defines on the tiled core.
pub(super) const PRODUCTS: &[&str] = &["forward", "weight_gradient", "input_gradient"];
/// Workgroups the weight-gradient product aims for: its output (inputs×outputs) has few tiles
/// while its sum runs over every row, so the rows are split until the device is busy.
const WEIGHT_GRADIENT_TARGET_WORKGROUPS: usize = 256;
/// Fewest rows one split of the weight-gradient sum covers.
const WEIGHT_GRADIENT_MIN_SPLIT_ROWS: usize = 1024;

pub(super) struct Kernels {
    forward: TiledKernel,
    backward_weights: TiledKernel,
    backward_input: TiledKernel,
    backward_bias: SumKernel,
    sum_splits: Kernel,
}

impl Kernels {
    /// The kernels, with the products also on `cooperative` where the adapter has that tile.
    pub(super) fn new(cooperative: Option<Tile>) -> Self {
        Kernels {
            forward: TiledKernel::new(
                "dense forward",
                SOURCE,
                PRODUCTS,
                "forward",
                &[
                    (1, Access::Read),
                    (2, Access::Read),
                    (3, Access::Read),
                    (4, Access::ReadWrite),
                ],
                cooperative,
            )
            .with_sum_core(SumCore::Workgroup),
            backward_weights: TiledKernel::new(
                "dense backward weights",
                SOURCE,
                PRODUCTS,
                "backward_weights",
                &[
                    (1, Access::Read),
                    (5, Access::Read),
                    (6, Access::Read),
                    (7, Access::ReadWrite),
                ],
                cooperative,
            )
            .with_sum_core(SumCore::Workgroup),
            backward_input: TiledKernel::new(
                "dense backward input",
                SOURCE,
                PRODUCTS,
                "backward_input",
                &[
                    (2, Access::Read),
                    (5, Access::Read),
                    (6, Access::Read),
                    (8, Access::ReadWrite),
                ],
                cooperative,
            )
            .with_sum_core(SumCore::Workgroup),
            backward_bias: SumKernel::new(|| {
                Kernel::tiled(
                    "dense backward bias",
                    SOURCE,
                    PRODUCTS,
                    "backward_bias",
                    &[(5, Access::Read), (6, Access::Read), (9, Access::ReadWrite)],
                    // Not a product: any shape's module holds it.
                    TileShape::Small.tile(),
                )
            }),
            sum_splits: Kernel::tiled(
                "dense weight gradient split sum",
                SOURCE,
                PRODUCTS,
                "sum_splits",
                &[(10, Access::Read), (11, Access::ReadWrite)],
                // Not a product: any shape's module holds it.
                TileShape::Small.tile(),
            )
            .with_sum_core(SumCore::Workgroup),
        }
    }
}

pub(super) fn forward(
    gpu: &GpuBackend,
    x: &Tensor,
    weights: &Tensor,
    bias: &Tensor,
    activation: Activation,
    out: &mut Tensor,
) {
    let (rows, inputs) = x.shape();
    let outputs = weights.cols();
    assert_eq!(weights.rows(), inputs, "dense_forward: W must be in×out");
    assert_eq!(
        bias.shape(),
        (1, outputs),
        "dense_forward: bias must be 1×out"
    );
    assert_eq!(
        out.shape(),
        (rows, outputs),
        "dense_forward: out must be N×out"
    );
    let tile = gpu.dense_tile(outputs);
    gpu.dispatch(
        gpu.kernels.linear.forward.on(tile),
        &[
            rows as u32,
            inputs as u32,
            outputs as u32,
            activation.index(),
            0,
            1,
            OPAQUE_ZERO,
            1.0f32.to_bits(),
        ],
        &[buffer(x), buffer(weights), buffer(bias), buffer(out)],
        gpu.tile_grid(outputs.div_ceil(tile.columns()), rows.div_ceil(tile.rows())),
    );
}

pub(super) fn backward(
    gpu: &GpuBackend,
    x: &Tensor,
    weights: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    activation: Activation,
    dx: Option<&mut Tensor>,
    d_weights: &mut Tensor,
    d_bias: &mut Tensor,
) {
    let (rows, inputs) = x.shape();
    let outputs = weights.cols();
    assert_eq!(weights.rows(), inputs, "dense_backward: W must be in×out");
    assert_eq!(
        y.shape(),
        (rows, outputs),
        "dense_backward: y must be N×out"
    );
    assert_eq!(
        dy.shape(),
        (rows, outputs),
        "dense_backward: dy must be N×out"
    );
    assert_eq!(
        d_weights.shape(),
        (inputs, outputs),
        "dense_backward: dW must be in×out"
    );
    assert_eq!(
        d_bias.shape(),
        (1, outputs),
        "dense_backward: db must be 1×out"
    );
    let weight_tile = gpu.dense_tile(outputs);
    let input_tile = gpu.dense_tile(inputs);
    let tiles = inputs.div_ceil(weight_tile.rows()) * outputs.div_ceil(weight_tile.columns());
    let splits = WEIGHT_GRADIENT_TARGET_WORKGROUPS
        .div_ceil(tiles.max(1))
        .min(rows.div_ceil(WEIGHT_GRADIENT_MIN_SPLIT_ROWS))
        .max(1);
    let rows_per_split = rows.div_ceil(splits).next_multiple_of(16).max(16);
    let splits = rows.div_ceil(rows_per_split).max(1);
    let params = [
        rows as u32,
        inputs as u32,
        outputs as u32,
        activation.index(),
        rows_per_split as u32,
        splits as u32,
        OPAQUE_ZERO,
        gradient_scale(rows, [weight_tile, input_tile]).to_bits(),
    ];
    let kernels = &gpu.kernels.linear;
    let row_tiles = inputs.div_ceil(weight_tile.rows());
    assert!(
        row_tiles <= gpu.limits.max_compute_workgroups_per_dimension as usize,
        "dense_backward: {inputs} inputs exceed the dispatch limit"
    );
    let grid = [
        outputs.div_ceil(weight_tile.columns()) as u32,
        row_tiles as u32,
        splits as u32,
    ];
    if splits == 1 {
        gpu.dispatch(
            kernels.backward_weights.on(weight_tile),
            &params,
            &[buffer(x), buffer(y), buffer(dy), buffer(d_weights)],
            grid,
        );
    } else {
        let partials = gpu.pooled_scratch(
            "weight gradient partials",
            (splits * inputs * outputs * 4) as u64,
        );
        gpu.dispatch(
            kernels.backward_weights.on(weight_tile),
            &params,
            &[buffer(x), buffer(y), buffer(dy), &partials],
            grid,
        );
        gpu.dispatch(
            &kernels.sum_splits,
            &params,
            &[&partials, buffer(d_weights)],
            gpu.linear_grid(inputs * outputs),
        );
    }
    gpu.dispatch(
        kernels.backward_bias.pick(gpu.subgroups),
        &params,
        &[buffer(y), buffer(dy), buffer(d_bias)],
        [outputs as u32, 1, 1],
    );
    if let Some(dx) = dx {
        assert_eq!(
            dx.shape(),
            (rows, inputs),
            "dense_backward: dx must be N×in"
        );
        gpu.dispatch(
            kernels.backward_input.on(input_tile),
            &params,
            &[buffer(weights), buffer(y), buffer(dy), buffer(dx)],
            gpu.tile_grid(
                inputs.div_ceil(input_tile.columns()),
                rows.div_ceil(input_tile.rows()),
            ),
        );
    }
}

/// The `gradient_scale` of linear.wgsl for a backward pass over `rows` rows: the power of two
/// at or above `rows` when a product is cooperative (the losses are means, so dz is of order
/// 1/rows), else 1.
fn gradient_scale(rows: usize, tiles: [ProductTile; 2]) -> f32 {
    if tiles
        .iter()
        .any(|tile| matches!(tile, ProductTile::Cooperative(_)))
    {
        rows.max(1).next_power_of_two() as f32
    } else {
        1.0
    }
}
