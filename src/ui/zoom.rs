//! Zoom: the focused method's field as a continuous function. The region shown is evaluated by
//! the model at the display's own resolution (by the worker, between steps, under the same time
//! sharing), from the whole image to a 64th of its width, beside bicubic and Lanczos-3
//! interpolation of the image it was fitted on at the same points. Drag pans and the wheel zooms
//! all three together.

use egui::{RichText, Sense};

use crate::app::protocol::ZoomRequest;
use crate::sparse::zoom::{MAX_ZOOM, ZoomRegion};

use super::{View, ViewContext, empty_hint_ui, method_color, method_picker_ui, palette};

const GAP_PX: f32 = 8.0;
/// Display pixels a side of an evaluated region, at most (a 384² rendering is 147 456
/// evaluations of the model).
const MAX_PIXELS: usize = 384;

pub struct Zoom {
    center: [f64; 2],
    /// 1 shows the whole image, 64 a 64th of its width.
    zoom: f64,
}

impl Default for Zoom {
    fn default() -> Self {
        Zoom {
            center: [0.5, 0.5],
            zoom: 1.0,
        }
    }
}

impl View for Zoom {
    fn id(&self) -> &'static str {
        "zoom"
    }
    fn title(&self) -> &'static str {
        "Zoom"
    }
    fn hint(&self) -> &'static str {
        "Zoom into a method's field up to 64×: the model evaluated at the zoomed region's own \
         resolution, beside bicubic and Lanczos interpolation."
    }

    fn shows_one_method(&self) -> bool {
        true
    }

    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext) {
        let model = context.model;
        ui.horizontal(|ui| {
            method_picker_ui(ui, "zoom-method", model, context.focus_method, |run| {
                run.info.fits_observed_pixels
            });
            ui.label("zoom");
            for factor in [1.0, 2.0, 4.0, 8.0, 16.0, 64.0] {
                let selected = (self.zoom - factor).abs() < 1e-6;
                if ui
                    .selectable_label(selected, format!("{factor}×"))
                    .on_hover_text("The region shown is this many times narrower than the image.")
                    .clicked()
                {
                    self.zoom = factor;
                }
            }
            if ui.button("reset").clicked() {
                *self = Zoom::default();
            }
        });
        let Some(target) = &model.target else {
            empty_hint_ui(ui, "Loading the image…");
            return;
        };
        let Some(run) = context
            .focus_method
            .and_then(|m| model.run(m))
            .filter(|run| run.info.fits_observed_pixels)
        else {
            let models = crate::methods::fitting_observed_pixels(|info| info.title);
            empty_hint_ui(
                ui,
                &format!("Pick a coordinate model ({models}) to zoom into its field."),
            );
            return;
        };
        let side_px = ((ui.available_width() - 2.0 * GAP_PX) / 3.0)
            .min(ui.available_height() - 48.0)
            .max(64.0);
        let pixels = ((side_px * ui.ctx().pixels_per_point()) as usize).clamp(32, MAX_PIXELS);
        let fitted = target.size;
        let region = ZoomRegion {
            center: self.center,
            span: 1.0 / self.zoom,
            pixels,
        }
        .clamped();
        self.center = region.center;
        self.zoom = region.zoom();
        context.zoom = Some(ZoomRequest {
            method: run.info.name,
            region,
        });
        let shown = (model.zoom.as_ref()).filter(|z| z.request.method == run.info.name);
        let current = shown.is_some_and(|z| z.request.region == region && z.run_id == run.run_id);
        let labels = [
            (run.info.title, method_color(run.info.name)),
            ("bicubic", palette::TEXT_STRONG),
            ("Lanczos-3", palette::TEXT_STRONG),
        ];
        let mut pan = egui::Vec2::ZERO;
        let mut scroll = None;
        ui.horizontal(|ui| {
            ui.spacing_mut().item_spacing.x = GAP_PX;
            for (index, (label, color)) in labels.into_iter().enumerate() {
                ui.vertical(|ui| {
                    ui.label(RichText::new(label).strong().color(color));
                    let (rect, response) =
                        ui.allocate_exact_size(egui::vec2(side_px, side_px), Sense::drag());
                    match shown {
                        Some(view) => {
                            ui.painter().image(
                                view.textures[index].id(),
                                rect,
                                egui::Rect::from_min_max(
                                    egui::pos2(0.0, 0.0),
                                    egui::pos2(1.0, 1.0),
                                ),
                                egui::Color32::WHITE,
                            );
                        }
                        None => {
                            ui.painter().rect_filled(rect, 2.0, palette::CELL);
                        }
                    }
                    if response.dragged() {
                        pan += response.drag_delta();
                    }
                    if response.hovered() {
                        let delta = ui.input(|i| i.smooth_scroll_delta.y);
                        if delta != 0.0 {
                            let at = response.hover_pos().map(|p| (p - rect.min) / side_px);
                            scroll = Some((delta, at));
                        }
                    }
                });
            }
        });
        let span = region.span;
        if pan != egui::Vec2::ZERO {
            self.center[0] -= f64::from(pan.x / side_px) * span;
            self.center[1] -= f64::from(pan.y / side_px) * span;
        }
        if let Some((delta, at)) = scroll {
            let factor = (f64::from(delta) * 0.004).exp();
            let new = (self.zoom * factor).clamp(1.0, MAX_ZOOM);
            // Zoom about the point under the cursor.
            if let Some(at) = at {
                let point = [
                    region.center[0] + (f64::from(at.x) - 0.5) * span,
                    region.center[1] + (f64::from(at.y) - 0.5) * span,
                ];
                let ratio = self.zoom / new;
                for axis in 0..2 {
                    self.center[axis] = point[axis] + (self.center[axis] - point[axis]) * ratio;
                }
            }
            self.zoom = new;
        }
        let status = match shown {
            Some(view) if current => format!(
                "step {} · zoom {:.1}× · {:.1} display pixels per image pixel · {}² evaluated in \
                 {:.0} ms",
                view.step,
                self.zoom,
                region.magnification(fitted),
                region.pixels,
                view.model_ms
            ),
            Some(_) => "evaluating the new region…".to_owned(),
            None => "waiting for the first evaluation…".to_owned(),
        };
        ui.label(RichText::new(status).color(palette::TEXT_DIM));
    }
}
