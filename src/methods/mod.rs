//! The methods: each one file, each advancing one refinement step at a time.
//!
//! A method is built for one target on one backend, keeps its tensors resident there, and after
//! every [`Method::step`] reports that step's PSNR. Its image is downloaded only when somebody
//! asks for it ([`Method::image`]). The registry ([`registry`]) is the one list that the command
//! line and the window read: adding a method is one file plus one line there.

pub mod cache;
pub mod coord_mlp;
pub mod coordinate_mlp;
pub mod cumulative;
pub mod fourier_mlp;
pub mod fourier_ridge;
pub mod learned_refine;
pub mod memory;
pub mod multiscale;
pub mod params;
pub mod readout;
pub mod refine;
pub mod reservoir;
pub mod shared_trajectory;
pub mod steered_kernel;
pub mod training;
pub mod training_state;
pub mod trajectory;
pub mod wavelet;
pub mod wavelet_dataset;
pub mod wavelet_operator;

use anyhow::bail;

use crate::compute::{Backend, CancelToken, Tensor};
use crate::rng::RngKind;
use crate::target::Target;
pub use cache::{MethodCache, NotReady};
pub use memory::MemoryEstimate;
pub use params::{MethodParams, ParamSpec, ParamValues, Scale};
pub use training_state::TrainingState;

/// What one step produced, small enough to send every step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepReport {
    /// The step, k, iteration or scale index this image belongs to (1-based).
    pub step: usize,
    /// A caption for the step's cell, e.g. "step 3", "k = 5", "scale 2 (ρ 0.62)".
    pub label: String,
    pub psnr_db: f64,
    /// Training loss, for methods that train.
    pub loss: Option<f64>,
    /// For methods with a sigmoid output: how far its values are pushed to 0 and 1, as
    /// 4·mean((y − ½)²) — 1 when every value is pinned there, which a learning rate far too
    /// large does while the loss stays bounded.
    pub saturation: Option<f64>,
    /// Per level of a multi-resolution method (the wavelet operator), coarse to fine; empty
    /// for the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelReport>,
    /// Seen through a mask: the step's scores on the unobserved, observed and validation
    /// pixels (filled in by the session, which holds the truth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<crate::sparse::SetScores>,
}

/// One level of a multi-resolution method's step: PSNRs in dB against the true image at that
/// level (the target's 2×2 average-pooling pyramid).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LevelReport {
    /// Pixels a side.
    pub size: usize,
    /// The prediction from the true lower level.
    pub teacher_forced_db: f64,
    /// The prediction grown level by level from the true coarsest level.
    pub rollout_db: f64,
    /// Nearest-neighbour and bicubic upsampling of the true lower level, for scale.
    pub nearest_db: f64,
    pub bicubic_db: f64,
}

/// One level of a multi-resolution method's images at its latest step, each RGB f32
/// row-major at the level's own side.
#[derive(Clone, Debug, Default)]
pub struct LevelImages {
    pub side: usize,
    /// The true image at this level.
    pub truth: Vec<f32>,
    /// Rollouts, each with its caption: the first from the true coarsest level (the one the
    /// reports' PSNR is of), then any with other noise draws; each is scored against `truth`.
    pub rollouts: Vec<(String, Vec<f32>)>,
    /// Images grown from noise canvases (a folder-trained operator's samples), each with its
    /// caption: new images, so nothing scores them.
    pub samples: Vec<(String, Vec<f32>)>,
    /// From the true lower level: the method's prediction and nearest and bicubic upsampling
    /// (empty at the coarsest level, which nothing predicts).
    pub teacher_forced: Vec<f32>,
    pub nearest: Vec<f32>,
    pub bicubic: Vec<f32>,
}

