//! Training-step timings for `inrlab bench`: milliseconds per full-batch step of the Fourier-
//! feature MLP (the recipe, features precomputed as PyTorch's were) at 128², 224² and
//! 512², with Adam and with SGD, beside PyTorch's same step measured in the same run.

use std::time::Instant;

use crate::bench_baseline::{PytorchBaseline, PytorchRequest, speed_against};
use crate::compute::{Backend, CancelToken};
use crate::methods::training::OPTIMIZER;
use crate::methods::{self, MethodCache, ParamValues, Setup};
use crate::rng::RngKind;
use crate::target::{Fit, Target};

/// The working sizes of the training bench.
pub const SIZES: &[usize] = &[128, 224, 512];
const OPTIMIZERS: &[&str] = &["adam", "sgd"];
/// Untimed steps before the timed ones, here and in PyTorch's.
const WARMUP_STEPS: usize = 2;

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
    params.set("steps", (steps + WARMUP_STEPS) as f64);
    let mut method = info.build(&Setup {
        target: &target,
        backend,
        rng: RngKind::Numpy,
        params: &params,
        cache: &MethodCache::blocking(),
        cancel: &CancelToken::new(),
        folder: None,
    })?;
    for _ in 0..WARMUP_STEPS {
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

/// PyTorch's training step, measured with one Python once per kind of device, however many
/// backends share that device (the GPU's f32 and cooperative backends both stand beside CUDA).
pub struct PytorchBaselines<'a> {
    python: Option<&'a str>,
    measured: Vec<(&'static str, Result<PytorchBaseline, String>)>,
}

impl<'a> PytorchBaselines<'a> {
    /// `None` measures nothing ("--python none").
    pub fn new(python: Option<&'a str>) -> Self {
        Self {
            python,
            measured: Vec::new(),
        }
    }

    /// The step on `backend`'s kind of device (its CPU with as many threads, or CUDA beside a
    /// GPU backend), `steps` timed after the same warm-up as inrlab's.
    fn beside(
        &mut self,
        backend: &dyn Backend,
        steps: usize,
    ) -> Option<&Result<PytorchBaseline, String>> {
        let python = self.python?;
        let device = if backend.as_gpu().is_some() {
            "cuda"
        } else {
            "cpu"
        };
        let index = match self.measured.iter().position(|(d, _)| *d == device) {
            Some(index) => index,
            None => {
                eprintln!("measuring PyTorch's training step on {device} with {python}…");
                let request = PytorchRequest {
                    device,
                    sizes: SIZES,
                    optimizers: OPTIMIZERS,
                    warmup: WARMUP_STEPS,
                    timed: steps.max(1),
                    threads: rayon::current_num_threads(),
                };
                let baseline = crate::bench_baseline::pytorch(python, &request);
                self.measured.push((device, baseline));
                self.measured.len() - 1
            }
        };
        Some(&self.measured[index].1)
    }
}

/// Lines for the bench output: every size and optimizer on one backend, beside PyTorch's
/// step on the same kind of device; a size the backend cannot hold says why instead.
pub fn training_lines(
    backend: &dyn Backend,
    steps: usize,
    baselines: &mut PytorchBaselines,
) -> Vec<String> {
    let mut lines = vec![format!(
        "training step (fourier-mlp, full batch) on {}  ({})",
        crate::bench::label(backend),
        backend.adapter_name()
    )];
    let pytorch = match baselines.beside(backend, steps) {
        Some(Ok(baseline)) => {
            lines.push(format!(
                "  beside PyTorch {} ({}), measured in this run",
                baseline.torch, baseline.device
            ));
            Some(baseline)
        }
        Some(Err(reason)) => {
            lines.push(format!("  PyTorch baseline not measured: {reason}"));
            None
        }
        None => None,
    };
    for &size in SIZES {
        for &optimizer in OPTIMIZERS {
            let timing = match measure_training(backend, size, optimizer, steps) {
                Ok(timing) => timing,
                Err(error) => {
                    lines.push(format!("  {size:>3}²  {optimizer:<5} skipped: {error:#}"));
                    continue;
                }
            };
            let mut line = format!(
                "  {size:>3}²  {optimizer:<5} {:>8.2} ms/step",
                timing.ms_per_step
            );
            let beside = pytorch.and_then(|pytorch| pytorch.step_ms(size, optimizer));
            if let Some((wall_ms, gpu_ms)) = beside {
                line += &format!(
                    "   PyTorch {wall_ms:>8.2} ms   {}",
                    speed_against(wall_ms, timing.ms_per_step)
                );
                if let Some(gpu_ms) = gpu_ms {
                    line += &format!(" (PyTorch's GPU time {gpu_ms:.2} ms)");
                }
            }
            if let Some((submissions, waits, bind_groups)) = timing.per_step {
                line += &format!(
                    "   per step: {submissions:.1} submissions, {waits:.1} waits, {bind_groups:.1} bind groups made"
                );
            }
            lines.push(line);
        }
    }
    lines
}
