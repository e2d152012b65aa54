//! What the window and the compute worker say to each other.
//!
//! Two lanes go each way, so that nothing queues up and the UI never waits:
//! - UI → worker: discrete events ([`Command`]: load an image, play, pause, step, reset, features)
//!   on a bounded channel, plus the *desired* configuration ([`Desired`]: selected methods,
//!   parameter values, working size, focus) in a latest-value cell that the worker reads at every
//!   step boundary. Dragging a slider overwrites the cell sixty times a second; the worker sees
//!   only the value that is there when it looks, and restarts only the methods whose values
//!   changed.
//! - worker → UI: small typed [`Message`]s on a bounded channel, step [`Frame`]s in a
//!   [`FrameSlot`] keyed by (method, step) (a frame the UI has not taken yet is replaced by a newer
//!   one for the same cell, and frames of older runs are dropped there and then), the latest
//!   [`Iterates`] in an [`IteratesSlot`] and [`Levels`] in a [`LevelsSlot`], and the step in
//!   flight in an [`InFlight`] cell.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui::ColorImage;

use crate::checkpoint::{Checkpoint, HistoryStep};
use crate::compute::{BackendKind, CancelToken};
use crate::methods::{ParamValues, StepReport};
pub use crate::session::StopReason;

/// Grid thumbnails are at most this many pixels a side; a 512² run sends 256² thumbnails.
pub const THUMBNAIL_MAX_SIDE: usize = 256;

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
    /// The method whose intermediate images ([`crate::methods::Method::iterates`]) a view is
    /// showing; nobody else's are read back. Changing it restarts nothing.
    pub iterates_for: Option<&'static str>,
    /// The method whose multi-resolution images ([`crate::methods::Method::levels`]) a view is
    /// showing (the scales view); nobody else's are read back. Changing it restarts nothing.
    pub levels_for: Option<&'static str>,
    /// The method a single-method view shows or that was last clicked: it gets twice the
    /// compute share of any other. Changing it restarts nothing.
    pub focused: Option<&'static str>,
    /// Reconstruct from a fraction of the pixels: the mask the methods see the image through
    /// (`None`: every pixel). Changing it restarts every method.
    pub observation: Option<crate::sparse::ObservationSpec>,
    /// The region the zoom view shows of a method's field; the worker evaluates the model
    /// there, between steps, under the same time sharing. Changing it restarts nothing.
    pub zoom: Option<ZoomRequest>,
    /// The active view computes on the host from the latest images (the inspect view's error
    /// map), so they are downloaded even where the window could show them from the device.
    pub host_images: bool,
}

/// What the zoom view wants evaluated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZoomRequest {
    pub method: &'static str,
    pub region: crate::sparse::zoom::ZoomRegion,
}

/// A zoomed region of one method's field at one step, with bicubic and Lanczos-3
/// interpolation of the image it was fitted on at the same points.
pub struct ZoomFrame {
    pub request: ZoomRequest,
    pub run_id: u64,
    pub step: usize,
    pub model: Arc<ColorImage>,
    pub bicubic: Arc<ColorImage>,
    pub lanczos: Arc<ColorImage>,
    /// Milliseconds the model's evaluation took.
    pub model_ms: f64,
}

/// Latest-value slot for [`ZoomFrame`]s.
pub type ZoomSlot = LatestSlot<ZoomFrame>;

impl Desired {
    /// Nothing selected, nothing asked: what a worker starts from before the UI says more.
    pub fn empty(working_size: usize) -> Self {
        Desired {
            selected: Vec::new(),
            params: BTreeMap::new(),
            working_size,
            step_limit: None,
            iterates_for: None,
            levels_for: None,
            focused: None,
            observation: None,
            zoom: None,
            host_images: false,
        }
    }
}

