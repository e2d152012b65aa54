//! Approach 1 of the reservoir notebook: the image at every step of one reservoir trajectory.
//!
//! `H₀ = 0`, `H_k = tanh(X·W_in + H_{k−1}·W_hh + b)`; each step gets its own ridge readout, so the
//! row of images shows what the reservoir state can express after k steps.

use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, LAMBDA, SEED, SPECTRAL_RADIUS};
use super::readout::fit_ridge;
use super::reservoir::{Reservoir, ReservoirSpec};
use super::{Method, MethodInfo, ParamSpec, Setup, StepReport, clipped_psnr};
use crate::compute::{Backend, Tensor};

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
    params: PARAMS,
    create: |setup| Ok(Box::new(Trajectory::new(setup))),
};

pub struct Trajectory {
    reservoir: Reservoir,
    coords: Tensor,
    target: Tensor,
    state: Tensor,
    next_state: Tensor,
    prediction: Tensor,
    lambda: f64,
    steps: usize,
    done: usize,
}

impl Trajectory {
    pub fn new(setup: &Setup) -> Self {
        let p = setup.params;
        let backend = setup.backend;
        let n = setup.target.pixel_count();
        let spec = ReservoirSpec::from_params(setup, 2, &SPECTRAL_RADIUS);
        let hidden = spec.hidden;
        let reservoir = Reservoir::new(backend, &spec);
        Trajectory {
            reservoir,
            coords: backend.upload(n, 2, &setup.target.coords()),
            target: backend.upload(n, 3, &setup.target.pixels),
            state: backend.zeros(n, hidden),
            next_state: backend.zeros(n, hidden),
            prediction: backend.zeros(n, 3),
            lambda: p.get(&LAMBDA),
            steps: p.get_usize(&STEPS),
            done: 0,
        }
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
        let previous = (self.done > 0).then_some(&self.state);
        self.reservoir
            .step(backend, &self.coords, previous, &mut self.next_state);
        std::mem::swap(&mut self.state, &mut self.next_state);
        fit_ridge(
            backend,
            &self.state,
            &self.target,
            self.lambda,
            &mut self.prediction,
        );
        self.done += 1;
        Ok(StepReport {
            step: self.done,
            label: format!("step {}", self.done),
            psnr_db: clipped_psnr(backend, &mut self.prediction, &self.target),
            loss: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        backend.download(&self.prediction)
    }

    fn features(&self) -> Option<&Tensor> {
        (self.done > 0).then_some(&self.state)
    }
}
