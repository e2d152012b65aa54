//! Approach 4 of the reservoir notebook: learned iterative refinement, trained live.
//!
//! Each of K iterations sees the coordinates and the previous estimate:
//! `h_k = tanh([x, y, rgb_{k−1}]·W_in + b_in + h_{k−1}·W_hh)`,
//! `rgb_k = sigmoid(relu(h_k·W₁ + b₁)·W₂ + b₂)`, with `h₀ = 0`, `rgb₀ = 0`. The loss weights later
//! iterations more, `Σ_k (k/K)·MSE(rgb_k)`, and its gradient flows back through all K iterations,
//! through both the hidden state and the estimates fed back in. Adam at 1e-3 by default.
//!
//! Under a mask it trains on the training pixels only; the same K iterations with the same
//! weights run over every pixel for what is shown and scored, and anywhere for a rendering.
//!
//! (The notebook's module also defines a `W_out` layer that its forward pass never uses; it gets
//! no gradient there and is left out here.)

use super::memory::Tally;
use super::training::{
    Dense, LEARNING_RATE, OPTIMIZER, Optimizer, OptimizerKind, Parameter, SEED, TRAINING_STEPS,
    is_milestone_step, learning_rate, torch_uniform,
};
use super::training_state::StateLayout;
use super::{
    MemoryEstimate, Method, MethodInfo, ParamSpec, ParamValues, Setup, StepReport, TrainingState,
    psnr_from_mse, render_in_blocks,
};
use crate::compute::{Activation, Backend, CancelToken, Cancelled, Tensor};
use crate::rng::NumpyRandomState;

pub const WIDTH: ParamSpec = ParamSpec::integer(
    "width",
    "hidden width",
    "Units of the recurrent state h and of the refinement MLP's hidden layer.",
    256.0,
    1.0,
    2048.0,
);
pub const ITERATIONS: ParamSpec = ParamSpec::integer(
    "iterations",
    "iterations K",
    "Refinement iterations unrolled per forward pass; all K are trained through.",
    5.0,
    1.0,
    50.0,
);

const PARAMS: &[ParamSpec] = &[
    WIDTH,
    ITERATIONS,
    OPTIMIZER,
    LEARNING_RATE,
    TRAINING_STEPS,
    SEED,
];

pub const INFO: MethodInfo = MethodInfo {
    name: "learned-refine",
    title: "Learned refinement",
    summary: "A recurrent network trained to refine its own estimate over K iterations \
              (backpropagation through all of them).",
    estimate,
    params: PARAMS,
    default_on: true,
    steps_are_scales: false,
    has_levels: false,
    trains_on_folder: false,
    resumable: true,
    fits_observed_pixels: true,
    create: |setup| Ok(Box::new(LearnedRefine::new(setup)?)),
};

/// K iterations of activations kept for the backward pass, the backward pass's scratch, and the
/// five parameters with gradient and two moments plus a per-iteration gradient each.
fn estimate(p: &ParamValues, size: usize) -> MemoryEstimate {
    let (n, w, k) = (size * size, p.get_usize(&WIDTH), p.get_usize(&ITERATIONS));
    let parameters = [
        (STEP_INPUTS, w),
        (1, w),
        (w, w),
        (w, w),
        (1, w),
        (w, 3),
        (1, 3),
    ];
    let mut tally = Tally::new();
    let mut weights = 0usize;
    for &(rows, cols) in &parameters {
        tally.tensors(5, rows, cols);
        weights = weights.saturating_add(rows.saturating_mul(cols));
    }
    let threads = rayon::current_num_threads();
    tally
        .tensors(k, n, STEP_INPUTS)
        .tensors(k.saturating_mul(2), n, w)
        .tensors(k, n, 3)
        .tensor(n, 2)
        .tensors(5, n, 3)
        .tensors(3, n, w)
        .tensor(n, STEP_INPUTS)
        .tensors(2, 1, w)
        .host_f32(weights.saturating_mul(threads + 1))
        .buffer(((w + 16) * (w + 16) + 65_536) as u64 * 4);
    // Forward (twice on the first step) and backward (two products per forward one) through
    // every iteration.
    let forward =
        2.0 * (n * k) as f64 * (w as f64 * (w + STEP_INPUTS) as f64 + w as f64 * (w + 3) as f64);
    tally.flops(5.0 * forward);
    tally.finish()
}

