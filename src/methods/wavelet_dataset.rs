//! The wavelet operator in seed 001's own setting: trained on a folder of images, then sampled
//! from 4×4 noise canvases. Images are resized (Lanczos) or centre-cropped to a working size
//! of 32, 64 or 128; a tenth of them (at least one when there are two or more) is held out and
//! scored teacher-forced and rolled out from its true 4×4. Each step is one teacher-forced Adam
//! step on a mini-batch of images drawn at random, every level at once ([`Grids`] with one
//! pyramid per image). [`FolderRun`] is that training as a [`Method`], which the window runs
//! when the user picks a folder and `inrlab run --dataset` runs on the command line.

use crate::provenance::{DatasetFile, sha256_file};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::training::is_milestone_step;
use super::training::{OPTIMIZER, Optimizer, OptimizerKind, SEED, learning_rate};
use super::training_state::{StateLayout, TrainingState};
use super::wavelet::{
    BASE_SIDE, Config, Coordinates, Grower, LossTerms, NOISE_STREAM, bicubic_up, host_psnr,
    nearest_up, predicted_sides, pyramid,
};
use super::wavelet_operator::{Operator, Workspace};
use super::{LevelImages, LevelReport, Method, ParamValues, Setup, StepReport, psnr_from_mse};
use crate::compute::{Backend, CancelToken, Grids, Tensor};
use crate::rng::{NormalSource, NumpyRandomState, RngKind, normal_source};
use crate::target::{Fit, Target, load_image};

/// The working sizes a folder is trained at.
pub const DATASET_SIZES: &[usize] = &[32, 64, 128];
/// Images per mini-batch (fewer when the folder has fewer).
pub const BATCH_IMAGES: usize = 8;
/// At most this many images of a folder are used (the first by name): about 0.5 GB of
/// pyramids at 128².
pub const MAX_IMAGES: usize = 2048;
/// Noise canvases the window's levels show beside the held-out image's rollout.
const WINDOW_SAMPLES: usize = 3;

/// The working size a folder is trained at for a window at `working_size`: the largest of
/// [`DATASET_SIZES`] not above it.
pub fn dataset_size_for(working_size: usize) -> usize {
    DATASET_SIZES
        .iter()
        .copied()
        .filter(|&s| s <= working_size)
        .max()
        .unwrap_or(DATASET_SIZES[0])
}

/// A folder's images at the working size, split into training and held-out images.
pub struct Dataset {
    pub size: usize,
    /// Pyramids (4×4 first) of every usable image.
    pub train: Vec<Vec<Vec<f32>>>,
    pub held_out: Vec<Vec<Vec<f32>>>,
    /// Files that did not decode, each with why.
    pub skipped: Vec<(PathBuf, String)>,
    /// Image files past [`MAX_IMAGES`], not used.
    pub not_used: usize,
    /// The folder's name, for captions.
    pub name: String,
    /// Every image used (training and held out), by file name, with its SHA-256, for the
    /// provenance of what the run writes.
    pub files: Vec<DatasetFile>,
}

