//! The compute thread: it owns a [`Session`] (the backend, the methods, their cache), converges
//! to what the UI wants, lets the session's time-fair scheduler pick who steps, and hands every
//! step's frame to the UI (see [`super::protocol`] for the lanes).
//!
//! A small relay thread stands between the UI's command channel and the worker: it forwards
//! every command, and first sets the cancellation token of the step in flight when the command
//! makes that step unwanted (a reset, a new image, a pause, its own parameters changed, the
//! window closed). So a step of several seconds gives way within a fraction of a second, while
//! a slider that belongs to another method leaves it alone.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError, bounded};
use image::DynamicImage;

use super::checkpoints::data_mismatch;
use super::features::FeatureWork;
use super::levels::level_frames;
use super::protocol::{
    CheckpointRequest, Command, Desired, Frame, FrameSlot, ImageSource, InFlight, InFlightCell,
    Iterates, IteratesSlot, LIVE_IMAGE_INTERVAL, Levels, LevelsSlot, Message, Picture,
    THUMBNAIL_MAX_SIDE, TargetFrame, ZoomFrame, ZoomRequest, ZoomSlot,
};
use crate::checkpoint::{self, Checkpoint};
use crate::compute::{BackendChoice, BackendSource, CancelToken, create_backend};
use crate::imaging::{color_image_from_rgb, downsample, host_mse};
use crate::methods::{self, LevelImages, MethodCache, ParamValues, StepReport};
use crate::output::Existing;
use crate::provenance::{ImageOrigin, Provenance};
use crate::rng::RngKind;
use crate::session::{AdvanceResult, RefitState, Restarted, Session, SlotState};
use crate::sparse::zoom::{Kernel, ZoomRegion};
use crate::target::{Decoded, Fit, SAMPLE_NAME, SAMPLE_PNG, Target, decode_bytes, load_image};

/// Room for discrete commands; the UI only sends on user actions.
const COMMAND_CAPACITY: usize = 256;
/// Room for messages; the worker sends a handful per user action.
const MESSAGE_CAPACITY: usize = 1024;
/// How often the worker looks again while a build waits for a background computation.
const WAITING_POLL: Duration = Duration::from_millis(50);
/// While its method trains, the zoom view's region is evaluated again at most this often.
const ZOOM_REFRESH: Duration = Duration::from_millis(250);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value behind these locks is replaced whole; a panic elsewhere leaves it usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a command did not reach the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The queue is full (the worker is far behind); try again.
    Busy,
    /// The compute thread has ended, for this reason.
    Stopped(String),
}

/// The UI's end of the worker.
pub struct WorkerHandle {
    commands: Sender<Command>,
    messages: Receiver<Message>,
    frames: Arc<FrameSlot>,
    iterates: Arc<IteratesSlot>,
    levels: Arc<LevelsSlot>,
    zoom: Arc<ZoomSlot>,
    desired: Arc<Mutex<Desired>>,
    in_flight: InFlightCell,
    /// Set when the compute thread ends on its own (a bug): why.
    exit: Arc<Mutex<Option<String>>>,
}

impl WorkerHandle {
    /// A sender for threads of the UI that outlive a frame (the file dialog).
    pub fn command_sender(&self) -> Sender<Command> {
        self.commands.clone()
    }

    /// Sends a command without waiting.
    pub fn send(&self, command: Command) -> Result<(), SendError> {
        if let Some(reason) = self.stopped() {
            return Err(SendError::Stopped(reason));
        }
        match self.commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SendError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(SendError::Stopped(
                self.stopped()
                    .unwrap_or_else(|| "the compute thread has ended".into()),
            )),
        }
    }

    /// Publishes a new desired configuration; the worker picks it up at its next step boundary.
    pub fn set_desired(&self, desired: Desired) {
        let mut current = lock(&self.desired);
        if *current != desired {
            *current = desired;
            drop(current);
            // A full channel means the worker has commands to drain anyway, and it syncs then.
            let _ = self.commands.try_send(Command::Sync);
        }
    }

    /// The next message, if one is waiting.
    pub fn try_message(&self) -> Option<Message> {
        self.messages.try_recv().ok()
    }

    /// Waits up to `timeout` for the next message (tests and the bench).
    pub fn message_timeout(&self, timeout: Duration) -> Option<Message> {
        self.messages.recv_timeout(timeout).ok()
    }

    /// Every frame waiting, in (method, step) order.
    pub fn take_frames(&self) -> Vec<Frame> {
        self.frames.take_all()
    }

    /// Each method's newest best-validation picture not taken yet.
    pub fn take_best(&self) -> Vec<(&'static str, u64, Picture)> {
        self.frames.best.take()
    }

    /// Each method's image downloaded for the host while its run was idle, not taken yet.
    pub fn take_downloads(&self) -> Vec<(&'static str, u64, Picture)> {
        self.frames.downloads.take()
    }

    pub fn take_iterates(&self) -> Option<Iterates> {
        self.iterates.take()
    }

    pub fn take_levels(&self) -> Option<Levels> {
        self.levels.take()
    }

    pub fn take_zoom(&self) -> Option<ZoomFrame> {
        self.zoom.take()
    }

    /// The step being computed now, if any.
    pub fn in_flight(&self) -> Option<InFlight> {
        lock(&self.in_flight).clone()
    }

    /// Why the compute thread ended, if it has.
    pub fn stopped(&self) -> Option<String> {
        lock(&self.exit).clone()
    }
}

