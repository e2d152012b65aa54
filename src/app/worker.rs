//! The compute thread: it owns the backend and the running methods, steps them round-robin, and
//! hands every step's frame to the UI.
//!
//! Two lanes go each way, so that nothing queues up and the UI never waits:
//! - UI → worker: discrete events ([`Command`]: load an image, play, pause, step, reset, features)
//!   on a bounded channel, plus the *desired* configuration ([`Desired`]: selected methods,
//!   parameter values, working size) in a latest-value cell that the worker reads at every step
//!   boundary. Dragging a slider overwrites the cell sixty times a second; the worker sees only
//!   the value that is there when it looks, and restarts only the methods whose values changed.
//! - worker → UI: small typed [`Message`]s on a bounded channel, and step [`Frame`]s in a
//!   [`FrameSlot`] keyed by (method, step): a frame the UI has not taken yet is replaced by a
//!   newer one for the same cell, and frames of older runs are dropped there and then.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded};
use egui::{Color32, ColorImage};
use image::DynamicImage;

use crate::compute::{Backend, BackendChoice, BackendKind, create_backend};
use crate::methods::{self, Method, MethodInfo, ParamValues, Setup, StepReport};
use crate::rng::RngKind;
use crate::target::{Decoded, Fit, SAMPLE_NAME, SAMPLE_PNG, Target, decode_bytes, load_image};

/// Grid thumbnails are at most this many pixels a side; a 512² run sends 256² thumbnails.
pub const THUMBNAIL_MAX_SIDE: usize = 256;
/// Room for discrete commands; the UI only sends on user actions.
const COMMAND_CAPACITY: usize = 256;
/// Room for messages; the worker sends a handful per user action.
const MESSAGE_CAPACITY: usize = 1024;

/// Where an image comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    Sample,
    Path(PathBuf),
    Bytes { name: String, bytes: Arc<[u8]> },
}

/// The configuration the UI wants; the worker converges to it at each step boundary.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Methods to run, in registry order.
    pub selected: Vec<&'static str>,
    /// Every method's values (methods not listed use their defaults).
    pub params: BTreeMap<&'static str, ParamValues>,
    pub working_size: usize,
    /// Stop each method after this many steps (for `--screenshot --after N`).
    pub step_limit: Option<usize>,
    /// The method whose intermediate images ([`Method::iterates`]) a view is showing; nobody
    /// else's are read back. Changing it restarts nothing.
    pub iterates_for: Option<&'static str>,
}

/// Discrete events, UI → worker.
#[derive(Debug)]
pub enum Command {
    LoadImage(ImageSource),
    Play,
    Pause,
    /// One step of every running method.
    StepOnce,
    /// Restart every method from scratch.
    Reset,
    /// Read the desired configuration now (sent after [`Desired`] changes, so a paused worker wakes).
    Sync,
    RequestFeatures(FeatureRequest),
}

/// "Show me channels `first_channel..first_channel+count` of what `method` sees at `step`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureRequest {
    pub method: &'static str,
    pub run_id: u64,
    pub step: usize,
    pub first_channel: usize,
    pub count: usize,
}

/// Why a method stopped before its last step.
#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    /// Its PSNR stopped being a number at this step.
    Diverged {
        step: usize,
    },
    Failed(String),
}

/// The image being fitted, as the UI shows it.
pub struct TargetFrame {
    pub name: String,
    pub size: usize,
    pub pixels: Arc<Vec<f32>>,
    pub image: Arc<ColorImage>,
}

/// Feature maps for the inspect view.
pub struct FeatureMaps {
    pub request: FeatureRequest,
    pub total_channels: usize,
    /// (caption, map) per channel; maps use a diverging colour scale, symmetric around 0.
    pub maps: Vec<(String, Arc<ColorImage>)>,
}

/// Small typed messages, worker → UI.
pub enum Message {
    Backend {
        kind: BackendKind,
        adapter: String,
    },
    TargetLoaded(TargetFrame),
    /// `method` restarted as run `run_id`: everything older is stale.
    Started {
        method: &'static str,
        run_id: u64,
    },
    /// The method was built and will take this many steps.
    Built {
        method: &'static str,
        run_id: u64,
        total_steps: usize,
    },
    Stopped {
        method: &'static str,
        run_id: u64,
        reason: StopReason,
    },
    Playing(bool),
    /// Something the user should read (a file that could not be loaded, …).
    Notice(String),
    Features(FeatureMaps),
}

