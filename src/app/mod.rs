//! The window: an eframe app over a compute worker thread.
//!
//! [`InrlabApp`] owns the persisted [`Settings`], the UI-side [`state::Model`] and a
//! [`worker::WorkerHandle`]. Each frame it drains what the worker sent (at most ~10 ms), draws
//! the left controls, the active view and the status bar, and publishes the settings as the
//! worker's desired configuration. It never waits on the worker.

pub mod bench;
pub mod checkpoints;
pub mod features;
pub mod levels;
pub mod protocol;
pub mod reopen;
pub mod saving;
mod screenshot_mode;
use screenshot_mode::{ScreenshotOutcome, ScreenshotPlan};
pub mod settings;
pub mod state;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui::{Color32, ColorImage, Key, RichText};

use crate::cli::WindowArgs;
use crate::compute::gpu::SharedDevice;
use crate::compute::{BackendChoice, BackendSource};
use crate::methods::ParamValues;
use crate::output::Existing;
use crate::ui::banner::{BANNER_ERROR, BANNER_SAVED, BANNER_WARNING, banner_buttons_ui, banner_ui};
use crate::ui::controls::{Action, controls_ui};
use crate::ui::status_bar::status_bar_ui;
use crate::ui::{View, ViewContext, ViewExport, ViewRequest, palette};
use protocol::{Command, ImageSource};
pub use settings::{Settings, WORKING_SIZES};
use state::{Model, NativeTextures};
use worker::{SendError, WorkerHandle};

/// Key of the settings in eframe's storage.
const SETTINGS_KEY: &str = "inrlab-settings";
/// Longest an export waits for pictures shown from the device to be downloaded.
const EXPORT_WAIT: Duration = Duration::from_secs(3);

/// How the app is started.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    pub backend: BackendChoice,
    /// Image to open instead of the built-in sample.
    pub image: Option<PathBuf>,
    /// Overrides the stored working size (tests use 32).
    pub working_size: Option<usize>,
    /// Save a screenshot after this many steps of each method, then close.
    pub screenshot: Option<(PathBuf, usize)>,
    /// Whether that screenshot may replace a file already there.
    pub overwrite_screenshot: bool,
    /// Start paused (tests that step by hand).
    pub start_paused: bool,
    /// Open on this view (its id) instead of the stored one.
    pub initial_view: Option<String>,
    /// Methods to show instead of the stored selection (`--methods`).
    pub methods: Option<Vec<String>>,
    /// Parameter values from the command line, set on every selected method that has them.
    pub params: ParamValues,
    /// This window replaces one whose GPU device was lost: it starts from what that one had
    /// (instead of the stored settings and the command line) and says what happened.
    pub reopened: Option<reopen::Reopened>,
    /// Test hook: destroys the device the window shares with the compute once every method
    /// has taken this many steps, as a driver reset would.
    #[cfg(feature = "testing")]
    pub lose_window_device_after: Option<usize>,
    /// Test hook: resizes the window every frame until the screenshot, so that its surface
    /// is configured again and again while the compute submits on the same device.
    #[cfg(feature = "testing")]
    pub resize_every_frame: bool,
}

pub struct InrlabApp {
    settings: Settings,
    /// The settings last published to the worker (to notice changes).
    published: Option<Settings>,
    worker: WorkerHandle,
    /// How the worker was started, to start another if it ends.
    backend: BackendSource,
    /// The image last asked for, to load again in a restarted worker.
    image_source: ImageSource,
    model: Model,
    views: Vec<Box<dyn View>>,
    focus_method: Option<&'static str>,
    /// The method the active view focuses (its picker's, on a single-method view), as last
    /// published.
    focused: Option<&'static str>,
    /// The method whose iterates the active view showed in the last frame, and the one the
    /// worker was last told about.
    iterates_for: Option<&'static str>,
    published_iterates_for: Option<&'static str>,
    /// Likewise for the method whose levels the active view showed.
    levels_for: Option<&'static str>,
    published_levels_for: Option<&'static str>,
    /// The region the zoom view asks the worker to evaluate.
    zoom: Option<protocol::ZoomRequest>,
    published_zoom: Option<protocol::ZoomRequest>,
    published_focused: Option<&'static str>,
    /// Whether the active view computes on the host from the latest images, as last seen and
    /// as last published.
    host_images: bool,
    published_host_images: bool,
    /// An export asked for while some picture on screen was only on the device: since when it
    /// has waited for those pictures to be downloaded (the worker is asked for host images
    /// meanwhile), so the figure shows the steps the window shows.
    export_waiting: Option<Instant>,
    playing: bool,
    step_limit: Option<usize>,
    screenshot: Option<ScreenshotPlan>,
    last_frame_ms: Option<f32>,
    last_paint_ms: Option<f32>,
    /// A folder the folder dialog's thread picked, taken at the next frame.
    picked_folder: Arc<Mutex<Option<PathBuf>>>,
    /// An output folder the dialog's thread picked, likewise.
    picked_output: Arc<Mutex<Option<PathBuf>>>,
    /// The window's pixels, once egui has taken the screenshot asked for.
    shot: Arc<Mutex<Option<Arc<ColorImage>>>>,
    /// Where the last screenshot went (or why it did not), from the thread that wrote it.
    saved: saving::Saved,
    /// The last file saved, for the banner that offers to open its folder.
    last_saved: Option<PathBuf>,
    /// A preset (or any file of inrlab's) the dialog's thread picked, loaded at the next frame.
    picked_preset: Arc<Mutex<Option<PathBuf>>>,
    /// A checkpoint the dialog's thread picked and read (or why not), resumed at the next frame.
    picked_checkpoint: Arc<Mutex<Option<Result<crate::checkpoint::Checkpoint, String>>>>,
    /// The command line last put on the clipboard, shown in a banner.
    copied: Option<String>,
    /// The recording of the view in progress.
    recording: Option<saving::WindowRecording>,
    /// A screenshot taken for the recording, and where the view was (points).
    record_shot: Arc<Mutex<Option<Arc<ColorImage>>>>,
    view_rect: egui::Rect,
    /// Where what the user has goes if the window closes for a device loss ([`reopen`]).
    handover: Option<reopen::Handover>,
    /// Closing because the device the window renders with was lost.
    closing_for_loss: bool,
    #[cfg(feature = "testing")]
    lose_window_device_after: Option<usize>,
    #[cfg(feature = "testing")]
    resize_every_frame: bool,
    /// Frames drawn, for the resizing test hook.
    #[cfg(feature = "testing")]
    frames_drawn: u64,
}

