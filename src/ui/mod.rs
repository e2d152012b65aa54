//! The window's views: one file per view, each a type implementing [`View`], all listed in
//! [`registry`]. Adding a view is one new file plus one line there. The left panel
//! ([`controls`]), the status bar ([`status_bar`]) and the banners ([`banner`]) are panels,
//! not views.
//!
//! Views read the UI's model ([`crate::app::state::Model`]) and never talk to the worker: what
//! they want from it (feature maps, intermediate images) they list in [`ViewContext`], and the
//! app passes it on.

pub mod banner;
pub mod compare;
pub mod controls;
pub mod curves;
pub mod inspect;
pub mod scales;
pub mod sparse;
pub mod status_bar;
pub mod trajectory_grid;
pub mod zoom;

use egui::{
    Align2, Color32, FontId, Rect, Response, Sense, Stroke, StrokeKind, TextureId, Vec2, pos2, vec2,
};

use crate::app::protocol::{FeatureRequest, InFlight};
use crate::app::state::{MethodRun, Model, RunStatus};
use crate::methods;

/// What a view gets each frame.
pub struct ViewContext<'a> {
    pub model: &'a Model,
    /// The method the single-method views (grid, inspect, scales) show.
    pub focus_method: &'a mut Option<&'static str>,
    /// Show the target instead of the output (the G key).
    pub show_ground_truth: bool,
    /// What the view asks of the worker this frame; the app sends it on.
    pub requests: Vec<ViewRequest>,
    /// Set by a view that shows this method's intermediate images ([`MethodRun::iterates`]),
    /// so the worker reads them back; `None` (the start of every frame) and they stop coming.
    pub iterates_for: Option<&'static str>,
    /// Likewise for a multi-resolution method's levels ([`MethodRun::levels`]), which only the
    /// scales view shows.
    pub levels_for: Option<&'static str>,
    /// Likewise for the zoom view's region of a method's field, which the worker evaluates.
    pub zoom: Option<crate::app::protocol::ZoomRequest>,
    /// Set by a view that computes on the host from the latest images (the inspect view's
    /// error map): the worker then downloads them even where the window could show them from
    /// the compute's device.
    pub host_images: bool,
}

impl<'a> ViewContext<'a> {
    pub fn new(
        model: &'a Model,
        focus_method: &'a mut Option<&'static str>,
        show_ground_truth: bool,
    ) -> Self {
        ViewContext {
            model,
            focus_method,
            show_ground_truth,
            requests: Vec::new(),
            iterates_for: None,
            levels_for: None,
            host_images: false,
            zoom: None,
        }
    }
}

/// Something a view wants computed or read back.
#[derive(Clone, Debug, PartialEq)]
pub enum ViewRequest {
    /// Feature maps of a method at a step (the inspect view).
    Features(FeatureRequest),
}

/// One tab of the central area.
pub trait View {
    /// Stable identifier, persisted as the active tab.
    fn id(&self) -> &'static str;
    /// Tab caption.
    fn title(&self) -> &'static str;
    /// One line for the tab's tooltip.
    fn hint(&self) -> &'static str;
    /// Whether it shows one method at a time (the focus picker's method, which then gets twice
    /// the compute share), rather than all of them.
    fn shows_one_method(&self) -> bool {
        false
    }
    fn ui(&mut self, ui: &mut egui::Ui, context: &mut ViewContext);
    /// What *Export view* saves of it: its pictures composed at their own resolution with
    /// captions, or its curves as a plot; `None` while it has nothing to show.
    fn export(&self, _source: &ExportSource) -> Option<ViewExport> {
        None
    }
}

/// What a view exports from.
pub struct ExportSource<'a> {
    pub model: &'a Model,
    /// The method the single-method views show.
    pub focus_method: Option<&'static str>,
    /// How the window's picture was made, for the figure's subtitle and its file.
    pub provenance: &'a crate::provenance::Provenance,
}