/// Inputs per pixel of the recurrent update: x, y and the previous r, g, b.
const STEP_INPUTS: usize = 5;

/// Tensors of one iteration's forward pass, kept for the backward pass.
struct Iterate {
    /// `[x, y, rgb_{k−1}]`, N×5.
    combined: Tensor,
    hidden: Tensor,
    refine_hidden: Tensor,
    rgb: Tensor,
}

impl Iterate {
    /// `count` iterations' tensors for `rows` pixels.
    fn allocate(
        backend: &dyn Backend,
        rows: usize,
        width: usize,
        count: usize,
    ) -> anyhow::Result<Vec<Iterate>> {
        (0..count)
            .map(|_| -> anyhow::Result<Iterate> {
                Ok(Iterate {
                    combined: backend.zeros(rows, STEP_INPUTS)?,
                    hidden: backend.zeros(rows, width)?,
                    refine_hidden: backend.zeros(rows, width)?,
                    rgb: backend.zeros(rows, 3)?,
                })
            })
            .collect()
    }
}

/// The weights one forward pass reads.
struct Net<'a> {
    w_in: &'a Tensor,
    b_in: &'a Tensor,
    w_hh: &'a Tensor,
    refine1: &'a Dense,
    refine2: &'a Dense,
}

impl Net<'_> {
    /// The K iterations at `coords` into `iterates`; cancelled between (and inside the
    /// recurrent products of) iterations.
    fn forward(
        &self,
        backend: &dyn Backend,
        coords: &Tensor,
        zero_rgb: &Tensor,
        iterates: &mut [Iterate],
        cancel: &CancelToken,
    ) -> Result<(), Cancelled> {
        for k in 0..iterates.len() {
            cancel.check()?;
            let (before, rest) = iterates.split_at_mut(k);
            let previous = before.last();
            let current = &mut rest[0];
            let previous_rgb = previous.map_or(zero_rgb, |p| &p.rgb);
            backend.concat_cols(&[coords, previous_rgb], &mut current.combined);
            backend.reservoir_step_until(
                &current.combined,
                self.w_in,
                previous.map(|p| &p.hidden),
                self.w_hh,
                self.b_in,
                &mut current.hidden,
                cancel,
            )?;
            backend.dense_forward(
                &current.hidden,
                &self.refine1.weights.value,
                &self.refine1.bias.value,
                Activation::Relu,
                &mut current.refine_hidden,
            );
            backend.dense_forward(
                &current.refine_hidden,
                &self.refine2.weights.value,
                &self.refine2.bias.value,
                Activation::Sigmoid,
                &mut current.rgb,
            );
        }
        Ok(())
    }
}

/// Under a mask, every pixel's pass with the trained weights: what is shown and scored.
struct Shown {
    coords: Tensor,
    target: Tensor,
    zero_rgb: Tensor,
    mid_grey: Tensor,
    iterates: Vec<Iterate>,
}