impl Dataset {
    /// Every image file in `folder` (sorted by name; not recursive; the first [`MAX_IMAGES`]
    /// that decode), decoded in parallel. Files that fail to decode are skipped and listed; a
    /// folder with no usable image is an error.
    pub fn load(folder: &Path, size: usize, fit: Fit) -> anyhow::Result<Self> {
        anyhow::ensure!(
            DATASET_SIZES.contains(&size),
            "training on a folder runs at a working size of 32, 64 or 128, not {size}"
        );
        let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
            .map_err(|e| anyhow::anyhow!("cannot read the folder {}: {e}", folder.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file())
            .collect();
        paths.sort();
        let decode = |path: &PathBuf| {
            load_image(path)
                .and_then(|decoded| {
                    Target::from_image(&path.display().to_string(), &decoded.image, size, fit)
                })
                .map(|target| pyramid(&target.pixels, size))
                .and_then(|levels| Ok((levels, sha256_file(path)?)))
                .map_err(|error| format!("{error:#}"))
        };
        let mut images = Vec::new();
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        let mut not_used = 0;
        // In chunks, so that a folder of many photographs stops decoding once it has enough.
        for (chunk_start, chunk) in paths.chunks(64).enumerate().map(|(i, c)| (i * 64, c)) {
            if images.len() >= MAX_IMAGES {
                not_used = paths.len() - chunk_start;
                break;
            }
            let decoded: Vec<_> = chunk.par_iter().map(decode).collect();
            for (path, result) in chunk.iter().zip(decoded) {
                match result {
                    Ok(_) if images.len() >= MAX_IMAGES => not_used += 1,
                    Ok((levels, sha256)) => {
                        images.push(levels);
                        files.push(DatasetFile {
                            name: path.file_name().map_or_else(
                                || path.display().to_string(),
                                |n| n.to_string_lossy().into_owned(),
                            ),
                            sha256,
                        });
                    }
                    Err(why) => skipped.push((path.clone(), why)),
                }
            }
        }
        anyhow::ensure!(
            !images.is_empty(),
            "the folder {} has no image that decodes ({} files skipped)",
            folder.display(),
            skipped.len()
        );
        // Every tenth image is held out (the last of each ten), at least one of two or more.
        let held = if images.len() >= 2 {
            (images.len() / 10).max(1)
        } else {
            0
        };
        let held_out = images.split_off(images.len() - held);
        let name = folder.file_name().map_or_else(
            || folder.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Dataset {
            size,
            train: images,
            held_out,
            skipped,
            not_used,
            name,
            files,
        })
    }

    /// "40 images of faces at 128² (4 held out)".
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} images of {} at {}² ({} held out)",
            self.train.len() + self.held_out.len(),
            self.name,
            self.size,
            self.held_out.len()
        );
        if self.not_used > 0 {
            text.push_str(&format!(
                "; the first {MAX_IMAGES} by name, {} more not used",
                self.not_used
            ));
        }
        text
    }

    /// The image the window shows and scores: the first held-out one, or the first training
    /// image when none is held out.
    fn shown(&self) -> &Vec<Vec<f32>> {
        self.held_out.first().unwrap_or(&self.train[0])
    }
}

/// Per level of a held-out evaluation, averaged over the held-out images.
fn mean_levels(rows: &[Vec<LevelReport>]) -> Vec<LevelReport> {
    let count = rows.len().max(1) as f64;
    let mut out = rows[0].clone();
    for (l, level) in out.iter_mut().enumerate() {
        let mean =
            |f: &dyn Fn(&LevelReport) -> f64| rows.iter().map(|r| f(&r[l])).sum::<f64>() / count;
        level.teacher_forced_db = mean(&|r| r.teacher_forced_db);
        level.rollout_db = mean(&|r| r.rollout_db);
        level.nearest_db = mean(&|r| r.nearest_db);
        level.bicubic_db = mean(&|r| r.bicubic_db);
    }
    out
}

/// The checkpoint's name of the stream that picks each mini-batch's images.
const ORDER_STREAM: &str = "order";

/// One level of a sample: its side and RGB pixels.
pub type LevelImage = (usize, Vec<f32>);

pub struct DatasetTrainer {
    config: Config,
    operator: Operator,
    optimizer: Optimizer,
    statics: Vec<Vec<f32>>,
    size: usize,
    batch: usize,
    grids: Grids,
    work: Workspace,
    input: Tensor,
    x_up: Tensor,
    target: Tensor,
    prediction: Tensor,
    loss: LossTerms,
    order: NumpyRandomState,
    noise: NumpyRandomState,
    rng: RngKind,
    seed: u64,
    pub steps_done: usize,
}

impl DatasetTrainer {
    pub fn new(
        backend: &dyn Backend,
        dataset: &Dataset,
        params: &ParamValues,
        rng: RngKind,
    ) -> anyhow::Result<Self> {
        let config = Config::from_params(params)?;
        let seed = params.get(&SEED) as u64;
        let operator = Operator::new(
            backend,
            &mut NumpyRandomState::new(seed as u32),
            config.shape(),
        )?;
        let kind: OptimizerKind = params.get_option(&OPTIMIZER)?;
        let statics = Coordinates::new(&config, rng, seed).every_level(dataset.size);
        let batch = BATCH_IMAGES.min(dataset.train.len());
        let sides = predicted_sides(dataset.size);
        let grids = Grids {
            count: batch,
            first_side: 2 * BASE_SIDE,
            levels: sides.len(),
        };
        let rows = grids.rows();
        let loss = LossTerms::new(&config, &sides, batch);
        Ok(DatasetTrainer {
            work: Workspace::new(backend, config.shape(), grids, true)?,
            input: backend.zeros(rows, config.inputs())?,
            x_up: backend.zeros(rows, 3)?,
            target: backend.zeros(rows, 3)?,
            prediction: backend.zeros(rows, 3)?,
            optimizer: Optimizer::new(kind, learning_rate(params)),
            config,
            operator,
            statics,
            size: dataset.size,
            batch,
            grids,
            loss,
            order: NumpyRandomState::new(seed.wrapping_add(5) as u32),
            noise: NumpyRandomState::new(seed.wrapping_add(3) as u32),
            rng,
            seed,
            steps_done: 0,
        })
    }

