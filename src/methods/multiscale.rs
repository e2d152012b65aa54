//! Approach 5 of the reservoir notebook: coarse to fine with one reservoir per scale.
//!
//! Scale s uses spectral radius ρ_s = linspace(ρ_min, ρ_max, S)[s] and seed `seed + s`; its
//! state after a few iterations fits the residual `Y − estimate` by ridge, and the clipped sum
//! becomes the new estimate. Low ρ gives smooth states, high ρ detailed ones.
//!
//! Under a mask the training pixels run the same scales as a second, smaller stream (each
//! pixel's state is its own): the residual is fitted there and the readout applied to both.
//! Keeping each scale's readout lets the model be evaluated anywhere.

use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, LAMBDA, SEED};
use super::readout::fit_ridge_on;
use std::sync::Arc;

use rayon::prelude::*;

use super::cache::DrawKey;
use super::memory::{Tally, reservoir, reservoir_step_flops, ridge_fit};
use super::reservoir::{RawDraws, Reservoir, ReservoirSpec};
use super::{
    MemoryEstimate, Method, MethodInfo, ParamSpec, ParamValues, Setup, StepReport, clipped_psnr,
    render_in_blocks,
};
use crate::compute::{Backend, CancelToken, Tensor};
use crate::rng::RngKind;

pub const SCALES: ParamSpec = ParamSpec::integer(
    "scales",
    "scales S",
    "How many reservoirs, from smooth to detailed; one image per scale.",
    5.0,
    1.0,
    50.0,
);
pub const RHO_MIN: ParamSpec = ParamSpec::real(
    "rho-min",
    "first ρ",
    "Spectral radius of the first (coarsest) scale.",
    0.5,
    0.0,
    1.5,
);
pub const RHO_MAX: ParamSpec = ParamSpec::real(
    "rho-max",
    "last ρ",
    "Spectral radius of the last (finest) scale.",
    0.99,
    0.0,
    1.5,
);
pub const ITERATIONS_PER_SCALE: ParamSpec = ParamSpec::integer(
    "iterations",
    "iterations per scale",
    "Reservoir steps run at each scale before its readout.",
    5.0,
    1.0,
    100.0,
);

const PARAMS: &[ParamSpec] = &[
    HIDDEN,
    SCALES,
    RHO_MIN,
    RHO_MAX,
    ITERATIONS_PER_SCALE,
    LAMBDA,
    INPUT_SCALE,
    BIAS_SCALE,
    SEED,
];

pub const INFO: MethodInfo = MethodInfo {
    name: "multiscale",
    title: "Multi-scale reservoirs",
    summary: "One reservoir per scale, ρ from low to high, each fitting what the previous missed.",
    estimate,
    params: PARAMS,
    default_on: true,
    steps_are_scales: true,
    has_levels: false,
    trains_on_folder: false,
    resumable: false,
    fits_observed_pixels: true,
    create: |setup| Ok(Box::new(Multiscale::new(setup)?)),
};

/// `numpy.linspace(first, last, count)`.
pub fn linspace(first: f64, last: f64, count: usize) -> Vec<f64> {
    match count {
        0 => vec![],
        1 => vec![first],
        _ => {
            let step = (last - first) / (count - 1) as f64;
            let mut values: Vec<f64> = (0..count).map(|i| first + i as f64 * step).collect();
            values[count - 1] = last;
            values
        }
    }
}

/// Every scale's raw draws are made (and their eigenvalue problems solved, one per thread) at
/// build time; one reservoir's weights and two state buffers are on the backend at a time.
fn estimate(p: &ParamValues, size: usize) -> MemoryEstimate {
    let (n, h) = (size * size, p.get_usize(&HIDDEN));
    let (scales, iterations) = (p.get_usize(&SCALES), p.get_usize(&ITERATIONS_PER_SCALE));
    let mut tally = Tally::new();
    reservoir(&mut tally, 2, h);
    let draws = h.saturating_mul(h + 3);
    let solving = rayon::current_num_threads().min(scales).max(1);
    tally
        .host_f64(draws.saturating_mul(scales))
        .host_f64(h.saturating_mul(h).saturating_mul(2 * solving))
        .flops(10.0 * (h as f64).powi(3) * scales.saturating_sub(1) as f64)
        .tensor(n, 2)
        .tensors(5, n, 3)
        .tensors(2, n, h)
        .gram_input(n, h)
        .gram_input(n, h)
        .gram_input(n, 3)
        .flops(reservoir_step_flops(n, 2, h) * iterations as f64);
    ridge_fit(&mut tally, n, h, 3);
    tally.finish()
}

