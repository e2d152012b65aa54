//! Scales: the scale-by-scale strip of a coarse-to-fine method. Top row: the estimate after
//! each scale; bottom row: the detail that scale added (its change over the previous estimate,
//! blue darker, orange brighter). Written for the multiscale method and any later method whose
//! steps are scales (a wavelet operator); it defaults to the first method whose registry entry
//! says its steps are scales ([`crate::methods::MethodInfo::steps_are_scales`]), but shows any
//! method's steps the same way.

use std::collections::HashMap;

use egui::{Color32, ColorImage, RichText, TextureHandle, TextureOptions};

use crate::app::state::MethodRun;
use crate::imaging::diverging_color;

use super::{
    CAPTION_PX, Caption, View, ViewContext, empty_hint_ui, image_cell_ui, method_picker_ui,
    palette, psnr_text,
};

/// Detail maps are amplified so that a change of a quarter of the range saturates.
const DETAIL_GAIN: f32 = 4.0;
const GAP_PX: f32 = 6.0;

#[derive(Default)]
pub struct Scales {
    focus: Option<&'static str>,
    /// Once the user picks a method, the view stops choosing for them.
    chosen_by_user: bool,
    /// Detail maps by (method, run, step).
    details: HashMap<(&'static str, u64, usize), TextureHandle>,
}

fn is_scale_method(run: &MethodRun) -> bool {
    run.info.steps_are_scales && !run.cells.is_empty()
}

impl View for Scales {
    fn id(&self) -> &'static str {
        "scales"
    }
    fn title(&self) -> &'static str {
        "Scales"
    }
    fn hint(&self) -> &'static str {
        "Coarse to fine: the estimate after each scale and the detail each scale added."
    }

    fn shows_one_method(&self) -> bool {
        true
    }

    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext) {
        let model = context.model;
        if !self.chosen_by_user {
            // Prefer a coarse-to-fine method as soon as one has reported its first scale.
            if let Some(run) = model.runs.iter().find(|r| is_scale_method(r)) {
                self.focus = Some(run.info.name);
            }
        }
        ui.horizontal(|ui| {
            let before = self.focus;
            method_picker_ui(ui, "scales-method", model, &mut self.focus, |_| true);
            if before.is_some() && self.focus != before {
                self.chosen_by_user = true;
            }
            ui.label(
                RichText::new("top: estimate after each scale · bottom: the change it made")
                    .color(palette::TEXT_DIM),
            );
        });
        let Some(run) = self.focus.and_then(|m| model.run(m)) else {
            empty_hint_ui(
                ui,
                "Select a coarse-to-fine method (e.g. Multi-scale reservoirs) on the left.",
            );
            return;
        };
        if run.cells.is_empty() {
            empty_hint_ui(ui, "Waiting for the first scale…");
            return;
        }
        // Forget maps of older runs.
        self.details
            .retain(|(method, run_id, _), _| *method != run.info.name || *run_id == run.run_id);
        let count = run.total_steps.unwrap_or(0).max(run.steps_done()).max(1);
        let available = ui.available_size();
        let side = ((available.x - GAP_PX * (count as f32 - 1.0)) / count as f32)
            .min((available.y - 2.0 * CAPTION_PX - GAP_PX) / 2.0)
            .floor()
            .max(24.0);
        egui::ScrollArea::horizontal()
            .auto_shrink(false)
            .show(ui, |ui| {
                ui.spacing_mut().item_spacing = egui::vec2(GAP_PX, GAP_PX);
                ui.horizontal(|ui| {
                    let mut previous: Option<&ColorImage> = None;
                    let mut previous_psnr: Option<f64> = None;
                    for step in 1..=count {
                        let cell = run.cells.get(&step).filter(|c| c.thumbnail.is_some());
                        let detail = cell.map(|cell| {
                            let key = (run.info.name, run.run_id, step);
                            self.details
                                .entry(key)
                                .or_insert_with(|| {
                                    let image = detail_map(
                                        cell.thumbnail_image.as_deref().expect("filtered above"),
                                        previous,
                                    );
                                    ui.ctx().load_texture(
                                        format!("scales/{step}"),
                                        image,
                                        TextureOptions::NEAREST,
                                    )
                                })
                                .id()
                        });
                        ui.vertical(|ui| {
                            let gain = match (cell, previous_psnr) {
                                (Some(c), Some(p)) => format!("{:+.2} dB", c.report.psnr_db - p),
                                _ => String::new(),
                            };
                            image_cell_ui(
                                ui,
                                cell.and_then(|c| c.thumbnail.as_ref()).map(|t| t.id()),
                                side,
                                &Caption {
                                    title: cell
                                        .map_or("pending".into(), |c| c.report.label.clone()),
                                    value: psnr_text(cell.map(|c| c.report.psnr_db)),
                                    value_color: palette::TEXT_STRONG,
                                    edge: None,
                                },
                            );
                            image_cell_ui(
                                ui,
                                detail,
                                side,
                                &Caption {
                                    title: "detail".into(),
                                    value: gain,
                                    value_color: palette::GOOD,
                                    edge: None,
                                },
                            );
                        });
                        previous = cell.and_then(|c| c.thumbnail_image.as_deref());
                        previous_psnr = cell.map(|c| c.report.psnr_db);
                    }
                });
            });
    }
}

/// The change from `previous` (mid grey for the first scale) to `current`, channel mean.
fn detail_map(current: &ColorImage, previous: Option<&ColorImage>) -> ColorImage {
    let grey = Color32::from_gray(128);
    let pixels = current
        .pixels
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = previous
                .filter(|p| p.size == current.size)
                .map_or(grey, |p| p.pixels[i]);
            let delta = (c.r() as f32 - p.r() as f32 + c.g() as f32 - p.g() as f32 + c.b() as f32
                - p.b() as f32)
                / (3.0 * 255.0);
            diverging_color(delta * DETAIL_GAIN)
        })
        .collect();
    ColorImage::new(current.size, pixels)
}

#[cfg(test)]
mod tests {
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::ui::fixture::view_harness;

    #[test]
    fn scales_default_to_the_scale_method_and_show_each_scale() {
        let mut h = view_harness(Box::new(Scales::default()), 3);
        h.run();
        assert!(h.query_by_label_contains("scale 3").is_some());
        assert_eq!(h.query_all_by_label_contains("detail").count(), 3);
        assert_eq!(h.query_all_by_label_contains("+1.00 dB").count(), 2);
    }
}