/// Discrete events, UI → worker.
#[derive(Debug)]
pub enum Command {
    LoadImage(ImageSource),
    /// Train the methods that can on this folder of images (`None`: on the image again).
    TrainOnFolder(Option<PathBuf>),
    Play,
    Pause,
    /// One step of every running method.
    StepOnce,
    /// Restart every method from scratch.
    Reset,
    /// Read the desired configuration now (sent after [`Desired`] changes, so a paused worker wakes).
    Sync,
    RequestFeatures(FeatureRequest),
    /// Save a trained method's checkpoint; answered by [`Message::CheckpointSaved`] or a
    /// notice saying why not.
    SaveCheckpoint(Box<CheckpointRequest>),
    /// Restart the checkpoint's method from it (its parameters and state), leaving the others
    /// alone; answered by [`Message::Resumed`] or a notice saying why it was refused.
    ResumeFrom(Box<Checkpoint>),
    /// Ends the compute thread as a bug would, so tests can check that the window says so.
    #[cfg(feature = "testing")]
    CrashForTest,
    /// Loses the GPU device as a driver reset would, so tests can check the fallback.
    #[cfg(feature = "testing")]
    LoseDeviceForTest,
}

impl Command {
    /// Whether the step in flight, whatever its method, is no longer wanted once this command
    /// arrives (its run restarts, or the user wants the compute to stop).
    pub fn cancels_any_step(&self) -> bool {
        match self {
            Command::LoadImage(_) | Command::Pause | Command::Reset => true,
            #[cfg(feature = "testing")]
            Command::CrashForTest | Command::LoseDeviceForTest => true,
            Command::Play
            | Command::StepOnce
            | Command::Sync
            | Command::RequestFeatures(_)
            | Command::SaveCheckpoint(_)
            | Command::ResumeFrom(_)
            | Command::TrainOnFolder(_) => false,
        }
    }
}

/// What the worker needs beside what it holds (the method's state and parameters, the image,
/// the backend) to save a checkpoint.
#[derive(Debug)]
pub struct CheckpointRequest {
    pub method: &'static str,
    /// The run the user saw; a run restarted since is not saved.
    pub run_id: u64,
    /// Where it goes, under a name that never replaces a file.
    pub folder: PathBuf,
    /// The run's steps as the UI has them.
    pub history: Vec<HistoryStep>,
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

/// The image being fitted, as the UI shows it.
pub struct TargetFrame {
    pub name: String,
    pub size: usize,
    pub pixels: Arc<Vec<f32>>,
    pub image: Arc<ColorImage>,
    /// Where it came from, with its content hash (for the provenance of what is saved).
    pub origin: crate::provenance::ImageOrigin,
    /// The mask the methods see it through, with its baselines.
    pub observation: Option<Arc<crate::sparse::Observation>>,
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
        /// What it trains on when that is not the image ([`crate::methods::Method::trains_on`]).
        trains_on: Option<String>,
        /// Those files with their hashes ([`crate::methods::Method::data_files`]).
        data_files: Vec<crate::provenance::DatasetFile>,
    },
    /// The folder the methods that can train on one now train on (`None`: the image).
    Folder(Option<PathBuf>),
    /// The method's build waits for a background computation (`what`).
    Waiting {
        method: &'static str,
        run_id: u64,
        what: String,
    },
    Stopped {
        method: &'static str,
        run_id: u64,
        reason: StopReason,
    },
    Playing(bool),
    /// Something the user should read (a file that could not be loaded, …).
    Notice(String),
    /// Something worth knowing that is not an error (a partly decodable file, the GPU lost
    /// and the CPU taking over).
    Warning(String),
    Features(FeatureMaps),
    /// A checkpoint was written there.
    CheckpointSaved(PathBuf),
    /// `method` goes on from a checkpoint as run `run_id` (its `Started` and `Built` came
    /// first): the checkpoint's parameters, for the settings, and its steps so far.
    Resumed {
        method: &'static str,
        run_id: u64,
        params: ParamValues,
        history: Vec<HistoryStep>,
    },
    /// The run stopped at `step`, before its last, because its validation PSNR had not
    /// improved for the patience's steps.
    StoppedEarly {
        method: &'static str,
        run_id: u64,
        step: usize,
    },
    /// A finished run's refit on every observed pixel reached `step` of `of`; `outcome` once
    /// it is done (its picture and scores) or has failed.
    Refit {
        method: &'static str,
        run_id: u64,
        step: usize,
        of: usize,
        outcome: Option<Result<(Picture, crate::sparse::SetScores), String>>,
    },
}

