//! Runs methods to completion without a window, collecting what the command line writes. The
//! methods run together in one [`Session`], as the window runs them, so they share what they
//! can (trajectory and cumulative one unrolled reservoir) and take turns by time.

use crate::checkpoint::Checkpoint;
use crate::compute::Backend;
use crate::methods::{LevelImages, MethodCache, MethodInfo, ParamValues, StepReport};
use crate::rng::RngKind;
use crate::session::{Advance, AdvanceResult, Session, SlotState};
use crate::sparse::{BestStep, Refit};
use crate::target::Target;

/// One finished step: its report, the cumulative compute time, and (when kept) its image.
pub struct StepRecord {
    pub report: StepReport,
    pub seconds: f64,
    pub image: Option<Vec<f32>>,
}

/// A finished run: every step, and the final network's intermediate images for methods that
/// refine internally ([`crate::methods::Method::iterates`]) or grow the image level by level
/// ([`crate::methods::Method::levels`]).
pub struct RunOutcome {
    pub records: Vec<StepRecord>,
    pub iterates: Option<Vec<Vec<f32>>>,
    pub levels: Option<Vec<LevelImages>>,
    /// Seen through a mask with validation: the step with the best validation PSNR.
    pub best: Option<BestStep>,
    /// Seen through a mask that refits: the method fitted again on every observed pixel to
    /// the best-validation step.
    pub refit: Option<Result<Refit, String>>,
    /// The final model evaluated at the coordinates [`run_methods`] was given to render.
    pub rendering: Option<anyhow::Result<Vec<f32>>>,
}

/// Runs `info` on `target` for all its steps. `keep_images` downloads the images of the steps
/// the method keeps for its trajectory (every step for the reservoir methods, milestones for
/// trained ones); otherwise only the last one is downloaded.
pub fn run_to_completion(
    info: &'static MethodInfo,
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
    info: &'static MethodInfo,
    target: &Target,
    backend: &dyn Backend,
    rng: RngKind,
    params: &ParamValues,
    keep_images: bool,
) -> anyhow::Result<RunOutcome> {
    let mut outcome = None;
    run_methods(
        &[(info, params.clone())],
        target,
        backend,
        rng,
        keep_images,
        None,
        None,
        |_, _| {},
        |_, result| outcome = Some(result),
    );
    outcome.expect("one outcome per method")
}

/// Runs every method of `plans` together until each has finished or stopped. With `resume`,
/// the plan of the checkpoint's method starts from it (its records from the checkpoint's
/// history). `on_advance` sees every turn (the command line's progress bars); `on_outcome`
/// gets each method's outcome (by its index in `plans`) as soon as that method has finished or
/// stopped, so its files can be written while the others go on. With `render` (model
/// coordinates, see [`crate::target::rendering_grid`]), each outcome carries the final model
/// evaluated there.
pub fn run_methods(
    plans: &[(&'static MethodInfo, ParamValues)],
    target: &Target,
    backend: &dyn Backend,
    rng: RngKind,
    keep_images: bool,
    resume: Option<&Checkpoint>,
    render: Option<&[f32]>,
    mut on_advance: impl FnMut(&Session, &Advance),
    mut on_outcome: impl FnMut(usize, anyhow::Result<RunOutcome>),
) {
    // Nothing else to do meanwhile: eigen-solves run inline.
    let mut session = Session::borrowing(backend, MethodCache::blocking(), rng);
    session.set_target(target.clone());
    session.set_selection(plans);
    let mut records: Vec<Option<Vec<StepRecord>>> =
        plans.iter().map(|_| Some(Vec::new())).collect();
    if let Some(checkpoint) = resume {
        let Some(index) = plans
            .iter()
            .position(|(i, _)| i.name == checkpoint.method())
        else {
            return on_outcome(0, Err(anyhow::anyhow!("no run of {}", checkpoint.method())));
        };
        if let Err(error) = session.resume(index, plans[index].1.clone(), checkpoint) {
            return on_outcome(index, Err(error));
        }
        records[index] = Some(
            (checkpoint.history.iter())
                .map(|step| StepRecord {
                    report: step.report.clone(),
                    seconds: step.seconds,
                    image: None,
                })
                .collect(),
        );
    }
    session.run_until_settled(|session, advance| {
        let index = advance.index;
        let slot = session.slot(index);
        if let (AdvanceResult::Stepped(report), Some(records)) =
            (&advance.result, records[index].as_mut())
        {
            let method = slot.method().expect("a stepped method is in its slot");
            let image = (keep_images && method.keep_image(report.step))
                .then(|| method.image(session.backend()));
            records.push(StepRecord {
                report: report.clone(),
                seconds: slot.compute_secs,
                image,
            });
        }
        on_advance(session, advance);
        if slot.is_settled()
            && let Some(records) = records[index].take()
        {
            on_outcome(index, outcome(session, index, records, render));
        }
    });
}

/// The outcome of a settled slot: its records with the last image, and its iterates.
fn outcome(
    session: &Session,
    index: usize,
    mut records: Vec<StepRecord>,
    render: Option<&[f32]>,
) -> anyhow::Result<RunOutcome> {
    let slot = session.slot(index);
    if let SlotState::Stopped(reason) = &slot.state {
        anyhow::bail!("{}: {reason}", slot.info.name);
    }
    let method = slot
        .method()
        .ok_or_else(|| anyhow::anyhow!("{} did not run", slot.info.name))?;
    if let Some(last) = records.last_mut().filter(|r| r.image.is_none()) {
        last.image = Some(method.image(session.backend()));
    }
    let rendering = render.map(|coords| {
        method
            .render(session.backend(), coords, &slot.cancel)
            .unwrap_or_else(|| {
                anyhow::bail!("{} cannot be evaluated off its pixel grid", slot.info.name)
            })
    });
    Ok(RunOutcome {
        records,
        iterates: method.iterates(session.backend()),
        levels: method.levels(session.backend()),
        best: slot.best.best.clone(),
        refit: slot.refit_outcome(),
        rendering,
    })
}

/// Why a step's report means the method has diverged: a PSNR or a training loss that is not a
/// finite number. `None` for a healthy step.
fn divergence(report: &StepReport) -> Option<&'static str> {
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
#[derive(Clone, Debug)]
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

impl Default for DivergenceMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl DivergenceMonitor {
    pub fn new() -> Self {
        DivergenceMonitor {
            best_loss: f64::INFINITY,
            far_above_best: 0,
            saturated: 0,
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
