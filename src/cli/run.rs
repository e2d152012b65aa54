//! `inrlab run`: the selected methods, side by side, each written out as it settles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ArgMatches;

use crate::checkpoint::{Checkpoint, CheckpointSchedule};
use crate::compute::{Backend, create_backend};
use crate::methods::{self, MethodInfo, ParamValues, StepReport};
use crate::output::{Existing, check_writable};
use crate::provenance::{ImageOrigin, Provenance};
use crate::runner::{RunOutcome, StepRecord, run_methods};
use crate::session::AdvanceResult;
use crate::sparse::{BestStep, ObservationSpec, Refit, superres};
use crate::target::{Target, rgb8_from_f32};

use super::config::*;
use super::dataset::run_dataset;
use super::files::*;
use super::progress::Progress;
use super::{RunArgs, WindowArgs, load_target, parameter_values, selected_methods};

/// `inrlab run`.
pub fn run(args: &RunArgs, window: &WindowArgs, run_matches: &ArgMatches) -> anyhow::Result<()> {
    let resumed = args.resume.as_deref().map(Checkpoint::read).transpose()?;
    let (args, window, recorded) = match (&args.config, &resumed, &args.resume) {
        (Some(config), _, _) => {
            apply_config(Provenance::read(config)?, config, args, window, run_matches)?
        }
        (None, Some(checkpoint), Some(path)) => apply_config(
            checkpoint.provenance.clone(),
            path,
            args,
            window,
            run_matches,
        )?,
        _ => (args.clone(), window.clone(), BTreeMap::new()),
    };
    let (args, window) = (&args, &window);
    let mut params = parameter_values(run_matches)?;
    if let Some(seed) = args.seed {
        params.set("seed", seed as f64);
    }
    let selected = selected_methods(args.method.as_deref().unwrap_or_default())?;
    let several = selected.len() > 1;
    let observation = observation_spec(args)?;
    if observation.is_some() || args.superres.is_some() {
        let unable: Vec<&str> = (selected.iter())
            .filter(|info| !info.fits_observed_pixels)
            .map(|info| info.name)
            .collect();
        anyhow::ensure!(
            unable.is_empty(),
            "{} cannot fit from a fraction of the pixels or render off its grid; {} can",
            unable.join(", "),
            methods::fitting_observed_pixels(|info| info.name)
        );
    }
    let existing = if args.overwrite {
        Existing::Overwrite
    } else {
        Existing::Refuse
    };
    check_checkpointed(args, &selected, resumed.as_ref())?;
    if let Some(folder) = &args.dataset {
        anyhow::ensure!(
            selected.len() == 1 && selected[0].name == methods::wavelet::INFO.name,
            "--dataset trains the wavelet operator: use it with --method wavelet"
        );
        let mut own = recorded.get(selected[0].name).cloned().unwrap_or_default();
        for (name, value) in params.iter() {
            own.set(name, value);
        }
        own.validate(selected[0].name, selected[0].params)?;
        return run_dataset(folder, args, window, &own, existing, resumed.as_ref());
    }
    // Validate everything before any computing: parameters, files, then the image.
    let (plans, dirs) = plan_methods(
        args,
        &selected,
        &params,
        &recorded,
        observation.is_some(),
        existing,
    )?;
    if let Some(checkpoint) = &resumed {
        check_steps_left(checkpoint, plans[0].0, &plans[0].1)?;
    }
    let (truth, target) = working_target(args, window, observation.as_ref())?;
    let render_coords = args
        .superres
        .map(|factor| crate::target::rendering_grid(args.size / factor, args.size));
    let backend = create_backend(window.backend)?;
    let base = RecordBase {
        origin: match &window.image {
            Some(path) => ImageOrigin::file(path)?,
            None => ImageOrigin::sample(),
        },
        args,
        observation,
        backend: backend.as_ref(),
    };
    let mut schedule = match args.checkpoint_every {
        Some(every) => {
            let (info, own) = &plans[0];
            let schedule = CheckpointSchedule::new(
                every as usize,
                total_steps(info, own),
                &args.out,
                existing,
                base.of(&[(info, own)])?,
                resumed
                    .as_ref()
                    .map(|c| c.history.clone())
                    .unwrap_or_default(),
            );
            check_writable(&schedule.paths(), existing)?;
            Some(schedule)
        }
        None => None,
    };
    let mut unsaved_checkpoints = 0;
    let recorder = match &args.record {
        Some(file) => {
            anyhow::ensure!(
                !several,
                "--record records one method; name one with --method"
            );
            let (info, own) = &plans[0];
            let options = crate::recording::RecordingOptions {
                fps: args.fps,
                text: base.of(&[(info, own)])?.png_text(),
                ..Default::default()
            };
            Some(crate::recording::Recorder::start(file, options, existing)?)
        }
        None => None,
    };
    let every = args.every as usize;
    let names: Vec<&str> = selected.iter().map(|m| m.name).collect();
    let progress = Progress::new(&names);
    let writing = Writing {
        truth: &truth,
        target: &target,
        base: &base,
        progress: &progress,
        existing,
    };
    let mut failures = Vec::new();
    let mut first_error = None;
    let mut finished = Vec::new();
    // Each method's files are written as soon as it settles, while the others go on.
    run_methods(
        &plans,
        &target,
        backend.as_ref(),
        args.rng,
        true,
        resumed.as_ref(),
        render_coords.as_deref(),
        |session, advance| {
            progress.update(session, advance);
            if let (Some(schedule), AdvanceResult::Stepped(report)) =
                (schedule.as_mut(), &advance.result)
            {
                let slot = session.slot(advance.index);
                let method = slot.method().expect("a stepped method is in its slot");
                let saved =
                    schedule.after_step(method, session.backend(), report, slot.compute_secs);
                if let Some(Err(error)) = saved {
                    progress.eprintln(format!("inrlab: checkpoint not saved: {error:#}"));
                    unsaved_checkpoints += 1;
                }
            }
            if let (Some(recorder), AdvanceResult::Stepped(report)) = (&recorder, &advance.result)
                && let Some(method) = session.slot(advance.index).method()
                && (report.step.is_multiple_of(every) || method.is_done())
            {
                let (side, rgb) = recording_frame(&method.image(session.backend()), target.size);
                recorder.push_waiting(side, side, std::sync::Arc::new(rgb));
            }
        },
        |index, outcome| {
            let (info, own) = &plans[index];
            match outcome.and_then(|outcome| writing.settled(info, own, &dirs[index], outcome)) {
                Ok(images) => finished.push(images),
                Err(error) if several => {
                    progress.eprintln(format!("inrlab: {error:#}"));
                    failures.push(info.name);
                }
                Err(error) => first_error = Some(error),
            }
        },
    );
    drop(progress);
    if !finished.is_empty() {
        let runs: Vec<_> = plans
            .iter()
            .filter(|(info, _)| finished.iter().any(|(f, _, _)| f.name == info.name))
            .map(|(info, own)| (*info, own))
            .collect();
        let provenance = base.of(&runs)?;
        let summary = write_summary(&args.out, &target, &finished, &provenance, existing);
        if let Err(error) = summary {
            first_error.get_or_insert(error);
        }
    }
    if let Some(recorder) = recorder {
        let summary = recorder.finish()?;
        println!(
            "recorded {} frames into {} ({} bytes)",
            summary.frames,
            summary.path.display(),
            summary.bytes
        );
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    anyhow::ensure!(
        unsaved_checkpoints == 0,
        "{unsaved_checkpoints} checkpoints were not saved (see above)"
    );
    match failures.as_slice() {
        [] => Ok(()),
        many => anyhow::bail!("{} did not finish (see above)", many.join(", ")),
    }
}

/// A method to run with its parameters, as `run_methods` takes them.
type Plan = (&'static MethodInfo, ParamValues);

/// Each selected method's parameters (the protocol's network with `--holdout`, the recorded
/// run's values with `--config`, then those given on the command line) and the folder its
/// files go to, every one of those files checked writable before anything is computed.
fn plan_methods(
    args: &RunArgs,
    selected: &[&'static MethodInfo],
    params: &ParamValues,
    recorded: &BTreeMap<&'static str, ParamValues>,
    observed: bool,
    existing: Existing,
) -> anyhow::Result<(Vec<Plan>, Vec<PathBuf>)> {
    let several = selected.len() > 1;
    let mut plans = Vec::new();
    let mut dirs = Vec::new();
    for info in selected {
        let mut own = if args.holdout {
            holdout_defaults(info)
        } else {
            ParamValues::new()
        };
        for (name, value) in recorded.get(info.name).into_iter().flat_map(|r| r.iter()) {
            own.set(name, value);
        }
        for spec in info.params {
            if let Some(v) = params.explicit(spec.name) {
                own.set(spec.name, v);
            }
        }
        if !several {
            // A parameter the single method lacks is a mistake worth reporting.
            for (name, value) in params.iter() {
                own.set(name, value);
            }
        }
        own.validate(info.name, info.params)?;
        let dir = if several {
            args.out.join(info.name)
        } else {
            args.out.clone()
        };
        let mut files: Vec<PathBuf> = [
            "metrics.json",
            "metrics.csv",
            "final.png",
            "trajectory.png",
            "curves.png",
        ]
        .iter()
        .map(|f| dir.join(f))
        .collect();
        if info.has_levels {
            files.push(dir.join("scales.png"));
        }
        if observed {
            files.push(dir.join("sparse.png"));
        }
        if args.superres.is_some() {
            files.extend(["superres.png", "superres.json"].map(|f| dir.join(f)));
        }
        check_writable(&files, existing)?;
        plans.push((*info, own));
        dirs.push(dir);
    }
    let mut summary_files = vec![args.out.join("compare.png")];
    if several {
        summary_files.push(args.out.join("curves.png"));
    }
    check_writable(&summary_files, existing)?;
    if several {
        let unused: Vec<&str> = params
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                !selected
                    .iter()
                    .any(|m| m.params.iter().any(|p| p.name == *name))
            })
            .collect();
        anyhow::ensure!(
            unused.is_empty(),
            "none of the selected methods has --{}",
            unused.join(", --")
        );
    }
    Ok((plans, dirs))
}

/// The image at the working size (the truth), and what the methods fit: the truth, or its
/// downsampled copy with `--superres`, seen through the mask with `--mask` (whose
/// interpolation baselines are printed here).
fn working_target(
    args: &RunArgs,
    window: &WindowArgs,
    observation: Option<&ObservationSpec>,
) -> anyhow::Result<(Target, Target)> {
    let truth = load_target(window.image.as_deref(), args.size, args.fit)?;
    let target = match args.superres {
        Some(factor) => {
            anyhow::ensure!(
                args.size.is_multiple_of(factor) && args.size / factor >= 4,
                "--superres {factor} needs a working size that is a multiple of {factor} and \
                 at least {}",
                4 * factor
            );
            Target {
                name: truth.name.clone(),
                size: args.size / factor,
                pixels: superres::downsample(&truth.pixels, args.size, factor)?,
                observation: None,
            }
        }
        None => truth.clone(),
    };
    let target = match observation {
        Some(spec) => target.observed_through(spec.clone())?,
        None => target,
    };
    if let Some(observation) = &target.observation {
        let baselines: Vec<String> = (observation.baselines.iter())
            .map(|b| format!("{} {:.2} dB", b.name, b.scores.unobserved_db))
            .collect();
        println!(
            "mask {}; on the unobserved pixels: {}",
            observation.describe(),
            baselines.join(", ")
        );
    }
    Ok((truth, target))
}

/// What every file of the run records beside its methods: the image, the working size, fit,
/// generator, backend, mask and super-resolution factor.
struct RecordBase<'a> {
    origin: ImageOrigin,
    args: &'a RunArgs,
    observation: Option<ObservationSpec>,
    backend: &'a dyn Backend,
}

