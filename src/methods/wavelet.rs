//! `wavelet`: seed 001's scale-recursive Haar wavelet operator, trained live on the dropped
//! image. From the true 4×4, every level doubles: x↑ = NearestUpsample(x_r),
//! x̂ = T(x↑, ε_r, coordinates, level), x_2r = clip(x↑ + x̂, 0, 1), up to the working size, with
//! one weight-tied T ([`super::wavelet_operator`]).
//!
//! A training step is teacher-forced: T sees the true level r for every transition r → 2r at
//! once (the target's 2×2 average-pooling pyramid), L1 per level with weights w_ℓ (plus an
//! optional gradient-difference term), Adam. After the update the image is grown from the true
//! 4×4 (the rollout), one level at a time, holding only that level's activations; its PSNR is
//! the step's. The seed's VGG perceptual and PatchGAN terms need pretrained or adversarial
//! networks and are left out.

use super::memory::Tally;
use super::params::ChoiceOption;
use super::training::{
    LEARNING_RATE, OPTIMIZER, Optimizer, OptimizerKind, SEED, is_milestone_step, learning_rate,
};
use super::training_state::StateLayout;
use super::wavelet_dataset::FolderRun;
use super::wavelet_operator::{Operator, Shape, Workspace};
use super::{
    LevelImages, LevelReport, MemoryEstimate, Method, MethodInfo, ParamSpec, ParamValues, Setup,
    StepReport, TrainingState, psnr_from_mse,
};
use crate::compute::{Backend, CancelToken, Cancelled, Grids, Tensor, Upsample};
use crate::rng::{NormalSource, NumpyRandomState, RngKind, normal_source};

/// The coarsest level: the rollout starts from the true (or a noise) 4×4.
pub const BASE_SIDE: usize = 4;

pub const VARIANT: ParamSpec = ParamSpec::choice(
    "variant",
    "variant",
    "default: Fourier coordinates and a 3×3 depthwise skip, the variant that beats bicubic \
     upsampling at every level (measured against seed 001's prototype). seed: seed 001 as \
     written (raw coordinates, 1×1 skip, one Haar level). The three settings below follow it \
     unless set.",
    &["default", "seed"],
    0,
);

/// [`VARIANT`]'s options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Default,
    Seed,
}

impl ChoiceOption for Variant {
    const ALL: &'static [Self] = &[Variant::Default, Variant::Seed];
    fn name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Seed => "seed",
        }
    }
}

pub const COORDINATES: ParamSpec = ParamSpec::choice(
    "coordinates",
    "coordinates",
    "What T sees of where a pixel is: fourier (m random frequencies of scale σ, sin and cos) \
     or raw (x, y at pixel centres). Follows the variant unless set.",
    &["fourier", "raw"],
    0,
)
.default_follows(&VARIANT, &[0.0, 1.0]);
pub const SKIP: ParamSpec = ParamSpec::choice(
    "skip",
    "skip path",
    "1x1: the seed's pointwise skip, so each output 2×2 cell sees only its parent pixel; \
     3x3: plus a 3×3 depthwise stencil that lets it see the neighbours. Follows the variant \
     unless set.",
    &["3x3", "1x1"],
    0,
)
.default_follows(&VARIANT, &[0.0, 1.0]);
pub const HAAR_LEVELS: ParamSpec = ParamSpec::integer(
    "haar-levels",
    "Haar levels J",
    "Levels of the Haar transform inside each block (the seed's is 1); each level's high \
     bands get their own 1×1 convolution.",
    1.0,
    1.0,
    3.0,
);
pub const CHANNELS: ParamSpec = ParamSpec::integer(
    "channels",
    "channels C",
    "Width of T: channels after the lift.",
    32.0,
    1.0,
    256.0,
);
pub const BLOCKS: ParamSpec = ParamSpec::integer(
    "blocks",
    "blocks B",
    "Residual wavelet blocks in T.",
    4.0,
    1.0,
    16.0,
);
pub const FREQUENCIES: ParamSpec = ParamSpec::integer(
    "frequencies",
    "frequencies m",
    "Random frequencies of the Fourier coordinates (2m input channels).",
    16.0,
    1.0,
    256.0,
);
pub const FOURIER_SCALE: ParamSpec = super::params::common::FOURIER_SCALE;
pub const NOISE_SIGMA: ParamSpec = ParamSpec::real(
    "noise-sigma",
    "noise σ_r",
    "Standard deviation of the noise channel ε_r fed to T at every level (0: none). With \
     noise, the scales view shows several rollouts drawn with different noise.",
    0.0,
    0.0,
    2.0,
);
pub const LEVEL_WEIGHT: ParamSpec = ParamSpec::real(
    "level-weight",
    "level weight γ",
    "Per-level loss weights w_ℓ = γ^(levels above ℓ): 1 weighs every level alike (the \
     prototype); below 1 the coarse levels count less.",
    1.0,
    0.01,
    10.0,
)
.logarithmic();
pub const GRADIENT_WEIGHT: ParamSpec = ParamSpec::real(
    "gradient-weight",
    "gradient loss λ_g",
    "Weight of seed 001's gradient-difference term ‖∇x_gt − ∇x_pred‖₁ per level (0: off).",
    0.0,
    0.0,
    10.0,
);
pub const SSIM_WEIGHT: ParamSpec = ParamSpec::real(
    "ssim-weight",
    "SSIM loss λ_s",
    "Weight of seed 001's structural term λ_s·(1 − SSIM) per level, with the level weights w_ℓ \
     (Gaussian window σ = 1.5, per channel; 0: off).",
    0.0,
    0.0,
    10.0,
);
pub const ROLLOUT_LOSS: ParamSpec = ParamSpec::choice(
    "rollout-loss",
    "rollout loss",
    "on: each step also grows the image from the true 4×4 with T and adds every level's L1 \
     (weights w_ℓ) of that rollout to the loss, back-propagated through the whole chain, so \
     T learns from its own predictions rather than only from the true lower levels.",
    &["off", "on"],
    0,
);
pub const WAVELET_STEPS: ParamSpec = ParamSpec::integer(
    "steps",
    "training steps",
    "Teacher-forced Adam steps; each trains every level once and regrows the image.",
    2000.0,
    1.0,
    100_000.0,
);

