//! Sparse: reconstruction from a fraction of the pixels (seed 003). The sparse input
//! (unobserved pixels grey), the focused method's reconstruction with its best-validation step
//! and its refit on every observed pixel when they have arrived, the interpolation baselines,
//! the ground truth and the reconstruction's error, each with PSNR and SSIM on the unobserved
//! pixels; under them PSNR on the unobserved pixels (solid) and the validation share (dashed)
//! of every method against step, with the baselines as dashed levels, and the step where each
//! method's validation PSNR was best: what a user without the unobserved pixels would pick.

use egui::{RichText, TextureHandle, TextureOptions};
use egui_plot::{HLine, Legend, Line, LineStyle, Plot, PlotPoints};

use crate::app::state::{MethodRun, ObservationView, RefitView, ShownPicture};
use crate::figures;
use crate::sparse::{BestStep, Refit, SetScores};

use super::{
    CAPTION_PX, Caption, ExportSource, View, ViewContext, ViewExport, empty_hint_ui,
    error_heat_map, image_cell_ui, method_color, method_picker_ui, palette, tile,
};

const GAP_PX: f32 = 8.0;
/// The line of a picture's name above it.
const HEADING_PX: f32 = 16.0;
const BASELINE_COLORS: [egui::Color32; 2] = [
    egui::Color32::from_rgb(200, 200, 200),
    egui::Color32::from_rgb(130, 130, 130),
];

