//! Seed 001's weight-tied Haar wavelet neural operator T, written once against the compute
//! interface: lift (1×1) → B blocks → projection (1×1, zero-initialised so that T starts as
//! nearest upsampling). Each block is
//!
//! z ← z + GELU(IDWT(K_LL·LL, K_H·[LH, HL, HH]) + W·z + b [+ depthwise3×3(z)])
//!
//! with a J-level DWT inside (J = 1 is the seed's; with J > 1 each level's high bands get their
//! own K_H and the coarsest LL gets K_LL). Band names follow the prototype
//! (`Backend::haar_split`: LH differs along x).
//!
//! The 1×1 skip W·z commutes with the orthonormal Haar transform, so it is folded into the band
//! weights: the block multiplies LL_J by (K_LL + W) with bias 2^J·b and each level's high bands
//! by (K_H + I₃⊗W), then merges: the same function and the same gradients as the prototype's
//! three products, in two products with 2.5·C² multiply-adds a pixel instead of 3.5·C² and one
//! pass over z fewer. The composed weights are rebuilt from the parameters every step.
//!
//! Rows are pixels of stacked square grids ([`Grids`]), so one pass runs every level of a
//! teacher-forced step (and every image of a mini-batch) at once: the dense products see all
//! rows, the Haar transforms and the stencil stay inside each grid.

use super::training::{Dense, Optimizer, Parameter, torch_uniform};
use super::training_state::{NamedTensor, TrainingState};
use crate::compute::{Activation, Backend, CancelToken, Cancelled, Grids, Tensor};
use crate::rng::NumpyRandomState;

/// The shape of T.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Input channels: x↑ (3), noise (1), coordinates, level (1).
    pub inputs: usize,
    pub channels: usize,
    pub blocks: usize,
    /// Haar levels inside a block (J).
    pub haar_levels: usize,
    /// Whether the skip path has a 3×3 depthwise stencil beside its 1×1 product.
    pub depthwise: bool,
}

struct Block {
    /// K_LL (C×C, no bias).
    low: Parameter,
    /// K_H of each Haar level, finest first (3C×3C, no bias).
    highs: Vec<Parameter>,
    /// The 1×1 skip W (C×C) and its bias b.
    skip: Parameter,
    skip_bias: Parameter,
    /// The 3×3 depthwise skip (9×C), when the shape has one.
    depthwise: Option<Parameter>,
}

/// The products' weights composed from a block's parameters (see the module comment).
struct Composed {
    low: Tensor,
    low_bias: Tensor,
    highs: Vec<Tensor>,
}

/// T's parameters.
pub struct Operator {
    pub shape: Shape,
    lift: Dense,
    blocks: Vec<Block>,
    projection: Dense,
    composed: Vec<Composed>,
    /// The high-band products have no bias: a zero one, and a sink for its gradient.
    zero_high_bias: Tensor,
    high_bias_grad: Tensor,
    /// Gradient of the composed LL bias 2^J·b.
    low_bias_grad: Tensor,
}

fn parameter(
    backend: &dyn Backend,
    rng: &mut NumpyRandomState,
    fan_in: usize,
    rows: usize,
    cols: usize,
) -> anyhow::Result<Parameter> {
    Parameter::new(
        backend,
        rows,
        cols,
        &torch_uniform(rng, fan_in, rows * cols),
    )
}

fn zeros_each(
    backend: &dyn Backend,
    shapes: impl Iterator<Item = (usize, usize)>,
) -> anyhow::Result<Vec<Tensor>> {
    shapes
        .map(|(rows, cols)| backend.zeros(rows, cols))
        .collect()
}

