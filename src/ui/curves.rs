//! Curves: PSNR against step for every running method, overlaid, with one-step methods (the
//! Fourier-ridge baseline) drawn as horizontal lines, as in the seed's "Progression curves".

use egui::RichText;
use egui_plot::{HLine, Legend, Line, LineStyle, MarkerShape, Plot, PlotPoints, Points};

use super::{View, ViewContext, empty_hint_ui, method_color, palette, psnr_text, swatch_ui};

#[derive(Default)]
pub struct Curves;

impl View for Curves {
    fn id(&self) -> &'static str {
        "curves"
    }
    fn title(&self) -> &'static str {
        "Curves"
    }
    fn hint(&self) -> &'static str {
        "PSNR against step for every running method; one-step methods are horizontal baselines."
    }

    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext) {
        let model = context.model;
        if model.runs.iter().all(|r| r.cells.is_empty()) {
            empty_hint_ui(
                ui,
                "PSNR curves appear here once the first steps are computed.",
            );
            return;
        }
        // A summary row under the plot: the numbers, legible without hovering.
        let summary_px = 48.0;
        let plot_height = (ui.available_height() - summary_px).max(120.0);
        Plot::new("psnr-curves")
            .height(plot_height)
            .legend(Legend::default().position(egui_plot::Corner::RightBottom))
            .x_axis_label("step")
            .y_axis_label("PSNR (dB)")
            .include_x(0.0)
            .include_x(1.0)
            .allow_scroll(false)
            .label_formatter(|position| match position {
                egui_plot::HoverPosition::NearDataPoint {
                    plot_name,
                    position,
                    ..
                } => Some(format!(
                    "{plot_name}\nstep {:.0}: {:.2} dB",
                    position.x, position.y
                )),
                egui_plot::HoverPosition::Elsewhere { position } => {
                    Some(format!("step {:.1}, {:.2} dB", position.x, position.y))
                }
            })
            .show(ui, |plot| {
                for run in &model.runs {
                    if run.cells.is_empty() {
                        continue;
                    }
                    let color = method_color(run.info.name);
                    if run.total_steps == Some(1) {
                        // A single solve: its PSNR is a level to beat, not a curve.
                        let psnr = run.latest_psnr_db().unwrap_or(0.0);
                        plot.hline(
                            HLine::new(format!("{} (baseline)", run.info.title), psnr)
                                .color(color)
                                .style(LineStyle::dashed_loose())
                                .width(1.5),
                        );
                        continue;
                    }
                    let points: Vec<[f64; 2]> = run
                        .cells
                        .values()
                        .map(|c| [c.report.step as f64, c.report.psnr_db])
                        .collect();
                    plot.line(
                        Line::new(run.info.title, PlotPoints::from(points.clone()))
                            .color(color)
                            .width(2.0),
                    );
                    plot.points(
                        Points::new(run.info.title, PlotPoints::from(points))
                            .color(color)
                            .shape(MarkerShape::Circle)
                            .radius(3.0),
                    );
                }
            });
        ui.horizontal_wrapped(|ui| {
            for run in &model.runs {
                let Some(best) = run
                    .cells
                    .values()
                    .max_by(|a, b| a.report.psnr_db.total_cmp(&b.report.psnr_db))
                else {
                    continue;
                };
                swatch_ui(ui, method_color(run.info.name));
                ui.label(
                    RichText::new(format!(
                        "{}: best {} at {}",
                        run.info.title,
                        psnr_text(Some(best.report.psnr_db)),
                        best.report.label
                    ))
                    .color(palette::TEXT_STRONG),
                );
                ui.add_space(12.0);
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
    fn curves_summarise_every_method() {
        let mut h = view_harness(Box::new(Curves), 4);
        h.run();
        let trajectory = h.get_by_label_contains("Reservoir trajectory: best");
        assert!(
            format!("{trajectory:?}").contains("14.00 dB"),
            "{trajectory:?}"
        );
        assert!(
            h.query_by_label_contains("Fourier features + ridge: best")
                .is_some()
        );
    }
}