/// Scratch for the backward pass and gradient accumulation, allocated once.
struct Scratch {
    rgb_grad: Tensor,
    refine_hidden_grad: Tensor,
    hidden_grad: Tensor,
    /// dL/dh_{k−1} through W_hh, carried to the previous iteration.
    carried_hidden_grad: Tensor,
    combined_grad: Tensor,
    /// dL/drgb_{k−1} through W_in, carried to the previous iteration.
    carried_rgb_grad: Tensor,
    /// 5×3 matrix that picks the r, g, b columns out of a `[x, y, r, g, b]` gradient: an exact
    /// selection (products with 1 and sums with 0), so no slicing operation is needed.
    rgb_columns: Tensor,
    zero_bias3: Tensor,
    /// Per-iteration gradients before they are summed into the parameters'.
    w_in: Tensor,
    b_in: Tensor,
    w_hh: Tensor,
    unused_bias: Tensor,
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

pub struct LearnedRefine {
    w_in: Parameter,
    b_in: Parameter,
    w_hh: Parameter,
    refine1: Dense,
    refine2: Dense,
    optimizer: Optimizer,
    coords: Tensor,
    target: Tensor,
    zero_rgb: Tensor,
    /// ½ everywhere, to measure how saturated the image is.
    mid_grey: Tensor,
    iterates: Vec<Iterate>,
    /// Under a mask (the tensors above then hold the training pixels only).
    shown: Option<Shown>,
    scratch: Scratch,
    forward_is_current: bool,
    /// The weights of step `done + 1` are in place but its report is not made yet (the
    /// forward pass after the update was cancelled): the next `step` call finishes it.
    updated: bool,
    pixels: usize,
    steps: usize,
    done: usize,
    cancel: CancelToken,
}

impl LearnedRefine {
    pub fn new(setup: &Setup) -> anyhow::Result<Self> {
        let p = setup.params;
        let backend = setup.backend;
        let all = setup.target.pixel_count();
        let width = p.get_usize(&WIDTH);
        let iterations = p.get_usize(&ITERATIONS);
        // Trained on the training pixels (every pixel without a mask).
        let (coords, values) = setup.target.training_set();
        let n = values.len() / 3;
        let shown = match setup.target.training_pixels() {
            Some(_) => Some(Shown {
                coords: backend.upload(all, 2, &setup.target.coords())?,
                target: backend.upload(all, 3, &setup.target.pixels)?,
                zero_rgb: backend.zeros(all, 3)?,
                mid_grey: backend.upload(all, 3, &vec![0.5; 3 * all])?,
                iterates: Iterate::allocate(backend, all, width, iterations)?,
            }),
            None => None,
        };
        let mut rng = NumpyRandomState::new(p.get(&SEED) as u32);
        // nn.Linear(5, h) and nn.Linear(h, h, bias=False), in the notebook's order.
        let w_in = torch_uniform(&mut rng, STEP_INPUTS, STEP_INPUTS * width);
        let b_in = torch_uniform(&mut rng, STEP_INPUTS, width);
        let w_hh = torch_uniform(&mut rng, width, width * width);
        let refine1 = Dense::new(backend, &mut rng, width, width, Activation::Relu)?;
        let refine2 = Dense::new(backend, &mut rng, width, 3, Activation::Sigmoid)?;
        let kind: OptimizerKind = p.get_option(&OPTIMIZER)?;
        let mut rgb_columns = vec![0.0f32; STEP_INPUTS * 3];
        for c in 0..3 {
            rgb_columns[(2 + c) * 3 + c] = 1.0;
        }
        let iterates = Iterate::allocate(backend, n, width, iterations)?;
        Ok(LearnedRefine {
            w_in: Parameter::new(backend, STEP_INPUTS, width, &w_in)?,
            b_in: Parameter::new(backend, 1, width, &b_in)?,
            w_hh: Parameter::new(backend, width, width, &w_hh)?,
            refine1,
            refine2,
            optimizer: Optimizer::new(kind, learning_rate(p)),
            coords: backend.upload(n, 2, &coords)?,
            target: backend.upload(n, 3, &values)?,
            zero_rgb: backend.zeros(n, 3)?,
            mid_grey: backend.upload(n, 3, &vec![0.5; 3 * n])?,
            iterates,
            shown,
            scratch: Scratch {
                rgb_grad: backend.zeros(n, 3)?,
                refine_hidden_grad: backend.zeros(n, width)?,
                hidden_grad: backend.zeros(n, width)?,
                carried_hidden_grad: backend.zeros(n, width)?,
                combined_grad: backend.zeros(n, STEP_INPUTS)?,
                carried_rgb_grad: backend.zeros(n, 3)?,
                rgb_columns: backend.upload(STEP_INPUTS, 3, &rgb_columns)?,
                zero_bias3: backend.zeros(1, 3)?,
                w_in: backend.zeros(STEP_INPUTS, width)?,
                b_in: backend.zeros(1, width)?,
                w_hh: backend.zeros(width, width)?,
                unused_bias: backend.zeros(1, width)?,
                w1: backend.zeros(width, width)?,
                b1: backend.zeros(1, width)?,
                w2: backend.zeros(width, 3)?,
                b2: backend.zeros(1, 3)?,
            },
            forward_is_current: false,
            updated: false,
            pixels: n,
            steps: p.get_usize(&TRAINING_STEPS),
            done: 0,
            cancel: setup.cancel.clone(),
        })
    }

    fn net(&self) -> Net<'_> {
        Net {
            w_in: &self.w_in.value,
            b_in: &self.b_in.value,
            w_hh: &self.w_hh.value,
            refine1: &self.refine1,
            refine2: &self.refine2,
        }
    }

