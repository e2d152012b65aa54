//! `inrlab run --method wavelet --dataset <folder>`: the wavelet operator trained on a folder.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::checkpoint::{Checkpoint, CheckpointSchedule};
use crate::compute::create_backend;
use crate::figures;
use crate::methods::params::Resolved;
use crate::methods::{self, Method, ParamValues};
use crate::output::{Existing, check_writable, png_bytes_with_text, write_atomic};
use crate::provenance::{ImageOrigin, Provenance};
use crate::rng::RngKind;

use super::config::check_steps_left;
use super::files::StepEntry;
use super::{RunArgs, WindowArgs};

/// `inrlab run --method wavelet --dataset <folder>`: trains on the folder, writes metrics.json
/// and samples.png (one row per noise canvas: every level, magnified to the working size).
pub(super) fn run_dataset(
    folder: &Path,
    args: &RunArgs,
    window: &WindowArgs,
    params: &ParamValues,
    existing: Existing,
    resumed: Option<&Checkpoint>,
) -> anyhow::Result<()> {
    use crate::methods::wavelet_dataset::{Dataset, FolderRun};
    let info = &methods::wavelet::INFO;
    let files = ["metrics.json", "samples.png"].map(|f| args.out.join(f));
    check_writable(&files, existing)?;
    if let Some(checkpoint) = resumed {
        check_steps_left(checkpoint, info, params)?;
    }
    let dataset = std::sync::Arc::new(Dataset::load(folder, args.size, args.fit)?);
    let backend = create_backend(window.backend)?;
    let mut run = FolderRun::new(
        backend.as_ref(),
        std::sync::Arc::clone(&dataset),
        params,
        args.rng,
        dataset.size,
        crate::compute::CancelToken::new(),
    )?;
    for warning in run.warnings() {
        eprintln!("inrlab: {warning}");
    }
    eprintln!(
        "inrlab: {} training images, {} held out, at {}²",
        dataset.train.len(),
        dataset.held_out.len(),
        dataset.size
    );
    let mut provenance = Provenance::new(
        ImageOrigin::sample(),
        dataset.size,
        args.fit,
        args.rng,
        backend.as_ref(),
        &[(info, params)],
    )?;
    provenance.dataset = Some(folder.to_path_buf());
    provenance.dataset_files = dataset.files.clone();
    let history = resumed.map(|c| c.history.clone()).unwrap_or_default();
    let mut schedule = args.checkpoint_every.map(|every| {
        CheckpointSchedule::new(
            every as usize,
            run.total_steps(),
            &args.out,
            existing,
            provenance.clone(),
            history.clone(),
        )
    });
    if let Some(schedule) = &schedule {
        check_writable(&schedule.paths(), existing)?;
    }
    if let Some(checkpoint) = resumed {
        checkpoint.restore(&mut run, backend.as_ref())?;
    }
    let steps = run.total_steps();
    let bar = indicatif::ProgressBar::new(steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("wavelet {bar:30} {pos}/{len} steps  {msg}")
            .expect("a valid template"),
    );
    bar.set_position(run.steps_done() as u64);
    // A resumed run's time goes on from the checkpoint's.
    let earlier_secs = history.last().map_or(0.0, |h| h.seconds);
    let started = std::time::Instant::now();
    let mut monitor = crate::runner::DivergenceMonitor::default();
    let mut entries: Vec<StepEntry> = (history.into_iter())
        .map(|h| {
            monitor.observe(&h.report);
            StepEntry::new(h.report, h.seconds)
        })
        .collect();
    let mut unsaved_checkpoints = 0;
    while !run.is_done() {
        let report = run.step(backend.as_ref())?;
        if let Some(why) = monitor.observe(&report) {
            anyhow::bail!(
                "wavelet diverged at step {} ({why}); lower --lr",
                report.step
            );
        }
        let seconds = earlier_secs + started.elapsed().as_secs_f64();
        if let Some(schedule) = schedule.as_mut()
            && let Some(Err(error)) = schedule.after_step(&run, backend.as_ref(), &report, seconds)
        {
            bar.suspend(|| eprintln!("inrlab: checkpoint not saved: {error:#}"));
            unsaved_checkpoints += 1;
        }
        if let Some(level) = report.levels.last() {
            bar.set_message(format!(
                "held-out rollout {:.2} dB, teacher-forced {:.2} dB",
                level.rollout_db, level.teacher_forced_db
            ));
        }
        bar.inc(1);
        entries.push(StepEntry::new(report, seconds));
    }
    bar.finish_and_clear();
    #[derive(Serialize)]
    struct DatasetMetrics<'a> {
        method: &'a str,
        backend: String,
        adapter: String,
        dataset: String,
        training_images: usize,
        held_out_images: usize,
        skipped: Vec<String>,
        size: usize,
        rng: RngKind,
        params: BTreeMap<String, Resolved>,
        provenance: &'a Provenance,
        /// What `psnr` of a step is here.
        psnr_is: &'static str,
        steps: Vec<StepEntry>,
    }
    let metrics = DatasetMetrics {
        method: info.name,
        backend: backend.kind().to_string(),
        adapter: backend.adapter_name(),
        dataset: folder.display().to_string(),
        training_images: dataset.train.len(),
        held_out_images: dataset.held_out.len(),
        skipped: dataset
            .skipped
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.display()))
            .collect(),
        size: dataset.size,
        rng: args.rng,
        params: params.resolved(info.params)?,
        provenance: &provenance,
        psnr_is: "teacher-forced PSNR of the step's mini-batch at the finest level; `levels` \
                  are the held-out images'",
        steps: entries,
    };
    let samples = run.samples(backend.as_ref(), 6)?;
    let sheet = figures::samples_sheet(info, &provenance, steps, &samples);
    let size = dataset.size;
    write_atomic(
        &args.out.join("metrics.json"),
        &serde_json::to_vec_pretty(&metrics)?,
        existing,
    )?;
    write_atomic(
        &args.out.join("samples.png"),
        &png_bytes_with_text(&sheet.render(), &provenance.png_text())?,
        existing,
    )?;
    let last = metrics
        .steps
        .last()
        .and_then(|s| s.levels.as_ref())
        .and_then(|l| l.last());
    match last {
        Some(level) => eprintln!(
            "wavelet  {steps} steps on {} images  held-out at {size}²: teacher-forced {:.2} dB, \
             rollout {:.2} dB (bicubic {:.2})  → {}",
            dataset.train.len(),
            level.teacher_forced_db,
            level.rollout_db,
            level.bicubic_db,
            args.out.display()
        ),
        None => eprintln!("wavelet  {steps} steps  → {}", args.out.display()),
    }
    anyhow::ensure!(
        unsaved_checkpoints == 0,
        "{unsaved_checkpoints} checkpoints were not saved (see above)"
    );
    Ok(())
}
