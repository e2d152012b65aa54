//! Approach 2 of the reservoir notebook: one ridge readout on the concatenated trajectory
//! `[H₁ … H_k]`, for a schedule of k.
//!
//! The Gram matrix of `[H₁ … H_k]` is made of blocks `H_iᵀH_j`; each block is computed once, when
//! `H_j` appears, and reused for every later k. For k = 10 at hidden 256 that is 55 blocks
//! instead of the 55 + 36 + … a per-k recomputation costs.

use super::params::common::{BIAS_SCALE, HIDDEN, INPUT_SCALE, LAMBDA, SEED, SPECTRAL_RADIUS};
use super::readout::predict_from_gram;
use super::reservoir::{Reservoir, ReservoirSpec};
use super::{Method, MethodInfo, ParamSpec, Setup, StepReport, clipped_psnr};
use crate::compute::{Backend, Tensor};

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
    params: PARAMS,
    create: |setup| Ok(Box::new(Cumulative::new(setup))),
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

pub struct Cumulative {
    reservoir: Reservoir,
    coords: Tensor,
    target: Tensor,
    states: Vec<Tensor>,
    /// `gram_columns[j]` holds `[H₁ … H_j]ᵀ H_j`, a `(j+1)·hidden × hidden` row-major matrix.
    gram_columns: Vec<Vec<f64>>,
    /// `target_products[j]` holds `H_jᵀ Y` (hidden × 3).
    target_products: Vec<Vec<f64>>,
    prediction: Tensor,
    hidden: usize,
    lambda: f64,
    schedule: Vec<usize>,
    done: usize,
}

impl Cumulative {
    pub fn new(setup: &Setup) -> Self {
        let p = setup.params;
        let backend = setup.backend;
        let n = setup.target.pixel_count();
        let spec = ReservoirSpec::from_params(setup, 2, &SPECTRAL_RADIUS);
        let hidden = spec.hidden;
        let reservoir = Reservoir::new(backend, &spec);
        Cumulative {
            reservoir,
            coords: backend.upload(n, 2, &setup.target.coords()),
            target: backend.upload(n, 3, &setup.target.pixels),
            states: Vec::new(),
            gram_columns: Vec::new(),
            target_products: Vec::new(),
            prediction: backend.zeros(n, 3),
            hidden,
            lambda: p.get(&LAMBDA),
            schedule: schedule(p.get_usize(&MAX_K), p.get(&EVERY_K) >= 0.5),
            done: 0,
        }
    }

    /// Runs the reservoir one step further and computes the new Gram column.
    fn extend_trajectory(&mut self, backend: &dyn Backend) {
        let mut next = backend.zeros(self.coords.rows(), self.hidden);
        self.reservoir
            .step(backend, &self.coords, self.states.last(), &mut next);
        self.states.push(next);
        let newest = self.states.last().expect("just pushed");
        let blocks: Vec<&Tensor> = self.states.iter().collect();
        self.gram_columns.push(backend.gram(&blocks, newest));
        self.target_products
            .push(backend.gram(&[newest], &self.target));
    }

    /// The Gram matrix and target products of `[H₁ … H_k]`, assembled from the stored blocks.
    fn assemble(&self, k: usize) -> (Vec<f64>, Vec<f64>) {
        let h = self.hidden;
        let size = k * h;
        let mut gram = vec![0.0; size * size];
        for j in 0..k {
            let column = &self.gram_columns[j];
            for i in 0..=j {
                for r in 0..h {
                    for c in 0..h {
                        let value = column[(i * h + r) * h + c];
                        // Block (i, j) and its transpose (j, i).
                        gram[(i * h + r) * size + j * h + c] = value;
                        gram[(j * h + c) * size + i * h + r] = value;
                    }
                }
            }
        }
        let rhs = self.target_products[..k].concat();
        (gram, rhs)
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
        while self.states.len() < k {
            self.extend_trajectory(backend);
        }
        let (gram, rhs) = self.assemble(k);
        let blocks: Vec<&Tensor> = self.states[..k].iter().collect();
        predict_from_gram(
            backend,
            &blocks,
            &gram,
            &rhs,
            self.lambda,
            &mut self.prediction,
        );
        self.done += 1;
        Ok(StepReport {
            step: k,
            label: format!("k = {k}"),
            psnr_db: clipped_psnr(backend, &mut self.prediction, &self.target),
            loss: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        backend.download(&self.prediction)
    }

    fn features(&self) -> Option<&Tensor> {
        self.states.get(self.schedule[self.done.max(1) - 1] - 1)
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
