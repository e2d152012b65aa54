//! Scales: coarse to fine, for two kinds of method.
//!
//! A method whose steps are scales (the multiscale reservoir, [`MethodInfo::steps_are_scales`]):
//! top row, the estimate after each scale; bottom row, the detail that scale added (its change
//! over the previous estimate, blue darker, orange brighter).
//!
//! A multi-resolution method (the wavelet operator, whose reports carry levels): the rollout
//! through every level of its latest step, 4×4 base to full size, each magnified to one display
//! size with its pixels visible, one row per rollout; and for the level picked (click it, or the
//! level box), nearest and bicubic upsampling of the true lower level, the teacher-forced
//! prediction and the truth, then one Haar level of the truth and of the prediction. The view
//! asks the worker for the levels ([`ViewContext::levels_for`]) only while it shows them.
//!
//! It prefers a multi-resolution method, then a scales method, until the user picks one; it
//! shows any method's steps as scales.
//!
//! [`MethodInfo::steps_are_scales`]: crate::methods::MethodInfo::steps_are_scales

use std::collections::HashMap;
use std::sync::Arc;

use egui::{Align, Color32, ColorImage, Layout, RichText, TextureHandle, TextureOptions, vec2};

use crate::app::state::{BandCells, LevelCell, LevelView, LevelsView, MethodRun};
use crate::figures::{self, LevelPictures};
use crate::imaging::diverging_color;
use crate::sheet::{Sheet, SheetCell};

use super::{
    CAPTION_PX, Caption, ExportSource, View, ViewContext, ViewExport, empty_hint_ui, image_cell_ui,
    method_picker_ui, palette, psnr_text,
};

/// Detail maps are amplified so that a change of a quarter of the range saturates.
const DETAIL_GAIN: f32 = 4.0;
const GAP_PX: f32 = 6.0;
/// The rollout strip takes at most this share of the view's height; the picked level's detail
/// the rest.
const STRIP_SHARE: f32 = 0.42;
/// Strip cells and detail pictures are never smaller than this (their captions need it);
/// with many rows (a folder run's samples) the view scrolls instead.
const MIN_CELL_PX: f32 = 104.0;
/// Height of a heading line above a strip row or the detail panel.
const HEADING_PX: f32 = 22.0;
/// Width of the band rows' labels.
const ROW_LABEL_PX: f32 = 120.0;
/// Space between the comparisons and the bands.
const BLOCK_GAP_PX: f32 = 18.0;
/// Haar band captions: LL is shown halved (the 2×2 mean); LH differs along x, HL along y.
const BAND_TITLES: [&str; 4] = ["LL ½", "LH (x)", "HL (y)", "HH"];

