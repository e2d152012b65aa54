//! Training-step timings for `inrlab bench`: milliseconds per full-batch step of the Fourier-
//! feature MLP (the recipe, features precomputed as PyTorch's were) at 128² and 224²,
//! with Adam and with SGD, against PyTorch on a 2-core machine of this kind.

use std::time::Instant;

use crate::compute::{Backend, CancelToken};
use crate::methods::training::OPTIMIZER;
use crate::methods::{self, MethodCache, ParamValues, Setup};
use crate::rng::RngKind;
use crate::target::{Fit, Target};

/// PyTorch ms per full-batch Adam step on a 2-core CPU (reference table; SGD measured 32.7 ms at
/// 128²), by size; 512² has no table figure (scripts/pytorch_baseline.py measures it).
pub const PYTORCH_MS: &[(usize, Option<f64>)] =
    &[(128, Some(33.9)), (224, Some(135.0)), (512, None)];

/// One timing: size, optimizer, median ms per step.
pub struct TrainingTiming {
    pub size: usize,
    pub optimizer: &'static str,
    pub ms_per_step: f64,
    /// Per step, on a device: submissions, host waits, bind groups made.
    pub per_step: Option<(f64, f64, f64)>,
}

/// Median ms per training step over `steps` steps after two warm-up steps.
pub fn measure_training(
    backend: &dyn Backend,
    size: usize,
    optimizer: &'static str,
    steps: usize,
) -> anyhow::Result<TrainingTiming> {
    let target = Target::sample(size, Fit::Stretch)?;
    let info = methods::find("fourier-mlp")?;
    let mut params = ParamValues::new();
    let index = OPTIMIZER.choice_index(optimizer)?;
    params.set(OPTIMIZER.name, index as f64);
    params.set("steps", (steps + 2) as f64);
    let mut method = info.build(&Setup {
        target: &target,
        backend,
        rng: RngKind::Numpy,
        params: &params,
        cache: &MethodCache::blocking(),
        cancel: &CancelToken::new(),
        folder: None,
    })?;
    for _ in 0..2 {
        method.step(backend)?;
    }
    backend.finish();
    let before = backend.device_counters();
    let mut times: Vec<f64> = (0..steps.max(1))
        .map(|_| {
            let started = Instant::now();
            let result = method.step(backend);
            backend.finish();
            result.map(|_| started.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<anyhow::Result<_>>()?;
    let per_step = before
        .zip(backend.device_counters())
        .map(|(before, after)| {
            let per = |a: u64, b: u64| (b - a) as f64 / times.len() as f64;
            (
                per(before.submissions, after.submissions),
                per(before.readbacks, after.readbacks),
                per(before.bind_groups_created, after.bind_groups_created),
            )
        });
    times.sort_by(f64::total_cmp);
    Ok(TrainingTiming {
        size,
        optimizer,
        ms_per_step: times[times.len() / 2],
        per_step,
    })
}

/// Lines for the bench output: every size and optimizer on one backend; a size the backend
/// cannot hold says why instead.
pub fn training_lines(backend: &dyn Backend, steps: usize) -> Vec<String> {
    let mut lines = vec![format!(
        "training step (fourier-mlp, full batch) on {}  ({})",
        crate::bench::label(backend),
        backend.adapter_name()
    )];
    for &(size, pytorch) in PYTORCH_MS {
        for optimizer in ["adam", "sgd"] {
            let timing = match measure_training(backend, size, optimizer, steps) {
                Ok(timing) => timing,
                Err(error) => {
                    lines.push(format!("  {size:>3}²  {optimizer:<5} skipped: {error:#}"));
                    continue;
                }
            };
            let per_step = timing
                .per_step
                .map(|(submissions, waits, bind_groups)| {
                    format!(
                        "   per step: {submissions:.1} submissions, {waits:.1} waits, {bind_groups:.1} bind groups made"
                    )
                })
                .unwrap_or_default();
            lines.push(match pytorch {
                Some(pytorch) => format!(
                    "  {size:>3}²  {optimizer:<5} {:>8.2} ms/step   PyTorch CPU {pytorch:>6.1} ms (Adam)   {:>4.2}× faster",
                    timing.ms_per_step,
                    pytorch / timing.ms_per_step
                ) + &per_step,
                None => format!("  {size:>3}²  {optimizer:<5} {:>8.2} ms/step", timing.ms_per_step)
                    + &per_step,
            });
        }
    }
    lines
}
