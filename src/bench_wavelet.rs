//! The wavelet operator's figures for `inrlab bench`: milliseconds per step (the teacher-forced
//! training part and the rollout that follows it) at 128² and 256² for the default variant,
//! and the live tensor bytes at the peak of a 512² rollout, counted by the CPU backend's
//! allocations, against what holding every level's working set at once would take.

use std::time::Instant;

use crate::compute::cpu::CpuBackend;
use crate::compute::{Backend, CancelToken, format_gb};
use crate::methods::wavelet::{Config, Coordinates, Grower, Wavelet};
use crate::methods::wavelet_operator::{Operator, Workspace};
use crate::methods::{Method, MethodCache, ParamValues, Setup};
use crate::rng::{NumpyRandomState, RngKind, normal_source};
use crate::target::{Fit, Target};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median ms of a whole step and of its rollout alone, after two warm-up steps.
pub fn step_times(backend: &dyn Backend, size: usize, steps: usize) -> anyhow::Result<(f64, f64)> {
    let target = Target::sample(size, Fit::Stretch)?;
    let mut params = ParamValues::new();
    params.set("steps", (steps + 2) as f64);
    let mut method = Wavelet::new(&Setup {
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
    let mut whole = Vec::new();
    let mut rollout = Vec::new();
    for _ in 0..steps.max(1) {
        backend.finish();
        let started = Instant::now();
        method.step(backend)?;
        backend.finish();
        whole.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        method.rollout_once(backend, false)?;
        backend.finish();
        rollout.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(whole), median(rollout)))
}

/// (peak live bytes during a rollout to `size`, bytes of every level's working set held at
/// once, bytes of the weights) on a fresh CPU backend, default variant.
pub fn rollout_memory(size: usize) -> anyhow::Result<(u64, u64, u64)> {
    let backend = CpuBackend::new();
    let config = Config::from_params(&ParamValues::new())?;
    let operator = Operator::new(&backend, &mut NumpyRandomState::new(0), config.shape())?;
    let coordinates = Coordinates::new(&config, RngKind::Numpy, 0);
    let weights = backend.bytes_allocated();
    let statics = coordinates.every_level(size);
    let grower = Grower {
        operator: &operator,
        statics: &statics,
        size,
    };
    let base = vec![0.5f32; 4 * 4 * 3];
    backend.reset_peak_bytes();
    let mut noise = normal_source(RngKind::Numpy, 0);
    let rollout = grower.grow(
        &backend,
        &base,
        0.0,
        noise.as_mut(),
        false,
        &CancelToken::new(),
    )?;
    drop(rollout);
    let peak = backend.peak_bytes_allocated() - weights;
    // Every level's working set as one level of the rollout holds it: its workspace, input,
    // upsampled image and output.
    let mut every_level = 0;
    for side in crate::methods::wavelet::predicted_sides(size) {
        let before = backend.bytes_allocated();
        let rows = side * side;
        let work = Workspace::new(
            &backend,
            config.shape(),
            crate::compute::Grids::single(side),
            false,
        )?;
        let tensors = [
            backend.zeros(rows, config.inputs())?,
            backend.zeros(rows, 3)?,
            backend.zeros(rows, 3)?,
        ];
        every_level += backend.bytes_allocated() - before;
        drop((work, tensors));
    }
    Ok((peak, every_level, weights))
}

/// Lines for the bench output: the steps on `backend`, and the 512² rollout's memory (counted
/// once per run: it does not depend on the backend's arithmetic) where `with_memory`; a size
/// the backend cannot hold says why instead.
pub fn lines(backend: &dyn Backend, steps: usize, with_memory: bool) -> Vec<String> {
    let mut lines = vec![format!(
        "wavelet operator (default variant: C 32, B 4, Fourier coordinates, 3×3 skip) on {}  ({})",
        backend.kind(),
        backend.adapter_name()
    )];
    for size in [128, 256] {
        let (whole, rollout) = match step_times(backend, size, steps) {
            Ok(times) => times,
            Err(error) => {
                lines.push(format!("  {size:>3}²  skipped: {error:#}"));
                continue;
            }
        };
        lines.push(format!(
            "  {size:>3}²  training step {:>8.2} ms   rollout {:>7.2} ms   whole step {:>8.2} ms",
            whole - rollout,
            rollout,
            whole
        ));
    }
    if !with_memory {
        return lines;
    }
    let (peak, every, weights) = match rollout_memory(512) {
        Ok(memory) => memory,
        Err(error) => {
            lines.push(format!("  512² rollout memory: skipped: {error:#}"));
            return lines;
        }
    };
    lines.push(format!(
        "  512² rollout: live tensors at the peak {} ({} bytes), every level held at once {} \
         ({} bytes): {:.2}×; weights {} bytes",
        format_gb(peak),
        peak,
        format_gb(every),
        every,
        every as f64 / peak.max(1) as f64,
        weights
    ));
    lines
}