/// One step of one method, with its image.
#[derive(Clone)]
pub struct Frame {
    pub method: &'static str,
    pub run_id: u64,
    pub total_steps: usize,
    pub report: StepReport,
    /// Compute time of this step (build included for the first step).
    pub step_secs: f64,
    /// Whether this step's image belongs in the trajectory grid ([`Method::keep_image`]).
    pub kept: bool,
    /// The image at the working size. `None` for a step whose image was not read back: trained
    /// methods run faster than the UI draws, so between kept steps the image is downloaded at
    /// most once per [`LIVE_IMAGE_INTERVAL`]; the report still arrives for the curves.
    pub image: Option<Arc<ColorImage>>,
    /// At most [`THUMBNAIL_MAX_SIDE`] a side (the same `Arc` as `image` when that is small).
    pub thumbnail: Option<Arc<ColorImage>>,
    pub pixels: Option<Arc<Vec<f32>>>,
}

/// Least time between two live-image downloads of one method between kept steps (about one
/// UI frame).
pub const LIVE_IMAGE_INTERVAL: Duration = Duration::from_millis(33);

/// Latest-value slot for frames, keyed by (method, step): what the UI has not taken yet is
/// replaced, never queued, so memory stays bounded by one run's cells.
#[derive(Default)]
pub struct FrameSlot {
    frames: Mutex<BTreeMap<(&'static str, usize), Frame>>,
}

impl FrameSlot {
    pub fn put(&self, frame: Frame) {
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        frames.retain(|(method, _), old| *method != frame.method || old.run_id >= frame.run_id);
        frames.insert((frame.method, frame.report.step), frame);
    }

    /// Everything waiting, in (method, step) order.
    pub fn take_all(&self) -> Vec<Frame> {
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *frames).into_values().collect()
    }

    pub fn len(&self) -> usize {
        self.frames.lock().map_or(0, |f| f.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One evaluation's intermediate images of a method that refines internally (learned-refine's
/// K iterations) with the weights of one training step: the trajectory at that step.
pub struct Iterates {
    pub method: &'static str,
    pub run_id: u64,
    /// The step whose weights made them.
    pub step: usize,
    /// Per iteration, first to last: the image at most [`THUMBNAIL_MAX_SIDE`] a side, and its
    /// PSNR in dB against the target.
    pub images: Vec<(Arc<ColorImage>, f64)>,
}

/// Latest-value slot for [`Iterates`]: the worker reads them back only when the UI has taken
/// the previous ones (or at a kept or final step), so there is at most one download per UI
/// frame and none while no view shows them.
#[derive(Default)]
pub struct IteratesSlot {
    latest: Mutex<Option<Iterates>>,
}

impl IteratesSlot {
    pub fn put(&self, iterates: Iterates) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(iterates);
    }

    pub fn take(&self) -> Option<Iterates> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.lock().map_or(true, |l| l.is_none())
    }
}

/// The UI's end of the worker.
pub struct WorkerHandle {
    commands: Sender<Command>,
    pub messages: Receiver<Message>,
    pub frames: Arc<FrameSlot>,
    pub iterates: Arc<IteratesSlot>,
    desired: Arc<Mutex<Desired>>,
}

impl WorkerHandle {
    /// A handle with no thread behind it (view tests): commands go nowhere, nothing arrives.
    pub fn detached() -> Self {
        let (commands, _) = bounded(COMMAND_CAPACITY);
        let (_, messages) = bounded(1);
        WorkerHandle {
            commands,
            messages,
            frames: Arc::new(FrameSlot::default()),
            desired: Arc::new(Mutex::new(Desired {
                selected: Vec::new(),
                params: BTreeMap::new(),
                working_size: 0,
                step_limit: None,
                iterates_for: None,
            })),
            iterates: Arc::new(IteratesSlot::default()),
        }
    }