#[derive(Default)]
pub struct Scales {
    focus: Option<&'static str>,
    /// Once the user picks a method, the view stops choosing for them.
    chosen_by_user: bool,
    /// Detail maps by (method, run, step).
    details: HashMap<(&'static str, u64, usize), TextureHandle>,
    /// The level whose detail is shown, by side; the finest when unset or not there.
    picked_side: Option<usize>,
}

fn is_scale_method(run: &MethodRun) -> bool {
    run.info.steps_are_scales && !run.cells.is_empty()
}

/// Whether the run is of a multi-resolution method: its registry entry says so, its reports
/// carry levels or its levels have arrived.
fn has_levels(run: &MethodRun) -> bool {
    run.info.has_levels
        || run.levels.is_some()
        || run
            .cells
            .values()
            .next_back()
            .is_some_and(|cell| !cell.report.levels.is_empty())
}

/// "64×64".
fn side_text(side: usize) -> String {
    format!("{side}×{side}")
}

impl View for Scales {
    fn id(&self) -> &'static str {
        "scales"
    }
    fn title(&self) -> &'static str {
        "Scales"
    }
    fn hint(&self) -> &'static str {
        "Coarse to fine: the estimate after each scale and the detail each scale added; for a \
         multi-resolution method, its rollout through the levels and a level's Haar bands."
    }

    fn shows_one_method(&self) -> bool {
        true
    }

    fn export(&self, source: &ExportSource) -> Option<ViewExport> {
        self.sheet(source)
    }

    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext) {
        let model = context.model;
        if !self.chosen_by_user {
            // Prefer a multi-resolution method, then a coarse-to-fine one as soon as it has
            // reported its first scale.
            let preferred = (model.runs.iter().find(|r| has_levels(r)))
                .or_else(|| model.runs.iter().find(|r| is_scale_method(r)));
            if let Some(run) = preferred {
                self.focus = Some(run.info.name);
            }
        }
        ui.horizontal(|ui| {
            let before = self.focus;
            method_picker_ui(ui, "scales-method", model, &mut self.focus, |_| true);
            if before.is_some() && self.focus != before {
                self.chosen_by_user = true;
            }
            let hint = if self
                .focus
                .and_then(|m| model.run(m))
                .is_some_and(has_levels)
            {
                "rows: rollouts through the levels · click a level for its detail"
            } else {
                "top: estimate after each scale · bottom: the change it made"
            };
            ui.label(RichText::new(hint).color(palette::TEXT_DIM));
        });
        let Some(run) = self.focus.and_then(|m| model.run(m)) else {
            empty_hint_ui(
                ui,
                "Select a coarse-to-fine method (e.g. Multi-scale reservoirs) on the left.",
            );
            return;
        };
        if run.cells.is_empty() {
            let what = if has_levels(run) { "step" } else { "scale" };
            empty_hint_ui(ui, &format!("Waiting for the first {what}…"));
            return;
        }
        if has_levels(run) {
            // Asked for every frame the levels are on screen; they stop when it is not.
            context.levels_for = Some(run.info.name);
            if let Some(about) = &run.trains_on {
                ui.label(
                    RichText::new(format!(
                        "trained on {about}: the first held-out image grown from its true 4×4, \
                         then new images grown from noise canvases"
                    ))
                    .color(palette::TEXT_DIM),
                );
            }
            match run.levels.as_ref().filter(|view| !view.levels.is_empty()) {
                Some(view) => self.levels_ui(ui, view),
                None => empty_hint_ui(ui, "Waiting for the levels of the latest step…"),
            }
            return;
        }
        self.scales_ui(ui, run);
    }
}

impl Scales {
    /// The levels of a multi-resolution method's latest step, or a scales method's estimates
    /// over the detail each scale added.
    fn sheet(&self, source: &ExportSource) -> Option<ViewExport> {
        let run = source.model.run(self.focus.or(source.focus_method)?)?;
        if let Some(view) = run.levels.as_ref().filter(|view| !view.levels.is_empty()) {
            let levels: Vec<LevelPictures> = (view.levels.iter())
                .map(|level| {
                    let (rollouts, samples): (Vec<&LevelCell>, Vec<&LevelCell>) = level
                        .rollouts
                        .iter()
                        .partition(|cell| cell.psnr_db.is_some());
                    LevelPictures {
                        side: level.side,
                        rollouts: (rollouts.into_iter())
                            .map(|c| (c.caption.clone(), Arc::clone(&c.image), c.psnr_db))
                            .collect(),
                        samples: (samples.into_iter())
                            .map(|c| (c.caption.clone(), Arc::clone(&c.image)))
                            .collect(),
                        teacher_forced: (level.teacher_forced.as_ref())
                            .map(|c| (Arc::clone(&c.image), c.psnr_db)),
                        truth: Arc::clone(&level.truth_image),
                    }
                })
                .collect();
            let sheet = figures::scales_sheet(run.info, source.provenance, view.step, &levels);
            return Some(ViewExport::Sheet(sheet));
        }
        let mut estimates = Vec::new();
        let mut details = Vec::new();
        let mut previous: Option<(&ColorImage, f64)> = None;
        for cell in run.cells.values() {
            let Some(image) = &cell.thumbnail_image else {
                continue;
            };
            estimates.push(figures::step_cell(&cell.report, Arc::clone(image)));
            let gain = previous.map_or(String::new(), |(_, psnr)| {
                format!("{:+.2} dB", cell.report.psnr_db - psnr)
            });
            let detail = detail_map(image, previous.map(|(image, _)| image));
            details.push(SheetCell::new(Arc::new(detail), "detail", gain));
            previous = Some((image, cell.report.psnr_db));
        }
        if estimates.is_empty() {
            return None;
        }
        let mut sheet = Sheet::new(
            format!("{} — scale by scale", run.info.title),
            figures::subtitle(source.provenance),
        );
        sheet.columns = estimates.len();
        let sheet = sheet
            .row(Some("estimate after each scale".into()), estimates)
            .row(
                Some("detail each scale added (blue darker, orange brighter)".into()),
                details,
            );
        Some(ViewExport::Sheet(sheet))
    }

