//! Approach 2 of the reservoir notebook: one ridge readout on the concatenated trajectory
//! `[H₁ … H_k]`, for a schedule of k.
//!
//! The Gram matrix of `[H₁ … H_k]` is made of blocks `H_iᵀH_j`; each block is computed once, when
//! `H_j` appears, and reused for every later k. For k = 10 at hidden 256 that is 55 blocks
//! instead of the 55 + 36 + … a per-k recomputation costs. The states and diagonal blocks come
//! from the trajectory shared with the `trajectory` method, and the Cholesky factor grows with k
//! instead of being redone.
//!
//! Under a mask every product is taken on the training pixels' states (the shared trajectory
//! unrolls them beside every pixel's), and the readout is applied to every pixel's states.

use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, LAMBDA, SEED, SPECTRAL_RADIUS};
use std::sync::Arc;

use faer::{Mat, MatRef};

use super::memory::{Tally, reservoir, reservoir_step_flops};
use super::readout::clipped_readout;
use super::reservoir::ReservoirSpec;
use super::shared_trajectory::TrajectoryHandle;
use super::{
    MemoryEstimate, Method, MethodInfo, ParamSpec, ParamValues, Setup, StepReport, clipped_psnr,
    render_in_blocks,
};
use crate::compute::{Backend, CancelToken, Tensor};
use crate::linalg::{GrowingCholesky, NotPositiveDefinite, indefinite_solve, row_major};

pub const MAX_K: ParamSpec = ParamSpec::integer(
    "steps",
    "largest k",
    "The longest trajectory concatenated; k runs through 1, 2, 3, 5, 10, … up to it.",
    10.0,
    1.0,
    40.0,
);
pub const EVERY_K: ParamSpec = ParamSpec::integer(
    "every-k",
    "every k",
    "1: fit a readout at every k from 1 to the largest; 0: at 1, 2, 3, 5, 10, 20, 40 and the largest.",
    0.0,
    0.0,
    1.0,
);

const PARAMS: &[ParamSpec] = &[
    HIDDEN,
    SPECTRAL_RADIUS,
    MAX_K,
    EVERY_K,
    LAMBDA,
    INPUT_SCALE,
    BIAS_SCALE,
    SEED,
];

pub const INFO: MethodInfo = MethodInfo {
    name: "cumulative",
    title: "Cumulative trajectory",
    summary: "A ridge readout on all states up to step k, [H₁ … H_k], for growing k.",
    estimate,
    params: PARAMS,
    default_on: false,
    steps_are_scales: false,
    has_levels: false,
    trains_on_folder: false,
    resumable: false,
    fits_observed_pixels: true,
    create: |setup| Ok(Box::new(Cumulative::new(setup)?)),
};

/// The k at which a readout is fitted.
pub fn schedule(max_k: usize, every_k: bool) -> Vec<usize> {
    let mut ks: Vec<usize> = if every_k {
        (1..=max_k).collect()
    } else {
        [1, 2, 3, 5, 10, 20, 40]
            .into_iter()
            .filter(|&k| k <= max_k)
            .collect()
    };
    if ks.last() != Some(&max_k) {
        ks.push(max_k);
    }
    ks
}

/// All K states with their f64 copies, the K·h-square system allocated at the first step, the
/// Cholesky factor (the old one is held while the grown one is made; a failed factor falls
/// back to a copy and an indefinite factor, as large), and the shared trajectory's blocks.
fn estimate(p: &ParamValues, size: usize) -> MemoryEstimate {
    let (n, h) = (size * size, p.get_usize(&HIDDEN));
    let ks = schedule(p.get_usize(&MAX_K), p.get(&EVERY_K) >= 0.5);
    let k = ks.last().copied().unwrap_or(1);
    let features = k.saturating_mul(h);
    let square = features.saturating_mul(features);
    let mut tally = Tally::new();
    reservoir(&mut tally, 2, h);
    tally
        .tensor(n, 2)
        .tensors(2, n, 3)
        .tensors(k + 1, n, h)
        .gram_input(n, 3)
        .host_f64(square.saturating_mul(3))
        .host_f64(k.saturating_mul(h.saturating_mul(h + 3)))
        .gram(features, h)
        .gram(h, 3)
        .host_f64(features.saturating_mul(3).saturating_mul(3))
        .readout(n, features, 3)
        .flops(reservoir_step_flops(n, 2, h))
        .flops((n * h) as f64 * h as f64 + (h as f64).powi(3) / 3.0);
    for _ in 0..=k {
        tally.gram_input(n, h);
    }
    tally.finish()
}

