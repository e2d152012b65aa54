//! Curves: PSNR against step for every running method, overlaid, with one-step methods (the
//! Fourier-ridge baseline) drawn as horizontal lines, as in the seed's "Progression curves".
//! Trained methods also get their training loss against step, on a log scale, in a second plot
//! under it that shares its step axis. A multi-resolution method (the wavelet operator) gets a
//! plot of its own between them: per level, the teacher-forced and the rollout PSNR against
//! step, with nearest and bicubic upsampling of the true lower level as dotted levels to beat,
//! and the latest numbers in a table beside it.

use egui::{Color32, RichText};
use egui_plot::{
    GridInput, GridMark, HLine, Legend, Line, LineStyle, MarkerShape, Plot, PlotPoints, Points,
};

use crate::app::state::{MethodRun, Model};

use super::{
    ExportSource, View, ViewContext, ViewExport, empty_hint_ui, method_color, palette, psnr_text,
    swatch_ui,
};

pub struct Curves {
    /// Whether the per-level plot draws the rollout curves (dashed) and the upsampling
    /// references (dotted) besides the teacher-forced curves.
    show_rollouts: bool,
    show_references: bool,
}

impl Default for Curves {
    fn default() -> Self {
        Curves {
            show_rollouts: true,
            show_references: true,
        }
    }
}

/// Heights of the plots relative to the PSNR plot's: the loss plot takes 40 % of the two when
/// it is alone with it.
const LOSS_WEIGHT: f32 = 2.0 / 3.0;
const LEVELS_WEIGHT: f32 = 1.2;
/// Width of the per-level table beside its plot.
const LEVEL_TABLE_PX: f32 = 360.0;
/// Height of the per-level plot's heading row.
const LEVELS_HEADING_PX: f32 = 26.0;
/// One colour per level, coarse (blue) to fine (red); levels are spread over them.
const LEVEL_COLORS: [Color32; 8] = [
    Color32::from_rgb(90, 130, 255),
    Color32::from_rgb(70, 200, 235),
    Color32::from_rgb(90, 215, 150),
    Color32::from_rgb(185, 225, 80),
    Color32::from_rgb(250, 215, 60),
    Color32::from_rgb(255, 160, 50),
    Color32::from_rgb(245, 95, 80),
    Color32::from_rgb(230, 120, 230),
];
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

    fn export(&self, source: &ExportSource) -> Option<ViewExport> {
        let runs: Vec<_> = (source.model.runs.iter())
            .filter(|run| !run.cells.is_empty())
            .map(|run| (run.info, run.cells.values().map(|c| &c.report).collect()))
            .collect();
        let figure = crate::figures::curves_figure(source.provenance, &runs);
        (!figure.is_empty()).then_some(ViewExport::Curves(figure))
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
        let levels_run = levels_run(model, *context.focus_method);
        // A summary row under the plots: the numbers, legible without hovering.
        let summary_px = 48.0;
        let headings_px = if levels_run.is_some() {
            LEVELS_HEADING_PX
        } else {
            0.0
        };
        let plots_height = (ui.available_height() - summary_px - headings_px).max(120.0);
        let loss_weight = if trained { LOSS_WEIGHT } else { 0.0 };
        let levels_weight = if levels_run.is_some() {
            LEVELS_WEIGHT
        } else {
            0.0
        };
        let gaps = 6.0 * (trained as u8 + levels_run.is_some() as u8) as f32;
        let unit = (plots_height - gaps) / (1.0 + loss_weight + levels_weight);
        let psnr_height = unit.max(100.0);
        let loss_height = (unit * loss_weight).max(100.0);
        let levels_height = (unit * levels_weight).max(100.0);
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
                    // A run on a folder is not scored against the image: say what it is.
                    let name = match run.trains_on {
                        Some(_) => {
                            format!("{} (folder: mini-batch, teacher-forced)", run.info.title)
                        }
                        None => run.info.title.to_owned(),
                    };
                    plot.line(
                        Line::new(name.clone(), PlotPoints::from(points.clone()))
                            .color(color)
                            .width(2.0),
                    );
                    plot.points(
                        Points::new(name, PlotPoints::from(points))
                            .color(color)
                            .shape(MarkerShape::Circle)
                            .radius(3.0),
                    );
                }
            });
        if let Some(run) = levels_run {
            ui.add_space(6.0);
            self.levels_ui(ui, run, levels_height, steps_axis);
        }
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

