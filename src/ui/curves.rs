//! Curves: PSNR against step for every running method, overlaid, with one-step methods (the
//! Fourier-ridge baseline) drawn as horizontal lines, as in the seed's "Progression curves".
//! Trained methods also get their training loss against step, on a log scale, in a second plot
//! under it that shares its step axis.

use egui::RichText;
use egui_plot::{
    GridInput, GridMark, HLine, Legend, Line, LineStyle, MarkerShape, Plot, PlotPoints, Points,
};

use crate::app::state::MethodRun;

use super::{View, ViewContext, empty_hint_ui, method_color, palette, psnr_text, swatch_ui};

#[derive(Default)]
pub struct Curves;

/// Share of the plots' height the loss plot takes when there is one.
const LOSS_SHARE: f32 = 0.4;
/// Width of both plots' y axes, so that their step axes line up.
const Y_AXIS_PX: f32 = 52.0;

impl View for Curves {
    fn id(&self) -> &'static str {
        "curves"
    }
    fn title(&self) -> &'static str {
        "Curves"
    }
    fn hint(&self) -> &'static str {
        "PSNR against step for every running method; one-step methods are horizontal baselines. \
         Trained methods add their loss (log scale)."
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
        let trained = model.runs.iter().any(|run| latest_loss(run).is_some());
        // A summary row under the plots: the numbers, legible without hovering.
        let summary_px = 48.0;
        let plots_height = (ui.available_height() - summary_px).max(120.0);
        let (psnr_height, loss_height) = if trained {
            let loss = (plots_height * LOSS_SHARE).max(100.0);
            ((plots_height - loss - 6.0).max(120.0), loss)
        } else {
            (plots_height, 0.0)
        };
        // Both plots show the same steps: zooming or panning one moves the other.
        let steps_axis = ui.make_persistent_id("curves-steps");
        step_plot("psnr-curves", psnr_height, steps_axis, "PSNR (dB)")
            .legend(Legend::default().position(egui_plot::Corner::RightBottom))
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
        if trained {
            ui.add_space(6.0);
            step_plot(
                "loss-curves",
                loss_height,
                steps_axis,
                "training loss (log)",
            )
            .legend(Legend::default().position(egui_plot::Corner::RightTop))
            .y_grid_spacer(decade_marks)
            .y_axis_formatter(|mark, _| power_of_ten_text(mark.value))
            .label_formatter(|position| match position {
                egui_plot::HoverPosition::NearDataPoint {
                    plot_name,
                    position,
                    ..
                } => Some(format!(
                    "{plot_name}\nstep {:.0}: loss {:.3e}",
                    position.x,
                    10f64.powf(position.y)
                )),
                egui_plot::HoverPosition::Elsewhere { position } => Some(format!(
                    "step {:.1}, loss {:.2e}",
                    position.x,
                    10f64.powf(position.y)
                )),
            })
            .show(ui, |plot| {
                for run in &model.runs {
                    let points = log_loss_points(run);
                    if points.is_empty() {
                        continue;
                    }
                    plot.line(
                        Line::new(run.info.title, PlotPoints::from(points))
                            .color(method_color(run.info.name))
                            .width(2.0),
                    );
                }
            });
        }
        ui.horizontal_wrapped(|ui| {
            for run in &model.runs {
                let Some(best) = run
                    .cells
                    .values()
                    .max_by(|a, b| a.report.psnr_db.total_cmp(&b.report.psnr_db))
                else {
                    continue;
                };
                let loss =
                    latest_loss(run).map_or_else(String::new, |loss| format!(" · loss {loss:.2e}"));
                // Swatch and text as one piece, so a line break never parts them.
                ui.horizontal(|ui| {
                    swatch_ui(ui, method_color(run.info.name));
                    ui.label(
                        RichText::new(format!(
                            "{}: best {} at {}{loss}",
                            run.info.title,
                            psnr_text(Some(best.report.psnr_db)),
                            best.report.label
                        ))
                        .color(palette::TEXT_STRONG),
                    );
                });
                ui.add_space(12.0);
            }
        });
    }
}

/// (step, log₁₀ loss) of every step with a positive, finite loss.
pub fn log_loss_points(run: &MethodRun) -> Vec<[f64; 2]> {
    run.cells
        .values()
        .filter_map(|cell| {
            let loss = cell.report.loss?;
            (loss.is_finite() && loss > 0.0).then(|| [cell.report.step as f64, loss.log10()])
        })
        .collect()
}