    /// A sender for threads of the UI that outlive a frame (the file dialog).
    pub fn command_sender(&self) -> Sender<Command> {
        self.commands.clone()
    }

    /// Sends a command without waiting. `false` when the worker is gone or far behind.
    pub fn send(&self, command: Command) -> bool {
        match self.commands.try_send(command) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Publishes a new desired configuration; the worker picks it up at its next step boundary.
    pub fn set_desired(&self, desired: Desired) {
        let mut current = self.desired.lock().unwrap_or_else(|e| e.into_inner());
        if *current != desired {
            *current = desired;
            drop(current);
            // A full channel means the worker has commands to drain anyway, and it syncs then.
            let _ = self.commands.try_send(Command::Sync);
        }
    }
}

/// Starts the compute thread. It runs until the handle is dropped.
pub fn spawn(
    backend_choice: BackendChoice,
    desired: Desired,
    repaint: egui::Context,
) -> WorkerHandle {
    let (command_tx, command_rx) = bounded(COMMAND_CAPACITY);
    let (message_tx, message_rx) = bounded(MESSAGE_CAPACITY);
    let frames = Arc::new(FrameSlot::default());
    let iterates = Arc::new(IteratesSlot::default());
    let desired = Arc::new(Mutex::new(desired));
    let worker_frames = Arc::clone(&frames);
    let worker_iterates = Arc::clone(&iterates);
    let worker_desired = Arc::clone(&desired);
    std::thread::Builder::new()
        .name("inrlab-compute".into())
        .spawn(move || {
            let backend = match create_backend(backend_choice) {
                Ok(backend) => backend,
                Err(error) => {
                    let _ = message_tx.send(Message::Notice(format!(
                        "{backend_choice:?} backend unavailable ({error:#}); using the CPU"
                    )));
                    create_backend(BackendChoice::Cpu).expect("the CPU backend always exists")
                }
            };
            let mut worker = Worker {
                backend,
                commands: command_rx,
                messages: message_tx,
                frames: worker_frames,
                iterates: worker_iterates,
                desired: worker_desired,
                repaint,
                applied: None,
                decoded: None,
                target: None,
                slots: Vec::new(),
                playing: false,
                single_steps: BTreeSet::new(),
                cursor: 0,
                next_run_id: 1,
                feature_cache: None,
            };
            worker.run();
        })
        .expect("spawning the compute thread");
    WorkerHandle {
        commands: command_tx,
        messages: message_rx,
        frames,
        iterates,
        desired,
    }
}

enum SlotState {
    /// Will be built (from its current parameters) when its turn comes.
    NeedsBuild,
    Running(Box<dyn Method>),
    /// Finished, diverged or failed; kept for feature requests when finished.
    Finished(Box<dyn Method>),
    Stopped,
}

struct MethodSlot {
    info: &'static MethodInfo,
    params: ParamValues,
    run_id: u64,
    state: SlotState,
    /// When this run's image was last downloaded.
    last_image_at: Option<Instant>,
    /// The step of this run whose iterates were last sent.
    iterates_step: Option<usize>,
}

impl MethodSlot {
    fn method(&self) -> Option<&dyn Method> {
        match &self.state {
            SlotState::Running(m) | SlotState::Finished(m) => Some(m.as_ref()),
            _ => None,
        }
    }
}

/// The downloaded features of one (method, run, step), kept so paging through channels does
/// not download again.
struct FeatureCache {
    key: (&'static str, u64, usize),
    rows: usize,
    cols: usize,
    data: Vec<f32>,
    labels: Vec<String>,
}

struct Worker {
    backend: Box<dyn Backend>,
    commands: Receiver<Command>,
    messages: Sender<Message>,
    frames: Arc<FrameSlot>,
    iterates: Arc<IteratesSlot>,
    desired: Arc<Mutex<Desired>>,
    repaint: egui::Context,
    /// The desired configuration last applied.
    applied: Option<Desired>,
    decoded: Option<(String, DynamicImage)>,
    target: Option<Target>,
    slots: Vec<MethodSlot>,
    playing: bool,
    /// Methods still owed a step of a single-step request.
    single_steps: BTreeSet<&'static str>,
    cursor: usize,
    next_run_id: u64,
    feature_cache: Option<FeatureCache>,
}

impl Worker {
    fn run(&mut self) {
        self.send(Message::Backend {
            kind: self.backend.kind(),
            adapter: self.backend.adapter_name(),
        });
        loop {
            if !self.has_work() {
                // Nothing to compute: sleep until the UI says something.
                match self.commands.recv() {
                    Ok(command) => self.handle(command),
                    Err(_) => return,
                }
            }
            loop {
                match self.commands.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            self.sync_desired();
            self.send_iterates_if_idle();
            if self.has_work() {
                self.step_next();
            }
        }
    }

    fn send(&self, message: Message) {
        // Blocks only if the UI has stopped draining 1024 messages, i.e. it is gone or frozen.
        let _ = self.messages.send(message);
        self.repaint.request_repaint();
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::LoadImage(source) => self.load_image(source),
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
                self.single_steps = self
                    .slots
                    .iter()
                    .filter(|s| self.is_runnable(s))
                    .map(|s| s.info.name)
                    .collect();
            }
            Command::Reset => {
                for index in 0..self.slots.len() {
                    self.restart(index);
                }
            }
            Command::Sync => self.sync_desired(),
            Command::RequestFeatures(request) => self.send_features(request),
        }
    }