const PARAMS: &[ParamSpec] = &[
    VARIANT,
    COORDINATES,
    SKIP,
    HAAR_LEVELS,
    CHANNELS,
    BLOCKS,
    FREQUENCIES,
    FOURIER_SCALE,
    NOISE_SIGMA,
    LEVEL_WEIGHT,
    GRADIENT_WEIGHT,
    SSIM_WEIGHT,
    ROLLOUT_LOSS,
    OPTIMIZER,
    LEARNING_RATE,
    WAVELET_STEPS,
    SEED,
];

pub const INFO: MethodInfo = MethodInfo {
    name: "wavelet",
    title: "Wavelet operator",
    summary: "Seed 001's weight-tied wavelet neural operator grows the image from 4×4, doubling \
              each level; trained live with teacher forcing on every level.",
    estimate,
    params: PARAMS,
    default_on: false,
    steps_are_scales: false,
    has_levels: true,
    trains_on_folder: true,
    resumable: true,
    fits_observed_pixels: false,
    create: |setup| match setup.folder {
        Some(folder) => Ok(Box::new(FolderRun::from_setup(setup, folder)?)),
        None => Ok(Box::new(Wavelet::new(setup)?)),
    },
};

/// The settings of one run, read from the parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub fourier: bool,
    pub depthwise: bool,
    pub haar_levels: usize,
    pub channels: usize,
    pub blocks: usize,
    pub frequencies: usize,
    pub fourier_scale: f64,
    pub noise_sigma: f32,
    pub level_weight: f64,
    pub gradient_weight: f64,
    pub ssim_weight: f64,
    pub rollout_loss: bool,
}

impl Config {
    pub fn from_params(p: &ParamValues) -> anyhow::Result<Self> {
        Ok(Config {
            fourier: p.get_choice(&COORDINATES)? == "fourier",
            depthwise: p.get_choice(&SKIP)? == "3x3",
            haar_levels: p.get_usize(&HAAR_LEVELS),
            channels: p.get_usize(&CHANNELS),
            blocks: p.get_usize(&BLOCKS),
            frequencies: p.get_usize(&FREQUENCIES),
            fourier_scale: p.get(&FOURIER_SCALE),
            noise_sigma: p.get(&NOISE_SIGMA) as f32,
            level_weight: p.get(&LEVEL_WEIGHT),
            gradient_weight: p.get(&GRADIENT_WEIGHT),
            ssim_weight: p.get(&SSIM_WEIGHT),
            rollout_loss: p.get_choice(&ROLLOUT_LOSS)? == "on",
        })
    }

    fn coordinate_channels(&self) -> usize {
        if self.fourier {
            2 * self.frequencies
        } else {
            2
        }
    }

    /// x↑ (3), noise (1), coordinates, level (1).
    pub fn inputs(&self) -> usize {
        3 + 1 + self.coordinate_channels() + 1
    }

    pub fn shape(&self) -> Shape {
        Shape {
            inputs: self.inputs(),
            channels: self.channels,
            blocks: self.blocks,
            haar_levels: self.haar_levels,
            depthwise: self.depthwise,
        }
    }
}

/// The loss of a teacher-forced pass over `count` images stacked as `grids`: per level, the
/// mean over images of L1 and of the optional gradient-difference and 1 − SSIM terms, weighted
/// by w_ℓ = γ^(levels above ℓ). Shared by single-image and folder training.
pub struct LossTerms {
    /// Scales handed to the backend per level (each term's mean and weight folded in).
    pub l1: Vec<f32>,
    gradient: Option<Vec<f32>>,
    ssim: Option<Vec<f32>>,
    count: usize,
}

impl LossTerms {
    pub fn new(config: &Config, sides: &[usize], count: usize) -> Self {
        let levels = sides.len();
        let weights: Vec<f64> = (0..levels)
            .map(|l| config.level_weight.powi((levels - 1 - l) as i32))
            .collect();
        let per_level = |scale: &dyn Fn(usize, f64) -> f64| -> Vec<f32> {
            sides
                .iter()
                .zip(&weights)
                .map(|(&side, &w)| scale(side, w) as f32)
                .collect()
        };
        LossTerms {
            l1: per_level(&|s, w| w / (3 * s * s * count) as f64),
            gradient: (config.gradient_weight > 0.0).then(|| {
                per_level(&|s, w| config.gradient_weight * w / (3 * s * (s - 1) * count) as f64)
            }),
            ssim: (config.ssim_weight > 0.0)
                .then(|| per_level(&|_, w| config.ssim_weight * w / count as f64)),
            count,
        }
    }

