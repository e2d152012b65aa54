//! What `inrlab run` writes: metrics.json, metrics.csv and the figures of a run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::compute::Backend;
use crate::figures;
use crate::imaging::{color_image_from_rgb, host_mse};
use crate::methods::params::Resolved;
use crate::methods::wavelet_dataset::logs_levels;
use crate::methods::{
    LevelImages, LevelReport, MethodInfo, ParamValues, StepReport, psnr_from_mse,
};
use crate::output::{Existing, png_bytes_with_text, write_atomic};
use crate::provenance::Provenance;
use crate::rng::RngKind;
use crate::runner::StepRecord;
use crate::sheet::SheetCell;
use crate::sparse::{BestStep, ObservationSpec, Refit, SetScores, superres};
use crate::target::{Target, rgb8_from_f32};

#[derive(Serialize)]
pub(super) struct StepEntry {
    step: usize,
    label: String,
    psnr: f64,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f64>,
    /// Per level, for multi-resolution methods: every 100th step and the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) levels: Option<Vec<LevelReport>>,
    /// Seen through a mask: `unobserved_db`, `observed_db`, `validation_db`,
    /// `unobserved_ssim`, `observed_ssim` (and `heldout_db` for the holdout protocol).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    sparse: Option<SetScores>,
}

impl StepEntry {
    /// One step as metrics.json lists it, its levels when it has any.
    pub(super) fn new(report: StepReport, seconds: f64) -> Self {
        StepEntry {
            step: report.step,
            label: report.label,
            psnr: report.psnr_db,
            seconds,
            loss: report.loss,
            levels: (!report.levels.is_empty()).then_some(report.levels),
            sparse: report.sparse,
        }
    }
}

#[derive(Serialize)]
pub(super) struct Metrics<'a> {
    method: &'a str,
    backend: String,
    adapter: String,
    image: &'a str,
    size: usize,
    rng: RngKind,
    /// Every parameter's value, a categorical one's by its option's name.
    params: BTreeMap<String, Resolved>,
    /// How to make these files again (`inrlab run --config metrics.json`).
    provenance: &'a Provenance,
    /// Seen through a mask: which pixels, how many of each set.
    #[serde(skip_serializing_if = "Option::is_none")]
    observation: Option<ObservationSummary>,
    /// The interpolation baselines, scored on the unobserved pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    baselines: Option<BaselineScores>,
    /// The step with the best validation PSNR, and its scores: what a user without the
    /// unobserved pixels would pick.
    #[serde(skip_serializing_if = "Option::is_none")]
    best_validation: Option<BestSummary>,
    /// With `--refit`: the method fitted again on every observed pixel to the best-validation
    /// step, and its scores (or why it failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    refit: Option<RefitSummary>,
    steps: Vec<StepEntry>,
}

#[derive(Serialize)]
pub(super) struct ObservationSummary {
    #[serde(flatten)]
    spec: ObservationSpec,
    observed: usize,
    training: usize,
    validation: usize,
    unobserved: usize,
}

#[derive(Serialize)]
pub(super) struct BaselineScores {
    delaunay_linear_db: f64,
    nearest_db: f64,
    delaunay_linear_ssim: f64,
    nearest_ssim: f64,
}

