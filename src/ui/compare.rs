//! Compare: the target and the current output of every running method side by side, with
//! their PSNRs.

use std::sync::Arc;

use crate::app::state::RunStatus;
use crate::figures;
use crate::sheet::SheetCell;

use super::{
    CAPTION_PX, Caption, ExportSource, View, ViewContext, ViewExport, empty_hint_ui, image_cell_ui,
    method_color, palette, psnr_text, run_summary, tile,
};

#[derive(Default)]
pub struct Compare;

const GAP_PX: f32 = 8.0;

impl View for Compare {
    fn id(&self) -> &'static str {
        "compare"
    }
    fn title(&self) -> &'static str {
        "Compare"
    }
    fn hint(&self) -> &'static str {
        "The target and every method's latest output side by side (G shows the ground truth)."
    }

    fn export(&self, source: &ExportSource) -> Option<ViewExport> {
        let target = source.model.target.as_ref()?;
        let outputs: Vec<_> = (source.model.runs.iter())
            .filter_map(|run| {
                let latest = run.latest.as_ref()?;
                let cell = match run.cells.get(&latest.step) {
                    Some(cell) => figures::step_cell(&cell.report, Arc::clone(&latest.image)),
                    None => SheetCell::new(Arc::clone(&latest.image), run_summary(run), ""),
                };
                Some((run.info, cell))
            })
            .collect();
        (!outputs.is_empty()).then(|| {
            ViewExport::Sheet(figures::compare_sheet(
                source.provenance,
                Arc::clone(&target.image),
                outputs,
            ))
        })
    }

    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext) {
        let model = context.model;
        let Some(target) = &model.target else {
            empty_hint_ui(ui, "Loading the image…");
            return;
        };
        let count = model.runs.len() + 1;
        let (columns, side) = tile(count, ui.available_size(), GAP_PX, CAPTION_PX + 18.0);
        let mut cells = vec![CompareCell {
            heading: "Target",
            heading_color: palette::GROUND_TRUTH,
            tooltip: "The image being fitted, at the working size.",
            texture: Some(target.texture.id()),
            caption: Caption {
                title: target.name.clone(),
                value: format!("{}²", target.size),
                value_color: palette::TEXT_DIM,
                edge: Some(palette::GROUND_TRUTH),
            },
        }];
        for run in &model.runs {
            let color = method_color(run.info.name);
            let stopped = matches!(
                run.status,
                RunStatus::Diverged { .. } | RunStatus::Failed(_)
            );
            let (texture, title) = if context.show_ground_truth {
                (Some(target.texture.id()), "ground truth (G)".to_owned())
            } else {
                let label = run
                    .shown_step()
                    .and_then(|step| run.cells.get(&step))
                    .map_or_else(|| run_summary(run), |c| c.report.label.clone());
                (run.shown_texture(), label)
            };
            cells.push(CompareCell {
                heading: run.info.title,
                heading_color: color,
                tooltip: run.info.summary,
                texture,
                caption: Caption {
                    title,
                    value: if stopped {
                        run_summary(run)
                    } else {
                        psnr_text(run.latest_psnr_db())
                    },
                    value_color: if stopped {
                        palette::BAD
                    } else {
                        palette::TEXT_STRONG
                    },
                    edge: Some(if context.show_ground_truth {
                        palette::GROUND_TRUTH
                    } else {
                        color
                    }),
                },
            });
        }
        ui.spacing_mut().item_spacing = egui::vec2(GAP_PX, GAP_PX);
        for chunk in cells.chunks(columns) {
            ui.horizontal(|ui| {
                for cell in chunk {
                    ui.vertical(|ui| {
                        ui.label(
                            egui::RichText::new(cell.heading)
                                .strong()
                                .color(cell.heading_color),
                        )
                        .on_hover_text(cell.tooltip);
                        image_cell_ui(ui, cell.texture, side, &cell.caption);
                    });
                }
            });
        }
    }
}

struct CompareCell<'a> {
    heading: &'a str,
    heading_color: egui::Color32,
    tooltip: &'a str,
    texture: Option<egui::TextureId>,
    caption: Caption,
}

#[cfg(test)]
mod tests {
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::ui::fixture::view_harness;

    #[test]
    fn compare_shows_target_and_each_output_with_psnr() {
        let mut h = view_harness(Box::new(Compare), 2);
        h.run();
        assert!(h.query_by_label_contains("Target").is_some());
        // trajectory and multiscale end at step 2 (12 dB), the baseline at 11 dB.
        assert_eq!(h.query_all_by_label_contains("12.00 dB").count(), 2);
        assert_eq!(h.query_all_by_label_contains("11.00 dB").count(), 1);
        h.state_mut().show_ground_truth = true;
        h.run();
        assert_eq!(h.query_all_by_label_contains("ground truth (G)").count(), 3);
    }
}