/// A view's export: a sheet of pictures (`<view>-NNN.png`) or the curves (`curves-NNN.png`
/// and the numbers behind them as `curves-NNN.csv`).
pub enum ViewExport {
    Sheet(crate::sheet::Sheet),
    Curves(crate::plot::CurvesFigure),
}

/// Every view, in tab order.
pub fn registry() -> Vec<Box<dyn View>> {
    vec![
        Box::new(trajectory_grid::TrajectoryGrid::default()),
        Box::new(curves::Curves::default()),
        Box::new(compare::Compare),
        Box::new(inspect::Inspect::default()),
        Box::new(scales::Scales::default()),
        Box::new(sparse::Sparse::default()),
        Box::new(zoom::Zoom::default()),
    ]
}

/// The window's palette: dark, with one accent and a colour per method.
pub mod palette {
    use egui::Color32;

    pub const ACCENT: Color32 = Color32::from_rgb(255, 150, 40);
    pub const PANEL: Color32 = Color32::from_rgb(22, 24, 28);
    pub const BACKGROUND: Color32 = Color32::from_rgb(14, 15, 18);
    pub const CELL: Color32 = Color32::from_rgb(30, 33, 38);
    pub const TEXT_DIM: Color32 = Color32::from_rgb(140, 146, 156);
    pub const TEXT_STRONG: Color32 = Color32::from_rgb(236, 238, 242);
    pub const GOOD: Color32 = Color32::from_rgb(120, 210, 140);
    pub const BAD: Color32 = Color32::from_rgb(240, 90, 80);
    pub const GROUND_TRUTH: Color32 = Color32::from_rgb(90, 180, 255);

    const METHODS: [Color32; 10] = [
        Color32::from_rgb(255, 150, 40),
        Color32::from_rgb(90, 180, 255),
        Color32::from_rgb(120, 210, 140),
        Color32::from_rgb(220, 120, 230),
        Color32::from_rgb(240, 220, 90),
        Color32::from_rgb(240, 100, 100),
        Color32::from_rgb(100, 220, 220),
        Color32::from_rgb(200, 200, 200),
        Color32::from_rgb(170, 140, 255),
        Color32::from_rgb(190, 230, 80),
    ];

    /// A stable colour for the method at `index` in the registry.
    pub fn method(index: usize) -> Color32 {
        METHODS[index % METHODS.len()]
    }
}

/// The colour of a method by name (its registry position).
pub fn method_color(name: &str) -> Color32 {
    let index = methods::registry()
        .iter()
        .position(|m| m.name == name)
        .unwrap_or(0);
    palette::method(index)
}

/// "20.31 dB", or "diverged" / "failed" for a run that stopped.
pub fn psnr_text(psnr_db: Option<f64>) -> String {
    match psnr_db {
        Some(v) if v.is_finite() => format!("{v:.2} dB"),
        Some(_) => "diverged".into(),
        None => "–".into(),
    }
}

/// A short status for a run: "step 3/10 · 20.31 dB", "diverged at step 4", …
pub fn run_summary(run: &MethodRun) -> String {
    let total = run
        .total_steps
        .map_or_else(|| "?".into(), |t| t.to_string());
    match &run.status {
        RunStatus::Starting => "starting…".into(),
        RunStatus::Waiting(what) => format!("waiting for {what}"),
        RunStatus::Diverged { step, why } => {
            format!("diverged at step {step} ({why}) — lower the learning rate")
        }
        RunStatus::Failed(error) => format!("failed: {error}"),
        RunStatus::Running | RunStatus::Done => format!(
            "{}/{} · {}",
            run.steps_done(),
            total,
            psnr_text(run.latest_psnr_db())
        ),
    }
}