#[derive(Serialize)]
pub(super) struct BestSummary {
    step: usize,
    #[serde(flatten)]
    scores: SetScores,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum RefitSummary {
    Done {
        step: usize,
        #[serde(flatten)]
        scores: SetScores,
    },
    Failed {
        failed: String,
    },
}

/// metrics.csv: the provenance as `# ` lines, then one row per step.
pub(super) fn metrics_csv(provenance: &Provenance, steps: &[StepEntry]) -> String {
    let mut csv = provenance.csv_header();
    csv.push_str(Provenance::CSV_STEP_COLUMNS);
    csv.push('\n');
    for s in steps {
        let row = crate::provenance::csv_step_row(
            s.step,
            &s.label,
            s.psnr,
            s.loss,
            s.seconds,
            s.sparse.as_ref(),
        );
        csv.push_str(&row);
        csv.push('\n');
    }
    csv
}

pub(super) fn write_run(
    dir: &Path,
    info: &MethodInfo,
    params: &ParamValues,
    records: &[StepRecord],
    iterates: Option<&[Vec<f32>]>,
    levels: Option<&[LevelImages]>,
    best: Option<&BestStep>,
    refit: Option<&Result<Refit, String>>,
    target: &Target,
    backend: &dyn Backend,
    provenance: &Provenance,
    existing: Existing,
) -> anyhow::Result<()> {
    let last_step = records.last().map_or(0, |r| r.report.step);
    let observation = target.observation.as_deref();
    let holdout = observation.is_some_and(|o| o.spec.is_holdout());
    let metrics = Metrics {
        method: info.name,
        backend: backend.kind().to_string(),
        adapter: backend.adapter_name(),
        image: &provenance.image.name,
        size: target.size,
        rng: provenance.rng,
        params: params.resolved(info.params)?,
        provenance,
        observation: observation.map(|o| ObservationSummary {
            spec: o.spec.clone(),
            observed: o.observed_pixels.len(),
            training: o.split.train.len(),
            validation: o.split.validation.len(),
            unobserved: o.split.unobserved.len(),
        }),
        baselines: observation
            .filter(|o| o.baselines.len() == 2)
            .map(|o| BaselineScores {
                delaunay_linear_db: o.baselines[0].scores.unobserved_db,
                nearest_db: o.baselines[1].scores.unobserved_db,
                delaunay_linear_ssim: o.baselines[0].scores.unobserved_ssim,
                nearest_ssim: o.baselines[1].scores.unobserved_ssim,
            }),
        best_validation: best.map(|b| BestSummary {
            step: b.step,
            scores: b.scores,
        }),
        refit: refit.map(|refit| match refit {
            Ok(refit) => RefitSummary::Done {
                step: refit.step,
                scores: refit.scores,
            },
            Err(why) => RefitSummary::Failed {
                failed: why.clone(),
            },
        }),
        steps: records
            .iter()
            .map(|r| {
                let mut entry = StepEntry::new(r.report.clone(), r.seconds);
                // Levels every 100th step and at the last, not every step.
                if !logs_levels(r.report.step, last_step) {
                    entry.levels = None;
                }
                // The protocol's "psnr" is that of the training (even) pixels.
                if let (true, Some(sparse)) = (holdout, &entry.sparse) {
                    entry.psnr = sparse.observed_db;
                }
                entry
            })
            .collect(),
    };
    let size = target.size;
    let picture = |pixels: &[f32]| Arc::new(color_image_from_rgb(pixels, size));
    let kept: Vec<SheetCell> = records
        .iter()
        .filter_map(|r| Some(figures::step_cell(&r.report, picture(r.image.as_deref()?))))
        .collect();
    let last = records
        .iter()
        .rev()
        .find_map(|r| r.image.as_deref())
        .unwrap_or(&target.pixels);
    // A method that refines internally: its trajectory is the final network's iterations.
    let iterates = iterates.map(|images| {
        let cells = images
            .iter()
            .map(|image| {
                (
                    picture(image),
                    psnr_from_mse(host_mse(image, &target.pixels)),
                )
            })
            .collect();
        (last_step, cells)
    });
    let trajectory = figures::trajectory_sheet(
        info,
        provenance,
        picture(&target.pixels),
        if iterates.is_some() { Vec::new() } else { kept },
        iterates,
    );
    let reports: Vec<&StepReport> = records.iter().map(|r| &r.report).collect();
    let runs = [(info, reports)];
    let mut figure = figures::curves_figure(provenance, &runs);
    if let Some(observation) = observation {
        figures::add_sparse_curves(&mut figure, &runs, observation);
    }
    let curves = figure.render(CURVES_WIDTH_PX)?;
    let json = serde_json::to_vec_pretty(&metrics)?;
    let text = provenance.png_text();
    let png = |image: &image::RgbImage| png_bytes_with_text(image, &text);
    write_atomic(&dir.join("metrics.json"), &json, existing)?;
    let csv = metrics_csv(provenance, &metrics.steps);
    write_atomic(&dir.join("metrics.csv"), csv.as_bytes(), existing)?;
    write_atomic(
        &dir.join("final.png"),
        &png(&rgb8_from_f32(last, size, size))?,
        existing,
    )?;
    write_atomic(
        &dir.join("trajectory.png"),
        &png(&trajectory.render())?,
        existing,
    )?;
    write_atomic(&dir.join("curves.png"), &png(&curves)?, existing)?;
    if let Some(levels) = levels {
        let pictures: Vec<_> = levels
            .iter()
            .map(figures::LevelPictures::from_levels)
            .collect();
        let sheet = figures::scales_sheet(info, provenance, last_step, &pictures);
        write_atomic(&dir.join("scales.png"), &png(&sheet.render())?, existing)?;
    }
    if let (Some(observation), Some(last_record)) = (observation, records.last()) {
        let sheet = figures::sparse_sheet(
            info,
            provenance,
            observation,
            &target.pixels,
            (last, last_record.report.sparse),
            figures::SparseChoices {
                best,
                refit: refit.and_then(|r| r.as_ref().ok()),
            },
        );
        write_atomic(&dir.join("sparse.png"), &png(&sheet.render())?, existing)?;
    }
    Ok(())
}

/// superres.png (truth, model, bicubic, Lanczos at S, and their spectra) and superres.json.
pub(super) fn write_superres(
    dir: &Path,
    info: &MethodInfo,
    truth: &Target,
    report: &superres::SuperresReport,
    rendering: &[f32],
    renderings: &superres::Renderings,
    provenance: &Provenance,
    existing: Existing,
) -> anyhow::Result<()> {
    let sheet = figures::superres_sheet(info, provenance, truth, report, rendering, renderings);
    let text = provenance.png_text();
    let spectra = figures::spectrum_figure(provenance, report).render(CURVES_WIDTH_PX)?;
    let mut picture = sheet.render();
    picture = figures::stack_vertically(&picture, &spectra);
    write_atomic(
        &dir.join("superres.png"),
        &png_bytes_with_text(&picture, &text)?,
        existing,
    )?;
    let json = serde_json::to_vec_pretty(report)?;
    write_atomic(&dir.join("superres.json"), &json, existing)
}

/// Width of curves.png.
pub(super) const CURVES_WIDTH_PX: u32 = 1200;

/// compare.png (the target and every method's last image) and, for several methods, curves.png
/// of them all, in the run's output folder.
pub(super) fn write_summary(
    out: &Path,
    target: &Target,
    finished: &[(&MethodInfo, Vec<StepReport>, Vec<f32>)],
    provenance: &Provenance,
    existing: Existing,
) -> anyhow::Result<()> {
    let size = target.size;
    let picture = |pixels: &[f32]| Arc::new(color_image_from_rgb(pixels, size));
    let outputs = finished
        .iter()
        .filter_map(|(info, reports, image)| {
            Some((*info, figures::step_cell(reports.last()?, picture(image))))
        })
        .collect();
    let sheet = figures::compare_sheet(provenance, picture(&target.pixels), outputs);
    let text = provenance.png_text();
    write_atomic(
        &out.join("compare.png"),
        &png_bytes_with_text(&sheet.render(), &text)?,
        existing,
    )?;
    if finished.len() > 1 {
        let runs: Vec<_> = finished
            .iter()
            .map(|(info, reports, _)| (*info, reports.iter().collect()))
            .collect();
        let curves = figures::curves_figure(provenance, &runs).render(CURVES_WIDTH_PX)?;
        write_atomic(
            &out.join("curves.png"),
            &png_bytes_with_text(&curves, &text)?,
            existing,
        )?;
    }
    Ok(())
}