/// Starts the compute thread (and its command relay). It runs until the handle is dropped.
pub fn spawn(
    backend: impl Into<BackendSource>,
    desired: Desired,
    repaint: egui::Context,
) -> WorkerHandle {
    let backend_source = backend.into();
    let (command_tx, command_rx) = bounded::<Command>(COMMAND_CAPACITY);
    let (relayed_tx, relayed_rx) = bounded::<Command>(COMMAND_CAPACITY);
    let (message_tx, message_rx) = bounded(MESSAGE_CAPACITY);
    let handle = WorkerHandle {
        commands: command_tx,
        messages: message_rx,
        frames: Arc::new(FrameSlot::default()),
        iterates: Arc::new(IteratesSlot::default()),
        levels: Arc::new(LevelsSlot::default()),
        zoom: Arc::new(ZoomSlot::default()),
        desired: Arc::new(Mutex::new(desired)),
        in_flight: Arc::default(),
        exit: Arc::default(),
    };
    let in_flight = Arc::clone(&handle.in_flight);
    let relay_desired = Arc::clone(&handle.desired);
    let exit = Arc::clone(&handle.exit);
    let relay = std::thread::Builder::new()
        .name("inrlab-relay".into())
        .spawn(move || relay_commands(command_rx, relayed_tx, relay_desired, in_flight));
    let frames = Arc::clone(&handle.frames);
    let iterates = Arc::clone(&handle.iterates);
    let levels = Arc::clone(&handle.levels);
    let zoom = Arc::clone(&handle.zoom);
    let desired = Arc::clone(&handle.desired);
    let in_flight = Arc::clone(&handle.in_flight);
    let worker_exit = Arc::clone(&handle.exit);
    let spawned = std::thread::Builder::new()
        .name("inrlab-compute".into())
        .spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut worker = Worker::new(
                    backend_source,
                    relayed_rx,
                    message_tx,
                    frames,
                    iterates,
                    levels,
                    zoom,
                    desired,
                    in_flight,
                    repaint.clone(),
                );
                worker.run();
            }));
            if let Err(panic) = outcome {
                *lock(&worker_exit) = Some(format!(
                    "the compute thread panicked: {}",
                    crate::panic_message(panic.as_ref())
                ));
                repaint.request_repaint();
            }
        });
    if let Err(error) = relay.and(spawned) {
        *lock(&exit) = Some(format!("cannot start the compute thread: {error}"));
    }
    handle
}

/// Forwards the UI's commands to the worker, cancelling the step in flight first when a
/// command makes it unwanted. Ends when either side is gone.
fn relay_commands(
    commands: Receiver<Command>,
    worker: Sender<Command>,
    desired: Arc<Mutex<Desired>>,
    in_flight: InFlightCell,
) {
    let cancel_if = |abandoned: &dyn Fn(&InFlight) -> bool| {
        if let Some(step) = lock(&in_flight).as_ref()
            && abandoned(step)
        {
            step.cancel.cancel();
        }
    };
    loop {
        let Ok(command) = commands.recv() else {
            // The window closed: the step in flight is not wanted, and dropping `worker` ends
            // the worker's loop once it returns.
            cancel_if(&|_| true);
            return;
        };
        if command.cancels_any_step() {
            cancel_if(&|_| true);
        } else if matches!(command, Command::Sync) {
            let wanted = lock(&desired).clone();
            cancel_if(&|step| step.is_abandoned_by(&wanted));
        } else if matches!(command, Command::TrainOnFolder(_)) {
            // Only the runs that train on a folder restart.
            cancel_if(&|step| methods::find(step.method).is_ok_and(|info| info.trains_on_folder));
        } else if let Command::ResumeFrom(checkpoint) = &command {
            // Its run is about to be replaced, if the checkpoint fits.
            cancel_if(&|step| step.method == checkpoint.method());
        }
        if worker.send(command).is_err() {
            return;
        }
    }
}

struct Worker {
    session: Session<'static>,
    commands: Receiver<Command>,
    messages: Sender<Message>,
    frames: Arc<FrameSlot>,
    iterates: Arc<IteratesSlot>,
    levels: Arc<LevelsSlot>,
    desired: Arc<Mutex<Desired>>,
    in_flight: InFlightCell,
    repaint: egui::Context,
    /// The desired configuration last applied.
    applied: Option<Desired>,
    /// The decoded image with its name and origin (content hash) for the files that record it.
    decoded: Option<(String, DynamicImage, ImageOrigin)>,
    playing: bool,
    /// Methods still owed a step of a single-step request.
    single_steps: BTreeSet<&'static str>,
    /// Per method, of its current run: when its image and its levels were last downloaded, and
    /// the steps whose iterates and levels were last sent.
    readbacks: BTreeMap<&'static str, ReadbackState>,
    features: FeatureWork,
    zoom: Arc<ZoomSlot>,
    /// What the zoom view was last sent: the request, the run and step it showed, and when.
    zoom_rendered: Option<(ZoomRequest, u64, usize, Instant)>,
    /// The bicubic and Lanczos pictures of the last zoomed region and the run it was for: they
    /// depend on the region and the fitted image only, so a new step of the same run reuses them.
    zoom_interpolated: Option<(ZoomRegion, u64, [Arc<egui::ColorImage>; 2])>,
    /// The UI has gone: stop as soon as the loop looks.
    closing: bool,
    /// Whether the window renders on the backend's device, so frames between kept steps are
    /// shown from it ([`Backend::present`]) instead of downloaded.
    display_on_device: bool,
    /// Each method's picture on the device, rewritten at every presented step.
    pictures: BTreeMap<&'static str, Option<Arc<crate::compute::gpu::DisplayTexture>>>,
}

