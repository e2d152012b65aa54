//! What the trained methods share: dense layers with PyTorch's default initialisation, an MLP
//! whose activations stay on the backend for the backward pass, the two optimizers, and the
//! training parameters every trained method spells alike.
//!
//! Every tensor here is allocated once, when the network is built; a training step only runs
//! backend operations on them, so on a GPU the weights never leave the device.

use super::ParamSpec;
use super::params::ChoiceOption;
use super::training_state::{NamedTensor, TrainingState};
use crate::compute::{Activation, AdamStep, Backend, Tensor};
use crate::rng::NumpyRandomState;

pub const OPTIMIZER: ParamSpec = ParamSpec::choice(
    "optimizer",
    "optimizer",
    "adam: Adam (β 0.9/0.999), steady at lr 1e-3. sgd: heavy-ball SGD with momentum 0.9, \
     the seed notebook's choice, at lr 1.0.",
    &["adam", "sgd"],
    0,
);
/// The usual learning rate of each optimizer, in the order of [`OPTIMIZER`]'s options: SGD's
/// 1.0 would blow Adam up; Adam's 1e-3 barely moves SGD.
const LEARNING_RATE_DEFAULTS: &[f64] = &[1e-3, 1.0];
pub const LEARNING_RATE: ParamSpec = ParamSpec::real(
    "lr",
    "learning rate",
    "Step size of the optimizer. Too large and the loss blows up (the run stops as diverged). \
     Unless set, it follows the optimizer: 1e-3 for adam, 1.0 for sgd (heavy-ball momentum).",
    1e-3,
    1e-6,
    1e6,
)
.logarithmic()
.default_follows(&OPTIMIZER, LEARNING_RATE_DEFAULTS);
pub const TRAINING_STEPS: ParamSpec = ParamSpec::integer(
    "steps",
    "training steps",
    "How many optimizer steps to train for; each step is one refinement of the image.",
    500.0,
    1.0,
    100_000.0,
);
pub const SEED: ParamSpec = ParamSpec::integer(
    "seed",
    "seed",
    "Seed of the initial weights and of the Fourier frequencies.",
    0.0,
    0.0,
    4_294_967_295.0,
);

/// The learning rate a run uses: the one the user set, else the chosen optimizer's usual rate
/// (the default of [`LEARNING_RATE`] follows [`OPTIMIZER`]).
pub fn learning_rate(params: &super::ParamValues) -> f32 {
    params.get(&LEARNING_RATE) as f32
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

impl ChoiceOption for OptimizerKind {
    const ALL: &'static [Self] = &[OptimizerKind::Adam, OptimizerKind::Sgd];
    /// Its option's name in [`OPTIMIZER`].
    fn name(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::Sgd => "sgd",
        }
    }
}

/// An optimizer's settings and its step count.
#[derive(Clone, Copy, Debug)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub learning_rate: f32,
    /// Updates applied so far (Adam's bias correction needs it).
    pub updates: u32,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, learning_rate: f32) -> Self {
        Optimizer {
            kind,
            learning_rate,
            updates: 0,
        }
    }

    /// Call once per training step before updating the parameters.
    pub fn begin_step(&mut self) {
        self.updates += 1;
    }

    /// Updates one parameter tensor from its gradient and its state.
    pub fn update(&self, backend: &dyn Backend, param: &mut Parameter) {
        match self.kind {
            OptimizerKind::Sgd => backend.sgd_momentum(
                &mut param.value,
                &param.grad,
                &mut param.first_moment,
                self.learning_rate,
                0.9,
            ),
            OptimizerKind::Adam => backend.adam(
                &mut param.value,
                &param.grad,
                &mut param.first_moment,
                &mut param.second_moment,
                AdamStep {
                    learning_rate: self.learning_rate,
                    beta1: 0.9,
                    beta2: 0.999,
                    epsilon: 1e-8,
                    step: self.updates,
                },
            ),
        }
    }
}