/// What a run is doing right now: "step 4 · running 4.2 s" for a step in flight for more than
/// a second, otherwise its rate ("12.5 steps/s · ETA 38 s" for a trained method). `None` for a
/// settled run.
pub fn run_activity(run: &MethodRun, in_flight: Option<&InFlight>) -> Option<String> {
    if let Some(step) = in_flight.filter(|f| f.method == run.info.name && f.run_id == run.run_id) {
        let running = step.started.elapsed();
        if running >= std::time::Duration::from_secs(1) {
            let what = if step.step <= 1 && run.steps_done() == 0 {
                "building".to_owned()
            } else {
                format!("step {}", step.step)
            };
            return Some(format!("{what} · running {:.1} s", running.as_secs_f64()));
        }
    }
    if run.is_settled() {
        return None;
    }
    let rate = run.steps_per_second()?;
    let mut text = if rate >= 10.0 {
        format!("{rate:.0} steps/s")
    } else {
        format!("{rate:.2} steps/s")
    };
    if let Some(eta) = run.eta() {
        text.push_str(&format!(" · ETA {}", duration_text(eta)));
    }
    Some(text)
}

/// "38 s", "4 min 05 s", "1 h 02 min".
pub fn duration_text(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
    }
}

/// A combo box choosing one of the running methods; keeps `focus` on a running one.
pub fn method_picker_ui(
    ui: &mut egui::Ui,
    id_salt: &str,
    model: &Model,
    focus: &mut Option<&'static str>,
    accept: impl Fn(&MethodRun) -> bool,
) {
    let candidates: Vec<&MethodRun> = model.runs.iter().filter(|r| accept(r)).collect();
    if focus.is_none_or(|f| !candidates.iter().any(|r| r.info.name == f)) {
        *focus = candidates.first().map(|r| r.info.name);
    }
    let selected_title = focus
        .and_then(|f| methods::find(f).ok())
        .map_or("no method running", |info| info.title);
    let label = ui.label(egui::RichText::new("method").color(palette::TEXT_DIM));
    egui::ComboBox::from_id_salt(id_salt)
        .selected_text(selected_title)
        .width(220.0)
        .show_ui(ui, |ui| {
            for run in candidates {
                ui.selectable_value(focus, Some(run.info.name), run.info.title)
                    .on_hover_text(run.info.summary);
            }
        })
        .response
        .labelled_by(label.id);
}

/// How to tile `count` square cells with a caption strip of `caption_px` under each into
/// `available`: the column count and cell side that make the cells largest.
pub fn tile(count: usize, available: Vec2, gap_px: f32, caption_px: f32) -> (usize, f32) {
    let count = count.max(1);
    let mut best = (1, 0.0f32);
    for columns in 1..=count {
        let rows = count.div_ceil(columns);
        let by_width = (available.x - gap_px * (columns as f32 - 1.0)) / columns as f32;
        let by_height = (available.y - gap_px * (rows as f32 - 1.0)) / rows as f32 - caption_px;
        let side = by_width.min(by_height).floor();
        if side > best.1 {
            best = (columns, side);
        }
    }
    (best.0, best.1.max(16.0))
}

/// What an image cell shows under the picture.
#[derive(Clone)]
pub struct Caption {
    pub title: String,
    pub value: String,
    pub value_color: Color32,
    /// A coloured edge (method colour, ground truth, selection).
    pub edge: Option<Color32>,
}

