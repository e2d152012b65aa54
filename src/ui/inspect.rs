//! Inspect: target, output and per-pixel error of the focused method (G swaps in the ground
//! truth), and what the model sees: its feature channels (Fourier sin/cos maps, reservoir
//! units) at a chosen step. Features are downloaded only while this view is open and asks.

use std::sync::Arc;

use egui::{RichText, TextureHandle, TextureOptions};

use crate::app::protocol::FeatureRequest;
use crate::figures;
use crate::sheet::{Sheet, SheetCell};
use crate::ui::{ExportSource, ViewExport, ViewRequest};

use super::{
    CAPTION_PX, Caption, View, ViewContext, empty_hint_ui, error_heat_map, image_cell_ui,
    method_color, method_picker_ui, palette, psnr_text, tile,
};

/// Errors at or above this (mean over channels, images in [0, 1]) are drawn at full heat.
pub const ERROR_SCALE: f32 = 0.25;
const GAP_PX: f32 = 8.0;

/// The heat map of the per-pixel error and the mean absolute error.
fn error_map(output: &[f32], target: &[f32], size: usize) -> (egui::ColorImage, f32) {
    let image = error_heat_map(output, target, size, ERROR_SCALE);
    let mean_abs_error = (output.iter().zip(target))
        .map(|(o, t)| (o - t).abs())
        .sum::<f32>()
        / output.len().max(1) as f32;
    (image, mean_abs_error)
}