impl Operator {
    /// T with PyTorch's default Conv2d initialisation (U(±1/√fan_in) for weights and biases;
    /// fan_in 9 for the depthwise stencil) and a zero projection.
    pub fn new(
        backend: &dyn Backend,
        rng: &mut NumpyRandomState,
        shape: Shape,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            shape.channels > 0 && shape.blocks > 0 && shape.haar_levels > 0,
            "the wavelet operator needs at least one channel, block and Haar level"
        );
        let c = shape.channels;
        let lift = Dense::new(backend, rng, shape.inputs, c, Activation::Identity)?;
        let mut blocks = Vec::with_capacity(shape.blocks);
        for _ in 0..shape.blocks {
            let low = parameter(backend, rng, c, c, c)?;
            let highs = (0..shape.haar_levels)
                .map(|_| parameter(backend, rng, 3 * c, 3 * c, 3 * c))
                .collect::<anyhow::Result<_>>()?;
            let skip = parameter(backend, rng, c, c, c)?;
            let skip_bias = parameter(backend, rng, c, 1, c)?;
            let depthwise = shape
                .depthwise
                .then(|| parameter(backend, rng, 9, 9, c))
                .transpose()?;
            blocks.push(Block {
                low,
                highs,
                skip,
                skip_bias,
                depthwise,
            });
        }
        let projection = Dense {
            weights: Parameter::new(backend, c, 3, &vec![0.0; 3 * c])?,
            bias: Parameter::new(backend, 1, 3, &[0.0; 3])?,
            activation: Activation::Identity,
        };
        let composed = (0..shape.blocks)
            .map(|_| {
                Ok(Composed {
                    low: backend.zeros(c, c)?,
                    low_bias: backend.zeros(1, c)?,
                    highs: zeros_each(backend, (0..shape.haar_levels).map(|_| (3 * c, 3 * c)))?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let mut operator = Operator {
            shape,
            lift,
            blocks,
            projection,
            composed,
            zero_high_bias: backend.zeros(1, 3 * c)?,
            high_bias_grad: backend.zeros(1, 3 * c)?,
            low_bias_grad: backend.zeros(1, c)?,
        };
        operator.compose(backend);
        Ok(operator)
    }

    /// How many numbers T has (the prototype's `params`).
    pub fn parameter_count(&self) -> usize {
        let Shape {
            inputs,
            channels: c,
            blocks,
            haar_levels,
            depthwise,
        } = self.shape;
        let block = c * c + haar_levels * 9 * c * c + c * c + c + if depthwise { 9 * c } else { 0 };
        inputs * c + c + blocks * block + 3 * c + 3
    }

    /// 2^J, the scale of the skip bias in the LL band of a J-level transform.
    fn bias_scale(&self) -> f32 {
        (1u32 << self.shape.haar_levels) as f32
    }

    /// Rebuilds the products' weights from the parameters: (K_LL + W), 2^J·b, (K_H + I₃⊗W).
    fn compose(&mut self, backend: &dyn Backend) {
        let bias_scale = self.bias_scale();
        for (block, composed) in self.blocks.iter().zip(&mut self.composed) {
            backend.copy(&block.low.value, &mut composed.low);
            backend.axpy(1.0, &block.skip.value, &mut composed.low);
            backend.copy(&block.skip_bias.value, &mut composed.low_bias);
            backend.axpy(
                bias_scale - 1.0,
                &block.skip_bias.value,
                &mut composed.low_bias,
            );
            for (high, out) in block.highs.iter().zip(&mut composed.highs) {
                backend.copy(&high.value, out);
                backend.add_diagonal_blocks(&block.skip.value, out);
            }
        }
    }

    /// Every parameter tensor, in a fixed order (for checkpoints and tests).
    pub fn parameters(&self) -> Vec<&Parameter> {
        let mut list = vec![&self.lift.weights, &self.lift.bias];
        for block in &self.blocks {
            list.push(&block.low);
            list.extend(block.highs.iter());
            list.push(&block.skip);
            list.push(&block.skip_bias);
            list.extend(block.depthwise.iter());
        }
        list.push(&self.projection.weights);
        list.push(&self.projection.bias);
        list
    }

    /// Every parameter tensor, mutable, in the order of [`Operator::parameters`]; call
    /// [`Operator::recompose`] after changing values.
    pub fn parameters_mut(&mut self) -> Vec<&mut Parameter> {
        let mut list = vec![&mut self.lift.weights, &mut self.lift.bias];
        for block in &mut self.blocks {
            list.push(&mut block.low);
            list.extend(block.highs.iter_mut());
            list.push(&mut block.skip);
            list.push(&mut block.skip_bias);
            list.extend(block.depthwise.iter_mut());
        }
        list.push(&mut self.projection.weights);
        list.push(&mut self.projection.bias);
        list
    }

    /// The names of [`Operator::parameters`], in its order (checkpoints): `lift.weight`,
    /// `lift.bias`, per block `block.{b}.low`, `block.{b}.high.{j}`, `block.{b}.skip.weight`,
    /// `block.{b}.skip.bias` and `block.{b}.depthwise`, then `projection.weight`,
    /// `projection.bias`.
    pub fn parameter_names(&self) -> Vec<String> {
        let mut names = vec!["lift.weight".to_owned(), "lift.bias".to_owned()];
        for (b, block) in self.blocks.iter().enumerate() {
            names.push(format!("block.{b}.low"));
            names.extend((0..block.highs.len()).map(|j| format!("block.{b}.high.{j}")));
            names.push(format!("block.{b}.skip.weight"));
            names.push(format!("block.{b}.skip.bias"));
            names.extend(
                block
                    .depthwise
                    .iter()
                    .map(|_| format!("block.{b}.depthwise")),
            );
        }
        names.push("projection.weight".to_owned());
        names.push("projection.bias".to_owned());
        names
    }

    fn named_parameters(&self) -> Vec<(String, &Parameter)> {
        self.parameter_names()
            .into_iter()
            .zip(self.parameters())
            .collect()
    }

    /// T's weights and `optimizer`'s moments of them, downloaded, for a checkpoint.
    pub fn state_tensors(&self, backend: &dyn Backend, optimizer: &Optimizer) -> Vec<NamedTensor> {
        optimizer.state_tensors(backend, &self.named_parameters())
    }

    /// The names and shapes [`Operator::state_tensors`] gives, for checking a state.
    pub fn state_layout(&self, optimizer: &Optimizer) -> Vec<(String, usize, usize)> {
        optimizer.state_layout(&self.named_parameters())
    }

    /// Writes a state checked against [`Operator::state_layout`] into T and `optimizer`, and
    /// rebuilds the composed weights from it.
    pub fn restore(
        &mut self,
        backend: &dyn Backend,
        optimizer: &mut Optimizer,
        state: &TrainingState,
    ) {
        let names = self.parameter_names();
        optimizer.restore(
            backend,
            names.into_iter().zip(self.parameters_mut()).collect(),
            state,
        );
        self.compose(backend);
    }

    /// Rebuilds the composed weights after parameter values were written directly.
    pub fn recompose(&mut self, backend: &dyn Backend) {
        self.compose(backend);
    }

    /// Applies one optimizer step to every parameter (gradients from [`Operator::backward`]).
    pub fn update(&mut self, backend: &dyn Backend, optimizer: &Optimizer) {
        self.lift.update(backend, optimizer);
        for block in &mut self.blocks {
            optimizer.update(backend, &mut block.low);
            for high in &mut block.highs {
                optimizer.update(backend, high);
            }
            optimizer.update(backend, &mut block.skip);
            optimizer.update(backend, &mut block.skip_bias);
            if let Some(depthwise) = &mut block.depthwise {
                optimizer.update(backend, depthwise);
            }
        }
        self.projection.update(backend, optimizer);
        self.compose(backend);
    }

    /// The prediction x̂ (rows × 3, into `work.delta`) for `input` laid out as `work.grids`.
    /// A training workspace keeps every block's activations for [`Operator::backward`].
    /// Checks `cancel` between blocks.
    pub fn forward(
        &self,
        backend: &dyn Backend,
        input: &Tensor,
        work: &mut Workspace,
        cancel: &CancelToken,
    ) -> Result<(), Cancelled> {
        let Workspace {
            grids,
            training,
            states,
            pres,
            saved,
            scratch,
            delta,
            ..
        } = work;
        backend.dense_forward(
            input,
            &self.lift.weights.value,
            &self.lift.bias.value,
            Activation::Identity,
            &mut states[0],
        );
        for (index, (block, composed)) in self.blocks.iter().zip(&self.composed).enumerate() {
            cancel.check()?;
            let (z_in, z_out, pre, saved) = if *training {
                let (before, after) = states.split_at_mut(index + 1);
                (
                    &before[index],
                    &mut after[0],
                    &mut pres[index],
                    &mut saved[index],
                )
            } else {
                // Inference alternates between two states and reuses one set of buffers.
                let (a, b) = states.split_at_mut(1);
                let (z_in, z_out) = if index % 2 == 0 {
                    (&a[0], &mut b[0])
                } else {
                    (&b[0], &mut a[0])
                };
                (z_in, z_out, &mut pres[0], &mut saved[0])
            };
            let zero_bias = &self.zero_high_bias;
            block_forward(
                backend, block, composed, zero_bias, *grids, z_in, z_out, pre, saved, scratch,
            );
        }
        let last = if *training {
            &states[self.shape.blocks]
        } else {
            &states[self.shape.blocks % 2]
        };
        backend.dense_forward(
            last,
            &self.projection.weights.value,
            &self.projection.bias.value,
            Activation::Identity,
            delta,
        );
        Ok(())
    }

    /// Gradients of every parameter from the last forward pass on `input` with `work`, given
    /// dL/dx̂ in `work.delta_grad`; with `input_grad`, dL/dinput too. Checks `cancel` between
    /// blocks; the gradients of a cancelled pass must not be applied.
    pub fn backward(
        &mut self,
        backend: &dyn Backend,
        input: &Tensor,
        work: &mut Workspace,
        cancel: &CancelToken,
        input_grad: Option<&mut Tensor>,
    ) -> Result<(), Cancelled> {
        assert!(work.training, "backward needs a training workspace");
        let bias_scale = self.bias_scale();
        let blocks = self.shape.blocks;
        let Workspace {
            grids,
            states,
            pres,
            saved,
            scratch,
            delta,
            delta_grad,
            state_grad,
            ..
        } = work;
        backend.dense_backward(
            &states[blocks],
            &self.projection.weights.value,
            delta,
            delta_grad,
            Activation::Identity,
            Some(state_grad),
            &mut self.projection.weights.grad,
            &mut self.projection.bias.grad,
        );
        for index in (0..blocks).rev() {
            cancel.check()?;
            block_backward(
                backend,
                &mut self.blocks[index],
                &self.composed[index],
                BiasGrads {
                    low: &mut self.low_bias_grad,
                    high_sink: &mut self.high_bias_grad,
                    scale: bias_scale,
                },
                *grids,
                &states[index],
                &pres[index],
                &saved[index],
                state_grad,
                scratch,
            );
        }
        backend.dense_backward(
            input,
            &self.lift.weights.value,
            &states[0],
            state_grad,
            Activation::Identity,
            input_grad,
            &mut self.lift.weights.grad,
            &mut self.lift.bias.grad,
        );
        Ok(())
    }
}

/// Where a block's bias gradients go.
struct BiasGrads<'a> {
    /// dL/d(2^J·b), before scaling into b's gradient.
    low: &'a mut Tensor,
    high_sink: &'a mut Tensor,
    scale: f32,
}

/// The band products' inputs kept for the backward pass: LL_J and every level's high bands.
struct Saved {
    low: Tensor,
    highs: Vec<Tensor>,
}

/// Temporaries shared by the blocks of one pass.
struct Scratch {
    /// LL of levels 1 … J−1 (lows[j] is level j + 1), inputs of the next split only.
    lows: Vec<Tensor>,
    /// The products' outputs: LL_J and each level's high bands.
    low_out: Tensor,
    high_outs: Vec<Tensor>,
    /// Merges above the coarsest level: merges[j] is laid out as level j (merges[0] is unused;
    /// level 0 is the block's pre-activation).
    merges: Vec<Tensor>,
    /// Backward only: dL/dpre, the bands of its split per level, the products' input
    /// gradients per level, and the merged input gradients per level.
    pre_grad: Vec<Tensor>,
    band_grads: Vec<(Tensor, Tensor)>,
    input_grads: Vec<(Tensor, Tensor)>,
    level_grads: Vec<Tensor>,
}

/// Everything one forward (and backward) pass over `grids` holds.
pub struct Workspace {
    pub grids: Grids,
    training: bool,
    /// z before each block and after the last (training), or two alternating states.
    states: Vec<Tensor>,
    /// Pre-activations of each block (training) or one (inference).
    pres: Vec<Tensor>,
    saved: Vec<Saved>,
    scratch: Scratch,
    /// x̂ (rows × 3) and, training, dL/dx̂.
    pub delta: Tensor,
    pub delta_grad: Tensor,
    /// dL/dz as the backward pass walks down the blocks; after it, dL/dz₀.
    state_grad: Tensor,
}

/// Rows of `grids` after `j` Haar levels.
fn level_rows(grids: Grids, j: usize) -> usize {
    (0..j).fold(grids, |g, _| g.halved()).rows()
}

fn level_grids(grids: Grids, j: usize) -> Grids {
    (0..j).fold(grids, |g, _| g.halved())
}

impl Workspace {
    /// Buffers for one pass over `grids`; `training` keeps every block's activations and the
    /// gradients' buffers.
    pub fn new(
        backend: &dyn Backend,
        shape: Shape,
        grids: Grids,
        training: bool,
    ) -> anyhow::Result<Self> {
        let c = shape.channels;
        let rows = grids.rows();
        let levels = shape.haar_levels;
        anyhow::ensure!(
            grids.first_side.is_multiple_of(1 << levels),
            "a {levels}-level Haar transform needs sides divisible by {}, not {}",
            1 << levels,
            grids.first_side
        );
        let kept = if training { shape.blocks } else { 1 };
        let states = zeros_each(
            backend,
            (0..if training { shape.blocks + 1 } else { 2 }).map(|_| (rows, c)),
        )?;
        let pres = zeros_each(backend, (0..kept).map(|_| (rows, c)))?;
        let saved = (0..kept)
            .map(|_| {
                Ok(Saved {
                    low: backend.zeros(level_rows(grids, levels), c)?,
                    highs: zeros_each(
                        backend,
                        (1..=levels).map(|j| (level_rows(grids, j), 3 * c)),
                    )?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let pairs = |on: bool| -> anyhow::Result<Vec<(Tensor, Tensor)>> {
            if !on {
                return Ok(Vec::new());
            }
            (1..=levels)
                .map(|j| {
                    Ok((
                        backend.zeros(level_rows(grids, j), c)?,
                        backend.zeros(level_rows(grids, j), 3 * c)?,
                    ))
                })
                .collect()
        };
        let scratch = Scratch {
            lows: zeros_each(backend, (1..levels).map(|j| (level_rows(grids, j), c)))?,
            low_out: backend.zeros(level_rows(grids, levels), c)?,
            high_outs: zeros_each(backend, (1..=levels).map(|j| (level_rows(grids, j), 3 * c)))?,
            merges: zeros_each(
                backend,
                (0..levels).map(|j| (if j == 0 { 1 } else { level_rows(grids, j) }, c)),
            )?,
            pre_grad: zeros_each(backend, training.then_some((rows, c)).into_iter())?,
            band_grads: pairs(training)?,
            input_grads: pairs(training)?,
            level_grads: if training {
                zeros_each(backend, (0..levels).map(|j| (level_rows(grids, j), c)))?
            } else {
                Vec::new()
            },
        };
        let grad_rows = if training { rows } else { 1 };
        Ok(Workspace {
            grids,
            training,
            states,
            pres,
            saved,
            scratch,
            delta: backend.zeros(rows, 3)?,
            delta_grad: backend.zeros(grad_rows, 3)?,
            state_grad: backend.zeros(grad_rows, c)?,
        })
    }

    /// x̂ and dL/dx̂, for the loss.
    pub fn delta_and_grad(&mut self) -> (&Tensor, &mut Tensor) {
        (&self.delta, &mut self.delta_grad)
    }
}

/// One block forward: split J levels, the two kinds of products, merge back, add the stencil,
/// `z_out = z_in + GELU(pre)`.
#[allow(clippy::too_many_arguments)]
fn block_forward(
    backend: &dyn Backend,
    block: &Block,
    composed: &Composed,
    zero_high_bias: &Tensor,
    grids: Grids,
    z_in: &Tensor,
    z_out: &mut Tensor,
    pre: &mut Tensor,
    saved: &mut Saved,
    scratch: &mut Scratch,
) {
    let levels = saved.highs.len();
    for j in 0..levels {
        let (done, rest) = scratch.lows.split_at_mut(j);
        let source = if j == 0 { z_in } else { &done[j - 1] };
        let low = if j + 1 == levels {
            &mut saved.low
        } else {
            &mut rest[0]
        };
        backend.haar_split(source, level_grids(grids, j), low, &mut saved.highs[j]);
    }
    backend.dense_forward(
        &saved.low,
        &composed.low,
        &composed.low_bias,
        Activation::Identity,
        &mut scratch.low_out,
    );
    for j in 0..levels {
        backend.dense_forward(
            &saved.highs[j],
            &composed.highs[j],
            zero_high_bias,
            Activation::Identity,
            &mut scratch.high_outs[j],
        );
    }
    for j in (0..levels).rev() {
        let (upper, lower) = scratch.merges.split_at_mut(j + 1);
        let low = if j + 1 == levels {
            &scratch.low_out
        } else {
            &lower[0]
        };
        let out = if j == 0 { &mut *pre } else { &mut upper[j] };
        backend.haar_merge(low, &scratch.high_outs[j], level_grids(grids, j), out);
    }
    if let Some(depthwise) = &block.depthwise {
        backend.depthwise3x3(z_in, grids, &depthwise.value, pre);
    }
    backend.gelu_residual(pre, z_in, z_out);
}

/// One block backward: `state_grad` holds dL/dz_out on entry and dL/dz_in on return; the
/// block's parameter gradients are written.
#[allow(clippy::too_many_arguments)]
fn block_backward(
    backend: &dyn Backend,
    block: &mut Block,
    composed: &Composed,
    bias: BiasGrads,
    grids: Grids,
    z_in: &Tensor,
    pre: &Tensor,
    saved: &Saved,
    state_grad: &mut Tensor,
    scratch: &mut Scratch,
) {
    let levels = saved.highs.len();
    let pre_grad = &mut scratch.pre_grad[0];
    backend.gelu_backward(pre, state_grad, pre_grad);
    // The residual passes dL/dz_out through; the stencil and the bands add to it.
    if let Some(depthwise) = &mut block.depthwise {
        backend.depthwise3x3_backward(
            z_in,
            pre_grad,
            grids,
            &depthwise.value,
            state_grad,
            &mut depthwise.grad,
        );
    }
    // The adjoint of the merges is the splits.
    for j in 0..levels {
        let (done, rest) = scratch.band_grads.split_at_mut(j);
        let source = if j == 0 { &*pre_grad } else { &done[j - 1].0 };
        let (low, high) = &mut rest[0];
        backend.haar_split(source, level_grids(grids, j), low, high);
    }
    let (d_low_out, _) = &scratch.band_grads[levels - 1];
    backend.dense_backward(
        &saved.low,
        &composed.low,
        d_low_out,
        d_low_out,
        Activation::Identity,
        Some(&mut scratch.input_grads[levels - 1].0),
        &mut block.low.grad,
        bias.low,
    );
    for j in 0..levels {
        let d_high_out = &scratch.band_grads[j].1;
        backend.dense_backward(
            &saved.highs[j],
            &composed.highs[j],
            d_high_out,
            d_high_out,
            Activation::Identity,
            Some(&mut scratch.input_grads[j].1),
            &mut block.highs[j].grad,
            bias.high_sink,
        );
    }
    // The adjoint of the splits is the merges.
    for j in (0..levels).rev() {
        let (upper, lower) = scratch.level_grads.split_at_mut(j + 1);
        let low = if j + 1 == levels {
            &scratch.input_grads[levels - 1].0
        } else {
            &lower[0]
        };
        backend.haar_merge(
            low,
            &scratch.input_grads[j].1,
            level_grids(grids, j),
            &mut upper[j],
        );
    }
    backend.axpy(1.0, &scratch.level_grads[0], state_grad);
    // From the composed weights' gradients to the parameters': K_LL and K_H take theirs as
    // they are; W collects the LL one and every diagonal block of the high ones; b = 2^J·….
    backend.copy(&block.low.grad, &mut block.skip.grad);
    for high in &block.highs {
        backend.sum_diagonal_blocks(&high.grad, &mut block.skip.grad);
    }
    backend.copy(bias.low, &mut block.skip_bias.grad);
    backend.axpy(bias.scale - 1.0, bias.low, &mut block.skip_bias.grad);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::cpu::CpuBackend;

    /// Σ x̂ ⊙ R for a fixed random R, so dL/dx̂ = R.
    fn loss(
        operator: &Operator,
        backend: &dyn Backend,
        input: &Tensor,
        work: &mut Workspace,
        weights: &[f32],
    ) -> f64 {
        operator
            .forward(backend, input, work, &CancelToken::new())
            .unwrap();
        backend
            .download(&work.delta)
            .iter()
            .zip(weights)
            .map(|(&d, &r)| d as f64 * r as f64)
            .sum()
    }

    /// Every parameter's gradient (with the skip folded into the band weights) against central
    /// differences of the loss, for one and two Haar levels, with and without the stencil.
    #[test]
    fn gradients_match_finite_differences() {
        let backend = CpuBackend::new();
        for (haar_levels, depthwise) in [(1, true), (2, false), (1, false), (2, true)] {
            let shape = Shape {
                inputs: 5,
                channels: 4,
                blocks: 2,
                haar_levels,
                depthwise,
            };
            let grids = Grids {
                count: 2,
                first_side: 4,
                levels: 2,
            };
            let mut rng = NumpyRandomState::new(7);
            let mut operator = Operator::new(&backend, &mut rng, shape).unwrap();
            // A projection that is not zero, so gradients reach the blocks.
            let projection: Vec<f32> = torch_uniform(&mut rng, 4, 12);
            backend.write(&mut operator.projection.weights.value, &projection);
            let rows = grids.rows();
            let input_values = torch_uniform(&mut rng, 1, rows * shape.inputs);
            let input = backend.upload(rows, shape.inputs, &input_values).unwrap();
            let weights = torch_uniform(&mut rng, 1, rows * 3);
            let mut work = Workspace::new(&backend, shape, grids, true).unwrap();
            loss(&operator, &backend, &input, &mut work, &weights);
            backend.write(&mut work.delta_grad, &weights);
            operator
                .backward(&backend, &input, &mut work, &CancelToken::new(), None)
                .unwrap();
            let count = operator.parameters().len();
            for index in 0..count {
                let analytic = backend.download(&operator.parameters()[index].grad);
                let values = backend.download(&operator.parameters()[index].value);
                // A few entries of each tensor.
                for entry in [0, values.len() / 2, values.len() - 1] {
                    let eps = 1e-2f32;
                    let mut probe = |delta: f32| {
                        let mut changed = values.clone();
                        changed[entry] += delta;
                        backend.write(&mut operator.parameters_mut()[index].value, &changed);
                        operator.compose(&backend);
                        let value = loss(&operator, &backend, &input, &mut work, &weights);
                        backend.write(&mut operator.parameters_mut()[index].value, &values);
                        operator.compose(&backend);
                        value
                    };
                    let numeric = (probe(eps) - probe(-eps)) / (2.0 * eps as f64);
                    let got = analytic[entry] as f64;
                    assert!(
                        (got - numeric).abs() <= 2e-2 * numeric.abs().max(1.0) * 0.1 + 2e-3,
                        "J={haar_levels} stencil={depthwise}: parameter {index} entry {entry}: \
                         analytic {got} vs numeric {numeric}"
                    );
                }
            }
        }
    }
}