    /// Host rows for `images` (pyramids) stacked as `grids`: inputs, x↑ and targets. The
    /// noise channel draws from `noise` (σ_r scaled), or is zero without it.
    fn batch_rows(
        &self,
        images: &[&Vec<Vec<f32>>],
        mut noise: Option<&mut NumpyRandomState>,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let inputs = self.config.inputs();
        let static_width = inputs - 4;
        let sigma = self.config.noise_sigma;
        let (mut input, mut x_up, mut target) = (Vec::new(), Vec::new(), Vec::new());
        for pyramid in images {
            for (l, side) in predicted_sides(self.size).into_iter().enumerate() {
                let up = nearest_up(&pyramid[l], side / 2);
                for r in 0..side * side {
                    input.extend_from_slice(&up[3 * r..3 * r + 3]);
                    input.push(match noise.as_deref_mut() {
                        Some(noise) if sigma > 0.0 => noise.standard_normal() as f32 * sigma,
                        _ => 0.0,
                    });
                    input.extend_from_slice(&self.statics[l][r * static_width..][..static_width]);
                }
                x_up.extend_from_slice(&up);
                target.extend_from_slice(&pyramid[l + 1]);
            }
        }
        (input, x_up, target)
    }

    /// One teacher-forced Adam step on a random mini-batch of the training images; returns
    /// the loss and the batch's teacher-forced PSNR at the finest level. A step that sees
    /// `cancel` set commits nothing, its draws included: taken again, it picks the same images.
    pub fn step(
        &mut self,
        backend: &dyn Backend,
        dataset: &Dataset,
        cancel: &CancelToken,
    ) -> anyhow::Result<(f64, f64)> {
        let (order, noise) = (self.order.clone(), self.noise.clone());
        let result = self.try_step(backend, dataset, cancel);
        if result.is_err() {
            (self.order, self.noise) = (order, noise);
        }
        result
    }

    fn try_step(
        &mut self,
        backend: &dyn Backend,
        dataset: &Dataset,
        cancel: &CancelToken,
    ) -> anyhow::Result<(f64, f64)> {
        let picks: Vec<&Vec<Vec<f32>>> = (0..self.batch)
            .map(|_| {
                let index = (self.order.uniform() * dataset.train.len() as f64) as usize;
                &dataset.train[index.min(dataset.train.len() - 1)]
            })
            .collect();
        let mut noise = self.noise.clone();
        let (input, x_up, target) = self.batch_rows(&picks, Some(&mut noise));
        self.noise = noise;
        backend.write(&mut self.input, &input);
        backend.write(&mut self.x_up, &x_up);
        backend.write(&mut self.target, &target);
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
        cancel.check()?;
        self.operator
            .backward(backend, &self.input, &mut self.work, cancel, None)?;
        cancel.check()?;
        // The commit.
        self.optimizer.begin_step();
        self.operator.update(backend, &self.optimizer);
        self.steps_done += 1;
        let finest = self.size * self.size * 3 * self.batch;
        let batch_db = psnr_from_mse(sums.last().map_or(f64::NAN, |s| s.squared) / finest as f64);
        Ok((loss, batch_db))
    }

    /// T, its optimizer and both streams after `steps_done` steps, for a checkpoint.
    fn training_state(&self, backend: &dyn Backend) -> TrainingState {
        TrainingState {
            step: self.steps_done,
            optimizer_updates: self.optimizer.updates,
            tensors: self.operator.state_tensors(backend, &self.optimizer),
            streams: vec![
                (ORDER_STREAM.to_owned(), self.order.state()),
                (NOISE_STREAM.to_owned(), self.noise.state()),
            ],
            pending_step: None,
        }
    }