impl Curves {
    /// The per-level plot of a multi-resolution run, its heading with the toggles, and the
    /// latest numbers per level beside it.
    fn levels_ui(&mut self, ui: &mut egui::Ui, run: &MethodRun, height: f32, steps_axis: egui::Id) {
        let series = level_series(run);
        ui.horizontal(|ui| {
            let on = if run.trains_on.is_some() {
                ", held-out images"
            } else {
                ""
            };
            ui.label(
                RichText::new(format!("{} per level{on}", run.info.title))
                    .strong()
                    .color(palette::TEXT_STRONG),
            );
            ui.label(
                RichText::new("solid: teacher-forced (from the true lower level)")
                    .color(palette::TEXT_DIM),
            );
            ui.checkbox(&mut self.show_rollouts, "dashed: rollout")
                .on_hover_text("grown level by level from the true coarsest level");
            ui.checkbox(
                &mut self.show_references,
                "dotted: bicubic, loosely dotted: nearest",
            )
            .on_hover_text("upsampling of the true lower level: what a prediction must beat");
        });
        let plot_width = (ui.available_width() - LEVEL_TABLE_PX - 8.0).max(200.0);
        let (show_rollouts, show_references) = (self.show_rollouts, self.show_references);
        ui.horizontal_top(|ui| {
            step_plot("level-curves", height, steps_axis, "PSNR per level (dB)")
                .width(plot_width)
                .legend(
                    // Coarse to fine, as drawn; top left, where rising curves leave room.
                    Legend::default()
                        .position(egui_plot::Corner::LeftTop)
                        .follow_insertion_order(true),
                )
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
                    for (index, level) in series.iter().enumerate() {
                        // One name and colour per level: its legend entry shows and hides all
                        // its lines.
                        let name = side_text(level.size);
                        let color = level_color(index, series.len());
                        plot.line(
                            Line::new(name.clone(), PlotPoints::from(level.teacher_forced.clone()))
                                .color(color)
                                .width(2.0),
                        );
                        if show_rollouts {
                            plot.line(
                                Line::new(name.clone(), PlotPoints::from(level.rollout.clone()))
                                    .color(color)
                                    .width(1.5)
                                    .style(LineStyle::dashed_dense()),
                            );
                        }
                        if show_references {
                            for (db, style) in [
                                (level.bicubic_db, LineStyle::dotted_dense()),
                                (level.nearest_db, LineStyle::dotted_loose()),
                            ] {
                                if db.is_finite() {
                                    plot.hline(
                                        HLine::new(name.clone(), db)
                                            .color(color)
                                            .style(style)
                                            .width(1.0),
                                    );
                                }
                            }
                        }
                    }
                });
            level_table_ui(ui, run, &series);
        });
    }
}

/// The latest step's PSNRs per level, finest first, as a table.
fn level_table_ui(ui: &mut egui::Ui, run: &MethodRun, series: &[LevelSeries]) {
    let step = run.steps_done();
    ui.vertical(|ui| {
        ui.set_width(LEVEL_TABLE_PX);
        ui.label(RichText::new(format!("dB at step {step}")).color(palette::TEXT_DIM));
        egui::Grid::new("level-table")
            .striped(true)
            .spacing([10.0, 3.0])
            .show(ui, |ui| {
                for heading in ["level", "teacher-forced", "rollout", "bicubic", "nearest"] {
                    ui.label(RichText::new(heading).color(palette::TEXT_DIM));
                }
                ui.end_row();
                for (index, level) in series.iter().enumerate().rev() {
                    ui.horizontal(|ui| {
                        swatch_ui(ui, level_color(index, series.len()));
                        ui.label(RichText::new(side_text(level.size)).color(palette::TEXT_STRONG));
                    });
                    let latest = |points: &[[f64; 2]]| points.last().map_or(f64::NAN, |p| p[1]);
                    for db in [
                        latest(&level.teacher_forced),
                        latest(&level.rollout),
                        level.bicubic_db,
                        level.nearest_db,
                    ] {
                        ui.label(
                            RichText::new(number_text(db))
                                .monospace()
                                .color(palette::TEXT_STRONG),
                        );
                    }
                    ui.end_row();
                }
            });
    });
}

/// "24.31", or "–" for a value that is not a number.
fn number_text(db: f64) -> String {
    if db.is_finite() {
        format!("{db:.2}")
    } else {
        "–".into()
    }
}

/// "64×64".
fn side_text(side: usize) -> String {
    format!("{side}×{side}")
}

/// The colour of level `index` of `count`, coarse to fine.
pub fn level_color(index: usize, count: usize) -> Color32 {
    let last = LEVEL_COLORS.len() - 1;
    let position = if count <= 1 {
        last
    } else {
        (index * last + (count - 1) / 2) / (count - 1)
    };
    LEVEL_COLORS[position.min(last)]
}