/// The tensors a checkpoint keeps of `parameters` (name, parameter) under this optimizer, each
/// with its name: the value, then the moments the optimizer uses (Adam's two, SGD's velocity).
/// Gradients are not kept: every step computes them afresh.
fn checkpoint_tensors<'p>(
    kind: OptimizerKind,
    name: &str,
    parameter: &'p Parameter,
) -> Vec<(String, &'p Tensor)> {
    let mut tensors = vec![(name.to_owned(), &parameter.value)];
    match kind {
        OptimizerKind::Adam => {
            tensors.push((format!("adam.first_moment.{name}"), &parameter.first_moment));
            tensors.push((
                format!("adam.second_moment.{name}"),
                &parameter.second_moment,
            ));
        }
        OptimizerKind::Sgd => {
            tensors.push((format!("sgd.velocity.{name}"), &parameter.first_moment))
        }
    }
    tensors
}

impl Optimizer {
    /// The checkpoint's tensors of `parameters`, downloaded.
    pub fn state_tensors(
        &self,
        backend: &dyn Backend,
        parameters: &[(String, &Parameter)],
    ) -> Vec<NamedTensor> {
        parameters
            .iter()
            .flat_map(|(name, parameter)| checkpoint_tensors(self.kind, name, parameter))
            .map(|(name, tensor)| NamedTensor {
                name,
                rows: tensor.rows(),
                cols: tensor.cols(),
                values: backend.download(tensor),
            })
            .collect()
    }

    /// The names and shapes [`Self::state_tensors`] gives, for checking a state.
    pub fn state_layout(&self, parameters: &[(String, &Parameter)]) -> Vec<(String, usize, usize)> {
        parameters
            .iter()
            .flat_map(|(name, parameter)| checkpoint_tensors(self.kind, name, parameter))
            .map(|(name, tensor)| (name, tensor.rows(), tensor.cols()))
            .collect()
    }

    /// Writes `state`'s values and moments into `parameters` and takes its update count; call
    /// only after [`TrainingState::check`] against [`Self::state_layout`] has passed.
    pub fn restore(
        &mut self,
        backend: &dyn Backend,
        parameters: Vec<(String, &mut Parameter)>,
        state: &TrainingState,
    ) {
        for (name, parameter) in parameters {
            backend.write(&mut parameter.value, state.tensor(&name));
            match self.kind {
                OptimizerKind::Adam => {
                    let first = state.tensor(&format!("adam.first_moment.{name}"));
                    backend.write(&mut parameter.first_moment, first);
                    let second = state.tensor(&format!("adam.second_moment.{name}"));
                    backend.write(&mut parameter.second_moment, second);
                }
                OptimizerKind::Sgd => {
                    let velocity = state.tensor(&format!("sgd.velocity.{name}"));
                    backend.write(&mut parameter.first_moment, velocity);
                }
            }
        }
        self.updates = state.optimizer_updates;
    }
}

/// A trainable tensor with its gradient and optimizer state (SGD's velocity is the first moment).
pub struct Parameter {
    pub value: Tensor,
    pub grad: Tensor,
    pub first_moment: Tensor,
    pub second_moment: Tensor,
}

impl Parameter {
    pub fn new(
        backend: &dyn Backend,
        rows: usize,
        cols: usize,
        values: &[f32],
    ) -> anyhow::Result<Self> {
        Ok(Parameter {
            value: backend.upload(rows, cols, values)?,
            grad: backend.zeros(rows, cols)?,
            first_moment: backend.zeros(rows, cols)?,
            second_moment: backend.zeros(rows, cols)?,
        })
    }
}

/// PyTorch's default `nn.Linear` initialisation: weight and bias ~ U(−1/√fan_in, 1/√fan_in).
/// PyTorch draws from its own generator, which cannot be reproduced; the distribution is the same.
pub fn torch_uniform(rng: &mut NumpyRandomState, fan_in: usize, count: usize) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    (0..count)
        .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
        .collect()
}

/// `y = act(x·W + b)` with W stored in×out.
pub struct Dense {
    pub weights: Parameter,
    pub bias: Parameter,
    pub activation: Activation,
}

