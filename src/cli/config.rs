//! What a run's options resolve to before anything is computed: a recorded run's settings
//! (`--config`, `--resume`), the observation (`--mask`, `--holdout`), the checkpoint checks.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use clap::ArgMatches;

use crate::checkpoint::Checkpoint;
use crate::compute::BackendChoice;
use crate::methods::{self, MethodInfo, ParamValues};
use crate::provenance::Provenance;
use crate::sparse::{MaskSpec, ObservationSpec};

use super::{RunArgs, WindowArgs, given};

/// What `--mask`, `--holdout` and their options ask for.
pub(super) fn observation_spec(args: &RunArgs) -> anyhow::Result<Option<ObservationSpec>> {
    if args.holdout {
        return Ok(Some(ObservationSpec {
            mask: ObservationSpec::HOLDOUT.into(),
            seed: args.mask_seed,
            validation_share: 0.0,
            patience: 0,
            refit: false,
        }));
    }
    let Some(mask) = &args.mask else {
        anyhow::ensure!(!args.refit, "--refit needs --mask (and a validation share)");
        return Ok(None);
    };
    mask.parse::<MaskSpec>()?;
    anyhow::ensure!(
        (0.0..1.0).contains(&args.validation),
        "--validation is a share of the observed pixels: at least 0 and below 1"
    );
    anyhow::ensure!(
        !args.refit || args.validation > 0.0,
        "--refit fits again to the best-validation step: it needs --validation above 0"
    );
    Ok(Some(ObservationSpec {
        mask: mask.clone(),
        seed: args.mask_seed,
        validation_share: args.validation,
        patience: args.patience,
        refit: args.refit,
    }))
}

/// Tancik et al.'s network and optimizer for the holdout protocol: 3 hidden ReLU layers of
/// 256, 256 Gaussian frequencies at σ = 10, Adam at 1e-3 (1e-2 without a mapping), 2000
/// full-batch steps.
pub(super) fn holdout_defaults(info: &MethodInfo) -> ParamValues {
    use crate::methods::coordinate_mlp::{WIDTH_1, WIDTH_2, WIDTH_3};
    use crate::methods::params::common::FOURIER_SCALE;
    use crate::methods::training::{LEARNING_RATE, TRAINING_STEPS};
    let mut values = ParamValues::new();
    if !info.resumable || !info.fits_observed_pixels {
        return values;
    }
    for spec in [WIDTH_1, WIDTH_2, WIDTH_3] {
        values.set(spec.name, 256.0);
    }
    values.set(TRAINING_STEPS.name, 2000.0);
    let raw = info.name == methods::coord_mlp::INFO.name;
    values.set(LEARNING_RATE.name, if raw { 1e-2 } else { 1e-3 });
    if !raw {
        values.set(methods::fourier_mlp::FREQUENCIES.name, 256.0);
        values.set(FOURIER_SCALE.name, 10.0);
    }
    values
}

/// `--config <file>` (or `--resume`): the run `record` (read from `config`) records, with
/// whatever the command line gives beside it in its place; per method, the recorded parameters.
pub(super) fn apply_config(
    record: Provenance,
    config: &Path,
    args: &RunArgs,
    window: &WindowArgs,
    matches: &ArgMatches,
) -> anyhow::Result<(RunArgs, WindowArgs, BTreeMap<&'static str, ParamValues>)> {
    let (mut args, mut window) = (args.clone(), window.clone());
    let infos = record.method_infos()?;
    if args.method.is_none() {
        let names: Vec<&str> = infos.iter().map(|info| info.name).collect();
        args.method = Some(names.join(","));
    }
    if !given(matches, "size") {
        args.size = record.working_size;
    }
    if !given(matches, "fit") {
        args.fit = record.fit;
    }
    if !given(matches, "rng") {
        args.rng = record.rng;
    }
    if args.dataset.is_none() {
        args.dataset = record.dataset.clone();
    }
    if let Some(spec) = &record.observation
        && args.mask.is_none()
        && !args.holdout
    {
        if spec.is_holdout() {
            args.holdout = true;
        } else {
            args.mask = Some(spec.mask.clone());
            if !given(matches, "validation") {
                args.validation = spec.validation_share;
            }
            if !given(matches, "patience") {
                args.patience = spec.patience;
            }
            if !given(matches, "refit") {
                args.refit = spec.refit;
            }
        }
        if !given(matches, "mask_seed") {
            args.mask_seed = spec.seed;
        }
    }
    if args.superres.is_none() {
        args.superres = record.superres;
    }
    if !given(matches, "backend") {
        window.backend = match record.backend.as_str() {
            "gpu" => BackendChoice::Gpu,
            _ => BackendChoice::Cpu,
        };
    }
    if window.image.is_none() && record.dataset.is_none() {
        window.image = record
            .image
            .resolve()
            .with_context(|| format!("{} names an image", config.display()))?;
    }
    let mut recorded = BTreeMap::new();
    for info in infos {
        recorded.insert(info.name, record.params_of(info)?);
    }
    Ok((args, window, recorded))
}

/// `--resume` and `--checkpoint-every` are for one trained method; `--resume` for the
/// checkpoint's own.
pub(super) fn check_checkpointed(
    args: &RunArgs,
    selected: &[&'static MethodInfo],
    resumed: Option<&Checkpoint>,
) -> anyhow::Result<()> {
    if args.checkpoint_every.is_none() && resumed.is_none() {
        return Ok(());
    }
    let what = if resumed.is_some() {
        "--resume"
    } else {
        "--checkpoint-every"
    };
    let trained: Vec<&str> = (methods::registry().iter())
        .filter(|info| info.resumable)
        .map(|info| info.name)
        .collect();
    let [info] = selected else {
        anyhow::bail!(
            "{what} is for one method; name one of the trained ones ({}) with --method",
            trained.join(", ")
        );
    };
    anyhow::ensure!(
        info.resumable,
        "{} is not trained step by step, so it has no checkpoints ({what} is for {})",
        info.name,
        trained.join(", ")
    );
    if let Some(checkpoint) = resumed {
        anyhow::ensure!(
            checkpoint.method() == info.name,
            "the checkpoint is of {}, not {}",
            checkpoint.method(),
            info.name
        );
    }
    Ok(())
}

/// How many steps a run of a trained method with `params` takes (its `steps`).
pub(super) fn total_steps(info: &MethodInfo, params: &ParamValues) -> usize {
    (info.params.iter())
        .find(|spec| spec.name == "steps")
        .map_or(0, |spec| params.get(spec) as usize)
}

/// A checkpoint at its run's last step has nothing left to resume.
pub(super) fn check_steps_left(
    checkpoint: &Checkpoint,
    info: &MethodInfo,
    params: &ParamValues,
) -> anyhow::Result<()> {
    let (step, total) = (checkpoint.state.step, total_steps(info, params));
    anyhow::ensure!(
        step < total,
        "the checkpoint is at step {step} and the run has {total}: nothing is left to do \
         (give --steps to train longer)"
    );
    Ok(())
}