impl InrlabApp {
    /// Starts the worker and asks it to load the image and start playing.
    pub fn new(ctx: &egui::Context, options: AppOptions, stored: Option<Settings>) -> Self {
        Self::with_renderer(ctx, options, stored, None)
    }

    /// [`Self::new`] for a window rendering with `render_state`: when the compute may use that
    /// device (see [`SharedDevice::for_choice`]), it does, and frames are shown from it.
    pub fn with_renderer(
        ctx: &egui::Context,
        options: AppOptions,
        stored: Option<Settings>,
        render_state: Option<&eframe::egui_wgpu::RenderState>,
    ) -> Self {
        apply_theme(ctx);
        let shared = render_state.and_then(|state| {
            SharedDevice::for_choice(options.backend, &state.adapter, &state.device, &state.queue)
        });
        let backend = match shared {
            Some(shared) => BackendSource::Shared(shared),
            None => BackendSource::Choice(options.backend),
        };
        // A window reopened after a device loss starts from what the lost one had.
        let carried = (options.reopened.as_ref()).and_then(|reopened| reopened.carried.clone());
        let stored = match &carried {
            Some(carried) => Some(carried.settings.clone()),
            None => stored,
        };
        let mut settings = stored.unwrap_or_default().sanitized();
        if let Some(size) = options.working_size {
            settings.working_size = size;
        }
        if let Some(view) = options.initial_view.clone() {
            settings.active_view = view;
        }
        // [`run`] has checked these already; a test or demo passing bad ones gets a notice.
        // A reopened window keeps what the user chose since instead.
        let command_line = match carried {
            Some(_) => Ok(()),
            None => settings.apply_command_line(options.methods.as_deref(), &options.params),
        };
        let step_limit = options.screenshot.as_ref().map(|(_, after)| *after);
        let worker = worker::spawn(backend.clone(), settings.desired(step_limit), ctx.clone());
        // The sample first, so that a bad --image leaves a notice over a running sample rather
        // than an empty window (both loads are drained before the first step).
        // A fresh worker's queue has room for these three.
        let _ = worker.send(Command::LoadImage(ImageSource::Sample));
        let image_source = match &carried {
            Some(carried) => carried.image.clone(),
            None => (options.image.clone()).map_or(ImageSource::Sample, ImageSource::Path),
        };
        if !matches!(image_source, ImageSource::Sample) {
            let _ = worker.send(Command::LoadImage(image_source.clone()));
        }
        if let Some(folder) = carried.as_ref().and_then(|carried| carried.folder.clone()) {
            let _ = worker.send(Command::TrainOnFolder(Some(folder)));
        }
        let playing = carried
            .as_ref()
            .map_or(!options.start_paused, |c| c.playing);
        if playing {
            let _ = worker.send(Command::Play);
        }
        let mut model = Model::default();
        if let Some(reopened) = &options.reopened {
            model.warn(reopened.warning());
        }
        if backend.shares_the_window_device() {
            model.native = render_state.cloned().map(NativeTextures::new);
        }
        model.set_selection(&settings.selected_names());
        if let Err(error) = command_line {
            model.notify(format!("{error:#}"));
        }
        let existing = if options.overwrite_screenshot {
            Existing::Overwrite
        } else {
            Existing::Refuse
        };
        let screenshot =
            (options.screenshot).map(|(path, after)| ScreenshotPlan::new(path, after, existing));
        InrlabApp {
            published: Some(settings.clone()),
            settings,
            worker,
            backend,
            image_source,
            model,
            views: crate::ui::registry(),
            focus_method: None,
            focused: None,
            iterates_for: None,
            published_iterates_for: None,
            levels_for: None,
            published_levels_for: None,
            zoom: None,
            published_zoom: None,
            published_focused: None,
            host_images: false,
            published_host_images: false,
            export_waiting: None,
            playing,
            step_limit,
            screenshot,
            last_frame_ms: None,
            last_paint_ms: None,
            picked_folder: Arc::default(),
            picked_output: Arc::default(),
            shot: Arc::default(),
            saved: Arc::default(),
            last_saved: None,
            picked_preset: Arc::default(),
            picked_checkpoint: Arc::default(),
            copied: None,
            recording: None,
            record_shot: Arc::default(),
            view_rect: egui::Rect::NOTHING,
            handover: None,
            closing_for_loss: false,
            #[cfg(feature = "testing")]
            lose_window_device_after: options.lose_window_device_after,
            #[cfg(feature = "testing")]
            resize_every_frame: options.resize_every_frame,
            #[cfg(feature = "testing")]
            frames_drawn: 0,
        }
    }

    /// Where this window hands over what the user has if it closes for a lost device, and
    /// whose watch on that device it joins (see [`reopen`]).
    pub fn hand_over_to(&mut self, handover: reopen::Handover) {
        if let BackendSource::Shared(shared) = &self.backend {
            handover.watch(shared);
        }
        self.handover = Some(handover);
    }