    fn load_image(&mut self, source: ImageSource) {
        let decoded = match &source {
            ImageSource::Sample => {
                decode_bytes(SAMPLE_PNG, SAMPLE_NAME).map(|image| (SAMPLE_NAME.to_owned(), image))
            }
            ImageSource::Path(path) => load_image(path).map(|image| {
                let name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into(),
                );
                (name, image)
            }),
            ImageSource::Bytes { name, bytes } => {
                decode_bytes(bytes, name).map(|image| (name.clone(), image))
            }
        };
        match decoded {
            Ok((name, Decoded { image, warning })) => {
                if let Some(warning) = warning {
                    self.send(Message::Notice(warning));
                }
                let decoded = (name, image);
                let previous = self.decoded.replace(decoded);
                if let Err(error) = self.make_target() {
                    self.decoded = previous;
                    self.send(Message::Notice(format!("{error:#}")));
                }
            }
            Err(error) => {
                let what = match &source {
                    ImageSource::Sample => "the built-in sample".to_owned(),
                    ImageSource::Path(path) => path.display().to_string(),
                    ImageSource::Bytes { name, .. } => name.clone(),
                };
                let keeps = if self.target.is_some() {
                    " The previous image keeps running."
                } else {
                    ""
                };
                self.send(Message::Notice(format!(
                    "Could not open {what}: {error:#}.{keeps}"
                )));
            }
        }
    }

    /// Makes the target from the decoded image at the working size and restarts everything.
    fn make_target(&mut self) -> anyhow::Result<()> {
        let Some((name, image)) = &self.decoded else {
            return Ok(());
        };
        let size = self.current_desired().working_size;
        let target = Target::from_image(name, image, size, Fit::Stretch)?;
        self.send(Message::TargetLoaded(TargetFrame {
            name: target.name.clone(),
            size,
            image: Arc::new(color_image_from_rgb(&target.pixels, size)),
            pixels: Arc::new(target.pixels.clone()),
        }));
        self.target = Some(target);
        self.feature_cache = None;
        for index in 0..self.slots.len() {
            self.restart(index);
        }
        Ok(())
    }