/// The error map of one (method, run, step), made once.
struct ErrorMap {
    key: (&'static str, u64, usize),
    texture: TextureHandle,
    mean_abs_error: f32,
}

pub struct Inspect {
    error_map: Option<ErrorMap>,
    /// Step whose features are shown; `None` follows the latest step.
    feature_step: Option<usize>,
    first_channel: usize,
    channels_per_page: usize,
    last_request: Option<FeatureRequest>,
}

impl Default for Inspect {
    fn default() -> Self {
        Inspect {
            error_map: None,
            feature_step: None,
            first_channel: 0,
            channels_per_page: 16,
            last_request: None,
        }
    }
}

impl View for Inspect {
    fn id(&self) -> &'static str {
        "inspect"
    }
    fn title(&self) -> &'static str {
        "Inspect"
    }
    fn hint(&self) -> &'static str {
        "Target, output and error of one method, and the feature maps the model sees."
    }

    fn shows_one_method(&self) -> bool {
        true
    }

    fn export(&self, source: &ExportSource) -> Option<ViewExport> {
        let model = source.model;
        let (target, run) = (model.target.as_ref()?, model.run(source.focus_method?)?);
        let latest = run.latest.as_ref()?;
        let report = run.cells.get(&latest.step).map(|cell| &cell.report);
        let (heat, mean_abs_error) = error_map(&latest.pixels, &target.pixels, target.size);
        let output = match report {
            Some(report) => figures::step_cell(report, Arc::clone(&latest.image)),
            None => SheetCell::new(Arc::clone(&latest.image), "output", ""),
        };
        let images = vec![
            SheetCell::new(Arc::clone(&target.image), "target", "ground truth"),
            output,
            SheetCell::new(
                Arc::new(heat),
                format!("|error| (≥{ERROR_SCALE} hot)"),
                format!("mean {mean_abs_error:.4}"),
            ),
        ];
        let mut sheet = Sheet::new(
            format!("{} — inspect", run.info.title),
            figures::subtitle(source.provenance),
        )
        .row(None, images);
        if let Some(features) = (model.features.as_ref())
            .filter(|f| f.request.method == run.info.name && f.request.run_id == run.run_id)
        {
            let maps = (features.maps.iter())
                .map(|(label, _, image)| SheetCell::new(Arc::clone(image), label.clone(), ""))
                .collect();
            sheet = sheet.row(
                Some(format!(
                    "what the model sees at step {} (blue negative, orange positive)",
                    features.request.step
                )),
                maps,
            );
        }
        Some(ViewExport::Sheet(sheet))
    }

    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext) {
        // The error map is computed here from the downloaded image.
        context.host_images = true;
        let model = context.model;
        ui.horizontal(|ui| {
            method_picker_ui(ui, "inspect-method", model, context.focus_method, |_| true);
            if context.show_ground_truth {
                ui.label(RichText::new("showing ground truth (G)").color(palette::GROUND_TRUTH));
            }
        });
        let (Some(target), Some(run)) = (
            model.target.as_ref(),
            context.focus_method.and_then(|m| model.run(m)),
        ) else {
            empty_hint_ui(ui, "Select a method on the left to inspect it.");
            return;
        };
        let Some(latest) = &run.latest else {
            empty_hint_ui(ui, "Waiting for the first step…");
            return;
        };
        let key = (run.info.name, run.run_id, latest.step);
        if self.error_map.as_ref().is_none_or(|e| e.key != key) {
            let (image, mean_abs_error) = error_map(&latest.pixels, &target.pixels, target.size);
            self.error_map = Some(ErrorMap {
                key,
                texture: ui
                    .ctx()
                    .load_texture("inspect/error", image, TextureOptions::NEAREST),
                mean_abs_error,
            });
        }
        let Some(error_map) = &self.error_map else {
            return;
        };
        let label = run
            .cells
            .get(&latest.step)
            .map_or(String::new(), |c| c.report.label.clone());

        // Top: three images filling about half the height.
        let top_height = (ui.available_height() * 0.5).max(160.0);
        let (_, side) = tile(
            3,
            egui::vec2(ui.available_width(), top_height),
            GAP_PX,
            CAPTION_PX,
        );
        let output_caption = if context.show_ground_truth {
            Caption {
                title: "ground truth (G)".into(),
                value: String::new(),
                value_color: palette::GROUND_TRUTH,
                edge: Some(palette::GROUND_TRUTH),
            }
        } else {
            Caption {
                title: format!("output, {label}"),
                value: psnr_text(run.latest_psnr_db()),
                value_color: palette::TEXT_STRONG,
                edge: Some(method_color(run.info.name)),
            }
        };
        let output_texture = if context.show_ground_truth {
            target.texture.id()
        } else {
            latest.texture.id()
        };
        ui.horizontal(|ui| {
            ui.spacing_mut().item_spacing.x = GAP_PX;
            image_cell_ui(
                ui,
                Some(target.texture.id()),
                side,
                &Caption {
                    title: "target".into(),
                    value: format!("{}²", target.size),
                    value_color: palette::TEXT_DIM,
                    edge: Some(palette::GROUND_TRUTH),
                },
            );
            image_cell_ui(ui, Some(output_texture), side, &output_caption);
            image_cell_ui(
                ui,
                Some(error_map.texture.id()),
                side,
                &Caption {
                    title: format!("|error| (0 … {ERROR_SCALE}+)"),
                    value: format!("mean {:.4}", error_map.mean_abs_error),
                    value_color: palette::TEXT_STRONG,
                    edge: None,
                },
            );
        });
        ui.add_space(6.0);
        ui.separator();
        self.features_ui(ui, context, run.info.name, run.run_id, run.steps_done());
    }
}