impl Dense {
    pub fn new(
        backend: &dyn Backend,
        rng: &mut NumpyRandomState,
        inputs: usize,
        outputs: usize,
        activation: Activation,
    ) -> anyhow::Result<Self> {
        let weights = torch_uniform(rng, inputs, inputs * outputs);
        let bias = torch_uniform(rng, inputs, outputs);
        Ok(Dense {
            weights: Parameter::new(backend, inputs, outputs, &weights)?,
            bias: Parameter::new(backend, 1, outputs, &bias)?,
            activation,
        })
    }

    pub fn inputs(&self) -> usize {
        self.weights.value.rows()
    }
    pub fn outputs(&self) -> usize {
        self.weights.value.cols()
    }

    pub fn update(&mut self, backend: &dyn Backend, optimizer: &Optimizer) {
        optimizer.update(backend, &mut self.weights);
        optimizer.update(backend, &mut self.bias);
    }
}

/// Layer widths: `inputs → hidden… → 3`, ReLU between, sigmoid out.
pub fn mlp_widths(inputs: usize, hidden: &[usize]) -> Vec<usize> {
    let mut widths = vec![inputs];
    widths.extend(hidden.iter().copied().filter(|&w| w > 0));
    widths.push(3);
    widths
}

/// A ReLU MLP with a sigmoid output, and the per-row buffers of one batch size: every layer's
/// output (kept for the backward pass) and its gradient.
pub struct Mlp {
    pub layers: Vec<Dense>,
}

/// Activations and gradients for `rows` inputs of an [`Mlp`].
pub struct MlpBuffers {
    /// Output of each layer; the last is the prediction.
    pub outputs: Vec<Tensor>,
    /// dL/d(output) of each layer.
    pub output_grads: Vec<Tensor>,
}

impl Mlp {
    pub fn new(
        backend: &dyn Backend,
        rng: &mut NumpyRandomState,
        widths: &[usize],
    ) -> anyhow::Result<Self> {
        let count = widths.len() - 1;
        let layers = (0..count)
            .map(|i| {
                let activation = if i + 1 == count {
                    Activation::Sigmoid
                } else {
                    Activation::Relu
                };
                Dense::new(backend, rng, widths[i], widths[i + 1], activation)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Mlp { layers })
    }

    pub fn buffers(
        &self,
        backend: &dyn Backend,
        rows: usize,
        with_grads: bool,
    ) -> anyhow::Result<MlpBuffers> {
        let make = || {
            self.layers
                .iter()
                .map(|layer| backend.zeros(rows, layer.outputs()))
                .collect::<anyhow::Result<_>>()
        };
        Ok(MlpBuffers {
            outputs: make()?,
            output_grads: if with_grads { make()? } else { Vec::new() },
        })
    }

    pub fn forward(&self, backend: &dyn Backend, input: &Tensor, buffers: &mut MlpBuffers) {
        for (i, layer) in self.layers.iter().enumerate() {
            let (done, rest) = buffers.outputs.split_at_mut(i);
            let x = if i == 0 { input } else { &done[i - 1] };
            backend.dense_forward(
                x,
                &layer.weights.value,
                &layer.bias.value,
                layer.activation,
                &mut rest[0],
            );
        }
    }

    /// Gradients of every parameter from the last forward pass on `input`, given that
    /// `buffers.output_grads.last()` holds dL/d(prediction).
    pub fn backward(&mut self, backend: &dyn Backend, input: &Tensor, buffers: &mut MlpBuffers) {
        for i in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[i];
            let x = if i == 0 {
                input
            } else {
                &buffers.outputs[i - 1]
            };
            let (below, rest) = buffers.output_grads.split_at_mut(i);
            let dx = if i == 0 {
                None
            } else {
                Some(&mut below[i - 1])
            };
            backend.dense_backward(
                x,
                &layer.weights.value,
                &buffers.outputs[i],
                &rest[0],
                layer.activation,
                dx,
                &mut layer.weights.grad,
                &mut layer.bias.grad,
            );
        }
    }