    fn current_desired(&self) -> Desired {
        self.desired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Converges to what the UI wants: new working size, selection, parameter values.
    fn sync_desired(&mut self) {
        let desired = self.current_desired();
        if self.applied.as_ref() == Some(&desired) {
            return;
        }
        let size_changed = self
            .applied
            .as_ref()
            .is_some_and(|a| a.working_size != desired.working_size);
        self.applied = Some(desired.clone());
        // Selection: keep the slots still selected (registry order), add new ones.
        let mut slots = Vec::new();
        let mut added = Vec::new();
        for &name in &desired.selected {
            let Ok(info) = methods::find(name) else {
                continue;
            };
            match self.slots.iter().position(|s| s.info.name == name) {
                Some(index) => slots.push(self.slots.swap_remove(index)),
                None => {
                    added.push(slots.len());
                    slots.push(MethodSlot {
                        info,
                        params: ParamValues::new(),
                        run_id: 0,
                        state: SlotState::NeedsBuild,
                        last_image_at: None,
                        iterates_step: None,
                    });
                }
            }
        }
        self.slots = slots;
        self.cursor = self.cursor.min(self.slots.len().saturating_sub(1));
        for index in added {
            let name = self.slots[index].info.name;
            self.slots[index].params = desired.params.get(name).cloned().unwrap_or_default();
            self.restart(index);
        }
        // Parameters: restart exactly the methods whose values changed.
        for index in 0..self.slots.len() {
            let name = self.slots[index].info.name;
            let wanted = desired.params.get(name).cloned().unwrap_or_default();
            if self.slots[index].params != wanted {
                self.slots[index].params = wanted;
                self.restart(index);
            }
        }
        if size_changed && let Err(error) = self.make_target() {
            self.send(Message::Notice(format!("{error:#}")));
        }
    }

    /// Abandons the slot's run; the next run gets a new id so its stale frames are dropped.
    fn restart(&mut self, index: usize) {
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        let slot = &mut self.slots[index];
        slot.run_id = run_id;
        slot.state = SlotState::NeedsBuild;
        slot.iterates_step = None;
        let method = slot.info.name;
        self.single_steps.remove(method);
        self.send(Message::Started { method, run_id });
    }

    fn step_limit(&self) -> Option<usize> {
        self.applied.as_ref().and_then(|d| d.step_limit)
    }

    fn is_runnable(&self, slot: &MethodSlot) -> bool {
        match &slot.state {
            SlotState::NeedsBuild => true,
            SlotState::Running(method) => {
                !method.is_done() && self.step_limit().is_none_or(|l| method.steps_done() < l)
            }
            SlotState::Finished(_) | SlotState::Stopped => false,
        }
    }

    fn has_work(&self) -> bool {
        self.target.is_some()
            && (self.playing || !self.single_steps.is_empty())
            && self.slots.iter().any(|s| self.is_runnable(s))
    }

    /// One step of the next runnable method after the cursor (round-robin).
    fn step_next(&mut self) {
        let count = self.slots.len();
        let pick = (0..count).map(|i| (self.cursor + i) % count).find(|&i| {
            let slot = &self.slots[i];
            self.is_runnable(slot) && (self.playing || self.single_steps.contains(slot.info.name))
        });
        let Some(index) = pick else {
            self.single_steps.clear();
            return;
        };
        self.cursor = (index + 1) % count;
        self.single_steps.remove(self.slots[index].info.name);
        self.step_slot(index);
    }

    fn step_slot(&mut self, index: usize) {
        let started = Instant::now();
        let Some(target) = &self.target else { return };
        let slot = &mut self.slots[index];
        let name = slot.info.name;
        let run_id = slot.run_id;
        if matches!(slot.state, SlotState::NeedsBuild) {
            let built = slot.info.build(&Setup {
                target,
                backend: self.backend.as_ref(),
                rng: RngKind::Numpy,
                params: &slot.params,
            });
            match built {
                Ok(method) => {
                    let total_steps = method.total_steps();
                    slot.state = SlotState::Running(method);
                    self.send(Message::Built {
                        method: name,
                        run_id,
                        total_steps,
                    });
                }
                Err(error) => {
                    slot.state = SlotState::Stopped;
                    self.send(Message::Stopped {
                        method: name,
                        run_id,
                        reason: StopReason::Failed(format!("{error:#}")),
                    });
                    return;
                }
            }
        }
        let slot = &mut self.slots[index];
        let SlotState::Running(method) = &mut slot.state else {
            return;
        };
        let result = method.step(self.backend.as_ref());
        let report = match result {
            Ok(report) if crate::runner::divergence(&report).is_none() => report,
            Ok(report) => {
                slot.state = SlotState::Stopped;
                self.send(Message::Stopped {
                    method: name,
                    run_id,
                    reason: StopReason::Diverged { step: report.step },
                });
                return;
            }
            Err(error) => {
                slot.state = SlotState::Stopped;
                self.send(Message::Stopped {
                    method: name,
                    run_id,
                    reason: StopReason::Failed(format!("{error:#}")),
                });
                return;
            }
        };
        let kept = method.keep_image(report.step);
        let due = slot
            .last_image_at
            .is_none_or(|at| at.elapsed() >= LIVE_IMAGE_INTERVAL);
        let done = method.is_done();
        // A view shows this method's iterates: read them back instead of the image (the last
        // iterate is the image) at kept and final steps, and in between when the UI has taken
        // the previous ones.
        let wants_iterates = self
            .applied
            .as_ref()
            .is_some_and(|d| d.iterates_for == Some(name))
            && (kept || done || (due && self.iterates.is_empty()));
        let iterates = if wants_iterates {
            slot.iterates_step = Some(report.step);
            method
                .iterates(self.backend.as_ref())
                .filter(|images| !images.is_empty())
        } else {
            None
        };
        let pixels = match &iterates {
            Some(images) => {
                slot.last_image_at = Some(Instant::now());
                images.last().cloned()
            }
            None => (kept || due || done).then(|| {
                slot.last_image_at = Some(Instant::now());
                method.image(self.backend.as_ref())
            }),
        };
        let total_steps = method.total_steps();
        if method.is_done() {
            let SlotState::Running(method) = std::mem::replace(&mut slot.state, SlotState::Stopped)
            else {
                unreachable!("matched above")
            };
            slot.state = SlotState::Finished(method);
        }
        let size = self.target.as_ref().map_or(0, |t| t.size);
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
            step_secs: started.elapsed().as_secs_f64(),
            kept,
            image,
            thumbnail,
            pixels: pixels.map(Arc::new),
        });
        if let Some(images) = iterates {
            self.put_iterates(name, run_id, step, images);
        }
        self.repaint.request_repaint();
    }

