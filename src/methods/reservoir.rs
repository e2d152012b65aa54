//! Random reservoirs as the seed notebook draws them, shared by the reservoir methods.
//!
//! Draw order (numpy): `W_in = randn(d, hidden)·input_scale`, `W_hh = randn(hidden, hidden)`
//! scaled to spectral radius ρ by its exact eigenvalues, `b = randn(hidden)·bias_scale`.
//! The raw draws and the eigenvalue-based radius do not depend on ρ or the scales, so they are
//! cached: moving the ρ slider re-scales a cached matrix instead of re-running the eigen solver,
//! and methods that share a seed (trajectory, cumulative, the first multi-scale scale) share it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, SEED};
use super::{ParamSpec, Setup};
use crate::compute::{Backend, Tensor};
use crate::linalg::spectral_radius;
use crate::rng::{RngKind, normal_source};

/// A reservoir's raw Gaussian draws and the spectral radius of its raw recurrent matrix.
pub struct RawDraws {
    pub input: Vec<f64>,
    pub recurrent: Vec<f64>,
    pub bias: Vec<f64>,
    pub raw_radius: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct DrawKey {
    rng: RngKind,
    seed: u64,
    input_dim: usize,
    hidden: usize,
}

const CACHED_DRAWS: usize = 8;
static DRAW_CACHE: Mutex<VecDeque<(DrawKey, Arc<RawDraws>)>> = Mutex::new(VecDeque::new());

/// The raw draws for a seed, from the cache when the same draws were made recently.
pub fn raw_draws(rng: RngKind, seed: u64, input_dim: usize, hidden: usize) -> Arc<RawDraws> {
    let key = DrawKey {
        rng,
        seed,
        input_dim,
        hidden,
    };
    if let Some((_, draws)) = lock_cache().iter().find(|(k, _)| *k == key) {
        return draws.clone();
    }
    let mut source = normal_source(rng, seed);
    let input = source.standard_normals(input_dim * hidden);
    let recurrent = source.standard_normals(hidden * hidden);
    let bias = source.standard_normals(hidden);
    let raw_radius = spectral_radius(&recurrent, hidden);
    let draws = Arc::new(RawDraws {
        input,
        recurrent,
        bias,
        raw_radius,
    });
    let mut cache = lock_cache();
    cache.push_front((key, draws.clone()));
    cache.truncate(CACHED_DRAWS);
    draws
}

/// Forgets every cached draw (so a benchmark times the eigenvalue solves as numpy pays them).
pub fn clear_draw_cache() {
    lock_cache().clear();
}

fn lock_cache() -> std::sync::MutexGuard<'static, VecDeque<(DrawKey, Arc<RawDraws>)>> {
    // A panic while holding the lock leaves a valid cache; keep using it.
    DRAW_CACHE.lock().unwrap_or_else(|e| e.into_inner())
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
}

/// A reservoir's weights, resident on the backend.
pub struct Reservoir {
    pub input_weights: Tensor,
    pub recurrent_weights: Tensor,
    pub bias: Tensor,
    pub hidden: usize,
}

impl Reservoir {
    pub fn new(backend: &dyn Backend, spec: &ReservoirSpec) -> anyhow::Result<Self> {
        let draws = raw_draws(spec.rng, spec.seed, spec.input_dim, spec.hidden);
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

    /// `out = tanh(input·W_in + state·W_hh + b)`; `state = None` is the zero state.
    pub fn step(
        &self,
        backend: &dyn Backend,
        input: &Tensor,
        state: Option<&Tensor>,
        out: &mut Tensor,
    ) {
        backend.reservoir_step(
            input,
            &self.input_weights,
            state,
            &self.recurrent_weights,
            &self.bias,
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_draws_are_shared_and_keyed_by_shape() {
        let a = raw_draws(RngKind::Numpy, 7, 2, 8);
        let b = raw_draws(RngKind::Numpy, 7, 2, 8);
        let c = raw_draws(RngKind::Numpy, 7, 5, 8);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_ne!(a.recurrent, c.recurrent);
        assert!(a.raw_radius > 0.0);
    }
}
