//! What each exported figure shows, written once for the window's *Export view* and for
//! `inrlab run`: the trajectory (target, kept steps, a refiner's iterations), the level strip,
//! the comparison of every method's latest image, and the curves. Callers hand in what they
//! have (the window its received pictures, the command line its records); [`crate::sheet`] and
//! [`crate::plot`] draw them.

use std::sync::Arc;

use egui::ColorImage;

use crate::methods::{LevelImages, MethodInfo, StepReport};
use crate::plot::{Curve, CurvesFigure, SpectrumFigure};
use crate::provenance::Provenance;
use crate::sheet::{Sheet, SheetCell};
use crate::sparse::superres::{Renderings, SuperresReport};
use crate::sparse::{BestStep, Observation, Refit, SetScores};

/// "chelsea.png (sha256 1a2b3c4d…) · 64² · cpu (faer + rayon) · numpy · inrlab 0.1.0": the
/// line under every figure's title.
pub fn subtitle(provenance: &Provenance) -> String {
    let hash = provenance
        .image
        .sha256
        .get(..12)
        .map_or(String::new(), |h| format!(" (sha256 {h}…)"));
    let data = match &provenance.dataset {
        Some(folder) => format!("folder {}", folder.display()),
        None => format!("{}{hash}", provenance.image.name),
    };
    let adapter = if provenance.adapter.is_empty() {
        String::new()
    } else {
        format!(": {}", provenance.adapter)
    };
    // The generator by its command-line name (`--rng numpy`).
    let rng = clap::ValueEnum::to_possible_value(&provenance.rng)
        .map_or_else(String::new, |v| v.get_name().to_owned());
    format!(
        "{data} · {}² · {}{adapter} · {rng} rng · {}",
        provenance.working_size, provenance.backend, provenance.made_by
    )
}

/// "27.41 dB", or "diverged" for a value that is not finite.
pub fn psnr_caption(psnr_db: f64) -> String {
    crate::ui::psnr_text(Some(psnr_db))
}

/// One step's picture with its label and PSNR.
pub fn step_cell(report: &StepReport, image: Arc<ColorImage>) -> SheetCell {
    SheetCell::new(image, report.label.clone(), psnr_caption(report.psnr_db))
}

/// A refiner's iterations: the training step they belong to, and each picture with its PSNR.
pub type Iterations = (usize, Vec<(Arc<ColorImage>, f64)>);

/// The trajectory: the target, then each kept step; a method that refines internally adds a
/// row with its iterations (`iterates`: the step they belong to and each with its PSNR).
pub fn trajectory_sheet(
    info: &MethodInfo,
    provenance: &Provenance,
    target: Arc<ColorImage>,
    steps: Vec<SheetCell>,
    iterates: Option<Iterations>,
) -> Sheet {
    let mut cells = vec![SheetCell::new(target, "target", "ground truth")];
    cells.extend(steps);
    let mut sheet =
        Sheet::new(format!("{} — trajectory", info.title), subtitle(provenance)).row(None, cells);
    if let Some((step, images)) = iterates {
        let count = images.len();
        let row = images
            .into_iter()
            .enumerate()
            .map(|(k, (image, psnr))| {
                SheetCell::new(image, format!("iteration {}", k + 1), psnr_caption(psnr))
            })
            .collect();
        sheet = sheet.row(Some(format!("iterations 1…{count} at step {step}")), row);
    }
    sheet
}

/// The compare sheet: the target and each method's latest image, titled by method.
pub fn compare_sheet(
    provenance: &Provenance,
    target: Arc<ColorImage>,
    outputs: Vec<(&MethodInfo, SheetCell)>,
) -> Sheet {
    let mut cells = vec![SheetCell::new(target, "target", "ground truth")];
    cells[0].heading = "target".into();
    cells[0].title = provenance.image.name.clone();
    cells[0].value = format!("{}²", provenance.working_size);
    for (info, mut cell) in outputs {
        cell.heading = info.name.to_owned();
        cells.push(cell);
    }
    let mut sheet = Sheet::new(
        "Compare — latest image of every method",
        subtitle(provenance),
    )
    .row(None, cells);
    sheet.columns = 5;
    sheet
}

