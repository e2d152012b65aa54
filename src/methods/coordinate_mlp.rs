//! The trained coordinate network behind [`super::fourier_mlp`] (on random Fourier features
//! γ(x) = [sin 2πxB, cos 2πxB], seed 002's network) and [`super::coord_mlp`] (on the raw
//! coordinates, the spectral-bias demonstration), and the parameters both spell alike. One
//! optimizer step per refinement step.
//!
//! Full batch by default: the encoded grid is made once and every step is forward, backward and
//! update on the backend. With a mini-batch or coordinate jitter, each step draws fresh pixels or
//! sub-pixel offsets on the host (a few floats a pixel go up), and the image shown is the network
//! evaluated on the exact pixel grid.

use super::memory::Tally;
use super::params::ChoiceOption;
use super::training::{
    Mlp, MlpBuffers, OPTIMIZER, Optimizer, OptimizerKind, SEED, TRAINING_STEPS, is_milestone_step,
    learning_rate, mlp_widths,
};
use super::training_state::StateLayout;
use super::{
    MemoryEstimate, Method, ParamSpec, ParamValues, Setup, StepReport, TrainingState,
    psnr_from_mse, render_in_blocks,
};
use crate::compute::{Backend, CancelToken, Tensor};
use crate::rng::{NumpyRandomState, normal_source};

pub const WIDTH_1: ParamSpec = ParamSpec::integer(
    "width-1",
    "hidden width 1",
    "Units of the first hidden layer.",
    128.0,
    1.0,
    2048.0,
);
pub const WIDTH_2: ParamSpec = ParamSpec::integer(
    "width-2",
    "hidden width 2",
    "Units of the second hidden layer; 0 removes it (and the third).",
    256.0,
    0.0,
    2048.0,
);
pub const WIDTH_3: ParamSpec = ParamSpec::integer(
    "width-3",
    "hidden width 3",
    "Units of a third hidden layer; 0 (the default) leaves it out.",
    0.0,
    0.0,
    2048.0,
);
pub const BATCH: ParamSpec = ParamSpec::integer(
    "batch",
    "mini-batch pixels",
    "Random pixels per step (drawn afresh every step); 0 trains on every pixel (full batch).",
    0.0,
    0.0,
    1_048_576.0,
);
pub const JITTER: ParamSpec = ParamSpec::choice(
    "jitter",
    "coordinate jitter",
    "on: every step moves each training coordinate by a fresh random sub-pixel offset, so the \
     network learns a continuous field rather than a lookup of pixel centres (seed 004).",
    &["off", "on"],
    0,
);

/// What the network sees of a coordinate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Encoding {
    /// γ(x) with `frequencies` random frequencies of standard deviation `scale`.
    Fourier { frequencies: usize, scale: f64 },
    /// Tancik et al.'s "basic" mapping [sin 2πx, sin 2πy, cos 2πx, cos 2πy]: B = I.
    Basic,
    /// (x, y) as they are.
    Raw,
}

/// Coordinate jitter ([`JITTER`]'s options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    Off,
    On,
}

impl ChoiceOption for Jitter {
    const ALL: &'static [Self] = &[Jitter::Off, Jitter::On];
    fn name(self) -> &'static str {
        match self {
            Jitter::Off => "off",
            Jitter::On => "on",
        }
    }
}

/// Per-step training data when it is not the fixed full grid.
struct Sampler {
    /// Pixels per step; `None` for every pixel in order (jitter only).
    batch: Option<usize>,
    jitter: bool,
    rng: NumpyRandomState,
    /// The stream as the step in progress found it: a checkpoint taken after this step's draw
    /// (the step was cancelled) records this, so the resumed step draws the same batch.
    step_start: NumpyRandomState,
    grid_coords: Vec<f32>,
    grid_target: Vec<f32>,
    size: usize,
    host_coords: Vec<f32>,
    host_target: Vec<f32>,
    coords: Tensor,
    input: Tensor,
    target: Tensor,
    buffers: MlpBuffers,
    /// Whether the (encoded) pool is on the backend already: with neither a mini-batch nor
    /// jitter (a mask's pixels, full batch) every step trains on the same rows, so they are
    /// put there and encoded once.
    fixed_and_drawn: bool,
}

