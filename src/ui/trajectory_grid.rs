//! Trajectory grid: one cell per step (or k, iteration, scale) of the focused method, the
//! target first, as in the seed notebooks' figures. Clicking a cell enlarges it.
//!
//! A method that refines internally (learned-refine) also gets a row under the grid: its K
//! iterations with the weights of a recent training step, each with its PSNR, updating as it
//! trains. The view asks the worker for them ([`ViewContext::iterates_for`]) only while it
//! shows them.

use std::sync::Arc;

use egui::{Key, RichText};

use crate::app::state::{IteratesView, MethodRun, TargetView};
use crate::figures;

use super::{
    CAPTION_PX, Caption, ExportSource, View, ViewContext, ViewExport, empty_hint_ui, image_cell_ui,
    method_picker_ui, palette, psnr_text, run_summary, tile,
};

/// Which cell is enlarged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enlarged {
    /// Position in the grid: 0 is the target, then the steps shown.
    Cell(usize),
    /// Iteration k (0-based) of the iterates row.
    Iterate(usize),
}

#[derive(Default)]
pub struct TrajectoryGrid {
    enlarged: Option<Enlarged>,
}

const GAP_PX: f32 = 6.0;
/// The iterates row takes at most this share of the view's height.
const ITERATES_SHARE: f32 = 0.4;
/// Height of the iterates row's heading.
const HEADING_PX: f32 = 24.0;

impl View for TrajectoryGrid {
    fn id(&self) -> &'static str {
        "trajectory"
    }
    fn title(&self) -> &'static str {
        "Trajectory grid"
    }
    fn hint(&self) -> &'static str {
        "Every step of one method, target first (learned refinement adds its K iterations). \
         Click a cell to enlarge it."
    }

    fn shows_one_method(&self) -> bool {
        true
    }

    fn export(&self, source: &ExportSource) -> Option<ViewExport> {
        TrajectoryGrid::sheet(source)
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
        let iterates = run.iterates.as_ref().filter(|view| !view.cells.is_empty());
        // Asked for every frame the row (or one of its cells) is on screen; the worker checks
        // whether the method has iterates, so the first ones arrive without a row to show.
        if !matches!(self.enlarged, Some(Enlarged::Cell(_))) {
            context.iterates_for = Some(run.info.name);
        }
        if let Some(enlarged) = self.enlarged {
            self.enlarged_ui(ui, enlarged, target, run, &indices, iterates);
            return;
        }

        let available = ui.available_size();
        // The iterates row: as wide as the view allows, at most ITERATES_SHARE of its height.
        let row = iterates.map(|view| {
            let k = view.cells.len() as f32;
            let by_width = (available.x - GAP_PX * (k - 1.0)) / k;
            let by_height = available.y * ITERATES_SHARE - HEADING_PX - CAPTION_PX - GAP_PX;
            (view, by_width.min(by_height).floor().max(16.0))
        });
        let row_px = row.map_or(0.0, |(_, side)| {
            side + HEADING_PX + CAPTION_PX + 2.0 * GAP_PX
        });
        let grid_area = egui::vec2(available.x, (available.y - row_px).max(40.0));
        let (columns, side) = tile(count, grid_area, GAP_PX, CAPTION_PX);
        egui::ScrollArea::vertical()
            .id_salt("grid-cells")
            .max_height(grid_area.y)
            .auto_shrink([false, row.is_some()])
            .show(ui, |ui| {
                ui.spacing_mut().item_spacing = egui::vec2(GAP_PX, GAP_PX);
                for row_start in (0..count).step_by(columns) {
                    ui.horizontal(|ui| {
                        for index in row_start..(row_start + columns).min(count) {
                            let (texture, caption) = cell(target, run, indices[index]);
                            let response = image_cell_ui(ui, texture, side, &caption);
                            if response.clicked() {
                                self.enlarged = Some(Enlarged::Cell(index));
                            }
                        }
                    });
                }
            });
        if let Some((view, side)) = row {
            ui.add_space(GAP_PX);
            ui.label(
                RichText::new(iterates_heading(view))
                    .strong()
                    .color(palette::TEXT_STRONG),
            )
            .on_hover_text(
                "One forward pass of the current network: each iteration refines the previous \
                 estimate. Together they are the method's trajectory at this training step.",
            );
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing = egui::vec2(GAP_PX, GAP_PX);
                for k in 0..view.cells.len() {
                    let (texture, caption) = iterate_cell(view, k);
                    if image_cell_ui(ui, Some(texture), side, &caption).clicked() {
                        self.enlarged = Some(Enlarged::Iterate(k));
                    }
                }
            });
        }
    }
}