/// One level's pictures as a figure shows them, each with its PSNR against the level's truth
/// where it has one. The window makes these from what it received, the command line from the
/// method's [`LevelImages`].
pub struct LevelPictures {
    pub side: usize,
    /// (caption of the rollout, picture, PSNR).
    pub rollouts: Vec<(String, Arc<ColorImage>, Option<f64>)>,
    /// (caption, picture) of images grown from noise: new images, unscored.
    pub samples: Vec<(String, Arc<ColorImage>)>,
    pub teacher_forced: Option<(Arc<ColorImage>, Option<f64>)>,
    pub truth: Arc<ColorImage>,
}

impl LevelPictures {
    /// From a method's downloaded levels, scoring each against its level's truth.
    pub fn from_levels(level: &LevelImages) -> Self {
        let side = level.side;
        let picture = |pixels: &[f32]| Arc::new(crate::imaging::color_image_from_rgb(pixels, side));
        let score = |pixels: &[f32]| {
            (level.truth.len() == pixels.len()).then(|| {
                crate::methods::psnr_from_mse(crate::imaging::host_mse(pixels, &level.truth))
            })
        };
        LevelPictures {
            side,
            rollouts: (level.rollouts.iter())
                .map(|(caption, pixels)| (caption.clone(), picture(pixels), score(pixels)))
                .collect(),
            samples: (level.samples.iter())
                .map(|(caption, pixels)| (caption.clone(), picture(pixels)))
                .collect(),
            teacher_forced: (!level.teacher_forced.is_empty())
                .then(|| (picture(&level.teacher_forced), score(&level.teacher_forced))),
            truth: picture(&level.truth),
        }
    }
}

/// A level's caption: "rollout 16²" over "24.10 dB".
fn level_cell(kind: &str, side: usize, image: &Arc<ColorImage>, psnr: Option<f64>) -> SheetCell {
    SheetCell::new(
        Arc::clone(image),
        format!("{kind} {side}²"),
        psnr.map_or(String::new(), psnr_caption),
    )
}

/// A multi-resolution method's levels, coarse to fine, each magnified to the finest: a row per
/// rollout, a row per sample grown from noise (a folder run), the teacher-forced predictions,
/// then the truth.
pub fn scales_sheet(
    info: &MethodInfo,
    provenance: &Provenance,
    step: usize,
    levels: &[LevelPictures],
) -> Sheet {
    let mut sheet = Sheet::new(
        format!("{} — levels at step {step}", info.title),
        subtitle(provenance),
    );
    sheet.columns = levels.len().max(1);
    let finest = levels.last();
    for r in 0..finest.map_or(0, |l| l.rollouts.len()) {
        let heading = finest.and_then(|l| l.rollouts.get(r)).map(|c| c.0.clone());
        let cells = (levels.iter())
            .filter_map(|level| {
                let (_, image, psnr) = level.rollouts.get(r)?;
                let cell = level_cell("rollout", level.side, image, *psnr);
                // Every rollout starts from the true coarsest level: given, not predicted.
                Some(match level.teacher_forced {
                    None => SheetCell {
                        value: "given".into(),
                        ..cell
                    },
                    Some(_) => cell,
                })
            })
            .collect();
        sheet = sheet.row(heading, cells);
    }
    for s in 0..finest.map_or(0, |l| l.samples.len()) {
        let heading = finest.and_then(|l| l.samples.get(s)).map(|c| c.0.clone());
        let cells = (levels.iter())
            .filter_map(|level| {
                let (_, image) = level.samples.get(s)?;
                Some(level_cell("sample", level.side, image, None))
            })
            .collect();
        sheet = sheet.row(heading, cells);
    }
    // Under the level it predicts; the coarsest, which nothing predicts, is left blank.
    let predicted = (levels.iter())
        .map(|level| match &level.teacher_forced {
            Some((image, psnr)) => level_cell("from true lower", level.side, image, *psnr),
            None => SheetCell::blank(),
        })
        .collect();
    sheet = sheet.row(
        Some("teacher-forced: each level predicted from the true level below".into()),
        predicted,
    );
    let truth = (levels.iter())
        .map(|level| level_cell("truth", level.side, &level.truth, None))
        .collect();
    sheet.row(Some("truth".into()), truth)
}