    /// What a window opened after this one would need to go on where it is.
    fn carried(&self) -> reopen::Carried {
        reopen::Carried {
            settings: self.settings.clone(),
            image: self.image_source.clone(),
            folder: self.model.folder.clone(),
            playing: self.playing,
        }
    }

    /// The device this window renders with was lost: nothing can be drawn on it again, so the
    /// window closes and [`run`] opens a new one with the compute on the CPU.
    fn close_if_the_window_device_is_lost(&mut self, ctx: &egui::Context) {
        #[cfg(feature = "testing")]
        if let (Some(after), BackendSource::Shared(shared)) =
            (self.lose_window_device_after, &self.backend)
            && self.model.all_reached(after)
        {
            self.lose_window_device_after = None;
            shared.device.destroy();
            // wgpu reports a destroyed device's loss once its queue has drained; a real loss
            // is reported at once, before the renderer's next frame, as here.
            let _ = shared.device.poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(Duration::from_secs(10)),
            });
        }
        let BackendSource::Shared(shared) = &self.backend else {
            return;
        };
        if self.closing_for_loss || self.handover.is_none() || shared.loss.why().is_none() {
            return;
        }
        self.closing_for_loss = true;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Changes settings as the controls would (tests, scripted demos).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// Asks the worker to load an image (what a drop or the Open… dialog does).
    pub fn load(&mut self, source: ImageSource) {
        self.image_source = source.clone();
        self.send(Command::LoadImage(source));
    }

    /// Trains the methods that can on `folder` (what picking or dropping a folder does), or on
    /// the image again; selects the first such method if none is.
    pub fn train_on_folder(&mut self, folder: Option<std::path::PathBuf>) {
        if folder.is_some() {
            self.select_a_folder_method();
        }
        self.send(Command::TrainOnFolder(folder));
    }

    /// A folder is for the methods that train on one: with none selected, the first is.
    fn select_a_folder_method(&mut self) {
        let selected = |name: &str| self.settings.selected.iter().any(|s| s == name);
        let takers: Vec<&crate::methods::MethodInfo> = (crate::methods::registry().iter())
            .filter(|info| info.trains_on_folder)
            .collect();
        if !takers.iter().any(|info| selected(info.name))
            && let Some(first) = takers.first()
        {
            self.settings.selected.push(first.name.to_owned());
        }
    }

    /// Sends a command; a busy or stopped worker is told to the user, never silently dropped.
    fn send(&mut self, command: Command) {
        match self.worker.send(command) {
            Ok(()) => {}
            Err(SendError::Busy) => self
                .model
                .notify("The compute thread is busy; try again in a moment."),
            // The banner offers the restart.
            Err(SendError::Stopped(_)) => {}
        }
    }

    /// Starts a new compute thread after the old one ended, on the same image and settings.
    fn restart_compute(&mut self, ctx: &egui::Context) {
        let mut desired = self.settings.desired(self.step_limit);
        desired.iterates_for = self.iterates_for;
        desired.levels_for = self.levels_for;
        desired.focused = self.focused;
        desired.zoom = self.zoom;
        desired.host_images = self.host_images;
        self.worker = worker::spawn(self.backend.clone(), desired, ctx.clone());
        let folder = self.model.folder.clone();
        let native = self.model.native.take();
        self.model = Model::default();
        self.model.native = native;
        self.model.set_selection(&self.settings.selected_names());
        let _ = self.worker.send(Command::LoadImage(ImageSource::Sample));
        if !matches!(self.image_source, ImageSource::Sample) {
            let _ = self
                .worker
                .send(Command::LoadImage(self.image_source.clone()));
        }
        if folder.is_some() {
            let _ = self.worker.send(Command::TrainOnFolder(folder));
        }
        if self.playing {
            let _ = self.worker.send(Command::Play);
        }
    }

    /// Test hook: makes the compute thread end as a bug would.
    #[cfg(feature = "testing")]
    pub fn crash_worker_for_test(&mut self) {
        let _ = self.worker.send(Command::CrashForTest);
    }

    /// Takes what the worker sent. Called by eframe before every frame, and by [`Self::ui_root`]
    /// (a second call in the same frame finds nothing).
    pub fn ingest(&mut self, ctx: &egui::Context) {
        self.model.ingest(ctx, &self.worker);
    }

    /// The whole window. `cpu_usage_secs` is eframe's measure of the previous frame, when known.
    pub fn ui_root(&mut self, ui: &mut egui::Ui, cpu_usage_secs: Option<f32>) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        self.ingest(&ctx);
        self.close_if_the_window_device_is_lost(&ctx);
        if let BackendSource::Shared(shared) = &self.backend {
            shared.pause.frame_drawn();
        }
        #[cfg(feature = "testing")]
        if self.resize_every_frame
            && self
                .screenshot
                .as_ref()
                .is_some_and(ScreenshotPlan::is_waiting)
        {
            self.frames_drawn += 1;
            let wider = self.frames_drawn.is_multiple_of(2);
            let size = if wider {
                [1480.0, 900.0]
            } else {
                [1400.0, 860.0]
            };
            ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(size.into()));
            ctx.request_repaint();
        }
        self.handle_shortcuts(&ctx);
        self.handle_dropped_files(&ctx);
        let picked = take(&self.picked_folder);
        if picked.is_some() {
            self.train_on_folder(picked);
        }
        if let Some(folder) = take(&self.picked_output) {
            self.settings.output_folder = Some(folder);
        }
        if let Some(file) = take(&self.picked_preset)
            && let Err(error) = self.load_preset(&file)
        {
            self.model.notify(format!("{error:#}"));
        }
        match take(&self.picked_checkpoint) {
            Some(Ok(checkpoint)) => self.resume_from(checkpoint),
            Some(Err(why)) => self.model.notify(format!("Checkpoint refused: {why}")),
            None => {}
        }
        if let Some((method, params)) = self.model.resumed.take() {
            self.settings.params.insert(method.to_owned(), params);
        }
        self.save_screenshot_taken(&ctx);
        self.record_step(&ctx);

        egui::Panel::bottom("status")
            .frame(egui::Frame::side_top_panel(ui.style()).fill(palette::BACKGROUND))
            .show(ui, |ui| {
                status_bar_ui(ui, &self.model, self.last_frame_ms, self.last_paint_ms)
            });
        let actions = egui::Panel::left("controls")
            .resizable(true)
            .default_size(330.0)
            .size_range(260.0..=520.0)
            .show(ui, |ui| {
                let recording =
                    (self.recording.as_ref()).map(|r| (r.recorder.frames(), r.recorder.dropped()));
                let saveable = checkpoints::saveable(&self.model, self.focused_method());
                let (settings, model) = (&mut self.settings, &self.model);
                controls_ui(ui, settings, model, self.playing, recording, saveable)
            })
            .inner;
        for action in actions {
            self.perform(action, &ctx);
        }
        egui::CentralPanel::default()
            .frame(egui::Frame::central_panel(ui.style()).fill(palette::BACKGROUND))
            .show(ui, |ui| self.central_ui(ui));
        self.publish_settings();
        self.export_when_caught_up(&ctx);
        self.drop_overlay_ui(&ctx);
        self.screenshot_step(&ctx);

        // Our own time is what the app controls; eframe's number (the previous frame, painting
        // included) is shown beside it, since under a software renderer painting dominates.
        let own_ms = started.elapsed().as_secs_f32() * 1000.0;
        self.last_frame_ms = Some(own_ms);
        self.last_paint_ms = cpu_usage_secs.map(|s| s * 1000.0);
        self.model.record_frame_time(own_ms);
    }

    /// The recording's frame: asked for when enough new steps have arrived, pushed (never
    /// waiting) when egui has taken it; at the frame cap the recording ends by itself.
    fn record_step(&mut self, ctx: &egui::Context) {
        let Some(recording) = &mut self.recording else {
            return;
        };
        if let Some(image) = take(&self.record_shot) {
            recording.pending = false;
            let (width, height, rgb) =
                saving::crop_rgb(&image, self.view_rect, ctx.pixels_per_point());
            let outcome = recording.recorder.push(width, height, Arc::new(rgb));
            if outcome == crate::recording::PushOutcome::CapReached {
                self.stop_recording(ctx);
                return;
            }
        }
        let frames = self.model.frames_received;
        if recording.wants_frame(frames) {
            recording.pending = true;
            recording.last_frames = frames;
            screenshot_into(&self.record_shot, ctx);
        }
    }

    /// Finishes the recording's file on a thread of its own (an APNG is encoded then); the
    /// banner says where it went.
    fn stop_recording(&mut self, ctx: &egui::Context) {
        let Some(recording) = self.recording.take() else {
            return;
        };
        in_background(&self.saved, ctx, move || {
            outcome(recording.recorder.finish().map(|summary| summary.path))
        });
    }

    /// Whether a recording is in progress, and its (frames, dropped) (tests).
    pub fn recording_counts(&self) -> Option<(usize, usize)> {
        (self.recording.as_ref()).map(|r| (r.recorder.frames(), r.recorder.dropped()))
    }

    fn central_ui(&mut self, ui: &mut egui::Ui) {
        self.view_rect = ui.max_rect();
        // Tabs.
        ui.horizontal(|ui| {
            for view in &self.views {
                let active = view.id() == self.settings.active_view;
                let text = RichText::new(view.title()).size(15.0);
                let text = if active {
                    text.strong().color(palette::ACCENT)
                } else {
                    text.color(palette::TEXT_DIM)
                };
                if ui
                    .selectable_label(active, text)
                    .on_hover_text(view.hint())
                    .clicked()
                {
                    self.settings.active_view = view.id().to_owned();
                }
            }
        });
        ui.separator();
        self.notices_ui(ui);
        let active = self
            .views
            .iter()
            .position(|v| v.id() == self.settings.active_view)
            .unwrap_or(0);
        let mut context = ViewContext::new(
            &self.model,
            &mut self.focus_method,
            self.settings.show_ground_truth,
        );
        self.views[active].ui(ui, &mut context);
        self.iterates_for = context.iterates_for;
        self.levels_for = context.levels_for;
        self.zoom = context.zoom;
        self.host_images = context.host_images || self.export_waiting.is_some();
        let requests = std::mem::take(&mut context.requests);
        // A single-method view focuses its method; views of every method focus none.
        self.focused = self
            .focus_method
            .filter(|_| self.views[active].shows_one_method());
        for request in requests {
            match request {
                ViewRequest::Features(request) => self.send(Command::RequestFeatures(request)),
            }
        }
    }

    /// A screenshot egui has taken goes to a writer thread; what it wrote comes back as a
    /// banner (or a notice saying why not).
    fn save_screenshot_taken(&mut self, ctx: &egui::Context) {
        if let Some(image) = take(&self.shot) {
            let provenance = saving::window_provenance(&self.model, &self.settings);
            let folder = self.output_folder();
            in_background(&self.saved, ctx, move || {
                outcome(saving::save_window_picture(
                    &folder,
                    &image,
                    provenance.as_ref(),
                ))
            });
        }
        if let Some(path) = self.model.saved_by_worker.take() {
            self.last_saved = Some(path);
        }
        match take(&self.saved) {
            Some(Ok(path)) => self.last_saved = Some(path),
            Some(Err(why)) => self.model.notify(format!("Not saved: {why}")),
            None => {}
        }
    }

    /// Where saved files go: the folder chosen once, or the default.
    pub fn output_folder(&self) -> PathBuf {
        self.settings
            .output_folder
            .clone()
            .unwrap_or_else(saving::default_output_folder)
    }

    /// Sets the window up as `file` records (a preset, or any file inrlab wrote): its methods
    /// with their parameters, working size, image and folder. Nothing changes if it cannot be
    /// read or names something missing.
    pub fn load_preset(&mut self, file: &Path) -> anyhow::Result<()> {
        let record = crate::provenance::Provenance::read(file)?;
        let mut settings = self.settings.clone();
        let infos = record.method_infos()?;
        settings.selected = infos.iter().map(|info| info.name.to_owned()).collect();
        for info in &infos {
            settings
                .params
                .insert(info.name.to_owned(), record.params_of(info)?);
        }
        anyhow::ensure!(
            settings::WORKING_SIZES.contains(&record.working_size),
            "{} was made at {}², which the window does not offer ({:?}); run it with \
             inrlab run --config",
            file.display(),
            record.working_size,
            settings::WORKING_SIZES
        );
        settings.working_size = record.working_size;
        let source = match record.image.resolve()? {
            Some(path) => ImageSource::Path(path),
            None => ImageSource::Sample,
        };
        self.settings = settings;
        self.model.set_selection(&self.settings.selected_names());
        self.load(source);
        self.train_on_folder(record.dataset.clone());
        Ok(())
    }

    /// Restarts the checkpoint's method from it, in the worker, which refuses it with a notice
    /// if it does not fit (what Load checkpoint… does with the file it read). The method is
    /// selected if it was not; its parameters come into the settings once it has resumed.
    pub fn resume_from(&mut self, checkpoint: crate::checkpoint::Checkpoint) {
        let method = checkpoint.method().to_owned();
        if !self.settings.selected.contains(&method) {
            self.settings.selected.push(method);
        }
        // The worker must see the selection before the command.
        self.publish_settings();
        self.send(Command::ResumeFrom(Box::new(checkpoint)));
    }

    /// Reads `file` and resumes from it ([`Self::resume_from`]; tests call this in place of
    /// the dialog).
    pub fn load_checkpoint(&mut self, file: &Path) -> anyhow::Result<()> {
        let checkpoint = crate::checkpoint::Checkpoint::read(file)?;
        self.resume_from(checkpoint);
        Ok(())
    }

    /// The method a single-method action (Copy command, Save checkpoint) is about: the one
    /// clicked or the active view's, else the first selected.
    fn focused_method(&self) -> Option<&'static str> {
        (self.focus_method.or(self.focused))
            .filter(|m| self.settings.selected.iter().any(|s| s == m))
            .or_else(|| self.settings.selected_names().first().copied())
    }

    /// The command line last copied (tests).
    pub fn copied_command_line(&self) -> Option<&str> {
        self.copied.as_deref()
    }

    /// The last file a screenshot wrote (tests).
    pub fn last_saved(&self) -> Option<&Path> {
        self.last_saved.as_deref()
    }

    fn notices_ui(&mut self, ui: &mut egui::Ui) {
        if let Some(line) = &self.copied {
            let text = format!("copied: {line}");
            if banner_ui(ui, &BANNER_SAVED, &text, "dismiss") {
                self.copied = None;
            }
        }
        if let Some(path) = self.last_saved.clone() {
            let text = format!("saved {}", path.display());
            match banner_buttons_ui(ui, &BANNER_SAVED, &text, &["dismiss", "open folder"]) {
                Some(0) => self.last_saved = None,
                Some(_) => {
                    let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
                    if let Err(error) = saving::open_folder(&folder) {
                        self.model.notify(format!("{error:#}"));
                    }
                    self.last_saved = None;
                }
                None => {}
            }
        }
        if let Some(reason) = self.model.compute_stopped.clone() {
            let text = format!("compute stopped: {reason}");
            if banner_ui(ui, &BANNER_ERROR, &text, "Restart compute") {
                self.perform(Action::RestartCompute, &ui.ctx().clone());
            }
        }
        let mut dismissed = Vec::new();
        let shown = (self.model.warnings.iter().map(|n| (&BANNER_WARNING, n)))
            .chain(self.model.notices.iter().map(|n| (&BANNER_ERROR, n)));
        for (style, notice) in shown {
            if banner_ui(ui, style, &notice.text, "dismiss") {
                dismissed.push(notice.id);
            }
        }
        for id in dismissed {
            self.model.dismiss(id);
        }
    }

    fn perform(&mut self, action: Action, ctx: &egui::Context) {
        match action {
            Action::OpenDialog => {
                // The dialog blocks, so it runs on its own thread and sends the load itself.
                let commands = self.worker.command_sender();
                let ctx = ctx.clone();
                std::thread::spawn(move || {
                    let picked = rfd::FileDialog::new()
                        .set_title("Open an image")
                        .add_filter(
                            "images",
                            &[
                                "png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "pnm",
                                "ppm", "pgm", "tga", "ico", "hdr", "qoi",
                            ],
                        )
                        .add_filter("all files", &["*"])
                        .pick_file();
                    if let Some(path) = picked {
                        let _ = commands.try_send(Command::LoadImage(ImageSource::Path(path)));
                        ctx.request_repaint();
                    }
                });
            }
            Action::LoadSample => self.load(ImageSource::Sample),
            Action::OpenFolderDialog => {
                // The next frame takes what it picked (choosing a folder may also select a
                // method, which is the UI's).
                in_background(&self.picked_folder, ctx, || {
                    rfd::FileDialog::new()
                        .set_title("Train on a folder of images")
                        .pick_folder()
                });
            }
            Action::LeaveFolder => self.train_on_folder(None),
            Action::Screenshot => {
                screenshot_into(&self.shot, ctx);
            }
            Action::ToggleRecording => {
                if self.recording.is_some() {
                    self.stop_recording(ctx);
                } else {
                    let provenance = saving::window_provenance(&self.model, &self.settings);
                    match saving::WindowRecording::start(
                        &self.output_folder(),
                        &self.settings.record_format.clone(),
                        self.settings.record_every,
                        self.settings.record_fps,
                        provenance.as_ref(),
                    ) {
                        Ok(mut recording) => {
                            // The first frame is the view as it is now.
                            recording.last_frames =
                                self.model.frames_received.saturating_sub(recording.every);
                            self.recording = Some(recording);
                        }
                        Err(error) => self.model.notify(format!("Not recording: {error:#}")),
                    }
                }
            }
            Action::ExportView => self.export_view(ctx),
            Action::ExportMetrics => match saving::window_provenance(&self.model, &self.settings) {
                Some(record) => {
                    let (rows, folder) = (saving::metrics_rows(&self.model), self.output_folder());
                    in_background(&self.saved, ctx, move || {
                        outcome(saving::save_metrics(&folder, &rows, &record))
                    });
                }
                None => self
                    .model
                    .notify("Nothing to save yet: the image is still loading."),
            },
            Action::SavePreset => match saving::window_provenance(&self.model, &self.settings) {
                Some(record) => {
                    let start = self.output_folder();
                    in_background(&self.saved, ctx, move || {
                        let path = rfd::FileDialog::new()
                            .set_title("Save the setup as a preset")
                            .set_directory(start)
                            .set_file_name("preset.json")
                            .add_filter("preset", &["json"])
                            .save_file()?;
                        // The dialog has asked before replacing a file.
                        outcome(
                            saving::save_preset(&path, &record, Existing::Overwrite).map(|()| path),
                        )
                    });
                }
                None => self
                    .model
                    .notify("Nothing to save yet: the image is still loading."),
            },
            Action::LoadPreset => {
                let start = self.output_folder();
                in_background(&self.picked_preset, ctx, move || {
                    rfd::FileDialog::new()
                        .set_title("Load a preset, or the setup a file of inrlab's records")
                        .set_directory(start)
                        .add_filter("inrlab files", &["json", "png", "csv", "safetensors"])
                        .pick_file()
                });
            }
            Action::CopyCommandLine => {
                let record = saving::window_provenance(&self.model, &self.settings);
                match (record, self.focused_method()) {
                    (Some(record), Some(method)) => match record.command_line(method) {
                        Some(line) => {
                            ctx.copy_text(line.clone());
                            self.copied = Some(line);
                        }
                        None => self.model.notify(format!("{method} is not running")),
                    },
                    _ => self.model.notify("Select a method first."),
                }
            }
            Action::SaveCheckpoint => {
                let (focused, folder) = (self.focused_method(), self.output_folder());
                match checkpoints::save_command(&self.model, focused, folder) {
                    Ok(command) => self.send(command),
                    Err(why) => self.model.notify(format!("Checkpoint not saved: {why}")),
                }
            }
            Action::LoadCheckpoint => {
                let start = self.output_folder();
                in_background(&self.picked_checkpoint, ctx, move || {
                    checkpoints::pick(start)
                });
            }
            Action::ChooseOutputFolder => {
                let start = self.output_folder();
                in_background(&self.picked_output, ctx, move || {
                    rfd::FileDialog::new()
                        .set_title("Save screenshots and exports in")
                        .set_directory(start)
                        .pick_folder()
                });
            }
            Action::TogglePlay => self.set_playing(!self.playing),
            Action::StepOnce => {
                self.set_playing(false);
                self.send(Command::StepOnce);
            }
            Action::Reset => {
                self.model.restart_clock();
                self.send(Command::Reset);
            }
            Action::Focus(method) => self.focus_method = Some(method),
            Action::RestartCompute => self.restart_compute(ctx),
        }
    }

    /// Exports the active view: at once, or, while some picture on screen is only on the
    /// device (frames that stay on the GPU), once the worker has downloaded those pictures.
    fn export_view(&mut self, ctx: &egui::Context) {
        if self
            .model
            .runs
            .iter()
            .any(|run| run.shown_from_the_device())
        {
            if self.export_waiting.is_none() {
                self.export_waiting = Some(Instant::now());
            }
            ctx.request_repaint();
        } else {
            self.export_view_now(ctx);
        }
    }

    /// The waiting export, once no picture on screen is newer than what the host has (or
    /// after [`EXPORT_WAIT`], with what it has then: a method whose step takes longer still
    /// exports its newest downloaded step, captioned with that step).
    fn export_when_caught_up(&mut self, ctx: &egui::Context) {
        let Some(since) = self.export_waiting else {
            return;
        };
        let caught_up = !self
            .model
            .runs
            .iter()
            .any(|run| run.shown_from_the_device());
        if caught_up || since.elapsed() >= EXPORT_WAIT {
            self.export_waiting = None;
            self.export_view_now(ctx);
        } else {
            ctx.request_repaint_after(Duration::from_millis(30));
        }
    }

    /// Composes the active view's figure from what the window has (cheap: shared pictures) and
    /// renders and writes it off the UI thread.
    fn export_view_now(&mut self, ctx: &egui::Context) {
        let Some(provenance) = saving::window_provenance(&self.model, &self.settings) else {
            self.model
                .notify("Nothing to export yet: the image is still loading.");
            return;
        };
        let Some(view) = (self.views.iter()).find(|v| v.id() == self.settings.active_view) else {
            return;
        };
        let source = crate::ui::ExportSource {
            model: &self.model,
            focus_method: self.focus_method,
            provenance: &provenance,
        };
        let Some(export) = view.export(&source) else {
            let title = view.title();
            self.model.notify(format!(
                "Nothing to export in {title} yet: no step has arrived."
            ));
            return;
        };
        // The numbers behind a plot go beside it; a sheet needs none.
        let rows = match &export {
            ViewExport::Curves(_) => saving::metrics_rows(&self.model),
            ViewExport::Sheet(_) => Vec::new(),
        };
        let (id, folder) = (view.id(), self.output_folder());
        in_background(&self.saved, ctx, move || {
            outcome(saving::save_view_export(
                &folder,
                id,
                export,
                &rows,
                &provenance,
            ))
        });
    }

    fn set_playing(&mut self, playing: bool) {
        if self.playing != playing {
            self.playing = playing;
            self.send(if playing {
                Command::Play
            } else {
                Command::Pause
            });
        }
    }

    /// Space play/pause, S step, R reset, G ground truth (instant-ngp and TF Playground keys),
    /// unless a text field has the keyboard.
    fn handle_shortcuts(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let (space, s, r, g, f12, export, record, metrics) = ctx.input(|i| {
            let command = i.modifiers.command;
            (
                i.key_pressed(Key::Space),
                i.key_pressed(Key::S) && !command,
                i.key_pressed(Key::R) && !command,
                i.key_pressed(Key::G) && !command,
                i.key_pressed(Key::F12),
                i.key_pressed(Key::E) && command,
                i.key_pressed(Key::R) && command,
                // Not Ctrl+M: X11 reports it as Enter (a carriage return).
                i.key_pressed(Key::S) && command,
            )
        });
        if f12 {
            self.perform(Action::Screenshot, ctx);
        }
        if export {
            self.perform(Action::ExportView, ctx);
        }
        if record {
            self.perform(Action::ToggleRecording, ctx);
        }
        if metrics {
            self.perform(Action::ExportMetrics, ctx);
        }
        if space {
            self.perform(Action::TogglePlay, ctx);
        }
        if s {
            self.perform(Action::StepOnce, ctx);
        }
        if r {
            self.perform(Action::Reset, ctx);
        }
        if g {
            self.settings.show_ground_truth = !self.settings.show_ground_truth;
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        // Several files at once: the last one wins, as each would restart everything anyway.
        if let Some(file) = dropped.last() {
            let path = file.path().to_path_buf();
            if path.is_dir() {
                self.train_on_folder(Some(path));
                return;
            }
            let source = if path.is_file() {
                ImageSource::Path(path)
            } else {
                match file.bytes() {
                    Ok(bytes) => ImageSource::Bytes {
                        name: display_name(&path),
                        bytes: bytes.into(),
                    },
                    Err(error) => {
                        self.model
                            .notify(format!("Could not read the dropped file: {error}"));
                        return;
                    }
                }
            };
            self.load(source);
        }
    }

    fn drop_overlay_ui(&self, ctx: &egui::Context) {
        let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
        if !hovering {
            return;
        }
        let painter = ctx.layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("drop-overlay"),
        ));
        let rect = ctx.content_rect();
        painter.rect_filled(rect, 0.0, Color32::from_black_alpha(190));
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "Drop the image to fit it",
            egui::FontId::proportional(28.0),
            palette::ACCENT,
        );
    }

    /// Sends the worker the new desired configuration when the settings or the iterates or
    /// levels on show changed (the worker is woken only when what it reads differs).
    fn publish_settings(&mut self) {
        let settings_changed = self.published.as_ref() != Some(&self.settings);
        if !settings_changed
            && self.published_iterates_for == self.iterates_for
            && self.published_levels_for == self.levels_for
            && self.published_zoom == self.zoom
            && self.published_focused == self.focused
            && self.published_host_images == self.host_images
        {
            return;
        }
        if settings_changed {
            self.model.set_selection(&self.settings.selected_names());
            self.published = Some(self.settings.clone());
        }
        let mut desired = self.settings.desired(self.step_limit);
        desired.iterates_for = self.iterates_for;
        desired.levels_for = self.levels_for;
        desired.focused = self.focused;
        desired.zoom = self.zoom;
        desired.host_images = self.host_images;
        self.worker.set_desired(desired);
        self.published_host_images = self.host_images;
        self.published_iterates_for = self.iterates_for;
        self.published_levels_for = self.levels_for;
        self.published_zoom = self.zoom;
        self.published_focused = self.focused;
    }
}