    /// Checks `state` against this trainer (T's shapes, the streams, at most `total_steps`),
    /// then takes it.
    fn restore(
        &mut self,
        backend: &dyn Backend,
        state: &TrainingState,
        total_steps: usize,
    ) -> anyhow::Result<()> {
        state.check(&StateLayout {
            method: super::wavelet::INFO.name,
            total_steps,
            tensors: self.operator.state_layout(&self.optimizer),
            streams: &[ORDER_STREAM, NOISE_STREAM],
            pending_len: None,
        })?;
        let (order, noise) = (state.stream(ORDER_STREAM)?, state.stream(NOISE_STREAM)?);
        // Everything is checked: from here nothing fails.
        self.operator.restore(backend, &mut self.optimizer, state);
        (self.order, self.noise) = (order, noise);
        self.steps_done = state.step;
        Ok(())
    }

    /// One image's teacher-forced predictions of every level (8 … size, concatenated), without
    /// noise.
    fn teacher_forced(
        &self,
        backend: &dyn Backend,
        pyramid: &Vec<Vec<f32>>,
    ) -> anyhow::Result<Vec<f32>> {
        let grids = Grids {
            count: 1,
            ..self.grids
        };
        let mut work = Workspace::new(backend, self.config.shape(), grids, false)?;
        let (input, x_up, _) = self.batch_rows(&[pyramid], None);
        let input = backend.upload(grids.rows(), self.config.inputs(), &input)?;
        let x_up_tensor = backend.upload(grids.rows(), 3, &x_up)?;
        self.operator
            .forward(backend, &input, &mut work, &CancelToken::new())?;
        let mut prediction = backend.zeros(grids.rows(), 3)?;
        backend.residual_clip(&x_up_tensor, &work.delta, &mut prediction);
        Ok(backend.download(&prediction))
    }

    /// One image's rollout from its true 4×4 (no noise): every predicted level, on the host.
    fn rollout(
        &self,
        backend: &dyn Backend,
        pyramid: &[Vec<f32>],
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut noise = normal_source(self.rng, self.seed.wrapping_add(11));
        let rollout = self.grower().grow(
            backend,
            &pyramid[0],
            0.0,
            noise.as_mut(),
            true,
            &CancelToken::new(),
        )?;
        Ok(rollout.levels.iter().map(|t| backend.download(t)).collect())
    }

    fn grower(&self) -> Grower<'_> {
        Grower {
            operator: &self.operator,
            statics: &self.statics,
            size: self.size,
        }
    }

    /// Held-out per-level PSNRs (teacher-forced and rolled out from the true 4×4), averaged.
    pub fn evaluate(
        &self,
        backend: &dyn Backend,
        dataset: &Dataset,
    ) -> anyhow::Result<Option<Vec<LevelReport>>> {
        if dataset.held_out.is_empty() {
            return Ok(None);
        }
        let sides = predicted_sides(self.size);
        let mut rows = Vec::new();
        for pyramid in &dataset.held_out {
            let predicted = self.teacher_forced(backend, pyramid)?;
            let rollout = self.rollout(backend, pyramid)?;
            let mut offset = 0;
            let mut levels = Vec::new();
            for (l, &side) in sides.iter().enumerate() {
                let pixels = side * side * 3;
                let truth = &pyramid[l + 1];
                levels.push(LevelReport {
                    size: side,
                    teacher_forced_db: host_psnr(&predicted[offset..offset + pixels], truth),
                    rollout_db: host_psnr(&rollout[l], truth),
                    nearest_db: host_psnr(&nearest_up(&pyramid[l], side / 2), truth),
                    bicubic_db: host_psnr(&bicubic_up(&pyramid[l], side / 2), truth),
                });
                offset += pixels;
            }
            rows.push(levels);
        }
        Ok(Some(mean_levels(&rows)))
    }

    /// Images grown from random 4×4 canvases (uniform colours), one per seed: per seed, every
    /// level from the canvas to the full size.
    pub fn samples(
        &self,
        backend: &dyn Backend,
        seeds: usize,
    ) -> anyhow::Result<Vec<Vec<LevelImage>>> {
        (0..seeds)
            .map(|sample| self.sample(backend, sample))
            .collect()
    }

    /// Sample `sample`: the same canvas and noise at every call, so it changes only with the
    /// weights.
    fn sample(&self, backend: &dyn Backend, sample: usize) -> anyhow::Result<Vec<LevelImage>> {
        let mut canvas_rng = NumpyRandomState::new((self.seed + 100 + sample as u64) as u32);
        let canvas: Vec<f32> = (0..BASE_SIDE * BASE_SIDE * 3)
            .map(|_| canvas_rng.uniform() as f32)
            .collect();
        let mut noise = normal_source(self.rng, self.seed + 200 + sample as u64);
        let rollout = self.grower().grow(
            backend,
            &canvas,
            self.config.noise_sigma,
            noise.as_mut(),
            true,
            &CancelToken::new(),
        )?;
        let mut levels = vec![(BASE_SIDE, canvas)];
        for (tensor, side) in rollout.levels.iter().zip(predicted_sides(self.size)) {
            levels.push((side, backend.download(tensor)));
        }
        Ok(levels)
    }
}

