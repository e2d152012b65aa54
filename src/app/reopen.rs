//! A GPU device lost under the window takes eframe's renderer with it: egui_wgpu panics at its
//! next buffer write, eframe cannot move a window to another device, and winit allows one event
//! loop per process. So when the compute shares the window's device, [`run_window`] runs the
//! window under a watch: the window closes itself once it learns of the loss (or its renderer's
//! panic is caught) and hands over what the user had (settings, image, folder, playing);
//! [`reopen_on_the_cpu`] then starts inrlab again in this process's place, with the compute on
//! the CPU backend, and the new window says what happened. A panic that is not a device loss
//! goes on as before.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use super::Settings;
use super::protocol::ImageSource;
use crate::compute::gpu::SharedDevice;
use crate::output::{Existing, write_atomic};

/// Names the handover file of a window reopened after a device loss (set for the new process
/// only, by [`reopen_on_the_cpu`]).
const HANDOVER_VARIABLE: &str = "INRLAB_REOPENED_FROM";

/// What a window hands to the one opened after its device was lost.
#[derive(Clone, Debug)]
pub struct Carried {
    pub settings: Settings,
    pub image: ImageSource,
    pub folder: Option<PathBuf>,
    pub playing: bool,
}

/// A window reopened after a device loss: why, and what the first window had.
#[derive(Clone, Debug)]
pub struct Reopened {
    pub why: String,
    pub carried: Option<Carried>,
}

impl Reopened {
    /// What the reopened window says, until dismissed.
    pub fn warning(&self) -> String {
        format!(
            "The GPU device was lost ({}), and the window's renderer with it: the window \
             reopened on the CPU backend, same image and settings; every method restarted.",
            self.why
        )
    }
}

#[derive(Default)]
struct Slots {
    /// The shared device (with its watch), once a window computes on it.
    device: Option<SharedDevice>,
    carried: Option<Carried>,
}

/// Between one window and [`run_window`]: the device to watch, and what to carry over.
#[derive(Clone, Default)]
pub struct Handover(Arc<Mutex<Slots>>);

impl Handover {
    /// The window computes on `shared`, whose watch says whether it was lost.
    pub fn watch(&self, shared: &SharedDevice) {
        self.slots().device = Some(shared.clone());
    }

    /// Kept for the next window, in case this one closes for a device loss.
    pub fn carry(&self, carried: Carried) {
        self.slots().carried = Some(carried);
    }