    /// `prediction = clip(x↑ + x̂)` and dL/dx̂ into `delta_grad` (through the clip). Returns the
    /// loss and the per-level L1 sums (whose squares give the teacher-forced PSNRs).
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        backend: &dyn Backend,
        grids: Grids,
        x_up: &Tensor,
        delta: &Tensor,
        delta_grad: &mut Tensor,
        prediction: &mut Tensor,
        target: &Tensor,
    ) -> (f64, Vec<crate::compute::LevelSums>) {
        backend.residual_clip(x_up, delta, prediction);
        let sums = backend.l1_grad(prediction, target, grids, &self.l1, delta_grad);
        let weighted = |values: &mut dyn Iterator<Item = f64>, scales: &[f32]| -> f64 {
            values.zip(scales).map(|(v, &scale)| v * scale as f64).sum()
        };
        let mut loss = weighted(&mut sums.iter().map(|s| s.absolute), &self.l1);
        if let Some(scales) = &self.gradient {
            let sums =
                backend.image_gradient_l1_grad(prediction, target, grids, scales, delta_grad);
            loss += weighted(&mut sums.into_iter(), scales);
        }
        if let Some(scales) = &self.ssim {
            let sums = backend.ssim_grad(prediction, target, grids, scales, delta_grad);
            let count = self.count as f64;
            loss += weighted(&mut sums.into_iter().map(|s| count - s), scales);
        }
        backend.clip_backward(x_up, delta, delta_grad);
        (loss, sums)
    }
}

/// Refuses a working size the operator cannot grow to: a power of two, at least 8.
pub fn check_size(size: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        size >= 2 * BASE_SIDE && size.is_power_of_two(),
        "the wavelet operator grows the image from 4×4 by doubling, so it needs a power-of-two \
         working size of at least 8 (64, 128, 256, 512), not {size}"
    );
    Ok(())
}

/// The sides of the levels T predicts: 8, 16, …, `size`.
pub fn predicted_sides(size: usize) -> Vec<usize> {
    std::iter::successors(Some(2 * BASE_SIDE), |s| Some(s * 2))
        .take_while(|&s| s <= size)
        .collect()
}

/// 2×2 average pooling of an RGB image of side `side`.
pub fn average_pool(image: &[f32], side: usize) -> Vec<f32> {
    let half = side / 2;
    let mut out = vec![0.0f32; half * half * 3];
    for y in 0..half {
        for x in 0..half {
            for c in 0..3 {
                let at = |yy: usize, xx: usize| image[(yy * side + xx) * 3 + c];
                let sum = at(2 * y, 2 * x)
                    + at(2 * y, 2 * x + 1)
                    + at(2 * y + 1, 2 * x)
                    + at(2 * y + 1, 2 * x + 1);
                out[(y * half + x) * 3 + c] = sum / 4.0;
            }
        }
    }
    out
}

/// The pyramid of `image` (side `size`) by 2×2 average pooling, coarsest (4×4) first.
pub fn pyramid(image: &[f32], size: usize) -> Vec<Vec<f32>> {
    let mut levels = vec![image.to_vec()];
    let mut side = size;
    while side > BASE_SIDE {
        let next = average_pool(levels.last().expect("a level"), side);
        levels.push(next);
        side /= 2;
    }
    levels.reverse();
    levels
}

/// 2× nearest-neighbour upsampling of an RGB image of side `side`.
pub fn nearest_up(image: &[f32], side: usize) -> Vec<f32> {
    let big = 2 * side;
    let mut out = vec![0.0f32; big * big * 3];
    for y in 0..big {
        for x in 0..big {
            let s = ((y / 2) * side + x / 2) * 3;
            out[(y * big + x) * 3..][..3].copy_from_slice(&image[s..s + 3]);
        }
    }
    out
}

/// 2× bicubic upsampling as PyTorch's `interpolate(mode="bicubic", align_corners=False)`
/// (Keys a = −0.75, half-pixel centres, edge-clamped taps), clipped to [0, 1].
pub fn bicubic_up(image: &[f32], side: usize) -> Vec<f32> {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let big = 2 * side;
    // Taps and weights of each output index along one axis.
    let taps: Vec<([usize; 4], [f64; 4])> = (0..big)
        .map(|i| {
            let source = (i as f64 + 0.5) * 0.5 - 0.5;
            let floor = source.floor();
            let t = source - floor;
            let weights = [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)];
            let index = |k: i64| (floor as i64 + k).clamp(0, side as i64 - 1) as usize;
            ([index(-1), index(0), index(1), index(2)], weights)
        })
        .collect();
    let mut out = vec![0.0f32; big * big * 3];
    for y in 0..big {
        let (rows, wy) = taps[y];
        for x in 0..big {
            let (cols, wx) = taps[x];
            for c in 0..3 {
                let mut value = 0.0f64;
                for (r, &row) in rows.iter().enumerate() {
                    let mut line = 0.0f64;
                    for (q, &col) in cols.iter().enumerate() {
                        line += wx[q] * image[(row * side + col) * 3 + c] as f64;
                    }
                    value += wy[r] * line;
                }
                out[(y * big + x) * 3 + c] = value.clamp(0.0, 1.0) as f32;
            }
        }
    }
    out
}

/// PSNR of two host images.
pub fn host_psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    psnr_from_mse(mse)
}

/// The per-pixel inputs that do not change between steps: coordinates (raw or Fourier) and
/// the level channel, (side²) × (coordinate channels + 1) for transition `transition` of
/// `transitions`.
pub struct Coordinates {
    /// B (2 × m), row-major, for the Fourier encoding.
    frequencies: Option<Vec<f64>>,
}

impl Coordinates {
    pub fn new(config: &Config, rng: RngKind, seed: u64) -> Self {
        let frequencies = config.fourier.then(|| {
            let draws = normal_source(rng, seed.wrapping_add(1000))
                .standard_normals(2 * config.frequencies);
            draws.iter().map(|d| d * config.fourier_scale).collect()
        });
        Coordinates { frequencies }
    }

