//! Approach 3 of the reservoir notebook: iterative output refinement, diffusion-like.
//!
//! Each iteration feeds `[x, y, current estimate]` (5 wide) into the reservoir, fits a ridge
//! readout of the new state, and feeds the clipped estimate back in.
//!
//! Every pixel's recurrence is its own, so under a mask the training pixels run the same
//! recurrence as a second, smaller stream: the readout is fitted on their states and applied to
//! both streams. Keeping each iteration's readout lets the model be evaluated anywhere.

use super::memory::{Tally, reservoir, reservoir_step_flops, ridge_fit};
use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, LAMBDA, SEED, SPECTRAL_RADIUS};
use super::readout::fit_ridge_on;
use super::reservoir::{Reservoir, ReservoirSpec};
use super::{
    MemoryEstimate, Method, MethodInfo, ParamSpec, ParamValues, Setup, StepReport, clipped_psnr,
    render_in_blocks,
};
use crate::compute::{Backend, CancelToken, Tensor};

const REFINE_SPECTRAL_RADIUS: ParamSpec = ParamSpec {
    default: 0.9,
    ..SPECTRAL_RADIUS
};
pub const ITERATIONS: ParamSpec = ParamSpec::integer(
    "steps",
    "iterations",
    "How many refinement iterations; each sees the previous estimate.",
    10.0,
    1.0,
    200.0,
);

const PARAMS: &[ParamSpec] = &[
    HIDDEN,
    REFINE_SPECTRAL_RADIUS,
    ITERATIONS,
    LAMBDA,
    INPUT_SCALE,
    BIAS_SCALE,
    SEED,
];

pub const INFO: MethodInfo = MethodInfo {
    name: "refine",
    title: "Iterative refinement",
    summary: "The reservoir sees coordinates and its own last estimate, and refines it each iteration.",
    estimate,
    params: PARAMS,
    default_on: true,
    steps_are_scales: false,
    has_levels: false,
    trains_on_folder: false,
    resumable: false,
    fits_observed_pixels: true,
    create: |setup| Ok(Box::new(Refine::new(setup)?)),
};

/// Two state buffers (they swap), each ending up with an f64 copy on the CPU backend, and one
/// ridge fit at a time.
fn estimate(p: &ParamValues, size: usize) -> MemoryEstimate {
    let (n, h) = (size * size, p.get_usize(&HIDDEN));
    let mut tally = Tally::new();
    reservoir(&mut tally, 5, h);
    tally
        .tensor(n, 2)
        .tensors(2, n, 3)
        .tensor(n, 5)
        .tensors(2, n, h)
        .gram_input(n, h)
        .gram_input(n, h)
        .gram_input(n, 3)
        .flops(reservoir_step_flops(n, 5, h));
    ridge_fit(&mut tally, n, h, 3);
    tally.finish()
}

/// One set of pixels running the recurrence: its coordinates, its input, its states and its
/// estimate.
struct Stream {
    coords: Tensor,
    /// `[x, y, r, g, b]`, rebuilt from the estimate each iteration.
    input: Tensor,
    state: Tensor,
    next_state: Tensor,
    estimate: Tensor,
}

impl Stream {
    fn new(backend: &dyn Backend, coords: &[f32], hidden: usize) -> anyhow::Result<Self> {
        let n = coords.len() / 2;
        Ok(Stream {
            coords: backend.upload(n, 2, coords)?,
            input: backend.zeros(n, 5)?,
            state: backend.zeros(n, hidden)?,
            next_state: backend.zeros(n, hidden)?,
            estimate: backend.zeros(n, 3)?,
        })
    }

    /// The reservoir's next state from the coordinates and the current estimate, into
    /// `next_state` (the state itself is replaced only by [`Self::commit`]).
    fn advance(
        &mut self,
        backend: &dyn Backend,
        reservoir: &Reservoir,
        first: bool,
        cancel: &CancelToken,
    ) -> Result<(), crate::compute::Cancelled> {
        backend.concat_cols(&[&self.coords, &self.estimate], &mut self.input);
        let previous = (!first).then_some(&self.state);
        reservoir.step(backend, &self.input, previous, &mut self.next_state, cancel)
    }

    fn commit(&mut self) {
        std::mem::swap(&mut self.state, &mut self.next_state);
    }
}