/// A running method. Its tensors belong to the backend it was created with.
pub trait Method: Send {
    fn name(&self) -> &'static str;
    /// How many steps a full run has.
    fn total_steps(&self) -> usize;
    fn steps_done(&self) -> usize;
    fn is_done(&self) -> bool {
        self.steps_done() >= self.total_steps()
    }
    /// Advances one step. Calling it after the last step is an error.
    ///
    /// A step that sees its run's [`CancelToken`] set gives up with
    /// [`crate::compute::Cancelled`] (inside the error) and leaves the method as it was before
    /// the step, or at a consistent point inside it from which calling `step` again finishes
    /// the same step with the same result: nothing is committed (step counters, optimizer
    /// moments, weights, readouts) until the step can no longer be cancelled.
    fn step(&mut self, backend: &dyn Backend) -> anyhow::Result<StepReport>;
    /// The latest step's image, RGB f32 row-major (size·size·3).
    fn image(&self, backend: &dyn Backend) -> Vec<f32>;
    /// The tensor (size²×3) that [`Method::image`] downloads, where the image is one tensor on
    /// the backend as it is: the window then shows it from the device without a download.
    fn image_tensor(&self) -> Option<&Tensor> {
        None
    }
    /// What the model sees at the latest step, one column per channel (size·size rows):
    /// reservoir units, Fourier sin/cos channels. `None` before the first step or for methods
    /// without such features. Only downloaded when a view asks.
    fn features(&self) -> Option<&Tensor> {
        None
    }
    /// Caption of feature channel `index`.
    fn feature_label(&self, index: usize) -> String {
        format!("unit {index}")
    }
    /// Whether step `step`'s image belongs in the trajectory (the window's grid, the command
    /// line's trajectory.png). Every step for the reservoir methods; trained methods take
    /// hundreds of steps and keep a few (1, 2, 5, 10, 20, 50, …). Steps not kept still report
    /// their PSNR and loss, and the window still shows the latest image.
    fn keep_image(&self, _step: usize) -> bool {
        true
    }
    /// The intermediate images of one evaluation, for methods that refine internally
    /// (learned-refine's K iterations), RGB f32 each; the last one is [`Method::image`]'s
    /// image (the window reads these back in its place). Downloaded only when asked; `None`
    /// (without reading anything back) for methods that have none.
    fn iterates(&self, _backend: &dyn Backend) -> Option<Vec<Vec<f32>>> {
        None
    }
    /// A multi-resolution method's images of its latest step, coarse to fine, each at its own
    /// side (the wavelet operator's levels). Downloaded only when a view asks; `None` (without
    /// reading anything back) for single-resolution methods.
    fn levels(&self, _backend: &dyn Backend) -> Option<Vec<LevelImages>> {
        None
    }
    /// What the run trains on when it is not the window's image (a folder: "40 images of
    /// faces at 128² (4 held out)"); read once after the build.
    fn trains_on(&self) -> Option<String> {
        None
    }
    /// The files the run trains on when they are not the image (a folder's images), each with
    /// its hash, for the provenance of what is saved; read once after the build.
    fn data_files(&self) -> Vec<crate::provenance::DatasetFile> {
        Vec::new()
    }
    /// What the user should know about the run's data (files of a folder that were skipped,
    /// each with why); read once after the build.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Everything its next step depends on (weights, optimizer moments and count, the exact
    /// position of every random stream it still draws from), downloaded, for a checkpoint.
    /// `None` for methods that are not trained ([`MethodInfo::resumable`]).
    fn training_state(&self, _backend: &dyn Backend) -> Option<TrainingState> {
        None
    }
    /// Puts `state` (a run's [`Method::training_state`] with the same parameters) into this
    /// freshly built method, so that its next step is the one the saved run would have taken,
    /// bit for bit on the same backend. Everything is checked first: a state that does not
    /// fit is refused with a message and the method is left as it was built. Its image is that
    /// of the build until the next step.
    fn restore(&mut self, _backend: &dyn Backend, _state: &TrainingState) -> anyhow::Result<()> {
        bail!("{} is not trained: it has no state to restore", self.name())
    }
    /// The latest step's model evaluated at any model coordinates (`coords`: (x, y) pairs in
    /// the training frame, see [`crate::target::rendering_grid`]), RGB f32 per coordinate in
    /// [0, 1], evaluated in row blocks so a large rendering never needs one huge tensor.
    /// `None` for methods whose output is not a function of the coordinate alone. Cancelled,
    /// it gives up between blocks.
    fn render(
        &self,
        _backend: &dyn Backend,
        _coords: &[f32],
        _cancel: &CancelToken,
    ) -> Option<anyhow::Result<Vec<f32>>> {
        None
    }
}

