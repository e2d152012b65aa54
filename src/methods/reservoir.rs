//! Random reservoirs as the seed notebook draws them, shared by the reservoir methods.
//!
//! Draw order (numpy): `W_in = randn(d, hidden)·input_scale`, `W_hh = randn(hidden, hidden)`
//! scaled to spectral radius ρ by its exact eigenvalues, `b = randn(hidden)·bias_scale`.
//! The raw draws and the eigenvalue-based radius do not depend on ρ or the scales, so they are
//! cached ([`super::cache::MethodCache`]): moving the ρ slider re-scales a cached matrix instead
//! of re-running the eigen solver, and methods that share a seed (trajectory, cumulative, the
//! first multi-scale scale) share it.

use super::cache::{DrawKey, MethodCache};
use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, SEED};
use super::{ParamSpec, Setup};
use crate::compute::{Backend, CancelToken, Cancelled, Tensor};
use crate::rng::RngKind;

/// A reservoir's raw Gaussian draws and the spectral radius of its raw recurrent matrix.
#[derive(Debug)]
pub struct RawDraws {
    pub input: Vec<f64>,
    pub recurrent: Vec<f64>,
    pub bias: Vec<f64>,
    pub raw_radius: f64,
}

/// How to build one reservoir.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReservoirSpec {
    pub input_dim: usize,
    pub hidden: usize,
    pub spectral_radius: f64,
    pub input_scale: f64,
    pub bias_scale: f64,
    pub seed: u64,
    pub rng: RngKind,
}

impl ReservoirSpec {
    /// The spec the common parameters describe (hidden size, scales, seed), with the method's
    /// own input width and spectral-radius parameter (whose default differs per method).
    pub fn from_params(setup: &Setup, input_dim: usize, spectral_radius: &ParamSpec) -> Self {
        let p = setup.params;
        ReservoirSpec {
            input_dim,
            hidden: p.get_usize(&HIDDEN),
            spectral_radius: p.get(spectral_radius),
            input_scale: p.get(&INPUT_SCALE),
            bias_scale: p.get(&BIAS_SCALE),
            seed: p.get(&SEED) as u64,
            rng: setup.rng,
        }
    }

    /// The key of this reservoir's raw draws in the cache.
    pub fn draw_key(&self) -> DrawKey {
        DrawKey {
            rng: self.rng,
            seed: self.seed,
            input_dim: self.input_dim,
            hidden: self.hidden,
        }
    }
}

/// A reservoir's weights, resident on the backend.
pub struct Reservoir {
    pub input_weights: Tensor,
    pub recurrent_weights: Tensor,
    pub bias: Tensor,
    pub hidden: usize,
}

impl Reservoir {
    /// Fails with [`super::cache::NotReady`] while a large draw's eigen-solve runs.
    pub fn new(
        cache: &MethodCache,
        backend: &dyn Backend,
        spec: &ReservoirSpec,
    ) -> anyhow::Result<Self> {
        let draws = cache.draws(spec.draw_key())?;
        Self::from_draws(backend, spec, &draws)
    }

    /// The reservoir `spec` describes, from its raw draws (made earlier, e.g. in parallel).
    pub fn from_draws(
        backend: &dyn Backend,
        spec: &ReservoirSpec,
        draws: &RawDraws,
    ) -> anyhow::Result<Self> {
        // Scaled in f64 as numpy does, then stored as f32.
        let recurrent_scale = if draws.raw_radius > 0.0 {
            spec.spectral_radius / draws.raw_radius
        } else {
            0.0
        };
        let scaled = |values: &[f64], scale: f64| -> Vec<f32> {
            values.iter().map(|&v| (v * scale) as f32).collect()
        };
        let (d, h) = (spec.input_dim, spec.hidden);
        Ok(Reservoir {
            input_weights: backend.upload(d, h, &scaled(&draws.input, spec.input_scale))?,
            recurrent_weights: backend.upload(h, h, &scaled(&draws.recurrent, recurrent_scale))?,
            bias: backend.upload(1, h, &scaled(&draws.bias, spec.bias_scale))?,
            hidden: h,
        })
    }

    /// `out = tanh(input·W_in + state·W_hh + b)`; `state = None` is the zero state. Gives up
    /// (leaving `out` to be discarded) once `cancel` is set.
    pub fn step(
        &self,
        backend: &dyn Backend,
        input: &Tensor,
        state: Option<&Tensor>,
        out: &mut Tensor,
        cancel: &CancelToken,
    ) -> Result<(), Cancelled> {
        backend.reservoir_step_until(
            input,
            &self.input_weights,
            state,
            &self.recurrent_weights,
            &self.bias,
            out,
            cancel,
        )
    }
}