impl Sampler {
    /// Draws this step's pixels and offsets and puts them on the backend.
    fn draw(&mut self, backend: &dyn Backend, frequencies: Option<&Tensor>) {
        if self.fixed_and_drawn {
            return;
        }
        self.fixed_and_drawn = self.batch.is_none() && !self.jitter;
        self.step_start = self.rng.clone();
        let rows = self.coords.rows();
        let pixels = self.grid_coords.len() / 2;
        for row in 0..rows {
            let pixel = match self.batch {
                Some(_) => ((self.rng.uniform() * pixels as f64) as usize).min(pixels - 1),
                None => row,
            };
            for axis in 0..2 {
                let mut value = self.grid_coords[2 * pixel + axis];
                if self.jitter {
                    // Uniform within the pixel's footprint, centred on its grid coordinate:
                    // coordinate u stands for the physical point u + 1/(2S) (see
                    // `target::rendering_grid`), so ±½ pixel around u is the pixel itself.
                    value += ((self.rng.uniform() - 0.5) / self.size as f64) as f32;
                }
                self.host_coords[2 * row + axis] = value;
            }
            self.host_target[3 * row..3 * row + 3]
                .copy_from_slice(&self.grid_target[3 * pixel..3 * pixel + 3]);
        }
        backend.write(&mut self.target, &self.host_target);
        match frequencies {
            Some(frequencies) => {
                backend.write(&mut self.coords, &self.host_coords);
                backend.fourier_encode(&self.coords, frequencies, &mut self.input);
            }
            None => backend.write(&mut self.input, &self.host_coords),
        }
    }
}

/// Checkpoint names: the network's parameters, and the stream mini-batches and jitter draw from.
const NETWORK: &str = "network";
const MINI_BATCH_STREAM: &str = "mini-batch";

/// The trained coordinate network behind `fourier-mlp` and `coord-mlp`.
pub struct CoordinateMlp {
    name: &'static str,
    network: Mlp,
    optimizer: Optimizer,
    /// B (2×m) for the Fourier encoding.
    frequencies: Option<Tensor>,
    /// The network's input on the pixel grid: γ(grid) or the grid itself.
    grid_input: Tensor,
    target: Tensor,
    /// Activations on the grid; with gradients when the grid is also the training batch.
    grid: MlpBuffers,
    /// ½ everywhere, to measure how saturated the prediction is.
    mid_grey: Tensor,
    /// Whether `grid` holds the current weights' forward pass.
    grid_is_current: bool,
    sampler: Option<Sampler>,
    pixels: usize,
    steps: usize,
    done: usize,
    cancel: CancelToken,
    /// This step's mini-batch is drawn (a cancelled step must not draw again: the random
    /// stream would move on).
    batch_drawn: bool,
    /// The weights of step `done + 1` are updated but its report is not made yet; with the
    /// batch loss measured before the update.
    updated: Option<Option<f64>>,
}