/// The run whose per-level curves are drawn: the focused method's when its reports carry
/// levels, otherwise the first run whose reports do.
fn levels_run<'a>(model: &'a Model, focus: Option<&str>) -> Option<&'a MethodRun> {
    // Any step: a folder-trained run scores its held-out images every 100th step only.
    let has_levels = |run: &MethodRun| {
        run.cells
            .values()
            .rev()
            .any(|cell| !cell.report.levels.is_empty())
    };
    (focus
        .and_then(|name| model.run(name))
        .filter(|run| has_levels(run)))
    .or_else(|| model.runs.iter().find(|run| has_levels(run)))
}

/// One level's curves over a run's steps.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelSeries {
    /// Pixels a side.
    pub size: usize,
    /// (step, dB) of every step that reported this level with a finite value.
    pub teacher_forced: Vec<[f64; 2]>,
    pub rollout: Vec<[f64; 2]>,
    /// The latest report's upsampling references (constant for a run).
    pub nearest_db: f64,
    pub bicubic_db: f64,
}

/// Every level the run's reports carry, coarse to fine.
pub fn level_series(run: &MethodRun) -> Vec<LevelSeries> {
    let mut by_size: std::collections::BTreeMap<usize, LevelSeries> = Default::default();
    for cell in run.cells.values() {
        let step = cell.report.step as f64;
        for level in &cell.report.levels {
            let series = by_size.entry(level.size).or_insert_with(|| LevelSeries {
                size: level.size,
                teacher_forced: Vec::new(),
                rollout: Vec::new(),
                nearest_db: f64::NAN,
                bicubic_db: f64::NAN,
            });
            if level.teacher_forced_db.is_finite() {
                series.teacher_forced.push([step, level.teacher_forced_db]);
            }
            if level.rollout_db.is_finite() {
                series.rollout.push([step, level.rollout_db]);
            }
            series.nearest_db = level.nearest_db;
            series.bicubic_db = level.bicubic_db;
        }
    }
    by_size.into_values().collect()
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
    use crate::ui::fixture::{
        LEVELS_METHOD, levels_model, trained_model, view_harness, view_harness_with,
    };

    #[test]
    fn curves_summarise_every_method() {
        let mut h = view_harness(Box::new(Curves::default()), 4);
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
        let mut h = view_harness_with(Box::new(Curves::default()), Box::new(trained_model));
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

    #[test]
    fn a_multi_resolution_method_gets_per_level_curves_and_a_table() {
        let mut h = view_harness_with(Box::new(Curves::default()), Box::new(levels_model));
        h.run();
        assert!(h.query_by_label_contains(" per level").is_some());
        // The latest step's numbers for 16×16: teacher-forced 20 + 12/4 + 2, rollout 2 dB under,
        // bicubic 17 + 1, nearest 15.
        for side in ["16×16", "8×8"] {
            assert!(h.query_all_by_label(side).next().is_some(), "{side}");
        }
        for value in ["25.00", "23.00", "18.00", "15.00"] {
            assert!(h.query_all_by_label(value).next().is_some(), "{value}");
        }
        // Its loss is in the summary (and so in the loss plot).
        let title = crate::methods::find(LEVELS_METHOD).unwrap().title;
        let label = format!("{title}: best");
        let summary = h.get_by_label_contains(&label);
        assert!(format!("{summary:?}").contains(" · loss "), "{summary:?}");
        let model = h.state().model.as_ref().unwrap();
        let series = level_series(model.run(LEVELS_METHOD).unwrap());
        let sizes: Vec<usize> = series.iter().map(|s| s.size).collect();
        assert_eq!(sizes, [8, 16]);
        assert_eq!(series[1].teacher_forced.len(), 12, "one point per step");
        assert_eq!(series[1].rollout[11], [12.0, 23.0]);
        assert_eq!((series[1].nearest_db, series[1].bicubic_db), (15.0, 18.0));
        // A method without levels has no such series.
        assert!(level_series(model.run("multiscale").unwrap()).is_empty());
    }

    #[test]
    fn level_colours_run_coarse_to_fine_whatever_the_count() {
        assert_eq!(level_color(0, 1), LEVEL_COLORS[7]);
        assert_eq!(level_color(0, 5), LEVEL_COLORS[0]);
        assert_eq!(level_color(4, 5), LEVEL_COLORS[7]);
        assert_eq!(
            level_color(20, 12),
            LEVEL_COLORS[7],
            "more levels than colours"
        );
    }
}