    /// [`Coordinates::columns`] of every predicted level of a run to `size`.
    pub fn every_level(&self, size: usize) -> Vec<Vec<f32>> {
        let sides = predicted_sides(size);
        let transitions = sides.len();
        sides
            .iter()
            .enumerate()
            .map(|(t, &side)| self.columns(side, t, transitions))
            .collect()
    }

    /// Coordinates at pixel centres, (i + ½)/side, as in the prototype, then the level.
    pub fn columns(&self, side: usize, transition: usize, transitions: usize) -> Vec<f32> {
        let level = transition as f32 / transitions.saturating_sub(1).max(1) as f32;
        let m = self.frequencies.as_ref().map_or(0, |b| b.len() / 2);
        let width = if m > 0 { 2 * m } else { 2 } + 1;
        let mut out = vec![0.0f32; side * side * width];
        for y in 0..side {
            for x in 0..side {
                let row = &mut out[(y * side + x) * width..][..width];
                let (cx, cy) = (
                    (x as f64 + 0.5) / side as f64,
                    (y as f64 + 0.5) / side as f64,
                );
                match &self.frequencies {
                    Some(b) => {
                        for k in 0..m {
                            let phase = 2.0 * std::f64::consts::PI * (cx * b[k] + cy * b[m + k]);
                            row[k] = phase.sin() as f32;
                            row[m + k] = phase.cos() as f32;
                        }
                    }
                    None => {
                        row[0] = cx as f32;
                        row[1] = cy as f32;
                    }
                }
                row[width - 1] = level;
            }
        }
        out
    }
}

/// Lays [x↑ | noise | coordinates and level] side by side on the host.
fn input_rows(x_up: &[f32], noise: Option<&[f32]>, statics: &[f32], inputs: usize) -> Vec<f32> {
    let rows = x_up.len() / 3;
    let static_width = inputs - 4;
    let mut out = vec![0.0f32; rows * inputs];
    for r in 0..rows {
        let row = &mut out[r * inputs..][..inputs];
        row[..3].copy_from_slice(&x_up[3 * r..3 * r + 3]);
        row[3] = noise.map_or(0.0, |n| n[r]);
        row[4..].copy_from_slice(&statics[r * static_width..][..static_width]);
    }
    out
}

/// Grows images level by level with T, holding one level's activations at a time.
pub struct Grower<'a> {
    pub operator: &'a Operator,
    /// Per predicted level (8 … size), its coordinate and level columns
    /// ([`Coordinates::columns`]), made once.
    pub statics: &'a [Vec<f32>],
    /// Final side.
    pub size: usize,
}

/// What a rollout produced.
pub struct Rollout {
    /// The image at every predicted level (8 … size), RGB on the backend.
    pub levels: Vec<Tensor>,
}

impl Grower<'_> {
    /// Grows from `base` (4×4 RGB on the host) to the full size. `noise` draws ε_r
    /// (standard normals scaled by `noise_sigma`) per level; `keep` keeps every level's image
    /// (otherwise only the last). Checks `cancel` between levels.
    pub fn grow(
        &self,
        backend: &dyn Backend,
        base: &[f32],
        noise_sigma: f32,
        noise: &mut dyn NormalSource,
        keep: bool,
        cancel: &CancelToken,
    ) -> anyhow::Result<Rollout> {
        let sides = predicted_sides(self.size);
        let shape = self.operator.shape;
        let mut current = backend.upload(BASE_SIDE * BASE_SIDE, 3, base)?;
        let mut kept = Vec::new();
        for (transition, &side) in sides.iter().enumerate() {
            cancel.check()?;
            let rows = side * side;
            let mut x_up = backend.zeros(rows, 3)?;
            backend.upsample2x(&current, side / 2, side / 2, Upsample::Nearest, &mut x_up);
            let statics = &self.statics[transition];
            let noise_column: Vec<f32> = if noise_sigma > 0.0 {
                (0..rows)
                    .map(|_| (noise.standard_normal() as f32) * noise_sigma)
                    .collect()
            } else {
                vec![0.0; rows]
            };
            let input = {
                let noise_tensor = backend.upload(rows, 1, &noise_column)?;
                let statics = backend.upload(rows, shape.inputs - 4, statics)?;
                let mut input = backend.zeros(rows, shape.inputs)?;
                backend.concat_cols(&[&x_up, &noise_tensor, &statics], &mut input);
                input
            };
            let mut work = Workspace::new(backend, shape, Grids::single(side), false)?;
            self.operator.forward(backend, &input, &mut work, cancel)?;
            let mut out = backend.zeros(rows, 3)?;
            backend.residual_clip(&x_up, &work.delta, &mut out);
            drop(work);
            let previous = std::mem::replace(&mut current, out);
            if keep && transition > 0 {
                kept.push(previous);
            }
        }
        kept.push(current);
        Ok(Rollout { levels: kept })
    }
}

/// One level of the rollout trained through (the rollout loss): its activations and
/// gradients.
struct ChainLevel {
    side: usize,
    work: Workspace,
    statics: Tensor,
    noise: Tensor,
    input: Tensor,
    x_up: Tensor,
    out: Tensor,
    input_grad: Tensor,
    x_up_grad: Tensor,
}

/// What the rollout loss needs beside the teacher-forced buffers.
struct Chain {
    levels: Vec<ChainLevel>,
    base: Tensor,
    /// Picks x↑'s three columns out of dL/dinput (inputs × 3), with a zero bias.
    selection: Tensor,
    zero_bias: Tensor,
    /// The teacher-forced pass's gradients, to which each level's are added.
    accumulated: Vec<Tensor>,
    /// dL/d(level image) flowing down from the level above.
    carried: Vec<Tensor>,
}