impl CoordinateMlp {
    /// The network of method `name` (its registry name) on `encoding`.
    pub fn new(setup: &Setup, name: &'static str, encoding: Encoding) -> anyhow::Result<Self> {
        let p = setup.params;
        let backend = setup.backend;
        let target = setup.target;
        let n = target.pixel_count();
        let seed = p.get(&SEED) as u64;
        let grid_coords = target.coords();
        let coords = backend.upload(n, 2, &grid_coords)?;
        // Frequencies first, as the seed draws B before building the model.
        let (frequencies, grid_input) = match encoding {
            Encoding::Fourier {
                frequencies: m,
                scale: sigma,
            } => {
                let draws = normal_source(setup.rng, seed).standard_normals(2 * m);
                // B = randn(2, m)·σ, stored 2×m for x·B.
                let b: Vec<f32> = draws.iter().map(|&d| (d * sigma) as f32).collect();
                let frequencies = backend.upload(2, m, &b)?;
                let mut features = backend.zeros(n, 2 * m)?;
                backend.fourier_encode(&coords, &frequencies, &mut features);
                (Some(frequencies), features)
            }
            Encoding::Basic => {
                let frequencies = backend.upload(2, 2, &[1.0, 0.0, 0.0, 1.0])?;
                let mut features = backend.zeros(n, 4)?;
                backend.fourier_encode(&coords, &frequencies, &mut features);
                (Some(frequencies), features)
            }
            Encoding::Raw => (None, coords),
        };
        let inputs = grid_input.cols();
        let hidden = hidden_widths(p);
        let mut init_rng = NumpyRandomState::new(seed.wrapping_add(1) as u32);
        let network = Mlp::new(backend, &mut init_rng, &mlp_widths(inputs, &hidden))?;
        let kind: OptimizerKind = p.get_option(&OPTIMIZER)?;
        let optimizer = Optimizer::new(kind, learning_rate(p));
        let batch = p.get_usize(&BATCH);
        let jitter = p.get_option::<Jitter>(&JITTER)? == Jitter::On;
        // Seen through a mask, it trains on the training share of the observed pixels only
        // (the sampler's pool) and renders the whole grid.
        let masked = target.training_pixels().is_some();
        let sampler = (batch > 0 || jitter || masked)
            .then(|| -> anyhow::Result<Sampler> {
                let (pool_coords, pool_target) = target.training_set();
                let rows = if batch > 0 {
                    batch
                } else {
                    pool_coords.len() / 2
                };
                let rng = NumpyRandomState::new(seed.wrapping_add(2) as u32);
                Ok(Sampler {
                    batch: (batch > 0).then_some(batch),
                    jitter,
                    step_start: rng.clone(),
                    rng,
                    grid_coords: pool_coords,
                    grid_target: pool_target,
                    size: target.size,
                    host_coords: vec![0.0; 2 * rows],
                    host_target: vec![0.0; 3 * rows],
                    coords: backend.zeros(rows, 2)?,
                    input: backend.zeros(rows, inputs)?,
                    target: backend.zeros(rows, 3)?,
                    buffers: network.buffers(backend, rows, true)?,
                    fixed_and_drawn: false,
                })
            })
            .transpose()?;
        let grid = network.buffers(backend, n, sampler.is_none())?;
        Ok(CoordinateMlp {
            name,
            network,
            optimizer,
            frequencies,
            grid_input,
            target: backend.upload(n, 3, &target.pixels)?,
            mid_grey: backend.upload(n, 3, &vec![0.5; 3 * n])?,
            grid,
            grid_is_current: false,
            sampler,
            pixels: n,
            steps: p.get_usize(&TRAINING_STEPS),
            done: 0,
            cancel: setup.cancel.clone(),
            batch_drawn: false,
            updated: None,
        })
    }
}

/// Every layer's weights with gradient and two moments, its activations on the grid (with their
/// gradients when the grid is the batch), and with a mini-batch or jitter the same again for
/// the batch plus host copies of the grid to draw from.
/// `frequencies`: the Fourier encoding's m, `None` for raw coordinates.
pub fn estimate(p: &ParamValues, size: usize, frequencies: Option<usize>) -> MemoryEstimate {
    let n = size * size;
    let m = frequencies.unwrap_or(0);
    let inputs = match frequencies {
        Some(m) => m.saturating_mul(2),
        None => 2,
    };
    let widths = mlp_widths(inputs, &hidden_widths(p));
    let layers: Vec<(usize, usize)> = widths.windows(2).map(|w| (w[0], w[1])).collect();
    let batch = p.get_usize(&BATCH);
    let sampled = batch > 0
        || p.get_option::<Jitter>(&JITTER)
            .is_ok_and(|j| j == Jitter::On);
    let rows = if batch > 0 { batch } else { n };
    let mut tally = Tally::new();
    tally
        .tensor(n, 2)
        .tensors(2, n, 3)
        .host_f32(n.saturating_mul(5));
    if frequencies.is_some() {
        tally.tensor(2, m).tensor(n, inputs);
    }
    let mut products = 0.0;
    let threads = rayon::current_num_threads();
    for &(fan_in, fan_out) in &layers {
        let weights = fan_in.saturating_mul(fan_out);
        tally
            .tensors(4, fan_in, fan_out)
            .tensors(4, 1, fan_out)
            .tensors(if sampled { 1 } else { 2 }, n, fan_out)
            // Initial values, and the backward pass's per-thread partial weight gradients.
            .host_f32(weights.saturating_mul(threads + 1))
            .buffer(((fan_in + 16) * (fan_out + 16) + 65_536) as u64 * 4);
        products += weights as f64;
    }
    if sampled {
        tally
            .tensor(rows, 2)
            .tensor(rows, inputs)
            .tensor(rows, 3)
            .host_f32(n.saturating_mul(5))
            .host_f32(rows.saturating_mul(5));
        for &(_, fan_out) in &layers {
            tally.tensors(2, rows, fan_out);
        }
    }
    // Forward, backward (two products) and the grid's forward again.
    let trained_rows = if sampled { rows } else { n };
    tally.flops(2.0 * products * (3.0 * trained_rows as f64 + n as f64));
    if frequencies.is_some() {
        tally.flops(20.0 * (n * inputs) as f64);
    }
    tally.finish()
}