impl TrajectoryGrid {
    /// The target and every kept step of the focused method (and a refiner's iterations).
    fn sheet(source: &ExportSource) -> Option<ViewExport> {
        let model = source.model;
        let (target, run) = (model.target.as_ref()?, model.run(source.focus_method?)?);
        let steps: Vec<_> = (run.cells.values())
            .filter_map(|cell| {
                let image = cell.thumbnail_image.as_ref()?;
                Some(figures::step_cell(&cell.report, Arc::clone(image)))
            })
            .collect();
        let iterates = (run.iterates.as_ref()).map(|view| {
            let cells = (view.cells.iter())
                .map(|cell| (Arc::clone(&cell.image), cell.psnr_db))
                .collect();
            (view.step, cells)
        });
        if steps.is_empty() && iterates.is_none() {
            return None;
        }
        Some(ViewExport::Sheet(figures::trajectory_sheet(
            run.info,
            source.provenance,
            Arc::clone(&target.image),
            steps,
            iterates,
        )))
    }

    /// One cell filling the view; arrows move through its row or grid, Esc goes back.
    fn enlarged_ui(
        &mut self,
        ui: &mut egui::Ui,
        enlarged: Enlarged,
        target: &TargetView,
        run: &MethodRun,
        indices: &[usize],
        iterates: Option<&IteratesView>,
    ) {
        let (index, count) = match enlarged {
            Enlarged::Cell(index) => (index, indices.len()),
            Enlarged::Iterate(k) => match iterates {
                Some(view) => (k, view.cells.len()),
                None => {
                    // The run restarted: its iterates are not there yet.
                    self.enlarged = None;
                    return;
                }
            },
        };
        let index = index.min(count - 1);
        let with = |index: usize| match enlarged {
            Enlarged::Cell(_) => Enlarged::Cell(index),
            Enlarged::Iterate(_) => Enlarged::Iterate(index),
        };
        ui.input(|i| {
            if i.key_pressed(Key::Escape) {
                self.enlarged = None;
            } else if i.key_pressed(Key::ArrowRight) {
                self.enlarged = Some(with((index + 1).min(count - 1)));
            } else if i.key_pressed(Key::ArrowLeft) {
                self.enlarged = Some(with(index.saturating_sub(1)));
            }
        });
        let available = ui.available_size();
        let side = (available.x.min(available.y - CAPTION_PX))
            .floor()
            .max(16.0);
        let (texture, caption) = match (enlarged, iterates) {
            (Enlarged::Iterate(_), Some(view)) => {
                let (texture, mut caption) = iterate_cell(view, index);
                caption.title = format!("{} · step {}", caption.title, view.step);
                (Some(texture), caption)
            }
            _ => cell(target, run, indices[index]),
        };
        ui.vertical_centered(|ui| {
            if image_cell_ui(ui, texture, side, &caption).clicked() {
                self.enlarged = None;
            }
        });
    }
}

/// "iterations 1…5 at step 120".
fn iterates_heading(view: &IteratesView) -> String {
    format!("iterations 1…{} at step {}", view.cells.len(), view.step)
}

/// The texture and caption of iteration `k` (0-based).
fn iterate_cell(view: &IteratesView, k: usize) -> (egui::TextureId, Caption) {
    let cell = &view.cells[k];
    (
        cell.texture.id(),
        Caption {
            title: format!("iteration {}", k + 1),
            value: psnr_text(Some(cell.psnr_db)),
            value_color: palette::TEXT_STRONG,
            edge: None,
        },
    )
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
    use egui_kittest::kittest::{NodeT, Queryable};

    use super::*;
    use crate::ui::fixture::{trained_model, view_harness, view_harness_with};

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

    #[test]
    fn learned_refine_shows_its_iterations_under_the_milestones() {
        let mut h = view_harness_with(Box::new(TrajectoryGrid::default()), Box::new(trained_model));
        h.state_mut().focus = Some("learned-refine");
        h.run();
        assert_eq!(
            h.state().iterates_for,
            Some("learned-refine"),
            "the grid asks for the iterates it shows"
        );
        assert!(
            h.query_by_label_contains("iterations 1…5 at step 30")
                .is_some()
        );
        for k in 1..=5 {
            let label = format!("iteration {k} ");
            let cell = h.get_by_label_contains(&label);
            let psnr = format!("{:.2} dB", 8.0 + 2.0 * k as f64);
            assert!(format!("{cell:?}").contains(&psnr), "{cell:?}");
        }
        // The kept training steps are still there, above.
        let milestones = h
            .query_all_by_label_contains("step ")
            .filter(|n| {
                n.accesskit_node()
                    .label()
                    .is_some_and(|l| l.starts_with("step "))
            })
            .count();
        assert_eq!(milestones, 5, "steps 1, 2, 5, 10, 20");
        h.get_by_label_contains("iteration 3 ").click();
        h.run();
        assert!(h.query_by_label_contains("iteration 3 · step 30").is_some());
        assert_eq!(h.state().iterates_for, Some("learned-refine"));
        h.get_by_label_contains("back to grid").click();
        h.run();
        // A method without iterates has no such row.
        h.state_mut().focus = Some("fourier-mlp");
        h.run();
        assert!(h.query_by_label_contains("iterations 1…").is_none());
        assert!(h.query_by_label_contains("iteration 1 ").is_none());
    }
}
