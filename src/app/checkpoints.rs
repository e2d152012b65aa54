//! The window's checkpoints: Save checkpoint asks the worker (which owns the methods) to write
//! the focused trained method's state as `checkpoint-<method>-step-NNNNNN.safetensors` in the
//! output folder; Load checkpoint… reads a file off the UI thread and asks the worker to restart
//! that method from it, which it does only if the file fits the window's image or folder and
//! working size (the other methods go on untouched).

use std::path::{Path, PathBuf};

use super::protocol::{CheckpointRequest, Command};
use super::state::Model;
use crate::checkpoint::{Checkpoint, HistoryStep};
use crate::methods::wavelet_dataset::dataset_size_for;
use crate::provenance::ImageOrigin;

/// The method Save checkpoint would save, or why the button is off.
pub fn saveable(model: &Model, focused: Option<&'static str>) -> Result<&'static str, String> {
    let Some(method) = focused else {
        return Err("Select a trained method first.".into());
    };
    let Some(run) = model.run(method) else {
        return Err(format!("{method} is not running."));
    };
    if !run.info.resumable {
        return Err(format!(
            "{method} is not trained step by step: it has no checkpoint."
        ));
    }
    if run.steps_done() == 0 {
        return Err(format!("{method} has not taken a step yet."));
    }
    Ok(method)
}

/// What the worker needs to save the checkpoint of `focused` ([`saveable`]) into `folder`
/// beside what it holds: the run's steps so far.
pub fn save_command(
    model: &Model,
    focused: Option<&'static str>,
    folder: PathBuf,
) -> Result<Command, String> {
    let method = saveable(model, focused)?;
    let run = model
        .run(method)
        .ok_or_else(|| format!("{method} is not running"))?;
    let mut seconds = 0.0;
    let history = run
        .cells
        .values()
        .map(|cell| {
            seconds += cell.step_secs;
            HistoryStep {
                report: cell.report.clone(),
                seconds,
            }
        })
        .collect();
    Ok(Command::SaveCheckpoint(Box::new(CheckpointRequest {
        method,
        run_id: run.run_id,
        folder,
        history,
    })))
}

/// The Load checkpoint… dialog (on its own thread): the file picked, read, or why it cannot be;
/// `None` when the dialog is cancelled.
pub fn pick(start: PathBuf) -> Option<Result<Checkpoint, String>> {
    let path = rfd::FileDialog::new()
        .set_title("Resume a trained method from a checkpoint")
        .set_directory(start)
        .add_filter("checkpoints", &[crate::checkpoint::EXTENSION])
        .pick_file()?;
    Some(Checkpoint::read(&path).map_err(|error| format!("{error:#}")))
}

/// Why `checkpoint` does not fit what the window trains on (its image by content, or its
/// folder, and the working size), in one line; `None` when it fits.
pub fn data_mismatch(
    checkpoint: &Checkpoint,
    image: &ImageOrigin,
    working_size: usize,
    folder: Option<&Path>,
) -> Option<String> {
    let record = &checkpoint.provenance;
    let trains_on_folder = checkpoint.info().is_ok_and(|info| info.trains_on_folder);
    match (&record.dataset, folder.filter(|_| trains_on_folder)) {
        (Some(wanted), Some(open)) if wanted == open => {
            let (saved, here) = (
                dataset_size_for(record.working_size),
                dataset_size_for(working_size),
            );
            (saved != here).then(|| {
                format!("it trained on the folder at {saved}², the window trains it at {here}²")
            })
        }
        (Some(wanted), _) => Some(format!(
            "it trained on the folder {}; train on that folder first",
            wanted.display()
        )),
        (None, Some(open)) => Some(format!(
            "it trained on the image {}, the window trains on the folder {}",
            record.image.name,
            open.display()
        )),
        (None, None) if record.image.sha256 != image.sha256 => Some(format!(
            "it trained on {} (sha256 {}), not on the image open now; open that one first",
            record.image.name, record.image.sha256
        )),
        (None, None) => (record.working_size != working_size).then(|| {
            format!(
                "it trained at {}², the window works at {working_size}²; pick that working \
                 size first",
                record.working_size
            )
        }),
    }
}