    /// The K iterations with the current weights on the pixels it trains on, or (`shown`)
    /// under a mask on every pixel; cancelled between (and inside the recurrent products of)
    /// iterations, leaving the training pass marked stale.
    fn pass(&mut self, backend: &dyn Backend, shown: bool) -> Result<(), Cancelled> {
        let (coords, zero_rgb, iterates) = match (&mut self.shown, shown) {
            (Some(shown), true) => (&shown.coords, &shown.zero_rgb, &mut shown.iterates),
            (None, true) => return Ok(()),
            (_, false) => {
                self.forward_is_current = false;
                (&self.coords, &self.zero_rgb, &mut self.iterates)
            }
        };
        let net = Net {
            w_in: &self.w_in.value,
            b_in: &self.b_in.value,
            w_hh: &self.w_hh.value,
            refine1: &self.refine1,
            refine2: &self.refine2,
        };
        net.forward(backend, coords, zero_rgb, iterates, &self.cancel)?;
        if !shown {
            self.forward_is_current = true;
        }
        Ok(())
    }

    fn forward(&mut self, backend: &dyn Backend) -> Result<(), Cancelled> {
        self.pass(backend, false)
    }

    /// The iterations shown and scored: every pixel's.
    fn shown_iterates(&self) -> &[Iterate] {
        self.shown
            .as_ref()
            .map_or(&self.iterates, |shown| &shown.iterates)
    }

    /// Σ_k (k/K)·MSE_k of the current forward pass, and the last iterate's MSE.
    fn loss(&self, backend: &dyn Backend) -> (f64, f64) {
        let count = self.iterates.len();
        let mut loss = 0.0;
        let mut last = f64::NAN;
        for (k, iterate) in self.iterates.iter().enumerate() {
            last = backend.mse(&iterate.rgb, &self.target);
            loss += (k + 1) as f64 / count as f64 * last;
        }
        (loss, last)
    }

    /// Gradients of every parameter, backpropagated through all iterations.
    /// Cancelled between iterations; the partial sums are scratch, redone from the start.
    fn backward(&mut self, backend: &dyn Backend) -> Result<(), Cancelled> {
        let count = self.iterates.len();
        let s = &mut self.scratch;
        for k in (0..count).rev() {
            self.cancel.check()?;
            let first = k + 1 == count;
            let iterate = &self.iterates[k];
            let weight = (k + 1) as f32 / count as f32;
            backend.mse_grad(
                &iterate.rgb,
                &self.target,
                weight / (3 * self.pixels) as f32,
                &mut s.rgb_grad,
            );
            if !first {
                backend.axpy(1.0, &s.carried_rgb_grad, &mut s.rgb_grad);
            }
            backend.dense_backward(
                &iterate.refine_hidden,
                &self.refine2.weights.value,
                &iterate.rgb,
                &s.rgb_grad,
                Activation::Sigmoid,
                Some(&mut s.refine_hidden_grad),
                &mut s.w2,
                &mut s.b2,
            );
            backend.dense_backward(
                &iterate.hidden,
                &self.refine1.weights.value,
                &iterate.refine_hidden,
                &s.refine_hidden_grad,
                Activation::Relu,
                Some(&mut s.hidden_grad),
                &mut s.w1,
                &mut s.b1,
            );
            if !first {
                backend.axpy(1.0, &s.carried_hidden_grad, &mut s.hidden_grad);
            }
            // Both products into the tanh share dz = dh ⊙ (1 − h²).
            backend.dense_backward(
                &iterate.combined,
                &self.w_in.value,
                &iterate.hidden,
                &s.hidden_grad,
                Activation::Tanh,
                (k > 0).then_some(&mut s.combined_grad),
                &mut s.w_in,
                &mut s.b_in,
            );
            accumulate(backend, first, &s.w2, &mut self.refine2.weights.grad);
            accumulate(backend, first, &s.b2, &mut self.refine2.bias.grad);
            accumulate(backend, first, &s.w1, &mut self.refine1.weights.grad);
            accumulate(backend, first, &s.b1, &mut self.refine1.bias.grad);
            accumulate(backend, first, &s.w_in, &mut self.w_in.grad);
            accumulate(backend, first, &s.b_in, &mut self.b_in.grad);
            if k > 0 {
                let previous = &self.iterates[k - 1];
                backend.dense_backward(
                    &previous.hidden,
                    &self.w_hh.value,
                    &iterate.hidden,
                    &s.hidden_grad,
                    Activation::Tanh,
                    Some(&mut s.carried_hidden_grad),
                    &mut s.w_hh,
                    &mut s.unused_bias,
                );
                // h₀ = 0, so the last contribution to dW_hh comes from k = 1.
                accumulate(backend, first, &s.w_hh, &mut self.w_hh.grad);
                backend.dense_forward(
                    &s.combined_grad,
                    &s.rgb_columns,
                    &s.zero_bias3,
                    Activation::Identity,
                    &mut s.carried_rgb_grad,
                );
            }
        }
        Ok(())
    }