/// Rows of a rendering evaluated at once by [`Method::render`].
pub const RENDER_BLOCK_ROWS: usize = 16_384;

/// Runs `evaluate(block, rows)` over `coords` ((x, y) pairs) in blocks of
/// [`RENDER_BLOCK_ROWS`] and joins the RGB results; gives up between blocks once `cancel` is set.
pub fn render_in_blocks(
    coords: &[f32],
    cancel: &CancelToken,
    mut evaluate: impl FnMut(&[f32], usize) -> anyhow::Result<Vec<f32>>,
) -> anyhow::Result<Vec<f32>> {
    let mut out = Vec::with_capacity(coords.len() / 2 * 3);
    for block in coords.chunks(2 * RENDER_BLOCK_ROWS) {
        cancel.check()?;
        out.extend(evaluate(block, block.len() / 2)?);
    }
    Ok(out)
}

/// Everything a method is built from.
pub struct Setup<'a> {
    pub target: &'a Target,
    pub backend: &'a dyn Backend,
    pub rng: RngKind,
    pub params: &'a ParamValues,
    /// What methods share (reservoir draws, unrolled reservoirs), owned by the caller.
    pub cache: &'a MethodCache,
    /// Set by the caller when this run's work is no longer wanted; the method keeps a clone
    /// and checks it between the chunks of long steps (and the build may check it too).
    pub cancel: &'a CancelToken,
    /// A folder of images to train on instead of the target, for methods that can
    /// ([`MethodInfo::trains_on_folder`]); the others never see one.
    pub folder: Option<&'a std::path::Path>,
}

impl Setup<'_> {
    /// Seen through a mask: the coordinates (rows × 2) and values (rows × 3) of the pixels a
    /// method fits on, uploaded; `None` when it fits every pixel.
    pub fn masked_training_set(&self) -> anyhow::Result<Option<(Tensor, Tensor)>> {
        let Some(pixels) = self.target.training_pixels() else {
            return Ok(None);
        };
        let (coords, values) = self.target.training_set();
        Ok(Some((
            self.backend.upload(pixels.len(), 2, &coords)?,
            self.backend.upload(pixels.len(), 3, &values)?,
        )))
    }
}

/// One entry of the registry.
pub struct MethodInfo {
    /// As used on the command line (`--method trajectory`).
    pub name: &'static str,
    pub title: &'static str,
    /// One sentence for tooltips and `--help`.
    pub summary: &'static str,
    /// What the method will hold for these parameters at this working size (pixels a side),
    /// checked before it is built.
    pub estimate: fn(&ParamValues, usize) -> MemoryEstimate,
    pub params: &'static [ParamSpec],
    /// Whether the window runs it on first start. Off for a method too slow per step to share
    /// the first seconds (cumulative refits a readout that grows with k).
    pub default_on: bool,
    /// Whether its steps are scales, coarse to fine (the scales view shows them as such).
    pub steps_are_scales: bool,
    /// Whether each step has images at several resolutions ([`Method::levels`]): the scales
    /// view shows them, and `inrlab run` writes scales.png.
    pub has_levels: bool,
    /// Whether it can train on a folder of images ([`Setup::folder`]; the window's folder
    /// picker, `inrlab run --dataset`).
    pub trains_on_folder: bool,
    /// Whether it is trained step by step and can save and resume its state (checkpoints:
    /// [`Method::training_state`], [`Method::restore`]).
    pub resumable: bool,
    /// Whether it fits on [`Target::training_pixels`] when the target is seen through a mask
    /// (sparse reconstruction, the holdout protocol) and renders every pixel.
    pub fits_observed_pixels: bool,
    pub create: fn(&Setup) -> anyhow::Result<Box<dyn Method>>,
}