#[derive(Clone, Copy, Default)]
struct ReadbackState {
    last_image_at: Option<Instant>,
    /// The step of the image last downloaded and sent.
    image_step: Option<usize>,
    /// The step of the picture last shown: downloaded, or presented on the device.
    shown_step: Option<usize>,
    iterates_step: Option<usize>,
    last_levels_at: Option<Instant>,
    levels_step: Option<usize>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    fn new(
        backend_source: BackendSource,
        commands: Receiver<Command>,
        messages: Sender<Message>,
        frames: Arc<FrameSlot>,
        iterates: Arc<IteratesSlot>,
        levels: Arc<LevelsSlot>,
        zoom: Arc<ZoomSlot>,
        desired: Arc<Mutex<Desired>>,
        in_flight: InFlightCell,
        repaint: egui::Context,
    ) -> Self {
        let mut notices = Vec::new();
        let mut display_on_device = backend_source.shares_the_window_device();
        let backend = match backend_source.create() {
            Ok(backend) => backend,
            Err(error) => {
                display_on_device = false;
                let asked = match &backend_source {
                    BackendSource::Choice(choice) => format!("{choice:?} backend"),
                    BackendSource::Shared(_) => "the window's GPU device".to_owned(),
                };
                notices.push(format!("{asked} unavailable ({error:#}); using the CPU"));
                create_backend(BackendChoice::Cpu).expect("the CPU backend always exists")
            }
        };
        let worker = Worker {
            session: Session::new(backend, MethodCache::default(), RngKind::Numpy),
            commands,
            messages,
            frames,
            iterates,
            levels,
            zoom,
            zoom_rendered: None,
            zoom_interpolated: None,
            desired,
            in_flight,
            repaint,
            applied: None,
            decoded: None,
            playing: false,
            single_steps: BTreeSet::new(),
            readbacks: BTreeMap::new(),
            features: FeatureWork::default(),
            closing: false,
            display_on_device,
            pictures: BTreeMap::new(),
        };
        for notice in notices {
            worker.send(Message::Notice(notice));
        }
        worker
    }