    /// Sends the iterates of the method a view shows when its next step will not: it is
    /// finished, paused or stopped at the step limit, and what was sent is of another step
    /// (or nothing was sent, because the view has only just asked).
    fn send_iterates_if_idle(&mut self) {
        let Some(name) = self.applied.as_ref().and_then(|d| d.iterates_for) else {
            return;
        };
        let Some(index) = self.slots.iter().position(|s| s.info.name == name) else {
            return;
        };
        let slot = &self.slots[index];
        if self.playing && self.is_runnable(slot) {
            return; // its next step sends them
        }
        let Some(method) = slot.method() else { return };
        let step = method.steps_done();
        if step == 0 || slot.iterates_step == Some(step) {
            return;
        }
        let images = method.iterates(self.backend.as_ref());
        let run_id = slot.run_id;
        self.slots[index].iterates_step = Some(step);
        if let Some(images) = images.filter(|images| !images.is_empty()) {
            self.put_iterates(name, run_id, step, images);
            self.repaint.request_repaint();
        }
    }

    /// Makes thumbnails of the iterates, measures their PSNR on the host (a few operations a
    /// pixel, on this thread) and hands them to the UI.
    fn put_iterates(&self, method: &'static str, run_id: u64, step: usize, images: Vec<Vec<f32>>) {
        let Some(target) = &self.target else { return };
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

    fn send_features(&mut self, request: FeatureRequest) {
        let Some(index) = self
            .slots
            .iter()
            .position(|s| s.info.name == request.method && s.run_id == request.run_id)
        else {
            return; // stale request: the method restarted or was deselected
        };
        let key = (request.method, request.run_id, request.step);
        if self.feature_cache.as_ref().is_none_or(|c| c.key != key) {
            self.feature_cache =
                self.download_features(index, request.step)
                    .map(|(rows, cols, data, labels)| FeatureCache {
                        key,
                        rows,
                        cols,
                        data,
                        labels,
                    });
        }
        let Some(cache) = &self.feature_cache else {
            self.send(Message::Features(FeatureMaps {
                request,
                total_channels: 0,
                maps: Vec::new(),
            }));
            return;
        };
        let side = (cache.rows as f64).sqrt().round() as usize;
        let end = (request.first_channel + request.count).min(cache.cols);
        let maps = (request.first_channel.min(end)..end)
            .map(|channel| {
                let image = diverging_map(&cache.data, cache.cols, channel, side);
                (cache.labels[channel].clone(), Arc::new(image))
            })
            .collect();
        let total_channels = cache.cols;
        self.send(Message::Features(FeatureMaps {
            request,
            total_channels,
            maps,
        }));
    }

    /// The features of the slot's method at `step`: the running method's own when it is at that
    /// step, otherwise a scratch copy with the same parameters stepped to it (deterministic).
    #[allow(clippy::type_complexity)]
    fn download_features(
        &self,
        index: usize,
        step: usize,
    ) -> Option<(usize, usize, Vec<f32>, Vec<String>)> {
        let slot = &self.slots[index];
        let backend = self.backend.as_ref();
        let read = |method: &dyn Method| {
            let tensor = method.features()?;
            let labels = (0..tensor.cols())
                .map(|i| method.feature_label(i))
                .collect();
            Some((
                tensor.rows(),
                tensor.cols(),
                backend.download(tensor),
                labels,
            ))
        };
        if let Some(method) = slot.method().filter(|m| m.steps_done() == step) {
            return read(method);
        }
        let target = self.target.as_ref()?;
        let mut scratch = slot
            .info
            .build(&Setup {
                target,
                backend,
                rng: RngKind::Numpy,
                params: &slot.params,
            })
            .ok()?;
        while scratch.steps_done() < step && !scratch.is_done() {
            scratch.step(backend).ok()?;
        }
        read(scratch.as_ref())
    }
}

/// Mean squared error of an image clipped into [0, 1] against the target, as the methods
/// measure their PSNR; NaN if the image has a NaN.
pub fn host_mse(pixels: &[f32], target: &[f32]) -> f64 {
    if pixels.len() != target.len() || pixels.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = pixels
        .iter()
        .zip(target)
        .map(|(&p, &t)| {
            let d = (p.clamp(0.0, 1.0) - t) as f64;
            if p.is_nan() { f64::NAN } else { d * d }
        })
        .sum();
    sum / pixels.len() as f64
}

/// RGB f32 in [0, 1] (NaN as black) to an egui image.
pub fn color_image_from_rgb(pixels: &[f32], size: usize) -> ColorImage {
    let to_byte = |v: f32| {
        if v.is_nan() {
            0
        } else {
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        }
    };
    let colors = pixels
        .chunks_exact(3)
        .map(|p| Color32::from_rgb(to_byte(p[0]), to_byte(p[1]), to_byte(p[2])))
        .collect();
    ColorImage::new([size, size], colors)
}

/// Box-filter downsampling by an integer factor.
pub fn downsample(image: &ColorImage, factor: usize) -> ColorImage {
    let [width, height] = image.size;
    let (out_w, out_h) = (width.div_ceil(factor), height.div_ceil(factor));
    let mut pixels = Vec::with_capacity(out_w * out_h);
    for oy in 0..out_h {
        for ox in 0..out_w {
            let mut sum = [0u32; 3];
            let mut n = 0;
            for y in oy * factor..((oy + 1) * factor).min(height) {
                for x in ox * factor..((ox + 1) * factor).min(width) {
                    let c = image.pixels[y * width + x];
                    sum[0] += c.r() as u32;
                    sum[1] += c.g() as u32;
                    sum[2] += c.b() as u32;
                    n += 1;
                }
            }
            let n = n.max(1);
            pixels.push(Color32::from_rgb(
                (sum[0] / n) as u8,
                (sum[1] / n) as u8,
                (sum[2] / n) as u8,
            ));
        }
    }
    ColorImage::new([out_w, out_h], pixels)
}

/// One column of a row-major `rows × cols` tensor as a `side²` map, blue (negative) through
/// black to orange (positive), scaled by the column's largest magnitude.
fn diverging_map(data: &[f32], cols: usize, channel: usize, side: usize) -> ColorImage {
    let rows = side * side;
    let values = (0..rows).map(|r| data.get(r * cols + channel).copied().unwrap_or(0.0));
    let scale = values
        .clone()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-12);
    let pixels = values.map(|v| diverging_color(v / scale)).collect();
    ColorImage::new([side, side], pixels)
}

