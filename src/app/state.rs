//! The UI's model of what has arrived from the worker: the target, each method's run (its step
//! cells, latest image and status), notices, feature maps and timing statistics.
//!
//! Views read this and never talk to the worker themselves except through [`crate::ui::ViewContext`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{ColorImage, TextureHandle, TextureOptions};

use super::protocol::{
    FeatureMaps, FeatureRequest, Frame, HaarBandPictures, InFlight, Iterates, LevelPicture, Levels,
    Message, Picture, StopReason, ZoomFrame, ZoomRequest,
};
use super::worker::WorkerHandle;
use crate::compute::BackendKind;
use crate::imaging::color_image_from_rgb;
use crate::methods::{self, MethodInfo, StepReport};

/// How long one UI frame may spend draining messages before it draws what it has.
const DRAIN_BUDGET: Duration = Duration::from_millis(10);
/// Frame-time samples kept for the status bar's percentiles.
const FRAME_TIME_SAMPLES: usize = 240;

/// The image being fitted.
pub struct TargetView {
    pub name: String,
    pub size: usize,
    pub pixels: Arc<Vec<f32>>,
    pub texture: TextureHandle,
    /// The picture the texture shows, kept for exports (an `Arc` of what was uploaded).
    pub image: Arc<ColorImage>,
    pub origin: crate::provenance::ImageOrigin,
    /// The mask the methods see it through, with its pictures.
    pub observation: Option<ObservationView>,
}

/// The zoom view's latest region: the model's rendering and the two interpolations.
pub struct ZoomView {
    pub request: ZoomRequest,
    pub run_id: u64,
    pub step: usize,
    pub model_ms: f64,
    /// Model, bicubic, Lanczos-3; overwritten in place on the next arrival.
    pub textures: [TextureHandle; 3],
}

/// A mask's pictures as the sparse view shows them: the sparse input and each baseline.
pub struct ObservationView {
    pub observation: Arc<crate::sparse::Observation>,
    pub sparse_input: (TextureHandle, Arc<ColorImage>),
    /// Per baseline (in the observation's order): its picture.
    pub baselines: Vec<(TextureHandle, Arc<ColorImage>)>,
}

impl ObservationView {
    fn new(
        ctx: &egui::Context,
        observation: Arc<crate::sparse::Observation>,
        truth: &[f32],
    ) -> Self {
        let side = observation.side;
        let upload = |name: &str, pixels: &[f32]| {
            let image = Arc::new(color_image_from_rgb(pixels, side));
            let texture = ctx.load_texture(name, Arc::clone(&image), TextureOptions::NEAREST);
            (texture, image)
        };
        let sparse_input = upload("sparse input", &observation.sparse_input(truth));
        let baselines = (observation.baselines.iter())
            .map(|b| upload(b.name, &b.image))
            .collect();
        ObservationView {
            observation,
            sparse_input,
            baselines,
        }
    }
}

/// One finished step of a run.
pub struct StepCell {
    pub report: StepReport,
    pub step_secs: f64,
    /// Grid-sized image (the full image when the working size is small); `None` for a step
    /// that is not in the trajectory (see [`Frame::kept`]).
    pub thumbnail: Option<TextureHandle>,
    pub thumbnail_image: Option<Arc<ColorImage>>,
}

/// The newest step's full-size output.
pub struct LatestOutput {
    pub step: usize,
    pub texture: TextureHandle,
    pub image: Arc<ColorImage>,
    pub pixels: Arc<Vec<f32>>,
}

/// One iteration's image of a method that refines internally.
pub struct IterateCell {
    pub texture: TextureHandle,
    pub image: Arc<ColorImage>,
    pub psnr_db: f64,
}

/// The latest intermediate images that arrived ([`Iterates`]): the trajectory at one step.
pub struct IteratesView {
    pub step: usize,
    pub cells: Vec<IterateCell>,
}

/// One picture of a level, with its PSNR against the level's truth (`None`: a sample from a
/// noise canvas, which has none).
pub struct LevelCell {
    pub caption: String,
    pub texture: TextureHandle,
    pub image: Arc<ColorImage>,
    pub psnr_db: Option<f64>,
}

/// One Haar level of an image: LL (halved), LH, HL, HH, as [`HaarBandPictures`].
pub struct BandCells {
    pub textures: [TextureHandle; 4],
    pub rms: [f64; 4],
    pub error_rms: Option<[f64; 4]>,
}