/// Images a folder-trained operator grew from noise canvases: a row per canvas, every level
/// (`(side, pixels)` coarse to fine) magnified to the finest.
pub fn samples_sheet(
    info: &MethodInfo,
    provenance: &Provenance,
    step: usize,
    samples: &[Vec<(usize, Vec<f32>)>],
) -> Sheet {
    let mut sheet = Sheet::new(
        format!(
            "{} — samples from 4×4 noise canvases at step {step}",
            info.title
        ),
        subtitle(provenance),
    );
    sheet.columns = samples.first().map_or(1, Vec::len).max(1);
    for (index, levels) in samples.iter().enumerate() {
        let cells = (levels.iter())
            .map(|(side, pixels)| {
                let image = Arc::new(crate::imaging::color_image_from_rgb(pixels, *side));
                level_cell("sample", *side, &image, None)
            })
            .collect();
        sheet = sheet.row(Some(format!("canvas {}", index + 1)), cells);
    }
    sheet
}

fn rgb(color: egui::Color32) -> [u8; 3] {
    [color.r(), color.g(), color.b()]
}

/// The curves of every run: PSNR and (for trained methods) loss against step, and the per-level
/// PSNRs of the first multi-resolution run, teacher-forced solid and rollout dashed.
pub fn curves_figure(
    provenance: &Provenance,
    runs: &[(&MethodInfo, Vec<&StepReport>)],
) -> CurvesFigure {
    let mut figure = CurvesFigure {
        title: "PSNR and loss against step".into(),
        subtitle: subtitle(provenance),
        ..Default::default()
    };
    for (info, reports) in runs {
        let color = rgb(crate::ui::method_color(info.name));
        figure.psnr.push(Curve {
            name: info.name.to_owned(),
            color,
            points: reports.iter().map(|r| (r.step as f64, r.psnr_db)).collect(),
            dashed: false,
        });
        let loss: Vec<(f64, f64)> = reports
            .iter()
            .filter_map(|r| r.loss.map(|loss| (r.step as f64, loss)))
            .collect();
        if !loss.is_empty() {
            figure.loss.push(Curve {
                name: info.name.to_owned(),
                color,
                points: loss,
                dashed: false,
            });
        }
    }
    let level_run = runs
        .iter()
        .find(|(_, reports)| reports.iter().any(|r| !r.levels.is_empty()));
    if let Some((info, reports)) = level_run {
        let sizes: Vec<usize> = reports
            .iter()
            .rev()
            .find(|r| !r.levels.is_empty())
            .map(|r| r.levels.iter().map(|l| l.size).collect())
            .unwrap_or_default();
        let mut curves = Vec::new();
        for (index, &size) in sizes.iter().enumerate() {
            let color = rgb(crate::ui::curves::level_color(index, sizes.len()));
            let points = |pick: fn(&crate::methods::LevelReport) -> f64| {
                reports
                    .iter()
                    .filter_map(|r| {
                        let level = r.levels.iter().find(|l| l.size == size)?;
                        Some((r.step as f64, pick(level)))
                    })
                    .collect::<Vec<_>>()
            };
            curves.push(Curve {
                name: format!("{size}² teacher-forced"),
                color,
                points: points(|l| l.teacher_forced_db),
                dashed: false,
            });
            curves.push(Curve {
                name: format!("{size}² rollout"),
                color,
                points: points(|l| l.rollout_db),
                dashed: true,
            });
        }
        curves.retain(|c| !c.points.is_empty());
        if !curves.is_empty() {
            figure.levels = Some((format!("{}: PSNR per level", info.name), curves));
        }
    }
    figure
}