/// One image of a run at one step, ready to show and to export.
#[derive(Clone)]
pub struct Picture {
    pub step: usize,
    pub image: Arc<ColorImage>,
    pub pixels: Arc<Vec<f32>>,
}

impl Picture {
    pub fn new(step: usize, pixels: Vec<f32>, side: usize) -> Self {
        Picture {
            step,
            image: Arc::new(crate::imaging::color_image_from_rgb(&pixels, side)),
            pixels: Arc::new(pixels),
        }
    }
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
    /// Between kept steps, when the window renders on the compute's device: this step's image
    /// is on the device in this texture (nothing was downloaded), for the window to sample.
    pub live: Option<Arc<crate::compute::gpu::DisplayTexture>>,
}

/// Least time between two live-image downloads of one method between kept steps (about one
/// UI frame).
pub const LIVE_IMAGE_INTERVAL: Duration = Duration::from_millis(33);

/// Latest-value slot for frames, keyed by (method, step): what the UI has not taken yet is
/// replaced, never queued, so memory stays bounded by one run's cells.
/// One picture per method (with its run), latest value only: what the UI has not taken yet
/// is replaced, so a method sending one every step queues nothing.
#[derive(Default)]
pub struct PictureSlot {
    pictures: Mutex<BTreeMap<&'static str, (u64, Picture)>>,
}

impl PictureSlot {
    pub fn put(&self, method: &'static str, run_id: u64, picture: Picture) {
        let mut pictures = self.pictures.lock().unwrap_or_else(|e| e.into_inner());
        pictures.insert(method, (run_id, picture));
    }

    /// Every method's picture not taken yet.
    pub fn take(&self) -> Vec<(&'static str, u64, Picture)> {
        let mut pictures = self.pictures.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut *pictures).into_iter())
            .map(|(method, (run_id, picture))| (method, run_id, picture))
            .collect()
    }
}

#[derive(Default)]
pub struct FrameSlot {
    frames: Mutex<BTreeMap<(&'static str, usize), Frame>>,
    /// Seen through a mask with validation: each method's newest best-validation picture.
    pub best: PictureSlot,
    /// Each method's newest image downloaded after its step was reported without one (shown
    /// from the device, or not due), because the host wants it and no next step will send
    /// it: the run is paused, finished or at the step limit.
    pub downloads: PictureSlot,
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

/// A latest-value slot: what the UI has not taken yet is replaced by the newer value, never
/// queued.
pub struct LatestSlot<T> {
    latest: Mutex<Option<T>>,
}

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        LatestSlot {
            latest: Mutex::new(None),
        }
    }
}

impl<T> LatestSlot<T> {
    pub fn put(&self, value: T) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    pub fn take(&self) -> Option<T> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.lock().map_or(true, |l| l.is_none())
    }
}

/// Latest-value slot for [`Iterates`]: the worker reads them back only when the UI has taken
/// the previous ones (or at a kept or final step), so there is at most one download per UI
/// frame and none while no view shows them.
pub type IteratesSlot = LatestSlot<Iterates>;

/// One picture of a level, with its PSNR in dB against the true image at that level (`None`
/// for a sample grown from a noise canvas, which has no truth).
pub struct LevelPicture {
    pub caption: String,
    /// At most [`THUMBNAIL_MAX_SIDE`] a side.
    pub image: Arc<ColorImage>,
    pub psnr_db: Option<f64>,
}

/// One Haar level of an image (see [`crate::imaging::haar_bands`]), as pictures half the
/// level's side: LL scaled by ½ (the 2×2 mean) and the detail bands LH, HL, HH on the diverging
/// colour map, amplified.
pub struct HaarBandPictures {
    /// LL, LH, HL, HH, each at most [`THUMBNAIL_MAX_SIDE`] a side.
    pub bands: [Arc<ColorImage>; 4],
    /// Root mean square of each band's values.
    pub rms: [f64; 4],
    /// For a prediction: the root mean square of each band's difference from the truth's band
    /// (the Haar transform is orthonormal, so these split the image's error between the bands).
    pub error_rms: Option<[f64; 4]>,
}