    fn run(&mut self) {
        self.send_backend();
        loop {
            if !self.has_work() {
                // A pause that cancelled the step in flight comes straight here: before
                // sleeping, send what a view shows of a method that is not stepping.
                self.send_iterates_if_idle();
                self.send_levels_if_idle();
                self.send_images_if_idle();
                self.render_zoom_if_due();
                // Nothing to compute: sleep until the UI says something (or, while a build
                // waits for the background, look again shortly).
                let waiting = self.session.has_waiting() || self.features.is_busy();
                let command = if waiting {
                    match self.commands.recv_timeout(WAITING_POLL) {
                        Ok(command) => Some(command),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                } else {
                    match self.commands.recv() {
                        Ok(command) => Some(command),
                        Err(_) => return,
                    }
                };
                if let Some(command) = command {
                    self.handle(command);
                }
            }
            self.drain_commands();
            if self.closing {
                return;
            }
            // Nothing more is asked of a lost device.
            self.fall_back_if_device_lost();
            self.sync_desired();
            self.session.refresh_waiting();
            self.send_iterates_if_idle();
            self.send_levels_if_idle();
            self.send_images_if_idle();
            self.render_zoom_if_due();
            if self.features.is_busy() {
                self.advance_features();
            }
            if self.has_work() {
                self.step_next();
            }
        }
    }

    fn drain_commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.handle(command),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.closing = true;
                    return;
                }
            }
        }
    }

    fn send(&self, message: Message) {
        // Blocks only if the UI has stopped draining 1024 messages, i.e. it is gone or frozen.
        let _ = self.messages.send(message);
        self.repaint.request_repaint();
    }

    fn send_backend(&self) {
        let backend = self.session.backend();
        self.send(Message::Backend {
            kind: backend.kind(),
            adapter: backend.adapter_name(),
        });
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::LoadImage(source) => self.load_image(source),
            Command::TrainOnFolder(folder) => {
                let restarted = self.session.set_folder(folder.clone());
                self.send(Message::Folder(folder));
                self.announce(&restarted);
            }
            Command::Play => {
                self.playing = true;
                self.send(Message::Playing(true));
            }
            Command::Pause => {
                self.playing = false;
                self.send(Message::Playing(false));
            }
            Command::StepOnce => {
                self.sync_desired();
                let limit = self.step_limit();
                self.single_steps = self
                    .session
                    .slots()
                    .iter()
                    .filter(|s| s.is_runnable(limit))
                    .map(|s| s.info.name)
                    .collect();
            }
            Command::Reset => {
                let restarted = self.session.restart_all();
                self.announce(&restarted);
            }
            Command::Sync => self.sync_desired(),
            Command::RequestFeatures(request) => {
                let messages = self.features.request(&self.session, request);
                for message in messages {
                    self.send(message);
                }
            }
            Command::SaveCheckpoint(request) => {
                let message = match self.save_checkpoint(&request) {
                    Ok(path) => Message::CheckpointSaved(path),
                    Err(error) => Message::Notice(format!("Checkpoint not saved: {error:#}")),
                };
                self.send(message);
            }
            Command::ResumeFrom(checkpoint) => self.resume_from(&checkpoint),
            #[cfg(feature = "testing")]
            Command::CrashForTest => panic!("crash requested by a test"),
            #[cfg(feature = "testing")]
            Command::LoseDeviceForTest => self.session.backend().lose_device_for_test(),
        }
    }

    /// Writes the requested method's checkpoint under a name no file has yet.
    fn save_checkpoint(&self, request: &CheckpointRequest) -> anyhow::Result<PathBuf> {
        let name = request.method;
        let index =
            (self.session.position(name)).with_context(|| format!("{name} is not running"))?;
        let slot = self.session.slot(index);
        anyhow::ensure!(
            slot.run_id == request.run_id,
            "{name} has restarted since; try again"
        );
        let method = slot
            .method()
            .with_context(|| format!("{name} has not started yet"))?;
        let state = method
            .training_state(self.session.backend())
            .with_context(|| format!("{name} is not trained step by step"))?;
        anyhow::ensure!(state.step > 0, "{name} has not taken a step yet");
        let step = state.step;
        let history = (request.history.iter())
            .filter(|h| h.report.step <= step)
            .cloned()
            .collect();
        let Some((_, _, origin)) = &self.decoded else {
            anyhow::bail!("no image is loaded yet");
        };
        // How this run was made, from what the worker holds (the UI's settings may be ahead).
        let mut provenance = Provenance::new(
            origin.clone(),
            self.session.target().map_or(0, |t| t.size),
            Fit::Stretch,
            self.session.rng(),
            self.session.backend(),
            &[(slot.info, &slot.params)],
        )?;
        if slot.info.trains_on_folder {
            provenance.dataset = self.session.folder().map(Path::to_path_buf);
        }
        let checkpoint = Checkpoint::new(provenance, state, history)?;
        let file = checkpoint::file_name(Some(name), step);
        let path = checkpoint::free_path(&request.folder, &file);
        checkpoint.write(&path, Existing::Refuse)?;
        Ok(path)
    }

    /// Restarts the checkpoint's method from it if it fits the image or folder and working
    /// size trained on here; otherwise says why and leaves every run as it is.
    fn resume_from(&mut self, checkpoint: &Checkpoint) {
        self.sync_desired();
        let resumed = (|| -> anyhow::Result<(usize, Restarted, ParamValues)> {
            let name = checkpoint.method();
            let index =
                (self.session.position(name)).with_context(|| format!("{name} is not selected"))?;
            let (target, decoded) = (self.session.target(), self.decoded.as_ref());
            let (Some(target), Some((_, _, origin))) = (target, decoded) else {
                anyhow::bail!("no image is loaded yet");
            };
            let folder = self.session.folder();
            if let Some(why) = data_mismatch(checkpoint, origin, target.size, folder) {
                anyhow::bail!("{why}");
            }
            let params = checkpoint.params()?;
            let restarted = self.session.resume(index, params.clone(), checkpoint)?;
            Ok((index, restarted, params))
        })();
        let (index, restarted, params) = match resumed {
            Ok(resumed) => resumed,
            Err(error) => {
                self.send(Message::Notice(format!("Checkpoint refused: {error:#}")));
                return;
            }
        };
        self.announce(&[restarted]);
        let method = self.session.slot(index).method();
        let (total_steps, trains_on) =
            method.map_or((0, None), |m| (m.total_steps(), m.trains_on()));
        let data_files = method.map(|m| m.data_files()).unwrap_or_default();
        self.send(Message::Built {
            method: restarted.method,
            run_id: restarted.run_id,
            total_steps,
            trains_on,
            data_files,
        });
        self.send(Message::Resumed {
            method: restarted.method,
            run_id: restarted.run_id,
            params,
            history: checkpoint.history.clone(),
        });
    }

    fn load_image(&mut self, source: ImageSource) {
        let what = match &source {
            ImageSource::Sample => "the built-in sample".to_owned(),
            ImageSource::Path(path) => path.display().to_string(),
            ImageSource::Bytes { name, .. } => name.clone(),
        };
        let decoded = match &source {
            ImageSource::Sample => decode_bytes(SAMPLE_PNG, SAMPLE_NAME),
            ImageSource::Path(path) => load_image(path),
            ImageSource::Bytes { name, bytes } => decode_bytes(bytes, name),
        };
        let name = match &source {
            ImageSource::Sample => SAMPLE_NAME.to_owned(),
            ImageSource::Path(path) => display_name(path),
            ImageSource::Bytes { name, .. } => name.clone(),
        };
        // The hash of the bytes the image came from, for the provenance of what is saved.
        let origin = match &source {
            ImageSource::Sample => Ok(ImageOrigin::sample()),
            ImageSource::Path(path) => ImageOrigin::file(path),
            ImageSource::Bytes { name, bytes } => Ok(ImageOrigin::bytes(name, None, bytes)),
        };
        match decoded.and_then(|decoded| Ok((decoded, origin?))) {
            Ok((Decoded { image, warning }, origin)) => {
                let previous = self.decoded.replace((name, image, origin));
                if let Err(error) = self.make_target() {
                    self.decoded = previous;
                    self.send(Message::Notice(format!("{error:#}")));
                } else if let Some(warning) = warning {
                    // Shown, and on stderr as one line, since the picture looks plausible.
                    eprintln!("inrlab: warning: {warning}");
                    self.send(Message::Warning(warning));
                }
            }
            Err(error) => {
                let keeps = if self.session.target().is_some() {
                    " The previous image keeps running."
                } else {
                    ""
                };
                // The reason may end its own sentence; the notice ends it once.
                let reason = format!("{error:#}");
                let reason = reason.trim_end_matches('.');
                let text = match &source {
                    // A file's every error names it already (`target::load_image`).
                    ImageSource::Path(_) => {
                        let mut chars = reason.chars();
                        let first = chars.next().map(char::to_uppercase);
                        first.into_iter().flatten().chain(chars).collect()
                    }
                    _ => format!("Could not open {what}: {reason}"),
                };
                self.send(Message::Notice(format!("{text}.{keeps}")));
            }
        }
    }

    /// Makes the target from the decoded image at the working size and restarts everything.
    fn make_target(&mut self) -> anyhow::Result<()> {
        let Some((name, image, origin)) = &self.decoded else {
            return Ok(());
        };
        let desired = self.current_desired();
        let size = desired.working_size;
        let mut target = Target::from_image(name, image, size, Fit::Stretch)?;
        if let Some(spec) = desired.observation {
            // The baselines are interpolated here, once per mask (well under a second at 512²).
            target = target.observed_through(spec)?;
        }
        self.send(Message::TargetLoaded(TargetFrame {
            name: target.name.clone(),
            size,
            image: Arc::new(color_image_from_rgb(&target.pixels, size)),
            pixels: Arc::new(target.pixels.clone()),
            origin: origin.clone(),
            observation: target.observation.clone(),
        }));
        self.features.clear();
        let restarted = self.session.set_target(target);
        self.announce(&restarted);
        Ok(())
    }

    fn announce(&mut self, restarted: &[Restarted]) {
        for r in restarted {
            self.single_steps.remove(r.method);
            self.readbacks.remove(r.method);
            self.send(Message::Started {
                method: r.method,
                run_id: r.run_id,
            });
        }
    }

    fn current_desired(&self) -> Desired {
        lock(&self.desired).clone()
    }

    /// Converges to what the UI wants: new working size, selection, parameter values.
    fn sync_desired(&mut self) {
        let desired = self.current_desired();
        if self.applied.as_ref() == Some(&desired) {
            return;
        }
        let size_changed = self.applied.as_ref().is_some_and(|a| {
            a.working_size != desired.working_size || a.observation != desired.observation
        });
        self.applied = Some(desired.clone());
        let wanted: Vec<_> = desired
            .selected
            .iter()
            .filter_map(|&name| methods::find(name).ok())
            .map(|info| {
                let values = desired.params.get(info.name).cloned().unwrap_or_default();
                (info, values)
            })
            .collect();
        let restarted = self.session.set_selection(&wanted);
        self.announce(&restarted);
        if size_changed && let Err(error) = self.make_target() {
            self.send(Message::Notice(format!("{error:#}")));
        }
    }

    fn step_limit(&self) -> Option<usize> {
        self.applied.as_ref().and_then(|d| d.step_limit)
    }

    fn has_work(&self) -> bool {
        let limit = self.step_limit();
        self.session.target().is_some()
            && (self.playing || !self.single_steps.is_empty())
            && self.session.slots().iter().any(|s| {
                s.is_runnable(limit) && (self.playing || self.single_steps.contains(s.info.name))
            })
    }

    /// Shows step `step` of the slot's method as in flight, cancelled through `cancel` (the
    /// run's own token, or a scratch copy's).
    fn publish_in_flight(&self, index: usize, step: usize, cancel: CancelToken) {
        let slot = self.session.slot(index);
        *lock(&self.in_flight) = Some(InFlight {
            method: slot.info.name,
            run_id: slot.run_id,
            step,
            started: Instant::now(),
            params: slot.params.clone(),
            working_size: self.session.target().map_or(0, |t| t.size),
            observation: (self.session.target())
                .and_then(|t| t.observation.as_ref())
                .map(|o| o.spec.clone()),
            cancel,
        });
    }

    /// One turn of the method the scheduler picks.
    fn step_next(&mut self) {
        let limit = self.step_limit();
        let playing = self.playing;
        let owed = self.single_steps.clone();
        let Some(index) = self
            .session
            .pick(limit, |s| playing || owed.contains(s.info.name))
        else {
            self.single_steps.clear();
            return;
        };
        let slot = self.session.slot(index);
        let (name, run_id) = (slot.info.name, slot.run_id);
        let focused = self.applied.as_ref().and_then(|d| d.focused) == Some(name);
        self.publish_in_flight(index, slot.steps_done() + 1, slot.cancel.clone());
        let advance = self.session.advance(index, focused);
        *lock(&self.in_flight) = None;
        if let Some(total_steps) = advance.built {
            let method = self.session.slot(index).method();
            let trains_on = method.and_then(|m| m.trains_on());
            let data_files = method.map(|m| m.data_files()).unwrap_or_default();
            let warnings = method.map(|m| m.warnings()).unwrap_or_default();
            self.send(Message::Built {
                method: name,
                run_id,
                total_steps,
                trains_on,
                data_files,
            });
            for warning in warnings {
                self.send(Message::Warning(warning));
            }
        }
        match advance.result {
            AdvanceResult::Stepped(report) => {
                self.single_steps.remove(name);
                self.send_best_if_new(index, report.step);
                let step = report.step;
                self.publish_step(index, report, advance.secs);
                self.announce_settling(index, step);
            }
            AdvanceResult::Refit(progress) => {
                let side = self.session.target().map_or(0, |t| t.size);
                self.send(Message::Refit {
                    method: name,
                    run_id,
                    step: progress.step,
                    of: progress.of,
                    outcome: progress.outcome.map(|outcome| {
                        outcome.map(|refit| {
                            let scores = refit.scores;
                            (Picture::new(refit.step, refit.image, side), scores)
                        })
                    }),
                });
            }
            AdvanceResult::Waiting(what) => self.send(Message::Waiting {
                method: name,
                run_id,
                what,
            }),
            AdvanceResult::Cancelled => {
                // Whatever cancelled it is waiting in the queue: handle it, and if the run
                // still stands (a pause), clear its token so the step is taken again later.
                self.drain_commands();
                self.sync_desired();
                let slot = self.session.slot(index);
                if slot.run_id == run_id {
                    slot.cancel.reset();
                }
            }
            AdvanceResult::Stopped(reason) => {
                self.single_steps.remove(name);
                self.send(Message::Stopped {
                    method: name,
                    run_id,
                    reason,
                });
            }
        }
        self.fall_back_if_device_lost();
    }

    /// A run that has just finished: the UI hears of a stop before the last step (patience)
    /// and of a refit to come, so it does not show the run as done while the refit computes.
    fn announce_settling(&self, index: usize, step: usize) {
        let slot = self.session.slot(index);
        let SlotState::Finished(method) = &slot.state else {
            return;
        };
        let (method_name, run_id) = (slot.info.name, slot.run_id);
        if !method.is_done() {
            self.send(Message::StoppedEarly {
                method: method_name,
                run_id,
                step,
            });
        }
        if let Some(RefitState::Wanted { to_step }) = &slot.refit {
            self.send(Message::Refit {
                method: method_name,
                run_id,
                step: 0,
                of: *to_step,
                outcome: None,
            });
        }
    }

    /// Seen through a mask with validation: when `step` just became the run's best, its
    /// picture goes to the UI (the session already holds it; nothing is downloaded again).
    fn send_best_if_new(&self, index: usize, step: usize) {
        let slot = self.session.slot(index);
        let Some(best) = slot.best.best.as_ref().filter(|b| b.step == step) else {
            return;
        };
        let side = self.session.target().map_or(0, |t| t.size);
        let picture = Picture::new(step, best.image.clone(), side);
        self.frames.best.put(slot.info.name, slot.run_id, picture);
        self.repaint.request_repaint();
    }

    /// A lost GPU takes every method with it: go on on the CPU, from the start.
    fn fall_back_if_device_lost(&mut self) {
        let Some(why) = self.session.backend().lost() else {
            return;
        };
        let cpu = create_backend(BackendChoice::Cpu).expect("the CPU backend always exists");
        let restarted = self.session.replace_backend(cpu);
        self.features.clear();
        self.display_on_device = false;
        self.pictures.clear();
        self.send(Message::Warning(format!(
            "The GPU device was lost ({why}); every method restarted on the CPU backend."
        )));
        self.send_backend();
        self.announce(&restarted);
    }

    fn readback(&mut self, name: &'static str) -> &mut ReadbackState {
        self.readbacks.entry(name).or_default()
    }

    /// Reads back what somebody will look at and hands the step's frame to the UI.
    fn publish_step(&mut self, index: usize, report: StepReport, secs: f64) {
        let slot = self.session.slot(index);
        let (name, run_id) = (slot.info.name, slot.run_id);
        let iterates_wanted = self.applied.as_ref().and_then(|d| d.iterates_for) == Some(name);
        let iterates_taken = self.iterates.is_empty();
        let levels_wanted = self.applied.as_ref().and_then(|d| d.levels_for) == Some(name);
        let levels_taken = self.levels.is_empty();
        let state = *self.readback(name);
        // The step a step limit stops at is shown whatever the clock says: the run rests there.
        let at_limit = self.step_limit().is_some_and(|limit| report.step >= limit);
        let scored = self.session.take_scored_image(index, report.step);
        let slot = self.session.slot(index);
        let Some(method) = slot.method() else { return };
        let backend = self.session.backend();
        let kept = method.keep_image(report.step);
        let done = method.is_done();
        let due = at_limit
            || state
                .last_image_at
                .is_none_or(|at| at.elapsed() >= LIVE_IMAGE_INTERVAL);
        // A view shows this method's iterates: read them back instead of the image (the last
        // iterate is the image) at kept and final steps, and in between when the UI has taken
        // the previous ones.
        let iterates = (iterates_wanted && (kept || done || (due && iterates_taken)))
            .then(|| method.iterates(backend))
            .flatten()
            .filter(|images| !images.is_empty());
        // Between kept steps, a window rendering on the backend's device is shown the image
        // from there; kept and final steps (the grid, files) and host-side views download it.
        let size = self.session.target().map_or(0, |t| t.size);
        let on_device = self.display_on_device
            && !self.applied.as_ref().is_some_and(|d| d.host_images)
            && scored.is_none();
        let mut live = None;
        let pixels = match &iterates {
            Some(images) => images.last().cloned(),
            None if kept || done => Some(scored.unwrap_or_else(|| method.image(backend))),
            None if due => {
                let picture = self.pictures.entry(name).or_default();
                match method.image_tensor() {
                    Some(image) if on_device && backend.present(image, size, picture) => {
                        live = picture.clone();
                        None
                    }
                    _ => Some(scored.unwrap_or_else(|| method.image(backend))),
                }
            }
            None => None,
        };
        // Likewise the levels a view shows, on their own clock (they are not the image).
        let levels_due = at_limit
            || state
                .last_levels_at
                .is_none_or(|at| at.elapsed() >= LIVE_IMAGE_INTERVAL);
        let levels = (levels_wanted && (kept || done || (levels_due && levels_taken)))
            .then(|| method.levels(backend))
            .flatten()
            .filter(|levels| !levels.is_empty());
        let total_steps = method.total_steps();
        let mut new_state = state;
        if pixels.is_some() || live.is_some() {
            new_state.last_image_at = Some(Instant::now());
            new_state.shown_step = Some(report.step);
        }
        if pixels.is_some() {
            new_state.image_step = Some(report.step);
        }
        if iterates.is_some() {
            new_state.iterates_step = Some(report.step);
        }
        if levels.is_some() {
            new_state.last_levels_at = Some(Instant::now());
            new_state.levels_step = Some(report.step);
        }
        *self.readback(name) = new_state;
        let image = pixels
            .as_ref()
            .map(|pixels| Arc::new(color_image_from_rgb(pixels, size)));
        let thumbnail = image.as_ref().map(|image| {
            if size > THUMBNAIL_MAX_SIDE {
                Arc::new(downsample(image, size.div_ceil(THUMBNAIL_MAX_SIDE)))
            } else {
                Arc::clone(image)
            }
        });
        let step = report.step;
        self.frames.put(Frame {
            method: name,
            run_id,
            total_steps,
            report,
            step_secs: secs,
            kept,
            image,
            thumbnail,
            pixels: pixels.map(Arc::new),
            live,
        });
        if let Some(images) = iterates {
            self.put_iterates(name, run_id, step, images);
        }
        if let Some(levels) = levels {
            self.put_levels(name, run_id, step, &levels);
        }
        self.repaint.request_repaint();
    }

    /// The method `wanted` names, when its next step will not send what a view shows of it: it
    /// is finished, paused or stopped at the step limit. Its slot index, run and latest step.
    fn idle_shown(
        &self,
        wanted: Option<&'static str>,
    ) -> Option<(&'static str, usize, u64, usize)> {
        let name = wanted?;
        let index = self.session.position(name)?;
        let slot = self.session.slot(index);
        if self.playing && slot.is_runnable(self.step_limit()) {
            return None; // its next step sends them
        }
        let step = slot.method()?.steps_done();
        (step > 0).then_some((name, index, slot.run_id, step))
    }

    /// Sends the iterates of the method a view shows when its next step will not, and what was
    /// sent is of another step (or nothing was sent, because the view has only just asked).
    fn send_iterates_if_idle(&mut self) {
        let wanted = self.applied.as_ref().and_then(|d| d.iterates_for);
        let Some((name, index, run_id, step)) = self.idle_shown(wanted) else {
            return;
        };
        if self.readback(name).iterates_step == Some(step) {
            return;
        }
        let slot = self.session.slot(index);
        let images = slot
            .method()
            .and_then(|m| m.iterates(self.session.backend()));
        self.readback(name).iterates_step = Some(step);
        if let Some(images) = images.filter(|images| !images.is_empty()) {
            self.put_iterates(name, run_id, step, images);
            self.repaint.request_repaint();
        }
    }

    /// Sends the newest image of every idle method (paused, stopped at a step limit) whose
    /// last step is not on the screen (it was not due when reported), and, while the window
    /// wants images on the host (a view computing from them, an export), of every idle method
    /// whose last step has not reached the host (it was shown from the device): so that what
    /// rests on the screen, and what the host has, is the step the run rests at.
    fn send_images_if_idle(&mut self) {
        let host_images = self.applied.as_ref().is_some_and(|d| d.host_images);
        let Some(side) = self.session.target().map(|t| t.size) else {
            return;
        };
        let names: Vec<&'static str> = self.session.slots().iter().map(|s| s.info.name).collect();
        for name in names {
            let Some((name, index, run_id, step)) = self.idle_shown(Some(name)) else {
                continue;
            };
            let state = *self.readback(name);
            let sent = if host_images {
                state.image_step
            } else {
                state.shown_step
            };
            if sent == Some(step) {
                continue;
            }
            let slot = self.session.slot(index);
            let Some(method) = slot.method() else {
                continue;
            };
            let pixels = method.image(self.session.backend());
            let state = self.readback(name);
            state.image_step = Some(step);
            state.shown_step = Some(step);
            self.frames
                .downloads
                .put(name, run_id, Picture::new(step, pixels, side));
            self.repaint.request_repaint();
        }
    }

    /// The same for the levels of the method the scales view shows.
    fn send_levels_if_idle(&mut self) {
        let wanted = self.applied.as_ref().and_then(|d| d.levels_for);
        let Some((name, index, run_id, step)) = self.idle_shown(wanted) else {
            return;
        };
        if self.readback(name).levels_step == Some(step) {
            return;
        }
        let slot = self.session.slot(index);
        let levels = slot.method().and_then(|m| m.levels(self.session.backend()));
        self.readback(name).levels_step = Some(step);
        if let Some(levels) = levels.filter(|levels| !levels.is_empty()) {
            self.put_levels(name, run_id, step, &levels);
            self.repaint.request_repaint();
        }
    }

    /// Makes thumbnails of the iterates, measures their PSNR on the host (a few operations a
    /// pixel, on this thread) and hands them to the UI.
    fn put_iterates(&self, method: &'static str, run_id: u64, step: usize, images: Vec<Vec<f32>>) {
        let Some(target) = self.session.target() else {
            return;
        };
        let size = target.size;
        let images = images
            .iter()
            .map(|pixels| {
                let psnr = methods::psnr_from_mse(host_mse(pixels, &target.pixels));
                let image = color_image_from_rgb(pixels, size);
                let thumbnail = if size > THUMBNAIL_MAX_SIDE {
                    downsample(&image, size.div_ceil(THUMBNAIL_MAX_SIDE))
                } else {
                    image
                };
                (Arc::new(thumbnail), psnr)
            })
            .collect();
        self.iterates.put(Iterates {
            method,
            run_id,
            step,
            images,
        });
    }

    /// Makes the levels' pictures, PSNRs and Haar bands on the host (a few operations a pixel,
    /// on this thread) and hands them to the UI.
    fn put_levels(&self, method: &'static str, run_id: u64, step: usize, levels: &[LevelImages]) {
        self.levels.put(Levels {
            method,
            run_id,
            step,
            levels: level_frames(levels),
        });
    }

    /// Evaluates the zoom view's region when it moved, or when its method has stepped since
    /// (at most a few times a second while it trains), and charges the time to that method.
    fn render_zoom_if_due(&mut self) {
        let Some(request) = self.applied.as_ref().and_then(|d| d.zoom) else {
            return;
        };
        let Some(index) = self.session.position(request.method) else {
            return;
        };
        let slot = self.session.slot(index);
        let Some(method) = slot.method() else {
            return;
        };
        let Some(target) = self.session.target() else {
            return;
        };
        let (run_id, step) = (slot.run_id, method.steps_done());
        if step == 0 {
            return;
        }
        // Rate-limited only while the method trains: once it stops, its last step is shown.
        let training = self.playing && slot.is_runnable(self.step_limit());
        if let Some((last, last_run, last_step, at)) = &self.zoom_rendered {
            let unchanged = *last == request && *last_run == run_id;
            let recent = training && at.elapsed() < ZOOM_REFRESH;
            if unchanged && (*last_step == step || recent) {
                return;
            }
        }
        let started = Instant::now();
        let region = request.region;
        let coords = region.model_coords(target.size);
        let rendered = method.render(self.session.backend(), &coords, &slot.cancel);
        let model_ms = started.elapsed().as_secs_f64() * 1e3;
        self.zoom_rendered = Some((request, run_id, step, Instant::now()));
        let pixels = match rendered {
            Some(Ok(pixels)) => pixels,
            Some(Err(error)) => {
                if !crate::compute::cancel::is_cancelled_error(&error) {
                    self.send(Message::Notice(format!("zoom: {error:#}")));
                }
                return;
            }
            None => return,
        };
        let picture = |pixels: &[f32]| Arc::new(color_image_from_rgb(pixels, region.pixels));
        let [bicubic, lanczos] = match &self.zoom_interpolated {
            Some((shown, shown_run, pictures)) if *shown == region && *shown_run == run_id => {
                pictures.clone()
            }
            _ => [Kernel::Bicubic, Kernel::Lanczos3]
                .map(|kernel| picture(&region.resample(&target.pixels, target.size, kernel))),
        };
        self.zoom_interpolated = Some((region, run_id, [bicubic.clone(), lanczos.clone()]));
        self.zoom.put(ZoomFrame {
            request,
            run_id,
            step,
            model: picture(&pixels),
            bicubic,
            lanczos,
            model_ms,
        });
        self.session.charge(index, started.elapsed().as_secs_f64());
        self.repaint.request_repaint();
    }

    /// One piece of the feature maps being prepared (a scratch build or step), published as
    /// in flight so that the relay can cancel it like any step.
    fn advance_features(&mut self) {
        if let Some((index, step)) = self.features.next_piece(&self.session) {
            self.publish_in_flight(index, step, self.features.cancel_token());
        }
        let messages = self.features.advance(&mut self.session);
        *lock(&self.in_flight) = None;
        for message in messages {
            self.send(message);
        }
    }
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