/// A reconstruction from a fraction of the pixels: the sparse input (unobserved pixels grey),
/// the method's latest image and its best-validation step, the interpolation baselines, the
/// truth and the error map, each scored on the unobserved pixels.
/// What a validated run chose: its best-validation step and the refit to it on every observed
/// pixel, each when there is one.
#[derive(Clone, Copy, Default)]
pub struct SparseChoices<'a> {
    pub best: Option<&'a BestStep>,
    pub refit: Option<&'a Refit>,
}

pub fn sparse_sheet(
    info: &MethodInfo,
    provenance: &Provenance,
    observation: &Observation,
    truth: &[f32],
    (latest, latest_scores): (&[f32], Option<SetScores>),
    SparseChoices { best, refit }: SparseChoices,
) -> Sheet {
    let side = observation.side;
    let picture = |pixels: &[f32]| Arc::new(crate::imaging::color_image_from_rgb(pixels, side));
    let scored = |scores: Option<&SetScores>| {
        scores.map_or(String::new(), |s| {
            format!(
                "{} · SSIM {:.3}",
                psnr_caption(s.unobserved_db),
                s.unobserved_ssim
            )
        })
    };
    let mut cells = vec![SheetCell::new(
        picture(&observation.sparse_input(truth)),
        "sparse input",
        format!(
            "{} of {} pixels",
            observation.observed_pixels.len(),
            observation.observed.len()
        ),
    )];
    cells.push(SheetCell::new(
        picture(latest),
        info.name,
        scored(latest_scores.as_ref()),
    ));
    if let Some(best) = best {
        cells.push(SheetCell::new(
            picture(&best.image),
            format!("best validation · {}", best.step),
            scored(Some(&best.scores)),
        ));
    }
    if let Some(refit) = refit {
        cells.push(SheetCell::new(
            picture(&refit.image),
            format!("refit · {}", refit.step),
            scored(Some(&refit.scores)),
        ));
    }
    for baseline in &observation.baselines {
        cells.push(SheetCell::new(
            picture(&baseline.image),
            baseline.name,
            scored(Some(&baseline.scores)),
        ));
    }
    cells.push(SheetCell::new(picture(truth), "ground truth", ""));
    // The error of what the run would hand a user: the refit, else the best step, else the last.
    let chosen = (refit.map(|r| r.image.as_slice()))
        .or(best.map(|b| b.image.as_slice()))
        .unwrap_or(latest);
    cells.push(SheetCell::new(
        Arc::new(crate::ui::error_heat_map(
            chosen,
            truth,
            side,
            crate::ui::inspect::ERROR_SCALE,
        )),
        format!("|error| (0 … {}+)", crate::ui::inspect::ERROR_SCALE),
        if refit.is_some() {
            "refit"
        } else if best.is_some() {
            "best validation step"
        } else {
            "latest step"
        },
    ));
    let mut sheet = Sheet::new(
        format!("{} — reconstruction from {}", info.title, observation.spec),
        subtitle(provenance),
    )
    .row(None, cells);
    sheet.columns = 4;
    sheet.min_cell_px = 256;
    sheet
}

/// "Fit at S/k, score at S": the truth, the model rendered at S, bicubic and Lanczos upsampling
/// of the training image, with PSNRs and mean gradient magnitudes.
pub fn superres_sheet(
    info: &MethodInfo,
    provenance: &Provenance,
    truth: &crate::target::Target,
    report: &SuperresReport,
    model: &[f32],
    renderings: &Renderings,
) -> Sheet {
    let side = truth.size;
    let picture = |pixels: &[f32]| Arc::new(crate::imaging::color_image_from_rgb(pixels, side));
    let caption = |db: Option<f64>, gradient: f64| match db {
        Some(db) => format!("{} · grad {gradient:.4}", psnr_caption(db)),
        None => format!("grad {gradient:.4}"),
    };
    let g = &report.gradient;
    let cells = vec![
        SheetCell::new(picture(&truth.pixels), "truth", caption(None, g.truth)),
        SheetCell::new(
            picture(model),
            info.name,
            caption(Some(report.model_db), g.model),
        ),
        SheetCell::new(
            picture(&renderings.bicubic),
            "bicubic",
            caption(Some(report.bicubic_db), g.bicubic),
        ),
        SheetCell::new(
            picture(&renderings.lanczos),
            "Lanczos-3",
            caption(Some(report.lanczos_db), g.lanczos),
        ),
    ];
    let mut sheet = Sheet::new(
        format!(
            "{} — fit at {}², rendered at {side}² ({}×)",
            info.title,
            side / report.factor,
            report.factor
        ),
        subtitle(provenance),
    )
    .row(None, cells);
    sheet.min_cell_px = 256;
    sheet
}