/// The wavelet method trained on a folder (the window's folder picker, `inrlab run
/// --dataset`): one [`DatasetTrainer`] step per [`Method::step`], each reporting the loss and,
/// as `psnr_db`, the mini-batch's teacher-forced PSNR at the finest level; every 25th step,
/// the early ones and the last also carry the held-out images' per-level scores. Its image is the first noise
/// canvas's sample, magnified to the window's working size; its levels are the first held-out
/// image's (truth, teacher-forced, rollout from its true 4×4) beside samples from noise
/// canvases.
pub struct FolderRun {
    dataset: Arc<Dataset>,
    trainer: DatasetTrainer,
    steps: usize,
    /// The window's working size, which [`Method::image`] is at.
    display_size: usize,
    cancel: CancelToken,
}

impl FolderRun {
    pub fn new(
        backend: &dyn Backend,
        dataset: Arc<Dataset>,
        params: &ParamValues,
        rng: RngKind,
        display_size: usize,
        cancel: CancelToken,
    ) -> anyhow::Result<Self> {
        let batch = BATCH_IMAGES.min(dataset.train.len());
        // Teacher forcing holds every level of every image of the batch.
        let mut estimate = (super::wavelet::INFO.estimate)(params, dataset.size);
        estimate.device_bytes = estimate.device_bytes.saturating_mul(batch as u64);
        estimate.host_bytes = estimate.host_bytes.saturating_mul(batch as u64);
        estimate.largest_tensor_bytes = estimate.largest_tensor_bytes.saturating_mul(batch as u64);
        let what = format!(
            "wavelet on a folder, batches of {batch} at {}²",
            dataset.size
        );
        if let Some(refusal) = estimate.refusal(&backend.memory_budget(), &what) {
            anyhow::bail!("{refusal}");
        }
        Ok(FolderRun {
            trainer: DatasetTrainer::new(backend, &dataset, params, rng)?,
            steps: params.get_usize(&super::wavelet::WAVELET_STEPS),
            dataset,
            display_size,
            cancel,
        })
    }

    /// For the registry: the folder's images at the working size for the window's
    /// ([`dataset_size_for`]), from the cache (which may still be decoding them).
    pub fn from_setup(setup: &Setup, folder: &Path) -> anyhow::Result<Self> {
        let size = dataset_size_for(setup.target.size);
        let dataset = setup.cache.dataset(folder, size, Fit::Stretch)?;
        Self::new(
            setup.backend,
            dataset,
            setup.params,
            setup.rng,
            setup.target.size,
            setup.cancel.clone(),
        )
    }

    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// See [`DatasetTrainer::samples`].
    pub fn samples(
        &self,
        backend: &dyn Backend,
        seeds: usize,
    ) -> anyhow::Result<Vec<Vec<LevelImage>>> {
        self.trainer.samples(backend, seeds)
    }
}

/// Whether step `step` of `last` carries per-level scores: every 100th and the last.
pub fn logs_levels(step: usize, last: usize) -> bool {
    step.is_multiple_of(100) || step == last
}

/// Whether a folder run scores its held-out images after step `step` of `last`: besides
/// [`logs_levels`]' steps, every 25th and the early ones (1, 2, 5, 10, 20, 50), so that the
/// per-level curves have a shape from the start. Each costs about one mini-batch forward.
fn scores_held_out(step: usize, last: usize) -> bool {
    logs_levels(step, last) || step.is_multiple_of(25) || is_milestone_step(step, last)
}