/// Paints a texture in a square of side `side_px` with a caption strip under it, pixel-exact
/// (the textures are NEAREST). Returns a clickable response labelled with the caption, so
/// tests and screen readers find the cell.
pub fn image_cell_ui(
    ui: &mut egui::Ui,
    texture: Option<TextureId>,
    side_px: f32,
    caption: &Caption,
) -> Response {
    let caption_px = CAPTION_PX;
    let (rect, response) =
        ui.allocate_exact_size(vec2(side_px, side_px + caption_px), Sense::click());
    let label = format!("{} {}", caption.title, caption.value);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    if !ui.is_rect_visible(rect) {
        return response;
    }
    let painter = ui.painter_at(rect.expand(2.0));
    let image_rect = Rect::from_min_size(rect.min, Vec2::splat(side_px));
    match texture {
        Some(id) => {
            painter.image(
                id,
                image_rect,
                Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        None => {
            painter.rect_filled(image_rect, 2.0, palette::CELL);
            painter.text(
                image_rect.center(),
                Align2::CENTER_CENTER,
                "…",
                FontId::proportional(18.0),
                palette::TEXT_DIM,
            );
        }
    }
    let edge = if response.hovered() {
        Some(palette::TEXT_STRONG)
    } else {
        caption.edge
    };
    if let Some(color) = edge {
        painter.rect_stroke(
            image_rect,
            0.0,
            Stroke::new(1.5, color),
            StrokeKind::Outside,
        );
    }
    let text_y = image_rect.bottom() + 3.0;
    let font_size = if side_px < 90.0 { 11.0 } else { 13.0 };
    let value = painter.layout_no_wrap(
        caption.value.clone(),
        FontId::monospace(font_size + 1.0),
        caption.value_color,
    );
    let title = painter.layout_no_wrap(
        caption.title.clone(),
        FontId::proportional(font_size),
        palette::TEXT_DIM,
    );
    // The value (the PSNR) matters more: when both do not fit, the title gives way.
    if title.size().x + value.size().x + 6.0 <= side_px || caption.value.is_empty() {
        painter.galley(
            pos2(image_rect.left() + 1.0, text_y),
            title,
            palette::TEXT_DIM,
        );
    }
    let value_x = image_rect.right() - 1.0 - value.size().x;
    painter.galley(pos2(value_x, text_y), value, caption.value_color);
    response
}

/// Height of the caption strip under an image cell.
pub const CAPTION_PX: f32 = 20.0;

/// A small square of a method's colour, as in a legend.
pub fn swatch_ui(ui: &mut egui::Ui, color: Color32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
    ui.painter().rect_filled(rect, 2.0, color);
}

/// A centred hint for an empty view.
pub fn empty_hint_ui(ui: &mut egui::Ui, text: &str) {
    ui.centered_and_justified(|ui| {
        ui.label(
            egui::RichText::new(text)
                .color(palette::TEXT_DIM)
                .size(15.0),
        );
    });
}

/// |output − target| averaged over channels, as an "inferno"-like heat map scaled to
/// `max_error` (errors above it saturate).
pub fn error_heat_map(
    output: &[f32],
    target: &[f32],
    size: usize,
    max_error: f32,
) -> egui::ColorImage {
    let pixels = output
        .chunks_exact(3)
        .zip(target.chunks_exact(3))
        .map(|(o, t)| {
            let error = ((o[0] - t[0]).abs() + (o[1] - t[1]).abs() + (o[2] - t[2]).abs()) / 3.0;
            let error = if error.is_finite() { error } else { max_error };
            heat_color((error / max_error).clamp(0.0, 1.0))
        })
        .collect();
    egui::ColorImage::new([size, size], pixels)
}

/// Black → purple → orange → pale yellow, for t in [0, 1].
pub fn heat_color(t: f32) -> Color32 {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [0.0, 0.0, 4.0]),
        (0.25, [87.0, 16.0, 110.0]),
        (0.5, [188.0, 55.0, 84.0]),
        (0.75, [249.0, 142.0, 9.0]),
        (1.0, [252.0, 255.0, 164.0]),
    ];
    let t = t.clamp(0.0, 1.0);
    let upper = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let (t0, c0) = STOPS[upper - 1];
    let (t1, c1) = STOPS[upper];
    let f = (t - t0) / (t1 - t0);
    let mix = |i: usize| (c0[i] + (c1[i] - c0[i]) * f) as u8;
    Color32::from_rgb(mix(0), mix(1), mix(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pictures (shapes with a texture other than the font atlas) and lines among `shapes`.
    fn count_content(shapes: &[egui::Shape], pictures: &mut usize, lines: &mut usize) {
        for shape in shapes {
            match shape {
                egui::Shape::Vec(inner) => count_content(inner, pictures, lines),
                egui::Shape::Path(_) | egui::Shape::LineSegment { .. } => *lines += 1,
                _ if shape.texture_id() != TextureId::default() => *pictures += 1,
                _ => {}
            }
        }
    }

    #[test]
    fn every_view_draws_its_content_over_a_populated_model() {
        for view in registry() {
            let id = view.id();
            let mut harness = if ["sparse", "zoom"].contains(&id) {
                fixture::view_harness_with(view, Box::new(fixture::sparse_model))
            } else {
                fixture::view_harness(view, 5)
            };
            harness.run_steps(4);
            let shapes: Vec<egui::Shape> = harness
                .output()
                .shapes
                .iter()
                .map(|clipped| clipped.shape.clone())
                .collect();
            let (mut pictures, mut lines) = (0, 0);
            count_content(&shapes, &mut pictures, &mut lines);
            // Image views show the runs' pictures; the curves view plots a line per run.
            let drawn = if id == "curves" {
                lines >= 3
            } else {
                pictures >= 2
            };
            assert!(drawn, "view {id}: {pictures} pictures, {lines} lines");
        }
    }

    #[test]
    fn tiling_fills_the_space() {
        // Four cells in a wide area go in one row.
        let (columns, side) = tile(4, vec2(800.0, 220.0), 4.0, 20.0);
        assert_eq!(columns, 4);
        assert!((190.0..=200.0).contains(&side), "{side}");
        // In a square area they make a 2×2 block.
        assert_eq!(tile(4, vec2(400.0, 440.0), 0.0, 20.0).0, 2);
    }

    #[test]
    fn every_view_has_a_unique_id() {
        let views = registry();
        let mut ids: Vec<_> = views.iter().map(|v| v.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), views.len());
    }

    #[test]
    fn heat_map_runs_from_dark_to_bright() {
        let dark = heat_color(0.0);
        let bright = heat_color(1.0);
        assert!(dark.r() < 10 && bright.r() > 240);
    }
}

/// A model with made-up frames and a harness that shows one view, for the views' own tests.
#[cfg(test)]
pub(crate) mod fixture {
    use std::sync::Arc;

    use egui_kittest::Harness;

    use super::ViewRequest;
    use super::{View, ViewContext};
    use crate::app::levels::level_frames;
    use crate::app::protocol::{Frame, Iterates, Levels, Message, TargetFrame};
    use crate::app::state::Model;
    use crate::imaging::color_image_from_rgb;
    use crate::methods;
    use crate::methods::{LevelImages, LevelReport, StepReport};

    type MakeModel = Box<dyn Fn(&egui::Context) -> Model>;

    pub struct Fixture {
        pub view: Box<dyn View>,
        make: MakeModel,
        pub model: Option<Model>,
        pub focus: Option<&'static str>,
        pub show_ground_truth: bool,
        /// Everything the view asked of the worker so far.
        pub requests: Vec<ViewRequest>,
        /// What the view asked the worker for in the last frame.
        pub iterates_for: Option<&'static str>,
        pub levels_for: Option<&'static str>,
    }

    const SIZE: usize = 16;

    fn target_pixels() -> Vec<f32> {
        (0..SIZE * SIZE * 3).map(|i| (i % 7) as f32 / 7.0).collect()
    }

    fn model_with_target(ctx: &egui::Context, selected: &[&'static str]) -> Model {
        model_seen_through(ctx, selected, None)
    }

    fn model_seen_through(
        ctx: &egui::Context,
        selected: &[&'static str],
        observation: Option<Arc<crate::sparse::Observation>>,
    ) -> Model {
        let target = target_pixels();
        let mut model = Model::default();
        model.set_selection(selected);
        model.apply_message(
            ctx,
            Message::TargetLoaded(TargetFrame {
                name: "test".into(),
                size: SIZE,
                pixels: Arc::new(target.clone()),
                image: Arc::new(color_image_from_rgb(&target, SIZE)),
                origin: crate::provenance::ImageOrigin::sample(),
                observation,
            }),
        );
        model
    }

    /// The 16² target seen through a random 30% mask (a fifth of it for validation), with
    /// fourier-mlp at step 10 of 100 scored on the sets, and a zoomed region of its field.
    pub fn sparse_model(ctx: &egui::Context) -> Model {
        let spec = crate::sparse::ObservationSpec {
            mask: "random:0.3".into(),
            seed: 0,
            validation_share: 0.2,
            patience: 0,
            refit: false,
        };
        let observation =
            crate::sparse::Observation::new(spec, &target_pixels(), SIZE).expect("a 16² mask");
        let observation = Arc::new(observation);
        let method = "fourier-mlp";
        let mut model = model_seen_through(ctx, &[method], Some(Arc::clone(&observation)));
        model.apply_message(ctx, Message::Started { method, run_id: 1 });
        for step in 1..=10 {
            let (pixels, image) = faded(step as f32 / 10.0);
            let sparse = observation.score(&pixels, &target_pixels());
            model.apply_frame(
                ctx,
                frame(
                    method,
                    100,
                    StepReport {
                        step,
                        label: format!("step {step}"),
                        psnr_db: 10.0 + step as f64,
                        loss: Some(0.1),
                        saturation: None,
                        levels: Vec::new(),
                        sparse: Some(sparse),
                    },
                    true,
                    (pixels, image),
                ),
            );
        }
        let region = crate::sparse::zoom::ZoomRegion::whole(32);
        let picture = |fraction: f32| {
            let pixels: Vec<f32> = (0..32 * 32 * 3)
                .map(|i| (i % 5) as f32 * fraction / 5.0)
                .collect();
            Arc::new(color_image_from_rgb(&pixels, 32))
        };
        model.apply_zoom(
            ctx,
            crate::app::protocol::ZoomFrame {
                request: crate::app::protocol::ZoomRequest { method, region },
                run_id: 1,
                step: 10,
                model: picture(1.0),
                bicubic: picture(0.8),
                lanczos: picture(0.6),
                model_ms: 1.0,
            },
        );
        model
    }

    /// Run 1's frame of `report` with its picture (in the trajectory when `kept`).
    fn frame(
        method: &'static str,
        total_steps: usize,
        report: StepReport,
        kept: bool,
        (pixels, image): (Vec<f32>, Arc<egui::ColorImage>),
    ) -> Frame {
        Frame {
            method,
            run_id: 1,
            total_steps,
            report,
            step_secs: 0.01,
            kept,
            thumbnail: kept.then(|| Arc::clone(&image)),
            image: Some(image),
            pixels: Some(Arc::new(pixels)),
            live: None,
        }
    }

    /// The target scaled by `fraction`, as an image.
    fn faded(fraction: f32) -> (Vec<f32>, Arc<egui::ColorImage>) {
        let pixels: Vec<f32> = target_pixels().iter().map(|v| v * fraction).collect();
        let image = Arc::new(color_image_from_rgb(&pixels, SIZE));
        (pixels, image)
    }

    /// A 16×16 target and three runs: trajectory and multiscale with `steps` steps, and a
    /// one-step fourier-ridge baseline. PSNR is 10 + step dB.
    pub fn sample_model(ctx: &egui::Context, steps: usize) -> Model {
        let mut model = model_with_target(ctx, &["trajectory", "multiscale", "fourier-ridge"]);
        for (method, total, caption) in [
            ("trajectory", steps, "step"),
            ("multiscale", steps, "scale"),
            ("fourier-ridge", 1, "ridge fit"),
        ] {
            model.apply_message(ctx, Message::Started { method, run_id: 1 });
            for step in 1..=total {
                let (pixels, image) = faded(step as f32 / total as f32);
                model.apply_frame(
                    ctx,
                    frame(
                        method,
                        total,
                        StepReport {
                            step,
                            label: format!("{caption} {step}"),
                            psnr_db: 10.0 + step as f64,
                            loss: None,
                            saturation: None,
                            levels: Vec::new(),
                            sparse: None,
                        },
                        true,
                        (pixels, image),
                    ),
                );
            }
        }
        model
    }

    /// Trained methods: learned-refine and fourier-mlp at step 30 of 100 (images kept at the
    /// milestones 1, 2, 5, 10, 20), their loss falling from 0.1 to about 0.004, and
    /// learned-refine's 5 iterates at step 30; plus the one-step fourier-ridge baseline.
    pub fn trained_model(ctx: &egui::Context) -> Model {
        let mut model = model_with_target(ctx, &["fourier-ridge", "fourier-mlp", "learned-refine"]);
        type LossAt = fn(usize) -> Option<f64>;
        let runs: [(&'static str, usize, LossAt); 3] = [
            ("fourier-ridge", 1, |_| None),
            ("fourier-mlp", 100, |step| {
                Some(0.1 * 0.9f64.powi(step as i32))
            }),
            ("learned-refine", 100, |step| {
                Some(0.2 * 0.9f64.powi(step as i32))
            }),
        ];
        for (method, total, loss) in runs {
            model.apply_message(ctx, Message::Started { method, run_id: 1 });
            for step in 1..=total.min(30) {
                let kept = total == 1 || [1, 2, 5, 10, 20].contains(&step);
                let (pixels, image) = faded(step as f32 / 30.0);
                model.apply_frame(
                    ctx,
                    frame(
                        method,
                        total,
                        StepReport {
                            step,
                            label: format!("step {step}"),
                            psnr_db: 10.0 + step as f64 / 3.0,
                            loss: loss(step),
                            saturation: None,
                            levels: Vec::new(),
                            sparse: None,
                        },
                        kept,
                        (pixels, image),
                    ),
                );
            }
        }
        model.apply_iterates(
            ctx,
            Iterates {
                method: "learned-refine",
                run_id: 1,
                step: 30,
                images: (1..=5)
                    .map(|k| (faded(k as f32 / 5.0).1, 8.0 + 2.0 * k as f64))
                    .collect(),
            },
        );
        model
    }

    /// The multi-resolution method of [`levels_model`].
    pub const LEVELS_METHOD: &str = "wavelet";

    /// 2×2 average pooling of an RGB image `side` a side.
    fn pooled(pixels: &[f32], side: usize) -> Vec<f32> {
        let half = side / 2;
        let mut out = Vec::with_capacity(half * half * 3);
        for y in 0..half {
            for x in 0..half {
                for c in 0..3 {
                    let at =
                        |dy: usize, dx: usize| pixels[((2 * y + dy) * side + 2 * x + dx) * 3 + c];
                    out.push((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4.0);
                }
            }
        }
        out
    }

    /// A multi-resolution run next to a multiscale one: [`LEVELS_METHOD`] at step 12 of 100,
    /// its reports carrying levels 8 and 16 of the 16² target (teacher-forced 20 + step/4 + size/8
    /// dB, rollout 2 dB under it, nearest 15 and bicubic 17 + size/16), and its levels 4, 8, 16
    /// at step 12 with two rollouts (the coarsest level sent once, as the wavelet operator does).
    pub fn levels_model(ctx: &egui::Context) -> Model {
        let mut model = model_with_target(ctx, &["multiscale", LEVELS_METHOD]);
        let method = methods::find(LEVELS_METHOD).expect("in the registry").name;
        model.apply_message(
            ctx,
            Message::Started {
                method: "multiscale",
                run_id: 1,
            },
        );
        model.apply_message(ctx, Message::Started { method, run_id: 1 });
        let (pixels, image) = faded(0.5);
        model.apply_frame(
            ctx,
            frame(
                "multiscale",
                3,
                StepReport {
                    step: 1,
                    label: "scale 1".into(),
                    psnr_db: 11.0,
                    loss: None,
                    saturation: None,
                    levels: Vec::new(),
                    sparse: None,
                },
                true,
                (pixels, image),
            ),
        );
        for step in 1..=12 {
            let levels = [8usize, 16]
                .iter()
                .map(|&size| {
                    let teacher_forced_db = 20.0 + step as f64 / 4.0 + size as f64 / 8.0;
                    LevelReport {
                        size,
                        teacher_forced_db,
                        rollout_db: teacher_forced_db - 2.0,
                        nearest_db: 15.0,
                        bicubic_db: 17.0 + size as f64 / 16.0,
                    }
                })
                .collect();
            let kept = [1, 2, 5, 10].contains(&step);
            let (pixels, image) = faded(step as f32 / 12.0);
            model.apply_frame(
                ctx,
                frame(
                    method,
                    100,
                    StepReport {
                        step,
                        label: format!("step {step}"),
                        psnr_db: 18.0 + step as f64 / 4.0,
                        loss: Some(0.1 * 0.9f64.powi(step as i32)),
                        saturation: None,
                        levels,
                        sparse: None,
                    },
                    kept,
                    (pixels, image),
                ),
            );
        }
        let truth16 = target_pixels();
        let truth8 = pooled(&truth16, 16);
        let truth4 = pooled(&truth8, 8);
        let off =
            |pixels: &[f32], by: f32| pixels.iter().map(|v| (v + by).min(1.0)).collect::<Vec<_>>();
        // As the wavelet operator sends them: the coarsest level once, for every rollout.
        let level = |side: usize, truth: &[f32], base: bool| LevelImages {
            side,
            truth: truth.to_vec(),
            rollouts: if base {
                vec![("true 4×4".into(), truth.to_vec())]
            } else {
                vec![
                    ("rollout".into(), off(truth, 0.05)),
                    ("noise draw 2".into(), off(truth, 0.2)),
                ]
            },
            samples: Vec::new(),
            teacher_forced: if base { Vec::new() } else { off(truth, 0.02) },
            nearest: if base { Vec::new() } else { off(truth, 0.15) },
            bicubic: if base { Vec::new() } else { off(truth, 0.1) },
        };
        model.apply_levels(
            ctx,
            Levels {
                method,
                run_id: 1,
                step: 12,
                levels: level_frames(&[
                    level(4, &truth4, true),
                    level(8, &truth8, false),
                    level(16, &truth16, false),
                ]),
            },
        );
        model
    }

    /// Shows `view` over [`sample_model`] in a 1000×700 harness.
    pub fn view_harness(view: Box<dyn View>, steps: usize) -> Harness<'static, Fixture> {
        view_harness_with(view, Box::new(move |ctx| sample_model(ctx, steps)))
    }

    /// Shows `view` over the model `make` builds in a 1000×700 harness.
    pub fn view_harness_with(view: Box<dyn View>, make: MakeModel) -> Harness<'static, Fixture> {
        let fixture = Fixture {
            view,
            make,
            model: None,
            focus: None,
            show_ground_truth: false,
            requests: Vec::new(),
            iterates_for: None,
            levels_for: None,
        };
        Harness::builder()
            .with_size(egui::vec2(1000.0, 700.0))
            .build_ui_state(
                |ui, fixture: &mut Fixture| {
                    if fixture.model.is_none() {
                        fixture.model = Some((fixture.make)(ui.ctx()));
                    }
                    let Some(model) = fixture.model.as_ref() else {
                        return;
                    };
                    let mut context =
                        ViewContext::new(model, &mut fixture.focus, fixture.show_ground_truth);
                    fixture.view.ui(ui, &mut context);
                    fixture.iterates_for = context.iterates_for;
                    fixture.levels_for = context.levels_for;
                    fixture.requests.extend(context.requests);
                },
                fixture,
            )
    }
}