impl Drop for InrlabApp {
    /// Also when eframe's renderer panics on a lost device: what the user had is handed over.
    fn drop(&mut self) {
        if let Some(handover) = &self.handover {
            handover.carry(self.carried());
        }
    }
}

impl eframe::App for InrlabApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.ingest(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.ui_root(ui, frame.info().cpu_usage);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.screenshot.is_none() {
            eframe::set_value(storage, SETTINGS_KEY, &self.settings);
        }
    }

    fn persist_egui_memory(&self) -> bool {
        self.screenshot.is_none()
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        palette::BACKGROUND.to_normalized_gamma_f32()
    }
}

/// Runs `work` (a blocking file dialog, a file to write) on a thread of its own and leaves what
/// it returns in `slot` for a later frame, which it asks for; `None` (a dialog cancelled) leaves
/// the slot alone.
fn in_background<T: Send + 'static>(
    slot: &Arc<Mutex<Option<T>>>,
    ctx: &egui::Context,
    work: impl FnOnce() -> Option<T> + Send + 'static,
) {
    let (slot, ctx) = (Arc::clone(slot), ctx.clone());
    std::thread::spawn(move || {
        if let Some(value) = work() {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            ctx.request_repaint();
        }
    });
}

/// Asks egui for a screenshot of the window; it lands in `slot` at a later frame, which it asks
/// for.
fn screenshot_into(slot: &Arc<Mutex<Option<Arc<ColorImage>>>>, ctx: &egui::Context) {
    let (slot, repaint) = (Arc::clone(slot), ctx.clone());
    ctx.request_screenshot(move |image| {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(image);
        repaint.request_repaint();
    });
}

