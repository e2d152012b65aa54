//! `inrlab --screenshot FILE --after N`: the window waits until every selected method has taken
//! N steps, saves its own pixels with the window's record, says where each method's newest
//! picture came from (downloaded, or the device's texture), and closes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui::ColorImage;

#[cfg(feature = "testing")]
use super::BackendSource;
use super::{InrlabApp, saving, screenshot_into};
use crate::output::{Existing, png_bytes_with_text, write_atomic};

/// A screenshot is taken after this long even if the methods have not reached `--after`.
const SCREENSHOT_TIMEOUT: Duration = Duration::from_secs(300);

/// The result of a `--screenshot` run, read by [`run`] after the window closes.
pub(super) type ScreenshotOutcome = Arc<Mutex<Option<anyhow::Result<()>>>>;

/// Where a `--screenshot` run is: waiting for the steps, waiting for the pixels, written.
enum ScreenshotPhase {
    Waiting {
        started: Instant,
    },
    /// Asked egui for the next frame's pixels.
    Requested,
    Done,
}

/// What `--screenshot` asked for, and how far it has got.
pub(super) struct ScreenshotPlan {
    path: PathBuf,
    after: usize,
    phase: ScreenshotPhase,
    /// Filled by egui's screenshot callback.
    image: Arc<Mutex<Option<Arc<ColorImage>>>>,
    pub(super) outcome: ScreenshotOutcome,
    existing: Existing,
}

impl ScreenshotPlan {
    /// Still waiting for the methods to reach `--after`.
    #[cfg(feature = "testing")]
    pub(super) fn is_waiting(&self) -> bool {
        matches!(self.phase, ScreenshotPhase::Waiting { .. })
    }

    pub(super) fn new(path: PathBuf, after: usize, existing: Existing) -> Self {
        ScreenshotPlan {
            existing,
            path,
            after,
            phase: ScreenshotPhase::Waiting {
                started: Instant::now(),
            },
            image: Arc::default(),
            outcome: Arc::default(),
        }
    }
}

impl InrlabApp {
    /// Each frame of a `--screenshot` run: once every method has reached `--after` (or after
    /// [`SCREENSHOT_TIMEOUT`]), asks for the window's pixels, saves them and closes the window.
    pub(super) fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(plan) = &mut self.screenshot else {
            return;
        };
        match plan.phase {
            ScreenshotPhase::Waiting { started } => {
                let timed_out = started.elapsed() > SCREENSHOT_TIMEOUT;
                if timed_out {
                    eprintln!(
                        "inrlab: the methods had not reached {} steps after {} s; taking the screenshot anyway",
                        plan.after,
                        SCREENSHOT_TIMEOUT.as_secs()
                    );
                }
                if self.model.all_reached(plan.after) || timed_out {
                    screenshot_into(&plan.image, ctx);
                    plan.phase = ScreenshotPhase::Requested;
                }
                // Keep frames coming while waiting (the worker also repaints on every frame).
                ctx.request_repaint_after(Duration::from_millis(100));
            }
            ScreenshotPhase::Requested => {
                let image = plan.image.lock().unwrap_or_else(|e| e.into_inner()).take();
                let Some(image) = image else {
                    ctx.request_repaint_after(Duration::from_millis(50));
                    return;
                };
                let provenance = saving::window_provenance(&self.model, &self.settings);
                let result =
                    save_screenshot(&plan.path, &image, provenance.as_ref(), plan.existing);
                let saved = result.is_ok();
                match &result {
                    Ok(()) => println!("screenshot saved to {}", plan.path.display()),
                    Err(error) => eprintln!("inrlab: {error:#}"),
                }
                *plan.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                plan.phase = ScreenshotPhase::Done;
                if saved {
                    self.print_screenshot_report();
                }
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            ScreenshotPhase::Done => {}
        }
    }

    /// Where each method's newest picture (the one Compare shows) was, and the warnings the
    /// window shows, so that a run can be checked from its output.
    fn print_screenshot_report(&self) {
        for run in &self.model.runs {
            if let Some(step) = run.shown_step() {
                let source = if run.shown_from_the_device() {
                    "the device's texture (not downloaded)"
                } else {
                    "the downloaded image"
                };
                println!(
                    "  {}: newest picture step {step}, from {source}",
                    run.info.name
                );
            }
        }
        for warning in &self.model.warnings {
            println!("  warning shown: {}", warning.text);
        }
        #[cfg(feature = "testing")]
        if self.resize_every_frame
            && let BackendSource::Shared(shared) = &self.backend
        {
            let (pauses, let_go) = shared.pause.pauses();
            println!(
                "  resized {} times; the compute paused {pauses} times for the surface, {let_go} stale frames let go",
                self.frames_drawn
            );
        }
    }
}

/// Writes the window's pixels as a PNG, atomically (temporary file, then rename).
fn save_screenshot(
    path: &Path,
    image: &ColorImage,
    provenance: Option<&crate::provenance::Provenance>,
    existing: Existing,
) -> anyhow::Result<()> {
    let picture = saving::rgb_picture(image)?;
    let text = provenance.map(|p| p.png_text()).unwrap_or_default();
    write_atomic(path, &png_bytes_with_text(&picture, &text)?, existing)
}