impl Inspect {
    fn features_ui(
        &mut self,
        ui: &mut egui::Ui,
        context: &mut ViewContext,
        method: &'static str,
        run_id: u64,
        steps_done: usize,
    ) {
        let model = context.model;
        let shown = model
            .features
            .as_ref()
            .filter(|f| f.request.method == method && f.request.run_id == run_id);
        let total_channels = shown.map_or(0, |f| f.total_channels);
        ui.horizontal(|ui| {
            ui.label(RichText::new("What the model sees").strong().size(15.0));
            ui.add_space(12.0);
            let mut follow_latest = self.feature_step.is_none();
            if ui
                .checkbox(&mut follow_latest, "latest step")
                .on_hover_text("Follow the newest step; untick to choose one.")
                .changed()
            {
                self.feature_step = if follow_latest {
                    None
                } else {
                    Some(steps_done)
                };
            }
            if let Some(step) = &mut self.feature_step {
                *step = (*step).clamp(1, steps_done.max(1));
                ui.add(egui::Slider::new(step, 1..=steps_done.max(1)).text("step"))
                    .on_hover_text(
                        "Step whose features are shown. An earlier step is recomputed on the \
                         worker from the same parameters.",
                    );
            }
            ui.add_space(12.0);
            let label = ui.label("channels from");
            let last_page_start = total_channels.saturating_sub(1);
            ui.add(
                egui::DragValue::new(&mut self.first_channel)
                    .range(0..=last_page_start)
                    .speed(1.0),
            )
            .labelled_by(label.id);
            if ui.small_button("prev").clicked() {
                self.first_channel = self.first_channel.saturating_sub(self.channels_per_page);
            }
            if ui.small_button("next").clicked()
                && self.first_channel + self.channels_per_page < total_channels
            {
                self.first_channel += self.channels_per_page;
            }
            let label = ui.label("per page");
            egui::ComboBox::from_id_salt("channels-per-page")
                .selected_text(self.channels_per_page.to_string())
                .width(48.0)
                .show_ui(ui, |ui| {
                    for count in [8, 16, 32, 64] {
                        ui.selectable_value(&mut self.channels_per_page, count, count.to_string());
                    }
                })
                .response
                .labelled_by(label.id);
            if total_channels > 0 {
                ui.label(RichText::new(format!("of {total_channels}")).color(palette::TEXT_DIM));
            }
        });
        if steps_done == 0 {
            return;
        }
        let request = FeatureRequest {
            method,
            run_id,
            step: self.feature_step.unwrap_or(steps_done).min(steps_done),
            first_channel: self.first_channel,
            count: self.channels_per_page,
        };
        if self.last_request.as_ref() != Some(&request) {
            // Only this view asks, and only while it is shown.
            context
                .requests
                .push(ViewRequest::Features(request.clone()));
            self.last_request = Some(request.clone());
        }
        let Some(features) = shown else {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("downloading features…");
            });
            return;
        };
        if features.total_channels == 0 {
            empty_hint_ui(ui, "This method exposes no feature channels.");
            return;
        }
        if features.request != request {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new("updating…").color(palette::TEXT_DIM));
            });
        }
        ui.label(
            RichText::new(format!(
                "step {}: each map is one channel over the image, blue < 0 < orange, scaled to its own largest magnitude",
                features.request.step
            ))
            .color(palette::TEXT_DIM),
        );
        let (columns, side) = tile(features.maps.len(), ui.available_size(), 4.0, CAPTION_PX);
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                ui.spacing_mut().item_spacing = egui::vec2(4.0, 4.0);
                for chunk in features.maps.chunks(columns.max(1)) {
                    ui.horizontal(|ui| {
                        for (label, texture, _) in chunk {
                            image_cell_ui(
                                ui,
                                Some(texture.id()),
                                side,
                                &Caption {
                                    title: label.clone(),
                                    value: String::new(),
                                    value_color: palette::TEXT_DIM,
                                    edge: None,
                                },
                            );
                        }
                    });
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::ui::fixture::view_harness;

    #[test]
    fn inspect_shows_target_output_and_error() {
        let mut h = view_harness(Box::new(Inspect::default()), 3);
        // The spinner keeps repainting, so step rather than run to rest.
        h.run_steps(3);
        assert!(h.query_by_label_contains("target").is_some());
        assert!(h.query_by_label_contains("output, step 3").is_some());
        assert!(h.query_by_label_contains("|error|").is_some());
        // The view asks and waits without blocking.
        assert!(h.query_by_label_contains("downloading features").is_some());
        // Once, for the latest step, however many frames it waits.
        let asked = &h.state().requests;
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(
            matches!(&asked[0], ViewRequest::Features(f) if f.step == 3 && f.method == "trajectory")
        );
    }
}