/// One set of pixels going through the scales: coordinates, states, the scale's correction and
/// the running estimate.
struct Stream {
    coords: Tensor,
    state: Tensor,
    next_state: Tensor,
    correction: Tensor,
    estimate: Tensor,
}

impl Stream {
    fn new(backend: &dyn Backend, coords: &[f32], hidden: usize) -> anyhow::Result<Self> {
        let n = coords.len() / 2;
        Ok(Stream {
            coords: backend.upload(n, 2, coords)?,
            state: backend.zeros(n, hidden)?,
            next_state: backend.zeros(n, hidden)?,
            correction: backend.zeros(n, 3)?,
            estimate: backend.zeros(n, 3)?,
        })
    }

    /// The scale's iterations from a zero state. The states are this scale's scratch: a
    /// cancelled step starts the scale again.
    fn unroll(
        &mut self,
        backend: &dyn Backend,
        reservoir: &Reservoir,
        iterations: usize,
        cancel: &CancelToken,
    ) -> Result<(), crate::compute::Cancelled> {
        for iteration in 0..iterations {
            let previous = (iteration > 0).then_some(&self.state);
            reservoir.step(
                backend,
                &self.coords,
                previous,
                &mut self.next_state,
                cancel,
            )?;
            std::mem::swap(&mut self.state, &mut self.next_state);
        }
        Ok(())
    }

    /// Adds `readout` of the state to the estimate, clipped as the next scale sees it.
    fn correct(&mut self, backend: &dyn Backend, readout: &[f64]) {
        backend.readout(&[&self.state], readout, &mut self.correction);
        backend.axpy(1.0, &self.correction, &mut self.estimate);
        backend.clip(&mut self.estimate, 0.0, 1.0);
    }
}

pub struct Multiscale {
    /// Every pixel: what is shown and scored.
    all: Stream,
    target: Tensor,
    /// Under a mask, the pixels the residuals are fitted on, and their values.
    training: Option<(Stream, Tensor)>,
    residual: Tensor,
    /// Each finished scale's readout, for evaluating the model anywhere.
    readouts: Vec<Vec<f64>>,
    radii: Vec<f64>,
    /// Each scale's raw reservoir draws, made up front.
    draws: Vec<Arc<RawDraws>>,
    hidden: usize,
    iterations: usize,
    lambda: f64,
    input_scale: f64,
    bias_scale: f64,
    seed: u64,
    rng: RngKind,
    done: usize,
    cancel: CancelToken,
}