pub struct Cumulative {
    trajectory: TrajectoryHandle,
    /// `H₁ … H_k` as far as fitted.
    states: Vec<Arc<Tensor>>,
    /// Seen through a mask: the same states on the training pixels, which the products are
    /// taken on.
    training_states: Vec<Arc<Tensor>>,
    /// The latest readout of `[H₁ … H_k]`, row-major, for evaluating the model anywhere.
    weights: Vec<f64>,
    /// Lower triangle of the Gram matrix of `[H₁ … H_k]` (`λ` is added by the factor), filled
    /// block row by block row; each block `H_jᵀH_i` (i ≤ j) is computed once.
    system: Mat<f64>,
    /// `[H₁ … H_k]ᵀY`, row-major.
    target_products: Vec<f64>,
    /// Cholesky factor of the system so far, extended for each k.
    cholesky: GrowingCholesky,
    prediction: Tensor,
    hidden: usize,
    lambda: f64,
    schedule: Vec<usize>,
    done: usize,
    cancel: CancelToken,
}

impl Cumulative {
    pub fn new(setup: &Setup) -> anyhow::Result<Self> {
        let p = setup.params;
        let n = setup.target.pixel_count();
        let spec = ReservoirSpec::from_params(setup, 2, &SPECTRAL_RADIUS);
        let schedule = schedule(p.get_usize(&MAX_K), p.get(&EVERY_K) >= 0.5);
        let largest_k = schedule.last().copied().unwrap_or(1);
        Ok(Cumulative {
            trajectory: TrajectoryHandle::attach(setup, &spec, largest_k)?,
            states: Vec::new(),
            training_states: Vec::new(),
            weights: Vec::new(),
            system: Mat::zeros(0, 0),
            target_products: Vec::new(),
            cholesky: GrowingCholesky::new(),
            prediction: setup.backend.zeros(n, 3)?,
            hidden: spec.hidden,
            lambda: p.get(&LAMBDA),
            schedule,
            done: 0,
            cancel: setup.cancel.clone(),
        })
    }

    /// Takes state `H_j` (j = states + 1) from the shared trajectory and fills block row j of
    /// the system: `H_jᵀH_i` for i < j computed here, `H_jᵀH_j` and `H_jᵀY` shared. Cancelled,
    /// it leaves block rows 1…j−1 as they were.
    fn extend_trajectory(&mut self, backend: &dyn Backend) -> anyhow::Result<()> {
        let j = self.states.len() + 1;
        let h = self.hidden;
        let (newest, newest_training, diagonal, target_product) = {
            let mut trajectory = self.trajectory.lock();
            trajectory.extend_to(backend, j, &self.cancel)?;
            (
                trajectory.state(j),
                trajectory.training_state(j),
                trajectory.gram(j),
                trajectory.target_product(j),
            )
        };
        // The products are the training pixels' under a mask, every pixel's otherwise.
        let (older, fitted_newest): (Vec<&Tensor>, &Tensor) = match &newest_training {
            Some(training) => (
                self.training_states.iter().map(|s| &**s).collect(),
                training,
            ),
            None => (self.states.iter().map(|s| &**s).collect(), &newest),
        };
        // `[H₁ … H_{j−1}]ᵀH_j`: (j−1)·h × h, row-major.
        let off_diagonal = if older.is_empty() {
            Vec::new()
        } else {
            backend.gram_until(&older, fitted_newest, &self.cancel)?
        };
        if self.system.nrows() < j * h {
            // Room for the largest k at once: the system is only ever filled, never moved.
            let largest = self.schedule.last().copied().unwrap_or(j).max(j) * h;
            let mut system = Mat::<f64>::zeros(largest, largest);
            let old = self.system.nrows();
            system
                .as_mut()
                .submatrix_mut(0, 0, old, old)
                .copy_from_triangular_lower(&self.system);
            self.system = system;
        }
        let system = &mut self.system;
        let row = (j - 1) * h;
        // Block row j, written down the columns (the matrix is column-major): column i·h + r
        // holds H_iᵀ's row r against H_j, i.e. row i·h + r of `off_diagonal`.
        for (column, values) in off_diagonal.chunks_exact(h).enumerate() {
            for (c, &value) in values.iter().enumerate() {
                system[(row + c, column)] = value;
            }
        }
        for r in 0..h {
            for c in r..h {
                system[(row + c, row + r)] = diagonal[r * h + c];
            }
        }
        self.target_products.extend_from_slice(&target_product);
        self.states.push(newest);
        self.training_states.extend(newest_training);
        Ok(())
    }
}