/// Every method, in the order the window lists them.
pub fn registry() -> &'static [MethodInfo] {
    &[
        trajectory::INFO,
        cumulative::INFO,
        refine::INFO,
        multiscale::INFO,
        fourier_ridge::INFO,
        fourier_mlp::INFO,
        coord_mlp::INFO,
        learned_refine::INFO,
        wavelet::INFO,
        steered_kernel::INFO,
    ]
}

/// The methods that fit from a mask and render anywhere ([`MethodInfo::fits_observed_pixels`]),
/// each by `label` (its name, its title), as "a, b and c" for messages.
pub fn fitting_observed_pixels(label: fn(&MethodInfo) -> &'static str) -> String {
    let labels: Vec<&str> = (registry().iter())
        .filter(|info| info.fits_observed_pixels)
        .map(label)
        .collect();
    match labels.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub fn find(name: &str) -> anyhow::Result<&'static MethodInfo> {
    match registry().iter().find(|info| info.name == name) {
        Some(info) => Ok(info),
        None => {
            let names: Vec<_> = registry().iter().map(|m| m.name).collect();
            bail!("unknown method '{name}' (known: {})", names.join(", "))
        }
    }
}

impl MethodInfo {
    /// Its name and parameters, for the rules in [`params`].
    pub const fn param_list(&self) -> MethodParams {
        MethodParams {
            method: self.name,
            specs: self.params,
        }
    }

    /// Builds the method after checking every parameter against this method's specs and its
    /// memory estimate against what the backend can give.
    pub fn build(&self, setup: &Setup) -> anyhow::Result<Box<dyn Method>> {
        setup.params.validate(self.name, self.params)?;
        if let Some(observation) = &setup.target.observation
            && !self.fits_observed_pixels
        {
            bail!(
                "{} cannot fit from a fraction of the pixels ({}); {} can",
                self.name,
                observation.spec.mask,
                fitting_observed_pixels(|info| info.name)
            );
        }
        let budget = setup.backend.memory_budget();
        let size = match setup.folder {
            Some(_) if self.trains_on_folder => {
                wavelet_dataset::dataset_size_for(setup.target.size)
            }
            _ => setup.target.size,
        };
        self.check_memory(setup.params, size, &budget)?;
        (self.create)(setup)
    }

    /// The memory estimate for `params` at working size `size`, or an error in one line when
    /// it does not fit `budget`, e.g. "cumulative: hidden 4096 at 512² needs ≈ 9.7 GB, 3.1 GB
    /// are free".
    pub fn check_memory(
        &self,
        params: &ParamValues,
        size: usize,
        budget: &crate::compute::MemoryBudget,
    ) -> anyhow::Result<MemoryEstimate> {
        let estimate = (self.estimate)(params, size);
        match estimate.refusal(budget, &self.describe(params, size)) {
            Some(refusal) => bail!("{refusal}"),
            None => Ok(estimate),
        }
    }

    /// "cumulative: hidden 4096, steps 40 at 512²": the method with the sizes set explicitly
    /// (whole-number parameters other than seeds and options), which are what memory grows
    /// with.
    fn describe(&self, params: &ParamValues, size: usize) -> String {
        let sizes: Vec<String> = self
            .params
            .iter()
            .filter(|spec| spec.integer && !spec.is_choice() && spec.name != "seed")
            .filter_map(|spec| {
                params
                    .explicit(spec.name)
                    .map(|value| format!("{} {value}", spec.name))
            })
            .collect();
        if sizes.is_empty() {
            format!("{} at {size}²", self.name)
        } else {
            format!("{}: {} at {size}²", self.name, sizes.join(", "))
        }
    }
}

/// PSNR in dB of an image with the given mean squared error over [0, 1] values, capped at
/// 100 dB so that a perfect fit stays a finite number in JSON and plots.
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse.is_nan() {
        return f64::NAN;
    }
    (-10.0 * mse.max(1e-10).log10()).min(100.0)
}

/// Clips `image` into [0, 1] and returns its PSNR against `target`.
pub(crate) fn clipped_psnr(backend: &dyn Backend, image: &mut Tensor, target: &Tensor) -> f64 {
    backend.clip(image, 0.0, 1.0);
    psnr_from_mse(backend.mse(image, target))
}