impl Multiscale {
    pub fn new(setup: &Setup) -> anyhow::Result<Self> {
        let p = setup.params;
        let backend = setup.backend;
        let n = setup.target.pixel_count();
        let hidden = p.get_usize(&HIDDEN);
        let radii = linspace(p.get(&RHO_MIN), p.get(&RHO_MAX), p.get_usize(&SCALES));
        let seed = p.get(&SEED) as u64;
        // The scales' reservoirs are independent: draw them and solve their eigenvalue problems
        // side by side (each solve is serial) instead of one per step.
        let draws = (0..radii.len() as u64)
            .into_par_iter()
            .map(|scale| {
                setup.cache.draws(DrawKey {
                    rng: setup.rng,
                    seed: seed + scale,
                    input_dim: 2,
                    hidden,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let training = match setup.target.training_pixels() {
            Some(pixels) => {
                let (coords, values) = setup.target.training_set();
                let values = backend.upload(pixels.len(), 3, &values)?;
                Some((Stream::new(backend, &coords, hidden)?, values))
            }
            None => None,
        };
        let fitted_rows = training.as_ref().map_or(n, |(_, values)| values.rows());
        Ok(Multiscale {
            all: Stream::new(backend, &setup.target.coords(), hidden)?,
            target: backend.upload(n, 3, &setup.target.pixels)?,
            training,
            residual: backend.zeros(fitted_rows, 3)?,
            readouts: Vec::new(),
            radii,
            draws,
            hidden,
            iterations: p.get_usize(&ITERATIONS_PER_SCALE),
            lambda: p.get(&LAMBDA),
            input_scale: p.get(&INPUT_SCALE),
            bias_scale: p.get(&BIAS_SCALE),
            seed,
            rng: setup.rng,
            done: 0,
            cancel: setup.cancel.clone(),
        })
    }

    fn reservoir(&self, backend: &dyn Backend, scale: usize) -> anyhow::Result<Reservoir> {
        Reservoir::from_draws(
            backend,
            &ReservoirSpec {
                input_dim: 2,
                hidden: self.hidden,
                spectral_radius: self.radii[scale],
                input_scale: self.input_scale,
                bias_scale: self.bias_scale,
                seed: self.seed + scale as u64,
                rng: self.rng,
            },
            &self.draws[scale],
        )
    }
}

impl Method for Multiscale {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn total_steps(&self) -> usize {
        self.radii.len()
    }
    fn steps_done(&self) -> usize {
        self.done
    }

    fn step(&mut self, backend: &dyn Backend) -> anyhow::Result<StepReport> {
        anyhow::ensure!(!self.is_done(), "multiscale has finished its scales");
        let scale = self.done;
        let spectral_radius = self.radii[scale];
        let reservoir = self.reservoir(backend, scale)?;
        let cancel = &self.cancel;
        self.all
            .unroll(backend, &reservoir, self.iterations, cancel)?;
        if let Some((training, _)) = &mut self.training {
            training.unroll(backend, &reservoir, self.iterations, cancel)?;
        }
        // The residual this scale has to explain, on the pixels it is fitted on.
        let (fitted_state, fitted_estimate, values) = match &self.training {
            Some((training, values)) => (&training.state, &training.estimate, values),
            None => (&self.all.state, &self.all.estimate, &self.target),
        };
        backend.copy(values, &mut self.residual);
        backend.axpy(-1.0, fitted_estimate, &mut self.residual);
        let readout = fit_ridge_on(
            backend,
            fitted_state,
            &self.residual,
            self.lambda,
            &self.all.state,
            &mut self.all.correction,
            cancel,
        )?;
        backend.axpy(1.0, &self.all.correction, &mut self.all.estimate);
        if let Some((training, _)) = &mut self.training {
            training.correct(backend, &readout);
        }
        self.readouts.push(readout);
        self.done += 1;
        Ok(StepReport {
            step: self.done,
            label: format!("scale {} (ρ {spectral_radius:.2})", self.done),
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

    /// The same scales with the same readouts at other points.
    fn render(
        &self,
        backend: &dyn Backend,
        coords: &[f32],
        cancel: &CancelToken,
    ) -> Option<anyhow::Result<Vec<f32>>> {
        (self.done > 0).then(|| {
            let reservoirs = (0..self.done)
                .map(|scale| self.reservoir(backend, scale))
                .collect::<anyhow::Result<Vec<_>>>()?;
            render_in_blocks(coords, cancel, |block, _| {
                let mut stream = Stream::new(backend, block, self.hidden)?;
                for (reservoir, readout) in reservoirs.iter().zip(&self.readouts) {
                    stream.unroll(backend, reservoir, self.iterations, cancel)?;
                    stream.correct(backend, readout);
                }
                Ok(backend.download(&stream.estimate))
            })
        })
    }

    fn features(&self) -> Option<&Tensor> {
        (self.done > 0).then_some(&self.all.state)
    }
}

#[cfg(test)]
mod tests {
    use super::linspace;

    #[test]
    fn linspace_matches_numpy() {
        let v = linspace(0.5, 0.99, 5);
        let expected = [0.5, 0.6225, 0.745, 0.8675, 0.99];
        for (a, b) in v.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12);
        }
        assert_eq!(linspace(0.3, 0.9, 1), vec![0.3]);
    }
}