    /// Why the watched device was lost; polled first unless `poll` is false (the panic hook,
    /// which must not call into wgpu while the panicking code may hold its locks).
    fn loss(&self, poll: bool) -> Option<String> {
        let shared = self.slots().device.clone()?;
        match poll {
            true => shared.loss.polled(&shared.device),
            false => shared.loss.why(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a window run under [`run_window`] ended.
pub enum Ended<R> {
    /// Closed (or its renderer stopped) because the watched device was lost.
    DeviceLost(Box<Reopened>),
    Finished(R),
}

/// Runs `window` (one `eframe::run_native`) and says whether it ended with its device lost.
/// While it runs, a panic on a lost device is reported in one line instead of a backtrace.
pub fn run_window<R>(handover: &Handover, window: impl FnOnce() -> R) -> Ended<R> {
    let previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> =
        Arc::from(std::panic::take_hook());
    let hook_previous = Arc::clone(&previous);
    let hook_handover = handover.clone();
    // Reads the watch without polling: a hook must not call into wgpu, whose locks the
    // panicking code may hold.
    std::panic::set_hook(Box::new(move |info| match hook_handover.loss(false) {
        Some(_) => eprintln!(
            "inrlab: the window's renderer stopped on the lost device ({})",
            info.payload_as_str().unwrap_or("no message")
        ),
        None => hook_previous(info),
    }));
    let outcome = catch_unwind(AssertUnwindSafe(window));
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    match (handover.loss(true), outcome) {
        (Some(why), _) => Ended::DeviceLost(Box::new(Reopened {
            why,
            carried: handover.slots().carried.take(),
        })),
        (None, Ok(result)) => Ended::Finished(result),
        (None, Err(panic)) => resume_unwind(panic),
    }
}

/// The handover file: what [`Reopened`] holds, with a dropped image's bytes in a file beside it.
#[derive(serde::Serialize, serde::Deserialize)]
struct HandoverFile {
    why: String,
    settings: Option<Settings>,
    image: CarriedImage,
    folder: Option<PathBuf>,
    playing: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
enum CarriedImage {
    Sample,
    Path(PathBuf),
    /// Dropped as bytes (no path): kept in `file` until the new window has read it.
    Bytes {
        name: String,
        file: PathBuf,
    },
}

/// Starts inrlab again with the same command line, in this process's place where the system
/// allows (Unix), the compute on the CPU backend, and what `reopened` carries. Returns only if
/// that could not be done, or (elsewhere) with the new process's exit code.
pub fn reopen_on_the_cpu(reopened: &Reopened) -> anyhow::Result<i32> {
    let base = std::env::temp_dir().join(format!("inrlab-handover-{}", std::process::id()));
    let carried = reopened.carried.as_ref();
    let image = match carried.map(|carried| &carried.image) {
        None | Some(ImageSource::Sample) => CarriedImage::Sample,
        Some(ImageSource::Path(path)) => CarriedImage::Path(path.clone()),
        Some(ImageSource::Bytes { name, bytes }) => {
            let file = base.with_extension("image");
            write_atomic(&file, bytes, Existing::Overwrite)?;
            CarriedImage::Bytes {
                name: name.clone(),
                file,
            }
        }
    };
    let handover = HandoverFile {
        why: reopened.why.clone(),
        settings: carried.map(|carried| carried.settings.clone()),
        image,
        folder: carried.and_then(|carried| carried.folder.clone()),
        playing: carried.is_none_or(|carried| carried.playing),
    };
    let file = base.with_extension("json");
    write_atomic(&file, &serde_json::to_vec(&handover)?, Existing::Overwrite)?;
    let program = std::env::current_exe().context("cannot find inrlab's own program")?;
    let mut command = std::process::Command::new(program);
    command
        .args(std::env::args_os().skip(1))
        .env(HANDOVER_VARIABLE, &file);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let error = command.exec();
        Err(error).context("cannot start inrlab again")
    }
    #[cfg(not(unix))]
    {
        let status = command.status().context("cannot start inrlab again")?;
        Ok(status.code().unwrap_or(1))
    }
}

/// What the window this process replaces handed over, when it is one ([`reopen_on_the_cpu`]).
/// The handover files are removed once read.
pub fn handed_over() -> anyhow::Result<Option<Reopened>> {
    let Some(file) = std::env::var_os(HANDOVER_VARIABLE) else {
        return Ok(None);
    };
    let file = Path::new(&file);
    let read = || -> anyhow::Result<Reopened> {
        let handover: HandoverFile = serde_json::from_slice(&std::fs::read(file)?)?;
        let image = match handover.image {
            CarriedImage::Sample => ImageSource::Sample,
            CarriedImage::Path(path) => ImageSource::Path(path),
            CarriedImage::Bytes { name, file } => {
                let bytes = std::fs::read(&file);
                let _ = std::fs::remove_file(&file);
                ImageSource::Bytes {
                    name,
                    bytes: bytes?.into(),
                }
            }
        };
        Ok(Reopened {
            why: handover.why,
            carried: handover.settings.map(|settings| Carried {
                settings,
                image,
                folder: handover.folder,
                playing: handover.playing,
            }),
        })
    };
    let reopened = read().with_context(|| {
        format!(
            "cannot read what the window before this one handed over ({})",
            file.display()
        )
    });
    let _ = std::fs::remove_file(file);
    reopened.map(Some)
}