/// The hidden layers' widths; a zero width ends the stack.
pub fn hidden_widths(p: &super::ParamValues) -> Vec<usize> {
    let mut widths = vec![p.get_usize(&WIDTH_1)];
    for spec in [&WIDTH_2, &WIDTH_3] {
        match p.get_usize(spec) {
            0 => break,
            width => widths.push(width),
        }
    }
    widths
}

impl Method for CoordinateMlp {
    fn name(&self) -> &'static str {
        self.name
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
            "{} has finished its {} steps",
            self.name,
            self.steps
        );
        // Cancellation is checked between the phases; nothing is committed before the update,
        // and a step cancelled after it finishes with its report on the next call.
        let cancel = self.cancel.clone();
        if self.updated.is_none() {
            let loss = match &mut self.sampler {
                Some(sampler) => {
                    if !self.batch_drawn {
                        sampler.draw(backend, self.frequencies.as_ref());
                        self.batch_drawn = true;
                    }
                    cancel.check()?;
                    self.network
                        .forward(backend, &sampler.input, &mut sampler.buffers);
                    let (prediction, grad) = sampler.buffers.prediction_and_grad();
                    let loss = backend.mse(prediction, &sampler.target);
                    let scale = 1.0 / prediction.len() as f32;
                    backend.mse_grad(prediction, &sampler.target, scale, grad);
                    cancel.check()?;
                    self.network
                        .backward(backend, &sampler.input, &mut sampler.buffers);
                    Some(loss)
                }
                None => {
                    // The forward pass that reported the previous step is this step's: its
                    // activations are still there for the backward pass.
                    if !self.grid_is_current {
                        self.network
                            .forward(backend, &self.grid_input, &mut self.grid);
                        self.grid_is_current = true;
                    }
                    cancel.check()?;
                    let (prediction, grad) = self.grid.prediction_and_grad();
                    let scale = 1.0 / (3 * self.pixels) as f32;
                    backend.mse_grad(prediction, &self.target, scale, grad);
                    self.network
                        .backward(backend, &self.grid_input, &mut self.grid);
                    None
                }
            };
            cancel.check()?;
            // The commit.
            self.optimizer.begin_step();
            self.network.update(backend, &self.optimizer);
            self.updated = Some(loss);
            self.batch_drawn = false;
            self.grid_is_current = false;
        }
        self.network
            .forward(backend, &self.grid_input, &mut self.grid);
        cancel.check()?;
        self.grid_is_current = true;
        let loss = self.updated.take().flatten();
        // The PSNR (and, full batch, the loss) of the weights after this step's update.
        // Both scalars come back with one wait for the device.
        let [mse, to_mid_grey] = backend.mses(&[
            (self.grid.prediction(), &self.target),
            (self.grid.prediction(), &self.mid_grey),
        ])[..] else {
            unreachable!("one value per pair")
        };
        let saturation = 4.0 * to_mid_grey;
        self.done += 1;
        Ok(StepReport {
            step: self.done,
            label: format!("step {}", self.done),
            psnr_db: psnr_from_mse(mse),
            loss: Some(loss.unwrap_or(mse)),
            saturation: Some(saturation),
            levels: Vec::new(),
            sparse: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        backend.download(self.grid.prediction())
    }

    fn image_tensor(&self) -> Option<&Tensor> {
        Some(self.grid.prediction())
    }

    fn keep_image(&self, step: usize) -> bool {
        is_milestone_step(step, self.steps)
    }

    fn features(&self) -> Option<&Tensor> {
        self.frequencies.as_ref().map(|_| &self.grid_input)
    }

    fn render(
        &self,
        backend: &dyn Backend,
        coords: &[f32],
        cancel: &CancelToken,
    ) -> Option<anyhow::Result<Vec<f32>>> {
        Some(render_in_blocks(coords, cancel, |block, rows| {
            let coords = backend.upload(rows, 2, block)?;
            let input = match &self.frequencies {
                Some(frequencies) => {
                    let mut features = backend.zeros(rows, frequencies.cols() * 2)?;
                    backend.fourier_encode(&coords, frequencies, &mut features);
                    features
                }
                None => coords,
            };
            let mut buffers = self.network.buffers(backend, rows, false)?;
            self.network.forward(backend, &input, &mut buffers);
            Ok(backend.download(buffers.prediction()))
        }))
    }

    fn training_state(&self, backend: &dyn Backend) -> Option<TrainingState> {
        let streams = (self.sampler.iter())
            .map(|sampler| {
                let stream = if self.batch_drawn {
                    &sampler.step_start
                } else {
                    &sampler.rng
                };
                (MINI_BATCH_STREAM.to_owned(), stream.state())
            })
            .collect();
        let parameters = self.network.named_parameters(NETWORK);
        Some(TrainingState {
            step: self.done,
            optimizer_updates: self.optimizer.updates,
            tensors: self.optimizer.state_tensors(backend, &parameters),
            streams,
            pending_step: self.updated.map(|loss| loss.into_iter().collect()),
        })
    }

    fn restore(&mut self, backend: &dyn Backend, state: &TrainingState) -> anyhow::Result<()> {
        let sampled = self.sampler.is_some();
        let streams: &[&str] = if sampled { &[MINI_BATCH_STREAM] } else { &[] };
        state.check(&StateLayout {
            method: self.name,
            total_steps: self.steps,
            tensors: (self.optimizer).state_layout(&self.network.named_parameters(NETWORK)),
            streams,
            // A mini-batch step's report carries the batch loss measured before its update.
            pending_len: Some(sampled as usize),
        })?;
        let stream = sampled
            .then(|| state.stream(MINI_BATCH_STREAM))
            .transpose()?;
        // Everything is checked: from here nothing fails.
        let parameters = self.network.named_parameters_mut(NETWORK);
        self.optimizer.restore(backend, parameters, state);
        if let (Some(sampler), Some(stream)) = (&mut self.sampler, stream) {
            sampler.step_start = stream.clone();
            sampler.rng = stream;
        }
        self.done = state.step;
        self.updated = (state.pending_step.as_ref()).map(|values| values.first().copied());
        self.batch_drawn = false;
        self.grid_is_current = false;
        Ok(())
    }

    fn feature_label(&self, index: usize) -> String {
        let m = self.grid_input.cols() / 2;
        if index < m {
            format!("sin {index}")
        } else {
            format!("cos {}", index - m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::ParamValues;

    #[test]
    fn every_jitter_option_is_a_jitter_setting() {
        assert_eq!(Jitter::ALL.len(), JITTER.choices.len());
        for (index, name) in JITTER.choices.iter().enumerate() {
            let mut values = ParamValues::new();
            values.set(JITTER.name, index as f64);
            let jitter: Jitter = values.get_option(&JITTER).unwrap();
            assert_eq!(jitter.name(), *name);
        }
        assert_eq!(
            ParamValues::new().get_option::<Jitter>(&JITTER).unwrap(),
            Jitter::Off
        );
    }
}
