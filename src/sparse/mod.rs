//! Fitting from a fraction of the pixels (seed 003) and rendering finer than the data (seed 004).
//!
//! An [`Observation`] rides on the [`crate::target::Target`]: which pixels a method may fit on
//! (the training share of the observed ones), which observed pixels are held out for validation,
//! which are unobserved, and the baselines a user would otherwise use (Delaunay-linear and
//! nearest-neighbour interpolation), computed once per mask. Methods read only
//! [`crate::target::Target::training_pixels`]; the session scores every step on the sets
//! ([`Observation::score`]).

pub mod interpolate;
pub mod mask;
pub mod resample;
pub mod spectrum;
pub mod ssim;
pub mod superres;
pub mod zoom;

#[cfg(test)]
pub(crate) mod testimage;

use std::fmt;

use crate::methods::psnr_from_mse;
pub use mask::{Mask, MaskSpec, Split};

/// Everything that decides which pixels a run sees, as the user gives it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ObservationSpec {
    /// `random:0.1`, `grid:3`, `center:0.1`, or `holdout` (Tancik et al.'s even pixels).
    pub mask: String,
    /// Seeds the mask and the validation draw.
    pub seed: u32,
    /// Share of the observed pixels kept out of the fit and scored every step (0: off).
    pub validation_share: f64,
    /// Stop a trained run once its validation PSNR has not improved for this many steps
    /// (0: run every step).
    #[serde(default)]
    pub patience: usize,
    /// Once a validated run has finished, fit the method again on every observed pixel
    /// (validation share included) for as many steps as its best-validation step: validation
    /// chooses how long to fit, and nothing the user observed is left out of the answer.
    #[serde(default)]
    pub refit: bool,
}

impl ObservationSpec {
    pub const DEFAULT_VALIDATION_SHARE: f64 = 0.1;

    /// The spelling that marks Tancik et al.'s protocol: train on the even pixels
    /// `[::2, ::2]`, score on the odd ones `[1::2, 1::2]`.
    pub const HOLDOUT: &'static str = "holdout";

    pub fn is_holdout(&self) -> bool {
        self.mask == Self::HOLDOUT
    }

    /// Whether a finished run is fitted again on every observed pixel.
    pub fn refits(&self) -> bool {
        self.refit && self.validation_share > 0.0
    }
}

impl fmt::Display for ObservationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mask)?;
        if self.validation_share > 0.0 {
            write!(
                f,
                ", {:.0}% of it for validation",
                100.0 * self.validation_share
            )?;
            if self.refit {
                write!(f, ", then refit on all of it")?;
            }
        }
        Ok(())
    }
}

/// PSNR and SSIM of one image on the sets of an [`Observation`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SetScores {
    /// On the pixels nobody observed: what reconstruction is for.
    pub unobserved_db: f64,
    /// On the observed pixels (training and validation).
    pub observed_db: f64,
    /// On the held-out share of the observed pixels; `None` when validation is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_db: Option<f64>,
    /// skimage's SSIM map (Gaussian window σ = 1.5) over the whole image, averaged over the
    /// unobserved pixels, and over the observed ones.
    pub unobserved_ssim: f64,
    pub observed_ssim: f64,
    /// Tancik et al.'s held-out odd pixels `[1::2, 1::2]`, for the holdout protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heldout_db: Option<f64>,
}

/// An interpolation baseline: its image and its scores.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub name: &'static str,
    pub image: Vec<f32>,
    pub scores: SetScores,
}

/// Which pixels of the target a run may see, and the baselines on them.
#[derive(Debug)]
pub struct Observation {
    pub spec: ObservationSpec,
    pub side: usize,
    pub observed: Vec<bool>,
    pub split: Split,
    /// Every observed pixel, ascending (training and validation).
    pub observed_pixels: Vec<u32>,
    /// The holdout protocol's scored pixels (odd rows and columns).
    pub heldout: Option<Vec<u32>>,
    /// Delaunay-linear, then nearest neighbour, from every observed pixel.
    pub baselines: Vec<Baseline>,
}