pub struct Refine {
    reservoir: Reservoir,
    /// Every pixel: what is shown and scored.
    all: Stream,
    target: Tensor,
    /// Under a mask, the pixels the readout is fitted on, and their values.
    training: Option<(Stream, Tensor)>,
    /// Each iteration's readout, for evaluating the model anywhere.
    readouts: Vec<Vec<f64>>,
    lambda: f64,
    iterations: usize,
    done: usize,
    cancel: CancelToken,
}

impl Refine {
    pub fn new(setup: &Setup) -> anyhow::Result<Self> {
        let p = setup.params;
        let backend = setup.backend;
        let n = setup.target.pixel_count();
        let spec = ReservoirSpec::from_params(setup, 5, &REFINE_SPECTRAL_RADIUS);
        let hidden = spec.hidden;
        let reservoir = Reservoir::new(setup.cache, backend, &spec)?;
        let training = match setup.target.training_pixels() {
            Some(pixels) => {
                let (coords, values) = setup.target.training_set();
                let values = backend.upload(pixels.len(), 3, &values)?;
                Some((Stream::new(backend, &coords, hidden)?, values))
            }
            None => None,
        };
        Ok(Refine {
            reservoir,
            all: Stream::new(backend, &setup.target.coords(), hidden)?,
            target: backend.upload(n, 3, &setup.target.pixels)?,
            training,
            readouts: Vec::new(),
            lambda: p.get(&LAMBDA),
            iterations: p.get_usize(&ITERATIONS),
            done: 0,
            cancel: setup.cancel.clone(),
        })
    }
}

impl Method for Refine {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn total_steps(&self) -> usize {
        self.iterations
    }
    fn steps_done(&self) -> usize {
        self.done
    }

    fn step(&mut self, backend: &dyn Backend) -> anyhow::Result<StepReport> {
        anyhow::ensure!(
            !self.is_done(),
            "refine has finished its {} iterations",
            self.iterations
        );
        let first = self.done == 0;
        self.all
            .advance(backend, &self.reservoir, first, &self.cancel)?;
        if let Some((training, _)) = &mut self.training {
            training.advance(backend, &self.reservoir, first, &self.cancel)?;
        }
        // The new states are fitted before they replace the old ones, so a cancellation
        // anywhere up to here leaves this iteration undone and the next call redoes it.
        let (fitted, values) = match &self.training {
            Some((training, values)) => (&training.next_state, values),
            None => (&self.all.next_state, &self.target),
        };
        let readout = fit_ridge_on(
            backend,
            fitted,
            values,
            self.lambda,
            &self.all.next_state,
            &mut self.all.estimate,
            &self.cancel,
        )?;
        if let Some((training, _)) = &mut self.training {
            backend.readout(&[&training.next_state], &readout, &mut training.estimate);
            backend.clip(&mut training.estimate, 0.0, 1.0);
            training.commit();
        }
        self.all.commit();
        self.readouts.push(readout);
        self.done += 1;
        Ok(StepReport {
            step: self.done,
            label: format!("iteration {}", self.done),
            // Clipping here is also what the next iteration sees, as in the notebook.
            psnr_db: clipped_psnr(backend, &mut self.all.estimate, &self.target),
            loss: None,
            saturation: None,
            levels: Vec::new(),
            sparse: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        backend.download(&self.all.estimate)
    }

    /// The same iterations with the same readouts at other points.
    fn render(
        &self,
        backend: &dyn Backend,
        coords: &[f32],
        cancel: &CancelToken,
    ) -> Option<anyhow::Result<Vec<f32>>> {
        (self.done > 0).then(|| {
            let hidden = self.all.state.cols();
            render_in_blocks(coords, cancel, |block, _| {
                let mut stream = Stream::new(backend, block, hidden)?;
                for (k, readout) in self.readouts.iter().enumerate() {
                    stream.advance(backend, &self.reservoir, k == 0, cancel)?;
                    stream.commit();
                    backend.readout(&[&stream.state], readout, &mut stream.estimate);
                    backend.clip(&mut stream.estimate, 0.0, 1.0);
                }
                Ok(backend.download(&stream.estimate))
            })
        })
    }

    fn features(&self) -> Option<&Tensor> {
        (self.done > 0).then_some(&self.all.state)
    }
}