    /// Every parameter, in the order of [`PARAMETER_NAMES`].
    fn parameters(&self) -> [&Parameter; 7] {
        [
            &self.w_in,
            &self.b_in,
            &self.w_hh,
            &self.refine1.weights,
            &self.refine1.bias,
            &self.refine2.weights,
            &self.refine2.bias,
        ]
    }

    fn parameters_mut(&mut self) -> [&mut Parameter; 7] {
        [
            &mut self.w_in,
            &mut self.b_in,
            &mut self.w_hh,
            &mut self.refine1.weights,
            &mut self.refine1.bias,
            &mut self.refine2.weights,
            &mut self.refine2.bias,
        ]
    }

    fn named_parameters(&self) -> Vec<(String, &Parameter)> {
        PARAMETER_NAMES
            .iter()
            .map(|name| name.to_string())
            .zip(self.parameters())
            .collect()
    }

    fn update(&mut self, backend: &dyn Backend) {
        self.optimizer.begin_step();
        let optimizer = self.optimizer;
        optimizer.update(backend, &mut self.w_in);
        optimizer.update(backend, &mut self.b_in);
        optimizer.update(backend, &mut self.w_hh);
        self.refine1.update(backend, &optimizer);
        self.refine2.update(backend, &optimizer);
    }
}

/// The parameters' names, in the notebook's spelling (checkpoints, gradient checks).
const PARAMETER_NAMES: [&str; 7] = ["w_in", "b_in", "w_hh", "w1", "b1", "w2", "b2"];

/// Sums one iteration's gradient into a parameter's (the first one replaces it).
fn accumulate(backend: &dyn Backend, first: bool, part: &Tensor, total: &mut Tensor) {
    if first {
        backend.copy(part, total);
    } else {
        backend.axpy(1.0, part, total);
    }
}

impl Method for LearnedRefine {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn total_steps(&self) -> usize {
        self.steps
    }
    fn steps_done(&self) -> usize {
        self.done
    }