/// One level of a multi-resolution method's latest levels.
pub struct LevelView {
    pub side: usize,
    pub truth: TextureHandle,
    pub truth_image: Arc<ColorImage>,
    pub rollouts: Vec<LevelCell>,
    pub teacher_forced: Option<LevelCell>,
    pub nearest: Option<LevelCell>,
    pub bicubic: Option<LevelCell>,
    pub truth_bands: Option<BandCells>,
    pub teacher_forced_bands: Option<BandCells>,
}

/// The latest levels that arrived ([`Levels`]), coarse to fine.
pub struct LevelsView {
    pub step: usize,
    pub levels: Vec<LevelView>,
    /// Every texture above by its name, so that the next arrival overwrites them in place.
    textures: HashMap<String, TextureHandle>,
}

/// Makes the textures of an arrival, reusing those of the previous one by name.
struct TextureReuse<'a> {
    ctx: &'a egui::Context,
    prefix: String,
    previous: HashMap<String, TextureHandle>,
    used: HashMap<String, TextureHandle>,
}

impl TextureReuse<'_> {
    fn texture(&mut self, name: String, image: Arc<ColorImage>) -> TextureHandle {
        let texture = match self.previous.remove(&name) {
            Some(mut texture) => {
                texture.set(image, TextureOptions::NEAREST);
                texture
            }
            None => self.ctx.load_texture(
                format!("{}/{name}", self.prefix),
                image,
                TextureOptions::NEAREST,
            ),
        };
        self.used.insert(name, texture.clone());
        texture
    }

    fn cell(&mut self, name: String, picture: LevelPicture) -> LevelCell {
        LevelCell {
            texture: self.texture(name, Arc::clone(&picture.image)),
            image: picture.image,
            caption: picture.caption,
            psnr_db: picture.psnr_db,
        }
    }

    fn bands(&mut self, name: &str, bands: HaarBandPictures) -> BandCells {
        let [ll, lh, hl, hh] = bands.bands;
        BandCells {
            textures: [
                self.texture(format!("{name}/ll"), ll),
                self.texture(format!("{name}/lh"), lh),
                self.texture(format!("{name}/hl"), hl),
                self.texture(format!("{name}/hh"), hh),
            ],
            rms: bands.rms,
            error_rms: bands.error_rms,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    /// Restarted; nothing has arrived yet.
    Starting,
    /// Its build waits for a background computation (what).
    Waiting(String),
    Running,
    Done,
    Diverged {
        step: usize,
        why: String,
    },
    Failed(String),
}

/// Step arrivals kept per run for its rate (the last few seconds).
const RATE_WINDOW: Duration = Duration::from_secs(8);

/// What the UI knows of one method's current run.
pub struct MethodRun {
    pub info: &'static MethodInfo,
    pub run_id: u64,
    pub total_steps: Option<usize>,
    pub cells: BTreeMap<usize, StepCell>,
    pub latest: Option<LatestOutput>,
    /// A step newer than `latest` whose image the window shows from the compute's device
    /// (nothing was downloaded): its step and native texture.
    pub live: Option<(usize, egui::TextureId)>,
    pub status: RunStatus,
    /// Compute seconds of this run so far.
    pub compute_secs: f64,
    /// For methods that refine internally, their iterations at a recent step; they arrive only
    /// while a view shows them.
    pub iterates: Option<IteratesView>,
    /// For multi-resolution methods, their levels at a recent step; they arrive only while a
    /// view shows them.
    pub levels: Option<LevelsView>,
    /// What the run trains on when that is not the image (a folder), once it is built.
    pub trains_on: Option<String>,
    /// The files it trains on, with their hashes, for provenance.
    pub data_files: Vec<crate::provenance::DatasetFile>,
    /// Seen through a mask with validation: the step whose validation PSNR is best so far,
    /// as a picture.
    pub best_picture: Option<ShownPicture>,
    /// Seen through a mask that refits: the refit on every observed pixel once the run has
    /// finished.
    pub refit: Option<RefitView>,
    /// When recent steps arrived, for the steps-per-second figure.
    arrivals: VecDeque<Instant>,
}

/// A picture that arrived, with its texture.
pub struct ShownPicture {
    pub picture: Picture,
    pub texture: TextureHandle,
}

impl ShownPicture {
    fn new(ctx: &egui::Context, name: &str, picture: Picture) -> Self {
        let texture = ctx.load_texture(name, picture.image.clone(), TextureOptions::NEAREST);
        ShownPicture { picture, texture }
    }
}

/// Where a run's refit on every observed pixel stands, as the UI heard it.
pub enum RefitView {
    Running {
        step: usize,
        of: usize,
    },
    Done {
        shown: ShownPicture,
        scores: crate::sparse::SetScores,
    },
    Failed(String),
}

impl MethodRun {
    fn new(info: &'static MethodInfo, run_id: u64) -> Self {
        MethodRun {
            info,
            run_id,
            total_steps: None,
            cells: BTreeMap::new(),
            latest: None,
            live: None,
            status: RunStatus::Starting,
            compute_secs: 0.0,
            iterates: None,
            levels: None,
            trains_on: None,
            data_files: Vec::new(),
            best_picture: None,
            refit: None,
            arrivals: VecDeque::new(),
        }
    }

    /// The device's picture, when it is of a newer step than the last downloaded image.
    fn newer_live(&self) -> Option<(usize, egui::TextureId)> {
        self.live
            .filter(|(step, _)| self.latest.as_ref().is_none_or(|l| l.step < *step))
    }

    /// The texture showing the newest image: the device's picture when it is newer than the
    /// last downloaded one.
    pub fn shown_texture(&self) -> Option<egui::TextureId> {
        match self.newer_live() {
            Some((_, id)) => Some(id),
            None => self.latest.as_ref().map(|l| l.texture.id()),
        }
    }

    /// Whether [`Self::shown_texture`] is the device's picture (written on the GPU, never
    /// downloaded) rather than the last downloaded image.
    pub fn shown_from_the_device(&self) -> bool {
        self.newer_live().is_some()
    }

    /// The step of [`Self::shown_texture`]'s image.
    pub fn shown_step(&self) -> Option<usize> {
        match self.newer_live() {
            Some((step, _)) => Some(step),
            None => self.latest.as_ref().map(|l| l.step),
        }
    }

    /// Steps per second over the last few seconds of arrivals (`None` before two arrived).
    pub fn steps_per_second(&self) -> Option<f64> {
        let (first, last) = (self.arrivals.front()?, self.arrivals.back()?);
        let span = last.duration_since(*first).as_secs_f64();
        (self.arrivals.len() >= 2 && span > 0.0)
            .then(|| (self.arrivals.len() - 1) as f64 / span)
            .or_else(|| {
                // One step so far, or all at once: its compute time is the best guess.
                let secs = self.cells.values().next_back()?.step_secs;
                (secs > 0.0).then(|| 1.0 / secs)
            })
    }

    /// The steps a resumed run took before its checkpoint, as cells without pictures.
    fn fill_history(&mut self, history: &[crate::checkpoint::HistoryStep]) {
        let mut previous = 0.0;
        for step in history {
            let step_secs = step.seconds - previous;
            previous = step.seconds;
            self.cells.insert(
                step.report.step,
                StepCell {
                    report: step.report.clone(),
                    step_secs,
                    thumbnail: None,
                    thumbnail_image: None,
                },
            );
        }
        self.compute_secs += previous;
    }

    /// Whether it trains (its steps carry a loss): those get an ETA.
    pub fn is_trained(&self) -> bool {
        self.cells
            .values()
            .next_back()
            .is_some_and(|c| c.report.loss.is_some())
    }

    /// Time left at the current rate, for a trained method still running.
    pub fn eta(&self) -> Option<Duration> {
        if !self.is_trained() || self.is_settled() {
            return None;
        }
        let left = self.total_steps?.saturating_sub(self.steps_done());
        let rate = self.steps_per_second()?;
        Some(Duration::from_secs_f64(left as f64 / rate))
    }

    pub fn steps_done(&self) -> usize {
        self.cells.keys().next_back().copied().unwrap_or(0)
    }

    pub fn latest_psnr_db(&self) -> Option<f64> {
        self.cells.values().next_back().map(|c| c.report.psnr_db)
    }

    /// Whether the method has stopped for good in this run (finished, diverged or failed).
    pub fn is_settled(&self) -> bool {
        !matches!(
            self.status,
            RunStatus::Starting | RunStatus::Waiting(_) | RunStatus::Running
        ) && !matches!(self.refit, Some(RefitView::Running { .. }))
    }
}

/// A message for the user, shown until dismissed.
pub struct Notice {
    pub id: u64,
    pub text: String,
}

/// Feature maps received for the inspect view.
pub struct FeatureView {
    pub request: FeatureRequest,
    pub total_channels: usize,
    /// (caption, texture, the picture it shows) per channel.
    pub maps: Vec<(String, TextureHandle, Arc<ColorImage>)>,
}

/// The window's renderer, when the compute shares its device: pictures on the device are
/// registered with it as native textures, each once, and freed when the worker drops them.
pub struct NativeTextures {
    render_state: eframe::egui_wgpu::RenderState,
    registered: Vec<(Arc<crate::compute::gpu::DisplayTexture>, egui::TextureId)>,
}

impl NativeTextures {
    pub fn new(render_state: eframe::egui_wgpu::RenderState) -> Self {
        NativeTextures {
            render_state,
            registered: Vec::new(),
        }
    }

    /// The texture id egui draws `picture` with.
    fn id_for(&mut self, picture: &Arc<crate::compute::gpu::DisplayTexture>) -> egui::TextureId {
        if let Some((_, id)) = self
            .registered
            .iter()
            .find(|(known, _)| Arc::ptr_eq(known, picture))
        {
            return *id;
        }
        let mut renderer = self.render_state.renderer.write();
        // Pictures only this list still holds were replaced (a new size) or their method went.
        self.registered.retain(|(known, id)| {
            let alive = Arc::strong_count(known) > 1;
            if !alive {
                renderer.free_texture(id);
            }
            alive
        });
        let id = renderer.register_native_texture(
            &self.render_state.device,
            &picture.view,
            eframe::wgpu::FilterMode::Nearest,
        );
        self.registered.push((Arc::clone(picture), id));
        id
    }
}

#[derive(Default)]
pub struct Model {
    /// Set when the window renders on the compute's device.
    pub native: Option<NativeTextures>,
    pub backend: Option<(BackendKind, String)>,
    pub target: Option<TargetView>,
    /// Runs of the selected methods, in registry order.
    pub runs: Vec<MethodRun>,
    pub notices: Vec<Notice>,
    next_notice_id: u64,
    pub features: Option<FeatureView>,
    /// Whether the worker is playing, as it last said.
    pub playing: bool,
    /// Arrival times of step frames in the last few seconds, for steps per second.
    step_arrivals: VecDeque<Instant>,
    /// Wall time spent playing with some method still running, since the last image or reset.
    pub elapsed: Duration,
    last_ingest: Option<Instant>,
    /// Recent UI frame times, milliseconds.
    frame_times_ms: VecDeque<f32>,
    /// How many frames were taken from the slot in total (tests watch this).
    pub frames_received: u64,
    /// The step the worker is computing, as of this frame.
    pub in_flight: Option<InFlight>,
    /// Why the compute thread ended, once it has: the window offers a restart.
    pub compute_stopped: Option<String>,
    /// Warnings that are not errors (a partly decoded file, the GPU lost), shown until
    /// dismissed like notices.
    pub warnings: Vec<Notice>,
    /// The folder the methods that can train on one train on, as the worker last said.
    pub folder: Option<std::path::PathBuf>,
    /// The zoom view's latest region, once one arrived.
    pub zoom: Option<ZoomView>,
    /// A file the worker wrote on request (a checkpoint), for the app's "saved" banner.
    pub saved_by_worker: Option<std::path::PathBuf>,
    /// A method the worker resumed from a checkpoint, with the checkpoint's parameters, for
    /// the app to put into its settings (so that publishing them restarts nothing).
    pub resumed: Option<(&'static str, crate::methods::ParamValues)>,
}

/// Adds a notice, keeping the last few only: a flood of bad drops must not grow the window.
fn push_notice(list: &mut Vec<Notice>, id: u64, text: String) {
    list.push(Notice { id, text });
    if list.len() > 5 {
        list.remove(0);
    }
}

impl Model {
    /// Keeps `runs` in step with the selection (registry order); new entries wait for frames.
    pub fn set_selection(&mut self, selected: &[&'static str]) {
        let mut runs = Vec::new();
        for info in methods::registry() {
            if !selected.contains(&info.name) {
                continue;
            }
            match self.runs.iter().position(|r| r.info.name == info.name) {
                Some(index) => runs.push(self.runs.swap_remove(index)),
                None => runs.push(MethodRun::new(info, 0)),
            }
        }
        self.runs = runs;
    }

    pub fn run(&self, method: &str) -> Option<&MethodRun> {
        self.runs.iter().find(|r| r.info.name == method)
    }

    fn run_mut(&mut self, method: &str) -> Option<&mut MethodRun> {
        self.runs.iter_mut().find(|r| r.info.name == method)
    }

    pub fn notify(&mut self, text: impl Into<String>) {
        self.next_notice_id += 1;
        push_notice(&mut self.notices, self.next_notice_id, text.into());
    }

    /// A warning, shown until dismissed (the last few only, like notices).
    pub fn warn(&mut self, text: impl Into<String>) {
        self.next_notice_id += 1;
        push_notice(&mut self.warnings, self.next_notice_id, text.into());
    }

    pub fn dismiss(&mut self, id: u64) {
        self.notices.retain(|n| n.id != id);
        self.warnings.retain(|n| n.id != id);
    }

    pub(crate) fn apply_zoom(&mut self, ctx: &egui::Context, frame: ZoomFrame) {
        let images = [frame.model, frame.bicubic, frame.lanczos];
        match &mut self.zoom {
            Some(view) => {
                for (texture, image) in view.textures.iter_mut().zip(images) {
                    texture.set(image, TextureOptions::NEAREST);
                }
                view.request = frame.request;
                view.run_id = frame.run_id;
                view.step = frame.step;
                view.model_ms = frame.model_ms;
            }
            None => {
                let [model, bicubic, lanczos] = images;
                let load =
                    |name: &str, image| ctx.load_texture(name, image, TextureOptions::NEAREST);
                self.zoom = Some(ZoomView {
                    request: frame.request,
                    run_id: frame.run_id,
                    step: frame.step,
                    model_ms: frame.model_ms,
                    textures: [
                        load("zoom/model", model),
                        load("zoom/bicubic", bicubic),
                        load("zoom/lanczos", lanczos),
                    ],
                });
            }
        }
    }

    /// Takes what the worker has sent: messages for at most [`DRAIN_BUDGET`], then every waiting
    /// frame. Frames of runs older than the one a method is known to be on are dropped.
    pub fn ingest(&mut self, ctx: &egui::Context, worker: &WorkerHandle) {
        let started = Instant::now();
        while started.elapsed() < DRAIN_BUDGET {
            let Some(message) = worker.try_message() else {
                break;
            };
            self.apply_message(ctx, message);
        }
        for frame in worker.take_frames() {
            self.apply_frame(ctx, frame);
        }
        for (method, run_id, picture) in worker.take_best() {
            if let Some(run) = self.current_run(method, run_id) {
                let name = format!("{method}/best-validation");
                match &mut run.best_picture {
                    Some(shown) => {
                        shown
                            .texture
                            .set(picture.image.clone(), TextureOptions::NEAREST);
                        shown.picture = picture;
                    }
                    None => run.best_picture = Some(ShownPicture::new(ctx, &name, picture)),
                }
            }
        }
        for (method, run_id, picture) in worker.take_downloads() {
            self.apply_download(ctx, method, run_id, picture);
        }
        if let Some(iterates) = worker.take_iterates() {
            self.apply_iterates(ctx, iterates);
        }
        if let Some(levels) = worker.take_levels() {
            self.apply_levels(ctx, levels);
        }
        if let Some(zoom) = worker.take_zoom() {
            self.apply_zoom(ctx, zoom);
        }
        self.in_flight = worker.in_flight();
        self.compute_stopped = worker.stopped();
        let now = Instant::now();
        let busy = self.playing && self.runs.iter().any(|r| !r.is_settled());
        if let (true, Some(last)) = (busy, self.last_ingest) {
            self.elapsed += now - last;
        }
        self.last_ingest = Some(now);
        let window = Duration::from_secs(10);
        while self
            .step_arrivals
            .front()
            .is_some_and(|t| t.elapsed() > window)
        {
            self.step_arrivals.pop_front();
        }
    }

    pub fn apply_message(&mut self, ctx: &egui::Context, message: Message) {
        match message {
            Message::Backend { kind, adapter } => self.backend = Some((kind, adapter)),
            Message::TargetLoaded(target) => {
                let texture =
                    ctx.load_texture("target", Arc::clone(&target.image), TextureOptions::NEAREST);
                let observation = (target.observation)
                    .map(|observation| ObservationView::new(ctx, observation, &target.pixels));
                self.target = Some(TargetView {
                    name: target.name,
                    size: target.size,
                    pixels: target.pixels,
                    texture,
                    image: target.image,
                    origin: target.origin,
                    observation,
                });
                self.features = None;
                self.elapsed = Duration::ZERO;
            }
            Message::Started { method, run_id } => {
                if let Some(run) = self.run_mut(method).filter(|r| run_id > r.run_id) {
                    *run = MethodRun::new(run.info, run_id);
                }
                if self
                    .features
                    .as_ref()
                    .is_some_and(|f| f.request.method == method)
                {
                    self.features = None;
                }
            }
            Message::Built {
                method,
                run_id,
                total_steps,
                trains_on,
                data_files,
            } => {
                if let Some(run) = self.current_run(method, run_id) {
                    run.total_steps = Some(total_steps);
                    run.trains_on = trains_on;
                    run.data_files = data_files;
                    if matches!(run.status, RunStatus::Starting | RunStatus::Waiting(_)) {
                        run.status = RunStatus::Running;
                    }
                }
            }
            Message::Waiting {
                method,
                run_id,
                what,
            } => {
                if let Some(run) = self.current_run(method, run_id) {
                    run.status = RunStatus::Waiting(what);
                }
            }
            Message::Stopped {
                method,
                run_id,
                reason,
            } => {
                if let Some(run) = self.current_run(method, run_id) {
                    run.status = match reason {
                        StopReason::Diverged { step, why } => RunStatus::Diverged { step, why },
                        StopReason::Failed(error) => RunStatus::Failed(error),
                    };
                }
            }
            Message::Refit {
                method,
                run_id,
                step,
                of,
                outcome,
            } => {
                if let Some(run) = self.current_run(method, run_id) {
                    run.refit = Some(match outcome {
                        None => RefitView::Running { step, of },
                        Some(Ok((picture, scores))) => RefitView::Done {
                            shown: ShownPicture::new(ctx, &format!("{method}/refit"), picture),
                            scores,
                        },
                        Some(Err(why)) => RefitView::Failed(why),
                    });
                }
            }
            Message::StoppedEarly {
                method,
                run_id,
                step,
            } => {
                if let Some(run) = self.current_run(method, run_id) {
                    run.status = RunStatus::Done;
                    run.total_steps = Some(step);
                }
            }
            Message::Warning(text) => self.warn(text),
            Message::Playing(playing) => self.playing = playing,
            Message::Folder(folder) => self.folder = folder,
            Message::Notice(text) => self.notify(text),
            Message::Features(maps) => self.apply_features(ctx, maps),
            Message::CheckpointSaved(path) => self.saved_by_worker = Some(path),
            Message::Resumed {
                method,
                run_id,
                params,
                history,
            } => {
                if let Some(run) = self.current_run(method, run_id) {
                    run.fill_history(&history);
                }
                self.resumed = Some((method, params));
            }
        }
    }

    /// The run of `method` if `run_id` is current; a newer id means a restart whose message
    /// has not been read yet, so the run is reset here.
    fn current_run(&mut self, method: &str, run_id: u64) -> Option<&mut MethodRun> {
        let run = self.run_mut(method)?;
        if run_id > run.run_id {
            *run = MethodRun::new(run.info, run_id);
        }
        (run.run_id == run_id).then_some(run)
    }

    pub fn apply_frame(&mut self, ctx: &egui::Context, frame: Frame) {
        let live = frame
            .live
            .as_ref()
            .zip(self.native.as_mut())
            .map(|(picture, native)| native.id_for(picture));
        let Some(run) = self.current_run(frame.method, frame.run_id) else {
            return; // stale: an older run, or a method no longer selected
        };
        let step = frame.report.step;
        if let Some(id) = live
            && run.live.is_none_or(|(shown, _)| shown <= step)
        {
            run.live = Some((step, id));
        }
        let name = format!("{}/{}/{}", frame.method, frame.run_id, step);
        // Only kept steps get a grid texture; any step with an image may become the latest.
        let thumbnail_image = frame.thumbnail.filter(|_| frame.kept);
        let thumbnail = thumbnail_image.as_ref().map(|image| {
            ctx.load_texture(
                format!("{name}/thumb"),
                Arc::clone(image),
                TextureOptions::NEAREST,
            )
        });
        if let (Some(image), Some(pixels)) = (frame.image, frame.pixels)
            && run.latest.as_ref().is_none_or(|l| l.step <= step)
        {
            let texture = match (&thumbnail, &thumbnail_image) {
                (Some(texture), Some(small)) if Arc::ptr_eq(small, &image) => texture.clone(),
                _ => ctx.load_texture(
                    format!("{}/{}/latest", frame.method, frame.run_id),
                    Arc::clone(&image),
                    TextureOptions::NEAREST,
                ),
            };
            run.latest = Some(LatestOutput {
                step,
                texture,
                image,
                pixels,
            });
        }
        run.total_steps = Some(frame.total_steps);
        run.compute_secs += frame.step_secs;
        run.cells.insert(
            step,
            StepCell {
                report: frame.report,
                step_secs: frame.step_secs,
                thumbnail,
                thumbnail_image,
            },
        );
        let now = Instant::now();
        run.arrivals.push_back(now);
        while run.arrivals.len() > 2
            && run
                .arrivals
                .front()
                .is_some_and(|t| now.duration_since(*t) > RATE_WINDOW)
        {
            run.arrivals.pop_front();
        }
        if matches!(
            run.status,
            RunStatus::Starting | RunStatus::Waiting(_) | RunStatus::Running
        ) {
            run.status = if run.steps_done() >= frame.total_steps {
                RunStatus::Done
            } else {
                RunStatus::Running
            };
        }
        self.frames_received += 1;
        self.step_arrivals.push_back(Instant::now());
    }

    /// An image of an already reported step, downloaded for the host: it becomes the latest
    /// output unless a newer one is there.
    fn apply_download(
        &mut self,
        ctx: &egui::Context,
        method: &'static str,
        run_id: u64,
        picture: crate::app::protocol::Picture,
    ) {
        let Some(run) = self.current_run(method, run_id) else {
            return;
        };
        if run.latest.as_ref().is_some_and(|l| l.step > picture.step) {
            return;
        }
        let texture = ctx.load_texture(
            format!("{method}/{run_id}/latest"),
            Arc::clone(&picture.image),
            TextureOptions::NEAREST,
        );
        run.latest = Some(LatestOutput {
            step: picture.step,
            texture,
            image: picture.image,
            pixels: picture.pixels,
        });
    }

    /// Shows newly arrived iterates: the textures of the previous ones are overwritten in
    /// place, so a run streaming them holds K textures, not K per arrival.
    pub fn apply_iterates(&mut self, ctx: &egui::Context, iterates: Iterates) {
        let Some(run) = self.current_run(iterates.method, iterates.run_id) else {
            return;
        };
        if run
            .iterates
            .as_ref()
            .is_some_and(|view| view.step > iterates.step)
        {
            return;
        }
        let count = iterates.images.len();
        match &mut run.iterates {
            Some(view) if view.cells.len() == count => {
                for (cell, (image, psnr_db)) in view.cells.iter_mut().zip(iterates.images) {
                    cell.texture
                        .set(Arc::clone(&image), TextureOptions::NEAREST);
                    cell.image = image;
                    cell.psnr_db = psnr_db;
                }
                view.step = iterates.step;
            }
            _ => {
                let cells = iterates
                    .images
                    .into_iter()
                    .enumerate()
                    .map(|(k, (image, psnr_db))| IterateCell {
                        texture: ctx.load_texture(
                            format!("{}/{}/iterate/{k}", iterates.method, iterates.run_id),
                            Arc::clone(&image),
                            TextureOptions::NEAREST,
                        ),
                        image,
                        psnr_db,
                    })
                    .collect();
                run.iterates = Some(IteratesView {
                    step: iterates.step,
                    cells,
                });
            }
        }
    }

    /// Shows newly arrived levels, overwriting the previous ones' textures in place (by level
    /// and kind), so a run streaming them holds one set, not one per arrival.
    pub fn apply_levels(&mut self, ctx: &egui::Context, levels: Levels) {
        let Some(run) = self.current_run(levels.method, levels.run_id) else {
            return; // stale: an older run, or a method no longer selected
        };
        if run
            .levels
            .as_ref()
            .is_some_and(|view| view.step > levels.step)
        {
            return;
        }
        let mut reuse = TextureReuse {
            ctx,
            prefix: format!("{}/{}/levels", levels.method, levels.run_id),
            previous: run
                .levels
                .take()
                .map(|view| view.textures)
                .unwrap_or_default(),
            used: HashMap::new(),
        };
        let views = levels
            .levels
            .into_iter()
            .map(|level| {
                let side = level.side;
                LevelView {
                    side,
                    truth: reuse.texture(format!("{side}/truth"), Arc::clone(&level.truth)),
                    truth_image: level.truth,
                    rollouts: level
                        .rollouts
                        .into_iter()
                        .enumerate()
                        .map(|(i, picture)| reuse.cell(format!("{side}/rollout/{i}"), picture))
                        .collect(),
                    teacher_forced: level
                        .teacher_forced
                        .map(|p| reuse.cell(format!("{side}/teacher-forced"), p)),
                    nearest: level
                        .nearest
                        .map(|p| reuse.cell(format!("{side}/nearest"), p)),
                    bicubic: level
                        .bicubic
                        .map(|p| reuse.cell(format!("{side}/bicubic"), p)),
                    truth_bands: level
                        .truth_bands
                        .map(|b| reuse.bands(&format!("{side}/truth-bands"), b)),
                    teacher_forced_bands: level
                        .teacher_forced_bands
                        .map(|b| reuse.bands(&format!("{side}/teacher-forced-bands"), b)),
                }
            })
            .collect();
        // Textures of levels or kinds this arrival lacks are dropped with `previous`.
        run.levels = Some(LevelsView {
            step: levels.step,
            levels: views,
            textures: reuse.used,
        });
    }

    fn apply_features(&mut self, ctx: &egui::Context, maps: FeatureMaps) {
        let current = self
            .run(maps.request.method)
            .is_some_and(|r| r.run_id == maps.request.run_id);
        if !current {
            return;
        }
        let textures = maps
            .maps
            .into_iter()
            .enumerate()
            .map(|(i, (label, image))| {
                let texture = ctx.load_texture(
                    format!("feature/{i}"),
                    Arc::clone(&image),
                    TextureOptions::NEAREST,
                );
                (label, texture, image)
            })
            .collect();
        self.features = Some(FeatureView {
            request: maps.request,
            total_channels: maps.total_channels,
            maps: textures,
        });
    }

    /// Steps that arrived per second, over the last ten seconds.
    pub fn steps_per_second(&self) -> f64 {
        match self.step_arrivals.front() {
            Some(first) => {
                let span = first.elapsed().as_secs_f64().max(1.0);
                self.step_arrivals.len() as f64 / span
            }
            None => 0.0,
        }
    }

    /// Starts the elapsed clock again (reset).
    pub fn restart_clock(&mut self) {
        self.elapsed = Duration::ZERO;
    }

    pub fn total_steps_done(&self) -> usize {
        self.runs.iter().map(|r| r.steps_done()).sum()
    }

    pub fn compute_secs(&self) -> f64 {
        self.runs.iter().map(|r| r.compute_secs).sum()
    }

    pub fn record_frame_time(&mut self, milliseconds: f32) {
        if self.frame_times_ms.len() == FRAME_TIME_SAMPLES {
            self.frame_times_ms.pop_front();
        }
        self.frame_times_ms.push_back(milliseconds);
    }

    /// The `quantile` (0–1) of recent UI frame times in milliseconds.
    pub fn frame_time_quantile_ms(&self, quantile: f64) -> Option<f32> {
        let mut sorted: Vec<f32> = self.frame_times_ms.iter().copied().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f32::total_cmp);
        let index = ((sorted.len() - 1) as f64 * quantile).round() as usize;
        Some(sorted[index])
    }

    /// Every selected method has reached `steps` steps or stopped for good.
    pub fn all_reached(&self, steps: usize) -> bool {
        self.target.is_some()
            && self
                .runs
                .iter()
                .all(|r| r.is_settled() || r.steps_done() >= steps.max(1))
    }
}