/// The radially averaged power spectra of a super-resolution comparison.
pub fn spectrum_figure(provenance: &Provenance, report: &SuperresReport) -> SpectrumFigure {
    let spectrum = &report.spectrum;
    let share = &spectrum.hf_share;
    let curve = |name: &str, share: f64, color: [u8; 3], values: &[f64], dashed: bool| Curve {
        name: format!("{name} ({:.1}% above Nyquist)", 100.0 * share),
        color,
        points: (spectrum.radius.iter().copied())
            .zip(values.iter().copied())
            .collect(),
        dashed,
    };
    SpectrumFigure {
        title: format!("Power spectra at {}× ", report.factor),
        subtitle: subtitle(provenance),
        curves: vec![
            curve("truth", share.truth, [20, 20, 20], &spectrum.truth, false),
            curve("model", share.model, [214, 39, 40], &spectrum.model, false),
            curve(
                "bicubic",
                share.bicubic,
                [31, 119, 180],
                &spectrum.bicubic,
                true,
            ),
            curve(
                "Lanczos-3",
                share.lanczos,
                [44, 160, 44],
                &spectrum.lanczos,
                true,
            ),
        ],
        nyquist: spectrum.nyquist_radius,
    }
}

/// `top` above `bottom` on white, as wide as the wider.
pub fn stack_vertically(top: &image::RgbImage, bottom: &image::RgbImage) -> image::RgbImage {
    let width = top.width().max(bottom.width());
    let mut out = image::RgbImage::from_pixel(
        width,
        top.height() + bottom.height(),
        image::Rgb([255, 255, 255]),
    );
    image::imageops::overlay(&mut out, top, 0, 0);
    image::imageops::overlay(&mut out, bottom, 0, i64::from(top.height()));
    out
}

/// Adds the reconstruction panel to a run's curves when it was seen through a mask: PSNR on the
/// unobserved pixels (solid) and on the validation share (dashed) of each method, and the
/// baselines as flat dashed lines.
pub fn add_sparse_curves(
    figure: &mut CurvesFigure,
    runs: &[(&MethodInfo, Vec<&StepReport>)],
    observation: &Observation,
) {
    let mut curves = Vec::new();
    for (info, reports) in runs {
        let color = rgb(crate::ui::method_color(info.name));
        let points = |pick: fn(&SetScores) -> Option<f64>| -> Vec<(f64, f64)> {
            (reports.iter())
                .filter_map(|r| Some((r.step as f64, pick(r.sparse.as_ref()?)?)))
                .collect()
        };
        curves.push(Curve {
            name: format!("{} unobserved", info.name),
            color,
            points: points(|s| Some(s.unobserved_db)),
            dashed: false,
        });
        curves.push(Curve {
            name: format!("{} validation", info.name),
            color,
            points: points(|s| s.validation_db),
            dashed: true,
        });
    }
    let steps = (runs.iter())
        .flat_map(|(_, reports)| reports.iter().map(|r| r.step as f64))
        .fold(2.0, f64::max);
    for (baseline, color) in observation
        .baselines
        .iter()
        .zip([[90, 90, 90], [170, 170, 170]])
    {
        curves.push(Curve {
            name: baseline.name.to_owned(),
            color,
            points: vec![
                (1.0, baseline.scores.unobserved_db),
                (steps, baseline.scores.unobserved_db),
            ],
            dashed: true,
        });
    }
    curves.retain(|c| !c.points.is_empty());
    if curves.iter().any(|c| c.name.ends_with("unobserved")) {
        figure.levels = Some((
            format!("PSNR on the unobserved pixels ({})", observation.spec.mask),
            curves,
        ));
    }
}