    /// The steps of `run` as scales: estimates over the detail each added.
    fn scales_ui(&mut self, ui: &mut egui::Ui, run: &MethodRun) {
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

    /// The rollout strip of a multi-resolution method's levels and the picked level's detail.
    fn levels_ui(&mut self, ui: &mut egui::Ui, view: &LevelsView) {
        if view.levels.is_empty() {
            return;
        }
        let picked = view
            .levels
            .iter()
            .position(|level| Some(level.side) == self.picked_side)
            .unwrap_or(view.levels.len() - 1);
        let picked_side = view.levels[picked].side;
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(format!("rollouts through the levels at step {}", view.step))
                    .strong()
                    .color(palette::TEXT_STRONG),
            );
            ui.add_space(12.0);
            let label = ui.label(RichText::new("level").color(palette::TEXT_DIM));
            egui::ComboBox::from_id_salt("scales-level")
                .selected_text(side_text(picked_side))
                .show_ui(ui, |ui| {
                    for level in &view.levels {
                        let mut side = picked_side;
                        if ui
                            .selectable_value(&mut side, level.side, side_text(level.side))
                            .clicked()
                        {
                            self.picked_side = Some(side);
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        });
        let rows = view
            .levels
            .iter()
            .map(|l| l.rollouts.len())
            .max()
            .unwrap_or(0);
        let columns = view.levels.len() as f32;
        let available = ui.available_size();
        // Widths bind; heights give way to the scroll area below a readable size.
        let fit_height = |side: f32, width: f32| side.floor().max(MIN_CELL_PX.min(width)).max(24.0);
        let strip_width = (available.x - GAP_PX * (columns - 1.0)) / columns;
        let strip_side = fit_height(
            strip_width.min(
                available.y * STRIP_SHARE / rows.max(1) as f32 - HEADING_PX - CAPTION_PX - GAP_PX,
            ),
            strip_width,
        );
        let strip_px = rows as f32 * (strip_side + HEADING_PX + CAPTION_PX + GAP_PX);
        // Two rows of six: the comparisons two by two, then the truth's bands over the
        // prediction's, with their row labels.
        let detail_width = (available.x - ROW_LABEL_PX - BLOCK_GAP_PX - 6.0 * GAP_PX) / 6.0;
        let detail_side = fit_height(
            detail_width
                .min((available.y - strip_px - 2.0 * HEADING_PX) / 2.0 - CAPTION_PX - GAP_PX),
            detail_width,
        );
        egui::ScrollArea::vertical()
            .id_salt("scales-levels")
            .auto_shrink(false)
            .show(ui, |ui| {
                ui.spacing_mut().item_spacing = vec2(GAP_PX, GAP_PX);
                if rows == 0 {
                    ui.label(RichText::new("no rollouts at this step").color(palette::TEXT_DIM));
                }
                for row in 0..rows {
                    // Named as the finest level names it: the coarsest may have fewer.
                    let caption = (view.levels.iter().rev())
                        .find_map(|level| level.rollouts.get(row))
                        .map_or(String::new(), |cell| cell.caption.clone());
                    ui.label(RichText::new(caption).color(palette::TEXT_DIM));
                    ui.horizontal(|ui| {
                        for (index, level) in view.levels.iter().enumerate() {
                            // Every rollout grows from the coarsest level, which a method may
                            // send once for all of them.
                            let cell = (level.rollouts.get(row))
                                .or_else(|| level.rollouts.first().filter(|_| index == 0));
                            let caption = Caption {
                                title: side_text(level.side),
                                // A sample from a noise canvas has no truth to score.
                                value: cell
                                    .and_then(|c| c.psnr_db)
                                    .map_or_else(String::new, |db| psnr_text(Some(db))),
                                value_color: palette::TEXT_STRONG,
                                edge: (level.side == picked_side).then_some(palette::ACCENT),
                            };
                            let texture = cell.map(|c| c.texture.id());
                            if image_cell_ui(ui, texture, strip_side, &caption).clicked() {
                                self.picked_side = Some(level.side);
                            }
                        }
                    });
                }
                ui.add_space(GAP_PX);
                let lower = picked.checked_sub(1).map(|index| view.levels[index].side);
                level_detail_ui(ui, &view.levels[picked], lower, detail_side);
            });
    }
}

/// The picked level: nearest and bicubic upsampling of the true lower level (`lower` a side),
/// the teacher-forced prediction from it and the truth, two by two; beside them the Haar bands
/// of the truth over those of the prediction.
fn level_detail_ui(ui: &mut egui::Ui, level: &LevelView, lower: Option<usize>, side: f32) {
    let heading = match (lower, &level.teacher_forced) {
        (Some(lower), Some(_)) => format!(
            "level {} · nearest and bicubic upsampling of the true {}, the prediction from it \
             (teacher-forced), the truth",
            side_text(level.side),
            side_text(lower)
        ),
        _ => format!(
            "level {} · the coarsest: nothing predicts it, the rollouts start from it",
            side_text(level.side)
        ),
    };
    ui.label(RichText::new(heading).strong().color(palette::TEXT_STRONG));
    let picture = |title: &str, cell: &LevelCell| {
        (
            Some(cell.texture.id()),
            Caption {
                title: title.to_owned(),
                value: psnr_text(cell.psnr_db),
                value_color: palette::TEXT_STRONG,
                edge: None,
            },
        )
    };
    let mut comparisons: Vec<(Option<egui::TextureId>, Caption)> = [
        ("nearest", &level.nearest),
        ("bicubic", &level.bicubic),
        ("predicted", &level.teacher_forced),
    ]
    .into_iter()
    .filter_map(|(title, cell)| cell.as_ref().map(|cell| picture(title, cell)))
    .collect();
    comparisons.push((
        Some(level.truth.id()),
        Caption {
            title: "truth".into(),
            value: "ground truth".into(),
            value_color: palette::GROUND_TRUTH,
            edge: Some(palette::GROUND_TRUTH),
        },
    ));
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            for pair in comparisons.chunks(2) {
                ui.horizontal(|ui| {
                    for (texture, caption) in pair {
                        image_cell_ui(ui, *texture, side, caption);
                    }
                });
            }
        });
        ui.add_space(BLOCK_GAP_PX - GAP_PX);
        ui.vertical(|ui| {
            if let Some(bands) = &level.truth_bands {
                band_row_ui(
                    ui,
                    "Haar bands of the truth",
                    side,
                    band_cells(bands, false),
                );
            }
            if let Some(bands) = &level.teacher_forced_bands {
                band_row_ui(
                    ui,
                    "of the prediction (err: RMS off the truth's band)",
                    side,
                    band_cells(bands, true),
                );
            }
        });
    });
}