impl Chain {
    fn new(
        backend: &dyn Backend,
        operator: &Operator,
        statics: &[Vec<f32>],
        size: usize,
        base: &[f32],
    ) -> anyhow::Result<Self> {
        let shape = operator.shape;
        let mut levels = Vec::new();
        let mut carried = Vec::new();
        for (l, side) in predicted_sides(size).into_iter().enumerate() {
            let rows = side * side;
            levels.push(ChainLevel {
                side,
                work: Workspace::new(backend, shape, Grids::single(side), true)?,
                statics: backend.upload(rows, shape.inputs - 4, &statics[l])?,
                noise: backend.zeros(rows, 1)?,
                input: backend.zeros(rows, shape.inputs)?,
                x_up: backend.zeros(rows, 3)?,
                out: backend.zeros(rows, 3)?,
                input_grad: backend.zeros(rows, shape.inputs)?,
                x_up_grad: backend.zeros(rows, 3)?,
            });
            carried.push(backend.zeros(rows, 3)?);
        }
        let mut selection = vec![0.0f32; shape.inputs * 3];
        for c in 0..3 {
            selection[c * 3 + c] = 1.0;
        }
        let accumulated = operator
            .parameters()
            .iter()
            .map(|p| backend.zeros(p.grad.rows(), p.grad.cols()))
            .collect::<anyhow::Result<_>>()?;
        Ok(Chain {
            levels,
            base: backend.upload(BASE_SIDE * BASE_SIDE, 3, base)?,
            selection: backend.upload(shape.inputs, 3, &selection)?,
            zero_bias: backend.zeros(1, 3)?,
            accumulated,
            carried,
        })
    }
}

/// The checkpoint's name of the training noise stream (image and folder runs).
pub const NOISE_STREAM: &str = "noise";

/// A step whose weights are updated but whose rollout and report are not made yet.
#[derive(Clone, Debug)]
struct Pending {
    loss: f64,
    teacher_forced_db: Vec<f64>,
}

pub struct Wavelet {
    config: Config,
    operator: Operator,
    optimizer: Optimizer,
    /// Coordinate and level columns of every predicted level.
    statics: Vec<Vec<f32>>,
    size: usize,
    /// Host pyramid of the target, 4×4 first; nearest and bicubic of each lower level.
    truth: Vec<Vec<f32>>,
    nearest: Vec<Vec<f32>>,
    bicubic: Vec<Vec<f32>>,
    nearest_db: Vec<f64>,
    bicubic_db: Vec<f64>,
    /// The true predicted levels (8 … size) on the backend, for the rollout's PSNR.
    truth_levels: Vec<Tensor>,
    /// Teacher forcing: all predicted levels stacked (8 … size).
    grids: Grids,
    work: Workspace,
    x_up: Tensor,
    target: Tensor,
    prediction: Tensor,
    /// The inputs without noise (host, for a noise channel), and on the backend.
    input_host: Vec<f32>,
    input: Tensor,
    loss: LossTerms,
    /// The rollout trained through, with the rollout loss on.
    chain: Option<Chain>,
    /// The training noise stream; drawn once per step.
    noise: NumpyRandomState,
    /// The noise stream as the step in progress found it (what a checkpoint records while
    /// that step's noise is drawn but its update is not made).
    noise_at_step_start: NumpyRandomState,
    noise_drawn: bool,
    pending: Option<Pending>,
    /// The latest rollout's images, 8 … size.
    rollout: Vec<Tensor>,
    /// The latest step's teacher-forced predictions were made with the weights it started from.
    steps: usize,
    done: usize,
    seed: u64,
    rng: RngKind,
    cancel: CancelToken,
}

impl Wavelet {
    pub fn new(setup: &Setup) -> anyhow::Result<Self> {
        let p = setup.params;
        let backend = setup.backend;
        let size = setup.target.size;
        check_size(size)?;
        let config = Config::from_params(p)?;
        let seed = p.get(&SEED) as u64;
        let shape = config.shape();
        anyhow::ensure!(
            (2 * BASE_SIDE).is_multiple_of(1 << config.haar_levels),
            "--haar-levels {} needs the 8×8 level to split {} times; at most 3",
            config.haar_levels,
            config.haar_levels
        );
        let mut init_rng = NumpyRandomState::new(seed as u32);
        let operator = Operator::new(backend, &mut init_rng, shape)?;
        let kind: OptimizerKind = p.get_option(&OPTIMIZER)?;
        let optimizer = Optimizer::new(kind, learning_rate(p));
        let coordinates = Coordinates::new(&config, setup.rng, seed);
        let truth = pyramid(&setup.target.pixels, size);
        let sides = predicted_sides(size);
        let transitions = sides.len();
        let mut nearest = vec![Vec::new()];
        let mut bicubic = vec![Vec::new()];
        for (t, &side) in sides.iter().enumerate() {
            nearest.push(nearest_up(&truth[t], side / 2));
            bicubic.push(bicubic_up(&truth[t], side / 2));
        }
        let nearest_db = (1..truth.len())
            .map(|l| host_psnr(&nearest[l], &truth[l]))
            .collect();
        let bicubic_db = (1..truth.len())
            .map(|l| host_psnr(&bicubic[l], &truth[l]))
            .collect();
        let grids = Grids {
            count: 1,
            first_side: 2 * BASE_SIDE,
            levels: transitions,
        };
        let x_up_host: Vec<f32> = nearest[1..].concat();
        let target_host: Vec<f32> = truth[1..].concat();
        let statics = coordinates.every_level(size);
        let inputs = config.inputs();
        let input_host = input_rows(&x_up_host, None, &statics.concat(), inputs);
        let rows = grids.rows();
        let loss = LossTerms::new(&config, &sides, 1);
        let truth_levels = truth[1..]
            .iter()
            .map(|level| backend.upload(level.len() / 3, 3, level))
            .collect::<anyhow::Result<_>>()?;
        let chain = config
            .rollout_loss
            .then(|| Chain::new(backend, &operator, &statics, size, &truth[0]))
            .transpose()?;
        Ok(Wavelet {
            chain,
            truth_levels,
            work: Workspace::new(backend, shape, grids, true)?,
            x_up: backend.upload(rows, 3, &x_up_host)?,
            target: backend.upload(rows, 3, &target_host)?,
            prediction: backend.zeros(rows, 3)?,
            input: backend.upload(rows, inputs, &input_host)?,
            input_host,
            statics,
            config,
            operator,
            optimizer,
            size,
            truth,
            nearest,
            bicubic,
            nearest_db,
            bicubic_db,
            grids,
            loss,
            noise: NumpyRandomState::new(seed.wrapping_add(3) as u32),
            noise_at_step_start: NumpyRandomState::new(seed.wrapping_add(3) as u32),
            noise_drawn: false,
            pending: None,
            rollout: Vec::new(),
            steps: p.get_usize(&WAVELET_STEPS),
            done: 0,
            seed,
            rng: setup.rng,
            cancel: setup.cancel.clone(),
        })
    }

    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// A rollout from the true 4×4 with the current weights, outside any step (benchmarks).
    pub fn rollout_once(&self, backend: &dyn Backend, keep: bool) -> anyhow::Result<Rollout> {
        let mut noise = self.rollout_noise(self.done, 9);
        self.grower().grow(
            backend,
            &self.truth[0],
            self.config.noise_sigma,
            noise.as_mut(),
            keep,
            &CancelToken::new(),
        )
    }

