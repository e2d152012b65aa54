//! Approach 3 of the reservoir notebook: iterative output refinement, diffusion-like.
//!
//! Each iteration feeds `[x, y, current estimate]` (5 wide) into the reservoir, fits a ridge
//! readout of the new state, and feeds the clipped estimate back in.

use super::memory::{Tally, reservoir, reservoir_step_flops, ridge_fit};
use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, LAMBDA, SEED, SPECTRAL_RADIUS};
use super::readout::fit_ridge;
use super::reservoir::{Reservoir, ReservoirSpec};
use super::{
    MemoryEstimate, Method, MethodInfo, ParamSpec, ParamValues, Setup, StepReport, clipped_psnr,
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
    fits_observed_pixels: false,
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

pub struct Refine {
    reservoir: Reservoir,
    coords: Tensor,
    target: Tensor,
    /// `[x, y, r, g, b]`, rebuilt from the estimate each iteration.
    input: Tensor,
    state: Tensor,
    next_state: Tensor,
    estimate: Tensor,
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
        Ok(Refine {
            reservoir,
            coords: backend.upload(n, 2, &setup.target.coords())?,
            target: backend.upload(n, 3, &setup.target.pixels)?,
            input: backend.zeros(n, 5)?,
            state: backend.zeros(n, hidden)?,
            next_state: backend.zeros(n, hidden)?,
            estimate: backend.zeros(n, 3)?,
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
        backend.concat_cols(&[&self.coords, &self.estimate], &mut self.input);
        let previous = (self.done > 0).then_some(&self.state);
        self.reservoir.step(
            backend,
            &self.input,
            previous,
            &mut self.next_state,
            &self.cancel,
        )?;
        // The new state is fitted before it replaces the old one, so a cancellation anywhere
        // up to here leaves this iteration undone and the next call redoes it.
        fit_ridge(
            backend,
            &self.next_state,
            &self.target,
            self.lambda,
            &mut self.estimate,
            &self.cancel,
        )?;
        std::mem::swap(&mut self.state, &mut self.next_state);
        self.done += 1;
        Ok(StepReport {
            step: self.done,
            label: format!("iteration {}", self.done),
            // Clipping here is also what the next iteration sees, as in the notebook.
            psnr_db: clipped_psnr(backend, &mut self.estimate, &self.target),
            loss: None,
            saturation: None,
            levels: Vec::new(),
            sparse: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        backend.download(&self.estimate)
    }

    fn features(&self) -> Option<&Tensor> {
        (self.done > 0).then_some(&self.state)
    }
}
