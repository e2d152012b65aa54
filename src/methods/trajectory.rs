//! Approach 1 of the reservoir notebook: the image at every step of one reservoir trajectory.
//!
//! `H₀ = 0`, `H_k = tanh(X·W_in + H_{k−1}·W_hh + b)`; each step gets its own ridge readout, so the
//! row of images shows what the reservoir state can express after k steps.

use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, LAMBDA, SEED, SPECTRAL_RADIUS};
use std::sync::Arc;

use super::memory::{Tally, reservoir, reservoir_step_flops, ridge_fit};
use super::readout::{clipped_readout, predict_from_gram};
use super::reservoir::ReservoirSpec;
use super::shared_trajectory::TrajectoryHandle;
use super::{
    MemoryEstimate, Method, MethodInfo, ParamSpec, ParamValues, Setup, StepReport, clipped_psnr,
    render_in_blocks,
};
use crate::compute::{Backend, CancelToken, Tensor};

pub const STEPS: ParamSpec = ParamSpec::integer(
    "steps",
    "steps K",
    "How many reservoir steps to unroll; one image per step.",
    10.0,
    1.0,
    200.0,
);

const PARAMS: &[ParamSpec] = &[
    HIDDEN,
    SPECTRAL_RADIUS,
    STEPS,
    LAMBDA,
    INPUT_SCALE,
    BIAS_SCALE,
    SEED,
];

pub const INFO: MethodInfo = MethodInfo {
    name: "trajectory",
    title: "Reservoir trajectory",
    summary: "One reservoir unrolled over K steps; a ridge readout of each step's state.",
    estimate,
    params: PARAMS,
    default_on: true,
    steps_are_scales: false,
    has_levels: false,
    trains_on_folder: false,
    resumable: false,
    fits_observed_pixels: true,
    create: |setup| Ok(Box::new(Trajectory::new(setup)?)),
};

/// The shared trajectory keeps every step's Gram block and, alone, two states (the latest and
/// the one being made), each with its f64 copy on the CPU backend.
fn estimate(p: &ParamValues, size: usize) -> MemoryEstimate {
    let (n, h, steps) = (size * size, p.get_usize(&HIDDEN), p.get_usize(&STEPS));
    let mut tally = Tally::new();
    reservoir(&mut tally, 2, h);
    tally
        .tensor(n, 2)
        .tensors(2, n, 3)
        // The previous and the next state with their f64 copies while the next is made, and
        // the state's copy the f64 readout makes.
        .tensors(2, n, h)
        .gram_input(n, h)
        .gram_input(n, h)
        .gram_input(n, h)
        .gram_input(n, 3)
        .host_f64(steps.saturating_mul(h.saturating_mul(h + 3)))
        .flops(reservoir_step_flops(n, 2, h));
    ridge_fit(&mut tally, n, h, 3);
    tally.finish()
}

pub struct Trajectory {
    trajectory: TrajectoryHandle,
    /// The latest state (also held by the shared trajectory while a reader needs it).
    state: Option<Arc<Tensor>>,
    prediction: Tensor,
    /// The latest step's readout (hidden × 3, row-major f64), for renderings elsewhere.
    weights: Vec<f64>,
    lambda: f64,
    steps: usize,
    done: usize,
    cancel: CancelToken,
}

impl Trajectory {
    pub fn new(setup: &Setup) -> anyhow::Result<Self> {
        let p = setup.params;
        let n = setup.target.pixel_count();
        let spec = ReservoirSpec::from_params(setup, 2, &SPECTRAL_RADIUS);
        Ok(Trajectory {
            trajectory: TrajectoryHandle::attach(setup, &spec, 0)?,
            state: None,
            prediction: setup.backend.zeros(n, 3)?,
            weights: Vec::new(),
            lambda: p.get(&LAMBDA),
            steps: p.get_usize(&STEPS),
            done: 0,
            cancel: setup.cancel.clone(),
        })
    }
}

impl Method for Trajectory {
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
            "trajectory has finished its {} steps",
            self.steps
        );
        let k = self.done + 1;
        let mut trajectory = self.trajectory.lock();
        trajectory.extend_to(backend, k, &self.cancel)?;
        let state = trajectory.state(k);
        let (gram, target_product) = (trajectory.gram(k), trajectory.target_product(k));
        let weights = predict_from_gram(
            backend,
            &[&state],
            &gram,
            &target_product,
            self.lambda,
            &mut self.prediction,
        );
        let psnr_db = clipped_psnr(backend, &mut self.prediction, trajectory.target());
        drop(trajectory);
        self.state = Some(state);
        self.weights = weights;
        self.done += 1;
        Ok(StepReport {
            step: self.done,
            label: format!("step {}", self.done),
            psnr_db,
            loss: None,
            saturation: None,
            levels: Vec::new(),
            sparse: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        backend.download(&self.prediction)
    }

    fn features(&self) -> Option<&Tensor> {
        self.state.as_deref()
    }

    /// The reservoir unrolled `done` steps at the given coordinates, read out with the latest
    /// step's weights: its state is a function of the coordinate alone.
    fn render(
        &self,
        backend: &dyn Backend,
        coords: &[f32],
        cancel: &CancelToken,
    ) -> Option<anyhow::Result<Vec<f32>>> {
        (self.done > 0).then(|| {
            let trajectory = self.trajectory.lock();
            let reservoir = trajectory.reservoir();
            render_in_blocks(coords, cancel, |block, rows| {
                let coords = backend.upload(rows, 2, block)?;
                let mut state: Option<Tensor> = None;
                for _ in 0..self.done {
                    let mut next = backend.zeros(rows, reservoir.hidden)?;
                    reservoir.step(backend, &coords, state.as_ref(), &mut next, cancel)?;
                    state = Some(next);
                }
                let state = state.expect("at least one step");
                clipped_readout(backend, &[&state], &self.weights)
            })
        })
    }
}
