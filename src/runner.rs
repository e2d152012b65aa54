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

/// Runs `info` on `target` for all its steps. `keep_images` downloads every step's image
/// (for trajectory strips); otherwise only the last one is downloaded.
pub fn run_to_completion(
    info: &MethodInfo,
    target: &Target,
    backend: &dyn Backend,
    rng: RngKind,
    params: &ParamValues,
    keep_images: bool,
) -> anyhow::Result<Vec<StepRecord>> {
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
        if !report.psnr_db.is_finite() {
            anyhow::bail!(
                "{} diverged at step {} (PSNR is not a number)",
                info.name,
                report.step
            );
        }
        let image = keep_images.then(|| method.image(backend));
        records.push(StepRecord {
            report,
            seconds,
            image,
        });
    }
    if let Some(last) = records.last_mut().filter(|r| r.image.is_none()) {
        last.image = Some(method.image(backend));
    }
    Ok(records)
}