/// −1 → blue, 0 → near black, +1 → orange.
pub fn diverging_color(t: f32) -> Color32 {
    let t = if t.is_finite() {
        t.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (r, g, b) = if t >= 0.0 {
        (255.0 * t, 150.0 * t, 40.0 * t)
    } else {
        (60.0 * -t, 150.0 * -t, 255.0 * -t)
    };
    let base = 14.0;
    Color32::from_rgb(
        (base + r * (1.0 - base / 255.0)) as u8,
        (base + g * (1.0 - base / 255.0)) as u8,
        (base + b * (1.0 - base / 255.0)) as u8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(method: &'static str, run_id: u64, step: usize) -> Frame {
        let image = Arc::new(ColorImage::new([1, 1], vec![Color32::BLACK]));
        Frame {
            method,
            run_id,
            total_steps: 10,
            report: StepReport {
                step,
                label: format!("step {step}"),
                psnr_db: 20.0,
                loss: None,
                saturation: None,
            },
            step_secs: 0.0,
            kept: true,
            thumbnail: Some(Arc::clone(&image)),
            image: Some(image),
            pixels: Some(Arc::new(vec![0.0; 3])),
        }
    }

    #[test]
    fn frame_slot_keeps_the_latest_per_cell_and_drops_older_runs() {
        let slot = FrameSlot::default();
        slot.put(frame("a", 1, 1));
        slot.put(frame("a", 1, 2));
        slot.put(frame("b", 5, 1));
        // Run 2 of "a" replaces everything of run 1 that the UI has not taken.
        slot.put(frame("a", 2, 1));
        let frames = slot.take_all();
        let keys: Vec<_> = frames
            .iter()
            .map(|f| (f.method, f.run_id, f.report.step))
            .collect();
        assert_eq!(keys, vec![("a", 2, 1), ("b", 5, 1)]);
        assert!(slot.is_empty());
    }

    #[test]
    fn a_parameter_change_restarts_only_that_method() {
        let desired = Desired {
            selected: vec!["trajectory", "fourier-ridge"],
            params: BTreeMap::new(),
            working_size: 16,
            step_limit: Some(1),
            iterates_for: None,
        };
        let handle = spawn(
            BackendChoice::Cpu,
            desired.clone(),
            egui::Context::default(),
        );
        handle.send(Command::LoadImage(ImageSource::Sample));
        handle.send(Command::Play);
        let wait_for_frames = |count: usize| {
            let mut frames = Vec::new();
            let deadline = Instant::now() + std::time::Duration::from_secs(60);
            while frames.len() < count && Instant::now() < deadline {
                frames.extend(handle.frames.take_all());
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            frames
        };
        let first = wait_for_frames(2);
        assert_eq!(first.len(), 2, "both methods step once");
        let run_of = |frames: &[Frame], method: &str| {
            frames.iter().find(|f| f.method == method).map(|f| f.run_id)
        };
        let trajectory_run = run_of(&first, "trajectory").unwrap();
        let mut changed = desired;
        let mut values = ParamValues::new();
        values.set("spectral-radius", 0.5);
        changed.params.insert("trajectory", values);
        handle.set_desired(changed);
        let second = wait_for_frames(1);
        assert_eq!(second.len(), 1, "only the changed method restarts");
        assert_eq!(second[0].method, "trajectory");
        assert!(second[0].run_id > trajectory_run);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            handle.frames.is_empty(),
            "fourier-ridge must not have rerun"
        );
    }

    #[test]
    fn bad_bytes_become_a_notice() {
        let desired = Desired {
            selected: vec![],
            params: BTreeMap::new(),
            working_size: 16,
            step_limit: None,
            iterates_for: None,
        };
        let handle = spawn(BackendChoice::Cpu, desired, egui::Context::default());
        handle.send(Command::LoadImage(ImageSource::Bytes {
            name: "junk.png".into(),
            bytes: b"junk".as_slice().into(),
        }));
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Message::Notice(text)) = handle
                .messages
                .recv_timeout(std::time::Duration::from_secs(1))
            {
                assert!(text.contains("junk.png"), "{text}");
                return;
            }
        }
        panic!("no notice for a file that is not an image");
    }
}