    /// The rollout's noise stream for step `step`: the same for a step taken again.
    fn rollout_noise(&self, step: usize, draw: usize) -> Box<dyn NormalSource> {
        let stream = self
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(step as u64 * 16 + draw as u64 + 7);
        normal_source(self.rng, stream)
    }

    /// One teacher-forced forward pass; returns per level the (|·|, (·)²) sums of
    /// clip(x↑ + x̂) − truth, with the L1 gradient (and the gradient term's) in `delta_grad`.
    fn teacher_forced(
        &mut self,
        backend: &dyn Backend,
        cancel: &CancelToken,
    ) -> Result<(f64, Vec<f64>), Cancelled> {
        self.operator
            .forward(backend, &self.input, &mut self.work, cancel)?;
        let (delta, delta_grad) = self.work.delta_and_grad();
        let (loss, sums) = self.loss.apply(
            backend,
            self.grids,
            &self.x_up,
            delta,
            delta_grad,
            &mut self.prediction,
            &self.target,
        );
        let decibels = sums
            .iter()
            .zip(predicted_sides(self.size))
            .map(|(s, side)| psnr_from_mse(s.squared / (3 * side * side) as f64))
            .collect();
        Ok((loss, decibels))
    }

    /// The rollout loss: grows the image from the true 4×4 keeping every level's activations,
    /// back-propagates every level's L1 through the chain (through the clip, T and the nearest
    /// upsampling into the level below), and adds the gradients to the teacher-forced ones
    /// already in the parameters. Returns the rollout's share of the loss.
    fn train_through_rollout(
        &mut self,
        backend: &dyn Backend,
        cancel: &CancelToken,
    ) -> Result<f64, Cancelled> {
        let chain = self.chain.as_mut().expect("the rollout loss is on");
        let operator = &mut self.operator;
        for (param, sum) in operator.parameters().iter().zip(&mut chain.accumulated) {
            backend.copy(&param.grad, sum);
        }
        let sigma = self.config.noise_sigma;
        let mut noise = normal_source(self.rng, self.seed.wrapping_add(17 + self.done as u64));
        for l in 0..chain.levels.len() {
            cancel.check()?;
            let (below, rest) = chain.levels.split_at_mut(l);
            let level = &mut rest[0];
            let source = if l == 0 {
                &chain.base
            } else {
                &below[l - 1].out
            };
            let half = level.side / 2;
            backend.upsample2x(source, half, half, Upsample::Nearest, &mut level.x_up);
            if sigma > 0.0 {
                let values: Vec<f32> = (0..level.side * level.side)
                    .map(|_| noise.standard_normal() as f32 * sigma)
                    .collect();
                backend.write(&mut level.noise, &values);
            }
            backend.concat_cols(
                &[&level.x_up, &level.noise, &level.statics],
                &mut level.input,
            );
            operator.forward(backend, &level.input, &mut level.work, cancel)?;
            backend.residual_clip(&level.x_up, &level.work.delta, &mut level.out);
        }
        let mut loss = 0.0;
        let count = chain.levels.len();
        for l in (0..count).rev() {
            cancel.check()?;
            let level = &mut chain.levels[l];
            let scale = [self.loss.l1[l]];
            let (delta, delta_grad) = level.work.delta_and_grad();
            let sums = backend.l1_grad(
                &level.out,
                &self.truth_levels[l],
                Grids::single(level.side),
                &scale,
                delta_grad,
            );
            loss += sums[0].absolute * scale[0] as f64;
            if l + 1 < count {
                backend.axpy(1.0, &chain.carried[l], delta_grad);
            }
            backend.clip_backward(&level.x_up, delta, delta_grad);
            operator.backward(
                backend,
                &level.input,
                &mut level.work,
                cancel,
                Some(&mut level.input_grad),
            )?;
            for (param, sum) in operator.parameters().iter().zip(&mut chain.accumulated) {
                backend.axpy(1.0, &param.grad, sum);
            }
            if l > 0 {
                // dL/dx↑ = the residual's (the clipped gradient) + the lift's x↑ columns.
                backend.dense_forward(
                    &level.input_grad,
                    &chain.selection,
                    &chain.zero_bias,
                    crate::compute::Activation::Identity,
                    &mut level.x_up_grad,
                );
                backend.axpy(1.0, &level.work.delta_grad, &mut level.x_up_grad);
                backend.upsample_nearest_backward(
                    &level.x_up_grad,
                    Grids::single(level.side / 2),
                    &mut chain.carried[l - 1],
                );
            }
        }
        for (param, sum) in operator
            .parameters_mut()
            .into_iter()
            .zip(&chain.accumulated)
        {
            backend.copy(sum, &mut param.grad);
        }
        Ok(loss)
    }

