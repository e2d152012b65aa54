//! Runs methods to completion without a window, collecting what the command line writes. The
//! methods run together in one [`Session`], as the window runs them, so they share what they
//! can (trajectory and cumulative one unrolled reservoir) and take turns by time.

use crate::compute::Backend;
use crate::methods::{MethodCache, MethodInfo, ParamValues, StepReport};
use crate::rng::RngKind;
use crate::session::{Advance, AdvanceResult, Session, SlotState};
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
    run_methods(
        &[(info, params.clone())],
        target,
        backend,
        rng,
        keep_images,
        |_, _| {},
    )
    .pop()
    .expect("one outcome per method")
}

/// Runs every method of `plans` together until each has finished or stopped; one outcome per
/// plan, in order. `on_advance` sees every turn (the command line's progress bars).
pub fn run_methods(
    plans: &[(&'static MethodInfo, ParamValues)],
    target: &Target,
    backend: &dyn Backend,
    rng: RngKind,
    keep_images: bool,
    mut on_advance: impl FnMut(&Session, &Advance),
) -> Vec<anyhow::Result<RunOutcome>> {
    // Nothing else to do meanwhile: eigen-solves run inline.
    let mut session = Session::borrowing(backend, MethodCache::blocking(), rng);
    session.set_target(target.clone());
    session.set_selection(plans);
    let mut records: Vec<Vec<StepRecord>> = plans.iter().map(|_| Vec::new()).collect();
    session.run_until_settled(|session, advance| {
        if let AdvanceResult::Stepped(report) = &advance.result {
            let slot = session.slot(advance.index);
            let method = slot.method().expect("a stepped method is in its slot");
            let image = (keep_images && method.keep_image(report.step))
                .then(|| method.image(session.backend()));
            records[advance.index].push(StepRecord {
                report: report.clone(),
                seconds: slot.compute_secs,
                image,
            });
        }
        on_advance(session, advance);
    });
    records
        .into_iter()
        .enumerate()
        .map(|(index, mut records)| {
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
            Ok(RunOutcome {
                records,
                iterates: method.iterates(session.backend()),
            })
        })
        .collect()
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

/// Watches a run's reports for divergence: a PSNR or loss that is not a finite number.
#[derive(Clone, Debug, Default)]
pub struct DivergenceMonitor {}

impl DivergenceMonitor {
    /// Why the run has diverged at this report, if it has.
    pub fn observe(&mut self, report: &StepReport) -> Option<String> {
        divergence(report).map(str::to_owned)
    }
}