impl Method for Cumulative {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn total_steps(&self) -> usize {
        self.schedule.len()
    }
    fn steps_done(&self) -> usize {
        self.done
    }

    fn step(&mut self, backend: &dyn Backend) -> anyhow::Result<StepReport> {
        anyhow::ensure!(!self.is_done(), "cumulative has finished its schedule");
        let k = self.schedule[self.done];
        // Each block row is committed whole: a cancelled step resumes from the last one.
        while self.states.len() < k {
            self.extend_trajectory(backend)?;
        }
        let size = k * self.hidden;
        let system = self.system.as_ref().submatrix(0, 0, size, size);
        let rhs = MatRef::from_row_major_slice(&self.target_products[..size * 3], size, 3);
        if self.cholesky.dim() > size {
            self.cholesky = GrowingCholesky::new();
        }
        let weights = match self.cholesky.extend(system, self.lambda) {
            Ok(()) => self.cholesky.solve(rhs),
            Err(NotPositiveDefinite) => indefinite_solve(system, self.lambda, rhs),
        };
        let blocks: Vec<&Tensor> = self.states[..k].iter().map(|s| &**s).collect();
        self.weights = row_major(weights.as_ref());
        backend.readout(&blocks, &self.weights, &mut self.prediction);
        let psnr_db = clipped_psnr(
            backend,
            &mut self.prediction,
            self.trajectory.lock().target(),
        );
        self.done += 1;
        Ok(StepReport {
            step: k,
            label: format!("k = {k}"),
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

    /// The reservoir unrolled k steps at other points, read out by the latest readout.
    fn render(
        &self,
        backend: &dyn Backend,
        coords: &[f32],
        cancel: &CancelToken,
    ) -> Option<anyhow::Result<Vec<f32>>> {
        (self.done > 0).then(|| {
            let k = self.schedule[self.done - 1];
            let trajectory = self.trajectory.lock();
            let reservoir = trajectory.reservoir();
            render_in_blocks(coords, cancel, |block, rows| {
                let coords = backend.upload(rows, 2, block)?;
                let mut states: Vec<Tensor> = Vec::with_capacity(k);
                for _ in 0..k {
                    let mut next = backend.zeros(rows, reservoir.hidden)?;
                    reservoir.step(backend, &coords, states.last(), &mut next, cancel)?;
                    states.push(next);
                }
                let blocks: Vec<&Tensor> = states.iter().collect();
                clipped_readout(backend, &blocks, &self.weights)
            })
        })
    }

    fn features(&self) -> Option<&Tensor> {
        (self.done > 0)
            .then(|| self.states.get(self.schedule[self.done - 1] - 1))
            .flatten()
            .map(|s| &**s)
    }
}

#[cfg(test)]
mod tests {
    use super::schedule;

    #[test]
    fn schedule_follows_the_notebook_and_ends_at_the_largest_k() {
        assert_eq!(schedule(10, false), vec![1, 2, 3, 5, 10]);
        assert_eq!(schedule(4, false), vec![1, 2, 3, 4]);
        assert_eq!(schedule(3, true), vec![1, 2, 3]);
        assert_eq!(schedule(1, false), vec![1]);
    }
}