impl Method for FolderRun {
    fn name(&self) -> &'static str {
        super::wavelet::INFO.name
    }
    fn total_steps(&self) -> usize {
        self.steps
    }
    fn steps_done(&self) -> usize {
        self.trainer.steps_done
    }

    fn step(&mut self, backend: &dyn Backend) -> anyhow::Result<StepReport> {
        anyhow::ensure!(
            !self.is_done(),
            "wavelet has finished its {} steps",
            self.steps
        );
        let (loss, batch_db) = self.trainer.step(backend, &self.dataset, &self.cancel)?;
        let step = self.trainer.steps_done;
        let levels = if scores_held_out(step, self.steps) {
            self.trainer
                .evaluate(backend, &self.dataset)?
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(StepReport {
            step,
            label: format!("step {step}"),
            psnr_db: batch_db,
            loss: Some(loss),
            saturation: None,
            levels,
            sparse: None,
        })
    }

    fn image(&self, backend: &dyn Backend) -> Vec<f32> {
        let size = self.dataset.size;
        match self.trainer.sample(backend, 0) {
            Ok(mut levels) => {
                let (_, mut image) = levels.pop().expect("a sample has its levels");
                let mut side = size;
                while side < self.display_size {
                    image = nearest_up(&image, side);
                    side *= 2;
                }
                image
            }
            // Out of memory: a grey picture, and the step reports go on.
            Err(_) => vec![0.5; self.display_size * self.display_size * 3],
        }
    }

    fn keep_image(&self, step: usize) -> bool {
        is_milestone_step(step, self.steps)
    }

    fn trains_on(&self) -> Option<String> {
        Some(self.dataset.describe())
    }

    fn data_files(&self) -> Vec<DatasetFile> {
        self.dataset.files.clone()
    }

    fn training_state(&self, backend: &dyn Backend) -> Option<TrainingState> {
        Some(self.trainer.training_state(backend))
    }

    fn restore(&mut self, backend: &dyn Backend, state: &TrainingState) -> anyhow::Result<()> {
        self.trainer.restore(backend, state, self.steps)
    }

    fn warnings(&self) -> Vec<String> {
        self.dataset
            .skipped
            .iter()
            .map(|(path, why)| format!("skipped {}: {why}", path.display()))
            .collect()
    }

    fn levels(&self, backend: &dyn Backend) -> Option<Vec<LevelImages>> {
        let shown = self.dataset.shown();
        let trainer = &self.trainer;
        let rollout = trainer.rollout(backend, shown).ok()?;
        let samples: Vec<Vec<LevelImage>> = (0..WINDOW_SAMPLES)
            .filter_map(|sample| trainer.sample(backend, sample).ok())
            .collect();
        let predicted = trainer.teacher_forced(backend, shown).ok();
        let sides = predicted_sides(self.dataset.size);
        let caption = |sample: usize| format!("sample {} (noise canvas)", sample + 1);
        let mut levels = vec![LevelImages {
            side: BASE_SIDE,
            truth: shown[0].clone(),
            rollouts: vec![("held-out image".into(), shown[0].clone())],
            samples: samples
                .iter()
                .enumerate()
                .map(|(s, levels)| (caption(s), levels[0].1.clone()))
                .collect(),
            ..Default::default()
        }];
        let mut offset = 0;
        for (l, &side) in sides.iter().enumerate() {
            let pixels = side * side * 3;
            levels.push(LevelImages {
                side,
                truth: shown[l + 1].clone(),
                rollouts: vec![(
                    "held-out image, from its true 4×4".into(),
                    rollout[l].clone(),
                )],
                samples: samples
                    .iter()
                    .enumerate()
                    .map(|(s, levels)| (caption(s), levels[l + 1].1.clone()))
                    .collect(),
                teacher_forced: predicted
                    .as_ref()
                    .map_or_else(Vec::new, |p| p[offset..offset + pixels].to_vec()),
                nearest: nearest_up(&shown[l], side / 2),
                bicubic: bicubic_up(&shown[l], side / 2),
            });
            offset += pixels;
        }
        Some(levels)
    }
}