/// The error map of one (method, run, step), made once.
struct ErrorMap {
    key: (&'static str, u64, usize),
    texture: TextureHandle,
}

#[derive(Default)]
pub struct Sparse {
    error_map: Option<ErrorMap>,
}

/// "24.61 dB · SSIM 0.712".
fn scores_text(scores: &SetScores) -> String {
    format!(
        "{} · SSIM {:.3}",
        super::psnr_text(Some(scores.unobserved_db)),
        scores.unobserved_ssim
    )
}

/// "24.61 dB, 0.71": a picture's caption, narrow enough for a small cell.
fn short_scores(scores: &SetScores) -> String {
    format!(
        "{}, {:.2}",
        super::psnr_text(Some(scores.unobserved_db)),
        scores.unobserved_ssim
    )
}

/// The step with the best validation PSNR among a run's reports, with its scores.
pub fn best_validation(run: &MethodRun) -> Option<(usize, SetScores)> {
    (run.cells.values())
        .filter_map(|c| Some((c.report.step, c.report.sparse?)))
        .filter(|(_, s)| s.validation_db.is_some_and(f64::is_finite))
        .max_by(|a, b| {
            a.1.validation_db
                .partial_cmp(&b.1.validation_db)
                .expect("finite")
        })
}

/// The run's best-validation picture with the scores of its step, when both have arrived.
fn best_picture(run: &MethodRun) -> Option<(&ShownPicture, SetScores)> {
    let shown = run.best_picture.as_ref()?;
    let scores = run.cells.get(&shown.picture.step)?.report.sparse?;
    Some((shown, scores))
}

/// The run's finished refit on every observed pixel.
fn refit_picture(run: &MethodRun) -> Option<(&ShownPicture, SetScores)> {
    match &run.refit {
        Some(RefitView::Done { shown, scores }) => Some((shown, *scores)),
        _ => None,
    }
}

impl View for Sparse {
    fn id(&self) -> &'static str {
        "sparse"
    }
    fn title(&self) -> &'static str {
        "Sparse"
    }
    fn hint(&self) -> &'static str {
        "Reconstruction from a fraction of the pixels beside Delaunay-linear and nearest \
         interpolation, scored on the pixels nobody observed."
    }

    fn shows_one_method(&self) -> bool {
        true
    }

    fn export(&self, source: &ExportSource) -> Option<ViewExport> {
        let model = source.model;
        let target = model.target.as_ref()?;
        let observation = target.observation.as_ref()?;
        let run = model.run(source.focus_method?)?;
        let latest = run.latest.as_ref()?;
        let scores = run.cells.get(&latest.step).and_then(|c| c.report.sparse);
        let best = best_picture(run).map(|(shown, scores)| BestStep {
            step: shown.picture.step,
            scores,
            image: shown.picture.pixels.to_vec(),
        });
        let refit = refit_picture(run).map(|(shown, scores)| Refit {
            step: shown.picture.step,
            scores,
            image: shown.picture.pixels.to_vec(),
        });
        Some(ViewExport::Sheet(figures::sparse_sheet(
            run.info,
            source.provenance,
            &observation.observation,
            &target.pixels,
            (&latest.pixels, scores),
            figures::SparseChoices {
                best: best.as_ref(),
                refit: refit.as_ref(),
            },
        )))
    }

    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext) {
        let model = context.model;
        let Some(target) = &model.target else {
            empty_hint_ui(ui, "Loading the image…");
            return;
        };
        let Some(observation) = &target.observation else {
            empty_hint_ui(
                ui,
                "Turn on \"fit from a fraction of the pixels\" on the left to reconstruct the \
                 image from a sparse mask.",
            );
            return;
        };
        ui.horizontal(|ui| {
            method_picker_ui(ui, "sparse-method", model, context.focus_method, |run| {
                run.info.fits_observed_pixels
            });
            ui.label(RichText::new(observation.observation.describe()).color(palette::TEXT_DIM));
        });
        let run = context.focus_method.and_then(|m| model.run(m));
        let latest = run.and_then(|run| Some((run, run.latest.as_ref()?)));
        if let Some((run, latest)) = latest {
            let key = (run.info.name, run.run_id, latest.step);
            if self.error_map.as_ref().is_none_or(|e| e.key != key) {
                let image = error_heat_map(
                    &latest.pixels,
                    &target.pixels,
                    target.size,
                    super::inspect::ERROR_SCALE,
                );
                self.error_map = Some(ErrorMap {
                    key,
                    texture: ui
                        .ctx()
                        .load_texture("sparse/error", image, TextureOptions::NEAREST),
                });
            }
        }
        let mut cells: Vec<(Option<egui::TextureId>, Caption)> = vec![(
            Some(observation.sparse_input.0.id()),
            Caption {
                title: "sparse input".into(),
                value: observation.observation.spec.mask.clone(),
                value_color: palette::TEXT_DIM,
                edge: None,
            },
        )];
        if let Some((run, latest)) = latest {
            let scores = run.cells.get(&latest.step).and_then(|c| c.report.sparse);
            cells.push((
                Some(latest.texture.id()),
                Caption {
                    title: format!("{} · {}", run.info.name, latest.step),
                    value: scores.as_ref().map_or(String::new(), short_scores),
                    value_color: palette::TEXT_STRONG,
                    edge: Some(method_color(run.info.name)),
                },
            ));
        }
        if let Some(run) = run {
            let chosen = [
                best_picture(run).map(|(shown, scores)| (shown, scores, "best validation")),
                refit_picture(run).map(|(shown, scores)| (shown, scores, "refit")),
            ];
            for (shown, scores, what) in chosen.into_iter().flatten() {
                cells.push((
                    Some(shown.texture.id()),
                    Caption {
                        title: format!("{what} · {}", shown.picture.step),
                        value: short_scores(&scores),
                        value_color: palette::TEXT_STRONG,
                        edge: Some(method_color(run.info.name)),
                    },
                ));
            }
        }
        for ((texture, _), baseline) in observation
            .baselines
            .iter()
            .zip(&observation.observation.baselines)
        {
            cells.push((
                Some(texture.id()),
                Caption {
                    title: baseline.name.into(),
                    value: short_scores(&baseline.scores),
                    value_color: palette::TEXT_STRONG,
                    edge: None,
                },
            ));
        }
        cells.push((
            Some(target.texture.id()),
            Caption {
                title: "ground truth".into(),
                value: format!("{}²", target.size),
                value_color: palette::TEXT_DIM,
                edge: Some(palette::GROUND_TRUTH),
            },
        ));
        if let (Some(error_map), Some(_)) = (&self.error_map, latest) {
            cells.push((
                Some(error_map.texture.id()),
                Caption {
                    title: format!("|error| (0 … {}+)", super::inspect::ERROR_SCALE),
                    value: String::new(),
                    value_color: palette::TEXT_DIM,
                    edge: None,
                },
            ));
        }
        ui.label(
            RichText::new("captions: PSNR and SSIM on the unobserved pixels")
                .small()
                .color(palette::TEXT_DIM),
        );
        let top_height = (ui.available_height() * 0.45).max(160.0);
        let (columns, side) = tile(
            cells.len(),
            egui::vec2(ui.available_width(), top_height),
            GAP_PX,
            CAPTION_PX + HEADING_PX,
        );
        for row in cells.chunks(columns) {
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = GAP_PX;
                for (texture, caption) in row {
                    // The name above the picture, the scores under it: both fit a small cell.
                    ui.vertical(|ui| {
                        ui.set_width(side);
                        ui.label(RichText::new(&caption.title).small().strong());
                        let scores = Caption {
                            title: String::new(),
                            value: caption.value.clone(),
                            value_color: caption.value_color,
                            edge: caption.edge,
                        };
                        image_cell_ui(ui, *texture, side, &scores);
                    });
                }
            });
        }
        ui.add_space(6.0);
        best_steps_ui(ui, model);
        curves_ui(ui, model, observation);
    }
}

