//! "Fit at S/k, score at S": a coordinate model fitted on the working image downsampled by k,
//! rendered at S, scored against the true S image beside bicubic and Lanczos upsampling of the
//! same downsampled image, with seed 004's checks (mean gradient magnitude, radially averaged
//! power spectrum, the share of power above the training grid's Nyquist radius).

use super::resample::{Resample, resize};
use super::spectrum;
use crate::imaging::host_mse;
use crate::methods::psnr_from_mse;

/// The working image brought down by `factor` as PIL's LANCZOS would (the model's training
/// image).
pub fn downsample(truth: &[f32], side: usize, factor: usize) -> anyhow::Result<Vec<f32>> {
    resize(truth, side, side / factor, Resample::Lanczos3)
}

/// One value per rendering compared.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PerRendering<T> {
    pub model: T,
    pub bicubic: T,
    pub lanczos: T,
    pub truth: T,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spectra {
    /// Radial bin centres in frequency-index units of the S grid.
    pub radius: Vec<f64>,
    pub model: Vec<f64>,
    pub bicubic: Vec<f64>,
    pub lanczos: Vec<f64>,
    pub truth: Vec<f64>,
    /// The training grid's Nyquist radius, S/(2k).
    pub nyquist_radius: f64,
    /// Share of the power beyond it.
    pub hf_share: PerRendering<f64>,
}

/// superres.json.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SuperresReport {
    pub factor: usize,
    pub model_db: f64,
    pub bicubic_db: f64,
    pub lanczos_db: f64,
    /// Mean gradient magnitude of the grey image (numpy.gradient's central differences).
    pub gradient: PerRendering<f64>,
    pub spectrum: Spectra,
}

/// The images a super-resolution comparison shows, at S.
pub struct Renderings {
    pub bicubic: Vec<f32>,
    pub lanczos: Vec<f32>,
}

/// Scores `model` (rendered at `side`) and the two upsamplings of `training` (at
/// `side / factor`) against `truth`.
pub fn evaluate(
    truth: &[f32],
    side: usize,
    factor: usize,
    training: &[f32],
    model: &[f32],
) -> anyhow::Result<(SuperresReport, Renderings)> {
    let coarse = side / factor;
    let bicubic = resize(training, coarse, side, Resample::Bicubic)?;
    let lanczos = resize(training, coarse, side, Resample::Lanczos3)?;
    let psnr = |image: &[f32]| psnr_from_mse(host_mse(image, truth));
    let gradient = |image: &[f32]| spectrum::mean_gradient_magnitude(image, side);
    let power = |image: &[f32]| spectrum::radial_power_spectrum(image, side);
    let nyquist = coarse as f64 / 2.0;
    let share = |image: &[f32]| spectrum::high_frequency_share(image, side, nyquist);
    let truth_spectrum = power(truth)?;
    let report = SuperresReport {
        factor,
        model_db: psnr(model),
        bicubic_db: psnr(&bicubic),
        lanczos_db: psnr(&lanczos),
        gradient: PerRendering {
            model: gradient(model)?,
            bicubic: gradient(&bicubic)?,
            lanczos: gradient(&lanczos)?,
            truth: gradient(truth)?,
        },
        spectrum: Spectra {
            radius: (0..truth_spectrum.len()).map(|r| r as f64).collect(),
            model: power(model)?,
            bicubic: power(&bicubic)?,
            lanczos: power(&lanczos)?,
            truth: truth_spectrum,
            nyquist_radius: nyquist,
            hf_share: PerRendering {
                model: share(model)?,
                bicubic: share(&bicubic)?,
                lanczos: share(&lanczos)?,
                truth: share(truth)?,
            },
        },
    };
    Ok((report, Renderings { bicubic, lanczos }))
}
