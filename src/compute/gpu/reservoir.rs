//! The fused reservoir update (`shaders/reservoir.wgsl`).

use super::tiled::TiledKernel;
use super::{Access, GpuBackend, Tensor, buffer};

pub(super) const SOURCE: &str = concat!(
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/tanh.wgsl")),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shaders/reservoir.wgsl"
    ))
);

/// The product reservoir.wgsl defines on the tiled core.
pub(super) const PRODUCTS: &[&str] = &["step"];

pub(super) struct Kernels {
    step: TiledKernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        Kernels {
            step: TiledKernel::new(
                "reservoir step",
                SOURCE,
                PRODUCTS,
                "step",
                &[
                    (1, Access::Read),
                    (2, Access::Read),
                    (3, Access::Read),
                    (4, Access::Read),
                    (5, Access::Read),
                    (6, Access::ReadWrite),
                ],
                // The states feed the f64-accurate ridge fit: f32 always.
                None,
            ),
        }
    }
}

pub(super) fn step(
    gpu: &GpuBackend,
    input: &Tensor,
    input_weights: &Tensor,
    state: Option<&Tensor>,
    recurrent_weights: &Tensor,
    bias: &Tensor,
    out: &mut Tensor,
) {
    let (rows, inputs) = input.shape();
    let hidden = out.cols();
    assert_eq!(
        out.rows(),
        rows,
        "reservoir_step: out must have the input's rows"
    );
    assert_eq!(
        input_weights.shape(),
        (inputs, hidden),
        "reservoir_step: W_in shape"
    );
    assert_eq!(
        recurrent_weights.shape(),
        (hidden, hidden),
        "reservoir_step: W_hh shape"
    );
    assert_eq!(
        bias.shape(),
        (1, hidden),
        "reservoir_step: bias must be 1×hidden"
    );
    if let Some(state) = state {
        assert_eq!(state.shape(), (rows, hidden), "reservoir_step: state shape");
    }
    // Without a state the input stands in for the unused binding (it is read-only too).
    let state_buffer = buffer(state.unwrap_or(input));
    let shape = gpu.tile_shape(hidden);
    gpu.dispatch(
        gpu.kernels.reservoir.step.shaped(shape),
        &[
            rows as u32,
            inputs as u32,
            hidden as u32,
            u32::from(state.is_some()),
        ],
        &[
            buffer(input),
            buffer(input_weights),
            state_buffer,
            buffer(recurrent_weights),
            buffer(bias),
            buffer(out),
        ],
        gpu.tile_grid(
            hidden.div_ceil(shape.columns()),
            rows.div_ceil(shape.rows()),
        ),
    );
}
