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

/// How the window's compute shares time, headless: the real worker with the methods ticked by
/// default, at 128² on the CPU, nothing focused.
pub mod scheduling {
    use std::time::{Duration, Instant};

    use crate::app::Settings;
    use crate::app::protocol::{Command, Desired, ImageSource};
    use crate::app::worker::{WorkerHandle, spawn};
    use crate::compute::{BackendChoice, create_backend};
    use crate::methods::{self, MethodCache, ParamValues};
    use crate::rng::RngKind;
    use crate::session::{AdvanceResult, Session};
    use crate::target::{Fit, Target};

    const SIZE: usize = 128;

    /// Time until `method` reaches `steps` in the window, and alone.
    #[derive(Clone, Debug, serde::Serialize)]
    pub struct Reach {
        pub method: &'static str,
        pub steps: usize,
        pub ms: f64,
        pub standalone_ms: f64,
    }

    /// Slider change → the changed method's first new frame.
    #[derive(Clone, Debug, serde::Serialize)]
    pub struct SliderLatency {
        pub method: &'static str,
        pub parameter: &'static str,
        pub changes: usize,
        pub p50_ms: f64,
        pub p95_ms: f64,
        /// The method's own build and first step, alone.
        pub first_step_ms: f64,
        /// The longest step of any other method seen meanwhile (what may be in flight).
        pub longest_other_step_ms: f64,
    }

    fn default_desired() -> Desired {
        Settings::default().desired(None)
    }

    fn start(desired: Desired) -> WorkerHandle {
        let handle = spawn(BackendChoice::Cpu, desired, egui::Context::default());
        let _ = handle.send(Command::LoadImage(ImageSource::Sample));
        let _ = handle.send(Command::Play);
        handle
    }

    /// Drains messages so the worker never blocks on a full channel.
    fn drain(handle: &WorkerHandle) {
        while handle.try_message().is_some() {}
    }

    /// Milliseconds until `method` alone, through the same session code, reaches `steps`
    /// (`None`: its first step, build included).
    fn standalone_ms(method: &'static str, steps: Option<usize>) -> anyhow::Result<f64> {
        let backend = create_backend(BackendChoice::Cpu)?;
        let mut session = Session::new(backend, MethodCache::default(), RngKind::Numpy);
        session.set_target(Target::sample(SIZE, Fit::Stretch)?);
        session.set_selection(&[(methods::find(method)?, ParamValues::new())]);
        let started = Instant::now();
        loop {
            let advance = session.advance(0, false);
            match advance.result {
                AdvanceResult::Stepped(report) => {
                    if steps.is_none_or(|s| report.step >= s) {
                        return Ok(started.elapsed().as_secs_f64() * 1e3);
                    }
                }
                AdvanceResult::Waiting(_) => {
                    session.cache().wait_for_pending(Duration::from_secs(60));
                    session.refresh_waiting();
                }
                AdvanceResult::Stopped(reason) => anyhow::bail!("{method}: {reason}"),
                // No mask here, so no refit.
                AdvanceResult::Refit(_) | AdvanceResult::Cancelled => {}
            }
        }
    }

    /// (a): the time until `method` reaches `steps` with the default selection running.
    pub fn window_reach(method: &'static str, steps: usize) -> anyhow::Result<Reach> {
        let standalone_ms = standalone_ms(method, Some(steps))?;
        let handle = start(default_desired());
        let started = Instant::now();
        let deadline = started + Duration::from_secs(1800);
        loop {
            anyhow::ensure!(Instant::now() < deadline, "{method} never reached {steps}");
            if let Some(reason) = handle.stopped() {
                anyhow::bail!("compute stopped: {reason}");
            }
            drain(&handle);
            if handle
                .take_frames()
                .iter()
                .any(|f| f.method == method && f.report.step >= steps)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(Reach {
            method,
            steps,
            ms: started.elapsed().as_secs_f64() * 1e3,
            standalone_ms,
        })
    }

    fn quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    /// (b): `changes` changes of `parameter` of `method` while the default selection runs.
    pub fn slider_latency(
        method: &'static str,
        parameter: &'static str,
        values: impl Fn(usize) -> f64,
        changes: usize,
    ) -> anyhow::Result<SliderLatency> {
        let first_step_ms = standalone_ms(method, None)?;
        let mut desired = default_desired();
        let handle = start(desired.clone());
        let mut latencies = Vec::new();
        let mut longest_other = 0.0f64;
        let mut run_id = 0;
        // Let everyone get going first, so changes land in the middle of other steps.
        let warm_until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < warm_until {
            drain(&handle);
            for frame in handle.take_frames() {
                if frame.method == method {
                    run_id = run_id.max(frame.run_id);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for change in 0..changes {
            let mut params = ParamValues::new();
            params.set(parameter, values(change));
            desired.params.insert(method, params);
            handle.set_desired(desired.clone());
            let changed = Instant::now();
            let before = run_id;
            let deadline = changed + Duration::from_secs(300);
            'wait: loop {
                anyhow::ensure!(Instant::now() < deadline, "no new frame of {method}");
                drain(&handle);
                for frame in handle.take_frames() {
                    if frame.method != method {
                        longest_other = longest_other.max(frame.step_secs * 1e3);
                    } else if frame.run_id > before && frame.report.step == 1 {
                        latencies.push(changed.elapsed().as_secs_f64() * 1e3);
                        run_id = frame.run_id;
                        break 'wait;
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            // A pause between drags, as a hand makes.
            std::thread::sleep(Duration::from_millis(150));
        }
        latencies.sort_by(f64::total_cmp);
        Ok(SliderLatency {
            method,
            parameter,
            changes,
            p50_ms: quantile(&latencies, 0.5),
            p95_ms: quantile(&latencies, 0.95),
            first_step_ms,
            longest_other_step_ms: longest_other,
        })
    }
}
