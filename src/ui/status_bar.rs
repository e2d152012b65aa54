//! The status bar: backend and adapter, image and working size, each method's step and PSNR,
//! and the UI's own frame time.

use egui::RichText;

use crate::app::state::Model;

use super::{method_color, palette, psnr_text, swatch_ui};

/// `ui_ms` is the UI's own time in the latest frame; `frame_cpu_ms` eframe's CPU time of the
/// previous frame, painting included (absent headless).
pub fn status_bar_ui(
    ui: &mut egui::Ui,
    model: &Model,
    ui_ms: Option<f32>,
    frame_cpu_ms: Option<f32>,
) {
    let dim = |text: String| RichText::new(text).color(palette::TEXT_DIM).monospace();
    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
        // Right end first, so the frame time is never pushed out by long method lists.
        let p95 = model.frame_time_quantile_ms(0.95);
        let mut text = match (ui_ms, p95) {
            (Some(now), Some(p95)) => format!("UI {now:4.1} ms (p95 {p95:4.1})"),
            _ => "UI –".into(),
        };
        if let Some(cpu) = frame_cpu_ms {
            text.push_str(&format!(" · frame {cpu:4.1} ms"));
        }
        let color = if p95.is_some_and(|p| p > 16.0) {
            palette::BAD
        } else {
            palette::TEXT_DIM
        };
        ui.label(RichText::new(text).monospace().color(color))
            .on_hover_text(
                "UI: time the UI thread spends building each frame (p95 of the last 240); the \
             compute runs on its own thread. frame: eframe's CPU time per frame, painting \
             included (large under a software renderer).",
            );
        ui.separator();
        ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
            // What does not fit is cut off rather than drawn over the frame time.
            ui.set_clip_rect(ui.max_rect().intersect(ui.clip_rect()));
            match &model.backend {
                Some((kind, adapter)) => {
                    // The window renders on the compute's device: frames never leave it.
                    let shared = model.native.is_some() && *kind == crate::compute::BackendKind::Gpu;
                    let sharing = if shared { " · frames stay on the GPU" } else { "" };
                    ui.label(dim(format!("{kind}: {adapter}{sharing}")))
                        .on_hover_text(if shared {
                            "The window renders on the compute's GPU device: images between kept steps go to the screen by a GPU copy, with no download"
                        } else {
                            "Images are downloaded from the compute backend to be shown"
                        })
                }
                None => ui.label(dim("starting backend…".into())),
            };
            ui.separator();
            if let Some(target) = &model.target {
                ui.label(dim(format!("{} @ {}²", target.name, target.size)));
                ui.separator();
            }
            for run in &model.runs {
                swatch_ui(ui, method_color(run.info.name));
                let psnr = match run.status {
                    crate::app::state::RunStatus::Diverged { .. } => "diverged".to_owned(),
                    crate::app::state::RunStatus::Failed(_) => "failed".to_owned(),
                    _ => psnr_text(run.latest_psnr_db()),
                };
                ui.label(
                    RichText::new(format!("{} {} {psnr}", run.info.name, run.steps_done()))
                        .monospace()
                        .color(palette::TEXT_STRONG),
                )
                .on_hover_text(format!(
                    "{}: step {}, PSNR {psnr}",
                    run.info.title,
                    run.steps_done()
                ));
            }
        });
    });
}