/// LL, LH, HL, HH with their RMS, or with their RMS difference from the truth's bands.
fn band_cells(bands: &BandCells, as_error: bool) -> Vec<(Option<egui::TextureId>, Caption)> {
    (0..4)
        .map(|band| {
            let value = match (as_error, bands.error_rms) {
                (true, Some(error)) => format!("err {:.4}", error[band]),
                _ => format!("rms {:.3}", bands.rms[band]),
            };
            (
                Some(bands.textures[band].id()),
                Caption {
                    title: BAND_TITLES[band].into(),
                    value,
                    value_color: palette::TEXT_STRONG,
                    edge: None,
                },
            )
        })
        .collect()
}

/// One row of bands: a label, then its pictures.
fn band_row_ui(
    ui: &mut egui::Ui,
    label: &str,
    side: f32,
    cells: Vec<(Option<egui::TextureId>, Caption)>,
) {
    ui.horizontal(|ui| {
        ui.allocate_ui_with_layout(
            vec2(ROW_LABEL_PX, side + CAPTION_PX),
            Layout::top_down(Align::Min),
            |ui| {
                ui.set_width(ROW_LABEL_PX);
                ui.add(egui::Label::new(RichText::new(label).color(palette::TEXT_DIM)).wrap());
            },
        );
        for (texture, caption) in cells {
            image_cell_ui(ui, texture, side, &caption);
        }
    });
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
    use egui_kittest::kittest::{NodeT, Queryable};

    use super::*;
    use crate::ui::fixture::{LEVELS_METHOD, levels_model, view_harness, view_harness_with};

    /// Labels of the strip cells of level `side`: "16×16 31.20 dB".
    fn strip_cells(
        h: &egui_kittest::Harness<'_, crate::ui::fixture::Fixture>,
        side: &str,
    ) -> usize {
        h.query_all_by_label_contains(side)
            .filter(|node| {
                let label = format!("{node:?}");
                label.contains(&format!("{side} ")) && label.contains(" dB")
            })
            .count()
    }

    #[test]
    fn scales_default_to_the_scale_method_and_show_each_scale() {
        let mut h = view_harness(Box::new(Scales::default()), 3);
        h.run();
        assert!(h.query_by_label_contains("scale 3").is_some());
        assert_eq!(h.query_all_by_label_contains("detail").count(), 3);
        assert_eq!(h.query_all_by_label_contains("+1.00 dB").count(), 2);
    }

    /// Picture cells whose caption starts with `title` and has a PSNR.
    fn cells_titled(
        h: &egui_kittest::Harness<'_, crate::ui::fixture::Fixture>,
        title: &str,
    ) -> usize {
        h.query_all_by_label_contains(title)
            .filter(|node| {
                node.accesskit_node()
                    .label()
                    .is_some_and(|label| label.starts_with(title) && label.ends_with(" dB"))
            })
            .count()
    }

    #[test]
    fn a_multi_resolution_method_is_preferred_and_shows_its_levels_and_bands() {
        let mut h = view_harness_with(Box::new(Scales::default()), Box::new(levels_model));
        h.run();
        assert_eq!(
            h.state().levels_for,
            Some(LEVELS_METHOD),
            "asks for the levels it shows"
        );
        assert!(h.query_by_label_contains("at step 12").is_some());
        // Two rollouts through every level, 4×4 base to 16×16.
        for side in ["4×4", "8×8", "16×16"] {
            assert_eq!(strip_cells(&h, side), 2, "{side}");
        }
        assert!(h.query_by_label_contains("noise draw 2").is_some());
        // The finest level is picked first: its comparisons and both sets of bands.
        assert!(
            h.query_by_label_contains(
                "level 16×16 · nearest and bicubic upsampling of the true 8×8"
            )
            .is_some()
        );
        for title in ["nearest ", "bicubic ", "predicted "] {
            assert_eq!(cells_titled(&h, title), 1, "{title}");
        }
        assert!(h.query_by_label_contains("truth ground truth").is_some());
        for band in BAND_TITLES {
            assert_eq!(h.query_all_by_label_contains(band).count(), 2, "{band}");
        }
        assert!(
            h.query_all_by_label_contains("err 0.0").count() == 4,
            "the prediction's band error"
        );
        // Clicking a level picks it.
        h.query_all_by_label_contains("8×8 ")
            .find(|node| format!("{node:?}").contains(" dB"))
            .unwrap()
            .click();
        h.run();
        assert!(
            h.query_by_label_contains("level 8×8 · nearest and bicubic upsampling of the true 4×4")
                .is_some()
        );
        // The coarsest level: nothing predicts it, so only the truth and its bands.
        h.query_all_by_label_contains("4×4 ")
            .find(|node| format!("{node:?}").contains(" dB"))
            .unwrap()
            .click();
        h.run();
        assert!(h.query_by_label_contains("the coarsest").is_some());
        assert_eq!(cells_titled(&h, "predicted "), 0);
        assert_eq!(h.query_all_by_label_contains("LH (x)").count(), 1);
    }

    #[test]
    fn a_multi_resolution_method_waits_for_its_levels_and_a_scales_method_keeps_its_strip() {
        let mut h = view_harness_with(Box::new(Scales::default()), Box::new(levels_model));
        h.run();
        let model = h.state_mut().model.as_mut().unwrap();
        let run = model
            .runs
            .iter_mut()
            .find(|r| r.info.name == LEVELS_METHOD)
            .unwrap();
        run.levels = None;
        h.run();
        assert!(
            h.query_by_label_contains("Waiting for the levels")
                .is_some()
        );
        assert_eq!(h.state().levels_for, Some(LEVELS_METHOD));
        // The multiscale method, picked: its scales as before, and no levels asked for.
        h.state_mut().view = Box::new(Scales {
            focus: Some("multiscale"),
            chosen_by_user: true,
            ..Scales::default()
        });
        h.run();
        assert!(h.query_by_label_contains("scale 1").is_some());
        assert_eq!(h.query_all_by_label_contains("detail").count(), 3);
        assert_eq!(h.state().levels_for, None);
    }
}
