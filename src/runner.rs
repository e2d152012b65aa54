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
    let mut monitor = DivergenceMonitor::new();
    while !method.is_done() {
        let started = Instant::now();
        let report = method.step(backend)?;
        backend.finish();
        seconds += started.elapsed().as_secs_f64();
        if let Some(what) = monitor.observe(&report) {
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

/// Watches one run's step reports for divergence that stays finite: a trained method's sigmoid
/// output keeps its loss bounded, so a learning rate far too large ends on a flat picture with
/// a finite loss rather than NaN. Feed it every report of one run, in order.
#[derive(Debug, Default)]
pub struct DivergenceMonitor {
    best_loss: f64,
    /// Consecutive steps whose loss stayed far above the best.
    far_above_best: usize,
    /// Consecutive steps with the output pinned at 0 or 1 and a poor fit.
    saturated: usize,
}

/// How many times its best a loss must stay above, and for how many steps, to be divergence.
const LOSS_FACTOR: f64 = 10.0;
/// Consecutive steps a bad sign must persist (one bad step is an ordinary spike).
const PERSISTENT_STEPS: usize = 20;
/// [`StepReport::saturation`] from which the output counts as pinned at 0 and 1: at 0.9 nearly
/// every value lies within a few hundredths of one of them.
const SATURATED: f64 = 0.9;
/// Below this PSNR a saturated output is a failed fit, not a black-and-white image fitted well.
const POOR_FIT_DB: f64 = 12.0;

impl DivergenceMonitor {
    pub fn new() -> Self {
        DivergenceMonitor {
            best_loss: f64::INFINITY,
            ..Default::default()
        }
    }

    /// Why the run has diverged as of this report, or `None` while it looks healthy: a PSNR or
    /// loss that is not finite, a loss that has stayed above 10× its best for 20 steps, or an
    /// output pinned at 0 and 1 with a poor PSNR for 20 steps.
    pub fn observe(&mut self, report: &StepReport) -> Option<String> {
        if let Some(what) = divergence(report) {
            return Some(what.to_owned());
        }
        if let Some(loss) = report.loss {
            self.best_loss = self.best_loss.min(loss);
            self.far_above_best = if loss > LOSS_FACTOR * self.best_loss {
                self.far_above_best + 1
            } else {
                0
            };
            if self.far_above_best >= PERSISTENT_STEPS {
                return Some(format!(
                    "the loss has stayed above {LOSS_FACTOR}× its best ({:.3e}) for \
                     {PERSISTENT_STEPS} steps",
                    self.best_loss
                ));
            }
        }
        let pinned = report
            .saturation
            .is_some_and(|saturation| saturation >= SATURATED);
        self.saturated = if pinned && report.psnr_db < POOR_FIT_DB {
            self.saturated + 1
        } else {
            0
        };
        (self.saturated >= PERSISTENT_STEPS).then(|| {
            format!(
                "the output has been pinned at 0 and 1 for {PERSISTENT_STEPS} steps at {:.1} dB",
                report.psnr_db
            )
        })
    }
}