    fn draw_noise(&mut self, backend: &dyn Backend) -> anyhow::Result<()> {
        let rows = self.grids.rows();
        let sigma = self.config.noise_sigma;
        self.noise_at_step_start = self.noise.clone();
        let noise: Vec<f32> = (0..rows)
            .map(|_| self.noise.standard_normal() as f32 * sigma)
            .collect();
        let inputs = self.config.inputs();
        let mut host = self.input_host.clone();
        for r in 0..rows {
            host[r * inputs + 3] = noise[r];
        }
        backend.write(&mut self.input, &host);
        Ok(())
    }

    fn grower(&self) -> Grower<'_> {
        Grower {
            operator: &self.operator,
            statics: &self.statics,
            size: self.size,
        }
    }
}

impl Method for Wavelet {
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
            "wavelet has finished its {} steps",
            self.steps
        );
        let cancel = self.cancel.clone();
        if self.pending.is_none() {
            if self.config.noise_sigma > 0.0 && !self.noise_drawn {
                self.draw_noise(backend)?;
                self.noise_drawn = true;
            }
            cancel.check()?;
            let (mut loss, teacher_forced_db) = self.teacher_forced(backend, &cancel)?;
            cancel.check()?;
            self.operator
                .backward(backend, &self.input, &mut self.work, &cancel, None)?;
            cancel.check()?;
            if self.chain.is_some() {
                loss += self.train_through_rollout(backend, &cancel)?;
                cancel.check()?;
            }
            // The commit.
            self.optimizer.begin_step();
            self.operator.update(backend, &self.optimizer);
            self.noise_drawn = false;
            self.pending = Some(Pending {
                loss,
                teacher_forced_db,
            });
        }
        let step = self.done + 1;
        let mut noise = self.rollout_noise(step, 0);
        let rollout = self.grower().grow(
            backend,
            &self.truth[0],
            self.config.noise_sigma,
            noise.as_mut(),
            true,
            &cancel,
        )?;
        let mut pending = self.pending.clone().expect("pending step");
        if step == self.steps {
            // The last report is of the final weights, as the prototype evaluates them.
            let (_, decibels) = self.teacher_forced(backend, &CancelToken::new())?;
            pending.teacher_forced_db = decibels;
        }
        self.pending = None;
        self.rollout = rollout.levels;
        self.done = step;
        let sides = predicted_sides(self.size);
        let levels: Vec<LevelReport> = sides
            .iter()
            .enumerate()
            .map(|(l, &size)| {
                let rollout_db =
                    psnr_from_mse(backend.mse(&self.rollout[l], &self.truth_levels[l]));
                LevelReport {
                    size,
                    teacher_forced_db: pending.teacher_forced_db[l],
                    rollout_db,
                    nearest_db: self.nearest_db[l],
                    bicubic_db: self.bicubic_db[l],
                }
            })
            .collect();
        let psnr_db = levels.last().map_or(f64::NAN, |l| l.rollout_db);
        Ok(StepReport {
            step,
            label: format!("step {step}"),
            psnr_db,
            loss: Some(pending.loss),
            saturation: None,
            levels,
            sparse: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        match self.rollout.last() {
            Some(image) => backend.download(image),
            None => nearest_chain(&self.truth[0], self.size),
        }
    }

    fn keep_image(&self, step: usize) -> bool {
        is_milestone_step(step, self.steps)
    }

    fn training_state(&self, backend: &dyn Backend) -> Option<TrainingState> {
        let noise = if self.noise_drawn {
            &self.noise_at_step_start
        } else {
            &self.noise
        };
        Some(TrainingState {
            step: self.done,
            optimizer_updates: self.optimizer.updates,
            tensors: self.operator.state_tensors(backend, &self.optimizer),
            streams: vec![(NOISE_STREAM.to_owned(), noise.state())],
            pending_step: self.pending.as_ref().map(|pending| {
                std::iter::once(pending.loss)
                    .chain(pending.teacher_forced_db.iter().copied())
                    .collect()
            }),
        })
    }

    fn restore(&mut self, backend: &dyn Backend, state: &TrainingState) -> anyhow::Result<()> {
        state.check(&StateLayout {
            method: INFO.name,
            total_steps: self.steps,
            tensors: self.operator.state_layout(&self.optimizer),
            streams: &[NOISE_STREAM],
            // The loss and each predicted level's teacher-forced PSNR.
            pending_len: Some(1 + predicted_sides(self.size).len()),
        })?;
        let noise = state.stream(NOISE_STREAM)?;
        // Everything is checked: from here nothing fails.
        self.operator.restore(backend, &mut self.optimizer, state);
        self.noise_at_step_start = noise.clone();
        self.noise = noise;
        self.noise_drawn = false;
        self.pending = state.pending_step.as_ref().map(|values| Pending {
            loss: values[0],
            teacher_forced_db: values[1..].to_vec(),
        });
        self.done = state.step;
        Ok(())
    }

    fn levels(&self, backend: &dyn Backend) -> Option<Vec<LevelImages>> {
        let sides = predicted_sides(self.size);
        let teacher_forced = backend.download(&self.prediction);
        let mut offset = 0;
        let mut extra: Vec<Vec<Vec<f32>>> = Vec::new();
        if self.config.noise_sigma > 0.0 && self.done > 0 {
            // Two more rollouts with other noise, side by side with the reported one.
            for draw in 1..3 {
                let mut noise = self.rollout_noise(self.done, draw);
                if let Ok(rollout) = self.grower().grow(
                    backend,
                    &self.truth[0],
                    self.config.noise_sigma,
                    noise.as_mut(),
                    true,
                    &CancelToken::new(),
                ) {
                    extra.push(rollout.levels.iter().map(|t| backend.download(t)).collect());
                }
            }
        }
        let mut levels = vec![LevelImages {
            side: BASE_SIDE,
            truth: self.truth[0].clone(),
            rollouts: vec![("true 4×4".into(), self.truth[0].clone())],
            ..Default::default()
        }];
        for (l, &side) in sides.iter().enumerate() {
            let pixels = side * side * 3;
            let rollout = match self.rollout.get(l) {
                Some(image) => backend.download(image),
                None => nearest_chain(&self.truth[0], side),
            };
            let mut rollouts = vec![("rollout".to_string(), rollout)];
            for (draw, images) in extra.iter().enumerate() {
                rollouts.push((format!("noise draw {}", draw + 2), images[l].clone()));
            }
            levels.push(LevelImages {
                side,
                truth: self.truth[l + 1].clone(),
                rollouts,
                samples: Vec::new(),
                teacher_forced: if self.done > 0 {
                    teacher_forced[offset..offset + pixels].to_vec()
                } else {
                    self.nearest[l + 1].clone()
                },
                nearest: self.nearest[l + 1].clone(),
                bicubic: self.bicubic[l + 1].clone(),
            });
            offset += pixels;
        }
        Some(levels)
    }
}

