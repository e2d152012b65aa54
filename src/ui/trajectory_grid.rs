//! Trajectory grid: one cell per step (or k, iteration, scale) of the focused method, the
//! target first, as in the seed notebooks' figures. Clicking a cell enlarges it.

use egui::{Key, RichText};

use crate::app::state::{MethodRun, TargetView};

use super::{
    CAPTION_PX, Caption, View, ViewContext, empty_hint_ui, image_cell_ui, method_picker_ui,
    palette, psnr_text, run_summary, tile,
};

/// Which cell is enlarged: 0 is the target, k the k-th step.
#[derive(Default)]
pub struct TrajectoryGrid {
    enlarged: Option<usize>,
}

const GAP_PX: f32 = 6.0;

impl View for TrajectoryGrid {
    fn id(&self) -> &'static str {
        "trajectory"
    }
    fn title(&self) -> &'static str {
        "Trajectory grid"
    }
    fn hint(&self) -> &'static str {
        "Every step of one method, target first. Click a cell to enlarge it."
    }

    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext) {
        let model = context.model;
        ui.horizontal(|ui| {
            method_picker_ui(ui, "grid-method", model, context.focus_method, |_| true);
            if let Some(run) = context.focus_method.and_then(|m| model.run(m)) {
                ui.label(
                    RichText::new(run_summary(run))
                        .monospace()
                        .color(palette::TEXT_DIM),
                );
            }
            if self.enlarged.is_some() && ui.button("back to grid (Esc)").clicked() {
                self.enlarged = None;
            }
        });
        ui.add_space(4.0);
        let (Some(target), Some(run)) = (
            model.target.as_ref(),
            context.focus_method.and_then(|m| model.run(m)),
        ) else {
            empty_hint_ui(
                ui,
                "Select a method on the left; its steps appear here as they are computed.",
            );
            return;
        };
        // Cells: the target, then every step of the run (placeholders for those still to come).
        // Trained methods keep a few of their hundreds of steps: then only the kept ones.
        let steps = run.total_steps.unwrap_or(0).max(run.steps_done());
        let keeps_some = run.cells.values().any(|c| c.thumbnail.is_none());
        let indices: Vec<usize> = if keeps_some {
            std::iter::once(0)
                .chain(
                    run.cells
                        .iter()
                        .filter(|(_, c)| c.thumbnail.is_some())
                        .map(|(&step, _)| step),
                )
                .collect()
        } else {
            (0..=steps).collect()
        };
        let count = indices.len();
        if let Some(index) = self.enlarged {
            let index = index.min(count - 1);
            ui.input(|i| {
                if i.key_pressed(Key::Escape) {
                    self.enlarged = None;
                }
                if i.key_pressed(Key::ArrowRight) {
                    self.enlarged = Some((index + 1).min(count - 1));
                }
                if i.key_pressed(Key::ArrowLeft) {
                    self.enlarged = Some(index.saturating_sub(1));
                }
            });
            let available = ui.available_size();
            let side = (available.x.min(available.y - CAPTION_PX))
                .floor()
                .max(16.0);
            let (texture, caption) = cell(target, run, indices[index]);
            ui.vertical_centered(|ui| {
                if image_cell_ui(ui, texture, side, &caption).clicked() {
                    self.enlarged = None;
                }
            });
            return;
        }

        let (columns, side) = tile(count, ui.available_size(), GAP_PX, CAPTION_PX);
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                ui.spacing_mut().item_spacing = egui::vec2(GAP_PX, GAP_PX);
                for row_start in (0..count).step_by(columns) {
                    ui.horizontal(|ui| {
                        for index in row_start..(row_start + columns).min(count) {
                            let (texture, caption) = cell(target, run, indices[index]);
                            let response = image_cell_ui(ui, texture, side, &caption);
                            if response.clicked() {
                                self.enlarged = Some(index);
                            }
                        }
                    });
                }
            });
    }
}

/// The texture and caption of cell `index` (0 is the target; placeholders for pending steps).
fn cell<'a>(
    target: &'a TargetView,
    run: &'a MethodRun,
    index: usize,
) -> (Option<egui::TextureId>, Caption) {
    if index == 0 {
        return (
            Some(target.texture.id()),
            Caption {
                title: "target".into(),
                value: "ground truth".into(),
                value_color: palette::GROUND_TRUTH,
                edge: Some(palette::GROUND_TRUTH),
            },
        );
    }
    match run.cells.get(&index) {
        Some(step) => (
            step.thumbnail.as_ref().map(|t| t.id()),
            Caption {
                title: step.report.label.clone(),
                value: psnr_text(Some(step.report.psnr_db)),
                value_color: palette::TEXT_STRONG,
                edge: None,
            },
        ),
        None => (
            None,
            Caption {
                title: "pending".into(),
                value: String::new(),
                value_color: palette::TEXT_DIM,
                edge: None,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::ui::fixture::view_harness;

    #[test]
    fn grid_shows_target_and_every_step_and_enlarges_on_click() {
        let mut h = view_harness(Box::new(TrajectoryGrid::default()), 3);
        h.run();
        assert!(h.query_by_label_contains("target").is_some());
        let steps = h.query_all_by_label_contains("step ").count();
        assert_eq!(steps, 3, "one cell per step");
        h.get_by_label_contains("step 2").click();
        h.run();
        assert!(h.query_by_label_contains("back to grid").is_some());
    }
}