impl Observation {
    /// Builds the mask of `spec` for `pixels` (RGB, `side`² pixels) and interpolates the
    /// baselines from the observed pixels.
    pub fn new(spec: ObservationSpec, pixels: &[f32], side: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (0.0..1.0).contains(&spec.validation_share),
            "the validation share must be at least 0 and below 1, not {}",
            spec.validation_share
        );
        let (mask, heldout) = if spec.is_holdout() {
            anyhow::ensure!(
                side >= 2,
                "the holdout protocol needs at least 2 pixels a side"
            );
            let mask = mask::build(MaskSpec::Grid { stride: 2 }, side, spec.seed);
            let odd = (0..side * side)
                .filter(|&i| (i / side) % 2 == 1 && (i % side) % 2 == 1)
                .map(|i| i as u32)
                .collect();
            (mask, Some(odd))
        } else {
            let mask_spec: MaskSpec = spec.mask.parse()?;
            (mask::build(mask_spec, side, spec.seed), None)
        };
        let observed_count = mask.count();
        anyhow::ensure!(
            observed_count >= 3,
            "the mask {} observes {observed_count} of the {}² pixels; at least 3 are needed",
            spec.mask,
            side
        );
        let split = mask.split(spec.validation_share, spec.seed)?;
        anyhow::ensure!(
            !split.train.is_empty(),
            "the validation share leaves no pixel to fit on"
        );
        let observed = mask.observed_indices();
        let mut observation = Observation {
            spec,
            side,
            observed: mask.observed,
            split,
            observed_pixels: observed.clone(),
            heldout,
            baselines: Vec::new(),
        };
        let interpolated = [
            (
                "Delaunay linear",
                interpolate::delaunay_linear(&observed, pixels, side)?,
            ),
            (
                "nearest neighbour",
                interpolate::nearest(&observed, pixels, side)?,
            ),
        ];
        for (name, image) in interpolated {
            let scores = observation.score(&image, pixels);
            observation.baselines.push(Baseline {
                name,
                image,
                scores,
            });
        }
        Ok(observation)
    }

    /// The same mask with nothing held out: what a refit fits on. The unobserved pixels and
    /// the baselines are the same, so its scores compare with the validated run's.
    pub fn without_validation(&self) -> Observation {
        let mut split = self.split.clone();
        split.train = self.observed_pixels.clone();
        split.validation.clear();
        Observation {
            spec: ObservationSpec {
                validation_share: 0.0,
                patience: 0,
                refit: false,
                ..self.spec.clone()
            },
            side: self.side,
            observed: self.observed.clone(),
            split,
            observed_pixels: self.observed_pixels.clone(),
            heldout: self.heldout.clone(),
            baselines: self.baselines.clone(),
        }
    }

    /// `image`'s PSNR and SSIM on each set, against `truth`.
    pub fn score(&self, image: &[f32], truth: &[f32]) -> SetScores {
        // SSIM's 11-pixel window needs an image at least that large; smaller ones get NaN.
        let ssim_map = ssim::ssim_map(image, truth, self.side).ok();
        let ssim_over = |set: &[u32]| {
            ssim_map
                .as_ref()
                .map_or(f64::NAN, |map| ssim::mean_over(map, set))
        };
        let observed = &self.observed_pixels;
        let set_psnr = |set: &[u32]| psnr_from_mse(set_mse(image, truth, set));
        SetScores {
            unobserved_db: set_psnr(&self.split.unobserved),
            observed_db: set_psnr(observed),
            validation_db: (!self.split.validation.is_empty())
                .then(|| set_psnr(&self.split.validation)),
            unobserved_ssim: ssim_over(&self.split.unobserved),
            observed_ssim: ssim_over(observed),
            heldout_db: self.heldout.as_deref().map(set_psnr),
        }
    }

    /// The neutral grey that marks unobserved pixels in the sparse input picture, and the
    /// observed pixels as they are.
    pub fn sparse_input(&self, truth: &[f32]) -> Vec<f32> {
        let mut picture = vec![0.5f32; truth.len()];
        for (i, &seen) in self.observed.iter().enumerate() {
            if seen {
                picture[3 * i..3 * i + 3].copy_from_slice(&truth[3 * i..3 * i + 3]);
            }
        }
        picture
    }

    /// "random:0.1 · 1 710 of 16 384 pixels (10.4%), 171 for validation".
    pub fn describe(&self) -> String {
        let observed = self.observed_pixels.len();
        let total = self.observed.len();
        let mut text = format!(
            "{} · {observed} of {total} pixels ({:.1}%)",
            self.spec.mask,
            100.0 * observed as f64 / total as f64
        );
        if !self.split.validation.is_empty() {
            text.push_str(&format!(", {} for validation", self.split.validation.len()));
        }
        text
    }
}

/// Mean squared error over the pixels of `set` (every channel), in f64.
pub fn set_mse(image: &[f32], truth: &[f32], set: &[u32]) -> f64 {
    if set.is_empty() {
        return f64::NAN;
    }
    let mut sum = 0.0f64;
    for &pixel in set {
        let at = 3 * pixel as usize;
        for c in 0..3 {
            let d = f64::from(image[at + c]) - f64::from(truth[at + c]);
            sum += d * d;
        }
    }
    sum / (3 * set.len()) as f64
}

/// The best step of a run by its validation PSNR (with its scores and image), so a run that
/// goes on to memorise the observed pixels can be shown, and stopped, where it generalised best.
#[derive(Clone, Debug)]
pub struct BestStep {
    pub step: usize,
    pub scores: SetScores,
    pub image: Vec<f32>,
}

/// A validated run's method fitted again on every observed pixel, to its best-validation step.
#[derive(Clone, Debug)]
pub struct Refit {
    /// The best-validation step it was fitted to.
    pub step: usize,
    pub scores: SetScores,
    pub image: Vec<f32>,
}

/// Tracks [`BestStep`] over a run's steps.
#[derive(Clone, Debug, Default)]
pub struct BestTracker {
    pub best: Option<BestStep>,
    /// Steps since the best one.
    pub since_best: usize,
}

impl BestTracker {
    /// Records a step: it becomes the best, image and all, when its validation PSNR beats the
    /// best so far.
    pub fn observe(&mut self, step: usize, scores: SetScores, image: &[f32]) {
        let better = scores
            .validation_db
            .filter(|db| db.is_finite())
            .is_some_and(|db| {
                (self.best.as_ref())
                    .is_none_or(|best| best.scores.validation_db.is_none_or(|b| db > b))
            });
        if better {
            self.best = Some(BestStep {
                step,
                scores,
                image: image.to_vec(),
            });
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
    }

    /// Whether the run has gone `patience` steps past its best (never with patience 0).
    pub fn exhausted(&self, patience: usize) -> bool {
        patience > 0 && self.best.is_some() && self.since_best >= patience
    }
}