impl RecordBase<'_> {
    /// The record of `runs` (one method's, or all that finished for the summary).
    fn of(&self, runs: &[(&MethodInfo, &ParamValues)]) -> anyhow::Result<Provenance> {
        let args = self.args;
        let mut record = Provenance::new(
            self.origin.clone(),
            args.size,
            args.fit,
            args.rng,
            self.backend,
            runs,
        )?;
        record.observation = self.observation.clone();
        record.superres = args.superres;
        Ok(record)
    }
}

/// A settled method's files, written while the others go on.
struct Writing<'a> {
    truth: &'a Target,
    target: &'a Target,
    base: &'a RecordBase<'a>,
    progress: &'a Progress,
    existing: Existing,
}

/// A method that finished: its reports and last image, for compare.png and the curves.
type Finished = (&'static MethodInfo, Vec<StepReport>, Vec<f32>);

impl Writing<'_> {
    /// Writes `info`'s files into `dir` and prints its summary lines.
    fn settled(
        &self,
        info: &'static MethodInfo,
        own: &ParamValues,
        dir: &Path,
        outcome: RunOutcome,
    ) -> anyhow::Result<Finished> {
        let (args, target, existing) = (self.base.args, self.target, self.existing);
        let records = outcome.records;
        let provenance = self.base.of(&[(info, own)])?;
        let superres = match (args.superres, outcome.rendering) {
            (Some(factor), Some(rendering)) => {
                let rendering = rendering?;
                let (report, renderings) = superres::evaluate(
                    &self.truth.pixels,
                    self.truth.size,
                    factor,
                    &target.pixels,
                    &rendering,
                )?;
                Some((report, rendering, renderings))
            }
            _ => None,
        };
        write_run(
            dir,
            info,
            own,
            &records,
            outcome.iterates.as_deref(),
            outcome.levels.as_deref(),
            outcome.best.as_ref(),
            outcome.refit.as_ref(),
            target,
            self.base.backend,
            &provenance,
            existing,
        )?;
        if let Some((report, rendering, renderings)) = &superres {
            write_superres(
                dir,
                info,
                self.truth,
                report,
                rendering,
                renderings,
                &provenance,
                existing,
            )?;
            self.progress.println(format!(
                "{:<14} {}× super-resolution: {:.2} dB (bicubic {:.2}, Lanczos {:.2}); \
                 power above the {}² Nyquist: {:.1}% (truth {:.1}%, bicubic {:.1}%)",
                info.name,
                report.factor,
                report.model_db,
                report.bicubic_db,
                report.lanczos_db,
                target.size,
                100.0 * report.spectrum.hf_share.model,
                100.0 * report.spectrum.hf_share.truth,
                100.0 * report.spectrum.hf_share.bicubic,
            ));
        }
        if let Some(line) = sparse_summary(
            info,
            &records,
            outcome.best.as_ref(),
            outcome.refit.as_ref(),
        ) {
            self.progress.println(line);
        }
        let last = records.last().expect("a run has at least one step");
        self.progress.println(format!(
            "{:<14} {:>3} steps  {:>7.3} s  final PSNR {:.2} dB  → {}",
            info.name,
            records.len(),
            last.seconds,
            last.report.psnr_db,
            dir.display()
        ));
        let image = records.iter().rev().find_map(|r| r.image.clone());
        Ok((
            info,
            records.iter().map(|r| r.report.clone()).collect(),
            image.unwrap_or_else(|| target.pixels.clone()),
        ))
    }
}

