//! The wavelet operator in seed 001's own setting: trained on a folder of images, then sampled
//! from 4×4 noise canvases. Images are resized (Lanczos) or centre-cropped to a working size
//! of 32, 64 or 128; a tenth of them (at least one when there are two or more) is held out and
//! scored teacher-forced and rolled out from its true 4×4. Each step is one teacher-forced Adam
//! step on a mini-batch of images drawn at random, every level at once ([`Grids`] with one
//! pyramid per image).

use std::path::{Path, PathBuf};

use super::training::{OPTIMIZER, Optimizer, OptimizerKind, SEED, learning_rate};
use super::wavelet::{
    BASE_SIDE, Config, Coordinates, Grower, LossTerms, bicubic_up, host_psnr, nearest_up,
    predicted_sides, pyramid,
};
use super::wavelet_operator::{Operator, Workspace};
use super::{LevelReport, ParamValues, psnr_from_mse};
use crate::compute::{Backend, CancelToken, Grids, Tensor};
use crate::rng::{NormalSource, NumpyRandomState, RngKind, normal_source};
use crate::target::{Fit, Target, load_image};

/// The working sizes a folder is trained at.
pub const DATASET_SIZES: &[usize] = &[32, 64, 128];
/// Images per mini-batch (fewer when the folder has fewer).
pub const BATCH_IMAGES: usize = 8;

/// A folder's images at the working size, split into training and held-out images.
pub struct Dataset {
    pub size: usize,
    /// Pyramids (4×4 first) of every usable image.
    pub train: Vec<Vec<Vec<f32>>>,
    pub held_out: Vec<Vec<Vec<f32>>>,
    /// Files that did not decode, each with why.
    pub skipped: Vec<(PathBuf, String)>,
}

impl Dataset {
    /// Every image file in `folder` (sorted by name; not recursive). Files that fail to
    /// decode are skipped and listed; a folder with no usable image is an error.
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
        let mut images = Vec::new();
        let mut skipped = Vec::new();
        for path in paths {
            match load_image(&path).and_then(|decoded| {
                Target::from_image(&path.display().to_string(), &decoded.image, size, fit)
            }) {
                Ok(target) => images.push(pyramid(&target.pixels, size)),
                Err(error) => skipped.push((path, format!("{error:#}"))),
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
        Ok(Dataset {
            size,
            train: images,
            held_out,
            skipped,
        })
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

    /// Host rows for `images` (pyramids) stacked as `grids`: inputs, x↑ and targets.
    fn batch_rows(&mut self, images: &[&Vec<Vec<f32>>]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let inputs = self.config.inputs();
        let static_width = inputs - 4;
        let sigma = self.config.noise_sigma;
        let (mut input, mut x_up, mut target) = (Vec::new(), Vec::new(), Vec::new());
        for pyramid in images {
            for (l, side) in predicted_sides(self.size).into_iter().enumerate() {
                let up = nearest_up(&pyramid[l], side / 2);
                for r in 0..side * side {
                    input.extend_from_slice(&up[3 * r..3 * r + 3]);
                    input.push(if sigma > 0.0 {
                        self.noise.standard_normal() as f32 * sigma
                    } else {
                        0.0
                    });
                    input.extend_from_slice(&self.statics[l][r * static_width..][..static_width]);
                }
                x_up.extend_from_slice(&up);
                target.extend_from_slice(&pyramid[l + 1]);
            }
        }
        (input, x_up, target)
    }

    /// One teacher-forced Adam step on a random mini-batch of the training images.
    pub fn step(&mut self, backend: &dyn Backend, dataset: &Dataset) -> anyhow::Result<(f64, f64)> {
        let picks: Vec<&Vec<Vec<f32>>> = (0..self.batch)
            .map(|_| {
                let index = (self.order.uniform() * dataset.train.len() as f64) as usize;
                &dataset.train[index.min(dataset.train.len() - 1)]
            })
            .collect();
        let (input, x_up, target) = self.batch_rows(&picks);
        backend.write(&mut self.input, &input);
        backend.write(&mut self.x_up, &x_up);
        backend.write(&mut self.target, &target);
        let cancel = CancelToken::new();
        self.operator
            .forward(backend, &self.input, &mut self.work, &cancel)?;
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
        self.operator
            .backward(backend, &self.input, &mut self.work, &cancel, None)?;
        self.optimizer.begin_step();
        self.operator.update(backend, &self.optimizer);
        self.steps_done += 1;
        let finest = self.size * self.size * 3 * self.batch;
        let batch_db = psnr_from_mse(sums.last().map_or(f64::NAN, |s| s.squared) / finest as f64);
        Ok((loss, batch_db))
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
        &mut self,
        backend: &dyn Backend,
        dataset: &Dataset,
    ) -> anyhow::Result<Option<Vec<LevelReport>>> {
        if dataset.held_out.is_empty() {
            return Ok(None);
        }
        let sides = predicted_sides(self.size);
        let cancel = CancelToken::new();
        let mut rows = Vec::new();
        for pyramid in &dataset.held_out {
            // Teacher-forced: one image's pyramid at a time.
            let grids = Grids {
                count: 1,
                ..self.grids
            };
            let mut work = Workspace::new(backend, self.config.shape(), grids, false)?;
            let sigma = std::mem::replace(&mut self.config.noise_sigma, 0.0);
            let (input, x_up, _) = self.batch_rows(&[pyramid]);
            self.config.noise_sigma = sigma;
            let input = backend.upload(grids.rows(), self.config.inputs(), &input)?;
            let x_up_tensor = backend.upload(grids.rows(), 3, &x_up)?;
            self.operator.forward(backend, &input, &mut work, &cancel)?;
            let mut prediction = backend.zeros(grids.rows(), 3)?;
            backend.residual_clip(&x_up_tensor, &work.delta, &mut prediction);
            let predicted = backend.download(&prediction);
            let mut noise = normal_source(self.rng, self.seed.wrapping_add(11));
            let rollout =
                self.grower()
                    .grow(backend, &pyramid[0], 0.0, noise.as_mut(), true, &cancel)?;
            let mut offset = 0;
            let mut levels = Vec::new();
            for (l, &side) in sides.iter().enumerate() {
                let pixels = side * side * 3;
                let truth = &pyramid[l + 1];
                levels.push(LevelReport {
                    size: side,
                    teacher_forced_db: host_psnr(&predicted[offset..offset + pixels], truth),
                    rollout_db: host_psnr(&backend.download(&rollout.levels[l]), truth),
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
        let cancel = CancelToken::new();
        let mut out = Vec::new();
        for sample in 0..seeds {
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
                &cancel,
            )?;
            let mut levels = vec![(BASE_SIDE, canvas)];
            for (tensor, side) in rollout.levels.iter().zip(predicted_sides(self.size)) {
                levels.push((side, backend.download(tensor)));
            }
            out.push(levels);
        }
        Ok(out)
    }
}
