//! The reservoir notebook's baseline: random Fourier features with a ridge readout.
//!
//! `B` (m×2) ~ N(0, σ²) drawn as `np.random.seed(seed); randn(m, 2)·σ`; features
//! `[sin 2πXBᵀ, cos 2πXBᵀ]` (2m wide); one ridge solve, so one step.

use super::memory::{Tally, ridge_fit};
use super::params::common::{FOURIER_SCALE, LAMBDA, SEED};
use super::readout::{clipped_readout, fit_ridge, fit_ridge_on};
use super::{
    MemoryEstimate, Method, MethodInfo, ParamSpec, ParamValues, Setup, StepReport, clipped_psnr,
    render_in_blocks,
};
use crate::compute::{Backend, CancelToken, Tensor};
use crate::rng::normal_source;

pub const FREQUENCIES: ParamSpec = ParamSpec::integer(
    "features",
    "frequencies m",
    "Random frequencies; the encoding is 2m wide (a sine and a cosine each).",
    256.0,
    1.0,
    4096.0,
);
const PARAMS: &[ParamSpec] = &[FREQUENCIES, FOURIER_SCALE, LAMBDA, SEED];

pub const INFO: MethodInfo = MethodInfo {
    name: "fourier-ridge",
    title: "Fourier features + ridge",
    summary: "Random Fourier features of the coordinates with one ridge readout (the baseline).",
    estimate,
    params: PARAMS,
    default_on: true,
    steps_are_scales: false,
    has_levels: false,
    trains_on_folder: false,
    resumable: false,
    fits_observed_pixels: true,
    create: |setup| Ok(Box::new(FourierRidge::new(setup)?)),
};

/// The 2m-wide encoding with its f64 copy on the CPU backend and one 2m-square ridge system.
fn estimate(p: &ParamValues, size: usize) -> MemoryEstimate {
    let (n, m) = (size * size, p.get_usize(&FREQUENCIES));
    let f = m.saturating_mul(2);
    let mut tally = Tally::new();
    tally
        .tensor(n, 2)
        .tensors(2, n, 3)
        .tensor(2, m)
        .tensor(n, f)
        .gram_input(n, f)
        .gram_input(n, 3)
        .host_f64(f.saturating_mul(2))
        .host_f32(n.saturating_mul(2))
        .flops(20.0 * (n * f) as f64);
    ridge_fit(&mut tally, n, f, 3);
    tally.finish()
}

pub struct FourierRidge {
    coords: Tensor,
    target: Tensor,
    frequencies: Tensor,
    features: Tensor,
    /// The encoding and values of the pixels it fits on, when they are not every pixel (a
    /// mask): the readout is solved on them and applied to `features`.
    training: Option<(Tensor, Tensor)>,
    prediction: Tensor,
    /// The readout (2m × 3, row-major f64), once fitted: renderings at other coordinates use it.
    weights: Vec<f64>,
    lambda: f64,
    done: usize,
    cancel: CancelToken,
}

impl FourierRidge {
    pub fn new(setup: &Setup) -> anyhow::Result<Self> {
        let p = setup.params;
        let backend = setup.backend;
        let n = setup.target.pixel_count();
        let m = p.get_usize(&FREQUENCIES);
        let sigma = p.get(&FOURIER_SCALE);
        let draws = normal_source(setup.rng, p.get(&SEED) as u64).standard_normals(m * 2);
        // Drawn as B (m×2), stored transposed (2×m) for x·B.
        let mut frequencies = vec![0.0f32; 2 * m];
        for j in 0..m {
            frequencies[j] = (draws[2 * j] * sigma) as f32;
            frequencies[m + j] = (draws[2 * j + 1] * sigma) as f32;
        }
        let training = setup.masked_training_set()?;
        Ok(FourierRidge {
            coords: backend.upload(n, 2, &setup.target.coords())?,
            target: backend.upload(n, 3, &setup.target.pixels)?,
            frequencies: backend.upload(2, m, &frequencies)?,
            features: backend.zeros(n, 2 * m)?,
            training,
            prediction: backend.zeros(n, 3)?,
            weights: Vec::new(),
            lambda: p.get(&LAMBDA),
            done: 0,
            cancel: setup.cancel.clone(),
        })
    }
}

impl Method for FourierRidge {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn total_steps(&self) -> usize {
        1
    }
    fn steps_done(&self) -> usize {
        self.done
    }

    fn step(&mut self, backend: &dyn Backend) -> anyhow::Result<StepReport> {
        anyhow::ensure!(!self.is_done(), "fourier-ridge has finished");
        backend.fourier_encode(&self.coords, &self.frequencies, &mut self.features);
        self.weights = match &self.training {
            None => fit_ridge(
                backend,
                &self.features,
                &self.target,
                self.lambda,
                &mut self.prediction,
                &self.cancel,
            )?,
            Some((coords, values)) => {
                let mut fitted = backend.zeros(coords.rows(), self.features.cols())?;
                backend.fourier_encode(coords, &self.frequencies, &mut fitted);
                fit_ridge_on(
                    backend,
                    &fitted,
                    values,
                    self.lambda,
                    &self.features,
                    &mut self.prediction,
                    &self.cancel,
                )?
            }
        };
        self.done = 1;
        Ok(StepReport {
            step: 1,
            label: "ridge fit".into(),
            psnr_db: clipped_psnr(backend, &mut self.prediction, &self.target),
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
        (self.done > 0).then_some(&self.features)
    }

    fn render(
        &self,
        backend: &dyn Backend,
        coords: &[f32],
        cancel: &CancelToken,
    ) -> Option<anyhow::Result<Vec<f32>>> {
        (self.done > 0).then(|| {
            let m = self.frequencies.cols();
            render_in_blocks(coords, cancel, |block, rows| {
                let coords = backend.upload(rows, 2, block)?;
                let mut features = backend.zeros(rows, 2 * m)?;
                backend.fourier_encode(&coords, &self.frequencies, &mut features);
                clipped_readout(backend, &[&features], &self.weights)
            })
        })
    }

    fn feature_label(&self, index: usize) -> String {
        let m = self.frequencies.cols();
        let (kind, j) = if index < m {
            ("sin", index)
        } else {
            ("cos", index - m)
        };
        format!("{kind} {j}")
    }
}