    fn step(&mut self, backend: &dyn Backend) -> anyhow::Result<StepReport> {
        anyhow::ensure!(
            !self.is_done(),
            "learned-refine has finished its {} steps",
            self.steps
        );
        if !self.updated {
            // The forward pass that reported the previous step holds this step's activations.
            if !self.forward_is_current {
                self.forward(backend)?;
            }
            self.backward(backend)?;
            // The commit: from here the step is this step, cancelled or not.
            self.update(backend);
            self.updated = true;
        }
        self.forward(backend)?;
        self.pass(backend, true)?;
        self.updated = false;
        let (loss, last_mse) = self.loss(backend);
        let last = &self
            .shown_iterates()
            .last()
            .expect("at least one iteration")
            .rgb;
        let (target, mid_grey) = match &self.shown {
            Some(shown) => (&shown.target, &shown.mid_grey),
            None => (&self.target, &self.mid_grey),
        };
        // Under a mask the loss is the training pixels'; PSNR and saturation every pixel's.
        let last_mse = if self.shown.is_some() {
            backend.mse(last, target)
        } else {
            last_mse
        };
        let saturation = 4.0 * backend.mse(last, mid_grey);
        self.done += 1;
        Ok(StepReport {
            step: self.done,
            label: format!("step {}", self.done),
            psnr_db: psnr_from_mse(last_mse),
            loss: Some(loss),
            saturation: Some(saturation),
            levels: Vec::new(),
            sparse: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        let last = self
            .shown_iterates()
            .last()
            .expect("at least one iteration");
        backend.download(&last.rgb)
    }

    /// The K iterations with the trained weights at other points.
    fn render(
        &self,
        backend: &dyn Backend,
        coords: &[f32],
        cancel: &CancelToken,
    ) -> Option<anyhow::Result<Vec<f32>>> {
        (self.done > 0).then(|| {
            let width = self.w_hh.value.cols();
            let count = self.iterates.len();
            render_in_blocks(coords, cancel, |block, rows| {
                let coords = backend.upload(rows, 2, block)?;
                let zero_rgb = backend.zeros(rows, 3)?;
                let mut iterates = Iterate::allocate(backend, rows, width, count)?;
                self.net()
                    .forward(backend, &coords, &zero_rgb, &mut iterates, cancel)?;
                let last = iterates.last().expect("at least one iteration");
                Ok(backend.download(&last.rgb))
            })
        })
    }

    fn keep_image(&self, step: usize) -> bool {
        is_milestone_step(step, self.steps)
    }

    fn iterates(&self, backend: &dyn Backend) -> Option<Vec<Vec<f32>>> {
        Some(
            self.shown_iterates()
                .iter()
                .map(|iterate| backend.download(&iterate.rgb))
                .collect(),
        )
    }

    fn features(&self) -> Option<&Tensor> {
        self.shown_iterates().last().map(|iterate| &iterate.hidden)
    }

    fn training_state(&self, backend: &dyn Backend) -> Option<TrainingState> {
        Some(TrainingState {
            step: self.done,
            optimizer_updates: self.optimizer.updates,
            tensors: (self.optimizer).state_tensors(backend, &self.named_parameters()),
            streams: Vec::new(),
            pending_step: self.updated.then(Vec::new),
        })
    }

    fn restore(&mut self, backend: &dyn Backend, state: &TrainingState) -> anyhow::Result<()> {
        state.check(&StateLayout {
            method: INFO.name,
            total_steps: self.steps,
            tensors: self.optimizer.state_layout(&self.named_parameters()),
            streams: &[],
            pending_len: Some(0),
        })?;
        let mut optimizer = self.optimizer;
        let names = PARAMETER_NAMES.iter().map(|name| name.to_string());
        optimizer.restore(backend, names.zip(self.parameters_mut()).collect(), state);
        self.optimizer = optimizer;
        self.done = state.step;
        self.updated = state.pending_step.is_some();
        self.forward_is_current = false;
        Ok(())
    }
}

/// Hooks for the gradient checks in tests (the `testing` feature).
#[cfg(feature = "testing")]
impl LearnedRefine {
    /// Gradients of the loss for the current weights, for gradient checks: (name, values) of
    /// every parameter, after a fresh forward and backward pass.
    pub fn gradients(&mut self, backend: &dyn Backend) -> (f64, Vec<(&'static str, Vec<f32>)>) {
        self.forward(backend)
            .expect("nothing cancels a gradient check");
        let (loss, _) = self.loss(backend);
        self.backward(backend)
            .expect("nothing cancels a gradient check");
        let grads = PARAMETER_NAMES
            .into_iter()
            .zip(self.parameters())
            .map(|(name, parameter)| (name, backend.download(&parameter.grad)))
            .collect();
        (loss, grads)
    }

    /// Loss after adding `delta` to element `index` of parameter `name` (then restoring it).
    pub fn loss_with_nudge(
        &mut self,
        backend: &dyn Backend,
        name: &str,
        index: usize,
        delta: f32,
    ) -> f64 {
        let index_of = PARAMETER_NAMES.iter().position(|n| *n == name);
        let Some(parameter) = index_of else {
            panic!("no parameter {name}")
        };
        let tensor = &mut (self.parameters_mut().into_iter().nth(parameter))
            .expect("a parameter")
            .value;
        let original = backend.download(tensor);
        let mut nudged = original.clone();
        nudged[index] += delta;
        backend.write(tensor, &nudged);
        self.forward(backend)
            .expect("nothing cancels a gradient check");
        let (loss, _) = self.loss(backend);
        let tensor = &mut (self.parameters_mut().into_iter().nth(parameter))
            .expect("a parameter")
            .value;
        backend.write(tensor, &original);
        self.forward_is_current = false;
        loss
    }
}