/// One level of a multi-resolution method's step, ready to show.
pub struct LevelFrame {
    /// Pixels a side.
    pub side: usize,
    pub truth: Arc<ColorImage>,
    /// Rollouts through the levels, as [`crate::methods::LevelImages::rollouts`].
    pub rollouts: Vec<LevelPicture>,
    /// From the true lower level; `None` at the coarsest level.
    pub teacher_forced: Option<LevelPicture>,
    pub nearest: Option<LevelPicture>,
    pub bicubic: Option<LevelPicture>,
    /// `None` for a level too small to halve.
    pub truth_bands: Option<HaarBandPictures>,
    pub teacher_forced_bands: Option<HaarBandPictures>,
}

/// A multi-resolution method's images at one step ([`crate::methods::Method::levels`]), coarse
/// to fine, the coarsest first.
pub struct Levels {
    pub method: &'static str,
    pub run_id: u64,
    /// The step whose weights made them.
    pub step: usize,
    pub levels: Vec<LevelFrame>,
}

/// Latest-value slot for [`Levels`], read back under the same rules as [`Iterates`] for the
/// method named in [`Desired::levels_for`].
pub type LevelsSlot = LatestSlot<Levels>;

/// The step the worker is computing now: the UI shows "step k · running 4.2 s" for long ones,
/// and the command relay sets its token when a command makes it unwanted.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub method: &'static str,
    pub run_id: u64,
    /// The step being computed (1-based; 1 includes the build).
    pub step: usize,
    pub started: Instant,
    /// The values the run was built with and the working size, to tell whether a new
    /// [`Desired`] leaves it standing.
    pub params: ParamValues,
    pub working_size: usize,
    /// The mask the run sees the image through.
    pub observation: Option<crate::sparse::ObservationSpec>,
    pub cancel: CancelToken,
}

impl InFlight {
    /// Whether `desired` no longer wants this run: its method deselected, its values changed,
    /// or another working size.
    pub fn is_abandoned_by(&self, desired: &Desired) -> bool {
        !desired.selected.contains(&self.method)
            || desired.working_size != self.working_size
            || desired.observation != self.observation
            || desired.params.get(self.method).cloned().unwrap_or_default() != self.params
    }
}

/// Shared cell holding the step in flight, if any.
pub type InFlightCell = Arc<Mutex<Option<InFlight>>>;

#[cfg(test)]
mod tests {
    use super::*;
    use egui::Color32;

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
                levels: Vec::new(),
                sparse: None,
            },
            step_secs: 0.0,
            kept: true,
            thumbnail: Some(Arc::clone(&image)),
            image: Some(image),
            pixels: Some(Arc::new(vec![0.0; 3])),
            live: None,
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
    fn a_step_in_flight_is_abandoned_only_by_changes_to_its_own_run() {
        let mut desired = Desired::empty(64);
        desired.selected = vec!["trajectory", "fourier-mlp"];
        let in_flight = InFlight {
            method: "fourier-mlp",
            run_id: 3,
            step: 7,
            started: Instant::now(),
            params: ParamValues::new(),
            working_size: 64,
            observation: None,
            cancel: CancelToken::new(),
        };
        assert!(!in_flight.is_abandoned_by(&desired));
        let mut other = desired.clone();
        let mut values = ParamValues::new();
        values.set("hidden", 512.0);
        other.params.insert("trajectory", values.clone());
        other.focused = Some("trajectory");
        assert!(
            !in_flight.is_abandoned_by(&other),
            "another method's values"
        );
        let mut own = desired.clone();
        values.set("lr", 0.01);
        own.params.insert("fourier-mlp", values);
        assert!(in_flight.is_abandoned_by(&own));
        let mut size = desired.clone();
        size.working_size = 128;
        assert!(in_flight.is_abandoned_by(&size));
        let mut deselected = desired;
        deselected.selected.retain(|m| *m != "fourier-mlp");
        assert!(in_flight.is_abandoned_by(&deselected));
        assert!(Command::Pause.cancels_any_step());
        assert!(!Command::Sync.cancels_any_step());
    }
}