/// What a save returns to the banner: the file written, or why not in one line.
fn outcome(result: anyhow::Result<PathBuf>) -> Option<Result<PathBuf, String>> {
    Some(result.map_err(|error| format!("{error:#}")))
}

/// Takes what a background thread left in `slot`.
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || "dropped file".into(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Dark theme with the accent colour; larger default text for legible numbers.
fn apply_theme(ctx: &egui::Context) {
    ctx.set_theme(egui::Theme::Dark);
    ctx.style_mut_of(egui::Theme::Dark, |style| {
        let visuals = &mut style.visuals;
        visuals.panel_fill = palette::PANEL;
        visuals.window_fill = palette::PANEL;
        visuals.extreme_bg_color = palette::BACKGROUND;
        visuals.selection.bg_fill = palette::ACCENT.gamma_multiply(0.45);
        visuals.selection.stroke.color = palette::ACCENT;
        visuals.hyperlink_color = palette::ACCENT;
        visuals.slider_trailing_fill = true;
        style.spacing.item_spacing = egui::vec2(8.0, 5.0);
        style.spacing.button_padding = egui::vec2(8.0, 3.0);
        for (text_style, font) in style.text_styles.iter_mut() {
            if matches!(
                text_style,
                egui::TextStyle::Body | egui::TextStyle::Button | egui::TextStyle::Monospace
            ) {
                font.size = 13.5;
            }
        }
    });
}

/// eframe's wgpu setup, asking the window's device for what the compute kernels need (the
/// adapter's limits, subgroups where offered) rather than eframe's defaults (128 MiB bindings,
/// no features), so the compute can share it and show frames without a download.
fn window_device_setup() -> eframe::egui_wgpu::WgpuConfiguration {
    let mut create = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    create.device_descriptor = Arc::new(crate::compute::gpu::device_descriptor);
    eframe::egui_wgpu::WgpuConfiguration {
        wgpu_setup: eframe::egui_wgpu::WgpuSetup::CreateNew(create),
        ..Default::default()
    }
}

/// eframe's options for the window.
fn window_options(screenshot_mode: bool) -> eframe::NativeOptions {
    eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("inrlab")
            .with_inner_size([1480.0, 900.0])
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true),
        // A scripted screenshot must not depend on (or disturb) the user's saved layout.
        persist_window: !screenshot_mode,
        wgpu_options: window_device_setup(),
        ..Default::default()
    }
}