/// The latest step's loss, for methods that train.
fn latest_loss(run: &MethodRun) -> Option<f64> {
    run.cells.values().rev().find_map(|cell| cell.report.loss)
}

/// Grid lines of a log₁₀ axis: every decade, 2× and 5× within each, and the other multiples
/// thinner; egui_plot labels the lines with room for a label, so the fewer the decades in
/// view, the more are labelled.
fn decade_marks(input: GridInput) -> Vec<GridMark> {
    let (low, high) = input.bounds;
    if !(low.is_finite() && high.is_finite()) || high - low > 200.0 {
        return Vec::new();
    }
    let mut marks = Vec::new();
    let first = low.floor() as i64;
    let last = high.ceil() as i64;
    for decade in first..=last {
        let decade = decade as f64;
        if (low..=high).contains(&decade) {
            marks.push(GridMark {
                value: decade,
                step_size: 1.0,
            });
        }
        for multiple in 2..=9 {
            let value = decade + (multiple as f64).log10();
            if (low..=high).contains(&value) {
                marks.push(GridMark {
                    value,
                    // About the gap to the neighbouring mark of the same kind.
                    step_size: if multiple == 2 || multiple == 5 {
                        0.3
                    } else {
                        0.05
                    },
                });
            }
        }
    }
    marks
}

/// 10^`exponent` as an axis label: "1e-3" on a decade, "2e-3" between.
fn power_of_ten_text(exponent: f64) -> String {
    let value = 10f64.powf(exponent);
    let text = format!("{value:.0e}");
    // Decades print as "1e-3"; keep them exact when powf rounds to 9.999…e-4.
    if (exponent - exponent.round()).abs() < 1e-9 {
        format!("1e{}", exponent.round() as i64)
    } else {
        text
    }
}

/// A plot against the step axis, its x axis linked with the other curves so they scroll together
/// and their y axes aligned.
fn step_plot<'a>(name: &str, height: f32, steps_axis: egui::Id, y_label: &str) -> Plot<'a> {
    Plot::new(name)
        .height(height)
        .x_axis_label("step")
        .y_axis_label(y_label.to_owned())
        .include_x(0.0)
        .include_x(1.0)
        .allow_scroll(false)
        .link_axis(steps_axis, [true, false])
        .link_cursor(steps_axis, [true, false])
        .y_axis_min_width(Y_AXIS_PX)
}

#[cfg(test)]
mod tests {
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::ui::fixture::{trained_model, view_harness, view_harness_with};

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

    #[test]
    fn trained_methods_get_a_loss_curve_on_a_log_scale() {
        let mut h = view_harness_with(Box::new(Curves), Box::new(trained_model));
        h.run();
        // The loss at step 30 of each trained method is in the summary; the baseline has none.
        let refine = h.get_by_label_contains("Learned refinement: best");
        let want = format!("loss {:.2e}", 0.2 * 0.9f64.powi(30));
        assert!(
            format!("{refine:?}").contains(&want),
            "{refine:?} lacks {want}"
        );
        assert!(
            h.query_by_label_contains("Fourier-feature MLP: best")
                .is_some()
        );
        let ridge = h.get_by_label_contains("Fourier features + ridge: best");
        assert!(!format!("{ridge:?}").contains("loss"), "{ridge:?}");
        // What the loss plot draws: log₁₀ of every step's loss.
        let model = h.state().model.as_ref().unwrap();
        let points = log_loss_points(model.run("learned-refine").unwrap());
        assert_eq!(
            points.len(),
            30,
            "one point per step, not only the kept ones"
        );
        assert!((points[0][1] - (0.2f64 * 0.9).log10()).abs() < 1e-12);
        assert!(log_loss_points(model.run("fourier-ridge").unwrap()).is_empty());
    }

    #[test]
    fn log_axis_marks_decades_and_labels_them() {
        let marks = decade_marks(GridInput {
            bounds: (-3.2, -0.9),
            base_step_size: 0.01,
        });
        let decades: Vec<f64> = marks
            .iter()
            .filter(|m| m.step_size == 1.0)
            .map(|m| m.value)
            .collect();
        assert_eq!(decades, [-3.0, -2.0, -1.0]);
        assert_eq!(power_of_ten_text(-3.0), "1e-3");
        assert_eq!(power_of_ten_text(2f64.log10() - 2.0), "2e-2");
    }
}
