//! Runs one method to completion without a window, collecting what the command line writes.

use std::time::Instant;

use crate::compute::Backend;
use crate::methods::{MethodInfo, ParamValues, Setup, StepReport};
use crate::rng::RngKind;
use crate::target::Target;

/// One finished step: its report, the cumulative compute time, and (when kept) its image.
pub struct StepRecord {
    pub report: StepReport,
    pub seconds: f64,
    pub image: Option<Vec<f32>>,
}

/// A finished run: every step, and the final network's intermediate images for methods that
/// refine internally ([`crate::methods::Method::iterates`]).
pub struct RunOutcome {
    pub records: Vec<StepRecord>,
    pub iterates: Option<Vec<Vec<f32>>>,
}

/// Runs `info` on `target` for all its steps. `keep_images` downloads the images of the steps
/// the method keeps for its trajectory (every step for the reservoir methods, milestones for
/// trained ones); otherwise only the last one is downloaded.
pub fn run_to_completion(
    info: &MethodInfo,
    target: &Target,
    backend: &dyn Backend,
    rng: RngKind,
    params: &ParamValues,
    keep_images: bool,
) -> anyhow::Result<Vec<StepRecord>> {
    Ok(run_method(info, target, backend, rng, params, keep_images)?.records)
}

/// [`run_to_completion`] that also returns the final iterates.
pub fn run_method(
    info: &MethodInfo,
    target: &Target,
    backend: &dyn Backend,
    rng: RngKind,
    params: &ParamValues,
    keep_images: bool,
) -> anyhow::Result<RunOutcome> {
    let mut method = info.build(&Setup {
        target,
        backend,
        rng,
        params,
    })?;
    let mut records: Vec<StepRecord> = Vec::with_capacity(method.total_steps());
    let mut seconds = 0.0;
    while !method.is_done() {
        let started = Instant::now();
        let report = method.step(backend)?;
        backend.finish();
        seconds += started.elapsed().as_secs_f64();
        if let Some(what) = divergence(&report) {
            anyhow::bail!(
                "{} diverged at step {} ({what}); lower the learning rate",
                info.name,
                report.step
            );
        }
        let image = (keep_images && method.keep_image(report.step)).then(|| method.image(backend));
        records.push(StepRecord {
            report,
            seconds,
            image,
        });
    }
    if let Some(last) = records.last_mut().filter(|r| r.image.is_none()) {
        last.image = Some(method.image(backend));
    }
    let iterates = method.iterates(backend);
    Ok(RunOutcome { records, iterates })
}

/// Why a step's report means the method has diverged: a PSNR or a training loss that is not a
/// finite number. `None` for a healthy step.
pub fn divergence(report: &StepReport) -> Option<&'static str> {
    if !report.psnr_db.is_finite() {
        Some("PSNR is not a number")
    } else if report.loss.is_some_and(|loss| !loss.is_finite()) {
        Some("the loss is not finite")
    } else {
        None
    }
}