/// Opens the window (`inrlab` with no subcommand).
pub fn run(args: &WindowArgs) -> anyhow::Result<()> {
    let screenshot = args
        .screenshot
        .clone()
        .map(|path| (path, args.after.max(1)));
    let screenshot_mode = screenshot.is_some();
    let existing = if args.overwrite {
        Existing::Overwrite
    } else {
        Existing::Refuse
    };
    if let Some((path, _)) = &screenshot {
        // Refused before a window opens, not after the run.
        crate::output::check_writable(std::slice::from_ref(path), existing)?;
    }
    // Bad method names or parameter values end here, before a window opens.
    Settings::default().apply_command_line(args.methods.as_deref(), &args.params)?;
    let options = AppOptions {
        backend: args.backend,
        image: args.image.clone(),
        working_size: None,
        screenshot,
        overwrite_screenshot: args.overwrite,
        start_paused: false,
        // For scripted demo pictures of a particular view: INRLAB_VIEW=curves inrlab --screenshot …
        initial_view: std::env::var("INRLAB_VIEW").ok(),
        methods: args.methods.clone(),
        params: args.params.clone(),
        reopened: None,
        #[cfg(feature = "testing")]
        lose_window_device_after: args.lose_window_device_after,
        #[cfg(feature = "testing")]
        resize_every_frame: args.resize_every_frame,
    };
    // This window replaces one whose device was lost: the compute stays off the GPU.
    let mut options = options;
    if let Some(reopened) = reopen::handed_over()? {
        options.backend = BackendChoice::Cpu;
        options.reopened = Some(reopened);
    }
    // Screenshots keep their own storage so they never read the user's settings.
    let app_name = if screenshot_mode {
        "inrlab-screenshot"
    } else {
        "inrlab"
    };
    let outcome: ScreenshotOutcome = Arc::default();
    let app_outcome = Arc::clone(&outcome);
    let handover = reopen::Handover::default();
    let app_handover = handover.clone();
    let window = move || {
        eframe::run_native(
            app_name,
            window_options(screenshot_mode),
            Box::new(move |cc| {
                let stored = if screenshot_mode {
                    None
                } else {
                    cc.storage
                        .and_then(|s| eframe::get_value::<Settings>(s, SETTINGS_KEY))
                };
                let mut app = InrlabApp::with_renderer(
                    &cc.egui_ctx,
                    options,
                    stored,
                    cc.wgpu_render_state.as_ref(),
                );
                app.hand_over_to(app_handover);
                if let Some(plan) = &mut app.screenshot {
                    plan.outcome = app_outcome;
                }
                Ok(Box::new(app))
            }),
        )
    };
    match reopen::run_window(&handover, window) {
        reopen::Ended::Finished(result) => {
            result.map_err(|error| anyhow::anyhow!("cannot open the window: {error}"))?
        }
        reopen::Ended::DeviceLost(reopened) => {
            eprintln!(
                "inrlab: the GPU device was lost ({}); reopening the window with the compute on the CPU backend",
                reopened.why
            );
            std::process::exit(reopen::reopen_on_the_cpu(&reopened)?);
        }
    }
    if screenshot_mode {
        let result = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
        match result {
            Some(result) => result?,
            None => anyhow::bail!("the window closed before the screenshot was taken"),
        }
    }
    Ok(())
}