/// One line per method: where its validation PSNR was best, and what that step scores on the
/// unobserved pixels.
fn best_steps_ui(ui: &mut egui::Ui, model: &crate::app::state::Model) {
    for run in model.runs.iter().filter(|r| r.info.fits_observed_pixels) {
        let Some((step, scores)) = best_validation(run) else {
            continue;
        };
        let mut line = format!(
            "{}: best validation {:.2} dB at step {step} → unobserved {}",
            run.info.name,
            scores.validation_db.unwrap_or(f64::NAN),
            scores_text(&scores),
        );
        match &run.refit {
            Some(RefitView::Running { step, of }) => {
                line.push_str(&format!("; refitting on all observed: {step}/{of}"));
            }
            Some(RefitView::Done { scores, .. }) => {
                line.push_str(&format!(
                    "; refit on all observed → {}",
                    scores_text(scores)
                ));
            }
            Some(RefitView::Failed(why)) => line.push_str(&format!("; the refit failed: {why}")),
            None => {}
        }
        ui.label(
            RichText::new(line)
                .monospace()
                .color(method_color(run.info.name)),
        );
    }
}

fn curves_ui(ui: &mut egui::Ui, model: &crate::app::state::Model, observation: &ObservationView) {
    // Tall enough for its legend (a line per method and baseline).
    let height = ui.available_height().max(190.0);
    Plot::new("sparse-curves")
        .height(height)
        .x_axis_label("step")
        .y_axis_label("PSNR (dB)")
        .legend(Legend::default().position(egui_plot::Corner::RightBottom))
        .show(ui, |plot| {
            for (baseline, color) in observation
                .observation
                .baselines
                .iter()
                .zip(BASELINE_COLORS)
            {
                plot.hline(
                    HLine::new(baseline.name, baseline.scores.unobserved_db)
                        .color(color)
                        .style(LineStyle::dashed_loose())
                        .width(1.5),
                );
            }
            for run in &model.runs {
                let color = method_color(run.info.name);
                let series = |pick: fn(&SetScores) -> Option<f64>| -> Vec<[f64; 2]> {
                    (run.cells.values())
                        .filter_map(|c| {
                            Some([c.report.step as f64, pick(c.report.sparse.as_ref()?)?])
                        })
                        .collect()
                };
                let unobserved = series(|s| Some(s.unobserved_db));
                if unobserved.is_empty() {
                    continue;
                }
                // One legend entry per method: its unobserved (solid) and validation (dashed)
                // curves share the name, so they show and hide together.
                let name = run.info.name;
                if unobserved.len() == 1 {
                    plot.hline(HLine::new(name, unobserved[0][1]).color(color).width(2.0));
                } else {
                    plot.line(
                        Line::new(name, PlotPoints::from(unobserved))
                            .color(color)
                            .width(2.0),
                    );
                }
                let validation = series(|s| s.validation_db);
                if validation.len() > 1 {
                    plot.line(
                        Line::new(name, PlotPoints::from(validation))
                            .color(color)
                            .style(LineStyle::dashed_dense())
                            .width(1.5),
                    );
                }
            }
        });
}
