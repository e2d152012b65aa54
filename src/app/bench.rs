//! Measures the UI thread's frame time while the compute thread is busy, headless: the real
//! app is driven through `egui::Context::run_ui` plus tessellation (what eframe does on the UI
//! thread before handing triangles to the GPU) at a 60 Hz cadence. Used by `inrlab bench`;
//! not a timed test, since shared CI machines make timings noisy.

use std::time::{Duration, Instant};

use super::{AppOptions, InrlabApp};
use crate::compute::BackendChoice;

/// What to measure.
#[derive(Clone, Debug)]
pub struct FrameBenchOptions {
    pub frames: usize,
    pub working_size: usize,
    pub backend: BackendChoice,
    /// Window size in points.
    pub window: [f32; 2],
    /// Switch to the next view every this many frames (0: stay on the first).
    pub frames_per_view: usize,
}

impl Default for FrameBenchOptions {
    fn default() -> Self {
        FrameBenchOptions {
            frames: 600,
            working_size: 128,
            backend: BackendChoice::Cpu,
            window: [1480.0, 900.0],
            frames_per_view: 120,
        }
    }
}

/// Frame-time percentiles in milliseconds, and how much the compute did meanwhile.
#[derive(Clone, Debug)]
pub struct FrameTimes {
    pub frames: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Step frames that arrived during the measurement (proves the compute was busy).
    pub step_frames: u64,
}

/// Runs the app headless for `options.frames` frames while its worker computes, and returns
/// the distribution of UI frame times.
pub fn measure_ui_frame_times(options: &FrameBenchOptions) -> FrameTimes {
    let ctx = egui::Context::default();
    let mut app = InrlabApp::new(
        &ctx,
        AppOptions {
            backend: options.backend,
            working_size: Some(options.working_size),
            ..AppOptions::default()
        },
        None,
    );
    let view_ids: Vec<&'static str> = crate::ui::registry().iter().map(|v| v.id()).collect();
    let screen = egui::Rect::from_min_size(
        egui::Pos2::ZERO,
        egui::vec2(options.window[0], options.window[1]),
    );
    let cadence = Duration::from_micros(16_667);
    let mut times_ms = Vec::with_capacity(options.frames);
    let started_frames = app.model().frames_received;
    for frame in 0..options.frames {
        if let Some(page) = frame.checked_div(options.frames_per_view) {
            let view = view_ids[page % view_ids.len()];
            if app.settings().active_view != view {
                app.settings_mut().active_view = view.to_owned();
            }
        }
        let input = egui::RawInput {
            screen_rect: Some(screen),
            time: Some(frame as f64 / 60.0),
            ..Default::default()
        };
        let started = Instant::now();
        let output = ctx.run_ui(input, |ui| app.ui_root(ui, None));
        let primitives = ctx.tessellate(output.shapes, output.pixels_per_point);
        std::hint::black_box(primitives);
        let elapsed = started.elapsed();
        times_ms.push(elapsed.as_secs_f64() * 1000.0);
        if let Some(rest) = cadence.checked_sub(elapsed) {
            std::thread::sleep(rest);
        }
    }
    times_ms.sort_by(f64::total_cmp);
    let quantile = |q: f64| times_ms[((times_ms.len() - 1) as f64 * q).round() as usize];
    FrameTimes {
        frames: times_ms.len(),
        p50_ms: quantile(0.5),
        p95_ms: quantile(0.95),
        p99_ms: quantile(0.99),
        max_ms: *times_ms.last().unwrap_or(&0.0),
        step_frames: app.model().frames_received - started_frames,
    }
}