/// The 4×4 upsampled by nearest neighbour to `side`: what T's zero projection starts as.
fn nearest_chain(base: &[f32], side: usize) -> Vec<f32> {
    let mut image = base.to_vec();
    let mut s = BASE_SIDE;
    while s < side {
        image = nearest_up(&image, s);
        s *= 2;
    }
    image
}

/// Teacher-forced training holds every level's activations; the rollout one level's.
fn estimate(p: &ParamValues, size: usize) -> MemoryEstimate {
    let Ok(config) = Config::from_params(p) else {
        return Tally::new().finish();
    };
    let c = config.channels;
    let rows: usize = predicted_sides(size).iter().map(|s| s * s).sum();
    let blocks = config.blocks;
    let mut tally = Tally::new();
    // States, pre-activations, saved bands per block; scratch and gradients.
    tally
        .tensors(3 * blocks + 8, rows, c)
        .tensors(3, rows, config.inputs())
        .tensors(8, rows, 3)
        .tensors(10, size * size, c)
        .host_f32(rows.saturating_mul(config.inputs() + 12));
    if config.ssim_weight > 0.0 {
        // SSIM's scratch: five blurred moments and three partials per predicted value.
        tally.tensors(8, rows, 3);
    }
    let weights = config.inputs() * c + blocks * (2 * c * c + 9 * c * c * config.haar_levels);
    tally.tensors(8, 1, weights);
    let per_pixel = 2.0 * blocks as f64 * 2.5 * (c * c) as f64 + 2.0 * (config.inputs() * c) as f64;
    tally.flops(4.0 * per_pixel * rows as f64);
    tally.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_keeps_constants_and_matches_a_hand_value() {
        let flat = vec![0.25f32; 4 * 4 * 3];
        assert!(
            bicubic_up(&flat, 4)
                .iter()
                .all(|&v| (v - 0.25).abs() < 1e-6)
        );
        // A ramp along x against torch's F.interpolate(..., mode="bicubic",
        // align_corners=False) of the same 8×8, one row (clipped into [0, 1] as the operator's
        // baselines are).
        let side = 8;
        let ramp: Vec<f32> = (0..side * side * 3)
            .map(|i| ((i / 3) % side) as f32 / 10.0)
            .collect();
        let up = bicubic_up(&ramp, side);
        let torch: [f64; 16] = [
            0.0,
            0.019140625,
            0.066796876,
            0.1296875,
            0.17031251,
            0.22968753,
            0.27031246,
            0.32968751,
            0.37031251,
            0.4296875,
            0.47031254,
            0.52968752,
            0.57031256,
            0.63320309,
            0.68085939,
            0.71054685,
        ];
        for (x, want) in torch.iter().enumerate() {
            let got = up[(3 * 2 * side + x) * 3] as f64;
            assert!(
                (got - want).abs() < 1e-6,
                "column {x}: {got} vs torch {want}"
            );
        }
    }

    #[test]
    fn pyramid_halves_down_to_four() {
        let image: Vec<f32> = (0..16 * 16 * 3).map(|i| (i % 7) as f32 / 7.0).collect();
        let levels = pyramid(&image, 16);
        assert_eq!(
            levels.iter().map(|l| l.len() / 3).collect::<Vec<_>>(),
            vec![16, 64, 256]
        );
        assert_eq!(predicted_sides(16), vec![8, 16]);
        assert!(check_size(48).is_err() && check_size(4).is_err() && check_size(64).is_ok());
    }
}