/// "fourier-mlp    best validation at step 250: unobserved 24.61 dB (final 24.02 dB)".
pub(super) fn sparse_summary(
    info: &MethodInfo,
    records: &[StepRecord],
    best: Option<&BestStep>,
    refit: Option<&Result<Refit, String>>,
) -> Option<String> {
    let last = records.last()?.report.sparse?;
    let mut line = match last.heldout_db {
        Some(heldout) => format!(
            "{:<14} held-out odd pixels {heldout:.2} dB, training pixels {:.2} dB",
            info.name, last.observed_db
        ),
        None => format!(
            "{:<14} unobserved pixels {:.2} dB (SSIM {:.3}), observed {:.2} dB",
            info.name, last.unobserved_db, last.unobserved_ssim, last.observed_db
        ),
    };
    if let Some(best) = best {
        line.push_str(&format!(
            "; best validation ({:.2} dB) at step {}: unobserved {:.2} dB",
            best.scores.validation_db.unwrap_or(f64::NAN),
            best.step,
            best.scores.unobserved_db
        ));
    }
    match refit {
        Some(Ok(refit)) => line.push_str(&format!(
            "; refit on every observed pixel to step {}: unobserved {:.2} dB (SSIM {:.3})",
            refit.step, refit.scores.unobserved_db, refit.scores.unobserved_ssim
        )),
        Some(Err(why)) => line.push_str(&format!("; the refit failed: {why}")),
        None => {}
    }
    Some(line)
}

/// A method's image as a recording frame: RGB bytes, magnified by a whole factor (nearest) to
/// at least 256 pixels a side so that a small working size stays legible.
pub(super) fn recording_frame(pixels: &[f32], size: usize) -> (usize, Vec<u8>) {
    let factor = 256usize.div_ceil(size).max(1);
    let image = rgb8_from_f32(pixels, size, size);
    let side = size * factor;
    let big = image::imageops::resize(
        &image,
        side as u32,
        side as u32,
        image::imageops::FilterType::Nearest,
    );
    (side, big.into_raw())
}
