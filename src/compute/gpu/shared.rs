//! A device the compute shares with the window's renderer: the watch on its loss, and the
//! pause that keeps the compute's submissions out of the window's surface reconfigurations.

use std::sync::{Arc, Mutex};

use super::runs_compute_shaders;

/// Why a device was lost, once wgpu says so (driver reset, GPU removed). wgpu keeps one
/// lost-callback per device, so everybody on a shared device (the compute and the window that
/// renders with it) reads the same watch.
#[derive(Clone, Debug, Default)]
pub struct DeviceLoss(Arc<Mutex<Option<String>>>);

impl DeviceLoss {
    /// Starts watching `device` (replacing any callback set on it before).
    pub fn watch(device: &wgpu::Device) -> Self {
        let loss = DeviceLoss::default();
        let sink = Arc::clone(&loss.0);
        device.set_device_lost_callback(move |reason, message| {
            let why = match message.is_empty() {
                true => format!("{reason:?}"),
                false => format!("{reason:?}: {message}"),
            };
            *sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        });
        loss
    }

    /// Why the device was lost, as far as wgpu has said (it says so while polling).
    pub fn why(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// [`DeviceLoss::why`] after polling `device` (the one watched): some drivers (Mesa 26.1's
    /// lavapipe) report a loss, a destroyed device's included, only while polled, so whoever
    /// may be the only one still looking polls first.
    pub fn polled(&self, device: &wgpu::Device) -> Option<String> {
        let _ = device.poll(wgpu::PollType::Poll);
        self.why()
    }
}

/// Holds the compute's submissions back while the window reconfigures its surface, on a device
/// the two share. wgpu's `Surface::configure` (every window resize) waits for the device to go
/// idle and fails if anything was submitted meanwhile (gfx-rs/wgpu's "Failed to wait for GPU
/// to come idle"), which a compute thread submitting all the time nearly always does. So the
/// first configure of a resize may fail: the device's error handler then pauses the compute,
/// lets the one frame drawn against the stale surface go, and egui_wgpu's next configure (it
/// reconfigures a suboptimal surface) finds the queue quiet. The window ends the pause two
/// frames later ([`SubmitPause::frame_drawn`]); a window that stops drawing ends it after
/// [`SubmitPause::LONGEST`].
#[derive(Clone, Debug, Default)]
pub struct SubmitPause(Arc<Mutex<PauseState>>);

#[derive(Debug, Default)]
struct PauseState {
    /// When the pause began, and on which thread the surface is configured.
    since: Option<(std::time::Instant, std::thread::ThreadId)>,
    frames_since: u32,
    /// How many pauses there were, and how many of the renderer's errors were let go.
    count: u64,
    errors_let_go: u64,
}

impl SubmitPause {
    /// A window that stops drawing mid-pause (minimised) must not stop the compute for long.
    const LONGEST: std::time::Duration = std::time::Duration::from_secs(2);
    /// Frames the window draws before the compute goes on: the stale one, the reconfigured one.
    const FRAMES: u32 = 2;

    fn state(&self) -> std::sync::MutexGuard<'_, PauseState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `error`, reported uncaptured on the shared device: whether it is one the pause covers
    /// (starting a pause if it is a configure that lost the race).
    fn takes(&self, error: &wgpu::Error) -> bool {
        let mut state = self.state();
        let thread = std::thread::current().id();
        if is_surface_configure_race(error) {
            state.since = Some((std::time::Instant::now(), thread));
            state.frames_since = 0;
            state.count += 1;
            return true;
        }
        // The frame drawn against the stale surface fails validation (its scissor rectangles
        // are the new size's); on the renderer's thread, during the pause, that is all it is.
        let renderers_frame = matches!(state.since,
            Some((since, on)) if on == thread && since.elapsed() < Self::LONGEST);
        if renderers_frame && matches!(error, wgpu::Error::Validation { .. }) {
            state.errors_let_go += 1;
            return true;
        }
        false
    }

    /// The window drew a frame: two after a pause began, the compute goes on.
    pub fn frame_drawn(&self) {
        let mut state = self.state();
        if state.since.is_some() {
            state.frames_since += 1;
            if state.frames_since > Self::FRAMES {
                state.since = None;
            }
        }
    }

    /// How many times the compute paused for the surface, and how many of the renderer's
    /// errors were let go meanwhile.
    pub fn pauses(&self) -> (u64, u64) {
        let state = self.state();
        (state.count, state.errors_let_go)
    }

    /// Returns once no pause is in force.
    pub(super) fn wait(&self) {
        loop {
            let since = self.state().since;
            match since {
                Some((since, _)) if since.elapsed() < Self::LONGEST => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                _ => return,
            }
        }
    }
}

/// Whether `error` is a surface configure that lost the race with another thread's submission
/// (see [`SubmitPause`]): recoverable, unlike every other error wgpu reports uncaptured.
fn is_surface_configure_race(error: &wgpu::Error) -> bool {
    // wgpu gives no type for it outside wgpu-core; its message is stable text.
    matches!(error, wgpu::Error::Validation { description, .. }
        if description.contains("Surface::configure") && description.contains("come idle"))
}

/// A device opened by somebody else (the window's renderer) for the compute to share.
#[derive(Clone, Debug)]
pub struct SharedDevice {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// Watched from the start, so that the window learns of a loss however it comes.
    pub loss: DeviceLoss,
    /// Set by the device's error handler when the window's surface needs a quiet queue.
    pub pause: SubmitPause,
}

impl SharedDevice {
    /// The window's device when the compute may share it for `choice`: a native API (not GL),
    /// compute shaders, and a hardware adapter unless the GPU backend was asked for by name.
    pub fn for_choice(
        choice: crate::compute::BackendChoice,
        adapter: &wgpu::Adapter,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
    ) -> Option<Self> {
        let info = adapter.get_info();
        let usable = info.backend != wgpu::Backend::Gl && runs_compute_shaders(adapter);
        let wanted = match choice {
            crate::compute::BackendChoice::Cpu => false,
            crate::compute::BackendChoice::Gpu => true,
            crate::compute::BackendChoice::Auto => info.device_type != wgpu::DeviceType::Cpu,
        };
        (usable && wanted)
            .then(|| SharedDevice::new(adapter.clone(), device.clone(), queue.clone()))
    }

    /// Watches `device` for its loss, and replaces wgpu's default error handler (which
    /// panics on every error) by one that lets a surface configure lose its race with the
    /// compute ([`SubmitPause`]) and panics, as the default does, on everything else.
    pub fn new(adapter: wgpu::Adapter, device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let loss = DeviceLoss::watch(&device);
        let pause = SubmitPause::default();
        let on_error = pause.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            if !on_error.takes(&error) {
                panic!("wgpu error: {error}\n");
            }
        }));
        SharedDevice {
            adapter,
            device,
            queue,
            loss,
            pause,
        }
    }
}