    pub fn update(&mut self, backend: &dyn Backend, optimizer: &Optimizer) {
        for layer in &mut self.layers {
            layer.update(backend, optimizer);
        }
    }

    /// Every parameter by name (`{prefix}.0.weight`, `{prefix}.0.bias`, …), for checkpoints.
    pub fn named_parameters(&self, prefix: &str) -> Vec<(String, &Parameter)> {
        (self.layers.iter().enumerate())
            .flat_map(|(i, layer)| {
                [
                    (format!("{prefix}.{i}.weight"), &layer.weights),
                    (format!("{prefix}.{i}.bias"), &layer.bias),
                ]
            })
            .collect()
    }

    /// [`Self::named_parameters`], mutable.
    pub fn named_parameters_mut(&mut self, prefix: &str) -> Vec<(String, &mut Parameter)> {
        (self.layers.iter_mut().enumerate())
            .flat_map(|(i, layer)| {
                [
                    (format!("{prefix}.{i}.weight"), &mut layer.weights),
                    (format!("{prefix}.{i}.bias"), &mut layer.bias),
                ]
            })
            .collect()
    }
}

impl MlpBuffers {
    pub fn prediction(&self) -> &Tensor {
        self.outputs.last().expect("an MLP has a layer")
    }
    /// The prediction and its gradient slot, for the loss.
    pub fn prediction_and_grad(&mut self) -> (&Tensor, &mut Tensor) {
        (
            self.outputs.last().expect("an MLP has a layer"),
            self.output_grads
                .last_mut()
                .expect("buffers made with grads"),
        )
    }
}

/// The images kept in a trajectory of training steps: 1, 2, 5, 10, 20, 50, … and the last.
pub fn is_milestone_step(step: usize, total: usize) -> bool {
    if step == total {
        return true;
    }
    let mut decade = 1;
    while decade <= step {
        if step == decade || step == 2 * decade || step == 5 * decade {
            return true;
        }
        decade *= 10;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::params::Resolved;
    use super::*;

    #[test]
    fn milestones_follow_one_two_five() {
        let kept: Vec<usize> = (1..=600).filter(|&s| is_milestone_step(s, 600)).collect();
        assert_eq!(kept, [1, 2, 5, 10, 20, 50, 100, 200, 500, 600]);
    }

    #[test]
    fn the_learning_rate_follows_the_optimizer_unless_set() {
        let mut params = super::super::ParamValues::new();
        assert_eq!(learning_rate(&params), 1e-3);
        params.set(
            OPTIMIZER.name,
            OPTIMIZER.choice_index("sgd").unwrap() as f64,
        );
        assert_eq!(learning_rate(&params), 1.0);
        // What a run reports is what it uses.
        let resolved = params.resolved(&[OPTIMIZER, LEARNING_RATE]).unwrap();
        assert_eq!(resolved["lr"], Resolved::Number(1.0));
        assert_eq!(resolved["optimizer"], Resolved::Choice("sgd"));
        params.set(LEARNING_RATE.name, 0.05);
        assert_eq!(learning_rate(&params), 0.05);
        // Every option is an optimizer, and each one's default rate is the spec's.
        for (index, name) in OPTIMIZER.choices.iter().enumerate() {
            let mut params = super::super::ParamValues::new();
            params.set(OPTIMIZER.name, index as f64);
            let kind: OptimizerKind = params.get_option(&OPTIMIZER).unwrap();
            assert_eq!(kind.name(), *name);
            assert_eq!(learning_rate(&params), LEARNING_RATE_DEFAULTS[index] as f32);
        }
        assert_eq!(OptimizerKind::ALL.len(), OPTIMIZER.choices.len());
        let mut unknown = super::super::ParamValues::new();
        unknown.set(OPTIMIZER.name, 2.0);
        assert!(unknown.get_option::<OptimizerKind>(&OPTIMIZER).is_err());
    }
}
